/* 2-D pooling, forward and backward (geometry in fastconv.h).
 * Family file: instantiated by f32.c and f64.c (see common.h).
 *
 * The kernels visit one output at a time with its window clipped to the
 * input once, so the inner loops carry no bounds checks; threads own
 * planes. Each forward has a plain, checked-per-tap _ref beside it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
 * output costs two multiplies instead of a division. */
typedef struct {
    int64_t *lo, *hi;
    double *inv;
} pool_columns;

static int pool_columns_make(const fc_pool2d_shape *s, pool_columns *cols) {
    cols->lo = malloc(2 * (size_t)s->out_w * sizeof(int64_t) + (size_t)s->out_w * sizeof(double));
    if (!cols->lo) return FC_ERR_NOMEM;
    cols->hi = cols->lo + s->out_w;
    cols->inv = (double *)(cols->hi + s->out_w);
    for (int64_t ow = 0; ow < s->out_w; ow++) {
        window_taps(ow * s->stride_w - s->pad_left, s->kw, s->dil_w, s->w, &cols->lo[ow], &cols->hi[ow]);
        cols->inv[ow] = s->divisor > 0
            ? 1.0 : 1.0 / (double)avg_extent(ow, s->stride_w, s->pad_left, s->kw, s->w, s->count_include_pad);
    }
    return FC_OK;
}

/* The row part of 1 / the average-pool divisor, for output row oh. */
static FC_T FC_FN(avg_row_reciprocal)(const fc_pool2d_shape *s, int64_t oh) {
    if (s->divisor > 0) return (FC_T)1 / (FC_T)s->divisor;
    return (FC_T)1 / (FC_T)avg_extent(oh, s->stride_h, s->pad_top, s->kh, s->h, s->count_include_pad);
}

/* One output at a time with the window clipped once: the running maximum
 * and its index live in registers and update through selects, never a
 * data-dependent branch (random data would mispredict half of them). */
static int FC_FN(fc_max_pool2d_forward_windows)(const fc_pool2d_shape *s, const FC_T *x, FC_T *y,
                                                int64_t *indices) {
    pool_columns cols;
    if (pool_columns_make(s, &cols) != FC_OK) return FC_ERR_NOMEM;
    /* Locals, not s->: stores through the int64_t indices could alias the
     * shape's int64_t fields and force a reload of each on every output. */
    const int64_t H = s->h, W = s->w, kh = s->kh, dh = s->dil_h, dw = s->dil_w;
    const int64_t sh = s->stride_h, sw = s->stride_w, pt = s->pad_top, pl = s->pad_left;
    const int64_t OH = s->out_h, OW = s->out_w, P = OH * OW;
    FC_OMP(parallel for num_threads(fc_threads_for(s->planes, 2.0 * P * kh * s->kw)) schedule(static))
    for (int64_t plane = 0; plane < s->planes; plane++) {
        const FC_T *restrict xp = x + plane * H * W;
        FC_T *restrict yp = y + plane * P;
        int64_t *restrict ip = indices ? indices + plane * P : NULL;
        for (int64_t oh = 0; oh < OH; oh++) {
            const int64_t h0 = oh * sh - pt;
            int64_t ilo, ihi;
            window_taps(h0, kh, dh, H, &ilo, &ihi);
            for (int64_t ow = 0; ow < OW; ow++) {
                const int64_t w0 = ow * sw - pl, jlo = cols.lo[ow], jhi = cols.hi[ow];
                FC_T best = -INFINITY;
                int64_t arg = 0;
                if (ilo < ihi && jlo < jhi) {
                    arg = (h0 + ilo * dh) * W + w0 + jlo * dw;
                    best = xp[arg];
                }
                for (int64_t i = ilo; i < ihi; i++) {
                    const int64_t row = (h0 + i * dh) * W + w0;
                    for (int64_t j = jlo; j < jhi; j++) {
                        const int64_t pos = row + j * dw;
                        const FC_T v = xp[pos];
                        /* Bitwise on purpose: `take ? v : best` compiles to a
                         * branch (random data mispredicts half of them); an
                         * integer mask and a max do not. */
                        const int64_t take = -(int64_t)((v > best) | (v != v));
                        arg ^= (arg ^ pos) & take;
                        best = (v > best) ? v : best;
                        best = (v != v) ? v : best;
                    }
                }
                yp[oh * OW + ow] = best;
                if (ip) ip[oh * OW + ow] = arg;
            }
        }
    }
    free(cols.lo);
    return FC_OK;
}

int FC_FN(fc_max_pool2d_forward)(const fc_pool2d_shape *s, fc_algorithm algo, const FC_T *x,
                                 FC_T *y, int64_t *indices) {
    if (algo == FC_ALGO_REF) {
        FC_FN(fc_max_pool2d_forward_ref)(s, x, y, indices);
        return FC_OK;
    }
    return FC_FN(fc_max_pool2d_forward_windows)(s, x, y, indices);
}

/* Scatters gy to the positions in `indices`; an index outside its plane
 * is reported, never followed. */
int FC_FN(fc_max_pool2d_backward)(const fc_pool2d_shape *s, const FC_T *gy,
                                  const int64_t *indices, FC_T *gx) {
    const int64_t P = s->out_h * s->out_w, HW = s->h * s->w;
    int status = FC_OK;
    FC_OMP(parallel for num_threads(fc_threads_for(s->planes, 4.0 * P)) schedule(static))
    for (int64_t pl = 0; pl < s->planes; pl++) {
        FC_T *restrict g = gx + pl * HW;
        const int64_t *idx = indices + pl * P;
        const FC_T *gyp = gy + pl * P;
        memset(g, 0, (size_t)HW * sizeof(FC_T));
        for (int64_t o = 0; o < P; o++) {
            if (idx[o] < 0 || idx[o] >= HW) {
                FC_OMP(atomic write)
                status = FC_ERR_INDEX;
                break;
            }
            g[idx[o]] += gyp[o];
        }
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

/* Average pooling separates: per output row, sum the window's input rows
 * into one row (a vectorized pass), then each output adds its columns of
 * that row. */
static int FC_FN(fc_avg_pool2d_forward_rows)(const fc_pool2d_shape *s, const FC_T *x, FC_T *y) {
    const int64_t H = s->h, W = s->w, OW = s->out_w, P = s->out_h * OW;
    pool_columns cols;
    if (pool_columns_make(s, &cols) != FC_OK) return FC_ERR_NOMEM;
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(s->planes, (double)P * s->kh * s->kw)))
    {
        FC_T *rowsum = malloc((size_t)W * sizeof(FC_T));
        if (!rowsum) {
            FC_OMP(atomic write)
            status = FC_ERR_NOMEM;
        }
        FC_OMP(for schedule(static))
        for (int64_t plane = 0; plane < s->planes; plane++) {
            if (!rowsum) continue;
            const FC_T *xp = x + plane * H * W;
            for (int64_t oh = 0; oh < s->out_h; oh++) {
                const int64_t h0 = oh * s->stride_h - s->pad_top;
                int64_t ilo, ihi;
                window_taps(h0, s->kh, 1, H, &ilo, &ihi);
                for (int64_t iw = 0; iw < W; iw++) rowsum[iw] = 0;
                for (int64_t i = ilo; i < ihi; i++) {
                    const FC_T *restrict row = xp + (h0 + i) * W;
                    for (int64_t iw = 0; iw < W; iw++) rowsum[iw] += row[iw];
                }
                FC_T *restrict out = y + plane * P + oh * OW;
                const FC_T inv_row = FC_FN(avg_row_reciprocal)(s, oh);
                for (int64_t ow = 0; ow < OW; ow++) {
                    const FC_T *win = rowsum + ow * s->stride_w - s->pad_left;
                    FC_T sum = 0;
                    for (int64_t j = cols.lo[ow]; j < cols.hi[ow]; j++) sum += win[j];
                    out[ow] = sum * inv_row * (FC_T)cols.inv[ow];
                }
            }
        }
        free(rowsum);
    }
    free(cols.lo);
    return status;
}

int FC_FN(fc_avg_pool2d_forward)(const fc_pool2d_shape *s, fc_algorithm algo, const FC_T *x, FC_T *y) {
    if (algo == FC_ALGO_REF) {
        FC_FN(fc_avg_pool2d_forward_ref)(s, x, y);
        return FC_OK;
    }
    return FC_FN(fc_avg_pool2d_forward_rows)(s, x, y);
}

/* The adjoint of the forward, separated the same way: each output row's
 * shares are spread along one row, which is then added to every input row
 * of the window. A thread owns whole planes. */
int FC_FN(fc_avg_pool2d_backward)(const fc_pool2d_shape *s, const FC_T *gy, FC_T *gx) {
    const int64_t H = s->h, W = s->w, OW = s->out_w, P = s->out_h * OW;
    pool_columns cols;
    if (pool_columns_make(s, &cols) != FC_OK) return FC_ERR_NOMEM;
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(s->planes, (double)P * s->kh * s->kw)))
    {
        FC_T *rowg = malloc((size_t)W * sizeof(FC_T));
        if (!rowg) {
            FC_OMP(atomic write)
            status = FC_ERR_NOMEM;
        }
        FC_OMP(for schedule(static))
        for (int64_t plane = 0; plane < s->planes; plane++) {
            if (!rowg) continue;
            FC_T *g = gx + plane * H * W;
            memset(g, 0, (size_t)(H * W) * sizeof(FC_T));
            for (int64_t oh = 0; oh < s->out_h; oh++) {
                const int64_t h0 = oh * s->stride_h - s->pad_top;
                int64_t ilo, ihi;
                window_taps(h0, s->kh, 1, H, &ilo, &ihi);
                if (ilo == ihi) continue;
                for (int64_t iw = 0; iw < W; iw++) rowg[iw] = 0;
                const FC_T *gyr = gy + plane * P + oh * OW;
                const FC_T inv_row = FC_FN(avg_row_reciprocal)(s, oh);
                for (int64_t ow = 0; ow < OW; ow++) {
                    const FC_T share = gyr[ow] * inv_row * (FC_T)cols.inv[ow];
                    FC_T *win = rowg + ow * s->stride_w - s->pad_left;
                    for (int64_t j = cols.lo[ow]; j < cols.hi[ow]; j++) win[j] += share;
                }
                for (int64_t i = ilo; i < ihi; i++) {
                    FC_T *restrict row = g + (h0 + i) * W;
                    for (int64_t iw = 0; iw < W; iw++) row[iw] += rowg[iw];
                }
            }
        }
        free(rowg);
    }
    free(cols.lo);
    return status;
}

/* ------------------------------------------------------- adaptive avg */

/* Output o of `out` covers input [floor(o*in/out), ceil((o+1)*in/out)). */
static void adaptive_window(int64_t o, int64_t in, int64_t out, int64_t *lo, int64_t *hi) {
    *lo = o * in / out;
    *hi = ((o + 1) * in + out - 1) / out;
}

int FC_FN(fc_adaptive_avg_pool2d_forward)(const fc_pool2d_shape *s, const FC_T *x, FC_T *y) {
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
