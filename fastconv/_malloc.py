"""glibc's malloc in the worker processes Dask's nanny starts.

The nanny starts each worker with MALLOC_TRIM_THRESHOLD_=65536, so that
freed memory goes back to the system at once. Setting it also freezes
glibc's mmap threshold at 128 KiB (glibc adapts the threshold only while
neither is set): every array of a forward's activations is then mapped
anew, faulted in page by page and unmapped again, on every call, and a
LeNet-5 forward ran 2.7x slower in a worker than in the process that
started it (benchmarks/bench_dask.py). keep_freed_blocks() sets what
glibc's adaptive thresholds reach on their own, blocks up to 32 MiB from
the heap and the heap trimmed past 64 MiB of free space, so a worker
reuses a batch's memory from call to call; a worker's memory still goes
back beyond that. Only where that variable is set, only on glibc."""
import ctypes
import functools
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>


@functools.cache
def keep_freed_blocks():
    """Once per process; True where it changed the thresholds."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 64 << 20))


def on_worker(function):
    """function, preceded in whichever process runs it by keep_freed_blocks()."""
    @functools.wraps(function)
    def run(*args, **kwargs):
        keep_freed_blocks()
        return function(*args, **kwargs)
    return run
