"""Optimizers that update parameters in place, as torch.optim.

Each keeps its per-parameter state (momentum, moments) allocated at the
first step, so a step allocates nothing parameter-sized: SGD writes through
`out=`, Adam is one fused pass in C.
"""
import math

import numpy as np

from . import _C


class Optimizer:
    def __init__(self, params, lr):
        self.params = [p for p in params]
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if lr <= 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr}")
        self.lr = lr
        self.state = [None] * len(self.params)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def _check(self):
        """Every gradient against its parameter's array, and every array
        against the state made for it, before a step writes anything: C and
        NumPy write through them. A parameter whose array changed shape or
        dtype is an error, not a silent restart of its moments, as in
        PyTorch."""
        name = type(self).__name__
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = np.shape(p.grad)
            if grad != p.data.shape:
                raise ValueError(f"{name}: parameter {i} has shape {p.data.shape} but its gradient {grad}")
            if p.data.dtype.kind != "f" or p.data.dtype.itemsize not in (4, 8):
                raise TypeError(f"{name}: parameter {i} has dtype {p.data.dtype}; expected float32 or float64")
            state = self.state[i]
            if state is not None and (state[0].size != p.data.size or state[0].dtype != p.data.dtype):
                raise ValueError(f"{name}: parameter {i} was replaced by an array of shape {p.data.shape} and "
                                 f"dtype {p.data.dtype}, but its state was made for {state[0].size} "
                                 f"{state[0].dtype} elements; create a new optimizer for it")

    def _gradient(self, p, scratch, weight_decay):
        """p.grad (+ weight_decay * p) in scratch, without touching p.grad."""
        if weight_decay:
            np.multiply(p.data, weight_decay, out=scratch)
            scratch += p.grad
        else:
            np.copyto(scratch, p.grad)
        return scratch


class SGD(Optimizer):
    """p -= lr * d, with d the gradient (+ weight decay), through momentum
    (d = buf = momentum * buf + d; Nesterov: d += momentum * buf)."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: momentum and weight_decay must be >= 0, got {momentum}, {weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov needs a momentum > 0")
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov

    def step(self):
        self._check()
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            first = self.state[i] is None
            if first:  # d, and with momentum its buffer and a temporary
                self.state[i] = tuple(np.empty_like(p.data) for _ in range(3 if self.momentum else 1))
            d = self._gradient(p, self.state[i][0], self.weight_decay)
            if self.momentum:
                _, buf, tmp = self.state[i]
                if first:
                    np.copyto(buf, d)
                else:
                    buf *= self.momentum
                    buf += d
                if self.nesterov:
                    d += np.multiply(buf, self.momentum, out=tmp)
                else:
                    np.copyto(d, buf)
            d *= self.lr
            p.data -= d


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's bias correction; weight_decay adds
    weight_decay * p to the gradient (L2, not AdamW)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.steps = 0

    def step(self):
        self._check()
        self.steps += 1
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1 ** self.steps)
        root_correction = math.sqrt(1 - b2 ** self.steps)
        for i, p in enumerate(self.params):
            if p.grad is None or p.data.size == 0:
                continue
            if self.state[i] is None:
                self.state[i] = (np.zeros(p.data.size, p.dtype), np.zeros(p.data.size, p.dtype))
            m, v = self.state[i]
            if not p.data.flags.c_contiguous:  # reshape(-1) below must be a view
                p.data = np.ascontiguousarray(p.data)
            grad = np.ascontiguousarray(p.grad, dtype=p.dtype).reshape(-1)
            # one fused pass in C (csrc/optim.c) instead of ten NumPy passes
            _C.adam_step(p.data.reshape(-1), grad, m, v, step_size, b1, b2, self.eps, root_correction,
                         self.weight_decay)
