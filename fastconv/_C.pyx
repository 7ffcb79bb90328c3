# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""The binding: arrays to pointers, one C call without the GIL (each entry
point takes its threads from the shared budget itself), a status to an
exception. Callers (fastconv.ops) validate arguments and pass C-contiguous
1-D views of one dtype, outputs preallocated. The binding still checks, in
O(1), that every geometry is one the kernels accept and every buffer holds
what its geometry reaches, so no caller of _C can make C read or write out
of bounds: a slip is a ValueError naming the entry point and the buffer."""
from libc.stdint cimport int64_t, uint64_t
from fastconv._C cimport *

ctypedef fused real:
    float
    double

# "im2col" is the GEMM family's old name, kept as an alias; "winograd" is
# the larger tile (F(4x4, 3x3)) where its error bound holds (csrc/fastconv.h),
# "winograd:2x2" and "winograd:4x4" (private, as the GEMM paths) one tile always.
ALGORITHMS = {"auto": FC_ALGO_AUTO, "reference": FC_ALGO_REF, "direct": FC_ALGO_DIRECT, "gemm": FC_ALGO_GEMM,
              "im2col": FC_ALGO_GEMM, "winograd": FC_ALGO_WINOGRAD, "winograd:2x2": FC_ALGO_WINOGRAD_F2,
              "winograd:4x4": FC_ALGO_WINOGRAD_F4}
# Each conv pass also takes its GEMM paths by name (private: for tests that
# name the path they test; "gemm" lets the C rules choose).
CONV_ALGORITHMS = {
    "conv2d_forward": {**ALGORITHMS, "gemm:packed": FC_ALGO_GEMM_PACKED, "gemm:indirect": FC_ALGO_GEMM_INDIRECT},
    "conv2d_grad_input": {**ALGORITHMS, "gemm:phases": FC_ALGO_GEMM_PHASES, "gemm:col2im": FC_ALGO_GEMM_COL2IM},
    "conv2d_grad_weight": {**ALGORITHMS, "gemm:dots": FC_ALGO_GEMM_DOTS, "gemm:slots": FC_ALGO_GEMM_SLOTS,
                           "gemm:taps": FC_ALGO_GEMM_TAPS},
    "conv2d_forward_grad_weight": ALGORITHMS,
}
ACTIVATIONS = {None: FC_ACT_NONE, "relu": FC_ACT_RELU}
ISAS = {"portable": FC_ISA_PORTABLE, "avx2": FC_ISA_AVX2, "avx512": FC_ISA_AVX512}

CONV_FIELDS = ("n", "c_in", "h", "w", "c_out", "groups", "kh", "kw", "stride_h", "stride_w",
               "pad_top", "pad_left", "dil_h", "dil_w", "out_h", "out_w")
POOL_FIELDS = ("planes", "h", "w", "kh", "kw", "stride_h", "stride_w", "pad_top", "pad_left",
               "dil_h", "dil_w", "out_h", "out_w", "count_include_pad", "divisor")
CAN_BE_ZERO = {"pad_top", "pad_left", "count_include_pad", "divisor"}


cdef int check(int status) except -1:
    if status == 1:
        raise MemoryError("fastconv: a kernel workspace allocation failed")
    if status == 2:
        raise ValueError("max_pool2d_backward: indices hold a position outside the input plane")
    if status == 3:
        raise ValueError("fastconv: algorithm names a path that cannot take this shape (winograd needs a 3x3 or "
                         "2x2 kernel with stride 1, or a square kernel of 2 or 3 strides, and dilation 1; "
                         "grad-input by phases, strided Winograd's too, needs taps and a frame in every stride phase)")
    return 0


cdef object lookup(str fn, str arg, dict table, key):
    try:
        return table[key]
    except (KeyError, TypeError):
        raise ValueError(f"_C.{fn}: {arg} must be one of {sorted(map(repr, table))}, got {key!r}") from None


cdef int need(str fn, str arg, Py_ssize_t have, object want) except -1:
    """`want` is a Python int, so a product of huge dimensions cannot wrap."""
    if have < want:
        raise ValueError(f"_C.{fn}: {arg} holds {have} values, its geometry needs {want}")
    return 0


cdef int fields(str fn, tuple t, tuple names) except -1:
    """Checks that t has one value per name, each at least 1 (0 for the
    names in CAN_BE_ZERO)."""
    if len(t) != len(names):
        raise ValueError(f"_C.{fn}: shape must have the {len(names)} fields {names}, got {t!r}")
    for name, v in zip(names, t):
        if v < (0 if name in CAN_BE_ZERO else 1):
            raise ValueError(f"_C.{fn}: shape field {name} must be at least "
                             f"{0 if name in CAN_BE_ZERO else 1}, got {v}")
    return 0


cdef fc_conv2d_shape conv_shape(str fn, tuple t) except *:
    cdef fc_conv2d_shape s
    if len(t) != len(CONV_FIELDS):
        fields(fn, t, CONV_FIELDS)
    (s.n, s.c_in, s.h, s.w, s.c_out, s.groups, s.kh, s.kw, s.stride_h, s.stride_w,
     s.pad_top, s.pad_left, s.dil_h, s.dil_w, s.out_h, s.out_w) = t
    if (min(s.n, s.c_in, s.h, s.w, s.c_out, s.groups, s.kh, s.kw, s.stride_h, s.stride_w,
            s.dil_h, s.dil_w, s.out_h, s.out_w) < 1 or min(s.pad_top, s.pad_left) < 0):
        fields(fn, t, CONV_FIELDS)
    if s.c_in % s.groups or s.c_out % s.groups:
        raise ValueError(f"_C.{fn}: groups={s.groups} must divide c_in={s.c_in} and c_out={s.c_out}")
    return s


cdef fc_pool2d_shape pool_shape(str fn, tuple t) except *:
    cdef fc_pool2d_shape s
    if len(t) != len(POOL_FIELDS):
        fields(fn, t, POOL_FIELDS)
    (s.planes, s.h, s.w, s.kh, s.kw, s.stride_h, s.stride_w, s.pad_top, s.pad_left,
     s.dil_h, s.dil_w, s.out_h, s.out_w, s.count_include_pad, s.divisor) = t
    if (min(s.planes, s.h, s.w, s.kh, s.kw, s.stride_h, s.stride_w, s.dil_h, s.dil_w, s.out_h, s.out_w) < 1
            or min(s.pad_top, s.pad_left, s.divisor, s.count_include_pad) < 0):
        fields(fn, t, POOL_FIELDS)
    if s.count_include_pad > 1:
        raise ValueError(f"_C.{fn}: shape field count_include_pad must be 0 or 1, got {s.count_include_pad}")
    return s


# Values each buffer of a geometry holds (Python ints).
cdef object conv_x(fc_conv2d_shape *s):
    return (<object>s.n) * s.c_in * s.h * s.w

cdef object conv_w(fc_conv2d_shape *s):
    return (<object>s.c_out) * (s.c_in // s.groups) * s.kh * s.kw

cdef object conv_y(fc_conv2d_shape *s):
    return (<object>s.n) * s.c_out * s.out_h * s.out_w

cdef object conv_cols(fc_conv2d_shape *s):
    return (<object>s.n) * s.c_in * s.kh * s.kw * s.out_h * s.out_w

cdef object pool_x(fc_pool2d_shape *s):
    return (<object>s.planes) * s.h * s.w

cdef object pool_y(fc_pool2d_shape *s):
    return (<object>s.planes) * s.out_h * s.out_w


def conv2d_forward(tuple shape, str algorithm, const real[::1] x not None, const real[::1] w not None,
                   const real[::1] b, activation, real[::1] y not None):
    cdef str fn = "conv2d_forward"
    cdef fc_conv2d_shape s = conv_shape(fn, shape)
    cdef fc_algorithm a = lookup(fn, "algorithm", CONV_ALGORITHMS[fn], algorithm)
    cdef fc_activation act = lookup(fn, "activation", ACTIVATIONS, activation)
    need(fn, "x", x.shape[0], conv_x(&s))
    need(fn, "w", w.shape[0], conv_w(&s))
    need(fn, "y", y.shape[0], conv_y(&s))
    if b is not None:
        need(fn, "b", b.shape[0], s.c_out)
    cdef const real *bp = NULL if b is None else &b[0]
    cdef int rc
    with nogil:
        rc = (fc_conv2d_forward_f32(&s, a, &x[0], &w[0], bp, act, &y[0]) if real is float
              else fc_conv2d_forward_f64(&s, a, &x[0], &w[0], bp, act, &y[0]))
    check(rc)


def conv2d_grad_input(tuple shape, str algorithm, const real[::1] gy not None, const real[::1] w not None,
                      real[::1] gx not None):
    cdef str fn = "conv2d_grad_input"
    cdef fc_conv2d_shape s = conv_shape(fn, shape)
    cdef fc_algorithm a = lookup(fn, "algorithm", CONV_ALGORITHMS[fn], algorithm)
    need(fn, "gy", gy.shape[0], conv_y(&s))
    need(fn, "w", w.shape[0], conv_w(&s))
    need(fn, "gx", gx.shape[0], conv_x(&s))
    cdef int rc
    with nogil:
        rc = (fc_conv2d_grad_input_f32(&s, a, &gy[0], &w[0], &gx[0]) if real is float
              else fc_conv2d_grad_input_f64(&s, a, &gy[0], &w[0], &gx[0]))
    check(rc)


def conv2d_forward_grad_weight(tuple shape, str algorithm, const real[::1] x not None, const real[::1] w not None,
                               const real[::1] gy not None, real[::1] y not None, real[::1] gw not None):
    """conv2d_forward (no bias) and conv2d_grad_weight in one call, where
    the passes share x: a transposed conv's backward."""
    cdef str fn = "conv2d_forward_grad_weight"
    cdef fc_conv2d_shape s = conv_shape(fn, shape)
    cdef fc_algorithm a = lookup(fn, "algorithm", CONV_ALGORITHMS[fn], algorithm)
    need(fn, "x", x.shape[0], conv_x(&s))
    need(fn, "w", w.shape[0], conv_w(&s))
    need(fn, "gy", gy.shape[0], conv_y(&s))
    need(fn, "y", y.shape[0], conv_y(&s))
    need(fn, "gw", gw.shape[0], conv_w(&s))
    cdef int rc
    with nogil:
        rc = (fc_conv2d_forward_grad_weight_f32(&s, a, &x[0], &w[0], &gy[0], &y[0], &gw[0]) if real is float
              else fc_conv2d_forward_grad_weight_f64(&s, a, &x[0], &w[0], &gy[0], &y[0], &gw[0]))
    check(rc)


def conv2d_grad_weight(tuple shape, str algorithm, const real[::1] gy not None, const real[::1] x not None,
                       real[::1] gw not None):
    cdef str fn = "conv2d_grad_weight"
    cdef fc_conv2d_shape s = conv_shape(fn, shape)
    cdef fc_algorithm a = lookup(fn, "algorithm", CONV_ALGORITHMS[fn], algorithm)
    need(fn, "gy", gy.shape[0], conv_y(&s))
    need(fn, "x", x.shape[0], conv_x(&s))
    need(fn, "gw", gw.shape[0], conv_w(&s))
    cdef int rc
    with nogil:
        rc = (fc_conv2d_grad_weight_f32(&s, a, &gy[0], &x[0], &gw[0]) if real is float
              else fc_conv2d_grad_weight_f64(&s, a, &gy[0], &x[0], &gw[0]))
    check(rc)


def conv2d_grad_bias(int64_t n, int64_t channels, int64_t plane, const real[::1] gy not None,
                     real[::1] gb not None):
    """gb[c] = the sum of gy[n][c][...] over n and the plane's values."""
    cdef str fn = "conv2d_grad_bias"
    if min(n, channels, plane) < 1:
        fields(fn, (n, channels, plane), ("n", "channels", "plane"))
    need(fn, "gy", gy.shape[0], (<object>n) * channels * plane)
    need(fn, "gb", gb.shape[0], channels)
    cdef fc_conv2d_shape s = conv_shape(fn, (n, 1, 1, 1, channels, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, plane))
    cdef int rc
    with nogil:
        rc = (fc_conv2d_grad_bias_f32(&s, &gy[0], &gb[0]) if real is float
              else fc_conv2d_grad_bias_f64(&s, &gy[0], &gb[0]))
    check(rc)


def unfold(tuple shape, const real[::1] x not None, real[::1] cols not None):
    cdef str fn = "unfold"
    cdef fc_conv2d_shape s = conv_shape(fn, shape)
    need(fn, "x", x.shape[0], conv_x(&s))
    need(fn, "cols", cols.shape[0], conv_cols(&s))
    cdef int rc
    with nogil:
        rc = fc_unfold_f32(&s, &x[0], &cols[0]) if real is float else fc_unfold_f64(&s, &x[0], &cols[0])
    check(rc)


def fold(tuple shape, const real[::1] cols not None, real[::1] x not None):
    cdef str fn = "fold"
    cdef fc_conv2d_shape s = conv_shape(fn, shape)
    need(fn, "cols", cols.shape[0], conv_cols(&s))
    need(fn, "x", x.shape[0], conv_x(&s))
    cdef int rc
    with nogil:
        rc = fc_fold_f32(&s, &cols[0], &x[0]) if real is float else fc_fold_f64(&s, &cols[0], &x[0])
    check(rc)


def gemm(int64_t m, int64_t n, int64_t k, const real[::1] a not None, bint trans_a, const real[::1] b not None,
         bint trans_b, const real[::1] bias, activation, real[::1] c not None):
    """c[m][n] = act(op(a) @ op(b) + bias), all C-contiguous: op(a) is a[m][k],
    or a[k][m] transposed with trans_a; op(b) is b[k][n], or b[n][k]
    transposed with trans_b; bias has n values or is None."""
    cdef str fn = "gemm"
    if min(m, n, k) < 1:
        fields(fn, (m, n, k), ("m", "n", "k"))
    cdef fc_activation act = lookup(fn, "activation", ACTIVATIONS, activation)
    need(fn, "a", a.shape[0], (<object>m) * k)
    need(fn, "b", b.shape[0], (<object>k) * n)
    need(fn, "c", c.shape[0], (<object>m) * n)
    if bias is not None:
        need(fn, "bias", bias.shape[0], n)
    cdef const real *bp = NULL if bias is None else &bias[0]
    cdef int64_t lda = m if trans_a else k, ldb = k if trans_b else n
    cdef int rc
    with nogil:
        rc = (fc_gemm_f32(m, n, k, &a[0], lda, trans_a, &b[0], ldb, trans_b, bp, act, &c[0], n) if real is float
              else fc_gemm_f64(m, n, k, &a[0], lda, trans_a, &b[0], ldb, trans_b, bp, act, &c[0], n))
    check(rc)


def relu(const real[::1] x not None, real[::1] y not None):
    need("relu", "y", y.shape[0], x.shape[0])
    if x.shape[0] == 0:
        return
    cdef int rc
    with nogil:
        rc = fc_relu_f32(x.shape[0], &x[0], &y[0]) if real is float else fc_relu_f64(x.shape[0], &x[0], &y[0])
    check(rc)


def relu_backward(const real[::1] gy not None, const real[::1] y not None, real[::1] gx not None):
    need("relu_backward", "y", y.shape[0], gy.shape[0])
    need("relu_backward", "gx", gx.shape[0], gy.shape[0])
    if gy.shape[0] == 0:
        return
    cdef int rc
    with nogil:
        rc = (fc_relu_backward_f32(gy.shape[0], &gy[0], &y[0], &gx[0]) if real is float
              else fc_relu_backward_f64(gy.shape[0], &gy[0], &y[0], &gx[0]))
    check(rc)


def dropout(const real[::1] x not None, double p, uint64_t seed, real[::1] y not None):
    if not 0 <= p < 1:
        raise ValueError(f"_C.dropout: p must lie in [0, 1), got {p}")
    need("dropout", "y", y.shape[0], x.shape[0])
    if x.shape[0] == 0:
        return
    cdef int rc
    with nogil:
        rc = (fc_dropout_f32(x.shape[0], &x[0], p, seed, &y[0]) if real is float
              else fc_dropout_f64(x.shape[0], &x[0], p, seed, &y[0]))
    check(rc)


def cross_entropy(int64_t rows, int64_t classes, const real[::1] logits not None,
                  const int64_t[::1] labels not None, real[::1] grad not None):
    """The mean loss; grad receives its gradient."""
    cdef str fn = "cross_entropy"
    if min(rows, classes) < 1:
        fields(fn, (rows, classes), ("rows", "classes"))
    need(fn, "logits", logits.shape[0], (<object>rows) * classes)
    need(fn, "labels", labels.shape[0], rows)
    need(fn, "grad", grad.shape[0], (<object>rows) * classes)
    cdef double loss = 0
    cdef int rc
    with nogil:
        rc = (fc_cross_entropy_f32(rows, classes, &logits[0], &labels[0], &grad[0], &loss) if real is float
              else fc_cross_entropy_f64(rows, classes, &logits[0], &labels[0], &grad[0], &loss))
    if rc == 2:
        raise ValueError(f"cross_entropy: a label lies outside [0, {classes})")
    check(rc)
    return loss


def transpose(int64_t batch, int64_t rows, int64_t cols, const real[::1] src not None, real[::1] dst not None):
    """dst[b][c][r] = src[b][r][c]."""
    cdef str fn = "transpose"
    if min(batch, rows, cols) < 1:
        fields(fn, (batch, rows, cols), ("batch", "rows", "cols"))
    if rows > 2147483647:
        raise ValueError(f"_C.{fn}: rows must be at most 2147483647, got {rows}")
    need(fn, "src", src.shape[0], (<object>batch) * rows * cols)
    need(fn, "dst", dst.shape[0], (<object>batch) * rows * cols)
    cdef int rc
    with nogil:
        rc = (fc_transpose_f32(batch, rows, cols, &src[0], &dst[0]) if real is float
              else fc_transpose_f64(batch, rows, cols, &src[0], &dst[0]))
    check(rc)


def bias_grad(int64_t rows, int64_t cols, const real[::1] g not None, real[::1] gb not None):
    cdef str fn = "bias_grad"
    if min(rows, cols) < 1:
        fields(fn, (rows, cols), ("rows", "cols"))
    need(fn, "g", g.shape[0], (<object>rows) * cols)
    need(fn, "gb", gb.shape[0], cols)
    cdef int rc
    with nogil:
        rc = (fc_bias_grad_f32(rows, cols, &g[0], &gb[0]) if real is float
              else fc_bias_grad_f64(rows, cols, &g[0], &gb[0]))
    check(rc)


def max_pool2d_forward(tuple shape, str algorithm, const real[::1] x not None, real[::1] y not None,
                       int64_t[::1] indices):
    cdef str fn = "max_pool2d_forward"
    cdef fc_pool2d_shape s = pool_shape(fn, shape)
    cdef fc_algorithm a = lookup(fn, "algorithm", ALGORITHMS, algorithm)
    need(fn, "x", x.shape[0], pool_x(&s))
    need(fn, "y", y.shape[0], pool_y(&s))
    if indices is not None:
        need(fn, "indices", indices.shape[0], pool_y(&s))
    cdef int64_t *ip = NULL if indices is None else &indices[0]
    cdef int rc
    with nogil:
        rc = (fc_max_pool2d_forward_f32(&s, a, &x[0], &y[0], ip) if real is float
              else fc_max_pool2d_forward_f64(&s, a, &x[0], &y[0], ip))
    check(rc)


def max_pool2d_backward(tuple shape, const real[::1] gy not None, const int64_t[::1] indices not None,
                        real[::1] gx not None):
    cdef str fn = "max_pool2d_backward"
    cdef fc_pool2d_shape s = pool_shape(fn, shape)
    need(fn, "gy", gy.shape[0], pool_y(&s))
    need(fn, "indices", indices.shape[0], pool_y(&s))
    need(fn, "gx", gx.shape[0], pool_x(&s))
    cdef int rc
    with nogil:
        rc = (fc_max_pool2d_backward_f32(&s, &gy[0], &indices[0], &gx[0]) if real is float
              else fc_max_pool2d_backward_f64(&s, &gy[0], &indices[0], &gx[0]))
    check(rc)


def avg_pool2d_forward(tuple shape, str algorithm, const real[::1] x not None, real[::1] y not None):
    cdef str fn = "avg_pool2d_forward"
    cdef fc_pool2d_shape s = pool_shape(fn, shape)
    cdef fc_algorithm a = lookup(fn, "algorithm", ALGORITHMS, algorithm)
    need(fn, "x", x.shape[0], pool_x(&s))
    need(fn, "y", y.shape[0], pool_y(&s))
    cdef int rc
    with nogil:
        rc = (fc_avg_pool2d_forward_f32(&s, a, &x[0], &y[0]) if real is float
              else fc_avg_pool2d_forward_f64(&s, a, &x[0], &y[0]))
    check(rc)


def avg_pool2d_backward(tuple shape, const real[::1] gy not None, real[::1] gx not None):
    cdef str fn = "avg_pool2d_backward"
    cdef fc_pool2d_shape s = pool_shape(fn, shape)
    need(fn, "gy", gy.shape[0], pool_y(&s))
    need(fn, "gx", gx.shape[0], pool_x(&s))
    cdef int rc
    with nogil:
        rc = (fc_avg_pool2d_backward_f32(&s, &gy[0], &gx[0]) if real is float
              else fc_avg_pool2d_backward_f64(&s, &gy[0], &gx[0]))
    check(rc)


def adaptive_avg_pool2d_forward(tuple shape, const real[::1] x not None, real[::1] y not None):
    cdef str fn = "adaptive_avg_pool2d_forward"
    cdef fc_pool2d_shape s = pool_shape(fn, shape)
    need(fn, "x", x.shape[0], pool_x(&s))
    need(fn, "y", y.shape[0], pool_y(&s))
    cdef int rc
    with nogil:
        rc = (fc_adaptive_avg_pool2d_forward_f32(&s, &x[0], &y[0]) if real is float
              else fc_adaptive_avg_pool2d_forward_f64(&s, &x[0], &y[0]))
    check(rc)


def adaptive_avg_pool2d_backward(tuple shape, const real[::1] gy not None, real[::1] gx not None):
    cdef str fn = "adaptive_avg_pool2d_backward"
    cdef fc_pool2d_shape s = pool_shape(fn, shape)
    need(fn, "gy", gy.shape[0], pool_y(&s))
    need(fn, "gx", gx.shape[0], pool_x(&s))
    cdef int rc
    with nogil:
        rc = (fc_adaptive_avg_pool2d_backward_f32(&s, &gy[0], &gx[0]) if real is float
              else fc_adaptive_avg_pool2d_backward_f64(&s, &gy[0], &gx[0]))
    check(rc)


def adam_step(real[::1] p not None, const real[::1] grad not None, real[::1] m not None, real[::1] v not None,
              double step_size, double b1, double b2, double eps, double root_correction, double weight_decay):
    for arg, buf in (("grad", grad), ("m", m), ("v", v)):
        need("adam_step", arg, len(buf), p.shape[0])
    if p.shape[0] == 0:
        return
    cdef int rc
    with nogil:
        rc = (fc_adam_step_f32(p.shape[0], &p[0], &grad[0], &m[0], &v[0], step_size, b1, b2, eps,
                               root_correction, weight_decay) if real is float
              else fc_adam_step_f64(p.shape[0], &p[0], &grad[0], &m[0], &v[0], step_size, b1, b2, eps,
                                    root_correction, weight_decay))
    check(rc)


def set_num_threads(int n):
    if n < 1:
        raise ValueError(f"_C.set_num_threads: n must be at least 1, got {n}")
    fc_set_num_threads(n)


def get_num_threads():
    return fc_get_num_threads()


def set_thread_limit(int n):
    if n < 0:
        raise ValueError(f"_C.set_thread_limit: n must be 0 (no limit) or more, got {n}")
    fc_set_thread_limit(n)


def get_thread_limit():
    return fc_get_thread_limit()


def openmp_default():
    """OpenMP's thread count for a thread that set none (its default ICV)."""
    return fc_openmp_default()


def thread_peak(bint reset=False):
    """The most threads fastconv's calls have held at once (since the last reset)."""
    return fc_thread_peak(reset)


def have_openmp():
    return bool(fc_have_openmp())


def isa_supported(str name):
    return bool(fc_isa_supported(lookup("isa_supported", "name", ISAS, name)))


def set_isa(str name):
    """Forces an instruction set for the GEMM microkernels (tests use this)."""
    if fc_set_isa(lookup("set_isa", "name", ISAS, name)) != 0:
        raise ValueError(f"set_isa: {name!r} is not supported on this CPU or build")


def get_isa():
    return {v: k for k, v in ISAS.items()}[fc_get_isa()]
