"""The classic TensorFlow MNIST tutorial CNN, ported almost line for line to
fastconv's channels-last (NHWC) layout, trained on Fashion-MNIST.

TensorFlow 1's "Deep MNIST for Experts" wrote the network with explicit
variables: HWIO filters, tf.nn.conv2d(x, W, strides=[1, 1, 1, 1],
padding='SAME'), tf.nn.max_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
padding='SAME'), a 1024-unit dense layer, dropout and a softmax. Here the
same code runs on fastconv with data_format="NHWC", at the widths of
fastconv.models.TutorialCNN (3x3 convs of 64 and 128 channels, dropout 0.25),
and draws its variables so that a seed gives TutorialCNN's weights: with
--compare, both train from the same start on the same batches.

    python examples/tensorflow_tutorial.py --epochs 1 [--compare]
"""
import argparse
import time

import numpy as np

import fastconv
from fastconv import Tensor, data, functional as F, nn, optim
from fastconv.models import TutorialCNN


def conv2d(x, W):  # tf.nn.conv2d(x, W, strides=[1, 1, 1, 1], padding='SAME')
    return F.conv2d(x, W, stride=1, padding="same", data_format="NHWC")


def max_pool_2x2(x):  # tf.nn.max_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding='SAME')
    return F.max_pool2d(x, kernel_size=2, stride=2, padding="same", data_format="NHWC")


def variables(seed):
    """The tutorial's variables, drawn as TutorialCNN(seed) draws its layers
    (PyTorch's default initialization), in TensorFlow's layouts: HWIO
    filters and a (in, out) dense matrix whose rows follow NHWC's flatten
    order (h, w, c) instead of NCHW's (c, h, w)."""
    nn.manual_seed(seed)
    reference = TutorialCNN()
    conv1, conv2 = reference.features[0], reference.features[3]
    fc1, fc2 = reference.classifier[1], reference.classifier[4]
    hwc = fc1.weight.data.reshape(1024, 128, 7, 7).transpose(0, 2, 3, 1).reshape(1024, 7 * 7 * 128)
    as_variable = lambda a: nn.Parameter(np.ascontiguousarray(a))  # noqa: E731
    return {
        "W_conv1": as_variable(conv1.weight.data.transpose(2, 3, 1, 0)), "b_conv1": conv1.bias,
        "W_conv2": as_variable(conv2.weight.data.transpose(2, 3, 1, 0)), "b_conv2": conv2.bias,
        "W_fc1": as_variable(hwc.T), "b_fc1": fc1.bias,
        "W_fc2": as_variable(fc2.weight.data.T), "b_fc2": fc2.bias,
    }


def model(x, v, keep_prob):
    """x: (N, 28, 28, 1). The tutorial's graph, line for line."""
    h_conv1 = F.relu(conv2d(x, v["W_conv1"]) + v["b_conv1"])
    h_pool1 = max_pool_2x2(h_conv1)
    h_conv2 = F.relu(conv2d(h_pool1, v["W_conv2"]) + v["b_conv2"])
    h_pool2 = max_pool_2x2(h_conv2)
    h_pool2_flat = h_pool2.reshape(-1, 7 * 7 * 128)
    h_fc1 = F.relu(h_pool2_flat @ v["W_fc1"] + v["b_fc1"])
    h_fc1_drop = F.dropout(h_fc1, p=1 - keep_prob, training=keep_prob < 1)
    return h_fc1_drop @ v["W_fc2"] + v["b_fc2"]  # logits; softmax lives in the loss


def train(train_x, train_y, epochs=1, seed=0, lr=1e-4, batch=50):
    """Trains the NHWC port; returns its variables and the seconds taken."""
    v = variables(seed)
    opt = optim.Adam(list(v.values()), lr=lr)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in data.batches(train_x, train_y, batch, rng=rng):
            loss = F.cross_entropy(model(Tensor(x), v, keep_prob=0.75), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return v, time.perf_counter() - start


def accuracy(v, images, labels):
    with fastconv.no_grad():
        return float(np.mean([(model(Tensor(x), v, 1.0).data.argmax(1) == y).mean()
                              for x, y in data.batches(images, labels, 500, shuffle=False)]))


def train_nchw(train_x, train_y, epochs=1, seed=0, lr=1e-4, batch=50):
    """fastconv.models.TutorialCNN, NCHW, the same seed, data and order."""
    from fastconv.mnist import train_epoch
    nn.manual_seed(seed)
    net = TutorialCNN()
    opt = optim.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        train_epoch(net, opt, train_x, train_y, batch, rng)
    return net, time.perf_counter() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--compare", action="store_true", help="also train the NCHW TutorialCNN from the same seed")
    args = p.parse_args(argv)
    train_x, train_y, test_x, test_y = data.load("fashion")
    train_x, train_y = train_x[:args.limit], train_y[:args.limit]
    to_nhwc = lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1))  # noqa: E731
    v, seconds = train(to_nhwc(train_x), train_y, args.epochs, args.seed)
    print(f"NHWC (TensorFlow tutorial port): test accuracy {accuracy(v, to_nhwc(test_x), test_y):.4f}, "
          f"{seconds:.1f} s training")
    if args.compare:
        from fastconv.mnist import evaluate
        net, seconds = train_nchw(train_x, train_y, args.epochs, args.seed)
        print(f"NCHW (models.TutorialCNN):       test accuracy {evaluate(net, test_x, test_y):.4f}, "
              f"{seconds:.1f} s training")


if __name__ == "__main__":
    main()
