"""conv1d, conv_transpose2d and unfold/fold against the oracle; their
gradients by central differences; the adjoint identities."""
import numpy as np
import pytest

import fastconv
import reference as ref
from conftest import assert_close
from gradcheck import assert_vjp

DTYPES = [np.float32, np.float64]

# (N, C_in, H, W, C_out, k, stride, padding, output_padding, groups, dilation)
TRANSPOSED = {
    "k3_s1": (2, 3, 5, 6, 4, 3, 1, 1, 0, 1, 1),
    "k4_s2_p1": (2, 4, 5, 5, 3, 4, 2, 1, 0, 1, 1),
    "k3_s2_p1_op1": (1, 4, 6, 5, 1, 3, 2, 1, 1, 1, 1),
    "k3_s3_op2": (1, 2, 4, 4, 3, 3, 3, 0, 2, 1, 1),
    "dilated_op": (1, 2, 4, 5, 2, 3, 1, 1, 1, 1, 2),
    "groups2": (2, 4, 5, 4, 6, 3, 2, 0, 1, 2, 1),
    "depthwise": (1, 3, 5, 5, 3, 3, 2, 1, 0, 3, 1),
}


def transposed_case(name, dtype):
    n, ci, h, w, co, k, s, p, op, g, d = TRANSPOSED[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, ci, h, w)).astype(dtype)
    wt = rng.standard_normal((ci, co // g, k, k)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    return x, wt, b, dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("algorithm", ["direct", "gemm", "winograd"])
@pytest.mark.parametrize("name", TRANSPOSED)
def test_conv_transpose2d_matches_oracle(name, algorithm, dtype):
    x, w, b, kw = transposed_case(name, dtype)
    k, s = w.shape[2], kw["stride"]
    if algorithm == "winograd" and not (kw["dilation"] == 1 and k % s == 0 and k // s in (2, 3)):
        pytest.skip("Winograd takes 2x2 and 3x3 kernels, or kernels of 2 or 3 strides")
    pairs = {k: (v, v) for k, v in kw.items() if k != "groups"}
    expected = ref.conv_transpose2d(x, w, b, groups=kw["groups"], **pairs)
    assert_close(fastconv.conv_transpose2d(x, w, b, **kw, algorithm=algorithm), expected, dtype)


@pytest.mark.parametrize("name", TRANSPOSED)
def test_conv_transpose2d_gradients(name):
    x, w, b, kw = transposed_case(name, np.float64)
    y = fastconv.conv_transpose2d(x, w, b, **kw)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    gx, gw, gb = fastconv.conv_transpose2d_backward(gy, x, w, **kw)
    assert_vjp(lambda v: fastconv.conv_transpose2d(v, w, b, **kw), x, gy, gx)
    assert_vjp(lambda v: fastconv.conv_transpose2d(x, v, b, **kw), w, gy, gw)
    assert_vjp(lambda v: fastconv.conv_transpose2d(x, w, v, **kw), b, gy, gb)


@pytest.mark.parametrize("stride, padding, dilation, groups", [
    (1, 0, 1, 1), (2, 1, 1, 1), (3, 2, 2, 1), (2, 1, 1, 2), ((2, 3), (1, 0), (2, 1), 4)])
def test_adjoint_identity_conv2d_conv_transpose2d(stride, padding, dilation, groups):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> whenever the sizes round-trip."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 11, 11))
    w = rng.standard_normal((8, 4 // groups, 3, 3))
    conv = fastconv.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = rng.standard_normal(conv.shape)
    s, p, d = (np.broadcast_to(v, 2) for v in (stride, padding, dilation))
    # output_padding recovers the rows a strided conv dropped
    out_pad = tuple(int((11 + 2 * pi - di * 2 - 1) % si) for si, pi, di in zip(s, p, d))
    back = fastconv.conv_transpose2d(y, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                                     output_padding=out_pad)
    assert back.shape == x.shape
    assert np.isclose(np.vdot(conv, y), np.vdot(x, back), rtol=1e-12)


# (N, C_in, L, C_out, k, stride, padding, dilation, groups)
CONV1D = {
    "plain": (2, 3, 20, 4, 3, 1, 1, 1, 1),
    "strided_dilated": (2, 4, 31, 6, 5, 2, 3, 2, 2),
    "same_s3": (1, 2, 17, 3, 4, 3, "same", 1, 1),
    "asym": (1, 2, 10, 2, 3, 1, (2, 0), 1, 1),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", CONV1D)
def test_conv1d_matches_oracle_and_gradients(name, dtype):
    n, ci, L, co, k, s, p, d, g = CONV1D[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, ci, L)).astype(dtype)
    w = rng.standard_normal((co, ci // g, k)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    if p == "same":
        pad = ((0, 0), ref.same_padding(L, k, s, d))
    else:
        pad = ((0, 0), p if isinstance(p, tuple) else (p, p))
    expected = ref.conv2d(x[:, :, None], w[:, :, None], b, (1, s), pad, (1, d), g)[:, :, 0]
    y = fastconv.conv1d(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    assert_close(y, expected, dtype)
    if dtype == np.float64:
        kw = dict(stride=s, padding=p, dilation=d, groups=g)
        gy = rng.standard_normal(y.shape)
        gx, gw, gb = fastconv.conv1d_backward(gy, x, w, **kw)
        assert_vjp(lambda v: fastconv.conv1d(v, w, b, **kw), x, gy, gx)
        assert_vjp(lambda v: fastconv.conv1d(x, v, b, **kw), w, gy, gw)
        assert_close(gb, gy.sum(axis=(0, 2)), dtype)


UNFOLD = [((2, 3, 6, 7), (2, 3), 1, 0, 1), ((1, 2, 9, 8), 3, 2, 1, 2), ((2, 1, 5, 5), (3, 1), (1, 2), (1, 0), (2, 1))]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape, kernel, dilation, padding, stride", UNFOLD)
def test_unfold_fold_match_oracle_and_are_adjoint(shape, kernel, dilation, padding, stride, dtype):
    pair = lambda v: v if isinstance(v, tuple) else (v, v)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    cols = fastconv.unfold(x, kernel, dilation, padding, stride)
    assert_close(cols, ref.unfold(x, pair(kernel), pair(dilation), pair(padding), pair(stride)), dtype)
    c = np.random.default_rng(1).standard_normal(cols.shape).astype(dtype)
    back = fastconv.fold(c, shape[2:], kernel, dilation, padding, stride)
    assert_close(back, ref.fold(c, shape[2:], pair(kernel), pair(dilation), pair(padding), pair(stride)), dtype)
    assert np.isclose(np.vdot(cols.astype(np.float64), c), np.vdot(x.astype(np.float64), back), rtol=1e-5)


def test_unfold_torch_cross_check():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 9))
    theirs = torch.nn.functional.unfold(torch.tensor(x), (3, 2), dilation=(1, 2), padding=1, stride=2).numpy()
    np.testing.assert_allclose(fastconv.unfold(x, (3, 2), (1, 2), 1, 2), theirs, rtol=1e-12)
