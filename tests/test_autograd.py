"""Tensor arithmetic and every differentiable function, checked by float64
central differences as vector-Jacobian products."""
import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import Tensor, nn
from gradcheck import assert_vjp

rng = np.random.default_rng(0)


def check(fn, *arrays, upstream_seed=1):
    """fn(*tensors) -> Tensor; compares each input's gradient with central differences."""
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    g = np.random.default_rng(upstream_seed).standard_normal(out.shape)
    out.backward(g)
    for i, (a, t) in enumerate(zip(arrays, tensors)):
        def f(v, i=i):
            args = [Tensor(v if j == i else b) for j, b in enumerate(arrays)]
            return fn(*args).data
        assert t.grad is not None and t.grad.shape == a.shape, f"input {i}"
        assert_vjp(f, a, g, t.grad)


def r(*shape):
    return rng.standard_normal(shape)


ARITHMETIC = {
    "add_broadcast": (lambda a, b: a + b, r(3, 4), r(4)),
    "sub_broadcast_keepdim": (lambda a, b: a - b, r(3, 4), r(3, 1)),
    "mul_broadcast": (lambda a, b: a * b, r(2, 3, 4), r(1, 3, 1)),
    "div": (lambda a, b: a / b, r(3, 4), r(3, 4) ** 2 + 1),
    "scalar_ops": (lambda a: (2.0 - a) * 3.0 / 4.0 + 1.0, r(3, 4)),
    "rdiv": (lambda a: 1.0 / a, r(5) ** 2 + 1),
    "matmul": (lambda a, b: a @ b, r(3, 4), r(4, 5)),
    "neg_sum_axis": (lambda a: (-a).sum(axis=1), r(3, 4)),
    "mean_keepdims": (lambda a: a.mean(axis=0, keepdims=True), r(3, 4)),
    "mean_all": (lambda a: a.mean(), r(3, 4)),
    "reshape_transpose": (lambda a: a.reshape(4, 3).transpose(1, 0), r(3, 4)),
    "flatten": (lambda a: a.flatten(1), r(2, 3, 4)),
    "getitem_repeated_index": (lambda a: a[[0, 0, 2]], r(3, 4)),
    "getitem_slice": (lambda a: a[:, 1:3], r(3, 4)),
    "reuse_in_graph": (lambda a: a * a + a, r(3, 4)),
}


@pytest.mark.parametrize("name", ARITHMETIC)
def test_arithmetic_gradients(name):
    fn, *arrays = ARITHMETIC[name]
    check(fn, *arrays)


FUNCTIONS = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), r(2, 3, 6, 6), r(4, 3, 3, 3), r(4)),
    "conv2d_groups_nobias": (lambda x, w: F.conv2d(x, w, padding="same", groups=2), r(1, 4, 5, 5), r(4, 2, 3, 3)),
    "conv1d": (lambda x, w, b: F.conv1d(x, w, b, dilation=2), r(2, 3, 9), r(2, 3, 3), r(2)),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                         r(1, 3, 4, 4), r(3, 2, 3, 3), r(2)),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1), rng.permutation(2 * 2 * 7 * 7).reshape(2, 2, 7, 7) / 10.0),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), r(2, 2, 7, 7)),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), r(1, 2, 5, 7)),
    "relu": (lambda x: F.relu(x), r(3, 4) + 0.01),
    "sigmoid": (lambda x: F.sigmoid(x * 5), r(3, 4)),
    "tanh": (lambda x: F.tanh(x), r(3, 4)),
    "softmax": (lambda x: F.softmax(x, dim=1), r(3, 5)),
    "log_softmax": (lambda x: F.log_softmax(x, dim=-1), r(3, 5)),
    "linear": (lambda x, w, b: F.linear(x, w, b), r(4, 3), r(5, 3), r(5)),
    "linear_fused_relu": (lambda x, w, b: F.linear(x, w, b, activation="relu"), r(4, 3), r(5, 3), r(5)),
    "linear_3d_no_bias": (lambda x, w: F.linear(x, w), r(2, 4, 3), r(5, 3)),
    "matmul_2d": (lambda a, b: a @ b, r(5, 7), r(7, 3)),
    "conv2d_fused_relu": (lambda x, w, b: F.conv2d(x, w, b, padding=1, activation="relu"),
                          r(2, 3, 5, 5), r(4, 3, 3, 3), r(4)),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, np.zeros(3), np.ones(3), w, b, training=True),
                         r(4, 3, 2, 2), r(3), r(3)),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, np.full(3, 0.5), np.full(3, 2.0), w, b),
                        r(4, 3, 2, 2), r(3), r(3)),
    "concat": (lambda a, b: F.concat([a, b], dim=1), r(2, 3, 2), r(2, 1, 2)),
    "max_pool1d": (lambda x: F.max_pool1d(x, 3, 2, 1), rng.permutation(2 * 3 * 9).reshape(2, 3, 9) / 10.0),
    "avg_pool1d": (lambda x: F.avg_pool1d(x, 3, 2, 1), r(2, 3, 9)),
    "max_pool2d_same": (lambda x: F.max_pool2d(x, 2, 2, "same"), rng.permutation(2 * 5 * 7).reshape(1, 2, 5, 7) / 10.0),
    "adaptive_max_pool1d": (lambda x: F.adaptive_max_pool1d(x, 1), rng.permutation(2 * 3 * 9).reshape(2, 3, 9) / 10.0),
    "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, (2, 3)),
                            rng.permutation(2 * 5 * 7).reshape(1, 2, 5, 7) / 10.0),
    "local_response_norm": (lambda x: F.local_response_norm(x, 3, 0.5, 0.75, 1.0), r(2, 5, 3, 3)),
    "embedding": (lambda w: F.embedding(np.array([[0, 2], [2, 3]]), w), r(4, 5)),
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_gradients(name):
    fn, *arrays = FUNCTIONS[name]
    check(fn, *arrays)


def test_cross_entropy_value_and_gradient():
    logits, labels = r(5, 4), np.array([0, 3, 1, 1, 2])
    expected = -np.mean([np.log(np.exp(row[k]) / np.exp(row).sum()) for row, k in zip(logits, labels)])
    assert np.isclose(F.cross_entropy(Tensor(logits), labels).item(), expected)
    check(lambda x: F.cross_entropy(x, labels), logits)
    big = np.array([[1000.0, 0.0], [0.0, -1000.0]])  # stable for huge logits
    assert np.isfinite(F.cross_entropy(Tensor(big), np.array([1, 0])).item())


def test_dropout_draws_from_the_seeded_generator():
    x = Tensor(np.ones((20, 30)))
    nn.manual_seed(5)
    a = F.dropout(x, 0.5).data
    nn.manual_seed(5)
    assert np.array_equal(a, F.dropout(x, 0.5).data)
    assert not np.array_equal(a, F.dropout(x, 0.5).data)


def test_dropout_scales_and_masks_consistently():
    x = Tensor(np.ones((1000, 10)), requires_grad=True)
    y = F.dropout(x, 0.25, training=True, rng=np.random.default_rng(0))
    kept = y.data != 0
    assert 0.7 < kept.mean() < 0.8 and np.allclose(y.data[kept], 1 / 0.75)
    y.backward(np.ones(y.shape))
    assert np.array_equal(x.grad, y.data)
    assert F.dropout(x, 0.5, training=False) is x


def test_composed_network_gradient():
    """A small conv net end to end: every parameter's gradient by central differences."""
    x, labels = r(2, 1, 6, 6), np.array([1, 0])
    w1, b1, w2 = r(3, 1, 3, 3), r(3), r(2, 12)

    def net(w1, b1, w2):
        h = F.max_pool2d(F.relu(F.conv2d(Tensor(x), w1, b1, padding=1)), 3)
        return F.cross_entropy(F.linear(F.flatten(h), w2), labels)
    check(net, w1, b1, w2)


def test_gradients_accumulate_and_no_grad_records_nothing():
    a = Tensor(np.ones(3), requires_grad=True)
    (a * 2).sum().backward()
    (a * 3).sum().backward()
    assert np.array_equal(a.grad, np.full(3, 5.0))
    with fastconv.no_grad():
        b = a * 2
    assert not b.requires_grad and b._ctx is None
    with pytest.raises(RuntimeError, match="does not require"):
        b.sum().backward()
    with pytest.raises(RuntimeError, match="non-scalar"):
        (a * 2).backward()


def test_float32_stays_float32():
    x = Tensor(np.ones((1, 1, 4, 4), np.float32), requires_grad=True)
    w = Tensor(np.ones((2, 1, 3, 3), np.float32), requires_grad=True)
    y = (F.relu(F.conv2d(x, w, padding=1)) * 2.0 + 1.0).mean()
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_deep_graph_does_not_recurse():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1.0
    y.sum().backward()
    assert np.array_equal(x.grad, np.ones(2))


def test_backward_checks_gradient_shapes_and_names_the_function():
    from fastconv.autograd import Function

    class Wrong(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return (np.ones(g.size + 1),)
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"Wrong.backward returned a gradient of shape \(4,\) for an input of shape \(3,\)"):
        Wrong.apply(x).sum().backward()
    with pytest.raises(ValueError, match=r"grad has shape \(2,\) but the tensor \(3,\)"):
        (x * 2).backward(np.ones(2))


def test_grad_mode_is_per_thread():
    """A thread inside no_grad() (serving) leaves another thread (training)
    recording its graph, and the reverse."""
    import threading
    inside, go, done = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def serve():
        with fastconv.no_grad():
            inside.set()
            go.wait(5)
            seen["serving"] = (Tensor(np.ones(2), requires_grad=True) * 2).requires_grad
        done.set()
    t = threading.Thread(target=serve)
    t.start()
    inside.wait(5)
    x = Tensor(np.ones(2), requires_grad=True)
    (x * 3).sum().backward()  # while the other thread is inside no_grad
    go.set()
    done.wait(5)
    t.join()
    assert np.array_equal(x.grad, [3.0, 3.0]) and seen["serving"] is False
