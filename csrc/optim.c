/* Optimizer updates, one fused pass over each parameter.
 * Family file: instantiated by f32.c and f64.c (see common.h). */

/* One Adam step over n elements, PyTorch's formulation:
 *   g = grad + weight_decay * p
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= step_size * m / (sqrt(v) / root_correction + eps)
 * with step_size = lr / (1 - b1^t) and root_correction = sqrt(1 - b2^t).
 * Elementwise, in the parameter's own precision (sqrtf for float32), so
 * any split between threads gives the same bits. */
#include <math.h>
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "common.h"
#include "fastconv.h"
#include "kernels.h"

FC_VECTOR_LOOP(adam_block, (int64_t lo, int64_t hi, FC_T *restrict p, const FC_T *restrict grad,
                            FC_T *restrict m, FC_T *restrict v, FC_T s, FC_T c1, FC_T c2, FC_T e, FC_T rc, FC_T wd),
               (lo, hi, p, grad, m, v, s, c1, c2, e, rc, wd)) {
    for (int64_t i = lo; i < hi; i++) {
        const FC_T g = grad[i] + wd * p[i];
        m[i] = c1 * m[i] + (1 - c1) * g;
        v[i] = c2 * v[i] + (1 - c2) * g * g;
        p[i] -= s * (m[i] / (FC_SQRT(v[i]) / rc + e));
    }
}

/* The moments of a unit whose gradient stays zero decay geometrically into
 * the subnormal range within an epoch (0.9^800 < FLT_MIN / 1e-3), and so do
 * the squares of tiny gradients; x86 then takes a slow path on every such
 * operation, which made LeNet-5's largest Adam update 2-4x slower late in
 * training. A subnormal moment moves its parameter by a negligible step
 * (m / eps < 1e-29 lr at the default eps), so the block runs with
 * subnormals flushed to zero (MXCSR's FTZ and DAZ), set and restored by
 * the thread that runs it. */
static inline unsigned flush_subnormals(void) {
#if defined(__SSE__) || defined(__x86_64__)
    const unsigned mode = _mm_getcsr();
    _mm_setcsr(mode | 0x8040u);
    return mode;
#else
    return 0;
#endif
}

static inline void restore_fp_mode(unsigned mode) {
#if defined(__SSE__) || defined(__x86_64__)
    _mm_setcsr(mode);
#else
    (void)mode;
#endif
}

int FC_FN(fc_adam_step)(int64_t n, FC_T *restrict p, const FC_T *restrict grad, FC_T *restrict m,
                        FC_T *restrict v, double step_size, double b1, double b2, double eps,
                        double root_correction, double weight_decay) {
    FC_CALL_SCOPE;
    const int64_t block = 4096;
    const int64_t blocks = (n + block - 1) / block;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    FC_OMP(parallel for num_threads(fc_threads_for(blocks, 40.0 * block)) schedule(static))
    for (int64_t bi = 0; bi < blocks; bi++) {
        const unsigned mode = flush_subnormals();
        k->adam_block(bi * block, FC_MIN(n, (bi + 1) * block), p, grad, m, v, (FC_T)step_size, (FC_T)b1,
                      (FC_T)b2, (FC_T)eps, (FC_T)root_correction, (FC_T)weight_decay);
        restore_fp_mode(mode);
    }
    return FC_OK;
}
