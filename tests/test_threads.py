"""Threads: 1 thread == N threads bit for bit, Python threads in parallel,
OpenMP present where the build says so, no memory growth, and the OpenMP
spin fastconv sets on import."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastconv

# Shapes that split into several tiles, channel blocks and grad-weight slots.
SHAPES = [
    ((5, 16, 23, 21), (24, 16, 3, 3), dict(padding=1)),
    ((3, 8, 40, 40), (8, 4, 5, 5), dict(stride=2, padding=2, groups=2)),
    ((1, 32, 70, 70), (20, 32, 3, 3), dict(dilation=2, padding="same")),
    ((17, 3, 12, 12), (7, 3, 1, 1), {}),
    ((18, 8, 9, 9), (16, 8, 3, 3), dict(padding=1)),
    ((3, 64, 6, 6), (16, 64, 3, 3), dict(padding=1)),
]


@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shapes", SHAPES, ids=["plain", "grouped_s2", "dilated_one_image", "pointwise", "many_images", "gw_by_taps"])
def test_one_thread_equals_many_bitwise(shapes, dtype, algorithm, threads):
    xs, ws, kw = shapes
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    results = []
    for n in (1, 2, 3, 8):
        threads(n)
        y = fastconv.conv2d(x, w, **kw, algorithm=algorithm)
        results.append((y,) + fastconv.conv2d_backward(np.cos(y), x, w, **kw, algorithm=algorithm))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


def test_python_threads_run_concurrently_and_correctly():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 8, 20, 20)), rng.standard_normal((8, 8, 3, 3))
    expected = fastconv.conv2d(x, w, padding=1)
    results, errors = [], []

    def work():
        try:
            for _ in range(10):
                results.append(fastconv.conv2d(x, w, padding=1))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    pool = [threading.Thread(target=work) for _ in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors and len(results) == 40
    assert all(np.array_equal(r, expected) for r in results)


def test_openmp_present_when_the_build_claims_it(threads):
    """CI sets FASTCONV_EXPECT_OPENMP=1: a build that lost OpenMP fails here."""
    info = fastconv.build_info()
    if os.environ.get("FASTCONV_EXPECT_OPENMP") == "1":
        assert info["openmp"], "OpenMP was expected but the build has none"
    if info["openmp"]:
        threads(3)
        assert fastconv.get_num_threads() == 3
    else:
        threads(3)
        assert fastconv.get_num_threads() == 1


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's quarantine holds freed memory, so RSS grows by design")
def test_no_memory_growth_over_thousands_of_calls():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 8, 12, 12)).astype(np.float32), rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    for algorithm in ("direct", "im2col"):
        for _ in range(200):
            y = fastconv.conv2d(x, w, padding=1, algorithm=algorithm)
            fastconv.conv2d_backward(y, x, w, padding=1, algorithm=algorithm)
    before = _rss_bytes()
    for algorithm in ("direct", "im2col"):
        for _ in range(1500):
            y = fastconv.conv2d(x, w, padding=1, algorithm=algorithm)
            fastconv.conv2d_backward(y, x, w, padding=1, algorithm=algorithm)
    assert _rss_bytes() - before < 8 << 20


def test_version_comes_from_one_place():
    from importlib.metadata import version
    assert fastconv.build_info()["version"] == fastconv.__version__ == version("fastconv")


def test_build_info_names_the_isa():
    info = fastconv.build_info()
    assert info["isa"] in info["isas"] and "portable" in info["isas"]


def test_import_leaves_the_openmp_environment_alone(tmp_path):
    """fastconv sets no OpenMP variable: another library's OpenMP runtime
    (PyTorch ships its own) keeps its defaults whatever the import order."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOMP_", "OMP_"))}
    code = "import os, fastconv; print(sorted(k for k in os.environ if k.startswith(('GOMP_', 'OMP_'))))"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True)  # outside the checkout, so the installed package is imported
    assert out.stdout.strip() == "[]"
