/* conv2d's 3x3, stride-1, undilated convolutions by Winograd's minimal
 * filtering, F(4x4, 3x3) (Lavin and Gray, 2016): each 4x4 block of output
 * comes from a 6x6 block of input, with 36 multiplications per pair of
 * channels instead of 144:
 *   y = A^T [ (G w G^T) . (B^T d B) ] A        (. elementwise)
 * Summed over the input channels, the elementwise product becomes 36
 * independent GEMMs, one per point p of the 6x6 domain:
 *   M[p] (c_out x tiles) = U[p] (c_out x c_in) V[p] (c_in x tiles)
 * run on fastconv's packed GEMM. The weights are transformed and packed
 * once per call. Threads own blocks of tile rows (from any images) of one
 * group, and for small maps a part of its output channels: a block's
 * input is transformed into tile-major scratch (V), its 36 GEMMs run, and
 * its output is transformed into y with the bias and the ReLU, so the
 * scratch stays per thread and independent of the batch, and every tile's
 * sums run in an order fixed by the shape: 1 thread and N threads agree
 * bit for bit.
 *
 * Grad-input is the same forward applied to gy, with the kernel rotated
 * 180 degrees and its channel axes swapped, and padding 2 - pad (negative
 * padding crops). Family file (see common.h). */
#include <stdlib.h>

#include "kernels.h"

#define WINO_POINTS 36 /* the 6x6 transform domain */

/* The transforms of F(4x4, 3x3) on the points 0, 1, -1, 2, -2 and
 * infinity, written out below as formulas (g_lanes, bt_lanes, at_lanes):
 *   B^T = [4  0 -5  0 1 0]   G = [ 1/4    0    0 ]   A^T = [1 1  1 1  1 0]
 *         [0 -4 -4  1 1 0]       [-1/6 -1/6 -1/6 ]         [0 1 -1 2 -2 0]
 *         [0  4 -4 -1 1 0]       [-1/6  1/6 -1/6 ]         [0 1  1 4  4 0]
 *         [0 -2 -1  2 1 0]       [1/24 1/12  1/6 ]         [0 1 -1 8 -8 1]
 *         [0  2 -1 -2 1 0]       [1/24 -1/12 1/6 ]
 *         [0  4  0 -5 0 1]       [  0    0    1  ]                        */

/* Whether a shape can run by Winograd: a 3x3 kernel, stride 1, dilation 1. */
static int winograd_applies(const fc_conv2d_shape *s) {
    return s->kh == 3 && s->kw == 3 && s->stride_h == 1 && s->stride_w == 1 && s->dil_h == 1 && s->dil_w == 1;
}

/* G as formulas on 3-vectors, lane by lane: 6 values. */
static inline __attribute__((always_inline)) void FC_FN(g_lanes)(const FC_T *const d[3], FC_T *const o[6],
                                                                 int64_t n) {
    FC_IVDEP
    for (int64_t q = 0; q < n; q++) {
        const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q];
        const FC_T even = d0 + d2, sixth = (FC_T)(1.0 / 6), twelfth = (FC_T)(1.0 / 12);
        o[0][q] = d0 / 4;
        o[1][q] = -(even + d1) * sixth;
        o[2][q] = -(even - d1) * sixth;
        o[3][q] = d0 / 24 + d1 * twelfth + d2 * sixth;
        o[4][q] = d0 / 24 - d1 * twelfth + d2 * sixth;
        o[5][q] = d2;
    }
}

/* u[p * ps + ci] = (G w G^T)[p] for the K kernels w[ci][3][3] of one
 * output channel, lanes along ci; wq (9 x K) and t (18 x K) are scratch. */
FC_VECTOR_LOOP(wino_kernels, (const FC_T *w, int64_t K, FC_T *u, int64_t ps, FC_T *wq, FC_T *t),
               (w, K, u, ps, wq, t)) {
    for (int64_t ci = 0; ci < K; ci++)
        for (int q = 0; q < 9; q++) wq[q * K + ci] = w[ci * 9 + q];
    for (int j = 0; j < 3; j++) { /* t[i][j] = (G w)[i][j]: down each column j */
        const FC_T *const d[3] = {wq + j * K, wq + (3 + j) * K, wq + (6 + j) * K};
        FC_T *const o[6] = {t + (0 * 3 + j) * K, t + (1 * 3 + j) * K, t + (2 * 3 + j) * K,
                            t + (3 * 3 + j) * K, t + (4 * 3 + j) * K, t + (5 * 3 + j) * K};
        FC_FN(g_lanes)(d, o, K);
    }
    for (int i = 0; i < 6; i++) { /* u[i][jj] = (t G^T)[i][jj]: along each row i */
        const FC_T *const d[3] = {t + (i * 3 + 0) * K, t + (i * 3 + 1) * K, t + (i * 3 + 2) * K};
        FC_T *const o[6] = {u + (i * 6 + 0) * ps, u + (i * 6 + 1) * ps, u + (i * 6 + 2) * ps,
                            u + (i * 6 + 3) * ps, u + (i * 6 + 4) * ps, u + (i * 6 + 5) * ps};
        FC_FN(g_lanes)(d, o, K);
    }
}

/* The two transforms as formulas on 6-vectors, applied lane by lane to
 * arrays n long so that they vectorize: B^T (input) gives 6 values,
 * A^T (output) 4. */
static inline __attribute__((always_inline)) void FC_FN(bt_lanes)(const FC_T *const d[6], FC_T *const o[6],
                                                                  int64_t n) {
    FC_IVDEP
    for (int64_t q = 0; q < n; q++) {
        const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q], d3 = d[3][q], d4 = d[4][q], d5 = d[5][q];
        o[0][q] = 4 * d0 - 5 * d2 + d4;
        o[1][q] = -4 * (d1 + d2) + d3 + d4;
        o[2][q] = 4 * (d1 - d2) - d3 + d4;
        o[3][q] = 2 * (d3 - d1) - d2 + d4;
        o[4][q] = 2 * (d1 - d3) - d2 + d4;
        o[5][q] = 4 * d1 - 5 * d3 + d5;
    }
}

static inline __attribute__((always_inline)) void FC_FN(at_lanes)(const FC_T *const m[6], FC_T *const o[4],
                                                                  int64_t n) {
    FC_IVDEP
    for (int64_t q = 0; q < n; q++) {
        const FC_T m0 = m[0][q], m1 = m[1][q], m2 = m[2][q], m3 = m[3][q], m4 = m[4][q], m5 = m[5][q];
        const FC_T a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
        o[0][q] = m0 + a + c;
        o[1][q] = b + 2 * d;
        o[2][q] = a + 4 * c;
        o[3][q] = b + 8 * d + m5;
    }
}

/* A block is `rows` consecutive rows of tiles (of any images), laid out as
 * slots: slot r*sw + t is tile t of row r, with sw = tiles per row + 1, the
 * extra slot holding the input columns the row's last tile reads past
 * its own. The transforms run along all of a block's slots at once, so
 * they vectorize however narrow the map; the GEMMs compute the extra
 * slots too (1 in sw) and the output transform drops them.
 *
 * Per-thread scratch of a block of q slots (wino_scratch_size):
 *   phase[i][m][q+1]  input row i of each tile's 6x6 block, columns 4t + m
 *   cols[i][j][q]     row i of the block times B: point j
 *   tmp[i][j][q]      output: A^T m, row i, point j
 *   out[i][c][q]      output: A^T m A */
static size_t wino_scratch_size(int64_t q) { return (size_t)(24 * (q + 1) + 36 * q + 24 * q + 16 * q); }

/* V of input channel ci for the block's slots, v[p * pstride + slot]: the
 * block is tile rows row0 .. row0 + rows - 1, counted over the batch (th
 * per image), so it may span images. */
FC_VECTOR_LOOP(wino_input_block, (const fc_conv2d_shape *s, const FC_T *x, int64_t ci, int64_t row0, int64_t rows,
                                  int64_t th, int64_t tw, FC_T *scratch, FC_T *v, int64_t pstride),
               (s, x, ci, row0, rows, th, tw, scratch, v, pstride)) {
    const int64_t sw = tw + 1, q = rows * sw;
    FC_T *phase = scratch, *cols = phase + 24 * (q + 1);
    for (int64_t r = 0; r < rows; r++) {
        const int64_t n = (row0 + r) / th, ti = (row0 + r) % th;
        const FC_T *plane = x + (n * s->c_in + ci) * s->h * s->w;
        for (int i = 0; i < 6; i++) {
            const int64_t ih = 4 * ti - s->pad_top + i;
            const FC_T *in = ih >= 0 && ih < s->h ? plane + ih * s->w : NULL;
            FC_T *ph[4];
            for (int m = 0; m < 4; m++) ph[m] = phase + (i * 4 + m) * (q + 1) + r * sw;
            /* slots [lo, hi) have all four columns 4t - pad_left .. + 3 in the row */
            int64_t lo = sw, hi = sw;
            if (in) fc_valid_range(-s->pad_left, 4, s->w - 3, sw, &lo, &hi);
            for (int64_t t = 0; t < sw; t++) {
                if (t == lo) t = hi;
                for (int m = 0; m < 4 && t < sw; m++) {
                    const int64_t iw = 4 * t + m - s->pad_left;
                    ph[m][t] = in && iw >= 0 && iw < s->w ? in[iw] : 0;
                }
            }
            FC_IVDEP
            for (int64_t t = lo; t < hi; t++) {
                const FC_T *c = in + 4 * t - s->pad_left;
                ph[0][t] = c[0], ph[1][t] = c[1], ph[2][t] = c[2], ph[3][t] = c[3];
            }
        }
    }
    for (int plane = 0; plane < 24; plane++) phase[plane * (q + 1) + q] = 0; /* past the last slot: read, dropped */
    for (int i = 0; i < 6; i++) { /* columns 4t .. 4t+5: phases 0-3 at t, 0-1 at t + 1 */
        const FC_T *ph = phase + i * 4 * (q + 1);
        const FC_T *const d[6] = {ph, ph + (q + 1), ph + 2 * (q + 1), ph + 3 * (q + 1), ph + 1, ph + (q + 1) + 1};
        FC_T *const o[6] = {cols + (i * 6 + 0) * q, cols + (i * 6 + 1) * q, cols + (i * 6 + 2) * q,
                            cols + (i * 6 + 3) * q, cols + (i * 6 + 4) * q, cols + (i * 6 + 5) * q};
        FC_FN(bt_lanes)(d, o, q);
    }
    for (int j = 0; j < 6; j++) {
        const FC_T *const d[6] = {cols + (0 * 6 + j) * q, cols + (1 * 6 + j) * q, cols + (2 * 6 + j) * q,
                                  cols + (3 * 6 + j) * q, cols + (4 * 6 + j) * q, cols + (5 * 6 + j) * q};
        FC_T *const o[6] = {v + (0 * 6 + j) * pstride, v + (1 * 6 + j) * pstride, v + (2 * 6 + j) * pstride,
                            v + (3 * 6 + j) * pstride, v + (4 * 6 + j) * pstride, v + (5 * 6 + j) * pstride};
        FC_FN(bt_lanes)(d, o, q);
    }
}

/* The epilogue's ReLU, a NaN kept. */
static inline FC_T FC_FN(wino_finish)(FC_T v, int relu) {
    return relu && !(v > 0) ? (v != v ? v : 0) : v;
}

/* One output channel of a block from m[p * pstride + slot]: A^T m A +
 * bias, ReLU with FC_GEMM_RELU, into y's 4x4 blocks clipped to the plane. */
FC_VECTOR_LOOP(wino_output_block, (const fc_conv2d_shape *s, const FC_T *m, int64_t pstride, int64_t co,
                                   int64_t row0, int64_t rows, int64_t th, int64_t tw, FC_T bias, unsigned flags,
                                   FC_T *scratch, FC_T *y),
               (s, m, pstride, co, row0, rows, th, tw, bias, flags, scratch, y)) {
    const int64_t sw = tw + 1, q = rows * sw;
    FC_T *tmp = scratch + 24 * (q + 1) + 36 * q, *out = tmp + 24 * q;
    for (int j = 0; j < 6; j++) {
        const FC_T *const d[6] = {m + (0 * 6 + j) * pstride, m + (1 * 6 + j) * pstride, m + (2 * 6 + j) * pstride,
                                  m + (3 * 6 + j) * pstride, m + (4 * 6 + j) * pstride, m + (5 * 6 + j) * pstride};
        FC_T *const o[4] = {tmp + (0 * 6 + j) * q, tmp + (1 * 6 + j) * q, tmp + (2 * 6 + j) * q,
                            tmp + (3 * 6 + j) * q};
        FC_FN(at_lanes)(d, o, q);
    }
    for (int i = 0; i < 4; i++) {
        const FC_T *const d[6] = {tmp + (i * 6 + 0) * q, tmp + (i * 6 + 1) * q, tmp + (i * 6 + 2) * q,
                                  tmp + (i * 6 + 3) * q, tmp + (i * 6 + 4) * q, tmp + (i * 6 + 5) * q};
        FC_T *const o[4] = {out + (i * 4 + 0) * q, out + (i * 4 + 1) * q, out + (i * 4 + 2) * q,
                            out + (i * 4 + 3) * q};
        FC_FN(at_lanes)(d, o, q);
    }
    const int relu = (flags & FC_GEMM_RELU) != 0;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t n = (row0 + r) / th, ti = (row0 + r) % th;
        FC_T *plane = y + (n * s->c_out + co) * PIXELS(s);
        for (int i = 0; i < 4 && 4 * ti + i < s->out_h; i++) {
            FC_T *row = plane + (4 * ti + i) * s->out_w;
            const FC_T *o = out + i * 4 * q + r * sw; /* column c of tile t at o[c*q + t] */
            const int64_t whole = s->out_w / 4;       /* tiles all of whose columns are in the row */
            FC_IVDEP
            for (int64_t t = 0; t < whole; t++)
                for (int c = 0; c < 4; c++) row[4 * t + c] = FC_FN(wino_finish)(o[c * q + t] + bias, relu);
            for (int64_t ow = 4 * whole; ow < s->out_w; ow++)
                row[ow] = FC_FN(wino_finish)(o[ow % 4 * q + ow / 4] + bias, relu);
        }
    }
}

/* The forward by Winograd for a shape that applies; pad_top and pad_left
 * may be negative (grad-input's crop). w is (c_out, c_in/groups, 3, 3). */
static int FC_FN(winograd_forward)(const fc_conv2d_shape *s, const FC_T *x, const FC_T *w, const FC_T *b,
                                   unsigned flags, FC_T *y) {
    const int64_t M = GROUP_OUT(s), K = GROUP_IN(s), G = s->groups;
    const int64_t th = (s->out_h + 3) / 4, tw = (s->out_w + 3) / 4, sw = tw + 1, tile_rows = s->n * th;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    /* Tile rows per block: V and M within about 1 MiB (an L2), and among
     * those the count whose slots best fill the GEMM's panels of nr
     * columns (the larger on a tie). Small maps give few blocks: then the
     * output channels are split too (each part transforms the block's
     * input again, cheap beside its GEMMs), for two tasks per thread. */
    const int64_t nr = k->gemm.nr, want = 2 * (int64_t)fc_get_num_threads();
    int64_t most = FC_MAX((int64_t)1, FC_MAX(nr, (int64_t)262144 / (WINO_POINTS * (K + M))) / sw);
    most = FC_MIN(most, tile_rows);
    int64_t RB = 1;
    for (int64_t r = 1; r <= most; r++) /* fill(r) = r*sw / (r*sw rounded up to panels), compared exactly */
        if (r * sw * ((RB * sw + nr - 1) / nr) >= RB * sw * ((r * sw + nr - 1) / nr)) RB = r;
    const int64_t blocks = (tile_rows + RB - 1) / RB;
    const int64_t parts = FC_MIN((M + FC_MR - 1) / FC_MR, FC_MAX((int64_t)1, (want + G * blocks - 1) / (G * blocks)));
    const int64_t MP = ((M + parts - 1) / parts + FC_MR - 1) / FC_MR * FC_MR; /* output channels per part */
    const int64_t Q = RB * sw, tasks = G * blocks * parts;
    /* U[g][p][part] = point p of the part's kernels of group g, packed as GEMM A. */
    const size_t a_size = FC_FN(gemm_packed_a_size)(MP, K);
    FC_T *u = malloc((size_t)(WINO_POINTS * M * K) * sizeof(FC_T));
    FC_T *upack = malloc(a_size * (size_t)(G * WINO_POINTS * parts) * sizeof(FC_T));
    if (!u || !upack) {
        free(u), free(upack);
        return FC_ERR_NOMEM;
    }
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for(G * M, 200.0 * K)))
    for (int64_t g = 0; g < G; g++) {
        FC_T *wq = fc_scratch((size_t)(27 * K) * sizeof(FC_T), 0, &status);
        FC_OMP(for schedule(static))
        for (int64_t co = 0; co < M; co++) /* u[p][co][ci] */
            if (wq) k->wino_kernels(w + (g * M + co) * K * 9, K, u + co * K, M * K, wq, wq + 9 * K);
        free(wq);
        FC_OMP(for schedule(static))
        for (int64_t pp = 0; pp < WINO_POINTS * parts; pp++) {
            const int64_t p = pp / parts, m0 = pp % parts * MP;
            const FC_FN(fc_strided) um = {u + p * M * K + m0 * K, K, 1};
            const FC_FN(fc_operand) a = {FC_FN(pack_strided), &um, NULL};
            if (m0 < M) FC_FN(gemm_pack_a)(FC_MIN(MP, M - m0), K, &a, upack + ((g * WINO_POINTS) * parts + pp) * a_size);
        }
    }
    free(u);
    if (status != FC_OK) {
        free(upack);
        return status;
    }
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * WINO_POINTS * MP * K * Q)))
    {
        FC_T *v = fc_scratch((size_t)(WINO_POINTS * (K + MP) * Q) * sizeof(FC_T), 0, &status);
        FC_T *work = fc_scratch(FC_FN(gemm_workspace)(MP, Q, K) * sizeof(FC_T), 0, &status);
        FC_T *scratch = fc_scratch(wino_scratch_size(Q) * sizeof(FC_T), 0, &status);
        FC_OMP(for schedule(static))
        for (int64_t task = 0; task < tasks; task++) {
            if (!v || !work || !scratch) continue;
            const int64_t g = task / (blocks * parts), row0 = task / parts % blocks * RB;
            const int64_t m0 = task % parts * MP, mp = FC_MIN(MP, M - m0), rows = FC_MIN(RB, tile_rows - row0);
            if (mp <= 0) continue;
            const int64_t q = rows * sw;
            FC_T *mb = v + WINO_POINTS * K * Q; /* M[p][co][slot] */
            for (int64_t ci = 0; ci < K; ci++)
                k->wino_input_block(s, x, g * K + ci, row0, rows, th, tw, scratch, v + ci * q, K * q);
            for (int64_t p = 0; p < WINO_POINTS; p++) {
                const FC_FN(fc_strided) vm = {v + p * K * q, 1, q};
                const FC_FN(fc_operand) a = {NULL, NULL, upack + ((g * WINO_POINTS + p) * parts + m0 / MP) * a_size};
                const FC_FN(fc_operand) bo = {FC_FN(pack_strided), &vm, NULL};
                FC_FN(gemm_serial)(mp, q, K, &a, &bo, mb + p * mp * q, q, NULL, 0, work);
            }
            for (int64_t co = 0; co < mp; co++) {
                const int64_t c = g * M + m0 + co;
                k->wino_output_block(s, mb + co * q, mp * q, c, row0, rows, th, tw, b ? b[c] : 0, flags, scratch, y);
            }
        }
        free(v);
        free(work);
        free(scratch);
    }
    free(upack);
    return status;
}

/* Grad-input as the forward of gy by the kernel rotated 180 degrees with
 * its channel axes swapped per group: wt[g][ci][co] = w[g][co][ci] turned. */
static int FC_FN(winograd_grad_input)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, FC_T *gx) {
    const int64_t M = GROUP_OUT(s), K = GROUP_IN(s);
    FC_T *wt = malloc((size_t)(s->c_out * K * 9) * sizeof(FC_T));
    if (!wt) return FC_ERR_NOMEM;
    for (int64_t g = 0; g < s->groups; g++)
        for (int64_t co = 0; co < M; co++)
            for (int64_t ci = 0; ci < K; ci++)
                for (int64_t q = 0; q < 9; q++)
                    wt[((g * K + ci) * M + co) * 9 + q] = w[((g * M + co) * K + ci) * 9 + 8 - q];
    fc_conv2d_shape t = *s;
    t.c_in = s->c_out, t.c_out = s->c_in, t.h = s->out_h, t.w = s->out_w, t.out_h = s->h, t.out_w = s->w;
    t.pad_top = 2 - s->pad_top, t.pad_left = 2 - s->pad_left;
    const int status = FC_FN(winograd_forward)(&t, gy, wt, NULL, 0, gx);
    free(wt);
    return status;
}
