"""Optimizer steps against values computed by hand."""
import numpy as np
import pytest

from fastconv import nn, optim


def param(values, grad):
    p = nn.Parameter(np.array(values, dtype=np.float64))
    p.grad = np.array(grad, dtype=np.float64)
    return p


def test_sgd_plain_and_weight_decay():
    p = param([1.0, -2.0], [0.5, 0.5])
    optim.SGD([p], lr=0.1, weight_decay=0.1).step()
    assert np.allclose(p.data, [1.0 - 0.1 * (0.5 + 0.1), -2.0 - 0.1 * (0.5 - 0.2)])


def test_sgd_momentum_and_nesterov():
    p, q = param([1.0], [1.0]), param([1.0], [1.0])
    sgd, nesterov = optim.SGD([p], lr=0.1, momentum=0.9), optim.SGD([q], lr=0.1, momentum=0.9, nesterov=True)
    sgd.step(), nesterov.step()          # buf = 1
    assert np.allclose(p.data, [0.9]) and np.allclose(q.data, [1 - 0.1 * (1 + 0.9)])
    p.grad, q.grad = np.array([2.0]), np.array([2.0])
    sgd.step(), nesterov.step()          # buf = 0.9 + 2 = 2.9
    assert np.allclose(p.data, [0.9 - 0.29]) and np.allclose(q.data, [0.81 - 0.1 * (2 + 0.9 * 2.9)])
    assert np.array_equal(p.grad, [2.0]), "the step must not modify the gradient"


def test_adam_two_steps_by_hand(isa):
    p = param([1.0, 2.0], [0.1, -0.2])
    adam = optim.Adam([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    adam.step()
    # step 1: m = 0.1 g, v = 0.001 g^2; corrected m/(1-0.9) = g, v/(1-0.999) = g^2 -> update lr * sign(g)
    assert np.allclose(p.data, [1.0 - 0.01, 2.0 + 0.01], atol=1e-9)
    g2 = np.array([0.3, 0.1])
    p.grad = g2.copy()
    adam.step()
    g1 = np.array([0.1, -0.2])
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1 ** 2 + 0.001 * g2 ** 2
    expected = np.array([0.99, 2.01]) - 0.01 * (m / (1 - 0.81)) / (np.sqrt(v / (1 - 0.999 ** 2)) + 1e-8)
    assert np.allclose(p.data, expected, atol=1e-12)


def test_adam_matches_torch(isa):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(5)
    mine = nn.Parameter(w0.copy())
    theirs = torch.tensor(w0.copy(), requires_grad=True)
    a, b = optim.Adam([mine], lr=0.05, weight_decay=0.01), torch.optim.Adam([theirs], lr=0.05, weight_decay=0.01)
    for _ in range(5):
        g = rng.standard_normal(5)
        mine.grad, theirs.grad = g.copy(), torch.tensor(g)
        a.step(), b.step()
    np.testing.assert_allclose(mine.data, theirs.detach().numpy(), rtol=1e-10)


def test_parameters_without_gradients_are_skipped_and_bad_settings_rejected():
    p = nn.Parameter(np.ones(2))
    optim.Adam([p]).step()
    assert np.array_equal(p.data, np.ones(2))
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([p], lr=0)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps), lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9)],
                         ids=["adam", "sgd_momentum"])
def test_replaced_arrays_and_wrong_gradients_are_refused_by_name(make):
    p, q = param([1.0, 2.0], [0.1, 0.2]), param([3.0], [0.3])
    opt = make([p, q])
    opt.step()
    q.data = np.zeros(10_000_000)  # state was sized for 1 element: once a segfault in Adam
    q.grad = np.ones(10_000_000)
    before = p.data.copy()
    with pytest.raises(ValueError, match=r"parameter 1 was replaced .*\(10000000,\).*1 float64"):
        opt.step()
    assert np.array_equal(p.data, before), "a refused step updates nothing"
    q.data, q.grad = np.array([3.0]), np.array([0.3])
    p.grad = np.array([0.1])  # shorter than the parameter: once read past it
    with pytest.raises(ValueError, match=r"parameter 0 has shape \(2,\) but its gradient \(1,\)"):
        opt.step()
    p.grad = np.ones((2, 1))  # would broadcast
    with pytest.raises(ValueError, match="parameter 0"):
        opt.step()
    assert np.array_equal(p.data, before)
