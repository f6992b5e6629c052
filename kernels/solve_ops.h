/* solve_ops.h — the per-element work of the exact solver (soft / hard value iteration), written once
 * and called by the CPU loop (kernels/cpu/solve_cpu.c) and the CUDA kernel (kernels/cuda/
 * solve_cuda.cu), like env_batch.h for stepping.
 *
 * One sweep is a Jacobi update: every state's new value comes from the previous sweep's values, so
 * the two backends produce the same iterates (bit for bit with alpha = 0; with alpha > 0 up to the
 * last-bit differences of exp and log between the C library and CUDA). For state s of a run:
 *   Q(s, a) = sum_o p_o * (r_o + gamma * (1 - terminal_o) * V(s'_o))
 *   V(s)    = max_a Q(s, a)                                         when alpha == 0
 *           = m + alpha * log(sum_a exp((Q(s, a) - m) / alpha)), m = max_a Q(s, a), when alpha > 0
 * States without transitions (DeepSea's null state) have Q = 0 and V = 0. All in double. */
#ifndef QF_SOLVE_OPS_H
#define QF_SOLVE_OPS_H
#include "../envs/tabular.h"
#include "infer_ops.h"
#include "solve.h"

#include <stdio.h>

/* Why a run's problem is invalid (0: it is fine). */
enum {
    QF_SOLVE_OK = 0,
    QF_SOLVE_BAD_STATES = 1,  /* qf_env_n_states of its parameters != n_states */
    QF_SOLVE_BAD_ACTIONS = 2, /* qf_env_n_actions of its parameters != n_actions */
    QF_SOLVE_BAD_GAMMA = 3,   /* gamma not in [0, 1] */
    QF_SOLVE_BAD_ALPHA = 4    /* alpha negative, infinite or NaN */
};

QF_HD static inline int qf_solve_check_run(int kind, const qf_env_params *p, int32_t n_states,
                                           int32_t n_actions, double gamma, double alpha) {
    if (qf_env_n_states(kind, p) != n_states) return QF_SOLVE_BAD_STATES;
    if (qf_env_n_actions(kind, p) != n_actions) return QF_SOLVE_BAD_ACTIONS;
    if (!(gamma >= 0.0 && gamma <= 1.0)) return QF_SOLVE_BAD_GAMMA;
    if (!(alpha >= 0.0 && alpha <= 1.7976931348623157e308)) return QF_SOLVE_BAD_ALPHA;
    return QF_SOLVE_OK;
}

/* One state of one run: writes Q(s, .) into q_row[0 .. A) and returns the new V(s).
 * v_old: the run's values of the previous sweep, [n_states]. The variational backup of
 * kernels/infer_ops.h with the discount gamma (one code path with `qfleet infer`). */
QF_HD static inline double qf_solve_state(int kind, const qf_env_params *p, uint32_t k0, uint32_t k1,
                                          double gamma, double alpha, int32_t s, int32_t n_actions,
                                          const double *v_old, double *q_row) {
    for (int32_t a = 0; a < n_actions; a++) {
        if (!qf_backup_q(kind, p, k0, k1, gamma, alpha, QF_BACKUP_VARIATIONAL, NULL, s, a, v_old,
                         &q_row[a])) { /* no transitions: an absorbing terminal state, worth 0 */
            for (int32_t b = 0; b < n_actions; b++) q_row[b] = 0.0;
            return 0.0;
        }
    }
    return qf_soft_value_d(q_row, n_actions, alpha);
}

/* ---- host side: checks and messages (snprintf; never called from device code) ---------------- */

/* Checks of the problem's scalar fields (host side). Returns 0, or -1 with one line in msg. */
static inline int qf_solve_check_problem(const qf_solve_problem *prob, char *msg, size_t len) {
    if (!qf_env_tabular(prob->kind)) {
        snprintf(msg, len, "solve: environment kind %d is not tabular (allowed: deep_sea, chain, bandit, gridworld)",
                 (int)prob->kind);
        return -1;
    }
    if (prob->R < 1 || prob->n_states < 1 || prob->n_actions < 1) {
        snprintf(msg, len, "solve: need R >= 1, n_states >= 1 and n_actions >= 1 (got R=%d, n_states=%d, "
                           "n_actions=%d)", (int)prob->R, (int)prob->n_states, (int)prob->n_actions);
        return -1;
    }
    if (prob->max_iters < 1 || !(prob->tol >= 0.0)) {
        snprintf(msg, len, "solve: need max_iters >= 1 and tol >= 0 (got max_iters=%d, tol=%g)",
                 (int)prob->max_iters, prob->tol);
        return -1;
    }
    return 0;
}

/* The message for a run that failed qf_solve_check_run with code `code`. */
static inline void qf_solve_run_message(int code, int32_t r, int kind, const qf_env_params *p,
                                        const qf_solve_problem *prob, double gamma, double alpha,
                                        char *msg, size_t len) {
    switch (code) {
    case QF_SOLVE_BAD_STATES:
        snprintf(msg, len, "solve: run %d has %d states but the problem says n_states=%d", (int)r,
                 (int)qf_env_n_states(kind, p), (int)prob->n_states);
        break;
    case QF_SOLVE_BAD_ACTIONS:
        snprintf(msg, len, "solve: run %d has %d actions but the problem says n_actions=%d", (int)r,
                 (int)qf_env_n_actions(kind, p), (int)prob->n_actions);
        break;
    case QF_SOLVE_BAD_GAMMA:
        snprintf(msg, len, "solve: run %d has gamma=%g (allowed: [0, 1])", (int)r, gamma);
        break;
    default:
        snprintf(msg, len, "solve: run %d has alpha=%g (allowed: a finite number >= 0; 0 = hard max)",
                 (int)r, alpha);
        break;
    }
}

#endif /* QF_SOLVE_OPS_H */
