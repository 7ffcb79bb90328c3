"""Central differences in float64, as a vector-Jacobian product."""
import numpy as np


def numerical_vjp(f, x, upstream, eps=1e-6):
    """d<f(x), upstream>/dx by central differences, one element at a time."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    flat, g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = np.sum(f(x) * upstream)
        flat[i] = old - eps
        minus = np.sum(f(x) * upstream)
        flat[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return grad


def assert_vjp(f, x, upstream, analytic, rtol=1e-6, atol=1e-8):
    """Fails, naming the worst element, unless `analytic` matches central differences."""
    numeric = numerical_vjp(f, x, upstream)
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol * max(1.0, np.abs(numeric).max()))
