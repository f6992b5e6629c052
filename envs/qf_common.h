/* qf_common.h — what every environment header shares: the host/device macro, counter-based random
 * bits (Philox4x32-10 from Random123) and float math written with plain IEEE-754 operations only.
 *
 * Every function here compiles as C11, C++ and CUDA from this one text. sinf/cosf/logf of the C
 * library and of CUDA differ in their last bits, so the environments use the versions below, built
 * from +, -, *, / and conversions, which both sides round identically (the CUDA translation units
 * are compiled with --fmad=false and the C ones with -ffp-contract=off, so nothing is fused).
 * Result: the CPU and the GPU backend produce bit-identical trajectories for the same seed. */
#ifndef QF_COMMON_H
#define QF_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <Random123/philox.h>

#if defined(__CUDACC__)
#define QF_HD __host__ __device__
#else
#define QF_HD
#endif

/* A function kept out of line in host builds (GCC, Clang): for work under a rare branch, such as
 * DeepSea's stochastic noise, so that its caller stays small enough to be inlined into the CPU
 * backend's per-kind loops. Results are the same either way; CUDA inlines as usual. */
#if defined(__CUDACC__)
#define QF_HD_OUTLINE QF_HD static inline
#elif defined(__GNUC__)
#define QF_HD_OUTLINE static __attribute__((noinline, unused))
#else
#define QF_HD_OUTLINE static inline
#endif

/* ---------------------------------------------------------------------------------------------
 * Random bits. key = (seed, run id) of a run; counter = (stream, env, step, draw).
 * No generator state exists: any draw can be recomputed from its coordinates. */
enum {
    QF_STREAM_STEP = 1,   /* randomness inside env transitions (slips, reward noise, bandit pulls) */
    QF_STREAM_RESET = 2,  /* initial states; step index t+1 for the reset that follows step t   */
    QF_STREAM_ACTION = 3, /* random actions drawn on the device (benchmarks, uniform policies)   */
    QF_STREAM_MAP = 4,    /* DeepSea per-cell action mapping                                     */
    QF_STREAM_ARMS = 5,   /* bandit arm means drawn per run                                      */
    QF_STREAM_ACT = 6,    /* the learner's action selection (epsilon coin, Boltzmann sample)     */
    QF_STREAM_INIT = 7,   /* initial network parameters                                          */
    QF_STREAM_SAMPLE = 8, /* replay sampling                                                     */
    QF_STREAM_MASK = 9,   /* bootstrap masks, drawn when a transition is stored                  */
    QF_STREAM_HEAD = 10,  /* the ensemble head an env follows for an episode                     */
    QF_STREAM_PRIOR = 11, /* the fixed random prior networks (and RND's fixed target)            */
    QF_STREAM_HASH = 12,  /* SimHash projection matrices                                         */
    QF_STREAM_BANDIT = 13, /* bandit agents' own draws (epsilon coins, Thompson samples)         */
    QF_STREAM_GRID = 14,   /* gridworld object cells and true reward weights (from map_seed)      */
    QF_STREAM_DEMO = 15    /* demonstrations drawn from a policy (IRL, learning from demos)       */
};

typedef struct qf_rng {
    philox4x32_key_t key;
    philox4x32_ctr_t ctr;
} qf_rng;

QF_HD static inline qf_rng qf_rng_make(uint32_t k0, uint32_t k1, uint32_t stream, uint32_t env,
                                       uint32_t step) {
    qf_rng g;
    g.key.v[0] = k0;
    g.key.v[1] = k1;
    g.ctr.v[0] = stream;
    g.ctr.v[1] = env;
    g.ctr.v[2] = step;
    g.ctr.v[3] = 0;
    return g;
}

/* Four fresh 32-bit words; advances the draw counter. */
QF_HD static inline philox4x32_ctr_t qf_rng_next(qf_rng *g) {
    philox4x32_ctr_t r = philox4x32(g->ctr, g->key);
    g->ctr.v[3] += 1;
    return r;
}

/* Uniform in [0, 1) with 24 random bits (exact in float). */
QF_HD static inline float qf_u01(uint32_t u) { return (float)(u >> 8) * 5.9604644775390625e-08f; }

/* Uniform in (0, 1]: safe for log. */
QF_HD static inline float qf_u01_open0(uint32_t u) {
    return (float)((u >> 8) + 1u) * 5.9604644775390625e-08f;
}

/* ---------------------------------------------------------------------------------------------
 * Portable float math (max error a few ulp on the ranges the environments use). */
QF_HD static inline uint32_t qf_f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
QF_HD static inline float qf_u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* 1 when x is neither infinite nor NaN (by its bits: safe under any floating-point flags). */
QF_HD static inline int qf_finitef(float x) { return (qf_f2u(x) & 0x7f800000u) != 0x7f800000u; }

/* sin and cos of x together. Cody-Waite reduction by pi/2, exact while |x| < 8192*pi/2 ~ 12868
 * (beyond, the error grows slowly: ~1e-6 near 1e5; the environments stay far below that),
 * then Cephes' minimax polynomials on [-pi/4, pi/4]. NaN in, NaN out. */
QF_HD static inline void qf_sincosf(float x, float *s_out, float *c_out) {
    float kf = x * 0.636619772367581f;
    int32_t k = 0;
    if (kf < 1048576.0f && kf > -1048576.0f) k = (int32_t)(kf >= 0.0f ? kf + 0.5f : kf - 0.5f);
    float fk = (float)k;
    float r = ((x - fk * 1.5703125f) - fk * 4.837512969970703125e-4f) - fk * 7.54978995489188216e-8f;
    float z = r * r;
    float s = r + r * z * (-1.6666654611e-1f + z * (8.3321608736e-3f + z * -1.9515295891e-4f));
    float c = 1.0f - 0.5f * z +
              z * z * (4.166664568298827e-2f + z * (-1.388731625493765e-3f + z * 2.443315711809948e-5f));
    /* quadrant q = k mod 4: sin = (s, c, -s, -c)[q], cos = (c, -s, -c, s)[q]; written as selects
     * (no switch) so that loops calling it vectorize; negation is exact, so the bits are those of
     * the table */
    const uint32_t q = (uint32_t)k & 3u;
    const float sv = (q & 1u) ? c : s, cv = (q & 1u) ? s : c;
    *s_out = (q & 2u) ? -sv : sv;
    *c_out = ((q + 1u) & 2u) ? -cv : cv;
}

QF_HD static inline float qf_cosf(float x) {
    float s, c;
    qf_sincosf(x, &s, &c);
    return c;
}

/* Natural log for finite normal x > 0 (Cephes' logf polynomial). */
QF_HD static inline float qf_logf(float x) {
    uint32_t b = qf_f2u(x);
    int32_t e = (int32_t)((b >> 23) & 0xffu) - 127;
    float m = qf_u2f((b & 0x7fffffu) | 0x3f800000u); /* [1, 2) */
    if (m > 1.41421356f) {
        m = m * 0.5f;
        e += 1;
    }
    float f = m - 1.0f;
    float z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    float fe = (float)e;
    y = y + -2.12194440e-4f * fe;
    y = y + -0.5f * z;
    float out = f + y;
    return out + 0.693359375f * fe;
}

/* exp(x) (Cephes' expf: Cody-Waite reduction by ln 2, degree-6 polynomial, 2^k from the bits);
 * a few ulp. Returns 0 below -87.3 (no subnormals) and +inf above 88.7. */
QF_HD static inline float qf_expf(float x) {
    if (x > 88.72283905f) return qf_u2f(0x7f800000u);
    if (x < -87.33654475f) return 0.0f;
    float kf = x * 1.44269504088896341f;
    int32_t k = (int32_t)(kf >= 0.0f ? kf + 0.5f : kf - 0.5f);
    float fk = (float)k;
    float r = (x - fk * 0.693359375f) - fk * -2.12194440e-4f;
    float z = r * r;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    /* k in [-126, 128]; split 2^k in two factors so that k = 128 and k = -126 stay representable */
    const int32_t k1 = k / 2, k2 = k - k1;
    return y * qf_u2f((uint32_t)(k1 + 127) << 23) * qf_u2f((uint32_t)(k2 + 127) << 23);
}

/* b^n for an integer n >= 0 by repeated squaring: IEEE products only, so every machine rounds it
 * alike (glibc's powf picks a per-CPU variant at load time). Within about log2(n) ulp of b^n. */
QF_HD static inline float qf_powi(float b, int32_t n) {
    float r = 1.0f;
    while (n > 0) {
        if (n & 1) r = r * b;
        b = b * b;
        n >>= 1;
    }
    return r;
}

/* One standard normal from two random words (Box-Muller). */
QF_HD static inline float qf_normal(uint32_t u1, uint32_t u2) {
    float rad = sqrtf(-2.0f * qf_logf(qf_u01_open0(u1)));
    return rad * qf_cosf(6.2831853071795865f * qf_u01(u2));
}

/* ---------------------------------------------------------------------------------------------
 * State of one environment, whatever its kind. Stored struct-of-arrays by the batch code; each
 * kind uses the first nf float and ni int fields (see its spec). t counts steps in the episode. */
#define QF_NF 4
#define QF_NI 2
typedef struct qf_env_state {
    float f[QF_NF];
    int32_t i[QF_NI];
    int32_t t;
} qf_env_state;

/* Per-step flags. */
enum {
    QF_TERMINAL = 1u,     /* the episode ended in a terminal state: do not bootstrap            */
    QF_TRUNCATED = 2u,    /* the episode was cut by the time limit: bootstrap from next obs     */
    QF_TREASURE = 4u,     /* DeepSea: the +1 treasure reward was collected on this step         */
    QF_BAD_EPISODE = 8u   /* DeepSea: the episode that just ended was "bad" (bsuite's flag)     */
};

/* Parameter types used by the spec tables. */
/* QF_P_CHOICE: an int32 index into the names "a|b|c" that open the parameter's doc, up to ": ". */
enum { QF_P_INT = 0, QF_P_FLOAT = 1, QF_P_BOOL = 2, QF_P_LIST = 3, QF_P_CHOICE = 4 };

#endif /* QF_COMMON_H */
