/* bandit.h — K-armed Bernoulli bandit, one step per episode.
 *
 * Pulling arm a pays 1 with probability mean[a], else 0, and ends the episode (terminal). Arm means
 * come from `probs` when given (e.g. env.probs=[0.9,0.8,0.7]); otherwise each run draws its own,
 * mean[a] ~ U(0, 1) from the run's seed. The observation is the constant 1 (state index 0). */
#ifndef QF_BANDIT_H
#define QF_BANDIT_H
#include "qf_common.h"

#define QF_MAX_ARMS 64

typedef struct qf_bandit_params {
    int32_t arms;
    int32_t n_probs; /* number of entries given in probs; 0 = draw per run */
    float probs[QF_MAX_ARMS];
} qf_bandit_params;

#define QF_BANDIT_PARAMS(X)                                                                        \
    X(qf_bandit_params, arms, QF_P_INT, 10, 1, QF_MAX_ARMS, "number of arms K (set by probs when given)") \
    X(qf_bandit_params, probs, QF_P_LIST, 0, 0, 1,                                                 \
      "arm means, e.g. [0.9,0.8,0.7]; default: drawn U(0,1) per run from its seed")

/* Mean of arm a for the run with key (k0, k1). */
QF_HD static inline float qf_bandit_mean(const qf_bandit_params *p, uint32_t k0, uint32_t k1, int32_t a) {
    /* both read, then a select: a conditional load at a varying index needs a masked gather,
     * which AVX2 lacks (GCC 12 then leaves the loop over envs scalar). The unconditional load is
     * kept inside the array for any a (QF_MAX_ARMS is a power of two); a valid arm reads probs[a] */
    const float given = p->probs[(uint32_t)a & (QF_MAX_ARMS - 1u)];
    qf_rng g = qf_rng_make(k0, k1, QF_STREAM_ARMS, (uint32_t)a, 0);
    const float drawn = qf_u01(qf_rng_next(&g).v[0]);
    return p->n_probs > 0 ? given : drawn;
}

QF_HD static inline float qf_bandit_step(const qf_bandit_params *p, int32_t action, qf_rng *g,
                                         uint32_t k0, uint32_t k1, uint32_t *flags) {
    const float mean = qf_bandit_mean(p, k0, k1, action);
    *flags |= QF_TERMINAL;
    return qf_u01(qf_rng_next(g).v[0]) < mean ? 1.0f : 0.0f;
}

#endif /* QF_BANDIT_H */
