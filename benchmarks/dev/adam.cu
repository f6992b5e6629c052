/* adam.cu — Adam over every parameter of a fleet (the backend's `adam`, kernels/backend.h): kernel
 * versions beside the CPU reference, each checked against it and timed (llm.c dev/cuda pattern).
 *
 *   cmake --build build --target adam && build/benchmarks/dev/adam [VERSION]   (none: every version)
 *
 * The contract: per network g the gradient norm gnorm[g] (sum of squares in double); a run with a
 * non-finite norm is marked diverged before any update; the clipping scale max_grad_norm / gnorm
 * when above; qf_adam (kernels/learn.h) per parameter with the constants qf_adam_consts of the
 * run's step t (bias corrections 1 - b1^t and 1 - b2^t folded into step and ic2); the run's
 * step count adam_t[r] += 1, and the run marked diverged when one of its parameters became
 * non-finite. Heads a run does not use (qf_head_on) keep their state; their gnorm is 0.
 *
 * version 1: the backend today (kernels/cuda/learn_cuda.cu, compiled in): 4 launches — a block per
 *            network for the norms, a thread per run for the divergence mark, a thread per parameter
 *            for the update (64-bit divisions, the two powf of qf_adam_consts and the hp loads per
 *            parameter), and a block
 *            per run that counts the step and re-reads every parameter for the finite check.
 * version 2: 1 launch, a block per run: its K norms (double, fixed tree), the divergence check, the
 *            update with the run's constants computed once, the finite check on the values just
 *            written (no re-read), the step count.
 * version 3: version 2 with float4 loads and stores (scalar head and tail where a network's block
 *            of P floats does not start on 16 bytes).
 *
 * Shapes: R = 1024 runs x K = 10 heads of bsuite's DeepSea-20 MLP (400 one-hot inputs, 50, 50, 2
 * actions): P = 22702 floats per network, 232 M parameters; even runs use all 10 heads
 * (bootstrap), odd runs one head (the other strategies), so 5632 networks learn.
 */
#include "backend_v1.h"

static int32_t R = 1024;             // runs (64 for the CPU-only check)
static int32_t K = 10;               // heads (2 on the CPU shim)
static const int kThreads = 512; // versions 2 and 3: threads per block (one block per run)

// ------------------------------------------------------------------------------------------------
// CPU reference: the contract above, in the CPU backend's order (kernels/cpu/learn_cpu.c), with
// kernels/learn.h's per-element function

static void adam_cpu(const qf_net *n, const qf_run_hp *hp, float *params, const float *grads, float *m, float *v,
                     int32_t *adam_t, int32_t *status, float *gnorm) {
    const int64_t G = (int64_t)n->R * n->K, P = n->P;
    for (int64_t g = 0; g < G; g++) {
        if (!qf_head_on(n, g)) {
            gnorm[g] = 0.0f;
            continue;
        }
        double ss = 0.0;
        for (int64_t j = 0; j < P; j++) ss += (double)grads[g * P + j] * grads[g * P + j];
        gnorm[g] = (float)sqrt(ss);
    }
    for (int32_t r = 0; r < n->R; r++)
        for (int32_t k = 0; k < n->K; k++)
            if (!isfinite(gnorm[(int64_t)r * n->K + k])) status[r] = QF_RUN_DIVERGED;
    for (int64_t g = 0; g < G; g++) {
        const int64_t r = g / n->K;
        if (status[r] != QF_RUN_OK || !qf_head_on(n, g)) continue;
        const qf_run_hp *h = &hp[r];
        const qf_adam_k ak = qf_adam_consts(h, adam_t[r] + 1);
        const float scale = qf_clip_scale(h, gnorm[g]);
        for (int64_t j = 0; j < P; j++)
            qf_adam(&params[g * P + j], grads[g * P + j], &m[g * P + j], &v[g * P + j], ak, scale);
    }
    for (int32_t r = 0; r < n->R; r++) {
        if (status[r] != QF_RUN_OK) continue;
        adam_t[r] += 1;
        for (int64_t j = 0; j < P * n->K; j++)
            if (!isfinite(params[(int64_t)r * n->K * P + j])) {
                status[r] = QF_RUN_DIVERGED;
                break;
            }
    }
}

// ------------------------------------------------------------------------------------------------
// versions 2 and 3: one block per run

// Sum of a block's doubles in a fixed tree; every thread gets the total.
__device__ static double block_sum(double x, double *part) {
    part[threadIdx.x] = x;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    const double total = part[0];
    __syncthreads();
    return total;
}

// The first index j of a network's block at which &x[j] is 16-byte aligned (VEC == 4), or 0.
template <int VEC> __device__ static int64_t aligned_start(const float *x, int64_t P) {
    if (VEC == 1) return 0;
    const int64_t mis = (int64_t)(((uintptr_t)x >> 2) & 3u);
    const int64_t head = mis ? 4 - mis : 0;
    return head < P ? head : P;
}

template <int VEC>
__global__ void __launch_bounds__(kThreads) adam_run_kernel(qf_net n, const qf_run_hp *hps, float *params,
                                                           const float *grads, float *m, float *v, int32_t *adam_t,
                                                           int32_t *status, float *gnorm) {
    __shared__ double part[kThreads];
    __shared__ float scale_s[QF_MAX_HEADS];
    const int64_t r = blockIdx.x, P = n.P;
    const int32_t K = n.K, tid = threadIdx.x;
    // 1. the norms of the run's heads (also for a diverged run, as the contract says)
    int finite = 1;
    const qf_run_hp h = hps[r];
    for (int32_t k = 0; k < K; k++) {
        const int64_t g = r * K + k;
        if (!qf_head_on(&n, g)) { // uniform across the block
            if (tid == 0) gnorm[g] = 0.0f;
            continue;
        }
        const float *gg = grads + g * P;
        const int64_t j0 = aligned_start<VEC>(gg, P), nvec = VEC == 4 ? (P - j0) / 4 : 0, j1 = j0 + 4 * nvec;
        double acc = 0.0;
        if (VEC == 4) {
            for (int64_t j = tid; j < j0; j += kThreads) acc += (double)gg[j] * gg[j];
            const float4 *g4 = (const float4 *)(gg + j0);
            for (int64_t i = tid; i < nvec; i += kThreads) {
                const float4 x = g4[i];
                acc += (double)x.x * x.x + (double)x.y * x.y + (double)x.z * x.z + (double)x.w * x.w;
            }
        }
        for (int64_t j = (VEC == 4 ? j1 : 0) + tid; j < P; j += kThreads) acc += (double)gg[j] * gg[j];
        const float norm = (float)sqrt(block_sum(acc, part));
        if (tid == 0) gnorm[g] = norm;
        finite &= isfinite(norm);
        if (tid == 0) scale_s[k] = qf_clip_scale(&h, norm);
    }
    if (status[r] != QF_RUN_OK) return; // uniform: status[r] is only written below, after a barrier
    __syncthreads();                    // every thread has read status[r]; scale_s is written
    if (!finite) {
        if (tid == 0) status[r] = QF_RUN_DIVERGED;
        return;
    }
    // 2. the update, with the run's constants once
    const qf_adam_k ak = qf_adam_consts(&h, adam_t[r] + 1);
    int my_bad = 0;
    for (int32_t k = 0; k < K; k++) {
        const int64_t g = r * K + k;
        if (!qf_head_on(&n, g)) continue;
        const float scale = scale_s[k];
        float *pg = params + g * P, *mg = m + g * P, *vg = v + g * P;
        const float *gg = grads + g * P;
        const int64_t j0 = aligned_start<VEC>(pg, P), nvec = VEC == 4 ? (P - j0) / 4 : 0, j1 = j0 + 4 * nvec;
        if (VEC == 4) {
            for (int64_t j = tid; j < j0; j += kThreads) {
                qf_adam(&pg[j], gg[j], &mg[j], &vg[j], ak, scale);
                my_bad |= !isfinite(pg[j]);
            }
            float4 *p4 = (float4 *)(pg + j0), *m4 = (float4 *)(mg + j0), *v4 = (float4 *)(vg + j0);
            const float4 *g4 = (const float4 *)(gg + j0);
            for (int64_t i = tid; i < nvec; i += kThreads) {
                float4 p = p4[i], mm = m4[i], vv = v4[i];
                const float4 gr = g4[i];
                qf_adam(&p.x, gr.x, &mm.x, &vv.x, ak, scale);
                qf_adam(&p.y, gr.y, &mm.y, &vv.y, ak, scale);
                qf_adam(&p.z, gr.z, &mm.z, &vv.z, ak, scale);
                qf_adam(&p.w, gr.w, &mm.w, &vv.w, ak, scale);
                p4[i] = p;
                m4[i] = mm;
                v4[i] = vv;
                my_bad |= !isfinite(p.x) | !isfinite(p.y) | !isfinite(p.z) | !isfinite(p.w);
            }
        }
        for (int64_t j = (VEC == 4 ? j1 : 0) + tid; j < P; j += kThreads) {
            qf_adam(&pg[j], gg[j], &mg[j], &vg[j], ak, scale);
            my_bad |= !isfinite(pg[j]);
        }
    }
    const int bad = __syncthreads_or(my_bad); // also: every thread has read adam_t[r]
    if (tid == 0) {
        adam_t[r] += 1;
        if (bad) status[r] = QF_RUN_DIVERGED;
    }
}

// ------------------------------------------------------------------------------------------------
// inputs, checks, timing

typedef struct fleet_state {
    float *params, *grads, *m, *v, *gnorm;
    int32_t *adam_t, *status;
} fleet_state;

int main(int argc, char **argv) {
    const int want = parse_version(argc, argv, 3);
    dev_info d = dev_open();
    if (!d.ok) R = 64; // no device: the CPU reference and its independent check only, kept cheap
    if (d.emulated) { // the CPU shim: a small fleet (runs 5, 7 and 11 carry the divergence cases below)
        R = 12;
        K = 2;
    }
    qf_net net;
    memset(&net, 0, sizeof net);
    net.R = R;
    net.K = K;
    net.L = 3;
    net.embed = 0;
    net.w[0] = 400;
    net.w[1] = 50;
    net.w[2] = 50;
    net.w[3] = 2;
    qf_net_layout(&net);
    const int64_t G = (int64_t)R * K, P = net.P, N = G * P;
    printf("adam: %sR=%d runs x K=%d heads, MLP 400-50-50-2 (P=%lld floats per network), %lld parameters\n",
           d.ok ? "" : "(CPU-only check, smaller fleet) ", R, K,
           (long long)P, (long long)N);

    // ---- inputs (fixed seed): per-run hyperparameters, active heads, state, a few divergences
    dev_rng rng = {20261125};
    qf_run_hp *hp = (qf_run_hp *)mallocCheck(sizeof(qf_run_hp) * R);
    int32_t *active = (int32_t *)mallocCheck(sizeof(int32_t) * R);
    fleet_state in;
    in.params = (float *)mallocCheck(sizeof(float) * N);
    in.grads = (float *)mallocCheck(sizeof(float) * N);
    in.m = (float *)mallocCheck(sizeof(float) * N);
    in.v = (float *)mallocCheck(sizeof(float) * N);
    in.gnorm = (float *)mallocCheck(sizeof(float) * G);
    in.adam_t = (int32_t *)mallocCheck(sizeof(int32_t) * R);
    in.status = (int32_t *)mallocCheck(sizeof(int32_t) * R);
    for (int32_t r = 0; r < R; r++) {
        qf_run_hp *h = &hp[r];
        memset(h, 0, sizeof *h);
        h->lr = expf(rng_range(&rng, logf(1e-4f), logf(1e-2f)));
        h->adam_b1 = (r % 3 == 0) ? 0.5f : 0.9f;
        h->adam_b2 = (r % 5 == 0) ? 0.99f : 0.999f;
        h->adam_eps = (r % 7 == 0) ? 1e-5f : 1e-8f;
        h->max_grad_norm = (r % 4 == 0) ? 0.0f : (r % 4 == 1 ? 0.5f : 10.0f); // off, clipping, not reached
        active[r] = (r % 2 == 0) ? K : 1;
        in.adam_t[r] = rng_int(&rng, 2000);
        in.status[r] = QF_RUN_OK;
    }
    for (int64_t i = 0; i < N; i++) {
        in.params[i] = rng_range(&rng, -0.1f, 0.1f);
        in.grads[i] = rng_range(&rng, -0.017f, 0.017f); // uniform: 464 M normal draws would cost seconds
        in.m[i] = rng_range(&rng, -0.005f, 0.005f);
        in.v[i] = 1e-4f * rng_uniform(&rng);
    }
    in.status[5] = QF_RUN_DIVERGED;             // already frozen
    in.grads[(int64_t)7 * K * P + 123] = NAN;   // diverges before the update
    hp[11].lr = 1e38f;                          // a parameter overflows: diverges after the update
    in.params[(int64_t)11 * K * P + 7] = -3e38f;
    in.grads[(int64_t)11 * K * P + 7] = 1.0f;
    for (int64_t g = 0; g < G; g++) in.gnorm[g] = -1.0f;
    net.active = active;

    // ---- CPU reference
    fleet_state ref;
    ref.params = (float *)mallocCheck(sizeof(float) * N);
    ref.m = (float *)mallocCheck(sizeof(float) * N);
    ref.v = (float *)mallocCheck(sizeof(float) * N);
    ref.gnorm = (float *)mallocCheck(sizeof(float) * G);
    ref.adam_t = (int32_t *)mallocCheck(sizeof(int32_t) * R);
    ref.status = (int32_t *)mallocCheck(sizeof(int32_t) * R);
    memcpy(ref.params, in.params, sizeof(float) * N);
    memcpy(ref.m, in.m, sizeof(float) * N);
    memcpy(ref.v, in.v, sizeof(float) * N);
    memcpy(ref.adam_t, in.adam_t, sizeof(int32_t) * R);
    memcpy(ref.status, in.status, sizeof(int32_t) * R);
    adam_cpu(&net, hp, ref.params, in.grads, ref.m, ref.v, ref.adam_t, ref.status, ref.gnorm);
    printf("CPU reference: runs diverged after the step: 5 (given) %s, 7 (NaN gradient) %s, 11 (overflow) %s\n",
           ref.status[5] ? "yes" : "NO", ref.status[7] ? "yes" : "NO", ref.status[11] ? "yes" : "NO");

    // Tolerances (float32, eps = 2^-23). m and v: the gradient scale may differ by an ulp (the
    // norm is a double sum in another order, rounded to float): 8 eps of the terms' magnitudes.
    // params: the step p' - p has the relative error of the bias corrections c = 1 - b^t
    // (qf_adam_consts), where b^t comes from powf (CUDA: 4 ulp; glibc: 1 ulp) and 1 - b^t cancels
    // for small t: 5 ulp(b^t) / c1 + 0.5 * 5 ulp(b^t) / c2 (the square root halves it), plus 16 eps
    // for the other roundings, plus an ulp of the result either side.
    const double eps = FLT_EPSILON, ulp_b = 0x1.0p-24;
    double *step_rel = (double *)mallocCheck(sizeof(double) * R);
    for (int32_t r = 0; r < R; r++) {
        const double t = (double)in.adam_t[r] + 1.0;
        const double c1 = 1.0 - pow(hp[r].adam_b1, t), c2 = 1.0 - pow(hp[r].adam_b2, t);
        step_rel[r] = 16.0 * eps + 5.0 * ulp_b / c1 + 0.5 * 5.0 * ulp_b / c2;
    }
    auto tol_m = [&](int64_t i) {
        const qf_run_hp &h = hp[i / (K * P)];
        return 8.0 * eps * (fabs(h.adam_b1 * (double)in.m[i]) + fabs((1.0 - h.adam_b1) * (double)in.grads[i])) + 1e-37;
    };
    // m' may cancel (b1 m and (1 - b1) g of opposite signs), so its absolute error tol_m, through
    // the step lr / c1 and the denominator sqrt(v' / c2) + eps, bounds the step's error as well
    auto tol_p = [&](const float *p_ref, int64_t i) {
        const int64_t r = i / (K * P);
        const qf_run_hp &h = hp[r];
        const double t = (double)in.adam_t[r] + 1.0;
        const double c1 = 1.0 - pow(h.adam_b1, t), c2 = 1.0 - pow(h.adam_b2, t);
        const double den = sqrt(fabs((double)ref.v[i]) / c2) + h.adam_eps;
        const double step = fabs((double)p_ref[i] - (double)in.params[i]);
        return step_rel[r] * step + (double)h.lr / c1 * tol_m(i) / den + 2.0 * eps * fabs((double)p_ref[i]);
    };
    auto tol_v = [&](int64_t i) {
        const qf_run_hp &h = hp[i / (K * P)];
        const double g = in.grads[i];
        return 8.0 * eps * (h.adam_b2 * (double)in.v[i] + (1.0 - h.adam_b2) * g * g) + 1e-37;
    };

    // ---- independent check of the reference: the same contract in double precision
    int64_t bad_cpu = 0;
    {
        float *pd = (float *)mallocCheck(sizeof(float) * N);
        memcpy(pd, in.params, sizeof(float) * N);
        int64_t checked = 0;
        for (int32_t r = 0; r < R; r++) {
            if (in.status[r] != QF_RUN_OK || r == 7) continue; // frozen runs: nothing to compare
            const qf_run_hp &h = hp[r];
            const double t = (double)in.adam_t[r] + 1.0;
            const double c1 = 1.0 - pow(h.adam_b1, t), c2 = 1.0 - pow(h.adam_b2, t);
            for (int32_t k = 0; k < active[r]; k++) {
                const int64_t g = (int64_t)r * K + k, base = g * P;
                double ss = 0.0;
                for (int64_t j = 0; j < P; j++) ss += (double)in.grads[base + j] * in.grads[base + j];
                const double norm = sqrt(ss);
                const double scale = (h.max_grad_norm > 0.0f && norm > h.max_grad_norm) ? h.max_grad_norm / norm : 1.0;
                for (int64_t j = 0; j < P; j++) {
                    const double gr = in.grads[base + j] * scale;
                    const double mm = h.adam_b1 * (double)in.m[base + j] + (1.0 - h.adam_b1) * gr;
                    const double vv = h.adam_b2 * (double)in.v[base + j] + (1.0 - h.adam_b2) * gr * gr;
                    pd[base + j] = (float)(in.params[base + j] - h.lr * (mm / c1) / (sqrt(vv / c2) + h.adam_eps));
                }
                checked += P;
            }
        }
        printf("independent check: the float reference against Adam in double precision (%lld parameters)\n",
               (long long)checked);
        // compare only where the double version wrote (frozen runs and unused heads keep their values)
        bad_cpu += check_close("params(f64)", ref.params, pd, N, [&](int64_t i) { return tol_p(pd, i); });
        free(pd);
    }

    if (!d.ok) return finish_cpu_only("adam", d.reason, bad_cpu);
    if (bad_cpu) return finish_gpu("adam", bad_cpu);

    // ---- device
    cublasHandle_t blas;
    cublasCheck(cublasCreate(&blas));
    cublasCheck(cublasSetStream(blas, d.stream));
    qf_backend *b = v1_backend(d, blas);
    fleet_state dv;
    dv.params = to_device(in.params, N);
    dv.grads = to_device(in.grads, N);
    dv.m = to_device(in.m, N);
    dv.v = to_device(in.v, N);
    dv.gnorm = to_device(in.gnorm, G);
    dv.adam_t = to_device(in.adam_t, R);
    dv.status = to_device(in.status, R);
    qf_run_hp *d_hp = to_device(hp, R);
    int32_t *d_active = to_device(active, R);
    qf_net dnet = net;
    dnet.active = d_active;

    auto reset = [&]() {
        upload(dv.params, in.params, N);
        upload(dv.m, in.m, N);
        upload(dv.v, in.v, N);
        upload(dv.gnorm, in.gnorm, G);
        upload(dv.adam_t, in.adam_t, R);
        upload(dv.status, in.status, R);
    };
    auto run = [&](int version) {
        if (version == 1) {
            v1Check(b, cu_adam(b, &dnet, d_hp, dv.params, dv.grads, dv.m, dv.v, dv.adam_t, dv.status, dv.gnorm));
        } else if (version == 2) {
            QF_LAUNCH(adam_run_kernel<1>, R, kThreads, 0, d.stream)(dnet, d_hp, dv.params, dv.grads, dv.m, dv.v, dv.adam_t,
                                                             dv.status, dv.gnorm);
            launchCheck("adam_run_kernel<1>");
        } else {
            QF_LAUNCH(adam_run_kernel<4>, R, kThreads, 0, d.stream)(dnet, d_hp, dv.params, dv.grads, dv.m, dv.v, dv.adam_t,
                                                             dv.status, dv.gnorm);
            launchCheck("adam_run_kernel<4>");
        }
    };
    const int launches[4] = {0, 4, 1, 1};

    // bytes every version must move: read grads twice (norm, update), read p, m, v, write p, m, v,
    // for the networks that learn; flops: 2 per parameter for the norm, ~16 for the update
    int64_t learning = 0;
    for (int32_t r = 0; r < R; r++) learning += active[r];
    const double n_learn = (double)learning * P, bytes = n_learn * 4.0 * 8.0, flops = n_learn * 18.0;
    printf("per call: %.0f learning parameters, %.2f GB moved at least, %.2f GFLOP\n", n_learn, bytes / 1e9,
           flops / 1e9);

    fleet_state out;
    out.params = (float *)mallocCheck(sizeof(float) * N);
    out.m = (float *)mallocCheck(sizeof(float) * N);
    out.v = (float *)mallocCheck(sizeof(float) * N);
    out.gnorm = (float *)mallocCheck(sizeof(float) * G);
    out.adam_t = (int32_t *)mallocCheck(sizeof(int32_t) * R);
    out.status = (int32_t *)mallocCheck(sizeof(int32_t) * R);
    int64_t bad = 0;
    for (int version = 1; version <= 3; version++) {
        if (want && version != want) continue;
        printf("version %d: checking against the CPU reference\n", version);
        reset();
        run(version);
        cudaCheck(cudaStreamSynchronize(d.stream));
        to_host(out.params, dv.params, N);
        to_host(out.m, dv.m, N);
        to_host(out.v, dv.v, N);
        to_host(out.gnorm, dv.gnorm, G);
        to_host(out.adam_t, dv.adam_t, R);
        to_host(out.status, dv.status, R);
        int64_t vb = 0;
        vb += check_close_ar("gnorm", out.gnorm, ref.gnorm, G, 0.0, 2.0 * eps);
        vb += check_close("params", out.params, ref.params, N, [&](int64_t i) { return tol_p(ref.params, i); });
        vb += check_close("adam_m", out.m, ref.m, N, tol_m);
        vb += check_close("adam_v", out.v, ref.v, N, tol_v);
        vb += check_equal("adam_t", out.adam_t, ref.adam_t, R);
        vb += check_equal("status", out.status, ref.status, R);
        bad += vb;
        if (version_failed(version, vb)) continue;
        reset();
        const float ms = time_ms(d, 20, [&]() { run(version); });
        report_time(d, version, ms, bytes, flops, launches[version]);
    }
    return finish_gpu("adam", bad);
}
