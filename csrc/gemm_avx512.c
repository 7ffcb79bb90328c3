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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

/* One k step of row i: its A element, at A(i), times both B vectors.
 * The GEMM's A(i) is a packed panel, the indirect kernel's a pointer
 * plus the step's offset. */
#define PACKED(i) (a + (i))
#define INDIRECT(i) (a##i + o)
#define ROW_F32(i, A)                                                \
    ai = _mm512_set1_ps(*A(i));                                      \
    c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                      \
    c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);
#define STEP_F32(A) ROW_F32(0, A) ROW_F32(1, A) ROW_F32(2, A) ROW_F32(3, A) ROW_F32(4, A) ROW_F32(5, A)
#define ROW_F64(i, A)                                                \
    ai = _mm512_set1_pd(*A(i));                                      \
    c##i##0 = _mm512_fmadd_pd(ai, b0, c##i##0);                      \
    c##i##1 = _mm512_fmadd_pd(ai, b1, c##i##1);
#define STEP_F64(A) ROW_F64(0, A) ROW_F64(1, A) ROW_F64(2, A) ROW_F64(3, A) ROW_F64(4, A) ROW_F64(5, A)

/* The GEMM's epilogue: row i of C (+ C, or + bias[i]), ReLU, stored. */
#define STORE_F32(i)                                                 \
    {                                                                \
        float *ci = c + (i) * ldc;                                   \
        __m512 lo = c##i##0, hi = c##i##1;                           \
        if (flags & FC_GEMM_ACCUMULATE) {                            \
            lo = _mm512_add_ps(lo, _mm512_loadu_ps(ci));             \
            hi = _mm512_add_ps(hi, _mm512_loadu_ps(ci + 16));        \
        } else if (bias) {                                           \
            lo = _mm512_add_ps(lo, _mm512_set1_ps(bias[i]));         \
            hi = _mm512_add_ps(hi, _mm512_set1_ps(bias[i]));         \
        }                                                            \
        if (flags & FC_GEMM_RELU) { /* max(0, x) keeps a NaN x */    \
            lo = _mm512_max_ps(_mm512_setzero_ps(), lo);             \
            hi = _mm512_max_ps(_mm512_setzero_ps(), hi);             \
        }                                                            \
        _mm512_storeu_ps(ci, lo);                                    \
        _mm512_storeu_ps(ci + 16, hi);                               \
    }
#define STORE_F64(i)                                                 \
    {                                                                \
        double *ci = c + (i) * ldc;                                  \
        __m512d lo = c##i##0, hi = c##i##1;                          \
        if (flags & FC_GEMM_ACCUMULATE) {                            \
            lo = _mm512_add_pd(lo, _mm512_loadu_pd(ci));             \
            hi = _mm512_add_pd(hi, _mm512_loadu_pd(ci + 8));         \
        } else if (bias) {                                           \
            lo = _mm512_add_pd(lo, _mm512_set1_pd(bias[i]));         \
            hi = _mm512_add_pd(hi, _mm512_set1_pd(bias[i]));         \
        }                                                            \
        if (flags & FC_GEMM_RELU) {                                  \
            lo = _mm512_max_pd(_mm512_setzero_pd(), lo);             \
            hi = _mm512_max_pd(_mm512_setzero_pd(), hi);             \
        }                                                            \
        _mm512_storeu_pd(ci, lo);                                    \
        _mm512_storeu_pd(ci + 8, hi);                                \
    }

/* The indirect kernel's epilogue: row i of the tile + the bias vectors
 * (zero without bias), ReLU, stored. */
#define TILE_F32(i)                                                              \
    {                                                                            \
        __m512 lo = _mm512_add_ps(c##i##0, bias0), hi = _mm512_add_ps(c##i##1, bias1); \
        if (flags & FC_GEMM_RELU) {                                              \
            lo = _mm512_max_ps(_mm512_setzero_ps(), lo);                         \
            hi = _mm512_max_ps(_mm512_setzero_ps(), hi);                         \
        }                                                                        \
        _mm512_storeu_ps(c + (i) * 32, lo);                                      \
        _mm512_storeu_ps(c + (i) * 32 + 16, hi);                                 \
    }
#define TILE_F64(i)                                                              \
    {                                                                            \
        __m512d lo = _mm512_add_pd(c##i##0, bias0), hi = _mm512_add_pd(c##i##1, bias1); \
        if (flags & FC_GEMM_RELU) {                                              \
            lo = _mm512_max_pd(_mm512_setzero_pd(), lo);                         \
            hi = _mm512_max_pd(_mm512_setzero_pd(), hi);                         \
        }                                                                        \
        _mm512_storeu_pd(c + (i) * 16, lo);                                      \
        _mm512_storeu_pd(c + (i) * 16 + 8, hi);                                  \
    }

#define ZERO_ACC(V, zero)                                                            \
    V c00 = zero, c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00; \
    V c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;

AVX512 void fc_gemm_f32_6x32_avx512(size_t kc, const float *restrict a,
                                    const float *restrict b, float *restrict c,
                                    size_t ldc, const float *restrict bias,
                                    unsigned flags) {
    ZERO_ACC(__m512, _mm512_setzero_ps())
    for (size_t k = 0; k < kc; k++, a += 6, b += 32) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 ai;
        STEP_F32(PACKED)
    }
    STORE_F32(0) STORE_F32(1) STORE_F32(2) STORE_F32(3) STORE_F32(4) STORE_F32(5)
}

AVX512 void fc_gemm_f64_6x16_avx512(size_t kc, const double *restrict a,
                                    const double *restrict b, double *restrict c,
                                    size_t ldc, const double *restrict bias,
                                    unsigned flags) {
    ZERO_ACC(__m512d, _mm512_setzero_pd())
    for (size_t k = 0; k < kc; k++, a += 6, b += 16) {
        const __m512d b0 = _mm512_loadu_pd(b), b1 = _mm512_loadu_pd(b + 8);
        __m512d ai;
        STEP_F64(PACKED)
    }
    STORE_F64(0) STORE_F64(1) STORE_F64(2) STORE_F64(3) STORE_F64(4) STORE_F64(5)
}

AVX512 void fc_igemm_f32_6x32_avx512(size_t kc, const float *const *a, const ptrdiff_t *restrict off,
                                     const float *restrict b, float *restrict c,
                                     const float *restrict bias, unsigned flags) {
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    ZERO_ACC(__m512, _mm512_setzero_ps())
    for (size_t k = 0; k < kc; k++, b += 32) {
        const ptrdiff_t o = off[k];
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 ai;
        STEP_F32(INDIRECT)
    }
    const __m512 bias0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    const __m512 bias1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
    TILE_F32(0) TILE_F32(1) TILE_F32(2) TILE_F32(3) TILE_F32(4) TILE_F32(5)
}

AVX512 void fc_igemm_f64_6x16_avx512(size_t kc, const double *const *a, const ptrdiff_t *restrict off,
                                     const double *restrict b, double *restrict c,
                                     const double *restrict bias, unsigned flags) {
    const double *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    ZERO_ACC(__m512d, _mm512_setzero_pd())
    for (size_t k = 0; k < kc; k++, b += 16) {
        const ptrdiff_t o = off[k];
        const __m512d b0 = _mm512_loadu_pd(b), b1 = _mm512_loadu_pd(b + 8);
        __m512d ai;
        STEP_F64(INDIRECT)
    }
    const __m512d bias0 = bias ? _mm512_loadu_pd(bias) : _mm512_setzero_pd();
    const __m512d bias1 = bias ? _mm512_loadu_pd(bias + 8) : _mm512_setzero_pd();
    TILE_F64(0) TILE_F64(1) TILE_F64(2) TILE_F64(3) TILE_F64(4) TILE_F64(5)
}

/* The narrow indirect kernels, f32 6x16 and f64 6x8 (one zmm per row),
 * serve a last panel of at most half the width: a layer of 6 or 16
 * channels would leave most of a 32-wide tile's FMAs multiplying zeros.
 * Even and odd steps sum into separate accumulators (cI0, cI1), so twelve
 * chains still cover the FMA latency; they are added in the epilogue. */
#define NARROW_ROW(i, j, o, SET1, FMA) \
    ai = SET1(a##i[o]);                \
    c##i##j = FMA(ai, b##j, c##i##j);
#define NARROW_STEP(j, o, SET1, FMA)                                                           \
    NARROW_ROW(0, j, o, SET1, FMA) NARROW_ROW(1, j, o, SET1, FMA) NARROW_ROW(2, j, o, SET1, FMA) \
    NARROW_ROW(3, j, o, SET1, FMA) NARROW_ROW(4, j, o, SET1, FMA) NARROW_ROW(5, j, o, SET1, FMA)
#define NARROW_TILE(i, V, W, ADD, MAX, ZERO, STORE)                   \
    {                                                                 \
        V v = ADD(ADD(c##i##0, c##i##1), bias0);                      \
        if (flags & FC_GEMM_RELU) v = MAX(ZERO(), v);                 \
        STORE(c + (i) * (W), v);                                      \
    }
/* One kernel body per dtype: T the element, V its zmm type, W the width. */
#define NARROW_KERNEL(T, V, W, LOAD, SET1, FMA, ADD, MAX, ZERO, STORE)                     \
    const T *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];      \
    ZERO_ACC(V, ZERO())                                                                    \
    V ai;                                                                                  \
    size_t k = 0;                                                                          \
    for (; k + 1 < kc; k += 2, b += 2 * (W)) {                                             \
        const ptrdiff_t o0 = off[k], o1 = off[k + 1];                                      \
        const V b0 = LOAD(b), b1 = LOAD(b + (W));                                          \
        NARROW_STEP(0, o0, SET1, FMA) NARROW_STEP(1, o1, SET1, FMA)                        \
    }                                                                                      \
    if (k < kc) {                                                                          \
        const ptrdiff_t o0 = off[k];                                                       \
        const V b0 = LOAD(b);                                                              \
        NARROW_STEP(0, o0, SET1, FMA)                                                      \
    }                                                                                      \
    const V bias0 = bias ? LOAD(bias) : ZERO();                                            \
    NARROW_TILE(0, V, W, ADD, MAX, ZERO, STORE) NARROW_TILE(1, V, W, ADD, MAX, ZERO, STORE) \
    NARROW_TILE(2, V, W, ADD, MAX, ZERO, STORE) NARROW_TILE(3, V, W, ADD, MAX, ZERO, STORE) \
    NARROW_TILE(4, V, W, ADD, MAX, ZERO, STORE) NARROW_TILE(5, V, W, ADD, MAX, ZERO, STORE)

AVX512 void fc_igemm_f32_6x16_avx512(size_t kc, const float *const *a, const ptrdiff_t *restrict off,
                                     const float *restrict b, float *restrict c,
                                     const float *restrict bias, unsigned flags) {
    NARROW_KERNEL(float, __m512, 16, _mm512_loadu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
                  _mm512_max_ps, _mm512_setzero_ps, _mm512_storeu_ps)
}

AVX512 void fc_igemm_f64_6x8_avx512(size_t kc, const double *const *a, const ptrdiff_t *restrict off,
                                    const double *restrict b, double *restrict c,
                                    const double *restrict bias, unsigned flags) {
    NARROW_KERNEL(double, __m512d, 8, _mm512_loadu_pd, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd,
                  _mm512_max_pd, _mm512_setzero_pd, _mm512_storeu_pd)
}

#else
/* Not x86-64: cpu.c never selects these; they exist so the build links. */
void fc_gemm_f32_6x32_avx512(size_t kc, const float *a, const float *b, float *c,
                             size_t ldc, const float *bias, unsigned flags) {
    (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)bias, (void)flags;
}
void fc_gemm_f64_6x16_avx512(size_t kc, const double *a, const double *b, double *c,
                             size_t ldc, const double *bias, unsigned flags) {
    (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)bias, (void)flags;
}
void fc_igemm_f32_6x32_avx512(size_t kc, const float *const *a, const ptrdiff_t *off, const float *b,
                              float *c, const float *bias, unsigned flags) {
    (void)kc, (void)a, (void)off, (void)b, (void)c, (void)bias, (void)flags;
}
void fc_igemm_f64_6x16_avx512(size_t kc, const double *const *a, const ptrdiff_t *off, const double *b,
                              double *c, const double *bias, unsigned flags) {
    (void)kc, (void)a, (void)off, (void)b, (void)c, (void)bias, (void)flags;
}
void fc_igemm_f32_6x16_avx512(size_t kc, const float *const *a, const ptrdiff_t *off, const float *b,
                              float *c, const float *bias, unsigned flags) {
    (void)kc, (void)a, (void)off, (void)b, (void)c, (void)bias, (void)flags;
}
void fc_igemm_f64_6x8_avx512(size_t kc, const double *const *a, const ptrdiff_t *off, const double *b,
                             double *c, const double *bias, unsigned flags) {
    (void)kc, (void)a, (void)off, (void)b, (void)c, (void)bias, (void)flags;
}
#endif
