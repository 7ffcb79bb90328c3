"""Differentiable functions on Tensors, named as in torch.nn.functional.

Each operation is a Function whose forward calls one array function of
fastconv and whose backward calls its *_backward twin, asking only for the
gradients its inputs need.
"""
import numpy as np

from . import _random
from . import conv as _conv
from . import elementwise as _ew
from . import dense as _dense
from . import embeddings as _embedding
from . import lrn as _lrn
from . import pool as _pool
from .autograd import Function, Tensor


def _tensors(*values):
    return [v if isinstance(v, Tensor) else Tensor(v) for v in values if v is not None]


def _needs(fn, names):
    return tuple(name for name, need in zip(names, fn.needs) if need)


# -- convolutions -------------------------------------------------------------

class _Conv(Function):
    """Shared by conv2d, conv1d, conv_transpose2d and linear: forward and
    backward are a pair of array functions taking the same keyword
    parameters. A fused ReLU (activation="relu", where the forward takes
    it) is undone in the backward by the output's sign: no mask is kept."""
    forward_fn = backward_fn = None

    def forward(self, x, w, b=None, activation=None, **params):
        self.x, self.w, self.params, self.activation = x, w, params, activation
        extra = {"activation": activation} if activation else {}
        self.y = type(self).forward_fn(x, w, b, **params, **extra)
        return self.y

    def backward(self, g):
        if self.activation == "relu":
            g = _ew.relu_backward(g, self.y)
        gx, gw, gb = type(self).backward_fn(g, self.x, self.w, **self.params,
                                            needs=_needs(self, ("input", "weight", "bias")))
        return (gx, gw, gb)[:len(self.parents)]


class Conv2d(_Conv):
    forward_fn, backward_fn = _conv.conv2d, _conv.conv2d_backward


class Linear(_Conv):
    """y = x w^T + b, with w (out_features, in_features) as in PyTorch."""
    forward_fn, backward_fn = _dense.linear, _dense.linear_backward


class Conv1d(_Conv):
    forward_fn, backward_fn = _conv.conv1d, _conv.conv1d_backward


class ConvTranspose2d(_Conv):
    forward_fn, backward_fn = _conv.conv_transpose2d, _conv.conv_transpose2d_backward


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None,
           data_format="NCHW"):
    """activation="relu" is relu(conv2d(...)) in one pass."""
    return Conv2d.apply(*_tensors(input, weight, bias), stride=stride, padding=padding, dilation=dilation,
                        groups=groups, activation=activation, data_format=data_format)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, data_format="NCL"):
    return Conv1d.apply(*_tensors(input, weight, bias), stride=stride, padding=padding, dilation=dilation,
                        groups=groups, data_format=data_format)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     data_format="NCHW"):
    return ConvTranspose2d.apply(*_tensors(input, weight, bias), stride=stride, padding=padding,
                                 output_padding=output_padding, groups=groups, dilation=dilation,
                                 data_format=data_format)


# -- pooling ------------------------------------------------------------------

class _MaxPool(Function):
    """Max pooling, fixed or adaptive: the forward keeps the indices of the
    maxima and the backward scatters the gradient to them."""
    forward_fn = backward_fn = None

    def forward(self, x, **params):
        self.shape, self.layout = x.shape, {k: v for k, v in params.items() if k == "data_format"}
        y, self.indices = type(self).forward_fn(x, **params, return_indices=True)
        return y

    def backward(self, g):
        return (type(self).backward_fn(g, self.indices, self.shape, **self.layout),)


class MaxPool2d(_MaxPool):
    forward_fn, backward_fn = _pool.max_pool2d, _pool.max_pool2d_backward


class MaxPool1d(_MaxPool):
    forward_fn, backward_fn = _pool.max_pool1d, _pool.max_pool1d_backward


class AdaptiveMaxPool2d(_MaxPool):
    forward_fn, backward_fn = _pool.adaptive_max_pool2d, _pool.max_pool2d_backward


class AdaptiveMaxPool1d(_MaxPool):
    forward_fn, backward_fn = _pool.adaptive_max_pool1d, _pool.max_pool1d_backward


class _AvgPool(Function):
    forward_fn = backward_fn = None

    def forward(self, x, **params):
        self.shape, self.params = x.shape, params
        return type(self).forward_fn(x, **params)

    def backward(self, g):
        return (type(self).backward_fn(g, self.shape, **self.params),)


class AvgPool2d(_AvgPool):
    forward_fn, backward_fn = _pool.avg_pool2d, _pool.avg_pool2d_backward


class AvgPool1d(_AvgPool):
    forward_fn, backward_fn = _pool.avg_pool1d, _pool.avg_pool1d_backward


class AdaptiveAvgPool2d(Function):
    def forward(self, x, output_size, **layout):
        self.shape, self.layout = x.shape, layout
        return _pool.adaptive_avg_pool2d(x, output_size, **layout)

    def backward(self, g):
        return (_pool.adaptive_avg_pool2d_backward(g, self.shape, **self.layout),)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, data_format="NCHW"):
    return MaxPool2d.apply(*_tensors(input), kernel_size=kernel_size, stride=stride, padding=padding,
                           dilation=dilation, ceil_mode=ceil_mode, data_format=data_format)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, data_format="NCHW"):
    return AvgPool2d.apply(*_tensors(input), kernel_size=kernel_size, stride=stride, padding=padding,
                           ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                           divisor_override=divisor_override, data_format=data_format)


def adaptive_avg_pool2d(input, output_size, data_format="NCHW"):
    return AdaptiveAvgPool2d.apply(*_tensors(input), output_size=output_size, data_format=data_format)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, data_format="NCL"):
    return MaxPool1d.apply(*_tensors(input), kernel_size=kernel_size, stride=stride, padding=padding,
                           dilation=dilation, ceil_mode=ceil_mode, data_format=data_format)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               data_format="NCL"):
    return AvgPool1d.apply(*_tensors(input), kernel_size=kernel_size, stride=stride, padding=padding,
                           ceil_mode=ceil_mode, count_include_pad=count_include_pad, data_format=data_format)


def adaptive_max_pool2d(input, output_size, data_format="NCHW"):
    return AdaptiveMaxPool2d.apply(*_tensors(input), output_size=output_size, data_format=data_format)


def adaptive_max_pool1d(input, output_size, data_format="NCL"):
    """output_size=1 is max-over-time pooling (Kim 2014's text CNN)."""
    return AdaptiveMaxPool1d.apply(*_tensors(input), output_size=output_size, data_format=data_format)


# -- normalization and lookup ---------------------------------------------------

class LocalResponseNorm(Function):
    def forward(self, x, **params):
        self.x, self.params = x, params
        return _lrn.local_response_norm(x, **params)

    def backward(self, g): return (_lrn.local_response_norm_backward(g, self.x, **self.params),)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    return LocalResponseNorm.apply(*_tensors(input), size=size, alpha=alpha, beta=beta, k=k)


class Embedding(Function):
    def forward(self, weight, indices, padding_idx):
        self.indices, self.padding_idx, self.rows = indices, padding_idx, weight.shape[0]
        return _embedding.embedding(indices, weight, padding_idx)

    def backward(self, g):
        return (_embedding.embedding_backward(g, self.indices, self.rows, self.padding_idx),)


def embedding(input, weight, padding_idx=None):
    """Rows of weight picked by the integer array input (a Tensor or array)."""
    indices = input.data if isinstance(input, Tensor) else np.asarray(input)
    return Embedding.apply(*_tensors(weight), indices=indices, padding_idx=padding_idx)


# -- activations --------------------------------------------------------------

class ReLU(Function):
    def forward(self, x):
        self.y = _ew.relu(x)
        return self.y

    def backward(self, g): return (_ew.relu_backward(g, self.y),)


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
        loss, self.grad = _ew.cross_entropy(logits, labels)  # one pass: the loss and its gradient
        return loss

    def backward(self, g):
        return self.grad * g, None


def cross_entropy(input, target):
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target))
    return CrossEntropy.apply(*_tensors(input), target)


class Dropout(Function):
    """The kept elements depend on the seed alone, so the backward redraws
    the mask from it instead of storing one."""

    def forward(self, x, p, seed):
        self.p, self.seed = p, seed
        return _ew.dropout(x, p, seed)

    def backward(self, g): return (_ew.dropout(g, self.p, self.seed),)


def dropout(input, p=0.5, training=True, rng=None):
    """Zeroes each element with probability p and scales the rest by 1/(1-p)
    while training. The mask's seed comes from `rng` (a numpy Generator), by
    default from the generator nn.manual_seed seeds, so a seeded run is
    reproducible bit for bit on any number of threads."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    input = _tensors(input)[0]
    if not training or p == 0:
        return input
    rng = _random.generator() if rng is None else rng
    return Dropout.apply(input, p=p, seed=int(rng.integers(2 ** 64, dtype=np.uint64)))


def linear(input, weight, bias=None, activation=None):
    """activation="relu" is relu(linear(...)) in one pass."""
    return Linear.apply(*_tensors(input, weight, bias), activation=activation)


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
