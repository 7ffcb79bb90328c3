"""Pooling against the NumPy oracle, gradients by central differences,
PyTorch's tie, NaN and ceil_mode rules, and index validation."""
import numpy as np
import pytest

import fastconv
import reference as ref
from conftest import assert_close, assert_raises_naming
from gradcheck import assert_vjp

DTYPES = [np.float32, np.float64]
ALGORITHMS = ["auto", "reference"]

# (shape, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = {
    "2x2_s2": ((2, 3, 8, 8), 2, None, 0, 1, False),
    "3x3_s2_odd": ((1, 2, 11, 9), 3, 2, 0, 1, False),
    "3x3_s2_pad1": ((2, 2, 10, 7), 3, 2, 1, 1, False),
    "rect_kernel_stride": ((1, 3, 9, 12), (2, 3), (1, 2), (1, 1), 1, False),
    "dilated": ((1, 2, 12, 11), 3, 1, 1, 2, False),
    "ceil_mode": ((2, 2, 7, 7), 2, 2, 0, 1, True),
    "ceil_mode_pad_last_window_dropped": ((1, 2, 6, 6), 3, 2, 1, 1, True),
    "ceil_mode_s3": ((1, 1, 10, 8), 3, 3, 1, 1, True),
    "3d_input": ((3, 7, 6), 2, 1, 0, 1, False),
    "global": ((2, 3, 5, 5), 5, None, 0, 1, False),
    # Rows wider than a vector: several lane blocks, the block rounding up
    # past the row end, borders after blocks, the last row of each plane.
    "wide_2x2_s2": ((2, 2, 6, 70), 2, 2, 0, 1, False),
    "wide_3x3_s2_pad1": ((1, 3, 7, 67), 3, 2, 1, 1, True),
    "wide_3x3_s1_pad1": ((1, 2, 5, 41), 3, 1, 1, 1, False),
    "wide_s3_dilated": ((1, 2, 9, 101), (2, 3), 3, 1, 2, False),
    "wide_s2_dilated": ((1, 2, 6, 77), 2, 2, 1, 2, False),
}
WIDE = [case for case in MAX_CASES if case.startswith("wide")]


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def as4d(x):
    return x if x.ndim == 4 else x[None]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", MAX_CASES)
def test_max_pool2d_matches_oracle(case, algorithm, dtype, isa):
    shape, k, s, p, d, ceil = MAX_CASES[case]
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y, idx = fastconv.max_pool2d(x, k, s, p, d, ceil, return_indices=True, algorithm=algorithm)
    ey, eidx = ref.max_pool2d(as4d(x), pair(k), pair(k if s is None else s), pair(p), pair(d), ceil)
    assert_close(as4d(y), ey, dtype)
    assert idx.dtype == np.int64 and np.array_equal(as4d(idx), eidx)
    assert np.array_equal(fastconv.max_pool2d(x, k, s, p, d, ceil, algorithm=algorithm), y)


@pytest.mark.parametrize("case", MAX_CASES)
def test_max_pool2d_backward_by_central_differences(case):
    shape, k, s, p, d, ceil = MAX_CASES[case]
    x = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 7.0  # distinct: no ties
    y, idx = fastconv.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    gx = fastconv.max_pool2d_backward(gy, idx, x.shape)
    assert_vjp(lambda v: fastconv.max_pool2d(v, k, s, p, d, ceil), x, gy, gx)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", MAX_CASES)
def test_max_pool2d_backward_matches_oracle(case, dtype, isa):
    shape, k, s, p, d, ceil = MAX_CASES[case]
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y, idx = fastconv.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    gx = fastconv.max_pool2d_backward(gy, idx, x.shape)
    assert gx.shape == x.shape and gx.dtype == dtype
    assert_close(as4d(gx), ref.max_pool2d_backward(as4d(gy), as4d(idx), as4d(x).shape), dtype)


def test_max_pool2d_ties_pick_the_first_maximum():
    x = np.zeros((1, 1, 4, 4))
    y, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    assert np.array_equal(idx[0, 0], [[0, 2], [8, 10]])
    x = np.array([[[[1.0, 5.0], [5.0, 5.0]]]])
    assert fastconv.max_pool2d(x, 2, return_indices=True)[1].item() == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", WIDE)
def test_max_pool2d_ties_and_nans_on_wide_rows_match_oracle(case, dtype, isa):
    shape, k, s, p, d, ceil = MAX_CASES[case]
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, shape).astype(dtype)  # many ties
    x[rng.random(shape) < 0.03] = np.nan
    y, idx = fastconv.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    ey, eidx = ref.max_pool2d(x, pair(k), pair(s), pair(p), pair(d), ceil)
    np.testing.assert_array_equal(y, ey.astype(dtype))
    np.testing.assert_array_equal(idx, eidx)


def test_max_pool2d_nan_propagates_and_padding_is_minus_inf():
    x = np.full((1, 1, 4, 4), -5.0)
    x[0, 0, 1, 1] = np.nan
    y = fastconv.max_pool2d(x, 3, 1, 1)
    assert np.isnan(y[0, 0, :3, :3]).all() and (y[0, 0, 3, :] == -5).all()
    assert (fastconv.max_pool2d(np.full((1, 1, 2, 2), -9.0), 2, 1, 1) == -9).all()


def test_max_pool2d_torch_cross_check():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.random.default_rng(0).standard_normal((2, 3, 11, 10))
    x[0, 0, 3, 3] = np.nan
    x[1, 1, :4, :4] = 1.0  # ties
    for k, s, p, d, ceil in [(2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False), (2, 3, 1, 1, True)]:
        ty, ti = F.max_pool2d(torch.tensor(x), k, s, p, d, ceil, return_indices=True)
        y, i = fastconv.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(i, ti.numpy())


@pytest.mark.parametrize("bad", [-1, 16, 1 << 40])
def test_max_pool2d_backward_rejects_out_of_range_indices(bad, isa):
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4))
    y, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    idx[1, 1, 0, 1] = bad
    with pytest.raises(ValueError, match="indices"):
        fastconv.max_pool2d_backward(np.ones_like(y), idx, x.shape)


# (shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = {
    "2x2_s2": ((2, 3, 8, 8), 2, None, 0, False, True, None),
    "3x3_s2_pad_incl": ((1, 2, 9, 10), 3, 2, 1, False, True, None),
    "3x3_s2_pad_excl": ((1, 2, 9, 10), 3, 2, 1, False, False, None),
    "ceil_incl": ((2, 1, 7, 6), 2, 2, 1, True, True, None),
    "ceil_excl": ((2, 1, 7, 6), 3, 2, 1, True, False, None),
    "divisor": ((1, 2, 6, 6), 3, 1, 1, False, True, 4),
    "rect": ((1, 2, 8, 9), (2, 3), (2, 1), (1, 0), False, False, None),
    "3d_input": ((2, 5, 5), 3, 2, 1, True, True, None),
    "wide_2x2_s2": ((2, 2, 6, 70), 2, 2, 0, False, True, None),
    "wide_3x3_s2_pad_excl": ((1, 3, 7, 67), 3, 2, 1, True, False, None),
    "wide_rect_s1": ((1, 2, 5, 41), (2, 3), 1, 1, False, True, None),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool2d_matches_oracle(case, algorithm, dtype, isa):
    shape, k, s, p, ceil, incl, div = AVG_CASES[case]
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y = fastconv.avg_pool2d(x, k, s, p, ceil, incl, div, algorithm=algorithm)
    expected = ref.avg_pool2d(as4d(x), pair(k), pair(k if s is None else s), pair(p), ceil, incl, div)
    assert_close(as4d(y), expected, dtype)


@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool2d_backward_by_central_differences(case):
    shape, k, s, p, ceil, incl, div = AVG_CASES[case]
    x = np.random.default_rng(0).standard_normal(shape)
    y = fastconv.avg_pool2d(x, k, s, p, ceil, incl, div)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    gx = fastconv.avg_pool2d_backward(gy, x.shape, k, s, p, ceil, incl, div)
    assert_vjp(lambda v: fastconv.avg_pool2d(v, k, s, p, ceil, incl, div), x, gy, gx)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool2d_backward_matches_oracle(case, dtype, isa):
    shape, k, s, p, ceil, incl, div = AVG_CASES[case]
    x_shape = shape if len(shape) == 4 else (1,) + shape
    y = fastconv.avg_pool2d(np.zeros(shape, dtype), k, s, p, ceil, incl, div)
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    gx = fastconv.avg_pool2d_backward(gy, shape, k, s, p, ceil, incl, div)
    assert gx.shape == shape and gx.dtype == dtype
    expected = ref.avg_pool2d_backward(as4d(gy), x_shape, pair(k), pair(k if s is None else s), pair(p), ceil,
                                       incl, div)
    assert_close(as4d(gx), expected, dtype)


def test_avg_pool2d_torch_cross_check():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 11, 10))
    for args in [(2, 2, 0, False, True, None), (3, 2, 1, True, False, None), (3, 2, 1, True, True, None),
                 (2, 3, 1, True, True, 3)]:
        theirs = torch.nn.functional.avg_pool2d(torch.tensor(x), *args).numpy()
        np.testing.assert_allclose(fastconv.avg_pool2d(x, *args), theirs, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape, out", [((2, 3, 7, 9), (3, 4)), ((1, 2, 5, 5), 1), ((1, 1, 4, 6), (6, None)),
                                        ((2, 8, 8), (8, 3))])
def test_adaptive_avg_pool2d(shape, out, dtype, isa):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y = fastconv.adaptive_avg_pool2d(x, out)
    o = out if isinstance(out, tuple) else (out, out)
    o = tuple(shape[-2 + i] if v is None else v for i, v in enumerate(o))
    assert_close(as4d(y), ref.adaptive_avg_pool2d(as4d(x), o), dtype)
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    gx = fastconv.adaptive_avg_pool2d_backward(gy, x.shape)
    assert gx.shape == x.shape and gx.dtype == dtype
    assert_close(as4d(gx), ref.adaptive_avg_pool2d_backward(as4d(gy), as4d(x).shape), dtype)
    if dtype == np.float64:
        assert_vjp(lambda v: fastconv.adaptive_avg_pool2d(v, out), x, gy, gx)


@pytest.mark.parametrize("fn", [lambda: fastconv.max_pool2d(np.zeros((0, 3, 4, 4)), 2),
                                lambda: fastconv.avg_pool2d(np.zeros((0, 3, 4, 4)), 2),
                                lambda: fastconv.adaptive_avg_pool2d(np.zeros((0, 3, 4, 4)), 2)])
def test_empty_batch(fn):
    assert fn().shape == (0, 3, 2, 2)


x4 = np.ones((2, 3, 6, 6))
ERRORS = [
    (lambda: fastconv.max_pool2d(np.ones((6, 6)), 2), ValueError, ["max_pool2d", "input"]),
    (lambda: fastconv.max_pool2d(x4, 0), ValueError, ["max_pool2d", "kernel_size"]),
    (lambda: fastconv.max_pool2d(x4, 2, 0), ValueError, ["max_pool2d", "stride"]),
    (lambda: fastconv.max_pool2d(x4, 2, padding=2), ValueError, ["max_pool2d", "padding 2", "half"]),
    (lambda: fastconv.max_pool2d(x4, 7), ValueError, ["max_pool2d", "output height"]),
    (lambda: fastconv.max_pool2d(x4, 2, dilation=0), ValueError, ["max_pool2d", "dilation"]),
    (lambda: fastconv.max_pool2d(x4, 2.5), TypeError, ["max_pool2d", "kernel_size"]),
    (lambda: fastconv.max_pool2d(x4.astype(complex), 2), TypeError, ["max_pool2d", "input"]),
    (lambda: fastconv.max_pool2d_backward(np.ones((2, 3, 3, 3)), np.zeros((2, 3, 3, 3)), (2, 3, 6, 6)),
     TypeError, ["max_pool2d_backward", "indices"]),
    (lambda: fastconv.max_pool2d_backward(np.ones((2, 3, 3, 3)), np.zeros((2, 3, 3, 2), int), (2, 3, 6, 6)),
     ValueError, ["max_pool2d_backward", "indices", "(2, 3, 3, 2)"]),
    (lambda: fastconv.max_pool2d_backward(np.ones((2, 4, 3, 3)), np.zeros((2, 4, 3, 3), int), (2, 3, 6, 6)),
     ValueError, ["max_pool2d_backward", "grad_output"]),
    (lambda: fastconv.max_pool2d_backward(np.ones((2, 3, 3, 3)), np.zeros((2, 3, 3, 3), int), (2, 3)),
     ValueError, ["max_pool2d_backward", "input_shape"]),
    (lambda: fastconv.avg_pool2d(x4, 2, divisor_override=0), ValueError, ["avg_pool2d", "divisor_override"]),
    (lambda: fastconv.avg_pool2d(x4, 3, padding=2), ValueError, ["avg_pool2d", "padding"]),
    (lambda: fastconv.avg_pool2d_backward(np.ones((2, 3, 2, 2)), (2, 3, 6, 6), 2), ValueError,
     ["avg_pool2d_backward", "grad_output", "(2, 3, 3, 3)"]),
    (lambda: fastconv.adaptive_avg_pool2d(x4, 0), ValueError, ["adaptive_avg_pool2d", "output_size"]),
    (lambda: fastconv.adaptive_avg_pool2d(x4, (1, 2, 3)), ValueError, ["adaptive_avg_pool2d", "output_size"]),
    (lambda: fastconv.max_pool2d(x4, 2, algorithm="fast"), ValueError, ["max_pool2d", "algorithm"]),
]


@pytest.mark.parametrize("call, exc, words", ERRORS, ids=[f"case{i}" for i in range(len(ERRORS))])
def test_bad_input_raises_a_clear_error(call, exc, words):
    assert_raises_naming(call, exc, words)


def _narrow_configs():
    """Planes as narrow as, or narrower than, the dilated window: where a
    table of the interior's columns once ended before the plane's first
    output (fastconv.max_pool2d(x, 4, stride=1, padding=2, dilation=2) on a
    3x3 plane read and wrote past it)."""
    for h in (1, 2, 3):
        for w in range(1, 8):
            for k in (2, 3, 4):
                for s in (1, 2):
                    for p in range(0, k // 2 + 1):
                        for d in (1, 2, 3):
                            for ceil in (False, True):
                                yield h, w, k, s, p, d, ceil


def test_max_pool2d_on_narrow_planes_matches_oracle_or_names_the_empty_window():
    rng = np.random.default_rng(0)
    checked = empty_windows = 0
    for h, w, k, s, p, d, ceil in _narrow_configs():
        x = rng.standard_normal((1, 2, h, w)).astype(np.float32)
        try:
            y, idx = fastconv.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
        except ValueError as e:
            assert "max_pool2d" in str(e) and ("sees no input" in str(e) or "would be" in str(e)), str(e)
            empty_windows += "sees no input" in str(e)
            continue
        ry, ridx = ref.max_pool2d(x, (k, k), (s, s), (p, p), (d, d), ceil)
        assert_close(y, ry.astype(np.float32), np.float32)
        np.testing.assert_array_equal(idx, ridx)
        gx = fastconv.max_pool2d_backward(np.ones_like(y), idx, x.shape)
        assert gx.shape == x.shape and gx.sum() == y.size
        checked += 1
    assert checked > 400 and empty_windows > 10, (checked, empty_windows)


def test_windows_that_see_no_input_are_refused():
    # taps at -1 and 2 of a 2-wide plane (PyTorch returns -inf and index -1)
    assert_raises_naming(lambda: fastconv.max_pool2d(np.ones((1, 1, 2, 2)), 2, padding=1, dilation=3), ValueError,
                         ["max_pool2d", "sees no input", "kernel_size 2", "padding 1", "dilation 3", "[-1, 2]"])
    assert fastconv.max_pool2d(np.ones((1, 1, 3, 3)), 4, stride=1, padding=2, dilation=2).shape == (1, 1, 1, 1)


# -- TensorFlow's padding forms -------------------------------------------------

# (shape, kernel, stride, dilation): "same" pads bottom/right when the total is odd
TF_CASES = {
    "2x2_s2_odd": ((2, 3, 7, 9), 2, 2),
    "3x3_s2": ((1, 2, 10, 7), 3, 2),
    "3x3_s1": ((1, 2, 6, 5), 3, 1),
    "rect_s3": ((2, 2, 11, 8), (2, 3), (3, 1)),
    "wide": ((1, 2, 5, 67), 2, 2),
    "kernel_past_input": ((1, 1, 2, 3), 4, 1),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("case", TF_CASES)
def test_tensorflow_padding_matches_explicit_padding(case, padding, dtype, isa):
    shape, k, s = TF_CASES[case]
    k, s = pair(k), pair(s)
    if padding == "valid" and (shape[2] < k[0] or shape[3] < k[1]):
        pytest.skip("no valid window")
    pads = [ref.same_padding(size, kk, ss, 1) if padding == "same" else (0, 0)
            for size, kk, ss in zip(shape[2:], k, s)]
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    assert_close(fastconv.max_pool2d(x, k, s, padding), ref.max_pool2d_padded(x, k, s, pads), dtype)
    assert_close(fastconv.avg_pool2d(x, k, s, padding), ref.avg_pool2d_padded(x, k, s, pads), dtype)
    gy = np.random.default_rng(1).standard_normal(fastconv.avg_pool2d(x, k, s, padding).shape)
    assert_vjp(lambda v: fastconv.avg_pool2d(v, k, s, padding), x.astype(np.float64), gy,
               fastconv.avg_pool2d_backward(gy, x.shape, k, s, padding))


def test_same_padding_output_is_ceil_of_input_over_stride():
    x = np.zeros((1, 1, 7, 10))
    assert fastconv.max_pool2d(x, 3, 2, "same").shape == (1, 1, 4, 5)
    assert fastconv.max_pool2d(x, 2, 3, "valid").shape == (1, 1, 2, 3)


# -- one spatial axis -----------------------------------------------------------

# (shape, kernel, stride, padding, dilation, ceil_mode)
CASES_1D = {
    "k2": ((2, 3, 10), 2, None, 0, 1, False),
    "k3_s2_pad1": ((2, 4, 11), 3, 2, 1, 1, False),
    "dilated_ceil": ((1, 2, 13), 3, 2, 1, 2, True),
    "2d_input": ((3, 9), 3, 1, 1, 1, False),
    "same": ((2, 2, 9), 2, 2, "same", 1, False),
}


def _as_planes(x):
    """(N, C, L) or (C, L) -> the (N, C, 1, L) planes the 2-D oracle pools."""
    return (x if x.ndim == 3 else x[None])[:, :, None, :]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES_1D)
def test_pool1d_matches_oracle(case, dtype):
    shape, k, s, p, d, ceil = CASES_1D[case]
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y, idx = fastconv.max_pool1d(x, k, s, p, d, ceil, return_indices=True)
    s_ = k if s is None else s
    if p == "same":
        pads = ((0, 0), ref.same_padding(shape[-1], k, s_, 1))
        ey = ref.max_pool2d_padded(_as_planes(x), (1, k), (1, s_), pads)
        eavg = ref.avg_pool2d_padded(_as_planes(x), (1, k), (1, s_), pads)
    else:
        ey, eidx = ref.max_pool2d(_as_planes(x), (1, k), (1, s_), (0, p), (1, d), ceil)
        assert np.array_equal(_as_planes(idx), eidx)
        eavg = ref.avg_pool2d(_as_planes(x), (1, k), (1, s_), (0, p), ceil, True, None)
    assert y.shape == x.shape[:-1] + ey.shape[-1:]
    assert_close(_as_planes(y), ey, dtype)
    if d == 1:
        assert_close(_as_planes(fastconv.avg_pool1d(x, k, s, p, ceil)), eavg, dtype)


@pytest.mark.parametrize("case", [c for c in CASES_1D if CASES_1D[c][3] != "same"])
def test_pool1d_backward_by_central_differences(case):
    shape, k, s, p, d, ceil = CASES_1D[case]
    x = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 7.0  # distinct: no ties
    y, idx = fastconv.max_pool1d(x, k, s, p, d, ceil, return_indices=True)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    assert_vjp(lambda v: fastconv.max_pool1d(v, k, s, p, d, ceil), x, gy,
               fastconv.max_pool1d_backward(gy, idx, x.shape))
    if d == 1:
        ya = fastconv.avg_pool1d(x, k, s, p, ceil)
        assert_vjp(lambda v: fastconv.avg_pool1d(v, k, s, p, ceil), x, gy[..., :ya.shape[-1]],
                   fastconv.avg_pool1d_backward(gy[..., :ya.shape[-1]], x.shape, k, s, p, ceil))


# -- adaptive max pooling -------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape, out", [((2, 3, 8, 8), (4, 4)), ((1, 2, 7, 5), (3, 2)), ((2, 2, 5, 9), 1),
                                        ((3, 6, 6), (6, 4)), ((1, 1, 3, 3), (5, 5))])
def test_adaptive_max_pool2d_matches_oracle(shape, out, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y, idx = fastconv.adaptive_max_pool2d(x, out, return_indices=True)
    ey, eidx = ref.adaptive_max_pool2d(as4d(x), pair(out))
    assert_close(as4d(y), ey, dtype)
    assert np.array_equal(as4d(idx), eidx)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    xd = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 7.0
    _, idd = fastconv.adaptive_max_pool2d(xd, out, return_indices=True)
    assert_vjp(lambda v: fastconv.adaptive_max_pool2d(v, out), xd, gy, fastconv.max_pool2d_backward(gy, idd, shape))


def test_adaptive_max_pool1d_is_max_over_time_and_nan_wins():
    x = np.random.default_rng(0).standard_normal((4, 5, 11))
    assert np.array_equal(fastconv.adaptive_max_pool1d(x, 1)[..., 0], x.max(axis=-1))
    x[1, 2, 7] = np.nan
    y, idx = fastconv.adaptive_max_pool1d(x, 1, return_indices=True)
    assert np.isnan(y[1, 2, 0]) and idx[1, 2, 0] == 7


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_pool1d_and_adaptive_max_torch_cross_check(dtype):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 17)).astype(dtype)
    t = torch.from_numpy(x)
    tf = torch.nn.functional
    assert_close(fastconv.max_pool1d(x, 3, 2, 1), tf.max_pool1d(t, 3, 2, 1).numpy(), dtype)
    assert_close(fastconv.avg_pool1d(x, 4, 3, 2, True, False), tf.avg_pool1d(t, 4, 3, 2, True, False).numpy(), dtype)
    assert_close(fastconv.adaptive_max_pool1d(x, 5), tf.adaptive_max_pool1d(t, 5).numpy(), dtype)
    x2 = np.random.default_rng(1).standard_normal((2, 3, 9, 7)).astype(dtype)
    y, idx = fastconv.adaptive_max_pool2d(x2, (4, 3), return_indices=True)
    ty, tidx = tf.adaptive_max_pool2d(torch.from_numpy(x2), (4, 3), return_indices=True)
    assert_close(y, ty.numpy(), dtype)
    assert np.array_equal(idx, tidx.numpy())


x3 = np.ones((2, 3, 10))
ERRORS_1D = [
    (lambda: fastconv.max_pool1d(np.ones((2, 3, 4, 5)), 2), ValueError, ["max_pool1d", "input", "(N, C, L)"]),
    (lambda: fastconv.max_pool1d(x3, (2, 2)), ValueError, ["max_pool1d", "kernel_size"]),
    (lambda: fastconv.avg_pool1d(x3, 0), ValueError, ["avg_pool1d", "kernel_size"]),
    (lambda: fastconv.max_pool1d(x3, 2, padding="full"), ValueError, ["max_pool1d", "padding", "'same'"]),
    (lambda: fastconv.max_pool2d(np.ones((1, 1, 4, 4)), 2, padding="SAME"), ValueError, ["max_pool2d", "padding"]),
    (lambda: fastconv.adaptive_max_pool2d(np.ones((1, 1, 4, 4)), 0), ValueError,
     ["adaptive_max_pool2d", "output_size"]),
    (lambda: fastconv.adaptive_max_pool1d(x3, (2, 2)), ValueError, ["adaptive_max_pool1d", "output_size"]),
    (lambda: fastconv.max_pool1d_backward(np.ones((2, 3, 5)), np.zeros((2, 3, 5), int), (2, 3)), ValueError,
     ["max_pool1d_backward"]),
]


@pytest.mark.parametrize("call, exc, words", ERRORS_1D, ids=[f"case{i}" for i in range(len(ERRORS_1D))])
def test_bad_1d_and_adaptive_input_raises_a_clear_error(call, exc, words):
    assert_raises_naming(call, exc, words)
