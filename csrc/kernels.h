/* The dispatch table: every kernel whose code depends on the instruction
 * set, one row per ISA (kernels.c), for one dtype. The row is the one
 * cpu.c's fc_get_isa() names: chosen once, from the CPU's features capped
 * by FASTCONV_ISA, and changed only by fc_set_isa (the tests run every
 * row on one machine that way). Nothing else picks code by ISA.
 *
 * Two kinds of entries. The GEMM microkernels are written by hand for
 * each ISA (gemm.c's portable pair, gemm_avx2.c, gemm_avx512.c). The
 * vector loops are written once, in the family file that uses them, as
 *
 *     FC_VECTOR_LOOP(relu_block, (int64_t lo, int64_t hi, const FC_T *x, FC_T *y),
 *                    (lo, hi, x, y)) { ...body... }
 *
 * and compiled three times, for the x86-64 baseline, AVX2+FMA (x86-64-v3)
 * and AVX-512 (x86-64-v4), so the compiler vectorizes each at its width
 * without -march=native; elsewhere only the baseline is built. A caller
 * fetches the row once per call and calls through it:
 *
 *     const FC_FN(fc_kernels) *k = FC_FN(kernels)();
 *     k->relu_block(lo, hi, x, y);
 *
 * Per dtype, like internal.h. */
#ifndef FASTCONV_KERNELS_H
#define FASTCONV_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "conv2d_internal.h"

/* Every vector loop: its name and parameters. A loop returns nothing;
 * one with a result writes it through its last argument. */
#define FC_VECTOR_LOOPS(X)                                                                                           \
    X(pack_transposed, (const FC_T *restrict src, int64_t rs, int w, int64_t kc, int width, FC_T *restrict dst))    \
    X(gemm_nt_dot, (int64_t m, int64_t n, int64_t k, const FC_T *a, int64_t lda, const FC_T *b, int64_t ldb,        \
                    FC_T *c, int64_t ldc, int accumulate))                                                          \
    X(direct_forward_planes, (const fc_conv2d_shape *s, const df_frame *f, const FC_T *x, const FC_T *w,            \
                              const FC_T *b, int64_t n, int64_t co, int64_t cb, FC_T *restrict yp,                  \
                              FC_T *restrict framed, FC_T *restrict wide))                                          \
    X(direct_grad_input_plane, (const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, int64_t n, int64_t ci,     \
                                FC_T *restrict gxp))                                                                \
    X(direct_grad_weight_pair, (const fc_conv2d_shape *s, const gw_frame *f, const FC_T *gy, const FC_T *x,         \
                                int64_t co, int64_t c, const ptrdiff_t *off, FC_T *restrict spread,                 \
                                FC_T *restrict framed, FC_FN(dot_vec) *restrict acc, FC_T *gw))                     \
    X(plane_sum, (const FC_T *p, int64_t n, double *sum))                                                           \
    X(relu_block, (int64_t lo, int64_t hi, const FC_T *x, FC_T *y))                                                 \
    X(relu_backward_block, (int64_t lo, int64_t hi, const FC_T *gy, const FC_T *y, FC_T *gx))                       \
    X(dropout_block, (int64_t lo, int64_t hi, const FC_T *x, uint64_t seed, uint64_t threshold, FC_T scale,         \
                      FC_T *y))                                                                                     \
    X(column_sums, (int64_t rows, int64_t lo, int64_t hi, int64_t cols, const FC_T *g, FC_T *gb))                   \
    X(adam_block, (int64_t lo, int64_t hi, FC_T *restrict p, const FC_T *restrict grad, FC_T *restrict m,           \
                   FC_T *restrict v, FC_T s, FC_T c1, FC_T c2, FC_T e, FC_T rc, FC_T wd))                           \
    X(max_row, (const FC_T *restrict xp, FC_T *restrict yr, int64_t *restrict ir, int64_t a, int64_t b,             \
                int64_t first, int64_t step, int64_t rows, int64_t kw, int64_t dw, int64_t sw))                     \
    X(indices_out_of_range, (const int64_t *restrict idx, int64_t n, int64_t hw, int *out_of_range))                \
    X(avg_row, (const FC_T *restrict row, FC_T *restrict out, int64_t n, int64_t kw, int64_t sw))                   \
    X(avg_row_adjoint, (const FC_T *restrict share, FC_T *restrict row, int64_t n, int64_t kw, int64_t sw))        \
    X(wino_kernels, (wino_f f, const FC_T *w, const wino_layout *l, int64_t g, int64_t row, int64_t rows,         \
                     int64_t k0, int64_t kc, FC_T *u, int64_t ps, FC_T *wq, FC_T *t, int stream))                   \
    X(wino_input_block, (wino_f f, const fc_conv2d_shape *s, const FC_T *x, int64_t ci0, int64_t nc, int64_t T0,      \
                         int64_t q, int64_t th, int64_t tw, int64_t lanes, FC_T *scratch, FC_T *v,                 \
                         int64_t pstride))                                                                         \
    X(wino_output_block, (wino_f f, const fc_conv2d_shape *s, const FC_T *mb, int64_t pstride, int64_t co0,           \
                          int64_t nc, int64_t T0, int64_t q, int64_t th, int64_t tw, int64_t lanes,                \
                          const FC_T *b, unsigned flags, FC_T *scratch, FC_T *y))                          \
    X(wino_grad_output_block, (wino_f f, const fc_conv2d_shape *s, const FC_T *gy, int64_t co0, int64_t nc,          \
                               int64_t row0, int64_t rows, int64_t th, int64_t tw, int64_t lanes, FC_T *scratch,  \
                               FC_T *dm, int64_t pstride))                                                        \
    X(wino_kernel_grads, (wino_f f, const FC_T *du, int64_t ps, int64_t e0, int64_t e1, int64_t K,                \
                          const wino_layout *l, FC_T *t, FC_T *out, FC_T *gw))

typedef struct {
    FC_FN(fc_ukernel) gemm;
    FC_FN(fc_iukernel) igemm;
#define FC_LOOP_FIELD(name, params) void(*name) params;
    FC_VECTOR_LOOPS(FC_LOOP_FIELD)
#undef FC_LOOP_FIELD
} FC_FN(fc_kernels);

/* The row of the ISA in use (kernels.c). */
static const FC_FN(fc_kernels) *FC_FN(kernels)(void);

/* relu_block's variants are relu_block_f32_portable, _f32_avx2, ... */
#define FC_VARIANT(name, isa) FC_CAT(FC_FN(name), FC_CAT(_, isa))
#define FC_LOOP_BODY(name) FC_FN(FC_CAT(name, _body))

#ifdef FC_X86_KERNELS
#define FC_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
#define FC_TARGET_AVX512 __attribute__((target("arch=x86-64-v4")))
#define FC_LOOP_PROTOTYPES(name, params)                 \
    static void FC_VARIANT(name, portable) params;       \
    FC_TARGET_AVX2 static void FC_VARIANT(name, avx2) params; \
    FC_TARGET_AVX512 static void FC_VARIANT(name, avx512) params;
#define FC_VECTOR_LOOP_VARIANTS(name, params, args)                                      \
    static void FC_VARIANT(name, portable) params { FC_LOOP_BODY(name) args; }           \
    FC_TARGET_AVX2 static void FC_VARIANT(name, avx2) params { FC_LOOP_BODY(name) args; } \
    FC_TARGET_AVX512 static void FC_VARIANT(name, avx512) params { FC_LOOP_BODY(name) args; }
#else
#define FC_LOOP_PROTOTYPES(name, params) static void FC_VARIANT(name, portable) params;
#define FC_VECTOR_LOOP_VARIANTS(name, params, args) \
    static void FC_VARIANT(name, portable) params { FC_LOOP_BODY(name) args; }
#endif
FC_VECTOR_LOOPS(FC_LOOP_PROTOTYPES)
#undef FC_LOOP_PROTOTYPES

/* Defines a vector loop's variants around the body that follows; the
 * body is inlined into each, so each is compiled for its own ISA. */
#define FC_VECTOR_LOOP(name, params, args)                                            \
    static inline __attribute__((always_inline)) void FC_LOOP_BODY(name) params;      \
    FC_VECTOR_LOOP_VARIANTS(name, params, args)                                       \
    static inline __attribute__((always_inline)) void FC_LOOP_BODY(name) params

#endif
