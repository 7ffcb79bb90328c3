"""fastconv's benchmarks. Run each as `python -m benchmarks.bench_<name>`."""
import os

# OpenBLAS's idle threads busy-wait for 2**28 cycles (~0.1 s) after each
# call: on 2 cores that halves whatever runs next. 2**4 makes the NumPy
# baseline give its cores back at once. Must be set before NumPy loads.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
