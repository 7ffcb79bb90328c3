/* The elementwise and row-wise passes of a training step, one pass each
 * where NumPy needs several: ReLU and its backward, dropout, softmax
 * cross-entropy with its gradient, a linear layer's bias gradient.
 * Family file: instantiated by f32.c and f64.c (see common.h).
 *
 * Threads split the elements into fixed blocks, and no result depends on
 * which thread computes a block: 1 thread and N threads agree bit for bit.
 * Each block's loop is a vector loop of the dispatch table (kernels.h), so
 * it vectorizes at the CPU's width. */
#include <math.h>

#include "common.h"
#include "fastconv.h"
#include "kernels.h"

#define FC_EW_BLOCK 16384 /* elements per task */

/* Blocks of FC_EW_BLOCK elements; one thread below about 64K elements,
 * where a team costs more than it saves. */
#define EACH_BLOCK(n, ...)                                                                   \
    FC_OMP(parallel for num_threads(fc_threads_for(((n) + FC_EW_BLOCK - 1) / FC_EW_BLOCK,   \
                                                   16.0 * FC_EW_BLOCK)) schedule(static))   \
    for (int64_t b0 = 0; b0 < (n); b0 += FC_EW_BLOCK) {                                      \
        const int64_t b1 = FC_MIN((n), b0 + FC_EW_BLOCK);                                    \
        __VA_ARGS__;                                                                         \
    }

/* y = max(x, 0), NaN kept; y may be x. */
FC_VECTOR_LOOP(relu_block, (int64_t lo, int64_t hi, const FC_T *x, FC_T *y), (lo, hi, x, y)) {
    for (int64_t i = lo; i < hi; i++) y[i] = x[i] < 0 ? 0 : x[i];
}

int FC_FN(fc_relu)(int64_t n, const FC_T *x, FC_T *y) {
    FC_CALL_SCOPE;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    EACH_BLOCK(n, k->relu_block(b0, b1, x, y))
    return FC_OK;
}

/* gx = gy where the ReLU's output y > 0, else 0: the mask comes from the
 * output's sign, so a forward stores no mask. gx may be gy. */
FC_VECTOR_LOOP(relu_backward_block, (int64_t lo, int64_t hi, const FC_T *gy, const FC_T *y, FC_T *gx),
               (lo, hi, gy, y, gx)) {
    for (int64_t i = lo; i < hi; i++) gx[i] = y[i] > 0 ? gy[i] : 0;
}

int FC_FN(fc_relu_backward)(int64_t n, const FC_T *gy, const FC_T *y, FC_T *gx) {
    FC_CALL_SCOPE;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    EACH_BLOCK(n, k->relu_backward_block(b0, b1, gy, y, gx))
    return FC_OK;
}

/* Dropout's random stream: element i of a call with `seed` is kept when
 * the high 32 bits of splitmix64(seed + (i + 1) * golden ratio) reach
 * p * 2^32. A counter-based stream needs no state: the backward recomputes
 * the mask from the seed instead of storing it, and any split between
 * threads draws the same bits. */
static inline int dropout_keep(uint64_t seed, int64_t i, uint64_t threshold) {
    uint64_t z = seed + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (z >> 32) >= threshold;
}

static uint64_t dropout_threshold(double p) { return (uint64_t)(p * 4294967296.0); }

/* y = x / (1 - p) where kept, else 0; the backward is the same map of gy. */
FC_VECTOR_LOOP(dropout_block, (int64_t lo, int64_t hi, const FC_T *x, uint64_t seed, uint64_t threshold,
                               FC_T scale, FC_T *y), (lo, hi, x, seed, threshold, scale, y)) {
    for (int64_t i = lo; i < hi; i++) y[i] = dropout_keep(seed, i, threshold) ? x[i] * scale : 0;
}

int FC_FN(fc_dropout)(int64_t n, const FC_T *x, double p, uint64_t seed, FC_T *y) {
    FC_CALL_SCOPE;
    const uint64_t threshold = dropout_threshold(p);
    const FC_T scale = (FC_T)(1.0 / (1.0 - p));
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    EACH_BLOCK(n, k->dropout_block(b0, b1, x, seed, threshold, scale, y))
    return FC_OK;
}

/* Mean softmax cross-entropy of rows of logits against integer labels,
 * and its gradient (softmax - one_hot) / rows, in one pass over each row.
 * Sums run in double. FC_ERR_INDEX if a label is outside [0, classes). */
int FC_FN(fc_cross_entropy)(int64_t rows, int64_t classes, const FC_T *logits, const int64_t *labels,
                            FC_T *grad, double *loss) {
    FC_CALL_SCOPE;
    for (int64_t r = 0; r < rows; r++)
        if (labels[r] < 0 || labels[r] >= classes) return FC_ERR_INDEX;
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        const FC_T *z = logits + r * classes;
        FC_T *g = grad + r * classes;
        double top = z[0], sum = 0;
        for (int64_t c = 1; c < classes; c++) top = z[c] > top ? z[c] : top;
        for (int64_t c = 0; c < classes; c++) sum += exp((double)z[c] - top);
        const double log_sum = log(sum);
        total += log_sum - ((double)z[labels[r]] - top);
        for (int64_t c = 0; c < classes; c++)
            g[c] = (FC_T)((exp((double)z[c] - top - log_sum) - (c == labels[r])) / (double)rows);
    }
    *loss = rows ? total / (double)rows : 0;
    return FC_OK;
}

/* gb[j] = sum over rows i of g[i][j] (a linear layer's bias gradient),
 * rows added in order. */
FC_VECTOR_LOOP(column_sums, (int64_t rows, int64_t lo, int64_t hi, int64_t cols, const FC_T *g, FC_T *gb),
               (rows, lo, hi, cols, g, gb)) {
    for (int64_t j = lo; j < hi; j++) gb[j] = 0;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = lo; j < hi; j++) gb[j] += g[i * cols + j];
}

int FC_FN(fc_bias_grad)(int64_t rows, int64_t cols, const FC_T *g, FC_T *gb) {
    FC_CALL_SCOPE;
    const int64_t block = 256, blocks = (cols + block - 1) / block;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    FC_OMP(parallel for num_threads(fc_threads_for(blocks, 16.0 * block * rows)) schedule(static))
    for (int64_t b = 0; b < blocks; b++)
        k->column_sums(rows, b * block, FC_MIN(cols, (b + 1) * block), cols, g, gb);
    return FC_OK;
}

/* dst[b][c][r] = src[b][r][c]: the batched transpose that moves channels
 * between last and first (fastconv/layout.py), through the GEMM's 8 x 8
 * vector transposer on blocks of rows the threads share. NumPy's strided
 * copy of the same took six times a plain copy's time. */
int FC_FN(fc_transpose)(int64_t batch, int64_t rows, int64_t cols, const FC_T *src, FC_T *dst) {
    FC_CALL_SCOPE;
    const int64_t block = 64, blocks = (rows + block - 1) / block, tasks = batch * blocks;
    const FC_FN(fc_kernels) *k = FC_FN(kernels)();
    FC_OMP(parallel for num_threads(fc_threads_for(tasks, 8.0 * block * cols)) schedule(static))
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t b = t / blocks, r0 = t % blocks * block;
        k->pack_transposed(src + (b * rows + r0) * cols, cols, (int)FC_MIN(block, rows - r0), cols, (int)rows,
                           dst + b * rows * cols + r0);
    }
    return FC_OK;
}

#undef EACH_BLOCK
#undef FC_EW_BLOCK
