/* AVX2+FMA GEMM microkernels (contract in gemm.h), compiled for any x86-64
 * through the target attribute and chosen at run time by cpu.c.
 *
 * f32 6x16: 12 accumulators (6 rows x 2 vectors of 8) + 2 B vectors + 1
 * broadcast of A = 15 of the 16 ymm registers; each k step is 12 FMAs
 * against 2 loads and 6 broadcasts, enough to keep both FMA ports busy.
 * f64 6x8 is the same tile in registers, 4 doubles a vector. The indirect
 * kernels (fc_igemm_*) run the same steps with A read through pointers. */
#include "gemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* One k step of row i: its A element, at A(i), broadcast against both B
 * vectors. The GEMM's A(i) is a packed panel, the indirect kernel's a
 * pointer plus the step's offset. Named accumulators: GCC spills an
 * acc[6][2] array to the stack on every step, halving the kernel's speed. */
#define PACKED(i) (a + (i))
#define INDIRECT(i) (a##i + o)
#define ROW(i, A, bcast, fma) ai = bcast(A(i)), c##i##0 = fma(ai, b0, c##i##0), c##i##1 = fma(ai, b1, c##i##1);
#define STEP(A, bcast, fma) \
    ROW(0, A, bcast, fma) ROW(1, A, bcast, fma) ROW(2, A, bcast, fma) ROW(3, A, bcast, fma) ROW(4, A, bcast, fma) ROW(5, A, bcast, fma)
#define ZERO_ACC(V, zero)                                                            \
    V c00 = zero, c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00; \
    V c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define ACC_ROWS {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}}

AVX2 void fc_gemm_f32_6x16_avx2(size_t kc, const float *restrict a,
                                const float *restrict b, float *restrict c,
                                size_t ldc, const float *restrict bias,
                                unsigned flags) {
    ZERO_ACC(__m256, _mm256_setzero_ps())
    for (size_t k = 0; k < kc; k++, a += FC_MR, b += FC_NR_F32) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 ai;
        STEP(PACKED, _mm256_broadcast_ss, _mm256_fmadd_ps)
    }
    const __m256 acc[FC_MR][2] = ACC_ROWS;
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
    ZERO_ACC(__m256d, _mm256_setzero_pd())
    for (size_t k = 0; k < kc; k++, a += FC_MR, b += FC_NR_F64) {
        const __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);
        __m256d ai;
        STEP(PACKED, _mm256_broadcast_sd, _mm256_fmadd_pd)
    }
    const __m256d acc[FC_MR][2] = ACC_ROWS;
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

AVX2 void fc_igemm_f32_6x16_avx2(size_t kc, const float *const *a, const ptrdiff_t *restrict off,
                                 const float *restrict b, float *restrict c,
                                 const float *restrict bias, unsigned flags) {
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    ZERO_ACC(__m256, _mm256_setzero_ps())
    for (size_t k = 0; k < kc; k++, b += FC_NR_F32) {
        const ptrdiff_t o = off[k];
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 ai;
        STEP(INDIRECT, _mm256_broadcast_ss, _mm256_fmadd_ps)
    }
    const __m256 acc[FC_MR][2] = ACC_ROWS, zero = _mm256_setzero_ps();
    const __m256 bias0 = bias ? _mm256_loadu_ps(bias) : zero, bias1 = bias ? _mm256_loadu_ps(bias + 8) : zero;
    for (int i = 0; i < FC_MR; i++) {
        __m256 lo = _mm256_add_ps(acc[i][0], bias0), hi = _mm256_add_ps(acc[i][1], bias1);
        if (flags & FC_GEMM_RELU) {
            lo = _mm256_max_ps(zero, lo);
            hi = _mm256_max_ps(zero, hi);
        }
        _mm256_storeu_ps(c + i * FC_NR_F32, lo);
        _mm256_storeu_ps(c + i * FC_NR_F32 + 8, hi);
    }
}

AVX2 void fc_igemm_f64_6x8_avx2(size_t kc, const double *const *a, const ptrdiff_t *restrict off,
                                const double *restrict b, double *restrict c,
                                const double *restrict bias, unsigned flags) {
    const double *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    ZERO_ACC(__m256d, _mm256_setzero_pd())
    for (size_t k = 0; k < kc; k++, b += FC_NR_F64) {
        const ptrdiff_t o = off[k];
        const __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);
        __m256d ai;
        STEP(INDIRECT, _mm256_broadcast_sd, _mm256_fmadd_pd)
    }
    const __m256d acc[FC_MR][2] = ACC_ROWS, zero = _mm256_setzero_pd();
    const __m256d bias0 = bias ? _mm256_loadu_pd(bias) : zero, bias1 = bias ? _mm256_loadu_pd(bias + 4) : zero;
    for (int i = 0; i < FC_MR; i++) {
        __m256d lo = _mm256_add_pd(acc[i][0], bias0), hi = _mm256_add_pd(acc[i][1], bias1);
        if (flags & FC_GEMM_RELU) {
            lo = _mm256_max_pd(zero, lo);
            hi = _mm256_max_pd(zero, hi);
        }
        _mm256_storeu_pd(c + i * FC_NR_F64, lo);
        _mm256_storeu_pd(c + i * FC_NR_F64 + 4, hi);
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
void fc_igemm_f32_6x16_avx2(size_t kc, const float *const *a, const ptrdiff_t *off, const float *b,
                            float *c, const float *bias, unsigned flags) {
    (void)kc, (void)a, (void)off, (void)b, (void)c, (void)bias, (void)flags;
}
void fc_igemm_f64_6x8_avx2(size_t kc, const double *const *a, const ptrdiff_t *off, const double *b,
                           double *c, const double *bias, unsigned flags) {
    (void)kc, (void)a, (void)off, (void)b, (void)c, (void)bias, (void)flags;
}
#endif
