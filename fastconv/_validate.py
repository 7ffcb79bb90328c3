"""Validation and normalization of every public argument, in one place.

Each check raises ValueError (wrong shape, count or value) or TypeError
(wrong type) with a message naming the function, the argument and the
values, so that nothing the C kernels receive can make them misbehave.
"""
import operator
from dataclasses import dataclass

import numpy as np


def array(fn, name, value):
    """numpy.asarray, refusing dtypes fastconv cannot compute in."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: {name} has dtype {arr.dtype}; expected a real numeric array")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        raise TypeError(f"{fn}: {name} has dtype {arr.dtype}; fastconv computes in float32 or float64")
    return arr


def result_dtype(*arrays):
    """numpy.result_type, with float16 -> float32 and integers/bool -> float64."""
    dt = np.result_type(*arrays)
    if dt.kind in "biu":
        return np.dtype(np.float64)
    return np.dtype(np.float32) if dt.itemsize <= 4 else np.dtype(np.float64)


def contiguous(arr, dtype):
    """A C-contiguous, native-byte-order copy only where needed."""
    return np.ascontiguousarray(arr, dtype=dtype)


def flat(arr, dtype):
    """The 1-D C-contiguous view the kernels take (None stays None)."""
    return None if arr is None else contiguous(arr, dtype).reshape(-1)


def integer(fn, name, value, minimum=None):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be an int, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__} {value!r}") from None
    if minimum is not None and v < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {v}")
    return v


def real(fn, name, value, minimum=None):
    """A finite real number (an int or float) -> float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not np.isfinite(v) or (minimum is not None and v < minimum):
        raise ValueError(f"{fn}: {name} must be a finite number{f' >= {minimum}' if minimum is not None else ''}, "
                         f"got {value!r}")
    return v


def indices(fn, name, value, count):
    """An integer array of positions in [0, count)."""
    idx = np.asarray(value)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{fn}: {name} must be an integer array, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= count):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise ValueError(f"{fn}: {name} holds {bad}, outside [0, {count}) (num_embeddings={count})")
    return idx


def ints(fn, name, value, count, minimum=None):
    """An int or a sequence of `count` ints -> a tuple of `count` ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != count:
            raise ValueError(f"{fn}: {name} must be an int or {count} ints, got {value!r}")
        return tuple(integer(fn, name, v, minimum) for v in value)
    return (integer(fn, name, value, minimum),) * count


def ndim(fn, name, arr, expected, layout):
    if arr.ndim not in (expected if isinstance(expected, tuple) else (expected,)):
        raise ValueError(f"{fn}: {name} must be {layout}, got shape {arr.shape}")


def out_size(fn, dim, size, before, after, k, stride, dilation):
    span = dilation * (k - 1) + 1
    out = (size + before + after - span) // stride + 1
    if out < 1:
        raise ValueError(
            f"{fn}: output {dim} would be {out}: input {dim} {size} + padding {before}+{after} "
            f"is smaller than the dilated kernel extent {span}")
    return out


def conv_padding(fn, padding, sizes, kernel, stride, dilation):
    """Every padding form of docs/API.md -> ((top, bottom), (left, right)) for `len(sizes)` dims."""
    d = len(sizes)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * d
        if padding != "same":
            raise ValueError(f"{fn}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
        pads = []
        for size, k, s, dil in zip(sizes, kernel, stride, dilation):
            out = -(-size // s)  # TensorFlow's rule, any stride
            total = max((out - 1) * s + (k - 1) * dil + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, (tuple, list)) and len(padding) == d and all(
            isinstance(p, (tuple, list)) for p in padding):
        pads = []
        for p in padding:
            if len(p) != 2:
                raise ValueError(f"{fn}: each padding pair must be (before, after), got {padding!r}")
            pads.append(tuple(integer(fn, "padding", v, 0) for v in p))
        return tuple(pads)
    if d == 1 and isinstance(padding, (tuple, list)) and len(padding) == 2:
        return (tuple(integer(fn, "padding", v, 0) for v in padding),)
    return tuple((p, p) for p in ints(fn, "padding", padding, d, 0))


@dataclass(frozen=True)
class ConvGeometry:
    """A validated convolution: sizes, parameters and output size."""
    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    groups: int
    kh: int
    kw: int
    stride: tuple
    padding: tuple  # ((top, bottom), (left, right))
    dilation: tuple
    out_h: int
    out_w: int

    @property
    def output_shape(self):
        return (self.n, self.c_out, self.out_h, self.out_w)

    @property
    def input_shape(self):
        return (self.n, self.c_in, self.h, self.w)

    @property
    def weight_shape(self):
        return (self.c_out, self.c_in // self.groups, self.kh, self.kw)

    def c_shape(self):
        """The fc_conv2d_shape fields, in order."""
        return (self.n, self.c_in, self.h, self.w, self.c_out, self.groups, self.kh, self.kw,
                self.stride[0], self.stride[1], self.padding[0][0], self.padding[1][0],
                self.dilation[0], self.dilation[1], self.out_h, self.out_w)


def conv_geometry(fn, input_shape, weight_shape, stride, padding, dilation, groups,
                  dims=("height", "width")):
    """Checks a convolution of input (N, C_in, H, W) by weight (C_out, C_in/groups, kH, kW)."""
    n, c_in, h, w = input_shape
    c_out, c_per_group, kh, kw = weight_shape
    groups = integer(fn, "groups", groups, 1)
    stride = ints(fn, "stride", stride, 2, 1)
    dilation = ints(fn, "dilation", dilation, 2, 1)
    if min(weight_shape) < 1:
        raise ValueError(f"{fn}: weight has an empty dimension, shape {tuple(weight_shape)}")
    if c_in % groups:
        raise ValueError(f"{fn}: groups={groups} does not divide the {c_in} input channels")
    if c_out % groups:
        raise ValueError(f"{fn}: groups={groups} does not divide the {c_out} output channels "
                         f"(weight.shape[0]={c_out})")
    if c_per_group * groups != c_in:
        raise ValueError(f"{fn}: input has {c_in} channels but weight expects {c_per_group * groups} "
                         f"(weight.shape[1]={c_per_group} x groups={groups})")
    pads = conv_padding(fn, padding, (h, w), (kh, kw), stride, dilation)
    out_h = out_size(fn, dims[0], h, *pads[0], kh, stride[0], dilation[0])
    out_w = out_size(fn, dims[1], w, *pads[1], kw, stride[1], dilation[1])
    return ConvGeometry(n, c_in, h, w, c_out, groups, kh, kw, stride, pads, dilation, out_h, out_w)


def bias(fn, value, c_out):
    if value is None:
        return None
    b = array(fn, "bias", value)
    if b.shape != (c_out,):
        raise ValueError(f"{fn}: bias must have shape ({c_out},) for {c_out} output channels, got {b.shape}")
    return b


def grad_shape(fn, grad, expected):
    if tuple(grad.shape) != tuple(expected):
        raise ValueError(f"{fn}: grad_output has shape {tuple(grad.shape)} but the forward output "
                         f"has shape {tuple(expected)}")


NEEDS = ("input", "weight", "bias")


def needs(fn, value):
    if isinstance(value, str):
        value = (value,)
    value = tuple(value)
    for v in value:
        if v not in NEEDS:
            raise ValueError(f"{fn}: needs may name {NEEDS}, got {v!r}")
    return frozenset(value)


# A convolution's algorithm; "im2col" is the GEMM family's old name, kept as an alias.
ALGORITHMS = ("auto", "direct", "gemm", "winograd", "reference")
_ALIASES = {"im2col": "gemm"}
# The GEMM family's paths by name, each for one pass (private, for tests that
# name the path they test; the binding refuses a path of another pass), and
# Winograd's smaller and larger tiles on any width ("winograd" takes the
# larger where its error bound holds, docs/API.md).
WINOGRAD_TILES = ("winograd:2x2", "winograd:4x4")
GEMM_PATHS = ("gemm:packed", "gemm:indirect", "gemm:phases", "gemm:col2im", "gemm:dots", "gemm:slots", "gemm:taps",
              *WINOGRAD_TILES)


def algorithm(fn, value, g):
    """A conv's algorithm for geometry g; Winograd only where it applies."""
    value = _ALIASES.get(value, value) if isinstance(value, str) else value
    if value not in ALGORITHMS and value not in GEMM_PATHS:
        raise ValueError(f"{fn}: algorithm must be one of {ALGORITHMS} (or 'im2col', an alias of 'gemm'), "
                         f"got {value!r}")
    if value in ("winograd", *WINOGRAD_TILES) and not winograd_takes(g):
        raise ValueError(f"{fn}: algorithm={value!r} needs a 3x3 or 2x2 kernel with stride 1, or a square kernel "
                         f"of 2 or 3 strides (4x4 with stride 2), and dilation 1; got kernel {(g.kh, g.kw)}, "
                         f"stride {g.stride}, dilation {g.dilation}")
    return value


def winograd_takes(g):
    """Whether Winograd takes a geometry: 3x3 or 2x2 stride-1 kernels, or
    strided ones whose stride phases are such (csrc/conv2d_polyphase.c)."""
    s, k = g.stride[0], g.kh
    return g.dilation == (1, 1) and g.stride == (s, s) and g.kw == k and k % s == 0 and k // s in (2, 3)


ACTIVATIONS = (None, "relu")


def activation(fn, value):
    if value not in ACTIVATIONS:
        raise ValueError(f"{fn}: activation must be one of {ACTIVATIONS}, got {value!r}")
    return value


def shape(fn, name, value, dims):
    if not isinstance(value, (tuple, list)) or len(value) not in dims:
        raise ValueError(f"{fn}: {name} must be a tuple of {' or '.join(map(str, dims))} ints, got {value!r}")
    return tuple(integer(fn, name, v, 0) for v in value)


def pool_window(fn, spatial, kernel_size, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output rule -> (kernel, stride, padding, dilation, out_h, out_w).
    padding "valid" or "same" is TensorFlow's rule instead: padding is then
    the top and left padding, the bottom and right being whatever the last
    window reaches past the input."""
    kernel = ints(fn, "kernel_size", kernel_size, 2, 1)
    stride = kernel if stride is None else ints(fn, "stride", stride, 2, 1)
    dilation = ints(fn, "dilation", dilation, 2, 1)
    if isinstance(padding, str):
        if padding == "valid":
            ceil_mode, padding = False, (0, 0)
        else:
            pads = conv_padding(fn, padding, spatial, kernel, stride, dilation)
            outs = [-(-size // s) for size, s in zip(spatial, stride)]
            if min(outs) < 1:
                raise ValueError(f"{fn}: input has an empty spatial dimension, {tuple(spatial)}")
            return kernel, stride, tuple(p[0] for p in pads), dilation, outs[0], outs[1]
    padding = ints(fn, "padding", padding, 2, 0)
    outs = []
    for dim, size, k, s, p, d in zip(("height", "width"), spatial, kernel, stride, padding, dilation):
        if p > k // 2:
            raise ValueError(f"{fn}: padding {p} must be at most half the kernel size {k} ({dim})")
        span = d * (k - 1) + 1
        top = size + 2 * p - span + (s - 1 if ceil_mode else 0)
        out = top // s + 1
        if ceil_mode and (out - 1) * s >= size + p:
            out -= 1  # the last window must start inside the input or left padding
        if out < 1 or size + 2 * p < span:
            raise ValueError(f"{fn}: output {dim} would be {min(out, 0)}: input {dim} {size} + "
                             f"padding 2*{p} is smaller than the kernel extent {span}")
        # Only windows starting in the padding can miss the input: their
        # first tap inside it, if any, is tap ceil(-start / d).
        for o in range(0, out):
            start = o * s - p
            if start >= 0:
                break
            if -(start // d) >= k or start + -(start // d) * d >= size:
                raise ValueError(f"{fn}: window {o} along {dim} sees no input: kernel_size {k}, padding {p} "
                                 f"and dilation {d} place its taps at {[start + i * d for i in range(k)]}, "
                                 f"outside [0, {size})")
        outs.append(out)
    return kernel, stride, padding, dilation, outs[0], outs[1]
