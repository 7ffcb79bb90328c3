/* conv2d's entry points (fastconv.h) and every rule that picks a path:
 * "auto" among Winograd F(4x4, 3x3) and F(2x2, 3x3), the direct loops
 * and the GEMMs, and within the GEMMs, packed or indirect forward, phases
 * or col2im grad-input, dot products or an indirect grad-weight shared by
 * slots or by taps. Each rule is a line or two here; the measurements behind them
 * are in benchmarks/RULES.md. Every path also has a name
 * (FC_ALGO_GEMM_PACKED ... _TAPS, FC_ALGO_WINOGRAD_F2 and _F4), so that a test can
 * run it on any shape it can take.
 * The paths live one family to a file: conv2d_ref.c, conv2d_direct.c,
 * conv2d_forward.c, conv2d_grad_input.c, conv2d_grad_weight.c, and
 * conv2d_winograd.c.
 * Family file: instantiated by f32.c and f64.c (see common.h).
 *
 * Threads own outputs: forward splits y by (image, group, pixel tile),
 * grad-input splits gx by (image, group, channel block), grad-weight
 * splits the batch into a fixed number of slots, each summing its share
 * into its own copy of gw, reduced in slot order. No split depends on the
 * thread count in a way that changes any sum's order: 1 thread and N
 * threads agree bit for bit. */
#include "kernels.h"

/* ------------------------------------------------------------- rules */

/* "auto": the GEMM wins whenever its per-group problem is more than a
 * sliver, so the direct loops take what is thin for it: M*K per group
 * below 64 (depthwise: M*K = 9), and the forward (float32) and
 * grad-weight of layers with at most 6 output channels per group, which
 * would leave most of the GEMM's narrowest panel multiplying zeros
 * (LeNet-5's first layer). */
typedef enum { PASS_FORWARD, PASS_GRAD_INPUT, PASS_GRAD_WEIGHT } conv_pass;

static fc_algorithm FC_FN(direct_or_gemm)(const fc_conv2d_shape *s, conv_pass pass) {
    const int64_t M = GROUP_OUT(s), K = GROUP_IN(s) * s->kh * s->kw;
    const int few_outputs = M <= 6 && (pass == PASS_GRAD_WEIGHT || (pass == PASS_FORWARD && sizeof(FC_T) == 4));
    return M * K < 64 || few_outputs ? FC_ALGO_DIRECT : FC_ALGO_GEMM;
}

/* The forward: indirect from 16 taps per output (K), packed below (its
 * transposed stores cost more than the arithmetic) and for 1x1 convs,
 * which reuse no input across taps. */
#define FC_INDIRECT_MIN_K 16

static fc_algorithm forward_path(const fc_conv2d_shape *s) {
    return GROUP_IN(s) * s->kh * s->kw < FC_INDIRECT_MIN_K || is_pointwise(s) ? FC_ALGO_GEMM_PACKED
                                                                               : FC_ALGO_GEMM_INDIRECT;
}

/* Phases can run a grad-input when every phase has taps and a frame. */
static int phases_apply(const fc_conv2d_shape *s) {
    return phases_fit(s->h, s->kh, s->stride_h, s->pad_top, s->dil_h) &&
           phases_fit(s->w, s->kw, s->stride_w, s->pad_left, s->dil_w);
}

/* Grad-input by phases (else col2im) where they apply and gx's channels
 * per group fill at least 3/4 of the forward kernel's panels (it computes
 * whole panels, col2im's cost follows the channels), and, strided, the
 * average phase does at least 16 MFLOP (each phase is a call of its own). */
static fc_algorithm FC_FN(grad_input_path)(const fc_conv2d_shape *s) {
    const int64_t cin_g = GROUP_IN(s), width = FC_FN(iukernel_width)(FC_FN(kernels)()->igemm, cin_g);
    const int64_t phases = s->stride_h * s->stride_w;
    const double flops = 2.0 * s->n * s->c_out * PIXELS(s) * cin_g * s->kh * s->kw;
    const int by_phases = 4 * cin_g >= 3 * width && (phases == 1 || flops / phases >= 16.0e6) && phases_apply(s);
    return by_phases ? FC_ALGO_GEMM_PHASES : FC_ALGO_GEMM_COL2IM;
}

/* Grad-weight as dot products below 48 taps per output (K) or 8 output
 * channels per group (M): the indirect GEMM transposes gy into panels,
 * which pays only when each gy value meets many taps, and its tile is
 * mostly padding for a handful of channels. Else the indirect GEMM shares
 * its work by taps when twice gy is smaller than the slots' copies of gw
 * (late, wide layers), by slots of images otherwise. */
static fc_algorithm grad_weight_path(const fc_conv2d_shape *s) {
    const int64_t M = GROUP_OUT(s), K = GROUP_IN(s) * s->kh * s->kw;
    const int64_t slots = FC_MIN((int64_t)SLOTS, s->n), size = s->c_out * K;
    if (K < 48 || M < 8) return FC_ALGO_GEMM_DOTS;
    return 2 * s->n * s->c_out * PIXELS(s) < slots * size ? FC_ALGO_GEMM_TAPS : FC_ALGO_GEMM_SLOTS;
}

/* A Winograd tile's GEMM multiplications for a batch and one channel
 * pair: (m+r-1)^2 per tile, counting each map's overhang past its tiles and
 * the GEMM's panels of nr tiles (a 7x7 map at batch 1 has 4 tiles of
 * F(4x4), which a panel of 32 computes 8 times over). */
static int64_t winograd_mults(int m, const fc_conv2d_shape *s, int64_t nr) {
    const int64_t tiles = s->n * ((s->out_h + m - 1) / m) * ((s->out_w + m - 1) / m);
    return (m + s->kh - 1) * (m + s->kh - 1) * ((tiles + nr - 1) / nr * nr);
}

/* Grad-weight's copies of dU for a tile, one per run of blocks of tile
 * rows (conv2d_winograd.c), in bytes of elements of `elem`. */
static double winograd_gw_bytes(int m, const fc_conv2d_shape *s, size_t elem) {
    const int64_t rows = winograd_gw_rows(m, s), tile_rows = s->n * ((s->out_h + m - 1) / m);
    const int64_t runs = winograd_gw_runs((tile_rows + rows - 1) / rows);
    return (double)runs * s->groups * (m + s->kh - 1) * (m + s->kh - 1) * GROUP_OUT(s) * GROUP_IN(s) * elem;
}

/* "auto"'s Winograd tile for a stride-1 layer: 2, 4 for the larger (3x3
 * for 2x2 kernels), 0 for none. A 3x3 or 2x2
 * layer runs by Winograd where a group has at least 64 channels on each side,
 * there is enough work to pay for transforming the kernels (96 tiles of
 * F(4x4), 48 on maps 28 pixels or more across, whose long tile rows
 * transform faster, or, for 3x3 kernels, 2^21 of them times the channel
 * pairs: a 64-channel 14x14 layer at batch 4 ran 1.2x slower than the
 * GEMM, and a k4 s2 layer's 2x2 phases from 512 channels on 4x4 maps at
 * batch 8 1.3-1.8x), and the tile's GEMMs do at most 0.6 of the direct
 * convolution's multiplications (3x3: F(2x2)'s, maps from about 7 pixels
 * on). The larger tile where its GEMMs do at most 3/4 of F(2x2)'s for
 * 3x3 kernels (F(4x4): maps from about 12 pixels on, and 7x7 at batch 8),
 * 4/5 for 2x2 (F(3x3): maps of 3k pixels, a k4 s2 layer's transpose
 * from 14x14 and 16x16 maps); 2x2 in float32 only (in float64, whose
 * copies and transforms move twice the bytes, a k4 s2 transpose's forward
 * ran 1.05x and its grad-input 1.15x the GEMM's time). All keep the
 * float32 error within 10x the GEMM's (F(2x2, 3x3) about 2x, F(4x4, 3x3)
 * 4-7x: docs/API.md).
 * Grad-weight by a tile also needs its copies of dU within 32 MiB, else
 * it tries F(2x2), then the GEMM: above glibc's mmap threshold they were
 * faulted in afresh on every call, and F(4x4)'s on 512 x 512 kernels ran
 * 1.3x slower than the GEMM (benchmarks/RULES.md). */
static int winograd_pays(const fc_conv2d_shape *layer, conv_pass pass, int64_t nr, size_t elem) {
    fc_conv2d_shape grid = *layer; /* the map the pass's tiles cover: grad-input's is the layer's input */
    if (pass == PASS_GRAD_INPUT) grid.out_h = layer->h, grid.out_w = layer->w;
    const fc_conv2d_shape *s = &grid;
    const int64_t tiles = s->n * ((s->out_h + 3) / 4) * ((s->out_w + 3) / 4);
    const int enough = tiles >= 96 || (tiles >= 48 && s->out_w >= 28) ||
                       (s->kh == 3 && GROUP_IN(s) * GROUP_OUT(s) * tiles >= ((int64_t)1 << 21));
    if (!winograd_applies(s) || GROUP_IN(s) < 64 || GROUP_OUT(s) < 64 || !enough) return 0;
    if (s->kh == 2 && elem != sizeof(float)) return 0;
    const int big = s->kh == 3 ? 4 : 3, num = s->kh == 3 ? 4 : 5, den = s->kh == 3 ? 3 : 4;
    const int first = num * winograd_mults(big, s, nr) <= den * winograd_mults(2, s, nr) ? big : 2;
    if (10 * winograd_mults(s->kh == 3 ? 2 : first, s, nr) > 6 * s->kh * s->kw * s->n * PIXELS(s)) return 0;
    const double most = 32.0 * 1024 * 1024;
    if (pass != PASS_GRAD_WEIGHT || winograd_gw_bytes(first, s, elem) <= most) return first == 2 ? 2 : 4;
    return winograd_gw_bytes(2, s, elem) <= most ? 2 : 0;
}

/* The stride-1 conv Winograd runs for a layer: its own, or its stride
 * phases' (conv2d_polyphase.c). */
static fc_conv2d_shape winograd_grid(const fc_conv2d_shape *layer) {
    return polyphase_applies(layer) ? polyphase_shape(layer) : *layer;
}

/* Whether a path is one of Winograd's. */
static int is_winograd(fc_algorithm path) {
    return path == FC_ALGO_WINOGRAD || path == FC_ALGO_WINOGRAD_F2 || path == FC_ALGO_WINOGRAD_F4;
}

/* A Winograd path's tile for a layer: 2, or 4 for the larger (3x3 for 2x2
 * kernels: wino_variant). "winograd" runs 3x3 kernels (a strided layer's:
 * of its phases' conv) by F(2x2, 3x3) where a group has fewer than 16
 * channels on a side: there F(4x4, 3x3)'s float32 error ran up to 17x
 * the GEMM's (1 input channel on 28x28 maps, 8 channels a side), past
 * the 10x of docs/API.md; from 16 channels on, 4-10x. F(3x3, 2x2)'s
 * stays within 5x on any width. */
#define WINOGRAD_F4_CHANNELS 16
static int winograd_tile(fc_algorithm path, const fc_conv2d_shape *layer) {
    if (path != FC_ALGO_WINOGRAD) return path == FC_ALGO_WINOGRAD_F2 ? 2 : 4;
    const fc_conv2d_shape t = winograd_grid(layer);
    const int narrow = GROUP_IN(&t) < WINOGRAD_F4_CHANNELS || GROUP_OUT(&t) < WINOGRAD_F4_CHANNELS;
    return t.kh == 3 && narrow ? 2 : 4;
}

/* The path a call runs: "auto" by winograd_pays (for a strided layer, on
 * its phases' conv), then direct_or_gemm; "gemm" by the pass's rule; a
 * named path or plain loops as given. */
static fc_algorithm FC_FN(choose)(const fc_conv2d_shape *s, fc_algorithm algo, conv_pass pass) {
    if (algo == FC_ALGO_AUTO) {
        const fc_conv2d_shape t = winograd_grid(s);
        const int tile = winograd_pays(&t, pass, FC_FN(gemm_nr)(), sizeof(FC_T));
        if (tile) return tile == 2 ? FC_ALGO_WINOGRAD_F2 : FC_ALGO_WINOGRAD;
        algo = FC_FN(direct_or_gemm)(s, pass);
    }
    if (algo != FC_ALGO_GEMM) return algo;
    if (pass == PASS_FORWARD) return forward_path(s);
    return pass == PASS_GRAD_INPUT ? FC_FN(grad_input_path)(s) : grad_weight_path(s);
}

static int FC_FN(forward_on_path)(fc_algorithm path, const fc_conv2d_shape *s, const FC_T *x, const FC_T *w,
                                  const FC_T *b, unsigned flags, FC_T *y) {
    if (path == FC_ALGO_GEMM_PACKED) return FC_FN(fc_conv2d_forward_packed)(s, x, w, b, flags, y);
    return FC_FN(fc_conv2d_forward_indirect)(s, x, w, b, flags, y, (fc_out_view){PIXELS(s), s->out_w, 1});
}

/* The GEMM forward by its rule; grad-input's phases run on it. */
static int FC_FN(fc_conv2d_forward_gemm)(const fc_conv2d_shape *s, const FC_T *x, const FC_T *w, const FC_T *b,
                                         unsigned flags, FC_T *y) {
    return FC_FN(forward_on_path)(forward_path(s), s, x, w, b, flags, y);
}

/* ----------------------------------------------------- entry points */

/* The GEMMs apply the activation in their epilogue; the plain loops in a
 * pass of their own. */
int FC_FN(fc_conv2d_forward)(const fc_conv2d_shape *s, fc_algorithm algo, const FC_T *x,
                             const FC_T *w, const FC_T *b, fc_activation act, FC_T *y) {
    FC_CALL_SCOPE;
    const fc_algorithm path = FC_FN(choose)(s, algo, PASS_FORWARD);
    int status = FC_OK;
    switch (path) {
    case FC_ALGO_REF: FC_FN(fc_conv2d_forward_ref)(s, x, w, b, y); break;
    case FC_ALGO_DIRECT: status = FC_FN(fc_conv2d_forward_direct)(s, x, w, b, y); break;
    case FC_ALGO_GEMM_PACKED:
    case FC_ALGO_GEMM_INDIRECT:
        return FC_FN(forward_on_path)(path, s, x, w, b, act == FC_ACT_RELU ? FC_GEMM_RELU : 0, y);
    case FC_ALGO_WINOGRAD:
    case FC_ALGO_WINOGRAD_F2:
    case FC_ALGO_WINOGRAD_F4: {
        const unsigned flags = act == FC_ACT_RELU ? FC_GEMM_RELU : 0;
        const int tile = winograd_tile(path, s);
        if (winograd_applies(s)) return FC_FN(winograd_forward)(tile, s, x, w, wino_dense(s), b, flags, y);
        return polyphase_applies(s) ? FC_FN(polyphase_forward)(tile, s, x, w, b, flags, y) : FC_ERR_PATH;
    }
    default: return FC_ERR_PATH;
    }
    if (status == FC_OK && act == FC_ACT_RELU) FC_FN(fc_relu)(s->n * s->c_out * PIXELS(s), y, y);
    return status;
}

int FC_FN(fc_conv2d_grad_input)(const fc_conv2d_shape *s, fc_algorithm algo, const FC_T *gy,
                                const FC_T *w, FC_T *gx) {
    FC_CALL_SCOPE;
    const fc_algorithm path = FC_FN(choose)(s, algo, PASS_GRAD_INPUT);
    switch (path) {
    case FC_ALGO_REF: FC_FN(fc_conv2d_grad_input_ref)(s, gy, w, gx); return FC_OK;
    case FC_ALGO_DIRECT: return FC_FN(fc_conv2d_grad_input_direct)(s, gy, w, gx);
    case FC_ALGO_GEMM_PHASES: return phases_apply(s) ? FC_FN(fc_conv2d_grad_input_phases)(s, gy, w, gx) : FC_ERR_PATH;
    case FC_ALGO_GEMM_COL2IM: return FC_FN(fc_conv2d_grad_input_col2im)(s, gy, w, gx);
    case FC_ALGO_WINOGRAD:
    case FC_ALGO_WINOGRAD_F2:
    case FC_ALGO_WINOGRAD_F4: {
        const int tile = winograd_tile(path, s);
        if (winograd_applies(s)) return FC_FN(winograd_grad_input)(tile, s, gy, w, wino_dense(s), gx);
        return polyphase_applies(s) ? FC_FN(polyphase_grad_input)(tile, s, gy, w, gx) : FC_ERR_PATH;
    }
    default: return FC_ERR_PATH;
    }
}

int FC_FN(fc_conv2d_grad_weight)(const fc_conv2d_shape *s, fc_algorithm algo, const FC_T *gy,
                                 const FC_T *x, FC_T *gw) {
    FC_CALL_SCOPE;
    const fc_algorithm path = FC_FN(choose)(s, algo, PASS_GRAD_WEIGHT);
    switch (path) {
    case FC_ALGO_REF: FC_FN(fc_conv2d_grad_weight_ref)(s, gy, x, gw); return FC_OK;
    case FC_ALGO_DIRECT: return FC_FN(fc_conv2d_grad_weight_direct)(s, gy, x, gw);
    case FC_ALGO_GEMM_DOTS: return FC_FN(fc_conv2d_grad_weight_dots)(s, gy, x, gw);
    case FC_ALGO_GEMM_SLOTS: return FC_FN(fc_conv2d_grad_weight_indirect)(s, gy, x, 0, gw);
    case FC_ALGO_GEMM_TAPS: return FC_FN(fc_conv2d_grad_weight_indirect)(s, gy, x, 1, gw);
    case FC_ALGO_WINOGRAD:
    case FC_ALGO_WINOGRAD_F2:
    case FC_ALGO_WINOGRAD_F4: {
        const int tile = winograd_tile(path, s);
        if (winograd_applies(s)) return FC_FN(winograd_grad_weight)(tile, s, gy, x, wino_dense(s), gw);
        return polyphase_applies(s) ? FC_FN(polyphase_grad_weight)(tile, s, gy, x, gw) : FC_ERR_PATH;
    }
    default: return FC_ERR_PATH;
    }
}

/* The forward and the weight gradient of the same input: by Winograd in
 * one pass over its transformed tiles where both passes take the same
 * tile, else the two passes one after the other. */
int FC_FN(fc_conv2d_forward_grad_weight)(const fc_conv2d_shape *s, fc_algorithm algo, const FC_T *x, const FC_T *w,
                                         const FC_T *gy, FC_T *y, FC_T *gw) {
    FC_CALL_SCOPE;
    const fc_algorithm path = FC_FN(choose)(s, algo, PASS_FORWARD);
    if (is_winograd(path) && path == FC_FN(choose)(s, algo, PASS_GRAD_WEIGHT)) {
        const int tile = winograd_tile(path, s);
        if (winograd_applies(s)) return FC_FN(winograd_forward_grad_weight)(tile, s, x, w, gy, wino_dense(s), y, gw);
        if (polyphase_applies(s)) return FC_FN(polyphase_forward_grad_weight)(tile, s, x, w, gy, y, gw);
    }
    const int status = FC_FN(fc_conv2d_forward)(s, algo, x, w, NULL, FC_ACT_NONE, y);
    return status == FC_OK ? FC_FN(fc_conv2d_grad_weight)(s, algo, gy, x, gw) : status;
}

/* The sum of a plane in double, in 16 lanes added in a fixed order: one
 * running sum waits out the adder's latency on every element (a 64-channel
 * 28x28 layer's bias gradient took longer than its weight gradient). */
#define PLANE_LANES 16
FC_VECTOR_LOOP(plane_sum, (const FC_T *p, int64_t n, double *total), (p, n, total)) {
    double lane[PLANE_LANES] = {0}, sum = 0;
    int64_t q = 0;
    for (; q + PLANE_LANES <= n; q += PLANE_LANES)
        for (int l = 0; l < PLANE_LANES; l++) lane[l] += p[q + l];
    for (int l = 0; l < PLANE_LANES; l++) sum += lane[l];
    for (; q < n; q++) sum += p[q];
    *total = sum;
}
#undef PLANE_LANES

int FC_FN(fc_conv2d_grad_bias)(const fc_conv2d_shape *s, const FC_T *gy, FC_T *gb) {
    FC_CALL_SCOPE;
    const int64_t P = PIXELS(s);
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    /* memory-bound: an element read costs about what 8 flops of the
     * arithmetic that fc_threads_for's threshold was set for do */
    FC_OMP(parallel for num_threads(fc_threads_for(s->c_out, 8.0 * s->n * P)) schedule(static))
    for (int64_t co = 0; co < s->c_out; co++) {
        double sum = 0, plane;
        for (int64_t n = 0; n < s->n; n++) {
            k->plane_sum(gy + (n * s->c_out + co) * P, P, &plane);
            sum += plane;
        }
        gb[co] = (FC_T)sum;
    }
    return FC_OK;
}

