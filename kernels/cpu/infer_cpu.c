/* infer_cpu.c — control as inference and MaxEnt IRL on the CPU: the reference for
 * kernels/cuda/infer_cuda.cu. The per-element math is kernels/infer_ops.h (shared with the CUDA
 * kernels and the solver); this file owns the loops.
 *
 * Every value is computed by the same function in the same order whoever computes it, so the
 * results do not depend on the thread count or on which other runs share the call: runs are
 * shared among threads when there are at least as many runs as threads, else the states of each
 * backward step (the forward pass and the log-likelihood are one run per thread). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend.h"
#include "../infer_ops.h"

#define QF_INFER_QROW (QF_MAX_ARMS > QF_GRID_ACTIONS ? QF_MAX_ARMS : QF_GRID_ACTIONS)
/* States per backward step below which one thread does the step alone. */
#define QF_INFER_PARALLEL_STATES 4096

static int check(qf_backend *b, const qf_infer_problem *prob, int need_policy) {
    if (qf_infer_check_problem(prob, b->err, sizeof b->err)) return QF_ERR;
    for (int32_t r = 0; r < prob->R; r++) {
        const int code = qf_infer_check_run(prob, &prob->params[r], prob->alpha[r], need_policy);
        if (code) {
            qf_infer_run_message(code, r, prob, &prob->params[r], prob->alpha[r], b->err, sizeof b->err);
            return QF_ERR;
        }
    }
    return QF_OK;
}

/* Scratch of one thread for one run: the run's outcome table (kernels/infer_ops.h) and, for the
 * forward pass, two state vectors. One block per thread, reused for every run it takes. */
typedef struct infer_scratch {
    qf_outcome *tab_o; /* [S][A][QF_MAX_OUTCOMES] */
    uint8_t *tab_n;    /* [S][A]                  */
    double *cur, *nxt; /* [S] each                */
} infer_scratch;

static size_t scratch_bytes(const qf_infer_problem *prob) {
    const size_t SA = (size_t)prob->n_states * (size_t)prob->n_actions;
    return sizeof(qf_outcome) * SA * QF_MAX_OUTCOMES + sizeof(double) * 2 * (size_t)prob->n_states + ((SA + 7) & ~(size_t)7);
}

static infer_scratch scratch_at(char *blk, const qf_infer_problem *prob, int thread) {
    const size_t SA = (size_t)prob->n_states * (size_t)prob->n_actions;
    char *p = blk + (size_t)thread * scratch_bytes(prob);
    infer_scratch sc;
    sc.tab_o = (qf_outcome *)p;
    p += sizeof(qf_outcome) * SA * QF_MAX_OUTCOMES;
    sc.cur = (double *)p;
    sc.nxt = sc.cur + prob->n_states;
    sc.tab_n = (uint8_t *)(sc.nxt + prob->n_states);
    return sc;
}

static char *scratch_alloc(qf_backend *b, const qf_infer_problem *prob, int threads, const char *what) {
    char *blk = (char *)malloc(scratch_bytes(prob) * (size_t)threads);
    if (!blk)
        snprintf(b->err, sizeof b->err, "infer %s (cpu): out of memory for %d outcome tables of %d x %d", what,
                 threads, (int)prob->n_states, (int)prob->n_actions);
    return blk;
}

/* V_t of run r for t = T-1 .. 0 (v: the run's [T+1][S]), from the run's outcome table in sc. */
static void backward_run(const qf_infer_problem *prob, int32_t r, double *v, const infer_scratch *sc,
                         int parallel_states) {
    const int32_t S = prob->n_states;
    qf_infer_outcome_table(prob, r, sc->tab_o, sc->tab_n);
    for (int32_t s = 0; s < S; s++) v[(size_t)prob->T * S + s] = 0.0;
    for (int32_t t = prob->T - 1; t >= 0; t--) {
        const double *v_next = v + (size_t)(t + 1) * S;
        double *v_t = v + (size_t)t * S;
#pragma omp parallel for schedule(static) if (parallel_states && S >= QF_INFER_PARALLEL_STATES)
        for (int32_t s = 0; s < S; s++) {
            double q_row[QF_INFER_QROW];
            v_t[s] = qf_infer_state_tab(prob, r, s, sc->tab_o, sc->tab_n, v_next, q_row);
        }
    }
}

static int cpu_infer_backward(qf_backend *b, const qf_infer_problem *prob, double *v) {
    if (check(b, prob, 0)) return QF_ERR;
    const int32_t R = prob->R;
    const size_t per_run = (size_t)(prob->T + 1) * (size_t)prob->n_states;
    const int threads = omp_get_max_threads();
    char *blk = scratch_alloc(b, prob, R >= threads ? threads : 1, "backward");
    if (!blk) return QF_ERR;
    if (R >= threads) {
#pragma omp parallel
        {
            const infer_scratch sc = scratch_at(blk, prob, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
            for (int32_t r = 0; r < R; r++) backward_run(prob, r, v + (size_t)r * per_run, &sc, 0);
        }
    } else {
        const infer_scratch sc = scratch_at(blk, prob, 0);
        for (int32_t r = 0; r < R; r++) backward_run(prob, r, v + (size_t)r * per_run, &sc, 1);
    }
    free(blk);
    return QF_OK;
}

static int cpu_infer_forward(qf_backend *b, const qf_infer_problem *prob, const double *v,
                             const double *start, double *marg, double *occ) {
    if (check(b, prob, 1)) return QF_ERR;
    const int32_t R = prob->R, S = prob->n_states, A = prob->n_actions, T = prob->T;
    const int threads = R > 1 ? omp_get_max_threads() : 1;
    char *blk = scratch_alloc(b, prob, threads, "forward");
    if (!blk) return QF_ERR;
#pragma omp parallel if (R > 1)
    {
        const infer_scratch sc = scratch_at(blk, prob, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int32_t r = 0; r < R; r++) {
            qf_infer_outcome_table(prob, r, sc.tab_o, sc.tab_n);
            qf_infer_forward_run_tab(prob, r, v + (size_t)r * (size_t)(T + 1) * S, start ? start + (size_t)r * S : NULL,
                                     sc.cur, sc.nxt, marg ? marg + (size_t)r * T * S : NULL,
                                     occ ? occ + (size_t)r * S * A : NULL, sc.tab_o, sc.tab_n);
        }
    }
    free(blk);
    return QF_OK;
}

static int cpu_infer_loglik(qf_backend *b, const qf_infer_problem *prob, const double *v,
                            const qf_demo_steps *demos, double *loglik) {
    if (check(b, prob, 1)) return QF_ERR;
    const size_t per_run = (size_t)(prob->T + 1) * (size_t)prob->n_states;
    for (int32_t r = 0; r < prob->R; r++)
        for (int32_t j = demos->offset[r]; j < demos->offset[r + 1]; j++)
            if (demos->t[j] < 0 || demos->t[j] >= prob->T || demos->state[j] < 0 ||
                demos->state[j] >= prob->n_states || demos->action[j] < 0 ||
                demos->action[j] >= prob->n_actions) {
                snprintf(b->err, sizeof b->err, "infer loglik: run %d step %d is (t=%d, s=%d, a=%d), outside "
                         "T=%d, S=%d, A=%d", (int)r, (int)j, (int)demos->t[j], (int)demos->state[j],
                         (int)demos->action[j], (int)prob->T, (int)prob->n_states, (int)prob->n_actions);
                return QF_ERR;
            }
#pragma omp parallel for schedule(dynamic, 1) if (prob->R > 1)
    for (int32_t r = 0; r < prob->R; r++)
        loglik[r] = qf_infer_demo_loglik_run(prob, r, v + (size_t)r * per_run, demos);
    return QF_OK;
}

static int cpu_feat_matvec(qf_backend *b, int32_t R, int32_t N, int32_t F, const double *feat,
                           int64_t feat_stride, const double *x, int transpose, double *y) {
    (void)b;
#pragma omp parallel for schedule(static) if ((int64_t)R * N * F >= QF_PAR_MIN_WORK)
    for (int32_t r = 0; r < R; r++) {
        const double *fr = feat + (int64_t)r * feat_stride;
        if (!transpose) {
            const double *xr = x + (size_t)r * F;
            double *yr = y + (size_t)r * N;
            for (int32_t i = 0; i < N; i++) {
                double acc = 0.0;
                for (int32_t k = 0; k < F; k++) acc += fr[(size_t)i * F + k] * xr[k];
                yr[i] = acc;
            }
        } else {
            const double *xr = x + (size_t)r * N;
            double *yr = y + (size_t)r * F;
            for (int32_t k = 0; k < F; k++) {
                double acc = 0.0;
                for (int32_t i = 0; i < N; i++) acc += fr[(size_t)i * F + k] * xr[i];
                yr[k] = acc;
            }
        }
    }
    return QF_OK;
}

static int cpu_irl_adam(qf_backend *b, int32_t R, int32_t F, const double *expert, const double *expected,
                        const double *alpha, const double *lr, int32_t t, double *m, double *v, double *psi,
                        double *grad) {
    (void)b;
    for (int32_t r = 0; r < R; r++)
        for (int32_t k = 0; k < F; k++) {
            const size_t i = (size_t)r * F + k;
            const double g = qf_irl_adam_one(expert[i], expected[i], alpha[r], lr[r], t, &m[i], &v[i], &psi[i]);
            if (grad) grad[i] = g;
        }
    return QF_OK;
}

void qf_cpu_infer_ops(qf_backend *b) {
    b->infer_backward = cpu_infer_backward;
    b->infer_forward = cpu_infer_forward;
    b->infer_loglik = cpu_infer_loglik;
    b->feat_matvec = cpu_feat_matvec;
    b->irl_adam = cpu_irl_adam;
}
