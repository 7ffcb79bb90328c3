"""The elementwise passes of a training step on NumPy arrays, each one pass
in C (csrc/elementwise.c) where NumPy needs several: ReLU and its backward
from the output's sign, dropout with a counter-based random stream, and
softmax cross-entropy with its gradient."""
import numpy as np

from . import _C
from . import _validate as V


def _float(fn, name, value):
    arr = V.array(fn, name, value)
    return V.contiguous(arr, V.result_dtype(arr))


def relu(x):
    """max(x, 0) as a new array; NaN stays NaN."""
    x = _float("relu", "input", x)
    y = np.empty_like(x)
    if x.size:
        _C.relu(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(grad_output, output):
    """grad_output where the ReLU's output is positive, else 0."""
    fn = "relu_backward"
    y = _float(fn, "output", output)
    gy = V.contiguous(V.array(fn, "grad_output", grad_output), y.dtype)
    V.grad_shape(fn, gy, y.shape)
    gx = np.empty_like(y)
    if y.size:
        _C.relu_backward(gy.reshape(-1), y.reshape(-1), gx.reshape(-1))
    return gx


def dropout(x, p, seed):
    """Each element kept with probability 1 - p and scaled by 1 / (1 - p),
    else 0. Which are kept depends on seed (an int in [0, 2**64)) and the
    element's position alone, so dropout(gy, p, seed) is the backward."""
    fn = "dropout"
    if not 0 <= p < 1:
        raise ValueError(f"{fn}: p must be in [0, 1), got {p}")
    seed = V.integer(fn, "seed", seed, 0)
    if seed >= 2 ** 64:
        raise ValueError(f"{fn}: seed must be below 2**64, got {seed}")
    x = _float(fn, "input", x)
    y = np.empty_like(x)
    if x.size:
        _C.dropout(x.reshape(-1), float(p), seed, y.reshape(-1))
    return y


def cross_entropy(logits, labels):
    """(mean softmax cross-entropy of (N, classes) logits against integer
    labels (N,), its gradient with respect to the logits)."""
    fn = "cross_entropy"
    z = _float(fn, "input", logits)
    labels = np.asarray(labels)
    if z.ndim != 2 or labels.shape != z.shape[:1]:
        raise ValueError(f"{fn}: logits must be (N, classes) and labels (N,), got {z.shape} and {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{fn}: labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= z.shape[1]):
        raise ValueError(f"{fn}: labels must lie in [0, {z.shape[1]}), got {labels.min()}..{labels.max()}")
    grad = np.empty_like(z)
    if not len(labels):  # the mean of nothing, as PyTorch
        return np.asarray(np.nan, z.dtype), grad
    loss = _C.cross_entropy(z.shape[0], z.shape[1], z.reshape(-1), np.ascontiguousarray(labels, np.int64), grad.reshape(-1))
    return np.asarray(loss, z.dtype), grad
