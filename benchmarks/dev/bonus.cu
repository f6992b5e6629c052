/* bonus.cu — the count bonus of a learner step with exact counts (kernels/explore.h): count the
 * arrival states N(s') and the (state, action) pairs N(s, a) of the E envs of every run
 * (count_update, count_sa_update), then the bonus 1/sqrt(N(s')) of the B transitions sampled per
 * run (count_bonus, qf_count_bonus; weighted by beta in the TD). Kernel versions beside the CPU
 * reference, each checked against it and timed (llm.c dev/cuda pattern).
 *
 *   cmake --build build --target bonus && build/benchmarks/dev/bonus [VERSION]
 *
 * version 1: the backend today (kernels/cuda/explore_cuda.cu, compiled in): count_update_kernel,
 *            count_sa_kernel and count_bonus_kernel, a thread per element each: 3 launches.
 * version 2: one launch, a block per run: its E updates (integer atomics), a barrier, its B
 *            lookups. Counts belong to one run, so a block sees every update it must see; the
 *            values equal version 1's for any order of the atomics.
 * version 3: version 2 with a warp per run (8 runs per block, __syncwarp between the phases).
 * Versions 2 and 3 assume what the training loop does when it learns every step: nothing reads
 * the counts between this step's count update and the bonus of the sampled transitions; on steps
 * without a learner update, the update alone runs.
 *
 * Shapes: R = 1024 runs of DeepSea-20 (S = 400 states, A = 2), E = 1 env per run (bsuite), batch
 * B = 128; the count bonus on 3 runs in 4; some indices out of range (clamped, as the backend does).
 */
#include "backend_v1.h"

static int32_t R = 1024; // runs (64 for the CPU-only check)
static const int32_t S = 400, A = 2, E = 1, B = 128;

// ------------------------------------------------------------------------------------------------
// CPU reference: the CPU backend's exact-count operations (kernels/cpu/explore_cpu.c) in turn

static int32_t clamp_s(int32_t s) { return s < 0 ? 0 : (s >= S ? S - 1 : s); }

static void bonus_cpu(const qf_counts *c, const qf_run_hp *hp, const int32_t *next_idx, const int32_t *obs_idx,
                      const int32_t *actions, qf_sample *s) {
    for (int64_t i = 0; i < (int64_t)c->R * E; i++) {
        const int64_t r = i / E;
        c->cnt[r * S + clamp_s(next_idx[i])] += 1;
        const int32_t a = actions[i] < 0 ? 0 : (actions[i] >= A ? A - 1 : actions[i]);
        c->cnt_sa[(r * S + clamp_s(obs_idx[i])) * A + a] += 1;
    }
    for (int64_t t = 0; t < (int64_t)c->R * B; t++) {
        const int64_t r = t / B;
        if (hp[r].bonus != QF_BONUS_COUNT) continue;
        s->intr[t] = qf_count_bonus(c->cnt[r * S + clamp_s(s->next_idx[t])]);
    }
}

// ------------------------------------------------------------------------------------------------
// versions 2 and 3: one block (2) or one warp (3) per run

template <bool WARP>
__global__ void count_fused_kernel(qf_counts c, const qf_run_hp *hp, const int32_t *next_idx, const int32_t *obs_idx,
                                   const int32_t *actions, qf_sample s) {
    const int64_t r = WARP ? ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5 : blockIdx.x;
    const int32_t tid = WARP ? (threadIdx.x & 31) : threadIdx.x, nt = WARP ? 32 : blockDim.x;
    if (r >= c.R) return; // whole warps (WARP) or never (a block per run)
    for (int32_t e = tid; e < E; e += nt) {
        const int64_t i = r * E + e;
        int32_t st = next_idx[i], so = obs_idx[i], a = actions[i];
        st = st < 0 ? 0 : (st >= c.S ? c.S - 1 : st);
        so = so < 0 ? 0 : (so >= c.S ? c.S - 1 : so);
        a = a < 0 ? 0 : (a >= c.A ? c.A - 1 : a);
        atomicAdd(&c.cnt[r * c.S + st], 1u);
        atomicAdd(&c.cnt_sa[(r * c.S + so) * c.A + a], 1u);
    }
    if (WARP) __syncwarp(); // orders this warp's memory accesses (the run's updates) before the reads
    else __syncthreads();
    if (hp[r].bonus != QF_BONUS_COUNT) return;
    for (int32_t j = tid; j < B; j += nt) {
        const int64_t t = r * B + j;
        int32_t st = s.next_idx[t];
        st = st < 0 ? 0 : (st >= c.S ? c.S - 1 : st);
        s.intr[t] = qf_count_bonus(__ldcg(&c.cnt[r * c.S + st])); // from L2, where the atomics went
    }
}

int main(int argc, char **argv) {
    const int want = parse_version(argc, argv, 3);
    dev_info d = dev_open();
    if (!d.ok) R = 64; // no device: the CPU reference and its independent check only
    if (d.emulated) R = 4; // the CPU shim: every version checked on a small fleet
    const int64_t NC = (int64_t)R * S, NSA = NC * A, NE = (int64_t)R * E, NB = (int64_t)R * B;
    printf("bonus: %sR=%d runs, DeepSea-20 (S=%d, A=%d), E=%d env per run, batch %d\n",
           d.ok ? "" : "(CPU-only check, smaller fleet) ", R, S, A, E, B);

    // ---- inputs (fixed seed)
    dev_rng rng = {20};
    qf_run_hp *hp = (qf_run_hp *)mallocCheck(sizeof(qf_run_hp) * R);
    for (int32_t r = 0; r < R; r++) {
        memset(&hp[r], 0, sizeof hp[r]);
        hp[r].bonus = r % 4 == 3 ? QF_BONUS_NONE : QF_BONUS_COUNT;
        hp[r].beta = 0.1f;
    }
    qf_counts c0;
    memset(&c0, 0, sizeof c0);
    c0.R = R;
    c0.mode = QF_COUNT_EXACT;
    c0.S = S;
    c0.A = A;
    c0.cnt = (uint32_t *)mallocCheck(sizeof(uint32_t) * NC);
    c0.cnt_sa = (uint32_t *)mallocCheck(sizeof(uint32_t) * NSA);
    for (int64_t i = 0; i < NC; i++) c0.cnt[i] = rng_uniform(&rng) < 0.2f ? 0u : (uint32_t)rng_int(&rng, 5000);
    for (int64_t i = 0; i < NSA; i++) c0.cnt_sa[i] = (uint32_t)rng_int(&rng, 2500);
    int32_t *next_idx = (int32_t *)mallocCheck(sizeof(int32_t) * NE), *obs_idx = (int32_t *)mallocCheck(sizeof(int32_t) * NE),
            *actions = (int32_t *)mallocCheck(sizeof(int32_t) * NE);
    for (int64_t i = 0; i < NE; i++) {
        next_idx[i] = rng_int(&rng, S);
        obs_idx[i] = rng_int(&rng, S);
        actions[i] = rng_int(&rng, A);
    }
    qf_sample s0;
    memset(&s0, 0, sizeof s0);
    s0.R = R;
    s0.C = B;
    s0.next_idx = (int32_t *)mallocCheck(sizeof(int32_t) * NB);
    s0.intr = (float *)mallocCheck(sizeof(float) * NB);
    for (int64_t t = 0; t < NB; t++) {
        // mostly this step's arrivals and states of the replay; a few out of range (clamped)
        const float u = rng_uniform(&rng);
        s0.next_idx[t] = u < 0.01f ? -1 : (u < 0.02f ? S + 3 : (u < 0.3f ? next_idx[(t / B) * E] : rng_int(&rng, S)));
        s0.intr[t] = -1.0f; // runs without the count bonus keep it
    }

    // ---- CPU reference
    qf_counts cr = c0;
    cr.cnt = (uint32_t *)mallocCheck(sizeof(uint32_t) * NC);
    cr.cnt_sa = (uint32_t *)mallocCheck(sizeof(uint32_t) * NSA);
    memcpy(cr.cnt, c0.cnt, sizeof(uint32_t) * NC);
    memcpy(cr.cnt_sa, c0.cnt_sa, sizeof(uint32_t) * NSA);
    qf_sample sr = s0;
    sr.intr = (float *)mallocCheck(sizeof(float) * NB);
    memcpy(sr.intr, s0.intr, sizeof(float) * NB);
    bonus_cpu(&cr, hp, next_idx, obs_idx, actions, &sr);

    // independent check: every count grew by its number of arrivals (a histogram of this step's
    // indices), each run's totals by E; the bonus is 1/sqrt(n) in double within 2 ulp (sqrtf and
    // the division each round once)
    int64_t bad_cpu = 0;
    {
        uint32_t *hist = (uint32_t *)calloc((size_t)NC, sizeof(uint32_t));
        for (int64_t i = 0; i < NE; i++) hist[(i / E) * S + clamp_s(next_idx[i])]++;
        for (int64_t i = 0; i < NC; i++)
            if (cr.cnt[i] != c0.cnt[i] + hist[i] && bad_cpu++ < 10)
                printf("  MISMATCH count[%lld]: %u, expected %u\n", (long long)i, cr.cnt[i], c0.cnt[i] + hist[i]);
        for (int32_t r = 0; r < R; r++) {
            uint64_t before = 0, after = 0;
            for (int64_t i = (int64_t)r * S * A; i < (int64_t)(r + 1) * S * A; i++) {
                before += c0.cnt_sa[i];
                after += cr.cnt_sa[i];
            }
            if (after != before + E && bad_cpu++ < 10) printf("  MISMATCH run %d: N(s, a) total %llu, expected %llu\n", r,
                                                          (unsigned long long)after, (unsigned long long)(before + E));
        }
        free(hist);
        float *bonus_d = (float *)mallocCheck(sizeof(float) * NB);
        for (int64_t t = 0; t < NB; t++) {
            const uint32_t n = cr.cnt[(t / B) * S + clamp_s(s0.next_idx[t])];
            bonus_d[t] = hp[t / B].bonus == QF_BONUS_COUNT ? (float)(1.0 / sqrt((double)(n ? n : 1u))) : -1.0f;
        }
        printf("independent check: counts against a histogram of the arrivals, the bonus against 1/sqrt(n) in double\n");
        bad_cpu += check_close_ar("bonus(f64)", sr.intr, bonus_d, NB, 0.0, 2.0 * FLT_EPSILON);
        free(bonus_d);
    }
    if (!d.ok) return finish_cpu_only("bonus", d.reason, bad_cpu);
    if (bad_cpu) return finish_gpu("bonus", bad_cpu);

    // ---- device
    cublasHandle_t blas;
    cublasCheck(cublasCreate(&blas));
    cublasCheck(cublasSetStream(blas, d.stream));
    qf_backend *b = v1_backend(d, blas);
    qf_counts dc = c0;
    dc.cnt = to_device(c0.cnt, NC);
    dc.cnt_sa = to_device(c0.cnt_sa, NSA);
    qf_sample ds = s0;
    ds.next_idx = to_device(s0.next_idx, NB);
    ds.intr = to_device(s0.intr, NB);
    int32_t *d_next = to_device(next_idx, NE), *d_obs = to_device(obs_idx, NE), *d_act = to_device(actions, NE);
    qf_run_hp *d_hp = to_device(hp, R);

    auto reset = [&]() {
        upload(dc.cnt, c0.cnt, NC);
        upload(dc.cnt_sa, c0.cnt_sa, NSA);
        upload(ds.intr, s0.intr, NB);
    };
    auto run = [&](int version) {
        if (version == 1) {
            v1Check(b, cu_count_update(b, &dc, E, NULL, d_next));
            v1Check(b, cu_count_sa_update(b, &dc, E, NULL, d_obs, d_act));
            v1Check(b, cu_count_bonus(b, &dc, d_hp, B, &ds));
        } else if (version == 2) {
            QF_LAUNCH(count_fused_kernel<false>, R, 128, 0, d.stream)(dc, d_hp, d_next, d_obs, d_act, ds);
            launchCheck("count_fused_kernel<false>");
        } else {
            QF_LAUNCH(count_fused_kernel<true>, (R + 7) / 8, 256, 0, d.stream)(dc, d_hp, d_next, d_obs, d_act, ds);
            launchCheck("count_fused_kernel<true>");
        }
    };
    const int launches[4] = {0, 3, 1, 1};
    // least bytes: read the E (s', s, a), read-modify-write two counters each; per sample read the
    // index and a counter, write the bonus; the hyperparameters once per run
    const double bytes = (double)NE * (12.0 + 16.0) + (double)NB * 12.0 + (double)R * sizeof(qf_run_hp);
    const double flops = (double)NB * 2.0; // a square root and a division per bonus
    printf("per call: %.2f MB moved at least\n", bytes / 1e6);

    uint32_t *cnt = (uint32_t *)mallocCheck(sizeof(uint32_t) * NC), *cnt_sa = (uint32_t *)mallocCheck(sizeof(uint32_t) * NSA);
    float *intr = (float *)mallocCheck(sizeof(float) * NB);
    int64_t bad = 0;
    for (int version = 1; version <= 3; version++) {
        if (want && version != want) continue;
        printf("version %d: checking against the CPU reference\n", version);
        reset();
        run(version);
        cudaCheck(cudaStreamSynchronize(d.stream));
        to_host(cnt, dc.cnt, NC);
        to_host(cnt_sa, dc.cnt_sa, NSA);
        to_host(intr, ds.intr, NB);
        int64_t vb = 0;
        vb += check_equal("N(s)", cnt, cr.cnt, NC);
        vb += check_equal("N(s,a)", cnt_sa, cr.cnt_sa, NSA);
        vb += check_close_ar("bonus", intr, sr.intr, NB, 0.0, 0.0); // the same IEEE operations: exact
        bad += vb;
        if (version_failed(version, vb)) continue;
        const float ms = time_ms(d, 200, [&]() { run(version); });
        report_time(d, version, ms, bytes, flops, launches[version]);
    }
    return finish_gpu("bonus", bad);
}
