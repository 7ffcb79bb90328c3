/* What the family files of one dtype share (see common.h): the GEMM
 * driver's operands and kernels (gemm.c), the data movement that feeds
 * them from an image (im2col.c), and the prototypes of both. Every family
 * file includes it, so the order in which f32.c and f64.c paste them
 * together does not matter. One dtype per translation unit: FC_T and
 * FC_SUFFIX are defined before the first include. */
#ifndef FASTCONV_INTERNAL_H
#define FASTCONV_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "fastconv.h"
#include "gemm.h"

/* ---------------------------------------------------------- gemm.c */

#define FC_KC 256
#define FC_MC (196608 / (FC_KC * (int)sizeof(FC_T)) / FC_MR * FC_MR) /* 192 f32, 96 f64 */
#define FC_NR_MAX (2 * FC_NR)  /* the widest kernel's NR: AVX-512's */
#define FC_NC (3145728 / (FC_KC * (int)sizeof(FC_T)) / FC_NR_MAX * FC_NR_MAX) /* 3072 f32, 1536 f64 */

/* Fills dst with `rows` rows (r0...) of an operand, k0..k0+kc of its inner
 * dimension, as panels of `width` rows: dst[panel][k][width], zero-padded. */
typedef void (*FC_FN(fc_pack_fn))(const void *ctx, int64_t r0, int64_t rows,
                                  int64_t k0, int64_t kc, int width, FC_T *dst);
typedef struct {
    FC_FN(fc_pack_fn) pack;
    const void *ctx;
    /* all of the operand prepacked, or NULL: A by gemm_pack_a, block (k0,
     * i0) at k0 * m_pad + i0 * kc; B likewise, block (k0, j0) at k0 *
     * n_pad + j0 * kc (rows and columns rounded up to whole panels) */
    const FC_T *packed;
    /* B only, or NULL: starts loading what pack will read for the same
     * arguments, so that memory streams in while the kernels compute */
    void (*prefetch)(const void *ctx, int64_t r0, int64_t rows, int64_t k0, int64_t kc);
} FC_FN(fc_operand);

/* A plain matrix: element (r, k) at base[r*rs + k*cs]. */
typedef struct {
    const FC_T *base;
    int64_t rs, cs;
} FC_FN(fc_strided);

/* A GEMM microkernel (gemm.h), its tile width, and (or NULL) one for the
 * first half of a panel, for a last panel of at most nr/2 columns. */
typedef void (*FC_FN(fc_ukernel_fn))(size_t, const FC_T *, const FC_T *, FC_T *, size_t, const FC_T *, unsigned);
typedef struct {
    FC_FN(fc_ukernel_fn) fn;
    int nr; /* the tile's width; B is packed in panels of nr columns */
    FC_FN(fc_ukernel_fn) narrow;
} FC_FN(fc_ukernel);

/* The portable microkernels (gemm.c), named with their tile by f32.c and
 * f64.c; the SIMD ones are declared in gemm.h. */
static void FC_UKERNEL_PORTABLE(size_t kc, const FC_T *restrict a, const FC_T *restrict b, FC_T *restrict c,
                                size_t ldc, const FC_T *restrict bias, unsigned flags);
static void FC_IUKERNEL_PORTABLE(size_t kc, const FC_T *const *a, const ptrdiff_t *restrict off,
                                 const FC_T *restrict b, FC_T *restrict c, const FC_T *restrict bias,
                                 unsigned flags);

/* An indirect microkernel (gemm.h) and its tile width. */
typedef void (*FC_FN(fc_iukernel_fn))(size_t, const FC_T *const *, const ptrdiff_t *, const FC_T *, FC_T *,
                                      const FC_T *, unsigned);
typedef struct {
    FC_FN(fc_iukernel_fn) fn;
    int nr;                       /* the tile's width: B is packed in panels of nr columns */
    FC_FN(fc_iukernel_fn) narrow; /* nr / 2 wide, for a last panel of few columns; or NULL */
} FC_FN(fc_iukernel);

/* 64 bytes of FC_T, the unit of the dot-product loops (gemm_nt_dot, the
 * direct grad-weight): GCC and clang vector extensions, so every variant
 * of a vector loop (kernels.h) gets its own vector width. */
typedef FC_T FC_FN(dot_vec) __attribute__((vector_size(64), aligned(sizeof(FC_T)), may_alias));
#define DOT_LANES ((int64_t)(64 / sizeof(FC_T)))

static void FC_FN(pack_strided)(const void *ctx, int64_t r0, int64_t rows, int64_t k0, int64_t kc, int width,
                                FC_T *dst);
static FC_FN(fc_iukernel) FC_FN(panel_iukernel)(FC_FN(fc_iukernel) u, int64_t pn, int64_t cols);
static int64_t FC_FN(iukernel_width)(FC_FN(fc_iukernel) u, int64_t cols);
static int64_t FC_FN(gemm_nr)(void);
static size_t FC_FN(gemm_workspace)(int64_t m, int64_t n, int64_t k);
static size_t FC_FN(gemm_packed_a_size)(int64_t m, int64_t k);
static void FC_FN(gemm_pack_a)(int64_t m, int64_t k, const FC_FN(fc_operand) *a, FC_T *dst);
static void FC_FN(gemm_serial)(int64_t m, int64_t n, int64_t k, const FC_FN(fc_operand) *a,
                               const FC_FN(fc_operand) *b, FC_T *c, int64_t ldc, const FC_T *bias, unsigned flags,
                               FC_T *work);

/* -------------------------------------------------------- im2col.c */

/* Implicit im2col as a GEMM operand B^T: element (pixel p0 + r, tap k)
 * of one image's channel group, packed without building col. */
typedef struct {
    const fc_conv2d_shape *s;
    const FC_T *x; /* first channel of the group in this image */
    int64_t p0;
} FC_FN(fc_im2col_operand);

static void FC_FN(im2col)(const fc_conv2d_shape *s, const FC_T *x, int64_t c0, int64_t c1, int64_t p0, int64_t p1,
                          FC_T *col);
static void FC_FN(col2im)(const fc_conv2d_shape *s, const FC_T *col, int64_t c0, int64_t c1, int64_t p0,
                          int64_t p1, FC_T *x);
static void FC_FN(pack_im2col)(const void *ctx, int64_t r0, int64_t rows, int64_t k0, int64_t kc, int width,
                               FC_T *dst);
static int conv_frame(const fc_conv2d_shape *s, int64_t *fh, int64_t *fw);
static void FC_FN(frame_planes)(const fc_conv2d_shape *s, const FC_T *restrict x, int64_t channels, int64_t fh,
                                int64_t fw, FC_T *restrict framed);
/* Offsets, in a frame fw wide, of a window's taps (channels cs apart) and
 * of the output pixels' window corners (images `is` apart). */
static void indirect_offsets(const fc_conv2d_shape *s, int64_t channels, int64_t cs, int64_t fw, ptrdiff_t *off);
static void pixel_offsets(const fc_conv2d_shape *s, int64_t images, int64_t is, int64_t fw, ptrdiff_t *off);

#endif
