/* chain.h — an N-state chain (RiverSwim-style), a classic deep-exploration MDP.
 *
 * States 0..N-1, start in 0. Action 0 ("left", with the current) moves to max(s-1, 0) for sure and
 * pays r_small when taken in state 0. Action 1 ("right", against the current) moves to
 * min(s+1, N-1) with probability 1 - slip and is pushed back to max(s-1, 0) otherwise; taken in
 * state N-1 it pays r_large. Episodes are cut (truncated, not terminated) after `horizon` steps.
 * The optimal policy, for discounts close enough to 1 that r_large outweighs r_small, is
 * "always right"; a dithering agent collects r_small forever. Exact values come from the solver.
 * State: i[0] = position. Observation: one-hot of length N, or the index. */
#ifndef QF_CHAIN_H
#define QF_CHAIN_H
#include "qf_common.h"

typedef struct qf_chain_params {
    int32_t size;
    float slip;
    float r_small;
    float r_large;
    int32_t horizon;
} qf_chain_params;

#define QF_CHAIN_PARAMS(X)                                                                         \
    X(qf_chain_params, size, QF_P_INT, 10, 2, 100000, "number of states N")                        \
    X(qf_chain_params, slip, QF_P_FLOAT, 0.1, 0, 1, "probability that a right move is pushed back left") \
    X(qf_chain_params, r_small, QF_P_FLOAT, 0.001, 0, 1000, "reward for going left in state 0")    \
    X(qf_chain_params, r_large, QF_P_FLOAT, 1, 0, 1000, "reward for going right in state N-1")     \
    X(qf_chain_params, horizon, QF_P_INT, 20, 1, 100000000, "time limit: truncate after this many steps")

QF_HD static inline void qf_chain_reset(qf_env_state *s) {
    s->i[0] = 0;
    s->t = 0;
}

QF_HD static inline float qf_chain_step(const qf_chain_params *p, qf_env_state *s, int32_t action,
                                        qf_rng *g) {
    const int32_t n = p->size, pos = s->i[0];
    const int32_t left = pos > 0 ? pos - 1 : 0;
    float reward = 0.0f;
    if (action == 1) {
        if (pos == n - 1) reward = p->r_large;
        int ok = 1;
        if (p->slip > 0.0f) ok = qf_u01(qf_rng_next(g).v[0]) >= p->slip;
        s->i[0] = ok ? (pos + 1 < n ? pos + 1 : n - 1) : left;
    } else {
        if (pos == 0) reward = p->r_small;
        s->i[0] = left;
    }
    return reward;
}

QF_HD static inline void qf_chain_observe(const qf_chain_params *p, const qf_env_state *s, float *obs) {
    for (int32_t j = 0; j < p->size; j++) obs[j] = 0.0f;
    obs[s->i[0]] = 1.0f;
}

/* NULL when s is a state the dynamics can hold between two steps: step t in [0, horizon) (horizon
 * <= 0: no limit), position
 * in [0, min(t, N-1)] (one state per step at most, from state 0); else the bad field's name. */
QF_HD static inline const char *qf_chain_state_check(const qf_chain_params *p, const qf_env_state *s) {
    if (s->t < 0 || (p->horizon > 0 && s->t >= p->horizon)) return "t (episode step)";
    if (s->i[0] < 0 || s->i[0] >= p->size || s->i[0] > s->t) return "i[0] (position)";
    return 0;
}

#endif /* QF_CHAIN_H */
