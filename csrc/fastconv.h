/* fastconv: the C kernels, as the Cython binding sees them.
 *
 * Layout is NCHW, contiguous. Callers (fastconv/_validate.py) check every
 * shape and parameter before a call; the kernels trust them, except for
 * values a caller cannot check cheaply (pooling indices handed back by a
 * user), which they check and report with FC_ERR_INDEX.
 *
 * Convolution geometry (fc_conv2d_shape):
 *   x[n][c_in][h][w], w[c_out][c_in/groups][kh][kw], y[n][c_out][out_h][out_w]
 *   y[n][co][oh][ow] = bias[co] + sum_{ci in group(co), i, j}
 *       w[co][ci][i][j] * x[n][ci][oh*stride_h - pad_top + i*dil_h]
 *                                [ow*stride_w - pad_left + j*dil_w]
 *   (taps outside the input read zero). out_h and out_w are given: the
 *   bottom and right padding are implied by them.
 */
#ifndef FASTCONV_H
#define FASTCONV_H

#include <stddef.h>
#include <stdint.h>

typedef struct fc_conv2d_shape {
    int64_t n, c_in, h, w;
    int64_t c_out, groups, kh, kw;
    int64_t stride_h, stride_w, pad_top, pad_left, dil_h, dil_w;
    int64_t out_h, out_w;
} fc_conv2d_shape;

typedef enum fc_algorithm {
    FC_ALGO_REF = 0,    /* plain loops, double accumulation: the C oracle */
    FC_ALGO_DIRECT = 1, /* loops over output planes, vectorized rows */
    FC_ALGO_GEMM = 2,   /* GEMMs: packed or indirect, phases or col2im, dot products (conv2d.c) */
    FC_ALGO_AUTO = 3,   /* conv2d: direct or GEMM by the shape (conv2d.c); pooling: as DIRECT */
    /* The GEMM family's paths by name, for tests that name the path they
     * test (FC_ALGO_GEMM lets conv2d.c's rules choose). Each belongs to
     * one pass; another pass, or a shape the path cannot take, returns
     * FC_ERR_PATH. */
    FC_ALGO_GEMM_PACKED = 4,   /* forward: im2col packed into GEMM panels */
    FC_ALGO_GEMM_INDIRECT = 5, /* forward: indirect GEMM on the image in place */
    FC_ALGO_GEMM_PHASES = 6,   /* grad-input: a forward conv per stride phase */
    FC_ALGO_GEMM_COL2IM = 7,   /* grad-input: col2im of W^T gy */
    FC_ALGO_GEMM_DOTS = 8,     /* grad-weight: dot products of gy and im2col rows */
    FC_ALGO_GEMM_SLOTS = 9,    /* grad-weight: indirect GEMM, threads share slots of images */
    FC_ALGO_GEMM_TAPS = 10,    /* grad-weight: indirect GEMM, threads share taps */
    /* Winograd: every pass of 3x3 and 2x2, stride-1, undilated convs, and
     * of strided ones whose stride phases are such (FC_ERR_PATH
     * otherwise). WINOGRAD takes the larger tile (F(4x4, 3x3), F(3x3,
     * 2x2)) but for 3x3 kernels on groups under 16 channels a side, where
     * it takes F(2x2, 3x3) (conv2d.c, winograd_tile); F2 always the
     * smaller tile, F4 always the larger (for tests). */
    FC_ALGO_WINOGRAD = 11,
    FC_ALGO_WINOGRAD_F2 = 12,
    FC_ALGO_WINOGRAD_F4 = 13,
} fc_algorithm;

/* What a forward applies to its result in the same pass. */
typedef enum fc_activation {
    FC_ACT_NONE = 0,
    FC_ACT_RELU = 1, /* max(v, 0); a NaN stays NaN */
} fc_activation;

typedef enum fc_status {
    FC_OK = 0,
    FC_ERR_NOMEM = 1, /* a workspace allocation failed */
    FC_ERR_INDEX = 2, /* a pooling index lies outside its input plane */
    FC_ERR_PATH = 3,  /* a named GEMM path of another pass, or one the shape cannot take */
} fc_status;

/* Pooling geometry: x[n*c][h][w] -> y[n*c][out_h][out_w]; window (oh, ow)
 * covers rows oh*stride_h - pad_top + i*dil_h, i < kh (likewise columns). */
typedef struct fc_pool2d_shape {
    int64_t planes, h, w, kh, kw;
    int64_t stride_h, stride_w, pad_top, pad_left, dil_h, dil_w;
    int64_t out_h, out_w;
    int64_t count_include_pad; /* avg: divide by the padded window size */
    int64_t divisor;           /* avg: fixed divisor if > 0 */
} fc_pool2d_shape;

#define FC_DECLARE_FAMILY(T, S)                                                 \
    /* y = act(conv2d(x, w) + b); b may be NULL. */                             \
    int fc_conv2d_forward##S(const fc_conv2d_shape *s, fc_algorithm algo,       \
                             const T *x, const T *w, const T *b,              \
                             fc_activation act, T *y);                         \
    /* gx = d<y, gy>/dx */                                                      \
    int fc_conv2d_grad_input##S(const fc_conv2d_shape *s, fc_algorithm algo,    \
                                const T *gy, const T *w, T *gx);               \
    /* gw = d<y, gy>/dw */                                                      \
    int fc_conv2d_grad_weight##S(const fc_conv2d_shape *s, fc_algorithm algo,   \
                                 const T *gy, const T *x, T *gw);              \
    /* both of the above, y of x and gw for gy, where the passes share x    \
     * (a transposed conv's backward: its gradients' common input) */        \
    int fc_conv2d_forward_grad_weight##S(const fc_conv2d_shape *s,              \
                                         fc_algorithm algo, const T *x,         \
                                         const T *w, const T *gy, T *y,        \
                                         T *gw);                                \
    /* gb[co] = sum over n, oh, ow of gy */                                     \
    int fc_conv2d_grad_bias##S(const fc_conv2d_shape *s, const T *gy, T *gb);   \
    /* cols[n][c_in*kh*kw][out_h*out_w] from x (c_out, groups ignored) */       \
    int fc_unfold##S(const fc_conv2d_shape *s, const T *x, T *cols);            \
    /* x = adjoint of unfold: sums cols back into x[n][c_in][h][w] */          \
    int fc_fold##S(const fc_conv2d_shape *s, const T *cols, T *x);              \
    /* C[m][n] = act(op(A) op(B) + bias[j]), row-major with leading          \
     * dimensions: op(A) is A[m][k], or with trans_a the transpose of A[k][m]; \
     * op(B) is B[k][n], or with trans_b the transpose of B[n][k]. bias (n    \
     * values, one per column) may be NULL. */                                 \
    int fc_gemm##S(int64_t m, int64_t n, int64_t k, const T *a, int64_t lda,    \
                   int trans_a, const T *b, int64_t ldb, int trans_b,          \
                   const T *bias, fc_activation act, T *c, int64_t ldc);        \
    int fc_max_pool2d_forward##S(const fc_pool2d_shape *s, fc_algorithm algo,    \
                                 const T *x, T *y,                            \
                                 int64_t *indices);                            \
    int fc_max_pool2d_backward##S(const fc_pool2d_shape *s, const T *gy,        \
                                  const int64_t *indices, T *gx);              \
    int fc_avg_pool2d_forward##S(const fc_pool2d_shape *s, fc_algorithm algo,    \
                                 const T *x, T *y);                            \
    int fc_avg_pool2d_backward##S(const fc_pool2d_shape *s, const T *gy, T *gx); \
    int fc_adaptive_avg_pool2d_forward##S(const fc_pool2d_shape *s, const T *x, \
                                          T *y);                               \
    int fc_adaptive_avg_pool2d_backward##S(const fc_pool2d_shape *s,            \
                                           const T *gy, T *gx);                \
    /* Elementwise passes (elementwise.c); y may be x, gx may be gy. */       \
    int fc_relu##S(int64_t n, const T *x, T *y);                                \
    /* gx = y > 0 ? gy : 0, for y the ReLU's output */                          \
    int fc_relu_backward##S(int64_t n, const T *gy, const T *y, T *gx);         \
    /* y = kept ? x / (1 - p) : 0, the kept elements drawn from seed alone;    \
     * the backward is the same call on gy. 0 <= p < 1. */                      \
    int fc_dropout##S(int64_t n, const T *x, double p, uint64_t seed, T *y);    \
    /* *loss = mean over rows of -log softmax(logits)[label]; grad =           \
     * (softmax - one_hot) / rows. FC_ERR_INDEX for a label outside           \
     * [0, classes). */                                                         \
    int fc_cross_entropy##S(int64_t rows, int64_t classes, const T *logits,     \
                            const int64_t *labels, T *grad, double *loss);      \
    /* dst[b][c][r] = src[b][r][c] for b < batch, r < rows, c < cols;         \
     * rows at most INT_MAX */                                                  \
    int fc_transpose##S(int64_t batch, int64_t rows, int64_t cols,              \
                        const T *src, T *dst);                                  \
    /* gb[j] = sum over i of g[i][j], g[rows][cols] */                          \
    int fc_bias_grad##S(int64_t rows, int64_t cols, const T *g, T *gb);         \
    /* One fused Adam step over n elements (optim.c) */                         \
    int fc_adam_step##S(int64_t n, T *p, const T *grad, T *m, T *v,             \
                        double step_size, double b1, double b2, double eps,     \
                        double root_correction, double weight_decay);

FC_DECLARE_FAMILY(float, _f32)
FC_DECLARE_FAMILY(double, _f64)

/* Threads (threads.c): 1 when built without OpenMP. Every entry point above
 * takes its threads from one process-wide budget and gives them back when
 * it returns, so concurrent callers share it. The thread limit and the
 * count are the calling thread's; the peak is the most tokens ever held at
 * once. */
void fc_set_num_threads(int n);
void fc_set_thread_limit(int n); /* 0: none */
int fc_get_thread_limit(void);
int fc_get_num_threads(void);
int fc_thread_peak(int reset);
int fc_openmp_default(void); /* OpenMP's count for a thread that set none */
int fc_have_openmp(void);

/* Instruction sets (cpu.c). */
typedef enum fc_isa { FC_ISA_PORTABLE = 0, FC_ISA_AVX2 = 1, FC_ISA_AVX512 = 2 } fc_isa;
int fc_isa_supported(fc_isa isa); /* compiled in and the CPU has it */
int fc_set_isa(fc_isa isa);       /* 0 on success, -1 if unsupported */
fc_isa fc_get_isa(void);

#endif
