/* AVX-512F GEMM microkernels (contract in gemm.h), compiled for any x86-64
 * through the target attribute and chosen at run time by cpu.c.
 *
 * f32 6x32 and f64 6x16: each row of the tile is two zmm vectors, so 12
 * accumulators cover the FMA latency of two 512-bit pipes (latency 4 x 2
 * pipes = 8 chains needed); each k step is 12 FMAs against 2 loads of B
 * and 6 broadcasts of A. On CPUs with full-width AVX-512 (Zen 5, Xeon)
 * this doubles the AVX2 kernel's arithmetic per cycle. The indirect
 * kernels (fc_igemm_*) run the same steps with A read through pointers. */
#include "gemm.h"

#ifdef FC_X86_KERNELS
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

/* The ISA's spelling of the shared tile (gemm_tile.h): 16 floats or 8
 * doubles a vector. */
#define VOP(S, op) _mm512_##op##_##S
#define BCAST(S, p) VOP(S, set1)(*(p))
#include "gemm_tile.h"

/* The narrow indirect kernels, f32 6x16 and f64 6x8 (one zmm per row),
 * serve a last panel of at most half the width: a layer of 6 or 16
 * channels would leave most of a 32-wide tile's FMAs multiplying zeros.
 * Even and odd steps sum into separate accumulators (cI0, cI1), so twelve
 * chains still cover the FMA latency; they are added in the epilogue. */
#define NARROW_ROW(i, j, o, S) \
    ai = BCAST(S, a##i + o); \
    c##i##j = VOP(S, fmadd)(ai, b##j, c##i##j);
#define NARROW_STEP(j, o, S) \
    NARROW_ROW(0, j, o, S) NARROW_ROW(1, j, o, S) NARROW_ROW(2, j, o, S) NARROW_ROW(3, j, o, S) NARROW_ROW(4, j, o, S) NARROW_ROW(5, j, o, S)
#define NARROW_TILE(i, V, S, W)                                         \
    {                                                                   \
        V v = VOP(S, add)(VOP(S, add)(c##i##0, c##i##1), bias0);        \
        if (flags & FC_GEMM_ACCUMULATE) v = VOP(S, add)(v, VOP(S, loadu)(c + (i) * (W))); \
        if (flags & FC_GEMM_RELU) v = VOP(S, max)(VOP(S, setzero)(), v); \
        VOP(S, storeu)(c + (i) * (W), v);                               \
    }
#define NARROW_KERNEL(T, V, S, W)                                                   \
    const T *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5]; \
    ZERO_ACC(V, VOP(S, setzero)())                                                  \
    V ai;                                                                           \
    size_t k = 0;                                                                   \
    for (; k + 1 < kc; k += 2, b += 2 * (W)) {                                      \
        const ptrdiff_t o0 = off[k], o1 = off[k + 1];                               \
        const V b0 = VOP(S, loadu)(b), b1 = VOP(S, loadu)(b + (W));                 \
        NARROW_STEP(0, o0, S) NARROW_STEP(1, o1, S)                                 \
    }                                                                               \
    if (k < kc) {                                                                   \
        const ptrdiff_t o0 = off[k];                                                \
        const V b0 = VOP(S, loadu)(b);                                              \
        NARROW_STEP(0, o0, S)                                                       \
    }                                                                               \
    const V bias0 = bias ? VOP(S, loadu)(bias) : VOP(S, setzero)();                 \
    EACH_ROW(NARROW_TILE, V, S, W)

/* The narrow GEMM kernels, f32 6x16 and f64 6x8: the first half of a
 * panel packed for the wide kernel (B's rows 2W apart), for a last panel
 * of at most half its width. Each sum runs in the wide kernel's order, a
 * step at a time into one accumulator, so a column's bits never depend on
 * which kernel computed it (a Winograd block's width follows the thread
 * count); its six chains cover 3/4 of the FMA latency, which beats
 * multiplying a half panel of zeros. */
#define HALF_ROW(i, S) c##i##0 = VOP(S, fmadd)(BCAST(S, a + (i)), b0, c##i##0);
#define HALF_STORE(i, T, V, S)                                    \
    if ((i) < rows) {                                             \
        T *ci = c + (i) * ldc;                                    \
        V v = c##i##0;                                            \
        if (flags & FC_GEMM_ACCUMULATE)                           \
            v = VOP(S, add)(v, VOP(S, loadu)(ci));                \
        else if (bias)                                            \
            v = VOP(S, add)(v, BCAST(S, bias + (i)));             \
        if (flags & FC_GEMM_RELU) v = VOP(S, max)(VOP(S, setzero)(), v); \
        VOP(S, storeu)(ci, v);                                    \
    }
#define HALF_KERNEL(T, V, S, W)                                                                          \
    V c00 = VOP(S, setzero)(), c10 = c00, c20 = c00, c30 = c00, c40 = c00, c50 = c00;                    \
    for (size_t k = 0; k < kc; k++, a += FC_MR, b += 2 * (W)) {                                          \
        const V b0 = VOP(S, loadu)(b);                                                                   \
        HALF_ROW(0, S) HALF_ROW(1, S) HALF_ROW(2, S) HALF_ROW(3, S) HALF_ROW(4, S) HALF_ROW(5, S)       \
    }                                                                                                    \
    const int rows = FC_GEMM_ROWS_OF(flags);                                                             \
    EACH_ROW(HALF_STORE, T, V, S)

AVX512 void fc_gemm_f32_6x16_avx512(size_t kc, const float *restrict a, const float *restrict b,
                                    float *restrict c, size_t ldc, const float *restrict bias,
                                    unsigned flags) {
    HALF_KERNEL(float, __m512, ps, 16)
}

AVX512 void fc_gemm_f64_6x8_avx512(size_t kc, const double *restrict a, const double *restrict b,
                                   double *restrict c, size_t ldc, const double *restrict bias,
                                   unsigned flags) {
    HALF_KERNEL(double, __m512d, pd, 8)
}

AVX512 void fc_gemm_f32_6x32_avx512(size_t kc, const float *restrict a, const float *restrict b,
                                    float *restrict c, size_t ldc, const float *restrict bias,
                                    unsigned flags) {
    GEMM_KERNEL(float, __m512, ps, 16)
}

AVX512 void fc_gemm_f64_6x16_avx512(size_t kc, const double *restrict a, const double *restrict b,
                                    double *restrict c, size_t ldc, const double *restrict bias,
                                    unsigned flags) {
    GEMM_KERNEL(double, __m512d, pd, 8)
}

AVX512 void fc_igemm_f32_6x32_avx512(size_t kc, const float *const *a, const ptrdiff_t *restrict off,
                                     const float *restrict b, float *restrict c,
                                     const float *restrict bias, unsigned flags) {
    IGEMM_KERNEL(float, __m512, ps, 16)
}

AVX512 void fc_igemm_f64_6x16_avx512(size_t kc, const double *const *a, const ptrdiff_t *restrict off,
                                     const double *restrict b, double *restrict c,
                                     const double *restrict bias, unsigned flags) {
    IGEMM_KERNEL(double, __m512d, pd, 8)
}

AVX512 void fc_igemm_f32_6x16_avx512(size_t kc, const float *const *a, const ptrdiff_t *restrict off,
                                     const float *restrict b, float *restrict c,
                                     const float *restrict bias, unsigned flags) {
    NARROW_KERNEL(float, __m512, ps, 16)
}

AVX512 void fc_igemm_f64_6x8_avx512(size_t kc, const double *const *a, const ptrdiff_t *restrict off,
                                    const double *restrict b, double *restrict c,
                                    const double *restrict bias, unsigned flags) {
    NARROW_KERNEL(double, __m512d, pd, 8)
}

#endif
