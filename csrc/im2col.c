/* Data movement for the GEMM convolution: im2col and its adjoint col2im,
 * the packer that feeds the GEMM straight from the image (implicit
 * im2col), and the frame and offset table through which the indirect
 * GEMM reads the image in place. Family file: instantiated by f32.c and
 * f64.c (see common.h).
 *
 * One image x[c_in][h][w] and its column matrix col[c_in*kh*kw][out_h*out_w]:
 *   col[(c*kh + i)*kw + j][oh*out_w + ow] = x[c][oh*sh - pt + i*dh][ow*sw - pl + j*dw]
 * (zero outside x). Both directions work on a block of channels [c0, c1)
 * and of pixels [p0, p1) so that no caller needs the whole matrix. */
#include <string.h>

#include "internal.h"

/* Output columns [ow, ow + n) of one output row for one tap: `row` is the
 * input row shifted by the tap's column offset, valid where lo <= ow < hi
 * (elsewhere padding). A zero span, a copy span and a zero span, so the
 * copy is a branch-free loop: this feeds the GEMM and must run near
 * memcpy speed. */
static inline void FC_FN(tap_span)(const FC_T *restrict row, int64_t ow, int64_t n, int64_t lo, int64_t hi,
                                   int64_t sw, FC_T *restrict dst) {
    const int64_t a = FC_MIN(FC_MAX(lo, ow), ow + n), b = FC_MAX(FC_MIN(hi, ow + n), a);
    FC_T *restrict out = dst - ow;
    for (int64_t q = ow; q < a; q++) out[q] = 0;
    if (sw == 1)
        for (int64_t q = a; q < b; q++) out[q] = row[q];
    else
        for (int64_t q = a; q < b; q++) out[q] = row[q * sw];
    for (int64_t q = b; q < ow + n; q++) out[q] = 0;
}

/* One row of col, pixels [p0, p1), for channel plane `x` and tap (i, j). */
static void FC_FN(im2col_row)(const fc_conv2d_shape *s, const FC_T *restrict x, int64_t i,
                              int64_t j, int64_t p0, int64_t p1, FC_T *restrict dst) {
    const int64_t col_off = j * s->dil_w - s->pad_left, OW = s->out_w;
    int64_t lo, hi;
    fc_valid_range(col_off, s->stride_w, s->w, OW, &lo, &hi);
    int64_t oh = p0 / OW, ow0 = p0 % OW;
    for (int64_t p = p0; p < p1; oh++, ow0 = 0) {
        const int64_t n = FC_MIN(OW - ow0, p1 - p);
        const int64_t ih = oh * s->stride_h - s->pad_top + i * s->dil_h;
        if (ih < 0 || ih >= s->h)
            for (int64_t q = 0; q < n; q++) dst[q] = 0;
        else
            FC_FN(tap_span)(x + ih * s->w + col_off, ow0, n, lo, hi, s->stride_w, dst);
        dst += n;
        p += n;
    }
}

/* The adjoint of im2col_row: x[...] += src over the same taps. */
static void FC_FN(col2im_row)(const fc_conv2d_shape *s, const FC_T *restrict src, int64_t i,
                              int64_t j, int64_t p0, int64_t p1, FC_T *restrict x) {
    const int64_t col_off = j * s->dil_w - s->pad_left, sw = s->stride_w, OW = s->out_w;
    int64_t lo, hi;
    fc_valid_range(col_off, sw, s->w, OW, &lo, &hi);
    int64_t oh = p0 / OW, ow0 = p0 % OW;
    for (int64_t p = p0; p < p1; oh++, ow0 = 0) {
        const int64_t ow1 = FC_MIN(OW, ow0 + (p1 - p)), n = ow1 - ow0;
        const int64_t ih = oh * s->stride_h - s->pad_top + i * s->dil_h;
        if (ih >= 0 && ih < s->h) {
            const int64_t a = FC_MIN(FC_MAX(lo, ow0), ow1), b = FC_MAX(FC_MIN(hi, ow1), a);
            FC_T *restrict row = x + ih * s->w + col_off;
            const FC_T *restrict in = src - ow0;
            if (sw == 1)
                for (int64_t ow = a; ow < b; ow++) row[ow] += in[ow];
            else
                for (int64_t ow = a; ow < b; ow++) row[ow * sw] += in[ow];
        }
        src += n;
        p += n;
    }
}

/* col[(c - c0)*kh*kw + i*kw + j][p - p0] for c in [c0, c1), p in [p0, p1). */
static void FC_FN(im2col)(const fc_conv2d_shape *s, const FC_T *x, int64_t c0, int64_t c1,
                          int64_t p0, int64_t p1, FC_T *col) {
    for (int64_t c = c0; c < c1; c++)
        for (int64_t i = 0; i < s->kh; i++)
            for (int64_t j = 0; j < s->kw; j++, col += p1 - p0)
                FC_FN(im2col_row)(s, x + c * s->h * s->w, i, j, p0, p1, col);
}

/* x += col2im(col), the adjoint of im2col over the same block. */
static void FC_FN(col2im)(const fc_conv2d_shape *s, const FC_T *col, int64_t c0, int64_t c1,
                          int64_t p0, int64_t p1, FC_T *x) {
    for (int64_t c = c0; c < c1; c++)
        for (int64_t i = 0; i < s->kh; i++)
            for (int64_t j = 0; j < s->kw; j++, col += p1 - p0)
                FC_FN(col2im_row)(s, col, i, j, p0, p1, x + c * s->h * s->w);
}

static void FC_FN(pack_im2col)(const void *ctx, int64_t r0, int64_t rows, int64_t k0,
                               int64_t kc, int width, FC_T *dst) {
    const FC_FN(fc_im2col_operand) *op = ctx;
    const fc_conv2d_shape *s = op->s;
    const int64_t taps = s->kh * s->kw, OW = s->out_w, p0 = op->p0 + r0;
    for (int64_t k = k0; k < k0 + kc; k++) {
        const int64_t i = (k % taps) / s->kw, j = k % s->kw, col_off = j * s->dil_w - s->pad_left;
        int64_t lo, hi;
        fc_valid_range(col_off, s->stride_w, s->w, OW, &lo, &hi);
        const FC_T *x = op->x + k / taps * s->h * s->w + col_off;
        /* Tap k is row k - k0 of every panel: walk the pixels in pieces that
         * end at an output row's end or a panel's, counting, not dividing. */
        FC_T *panel = dst + (k - k0) * width;
        int64_t oh = p0 / OW, ow = p0 % OW, lane = 0;
        for (int64_t e = 0; e < rows;) {
            const int64_t n = FC_MIN(FC_MIN(OW - ow, width - lane), rows - e);
            const int64_t ih = oh * s->stride_h - s->pad_top + i * s->dil_h;
            if (ih < 0 || ih >= s->h)
                for (int64_t q = 0; q < n; q++) panel[lane + q] = 0;
            else
                FC_FN(tap_span)(x + ih * s->w, ow, n, lo, hi, s->stride_w, panel + lane);
            e += n, ow += n, lane += n;
            if (ow == OW) ow = 0, oh++;
            if (lane == width) lane = 0, panel += kc * width;
        }
        for (; lane > 0 && lane < width; lane++) panel[lane] = 0;
    }
}

/* Indirect im2col, for the indirect GEMMs (gemm.h): the kernel reads
 * pixel p's tap k = (c, i, j) at its window's corner plus
 *   off[k] = c*cs + i*dh*fw + j*dw
 * in an image of planes fw wide and cs apart (cs = fh*fw for one image's
 * planes), so no column matrix or panel is built.
 * Padding is what an image lacks: one whose windows reach outside it is
 * read from a frame, a copy with zeros around it (fh x fw planes, the
 * input at pad_top, pad_left); one whose windows fit is read in place.
 * Returns whether the shape needs the frame; when it does not, fh x fw is
 * h x w. */
static int conv_frame(const fc_conv2d_shape *s, int64_t *fh, int64_t *fw) {
    *fh = FC_MAX(s->pad_top + s->h, (s->out_h - 1) * s->stride_h + (s->kh - 1) * s->dil_h + 1);
    *fw = FC_MAX(s->pad_left + s->w, (s->out_w - 1) * s->stride_w + (s->kw - 1) * s->dil_w + 1);
    return s->pad_top > 0 || s->pad_left > 0 || *fh > s->h || *fw > s->w;
}

/* Copies a row of n elements; inline, as two overlapping vectors, where
 * it is one to two vectors long: the rows of a frame are short (28 floats
 * for MNIST), and a libc call per row took a fifth of a depthwise 3x3
 * forward. */
static inline __attribute__((always_inline)) void FC_FN(copy_row)(FC_T *restrict dst, const FC_T *restrict src,
                                                                  int64_t n) {
    if (n < DOT_LANES || n > 2 * DOT_LANES) {
        memcpy(dst, src, (size_t)n * sizeof(FC_T));
        return;
    }
    const FC_FN(dot_vec) head = *(const FC_FN(dot_vec) *)src, tail = *(const FC_FN(dot_vec) *)(src + n - DOT_LANES);
    *(FC_FN(dot_vec) *)dst = head;
    *(FC_FN(dot_vec) *)(dst + n - DOT_LANES) = tail;
}

/* Copies `channels` planes of x into their places in a frame of fh x fw
 * planes; the frame's border is left as it was (zero). */
static inline __attribute__((always_inline)) void FC_FN(frame_planes)(const fc_conv2d_shape *s,
                                                                      const FC_T *restrict x, int64_t channels,
                                                                      int64_t fh, int64_t fw, FC_T *restrict framed) {
    for (int64_t c = 0; c < channels; c++)
        for (int64_t ih = 0; ih < s->h; ih++)
            FC_FN(copy_row)(framed + (c * fh + s->pad_top + ih) * fw + s->pad_left, x + (c * s->h + ih) * s->w, s->w);
}

/* off[(a*n1 + b)*n2 + c] = a*s0 + b*s1 + c*s2: a 3-D grid of offsets. */
static void grid_offsets(int64_t n0, int64_t s0, int64_t n1, int64_t s1, int64_t n2, int64_t s2, ptrdiff_t *off) {
    for (int64_t a = 0; a < n0; a++)
        for (int64_t b = 0; b < n1; b++)
            for (int64_t c = 0; c < n2; c++) *off++ = (ptrdiff_t)(a * s0 + b * s1 + c * s2);
}

static void indirect_offsets(const fc_conv2d_shape *s, int64_t channels, int64_t cs, int64_t fw, ptrdiff_t *off) {
    grid_offsets(channels, cs, s->kh, s->dil_h * fw, s->kw, s->dil_w, off);
}

static void pixel_offsets(const fc_conv2d_shape *s, int64_t images, int64_t is, int64_t fw, ptrdiff_t *off) {
    grid_offsets(images, is, s->out_h, s->stride_h * fw, s->out_w, s->stride_w, off);
}

int FC_FN(fc_unfold)(const fc_conv2d_shape *s, const FC_T *x, FC_T *cols) {
    FC_CALL_SCOPE;
    const int64_t P = s->out_h * s->out_w, planes = s->n * s->c_in;
    FC_OMP(parallel for num_threads(fc_threads_for(planes, (double)s->kh * s->kw * P)) schedule(static))
    for (int64_t nc = 0; nc < planes; nc++)
        FC_FN(im2col)(s, x + nc * s->h * s->w, 0, 1, 0, P, cols + nc * s->kh * s->kw * P);
    return FC_OK;
}

int FC_FN(fc_fold)(const fc_conv2d_shape *s, const FC_T *cols, FC_T *x) {
    FC_CALL_SCOPE;
    const int64_t P = s->out_h * s->out_w, planes = s->n * s->c_in;
    FC_OMP(parallel for num_threads(fc_threads_for(planes, (double)s->kh * s->kw * P)) schedule(static))
    for (int64_t nc = 0; nc < planes; nc++) {
        memset(x + nc * s->h * s->w, 0, (size_t)(s->h * s->w) * sizeof(FC_T));
        FC_FN(col2im)(s, cols + nc * s->kh * s->kw * P, 0, 1, 0, P, x + nc * s->h * s->w);
    }
    return FC_OK;
}
