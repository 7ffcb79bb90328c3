"""Local response normalization (Krizhevsky et al. 2012, AlexNet) on NumPy
arrays (N, C, ...), forward and backward, with PyTorch's semantics:

    d[c] = k + alpha / size * sum(x[c']^2 for c' in c - size//2 ... c + (size-1)//2)
    y[c] = x[c] / d[c]^beta

Channels past either end count as zeros. A handful of passes over memory
per call, each a NumPy expression; AlexNet runs it twice per image."""

from . import _validate as V


def _args(fn, input, size, alpha, beta, k):
    x = V.array(fn, "input", input)
    if x.ndim < 3:
        raise ValueError(f"{fn}: input must be at least 3-D (N, C, ...), got shape {x.shape}")
    size = V.integer(fn, "size", size, 1)
    alpha, beta, k = V.real(fn, "alpha", alpha), V.real(fn, "beta", beta), V.real(fn, "k", k)
    return x.astype(V.result_dtype(x), copy=False), size, alpha, beta, k


def _window_sum(a, before, after):
    """out[:, c] = sum of a[:, c - before ... c + after], clipped to the channels."""
    out = a.copy()
    c = a.shape[1]
    for o in range(1, min(before, c - 1) + 1):
        out[:, o:] += a[:, :c - o]
    for o in range(1, min(after, c - 1) + 1):
        out[:, :c - o] += a[:, o:]
    return out


def _denominator(x, size, alpha, k):
    """k + alpha * (the window's mean of x^2): the d of the formula above."""
    d = _window_sum(x * x, size // 2, (size - 1) // 2)
    d *= alpha / size
    d += k
    return d


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """As torch.nn.functional.local_response_norm."""
    x, size, alpha, beta, k = _args("local_response_norm", input, size, alpha, beta, k)
    return x * _denominator(x, size, alpha, k) ** -beta


def local_response_norm_backward(grad_output, input, size, alpha=1e-4, beta=0.75, k=1.0):
    """The input's gradient: g / d^beta - (2 alpha beta / size) x * S, where S
    sums g x / d^(beta + 1) over the channels whose window holds x's."""
    fn = "local_response_norm_backward"
    x, size, alpha, beta, k = _args(fn, input, size, alpha, beta, k)
    g = V.array(fn, "grad_output", grad_output)
    V.grad_shape(fn, g, x.shape)
    g = g.astype(V.result_dtype(g, x), copy=False)
    d = _denominator(x, size, alpha, k)
    scale = d ** -beta
    t = g * x * scale / d
    return g * scale - (2 * alpha * beta / size) * x * _window_sum(t, (size - 1) // 2, size // 2)
