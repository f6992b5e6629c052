/* envs.h — every environment behind one switch: kinds, the parameter union, reset/step/observe and
 * the shapes. Compiles as C, C++ and CUDA; the vectorized stepping in kernels/ calls only this. */
#ifndef QF_ENVS_H
#define QF_ENVS_H
#include "qf_common.h"
#include "deep_sea.h"
#include "cartpole.h"
#include "mountain_car.h"
#include "chain.h"
#include "bandit.h"
#include "gridworld.h"

typedef enum qf_env_kind {
    QF_ENV_DEEP_SEA = 0,
    QF_ENV_CARTPOLE = 1,
    QF_ENV_MOUNTAIN_CAR = 2,
    QF_ENV_CHAIN = 3,
    QF_ENV_BANDIT = 4,
    QF_ENV_GRIDWORLD = 5,
    QF_ENV_COUNT = 6
} qf_env_kind;

/* The parameters of one run's environment; which member is live depends on the kind. */
typedef union qf_env_params {
    qf_deep_sea_params deep_sea;
    qf_cartpole_params cartpole;
    qf_mountain_car_params mountain_car;
    qf_chain_params chain;
    qf_bandit_params bandit;
    qf_gridworld_params gridworld;
} qf_env_params;

/* Length of the dense observation vector. */
QF_HD static inline int32_t qf_env_obs_dim(int kind, const qf_env_params *p) {
    switch (kind) {
    case QF_ENV_DEEP_SEA: return p->deep_sea.size * p->deep_sea.size;
    case QF_ENV_CARTPOLE: return 4;
    case QF_ENV_MOUNTAIN_CAR: return 2;
    case QF_ENV_CHAIN: return p->chain.size;
    case QF_ENV_GRIDWORLD: return p->gridworld.size * p->gridworld.size;
    default: return 1;
    }
}

QF_HD static inline int32_t qf_env_n_actions(int kind, const qf_env_params *p) {
    switch (kind) {
    case QF_ENV_MOUNTAIN_CAR: return 3;
    case QF_ENV_BANDIT: return p->bandit.arms;
    case QF_ENV_GRIDWORLD: return QF_GRID_ACTIONS;
    default: return 2;
    }
}

/* Number of distinct state indices (terminal null state included), 0 for continuous states. */
QF_HD static inline int32_t qf_env_n_states(int kind, const qf_env_params *p) {
    switch (kind) {
    case QF_ENV_DEEP_SEA: return p->deep_sea.size * p->deep_sea.size + 1;
    case QF_ENV_CHAIN: return p->chain.size;
    case QF_ENV_BANDIT: return 1;
    case QF_ENV_GRIDWORLD: return p->gridworld.size * p->gridworld.size;
    default: return 0;
    }
}

/* Time limit that truncates an episode (0: none; the episode ends by termination). */
QF_HD static inline int32_t qf_env_horizon(int kind, const qf_env_params *p) {
    switch (kind) {
    case QF_ENV_CARTPOLE: return p->cartpole.horizon;
    case QF_ENV_MOUNTAIN_CAR: return p->mountain_car.horizon;
    case QF_ENV_CHAIN: return p->chain.horizon;
    case QF_ENV_GRIDWORLD: return p->gridworld.horizon;
    default: return 0;
    }
}

/* How many float / int state fields a kind uses (the batch code moves only those). */
QF_HD static inline int qf_env_nf(int kind) {
    return kind == QF_ENV_CARTPOLE ? 4 : (kind == QF_ENV_MOUNTAIN_CAR ? 2 : 0);
}
QF_HD static inline int qf_env_ni(int kind) {
    return kind == QF_ENV_DEEP_SEA ? 2 : ((kind == QF_ENV_CHAIN || kind == QF_ENV_GRIDWORLD) ? 1 : 0);
}

/* Start a new episode. g: the RESET stream of this (run, env, step). */
QF_HD static inline void qf_env_reset(int kind, const qf_env_params *p, qf_env_state *s, qf_rng *g) {
    (void)p;
    switch (kind) {
    case QF_ENV_DEEP_SEA: qf_deep_sea_reset(s); break;
    case QF_ENV_CARTPOLE: qf_cartpole_reset(s, g); break;
    case QF_ENV_MOUNTAIN_CAR: qf_mountain_car_reset(s, g); break;
    case QF_ENV_CHAIN: qf_chain_reset(s); break;
    case QF_ENV_GRIDWORLD: qf_gridworld_reset(s); break;
    default: s->t = 0; break;
    }
}

/* 1 when the kind's reset draws exactly one block of random words (one qf_rng_next of the RESET
 * stream) and nothing else random, so that qf_env_reset_words can start it from that block drawn
 * elsewhere (the CPU backend draws the blocks of a batch's resets 16 at a time); else 0. */
QF_HD static inline int qf_env_reset_one_block(int kind) {
    return kind == QF_ENV_CARTPOLE || kind == QF_ENV_MOUNTAIN_CAR;
}

/* qf_env_reset of a kind with qf_env_reset_one_block(kind), given the block r that qf_rng_next
 * would return: the same state. */
QF_HD static inline void qf_env_reset_words(int kind, const qf_env_params *p, qf_env_state *s,
                                            philox4x32_ctr_t r) {
    (void)p;
    if (kind == QF_ENV_CARTPOLE) qf_cartpole_reset_words(s, r);
    else qf_mountain_car_reset_words(s, r);
}

/* One transition: updates s (t included), returns the reward, ORs QF_TERMINAL / QF_TRUNCATED and
 * the kind's event flags into *flags. g: the STEP stream; (k0, k1): the run's key. */
QF_HD static inline float qf_env_step(int kind, const qf_env_params *p, qf_env_state *s,
                                      int32_t action, qf_rng *g, uint32_t k0, uint32_t k1,
                                      uint32_t *flags) {
    float r;
    switch (kind) {
    case QF_ENV_DEEP_SEA: r = qf_deep_sea_step(&p->deep_sea, s, action, g, k0, k1, flags); break;
    case QF_ENV_CARTPOLE: r = qf_cartpole_step(s, action, flags); break;
    case QF_ENV_MOUNTAIN_CAR: r = qf_mountain_car_step(s, action, flags); break;
    case QF_ENV_CHAIN: r = qf_chain_step(&p->chain, s, action, g); break;
    case QF_ENV_GRIDWORLD: r = qf_gridworld_step(&p->gridworld, s, action, g); break;
    default: r = qf_bandit_step(&p->bandit, action, g, k0, k1, flags); break;
    }
    s->t += 1;
    const int32_t h = qf_env_horizon(kind, p);
    if (h > 0 && s->t >= h) *flags |= QF_TRUNCATED;
    return r;
}

/* Dense observation of the current state into obs[0 .. obs_dim). */
QF_HD static inline void qf_env_observe(int kind, const qf_env_params *p, const qf_env_state *s,
                                        float *obs) {
    switch (kind) {
    case QF_ENV_DEEP_SEA: qf_deep_sea_observe(&p->deep_sea, s, obs); break;
    case QF_ENV_CARTPOLE: qf_cartpole_observe(s, obs); break;
    case QF_ENV_MOUNTAIN_CAR: qf_mountain_car_observe(s, obs); break;
    case QF_ENV_CHAIN: qf_chain_observe(&p->chain, s, obs); break;
    case QF_ENV_GRIDWORLD: qf_gridworld_observe(&p->gridworld, s, obs); break;
    default: obs[0] = 1.0f; break;
    }
}

/* State index of the current state (discrete kinds), -1 for continuous kinds. */
QF_HD static inline int32_t qf_env_state_index(int kind, const qf_env_params *p, const qf_env_state *s) {
    switch (kind) {
    case QF_ENV_DEEP_SEA: return qf_deep_sea_index(&p->deep_sea, s);
    case QF_ENV_CHAIN: return s->i[0];
    case QF_ENV_GRIDWORLD: return s->i[0];
    case QF_ENV_BANDIT: return 0;
    default: return -1;
    }
}

/* NULL when s is a state that env kind can hold between two steps (after any auto-reset), else the
 * name of its first impossible field: what a checkpoint's env states must satisfy before they are
 * stepped (an out-of-range cell would index past an observation; a row past DeepSea's last never
 * terminates). Only the fields the kind uses (qf_env_nf, qf_env_ni, t) are read. */
QF_HD static inline const char *qf_env_state_check(int kind, const qf_env_params *p, const qf_env_state *s) {
    switch (kind) {
    case QF_ENV_DEEP_SEA: return qf_deep_sea_state_check(&p->deep_sea, s);
    case QF_ENV_CARTPOLE: return qf_cartpole_state_check(&p->cartpole, s);
    case QF_ENV_MOUNTAIN_CAR: return qf_mountain_car_state_check(&p->mountain_car, s);
    case QF_ENV_CHAIN: return qf_chain_state_check(&p->chain, s);
    case QF_ENV_GRIDWORLD: return qf_gridworld_state_check(&p->gridworld, s);
    case QF_ENV_BANDIT: return s->t == 0 ? 0 : "t (episode step: a bandit episode is one step)";
    default: return "kind";
    }
}

/* Steps every episode of the kind takes (DeepSea: N, bandit: 1), 0 when episodes differ in length. */
QF_HD static inline int32_t qf_env_fixed_length(int kind, const qf_env_params *p) {
    return kind == QF_ENV_DEEP_SEA ? p->deep_sea.size : (kind == QF_ENV_BANDIT ? 1 : 0);
}

/* Bytes of the parameter union that kind reads (its member; the rest of the union is never read). */
QF_HD static inline int32_t qf_env_params_bytes(int kind) {
    switch (kind) {
    case QF_ENV_DEEP_SEA: return (int32_t)sizeof(qf_deep_sea_params);
    case QF_ENV_CARTPOLE: return (int32_t)sizeof(qf_cartpole_params);
    case QF_ENV_MOUNTAIN_CAR: return (int32_t)sizeof(qf_mountain_car_params);
    case QF_ENV_CHAIN: return (int32_t)sizeof(qf_chain_params);
    case QF_ENV_BANDIT: return (int32_t)sizeof(qf_bandit_params);
    default: return (int32_t)sizeof(qf_gridworld_params);
    }
}

#endif /* QF_ENVS_H */
