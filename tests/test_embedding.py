"""Embedding lookup against the NumPy oracle and PyTorch, the table's
gradient (repeats add, padding_idx stays zero), and its errors."""
import numpy as np
import pytest

import fastconv
import reference as ref
from conftest import assert_close, assert_raises_naming
from fastconv import Tensor, functional as F, nn
from gradcheck import assert_vjp

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), ()])
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_and_its_gradient_match_oracle(shape, padding_idx, dtype):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((6, 4)).astype(dtype)
    idx = rng.integers(0, 6, shape)
    y = fastconv.embedding(idx, weight, padding_idx)
    assert y.dtype == dtype and y.shape == shape + (4,)
    assert_close(y, ref.embedding(idx, weight), dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gw = fastconv.embedding_backward(gy, idx, 6, padding_idx)
    assert_close(gw, ref.embedding_backward(gy, idx, 6, None if padding_idx is None else padding_idx % 6), dtype)


def test_embedding_gradient_by_central_differences_with_repeats():
    idx = np.array([[0, 3, 3], [5, 0, 3]])
    weight = np.random.default_rng(0).standard_normal((6, 3))
    gy = np.random.default_rng(1).standard_normal((2, 3, 3))
    assert_vjp(lambda w: fastconv.embedding(idx, w), weight, gy, fastconv.embedding_backward(gy, idx, 6))


def test_embedding_module_trains_every_row_but_padding():
    nn.manual_seed(0)
    layer = nn.Embedding(10, 3, padding_idx=0)
    assert np.array_equal(layer.weight.data[0], np.zeros(3))
    idx = Tensor(np.array([[1, 0, 4], [4, 4, 0]]))
    layer(idx).sum().backward()
    expected = np.zeros((10, 3))
    expected[1], expected[4] = 1, 3
    assert np.array_equal(layer.weight.grad, expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_embedding_torch_cross_check(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((9, 5)).astype(dtype)
    idx = rng.integers(0, 9, (4, 6))
    gy = rng.standard_normal((4, 6, 5)).astype(dtype)
    tw = torch.from_numpy(weight.copy()).requires_grad_()
    torch.nn.functional.embedding(torch.from_numpy(idx), tw, padding_idx=3).backward(torch.from_numpy(gy))
    w = Tensor(weight, requires_grad=True)
    F.embedding(idx, w, padding_idx=3).backward(gy)
    assert_close(w.grad, tw.grad.numpy(), dtype)


w6 = np.ones((6, 4))
ERRORS = [
    (lambda: fastconv.embedding(np.array([0, 6]), w6), ValueError, ["embedding", "input", "6", "[0, 6)"]),
    (lambda: fastconv.embedding(np.array([-1, 2]), w6), ValueError, ["embedding", "input", "-1"]),
    (lambda: fastconv.embedding(np.array([0.0, 1.0]), w6), TypeError, ["embedding", "input", "integer"]),
    (lambda: fastconv.embedding(np.array([0]), np.ones(6)), ValueError, ["embedding", "weight", "2-D"]),
    (lambda: fastconv.embedding(np.array([0]), w6, padding_idx=6), ValueError, ["embedding", "padding_idx"]),
    (lambda: fastconv.embedding_backward(np.ones((2, 4)), np.array([0, 1, 2]), 6), ValueError,
     ["embedding_backward", "grad_output"]),
    (lambda: nn.Embedding(0, 3), ValueError, ["Embedding", "num_embeddings"]),
    (lambda: nn.Embedding(5, 3, padding_idx=5), ValueError, ["Embedding", "padding_idx"]),
]


@pytest.mark.parametrize("call, exc, words", ERRORS, ids=[f"case{i}" for i in range(len(ERRORS))])
def test_bad_input_raises_a_clear_error(call, exc, words):
    assert_raises_naming(call, exc, words)
