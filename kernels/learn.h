/* learn.h — the learner's shapes, per-run hyperparameters and per-element math, written once for
 * the CPU reference (kernels/cpu/learn_cpu.c) and the CUDA kernels (kernels/cuda/learn_cuda.cu).
 *
 * Networks. A fleet has R runs x K heads = G networks, network g = r*K + k, all of one shape: an
 * MLP with L linear layers of widths w[0] -> w[1] -> ... -> w[L] = actions, ReLU (or GELU) between
 * layers.
 * Layer l stores Wt_l as [w[l]][w[l+1]] (input-major, so y = x Wt + b is a row-major GEMM and an
 * embedding first layer is a row gather: with embed = 1, the input is a state index s and the
 * first layer computes Wt_0[s, :] + b_0, exactly what the one-hot input would). The parameters of
 * one network are one block of P floats; the G blocks are contiguous, so a layer of all networks is
 * one strided-batched GEMM. With L = 1 and embed = 1 the "MLP" is a table: tabular Q-learning. */
#ifndef QF_LEARN_H
#define QF_LEARN_H
#include "../envs/qf_common.h"

/* Transcendentals of the learner. The default build uses the C library's (CUDA's on the device);
 * glibc picks a variant per CPU at load time (FMA or not), which may round differently, so the
 * portable build (QFLEET_PORTABLE, CMake option) uses qfleet's own, made of IEEE operations only,
 * which every x86-64 machine rounds alike (envs/qf_common.h; a few ulp). */
#if defined(QFLEET_PORTABLE) && !defined(__CUDACC__)
#define QF_LEARN_EXPF qf_expf
#define QF_LEARN_LOGF qf_logf
#define QF_LEARN_POWI(b, n) qf_powi((b), (n))
#else
#define QF_LEARN_EXPF expf
#define QF_LEARN_LOGF logf
#define QF_LEARN_POWI(b, n) powf((b), (float)(n))
#endif

#define QF_MAX_LAYERS 4

typedef struct qf_net {
    int32_t R, K;                     /* runs, heads; G = R*K networks                        */
    int32_t L;                        /* linear layers                                         */
    int32_t embed;                    /* 1: the input is a state index, w[0] = number of states */
    int32_t w[QF_MAX_LAYERS + 1];     /* widths; w[L] = number of actions                      */
    int64_t off_w[QF_MAX_LAYERS];     /* offset of Wt_l in a network's block                   */
    int64_t off_b[QF_MAX_LAYERS];     /* offset of b_l                                         */
    int64_t P;                        /* floats per network                                    */
    int64_t H;                        /* hidden activations per input: w[1] + ... + w[L-1]     */
    int32_t act;                      /* the hidden layers' activation: QF_ACTIVATION_*          */
    int32_t x_per_net;                /* inputs per network: x [G][M][w0], xi [G][M] (each head its
                                         own minibatch, head_batch=separate); 0: per run, [R][M][..],
                                         shared by the run's heads                              */
    const int32_t *active;            /* [R] heads in use per run (backend memory), or NULL: all
                                         K. Heads k >= active[r] never learn (their bootstrap mask
                                         bit is clear, so their gradient is 0 and Adam leaves them
                                         as they are); a backend may skip their work entirely. */
} qf_net;

/* Hidden-layer activations. */
enum { QF_ACTIVATION_RELU = 0, QF_ACTIVATION_GELU = 1 };
#define QF_ACTIVATION_NAMES "relu", "gelu"

/* GELU (Hendrycks & Gimpel 2016) in its exact form z Phi(z) = z (1 + erf(z / sqrt 2)) / 2, PyTorch's
 * nn.GELU() default, and its derivative Phi(z) + z phi(z). erff differs between the C library and
 * CUDA in the last bits, so the backends agree to float tolerance here, not bit for bit. */
QF_HD static inline float qf_gelu(float z) { return 0.5f * z * (1.0f + erff(z * 0.70710678118654752f)); }
QF_HD static inline float qf_gelu_grad(float z) {
    return 0.5f * (1.0f + erff(z * 0.70710678118654752f)) + z * 0.39894228040143268f * expf(-0.5f * z * z);
}

/* The row block of network g's inputs (and of its sampled transitions): its own or its run's. */
QF_HD static inline int64_t qf_net_in(const qf_net *n, int64_t g) { return n->x_per_net ? g : g / n->K; }

/* Whether network g is a head its run uses. */
QF_HD static inline int qf_head_on(const qf_net *n, int64_t g) {
    return !n->active || (int32_t)(g % n->K) < n->active[g / n->K];
}

/* The row of an embedding table of n rows that state index s reads: out-of-range indices read the
 * nearest row (never out of bounds). */
QF_HD static inline int32_t qf_clamp_index(int32_t s, int32_t n) { return s < 0 ? 0 : (s >= n ? n - 1 : s); }

/* Exploration strategies (per run). BOOTSTRAP acts with one ensemble head per episode (or on the
 * ensemble's mean + ucb_c * std); RND and COUNT act epsilon-greedily and add their bonus. */
enum {
    QF_EXPLORE_EPSILON = 0,
    QF_EXPLORE_BOLTZMANN = 1,
    QF_EXPLORE_BOOTSTRAP = 2,
    QF_EXPLORE_RND = 3,
    QF_EXPLORE_COUNT = 4,
    QF_EXPLORE_N = 5
};
/* The names of the values above, in their order: the only place they are spelled (the key table in
 * host/config.c, the results and the help text read them from here). */
#define QF_EXPLORE_NAMES "epsilon", "boltzmann", "bootstrap", "rnd", "count"
/* Intrinsic rewards (per run), weighted by beta. */
enum { QF_BONUS_NONE = 0, QF_BONUS_RND = 1, QF_BONUS_COUNT = 2 };
#define QF_BONUS_NAMES "none", "rnd", "count"
/* Ensemble acting. */
enum { QF_ACT_SAMPLE = 0, QF_ACT_UCB = 1 };
#define QF_ACT_NAMES "sample", "ucb"
/* Heads per run at most: one bit each in a transition's bootstrap mask (qf_mask). */
#define QF_MAX_HEADS 64
/* Losses. */
enum { QF_LOSS_HUBER = 0, QF_LOSS_SQUARED = 1 };
#define QF_LOSS_NAMES "huber", "squared"
/* Minibatches of an ensemble (head_batch=): one per run shared by its heads, or one per head. */
enum { QF_HEAD_BATCH_SHARED = 0, QF_HEAD_BATCH_SEPARATE = 1 };
#define QF_HEAD_BATCH_NAMES "shared", "separate"
/* Run status. */
enum { QF_RUN_OK = 0, QF_RUN_DIVERGED = 1 };

/* Per-run hyperparameters: one array of these lives on the device; one launch serves all runs. */
typedef struct qf_run_hp {
    float lr, gamma, alpha;           /* Adam step, discount, soft-Q temperature (0: hard max) */
    float eps_start, eps_end;         /* epsilon-greedy schedule, linear over eps_steps        */
    float tau;                        /* Polyak coefficient (1 = copy)                         */
    float max_grad_norm;              /* clip the global gradient norm of a network (0: off)   */
    float huber;                      /* Huber threshold                                       */
    float adam_b1, adam_b2, adam_eps;
    int32_t eps_steps;                /* env steps of the epsilon decay                        */
    int32_t explore;                  /* QF_EXPLORE_*                                          */
    int32_t loss;                     /* QF_LOSS_*                                             */
    int32_t double_q;                 /* 1: a' chosen by the online network                    */
    int32_t n_heads;                  /* ensemble heads this run uses (<= the fleet's K)        */
    int32_t act_mode;                 /* QF_ACT_* (bootstrap)                                  */
    int32_t bonus;                    /* QF_BONUS_*                                            */
    int32_t rnd_episodic;             /* 1: the intrinsic return behind RND's normalizer resets */
    int32_t rnd_value;                /* QF_RND_VALUE_* (explore.h): SEPARATE = the intrinsic reward
                                         is learned by Q_I alone, not added to Q's target      */
    float gamma_int;                  /* rnd_value=separate: Q_I's discount                    */
    int32_t rnd_act;                  /* 1: act on Q(s,a) + beta * RND bonus of (s, a) (pairs) */
    int32_t count_act;                /* count bonus runs: act on Q + beta / sqrt(N(s, a) + 1)   */
    float prior_scale;                /* scale of each head's fixed random prior (0: none)      */
    float mask_p;                     /* bootstrap: P(head trains on a transition)             */
    float ucb_c;                      /* act=ucb: weight of the ensemble std                   */
    float beta;                       /* weight of the intrinsic reward                        */
    float weight_decay;               /* AdamW's decoupled weight decay (0: plain Adam)          */
    /* learning from demonstrations (qf_demo_part, qf_demo_loss) */
    int32_t demos;                    /* expert episodes in the run's demo part (0: none)        */
    float demo_ratio;                 /* fraction of each minibatch drawn from the demo part     */
    float demo_weight;                /* lambda: weight of the demo loss on demo transitions     */
    float demo_margin;                /* alpha = 0: the large-margin loss's margin l             */
} qf_run_hp;

/* The demo part of a replay: per run, up to C transitions of expert episodes (the exact solver's
 * policy, host/demos.c), written once when the fleet is created and never overwritten by the
 * ring (DQfD keeps its demonstrations the same way: Hester et al. 2018, "Deep Q-learning from
 * Demonstrations", AAAI). Layout as the ring's: slot j of run r at r*C + j. Every head learns
 * from a demo transition (its bootstrap mask is all ones) and its intrinsic reward is 0. Each
 * minibatch of run r takes its first draws[r] transitions from here (qf_demo_draws), uniformly
 * over the size[r] filled slots. C = 0: no demo part (the arrays are NULL). */
typedef struct qf_demo_part {
    int32_t C;                 /* slots per run (0: none)                      */
    float *obs, *next_obs;     /* [R][C][D] when !embed                        */
    int32_t *idx, *next_idx;   /* [R][C]    when embed                         */
    int32_t *action;           /* [R][C]                                       */
    float *reward;             /* [R][C]                                       */
    uint8_t *terminal;         /* [R][C]                                       */
    int32_t *size;             /* [R] filled slots (0: the run has no demos)    */
    int32_t *draws;            /* [R] draws of each minibatch from this part   */
    float *prior_obs, *prior_next; /* [R][K][C][A] the fixed priors' outputs on obs / next_obs,
                                  computed once when the part is filled (K, A: the replay's), or
                                  NULL: the learner runs the priors' forward on sampled rows */
} qf_demo_part;

/* Bootstrap mask of one stored transition: bit k set = head k trains on it (K <= QF_MAX_HEADS = 64).
 * 64 bits since the scaling-law study's ensembles (K up to 40, Knyazhitskiy 2025); heads 0-31 are
 * drawn exactly as the 32-bit masks before them (qf_draw_mask). */
typedef uint64_t qf_mask;

/* Replay: a ring of C transitions per run, struct of arrays, run-major (slot j of run r at r*C+j).
 * Observations are dense ([R][C][D] floats) or state indices ([R][C]) when the network embeds. */
typedef struct qf_replay {
    int32_t R, C, D, embed;
    float *obs, *next_obs;     /* [R][C][D] when !embed */
    int32_t *idx, *next_idx;   /* [R][C]    when embed  */
    int32_t *action;           /* [R][C] */
    float *reward;             /* [R][C] */
    uint8_t *terminal;         /* [R][C] */
    qf_mask *mask;             /* [R][C] bootstrap mask: bit k = head k trains on it    */
    float *intr;               /* [R][C] intrinsic reward (unweighted; count bonuses are
                                  written at sampling time, RND's when stored)           */
    qf_demo_part demo;         /* a ring: its demo part (demo.C = 0: none)               */
    uint8_t *is_demo;          /* a sample: [R][C] 1 where the transition came from the
                                  demo part (NULL: no demo part in the fleet)            */
    /* The fixed prior networks' outputs (randomized priors, unscaled) on s and s', computed once
     * when a transition is stored instead of at every update that samples it (NULL: not kept; the
     * learner runs the priors' forward). Ring: [R][K][C][A], run r, head k, slot j at
     * ((r*K + k)*C + j)*A. Sample: [G][B][A], the layout of q (each head's rows, whether the run's
     * heads share a batch or not). */
    float *prior_obs, *prior_next;
    int32_t K, A;              /* heads per run and actions of prior_obs / prior_next        */
} qf_replay;

/* B transitions sampled per run ([R][B], R = runs) or per head ([G][B], R = runs x heads, with
 * head_batch=separate): the replay's layout with C = B. */
typedef qf_replay qf_sample;

/* Fill the layer offsets of a network shape from R, K, L, embed and w[]. */
static inline void qf_net_layout(qf_net *n) {
    int64_t off = 0, h = 0;
    for (int l = 0; l < n->L; l++) {
        n->off_w[l] = off;
        off += (int64_t)n->w[l] * n->w[l + 1];
        n->off_b[l] = off;
        off += n->w[l + 1];
        if (l + 1 < n->L) h += n->w[l + 1];
    }
    n->P = off;
    n->H = h;
}

/* ---------------------------------------------------------------------------------------------
 * Per-element math. */

/* V = alpha * logsumexp(q / alpha), stable for any alpha > 0 and any |q|; max(q) when alpha == 0.
 * NaN anywhere in q gives NaN (so divergence is seen, not hidden). */
QF_HD static inline float qf_soft_value(const float *q, int32_t n, float alpha) {
    float m = q[0];
    int has_nan = q[0] != q[0];
    for (int32_t a = 1; a < n; a++) {
        has_nan |= q[a] != q[a];
        m = q[a] > m ? q[a] : m;
    }
    if (has_nan) return NAN;
    if (alpha <= 0.0f) return m;
    float s = 0.0f;
    for (int32_t a = 0; a < n; a++) s += QF_LEARN_EXPF((q[a] - m) / alpha);
    return m + alpha * QF_LEARN_LOGF(s);
}

/* Soft Bellman target for one transition. Termination cuts the bootstrap; truncation does not
 * (the caller passes terminal only). */
QF_HD static inline float qf_soft_target(float reward, int terminal, float gamma, float v_next) {
    return terminal ? reward : reward + gamma * v_next;
}

/* d loss / d q for the prediction error delta = q - y. */
QF_HD static inline float qf_loss_grad(float delta, int32_t loss, float huber) {
    if (loss == QF_LOSS_SQUARED) return delta;
    return delta > huber ? huber : (delta < -huber ? -huber : delta);
}
QF_HD static inline float qf_loss_value(float delta, int32_t loss, float huber) {
    const float ad = delta < 0.0f ? -delta : delta;
    if (loss == QF_LOSS_SQUARED || ad <= huber) return 0.5f * delta * delta;
    return huber * (ad - 0.5f * huber);
}

/* Epsilon of the linear schedule at env step t. */
QF_HD static inline float qf_epsilon(const qf_run_hp *hp, uint32_t t) {
    if (hp->eps_steps <= 0 || t >= (uint32_t)hp->eps_steps) return hp->eps_end;
    const float frac = (float)t / (float)hp->eps_steps;
    return hp->eps_start + (hp->eps_end - hp->eps_start) * frac;
}

/* Greedy action: first index of the maximum; NaNs never win (a NaN row gives action 0). */
QF_HD static inline int32_t qf_argmax(const float *q, int32_t n) {
    int32_t best = 0;
    for (int32_t a = 1; a < n; a++)
        if (q[a] > q[best] || q[best] != q[best]) best = a;
    return best;
}

/* The action of one env from its Q row by the run's strategy. bits: 4 fresh random words. */
QF_HD static inline int32_t qf_select_action(const float *q, int32_t n, const qf_run_hp *hp,
                                             uint32_t t, philox4x32_ctr_t bits) {
    if (hp->explore == QF_EXPLORE_BOLTZMANN && hp->alpha > 0.0f) {
        /* sample from pi(a) = exp((q_a - m)/alpha) / Z by inversion */
        float m = q[qf_argmax(q, n)], z = 0.0f;
        for (int32_t a = 0; a < n; a++) z += QF_LEARN_EXPF((q[a] - m) / hp->alpha);
        if (!(z > 0.0f) || z != z) return qf_argmax(q, n);
        float u = qf_u01(bits.v[0]) * z, c = 0.0f;
        for (int32_t a = 0; a < n; a++) {
            c += QF_LEARN_EXPF((q[a] - m) / hp->alpha);
            if (u < c) return a;
        }
        return qf_argmax(q, n); /* u landed in the rounding gap at the top: the mode */
    }
    if (qf_u01(bits.v[0]) < qf_epsilon(hp, t))
        return (int32_t)(((uint64_t)bits.v[1] * (uint64_t)(uint32_t)n) >> 32);
    return qf_argmax(q, n);
}

/* Adam's per-network constants at step t (1-based): step = lr / (1 - b1^t) and
 * ic2 = 1 / sqrt(1 - b2^t), the bias corrections folded as PyTorch folds them, so a parameter's
 * update costs one division and one square root; decay = 1 - lr * weight_decay, AdamW's decoupled
 * weight decay (Loshchilov & Hutter 2019; PyTorch's AdamW multiplies the parameter by it before the
 * Adam step), exactly 1 without weight decay. */
typedef struct qf_adam_k {
    float b1, b2, step, ic2, eps, decay;
} qf_adam_k;

QF_HD static inline qf_adam_k qf_adam_consts(const qf_run_hp *hp, int32_t t) {
    qf_adam_k k;
    k.b1 = hp->adam_b1;
    k.b2 = hp->adam_b2;
    k.step = hp->lr / (1.0f - QF_LEARN_POWI(hp->adam_b1, t));
    k.ic2 = 1.0f / sqrtf(1.0f - QF_LEARN_POWI(hp->adam_b2, t));
    k.eps = hp->adam_eps;
    k.decay = 1.0f - hp->lr * hp->weight_decay;
    return k;
}

/* One Adam step of one parameter, with the gradient pre-scaled by `scale` (gradient clipping):
 * m' = b1 m + (1-b1) g, v' = b2 v + (1-b2) g^2, p' = decay p - step m' / (sqrt(v') ic2 + eps),
 * which is p (1 - lr wd) - lr mhat / (sqrt(vhat) + eps) with mhat = m'/(1-b1^t), vhat = v'/(1-b2^t):
 * the decay does not pass through the adaptive denominator (decoupled, AdamW). */
QF_HD static inline void qf_adam(float *p, float g, float *m, float *v, qf_adam_k k, float scale) {
    g = g * scale;
    const float mm = k.b1 * *m + (1.0f - k.b1) * g;
    const float vv = k.b2 * *v + (1.0f - k.b2) * g * g;
    *m = mm;
    *v = vv;
    *p = *p * k.decay - k.step * mm / (sqrtf(vv) * k.ic2 + k.eps);
}

/* Gradient clipping: the scale of a network's gradient whose global norm is gnorm, max_grad_norm /
 * gnorm above the run's bound, else 1 (no clipping when max_grad_norm is 0). */
QF_HD static inline float qf_clip_scale(const qf_run_hp *h, float gnorm) {
    return (h->max_grad_norm > 0.0f && gnorm > h->max_grad_norm) ? h->max_grad_norm / gnorm : 1.0f;
}

/* One value of a target network after its update: tau p + (1 - tau) t (Polyak averaging, DDPG's
 * soft update), exactly p when tau is 1 (a copy). */
QF_HD static inline float qf_polyak(float tau, float p, float t) { return tau == 1.0f ? p : tau * p + (1.0f - tau) * t; }

/* Initial value of parameter j of network g = r*K + k: PyTorch's nn.Linear default,
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, from the run's key (INIT stream), so
 * both backends and any fleet composition give the same start. */
QF_HD static inline float qf_init_param(const qf_net *n, const uint32_t *keys, uint32_t stream,
                                        int64_t g, int64_t j) {
    const int64_t r = g / n->K, k = g % n->K;
    int l = 0;
    while (l + 1 < n->L && j >= n->off_w[l + 1]) l++;
    philox4x32_key_t key = {{keys[2 * r], keys[2 * r + 1]}};
    philox4x32_ctr_t ctr = {{stream, (uint32_t)k, (uint32_t)(j >> 2), (uint32_t)(j >> 34)}};
    const philox4x32_ctr_t bits = philox4x32(ctr, key);
    /* word j & 3, selected without indexing: a runtime index puts the 4 words in CUDA local memory */
    const uint32_t w = (j & 3) == 0 ? bits.v[0] : (j & 3) == 1 ? bits.v[1] : (j & 3) == 2 ? bits.v[2] : bits.v[3];
    const float u = qf_u01(w);
    const float bound = 1.0f / sqrtf((float)n->w[l]);
    return (2.0f * u - 1.0f) * bound;
}

/* Replay slot of draw j sampled for run r at learner update `update`, uniform over the `size`
 * filled slots (SAMPLE stream; multiply-shift). A shared batch is draws 0 .. B-1; with per-head
 * batches head k takes draws k*B .. k*B + B-1 (distinct Philox counters: independent streams, and
 * head 0's batch is the shared one). */
QF_HD static inline int32_t qf_sample_slot(const uint32_t *keys, int32_t r, uint32_t update, int32_t j,
                                           int64_t size) {
    qf_rng g = qf_rng_make(keys[2 * r], keys[2 * r + 1], QF_STREAM_SAMPLE, (uint32_t)j, update);
    return (int32_t)(((uint64_t)qf_rng_next(&g).v[0] * (uint64_t)size) >> 32);
}

/* Draws of a minibatch of B taken from the demo part: round(demo_ratio * B), rounded half up
 * (floor(demo_ratio * B + 0.5) in float32), at most B; 0 for a run without demos. The count is
 * exact, not a binomial draw, so every batch has the same share of demonstrations. */
QF_HD static inline int32_t qf_demo_draws(const qf_run_hp *hp, int32_t B, int32_t size) {
    if (size <= 0 || !(hp->demo_ratio > 0.0f)) return 0;
    const int32_t n = (int32_t)floorf(hp->demo_ratio * (float)B + 0.5f);
    return n > B ? B : n;
}

/* The kept priors' outputs of slot `slot` of run r (from_obs / from_next: [R][PK][C][A], the ring's
 * or the demo part's) into draw j of sample row (r, k): every head's for a run's batch (K == 1),
 * head k's own for a head's batch (out: [R][PK][B][A]). */
QF_HD static inline void qf_sample_priors(const float *from_obs, const float *from_next, int64_t C, int32_t PK,
                                          int32_t A, int32_t K, int32_t r, int32_t k, int64_t slot, int32_t B,
                                          int32_t j, qf_sample *out) {
    for (int64_t h = K > 1 ? k : 0; h < (K > 1 ? k + 1 : PK); h++) {
        const int64_t from = (((int64_t)r * PK + h) * C + slot) * A, to = (((int64_t)r * PK + h) * B + j) * A;
        for (int64_t a = 0; a < A; a++) {
            out->prior_obs[to + a] = from_obs[from + a];
            out->prior_next[to + a] = from_next[from + a];
        }
    }
}

/* Draw j (of B) of sample row `row` (run r = row / K, head k = row % K) from the demo part when
 * j < draws[r]: the transition of slot qf_sample_slot(keys, r, update, k*B + j, size[r]) is
 * copied to out[dst] with is_demo = 1, mask all ones and intr 0, and 1 is returned. Else 0 (the
 * caller draws from the ring with the same counter, so without demos nothing changes) and
 * is_demo[dst] = 0. */
QF_HD static inline int qf_sample_demo(const qf_replay *rp, const uint32_t *keys, uint32_t update, int32_t K,
                                       int32_t B, int32_t row, int32_t j, qf_sample *out) {
    const qf_demo_part *dp = &rp->demo;
    if (!out->is_demo) return 0;
    const int64_t dst = (int64_t)row * B + j;
    const int32_t r = row / K, k = row % K;
    if (dp->C <= 0 || j >= dp->draws[r]) {
        out->is_demo[dst] = 0;
        return 0;
    }
    const int64_t src = (int64_t)r * dp->C + qf_sample_slot(keys, r, update, k * B + j, dp->size[r]);
    if (rp->embed) {
        out->idx[dst] = dp->idx[src];
        out->next_idx[dst] = dp->next_idx[src];
    } else {
        for (int32_t d = 0; d < rp->D; d++) {
            out->obs[dst * rp->D + d] = dp->obs[src * rp->D + d];
            out->next_obs[dst * rp->D + d] = dp->next_obs[src * rp->D + d];
        }
    }
    out->action[dst] = dp->action[src];
    out->reward[dst] = dp->reward[src];
    out->terminal[dst] = dp->terminal[src];
    out->mask[dst] = ~(qf_mask)0; /* every head */
    out->intr[dst] = 0.0f;
    out->is_demo[dst] = 1;
    if (dp->prior_obs && out->prior_obs)
        qf_sample_priors(dp->prior_obs, dp->prior_next, dp->C, rp->K, rp->A, K, r, k, src - (int64_t)r * dp->C, B, j, out);
    return 1;
}

/* The demo loss of one demo transition (s, a_d), times lambda = demo_weight: adds
 * w * lambda * d loss / d q / B to dq[0..A) and returns w * lambda * loss.
 *   alpha > 0: loss = -log pi(a_d | s), pi = softmax(q / alpha) (the policy soft-Q acts by), so
 *              d loss / d q_a = (pi(a) - [a = a_d]) / alpha;
 *   alpha = 0: pi is the argmax and -log pi has no gradient, so DQfD's large-margin surrogate
 *              (Hester et al. 2018, eq. 2): loss = max_a [q_a + l(a_d, a)] - q_{a_d}, with
 *              l(a_d, a) = demo_margin for a != a_d and 0 for a = a_d; its (sub)gradient is +1 at
 *              the maximizing action (the first, on a tie) and -1 at a_d (0 when they coincide). */
QF_HD static inline float qf_demo_loss(const qf_run_hp *hp, int32_t A, int32_t B, const float *q, int32_t a_d,
                                       float w, float *dq) {
    const float c = w * hp->demo_weight;
    if (hp->alpha > 0.0f) {
        const float m = q[qf_argmax(q, A)], alpha = hp->alpha;
        float z = 0.0f;
        for (int32_t a = 0; a < A; a++) z += QF_LEARN_EXPF((q[a] - m) / alpha);
        for (int32_t a = 0; a < A; a++) {
            const float pi = QF_LEARN_EXPF((q[a] - m) / alpha) / z;
            dq[a] += c * (pi - (a == a_d ? 1.0f : 0.0f)) / alpha / (float)B;
        }
        return c * ((m - q[a_d]) / alpha + QF_LEARN_LOGF(z));
    }
    int32_t best = 0;
    float top = q[0] + (a_d == 0 ? 0.0f : hp->demo_margin);
    for (int32_t a = 1; a < A; a++) {
        const float v = q[a] + (a == a_d ? 0.0f : hp->demo_margin);
        if (v > top) {
            top = v;
            best = a;
        }
    }
    if (best != a_d) {
        dq[best] += c / (float)B;
        dq[a_d] -= c / (float)B;
    }
    return c * (top - q[a_d]);
}

/* The TD step of transition j for network g: writes dq[0..A) (d loss / d q, already divided by B,
 * times the bootstrap weight w in {0, 1}) and returns the transition's loss (times w).
 * q: online Q(s, .); qt: target Q(s', .); qo: online Q(s', .) (double Q) or NULL. reward already
 * includes beta * intrinsic reward. */
QF_HD static inline float qf_td_one(const qf_run_hp *hp, int32_t A, int32_t B, const float *q,
                                    const float *qt, const float *qo, int32_t action, float reward,
                                    int terminal, float w, float *dq) {
    float v_next;
    if (hp->double_q && qo && hp->alpha <= 0.0f)
        v_next = qt[qf_argmax(qo, A)];
    else
        v_next = qf_soft_value(qt, A, hp->alpha);
    const float y = qf_soft_target(reward, terminal, hp->gamma, v_next);
    const float delta = q[action] - y;
    for (int32_t a = 0; a < A; a++) dq[a] = 0.0f;
    dq[action] = w * qf_loss_grad(delta, hp->loss, hp->huber) / (float)B;
    return w * qf_loss_value(delta, hp->loss, hp->huber);
}

/* ---------------------------------------------------------------------------------------------
 * Per-network bodies: one network's share of an operation, the same text in the CPU reference, the
 * CUDA kernels and the kernel workbench (benchmarks/dev/). */

/* Network g's TD step over its B sampled transitions (backend.h's td for one network): dq rows
 * [g][B][A] (qf_td_one, plus qf_demo_loss on demo transitions when the run's demo_weight > 0), loss[g] and qmean[g] (means over B, summed in transition order) and, for
 * head 0 of run r, imean[r] = the batch's mean beta * intrinsic reward. Head k of the run learns
 * from transition j only when bit k of its bootstrap mask is set. q, qt, qo: [G][B][A] as in td. */
/* The same with network g's own rows passed: q_g, qt_g, qo_g, dq_g [B][A] (the CPU learner's fused
 * path keeps them in a thread's scratch). */
QF_HD static inline void qf_td_net_rows(const qf_net *n, const qf_run_hp *hp, int64_t g, int32_t B,
                                        const qf_sample *s, const float *q, const float *qt, const float *qo,
                                        float *dq, float *loss, float *qmean, float *imean) {
    const int64_t A = n->w[n->L], r = g / n->K, k = g % n->K, in = qf_net_in(n, g);
    const float beta = hp[r].beta;
    float lsum = 0.0f, qsum = 0.0f, isum = 0.0f;
    for (int32_t j = 0; j < B; j++) {
        const int64_t row = (int64_t)j * A, t = in * B + j;
        const float w = (float)((s->mask[t] >> k) & 1u), bonus = beta * s->intr[t];
        /* rnd_value=separate: Q (Q_E) learns the extrinsic reward alone; Q_I learns the bonus */
        const float reward = hp[r].rnd_value ? s->reward[t] : s->reward[t] + bonus;
        lsum += qf_td_one(&hp[r], (int32_t)A, B, q + row, qt + row, qo ? qo + row : NULL, s->action[t],
                          reward, s->terminal[t], w, dq + row);
        /* a demo transition adds the demo loss (not counted in loss[g], which stays the TD loss) */
        if (s->is_demo && s->is_demo[t] && hp[r].demo_weight > 0.0f)
            (void)qf_demo_loss(&hp[r], (int32_t)A, B, q + row, s->action[t], w, dq + row);
        qsum += q[row + s->action[t]];
        isum += bonus;
    }
    loss[g] = lsum / (float)B;
    qmean[g] = qsum / (float)B;
    if (k == 0) imean[r] = isum / (float)B;
}

QF_HD static inline void qf_td_net(const qf_net *n, const qf_run_hp *hp, int64_t g, int32_t B, const qf_sample *s,
                                   const float *q, const float *qt, const float *qo, float *dq, float *loss,
                                   float *qmean, float *imean) {
    const int64_t at = g * B * n->w[n->L];
    qf_td_net_rows(n, hp, g, B, s, q + at, qt + at, qo ? qo + at : NULL, dq + at, loss, qmean, imean);
}

/* q += prior_scale of the run * qp over network g's M rows ([g][M][A] of both): its randomized
 * prior function's outputs added (Osband et al. 2018). _rows: network g's rows passed ([M][A]). */
QF_HD static inline void qf_add_prior_rows(const qf_net *n, const qf_run_hp *hp, int64_t g, int32_t M, float *q_g,
                                           const float *qp_g) {
    const int64_t per = (int64_t)M * n->w[n->L];
    const float c = hp[g / n->K].prior_scale;
    if (c == 0.0f) return;
    for (int64_t i = 0; i < per; i++) q_g[i] += c * qp_g[i];
}
QF_HD static inline void qf_add_prior_net(const qf_net *n, const qf_run_hp *hp, int64_t g, int32_t M, float *q,
                                          const float *qp) {
    const int64_t per = (int64_t)M * n->w[n->L];
    qf_add_prior_rows(n, hp, g, M, q + g * per, qp + g * per);
}

#endif /* QF_LEARN_H */
