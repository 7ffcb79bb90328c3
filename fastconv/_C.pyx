# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""The binding: arrays to pointers, one C call without the GIL (bracketed by
fc_call_enter/leave, so concurrent callers share the thread budget), a status to an
exception. Callers (fastconv.ops) have validated everything and pass
C-contiguous 1-D views of non-empty arrays of one dtype; outputs are
preallocated by the caller."""
from libc.stdint cimport int64_t, uint64_t
from fastconv._C cimport *

ctypedef fused real:
    float
    double

ALGORITHMS = {"reference": FC_ALGO_REF, "direct": FC_ALGO_DIRECT, "im2col": FC_ALGO_IM2COL}
ACTIVATIONS = {None: FC_ACT_NONE, "relu": FC_ACT_RELU}
ISAS = {"portable": FC_ISA_PORTABLE, "avx2": FC_ISA_AVX2, "avx512": FC_ISA_AVX512}


cdef int check(int status) except -1:
    if status == 1:
        raise MemoryError("fastconv: a kernel workspace allocation failed")
    if status == 2:
        raise ValueError("max_pool2d_backward: indices hold a position outside the input plane")
    return 0


cdef fc_conv2d_shape conv_shape(tuple t):
    cdef fc_conv2d_shape s
    (s.n, s.c_in, s.h, s.w, s.c_out, s.groups, s.kh, s.kw, s.stride_h, s.stride_w,
     s.pad_top, s.pad_left, s.dil_h, s.dil_w, s.out_h, s.out_w) = t
    return s


cdef fc_pool2d_shape pool_shape(tuple t):
    cdef fc_pool2d_shape s
    (s.planes, s.h, s.w, s.kh, s.kw, s.stride_h, s.stride_w, s.pad_top, s.pad_left,
     s.dil_h, s.dil_w, s.out_h, s.out_w, s.count_include_pad, s.divisor) = t
    return s


def conv2d_forward(tuple shape, str algorithm, real[::1] x, real[::1] w, real[::1] b, activation, real[::1] y):
    cdef fc_conv2d_shape s = conv_shape(shape)
    cdef fc_algorithm a = ALGORITHMS[algorithm]
    cdef fc_activation act = ACTIVATIONS[activation]
    cdef const real *bp = NULL if b is None else &b[0]
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_conv2d_forward_f32(&s, a, &x[0], &w[0], bp, act, &y[0])
        else:
            rc = fc_conv2d_forward_f64(&s, a, &x[0], &w[0], bp, act, &y[0])
        fc_call_leave()
    check(rc)


def conv2d_grad_input(tuple shape, str algorithm, real[::1] gy, real[::1] w, real[::1] gx):
    cdef fc_conv2d_shape s = conv_shape(shape)
    cdef fc_algorithm a = ALGORITHMS[algorithm]
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_conv2d_grad_input_f32(&s, a, &gy[0], &w[0], &gx[0])
        else:
            rc = fc_conv2d_grad_input_f64(&s, a, &gy[0], &w[0], &gx[0])
        fc_call_leave()
    check(rc)


def conv2d_grad_weight(tuple shape, str algorithm, real[::1] gy, real[::1] x, real[::1] gw):
    cdef fc_conv2d_shape s = conv_shape(shape)
    cdef fc_algorithm a = ALGORITHMS[algorithm]
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_conv2d_grad_weight_f32(&s, a, &gy[0], &x[0], &gw[0])
        else:
            rc = fc_conv2d_grad_weight_f64(&s, a, &gy[0], &x[0], &gw[0])
        fc_call_leave()
    check(rc)


def conv2d_grad_bias(tuple shape, real[::1] gy, real[::1] gb):
    cdef fc_conv2d_shape s = conv_shape(shape)
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_conv2d_grad_bias_f32(&s, &gy[0], &gb[0])
        else:
            rc = fc_conv2d_grad_bias_f64(&s, &gy[0], &gb[0])
        fc_call_leave()
    check(rc)


def unfold(tuple shape, real[::1] x, real[::1] cols):
    cdef fc_conv2d_shape s = conv_shape(shape)
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_unfold_f32(&s, &x[0], &cols[0])
        else:
            rc = fc_unfold_f64(&s, &x[0], &cols[0])
        fc_call_leave()
    check(rc)


def fold(tuple shape, real[::1] cols, real[::1] x):
    cdef fc_conv2d_shape s = conv_shape(shape)
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_fold_f32(&s, &cols[0], &x[0])
        else:
            rc = fc_fold_f64(&s, &cols[0], &x[0])
        fc_call_leave()
    check(rc)


def gemm(int64_t m, int64_t n, int64_t k, real[::1] a, bint trans_a, real[::1] b, bint trans_b,
         real[::1] bias, activation, real[::1] c):
    """c[m][n] = act(op(a) @ op(b) + bias), all C-contiguous: op(a) is a[m][k],
    or a[k][m] transposed with trans_a; op(b) is b[k][n], or b[n][k]
    transposed with trans_b; bias has n values or is None."""
    cdef fc_activation act = ACTIVATIONS[activation]
    cdef const real *bp = NULL if bias is None else &bias[0]
    cdef int64_t lda = m if trans_a else k, ldb = k if trans_b else n
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_gemm_f32(m, n, k, &a[0], lda, trans_a, &b[0], ldb, trans_b, bp, act, &c[0], n)
        else:
            rc = fc_gemm_f64(m, n, k, &a[0], lda, trans_a, &b[0], ldb, trans_b, bp, act, &c[0], n)
        fc_call_leave()
    check(rc)


def relu(real[::1] x, real[::1] y):
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_relu_f32(x.shape[0], &x[0], &y[0])
        else:
            rc = fc_relu_f64(x.shape[0], &x[0], &y[0])
        fc_call_leave()
    check(rc)


def relu_backward(real[::1] gy, real[::1] y, real[::1] gx):
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_relu_backward_f32(gy.shape[0], &gy[0], &y[0], &gx[0])
        else:
            rc = fc_relu_backward_f64(gy.shape[0], &gy[0], &y[0], &gx[0])
        fc_call_leave()
    check(rc)


def dropout(real[::1] x, double p, uint64_t seed, real[::1] y):
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_dropout_f32(x.shape[0], &x[0], p, seed, &y[0])
        else:
            rc = fc_dropout_f64(x.shape[0], &x[0], p, seed, &y[0])
        fc_call_leave()
    check(rc)


def cross_entropy(int64_t rows, int64_t classes, real[::1] logits, const int64_t[::1] labels, real[::1] grad):
    """The mean loss; grad receives its gradient."""
    cdef double loss = 0
    cdef int rc
    with nogil:
        if real is float:
            rc = fc_cross_entropy_f32(rows, classes, &logits[0], &labels[0], &grad[0], &loss)
        else:
            rc = fc_cross_entropy_f64(rows, classes, &logits[0], &labels[0], &grad[0], &loss)
    if rc == 2:
        raise ValueError(f"cross_entropy: a label lies outside [0, {classes})")
    check(rc)
    return loss


def bias_grad(int64_t rows, int64_t cols, real[::1] g, real[::1] gb):
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_bias_grad_f32(rows, cols, &g[0], &gb[0])
        else:
            rc = fc_bias_grad_f64(rows, cols, &g[0], &gb[0])
        fc_call_leave()
    check(rc)


def max_pool2d_forward(tuple shape, str algorithm, real[::1] x, real[::1] y, int64_t[::1] indices):
    cdef fc_pool2d_shape s = pool_shape(shape)
    cdef fc_algorithm a = ALGORITHMS[algorithm]
    cdef int64_t *ip = NULL if indices is None else &indices[0]
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_max_pool2d_forward_f32(&s, a, &x[0], &y[0], ip)
        else:
            rc = fc_max_pool2d_forward_f64(&s, a, &x[0], &y[0], ip)
        fc_call_leave()
    check(rc)


def max_pool2d_backward(tuple shape, real[::1] gy, const int64_t[::1] indices, real[::1] gx):
    cdef fc_pool2d_shape s = pool_shape(shape)
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_max_pool2d_backward_f32(&s, &gy[0], &indices[0], &gx[0])
        else:
            rc = fc_max_pool2d_backward_f64(&s, &gy[0], &indices[0], &gx[0])
        fc_call_leave()
    check(rc)


def avg_pool2d_forward(tuple shape, str algorithm, real[::1] x, real[::1] y):
    cdef fc_pool2d_shape s = pool_shape(shape)
    cdef fc_algorithm a = ALGORITHMS[algorithm]
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_avg_pool2d_forward_f32(&s, a, &x[0], &y[0])
        else:
            rc = fc_avg_pool2d_forward_f64(&s, a, &x[0], &y[0])
        fc_call_leave()
    check(rc)


def avg_pool2d_backward(tuple shape, real[::1] gy, real[::1] gx):
    cdef fc_pool2d_shape s = pool_shape(shape)
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_avg_pool2d_backward_f32(&s, &gy[0], &gx[0])
        else:
            rc = fc_avg_pool2d_backward_f64(&s, &gy[0], &gx[0])
        fc_call_leave()
    check(rc)


def adaptive_avg_pool2d_forward(tuple shape, real[::1] x, real[::1] y):
    cdef fc_pool2d_shape s = pool_shape(shape)
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_adaptive_avg_pool2d_forward_f32(&s, &x[0], &y[0])
        else:
            rc = fc_adaptive_avg_pool2d_forward_f64(&s, &x[0], &y[0])
        fc_call_leave()
    check(rc)


def adaptive_avg_pool2d_backward(tuple shape, real[::1] gy, real[::1] gx):
    cdef fc_pool2d_shape s = pool_shape(shape)
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_adaptive_avg_pool2d_backward_f32(&s, &gy[0], &gx[0])
        else:
            rc = fc_adaptive_avg_pool2d_backward_f64(&s, &gy[0], &gx[0])
        fc_call_leave()
    check(rc)


def adam_step(real[::1] p, real[::1] grad, real[::1] m, real[::1] v, double step_size, double b1,
              double b2, double eps, double root_correction, double weight_decay):
    cdef int rc
    with nogil:
        fc_call_enter()
        if real is float:
            rc = fc_adam_step_f32(p.shape[0], &p[0], &grad[0], &m[0], &v[0], step_size, b1, b2, eps,
                                  root_correction, weight_decay)
        else:
            rc = fc_adam_step_f64(p.shape[0], &p[0], &grad[0], &m[0], &v[0], step_size, b1, b2, eps,
                                  root_correction, weight_decay)
        fc_call_leave()
    check(rc)


def set_num_threads(int n):
    fc_set_num_threads(n)


def get_num_threads():
    return fc_get_num_threads()


def have_openmp():
    return bool(fc_have_openmp())


def isa_supported(str name):
    return bool(fc_isa_supported(ISAS[name]))


def set_isa(str name):
    """Forces an instruction set for the GEMM microkernels (tests use this)."""
    if fc_set_isa(ISAS[name]) != 0:
        raise ValueError(f"set_isa: {name!r} is not supported on this CPU or build")


def get_isa():
    return {v: k for k, v in ISAS.items()}[fc_get_isa()]
