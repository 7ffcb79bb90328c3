"""conv2d forward, grad-input and grad-weight on the shapes of real models:
fastconv (each algorithm; Winograd where it applies) beside PyTorch (CPU)
and NumPy im2col + matmul.

GFLOP/s = 2 * N * C_out * H_out * W_out * (C_in / groups) * kH * kW / time,
direct convolution's count, the same for every pass and algorithm: for
Winograd, which multiplies less, an "effective" rate that can pass the
machine's GEMM ceiling. "% GEMM
ceiling" is against the machine's GEMM ceiling measured in the same run:
the better of NumPy's BLAS and fastconv's GEMM at 2048^3.

    pytest benchmarks/bench_conv.py --benchmark-only [--threads 2] [-k mnist_c2]
    python -m benchmarks.bench_conv [the same options]
"""
import sys

import numpy as np
import pytest

import common
import fastconv
from shapes import CONV

PASSES = ("forward", "grad_input", "grad_weight")
# "winograd" is F(4x4, 3x3) (F(2x2, 3x3) on mnist_c1's single input channel,
# within its error bound), "winograd:2x2" F(2x2, 3x3); "auto" takes one
# or the other for wide enough 3x3 layers (conv2d.c's winograd_pays). The
# baseline comes first: the candidates after it take turns with it (conftest)
IMPLS = ("torch", "auto", "direct", "gemm", "winograd", "winograd:2x2", "numpy")


def candidate(impl, shape, dtype, pass_, torch):
    """(fn, flops) for one implementation of one pass."""
    n, ci, h, w, co, k, s, p, d, g = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, ci, h, w)).astype(dtype)
    wt = rng.standard_normal((co, ci // g, k, k)).astype(dtype)
    y = fastconv.conv2d(x, wt, stride=s, padding=p, dilation=d, groups=g)
    gy = rng.standard_normal(y.shape).astype(dtype)
    kw = dict(stride=s, padding=p, dilation=d, groups=g)
    flops = 2 * y.size * (ci // g) * k * k
    if impl.startswith("winograd") and (k != 3 or s != 1 or d != 1):
        pytest.skip("Winograd runs 3x3, stride-1, undilated convs")
    if impl == "torch":
        if torch is None:
            pytest.skip("PyTorch is not installed")
        tx, tw, tgy = torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(gy)
        if pass_ == "forward":
            return lambda: torch.nn.functional.conv2d(tx, tw, None, s, p, d, g), flops
        mask = [pass_ == "grad_input", pass_ == "grad_weight", False]
        return lambda: torch.ops.aten.convolution_backward(tgy, tx, tw, None, [s, s], [p, p], [d, d], False,
                                                           [0, 0], g, mask), flops
    if impl == "numpy":
        if pass_ == "forward":
            return lambda: common.numpy_conv2d(x, wt, s, p, d, g), flops
        if pass_ == "grad_input":
            return lambda: common.numpy_conv2d_grad_input(gy, x.shape, wt, s, p, d, g), flops
        return lambda: common.numpy_conv2d_grad_weight(gy, x, wt.shape, s, p, d, g), flops
    if pass_ == "forward":
        return lambda: fastconv.conv2d(x, wt, **kw, algorithm=impl), flops
    need = ("input",) if pass_ == "grad_input" else ("weight",)
    return lambda: fastconv.conv2d_backward(gy, x, wt, **kw, needs=need, algorithm=impl), flops


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("pass_", PASSES)
@pytest.mark.parametrize("name", CONV)
def test_conv2d(measure, ceiling, dtype, torch, name, pass_, impl):
    fn, flops = candidate(impl, CONV[name], dtype, pass_, torch)
    measure(fn, group=f"conv2d {name} {pass_}", impl=impl, flops=flops, operation="conv2d", shape=name,
            dtype=dtype.name, **{"pass": pass_})


if __name__ == "__main__":
    sys.exit(common.pytest_main(__file__, sys.argv[1:]))
