"""Module.summary(): a network described in the terms CNN courses use. Each
layer's output shape, parameters, multiply-adds, and receptive field (the
input window one output sees, and the stride between neighbouring
outputs' windows); the totals; and the memory the layers' outputs take for
the batch of the shape given.

The receptive field follows the tensors, not the order of the calls: each
result of a summary's forward carries its field, a layer's rule widens it,
and an operation on several tensors (a residual sum, Inception's concat)
takes the widest, so branching networks are described right."""
import threading

import numpy as np

from . import autograd, layout


class _State(threading.local):
    rows = None  # this thread's recorded calls while summary() runs


_state = _State()


def recording():
    return _state.rows is not None


def _pairs(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _window(module):
    """(kernel, stride, dilation) of a layer that slides a window, else None."""
    from . import nn
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        kernel = module.weight.shape[:2] if module.data_format == "NHWC" else module.weight.shape[2:]
        return kernel, _pairs(module.stride), _pairs(module.dilation)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kernel, stride = _pairs(module.args[0]), module.args[1]
        dilation = module.args[3] if isinstance(module, nn.MaxPool2d) else 1
        return kernel, kernel if stride is None else _pairs(stride), _pairs(dilation)
    return None


def _field(module, field, x, y):
    """The receptive field of a layer's output from its input's: per axis
    (size, stride) on the network's input; None once every output sees all
    of it (after global pooling, flattening or a dense layer)."""
    from . import nn
    if field is None or isinstance(module, (nn.Flatten, nn.Linear)):
        return None
    window = _window(module)
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        axes = (1, 2) if module.data_format == "NHWC" else (2, 3)
        sizes = [(x.shape[a], y.shape[a]) for a in axes]
        if all(o == 1 for _, o in sizes):
            return None
        # windows of about size/out, as many as the output (exact when out divides size)
        window = tuple(-(-i // o) for i, o in sizes), tuple(max(i // o, 1) for i, o in sizes), (1, 1)
    if window is None:
        return field
    out = []
    for (size, jump), k, s, d in zip(field, *window):
        if isinstance(module, nn.ConvTranspose2d):  # outputs s times denser than inputs
            jump = jump / s
            out.append((size + (k - 1) * d * jump, jump))
        else:
            out.append((size + (k - 1) * d * jump, jump * s))
    return tuple(out)


def _macs(module, x, y):
    """Multiply-adds of one call, the convolutions' and dense layers': each
    output element (input element, for a transposed conv) takes one per
    weight of its channel."""
    from . import nn
    if not isinstance(module, (nn.Conv2d, nn.Conv1d, nn.Linear, nn.ConvTranspose2d)):
        return 0
    w = module.weight
    channels = w.shape[-1] if getattr(module, "data_format", None) in layout.LAST else w.shape[0]
    return (x if isinstance(module, nn.ConvTranspose2d) else y).data.size * (w.data.size // channels)


def record(module, args, out):
    """Module.__call__'s hook while a summary runs."""
    x = args[0] if args else None
    if not isinstance(out, autograd.Tensor):
        return
    if not list(module.children()):  # a leaf layer: its rule; a block's output carries its inside's field
        out.receptive_field = _field(module, getattr(x, "receptive_field", None), x, out)
    _state.rows.append((module, x, out))


def _describe_field(field):
    if field is None:
        return "all"
    (sh, jh), (sw, jw) = field
    size = f"{sh:g}" if sh == sw else f"{sh:g}x{sw:g}"
    return f"{size} / {jh:g}" if jh == jw else f"{size} / {jh:g}x{jw:g}"


def summary(model, input_shape, dtype=np.float32):
    """Prints the table; returns the parameter count. dtype is the input's
    (np.int64 for token ids); receptive fields are given for images
    (a 4-D input), "-" otherwise."""
    from . import nn
    x = autograd.Tensor(np.zeros(input_shape, dtype))
    x.receptive_field = ((1, 1), (1, 1))
    _state.rows = []
    was_training = model.training
    try:
        with autograd.no_grad(), autograd.tracing_fields():
            model.eval()
            model(x)
        rows = _state.rows
    finally:
        _state.rows = None
        model.train(was_training)
    table = []
    macs = activations = 0
    for module, inp, out in rows:
        if module is model or isinstance(module, nn.Sequential):
            continue
        params = sum(p.data.size for p in vars(module).values() if isinstance(p, nn.Parameter))
        m = _macs(module, inp, out)
        macs += m
        if not list(module.children()):
            activations += out.data.nbytes
        field = _describe_field(getattr(out, "receptive_field", None)) if len(input_shape) == 4 else "-"
        table.append((type(module).__name__, str(tuple(out.shape)), params, m, field))
    total = sum(p.data.size for p in model.parameters())
    width = max([len(r[0]) for r in table] + [5])
    print(f"{'layer':<{width}}  {'output shape':<22}{'params':>12}{'mult-adds':>16}  receptive field / stride")
    for name, shape, count, m, field in table:
        print(f"{name:<{width}}  {shape:<22}{count:>12,}{m:>16,}  {field}")
    print(f"{'total':<{width}}  {'':<22}{total:>12,}{macs:>16,}")
    weights = sum(p.data.nbytes for p in model.parameters())
    print(f"activations: {activations / 2 ** 20:,.1f} MiB of layer outputs for a batch of {input_shape[0]}; "
          f"parameters: {weights / 2 ** 20:,.1f} MiB")
    return total
