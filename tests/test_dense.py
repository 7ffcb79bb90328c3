"""The dense layer (linear, linear_backward, matmul) on fastconv's GEMM,
against the float64 oracle on every ISA; the GEMM itself is test_gemm.py."""
import numpy as np
import pytest

from fastconv import dense as L
from conftest import assert_close, assert_raises_naming, _nan_empty
import reference as ref

DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def nan_linear_outputs(monkeypatch):
    monkeypatch.setattr(L, "_empty", _nan_empty)


def rand(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3), (50, 400), (7, 300), (1, 300), (3, 70), (5, 70)], ids=str)
def test_linear_and_its_gradients_match_oracle(shape, dtype, isa):
    out = 37
    x, w, b = rand(shape, dtype, 1), rand((out, shape[-1]), dtype, 2), rand(out, dtype, 3)
    expected = ref.linear(x, w, b)
    assert_close(L.linear(x, w, b), expected, dtype)
    assert_close(L.linear(x, w, None), ref.linear(x, w, None), dtype)
    assert_close(L.linear(x, w, b, activation="relu"), np.maximum(expected, 0), dtype)
    gy = rand(expected.shape, dtype, 4)
    gx, gw, gb = L.linear_backward(gy, x, w)
    rows, grows = x.reshape(-1, shape[-1]), gy.reshape(-1, out)
    assert_close(gx, ref.matmul(grows, w).reshape(shape), dtype)
    assert_close(gw, ref.matmul(grows.T, rows), dtype)
    assert_close(gb, grows.astype(np.float64).sum(axis=0), dtype)
    assert L.linear_backward(gy, x, w, needs=("weight",))[::2] == (None, None)


def test_matmul_and_empty_sizes():
    a, b = rand((5, 4), np.float64, 0), rand((4, 3), np.float64, 1)
    assert_close(L.matmul(a, b), ref.matmul(a, b), np.float64)
    # no features: y is the bias; no rows: an empty result and zero gradients
    assert_close(L.linear(np.ones((2, 0)), np.ones((3, 0)), [1.0, -2.0, 3.0], activation="relu"),
                 np.array([[1.0, 0.0, 3.0]] * 2), np.float64)
    gx, gw, gb = L.linear_backward(np.ones((0, 3)), np.ones((0, 4)), np.ones((3, 4)))
    assert gx.shape == (0, 4) and not gw.any() and gw.shape == (3, 4) and not gb.any()


def test_linear_errors_name_function_argument_and_values():
    x, w = np.ones((2, 3)), np.ones((4, 3))
    assert_raises_naming(lambda: L.linear(np.ones((2, 5)), w), ValueError, ["linear", "input", "(2, 5)", "(4, 3)"])
    assert_raises_naming(lambda: L.linear(x, np.ones(3)), ValueError, ["linear", "weight", "2-D"])
    assert_raises_naming(lambda: L.linear(x, w, np.ones(3)), ValueError, ["linear", "bias", "(4,)"])
    assert_raises_naming(lambda: L.linear(x, w, activation="gelu"), ValueError, ["linear", "activation", "gelu"])
    assert_raises_naming(lambda: L.linear_backward(np.ones((2, 5)), x, w), ValueError,
                         ["linear_backward", "grad_output", "(2, 5)", "(2, 4)"])
    assert_raises_naming(lambda: L.matmul(np.ones((2, 3)), np.ones((4, 2))), ValueError, ["matmul", "3", "4"])
    assert_raises_naming(lambda: L.linear(x.astype(complex), w), TypeError, ["linear", "input", "complex"])


def test_linear_threads_agree_bitwise(threads):
    x, w, b = rand((50, 6272), np.float32, 0), rand((1024, 6272), np.float32, 1), rand(1024, np.float32, 2)
    gy = rand((50, 1024), np.float32, 3)
    threads(1)
    one = [L.linear(x, w, b)] + list(L.linear_backward(gy, x, w))
    threads(2)
    two = [L.linear(x, w, b)] + list(L.linear_backward(gy, x, w))
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("rows", [1, 2, 3, 4])
def test_few_rows_by_dot_products_agree_bitwise_across_threads_and_keep_nan(rows, threads):
    """A linear layer of at most 4 rows runs as dot products over columns
    split between threads; ReLU keeps NaN."""
    x, w, b = rand((rows, 1000), np.float32, 0), rand((333, 1000), np.float32, 1), rand(333, np.float32, 2)
    x[0, 5] = np.nan
    threads(1)
    one = L.linear(x, w, b, activation="relu")
    threads(3)
    three = L.linear(x, w, b, activation="relu")
    assert np.array_equal(one, three, equal_nan=True)
    assert np.isnan(one[0]).all() and not np.isnan(one[1:]).any()
    assert_close(one[1:], np.maximum(ref.linear(x[1:], w, b), 0), np.float32)

