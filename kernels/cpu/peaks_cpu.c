/* peaks_cpu.c — the CPU backend's `peaks` operation (kernels/backend.h): the memory bandwidth and
 * fp32 FLOP/s this machine reaches, measured (a STREAM-like triad over 3 arrays of 64 MiB with every
 * OpenMP thread, best of 5; one 1024^3 cblas_sgemm with OpenBLAS set to every OpenMP thread for the
 * probe, best of 3, its previous thread count restored), and the theoretical FLOP/s from
 * /proc/cpuinfo where the vector width is known (2 FMA units per core assumed, said in `how`;
 * theoretical bandwidth: 0). `flops` (the bound) is the larger of the measured and the
 * theoretical FLOP/s, so a probe slowed by other processes cannot inflate the fractions reached. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../backend.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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

static int cpu_peaks(qf_backend *b, qf_peaks *out) {
    (void)b;
    qf_peaks p;
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
    *out = p;
    return QF_OK;
}

void qf_cpu_peaks_op(qf_backend *b) { b->peaks = cpu_peaks; }

