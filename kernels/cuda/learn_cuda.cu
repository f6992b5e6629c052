// learn_cuda.cu — the learner operations on the GPU: the same contracts as kernels/cpu/learn_cpu.c
// (the reference), the same per-element math (kernels/learn.h). GEMMs are cuBLAS strided-batched
// calls over the R runs of each head; everything else is one launch for all networks. Reductions
// are deterministic (fixed-order loops or fixed trees; no floating-point atomics).
#include <math.h>

#include "cuda_impl.h"

void qf_cuda_explore_ops(qf_backend *b); // explore_cuda.cu


__host__ __device__ static inline int64_t hidden_off(const qf_net &n, int l) {
    int64_t off = 0;
    for (int i = 0; i < l; i++) off += n.w[i + 1];
    return off;
}

// ------------------------------------------------------------------------------------------------
// kernels
//
// Kernels that index qf_net's arrays (w, off_w, off_b) with a runtime layer take it as a
// __grid_constant__ parameter: read in place from parameter memory. As a plain by-value parameter,
// a dynamically indexed array is copied into a local-memory stack frame first (128-144 bytes per
// thread in these five kernels, reported by ptxas -warn-lmem-usage).

__global__ void init_kernel(const __grid_constant__ qf_net n, const uint32_t *keys, uint32_t stream, float *params) {
    const int64_t total = (int64_t)n.R * n.K * n.P;
    GRID_FOR(i, total) params[i] = qf_init_param(&n, keys, stream, i / n.P, i % n.P);
}

// out[g][m][j] = bias_g[j] (ld ldo, per-network stride so), then the GEMM adds x Wt.
__global__ void bias_kernel(const __grid_constant__ qf_net n, int l, int32_t M, const float *params, float *out, int64_t ldo, int64_t so) {
    const int32_t w = n.w[l + 1];
    const int64_t G = (int64_t)n.R * n.K, total = G * M * w;
    GRID_FOR(i, total) {
        const int64_t g = i / ((int64_t)M * w), m = (i / w) % M, j = i % w;
        out[g * so + m * ldo + j] = params[g * n.P + n.off_b[l] + j];
    }
}

// Embedding first layer: out[g][m][:] = Wt0[s_m][:] + b0.
__global__ void embed_kernel(qf_net n, int32_t M, const float *params, const int32_t *xi, float *out,
                             int64_t ldo, int64_t so) {
    const int32_t in_w = n.w[0], w = n.w[1];
    const int64_t G = (int64_t)n.R * n.K, total = G * M * w;
    GRID_FOR(i, total) {
        const int64_t g = i / ((int64_t)M * w), m = (i / w) % M, j = i % w;
        int32_t s = xi[qf_net_in(&n, g) * M + m];
        s = qf_clamp_index(s, in_w);
        const float *W = params + g * n.P;
        out[g * so + m * ldo + j] = W[n.off_w[0] + (int64_t)s * w + j] + W[n.off_b[0] + j];
    }
}

// The hidden activation (QF_ACTIVATION_*) in place on the layer's pre-activations.
__global__ void activation_kernel(int act, int64_t G, int32_t M, int32_t w, float *out, int64_t ldo, int64_t so) {
    GRID_FOR(i, G * M * w) {
        const int64_t g = i / ((int64_t)M * w), m = (i / w) % M, j = i % w;
        float *p = out + g * so + m * ldo + j;
        *p = act == QF_ACTIVATION_GELU ? qf_gelu(*p) : (*p > 0.0f ? *p : 0.0f);
    }
}

// db[g][j] = sum_m dy[g][m][j] (fixed order), and for an embedding layer the row scatter
// dWt0[s_m][j] += dy[m][j], one thread per (g, j) walking m in order: deterministic.
__global__ void bias_grad_kernel(const __grid_constant__ qf_net n, int l, int32_t M, const float *dy, int64_t lddy, int64_t sdy,
                                 const int32_t *xi, int embed_layer, float *grads) {
    const int32_t w = n.w[l + 1];
    const int64_t G = (int64_t)n.R * n.K;
    GRID_FOR(i, G * w) {
        const int64_t g = i / w, j = i % w;
        float *dW = grads + g * n.P;
        float acc = 0.0f;
        for (int32_t m = 0; m < M; m++) {
            const float d = dy[g * sdy + m * lddy + j];
            acc += d;
            if (embed_layer) {
                int32_t s = xi[qf_net_in(&n, g) * M + m];
                s = qf_clamp_index(s, n.w[0]);
                dW[n.off_w[0] + (int64_t)s * w + j] += d;
            }
        }
        dW[n.off_b[l] + j] = acc;
    }
}

__global__ void relu_mask_kernel(int64_t G, int32_t M, int32_t w, const float *in, int64_t ldi, int64_t si,
                                 float *dx, int64_t sdx) {
    GRID_FOR(i, G * M * w) {
        const int64_t g = i / ((int64_t)M * w), m = (i / w) % M, j = i % w;
        if (!(in[g * si + m * ldi + j] > 0.0f)) dx[g * sdx + m * w + j] = 0.0f;
    }
}

// dx *= GELU'(z), z the layer's recomputed pre-activations [M][w] (per-network stride sz).
__global__ void gelu_mask_kernel(int64_t G, int32_t M, int32_t w, const float *z, int64_t sz, float *dx, int64_t sdx) {
    GRID_FOR(i, G * M * w) {
        const int64_t g = i / ((int64_t)M * w), m = (i / w) % M, j = i % w;
        dx[g * sdx + m * w + j] *= qf_gelu_grad(z[g * sz + m * w + j]);
    }
}

// A thread per network (qf_td_net, the CPU's body); n and s read in place from parameter memory.
__global__ void td_kernel(const __grid_constant__ qf_net n, const qf_run_hp *hp, int32_t B, const __grid_constant__ qf_sample s,
                          const float *q, const float *qt, const float *qo, float *dq, float *loss, float *qmean,
                          float *imean) {
    const int64_t G = (int64_t)n.R * n.K;
    GRID_FOR(g, G) qf_td_net(&n, hp, g, B, &s, q, qt, qo, dq, loss, qmean, imean);
}

__global__ void add_prior_kernel(qf_net n, const qf_run_hp *hp, int64_t per, float *q, const float *qp) {
    GRID_FOR(i, (int64_t)n.R * n.K * per) {
        const float c = hp[(i / per) / n.K].prior_scale;
        if (c != 0.0f) q[i] += c * qp[i];
    }
}

// One block per network: sum of squares in double, fixed tree.
__global__ void gnorm_kernel(qf_net n, int64_t P, const float *grads, float *gnorm) {
    __shared__ double part[kBlock];
    const int64_t g = blockIdx.x;
    if (!qf_head_on(&n, g)) { // an unused head: no gradient (uniform across the block)
        if (threadIdx.x == 0) gnorm[g] = 0.0f;
        return;
    }
    double acc = 0.0;
    for (int64_t j = threadIdx.x; j < P; j += blockDim.x) {
        const double v = grads[g * P + j];
        acc += v * v;
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) gnorm[g] = (float)sqrt(part[0]);
}

__global__ void mark_nonfinite_norm_kernel(int32_t R, int32_t K, const float *gnorm, int32_t *status) {
    GRID_FOR(r, R) {
        for (int32_t k = 0; k < K; k++)
            if (!isfinite(gnorm[r * K + k])) status[r] = QF_RUN_DIVERGED;
    }
}

__global__ void adam_kernel(qf_net n, const qf_run_hp *hp, float *params, const float *grads, float *m, float *v,
                            const int32_t *adam_t, const int32_t *status, const float *gnorm) {
    const int64_t G = (int64_t)n.R * n.K;
    GRID_FOR(i, G * n.P) {
        const int64_t g = i / n.P, r = g / n.K;
        if (status[r] != QF_RUN_OK || !qf_head_on(&n, g)) continue;
        const qf_run_hp *h = &hp[r];
        qf_adam(&params[i], grads[i], &m[i], &v[i], qf_adam_consts(h, adam_t[r] + 1), qf_clip_scale(h, gnorm[g]));
    }
}

// One block per run: count the step, then mark the run diverged if a parameter is not finite. The
// block's verdict is __syncthreads_or (a shared flag stored by many threads would be a data race).
__global__ void adam_finish_kernel(int64_t per_run, const float *params, int32_t *adam_t, int32_t *status) {
    const int64_t r = blockIdx.x;
    if (status[r] != QF_RUN_OK) return; // uniform across the block
    int bad = 0;
    for (int64_t j = threadIdx.x; j < per_run; j += blockDim.x)
        if (!isfinite(params[r * per_run + j])) bad = 1;
    bad = __syncthreads_or(bad);
    if (threadIdx.x == 0) {
        adam_t[r] += 1;
        if (bad) status[r] = QF_RUN_DIVERGED;
    }
}

// it: NULL, or the captured iteration's counters, which decide at replay time (backend.h, qf_iter)
__global__ void target_kernel(int64_t per_run, int32_t R, const qf_run_hp *hp, const float *params, float *target,
                              const int32_t *status, int copy, const qf_iter *it) {
    if (it) {
        if (!it->polyak && (it->update + 1u) % (uint32_t)it->target_every != 0u) return; // not due: uniform
        copy = !it->polyak;
    }
    GRID_FOR(i, (int64_t)R * per_run) {
        const int64_t r = i / per_run;
        if (status[r] != QF_RUN_OK) continue;
        const float tau = copy ? 1.0f : hp[r].tau;
        target[i] = qf_polyak(tau, params[i], target[i]);
    }
}

__global__ void act_kernel(const __grid_constant__ qf_net n, const qf_run_hp *hp, int32_t E, const float *q, const uint32_t *keys,
                           uint32_t t, const qf_iter *it, const uint8_t *flags, int32_t *heads, int32_t *actions) {
    if (it) t = it->t;
    const int32_t A = n.w[n.L];
    GRID_FOR(i, (int64_t)n.R * E) {
        const int64_t r = i / E, e = i % E;
        if (hp[r].explore != QF_EXPLORE_BOOTSTRAP)
            heads[i] = 0;
        else if (t == 0 || (flags[i] & (QF_TERMINAL | QF_TRUNCATED)))
            heads[i] = qf_draw_head(keys[2 * r], keys[2 * r + 1], (int32_t)e, t, hp[r].n_heads);
        qf_rng g = qf_rng_make(keys[2 * r], keys[2 * r + 1], QF_STREAM_ACT, (uint32_t)e, t);
        const float *row = q + ((r * n.K) * E + e) * A;
        actions[i] = qf_act_one(row, (int64_t)E * A, A, &hp[r], heads[i], t, qf_rng_next(&g));
    }
}

// one thread per run: the sum over (e, a) in the CPU twin's order
__global__ void q_diversity_kernel(const __grid_constant__ qf_net n, const qf_run_hp *hp, int32_t E, const float *q,
                                   float *acc) {
    const int32_t A = n.w[n.L];
    GRID_FOR(r, (int64_t)n.R) {
        if (hp[r].explore == QF_EXPLORE_BOOTSTRAP) acc[r] += qf_q_diversity_run(q, r, n.K, E, A, hp[r].n_heads);
    }
}

__global__ void store_kernel(qf_replay rp, const qf_run_hp *hp, const uint32_t *keys, int32_t E, int64_t ptr,
                             uint32_t t, const qf_iter *it, const float *obs, const int32_t *obs_idx,
                             const int32_t *actions, const float *reward, const uint8_t *flags,
                             const float *next_obs, const int32_t *next_idx, const float *intr) {
    if (it) {
        t = it->t;
        ptr = ((int64_t)t * it->E) % rp.C;
    }
    GRID_FOR(src, (int64_t)rp.R * E) {
        const int64_t r = src / E, e = src % E, dst = r * rp.C + (ptr + e) % rp.C;
        if (rp.embed) {
            rp.idx[dst] = obs_idx[src];
            rp.next_idx[dst] = next_idx[src];
        } else {
            for (int32_t d = 0; d < rp.D; d++) {
                rp.obs[dst * rp.D + d] = obs[src * rp.D + d];
                rp.next_obs[dst * rp.D + d] = next_obs[src * rp.D + d];
            }
        }
        rp.action[dst] = actions[src];
        rp.reward[dst] = reward[src];
        rp.terminal[dst] = (uint8_t)((flags[src] & QF_TERMINAL) != 0);
        rp.mask[dst] = qf_draw_mask(keys[2 * r], keys[2 * r + 1], (int32_t)e, t, hp[r].n_heads, hp[r].mask_p);
        rp.intr[dst] = intr ? intr[src] : 0.0f;
    }
}

__global__ void sample_kernel(qf_replay rp, int32_t B, int64_t size, uint32_t update, const qf_iter *it,
                              const uint32_t *keys, qf_sample out) {
    if (it) {
        update = it->update;
        const int64_t filled = ((int64_t)it->t + 1) * it->E;
        size = filled < rp.C ? filled : rp.C;
    }
    const int32_t K = out.R / rp.R; // 1: a batch per run; else one per head
    GRID_FOR(dst, (int64_t)out.R * B) {
        const int32_t row = (int32_t)(dst / B), j = (int32_t)(dst % B), r = row / K, k = row % K;
        if (qf_sample_demo(&rp, keys, update, K, B, row, j, &out)) continue; // the demo part's draws
        const int64_t src = (int64_t)r * rp.C + qf_sample_slot(keys, r, update, k * B + j, size);
        if (rp.embed) {
            out.idx[dst] = rp.idx[src];
            out.next_idx[dst] = rp.next_idx[src];
        } else {
            for (int32_t d = 0; d < rp.D; d++) {
                out.obs[dst * rp.D + d] = rp.obs[src * rp.D + d];
                out.next_obs[dst * rp.D + d] = rp.next_obs[src * rp.D + d];
            }
        }
        out.action[dst] = rp.action[src];
        out.reward[dst] = rp.reward[src];
        out.terminal[dst] = rp.terminal[src];
        out.mask[dst] = rp.mask[src];
        out.intr[dst] = rp.intr[src];
        if (rp.prior_obs && out.prior_obs) // a run's batch: every head's; a head's: its own
            qf_sample_priors(rp.prior_obs, rp.prior_next, rp.C, rp.K, rp.A, K, r, k, src - (int64_t)r * rp.C, B, j, &out);
    }
}

__global__ void store_prior_kernel(qf_replay rp, int32_t E, int64_t ptr, const qf_iter *it, const float *qp_obs,
                                   const float *qp_next) {
    if (it) ptr = ((int64_t)it->t * it->E) % rp.C;
    const int64_t A = rp.A;
    GRID_FOR(i, (int64_t)rp.R * rp.K * E * A) {
        const int64_t a = i % A, ge = i / A, e = ge % E, g = ge / E;
        const int64_t to = (g * rp.C + (ptr + e) % rp.C) * A + a;
        rp.prior_obs[to] = qp_obs[i];
        rp.prior_next[to] = qp_next[i];
    }
}

// ------------------------------------------------------------------------------------------------
// operations


static int cu_net_init(qf_backend *b, const qf_net *net, const uint32_t *keys, uint32_t stream, float *params) {
    LAUNCH(b, init_kernel, (int64_t)net->R * net->K * net->P, *net, keys, stream, params);
    return QF_OK;
}

// Row-major C (M x N, ldc) (+)= A (M x K, lda) * B (K x N, ldb) for each run of head k, as the
// column-major product C^T = B^T A^T; transA/transB say whether A/B are stored transposed.
static int gemm_rm(qf_backend *b, int transA, int transB, int M, int N, int K, const float *A, int64_t lda,
                   int64_t sa, const float *Bm, int64_t ldb, int64_t sb, float beta, float *C, int64_t ldc,
                   int64_t sc, int batch) {
    const float one = 1.0f;
    QF_CUBLAS_TRY(b, cublasSgemmStridedBatched(qf_cuda_impl(b)->blas, transB ? CUBLAS_OP_T : CUBLAS_OP_N,
                                               transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &one, Bm, (int)ldb, sb,
                                               A, (int)lda, sa, &beta, C, (int)ldc, sc, batch));
    b->n_launch++;
    return QF_OK;
}

// Layer l's pre-activations of every network for M inputs: out[g][m][j] (ld ldo, per-network
// stride so) = input Wt_l + b_l, the input being x / xi (l = 0) or the stored activations of layer
// l - 1 in acts.
static int layer_pre(qf_backend *b, const qf_net *net, const float *params, int32_t M, const float *x,
                     const int32_t *xi, const float *acts, int l, float *out, int64_t ldo, int64_t so) {
    const int64_t G = (int64_t)net->R * net->K, K = net->K;
    const int32_t in_w = net->w[l], out_w = net->w[l + 1];
    if (l == 0 && net->embed) {
        LAUNCH(b, embed_kernel, G * M * out_w, *net, M, params, xi, out, ldo, so);
        return QF_OK;
    }
    LAUNCH(b, bias_kernel, G * M * out_w, *net, l, M, params, out, ldo, so);
    for (int64_t k = 0; k < K; k++) {
        const float *in;
        int64_t ldi, si;
        if (l == 0) { // runs' inputs, which their heads share, or each head's own
            in = net->x_per_net ? x + k * (int64_t)M * in_w : x;
            ldi = in_w;
            si = (net->x_per_net ? K : 1) * (int64_t)M * in_w;
        } else {
            in = acts + k * (int64_t)M * net->H + hidden_off(*net, l - 1);
            ldi = net->H;
            si = K * (int64_t)M * net->H;
        }
        if (gemm_rm(b, 0, 0, M, out_w, in_w, in, ldi, si, params + k * net->P + net->off_w[l], out_w,
                    K * net->P, 1.0f, out + k * so, ldo, K * so, net->R) != QF_OK)
            return QF_ERR;
    }
    return QF_OK;
}

static int cu_net_forward(qf_backend *b, const qf_net *net, const float *params, int32_t M, const float *x,
                          const int32_t *xi, float *acts, float *q) {
    const int64_t G = (int64_t)net->R * net->K, A = net->w[net->L];
    for (int l = 0; l < net->L; l++) {
        const int32_t out_w = net->w[l + 1];
        const int last = l == net->L - 1;
        float *out = last ? q : acts + hidden_off(*net, l);
        const int64_t ldo = last ? A : net->H, so = (int64_t)M * ldo;
        if (layer_pre(b, net, params, M, x, xi, acts, l, out, ldo, so) != QF_OK) return QF_ERR;
        if (!last) LAUNCH(b, activation_kernel, G * M * out_w, net->act, G, M, out_w, out, ldo, so);
    }
    return QF_OK;
}

static int cu_net_backward(qf_backend *b, const qf_net *net, const float *params, int32_t M, const float *x,
                           const int32_t *xi, const float *acts, const float *dq, float *grads, float *work) {
    const int64_t G = (int64_t)net->R * net->K, A = net->w[net->L], K = net->K;
    const int32_t wmax = qf_net_max_width(net);
    const int64_t swork = qf_net_work_bufs(net) * (int64_t)M * wmax; // per network: 2 (GELU: 3) buffers of M x wmax
    QF_CUDA_TRY(b, cudaMemsetAsync(grads, 0, sizeof(float) * (size_t)(G * net->P), qf_cuda_impl(b)->stream));
    b->n_launch++;
    const float *dy = dq;
    int64_t lddy = A, sdy = (int64_t)M * A;
    for (int l = net->L - 1; l >= 0; l--) {
        const int32_t in_w = net->w[l], out_w = net->w[l + 1];
        const int embed_layer = l == 0 && net->embed;
        LAUNCH(b, bias_grad_kernel, G * out_w, *net, l, M, dy, lddy, sdy, xi, embed_layer, grads);
        for (int64_t k = 0; k < K && !embed_layer; k++) {
            const float *in;
            int64_t ldi, si;
            if (l == 0) {
                in = net->x_per_net ? x + k * (int64_t)M * in_w : x;
                ldi = in_w;
                si = (net->x_per_net ? K : 1) * (int64_t)M * in_w;
            } else {
                in = acts + k * (int64_t)M * net->H + hidden_off(*net, l - 1);
                ldi = net->H;
                si = K * (int64_t)M * net->H;
            }
            // dWt (in x out) = in^T (in x M) * dy (M x out)
            if (gemm_rm(b, 1, 0, in_w, out_w, M, in, ldi, si, dy + k * sdy, lddy, K * sdy, 0.0f,
                        grads + k * net->P + net->off_w[l], out_w, K * net->P, net->R) != QF_OK)
                return QF_ERR;
        }
        if (l == 0) break;
        float *dx = work + (l & 1) * (int64_t)M * wmax;
        for (int64_t k = 0; k < K; k++) {
            // dx (M x in) = dy (M x out) * Wt^T (out x in)
            if (gemm_rm(b, 0, 1, M, in_w, out_w, dy + k * sdy, lddy, K * sdy, params + k * net->P + net->off_w[l],
                        out_w, K * net->P, 0.0f, dx + k * swork, in_w, K * swork, net->R) != QF_OK)
                return QF_ERR;
        }
        if (net->act == QF_ACTIVATION_GELU) { // GELU' needs layer l - 1's pre-activations: recomputed
            float *z = work + 2 * (int64_t)M * wmax;
            if (layer_pre(b, net, params, M, x, xi, acts, l - 1, z, in_w, swork) != QF_OK) return QF_ERR;
            LAUNCH(b, gelu_mask_kernel, G * M * in_w, G, M, in_w, z, swork, dx, swork);
        } else {
            const float *in = acts + hidden_off(*net, l - 1);
            LAUNCH(b, relu_mask_kernel, G * M * in_w, G, M, in_w, in, net->H, (int64_t)M * net->H, dx, swork);
        }
        dy = dx;
        lddy = in_w;
        sdy = swork;
    }
    return QF_OK;
}

static int cu_td(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t B, const qf_sample *s, const float *q,
                 const float *qt, const float *qo, float *dq, float *loss, float *qmean, float *imean) {
    LAUNCH(b, td_kernel, (int64_t)net->R * net->K, *net, hp, B, *s, q, qt, qo, dq, loss, qmean, imean);
    return QF_OK;
}

static int cu_add_prior(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t M, float *q, const float *qp) {
    const int64_t per = (int64_t)M * net->w[net->L];
    LAUNCH(b, add_prior_kernel, (int64_t)net->R * net->K * per, *net, hp, per, q, qp);
    return QF_OK;
}

static int cu_adam(qf_backend *b, const qf_net *net, const qf_run_hp *hp, float *params, const float *grads,
                   float *m, float *v, int32_t *adam_t, int32_t *status, float *gnorm) {
    const int64_t G = (int64_t)net->R * net->K;
    cudaStream_t st = qf_cuda_impl(b)->stream;
    QF_LAUNCH(gnorm_kernel, (unsigned)G, kBlock, 0, st)(*net, net->P, grads, gnorm);
    QF_LAUNCH_CHECK(b, "gnorm_kernel");
    LAUNCH(b, mark_nonfinite_norm_kernel, net->R, net->R, net->K, gnorm, status);
    LAUNCH(b, adam_kernel, G * net->P, *net, hp, params, grads, m, v, adam_t, status, gnorm);
    QF_LAUNCH(adam_finish_kernel, (unsigned)net->R, kBlock, 0, st)((int64_t)net->K * net->P, params, adam_t, status);
    QF_LAUNCH_CHECK(b, "adam_finish_kernel");
    return QF_OK;
}

static int cu_target_update(qf_backend *b, const qf_net *net, const qf_run_hp *hp, const float *params,
                            float *target, const int32_t *status, int copy) {
    const int64_t per_run = (int64_t)net->K * net->P;
    LAUNCH(b, target_kernel, net->R * per_run, per_run, net->R, hp, params, target, status, copy,
           qf_cuda_impl(b)->iter);
    return QF_OK;
}

static int cu_act(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t E, const float *q,
                  const uint32_t *keys, uint32_t t, const uint8_t *flags, int32_t *heads, int32_t *actions) {
    LAUNCH(b, act_kernel, (int64_t)net->R * E, *net, hp, E, q, keys, t, qf_cuda_impl(b)->iter, flags, heads,
           actions);
    return QF_OK;
}

static int cu_q_diversity(qf_backend *b, const qf_net *net, const qf_run_hp *hp, int32_t E, const float *q,
                          float *acc) {
    LAUNCH(b, q_diversity_kernel, (int64_t)net->R, *net, hp, E, q, acc);
    return QF_OK;
}

static int cu_replay_store(qf_backend *b, const qf_replay *rp, const qf_run_hp *hp, const uint32_t *keys, int32_t E,
                           int64_t ptr, uint32_t t, const float *obs, const int32_t *obs_idx, const int32_t *actions,
                           const float *reward, const uint8_t *flags, const float *next_obs, const int32_t *next_idx,
                           const float *intr) {
    LAUNCH(b, store_kernel, (int64_t)rp->R * E, *rp, hp, keys, E, ptr, t, qf_cuda_impl(b)->iter, obs, obs_idx,
           actions, reward, flags, next_obs, next_idx, intr);
    return QF_OK;
}

static int cu_replay_store_prior(qf_backend *b, const qf_replay *rp, int32_t E, int64_t ptr, const float *qp_obs,
                                 const float *qp_next) {
    LAUNCH(b, store_prior_kernel, (int64_t)rp->R * rp->K * E * rp->A, *rp, E, ptr, qf_cuda_impl(b)->iter, qp_obs,
           qp_next);
    return QF_OK;
}

static int cu_replay_sample(qf_backend *b, const qf_replay *rp, int32_t B, int64_t size, uint32_t update,
                            const uint32_t *keys, qf_sample *out) {
    LAUNCH(b, sample_kernel, (int64_t)out->R * B, *rp, B, size, update, qf_cuda_impl(b)->iter, keys, *out);
    return QF_OK;
}

// Q(s, .) of every network with the run's prior added (randomized priors): net_forward, then the
// prior's forward into qp (scratch activations in acts_tmp) unless reuse_prior (qp already holds
// it for these inputs), then add_prior; kept: the sample's copy of the prior's outputs ([G][B][A],
// stored with the transitions) added instead, or NULL.
static int q_forward(qf_backend *b, const qf_learn_args *a, const float *params, const float *x, const int32_t *xi,
                     float *acts, float *q, int reuse_prior, const float *kept) {
    if (cu_net_forward(b, a->net, params, a->B, x, xi, acts, q) != QF_OK) return QF_ERR;
    if (!a->prior) return QF_OK;
    if (kept) return cu_add_prior(b, a->net, a->hp, a->B, q, kept);
    if (!reuse_prior && cu_net_forward(b, a->net, a->prior, a->B, x, xi, a->acts_tmp, a->qp) != QF_OK) return QF_ERR;
    return cu_add_prior(b, a->net, a->hp, a->B, q, a->qp);
}

// The learner update (backend.h, learn): the operations in the order the contract gives them, each
// one or a few launches for all networks (kernels/cpu/learn_cpu.c's cpu_learn is the reference).
static int cu_learn(qf_backend *b, const qf_learn_args *a) {
    const qf_net *n = a->net;
    qf_sample *s = a->s;
    if (cu_replay_sample(b, a->replay, a->B, a->stored, a->update, a->keys, s) != QF_OK ||
        (a->counts && b->count_bonus(b, a->counts, a->hp, a->B, s) != QF_OK) ||
        q_forward(b, a, a->target, s->next_obs, s->next_idx, a->acts_tmp, a->qt, 0, s->prior_next) != QF_OK ||
        (a->qo && q_forward(b, a, a->params, s->next_obs, s->next_idx, a->acts_tmp, a->qo, 1, s->prior_next) != QF_OK) ||
        q_forward(b, a, a->params, s->obs, s->idx, a->acts, a->q, 0, s->prior_obs) != QF_OK ||
        cu_td(b, n, a->hp, a->B, s, a->q, a->qt, a->qo, a->dq, a->loss, a->qmean, a->imean) != QF_OK ||
        cu_net_backward(b, n, a->params, a->B, s->obs, s->idx, a->acts, a->dq, a->grads, a->work) != QF_OK ||
        cu_adam(b, n, a->hp, a->params, a->grads, a->adam_m, a->adam_v, a->adam_t, a->status, a->gnorm) != QF_OK ||
        (a->rnd && qf_learn_rnd_step(b, a) != QF_OK))
        return QF_ERR;
    if (!a->target_mode) return QF_OK;
    return cu_target_update(b, n, a->hp, a->params, a->target, a->status, a->target_mode == 2);
}

static int cu_fill0(qf_backend *b, void *p, size_t bytes) {
    QF_CUDA_TRY(b, cudaMemsetAsync(p, 0, bytes, qf_cuda_impl(b)->stream));
    b->n_launch++;
    return QF_OK;
}

void qf_cuda_learn_ops(qf_backend *b) {
    b->net_init = cu_net_init;
    b->net_forward = cu_net_forward;
    b->net_backward = cu_net_backward;
    b->td = cu_td;
    b->add_prior = cu_add_prior;
    b->adam = cu_adam;
    b->target_update = cu_target_update;
    b->act = cu_act;
    b->q_diversity = cu_q_diversity;
    b->replay_store = cu_replay_store;
    b->replay_store_prior = cu_replay_store_prior;
    b->replay_sample = cu_replay_sample;
    b->fill0 = cu_fill0;
    b->learn = cu_learn;
    qf_cuda_explore_ops(b);
}
