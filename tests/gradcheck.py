"""Central differences in float64, as a vector-Jacobian product."""
import numpy as np

EPS = 1e-6


def numerical_vjp(f, x, upstream, eps=EPS):
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


def assert_vjp(f, x, upstream, analytic, rtol=1e-6):
    """Fails, naming the worst element, unless `analytic` matches central
    differences. The absolute slack is the differences' own rounding noise:
    float64 error in <f(x), upstream>, divided by 2 eps, times a margin."""
    numeric = numerical_vjp(f, x, upstream)
    noise = 1e-16 * np.sum(np.abs(f(np.asarray(x, np.float64)) * upstream)) / (2 * EPS)
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=1e-9 + 50 * noise)
