/* conv2d's 3x3 and 2x2, stride-1, undilated convolutions by Winograd's
 * minimal filtering, F(m x m, r x r) (Lavin and Gray, 2016): each m x m
 * block of output comes from an a x a block of input, a = m + r - 1, with
 * a^2 multiplications per pair of channels instead of r^2 m^2:
 *   y = A^T [ (G w G^T) . (B^T d B) ] A        (. elementwise)
 * Summed over the input channels, the elementwise product becomes a^2
 * independent GEMMs, one per point p of the a x a domain:
 *   M[p] (c_out x tiles) = U[p] (c_out x c_in) V[p] (c_in x tiles)
 * run on fastconv's packed GEMM. Two tile sizes for each kernel, which
 * "auto" chooses between by the map (conv2d.c): F(4x4, 3x3) (36 points,
 * 4x fewer multiplications, float32 error 1.3-6.4x the GEMM's) and
 * F(2x2, 3x3) (16 points, 2.25x fewer, error 0.4-2.7x the GEMM's);
 * F(3x3, 2x2) (16 points, 2.25x fewer) and F(2x2, 2x2) (9 points, 1.8x
 * fewer), both within 4x the GEMM's error, which strided layers' stride
 * phases run on (conv2d_polyphase.c).
 *
 * F(4x4)'s error is mostly its GEMMs' rounding, which the output
 * transform magnifies. Two choices keep it down (Barabasz et al., "Error
 * analysis and improving the accuracy of Winograd convolution", 2019):
 * the points 0, 1, -1, 1/2, -2 instead of 0, +-1, +-2, whose transforms
 * have smaller coefficients (3x less error), and the GEMMs' sums added in
 * runs of 32 channels or tiles (FC_GEMM_SHORT_RUNS, 2-3x less, for 3-4%
 * of the time). Before both, it was 14-54x the GEMM's.
 *
 * The weights are transformed and packed once per call, or, where they
 * would outgrow the caches, by each task a k-block of a few output
 * channels at a time, just before its GEMMs use them. Threads own
 * blocks of consecutive tiles (from any rows and images) of one group,
 * and for small maps a part of its output channels: a block's input is
 * transformed into tile-major scratch (V), its GEMMs run, and its output
 * is transformed into y with the bias and the ReLU, so the scratch stays
 * per thread and independent of the batch, and every tile's sums run in
 * an order fixed by the shape: 1 thread and N threads agree bit for bit.
 *
 * Grad-input is the same forward applied to gy, with the kernel rotated
 * 180 degrees and its channel axes swapped, and padding r - 1 - pad (negative
 * padding crops). Grad-weight runs the adjoint transforms (at the end of
 * the file). Family file (see common.h). */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* The transforms, on the points 0, (1,) -1, (1/2, -2,) and infinity,
 * written out below as formulas (g_lanes, bt_lanes, at_lanes). F(2x2, 3x3):
 *   B^T = [1  0 -1  0]   G = [ 1    0    0 ]   A^T = [1 1  1  0]
 *         [0  1  1  0]       [1/2  1/2  1/2]         [0 1 -1 -1]
 *         [0 -1  1  0]       [1/2 -1/2  1/2]
 *         [0  1  0 -1]       [ 0    0    1 ]
 * F(4x4, 3x3):
 *   B^T = [1 -3/2   -2  3/2   1 0]   G = [   1     0     0  ]
 *         [0   -1  1/2  5/2   1 0]       [  1/3   1/3   1/3 ]
 *         [0    1 -5/2  1/2   1 0]       [ -1/3   1/3  -1/3 ]
 *         [0   -2   -1    2   1 0]       [-16/15 -8/15 -4/15]
 *         [0  1/2   -1 -1/2   1 0]       [ 1/15 -2/15  4/15 ]
 *         [0    1 -3/2   -2 3/2 1]       [   0     0     1  ]
 *   A^T = [1 1  1   1   1 0]
 *         [0 1 -1 1/2  -2 0]
 *         [0 1  1 1/4   4 0]
 *         [0 1 -1 1/8  -8 1]
 * F(3x3, 2x2), whose B^T is F(2x2, 3x3)'s with its last row negated:
 *   G = [ 1    0  ]   A^T = [1 1  1 0]
 *       [1/2  1/2 ]         [0 1 -1 0]
 *       [1/2 -1/2 ]         [0 1  1 1]
 *       [ 0    1  ]
 * F(2x2, 2x2), on 0, 1 and infinity:
 *   B^T = [1 -1 0]   G = [1 0]   A^T = [1 1 0]
 *         [0  1 0]       [1 1]         [0 1 1]
 *         [0 -1 1]       [0 1]                                           */

/* Whether a shape can run by Winograd: a 3x3 or 2x2 kernel, stride 1,
 * dilation 1. */
static int winograd_applies(const fc_conv2d_shape *s) {
    return (s->kh == 3 || s->kh == 2) && s->kw == s->kh && s->stride_h == 1 && s->stride_w == 1 && s->dil_h == 1 &&
           s->dil_w == 1;
}

/* The variant for a tile (2, or 4 for the larger) and s's kernel: 2x2
 * kernels' larger tile is 3x3. */
static inline wino_f wino_variant(int tile, const fc_conv2d_shape *s) {
    const wino_f f = {s->kh == 2 && tile == 4 ? 3 : tile, (int)s->kh};
    return f;
}

/* The side of F(m x m, r x r)'s a x a domain, a = m + r - 1, and its points. */
static inline int wino_side(wino_f f) { return f.m + f.r - 1; }
static inline int64_t wino_points(wino_f f) { return (int64_t)wino_side(f) * wino_side(f); }

/* Offset of row or channel i in a wino_layout. */
static inline int64_t wino_at(int64_t i, int64_t stride, int phases, const int64_t *phase) {
    return i / phases * stride + phase[i % phases];
}

/* A layer's own kernels, (c_out, c_in/groups, r, r). */
static wino_layout wino_dense(const fc_conv2d_shape *s) {
    const int64_t taps = s->kh * s->kw;
    wino_layout l = {GROUP_OUT(s) * GROUP_IN(s) * taps, GROUP_IN(s) * taps, taps, 1, 1, {0}, {0}, {0}};
    for (int q = 0; q < taps; q++) l.tap[q] = q;
    return l;
}

/* The kernels grad-input convolves with: rotated 180 degrees, the channel
 * axes swapped. */
static wino_layout wino_turned(const wino_layout *l, int taps) {
    wino_layout t = *l;
    t.rs = l->cs, t.rp = l->cp, t.cs = l->rs, t.cp = l->rp;
    for (int i = 0; i < 9; i++) t.rphase[i] = l->cphase[i], t.cphase[i] = l->rphase[i];
    for (int q = 0; q < taps; q++) t.tap[q] = l->tap[taps - 1 - q];
    return t;
}

/* Whether l lays kernels out as wino_dense does: group g's kernel (co, ci)
 * at (co * K + ci) * taps, its taps in order. */
static int wino_is_dense(const wino_layout *l, int64_t K, int taps) {
    if (l->rp != 1 || l->cp != 1 || l->rphase[0] != 0 || l->cphase[0] != 0 || l->cs != taps || l->rs != K * taps)
        return 0;
    for (int q = 0; q < taps; q++)
        if (l->tap[q] != q) return 0;
    return 1;
}

/* The three transforms as formulas on vectors of lanes, lane by lane over
 * arrays n long so that they vectorize: G (r kernel values to a points),
 * B^T (a input values to a) and A^T (a products to m outputs), for
 * F(m x m, r x r) on an a x a domain. Each is called with f a constant,
 * so the choice folds away. */
static inline __attribute__((always_inline)) void FC_FN(g_lanes)(wino_f f, const FC_T *const d[3], FC_T *const o[6],
                                                                 int64_t n) {
    FC_IVDEP
    for (int64_t q = 0; q < n; q++) {
        if (f.r == 2 && f.m == 2) {
            const FC_T d0 = d[0][q], d1 = d[1][q];
            o[0][q] = d0;
            o[1][q] = d0 + d1;
            o[2][q] = d1;
            continue;
        }
        if (f.r == 2) {
            const FC_T d0 = d[0][q], d1 = d[1][q];
            o[0][q] = d0;
            o[1][q] = (d0 + d1) * (FC_T)0.5;
            o[2][q] = (d0 - d1) * (FC_T)0.5;
            o[3][q] = d1;
            continue;
        }
        const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q], even = d0 + d2;
        if (f.m == 2) {
            o[0][q] = d0;
            o[1][q] = (even + d1) * (FC_T)0.5;
            o[2][q] = (even - d1) * (FC_T)0.5;
            o[3][q] = d2;
        } else {
            const FC_T third = (FC_T)(1.0 / 3), fifteenth = (FC_T)(1.0 / 15);
            o[0][q] = d0;
            o[1][q] = (even + d1) * third;
            o[2][q] = (d1 - even) * third;
            o[3][q] = (4 * d0 + 2 * d1 + d2) * (-4 * fifteenth);
            o[4][q] = (d0 - 2 * d1 + 4 * d2) * fifteenth;
            o[5][q] = d2;
        }
    }
}

static inline __attribute__((always_inline)) void FC_FN(bt_lanes)(wino_f f, const FC_T *const d[6], FC_T *const o[6],
                                                                  int64_t n) {
    FC_IVDEP
    for (int64_t q = 0; q < n; q++) {
        if (f.r == 2 && f.m == 2) {
            const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q];
            o[0][q] = d0 - d1;
            o[1][q] = d1;
            o[2][q] = d2 - d1;
        } else if (f.m + f.r == 5) { /* F(2x2, 3x3) and F(3x3, 2x2) share B^T up to the last row's sign */
            const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q], d3 = d[3][q];
            o[0][q] = d0 - d2;
            o[1][q] = d1 + d2;
            o[2][q] = d2 - d1;
            o[3][q] = f.r == 3 ? d1 - d3 : d3 - d1;
        } else {
            const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q], d3 = d[3][q], d4 = d[4][q], d5 = d[5][q];
            const FC_T half = (FC_T)0.5, odd = d3 - d1;
            o[0][q] = d0 - 2 * d2 + d4 + 3 * half * odd;
            o[1][q] = d4 - d1 + half * (d2 + 5 * d3);
            o[2][q] = d4 + d1 + half * (d3 - 5 * d2);
            o[3][q] = d4 - d2 + 2 * odd;
            o[4][q] = d4 - d2 - half * odd;
            o[5][q] = d1 - 2 * d3 + d5 + 3 * half * (d4 - d2);
        }
    }
}

static inline __attribute__((always_inline)) void FC_FN(at_lanes)(wino_f f, const FC_T *const d[6], FC_T *const o[4],
                                                                  int64_t n) {
    FC_IVDEP
    for (int64_t q = 0; q < n; q++) {
        if (f.r == 2 && f.m == 2) {
            const FC_T m0 = d[0][q], m1 = d[1][q], m2 = d[2][q];
            o[0][q] = m0 + m1;
            o[1][q] = m1 + m2;
        } else if (f.r == 2) {
            const FC_T m0 = d[0][q], m1 = d[1][q], m2 = d[2][q], m3 = d[3][q];
            o[0][q] = m0 + m1 + m2;
            o[1][q] = m1 - m2;
            o[2][q] = m1 + m2 + m3;
        } else if (f.m == 2) {
            const FC_T m0 = d[0][q], m1 = d[1][q], m2 = d[2][q], m3 = d[3][q];
            o[0][q] = m0 + m1 + m2;
            o[1][q] = m1 - m2 - m3;
        } else {
            const FC_T m0 = d[0][q], m1 = d[1][q], m2 = d[2][q], m3 = d[3][q], m4 = d[4][q], m5 = d[5][q];
            const FC_T a = m1 + m2, b = m1 - m2;
            o[0][q] = m0 + a + m3 + m4;
            o[1][q] = b + m3 * (FC_T)0.5 - 2 * m4;
            o[2][q] = a + m3 * (FC_T)0.25 + 4 * m4;
            o[3][q] = b + m3 * (FC_T)0.125 - 8 * m4 + m5;
        }
    }
}

/* The adjoints that grad-weight needs: A (m gradient values to a points)
 * and G^T (a points to r kernel values). */
static inline __attribute__((always_inline)) void FC_FN(a_lanes)(wino_f f, const FC_T *const d[4], FC_T *const o[6],
                                                                 int64_t n) {
    FC_IVDEP
    for (int64_t q = 0; q < n; q++) {
        if (f.r == 2 && f.m == 2) {
            const FC_T d0 = d[0][q], d1 = d[1][q];
            o[0][q] = d0;
            o[1][q] = d0 + d1;
            o[2][q] = d1;
        } else if (f.r == 2) {
            const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q];
            o[0][q] = d0;
            o[1][q] = d0 + d1 + d2;
            o[2][q] = d0 - d1 + d2;
            o[3][q] = d2;
        } else if (f.m == 2) {
            const FC_T d0 = d[0][q], d1 = d[1][q];
            o[0][q] = d0;
            o[1][q] = d0 + d1;
            o[2][q] = d0 - d1;
            o[3][q] = -d1;
        } else {
            const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q], d3 = d[3][q];
            const FC_T even = d0 + d2, odd = d1 + d3;
            o[0][q] = d0;
            o[1][q] = even + odd;
            o[2][q] = even - odd;
            o[3][q] = d0 + d1 * (FC_T)0.5 + d2 * (FC_T)0.25 + d3 * (FC_T)0.125;
            o[4][q] = d0 - 2 * d1 + 4 * d2 - 8 * d3;
            o[5][q] = d3;
        }
    }
}

static inline __attribute__((always_inline)) void FC_FN(gt_lanes)(wino_f f, const FC_T *const d[6], FC_T *const o[3],
                                                                  int64_t n) {
    FC_IVDEP
    for (int64_t q = 0; q < n; q++) {
        if (f.r == 2 && f.m == 2) {
            const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q];
            o[0][q] = d0 + d1;
            o[1][q] = d1 + d2;
        } else if (f.r == 2) {
            const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q], d3 = d[3][q], half = (FC_T)0.5;
            o[0][q] = d0 + (d1 + d2) * half;
            o[1][q] = (d1 - d2) * half + d3;
        } else if (f.m == 2) {
            const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q], d3 = d[3][q], half = (FC_T)0.5;
            o[0][q] = d0 + (d1 + d2) * half;
            o[1][q] = (d1 - d2) * half;
            o[2][q] = (d1 + d2) * half + d3;
        } else {
            const FC_T d0 = d[0][q], d1 = d[1][q], d2 = d[2][q], d3 = d[3][q], d4 = d[4][q], d5 = d[5][q];
            const FC_T third = (FC_T)(1.0 / 3), fifteenth = (FC_T)(1.0 / 15);
            o[0][q] = d0 + (d1 - d2) * third + (d4 - 16 * d3) * fifteenth;
            o[1][q] = (d1 + d2) * third - (8 * d3 + 2 * d4) * fifteenth;
            o[2][q] = (d1 - d2) * third + (4 * d4 - 4 * d3) * fifteenth + d5;
        }
    }
}

/* Input channels wino_kernels transforms at a time: its scratch, at most
 * 9 + 18 + 6 vectors of them for FC_MR output channels, about fits L1. */
#define WINO_KERNEL_CHANNELS 64
#define WINO_KERNEL_AHEAD 8

/* The lane functions' dispatch on the variant: f's fields become
 * constants in each call, which the compiler folds. */
#define WINO_SPECIALIZED(fn, f, ...)                                                                      \
    ((f).r == 2 ? ((f).m == 2 ? fn((wino_f){2, 2}, __VA_ARGS__) : fn((wino_f){3, 2}, __VA_ARGS__))       \
                : (f).m == 2 ? fn((wino_f){2, 3}, __VA_ARGS__) : fn((wino_f){4, 3}, __VA_ARGS__))

/* One panel of the GEMM's A for every point, one k-block of it: (G w
 * G^T)[p] for the kernels of group g's `rows` output channels from `row`
 * on (rows <= FC_MR; the panel's other rows are zero, as the GEMM's
 * packing leaves them) and input channels k0 .. k0 + kc - 1, found in w
 * by l (the layer's weights, or turned and transposed for grad-input),
 * written as the GEMM's packing lays out a panel: element (j, ci) of
 * point p at u[p * ps + ci * FC_MR + j]. The lanes run along (ci, j), the
 * packed order itself, so the transforms write the operand directly
 * (where `stream`, a row of points at a time through scratch, copied out
 * past the caches). wq (r^2 x n) and t (ra x n, then a x n for the row),
 * n = WINO_KERNEL_CHANNELS * FC_MR, are scratch. */
static inline __attribute__((always_inline)) void FC_FN(wino_kernels_f)(wino_f f, const FC_T *w,
                                                                        const wino_layout *l, int64_t g, int64_t row,
                                                                        int64_t rows, int64_t k0, int64_t kc,
                                                                        FC_T *u, int64_t ps, FC_T *wq, FC_T *t,
                                                                        int stream) {
    const int r = f.r, a = wino_side(f);
    FC_T *ro = t + r * a * WINO_KERNEL_CHANNELS * FC_MR; /* a row of points on its way out, where `stream` */
    int64_t at[FC_MR]; /* the rows' offsets */
    for (int j = 0; j < rows; j++) at[j] = g * l->gs + wino_at(row + j, l->rs, l->rp, l->rphase);
    for (int64_t c0 = 0; c0 < kc; c0 += WINO_KERNEL_CHANNELS) { /* wq and t in L1 */
        const int64_t n = FC_MIN((int64_t)WINO_KERNEL_CHANNELS, kc - c0) * FC_MR;
        int64_t cq = (k0 + c0) / l->cp, cr = (k0 + c0) % l->cp; /* channel k0 + c0 + ci is cq * cp + cr */
        for (int64_t ci = 0; ci < n / FC_MR; ci++) {
            const FC_T *wc = w + cq * l->cs + l->cphase[cr], *ahead = w + (cq + WINO_KERNEL_AHEAD) * l->cs;
            /* grad-input's channels lie a kernel row apart, too far for the
             * hardware's prefetchers to follow */
            for (int j = 0; j < rows; j++) __builtin_prefetch(ahead + at[j], 0, 3);
            for (int j = 0; j < rows; j++)
                for (int q = 0; q < r * r; q++) wq[q * n + ci * FC_MR + j] = wc[at[j] + l->tap[q]];
            if (++cr == l->cp) cr = 0, cq++;
            for (int j = (int)rows; j < FC_MR; j++)
                for (int q = 0; q < r * r; q++) wq[q * n + ci * FC_MR + j] = 0;
        }
        for (int j = 0; j < r; j++) { /* t[i][j] = (G w)[i][j]: down each column j */
            const FC_T *d[3];
            FC_T *o[6];
            for (int i = 0; i < r; i++) d[i] = wq + (i * r + j) * n;
            for (int i = 0; i < a; i++) o[i] = t + (i * r + j) * n;
            FC_FN(g_lanes)(f, d, o, n);
        }
        for (int i = 0; i < a; i++) { /* point (i, jj) = (t G^T)[i][jj]: along each row i */
            const FC_T *d[3];
            FC_T *o[6];
            for (int j = 0; j < r; j++) d[j] = t + (i * r + j) * n;
            for (int jj = 0; jj < a; jj++) o[jj] = stream ? ro + jj * n : u + (i * a + jj) * ps + c0 * FC_MR;
            FC_FN(g_lanes)(f, d, o, n);
            for (int jj = 0; stream && jj < a; jj++)
                fc_stream_copy(u + (i * a + jj) * ps + c0 * FC_MR, o[jj], n * (int64_t)sizeof(FC_T));
        }
    }
    if (stream) fc_stream_fence();
}

FC_VECTOR_LOOP(wino_kernels, (wino_f f, const FC_T *w, const wino_layout *l, int64_t g, int64_t row, int64_t rows,
                              int64_t k0, int64_t kc, FC_T *u, int64_t ps, FC_T *wq, FC_T *t, int stream),
               (f, w, l, g, row, rows, k0, kc, u, ps, wq, t, stream)) {
    WINO_SPECIALIZED(FC_FN(wino_kernels_f), f, w, l, g, row, rows, k0, kc, u, ps, wq, t, stream);
}

/* A block is q consecutive tiles from T0 on, counted row by row over the
 * batch (tw a row, th rows an image), so it may start and end inside a
 * row and span images: tile T is lane T - T0. Each channel's tiles sit
 * `lanes` apart (lanes >= q), so both transforms run along all the tiles of a
 * chunk of channels at once, long vectors however narrow the map, and V
 * and M are the GEMMs' operands as they stand, a column a tile.
 *
 * Per-thread scratch for a chunk of c channels, L = lanes, n = c * L
 * (wino_scratch_size):
 *   input:  phase[i][k][n + 16]  input row i of each tile's block, column k (m*t + k of the row)
 *           cols[i][j][n]        row i of the block times B: point j
 *           row[a][m*(tw + 32)]  a tile row's input rows, zero-padded past the tiles' columns
 *   output: tmp[i][j][n]         A^T M, row i, point j
 *           out[i][jj][n]        A^T M A */
#define SPREAD_TILES 16

static size_t wino_scratch_size(wino_f f, int64_t chunk, int64_t lanes, int64_t tw) {
    const int64_t m = f.m, a = wino_side(f), n = chunk * lanes;
    const int64_t in = a * a * (n + SPREAD_TILES) + a * a * n + a * m * (tw + 2 * SPREAD_TILES);
    return (size_t)FC_MAX(in, (m * a + m * m) * n);
}

/* Row i of a tile row, ri (its columns from -pad_left on, zero past the
 * tiles' own, m * (tw rounded up to SPREAD_TILES, + 1) of them), into the
 * a = m + r - 1 phase planes pn apart: ph[k * pn + t] = ri[m*t + k] for t < tw.
 * SPREAD_TILES tiles at a time by shuffles where the compiler has them
 * (one element at a time, the spread took half the input transform on a
 * 14x14 map); a whole vector's lanes past tw land on lanes that later
 * rows and channels write, or on the planes' slack, SPREAD_TILES past n. */
#ifdef FC_HAVE_SHUFFLE
typedef FC_T FC_FN(tiles16) __attribute__((vector_size(16 * sizeof(FC_T)), aligned(sizeof(FC_T)), may_alias));
typedef FC_T FC_FN(tiles8) __attribute__((vector_size(8 * sizeof(FC_T)), aligned(sizeof(FC_T)), may_alias));
#define EVERY4(a, b, k) __builtin_shufflevector(a, b, k, k + 4, k + 8, k + 12, k + 16, k + 20, k + 24, k + 28)
#define EVERY3(a, b, k) __builtin_shufflevector(a, b, k, k + 3, k + 6, k + 9, k + 12, k + 15, k + 18, k + 21)
#define EVERY2(a, b, k) \
    __builtin_shufflevector(a, b, k, k + 2, k + 4, k + 6, k + 8, k + 10, k + 12, k + 14, k + 16, k + 18, k + 20, \
                            k + 22, k + 24, k + 26, k + 28, k + 30)
#define EVERY2_OF8(a, k) __builtin_shufflevector(a, a, k, k + 2, k + 4, k + 6, k + 8, k + 10, k + 12, k + 14)
#define JOIN(lo, hi) __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

/* out[k][t] = src[m*t + k], k < m, t < 16 */
static inline __attribute__((always_inline)) void FC_FN(deal)(int m, const FC_T *src, FC_FN(tiles16) *out) {
    typedef FC_FN(tiles16) v;
    const v a0 = *(const v *)src, a1 = *(const v *)(src + 16);
    if (m == 2) {
        out[0] = EVERY2(a0, a1, 0), out[1] = EVERY2(a0, a1, 1);
        return;
    }
    const v a2 = *(const v *)(src + 32);
    if (m == 3) { /* tiles 0-7 from a0 and a1, 8-15 from a1 and a2 */
        out[0] = JOIN(EVERY3(a0, a1, 0), EVERY3(a1, a2, 8)), out[1] = JOIN(EVERY3(a0, a1, 1), EVERY3(a1, a2, 9));
        out[2] = JOIN(EVERY3(a0, a1, 2), EVERY3(a1, a2, 10));
        return;
    }
    const v a3 = *(const v *)(src + 48);
    out[0] = JOIN(EVERY4(a0, a1, 0), EVERY4(a2, a3, 0)), out[1] = JOIN(EVERY4(a0, a1, 1), EVERY4(a2, a3, 1));
    out[2] = JOIN(EVERY4(a0, a1, 2), EVERY4(a2, a3, 2)), out[3] = JOIN(EVERY4(a0, a1, 3), EVERY4(a2, a3, 3));
}

/* The same for t < 8, reading 16 or 32 elements: rows of at most 8 tiles
 * (maps up to 16 pixels across by F(2x2), 32 by F(4x4)) filled half of
 * deal's vectors, and the rows' overlapping stores wasted the rest. */
static inline __attribute__((always_inline)) void FC_FN(deal8)(int m, const FC_T *src, FC_FN(tiles8) *out) {
    typedef FC_FN(tiles16) v;
    const v a0 = *(const v *)src;
    if (m == 2) {
        out[0] = EVERY2_OF8(a0, 0), out[1] = EVERY2_OF8(a0, 1);
        return;
    }
    const v a1 = *(const v *)(src + 16);
    if (m == 3) {
        out[0] = EVERY3(a0, a1, 0), out[1] = EVERY3(a0, a1, 1), out[2] = EVERY3(a0, a1, 2);
        return;
    }
    out[0] = EVERY4(a0, a1, 0), out[1] = EVERY4(a0, a1, 1), out[2] = EVERY4(a0, a1, 2), out[3] = EVERY4(a0, a1, 3);
}
#undef EVERY4
#undef EVERY3
#undef EVERY2
#undef EVERY2_OF8
#undef JOIN
#endif

static inline __attribute__((always_inline)) void FC_FN(spread_row)(wino_f f, const FC_T *ri, int64_t tw, FC_T *ph,
                                                                    int64_t pn) {
    const int m = f.m, a = wino_side(f);
#ifdef FC_HAVE_SHUFFLE
    if (tw <= 8) {
        FC_FN(tiles8) p[8];
        FC_FN(deal8)(m, ri, p);
        FC_FN(deal8)(m, ri + m, p + m);
        for (int k = 0; k < a; k++) *(FC_FN(tiles8) *)(ph + k * pn) = p[k];
        return;
    }
    for (int64_t t0 = 0; t0 < tw; t0 += SPREAD_TILES) {
        FC_FN(tiles16) p[8]; /* phases 0 .. m-1 from column m*t0, then m .. a-1 from m*t0 + m */
        FC_FN(deal)(m, ri + m * t0, p);
        FC_FN(deal)(m, ri + m * t0 + m, p + m);
        for (int k = 0; k < a; k++) *(FC_FN(tiles16) *)(ph + k * pn + t0) = p[k];
    }
#else
    for (int64_t t = 0; t < tw; t++)
        for (int k = 0; k < a; k++) ph[k * pn + t] = ri[m * t + k];
#endif
}

/* The tile rows a block of q tiles from T0 on crosses, one at a time:
 * row ti of image img, its tiles t_lo .. t_hi - 1 at lanes lane .. lane +
 * t_hi - t_lo - 1; counted up, not divided out row by row. */
typedef struct {
    int64_t img, ti, t_lo, t_hi, lane;
} wino_span;

static inline wino_span wino_first_span(int64_t T0, int64_t q, int64_t th, int64_t tw) {
    const int64_t row = T0 / tw;
    const wino_span sp = {row / th, row % th, T0 % tw, FC_MIN(tw, T0 % tw + q), 0};
    return sp;
}

static inline void wino_next_span(wino_span *sp, int64_t q, int64_t th, int64_t tw) {
    sp->lane += sp->t_hi - sp->t_lo;
    sp->t_lo = 0, sp->t_hi = FC_MIN(tw, q - sp->lane);
    if (++sp->ti == th) sp->ti = 0, sp->img++;
}

/* V of input channels ci0 .. ci0 + nc - 1 for the block's tiles T0 ..
 * T0 + q - 1, v[p * pstride + (ci - ci0) * lanes + T - T0]. */
static inline __attribute__((always_inline)) void FC_FN(wino_input_f)(
    wino_f f, const fc_conv2d_shape *s, const FC_T *x, int64_t ci0, int64_t nc, int64_t T0, int64_t q,
    int64_t th, int64_t tw, int64_t lanes, FC_T *scratch, FC_T *v, int64_t pstride) {
    const int m = f.m, a = wino_side(f);
    const int64_t n = nc * lanes, pn = n + SPREAD_TILES; /* n: the lanes of the chunk */
    FC_T *phase = scratch, *cols = phase + a * a * pn, *row = cols + a * a * n;
    /* the columns of the row that tiles read, m*tw + r - 1 of them from
     * -pad_left on, and zeros to the last whole vector the spread reads
     * from any tile of the row on: [lo, hi) lie in the image */
    const int64_t width = m * (tw + 2 * SPREAD_TILES), used = m * tw + a - m;
    const int64_t lo = FC_MIN(FC_MAX(s->pad_left, (int64_t)0), used);
    const int64_t hi = FC_MAX(FC_MIN(s->pad_left + s->w, used), lo);
    /* rows whose tiles' columns all lie in the image are spread straight
     * from it where the spread's whole width stays inside x (what it reads
     * past the tiles' columns lands on lanes past tw, as above) */
    const int unpadded = lo == 0 && hi == used;
    const FC_T *x_end = x + s->n * s->c_in * s->h * s->w;
    memset(row, 0, (size_t)(a * width) * sizeof(FC_T)); /* the padding, which the rows never overwrite */
    const wino_span first = wino_first_span(T0, q, th, tw);
    for (int64_t c = 0; c < nc; c++)
        for (wino_span sp = first; sp.lane < q; wino_next_span(&sp, q, th, tw)) {
            const int64_t ti = sp.ti;
            const FC_T *plane = x + (sp.img * s->c_in + ci0 + c) * s->h * s->w, *from[6];
            /* all a rows copied first, then spread into phases: a row read
             * back at once would wait for its copy's stores to retire */
            for (int i = 0; i < a; i++) {
                const int64_t ih = m * ti - s->pad_top + i;
                const FC_T *src = plane + ih * s->w + lo - s->pad_left;
                FC_T *ri = row + i * width;
                from[i] = ri;
                /* the next channel's row, fetched while this channel's
                 * are spread: without it the copies waited on memory
                 * (cifar_3x3's forward and grad-input took 5-7% longer) */
                if (ih >= 0 && ih < s->h) fc_fetch_lines(src + s->h * s->w, (hi - lo) * (int64_t)sizeof(FC_T), 0);
                if (ih < 0 || ih >= s->h)
                    memset(ri + lo, 0, (size_t)(hi - lo) * sizeof(FC_T));
                else if (unpadded && src + width <= x_end)
                    from[i] = src;
                else
                    memcpy(ri + lo, src, (size_t)(hi - lo) * sizeof(FC_T));
            }
            for (int i = 0; i < a; i++)
                FC_FN(spread_row)(f, from[i] + m * sp.t_lo, sp.t_hi - sp.t_lo, phase + i * a * pn + c * lanes + sp.lane,
                                  pn);
        }
    /* lanes past the block's tiles (a short last block) hold zeros */
    for (int plane = 0; plane < a * a; plane++)
        for (int64_t c = 0; c < nc; c++)
            for (int64_t t = q; t < lanes; t++) phase[plane * pn + c * lanes + t] = 0;
    for (int i = 0; i < a; i++) {
        const FC_T *d[6];
        FC_T *o[6];
        for (int k = 0; k < a; k++) d[k] = phase + (i * a + k) * pn;
        for (int j = 0; j < a; j++) o[j] = cols + (i * a + j) * n;
        FC_FN(bt_lanes)(f, d, o, n);
    }
    for (int j = 0; j < a; j++) {
        const FC_T *d[6];
        FC_T *o[6];
        for (int i = 0; i < a; i++) d[i] = cols + (i * a + j) * n, o[i] = v + (i * a + j) * pstride;
        FC_FN(bt_lanes)(f, d, o, n);
    }
}

FC_VECTOR_LOOP(wino_input_block, (wino_f f, const fc_conv2d_shape *s, const FC_T *x, int64_t ci0, int64_t nc,
                                  int64_t T0, int64_t q, int64_t th, int64_t tw, int64_t lanes, FC_T *scratch,
                                  FC_T *v, int64_t pstride),
               (f, s, x, ci0, nc, T0, q, th, tw, lanes, scratch, v, pstride)) {
    WINO_SPECIALIZED(FC_FN(wino_input_f), f, s, x, ci0, nc, T0, q, th, tw, lanes, scratch, v, pstride);
}

/* The epilogue's ReLU, a NaN kept. */
static inline FC_T FC_FN(wino_finish)(FC_T v, int relu) {
    return relu && !(v > 0) ? (v != v ? v : 0) : v;
}

#ifdef FC_HAVE_SHUFFLE
/* row[4*t + k] = finish(o[k*n + t] + bias) for four tiles t < 4 of F(4x4)'s
 * k < 4 columns: a 4 x 4 transpose in registers. Element by element, the
 * interleave into y's rows was most of the output transform's time. */
typedef FC_T FC_FN(tiles4) __attribute__((vector_size(4 * sizeof(FC_T)), aligned(sizeof(FC_T)), may_alias));

static inline __attribute__((always_inline)) void FC_FN(weave4)(const FC_T *o, int64_t n, FC_T bias, int relu,
                                                                 FC_T *row) {
    typedef FC_FN(tiles4) v;
    const v p0 = *(const v *)o + bias, p1 = *(const v *)(o + n) + bias;
    const v p2 = *(const v *)(o + 2 * n) + bias, p3 = *(const v *)(o + 3 * n) + bias;
    const v a = __builtin_shufflevector(p0, p1, 0, 4, 1, 5), b = __builtin_shufflevector(p0, p1, 2, 6, 3, 7);
    const v c = __builtin_shufflevector(p2, p3, 0, 4, 1, 5), d = __builtin_shufflevector(p2, p3, 2, 6, 3, 7);
    v t[4] = {__builtin_shufflevector(a, c, 0, 1, 4, 5), __builtin_shufflevector(a, c, 2, 3, 6, 7),
              __builtin_shufflevector(b, d, 0, 1, 4, 5), __builtin_shufflevector(b, d, 2, 3, 6, 7)};
    for (int i = 0; i < 4; i++) {
        if (relu) { /* wino_finish: positive or NaN kept, the rest +0 */
            const __typeof__(t[i] > 0) keep = (t[i] > 0) | (t[i] != t[i]);
            t[i] = (v)((__typeof__(keep))t[i] & keep);
        }
        *(v *)(row + 4 * i) = t[i];
    }
}
#endif

/* Output channels co0 .. co0 + nc - 1 of the block of tiles T0 .. T0 +
 * q - 1 from mb[p * pstride + (co - co0) * lanes + T - T0]: A^T M A + bias
 * (b may be NULL), ReLU with FC_GEMM_RELU, into y's m x m blocks clipped
 * to the plane. */
static inline __attribute__((always_inline)) void FC_FN(wino_output_f)(
    wino_f f, const fc_conv2d_shape *s, const FC_T *mb, int64_t pstride, int64_t co0, int64_t nc, int64_t T0,
    int64_t q, int64_t th, int64_t tw, int64_t lanes, const FC_T *b, unsigned flags, FC_T *scratch, FC_T *y) {
    const int m = f.m, a = wino_side(f);
    const int64_t n = nc * lanes;
    FC_T *tmp = scratch, *out = tmp + m * a * n;
    for (int j = 0; j < a; j++) {
        const FC_T *d[6];
        FC_T *o[4];
        for (int k = 0; k < a; k++) d[k] = mb + (k * a + j) * pstride;
        for (int i = 0; i < m; i++) o[i] = tmp + (i * a + j) * n;
        FC_FN(at_lanes)(f, d, o, n);
    }
    for (int i = 0; i < m; i++) {
        const FC_T *d[6];
        FC_T *o[4];
        for (int k = 0; k < a; k++) d[k] = tmp + (i * a + k) * n;
        for (int jj = 0; jj < m; jj++) o[jj] = out + (i * m + jj) * n;
        FC_FN(at_lanes)(f, d, o, n);
    }
    const int relu = (flags & FC_GEMM_RELU) != 0;
    const int64_t whole = s->out_w / m; /* tiles all of whose columns are in a row */
    const wino_span first = wino_first_span(T0, q, th, tw);
    for (int64_t c = 0; c < nc; c++) {
        const FC_T bias = b ? b[c] : 0;
        for (wino_span sp = first; sp.lane < q; wino_next_span(&sp, q, th, tw)) {
            const int64_t ti = sp.ti, t_lo = sp.t_lo, t_hi = sp.t_hi;
            FC_T *plane = y + (sp.img * s->c_out + co0 + c) * PIXELS(s);
            for (int i = 0; i < m && m * ti + i < s->out_h; i++) {
                /* column jj of the span's tile t_lo + t at o[jj*n + t], to row[m*t + jj] */
                FC_T *row = plane + (m * ti + i) * s->out_w + m * t_lo;
                const FC_T *o = out + i * m * n + c * lanes + sp.lane;
                const int64_t full = FC_MIN(t_hi, whole) - t_lo;
                /* the next channel's row, as the input transform does */
                fc_fetch_lines(row + PIXELS(s), (s->out_w - m * t_lo) * (int64_t)sizeof(FC_T), 1);
                int64_t t = 0;
#ifdef FC_HAVE_SHUFFLE
                if (m == 4)
                    for (; t + 4 <= full; t += 4) FC_FN(weave4)(o + t, n, bias, relu, row + 4 * t);
#endif
                FC_IVDEP
                for (; t < full; t++)
                    for (int jj = 0; jj < m; jj++) row[m * t + jj] = FC_FN(wino_finish)(o[jj * n + t] + bias, relu);
                for (int64_t ow = m * full; t_hi > whole && ow < s->out_w - m * t_lo; ow++)
                    row[ow] = FC_FN(wino_finish)(o[ow % m * n + ow / m] + bias, relu);
            }
        }
    }
}

FC_VECTOR_LOOP(wino_output_block, (wino_f f, const fc_conv2d_shape *s, const FC_T *mb, int64_t pstride,
                                   int64_t co0, int64_t nc, int64_t T0, int64_t q, int64_t th, int64_t tw,
                                   int64_t lanes, const FC_T *b, unsigned flags, FC_T *scratch, FC_T *y),
               (f, s, mb, pstride, co0, nc, T0, q, th, tw, lanes, b, flags, scratch, y)) {
    WINO_SPECIALIZED(FC_FN(wino_output_f), f, s, mb, pstride, co0, nc, T0, q, th, tw, lanes, b, flags, scratch, y);
}

/* Lanes a transform call runs along: enough channels of a block's tiles
 * for long vectors, few enough that its scratch stays in L2. */
#define WINO_CHUNK_LANES 512

/* The GEMMs' flags for tile m: F(4x4)'s sums in runs of 32 (see the top
 * of the file). */
static unsigned wino_runs(int m) { return m == 4 ? FC_GEMM_SHORT_RUNS : 0u; }

/* One panel of U for every point (wino_kernels): `rows` output channels
 * of group g from `row` on, input channels k0 .. k0 + kc - 1, into u,
 * points ps apart, past the caches where `stream`; wq holds
 * wino_panel_scratch(f) elements of scratch. */
static int64_t wino_panel_scratch(wino_f f) {
    return (f.r * (f.r + wino_side(f)) + wino_side(f)) * WINO_KERNEL_CHANNELS * FC_MR;
}

static void FC_FN(wino_panel)(const FC_FN(fc_kernels) *k, wino_f f, const FC_T *w, const wino_layout *l, int64_t g,
                              int64_t row, int64_t rows, int64_t k0, int64_t kc, FC_T *u, int64_t ps, FC_T *wq,
                              int stream) {
    k->wino_kernels(f, w, l, g, row, rows, k0, kc, u, ps, wq, wq + f.r * f.r * WINO_KERNEL_CHANNELS * FC_MR, stream);
}

/* Output channels a task transforms the kernels of at a time when it
 * transforms its own (wino_fused): their points for one k-block stay
 * in L2 beside the block's packed V. */
#define WINO_FUSED_ROWS (4 * FC_MR)

/* Whether the tasks transform the kernels themselves, a k-block and a few
 * output channels at a time into L2, instead of all of them once into
 * memory: where the transformed kernels outgrow the caches (F(4x4) turns
 * 512 x 512 kernels into 38 MB) and up to 8 blocks read them, or where
 * they are that large whatever the blocks. Writing them out and reading
 * them back took longer than the GEMMs: on a 7x7 map at batch 8 (one
 * block) 20 ms, where the fused transforms take 5.5 in all; and reading
 * them from memory slows down most while the machine's other tenants
 * load it. Each block transforms the kernels again, so not for many
 * blocks of smaller ones (benchmarks/RULES.md). */
static int wino_fused(int64_t points, int64_t M, int64_t K, int64_t G, int64_t blocks) {
    const double bytes = (double)G * points * M * K * sizeof(FC_T), mib = 1024.0 * 1024.0;
    return bytes > 16 * mib || (blocks <= 8 && bytes > 4 * mib);
}

/* U larger than this (a core's L2) is written past the caches: its old
 * lines are then never read in first, from memory where other tenants
 * of the machine have evicted them. A DCGAN layer's 2 MiB U took 9% of
 * its forward on a quiet machine and 29% on a busy one; streamed, 5-6%
 * on a quiet one, and the layer runs within 7% of that on a busy one
 * (benchmarks/RULES.md). */
#define WINO_STREAM_BYTES ((size_t)1 << 20)

/* U[g][p][part] = point p of the kernels of group g's part-th MP output
 * channels, packed as the GEMM's A (a_size elements each), transformed a
 * panel of FC_MR output channels and a k-block at a time; NULL, with
 * *status set, where memory runs out. */
static FC_T *FC_FN(wino_pack_kernels)(const FC_FN(fc_kernels) *k, wino_f f, const FC_T *w, const wino_layout *l,
                                      int64_t G, int64_t M, int64_t K, int64_t parts, int64_t MP, size_t a_size,
                                      int *status) {
    const int64_t points = wino_points(f), panels = (MP + FC_MR - 1) / FC_MR, jobs = G * parts * panels;
    const size_t bytes = a_size * (size_t)(G * points * parts) * sizeof(FC_T);
    FC_T *upack = fc_alloc(bytes);
    const int stream = bytes > WINO_STREAM_BYTES;
    if (!upack) {
        *status = FC_ERR_NOMEM;
        return NULL;
    }
    FC_OMP(parallel num_threads(fc_threads_for(jobs, 100.0 * points * FC_MR * K)))
    {
        FC_T *wq = fc_scratch((size_t)wino_panel_scratch(f) * sizeof(FC_T), 0, status);
        FC_OMP(for schedule(static))
        for (int64_t job = 0; job < jobs; job++) {
            const int64_t g = job / (parts * panels), part = job / panels % parts, i0 = job % panels * FC_MR;
            const int64_t m0 = part * MP, mp = FC_MIN(MP, M - m0), m_pad = (mp + FC_MR - 1) / FC_MR * FC_MR;
            if (!wq || i0 >= mp) continue;
            for (int64_t k0 = 0; k0 < K; k0 += FC_KC) { /* block (k0, i0) at k0 * m_pad + i0 * kc */
                const int64_t kc = FC_MIN((int64_t)FC_KC, K - k0);
                FC_FN(wino_panel)(k, f, w, l, g, m0 + i0, FC_MIN((int64_t)FC_MR, mp - i0), k0, kc,
                                  upack + (g * points * parts + part) * a_size + k0 * m_pad + i0 * kc,
                                  (int64_t)(parts * a_size), wq, stream);
            }
        }
        fc_free(wq);
    }
    if (*status != FC_OK) {
        fc_free(upack);
        return NULL;
    }
    return upack;
}

/* A block's M = U V at every point, from its V (points x K x L) and its
 * part's packed kernels u (points ps apart), for mp output channels and
 * q tiles, into mb (points x mp x L). */
static void FC_FN(wino_block_gemms)(wino_f f, const FC_T *u, int64_t ps, int64_t mp, int64_t q, int64_t K,
                                    const FC_T *v, int64_t L, FC_T *mb, FC_T *work) {
    for (int64_t p = 0; p < wino_points(f); p++) {
        const FC_FN(fc_strided) vm = {v + p * K * L, 1, L};
        const FC_FN(fc_operand) a = {NULL, NULL, u + p * ps, NULL};
        const FC_FN(fc_operand) bo = {FC_FN(pack_strided), &vm, NULL, NULL};
        FC_FN(gemm_serial)(mp, q, K, &a, &bo, mb + p * mp * L, L, NULL, wino_runs(f.m), work);
    }
}

/* The output of a block of q tiles from T0 on, from its M (points x mp x
 * L), output channels c .. c + mp - 1 of y, a chunk of channels at a
 * time: M's lanes past the tiles, which no GEMM wrote, zeroed for the
 * transform to read. */
static void FC_FN(wino_block_output)(const FC_FN(fc_kernels) *k, wino_f f, const fc_conv2d_shape *s, FC_T *mb,
                                     int64_t mp, int64_t c, int64_t T0, int64_t q, int64_t tw, int64_t L,
                                     int64_t chunk, const FC_T *b, unsigned flags, FC_T *scratch, FC_T *y) {
    const int64_t th = (s->out_h + f.m - 1) / f.m;
    if (q < L)
        for (int64_t e = 0; e < wino_points(f) * mp; e++) memset(mb + e * L + q, 0, (size_t)(L - q) * sizeof(FC_T));
    for (int64_t c0 = 0; c0 < mp; c0 += chunk)
        k->wino_output_block(f, s, mb + c0 * L, mp * L, c + c0, FC_MIN(chunk, mp - c0), T0, q, th, tw, L,
                             b ? b + c + c0 : NULL, flags, scratch, y);
}

/* A group's tiles cut into `shares` even shares, each into runs of L
 * tiles (at most `most`) from its start, the last run shorter. */
typedef struct {
    int64_t shares, L, runs;
} wino_cut;

static wino_cut wino_cut_tiles(int64_t tiles, int64_t shares, int64_t most) {
    const int64_t share = (tiles + shares - 1) / shares, L = FC_MIN(share, most);
    const wino_cut c = {shares, L, (share + L - 1) / L};
    return c;
}

/* The convolution by Winograd F(m x m, r x r) for a shape
 * that applies, of kernels w laid out by l; pad_top and pad_left may be
 * negative (grad-input's crop). */
static int FC_FN(winograd_conv)(wino_f f, const fc_conv2d_shape *s, const FC_T *x, const FC_T *w,
                                const wino_layout *l, const FC_T *b, unsigned flags, FC_T *y) {
    const int m = f.m;
    const int64_t points = wino_points(f);
    const int64_t M = GROUP_OUT(s), K = GROUP_IN(s), G = s->groups;
    const int64_t th = (s->out_h + m - 1) / m, tw = (s->out_w + m - 1) / m, tile_rows = s->n * th;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    /* Blocks: each group's tiles (all its images', row by row) cut into
     * even shares, one per thread (a group a share where there are as
     * many groups as threads), and each share into runs of L tiles from
     * its start, L a whole number of the GEMM's panels of nr tiles, V and
     * M within about 1 MiB (an L2), so that a thread's GEMMs fill their
     * panels but for its last (which the narrow kernel runs where it is
     * at most half full): F(3x3, 2x2) on a 15x15 map at batch 8, 200
     * tiles, ran 4 panels a thread as blocks of 5 rows of 5 tiles, now 3
     * and a narrow one as 32 + 32 + 32 + 4. Where the tasks transform the
     * kernels themselves, all of a group's tiles are one share: each
     * block transforms them again, a part of the output channels only
     * its part's. Small maps give few blocks: then the output channels
     * are split too (each part transforms the block's input again, cheap
     * beside its GEMMs), for two tasks per thread, or one where the tasks
     * transform the kernels themselves (then the input's transform is
     * their main extra and the tasks are of a size). */
    const int64_t nr = k->gemm.nr, threads = fc_get_num_threads(), tiles = tile_rows * tw;
    const int64_t budget = FC_MAX(nr, (int64_t)262144 / (points * (K + M)) / nr * nr); /* tiles */
    wino_cut cut = wino_cut_tiles(tiles, FC_MIN(tiles, FC_MAX((int64_t)1, threads / G)), budget);
    const int fused = wino_fused(points, M, K, G, cut.shares * cut.runs);
    if (fused) cut = wino_cut_tiles(tiles, 1, budget);
    const int64_t shares = cut.shares, L = cut.L, runs = cut.runs, blocks = shares * runs;
    const int64_t want = fused ? threads : 2 * threads;
    const int64_t parts = FC_MIN((M + FC_MR - 1) / FC_MR, FC_MAX((int64_t)1, (want + G * blocks - 1) / (G * blocks)));
    const int64_t MP = ((M + parts - 1) / parts + FC_MR - 1) / FC_MR * FC_MR; /* output channels per part */
    const int64_t tasks = G * blocks * parts, n_pad = (L + nr - 1) / nr * nr;
    const int64_t chunk = FC_MAX((int64_t)1, WINO_CHUNK_LANES / L); /* channels a transform call */
    const int64_t kc_max = FC_MIN(K, (int64_t)FC_KC);
    /* U packed once (unless fused) */
    const size_t a_size = FC_FN(gemm_packed_a_size)(MP, K);
    int status = FC_OK;
    FC_T *upack = fused ? NULL : FC_FN(wino_pack_kernels)(k, f, w, l, G, M, K, parts, MP, a_size, &status);
    if (status != FC_OK) return status;
    /* fused: each k-block's packed V for all points, and a few rows' U */
    const size_t fused_size = fused ? (size_t)(points * kc_max * (n_pad + WINO_FUSED_ROWS) + wino_panel_scratch(f)) : 0;
    FC_OMP(parallel num_threads(fc_threads_for(tasks, 2.0 * points * MP * K * L)))
    {
        /* V[p][ci][lane] then M[p][co][lane] */
        FC_T *v = fc_scratch((size_t)(points * (K + MP) * L) * sizeof(FC_T), 0, &status);
        FC_T *work = fc_scratch(FC_FN(gemm_workspace)(MP, L, K) * sizeof(FC_T), 0, &status);
        FC_T *scratch = fc_scratch(wino_scratch_size(f, chunk, L, tw) * sizeof(FC_T), 0, &status);
        FC_T *vpack = fc_scratch(fused_size * sizeof(FC_T), 0, &status);
        /* fused: after the packed V, a few rows' U, then wino_panel's scratch */
        FC_T *ub = fused && vpack ? vpack + points * kc_max * n_pad : NULL;
        FC_T *wq = ub ? ub + points * kc_max * WINO_FUSED_ROWS : NULL;
        FC_OMP(for schedule(static))
        for (int64_t task = 0; task < tasks; task++) {
            if (!v || !work || !scratch || !vpack) continue;
            const int64_t g = task / (blocks * parts), block = task / parts % blocks, sh = block / runs;
            const int64_t T0 = sh * tiles / shares + block % runs * L, end = (sh + 1) * tiles / shares;
            const int64_t q = FC_MIN(L, end - T0), m0 = task % parts * MP, mp = FC_MIN(MP, M - m0);
            if (mp <= 0 || q <= 0) continue;
            FC_T *mb = v + points * K * L;
            for (int64_t c0 = 0; c0 < K; c0 += chunk)
                k->wino_input_block(f, s, x, g * K + c0, FC_MIN(chunk, K - c0), T0, q, th, tw, L, scratch,
                                    v + c0 * L, K * L);
            if (!fused)
                FC_FN(wino_block_gemms)(f, upack + (g * points * parts + m0 / MP) * a_size, (int64_t)(parts * a_size),
                                        mp, q, K, v, L, mb, work);
            /* fused: per k-block, V packed for every point, then a few
             * output channels' kernels transformed and multiplied by it:
             * each sum runs in the same order as unfused */
            for (int64_t k0 = 0; fused && k0 < K; k0 += FC_KC) {
                const int64_t kc = FC_MIN((int64_t)FC_KC, K - k0);
                for (int64_t p = 0; p < points; p++) {
                    const FC_FN(fc_strided) vm = {v + p * K * L, 1, L};
                    FC_FN(pack_strided)(&vm, 0, q, k0, kc, (int)nr, vpack + p * kc * n_pad);
                }
                for (int64_t i0 = 0; i0 < mp; i0 += WINO_FUSED_ROWS) {
                    const int64_t rc = FC_MIN((int64_t)WINO_FUSED_ROWS, mp - i0);
                    for (int64_t i1 = 0; i1 < rc; i1 += FC_MR)
                        FC_FN(wino_panel)(k, f, w, l, g, m0 + i0 + i1, FC_MIN((int64_t)FC_MR, rc - i1), k0, kc,
                                          ub + i1 * kc, WINO_FUSED_ROWS * kc, wq, 0);
                    for (int64_t p = 0; p < points; p++) {
                        const FC_FN(fc_operand) a = {NULL, NULL, ub + p * WINO_FUSED_ROWS * kc, NULL};
                        const FC_FN(fc_operand) bo = {NULL, NULL, vpack + p * kc * n_pad, NULL};
                        FC_FN(gemm_serial)(rc, q, kc, &a, &bo, mb + (p * mp + i0) * L, L, NULL,
                                           wino_runs(m) | (k0 > 0 ? FC_GEMM_ACCUMULATE : 0u), work);
                    }
                }
            }
            FC_FN(wino_block_output)(k, f, s, mb, mp, g * M + m0, T0, q, tw, L, chunk, b, flags, scratch, y);
        }
        fc_free(v);
        fc_free(work);
        fc_free(scratch);
        fc_free(vpack);
    }
    fc_free(upack);
    return status;
}

/* The forward, of kernels w laid out by l (wino_dense: the layer's own). */
static int FC_FN(winograd_forward)(int tile, const fc_conv2d_shape *s, const FC_T *x, const FC_T *w, wino_layout l,
                                   const FC_T *b, unsigned flags, FC_T *y) {
    return FC_FN(winograd_conv)(wino_variant(tile, s), s, x, w, &l, b, flags, y);
}

/* Grad-input as the convolution of gy by the kernel rotated 180 degrees with
 * its channel axes swapped per group: kernel (ci, co) of group g is
 * w[g][co][ci] turned, read in place. */
static int FC_FN(winograd_grad_input)(int tile, const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w,
                                      wino_layout l, FC_T *gx) {
    const int64_t r = s->kh;
    const wino_layout turned = wino_turned(&l, (int)(r * r));
    fc_conv2d_shape t = *s;
    t.c_in = s->c_out, t.c_out = s->c_in, t.h = s->out_h, t.w = s->out_w, t.out_h = s->h, t.out_w = s->w;
    t.pad_top = r - 1 - s->pad_top, t.pad_left = r - 1 - s->pad_left;
    return FC_FN(winograd_conv)(wino_variant(tile, s), &t, gy, w, &turned, NULL, 0, gx);
}

/* ------------------------------------------------------ grad-weight */

/* The weight gradient by the same transforms: per point p,
 *   dU[p] (c_out x c_in) = sum over tiles of dM[p] V[p]^T,  dM = A dY A^T
 * (dY a tile of gy, V = B^T d B as in the forward), then gw = G^T dU G.
 * The sum over tiles is the GEMMs' reduction, so the block's tiles are
 * their k: dM is written straight in the packed layout of the GEMM's A,
 * and a block's tiles fit one k-block (FC_KC). */

/* Tile rows per block of grad-weight: as many as fill one k-block of the
 * GEMM with their tiles, for the GEMMs load and store dU's
 * tiles once per block (V and dM then outgrow L2, but each point's GEMM
 * reads only its own 1/points of them), the batch's tile rows shared
 * evenly between the blocks; and at least 4 blocks for the threads to
 * share where that leaves a block a third of a k-block or more (a
 * 256-channel 14x14 layer at batch 8 had 2 full blocks). */
static int64_t winograd_gw_rows(int m, const fc_conv2d_shape *s) {
    const int64_t tw = (s->out_w + m - 1) / m, tile_rows = s->n * ((s->out_h + m - 1) / m);
    const int64_t full = FC_MAX((int64_t)1, (int64_t)FC_KC / tw);
    const int64_t blocks = FC_MAX((int64_t)4, (tile_rows + full - 1) / full), even = (tile_rows + blocks - 1) / blocks;
    return 3 * even >= full ? even : FC_MIN(full, tile_rows);
}

/* Grad-weight's runs of blocks, each with its own copy of dU: two blocks
 * a run (winograd_weight_pass), at most SLOTS. */
static int64_t winograd_gw_runs(int64_t blocks) { return FC_MIN((int64_t)SLOTS, (blocks + 1) / 2); }

/* dM for output channels co0 .. co0 + nc - 1 of a block (co0 a multiple of
 * FC_MR), as panels of FC_MR channels over the block's lanes: element
 * (co, lane) of point p at dm[p * pstride + (co - co0) / FC_MR * lanes *
 * FC_MR + lane * FC_MR + (co - co0) % FC_MR]; lanes past the block's tiles
 * and channels past the last are zero, so the GEMMs may sum them. */
static inline __attribute__((always_inline)) void FC_FN(wino_grad_output_f)(
    wino_f f, const fc_conv2d_shape *s, const FC_T *gy, int64_t co0, int64_t nc, int64_t row0, int64_t rows,
    int64_t th, int64_t tw, int64_t lanes, FC_T *scratch, FC_T *dm, int64_t pstride) {
    const int m = f.m, a = wino_side(f);
    const int64_t n = (nc + FC_MR - 1) / FC_MR * FC_MR * lanes, width = m * tw;
    FC_T *phase = scratch, *cols = phase + m * m * n, *row = cols + m * a * n;
    memset(phase, 0, (size_t)(m * m * n) * sizeof(FC_T));
    for (int i = 0; i < m; i++) memset(row + i * width + s->out_w, 0, (size_t)(width - s->out_w) * sizeof(FC_T));
    for (int64_t c = 0; c < nc; c++)
        for (int64_t r = 0; r < rows; r++) {
            const int64_t img = (row0 + r) / th, ti = (row0 + r) % th, here = FC_MIN((int64_t)m, s->out_h - m * ti);
            const FC_T *plane = gy + (img * s->c_out + co0 + c) * PIXELS(s);
            /* the tile row's gy rows copied first, then spread (as in the
             * input transform: a row read back at once waits on its copy) */
            for (int i = 0; i < here; i++)
                memcpy(row + i * width, plane + (m * ti + i) * s->out_w, (size_t)s->out_w * sizeof(FC_T));
            for (int i = 0; i < here; i++) {
                const FC_T *ri = row + i * width;
                FC_T *ph = phase + i * m * n + (c / FC_MR * lanes + r * tw) * FC_MR + c % FC_MR;
                for (int64_t t = 0; t < tw; t++)
                    for (int k = 0; k < m; k++) ph[k * n + t * FC_MR] = ri[m * t + k];
            }
        }
    for (int i = 0; i < m; i++) { /* row i of the tile times A^T: a points */
        const FC_T *d[4];
        FC_T *o[6];
        for (int k = 0; k < m; k++) d[k] = phase + (i * m + k) * n;
        for (int j = 0; j < a; j++) o[j] = cols + (i * a + j) * n;
        FC_FN(a_lanes)(f, d, o, n);
    }
    for (int j = 0; j < a; j++) {
        const FC_T *d[4];
        FC_T *o[6];
        for (int i = 0; i < m; i++) d[i] = cols + (i * a + j) * n;
        for (int i = 0; i < a; i++) o[i] = dm + (i * a + j) * pstride;
        FC_FN(a_lanes)(f, d, o, n);
    }
}

FC_VECTOR_LOOP(wino_grad_output_block, (wino_f f, const fc_conv2d_shape *s, const FC_T *gy, int64_t co0, int64_t nc,
                                        int64_t row0, int64_t rows, int64_t th, int64_t tw, int64_t lanes,
                                        FC_T *scratch, FC_T *dm, int64_t pstride),
               (f, s, gy, co0, nc, row0, rows, th, tw, lanes, scratch, dm, pstride)) {
    WINO_SPECIALIZED(FC_FN(wino_grad_output_f), f, s, gy, co0, nc, row0, rows, th, tw, lanes, scratch, dm, pstride);
}

/* The kernels' gradients G^T dU G for lanes e in [e0, e1) of du[p * ps +
 * e], e = co * K + ci, into a group's gw laid out by l; t (ar x n) and o
 * (r^2 x n), n = e1 - e0, are scratch. */
static inline __attribute__((always_inline)) void FC_FN(wino_kernel_grads_f)(wino_f f, const FC_T *du, int64_t ps,
                                                                             int64_t e0, int64_t e1, int64_t K,
                                                                             const wino_layout *l, FC_T *t,
                                                                             FC_T *out, FC_T *gw) {
    const int r = f.r, a = wino_side(f);
    const int64_t n = e1 - e0;
    for (int i = 0; i < a; i++) { /* t[i][c] = (dU G)[i][c]: along each row i */
        const FC_T *d[6];
        FC_T *o[3];
        for (int j = 0; j < a; j++) d[j] = du + (i * a + j) * ps + e0;
        for (int c = 0; c < r; c++) o[c] = t + (i * r + c) * n;
        FC_FN(gt_lanes)(f, d, o, n);
    }
    for (int c = 0; c < r; c++) { /* out[q][c] = (G^T t)[q][c]: down each column c */
        const FC_T *d[6];
        FC_T *o[3];
        for (int i = 0; i < a; i++) d[i] = t + (i * r + c) * n;
        for (int q = 0; q < r; q++) o[q] = out + (q * r + c) * n;
        FC_FN(gt_lanes)(f, d, o, n);
    }
    if (wino_is_dense(l, K, r * r)) { /* lane e0 + e is the kernel at gw + (e0 + e) * r * r */
        FC_T *kernel = gw + e0 * r * r;
        for (int64_t e = 0; e < n; e++, kernel += r * r)
            for (int q = 0; q < r * r; q++) kernel[q] = out[q * n + e];
        return;
    }
    /* lane e0 + e is (co, ci), ci = cq * cp + cr, counted up rather than divided out */
    int64_t co = e0 / K, ci = e0 % K, cq = ci / l->cp, cr = ci % l->cp, row = wino_at(co, l->rs, l->rp, l->rphase);
    for (int64_t e = 0; e < n; e++) {
        FC_T *kernel = gw + row + cq * l->cs + l->cphase[cr];
        for (int q = 0; q < r * r; q++) kernel[l->tap[q]] = out[q * n + e];
        if (++cr == l->cp) cr = 0, cq++;
        if (++ci == K) ci = cq = cr = 0, row = wino_at(++co, l->rs, l->rp, l->rphase);
    }
}

FC_VECTOR_LOOP(wino_kernel_grads, (wino_f f, const FC_T *du, int64_t ps, int64_t e0, int64_t e1, int64_t K,
                                   const wino_layout *l, FC_T *t, FC_T *out, FC_T *gw),
               (f, du, ps, e0, e1, K, l, t, out, gw)) {
    WINO_SPECIALIZED(FC_FN(wino_kernel_grads_f), f, du, ps, e0, e1, K, l, t, out, gw);
}

/* Grad-weight by Winograd F(m x m, r x r) for a shape that applies. The
 * batch's blocks of tile rows are cut into runs of two blocks (at most
 * SLOTS runs), each summed in order into its own copy of dU and the
 * copies added in run order, so 1 thread and N threads agree bit for
 * bit; with fewer runs than threads, each run's output channels are split
 * between tasks too. Runs of one block each wrote and read back twice
 * the copies (dcgan_k4s2's combined backward, 4 blocks: 4.7 MB of them,
 * 3-5% of its time).
 * With w and y (not NULL), the forward y = conv(x, w) too, from the same
 * transformed input V: a transposed conv's backward needs both of the
 * same input, gy. Its sums run as the forward's own do. */
static int FC_FN(winograd_weight_pass)(wino_f f, const fc_conv2d_shape *s, const FC_T *gy, const FC_T *x,
                                       const wino_layout *l, FC_T *gw, const FC_T *w, FC_T *y) {
    const int m = f.m;
    const int64_t points = wino_points(f), a = wino_side(f), taps = f.r * f.r;
    const int64_t M = GROUP_OUT(s), K = GROUP_IN(s), G = s->groups, m_pad = (M + FC_MR - 1) / FC_MR * FC_MR;
    const int64_t th = (s->out_h + m - 1) / m, tw = (s->out_w + m - 1) / m, tile_rows = s->n * th;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    const int64_t RB = winograd_gw_rows(m, s), blocks = (tile_rows + RB - 1) / RB, L = RB * tw;
    const int64_t slots = winograd_gw_runs(blocks), size = points * M * K;
    /* fewer runs than threads (a small map's few blocks): the output
     * channels split too, each part transforming its run's input again;
     * the parts write apart, so every sum keeps its order */
    const int64_t threads = fc_get_num_threads();
    const int64_t parts = FC_MIN(m_pad / FC_MR, FC_MAX((int64_t)1, (threads + G * slots - 1) / (G * slots)));
    const int64_t MP = (m_pad / FC_MR + parts - 1) / parts * FC_MR, tasks = G * slots * parts;
    const int64_t chunk_in = FC_MAX((int64_t)1, WINO_CHUNK_LANES / L);
    const int64_t chunk_out = FC_MAX((int64_t)1, WINO_CHUNK_LANES / L / FC_MR) * FC_MR;
    const size_t grad_scratch = (size_t)((m * m + m * a) * chunk_out * L + m * m * tw);
    const size_t scratch_size = FC_MAX(wino_scratch_size(f, chunk_in, L, tw), grad_scratch);
    const size_t a_size = FC_FN(gemm_packed_a_size)(MP, K);
    size_t work_size = FC_FN(gemm_workspace)(MP, K, L);
    if (y) work_size = FC_MAX(work_size, FC_FN(gemm_workspace)(MP, L, K));
    int status = FC_OK;
    FC_T *upack = y ? FC_FN(wino_pack_kernels)(k, f, w, l, G, M, K, parts, MP, a_size, &status) : NULL;
    /* du[g][slot][p][co][ci] */
    FC_T *du = status == FC_OK ? fc_alloc((size_t)(G * slots * size) * sizeof(FC_T)) : NULL;
    if (!du) {
        fc_free(upack);
        return status == FC_OK ? FC_ERR_NOMEM : status;
    }
    FC_OMP(parallel num_threads(fc_threads_for(tasks, (y ? 4.0 : 2.0) * points * MP * K * L * blocks / slots)))
    {
        FC_T *v = fc_scratch((size_t)(points * (K + MP) * L) * sizeof(FC_T), 0, &status);
        FC_T *work = fc_scratch(work_size * sizeof(FC_T), 0, &status);
        FC_T *scratch = fc_scratch(scratch_size * sizeof(FC_T), 0, &status);
        FC_OMP(for schedule(static))
        for (int64_t task = 0; task < tasks; task++) {
            if (!v || !work || !scratch) continue;
            const int64_t g = task / (slots * parts), slot = task / parts % slots, m0 = task % parts * MP;
            const int64_t mp = FC_MIN(MP, M - m0);
            if (mp <= 0) continue;
            FC_T *dm = v + points * K * L, *dus = du + (g * slots + slot) * size;
            for (int64_t b = blocks * slot / slots; b < blocks * (slot + 1) / slots; b++) {
                const int64_t row0 = b * RB, rows = FC_MIN(RB, tile_rows - row0), q = rows * tw;
                for (int64_t c0 = 0; c0 < K; c0 += chunk_in)
                    k->wino_input_block(f, s, x, g * K + c0, FC_MIN(chunk_in, K - c0), row0 * tw, q, th, tw, L,
                                        scratch, v + c0 * L, K * L);
                if (y) { /* the forward's M, in dM's place before it */
                    FC_FN(wino_block_gemms)(f, upack + (g * points * parts + m0 / MP) * a_size,
                                            (int64_t)(parts * a_size), mp, q, K, v, L, dm, work);
                    FC_FN(wino_block_output)(k, f, s, dm, mp, g * M + m0, row0 * tw, q, tw, L, chunk_in, NULL, 0,
                                             scratch, y);
                }
                for (int64_t c0 = 0; c0 < mp; c0 += chunk_out)
                    k->wino_grad_output_block(f, s, gy, g * M + m0 + c0, FC_MIN(chunk_out, mp - c0), row0, rows, th,
                                              tw, L, scratch, dm + c0 * L, MP * L);
                for (int64_t p = 0; p < points; p++) {
                    const FC_FN(fc_operand) a = {NULL, NULL, dm + p * MP * L, NULL};
                    const FC_FN(fc_strided) vm = {v + p * K * L, L, 1};
                    const FC_FN(fc_operand) bo = {FC_FN(pack_strided), &vm, NULL, NULL};
                    const unsigned runs = (b > blocks * slot / slots ? FC_GEMM_ACCUMULATE : 0u) | wino_runs(m);
                    FC_FN(gemm_serial)(mp, K, L, &a, &bo, dus + p * M * K + m0 * K, K, NULL, runs, work);
                }
            }
        }
        fc_free(v);
        fc_free(work);
        fc_free(scratch);
    }
    fc_free(upack);
    if (status != FC_OK) {
        fc_free(du);
        return status;
    }
    /* the runs' copies added in run order, then gw = G^T dU G, along
     * lanes (co, ci) of each group */
    const int64_t lanes = WINO_CHUNK_LANES, pieces = (M * K + lanes - 1) / lanes;
    FC_OMP(parallel num_threads(fc_threads_for(G * pieces, 4.0 * points * lanes * slots)))
    {
        FC_T *t = fc_scratch((size_t)((f.r * a + taps) * lanes) * sizeof(FC_T), 0, &status);
        FC_OMP(for schedule(static))
        for (int64_t job = 0; job < G * pieces; job++) {
            if (!t) continue;
            const int64_t g = job / pieces, e0 = job % pieces * lanes, e1 = FC_MIN(M * K, e0 + lanes);
            FC_T *sum = du + g * slots * size;
            for (int64_t p = 0; p < points; p++)
                for (int64_t slot = 1; slot < slots; slot++)
                    for (int64_t e = e0; e < e1; e++) sum[p * M * K + e] += sum[slot * size + p * M * K + e];
            k->wino_kernel_grads(f, sum, M * K, e0, e1, K, l, t, t + f.r * a * lanes, gw + g * l->gs);
        }
        fc_free(t);
    }
    fc_free(du);
    return status;
}

static int FC_FN(winograd_grad_weight)(int tile, const fc_conv2d_shape *s, const FC_T *gy, const FC_T *x,
                                       wino_layout l, FC_T *gw) {
    return FC_FN(winograd_weight_pass)(wino_variant(tile, s), s, gy, x, &l, gw, NULL, NULL);
}

/* The forward y = conv(x, w) and the weight gradient for grad_output gy
 * in one pass over x's transformed tiles (winograd_weight_pass). */
static int FC_FN(winograd_forward_grad_weight)(int tile, const fc_conv2d_shape *s, const FC_T *x, const FC_T *w,
                                               const FC_T *gy, wino_layout l, FC_T *y, FC_T *gw) {
    return FC_FN(winograd_weight_pass)(wino_variant(tile, s), s, gy, x, &l, gw, w, y);
}
