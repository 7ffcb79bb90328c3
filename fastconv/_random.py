"""The generator behind layer initialization and dropout masks, seeded by
nn.manual_seed. One for the process, as torch's default generator: NumPy's
Generator draws under its own lock, so threads may share it safely, and a
seed given in any thread seeds them all."""
import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    global _generator
    _generator = np.random.default_rng(seed)


def generator():
    return _generator
