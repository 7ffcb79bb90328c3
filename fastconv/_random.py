"""The generator behind layer initialization and dropout masks, seeded by
nn.manual_seed."""
import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    global _generator
    _generator = np.random.default_rng(seed)


def generator():
    return _generator
