"""fastconv on Dask arrays: lazy, chunk by chunk, on one machine or a cluster.

    import dask.array as da, fastconv.dask as fd
    x = da.from_zarr("stack.zarr")                  # (N, C, H, W), any chunks
    y = fd.conv2d(x, w, padding="same")             # lazy; chunks declared
    fd.predict(model, x).argmax(axis=1).to_zarr("labels.zarr")

Every function takes a 4-D Dask array and returns one with its chunks and
dtype declared (found by calling fastconv on an empty batch, which also
checks every argument with fastconv's own errors), so building the graph
computes nothing. Along the batch axis each chunk is one fastconv call. A
spatially chunked array (one image too large for memory) is cut into tiles
of output, one per input chunk, each reading its chunk plus the halo its
receptive field reaches and padding only where the whole image is padded,
so the tiles join into exactly the in-memory result, whatever the chunk
sizes, padding form, stride or dilation.

The optional extra: pip install "fastconv[dask]" (dask, distributed, zarr).
"""
import dask
import dask.array as da
import numpy as np

import fastconv
from . import _validate as V
from ._malloc import on_worker
from .autograd import Tensor, no_grad

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "conv1d", "conv_transpose2d", "adaptive_avg_pool2d",
           "map_batch", "predict"]


def _dask_input(fn, x, ndim=4):
    if not isinstance(x, da.Array):
        raise TypeError(f"fastconv.dask.{fn}: input must be a dask.array.Array, got {type(x).__name__} "
                        f"(for NumPy arrays call fastconv.{fn})")
    if x.ndim != ndim:
        raise ValueError(f"fastconv.dask.{fn}: input must be {ndim}-D ({'N, C, L' if ndim == 3 else 'N, C, H, W'}), "
                         f"got shape {x.shape}")
    return x


def _probe(call, x):
    """fastconv's answer for an empty batch of x's images: the output's
    per-image shape and dtype, and every argument checked."""
    return call(np.empty((0,) + x.shape[1:], x.dtype))


# --- Tiles of output along one axis -------------------------------------------

def _tiles(chunks, kernel, stride, dilation, before, out):
    """Cut `out` outputs along an axis of input chunks `chunks` into tiles.

    Output o's window covers input positions [o*stride - before, + extent);
    a tile holds the outputs whose windows start in one input chunk (the
    first also those starting in the padding before it, the last those after
    it). Returns (out_lo, out_hi, in_lo, in_hi, pad_lo, pad_hi) per tile:
    its outputs, the input it reads, and how many positions of its padded
    input lie before and after the image. A tile that would read no input
    (a stride longer than a chunk can leave one with only padding) joins
    its neighbour."""
    n, extent = sum(chunks), dilation * (kernel - 1) + 1
    cuts = [0] + [min(out, -(-(a + before) // stride)) for a in np.cumsum(chunks[:-1], dtype=int)]

    def tile(lo, hi):
        v0, v1 = lo * stride - before, (hi - 1) * stride - before + extent
        i0, i1 = min(max(v0, 0), n), max(min(v1, n), 0)
        return lo, hi, i0, max(i0, i1), v0, v1

    bounds = sorted(set(cuts)) + [out]
    while True:
        spans = [tile(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if lo < hi]
        empty = [k for k, t in enumerate(spans) if t[3] <= t[2]]
        if not empty or len(spans) == 1:
            break
        k = empty[0]  # drop the cut that separates it from a neighbour
        bounds.remove(spans[k][0] if k > 0 else spans[k][1])
    return [(lo, hi, i0, i1, i0 - v0, v1 - i1) for lo, hi, i0, i1, v0, v1 in spans]


def _tiled(x, windows, empty, tile, *constants):
    """tile(block, pads, spans, *constants) on every tile of x (N, C, H, W),
    joined. windows: (kernel, stride, dilation, padding before, outputs)
    along H and W; empty: fastconv's result for no images (the per-image
    shape and dtype); pads: the tile's ((top, bottom), (left, right))
    positions outside the image; spans: its outputs ((lo, hi), (lo, hi)).
    Constants (weights) travel as graph keys, so a cluster ships them to a
    worker once, not once a task."""
    x = x.rechunk({1: -1})
    rows, cols = _tiles(x.chunks[2], *windows[0]), _tiles(x.chunks[3], *windows[1])
    meta = np.empty((0,) * 4, empty.dtype)
    constants = [dask.delayed(c) for c in constants]
    grid = []
    for lo_h, hi_h, i0_h, i1_h, top, bottom in rows:
        row = []
        for lo_w, hi_w, i0_w, i1_w, left, right in cols:
            block = x[:, :, i0_h:i1_h, i0_w:i1_w].rechunk({2: -1, 3: -1})
            row.append(da.map_blocks(
                on_worker(tile), block, ((top, bottom), (left, right)), ((lo_h, hi_h), (lo_w, hi_w)), *constants,
                chunks=(block.chunks[0], (empty.shape[1],), (hi_h - lo_h,), (hi_w - lo_w,)),
                dtype=empty.dtype, meta=meta))
        grid.append(row)
    return da.block(grid)


# --- The functions ------------------------------------------------------------

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto",
           activation=None):
    """fastconv.conv2d of a Dask array (N, C_in, H, W), chunked anyhow."""
    fn = "conv2d"
    x = _dask_input(fn, input)
    w, b = np.asarray(weight), None if bias is None else np.asarray(bias)
    options = dict(stride=stride, dilation=dilation, groups=groups, algorithm=algorithm, activation=activation)
    empty = _probe(lambda e: fastconv.conv2d(e, w, b, padding=padding, **options), x)
    g = V.conv_geometry(fn, x.shape, w.shape, stride, padding, dilation, groups)

    def tile(block, pads, spans, w, b):
        return fastconv.conv2d(block, w, b, padding=pads, **options)

    windows = [(g.kh, g.stride[0], g.dilation[0], g.padding[0][0], g.out_h),
               (g.kw, g.stride[1], g.dilation[1], g.padding[1][0], g.out_w)]
    return _tiled(x, windows, empty, tile, w, b)


def _pool_windows(fn, x, kernel_size, stride, padding, dilation, ceil_mode):
    k, s, p, d, out_h, out_w = V.pool_window(fn, x.shape[-2:], kernel_size, stride, padding, dilation, ceil_mode)
    return [(k[0], s[0], d[0], p[0], out_h), (k[1], s[1], d[1], p[1], out_w)], (k, s, p, d)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *, algorithm="auto"):
    """fastconv.max_pool2d of a Dask array (N, C, H, W), chunked anyhow
    (without return_indices: an index is a position in the whole plane)."""
    fn = "max_pool2d"
    x = _dask_input(fn, input)
    empty = _probe(lambda e: fastconv.max_pool2d(e, kernel_size, stride, padding, dilation, ceil_mode,
                                                 algorithm=algorithm), x)
    windows, (k, s, _, d) = _pool_windows(fn, x, kernel_size, stride, padding, dilation, ceil_mode)

    def tile(block, pads, spans):
        block = np.pad(block.astype(empty.dtype, copy=False), ((0, 0), (0, 0)) + pads, constant_values=-np.inf)
        return fastconv.max_pool2d(block, k, s, 0, d, algorithm=algorithm)

    return _tiled(x, windows, empty, tile)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, algorithm="auto"):
    """fastconv.avg_pool2d of a Dask array (N, C, H, W), chunked anyhow."""
    fn = "avg_pool2d"
    x = _dask_input(fn, input)
    empty = _probe(lambda e: fastconv.avg_pool2d(e, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                                 divisor_override, algorithm=algorithm), x)
    windows, (k, s, p, _) = _pool_windows(fn, x, kernel_size, stride, padding, 1, ceil_mode)

    def counted(lo, hi, axis):
        """Positions each window counts along an axis (PyTorch's divisor):
        the input and its padding, or the input alone; never past the padding."""
        first, last = (-p[axis], x.shape[2 + axis] + p[axis]) if count_include_pad else (0, x.shape[2 + axis])
        starts = np.arange(lo, hi) * s[axis] - p[axis]
        return np.clip(np.minimum(starts + k[axis], last) - np.maximum(starts, first), 0, None)

    def tile(block, pads, spans):
        block = np.pad(block.astype(empty.dtype, copy=False), ((0, 0), (0, 0)) + pads)
        sums = fastconv.avg_pool2d(block, k, s, 0, divisor_override=1, algorithm=algorithm)
        divisor = divisor_override or np.outer(counted(*spans[0], 0), counted(*spans[1], 1)).astype(empty.dtype)
        return sums / divisor

    return _tiled(x, windows, empty, tile)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto"):
    """fastconv.conv1d of a Dask array (N, C_in, L), chunk by chunk of the batch."""
    _dask_input("conv1d", input, ndim=3)
    return map_batch(fastconv.conv1d, input, weight, bias, stride, padding, dilation, groups, algorithm=algorithm)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     algorithm="auto"):
    """fastconv.conv_transpose2d of a Dask array (N, C_in, H, W), chunk by chunk of the batch."""
    _dask_input("conv_transpose2d", input)
    return map_batch(fastconv.conv_transpose2d, input, weight, bias, stride, padding, output_padding, groups,
                     dilation, algorithm=algorithm)


def adaptive_avg_pool2d(input, output_size):
    """fastconv.adaptive_avg_pool2d of a Dask array (N, C, H, W), chunk by chunk of the batch."""
    _dask_input("adaptive_avg_pool2d", input)
    return map_batch(fastconv.adaptive_avg_pool2d, input, output_size)


def map_batch(function, input, *args, **kwargs):
    """function(chunk, *args, **kwargs) on each batch chunk of a Dask array
    whose other axes are merged into one chunk: any fastconv array function
    (conv1d, conv_transpose2d, adaptive_avg_pool2d, ...) image-wise."""
    if not isinstance(input, da.Array):
        raise TypeError(f"fastconv.dask.map_batch: input must be a dask.array.Array, got {type(input).__name__}")
    return _batchwise(input, lambda chunk, *args: function(chunk, *args, **kwargs), *args)


def _batchwise(input, call, *constants):
    """call(chunk, *constants) on each batch chunk, the other axes merged;
    the result may have other axes than the input (logits from images)."""
    x = input.rechunk({axis: -1 for axis in range(1, input.ndim)})
    empty = _probe(lambda e: call(e, *constants), x)
    extra = empty.ndim - x.ndim
    return da.map_blocks(on_worker(call), x, *[dask.delayed(c) for c in constants],
                         chunks=(x.chunks[0],) + tuple((n,) for n in empty.shape[1:]),
                         drop_axis=list(range(empty.ndim, x.ndim)) if extra < 0 else [],
                         new_axis=list(range(x.ndim, empty.ndim)) if extra > 0 else None,
                         dtype=empty.dtype, meta=np.empty((0,) * empty.ndim, empty.dtype))


def in_batches(function, chunk, batch):
    """function over a chunk `batch` images at a time, the results written
    into one array: a forward's activations are many times its input (a
    TutorialCNN's first layer alone is 256x its uint8 images), so a chunk
    goes through in pieces and a worker's memory grows with the chunk only
    by its input and output, not by the whole chunk's activations."""
    out = None
    for start in range(0, max(len(chunk), 1), batch):  # once for an empty chunk
        y = function(chunk[start:start + batch])
        if out is None:
            out = np.empty((len(chunk),) + y.shape[1:], y.dtype)
        out[start:start + len(y)] = y
    return out


def _forward(chunk, module, batch):
    with no_grad():
        return in_batches(lambda images: module(Tensor(images)).data, chunk, batch or max(len(chunk), 1))


def predict(module, input, batch=None):
    """module's eval-mode forward (no graph) on each batch chunk of a Dask
    array: a trained model over an image stack. batch: images per forward
    call (default: the whole chunk), bounding the activations' memory."""
    if not isinstance(input, da.Array):
        raise TypeError(f"fastconv.dask.predict: input must be a dask.array.Array, got {type(input).__name__}")
    if batch is not None:
        batch = V.integer("fastconv.dask.predict", "batch", batch, minimum=1)
    module.eval()
    return _batchwise(input, _forward, module, batch)
