/* tabular.h — the discrete environments (deep_sea, chain, bandit, gridworld) as explicit MDPs: for a state
 * index s and an action a, the list of outcomes (probability, next state index, expected reward,
 * terminal). The exact solver (kernels/solve_ops.h) is built on this; it compiles as C, C++ and
 * CUDA from this one text, like the environment headers it restates.
 *
 * It must agree with the step functions exactly, so it reads their code, not their docs:
 * - Probabilities are those of the real draws. qf_u01 takes the 2^24 values k * 2^-24 with equal
 *   probability, so "qf_u01(bits) < x" has probability ceil(x * 2^24) / 2^24, not x: e.g. DeepSea's
 *   right move fails when qf_u01 <= 1.0f/N, probability (floor(2^24 * (float)(1/N)) + 1) / 2^24,
 *   which exceeds 1/N by at most 2^-24. Every such probability is a multiple of 2^-24, exact in
 *   float and double, and the probabilities of an action's outcomes sum to exactly 1.
 * - Rewards are the float values the step computes, in the same float operations (DeepSea's
 *   1.0f - move_cost/N is rounded to float as in the step). Zero-mean noise is left out: DeepSea's
 *   stochastic N(0,1) at the last row's two end cells has mean 0 up to the few-ulp error of
 *   qf_cosf (|mean| < 1e-6), and adding it in float rounds the reward by at most half an ulp of
 *   the noisy value. The bandit's expected reward is P(qf_u01 < mean) (equal to the mean whenever
 *   mean * 2^24 is an integer, e.g. every mean in [0.5, 1) and every drawn mean).
 * - State indices are those of qf_env_state_index: DeepSea row*N + col and N*N for the null state
 *   after the end (absorbing, value 0, reported as having no outcomes); chain the position; the
 *   bandit's single state 0. A transition into a terminal state has terminal = 1 (no bootstrap).
 *   The chain and the gridworld have no terminal state: their time limit is a truncation, and
 *   the solver treats them as infinite-horizon discounted MDPs (the finite-horizon problem is
 *   kernels/infer.h's).
 * cartpole and mountain_car have continuous states: no outcomes (qf_env_tabular() == 0). */
#ifndef QF_TABULAR_H
#define QF_TABULAR_H
#include "envs.h"

/* Largest number of outcomes of one (state, action) over the tabular kinds. */
#define QF_MAX_OUTCOMES 5

typedef struct qf_outcome {
    double prob;    /* exact probability (a multiple of 2^-24)                                */
    int32_t next;   /* state index reached                                                    */
    float reward;   /* expected reward of this outcome, as the step computes it (float)       */
    int32_t terminal; /* 1: the episode ends here, do not bootstrap from next                 */
} qf_outcome;

/* 1 for the kinds with a finite state space the solver handles (deep_sea, chain, bandit, gridworld). */
QF_HD static inline int qf_env_tabular(int kind) {
    return kind == QF_ENV_DEEP_SEA || kind == QF_ENV_CHAIN || kind == QF_ENV_BANDIT ||
           kind == QF_ENV_GRIDWORLD;
}

/* P(qf_u01(bits) < x) for uniformly random bits: ceil(x * 2^24) / 2^24, clamped to [0, 1]. */
QF_HD static inline double qf_u01_p_below(float x) {
    if (!(x > 0.0f)) return 0.0;
    const double k = ceil((double)x * 16777216.0);
    return (k < 16777216.0 ? k : 16777216.0) / 16777216.0;
}

/* P(qf_u01(bits) <= x): (floor(x * 2^24) + 1) / 2^24, clamped to [0, 1]. */
QF_HD static inline double qf_u01_p_at_most(float x) {
    if (!(x >= 0.0f)) return 0.0;
    const double k = floor((double)x * 16777216.0) + 1.0;
    return (k < 16777216.0 ? k : 16777216.0) / 16777216.0;
}

/* Index of the state an episode starts in (-1 for continuous kinds). */
QF_HD static inline int32_t qf_env_start_state(int kind, const qf_env_params *p) {
    (void)p;
    return qf_env_tabular(kind) ? 0 : -1;
}

/* The most steps an episode takes: DeepSea's N (then it terminates), the bandit's 1, the time
 * limit of the chain and the gridworld; 0 for continuous kinds. The default horizon T of the
 * finite-horizon problems (`qfleet solve horizon=`, `infer`, `irl`). */
QF_HD static inline int32_t qf_env_episode_steps(int kind, const qf_env_params *p) {
    switch (kind) {
    case QF_ENV_DEEP_SEA: return p->deep_sea.size;
    case QF_ENV_BANDIT: return 1;
    case QF_ENV_CHAIN: return p->chain.horizon;
    case QF_ENV_GRIDWORLD: return p->gridworld.horizon;
    default: return 0;
    }
}

/* DeepSea: see qf_deep_sea_step. Right moves (the action that the cell's mapping calls right)
 * cost move_cost/N and pay +1 in the last column; a stochastic right move fails (column kept)
 * with probability P(qf_u01 <= 1/N); left moves go to max(col - 1, 0). The last row ends. */
QF_HD static inline int qf_deep_sea_outcomes(const qf_deep_sea_params *p, uint32_t k0, uint32_t k1,
                                             int32_t s, int32_t a, qf_outcome *out) {
    const int32_t n = p->size;
    if (s < 0 || s >= n * n) return 0; /* the null state after the end (or no state): absorbing */
    const int32_t row = s / n, col = s % n;
    const int right = a == qf_deep_sea_right_action(p, k0, k1, row, col);
    float reward = 0.0f;
    if (col == n - 1 && right) reward = reward + 1.0f;
    const int last = row + 1 == n;
    if (!right) {
        const int32_t c = col - 1 > 0 ? col - 1 : 0;
        out[0].prob = 1.0;
        out[0].next = last ? n * n : (row + 1) * n + c;
        out[0].reward = reward;
        out[0].terminal = last;
        return 1;
    }
    reward = reward - p->move_cost / (float)n;
    const int32_t c = col + 1 < n ? col + 1 : n - 1;
    out[0].next = last ? n * n : (row + 1) * n + c;
    out[0].reward = reward;
    out[0].terminal = last;
    if (!p->stochastic) {
        out[0].prob = 1.0;
        return 1;
    }
    const double fail = qf_u01_p_at_most(1.0f / (float)n);
    out[0].prob = 1.0 - fail;
    out[1].prob = fail;
    out[1].next = last ? n * n : (row + 1) * n + col;
    out[1].reward = reward;
    out[1].terminal = last;
    return 2;
}

/* Chain: see qf_chain_step. Right succeeds with probability P(qf_u01 >= slip) (always when
 * slip == 0, where the step draws nothing) and is pushed back left otherwise. */
QF_HD static inline int qf_chain_outcomes(const qf_chain_params *p, int32_t s, int32_t a,
                                          qf_outcome *out) {
    const int32_t n = p->size;
    if (s < 0 || s >= n) return 0;
    const int32_t left = s > 0 ? s - 1 : 0;
    out[0].terminal = 0;
    if (a != 1) {
        out[0].prob = 1.0;
        out[0].next = left;
        out[0].reward = s == 0 ? p->r_small : 0.0f;
        return 1;
    }
    const float reward = s == n - 1 ? p->r_large : 0.0f;
    const double slip = p->slip > 0.0f ? qf_u01_p_below(p->slip) : 0.0;
    out[0].prob = 1.0 - slip;
    out[0].next = s + 1 < n ? s + 1 : n - 1;
    out[0].reward = reward;
    if (slip == 0.0) return 1;
    out[1].prob = slip;
    out[1].next = left;
    out[1].reward = reward;
    out[1].terminal = 0;
    return 2;
}

/* Bandit: one state; every pull ends the episode and pays 1 with probability P(qf_u01 < mean). */
QF_HD static inline int qf_bandit_outcomes(const qf_bandit_params *p, uint32_t k0, uint32_t k1,
                                           int32_t s, int32_t a, qf_outcome *out) {
    if (s != 0 || a < 0 || a >= p->arms) return 0;
    out[0].prob = 1.0;
    out[0].next = 0;
    out[0].reward = (float)qf_u01_p_below(qf_bandit_mean(p, k0, k1, a));
    out[0].terminal = 1;
    return 1;
}

/* P(qf_gridworld_slip_dir(bits) == k) for uniformly random bits: the 24-bit values x with
 * floor(5x / 2^24) == k, i.e. x in [ceil(k 2^24 / 5), ceil((k+1) 2^24 / 5)), over 2^24. */
QF_HD static inline double qf_gridworld_p_dir(int32_t k) {
    return (ceil((double)(k + 1) * 16777216.0 / 5.0) - ceil((double)k * 16777216.0 / 5.0)) / 16777216.0;
}

/* Gridworld: see qf_gridworld_step. One outcome per direction k that can happen: probability
 * (1 - P(slip)) [k == a] + P(slip) P(dir k), with P(slip) = P(qf_u01 < slip) (0 when slip == 0,
 * where the step draws nothing). Both factors are multiples of 2^-24, so every product and sum is
 * exact in double and the probabilities sum to exactly 1. Several directions may reach the same
 * cell (walls). The reward is the cell's (qf_gridworld_reward); nothing terminates. */
QF_HD static inline int qf_gridworld_outcomes(const qf_gridworld_params *p, int32_t s, int32_t a,
                                              qf_outcome *out, int with_reward) {
    const int32_t n = p->size;
    if (s < 0 || s >= n * n || a < 0 || a >= QF_GRID_ACTIONS) return 0;
    const float reward = with_reward ? qf_gridworld_reward(p, s) : 0.0f;
    const double slip = p->slip > 0.0f ? qf_u01_p_below(p->slip) : 0.0;
    int m = 0;
    for (int32_t k = 0; k < QF_GRID_ACTIONS; k++) {
        const double prob = (k == a ? 1.0 - slip : 0.0) + slip * qf_gridworld_p_dir(k);
        if (!(prob > 0.0)) continue;
        out[m].prob = prob;
        out[m].next = qf_gridworld_move(n, s, k);
        out[m].reward = reward;
        out[m].terminal = 0;
        m++;
    }
    return m;
}

/* The outcomes of action a in state s of the run with key (k0, k1) (DeepSea's per-run mapping;
 * drawn bandit means) into out[0 .. QF_MAX_OUTCOMES); returns how many. 0: s has no transitions
 * (DeepSea's null state, an index out of range, or a kind that is not tabular): its value is 0. */
QF_HD static inline int qf_env_outcomes(int kind, const qf_env_params *p, uint32_t k0, uint32_t k1,
                                        int32_t s, int32_t a, qf_outcome *out) {
    switch (kind) {
    case QF_ENV_DEEP_SEA: return qf_deep_sea_outcomes(&p->deep_sea, k0, k1, s, a, out);
    case QF_ENV_CHAIN: return qf_chain_outcomes(&p->chain, s, a, out);
    case QF_ENV_BANDIT: return qf_bandit_outcomes(&p->bandit, k0, k1, s, a, out);
    case QF_ENV_GRIDWORLD: return qf_gridworld_outcomes(&p->gridworld, s, a, out, 1);
    default: return 0;
    }
}

/* The same, for callers that replace the rewards by their own (a reward table): the gridworld's
 * reward, the only one that costs more than a few operations, is then left at 0. */
QF_HD static inline int qf_env_outcomes_no_reward(int kind, const qf_env_params *p, uint32_t k0, uint32_t k1,
                                                  int32_t s, int32_t a, qf_outcome *out) {
    if (kind == QF_ENV_GRIDWORLD) return qf_gridworld_outcomes(&p->gridworld, s, a, out, 0);
    return qf_env_outcomes(kind, p, k0, k1, s, a, out);
}

/* Is the kind layered? Then its states fall into `layers` layers of `width` consecutive indices
 * (layer l = states [l * width, (l + 1) * width)), and every outcome of a state in layer l reaches a
 * state of layer l + 1 or ends the episode (terminal, or the null state with no outcomes, worth 0);
 * nothing returns to an earlier layer. One backward pass over the layers is then the exact
 * solution of value iteration's fixed point (the solver's fast path, qf_solve_layered in
 * host/solve.h). DeepSea: N rows of N cells (row r reaches only row r + 1; the last row ends in the
 * null state N*N, after the layers). The bandit: one layer, its one state (every pull ends).
 * Returns 1 and sets *layers and *width; 0 (the chain and the gridworld return to earlier states;
 * continuous kinds) otherwise. */
QF_HD static inline int qf_env_layers(int kind, const qf_env_params *p, int32_t *layers, int32_t *width) {
    switch (kind) {
    case QF_ENV_DEEP_SEA:
        *layers = p->deep_sea.size;
        *width = p->deep_sea.size;
        return 1;
    case QF_ENV_BANDIT:
        *layers = 1;
        *width = 1;
        return 1;
    default: return 0;
    }
}

#endif /* QF_TABULAR_H */
