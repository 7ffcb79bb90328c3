"""Training steps and inference of TutorialCNN and LeNet-5 as a user's loop
runs them, fastconv beside PyTorch (same architecture and initialization
scheme); then a user's own NumPy layer between fastconv calls, with and
without threadpoolctl's remedy.

    pytest benchmarks/bench_train.py --benchmark-only
    python -m benchmarks.bench_train [the same options]

Two measurements that are not side-by-side comparisons stay commands:

    python -m benchmarks.bench_train --breakdown         # where fastconv's step goes, op by op
    python -m benchmarks.bench_train --epoch tutorial [--repeats 3]  # Fashion-MNIST epochs, alternated
"""
import argparse
import sys
import time
from collections import defaultdict

import numpy as np
import pytest

import common
import fastconv
from fastconv import Tensor, functional as F, nn, optim
from fastconv.autograd import Function
from fastconv.models import LeNet5, TutorialCNN

MODELS = {"tutorial": TutorialCNN, "lenet5": LeNet5}
INFER_BATCH = 1000


def torch_model(torch, name):
    tn = torch.nn
    if name == "tutorial":
        return tn.Sequential(tn.Conv2d(1, 64, 3, padding=1), tn.ReLU(), tn.MaxPool2d(2),
                             tn.Conv2d(64, 128, 3, padding=1), tn.ReLU(), tn.MaxPool2d(2), tn.Flatten(),
                             tn.Linear(6272, 1024), tn.ReLU(), tn.Dropout(0.25), tn.Linear(1024, 10))
    return tn.Sequential(tn.Conv2d(1, 6, 5, padding=2), tn.ReLU(), tn.MaxPool2d(2), tn.Conv2d(6, 16, 5), tn.ReLU(),
                         tn.MaxPool2d(2), tn.Flatten(), tn.Linear(400, 120), tn.ReLU(), tn.Linear(120, 84),
                         tn.ReLU(), tn.Linear(84, 10))


def fastconv_step(model, opt, x, y):
    """One step as the README's training loop writes it."""
    loss = F.cross_entropy(model(Tensor(x)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def fastconv_infer(model, x):
    model.eval()
    with fastconv.no_grad():
        model(Tensor(x))
    model.train()


def torch_step(torch, model, opt, x, y):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def torch_infer(torch, model, x):
    model.eval()
    with torch.no_grad():
        model(x)
    model.train()


def data(batch, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch)


@pytest.mark.parametrize("impl", ("torch", "fastconv"))
@pytest.mark.parametrize("kind, batch", [("step", 50), ("step", 128), ("infer", INFER_BATCH)],
                         ids=["step50", "step128", f"infer{INFER_BATCH}"])
@pytest.mark.parametrize("name", MODELS)
def test_model(measure, torch, name, kind, batch, impl):
    x, y = data(batch)
    if impl == "fastconv":
        nn.manual_seed(0)
        model = MODELS[name]()
        opt = optim.Adam(model.parameters(), lr=1e-4)
        fn = (lambda: fastconv_step(model, opt, x, y)) if kind == "step" else (lambda: fastconv_infer(model, x))
    else:
        if torch is None:
            pytest.skip("PyTorch is not installed")
        tm = torch_model(torch, name)
        topt = torch.optim.Adam(tm.parameters(), lr=1e-4)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        fn = (lambda: torch_step(torch, tm, topt, tx, ty)) if kind == "step" else (lambda: torch_infer(torch, tm, tx))
    measure(fn, group=f"train {name} {kind} batch {batch}", impl=impl, images=batch, operation="train",
            shape=name, dtype="float32", **{"pass": kind})


def tutorial_nhwc():
    """TutorialCNN with channels-last layers (the same fusions, weights drawn
    the same): what data_format="NHWC" costs a training step."""
    fmt = dict(data_format="NHWC")
    return nn.Sequential(nn.Conv2d(1, 64, 3, padding=1, **fmt), nn.ReLU(), nn.MaxPool2d(2, **fmt),
                         nn.Conv2d(64, 128, 3, padding=1, **fmt), nn.ReLU(), nn.MaxPool2d(2, **fmt),
                         nn.Flatten(), nn.Linear(6272, 1024), nn.ReLU(), nn.Dropout(0.25), nn.Linear(1024, 10))


@pytest.mark.parametrize("layout", ("NCHW", "NHWC"))
def test_tutorial_layouts(measure, layout):
    """TutorialCNN's step (batch 50) on NCHW arrays and on NHWC ones."""
    x, y = data(50)
    nn.manual_seed(0)
    model = TutorialCNN() if layout == "NCHW" else tutorial_nhwc()
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    opt = optim.Adam(model.parameters(), lr=1e-4)
    measure(lambda: fastconv_step(model, opt, x, y), group="train tutorial step batch 50, layouts", impl=layout,
            images=50, baseline="NCHW", operation="train", shape="tutorial", dtype="float32", **{"pass": "step"})


class NumpyLinear(Function):
    """A layer a user writes with NumPy's matmul (its BLAS) inside a
    fastconv model."""

    def forward(self, x, w):
        self.x, self.w = x, w
        return np.matmul(x, w.T)

    def backward(self, g):
        return np.matmul(g, self.w), np.matmul(g.T, self.x)


@pytest.mark.parametrize("impl", ("fastconv layers only", "with a NumPy layer",
                                  "NumPy layer, BLAS limited to 1 thread"))
def test_lenet5_with_a_numpy_layer(measure, impl):
    """LeNet-5 (batch 50) with its first dense layer replaced by a user's
    NumPy one: as is, and with NumPy's BLAS limited to one thread around
    the step (threadpoolctl's remedy)."""
    x, y = data(50)
    nn.manual_seed(0)
    model = LeNet5()
    opt = optim.Adam(model.parameters())
    fn = lambda: fastconv_step(model, opt, x, y)  # noqa: E731
    if impl != "fastconv layers only":
        w = model.classifier[1].weight

        def forward(t):
            h = model.features(t).flatten(1)
            h = F.relu(NumpyLinear.apply(h, w) + model.classifier[1].bias)
            for layer in model.classifier.layers[3:]:
                h = layer(h)
            return h
        model.forward = forward
    if impl == "NumPy layer, BLAS limited to 1 thread":
        threadpoolctl = pytest.importorskip("threadpoolctl")

        def fn():
            with threadpoolctl.threadpool_limits(1, user_api="blas"):
                fastconv_step(model, opt, x, y)
    measure(fn, group="train lenet5 step batch 50, a NumPy layer inside", impl=impl, images=50,
            baseline="fastconv layers only", operation="train", shape="lenet5", dtype="float32", **{"pass": "step"})


def breakdown(model, opt, x, y, repeats):
    """({op: seconds per step}, seconds per step) from timing every
    Function's forward and backward (a ReLU fused into a conv or linear
    counts as that layer) and the optimizer; the rest is Python and the
    autograd's own bookkeeping."""
    spent = defaultdict(float)
    originals, pending = {}, list(Function.__subclasses__())
    while pending:  # every Function class, at any depth
        cls = pending.pop()
        pending += cls.__subclasses__()
        for method in ("forward", "backward"):
            if method in vars(cls):
                original = originals[(cls, method)] = vars(cls)[method]

                def timed(self, *a, _f=original, _m=method, **k):
                    start = time.perf_counter()
                    try:
                        return _f(self, *a, **k)
                    finally:
                        spent[f"{type(self).__name__} {_m}"] += time.perf_counter() - start
                setattr(cls, method, timed)
    try:
        fastconv_step(model, opt, x, y)
        spent.clear()
        total = 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            loss = F.cross_entropy(model(Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            stepped = time.perf_counter()
            opt.step()
            spent["optimizer step"] += time.perf_counter() - stepped
            total += time.perf_counter() - start
    finally:
        for (cls, method), original in originals.items():
            setattr(cls, method, original)
    spent = {k: v / repeats for k, v in spent.items()}
    spent["Python and autograd"] = total / repeats - sum(spent.values())
    return spent, total / repeats


def where_the_step_goes(repeats):
    """fastconv's step, op by op (PyTorch's whole step is in the suite's
    train groups)."""
    for name, cls in MODELS.items():
        x, y = data(50)
        nn.manual_seed(0)
        model = cls()
        spent, total = breakdown(model, optim.Adam(model.parameters(), lr=1e-4), x, y, 4 * repeats)
        print(f"\nWhere fastconv's {name} step goes (batch 50): {total * 1e3:.2f} ms")
        common.table(["op", "ms per step", "share"],
                     [[k, f"{v * 1e3:.2f}", f"{100 * v / total:.0f}%"]
                      for k, v in sorted(spent.items(), key=lambda kv: -kv[1]) if v * 1e3 >= 0.005])


def epoch(name, torch, batch=50, lr=1e-4, repeats=1):
    """One epoch of Fashion-MNIST (the tutorial's settings: Adam, batch 50)
    for fastconv and PyTorch, same architecture, initialization scheme and
    data order, `repeats` times each, alternated (the host is shared: an
    epoch's time moves by up to 10% from one run to the next): seconds of
    each run and test accuracy; the ratio compares each framework's best."""
    from fastconv import data as fdata
    from fastconv.mnist import evaluate, train_epoch
    train_x, train_y, test_x, test_y = fdata.load("fashion", download_missing=False)

    def ours():
        nn.manual_seed(0)
        model = MODELS[name]()
        opt = optim.Adam(model.parameters(), lr=lr)
        start = time.perf_counter()
        train_epoch(model, opt, train_x, train_y, batch, np.random.default_rng(0))
        return time.perf_counter() - start, evaluate(model, test_x, test_y)

    def theirs():
        torch.manual_seed(0)
        tm = torch_model(torch, name)
        topt = torch.optim.Adam(tm.parameters(), lr=lr)
        start = time.perf_counter()
        for x, y in fdata.batches(train_x, train_y, batch, rng=np.random.default_rng(0)):
            torch_step(torch, tm, topt, torch.from_numpy(x), torch.from_numpy(y))
        seconds = time.perf_counter() - start
        tm.eval()
        with torch.no_grad():
            correct = sum(int((tm(torch.from_numpy(x)).argmax(1).numpy() == y).sum())
                          for x, y in fdata.batches(test_x, test_y, 500, shuffle=False))
        return seconds, correct / len(test_y)

    runs = {"fastconv": [], "torch": []}
    for _ in range(repeats):
        runs["fastconv"].append(ours())
        if torch is not None:
            runs["torch"].append(theirs())
    rows = []
    for framework, results in runs.items():
        if results:
            rows.append([framework, name, " / ".join(f"{t:.2f}" for t, _ in results), f"{min(t for t, _ in results):.2f}",
                         f"{results[0][1]:.4f}", ""])
    if len(rows) == 2:
        rows[0][-1] = f"{float(rows[0][3]) / float(rows[1][3]):.2f}"
    common.table(["framework", "model", "epoch seconds (alternated runs)", "best", "test accuracy",
                  "best / torch's best"], rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    ap.add_argument("--epoch", choices=sorted(MODELS), default=None)
    ap.add_argument("--breakdown", action="store_true")
    ap.add_argument("--repeats", type=int, default=1, help="--epoch: runs of each framework, alternated")
    ap.add_argument("--threads", type=int, default=None)
    args, rest = ap.parse_known_args()
    if not (args.epoch or args.breakdown):
        return common.pytest_main(__file__, sys.argv[1:])
    threads = common.setup_threads(args.threads)
    torch = common.try_torch()
    if args.epoch:
        return epoch(args.epoch, torch, repeats=args.repeats)
    print(f"fastconv {fastconv.build_info()}, {threads} threads")
    where_the_step_goes(7)


if __name__ == "__main__":
    sys.exit(main())
