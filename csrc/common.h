/* The dtype template.
 *
 * A family file (gemm.c, im2col.c, conv2d*.c, pool.c, ...) is written once against
 * FC_T and FC_FN and #included by f32.c and f64.c, which define FC_T and
 * FC_SUFFIX. FC_FN(fc_conv2d_forward) names fc_conv2d_forward_f32 or _f64.
 * Family files are never compiled on their own. */
#ifndef FASTCONV_COMMON_H
#define FASTCONV_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "fastconv.h"

#define FC_CAT_(a, b) a##b
#define FC_CAT(a, b) FC_CAT_(a, b)
#define FC_FN(name) FC_CAT(name, FC_SUFFIX)

#define FC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FC_MAX(a, b) ((a) > (b) ? (a) : (b))

#ifdef _OPENMP
#include <omp.h>
#define FC_PRAGMA(x) _Pragma(#x)
#define FC_OMP(x) FC_PRAGMA(omp x)
#else
#define FC_OMP(x)
#endif

/* Before a loop whose iterations are independent though the compiler
 * cannot prove it (arrays reached through tables of pointers). */
#if defined(__clang__)
#define FC_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define FC_IVDEP _Pragma("GCC ivdep")
#else
#define FC_IVDEP
#endif

/* Floor division for possibly negative numerators (divisor > 0). */
static inline int64_t fc_floordiv(int64_t a, int64_t b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}
static inline int64_t fc_ceildiv(int64_t a, int64_t b) {
    return -fc_floordiv(-a, b);
}

/* Output positions o in [0, out) whose input position o*stride + off falls
 * in [0, in): the half-open range [*lo, *hi) within [0, out), possibly
 * empty. */
static inline void fc_valid_range(int64_t off, int64_t stride, int64_t in, int64_t out,
                                  int64_t *lo, int64_t *hi) {
    *lo = FC_MIN(FC_MAX(fc_ceildiv(-off, stride), (int64_t)0), out);
    *hi = FC_MIN(fc_floordiv(in - 1 - off, stride) + 1, out);
    if (*hi < *lo) *hi = *lo;
}

/* Starts loading the cache lines of `bytes` from p, for reading or (with
 * `write`) for writing, while the caller computes on other data. A line
 * past an object's end loads whatever lies there, or nothing: prefetches
 * do not fault. */
static inline __attribute__((always_inline)) void fc_fetch_lines(const void *p, int64_t bytes, int write) {
    for (int64_t l = 0; l < bytes; l += 64)
        if (write) __builtin_prefetch((const char *)p + l, 1, 3);
        else __builtin_prefetch((const char *)p + l, 0, 3);
}

/* Copies `bytes` from src to dst by stores that go past the caches (x86's
 * non-temporal stores, 16 bytes at a time, the unaligned ends plainly;
 * elsewhere a plain copy): for a large result that other threads read
 * later, whose old lines a plain store would first read in, from memory
 * where the machine's other tenants have evicted them. fc_stream_fence,
 * after the last, orders them before what the thread stores next. */
static inline void fc_stream_copy(void *dst, const void *src, int64_t bytes) {
    char *d = dst;
    const char *s = src;
#if defined(__SSE2__)
    const int64_t head = FC_MIN(bytes, (int64_t)(-(uintptr_t)d & 15));
    memcpy(d, s, (size_t)head);
    d += head, s += head, bytes -= head;
    for (; bytes >= 16; d += 16, s += 16, bytes -= 16)
        _mm_stream_si128((__m128i *)d, _mm_loadu_si128((const __m128i *)s));
#endif
    memcpy(d, s, (size_t)bytes);
}

static inline void fc_stream_fence(void) {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

/* The kernels' temporaries (memory.c): malloc, calloc and free, except
 * that large blocks are kept between calls for the next to reuse. */
void *fc_alloc(size_t bytes);
void *fc_calloc(size_t bytes);
void fc_free(void *p);

/* A thread's scratch inside a parallel region: `bytes` from fc_alloc, or
 * zeroed from fc_calloc when `zero`. On failure it returns NULL and sets
 * *status to FC_ERR_NOMEM (atomically: any thread may fail); the thread
 * then skips its tasks but still enters the region's worksharing loop,
 * which every thread of the team must. */
static inline void *fc_scratch(size_t bytes, int zero, int *status) {
    void *p = zero ? fc_calloc(bytes) : fc_alloc(bytes);
    if (!p) {
        FC_OMP(atomic write)
        *status = FC_ERR_NOMEM;
    }
    return p;
}

/* Thread-count helpers (threads.c). */
int fc_threads_for(int64_t tasks, double flops_per_task);

/* A kernel call's share of the thread budget: fc_call_enter takes its
 * first token (waiting while the budget is spent), fc_call_leave gives
 * back all it holds. Calls nest: only the outermost takes and gives. */
void fc_call_enter(void);
void fc_call_leave(void);
static inline void fc_call_scope_end(int *unused) {
    (void)unused;
    fc_call_leave();
}

/* The first statement of every public entry point: enters the call, and
 * leaves it on every return (GCC and clang's cleanup attribute). */
#define FC_CALL_SCOPE \
    int fc_call_scope_ __attribute__((cleanup(fc_call_scope_end), unused)) = (fc_call_enter(), 0)

#endif
