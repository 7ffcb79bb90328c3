"""Property fuzzing of the array API with Hypothesis.

Each test draws a call that is valid by construction (shapes, dtypes,
layouts and every parameter, in each of its accepted forms), then, half the
time, breaks it in one way that API.md says is an error. The property:

- a broken call raises ValueError or TypeError (MemoryError is allowed
  anywhere) whose message names the function;
- a valid call returns, with the right dtype and shape, values matching
  the NumPy oracle in reference.py; a backward that is linear in its
  input is checked against the oracle's forward by the adjoint identity
  <f(probe), grad_output> == <probe, grad> on random probes.

CI runs the "ci" profile (a few seconds, conftest.py). A long run:
    pytest tests/test_fuzz.py --hypothesis-profile=long --hypothesis-show-statistics
"""
import numpy as np
import pytest
from hypothesis import event, given, strategies as st

import fastconv
import reference as ref
from conftest import assert_close

DTYPES = [np.float32, np.float64, np.float16, np.int32]
LAYOUTS = ["c", "fortran", "strided", "big-endian", "read-only"]
MAYBE = st.booleans()


def expected_dtype(*arrays):
    dt = np.result_type(*arrays)
    if dt.kind in "biu":
        return np.float64
    return np.float32 if dt.itemsize <= 4 else np.float64


@st.composite
def arrays(draw, shape, dtype=None):
    """A random array of `shape` in a drawn dtype and memory layout."""
    dtype = dtype or draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))
    a = np.random.default_rng(seed).standard_normal(shape) * (3 if np.dtype(dtype).kind == "i" else 1)
    a = a.astype(dtype)
    layout = draw(st.sampled_from(LAYOUTS))
    if layout == "fortran":
        a = np.asfortranarray(a)
    elif layout == "strided" and a.ndim:
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        a = wide[..., ::2]
    elif layout == "big-endian":
        a = a.astype(a.dtype.newbyteorder(">"))
    elif layout == "read-only":
        a.flags.writeable = False
    return a


@st.composite
def pair_param(draw, lo, hi):
    """An int or an (h, w) pair, as a tuple or list -> (the argument, its pair)."""
    h, w = draw(st.integers(lo, hi)), draw(st.integers(lo, hi))
    form = draw(st.sampled_from(["int", "tuple", "list"]))
    if form == "int":
        return h, (h, h)
    return ((h, w) if form == "tuple" else [h, w]), (h, w)


def outcome(fn, broken, call, check):
    """Runs call(); a refusal must name fn and come from a broken call; a
    result must come from a valid call and pass check(result)."""
    try:
        result = call()
    except (ValueError, TypeError, MemoryError) as e:
        assert fn in str(e), f"{type(e).__name__} does not name {fn}: {e}"
        assert broken or isinstance(e, MemoryError), f"{fn} refused a valid call: {e}"
        event(f"{fn}: refused ({broken})")
        return
    assert not broken, f"{fn} accepted a call broken by {broken!r}"
    check(result)
    event(f"{fn}: matched the oracle")


def assert_matches(got, expected, dtype):
    assert isinstance(got, np.ndarray), type(got)
    assert_close(got, np.asarray(expected, np.float64).astype(dtype), dtype)


def assert_adjoint(forward, probe_shape, grad_output, grad, dtype, seed=0):
    """<forward(p), grad_output> == <p, grad> for random probes p, with
    `forward` the oracle's, linear in p."""
    assert grad.shape == tuple(probe_shape) and grad.dtype == np.dtype(dtype), (grad.shape, grad.dtype)
    rng = np.random.default_rng(seed)
    gy = np.asarray(grad_output, np.float64)
    for _ in range(2):
        p = rng.standard_normal(probe_shape)
        lhs, rhs = float(np.sum(forward(p) * gy)), float(np.sum(p * grad))
        scale = np.sqrt(np.sum(np.abs(forward(np.abs(p))) * np.abs(gy))) + 1
        assert abs(lhs - rhs) <= (1e-3 if dtype == np.float32 else 1e-8) * scale * scale, (lhs, rhs)


def conv_pads(padding, sizes, kernel, stride, dilation):
    """API.md's padding forms -> ((before, after), ...) per spatial dim."""
    if padding == "valid":
        return tuple((0, 0) for _ in sizes)
    if padding == "same":
        return tuple(ref.same_padding(*a) for a in zip(sizes, kernel, stride, dilation))
    if isinstance(padding, int):
        return tuple((padding, padding) for _ in sizes)
    if all(isinstance(p, int) for p in padding):
        return tuple((p, p) for p in padding) if len(sizes) == 2 else (tuple(padding),)
    return tuple(tuple(p) for p in padding)


@st.composite
def padding_param(draw, dims):
    form = draw(st.sampled_from(["int", "pair", "pairs", "valid", "same"]))
    if form in ("valid", "same"):
        return form
    if form == "int":
        return draw(st.integers(0, 3))
    if form == "pair":  # conv2d: (ph, pw); conv1d: (before, after)
        return tuple(draw(st.integers(0, 3)) for _ in range(2))
    return tuple(tuple(draw(st.integers(0, 3)) for _ in range(2)) for _ in range(dims))


CONV_BREAKS = ["stride=0", "stride=-1", "stride=1.5", "stride=True", "stride=(1,1,1)", "dilation=0",
               "padding=-1", "padding='full'", "groups=0", "groups=c_in+1", "weight channels", "bias length",
               "input ndim", "weight ndim", "complex input", "string input", "kernel too big",
               "algorithm", "grad_output shape", "needs"]


@st.composite
def conv_calls(draw, dims):
    """A valid conv2d (dims=2) or conv1d (dims=1) call and maybe one break."""
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    n = draw(st.integers(0, 2))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    if dims == 2:
        stride, stride_pair = draw(pair_param(1, 3))
        dilation, dilation_pair = draw(pair_param(1, 3))
    else:
        stride, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        stride_pair, dilation_pair = (stride,), (dilation,)
    padding = draw(padding_param(dims))
    sizes = []
    for i, k in enumerate(kernel):
        span = dilation_pair[i] * (k - 1) + 1
        total = 0 if padding in ("valid", "same") else sum(conv_pads(padding, (1,) * dims, kernel, stride_pair,
                                                                     dilation_pair)[i])
        lo = 1 if padding == "same" else max(1, span - total)
        sizes.append(draw(st.integers(lo, lo + 5)))
    x = draw(arrays((n, c_in, *sizes)))
    w = draw(arrays((c_out, c_in // groups, *kernel)))
    b = draw(st.none() | arrays((c_out,)))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    pads = conv_pads(padding, sizes, kernel, stride_pair, dilation_pair)
    broken = draw(st.none() | st.sampled_from(CONV_BREAKS)) if draw(MAYBE) else None
    extra = {}
    if broken:
        key, _, value = broken.partition("=")
        if key in ("stride", "dilation", "padding", "groups") and value:
            kw[key] = eval(value, {"c_in": c_in})
            if dims == 1 and value == "(1,1,1)":
                kw[key] = (1, 1)
        elif broken == "weight channels":
            w = np.ones((c_out, c_in // groups + 1, *kernel))
        elif broken == "bias length":
            b = np.ones(c_out + 1)
        elif broken == "input ndim":
            x = x[0] if n else np.ones((c_in, *sizes))
        elif broken == "weight ndim":
            w = w[..., None]
        elif broken == "complex input":
            x = x.astype(np.complex64)
        elif broken == "string input":
            x = np.full(x.shape, "a")
        elif broken == "kernel too big":
            kw["padding"] = 0
            w = np.ones((c_out, c_in // groups) + tuple(s + 1 for s in sizes))
        elif broken == "algorithm":
            extra["algorithm"] = "fft"
        elif broken == "needs":
            extra["needs"] = ("input", "hessian")
    if dims == 1 and broken == "stride=(1,1,1)":
        broken = "stride=(1,1)"
    return x, w, b, kw, extra, broken, (stride_pair, pads, dilation_pair, groups)


def conv_oracle(x, w, b, geometry, dims):
    stride, pads, dilation, groups = geometry
    if dims == 1:
        x, w = x[:, :, None, :], w[:, :, None, :]
        stride, pads, dilation = (1, *stride), ((0, 0), *pads), (1, *dilation)
    y = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b, stride, pads, dilation, groups)
    return y[:, :, 0, :] if dims == 1 else y


@pytest.mark.parametrize("dims", [1, 2], ids=["conv1d", "conv2d"])
@given(data=st.data())
def test_conv_forward(dims, data):
    x, w, b, kw, extra, broken, geometry = data.draw(conv_calls(dims))
    fn = "conv2d" if dims == 2 else "conv1d"
    if broken in ("grad_output shape", "needs"):
        broken = None  # not a forward argument
        extra.pop("needs", None)
    algorithm = extra.get("algorithm") or data.draw(st.sampled_from(["auto", "direct", "gemm", "reference"]))
    dtype = expected_dtype(*[a for a in (x, w, b) if a is not None])
    outcome(fn, broken, lambda: getattr(fastconv, fn)(x, w, b, **kw, algorithm=algorithm),
            lambda y: assert_matches(y, conv_oracle(x, w, b, geometry, dims), dtype))


@pytest.mark.parametrize("dims", [1, 2], ids=["conv1d", "conv2d"])
@given(data=st.data())
def test_conv_backward(dims, data):
    x, w, b, kw, extra, broken, geometry = data.draw(conv_calls(dims))
    fn = "conv2d_backward" if dims == 2 else "conv1d_backward"
    if broken in ("bias length", "algorithm") or broken is None:
        broken = None
        extra.pop("algorithm", None)
    try:
        out_shape = conv_oracle(np.zeros(x.shape), np.zeros(w.shape), None, geometry, dims).shape
    except Exception:  # a broken geometry the oracle cannot even evaluate
        out_shape = (1,) * (dims + 2)
    gy = data.draw(arrays(out_shape))
    if broken == "grad_output shape":
        gy = np.ones(out_shape[:-1] + (out_shape[-1] + 1,))
    needs = extra.get("needs") or data.draw(st.lists(st.sampled_from(["input", "weight", "bias"]), unique=True))
    dtype = expected_dtype(gy, x, w)
    stride, pads, dilation, groups = geometry

    def check(grads):
        gx, gw, gb = grads
        for name, g in (("input", gx), ("weight", gw), ("bias", gb)):
            assert (g is None) == (name not in needs), (name, needs)
        if dims == 1:
            x4, w4, gy4 = x[:, :, None, :], w[:, :, None, :], gy[:, :, None, :]
            geo = (1, *stride), ((0, 0), *pads), (1, *dilation), groups
        else:
            x4, w4, gy4, geo = x, w, gy, (stride, pads, dilation, groups)
        gy64 = gy4.astype(np.float64)
        if gx is not None:
            assert_matches(gx, ref.conv2d_grad_input(gy64, x4.shape, w4.astype(np.float64), *geo).reshape(x.shape),
                           dtype)
        if gw is not None:
            assert_matches(gw, ref.conv2d_grad_weight(gy64, x4.astype(np.float64), w4.shape, *geo).reshape(w.shape),
                           dtype)
        if gb is not None:
            assert_matches(gb, gy64.sum(axis=(0, 2, 3)), dtype)

    outcome(fn, broken, lambda: getattr(fastconv, fn)(gy, x, w, **kw, needs=needs), check)


TRANSPOSE_BREAKS = ["stride=0", "dilation=0", "padding=-1", "output_padding=-1", "output_padding too big",
                    "groups=0", "groups=c_in+1", "weight channels", "bias length", "output too small",
                    "complex input", "grad_output shape"]


@st.composite
def transpose_calls(draw):
    groups = draw(st.integers(1, 3))
    c_in, og = groups * draw(st.integers(1, 2)), draw(st.integers(1, 3))
    n = draw(st.integers(0, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride, s2 = draw(pair_param(1, 3))
    dilation, d2 = draw(pair_param(1, 3))
    padding, p2 = draw(pair_param(0, 2))
    op2 = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(s2, d2))
    output_padding = op2 if draw(MAYBE) else (op2[0] if op2[0] == op2[1] else op2)
    sizes = []
    for k, s, d, p, op in zip(kernel, s2, d2, p2, op2):
        # the output (H-1)*s - 2p + d(k-1) + op + 1 must be at least 1
        lo = 1
        while (lo - 1) * s - 2 * p + d * (k - 1) + op + 1 < 1:
            lo += 1
        sizes.append(draw(st.integers(lo, lo + 4)))
    x = draw(arrays((n, c_in, *sizes)))
    w = draw(arrays((c_in, og, *kernel)))
    b = draw(st.none() | arrays((og * groups,)))
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    broken = draw(st.sampled_from(TRANSPOSE_BREAKS)) if draw(MAYBE) else None
    if broken:
        key, _, value = broken.partition("=")
        if value:
            kw[key] = eval(value, {"c_in": c_in})
        elif broken == "output_padding too big":
            kw["output_padding"] = max(max(s2), max(d2))
        elif broken == "weight channels":
            w = np.ones((c_in + 1, og, *kernel))
        elif broken == "bias length":
            b = np.ones(og * groups + 1)
        elif broken == "output too small":
            kw.update(stride=1, dilation=1, output_padding=0, padding=max(sizes) + max(kernel))
        elif broken == "complex input":
            x = x.astype(np.complex128)
    return x, w, b, kw, broken, (s2, p2, op2, groups, d2)


def transpose_oracle(x, w, b, geometry):
    s2, p2, op2, groups, d2 = geometry
    return ref.conv_transpose2d(np.asarray(x, np.float64), np.asarray(w, np.float64), b, s2, p2, op2, groups, d2)


@given(data=st.data())
def test_conv_transpose2d(data):
    x, w, b, kw, broken, geometry = data.draw(transpose_calls())
    if broken == "grad_output shape":
        broken = None
    dtype = expected_dtype(*[a for a in (x, w, b) if a is not None])
    outcome("conv_transpose2d", broken, lambda: fastconv.conv_transpose2d(x, w, b, **kw),
            lambda y: assert_matches(y, transpose_oracle(x, w, b, geometry), dtype))


@given(data=st.data())
def test_conv_transpose2d_backward(data):
    x, w, b, kw, broken, geometry = data.draw(transpose_calls())
    if broken == "bias length":
        broken = None
    try:
        out_shape = transpose_oracle(np.zeros(x.shape), np.zeros(w.shape), None, geometry).shape
    except Exception:
        out_shape = (1, 1, 1, 1)
    gy = data.draw(arrays(out_shape))
    if broken == "grad_output shape":
        gy = np.ones(out_shape[:-1] + (out_shape[-1] + 2,))
    dtype = expected_dtype(gy, x, w)

    def check(grads):
        gx, gw, gb = grads
        assert_adjoint(lambda p: transpose_oracle(p, w, None, geometry), x.shape, gy, gx, dtype)
        assert_adjoint(lambda p: transpose_oracle(x, p, None, geometry), w.shape, gy, gw, dtype)
        assert_matches(gb, np.asarray(gy, np.float64).sum(axis=(0, 2, 3)), dtype)

    outcome("conv_transpose2d_backward", broken, lambda: fastconv.conv_transpose2d_backward(gy, x, w, **kw), check)


def windows_see_input(size, k, s, p, d, out):
    return all(any(0 <= o * s - p + i * d < size for i in range(k)) for o in range(out))


POOL_BREAKS = ["kernel_size=0", "stride=0", "padding=-1", "padding too big", "dilation=0", "input ndim",
               "complex input", "kernel too big"]


@st.composite
def pool_calls(draw, max_pool):
    lead = draw(st.sampled_from([(), (0,), (1,), (2,)])) + (draw(st.integers(1, 3)),)
    kernel, k2 = draw(pair_param(1, 4))
    stride, s2 = (None, k2) if draw(MAYBE) else draw(pair_param(1, 3))
    p2 = tuple(draw(st.integers(0, k // 2)) for k in k2)
    padding = p2 if p2[0] != p2[1] or draw(MAYBE) else p2[0]
    dilation, d2 = draw(pair_param(1, 3)) if max_pool else (1, (1, 1))
    ceil_mode = draw(st.booleans())
    sizes = tuple(draw(st.integers(lo, lo + 6)) for lo in (max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(k2, p2, d2)))
    outs = tuple(ref.pool_out_size(*a, ceil_mode) for a in zip(sizes, k2, s2, p2, d2))
    x = draw(arrays(lead + sizes))
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if max_pool:
        kw["dilation"] = dilation
    else:
        kw["count_include_pad"] = draw(st.booleans())
        kw["divisor_override"] = draw(st.none() | st.integers(1, 5))
    # windows that see no input at all are an error by API.md
    broken = None if all(windows_see_input(*a) for a in zip(sizes, k2, s2, p2, d2, outs)) else "window sees no input"
    if draw(MAYBE):
        broken = draw(st.sampled_from(POOL_BREAKS if max_pool else
                                      [b for b in POOL_BREAKS if b != "dilation=0"] + ["divisor_override=0"]))
        key, _, value = broken.partition("=")
        if value:
            kw[key] = int(value)
        elif broken == "padding too big":
            kw["padding"] = k2[0] // 2 + 1
        elif broken == "input ndim":
            x = np.ones(sizes)
        elif broken == "complex input":
            x = x.astype(np.complex64)
        elif broken == "kernel too big":
            kw.update(kernel_size=(sizes[0] + 1, 1), padding=0, stride=1)
            kw.pop("dilation", None)
    geometry = (k2, s2, p2, d2, ceil_mode)
    return x, kw, broken, geometry


def as4d(a):
    a = np.asarray(a, np.float64)
    return a.reshape((-1,) + a.shape[-3:]) if a.ndim == 4 else a[None]


@given(data=st.data())
def test_max_pool2d_and_backward(data):
    x, kw, broken, (k2, s2, p2, d2, ceil_mode) = data.draw(pool_calls(max_pool=True))
    dtype = expected_dtype(x)
    algorithm = data.draw(st.sampled_from(["auto", "reference"]))

    def check(result):
        y, idx = result
        expected, expected_idx = ref.max_pool2d(as4d(x), k2, s2, p2, d2, ceil_mode)
        assert_matches(y, expected.reshape(y.shape), dtype)
        np.testing.assert_array_equal(idx, expected_idx.reshape(idx.shape))
        gy = data.draw(arrays(y.shape))
        index_break = data.draw(st.sampled_from([None, None, "index past the plane", "float indices", "shape"]))
        bad_idx = {"index past the plane": idx + x.shape[-2] * x.shape[-1] if idx.size else idx,
                   "float indices": idx.astype(np.float64), "shape": idx[..., :-1]}.get(index_break, idx)
        if index_break == "index past the plane" and not idx.size:
            index_break = None

        def check_backward(gx):
            expected_gx = np.zeros((int(np.prod(x.shape[:-2])), x.shape[-2] * x.shape[-1]))
            plane = idx.shape[-2] * idx.shape[-1]
            planes_idx = idx.reshape(len(expected_gx), plane)
            planes_gy = np.asarray(gy, np.float64).reshape(len(expected_gx), plane)
            for p in range(len(expected_gx)):
                np.add.at(expected_gx[p], planes_idx[p], planes_gy[p])
            assert_matches(gx, expected_gx.reshape(x.shape), expected_dtype(gy))

        outcome("max_pool2d_backward", index_break, lambda: fastconv.max_pool2d_backward(gy, bad_idx, x.shape),
                check_backward)

    outcome("max_pool2d", broken, lambda: fastconv.max_pool2d(x, **kw, return_indices=True, algorithm=algorithm),
            check)


@given(data=st.data())
def test_avg_pool2d_and_backward(data):
    x, kw, broken, (k2, s2, p2, _, ceil_mode) = data.draw(pool_calls(max_pool=False))
    dtype = expected_dtype(x)

    def oracle(v):
        return ref.avg_pool2d(as4d(v), k2, s2, p2, ceil_mode, kw["count_include_pad"], kw["divisor_override"])

    def check(y):
        assert_matches(y, oracle(x).reshape(y.shape), dtype)
        gy = data.draw(arrays(y.shape))
        outcome("avg_pool2d_backward", None, lambda: fastconv.avg_pool2d_backward(gy, x.shape, **kw),
                lambda gx: assert_adjoint(lambda p: oracle(p).reshape(y.shape), x.shape, gy, gx,
                                          expected_dtype(gy)))

    outcome("avg_pool2d", broken, lambda: fastconv.avg_pool2d(x, **kw), check)


@given(data=st.data())
def test_adaptive_avg_pool2d_and_backward(data):
    lead = data.draw(st.sampled_from([(), (0,), (2,)])) + (data.draw(st.integers(1, 3)),)
    sizes = (data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9)))
    x = data.draw(arrays(lead + sizes))
    form = data.draw(st.sampled_from(["int", "pair", "none"]))
    o = (data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    output_size, out = {"int": (o[0], (o[0], o[0])), "pair": (o, o), "none": ((o[0], None), (o[0], sizes[1]))}[form]
    broken = data.draw(st.sampled_from(["output_size=0", "output_size=(1,2,3)", "output_size=1.5", "input ndim"])) \
        if data.draw(MAYBE) else None
    if broken == "input ndim":
        x = np.ones(sizes)
    elif broken:
        output_size = eval(broken.partition("=")[2])
    dtype = expected_dtype(x)

    def oracle(v):
        return ref.adaptive_avg_pool2d(as4d(v), out)

    def check(y):
        assert_matches(y, oracle(x).reshape(y.shape), dtype)
        gy = data.draw(arrays(y.shape))
        outcome("adaptive_avg_pool2d_backward", None, lambda: fastconv.adaptive_avg_pool2d_backward(gy, x.shape),
                lambda gx: assert_adjoint(lambda p: oracle(p).reshape(y.shape), x.shape, gy, gx,
                                          expected_dtype(gy)))

    outcome("adaptive_avg_pool2d", broken, lambda: fastconv.adaptive_avg_pool2d(x, output_size), check)


UNFOLD_BREAKS = ["kernel_size=0", "stride=0", "padding=-1", "dilation=0", "input ndim", "kernel too big",
                 "fold rows", "fold length", "output_size=0"]


@given(data=st.data())
def test_unfold_and_fold(data):
    n, c = data.draw(st.integers(0, 2)), data.draw(st.integers(1, 3))
    kernel, k2 = data.draw(pair_param(1, 4))
    dilation, d2 = data.draw(pair_param(1, 3))
    padding, p2 = data.draw(pair_param(0, 3))
    stride, s2 = data.draw(pair_param(1, 3))
    sizes = tuple(data.draw(st.integers(lo, lo + 6)) for lo in (max(1, d * (k - 1) + 1 - 2 * p)
                                                                 for k, p, d in zip(k2, p2, d2)))
    x = data.draw(arrays((n, c) + sizes))
    kw = dict(kernel_size=kernel, dilation=dilation, padding=padding, stride=stride)
    broken = data.draw(st.sampled_from(UNFOLD_BREAKS)) if data.draw(MAYBE) else None
    unfold_broken = broken if broken not in ("fold rows", "fold length", "output_size=0") else None
    call_kw = dict(kw)
    if unfold_broken:
        key, _, value = broken.partition("=")
        if value:
            call_kw[key] = int(value)
        elif broken == "input ndim":
            x = np.ones((c,) + sizes)
        else:
            call_kw.update(kernel_size=(sizes[0] + 2 * p2[0] + 1, 1), dilation=1)
    dtype = expected_dtype(x)

    def check(cols):
        assert_matches(cols, ref.unfold(np.asarray(x, np.float64), k2, d2, p2, s2), dtype)
        c_in = data.draw(arrays(cols.shape))
        output_size = sizes
        fold_broken = broken if broken != unfold_broken else None
        if broken == "fold rows":
            c_in = np.ones((n, cols.shape[1] + 1, cols.shape[2]))
            if k2[0] * k2[1] == 1:
                fold_broken = None  # one more channel, still valid
        elif broken == "fold length":
            c_in = np.ones((n, cols.shape[1], cols.shape[2] + 1))
        elif broken == "output_size=0":
            output_size = (0, sizes[1])
        outcome("fold", fold_broken, lambda: fastconv.fold(c_in, output_size, **kw),
                lambda folded: assert_matches(folded, ref.fold(np.asarray(c_in, np.float64), sizes, k2, d2, p2, s2),
                                              expected_dtype(c_in)))

    outcome("unfold", unfold_broken, lambda: fastconv.unfold(x, **call_kw), check)
