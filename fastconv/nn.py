"""Layers: Module and friends, as in torch.nn.

A Module finds its parameters and sub-modules in its attributes, in the
order they were set. Weights start as PyTorch's defaults (uniform in
+-1/sqrt(fan_in), its kaiming_uniform(a=sqrt(5))) drawn from a generator
that `manual_seed` makes reproducible.
"""
import contextlib
import math
import os
import re
import tempfile
import zipfile

import numpy as np

from . import _random
from . import functional as F
from . import summary as _summary
from ._validate import integer, ints
from .autograd import Tensor
from . import layout
from .embeddings import _padding_idx


def manual_seed(seed):
    """Seeds the generator that initializes layers and draws dropout masks."""
    _random.manual_seed(seed)


class Parameter(Tensor):
    """A Tensor that a Module trains: requires gradients."""

    def __init__(self, data):
        # contiguous, so optimizers can update it in place through a flat view
        super().__init__(np.ascontiguousarray(data), requires_grad=True)


class Module:
    training = True

    def forward(self, *args):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        if _summary.recording():
            _summary.record(self, args, out)
        return out

    def children(self):
        for value in vars(self).values():
            if isinstance(value, Module):
                yield value
            elif isinstance(value, (list, tuple)):
                yield from (v for v in value if isinstance(v, Module))

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, value in vars(self).items():
            items = [(f"{name}.{i}", v) for i, v in enumerate(value)] if isinstance(value, (list, tuple)) else [(name, value)]
            for sub_name, sub in items:
                if isinstance(sub, Module):
                    yield from sub.named_modules(f"{prefix}{sub_name}.")

    def named_parameters(self):
        for prefix, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, Parameter):
                    yield prefix + name, value

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for prefix, module in self.named_modules():
            for name in getattr(module, "_buffers", ()):
                yield prefix + name, getattr(module, name)

    def train(self, mode=True):
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    def to(self, dtype):
        """Converts every parameter and buffer to dtype in place (float32 or
        float64), as torch's module.to(dtype); returns the module."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"Module.to: dtype must be float32 or float64, got {dtype}")
        for _, p in self.named_parameters():
            p.data = p.data.astype(dtype)
        for prefix, module in self.named_modules():
            for name in getattr(module, "_buffers", ()):
                setattr(module, name, getattr(module, name).astype(dtype))
        return self

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def state_dict(self):
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update({name: b.copy() for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state):
        """Copies arrays into the parameters and buffers in place; the names
        and shapes must match. PyTorch's state dicts load as they are (their
        tensors as arrays: fastconv.convert); BatchNorm's
        num_batches_tracked, which fastconv does not keep, is skipped, and
        checkpoints of fastconv 0.1 (a Sequential's layers named
        "features.layers.0.weight" where PyTorch says "features.0.weight")
        load too."""
        own = {_legacy(name): p for name, p in self.named_parameters()}
        own.update((_legacy(name), Tensor(b)) for name, b in self.named_buffers())
        state = {_legacy(name): value for name, value in state.items() if not name.endswith("num_batches_tracked")}
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, target in own.items():
            value = state[name]
            value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)  # torch tensors
            if value.shape != target.shape:
                raise ValueError(f"load_state_dict: {name} has shape {value.shape}, expected {target.shape}")
            target.data[...] = value

    def save(self, path):
        """Writes the state dict as .npz (save_npz)."""
        save_npz(path, self.state_dict())

    def load(self, path):
        try:
            with np.load(path) as archive:
                state = {name: archive[name] for name in archive.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"load: {os.fspath(path)} is not a readable checkpoint (.npz): "
                             f"{type(e).__name__}: {e}") from e
        self.load_state_dict(state)
        return self

    def summary(self, input_shape, dtype=np.float32):
        """Prints each layer's output shape, parameters, multiply-adds and
        receptive field, the totals and the memory of the layers' outputs
        for input_shape's batch (fastconv.summary); returns the parameter
        count."""
        return _summary.summary(self, input_shape, dtype)


def save_npz(path, arrays):
    """numpy.savez through a temporary file renamed into place, so a crash
    mid-save leaves the old file whole. As numpy.savez, ".npz" is appended
    to a path without it."""
    path = os.fspath(path)
    path = path if path.endswith(".npz") else path + ".npz"
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _legacy(name):
    """A state-dict key without fastconv 0.1's "layers." segments."""
    return re.sub(r"(^|\.)layers\.", r"\1", name)


def _uniform(shape, fan_in, dtype):
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    return Parameter(_random.generator().uniform(-bound, bound, shape).astype(dtype))


class Sequential(Module):
    """Runs its layers in order, fusing two patterns: a Conv2d or Linear
    followed by ReLU runs as one op (the ReLU in the GEMM's epilogue, its
    backward from the output's sign), and Conv2d, ReLU, MaxPool2d pools
    before the ReLU, which commutes with max, so the ReLU and its backward
    touch a quarter of the elements. Outputs and gradients are those of the
    layers run one by one, as summary() runs them."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        layers, i = self.layers, 0
        while i < len(layers):
            layer, after = layers[i], [type(a) for a in layers[i + 1:i + 3]]
            fuse = not _summary.recording() and isinstance(layer, (Conv2d, Linear)) and after[:1] == [ReLU]
            if fuse and isinstance(layer, Conv2d) and after == [ReLU, MaxPool2d]:
                x, i = F.relu(layers[i + 2](layer(x))), i + 3
            elif fuse:
                x, i = layer(x, activation="relu"), i + 2
            else:
                x, i = layer(x), i + 1
        return x

    def named_modules(self, prefix=""):
        """Layers are named by their index, as in PyTorch ("features.0.weight")."""
        yield prefix, self
        for i, layer in enumerate(self.layers):
            yield from layer.named_modules(f"{prefix}{i}.")

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)


def _layout(cls, data_format, spatial):
    layout.side(cls, data_format, spatial)
    return data_format


class Conv2d(Module):
    """data_format="NHWC" takes and gives (N, H, W, C) and keeps the weight
    as TensorFlow does, (kH, kW, C_in / groups, C_out), drawn as the NCHW
    layer's (the same seed gives the same weights, transposed)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, dtype=np.float32, data_format="NCHW"):
        kh, kw = ints("Conv2d", "kernel_size", kernel_size, 2, 1)
        groups = integer("Conv2d", "groups", groups, 1)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.data_format = _layout("Conv2d", data_format, 2)
        fan_in = in_channels // groups * kh * kw
        self.weight = _uniform((out_channels, in_channels // groups, kh, kw), fan_in, dtype)
        if data_format in layout.LAST:
            self.weight = Parameter(layout.weight_last(self.weight.data))
        self.bias = _uniform((out_channels,), fan_in, dtype) if bias else None
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def forward(self, x, activation=None):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                        activation, self.data_format)


class Conv1d(Module):
    """Over (N, C, L): weight (out_channels, in_channels // groups, kernel_size), as torch.nn.Conv1d."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, dtype=np.float32, data_format="NCL"):
        k = integer("Conv1d", "kernel_size", kernel_size, 1)
        groups = integer("Conv1d", "groups", groups, 1)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv1d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.data_format = _layout("Conv1d", data_format, 1)
        fan_in = in_channels // groups * k
        self.weight = _uniform((out_channels, in_channels // groups, k), fan_in, dtype)
        if data_format in layout.LAST:  # TensorFlow's (k, C_in / groups, C_out)
            self.weight = Parameter(layout.weight_last(self.weight.data))
        self.bias = _uniform((out_channels,), fan_in, dtype) if bias else None
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                        self.data_format)


class ConvTranspose2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, dtype=np.float32, data_format="NCHW"):
        kh, kw = ints("ConvTranspose2d", "kernel_size", kernel_size, 2, 1)
        groups = integer("ConvTranspose2d", "groups", groups, 1)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"ConvTranspose2d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        fan_in = out_channels // groups * kh * kw  # PyTorch's fan_in for this weight layout
        self.data_format = _layout("ConvTranspose2d", data_format, 2)
        self.weight = _uniform((in_channels, out_channels // groups, kh, kw), fan_in, dtype)
        if data_format in layout.LAST:  # TensorFlow's (kH, kW, C_out / groups, C_in)
            self.weight = Parameter(layout.weight_last(self.weight.data))
        self.bias = _uniform((out_channels,), fan_in, dtype) if bias else None
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.groups, self.dilation = groups, dilation

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation, self.data_format)


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        self.weight = _uniform((out_features, in_features), in_features, dtype)
        self.bias = _uniform((out_features,), in_features, dtype) if bias else None

    def forward(self, x, activation=None):
        return F.linear(x, self.weight, self.bias, activation)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, data_format="NCHW"):
        self.args = (kernel_size, stride, padding, dilation, ceil_mode)
        self.data_format = _layout("MaxPool2d", data_format, 2)

    def forward(self, x):
        return F.max_pool2d(x, *self.args, data_format=self.data_format)


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None, data_format="NCHW"):
        self.args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        self.data_format = _layout("AvgPool2d", data_format, 2)

    def forward(self, x):
        return F.avg_pool2d(x, *self.args, data_format=self.data_format)


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size, data_format="NCHW"):
        self.output_size = output_size
        self.data_format = _layout("AdaptiveAvgPool2d", data_format, 2)

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size, self.data_format)


class MaxPool1d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, data_format="NCL"):
        self.args = (kernel_size, stride, padding, dilation, ceil_mode)
        self.data_format = _layout("MaxPool1d", data_format, 1)

    def forward(self, x):
        return F.max_pool1d(x, *self.args, data_format=self.data_format)


class AvgPool1d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 data_format="NCL"):
        self.args = (kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.data_format = _layout("AvgPool1d", data_format, 1)

    def forward(self, x):
        return F.avg_pool1d(x, *self.args, data_format=self.data_format)


class AdaptiveMaxPool2d(Module):
    def __init__(self, output_size, data_format="NCHW"):
        self.output_size = output_size
        self.data_format = _layout("AdaptiveMaxPool2d", data_format, 2)

    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size, self.data_format)


class AdaptiveMaxPool1d(Module):
    def __init__(self, output_size, data_format="NCL"):
        self.output_size = output_size
        self.data_format = _layout("AdaptiveMaxPool1d", data_format, 1)

    def forward(self, x):
        return F.adaptive_max_pool1d(x, self.output_size, self.data_format)


class LocalResponseNorm(Module):
    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        self.size = integer("LocalResponseNorm", "size", size, 1)
        self.alpha, self.beta, self.k = alpha, beta, k

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)


class Embedding(Module):
    """A (num_embeddings, embedding_dim) table drawn from N(0, 1), as
    PyTorch's, with padding_idx's row zero and never trained."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=np.float32):
        num_embeddings = integer("Embedding", "num_embeddings", num_embeddings, 1)
        embedding_dim = integer("Embedding", "embedding_dim", embedding_dim, 1)
        self.weight = Parameter(_random.generator().standard_normal((num_embeddings, embedding_dim)).astype(dtype))
        self.padding_idx = _padding_idx("Embedding", padding_idx, num_embeddings)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, x):
        return F.embedding(x, self.weight, self.padding_idx)


class Identity(Module):
    def forward(self, x): return x


class ReLU(Module):
    def forward(self, x): return F.relu(x)


class Tanh(Module):
    def forward(self, x): return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x): return F.sigmoid(x)


class Flatten(Module):
    def __init__(self, start_dim=1):
        self.start_dim = start_dim

    def forward(self, x): return F.flatten(x, self.start_dim)


class Dropout(Module):
    def __init__(self, p=0.5):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)


class BatchNorm2d(Module):
    _buffers = ("running_mean", "running_var")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        self.weight = Parameter(np.ones(num_features, dtype))
        self.bias = Parameter(np.zeros(num_features, dtype))
        self.running_mean = np.zeros(num_features, dtype)
        self.running_var = np.ones(num_features, dtype)
        self.eps, self.momentum = eps, momentum

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                            self.momentum, self.eps)
