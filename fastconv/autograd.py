"""Reverse-mode automatic differentiation over NumPy arrays.

A Tensor holds an ndarray and, if it was computed from tensors that need
gradients, the Function that made it. Each Function is one small class:
`forward` on arrays, `backward` from the output's gradient to one gradient
per input (None where an input needs none). `Tensor.backward` walks the
graph once in reverse topological order, summing gradients.
"""
import contextlib
import math
import threading

import numpy as np

from . import dense as _dense

class _GradMode(threading.local):
    """Whether results record a graph, per thread as in PyTorch: a serving
    thread's no_grad() leaves a training thread's gradients alone."""
    enabled = True


_grad_mode = _GradMode()


class _Tracing(threading.local):
    fields = False  # results carry their inputs' widest receptive field (fastconv.summary)


_tracing = _Tracing()


@contextlib.contextmanager
def tracing_fields():
    before, _tracing.fields = _tracing.fields, True
    try:
        yield
    finally:
        _tracing.fields = before


def _widest(tensors):
    """The receptive field of a result: its inputs' widest, None (all of the
    input) if any sees all of it."""
    fields = [t.receptive_field for t in tensors if hasattr(t, "receptive_field")]
    if not fields or any(f is None for f in fields):
        return None
    return tuple((max(f[a][0] for f in fields), max(f[a][1] for f in fields)) for a in range(len(fields[0])))


@contextlib.contextmanager
def no_grad():
    """Within this block, results made by this thread record no graph
    (inference, optimizer steps)."""
    before, _grad_mode.enabled = _grad_mode.enabled, False
    try:
        yield
    finally:
        _grad_mode.enabled = before


class Function:
    """One differentiable operation: subclasses define forward and backward."""

    def __init__(self, *parents):
        self.parents = parents
        self.needs = tuple(p.requires_grad for p in parents)

    @classmethod
    def apply(cls, *parents, **kwargs):
        ctx = cls(*parents)
        out = ctx.forward(*[p.data for p in parents], **kwargs)
        track = _grad_mode.enabled and any(ctx.needs)
        out = Tensor(out, requires_grad=track, _ctx=ctx if track else None)
        if _tracing.fields:
            out.receptive_field = _widest(parents)
        return out

    def forward(self, *arrays, **kwargs):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError


def _unbroadcast(grad, shape):
    """Sums a broadcast gradient back down to `shape`."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


class Tensor:
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor

    def __init__(self, data, requires_grad=False, _ctx=None):
        self.data = data.data if isinstance(data, Tensor) else np.asarray(data)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating-point tensors can require gradients, got {self.data.dtype}")
        self.requires_grad = requires_grad
        self.grad = None
        self._ctx = _ctx

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)

    def __repr__(self):
        return f"Tensor({self.data!r}, requires_grad={self.requires_grad})"

    def __len__(self):
        return len(self.data)

    def numpy(self):
        return self.data

    def item(self):
        return self.data.item()

    def detach(self):
        return Tensor(self.data)

    def backward(self, grad=None):
        """Accumulates d(self)/d(leaf) * grad into every leaf's .grad."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require gradients")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad must be given for a non-scalar of shape {self.shape}")
            grad = np.ones_like(self.data)
        order, seen = [], set()

        def visit(t):  # iterative depth-first post-order: deep nets overflow recursion
            stack = [(t, False)]
            while stack:
                node, done = stack.pop()
                if done:
                    order.append(node)
                elif id(node) not in seen:
                    seen.add(id(node))
                    stack.append((node, True))
                    if node._ctx is not None:
                        stack.extend((p, False) for p in node._ctx.parents if p.requires_grad)

        visit(self)
        grad = np.asarray(grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"backward: grad has shape {grad.shape} but the tensor {self.shape}")
        grads = {id(self): grad}
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._ctx is None:  # a leaf: accumulate, as PyTorch does
                node.grad = g if node.grad is None else node.grad + g
                continue
            for parent, pg in zip(node._ctx.parents, node._ctx.backward(g)):
                if pg is not None and parent.requires_grad:
                    pg = _unbroadcast(np.asarray(pg, dtype=parent.dtype), parent.shape)
                    if pg.shape != parent.shape:
                        raise ValueError(f"backward: {type(node._ctx).__name__}.backward returned a gradient of "
                                         f"shape {pg.shape} for an input of shape {parent.shape}")
                    grads[id(parent)] = pg if id(parent) not in grads else grads[id(parent)] + pg

    # -- arithmetic (broadcasting) -------------------------------------------
    def _wrap(self, other):
        return other if isinstance(other, Tensor) else Tensor(np.asarray(other, dtype=self.dtype))

    def __add__(self, other): return Add.apply(self, self._wrap(other))
    def __radd__(self, other): return Add.apply(self._wrap(other), self)
    def __sub__(self, other): return Add.apply(self, -self._wrap(other))
    def __rsub__(self, other): return Add.apply(self._wrap(other), -self)
    def __mul__(self, other): return Mul.apply(self, self._wrap(other))
    def __rmul__(self, other): return Mul.apply(self._wrap(other), self)
    def __truediv__(self, other): return Div.apply(self, self._wrap(other))
    def __rtruediv__(self, other): return Div.apply(self._wrap(other), self)
    def __matmul__(self, other): return MatMul.apply(self, self._wrap(other))
    def __neg__(self): return Neg.apply(self)

    def sum(self, axis=None, keepdims=False): return Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        total = self.sum(axis, keepdims)
        return total * (total.data.size / max(self.data.size, 1))

    def reshape(self, *shape):
        return Reshape.apply(self, shape=shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def flatten(self, start_dim=0):
        # The flattened length spelled out, not -1, which NumPy cannot infer in an empty batch.
        return self.reshape(self.shape[:start_dim] + (math.prod(self.shape[start_dim:]),))

    def transpose(self, *axes):
        return Transpose.apply(self, axes=axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))

    @property
    def T(self):
        return self.transpose()

    def __getitem__(self, index): return GetItem.apply(self, index=index)


class Add(Function):
    def forward(self, a, b): return a + b
    def backward(self, g): return g, g


class Neg(Function):
    def forward(self, a): return -a
    def backward(self, g): return (-g,)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return (g * self.b if self.needs[0] else None), (g * self.a if self.needs[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        return (g / self.b if self.needs[0] else None), (-g * self.a / self.b ** 2 if self.needs[1] else None)


def _matmul(a, b):
    """2-D products on fastconv's GEMM; stacks of matrices on NumPy's."""
    return _dense.matmul(a, b) if a.ndim == b.ndim == 2 else np.matmul(a, b)


class MatMul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return _matmul(a, b)

    def backward(self, g):
        ga = _matmul(g, np.swapaxes(self.b, -1, -2)) if self.needs[0] else None
        gb = _matmul(np.swapaxes(self.a, -1, -2), g) if self.needs[1] else None
        return ga, gb


class Sum(Function):
    def forward(self, a, axis, keepdims):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(self, g):
        if self.axis is not None and not self.keepdims:
            g = np.expand_dims(g, self.axis)
        return (np.broadcast_to(g, self.shape),)


class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, g): return (g.reshape(self.shape),)


class Transpose(Function):
    def forward(self, a, axes):
        self.axes = axes
        return np.transpose(a, axes)

    def backward(self, g):
        return (np.transpose(g, None if self.axes is None else np.argsort(self.axes)),)


class GetItem(Function):
    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, g):
        out = np.zeros(self.shape, self.dtype)
        np.add.at(out, self.index, g)
        return (out,)
