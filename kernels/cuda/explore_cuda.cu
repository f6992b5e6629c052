// explore_cuda.cu — the exploration operations on the GPU: the contracts of kernels/backend.h, the
// reference is kernels/cpu/explore_cpu.c, the per-element math is kernels/explore.h. Counts use
// integer atomics (the counts do not depend on the order; SimHash slots may, the counts per code do
// not); statistics are reduced per run by one thread in a fixed order, as on the CPU.
#include <math.h>

#include "cuda_impl.h"


__global__ void proj_kernel(qf_counts c, const uint32_t *keys) {
    GRID_FOR(i, (int64_t)c.R * c.bits * c.D) {
        const int64_t r = i / ((int64_t)c.bits * c.D), row = (i / c.D) % c.bits, d = i % c.D;
        c.proj[i] = qf_simhash_proj(keys[2 * r], keys[2 * r + 1], (int32_t)row, (int32_t)d);
    }
}

__device__ static void hash_add_key(unsigned long long *key, uint32_t *cnt, int32_t log2cap, uint64_t k) {
    const uint32_t cap = 1u << log2cap, mask = cap - 1u;
    uint32_t s = qf_hash_home_key(k, log2cap);
    const unsigned long long want = (unsigned long long)k;
    for (uint32_t probe = 0; probe < cap; probe++, s = (s + 1u) & mask) {
        const unsigned long long old = atomicCAS(&key[s], 0ull, want);
        if (old == 0ull || old == want) {
            atomicAdd(&cnt[s], 1u);
            return;
        }
    }
}

__global__ void count_update_kernel(qf_counts c, int32_t E, const float *next_obs, const int32_t *next_idx) {
    GRID_FOR(i, (int64_t)c.R * E) {
        const int64_t r = i / E;
        if (c.mode == QF_COUNT_EXACT) {
            int32_t s = next_idx[i];
            s = s < 0 ? 0 : (s >= c.S ? c.S - 1 : s);
            atomicAdd(&c.cnt[r * c.S + s], 1u);
        } else {
            const int64_t cap = (int64_t)1 << c.log2cap;
            const uint64_t code = qf_simhash_code(c.proj + r * c.bits * c.D, c.bits, c.D, next_obs + i * c.D);
            hash_add_key((unsigned long long *)c.key + r * cap, c.cnt + r * cap, c.log2cap, code + 1);
        }
    }
}

__device__ static int32_t clamp_state(const qf_counts &c, int32_t s) { return s < 0 ? 0 : (s >= c.S ? c.S - 1 : s); }

__global__ void count_sa_kernel(qf_counts c, int32_t E, const float *obs, const int32_t *obs_idx,
                                const int32_t *actions) {
    GRID_FOR(i, (int64_t)c.R * E) {
        const int64_t r = i / E;
        int32_t a = actions[i];
        a = a < 0 ? 0 : (a >= c.A ? c.A - 1 : a);
        if (c.mode == QF_COUNT_EXACT) {
            atomicAdd(&c.cnt_sa[(r * c.S + clamp_state(c, obs_idx[i])) * c.A + a], 1u);
        } else {
            const int64_t cap = (int64_t)1 << c.log2cap;
            const uint64_t code = qf_simhash_code(c.proj + r * c.bits * c.D, c.bits, c.D, obs + i * c.D);
            hash_add_key((unsigned long long *)c.key_sa + r * cap, c.cnt_sa + r * cap, c.log2cap, qf_sa_key(code, a));
        }
    }
}

// One thread per (run, env): the bonus of each action, added to every head's row (no races).
__global__ void count_act_kernel(qf_counts c, int32_t K, const qf_run_hp *hp, int32_t E, const float *obs,
                                 const int32_t *obs_idx, float *q) {
    GRID_FOR(i, (int64_t)c.R * E) {
        const int64_t r = i / E, e = i % E;
        if (hp[r].bonus != QF_BONUS_COUNT || !hp[r].count_act) continue;
        const int64_t cap = (int64_t)1 << c.log2cap;
        uint64_t code = 0;
        if (c.mode == QF_COUNT_SIMHASH) code = qf_simhash_code(c.proj + r * c.bits * c.D, c.bits, c.D, obs + i * c.D);
        for (int32_t a = 0; a < c.A; a++) {
            const uint32_t n = c.mode == QF_COUNT_EXACT
                                   ? c.cnt_sa[(r * c.S + clamp_state(c, obs_idx[i])) * c.A + a]
                                   : qf_hash_count_key(c.key_sa + r * cap, c.cnt_sa + r * cap, c.log2cap, qf_sa_key(code, a));
            const float bonus = qf_count_act_bonus(hp[r].beta, n);
            for (int32_t k = 0; k < K; k++) q[((r * K + k) * E + e) * c.A + a] += bonus;
        }
    }
}

__global__ void count_bonus_kernel(qf_counts c, const qf_run_hp *hp, int32_t B, qf_sample s) {
    const int64_t K = s.R / c.R; // sample rows per run: 1, or its heads' batches
    GRID_FOR(t, (int64_t)s.R * B) {
        const int64_t r = t / B / K;
        if (hp[r].bonus != QF_BONUS_COUNT) continue;
        uint32_t n;
        if (c.mode == QF_COUNT_EXACT) {
            int32_t st = s.next_idx[t];
            st = st < 0 ? 0 : (st >= c.S ? c.S - 1 : st);
            n = c.cnt[r * c.S + st];
        } else {
            const int64_t cap = (int64_t)1 << c.log2cap;
            const uint64_t code = qf_simhash_code(c.proj + r * c.bits * c.D, c.bits, c.D, s.next_obs + t * c.D);
            n = qf_hash_count(c.key + r * cap, c.cnt + r * cap, c.log2cap, code);
        }
        s.intr[t] = qf_count_bonus(n);
    }
}

// One thread per (run, dimension): merge the M new values, in order, as the CPU does.
__global__ void rnd_stats_kernel(qf_rnd q, int32_t M, const float *x) {
    const int32_t D = q.obs_dim ? q.obs_dim : q.net.w[0];
    GRID_FOR(i, (int64_t)q.net.R * D) {
        const int64_t r = i / D, d = i % D;
        const float *xr = x + r * M * D;
        double n = q.obs_n[r], bm = 0.0, bm2 = 0.0;
        for (int32_t m = 0; m < M; m++) bm += xr[(int64_t)m * D + d];
        bm /= M;
        for (int32_t m = 0; m < M; m++) {
            const double dd = xr[(int64_t)m * D + d] - bm;
            bm2 += dd * dd;
        }
        qf_stats_merge(&n, &q.obs_mean[i], &q.obs_m2[i], (double)M, bm, bm2);
    }
}

__global__ void rnd_count_kernel(qf_rnd q, int32_t M) {
    GRID_FOR(r, (int64_t)q.net.R) q.obs_n[r] += M;
}

// x [R][M][D] -> the first D columns of xn's rows of W (W = D, or D + A for (s, a) pairs)
__global__ void rnd_norm_kernel(qf_rnd q, int32_t M, const float *x) {
    const int32_t D = q.obs_dim ? q.obs_dim : q.net.w[0], W = q.net.w[0];
    GRID_FOR(i, (int64_t)q.net.R * M * D) {
        const int64_t r = i / ((int64_t)M * D), d = i % D, row = i / D;
        q.xn[row * W + d] = qf_rnd_norm(x[i], q.obs_mean[r * D + d], q.obs_m2[r * D + d], q.obs_n[r]);
    }
}

// (s, a) inputs: one thread per pair index (state indices) or per one-hot column (dense)
__global__ void rnd_pair_index_kernel(qf_rnd q, int32_t M, const int32_t *xi, const int32_t *actions) {
    const int32_t A = q.n_actions, S = q.net.w[0] / A;
    GRID_FOR(i, (int64_t)q.net.R * M) q.xi[i] = qf_rnd_pair_index(xi[i], S, actions[i], A);
}
__global__ void rnd_pair_dense_kernel(qf_rnd q, int32_t M, const int32_t *actions) {
    const int32_t A = q.n_actions, W = q.net.w[0], D = W - A;
    GRID_FOR(i, (int64_t)q.net.R * M * A) {
        const int64_t row = i / A;
        const int32_t j = D + (int32_t)(i % A);
        q.xn[row * W + j] = qf_rnd_pair_dense(j, D, actions[row], A);
    }
}

// q [G][E][A] += beta * qi [R][E][A]: one thread per (network, e, a)
__global__ void add_int_q_kernel(int32_t R, int32_t K, int64_t per, const qf_run_hp *hp, float *q, const float *qi) {
    GRID_FOR(i, (int64_t)R * K * per) {
        const int64_t g = i / per, r = g / K;
        qf_add_int_q_one(&hp[r], &q[i], qi[r * per + i % per]);
    }
}

__device__ static float rnd_err(const qf_rnd &q, int64_t row) {
    const int32_t dim = q.net.w[q.net.L];
    float s = 0.0f;
    for (int32_t j = 0; j < dim; j++) {
        const float d = q.out_p[row * dim + j] - q.out_t[row * dim + j];
        s += d * d;
    }
    return s / (float)dim;
}

// optimistic acting on (s, a) novelty: one thread per (network, env) adds action a's bonus
__global__ void rnd_act_kernel(qf_rnd q, int32_t K, int32_t A, const qf_run_hp *hp, int32_t E, int32_t a, float *qv) {
    GRID_FOR(i, (int64_t)q.net.R * K * E) {
        const int64_t g = i / E, e = i % E, r = g / K;
        const float err = rnd_err(q, r * E + e);
        qf_rnd_act_one(&hp[r], &qv[i * A + a], err, q.ret_m2[r], q.ret_n[r]);
    }
}

// One thread per run: the E errors, returns and the statistics merge in the CPU's order.
__global__ void rnd_reward_kernel(qf_rnd q, const qf_run_hp *hp, int32_t E, const uint8_t *flags, float *intr) {
    GRID_FOR(r, (int64_t)q.net.R) {
        double bm = 0.0, bm2 = 0.0;
        for (int32_t e = 0; e < E; e++) {
            const int64_t i = r * E + e;
            intr[i] = rnd_err(q, i);
            q.ret[i] = q.ret[i] * hp[r].gamma + intr[i];
            bm += q.ret[i];
        }
        bm /= E;
        for (int32_t e = 0; e < E; e++) {
            const double d = q.ret[r * E + e] - bm;
            bm2 += d * d;
        }
        qf_stats_merge(&q.ret_n[r], &q.ret_mean[r], &q.ret_m2[r], (double)E, bm, bm2);
        for (int32_t e = 0; e < E; e++) {
            const int64_t i = r * E + e;
            intr[i] = qf_rnd_scale(intr[i], q.ret_m2[r], q.ret_n[r]);
            if (hp[r].rnd_episodic && (flags[i] & (QF_TERMINAL | QF_TRUNCATED))) q.ret[i] = 0.0f;
        }
    }
}

__global__ void rnd_dq_kernel(qf_rnd q, int32_t M) {
    const int32_t dim = q.net.w[q.net.L];
    GRID_FOR(i, (int64_t)q.net.R * M * dim) q.dq[i] = 2.0f * (q.out_p[i] - q.out_t[i]) / (float)((int64_t)M * dim);
}

__global__ void rnd_loss_kernel(qf_rnd q, int32_t M) {
    GRID_FOR(r, (int64_t)q.net.R) {
        float l = 0.0f;
        for (int32_t m = 0; m < M; m++) l += rnd_err(q, r * M + m);
        q.loss[r] = l / (float)M;
    }
}

static int cu_count_init(qf_backend *b, const qf_counts *c, const uint32_t *keys) {
    if (c->mode != QF_COUNT_SIMHASH) return QF_OK;
    LAUNCH(b, proj_kernel, (int64_t)c->R * c->bits * c->D, *c, keys);
    return QF_OK;
}

static int cu_count_update(qf_backend *b, const qf_counts *c, int32_t E, const float *next_obs, const int32_t *next_idx) {
    if (c->mode == QF_COUNT_OFF) return QF_OK;
    LAUNCH(b, count_update_kernel, (int64_t)c->R * E, *c, E, next_obs, next_idx);
    return QF_OK;
}

static int cu_count_sa_update(qf_backend *b, const qf_counts *c, int32_t E, const float *obs, const int32_t *obs_idx,
                              const int32_t *actions) {
    if (c->mode == QF_COUNT_OFF || c->A <= 0) return QF_OK;
    LAUNCH(b, count_sa_kernel, (int64_t)c->R * E, *c, E, obs, obs_idx, actions);
    return QF_OK;
}

static int cu_count_act(qf_backend *b, const qf_counts *c, const qf_net *net, const qf_run_hp *hp, int32_t E,
                        const float *obs, const int32_t *obs_idx, float *q) {
    if (c->mode == QF_COUNT_OFF || c->A <= 0) return QF_OK;
    LAUNCH(b, count_act_kernel, (int64_t)c->R * E, *c, net->K, hp, E, obs, obs_idx, q);
    return QF_OK;
}

static int cu_count_bonus(qf_backend *b, const qf_counts *c, const qf_run_hp *hp, int32_t B, qf_sample *s) {
    if (c->mode == QF_COUNT_OFF) return QF_OK;
    LAUNCH(b, count_bonus_kernel, (int64_t)s->R * B, *c, hp, B, *s);
    return QF_OK;
}

static int cu_rnd_input(qf_backend *b, const qf_rnd *q, int32_t M, const float *x, int update) {
    if (update) {
        LAUNCH(b, rnd_stats_kernel, (int64_t)q->net.R * (q->obs_dim ? q->obs_dim : q->net.w[0]), *q, M, x);
        LAUNCH(b, rnd_count_kernel, q->net.R, *q, M);
    }
    LAUNCH(b, rnd_norm_kernel, (int64_t)q->net.R * M * (q->obs_dim ? q->obs_dim : q->net.w[0]), *q, M, x);
    return QF_OK;
}

static int cu_rnd_pair(qf_backend *b, const qf_rnd *q, int32_t M, const int32_t *xi, const int32_t *actions) {
    if (q->n_actions <= 0) return QF_OK;
    if (q->net.embed)
        LAUNCH(b, rnd_pair_index_kernel, (int64_t)q->net.R * M, *q, M, xi, actions);
    else
        LAUNCH(b, rnd_pair_dense_kernel, (int64_t)q->net.R * M * q->n_actions, *q, M, actions);
    return QF_OK;
}

static int cu_rnd_act(qf_backend *b, const qf_rnd *q, const qf_net *net, const qf_run_hp *hp, int32_t E, int32_t a,
                      float *qv) {
    LAUNCH(b, rnd_act_kernel, (int64_t)net->R * net->K * E, *q, net->K, net->w[net->L], hp, E, a, qv);
    return QF_OK;
}

static int cu_add_int_q(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t E, float *q, const float *qi) {
    const int64_t per = (int64_t)E * net->w[net->L];
    LAUNCH(b, add_int_q_kernel, (int64_t)net->R * net->K * per, net->R, net->K, per, hp, q, qi);
    return QF_OK;
}

static int cu_rnd_reward(qf_backend *b, const qf_rnd *q, const qf_run_hp *hp, int32_t E, const uint8_t *flags,
                         float *intr) {
    LAUNCH(b, rnd_reward_kernel, q->net.R, *q, hp, E, flags, intr);
    return QF_OK;
}

static int cu_rnd_grad(qf_backend *b, const qf_rnd *q, int32_t M) {
    LAUNCH(b, rnd_dq_kernel, (int64_t)q->net.R * M * q->net.w[q->net.L], *q, M);
    LAUNCH(b, rnd_loss_kernel, q->net.R, *q, M);
    return QF_OK;
}

void qf_cuda_explore_ops(qf_backend *b) {
    b->count_init = cu_count_init;
    b->count_update = cu_count_update;
    b->count_bonus = cu_count_bonus;
    b->count_sa_update = cu_count_sa_update;
    b->count_act = cu_count_act;
    b->rnd_input = cu_rnd_input;
    b->rnd_reward = cu_rnd_reward;
    b->rnd_grad = cu_rnd_grad;
    b->rnd_pair = cu_rnd_pair;
    b->add_int_q = cu_add_int_q;
    b->rnd_act = cu_rnd_act;
}
