/* embed.cu — the embedding first layer (kernels/learn.h: with embed = 1 the input is a state index
 * s and layer 0 computes Wt_0[s, :] + b_0, what the one-hot input would give), followed by its ReLU
 * (every hidden layer has one): kernel versions beside the CPU reference, each checked against it
 * and timed (llm.c dev/cuda pattern).
 *
 *   cmake --build build --target embed && build/benchmarks/dev/embed [VERSION]
 *
 * version 1: the one-hot path of the backend today (kernels/cuda/learn_cuda.cu, compiled in:
 *            obs=onehot): bias_kernel, then one cuBLAS strided-batched GEMM per head (K launches,
 *            batched over the R runs) of the one-hot inputs [M][S] by Wt_0 [S][w1], then
 *            activation_kernel (ReLU): K + 2 launches, 2 S w1 flops per output, the whole table read.
 * version 2: the gather path of the backend today (obs=index): embed_kernel (a thread per output,
 *            64-bit divisions) then activation_kernel (ReLU), which reads and writes the output again: 2 launches.
 * version 3: one launch: gather + bias + ReLU fused, two outputs per thread (float2 loads and
 *            stores; w1 and the offsets are even), so the output is written once.
 *
 * Shapes: R = 1024 runs x K = 10 heads, M = 128 inputs per network (the learner's batch), DeepSea-20
 * (S = 400 states), first layer width w1 = 50 (bsuite's MLP 50-50).
 */
#include "backend_v1.h"

static int32_t R = 1024; // runs (64 for the CPU-only check)
static const int32_t K = 10, M = 128, S = 400, W1 = 50;

// ------------------------------------------------------------------------------------------------
// CPU reference: the CPU backend's embedding branch (kernels/cpu/learn_cpu.c), then the ReLU

static void embed_cpu(const qf_net *n, const float *params, const int32_t *xi, float *out) {
    const int64_t G = (int64_t)n->R * n->K, H = n->H;
    for (int64_t g = 0; g < G; g++) {
        const float *Wt = params + g * n->P + n->off_w[0], *bias = params + g * n->P + n->off_b[0];
        const int32_t *s = xi + (g / n->K) * (int64_t)M;
        float *o = out + g * (int64_t)M * H;
        for (int32_t m = 0; m < M; m++) {
            const int32_t sm = qf_clamp_index(s[m], n->w[0]);
            for (int32_t j = 0; j < n->w[1]; j++) o[m * H + j] = Wt[(int64_t)sm * n->w[1] + j] + bias[j];
            for (int32_t j = 0; j < n->w[1]; j++) o[m * H + j] = o[m * H + j] > 0.0f ? o[m * H + j] : 0.0f;
        }
    }
}

// ------------------------------------------------------------------------------------------------
// version 1: the backend's dense first layer on one-hot inputs (cu_net_forward's l = 0 branch)

static int onehot_forward(qf_backend *b, const qf_net *dense, const float *params, const float *x, float *out) {
    const int64_t G = (int64_t)dense->R * dense->K, ldo = dense->H, so = (int64_t)M * ldo;
    const int32_t in_w = dense->w[0], out_w = dense->w[1];
    LAUNCH(b, bias_kernel, G * M * out_w, *dense, 0, M, params, out, ldo, so);
    for (int64_t k = 0; k < dense->K; k++)
        if (gemm_rm(b, 0, 0, M, out_w, in_w, x, in_w, (int64_t)M * in_w, params + k * dense->P + dense->off_w[0], out_w,
                    dense->K * dense->P, 1.0f, out + k * so, ldo, dense->K * so, dense->R) != QF_OK)
            return QF_ERR;
    LAUNCH(b, activation_kernel, G * M * out_w, QF_ACTIVATION_RELU, G, M, out_w, out, ldo, so);
    return QF_OK;
}

// version 2: the backend's gather, then its ReLU
static int gather_forward(qf_backend *b, const qf_net *n, const float *params, const int32_t *xi, float *out) {
    const int64_t G = (int64_t)n->R * n->K, ldo = n->H, so = (int64_t)M * ldo;
    LAUNCH(b, embed_kernel, G * M * n->w[1], *n, M, params, xi, out, ldo, so);
    LAUNCH(b, activation_kernel, G * M * n->w[1], QF_ACTIVATION_RELU, G, M, n->w[1], out, ldo, so);
    return QF_OK;
}

// ------------------------------------------------------------------------------------------------
// version 3: gather + bias + ReLU, two outputs per thread

__global__ void embed_relu2_kernel(qf_net n, int32_t Mi, const float *params, const int32_t *xi, float *out,
                                   int64_t ldo, int64_t so) {
    const int32_t w = n.w[1], w2 = w / 2;
    const int64_t G = (int64_t)n.R * n.K, total = G * Mi * w2;
    GRID_FOR(i, total) {
        const int64_t gm = i / w2, g = gm / Mi, m = gm - g * Mi;
        const int32_t j = 2 * (int32_t)(i - gm * w2);
        int32_t s = xi[(g / n.K) * Mi + m];
        s = qf_clamp_index(s, n.w[0]);
        const float *W = params + g * n.P;
        const float2 wv = *(const float2 *)(W + n.off_w[0] + (int64_t)s * w + j);
        const float2 bv = *(const float2 *)(W + n.off_b[0] + j);
        float2 o;
        o.x = wv.x + bv.x;
        o.y = wv.y + bv.y;
        o.x = o.x > 0.0f ? o.x : 0.0f;
        o.y = o.y > 0.0f ? o.y : 0.0f;
        *(float2 *)(out + g * so + m * ldo + j) = o;
    }
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
    net.L = 2;
    net.embed = 1;
    net.w[0] = S;
    net.w[1] = W1;
    net.w[2] = 2;
    qf_net_layout(&net);
    qf_net dense = net; // the same parameters, read as a dense layer on one-hot inputs
    dense.embed = 0;
    const int64_t G = (int64_t)R * K, P = net.P, NO = G * M * net.H, NX = (int64_t)R * M;
    printf("embed: %sR=%d runs x K=%d heads, %d inputs per network, %d states -> %d (P=%lld)\n",
           d.ok ? "" : "(CPU-only check, smaller fleet) ", R, K, M, S, W1, (long long)P);
    if (W1 % 2 || P % 2 || net.off_w[0] % 2 || net.off_b[0] % 2 || net.H % 2) {
        fprintf(stderr, "embed: version 3 needs even widths and offsets\n");
        return 1;
    }

    // ---- inputs (fixed seed)
    dev_rng rng = {400};
    float *params = (float *)mallocCheck(sizeof(float) * G * P);
    for (int64_t i = 0; i < G * P; i++) params[i] = rng_range(&rng, -0.05f, 0.05f);
    int32_t *xi = (int32_t *)mallocCheck(sizeof(int32_t) * NX);
    for (int64_t i = 0; i < NX; i++) xi[i] = rng_int(&rng, S);

    // ---- CPU reference
    float *ref = (float *)mallocCheck(sizeof(float) * NO);
    embed_cpu(&net, params, xi, ref);

    // independent check: the one-hot product, summed in double over all S inputs, for every 61st row
    int64_t bad_cpu = 0, rows = 0;
    for (int64_t gm = 0; gm < G * M; gm += 61, rows++) {
        const int64_t g = gm / M, m = gm % M;
        const float *W = params + g * P;
        for (int32_t j = 0; j < W1; j++) {
            double acc = 0.0;
            for (int32_t i = 0; i < S; i++) acc += (i == xi[(g / K) * M + m] ? 1.0 : 0.0) * W[net.off_w[0] + (int64_t)i * W1 + j];
            float o = (float)(acc + W[net.off_b[0] + j]);
            o = o > 0.0f ? o : 0.0f;
            if (o != ref[g * M * net.H + m * net.H + j] && bad_cpu++ < 10)
                printf("  MISMATCH one-hot(f64) network %lld input %lld unit %d: %.9g, reference %.9g\n", (long long)g,
                       (long long)m, j, o, ref[g * M * net.H + m * net.H + j]);
        }
    }
    printf("independent check: the reference's gather against the one-hot product in double (%lld rows): %s\n",
           (long long)rows, bad_cpu ? "FAIL" : "all equal");

    if (!d.ok) return finish_cpu_only("embed", d.reason, bad_cpu);
    if (bad_cpu) return finish_gpu("embed", bad_cpu);

    // ---- device
    cublasHandle_t blas;
    cublasCheck(cublasCreate(&blas));
    cublasCheck(cublasSetStream(blas, d.stream));
    qf_backend *b = v1_backend(d, blas);
    float *x = (float *)mallocCheck(sizeof(float) * NX * S); // the one-hot inputs [R][M][S]
    memset(x, 0, sizeof(float) * NX * S);
    for (int64_t i = 0; i < NX; i++) x[i * S + xi[i]] = 1.0f;
    float *d_params = to_device(params, G * P), *d_x = to_device(x, NX * S);
    int32_t *d_xi = to_device(xi, NX);
    float *d_out;
    cudaCheck(cudaMalloc((void **)&d_out, sizeof(float) * NO));

    auto run = [&](int version) {
        if (version == 1) v1Check(b, onehot_forward(b, &dense, d_params, d_x, d_out));
        else if (version == 2) v1Check(b, gather_forward(b, &net, d_params, d_xi, d_out));
        else {
            const int64_t n2 = NO / 2;
            QF_LAUNCH(embed_relu2_kernel, (unsigned)((n2 + 255) / 256), 256, 0, d.stream)(net, M, d_params, d_xi, d_out, net.H,
                                                                                  (int64_t)M * net.H);
            launchCheck("embed_relu2_kernel");
        }
    };
    const int launches[4] = {0, K + 2, 2, 1};
    // what each version's algorithm must at least move and compute
    const double out_bytes = 4.0 * NO, gather_bytes = out_bytes + 4.0 * NX + 4.0 * NO /* rows */ + 4.0 * G * W1;
    const double bytes[4] = {0, 4.0 * NX * S + 4.0 * G * (S * W1 + W1) + out_bytes, gather_bytes, gather_bytes};
    const double flops[4] = {0, 2.0 * (double)G * M * S * W1, (double)NO, (double)NO};

    float *out = (float *)mallocCheck(sizeof(float) * NO);
    int64_t bad = 0;
    for (int version = 1; version <= 3; version++) {
        if (want && version != want) continue;
        printf("version %d: checking against the CPU reference\n", version);
        cudaCheck(cudaMemset(d_out, 0xff, sizeof(float) * NO)); // NaN: every value must be written
        run(version);
        cudaCheck(cudaStreamSynchronize(d.stream));
        to_host(out, d_out, NO);
        // the gathers do the reference's one addition: exact. The GEMM adds exact zeros to the
        // table entry, then the bias: exact too, but its order is cuBLAS's: one ulp allowed.
        const int64_t vb = check_close_ar("h1", out, ref, NO, 0.0, version == 1 ? FLT_EPSILON : 0.0);
        bad += vb;
        if (version_failed(version, vb)) continue;
        const float ms = time_ms(d, 20, [&]() { run(version); });
        report_time(d, version, ms, bytes[version], flops[version], launches[version]);
    }
    return finish_gpu("embed", bad);
}
