"""Local response normalization against the NumPy oracle and PyTorch,
its gradient by central differences, and its errors."""
import numpy as np
import pytest

import fastconv
import reference as ref
from conftest import assert_close, assert_raises_naming
from fastconv import Tensor, functional as F, nn
from gradcheck import assert_vjp

DTYPES = [np.float32, np.float64]
# (shape, size, alpha, beta, k): AlexNet's (5, 1e-4, 0.75, 2), even sizes, a
# window wider than the channels, 3-D and 5-D inputs
CASES = {
    "alexnet": ((2, 12, 5, 5), 5, 1e-4, 0.75, 2.0),
    "even_size": ((1, 7, 3, 4), 4, 0.5, 0.6, 1.0),
    "size_1": ((2, 3, 4, 4), 1, 1.0, 1.0, 1.0),
    "wider_than_channels": ((1, 3, 2, 2), 9, 2.0, 0.75, 1.0),
    "3d": ((2, 6, 7), 3, 0.1, 0.5, 1.0),
    "5d": ((1, 5, 2, 3, 2), 3, 0.3, 0.75, 0.5),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES)
def test_local_response_norm_matches_oracle(case, dtype):
    shape, size, alpha, beta, k = CASES[case]
    x = (np.random.default_rng(0).standard_normal(shape) * 3).astype(dtype)
    y = fastconv.local_response_norm(x, size, alpha, beta, k)
    assert y.dtype == dtype
    assert_close(y, ref.local_response_norm(x, size, alpha, beta, k), dtype)


@pytest.mark.parametrize("case", CASES)
def test_local_response_norm_backward_by_central_differences(case):
    shape, size, alpha, beta, k = CASES[case]
    x = np.random.default_rng(0).standard_normal(shape) * 3
    gy = np.random.default_rng(1).standard_normal(shape)
    assert_vjp(lambda v: fastconv.local_response_norm(v, size, alpha, beta, k), x, gy,
               fastconv.local_response_norm_backward(gy, x, size, alpha, beta, k))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_local_response_norm_torch_cross_check_forward_and_backward(dtype):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 16, 6, 6)).astype(dtype)
    gy = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    t = torch.from_numpy(x.copy()).requires_grad_()
    ty = torch.nn.functional.local_response_norm(t, 5, 1e-3, 0.75, 2.0)
    ty.backward(torch.from_numpy(gy))
    xt = Tensor(x, requires_grad=True)
    y = nn.LocalResponseNorm(5, 1e-3, 0.75, 2.0)(xt)
    y.backward(gy)
    assert_close(y.data, ty.detach().numpy(), dtype)
    assert_close(xt.grad, t.grad.numpy(), dtype)


ERRORS = [
    (lambda: fastconv.local_response_norm(np.ones((2, 3, 4)), 0), ValueError, ["local_response_norm", "size"]),
    (lambda: fastconv.local_response_norm(np.ones((2, 3)), 2), ValueError, ["local_response_norm", "input", "3-D"]),
    (lambda: fastconv.local_response_norm(np.ones((1, 3, 4)), 2, alpha="a"), TypeError, ["alpha"]),
    (lambda: fastconv.local_response_norm(np.ones((1, 3, 4)), 2, beta=np.nan), ValueError, ["beta"]),
    (lambda: fastconv.local_response_norm(np.ones((1, 3, 4)), 2.5), TypeError, ["local_response_norm", "size"]),
    (lambda: fastconv.local_response_norm_backward(np.ones((1, 3, 5)), np.ones((1, 3, 4)), 2), ValueError,
     ["local_response_norm_backward", "grad_output"]),
    (lambda: nn.LocalResponseNorm(0), ValueError, ["LocalResponseNorm", "size"]),
    (lambda: F.local_response_norm(np.ones((1, 2, 3), np.complex64), 2), TypeError, ["local_response_norm"]),
]


@pytest.mark.parametrize("call, exc, words", ERRORS, ids=[f"case{i}" for i in range(len(ERRORS))])
def test_bad_input_raises_a_clear_error(call, exc, words):
    assert_raises_naming(call, exc, words)
