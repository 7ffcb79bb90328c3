"""fastconv's benchmarks: `pytest benchmarks/ --benchmark-only` (see
conftest.py), or one file as `python -m benchmarks.bench_<name>`.

They run in the environment a user has: nothing here sets a variable that
would change how fastconv, PyTorch or NumPy behave."""
import os
import sys

# The modules import their neighbours (common, shapes) by name, whether pytest
# or `python -m benchmarks.bench_X` loads them.
sys.path.insert(0, os.path.dirname(__file__))
