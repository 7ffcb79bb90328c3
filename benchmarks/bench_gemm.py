"""fastconv's GEMM (every ISA this CPU has) beside NumPy's matmul (its BLAS),
square sizes, 1 and 2 threads, float32 and float64. NumPy's BLAS is held to
the same thread count through threadpoolctl (the bench extra) when it is
installed; without it, NumPy uses every core.

    pytest benchmarks/bench_gemm.py --benchmark-only
    python -m benchmarks.bench_gemm [the same options]
"""
import contextlib
import sys

import numpy as np
import pytest

import common
import fastconv
from fastconv import _C

SIZES = (256, 512, 1024, 2048)
IMPLS = ("numpy",) + tuple(_C.ISAS)  # the baseline first: the ISAs take turns with it (conftest)


def blas_threads(n):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(n, user_api="blas")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("dtype_name", ("float32", "float64"))
def test_gemm(measure, ceiling, dtype_name, threads, n, impl):
    if impl != "numpy" and not _C.isa_supported(impl):
        pytest.skip(f"this CPU has no {impl}")
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype_name)
    c = np.empty((n, n), dtype_name)
    flat = a.reshape(-1)
    before_isa, before_threads = _C.get_isa(), fastconv.get_num_threads()
    if impl == "numpy":
        def fn():
            return a @ a
    else:
        _C.set_isa(impl)

        def fn():
            _C.gemm(n, n, n, flat, False, flat, False, None, None, c.reshape(-1))
    fastconv.set_num_threads(threads)
    try:
        with blas_threads(threads):
            measure(fn, group=f"gemm {dtype_name} {threads} threads n={n}", impl=impl, flops=2 * n ** 3,
                    baseline="numpy", operation="gemm", shape=f"{n}^3", dtype=dtype_name, threads=threads)
    finally:
        _C.set_isa(before_isa)
        fastconv.set_num_threads(before_threads)


if __name__ == "__main__":
    sys.exit(common.pytest_main(__file__, sys.argv[1:]))
