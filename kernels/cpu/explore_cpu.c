/* explore_cpu.c — the CPU reference of the exploration operations (kernels/explore.h): counts,
 * SimHash, RND normalization, rewards and loss. One run's work is done in a fixed order by one
 * thread, so results do not depend on the thread count or on the other runs. */
#include <math.h>
#include <string.h>

#include "../backend.h"

static int cpu_count_init(qf_backend *b, const qf_counts *c, const uint32_t *keys) {
    (void)b;
    if (c->mode != QF_COUNT_SIMHASH) return QF_OK;
#pragma omp parallel for schedule(static) if (c->R > 1 && (int64_t)c->R * c->bits * c->D >= QF_PAR_MIN_WORK / 16)
    for (int32_t r = 0; r < c->R; r++)
        for (int32_t i = 0; i < c->bits; i++)
            for (int32_t d = 0; d < c->D; d++)
                c->proj[((int64_t)r * c->bits + i) * c->D + d] = qf_simhash_proj(keys[2 * r], keys[2 * r + 1], i, d);
    return QF_OK;
}

/* Insert-or-increment key k (nonzero) in one run's table. A full table counts nothing more (the
 * caller's table size bounds the distinct keys; qfleet sizes it from count_table). */
static void hash_add_key(uint64_t *key, uint32_t *cnt, int32_t log2cap, uint64_t k) {
    const uint32_t cap = 1u << log2cap, mask = cap - 1u;
    uint32_t s = qf_hash_home_key(k, log2cap);
    for (uint32_t probe = 0; probe < cap; probe++, s = (s + 1u) & mask) {
        if (key[s] == 0) key[s] = k;
        if (key[s] == k) {
            cnt[s] += 1;
            return;
        }
    }
}
static void hash_add(uint64_t *key, uint32_t *cnt, int32_t log2cap, uint64_t code) {
    hash_add_key(key, cnt, log2cap, code + 1);
}

static int32_t clamp_state(const qf_counts *c, int32_t s) { return s < 0 ? 0 : (s >= c->S ? c->S - 1 : s); }

static int cpu_count_sa_update(qf_backend *b, const qf_counts *c, int32_t E, const float *obs, const int32_t *obs_idx,
                               const int32_t *actions) {
    (void)b;
    if (c->mode == QF_COUNT_OFF || c->A <= 0) return QF_OK;
    const int64_t per = c->mode == QF_COUNT_SIMHASH ? (int64_t)E * c->bits * c->D : E;
#pragma omp parallel for schedule(static) if (c->R > 1 && c->R * per >= QF_PAR_MIN_WORK / 16)
    for (int32_t r = 0; r < c->R; r++) {
        const int64_t cap = (int64_t)1 << c->log2cap;
        for (int32_t e = 0; e < E; e++) {
            const int64_t i = (int64_t)r * E + e;
            int32_t a = actions[i];
            a = a < 0 ? 0 : (a >= c->A ? c->A - 1 : a);
            if (c->mode == QF_COUNT_EXACT) {
                c->cnt_sa[((int64_t)r * c->S + clamp_state(c, obs_idx[i])) * c->A + a] += 1;
            } else {
                const uint64_t code = qf_simhash_code(c->proj + (int64_t)r * c->bits * c->D, c->bits, c->D, obs + i * c->D);
                hash_add_key(c->key_sa + r * cap, c->cnt_sa + r * cap, c->log2cap, qf_sa_key(code, a));
            }
        }
    }
    return QF_OK;
}

static int cpu_count_act(qf_backend *b, const qf_counts *c, const qf_net *net, const qf_run_hp *hp, int32_t E,
                         const float *obs, const int32_t *obs_idx, float *q) {
    (void)b;
    if (c->mode == QF_COUNT_OFF || c->A <= 0) return QF_OK;
    const int32_t A = c->A, K = net->K;
#pragma omp parallel for schedule(static) if (c->R > 1 && (int64_t)c->R * E * A * K >= QF_PAR_MIN_WORK / 16)
    for (int32_t r = 0; r < c->R; r++) {
        if (hp[r].bonus != QF_BONUS_COUNT || !hp[r].count_act) continue;
        const int64_t cap = (int64_t)1 << c->log2cap;
        for (int32_t e = 0; e < E; e++) {
            const int64_t i = (int64_t)r * E + e;
            uint64_t code = 0;
            if (c->mode == QF_COUNT_SIMHASH)
                code = qf_simhash_code(c->proj + (int64_t)r * c->bits * c->D, c->bits, c->D, obs + i * c->D);
            for (int32_t a = 0; a < A; a++) {
                const uint32_t n = c->mode == QF_COUNT_EXACT
                                       ? c->cnt_sa[((int64_t)r * c->S + clamp_state(c, obs_idx[i])) * A + a]
                                       : qf_hash_count_key(c->key_sa + r * cap, c->cnt_sa + r * cap, c->log2cap,
                                                           qf_sa_key(code, a));
                const float bonus = qf_count_act_bonus(hp[r].beta, n);
                for (int32_t k = 0; k < K; k++) q[(((int64_t)r * K + k) * E + e) * A + a] += bonus;
            }
        }
    }
    return QF_OK;
}

static int cpu_count_update(qf_backend *b, const qf_counts *c, int32_t E, const float *next_obs,
                            const int32_t *next_idx) {
    (void)b;
    if (c->mode == QF_COUNT_OFF) return QF_OK;
    const int64_t per = c->mode == QF_COUNT_SIMHASH ? (int64_t)E * c->bits * c->D : E;
#pragma omp parallel for schedule(static) if (c->R > 1 && c->R * per >= QF_PAR_MIN_WORK / 16)
    for (int32_t r = 0; r < c->R; r++) {
        if (c->mode == QF_COUNT_EXACT) {
            for (int32_t e = 0; e < E; e++) {
                int32_t s = next_idx[(int64_t)r * E + e];
                s = s < 0 ? 0 : (s >= c->S ? c->S - 1 : s);
                c->cnt[(int64_t)r * c->S + s] += 1;
            }
        } else {
            const int64_t cap = (int64_t)1 << c->log2cap;
            const float *proj = c->proj + (int64_t)r * c->bits * c->D;
            for (int32_t e = 0; e < E; e++) {
                const uint64_t code = qf_simhash_code(proj, c->bits, c->D, next_obs + ((int64_t)r * E + e) * c->D);
                hash_add(c->key + r * cap, c->cnt + r * cap, c->log2cap, code);
            }
        }
    }
    return QF_OK;
}

static int cpu_count_bonus(qf_backend *b, const qf_counts *c, const qf_run_hp *hp, int32_t B, qf_sample *s) {
    (void)b;
    if (c->mode == QF_COUNT_OFF) return QF_OK;
    const int64_t per = c->mode == QF_COUNT_SIMHASH ? (int64_t)B * c->bits * c->D : B;
    const int32_t K = s->R / c->R; /* sample rows per run: 1, or its heads' batches */
#pragma omp parallel for schedule(static) if (s->R > 1 && s->R * per >= QF_PAR_MIN_WORK / 16)
    for (int32_t row = 0; row < s->R; row++) {
        const int32_t r = row / K;
        if (hp[r].bonus != QF_BONUS_COUNT) continue;
        const int64_t cap = (int64_t)1 << c->log2cap;
        for (int32_t j = 0; j < B; j++) {
            const int64_t t = (int64_t)row * B + j;
            uint32_t n;
            if (c->mode == QF_COUNT_EXACT) {
                int32_t st = s->next_idx[t];
                st = st < 0 ? 0 : (st >= c->S ? c->S - 1 : st);
                n = c->cnt[(int64_t)r * c->S + st];
            } else {
                const uint64_t code = qf_simhash_code(c->proj + (int64_t)r * c->bits * c->D, c->bits, c->D,
                                                      s->next_obs + t * c->D);
                n = qf_hash_count(c->key + r * cap, c->cnt + r * cap, c->log2cap, code);
            }
            s->intr[t] = qf_count_bonus(n);
        }
    }
    return QF_OK;
}

static int cpu_rnd_input(qf_backend *b, const qf_rnd *rnd, int32_t M, const float *x, int update) {
    (void)b;
    /* D observation values per input; rows of W = D (+ A one-hot columns for (s, a) pairs, rnd_pair) */
    const int32_t R = rnd->net.R, D = rnd->obs_dim ? rnd->obs_dim : rnd->net.w[0], W = rnd->net.w[0];
#pragma omp parallel for schedule(static) if (R > 1 && (int64_t)R * M * D >= QF_PAR_MIN_WORK / 4)
    for (int32_t r = 0; r < R; r++) {
        const float *xr = x + (int64_t)r * M * D;
        double *mean = rnd->obs_mean + (int64_t)r * D, *m2 = rnd->obs_m2 + (int64_t)r * D;
        if (update) {
            for (int32_t d = 0; d < D; d++) {
                double n = rnd->obs_n[r], bm = 0.0, bm2 = 0.0;
                for (int32_t m = 0; m < M; m++) bm += xr[(int64_t)m * D + d];
                bm /= M;
                for (int32_t m = 0; m < M; m++) {
                    const double dd = xr[(int64_t)m * D + d] - bm;
                    bm2 += dd * dd;
                }
                qf_stats_merge(&n, &mean[d], &m2[d], (double)M, bm, bm2);
            }
            rnd->obs_n[r] += M;
        }
        float *out = rnd->xn + (int64_t)r * M * W;
        for (int32_t m = 0; m < M; m++)
            for (int32_t d = 0; d < D; d++)
                out[(int64_t)m * W + d] = qf_rnd_norm(xr[(int64_t)m * D + d], mean[d], m2[d], rnd->obs_n[r]);
    }
    return QF_OK;
}

static int cpu_rnd_pair(qf_backend *b, const qf_rnd *rnd, int32_t M, const int32_t *xi, const int32_t *actions) {
    (void)b;
    const int32_t R = rnd->net.R, A = rnd->n_actions;
    if (A <= 0) return QF_OK;
    if (rnd->net.embed) {
        const int32_t S = rnd->net.w[0] / A;
        for (int64_t i = 0; i < (int64_t)R * M; i++) rnd->xi[i] = qf_rnd_pair_index(xi[i], S, actions[i], A);
        return QF_OK;
    }
    const int32_t W = rnd->net.w[0], D = W - A;
    for (int64_t i = 0; i < (int64_t)R * M; i++)
        for (int32_t j = D; j < W; j++) rnd->xn[i * W + j] = qf_rnd_pair_dense(j, D, actions[i], A);
    return QF_OK;
}

static int cpu_add_int_q(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t E, float *q, const float *qi) {
    (void)b;
    const int64_t A = net->w[net->L], K = net->K, per = (int64_t)E * A;
    for (int64_t r = 0; r < net->R; r++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t i = 0; i < per; i++) qf_add_int_q_one(&hp[r], &q[(r * K + k) * per + i], qi[r * per + i]);
    return QF_OK;
}

/* Mean over the outputs of the squared error of row m of run r. */
static float rnd_err(const qf_rnd *rnd, int64_t row) {
    const int32_t dim = rnd->net.w[rnd->net.L];
    float s = 0.0f;
    for (int32_t j = 0; j < dim; j++) {
        const float d = rnd->out_p[row * dim + j] - rnd->out_t[row * dim + j];
        s += d * d;
    }
    return s / (float)dim;
}

static int cpu_rnd_act(qf_backend *b, const qf_rnd *rnd, const qf_net *net, const qf_run_hp *hp, int32_t E,
                       int32_t a, float *q) {
    (void)b;
    const int64_t A = net->w[net->L], K = net->K;
    for (int64_t r = 0; r < net->R; r++)
        for (int32_t e = 0; e < E; e++) {
            const float err = rnd_err(rnd, r * E + e);
            for (int64_t k = 0; k < K; k++)
                qf_rnd_act_one(&hp[r], &q[((r * K + k) * E + e) * A + a], err, rnd->ret_m2[r], rnd->ret_n[r]);
        }
    return QF_OK;
}

static int cpu_rnd_reward(qf_backend *b, const qf_rnd *rnd, const qf_run_hp *hp, int32_t E,
                          const uint8_t *flags, float *intr) {
    (void)b;
    const int32_t R = rnd->net.R;
#pragma omp parallel for schedule(static) if (R > 1 && (int64_t)R * E * rnd->net.w[rnd->net.L] >= QF_PAR_MIN_WORK / 4)
    for (int32_t r = 0; r < R; r++) {
        double bm = 0.0, bm2 = 0.0;
        for (int32_t e = 0; e < E; e++) {
            const int64_t i = (int64_t)r * E + e;
            intr[i] = rnd_err(rnd, i);
            rnd->ret[i] = rnd->ret[i] * hp[r].gamma + intr[i];
            bm += rnd->ret[i];
        }
        bm /= E;
        for (int32_t e = 0; e < E; e++) {
            const double d = rnd->ret[(int64_t)r * E + e] - bm;
            bm2 += d * d;
        }
        qf_stats_merge(&rnd->ret_n[r], &rnd->ret_mean[r], &rnd->ret_m2[r], (double)E, bm, bm2);
        for (int32_t e = 0; e < E; e++) {
            const int64_t i = (int64_t)r * E + e;
            intr[i] = qf_rnd_scale(intr[i], rnd->ret_m2[r], rnd->ret_n[r]);
            if (hp[r].rnd_episodic && (flags[i] & (QF_TERMINAL | QF_TRUNCATED))) rnd->ret[i] = 0.0f;
        }
    }
    return QF_OK;
}

static int cpu_rnd_grad(qf_backend *b, const qf_rnd *rnd, int32_t M) {
    (void)b;
    const int32_t R = rnd->net.R, dim = rnd->net.w[rnd->net.L];
    for (int32_t r = 0; r < R; r++) {
        float l = 0.0f;
        for (int32_t m = 0; m < M; m++) {
            const int64_t row = (int64_t)r * M + m;
            for (int32_t j = 0; j < dim; j++) {
                const float d = rnd->out_p[row * dim + j] - rnd->out_t[row * dim + j];
                rnd->dq[row * dim + j] = 2.0f * d / (float)((int64_t)M * dim);
            }
            l += rnd_err(rnd, row);
        }
        rnd->loss[r] = l / (float)M;
    }
    return QF_OK;
}

void qf_cpu_explore_ops(qf_backend *b) {
    b->count_init = cpu_count_init;
    b->count_update = cpu_count_update;
    b->count_bonus = cpu_count_bonus;
    b->count_sa_update = cpu_count_sa_update;
    b->count_act = cpu_count_act;
    b->rnd_input = cpu_rnd_input;
    b->rnd_reward = cpu_rnd_reward;
    b->rnd_grad = cpu_rnd_grad;
    b->rnd_pair = cpu_rnd_pair;
    b->add_int_q = cpu_add_int_q;
    b->rnd_act = cpu_rnd_act;
}
