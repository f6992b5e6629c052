/* mountain_car.h — Gymnasium MountainCar-v0 semantics in float32.
 *
 * velocity += (action - 1) * 0.001 + cos(3 * position) * (-0.0025), clipped to +-0.07;
 * position += velocity, clipped to [-1.2, 0.6]; at the left wall a negative velocity becomes 0.
 * Terminates when position >= 0.5 and velocity >= 0; reward -1 per step; truncated after
 * `horizon` steps (200 for v0, 1000 in bsuite's mountain_car). Initial position ~ U(-0.6, -0.4),
 * velocity 0. Actions: 0 push left, 1 no push, 2 push right.
 * State: f = (position, velocity). Observation: those two floats. */
#ifndef QF_MOUNTAIN_CAR_H
#define QF_MOUNTAIN_CAR_H
#include "qf_common.h"

typedef struct qf_mountain_car_params {
    int32_t horizon;
} qf_mountain_car_params;

#define QF_MOUNTAIN_CAR_PARAMS(X)                                                                  \
    X(qf_mountain_car_params, horizon, QF_P_INT, 200, 1, 100000000,                                \
      "time limit: truncate after this many steps (200 in Gymnasium, 1000 in bsuite)")

/* The reset from its one block of random words r (qf_rng_next of the RESET stream). */
QF_HD static inline void qf_mountain_car_reset_words(qf_env_state *s, philox4x32_ctr_t r) {
    s->f[0] = qf_u01(r.v[0]) * 0.2f - 0.6f;
    s->f[1] = 0.0f;
    s->t = 0;
}

QF_HD static inline void qf_mountain_car_reset(qf_env_state *s, qf_rng *g) {
    qf_mountain_car_reset_words(s, qf_rng_next(g));
}

/* a ? x : y without a branch (the bits of x or y): the clips below as branches are threaded by
 * GCC's jump threading into nested selects between masks of different widths, which GCC 12 does
 * not vectorize; as bit masks the step loop vectorizes with AVX2 as with AVX-512 */
QF_HD static inline float qf_mountain_car_select(int a, float x, float y) {
    const uint32_t m = 0u - (uint32_t)(a != 0);
    return qf_u2f((qf_f2u(x) & m) | (qf_f2u(y) & ~m));
}

QF_HD static inline float qf_mountain_car_step(qf_env_state *s, int32_t action, uint32_t *flags) {
    float position = s->f[0], velocity = s->f[1];
    velocity = velocity + (float)(action - 1) * 0.001f + qf_cosf(3.0f * position) * -0.0025f;
    /* each clip as two selects in a row: the same value as the nested one for every input, NaN
     * included */
    velocity = qf_mountain_car_select(velocity < -0.07f, -0.07f, velocity);
    velocity = qf_mountain_car_select(velocity > 0.07f, 0.07f, velocity);
    position = position + velocity;
    position = qf_mountain_car_select(position < -1.2f, -1.2f, position);
    position = qf_mountain_car_select(position > 0.6f, 0.6f, position);
    velocity = qf_mountain_car_select(position == -1.2f && velocity < 0.0f, 0.0f, velocity);
    s->f[0] = position;
    s->f[1] = velocity;
    if (position >= 0.5f && velocity >= 0.0f) *flags |= QF_TERMINAL;
    return -1.0f;
}

QF_HD static inline void qf_mountain_car_observe(const qf_env_state *s, float *obs) {
    obs[0] = s->f[0];
    obs[1] = s->f[1];
}

/* NULL when s is a state the dynamics can hold between two steps: step t in [0, horizon), position
 * in [-1.2, 0.6] and velocity in [-0.07, 0.07] (the step's clips), not terminal (position >= 0.5
 * with velocity >= 0 has ended and been reset); else the bad field's name. */
QF_HD static inline const char *qf_mountain_car_state_check(const qf_mountain_car_params *p, const qf_env_state *s) {
    if (s->t < 0 || (p->horizon > 0 && s->t >= p->horizon)) return "t (episode step)";
    if (!qf_finitef(s->f[0]) || s->f[0] < -1.2f || s->f[0] > 0.6f) return "f[0] (position)";
    if (!qf_finitef(s->f[1]) || s->f[1] < -0.07f || s->f[1] > 0.07f) return "f[1] (velocity)";
    if (s->f[0] >= 0.5f && s->f[1] >= 0.0f) return "f[0] (position: terminal)";
    return 0;
}

#endif /* QF_MOUNTAIN_CAR_H */
