/* act.cu — acting (the training loop's `act` phase, host/fleet.c): Q(s, .) of the head each env
 * follows, its randomized prior added, and the action by the run's strategy (qf_act_one,
 * kernels/explore.h: epsilon-greedy, Boltzmann, a bootstrap head greedy or Boltzmann, UCB over the
 * heads). Kernel versions beside the CPU reference, each checked against it and timed (llm.c
 * dev/cuda pattern).
 *
 *   cmake --build build --target act && build/benchmarks/dev/act [VERSION]
 *
 * version 1: the backend today (kernels/cuda/learn_cuda.cu, compiled in): net_forward of every head
 *            of every run (embed + ReLU, then per layer bias + one cuBLAS strided-batched GEMM per
 *            head + ReLU) for the parameters and again for the priors, add_prior, then act_kernel:
 *            4 K + 12 = 52 launches for a 3-layer MLP with K = 10, and K heads computed where the
 *            strategy reads one.
 * version 2: one launch, one warp per env: the head (the backend's redraw rule), the forward of
 *            the heads the strategy reads (one; all n_heads for UCB) and their priors, lanes over a
 *            layer's units with the activations in shared memory, then qf_act_one by lane 0.
 *            It also writes those Q rows (R E x K x A floats at most), which the check reads.
 *
 * Shapes: R = 1024 runs x K = 10 heads, E = 1 env per run (bsuite), DeepSea-20 state indices
 * (embedding of 400 states), MLP 50-50, 2 actions, at env step t = 5000; runs cycle through
 * epsilon-greedy, Boltzmann, bootstrap greedy, bootstrap Boltzmann and bootstrap UCB (bootstrap
 * runs: 10 heads, prior_scale 3); 10% of the envs start an episode (their head is redrawn).
 */
#include "backend_v1.h"

static int32_t R = 1024; // runs (64 for the CPU-only check)
static const int32_t K = 10, E = 1, S = 400, W1 = 50, W2 = 50, A = 2;
static const uint32_t T_STEP = 5000;
#define WMAX 64          // version 2: widest layer
#define AMAX 8           // version 2: most actions
#define WARPS 4          // version 2: envs per block

// ------------------------------------------------------------------------------------------------
// CPU reference

// Q row of network g (block W) for state s: embedding, then bias-first dot products in input
// order, ReLU between layers. With absval, the same with |W| (the magnitude behind the
// rounding-error bound).
static void forward_cpu(const qf_net *n, const float *W, int32_t s, int absval, float *q) {
    float h[2][WMAX];
    s = qf_clamp_index(s, n->w[0]);
    for (int32_t j = 0; j < n->w[1]; j++) {
        float v = W[n->off_w[0] + (int64_t)s * n->w[1] + j], bb = W[n->off_b[0] + j];
        v = absval ? fabsf(v) + fabsf(bb) : v + bb;
        h[0][j] = n->L > 1 ? (v > 0.0f ? v : 0.0f) : v;
        if (n->L == 1) q[j] = v;
    }
    int cur = 0;
    for (int l = 1; l < n->L; l++) {
        const int32_t in_w = n->w[l], out_w = n->w[l + 1];
        const int last = l == n->L - 1;
        for (int32_t j = 0; j < out_w; j++) {
            float acc = absval ? fabsf(W[n->off_b[l] + j]) : W[n->off_b[l] + j];
            for (int32_t i = 0; i < in_w; i++) {
                const float w = W[n->off_w[l] + (int64_t)i * out_w + j];
                acc += h[cur][i] * (absval ? fabsf(w) : w);
            }
            if (last) q[j] = acc;
            else h[cur ^ 1][j] = acc > 0.0f ? acc : 0.0f;
        }
        cur ^= 1;
    }
}

// The head an env follows at step t (the backend's act rule).
static int32_t head_of(const qf_run_hp &h, const uint32_t *keys, int64_t r, int32_t e, uint32_t t, uint8_t flags,
                       int32_t prev) {
    if (h.explore != QF_EXPLORE_BOOTSTRAP) return 0;
    if (t == 0 || (flags & (QF_TERMINAL | QF_TRUNCATED))) return qf_draw_head(keys[2 * r], keys[2 * r + 1], e, t, h.n_heads);
    return prev;
}
// The heads whose rows the strategy reads: [k0, k1).
static void rows_read(const qf_run_hp &h, int32_t head, int32_t *k0, int32_t *k1) {
    const int ucb = h.explore == QF_EXPLORE_BOOTSTRAP && h.act_mode == QF_ACT_UCB;
    *k0 = ucb ? 0 : head;
    *k1 = ucb ? h.n_heads : head + 1;
}
static int32_t select_cpu(const qf_run_hp &h, const uint32_t *keys, int64_t r, int32_t e, uint32_t t,
                          const float *rows /* [K][A] */, int32_t head) {
    qf_rng g = qf_rng_make(keys[2 * r], keys[2 * r + 1], QF_STREAM_ACT, (uint32_t)e, t);
    return qf_act_one(rows, A, A, &h, head, t, qf_rng_next(&g));
}

// ------------------------------------------------------------------------------------------------
// version 2: a warp per env

// Q row of the network whose parameters start at W, for state s, into q (shared, A floats):
// lanes over a layer's units, activations in buf (shared), the reference's order of operations.
__device__ static void warp_forward(const qf_net &n, const float *W, int32_t s, float (*buf)[WMAX], float *q,
                                    int lane) {
    s = qf_clamp_index(s, n.w[0]);
    for (int32_t j = lane; j < n.w[1]; j += 32) {
        const float v = W[n.off_w[0] + (int64_t)s * n.w[1] + j] + W[n.off_b[0] + j];
        if (n.L == 1) q[j] = v;
        else buf[0][j] = v > 0.0f ? v : 0.0f;
    }
    __syncwarp();
    int cur = 0;
    for (int l = 1; l < n.L; l++) {
        const int32_t in_w = n.w[l], out_w = n.w[l + 1];
        const int last = l == n.L - 1;
        const float *Wl = W + n.off_w[l];
        for (int32_t j = lane; j < out_w; j += 32) {
            float acc = W[n.off_b[l] + j];
            for (int32_t i = 0; i < in_w; i++) acc += buf[cur][i] * Wl[(int64_t)i * out_w + j];
            if (last) q[j] = acc;
            else buf[cur ^ 1][j] = acc > 0.0f ? acc : 0.0f;
        }
        __syncwarp();
        cur ^= 1;
    }
}

__global__ void __launch_bounds__(32 * WARPS)
    act_fused_kernel(qf_net n, const qf_run_hp *hps, int32_t En, const float *params, const float *prior,
                     const int32_t *obs_idx, const uint32_t *keys, uint32_t t, const uint8_t *flags, int32_t *heads,
                     int32_t *actions, float *q_out) {
    __shared__ float buf[WARPS][2][WMAX];
    __shared__ float rows[WARPS][QF_MAX_HEADS * AMAX]; // [K][A] per warp
    __shared__ float qp[WARPS][AMAX];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t i = (int64_t)blockIdx.x * WARPS + warp;
    if (i >= (int64_t)n.R * En) return; // whole warps
    const int64_t r = i / En;
    const int32_t e = (int32_t)(i % En), Ai = n.w[n.L];
    const qf_run_hp h = hps[r];
    int32_t head = 0;
    if (h.explore == QF_EXPLORE_BOOTSTRAP)
        head = (t == 0 || (flags[i] & (QF_TERMINAL | QF_TRUNCATED)))
                   ? qf_draw_head(keys[2 * r], keys[2 * r + 1], e, t, h.n_heads)
                   : heads[i];
    const int ucb = h.explore == QF_EXPLORE_BOOTSTRAP && h.act_mode == QF_ACT_UCB;
    const int32_t k0 = ucb ? 0 : head, k1 = ucb ? h.n_heads : head + 1;
    const int32_t s = obs_idx[i];
    for (int32_t k = k0; k < k1; k++) {
        const int64_t g = r * n.K + k;
        float *row = rows[warp] + k * Ai;
        warp_forward(n, params + g * n.P, s, buf[warp], row, lane);
        if (h.prior_scale != 0.0f) { // add_prior's q += c * qp
            warp_forward(n, prior + g * n.P, s, buf[warp], qp[warp], lane);
            if (lane < Ai) row[lane] += h.prior_scale * qp[warp][lane];
            __syncwarp();
        }
        if (q_out && lane < Ai) q_out[(i * n.K + k) * Ai + lane] = row[lane];
    }
    __syncwarp();
    if (lane == 0) {
        qf_rng gen = qf_rng_make(keys[2 * r], keys[2 * r + 1], QF_STREAM_ACT, (uint32_t)e, t);
        actions[i] = qf_act_one(rows[warp], Ai, Ai, &h, head, t, qf_rng_next(&gen));
        heads[i] = head;
    }
}

int main(int argc, char **argv) {
    const int want = parse_version(argc, argv, 2);
    dev_info d = dev_open();
    if (!d.ok) R = 64; // no device: the CPU reference and its independent check only
    if (d.emulated) R = 4; // the CPU shim: every version checked on a small fleet
    qf_net net;
    memset(&net, 0, sizeof net);
    net.R = R;
    net.K = K;
    net.L = 3;
    net.embed = 1;
    net.w[0] = S;
    net.w[1] = W1;
    net.w[2] = W2;
    net.w[3] = A;
    qf_net_layout(&net);
    const int64_t G = (int64_t)R * K, P = net.P, NE = (int64_t)R * E;
    printf("act: %sR=%d runs x K=%d heads, E=%d env per run, embedding %d -> %d -> %d -> %d actions, t=%u\n",
           d.ok ? "" : "(CPU-only check, smaller fleet) ", R, K, E, S, W1, W2, A, T_STEP);

    // ---- inputs (fixed seed)
    dev_rng rng = {50};
    qf_run_hp *hp = (qf_run_hp *)mallocCheck(sizeof(qf_run_hp) * R);
    for (int32_t r = 0; r < R; r++) {
        qf_run_hp *h = &hp[r];
        memset(h, 0, sizeof *h);
        const int kind = r % 5;
        h->explore = kind == 0 ? QF_EXPLORE_EPSILON : (kind == 1 ? QF_EXPLORE_BOLTZMANN : QF_EXPLORE_BOOTSTRAP);
        h->eps_start = 1.0f;
        h->eps_end = 0.05f;
        h->eps_steps = 10000;
        h->alpha = kind == 1 ? 0.5f : (kind == 3 ? 0.2f : 0.0f);
        h->n_heads = kind >= 2 ? K : 1;
        h->act_mode = kind == 4 ? QF_ACT_UCB : QF_ACT_SAMPLE;
        h->ucb_c = 1.0f;
        h->prior_scale = kind >= 2 ? 3.0f : 0.0f;
    }
    float *params = (float *)mallocCheck(sizeof(float) * G * P), *prior = (float *)mallocCheck(sizeof(float) * G * P);
    for (int64_t g = 0; g < G; g++)
        for (int64_t j = 0; j < P; j++) { // nn.Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            int l = 0;
            while (l + 1 < net.L && j >= net.off_w[l + 1]) l++;
            const float bound = 1.0f / sqrtf((float)net.w[l]);
            params[g * P + j] = rng_range(&rng, -bound, bound);
            prior[g * P + j] = rng_range(&rng, -bound, bound);
        }
    uint32_t *keys = (uint32_t *)mallocCheck(sizeof(uint32_t) * 2 * R);
    for (int32_t i = 0; i < 2 * R; i++) keys[i] = (uint32_t)rng_u64(&rng);
    int32_t *obs_idx = (int32_t *)mallocCheck(sizeof(int32_t) * NE), *heads0 = (int32_t *)mallocCheck(sizeof(int32_t) * NE);
    uint8_t *flags = (uint8_t *)mallocCheck(NE);
    for (int64_t i = 0; i < NE; i++) {
        obs_idx[i] = rng_int(&rng, S);
        heads0[i] = rng_int(&rng, hp[i / E].n_heads);
        flags[i] = rng_uniform(&rng) < 0.1f ? QF_TERMINAL : 0;
    }

    // ---- CPU reference: every head's row (prior added), the heads, the actions; and the bound
    // Tolerance of a Q value: a dot product of n terms is within n u sum |x_i w_i| (u = eps/2) of
    // exact, and the errors of a layer's inputs pass through |W|: forward with |W| gives the
    // magnitude Qabs, and 2 (w1 + w2 + A + 3) eps (Qabs + c Qabs_prior) bounds both sides' errors.
    const double eps = FLT_EPSILON, kb = 2.0 * (W1 + W2 + A + 3) * eps;
    float *q_ref = (float *)mallocCheck(sizeof(float) * NE * K * A), *q_tol = (float *)mallocCheck(sizeof(float) * NE * K * A);
    int32_t *heads_ref = (int32_t *)mallocCheck(sizeof(int32_t) * NE), *act_ref = (int32_t *)mallocCheck(sizeof(int32_t) * NE);
    int64_t bad_cpu = 0;
    double max_err_d = 0.0;
    for (int64_t i = 0; i < NE; i++) {
        const int64_t r = i / E;
        const int32_t e = (int32_t)(i % E);
        const qf_run_hp &h = hp[r];
        for (int32_t k = 0; k < K; k++) {
            const int64_t g = r * K + k;
            float q[AMAX], qp[AMAX], qa[AMAX], qpa[AMAX];
            forward_cpu(&net, params + g * P, obs_idx[i], 0, q);
            forward_cpu(&net, params + g * P, obs_idx[i], 1, qa);
            forward_cpu(&net, prior + g * P, obs_idx[i], 0, qp);
            forward_cpu(&net, prior + g * P, obs_idx[i], 1, qpa);
            for (int32_t a = 0; a < A; a++) {
                float v = q[a];
                if (h.prior_scale != 0.0f) v += h.prior_scale * qp[a];
                q_ref[(i * K + k) * A + a] = v;
                q_tol[(i * K + k) * A + a] = (float)(kb * (qa[a] + fabsf(h.prior_scale) * qpa[a]) + 1e-30);
            }
        }
        heads_ref[i] = head_of(h, keys, r, e, T_STEP, flags[i], heads0[i]);
        act_ref[i] = select_cpu(h, keys, r, e, T_STEP, q_ref + i * K * A, heads_ref[i]);
        // independent check: the rows read, by the forward in double precision
        int32_t k0, k1;
        rows_read(h, heads_ref[i], &k0, &k1);
        for (int32_t k = k0; k < k1; k++) {
            for (int32_t a = 0; a < A; a++) {
                double tot = 0.0;
                for (int net_i = 0; net_i < 2; net_i++) {
                    const float *W = (net_i ? prior : params) + (r * K + k) * P;
                    double h1[WMAX], h2[WMAX];
                    const int32_t s = obs_idx[i];
                    for (int32_t j = 0; j < W1; j++) {
                        const double v = (double)W[net.off_w[0] + (int64_t)s * W1 + j] + W[net.off_b[0] + j];
                        h1[j] = v > 0.0 ? v : 0.0;
                    }
                    for (int32_t j = 0; j < W2; j++) {
                        double v = W[net.off_b[1] + j];
                        for (int32_t m = 0; m < W1; m++) v += h1[m] * W[net.off_w[1] + (int64_t)m * W2 + j];
                        h2[j] = v > 0.0 ? v : 0.0;
                    }
                    double v = W[net.off_b[2] + a];
                    for (int32_t m = 0; m < W2; m++) v += h2[m] * W[net.off_w[2] + (int64_t)m * A + a];
                    tot += net_i ? (double)h.prior_scale * v : v;
                }
                const double err = fabs(tot - q_ref[(i * K + k) * A + a]);
                max_err_d = err > max_err_d ? err : max_err_d;
                if (err > q_tol[(i * K + k) * A + a] && bad_cpu++ < 10)
                    printf("  MISMATCH Q(f64) env %lld head %d action %d: reference %.9g, double %.9g, tolerance %.3g\n",
                           (long long)i, k, a, q_ref[(i * K + k) * A + a], tot, (double)q_tol[(i * K + k) * A + a]);
            }
        }
    }
    printf("independent check: the Q rows the strategies read against the forward in double: max err %.3g%s\n",
           max_err_d, bad_cpu ? "  FAIL" : "");
    if (!d.ok) return finish_cpu_only("act", d.reason, bad_cpu);
    if (bad_cpu) return finish_gpu("act", bad_cpu);

    // ---- device
    cublasHandle_t blas;
    cublasCheck(cublasCreate(&blas));
    cublasCheck(cublasSetStream(blas, d.stream));
    qf_backend *b = v1_backend(d, blas);
    float *d_params = to_device(params, G * P), *d_prior = to_device(prior, G * P);
    qf_run_hp *d_hp = to_device(hp, R);
    uint32_t *d_keys = to_device(keys, 2 * R);
    int32_t *d_obs = to_device(obs_idx, NE), *d_heads = to_device(heads0, NE), *d_act;
    uint8_t *d_flags = to_device(flags, NE);
    float *d_acts, *d_acts2, *d_q, *d_qp, *d_qout;
    cudaCheck(cudaMalloc((void **)&d_act, sizeof(int32_t) * NE));
    cudaCheck(cudaMalloc((void **)&d_acts, sizeof(float) * G * E * net.H));
    cudaCheck(cudaMalloc((void **)&d_acts2, sizeof(float) * G * E * net.H));
    cudaCheck(cudaMalloc((void **)&d_q, sizeof(float) * G * E * A));
    cudaCheck(cudaMalloc((void **)&d_qp, sizeof(float) * G * E * A));
    cudaCheck(cudaMalloc((void **)&d_qout, sizeof(float) * NE * K * A));

    auto run = [&](int version) {
        if (version == 1) {
            v1Check(b, cu_net_forward(b, &net, d_params, E, NULL, d_obs, d_acts, d_q));
            v1Check(b, cu_net_forward(b, &net, d_prior, E, NULL, d_obs, d_acts2, d_qp));
            v1Check(b, cu_add_prior(b, &net, d_hp, E, d_q, d_qp));
            v1Check(b, cu_act(b, &net, d_hp, E, d_q, d_keys, T_STEP, d_flags, d_heads, d_act));
        } else {
            QF_LAUNCH(act_fused_kernel, (unsigned)((NE + WARPS - 1) / WARPS), 32 * WARPS, 0, d.stream)(
                net, d_hp, E, d_params, d_prior, d_obs, d_keys, T_STEP, d_flags, d_heads, d_act, d_qout);
            launchCheck("act_fused_kernel");
        }
    };
    const int launches[3] = {0, 4 * K + 12, 1};
    // least bytes: the weights of the rows read (parameters and prior), the env's index, flag,
    // head, keys and hyperparameters, the action and head written; flops: their forwards
    double bytes = (double)NE * (4 + 1 + 4 + 8 + 4 + 4) + (double)R * sizeof(qf_run_hp), flops = 0.0;
    const double per_net = 4.0 * (2.0 * W1 + (double)W1 * W2 + W2 + (double)W2 * A + A);
    for (int64_t i = 0; i < NE; i++) {
        int32_t k0, k1;
        rows_read(hp[i / E], heads_ref[i], &k0, &k1);
        const int nets = hp[i / E].prior_scale != 0.0f ? 2 : 1;
        bytes += (double)(k1 - k0) * nets * per_net;
        flops += (double)(k1 - k0) * nets * 2.0 * ((double)W1 * W2 + (double)W2 * A);
    }
    printf("per call: %.2f MB of weights and state read at least, %.4f GFLOP\n", bytes / 1e6, flops / 1e9);

    float *q_dev = (float *)mallocCheck(sizeof(float) * NE * K * A), *q1 = (float *)mallocCheck(sizeof(float) * G * E * A);
    int32_t *heads_out = (int32_t *)mallocCheck(sizeof(int32_t) * NE), *act_out = (int32_t *)mallocCheck(sizeof(int32_t) * NE);
    int64_t bad = 0;
    for (int version = 1; version <= 2; version++) {
        if (want && version != want) continue;
        printf("version %d: checking against the CPU reference\n", version);
        upload(d_heads, heads0, NE);
        cudaCheck(cudaMemset(d_qout, 0xff, sizeof(float) * NE * K * A));
        run(version);
        cudaCheck(cudaStreamSynchronize(d.stream));
        to_host(heads_out, d_heads, NE);
        to_host(act_out, d_act, NE);
        if (version == 1) { // q [G][E][A] -> [R E][K][A]
            to_host(q1, d_q, G * E * A);
            for (int64_t i = 0; i < NE; i++)
                for (int32_t k = 0; k < K; k++)
                    for (int32_t a = 0; a < A; a++)
                        q_dev[(i * K + k) * A + a] = q1[(((i / E) * K + k) * E + i % E) * A + a];
        } else {
            to_host(q_dev, d_qout, NE * K * A);
        }
        int64_t vb = check_equal("heads", heads_out, heads_ref, NE);
        // the Q rows the strategy reads; then the action must be the reference's, or what the
        // reference's selection gives on the device's Q values (a near tie decided by rounding)
        float *sel = (float *)mallocCheck(sizeof(float) * NE * K * A), *sel_ref = (float *)mallocCheck(sizeof(float) * NE * K * A),
              *sel_tol = (float *)mallocCheck(sizeof(float) * NE * K * A);
        int64_t n_sel = 0, near_ties = 0, bad_act = 0;
        for (int64_t i = 0; i < NE; i++) {
            int32_t k0, k1;
            rows_read(hp[i / E], heads_ref[i], &k0, &k1);
            for (int64_t j = (i * K + k0) * A; j < (i * K + k1) * A; j++, n_sel++) {
                sel[n_sel] = q_dev[j];
                sel_ref[n_sel] = q_ref[j];
                sel_tol[n_sel] = q_tol[j];
            }
            if (act_out[i] != act_ref[i]) {
                const int32_t alt = select_cpu(hp[i / E], keys, i / E, (int32_t)(i % E), T_STEP, q_dev + i * K * A, heads_ref[i]);
                if (alt == act_out[i]) near_ties++;
                else if (bad_act++ < 10)
                    printf("  MISMATCH action[%lld]: got %d, reference %d (%d on the device's Q)\n", (long long)i, act_out[i],
                           act_ref[i], alt);
            }
        }
        vb += check_close("Q rows", sel, sel_ref, n_sel, [&](int64_t j) { return (double)sel_tol[j]; });
        printf("  %-12s %11lld values: %lld differ from the reference, %lld of them near ties%s\n", "actions",
               (long long)NE, (long long)(bad_act + near_ties), (long long)near_ties, bad_act ? "  FAIL" : "");
        vb += bad_act;
        free(sel);
        free(sel_ref);
        free(sel_tol);
        bad += vb;
        if (version_failed(version, vb)) continue;
        const float ms = time_ms(d, 100, [&]() {
            run(version);
        });
        report_time(d, version, ms, bytes, flops, launches[version]);
    }
    return finish_gpu("act", bad);
}
