/* The GEMM microkernel contracts, shared by gemm.c, gemm_avx2.c and
 * gemm_avx512.c.
 *
 * A microkernel computes one MR x NR tile of C from kc steps of packed
 * panels: a[kc][MR] (a column of A per step) and b[kc][NR] (a row of B):
 *   acc = sum_k a[k][i] * b[k][j]
 *   acc += flags & FC_GEMM_ACCUMULATE ? c[i][j] : (bias ? bias[i] : 0)
 *   acc = flags & FC_GEMM_RELU ? max(acc, 0) : acc
 *   c[i*ldc + j] = acc
 * so bias and ReLU are applied in registers, in the epilogue. Rows i <
 * FC_GEMM_ROWS_OF(flags) only, where flags carry FC_GEMM_ROWS(r): a last
 * tile of r < MR rows is stored in place (its rows past r are computed
 * from A's zero padding and dropped); the driver routes only tiles short
 * of columns through a scratch tile. */
/* The indirect microkernel (convolution's forward, after XNNPACK's IGEMM)
 * reads row i of A through a pointer and a table of offsets instead of a
 * packed panel, so an image is never copied into panels:
 *   acc = sum_k a[i][off[k]] * b[k][j]
 *   acc += bias ? bias[j] : 0;  acc += flags & FC_GEMM_ACCUMULATE ? c[i*NR + j] : 0
 *   ReLU as above
 *   c[i*NR + j] = acc           (a contiguous MR x NR tile)
 * Its rows are output pixels and its columns output channels: the bias is
 * per column. */
#ifndef FASTCONV_GEMM_H
#define FASTCONV_GEMM_H

#include <stddef.h>

/* The SIMD kernels, and the AVX2 and AVX-512 variants of the vector loops
 * (kernels.h), are compiled where GCC or clang target x86-64; elsewhere
 * the dispatch table has only its portable row. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FC_X86_KERNELS 1
#endif

#define FC_GEMM_ACCUMULATE 1u
#define FC_GEMM_RELU 2u
/* The driver's alone (gemm.c): each tile sums k in runs of FC_SHORT_RUN
 * steps, a kernel call each, adding every run's sum into C in turn. This
 * blocked summation keeps the rounding of a long sum near that of one
 * run's: Winograd F(4x4, 3x3) uses it, whose output transform magnifies
 * its products' rounding. */
#define FC_GEMM_SHORT_RUNS 4u
#define FC_SHORT_RUN 32
/* The driver's too: the rows a GEMM kernel stores, 1 .. MR - 1 (none of
 * these bits: all MR). */
#define FC_GEMM_ROWS(r) ((unsigned)(r) << 8)
#define FC_GEMM_ROWS_MASK (7u << 8)
#define FC_GEMM_ROWS_OF(flags) ((flags) & FC_GEMM_ROWS_MASK ? (int)((flags) >> 8 & 7u) : FC_MR)

/* Every kernel is MR = 6 rows tall; its width NR is 16 (f32) / 8 (f64)
 * for the portable and AVX2 kernels, twice that for AVX-512. */
#define FC_MR 6
#define FC_NR_F32 16
#define FC_NR_F64 8

void fc_gemm_f32_6x16_avx2(size_t kc, const float *a, const float *b, float *c,
                           size_t ldc, const float *bias, unsigned flags);
void fc_gemm_f64_6x8_avx2(size_t kc, const double *a, const double *b, double *c,
                          size_t ldc, const double *bias, unsigned flags);
void fc_gemm_f32_6x32_avx512(size_t kc, const float *a, const float *b, float *c,
                             size_t ldc, const float *bias, unsigned flags);
void fc_gemm_f64_6x16_avx512(size_t kc, const double *a, const double *b, double *c,
                             size_t ldc, const double *bias, unsigned flags);

/* Half as wide, for a last panel of few columns (AVX-512 only): the first
 * half of a panel packed for the wide kernel, b[kc][2 * half width]. */
void fc_gemm_f32_6x16_avx512(size_t kc, const float *a, const float *b, float *c,
                             size_t ldc, const float *bias, unsigned flags);
void fc_gemm_f64_6x8_avx512(size_t kc, const double *a, const double *b, double *c,
                            size_t ldc, const double *bias, unsigned flags);

void fc_igemm_f32_6x16_avx2(size_t kc, const float *const *a, const ptrdiff_t *off, const float *b,
                            float *c, const float *bias, unsigned flags);
void fc_igemm_f64_6x8_avx2(size_t kc, const double *const *a, const ptrdiff_t *off, const double *b,
                           double *c, const double *bias, unsigned flags);
void fc_igemm_f32_6x32_avx512(size_t kc, const float *const *a, const ptrdiff_t *off, const float *b,
                              float *c, const float *bias, unsigned flags);
void fc_igemm_f64_6x16_avx512(size_t kc, const double *const *a, const ptrdiff_t *off, const double *b,
                              double *c, const double *bias, unsigned flags);
/* Half as wide, for a last panel of few columns (AVX-512 only). */
void fc_igemm_f32_6x16_avx512(size_t kc, const float *const *a, const ptrdiff_t *off, const float *b,
                              float *c, const float *bias, unsigned flags);
void fc_igemm_f64_6x8_avx512(size_t kc, const double *const *a, const ptrdiff_t *off, const double *b,
                             double *c, const double *bias, unsigned flags);

#endif
