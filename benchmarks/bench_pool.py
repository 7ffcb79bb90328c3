"""Pooling (max and average, forward and backward) and transposed
convolution, fastconv beside PyTorch (CPU) and NumPy, timed interleaved.

Pooling is memory-bound: the GB/s column counts the bytes read and written
once (input + output, plus int64 indices for max with indices). Transposed
conv reports GFLOP/s with the conv count of its adjoint conv2d.

    python -m benchmarks.bench_pool [--threads 2] [--dtype float32]
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import fastconv
from benchmarks import common
from benchmarks.shapes import CONV_TRANSPOSE, POOL


def pool_candidates(shape, k, s, dtype, kind, pass_, torch):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y, idx = fastconv.max_pool2d(x, k, s, return_indices=True)
    gy = np.ones_like(y)
    out = {}
    if kind == "max":
        if pass_ == "forward":
            out["fastconv"] = lambda: fastconv.max_pool2d(x, k, s, return_indices=True)
        else:
            out["fastconv"] = lambda: fastconv.max_pool2d_backward(gy, idx, x.shape)
    else:
        if pass_ == "forward":
            out["fastconv"] = lambda: fastconv.avg_pool2d(x, k, s)
        else:
            out["fastconv"] = lambda: fastconv.avg_pool2d_backward(gy, x.shape, k, s)
    if torch is not None:
        F = torch.nn.functional
        tx, tgy, tidx = torch.from_numpy(x), torch.from_numpy(gy), torch.from_numpy(idx)
        if kind == "max" and pass_ == "forward":
            out["torch"] = lambda: F.max_pool2d(tx, k, s, return_indices=True)
        elif kind == "max":
            out["torch"] = lambda: torch.ops.aten.max_pool2d_with_indices_backward(tgy, tx, [k, k], [s, s], [0, 0],
                                                                                   [1, 1], False, tidx)
        elif pass_ == "forward":
            out["torch"] = lambda: F.avg_pool2d(tx, k, s)
        else:
            out["torch"] = lambda: torch.ops.aten.avg_pool2d_backward(tgy, tx, [k, k], [s, s], [0, 0], False, True, None)
    if pass_ == "forward":
        reduce = np.max if kind == "max" else np.mean
        out["numpy"] = lambda: reduce(sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s], axis=(4, 5))
    moved = x.nbytes + y.nbytes + (idx.nbytes if kind == "max" else 0)
    return out, moved


def transpose_candidates(shape, dtype, pass_, torch):
    n, ci, h, w, co, k, s, p, op = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, ci, h, w)).astype(dtype)
    wt = rng.standard_normal((ci, co, k, k)).astype(dtype)
    y = fastconv.conv_transpose2d(x, wt, stride=s, padding=p, output_padding=op)
    gy = rng.standard_normal(y.shape).astype(dtype)
    kw = dict(stride=s, padding=p, output_padding=op)
    out = {}
    if pass_ == "forward":
        out["fastconv"] = lambda: fastconv.conv_transpose2d(x, wt, **kw)
    else:
        out["fastconv"] = lambda: fastconv.conv_transpose2d_backward(gy, x, wt, **kw, needs=("input", "weight"))
    if torch is not None:
        tx, tw, tgy = torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(gy)
        if pass_ == "forward":
            out["torch"] = lambda: torch.nn.functional.conv_transpose2d(tx, tw, None, s, p, op)
        else:
            out["torch"] = lambda: torch.ops.aten.convolution_backward(
                tgy, tx, tw, None, [s, s], [p, p], [1, 1], True, [op, op], 1, [True, True, False])
    if pass_ == "forward":  # NumPy: the adjoint conv's input gradient, via im2col + matmul
        out["numpy"] = lambda: common.numpy_conv2d_grad_input(x, y.shape, wt, s, p, 1, 1)
    flops = 2 * x.size * co * k * k * (2 if pass_ == "backward" else 1)
    return out, flops


def main():
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    threads = common.setup_threads(args.threads)
    torch = common.try_torch()
    dtype = np.dtype(args.dtype)
    print(f"fastconv {fastconv.build_info()}, {threads} threads, {dtype}; "
          f"torch {torch.__version__ if torch else 'not installed'}\n")
    rows = []

    def report(operation, pass_, t, rate):
        ms = lambda key: f"{t[key] * 1e3:.3f}" if key in t else "-"
        ratio = lambda key: f"{t[key] / t['fastconv']:.2f}" if key in t else "-"
        rows.append([operation, pass_, ms("fastconv"), ms("torch"), ms("numpy"), rate, ratio("torch"), ratio("numpy")])

    for name, (shape, k, s) in POOL.items():
        for kind in ("max", "avg"):
            for pass_ in ("forward", "backward"):
                cands, moved = pool_candidates(shape, k, s, dtype, kind, pass_, torch)
                t = common.interleaved(cands, args.repeats)
                report(f"{kind}_pool {name}", pass_, t, f"{moved / t['fastconv'] / 1e9:.1f} GB/s")
    for name, shape in CONV_TRANSPOSE.items():
        for pass_ in ("forward", "backward"):
            cands, flops = transpose_candidates(shape, dtype, pass_, torch)
            t = common.interleaved(cands, args.repeats)
            report(f"conv_transpose {name}", pass_, t, f"{flops / t['fastconv'] / 1e9:.1f} GFLOP/s")
    common.table(["operation", "pass", "fastconv ms", "torch ms", "numpy ms", "fastconv rate",
                  "speedup vs torch", "vs numpy"], rows)


if __name__ == "__main__":
    main()
