/* roofline.c — the FLOPs and bytes moved of the work the benchmarks time, and the bound they give
 * on a backend's peaks (probed by the backend: kernels/backend.h, peaks).
 *
 * The model (all counts per run unless said otherwise):
 *
 * FLOPs. A GEMM of an [M x in] by [in x out] matrix is 2*M*in*out FLOPs (a multiply and an add
 * per multiply-add); a bias add is M*out. ReLU and its mask, comparisons, argmax, the TD step's
 * soft value and the acting strategies are not counted (a few operations per Q value, against
 * in*out per output for a layer). Adam, the target update and RND's elementwise steps are counted
 * per element as derived below.
 *
 * Bytes: the compulsory traffic of the fleet's state. Each operation (one backend call) reads or
 * writes the persistent arrays it needs once each: parameters (online, target, prior, RND),
 * gradients, Adam moments, the replay ring, env states, count tables. Intermediates that live
 * for one update or one step only (activations, Q values, dQ, sampled batches, observations and
 * actions between act and step, scratch) are not counted: per network they are M x width floats
 * that a fused implementation keeps in cache or on chip. So the bound is a lower bound on the time
 * of these shapes on this machine; an implementation that spills intermediates to memory, or runs
 * small kernels below the machine's peaks, shows it as a low "% of bound". A fleet small enough to
 * stay in cache can beat the DRAM bound (over 100%).
 *
 * Bound time of work (F FLOPs, Y bytes) = max(F / peak FLOP/s, Y / peak bytes/s). */
#define _POSIX_C_SOURCE 200809L
#include "roofline.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Peaks. */

double qf_roof_bound_s(qf_roof_work w, const qf_roof_peaks *p, int *memory_bound) {
    const double tf = p->flops > 0 ? w.flops / p->flops : 0.0;
    const double tb = p->bytes_per_s > 0 ? w.bytes / p->bytes_per_s : 0.0;
    if (memory_bound) *memory_bound = tb >= tf;
    if ((w.flops > 0 && p->flops <= 0) || (w.bytes > 0 && p->bytes_per_s <= 0)) return 0.0;
    return tb > tf ? tb : tf;
}

/* The peaks of a backend: its `peaks` operation (kernels/cpu: STREAM triad and sgemm probes;
 * kernels/cuda: device attributes and a device-to-device copy), measured once per process and
 * backend kind, then cached. When the probe fails, the backend's bandwidth from open
 * (peak_bytes_per_s) with the reason. */
const qf_roof_peaks *qf_roof_peaks_of(qf_backend *b) {
    static qf_roof_peaks cache[2];
    static int done[2];
    const int k = b->kind == QF_BACKEND_CUDA;
    qf_roof_peaks *g = &cache[k];
    if (!done[k]) {
        done[k] = 1;
        if (!b->peaks || b->peaks(b, g) != QF_OK) {
            memset(g, 0, sizeof *g);
            g->bytes_per_s = g->theo_bytes_per_s = b->peak_bytes_per_s;
            snprintf(g->how, sizeof g->how, "%.4g GB/s theoretical from the backend; FLOP/s unknown (%.250s)",
                     b->peak_bytes_per_s / 1e9, b->peaks ? b->err : "no probe in this backend");
        }
    }
    return g;
}

/* ---------------------------------------------------------------------------------------------
 * Formulas. */

/* One env step (kernels/env_batch.h): the state's float and int fields and t are read and written
 * (2 x 4 x (nf + ni + 1)), the episode return read and written (8), the reward (4) and flags (1)
 * written, and the observation of the state reached written: a state index (4) or obs_dim floats. */
double qf_roof_env_step_bytes(int kind, const qf_env_params *p, const char *obs_mode) {
    double bytes = 2.0 * 4.0 * (qf_env_nf(kind) + qf_env_ni(kind) + 1) + 8.0 + 4.0 + 1.0;
    if (strcmp(obs_mode, "index") == 0) bytes += 4.0;
    if (strcmp(obs_mode, "dense") == 0) bytes += 4.0 * qf_env_obs_dim(kind, p);
    return bytes;
}

static qf_roof_work add(qf_roof_work a, qf_roof_work b, double times) {
    a.flops += times * b.flops;
    a.bytes += times * b.bytes;
    return a;
}

/* Forward of M inputs through one network w[0] -> ... -> w[L] (kernels/cpu/learn_cpu.c):
 *   FLOPs = sum_l (2 M w[l] w[l+1] + M w[l+1])   (GEMM + bias; embed: layer 0 is a row gather,
 *                                                   no GEMM, only its bias add)
 *   bytes = 4 P                                  (the parameters read; embed: of layer 0's table
 *                                                   only the min(M, w[0]) rows gathered)
 * Its inputs, activations and Q values are intermediates (not counted). */
qf_roof_work qf_roof_forward(const qf_net *n, int64_t M) {
    qf_roof_work w = {0, 0};
    const double m = (double)M;
    for (int l = 0; l < n->L; l++) {
        const double in = n->w[l], out = n->w[l + 1];
        if (!(l == 0 && n->embed)) w.flops += 2.0 * m * in * out;
        w.flops += m * out;
    }
    double params = (double)n->P;
    if (n->embed) {
        const double rows = m < n->w[0] ? m : (double)n->w[0];
        params += (rows - n->w[0]) * n->w[1];
    }
    w.bytes = 4.0 * params;
    return w;
}

/* Backward of M inputs (kernels/cpu/learn_cpu.c: per layer from the top, db, dW = X^T dY, and for
 * l >= 1 dX = dY W^T through the ReLU mask; layer 0 has no dX):
 *   FLOPs = sum_l (2 M w[l] w[l+1] + M w[l+1]) + sum_{l>=1} 2 M w[l] w[l+1]
 *           (embed: layer 0's dW is a scatter-add, M w[1] FLOPs)
 *   bytes = 4 (sum_{l>=1} w[l] w[l+1] + P)   (the weights above layer 0 read for dX, the gradient
 *                                              block written)
 * Without embedding its GEMM FLOPs are 2x the forward's, minus layer 0's dX GEMM. */
qf_roof_work qf_roof_backward(const qf_net *n, int64_t M) {
    qf_roof_work w = {0, 0};
    const double m = (double)M;
    double w_above = 0.0;
    for (int l = 0; l < n->L; l++) {
        const double in = n->w[l], out = n->w[l + 1];
        w.flops += (l == 0 && n->embed) ? m * out : 2.0 * m * in * out; /* dW */
        w.flops += m * out;                                              /* db */
        if (l >= 1) {
            w.flops += 2.0 * m * in * out; /* dX */
            w_above += in * out;
        }
    }
    w.bytes = 4.0 * (w_above + (double)n->P);
    return w;
}

/* Adam as PyTorch computes it (kernels/learn.h), per parameter: the global gradient norm 2 FLOPs
 * (square, add); the step 14: clip scale 1, m = b1 m + (1-b1) g 3, v = b2 v + (1-b2) g^2 4,
 * sqrt 1, bias correction of sqrt(v) folded into one multiply 1, + eps 1, x step size (lr and
 * the first moment's bias correction folded) 1, divide 1, subtract 1; 16 FLOPs in all. Bytes: the
 * norm pass reads g (4), the step reads p, g, m, v (16) and writes p, m, v (12): 32. */
qf_roof_work qf_roof_adam(const qf_net *n) {
    qf_roof_work w = {16.0 * (double)n->P, 32.0 * (double)n->P};
    return w;
}

/* Target update: Polyak t = tau p + (1 - tau) t is 3 FLOPs and 12 bytes (p, t read; t written)
 * per parameter every update; a copy (tau = 1) is 8 bytes per parameter every target_every
 * updates. */
qf_roof_work qf_roof_target(const qf_net *n, double tau, int64_t target_every) {
    qf_roof_work w = {0, 0};
    if (tau < 1.0) {
        w.flops = 3.0 * (double)n->P;
        w.bytes = 12.0 * (double)n->P;
    } else {
        w.bytes = 8.0 * (double)n->P / (double)(target_every > 0 ? target_every : 1);
    }
    return w;
}

/* Bytes of one stored transition (kernels/learn.h qf_replay): observation and next observation
 * (obs_floats floats or one int32 index each), action 4, reward 4, terminal 1, mask 8, intr 4;
 * with priors, their outputs on s and s' kept with it (2 K A floats). */
static double transition_bytes(const qf_roof_fleet *s) {
    const double ob = s->obs_floats > 0 ? s->obs_floats : 1;
    const double kept = s->prior ? 2.0 * 4.0 * s->net.K * s->net.w[s->net.L] : 0.0;
    return 2.0 * 4.0 * ob + 21.0 + kept;
}

/* SimHash codes of n observations in one call: 2 D bits FLOPs each, and the D x bits projection
 * read once (the observations are intermediates). Exact counts: nothing. */
static qf_roof_work hashes(const qf_roof_fleet *s, double n) {
    qf_roof_work w = {0, 0};
    if (s->count == 2) {
        w.flops = n * 2.0 * s->obs_floats * s->simhash_bits;
        w.bytes = 4.0 * s->obs_floats * s->simhash_bits;
    }
    return w;
}

/* RND on M observations (kernels/explore.h): dense inputs normalized by the running statistics
 * (4 FLOPs per element: subtract, divide, clip at both ends); the target and predictor forwards. */
static qf_roof_work rnd_forward(const qf_roof_fleet *s, int64_t M) {
    qf_roof_work w = {4.0 * (double)M * s->obs_floats, 0};
    return add(w, qf_roof_forward(&s->rnd_net, M), 2.0);
}

/* Collecting one env step of the E envs of a run (host/fleet.c qf_fleet_train):
 *   act: K (1 + prior) forwards of E inputs; the prior sums (1 FLOP per Q value); count_act: E A
 *        (state, action) counters read (4 bytes) and 3 FLOPs per head and Q value;
 *   step: E env steps (qf_roof_env_step_bytes);
 *   bonus: count tables: E arrival states counted (+ E (state, action) pairs with count_act), 8
 *        bytes per counter read and written; RND: both networks on the E next observations, the
 *        intrinsic reward from the 2 rnd_dim outputs (3 FLOPs per output);
 *   store: E transitions written into the ring; with priors, first the K prior forwards of the E
 *        next observations (the outputs on s come from acting). */
qf_roof_work qf_roof_collect(const qf_roof_fleet *s) {
    const double E = s->E, K = s->net.K, A = s->net.w[s->net.L];
    qf_roof_work w = {0, 0};
    w = add(w, qf_roof_forward(&s->net, s->E), K * (1 + (s->prior != 0)));
    if (s->prior) w.flops += K * E * A;
    if (s->count_act) {
        w = add(w, hashes(s, E), 1.0);
        w.flops += 3.0 * K * E * A;
        w.bytes += 4.0 * E * A;
    }
    w.bytes += E * s->env_step_bytes;
    if (s->count) {
        const double touches = E * (1 + (s->count_act != 0));
        w = add(w, hashes(s, touches), 1.0);
        w.bytes += 8.0 * touches;
    }
    if (s->rnd) {
        w = add(w, rnd_forward(s, s->E), 1.0);
        w.flops += 3.0 * E * s->rnd_net.w[s->rnd_net.L];
    }
    if (s->prior) w = add(w, qf_roof_forward(&s->net, s->E), K);
    w.bytes += E * transition_bytes(s);
    return w;
}

/* One learner update of a run (host/fleet.c learn_once), B samples:
 *   sample: B transitions read from the ring;
 *   count bonus: B counters read (4 bytes);
 *   forwards: target on s', online on s' (double Q), online on s: (2 + double_q) K forwards of B,
 *        each with its prior's sum (1 FLOP per Q value) when priors are on: the priors' outputs
 *        come with the sampled transitions (their bytes are in the transition's);
 *   backward, Adam and the target update of the K heads;
 *   RND: both networks on the B next observations, the predictor's loss gradient (3 FLOPs per
 *        output), its backward and Adam. */
qf_roof_work qf_roof_update(const qf_roof_fleet *s) {
    const double B = s->B, K = s->net.K, A = s->net.w[s->net.L];
    const double nf = 2 + (s->double_q != 0);
    qf_roof_work w = {0, B * transition_bytes(s)};
    if (s->count_bonus) {
        w = add(w, hashes(s, B), 1.0);
        w.bytes += 4.0 * B;
    }
    w = add(w, qf_roof_forward(&s->net, s->B), nf * K);
    if (s->prior) w.flops += nf * K * B * A;
    w = add(w, qf_roof_backward(&s->net, s->B), K);
    w = add(w, qf_roof_adam(&s->net), K);
    w = add(w, qf_roof_target(&s->net, s->tau, s->target_every), K);
    if (s->rnd) {
        w = add(w, rnd_forward(s, s->B), 1.0);
        w.flops += 3.0 * B * s->rnd_net.w[s->rnd_net.L];
        w = add(w, qf_roof_backward(&s->rnd_net, s->B), 1.0);
        w = add(w, qf_roof_adam(&s->rnd_net), 1.0);
    }
    return w;
}

qf_roof_work qf_roof_run_step(const qf_roof_fleet *s) {
    return add(qf_roof_collect(s), qf_roof_update(s), 1.0);
}

/* ---------------------------------------------------------------------------------------------
 * One MaxEnt IRL iteration of one problem (bench irl), the variational backup in double.
 *
 * FLOPs, per step t of the T steps (nnz outcomes over the S*A pairs):
 *   backward  Q(s, a) = sum_o p_o (r(s, a) + V_{t+1}(s'_o)): an add, a multiply and an add per
 *             outcome (3 nnz); V(s) = m + alpha log sum_a exp((Q - m) / alpha): per state A
 *             comparisons, A subtractions, A divisions, A additions, a multiply and an add
 *             (4A + 2), and A exp + 1 log;
 *   forward   Q again (3 nnz); per (s, a) the policy's argument (Q - V) / alpha (2), d * pi (1),
 *             the occupancy sum (1), and A exp per state; per outcome the mass moved
 *             d pi p_o (1) and its sum into the next state (1): 2 nnz.
 *   per iteration, outside the steps: reward = feat psi and mu = feat^T occupancy, 2 S A F each;
 *   Adam on F weights (about 15 F, counted).
 * Bytes (compulsory, per iteration, double = 8 bytes): the arrays that cross between the
 * operations of the iteration, each read or written once where it is needed: feat read twice
 * (2 S A F), the reward written once and read by both passes (3 S A), V [T+1][S] written by the
 * backward pass and read by the forward pass (2 (T+1) S), the occupancy written and read (2 S A),
 * and the sparse dynamics read once per pass as a CSR list of (probability 8 + next state 4
 * bytes) per outcome (2 x 12 nnz). Per-step intermediates (Q rows, exp arguments, the forward
 * state vectors) are not counted: a problem's fit in cache. A problem's V table and dynamics fit in
 * a core's L2 cache at 16x16 and 32x32, so the DRAM bound is loose; the real limits are the T
 * dependent steps, the gathers of V(s') and the exp/log throughput (printed with the line). */
qf_roof_work qf_roof_irl_iteration(int64_t S, int64_t A, int64_t F, int64_t T, int64_t nnz, double *transcendentals) {
    const double s = (double)S, a = (double)A, f = (double)F, t = (double)T, z = (double)nnz;
    qf_roof_work w;
    w.flops = t * (3.0 * z + s * (4.0 * a + 2.0)) + t * (3.0 * z + 4.0 * s * a + 2.0 * z) + 4.0 * s * a * f + 15.0 * f;
    w.bytes = 8.0 * (2.0 * s * a * f + 3.0 * s * a + 2.0 * (t + 1.0) * s + 2.0 * s * a) + 2.0 * 12.0 * z;
    if (transcendentals) *transcendentals = t * (s * (a + 1.0) + s * a);
    return w;
}
