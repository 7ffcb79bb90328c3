/* The thread budget shared by every kernel. */
#include "common.h"
#include "fastconv.h"

static int num_threads = 1;

/* Kernel calls running right now, from any number of Python threads. They
 * share the budget: two callers with 8 threads get 4 each, instead of two
 * full teams fighting over 8 cores. */
static int active_calls = 0;

void fc_call_enter(void) { __atomic_fetch_add(&active_calls, 1, __ATOMIC_RELAXED); }

void fc_call_leave(void) { __atomic_fetch_sub(&active_calls, 1, __ATOMIC_RELAXED); }

void fc_set_num_threads(int n) { num_threads = n < 1 ? 1 : n; }

int fc_get_num_threads(void) {
#ifdef _OPENMP
    return num_threads;
#else
    return 1;
#endif
}

int fc_have_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Threads for a parallel loop of `tasks` independent tasks of about
 * `flops_per_task` each: this call's share of the budget, never more than
 * there are tasks, and one thread
 * below ~1 MFLOP in all, where waking a team costs more than it saves
 * (a team start is ~5-20 us; 1 MFLOP is ~10-20 us on one core). Inside an
 * active parallel region the answer is 1, so regions never nest. */
int fc_threads_for(int64_t tasks, double flops_per_task) {
    const int callers = __atomic_load_n(&active_calls, __ATOMIC_RELAXED);
    int t = fc_get_num_threads() / (callers > 1 ? callers : 1);
    if (t < 1) t = 1;
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
#endif
    if ((double)tasks * flops_per_task < 1e6) return 1;
    if (tasks < t) t = (int)(tasks < 1 ? 1 : tasks);
    return t;
}
