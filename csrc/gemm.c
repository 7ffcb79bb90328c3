/* Packed, cache-blocked GEMM: BLIS's loop nest around an MR x NR microkernel.
 * Family file: instantiated by f32.c and f64.c (see common.h).
 *
 *   for j0 in N step NC          B block, KC x NC, lives in L3
 *     for k0 in K step KC        pack B block (panels of NR columns)
 *       for i0 in M step MC      pack A block (panels of MR rows), in L2
 *         for jr in NC step NR   B micro-panel, KC x NR, stays in L1
 *           for ir in MC step MR microkernel
 *
 * Blocking for this class of CPU (Zen 4/5, Skylake-X: 32-48 KiB L1d, 1 MiB
 * L2, shared L3): KC = 256 keeps a B micro-panel at 16 KiB (AVX2 and
 * portable kernels) or 32 KiB (AVX-512's NR = 32 f32 / 16 f64), inside L1;
 * MC makes the A block 192 KiB, a fifth of L2; NC makes the B block 3 MiB.
 *
 * Operands are not matrices but packers: a conv packs B straight from the
 * image (implicit im2col, im2col.c), a plain matrix through its strides.
 * The driver is serial; callers parallelize over the tiles of C they own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* dst[k][j] = src[j * rs + k] for j < w, k < kc: rows of the operand
 * contiguous along k become a panel's columns (a linear layer's W^T). In
 * tiles of 8 x 8 held in vectors and transposed by shuffles, so both sides
 * move whole vectors: element by element, packing a 32-column panel took
 * as long as the multiplication it fed. GCC 12+ and clang have the
 * shuffle; elsewhere, the plain loop. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define FC_HAVE_SHUFFLE 1
#endif
#endif

#ifdef FC_HAVE_SHUFFLE
typedef FC_T FC_FN(row8) __attribute__((vector_size(8 * sizeof(FC_T)), aligned(sizeof(FC_T)), may_alias));
#define LO4(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 4, 12, 5, 13)
#define HI4(a, b) __builtin_shufflevector(a, b, 2, 10, 3, 11, 6, 14, 7, 15)
#define LO2(a, b) __builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13)
#define HI2(a, b) __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15)
#define LO1(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11)
#define HI1(a, b) __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15)

/* Rows src + i*rs (i < 8), 8 elements each, to columns: row k of the
 * result at dst + k*ds. */
static inline __attribute__((always_inline)) void FC_FN(transpose8)(const FC_T *src, int64_t rs, FC_T *dst, int64_t ds) {
    typedef FC_FN(row8) v;
    v r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = *(const v *)(src + i * rs);
    for (int i = 0; i < 8; i += 2) t[i] = LO4(r[i], r[i + 1]), t[i + 1] = HI4(r[i], r[i + 1]);
    for (int i = 0; i < 8; i += 4) {
        u[i] = LO2(t[i], t[i + 2]), u[i + 1] = HI2(t[i], t[i + 2]);
        u[i + 2] = LO2(t[i + 1], t[i + 3]), u[i + 3] = HI2(t[i + 1], t[i + 3]);
    }
    for (int k = 0; k < 4; k++) {
        *(v *)(dst + k * ds) = LO1(u[k], u[k + 4]);
        *(v *)(dst + (k + 4) * ds) = HI1(u[k], u[k + 4]);
    }
}
#undef LO4
#undef HI4
#undef LO2
#undef HI2
#undef LO1
#undef HI1
#endif

FC_VECTOR_LOOP(pack_transposed, (const FC_T *restrict src, int64_t rs, int w, int64_t kc, int width,
                                 FC_T *restrict dst), (src, rs, w, kc, width, dst)) {
    int j0 = 0;
#ifdef FC_HAVE_SHUFFLE
    /* Eight rows at a time along k: eight streams the prefetchers follow
     * (all of a panel's rows at once were too many to track). */
    const int64_t k8 = kc / 8 * 8;
    for (; j0 + 8 <= w; j0 += 8) {
        for (int64_t k0 = 0; k0 < k8; k0 += 8)
            FC_FN(transpose8)(src + j0 * rs + k0, rs, dst + k0 * width + j0, width);
        for (int64_t k = k8; k < kc; k++)
            for (int j = j0; j < j0 + 8; j++) dst[k * width + j] = src[j * rs + k];
    }
#endif
    for (; j0 < w; j0++)
        for (int64_t k = 0; k < kc; k++) dst[k * width + j0] = src[j0 * rs + k];
}

static void FC_FN(pack_strided)(const void *ctx, int64_t r0, int64_t rows,
                                int64_t k0, int64_t kc, int width, FC_T *dst) {
    const FC_FN(fc_strided) *m = ctx;
    if (m->rs == 1 && m->cs != 1) {
        /* Columns contiguous: each row k read once, through every panel,
         * so each is one stream; panel by panel, a call read two lines of
         * each of kc rows, more streams than the prefetchers follow. */
        const int64_t whole = rows / width * width;
        for (int64_t k = 0; k < kc; k++) {
            const FC_T *src = m->base + r0 + (k0 + k) * m->cs;
            FC_T *d = dst + k * width;
            for (int64_t p = 0; p < whole; p += width, d += kc * width)
                memcpy(d, src + p, (size_t)width * sizeof(FC_T));
            if (whole < rows) {
                memcpy(d, src + whole, (size_t)(rows - whole) * sizeof(FC_T));
                memset(d + rows - whole, 0, (size_t)(width - (rows - whole)) * sizeof(FC_T));
            }
        }
        return;
    }
    for (int64_t p = 0; p < rows; p += width, dst += kc * width) {
        const int w = (int)FC_MIN((int64_t)width, rows - p);
        const FC_T *src = m->base + (r0 + p) * m->rs + k0 * m->cs;
        if (m->cs == 1) { /* rows contiguous: a transpose */
            FC_FN(kernels)()->pack_transposed(src, m->rs, w, kc, width, dst);
        } else {
            for (int64_t k = 0; k < kc; k++)
                for (int j = 0; j < w; j++) dst[k * width + j] = src[j * m->rs + k * m->cs];
        }
        for (int j = w; j < width; j++)
            for (int64_t k = 0; k < kc; k++) dst[k * width + j] = 0;
    }
}

/* The operand's prefetch (internal.h): the lines pack_strided will read. */
static void FC_FN(prefetch_strided)(const void *ctx, int64_t r0, int64_t rows, int64_t k0, int64_t kc) {
    const FC_FN(fc_strided) *m = ctx;
    const int64_t line = 64 / sizeof(FC_T);
    if (m->rs == 1) {
        for (int64_t k = k0; k < k0 + kc; k++)
            for (int64_t r = 0; r < rows; r += line) __builtin_prefetch(m->base + r0 + r + k * m->cs, 0, 2);
    } else if (m->cs == 1) {
        for (int64_t r = r0; r < r0 + rows; r++)
            for (int64_t k = 0; k < kc; k += line) __builtin_prefetch(m->base + r * m->rs + k0 + k, 0, 2);
    }
}

/* The portable microkernel (contract in gemm.h): plain loops that compilers
 * vectorize for whatever the baseline ISA offers. Two rows at a time: the
 * whole 6 x NR tile would need 24 SSE registers of the baseline's 16 and
 * spill on every step; two rows fit, and the B panel they re-read stays
 * in L1. */
static void FC_UKERNEL_PORTABLE(size_t kc, const FC_T *restrict a, const FC_T *restrict b, FC_T *restrict c,
                                size_t ldc, const FC_T *restrict bias, unsigned flags) {
    const int rows = FC_GEMM_ROWS_OF(flags);
    for (int i = 0; i < rows; i += 2) {
        FC_T acc0[FC_NR] = {0}, acc1[FC_NR] = {0};
        for (size_t k = 0; k < kc; k++) {
            const FC_T a0 = a[k * FC_MR + i], a1 = a[k * FC_MR + i + 1];
            const FC_T *restrict bk = b + k * FC_NR;
            for (int j = 0; j < FC_NR; j++) {
                acc0[j] += a0 * bk[j];
                acc1[j] += a1 * bk[j];
            }
        }
        for (int r = 0; r < 2 && i + r < rows; r++) {
            const FC_T *acc = r ? acc1 : acc0;
            FC_T *ci = c + (i + r) * ldc;
            const FC_T add = bias ? bias[i + r] : 0;
            for (int j = 0; j < FC_NR; j++) {
                FC_T v = acc[j] + ((flags & FC_GEMM_ACCUMULATE) ? ci[j] : add);
                if ((flags & FC_GEMM_RELU) && !(v > 0)) v = v != v ? v : 0; /* keep NaN */
                ci[j] = v;
            }
        }
    }
}

/* The portable indirect microkernel (contract in gemm.h), two rows at a
 * time like the GEMM's. */
static void FC_IUKERNEL_PORTABLE(size_t kc, const FC_T *const *a, const ptrdiff_t *restrict off,
                                 const FC_T *restrict b, FC_T *restrict c, const FC_T *restrict bias,
                                 unsigned flags) {
    for (int i = 0; i < FC_MR; i += 2) {
        const FC_T *a0 = a[i], *a1 = a[i + 1];
        FC_T acc[2][FC_NR] = {{0}};
        for (size_t k = 0; k < kc; k++) {
            const FC_T x0 = a0[off[k]], x1 = a1[off[k]];
            const FC_T *restrict bk = b + k * FC_NR;
            for (int j = 0; j < FC_NR; j++) {
                acc[0][j] += x0 * bk[j];
                acc[1][j] += x1 * bk[j];
            }
        }
        for (int r = 0; r < 2; r++)
            for (int j = 0; j < FC_NR; j++) {
                FC_T v = acc[r][j] + (bias ? bias[j] : 0);
                if (flags & FC_GEMM_ACCUMULATE) v += c[(i + r) * FC_NR + j];
                if ((flags & FC_GEMM_RELU) && !(v > 0)) v = v != v ? v : 0; /* keep NaN */
                c[(i + r) * FC_NR + j] = v;
            }
    }
}

/* The kernel for panel pn of a B with `cols` columns: the narrow one for a
 * last panel it can hold. Panel pn starts at pn * nr columns either way. */
static FC_FN(fc_iukernel) FC_FN(panel_iukernel)(FC_FN(fc_iukernel) u, int64_t pn, int64_t cols) {
    if (u.narrow && cols - pn * u.nr <= u.nr / 2) return (FC_FN(fc_iukernel)){u.narrow, u.nr / 2, NULL};
    return u;
}

/* Columns the kernels compute for a B of `cols`: whole panels, the last
 * one possibly narrow. */
static int64_t FC_FN(iukernel_width)(FC_FN(fc_iukernel) u, int64_t cols) {
    const int64_t last = (cols - 1) / u.nr;
    return last * u.nr + FC_FN(panel_iukernel)(u, last, cols).nr;
}

/* The column count callers should round tiles of C to. */
static int64_t FC_FN(gemm_nr)(void) { return FC_FN(kernels)()->gemm.nr; }

/* Elements of workspace fc_gemm_serial needs for an m x n x k problem. */
static size_t FC_FN(gemm_workspace)(int64_t m, int64_t n, int64_t k) {
    const int64_t kc = FC_MIN(k, (int64_t)FC_KC);
    const int64_t mc = FC_MIN((m + FC_MR - 1) / FC_MR * FC_MR, (int64_t)FC_MC);
    const int64_t nc = FC_MIN((n + FC_NR_MAX - 1) / FC_NR_MAX * FC_NR_MAX, (int64_t)FC_NC);
    return (size_t)(kc * (mc + nc)) + 64 / sizeof(FC_T);
}

/* Packs all of an m x k A once, in the order gemm_serial reads it: block
 * (k0, i0) at k0 * m_pad + i0 * kc. Operators whose tasks share one A (the
 * weights) pack it once per call instead of once per task. */
static size_t FC_FN(gemm_packed_a_size)(int64_t m, int64_t k) {
    return (size_t)((m + FC_MR - 1) / FC_MR * FC_MR * k);
}

static void FC_FN(gemm_pack_a)(int64_t m, int64_t k, const FC_FN(fc_operand) *a, FC_T *dst) {
    const int64_t m_pad = (m + FC_MR - 1) / FC_MR * FC_MR;
    for (int64_t k0 = 0; k0 < k; k0 += FC_KC) {
        const int64_t kc = FC_MIN((int64_t)FC_KC, k - k0);
        for (int64_t i0 = 0; i0 < m; i0 += FC_MC)
            a->pack(a->ctx, i0, FC_MIN((int64_t)FC_MC, m - i0), k0, kc, FC_MR, dst + k0 * m_pad + i0 * kc);
    }
}

/* One tile of a k-block: kernel fn (the wide one, or the narrow one on
 * the same packed panel) over its kc steps, or with FC_GEMM_SHORT_RUNS
 * (in flags) over runs of them, each run after the first adding into the
 * tile; f is the block's ACCUMULATE and RELU. */
static inline void FC_FN(gemm_tile)(FC_FN(fc_ukernel_fn) fn, int nr, int64_t kc, const FC_T *ap, const FC_T *bp,
                                    FC_T *c, int64_t ldc, const FC_T *bias, unsigned f, unsigned flags) {
    const int64_t run = (flags & FC_GEMM_SHORT_RUNS) ? FC_SHORT_RUN : kc;
    for (int64_t k1 = 0; k1 < kc; k1 += run) {
        unsigned fk = (k1 > 0 ? FC_GEMM_ACCUMULATE : f & FC_GEMM_ACCUMULATE) | (f & FC_GEMM_ROWS_MASK);
        if (k1 + run >= kc) fk |= f & FC_GEMM_RELU;
        fn((size_t)FC_MIN(run, kc - k1), ap + k1 * FC_MR, bp + k1 * nr, c, (size_t)ldc, k1 > 0 ? NULL : bias, fk);
    }
}

/* C[m][n] = A B (+ bias[i] per row, or + C with FC_GEMM_ACCUMULATE), then
 * ReLU with FC_GEMM_RELU; FC_GEMM_SHORT_RUNS sums in short runs (gemm.h).
 * `work` holds gemm_workspace(m, n, k) elements.
 * The k-order of every sum is fixed by KC alone, so how a caller splits C
 * between threads never changes a result bit. */
static void FC_FN(gemm_serial)(int64_t m, int64_t n, int64_t k, const FC_FN(fc_operand) *a,
                               const FC_FN(fc_operand) *b, FC_T *c, int64_t ldc,
                               const FC_T *bias, unsigned flags, FC_T *work) {
    const FC_FN(fc_ukernel) ukernel = FC_FN(kernels)()->gemm;
    const int nr = ukernel.nr;
    const int64_t m_pad = (m + FC_MR - 1) / FC_MR * FC_MR, n_pad = (n + nr - 1) / nr * nr;
    const int64_t kc_max = FC_MIN(k, (int64_t)FC_KC);
    /* 64-byte alignment for the packed panels. */
    FC_T *apack = (FC_T *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    FC_T *bpack = apack + kc_max * FC_MIN((m + FC_MR - 1) / FC_MR * FC_MR, (int64_t)FC_MC);
    if (k == 0) { /* an empty sum: C = bias or C, then ReLU */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                FC_T v = (flags & FC_GEMM_ACCUMULATE) ? c[i * ldc + j] : (bias ? bias[i] : 0);
                c[i * ldc + j] = (flags & FC_GEMM_RELU) && v < 0 ? 0 : v;
            }
        return;
    }
    for (int64_t j0 = 0; j0 < n; j0 += FC_NC) {
        const int64_t nc = FC_MIN((int64_t)FC_NC, n - j0);
        for (int64_t k0 = 0; k0 < k; k0 += FC_KC) {
            const int64_t kc = FC_MIN((int64_t)FC_KC, k - k0);
            unsigned f = (k0 > 0 || (flags & FC_GEMM_ACCUMULATE)) ? FC_GEMM_ACCUMULATE : 0;
            if (k0 + kc == k) f |= flags & FC_GEMM_RELU;
            const FC_T *bblock = bpack;
            if (b->packed)
                bblock = b->packed + k0 * n_pad + j0 * kc;
            else
                b->pack(b->ctx, j0, nc, k0, kc, nr, bpack);
            for (int64_t i0 = 0; i0 < m; i0 += FC_MC) {
                const int64_t mc = FC_MIN((int64_t)FC_MC, m - i0);
                const FC_T *ablock = apack;
                if (a->packed)
                    ablock = a->packed + k0 * m_pad + i0 * kc;
                else
                    a->pack(a->ctx, i0, mc, k0, kc, FC_MR, apack);
                for (int64_t jr = 0; jr < nc; jr += nr) {
                    const int cols = (int)FC_MIN((int64_t)nr, nc - jr);
                    /* a last panel of at most half the width: the narrow kernel */
                    const int half = ukernel.narrow && cols <= nr / 2, width = half ? nr / 2 : nr;
                    const FC_FN(fc_ukernel_fn) fn = half ? ukernel.narrow : ukernel.fn;
                    const FC_T *bp = bblock + jr * kc;
                    /* While the last A block meets this panel, the next
                     * k-block of its B starts loading, a slice per tile:
                     * packing a B read once (a linear layer's weights)
                     * otherwise waited on memory with the FMAs idle. */
                    const int64_t next_kc = b->prefetch && i0 + mc >= m ? FC_MIN((int64_t)FC_KC, k - k0 - kc) : 0;
                    const int64_t tiles = (mc + FC_MR - 1) / FC_MR;
                    for (int64_t ir = 0; ir < mc; ir += FC_MR) {
                        if (next_kc > 0) {
                            const int64_t t = ir / FC_MR, lo = next_kc * t / tiles, hi = next_kc * (t + 1) / tiles;
                            b->prefetch(b->ctx, j0 + jr, cols, k0 + kc + lo, hi - lo);
                        }
                        const FC_T *ap = ablock + ir * kc;
                        const int rows = (int)FC_MIN((int64_t)FC_MR, mc - ir);
                        FC_T *cij = c + (i0 + ir) * ldc + j0 + jr;
                        const FC_T *bias_i = (bias && !(f & FC_GEMM_ACCUMULATE)) ? bias + i0 + ir : NULL;
                        if (cols == width) { /* a last tile short of rows stores those it has */
                            const unsigned fr = rows < FC_MR ? FC_GEMM_ROWS(rows) : 0u;
                            FC_FN(gemm_tile)(fn, nr, kc, ap, bp, cij, ldc, bias_i, f | fr, flags);
                            continue;
                        }
                        /* A tile short of columns: the full kernel on a scratch tile. */
                        FC_T tile[FC_MR * FC_NR_MAX], tile_bias[FC_MR] = {0};
                        for (int i = 0; i < rows; i++) {
                            if (bias_i) tile_bias[i] = bias_i[i];
                            if (f & FC_GEMM_ACCUMULATE)
                                memcpy(tile + i * nr, cij + i * ldc, cols * sizeof(FC_T));
                        }
                        FC_FN(gemm_tile)(fn, nr, kc, ap, bp, tile, nr, bias_i ? tile_bias : NULL, f, flags);
                        for (int i = 0; i < rows; i++)
                            memcpy(cij + i * ldc, tile + i * nr, cols * sizeof(FC_T));
                    }
                }
            }
        }
    }
}

/* C (+)= A B^T for operands too thin to pay for packing: A is m x k and B
 * is n x k, both read along k in place. Grad-weight with few taps is such a
 * product (a 64 x 9 result reduced over 784 pixels per image): packing its
 * operands cost five times the arithmetic. Tiles of 4 x 4 dot products,
 * each a vector of per-lane partial sums reduced at the end in a fixed
 * order; rows past an edge re-read the last row and are not stored. */
#define DOT_TILE 4

FC_VECTOR_LOOP(gemm_nt_dot, (int64_t m, int64_t n, int64_t k, const FC_T *a, int64_t lda, const FC_T *b,
                             int64_t ldb, FC_T *c, int64_t ldc, int accumulate),
               (m, n, k, a, lda, b, ldb, c, ldc, accumulate)) {
    for (int64_t i0 = 0; i0 < m; i0 += DOT_TILE)
        for (int64_t j0 = 0; j0 < n; j0 += DOT_TILE) {
            const FC_T *ar[DOT_TILE], *br[DOT_TILE];
            for (int t = 0; t < DOT_TILE; t++) {
                ar[t] = a + FC_MIN(i0 + t, m - 1) * lda;
                br[t] = b + FC_MIN(j0 + t, n - 1) * ldb;
            }
            FC_FN(dot_vec) acc[DOT_TILE][DOT_TILE] = {{{0}}};
            int64_t p = 0;
            for (; p + DOT_LANES <= k; p += DOT_LANES) {
                FC_FN(dot_vec) av[DOT_TILE], bv[DOT_TILE];
                for (int t = 0; t < DOT_TILE; t++) {
                    av[t] = *(const FC_FN(dot_vec) *)(ar[t] + p);
                    bv[t] = *(const FC_FN(dot_vec) *)(br[t] + p);
                }
                for (int u = 0; u < DOT_TILE; u++)
                    for (int v = 0; v < DOT_TILE; v++) acc[u][v] += av[u] * bv[v];
            }
            for (int u = 0; u < DOT_TILE && i0 + u < m; u++)
                for (int v = 0; v < DOT_TILE && j0 + v < n; v++) {
                    FC_T sum = 0;
                    for (int64_t l = 0; l < DOT_LANES; l++) sum += acc[u][v][l];
                    for (int64_t q = p; q < k; q++) sum += ar[u][q] * br[v][q];
                    FC_T *cij = c + (i0 + u) * ldc + j0 + v;
                    *cij = accumulate ? *cij + sum : sum;
                }
        }
}

/* Public GEMM on row-major matrices (contract in fastconv.h): threads
 * split C into column stripes (row stripes when C is tall), each a serial
 * GEMM. A bias per column is written into C first and the kernels
 * accumulate onto it, so it is added in their epilogue, as is the ReLU. */
int FC_FN(fc_gemm)(int64_t m, int64_t n, int64_t k, const FC_T *a, int64_t lda, int trans_a,
                   const FC_T *b, int64_t ldb, int trans_b, const FC_T *bias, fc_activation act,
                   FC_T *c, int64_t ldc) {
    FC_CALL_SCOPE;
    /* Element (r, k) of A, and (column j, k) of B, at base[r*rs + k*cs]. */
    const int64_t a_rs = trans_a ? 1 : lda, a_cs = trans_a ? lda : 1;
    const int64_t b_rs = trans_b ? ldb : 1, b_cs = trans_b ? 1 : ldb;
    const unsigned flags = (act == FC_ACT_RELU ? FC_GEMM_RELU : 0u) | (bias ? FC_GEMM_ACCUMULATE : 0u);
    /* A few rows against a B stored as n rows along k (a linear layer at
     * batch 1): dot products read B once, in place. Packing it into
     * panels wrote it again for one row of FMAs per element, which made
     * AlexNet's fc6 at batch 1 take 9.0 ms where one read of its 151 MB
     * takes 5.7 (benchmarks/RULES.md). */
    if (m <= DOT_TILE && a_cs == 1 && b_cs == 1) {
        FC_OMP(parallel num_threads(fc_threads_for((n + 63) / 64, 2.0 * m * k * 64)))
        {
            int t = 0, nt = 1;
#ifdef _OPENMP
            t = omp_get_thread_num();
            nt = omp_get_num_threads();
#endif
            const int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
            for (int64_t i = 0; i < m && lo < hi; i++) {
                if (bias) memcpy(c + i * ldc + lo, bias + lo, (size_t)(hi - lo) * sizeof(FC_T));
                else memset(c + i * ldc + lo, 0, (size_t)(hi - lo) * sizeof(FC_T));
            }
            if (lo < hi) FC_FN(kernels)()->gemm_nt_dot(m, hi - lo, k, a, lda, b + lo * ldb, ldb, c + lo, ldc, 1);
            if (act == FC_ACT_RELU)
                for (int64_t i = 0; i < m; i++)
                    for (FC_T *v = c + i * ldc + lo; v < c + i * ldc + hi; v++)
                        if (!(*v > 0)) *v = *v != *v ? *v : 0; /* keep NaN */
        }
        return FC_OK;
    }
    const int by_rows = m > n;
    const int64_t along = by_rows ? m : n, unit = by_rows ? FC_MR : FC_FN(gemm_nr)();
    int status = FC_OK;
    FC_OMP(parallel num_threads(fc_threads_for((along + unit - 1) / unit, 2.0 * (m < n ? m : n) * k * unit)))
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        const int64_t units = (along + unit - 1) / unit;
        const int64_t lo = units * t / nt * unit, hi = FC_MIN(units * (t + 1) / nt * unit, along);
        if (lo < hi) {
            const int64_t mm = by_rows ? hi - lo : m, nn = by_rows ? n : hi - lo, j0 = by_rows ? 0 : lo;
            FC_T *cs = c + (by_rows ? lo * ldc : lo);
            FC_T *work = fc_scratch(FC_FN(gemm_workspace)(mm, nn, k) * sizeof(FC_T), 0, &status);
            if (work) {
                if (bias)
                    for (int64_t i = 0; i < mm; i++) memcpy(cs + i * ldc, bias + j0, (size_t)nn * sizeof(FC_T));
                const FC_FN(fc_strided) am = {a + (by_rows ? lo * a_rs : 0), a_rs, a_cs};
                const FC_FN(fc_strided) bm = {b + j0 * b_rs, b_rs, b_cs};
                const FC_FN(fc_operand) ao = {FC_FN(pack_strided), &am, NULL, NULL};
                const FC_FN(fc_operand) bo = {FC_FN(pack_strided), &bm, NULL, FC_FN(prefetch_strided)};
                FC_FN(gemm_serial)(mm, nn, k, &ao, &bo, cs, ldc, NULL, flags, work);
                fc_free(work);
            }
        }
    }
    return status;
}
