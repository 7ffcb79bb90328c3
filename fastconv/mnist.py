"""Train a CNN on MNIST or Fashion-MNIST, evaluate it, save a checkpoint.

    python -m fastconv.mnist --dataset fashion --model tutorial --epochs 1
    python -m fastconv.mnist --dataset fashion --model resnet20 --epochs 5 --augment --plot curves.png
    python -m fastconv.mnist --dataset fashion --evaluate checkpoints/tutorial-fashion.npz
"""
import argparse
import os
import sys
import time

import numpy as np

import fastconv
from . import data, functional as F, nn, optim
from .autograd import Tensor, no_grad
from .models import MODELS


def evaluate(model, images, labels, batch_size=500, with_loss=False):
    """Accuracy of model on (images, labels), in eval mode, without a graph;
    with_loss: (accuracy, mean cross-entropy)."""
    model.eval()
    correct, total_loss = 0, 0.0
    with no_grad():
        for x, y in data.batches(images, labels, batch_size, shuffle=False):
            logits = model(Tensor(x))
            correct += int((logits.data.argmax(axis=1) == y).sum())
            if with_loss:
                total_loss += F.cross_entropy(logits, y).item() * len(y)
    accuracy = correct / max(len(labels), 1)
    return (accuracy, total_loss / max(len(labels), 1)) if with_loss else accuracy


def train_epoch(model, optimizer, images, labels, batch_size, rng, bar=None, transform=None):
    """One pass over the data; returns (mean loss, train accuracy, images/s)."""
    model.train()
    total_loss, correct, seen, start = 0.0, 0, 0, time.perf_counter()
    for x, y in data.batches(images, labels, batch_size, rng=rng, transform=transform):
        logits = model(Tensor(x))
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(y)
        correct += int((logits.data.argmax(axis=1) == y).sum())
        seen += len(y)
        if bar is not None:
            bar.update(len(y))
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", img_s=f"{seen / (time.perf_counter() - start):.0f}")
    return total_loss / max(seen, 1), correct / max(seen, 1), seen / (time.perf_counter() - start)


def make_optimizer(name, params, lr, momentum):
    return optim.Adam(params, lr=lr) if name == "adam" else optim.SGD(params, lr=lr, momentum=momentum)


def _bar(total, desc):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="img", leave=False, file=sys.stderr, mininterval=0.5,
                disable=None)  # None: off when stderr is not a terminal


def plot_history(history, path):
    """Loss and accuracy per epoch, train and test, side by side, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = range(1, len(history["train_loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for axes, what in ((left, "loss"), (right, "accuracy")):
        for split in ("train", "test"):
            axes.plot(epochs, history[f"{split}_{what}"], marker="o", label=split)
        axes.set_xlabel("epoch")
        axes.set_ylabel(what)
        axes.legend()
        axes.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastconv.mnist", description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="tutorial")
    p.add_argument("--dataset", choices=sorted(data.DATASETS), default="mnist")
    p.add_argument("--data-dir", default=None, help="folder holding the IDX files")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--momentum", type=float, default=0.9, help="for sgd")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--test-limit", type=int, default=None, help="evaluate on the first N test images")
    p.add_argument("--save", default=None, help="checkpoint path (default checkpoints/<model>-<dataset>.npz)")
    p.add_argument("--evaluate", metavar="CHECKPOINT", default=None, help="only evaluate a saved checkpoint")
    p.add_argument("--no-download", action="store_true", help="never try the network")
    p.add_argument("--augment", action="store_true",
                   help="random crops (padding 2) and horizontal flips of the training images")
    p.add_argument("--plot", metavar="PATH", default=None, help="write loss and accuracy curves to PATH (PNG)")
    args = p.parse_args(argv)

    if args.threads:
        fastconv.set_num_threads(args.threads)
    try:
        train_x, train_y, test_x, test_y = data.load(args.dataset, args.data_dir,
                                                     download_missing=not args.no_download)
    except data.DatasetNotFound as e:
        print(e, file=sys.stderr)
        return 2
    if args.limit:
        train_x, train_y = train_x[:args.limit], train_y[:args.limit]
    if args.test_limit:
        test_x, test_y = test_x[:args.test_limit], test_y[:args.test_limit]

    nn.manual_seed(args.seed)
    model = MODELS[args.model]()
    if args.evaluate:
        model.load(args.evaluate)
        print(f"{args.evaluate}: test accuracy {evaluate(model, test_x, test_y):.4f} on {len(test_y)} images")
        return 0

    print(f"fastconv {fastconv.__version__}: {args.model} on {args.dataset} ({len(train_y)} train, "
          f"{len(test_y)} test images), {args.optimizer} lr {args.lr}, batch {args.batch_size}, "
          f"{fastconv.get_num_threads()} threads")
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr, args.momentum)
    rng = np.random.default_rng(args.seed)
    transform = data.augment(padding=2) if args.augment else None
    history = {"train_loss": [], "train_accuracy": [], "test_loss": [], "test_accuracy": []}
    for epoch in range(1, args.epochs + 1):
        bar = _bar(len(train_y), f"epoch {epoch}")
        start = time.perf_counter()
        loss, train_acc, speed = train_epoch(model, optimizer, train_x, train_y, args.batch_size, rng, bar,
                                             transform)
        seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()
        test_acc, test_loss = evaluate(model, test_x, test_y, with_loss=True)
        for key, value in zip(history, (loss, train_acc, test_loss, test_acc)):
            history[key].append(value)
        print(f"epoch {epoch}: loss {loss:.4f}  train acc {train_acc:.4f}  test acc {test_acc:.4f}  "
              f"{seconds:.1f} s  {speed:.0f} img/s", flush=True)
        if args.plot:
            plot_history(history, args.plot)
    path = args.save or f"checkpoints/{args.model}-{args.dataset}.npz"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    model.save(path)
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
