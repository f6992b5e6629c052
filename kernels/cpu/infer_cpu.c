/* infer_cpu.c — control as inference and MaxEnt IRL on the CPU: the reference for
 * kernels/cuda/infer_cuda.cu. The per-element math is kernels/infer_ops.h (shared with the CUDA
 * kernels and the solver); this file owns the loops.
 *
 * Every value is computed by the same function in the same order whoever computes it, so the
 * results do not depend on the thread count or on which other runs share the call: runs are
 * shared among threads when there are at least as many runs as threads, else the states of each
 * backward step (the forward pass and the log-likelihood are one run per thread).
 *
 * Speed (bench irl; docs/design-notes.md): each run's outcomes are tabulated once per call
 * (qf_infer_outcome_table), and each step runs in phases over all states: Q rows from the table,
 * then one exp over every (s, a) and one log over every s through glibc's vector math library
 * (libmvec, the x86-64 vector function ABI: _ZGVdN4v_exp on AVX2, _ZGVeN8v_exp on AVX-512), then
 * the sums. Every element goes through the same vector function (a short tail is padded), so a
 * value does not depend on its position, the thread count or the other runs; the vector exp and
 * log differ from the scalar libm ones by at most a few ulps (glibc's libmvec-ulps), within every
 * test's tolerance. Without AVX2 or glibc (a portable build) the scalar exp and log are used. */
#include <math.h>
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

/* ---- exp and log over arrays: libmvec's vector variants where the build has them ------------- */
#if defined(__x86_64__) && defined(__GLIBC__) && (defined(__AVX512F__) || defined(__AVX2__))
#include <immintrin.h>
#if defined(__AVX512F__)
#define QF_VW 8
typedef __m512d qf_vd;
__m512d _ZGVeN8v_exp(__m512d x);
__m512d _ZGVeN8v_log(__m512d x);
#define QF_VEXP _ZGVeN8v_exp
#define QF_VLOG _ZGVeN8v_log
#define QF_VLOAD _mm512_loadu_pd
#define QF_VSTORE _mm512_storeu_pd
#else
#define QF_VW 4
typedef __m256d qf_vd;
__m256d _ZGVdN4v_exp(__m256d x);
__m256d _ZGVdN4v_log(__m256d x);
#define QF_VEXP _ZGVdN4v_exp
#define QF_VLOG _ZGVdN4v_log
#define QF_VLOAD _mm256_loadu_pd
#define QF_VSTORE _mm256_storeu_pd
#endif
/* x[i] = exp(x[i]) (is_log 0) or log(x[i]) (is_log 1) for i < n, every element through the vector
 * function (the tail padded with ones). */
static void vec_math(double *x, size_t n, int is_log) {
    size_t i = 0;
    for (; i + QF_VW <= n; i += QF_VW) {
        const qf_vd y = QF_VLOAD(x + i);
        QF_VSTORE(x + i, is_log ? QF_VLOG(y) : QF_VEXP(y));
    }
    if (i < n) {
        double t[QF_VW];
        for (size_t j = 0; j < QF_VW; j++) t[j] = i + j < n ? x[i + j] : 1.0;
        const qf_vd y = QF_VLOAD(t);
        QF_VSTORE(t, is_log ? QF_VLOG(y) : QF_VEXP(y));
        for (size_t j = 0; i + j < n; j++) x[i + j] = t[j];
    }
}
#else
static void vec_math(double *x, size_t n, int is_log) {
    for (size_t i = 0; i < n; i++) x[i] = is_log ? log(x[i]) : exp(x[i]);
}
#endif

/* Scratch of one thread for one run: the run's outcome table (kernels/infer_ops.h) and the
 * per-step arrays. One block per thread, reused for every run it takes. */
typedef struct infer_scratch {
    qf_outcome *tab_o;   /* [S][A][QF_MAX_OUTCOMES]                             */
    double *q, *x;       /* [S][A]: Q_t rows; exp arguments, then their exp      */
    double *m, *sum;     /* [S]: row maximum; sum of exps, then its log          */
    double *cur, *nxt;   /* [S] each: the forward pass's state distributions     */
    uint8_t *tab_n;      /* [S][A]                                               */
    uint8_t *live;       /* [S]: 1 when s has transitions                        */
} infer_scratch;

static size_t scratch_bytes(const qf_infer_problem *prob) {
    const size_t S = (size_t)prob->n_states, SA = S * (size_t)prob->n_actions;
    return sizeof(qf_outcome) * SA * QF_MAX_OUTCOMES + sizeof(double) * (2 * SA + 4 * S) + ((SA + S + 63) & ~(size_t)63);
}

static infer_scratch scratch_at(char *blk, const qf_infer_problem *prob, int thread) {
    const size_t S = (size_t)prob->n_states, SA = S * (size_t)prob->n_actions;
    char *p = blk + (size_t)thread * scratch_bytes(prob);
    infer_scratch sc;
    sc.tab_o = (qf_outcome *)p;
    p += sizeof(qf_outcome) * SA * QF_MAX_OUTCOMES;
    sc.q = (double *)p;
    sc.x = sc.q + SA;
    sc.m = sc.x + SA;
    sc.sum = sc.m + S;
    sc.cur = sc.sum + S;
    sc.nxt = sc.cur + S;
    sc.tab_n = (uint8_t *)(sc.nxt + S);
    sc.live = sc.tab_n + SA;
    return sc;
}

static char *scratch_alloc(qf_backend *b, const qf_infer_problem *prob, int threads, const char *what) {
    char *blk = (char *)malloc(scratch_bytes(prob) * (size_t)threads);
    if (!blk)
        snprintf(b->err, sizeof b->err, "infer %s (cpu): out of memory for %d outcome tables of %d x %d", what,
                 threads, (int)prob->n_states, (int)prob->n_actions);
    return blk;
}

/* Q_t rows of states [s0, s1) into sc->q, and the live flags. */
static void q_rows(const qf_infer_problem *prob, int32_t r, const infer_scratch *sc, const double *v_next,
                   int32_t s0, int32_t s1) {
    const int32_t A = prob->n_actions;
    for (int32_t s = s0; s < s1; s++)
        sc->live[s] = (uint8_t)qf_infer_q_row(prob, r, s, sc->tab_o, sc->tab_n, v_next, sc->q + (size_t)s * A);
}

/* V_t(s) = m + alpha log sum_a exp((Q_t(s, a) - m) / alpha), m = max_a Q_t(s, a), for s in [s0, s1)
 * from sc->q (qf_soft_value_d's operations in its order; 0 for a state without transitions; the
 * hard max when alpha == 0). */
static void soft_values(const qf_infer_problem *prob, int32_t r, const infer_scratch *sc, double *v_t, int32_t s0,
                        int32_t s1) {
    const int32_t A = prob->n_actions;
    const double alpha = prob->alpha[r];
    for (int32_t s = s0; s < s1; s++) {
        const double *q = sc->q + (size_t)s * A;
        double m = 0.0;
        for (int32_t a = 0; a < A; a++) m = (a == 0 || q[a] > m) ? q[a] : m;
        sc->m[s] = m;
        if (alpha != 0.0)
            for (int32_t a = 0; a < A; a++) sc->x[(size_t)s * A + a] = (q[a] - m) / alpha;
    }
    if (alpha == 0.0) {
        for (int32_t s = s0; s < s1; s++) v_t[s] = sc->live[s] ? sc->m[s] : 0.0;
        return;
    }
    vec_math(sc->x + (size_t)s0 * A, (size_t)(s1 - s0) * A, 0);
    for (int32_t s = s0; s < s1; s++) {
        double sum = 0.0;
        for (int32_t a = 0; a < A; a++) sum = sum + sc->x[(size_t)s * A + a];
        sc->sum[s] = sum;
    }
    vec_math(sc->sum + s0, (size_t)(s1 - s0), 1);
    for (int32_t s = s0; s < s1; s++) v_t[s] = sc->live[s] ? sc->m[s] + alpha * sc->sum[s] : 0.0;
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
#pragma omp parallel if (parallel_states && S >= QF_INFER_PARALLEL_STATES)
        {
            const int nt = omp_get_num_threads(), id = omp_get_thread_num();
            const int32_t s0 = (int32_t)((int64_t)S * id / nt), s1 = (int32_t)((int64_t)S * (id + 1) / nt);
            q_rows(prob, r, sc, v_next, s0, s1);
            soft_values(prob, r, sc, v_t, s0, s1);
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

/* The forward pass of run r: qf_infer_forward_run_tab's operations, with each step's policy
 * exp((Q_t(s, a) - V_t(s)) / alpha) taken for every (s, a) at once (vec_math). */
static void forward_run(const qf_infer_problem *prob, int32_t r, const double *v, const double *start, double *marg,
                        double *occ, const infer_scratch *sc) {
    const int32_t S = prob->n_states, A = prob->n_actions, T = prob->T;
    const double alpha = prob->alpha[r];
    double w[QF_MAX_OUTCOMES];
    int32_t next[QF_MAX_OUTCOMES];
    double *cur = sc->cur, *nxt = sc->nxt;
    qf_infer_outcome_table(prob, r, sc->tab_o, sc->tab_n);
    /* the start distribution: as qf_infer_forward_run_tab (its T = 0 pass does only this) */
    {
        qf_infer_problem p0 = *prob;
        p0.T = 0;
        qf_infer_forward_run_tab(&p0, r, v, start, cur, nxt, NULL, NULL, sc->tab_o, sc->tab_n);
    }
    if (occ)
        for (int64_t i = 0; i < (int64_t)S * A; i++) occ[i] = 0.0;
    for (int32_t t = 0; t < T; t++) {
        const double *v_t = v + (size_t)t * S, *v_next = v + (size_t)(t + 1) * S;
        if (marg)
            for (int32_t s = 0; s < S; s++) marg[(size_t)t * S + s] = cur[s];
        for (int32_t s = 0; s < S; s++) {
            double *x = sc->x + (size_t)s * A;
            if (cur[s] == 0.0) {
                for (int32_t a = 0; a < A; a++) x[a] = 0.0;
                continue;
            }
            qf_infer_q_row(prob, r, s, sc->tab_o, sc->tab_n, v_next, sc->q + (size_t)s * A);
            for (int32_t a = 0; a < A; a++) x[a] = (sc->q[(size_t)s * A + a] - v_t[s]) / alpha;
        }
        vec_math(sc->x, (size_t)S * A, 0);
        for (int32_t s = 0; s < S; s++) nxt[s] = 0.0;
        for (int32_t s = 0; s < S; s++) {
            const double d = cur[s];
            if (d == 0.0) continue;
            const double *r_row = prob->reward ? prob->reward + ((size_t)r * S + (size_t)s) * A : NULL;
            for (int32_t a = 0; a < A; a++) {
                const double da = d * sc->x[(size_t)s * A + a];
                if (occ) occ[(size_t)s * A + a] += da;
                const int n = sc->tab_n[(size_t)s * A + a];
                qf_backup_weights_outcomes(sc->tab_o + ((size_t)s * A + a) * QF_MAX_OUTCOMES, n, alpha, prob->backup,
                                           r_row, a, v_next, sc->q[(size_t)s * A + a], w, next);
                for (int j = 0; j < n; j++) nxt[next[j]] += da * w[j];
            }
        }
        for (int32_t s = 0; s < S; s++) cur[s] = nxt[s];
    }
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
        for (int32_t r = 0; r < R; r++)
            forward_run(prob, r, v + (size_t)r * (size_t)(T + 1) * S, start ? start + (size_t)r * S : NULL,
                        marg ? marg + (size_t)r * T * S : NULL, occ ? occ + (size_t)r * S * A : NULL, &sc);
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
    qf_cpu_threads_tick(); /* once per IRL iteration: the auto team size's clock, as env_step's */
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
