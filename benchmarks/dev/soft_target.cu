/* soft_target.cu — the TD step with soft targets (the backend's `td` after `add_prior`,
 * kernels/backend.h): y = r + beta r_int + gamma (1 - done) alpha logsumexp(Q_target(s', .) / alpha)
 * (hard max at alpha = 0; double Q: Q_target(s', argmax_a Q(s', a)) at alpha = 0), the loss
 * gradient per (transition, head) under the bootstrap mask, and the per-network means. Kernel
 * versions beside the CPU reference, each checked against it and timed (llm.c dev/cuda pattern).
 *
 *   cmake --build build --target soft_target && build/benchmarks/dev/soft_target [VERSION]
 *
 * Every version calls qf_td_one (kernels/learn.h) per transition: the math is written once.
 *
 * version 1: the backend today (kernels/cuda/learn_cuda.cu, compiled in): add_prior on Q(s, .),
 *            Q_target(s', .) and Q(s', .) (3 launches, each a read-modify-write of its array), then
 *            td_kernel: one thread per network walking its B transitions (neighbouring threads read
 *            rows B*A floats apart: uncoalesced).
 * version 2: add_prior as in version 1, then one warp per network, lanes over transitions
 *            (coalesced rows), the sums reduced by a fixed shuffle tree.
 * version 3: one launch: version 2 with the randomized prior added while the rows are loaded
 *            (q + prior_scale * q_prior, the same operations as add_prior), so the three Q arrays
 *            are read once and never written.
 *
 * Shapes: R = 1024 runs x K = 10 heads, batch B = 128, A = 2 actions (DeepSea); per run a
 * temperature alpha in {0, 0.01, 0.1, 1}, double Q on every third run, Huber or squared loss,
 * prior_scale 3 on even runs, bootstrap masks p = 0.5, 10% terminal transitions.
 */
#include "backend_v1.h"

static int32_t R = 1024; // runs (64 for the CPU-only check)
static const int32_t K = 10, B = 128, A = 2;
#define AMAX 8           // versions 2 and 3 keep a transition's rows in registers: A <= AMAX

// ------------------------------------------------------------------------------------------------
// CPU reference: add_prior then td, with the per-network bodies the CPU backend runs
// (kernels/learn.h: qf_add_prior_net, qf_td_net), network after network

static void add_prior_cpu(const qf_net *n, const qf_run_hp *hp, float *q, const float *qp) {
    for (int64_t g = 0; g < (int64_t)n->R * n->K; g++) qf_add_prior_net(n, hp, g, B, q, qp);
}

static void td_cpu(const qf_net *n, const qf_run_hp *hp, const qf_sample *s, const float *q, const float *qt,
                   const float *qo, float *dq, float *loss, float *qmean, float *imean) {
    for (int64_t g = 0; g < (int64_t)n->R * n->K; g++) qf_td_net(n, hp, g, B, s, q, qt, qo, dq, loss, qmean, imean);
}

// ------------------------------------------------------------------------------------------------
// versions 2 and 3: one warp per network

template <bool PRIOR>
__global__ void td_warp_kernel(qf_net n, const qf_run_hp *hps, qf_sample s, const float *q, const float *qt,
                               const float *qo, const float *qp, const float *qpt, const float *qpo, float *dq,
                               float *loss, float *qmean, float *imean) {
    const int64_t G = (int64_t)n.R * n.K;
    const int lane = threadIdx.x & 31;
    const int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t g = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; g < G; g += warps) {
        const int64_t r = g / n.K, k = g % n.K;
        const qf_run_hp h = hps[r];
        const float c = PRIOR ? h.prior_scale : 0.0f;
        float lsum = 0.0f, qsum = 0.0f, isum = 0.0f;
        for (int32_t j = lane; j < B; j += 32) {
            const int64_t row = (g * B + j) * A, t = r * B + j;
            float qa[AMAX], qta[AMAX], qoa[AMAX], dqa[AMAX];
            for (int32_t a = 0; a < A; a++) {
                qa[a] = q[row + a];
                qta[a] = qt[row + a];
                qoa[a] = qo ? qo[row + a] : 0.0f;
                if (PRIOR && c != 0.0f) { // add_prior's q[i] += c * qp[i], operation for operation
                    qa[a] += c * qp[row + a];
                    qta[a] += c * qpt[row + a];
                    if (qo) qoa[a] += c * qpo[row + a];
                }
            }
            const int32_t act = s.action[t];
            const float w = (float)((s.mask[t] >> k) & 1u), bonus = h.beta * s.intr[t];
            lsum += qf_td_one(&h, A, B, qa, qta, qo ? qoa : NULL, act, s.reward[t] + bonus, s.terminal[t], w, dqa);
            qsum += qa[act];
            isum += bonus;
            for (int32_t a = 0; a < A; a++) dq[row + a] = dqa[a];
        }
        for (int o = 16; o > 0; o >>= 1) { // fixed tree: lane 0 ends with the sum, the same every run
            lsum += __shfl_down_sync(0xffffffffu, lsum, o);
            qsum += __shfl_down_sync(0xffffffffu, qsum, o);
            isum += __shfl_down_sync(0xffffffffu, isum, o);
        }
        if (lane == 0) {
            loss[g] = lsum / (float)B;
            qmean[g] = qsum / (float)B;
            if (k == 0) imean[r] = isum / (float)B;
        }
    }
}

// ------------------------------------------------------------------------------------------------
// the TD step in double precision: the independent check of the reference

static void td_double(const qf_run_hp &h, const float *q, const float *qt, const float *qo, int32_t act, double reward,
                      int terminal, double w, double *dq_act, double *loss) {
    double v;
    if (h.double_q && qo && h.alpha <= 0.0f) {
        int32_t best = 0;
        for (int32_t a = 1; a < A; a++)
            if (qo[a] > qo[best]) best = a;
        v = qt[best];
    } else if (h.alpha <= 0.0f) {
        v = qt[0];
        for (int32_t a = 1; a < A; a++) v = qt[a] > v ? qt[a] : v;
    } else { // the naive form: no max subtracted (|q / alpha| stays far below exp's range here)
        double z = 0.0;
        for (int32_t a = 0; a < A; a++) z += exp((double)qt[a] / h.alpha);
        v = h.alpha * log(z);
    }
    const double y = terminal ? reward : reward + (double)h.gamma * v, delta = q[act] - y;
    const double hub = h.huber, ad = fabs(delta);
    const double gr = h.loss == QF_LOSS_SQUARED ? delta : (delta > hub ? hub : (delta < -hub ? -hub : delta));
    *dq_act = w * gr / B;
    *loss = w * ((h.loss == QF_LOSS_SQUARED || ad <= hub) ? 0.5 * delta * delta : hub * (ad - 0.5 * hub));
}

int main(int argc, char **argv) {
    const int want = parse_version(argc, argv, 3);
    dev_info d = dev_open();
    if (!d.ok) R = 64; // no device: the CPU reference and its independent check only
    if (d.emulated) R = 4; // the CPU shim: every version checked on a small fleet
    qf_net net;
    memset(&net, 0, sizeof net);
    net.R = R;
    net.K = K;
    net.L = 1;
    net.embed = 1;
    net.w[0] = 400;
    net.w[1] = A;
    qf_net_layout(&net);
    const int64_t G = (int64_t)R * K, NQ = G * B * A, NS = (int64_t)R * B;
    printf("soft_target: %sR=%d runs x K=%d heads, batch %d, %d actions: %lld transitions x heads\n",
           d.ok ? "" : "(CPU-only check, smaller fleet) ", R, K, B, A, (long long)(G * B));

    // ---- inputs (fixed seed)
    dev_rng rng = {6};
    qf_run_hp *hp = (qf_run_hp *)mallocCheck(sizeof(qf_run_hp) * R);
    const float alphas[4] = {0.0f, 0.01f, 0.1f, 1.0f};
    for (int32_t r = 0; r < R; r++) {
        qf_run_hp *h = &hp[r];
        memset(h, 0, sizeof *h);
        h->alpha = alphas[r % 4];
        h->gamma = rng_range(&rng, 0.9f, 0.999f);
        h->double_q = r % 3 == 0;
        h->loss = (r / 4) % 2 ? QF_LOSS_SQUARED : QF_LOSS_HUBER;
        h->huber = 1.0f;
        h->beta = r % 5 == 0 ? 0.0f : 0.1f;
        h->prior_scale = r % 2 == 0 ? 3.0f : 0.0f;
        h->n_heads = K;
    }
    float *qin[6]; // q, qt, qo, qp, qpt, qpo [G][B][A]
    for (int i = 0; i < 6; i++) {
        qin[i] = (float *)mallocCheck(sizeof(float) * NQ);
        const float scale = i < 3 ? 2.0f : 0.3f; // Q values, then prior outputs
        for (int64_t e = 0; e < NQ; e++) qin[i][e] = scale * rng_range(&rng, -1.0f, 1.0f);
    }
    qf_sample s;
    memset(&s, 0, sizeof s);
    s.R = R;
    s.C = B;
    s.action = (int32_t *)mallocCheck(sizeof(int32_t) * NS);
    s.reward = (float *)mallocCheck(sizeof(float) * NS);
    s.terminal = (uint8_t *)mallocCheck(NS);
    s.mask = (qf_mask *)mallocCheck(sizeof(qf_mask) * NS);
    s.intr = (float *)mallocCheck(sizeof(float) * NS);
    for (int64_t t = 0; t < NS; t++) {
        s.action[t] = rng_int(&rng, A);
        s.reward[t] = rng_uniform(&rng) < 0.1f ? 1.0f : -0.01f;
        s.terminal[t] = rng_uniform(&rng) < 0.1f;
        qf_mask m = 0;
        for (int32_t k = 0; k < K; k++) m |= (qf_mask)(rng_uniform(&rng) < 0.5f ? 1u : 0u) << k;
        s.mask[t] = m;
        s.intr[t] = rng_uniform(&rng);
    }

    // ---- CPU reference (priors added into copies, as the backend's add_prior does in place)
    float *qr = (float *)mallocCheck(sizeof(float) * NQ), *qtr = (float *)mallocCheck(sizeof(float) * NQ),
          *qor = (float *)mallocCheck(sizeof(float) * NQ);
    memcpy(qr, qin[0], sizeof(float) * NQ);
    memcpy(qtr, qin[1], sizeof(float) * NQ);
    memcpy(qor, qin[2], sizeof(float) * NQ);
    add_prior_cpu(&net, hp, qr, qin[3]);
    add_prior_cpu(&net, hp, qtr, qin[4]);
    add_prior_cpu(&net, hp, qor, qin[5]);
    float *dq_ref = (float *)mallocCheck(sizeof(float) * NQ), *loss_ref = (float *)mallocCheck(sizeof(float) * G),
          *qmean_ref = (float *)mallocCheck(sizeof(float) * G), *imean_ref = (float *)mallocCheck(sizeof(float) * R);
    td_cpu(&net, hp, &s, qr, qtr, qor, dq_ref, loss_ref, qmean_ref, imean_ref);

    // Tolerances (float32, eps = 2^-23), from the reference's magnitudes. The soft value
    // m + alpha log(sum exp((q - m) / alpha)): expf within 2 ulp on CUDA (1 on glibc), logf within 1,
    // so |dv| <= 8 eps (max|q| + alpha (1 + log A)); the max and the double-Q pick are exact. Then
    // y = r + gamma v and delta = q_a - y add a rounding each: tol_delta = gamma tol_v +
    // 4 eps (|r| + gamma |v| + |q_a|). dq = w clip(delta) / B (clip is 1-Lipschitz, B a power of 2):
    // w tol_delta / B. Sums of B terms in another order (versions 2, 3): B eps sum |terms| (the
    // classic bound (n-1) u sum |x_i|), plus each term's own error (the loss is Lipschitz with
    // constant max(|delta|, huber)).
    const double eps = FLT_EPSILON;
    float *dq_tol = (float *)mallocCheck(sizeof(float) * NQ);
    float *loss_tol = (float *)mallocCheck(sizeof(float) * G), *qmean_tol = (float *)mallocCheck(sizeof(float) * G),
          *imean_tol = (float *)mallocCheck(sizeof(float) * R);
    double max_dq_err = 0.0, max_loss_err = 0.0; // reference against the double TD
    int64_t bad_cpu = 0;
    for (int64_t g = 0; g < G; g++) {
        const int64_t r = g / K, k = g % K;
        const qf_run_hp &h = hp[r];
        double lterm = 0.0, ltol = 0.0, qabs = 0.0, iabs = 0.0, lsum_d = 0.0;
        for (int32_t j = 0; j < B; j++) {
            const int64_t row = (g * B + j) * A, t = r * B + j;
            double mabs = 0.0; // max |Q_target(s', a)|: bounds the max and the double-Q pick alike
            for (int32_t a = 0; a < A; a++) mabs = fabs(qtr[row + a]) > mabs ? fabs(qtr[row + a]) : mabs;
            const double tol_v = h.alpha > 0.0f ? 8.0 * eps * (mabs + h.alpha * (1.0 + log((double)A))) : 0.0;
            const double v = mabs + h.alpha * log((double)A); // bound on |v|
            const double rew = (double)s.reward[t] + (double)(h.beta * s.intr[t]);
            const int32_t act = s.action[t];
            const double tol_delta = h.gamma * tol_v + 4.0 * eps * (fabs(rew) + h.gamma * v + fabs(qr[row + act]));
            const double w = (double)((s.mask[t] >> k) & 1u);
            for (int32_t a = 0; a < A; a++) dq_tol[row + a] = (float)(w * tol_delta / B + 1e-30);
            double dq_d, loss_d;
            td_double(h, qr + row, qtr + row, qor + row, act, rew, s.terminal[t], w, &dq_d, &loss_d);
            const double delta_bound = 2.0 * B * fabs(dq_d) / (w > 0.0 ? w : 1.0) + h.huber + 1.0;
            lterm += loss_d;
            ltol += w * delta_bound * tol_delta + 2.0 * eps * loss_d;
            lsum_d += loss_d;
            qabs += fabs(qr[row + act]);
            iabs += fabs(h.beta * s.intr[t]);
            // independent check: dq of the taken action against the double TD
            const double e = fabs((double)dq_ref[row + act] - dq_d);
            max_dq_err = e > max_dq_err ? e : max_dq_err;
            if (e > dq_tol[row + act] && bad_cpu++ < 10)
                printf("  MISMATCH dq(f64) network %lld transition %d: reference %.9g, double %.9g, tolerance %.3g\n",
                       (long long)g, j, dq_ref[row + act], dq_d, (double)dq_tol[row + act]);
        }
        loss_tol[g] = (float)((B * eps * lterm + ltol) / B);
        qmean_tol[g] = (float)(B * eps * qabs / B);
        if (k == 0) imean_tol[r] = (float)(B * eps * iabs / B + 1e-30);
        const double el = fabs((double)loss_ref[g] - lsum_d / B);
        max_loss_err = el > max_loss_err ? el : max_loss_err;
        if (el > loss_tol[g] && bad_cpu++ < 10)
            printf("  MISMATCH loss(f64)[%lld]: reference %.9g, double %.9g, tolerance %.3g\n", (long long)g,
                   loss_ref[g], lsum_d / B, (double)loss_tol[g]);
    }
    printf("independent check: the reference's TD step against a double-precision TD with a naive logsumexp: "
           "max |dq err| %.3g, max |loss err| %.3g%s\n",
           max_dq_err, max_loss_err, bad_cpu ? "  FAIL" : "");

    if (!d.ok) return finish_cpu_only("soft_target", d.reason, bad_cpu);
    if (bad_cpu) return finish_gpu("soft_target", bad_cpu);

    // ---- device
    cublasHandle_t blas;
    cublasCheck(cublasCreate(&blas));
    cublasCheck(cublasSetStream(blas, d.stream));
    qf_backend *b = v1_backend(d, blas);
    float *dqin[6];
    for (int i = 0; i < 6; i++) dqin[i] = to_device(qin[i], NQ);
    qf_run_hp *d_hp = to_device(hp, R);
    qf_sample ds = s;
    ds.action = to_device(s.action, NS);
    ds.reward = to_device(s.reward, NS);
    ds.terminal = to_device(s.terminal, NS);
    ds.mask = to_device(s.mask, NS);
    ds.intr = to_device(s.intr, NS);
    float *d_dq, *d_loss, *d_qmean, *d_imean;
    cudaCheck(cudaMalloc((void **)&d_dq, sizeof(float) * NQ));
    cudaCheck(cudaMalloc((void **)&d_loss, sizeof(float) * G));
    cudaCheck(cudaMalloc((void **)&d_qmean, sizeof(float) * G));
    cudaCheck(cudaMalloc((void **)&d_imean, sizeof(float) * R));

    auto reset = [&]() { // versions 1 and 2 add the priors in place
        for (int i = 0; i < 3; i++) upload(dqin[i], qin[i], NQ);
        cudaCheck(cudaMemset(d_dq, 0xff, sizeof(float) * NQ)); // NaN: every value must be written
    };
    const int warps_per_block = 8;
    const unsigned warp_blocks = (unsigned)((G + warps_per_block - 1) / warps_per_block);
    auto run = [&](int version) {
        if (version <= 2) {
            for (int i = 0; i < 3; i++) v1Check(b, cu_add_prior(b, &net, d_hp, B, dqin[i], dqin[3 + i]));
        }
        if (version == 1) {
            v1Check(b, cu_td(b, &net, d_hp, B, &ds, dqin[0], dqin[1], dqin[2], d_dq, d_loss, d_qmean, d_imean));
        } else if (version == 2) {
            QF_LAUNCH(td_warp_kernel<false>, warp_blocks, 32 * warps_per_block, 0, d.stream)(
                net, d_hp, ds, dqin[0], dqin[1], dqin[2], NULL, NULL, NULL, d_dq, d_loss, d_qmean, d_imean);
            launchCheck("td_warp_kernel<false>");
        } else {
            QF_LAUNCH(td_warp_kernel<true>, warp_blocks, 32 * warps_per_block, 0, d.stream)(
                net, d_hp, ds, dqin[0], dqin[1], dqin[2], dqin[3], dqin[4], dqin[5], d_dq, d_loss, d_qmean, d_imean);
            launchCheck("td_warp_kernel<true>");
        }
    };
    const int launches[4] = {0, 4, 4, 1};
    // the least any version moves: read the six Q arrays and the sample, write dq and the means
    const double bytes = 4.0 * (7.0 * NQ) + (double)NS * 17.0 + 4.0 * (2.0 * G + R);
    const double flops = (double)G * B * (6.0 * A + 4.0 * A + 12.0); // priors, logsumexp, target, loss
    printf("per call: %.1f MB moved at least, %.3f GFLOP\n", bytes / 1e6, flops / 1e9);

    float *dq_out = (float *)mallocCheck(sizeof(float) * NQ), *loss_out = (float *)mallocCheck(sizeof(float) * G),
          *qmean_out = (float *)mallocCheck(sizeof(float) * G), *imean_out = (float *)mallocCheck(sizeof(float) * R);
    int64_t bad = 0;
    for (int version = 1; version <= 3; version++) {
        if (want && version != want) continue;
        printf("version %d: checking against the CPU reference\n", version);
        reset();
        run(version);
        cudaCheck(cudaStreamSynchronize(d.stream));
        to_host(dq_out, d_dq, NQ);
        to_host(loss_out, d_loss, G);
        to_host(qmean_out, d_qmean, G);
        to_host(imean_out, d_imean, R);
        int64_t vb = 0;
        vb += check_close("dq", dq_out, dq_ref, NQ, [&](int64_t i) { return (double)dq_tol[i]; });
        vb += check_close("loss", loss_out, loss_ref, G, [&](int64_t i) { return (double)loss_tol[i]; });
        vb += check_close("qmean", qmean_out, qmean_ref, G, [&](int64_t i) { return (double)qmean_tol[i]; });
        vb += check_close("imean", imean_out, imean_ref, R, [&](int64_t i) { return (double)imean_tol[i]; });
        bad += vb;
        if (version_failed(version, vb)) continue;
        reset();
        const float ms = time_ms(d, 100, [&]() { run(version); });
        report_time(d, version, ms, bytes, flops, launches[version]);
    }
    return finish_gpu("soft_target", bad);
}
