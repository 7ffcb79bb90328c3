"""A training step is one engine: no NumPy BLAS on the hot path, and a
seeded run gives the same bits on 1 thread or many."""
import ast
import pathlib
import threading

import numpy as np
import pytest

import fastconv
from fastconv import Tensor, nn, optim
from fastconv import functional as F
from fastconv.models import MODELS, InceptionBlock, ResidualBlock

SHIPPED = {**{name: (cls, (2, 1, 28, 28)) for name, cls in MODELS.items()},
           "residual": (lambda: ResidualBlock(3, 8, stride=2), (2, 3, 8, 8)),
           "inception": (lambda: InceptionBlock(4, 2, 2, 3, 2, 3, 2), (2, 4, 6, 6))}
BLAS = ("matmul", "dot", "vdot", "inner", "einsum", "tensordot", "matvec", "vecmat")


def step(model, x):
    out = model(Tensor(x))
    loss = F.cross_entropy(out.reshape(out.shape[0], -1), np.zeros(len(x), int))
    opt = optim.Adam(model.parameters())
    opt.zero_grad()
    loss.backward()
    opt.step()
    model.eval()
    with fastconv.no_grad():
        model(Tensor(x))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_train_and_infer_without_numpy_blas(name, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"{name} called NumPy's BLAS")
    for fn in BLAS:
        if hasattr(np, fn):
            monkeypatch.setattr(np, fn, refuse)
    monkeypatch.setattr(np.linalg, "matmul", refuse, raising=False)
    nn.manual_seed(0)
    make, shape = SHIPPED[name]
    step(make(), np.random.default_rng(0).standard_normal(shape).astype(np.float32))


def test_no_matrix_operator_on_arrays_in_the_package():
    """`a @ b` on ndarrays reaches NumPy's BLAS without passing through any
    name a test can patch, so the package must not contain one."""
    found = []
    for path in pathlib.Path(fastconv.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
                found.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr in ("dot", "einsum", "tensordot", "inner"):
                found.append(f"{path.name}:{node.lineno}")
    assert not found, found


def train(name, steps=3, batch=16):
    """The weights after a seeded run of `steps` Adam steps on random data."""
    nn.manual_seed(0)
    model = MODELS[name]()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x = rng.random((batch, 1, 28, 28), dtype=np.float32)
        loss = F.cross_entropy(model(Tensor(x)), rng.integers(0, 10, batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.data.copy() for p in model.parameters()]


def train_tutorial(threads):
    fastconv.set_num_threads(threads)
    return train("tutorial")


def test_same_seed_same_bits_on_one_thread_or_many(threads):
    """Dropout included: its masks come from nn.manual_seed's generator."""
    first, again = train_tutorial(2), train_tutorial(2)
    one = train_tutorial(1)
    for a, b, c in zip(first, again, one):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_training_and_serving_threads_at_once():
    """A thread training LeNet-5 while two threads serve another model in
    no_grad(): the trained weights are those of training alone, bit for bit
    (gradients recorded throughout), and every served output is the
    model's eval forward."""
    alone = train("lenet5", steps=4, batch=8)
    nn.manual_seed(2)
    served = MODELS["lenet5"]()
    served.eval()
    images = np.random.default_rng(3).random((4, 1, 28, 28), dtype=np.float32)
    with fastconv.no_grad():
        expected = served(Tensor(images)).data
    stop, mismatches, results = threading.Event(), [], {}

    def serve():
        while not stop.is_set():
            with fastconv.no_grad():
                out = served(Tensor(images))
            if out.requires_grad or not np.array_equal(out.data, expected):
                mismatches.append(out)
    servers = [threading.Thread(target=serve) for _ in range(2)]
    for t in servers:
        t.start()
    trainer = threading.Thread(target=lambda: results.setdefault("trained", train("lenet5", steps=4, batch=8)))
    trainer.start()
    trainer.join()
    stop.set()
    for t in servers:
        t.join()
    assert not mismatches
    assert all(np.array_equal(a, b) for a, b in zip(alone, results["trained"]))
