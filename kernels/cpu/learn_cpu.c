/* learn_cpu.c — the CPU reference of the learner operations (kernels/learn.h, backend.h): GEMMs
 * through OpenBLAS (one single-threaded cblas_sgemm per network and layer, OpenMP over networks),
 * the per-element math from learn.h. Every reduction runs in a fixed order, so a run's numbers do
 * not depend on the thread count or on the other runs of the fleet. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../backend.h"

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
        return n->embed ? NULL : x + (g / n->K) * (int64_t)M * n->w[0];
    }
    *ld = n->H;
    return acts_g + hidden_off(n, l - 1);
}

static int cpu_net_forward(qf_backend *b, const qf_net *net, const float *params, int32_t M,
                           const float *x, const int32_t *xi, float *acts, float *q) {
    (void)b;
    const int64_t G = (int64_t)net->R * net->K, A = net->w[net->L];
#pragma omp parallel for schedule(static) if (G > 1 && G * M * net->P >= QF_PAR_MIN_WORK)
    for (int64_t g = 0; g < G; g++) {
        if (!qf_head_on(net, g)) continue;
        const float *W = params + g * net->P;
        float *acts_g = acts + g * (int64_t)M * net->H;
        for (int l = 0; l < net->L; l++) {
            const int32_t in_w = net->w[l], out_w = net->w[l + 1];
            const float *Wt = W + net->off_w[l], *bias = W + net->off_b[l];
            const int last = l == net->L - 1;
            float *out = last ? q + g * (int64_t)M * A : acts_g + hidden_off(net, l);
            const int64_t ldo = last ? A : net->H;
            int64_t ldi;
            const float *in = layer_input(net, l, g, M, x, acts_g, &ldi);
            if (!in) { /* embedding: row gather of Wt_0 = the one-hot product */
                const int32_t *s = xi + (g / net->K) * (int64_t)M;
                for (int32_t m = 0; m < M; m++) {
                    const int32_t sm = s[m] < 0 ? 0 : (s[m] >= in_w ? in_w - 1 : s[m]);
                    for (int32_t j = 0; j < out_w; j++) out[m * ldo + j] = Wt[(int64_t)sm * out_w + j] + bias[j];
                }
            } else {
                for (int32_t m = 0; m < M; m++)
                    for (int32_t j = 0; j < out_w; j++) out[m * ldo + j] = bias[j];
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, out_w, in_w, 1.0f, in,
                            (int)ldi, Wt, out_w, 1.0f, out, (int)ldo);
            }
            if (!last)
                for (int32_t m = 0; m < M; m++)
                    for (int32_t j = 0; j < out_w; j++) out[m * ldo + j] = out[m * ldo + j] > 0.0f ? out[m * ldo + j] : 0.0f;
        }
    }
    return QF_OK;
}

static int cpu_net_backward(qf_backend *b, const qf_net *net, const float *params, int32_t M,
                            const float *x, const int32_t *xi, const float *acts, const float *dq,
                            float *grads, float *work) {
    (void)b;
    const int64_t G = (int64_t)net->R * net->K, A = net->w[net->L];
    int32_t wmax = 0;
    for (int l = 0; l <= net->L; l++) wmax = net->w[l] > wmax ? net->w[l] : wmax;
#pragma omp parallel for schedule(static) if (G > 1 && G * M * net->P >= QF_PAR_MIN_WORK)
    for (int64_t g = 0; g < G; g++) {
        if (!qf_head_on(net, g)) continue;
        const float *W = params + g * net->P;
        const float *acts_g = acts + g * (int64_t)M * net->H;
        float *dW = grads + g * net->P;
        float *buf[2] = {work + g * 2 * (int64_t)M * wmax, work + (g * 2 + 1) * (int64_t)M * wmax};
        memset(dW, 0, sizeof(float) * (size_t)net->P);
        const float *dy = dq + g * (int64_t)M * A;
        int64_t lddy = A;
        for (int l = net->L - 1; l >= 0; l--) {
            const int32_t in_w = net->w[l], out_w = net->w[l + 1];
            int64_t ldi;
            const float *in = layer_input(net, l, g, M, x, acts_g, &ldi);
            float *dWt = dW + net->off_w[l], *db = dW + net->off_b[l];
            for (int32_t m = 0; m < M; m++)
                for (int32_t j = 0; j < out_w; j++) db[j] += dy[m * lddy + j];
            if (!in) {
                const int32_t *s = xi + (g / net->K) * (int64_t)M;
                for (int32_t m = 0; m < M; m++) {
                    const int32_t sm = s[m] < 0 ? 0 : (s[m] >= in_w ? in_w - 1 : s[m]);
                    for (int32_t j = 0; j < out_w; j++) dWt[(int64_t)sm * out_w + j] += dy[m * lddy + j];
                }
            } else {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in_w, out_w, M, 1.0f, in, (int)ldi,
                            dy, (int)lddy, 0.0f, dWt, out_w);
            }
            if (l == 0) break;
            /* d input = dy Wt^T, through the ReLU of the layer below */
            float *dx = buf[l & 1];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, in_w, out_w, 1.0f, dy, (int)lddy,
                        W + net->off_w[l], out_w, 0.0f, dx, in_w);
            for (int32_t m = 0; m < M; m++)
                for (int32_t j = 0; j < in_w; j++)
                    if (!(in[m * ldi + j] > 0.0f)) dx[m * in_w + j] = 0.0f;
            dy = dx;
            lddy = in_w;
        }
    }
    return QF_OK;
}

static int cpu_td(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t B, const qf_sample *s,
                  const float *q, const float *qt, const float *qo, float *dq, float *loss, float *qmean,
                  float *imean) {
    (void)b;
    const int64_t G = (int64_t)net->R * net->K, A = net->w[net->L];
#pragma omp parallel for schedule(static) if (G > 1 && G * B * A >= QF_PAR_MIN_WORK)
    for (int64_t g = 0; g < G; g++) {
        const int64_t r = g / net->K, k = g % net->K;
        if (!qf_head_on(net, g)) continue;
        const float beta = hp[r].beta;
        float lsum = 0.0f, qsum = 0.0f, isum = 0.0f;
        for (int32_t j = 0; j < B; j++) {
            const int64_t row = (g * B + j) * A, t = r * B + j;
            const float w = (float)((s->mask[t] >> k) & 1u), bonus = beta * s->intr[t];
            lsum += qf_td_one(&hp[r], (int32_t)A, B, q + row, qt + row, qo ? qo + row : NULL,
                              s->action[t], s->reward[t] + bonus, s->terminal[t], w, dq + row);
            qsum += q[row + s->action[t]];
            isum += bonus;
        }
        loss[g] = lsum / (float)B;
        qmean[g] = qsum / (float)B;
        if (k == 0) imean[r] = isum / (float)B;
    }
    return QF_OK;
}

static int cpu_add_prior(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t M, float *q,
                         const float *qp) {
    (void)b;
    const int64_t G = (int64_t)net->R * net->K, per = (int64_t)M * net->w[net->L];
#pragma omp parallel for schedule(static) if (G > 1 && G * per >= QF_PAR_MIN_WORK)
    for (int64_t g = 0; g < G; g++) {
        const float c = hp[g / net->K].prior_scale;
        if (c == 0.0f || !qf_head_on(net, g)) continue;
        for (int64_t i = 0; i < per; i++) q[g * per + i] += c * qp[g * per + i];
    }
    return QF_OK;
}

static int cpu_adam(qf_backend *b, const qf_net *net, const qf_run_hp *hp, float *params,
                    const float *grads, float *m, float *v, int32_t *adam_t, int32_t *status, float *gnorm) {
    (void)b;
    const int64_t G = (int64_t)net->R * net->K, P = net->P;
    const int par = G > 1 && G * P >= QF_PAR_MIN_WORK;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t g = 0; g < G; g++) {
        if (!qf_head_on(net, g)) {
            gnorm[g] = 0.0f; /* an unused head: no gradient, nothing to do */
            continue;
        }
        double ss = 0.0;
        for (int64_t j = 0; j < P; j++) ss += (double)grads[g * P + j] * grads[g * P + j];
        gnorm[g] = (float)sqrt(ss);
    }
    for (int32_t r = 0; r < net->R; r++)
        for (int32_t k = 0; k < net->K; k++)
            if (!isfinite(gnorm[(int64_t)r * net->K + k])) status[r] = QF_RUN_DIVERGED;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t g = 0; g < G; g++) {
        const int64_t r = g / net->K;
        if (status[r] != QF_RUN_OK || !qf_head_on(net, g)) continue;
        const qf_run_hp *h = &hp[r];
        const float t = (float)(adam_t[r] + 1);
        const float c1 = 1.0f - powf(h->adam_b1, t), c2 = 1.0f - powf(h->adam_b2, t);
        const float scale = (h->max_grad_norm > 0.0f && gnorm[g] > h->max_grad_norm) ? h->max_grad_norm / gnorm[g] : 1.0f;
        /* restrict: the four arrays never overlap, so the loop vectorizes */
        float *restrict pg = params + g * P, *restrict mg = m + g * P, *restrict vg = v + g * P;
        const float *restrict gg = grads + g * P;
        const qf_run_hp hl = *h;
        for (int64_t j = 0; j < P; j++) qf_adam(&pg[j], gg[j], &mg[j], &vg[j], &hl, scale, c1, c2);
    }
    for (int32_t r = 0; r < net->R; r++) {
        if (status[r] != QF_RUN_OK) continue;
        adam_t[r] += 1;
        for (int64_t j = 0; j < P * net->K; j++)
            if (!isfinite(params[(int64_t)r * net->K * P + j])) {
                status[r] = QF_RUN_DIVERGED;
                break;
            }
    }
    return QF_OK;
}

static int cpu_target_update(qf_backend *b, const qf_net *net, const qf_run_hp *hp, const float *params,
                             float *target, const int32_t *status, int copy) {
    (void)b;
    const int64_t per_run = (int64_t)net->K * net->P;
#pragma omp parallel for schedule(static) if (net->R > 1 && net->R * per_run >= QF_PAR_MIN_WORK)
    for (int32_t r = 0; r < net->R; r++) {
        if (status[r] != QF_RUN_OK) continue;
        const float tau = copy ? 1.0f : hp[r].tau;
        const float *p = params + r * per_run;
        float *t = target + r * per_run;
        for (int64_t j = 0; j < per_run; j++) t[j] = tau == 1.0f ? p[j] : tau * p[j] + (1.0f - tau) * t[j];
    }
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

static int cpu_replay_sample(qf_backend *b, const qf_replay *rp, int32_t B, int64_t size, uint32_t update,
                             const uint32_t *keys, qf_sample *out) {
    (void)b;
#pragma omp parallel for schedule(static) if (rp->R > 1 && (int64_t)rp->R * B * (rp->D + 4) >= QF_PAR_MIN_WORK)
    for (int32_t r = 0; r < rp->R; r++)
        for (int32_t j = 0; j < B; j++) {
            const int64_t src = (int64_t)r * rp->C + qf_sample_slot(keys, r, update, j, size);
            const int64_t dst = (int64_t)r * B + j;
            if (rp->embed) {
                out->idx[dst] = rp->idx[src];
                out->next_idx[dst] = rp->next_idx[src];
            } else {
                memcpy(out->obs + dst * rp->D, rp->obs + src * rp->D, sizeof(float) * (size_t)rp->D);
                memcpy(out->next_obs + dst * rp->D, rp->next_obs + src * rp->D, sizeof(float) * (size_t)rp->D);
            }
            out->action[dst] = rp->action[src];
            out->reward[dst] = rp->reward[src];
            out->terminal[dst] = rp->terminal[src];
            out->mask[dst] = rp->mask[src];
            out->intr[dst] = rp->intr[src];
        }
    return QF_OK;
}

static int cpu_fill0(qf_backend *b, void *p, size_t bytes) {
    (void)b;
    memset(p, 0, bytes);
    return QF_OK;
}

void qf_cpu_learn_ops(qf_backend *b) {
    openblas_set_num_threads(1); /* parallelism comes from OpenMP over networks */
    b->net_init = cpu_net_init;
    b->net_forward = cpu_net_forward;
    b->net_backward = cpu_net_backward;
    b->td = cpu_td;
    b->add_prior = cpu_add_prior;
    b->adam = cpu_adam;
    b->target_update = cpu_target_update;
    b->act = cpu_act;
    b->replay_store = cpu_replay_store;
    b->replay_sample = cpu_replay_sample;
    b->fill0 = cpu_fill0;
    qf_cpu_explore_ops(b);
}
