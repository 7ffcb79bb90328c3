"""conv2d forward and gradients against the NumPy oracle, every algorithm,
both dtypes, both GEMM microkernels; gradients by central differences."""
import numpy as np
import pytest

import fastconv
from fastconv import _C
from fastconv._validate import conv_geometry
import reference as ref
from conftest import assert_close
from gradcheck import assert_vjp, numerical_vjp

# (N, C_in, H, W, C_out, (kH, kW), stride, padding, dilation, groups)
CASES = {
    "basic_3x3": (2, 3, 9, 11, 5, (3, 3), 1, 1, 1, 1),
    "no_pad_5x5": (2, 2, 12, 10, 4, (5, 5), 1, 0, 1, 1),
    "rect_kernel": (1, 3, 10, 9, 4, (2, 4), 1, (1, 2), 1, 1),
    "stride2": (2, 4, 13, 12, 6, (3, 3), 2, 1, 1, 1),
    "stride3_rect": (1, 3, 14, 11, 5, (3, 2), (3, 2), (2, 1), 1, 1),
    "dilation2": (2, 3, 12, 12, 4, (3, 3), 1, 2, 2, 1),
    "dilation3_stride2": (1, 2, 17, 15, 3, (3, 3), 2, 3, (3, 2), 1),
    "asym_pad": (2, 3, 8, 9, 4, (3, 3), 1, ((0, 2), (1, 0)), 1, 1),
    "asym_pad_stride2": (1, 3, 9, 10, 5, (4, 3), 2, ((2, 1), (0, 3)), 1, 1),
    # stride-1 grad-input runs as a forward conv (from 24 input channels per
    # group) on gy framed by the window's reach less the padding; padding
    # beyond the reach falls back at the top and left (a negative frame),
    # and leaves gy rows unread at the bottom and right
    "pad_beyond_reach_far": (1, 24, 5, 6, 4, (2, 3), 1, ((1, 3), (0, 4)), 1, 1),
    "pad_beyond_reach_near": (2, 24, 5, 6, 4, (2, 2), 1, ((2, 0), (3, 1)), 1, 1),
    "grad_input_forward_groups": (2, 48, 7, 8, 6, (3, 3), 1, ((2, 1), (0, 3)), (2, 1), 2),
    # strided, one such conv per phase (LARGE_CASES below), but col2im when
    # a phase has no taps (dilation sharing a factor with the stride, 1x1
    # and 2x2 kernels at strides 2 and 3) or needs a negative frame
    "no_phases_s2_dil2": (2, 24, 10, 9, 3, (3, 3), 2, 2, 2, 1),
    "no_phases_1x1_s2": (2, 24, 7, 8, 5, (1, 1), 2, 0, 1, 1),
    "no_phases_2x2_s3": (2, 24, 9, 10, 4, (2, 2), 3, 1, 1, 1),
    "no_phases_pad_beyond_reach": (1, 24, 7, 7, 4, (3, 3), 2, 3, 1, 1),
    "same_s1": (2, 3, 9, 8, 4, (3, 3), 1, "same", 1, 1),
    "same_s1_even_k": (1, 2, 7, 8, 3, (4, 2), 1, "same", 1, 1),
    "same_s2": (2, 3, 11, 10, 4, (3, 3), 2, "same", 1, 1),
    "same_s3_dil2": (1, 3, 13, 14, 4, (3, 3), 3, "same", 2, 1),
    "valid": (2, 3, 8, 8, 4, (3, 3), 1, "valid", 1, 1),
    "groups2": (2, 4, 9, 9, 6, (3, 3), 1, 1, 1, 2),
    "groups3_stride2": (1, 6, 10, 9, 9, (3, 3), 2, 1, 1, 3),
    "depthwise": (2, 5, 10, 10, 5, (3, 3), 1, 1, 1, 5),
    "depthwise_mult2": (2, 4, 9, 8, 8, (3, 3), 2, 1, 1, 4),
    # the direct passes' depthwise rows: blocks of 4 output rows, rows of
    # whole vectors and one more ending at the row's end over the one
    # before it (the last block of rows ends at the last row the same
    # way); 3x3 and 5x5 unrolled, other kernels not; planes over a page;
    # too few rows for a block; a kernel of more taps than go by rows (9x9)
    "depthwise_rows": (2, 3, 18, 21, 3, (3, 3), 1, 1, 1, 3),
    "depthwise_rows_exact": (1, 2, 4, 16, 2, (3, 3), 1, 1, 1, 2),
    "depthwise_rows_5x5": (1, 2, 9, 35, 2, (5, 5), 1, 2, 1, 2),
    "depthwise_rows_k24": (1, 2, 6, 17, 2, (2, 4), 1, ((1, 0), (2, 1)), 1, 2),
    "depthwise_rows_ahead": (2, 3, 33, 40, 3, (3, 3), 1, 1, 1, 3),
    "depthwise_rows_short": (1, 2, 3, 20, 2, (3, 3), 1, 1, 1, 2),
    "depthwise_rows_9x9": (1, 2, 10, 18, 2, (9, 9), 1, 4, 1, 2),
    "pointwise_1x1": (2, 7, 6, 5, 9, (1, 1), 1, 0, 1, 1),
    "pointwise_1x1_stride2": (1, 5, 7, 7, 3, (1, 1), 2, 0, 1, 1),
    "kernel_eq_input": (2, 3, 5, 5, 4, (5, 5), 1, 0, 1, 1),
    # rows of one and of two whole float32 vectors, which the direct passes
    # copy inline, as two overlapping vectors
    "rows_16": (1, 2, 3, 16, 3, (3, 3), 1, 1, 1, 1),
    "rows_32": (1, 2, 3, 32, 3, (3, 3), 1, 0, 1, 1),
    "one_pixel": (1, 1, 1, 1, 2, (1, 1), 1, 0, 1, 1),
    # around the 6 x 16 (f32) / 6 x 8 (f64) register tile: M and N just
    # below, at and above the tile edges
    "tile_m5_n15": (1, 3, 3, 5, 5, (3, 3), 1, 1, 1, 1),
    "tile_m6_n16": (1, 3, 4, 4, 6, (3, 3), 1, 1, 1, 1),
    "tile_m7_n17": (1, 3, 1, 17, 7, (3, 3), 1, 1, 1, 1),
    "tile_m12_n32": (1, 4, 4, 8, 12, (3, 3), 1, 1, 1, 1),
    "tile_m13_n33": (1, 4, 3, 11, 13, (3, 3), 1, 1, 1, 1),
    # K around the KC = 256 block: 28*9 = 252, 29*9 = 261
    "kc_edge_below": (1, 28, 5, 5, 7, (3, 3), 1, 1, 1, 1),
    "kc_edge_above": (1, 29, 5, 5, 7, (3, 3), 1, 1, 1, 1),
    # the im2col forward: packed GEMM below K = 16 taps, indirect GEMM from
    # 16; its edges: 37 channels (a partial panel), 132 pixels (two pixel
    # blocks of 96, the last tile partial)
    "k15_packed": (2, 15, 6, 7, 9, (1, 1), 1, 0, 1, 1),
    "k16_indirect": (2, 4, 6, 7, 9, (2, 2), 1, 1, 1, 1),
    "indirect_edges": (1, 5, 23, 21, 37, (3, 3), 2, 1, 1, 1),
    # the indirect forward sums K in chunks of 128 taps: K = 128, 132, 261
    "indirect_kc_128": (1, 32, 5, 6, 9, (2, 2), 1, 0, 1, 1),
    "indirect_kc_132": (1, 33, 5, 6, 9, (2, 2), 1, 0, 1, 1),
    "indirect_kc_261": (2, 29, 5, 5, 35, (3, 3), 1, 1, 1, 1),
    # AVX-512 computes a last panel of at most half its width with a narrow
    # kernel (37 = 32 + 5 above); 25 channels leave a wide partial panel
    "wide_partial_panel": (1, 6, 9, 8, 25, (3, 3), 1, 1, 1, 1),
    # grad-weight as dot products (K < 48 taps): an RGB first layer
    "first_layer_rgb": (2, 3, 9, 9, 40, (3, 3), 1, 1, 1, 1),
    "first_layer_rgb_wide": (1, 3, 7, 7, 70, (3, 3), 2, 1, 1, 1),
    # grad-weight as an indirect GEMM (K >= 48, M >= 8) and its edges: K = 63
    # (a partial tap tile), 37 channels (a partial panel), strides, dilations
    # and padding that differ per side; groups; 1190 pixels (two pixel
    # blocks of 1024); 18 images (slots of one and two images)
    "gw_indirect_edges": (2, 7, 11, 10, 37, (3, 3), (2, 1), ((1, 0), (2, 1)), (1, 2), 1),
    "gw_indirect_groups": (2, 16, 9, 9, 18, (3, 3), 1, 1, 1, 2),
    "gw_pixel_blocks": (1, 6, 35, 34, 8, (3, 3), 1, 1, 1, 1),
    "gw_many_images": (18, 6, 5, 5, 8, (3, 3), 1, 1, 1, 1),
    # ... shared by taps instead of by images when gy is small beside gw
    # (2 * N * P < min(N, 16) * K): a partial tile of a task's taps, a wide
    # and a narrow partial panel, framed channel ranges with strides and
    # dilations, three images; grouped
    "gw_taps_edges": (3, 20, 7, 6, 37, (3, 3), (2, 1), ((1, 0), (2, 1)), (1, 2), 1),
    "gw_taps_groups": (2, 32, 5, 5, 18, (3, 3), 1, 1, 1, 2),
    "gw_taps_unframed": (3, 20, 6, 7, 12, (3, 3), 1, 0, 1, 1),
    # the real layers of LeNet-5 and the tutorial CNN, smaller batch
    "lenet_c1": (2, 1, 32, 32, 6, (5, 5), 1, 0, 1, 1),
    "lenet_c2": (2, 6, 14, 14, 16, (5, 5), 1, 0, 1, 1),
    "mnist_c1": (2, 1, 28, 28, 64, (3, 3), 1, 1, 1, 1),
    "mnist_c2": (1, 64, 14, 14, 128, (3, 3), 1, 1, 1, 1),
    # one image of few pixels and many channels: the indirect forward
    # splits the output channels between threads (a narrow last panel too)
    "wide_few_pixels": (1, 96, 4, 5, 208, (3, 3), 1, 1, 1, 1),
    "wide_few_pixels_groups": (2, 64, 3, 3, 160, (3, 3), 1, 1, 1, 2),
}
# Paths only large shapes take, tested on the GEMM path alone. A strided
# grad-input runs as one stride-1 conv per phase (gx's rows and columns mod
# the stride) only where a phase is worth a call of its own (16 MFLOP on
# average): stride 2; strides, dilations and padding differing per axis;
# grouped with a dilation coprime to the stride. Grad-weight shared by taps
# over two blocks of the batch's pixels, the first ending inside an image
# (3 images of 400 pixels, 2304 taps).
LARGE_CASES = {
    "phases_s2": (2, 24, 97, 97, 48, (3, 3), 2, 1, 1, 1),
    "phases_s32_k43": (4, 24, 90, 60, 64, (4, 3), (3, 2), ((1, 2), (1, 0)), 1, 1),
    "phases_groups_dil3": (3, 48, 80, 80, 48, (3, 3), 2, 3, 3, 2),
    "gw_taps_pixel_blocks": (3, 256, 20, 20, 8, (3, 3), 1, 1, 1, 1),
}
# Winograd F(4x4, 3x3) and F(2x2, 3x3) run 3x3, stride-1, undilated convs:
# every such case above, and these around their output tiles (maps not a
# multiple of 4 or 2, smaller than a tile, one pixel), padding past the
# window's reach (grad-input then crops gy), asymmetric padding, groups
# (whose 16 channels a group take several transform calls of a few
# channels each), tile rows of several images in one block, more
# channels than the GEMM's k-block (256) and row block (192 / 96), wide
# enough that the tasks transform the kernels themselves (over 4 MiB of
# them, with and without groups), and enough images for grad-weight's
# blocks of tile rows to be many, the last one short.
WINOGRAD_EXTRA = {
    "wino_5x7": (2, 4, 5, 7, 3, (3, 3), 1, 1, 1, 1),
    "wino_2x2_map": (1, 3, 2, 2, 4, (3, 3), 1, 1, 1, 1),
    "wino_one_pixel": (1, 3, 1, 1, 2, (3, 3), 1, 1, 1, 1),
    "wino_pad3": (2, 3, 6, 7, 4, (3, 3), 1, 3, 1, 1),
    "wino_asym_pad": (1, 5, 9, 10, 6, (3, 3), 1, ((0, 3), (2, 1)), 1, 1),
    "wino_groups4": (2, 64, 12, 13, 32, (3, 3), 1, "same", 1, 4),
    "wino_valid": (1, 8, 10, 9, 8, (3, 3), 1, "valid", 1, 1),
    "wino_many_images": (7, 16, 9, 6, 24, (3, 3), 1, 1, 1, 1),
    "wino_3x3_map": (3, 5, 3, 3, 7, (3, 3), 1, 1, 1, 1),
    "wino_wide": (1, 300, 5, 6, 200, (3, 3), 1, 1, 1, 1),
    "wino_wide_groups": (1, 320, 5, 6, 320, (3, 3), 1, 1, 1, 2),
    "wino_gw_blocks": (40, 4, 10, 30, 5, (3, 3), 1, 1, 1, 1),
    # transformed kernels of 1.2-2.7 MB, over WINO_STREAM_BYTES, stored past the
    # caches; odd channel counts start their rows off 16-byte boundaries
    "wino_streamed_kernels": (1, 129, 6, 5, 70, (3, 3), 1, 1, 1, 1),
    # 2x2 kernels: F(3x3, 2x2) ("winograd:4x4") and F(2x2, 2x2) ("winograd:2x2")
    "wino_k2": (2, 3, 6, 7, 4, (2, 2), 1, 0, 1, 1),
    "wino_k2_pad_groups": (2, 4, 8, 8, 6, (2, 2), 1, 1, 1, 2),
    "wino_k2_wide": (2, 3, 6, 17, 4, (2, 2), 1, 0, 1, 1),  # rows of 5 F(3x3) tiles: 4 stored at once, 1 alone
    # strided kernels of 2 or 3 strides, by Winograd on the input's stride
    # phases: paddings that leave input rows and columns in no window, groups
    "wino_k4s2": (2, 3, 9, 7, 4, (4, 4), 2, 1, 1, 1),
    "wino_k4s2_uncovered": (2, 3, 9, 9, 4, (4, 4), 2, 0, 1, 1),
    "wino_k4s2_pad3_groups": (1, 4, 9, 8, 4, (4, 4), 2, 3, 1, 2),
    "wino_k6s2": (1, 2, 11, 10, 3, (6, 6), 2, 0, 1, 1),
    "wino_k6s3": (2, 3, 12, 12, 4, (6, 6), 3, 1, 1, 1),
    "wino_k4s2_wide": (1, 3, 8, 34, 4, (4, 4), 2, 1, 1, 1),
}
# Each tile on every case; "winograd" takes one of the two by the layer's width
# (test_winograd_takes_the_smaller_tile_on_narrow_layers).
WINOGRADS = ["winograd:4x4", "winograd:2x2"]
WINOGRAD_CASES = [name for name, c in CASES.items()
                  if c[5] == (3, 3) and c[6] in (1, (1, 1)) and c[8] in (1, (1, 1))] + list(WINOGRAD_EXTRA)
ALGORITHMS = ["reference", "direct", "gemm"]
DTYPES = [np.float32, np.float64]


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def explicit_padding(h, w, k, stride, padding, dilation):
    if padding == "same":
        return (ref.same_padding(h, k[0], stride[0], dilation[0]), ref.same_padding(w, k[1], stride[1], dilation[1]))
    if padding == "valid":
        return ((0, 0), (0, 0))
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        return padding
    p = pair(padding)
    return ((p[0], p[0]), (p[1], p[1]))


def make(case, dtype, seed=0):
    n, c, h, w, co, k, stride, padding, dilation, groups = {**CASES, **LARGE_CASES, **WINOGRAD_EXTRA}[case]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((co, c // groups) + k).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    ref_kwargs = dict(stride=pair(stride), dilation=pair(dilation), groups=groups,
                      padding=explicit_padding(h, w, k, pair(stride), padding, pair(dilation)))
    return x, wt, b, kwargs, ref_kwargs


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", CASES)
def test_forward_matches_oracle(case, algorithm, dtype, isa):
    x, w, b, kw, rkw = make(case, dtype)
    y = fastconv.conv2d(x, w, b, **kw, algorithm=algorithm)
    assert_close(y, ref.conv2d(x, w, b, **rkw), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", CASES)
def test_fused_relu_matches_oracle(case, algorithm, dtype, isa):
    x, w, b, kw, rkw = make(case, dtype)
    y = fastconv.conv2d(x, w, b, **kw, algorithm=algorithm, activation="relu")
    assert_close(y, np.maximum(ref.conv2d(x, w, b, **rkw), 0), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", CASES)
def test_gradients_match_oracle(case, algorithm, dtype, isa):
    x, w, b, kw, rkw = make(case, dtype)
    gy = np.random.default_rng(1).standard_normal(ref.conv2d(x, w, b, **rkw).shape).astype(dtype)
    gx, gw, gb = fastconv.conv2d_backward(gy, x, w, **kw, algorithm=algorithm)
    assert_close(gx, ref.conv2d_grad_input(gy, x.shape, w, **rkw), dtype)
    assert_close(gw, ref.conv2d_grad_weight(gy, x, w.shape, **rkw), dtype)
    assert_close(gb, gy.astype(np.float64).sum(axis=(0, 2, 3)), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", LARGE_CASES)
def test_large_gradients_match_oracle(case, dtype, isa):
    x, w, b, kw, rkw = make(case, dtype)
    gy = np.random.default_rng(1).standard_normal(ref.conv2d(x, w, b, **rkw).shape).astype(dtype)
    gx, gw, _ = fastconv.conv2d_backward(gy, x, w, **kw, needs=("input", "weight"), algorithm="gemm")
    assert_close(gx, ref.conv2d_grad_input(gy, x.shape, w, **rkw), dtype)
    assert_close(gw, ref.conv2d_grad_weight(gy, x, w.shape, **rkw), dtype)


# Every GEMM path by name, on every case, whatever the rules would pick.
PATHS = [("forward", "gemm:packed"), ("forward", "gemm:indirect"), ("input", "gemm:phases"),
         ("input", "gemm:col2im"), ("weight", "gemm:dots"), ("weight", "gemm:slots"), ("weight", "gemm:taps")]


def phases_fit(k, stride, pad, dil):
    """Whether grad-input can run as one stride-1 conv per stride phase of
    an axis: gx row q*stride + r takes gy row q + (r + pad - i*dil) / stride
    through each tap i with r + pad - i*dil a multiple of stride, so every
    phase r needs such a tap, and its last (smallest) gy offset at most 0
    (the phase's conv pads gy; it cannot crop it)."""
    for r in range(stride):
        taps = [i for i in range(k) if (r + pad - i * dil) % stride == 0]
        if not taps or r + pad - taps[-1] * dil >= stride:
            return False
    return True


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("pass_, path", PATHS, ids=[p for _, p in PATHS])
@pytest.mark.parametrize("case", CASES)
def test_every_gemm_path_matches_oracle(case, pass_, path, dtype, isa):
    x, w, b, kw, rkw = make(case, dtype)
    if pass_ == "forward":
        assert_close(fastconv.conv2d(x, w, b, **kw, algorithm=path), ref.conv2d(x, w, b, **rkw), dtype)
        return
    gy = np.random.default_rng(1).standard_normal(ref.conv2d(x, w, b, **rkw).shape).astype(dtype)
    if pass_ == "weight":
        _, gw, _ = fastconv.conv2d_backward(gy, x, w, **kw, needs=("weight",), algorithm=path)
        assert_close(gw, ref.conv2d_grad_weight(gy, x, w.shape, **rkw), dtype)
        return
    (top, _), (left, _) = rkw["padding"]
    fits = all(phases_fit(k, st, p, d) for k, st, p, d in zip(w.shape[2:], rkw["stride"], (top, left), rkw["dilation"]))
    if path == "gemm:phases" and not fits:
        with pytest.raises(ValueError, match="cannot take this shape"):
            fastconv.conv2d_backward(gy, x, w, **kw, needs=("input",), algorithm=path)
        return
    gx, _, _ = fastconv.conv2d_backward(gy, x, w, **kw, needs=("input",), algorithm=path)
    assert_close(gx, ref.conv2d_grad_input(gy, x.shape, w, **rkw), dtype)


def test_a_gemm_path_of_another_pass_is_refused_by_name():
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    with pytest.raises(ValueError, match=r"_C.conv2d_forward: algorithm must be one of .*'gemm:packed'.*got 'gemm:taps'"):
        fastconv.conv2d(x, w, algorithm="gemm:taps")
    with pytest.raises(ValueError, match=r"_C.conv2d_grad_input: algorithm .*got 'gemm:packed'"):
        fastconv.conv2d_backward(np.ones((1, 3, 3, 3)), x, w, needs=("input",), algorithm="gemm:packed")


# Winograd F(4x4, 3x3)'s float32 error is about 1.5e-6 of the largest
# output (measured: 1.1e-6 to 3.4e-6 for 16 to 512 channels, 1.3-6.4x the
# GEMM's), F(2x2, 3x3)'s 0.4-2.7x the GEMM's, both well inside
# assert_close's 1e-4; float64's about 3e-15. Their bound against the
# GEMM's is tested below.
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
@pytest.mark.parametrize("algorithm", WINOGRADS)
def test_winograd_matches_oracle(algorithm, case, dtype, isa):
    x, w, b, kw, rkw = make(case, dtype)
    expected = ref.conv2d(x, w, b, **rkw)
    assert_close(fastconv.conv2d(x, w, b, **kw, algorithm=algorithm), expected, dtype)
    assert_close(fastconv.conv2d(x, w, b, **kw, algorithm=algorithm, activation="relu"), np.maximum(expected, 0),
                 dtype)
    gy = np.random.default_rng(1).standard_normal(expected.shape).astype(dtype)
    gx, gw, gb = fastconv.conv2d_backward(gy, x, w, **kw, algorithm=algorithm)
    assert_close(gx, ref.conv2d_grad_input(gy, x.shape, w, **rkw), dtype)
    assert_close(gw, ref.conv2d_grad_weight(gy, x, w.shape, **rkw), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
@pytest.mark.parametrize("algorithm", WINOGRADS + ["auto", "gemm"])
def test_forward_and_grad_weight_in_one_pass(algorithm, case, dtype):
    """A transposed conv's backward is conv2d's forward and grad-weight of
    one input, which _C.conv2d_forward_grad_weight runs in one pass over
    its transformed tiles: it gives the bits of the two passes run apart
    (which the oracle checks above), and the oracle's values."""
    x, w, _, kw, rkw = make(case, dtype)
    gy = np.random.default_rng(1).standard_normal(ref.conv2d(x, w, None, **rkw).shape).astype(dtype)
    g = conv_geometry("test", x.shape, w.shape, kw["stride"], kw["padding"], kw["dilation"], kw["groups"])
    y, gw = np.full(gy.shape, np.nan, dtype), np.full(w.shape, np.nan, dtype)
    _C.conv2d_forward_grad_weight(g.c_shape(), algorithm, x.reshape(-1), w.reshape(-1), gy.reshape(-1),
                                  y.reshape(-1), gw.reshape(-1))
    np.testing.assert_array_equal(y, fastconv.conv2d(x, w, **kw, algorithm=algorithm))
    np.testing.assert_array_equal(gw, fastconv.conv2d_backward(gy, x, w, **kw, needs=("weight",),
                                                               algorithm=algorithm)[1])
    assert_close(y, ref.conv2d(x, w, None, **rkw), dtype)
    assert_close(gw, ref.conv2d_grad_weight(gy, x, w.shape, **rkw), dtype)


@pytest.mark.parametrize("case", ["wino_asym_pad", "wino_k2_pad_groups", "wino_k4s2"])
@pytest.mark.parametrize("algorithm", WINOGRADS)
def test_winograd_gradients_by_central_differences(algorithm, case):
    x, w, b, kw, _ = make(case, np.float64)
    gy = np.random.default_rng(2).standard_normal(fastconv.conv2d(x, w, b, **kw).shape)
    gx, gw, _ = fastconv.conv2d_backward(gy, x, w, **kw, needs=("input", "weight"), algorithm=algorithm)
    assert_vjp(lambda v: fastconv.conv2d(v, w, b, **kw, algorithm=algorithm), x, gy, gx)
    assert_vjp(lambda v: fastconv.conv2d(x, v, b, **kw, algorithm=algorithm), w, gy, gw)


@pytest.mark.parametrize("kernel, stride", [(3, 1), (4, 2)])
@pytest.mark.parametrize("channels, size", [((16, 16), 20), ((64, 64), 14), ((256, 256), 10), ((1, 64), 28),
                                            ((8, 8), 28)])
def test_winograd_float32_error_within_10x_the_gemms(channels, size, kernel, stride):
    """The bound "auto" relies on (docs/API.md): "winograd" and the
    smaller tile keep the float32 forward and grad-input within 10x the
    GEMM path's largest error against float64, relative to the largest
    value (measured: F(4x4, 3x3) 3.6-7x, F(2x2, 3x3) 0.7-2.6x, for 16 to
    512 channels; k4 s2 layers' phases by F(3x3, 2x2) 1.3-3.1x, F(2x2, 2x2)
    1.5-3.7x). On narrower layers F(4x4, 3x3) ran up to 16x, so "winograd"
    takes F(2x2, 3x3) there."""
    rng = np.random.default_rng(5)
    c_in, c_out = channels
    x = rng.standard_normal((2, c_in, size, size)).astype(np.float32)
    w = (rng.standard_normal((c_out, c_in, kernel, kernel)) / np.sqrt(kernel**2 * c_in)).astype(np.float32)
    kw = dict(padding=1, stride=stride)
    gy = rng.standard_normal(fastconv.conv2d(x, w, **kw).shape).astype(np.float32)

    def passes(algorithm, *arrays):
        xa, wa, ga = arrays
        return (fastconv.conv2d(xa, wa, **kw, algorithm=algorithm),
                fastconv.conv2d_backward(ga, xa, wa, **kw, needs=("input",), algorithm=algorithm)[0])

    exact = passes("gemm", x.astype(np.float64), w.astype(np.float64), gy.astype(np.float64))

    def error(algorithm):
        return max(np.abs(y - e).max() / np.abs(e).max() for y, e in zip(passes(algorithm, x, w, gy), exact))

    for algorithm in ("winograd", "winograd:2x2"):
        assert error(algorithm) <= 10 * error("gemm"), algorithm


@pytest.mark.parametrize("shape, kernel, stride, tile", [
    ((1, 64), 3, 1, "2x2"), ((64, 1), 3, 1, "2x2"), ((8, 8), 3, 1, "2x2"), ((16, 15), 3, 1, "2x2"),
    ((16, 16), 3, 1, "4x4"), ((1, 64), 2, 1, "4x4"),  # 2x2 kernels: F(3x3, 2x2) on any width
    ((3, 16), 6, 2, "2x2"), ((4, 16), 6, 2, "4x4"),  # k6 s2: the phases' conv has 4x the input channels
    ((2, 32), 4, 2, "4x4")])
def test_winograd_takes_the_smaller_tile_on_narrow_layers(shape, kernel, stride, tile):
    """"winograd" is F(4x4, 3x3) where a group has 16 channels or more on
    each side, F(2x2, 3x3) on narrower 3x3 layers (of a strided layer: of
    its phases' conv), in every pass: the bits of the tile it names."""
    c_in, c_out = shape
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, c_in, 13, 12)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in, kernel, kernel)).astype(np.float32)
    kw = dict(padding=1, stride=stride)
    gy = rng.standard_normal(fastconv.conv2d(x, w, **kw).shape).astype(np.float32)

    def passes(algorithm):
        return (fastconv.conv2d(x, w, **kw, algorithm=algorithm),) + fastconv.conv2d_backward(
            gy, x, w, **kw, needs=("input", "weight"), algorithm=algorithm)[:2]

    other = "4x4" if tile == "2x2" else "2x2"
    for got, same, differs in zip(passes("winograd"), passes(f"winograd:{tile}"), passes(f"winograd:{other}")):
        np.testing.assert_array_equal(got, same)
        assert not np.array_equal(got, differs)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape, paths", [
    # 64 channels each side and 96 F(4x4) tiles or more: F(4x4) on a 12x12
    # map, F(2x2) on 10x10 (where F(4x4)'s tiles overhang); grad-weight by
    # the same tile while its copies of dU stay within 32 MiB
    ((12, 64, 12, 12, 64), {"forward": "winograd", "input": "winograd", "weight": "winograd"}),
    ((12, 64, 10, 10, 64), {"forward": "winograd:2x2", "input": "winograd:2x2", "weight": "winograd:2x2"}),
    ((4, 64, 14, 14, 64), {}),     # 64 tiles: too little work for the transforms
    ((12, 64, 12, 12, 32), {}),    # 32 output channels
    ((12, 32, 12, 12, 64), {}),    # 32 input channels
    ((8, 256, 7, 7, 256), {"forward": "winograd", "input": "winograd", "weight": "winograd"}),  # 32 tiles, but 256 x 256 kernels
    ((1, 64, 28, 28, 64), {"forward": "winograd", "input": "winograd", "weight": "winograd"}),  # 49 tiles in rows of 7
    # F(4x4)'s copies of dU for 512 x 512 kernels outgrow 32 MiB: grad-weight falls back to F(2x2)
    ((8, 512, 7, 7, 512), {"forward": "winograd", "input": "winograd", "weight": "winograd:2x2"}),
])
def test_auto_runs_winograd_on_wide_3x3_layers(shape, paths, dtype):
    """conv2d.c's winograd_pays: "auto" gives the bits of the Winograd tile
    the rule takes, the GEMM's elsewhere, and "gemm" always the GEMM's (the
    three differ in the last bits, so equality tells them apart)."""
    n, c, h, w, co = shape
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((co, c, 3, 3)).astype(dtype)
    gy = rng.standard_normal((n, co, h, w)).astype(dtype)
    out = {}
    for a in ("auto", "gemm", "winograd", "winograd:2x2"):
        gx, gw, _ = fastconv.conv2d_backward(gy, x, wt, padding=1, needs=("input", "weight"), algorithm=a)
        out[a] = {"forward": fastconv.conv2d(x, wt, padding=1, algorithm=a), "input": gx, "weight": gw}
    for pass_ in ("forward", "input", "weight"):
        for one, other in (("gemm", "winograd"), ("gemm", "winograd:2x2"), ("winograd", "winograd:2x2")):
            assert not np.array_equal(out[one][pass_], out[other][pass_])
        np.testing.assert_array_equal(out["auto"][pass_], out[paths.get(pass_, "gemm")][pass_], err_msg=pass_)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape, paths", [
    # a k4 s2 transposed conv (the forward is conv2d's grad-input) on its
    # stride phases, from 64 channels each side and 96 F(4x4) tiles: the
    # forward's 15x15 map of phases by F(3x3, 2x2), the backward's 14x14
    # by F(2x2, 2x2), where its GEMMs do over 4/5 of F(2x2)'s
    ((8, 128, 14, 14, 64), {"forward": "winograd", "input": "winograd:2x2", "weight": "winograd:2x2"}),
    ((8, 256, 8, 8, 128), {}),   # 32 tiles: too little work for 2x2 kernels' transforms
    # 7x7: the backward's phases fill F(2x2)'s tiles too poorly, the forward's 8x8 fit
    ((32, 256, 7, 7, 128), {"forward": "winograd:2x2"}),
])
def test_auto_runs_winograd_on_k4s2_layers(shape, paths, dtype):
    """winograd_pays on a strided layer's phases: "auto" gives the bits of
    the tile the rule takes, the GEMM's elsewhere and in float64."""
    n, c, h, w, co = shape
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((c, co, 4, 4)).astype(dtype)
    gy = rng.standard_normal((n, co, 2 * h, 2 * w)).astype(dtype)
    kw = dict(stride=2, padding=1)
    out = {}
    for a in ("auto", "gemm", "winograd", "winograd:2x2"):
        gx, gw, _ = fastconv.conv_transpose2d_backward(gy, x, wt, **kw, needs=("input", "weight"), algorithm=a)
        out[a] = {"forward": fastconv.conv_transpose2d(x, wt, **kw, algorithm=a), "input": gx, "weight": gw}
    for pass_ in ("forward", "input", "weight"):
        for one, other in (("gemm", "winograd"), ("gemm", "winograd:2x2"), ("winograd", "winograd:2x2")):
            assert not np.array_equal(out[one][pass_], out[other][pass_])
        expected = paths.get(pass_, "gemm") if dtype == np.float32 else "gemm"
        np.testing.assert_array_equal(out["auto"][pass_], out[expected][pass_], err_msg=pass_)


@pytest.mark.parametrize("kernel, kw, words", [
    ((5, 5), {}, ["kernel (5, 5)"]), ((3, 3), dict(stride=2), ["stride (2, 2)"]),
    ((4, 4), dict(stride=2, dilation=2), ["dilation (2, 2)"]), ((3, 1), {}, ["kernel (3, 1)"]),
    ((4, 4), dict(stride=(2, 1)), ["stride (2, 1)"])])
@pytest.mark.parametrize("algorithm", ["winograd"] + WINOGRADS)
def test_winograd_names_what_it_cannot_take(algorithm, kernel, kw, words):
    x, w = np.ones((1, 2, 9, 9)), np.ones((3, 2) + kernel)
    for call in (lambda: fastconv.conv2d(x, w, **kw, algorithm=algorithm),
                 lambda: fastconv.conv2d_backward(np.ones_like(fastconv.conv2d(x, w, **kw)), x, w, **kw,
                                                  algorithm=algorithm)):
        with pytest.raises(ValueError, match=f"{algorithm}' needs a 3x3 or 2x2 kernel with stride 1") as info:
            call()
        for word in words:
            assert word in str(info.value)


GRAD_CASES = ["basic_3x3", "stride2", "dilation3_stride2", "asym_pad_stride2", "same_s2", "groups2",
              "depthwise_mult2", "pointwise_1x1_stride2", "tile_m7_n17"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", GRAD_CASES)
def test_gradients_by_central_differences(case, algorithm):
    x, w, b, kw, _ = make(case, np.float64)
    x, w = x[:1, :, :7, :7], w  # small enough for one difference per element
    y = fastconv.conv2d(x, w, b, **kw)
    gy = np.random.default_rng(2).standard_normal(y.shape)
    gx, gw, gb = fastconv.conv2d_backward(gy, x, w, **kw, algorithm=algorithm)
    assert_vjp(lambda v: fastconv.conv2d(v, w, b, **kw), x, gy, gx)
    assert_vjp(lambda v: fastconv.conv2d(x, v, b, **kw), w, gy, gw)
    assert_vjp(lambda v: fastconv.conv2d(x, w, v, **kw), b, gy, gb)


def test_gradient_checker_catches_a_wrong_gradient():
    x, w, b, kw, _ = make("basic_3x3", np.float64)
    gy = np.ones(fastconv.conv2d(x, w, b, **kw).shape)
    gx, _, _ = fastconv.conv2d_backward(gy, x, w, **kw)
    wrong = gx.copy()
    wrong[0, 0, 0, 0] += 1e-3
    with pytest.raises(AssertionError):
        assert_vjp(lambda v: fastconv.conv2d(v, w, b, **kw), x, gy, wrong)
    assert np.abs(numerical_vjp(lambda v: fastconv.conv2d(v, w, b, **kw), x, gy) - gx).max() < 1e-6


@pytest.mark.parametrize("case", ["stride2", "dilation3_stride2", "groups3_stride2", "asym_pad"])
def test_adjoint_identity(case):
    """<conv2d(x, w), y> == <x, grad_input(y)>: the forward and its input gradient are adjoint."""
    x, w, _, kw, _ = make(case, np.float64)
    y = np.random.default_rng(3).standard_normal(fastconv.conv2d(x, w, **kw).shape)
    gx, _, _ = fastconv.conv2d_backward(y, x, w, **kw, needs=("input",))
    assert np.isclose(np.vdot(fastconv.conv2d(x, w, **kw), y), np.vdot(x, gx), rtol=1e-12)


def test_needs_skips_unrequested_gradients():
    x, w, _, kw, _ = make("basic_3x3", np.float64)
    gy = np.ones(fastconv.conv2d(x, w, **kw).shape)
    gx, gw, gb = fastconv.conv2d_backward(gy, x, w, **kw, needs=("weight",))
    assert gx is None and gb is None and gw.shape == w.shape


def test_im2col_is_an_alias_of_gemm():
    """The GEMM family's old name still works and runs the same code, bit for bit."""
    x, w, b, kw, _ = make("stride2", np.float32)
    assert np.array_equal(fastconv.conv2d(x, w, b, **kw, algorithm="im2col"),
                          fastconv.conv2d(x, w, b, **kw, algorithm="gemm"))
    gy = np.ones(fastconv.conv2d(x, w, **kw).shape, np.float32)
    for old, new in zip(fastconv.conv2d_backward(gy, x, w, **kw, algorithm="im2col"),
                        fastconv.conv2d_backward(gy, x, w, **kw, algorithm="gemm")):
        assert np.array_equal(old, new)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_empty_batch(algorithm):
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    y = fastconv.conv2d(x, w, padding=1, algorithm=algorithm)
    assert y.shape == (0, 4, 8, 8) and y.dtype == np.float32
    gx, gw, gb = fastconv.conv2d_backward(y, x, w, padding=1, algorithm=algorithm)
    assert gx.shape == x.shape and not gw.any() and not gb.any()


def test_layouts_fortran_sliced_bigendian():
    x, w, b, kw, rkw = make("stride2", np.float64)
    expected = ref.conv2d(x, w, b, **rkw)
    assert_close(fastconv.conv2d(np.asfortranarray(x), np.asfortranarray(w), b, **kw), expected, np.float64)
    wide = np.zeros(x.shape[:3] + (2 * x.shape[3],))
    wide[..., ::2] = x
    assert_close(fastconv.conv2d(wide[..., ::2], w, b, **kw), expected, np.float64)
    assert_close(fastconv.conv2d(x.astype(">f8"), w.astype(">f8"), b, **kw), expected, np.float64)
    x_copy = x.copy()
    fastconv.conv2d(x, w, b, **kw)
    assert np.array_equal(x, x_copy), "the input was modified"



def test_read_only_inputs():
    """np.broadcast_to views, np.load(mmap_mode="r") and Dask chunks are read-only."""
    x, w, b, kw, rkw = make("stride2", np.float32)
    gy = np.ones(ref.conv2d(x, w, b, **rkw).shape, np.float32)
    for a in (x, w, b, gy):
        a.flags.writeable = False
    assert_close(fastconv.conv2d(x, w, b, **kw), ref.conv2d(x, w, b, **rkw), np.float32)
    gx, gw, gb = fastconv.conv2d_backward(gy, x, w, **kw)
    assert_close(gx, ref.conv2d_grad_input(gy, x.shape, w, **rkw), np.float32)
    y, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    expected_y, expected_idx = ref.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert_close(y, expected_y, np.float32)
    np.testing.assert_array_equal(idx, expected_idx)
    idx.flags.writeable = y.flags.writeable = False
    expected_gx = np.zeros(x.shape).reshape(x.shape[0], x.shape[1], -1)
    for plane in np.ndindex(*x.shape[:2]):
        np.add.at(expected_gx[plane], idx[plane].ravel(), y[plane].ravel())
    assert_close(fastconv.max_pool2d_backward(y, idx, x.shape), expected_gx.reshape(x.shape), np.float32)
    flat = x.reshape(x.shape[0], -1)
    assert_close(fastconv.linear(flat, flat), ref.linear(flat, flat, None), np.float32)


def test_result_dtypes():
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    assert fastconv.conv2d(x, w).dtype == np.float32
    assert fastconv.conv2d(x.astype(np.float16), w.astype(np.float16)).dtype == np.float32
    assert fastconv.conv2d(x.astype(np.int32), w.astype(np.int64)).dtype == np.float64
    assert fastconv.conv2d(x, w.astype(np.float64)).dtype == np.float64
    assert fastconv.conv2d(x.tolist(), w.tolist()).dtype == np.float64
    assert fastconv.conv2d(x.astype(bool), w.astype(bool)).dtype == np.float64


def test_nan_and_inf_propagate():
    x = np.ones((1, 1, 7, 7))
    x[0, 0, 6, 6] = np.nan  # seen by the 3x3 windows at outputs (4, 4) only
    x[0, 0, 0, 0] = np.inf  # seen by output (0, 0) only
    for algorithm in ALGORITHMS:
        y = fastconv.conv2d(x, np.ones((1, 1, 3, 3)), algorithm=algorithm)
        assert np.isnan(y).sum() == 1 and np.isnan(y[0, 0, 4, 4])
        assert np.isinf(y).sum() == 1 and y[0, 0, 0, 0] == np.inf


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS + WINOGRADS)
def test_fused_relu_keeps_nan(algorithm, dtype):
    x = np.ones((1, 2, 8, 20), dtype)  # 20 wide: Winograd stores its rows' tiles four at a time
    x[0, 1, 5, 9] = np.nan  # seen by outputs (4..6, 8..10)
    w = -np.ones((3, 2, 3, 3), dtype)  # every finite output negative, so ReLU makes it 0
    y = fastconv.conv2d(x, w, padding=1, algorithm=algorithm, activation="relu")
    assert np.isnan(y[:, :, 4:7, 8:11]).all()
    assert (y[~np.isnan(y)] == 0).all()  # Winograd's tiles that read the NaN are NaN throughout


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_auto_agrees_with_the_oracle_on_real_shapes(dtype):
    for case in ["mnist_c2", "lenet_c1", "depthwise", "pointwise_1x1"]:
        x, w, b, kw, rkw = make(case, dtype)
        assert_close(fastconv.conv2d(x, w, b, **kw), ref.conv2d(x, w, b, **rkw), dtype)


def test_torch_cross_check():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for case in ["stride2", "dilation2", "groups3_stride2", "same_s1", "depthwise_mult2"]:
        x, w, b, kw, _ = make(case, np.float64)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        out = F.conv2d(tx, tw, tb, **kw)
        gy = np.random.default_rng(4).standard_normal(tuple(out.shape))
        out.backward(torch.tensor(gy))
        np.testing.assert_allclose(fastconv.conv2d(x, w, b, **kw), out.detach().numpy(), rtol=1e-10, atol=1e-10)
        for mine, theirs in zip(fastconv.conv2d_backward(gy, x, w, **kw), (tx, tw, tb)):
            np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-10, atol=1e-10)
