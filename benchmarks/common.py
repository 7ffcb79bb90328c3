"""Timing and reporting shared by the benchmarks, plus NumPy baselines.

The suite itself runs on pytest-benchmark (conftest.py); `interleaved`
serves only the GEMM ceiling, the best of two libraries at one size."""
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def setup_threads(threads):
    import fastconv
    if threads:
        fastconv.set_num_threads(threads)
    torch = try_torch()
    if torch is not None:
        torch.set_num_threads(fastconv.get_num_threads())
    return fastconv.get_num_threads()


def try_torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


# Candidates that run on NumPy's BLAS. OpenBLAS's idle threads busy-wait
# for about 0.1 s after each call, and on 2 cores that slows whatever runs
# next: after one of these the next candidate waits that long, so the
# baseline's pool is charged to the baseline alone.
BLAS_BASELINES = ("numpy", "blas")
BLAS_SPIN_SECONDS = 0.15


def interleaved(candidates, repeats, stat=np.median, run=1):
    """{name: fn} -> {name: median (or `stat`) seconds per call}, runs
    alternating between candidates.

    Each timed run of `run` consecutive calls directly follows an untimed
    call of the same candidate, so every candidate is measured warm (its
    caches, pages and thread pool), never paying for the one before it: a
    NumPy baseline that streams large temporaries would otherwise slow
    whichever candidate comes next by up to several times on 2 cores.
    """
    times = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            fn()
            start = time.perf_counter()
            for _ in range(run):
                fn()
            times[name].append((time.perf_counter() - start) / run)
            if name in BLAS_BASELINES:
                time.sleep(BLAS_SPIN_SECONDS)
    return {name: float(stat(t)) for name, t in times.items()}


def gemm_ceiling(dtype, n=2048, repeats=5):
    """This machine's measured GEMM ceiling in GFLOP/s: the better of NumPy's
    BLAS and fastconv's own GEMM at n^3, in this run, best of `repeats`: a
    ceiling is what the silicon allows, and on a shared machine a median
    reads whatever the neighbours left (it put convs at 130% of it)."""
    from fastconv import _C
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    c = np.empty_like(a)
    t = interleaved({"blas": lambda: a @ a,
                     "fastconv": lambda: _C.gemm(n, n, n, a.reshape(-1), False, a.reshape(-1), False, None, None, c.reshape(-1))}, repeats, np.min)
    return 2 * n ** 3 / min(t.values()) / 1e9


def table_lines(header, rows):
    """A Markdown table, right-aligned, as lines."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).rjust(w) for c, w in zip(r, widths)) + " |"
    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows]


def table(header, rows):
    print("\n".join(table_lines(header, rows)))


def pytest_main(module_file, argv):
    """`python -m benchmarks.bench_X [pytest options]`: the module's
    benchmarks under pytest-benchmark, as `pytest FILE --benchmark-only`."""
    import pytest
    return pytest.main([module_file, "--benchmark-only", "-p", "no:cacheprovider", *argv])


# ---------------------------------------------------------------- NumPy
# A plain NumPy im2col + matmul convolution: the baseline a NumPy user has.

def _windows(x, k, stride, padding, dilation):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    span = dilation * (k - 1) + 1
    v = sliding_window_view(xp, (span, span), axis=(2, 3))
    return v[:, :, ::stride, ::stride, ::dilation, ::dilation]  # (N, C, OH, OW, k, k)


def numpy_conv2d(x, w, stride, padding, dilation, groups):
    n, c, _, _ = x.shape
    co, cg, k, _ = w.shape
    win = _windows(x, k, stride, padding, dilation)
    oh, ow = win.shape[2:4]
    og = co // groups
    out = np.empty((n, co, oh, ow), x.dtype)
    for g in range(groups):
        cols = win[:, g * cg:(g + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, cg * k * k)
        y = cols @ w[g * og:(g + 1) * og].reshape(og, -1).T
        out[:, g * og:(g + 1) * og] = y.reshape(n, oh, ow, og).transpose(0, 3, 1, 2)
    return out


def numpy_conv2d_grad_input(gy, x_shape, w, stride, padding, dilation, groups):
    n, c, h, wd = x_shape
    co, cg, k, _ = w.shape
    og, (oh, ow) = co // groups, gy.shape[2:]
    gxp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding), gy.dtype)
    for g in range(groups):
        gyg = gy[:, g * og:(g + 1) * og].transpose(0, 2, 3, 1).reshape(-1, og)
        cols = (gyg @ w[g * og:(g + 1) * og].reshape(og, -1)).reshape(n, oh, ow, cg, k, k)
        for i in range(k):
            for j in range(k):
                gxp[:, g * cg:(g + 1) * cg, i * dilation:i * dilation + stride * (oh - 1) + 1:stride,
                    j * dilation:j * dilation + stride * (ow - 1) + 1:stride] += cols[..., i, j].transpose(0, 3, 1, 2)
    return gxp[:, :, padding:padding + h, padding:padding + wd]


def numpy_conv2d_grad_weight(gy, x, w_shape, stride, padding, dilation, groups):
    n = x.shape[0]
    co, cg, k, _ = w_shape
    win = _windows(x, k, stride, padding, dilation)
    oh, ow = win.shape[2:4]
    og = co // groups
    gw = np.empty(w_shape, x.dtype)
    for g in range(groups):
        cols = win[:, g * cg:(g + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, -1)
        gyg = gy[:, g * og:(g + 1) * og].transpose(1, 0, 2, 3).reshape(og, -1)
        gw[g * og:(g + 1) * og] = (gyg @ cols).reshape(og, cg, k, k)
    return gw
