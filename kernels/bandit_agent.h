/* bandit_agent.h — multi-armed bandit strategies over many bandit instances at once ("bandits at
 * scale"): the fleet layout and the per-instance work, written once for C and CUDA and called by
 * kernels/cpu/bandit_cpu.c and kernels/cuda/bandit_cuda.cu.
 *
 * A fleet is R runs x E instances; run r has one strategy (epsilon-greedy, UCB1, Beta-Bernoulli
 * Thompson sampling, Boltzmann over empirical means) with its parameters, and the Philox key of
 * its seed. Instance (r, e) is element idx = r*E + e; its state is the pull count n_a and the
 * success count s_a of every arm, stored arm-major: pulls[a*N + idx], wins[a*N + idx] (N = R*E).
 * Pseudo-regret needs no state of its own: sum_t (mu* - mu_{a_t}) = sum_a n_a (mu* - mu_a), computed
 * exactly (in double) from the counts by whoever reads them (host/bandits.c).
 *
 * One step of an instance at global step t pulls one arm: the choice draws from the BANDIT stream
 * (counter: instance e, step t), the reward is the bandit environment's own step (envs/bandit.h,
 * STEP stream, instance e, step t: the same draw env_step would make for env e of that run).
 *
 * Initialisation: epsilon, ucb1 and boltzmann pull every untried arm once first (the lowest index
 * first); thompson needs no initialisation (prior Beta(1, 1)). Ties between equal arm values are
 * broken uniformly at random (one random word). Every operation is +, -, *, /, sqrtf, conversions
 * and the portable qf_logf / qf_cosf / qf_expf, so the CPU and the CUDA backend choose the same arms,
 * bit for bit. */
#ifndef QF_BANDIT_AGENT_H
#define QF_BANDIT_AGENT_H
#include "../envs/bandit.h"

enum {
    QF_BANDIT_EPSILON = 0,   /* fixed epsilon: uniform arm w.p. eps, else argmax of s_a / n_a    */
    QF_BANDIT_UCB1 = 1,      /* Auer et al. 2002: argmax s_a / n_a + sqrt(2 ln t / n_a)            */
    QF_BANDIT_THOMPSON = 2,  /* argmax of theta_a ~ Beta(1 + s_a, 1 + n_a - s_a)                   */
    QF_BANDIT_BOLTZMANN = 3, /* arm ~ softmax((s_a / n_a) / temp) (Gumbel-max)                     */
    QF_BANDIT_N_STRATEGIES = 4
};
/* Their names (strategies=), in the order above. */
#define QF_BANDIT_NAMES "epsilon", "ucb1", "thompson", "boltzmann"

/* Strategy of a run and its parameters. */
typedef struct qf_bandit_hp {
    int32_t strategy; /* QF_BANDIT_* */
    float eps;        /* epsilon: exploration probability */
    float temp;       /* boltzmann: temperature (> 0) */
} qf_bandit_hp;

typedef struct qf_bandit_fleet {
    int32_t R, E, K;        /* runs, instances per run, arms (= env.arms)                      */
    qf_bandit_params env;   /* the bandit: means from env.probs, or drawn per run from its key */
    const uint32_t *keys;   /* [R][2] Philox key of each run (device)                          */
    const qf_bandit_hp *hp; /* [R] strategy of each run (device)                               */
    int32_t *pulls;         /* [K][N] n_a: pulls of arm a by instance idx at pulls[a*N + idx]  */
    int32_t *wins;          /* [K][N] s_a: rewards of 1 among them                             */
} qf_bandit_fleet;

/* ---------------------------------------------------------------------------------------------
 * Random variates (portable float math only). */

/* Uniform in (0, 1), both ends open: safe for log(-log u). */
QF_HD static inline float qf_u01_open(uint32_t u) { return ((float)(u >> 8) + 0.5f) * 5.9604644775390625e-08f; }

/* (normal, uniform) pairs for Gamma draws: one Philox block gives two pairs (Box-Muller's cos and
 * sin normals from two words, uniforms in (0, 1] from the other two). */
typedef struct qf_nu_stream {
    qf_rng *g;
    float z[2], u[2];
    int left;
} qf_nu_stream;

QF_HD static inline qf_nu_stream qf_nu_make(qf_rng *g) {
    qf_nu_stream s;
    s.g = g;
    s.z[0] = s.z[1] = s.u[0] = s.u[1] = 0.0f;
    s.left = 0;
    return s;
}

QF_HD static inline void qf_nu_next(qf_nu_stream *s, float *z, float *u) {
    if (s->left == 0) {
        const philox4x32_ctr_t w = qf_rng_next(s->g);
        const float rad = sqrtf(-2.0f * qf_logf(qf_u01_open0(w.v[0])));
        float sn, cs;
        qf_sincosf(6.2831853071795865f * qf_u01(w.v[1]), &sn, &cs);
        s->z[0] = rad * sn;
        s->z[1] = rad * cs;
        s->u[0] = qf_u01_open0(w.v[2]);
        s->u[1] = qf_u01_open0(w.v[3]);
        s->left = 2;
    }
    s->left -= 1;
    *z = s->z[s->left];
    *u = s->u[s->left];
}

/* Gamma(shape, 1) by Marsaglia and Tsang (2000), one (normal, uniform) pair per attempt; acceptance
 * is above 95% per attempt for shape >= 1. For shape < 1: Gamma(shape + 1) * U^(1/shape) (their
 * boost). shape must be > 0. Note: for large shapes (Thompson late in a run: 1 + s_a in the
 * thousands) the log test d (1 - v + ln v) loses a few bits in float; the squeeze test, which
 * decides most draws exactly, is unaffected (see tests/test_bandits.cc for the moment checks). */
QF_HD static inline float qf_gamma(float shape, qf_nu_stream *ns) {
    float boost = 1.0f, z, u;
    if (shape < 1.0f) {
        qf_nu_next(ns, &z, &u);
        boost = qf_expf(qf_logf(u) / shape);
        shape = shape + 1.0f;
    }
    const float d = shape - 1.0f / 3.0f;
    const float c = 1.0f / sqrtf(9.0f * d);
    for (int attempt = 0; attempt < 64; attempt++) {
        qf_nu_next(ns, &z, &u);
        float v = 1.0f + c * z;
        if (v <= 0.0f) continue;
        v = v * v * v;
        const float z2 = z * z;
        if (u < 1.0f - 0.0331f * (z2 * z2)) return d * v * boost;
        if (qf_logf(u) < 0.5f * z2 + d * ((1.0f - v) + qf_logf(v))) return d * v * boost;
    }
    return d * boost; /* 64 rejections in a row: probability below 1e-80 */
}

/* Beta(a, b) = X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
QF_HD static inline float qf_beta_ns(float a, float b, qf_nu_stream *ns) {
    const float x = qf_gamma(a, ns);
    const float y = qf_gamma(b, ns);
    const float sum = x + y;
    return sum > 0.0f ? x / sum : 0.5f;
}

QF_HD static inline float qf_beta(float a, float b, qf_rng *g) {
    qf_nu_stream ns = qf_nu_make(g);
    return qf_beta_ns(a, b, &ns);
}

/* ---------------------------------------------------------------------------------------------
 * Arm choice. */

/* Argmax of v[0..K), ties broken uniformly at random with the random word w. */
QF_HD static inline int32_t qf_bandit_argmax(const float *v, int32_t K, uint32_t w) {
    float best = v[0];
    int32_t ties = 1;
    for (int32_t a = 1; a < K; a++) {
        if (v[a] > best) {
            best = v[a];
            ties = 1;
        } else if (v[a] == best) {
            ties++;
        }
    }
    int32_t j = (int32_t)(((uint64_t)w * (uint32_t)ties) >> 32);
    for (int32_t a = 0; a < K; a++)
        if (v[a] == best && j-- == 0) return a;
    return 0;
}

/* Argmax of the empirical means s_a / n_a (all n_a > 0), compared exactly as fractions
 * (s_a n_b vs s_b n_a in 64-bit integers); ties broken uniformly at random with w. */
QF_HD static inline int32_t qf_bandit_argmax_mean(const int32_t *n, const int32_t *s, int32_t K,
                                                  uint32_t w) {
    int32_t best = 0, ties = 1;
    for (int32_t a = 1; a < K; a++) {
        const int64_t lhs = (int64_t)s[a] * n[best], rhs = (int64_t)s[best] * n[a];
        if (lhs > rhs) {
            best = a;
            ties = 1;
        } else if (lhs == rhs) {
            ties++;
        }
    }
    int32_t j = (int32_t)(((uint64_t)w * (uint32_t)ties) >> 32);
    for (int32_t a = 0; a < K; a++)
        if ((int64_t)s[a] * n[best] == (int64_t)s[best] * n[a] && j-- == 0) return a;
    return best;
}

/* The arm instance e of a run with strategy hp and key (k0, k1) pulls at step t, given its counts
 * n[K], s[K]. */
QF_HD static inline int32_t qf_bandit_choose(const qf_bandit_hp *hp, const int32_t *n, const int32_t *s,
                                             int32_t K, uint32_t k0, uint32_t k1, int32_t e, uint32_t t) {
    float v[QF_MAX_ARMS];
    int64_t total = 0;
    for (int32_t a = 0; a < K; a++) {
        if (n[a] == 0 && hp->strategy != QF_BANDIT_THOMPSON) return a; /* untried arms first */
        total += n[a];
    }
    qf_rng g = qf_rng_make(k0, k1, QF_STREAM_BANDIT, (uint32_t)e, t);
    switch (hp->strategy) {
    case QF_BANDIT_EPSILON: {
        const philox4x32_ctr_t w = qf_rng_next(&g);
        if (qf_u01(w.v[0]) < hp->eps) return (int32_t)(((uint64_t)w.v[1] * (uint32_t)K) >> 32);
        return qf_bandit_argmax_mean(n, s, K, w.v[2]);
    }
    case QF_BANDIT_UCB1: {
        const float two_log_t = 2.0f * qf_logf((float)total);
        for (int32_t a = 0; a < K; a++) {
            const float na = (float)n[a];
            v[a] = (float)s[a] / na + sqrtf(two_log_t / na);
        }
        return qf_bandit_argmax(v, K, qf_rng_next(&g).v[0]);
    }
    case QF_BANDIT_THOMPSON: {
        qf_nu_stream ns = qf_nu_make(&g);
        for (int32_t a = 0; a < K; a++)
            v[a] = qf_beta_ns(1.0f + (float)s[a], 1.0f + (float)(n[a] - s[a]), &ns);
        return qf_bandit_argmax(v, K, qf_rng_next(&g).v[0]);
    }
    default: { /* QF_BANDIT_BOLTZMANN: argmax of mean/temp + Gumbel noise samples the softmax */
        philox4x32_ctr_t w = qf_rng_next(&g);
        for (int32_t a = 0; a < K; a++) {
            if (a > 0 && (a & 3) == 0) w = qf_rng_next(&g);
            const float gumbel = -qf_logf(-qf_logf(qf_u01_open(w.v[a & 3])));
            v[a] = ((float)s[a] / (float)n[a]) / hp->temp + gumbel;
        }
        /* exact ties have probability ~0 under continuous noise: the last word breaks them */
        return qf_bandit_argmax(v, K, w.v[3]);
    }
    }
}

/* One step of instance e of run r at global step t: choose, pull (the bandit env's step), count. */
QF_HD static inline void qf_bandit_agent_step(const qf_bandit_fleet *f, int32_t r, int32_t e, uint32_t t) {
    const int64_t N = (int64_t)f->R * f->E, idx = (int64_t)r * f->E + e;
    const int32_t K = f->K;
    const uint32_t k0 = f->keys[2 * r], k1 = f->keys[2 * r + 1];
    int32_t n[QF_MAX_ARMS], s[QF_MAX_ARMS];
    for (int32_t a = 0; a < K; a++) {
        n[a] = f->pulls[a * N + idx];
        s[a] = f->wins[a * N + idx];
    }
    const qf_bandit_hp hp = f->hp[r];
    const int32_t arm = qf_bandit_choose(&hp, n, s, K, k0, k1, e, t);
    qf_rng gs = qf_rng_make(k0, k1, QF_STREAM_STEP, (uint32_t)e, t);
    uint32_t flags = 0;
    const float reward = qf_bandit_step(&f->env, arm, &gs, k0, k1, &flags);
    f->pulls[arm * N + idx] = n[arm] + 1;
    f->wins[arm * N + idx] = s[arm] + (reward > 0.5f ? 1 : 0);
}

#endif /* QF_BANDIT_AGENT_H */
