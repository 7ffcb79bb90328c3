"""Dense layers on NumPy arrays: linear (x W^T + b, as
torch.nn.functional.linear) and its gradients, and 2-D matmul, all on
fastconv's own GEMM. NumPy's BLAS is never called: its thread pool would
fight fastconv's OpenMP team for the same cores, slowing whatever runs
next. Validation lives in _validate; arithmetic in csrc/gemm.c via _C."""
import math

import numpy as np

from . import _C
from . import _validate as V

_empty = np.empty  # tests swap in a NaN-filled allocator to catch unwritten outputs


def _gemm(m, n, k, a, trans_a, b, trans_b, bias, activation, dtype):
    """act(op(a) @ op(b) + bias) as a new (m, n) array."""
    c = _empty((m, n), dtype)
    if c.size and k:
        _C.gemm(m, n, k, V.flat(a, dtype), trans_a, V.flat(b, dtype), trans_b, V.flat(bias, dtype), activation,
                c.reshape(-1))
    elif c.size:  # an empty sum
        c[...] = 0 if bias is None else bias
        if activation == "relu":
            np.maximum(c, 0, out=c)
    return c


def _linear_args(fn, input, weight):
    x = V.array(fn, "input", input)
    w = V.array(fn, "weight", weight)
    V.ndim(fn, "weight", w, 2, "2-D (out_features, in_features)")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"{fn}: input has shape {x.shape} but weight {w.shape} expects {w.shape[1]} "
                         f"features in its last axis")
    return x, w, x.reshape(math.prod(x.shape[:-1]), w.shape[1])


def linear(input, weight, bias=None, *, activation=None):
    """input (..., in_features) @ weight.T + bias, weight (out_features,
    in_features); activation="relu" applies max(y, 0) in the same pass."""
    fn = "linear"
    x, w, x2 = _linear_args(fn, input, weight)
    b = V.bias(fn, bias, w.shape[0])
    activation = V.activation(fn, activation)
    dtype = V.result_dtype(*[a for a in (x, w, b) if a is not None])
    y = _gemm(x2.shape[0], w.shape[0], w.shape[1], x2, False, w, True, b, activation, dtype)
    return y.reshape(x.shape[:-1] + (w.shape[0],))


def linear_backward(grad_output, input, weight, *, needs=V.NEEDS):
    """Gradients of linear (without activation) for upstream grad_output:
    (grad_input, grad_weight, grad_bias), each None unless named in needs."""
    fn = "linear_backward"
    x, w, x2 = _linear_args(fn, input, weight)
    gy = V.array(fn, "grad_output", grad_output)
    V.grad_shape(fn, gy, x.shape[:-1] + (w.shape[0],))
    needs = V.needs(fn, needs)
    dtype = V.result_dtype(gy, x, w)
    (rows, k), out = x2.shape, w.shape[0]
    g2 = gy.reshape(rows, out)
    gx = _gemm(rows, k, out, g2, False, w, False, None, None, dtype).reshape(x.shape) if "input" in needs else None
    gw = _gemm(out, k, rows, g2, True, x2, False, None, None, dtype) if "weight" in needs else None
    gb = None
    if "bias" in needs:
        gb = _empty((out,), dtype)
        if rows and out:
            _C.bias_grad(rows, out, V.flat(g2, dtype), gb)
        else:
            gb[...] = 0
    return gx, gw, gb


def matmul(a, b):
    """a (m, k) @ b (k, n) for 2-D arrays, on fastconv's GEMM."""
    fn = "matmul"
    a, b = V.array(fn, "a", a), V.array(fn, "b", b)
    V.ndim(fn, "a", a, 2, "2-D (m, k)")
    V.ndim(fn, "b", b, 2, "2-D (k, n)")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"{fn}: a has shape {a.shape} and b {b.shape}: inner sizes {a.shape[1]} != {b.shape[0]}")
    # A transposed view (a.T of a C-contiguous array, as a backward's
    # operands are) is read through the GEMM's transpose flag, not copied.
    trans_a, trans_b = _transposed(a), _transposed(b)
    return _gemm(a.shape[0], b.shape[1], a.shape[1], a.T if trans_a else a, trans_a, b.T if trans_b else b, trans_b,
                 None, None, V.result_dtype(a, b))


def _transposed(m):
    return m.flags.f_contiguous and not m.flags.c_contiguous and m.dtype.isnative
