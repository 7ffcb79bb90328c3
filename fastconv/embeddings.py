"""Embedding lookup on NumPy arrays, as torch.nn.functional.embedding: rows
of a (num_embeddings, embedding_dim) table picked by integer indices; the
backward adds each output row's gradient into its table row."""
import numpy as np

from . import _validate as V


def _padding_idx(fn, padding_idx, count):
    """None, or an index in [-count, count) made non-negative, as PyTorch."""
    if padding_idx is None:
        return None
    p = V.integer(fn, "padding_idx", padding_idx)
    if not -count <= p < count:
        raise ValueError(f"{fn}: padding_idx must be in [-{count}, {count}) (num_embeddings={count}), got {p}")
    return p % count


def _table(fn, weight):
    w = V.array(fn, "weight", weight)
    V.ndim(fn, "weight", w, 2, "2-D (num_embeddings, embedding_dim)")
    return w


def embedding(input, weight, padding_idx=None):
    """weight[input]: shape input.shape + (embedding_dim,). An index outside
    [0, num_embeddings) is a ValueError naming it. padding_idx changes no
    output (its row is a row like any other); it only stops the gradient."""
    fn = "embedding"
    w = _table(fn, weight)
    idx = V.indices(fn, "input", input, w.shape[0])
    _padding_idx(fn, padding_idx, w.shape[0])
    return w.astype(V.result_dtype(w), copy=False).take(idx, axis=0)


def embedding_backward(grad_output, input, num_embeddings, padding_idx=None):
    """The table's gradient: each grad_output row added into the row its
    index names (repeats add up); padding_idx's row stays zero."""
    fn = "embedding_backward"
    num_embeddings = V.integer(fn, "num_embeddings", num_embeddings, 1)
    idx = V.indices(fn, "input", input, num_embeddings)
    g = V.array(fn, "grad_output", grad_output)
    if g.ndim != idx.ndim + 1 or g.shape[:-1] != idx.shape:
        raise ValueError(f"{fn}: grad_output has shape {g.shape}, expected input's {idx.shape} + (embedding_dim,)")
    gw = np.zeros((num_embeddings, g.shape[-1]), V.result_dtype(g))
    np.add.at(gw, idx.reshape(-1), g.reshape(-1, g.shape[-1]))
    p = _padding_idx(fn, padding_idx, num_embeddings)
    if p is not None:
        gw[p] = 0
    return gw
