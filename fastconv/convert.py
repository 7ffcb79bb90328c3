"""Converts a PyTorch checkpoint into an .npz that fastconv loads without
torch installed:

    python -m fastconv.convert resnet18.pth resnet18.npz
    model = fastconv.models.resnet18().load("resnet18.npz")

The checkpoint is a state dict (torch.save(model.state_dict(), path)), or a
dict holding one under "state_dict" or "model", as training scripts often
save. Torch is needed here only; it is loaded with weights_only=True, so a
checkpoint cannot run code. Names and layouts are kept as they are:
fastconv's models use torchvision's."""
import argparse
import pickle
import sys

import numpy as np

from .nn import save_npz


def state_dict_arrays(state):
    """A PyTorch state dict (or a dict holding one) -> {name: ndarray}."""
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise ValueError(f"convert: expected a state dict (a dict of tensors), got {type(state).__name__}")
    arrays = {}
    for name, value in state.items():
        if not hasattr(value, "detach"):
            raise ValueError(f"convert: {name!r} is a {type(value).__name__}, not a tensor")
        arrays[name.removeprefix("module.")] = value.detach().cpu().numpy()  # DataParallel's prefix
    return arrays


def convert(source, destination):
    try:
        import torch
    except ImportError:
        raise ImportError("convert: reading a PyTorch checkpoint needs torch (pip install torch); "
                          "the .npz it writes loads without it") from None
    arrays = state_dict_arrays(torch.load(source, map_location="cpu", weights_only=True))
    save_npz(destination, arrays)
    return arrays


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastconv.convert", description=__doc__.splitlines()[0])
    p.add_argument("source", help="a PyTorch checkpoint (.pth, .pt)")
    p.add_argument("destination", help="the .npz to write")
    args = p.parse_args(argv)
    try:
        arrays = convert(args.source, args.destination)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as e:  # missing, unreadable, not weights
        first = (str(e).splitlines() or [""])[0]
        print(f"convert: {args.source}: {type(e).__name__}: {first}", file=sys.stderr)
        return 2
    count = sum(int(np.prod(a.shape)) for a in arrays.values() if a.dtype.kind == "f")
    print(f"{args.destination}: {len(arrays)} arrays, {count:,} parameters and statistics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
