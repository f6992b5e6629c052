/* gridworld.h — a feature gridworld in the style of "objectworld" (Levine, Popovic and Koltun,
 * "Nonlinear Inverse Reinforcement Learning with Gaussian Processes", NIPS 2011), the usual
 * benchmark of inverse RL.
 *
 * N x N cells, state index row*N + col, start in cell 0 (top-left). Five actions: 0 up (row - 1),
 * 1 down (row + 1), 2 left (col - 1), 3 right (col + 1), 4 stay; a move into the wall stays. With
 * probability `slip` the action is replaced by one of the five drawn uniformly (objectworld's
 * "wind"; the drawn one may be the intended one). Episodes are truncated after `horizon` steps.
 *
 * `objects` objects are placed at random cells (several may share a cell), object j having colour
 * j mod C. Features of a cell (and so of every action taken in it, f(s, a) = f(s)): for colour c
 * and distance d = 1..D, f[c*D + d - 1] = 1 if an object of colour c lies within Manhattan
 * distance d of the cell, else 0 (Levine et al.'s discrete objectworld features, with D = `dist`
 * instead of N distances). F = C * D features. The reward of a step is linear in the features of
 * the cell it leaves: r(s, a) = sum_k w_k f_k(s), w_k drawn uniformly in [-1, 1). Object cells and
 * weights come from map_seed (the env seed; Philox, QF_STREAM_GRID), so they are a pure function
 * of the parameters: recomputed where needed, never stored. (Levine et al.'s reward is a fixed
 * nonlinear rule over two colours; a linear one lets MaxEnt IRL recover it exactly.)
 *
 * State: i[0] = cell. Observation: one-hot of length N*N, or the index. */
#ifndef QF_GRIDWORLD_H
#define QF_GRIDWORLD_H
#include "qf_common.h"

#define QF_GRID_MAX_COLOURS 8
#define QF_GRID_MAX_DIST 16
#define QF_GRID_MAX_FEATURES (QF_GRID_MAX_COLOURS * QF_GRID_MAX_DIST)
#define QF_GRID_MAX_OBJECTS 64
#define QF_GRID_ACTIONS 5

typedef struct qf_gridworld_params {
    int32_t size;
    float slip;
    int32_t horizon;
    int32_t colours;
    int32_t objects;
    int32_t dist;
    int32_t map_seed;
} qf_gridworld_params;

/* X(struct, field, type, default, min, max, doc) */
#define QF_GRIDWORLD_PARAMS(X)                                                                     \
    X(qf_gridworld_params, size, QF_P_INT, 8, 2, 128, "grid side N: N*N cells")                    \
    X(qf_gridworld_params, slip, QF_P_FLOAT, 0.3, 0, 1,                                            \
      "probability that the action is replaced by one of the 5 drawn uniformly")                  \
    X(qf_gridworld_params, horizon, QF_P_INT, 16, 1, 100000000, "time limit T: truncate after T steps") \
    X(qf_gridworld_params, colours, QF_P_INT, 2, 1, QF_GRID_MAX_COLOURS, "object colours C")     \
    X(qf_gridworld_params, objects, QF_P_INT, 8, 1, QF_GRID_MAX_OBJECTS,                          \
      "objects placed at random cells (object j has colour j mod C)")                              \
    X(qf_gridworld_params, dist, QF_P_INT, 3, 1, QF_GRID_MAX_DIST,                                \
      "feature distances d = 1..dist: F = colours*dist indicator features")                       \
    X(qf_gridworld_params, map_seed, QF_P_INT, 0, 0, 2147483647,                                   \
      "env seed: object cells and the true reward weights")

/* Number of features F = C * D. */
QF_HD static inline int32_t qf_gridworld_n_features(const qf_gridworld_params *p) {
    return p->colours * p->dist;
}

/* Philox block `block` of the map's stream `what` (0: object cells, 1: weights). */
QF_HD static inline philox4x32_ctr_t qf_gridworld_bits(const qf_gridworld_params *p, uint32_t what,
                                                       uint32_t block) {
    philox4x32_key_t key;
    philox4x32_ctr_t ctr;
    key.v[0] = (uint32_t)p->map_seed;
    key.v[1] = 0x67726964u; /* "grid" */
    ctr.v[0] = QF_STREAM_GRID;
    ctr.v[1] = what;
    ctr.v[2] = block;
    ctr.v[3] = 0;
    return philox4x32(ctr, key);
}

QF_HD static inline uint32_t qf_gridworld_word(philox4x32_ctr_t r, uint32_t w) {
    return w == 0u ? r.v[0] : (w == 1u ? r.v[1] : (w == 2u ? r.v[2] : r.v[3]));
}

/* Cell of the object whose word is `word` (multiply-shift of 32 bits onto N*N cells). */
QF_HD static inline int32_t qf_gridworld_cell_of_word(const qf_gridworld_params *p, uint32_t word) {
    return (int32_t)(((uint64_t)word * (uint64_t)(uint32_t)(p->size * p->size)) >> 32);
}

/* Cell of object j: word j mod 4 of Philox block j / 4. */
QF_HD static inline int32_t qf_gridworld_object_cell(const qf_gridworld_params *p, int32_t j) {
    return qf_gridworld_cell_of_word(p, qf_gridworld_word(qf_gridworld_bits(p, 0u, (uint32_t)j >> 2), (uint32_t)j & 3u));
}

/* True reward weight w_k in [-1, 1) (a float with 24 random bits, exact). */
QF_HD static inline float qf_gridworld_weight(const qf_gridworld_params *p, int32_t k) {
    const uint32_t word = qf_gridworld_word(qf_gridworld_bits(p, 1u, (uint32_t)k >> 2), (uint32_t)k & 3u);
    return 2.0f * qf_u01(word) - 1.0f;
}

/* Manhattan distance from `cell` to the nearest object of each colour into near[0 .. C)
 * (2N when a colour has no object, which cannot happen while objects >= colours). */
QF_HD static inline void qf_gridworld_nearest(const qf_gridworld_params *p, int32_t cell, int32_t *near) {
    const int32_t n = p->size, row = cell / n, col = cell % n;
    for (int32_t c = 0; c < p->colours; c++) near[c] = 2 * n;
    philox4x32_ctr_t bits = {{0, 0, 0, 0}};
    for (int32_t j = 0; j < p->objects; j++) {
        if ((j & 3) == 0) bits = qf_gridworld_bits(p, 0u, (uint32_t)j >> 2); /* four objects per block */
        const int32_t o = qf_gridworld_cell_of_word(p, qf_gridworld_word(bits, (uint32_t)j & 3u));
        const int32_t dr = o / n - row, dc = o % n - col;
        const int32_t d = (dr < 0 ? -dr : dr) + (dc < 0 ? -dc : dc);
        const int32_t c = j % p->colours;
        if (d < near[c]) near[c] = d;
    }
}

/* Feature k of cell: 1 when the nearest object of colour k / D is within distance k % D + 1. */
QF_HD static inline int qf_gridworld_feature(const qf_gridworld_params *p, const int32_t *near, int32_t k) {
    return near[k / p->dist] <= k % p->dist + 1;
}

/* The features of cell into f[0 .. F) (0 or 1). */
QF_HD static inline void qf_gridworld_features(const qf_gridworld_params *p, int32_t cell, float *f) {
    int32_t near[QF_GRID_MAX_COLOURS];
    qf_gridworld_nearest(p, cell, near);
    const int32_t F = qf_gridworld_n_features(p);
    for (int32_t k = 0; k < F; k++) f[k] = (float)qf_gridworld_feature(p, near, k);
}

/* Reward of a step from cell: sum of w_k over the features that are 1, in order k = 0, 1, ...
 * (float, as the step pays it). */
QF_HD static inline float qf_gridworld_reward(const qf_gridworld_params *p, int32_t cell) {
    int32_t near[QF_GRID_MAX_COLOURS];
    qf_gridworld_nearest(p, cell, near);
    const int32_t F = qf_gridworld_n_features(p);
    float r = 0.0f;
    philox4x32_ctr_t bits = {{0, 0, 0, 0}};
    for (int32_t k = 0; k < F; k++) {
        if ((k & 3) == 0) bits = qf_gridworld_bits(p, 1u, (uint32_t)k >> 2); /* four weights per block */
        if (qf_gridworld_feature(p, near, k)) r = r + (2.0f * qf_u01(qf_gridworld_word(bits, (uint32_t)k & 3u)) - 1.0f);
    }
    return r;
}

/* Cell reached from cell by direction dir (0 up, 1 down, 2 left, 3 right, 4 stay); walls stop. */
QF_HD static inline int32_t qf_gridworld_move(int32_t n, int32_t cell, int32_t dir) {
    const int32_t row = cell / n, col = cell % n;
    if (dir == 0 && row > 0) return cell - n;
    if (dir == 1 && row < n - 1) return cell + n;
    if (dir == 2 && col > 0) return cell - 1;
    if (dir == 3 && col < n - 1) return cell + 1;
    return cell;
}

/* The uniformly drawn direction of a slip from 24 random bits: floor(5 * x / 2^24). */
QF_HD static inline int32_t qf_gridworld_slip_dir(uint32_t word) {
    return (int32_t)(((word >> 8) * 5u) >> 24);
}

QF_HD static inline void qf_gridworld_reset(qf_env_state *s) {
    s->i[0] = 0;
    s->t = 0;
}

QF_HD static inline float qf_gridworld_step(const qf_gridworld_params *p, qf_env_state *s,
                                            int32_t action, qf_rng *g) {
    const int32_t cell = s->i[0];
    const float reward = qf_gridworld_reward(p, cell);
    int32_t dir = action;
    if (p->slip > 0.0f) {
        const philox4x32_ctr_t bits = qf_rng_next(g);
        if (qf_u01(bits.v[0]) < p->slip) dir = qf_gridworld_slip_dir(bits.v[1]);
    }
    s->i[0] = qf_gridworld_move(p->size, cell, dir);
    return reward;
}

QF_HD static inline void qf_gridworld_observe(const qf_gridworld_params *p, const qf_env_state *s,
                                              float *obs) {
    const int32_t cells = p->size * p->size;
    for (int32_t j = 0; j < cells; j++) obs[j] = 0.0f;
    obs[s->i[0]] = 1.0f;
}

/* NULL when s is a state the dynamics can hold between two steps: step t in [0, horizon), cell in
 * [0, N*N) at most t moves from cell 0 (row + col <= t); else the bad field's name. */
QF_HD static inline const char *qf_gridworld_state_check(const qf_gridworld_params *p, const qf_env_state *s) {
    if (s->t < 0 || (p->horizon > 0 && s->t >= p->horizon)) return "t (episode step)";
    const int32_t n = p->size, c = s->i[0];
    if (c < 0 || c >= n * n || c / n + c % n > s->t) return "i[0] (cell)";
    return 0;
}

#endif /* QF_GRIDWORLD_H */
