/* AVX2+FMA GEMM microkernels (contract in gemm.h), compiled for any x86-64
 * through the target attribute and chosen at run time by cpu.c.
 *
 * f32 6x16: 12 accumulators (6 rows x 2 vectors of 8) + 2 B vectors + 1
 * broadcast of A = 15 of the 16 ymm registers; each k step is 12 FMAs
 * against 2 loads and 6 broadcasts, enough to keep both FMA ports busy.
 * f64 6x8 is the same tile in registers, 4 doubles a vector. */
#include "gemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 void fc_gemm_f32_6x16_avx2(size_t kc, const float *restrict a,
                                const float *restrict b, float *restrict c,
                                size_t ldc, const float *restrict bias,
                                unsigned flags) {
    /* Named accumulators: GCC spills an acc[6][2] array to the stack on
     * every step, halving the kernel's speed. */
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 ai;
        ai = _mm256_broadcast_ss(a + 0), c00 = _mm256_fmadd_ps(ai, b0, c00), c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1), c10 = _mm256_fmadd_ps(ai, b0, c10), c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2), c20 = _mm256_fmadd_ps(ai, b0, c20), c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3), c30 = _mm256_fmadd_ps(ai, b0, c30), c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4), c40 = _mm256_fmadd_ps(ai, b0, c40), c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5), c50 = _mm256_fmadd_ps(ai, b0, c50), c51 = _mm256_fmadd_ps(ai, b1, c51);
        a += FC_MR;
        b += FC_NR_F32;
    }
    const __m256 acc[FC_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    const __m256 zero = _mm256_setzero_ps(); /* max(0, x) keeps a NaN x */
    for (int i = 0; i < FC_MR; i++) {
        float *ci = c + i * ldc;
        __m256 lo = acc[i][0], hi = acc[i][1];
        if (flags & FC_GEMM_ACCUMULATE) {
            lo = _mm256_add_ps(lo, _mm256_loadu_ps(ci));
            hi = _mm256_add_ps(hi, _mm256_loadu_ps(ci + 8));
        } else if (bias) {
            const __m256 bi = _mm256_broadcast_ss(bias + i);
            lo = _mm256_add_ps(lo, bi);
            hi = _mm256_add_ps(hi, bi);
        }
        if (flags & FC_GEMM_RELU) {
            lo = _mm256_max_ps(zero, lo);
            hi = _mm256_max_ps(zero, hi);
        }
        _mm256_storeu_ps(ci, lo);
        _mm256_storeu_ps(ci + 8, hi);
    }
}

AVX2 void fc_gemm_f64_6x8_avx2(size_t kc, const double *restrict a,
                               const double *restrict b, double *restrict c,
                               size_t ldc, const double *restrict bias,
                               unsigned flags) {
    __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t k = 0; k < kc; k++) {
        const __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);
        __m256d ai;
        ai = _mm256_broadcast_sd(a + 0), c00 = _mm256_fmadd_pd(ai, b0, c00), c01 = _mm256_fmadd_pd(ai, b1, c01);
        ai = _mm256_broadcast_sd(a + 1), c10 = _mm256_fmadd_pd(ai, b0, c10), c11 = _mm256_fmadd_pd(ai, b1, c11);
        ai = _mm256_broadcast_sd(a + 2), c20 = _mm256_fmadd_pd(ai, b0, c20), c21 = _mm256_fmadd_pd(ai, b1, c21);
        ai = _mm256_broadcast_sd(a + 3), c30 = _mm256_fmadd_pd(ai, b0, c30), c31 = _mm256_fmadd_pd(ai, b1, c31);
        ai = _mm256_broadcast_sd(a + 4), c40 = _mm256_fmadd_pd(ai, b0, c40), c41 = _mm256_fmadd_pd(ai, b1, c41);
        ai = _mm256_broadcast_sd(a + 5), c50 = _mm256_fmadd_pd(ai, b0, c50), c51 = _mm256_fmadd_pd(ai, b1, c51);
        a += FC_MR;
        b += FC_NR_F64;
    }
    const __m256d acc[FC_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    const __m256d zero = _mm256_setzero_pd();
    for (int i = 0; i < FC_MR; i++) {
        double *ci = c + i * ldc;
        __m256d lo = acc[i][0], hi = acc[i][1];
        if (flags & FC_GEMM_ACCUMULATE) {
            lo = _mm256_add_pd(lo, _mm256_loadu_pd(ci));
            hi = _mm256_add_pd(hi, _mm256_loadu_pd(ci + 4));
        } else if (bias) {
            const __m256d bi = _mm256_broadcast_sd(bias + i);
            lo = _mm256_add_pd(lo, bi);
            hi = _mm256_add_pd(hi, bi);
        }
        if (flags & FC_GEMM_RELU) {
            lo = _mm256_max_pd(zero, lo);
            hi = _mm256_max_pd(zero, hi);
        }
        _mm256_storeu_pd(ci, lo);
        _mm256_storeu_pd(ci + 4, hi);
    }
}

#else
/* Not x86-64: cpu.c never selects these; they exist so the build links. */
void fc_gemm_f32_6x16_avx2(size_t kc, const float *a, const float *b, float *c,
                           size_t ldc, const float *bias, unsigned flags) {
    (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)bias, (void)flags;
}
void fc_gemm_f64_6x8_avx2(size_t kc, const double *a, const double *b, double *c,
                          size_t ldc, const double *bias, unsigned flags) {
    (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)bias, (void)flags;
}
#endif
