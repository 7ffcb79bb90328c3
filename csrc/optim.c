/* Optimizer updates, one fused pass over each parameter.
 * Family file: instantiated by f32.c and f64.c (see common.h). */

/* One Adam step over n elements, PyTorch's formulation:
 *   g = grad + weight_decay * p
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= step_size * m / (sqrt(v) / root_correction + eps)
 * with step_size = lr / (1 - b1^t) and root_correction = sqrt(1 - b2^t).
 * Elementwise, so any split between threads gives the same bits. */
int FC_FN(fc_adam_step)(int64_t n, FC_T *restrict p, const FC_T *restrict grad, FC_T *restrict m,
                        FC_T *restrict v, double step_size, double b1, double b2, double eps,
                        double root_correction, double weight_decay) {
    const FC_T s = (FC_T)step_size, c1 = (FC_T)b1, c2 = (FC_T)b2, e = (FC_T)eps;
    const FC_T rc = (FC_T)root_correction, wd = (FC_T)weight_decay;
    const int64_t block = 4096;
    const int64_t blocks = (n + block - 1) / block;
    FC_OMP(parallel for num_threads(fc_threads_for(blocks, 10.0 * block)) schedule(static))
    for (int64_t bi = 0; bi < blocks; bi++) {
        const int64_t end = FC_MIN(n, (bi + 1) * block);
        for (int64_t i = bi * block; i < end; i++) {
            const FC_T g = grad[i] + wd * p[i];
            m[i] = c1 * m[i] + (1 - c1) * g;
            v[i] = c2 * v[i] + (1 - c2) * g * g;
            p[i] -= s * (m[i] / (sqrt(v[i]) / rc + e));
        }
    }
    return FC_OK;
}
