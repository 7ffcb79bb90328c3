/* conv2d's grad-input as GEMMs: forward convs of gy, one per stride phase,
 * or col2im of W^T gy. Threads own gx: (image, group, channel block).
 * conv2d.c chooses between them. Family file (see common.h). */
#include <stdlib.h>
#include <string.h>

#include "conv2d_internal.h"

/* A conv's grad-input is a set of stride-1 convs of gy, one per phase.
 * Split gx's rows by ih mod stride_h = r (and columns alike): the rows of
 * phase r receive gy through the same taps, those i with r + pad_top -
 * i*dil_h a multiple of stride_h, evenly spaced; row q of the phase, ih =
 * q*stride_h + r, reads gy row q + (r + pad_top - i*dil_h) / stride_h. So
 * a phase is a stride-1 conv of gy (framed) by its taps of W, flipped in
 * space and with the channel axes swapped per group, and it runs on the
 * forward's kernels with no col2im; strided, its output is spread into gx.
 * A stride-1 conv is one phase with every tap.
 * conv2d.c's grad_input_by_phases says when. */
typedef struct {
    int64_t first, count, step; /* the phase's taps: first + t*step, t < count */
    int64_t dil, pad, out;      /* its conv's dilation and padding; its rows in gx */
} phase_axis;

static int64_t gcd(int64_t a, int64_t b) {
    while (b) {
        const int64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* One axis of phase r: in is gx's extent, k, stride, pad, dil the conv's. */
static phase_axis phase_axis_of(int64_t r, int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
    const int64_t g = gcd(stride, dil);
    phase_axis a = {0, 0, stride / g, dil / g, 0, in > r ? (in - r + stride - 1) / stride : 0};
    while (a.first < FC_MIN(k, a.step) && (r + pad - a.first * dil) % stride != 0) a.first++;
    if (a.first == k || (r + pad - a.first * dil) % stride != 0) return a; /* no taps */
    a.count = (k - 1 - a.first) / a.step + 1;
    /* gy offsets (r + pad - i*dil) / stride fall by dil / g per tap: flipped,
     * they rise from the last tap's, which is minus the padding. */
    a.pad = -fc_floordiv(r + pad - (a.first + (a.count - 1) * a.step) * dil, stride);
    return a;
}

/* Whether every phase along an axis has taps and a frame. */
static int phases_fit(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
    for (int64_t r = 0; r < stride; r++) {
        const phase_axis a = phase_axis_of(r, in, k, stride, pad, dil);
        if (a.count == 0 || a.pad < 0) return 0;
    }
    return 1;
}

static int FC_FN(fc_conv2d_grad_input_phases)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, FC_T *gx) {
    const int64_t M = GROUP_OUT(s), cin_g = GROUP_IN(s), taps = s->kh * s->kw;
    const fc_out_view view = {s->h * s->w, s->stride_h * s->w, s->stride_w};
    FC_T *wt = fc_alloc((size_t)(s->c_out * cin_g * taps) * sizeof(FC_T));
    int64_t *tap = fc_alloc((size_t)taps * sizeof(int64_t));
    if (!wt || !tap) {
        fc_free(wt), fc_free(tap);
        return FC_ERR_NOMEM;
    }
    int status = FC_OK;
    for (int64_t rh = 0; rh < s->stride_h && status == FC_OK; rh++)
        for (int64_t rw = 0; rw < s->stride_w && status == FC_OK; rw++) {
            const phase_axis ah = phase_axis_of(rh, s->h, s->kh, s->stride_h, s->pad_top, s->dil_h);
            const phase_axis aw = phase_axis_of(rw, s->w, s->kw, s->stride_w, s->pad_left, s->dil_w);
            const int64_t kt = ah.count * aw.count;
            if (ah.out * aw.out == 0) continue;
            /* the phase's taps, flipped (tap[t]: the kernel's tap at the
             * phase's t), channel axes swapped; written in order by the
             * threads together (a 512-channel layer's 9.4 MB, scattered by
             * one thread, took a sixth of its grad-input) */
            for (int64_t i = 0; i < ah.count; i++)
                for (int64_t j = 0; j < aw.count; j++)
                    tap[(ah.count - 1 - i) * aw.count + aw.count - 1 - j] =
                        (ah.first + i * ah.step) * s->kw + aw.first + j * aw.step;
            FC_OMP(parallel for num_threads(fc_threads_for(s->groups * cin_g, 2.0 * M * kt)) schedule(static))
            for (int64_t gc = 0; gc < s->groups * cin_g; gc++)
                for (int64_t m = 0; m < M; m++) {
                    const FC_T *from = w + ((gc / cin_g * M + m) * cin_g + gc % cin_g) * taps;
                    FC_T *to = wt + (gc * M + m) * kt;
                    for (int64_t t = 0; t < kt; t++) to[t] = from[tap[t]];
                }
            const fc_conv2d_shape t = {s->n, s->c_out, s->out_h, s->out_w, s->c_in, s->groups, ah.count,
                                       aw.count, 1, 1, ah.pad, aw.pad, ah.dil, aw.dil, ah.out, aw.out};
            /* stride 1: one phase, gx itself, on whichever forward is faster */
            status = s->stride_h == 1 && s->stride_w == 1
                         ? FC_FN(fc_conv2d_forward_gemm)(&t, gy, wt, NULL, 0, gx)
                         : FC_FN(fc_conv2d_forward_indirect)(&t, gy, wt, NULL, 0, gx + rh * s->w + rw, view);
        }
    fc_free(wt);
    fc_free(tap);
    return status;
}

/* gx = col2im(W^T gy), a block of pixels at a time: a task owns the gx
 * planes of one (image, group, channel block), so no two tasks add into
 * the same element.
 *
 * At stride 1, where an image's pixels fit one block, the rows of col2im
 * are out_w long (10 in LeNet-5's second layer) and their loop setup
 * costs more than their adds. There gy is first spread into rows `pw`
 * apart (the frame's pitch, zeros between), so that W^T gy comes out at
 * the frame's pitch and each tap's col2im is one long loop,
 *   frame[q + tap offset] += col[tap][q],
 * whose frame's interior is then gx: the GEMM computes (pw - out_w) / pw
 * more columns, all zero. Spreading copies gy's rows (c_out per group of
 * them) to save col2im's (K of them): it pays where c_out per group < K
 * (TutorialCNN's first layer, 64 outputs of 9 taps, ran 1.4x slower). */
typedef struct {
    int wide;       /* spread gy to the frame's pitch */
    int64_t ph, pw; /* the frame of one gx plane (wide) */
    int64_t Q;      /* the pixels a block holds: (out_h - 1) * pw + out_w (wide), else a chunk */
} col2im_plan;

static col2im_plan FC_FN(col2im_plan_of)(const fc_conv2d_shape *s, int64_t K) {
    col2im_plan c = {0, 0, 0, FC_FN(pixel_chunk)(K, PIXELS(s))};
    conv_frame(s, &c.ph, &c.pw);
    const int64_t Q = (s->out_h - 1) * c.pw + s->out_w;
    if (s->stride_h == 1 && s->stride_w == 1 && GROUP_OUT(s) < K && Q <= FC_FN(pixel_chunk)(K, Q)) c.wide = 1, c.Q = Q;
    return c;
}

/* One wide task: gx planes [c0, c1) of group g of image n. */
static void FC_FN(col2im_wide_task)(const fc_conv2d_shape *s, const col2im_plan *c, const FC_T *gyn,
                                    const FC_FN(fc_operand) *a, int64_t c0, int64_t c1, FC_T *gxn,
                                    FC_T *spread, FC_T *frame, FC_T *col, FC_T *ws) {
    const int64_t M = GROUP_OUT(s), taps = s->kh * s->kw, Q = c->Q, OW = s->out_w;
    for (int64_t m = 0; m < M; m++) /* the gaps stay zero from the scratch's start */
        for (int64_t oh = 0; oh < s->out_h; oh++)
            memcpy(spread + m * Q + oh * c->pw, gyn + (m * s->out_h + oh) * OW, (size_t)OW * sizeof(FC_T));
    const FC_FN(fc_strided) sp = {spread, 1, Q};
    const FC_FN(fc_operand) b = {FC_FN(pack_strided), &sp, NULL, NULL};
    FC_FN(gemm_serial)((c1 - c0) * taps, Q, M, a, &b, col, Q, NULL, 0, ws);
    for (int64_t ch = c0; ch < c1; ch++) {
        memset(frame, 0, (size_t)(c->ph * c->pw) * sizeof(FC_T));
        for (int64_t i = 0; i < s->kh; i++)
            for (int64_t j = 0; j < s->kw; j++) {
                const FC_T *restrict src = col + ((ch - c0) * taps + i * s->kw + j) * Q;
                FC_T *restrict dst = frame + i * s->dil_h * c->pw + j * s->dil_w;
                for (int64_t q = 0; q < Q; q++) dst[q] += src[q];
            }
        for (int64_t ih = 0; ih < s->h; ih++)
            memcpy(gxn + (ch * s->h + ih) * s->w, frame + (ih + s->pad_top) * c->pw + s->pad_left,
                   (size_t)s->w * sizeof(FC_T));
    }
}

static int FC_FN(fc_conv2d_grad_input_col2im)(const fc_conv2d_shape *s, const FC_T *gy,
                                              const FC_T *w, FC_T *gx) {
    const int64_t M = GROUP_OUT(s), cin_g = GROUP_IN(s), taps = s->kh * s->kw;
    const int64_t K = cin_g * taps, P = PIXELS(s);
    const col2im_plan plan = FC_FN(col2im_plan_of)(s, K);
    const int64_t PC = plan.Q, images = s->n * s->groups;
    const int64_t blocks = split_for_threads(images, cin_g);
    const int64_t CB = (cin_g + blocks - 1) / blocks, tasks = images * blocks;
    /* With one channel block per group, every task of a group multiplies by
     * all of W^T: pack it once. (Split blocks pack their rows per task.) */
    const size_t a_size = blocks == 1 ? FC_FN(gemm_packed_a_size)(K, M) : 0;
    FC_T *wpack = NULL;
    if (blocks == 1) {
        wpack = fc_alloc(a_size * (size_t)s->groups * sizeof(FC_T));
        if (!wpack) return FC_ERR_NOMEM;
        for (int64_t g = 0; g < s->groups; g++) {
            const FC_FN(fc_strided) wt = {w + g * M * K, 1, K};
            const FC_FN(fc_operand) a = {FC_FN(pack_strided), &wt, NULL, NULL};
            FC_FN(gemm_pack_a)(K, M, &a, wpack + g * a_size);
        }
    }
    /* Per thread: col, the GEMM's workspace and, wide, gy spread and a frame. */
    const size_t col_size = (size_t)(CB * taps * PC), ws_size = FC_FN(gemm_workspace)(CB * taps, PC, M);
    const size_t wide_size = plan.wide ? (size_t)(M * PC + plan.ph * plan.pw) : 0;
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * M * CB * taps * P)))
    {
        FC_T *col = fc_scratch((col_size + ws_size + wide_size) * sizeof(FC_T), plan.wide, &status);
        FC_FN(fc_strided) wt;
        FC_FN(fc_operand) a = {FC_FN(pack_strided), &wt, NULL, NULL};
        FC_OMP(for schedule(static))
        for (int64_t t = 0; t < tasks; t++) {
            if (!col) continue;
            const int64_t img = t / blocks, n = img / s->groups, g = img % s->groups;
            const int64_t c0 = t % blocks * CB, c1 = FC_MIN(cin_g, c0 + CB);
            if (c0 >= c1) continue;
            FC_T *gxn = gx + (n * s->c_in + g * cin_g) * s->h * s->w;
            const FC_T *gyn = gy + (n * s->c_out + g * M) * P;
            wt = (FC_FN(fc_strided)){w + g * M * K + c0 * taps, 1, K};
            a.packed = wpack ? wpack + g * a_size : NULL;
            if (plan.wide) {
                FC_T *spread = col + col_size + ws_size;
                FC_FN(col2im_wide_task)(s, &plan, gyn, &a, c0, c1, gxn, spread, spread + M * PC, col,
                                        col + col_size);
                continue;
            }
            memset(gxn + c0 * s->h * s->w, 0, (size_t)((c1 - c0) * s->h * s->w) * sizeof(FC_T));
            for (int64_t p0 = 0; p0 < P; p0 += PC) {
                const int64_t pc = FC_MIN(PC, P - p0);
                const FC_FN(fc_strided) gm = {gyn + p0, 1, P};
                const FC_FN(fc_operand) bo = {FC_FN(pack_strided), &gm, NULL, NULL};
                FC_FN(gemm_serial)((c1 - c0) * taps, pc, M, &a, &bo, col, pc, NULL, 0, col + col_size);
                FC_FN(col2im)(s, col, c0, c1, p0, p0 + pc, gxn);
            }
        }
        fc_free(col);
    }
    fc_free(wpack);
    return status;
}
