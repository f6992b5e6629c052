/* env_batch.h — R runs x E envs stepped as one batch: the data layout and the per-element work,
 * written once and called by the CPU loop (kernels/cpu) and by the CUDA kernel (kernels/cuda).
 *
 * Layout: struct of arrays, run-major. Env (run r, env e) is element idx = r*E + e of every array;
 * N = R*E. State field j of element idx lives at sf[j*N + idx] (floats) or si[j*N + idx] (ints). */
#ifndef QF_ENV_BATCH_H
#define QF_ENV_BATCH_H
#include "../envs/envs.h"

typedef struct qf_env_batch {
    int32_t kind;
    int32_t R, E;
    const qf_env_params *params; /* [R]                                                     */
    const uint32_t *keys;        /* [R][2] Philox key of each run: (seed, run id)           */
    uint32_t rng_env0;           /* env e draws from Philox env counter rng_env0 + e (STEP and
                                    RESET streams): 0 for training envs; greedy-evaluation
                                    envs take counters >= 2^31 (host/fleet.c), so their draws
                                    never coincide with a training env's                     */
    float *sf;                   /* [QF_NF][N] float state fields                           */
    int32_t *si;                 /* [QF_NI + 1][N] int state fields, then t                 */
    float *ep_return;            /* [N] return of the running episode                       */
    float *reward;               /* [N] reward of the last step                             */
    uint8_t *flags;              /* [N] QF_TERMINAL | QF_TRUNCATED | event flags, last step */
    /* finished-episode statistics per env                                                    */
    uint32_t *episodes;          /* [N] episodes finished                                   */
    float *last_return;          /* [N] return of the last finished episode                 */
    int32_t *last_length;        /* [N] length of the last finished episode                 */
    uint32_t *treasures;         /* [N] episodes in which QF_TREASURE happened (DeepSea)    */
    uint32_t *bad_episodes;      /* [N] episodes flagged QF_BAD_EPISODE (DeepSea)           */
    uint32_t *first_treasure;    /* [N] episode (1-based, of this env) that first found the
                                    treasure; 0 = not yet (DeepSea)                          */
    uint32_t *solved_at;         /* [N] first episode after which bad_episodes / episodes <
                                    the run's solved_threshold (bsuite's DeepSea "episodes to
                                    solve", 0.9 in bsuite 0.3.6); 0 = not yet                 */
    uint32_t *converged_at;      /* [N] first episode whose return >= the run's converge_return
                                    (the scaling study's criterion, DeepSea); 0 = not yet     */
    float *ret_sum;              /* [N] sum of finished episodes' returns (host clears it)  */
    int32_t *len_sum;            /* [N] sum of finished episodes' lengths (host clears it)  */
} qf_env_batch;

/* Load / store the state of element idx. The _k forms take the kind as an argument, so a caller
 * that passes a constant gets code for that kind alone (the CPU backend's per-kind loops). */
QF_HD static inline qf_env_state qf_batch_load_k(const qf_env_batch *b, int kind, int64_t idx, int64_t n) {
    qf_env_state s;
    const int nf = qf_env_nf(kind), ni = qf_env_ni(kind);
    for (int j = 0; j < QF_NF; j++) s.f[j] = j < nf ? b->sf[j * n + idx] : 0.0f;
    for (int j = 0; j < QF_NI; j++) s.i[j] = j < ni ? b->si[j * n + idx] : 0;
    s.t = b->si[QF_NI * n + idx];
    return s;
}

QF_HD static inline void qf_batch_store_k(const qf_env_batch *b, int kind, int64_t idx, int64_t n,
                                          const qf_env_state *s) {
    const int nf = qf_env_nf(kind), ni = qf_env_ni(kind);
    for (int j = 0; j < nf; j++) b->sf[j * n + idx] = s->f[j];
    for (int j = 0; j < ni; j++) b->si[j * n + idx] = s->i[j];
    b->si[QF_NI * n + idx] = s->t;
}

QF_HD static inline qf_env_state qf_batch_load(const qf_env_batch *b, int64_t idx, int64_t n) {
    return qf_batch_load_k(b, b->kind, idx, n);
}

QF_HD static inline void qf_batch_store(const qf_env_batch *b, int64_t idx, int64_t n,
                                        const qf_env_state *s) {
    qf_batch_store_k(b, b->kind, idx, n, s);
}

/* The element functions below take env e of run r; idx = r*E + e. Callers compute (r, e) once per
 * block of envs: a 64-bit division per element would cost more than the step itself on a CPU. */

/* Start env (r, e) afresh and clear its statistics (RESET stream, step 0). */
QF_HD static inline void qf_batch_reset_one(const qf_env_batch *b, int32_t r, int32_t e) {
    const int64_t n = (int64_t)b->R * b->E, idx = (int64_t)r * b->E + e;
    qf_env_state s;
    for (int j = 0; j < QF_NF; j++) s.f[j] = 0.0f;
    for (int j = 0; j < QF_NI; j++) s.i[j] = 0;
    s.t = 0;
    qf_rng g = qf_rng_make(b->keys[2 * r], b->keys[2 * r + 1], QF_STREAM_RESET, b->rng_env0 + (uint32_t)e, 0);
    qf_env_reset(b->kind, &b->params[r], &s, &g);
    qf_batch_store(b, idx, n, &s);
    b->ep_return[idx] = 0.0f;
    b->reward[idx] = 0.0f;
    b->flags[idx] = 0;
    b->episodes[idx] = 0;
    b->last_return[idx] = 0.0f;
    b->last_length[idx] = 0;
    b->treasures[idx] = 0;
    b->bad_episodes[idx] = 0;
    b->first_treasure[idx] = 0;
    b->solved_at[idx] = 0;
    b->converged_at[idx] = 0;
    b->ret_sum[idx] = 0.0f;
    b->len_sum[idx] = 0;
}

/* A uniform random action of env e of the run with key (k0, k1) at step t (ACTION stream), by
 * multiply-shift (no division, so the CPU loop that draws a block of them vectorizes). */
QF_HD static inline int32_t qf_random_action(uint32_t k0, uint32_t k1, int32_t e, uint32_t t,
                                             int32_t n_actions) {
    qf_rng g = qf_rng_make(k0, k1, QF_STREAM_ACTION, (uint32_t)e, t);
    return (int32_t)(((uint64_t)qf_rng_next(&g).v[0] * (uint64_t)(uint32_t)n_actions) >> 32);
}

/* The transition of one env alone: s steps under action a (STEP stream of env counter e at step
 * t; batch callers pass rng_env0 + e), the reward is returned and the flags ORed into *fl. No
 * batch array is touched. */
QF_HD static inline float qf_batch_transition(int kind, const qf_env_params *p, qf_env_state *s,
                                              int32_t a, uint32_t e, uint32_t t, uint32_t k0,
                                              uint32_t k1, uint32_t *fl) {
    qf_rng g = qf_rng_make(k0, k1, QF_STREAM_STEP, e, t);
    return qf_env_step(kind, p, s, a, &g, k0, k1, fl);
}

/* The finished-episode statistics of env (r, e) (element idx), after a step that set QF_TERMINAL or
 * QF_TRUNCATED in fl: ret is the episode's return, s->t its length. The first half of
 * qf_batch_end_episode. */
QF_HD static inline void qf_batch_episode_stats(const qf_env_batch *b, int32_t r, int64_t idx,
                                                const qf_env_state *s, float ret, uint32_t fl) {
    b->episodes[idx] += 1;
    b->last_return[idx] = ret;
    b->last_length[idx] = s->t;
    if (fl & QF_TREASURE) {
        b->treasures[idx] += 1;
        if (b->first_treasure[idx] == 0) b->first_treasure[idx] = b->episodes[idx];
    }
    if (fl & QF_BAD_EPISODE) b->bad_episodes[idx] += 1;
    /* bsuite's analysis: total_bad_episodes / episode < thresh, divided and compared in float64 */
    if (b->kind == QF_ENV_DEEP_SEA && b->solved_at[idx] == 0 &&
        (double)b->bad_episodes[idx] / (double)b->episodes[idx] < b->params[r].deep_sea.solved_threshold)
        b->solved_at[idx] = b->episodes[idx];
    if (b->kind == QF_ENV_DEEP_SEA && b->converged_at[idx] == 0 &&
        (double)ret >= b->params[r].deep_sea.converge_return)
        b->converged_at[idx] = b->episodes[idx];
    b->ret_sum[idx] += ret;
    b->len_sum[idx] += s->t;
}

/* The end of an episode of env (r, e) at global step t, after a step that set QF_TERMINAL or
 * QF_TRUNCATED in fl: the finished-episode statistics (ret: its return, s->t: its length), then
 * the reset of s (RESET stream, step t + 1). The caller stores s and sets ep_return to 0. */
QF_HD static inline void qf_batch_end_episode(const qf_env_batch *b, int32_t r, int32_t e,
                                              int64_t idx, qf_env_state *s, float ret, uint32_t fl,
                                              uint32_t t) {
    qf_batch_episode_stats(b, r, idx, s, ret, fl);
    qf_rng gr = qf_rng_make(b->keys[2 * r], b->keys[2 * r + 1], QF_STREAM_RESET, b->rng_env0 + (uint32_t)e, t + 1u);
    qf_env_reset(b->kind, &b->params[r], s, &gr);
}

/* One step of env (r, e) at global step t.
 * a: the action (chosen by the agent, or qf_random_action for uniform random ones).
 * next_obs: [N][obs_dim] dense observation of the state reached (before any auto-reset: the s' of
 *           the transition), or NULL. next_index: [N] its state index, or NULL.
 * After an episode ends the env is reset (RESET stream, step t + 1) and its statistics updated.
 * The CPU backend runs the same pieces (transition, observation, end of episode) in separate
 * passes over a block of envs (kernels/cpu/backend_cpu.c); the results are the same bits. */
QF_HD static inline void qf_batch_step_one(const qf_env_batch *b, int32_t r, int32_t e, int32_t a,
                                           uint32_t t, float *next_obs, int32_t *next_index) {
    const int64_t n = (int64_t)b->R * b->E, idx = (int64_t)r * b->E + e;
    const qf_env_params *p = &b->params[r];
    qf_env_state s = qf_batch_load(b, idx, n);
    uint32_t fl = 0;
    const float rew = qf_batch_transition(b->kind, p, &s, a, b->rng_env0 + (uint32_t)e, t, b->keys[2 * r],
                                          b->keys[2 * r + 1], &fl);
    float ret = b->ep_return[idx] + rew;

    if (next_obs) {
        const int64_t d = qf_env_obs_dim(b->kind, p);
        qf_env_observe(b->kind, p, &s, next_obs + idx * d);
    }
    if (next_index) next_index[idx] = qf_env_state_index(b->kind, p, &s);

    if (fl & (QF_TERMINAL | QF_TRUNCATED)) {
        qf_batch_end_episode(b, r, e, idx, &s, ret, fl, t);
        ret = 0.0f;
    }
    qf_batch_store(b, idx, n, &s);
    b->ep_return[idx] = ret;
    b->reward[idx] = rew;
    b->flags[idx] = (uint8_t)fl;
}

/* Observation of the current state of env (r, e) (after auto-reset: what the agent acts on). */
QF_HD static inline void qf_batch_observe_one(const qf_env_batch *b, int32_t r, int32_t e, float *obs,
                                              int32_t *index) {
    const int64_t n = (int64_t)b->R * b->E, idx = (int64_t)r * b->E + e;
    const qf_env_params *p = &b->params[r];
    qf_env_state s = qf_batch_load(b, idx, n);
    if (obs) qf_env_observe(b->kind, p, &s, obs + idx * (int64_t)qf_env_obs_dim(b->kind, p));
    if (index) index[idx] = qf_env_state_index(b->kind, p, &s);
}

#endif /* QF_ENV_BATCH_H */
