# The C entry points of csrc/fastconv.h, as Cython sees them.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "fastconv.h" nogil:
    ctypedef struct fc_conv2d_shape:
        int64_t n, c_in, h, w, c_out, groups, kh, kw
        int64_t stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, out_h, out_w

    ctypedef struct fc_pool2d_shape:
        int64_t planes, h, w, kh, kw
        int64_t stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, out_h, out_w
        int64_t count_include_pad, divisor

    ctypedef enum fc_algorithm:
        FC_ALGO_REF, FC_ALGO_DIRECT, FC_ALGO_GEMM, FC_ALGO_AUTO
        FC_ALGO_GEMM_PACKED, FC_ALGO_GEMM_INDIRECT, FC_ALGO_GEMM_PHASES, FC_ALGO_GEMM_COL2IM
        FC_ALGO_GEMM_DOTS, FC_ALGO_GEMM_SLOTS, FC_ALGO_GEMM_TAPS, FC_ALGO_WINOGRAD
        FC_ALGO_WINOGRAD_F2, FC_ALGO_WINOGRAD_F4

    ctypedef enum fc_activation:
        FC_ACT_NONE, FC_ACT_RELU

    int fc_conv2d_forward_f32(const fc_conv2d_shape *s, fc_algorithm a, const float *x, const float *w, const float *b, fc_activation act, float *y)
    int fc_conv2d_forward_f64(const fc_conv2d_shape *s, fc_algorithm a, const double *x, const double *w, const double *b, fc_activation act, double *y)
    int fc_conv2d_grad_input_f32(const fc_conv2d_shape *s, fc_algorithm a, const float *gy, const float *w, float *gx)
    int fc_conv2d_grad_input_f64(const fc_conv2d_shape *s, fc_algorithm a, const double *gy, const double *w, double *gx)
    int fc_conv2d_grad_weight_f32(const fc_conv2d_shape *s, fc_algorithm a, const float *gy, const float *x, float *gw)
    int fc_conv2d_grad_weight_f64(const fc_conv2d_shape *s, fc_algorithm a, const double *gy, const double *x, double *gw)
    int fc_conv2d_forward_grad_weight_f32(const fc_conv2d_shape *s, fc_algorithm a, const float *x, const float *w, const float *gy, float *y, float *gw)
    int fc_conv2d_forward_grad_weight_f64(const fc_conv2d_shape *s, fc_algorithm a, const double *x, const double *w, const double *gy, double *y, double *gw)
    int fc_conv2d_grad_bias_f32(const fc_conv2d_shape *s, const float *gy, float *gb)
    int fc_conv2d_grad_bias_f64(const fc_conv2d_shape *s, const double *gy, double *gb)
    int fc_unfold_f32(const fc_conv2d_shape *s, const float *x, float *cols)
    int fc_unfold_f64(const fc_conv2d_shape *s, const double *x, double *cols)
    int fc_fold_f32(const fc_conv2d_shape *s, const float *cols, float *x)
    int fc_fold_f64(const fc_conv2d_shape *s, const double *cols, double *x)
    int fc_gemm_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a, const float *b, int64_t ldb, int trans_b, const float *bias, fc_activation act, float *c, int64_t ldc)
    int fc_gemm_f64(int64_t m, int64_t n, int64_t k, const double *a, int64_t lda, int trans_a, const double *b, int64_t ldb, int trans_b, const double *bias, fc_activation act, double *c, int64_t ldc)

    int fc_max_pool2d_forward_f32(const fc_pool2d_shape *s, fc_algorithm a, const float *x, float *y, int64_t *indices)
    int fc_max_pool2d_forward_f64(const fc_pool2d_shape *s, fc_algorithm a, const double *x, double *y, int64_t *indices)
    int fc_max_pool2d_backward_f32(const fc_pool2d_shape *s, const float *gy, const int64_t *indices, float *gx)
    int fc_max_pool2d_backward_f64(const fc_pool2d_shape *s, const double *gy, const int64_t *indices, double *gx)
    int fc_avg_pool2d_forward_f32(const fc_pool2d_shape *s, fc_algorithm a, const float *x, float *y)
    int fc_avg_pool2d_forward_f64(const fc_pool2d_shape *s, fc_algorithm a, const double *x, double *y)
    int fc_avg_pool2d_backward_f32(const fc_pool2d_shape *s, const float *gy, float *gx)
    int fc_avg_pool2d_backward_f64(const fc_pool2d_shape *s, const double *gy, double *gx)
    int fc_adaptive_avg_pool2d_forward_f32(const fc_pool2d_shape *s, const float *x, float *y)
    int fc_adaptive_avg_pool2d_forward_f64(const fc_pool2d_shape *s, const double *x, double *y)
    int fc_adaptive_avg_pool2d_backward_f32(const fc_pool2d_shape *s, const float *gy, float *gx)
    int fc_adaptive_avg_pool2d_backward_f64(const fc_pool2d_shape *s, const double *gy, double *gx)

    int fc_relu_f32(int64_t n, const float *x, float *y)
    int fc_relu_f64(int64_t n, const double *x, double *y)
    int fc_relu_backward_f32(int64_t n, const float *gy, const float *y, float *gx)
    int fc_relu_backward_f64(int64_t n, const double *gy, const double *y, double *gx)
    int fc_dropout_f32(int64_t n, const float *x, double p, uint64_t seed, float *y)
    int fc_dropout_f64(int64_t n, const double *x, double p, uint64_t seed, double *y)
    int fc_cross_entropy_f32(int64_t rows, int64_t classes, const float *logits, const int64_t *labels, float *grad, double *loss)
    int fc_cross_entropy_f64(int64_t rows, int64_t classes, const double *logits, const int64_t *labels, double *grad, double *loss)
    int fc_transpose_f32(int64_t batch, int64_t rows, int64_t cols, const float *src, float *dst)
    int fc_transpose_f64(int64_t batch, int64_t rows, int64_t cols, const double *src, double *dst)
    int fc_bias_grad_f32(int64_t rows, int64_t cols, const float *g, float *gb)
    int fc_bias_grad_f64(int64_t rows, int64_t cols, const double *g, double *gb)

    int fc_adam_step_f32(int64_t n, float *p, const float *g, float *m, float *v, double step_size, double b1, double b2, double eps, double root_correction, double weight_decay)
    int fc_adam_step_f64(int64_t n, double *p, const double *g, double *m, double *v, double step_size, double b1, double b2, double eps, double root_correction, double weight_decay)

    void fc_set_num_threads(int n)
    int fc_get_num_threads()
    void fc_set_thread_limit(int n)
    int fc_get_thread_limit()
    int fc_thread_peak(int reset)
    int fc_openmp_default()
    int fc_have_openmp()
    ctypedef enum fc_isa:
        FC_ISA_PORTABLE, FC_ISA_AVX2, FC_ISA_AVX512
    int fc_isa_supported(fc_isa isa)
    int fc_set_isa(fc_isa isa)
    fc_isa fc_get_isa()
