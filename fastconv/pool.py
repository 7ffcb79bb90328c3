"""Pooling on NumPy arrays (N, C, H, W) or (C, H, W), forward and backward,
with PyTorch's semantics. Validation lives in _validate; loops in csrc/pool.c."""
import numpy as np

from . import _C
from . import _validate as V
from .layout import channels_last

_empty = np.empty  # tests swap in a NaN-filled allocator to catch unwritten outputs
_LAYOUT = "3-D (C, H, W) or 4-D (N, C, H, W)"
_ALGORITHMS = {"auto": "direct", "reference": "reference"}


def _algorithm(fn, value):
    if value not in _ALGORITHMS:
        raise ValueError(f"{fn}: algorithm must be one of {tuple(_ALGORITHMS)}, got {value!r}")
    return _ALGORITHMS[value]


def _input(fn, value):
    x = V.array(fn, "input", value)
    V.ndim(fn, "input", x, (3, 4), _LAYOUT)
    return x


def _c_shape(shape, window, out, count_include_pad=True, divisor=0):
    kernel, stride, padding, dilation = window
    planes = int(np.prod(shape[:-2]))
    return (planes, shape[-2], shape[-1], kernel[0], kernel[1], stride[0], stride[1], padding[0],
            padding[1], dilation[0], dilation[1], out[0], out[1], int(bool(count_include_pad)), divisor)


def _pool_window(fn, shape, kernel_size, stride, padding, dilation, ceil_mode):
    k, s, p, d, out_h, out_w = V.pool_window(fn, shape[-2:], kernel_size, stride, padding, dilation, ceil_mode)
    return (k, s, p, d), (out_h, out_w)


@channels_last(2, ('x', 'x'))
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, algorithm="auto"):
    """Max pooling; padding is -inf. With return_indices, also the int64 flat
    positions h * W + w of each maximum within its input plane."""
    fn = "max_pool2d"
    return _max_pool(fn, _input(fn, input), kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                     algorithm)


def _max_pool(fn, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, algorithm):
    window, out = _pool_window(fn, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    algorithm = _algorithm(fn, algorithm)
    dtype = V.result_dtype(x)
    y = _empty(x.shape[:-2] + out, dtype)
    indices = _empty(y.shape, np.int64) if return_indices else None
    if y.size:
        _C.max_pool2d_forward(_c_shape(x.shape, window, out), algorithm, V.flat(x, dtype), y.reshape(-1),
                              None if indices is None else indices.reshape(-1))
    return (y, indices) if return_indices else y


@channels_last(2, ('x',))
def max_pool2d_backward(grad_output, indices, input_shape):
    """Scatters grad_output to the positions max_pool2d returned; an index
    outside its plane is a ValueError."""
    fn = "max_pool2d_backward"
    input_shape = V.shape(fn, "input_shape", input_shape, (3, 4))
    gy = V.array(fn, "grad_output", grad_output)
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{fn}: indices must be an integer array, got dtype {idx.dtype}")
    if gy.ndim != len(input_shape) or gy.shape[:-2] != input_shape[:-2]:
        raise ValueError(f"{fn}: grad_output has shape {gy.shape}, which does not pool input_shape {input_shape}")
    if idx.shape != gy.shape:
        raise ValueError(f"{fn}: indices has shape {idx.shape} but grad_output has shape {gy.shape}")
    dtype = V.result_dtype(gy)
    gx = _empty(input_shape, dtype)
    if gx.size and gy.size:
        window = ((1, 1), (1, 1), (0, 0), (1, 1))
        _C.max_pool2d_backward(_c_shape(input_shape, window, gy.shape[-2:]), V.flat(gy, dtype),
                               V.flat(idx, np.int64), gx.reshape(-1))
    else:
        gx[...] = 0
    return gx


def _avg_args(fn, shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """-> the C shape; TensorFlow's padding forms never count the padding."""
    window, out = _pool_window(fn, shape, kernel_size, stride, padding, 1, ceil_mode)
    divisor = 0 if divisor_override is None else V.integer(fn, "divisor_override", divisor_override, 1)
    count_include_pad = count_include_pad and not isinstance(padding, str)
    return _c_shape(shape, window, out, count_include_pad, divisor), out


@channels_last(2, ('x',))
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, algorithm="auto"):
    """Average pooling with PyTorch's divisor rules."""
    fn = "avg_pool2d"
    x = _input(fn, input)
    c_shape, out = _avg_args(fn, x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                             divisor_override)
    algorithm = _algorithm(fn, algorithm)
    dtype = V.result_dtype(x)
    y = _empty(x.shape[:-2] + out, dtype)
    if y.size:
        _C.avg_pool2d_forward(c_shape, algorithm, V.flat(x, dtype), y.reshape(-1))
    return y


@channels_last(2, ('x',))
def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """The adjoint of avg_pool2d with the same parameters."""
    fn = "avg_pool2d_backward"
    input_shape = V.shape(fn, "input_shape", input_shape, (3, 4))
    c_shape, out = _avg_args(fn, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                             divisor_override)
    gy = V.array(fn, "grad_output", grad_output)
    V.grad_shape(fn, gy, input_shape[:-2] + out)
    dtype = V.result_dtype(gy)
    gx = _empty(input_shape, dtype)
    if gx.size:
        _C.avg_pool2d_backward(c_shape, V.flat(gy, dtype), gx.reshape(-1))
    return gx


def _adaptive_out(fn, shape, output_size):
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"{fn}: output_size must be an int or 2 ints (or None), got {output_size!r}")
        sizes = output_size
    else:
        sizes = (output_size, output_size)
    out = tuple(size if o is None else V.integer(fn, "output_size", o, 1) for o, size in zip(sizes, shape[-2:]))
    if min(shape[-2:]) < 1:
        raise ValueError(f"{fn}: input has an empty spatial dimension, shape {tuple(shape)}")
    return out


@channels_last(2, ('x',))
def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size, as torch's adaptive_avg_pool2d."""
    fn = "adaptive_avg_pool2d"
    x = _input(fn, input)
    out = _adaptive_out(fn, x.shape, output_size)
    dtype = V.result_dtype(x)
    y = _empty(x.shape[:-2] + out, dtype)
    if y.size:
        _C.adaptive_avg_pool2d_forward(_c_shape(x.shape, ((1, 1),) * 4, out), V.flat(x, dtype), y.reshape(-1))
    return y


@channels_last(2, ('x',))
def adaptive_avg_pool2d_backward(grad_output, input_shape):
    fn = "adaptive_avg_pool2d_backward"
    input_shape = V.shape(fn, "input_shape", input_shape, (3, 4))
    gy = V.array(fn, "grad_output", grad_output)
    if gy.ndim != len(input_shape):
        raise ValueError(f"{fn}: grad_output has shape {gy.shape} but input_shape is {input_shape}")
    out = _adaptive_out(fn, input_shape, gy.shape[-2:])
    V.grad_shape(fn, gy, input_shape[:-2] + out)
    dtype = V.result_dtype(gy)
    gx = _empty(input_shape, dtype)
    if gx.size:
        _C.adaptive_avg_pool2d_backward(_c_shape(input_shape, ((1, 1),) * 4, out), V.flat(gy, dtype),
                                        gx.reshape(-1))
    return gx


# -- one spatial axis: (N, C, L) or (C, L) pooled as planes of height 1 ------

_LAYOUT_1D = "2-D (C, L) or 3-D (N, C, L)"


def _input_1d(fn, value):
    x = V.array(fn, "input", value)
    V.ndim(fn, "input", x, (2, 3), _LAYOUT_1D)
    return x[..., None, :]


def _along_length(fn, name, value, minimum):
    """A 1-D parameter (an int or 1 int) as the 2-D one of a height-1 plane."""
    if value is None or isinstance(value, str):
        return value
    return (1 if minimum else 0,) + V.ints(fn, name, value, 1, minimum)


@channels_last(1, ('x', 'x'))
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling along the last axis; indices are positions along it."""
    fn = "max_pool1d"
    x = _input_1d(fn, input)
    out = _max_pool(fn, x, _along_length(fn, "kernel_size", kernel_size, 1), _along_length(fn, "stride", stride, 1),
                    _along_length(fn, "padding", padding, 0), _along_length(fn, "dilation", dilation, 1), ceil_mode,
                    return_indices, "auto")
    return tuple(a[..., 0, :] for a in out) if return_indices else out[..., 0, :]


@channels_last(1, ('x',))
def max_pool1d_backward(grad_output, indices, input_shape):
    fn = "max_pool1d_backward"
    input_shape = V.shape(fn, "input_shape", input_shape, (2, 3))
    gy, idx = np.asarray(grad_output), np.asarray(indices)
    if gy.ndim != len(input_shape) or idx.ndim != len(input_shape):
        raise ValueError(f"{fn}: grad_output {gy.shape} and indices {idx.shape} must have input_shape's "
                         f"{len(input_shape)} dimensions")
    plane = input_shape[:-1] + (1, input_shape[-1])
    return max_pool2d_backward(gy[..., None, :], idx[..., None, :], plane)[..., 0, :]


@channels_last(1, ('x',))
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    fn = "avg_pool1d"
    x = _input_1d(fn, input)
    return avg_pool2d(x, _along_length(fn, "kernel_size", kernel_size, 1), _along_length(fn, "stride", stride, 1),
                      _along_length(fn, "padding", padding, 0), ceil_mode, count_include_pad)[..., 0, :]


@channels_last(1, ('x',))
def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    fn = "avg_pool1d_backward"
    input_shape = V.shape(fn, "input_shape", input_shape, (2, 3))
    gy = V.array(fn, "grad_output", grad_output)
    V.ndim(fn, "grad_output", gy, len(input_shape), f"{len(input_shape)}-D like input_shape")
    return avg_pool2d_backward(gy[..., None, :], input_shape[:-1] + (1, input_shape[-1]),
                               _along_length(fn, "kernel_size", kernel_size, 1),
                               _along_length(fn, "stride", stride, 1), _along_length(fn, "padding", padding, 0),
                               ceil_mode, count_include_pad)[..., 0, :]


# -- adaptive max pooling -------------------------------------------------------

def _adaptive_bounds(size, out):
    """PyTorch's adaptive windows: output i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


@channels_last(2, ('x', 'x'))
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling to a fixed output size, as torch's adaptive_max_pool2d;
    indices are flat positions h * W + w, for max_pool2d_backward. With
    output_size 1, the max over all positions (max-over-time for text)."""
    fn = "adaptive_max_pool2d"
    x = _input(fn, input)
    out = _adaptive_out(fn, x.shape, output_size)
    dtype = V.result_dtype(x)
    x = x.astype(dtype, copy=False)
    h, w = x.shape[-2:]
    y = _empty(x.shape[:-2] + out, dtype)
    indices = _empty(y.shape, np.int64)
    for i, (h0, h1) in enumerate(_adaptive_bounds(h, out[0])):
        for j, (w0, w1) in enumerate(_adaptive_bounds(w, out[1])):
            window = x[..., h0:h1, w0:w1].reshape(x.shape[:-2] + (-1,))
            # NaN wins, as in max_pool2d: argmax of the NaN mask where there is one
            arg = np.where(np.isnan(window).any(-1), np.isnan(window).argmax(-1), window.argmax(-1))
            y[..., i, j] = np.take_along_axis(window, arg[..., None], -1)[..., 0]
            indices[..., i, j] = (h0 + arg // (w1 - w0)) * w + w0 + arg % (w1 - w0)
    return (y, indices) if return_indices else y


@channels_last(1, ('x', 'x'))
def adaptive_max_pool1d(input, output_size, return_indices=False):
    fn = "adaptive_max_pool1d"
    x = _input_1d(fn, input)
    out = adaptive_max_pool2d(x, (1, V.ints(fn, "output_size", output_size, 1, 1)[0]), return_indices)
    return tuple(a[..., 0, :] for a in out) if return_indices else out[..., 0, :]

