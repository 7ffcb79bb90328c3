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
a 100 ms one a single call; one warm-up round, then ROUNDS rounds; each
candidate's figure is its best round. Each group's baseline (PyTorch, or
what `baseline=` names) runs first, and every other candidate of the group
takes turns with it: after each of the candidate's rounds comes a round of
the baseline, then an untimed call of the candidate (Paired). A ratio is
the candidate's best round over the best of the baseline's rounds taken
between its own, so the two saw the same seconds of a shared machine: a
busy second that slowed one candidate's run of rounds and not the
baseline's run had read as a ratio 20-30% off. pytest-benchmark cannot
interleave candidates itself; its teardown hook, called after each round,
runs the baseline's. --quick runs 2 short rounds, for a look;
--benchmark-disable calls each candidate once and times nothing (CI).

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
import shapes  # noqa: E402

ROUNDS, ROUND_SECONDS = 7, 0.02
DEPTHWISE = ("depthwise", "mobilenet_dw")  # left out of the dense geometric means
# the dense shapes that issue 13's targets average over: 3x3, stride 1, undilated, ungrouped
DENSE_3X3 = tuple(name for name, (*_, k, s, p, d, g) in shapes.CONV.items() if (k, s, d, g) == (3, 1, 1, 1))
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
    config.fastconv_baseline = None


@pytest.fixture(scope="session")
def torch():
    return common.try_torch()


@pytest.fixture(scope="session")
def dtype(pytestconfig):
    return np.dtype(pytestconfig.getoption("dtype"))


class Paired:
    """pytest-benchmark's teardown for a candidate's rounds: after each, one
    round of the group's baseline, timed here, then an untimed call of the
    candidate so that its next round starts warm."""

    def __init__(self, candidate, impl, baseline, baseline_impl, iterations):
        self.candidate, self.impl = candidate, impl
        self.baseline, self.baseline_impl, self.iterations = baseline, baseline_impl, iterations
        self.seconds = []

    def __call__(self):
        if self.impl in common.BLAS_BASELINES:  # let OpenBLAS's spinning threads go idle first
            time.sleep(common.BLAS_SPIN_SECONDS)
        self.baseline()
        start = time.perf_counter()
        for _ in range(self.iterations):
            self.baseline()
        self.seconds.append((time.perf_counter() - start) / self.iterations)
        if self.baseline_impl in common.BLAS_BASELINES:
            time.sleep(common.BLAS_SPIN_SECONDS)
        self.candidate()


class Measure:
    """measure(fn, group=..., impl=..., flops=... or moved=...) times fn as
    the candidate `impl` of `group`, taking turns with the group's baseline
    when that ran before it, and records what the summary needs."""

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
        last = self.config.fastconv_baseline  # (group, impl, fn, iterations) of the latest baseline timed
        paired = (Paired(fn, impl, last[2], baseline, last[3])
                  if impl != baseline and last and last[:2] == (group, baseline) else None)
        b.pedantic(fn, rounds=self.rounds, iterations=iterations, warmup_rounds=1, teardown=paired)
        if paired:
            b.extra_info["paired_baseline_seconds"] = min(paired.seconds)
        self.config.fastconv_results[(group, impl)] = dict(b.extra_info, seconds=b.stats.stats.min)
        if impl == baseline:
            self.config.fastconv_baseline = (group, impl, fn, iterations)
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
    for the GEMM) in the rounds they took turns, or against the baseline's
    own run where they did not; the geometric means of fastconv's 'auto' against
    PyTorch per conv pass, and for the backward (both gradients), over the
    dense shapes (all but the depthwise ones) and over their 3x3 stride-1
    ones."""
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
            row["baseline_seconds"] = r.get("paired_baseline_seconds", base["seconds"])
            row[f"time_vs_{r['baseline']}"] = r["seconds"] / row["baseline_seconds"]
        rows[group, impl] = row
    means = {}
    conv = {(r["shape"], r["pass"]): (group, r) for (group, impl), r in results.items()
            if r.get("operation") == "conv2d" and impl == "auto" and (group, "torch") in results}
    auto = lambda shape, p: rows[conv[shape, p][0], "auto"]  # noqa: E731
    dense = sorted({shape for shape, _ in conv if shape not in DEPTHWISE})
    for among, names in (("dense shapes", dense), ("dense 3x3 stride-1 shapes", [s for s in dense if s in DENSE_3X3])):
        for pass_ in ("forward", "grad_input", "grad_weight", "backward"):
            if pass_ == "backward":  # both gradients, as a training step needs them
                ratios = [(auto(s, "grad_input")["seconds"] + auto(s, "grad_weight")["seconds"]) /
                          (auto(s, "grad_input")["baseline_seconds"] + auto(s, "grad_weight")["baseline_seconds"])
                          for s in names if (s, "grad_input") in conv and (s, "grad_weight") in conv]
            else:
                ratios = [auto(s, pass_)["time_vs_torch"] for s in names if (s, pass_) in conv]
            if ratios:
                means[f"conv2d {pass_} over the {among}"] = float(np.exp(np.mean(np.log(ratios))))
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
        beside = f"{row['baseline_seconds'] * 1e3:.3f}" if "baseline_seconds" in row else "-"
        table.append([group, impl, f"{row['seconds'] * 1e3:.3f}", rate, share, beside, versus])
    header = ["group", "implementation", "best ms", "rate", "% GEMM ceiling", "baseline ms (in turns)", "time vs"]
    for line in common.table_lines(header, table):
        write(line)
    for name, value in means.items():
        write(f"{name}: geometric mean of fastconv's time over PyTorch's = {value:.2f}")
