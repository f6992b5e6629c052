/* infer_ops.h — the per-element math of control as inference (kernels/infer.h), written once and
 * called by the CPU reference (kernels/cpu/infer_cpu.c), the CUDA twin (kernels/cuda/infer_cuda.cu),
 * the exact solver (kernels/solve_ops.h: soft value iteration is the variational backup) and the
 * host (policies for demonstrations and printing). All in double. */
#ifndef QF_INFER_OPS_H
#define QF_INFER_OPS_H
#include "../envs/tabular.h"
#include "infer.h"

/* Q(s, a) under a backup from next values v_next [S] into *q; returns the number of outcomes (0:
 * s has no transitions, *q untouched). gamma discounts V(s') (1 in the finite-horizon problems);
 * r_row: reward[s][.] replacing the outcomes' rewards, or NULL.
 *   variational: sum_o p_o (r_o + gamma [not terminal] V(s'_o))           (expected value)
 *   inference:   m + alpha log sum_o p_o exp((target_o - m) / alpha), m = max_o target_o
 * The variational sum is written exactly as the solver always computed it (same operations, same
 * order), so the solver's results are unchanged bit for bit. */
/* Q(s, a) from the n >= 1 outcomes o[] of (s, a) (qf_env_outcomes, or a table of them: the
 * CPU's outcome table below); see qf_backup_q for the arguments. */
QF_HD static inline double qf_backup_q_outcomes(const qf_outcome *o, int n, double gamma, double alpha,
                                                int backup, const double *r_row, int32_t a,
                                                const double *v_next) {
    if (backup == QF_BACKUP_VARIATIONAL) {
        /* one pass, no target array: the same operations in the same order as below (a stored
         * array read back as a vector stalled store-to-load forwarding: half the CPU time) */
        double acc = 0.0;
        for (int j = 0; j < n; j++) {
            double target = r_row ? r_row[a] : (double)o[j].reward;
            if (!o[j].terminal) target = target + gamma * v_next[o[j].next];
            acc = acc + o[j].prob * target;
        }
        return acc;
    }
    double target[QF_MAX_OUTCOMES], m = 0.0;
    for (int j = 0; j < n; j++) {
        target[j] = r_row ? r_row[a] : (double)o[j].reward;
        if (!o[j].terminal) target[j] = target[j] + gamma * v_next[o[j].next];
        m = (j == 0 || target[j] > m) ? target[j] : m;
    }
    double sum = 0.0;
    for (int j = 0; j < n; j++) sum = sum + o[j].prob * exp((target[j] - m) / alpha);
    return m + alpha * log(sum);
}

/* Q(s, a) under a backup from next values v_next [S] into *q; returns the number of outcomes (0:
 * s has no transitions, *q untouched). gamma discounts V(s') (1 in the finite-horizon problems);
 * r_row: reward[s][.] replacing the outcomes' rewards, or NULL.
 *   variational: sum_o p_o (r_o + gamma [not terminal] V(s'_o))           (expected value)
 *   inference:   m + alpha log sum_o p_o exp((target_o - m) / alpha), m = max_o target_o
 * The variational sum is written exactly as the solver always computed it (same operations, same
 * order), so the solver's results are unchanged bit for bit. */
QF_HD static inline int qf_backup_q(int kind, const qf_env_params *p, uint32_t k0, uint32_t k1,
                                    double gamma, double alpha, int backup, const double *r_row,
                                    int32_t s, int32_t a, const double *v_next, double *q) {
    qf_outcome o[QF_MAX_OUTCOMES];
    const int n = r_row ? qf_env_outcomes_no_reward(kind, p, k0, k1, s, a, o) : qf_env_outcomes(kind, p, k0, k1, s, a, o);
    if (n == 0) return 0;
    *q = qf_backup_q_outcomes(o, n, gamma, alpha, backup, r_row, a, v_next);
    return n;
}

/* The outcome weights of the forward pass for (s, a) with Q value q from its n outcomes o[]: w_o =
 * p_o (variational) or the posterior p_o exp((target_o - q) / alpha) (inference; they sum to 1),
 * next states into next[], terminal outcomes get weight 0 (the episode leaves). */
QF_HD static inline void qf_backup_weights_outcomes(const qf_outcome *o, int n, double alpha, int backup,
                                                    const double *r_row, int32_t a, const double *v_next,
                                                    double q, double *w, int32_t *next) {
    for (int j = 0; j < n; j++) {
        next[j] = o[j].next;
        if (o[j].terminal) {
            w[j] = 0.0;
        } else if (backup == QF_BACKUP_VARIATIONAL) {
            w[j] = o[j].prob;
        } else {
            const double target = (r_row ? r_row[a] : (double)o[j].reward) + v_next[o[j].next];
            w[j] = o[j].prob * exp((target - q) / alpha);
        }
    }
}

/* qf_backup_weights_outcomes on the outcomes of (s, a) from the env; returns their number. */
QF_HD static inline int qf_backup_weights(int kind, const qf_env_params *p, uint32_t k0, uint32_t k1,
                                          double alpha, int backup, const double *r_row, int32_t s,
                                          int32_t a, const double *v_next, double q, double *w,
                                          int32_t *next) {
    qf_outcome o[QF_MAX_OUTCOMES];
    const int n = r_row ? qf_env_outcomes_no_reward(kind, p, k0, k1, s, a, o) : qf_env_outcomes(kind, p, k0, k1, s, a, o);
    qf_backup_weights_outcomes(o, n, alpha, backup, r_row, a, v_next, q, w, next);
    return n;
}

/* Soft maximum of q_row[0 .. A): m + alpha log sum_a exp((q_a - m) / alpha), m = max; the hard max
 * when alpha == 0. */
QF_HD static inline double qf_soft_value_d(const double *q_row, int32_t n_actions, double alpha) {
    double m = 0.0;
    for (int32_t a = 0; a < n_actions; a++) m = (a == 0 || q_row[a] > m) ? q_row[a] : m;
    if (alpha == 0.0) return m;
    double sum = 0.0;
    for (int32_t a = 0; a < n_actions; a++) sum = sum + exp((q_row[a] - m) / alpha);
    return m + alpha * log(sum);
}

/* ---- the outcome table: the outcomes of every (s, a) of one run, computed once per call ------
 * qf_env_outcomes recomputes probabilities and rewards from the env parameters on every call;
 * a backward or forward pass asks for the same T times. The table holds them once:
 * o [S][A][QF_MAX_OUTCOMES] and n [S][A] (the count, 0: s has no transitions). Everything below
 * takes the table or NULL (then the outcomes come from the env on every use, as on the device);
 * the values are the same bits either way. */
QF_HD static inline void qf_infer_outcome_table(const qf_infer_problem *prob, int32_t r, qf_outcome *o,
                                                uint8_t *n) {
    const int32_t S = prob->n_states, A = prob->n_actions;
    const qf_env_params *p = &prob->params[r];
    const uint32_t k0 = prob->keys[2 * r], k1 = prob->keys[2 * r + 1];
    for (int32_t s = 0; s < S; s++)
        for (int32_t a = 0; a < A; a++) {
            qf_outcome *os = o + ((size_t)s * A + a) * QF_MAX_OUTCOMES;
            n[(size_t)s * A + a] = (uint8_t)(prob->reward ? qf_env_outcomes_no_reward(prob->kind, p, k0, k1, s, a, os)
                                                          : qf_env_outcomes(prob->kind, p, k0, k1, s, a, os));
        }
}

/* Q_t(s, .) of one state of run r into q_row [A] from v_next = V_{t+1} [S]; tab_o, tab_n: the run's
 * outcome table or NULL. Returns 0 (and a zero row) for a state without transitions, else 1. */
QF_HD static inline int qf_infer_q_row(const qf_infer_problem *prob, int32_t r, int32_t s, const qf_outcome *tab_o,
                                       const uint8_t *tab_n, const double *v_next, double *q_row) {
    const int32_t A = prob->n_actions;
    const qf_env_params *p = &prob->params[r];
    const double alpha = prob->alpha[r];
    const double *r_row = prob->reward ? prob->reward + ((size_t)r * prob->n_states + (size_t)s) * A : NULL;
    for (int32_t a = 0; a < A; a++) {
        qf_outcome local[QF_MAX_OUTCOMES];
        const qf_outcome *o = local;
        int n;
        if (tab_o) {
            o = tab_o + ((size_t)s * A + a) * QF_MAX_OUTCOMES;
            n = tab_n[(size_t)s * A + a];
        } else {
            n = r_row ? qf_env_outcomes_no_reward(prob->kind, p, prob->keys[2 * r], prob->keys[2 * r + 1], s, a, local)
                      : qf_env_outcomes(prob->kind, p, prob->keys[2 * r], prob->keys[2 * r + 1], s, a, local);
        }
        if (n == 0) {
            for (int32_t b = 0; b < A; b++) q_row[b] = 0.0;
            return 0;
        }
        q_row[a] = qf_backup_q_outcomes(o, n, 1.0, alpha, prob->backup, r_row, a, v_next);
    }
    return 1;
}

/* One state of one run at one step: Q_t(s, .) into q_row [A], returns V_t(s) (0 and a zero row
 * for a state without transitions). v_next: V_{t+1} [S] of the run; tab_o, tab_n: its outcome
 * table or NULL. */
QF_HD static inline double qf_infer_state_tab(const qf_infer_problem *prob, int32_t r, int32_t s,
                                              const qf_outcome *tab_o, const uint8_t *tab_n,
                                              const double *v_next, double *q_row) {
    if (!qf_infer_q_row(prob, r, s, tab_o, tab_n, v_next, q_row)) return 0.0;
    return qf_soft_value_d(q_row, prob->n_actions, prob->alpha[r]);
}

/* qf_infer_state_tab without a table. */
QF_HD static inline double qf_infer_state(const qf_infer_problem *prob, int32_t r, int32_t s,
                                          const double *v_next, double *q_row) {
    return qf_infer_state_tab(prob, r, s, NULL, NULL, v_next, q_row);
}

/* The forward pass of run r (one thread does a whole run, states in order, so the result does not
 * depend on who runs it): v: the run's V [T+1][S] from the backward pass of the same problem (the
 * policy pi_t(a | s) = exp((Q_t(s, a) - V_t(s)) / alpha) takes V_t(s) from it, Q_t from V_{t+1});
 * start: its start distribution [S], or NULL (all mass on qf_env_start_state; under the inference
 * backup the posterior start p(s_0 | O) proportional to start(s_0) beta_0(s_0) is used, the
 * variational one keeps start); cur, nxt: scratch [S]; marg: [T][S] state marginals or NULL;
 * occ: [S][A] occupancy sum_t p(s_t = s, a_t = a), or NULL; tab_o, tab_n: the run's outcome table
 * or NULL. */
QF_HD static inline void qf_infer_forward_run_tab(const qf_infer_problem *prob, int32_t r, const double *v,
                                                  const double *start, double *cur, double *nxt, double *marg,
                                                  double *occ, const qf_outcome *tab_o, const uint8_t *tab_n) {
    const int32_t S = prob->n_states, A = prob->n_actions, T = prob->T;
    const qf_env_params *p = &prob->params[r];
    const uint32_t k0 = prob->keys[2 * r], k1 = prob->keys[2 * r + 1];
    const double alpha = prob->alpha[r];
    double q_row[QF_MAX_ARMS > QF_GRID_ACTIONS ? QF_MAX_ARMS : QF_GRID_ACTIONS];
    double w[QF_MAX_OUTCOMES];
    int32_t next[QF_MAX_OUTCOMES];
    for (int32_t s = 0; s < S; s++) cur[s] = 0.0;
    if (start && prob->backup == QF_BACKUP_INFERENCE) {
        /* the posterior start p(s_0 | O) proportional to start(s) beta_0(s) = start(s) exp(V_0(s) / alpha) */
        double m = 0.0, sum = 0.0;
        int any = 0;
        for (int32_t s = 0; s < S; s++)
            if (start[s] > 0.0) {
                m = (!any || v[s] / alpha > m) ? v[s] / alpha : m;
                any = 1;
            }
        for (int32_t s = 0; s < S; s++)
            if (start[s] > 0.0) {
                cur[s] = start[s] * exp(v[s] / alpha - m);
                sum += cur[s];
            }
        for (int32_t s = 0; s < S; s++) cur[s] = sum > 0.0 ? cur[s] / sum : 0.0;
    } else if (start) {
        for (int32_t s = 0; s < S; s++) cur[s] = start[s];
    } else {
        cur[qf_env_start_state(prob->kind, p)] = 1.0;
    }
    if (occ)
        for (int64_t i = 0; i < (int64_t)S * A; i++) occ[i] = 0.0;
    for (int32_t t = 0; t < T; t++) {
        const double *v_t = v + (size_t)t * S, *v_next = v + (size_t)(t + 1) * S;
        if (marg)
            for (int32_t s = 0; s < S; s++) marg[(size_t)t * S + s] = cur[s];
        for (int32_t s = 0; s < S; s++) nxt[s] = 0.0;
        for (int32_t s = 0; s < S; s++) {
            const double d = cur[s];
            if (d == 0.0) continue;
            qf_infer_q_row(prob, r, s, tab_o, tab_n, v_next, q_row);
            const double vs = v_t[s]; /* = qf_infer_state's soft value of q_row (the backward pass's) */
            const double *r_row = prob->reward ? prob->reward + ((size_t)r * S + (size_t)s) * A : NULL;
            for (int32_t a = 0; a < A; a++) {
                const double da = d * exp((q_row[a] - vs) / alpha);
                if (occ) occ[(size_t)s * A + a] += da;
                int n;
                if (tab_o) {
                    n = tab_n[(size_t)s * A + a];
                    qf_backup_weights_outcomes(tab_o + ((size_t)s * A + a) * QF_MAX_OUTCOMES, n, alpha, prob->backup,
                                               r_row, a, v_next, q_row[a], w, next);
                } else {
                    n = qf_backup_weights(prob->kind, p, k0, k1, alpha, prob->backup, r_row, s, a, v_next, q_row[a],
                                          w, next);
                }
                for (int j = 0; j < n; j++) nxt[next[j]] += da * w[j];
            }
        }
        for (int32_t s = 0; s < S; s++) cur[s] = nxt[s];
    }
}

/* qf_infer_forward_run_tab without a table. */
QF_HD static inline void qf_infer_forward_run(const qf_infer_problem *prob, int32_t r, const double *v,
                                              const double *start, double *cur, double *nxt,
                                              double *marg, double *occ) {
    qf_infer_forward_run_tab(prob, r, v, start, cur, nxt, marg, occ, NULL, NULL);
}

/* log pi_t(a | s) = (Q_t(s, a) - V_t(s)) / alpha summed over the demonstration steps of run r
 * (the demo log-likelihood, dynamics terms left out: they do not depend on the reward). */
QF_HD static inline double qf_infer_demo_loglik_run(const qf_infer_problem *prob, int32_t r,
                                                    const double *v, const qf_demo_steps *demos) {
    const int32_t S = prob->n_states;
    const double alpha = prob->alpha[r];
    double q_row[QF_MAX_ARMS > QF_GRID_ACTIONS ? QF_MAX_ARMS : QF_GRID_ACTIONS];
    double sum = 0.0;
    for (int32_t j = demos->offset[r]; j < demos->offset[r + 1]; j++) {
        const int32_t t = demos->t[j], s = demos->state[j];
        const double vs = qf_infer_state(prob, r, s, v + (size_t)(t + 1) * S, q_row);
        sum += (q_row[demos->action[j]] - vs) / alpha;
    }
    return sum;
}

/* One element of the IRL Adam ascent step (backend.h, irl_adam): gradient of the mean demo
 * log-likelihood g = (expert - expected) / alpha; Adam (Kingma and Ba 2015) with step count t + 1.
 * Returns g. */
QF_HD static inline double qf_irl_adam_one(double expert, double expected, double alpha, double lr,
                                           int32_t t, double *m, double *v, double *psi) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const double g = (expert - expected) / alpha;
    *m = b1 * *m + (1.0 - b1) * g;
    *v = b2 * *v + (1.0 - b2) * g * g;
    const double mhat = *m / (1.0 - pow(b1, (double)(t + 1)));
    const double vhat = *v / (1.0 - pow(b2, (double)(t + 1)));
    *psi = *psi + lr * mhat / (sqrt(vhat) + eps);
    return g;
}

/* Checks of one run (0: fine), for both backends. */
enum { QF_INFER_OK = 0, QF_INFER_BAD_STATES = 1, QF_INFER_BAD_ACTIONS = 2, QF_INFER_BAD_ALPHA = 3 };
/* need_policy: the operation uses pi = exp((Q - V) / alpha) (forward pass, log-likelihood). */
QF_HD static inline int qf_infer_check_run(const qf_infer_problem *prob, const qf_env_params *p, double alpha,
                                           int need_policy) {
    if (qf_env_n_states(prob->kind, p) != prob->n_states) return QF_INFER_BAD_STATES;
    if (qf_env_n_actions(prob->kind, p) != prob->n_actions) return QF_INFER_BAD_ACTIONS;
    /* alpha = 0 (the hard max) only for the variational backup's values (backward pass) */
    if (!(alpha >= 0.0 && alpha <= 1.7976931348623157e308)) return QF_INFER_BAD_ALPHA;
    if (alpha == 0.0 && (prob->backup != QF_BACKUP_VARIATIONAL || need_policy)) return QF_INFER_BAD_ALPHA;
    return QF_INFER_OK;
}

/* ---- host side: checks and messages (snprintf; never called from device code) ---------------- */
#include <stdio.h>

/* Checks of the problem's scalar fields. Returns 0, or -1 with one line in msg. */
static inline int qf_infer_check_problem(const qf_infer_problem *prob, char *msg, size_t len) {
    if (!qf_env_tabular(prob->kind)) {
        snprintf(msg, len, "infer: environment kind %d is not tabular (allowed: deep_sea, chain, bandit, "
                           "gridworld)", (int)prob->kind);
        return -1;
    }
    if (prob->R < 1 || prob->n_states < 1 || prob->n_actions < 1 || prob->T < 1 ||
        prob->n_actions > (QF_MAX_ARMS > QF_GRID_ACTIONS ? QF_MAX_ARMS : QF_GRID_ACTIONS)) {
        snprintf(msg, len, "infer: need R >= 1, n_states >= 1, 1 <= n_actions <= %d and T >= 1 (got R=%d, "
                           "n_states=%d, n_actions=%d, T=%d)", QF_MAX_ARMS, (int)prob->R,
                 (int)prob->n_states, (int)prob->n_actions, (int)prob->T);
        return -1;
    }
    if (prob->backup != QF_BACKUP_VARIATIONAL && prob->backup != QF_BACKUP_INFERENCE) {
        snprintf(msg, len, "infer: backup=%d (allowed: 0 variational, 1 inference)", (int)prob->backup);
        return -1;
    }
    return 0;
}

/* The message for run r that failed qf_infer_check_run with `code`. */
static inline void qf_infer_run_message(int code, int32_t r, const qf_infer_problem *prob,
                                        const qf_env_params *p, double alpha, char *msg, size_t len) {
    if (code == QF_INFER_BAD_STATES)
        snprintf(msg, len, "infer: run %d has %d states but the problem says n_states=%d", (int)r,
                 (int)qf_env_n_states(prob->kind, p), (int)prob->n_states);
    else if (code == QF_INFER_BAD_ACTIONS)
        snprintf(msg, len, "infer: run %d has %d actions but the problem says n_actions=%d", (int)r,
                 (int)qf_env_n_actions(prob->kind, p), (int)prob->n_actions);
    else
        snprintf(msg, len, "infer: run %d has alpha=%g (allowed: a finite temperature > 0; 0, the hard max, "
                           "only for the variational backward pass)", (int)r, alpha);
}

#endif /* QF_INFER_OPS_H */
