"""ReLU, dropout and softmax cross-entropy as single C passes, against
NumPy written out by hand."""
import numpy as np
import pytest

from fastconv import elementwise as E
from conftest import assert_close, assert_raises_naming
import reference as ref

DTYPES = [np.float32, np.float64]
SIZES = [1, 17, 16384, 40000]  # one block of 16384 elements, and several


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
def test_relu_and_backward(n, dtype, isa):
    x = np.random.default_rng(0).standard_normal(n).astype(dtype)
    x[::7] = 0
    x[::11] = np.nan
    y = E.relu(x)
    expected = np.where(np.isnan(x), np.nan, np.where(x > 0, x, 0))
    np.testing.assert_array_equal(y, expected.astype(dtype))
    g = np.random.default_rng(1).standard_normal(n).astype(dtype)
    np.testing.assert_array_equal(E.relu_backward(g, y), np.where(y > 0, g, 0).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_dropout_keeps_one_minus_p_scaled_and_its_backward_uses_the_same_mask(dtype, threads, isa):
    x = np.random.default_rng(0).uniform(1, 2, (100, 1000)).astype(dtype)
    for p in (0.1, 0.25, 0.5, 0.9):
        y = E.dropout(x, p, seed=12345)
        kept = y != 0
        assert abs(kept.mean() - (1 - p)) < 0.01, p
        np.testing.assert_allclose(y[kept], x[kept] / dtype(1 - p), rtol=1e-6)
        g = np.ones_like(x)
        np.testing.assert_array_equal(E.dropout(g, p, seed=12345) != 0, kept)
    same, other = E.dropout(x, 0.5, seed=7), E.dropout(x, 0.5, seed=8)
    assert np.array_equal(same, E.dropout(x, 0.5, seed=7)) and not np.array_equal(same, other)
    # neighbouring elements and neighbouring seeds are not correlated
    a, b = E.dropout(np.ones(200000), 0.5, seed=1) != 0, E.dropout(np.ones(200000), 0.5, seed=2) != 0
    assert abs((a[1:] == a[:-1]).mean() - 0.5) < 0.01 and abs((a == b).mean() - 0.5) < 0.01
    threads(1)
    one = E.dropout(x, 0.3, seed=99)
    threads(2)
    assert np.array_equal(one, E.dropout(x, 0.3, seed=99))
    assert np.array_equal(E.dropout(x, 0.0, seed=3), x)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("rows,classes", [(1, 1), (5, 4), (50, 10), (3, 1000)])
def test_cross_entropy_loss_and_gradient_match_oracle(rows, classes, dtype):
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((rows, classes)) * 5).astype(dtype)
    labels = rng.integers(0, classes, rows)
    loss, grad = E.cross_entropy(logits, labels)
    expected_loss, expected_grad = ref.cross_entropy(logits, labels)
    assert loss.dtype == dtype and abs(float(loss) - expected_loss) <= 1e-6 * max(1, abs(expected_loss))
    assert_close(grad, expected_grad, dtype)


def test_cross_entropy_is_stable_and_rejects_bad_labels():
    loss, grad = E.cross_entropy(np.array([[1000.0, 0.0], [0.0, -1000.0]]), np.array([1, 0]))
    assert np.isfinite(loss) and np.isfinite(grad).all() and abs(loss - 500) < 1e-9
    assert np.isnan(E.cross_entropy(np.ones((0, 3)), np.ones(0, int))[0])
    logits = np.ones((2, 3))
    assert_raises_naming(lambda: E.cross_entropy(logits, [0, 3]), ValueError, ["cross_entropy", "[0, 3)", "0..3"])
    assert_raises_naming(lambda: E.cross_entropy(logits, [0, -1]), ValueError, ["cross_entropy", "-1"])
    assert_raises_naming(lambda: E.cross_entropy(logits, [0.0, 1.0]), TypeError, ["cross_entropy", "integers"])
    assert_raises_naming(lambda: E.cross_entropy(logits, [0]), ValueError, ["cross_entropy", "(2, 3)", "(1,)"])


def test_dropout_and_relu_errors():
    assert_raises_naming(lambda: E.dropout(np.ones(3), 1.0, 0), ValueError, ["dropout", "p", "1.0"])
    assert_raises_naming(lambda: E.dropout(np.ones(3), 0.5, -1), ValueError, ["dropout", "seed", "-1"])
    assert_raises_naming(lambda: E.dropout(np.ones(3), 0.5, 2 ** 64), ValueError, ["dropout", "seed"])
    assert_raises_naming(lambda: E.relu_backward(np.ones(3), np.ones(4)), ValueError, ["relu_backward", "(3,)", "(4,)"])
