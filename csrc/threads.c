/* The thread budget shared by every kernel. */
#include "common.h"
#include "fastconv.h"

static int num_threads = 1;

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
 * `flops_per_task` each: never more than there are tasks, and one thread
 * below ~1 MFLOP in all, where waking a team costs more than it saves
 * (a team start is ~5-20 us; 1 MFLOP is ~10-20 us on one core). Inside an
 * active parallel region the answer is 1, so regions never nest. */
int fc_threads_for(int64_t tasks, double flops_per_task) {
    int t = fc_get_num_threads();
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
#endif
    if ((double)tasks * flops_per_task < 1e6) return 1;
    if (tasks < t) t = (int)(tasks < 1 ? 1 : tasks);
    return t;
}
