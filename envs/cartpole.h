/* cartpole.h — Gymnasium CartPole-v1 semantics in float32.
 *
 * Euler integration with tau = 0.02, force +-10 (action 1 pushes right), gravity 9.8, cart mass 1,
 * pole mass 0.1, half-length 0.5. The episode terminates when |x| > 2.4 or |theta| > 12 degrees and
 * is truncated after `horizon` steps (500 for v1). Reward 1 on every step, the last included.
 * Initial state: each of (x, x_dot, theta, theta_dot) ~ U(-0.05, 0.05).
 * Gymnasium integrates in float64; qfleet in float32 (as gymnax): same equations, same order.
 * State: f = (x, x_dot, theta, theta_dot). Observation: those four floats. */
#ifndef QF_CARTPOLE_H
#define QF_CARTPOLE_H
#include "qf_common.h"

typedef struct qf_cartpole_params {
    int32_t horizon;
} qf_cartpole_params;

#define QF_CARTPOLE_PARAMS(X)                                                                      \
    X(qf_cartpole_params, horizon, QF_P_INT, 500, 1, 100000000, "time limit: truncate after this many steps")

#define QF_CARTPOLE_THETA_LIMIT 0.20943951023931953f /* 12 * 2 * pi / 360 */
#define QF_CARTPOLE_X_LIMIT 2.4f

/* The reset from its one block of random words r (qf_rng_next of the RESET stream). */
QF_HD static inline void qf_cartpole_reset_words(qf_env_state *s, philox4x32_ctr_t r) {
    for (int j = 0; j < 4; j++) s->f[j] = qf_u01(r.v[j]) * 0.1f - 0.05f;
    s->t = 0;
}

QF_HD static inline void qf_cartpole_reset(qf_env_state *s, qf_rng *g) { qf_cartpole_reset_words(s, qf_rng_next(g)); }

QF_HD static inline float qf_cartpole_step(qf_env_state *s, int32_t action, uint32_t *flags) {
    const float gravity = 9.8f, masspole = 0.1f, total_mass = 1.1f, length = 0.5f;
    const float polemass_length = 0.05f, tau = 0.02f;
    float x = s->f[0], x_dot = s->f[1], theta = s->f[2], theta_dot = s->f[3];
    const float force = action == 1 ? 10.0f : -10.0f;
    float sintheta, costheta;
    qf_sincosf(theta, &sintheta, &costheta);
    float temp = (force + polemass_length * (theta_dot * theta_dot) * sintheta) / total_mass;
    float thetaacc = (gravity * sintheta - costheta * temp) /
                     (length * (4.0f / 3.0f - masspole * (costheta * costheta) / total_mass));
    float xacc = temp - polemass_length * thetaacc * costheta / total_mass;
    x = x + tau * x_dot;
    x_dot = x_dot + tau * xacc;
    theta = theta + tau * theta_dot;
    theta_dot = theta_dot + tau * thetaacc;
    s->f[0] = x;
    s->f[1] = x_dot;
    s->f[2] = theta;
    s->f[3] = theta_dot;
    if (x < -QF_CARTPOLE_X_LIMIT || x > QF_CARTPOLE_X_LIMIT || theta < -QF_CARTPOLE_THETA_LIMIT ||
        theta > QF_CARTPOLE_THETA_LIMIT)
        *flags |= QF_TERMINAL;
    return 1.0f;
}

QF_HD static inline void qf_cartpole_observe(const qf_env_state *s, float *obs) {
    for (int j = 0; j < 4; j++) obs[j] = s->f[j];
}

/* NULL when s is a state the dynamics can hold between two steps: step t in [0, horizon), the four
 * floats finite, |x| <= 2.4 and |theta| <= 12 degrees (a state past them has terminated and been
 * reset); else the bad field's name. */
QF_HD static inline const char *qf_cartpole_state_check(const qf_cartpole_params *p, const qf_env_state *s) {
    if (s->t < 0 || (p->horizon > 0 && s->t >= p->horizon)) return "t (episode step)";
    if (!qf_finitef(s->f[0]) || s->f[0] < -QF_CARTPOLE_X_LIMIT || s->f[0] > QF_CARTPOLE_X_LIMIT) return "f[0] (x)";
    if (!qf_finitef(s->f[1])) return "f[1] (x_dot)";
    if (!qf_finitef(s->f[2]) || s->f[2] < -QF_CARTPOLE_THETA_LIMIT || s->f[2] > QF_CARTPOLE_THETA_LIMIT)
        return "f[2] (theta)";
    if (!qf_finitef(s->f[3])) return "f[3] (theta_dot)";
    return 0;
}

#endif /* QF_CARTPOLE_H */
