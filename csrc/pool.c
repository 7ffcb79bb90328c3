/* 2-D pooling, forward and backward (geometry in fastconv.h).
 * Family file: instantiated by f32.c and f64.c (see common.h).
 *
 * Threads own planes. Within a plane the kernels sweep an output row tap
 * by tap, each tap a vector loop across the row (max: compare-and-select;
 * average: sums over a zero-padded row, separated into rows and columns),
 * so only windows clipped by the input's edge are visited one at a time.
 * Each forward has a plain, checked-per-tap _ref beside it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fastconv.h"
#include "kernels.h"

/* PyTorch's average-pool divisor is a product of a row and a column
 * extent: the window (from o*stride - pad) counts padding up to in + pad,
 * never beyond, or with count_include_pad off only the input it covers. */
static int64_t avg_extent(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t in, int64_t count_pad) {
    const int64_t start = o * stride - pad, end = FC_MIN(start + k, in + pad);
    return count_pad ? end - start : FC_MIN(end, in) - FC_MAX(start, (int64_t)0);
}

static int64_t avg_divisor(const fc_pool2d_shape *s, int64_t oh, int64_t ow) {
    if (s->divisor > 0) return s->divisor;
    return avg_extent(oh, s->stride_h, s->pad_top, s->kh, s->h, s->count_include_pad) *
           avg_extent(ow, s->stride_w, s->pad_left, s->kw, s->w, s->count_include_pad);
}

/* ------------------------------------------------------------ max pool */

/* The first maximum in row-major window order wins; a NaN always wins
 * (so it propagates), as in PyTorch. */
static void FC_FN(fc_max_pool2d_forward_ref)(const fc_pool2d_shape *s, const FC_T *x, FC_T *y,
                                             int64_t *indices) {
    for (int64_t pl = 0; pl < s->planes; pl++)
        for (int64_t oh = 0; oh < s->out_h; oh++)
            for (int64_t ow = 0; ow < s->out_w; ow++) {
                FC_T best = -INFINITY;
                int64_t arg = -1;
                for (int64_t i = 0; i < s->kh; i++)
                    for (int64_t j = 0; j < s->kw; j++) {
                        const int64_t ih = oh * s->stride_h - s->pad_top + i * s->dil_h;
                        const int64_t iw = ow * s->stride_w - s->pad_left + j * s->dil_w;
                        if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w) continue;
                        const FC_T v = x[(pl * s->h + ih) * s->w + iw];
                        if (arg < 0 || v > best || v != v) best = v, arg = ih * s->w + iw;
                    }
                const int64_t o = (pl * s->out_h + oh) * s->out_w + ow;
                y[o] = best;
                if (indices) indices[o] = arg < 0 ? 0 : arg;
            }
}

/* Window taps i in [*lo, *hi) whose row start + i*dil lies in [0, in). */
static inline void window_taps(int64_t start, int64_t k, int64_t dil, int64_t in, int64_t *lo, int64_t *hi) {
    *lo = start >= 0 ? 0 : fc_ceildiv(-start, dil);
    *hi = start + (k - 1) * dil < in ? k : fc_floordiv(in - 1 - start, dil) + 1;
    if (*hi < *lo) *hi = *lo;
}

/* Every output column's window, clipped once per call rather than once
 * per output: taps [lo[ow], hi[ow]) of the kernel's width, and the column
 * part of 1 / the average-pool divisor (1 with a divisor override), so an
 * output costs two multiplies instead of a division. Columns [a, b) are the
 * interior, whose whole window lies inside the input: there every output
 * reads the same taps, so the kernels sweep a row tap by tap with vector
 * loops, and only the few border columns go one window at a time. */
typedef struct {
    int64_t *lo, *hi;
    FC_T *inv;
    int64_t a, b;
} pool_columns;

static int pool_columns_make(const fc_pool2d_shape *s, pool_columns *cols) {
    cols->lo = fc_alloc(2 * (size_t)s->out_w * sizeof(int64_t) + (size_t)s->out_w * sizeof(FC_T));
    if (!cols->lo) return FC_ERR_NOMEM;
    cols->hi = cols->lo + s->out_w;
    cols->inv = (FC_T *)(cols->hi + s->out_w);
    for (int64_t ow = 0; ow < s->out_w; ow++) {
        window_taps(ow * s->stride_w - s->pad_left, s->kw, s->dil_w, s->w, &cols->lo[ow], &cols->hi[ow]);
        cols->inv[ow] = s->divisor > 0
            ? 1 : (FC_T)(1.0 / (double)avg_extent(ow, s->stride_w, s->pad_left, s->kw, s->w, s->count_include_pad));
    }
    fc_valid_range(-s->pad_left, s->stride_w, s->w - (s->kw - 1) * s->dil_w, s->out_w, &cols->a, &cols->b);
    return FC_OK;
}

/* The row part of 1 / the average-pool divisor, for output row oh. */
static FC_T FC_FN(avg_row_reciprocal)(const fc_pool2d_shape *s, int64_t oh) {
    if (s->divisor > 0) return (FC_T)1 / (FC_T)s->divisor;
    return (FC_T)1 / (FC_T)avg_extent(oh, s->stride_h, s->pad_top, s->kh, s->h, s->count_include_pad);
}

/* Max and argmax of one border output's window, rows [ilo, ihi) of the
 * kernel starting at input row h0, columns clipped by `cols`. */
static inline void FC_FN(max_window)(const fc_pool2d_shape *s, const pool_columns *cols, const FC_T *xp,
                                     int64_t h0, int64_t ilo, int64_t ihi, int64_t ow, FC_T *y, int64_t *arg) {
    const int64_t w0 = ow * s->stride_w - s->pad_left, jlo = cols->lo[ow], jhi = cols->hi[ow];
    FC_T best = -INFINITY;
    int64_t at = 0;
    if (ilo < ihi && jlo < jhi) {
        at = (h0 + ilo * s->dil_h) * s->w + w0 + jlo * s->dil_w;
        best = xp[at];
    }
    for (int64_t i = ilo; i < ihi; i++)
        for (int64_t j = jlo; j < jhi; j++) {
            const int64_t pos = (h0 + i * s->dil_h) * s->w + w0 + j * s->dil_w;
            const FC_T v = xp[pos];
            if (v > best || v != v) best = v, at = pos;
        }
    *y = best;
    *arg = at;
}

/* Taps at input offsets b0 and then b0 + d (d = 0: a single tap) of max
 * pooling over outputs [a, b) of a row: a compare-and-select per output
 * and tap, a NaN always taken. Pairing taps matters for stride 2: one tap
 * reads every other input, and a vector loop with such gaps must leave
 * its last iterations to scalar code (lest it read past the end), which
 * on short rows is most of them; two adjacent taps read every input.
 * Inlined with constant stride (1 or 2) and pair distance (1) so that
 * these compile to plain and deinterleaving vector loads, not gathers. */
static inline __attribute__((always_inline)) void FC_FN(max_taps)(
        const FC_T *restrict xp, FC_T *restrict yr, int64_t *restrict ir, int64_t a, int64_t b,
        int64_t b0, const int64_t d, const int64_t sw) {
    for (int64_t ow = a; ow < b; ow++) {
        FC_T best = yr[ow];
        int64_t at = ir[ow];
        const int64_t p0 = b0 + ow * sw, p1 = p0 + d;
        const FC_T v0 = xp[p0], v1 = xp[p1];
        const int take0 = (v0 > best) | (v0 != v0);
        best = take0 ? v0 : best;
        at = take0 ? p0 : at;
        const int take1 = (v1 > best) | (v1 != v1);
        yr[ow] = take1 ? v1 : best;
        ir[ow] = take1 ? p1 : at;
    }
}

/* Interior outputs [a, b) of one output row, their taps visited in window
 * order (rows of the kernel from input offset `first`, `step` apart):
 * the reference's order, so the first maximum wins ties. A function of
 * its own (a vector loop), so that the vectorizer sees the loops alone
 * (inlined into the plane loop, GCC 12 vectorized them at half width or
 * not at all). */
FC_VECTOR_LOOP(max_row, (const FC_T *restrict xp, FC_T *restrict yr, int64_t *restrict ir, int64_t a, int64_t b,
                         int64_t first, int64_t step, int64_t rows, int64_t kw, int64_t dw, int64_t sw),
               (xp, yr, ir, a, b, first, step, rows, kw, dw, sw)) {
    if (rows == 2 && kw == 2 && dw == 1 && sw == 2) { /* small CNNs' pool, in one pass */
        for (int64_t ow = a; ow < b; ow++) {
            yr[ow] = -INFINITY, ir[ow] = first + ow * 2;
            FC_FN(max_taps)(xp, yr, ir, ow, ow + 1, first, 1, 2);
            FC_FN(max_taps)(xp, yr, ir, ow, ow + 1, first + step, 1, 2);
        }
        return;
    }
    for (int64_t ow = a; ow < b; ow++) yr[ow] = -INFINITY, ir[ow] = first + ow * sw;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < kw; j += 2) {
            const int64_t b0 = first + i * step + j * dw, d = j + 1 < kw ? dw : 0;
            if (sw == 2 && d == 1) FC_FN(max_taps)(xp, yr, ir, a, b, b0, 1, 2);
            else if (sw == 1) FC_FN(max_taps)(xp, yr, ir, a, b, b0, d, 1);
            else FC_FN(max_taps)(xp, yr, ir, a, b, b0, d, sw);
        }
}

/* Lanes in a 64-byte vector, the widest any ISA's variant uses. */
#define POOL_LANES ((int64_t)(64 / sizeof(FC_T)))

/* One plane of max pooling: each row's interior by max_row, its other
 * outputs window by window. Indices go to `ip` with row stride ip_stride;
 * 0 makes them scratch (out_w + POOL_LANES long).
 *
 * Rows are short (14 outputs for a 28-wide 2x2 pool) and a vector loop's
 * scalar remainder costs more than its vectors, so where it stays inside
 * the plane the interior is rounded up to whole vectors: the extra lanes
 * read inputs of this plane and write throwaway results into this row's
 * right border or the next row, both written later (rows go in order,
 * borders after interiors). */
static void FC_FN(max_pool_plane)(const fc_pool2d_shape *s, const pool_columns *cols, const FC_T *xp,
                                  FC_T *yp, int64_t *ip, int64_t ip_stride) {
    const int64_t W = s->w, kw = s->kw, dh = s->dil_h, dw = s->dil_w, sw = s->stride_w;
    const int64_t H = s->h, OH = s->out_h, OW = s->out_w;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    for (int64_t oh = 0; oh < OH; oh++) {
        const int64_t h0 = oh * s->stride_h - s->pad_top;
        int64_t ilo, ihi;
        window_taps(h0, s->kh, dh, H, &ilo, &ihi);
        FC_T *yr = yp + oh * OW;
        int64_t *ir = ip + oh * ip_stride;
        const int64_t a = ilo < ihi ? cols->a : 0, b = ilo < ihi ? cols->b : 0;
        const int64_t first = (h0 + ilo * dh) * W - s->pad_left, rows = ihi - ilo;
        const int64_t whole = a + (b - a + POOL_LANES - 1) / POOL_LANES * POOL_LANES;
        const int64_t last_read = first + (rows - 1) * dh * W + (kw - 1) * dw + (whole - 1) * sw;
        const int64_t end = oh * OW + whole <= OH * OW && last_read < H * W ? whole : b;
        if (a < b) k->max_row(xp, yr, ir, a, end, first, dh * W, rows, kw, dw, sw);
        for (int64_t ow = 0; ow < a; ow++) FC_FN(max_window)(s, cols, xp, h0, ilo, ihi, ow, &yr[ow], &ir[ow]);
        for (int64_t ow = b; ow < OW; ow++) FC_FN(max_window)(s, cols, xp, h0, ilo, ihi, ow, &yr[ow], &ir[ow]);
    }
}

/* Max pooling at equal strides with no padding, every window inside the
 * input, on planes whose rows are short: output (oh, ow)'s window starts
 * at input stride * (oh * W + ow), so with the outputs W apart (as wide
 * as the input) each pair of taps is one loop over the plane, q = oh * W
 * + ow, whose lanes past out_w compute windows that are dropped. On rows
 * as short as LeNet-5's (14 and 5 outputs), max_pool_plane spent more in
 * each row's loop setup than in its compares. */
static int max_pool_wide(const fc_pool2d_shape *s) {
    return s->stride_h == s->stride_w && s->pad_top == 0 && s->pad_left == 0 && s->out_w < 2 * POOL_LANES &&
           (s->out_h - 1) * s->stride_h + (s->kh - 1) * s->dil_h < s->h &&
           (s->out_w - 1) * s->stride_w + (s->kw - 1) * s->dil_w < s->w;
}

/* One plane of max_pool_wide's; yw and iw hold (out_h - 1) * W + out_w. */
static void FC_FN(max_pool_plane_wide)(const fc_pool2d_shape *s, const FC_T *xp, FC_T *yp, int64_t *ip,
                                       FC_T *yw, int64_t *iw) {
    const int64_t W = s->w, OW = s->out_w, Q = (s->out_h - 1) * W + OW;
    FC_FN(kernels)()->max_row(xp, yw, iw, 0, Q, 0, s->dil_h * W, s->kh, s->kw, s->dil_w, s->stride_w);
    for (int64_t oh = 0; oh < s->out_h; oh++) {
        memcpy(yp + oh * OW, yw + oh * W, (size_t)OW * sizeof(FC_T));
        if (ip) memcpy(ip + oh * OW, iw + oh * W, (size_t)OW * sizeof(int64_t));
    }
}

static int FC_FN(fc_max_pool2d_forward_direct)(const fc_pool2d_shape *s, const FC_T *x, FC_T *y,
                                             int64_t *indices) {
    const int64_t P = s->out_h * s->out_w, wide = max_pool_wide(s);
    const int64_t Q = (s->out_h - 1) * s->w + s->out_w;
    pool_columns cols;
    if (pool_columns_make(s, &cols) != FC_OK) return FC_ERR_NOMEM;
    int status = FC_OK;
    /* A tap costs a compare, two selects and an index: counted as 16 flops,
     * so LeNet-5's pools (0.06-0.5 M taps) run on the team too. */
    FC_OMP(parallel num_threads(fc_threads_for(s->planes, 16.0 * P * s->kh * s->kw)))
    {
        /* wide: yw and iw; else, without indices, the indices' scratch */
        const size_t size = wide ? (size_t)Q * (sizeof(FC_T) + sizeof(int64_t))
                                 : indices ? 0 : (size_t)(s->out_w + POOL_LANES) * sizeof(int64_t);
        void *scratch = size ? fc_scratch(size, 0, &status) : NULL;
        FC_OMP(for schedule(static))
        for (int64_t plane = 0; plane < s->planes; plane++) {
            const FC_T *xp = x + plane * s->h * s->w;
            int64_t *ip = indices ? indices + plane * P : NULL;
            if (size && !scratch) continue;
            if (wide)
                FC_FN(max_pool_plane_wide)(s, xp, y + plane * P, ip, (FC_T *)((int64_t *)scratch + Q),
                                           scratch);
            else
                FC_FN(max_pool_plane)(s, &cols, xp, y + plane * P, ip ? ip : scratch, ip ? s->out_w : 0);
        }
        fc_free(scratch);
    }
    fc_free(cols.lo);
    return status;
}

int FC_FN(fc_max_pool2d_forward)(const fc_pool2d_shape *s, fc_algorithm algo, const FC_T *x,
                                 FC_T *y, int64_t *indices) {
    FC_CALL_SCOPE;
    if (algo == FC_ALGO_REF) {
        FC_FN(fc_max_pool2d_forward_ref)(s, x, y, indices);
        return FC_OK;
    }
    return FC_FN(fc_max_pool2d_forward_direct)(s, x, y, indices);
}

/* Whether any of n indices lies outside [0, hw): the largest as unsigned
 * (a negative index wraps to a huge one), a reduction that vectorizes. */
FC_VECTOR_LOOP(indices_out_of_range, (const int64_t *restrict idx, int64_t n, int64_t hw, int *out_of_range),
               (idx, n, hw, out_of_range)) {
    uint64_t largest = 0;
    for (int64_t o = 0; o < n; o++) largest = (uint64_t)idx[o] > largest ? (uint64_t)idx[o] : largest;
    *out_of_range = largest >= (uint64_t)hw;
}

/* Scatters gy to the positions in `indices`; a plane holding an index
 * outside it is reported and left alone, never followed. Validating a
 * plane first leaves the scatter a bare load-add-store per output. */
int FC_FN(fc_max_pool2d_backward)(const fc_pool2d_shape *s, const FC_T *gy,
                                  const int64_t *indices, FC_T *gx) {
    FC_CALL_SCOPE;
    const int64_t P = s->out_h * s->out_w, HW = s->h * s->w;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    int status = FC_OK;
    /* memory-bound: clearing and scattering an element costs about what 8
     * flops of the arithmetic fc_threads_for's threshold was set for do */
    FC_OMP(parallel for num_threads(fc_threads_for(s->planes, 8.0 * HW)) schedule(static))
    for (int64_t pl = 0; pl < s->planes; pl++) {
        FC_T *restrict g = gx + pl * HW;
        const int64_t *restrict idx = indices + pl * P;
        const FC_T *restrict gyp = gy + pl * P;
        memset(g, 0, (size_t)HW * sizeof(FC_T));
        int bad;
        k->indices_out_of_range(idx, P, HW, &bad);
        if (bad) {
            FC_OMP(atomic write)
            status = FC_ERR_INDEX;
            continue;
        }
        for (int64_t o = 0; o < P; o++) g[idx[o]] += gyp[o];
    }
    return status;
}

/* ------------------------------------------------------------ avg pool */

static void FC_FN(fc_avg_pool2d_forward_ref)(const fc_pool2d_shape *s, const FC_T *x, FC_T *y) {
    for (int64_t pl = 0; pl < s->planes; pl++)
        for (int64_t oh = 0; oh < s->out_h; oh++)
            for (int64_t ow = 0; ow < s->out_w; ow++) {
                double sum = 0;
                for (int64_t i = 0; i < s->kh; i++)
                    for (int64_t j = 0; j < s->kw; j++) {
                        const int64_t ih = oh * s->stride_h - s->pad_top + i;
                        const int64_t iw = ow * s->stride_w - s->pad_left + j;
                        if (ih >= 0 && ih < s->h && iw >= 0 && iw < s->w) sum += x[(pl * s->h + ih) * s->w + iw];
                    }
                y[(pl * s->out_h + oh) * s->out_w + ow] = (FC_T)(sum / avg_divisor(s, oh, ow));
            }
}

/* Average pooling works on rows padded with zeros: a row buffer holds
 * input column iw at pad_left + iw and zeros around it, enough that every
 * output column's window, rounded up to whole vectors (wide_w outputs),
 * lies inside. Padding adds nothing to a sum, so every output column is
 * the same loop over kw taps, with no border cases; the divisor (which
 * does count padding, or not) is applied afterwards. */
typedef struct {
    int64_t wide_w, len;
} avg_rows;

static avg_rows avg_rows_for(const fc_pool2d_shape *s) {
    avg_rows r;
    r.wide_w = (s->out_w + POOL_LANES - 1) / POOL_LANES * POOL_LANES;
    r.len = FC_MAX(s->pad_left + s->w, (r.wide_w - 1) * s->stride_w + s->kw);
    return r;
}

/* Window sums of a padded row: out[ow] = sum of row[ow*sw + j], j < kw.
 * Taps go in pairs (adjacent inputs, so stride 2 reads every input and
 * vectorizes without gaps), inlined per stride; see max_taps. */
static inline __attribute__((always_inline)) void FC_FN(sum_taps)(const FC_T *restrict row, FC_T *restrict out,
                                                                  int64_t n, int64_t kw, const int64_t sw) {
    for (int64_t ow = 0; ow < n; ow++) out[ow] = 0;
    for (int64_t j = 0; j + 1 < kw; j += 2)
        for (int64_t ow = 0; ow < n; ow++) out[ow] += row[ow * sw + j] + row[ow * sw + j + 1];
    if (kw % 2)
        for (int64_t ow = 0; ow < n; ow++) out[ow] += row[ow * sw + kw - 1];
}

FC_VECTOR_LOOP(avg_row, (const FC_T *restrict row, FC_T *restrict out, int64_t n, int64_t kw, int64_t sw),
               (row, out, n, kw, sw)) {
    if (sw == 1) FC_FN(sum_taps)(row, out, n, kw, 1);
    else if (sw == 2) FC_FN(sum_taps)(row, out, n, kw, 2);
    else FC_FN(sum_taps)(row, out, n, kw, sw);
}

/* The adjoint: row[ow*sw + j] += share[ow] for every tap j. */
static inline __attribute__((always_inline)) void FC_FN(spread_taps)(const FC_T *restrict share, FC_T *restrict row,
                                                                     int64_t n, int64_t kw, const int64_t sw) {
    for (int64_t j = 0; j + 1 < kw; j += 2)
        for (int64_t ow = 0; ow < n; ow++) row[ow * sw + j] += share[ow], row[ow * sw + j + 1] += share[ow];
    if (kw % 2)
        for (int64_t ow = 0; ow < n; ow++) row[ow * sw + kw - 1] += share[ow];
}

FC_VECTOR_LOOP(avg_row_adjoint, (const FC_T *restrict share, FC_T *restrict row, int64_t n, int64_t kw,
                                 int64_t sw), (share, row, n, kw, sw)) {
    if (sw == 1) FC_FN(spread_taps)(share, row, n, kw, 1);
    else if (sw == 2) FC_FN(spread_taps)(share, row, n, kw, 2);
    else FC_FN(spread_taps)(share, row, n, kw, sw);
}

/* One plane, separated: per output row, sum the window's input rows into
 * the padded row (vector adds), take its window sums, scale by 1/divisor. */
static void FC_FN(avg_pool_plane)(const fc_pool2d_shape *s, const FC_T *inv_col, avg_rows r,
                                  const FC_T *xp, FC_T *yp, FC_T *row, FC_T *sums) {
    const int64_t W = s->w, OW = s->out_w;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    FC_T *restrict mid = row + s->pad_left;
    for (int64_t oh = 0; oh < s->out_h; oh++) {
        const int64_t h0 = oh * s->stride_h - s->pad_top;
        int64_t ilo, ihi;
        window_taps(h0, s->kh, 1, s->h, &ilo, &ihi);
        for (int64_t iw = 0; iw < W; iw++) mid[iw] = 0;
        for (int64_t i = ilo; i < ihi; i++) {
            const FC_T *restrict in = xp + (h0 + i) * W;
            for (int64_t iw = 0; iw < W; iw++) mid[iw] += in[iw];
        }
        k->avg_row(row, sums, r.wide_w, s->kw, s->stride_w);
        const FC_T inv_row = FC_FN(avg_row_reciprocal)(s, oh);
        FC_T *restrict yr = yp + oh * OW;
        for (int64_t ow = 0; ow < OW; ow++) yr[ow] = sums[ow] * inv_row * inv_col[ow];
    }
}

/* One plane of the gradient, the forward's adjoint separated the same
 * way: every output row's shares are spread along its own padded row
 * (rows[oh]); then each input row is written once, as the sum of the
 * spread rows of the windows covering it. */
static void FC_FN(avg_pool_backward_plane)(const fc_pool2d_shape *s, const FC_T *inv_col, avg_rows r,
                                           const FC_T *gyp, FC_T *gp, FC_T *rows, FC_T *share) {
    const int64_t H = s->h, W = s->w, OH = s->out_h, OW = s->out_w, sh = s->stride_h, pt = s->pad_top;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    for (int64_t oh = 0; oh < OH; oh++) {
        FC_T *restrict row = rows + oh * r.len;
        const FC_T inv_row = FC_FN(avg_row_reciprocal)(s, oh);
        for (int64_t ow = 0; ow < OW; ow++) share[ow] = gyp[oh * OW + ow] * inv_row * inv_col[ow];
        for (int64_t iw = 0; iw < r.len; iw++) row[iw] = 0;
        k->avg_row_adjoint(share, row, r.wide_w, s->kw, s->stride_w);
    }
    for (int64_t ih = 0; ih < H; ih++) {
        /* Output rows oh with oh*sh - pt <= ih <= oh*sh - pt + kh - 1. */
        const int64_t first = FC_MAX(fc_ceildiv(ih + pt - s->kh + 1, sh), (int64_t)0);
        const int64_t last = FC_MIN(fc_floordiv(ih + pt, sh), OH - 1);
        FC_T *restrict out = gp + ih * W;
        for (int64_t iw = 0; iw < W; iw++) out[iw] = 0;
        for (int64_t oh = first; oh <= last; oh++) {
            const FC_T *restrict spread = rows + oh * r.len + s->pad_left;
            for (int64_t iw = 0; iw < W; iw++) out[iw] += spread[iw];
        }
    }
}

static int FC_FN(fc_avg_pool2d_forward_direct)(const fc_pool2d_shape *s, const FC_T *x, FC_T *y) {
    const avg_rows r = avg_rows_for(s);
    pool_columns cols;
    if (pool_columns_make(s, &cols) != FC_OK) return FC_ERR_NOMEM;
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(s->planes, (double)s->out_h * s->out_w * s->kh * s->kw)))
    {
        FC_T *row = fc_scratch((size_t)(r.len + r.wide_w) * sizeof(FC_T), 1, &status); /* the padding stays zero */
        FC_OMP(for schedule(static))
        for (int64_t plane = 0; plane < s->planes; plane++)
            if (row)
                FC_FN(avg_pool_plane)(s, cols.inv, r, x + plane * s->h * s->w, y + plane * s->out_h * s->out_w,
                                      row, row + r.len);
        fc_free(row);
    }
    fc_free(cols.lo);
    return status;
}

int FC_FN(fc_avg_pool2d_forward)(const fc_pool2d_shape *s, fc_algorithm algo, const FC_T *x, FC_T *y) {
    FC_CALL_SCOPE;
    if (algo == FC_ALGO_REF) {
        FC_FN(fc_avg_pool2d_forward_ref)(s, x, y);
        return FC_OK;
    }
    return FC_FN(fc_avg_pool2d_forward_direct)(s, x, y);
}

int FC_FN(fc_avg_pool2d_backward)(const fc_pool2d_shape *s, const FC_T *gy, FC_T *gx) {
    FC_CALL_SCOPE;
    const avg_rows r = avg_rows_for(s);
    pool_columns cols;
    if (pool_columns_make(s, &cols) != FC_OK) return FC_ERR_NOMEM;
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(s->planes, (double)s->out_h * s->out_w * s->kh * s->kw)))
    {
        /* Shares past out_w stay zero, so the whole-vector lanes spread nothing. */
        FC_T *rows = fc_scratch((size_t)(s->out_h * r.len + r.wide_w) * sizeof(FC_T), 1, &status);
        FC_OMP(for schedule(static))
        for (int64_t plane = 0; plane < s->planes; plane++)
            if (rows)
                FC_FN(avg_pool_backward_plane)(s, cols.inv, r, gy + plane * s->out_h * s->out_w,
                                               gx + plane * s->h * s->w, rows, rows + s->out_h * r.len);
        fc_free(rows);
    }
    fc_free(cols.lo);
    return status;
}

/* ------------------------------------------------------- adaptive avg */

/* Output o of `out` covers input [floor(o*in/out), ceil((o+1)*in/out)). */
static void adaptive_window(int64_t o, int64_t in, int64_t out, int64_t *lo, int64_t *hi) {
    *lo = o * in / out;
    *hi = ((o + 1) * in + out - 1) / out;
}

int FC_FN(fc_adaptive_avg_pool2d_forward)(const fc_pool2d_shape *s, const FC_T *x, FC_T *y) {
    FC_CALL_SCOPE;
    const int64_t P = s->out_h * s->out_w, HW = s->h * s->w;
    FC_OMP(parallel for num_threads(fc_threads_for(s->planes, 2.0 * HW)) schedule(static))
    for (int64_t pl = 0; pl < s->planes; pl++)
        for (int64_t oh = 0; oh < s->out_h; oh++)
            for (int64_t ow = 0; ow < s->out_w; ow++) {
                int64_t h0, h1, w0, w1;
                adaptive_window(oh, s->h, s->out_h, &h0, &h1);
                adaptive_window(ow, s->w, s->out_w, &w0, &w1);
                FC_T sum = 0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) sum += x[pl * HW + ih * s->w + iw];
                y[pl * P + oh * s->out_w + ow] = sum / (FC_T)((h1 - h0) * (w1 - w0));
            }
    return FC_OK;
}

int FC_FN(fc_adaptive_avg_pool2d_backward)(const fc_pool2d_shape *s, const FC_T *gy, FC_T *gx) {
    FC_CALL_SCOPE;
    const int64_t P = s->out_h * s->out_w, HW = s->h * s->w;
    FC_OMP(parallel for num_threads(fc_threads_for(s->planes, 2.0 * HW)) schedule(static))
    for (int64_t pl = 0; pl < s->planes; pl++) {
        memset(gx + pl * HW, 0, (size_t)HW * sizeof(FC_T));
        for (int64_t oh = 0; oh < s->out_h; oh++)
            for (int64_t ow = 0; ow < s->out_w; ow++) {
                int64_t h0, h1, w0, w1;
                adaptive_window(oh, s->h, s->out_h, &h0, &h1);
                adaptive_window(ow, s->w, s->out_w, &w0, &w1);
                const FC_T share = gy[pl * P + oh * s->out_w + ow] / (FC_T)((h1 - h0) * (w1 - w0));
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) gx[pl * HW + ih * s->w + iw] += share;
            }
    }
    return FC_OK;
}
