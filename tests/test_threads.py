"""Threads: 1 thread == N threads bit for bit, Python threads in parallel,
OpenMP present where the build says so, no memory growth, and the OpenMP
spin fastconv sets on import."""
import contextlib
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastconv
from fastconv import _C
from fastconv._validate import conv_geometry

# Shapes that split into several tiles, channel blocks and grad-weight slots.
SHAPES = [
    ((5, 16, 23, 21), (24, 16, 3, 3), dict(padding=1)),
    ((3, 8, 40, 40), (8, 4, 5, 5), dict(stride=2, padding=2, groups=2)),
    ((1, 32, 70, 70), (20, 32, 3, 3), dict(dilation=2, padding="same")),
    ((17, 3, 12, 12), (7, 3, 1, 1), {}),
    ((18, 8, 9, 9), (16, 8, 3, 3), dict(padding=1)),
    ((3, 64, 6, 6), (16, 64, 3, 3), dict(padding=1)),
    ((1, 96, 4, 5), (208, 96, 3, 3), dict(padding=1)),
    ((4, 16, 14, 14), (32, 16, 4, 4), dict(stride=2, padding=1)),
]


@pytest.mark.parametrize("algorithm", ["direct", "gemm", "winograd", "winograd:2x2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shapes", SHAPES, ids=["plain", "grouped_s2", "dilated_one_image", "pointwise", "many_images", "gw_by_taps",
                                             "channels_split", "k4s2_phases"])
def test_one_thread_equals_many_bitwise(shapes, dtype, algorithm, threads):
    xs, ws, kw = shapes
    k, stride = ws[2], kw.get("stride", 1)
    if algorithm.startswith("winograd") and not (k % stride == 0 and k // stride in (2, 3) and "dilation" not in kw):
        pytest.skip("Winograd runs 3x3 and 2x2 kernels, stride 1, or kernels of 2 or 3 strides, undilated")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    g = conv_geometry("test", xs, ws, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
                      kw.get("groups", 1))
    results = []
    for n in (1, 2, 3, 8):
        threads(n)
        y = fastconv.conv2d(x, w, **kw, algorithm=algorithm)
        # and both in one pass, as a transposed conv's backward runs them
        y1, gw1 = np.empty_like(y), np.empty_like(w)
        _C.conv2d_forward_grad_weight(g.c_shape(), algorithm, x.ravel(), w.ravel(), np.cos(y).ravel(), y1.ravel(),
                                      gw1.ravel())
        results.append((y,) + fastconv.conv2d_backward(np.cos(y), x, w, **kw, algorithm=algorithm) + (y1, gw1))
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


def test_scratch_kept_between_calls_changes_no_result():
    """memory.c keeps a call's large temporaries for the thread's next call:
    calls of other shapes and sizes in between, in four Python threads at
    once, leave every result's bits as they were."""
    rng = np.random.default_rng(0)
    cases = [(rng.standard_normal((8, 64, 14, 14)).astype(np.float32),
              rng.standard_normal((64, 64, 3, 3)).astype(np.float32), dict(padding=1)),
             (rng.standard_normal((8, 64, 28, 28)).astype(np.float32),
              rng.standard_normal((128, 64, 4, 4)).astype(np.float32), dict(stride=2, padding=1)),
             (rng.standard_normal((2, 32, 30, 30)), rng.standard_normal((48, 32, 5, 5)), {})]

    def run(x, w, kw):
        y = fastconv.conv2d(x, w, **kw, algorithm="winograd" if w.shape[2] != 5 else "gemm")
        return (y,) + fastconv.conv2d_backward(np.cos(y), x, w, **kw, needs=("input", "weight"))[:2]

    expected = [run(*case) for case in cases]
    errors = []

    def work(order):
        try:
            for _ in range(3):
                for i in order:
                    assert all(np.array_equal(a, b) for a, b in zip(run(*cases[i]), expected[i]))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    pool = [threading.Thread(target=work, args=(order,)) for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1])]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors


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
    for algorithm in ("direct", "gemm"):
        for _ in range(200):
            y = fastconv.conv2d(x, w, padding=1, algorithm=algorithm)
            fastconv.conv2d_backward(y, x, w, padding=1, algorithm=algorithm)
    before = _rss_bytes()
    for algorithm in ("direct", "gemm"):
        for _ in range(1500):
            y = fastconv.conv2d(x, w, padding=1, algorithm=algorithm)
            fastconv.conv2d_backward(y, x, w, padding=1, algorithm=algorithm)
    assert _rss_bytes() - before < 8 << 20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's quarantine holds freed memory, so RSS grows by design")
def test_threads_that_exit_give_back_their_kept_scratch():
    """Each thread's kept blocks (memory.c) are freed when it exits: 40
    short-lived threads, each keeping megabytes, leave the process's
    memory where one left it."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((8, 64, 14, 14)).astype(np.float32), rng.standard_normal((64, 64, 3, 3)).astype(np.float32)

    def one_thread():
        t = threading.Thread(target=lambda: fastconv.conv2d(x, w, padding=1, algorithm="winograd"))
        t.start()
        t.join()

    one_thread()
    before = _rss_bytes()
    for _ in range(40):
        one_thread()
    assert _rss_bytes() - before < 32 << 20


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


# --- The calling thread's limit and the shared budget -------------------------

needs_openmp = pytest.mark.skipif(not fastconv.build_info()["openmp"], reason="a build without OpenMP runs one thread")
BIG = (np.ones((8, 16, 32, 32), np.float32), np.ones((16, 16, 3, 3), np.float32))  # ~38 MFLOP: worth a team


def _threads_used(fn):
    """Most threads fastconv held at once while fn ran (no other caller running)."""
    fastconv._C.thread_peak(reset=True)
    fn()
    return fastconv._C.thread_peak()


def _conv():
    return fastconv.conv2d(*BIG, padding=1)


def _budget_above_the_openmp_default():
    """A budget and a limit below it that differ from OpenMP's default (a
    per-thread setting equal to the default reads as no setting)."""
    default = fastconv._C.openmp_default()
    return default + 2, default + 1


@needs_openmp
def test_threadpoolctl_limits_fastconv_in_the_calling_thread(threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    budget, limit = _budget_above_the_openmp_default()
    threads(budget)
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fastconv.get_num_threads() == 1
        assert _threads_used(_conv) == 1
    assert fastconv.get_num_threads() == budget
    assert _threads_used(_conv) == budget
    with threadpoolctl.threadpool_limits(limits=limit, user_api="openmp"):
        assert fastconv.get_num_threads() == limit
        assert _threads_used(_conv) == limit
    with threadpoolctl.threadpool_limits(limits=budget + 5, user_api="openmp"):
        assert fastconv.get_num_threads() == budget  # never past the budget


@needs_openmp
def test_threadpoolctl_limits_inside_worker_threads_and_nowhere_else(threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    budget, limit = _budget_above_the_openmp_default()
    threads(budget)
    seen = {}

    def worker(k):
        with threadpoolctl.threadpool_limits(limits=k, user_api="openmp"):
            seen[k] = fastconv.get_num_threads()
            seen[k, "used"] = _threads_used(_conv)
        seen[-k] = fastconv.get_num_threads()

    for k in (1, limit):  # one after the other, so each call's peak is its own
        t = threading.Thread(target=worker, args=(k,))
        t.start()
        t.join()
    assert seen == {1: 1, (1, "used"): 1, -1: budget, limit: limit, (limit, "used"): limit, -limit: budget}
    assert fastconv.get_num_threads() == budget


@needs_openmp
def test_threads_context_manager_is_per_thread_and_within_the_budget(threads):
    threads(3)
    inside, barrier = {}, threading.Barrier(2)

    def other():
        with fastconv.threads(2):
            barrier.wait()  # both threads inside their own limits at once
            inside["other"] = fastconv.get_num_threads()
            barrier.wait()

    t = threading.Thread(target=other)
    t.start()
    with fastconv.threads(1):
        barrier.wait()
        inside["main"] = fastconv.get_num_threads()
        assert _threads_used(_conv) == 1
        barrier.wait()
    t.join()
    assert inside == {"main": 1, "other": 2}
    assert fastconv.get_num_threads() == 3
    with fastconv.threads(8):  # a thread's limit narrows the budget, never widens it
        assert fastconv.get_num_threads() == 3
        with fastconv.threads(1):
            assert fastconv.get_num_threads() == 1
        assert fastconv.get_num_threads() == 3


def test_threads_context_manager_restores_on_error_and_checks_its_argument():
    before = fastconv.get_num_threads()
    with pytest.raises(KeyError):
        with fastconv.threads(1):
            raise KeyError
    assert fastconv.get_num_threads() == before
    with pytest.raises(ValueError, match=r"threads: n must be >= 1, got 0"):
        with fastconv.threads(0):
            pass
    with pytest.raises(TypeError, match=r"threads: n must be an int"):
        with fastconv.threads(1.5):
            pass


@needs_openmp
@pytest.mark.parametrize("budget", [1, 2, 3])
def test_threads_running_never_exceed_the_budget(budget, threads):
    """Python threads, some under threadpoolctl or fastconv.threads limits,
    all calling at once: the threads fastconv holds never exceed the budget,
    and every result is right."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    threads(budget)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((6, 16, 24, 24)).astype(np.float32), rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    expected = fastconv.conv2d(x, w, padding=1)
    limits = [contextlib.nullcontext, lambda: fastconv.threads(2),
              lambda: threadpoolctl.threadpool_limits(1, user_api="openmp")]
    errors, wrong = [], []

    def work(i):
        try:
            with limits[i % 3]():
                for _ in range(15):
                    y = fastconv.conv2d(x, w, padding=1)
                    if not np.array_equal(y, expected):
                        wrong.append(i)
                    fastconv.conv2d_backward(y, x, w, padding=1)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    fastconv._C.thread_peak(reset=True)
    pool = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors and not wrong
    assert 1 <= fastconv._C.thread_peak() <= budget


@needs_openmp
def test_lowering_the_budget_while_calls_wait_does_not_hang(threads):
    threads(1)
    done = []

    def work():
        for _ in range(20):
            _conv()
        done.append(1)

    pool = [threading.Thread(target=work) for _ in range(3)]
    for t in pool:
        t.start()
    threads(2)
    threads(1)
    for t in pool:
        t.join(timeout=60)
    assert len(done) == 3


def _in_forked_child(work, timeout=30):
    """Runs work() in a fork()ed child; its return value (an int) is the
    child's exit status. A child that hangs is killed and reported."""
    import time
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            code = work()
        except BaseException:
            code = 99
        os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@needs_openmp
@pytest.mark.parametrize("others_busy", [False, True], ids=["quiet", "other_threads_in_calls"])
def test_a_forked_child_computes_instead_of_hanging(others_busy, threads):
    """libgomp's team does not survive fork(): a child that used it would
    wait forever (and with other threads holding tokens at the fork, so
    would any child). The child runs on one thread, correctly."""
    threads(2)
    expected = _conv()  # the parent has started a team
    stop, busy = threading.Event(), []
    if others_busy:
        busy = [threading.Thread(target=lambda: [_conv() for _ in iter(stop.is_set, True)]) for _ in range(2)]
        for t in busy:
            t.start()
    try:
        for _ in range(3):
            status = _in_forked_child(lambda: 0 if np.array_equal(_conv(), expected)
                                      and fastconv.get_num_threads() == 1 else 1)
            assert status == 0
    finally:
        stop.set()
        for t in busy:
            t.join()
    assert fastconv.get_num_threads() == 2 and np.array_equal(_conv(), expected)  # the parent is unaffected


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@needs_openmp
def test_a_child_forked_from_a_thread_without_a_team_keeps_its_threads(threads):
    threads(2)
    _conv()  # the main thread has a team; a new thread has none
    statuses = []
    t = threading.Thread(target=lambda: statuses.append(_in_forked_child(
        lambda: 0 if fastconv.get_num_threads() == 2 and _threads_used(_conv) == 2 else 1)))
    t.start()
    t.join()
    assert statuses == [0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@needs_openmp
def test_an_entry_point_called_inside_another_joins_its_call():
    """The direct forward applies its ReLU through fc_relu, an entry point
    that takes its thread from the budget too: with a budget of one, the
    inner call must join the outer one, not wait for the thread the outer
    call holds (in a forked child, so a hang is caught and reported)."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    expected = np.maximum(fastconv.conv2d(x, w, algorithm="direct"), 0)

    def work():
        fastconv.set_num_threads(1)
        y = fastconv.conv2d(x, w, algorithm="direct", activation="relu")
        return 0 if np.array_equal(y, expected) and fastconv._C.thread_peak() == 1 else 1

    assert _in_forked_child(work) == 0
