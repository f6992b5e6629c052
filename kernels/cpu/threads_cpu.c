/* threads_cpu.c — how many OpenMP threads the CPU backend uses, and the load-adaptive choice.
 *
 * Why: every parallel region ends in a barrier. On a machine where other processes hold cores (a
 * shared workstation, a CI runner, a second sweep), a barrier waits until every thread of the team
 * has been scheduled again, which costs a scheduler time slice (milliseconds) per region. A fleet
 * that enters thousands of regions per second then runs many times slower with all cores than with
 * one (measured: 1.9x slower with 2 threads than with 1 on this 2-core machine under a build load,
 * 18x in an earlier report). libgomp's dynamic teams (omp_set_dynamic) follow the 15-minute load
 * average, which counts qfleet's own threads and reacts far too late, so they do not help.
 *
 * What: with threads=0 (the default, "auto") the backend measures instead of guessing. At each
 * training iteration boundary (qf_cpu_threads_tick, called by env_step) it keeps a chosen team size
 * for a span of wall time, then probes: a short window at one thread, a short window at every core,
 * each timed per iteration; the faster wins (the current choice is kept unless the other is at
 * least 5% faster). Spans double while the choice holds (0.5 s up to 8 s) and restart at 0.5 s when
 * it changes, so a change in load is followed within seconds and the probes cost at most a few
 * percent. threads=N > 0 fixes the team size (no probing).
 *
 * Results do not depend on the team size (every parallel loop gives each run's or network's work to
 * one thread; tested in test_batch.cc and test_learn.cc), so switching it mid-run changes speed
 * only, never a number. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <time.h>

#include "../backend.h"

#define PROBE_MIN_S 0.02   /* a probe window lasts at least this long ...                 */
#define PROBE_MIN_ITERS 3  /* ... and at least this many iterations                       */
#define SPAN_MIN_S 0.5     /* wall time between probes: from this ...                     */
#define SPAN_MAX_S 8.0     /* ... doubling up to this while the choice holds              */
#define WARMUP_S 0.05      /* first-touch and cache warm-up are not measured              */
#define KEEP_MARGIN 1.05   /* the other choice must be this much faster to replace the current */

enum { ST_OFF, ST_WARMUP, ST_KEEP, ST_PROBE_ONE, ST_PROBE_ALL };

static struct {
    int state;
    int all;           /* team size "every core" (or the user's n) */
    int cur;           /* team size in use */
    double mark;       /* wall time when the current state began */
    long long iters;   /* iterations since mark */
    double span;       /* current KEEP span, s */
    double per_one;    /* s per iteration measured at one thread */
    qf_cpu_thread_stats stats;
} T = {ST_OFF, 1, 1, 0, 0, SPAN_MIN_S, 0, {0, 0, 0, 0}};

static int fixed; /* threads=N > 0 given */

int qf_cpu_threads_fixed(void) { return fixed && T.all > 1; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void use(int n) {
    T.cur = n;
    omp_set_num_threads(n);
}

int qf_cpu_threads(void) { return omp_get_max_threads(); }

void qf_cpu_set_threads(int n) {
    T.stats = (qf_cpu_thread_stats){0, 0, 0, 0};
    fixed = n > 0;
    if (n > 0) {
        T.state = ST_OFF;
        T.all = n;
        use(n);
        return;
    }
    T.all = omp_get_num_procs();
    use(T.all);
    T.state = T.all > 1 ? ST_WARMUP : ST_OFF;
    T.mark = now_s();
    T.iters = 0;
    T.span = SPAN_MIN_S;
}

qf_cpu_thread_stats qf_cpu_thread_stats_get(void) {
    qf_cpu_thread_stats s = T.stats;
    s.current = T.cur;
    return s;
}

void qf_cpu_threads_tick(void) {
    if (T.state == ST_OFF) return;
    const double t = now_s(), dt = t - T.mark;
    T.iters++;
    switch (T.state) {
    case ST_WARMUP:
        if (dt < WARMUP_S) return;
        T.state = ST_KEEP;
        T.span = 0; /* probe at once: the first choice is measured, not assumed */
        break;
    case ST_KEEP:
        if (dt < T.span) return;
        T.state = ST_PROBE_ONE;
        use(1);
        break;
    case ST_PROBE_ONE:
        if (dt < PROBE_MIN_S || T.iters < PROBE_MIN_ITERS) return;
        T.per_one = dt / (double)T.iters;
        T.state = ST_PROBE_ALL;
        use(T.all);
        break;
    case ST_PROBE_ALL: {
        if (dt < PROBE_MIN_S || T.iters < PROBE_MIN_ITERS) return;
        const double per_all = dt / (double)T.iters;
        const int prev = T.stats.probes ? T.stats.current_choice : T.all;
        int pick = prev;
        if (prev == T.all && T.per_one * KEEP_MARGIN < per_all) pick = 1;
        if (prev == 1 && per_all * KEEP_MARGIN < T.per_one) pick = T.all;
        T.stats.probes++;
        T.stats.picked_one += pick == 1;
        T.stats.current_choice = pick;
        T.span = pick == prev && T.stats.probes > 1 ? (2 * T.span > SPAN_MAX_S ? SPAN_MAX_S : 2 * T.span)
                                                    : SPAN_MIN_S;
        use(pick);
        T.state = ST_KEEP;
        break;
    }
    default:
        return;
    }
    T.mark = now_s();
    T.iters = 0;
}
