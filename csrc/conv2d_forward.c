/* conv2d's forward as a GEMM: packed (the image packed into the GEMM's
 * panels) or indirect (the image read in place through a table of tap
 * offsets, after XNNPACK's IGEMM). Threads own tiles of y: (image, group,
 * pixel block). conv2d.c chooses between them. Family file (see common.h). */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* The forward as a packed GEMM, for few taps and for 1x1 (see
 * fc_conv2d_forward_gemm): the image is packed into the GEMM's panels
 * (implicit im2col; a 1x1, stride-1, unpadded conv reads it as a plain
 * matrix), and tiles are rows of pixels stored straight into y. */
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
    FC_T *wpack = fc_alloc(a_size * (size_t)s->groups * sizeof(FC_T));
    if (!wpack) return FC_ERR_NOMEM;
    for (int64_t g = 0; g < s->groups; g++) {
        const FC_FN(fc_strided) wm = {w + g * M * K, K, 1};
        const FC_FN(fc_operand) a = {FC_FN(pack_strided), &wm, NULL, NULL};
        FC_FN(gemm_pack_a)(M, K, &a, wpack + g * a_size);
    }
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * M * K * NB)))
    {
        FC_T *work = fc_scratch(FC_FN(gemm_workspace)(M, NB, K) * sizeof(FC_T), 0, &status);
        FC_OMP(for schedule(static))
        for (int64_t t = 0; t < tasks; t++) {
            if (!work) continue;
            const int64_t img = t / tiles, n = img / s->groups, g = img % s->groups;
            const int64_t p0 = t % tiles * NB, nb = FC_MIN(NB, P - p0);
            const FC_T *xg = x + (n * s->c_in + g * cin_g) * s->h * s->w;
            const FC_FN(fc_strided) xm = {xg + p0, 1, P};
            const FC_FN(fc_im2col_operand) xc = {s, xg, p0};
            const FC_FN(fc_operand) a = {NULL, NULL, wpack + g * a_size, NULL};
            const FC_FN(fc_operand) bo = is_pointwise(s) ? (FC_FN(fc_operand)){FC_FN(pack_strided), &xm, NULL, NULL}
                                                         : (FC_FN(fc_operand)){FC_FN(pack_im2col), &xc, NULL, NULL};
            FC_FN(gemm_serial)(M, nb, K, &a, &bo, y + (n * s->c_out + g * M) * P + p0, P,
                               b ? b + g * M : NULL, flags, work);
        }
        fc_free(work);
    }
    fc_free(wpack);
    return status;
}

/* The forward as an indirect GEMM (gemm.h, im2col.c): a tile is 6 output
 * pixels x NR output channels, each pixel's row of A read from the image
 * (or its frame) through the tap offsets, B the weights, packed once per
 * call in panels [K][NR] (zero past c_out). Each tile sums all K taps in
 * one call, in a fixed order, and is stored transposed into y's planes.
 * The image is never copied into GEMM panels: packing it (implicit
 * im2col) was a large share of small layers' time (benchmarks/RULES.md).
 *
 * A task owns a run of one group's pixels, counted through the batch
 * image after image, and all or a part of its output channels; within
 * it, blocks of FC_PIXEL_BLOCK pixels run panel by panel, so one B panel
 * (NR x K) serves a block's tiles from L2. Runs and blocks cross from one
 * image into the next: on a small map a block holds several images'
 * pixels, so a panel's weights serve more tiles while they are in cache
 * and no image ends in a part-empty tile (a 512-channel 7x7 layer read
 * its 9.4 MB of weights once per image, and computed 54 rows for 49). */
#define FC_PIXEL_BLOCK 96

/* Taps per kernel call: a block's tiles sum K in chunks of this many, each
 * chunk's weights (KC x NR, 16 KiB) staying in L1 across the block's tiles
 * while they read the image; whole-K calls streamed the panel from L2 on
 * every tile. */
#define FC_IGEMM_KC 128

static int FC_FN(fc_conv2d_forward_indirect)(const fc_conv2d_shape *s, const FC_T *x, const FC_T *w,
                                             const FC_T *b, unsigned flags, FC_T *y, fc_out_view v) {
    const FC_FN(fc_iukernel) ukernel = FC_FN(kernels)()->igemm;
    const int64_t nr = ukernel.nr, M = GROUP_OUT(s), cin_g = GROUP_IN(s), P = PIXELS(s), Q = s->n * P;
    const int64_t K = cin_g * s->kh * s->kw, panels = (M + nr - 1) / nr;
    /* Split the pixels and the output channels for the threads, the
     * larger side first: a task reads all of its channels' weights and its
     * pixels' inputs (a 512-channel 3x3 layer on a 7x7 map has 9.4 MB of
     * weights and 100 KB of input an image). */
    const int64_t rows = (Q + FC_MR - 1) / FC_MR;
    int64_t parts, cparts;
    if (M * K > P * cin_g) {
        cparts = split_for_threads(s->groups, panels);
        parts = split_for_threads(s->groups * cparts, rows);
    } else {
        parts = split_for_threads(s->groups, rows);
        cparts = split_for_threads(s->groups * parts, panels);
    }
    const int64_t NB = ((Q + parts - 1) / parts + FC_MR - 1) / FC_MR * FC_MR;
    const int64_t runs = (Q + NB - 1) / NB, tasks = s->groups * runs * cparts;
    int64_t fh, fw;
    const int framed = conv_frame(s, &fh, &fw);
    /* a block's images are framed in a ring of as many frames as a block
     * can touch, frame n % nf holding image n (of the task's group) */
    const int64_t nf = (FC_PIXEL_BLOCK + P - 1) / P + 1, frame_size = cin_g * fh * fw;
    FC_T *bpack = fc_alloc((size_t)(s->groups * panels * nr * (K + 1)) * sizeof(FC_T));
    ptrdiff_t *off = fc_alloc((size_t)FC_MAX(K, (int64_t)1) * sizeof(ptrdiff_t));
    if (!bpack || !off) {
        fc_free(bpack), fc_free(off);
        return FC_ERR_NOMEM;
    }
    const int64_t panel_size = nr * (K + 1);
    indirect_offsets(s, cin_g, fh * fw, fw, off);
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * M * K * NB / cparts)))
    {
        /* Panel (g, pn): K rows of its kernel's width of weights, then as
         * many biases; the threads pack them together first. */
        FC_OMP(for schedule(static))
        for (int64_t gp = 0; gp < s->groups * panels; gp++) {
            const int64_t g = gp / panels, pn = gp % panels, co = pn * nr;
            const int width = FC_FN(panel_iukernel)(ukernel, pn, M).nr;
            FC_T *panel = bpack + gp * panel_size;
            const FC_FN(fc_strided) wm = {w + g * M * K, K, 1};
            FC_FN(pack_strided)(&wm, co, FC_MIN((int64_t)width, M - co), 0, K, width, panel);
            for (int64_t j = 0; j < width; j++) panel[K * width + j] = co + j < M && b ? b[g * M + co + j] : 0;
        }
        FC_T *frames = framed ? fc_scratch((size_t)(nf * frame_size) * sizeof(FC_T), 1, &status) : NULL;
        int64_t *framed_image = framed ? fc_scratch((size_t)nf * sizeof(int64_t), 0, &status) : NULL;
        for (int64_t f = 0; framed_image && f < nf; f++) framed_image[f] = -1;
        FC_OMP(for schedule(static))
        for (int64_t t = 0; t < tasks; t++) {
            if (framed && (!frames || !framed_image)) continue;
            const int64_t g = t / (runs * cparts), p0 = t / cparts % runs * NB, p1 = FC_MIN(Q, p0 + NB);
            const int64_t part = t % cparts, pn0 = panels * part / cparts, pn1 = panels * (part + 1) / cparts;
            FC_T *yg = y + g * M * v.plane;
            for (int64_t pb = p0; pb < p1; pb += FC_PIXEL_BLOCK) {
                const int64_t pe = FC_MIN(p1, pb + FC_PIXEL_BLOCK);
                /* Each pixel's window corner and place in y; past pe, the
                 * last pixel again. */
                const FC_T *a[FC_PIXEL_BLOCK + FC_MR];
                int64_t at[FC_PIXEL_BLOCK + FC_MR];
                int64_t n = pb / P, oh = pb % P / s->out_w, ow = pb % s->out_w;
                const FC_T *image = NULL;
                for (int64_t p = pb; p < pb + FC_PIXEL_BLOCK + FC_MR; p++) {
                    if (!image) { /* the block's first pixel, or the first of an image */
                        image = x + (n * s->c_in + g * cin_g) * s->h * s->w;
                        if (framed) {
                            FC_T *frame = frames + n % nf * frame_size;
                            if (framed_image[n % nf] != n * s->groups + g) /* holds another image or group */
                                FC_FN(frame_planes)(s, image, cin_g, fh, fw, frame), framed_image[n % nf] = n * s->groups + g;
                            image = frame;
                        }
                    }
                    a[p - pb] = image + oh * s->stride_h * fw + ow * s->stride_w;
                    at[p - pb] = n * s->c_out * v.plane + oh * v.row + ow * v.col;
                    if (p + 1 < pe && ++ow == s->out_w && (ow = 0, ++oh == s->out_h)) oh = 0, n++, image = NULL;
                }
                for (int64_t pn = pn0; pn < pn1; pn++) {
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
        fc_free(frames);
        fc_free(framed_image);
    }
    fc_free(bpack);
    fc_free(off);
    return status;
}
