/* conv2d's grad-weight as GEMMs: dot products of gy and im2col columns,
 * or an indirect GEMM (the forward's kernel turned around), shared among
 * threads by slots of images or by taps. Every element's sum runs in an
 * order fixed by the shape. conv2d.c chooses among them. Family file (see
 * common.h). */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* Adds the slots' partial sums of gw in slot order, into slot 0's run,
 * and writes them to gw, in blocks of 16 rows. */
#define REDUCE_ROWS 16

static void FC_FN(reduce_slots)(const fc_conv2d_shape *s, FC_T *partial, int64_t slots, FC_T *gw) {
    const int64_t cols = GROUP_IN(s) * s->kh * s->kw, rows = s->c_out, size = rows * cols;
    const int64_t blocks = (rows + REDUCE_ROWS - 1) / REDUCE_ROWS;
    FC_OMP(parallel for num_threads(fc_threads_for(blocks, (double)(slots * cols * REDUCE_ROWS))) schedule(static))
    for (int64_t rb = 0; rb < blocks; rb++) {
        const int64_t r0 = rb * REDUCE_ROWS, r1 = FC_MIN(rows, r0 + REDUCE_ROWS);
        for (int64_t slot = 1; slot < slots; slot++)
            for (int64_t e = r0 * cols; e < r1 * cols; e++) partial[e] += partial[slot * size + e];
        if (partial != gw) memcpy(gw + r0 * cols, partial + r0 * cols, (size_t)((r1 - r0) * cols) * sizeof(FC_T));
    }
}

/* gw = sum over images and pixel blocks of gy_block col_block^T as dot
 * products (gemm_nt_dot), reading gy in place and x unfolded by im2col. */
static int FC_FN(fc_conv2d_grad_weight_dots)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *x, FC_T *gw) {
    const int64_t M = GROUP_OUT(s), cin_g = GROUP_IN(s), K = cin_g * s->kh * s->kw;
    const int64_t P = PIXELS(s), PC = FC_FN(pixel_chunk)(K, P), chunks = (P + PC - 1) / PC;
    const int64_t units = s->n * chunks, slots = FC_MIN((int64_t)SLOTS, units);
    const int64_t size = s->c_out * K, tasks = slots * s->groups;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    FC_T *partial = slots == 1 ? gw : fc_alloc((size_t)(slots * size) * sizeof(FC_T));
    if (!partial) return FC_ERR_NOMEM;
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * M * K * P * s->n / slots)))
    {
        FC_T *col = fc_scratch((size_t)(K * PC) * sizeof(FC_T), 0, &status);
        FC_OMP(for schedule(static))
        for (int64_t t = 0; t < tasks; t++) {
            if (!col) continue;
            const int64_t slot = t / s->groups, g = t % s->groups;
            const int64_t u0 = units * slot / slots, u1 = units * (slot + 1) / slots;
            for (int64_t u = u0; u < u1; u++) {
                const int64_t n = u / chunks, p0 = u % chunks * PC, pc = FC_MIN(PC, P - p0);
                FC_FN(im2col)(s, x + n * s->c_in * s->h * s->w, g * cin_g, (g + 1) * cin_g, p0, p0 + pc, col);
                k->gemm_nt_dot(M, K, pc, gy + (n * s->c_out + g * M) * P + p0, P, col, pc,
                               partial + slot * size + g * M * K, K, u > u0);
            }
        }
        fc_free(col);
    }
    if (partial != gw) {
        if (status == FC_OK) FC_FN(reduce_slots)(s, partial, slots, gw);
        fc_free(partial);
    }
    return status;
}

/* Grad-weight as an indirect GEMM, the forward's kernel turned around:
 *   gw^T[k][m] = sum over pixels p of x[tap k of pixel p] * gy[m][p]
 * A tile's rows are 6 taps, each read at its corner in the image (or its
 * frame, as in the forward) plus pixel p's offset; its columns are output
 * channels, from gy^T packed in panels per block of FC_GW_PIXEL_BLOCK
 * pixels and reused by every tap. So the image is never unfolded: the
 * im2col + packed GEMM this replaced spent as long writing and re-reading
 * columns as multiplying. A block's panel (128 KiB at 32 f32 or 16 f64
 * columns) is streamed from L2 by every tap tile. A tile of 6 taps by 32
 * channels is stored into gw's own layout, 6 taps a row, so no transpose
 * of all of gw follows (on 512 x 512 x 3x3 kernels it took a tenth of the
 * time).
 *
 * Two ways to share the work among threads, both summing every element of
 * gw in an order fixed by the shape:
 *  - by slots: a slot owns a run of whole images, packs their gy^T itself
 *    and sums into its own copy of gw; the copies are added in slot
 *    order (reduce_slots). Costs up to SLOTS copies of gw.
 *  - by taps: gy^T is packed for the whole batch first, then a task owns a
 *    range of gw's taps and sums every image into them in order,
 *    framing only the channels its taps read (gw_by_taps). Costs a packed
 *    copy of gy, which every task reads, and no copies of gw.
 * conv2d.c's grad_weight_by_taps chooses between them. */
#define FC_GW_PIXEL_BLOCK 1024

typedef struct {
    int64_t M, K, panels; /* channels and taps per group, B panels */
    int64_t PB;           /* pixels per block: rows of a packed gy^T */
} gw_indirect;

/* Packs gy^T for `pc` pixels of one group from pixel q0 on, counting the
 * batch's pixels in a row (image q / P, pixel q % P): panel pn holds them as
 * rows of its kernel's width of channels, zero past M. gyg is gy's first
 * channel of the group. */
static void FC_FN(pack_gy_block)(FC_FN(fc_iukernel) u, const gw_indirect *d, const fc_conv2d_shape *s,
                                 const FC_T *gyg, int64_t q0, int64_t pc, FC_T *dst) {
    const int64_t P = PIXELS(s);
    for (int64_t pn = 0; pn < d->panels; pn++) {
        const int64_t cols = FC_MIN(u.nr, d->M - pn * u.nr), width = FC_FN(panel_iukernel)(u, pn, d->M).nr;
        FC_T *panel = dst + pn * d->PB * u.nr;
        for (int64_t j = 0; j < width; j++)
            for (int64_t k = 0, n = q0 / P, p = q0 % P; k < pc; k++) {
                panel[k * width + j] = j < cols ? gyg[(n * s->c_out + pn * u.nr + j) * P + p] : 0;
                if (++p == P) p = 0, n++;
            }
    }
}

/* Sums one block of pc pixels into taps [k0, k1) of a group's gw
 * (out[m*K + k]), storing instead of adding when `first`: tap k of the
 * block's pixel q is base[tap[k] + pix[q]]. */
static void FC_FN(gw_block)(FC_FN(fc_iukernel) u, const gw_indirect *d, const FC_T *base, const ptrdiff_t *tap,
                            const ptrdiff_t *pix, int64_t pc, const FC_T *packed, int64_t k0, int64_t k1,
                            int first, FC_T *out) {
    for (int64_t pn = 0; pn < d->panels; pn++) {
        const FC_FN(fc_iukernel) pk = FC_FN(panel_iukernel)(u, pn, d->M);
        const int64_t cols = FC_MIN(u.nr, d->M - pn * u.nr), width = pk.nr;
        for (int64_t kt = k0; kt < k1; kt += FC_MR) {
            const int64_t rows = FC_MIN((int64_t)FC_MR, k1 - kt);
            const FC_T *a[FC_MR];
            for (int i = 0; i < FC_MR; i++) a[i] = base + tap[FC_MIN(kt + i, k1 - 1)];
            FC_T tile[FC_MR * FC_NR_MAX];
            pk.fn((size_t)pc, a, pix, packed + pn * d->PB * u.nr, tile, NULL, 0);
            FC_T *o = out + pn * u.nr * d->K + kt;
            for (int64_t j = 0; j < cols; j++)
                for (int64_t i = 0; i < rows; i++) o[j * d->K + i] = (first ? 0 : o[j * d->K + i]) + tile[i * width + j];
        }
    }
}

/* By slots: a slot owns a run of whole images, packs their gy^T block by
 * block and sums into its own copy of gw (partial, SLOTS copies apart). */
static int FC_FN(gw_by_slots)(FC_FN(fc_iukernel) u, const gw_indirect *d, const fc_conv2d_shape *s, const FC_T *gy,
                              const FC_T *x, int64_t slots, FC_T *partial) {
    const int64_t cin_g = GROUP_IN(s), P = PIXELS(s), hw = s->h * s->w, size = s->c_out * d->K;
    int64_t fh, fw;
    const int framed = conv_frame(s, &fh, &fw);
    ptrdiff_t *tap = fc_alloc((size_t)d->K * sizeof(ptrdiff_t)), *pix = fc_alloc((size_t)P * sizeof(ptrdiff_t));
    if (!tap || !pix) {
        fc_free(tap), fc_free(pix);
        return FC_ERR_NOMEM;
    }
    indirect_offsets(s, cin_g, fh * fw, fw, tap);
    pixel_offsets(s, 1, 0, fw, pix);
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(slots * s->groups, 2.0 * d->M * d->K * P * s->n / slots)))
    {
        FC_T *frame = framed ? fc_scratch((size_t)(cin_g * fh * fw) * sizeof(FC_T), 1, &status) : NULL;
        FC_T *bpack = fc_scratch((size_t)(d->panels * u.nr * d->PB) * sizeof(FC_T), 0, &status);
        FC_OMP(for schedule(static))
        for (int64_t t = 0; t < slots * s->groups; t++) {
            if ((framed && !frame) || !bpack) continue;
            const int64_t slot = t / s->groups, g = t % s->groups;
            const int64_t n0 = s->n * slot / slots, n1 = s->n * (slot + 1) / slots;
            for (int64_t n = n0; n < n1; n++) {
                const FC_T *image = x + (n * s->c_in + g * cin_g) * hw;
                if (framed) FC_FN(frame_planes)(s, image, cin_g, fh, fw, frame), image = frame;
                for (int64_t p0 = 0; p0 < P; p0 += d->PB) {
                    const int64_t pc = FC_MIN(d->PB, P - p0);
                    FC_FN(pack_gy_block)(u, d, s, gy + g * d->M * P, n * P + p0, pc, bpack);
                    FC_FN(gw_block)(u, d, image, tap, pix + p0, pc, bpack, 0, d->K, n == n0 && p0 == 0,
                                    partial + slot * size + g * d->M * d->K);
                }
            }
        }
        fc_free(frame);
        fc_free(bpack);
    }
    fc_free(tap), fc_free(pix);
    return status;
}

/* By taps: gy^T is packed for the whole batch first, its pixels counted
 * across images, so one kernel call sums a block of up to PB pixels of
 * several images (a 7x7 layer's 49 would make short calls). A task owns a
 * range of gw's taps and reads its channels of every image from
 * one frame, plane-major (channel, image), or from x in place. */
static int FC_FN(gw_by_taps)(FC_FN(fc_iukernel) u, const gw_indirect *d, const fc_conv2d_shape *s, const FC_T *gy,
                             const FC_T *x, FC_T *gw) {
    const int64_t cin_g = GROUP_IN(s), taps = s->kh * s->kw, hw = s->h * s->w, NP = s->n * PIXELS(s);
    const int64_t blocks = (NP + d->PB - 1) / d->PB, block_size = d->panels * u.nr * d->PB;
    int64_t fh, fw;
    const int framed = conv_frame(s, &fh, &fw);
    /* planes cs apart, images is apart: the frame's (channel, image) planes, or x's */
    const int64_t cs = framed ? s->n * fh * fw : hw, is = framed ? fh * fw : s->c_in * hw;
    FC_T *packed = fc_alloc((size_t)(s->groups * blocks * block_size) * sizeof(FC_T));
    ptrdiff_t *tap = fc_alloc((size_t)d->K * sizeof(ptrdiff_t)), *pix = fc_alloc((size_t)NP * sizeof(ptrdiff_t));
    if (!packed || !tap || !pix) {
        fc_free(packed), fc_free(tap), fc_free(pix);
        return FC_ERR_NOMEM;
    }
    indirect_offsets(s, cin_g, cs, fw, tap);
    pixel_offsets(s, s->n, is, fw, pix);
    FC_OMP(parallel for num_threads(fc_threads_for(s->groups * blocks, (double)(d->M * d->PB))) schedule(static))
    for (int64_t t = 0; t < s->groups * blocks; t++) {
        const int64_t g = t / blocks, q0 = t % blocks * d->PB;
        FC_FN(pack_gy_block)(u, d, s, gy + g * d->M * PIXELS(s), q0, FC_MIN(d->PB, NP - q0), packed + t * block_size);
    }
    /* Tasks own whole 6-tap tiles of one group: about two per thread. */
    const int64_t tiles = (d->K + FC_MR - 1) / FC_MR, parts = split_for_threads(s->groups, tiles);
    const int64_t tasks = s->groups * parts;
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * d->M * d->K * NP / parts)))
    {
        /* a frame for the channels of the task's taps, all images */
        const int64_t most = (tiles + parts - 1) / parts * FC_MR / taps + 2;
        FC_T *frame = framed ? fc_scratch((size_t)(FC_MIN(most, cin_g) * cs) * sizeof(FC_T), 1, &status) : NULL;
        FC_OMP(for schedule(static))
        for (int64_t t = 0; t < tasks; t++) {
            if (framed && !frame) continue;
            const int64_t g = t / parts, part = t % parts;
            const int64_t k0 = tiles * part / parts * FC_MR, k1 = FC_MIN(d->K, tiles * (part + 1) / parts * FC_MR);
            const int64_t c0 = k0 / taps, c1 = (k1 + taps - 1) / taps; /* the channels they read */
            const FC_T *base = x + g * cin_g * hw;
            if (framed) {
                for (int64_t c = c0; c < c1; c++)
                    for (int64_t n = 0; n < s->n; n++)
                        FC_FN(frame_planes)(s, x + (n * s->c_in + g * cin_g + c) * hw, 1, fh, fw,
                                            frame + (c - c0) * cs + n * is);
                base = frame - c0 * cs; /* tap offsets count from channel 0 */
            }
            for (int64_t b = 0; b < blocks; b++) {
                const int64_t q0 = b * d->PB;
                FC_FN(gw_block)(u, d, base, tap, pix + q0, FC_MIN(d->PB, NP - q0), packed + (g * blocks + b) * block_size,
                                k0, k1, b == 0, gw + g * d->M * d->K);
            }
        }
        fc_free(frame);
    }
    fc_free(packed), fc_free(tap), fc_free(pix);
    return status;
}

static int FC_FN(fc_conv2d_grad_weight_indirect)(const fc_conv2d_shape *s, const FC_T *gy,
                                                 const FC_T *x, int by_taps, FC_T *gw) {
    const FC_FN(fc_iukernel) u = FC_FN(kernels)()->igemm;
    const int64_t M = GROUP_OUT(s), K = GROUP_IN(s) * s->kh * s->kw, size = s->c_out * K;
    const gw_indirect d = {M, K, (M + u.nr - 1) / u.nr, FC_MIN(s->n * PIXELS(s), (int64_t)FC_GW_PIXEL_BLOCK)};
    const int64_t slots = FC_MIN((int64_t)SLOTS, s->n);
    if (by_taps) return FC_FN(gw_by_taps)(u, &d, s, gy, x, gw);
    FC_T *partial = fc_alloc((size_t)(slots * size) * sizeof(FC_T));
    if (!partial) return FC_ERR_NOMEM;
    const int status = FC_FN(gw_by_slots)(u, &d, s, gy, x, slots, partial);
    if (status == FC_OK) FC_FN(reduce_slots)(s, partial, slots, gw);
    fc_free(partial);
    return status;
}
