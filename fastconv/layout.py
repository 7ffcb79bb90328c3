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

FORMATS = {2: {"NCHW": "first", "NHWC": "last"},
           1: {"NCL": "first", "NCW": "first", "NLC": "last", "NWC": "last"}}
ACTIVATIONS = ("input", "grad_output", "indices")


def _first(x, spatial):
    """(..., *spatial, C) -> (..., C, *spatial), or x untouched when it cannot be (validation names it)."""
    x = np.asarray(x)
    return np.moveaxis(x, -1, -(spatial + 1)) if x.ndim > spatial else x


def _last(y, spatial):
    return np.ascontiguousarray(np.moveaxis(y, -(spatial + 1), -1))


def _weight_first(w):
    """TensorFlow's (*kernel, a, b) -> fastconv's (b, a, *kernel)."""
    w = np.asarray(w)
    return w.transpose((w.ndim - 1, w.ndim - 2) + tuple(range(w.ndim - 2))) if w.ndim >= 2 else w


def _weight_last(w):
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
            if FORMATS[spatial].get(data_format) is None:
                raise ValueError(f"{fn.__name__}: data_format must be one of {tuple(FORMATS[spatial])}, "
                                 f"got {data_format!r}")
            if FORMATS[spatial][data_format] == "first":
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
            convert = {"x": lambda a: _last(a, spatial), "w": _weight_last, None: lambda a: a}
            if isinstance(out, tuple):
                return tuple(None if a is None else convert[kind](a) for a, kind in zip(out, returns))
            return convert[returns[0]](out)

        params = list(signature.parameters.values())
        wrapper.__signature__ = signature.replace(parameters=params + [
            inspect.Parameter("data_format", inspect.Parameter.KEYWORD_ONLY, default=default)])
        return wrapper
    return wrap
