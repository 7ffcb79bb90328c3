"""Whole-network inference at 224x224: ResNet-18, AlexNet and GoogLeNet,
eval mode, batch 1 and 8, fastconv beside the same network in PyTorch with
the same weights (tests/torch_twins.py holds torchvision's architectures).

    pytest benchmarks/bench_nets.py --benchmark-only
    python -m benchmarks.bench_nets [the same options]
"""
import os
import sys

import numpy as np
import pytest

import common
import fastconv
from fastconv import Tensor, models, nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

NETS = {"resnet18": models.resnet18, "alexnet": models.alexnet, "googlenet": models.googlenet}
_cache = {}


def networks(torch, name):
    """fastconv's network and its PyTorch twin, built once, same weights."""
    if name not in _cache:
        import torch_twins as T
        twins = {"resnet18": lambda: T.ResNet(T.BasicBlock, (2, 2, 2, 2)), "alexnet": T.alexnet,
                 "googlenet": T.GoogLeNet}
        nn.manual_seed(0)
        ours = NETS[name]().eval()
        theirs = twins[name]().eval()
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()}, strict=False)
        _cache[name] = ours, theirs
    return _cache[name]


@pytest.mark.parametrize("impl", ("torch", "fastconv"))
@pytest.mark.parametrize("batch", (1, 8))
@pytest.mark.parametrize("name", NETS)
def test_network(measure, torch, name, batch, impl):
    if torch is None:
        pytest.skip("PyTorch is not installed (it holds the twins' weights)")
    ours, theirs = networks(torch, name)
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    if impl == "fastconv":
        def fn():
            with fastconv.no_grad():
                ours(Tensor(x))
    else:
        tx = torch.from_numpy(x)

        def fn():
            with torch.no_grad():
                theirs(tx)
    measure(fn, group=f"infer {name} batch {batch}", impl=impl, images=batch, operation="infer", shape=name,
            dtype="float32", **{"pass": "infer"})


if __name__ == "__main__":
    sys.exit(common.pytest_main(__file__, sys.argv[1:]))
