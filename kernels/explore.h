/* explore.h — exploration on the device: per-element math and state layouts, written once for the
 * CPU reference (kernels/cpu/explore_cpu.c) and the CUDA kernels (kernels/cuda/explore_cuda.cu).
 *
 * - Bootstrapped ensembles (Osband et al. 2016, 2018): K heads per run are K networks of the fleet
 *   (g = r*K + k). Each head has a fixed random prior network of the same shape, never trained,
 *   whose output times prior_scale is added to the head's output in acting and in targets. Each
 *   stored transition carries a K-bit mask drawn from Bernoulli(mask_p) (MASK stream); head k learns
 *   from it only when bit k is set. Every env draws one head at each episode start (HEAD stream).
 * - Counts: exact visit counts N(s) of arrival states for discrete envs, or SimHash pseudo-counts
 *   (Tang et al. 2017): code = sign bits of A x for a fixed Gaussian A [k][D] per run, counted in
 *   an open-addressing table per run. Bonus 1/sqrt(N(s')), computed when a transition is sampled,
 *   so it is never stale.
 * - RND (Burda et al. 2018): a fixed random target network and a trained predictor; inputs are
 *   observations normalized by running per-dimension statistics and clipped to +-5; the intrinsic
 *   reward is the predictor's squared error divided by a running std of the discounted intrinsic
 *   return. rnd_input=state_action (QF_RND_INPUT_SA) gives target and predictor the pair (s, a) of a
 *   transition instead of its arrival state s' (qf_rnd_pair_index, qf_rnd_pair_dense below).
 * - RND's intrinsic value (rnd_value=separate, Burda et al. 2018's two value heads for Q-learning):
 *   a second Q-network per run learns Q_I from the intrinsic reward alone, discounted by gamma_int
 *   and never cut at episode ends; the run acts on Q_E + beta Q_I (qf_add_int_q_run). */
#ifndef QF_EXPLORE_H
#define QF_EXPLORE_H
#include "learn.h"

/* ---- ensembles ---------------------------------------------------------------------------- */

/* Head followed by env e of the run with key (k0, k1) for the episode that starts at step t. */
QF_HD static inline int32_t qf_draw_head(uint32_t k0, uint32_t k1, int32_t e, uint32_t t, int32_t n_heads) {
    qf_rng g = qf_rng_make(k0, k1, QF_STREAM_HEAD, (uint32_t)e, t);
    return (int32_t)(((uint64_t)qf_rng_next(&g).v[0] * (uint64_t)(uint32_t)n_heads) >> 32);
}

/* Bootstrap mask of the transition env e stores at step t: bit k ~ Bernoulli(mask_p) for the run's
 * n_heads heads (mask_p >= 1 or one head: every head trains on everything). Heads 4i..4i+3 read the
 * i-th Philox draw of the (MASK, e, t) stream, so heads 0-31 get the same bits at any n_heads and
 * the masks of n_heads <= 32 equal those of the 32-bit masks before K could exceed 32. */
QF_HD static inline qf_mask qf_draw_mask(uint32_t k0, uint32_t k1, int32_t e, uint32_t t, int32_t n_heads,
                                         float mask_p) {
    if (n_heads <= 1 || mask_p >= 1.0f) return n_heads >= 64 ? ~(qf_mask)0 : (((qf_mask)1 << n_heads) - 1u);
    qf_rng g = qf_rng_make(k0, k1, QF_STREAM_MASK, (uint32_t)e, t);
    qf_mask m = 0;
    for (int32_t k = 0; k < n_heads; k += 4) { /* 4 heads per draw; the constant inner bound lets CUDA
                                                   unroll it (bits.v[k & 3] put bits in local memory) */
        const philox4x32_ctr_t bits = qf_rng_next(&g);
        for (int32_t j = 0; j < 4; j++)
            if (k + j < n_heads && qf_u01(bits.v[j]) < mask_p) m |= (qf_mask)1 << (k + j);
    }
    return m;
}

/* Q-diversity of run r's ensemble at one env step (docs/design-notes.md, "Q-diversity"): the mean
 * over its E envs' states s_e and the A actions of the population standard deviation across the
 * run's n_heads heads of Q_k(s_e, a), each head's output with its randomized prior as acting reads
 * it. q: [G][E][A] (run r's head k, env e at ((r*K + k)*E + e)*A). Two passes per (e, a) (mean,
 * then squared deviations), summed in (e, a) order in float; 0 for one head. */
QF_HD static inline float qf_q_diversity_run(const float *q, int64_t r, int32_t K, int32_t E, int32_t A,
                                             int32_t n_heads) {
    const int64_t hs = (int64_t)E * A; /* head stride */
    const float *base = q + (int64_t)r * K * hs;
    float sum = 0.0f;
    for (int64_t i = 0; i < hs; i++) {
        float m = 0.0f, ss = 0.0f;
        for (int32_t k = 0; k < n_heads; k++) m += base[k * hs + i];
        m /= (float)n_heads;
        for (int32_t k = 0; k < n_heads; k++) {
            const float d = base[k * hs + i] - m;
            ss += d * d;
        }
        sum += sqrtf(ss / (float)n_heads);
    }
    return sum / (float)hs;
}

/* Action of one env. q: its Q row of head 0, head k's row at q + k * head_stride; head: the head it
 * follows this episode. bits: 4 fresh random words (ACT stream). */
QF_HD static inline int32_t qf_act_one(const float *q, int64_t head_stride, int32_t A, const qf_run_hp *hp,
                                       int32_t head, uint32_t t, philox4x32_ctr_t bits) {
    if (hp->explore != QF_EXPLORE_BOOTSTRAP) return qf_select_action(q, A, hp, t, bits);
    if (hp->act_mode == QF_ACT_UCB) { /* argmax_a mean_k Q_k + c std_k Q_k */
        int32_t best = 0;
        float best_v = 0.0f;
        for (int32_t a = 0; a < A; a++) {
            float s = 0.0f, ss = 0.0f;
            for (int32_t k = 0; k < hp->n_heads; k++) s += q[k * head_stride + a];
            const float mean = s / (float)hp->n_heads;
            for (int32_t k = 0; k < hp->n_heads; k++) {
                const float d = q[k * head_stride + a] - mean;
                ss += d * d;
            }
            const float v = mean + hp->ucb_c * sqrtf(ss / (float)hp->n_heads);
            if (a == 0 || v > best_v || best_v != best_v) {
                best = a;
                best_v = v;
            }
        }
        return best;
    }
    /* greedy with the episode's head, or Boltzmann at alpha > 0 */
    qf_run_hp h = *hp;
    h.explore = hp->alpha > 0.0f ? QF_EXPLORE_BOLTZMANN : QF_EXPLORE_EPSILON;
    h.eps_start = h.eps_end = 0.0f;
    h.eps_steps = 0;
    return qf_select_action(q + head * head_stride, A, &h, t, bits);
}

/* ---- counts ------------------------------------------------------------------------------- */

enum { QF_COUNT_OFF = 0, QF_COUNT_EXACT = 1, QF_COUNT_SIMHASH = 2 };
/* Names of the modes a user chooses (count=), in the order above; OFF is no user choice (NULL). */
#define QF_COUNT_NAMES NULL, "exact", "simhash"

typedef struct qf_counts {
    int32_t R, mode;      /* QF_COUNT_*                                                   */
    int32_t S;            /* exact: states per run                                         */
    int32_t A;            /* actions; A > 0 also counts (state, action) pairs (optimistic acting) */
    int32_t bits, D;      /* SimHash: code length k and input width                        */
    int32_t log2cap;      /* SimHash: log2 of the table slots per run                      */
    uint32_t *cnt;        /* exact: [R][S]; SimHash: [R][2^log2cap] counts                  */
    uint64_t *key;        /* SimHash: [R][2^log2cap] code + 1 (0 = empty slot)             */
    float *proj;          /* SimHash: [R][bits][D] Gaussian projection                     */
    uint32_t *cnt_sa;     /* (state, action) counts: exact [R][S][A]; SimHash [R][2^log2cap]  */
    uint64_t *key_sa;     /* SimHash: [R][2^log2cap] keys of (code, action) pairs          */
} qf_counts;

/* Entry d of row i of run r's SimHash projection: N(0, 1) from the HASH stream. */
QF_HD static inline float qf_simhash_proj(uint32_t k0, uint32_t k1, int32_t i, int32_t d) {
    qf_rng g = qf_rng_make(k0, k1, QF_STREAM_HASH, (uint32_t)i, (uint32_t)d);
    philox4x32_ctr_t u = qf_rng_next(&g);
    return qf_normal(u.v[0], u.v[1]);
}

/* k-bit SimHash code of x [D]: bit i = (A_i . x > 0). The dot product runs in a fixed order. */
QF_HD static inline uint64_t qf_simhash_code(const float *proj, int32_t bits, int32_t D, const float *x) {
    uint64_t c = 0;
    for (int32_t i = 0; i < bits; i++) {
        float s = 0.0f;
        for (int32_t d = 0; d < D; d++) s += proj[(int64_t)i * D + d] * x[d];
        if (s > 0.0f) c |= (uint64_t)1 << i;
    }
    return c;
}

/* Hash-table keys are nonzero (0 marks an empty slot): a state code c is stored as c + 1, a
 * (code, action) pair as qf_sa_key (injective for codes of up to 57 bits). */
QF_HD static inline uint64_t qf_sa_key(uint64_t code, int32_t a) {
    const uint64_t k = (((code << 6) | (uint64_t)(uint32_t)a) ^ (code >> 58)) + 1;
    return k ? k : 1;
}

/* First probe slot of a key (Fibonacci hashing). */
QF_HD static inline uint32_t qf_hash_home_key(uint64_t k, int32_t log2cap) {
    return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> (64 - log2cap));
}
QF_HD static inline uint32_t qf_hash_home(uint64_t code, int32_t log2cap) { return qf_hash_home_key(code + 1, log2cap); }

/* The count stored under key k in one run's table (linear probing; 0 when absent). */
QF_HD static inline uint32_t qf_hash_count_key(const uint64_t *key, const uint32_t *cnt, int32_t log2cap, uint64_t k) {
    const uint32_t cap = 1u << log2cap, mask = cap - 1u;
    uint32_t s = qf_hash_home_key(k, log2cap);
    for (uint32_t probe = 0; probe < cap; probe++, s = (s + 1u) & mask) {
        if (key[s] == k) return cnt[s];
        if (key[s] == 0) return 0;
    }
    return 0;
}

/* The pseudo-count of a state code in one run's table. */
QF_HD static inline uint32_t qf_hash_count(const uint64_t *key, const uint32_t *cnt, int32_t log2cap,
                                           uint64_t code) {
    return qf_hash_count_key(key, cnt, log2cap, code + 1);
}

/* Optimism of acting for count runs: beta / sqrt(N(s, a) + 1) is added to Q(s, a), so an action
 * never tried in s looks beta better than its estimate (MBIE-EB style). */
QF_HD static inline float qf_count_act_bonus(float beta, uint32_t n_sa) { return beta / sqrtf((float)n_sa + 1.0f); }

/* Count bonus for a state seen n times (n >= 1 once the state was stored; 0 treated as 1). */
QF_HD static inline float qf_count_bonus(uint32_t n) { return 1.0f / sqrtf((float)(n ? n : 1u)); }

/* ---- RND ---------------------------------------------------------------------------------- */

/* What RND's target and predictor read (rnd_input=): the arrival state s' of a transition, or the
 * pair (s, a) of the state it left and the action taken there. */
enum { QF_RND_INPUT_STATE = 0, QF_RND_INPUT_SA = 1 };
#define QF_RND_INPUT_NAMES "state", "state_action"
/* How the intrinsic reward reaches the policy (rnd_value=): added to the reward of the one Q
 * (shared), or learned by a Q-network of its own, Q_I, acted on as Q_E + beta Q_I (separate). */
enum { QF_RND_VALUE_SHARED = 0, QF_RND_VALUE_SEPARATE = 1 };
#define QF_RND_VALUE_NAMES "shared", "separate"

typedef struct qf_rnd {
    qf_net net;              /* R runs, K = 1: input -> rnd_width -> rnd_dim                   */
    int32_t obs_dim;         /* D: observation width of the statistics (0: net.w[0], the state
                                input); with (s, a) pairs net.w[0] = D + A                       */
    int32_t n_actions;       /* A with rnd_input=state_action, else 0                           */
    int32_t *xi;             /* [R][M] (s, a) pair indices s*A + a (state indices, pairs only)   */
    float *target, *pred;    /* [R][P] fixed target, trained predictor                         */
    float *adam_m, *adam_v, *grads, *work;
    int32_t *adam_t;         /* [R]                                                            */
    float *acts_t, *acts_p;  /* [R][M][H] hidden activations, M = max(E, B)                    */
    float *out_t, *out_p;    /* [R][M][dim]                                                    */
    float *dq;               /* [R][M][dim]                                                    */
    float *xn;               /* [R][M][D] normalized inputs (dense observations)               */
    double *obs_mean, *obs_m2; /* [R][D] running statistics of the observations (Chan et al.)   */
    double *obs_n;           /* [R]                                                            */
    float *ret;              /* [R][E] discounted intrinsic return per env                     */
    double *ret_mean, *ret_m2, *ret_n; /* [R] running statistics of ret                       */
    float *loss;             /* [R] predictor loss at the last update                          */
    float *gnorm;            /* [R] predictor gradient norm at the last update                 */
} qf_rnd;

#define QF_RND_CLIP 5.0f
/* The RND predictor's initial parameters: the INIT stream moved past any head index. */
#define QF_STREAM_RND_PRED (QF_STREAM_INIT + 0x100u)
/* The initial parameters of RND's separate intrinsic value Q_I: the INIT stream moved past those. */
#define QF_STREAM_IVAL_INIT (QF_STREAM_INIT + 0x200u)

/* Merge a batch (n_b values, mean mb, sum of squared deviations m2b) into running statistics. */
QF_HD static inline void qf_stats_merge(double *n, double *mean, double *m2, double n_b, double mb, double m2b) {
    const double tot = *n + n_b;
    if (tot <= 0.0) return;
    const double d = mb - *mean;
    *mean = *mean + d * n_b / tot;
    *m2 = *m2 + m2b + d * d * *n * n_b / tot;
    *n = tot;
}

/* Normalized, clipped input: (x - mean) / sqrt(var + 1e-8), var = m2 / n. */
QF_HD static inline float qf_rnd_norm(float x, double mean, double m2, double n) {
    const double var = n > 0.0 ? m2 / n : 1.0;
    float z = (float)(((double)x - mean) / sqrt(var + 1e-8));
    return z > QF_RND_CLIP ? QF_RND_CLIP : (z < -QF_RND_CLIP ? -QF_RND_CLIP : z);
}

/* The intrinsic reward from a squared prediction error and the running return statistics:
 * err / std, std = sqrt(m2 / n) (1 while the statistics have no spread yet). */
QF_HD static inline float qf_rnd_scale(float err, double m2, double n) {
    const double sd = n > 1.0 ? sqrt(m2 / n) : 0.0;
    return sd > 1e-8 ? (float)((double)err / sd) : err;
}

/* RND's (state, action) input (rnd_input=state_action). State indices (obs=index): the pair is the
 * one index s*A + a of the one-hot vector over S*A pairs (the outer product of one-hot(s) and
 * one-hot(a)), so the first layer is a row gather of a table of S*A rows; s clamped to [0, S). */
QF_HD static inline int32_t qf_rnd_pair_index(int32_t s, int32_t S, int32_t a, int32_t A) {
    const int32_t aa = a < 0 ? 0 : (a >= A ? A - 1 : a);
    return qf_clamp_index(s, S) * A + aa;
}
/* Dense observations: column j >= D of an input row [D + A] (after the D normalized, clipped
 * observation values): one-hot(a), 1 at column D + a, else 0 (a clamped to [0, A)). */
QF_HD static inline float qf_rnd_pair_dense(int32_t j, int32_t D, int32_t a, int32_t A) {
    const int32_t aa = a < 0 ? 0 : (a >= A ? A - 1 : a);
    return j - D == aa ? 1.0f : 0.0f;
}

/* Optimistic acting on RND's (state, action) novelty (rnd_act=1, with rnd_input=state_action): the
 * bonus of pair (s_e, a) as a transition would get it now, err / std of the intrinsic return
 * (qf_rnd_scale; statistics not updated), times beta, added to Q(s_e, a) of every head: a pair
 * never tried keeps the predictor's initial error and looks better than one tried often (the RND
 * counterpart of count_act). */
QF_HD static inline void qf_rnd_act_one(const qf_run_hp *h, float *q, float err, double ret_m2, double ret_n) {
    if (h->bonus == QF_BONUS_RND && h->rnd_act) *q += h->beta * qf_rnd_scale(err, ret_m2, ret_n);
}

/* Acting with a separate intrinsic value: q of every head of run r ([K][E][A] at q + r*K*E*A)
 * += beta * qi (run r's Q_I rows [E][A]), for runs with rnd_value=separate and the RND bonus. */
QF_HD static inline void qf_add_int_q_one(const qf_run_hp *h, float *q, float qi) {
    if (h->bonus == QF_BONUS_RND && h->rnd_value == QF_RND_VALUE_SEPARATE) *q += h->beta * qi;
}

#endif /* QF_EXPLORE_H */
