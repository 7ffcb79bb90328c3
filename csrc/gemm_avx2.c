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

/* The ISA's spelling of the shared tile (gemm_tile.h): 8 floats or 4
 * doubles a vector. */
#define VOP(S, op) _mm256_##op##_##S
#define BCAST(S, p) BCAST_##S(p)
#define BCAST_ps _mm256_broadcast_ss
#define BCAST_pd _mm256_broadcast_sd
#include "gemm_tile.h"

AVX2 void fc_gemm_f32_6x16_avx2(size_t kc, const float *restrict a, const float *restrict b,
                                float *restrict c, size_t ldc, const float *restrict bias,
                                unsigned flags) {
    GEMM_KERNEL(float, __m256, ps, 8)
}

AVX2 void fc_gemm_f64_6x8_avx2(size_t kc, const double *restrict a, const double *restrict b,
                               double *restrict c, size_t ldc, const double *restrict bias,
                               unsigned flags) {
    GEMM_KERNEL(double, __m256d, pd, 4)
}

AVX2 void fc_igemm_f32_6x16_avx2(size_t kc, const float *const *a, const ptrdiff_t *restrict off,
                                 const float *restrict b, float *restrict c,
                                 const float *restrict bias, unsigned flags) {
    IGEMM_KERNEL(float, __m256, ps, 8)
}

AVX2 void fc_igemm_f64_6x8_avx2(size_t kc, const double *const *a, const ptrdiff_t *restrict off,
                                const double *restrict b, double *restrict c,
                                const double *restrict bias, unsigned flags) {
    IGEMM_KERNEL(double, __m256d, pd, 4)
}

#endif
