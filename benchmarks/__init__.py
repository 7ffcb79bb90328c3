"""fastconv's benchmarks. Run each as `python -m benchmarks.bench_<name>`.

They run in the environment a user has: nothing here sets a variable that
would change how fastconv, PyTorch or NumPy behave."""
