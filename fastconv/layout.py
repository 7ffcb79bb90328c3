"""TensorFlow's channels-last layouts for the channels-first kernels.

`data_format="NHWC"` (or "NLC" / "NWC" on one spatial axis) makes an array
function take and return channels-last arrays and TensorFlow's weight
layout, (kH, kW, C_in / groups, C_out) for a convolution and (kH, kW,
C_out / groups, C_in) for a transposed one: the arrays are copied into the
kernels' layout and the results back, a pass over each (native
channels-last kernels would save them)."""
import functools
import inspect

import numpy as np

from . import _C

FORMATS = {2: {"NCHW": "first", "NHWC": "last"},
           1: {"NCL": "first", "NCW": "first", "NLC": "last", "NWC": "last"}}
LAST = {f for formats in FORMATS.values() for f, side in formats.items() if side == "last"}
ACTIVATIONS = ("input", "grad_output", "indices")


def side(fn, data_format, spatial):
    """"first" or "last": where a data_format keeps the channels; any other
    value is a ValueError naming fn."""
    if not isinstance(data_format, str) or data_format not in FORMATS[spatial]:
        raise ValueError(f"{fn}: data_format must be one of {tuple(FORMATS[spatial])}, got {data_format!r}")
    return FORMATS[spatial][data_format]


def _swap(x, rows, cols):
    """x (batch..., rows, cols) as (batch..., cols, rows), a new C-contiguous
    array: float32 and float64 by fastconv's threaded transpose, anything
    else by NumPy."""
    batch = x.shape[:-2]
    if x.dtype not in (np.float32, np.float64) or x.size == 0:
        return np.ascontiguousarray(np.swapaxes(x, -1, -2))
    src = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))
    out = np.empty(batch + (cols, rows), src.dtype)
    _C.transpose(int(np.prod(batch)), rows, cols, src.reshape(-1), out.reshape(-1))
    return out


def _first(x, spatial):
    """(..., *spatial, C) -> (..., C, *spatial), or x untouched when it cannot be (validation names it)."""
    x = np.asarray(x)
    if x.ndim <= spatial:
        return x
    lead, sizes = x.shape[:-(spatial + 1)], x.shape[-(spatial + 1):-1]
    return _swap(x.reshape(lead + (int(np.prod(sizes)), x.shape[-1])), int(np.prod(sizes)), x.shape[-1]).reshape(
        lead + (x.shape[-1],) + sizes)


def _last(y, spatial):
    lead, c, sizes = y.shape[:-(spatial + 1)], y.shape[-(spatial + 1)], y.shape[-spatial:]
    return _swap(y.reshape(lead + (c, int(np.prod(sizes)))), c, int(np.prod(sizes))).reshape(lead + sizes + (c,))


def _weight_first(w):
    """TensorFlow's (*kernel, a, b) -> fastconv's (b, a, *kernel)."""
    w = np.asarray(w)
    return w.transpose((w.ndim - 1, w.ndim - 2) + tuple(range(w.ndim - 2))) if w.ndim >= 2 else w


def weight_last(w):
    """fastconv's (A, B, *kernel) -> TensorFlow's (*kernel, B, A)."""
    return np.ascontiguousarray(w.transpose(tuple(range(2, w.ndim)) + (1, 0)))


def _shape_first(shape, spatial):
    shape = tuple(shape)
    if len(shape) <= spatial:
        return shape
    return shape[:-(spatial + 1)] + shape[-1:] + shape[-(spatial + 1):-1]


def channels_last(spatial, returns):
    """Adds data_format to an array function written channels first.
    returns names what each result is: "x" an activation (or indices),
    "w" a weight, None anything else (a bias gradient)."""
    default = next(iter(FORMATS[spatial]))

    def wrap(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, data_format=default, **kwargs):
            if side(fn.__name__, data_format, spatial) == "first":
                return fn(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            for name, value in bound.arguments.items():
                if name in ACTIVATIONS:
                    bound.arguments[name] = _first(value, spatial)
                elif name == "weight":
                    bound.arguments[name] = _weight_first(value)
                elif name == "input_shape" and isinstance(value, (tuple, list)):
                    bound.arguments[name] = _shape_first(value, spatial)
            out = fn(*bound.args, **bound.kwargs)
            convert = {"x": lambda a: _last(a, spatial), "w": weight_last, None: lambda a: a}
            if isinstance(out, tuple):
                return tuple(None if a is None else convert[kind](a) for a, kind in zip(out, returns))
            return convert[returns[0]](out)

        params = list(signature.parameters.values())
        wrapper.__signature__ = signature.replace(parameters=params + [
            inspect.Parameter("data_format", inspect.Parameter.KEYWORD_ONLY, default=default)])
        return wrapper
    return wrap
