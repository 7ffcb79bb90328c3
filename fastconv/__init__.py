"""fastconv: fast CPU convolution and pooling for NumPy, with a small autograd.

The array functions take and return numpy arrays (see docs/API.md); the
training layer lives in fastconv.functional, fastconv.nn and fastconv.optim.
"""
import contextlib
import os

try:
    from . import _C
except ImportError as e:  # the classic trap: importing the source tree, not the installed package
    raise ImportError(
        f"fastconv: the compiled extension fastconv._C is missing beside {os.path.dirname(__file__)}. "
        "This is the source folder, not an installed fastconv: run `pip install .` and start Python "
        "(or `pytest`, not `python -m pytest`) outside the checkout, or build in place with "
        "`pip install -e .`.") from e
from .conv import (conv1d, conv1d_backward, conv2d, conv2d_backward, conv_transpose2d,
                   conv_transpose2d_backward, fold, unfold)
from .dense import linear, linear_backward, matmul
from .embeddings import embedding, embedding_backward
from .lrn import local_response_norm, local_response_norm_backward
from .pool import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool1d, adaptive_max_pool2d,
                   avg_pool1d, avg_pool1d_backward, avg_pool2d, avg_pool2d_backward, max_pool1d,
                   max_pool1d_backward, max_pool2d, max_pool2d_backward)
from ._validate import integer as _integer
from .autograd import Tensor, no_grad
from . import functional, nn, optim, data, models
from ._version import __version__


def set_num_threads(n):
    """The process's thread budget: the threads fastconv's calls, from every
    Python thread together, may run at once (1 in a build without OpenMP)."""
    _C.set_num_threads(_integer("set_num_threads", "n", n, 1))


def get_num_threads():
    """Threads a call from this thread may use: the budget, narrowed by
    fastconv.threads(n) and by OpenMP's setting for this thread
    (threadpoolctl's threadpool_limits, omp_set_num_threads) where that
    differs from the process default."""
    return _C.get_num_threads()


@contextlib.contextmanager
def threads(n):
    """Limit fastconv to `n` threads in the calling thread only, within the
    budget: ``with fastconv.threads(1): y = fastconv.conv2d(x, w)``."""
    n = _integer("threads", "n", n, 1)
    before = _C.get_thread_limit()
    _C.set_thread_limit(n)
    try:
        yield
    finally:
        _C.set_thread_limit(before)


def build_info():
    """What this build has: OpenMP or not, and which ISA the GEMM runs."""
    return {
        "version": __version__,
        "openmp": _C.have_openmp(),
        "isa": _C.get_isa(),
        "isas": [name for name in _C.ISAS if _C.isa_supported(name)],
        "num_threads": _C.get_num_threads(),
    }


def _default_threads():
    for var in ("FASTCONV_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


_C.set_num_threads(_default_threads())
