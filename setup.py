"""Builds fastconv._C: the C kernels in csrc/ plus the Cython binding.

OpenMP is probed by compiling a tiny program with -fopenmp; a compiler
without it (Apple clang, say) gives a single-threaded build that is still
correct. No -march=native: AVX2 and AVX-512 code is compiled with target
attributes and chosen at run time (the dispatch table, csrc/kernels.h), so
one build runs anywhere.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy
from setuptools import Extension, setup
from Cython.Build import cythonize

# Translation units. Family files (gemm.c, im2col.c, the conv2d*.c files,
# pool.c, elementwise.c, optim.c, kernels.c) are #included by f32.c and f64.c, one
# instantiation per dtype.
SOURCES = ["fastconv/_C.pyx"] + [
    f"csrc/{name}.c" for name in ("f32", "f64", "gemm_avx2", "gemm_avx512", "cpu", "threads", "memory")
]


def compiler_accepts(flags):
    """True if the C compiler builds and links a program with OpenMP under `flags`."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        cmd = cc.split() + [src, "-o", os.path.join(tmp, "probe")] + flags
        try:
            return subprocess.run(cmd, capture_output=True).returncode == 0
        except OSError:
            return False


def openmp_flags():
    if os.environ.get("FASTCONV_NO_OPENMP"):
        return []
    return ["-fopenmp"] if compiler_accepts(["-fopenmp"]) else []


omp = openmp_flags()
if not omp:
    print("fastconv: building without OpenMP (single-threaded)", file=sys.stderr)

extension = Extension(
    "fastconv._C",
    sources=SOURCES,
    include_dirs=["csrc", numpy.get_include()],
    depends=sorted(glob.glob("csrc/*.[ch]")),  # the #included family files and headers rebuild it too
    extra_compile_args=["-O3", "-fno-math-errno"] + omp,
    extra_link_args=omp,
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)

setup(ext_modules=cythonize([extension], language_level=3))
