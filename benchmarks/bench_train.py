"""Training step (forward, loss, backward, optimizer) and inference
throughput of TutorialCNN and LeNet-5, fastconv beside PyTorch (same
architecture and initialization scheme), timed interleaved; then where
fastconv's step time goes.

    python -m benchmarks.bench_train [--threads 2] [--repeats 7]
    python -m benchmarks.bench_train --epoch tutorial   # one Fashion-MNIST epoch each
"""
import time
from collections import defaultdict

import numpy as np

import fastconv
from benchmarks import common
from fastconv import Tensor, functional as F, nn, optim
from fastconv.autograd import Function
from fastconv.models import LeNet5, TutorialCNN

CATEGORIES = {"Conv2d": "conv", "MaxPool2d": "pool", "Linear": "linear"}


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
    loss = F.cross_entropy(model(Tensor(x)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def breakdown(model, opt, x, y, repeats):
    """Seconds per step spent in each category, from timing every Function."""
    spent = defaultdict(float)
    originals, pending = {}, list(Function.__subclasses__())
    while pending:  # every Function class, at any depth
        cls = pending.pop()
        pending += cls.__subclasses__()
        for method in ("forward", "backward"):
            if method in vars(cls):
                original = originals[(cls, method)] = vars(cls)[method]

                def timed(self, *a, _f=original, **k):
                    start = time.perf_counter()
                    try:
                        return _f(self, *a, **k)
                    finally:
                        spent[CATEGORIES.get(type(self).__name__, "other ops")] += time.perf_counter() - start
                setattr(cls, method, timed)
    try:
        total = 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            loss = F.cross_entropy(model(Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            t = time.perf_counter()
            opt.step()
            spent["optimizer"] += time.perf_counter() - t
            total += time.perf_counter() - start
    finally:
        for (cls, method), original in originals.items():
            setattr(cls, method, original)
    spent = {k: v / repeats for k, v in spent.items()}
    spent["framework overhead"] = total / repeats - sum(spent.values())
    return spent, total / repeats


def epoch(name, torch, batch=50, lr=1e-4):
    """One epoch of Fashion-MNIST (the tutorial's settings: Adam, batch 50),
    fastconv then PyTorch, same architecture, initialization scheme and data
    order: seconds and test accuracy for each."""
    from fastconv import data
    from fastconv.mnist import evaluate, train_epoch
    train_x, train_y, test_x, test_y = data.load("fashion", download_missing=False)
    nn.manual_seed(0)
    model = {"tutorial": TutorialCNN, "lenet5": LeNet5}[name]()
    opt = optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    train_epoch(model, opt, train_x, train_y, batch, np.random.default_rng(0))
    rows = [["fastconv", name, f"{time.perf_counter() - start:.1f}", f"{evaluate(model, test_x, test_y):.4f}"]]
    if torch is not None:
        torch.manual_seed(0)
        tm = torch_model(torch, name)
        topt = torch.optim.Adam(tm.parameters(), lr=lr)
        start = time.perf_counter()
        tm.train()
        for x, y in data.batches(train_x, train_y, batch, rng=np.random.default_rng(0)):
            loss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
            topt.zero_grad()
            loss.backward()
            topt.step()
        seconds = time.perf_counter() - start
        tm.eval()
        with torch.no_grad():
            correct = sum(int((tm(torch.from_numpy(x)).argmax(1).numpy() == y).sum())
                          for x, y in data.batches(test_x, test_y, 500, shuffle=False))
        rows.append(["torch", name, f"{seconds:.1f}", f"{correct / len(test_y):.4f}"])
    common.table(["framework", "model", "epoch seconds", "test accuracy"], rows)


def main():
    ap = common.parser(__doc__.splitlines()[0])
    ap.add_argument("--epoch", choices=["tutorial", "lenet5"], default=None,
                    help="instead: one Fashion-MNIST training epoch in each framework")
    args = ap.parse_args()
    threads = common.setup_threads(args.threads)
    torch = common.try_torch()
    if args.epoch:
        return epoch(args.epoch, torch)
    print(f"fastconv {fastconv.build_info()}, {threads} threads; torch {torch.__version__ if torch else '-'}\n")
    rows, parts = [], []
    for name, cls in (("tutorial", TutorialCNN), ("lenet5", LeNet5)):
        for batch in (50, 128):
            rng = np.random.default_rng(0)
            x = rng.random((batch, 1, 28, 28), dtype=np.float32)
            y = rng.integers(0, 10, batch)
            nn.manual_seed(0)
            model = cls()
            opt = optim.Adam(model.parameters(), lr=1e-4)
            cands = {"fastconv step": lambda: fastconv_step(model, opt, x, y)}

            def infer():
                with fastconv.no_grad():
                    model.eval()
                    model(Tensor(x))
                    model.train()
            cands["fastconv infer"] = infer
            if torch is not None:
                tm = torch_model(torch, name)
                topt = torch.optim.Adam(tm.parameters(), lr=1e-4)
                tx, ty = torch.from_numpy(x), torch.from_numpy(y)

                def tstep():
                    loss = torch.nn.functional.cross_entropy(tm(tx), ty)
                    topt.zero_grad()
                    loss.backward()
                    topt.step()

                def tinfer():
                    with torch.no_grad():
                        tm.eval()
                        tm(tx)
                        tm.train()
                cands["torch step"], cands["torch infer"] = tstep, tinfer
            t = common.interleaved(cands, args.repeats)
            for kind in ("step", "infer"):
                mine, theirs = t[f"fastconv {kind}"], t.get(f"torch {kind}")
                rows.append([name, batch, kind, f"{mine * 1e3:.1f}", f"{batch / mine:.0f}",
                             f"{theirs * 1e3:.1f}" if theirs else "-", f"{batch / theirs:.0f}" if theirs else "-",
                             f"{theirs / mine:.2f}" if theirs else "-"])
            spent, total = breakdown(model, opt, x, y, args.repeats)
            parts.append([name, batch, f"{total * 1e3:.1f}"] + [
                f"{spent.get(k, 0) * 1e3:.1f} ({100 * spent.get(k, 0) / total:.0f}%)"
                for k in ("conv", "pool", "linear", "other ops", "optimizer", "framework overhead")])
    common.table(["model", "batch", "pass", "fastconv ms", "img/s", "torch ms", "torch img/s", "speedup vs torch"],
                 rows)
    print("\nWhere fastconv's training step goes (ms per step, share):")
    common.table(["model", "batch", "step ms", "conv", "pool", "linear", "other ops", "optimizer",
                  "framework overhead"], parts)


if __name__ == "__main__":
    main()
