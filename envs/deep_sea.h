/* deep_sea.h — bsuite's DeepSea (Osband et al. 2019), step for step.
 *
 * N x N grid; the agent starts top-left and falls one row per step, so an episode is N steps and
 * ends in a terminal state. In each cell, which of the actions 0/1 means "right" is drawn once from
 * the mapping seed (bsuite: mapping[row, col] ~ Bernoulli(0.5), action_right = action == mapping).
 * A right move costs move_cost / N; a right move in the last column pays +1 (reachable only on the
 * last row), so always-right returns 1 - move_cost = 0.99. Moving left while row == column (still on
 * the optimal diagonal) marks the episode "bad" (bsuite's total_bad_episodes).
 * Stochastic variant (bsuite deep_sea_stochastic): a right move fails (column unchanged) with
 * probability 1/N, and the two end cells of the last row add N(0,1) noise to the reward.
 * State: t = row, i[0] = column, i[1] = bad flag. Observation: one-hot N*N grid (all zeros once the
 * episode has ended, as bsuite), or the state index row*N + column (N*N after the end). */
#ifndef QF_DEEP_SEA_H
#define QF_DEEP_SEA_H
#include "qf_common.h"

/* env.mapping: where the per-cell action mapping comes from */
enum { QF_DEEP_SEA_MAP_PHILOX = 0, QF_DEEP_SEA_MAP_BSUITE = 1, QF_DEEP_SEA_MAP_ONES = 2 };
#define QF_DEEP_SEA_MAPPINGS "philox|bsuite|ones"
#define QF_DEEP_SEA_TABLE_MAX 64 /* largest N of the tabled mappings (bsuite's sweep: 10 .. 50) */
#define QF_DEEP_SEA_TABLE_CELLS (QF_DEEP_SEA_TABLE_MAX * QF_DEEP_SEA_TABLE_MAX)
/* bsuite 0.3.6 (PyPI), experiments/deep_sea/analysis.py, find_solution(thresh=0.9): solved at the
 * first episode with total_bad_episodes / episode < 0.9 */
#define QF_BSUITE_SOLVED_THRESHOLD 0.9
/* Knyazhitskiy (2025), "A Unified Scaling Law for Bootstrapped DQNs": a run has converged at its first
 * training episode with return >= 0.95 (the treasure found) */
#define QF_STUDY_CONVERGE_RETURN 0.95

typedef struct qf_deep_sea_params {
    int32_t size;
    int32_t stochastic;
    float move_cost;
    int32_t map_seed;
    int32_t map_per_run;
    int32_t mapping;         /* QF_DEEP_SEA_MAP_* */
    double solved_threshold; /* the solved_threshold key (not an env.* key): solved_at is the first
                                episode with bad / episodes < this, in double as bsuite computes it */
    double converge_return;  /* the converge_return key: converged_at is the first episode whose
                                (float-accumulated) return is >= this */
    uint32_t map_bits[QF_DEEP_SEA_TABLE_CELLS / 32]; /* mapping != philox: bit row*N + col is the action
                                that means right in (row, col); filled on the host (spec.c) */
} qf_deep_sea_params;

/* X(struct, field, type, default, min, max, doc) */
#define QF_DEEP_SEA_PARAMS(X)                                                                      \
    X(qf_deep_sea_params, size, QF_P_INT, 10, 1, 4096, "grid side N: N*N cells, N steps per episode") \
    X(qf_deep_sea_params, stochastic, QF_P_BOOL, 0, 0, 1,                                          \
      "bsuite's stochastic variant: right fails w.p. 1/N, N(0,1) reward noise at the last row's ends") \
    X(qf_deep_sea_params, move_cost, QF_P_FLOAT, 0.01, 0, 1,                                       \
      "unscaled cost of moving right (each right move costs move_cost/N)")                         \
    X(qf_deep_sea_params, map_seed, QF_P_INT, 42, 0, 2147483647,                                   \
      "seed of the per-cell action mapping (bsuite's mapping_seed; 42 in its sweep)")              \
    X(qf_deep_sea_params, map_per_run, QF_P_BOOL, 0, 0, 1,                                         \
      "mapping=philox: draw the action mapping from each run's own seed instead of map_seed")      \
    X(qf_deep_sea_params, mapping, QF_P_CHOICE, 0, 0, 2,                                           \
      QF_DEEP_SEA_MAPPINGS ": the action mapping: philox (any size), bsuite (numpy's, as bsuite "  \
      "draws it for mapping_seed=map_seed; size <= 64), ones (bsuite's randomize_actions=False)")

/* Which action (0 or 1) means "right" in cell (row, col): a bit of the table (mapping bsuite or
 * ones), or Philox (128 cells of a row share one call). */
QF_HD static inline int qf_deep_sea_right_action(const qf_deep_sea_params *p, uint32_t k0,
                                                 uint32_t k1, int32_t row, int32_t col) {
    if (p->mapping != QF_DEEP_SEA_MAP_PHILOX) {
        /* the mask keeps the load inside the table for any lane, so loops over cells vectorize */
        const uint32_t cell = (uint32_t)(row * p->size + col) & (QF_DEEP_SEA_TABLE_CELLS - 1u);
        return (int)((p->map_bits[cell >> 5] >> (cell & 31u)) & 1u);
    }
    philox4x32_key_t key;
    philox4x32_ctr_t ctr;
    key.v[0] = p->map_per_run ? k0 : (uint32_t)p->map_seed;
    key.v[1] = p->map_per_run ? k1 : 0x6d617073u; /* fixed second key word for the shared mapping */
    ctr.v[0] = QF_STREAM_MAP;
    ctr.v[1] = (uint32_t)row;
    ctr.v[2] = (uint32_t)col >> 7;
    ctr.v[3] = 0;
    philox4x32_ctr_t r = philox4x32(ctr, key);
    const uint32_t w = ((uint32_t)col >> 5) & 3u; /* the word, by selects: loops over cells vectorize */
    const uint32_t word = w == 0u ? r.v[0] : (w == 1u ? r.v[1] : (w == 2u ? r.v[2] : r.v[3]));
    return (int)((word >> ((uint32_t)col & 31u)) & 1u);
}

/* The mapping=philox bits of every cell as a table (bit row*N + col of bits[], N <= 64, the layout
 * of map_bits): one Philox call per row instead of one per env step, with the same counter, key and
 * word selection as qf_deep_sea_right_action, so a step that reads the table instead gets the same
 * bit for every cell (tested over every cell and N). (k0, k1): the run's key (map_per_run). The CPU
 * backend fills it once per block of envs. */
QF_HD static inline void qf_deep_sea_philox_table(const qf_deep_sea_params *p, uint32_t k0, uint32_t k1,
                                                  uint32_t bits[QF_DEEP_SEA_TABLE_CELLS / 32]) {
    const int32_t n = p->size;
    for (int32_t w = 0; w < QF_DEEP_SEA_TABLE_CELLS / 32; w++) bits[w] = 0;
    philox4x32_key_t key;
    key.v[0] = p->map_per_run ? k0 : (uint32_t)p->map_seed;
    key.v[1] = p->map_per_run ? k1 : 0x6d617073u;
    for (int32_t row = 0; row < n && row < QF_DEEP_SEA_TABLE_MAX; row++) {
        philox4x32_ctr_t ctr;
        ctr.v[0] = QF_STREAM_MAP;
        ctr.v[1] = (uint32_t)row;
        ctr.v[2] = 0; /* col >> 7 for every col < 64 */
        ctr.v[3] = 0;
        const philox4x32_ctr_t r = philox4x32(ctr, key);
        /* the row's N bits (column c: bit c & 31 of word c >> 5), inserted at bit row*N */
        const uint64_t v = (((uint64_t)r.v[1] << 32) | r.v[0]) & (n >= 64 ? ~0ull : (1ull << n) - 1u);
        const uint32_t o = (uint32_t)(row * n), i = o >> 5, sh = o & 31u;
        bits[i] |= (uint32_t)(v << sh);
        if (sh + (uint32_t)n > 32u) bits[i + 1] |= (uint32_t)(sh ? v >> (32u - sh) : v >> 32);
        if (sh + (uint32_t)n > 64u) bits[i + 2] |= (uint32_t)(v >> (64u - sh));
    }
}

/* The stochastic variant's N(0,1) reward noise at the last row's two end cells. */
QF_HD_OUTLINE float qf_deep_sea_noise(uint32_t u1, uint32_t u2) { return qf_normal(u1, u2); }

QF_HD static inline void qf_deep_sea_reset(qf_env_state *s) {
    s->t = 0;    /* row */
    s->i[0] = 0; /* column */
    s->i[1] = 0; /* bad episode */
}

QF_HD static inline float qf_deep_sea_step(const qf_deep_sea_params *p, qf_env_state *s,
                                           int32_t action, qf_rng *g, uint32_t k0, uint32_t k1,
                                           uint32_t *flags) {
    const int32_t n = p->size;
    const int32_t row = s->t;
    int32_t col = s->i[0];
    const int right = action == qf_deep_sea_right_action(p, k0, k1, row, col);
    float reward = 0.0f;
    if (col == n - 1 && right) {
        reward = reward + 1.0f;
        *flags |= QF_TREASURE;
    }
    philox4x32_ctr_t bits = {{0, 0, 0, 0}};
    if (p->stochastic) {
        bits = qf_rng_next(g);
        if (row == n - 1 && (col == 0 || col == n - 1))
            reward = reward + qf_deep_sea_noise(bits.v[0], bits.v[1]);
    }
    if (right) {
        if (!p->stochastic || qf_u01(bits.v[2]) > 1.0f / (float)n) col = col + 1 < n ? col + 1 : n - 1;
        reward = reward - p->move_cost / (float)n;
    } else {
        if (row == col) s->i[1] = 1;
        col = col - 1 > 0 ? col - 1 : 0;
    }
    s->i[0] = col;
    if (row + 1 == n) {
        *flags |= QF_TERMINAL;
        if (s->i[1]) *flags |= QF_BAD_EPISODE;
    }
    return reward;
}

/* Index of the cell, N*N once the episode has ended (the null observation). */
QF_HD static inline int32_t qf_deep_sea_index(const qf_deep_sea_params *p, const qf_env_state *s) {
    return s->t >= p->size ? p->size * p->size : s->t * p->size + s->i[0];
}

QF_HD static inline void qf_deep_sea_observe(const qf_deep_sea_params *p, const qf_env_state *s,
                                             float *obs) {
    const int32_t cells = p->size * p->size;
    for (int32_t j = 0; j < cells; j++) obs[j] = 0.0f;
    int32_t idx = qf_deep_sea_index(p, s);
    if (idx < cells) obs[idx] = 1.0f;
}

/* NULL when s is a state the dynamics can hold between two steps (after an auto-reset): row t in
 * [0, N), column in [0, min(t, N-1)] (one right move per row at most, from column 0), bad flag 0 or
 * 1 (0 on row 0). Otherwise the name of the first field that is not (checkpoint validation). */
QF_HD static inline const char *qf_deep_sea_state_check(const qf_deep_sea_params *p, const qf_env_state *s) {
    if (s->t < 0 || s->t >= p->size) return "t (row)";
    if (s->i[0] < 0 || s->i[0] > s->t) return "i[0] (column)";
    if (s->i[1] < 0 || s->i[1] > 1 || (s->i[1] && s->t == 0)) return "i[1] (bad-episode flag)";
    return 0;
}

#endif /* QF_DEEP_SEA_H */
