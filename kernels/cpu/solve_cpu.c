/* solve_cpu.c — the exact solver on the CPU: soft / hard value iteration for R tabular problems at
 * once, the reference for kernels/cuda/solve_cuda.cu. The per-state math is qf_solve_state
 * (kernels/solve_ops.h), shared with the CUDA kernel; this file owns the sweeps and the bookkeeping.
 *
 * Sweeps are Jacobi updates (new values from the previous sweep's). A run stops (and is no longer
 * touched) after the first sweep in which every |V_new(s) - V(s)| < tol, so its result does not
 * depend on the other runs of the problem. Run r's values alternate between v (even sweep counts)
 * and a scratch buffer (odd); at the end the latest are copied into v. q holds the Q of each run's
 * last sweep, so v is exactly its (soft) max. Every (run, sweep, state) value is computed the same
 * way whoever computes it, so the results do not depend on the thread count. OpenMP shares whole
 * runs among threads when there are enough runs (no barrier per sweep), else the states of each
 * sweep when a sweep is big enough to pay for the barrier (on a busy machine a parallel region
 * costs far more than a sweep of a few thousand states). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend.h"
#include "../solve_ops.h"

/* States per sweep below which one thread does the sweep alone. */
#define QF_SOLVE_PARALLEL_STATES 32768

/* Value iteration of run r until it converges or max_iters; returns the sweeps done. */
static int32_t solve_run(const qf_solve_problem *prob, int32_t r, double *q, double *v,
                         double *scratch, int parallel_states) {
    const int32_t S = prob->n_states, A = prob->n_actions;
    const size_t base = (size_t)r * (size_t)S;
    const qf_env_params *p = &prob->params[r];
    const uint32_t k0 = prob->keys[2 * r], k1 = prob->keys[2 * r + 1];
    const double gamma = prob->gamma[r], alpha = prob->alpha[r], tol = prob->tol;
    int32_t sweeps = 0;
    while (sweeps < prob->max_iters) {
        const double *cur = ((sweeps & 1) ? scratch : v) + base;
        double *nxt = ((sweeps & 1) ? v : scratch) + base;
        int changed = 0;
#pragma omp parallel for schedule(static) reduction(|: changed) \
    if (parallel_states && S >= QF_SOLVE_PARALLEL_STATES)
        for (int32_t s = 0; s < S; s++) {
            const double vn = qf_solve_state(prob->kind, p, k0, k1, gamma, alpha, s, A, cur,
                                              q + (base + (size_t)s) * (size_t)A);
            nxt[s] = vn;
            changed |= !(fabs(vn - cur[s]) < tol);
        }
        sweeps += 1;
        if (!changed) break;
    }
    if (sweeps & 1) memcpy(v + base, scratch + base, (size_t)S * sizeof(double));
    return sweeps;
}

int qf_solve_cpu(qf_backend *b, const qf_solve_problem *prob, double *q, double *v, int32_t *iters) {
    if (qf_solve_check_problem(prob, b->err, sizeof b->err)) return QF_ERR;
    const int32_t R = prob->R, S = prob->n_states, A = prob->n_actions;
    for (int32_t r = 0; r < R; r++) {
        const int code = qf_solve_check_run(prob->kind, &prob->params[r], S, A, prob->gamma[r],
                                            prob->alpha[r]);
        if (code) {
            qf_solve_run_message(code, r, prob->kind, &prob->params[r], prob, prob->gamma[r],
                                 prob->alpha[r], b->err, sizeof b->err);
            return QF_ERR;
        }
    }
    const size_t RS = (size_t)R * (size_t)S;
    double *scratch = (double *)malloc(RS * sizeof(double));
    int32_t *sweeps = (int32_t *)malloc((size_t)R * sizeof(int32_t));
    if (!scratch || !sweeps) {
        free(scratch);
        free(sweeps);
        snprintf(b->err, sizeof b->err, "solve (cpu): out of memory for %zu values", RS);
        return QF_ERR;
    }
    memset(v, 0, RS * sizeof(double));
    memset(q, 0, RS * (size_t)A * sizeof(double));
    if (R >= omp_get_max_threads()) {
#pragma omp parallel for schedule(dynamic, 1)
        for (int32_t r = 0; r < R; r++) sweeps[r] = solve_run(prob, r, q, v, scratch, 0);
    } else {
        for (int32_t r = 0; r < R; r++) sweeps[r] = solve_run(prob, r, q, v, scratch, 1);
    }
    int32_t most = 0;
    for (int32_t r = 0; r < R; r++) most = sweeps[r] > most ? sweeps[r] : most;
    *iters = most;
    free(scratch);
    free(sweeps);
    return QF_OK;
}
