/* roofline.c — machine peaks (measured on the CPU, from device attributes on the GPU) and the
 * FLOPs and bytes moved of the work the benchmarks time.
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

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#ifdef QFLEET_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------------------------
 * Peaks. */

double qf_roof_bound_s(qf_roof_work w, const qf_roof_peaks *p, int *memory_bound) {
    const double tf = p->flops > 0 ? w.flops / p->flops : 0.0;
    const double tb = p->bytes_per_s > 0 ? w.bytes / p->bytes_per_s : 0.0;
    if (memory_bound) *memory_bound = tb >= tf;
    if ((w.flops > 0 && p->flops <= 0) || (w.bytes > 0 && p->bytes_per_s <= 0)) return 0.0;
    return tb > tf ? tb : tf;
}

/* STREAM triad a[i] = b[i] + s*c[i] over doubles, counted as STREAM counts it: 3 x 8 bytes per
 * element (write-allocate traffic not counted, so real traffic is up to 4/3 of it). */
static double probe_triad(size_t bytes_per_array, int threads, int reps) {
    const size_t n = bytes_per_array / sizeof(double);
    double *a = (double *)malloc(bytes_per_array), *b = (double *)malloc(bytes_per_array),
           *c = (double *)malloc(bytes_per_array);
    double best = 0.0;
    if (a && b && c) {
        /* first touch with the same static schedule as the timed loop */
#pragma omp parallel for schedule(static) num_threads(threads)
        for (size_t i = 0; i < n; i++) {
            a[i] = 0.0;
            b[i] = 1.0;
            c[i] = 2.0;
        }
        for (int r = 0; r < reps; r++) {
            const double s = 3.0 + r, t0 = now_s();
#pragma omp parallel for schedule(static) num_threads(threads)
            for (size_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
            const double t = now_s() - t0;
            if (t > 0 && (best == 0.0 || t < best)) best = t;
        }
        volatile double sink = a[0] + a[n - 1]; /* the stores are used */
        (void)sink;
    }
    free(a);
    free(b);
    free(c);
    return best > 0 ? 3.0 * (double)(n * sizeof(double)) / best : 0.0;
}

/* fp32 FLOP/s of one n^3 cblas_sgemm with OpenBLAS on `threads` threads (best of reps, after a
 * warm-up); OpenBLAS's previous thread count is restored. */
static double probe_sgemm(int n, int threads, int reps) {
    float *A = (float *)malloc(sizeof(float) * (size_t)n * n), *B = (float *)malloc(sizeof(float) * (size_t)n * n),
          *C = (float *)malloc(sizeof(float) * (size_t)n * n);
    double best = 0.0;
    if (A && B && C) {
        for (size_t i = 0; i < (size_t)n * n; i++) {
            A[i] = 1e-3f * (float)(i % 7);
            B[i] = 1e-3f * (float)(i % 5);
        }
        const int before = openblas_get_num_threads();
        openblas_set_num_threads(threads);
        for (int r = 0; r <= reps; r++) {
            const double t0 = now_s();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
            const double t = now_s() - t0;
            if (r > 0 && t > 0 && (best == 0.0 || t < best)) best = t;
        }
        openblas_set_num_threads(before);
    }
    free(A);
    free(B);
    free(C);
    return best > 0 ? 2.0 * (double)n * n * n / best : 0.0;
}

/* Theoretical fp32 FLOP/s: cores x clock (/proc/cpuinfo "cpu MHz") x FMA lanes x 2 x 2 FMA units,
 * cores = the threads used, at most the physical cores (distinct physical id, core id pairs;
 * SMT siblings share the FMA units). The FMA unit count is not in /proc/cpuinfo (Xeons have 1 or
 * 2 for AVX-512): 2 is assumed and said. 0 when the clock or an FMA extension is not found. */
static double theoretical_cpu_flops(int threads, char *what, size_t what_len) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0.0;
    char line[8192];
    double mhz = 0.0;
    int lanes = 0, phys = -1, n_cores = 0;
    static int cores[4096][2];
    const char *ext = "";
    while (fgets(line, sizeof line, f)) {
        const char *c = strchr(line, ':');
        if (c && strncmp(line, "physical id", 11) == 0) phys = atoi(c + 1);
        if (c && strncmp(line, "core id", 7) == 0) {
            const int core = atoi(c + 1);
            int seen = 0;
            for (int i = 0; i < n_cores && !seen; i++) seen = cores[i][0] == phys && cores[i][1] == core;
            if (!seen && n_cores < 4096) {
                cores[n_cores][0] = phys;
                cores[n_cores++][1] = core;
            }
        }
        if (mhz == 0.0 && strncmp(line, "cpu MHz", 7) == 0) {
            const char *c = strchr(line, ':');
            if (c) mhz = atof(c + 1);
        }
        if (lanes == 0 && strncmp(line, "flags", 5) == 0) {
            const int fma = strstr(line, " fma ") || strstr(line, " fma\n");
            if (strstr(line, " avx512f ") || strstr(line, " avx512f\n")) {
                lanes = 16;
                ext = "AVX-512";
            } else if (fma && (strstr(line, " avx2 ") || strstr(line, " avx2\n"))) {
                lanes = 8;
                ext = "AVX2";
            }
            if (!fma) lanes = 0;
        }
    }
    fclose(f);
    if (mhz <= 0.0 || lanes == 0) return 0.0;
    const int n = n_cores > 0 && n_cores < threads ? n_cores : threads;
    const double flops = (double)n * mhz * 1e6 * lanes * 2.0 * 2.0;
    snprintf(what, what_len, "%d cores x %.2f GHz x %d FLOP/cycle: %s FMA, 2 FMA units assumed", n, mhz / 1e3,
             lanes * 4, ext);
    return flops;
}

const qf_roof_peaks *qf_roof_cpu_peaks(void) {
    static qf_roof_peaks p;
    static int done = 0;
    if (done) return &p;
    done = 1;
    memset(&p, 0, sizeof p);
    const int threads = omp_get_max_threads() > 0 ? omp_get_max_threads() : 1;
    const int mib = 64, n = 1024;
    p.threads = threads;
    p.bytes_per_s = probe_triad((size_t)mib << 20, threads, 5);
    p.flops = probe_sgemm(n, threads, 3);
    char theo[200] = "", tail[260] = "";
    p.theo_flops = theoretical_cpu_flops(threads, theo, sizeof theo);
    if (p.theo_flops > 0) snprintf(tail, sizeof tail, "; theoretical %.3g GFLOP/s (%s)", p.theo_flops / 1e9, theo);
    snprintf(p.how, sizeof p.how,
             "%.3g GB/s measured (triad over 3 x %d MiB, %d threads, best of 5), %.3g GFLOP/s fp32 measured "
             "(sgemm %d^3, OpenBLAS on %d threads, best of 3)%s",
             p.bytes_per_s / 1e9, mib, threads, p.flops / 1e9, n, threads, tail);
    /* The bound must not fall when other processes slow the probe down: where the theoretical
     * FLOP/s is known and larger, it is the one used (bandwidth has only the measurement). */
    if (p.theo_flops > p.flops) {
        p.flops = p.theo_flops;
        const size_t len = strlen(p.how);
        snprintf(p.how + len, sizeof p.how - len, "; bounds use the theoretical FLOP/s");
    }
    return &p;
}

#ifdef QFLEET_HAVE_CUDA
#define CK(call)                                                                                            \
    do {                                                                                                    \
        cudaError_t e_ = (call);                                                                            \
        if (e_ != cudaSuccess) {                                                                            \
            snprintf(err, err_len, "%s failed: %s (%s:%d)", #call, cudaGetErrorString(e_), __FILE__, __LINE__); \
            goto fail;                                                                                      \
        }                                                                                                   \
    } while (0)

/* Device-to-device cudaMemcpy of `bytes`, counted as read + write. 0 when it cannot be measured
 * (not enough free memory), with the reason in err. */
static double probe_d2d(size_t bytes, int reps, char *err, size_t err_len) {
    void *src = NULL, *dst = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    float ms = 0.0f;
    double bw = 0.0;
    CK(cudaMalloc(&src, bytes));
    CK(cudaMalloc(&dst, bytes));
    CK(cudaMemset(src, 1, bytes));
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    CK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice)); /* warm-up */
    CK(cudaDeviceSynchronize());
    CK(cudaEventRecord(e0, 0));
    for (int r = 0; r < reps; r++) CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
    CK(cudaEventRecord(e1, 0));
    CK(cudaEventSynchronize(e1));
    CK(cudaEventElapsedTime(&ms, e0, e1));
    if (ms > 0.0f) bw = 2.0 * (double)bytes * reps / (1e-3 * ms);
fail:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (src) cudaFree(src);
    if (dst) cudaFree(dst);
    return bw;
}

int qf_roof_cuda_peaks(qf_roof_peaks *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    int dev = 0, n = 0, clock_khz = 0, mem_khz = 0, bus_bits = 0, sms = 0, major = 0, minor = 0;
    CK(cudaGetDeviceCount(&n));
    if (n < 1) {
        snprintf(err, err_len, "no CUDA device");
        return QF_ERR;
    }
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev));
    CK(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, dev));
    CK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    CK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    CK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    {
        const int lanes = qf_roof_fp32_lanes_per_sm(major, minor);
        /* DDR/HBM: two transfers per memory clock */
        out->theo_bytes_per_s = 2.0 * (double)mem_khz * 1e3 * (double)bus_bits / 8.0;
        out->theo_flops = (double)sms * lanes * 2.0 * (double)clock_khz * 1e3;
        char why[200] = "";
        size_t free_b = 0, total_b = 0;
        double copy = 0.0;
        if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && free_b > ((size_t)600 << 20))
            copy = probe_d2d((size_t)256 << 20, 10, why, sizeof why);
        else
            snprintf(why, sizeof why, "under 600 MiB free");
        out->bytes_per_s = copy > 0 ? copy : out->theo_bytes_per_s;
        out->flops = out->theo_flops;
        char cp[240];
        if (copy > 0)
            snprintf(cp, sizeof cp, "%.4g GB/s measured (device-to-device cudaMemcpy of 256 MiB, read + write, 10 reps)",
                     copy / 1e9);
        else
            snprintf(cp, sizeof cp, "copy not measured (%.150s)", why);
        snprintf(out->how, sizeof out->how,
                 "%s; theoretical %.4g GB/s (2 x %d MHz x %d-bit bus), %.4g GFLOP/s fp32 (%d SMs x %d FP32 lanes "
                 "(sm_%d%d) x 2 x %d MHz boost clock%s)",
                 cp, out->theo_bytes_per_s / 1e9, mem_khz / 1000, bus_bits, out->theo_flops / 1e9, sms, lanes,
                 major, minor, clock_khz / 1000, lanes ? "" : ": lanes unknown for this architecture");
    }
    return QF_OK;
fail:
    return QF_ERR;
}
#undef CK
#else
int qf_roof_cuda_peaks(qf_roof_peaks *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    snprintf(err, err_len, "this build has no CUDA backend");
    return QF_ERR;
}
#endif

const qf_roof_peaks *qf_roof_peaks_of(const qf_backend *b) {
    if (b->kind != QF_BACKEND_CUDA) return qf_roof_cpu_peaks();
    static qf_roof_peaks g;
    static int done = 0;
    if (!done) {
        done = 1;
        char err[256];
        if (qf_roof_cuda_peaks(&g, err, sizeof err) != QF_OK) {
            memset(&g, 0, sizeof g);
            g.bytes_per_s = g.theo_bytes_per_s = b->peak_bytes_per_s;
            snprintf(g.how, sizeof g.how, "%.4g GB/s theoretical from the backend; FLOP/s unknown (%.250s)",
                     b->peak_bytes_per_s / 1e9, err);
        }
    }
    return &g;
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
 * (obs_floats floats or one int32 index each), action 4, reward 4, terminal 1, mask 4, intr 4. */
static double transition_bytes(const qf_roof_fleet *s) {
    const double ob = s->obs_floats > 0 ? s->obs_floats : 1;
    return 2.0 * 4.0 * ob + 17.0;
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
 *   store: E transitions written into the ring. */
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
    w.bytes += E * transition_bytes(s);
    return w;
}

/* One learner update of a run (host/fleet.c learn_once), B samples:
 *   sample: B transitions read from the ring;
 *   count bonus: B counters read (4 bytes);
 *   forwards: target on s', online on s' (double Q), online on s: (2 + double_q) K forwards of B,
 *        each with its prior's forward and sum (1 FLOP per Q value) when priors are on;
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
    w = add(w, qf_roof_forward(&s->net, s->B), nf * K * (1 + (s->prior != 0)));
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
