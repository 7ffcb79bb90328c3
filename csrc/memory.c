/* The kernels' temporaries, and the large ones kept between calls.
 *
 * A call's scratch (packed panels, transformed tiles, stride phases) runs
 * to megabytes and is freed when the call ends. glibc gives a heap top
 * past its trim threshold back to the system, so the next call faults the
 * same memory in again, page by page: a DCGAN layer by Winograd spent a
 * third of its time in the kernel's page faults (benchmarks/RULES.md).
 * Blocks of KEEP_MIN bytes or more go to a small cache of the thread that
 * frees them instead, at most KEEP_BYTES a thread, and that thread's next
 * request of up to their size takes one back: a thread of the team gets
 * the scratch it had last call, still in its own caches (one cache for
 * all threads handed each other's blocks, and a 28x28 layer by Winograd
 * ran 4-11% slower). A thread's blocks are freed when it exits.
 *
 * Every block starts on a cache line: the kernels read and write their
 * scratch a 64-byte vector at a time, and malloc aligns to 16 bytes only:
 * three starts in four had every vector straddle two lines (Winograd
 * layers ran 2-4% slower). New large blocks start at one of COLORS
 * offsets a cache line apart: blocks that all began at the same offset in
 * their pages contended for the same cache sets. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#if defined(__SANITIZE_ADDRESS__)
#define FC_PLAIN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FC_PLAIN_MALLOC 1
#endif
#endif

#ifdef FC_PLAIN_MALLOC
/* Under AddressSanitizer every block is malloc's own, so that it sees
 * each access past what was asked for. */
void *fc_alloc(size_t bytes) { return malloc(bytes); }
void *fc_calloc(size_t bytes) { return calloc(bytes, 1); }
void fc_free(void *p) { free(p); }
#else

#define KEEP_MIN ((size_t)256 << 10)
#define KEEP_BYTES ((size_t)64 << 20)
#define KEEP_BLOCKS 16
#define HEADER 64 /* the block's size and malloc's pointer, in front of what the caller gets */
#define COLORS 16

typedef struct {
    char *block[KEEP_BLOCKS]; /* what the callers got, oldest first */
    size_t bytes[KEEP_BLOCKS];
    int count;
    size_t total;
} kept_blocks;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned color;

static size_t block_bytes(const char *block) { return ((const size_t *)block)[-1]; }
static void block_free(char *block) { free(((char **)block)[-2]); }

static void drop(kept_blocks *k, int i) {
    k->total -= k->bytes[i];
    for (k->count--; i < k->count; i++) k->block[i] = k->block[i + 1], k->bytes[i] = k->bytes[i + 1];
}

static void free_kept(void *p) {
    kept_blocks *k = p;
    for (int i = 0; i < k->count; i++) block_free(k->block[i]);
    free(k);
}

static void make_key(void) { pthread_key_create(&key, free_kept); }

/* This thread's cache, made on first use (NULL if that fails). */
static kept_blocks *mine(void) {
    pthread_once(&once, make_key);
    kept_blocks *k = pthread_getspecific(key);
    if (!k && (k = calloc(1, sizeof *k)) && pthread_setspecific(key, k)) {
        free(k);
        k = NULL;
    }
    return k;
}

/* A block from this thread's cache (zeroed if `zero`), or a new one from
 * malloc, or from calloc where `zero` (free on fresh pages). */
static void *take(size_t bytes, int zero) {
    kept_blocks *k = bytes >= KEEP_MIN ? mine() : NULL;
    if (k) { /* the smallest kept block that holds it, if at most twice its size */
        int best = -1;
        for (int i = 0; i < k->count; i++)
            if (k->bytes[i] >= bytes && k->bytes[i] / 2 <= bytes && (best < 0 || k->bytes[i] < k->bytes[best]))
                best = i;
        if (best >= 0) {
            char *block = k->block[best];
            drop(k, best);
            if (zero) memset(block, 0, bytes);
            return block;
        }
    }
    const size_t skew = bytes >= KEEP_MIN ? 64 * (__atomic_fetch_add(&color, 1, __ATOMIC_RELAXED) % COLORS) : 0;
    const size_t total = bytes > SIZE_MAX - HEADER - 64 * COLORS - 63 ? 0 : bytes + HEADER + 63 + skew;
    char *raw = !total ? NULL : zero ? calloc(total, 1) : malloc(total);
    if (!raw) return NULL;
    char *block = (char *)(((uintptr_t)raw + HEADER + 63) & ~(uintptr_t)63) + skew;
    ((size_t *)block)[-1] = bytes;
    ((char **)block)[-2] = raw;
    return block;
}

void *fc_alloc(size_t bytes) { return take(bytes, 0); }
void *fc_calloc(size_t bytes) { return take(bytes, 1); }

void fc_free(void *p) {
    if (!p) return;
    char *block = p;
    const size_t bytes = block_bytes(block);
    kept_blocks *k = bytes >= KEEP_MIN && bytes <= KEEP_BYTES ? mine() : NULL;
    if (!k) {
        block_free(block);
        return;
    }
    while (k->count == KEEP_BLOCKS || k->total + bytes > KEEP_BYTES) { /* room made by dropping the oldest */
        block_free(k->block[0]);
        drop(k, 0);
    }
    k->block[k->count] = block, k->bytes[k->count] = bytes, k->count++;
    k->total += bytes;
}
#endif
