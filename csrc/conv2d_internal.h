/* What the conv2d pass files share: conv2d_ref.c, conv2d_direct.c,
 * conv2d_forward.c, conv2d_grad_input.c and conv2d_grad_weight.c each hold
 * one family of paths; conv2d.c holds the entry points and every rule that
 * chooses among them. Per dtype, like internal.h. */
#ifndef FASTCONV_CONV2D_INTERNAL_H
#define FASTCONV_CONV2D_INTERNAL_H

#include "internal.h"

#define GROUP_IN(s) ((s)->c_in / (s)->groups)
#define GROUP_OUT(s) ((s)->c_out / (s)->groups)
#define PIXELS(s) ((s)->out_h * (s)->out_w)

/* Pixels per column block in the gradients: a block of K rows stays near
 * 1 MiB (f32, one L2), and at least 256 pixels, so grad-weight's dot
 * products run long. A function of the shape alone, so sums never depend
 * on threads. */
static inline int64_t FC_FN(pixel_chunk)(int64_t K, int64_t P) {
    return FC_MIN(P, FC_MAX((int64_t)256, (int64_t)262144 / K));
}

/* How many parts to split each of `items` work items into so that every
 * thread gets about two tasks, at most `most` parts. */
static inline int64_t split_for_threads(int64_t items, int64_t most) {
    const int64_t want = 2 * (int64_t)fc_get_num_threads();
    if (items >= want) return 1;
    return FC_MAX((int64_t)1, FC_MIN(most, (want + items - 1) / items));
}

/* A 1x1, stride-1, unpadded conv: its input is already the GEMM's B. */
static inline int is_pointwise(const fc_conv2d_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_top == 0 &&
           s->pad_left == 0 && s->out_h == s->h && s->out_w == s->w;
}

/* Where the indirect forward writes output pixel (oh, ow) of channel co of
 * image n: y + (n*c_out + co)*plane + oh*row + ow*col. A forward's own
 * view is (out_h*out_w, out_w, 1); grad-input's phases write every
 * stride-th pixel of gx. */
typedef struct {
    int64_t plane, row, col;
} fc_out_view;

/* Grad-weight sums over images and pixels, cut into at most SLOTS
 * contiguous runs of the batch. Each run sums into its own copy of gw and
 * the copies are added in run order (reduce_slots), so how the runs are
 * shared among threads never changes a bit of the result. */
#define SLOTS 16

/* The direct forward's frame (conv2d_direct.c). */
typedef struct {
    int64_t ph, pw;     /* the frame of one input plane */
    int64_t wide;       /* stride 1: the outputs pw apart, rounded up to whole blocks */
    int64_t frame_size; /* a frame and what the last block's taps read past it */
} df_frame;

/* The direct grad-weight's frame (conv2d_direct.c): taps go in groups
 * sharing each load of gy, of GW_TAPS, or with AVX-512's 32 registers of
 * GW_TAPS_WIDE where that wastes no more taps. */
#define GW_TAPS 3 /* 3x3, 5x5 and 7x7 kernels waste 0, 2 and 2 taps */
#define GW_TAPS_WIDE 9

typedef struct {
    int64_t ph, pw, length; /* the frame, and the dot products' length (whole vectors) */
    int64_t group;          /* GW_TAPS or GW_TAPS_WIDE */
    int64_t taps;           /* kh * kw rounded up to whole groups */
    int rows;               /* 3x3 at stride 1, undilated, on AVX-512: by rows of gy (grad_weight_rows) */
} gw_frame;

/* conv2d_ref.c: plain loops, double accumulation, the C oracle */
static void FC_FN(fc_conv2d_forward_ref)(const fc_conv2d_shape *s, const FC_T *x, const FC_T *w, const FC_T *b,
                                         FC_T *y);
static void FC_FN(fc_conv2d_grad_input_ref)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, FC_T *gx);
static void FC_FN(fc_conv2d_grad_weight_ref)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *x, FC_T *gw);

/* conv2d_direct.c: loops over planes, vectorized along rows */
static int FC_FN(fc_conv2d_forward_direct)(const fc_conv2d_shape *s, const FC_T *x, const FC_T *w, const FC_T *b,
                                           FC_T *y);
static int FC_FN(fc_conv2d_grad_input_direct)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, FC_T *gx);
static int FC_FN(fc_conv2d_grad_weight_direct)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *x, FC_T *gw);

/* conv2d_forward.c: the forward as a packed or an indirect GEMM; `flags`
 * is the microkernels' FC_GEMM_RELU or 0 */
static int FC_FN(fc_conv2d_forward_packed)(const fc_conv2d_shape *s, const FC_T *x, const FC_T *w, const FC_T *b,
                                           unsigned flags, FC_T *y);
static int FC_FN(fc_conv2d_forward_indirect)(const fc_conv2d_shape *s, const FC_T *x, const FC_T *w,
                                             const FC_T *b, unsigned flags, FC_T *y, fc_out_view v);

/* conv2d_grad_input.c: grad-input as forward convs, one per stride phase,
 * or as col2im of W^T gy */
static int phases_fit(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil);
static int FC_FN(fc_conv2d_grad_input_phases)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, FC_T *gx);
static int FC_FN(fc_conv2d_grad_input_col2im)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, FC_T *gx);

/* conv2d_grad_weight.c: grad-weight as dot products, or as an indirect
 * GEMM shared among threads by slots of images or by taps */
static int FC_FN(fc_conv2d_grad_weight_dots)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *x, FC_T *gw);
static int FC_FN(fc_conv2d_grad_weight_indirect)(const fc_conv2d_shape *s, const FC_T *gy, const FC_T *x,
                                                 int by_taps, FC_T *gw);

/* conv2d_winograd.c: stride-1 convs by Winograd F(m x m, r x r): 3x3
 * kernels with m = 2 or 4, 2x2 kernels with m = 2 or 3; the entry
 * points take a tile, 2 or 4 for the larger */
typedef struct {
    int m, r; /* output tile m x m, kernel r x r */
} wino_f;

/* Where a Winograd conv's kernels lie: tap q of output channel o and
 * input channel c of group g at w[g*gs + at(o, rs, rp, rphase) + at(c,
 * cs, cp, cphase) + tap[q]], at(i, stride, p, phase) = i / p * stride +
 * phase[i % p] (wino_at). A layer's own (c_out, c_in/groups, r, r) kernels
 * have one phase (wino_dense); a strided layer's phase conv reads its
 * kernels' taps in place, a stride phase per channel (conv2d_polyphase.c). */
typedef struct {
    int64_t gs, rs, cs;
    int rp, cp;
    int64_t rphase[9], cphase[9], tap[9];
} wino_layout;

static int winograd_applies(const fc_conv2d_shape *s);
static wino_layout wino_dense(const fc_conv2d_shape *s);
static int FC_FN(winograd_forward)(int tile, const fc_conv2d_shape *s, const FC_T *x, const FC_T *w, wino_layout l,
                                   const FC_T *b, unsigned flags, FC_T *y);
static int FC_FN(winograd_grad_input)(int tile, const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w,
                                      wino_layout l, FC_T *gx);
static int64_t winograd_gw_rows(int m, const fc_conv2d_shape *s);
static int64_t winograd_gw_runs(int64_t blocks);
static int FC_FN(winograd_grad_weight)(int tile, const fc_conv2d_shape *s, const FC_T *gy, const FC_T *x,
                                       wino_layout l, FC_T *gw);
static int FC_FN(winograd_forward_grad_weight)(int tile, const fc_conv2d_shape *s, const FC_T *x, const FC_T *w,
                                               const FC_T *gy, wino_layout l, FC_T *y, FC_T *gw);

/* conv2d_polyphase.c: strided convs whose kernels span 2 or 3 strides, as
 * Winograd convs of the input's stride phases */
static int polyphase_applies(const fc_conv2d_shape *s);
static fc_conv2d_shape polyphase_shape(const fc_conv2d_shape *s);
static int FC_FN(polyphase_forward)(int tile, const fc_conv2d_shape *s, const FC_T *x, const FC_T *w, const FC_T *b,
                                    unsigned flags, FC_T *y);
static int FC_FN(polyphase_grad_input)(int tile, const fc_conv2d_shape *s, const FC_T *gy, const FC_T *w, FC_T *gx);
static int FC_FN(polyphase_grad_weight)(int tile, const fc_conv2d_shape *s, const FC_T *gy, const FC_T *x, FC_T *gw);
static int FC_FN(polyphase_forward_grad_weight)(int tile, const fc_conv2d_shape *s, const FC_T *x, const FC_T *w,
                                                const FC_T *gy, FC_T *y, FC_T *gw);

/* conv2d.c: the GEMM forward by its rule (packed or indirect), which
 * grad-input's phases run on */
static int FC_FN(fc_conv2d_forward_gemm)(const fc_conv2d_shape *s, const FC_T *x, const FC_T *w, const FC_T *b,
                                         unsigned flags, FC_T *y);

#endif
