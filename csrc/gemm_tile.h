/* The register tile the SIMD microkernels share (gemm_avx2.c,
 * gemm_avx512.c): 6 rows of two vectors each, in twelve named
 * accumulators cIJ (GCC spills an acc[6][2] array to the stack on every
 * step, halving a kernel's speed), and the loops and epilogues of the
 * GEMM and indirect kernels around it. Each body is written once, for a
 * vector type V of T whose intrinsics end in S (ps, pd) and hold H lanes.
 * The including file defines its ISA's spelling first:
 *   VOP(S, op)    the intrinsic, e.g. _mm256_fmadd_ps for VOP(ps, fmadd)
 *   BCAST(S, p)   a vector of *p in every lane */
#ifndef FASTCONV_GEMM_TILE_H
#define FASTCONV_GEMM_TILE_H

#include "gemm.h"

/* One k step of row i: its A element, at A(i), times both B vectors. The
 * GEMM's A(i) is a packed panel, the indirect kernel's a pointer plus the
 * step's offset. */
#define PACKED(i) (a + (i))
#define INDIRECT(i) (a##i + o)
#define ROW(i, A, S)                          \
    ai = BCAST(S, A(i));                      \
    c##i##0 = VOP(S, fmadd)(ai, b0, c##i##0); \
    c##i##1 = VOP(S, fmadd)(ai, b1, c##i##1);
#define STEP(A, S) ROW(0, A, S) ROW(1, A, S) ROW(2, A, S) ROW(3, A, S) ROW(4, A, S) ROW(5, A, S)
#define ZERO_ACC(V, zero)                                                            \
    V c00 = zero, c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00; \
    V c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define EACH_ROW(X, ...) \
    X(0, __VA_ARGS__) X(1, __VA_ARGS__) X(2, __VA_ARGS__) X(3, __VA_ARGS__) X(4, __VA_ARGS__) X(5, __VA_ARGS__)

/* The GEMM's epilogue: row i of C (+ C, or + bias[i]), ReLU, stored, for
 * the rows the flags ask for. */
#define STORE(i, T, V, S, H)                                      \
    if ((i) < rows) {                                             \
        T *ci = c + (i) * ldc;                                    \
        V lo = c##i##0, hi = c##i##1;                             \
        if (flags & FC_GEMM_ACCUMULATE) {                         \
            lo = VOP(S, add)(lo, VOP(S, loadu)(ci));              \
            hi = VOP(S, add)(hi, VOP(S, loadu)(ci + (H)));        \
        } else if (bias) {                                        \
            const V bi = BCAST(S, bias + (i));                    \
            lo = VOP(S, add)(lo, bi);                             \
            hi = VOP(S, add)(hi, bi);                             \
        }                                                         \
        if (flags & FC_GEMM_RELU) { /* max(0, x) keeps a NaN x */ \
            lo = VOP(S, max)(VOP(S, setzero)(), lo);              \
            hi = VOP(S, max)(VOP(S, setzero)(), hi);              \
        }                                                         \
        VOP(S, storeu)(ci, lo);                                   \
        VOP(S, storeu)(ci + (H), hi);                             \
    }
#define GEMM_KERNEL(T, V, S, H)                                     \
    ZERO_ACC(V, VOP(S, setzero)())                                  \
    for (size_t k = 0; k < kc; k++, a += FC_MR, b += 2 * (H)) {     \
        const V b0 = VOP(S, loadu)(b), b1 = VOP(S, loadu)(b + (H)); \
        V ai;                                                       \
        STEP(PACKED, S)                                             \
    }                                                               \
    const int rows = FC_GEMM_ROWS_OF(flags);                        \
    EACH_ROW(STORE, T, V, S, H)

/* The indirect kernel's epilogue: row i of the tile + the bias vectors
 * (zero without bias), + the tile's contents with FC_GEMM_ACCUMULATE,
 * ReLU, stored. */
#define TILE(i, V, S, H)                                                      \
    {                                                                         \
        V lo = VOP(S, add)(c##i##0, bias0), hi = VOP(S, add)(c##i##1, bias1); \
        if (flags & FC_GEMM_ACCUMULATE) {                                     \
            lo = VOP(S, add)(lo, VOP(S, loadu)(c + (i) * 2 * (H)));           \
            hi = VOP(S, add)(hi, VOP(S, loadu)(c + (i) * 2 * (H) + (H)));     \
        }                                                                     \
        if (flags & FC_GEMM_RELU) {                                           \
            lo = VOP(S, max)(VOP(S, setzero)(), lo);                          \
            hi = VOP(S, max)(VOP(S, setzero)(), hi);                          \
        }                                                                     \
        VOP(S, storeu)(c + (i) * 2 * (H), lo);                                \
        VOP(S, storeu)(c + (i) * 2 * (H) + (H), hi);                          \
    }
#define IGEMM_KERNEL(T, V, S, H)                                                    \
    const T *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5]; \
    ZERO_ACC(V, VOP(S, setzero)())                                                  \
    for (size_t k = 0; k < kc; k++, b += 2 * (H)) {                                 \
        const ptrdiff_t o = off[k];                                                 \
        const V b0 = VOP(S, loadu)(b), b1 = VOP(S, loadu)(b + (H));                 \
        V ai;                                                                       \
        STEP(INDIRECT, S)                                                           \
    }                                                                               \
    const V bias0 = bias ? VOP(S, loadu)(bias) : VOP(S, setzero)();                 \
    const V bias1 = bias ? VOP(S, loadu)(bias + (H)) : VOP(S, setzero)();           \
    EACH_ROW(TILE, V, S, H)

#endif
