"""data_format="NHWC" (and "NLC" on one axis): every convolution and pooling
function, forward and backward, equals its NCHW call on the transposed
arrays bit for bit, with TensorFlow's weight layouts; gradients by central
differences; the layers; the TensorFlow tutorial port trains as the NCHW
model does."""
import os
import runpy

import numpy as np
import pytest

import fastconv
from conftest import assert_raises_naming
from fastconv import Tensor, functional as F, nn
from gradcheck import assert_vjp

DTYPES = [np.float32, np.float64]


def last(a):
    """NCHW / NCL -> NHWC / NLC."""
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def hwio(w):
    """(A, B, *kernel) -> TensorFlow's (*kernel, B, A)."""
    return np.ascontiguousarray(w.transpose(tuple(range(2, w.ndim)) + (1, 0)))


def same(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype and a.flags.c_contiguous
    np.testing.assert_array_equal(a, b)


CONV = [  # (function pair, x shape, weight shape, bias size, kwargs)
    ("conv2d", (2, 3, 9, 8), (6, 3, 3, 3), 6, dict(stride=2, padding="same")),
    ("conv2d", (1, 4, 7, 7), (6, 2, 3, 2), 6, dict(padding=1, dilation=2, groups=2)),
    ("conv1d", (2, 4, 11), (5, 4, 3), 5, dict(stride=2, padding=1)),
    ("conv_transpose2d", (2, 4, 5, 6), (4, 3, 3, 3), 3, dict(stride=2, padding=1, output_padding=1)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", range(len(CONV)))
def test_convolutions_channels_last_equal_channels_first(case, dtype):
    name, xs, ws, nb, kw = CONV[case]
    rng = np.random.default_rng(case)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, (nb,)))
    fmt = "NLC" if name == "conv1d" else "NHWC"
    forward, backward = getattr(fastconv, name), getattr(fastconv, name + "_backward")
    y = forward(x, w, b, **kw)
    same(forward(last(x), hwio(w), b, **kw, data_format=fmt), last(y))
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb = backward(gy, x, w, **kw)
    hx, hw, hb = backward(last(gy), last(x), hwio(w), **kw, data_format=fmt)
    same(hx, last(gx))
    same(hw, hwio(gw))
    same(hb, gb)


def test_channels_last_weight_gradient_by_central_differences():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((3, 3, 3, 4))
    gy = rng.standard_normal((2, 3, 3, 4))
    conv = lambda weight: fastconv.conv2d(x, weight, stride=2, padding="same", data_format="NHWC")  # noqa: E731
    _, gw, _ = fastconv.conv2d_backward(gy, x, w, stride=2, padding="same", data_format="NHWC")
    assert_vjp(conv, w, gy, gw)
    gx, _, _ = fastconv.conv2d_backward(gy, x, w, stride=2, padding="same", data_format="NHWC")
    assert_vjp(lambda v: fastconv.conv2d(v, w, stride=2, padding="same", data_format="NHWC"), x, gy, gx)


POOL = [  # (function, x shape, args, kwargs)
    ("max_pool2d", (2, 3, 7, 9), (2,), dict(padding="same", return_indices=True)),
    ("avg_pool2d", (2, 3, 7, 9), (3, 2), dict(padding="same")),
    ("adaptive_avg_pool2d", (2, 3, 7, 9), ((3, 2),), {}),
    ("adaptive_max_pool2d", (1, 3, 7, 9), ((3, 2),), dict(return_indices=True)),
    ("max_pool1d", (2, 3, 10), (3, 2, 1), dict(return_indices=True)),
    ("avg_pool1d", (2, 3, 10), (3, 2, 1), {}),
    ("adaptive_max_pool1d", (2, 3, 10), (1,), dict(return_indices=True)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", range(len(POOL)))
def test_pooling_channels_last_equals_channels_first(case, dtype):
    name, xs, args, kw = POOL[case]
    x = np.random.default_rng(case).standard_normal(xs).astype(dtype)
    fmt = "NLC" if name.endswith("1d") else "NHWC"
    fn = getattr(fastconv, name)
    expected, got = fn(x, *args, **kw), fn(last(x), *args, **kw, data_format=fmt)
    for e, g in zip(*(r if isinstance(r, tuple) else (r,) for r in (expected, got))):
        same(g, last(e))
    y = expected[0] if isinstance(expected, tuple) else expected
    gy = np.random.default_rng(9).standard_normal(y.shape).astype(dtype)
    if name in ("max_pool2d", "max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool1d"):
        back = fastconv.max_pool1d_backward if name.endswith("1d") else fastconv.max_pool2d_backward
        same(back(last(gy), last(expected[1]), last(x).shape, data_format=fmt), last(back(gy, expected[1], x.shape)))
    elif name != "adaptive_avg_pool2d":
        back = getattr(fastconv, name + "_backward")
        same(back(last(gy), last(x).shape, *args, **kw, data_format=fmt), last(back(gy, x.shape, *args, **kw)))
    else:
        same(fastconv.adaptive_avg_pool2d_backward(last(gy), last(x).shape, data_format=fmt),
             last(fastconv.adaptive_avg_pool2d_backward(gy, x.shape)))


def test_layers_in_nhwc_hold_tensorflow_weights_and_compute_the_nchw_model():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)

    def build(fmt):
        nn.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 5, 3, padding=1, data_format=fmt), nn.ReLU(),
                             nn.MaxPool2d(2, data_format=fmt), nn.ConvTranspose2d(5, 4, 2, 2, data_format=fmt),
                             nn.AvgPool2d(2, data_format=fmt), nn.AdaptiveAvgPool2d(1, data_format=fmt))
    first, channels_last = build("NCHW"), build("NHWC")
    assert channels_last[0].weight.shape == (3, 3, 3, 5) and channels_last[3].weight.shape == (2, 2, 4, 5)
    np.testing.assert_array_equal(channels_last[0].weight.data, hwio(first[0].weight.data))
    a, b = Tensor(x, requires_grad=True), Tensor(last(x), requires_grad=True)
    ya, yb = first(a), channels_last(b)
    np.testing.assert_allclose(yb.data, last(ya.data), rtol=1e-5, atol=1e-6)
    ya.sum().backward()
    yb.sum().backward()
    np.testing.assert_allclose(b.grad, last(a.grad), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(channels_last[0].weight.grad, hwio(first[0].weight.grad), rtol=1e-5, atol=1e-5)
    conv1d = nn.Conv1d(3, 4, 3, data_format="NLC")
    assert conv1d.weight.shape == (3, 3, 4)
    assert conv1d(Tensor(np.ones((2, 7, 3), np.float32))).shape == (2, 5, 4)


ERRORS = [
    (lambda: fastconv.conv2d(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 2)), data_format="NCWH"), ValueError,
     ["conv2d", "data_format", "NCWH", "NHWC"]),
    (lambda: fastconv.max_pool1d(np.ones((1, 4, 2)), 2, data_format="NHWC"), ValueError,
     ["max_pool1d", "data_format", "NLC"]),
    (lambda: fastconv.conv2d(np.ones((1, 4, 4, 2)), np.ones((3, 3, 3, 2)), data_format="NHWC"), ValueError,
     ["conv2d", "channels"]),
    (lambda: nn.Conv2d(2, 3, 3, data_format="channels_last"), ValueError, ["Conv2d", "data_format"]),
    (lambda: F.max_pool2d(np.ones((1, 4, 4, 2)), 2, data_format=1), ValueError, ["max_pool2d", "data_format"]),
]


@pytest.mark.parametrize("call, exc, words", ERRORS, ids=[f"case{i}" for i in range(len(ERRORS))])
def test_bad_data_format_raises_a_clear_error(call, exc, words):
    assert_raises_naming(call, exc, words)


EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "tensorflow_tutorial.py")


@pytest.mark.skipif(not os.path.exists(EXAMPLE), reason="examples/ is not in this checkout (an installed sdist)")
def test_tensorflow_tutorial_port_trains_as_the_nchw_model_from_the_same_seed():
    """The NHWC port starts from TutorialCNN's weights and sees the same
    batches and dropout masks: after 40 steps on Fashion-MNIST its test
    predictions are the NCHW model's, up to float rounding."""
    from fastconv import data
    try:
        train_x, train_y, test_x, test_y = data.load("fashion", download_missing=False, progress=False)
    except data.DatasetNotFound:
        if os.environ.get("CI"):
            raise
        pytest.skip("needs Debian's dataset-fashion-mnist (CI installs it)")
    example = runpy.run_path(EXAMPLE)
    x, y = train_x[:2000], train_y[:2000]
    v, _ = example["train"](last(x), y, epochs=1, lr=1e-3)
    net, _ = example["train_nchw"](x, y, epochs=1, lr=1e-3)
    net.eval()
    with fastconv.no_grad():
        expected = net(Tensor(test_x[:1000])).data
        got = example["model"](Tensor(last(test_x[:1000])), v, 1.0).data
    # 40 steps of Adam amplify the two networks' different rounding (the
    # port adds its biases and applies ReLU in passes of their own): builds
    # that changed only the last bits of a kernel both share left them
    # 0.14% to 1.5% of the largest logit apart
    np.testing.assert_allclose(got, expected, atol=5e-2 * np.abs(expected).max())
    assert (got.argmax(1) == expected.argmax(1)).mean() > 0.99
    accuracy = (got.argmax(1) == test_y[:1000]).mean()
    assert abs(accuracy - (expected.argmax(1) == test_y[:1000]).mean()) < 0.005 and accuracy > 0.6
