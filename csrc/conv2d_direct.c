/* conv2d's direct passes: loops over output (or input-gradient) planes
 * whose inner loops run along rows and vectorize, for the shapes too thin
 * for a GEMM (depthwise, a handful of channels). Threads own planes, or
 * (grad-weight) pairs of channels. Family file (see common.h). */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* The direct forward reads each input plane from a copy framed in zeros
 * (the input at pad_top, pad_left): every tap is then a full-length
 * vector loop with no clipping. At stride 1 it goes further: outputs are
 * computed `pw` apart, as if the output were as wide as the frame, so
 * that one tap of the whole plane is one long loop, out[q] += w *
 * framed[q + tap offset]; the few columns past out_w are computed and
 * dropped. (Row by row, the loops were 56 long and their setup cost as
 * much as their arithmetic.) Those loops go DF_VECS vectors at a time
 * with every tap of a channel applied in registers, so the sums are
 * loaded and stored once a channel, not once a tap. */
#define DF_VECS 4
#define DF_BLOCK (DF_VECS * DOT_LANES)

/* While a lone channel's taps compute, the lines its next steps touch
 * are fetched, a block's share at a time: the next input plane, which the
 * frame copies in, and the output plane, which the last input channel
 * writes. A block covers `vecs` lines of a plane. Without this the loads
 * and stores stalled on memory (depthwise 3x3 on 56x56 maps, a read and
 * a write per 9 multiply-adds a pixel: 1.25x the time, measured when it
 * ran on the wide plane; undilated depthwise now runs by rows,
 * direct_forward_rows, and dilated or one channel of several on this
 * loop). Planes of a page or less did not stall, and the fetches cost
 * them 5-7% (depthwise on 28x28 maps, LeNet-5's grad-input), as they did
 * a block of several channels, whose loads each serve all of them
 * (LeNet-5's first layer, 3%). */
#define DF_AHEAD_BYTES 4096

static df_frame direct_frame(const fc_conv2d_shape *s) {
    df_frame f;
    conv_frame(s, &f.ph, &f.pw);
    f.wide = (s->out_h * f.pw + DF_BLOCK - 1) / DF_BLOCK * DF_BLOCK;
    f.frame_size = FC_MAX(f.ph * f.pw, f.wide + (s->kh - 1) * s->dil_h * f.pw + (s->kw - 1) * s->dil_w);
    return f;
}

/* One input channel's taps at stride 1 for cb output channels, added into
 * their wide outputs, wide[j * f->wide ...] for channel j, whose weights
 * are wc[j * ws ...] (the first input channel starts them from the
 * bias), `vecs` vectors of each at a time. Callers pass kh, kw, cb and
 * vecs as constants where they can, so the taps unroll and a lone
 * channel's weights stay in registers across the row instead of being
 * loaded for every block (depthwise 3x3 ran 1.3x faster); with several
 * channels, each input vector a tap loads serves all of them (LeNet-5's
 * first layer, 6 channels of one input, loaded each input vector 6 times
 * plane by plane). */
#define DF_CHANNELS 8
static inline __attribute__((always_inline)) void FC_FN(direct_forward_taps)(
    int64_t kh, int64_t kw, int64_t cb, int vecs, const fc_conv2d_shape *s, const df_frame *f,
    const FC_T *restrict wc, int64_t ws, const FC_T *restrict framed, int first, const FC_T *bias,
    FC_T *restrict wide, const void *read_ahead, void *write_ahead) {
    const int64_t pw = f->pw;
    for (int64_t q = 0, block = 0; q < f->wide; q += vecs * DOT_LANES, block++) {
        if (read_ahead) {
            fc_fetch_lines((const char *)read_ahead + 64 * vecs * block, 64 * vecs, 0);
            if (write_ahead) fc_fetch_lines((char *)write_ahead + 64 * vecs * block, 64 * vecs, 1);
        }
        FC_FN(dot_vec) sum[DF_CHANNELS][DF_VECS];
        for (int64_t j = 0; j < cb; j++)
            for (int v = 0; v < vecs; v++) {
                if (!first) sum[j][v] = *(FC_FN(dot_vec) *)(wide + j * f->wide + q + v * DOT_LANES);
                else sum[j][v] = (FC_FN(dot_vec)){0} + (bias ? bias[j] : 0);
            }
        for (int64_t i = 0; i < kh; i++)
            for (int64_t t = 0; t < kw; t++) {
                const FC_T *tap = framed + i * s->dil_h * pw + t * s->dil_w + q;
                for (int v = 0; v < vecs; v++) {
                    const FC_FN(dot_vec) in = *(const FC_FN(dot_vec) *)(tap + v * DOT_LANES);
                    for (int64_t j = 0; j < cb; j++) sum[j][v] += wc[j * ws + i * kw + t] * in;
                }
            }
        for (int64_t j = 0; j < cb; j++)
            for (int v = 0; v < vecs; v++) *(FC_FN(dot_vec) *)(wide + j * f->wide + q + v * DOT_LANES) = sum[j][v];
    }
}

/* The same with cb made a constant where it is 1, DF_VECS vectors a
 * channel then, one with several channels; and with the fetches ahead
 * compiled in only where a lone channel asks for them, so that the loops
 * without them are the loops they were (28x28 maps ran 3% slower). */
static inline __attribute__((always_inline)) void FC_FN(direct_forward_channel)(
    int64_t kh, int64_t kw, int64_t cb, const fc_conv2d_shape *s, const df_frame *f, const FC_T *restrict wc,
    int64_t ws, const FC_T *restrict framed, int first, const FC_T *bias, FC_T *restrict wide, const void *read_ahead,
    void *write_ahead) {
    if (cb == 1 && read_ahead)
        FC_FN(direct_forward_taps)(kh, kw, 1, DF_VECS, s, f, wc, ws, framed, first, bias, wide, read_ahead, write_ahead);
    else if (cb == 1)
        FC_FN(direct_forward_taps)(kh, kw, 1, DF_VECS, s, f, wc, ws, framed, first, bias, wide, NULL, NULL);
    else FC_FN(direct_forward_taps)(kh, kw, cb, 1, s, f, wc, ws, framed, first, bias, wide, NULL, NULL);
}

/* Output rows the depthwise loops below take at a time: with AVX-512, 2
 * and 3 ran mobilenet_dw's forward 5-14% slower, 8 no faster. Kernels of
 * up to DF_ROWS_TAPS taps (8x8) go by rows, their weights broadcast on the
 * stack; larger ones keep the wide plane. */
#define DF_ROWS 4
#define DF_ROWS_TAPS 64

/* Whether a shape's planes can go by rows (direct_forward_rows,
 * grad_weight_rows): stride 1, undilated, at least a vector wide and
 * DF_ROWS rows high. */
static int rows_fit(const fc_conv2d_shape *s) {
    return s->stride_h == 1 && s->stride_w == 1 && s->dil_h == 1 && s->dil_w == 1 && s->out_w >= DOT_LANES &&
           s->out_h >= DF_ROWS;
}

/* The taps of DF_ROWS output rows, one vector column, at stride 1,
 * undilated: tap (i, t) of row j reads the frame's row j + i at column t
 * (from `framed`, rows pw apart), so each frame vector is loaded once and
 * serves every row it is a tap row of. The forward adds the weight of tap
 * (i, t), w[i * kw + t] (broadcast by the caller, once a plane), times it
 * to row j's sum[j]; the grad-weight (`grad`) adds row j's gy, g[j], times
 * it to tap (i, t)'s sum[i * kw + t]. Unrolled whole for constant kh and
 * kw: the tests fold, and the sums stay in registers. */
static inline __attribute__((always_inline)) void FC_FN(rows_taps)(
    int64_t kh, int64_t kw, int grad, const FC_T *framed, int64_t pw, const FC_FN(dot_vec) *w,
    const FC_FN(dot_vec) *g, FC_FN(dot_vec) *sum) {
#pragma GCC unroll 16
    for (int64_t r = 0; r < DF_ROWS + kh - 1; r++)
#pragma GCC unroll 16
        for (int64_t t = 0; t < kw; t++) {
            const FC_FN(dot_vec) in = *(const FC_FN(dot_vec) *)(framed + r * pw + t);
#pragma GCC unroll 16
            for (int64_t j = 0; j < DF_ROWS; j++)
                if (r - j >= 0 && r - j < kh) {
                    if (grad) sum[(r - j) * kw + t] += g[j] * in;
                    else sum[j] += w[(r - j) * kw + t] * in;
                }
        }
}

/* A lone output channel of a lone input channel (depthwise) at stride 1,
 * undilated, summed straight into its plane y, DF_ROWS rows a vector
 * column at a time: each input vector loaded serves every output row it
 * is a tap row of, (DF_ROWS + kh - 1) * kw loads per DF_ROWS * kh * kw
 * multiply-adds, where the wide plane loads every tap. A row is vectors
 * from its start and one that ends at its end, over the one before it,
 * and the last block of rows ends at the last row the same way: outputs
 * computed twice are stored twice alike, and nothing but y is stored
 * (the wide plane was stored, then copied out). Each sum adds its taps
 * in the same order as the wide plane's, so the bits are the same.
 * Depthwise 3x3, forward and grad-input, ran 1.3x faster than on the wide
 * plane. It fetches nothing ahead: the wide plane's fetches made it 8%
 * slower on 56x56 maps, its loads now the bound, not memory. */
static inline __attribute__((always_inline)) void FC_FN(direct_forward_rows)(
    int64_t kh, int64_t kw, const fc_conv2d_shape *s, const df_frame *f, const FC_T *restrict wc,
    const FC_T *restrict framed, FC_T bias, FC_T *restrict y) {
    typedef FC_FN(dot_vec) vec;
    const int64_t OH = s->out_h, OW = s->out_w, pw = f->pw;
    vec wv[DF_ROWS_TAPS];
    for (int64_t t = 0; t < kh * kw; t++) wv[t] = (vec){0} + wc[t];
    for (int64_t oh = 0; oh < OH; oh += DF_ROWS) {
        const int64_t r0 = FC_MIN(oh, OH - DF_ROWS);
        for (int64_t ow = 0; ow < OW; ow += DOT_LANES) {
            const int64_t c0 = FC_MIN(ow, OW - DOT_LANES);
            vec sum[DF_ROWS];
            for (int j = 0; j < DF_ROWS; j++) sum[j] = (vec){0} + bias;
            FC_FN(rows_taps)(kh, kw, 0, framed + r0 * pw + c0, pw, wv, NULL, sum);
            for (int j = 0; j < DF_ROWS; j++) *(vec *)(y + (r0 + j) * OW + c0) = sum[j];
        }
    }
}

/* Output planes y[n][co .. co + cb - 1] of the direct forward, cb > 1 only
 * at stride 1 (one group's channels). Scratch: `framed` (frame_size,
 * zero outside the input's place on entry and exit) and, at stride 1,
 * `wide` (cb x f->wide). */
FC_VECTOR_LOOP(direct_forward_planes, (const fc_conv2d_shape *s, const df_frame *f, const FC_T *x, const FC_T *w,
                                       const FC_T *b, int64_t n, int64_t co, int64_t cb, FC_T *restrict yp,
                                       FC_T *restrict framed, FC_T *restrict wide),
               (s, f, x, w, b, n, co, cb, yp, framed, wide)) {
    const int64_t cin_g = GROUP_IN(s), cout_g = GROUP_OUT(s), OH = s->out_h, OW = s->out_w, pw = f->pw;
    const int64_t sh = s->stride_h, sw = s->stride_w, taps = s->kh * s->kw;
    const FC_T bias = b ? b[co] : 0;
    if (sh != 1 || sw != 1)
        for (int64_t p = 0; p < OH * OW; p++) yp[p] = bias;
    /* while a lone channel's taps compute: the next plane of x, and the
     * last input channel's output plane, which the copy below writes */
    const int ahead = cb == 1 && s->h * s->w * (int64_t)sizeof(FC_T) > DF_AHEAD_BYTES;
    const int by_rows = rows_fit(s) && cb == 1 && cin_g == 1 && taps <= DF_ROWS_TAPS;
    for (int64_t c = 0; c < cin_g; c++) {
        const FC_T *xc = x + (n * s->c_in + co / cout_g * cin_g + c) * s->h * s->w;
        FC_FN(frame_planes)(s, xc, 1, f->ph, pw, framed);
        const FC_T *wc = w + (co * cin_g + c) * taps;
        if (by_rows) {
            if (s->kh == 3 && s->kw == 3) FC_FN(direct_forward_rows)(3, 3, s, f, wc, framed, bias, yp);
            else if (s->kh == 5 && s->kw == 5) FC_FN(direct_forward_rows)(5, 5, s, f, wc, framed, bias, yp);
            else FC_FN(direct_forward_rows)(s->kh, s->kw, s, f, wc, framed, bias, yp);
        } else if (sh == 1 && sw == 1) {
            const FC_T *next = ahead ? xc + s->h * s->w : NULL;
            FC_T *out = ahead && c == cin_g - 1 ? yp : NULL;
            const FC_T *bc = b ? b + co : NULL;
            const int64_t ws = cin_g * taps;
            if (s->kh == 3 && s->kw == 3)
                FC_FN(direct_forward_channel)(3, 3, cb, s, f, wc, ws, framed, c == 0, bc, wide, next, out);
            else if (s->kh == 5 && s->kw == 5)
                FC_FN(direct_forward_channel)(5, 5, cb, s, f, wc, ws, framed, c == 0, bc, wide, next, out);
            else FC_FN(direct_forward_channel)(s->kh, s->kw, cb, s, f, wc, ws, framed, c == 0, bc, wide, next, out);
        } else
            for (int64_t i = 0; i < s->kh; i++)
                for (int64_t j = 0; j < s->kw; j++) {
                    const FC_T wv = wc[i * s->kw + j];
                    const FC_T *restrict tap = framed + i * s->dil_h * pw + j * s->dil_w;
                    for (int64_t oh = 0; oh < OH; oh++)
                        for (int64_t ow = 0; ow < OW; ow++) yp[oh * OW + ow] += wv * tap[oh * sh * pw + ow * sw];
                }
    }
    if (sh == 1 && sw == 1 && !by_rows)
        for (int64_t j = 0; j < cb; j++)
            for (int64_t oh = 0; oh < OH; oh++)
                FC_FN(copy_row)(yp + j * OH * OW + oh * OW, wide + j * f->wide + oh * pw, OW);
}

/* Tasks own planes, or at stride 1 blocks of up to DF_CHANNELS output
 * channels of one group, which share each input load. */
static int FC_FN(fc_conv2d_forward_direct)(const fc_conv2d_shape *s, const FC_T *x,
                                           const FC_T *w, const FC_T *b, FC_T *y) {
    const int64_t P = PIXELS(s), cout_g = GROUP_OUT(s);
    const int64_t cb = s->stride_h == 1 && s->stride_w == 1 ? FC_MIN(cout_g, (int64_t)DF_CHANNELS) : 1;
    const int64_t blocks = (cout_g + cb - 1) / cb, tasks = s->n * s->groups * blocks;
    const df_frame f = direct_frame(s);
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * cb * P * GROUP_IN(s) * s->kh * s->kw)))
    {
        /* the frame stays zero outside the input */
        FC_T *framed = fc_scratch((size_t)(f.frame_size + cb * f.wide) * sizeof(FC_T), 1, &status);
        FC_OMP(for schedule(static))
        for (int64_t t = 0; t < tasks; t++) {
            const int64_t n = t / (s->groups * blocks), g = t / blocks % s->groups, c0 = t % blocks * cb;
            const int64_t co = g * cout_g + c0;
            if (framed)
                k->direct_forward_planes(s, &f, x, w, b, n, co, FC_MIN(cb, cout_g - c0), y + (n * s->c_out + co) * P,
                                         framed, framed + f.frame_size);
        }
        fc_free(framed);
    }
    return status;
}

/* One input-gradient plane gx[n][ci] of the direct algorithm. */
FC_VECTOR_LOOP(direct_grad_input_plane, (const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, int64_t n,
                                         int64_t ci, FC_T *restrict gxp), (s, gy, w, n, ci, gxp)) {
    const int64_t cin_g = GROUP_IN(s), cout_g = GROUP_OUT(s), P = PIXELS(s), g = ci / cin_g;
    memset(gxp, 0, (size_t)(s->h * s->w) * sizeof(FC_T));
    for (int64_t co = g * cout_g; co < (g + 1) * cout_g; co++) {
        const FC_T *gyp = gy + (n * s->c_out + co) * P;
        for (int64_t i = 0; i < s->kh; i++)
            for (int64_t j = 0; j < s->kw; j++) {
                const FC_T wv = w[((co * cin_g + ci % cin_g) * s->kh + i) * s->kw + j];
                const int64_t col_off = j * s->dil_w - s->pad_left;
                int64_t lo, hi;
                fc_valid_range(col_off, s->stride_w, s->w, s->out_w, &lo, &hi);
                for (int64_t oh = 0; oh < s->out_h; oh++) {
                    const int64_t ih = oh * s->stride_h - s->pad_top + i * s->dil_h;
                    if (ih < 0 || ih >= s->h) continue;
                    FC_T *restrict row = gxp + ih * s->w + col_off;
                    const FC_T *restrict g_row = gyp + oh * s->out_w;
                    if (s->stride_w == 1)
                        for (int64_t ow = lo; ow < hi; ow++) row[ow] += wv * g_row[ow];
                    else
                        for (int64_t ow = lo; ow < hi; ow++) row[ow * s->stride_w] += wv * g_row[ow];
                }
            }
    }
}

/* At stride 1 a grad-input is a forward conv of gy by the kernel flipped
 * in space, with the channel axes swapped per group and the padding's
 * complement, (k - 1) * dil - pad (where that is not negative: a crop),
 *   gx[c][ih][iw] = sum over m, i, j of gy[m][ih + i*dh - pt'][iw + j*dw - pl'] * w[m][c][kh-1-i][kw-1-j],
 * so it runs on the direct forward's register-blocked loops; plane by
 * plane, the scatter's rows were out_w long (depthwise 3x3 on 28x28 maps
 * ran 1.6x PyTorch's time). */
static int FC_FN(grad_input_as_forward)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, FC_T *gx) {
    const int64_t M = GROUP_OUT(s), cin_g = GROUP_IN(s), taps = s->kh * s->kw;
    FC_T *wt = fc_alloc((size_t)(s->c_out * cin_g * taps) * sizeof(FC_T));
    if (!wt) return FC_ERR_NOMEM;
    for (int64_t g = 0; g < s->groups; g++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t c = 0; c < cin_g; c++)
                for (int64_t t = 0; t < taps; t++)
                    wt[((g * cin_g + c) * M + m) * taps + taps - 1 - t] = w[((g * M + m) * cin_g + c) * taps + t];
    const fc_conv2d_shape t = {s->n, s->c_out, s->out_h, s->out_w, s->c_in, s->groups, s->kh, s->kw, 1, 1,
                               (s->kh - 1) * s->dil_h - s->pad_top, (s->kw - 1) * s->dil_w - s->pad_left,
                               s->dil_h, s->dil_w, s->h, s->w};
    const int status = FC_FN(fc_conv2d_forward_direct)(&t, gy, wt, NULL, gx);
    fc_free(wt);
    return status;
}

static int FC_FN(fc_conv2d_grad_input_direct)(const fc_conv2d_shape *s, const FC_T *gy,
                                              const FC_T *w, FC_T *gx) {
    if (s->stride_h == 1 && s->stride_w == 1 && s->pad_top <= (s->kh - 1) * s->dil_h &&
        s->pad_left <= (s->kw - 1) * s->dil_w)
        return FC_FN(grad_input_as_forward)(s, gy, w, gx);
    const int64_t planes = s->n * s->c_in;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    FC_OMP(parallel for num_threads(fc_threads_for(planes, 2.0 * PIXELS(s) * GROUP_OUT(s) * s->kh * s->kw)) schedule(static))
    for (int64_t plane = 0; plane < planes; plane++)
        k->direct_grad_input_plane(s, gy, w, plane / s->c_in, plane % s->c_in, gx + plane * s->h * s->w);
    return FC_OK;
}

/* gw[co][c][:][:] of the direct algorithm, on the forward's frame: gy is
 * spread over a zero plane shaped like the frame, each value at its
 * window's corner, so that every tap's gradient is one long dot product,
 *   gw[tap] = sum over q of spread[q] * framed[q + tap offset],
 * summed over the batch in per-lane partial sums (vector extensions, one
 * width per ISA) and reduced in a fixed order at the end. Taps go in
 * groups sharing each load of `spread` (gw_frame); a group's unused taps
 * read offset 0 and are dropped. A 3x3 kernel's nine taps in one group
 * load 10 vectors per 9 multiply-adds, not 12, in nine chains, not three
 * (mobilenet_dw's grad-weight 8% faster); a tap's sum runs in the same
 * order either way. A stride s computes on the s*s - 1 zeros
 * between spread values. Row by row, without the frame, the loops were
 * out_w long and every tap re-read gy (benchmarks/RULES.md has the
 * measurement). */

static gw_frame FC_FN(grad_weight_frame)(const fc_conv2d_shape *s) {
    gw_frame f;
    conv_frame(s, &f.ph, &f.pw);
    const int64_t extent = (s->out_h - 1) * s->stride_h * f.pw + (s->out_w - 1) * s->stride_w + 1;
    f.length = (extent + DOT_LANES - 1) / DOT_LANES * DOT_LANES;
    const int64_t taps = s->kh * s->kw, narrow = (taps + GW_TAPS - 1) / GW_TAPS * GW_TAPS;
    const int64_t wide = (taps + GW_TAPS_WIDE - 1) / GW_TAPS_WIDE * GW_TAPS_WIDE;
    f.group = fc_get_isa() == FC_ISA_AVX512 && wide == narrow ? GW_TAPS_WIDE : GW_TAPS;
    f.taps = f.group == GW_TAPS ? narrow : wide;
    f.rows = f.group == GW_TAPS_WIDE && s->kh == 3 && s->kw == 3 && rows_fit(s);
    return f;
}

/* acc[t] += the dot products of `spread` with the frame at taps t's
 * offsets, for every group of `group` taps (a constant, so the group's
 * sums stay in registers). */
static inline __attribute__((always_inline)) void FC_FN(grad_weight_taps)(
    int64_t group, const gw_frame *f, const ptrdiff_t *off, const FC_T *restrict spread,
    const FC_T *restrict framed, FC_FN(dot_vec) *restrict acc) {
    for (int64_t t0 = 0; t0 < f->taps; t0 += group) {
        FC_FN(dot_vec) sum[GW_TAPS_WIDE];
        for (int64_t t = 0; t < group; t++) sum[t] = acc[t0 + t];
        for (int64_t q = 0; q < f->length; q += DOT_LANES) {
            const FC_FN(dot_vec) g = *(const FC_FN(dot_vec) *)(spread + q);
            for (int64_t t = 0; t < group; t++) sum[t] += g * *(const FC_FN(dot_vec) *)(framed + q + off[t0 + t]);
        }
        for (int64_t t = 0; t < group; t++) acc[t0 + t] = sum[t];
    }
}

/* acc[i * 3 + t] += gy's plane (gyp) times the frame at tap (i, t) of a
 * 3x3 kernel, lane by lane, at stride 1, undilated, without the spread
 * plane: DF_ROWS rows of gy a vector column at a time, each frame vector
 * loaded once for every row of gy it meets, (DF_ROWS + 2) * 3 + DF_ROWS
 * loads per DF_ROWS * 9 multiply-adds, where the spread plane loads 10
 * per 9. Columns and rows end on a vector and a block overlapping the ones
 * before, as in direct_forward_rows, but a sum must count each value
 * once: the lanes and rows counted before are zeroed. All nine sums stay
 * in registers, so 3x3 only, and AVX-512 only (AVX2's 16 registers would
 * spill them). */
static inline __attribute__((always_inline)) void FC_FN(grad_weight_rows)(
    const fc_conv2d_shape *s, const gw_frame *f, const FC_T *restrict gyp, const FC_T *restrict framed,
    FC_FN(dot_vec) *restrict acc) {
    typedef FC_FN(dot_vec) vec;
    typedef __typeof__((vec){0} > 0) mask;
    enum { kh = 3, kw = 3 };
    const int64_t OH = s->out_h, OW = s->out_w, pw = f->pw;
    vec lane, sum[kh * kw];
    for (int64_t l = 0; l < DOT_LANES; l++) lane[l] = (FC_T)l;
    for (int64_t t = 0; t < kh * kw; t++) sum[t] = acc[t];
    for (int64_t oh = 0; oh < OH; oh += DF_ROWS) {
        const int64_t r0 = FC_MIN(oh, OH - DF_ROWS);
        for (int64_t ow = 0; ow < OW; ow += DOT_LANES) {
            const int64_t c0 = FC_MIN(ow, OW - DOT_LANES);
            const mask fresh = lane >= (FC_T)(ow - c0); /* the lanes no column before counted */
            vec g[DF_ROWS];
            for (int j = 0; j < DF_ROWS; j++)
                g[j] = r0 + j < oh ? (vec){0} : (vec)((mask) * (const vec *)(gyp + (r0 + j) * OW + c0) & fresh);
            FC_FN(rows_taps)(kh, kw, 1, framed + r0 * pw + c0, pw, NULL, g, sum);
        }
    }
    for (int64_t t = 0; t < kh * kw; t++) acc[t] = sum[t];
}

FC_VECTOR_LOOP(direct_grad_weight_pair, (const fc_conv2d_shape *s, const gw_frame *f, const FC_T *gy,
                                         const FC_T *x, int64_t co, int64_t c, const ptrdiff_t *off,
                                         FC_T *restrict spread, FC_T *restrict framed,
                                         FC_FN(dot_vec) *restrict acc, FC_T *gw),
               (s, f, gy, x, co, c, off, spread, framed, acc, gw)) {
    const int64_t ci = co / GROUP_OUT(s) * GROUP_IN(s) + c, P = PIXELS(s);
    for (int64_t t = 0; t < f->taps; t++) acc[t] = (FC_FN(dot_vec)){0};
    for (int64_t n = 0; n < s->n; n++) {
        FC_FN(frame_planes)(s, x + (n * s->c_in + ci) * s->h * s->w, 1, f->ph, f->pw, framed);
        const FC_T *gyp = gy + (n * s->c_out + co) * P;
        if (f->rows) {
            FC_FN(grad_weight_rows)(s, f, gyp, framed, acc);
            continue;
        }
        for (int64_t oh = 0; oh < s->out_h; oh++)
            for (int64_t ow = 0; ow < s->out_w; ow++)
                spread[oh * s->stride_h * f->pw + ow * s->stride_w] = gyp[oh * s->out_w + ow];
        if (f->group == GW_TAPS_WIDE) FC_FN(grad_weight_taps)(GW_TAPS_WIDE, f, off, spread, framed, acc);
        else FC_FN(grad_weight_taps)(GW_TAPS, f, off, spread, framed, acc);
    }
    for (int64_t t = 0; t < s->kh * s->kw; t++) {
        FC_T total = 0;
        for (int64_t l = 0; l < DOT_LANES; l++) total += acc[t][l];
        gw[t] = total;
    }
}

static int FC_FN(fc_conv2d_grad_weight_direct)(const fc_conv2d_shape *s, const FC_T *gy,
                                               const FC_T *x, FC_T *gw) {
    const int64_t cin_g = GROUP_IN(s), pairs = s->c_out * cin_g;
    const gw_frame f = FC_FN(grad_weight_frame)(s);
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    ptrdiff_t *off = fc_calloc((size_t)f.taps * sizeof(ptrdiff_t)); /* padding taps: offset 0 */
    if (!off) return FC_ERR_NOMEM;
    indirect_offsets(s, 1, f.ph * f.pw, f.pw, off);
    /* The frame is read up to length + the largest offset: zeros past it. */
    const size_t frame_size = (size_t)FC_MAX(f.ph * f.pw, f.length + (s->kh - 1) * s->dil_h * f.pw + (s->kw - 1) * s->dil_w);
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(pairs, 2.0 * s->n * PIXELS(s) * s->kh * s->kw)))
    {
        FC_T *spread = fc_scratch(((size_t)f.length + frame_size) * sizeof(FC_T), 1, &status); /* zero between values */
        FC_FN(dot_vec) *acc = fc_scratch((size_t)f.taps * sizeof(FC_FN(dot_vec)), 0, &status);
        FC_OMP(for schedule(static))
        for (int64_t pair = 0; pair < pairs; pair++)
            if (spread && acc)
                k->direct_grad_weight_pair(s, &f, gy, x, pair / cin_g, pair % cin_g, off, spread, spread + f.length,
                                           acc, gw + pair * s->kh * s->kw);
        fc_free(spread);
        fc_free(acc);
    }
    fc_free(off);
    return status;
}
