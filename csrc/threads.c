/* The thread budget shared by every kernel.
 *
 * A kernel call runs on threads it holds as tokens of one process-wide
 * budget (set_num_threads), so the threads running at any moment never
 * exceed it, whoever calls: Dask workers, a thread pool, a training thread
 * beside a serving one. A call takes one token when it starts (waiting,
 * asleep, while the budget is spent), widens to its share for each parallel
 * loop and gives everything back when it ends. Every public entry point
 * opens and closes its call itself (FC_CALL_SCOPE, common.h), so C callers
 * and the binding alike share the budget.
 *
 * How many threads a call may want is the calling thread's own limit: the
 * budget, narrowed by fastconv.threads(n) and by OpenMP's per-thread setting
 * (omp_set_num_threads, threadpoolctl) when that differs from the process
 * default. A build without OpenMP runs every call on its caller's thread. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include "fastconv.h"

#ifdef _OPENMP
#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed = PTHREAD_COND_INITIALIZER;
static int budget = 1;       /* tokens in all */
static int in_use = 0;       /* tokens held by running calls */
static int callers = 0;      /* calls running or waiting for their first token */
static int peak = 0;         /* most tokens ever held at once (for the tests) */
static int default_icv = 0;  /* omp_get_max_threads() when the budget was first set */

static __thread int held = 0;         /* this thread's tokens in its current call */
static __thread int depth = 0;        /* entry points open on this thread (they nest) */
static __thread int thread_limit = 0; /* fastconv.threads(n) in this thread; 0: none */
static __thread int ran_team = 0;     /* this thread has started an OpenMP team */
static int team_lost = 0;             /* forked from a thread whose team did not survive */

/* After fork() only the forking thread lives on. The child starts with a
 * fresh count (other threads' tokens, or the lock, would be held forever)
 * and, if the forking thread had started an OpenMP team, runs on that one
 * thread: libgomp keeps the team's threads, which the child does not have,
 * and its next parallel region would wait for them forever (PyTorch's
 * forked children hang there). */
static void reset_in_child(void) {
    pthread_mutex_init(&lock, NULL);
    pthread_cond_init(&freed, NULL);
    in_use = callers = peak = held = depth = 0;
    if (ran_team) team_lost = 1;
}

static void register_fork_handler(void) { pthread_atfork(NULL, NULL, reset_in_child); }

void fc_set_num_threads(int n) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_fork_handler);
    pthread_mutex_lock(&lock);
    if (!default_icv) default_icv = omp_get_max_threads();
    __atomic_store_n(&budget, n < 1 ? 1 : n, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&freed);
    pthread_mutex_unlock(&lock);
}

void fc_set_thread_limit(int n) { thread_limit = n < 0 ? 0 : n; }

int fc_get_thread_limit(void) { return thread_limit; }

int fc_get_num_threads(void) {
    if (team_lost) return 1;
    int n = __atomic_load_n(&budget, __ATOMIC_RELAXED);
    const int icv = omp_get_max_threads();
    if (thread_limit) n = FC_MIN(n, thread_limit);
    if (icv != default_icv) n = FC_MIN(n, icv);
    return n;
}

static void take(int n) {
    in_use += n;
    held += n;
    if (in_use > peak) peak = in_use;
}

static void give(int n) {
    in_use -= n;
    held -= n;
    pthread_cond_broadcast(&freed);
}

/* Every entry point opens a call (FC_CALL_SCOPE); one that calls another
 * (a forward's ReLU pass, grad-input's phases) stays inside its caller's. */
void fc_call_enter(void) {
    if (depth++) return;
    pthread_mutex_lock(&lock);
    callers++;
    while (in_use >= budget) pthread_cond_wait(&freed, &lock);
    take(1);
    pthread_mutex_unlock(&lock);
}

void fc_call_leave(void) {
    if (--depth) return;
    pthread_mutex_lock(&lock);
    callers--;
    give(held);
    pthread_mutex_unlock(&lock);
}

int fc_openmp_default(void) { return default_icv ? default_icv : omp_get_max_threads(); }

int fc_thread_peak(int reset) {
    pthread_mutex_lock(&lock);
    const int p = peak;
    if (reset) peak = in_use;
    pthread_mutex_unlock(&lock);
    return p;
}

/* Widen (or narrow) this call to `want` threads, within its fair share of
 * the budget and what is free now; never below the one token it holds. */
static int hold(int want) {
    if (want == held) return held;
    pthread_mutex_lock(&lock);
    const int share = FC_MAX(1, budget / FC_MAX(1, callers));
    want = FC_MIN(want, share);
    if (want > held)
        take(FC_MIN(want - held, FC_MAX(0, budget - in_use)));
    else if (want < held)
        give(held - want);
    pthread_mutex_unlock(&lock);
    if (held > 1) ran_team = 1;
    return held;
}
#else
void fc_set_num_threads(int n) { (void)n; }
void fc_set_thread_limit(int n) { (void)n; }
int fc_get_thread_limit(void) { return 0; }
int fc_get_num_threads(void) { return 1; }
void fc_call_enter(void) {}
void fc_call_leave(void) {}
int fc_thread_peak(int reset) { (void)reset; return 1; }
int fc_openmp_default(void) { return 1; }
#endif

int fc_have_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Threads for a parallel loop of `tasks` independent tasks of about
 * `flops_per_task` each: this thread's limit, never more than there are
 * tasks or than its share of the budget, and one thread below ~1 MFLOP in
 * all, where waking a team costs more than it saves (benchmarks/RULES.md).
 * Inside an active parallel region the answer is 1, so regions never nest. */
int fc_threads_for(int64_t tasks, double flops_per_task) {
#ifdef _OPENMP
    if (omp_in_parallel() || (double)tasks * flops_per_task < 1e6) return 1;
    const int64_t want = FC_MIN((int64_t)fc_get_num_threads(), FC_MAX(tasks, (int64_t)1));
    return hold((int)want);
#else
    (void)tasks;
    (void)flops_per_task;
    return 1;
#endif
}
