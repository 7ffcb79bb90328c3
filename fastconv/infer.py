"""Batch inference of a saved checkpoint over a zarr image stack.

    fastconv-infer checkpoints/tutorial-fashion.npz images.zarr labels.zarr
    fastconv-infer CHECKPOINT IN.zarr OUT.zarr --scheduler tcp://head:8786

Reads (N, H, W) or (N, C, H, W) images (uint8 are scaled to [0, 1], as the
training data was), runs the model chunk by chunk and writes the predicted
class of each image (or, with --logits, the model's outputs) to a zarr
array. A worker holds the model, one forward batch's activations (--batch
images) and a few chunks of images and labels, whatever N. Without
--scheduler it runs on Dask's threaded scheduler on this machine; with one,
on that distributed cluster (whose workers must see both zarr paths).
Needs the extra: pip install "fastconv[dask]".
"""
import argparse
import contextlib
import functools
import os
import sys

import numpy as np

from .autograd import Tensor, no_grad
from .models import MODELS


@functools.lru_cache(maxsize=4)
def load(model, checkpoint):
    """The model, once per process: each worker reads the checkpoint itself,
    so the graph carries its path, not its weights."""
    module = MODELS[model]().load(checkpoint)
    module.eval()
    return module


# Images per forward call. Past a few hundred images a batch's activations
# outgrow the caches and the forward slows down; below about a hundred,
# per-call overhead shows (benchmarks/bench_dask.py times the batch sizes).
BATCH = 128


def labels_of(images, model, checkpoint, logits=False, batch=BATCH):
    """One chunk, `batch` images at a time: images as the trainer saw them
    (uint8 scaled to [0, 1], a channel axis added), the model's outputs or
    their argmax."""
    from .dask import in_batches
    module = load(model, checkpoint)

    def forward(part):
        x = part.astype(np.float32) / 255.0 if part.dtype == np.uint8 else part.astype(np.float32)
        with no_grad():
            y = module(Tensor(x if x.ndim == 4 else x[:, None])).data
        return y if logits else y.argmax(axis=1)
    return in_batches(forward, images, batch)


def build(images, model, checkpoint, logits=False, batch=BATCH):
    """The lazy predictions for a Dask array of images: one task a chunk."""
    from . import dask as fd
    return fd.map_batch(labels_of, images, model, os.path.abspath(checkpoint), logits, batch)


def main(argv=None):
    p = argparse.ArgumentParser(prog="fastconv-infer", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="a .npz saved by Module.save (python -m fastconv.mnist)")
    p.add_argument("input", help="zarr array of images, (N, H, W) or (N, C, H, W)")
    p.add_argument("output", help="zarr array to write (N,) labels or (N, classes) logits to")
    p.add_argument("--model", choices=sorted(MODELS), default="tutorial")
    p.add_argument("--chunk", type=int, default=None, help="images per task (default: the input's chunks)")
    p.add_argument("--batch", type=int, default=BATCH,
                   help=f"images per forward call within a chunk (default {BATCH}; bounds the activations' memory)")
    p.add_argument("--logits", action="store_true", help="write the model's outputs, not labels")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="a dask.distributed scheduler (default: threads on this machine)")
    p.add_argument("--workers", type=int, default=None, help="threads of the local scheduler")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output array")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    for flag in ("chunk", "batch"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            p.error(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    try:
        import dask.array as da
    except ImportError:
        print('fastconv-infer: needs Dask and zarr: pip install "fastconv[dask]"', file=sys.stderr)
        return 2

    try:
        load(args.model, os.path.abspath(args.checkpoint))
        images = da.from_zarr(args.input)
    except (ValueError, OSError, FileNotFoundError) as e:
        print(f"fastconv-infer: {e}", file=sys.stderr)
        return 2
    if args.chunk:
        images = images.rechunk({0: args.chunk})
    labels = build(images, args.model, args.checkpoint, args.logits, args.batch)
    store = labels.to_zarr(args.output, overwrite=args.overwrite, compute=False)

    if args.scheduler:
        from distributed import Client, progress
        with Client(args.scheduler) as client:
            future = client.compute(store)
            if not args.no_progress:
                progress(future)
            future.result()
    else:
        from dask.diagnostics import ProgressBar
        with contextlib.nullcontext() if args.no_progress else ProgressBar(out=sys.stderr):
            store.compute(scheduler="threads", num_workers=args.workers)
    print(f"wrote {images.shape[0]} {'outputs' if args.logits else 'labels'} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
