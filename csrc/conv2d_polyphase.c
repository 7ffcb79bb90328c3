/* Strided convs whose kernel spans a whole number of strides, by Winograd
 * on the input's stride phases. With stride s and a k x k kernel, k = s*r,
 * output pixel (i, j) reads padded input row s*i + ky through tap ky =
 * s*d + a (d < r, a < s): row i + d of the input's phase a, the rows a,
 * a + s, a + 2s, ... So the conv is a stride-1, unpadded r x r conv of
 * the phases stacked as channels c*s*s + a*s + b ("space to depth"), by
 * the kernel's taps regrouped the same way,
 *   y = conv(S2D(x), W'),  W'[o][c][a][b][d][e] = w[o][c][s*d + a][s*e + b],
 * and its gradients are that conv's: grad-input's spread back from the
 * phases (depth to space). W' is w itself, read (and grad-weight's
 * written) through a layout of its taps (polyphase_layout). A DCGAN's k4 s2
 * layers become 2x2 convs with 4x the input channels, which Winograd
 * F(2x2, 2x2) runs in 9 multiplications per 4 outputs instead of 16.
 * The phases are a copy of the input (or of gx), made once per call.
 * Family file (see common.h). */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* Whether a shape's stride phases make a conv that Winograd takes:
 * equal strides above 1, a square kernel of 2 or 3 strides, undilated. */
static int polyphase_applies(const fc_conv2d_shape *s) {
    const int64_t st = s->stride_h;
    return st > 1 && s->stride_w == st && s->kw == s->kh && s->kh % st == 0 && (s->kh / st == 2 || s->kh / st == 3) &&
           s->dil_h == 1 && s->dil_w == 1;
}

/* The stride-1 conv of the phases: as many rows and columns as its
 * output needs, r - 1 past it. */
static fc_conv2d_shape polyphase_shape(const fc_conv2d_shape *s) {
    const int64_t st = s->stride_h, r = s->kh / st;
    const fc_conv2d_shape t = {s->n, s->c_in * st * st, s->out_h + r - 1, s->out_w + r - 1, s->c_out, s->groups,
                               r, r, 1, 1, 0, 0, 1, 1, s->out_h, s->out_w};
    return t;
}

/* n elements st apart from x into phase, or (`back`) from phase into x:
 * called with st = 2 a constant, the compiler vectorizes the stride. */
static inline __attribute__((always_inline)) void FC_FN(phase_row)(int64_t st, FC_T *phase, FC_T *x, int64_t n,
                                                                   int back) {
    if (back)
        for (int64_t j = 0; j < n; j++) x[st * j] = phase[j];
    else
        for (int64_t j = 0; j < n; j++) phase[j] = x[st * j];
}

static void FC_FN(zero)(FC_T *p, int64_t n) {
    if (n > 0) memset(p, 0, (size_t)n * sizeof(FC_T));
}

/* Moves x's stride phases into xs (or, `back`, xs into x): xs plane c*st*st
 * + a*st + b, pixel (i, j), is x's pixel (st*i + a - pad_top, st*j + b -
 * pad_left) of channel c. Going in, phase pixels outside x are zero;
 * coming back, x's pixels in no phase pixel (past the last window) are. */
static void FC_FN(move_phases)(const fc_conv2d_shape *s, const fc_conv2d_shape *t, FC_T *x, FC_T *xs, int back) {
    const int64_t st = s->stride_h, planes = s->n * s->c_in;
    /* x's rows and columns that some phase pixel holds: [0, rows) x [0, cols) */
    const int64_t rows = FC_MIN(s->h, st * t->h - s->pad_top), cols = FC_MIN(s->w, st * t->w - s->pad_left);
    FC_OMP(parallel for num_threads(fc_threads_for(planes, 8.0 * s->h * s->w)) schedule(static))
    for (int64_t plane = 0; plane < planes; plane++) {
        FC_T *xp = x + plane * s->h * s->w;
        if (back) {
            for (int64_t ih = 0; ih < rows; ih++) FC_FN(zero)(xp + ih * s->w + cols, s->w - cols);
            FC_FN(zero)(xp + rows * s->w, (s->h - rows) * s->w);
        }
        for (int64_t a = 0; a < st; a++)
            for (int64_t b = 0; b < st; b++) {
                int64_t lo, hi, top, bottom; /* phase rows [top, bottom) and columns [lo, hi) lie in x */
                fc_valid_range(a - s->pad_top, st, s->h, t->h, &top, &bottom);
                fc_valid_range(b - s->pad_left, st, s->w, t->w, &lo, &hi);
                FC_T *ph = xs + ((plane * st + a) * st + b) * t->h * t->w;
                if (!back) {
                    FC_FN(zero)(ph, top * t->w);
                    FC_FN(zero)(ph + bottom * t->w, (t->h - bottom) * t->w);
                }
                for (int64_t i = top; i < bottom; i++) {
                    FC_T *row = xp + (st * i + a - s->pad_top) * s->w + st * lo + b - s->pad_left;
                    if (!back) {
                        FC_FN(zero)(ph + i * t->w, lo);
                        FC_FN(zero)(ph + i * t->w + hi, t->w - hi);
                    }
                    if (st == 2)
                        FC_FN(phase_row)(2, ph + i * t->w + lo, row, hi - lo, back);
                    else
                        FC_FN(phase_row)(st, ph + i * t->w + lo, row, hi - lo, back);
                }
            }
    }
}

/* The phases' conv reads its kernels in w itself: tap (d, e) of channel
 * c*st*st + a*st + b is w's tap (st*d + a, st*e + b) of channel c. */
static wino_layout polyphase_layout(const fc_conv2d_shape *s) {
    const int64_t st = s->stride_h, k = s->kh, r = k / st;
    wino_layout l = wino_dense(s);
    l.cp = (int)(st * st);
    for (int64_t a = 0; a < st; a++)
        for (int64_t b = 0; b < st; b++) l.cphase[a * st + b] = a * k + b;
    for (int64_t d = 0; d < r; d++)
        for (int64_t e = 0; e < r; e++) l.tap[d * r + e] = st * d * k + st * e;
    return l;
}

/* Room for the phases' conv's input, made for a pass. */
static FC_T *FC_FN(phases_alloc)(const fc_conv2d_shape *t) {
    return fc_alloc((size_t)(t->n * t->c_in * t->h * t->w) * sizeof(FC_T));
}

/* The phases' conv's input: x's phases, a copy (NULL where memory runs out). */
static FC_T *FC_FN(phases_of)(const fc_conv2d_shape *s, const fc_conv2d_shape *t, const FC_T *x) {
    FC_T *xs = FC_FN(phases_alloc)(t);
    if (xs) FC_FN(move_phases)(s, t, (FC_T *)x, xs, 0);
    return xs;
}

static int FC_FN(polyphase_forward)(int tile, const fc_conv2d_shape *s, const FC_T *x, const FC_T *w, const FC_T *b,
                                    unsigned flags, FC_T *y) {
    const fc_conv2d_shape t = polyphase_shape(s);
    FC_T *xs = FC_FN(phases_of)(s, &t, x);
    if (!xs) return FC_ERR_NOMEM;
    const int status = FC_FN(winograd_forward)(tile, &t, xs, w, polyphase_layout(s), b, flags, y);
    fc_free(xs);
    return status;
}

/* Grad-input: the phases' conv's, into the phases, then spread back over gx. */
static int FC_FN(polyphase_grad_input)(int tile, const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, FC_T *gx) {
    const fc_conv2d_shape t = polyphase_shape(s);
    FC_T *xs = FC_FN(phases_alloc)(&t);
    if (!xs) return FC_ERR_NOMEM;
    const int status = FC_FN(winograd_grad_input)(tile, &t, gy, w, polyphase_layout(s), xs);
    if (status == FC_OK) FC_FN(move_phases)(s, &t, gx, xs, 1);
    fc_free(xs);
    return status;
}

/* Grad-weight: the phases' conv's, written straight into gw's taps. */
static int FC_FN(polyphase_grad_weight)(int tile, const fc_conv2d_shape *s, const FC_T *gy, const FC_T *x, FC_T *gw) {
    const fc_conv2d_shape t = polyphase_shape(s);
    FC_T *xs = FC_FN(phases_of)(s, &t, x);
    if (!xs) return FC_ERR_NOMEM;
    const int status = FC_FN(winograd_grad_weight)(tile, &t, gy, xs, polyphase_layout(s), gw);
    fc_free(xs);
    return status;
}

/* The forward and grad-weight of the same input: its phases moved once. */
static int FC_FN(polyphase_forward_grad_weight)(int tile, const fc_conv2d_shape *s, const FC_T *x, const FC_T *w,
                                                const FC_T *gy, FC_T *y, FC_T *gw) {
    const fc_conv2d_shape t = polyphase_shape(s);
    FC_T *xs = FC_FN(phases_of)(s, &t, x);
    if (!xs) return FC_ERR_NOMEM;
    const int status = FC_FN(winograd_forward_grad_weight)(tile, &t, xs, w, gy, polyphase_layout(s), y, gw);
    fc_free(xs);
    return status;
}
