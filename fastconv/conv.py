"""Convolution on NumPy arrays: conv2d and its gradients, conv1d,
conv_transpose2d (conv2d's adjoint, built from the same kernels), and
unfold/fold. Validation lives in _validate; arithmetic in csrc/ via _C."""
import numpy as np

from . import _C
from . import _validate as V
from .layout import channels_last

_empty = np.empty  # tests swap in a NaN-filled allocator to catch unwritten outputs


def _grad_bias(grad_output, dtype):
    n, c, h, w = grad_output.shape
    gb = _empty((c,), dtype)
    if grad_output.size:
        _C.conv2d_grad_bias(n, c, h * w, V.flat(grad_output, dtype), gb)
    else:
        gb[...] = 0
    return gb


def _conv_forward(g, algorithm, x, w, b, dtype, activation=None):
    y = _empty(g.output_shape, dtype)
    if y.size:
        _C.conv2d_forward(g.c_shape(), algorithm, V.flat(x, dtype),
                          V.flat(w, dtype), V.flat(b, dtype), activation, y.reshape(-1))
    return y


def _conv_grad_input(g, algorithm, gy, w, dtype):
    gx = _empty(g.input_shape, dtype)
    if gx.size:
        _C.conv2d_grad_input(g.c_shape(), algorithm, V.flat(gy, dtype),
                             V.flat(w, dtype), gx.reshape(-1))
    return gx


def _conv_grad_weight(g, algorithm, gy, x, dtype):
    gw = _empty(g.weight_shape, dtype)
    if g.n:
        _C.conv2d_grad_weight(g.c_shape(), algorithm, V.flat(gy, dtype),
                              V.flat(x, dtype), gw.reshape(-1))
    else:
        gw[...] = 0
    return gw


def _conv_forward_grad_weight(g, algorithm, x, w, gy, dtype):
    """conv2d's forward of x and its weight gradient for gy: one pass over
    x where the kernels share it (a transposed conv's two gradients)."""
    if not g.n or algorithm not in _C.CONV_ALGORITHMS["conv2d_forward_grad_weight"]:
        return _conv_forward(g, algorithm, x, w, None, dtype), _conv_grad_weight(g, algorithm, gy, x, dtype)
    y, gw = _empty(g.output_shape, dtype), _empty(g.weight_shape, dtype)
    _C.conv2d_forward_grad_weight(g.c_shape(), algorithm, V.flat(x, dtype), V.flat(w, dtype), V.flat(gy, dtype),
                                  y.reshape(-1), gw.reshape(-1))
    return y, gw


def _conv2d_args(fn, input, weight, stride, padding, dilation, groups):
    x = V.array(fn, "input", input)
    w = V.array(fn, "weight", weight)
    V.ndim(fn, "input", x, 4, "4-D (N, C_in, H, W)")
    V.ndim(fn, "weight", w, 4, "4-D (C_out, C_in/groups, kH, kW)")
    return x, w, V.conv_geometry(fn, x.shape, w.shape, stride, padding, dilation, groups)


@channels_last(2, ('x',))
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto",
           activation=None):
    """2-D convolution (cross-correlation, as in PyTorch) of NCHW `input`
    with `weight` (C_out, C_in/groups, kH, kW); see docs/API.md for padding forms.
    activation="relu" applies max(y, 0) in the same pass."""
    fn = "conv2d"
    x, w, g = _conv2d_args(fn, input, weight, stride, padding, dilation, groups)
    b = V.bias(fn, bias, g.c_out)
    algorithm = V.algorithm(fn, algorithm, g)
    activation = V.activation(fn, activation)
    return _conv_forward(g, algorithm, x, w, b, V.result_dtype(*[a for a in (x, w, b) if a is not None]),
                         activation)


@channels_last(2, ('x', 'w', None))
def conv2d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    needs=V.NEEDS, algorithm="auto"):
    """Gradients of conv2d for upstream `grad_output`: (grad_input,
    grad_weight, grad_bias), each None unless named in `needs`."""
    fn = "conv2d_backward"
    x, w, g = _conv2d_args(fn, input, weight, stride, padding, dilation, groups)
    gy = V.array(fn, "grad_output", grad_output)
    V.grad_shape(fn, gy, g.output_shape)
    return _conv_backward(fn, g, needs, algorithm, gy, x, w)


def _conv_backward(fn, g, needs, algorithm, gy, x, w):
    needs = V.needs(fn, needs)
    algorithm = V.algorithm(fn, algorithm, g)
    dtype = V.result_dtype(gy, x, w)
    return (_conv_grad_input(g, algorithm, gy, w, dtype) if "input" in needs else None,
            _conv_grad_weight(g, algorithm, gy, x, dtype) if "weight" in needs else None,
            _grad_bias(gy, dtype) if "bias" in needs else None)


def _conv1d_as_2d(fn, input, weight, stride, padding, dilation, groups):
    x = V.array(fn, "input", input)
    w = V.array(fn, "weight", weight)
    V.ndim(fn, "input", x, 3, "3-D (N, C_in, L)")
    V.ndim(fn, "weight", w, 3, "3-D (C_out, C_in/groups, k)")
    s, = V.ints(fn, "stride", stride, 1, 1)
    d, = V.ints(fn, "dilation", dilation, 1, 1)
    pad, = V.conv_padding(fn, padding, (x.shape[2],), (w.shape[2],), (s,), (d,))
    g = V.conv_geometry(fn, x.shape[:2] + (1,) + x.shape[2:], w.shape[:2] + (1,) + w.shape[2:],
                        (1, s), ((0, 0), pad), (1, d), groups, dims=("height", "length"))
    return x[:, :, None, :], w[:, :, None, :], g


@channels_last(1, ('x',))
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto"):
    """1-D convolution of (N, C_in, L) by (C_out, C_in/groups, k): conv2d with height 1."""
    fn = "conv1d"
    x, w, g = _conv1d_as_2d(fn, input, weight, stride, padding, dilation, groups)
    b = V.bias(fn, bias, g.c_out)
    algorithm = V.algorithm(fn, algorithm, g)
    y = _conv_forward(g, algorithm, x, w, b, V.result_dtype(*[a for a in (x, w, b) if a is not None]))
    return y[:, :, 0, :]


@channels_last(1, ('x', 'w', None))
def conv1d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    needs=V.NEEDS, algorithm="auto"):
    """Gradients of conv1d, as conv2d_backward."""
    fn = "conv1d_backward"
    x, w, g = _conv1d_as_2d(fn, input, weight, stride, padding, dilation, groups)
    gy = V.array(fn, "grad_output", grad_output)
    V.grad_shape(fn, gy, (g.n, g.c_out, g.out_w))
    gx, gw, gb = _conv_backward(fn, g, needs, algorithm, gy[:, :, None, :], x, w)
    return (None if gx is None else gx[:, :, 0, :], None if gw is None else gw[:, :, 0, :], gb)


def _transpose_geometry(fn, input, weight, stride, padding, output_padding, groups, dilation):
    """The conv2d whose input gradient conv_transpose2d is: its input is
    our output, its output our input, its weight ours."""
    x = V.array(fn, "input", input)
    w = V.array(fn, "weight", weight)
    V.ndim(fn, "input", x, 4, "4-D (N, C_in, H, W)")
    V.ndim(fn, "weight", w, 4, "4-D (C_in, C_out/groups, kH, kW)")
    n, c_in, h, wd = x.shape
    if w.shape[0] != c_in:
        raise ValueError(f"{fn}: input has {c_in} channels but weight.shape[0]={w.shape[0]}")
    groups = V.integer(fn, "groups", groups, 1)
    stride = V.ints(fn, "stride", stride, 2, 1)
    dilation = V.ints(fn, "dilation", dilation, 2, 1)
    pad = V.ints(fn, "padding", padding, 2, 0)
    out_pad = V.ints(fn, "output_padding", output_padding, 2, 0)
    out = []
    for dim, size, k, s, p, d, op in zip(("height", "width"), (h, wd), w.shape[2:], stride, pad,
                                         dilation, out_pad):
        if op >= s and op >= d:
            raise ValueError(f"{fn}: output_padding {op} must be smaller than stride {s} or dilation {d} ({dim})")
        size_out = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        if size_out < 1:
            raise ValueError(f"{fn}: output {dim} would be {size_out}: (H-1)*stride - 2*padding + "
                             f"dilation*(k-1) + output_padding + 1 with H={size}, stride={s}, "
                             f"padding={p}, k={k}, dilation={d}, output_padding={op}")
        out.append(size_out)
    if c_in % groups:
        raise ValueError(f"{fn}: groups={groups} does not divide the {c_in} input channels")
    if min(w.shape) < 1:
        raise ValueError(f"{fn}: weight has an empty dimension, shape {w.shape}")
    g = V.ConvGeometry(n, w.shape[1] * groups, out[0], out[1], c_in, groups, w.shape[2], w.shape[3],
                       stride, ((pad[0], pad[0] - out_pad[0]), (pad[1], pad[1] - out_pad[1])),
                       dilation, h, wd)
    return x, w, g


@channels_last(2, ('x',))
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, algorithm="auto"):
    """Transposed convolution: the adjoint of conv2d with the same parameters;
    weight is (C_in, C_out/groups, kH, kW)."""
    fn = "conv_transpose2d"
    x, w, g = _transpose_geometry(fn, input, weight, stride, padding, output_padding, groups, dilation)
    b = V.bias(fn, bias, g.c_in)
    algorithm = V.algorithm(fn, algorithm, g)
    y = _conv_grad_input(g, algorithm, x, w, V.result_dtype(*[a for a in (x, w, b) if a is not None]))
    if b is not None:
        y += b.astype(y.dtype)[:, None, None]
    return y


@channels_last(2, ('x', 'w', None))
def conv_transpose2d_backward(grad_output, input, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, needs=V.NEEDS, algorithm="auto"):
    """Gradients of conv_transpose2d: conv2d forward for the input, conv2d's
    weight gradient with the roles of input and grad_output swapped."""
    fn = "conv_transpose2d_backward"
    x, w, g = _transpose_geometry(fn, input, weight, stride, padding, output_padding, groups, dilation)
    gy = V.array(fn, "grad_output", grad_output)
    V.grad_shape(fn, gy, g.input_shape)
    needs = V.needs(fn, needs)
    algorithm = V.algorithm(fn, algorithm, g)
    dtype = V.result_dtype(gy, x, w)
    if "input" in needs and "weight" in needs:
        gx, gw = _conv_forward_grad_weight(g, algorithm, gy, w, x, dtype)
    else:
        gx = _conv_forward(g, algorithm, gy, w, None, dtype) if "input" in needs else None
        gw = _conv_grad_weight(g, algorithm, x, gy, dtype) if "weight" in needs else None
    return gx, gw, _grad_bias(gy, dtype) if "bias" in needs else None


def _unfold_geometry(fn, input_shape, kernel_size, dilation, padding, stride):
    kh, kw = V.ints(fn, "kernel_size", kernel_size, 2, 1)
    pad = V.ints(fn, "padding", padding, 2, 0)
    return V.conv_geometry(fn, input_shape, (1, input_shape[1], kh, kw), stride, pad, dilation, 1)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: (N, C, H, W) -> (N, C*kH*kW, L), as torch.nn.functional.unfold."""
    fn = "unfold"
    x = V.array(fn, "input", input)
    V.ndim(fn, "input", x, 4, "4-D (N, C, H, W)")
    g = _unfold_geometry(fn, x.shape, kernel_size, dilation, padding, stride)
    dtype = V.result_dtype(x)
    cols = _empty((g.n, g.c_in * g.kh * g.kw, g.out_h * g.out_w), dtype)
    if cols.size:
        _C.unfold(g.c_shape(), V.flat(x, dtype), cols.reshape(-1))
    return cols


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im, the adjoint of unfold: (N, C*kH*kW, L) -> (N, C, H, W), summing overlaps."""
    fn = "fold"
    cols = V.array(fn, "input", input)
    V.ndim(fn, "input", cols, 3, "3-D (N, C*kH*kW, L)")
    h, w = V.ints(fn, "output_size", output_size, 2, 1)
    kh, kw = V.ints(fn, "kernel_size", kernel_size, 2, 1)
    n, rows, length = cols.shape
    if rows % (kh * kw):
        raise ValueError(f"{fn}: input.shape[1]={rows} is not a multiple of kH*kW={kh * kw}")
    g = _unfold_geometry(fn, (n, rows // (kh * kw), h, w), (kh, kw), dilation, padding, stride)
    if length != g.out_h * g.out_w:
        raise ValueError(f"{fn}: input.shape[2]={length} but output_size {(h, w)} with these "
                         f"parameters gives {g.out_h}x{g.out_w}={g.out_h * g.out_w} blocks")
    dtype = V.result_dtype(cols)
    x = _empty(g.input_shape, dtype)
    if x.size:
        _C.fold(g.c_shape(), V.flat(cols, dtype), x.reshape(-1))
    return x
