/* AVX2+FMA GEMM microkernels (contract in gemm.h), compiled for any x86-64
 * through the target attribute and chosen at run time by cpu.c.
 *
 * f32 6x16: 12 accumulators (6 rows x 2 vectors of 8) + 2 B vectors + 1
 * broadcast of A = 15 of the 16 ymm registers; each k step is 12 FMAs
 * against 2 loads and 6 broadcasts, enough to keep both FMA ports busy.
 * f64 6x8 is the same tile in registers, 4 doubles a vector. The indirect
 * kernels (fc_igemm_*) run the same steps with A read through pointers. */
#include "gemm.h"

#ifdef FC_X86_KERNELS
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* Every kernel body is written once, for a vector type V whose intrinsics
 * end in S (ps: 8 floats, pd: 4 doubles) and whose broadcast ends in B
 * (ss, sd): VOP(S, fmadd) names _mm256_fmadd_ps or _mm256_fmadd_pd. */
#define VOP(S, op) _mm256_##op##_##S

/* One k step of row i: its A element, at A(i), broadcast against both B
 * vectors. The GEMM's A(i) is a packed panel, the indirect kernel's a
 * pointer plus the step's offset. Named accumulators: GCC spills an
 * acc[6][2] array to the stack on every step, halving the kernel's speed. */
#define PACKED(i) (a + (i))
#define INDIRECT(i) (a##i + o)
#define ROW(i, A, S, B) \
    ai = VOP(B, broadcast)(A(i)), c##i##0 = VOP(S, fmadd)(ai, b0, c##i##0), c##i##1 = VOP(S, fmadd)(ai, b1, c##i##1);
#define STEP(A, S, B) ROW(0, A, S, B) ROW(1, A, S, B) ROW(2, A, S, B) ROW(3, A, S, B) ROW(4, A, S, B) ROW(5, A, S, B)
#define ZERO_ACC(V, zero)                                                            \
    V c00 = zero, c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00; \
    V c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define ACC_ROWS {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}}

/* H is the lanes of one vector; a tile row is two. */
#define GEMM_KERNEL(T, V, S, B, H)                                            \
    ZERO_ACC(V, VOP(S, setzero)())                                            \
    for (size_t k = 0; k < kc; k++, a += FC_MR, b += 2 * (H)) {               \
        const V b0 = VOP(S, loadu)(b), b1 = VOP(S, loadu)(b + (H));           \
        V ai;                                                                 \
        STEP(PACKED, S, B)                                                    \
    }                                                                         \
    const V acc[FC_MR][2] = ACC_ROWS;                                         \
    const V zero = VOP(S, setzero)(); /* max(0, x) keeps a NaN x */           \
    for (int i = 0; i < FC_MR; i++) {                                         \
        T *ci = c + i * ldc;                                                  \
        V lo = acc[i][0], hi = acc[i][1];                                     \
        if (flags & FC_GEMM_ACCUMULATE) {                                     \
            lo = VOP(S, add)(lo, VOP(S, loadu)(ci));                          \
            hi = VOP(S, add)(hi, VOP(S, loadu)(ci + (H)));                    \
        } else if (bias) {                                                    \
            const V bi = VOP(B, broadcast)(bias + i);                         \
            lo = VOP(S, add)(lo, bi);                                         \
            hi = VOP(S, add)(hi, bi);                                         \
        }                                                                     \
        if (flags & FC_GEMM_RELU) {                                           \
            lo = VOP(S, max)(zero, lo);                                       \
            hi = VOP(S, max)(zero, hi);                                       \
        }                                                                     \
        VOP(S, storeu)(ci, lo);                                               \
        VOP(S, storeu)(ci + (H), hi);                                         \
    }

#define IGEMM_KERNEL(T, V, S, B, H)                                                          \
    const T *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];          \
    ZERO_ACC(V, VOP(S, setzero)())                                                           \
    for (size_t k = 0; k < kc; k++, b += 2 * (H)) {                                          \
        const ptrdiff_t o = off[k];                                                          \
        const V b0 = VOP(S, loadu)(b), b1 = VOP(S, loadu)(b + (H));                          \
        V ai;                                                                                \
        STEP(INDIRECT, S, B)                                                                 \
    }                                                                                        \
    const V acc[FC_MR][2] = ACC_ROWS, zero = VOP(S, setzero)();                              \
    const V bias0 = bias ? VOP(S, loadu)(bias) : zero, bias1 = bias ? VOP(S, loadu)(bias + (H)) : zero; \
    for (int i = 0; i < FC_MR; i++) {                                                        \
        V lo = VOP(S, add)(acc[i][0], bias0), hi = VOP(S, add)(acc[i][1], bias1);            \
        if (flags & FC_GEMM_ACCUMULATE) {                                                    \
            lo = VOP(S, add)(lo, VOP(S, loadu)(c + i * 2 * (H)));                            \
            hi = VOP(S, add)(hi, VOP(S, loadu)(c + i * 2 * (H) + (H)));                      \
        }                                                                                    \
        if (flags & FC_GEMM_RELU) {                                                          \
            lo = VOP(S, max)(zero, lo);                                                      \
            hi = VOP(S, max)(zero, hi);                                                      \
        }                                                                                    \
        VOP(S, storeu)(c + i * 2 * (H), lo);                                                 \
        VOP(S, storeu)(c + i * 2 * (H) + (H), hi);                                           \
    }

AVX2 void fc_gemm_f32_6x16_avx2(size_t kc, const float *restrict a, const float *restrict b,
                                float *restrict c, size_t ldc, const float *restrict bias,
                                unsigned flags) {
    GEMM_KERNEL(float, __m256, ps, ss, 8)
}

AVX2 void fc_gemm_f64_6x8_avx2(size_t kc, const double *restrict a, const double *restrict b,
                               double *restrict c, size_t ldc, const double *restrict bias,
                               unsigned flags) {
    GEMM_KERNEL(double, __m256d, pd, sd, 4)
}

AVX2 void fc_igemm_f32_6x16_avx2(size_t kc, const float *const *a, const ptrdiff_t *restrict off,
                                 const float *restrict b, float *restrict c,
                                 const float *restrict bias, unsigned flags) {
    IGEMM_KERNEL(float, __m256, ps, ss, 8)
}

AVX2 void fc_igemm_f64_6x8_avx2(size_t kc, const double *const *a, const ptrdiff_t *restrict off,
                                const double *restrict b, double *restrict c,
                                const double *restrict bias, unsigned flags) {
    IGEMM_KERNEL(double, __m256d, pd, sd, 4)
}

#endif
