"""The benchmark suite on pytest-benchmark:

    pytest benchmarks/ --benchmark-only [--threads 2] [--dtype float32] [--quick]

Each benchmark is one implementation (a fastconv algorithm or ISA, PyTorch
when installed, the NumPy baseline) of one operation, shape and pass, and
the implementations of one (operation, shape, pass) share a group, so each
group's table compares them side by side. After pytest-benchmark's tables
comes one summary table per run with the rates and the ratios against
PyTorch, then the per-pass geometric means; the saved JSON
(--benchmark-autosave, --benchmark-json) carries the same figures in each
benchmark's extra_info and the run's under "fastconv".

How each candidate is timed (measure): one untimed call (caches, pages,
thread pools), then rounds of consecutive calls, each round at least
ROUND_SECONDS long, so that a 0.1 ms pass runs a hundred calls a round and
a 100 ms one a single call; one warm-up round, then ROUNDS rounds; ratios
use each candidate's best round. A group's candidates run back to back, so
they see the same state of a shared machine within seconds (pytest-benchmark
cannot interleave them round by round). --quick runs 2 short rounds, for a
look; --benchmark-disable calls each candidate once and times nothing (CI).

Nothing here sets a variable that changes how fastconv, PyTorch or NumPy
behave: they run in the environment a user has."""
import math
import os
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # common, shapes: beside this file, not an installed package

import common  # noqa: E402

ROUNDS, ROUND_SECONDS = 7, 0.02
DEPTHWISE = ("depthwise", "mobilenet_dw")  # left out of the dense geometric means
QUICK_ROUNDS, QUICK_ROUND_SECONDS = 2, 0.002


def pytest_addoption(parser):
    group = parser.getgroup("fastconv benchmarks")
    group.addoption("--threads", type=int, default=None, help="threads for fastconv and PyTorch (default: fastconv's)")
    group.addoption("--dtype", choices=["float32", "float64"], default="float32", help="dtype of conv and pool data")
    group.addoption("--quick", action="store_true", help="2 short rounds per candidate instead of 7")


def pytest_configure(config):
    import fastconv
    threads = config.getoption("threads")
    if threads:
        fastconv.set_num_threads(threads)
    torch = common.try_torch()
    if torch is not None:
        torch.set_num_threads(fastconv.get_num_threads())
    config.fastconv_results = {}


@pytest.fixture(scope="session")
def torch():
    return common.try_torch()


@pytest.fixture(scope="session")
def dtype(pytestconfig):
    return np.dtype(pytestconfig.getoption("dtype"))


class Measure:
    """measure(fn, group=..., impl=..., flops=... or moved=...) times fn as
    the candidate `impl` of `group` and records what the summary needs."""

    def __init__(self, benchmark, config):
        self.benchmark, self.config = benchmark, config
        quick = config.getoption("quick")
        self.rounds, self.round_seconds = (QUICK_ROUNDS, QUICK_ROUND_SECONDS) if quick else (ROUNDS, ROUND_SECONDS)

    def __call__(self, fn, *, group, impl, flops=None, moved=None, baseline="torch", **info):
        b = self.benchmark
        b.group = group
        info.setdefault("dtype", self.config.getoption("dtype"))
        b.extra_info.update(impl=impl, baseline=baseline, **info)
        if flops:
            b.extra_info["flops"] = int(flops)
        if moved:
            b.extra_info["bytes"] = int(moved)
        if b.disabled:  # --benchmark-disable: one call, nothing timed
            b.pedantic(fn)
            return
        fn()
        start = time.perf_counter()
        fn()
        once = time.perf_counter() - start
        iterations = max(1, math.ceil(self.round_seconds / max(once, 1e-9)))
        b.pedantic(fn, rounds=self.rounds, iterations=iterations, warmup_rounds=1)
        self.config.fastconv_results[(group, impl)] = dict(b.extra_info, seconds=b.stats.stats.min)
        if impl in common.BLAS_BASELINES:  # let OpenBLAS's spinning threads go idle before the next candidate
            time.sleep(common.BLAS_SPIN_SECONDS)


@pytest.fixture
def measure(benchmark, pytestconfig):
    return Measure(benchmark, pytestconfig)


@pytest.fixture(scope="session")
def ceiling(pytestconfig, dtype):
    """This machine's GEMM ceiling in GFLOP/s for the run's dtype, measured
    once per run; candidates of that dtype are rated against it."""
    n = 512 if pytestconfig.getoption("quick") else 2048
    value = common.gemm_ceiling(dtype, n=n)
    pytestconfig.fastconv_ceiling = value
    return value


def derived(results, ceiling, ceiling_dtype):
    """Per candidate: its rate (GFLOP/s, GB/s or images/s), its share of the GEMM
    ceiling, and its time against its group's baseline (PyTorch, or NumPy
    for the GEMM); the geometric means of fastconv's 'auto' against
    PyTorch per conv pass, and for the backward (both gradients), over the
    dense shapes (all but the depthwise ones)."""
    rows = {}
    for (group, impl), r in results.items():
        row = {"seconds": r["seconds"]}
        if "flops" in r:
            row["gflops"] = r["flops"] / r["seconds"] / 1e9
            if ceiling and r["dtype"] == ceiling_dtype:
                row["percent_of_ceiling"] = 100 * row["gflops"] / ceiling
        if "bytes" in r:
            row["gbps"] = r["bytes"] / r["seconds"] / 1e9
        if "images" in r:
            row["images_per_second"] = r["images"] / r["seconds"]
        base = results.get((group, r["baseline"]))
        if base and impl != r["baseline"]:
            row[f"time_vs_{r['baseline']}"] = r["seconds"] / base["seconds"]
        rows[group, impl] = row
    means = {}
    conv = {(r["shape"], r["pass"]): (group, r) for (group, impl), r in results.items()
            if r.get("operation") == "conv2d" and impl == "auto" and (group, "torch") in results}
    dense = sorted({shape for shape, _ in conv if shape not in DEPTHWISE})
    seconds = lambda shape, p, impl: results[conv[shape, p][0], impl]["seconds"]  # noqa: E731
    for pass_ in ("forward", "grad_input", "grad_weight", "backward"):
        if pass_ == "backward":  # both gradients, as a training step needs them
            ratios = [(seconds(s, "grad_input", "auto") + seconds(s, "grad_weight", "auto")) /
                      (seconds(s, "grad_input", "torch") + seconds(s, "grad_weight", "torch"))
                      for s in dense if (s, "grad_input") in conv and (s, "grad_weight") in conv]
        else:
            ratios = [rows[conv[s, pass_][0], "auto"]["time_vs_torch"] for s in dense if (s, pass_) in conv]
        if ratios:
            means[f"conv2d {pass_}"] = float(np.exp(np.mean(np.log(ratios))))
    return rows, means


def pytest_benchmark_update_json(config, benchmarks, output_json):
    rows, means = derived(config.fastconv_results, getattr(config, "fastconv_ceiling", None),
                          config.getoption("dtype"))
    for bench in output_json["benchmarks"]:
        bench["extra_info"].update(rows.get((bench["group"], bench["extra_info"].get("impl")), {}))
    output_json["fastconv"] = {"gemm_ceiling_gflops": getattr(config, "fastconv_ceiling", None),
                               "geomean_time_vs_torch": means, "threads": _threads()}


def _threads():
    import fastconv
    return fastconv.get_num_threads()


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    results = config.fastconv_results
    if not results:
        return
    ceiling = getattr(config, "fastconv_ceiling", None)
    rows, means = derived(results, ceiling, config.getoption("dtype"))
    import fastconv
    write = terminalreporter.write_line
    write("")
    write(f"fastconv {fastconv.build_info()}, {_threads()} threads; "
          + (f"{config.getoption('dtype')} GEMM ceiling {ceiling:.0f} GFLOP/s" if ceiling else "no GEMM ceiling"))
    table = []
    for (group, impl), row in rows.items():
        rate = (f"{row['gflops']:.1f} GFLOP/s" if "gflops" in row else
                f"{row['gbps']:.1f} GB/s" if "gbps" in row else
                f"{row['images_per_second']:.0f} img/s" if "images_per_second" in row else "-")
        share = f"{row['percent_of_ceiling']:.0f}%" if "percent_of_ceiling" in row else "-"
        versus = next((f"{v:.2f} ({k[8:]})" for k, v in row.items() if k.startswith("time_vs_")), "-")
        table.append([group, impl, f"{row['seconds'] * 1e3:.3f}", rate, share, versus])
    for line in common.table_lines(["group", "implementation", "best ms", "rate", "% GEMM ceiling", "time vs"],
                                   table):
        write(line)
    for name, value in means.items():
        write(f"{name}: geometric mean fastconv/torch time over the dense shapes = {value:.2f}")
