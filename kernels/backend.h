/* backend.h — the backend API: memory and operations on one device, as a table of functions.
 * Two implementations: kernels/cpu (C11 + OpenMP, the reference, always built) and kernels/cuda
 * (CUDA C, built when nvcc is found). host/ calls only this header and never branches on the
 * backend. Every function returns QF_OK or QF_ERR; on QF_ERR, b->err holds one line saying what
 * failed, where (file:line) and, when there is one, a hint. */
#ifndef QF_BACKEND_H
#define QF_BACKEND_H
#include <stddef.h>
#include <stdint.h>
#include "env_batch.h"
#include "learn.h"
#include "explore.h"
#include "solve.h"
#include "infer.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { QF_OK = 0, QF_ERR = -1, QF_DECLINED = 1 /* an optional operation that does not apply here */ };
typedef enum { QF_BACKEND_CPU = 0, QF_BACKEND_CUDA = 1 } qf_backend_kind;

typedef struct qf_backend qf_backend;

/* The per-iteration values of the training loop in backend memory, for replaying one captured
 * iteration (CUDA graphs, docs/cuda-graphs.md). While a capture is open (iter_begin_capture), the
 * operations act, env_step, replay_store, replay_sample and target_update take these values from
 * here, at replay time, instead of their by-value arguments:
 *   act, env_step, replay_store: t (the env step, which also drives the epsilon schedule and every
 *     counter-based draw); replay_store's slot ptr = (t * E) mod C;
 *   replay_sample: update, and size = min((t + 1) * E, C) (the filled slots after this step's store);
 *   target_update: nothing when polyak = 0 and (update + 1) mod target_every != 0, else Polyak
 *     (polyak = 1, each run's tau) or a copy (polyak = 0).
 * The host keeps the same counters and moves these with iter_advance (one tiny kernel). */
typedef struct qf_iter {
    uint32_t t;           /* env step per env of the current iteration */
    uint32_t update;      /* learner updates done before the current one (the SAMPLE counter) */
    int32_t E;            /* envs per run (constant) */
    int32_t target_every; /* copy period in updates (polyak = 0), >= 1 (constant) */
    int32_t polyak;       /* 1: Polyak-average the target after every update (tau < 1) (constant) */
    int32_t reserved;     /* 0 */
} qf_iter;
struct qf_bandit_fleet; /* kernels/bandit_agent.h */
/* The peaks of one device, for roofline bounds (the `peaks` operation). The bounds use bytes_per_s
 * and flops (measured where measured). */
typedef struct qf_peaks {
    double bytes_per_s;      /* attainable memory bandwidth used for bounds (0: unknown)            */
    double flops;            /* attainable fp32 FLOP/s used for bounds (0: unknown)                 */
    double theo_bytes_per_s; /* theoretical memory bandwidth (0: not derivable here)                */
    double theo_flops;       /* theoretical fp32 FLOP/s (0: not derivable here)                     */
    int threads;             /* CPU: threads used by the probes                                     */
    char how[640];           /* one line: what was measured or derived, how                         */
} qf_peaks;

/* Everything one learner update touches (the `learn` operation): backend memory unless said
 * otherwise, shapes as for the operations below (G = R*K networks, B transitions per batch). */
typedef struct qf_learn_args {
    const qf_net *net;            /* the Q-networks as the learner reads them (x_per_net: a batch per head) */
    const qf_run_hp *hp;          /* [R]                                                                 */
    const uint32_t *keys;         /* [R][2] run keys (SAMPLE stream)                                     */
    const qf_replay *replay;      /* the rings sampled from                                              */
    int64_t stored;               /* filled slots of every ring (host value)                             */
    uint32_t update;              /* learner updates done so far: the SAMPLE counter (host value)        */
    int32_t B;                    /* transitions per batch (host value)                                  */
    qf_sample *s;                 /* receives the batches: [R][B] rows, or [R*K][B] with x_per_net       */
    const qf_counts *counts;      /* NULL, or count bonuses written into s->intr after sampling          */
    float *params, *target;       /* [G][P] online and target networks                                   */
    const float *prior;           /* [G][P] fixed random priors, or NULL: no randomized prior            */
    float *acts, *acts_tmp;       /* [G][B][H]: forward(params, s) for backward; scratch                 */
    float *q, *qt, *qo, *qp, *dq; /* [G][B][A]; qo NULL: no double Q; qp: prior outputs (with prior)     */
    float *grads, *work;          /* [G][P]; qf_net_work_floats(net, B) floats                           */
    float *adam_m, *adam_v;       /* [G][P]                                                              */
    int32_t *adam_t, *status;     /* [R]                                                                 */
    float *gnorm, *loss, *qmean;  /* [G]                                                                 */
    float *imean;                 /* [R]                                                                 */
    const qf_rnd *rnd;            /* NULL, or RND's predictor learns on the sampled next states          */
    int target_mode;              /* 0: none, 1: Polyak (hp tau), 2: copy                                */
} qf_learn_args;

struct qf_backend {
    qf_backend_kind kind;
    const char *name;       /* "cpu" or "cuda" */
    char device[256];       /* human-readable device description */
    size_t mem_total;       /* bytes of memory the backend allocates from */
    size_t mem_free;        /* bytes free when the backend was opened */
    double peak_bytes_per_s;/* memory bandwidth bound (0 when unknown) */
    char err[512];
    void *impl;
    unsigned long long n_sync; /* host-device synchronizations so far (upload, download, sync) */
    /* work items the host enqueued on the device so far: kernel launches, cuBLAS calls, async
     * memsets; a graph launch counts 1 (what it replays is not counted again). 0 on the CPU. */
    unsigned long long n_launch;

    void *(*alloc)(qf_backend *b, size_t bytes);                 /* zeroed; NULL on failure */
    void (*release)(qf_backend *b, void *p);
    int (*upload)(qf_backend *b, void *dst, const void *src, size_t bytes);
    int (*download)(qf_backend *b, void *dst, const void *src, size_t bytes);
    int (*sync)(qf_backend *b);
    /* profiler capture on/off (cudaProfilerStart/Stop); NULL where there is nothing to capture */
    int (*profile)(qf_backend *b, int on);
    /* every env of the batch starts a fresh episode; statistics cleared */
    int (*env_reset)(qf_backend *b, const qf_env_batch *batch);
    /* one step of every env at global step t; see qf_batch_step_one for the arguments */
    int (*env_step)(qf_backend *b, const qf_env_batch *batch, const int32_t *actions, uint32_t t,
                    float *next_obs, int32_t *next_index);
    /* observation of every env's current state */
    int (*env_observe)(qf_backend *b, const qf_env_batch *batch, float *obs, int32_t *index);
    /* exact solver: q [R][S][A] and v [R][S] (backend memory, double) receive Q* and V*;
     * iters (host int) receives the sweeps used. See solve.h. */
    int (*solve)(qf_backend *b, const qf_solve_problem *prob, double *q, double *v, int32_t *iters);

    /* ---- control as inference and MaxEnt IRL (kernels/infer.h; all arrays backend memory) ---- */
    /* backward messages: v [R][T+1][S] receives V_t(s) = alpha * log beta_t(s) under prob->backup
     * (V_T = 0). Q_t is not stored: qf_infer_state recomputes a row from V_{t+1} where needed. */
    int (*infer_backward)(qf_backend *b, const qf_infer_problem *prob, double *v);
    /* forward pass from v (infer_backward's): start [R][S] start distribution or NULL (the env's
     * start state); marg [R][T][S] state marginals or NULL; occ [R][S][A] occupancy summed over t
     * or NULL (see qf_infer_forward_run) */
    int (*infer_forward)(qf_backend *b, const qf_infer_problem *prob, const double *v,
                         const double *start, double *marg, double *occ);
    /* loglik [R] = sum over run r's demonstration steps of log pi_t(a | s) (v from the backward
     * pass under the same problem) */
    int (*infer_loglik)(qf_backend *b, const qf_infer_problem *prob, const double *v,
                        const qf_demo_steps *demos, double *loglik);
    /* Per-run products with the feature matrix feat [R][N][F] (feat_stride = N*F doubles between
     * runs; 0: one matrix shared by all runs). transpose = 0: y [R][N] = feat x [R][F] (the linear
     * reward r_psi = psi . f); 1: y [R][F] = feat^T x [R][N] (feature counts of an occupancy). */
    int (*feat_matvec)(qf_backend *b, int32_t R, int32_t N, int32_t F, const double *feat,
                       int64_t feat_stride, const double *x, int transpose, double *y);
    /* One Adam ascent step on the MaxEnt IRL objective (mean demo log-likelihood) for every run:
     * grad [R][F] = (expert - expected) / alpha; m, v: moments; t: steps done before (the same for
     * every run); lr [R]; betas 0.9, 0.999, eps 1e-8 (Kingma and Ba 2015). psi [R][F] updated. */
    int (*irl_adam)(qf_backend *b, int32_t R, int32_t F, const double *expert, const double *expected,
                    const double *alpha, const double *lr, int32_t t, double *m, double *v, double *psi,
                    double *grad);

    /* ---- learner (kernels/learn.h). Networks g = r*K + k; heads of a run share its inputs. ---- */
    /* params [G][P] = initial parameters from the run keys [R][2] and a stream (QF_STREAM_INIT for
     * trained networks, QF_STREAM_PRIOR for fixed random ones). */
    int (*net_init)(qf_backend *b, const qf_net *net, const uint32_t *keys, uint32_t stream, float *params);
    /* q [G][M][A] = forward of M inputs per network: x [R][M][w0] (embed = 0) or xi [R][M]
     * (embed = 1). acts [G][M][H] receives the hidden activations (after ReLU) for backward. */
    int (*net_forward)(qf_backend *b, const qf_net *net, const float *params, int32_t M,
                       const float *x, const int32_t *xi, float *acts, float *q);
    /* grads [G][P] = gradient of sum_{m,a} dq[g][m][a] * q[g][m][a] w.r.t. the parameters, at the
     * forward whose acts are given. work: qf_net_work_floats(net, M) floats of scratch. */
    int (*net_backward)(qf_backend *b, const qf_net *net, const float *params, int32_t M,
                        const float *x, const int32_t *xi, const float *acts, const float *dq,
                        float *grads, float *work);
    /* TD step for B sampled transitions s [R][B] (net->x_per_net: [G][B]): dq [G][B][A] and per-network mean loss [G] and
     * mean Q(s, a) [G]. q: online Q(s, .) [G][B][A]; qt: target Q(s', .); qo: online Q(s', .) or
     * NULL (double Q). The reward is s->reward + beta * s->intr; head k of a run learns from a
     * transition only when bit k of s->mask is set. imean [R] receives the batch's mean beta*intr.
     * Rows marked in s->is_demo (when not NULL) add the run's demo loss to dq (qf_demo_loss; not
     * to loss). */
    int (*td)(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t B, const qf_sample *s,
              const float *q, const float *qt, const float *qo, float *dq, float *loss, float *qmean,
              float *imean);
    /* q [G][M][A] += prior_scale of the run * qp [G][M][A] (randomized prior functions) */
    int (*add_prior)(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t M, float *q,
                     const float *qp);
    /* Adam on every network of a run that is not diverged: global-norm clipping per network,
     * bias correction with the run's step count adam_t [R] (incremented). A non-finite gradient
     * norm marks the run QF_RUN_DIVERGED in status [R] before any update (its parameters stay as
     * they were); a parameter that becomes non-finite marks it after the step. From then on the
     * run is frozen: no operation changes its parameters. gnorm [G] receives the norms. */
    int (*adam)(qf_backend *b, const qf_net *net, const qf_run_hp *hp, float *params,
                const float *grads, float *m, float *v, int32_t *adam_t, int32_t *status, float *gnorm);
    /* One learner update of every run (DESIGN.md's step 4 and 5). The CPU version
     * (kernels/cpu/learn_cpu.c) is the specification; it equals, bit for bit, these operations in
     * turn (tests/test_explore.cc checks it):
     *   replay_sample(a->replay, B, stored, update, keys, s); count_bonus(counts, hp, B, s) when counts;
     *   forward(target, s') + prior -> qt; when qo: forward(params, s') + prior -> qo (the prior's
     *   outputs on s' reused); forward(params, s) + prior -> q, acts; td -> dq, loss, qmean, imean;
     *   net_backward -> grads; adam -> params, moments, adam_t, status, gnorm;
     *   when rnd: qf_learn_rnd_step (below); then target_update when target_mode is 1 or 2
     * ("+ prior": net_forward(prior) into qp with acts_tmp as scratch, then add_prior; when the
     * sample carries the priors' outputs, s->prior_obs / s->prior_next not NULL, add_prior of those
     * instead, s->prior_next for s' and s->prior_obs for s, and no prior forward). The target
     * update comes last, after RND's Adam (which may mark a run diverged). The CUDA version calls its
     * operations in this order; the CPU one runs each network's forward-to-backward on one core
     * while its data is in that core's caches, then each run's Adam and target update. acts,
     * acts_tmp, q, qt, qo, qp, dq, grads and work are scratch: what they hold afterwards is not
     * specified (the CPU's per-run path keeps a run's in a thread's own memory instead). */
    int (*learn)(qf_backend *b, const qf_learn_args *a);
    /* The memory bandwidth and fp32 FLOP/s this device can reach, measured or derived here
     * (kernels/cpu: STREAM triad and a cblas_sgemm; kernels/cuda: device attributes and a
     * device-to-device copy); fields 0 where unknown. QF_ERR with the reason in err when nothing
     * could be probed. Measured on each call: callers cache (host/roofline.c). */
    int (*peaks)(qf_backend *b, qf_peaks *out);
    /* target = tau * params + (1 - tau) * target per run (copy: tau taken as 1); diverged runs skipped */
    int (*target_update)(qf_backend *b, const qf_net *net, const qf_run_hp *hp, const float *params,
                         float *target, const int32_t *status, int copy);
    /* actions [R][E] from q [G][E][A] by each run's strategy at env step t (ACT stream).
     * heads [R][E]: the head each env follows; redrawn (HEAD stream) when t == 0 or the env's last
     * step ended an episode (flags [R][E], the env batch's). Non-ensemble runs use head 0. */
    int (*act)(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t E, const float *q,
               const uint32_t *keys, uint32_t t, const uint8_t *flags, int32_t *heads, int32_t *actions);
    /* Q-diversity, summed per step: acc [R] += qf_q_diversity_run (kernels/explore.h) of q [G][E][A]
     * (the act operation's input) for every run with explore = bootstrap; other runs' acc untouched.
     * The host divides by the steps summed at a log point (curves.csv's q_diversity). */
    int (*q_diversity)(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t E, const float *q,
                       float *acc);
    /* write the E transitions of each run stored at env step t into its ring at slots
     * (ptr + e) % C, with their bootstrap masks (MASK stream) and intrinsic rewards intr [R][E]
     * (NULL: 0) */
    int (*replay_store)(qf_backend *b, const qf_replay *rp, const qf_run_hp *hp, const uint32_t *keys,
                        int32_t E, int64_t ptr, uint32_t t, const float *obs, const int32_t *obs_idx,
                        const int32_t *actions, const float *reward, const uint8_t *flags,
                        const float *next_obs, const int32_t *next_idx, const float *intr);
    /* the fixed priors' outputs of the E transitions replay_store wrote at step t (slots
     * (ptr + e) % C): rp->prior_obs and rp->prior_next [R][K][C][A] from qp_obs (on s) and qp_next
     * (on s'), both [G][E][A] as net_forward writes them. Bit-exact copies. */
    int (*replay_store_prior)(qf_backend *b, const qf_replay *rp, int32_t E, int64_t ptr, const float *qp_obs,
                              const float *qp_next);
    /* draw B slots uniformly from the `size` filled ones of each run (SAMPLE stream, `update`):
     * out->R = rp->R rows (a batch per run), or rp->R x K rows (a batch per head, row r*K + k
     * drawing draws k*B .. k*B + B-1 of run r; see qf_sample_slot). With a demo part (rp->demo.C > 0,
     * out->is_demo set) the first rp->demo.draws[r] draws of each row come from it (qf_sample_demo)
     * and out->is_demo marks them;
     * with rp->prior_obs and
     * out->prior_obs set, also the priors' outputs of the drawn slots (every head's for a run's
     * batch, the head's own for a head's batch) into out's [G][B][A] */
    int (*replay_sample)(qf_backend *b, const qf_replay *rp, int32_t B, int64_t size, uint32_t update,
                         const uint32_t *keys, qf_sample *out);
    /* bytes = 0 on backend memory */
    int (*fill0)(qf_backend *b, void *p, size_t bytes);

    /* ---- exploration (kernels/explore.h) ---- */
    /* SimHash projections from the run keys (no-op for exact counts); tables start empty */
    int (*count_init)(qf_backend *b, const qf_counts *c, const uint32_t *keys);
    /* count the arrival states of the E envs of every run: next_idx [R][E] (exact) or next_obs
     * [R][E][D] (SimHash) */
    int (*count_update)(qf_backend *b, const qf_counts *c, int32_t E, const float *next_obs,
                        const int32_t *next_idx);
    /* count the (state, action) pairs of the E envs: obs_idx [R][E] (exact) or obs [R][E][D]
     * (SimHash), actions [R][E]; only when c->A > 0 */
    int (*count_sa_update)(qf_backend *b, const qf_counts *c, int32_t E, const float *obs,
                           const int32_t *obs_idx, const int32_t *actions);
    /* q [G][E][A] (every head's rows) += beta / sqrt(N(s, a) + 1) for runs whose bonus is
     * QF_BONUS_COUNT with count_act set */
    int (*count_act)(qf_backend *b, const qf_counts *c, const qf_net *net, const qf_run_hp *hp, int32_t E,
                     const float *obs, const int32_t *obs_idx, float *q);
    /* s->intr [s->R][B] = 1/sqrt(N(s')) for runs whose bonus is QF_BONUS_COUNT (rows of a run's
     * heads, with per-head batches, use the run's counts) */
    int (*count_bonus)(qf_backend *b, const qf_counts *c, const qf_run_hp *hp, int32_t B, qf_sample *s);
    /* RND inputs: rnd->xn [R][M][W] = normalized, clipped x [R][M][D] in the first D columns of each
     * row (D = rnd->obs_dim, or net.w[0] when 0; W = net.w[0], D + A with (s, a) pairs, whose last
     * A columns rnd_pair writes); update = 1 first merges the M observations of each run into its
     * running statistics */
    int (*rnd_input)(qf_backend *b, const qf_rnd *rnd, int32_t M, const float *x, int update);
    /* intr [R][E] from rnd->out_t / out_p of the E envs: squared error (mean over outputs) over
     * the running std of the discounted intrinsic return (which these values update); the return
     * restarts where flags [R][E] end an episode, for runs with rnd_episodic */
    int (*rnd_reward)(qf_backend *b, const qf_rnd *rnd, const qf_run_hp *hp, int32_t E,
                      const uint8_t *flags, float *intr);
    /* predictor loss: rnd->dq [R][M][dim] = d/d out_p of the mean squared error, rnd->loss [R] */
    int (*rnd_grad)(qf_backend *b, const qf_rnd *rnd, int32_t M);
    /* (state, action) inputs (rnd_input=state_action, rnd->n_actions = A > 0; nothing otherwise),
     * actions [R][M]: state indices (net.embed): rnd->xi [R][M] = qf_rnd_pair_index(xi, S, a, A),
     * S = net.w[0] / A; dense: columns D .. D+A-1 of the rows of rnd->xn [R][M][D+A] (whose first D
     * columns rnd_input wrote) = one-hot(a), qf_rnd_pair_dense */
    int (*rnd_pair)(qf_backend *b, const qf_rnd *rnd, int32_t M, const int32_t *xi, const int32_t *actions);
    /* optimistic acting on (s, a) novelty: q [G][E][A] column a of every head of run r += qf_rnd_act_one
     * of the squared error (mean over outputs) of rnd->out_t / out_p row (r, e), for runs with
     * rnd_act; the caller has just run target and predictor on the pairs (s_e, a) */
    int (*rnd_act)(qf_backend *b, const qf_rnd *rnd, const qf_net *net, const qf_run_hp *hp, int32_t E, int32_t a,
                   float *q);
    /* q [G][E][A] (every head of run r) += beta_r * qi [R][E][A] for runs with the RND bonus and
     * rnd_value=separate (acting on Q_E + beta Q_I; qf_add_int_q_one); other runs untouched */
    int (*add_int_q)(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t E, float *q, const float *qi);

    /* ---- CUDA graphs of one training iteration (optional: NULL where the backend has none, as on
     * the CPU; docs/cuda-graphs.md). The host records one iteration's operations between
     * iter_begin_capture and iter_end_capture (they are enqueued, not run), then replays the
     * recording each iteration with iter_replay. ---- */
    /* Opens a capture on the backend's stream; until iter_end_capture the operations read their
     * per-iteration values from *it (backend memory; see qf_iter). */
    int (*iter_begin_capture)(qf_backend *b, const qf_iter *it);
    /* it->t += dt, it->update += du on the device, in stream order (captured when inside a capture) */
    int (*iter_advance)(qf_backend *b, qf_iter *it, uint32_t dt, uint32_t du);
    /* Closes the capture; *graph receives the instantiated recording (NULL graph: discard it, after
     * an operation failed inside the capture). QF_ERR when the capture was invalidated. */
    int (*iter_end_capture)(qf_backend *b, void **graph);
    /* Enqueues one replay of a recording (one launch; the host does not wait). */
    int (*iter_replay)(qf_backend *b, void *graph);
    /* Frees a recording (NULL: nothing). */
    void (*iter_release)(qf_backend *b, void *graph);

    /* ---- bandit agents (kernels/bandit_agent.h): one step of every bandit instance ---- */
    int (*bandit_step)(qf_backend *b, const struct qf_bandit_fleet *f, uint32_t t);

    void (*close)(qf_backend *b);
};

/* RND's predictor update inside `learn` (both backends call this one sequence of their own
 * operations): on the batch's next states (rnd_input=state) or its (s, a) pairs (state_action:
 * rnd_pair after the normalization), normalized for dense inputs (statistics not updated),
 * forward of target and predictor, the mean-squared-error gradient, backward, Adam on the
 * predictor (which may mark a run diverged, sharing the Q-networks' status). */
static inline int qf_learn_rnd_step(qf_backend *b, const qf_learn_args *a) {
    const qf_rnd *q = a->rnd;
    const qf_sample *s = a->s;
    const float *in = NULL;
    /* the sampled next states, or with rnd_input=state_action (n_actions > 0) the sampled (s, a) */
    const int sa = q->n_actions > 0;
    const float *x = sa ? s->obs : s->next_obs;
    const int32_t *xi = sa ? s->idx : s->next_idx;
    if (!q->net.embed) {
        if (b->rnd_input(b, q, a->B, x, 0) != QF_OK) return QF_ERR;
        in = q->xn;
    }
    if (sa) {
        if (b->rnd_pair(b, q, a->B, xi, s->action) != QF_OK) return QF_ERR;
        xi = q->xi;
    }
    return b->net_forward(b, &q->net, q->target, a->B, in, xi, q->acts_t, q->out_t) == QF_OK &&
                   b->net_forward(b, &q->net, q->pred, a->B, in, xi, q->acts_p, q->out_p) == QF_OK &&
                   b->rnd_grad(b, q, a->B) == QF_OK &&
                   b->net_backward(b, &q->net, q->pred, a->B, in, xi, q->acts_p, q->dq, q->grads,
                                   q->work) == QF_OK &&
                   b->adam(b, &q->net, a->hp, q->pred, q->grads, q->adam_m, q->adam_v, q->adam_t, a->status,
                           q->gnorm) == QF_OK
               ? QF_OK
               : QF_ERR;
}

/* FP32 lanes per SM of an NVIDIA GPU by compute capability (0: unknown): the theoretical FLOP/s of
 * the CUDA backend's peaks and of the kernel workbench (benchmarks/dev/common.h). */
static inline int qf_fp32_lanes_per_sm(int major, int minor) {
    switch (major) {
    case 5: return 128;                       /* Maxwell */
    case 6: return minor == 0 ? 64 : 128;     /* Pascal: GP100 64, GP10x 128 */
    case 7: return 64;                        /* Volta, Turing */
    case 8: return minor == 0 ? 64 : 128;     /* Ampere: GA100 64; GA10x, Ada (8.9) 128 */
    case 9: return 128;                       /* Hopper */
    case 10: case 11: case 12: return 128;    /* Blackwell */
    default: return 0;
    }
}

/* The width of net_backward's scratch rows: the widest hidden layer (at least 1). The input
 * gradients it stages are those of layers 1 .. L-1 (the backward stops at layer 0, whose input
 * needs no gradient), and GELU's recomputed pre-activations are hidden too. The input width was
 * counted before: an embedded DeepSea-4096 (16.7M states) then asked 17 GB of scratch. */
static inline int32_t qf_net_max_width(const qf_net *net) {
    int32_t wmax = 1;
    for (int l = 1; l < net->L; l++) wmax = net->w[l] > wmax ? net->w[l] : wmax;
    return wmax;
}

/* Scratch buffers of M x the widest layer net_backward needs per network: two, and a third for
 * GELU, whose derivative needs the pre-activations (recomputed there, not stored). */
static inline int32_t qf_net_work_bufs(const qf_net *net) { return net->act == QF_ACTIVATION_GELU ? 3 : 2; }
/* Scratch floats net_backward needs for M inputs per network. */
static inline int64_t qf_net_work_floats(const qf_net *net, int32_t M) {
    return (int64_t)net->R * net->K * qf_net_work_bufs(net) * M * qf_net_max_width(net);
}

/* Open a backend. want: "auto" (CUDA if a usable GPU is present, else CPU, said in one line on
 * stderr), "cpu" or "cuda" (no fallback: fails with the reason in err). NULL on failure. */
qf_backend *qf_backend_open(const char *want, char *err, size_t err_len);
void qf_backend_close(qf_backend *b);

/* The implementations (kernels/cpu, kernels/cuda). qf_cuda_open fails with a reason when this
 * build has no CUDA backend or no usable GPU is present. */
qf_backend *qf_cpu_open(char *err, size_t err_len);
qf_backend *qf_cuda_open(char *err, size_t err_len);

/* CPU backend: parallel regions cost a fork and a barrier, and on a busy machine a barrier waits for
 * a descheduled thread, so loops over networks or runs go parallel only with at least this much
 * work per call (kernels/cpu/). */
#define QF_PAR_MIN_WORK (1 << 20)

/* Installs the CPU learner operations into b (kernels/cpu/learn_cpu.c). */
void qf_cpu_learn_ops(qf_backend *b);
/* Frees what the CPU learner keeps in b->impl (its per-thread scratch); called by the CPU close. */
void qf_cpu_learn_close(qf_backend *b);
/* Installs the CPU exploration operations (kernels/cpu/explore_cpu.c); called by qf_cpu_learn_ops. */
void qf_cpu_explore_ops(qf_backend *b);
/* Installs the CPU `peaks` operation (kernels/cpu/peaks_cpu.c). */
void qf_cpu_peaks_op(qf_backend *b);
/* Installs the CPU bandit-agent operations (kernels/cpu/bandit_cpu.c). */
void qf_cpu_bandit_ops(qf_backend *b);

/* The solver implementations (kernels/cpu/solve_cpu.c, kernels/cuda/solve_cuda.cu). */
int qf_solve_cpu(qf_backend *b, const qf_solve_problem *prob, double *q, double *v, int32_t *iters);
int qf_solve_cuda(qf_backend *b, const qf_solve_problem *prob, double *q, double *v, int32_t *iters);

/* Installs the CPU inference / IRL operations (kernels/cpu/infer_cpu.c). */
void qf_cpu_infer_ops(qf_backend *b);

/* Number of CPU threads the CPU backend uses now (OpenMP), and setting it (kernels/cpu/threads_cpu.c):
 * n > 0 fixes the team size; n <= 0 is "auto": every core, or one thread while probes measure that
 * one is faster (other processes competing for the cores), re-measured every 0.5-8 s of training.
 * The team size never changes a result, only the speed. */
int qf_cpu_threads(void);
void qf_cpu_set_threads(int n);
/* Marks one training iteration (the CPU env_step calls it): drives the auto mode's probes. */
void qf_cpu_threads_tick(void);
typedef struct qf_cpu_thread_stats {
    long long probes;     /* probes completed since the last qf_cpu_set_threads */
    long long picked_one; /* how many of them chose one thread */
    int current_choice;   /* the last probe's choice (0 before the first probe) */
    int current;          /* team size in use now */
} qf_cpu_thread_stats;
qf_cpu_thread_stats qf_cpu_thread_stats_get(void);
/* 1 when the user fixed the team size (threads=N, N > 1): the CPU learner then also shares a lone
 * network's update over the team (learn_cpu.c, learn_split), which auto mode does not risk (its
 * four barriers per update wait for descheduled threads on a busy machine: measured 10x slower). */
int qf_cpu_threads_fixed(void);

#ifdef __cplusplus
}
#endif
#endif /* QF_BACKEND_H */
