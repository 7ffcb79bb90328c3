"""Differentiable functions on Tensors, named as in torch.nn.functional.

Each operation is a Function whose forward calls one array function of
fastconv and whose backward calls its *_backward twin, asking only for the
gradients its inputs need.
"""
import numpy as np

from . import conv as _conv
from . import pool as _pool
from .autograd import Function, Tensor


def _tensors(*values):
    return [v if isinstance(v, Tensor) else Tensor(v) for v in values if v is not None]


def _needs(fn, names):
    return tuple(name for name, need in zip(names, fn.needs) if need)


# -- convolutions -------------------------------------------------------------

class _Conv(Function):
    """Shared by conv2d, conv1d and conv_transpose2d: forward and backward
    are a pair of array functions taking the same keyword parameters."""
    forward_fn = backward_fn = None

    def forward(self, x, w, b=None, **params):
        self.x, self.w, self.params = x, w, params
        return type(self).forward_fn(x, w, b, **params)

    def backward(self, g):
        gx, gw, gb = type(self).backward_fn(g, self.x, self.w, **self.params,
                                            needs=_needs(self, ("input", "weight", "bias")))
        return (gx, gw, gb)[:len(self.parents)]


class Conv2d(_Conv):
    forward_fn, backward_fn = _conv.conv2d, _conv.conv2d_backward


class Conv1d(_Conv):
    forward_fn, backward_fn = _conv.conv1d, _conv.conv1d_backward


class ConvTranspose2d(_Conv):
    forward_fn, backward_fn = _conv.conv_transpose2d, _conv.conv_transpose2d_backward


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return Conv2d.apply(*_tensors(input, weight, bias), stride=stride, padding=padding, dilation=dilation,
                        groups=groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return Conv1d.apply(*_tensors(input, weight, bias), stride=stride, padding=padding, dilation=dilation,
                        groups=groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return ConvTranspose2d.apply(*_tensors(input, weight, bias), stride=stride, padding=padding,
                                 output_padding=output_padding, groups=groups, dilation=dilation)


# -- pooling ------------------------------------------------------------------

class MaxPool2d(Function):
    def forward(self, x, **params):
        self.shape = x.shape
        y, self.indices = _pool.max_pool2d(x, **params, return_indices=True)
        return y

    def backward(self, g):
        return (_pool.max_pool2d_backward(g, self.indices, self.shape),)


class AvgPool2d(Function):
    def forward(self, x, **params):
        self.shape, self.params = x.shape, params
        return _pool.avg_pool2d(x, **params)

    def backward(self, g):
        return (_pool.avg_pool2d_backward(g, self.shape, **self.params),)


class AdaptiveAvgPool2d(Function):
    def forward(self, x, output_size):
        self.shape = x.shape
        return _pool.adaptive_avg_pool2d(x, output_size)

    def backward(self, g):
        return (_pool.adaptive_avg_pool2d_backward(g, self.shape),)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    return MaxPool2d.apply(*_tensors(input), kernel_size=kernel_size, stride=stride, padding=padding,
                           dilation=dilation, ceil_mode=ceil_mode)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return AvgPool2d.apply(*_tensors(input), kernel_size=kernel_size, stride=stride, padding=padding,
                           ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                           divisor_override=divisor_override)


def adaptive_avg_pool2d(input, output_size):
    return AdaptiveAvgPool2d.apply(*_tensors(input), output_size=output_size)


# -- activations --------------------------------------------------------------

class ReLU(Function):
    def forward(self, x):
        self.mask = x > 0
        return np.where(self.mask, x, np.zeros((), x.dtype))

    def backward(self, g): return (g * self.mask,)


class Sigmoid(Function):
    def forward(self, x):
        # exp of -|x| only: never overflows
        e = np.exp(-np.abs(x))
        self.y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return self.y

    def backward(self, g): return (g * self.y * (1 - self.y),)


class Tanh(Function):
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, g): return (g * (1 - self.y * self.y),)


def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, axis):
        self.axis = axis
        self.y = _log_softmax(x, axis)
        return self.y

    def backward(self, g):
        return (g - np.exp(self.y) * g.sum(axis=self.axis, keepdims=True),)


class Softmax(Function):
    def forward(self, x, axis):
        self.axis = axis
        self.y = np.exp(_log_softmax(x, axis))
        return self.y

    def backward(self, g):
        return (self.y * (g - (g * self.y).sum(axis=self.axis, keepdims=True)),)


def relu(input): return ReLU.apply(*_tensors(input))
def sigmoid(input): return Sigmoid.apply(*_tensors(input))
def tanh(input): return Tanh.apply(*_tensors(input))
def softmax(input, dim=-1): return Softmax.apply(*_tensors(input), axis=dim)
def log_softmax(input, dim=-1): return LogSoftmax.apply(*_tensors(input), axis=dim)


class CrossEntropy(Function):
    """Mean negative log-likelihood of integer labels under softmax(logits)."""

    def forward(self, logits, labels):
        labels = np.asarray(labels)
        if logits.ndim != 2 or labels.shape != logits.shape[:1]:
            raise ValueError(f"cross_entropy: logits must be (N, classes) and labels (N,), got "
                             f"{logits.shape} and {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise TypeError(f"cross_entropy: labels must be integers, got dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
            raise ValueError(f"cross_entropy: labels must lie in [0, {logits.shape[1]}), got "
                             f"{labels.min()}..{labels.max()}")
        self.labels = labels
        self.log_p = _log_softmax(logits, axis=1)
        return np.asarray(-self.log_p[np.arange(len(labels)), labels].mean(), dtype=logits.dtype)

    def backward(self, g):
        grad = np.exp(self.log_p)
        grad[np.arange(len(self.labels)), self.labels] -= 1
        return g * grad / max(len(self.labels), 1), None


def cross_entropy(input, target):
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target))
    return CrossEntropy.apply(*_tensors(input), target)


class Dropout(Function):
    def forward(self, x, p, rng):
        self.scale = (rng.random(x.shape, dtype=np.float32) >= p).astype(x.dtype) / x.dtype.type(1 - p)
        return x * self.scale

    def backward(self, g): return (g * self.scale,)


def dropout(input, p=0.5, training=True, rng=None):
    """Zeroes each element with probability p and scales the rest by 1/(1-p) while training."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    input = _tensors(input)[0]
    if not training or p == 0:
        return input
    return Dropout.apply(input, p=p, rng=rng if rng is not None else np.random.default_rng())


class Linear(Function):
    """y = x w^T + b, with w (out_features, in_features) as in PyTorch."""

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        y = x @ w.T
        return y + b if b is not None else y

    def backward(self, g):
        gx = g @ self.w if self.needs[0] else None
        gw = g.T @ self.x if self.needs[1] else None
        gb = g.sum(axis=0) if len(self.parents) > 2 and self.needs[2] else None
        return (gx, gw, gb)[:len(self.parents)]


def linear(input, weight, bias=None):
    return Linear.apply(*_tensors(input, weight, bias))


class BatchNorm(Function):
    """Normalizes over every axis but 1 (channels) with batch statistics while
    training, updating the running statistics in place; with them in eval."""

    def forward(self, x, weight, bias, running_mean, running_var, training, momentum, eps):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            if running_mean is not None:
                count = x.size // x.shape[1]
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += momentum * var * count / max(count - 1, 1)  # unbiased, as PyTorch
        else:
            mean, var = running_mean, running_var
        self.training, self.axes, self.shape = training, axes, shape
        self.inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype)
        self.x_hat = (x - mean.reshape(shape)) * self.inv_std.reshape(shape)
        self.weight = weight
        return self.x_hat * weight.reshape(shape) + bias.reshape(shape)

    def backward(self, g):
        gw = (g * self.x_hat).sum(axis=self.axes)
        gb = g.sum(axis=self.axes)
        gx_hat = g * self.weight.reshape(self.shape)
        if self.training:  # the statistics depend on x too
            gx = (gx_hat - gx_hat.mean(axis=self.axes, keepdims=True)
                  - self.x_hat * (gx_hat * self.x_hat).mean(axis=self.axes, keepdims=True))
        else:
            gx = gx_hat
        return gx * self.inv_std.reshape(self.shape), gw, gb


def batch_norm(input, running_mean, running_var, weight, bias, training=False, momentum=0.1, eps=1e-5):
    """As torch.nn.functional.batch_norm; running_mean/var are ndarrays updated in place."""
    return BatchNorm.apply(*_tensors(input, weight, bias), running_mean=running_mean, running_var=running_var,
                           training=training, momentum=momentum, eps=eps)


class Concat(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(self, g): return tuple(np.split(g, self.splits, axis=self.axis))


def concat(tensors, dim=1):
    """Concatenates along dim (channels by default), as Inception's branches."""
    return Concat.apply(*_tensors(*tensors), axis=dim)


def flatten(input, start_dim=1):
    return _tensors(input)[0].flatten(start_dim)
