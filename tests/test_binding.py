"""The binding (fastconv._C) called directly, as a caller that skipped the
public API's validation would: every buffer one value short, every geometry
field out of range, a missing buffer, an unknown name. Each is an error
naming the entry point and the argument, never an out-of-bounds access
(CI also runs this file under AddressSanitizer). Geometries the public API
never builds (output sizes that imply a cropped or over-padded bottom
edge, padding wider than the kernel) are in bounds and match the oracle."""
import numpy as np
import pytest

from fastconv import _C
from reference import conv2d as ref_conv2d, conv2d_grad_input as ref_grad_input, \
    conv2d_grad_weight as ref_grad_weight
from conftest import assert_close, assert_raises_naming

F32 = np.float32
# n, c_in, h, w, c_out, groups, kh, kw, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, out_h, out_w
CONV = (2, 4, 5, 6, 6, 2, 3, 2, 1, 2, 1, 0, 1, 1, 5, 3)
# planes, h, w, kh, kw, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, out_h, out_w, count_include_pad, divisor
POOL = (3, 5, 6, 2, 3, 2, 1, 1, 1, 1, 1, 3, 6, 1, 0)


def buf(count, dtype=F32):
    return np.full(count, np.nan, dtype)


def conv_sizes(s):
    n, c_in, h, w, c_out, groups, kh, kw, *_, out_h, out_w = s
    return {"x": n * c_in * h * w, "w": c_out * c_in // groups * kh * kw, "y": n * c_out * out_h * out_w,
            "b": c_out, "cols": n * c_in * kh * kw * out_h * out_w}


def pool_sizes(s):
    planes, h, w, *_ = s
    return {"x": planes * h * w, "y": planes * s[11] * s[12]}


def conv_calls(s, short=None):
    """(entry point, call) for every conv entry point on geometry s; the
    buffer named `short` is one value too short."""
    size = conv_sizes(s)
    b = {k: buf(v - (k == short)) for k, v in size.items()}
    return [
        ("conv2d_forward", lambda: _C.conv2d_forward(s, "gemm", b["x"], b["w"], b["b"], None, b["y"])),
        ("conv2d_grad_input", lambda: _C.conv2d_grad_input(s, "direct", b["y"], b["w"], b["x"])),
        ("conv2d_grad_weight", lambda: _C.conv2d_grad_weight(s, "gemm", b["y"], b["x"], b["w"])),
        ("conv2d_forward_grad_weight", lambda: _C.conv2d_forward_grad_weight(s, "gemm", b["x"], b["w"], b["y"],
                                                                             b["y"], b["w"])),
        ("unfold", lambda: _C.unfold(s, b["x"], b["cols"])),
        ("fold", lambda: _C.fold(s, b["cols"], b["x"])),
    ]


@pytest.mark.parametrize("short", ["x", "w", "b", "y", "cols"])
def test_conv_entry_points_refuse_a_short_buffer(short):
    for fn, call in conv_calls(CONV, short):
        uses = {"conv2d_forward": "x w b y", "conv2d_grad_input": "y w x", "conv2d_grad_weight": "y x w",
                "conv2d_forward_grad_weight": "x w y",
                "unfold": "x cols", "fold": "cols x"}[fn].split()
        if short not in uses:
            continue
        name = {"y": "gy" if "grad" in fn else "y", "x": "gx" if fn == "conv2d_grad_input" else "x",
                "w": "gw" if fn == "conv2d_grad_weight" else "w"}.get(short, short)
        assert_raises_naming(call, ValueError, [f"_C.{fn}", name, str(conv_sizes(CONV)[short])])


@pytest.mark.parametrize("field", range(16))
def test_conv_entry_points_refuse_a_field_out_of_range(field):
    bad = list(CONV)
    bad[field] = -1
    for fn, call in conv_calls(CONV):
        call_bad = {"conv2d_forward": lambda: _C.conv2d_forward(tuple(bad), "direct", buf(1), buf(1), None, None,
                                                                buf(1)),
                    "unfold": lambda: _C.unfold(tuple(bad), buf(1), buf(1))}.get(fn)
        if call_bad:
            assert_raises_naming(call_bad, ValueError, [f"_C.{fn}", _C.CONV_FIELDS[field], "-1"])


def test_conv_geometry_checks():
    assert_raises_naming(lambda: _C.unfold(CONV[:-1], buf(1), buf(1)), ValueError, ["_C.unfold", "16 fields"])
    bad = list(CONV)
    bad[5] = 3  # groups
    assert_raises_naming(lambda: _C.conv2d_forward(tuple(bad), "direct", buf(999), buf(999), None, None, buf(999)),
                         ValueError, ["_C.conv2d_forward", "groups=3", "c_in=4"])
    size = conv_sizes(CONV)
    args = buf(size["x"]), buf(size["w"]), None
    assert_raises_naming(lambda: _C.conv2d_forward(CONV, "fft", *args, None, buf(size["y"])), ValueError,
                         ["_C.conv2d_forward", "algorithm", "'fft'"])
    # a known algorithm the shape cannot take (Winograd, a 2x3 kernel): each pass's C entry point refuses it
    gy = buf(size["y"])
    for winograd in ("winograd", "winograd:2x2", "winograd:4x4"):
        assert_raises_naming(lambda: _C.conv2d_forward(CONV, winograd, *args, None, buf(size["y"])), ValueError,
                             ["cannot take this shape", "winograd needs a 3x3 or 2x2 kernel"])
        assert_raises_naming(lambda: _C.conv2d_grad_input(CONV, winograd, gy, buf(size["w"]), buf(size["x"])),
                             ValueError, ["cannot take this shape", "winograd needs a 3x3 or 2x2 kernel"])
        assert_raises_naming(lambda: _C.conv2d_grad_weight(CONV, winograd, gy, buf(size["x"]), buf(size["w"])),
                             ValueError, ["cannot take this shape", "winograd needs a 3x3 or 2x2 kernel"])
        assert_raises_naming(lambda: _C.conv2d_forward_grad_weight(CONV, winograd, buf(size["x"]), buf(size["w"]),
                                                                   gy, buf(size["y"]), buf(size["w"])),
                             ValueError, ["cannot take this shape", "winograd needs a 3x3 or 2x2 kernel"])
    assert_raises_naming(lambda: _C.conv2d_forward(CONV, "direct", *args, "tanh", buf(size["y"])), ValueError,
                         ["_C.conv2d_forward", "activation", "'tanh'"])
    with pytest.raises(TypeError):
        _C.conv2d_forward(CONV, "direct", None, buf(size["w"]), None, None, buf(size["y"]))
    with pytest.raises(ValueError):  # mixed dtypes have no kernel
        _C.conv2d_forward(CONV, "direct", buf(size["x"], np.float64), buf(size["w"]), None, None, buf(size["y"]))
    assert_raises_naming(lambda: _C.conv2d_grad_bias(2, 3, 4, buf(23), buf(3)), ValueError,
                         ["_C.conv2d_grad_bias", "gy", "24"])
    assert_raises_naming(lambda: _C.conv2d_grad_bias(2, 3, 0, buf(24), buf(3)), ValueError,
                         ["_C.conv2d_grad_bias", "plane"])


def test_read_only_inputs_are_accepted():
    size = conv_sizes(CONV)
    x, w = np.ones(size["x"], F32), np.ones(size["w"], F32)
    x.flags.writeable = w.flags.writeable = False
    y = buf(size["y"])
    _C.conv2d_forward(CONV, "direct", x, w, None, None, y)
    assert np.isfinite(y).all()
    with pytest.raises(ValueError, match="read-only"):
        _C.conv2d_forward(CONV, "direct", y, w, None, None, x)


def pool_calls(s, short=None):
    size = pool_sizes(s)
    x, y = buf(size["x"] - (short == "x")), buf(size["y"] - (short == "y"))
    idx = np.zeros(size["y"] - (short == "indices"), np.int64)
    return [
        ("max_pool2d_forward", lambda: _C.max_pool2d_forward(s, "direct", x, buf(size["y"] - (short == "y")),
                                                             idx)),
        ("max_pool2d_backward", lambda: _C.max_pool2d_backward(s, y, idx, x)),
        ("avg_pool2d_forward", lambda: _C.avg_pool2d_forward(s, "im2col", x, y)),
        ("avg_pool2d_backward", lambda: _C.avg_pool2d_backward(s, y, x)),
        ("adaptive_avg_pool2d_forward", lambda: _C.adaptive_avg_pool2d_forward(s, x, y)),
        ("adaptive_avg_pool2d_backward", lambda: _C.adaptive_avg_pool2d_backward(s, y, x)),
    ]


@pytest.mark.parametrize("short", ["x", "y", "indices"])
def test_pool_entry_points_refuse_a_short_buffer(short):
    for fn, call in pool_calls(POOL, short):
        if short == "indices" and not fn.startswith("max"):
            continue
        name = {"x": "gx" if "backward" in fn else "x", "y": "gy" if "backward" in fn else "y"}.get(short, short)
        assert_raises_naming(call, ValueError, [f"_C.{fn}", name])


@pytest.mark.parametrize("field", range(15))
def test_pool_entry_points_refuse_a_field_out_of_range(field):
    bad = list(POOL)
    bad[field] = -1
    assert_raises_naming(lambda: _C.avg_pool2d_forward(tuple(bad), "direct", buf(99), buf(99)), ValueError,
                         ["_C.avg_pool2d_forward", _C.POOL_FIELDS[field], "-1"])


def test_dense_and_elementwise_entry_points_refuse_short_buffers():
    m, n, k = 3, 4, 5
    ok = {"a": buf(m * k), "b": buf(k * n), "bias": buf(n), "c": buf(m * n)}
    for short in ok:
        args = dict(ok, **{short: buf(ok[short].size - 1)})
        assert_raises_naming(lambda: _C.gemm(m, n, k, args["a"], False, args["b"], False, args["bias"], None,
                                             args["c"]), ValueError, ["_C.gemm", short])
    assert_raises_naming(lambda: _C.gemm(m, 0, k, ok["a"], False, ok["b"], False, None, None, ok["c"]),
                         ValueError, ["_C.gemm", "n", "0"])
    assert_raises_naming(lambda: _C.relu(buf(5), buf(4)), ValueError, ["_C.relu", "y"])
    assert_raises_naming(lambda: _C.relu_backward(buf(5), buf(5), buf(4)), ValueError, ["_C.relu_backward", "gx"])
    assert_raises_naming(lambda: _C.relu_backward(buf(5), buf(4), buf(5)), ValueError, ["_C.relu_backward", "y"])
    assert_raises_naming(lambda: _C.dropout(buf(5), 0.5, 1, buf(4)), ValueError, ["_C.dropout", "y"])
    assert_raises_naming(lambda: _C.dropout(buf(5), 1.0, 1, buf(5)), ValueError, ["_C.dropout", "p"])
    labels = np.zeros(3, np.int64)
    assert_raises_naming(lambda: _C.cross_entropy(3, 4, buf(11), labels, buf(12)), ValueError,
                         ["_C.cross_entropy", "logits"])
    assert_raises_naming(lambda: _C.cross_entropy(4, 3, buf(12), labels, buf(12)), ValueError,
                         ["_C.cross_entropy", "labels"])
    assert_raises_naming(lambda: _C.cross_entropy(3, 4, buf(12), labels, buf(11)), ValueError,
                         ["_C.cross_entropy", "grad"])
    assert_raises_naming(lambda: _C.bias_grad(3, 4, buf(11), buf(4)), ValueError, ["_C.bias_grad", "g"])
    assert_raises_naming(lambda: _C.bias_grad(3, 4, buf(12), buf(3)), ValueError, ["_C.bias_grad", "gb"])
    assert_raises_naming(lambda: _C.transpose(2, 3, 4, buf(23), buf(24)), ValueError, ["_C.transpose", "src"])
    assert_raises_naming(lambda: _C.transpose(2, 3, 4, buf(24), buf(23)), ValueError, ["_C.transpose", "dst"])
    assert_raises_naming(lambda: _C.transpose(1, 2 ** 31, 1, buf(24), buf(24)), ValueError, ["_C.transpose", "rows"])
    assert_raises_naming(lambda: _C.transpose(0, 3, 4, buf(24), buf(24)), ValueError, ["_C.transpose", "batch"])
    for short in ("grad", "m", "v"):
        a = {name: np.zeros(6 - (name == short), F32) for name in ("grad", "m", "v")}
        assert_raises_naming(lambda: _C.adam_step(np.zeros(6, F32), a["grad"], a["m"], a["v"], 0.1, 0.9, 0.99,
                                                  1e-8, 1.0, 0.0), ValueError, ["_C.adam_step", short])
    assert_raises_naming(lambda: _C.set_num_threads(0), ValueError, ["_C.set_num_threads", "0"])
    assert_raises_naming(lambda: _C.set_isa("sse9"), ValueError, ["_C.set_isa", "'sse9'"])


def _padded(x, pt, pl, rows, cols):
    """x placed at (pt, pl) in a zero plane of rows x cols, cropped if x reaches past it."""
    n, c, h, w = x.shape
    xp = np.zeros((n, c, max(rows, pt + h), max(cols, pl + w)))
    xp[:, :, pt:pt + h, pl:pl + w] = x
    return xp[:, :, :rows, :cols]


def _odd_geometries(count, seed=0):
    """Valid fields whose out_h/out_w the public API would not derive: a
    bottom/right edge cropped or padded past the kernel, padding wider
    than the window."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        g = int(rng.integers(1, 3))
        n, c_in, c_out = int(rng.integers(1, 3)), g * int(rng.integers(1, 3)), g * int(rng.integers(1, 4))
        h, w, kh, kw = (int(v) for v in rng.integers(1, 7, 4))
        sh, sw, dh, dw = (int(v) for v in rng.integers(1, 3, 4))
        pt, pl = (int(v) for v in rng.integers(0, 6, 2))
        oh, ow = (int(v) for v in rng.integers(1, 8, 2))
        yield (n, c_in, h, w, c_out, g, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow)


@pytest.mark.parametrize("algorithm", ["reference", "direct", "gemm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_geometries_beyond_the_public_api_stay_in_bounds_and_correct(algorithm, dtype):
    rng = np.random.default_rng(1)
    for s in _odd_geometries(60):
        n, c_in, h, w, c_out, g, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow = s
        rows, cols = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
        x = rng.standard_normal((n, c_in, h, w)).astype(dtype)
        wt = rng.standard_normal((c_out, c_in // g, kh, kw)).astype(dtype)
        bias = rng.standard_normal(c_out).astype(dtype)
        gy = rng.standard_normal((n, c_out, oh, ow)).astype(dtype)
        xp = _padded(x, pt, pl, rows, cols)
        geometry = (sh, sw), ((0, 0), (0, 0)), (dh, dw), g

        y = np.full(n * c_out * oh * ow, np.nan, dtype)
        _C.conv2d_forward(s, algorithm, x.reshape(-1), wt.reshape(-1), bias, None, y)
        assert_close(y.reshape(gy.shape), ref_conv2d(xp, wt, bias, *geometry), dtype)

        gx = np.full(x.size, np.nan, dtype)
        _C.conv2d_grad_input(s, algorithm, gy.reshape(-1), wt.reshape(-1), gx)
        gxp = ref_grad_input(gy, xp.shape, wt, *geometry)
        expected = np.zeros((n, c_in, max(rows, pt + h), max(cols, pl + w)))
        expected[:, :, :rows, :cols] = gxp
        assert_close(gx.reshape(x.shape), expected[:, :, pt:pt + h, pl:pl + w], dtype)

        gw = np.full(wt.size, np.nan, dtype)
        _C.conv2d_grad_weight(s, algorithm, gy.reshape(-1), x.reshape(-1), gw)
        assert_close(gw.reshape(wt.shape), ref_grad_weight(gy, xp, wt.shape, *geometry), dtype)


@pytest.mark.parametrize("algorithm", ["reference", "direct", "gemm"])
def test_pool_geometries_beyond_the_public_api_stay_in_bounds_and_correct(algorithm):
    """Output sizes past the plane and padding past the window: each window
    that sees input gets its maximum and mean (the divisor counting the
    window's in-plane taps); the backward sends each gradient where the
    forward's index says."""
    rng = np.random.default_rng(2)
    for _ in range(80):
        h, w, kh, kw = (int(v) for v in rng.integers(1, 6, 4))
        sh, sw, dh, dw = (int(v) for v in rng.integers(1, 3, 4))
        pt, pl = (int(v) for v in rng.integers(0, 4, 2))
        oh, ow = (int(v) for v in rng.integers(1, 7, 2))
        s = (2, h, w, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, 0, 0)
        x = rng.standard_normal((2, h, w))
        y, idx = buf(2 * oh * ow, np.float64), np.zeros(2 * oh * ow, np.int64)
        _C.max_pool2d_forward(s, algorithm, x.reshape(-1), y, idx)
        avg = buf(2 * oh * ow, np.float64)
        if dh == dw == 1:
            _C.avg_pool2d_forward(s, algorithm, x.reshape(-1), avg)
        y, idx, avg = y.reshape(2, oh, ow), idx.reshape(2, oh, ow), avg.reshape(2, oh, ow)
        for i, j in np.ndindex(oh, ow):
            rows = [r for r in range(i * sh - pt, i * sh - pt + kh * dh, dh) if 0 <= r < h]
            cols = [c for c in range(j * sw - pl, j * sw - pl + kw * dw, dw) if 0 <= c < w]
            if not rows or not cols:
                continue
            window = x[:, rows][:, :, cols].reshape(2, -1)
            np.testing.assert_array_equal(y[:, i, j], window.max(axis=1))
            np.testing.assert_array_equal(x.reshape(2, -1)[[0, 1], idx[:, i, j]], window.max(axis=1))
            if dh == dw == 1:
                np.testing.assert_allclose(avg[:, i, j], window.mean(axis=1), rtol=1e-12)
        seen = (idx >= 0) & (idx < h * w)
        gy = np.where(seen, rng.standard_normal(idx.shape), 0)
        gx = buf(2 * h * w, np.float64)
        _C.max_pool2d_backward(s, gy.reshape(-1), np.where(seen, idx, 0).reshape(-1), gx)
        expected = np.zeros((2, h * w))
        for p in range(2):
            np.add.at(expected[p], np.where(seen, idx, 0)[p].ravel(), gy[p].ravel())
        np.testing.assert_allclose(gx.reshape(2, -1), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 5), (2, 130, 67), (1, 9, 300)])
def test_transpose_swaps_the_last_two_axes_of_each_batch(shape, dtype, isa):
    """Rows and columns off the 8 x 8 blocks, rows past a thread's block of 64."""
    src = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    dst = np.full(shape[:1] + shape[:0:-1], np.nan, dtype)
    _C.transpose(*shape, src.reshape(-1), dst.reshape(-1))
    assert np.array_equal(dst, src.transpose(0, 2, 1))

