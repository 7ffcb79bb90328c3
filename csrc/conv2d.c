/* 2-D convolution, forward and gradients (geometry in fastconv.h), three
 * ways each: _ref (plain loops, double accumulation: the C oracle),
 * _direct (loops over planes, vectorizable rows; best where the GEMM is
 * thin, as in depthwise) and _im2col, the GEMMs: indirect GEMMs that read
 * the image in place for the forward and grad-weight, grad-input run as
 * forward convs (one per stride phase), and im2col + packed GEMM or dot
 * products where those measured faster (each rule beside its dispatch).
 * Family file: instantiated by f32.c and f64.c (see common.h).
 *
 * Threads own outputs: forward splits y by (image, group, pixel tile),
 * grad-input splits gx by (image, group, channel block), grad-weight
 * splits the batch into a fixed number of slots, each summing its share
 * into its own copy of gw, reduced in slot order. No split depends on the
 * thread count in a way that changes any sum's order: 1 thread and N
 * threads agree bit for bit. */
#include <stdlib.h>
#include <string.h>

#define GROUP_IN(s) ((s)->c_in / (s)->groups)
#define GROUP_OUT(s) ((s)->c_out / (s)->groups)
#define PIXELS(s) ((s)->out_h * (s)->out_w)

/* ---------------------------------------------------------------- _ref */

static void FC_FN(fc_conv2d_forward_ref)(const fc_conv2d_shape *s, const FC_T *x,
                                         const FC_T *w, const FC_T *b, FC_T *y) {
    const int64_t cin_g = GROUP_IN(s), cout_g = GROUP_OUT(s);
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t co = 0; co < s->c_out; co++)
            for (int64_t oh = 0; oh < s->out_h; oh++)
                for (int64_t ow = 0; ow < s->out_w; ow++) {
                    double acc = b ? b[co] : 0;
                    for (int64_t c = 0; c < cin_g; c++)
                        for (int64_t i = 0; i < s->kh; i++)
                            for (int64_t j = 0; j < s->kw; j++) {
                                const int64_t ih = oh * s->stride_h - s->pad_top + i * s->dil_h;
                                const int64_t iw = ow * s->stride_w - s->pad_left + j * s->dil_w;
                                if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w) continue;
                                const int64_t ci = co / cout_g * cin_g + c;
                                acc += (double)w[((co * cin_g + c) * s->kh + i) * s->kw + j] *
                                       x[((n * s->c_in + ci) * s->h + ih) * s->w + iw];
                            }
                    y[((n * s->c_out + co) * s->out_h + oh) * s->out_w + ow] = (FC_T)acc;
                }
}

static void FC_FN(fc_conv2d_grad_input_ref)(const fc_conv2d_shape *s, const FC_T *gy,
                                            const FC_T *w, FC_T *gx) {
    const int64_t cin_g = GROUP_IN(s), cout_g = GROUP_OUT(s);
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t ci = 0; ci < s->c_in; ci++)
            for (int64_t ih = 0; ih < s->h; ih++)
                for (int64_t iw = 0; iw < s->w; iw++) {
                    double acc = 0;
                    for (int64_t co = ci / cin_g * cout_g; co < (ci / cin_g + 1) * cout_g; co++)
                        for (int64_t i = 0; i < s->kh; i++)
                            for (int64_t j = 0; j < s->kw; j++) {
                                const int64_t th = ih + s->pad_top - i * s->dil_h;
                                const int64_t tw = iw + s->pad_left - j * s->dil_w;
                                if (th < 0 || tw < 0 || th % s->stride_h || tw % s->stride_w) continue;
                                const int64_t oh = th / s->stride_h, ow = tw / s->stride_w;
                                if (oh >= s->out_h || ow >= s->out_w) continue;
                                acc += (double)w[((co * cin_g + ci % cin_g) * s->kh + i) * s->kw + j] *
                                       gy[((n * s->c_out + co) * s->out_h + oh) * s->out_w + ow];
                            }
                    gx[((n * s->c_in + ci) * s->h + ih) * s->w + iw] = (FC_T)acc;
                }
}

static void FC_FN(fc_conv2d_grad_weight_ref)(const fc_conv2d_shape *s, const FC_T *gy,
                                             const FC_T *x, FC_T *gw) {
    const int64_t cin_g = GROUP_IN(s), cout_g = GROUP_OUT(s);
    for (int64_t co = 0; co < s->c_out; co++)
        for (int64_t c = 0; c < cin_g; c++)
            for (int64_t i = 0; i < s->kh; i++)
                for (int64_t j = 0; j < s->kw; j++) {
                    double acc = 0;
                    const int64_t ci = co / cout_g * cin_g + c;
                    for (int64_t n = 0; n < s->n; n++)
                        for (int64_t oh = 0; oh < s->out_h; oh++)
                            for (int64_t ow = 0; ow < s->out_w; ow++) {
                                const int64_t ih = oh * s->stride_h - s->pad_top + i * s->dil_h;
                                const int64_t iw = ow * s->stride_w - s->pad_left + j * s->dil_w;
                                if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w) continue;
                                acc += (double)gy[((n * s->c_out + co) * s->out_h + oh) * s->out_w + ow] *
                                       x[((n * s->c_in + ci) * s->h + ih) * s->w + iw];
                            }
                    gw[((co * cin_g + c) * s->kh + i) * s->kw + j] = (FC_T)acc;
                }
}

/* ------------------------------------------------------------- _direct */

/* The direct forward reads each input plane from a copy framed in zeros
 * (padded_h x padded_w, the input at pad_top, pad_left, and one spare
 * row): every tap is then a full-length vector loop with no clipping.
 * At stride 1 it goes further: outputs are computed `padded_w` apart, as
 * if the output were as wide as the frame, so that one tap of the whole
 * plane is one long loop, out[q] += w * framed[q + tap offset]; the few
 * columns past out_w are computed and dropped. (Row by row, the loops
 * were 56 long and their setup cost as much as their arithmetic.) */
static void direct_frame_size(const fc_conv2d_shape *s, int64_t *ph, int64_t *pw) {
    conv_frame(s, ph, pw);
    *ph += 1;
}

/* One output plane y[n][co] of the direct forward. Scratch: `framed`
 * (direct_frame_size, zero outside the input's place on entry and exit)
 * and `wide` (out_h x padded_w). */
FC_CLONES static void FC_FN(direct_forward_plane)(const fc_conv2d_shape *s, const FC_T *x, const FC_T *w,
                                                  const FC_T *b, int64_t n, int64_t co, FC_T *restrict yp,
                                                  FC_T *restrict framed, FC_T *restrict wide) {
    const int64_t cin_g = GROUP_IN(s), cout_g = GROUP_OUT(s), OH = s->out_h, OW = s->out_w;
    const int64_t sh = s->stride_h, sw = s->stride_w, unit = sh == 1 && sw == 1;
    int64_t ph, pw;
    direct_frame_size(s, &ph, &pw);
    /* At stride 1 accumulate into `wide` (rows pw apart), else into y. */
    FC_T *restrict acc = unit ? wide : yp;
    const int64_t ldy = unit ? pw : OW;
    for (int64_t p = 0; p < OH * ldy; p++) acc[p] = b ? b[co] : 0;
    for (int64_t c = 0; c < cin_g; c++) {
        FC_FN(frame_planes)(s, x + (n * s->c_in + co / cout_g * cin_g + c) * s->h * s->w, 1, ph, pw, framed);
        for (int64_t i = 0; i < s->kh; i++)
            for (int64_t j = 0; j < s->kw; j++) {
                const FC_T wv = w[((co * cin_g + c) * s->kh + i) * s->kw + j];
                const FC_T *restrict tap = framed + i * s->dil_h * pw + j * s->dil_w;
                if (unit)
                    for (int64_t q = 0; q < OH * pw; q++) acc[q] += wv * tap[q];
                else
                    for (int64_t oh = 0; oh < OH; oh++)
                        for (int64_t ow = 0; ow < OW; ow++) acc[oh * OW + ow] += wv * tap[oh * sh * pw + ow * sw];
            }
    }
    if (unit)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) yp[oh * OW + ow] = wide[oh * pw + ow];
}

static int FC_FN(fc_conv2d_forward_direct)(const fc_conv2d_shape *s, const FC_T *x,
                                           const FC_T *w, const FC_T *b, FC_T *y) {
    const int64_t planes = s->n * s->c_out, P = PIXELS(s);
    int64_t ph, pw;
    direct_frame_size(s, &ph, &pw);
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(planes, 2.0 * P * GROUP_IN(s) * s->kh * s->kw)))
    {
        FC_T *framed = calloc((size_t)((ph + s->out_h) * pw), sizeof(FC_T)); /* the frame stays zero */
        if (!framed) {
            FC_OMP(atomic write)
            status = FC_ERR_NOMEM;
        }
        FC_OMP(for schedule(static))
        for (int64_t plane = 0; plane < planes; plane++)
            if (framed)
                FC_FN(direct_forward_plane)(s, x, w, b, plane / s->c_out, plane % s->c_out, y + plane * P,
                                            framed, framed + ph * pw);
        free(framed);
    }
    return status;
}

/* One input-gradient plane gx[n][ci] of the direct algorithm. */
FC_CLONES static void FC_FN(direct_grad_input_plane)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w,
                                                     int64_t n, int64_t ci, FC_T *restrict gxp) {
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

static int FC_FN(fc_conv2d_grad_input_direct)(const fc_conv2d_shape *s, const FC_T *gy,
                                              const FC_T *w, FC_T *gx) {
    const int64_t planes = s->n * s->c_in;
    FC_OMP(parallel for num_threads(fc_threads_for(planes, 2.0 * PIXELS(s) * GROUP_OUT(s) * s->kh * s->kw)) schedule(static))
    for (int64_t plane = 0; plane < planes; plane++)
        FC_FN(direct_grad_input_plane)(s, gy, w, plane / s->c_in, plane % s->c_in, gx + plane * s->h * s->w);
    return FC_OK;
}

/* gw[co][c][:][:] of the direct algorithm, on the forward's frame: gy is
 * spread over a zero plane shaped like the frame, each value at its
 * window's corner, so that every tap's gradient is one long dot product,
 *   gw[tap] = sum over q of spread[q] * framed[q + tap offset],
 * summed over the batch in per-lane partial sums (vector extensions,
 * cloned per ISA) and reduced in a fixed order at the end. Taps go in
 * groups of GW_TAPS sharing each load of `spread`; a group's unused taps
 * read offset 0 and are dropped. A stride s computes on the s*s - 1 zeros
 * between spread values; row by row, without the frame, the loops were
 * out_w long and every tap re-read gy: depthwise (56 x 56, stride 1)
 * grad-weight took 5.0 ms, 0.67x PyTorch. */
#define GW_TAPS 3 /* 3x3, 5x5 and 7x7 kernels waste 0, 2 and 2 taps */

typedef struct {
    int64_t ph, pw, length; /* the frame, and the dot products' length (whole vectors) */
    int64_t taps;           /* kh * kw rounded up to whole groups */
} gw_frame;

static gw_frame FC_FN(grad_weight_frame)(const fc_conv2d_shape *s) {
    gw_frame f;
    direct_frame_size(s, &f.ph, &f.pw);
    const int64_t extent = (s->out_h - 1) * s->stride_h * f.pw + (s->out_w - 1) * s->stride_w + 1;
    f.length = (extent + DOT_LANES - 1) / DOT_LANES * DOT_LANES;
    f.taps = (s->kh * s->kw + GW_TAPS - 1) / GW_TAPS * GW_TAPS;
    return f;
}

FC_CLONES static void FC_FN(direct_grad_weight_pair)(const fc_conv2d_shape *s, const gw_frame *f, const FC_T *gy,
                                                     const FC_T *x, int64_t co, int64_t c, const ptrdiff_t *off,
                                                     FC_T *restrict spread, FC_T *restrict framed,
                                                     FC_FN(dot_vec) *restrict acc, FC_T *gw) {
    const int64_t ci = co / GROUP_OUT(s) * GROUP_IN(s) + c, P = PIXELS(s);
    for (int64_t t = 0; t < f->taps; t++) acc[t] = (FC_FN(dot_vec)){0};
    for (int64_t n = 0; n < s->n; n++) {
        FC_FN(frame_planes)(s, x + (n * s->c_in + ci) * s->h * s->w, 1, f->ph, f->pw, framed);
        const FC_T *gyp = gy + (n * s->c_out + co) * P;
        for (int64_t oh = 0; oh < s->out_h; oh++)
            for (int64_t ow = 0; ow < s->out_w; ow++)
                spread[oh * s->stride_h * f->pw + ow * s->stride_w] = gyp[oh * s->out_w + ow];
        for (int64_t t0 = 0; t0 < f->taps; t0 += GW_TAPS) {
            FC_FN(dot_vec) sum[GW_TAPS];
            for (int t = 0; t < GW_TAPS; t++) sum[t] = acc[t0 + t];
            for (int64_t q = 0; q < f->length; q += DOT_LANES) {
                const FC_FN(dot_vec) g = *(const FC_FN(dot_vec) *)(spread + q);
                for (int t = 0; t < GW_TAPS; t++) sum[t] += g * *(const FC_FN(dot_vec) *)(framed + q + off[t0 + t]);
            }
            for (int t = 0; t < GW_TAPS; t++) acc[t0 + t] = sum[t];
        }
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
    ptrdiff_t *off = calloc((size_t)f.taps, sizeof(ptrdiff_t)); /* padding taps: offset 0 */
    if (!off) return FC_ERR_NOMEM;
    indirect_offsets(s, 1, f.ph * f.pw, f.pw, off);
    /* The frame is read up to length + the largest offset: zeros past it. */
    const size_t frame_size = (size_t)FC_MAX(f.ph * f.pw, f.length + (s->kh - 1) * s->dil_h * f.pw + (s->kw - 1) * s->dil_w);
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(pairs, 2.0 * s->n * PIXELS(s) * s->kh * s->kw)))
    {
        FC_T *spread = calloc((size_t)f.length + frame_size, sizeof(FC_T)); /* zero between values */
        FC_FN(dot_vec) *acc = malloc((size_t)f.taps * sizeof(FC_FN(dot_vec)));
        if (!spread || !acc) {
            FC_OMP(atomic write)
            status = FC_ERR_NOMEM;
        }
        FC_OMP(for schedule(static))
        for (int64_t pair = 0; pair < pairs; pair++)
            if (spread && acc)
                FC_FN(direct_grad_weight_pair)(s, &f, gy, x, pair / cin_g, pair % cin_g, off, spread,
                                               spread + f.length, acc, gw + pair * s->kh * s->kw);
        free(spread);
        free(acc);
    }
    free(off);
    return status;
}

/* ------------------------------------------------------------- _im2col */

/* Pixels per column block in the gradients: a block of K rows stays near
 * 1 MiB (f32, one L2), and at least 256 pixels, so grad-weight's dot
 * products run long. A function of the shape alone, so sums never depend
 * on threads. */
static int64_t FC_FN(pixel_chunk)(int64_t K, int64_t P) {
    return FC_MIN(P, FC_MAX((int64_t)256, (int64_t)262144 / K));
}

/* How many parts to split each of `items` work items into so that every
 * thread gets about two tasks, at most `most` parts. */
static int64_t split_for_threads(int64_t items, int64_t most) {
    const int64_t want = 2 * (int64_t)fc_get_num_threads();
    if (items >= want) return 1;
    return FC_MAX((int64_t)1, FC_MIN(most, (want + items - 1) / items));
}

/* The forward as a packed GEMM, for few taps and for 1x1 (see
 * fc_conv2d_forward_im2col): the image is packed into the GEMM's panels
 * (implicit im2col; a 1x1, stride-1, unpadded conv reads it as a plain
 * matrix), and tiles are rows of pixels stored straight into y. */
static int is_pointwise(const fc_conv2d_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_top == 0 &&
           s->pad_left == 0 && s->out_h == s->h && s->out_w == s->w;
}

static int FC_FN(fc_conv2d_forward_packed)(const fc_conv2d_shape *s, const FC_T *x,
                                           const FC_T *w, const FC_T *b, unsigned flags, FC_T *y) {
    const int64_t M = GROUP_OUT(s), cin_g = GROUP_IN(s), K = cin_g * s->kh * s->kw, P = PIXELS(s);
    const int64_t images = s->n * s->groups;
    const int64_t nr = FC_FN(gemm_nr)();
    const int64_t parts = FC_MAX((P + FC_NC - 1) / FC_NC, split_for_threads(images, (P + nr - 1) / nr));
    const int64_t NB = ((P + parts - 1) / parts + nr - 1) / nr * nr;
    const int64_t tiles = (P + NB - 1) / NB, tasks = images * tiles;
    /* Every task of a group multiplies by the same weights: pack them once. */
    const size_t a_size = FC_FN(gemm_packed_a_size)(M, K);
    FC_T *wpack = malloc(a_size * (size_t)s->groups * sizeof(FC_T));
    if (!wpack) return FC_ERR_NOMEM;
    for (int64_t g = 0; g < s->groups; g++) {
        const FC_FN(fc_strided) wm = {w + g * M * K, K, 1};
        const FC_FN(fc_operand) a = {FC_FN(pack_strided), &wm, NULL};
        FC_FN(gemm_pack_a)(M, K, &a, wpack + g * a_size);
    }
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * M * K * NB)))
    {
        FC_T *work = malloc(FC_FN(gemm_workspace)(M, NB, K) * sizeof(FC_T));
        if (!work) {
            FC_OMP(atomic write)
            status = FC_ERR_NOMEM;
        }
        FC_OMP(for schedule(static))
        for (int64_t t = 0; t < tasks; t++) {
            if (!work) continue;
            const int64_t img = t / tiles, n = img / s->groups, g = img % s->groups;
            const int64_t p0 = t % tiles * NB, nb = FC_MIN(NB, P - p0);
            const FC_T *xg = x + (n * s->c_in + g * cin_g) * s->h * s->w;
            const FC_FN(fc_strided) xm = {xg + p0, 1, P};
            const FC_FN(fc_im2col_operand) xc = {s, xg, p0};
            const FC_FN(fc_operand) a = {NULL, NULL, wpack + g * a_size};
            const FC_FN(fc_operand) bo = is_pointwise(s) ? (FC_FN(fc_operand)){FC_FN(pack_strided), &xm, NULL}
                                                         : (FC_FN(fc_operand)){FC_FN(pack_im2col), &xc, NULL};
            FC_FN(gemm_serial)(M, nb, K, &a, &bo, y + (n * s->c_out + g * M) * P + p0, P,
                               b ? b + g * M : NULL, flags, work);
        }
        free(work);
    }
    free(wpack);
    return status;
}

/* The forward as an indirect GEMM (gemm.h, im2col.c): a tile is 6 output
 * pixels x NR output channels, each pixel's row of A read from the image
 * (or its frame) through the tap offsets, B the weights, packed once per
 * call in panels [K][NR] (zero past c_out). Each tile sums all K taps in
 * one call, in a fixed order, and is stored transposed into y's planes.
 * The image is never copied into GEMM panels: packing it (implicit
 * im2col) took 30% of mnist_c2's time and 60% of lenet_c2's. A task owns
 * a block of one image's pixels in one group; within it, blocks of
 * FC_PIXEL_BLOCK pixels run panel by panel, so one B panel (NR x K)
 * serves a block's tiles from L2. */
#define FC_PIXEL_BLOCK 96

/* Taps per kernel call: a block's tiles sum K in chunks of this many, each
 * chunk's weights (KC x NR, 16 KiB) staying in L1 across the block's tiles
 * while they read the image; whole-K calls streamed the panel from L2 on
 * every tile. */
#define FC_IGEMM_KC 128

/* Where the indirect forward writes output pixel (oh, ow) of channel co of
 * image n: y + (n*c_out + co)*plane + oh*row + ow*col. A forward's own
 * view is (out_h*out_w, out_w, 1); grad-input's phases write every
 * stride-th pixel of gx. */
typedef struct {
    int64_t plane, row, col;
} fc_out_view;

static int FC_FN(fc_conv2d_forward_indirect)(const fc_conv2d_shape *s, const FC_T *x, const FC_T *w,
                                             const FC_T *b, unsigned flags, FC_T *y, fc_out_view v) {
    const FC_FN(fc_iukernel) ukernel = FC_FN(select_iukernel)();
    const int64_t nr = ukernel.nr, M = GROUP_OUT(s), cin_g = GROUP_IN(s), P = PIXELS(s);
    const int64_t K = cin_g * s->kh * s->kw, panels = (M + nr - 1) / nr, images = s->n * s->groups;
    const int64_t parts = split_for_threads(images, (P + FC_MR - 1) / FC_MR);
    const int64_t NB = ((P + parts - 1) / parts + FC_MR - 1) / FC_MR * FC_MR;
    const int64_t tiles = (P + NB - 1) / NB, tasks = images * tiles;
    int64_t fh, fw;
    const int framed = conv_frame(s, &fh, &fw);
    FC_T *bpack = malloc((size_t)(s->groups * panels * nr * (K + 1)) * sizeof(FC_T));
    ptrdiff_t *off = malloc((size_t)FC_MAX(K, (int64_t)1) * sizeof(ptrdiff_t));
    if (!bpack || !off) {
        free(bpack), free(off);
        return FC_ERR_NOMEM;
    }
    /* Panel (g, pn): K rows of its kernel's width of weights, then as many
     * biases. */
    const int64_t panel_size = nr * (K + 1);
    for (int64_t g = 0; g < s->groups; g++)
        for (int64_t pn = 0; pn < panels; pn++) {
            const int64_t width = FC_FN(panel_iukernel)(ukernel, pn, M).nr;
            FC_T *panel = bpack + (g * panels + pn) * panel_size;
            /* row by row: a panel's rows are far apart in w but its columns
             * read few lines, which stay in cache from row to row */
            for (int64_t k = 0; k < K; k++)
                for (int64_t j = 0, co = pn * nr; j < width; j++, co++)
                    panel[k * width + j] = co < M ? w[(g * M + co) * K + k] : 0;
            for (int64_t j = 0, co = pn * nr; j < width; j++, co++)
                panel[K * width + j] = co < M && b ? b[g * M + co] : 0;
        }
    indirect_offsets(s, cin_g, fh * fw, fw, off);
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * M * K * NB)))
    {
        FC_T *frame = framed ? calloc((size_t)(cin_g * fh * fw), sizeof(FC_T)) : NULL;
        if (framed && !frame) {
            FC_OMP(atomic write)
            status = FC_ERR_NOMEM;
        }
        FC_OMP(for schedule(static))
        for (int64_t t = 0; t < tasks; t++) {
            if (framed && !frame) continue;
            const int64_t img = t / tiles, n = img / s->groups, g = img % s->groups;
            const int64_t p0 = t % tiles * NB, p1 = FC_MIN(P, p0 + NB);
            const FC_T *image = x + (n * s->c_in + g * cin_g) * s->h * s->w;
            if (framed) FC_FN(frame_planes)(s, image, cin_g, fh, fw, frame), image = frame;
            FC_T *yg = y + (n * s->c_out + g * M) * v.plane;
            for (int64_t pb = p0; pb < p1; pb += FC_PIXEL_BLOCK) {
                const int64_t pe = FC_MIN(p1, pb + FC_PIXEL_BLOCK);
                /* Each pixel's window corner and place in an output plane;
                 * past pe, the last pixel again. */
                const FC_T *a[FC_PIXEL_BLOCK + FC_MR];
                int64_t at[FC_PIXEL_BLOCK + FC_MR];
                for (int64_t p = pb, oh = pb / s->out_w, ow = pb % s->out_w; p < pb + FC_PIXEL_BLOCK + FC_MR; p++) {
                    a[p - pb] = image + oh * s->stride_h * fw + ow * s->stride_w;
                    at[p - pb] = oh * v.row + ow * v.col;
                    if (p + 1 < pe && ++ow == s->out_w) ow = 0, oh++;
                }
                for (int64_t pn = 0; pn < panels; pn++) {
                    const FC_FN(fc_iukernel) pk = FC_FN(panel_iukernel)(ukernel, pn, M);
                    const FC_T *panel = bpack + (g * panels + pn) * panel_size;
                    const int cols = (int)FC_MIN(nr, M - pn * nr), width = pk.nr;
                    FC_T *yp = yg + pn * nr * v.plane;
                    FC_T tiles[FC_PIXEL_BLOCK / FC_MR + 1][FC_MR * FC_NR_MAX];
                    for (int64_t k0 = 0; k0 < K; k0 += FC_IGEMM_KC) {
                        const int64_t kc = FC_MIN((int64_t)FC_IGEMM_KC, K - k0);
                        const unsigned f = (k0 ? FC_GEMM_ACCUMULATE : 0u) | (k0 + kc == K ? flags : 0u);
                        for (int64_t pt = pb; pt < pe; pt += FC_MR)
                            pk.fn((size_t)kc, a + (pt - pb), off + k0, panel + k0 * width, tiles[(pt - pb) / FC_MR],
                                  b && !k0 ? panel + K * width : NULL, f);
                    }
                    for (int64_t pt = pb; pt < pe; pt += FC_MR) {
                        const FC_T *tile = tiles[(pt - pb) / FC_MR];
                        const int64_t *place = at + (pt - pb);
                        if (pe - pt >= FC_MR) /* a full tile: a constant trip count, unrolled */
                            for (int j = 0; j < cols; j++)
                                for (int q = 0; q < FC_MR; q++) yp[j * v.plane + place[q]] = tile[q * width + j];
                        else
                            for (int j = 0; j < cols; j++)
                                for (int q = 0; q < pe - pt; q++) yp[j * v.plane + place[q]] = tile[q * width + j];
                    }
                }
            }
        }
        free(frame);
    }
    free(bpack);
    free(off);
    return status;
}

/* The indirect GEMM wins from 16 taps per output (K = c_in/groups * kh *
 * kw); below, its transposed stores cost more than its arithmetic, while
 * packing is cheap because each packed element feeds many outputs. A 1x1
 * conv reuses no input across taps, so the indirect kernel's broadcasts
 * touch a new cache line every step; packed, its B is a plain copy.
 * Measured (2 threads, ms, packed / indirect / PyTorch, float32 unless
 * marked):
 *   mnist_c1       K =   9:  0.54 / 1.18 / 0.85
 *   lenet_c1       K =  25:  0.46 / 0.40 / 0.35
 *   lenet_c2       K = 150:  0.74 / 0.27 / 0.23
 *   mnist_c2       K = 576:  8.6  / 4.5  / 5.0
 *   pointwise_1x1  K = 256:  GFLOP/s 201 / 212 (float32), 117 / 90 (float64) */
#define FC_INDIRECT_MIN_K 16

/* `flags` is the microkernels' FC_GEMM_RELU or 0: the activation runs in
 * their epilogue. */
static int FC_FN(fc_conv2d_forward_im2col)(const fc_conv2d_shape *s, const FC_T *x,
                                           const FC_T *w, const FC_T *b, unsigned flags, FC_T *y) {
    if (GROUP_IN(s) * s->kh * s->kw < FC_INDIRECT_MIN_K || is_pointwise(s))
        return FC_FN(fc_conv2d_forward_packed)(s, x, w, b, flags, y);
    return FC_FN(fc_conv2d_forward_indirect)(s, x, w, b, flags, y, (fc_out_view){PIXELS(s), s->out_w, 1});
}

/* A conv's grad-input is a set of stride-1 convs of gy, one per phase.
 * Split gx's rows by ih mod stride_h = r (and columns alike): the rows of
 * phase r receive gy through the same taps, those i with r + pad_top -
 * i*dil_h a multiple of stride_h, evenly spaced; row q of the phase, ih =
 * q*stride_h + r, reads gy row q + (r + pad_top - i*dil_h) / stride_h. So
 * a phase is a stride-1 conv of gy (framed) by its taps of W, flipped in
 * space and with the channel axes swapped per group, and it runs on the
 * forward's kernels with no col2im; strided, its output is spread into gx.
 * A stride-1 conv is one phase with every tap.
 *
 * It is taken (else col2im of W^T gy) when
 *  - every phase has taps and a frame that is not negative (padding no
 *    wider than a window's reach): a phase no tap reaches would need its
 *    own zeroing pass;
 *  - gx's channels per group fill at least 3/4 of the forward kernel's
 *    columns (nr, rounded up to panels): it computes whole panels, while
 *    col2im's cost follows the channels;
 *  - strided, the average phase does at least 16 MFLOP: each is a call of
 *    its own, ~15 us of packing and fork/join on 2 threads.
 * Measured (2 threads, ms, col2im / phases; stride 1: 3x3 convs 28x28 to
 * 64 channels, batch 32, c_in below; strided: batch 8, c_in -> c_out):
 *   float32, nr 32:  c_in  8: 1.48 / 3.03   16: 2.48 / 3.06
 *                    c_in 24: 3.52 / 2.93   32: 4.37 / 3.08
 *   float64, nr 16:  c_in  8: 2.70 / 3.30   16: 4.49 / 3.37
 *                    c_in 24: 6.14 / 6.14   48: 9.36 / 7.15
 *   mnist_c1 (c_in 1), float32: 0.83 / 4.69
 *   float32, 64 -> 128 56x56 3x3 s2 (resnet_s2):   3.84 / 3.08
 *            96 -> 96 55x55 11x11 s4, 216 MFLOP:   12.40 / 10.41
 *            64 -> 128 54x54 3x3 s3, 42 MFLOP:     1.81 / 1.53
 *            32 -> 96 64x64 4x4 s4, 13 MFLOP:      1.03 / 1.27
 *            256 -> 512 56x56 1x1 s2 (3 phases empty): 6.31 / 9.31 */
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

static int FC_FN(grad_input_by_phases)(const fc_conv2d_shape *s) {
    const int64_t cin_g = GROUP_IN(s), width = FC_FN(iukernel_width)(FC_FN(select_iukernel)(), cin_g);
    const int64_t phases = s->stride_h * s->stride_w;
    const double flops = 2.0 * s->n * s->c_out * PIXELS(s) * cin_g * s->kh * s->kw;
    return 4 * cin_g >= 3 * width && (phases == 1 || flops / phases >= 16.0e6) &&
           phases_fit(s->h, s->kh, s->stride_h, s->pad_top, s->dil_h) &&
           phases_fit(s->w, s->kw, s->stride_w, s->pad_left, s->dil_w);
}

static int FC_FN(grad_input_phases)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, FC_T *gx) {
    const int64_t M = GROUP_OUT(s), cin_g = GROUP_IN(s), taps = s->kh * s->kw;
    const fc_out_view view = {s->h * s->w, s->stride_h * s->w, s->stride_w};
    FC_T *wt = malloc((size_t)(s->c_out * cin_g * taps) * sizeof(FC_T));
    if (!wt) return FC_ERR_NOMEM;
    int status = FC_OK;
    for (int64_t rh = 0; rh < s->stride_h && status == FC_OK; rh++)
        for (int64_t rw = 0; rw < s->stride_w && status == FC_OK; rw++) {
            const phase_axis ah = phase_axis_of(rh, s->h, s->kh, s->stride_h, s->pad_top, s->dil_h);
            const phase_axis aw = phase_axis_of(rw, s->w, s->kw, s->stride_w, s->pad_left, s->dil_w);
            const int64_t kt = ah.count * aw.count;
            if (ah.out * aw.out == 0) continue;
            for (int64_t g = 0; g < s->groups; g++)
                for (int64_t m = 0; m < M; m++)
                    for (int64_t c = 0; c < cin_g; c++) {
                        const FC_T *from = w + ((g * M + m) * cin_g + c) * taps;
                        FC_T *to = wt + ((g * cin_g + c) * M + m) * kt;
                        for (int64_t i = 0; i < ah.count; i++)
                            for (int64_t j = 0; j < aw.count; j++)
                                to[(ah.count - 1 - i) * aw.count + aw.count - 1 - j] =
                                    from[(ah.first + i * ah.step) * s->kw + aw.first + j * aw.step];
                    }
            const fc_conv2d_shape t = {s->n, s->c_out, s->out_h, s->out_w, s->c_in, s->groups, ah.count,
                                       aw.count, 1, 1, ah.pad, aw.pad, ah.dil, aw.dil, ah.out, aw.out};
            /* stride 1: one phase, gx itself, on whichever forward is faster */
            status = s->stride_h == 1 && s->stride_w == 1
                         ? FC_FN(fc_conv2d_forward_im2col)(&t, gy, wt, NULL, 0, gx)
                         : FC_FN(fc_conv2d_forward_indirect)(&t, gy, wt, NULL, 0, gx + rh * s->w + rw, view);
        }
    free(wt);
    return status;
}

/* gx = col2im(W^T gy), a block of pixels at a time: a task owns the gx
 * planes of one (image, group, channel block), so no two tasks add into
 * the same element. */
static int FC_FN(fc_conv2d_grad_input_im2col)(const fc_conv2d_shape *s, const FC_T *gy,
                                              const FC_T *w, FC_T *gx) {
    if (FC_FN(grad_input_by_phases)(s)) return FC_FN(grad_input_phases)(s, gy, w, gx);
    const int64_t M = GROUP_OUT(s), cin_g = GROUP_IN(s), taps = s->kh * s->kw;
    const int64_t K = cin_g * taps, P = PIXELS(s), PC = FC_FN(pixel_chunk)(K, P);
    const int64_t images = s->n * s->groups;
    const int64_t blocks = split_for_threads(images, cin_g);
    const int64_t CB = (cin_g + blocks - 1) / blocks, tasks = images * blocks;
    /* With one channel block per group, every task of a group multiplies by
     * all of W^T: pack it once. (Split blocks pack their rows per task.) */
    const size_t a_size = blocks == 1 ? FC_FN(gemm_packed_a_size)(K, M) : 0;
    FC_T *wpack = NULL;
    if (blocks == 1) {
        wpack = malloc(a_size * (size_t)s->groups * sizeof(FC_T));
        if (!wpack) return FC_ERR_NOMEM;
        for (int64_t g = 0; g < s->groups; g++) {
            const FC_FN(fc_strided) wt = {w + g * M * K, 1, K};
            const FC_FN(fc_operand) a = {FC_FN(pack_strided), &wt, NULL};
            FC_FN(gemm_pack_a)(K, M, &a, wpack + g * a_size);
        }
    }
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * M * CB * taps * P)))
    {
        FC_T *col = malloc(((size_t)(CB * taps * PC) + FC_FN(gemm_workspace)(CB * taps, PC, M)) * sizeof(FC_T));
        if (!col) {
            FC_OMP(atomic write)
            status = FC_ERR_NOMEM;
        }
        FC_OMP(for schedule(static))
        for (int64_t t = 0; t < tasks; t++) {
            if (!col) continue;
            const int64_t img = t / blocks, n = img / s->groups, g = img % s->groups;
            const int64_t c0 = t % blocks * CB, c1 = FC_MIN(cin_g, c0 + CB);
            if (c0 >= c1) continue;
            FC_T *gxn = gx + n * s->c_in * s->h * s->w;
            memset(gxn + (g * cin_g + c0) * s->h * s->w, 0, (size_t)((c1 - c0) * s->h * s->w) * sizeof(FC_T));
            for (int64_t p0 = 0; p0 < P; p0 += PC) {
                const int64_t pc = FC_MIN(PC, P - p0);
                const FC_FN(fc_strided) wt = {w + g * M * K + c0 * taps, 1, K};
                const FC_FN(fc_strided) gm = {gy + (n * s->c_out + g * M) * P + p0, 1, P};
                const FC_FN(fc_operand) a = {FC_FN(pack_strided), &wt, wpack ? wpack + g * a_size : NULL};
                const FC_FN(fc_operand) bo = {FC_FN(pack_strided), &gm, NULL};
                FC_FN(gemm_serial)((c1 - c0) * taps, pc, M, &a, &bo, col, pc, NULL, 0, col + CB * taps * PC);
                FC_FN(col2im)(s, col, g * cin_g + c0, g * cin_g + c1, p0, p0 + pc, gxn);
            }
        }
        free(col);
    }
    free(wpack);
    return status;
}

/* Grad-weight sums over images and pixels, cut into at most SLOTS
 * contiguous runs of the batch. Each run sums into its own copy of gw and
 * the copies are added in run order (reduce_slots), so how the runs are
 * shared among threads never changes a bit of the result. */
#define SLOTS 16

/* Adds the slots' partial sums of gw in slot order, into slot 0's run,
 * and writes them to gw. Slot runs hold gw's layout, (g*M + m)*K + k, or,
 * `transposed`, (g*K + k)*M + m. The runs are walked in their own layout,
 * in blocks of 16 rows: reading a transposed run along gw's rows would
 * stride through every slot at once (19% of resnet_3x3's grad-weight), and
 * transposing a row at a time writes M elements K apart, which for K = 4608
 * taps fall into two L1 sets (55% of a 512-channel 7x7 layer's). */
#define REDUCE_ROWS 16

static void FC_FN(reduce_slots)(const fc_conv2d_shape *s, FC_T *partial, int64_t slots,
                                int transposed, FC_T *gw) {
    const int64_t M = GROUP_OUT(s), K = GROUP_IN(s) * s->kh * s->kw, size = s->c_out * K;
    const int64_t rows = transposed ? s->groups * K : s->c_out, cols = size / rows;
    const int64_t blocks = (rows + REDUCE_ROWS - 1) / REDUCE_ROWS;
    FC_OMP(parallel for num_threads(fc_threads_for(blocks, (double)(slots * cols * REDUCE_ROWS))) schedule(static))
    for (int64_t rb = 0; rb < blocks; rb++) {
        const int64_t r0 = rb * REDUCE_ROWS, r1 = FC_MIN(rows, r0 + REDUCE_ROWS);
        for (int64_t slot = 1; slot < slots; slot++)
            for (int64_t e = r0 * cols; e < r1 * cols; e++) partial[e] += partial[slot * size + e];
        if (!transposed) {
            if (partial != gw) memcpy(gw + r0 * cols, partial + r0 * cols, (size_t)((r1 - r0) * cols) * sizeof(FC_T));
            continue;
        }
        int64_t to[REDUCE_ROWS]; /* row r = g*K + k goes to gw[(g*M + m)*K + k] */
        for (int64_t r = r0; r < r1; r++) to[r - r0] = r / K * M * K + r % K;
        for (int64_t c = 0; c < cols; c++)
            for (int64_t r = r0; r < r1; r++) gw[to[r - r0] + c * K] = partial[r * cols + c];
    }
}

/* gw = sum over images and pixel blocks of gy_block col_block^T as dot
 * products (gemm_nt_dot), reading gy in place and x unfolded by im2col. */
static int FC_FN(grad_weight_dots)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *x, FC_T *gw) {
    const int64_t M = GROUP_OUT(s), cin_g = GROUP_IN(s), K = cin_g * s->kh * s->kw;
    const int64_t P = PIXELS(s), PC = FC_FN(pixel_chunk)(K, P), chunks = (P + PC - 1) / PC;
    const int64_t units = s->n * chunks, slots = FC_MIN((int64_t)SLOTS, units);
    const int64_t size = s->c_out * K, tasks = slots * s->groups;
    FC_T *partial = slots == 1 ? gw : malloc((size_t)(slots * size) * sizeof(FC_T));
    if (!partial) return FC_ERR_NOMEM;
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * M * K * P * s->n / slots)))
    {
        FC_T *col = malloc((size_t)(K * PC) * sizeof(FC_T));
        if (!col) {
            FC_OMP(atomic write)
            status = FC_ERR_NOMEM;
        }
        FC_OMP(for schedule(static))
        for (int64_t t = 0; t < tasks; t++) {
            if (!col) continue;
            const int64_t slot = t / s->groups, g = t % s->groups;
            const int64_t u0 = units * slot / slots, u1 = units * (slot + 1) / slots;
            for (int64_t u = u0; u < u1; u++) {
                const int64_t n = u / chunks, p0 = u % chunks * PC, pc = FC_MIN(PC, P - p0);
                FC_FN(im2col)(s, x + n * s->c_in * s->h * s->w, g * cin_g, (g + 1) * cin_g, p0, p0 + pc, col);
                FC_FN(gemm_nt_dot)(M, K, pc, gy + (n * s->c_out + g * M) * P + p0, P, col, pc,
                                   partial + slot * size + g * M * K, K, u > u0);
            }
        }
        free(col);
    }
    if (partial != gw) {
        if (status == FC_OK) FC_FN(reduce_slots)(s, partial, slots, 0, gw);
        free(partial);
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
 * columns) is streamed from L2 by every tap tile.
 *
 * Two ways to share the work among threads, both summing every element of
 * gw in an order fixed by the shape:
 *  - by slots: a slot owns a run of whole images, packs their gy^T itself
 *    and sums into its own copy of gw^T; the copies are added in slot
 *    order (reduce_slots). Costs up to SLOTS copies of gw.
 *  - by taps: gy^T is packed for the whole batch first, then a task owns a
 *    range of gw^T's rows (taps) and sums every image into them in order,
 *    framing only the channels its taps read (gw_by_taps). Costs a packed
 *    copy of gy, which every task reads, and no copies of gw.
 * Taps are taken when twice gy is smaller than the slots' copies of gw:
 * late, wide layers. Measured (3x3 pad 1 convs, float32, 2 threads, ms,
 * slots / taps / PyTorch):
 *   512 -> 512  7x7,  batch  8:   46.7 / 7.3  / 7.6   (taps)
 *   512 -> 512  7x7,  batch 32:  106.3 / 22.4 / 25.4  (taps)
 *   512 -> 512 14x14, batch 32:  132.5 / 76.2 / 80.7  (taps: 151 MB of copies)
 *   256 -> 256 28x28, batch 16:   47.5 / 48.3 / 48.7  (taps)
 *   128 -> 128 28x28, batch  8:    6.1 / 8.1  / 6.3   (slots)
 *    64 -> 128 14x14, batch 50:    5.6 / 5.8  / 4.8   (slots: mnist_c2) */
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

/* Sums one block of pc pixels into gw^T's rows [k0, k1) (out[k*M + m]),
 * storing instead of adding when `first`: tap k of the block's pixel q is
 * base[tap[k] + pix[q]]. */
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
            FC_T *o = out + kt * d->M + pn * u.nr;
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < cols; j++) o[i * d->M + j] = (first ? 0 : o[i * d->M + j]) + tile[i * width + j];
        }
    }
}

/* Pixel offsets of images `is` apart, pixel p at its window's corner. */
static void gw_pixel_offsets(const fc_conv2d_shape *s, int64_t images, int64_t is, int64_t fw, ptrdiff_t *pix) {
    for (int64_t n = 0; n < images; n++)
        for (int64_t oh = 0; oh < s->out_h; oh++)
            for (int64_t ow = 0; ow < s->out_w; ow++) *pix++ = (ptrdiff_t)(n * is + oh * s->stride_h * fw + ow * s->stride_w);
}

/* By slots: a slot owns a run of whole images, packs their gy^T block by
 * block and sums into its own copy of gw^T (partial, SLOTS copies apart). */
static int FC_FN(gw_by_slots)(FC_FN(fc_iukernel) u, const gw_indirect *d, const fc_conv2d_shape *s, const FC_T *gy,
                              const FC_T *x, int64_t slots, FC_T *partial) {
    const int64_t cin_g = GROUP_IN(s), P = PIXELS(s), hw = s->h * s->w, size = s->c_out * d->K;
    int64_t fh, fw;
    const int framed = conv_frame(s, &fh, &fw);
    ptrdiff_t *tap = malloc((size_t)d->K * sizeof(ptrdiff_t)), *pix = malloc((size_t)P * sizeof(ptrdiff_t));
    if (!tap || !pix) {
        free(tap), free(pix);
        return FC_ERR_NOMEM;
    }
    indirect_offsets(s, cin_g, fh * fw, fw, tap);
    gw_pixel_offsets(s, 1, 0, fw, pix);
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(slots * s->groups, 2.0 * d->M * d->K * P * s->n / slots)))
    {
        FC_T *frame = framed ? calloc((size_t)(cin_g * fh * fw), sizeof(FC_T)) : NULL;
        FC_T *bpack = malloc((size_t)(d->panels * u.nr * d->PB) * sizeof(FC_T));
        if ((framed && !frame) || !bpack) {
            FC_OMP(atomic write)
            status = FC_ERR_NOMEM;
        }
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
                                    partial + slot * size + g * d->K * d->M);
                }
            }
        }
        free(frame);
        free(bpack);
    }
    free(tap), free(pix);
    return status;
}

/* By taps: gy^T is packed for the whole batch first, its pixels counted
 * across images, so one kernel call sums a block of up to PB pixels of
 * several images (a 7x7 layer's 49 would make short calls). A task owns a
 * range of gw^T's rows (taps) and reads its channels of every image from
 * one frame, plane-major (channel, image), or from x in place. */
static int FC_FN(gw_by_taps)(FC_FN(fc_iukernel) u, const gw_indirect *d, const fc_conv2d_shape *s, const FC_T *gy,
                             const FC_T *x, FC_T *gwt) {
    const int64_t cin_g = GROUP_IN(s), taps = s->kh * s->kw, hw = s->h * s->w, NP = s->n * PIXELS(s);
    const int64_t blocks = (NP + d->PB - 1) / d->PB, block_size = d->panels * u.nr * d->PB;
    int64_t fh, fw;
    const int framed = conv_frame(s, &fh, &fw);
    /* planes cs apart, images is apart: the frame's (channel, image) planes, or x's */
    const int64_t cs = framed ? s->n * fh * fw : hw, is = framed ? fh * fw : s->c_in * hw;
    FC_T *packed = malloc((size_t)(s->groups * blocks * block_size) * sizeof(FC_T));
    ptrdiff_t *tap = malloc((size_t)d->K * sizeof(ptrdiff_t)), *pix = malloc((size_t)NP * sizeof(ptrdiff_t));
    if (!packed || !tap || !pix) {
        free(packed), free(tap), free(pix);
        return FC_ERR_NOMEM;
    }
    indirect_offsets(s, cin_g, cs, fw, tap);
    gw_pixel_offsets(s, s->n, is, fw, pix);
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
        FC_T *frame = framed ? calloc((size_t)(FC_MIN(most, cin_g) * cs), sizeof(FC_T)) : NULL;
        if (framed && !frame) {
            FC_OMP(atomic write)
            status = FC_ERR_NOMEM;
        }
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
                                k0, k1, b == 0, gwt + g * d->K * d->M);
            }
        }
        free(frame);
    }
    free(packed), free(tap), free(pix);
    return status;
}

static int FC_FN(fc_conv2d_grad_weight_indirect)(const fc_conv2d_shape *s, const FC_T *gy,
                                                 const FC_T *x, FC_T *gw) {
    const FC_FN(fc_iukernel) u = FC_FN(select_iukernel)();
    const int64_t M = GROUP_OUT(s), K = GROUP_IN(s) * s->kh * s->kw, size = s->c_out * K;
    const gw_indirect d = {M, K, (M + u.nr - 1) / u.nr, FC_MIN(s->n * PIXELS(s), (int64_t)FC_GW_PIXEL_BLOCK)};
    const int64_t slots = FC_MIN((int64_t)SLOTS, s->n);
    const int by_taps = 2 * s->n * s->c_out * PIXELS(s) < slots * size;
    FC_T *partial = malloc((size_t)((by_taps ? 1 : slots) * size) * sizeof(FC_T));
    if (!partial) return FC_ERR_NOMEM;
    const int status = by_taps ? FC_FN(gw_by_taps)(u, &d, s, gy, x, partial)
                               : FC_FN(gw_by_slots)(u, &d, s, gy, x, slots, partial);
    if (status == FC_OK) FC_FN(reduce_slots)(s, partial, by_taps ? 1 : slots, 1, gw);
    free(partial);
    return status;
}

/* The indirect GEMM wins from about 48 taps per output (K = c_in/groups *
 * kh * kw) and 8 output channels per group (M). It transposes gy into
 * panels once per image, which pays only when each gy value meets many
 * taps, and its tile is 32 channels wide (f32, AVX-512), mostly padding
 * for a handful. The dot products read gy in place. Measured (float32,
 * 2 threads, ms, dots / indirect):
 *   mnist_c1     M = 64, K =   9:  0.51 / 1.18
 *   lenet_c1     M =  6, K =  25:  0.29 / 0.80
 *   3 -> 64 3x3  M = 64, K =  27:  0.81 / 1.17
 *   4 -> 64 3x3  M = 64, K =  36:  1.03 / 1.30
 *   5 -> 64 3x3  M = 64, K =  45:  1.38 / 1.40
 *   8 -> 8 3x3   M =  8, K =  72:  0.51 / 0.30
 *   32 -> 4 3x3  M =  4, K = 288:  0.38 / 0.43
 *   32 -> 8 3x3  M =  8, K = 288:  0.44 / 0.43
 *   lenet_c2     M = 16, K = 150:  1.08 / 0.28
 *   3 -> 64 7x7  M = 64, K = 147:  4.58 / 2.31 */
static int grad_weight_by_dots(int64_t M, int64_t K) {
    return K < 48 || M < 8;
}

static int FC_FN(fc_conv2d_grad_weight_im2col)(const fc_conv2d_shape *s, const FC_T *gy,
                                               const FC_T *x, FC_T *gw) {
    if (grad_weight_by_dots(GROUP_OUT(s), GROUP_IN(s) * s->kh * s->kw))
        return FC_FN(grad_weight_dots)(s, gy, x, gw);
    return FC_FN(fc_conv2d_grad_weight_indirect)(s, gy, x, gw);
}

/* ----------------------------------------------------- entry points */

/* The GEMMs apply the activation in their epilogue; the plain loops in a
 * pass of their own. */
int FC_FN(fc_conv2d_forward)(const fc_conv2d_shape *s, fc_algorithm algo, const FC_T *x,
                             const FC_T *w, const FC_T *b, fc_activation act, FC_T *y) {
    int status = FC_OK;
    switch (algo) {
    case FC_ALGO_REF: FC_FN(fc_conv2d_forward_ref)(s, x, w, b, y); break;
    case FC_ALGO_DIRECT: status = FC_FN(fc_conv2d_forward_direct)(s, x, w, b, y); break;
    default: return FC_FN(fc_conv2d_forward_im2col)(s, x, w, b, act == FC_ACT_RELU ? FC_GEMM_RELU : 0, y);
    }
    if (status == FC_OK && act == FC_ACT_RELU) FC_FN(fc_relu)(s->n * s->c_out * PIXELS(s), y, y);
    return status;
}

int FC_FN(fc_conv2d_grad_input)(const fc_conv2d_shape *s, fc_algorithm algo, const FC_T *gy,
                                const FC_T *w, FC_T *gx) {
    switch (algo) {
    case FC_ALGO_REF: FC_FN(fc_conv2d_grad_input_ref)(s, gy, w, gx); return FC_OK;
    case FC_ALGO_DIRECT: return FC_FN(fc_conv2d_grad_input_direct)(s, gy, w, gx);
    default: return FC_FN(fc_conv2d_grad_input_im2col)(s, gy, w, gx);
    }
}

int FC_FN(fc_conv2d_grad_weight)(const fc_conv2d_shape *s, fc_algorithm algo, const FC_T *gy,
                                 const FC_T *x, FC_T *gw) {
    switch (algo) {
    case FC_ALGO_REF: FC_FN(fc_conv2d_grad_weight_ref)(s, gy, x, gw); return FC_OK;
    case FC_ALGO_DIRECT: return FC_FN(fc_conv2d_grad_weight_direct)(s, gy, x, gw);
    default: return FC_FN(fc_conv2d_grad_weight_im2col)(s, gy, x, gw);
    }
}

/* The sum of a plane in double, in 16 lanes added in a fixed order: one
 * running sum waits out the adder's latency on every element (a 64-channel
 * 28x28 layer's bias gradient took longer than its weight gradient). */
#define PLANE_LANES 16
FC_CLONES static double FC_FN(plane_sum)(const FC_T *p, int64_t n) {
    double lane[PLANE_LANES] = {0}, sum = 0;
    int64_t q = 0;
    for (; q + PLANE_LANES <= n; q += PLANE_LANES)
        for (int l = 0; l < PLANE_LANES; l++) lane[l] += p[q + l];
    for (int l = 0; l < PLANE_LANES; l++) sum += lane[l];
    for (; q < n; q++) sum += p[q];
    return sum;
}
#undef PLANE_LANES

int FC_FN(fc_conv2d_grad_bias)(const fc_conv2d_shape *s, const FC_T *gy, FC_T *gb) {
    const int64_t P = PIXELS(s);
    FC_OMP(parallel for num_threads(fc_threads_for(s->c_out, (double)s->n * P)) schedule(static))
    for (int64_t co = 0; co < s->c_out; co++) {
        double sum = 0;
        for (int64_t n = 0; n < s->n; n++) sum += FC_FN(plane_sum)(gy + (n * s->c_out + co) * P, P);
        gb[co] = (FC_T)sum;
    }
    return FC_OK;
}

#undef GROUP_IN
#undef GROUP_OUT
#undef PIXELS
#undef SLOTS
