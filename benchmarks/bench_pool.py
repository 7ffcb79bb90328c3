"""Pooling (max and average, forward and backward) and transposed
convolution, fastconv beside PyTorch (CPU) and NumPy.

Pooling is memory-bound: its GB/s counts the bytes read and written once
(input + output, plus int64 indices for max with indices). Transposed conv
reports GFLOP/s with the direct-convolution count of its adjoint conv2d.

    pytest benchmarks/bench_pool.py --benchmark-only
    python -m benchmarks.bench_pool [the same options]
"""
import sys

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import common
import fastconv
from shapes import CONV_TRANSPOSE, POOL

# the baseline first: the candidates after it take turns with it (conftest)
IMPLS = ("torch", "fastconv", "numpy")
# the transposed conv also by each of fastconv's algorithms ("fastconv" is
# "auto"); Winograd runs a k4 s2 layer on its stride phases
TRANSPOSE_IMPLS = ("torch", "fastconv", "gemm", "winograd", "winograd:2x2", "numpy")


def pool_candidate(impl, shape, k, s, dtype, kind, pass_, torch):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y, idx = fastconv.max_pool2d(x, k, s, return_indices=True)
    gy = np.ones_like(y)
    moved = x.nbytes + y.nbytes + (idx.nbytes if kind == "max" else 0)
    if impl == "fastconv":
        if kind == "max":
            return ((lambda: fastconv.max_pool2d(x, k, s, return_indices=True)) if pass_ == "forward" else
                    (lambda: fastconv.max_pool2d_backward(gy, idx, x.shape))), moved
        return ((lambda: fastconv.avg_pool2d(x, k, s)) if pass_ == "forward" else
                (lambda: fastconv.avg_pool2d_backward(gy, x.shape, k, s))), moved
    if impl == "torch":
        if torch is None:
            pytest.skip("PyTorch is not installed")
        F = torch.nn.functional
        tx, tgy, tidx = torch.from_numpy(x), torch.from_numpy(gy), torch.from_numpy(idx)
        if kind == "max" and pass_ == "forward":
            return lambda: F.max_pool2d(tx, k, s, return_indices=True), moved
        if kind == "max":
            return lambda: torch.ops.aten.max_pool2d_with_indices_backward(tgy, tx, [k, k], [s, s], [0, 0], [1, 1],
                                                                           False, tidx), moved
        if pass_ == "forward":
            return lambda: F.avg_pool2d(tx, k, s), moved
        return lambda: torch.ops.aten.avg_pool2d_backward(tgy, tx, [k, k], [s, s], [0, 0], False, True, None), moved
    if pass_ == "backward":
        pytest.skip("no NumPy baseline for pooling's backward")
    reduce = np.max if kind == "max" else np.mean
    return lambda: reduce(sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s], axis=(4, 5)), moved


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("pass_", ("forward", "backward"))
@pytest.mark.parametrize("kind", ("max", "avg"))
@pytest.mark.parametrize("name", POOL)
def test_pool2d(measure, dtype, torch, name, kind, pass_, impl):
    shape, k, s = POOL[name]
    fn, moved = pool_candidate(impl, shape, k, s, dtype, kind, pass_, torch)
    measure(fn, group=f"{kind}_pool2d {name} {pass_}", impl=impl, moved=moved, operation=f"{kind}_pool2d",
            shape=name, dtype=dtype.name, **{"pass": pass_})


def transpose_candidate(impl, shape, dtype, pass_, torch):
    n, ci, h, w, co, k, s, p, op = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, ci, h, w)).astype(dtype)
    wt = rng.standard_normal((ci, co, k, k)).astype(dtype)
    y = fastconv.conv_transpose2d(x, wt, stride=s, padding=p, output_padding=op)
    gy = rng.standard_normal(y.shape).astype(dtype)
    kw = dict(stride=s, padding=p, output_padding=op)
    flops = 2 * x.size * co * k * k * (2 if pass_ == "backward" else 1)
    if impl in ("fastconv", "gemm", "winograd", "winograd:2x2"):
        if impl.startswith("winograd") and not (k % s == 0 and k // s in (2, 3)):
            pytest.skip("Winograd takes kernels of 2 or 3 strides")
        kw["algorithm"] = "auto" if impl == "fastconv" else impl
        if pass_ == "forward":
            return lambda: fastconv.conv_transpose2d(x, wt, **kw), flops
        return lambda: fastconv.conv_transpose2d_backward(gy, x, wt, **kw, needs=("input", "weight")), flops
    if impl == "torch":
        if torch is None:
            pytest.skip("PyTorch is not installed")
        tx, tw, tgy = torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(gy)
        if pass_ == "forward":
            return lambda: torch.nn.functional.conv_transpose2d(tx, tw, None, s, p, op), flops
        return lambda: torch.ops.aten.convolution_backward(tgy, tx, tw, None, [s, s], [p, p], [1, 1], True,
                                                           [op, op], 1, [True, True, False]), flops
    if pass_ == "backward":
        pytest.skip("no NumPy baseline for the transposed conv's backward")
    # NumPy: the adjoint conv's input gradient, via im2col + matmul
    return lambda: common.numpy_conv2d_grad_input(x, y.shape, wt, s, p, 1, 1), flops


@pytest.mark.parametrize("impl", TRANSPOSE_IMPLS)
@pytest.mark.parametrize("pass_", ("forward", "backward"))
@pytest.mark.parametrize("name", CONV_TRANSPOSE)
def test_conv_transpose2d(measure, ceiling, dtype, torch, name, pass_, impl):
    fn, flops = transpose_candidate(impl, CONV_TRANSPOSE[name], dtype, pass_, torch)
    measure(fn, group=f"conv_transpose2d {name} {pass_}", impl=impl, flops=flops, operation="conv_transpose2d",
            shape=name, dtype=dtype.name, **{"pass": pass_})


if __name__ == "__main__":
    sys.exit(common.pytest_main(__file__, sys.argv[1:]))
