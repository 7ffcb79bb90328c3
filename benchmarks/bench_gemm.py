"""fastconv's GEMM (every ISA this CPU has) beside NumPy's matmul (its BLAS),
square sizes, 1 and 2 threads, float32 and float64, timed interleaved.

    python -m benchmarks.bench_gemm [--sizes 256 512 1024 2048]

NumPy's BLAS picks its thread count when it loads, so compare like with
like by pinning it per run:
    OPENBLAS_NUM_THREADS=1 python -m benchmarks.bench_gemm --thread-counts 1
    OPENBLAS_NUM_THREADS=2 python -m benchmarks.bench_gemm --thread-counts 2
"""
import numpy as np

import fastconv
from benchmarks import common
from fastconv import _C


def main():
    ap = common.parser(__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", type=int, default=[256, 512, 1024, 2048])
    ap.add_argument("--thread-counts", nargs="*", type=int, default=[1, 2])
    args = ap.parse_args()
    isas = [isa for isa in _C.ISAS if _C.isa_supported(isa)]
    before = _C.get_isa()
    print(f"fastconv {fastconv.build_info()}\n")
    rows = []
    for dtype in (np.float32, np.float64):
        for threads in args.thread_counts:
            fastconv.set_num_threads(threads)
            for n in args.sizes:
                a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
                c = np.empty((n, n), dtype)
                flat = a.reshape(-1)

                def ours(isa):
                    def run():
                        _C.set_isa(isa)
                        _C.gemm(n, n, n, flat, False, flat, False, None, None, c.reshape(-1))
                    return run
                cands = {isa: ours(isa) for isa in isas}
                cands["numpy"] = lambda: a @ a
                t = common.interleaved(cands, max(3, args.repeats // 2))
                gf = {k: 2 * n ** 3 / v / 1e9 for k, v in t.items()}
                rows.append([np.dtype(dtype).name, threads, n, f"{gf['numpy']:.0f}"] +
                            [f"{gf[isa]:.0f} ({gf[isa] / gf['numpy']:.2f}x)" for isa in isas])
    _C.set_isa(before)
    print("GFLOP/s (ratio to NumPy); NumPy's BLAS threads: OPENBLAS_NUM_THREADS="
          f"{__import__('os').environ.get('OPENBLAS_NUM_THREADS', 'unset (every core)')}")
    common.table(["dtype", "threads", "n", "numpy"] + [f"fastconv {isa}" for isa in isas], rows)


if __name__ == "__main__":
    main()
