/* learn_cpu.c — the CPU reference of the learner operations (kernels/learn.h, backend.h): GEMMs
 * through qfleet's small-GEMM loops (gemm_cpu.c: one single-threaded call per network and layer,
 * OpenMP over networks), the per-element math from learn.h. Every reduction runs in a fixed order,
 * so a run's numbers do not depend on the thread count or on the other runs of the fleet. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../backend.h"
#include "gemm_cpu.h"

/* The learner's loops run with denormal floats flushed to zero (FTZ and DAZ on each thread of the
 * loop, restored after it). Adam's second moments and the squared gradients of nearly dead units
 * reach 1e-38, where every x86 operation on a denormal costs a microcode assist of about a hundred
 * cycles: on CartPole (16 runs, MLP 64-64) Adam took a quarter of the training time until this.
 * Values below 1.2e-38 carry nothing a learner can use. GPUs handle denormals at full speed, so
 * the CUDA backend keeps IEEE semantics; the backends then differ by at most 1.2e-38 per
 * operation, far inside every CPU-vs-CUDA tolerance. Environments and samplers are not affected. */
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
static inline unsigned ftz_on(void) {
    const unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
    return old;
}
static inline void ftz_off(unsigned old) { _mm_setcsr(old); }
#else
static inline unsigned ftz_on(void) { return 0; } /* other ISAs: IEEE denormals */
static inline void ftz_off(unsigned old) { (void)old; }
#endif
#define QF_PRAGMA(...) _Pragma(#__VA_ARGS__)
#define STATIC static
#define DYNAMIC dynamic, 1
#define QF_OMP_FOR(...) QF_PRAGMA(omp for schedule(__VA_ARGS__))
/* LEARN_FOR(condition, STATIC or DYNAMIC, for-statement): the loop, in parallel when the condition
 * holds, with denormals flushed on every thread that runs it. */
#define LEARN_FOR(COND, SCHED, ...)                                                                \
    QF_PRAGMA(omp parallel if (COND)) {                                                            \
        const unsigned csr_ = ftz_on();                                                            \
        QF_OMP_FOR(SCHED)                                                                          \
        __VA_ARGS__;                                                                               \
        ftz_off(csr_);                                                                             \
    }

/* Column offset of hidden layer l's output inside a row of acts ([M][H]). */
static int64_t hidden_off(const qf_net *n, int l) {
    int64_t off = 0;
    for (int i = 0; i < l; i++) off += n->w[i + 1];
    return off;
}

static int cpu_net_init(qf_backend *b, const qf_net *net, const uint32_t *keys, uint32_t stream, float *params) {
    (void)b;
    const int64_t G = (int64_t)net->R * net->K;
#pragma omp parallel for schedule(static) if (G > 1 && G * net->P >= QF_PAR_MIN_WORK)
    for (int64_t g = 0; g < G; g++)
        for (int64_t j = 0; j < net->P; j++) params[g * net->P + j] = qf_init_param(net, keys, stream, g, j);
    return QF_OK;
}

/* Input of layer l of network g: pointer and leading dimension (NULL pointer: embedding input). */
static const float *layer_input(const qf_net *n, int l, int64_t g, int32_t M, const float *x,
                                const float *acts_g, int64_t *ld) {
    if (l == 0) {
        *ld = n->w[0];
        return n->embed ? NULL : x + qf_net_in(n, g) * (int64_t)M * n->w[0];
    }
    *ld = n->H;
    return acts_g + hidden_off(n, l - 1);
}

/* y = x W + b, then the activation act (QF_ACTIVATION_*; -1: none, the output layer): one pass
 * over the GEMM's output. */
static void bias_act(float *restrict y, int64_t ldy, const float *restrict bias, int32_t M, int32_t n, int act) {
    for (int32_t m = 0; m < M; m++) {
        float *restrict row = y + m * ldy;
        if (act == QF_ACTIVATION_RELU) {
#pragma omp simd
            for (int32_t j = 0; j < n; j++) {
                const float z = row[j] + bias[j];
                row[j] = z > 0.0f ? z : 0.0f;
            }
        } else if (act == QF_ACTIVATION_GELU) {
            for (int32_t j = 0; j < n; j++) row[j] = qf_gelu(row[j] + bias[j]);
        } else {
#pragma omp simd
            for (int32_t j = 0; j < n; j++) row[j] += bias[j];
        }
    }
}

/* Layer l of network g for M inputs: out [M][ldo] = act(input Wt_l + b_l), act as bias_act takes it.
 * acts_g: the network's hidden activations so far (the inputs of layers l > 0). */
static void layer_out(const qf_net *net, const float *W, int64_t g, int l, int32_t M, const float *x,
                      const int32_t *xi, const float *acts_g, float *out, int64_t ldo, int act) {
    const int32_t in_w = net->w[l], out_w = net->w[l + 1];
    const float *Wt = W + net->off_w[l], *bias = W + net->off_b[l];
    int64_t ldi;
    const float *in = layer_input(net, l, g, M, x, acts_g, &ldi);
    if (!in) { /* embedding: row gather of Wt_0 = the one-hot product */
        const int32_t *s = xi + qf_net_in(net, g) * (int64_t)M;
        for (int32_t m = 0; m < M; m++) {
            const int32_t sm = qf_clamp_index(s[m], in_w);
            memcpy(out + m * ldo, Wt + (int64_t)sm * out_w, sizeof(float) * (size_t)out_w);
        }
    } else {
        /* the first layer's input may be a one-hot observation: the GEMM skips its zeros */
        qf_cpu_gemm(0, 0, M, out_w, in_w, in, ldi, Wt, out_w, out, ldo, l == 0);
    }
    bias_act(out, ldo, bias, M, out_w, act);
}

/* Network g's forward pass for M inputs: its activations acts_g [M][H] and Q values q_g [M][A] (its
 * slices of [G]-laid-out buffers, or a thread's scratch). */
static void forward_net(const qf_net *net, const float *params, int64_t g, int32_t M, const float *x,
                        const int32_t *xi, float *acts_g, float *q_g) {
    const int64_t A = net->w[net->L];
    const float *W = params + g * net->P;
    for (int l = 0; l < net->L; l++) {
        const int last = l == net->L - 1;
        float *out = last ? q_g : acts_g + hidden_off(net, l);
        layer_out(net, W, g, l, M, x, xi, acts_g, out, last ? A : net->H, last ? -1 : net->act);
    }
}

static int cpu_net_forward(qf_backend *b, const qf_net *net, const float *params, int32_t M,
                           const float *x, const int32_t *xi, float *acts, float *q) {
    (void)b;
    const int64_t G = (int64_t)net->R * net->K;
    LEARN_FOR(G > 1 && G * M * net->P >= QF_PAR_MIN_WORK, STATIC,
    for (int64_t g = 0; g < G; g++)
        if (qf_head_on(net, g))
            forward_net(net, params, g, M, x, xi, acts + g * (int64_t)M * net->H, q + g * (int64_t)M * net->w[net->L]));
    return QF_OK;
}

/* db += column sums of dy [M][n] (rows in order, so the sum's order is fixed). */
static void bias_grad(float *restrict db, const float *restrict dy, int64_t lddy, int32_t M, int32_t n) {
    for (int32_t m = 0; m < M; m++) {
        const float *restrict row = dy + m * lddy;
#pragma omp simd
        for (int32_t j = 0; j < n; j++) db[j] += row[j];
    }
}

/* dx *= GELU'(z) for the layer's pre-activations z [M][n] (leading dimension ldz). */
static void gelu_grad(float *restrict dx, int64_t lddx, const float *restrict z, int64_t ldz, int32_t M, int32_t n) {
    for (int32_t m = 0; m < M; m++)
        for (int32_t j = 0; j < n; j++) dx[m * lddx + j] *= qf_gelu_grad(z[m * ldz + j]);
}

/* dx = 0 where the layer's ReLU output x was not positive (the ReLU's derivative). */
static void relu_grad(float *restrict dx, int64_t lddx, const float *restrict x, int64_t ldx, int32_t M, int32_t n) {
    for (int32_t m = 0; m < M; m++) {
        float *restrict d = dx + m * lddx;
        const float *restrict xr = x + m * ldx;
#pragma omp simd
        for (int32_t j = 0; j < n; j++) d[j] = xr[j] > 0.0f ? d[j] : 0.0f;
    }
}

/* Network g's backward pass from its slices: acts_g [M][H] (its forward's), dq_g [M][A], its gradient
 * dW [P], and work_g: qf_net_work_bufs * M * wmax floats of scratch (with GELU the third buffer takes
 * each hidden layer's pre-activations, recomputed from its stored input: one more GEMM per hidden
 * layer instead of storing them). */
static void backward_net(const qf_net *net, const float *params, int64_t g, int32_t M, const float *x,
                         const int32_t *xi, const float *acts_g, const float *dq_g, float *dW, float *work_g) {
    const int64_t wmax = qf_net_max_width(net);
    const float *W = params + g * net->P;
    float *buf[2] = {work_g, work_g + (int64_t)M * wmax};
    /* the weight GEMMs write with beta = 0; only the biases (and an embedding, a scatter-add)
     * accumulate */
    for (int l = 0; l < net->L; l++) memset(dW + net->off_b[l], 0, sizeof(float) * (size_t)net->w[l + 1]);
    if (net->embed) memset(dW + net->off_w[0], 0, sizeof(float) * (size_t)net->w[0] * (size_t)net->w[1]);
    const float *dy = dq_g;
    int64_t lddy = net->w[net->L];
    for (int l = net->L - 1; l >= 0; l--) {
        const int32_t in_w = net->w[l], out_w = net->w[l + 1];
        int64_t ldi;
        const float *in = layer_input(net, l, g, M, x, acts_g, &ldi);
        float *dWt = dW + net->off_w[l], *db = dW + net->off_b[l];
        bias_grad(db, dy, lddy, M, out_w);
        if (!in) {
            const int32_t *s = xi + qf_net_in(net, g) * (int64_t)M;
            for (int32_t m = 0; m < M; m++) {
                const int32_t sm = qf_clamp_index(s[m], in_w);
                for (int32_t j = 0; j < out_w; j++) dWt[(int64_t)sm * out_w + j] += dy[m * lddy + j];
            }
        } else {
            qf_cpu_gemm(1, 0, in_w, out_w, M, in, ldi, dy, lddy, dWt, out_w, l == 0);
        }
        if (l == 0) break;
        /* d input = dy Wt^T, through the ReLU of the layer below */
        float *dx = buf[l & 1];
        qf_cpu_gemm(0, 1, M, in_w, out_w, dy, lddy, W + net->off_w[l], out_w, dx, in_w, 0);
        if (net->act == QF_ACTIVATION_GELU) {
            float *z = work_g + 2 * (int64_t)M * wmax;
            layer_out(net, W, g, l - 1, M, x, xi, acts_g, z, in_w, -1);
            gelu_grad(dx, in_w, z, in_w, M, in_w);
        } else {
            relu_grad(dx, in_w, in, ldi, M, in_w);
        }
        dy = dx;
        lddy = in_w;
    }
}

static int cpu_net_backward(qf_backend *b, const qf_net *net, const float *params, int32_t M,
                            const float *x, const int32_t *xi, const float *acts, const float *dq,
                            float *grads, float *work) {
    (void)b;
    const int64_t G = (int64_t)net->R * net->K;
    LEARN_FOR(G > 1 && G * M * net->P >= QF_PAR_MIN_WORK, STATIC,
    for (int64_t g = 0; g < G; g++)
        if (qf_head_on(net, g)) {
            const int64_t gm = g * (int64_t)M;
            backward_net(net, params, g, M, x, xi, acts + gm * net->H, dq + gm * net->w[net->L], grads + g * net->P,
                         work + gm * qf_net_work_bufs(net) * qf_net_max_width(net));
        });
    return QF_OK;
}

static int cpu_td(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t B, const qf_sample *s,
                  const float *q, const float *qt, const float *qo, float *dq, float *loss, float *qmean,
                  float *imean) {
    (void)b;
    const int64_t G = (int64_t)net->R * net->K, A = net->w[net->L];
    LEARN_FOR(G > 1 && G * B * A >= QF_PAR_MIN_WORK, STATIC,
    for (int64_t g = 0; g < G; g++)
        if (qf_head_on(net, g)) qf_td_net(net, hp, g, B, s, q, qt, qo, dq, loss, qmean, imean));
    return QF_OK;
}

static int cpu_add_prior(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t M, float *q,
                         const float *qp) {
    (void)b;
    const int64_t G = (int64_t)net->R * net->K, per = (int64_t)M * net->w[net->L];
    LEARN_FOR(G > 1 && G * per >= QF_PAR_MIN_WORK, STATIC,
    for (int64_t g = 0; g < G; g++)
        if (qf_head_on(net, g)) qf_add_prior_net(net, hp, g, M, q, qp));
    return QF_OK;
}

/* The squared norm of a network's gradient, in double: one function (not inlined) for adam_run and
 * learn_split, so both sum in the same vectorized order. */
static __attribute__((noinline)) double sum_squares(const float *restrict gg, int64_t P) {
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < P; j++) ss += (double)gg[j] * gg[j];
    return ss;
}

/* Adam for run r (see backend.h, adam): the gradient norm of each head in double, then one fused
 * pass per head that updates p, m, v and accumulates p * 0 (NaN iff some new parameter is not
 * finite). The simd reductions fix their own order, independent of threads and fleet. grads_r: the
 * run's K heads' gradients [K][P] (its slice of [G][P], or a thread's scratch). */
static void adam_run(const qf_net *net, const qf_run_hp *hp, int32_t r, float *params, const float *grads_r,
                     float *m, float *v, int32_t *adam_t, int32_t *status, float *gnorm) {
    const int64_t P = net->P, K = net->K;
    for (int64_t g = r * K; g < (r + 1) * K; g++) {
        if (!qf_head_on(net, g)) {
            gnorm[g] = 0.0f; /* an unused head: no gradient, nothing to do */
            continue;
        }
        gnorm[g] = (float)sqrt(sum_squares(grads_r + (g - r * K) * P, P));
        if (!isfinite(gnorm[g])) status[r] = QF_RUN_DIVERGED;
    }
    if (status[r] != QF_RUN_OK) return;
    const qf_run_hp *h = &hp[r];
    const qf_adam_k ak = qf_adam_consts(h, adam_t[r] + 1);
    float chk = 0.0f;
    for (int64_t g = r * K; g < (r + 1) * K; g++) {
        if (!qf_head_on(net, g)) continue;
        const float scale = qf_clip_scale(h, gnorm[g]);
        /* restrict: the four arrays never overlap, so the loop vectorizes */
        float *restrict pg = params + g * P, *restrict mg = m + g * P, *restrict vg = v + g * P;
        const float *restrict gg = grads_r + (g - r * K) * P;
#pragma omp simd reduction(+ : chk)
        for (int64_t j = 0; j < P; j++) {
            qf_adam(&pg[j], gg[j], &mg[j], &vg[j], ak, scale);
            chk += pg[j] * 0.0f;
        }
    }
    adam_t[r] += 1;
    if (chk != 0.0f) status[r] = QF_RUN_DIVERGED; /* NaN compares unequal to everything */
}

/* One run per iteration: its K heads' norms decide together whether the run diverged, so no two
 * threads write one run's status. */
static int cpu_adam(qf_backend *b, const qf_net *net, const qf_run_hp *hp, float *params,
                    const float *grads, float *m, float *v, int32_t *adam_t, int32_t *status, float *gnorm) {
    (void)b;
    LEARN_FOR(net->R > 1 && (int64_t)net->R * net->K * net->P >= QF_PAR_MIN_WORK, STATIC,
    for (int32_t r = 0; r < net->R; r++)
        adam_run(net, hp, r, params, grads + (int64_t)r * net->K * net->P, m, v, adam_t, status, gnorm));
    return QF_OK;
}

/* Run r's target networks: tau * params + (1 - tau) * target (copy: tau = 1). */
static void target_run(const qf_net *net, const qf_run_hp *hp, int32_t r, const float *params, float *target,
                       const int32_t *status, int copy) {
    if (status[r] != QF_RUN_OK) return;
    const int64_t per_run = (int64_t)net->K * net->P;
    const float tau = copy ? 1.0f : hp[r].tau;
    const float *restrict p = params + r * per_run;
    float *restrict t = target + r * per_run;
    if (tau == 1.0f)
        memcpy(t, p, sizeof(float) * (size_t)per_run);
    else
#pragma omp simd
        for (int64_t j = 0; j < per_run; j++) t[j] = qf_polyak(tau, p[j], t[j]);
}

static int cpu_target_update(qf_backend *b, const qf_net *net, const qf_run_hp *hp, const float *params,
                             float *target, const int32_t *status, int copy) {
    (void)b;
    const int64_t per_run = (int64_t)net->K * net->P;
    LEARN_FOR(net->R > 1 && net->R * per_run >= QF_PAR_MIN_WORK, STATIC,
    for (int32_t r = 0; r < net->R; r++) target_run(net, hp, r, params, target, status, copy));
    return QF_OK;
}

/* Network g's scratch in an update: its slices of the learn arguments' [G]-laid-out buffers
 * (net_slices), or of a thread's own (the fused per-run path, learn_runs). */
typedef struct net_scratch {
    float *acts, *acts_tmp;  /* [B][H] */
    float *q, *qt, *qo, *qp, *dq; /* [B][A]; qo NULL without double Q */
    float *grads;            /* [P] */
    float *work;             /* qf_net_work_bufs * B * wmax */
} net_scratch;

static net_scratch net_slices(const qf_learn_args *a, int64_t g) {
    const qf_net *n = a->net;
    const int64_t gb = g * a->B, A = n->w[n->L];
    net_scratch w = {a->acts + gb * n->H, a->acts_tmp + gb * n->H, a->q + gb * A, a->qt + gb * A,
                     a->qo ? a->qo + gb * A : NULL, a->qp ? a->qp + gb * A : NULL, a->dq + gb * A,
                     a->grads + g * n->P, a->work + gb * qf_net_work_bufs(n) * qf_net_max_width(n)};
    return w;
}

/* Q(s, .) of network g into q_g ([B][A]) with its prior added (randomized prior functions). reuse:
 * the prior's outputs for these inputs are already in w->qp (the same x as the previous call);
 * kept: the sample's copy of them ([G][B][A], stored with the transitions), or NULL. */
static void q_forward_net(const qf_learn_args *a, const net_scratch *w, const float *params, int64_t g,
                          const float *x, const int32_t *xi, float *acts_g, float *q_g, int reuse,
                          const float *kept) {
    forward_net(a->net, params, g, a->B, x, xi, acts_g, q_g);
    if (!a->prior) return;
    if (kept) {
        qf_add_prior_rows(a->net, a->hp, g, a->B, q_g, kept + g * a->B * a->net->w[a->net->L]);
        return;
    }
    if (!reuse) forward_net(a->net, a->prior, g, a->B, x, xi, w->acts_tmp, w->qp);
    qf_add_prior_rows(a->net, a->hp, g, a->B, q_g, w->qp);
}

/* Network g's part of the update, forward to backward, while its data is in this core's caches:
 * the per-network functions of the operations, in the order backend.h's `learn` gives them (the
 * fixed prior's outputs on s' computed once for the target and the double-Q values). */
static void learn_net(const qf_learn_args *a, int64_t g, const net_scratch *w) {
    const qf_sample *s = a->s;
    q_forward_net(a, w, a->target, g, s->next_obs, s->next_idx, w->acts_tmp, w->qt, 0, s->prior_next);
    if (w->qo) q_forward_net(a, w, a->params, g, s->next_obs, s->next_idx, w->acts_tmp, w->qo, 1, s->prior_next);
    q_forward_net(a, w, a->params, g, s->obs, s->idx, w->acts, w->q, 0, s->prior_obs);
    qf_td_net_rows(a->net, a->hp, g, a->B, s, w->q, w->qt, w->qo, w->dq, a->loss, a->qmean, a->imean);
    backward_net(a->net, a->params, g, a->B, s->obs, s->idx, w->acts, w->dq, w->grads, w->work);
}

/* ---- one network on the whole team (a fleet of one run and one head: G = 1) --------------------
 * With G = 1 the loop over networks has one iteration, and the other cores would idle through the
 * whole update. Instead the team shares the network's work: the forwards, TD's per-row part and
 * the input gradients by batch rows; the weight gradients by rows of dW (inputs), the bias gradients
 * by columns; Adam by parameter ranges. Every float is computed by the same operations in the same
 * order as learn_net and adam_run compute it (a row of a GEMM does not depend on the other rows,
 * gemm_cpu.h; each dW element is one sum over the batch; the sums of TD and of the gradient norm
 * run on one thread in their usual order), so the split changes no bit (test_learn,
 * ExploreFleet.OneNetworkSharedOverTheTeamEqualsTheOperationsInTurn). Four barriers per update;
 * only networks of up to three layers (the input gradients of all layers are kept until the weight
 * gradients, in the two work buffers); only with a team size the user fixed (threads=N): on a busy
 * machine a barrier waits a scheduler slice for a descheduled thread, and a CartPole run with
 * threads=2 took 10x its one-thread time under a load of 4 (the auto mode's first probe falls
 * before learning starts, so it would not notice in time). */

/* Rows m0 .. m0+Mp of Q(s, .) of network 0, the prior's outputs added (q_forward_net on a row range). */
static void q_rows(const qf_learn_args *a, const float *params, const float *x, const int32_t *xi, float *acts,
                   float *q, int reuse, const float *kept, int32_t m0, int32_t Mp) {
    const qf_net *net = a->net;
    const int64_t A = net->w[net->L], H = net->H, w0 = net->w[0];
    const float *xr = x ? x + m0 * w0 : NULL;
    const int32_t *xir = xi ? xi + m0 : NULL;
    forward_net(net, params, 0, Mp, xr, xir, acts + m0 * H, q + m0 * A);
    if (!a->prior) return;
    if (kept) {
        qf_add_prior_net(net, a->hp, 0, Mp, q + m0 * A, kept + m0 * A);
        return;
    }
    if (!reuse) forward_net(net, a->prior, 0, Mp, xr, xir, a->acts_tmp + m0 * H, a->qp + m0 * A);
    qf_add_prior_net(net, a->hp, 0, Mp, q + m0 * A, a->qp + m0 * A);
}

static int split_ok(const qf_learn_args *a) {
    const qf_net *net = a->net;
    return (int64_t)net->R * net->K == 1 && qf_head_on(net, 0) && net->L <= 3 && qf_cpu_threads_fixed() &&
           omp_get_max_threads() > 1 &&
           (int64_t)a->B * net->P >= QF_PAR_MIN_WORK / 4;
}

/* Thread tid's share [lo, hi) of n items in a team of nth. */
static void share(int64_t n, int tid, int nth, int64_t *lo, int64_t *hi) {
    *lo = n * tid / nth;
    *hi = n * (tid + 1) / nth;
}

/* learn_net(a, 0), then adam_run and target_run of run 0, by the whole team (inside its parallel
 * region; every thread calls it). chk: [nth] scratch. */
static void learn_split(const qf_learn_args *a, int target_now, float *chk) {
    const qf_net *net = a->net;
    const qf_sample *s = a->s;
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    const int32_t B = a->B, L = net->L;
    const int64_t A = net->w[L], wmax = qf_net_max_width(net), P = net->P;
    int64_t lo, hi;
    share(B, tid, nth, &lo, &hi);
    const int32_t m0 = (int32_t)lo, Mp = (int32_t)(hi - lo);
    /* 1. the forwards on this thread's rows */
    q_rows(a, a->target, s->next_obs, s->next_idx, a->acts_tmp, a->qt, 0, s->prior_next, m0, Mp);
    if (a->qo) q_rows(a, a->params, s->next_obs, s->next_idx, a->acts_tmp, a->qo, 1, s->prior_next, m0, Mp);
    q_rows(a, a->params, s->obs, s->idx, a->acts, a->q, 0, s->prior_obs, m0, Mp);
#pragma omp barrier
    /* 2. TD (its sums in transition order), on one thread; the implicit barrier follows */
#pragma omp single
    qf_td_net(net, a->hp, 0, B, s, a->q, a->qt, a->qo, a->dq, a->loss, a->qmean, a->imean);
    /* 3. the input gradients of layers L-1 .. 1, this thread's rows: dy[l] = d loss / d output of layer l */
    const float *W = a->params;
    float *dW = a->grads;
    const float *dy[QF_MAX_LAYERS];
    int64_t lddy[QF_MAX_LAYERS];
    dy[L - 1] = a->dq;
    lddy[L - 1] = A;
    for (int l = L - 1; l >= 1; l--) {
        const int32_t in_w = net->w[l], out_w = net->w[l + 1];
        float *dx = a->work + (l & 1) * (int64_t)B * wmax; /* backward_net's buffers */
        qf_cpu_gemm(0, 1, Mp, in_w, out_w, dy[l] + m0 * lddy[l], lddy[l], W + net->off_w[l], out_w, dx + m0 * in_w,
                    in_w, 0);
        int64_t ldi;
        const float *in = layer_input(net, l, 0, B, s->obs, a->acts, &ldi);
        if (net->act == QF_ACTIVATION_GELU) {
            /* rows of wmax floats: the layers' rows of one thread never overlap another's */
            float *z = a->work + 2 * (int64_t)B * wmax + m0 * wmax;
            const float *xr = s->obs ? s->obs + m0 * (int64_t)net->w[0] : NULL;
            layer_out(net, W, 0, l - 1, Mp, xr, s->idx ? s->idx + m0 : NULL, a->acts + m0 * net->H, z, wmax, -1);
            gelu_grad(dx + m0 * in_w, in_w, z, wmax, Mp, in_w);
        } else {
            relu_grad(dx + m0 * in_w, in_w, in + m0 * ldi, ldi, Mp, in_w);
        }
        dy[l - 1] = dx;
        lddy[l - 1] = in_w;
    }
#pragma omp barrier
    /* 4. weight gradients by rows of dW (inputs), bias gradients by columns */
    for (int l = 0; l < L; l++) {
        const int32_t in_w = net->w[l], out_w = net->w[l + 1];
        int64_t ldi;
        const float *in = layer_input(net, l, 0, B, s->obs, a->acts, &ldi);
        float *dWt = dW + net->off_w[l], *db = dW + net->off_b[l];
        int64_t c0, c1;
        share(out_w, tid, nth, &c0, &c1);
        memset(db + c0, 0, sizeof(float) * (size_t)(c1 - c0));
        bias_grad(db + c0, dy[l] + c0, lddy[l], B, (int32_t)(c1 - c0));
        if (!in) { /* embedding: the scatter-add of backward_net, this thread's columns */
            for (int64_t i = 0; i < in_w; i++) memset(dWt + i * out_w + c0, 0, sizeof(float) * (size_t)(c1 - c0));
            const int32_t *si = s->idx;
            for (int32_t m = 0; m < B; m++) {
                const int32_t sm = qf_clamp_index(si[m], in_w);
                for (int64_t j = c0; j < c1; j++) dWt[(int64_t)sm * out_w + j] += dy[l][m * lddy[l] + j];
            }
        } else {
            int64_t i0, i1;
            share(in_w, tid, nth, &i0, &i1);
            qf_cpu_gemm(1, 0, (int32_t)(i1 - i0), out_w, B, in + i0, ldi, dy[l], lddy[l], dWt + i0 * out_w, out_w,
                        l == 0);
        }
    }
#pragma omp barrier
    /* 5. Adam (adam_run of run 0, K = 1): each thread computes the norm in adam_run's order, then
     * updates its range of the parameters */
    const float *restrict gg = a->grads;
    const float gn = (float)sqrt(sum_squares(gg, P));
    chk[tid] = 0.0f;
    if (isfinite(gn) && a->status[0] == QF_RUN_OK) {
        const qf_run_hp *h = &a->hp[0];
        const qf_adam_k ak = qf_adam_consts(h, a->adam_t[0] + 1);
        const float scale = qf_clip_scale(h, gn);
        int64_t j0, j1;
        share(P, tid, nth, &j0, &j1);
        float *restrict pg = a->params, *restrict mg = a->adam_m, *restrict vg = a->adam_v;
        float c = 0.0f;
#pragma omp simd reduction(+ : c)
        for (int64_t j = j0; j < j1; j++) {
            qf_adam(&pg[j], gg[j], &mg[j], &vg[j], ak, scale);
            c += pg[j] * 0.0f;
        }
        chk[tid] = c;
    }
#pragma omp barrier
#pragma omp master
    {
        a->gnorm[0] = gn;
        if (!isfinite(gn)) a->status[0] = QF_RUN_DIVERGED;
        if (a->status[0] == QF_RUN_OK) {
            int bad = 0;
            for (int t = 0; t < nth; t++) bad |= chk[t] != 0.0f; /* NaN compares unequal to everything */
            a->adam_t[0] += 1;
            if (bad) a->status[0] = QF_RUN_DIVERGED;
        }
        if (target_now) target_run(net, a->hp, 0, a->params, a->target, a->status, target_now == 2);
    }
}

/* ---- the per-run path's scratch -----------------------------------------------------------------
 * Per thread, one run's K networks' intermediate values in net_scratch's order, each array K
 * networks long: acts, acts_tmp [K][B][H]; q, qt, qo, qp, dq [K][B][A]; grads [K][P]; work. Kept in
 * b->impl between updates (grown when a fleet needs more), freed by the backend's close. */
typedef struct cpu_learn_state {
    float *scratch;
    int64_t floats;
} cpu_learn_state;

/* The arrays of one thread's block, in net_scratch's order, each one run's K networks long and
 * rounded up to 16 floats (64 bytes: no two arrays or threads share a line). per[i]: one network's
 * floats of array i. Returns the floats of the block. */
#define QF_SCRATCH_ARRAYS 9
static int64_t scratch_layout(const qf_learn_args *a, int64_t per[QF_SCRATCH_ARRAYS]) {
    const qf_net *n = a->net;
    const int64_t B = a->B, H = n->H ? n->H : 1, A = n->w[n->L];
    const int64_t p[QF_SCRATCH_ARRAYS] = {B * H, B * H, B * A, B * A, B * A, B * A, B * A, n->P,
                                          qf_net_work_bufs(n) * B * qf_net_max_width(n)};
    int64_t total = 0;
    for (int i = 0; i < QF_SCRATCH_ARRAYS; i++) {
        per[i] = p[i];
        total += (n->K * p[i] + 15) / 16 * 16;
    }
    return total;
}

static int64_t run_scratch_floats(const qf_learn_args *a) {
    int64_t per[QF_SCRATCH_ARRAYS];
    return scratch_layout(a, per);
}

/* Network k's (of the run's K) slices of a thread's block `mine`. */
static net_scratch thread_slices(const qf_learn_args *a, float *mine, int64_t k) {
    int64_t per[QF_SCRATCH_ARRAYS];
    scratch_layout(a, per);
    float *at[QF_SCRATCH_ARRAYS], *next = mine;
    for (int i = 0; i < QF_SCRATCH_ARRAYS; i++) {
        at[i] = next + k * per[i];
        next += (a->net->K * per[i] + 15) / 16 * 16;
    }
    net_scratch w = {at[0], at[1], at[2], at[3], a->qo ? at[4] : NULL, at[5], at[6], at[7], at[8]};
    return w;
}

/* The scratch of every thread of the team, or NULL when it cannot be had (out of memory: the caller
 * takes the other path, which needs none). */
static float *run_scratch(qf_backend *b, const qf_learn_args *a) {
    const int64_t need = run_scratch_floats(a) * (int64_t)omp_get_max_threads();
    cpu_learn_state *st = (cpu_learn_state *)b->impl;
    if (!st) {
        st = (cpu_learn_state *)calloc(1, sizeof *st);
        if (!st) return NULL;
        b->impl = st;
    }
    if (st->floats < need) {
        free(st->scratch);
        st->scratch = (float *)aligned_alloc(64, sizeof(float) * (size_t)need);
        st->floats = st->scratch ? need : 0;
    }
    return st->scratch;
}

void qf_cpu_learn_close(qf_backend *b) {
    cpu_learn_state *st = (cpu_learn_state *)b->impl;
    if (!st) return;
    free(st->scratch);
    free(st);
    b->impl = NULL;
}

/* The learner update (backend.h, learn; the specification of the CUDA version). One parallel
 * region. With a run per thread or more: runs shared statically over the threads, each run's
 * networks then its Adam and, without RND, its target update, the intermediate values in the
 * thread's scratch. Else: the networks shared statically over the threads (so a fleet of few runs
 * with several heads still spreads its heads over the cores), then each run's Adam and target
 * update; a lone network shared by rows (learn_split, threads=N only). Every value is computed by
 * one thread in a fixed order: the thread count changes no result. */
static int cpu_learn(qf_backend *b, const qf_learn_args *a) {
    const qf_net *net = a->net;
    const int64_t G = (int64_t)net->R * net->K;
    if (b->replay_sample(b, a->replay, a->B, a->stored, a->update, a->keys, a->s) != QF_OK ||
        (a->counts && b->count_bonus(b, a->counts, a->hp, a->B, a->s) != QF_OK))
        return QF_ERR;
    const int target_now = a->rnd ? 0 : a->target_mode; /* with RND: after its Adam */
    float *scr = NULL;
    if (split_ok(a)) {
        float chk[256];
        QF_PRAGMA(omp parallel num_threads(omp_get_max_threads() < 256 ? omp_get_max_threads() : 256)) {
            const unsigned csr = ftz_on();
            learn_split(a, target_now, chk);
            ftz_off(csr);
        }
    } else if (net->R > 1 && net->R >= omp_get_max_threads() && (scr = run_scratch(b, a)) != NULL) {
        /* a run per thread or more: a run's networks, then at once its Adam and target, while the
         * run's parameters are still in the caches, and every network's intermediate values in the
         * thread's own scratch (a fleet's are far larger than the caches: 64 runs of 10 heads of
         * 64-64 hold ~140 MB of parameters and moments and ~150 MB of per-network activations).
         * The same operations on the same floats as the loops below. */
        const int64_t per_thread = run_scratch_floats(a);
        QF_PRAGMA(omp parallel if (G * a->B * net->P >= QF_PAR_MIN_WORK)) {
            const unsigned csr = ftz_on();
            float *mine = scr + (int64_t)omp_get_thread_num() * per_thread;
#pragma omp for schedule(static)
            for (int32_t r = 0; r < net->R; r++) {
                for (int64_t g = (int64_t)r * net->K; g < (int64_t)(r + 1) * net->K; g++) {
                    if (g + 1 < G) { /* the next network's weights, towards L2 while this one computes */
                        const char *pn = (const char *)(a->params + (g + 1) * net->P);
                        const char *tn = (const char *)(a->target + (g + 1) * net->P);
                        for (int64_t o = 0; o < net->P * (int64_t)sizeof(float); o += 64) {
                            __builtin_prefetch(pn + o, 0, 2);
                            __builtin_prefetch(tn + o, 0, 2);
                        }
                    }
                    if (qf_head_on(net, g)) {
                        const net_scratch w = thread_slices(a, mine, g - (int64_t)r * net->K);
                        learn_net(a, g, &w);
                    }
                }
                adam_run(net, a->hp, r, a->params, thread_slices(a, mine, 0).grads, a->adam_m, a->adam_v, a->adam_t,
                         a->status, a->gnorm);
                if (target_now) target_run(net, a->hp, r, a->params, a->target, a->status, target_now == 2);
            }
            ftz_off(csr);
        }
    } else {
        QF_PRAGMA(omp parallel if (G > 1 && G * a->B * net->P >= QF_PAR_MIN_WORK)) {
            const unsigned csr = ftz_on();
#pragma omp for schedule(static)
            for (int64_t g = 0; g < G; g++)
                if (qf_head_on(net, g)) {
                    const net_scratch w = net_slices(a, g);
                    learn_net(a, g, &w);
                }
#pragma omp for schedule(static)
            for (int32_t r = 0; r < net->R; r++) {
                adam_run(net, a->hp, r, a->params, a->grads + (int64_t)r * net->K * net->P, a->adam_m, a->adam_v,
                         a->adam_t, a->status, a->gnorm);
                if (target_now) target_run(net, a->hp, r, a->params, a->target, a->status, target_now == 2);
            }
            ftz_off(csr);
        }
    }
    if (a->rnd && qf_learn_rnd_step(b, a) != QF_OK) return QF_ERR;
    if (a->rnd && a->target_mode)
        return cpu_target_update(b, net, a->hp, a->params, a->target, a->status, a->target_mode == 2);
    return QF_OK;
}

static int cpu_act(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t E, const float *q,
                   const uint32_t *keys, uint32_t t, const uint8_t *flags, int32_t *heads, int32_t *actions) {
    (void)b;
    const int32_t A = net->w[net->L];
#pragma omp parallel for schedule(static) if (net->R > 1 && (int64_t)net->R * E * A >= QF_PAR_MIN_WORK / 8)
    for (int32_t r = 0; r < net->R; r++)
        for (int32_t e = 0; e < E; e++) {
            const int64_t i = (int64_t)r * E + e;
            if (hp[r].explore != QF_EXPLORE_BOOTSTRAP)
                heads[i] = 0;
            else if (t == 0 || (flags[i] & (QF_TERMINAL | QF_TRUNCATED)))
                heads[i] = qf_draw_head(keys[2 * r], keys[2 * r + 1], e, t, hp[r].n_heads);
            qf_rng g = qf_rng_make(keys[2 * r], keys[2 * r + 1], QF_STREAM_ACT, (uint32_t)e, t);
            const float *row = q + (((int64_t)r * net->K) * E + e) * A;
            actions[i] = qf_act_one(row, (int64_t)E * A, A, &hp[r], heads[i], t, qf_rng_next(&g));
        }
    return QF_OK;
}

static int cpu_q_diversity(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t E, const float *q,
                           float *acc) {
    (void)b;
    const int32_t A = net->w[net->L];
    for (int32_t r = 0; r < net->R; r++)
        if (hp[r].explore == QF_EXPLORE_BOOTSTRAP) acc[r] += qf_q_diversity_run(q, r, net->K, E, A, hp[r].n_heads);
    return QF_OK;
}

static int cpu_replay_store(qf_backend *b, const qf_replay *rp, const qf_run_hp *hp, const uint32_t *keys,
                            int32_t E, int64_t ptr, uint32_t t, const float *obs, const int32_t *obs_idx,
                            const int32_t *actions, const float *reward, const uint8_t *flags,
                            const float *next_obs, const int32_t *next_idx, const float *intr) {
    (void)b;
#pragma omp parallel for schedule(static) if (rp->R > 1 && (int64_t)rp->R * E * (rp->D + 4) >= QF_PAR_MIN_WORK)
    for (int32_t r = 0; r < rp->R; r++)
        for (int32_t e = 0; e < E; e++) {
            const int64_t src = (int64_t)r * E + e, dst = (int64_t)r * rp->C + (ptr + e) % rp->C;
            if (rp->embed) {
                rp->idx[dst] = obs_idx[src];
                rp->next_idx[dst] = next_idx[src];
            } else {
                memcpy(rp->obs + dst * rp->D, obs + src * rp->D, sizeof(float) * (size_t)rp->D);
                memcpy(rp->next_obs + dst * rp->D, next_obs + src * rp->D, sizeof(float) * (size_t)rp->D);
            }
            rp->action[dst] = actions[src];
            rp->reward[dst] = reward[src];
            rp->terminal[dst] = (uint8_t)((flags[src] & QF_TERMINAL) != 0);
            rp->mask[dst] = qf_draw_mask(keys[2 * r], keys[2 * r + 1], e, t, hp[r].n_heads, hp[r].mask_p);
            rp->intr[dst] = intr ? intr[src] : 0.0f;
        }
    return QF_OK;
}

#define SAMPLE_AHEAD 16 /* draws whose rows are prefetched before the first copy */

static int cpu_replay_sample(qf_backend *b, const qf_replay *rp, int32_t B, int64_t size, uint32_t update,
                             const uint32_t *keys, qf_sample *out) {
    (void)b;
    /* random rows of a replay much larger than the caches: the time goes to cache misses, which
     * two threads overlap better than one, so this goes parallel at a much smaller size than
     * QF_PAR_MIN_WORK; rows of D floats are copied inline (a memcpy call per row cost more) */
    const int64_t D = rp->D;
    const int32_t K = out->R / rp->R; /* 1: a batch per run; else one per head */
#pragma omp parallel for schedule(static) if (out->R > 1 && (int64_t)out->R * B >= 2048)
    for (int32_t row = 0; row < out->R; row++)
        for (int32_t j0 = 0; j0 < B; j0 += SAMPLE_AHEAD) {
            /* the slots of SAMPLE_AHEAD draws first, each draw's rows prefetched (the misses overlap
             * instead of following one another), then the copies; -1: a demo draw (copied at once) */
            const int32_t jn = B - j0 < SAMPLE_AHEAD ? B - j0 : SAMPLE_AHEAD;
            int64_t slots[SAMPLE_AHEAD];
            for (int32_t t = 0; t < jn; t++) {
                const int32_t j = j0 + t;
                slots[t] = -1;
                if (qf_sample_demo(rp, keys, update, K, B, row, j, out)) continue; /* the demo part's draws */
                const int32_t r = row / K, k = row % K;
                const int64_t src = (int64_t)r * rp->C + qf_sample_slot(keys, r, update, k * B + j, size);
                slots[t] = src;
                if (rp->embed) {
                    __builtin_prefetch(rp->idx + src);
                    __builtin_prefetch(rp->next_idx + src);
                } else {
                    __builtin_prefetch(rp->obs + src * D);
                    __builtin_prefetch(rp->next_obs + src * D);
                }
                __builtin_prefetch(rp->action + src);
                __builtin_prefetch(rp->reward + src);
                __builtin_prefetch(rp->terminal + src);
                __builtin_prefetch(rp->mask + src);
                __builtin_prefetch(rp->intr + src);
            }
            for (int32_t t = 0; t < jn; t++) {
                const int32_t j = j0 + t;
                if (slots[t] < 0) continue;
                const int32_t r = row / K, k = row % K;
                const int64_t src = slots[t];
                const int64_t dst = (int64_t)row * B + j;
                if (rp->embed) {
                    out->idx[dst] = rp->idx[src];
                    out->next_idx[dst] = rp->next_idx[src];
                } else {
                    const float *restrict o = rp->obs + src * D, *restrict no = rp->next_obs + src * D;
                    float *restrict oo = out->obs + dst * D, *restrict ono = out->next_obs + dst * D;
                    for (int64_t d = 0; d < D; d++) oo[d] = o[d];
                    for (int64_t d = 0; d < D; d++) ono[d] = no[d];
                }
                out->action[dst] = rp->action[src];
                out->reward[dst] = rp->reward[src];
                out->terminal[dst] = rp->terminal[src];
                out->mask[dst] = rp->mask[src];
                out->intr[dst] = rp->intr[src];
                if (rp->prior_obs && out->prior_obs)
                    qf_sample_priors(rp->prior_obs, rp->prior_next, rp->C, rp->K, rp->A, K, r, k,
                                     src - (int64_t)r * rp->C, B, j, out);
            }
        }
    return QF_OK;
}

static int cpu_replay_store_prior(qf_backend *b, const qf_replay *rp, int32_t E, int64_t ptr, const float *qp_obs,
                                  const float *qp_next) {
    (void)b;
    const int64_t G = (int64_t)rp->R * rp->K, A = rp->A;
    for (int64_t g = 0; g < G; g++)
        for (int32_t e = 0; e < E; e++) {
            const int64_t from = (g * E + e) * A, to = (g * rp->C + (ptr + e) % rp->C) * A;
            memcpy(rp->prior_obs + to, qp_obs + from, sizeof(float) * (size_t)A);
            memcpy(rp->prior_next + to, qp_next + from, sizeof(float) * (size_t)A);
        }
    return QF_OK;
}

static int cpu_fill0(qf_backend *b, void *p, size_t bytes) {
    (void)b;
    memset(p, 0, bytes);
    return QF_OK;
}

void qf_cpu_learn_ops(qf_backend *b) {
    openblas_set_num_threads(1); /* OpenBLAS (the roofline probe) alone; the learner threads over networks */
    b->net_init = cpu_net_init;
    b->net_forward = cpu_net_forward;
    b->net_backward = cpu_net_backward;
    b->td = cpu_td;
    b->add_prior = cpu_add_prior;
    b->adam = cpu_adam;
    b->target_update = cpu_target_update;
    b->act = cpu_act;
    b->q_diversity = cpu_q_diversity;
    b->replay_store = cpu_replay_store;
    b->replay_store_prior = cpu_replay_store_prior;
    b->replay_sample = cpu_replay_sample;
    b->fill0 = cpu_fill0;
    b->learn = cpu_learn;
    qf_cpu_explore_ops(b);
}
