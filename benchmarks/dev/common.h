// common.h — what the kernel workbench programs of benchmarks/dev/ share (the llm.c dev/cuda
// pattern): error checks with file:line, the device probe with the roofline peaks, fixed-seed
// random inputs, the checker against the CPU reference, the cudaEvent timer and the result lines.
// Host code, compiled by nvcc as C++; each program includes it once.
#ifndef QF_DEV_COMMON_H
#define QF_DEV_COMMON_H
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h" // qf_fp32_lanes_per_sm: one table for qfleet and the workbench

// Launches are written QF_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...): <<<>>> under nvcc,
// a CPU execution under the test shim (tests/cuda_emu), which defines it first.
#ifndef QF_LAUNCH
#define QF_LAUNCH(kernel, grid, block, smem, stream) kernel<<<(grid), (block), (smem), (stream)>>>
#endif

// ------------------------------------------------------------------------------------------------
// error checks: every fallible call, every launch

static inline void cuda_check_(cudaError_t e, const char *what, const char *file, int line) {
    if (e != cudaSuccess) {
        fprintf(stderr, "[CUDA ERROR] %s failed at %s:%d: %s\n", what, file, line, cudaGetErrorString(e));
        exit(1);
    }
}
static inline void cublas_check_(cublasStatus_t s, const char *what, const char *file, int line) {
    if (s != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "[cuBLAS ERROR] %s failed at %s:%d: %s\n", what, file, line, cublasGetStatusString(s));
        exit(1);
    }
}
#define cudaCheck(call) cuda_check_((call), #call, __FILE__, __LINE__)
#define cublasCheck(call) cublas_check_((call), #call, __FILE__, __LINE__)
// After every launch: the launch error, named by the kernel.
#define launchCheck(kernel_name) cuda_check_(cudaGetLastError(), kernel_name, __FILE__, __LINE__)

static inline void *malloc_check_(size_t bytes, const char *file, int line) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "[host] out of memory allocating %zu bytes at %s:%d\n", bytes, file, line);
        exit(1);
    }
    return p;
}
#define mallocCheck(bytes) malloc_check_((bytes), __FILE__, __LINE__)

// Device copy of n host elements.
template <class T> static T *to_device(const T *host, int64_t n) {
    T *d = NULL;
    cudaCheck(cudaMalloc((void **)&d, sizeof(T) * (size_t)(n ? n : 1)));
    if (n) cudaCheck(cudaMemcpy(d, host, sizeof(T) * (size_t)n, cudaMemcpyHostToDevice));
    return d;
}
template <class T> static void to_host(T *host, const T *dev, int64_t n) {
    cudaCheck(cudaMemcpy(host, dev, sizeof(T) * (size_t)n, cudaMemcpyDeviceToHost));
}
template <class T> static void upload(T *dev, const T *host, int64_t n) {
    cudaCheck(cudaMemcpy(dev, host, sizeof(T) * (size_t)n, cudaMemcpyHostToDevice));
}

// ------------------------------------------------------------------------------------------------
// fixed-seed random inputs (splitmix64; host only)

typedef struct dev_rng {
    uint64_t s;
} dev_rng;
static inline uint64_t rng_u64(dev_rng *g) {
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline float rng_uniform(dev_rng *g) { return (float)(rng_u64(g) >> 40) * (1.0f / 16777216.0f); } // [0, 1)
static inline float rng_range(dev_rng *g, float lo, float hi) { return lo + (hi - lo) * rng_uniform(g); }
static inline int32_t rng_int(dev_rng *g, int32_t n) { return (int32_t)(((rng_u64(g) >> 32) * (uint64_t)n) >> 32); }
static inline float rng_normal(dev_rng *g) {
    const double u1 = ((double)(rng_u64(g) >> 11) + 1.0) * 0x1.0p-53, u2 = (double)(rng_u64(g) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

// ------------------------------------------------------------------------------------------------
// the device and its roofline

typedef struct dev_info {
    int ok;              // 1: a usable CUDA device
    int emulated;        // 1: the tests/cuda_emu CPU shim (checks only: small fleet, nothing timed)
    char reason[256];    // why not, when !ok
    char name[256];
    int major, minor, sm_count;
    double peak_bw;      // bytes/s: 2 (DDR) x memory clock x bus width
    double peak_flops;   // FP32 flop/s: SMs x FP32 lanes per SM x 2 (FMA) x SM clock
    size_t l2_bytes;
    cudaStream_t stream; // every version runs on it
} dev_info;

// The first CUDA device, or the reason there is none. The CUDA 13 runtime has no clockRate and
// memoryClockRate in cudaDeviceProp: the clocks come from cudaDeviceGetAttribute.
static inline dev_info dev_open(void) {
    dev_info d;
    memset(&d, 0, sizeof d);
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        snprintf(d.reason, sizeof d.reason, "%s", e != cudaSuccess ? cudaGetErrorString(e) : "no device found");
        (void)cudaGetLastError(); // clear the sticky error of the failed probe
        return d;
    }
    e = cudaSetDevice(0);
    if (e == cudaSuccess) e = cudaFree(0); // creates the context: driver problems surface here
    if (e != cudaSuccess) {
        snprintf(d.reason, sizeof d.reason, "device 0 cannot be used: %s", cudaGetErrorString(e));
        return d;
    }
    cudaDeviceProp p;
    cudaCheck(cudaGetDeviceProperties(&p, 0));
    int mem_khz = 0, bus_bits = 0, sm_khz = 0, l2 = 0;
    cudaCheck(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, 0));
    cudaCheck(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0));
    cudaCheck(cudaDeviceGetAttribute(&sm_khz, cudaDevAttrClockRate, 0));
    cudaCheck(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
    d.ok = 1;
#ifdef QF_CUDA_EMU
    d.emulated = 1;
#endif
    snprintf(d.name, sizeof d.name, "%s", p.name);
    d.major = p.major;
    d.minor = p.minor;
    d.sm_count = p.multiProcessorCount;
    d.peak_bw = 2.0 * (double)mem_khz * 1e3 * (double)bus_bits / 8.0;
    d.peak_flops = (double)d.sm_count * qf_fp32_lanes_per_sm(p.major, p.minor) * 2.0 * (double)sm_khz * 1e3;
    d.l2_bytes = (size_t)l2;
    cudaCheck(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking));
    printf("device: %s, sm_%d%d, %d SMs; roofline peaks %.0f GB/s, %.1f FP32 TFLOP/s (FMA), L2 %.0f MiB\n", d.name,
           d.major, d.minor, d.sm_count, d.peak_bw / 1e9, d.peak_flops / 1e12, (double)d.l2_bytes / (1 << 20));
    return d;
}

// ------------------------------------------------------------------------------------------------
// checking against the CPU reference

// got[i] passes when |got - ref| <= tol(i) (NaN must meet NaN, infinities must be equal). Prints
// the largest absolute and relative errors and the first mismatches (at most 10); returns the
// number of mismatches.
template <class Tol>
static int64_t check_close(const char *name, const float *got, const float *ref, int64_t n, Tol tol) {
    int64_t bad = 0, worst = -1;
    double max_abs = 0.0, max_rel = 0.0, max_ratio = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double g = got[i], r = ref[i];
        int ok;
        double err = 0.0;
        if (r != r || g != g) ok = (r != r) && (g != g);
        else if (isinf(r) || isinf(g)) ok = g == r;
        else {
            err = fabs(g - r);
            const double t = tol(i);
            ok = err == 0.0 || err <= t; // equal values pass even where the bound is NaN (NaN inputs)
            const double ratio = t > 0.0 ? err / t : (err > 0.0 ? INFINITY : 0.0);
            if (ratio > max_ratio) {
                max_ratio = ratio;
                worst = i;
            }
            if (err > max_abs) max_abs = err;
            if (r != 0.0 && err / fabs(r) > max_rel) max_rel = err / fabs(r);
        }
        if (!ok) {
            if (bad < 10) printf("  MISMATCH %s[%lld]: got %.9g, reference %.9g, tolerance %.3g\n", name, (long long)i,
                                 g, r, (double)tol(i));
            bad++;
        }
    }
    printf("  %-12s %11lld values: max abs err %.3g, max rel err %.3g, worst err/tolerance %.3g%s\n", name,
           (long long)n, max_abs, max_rel, max_ratio, bad ? "  FAIL" : "");
    (void)worst;
    if (bad > 10) printf("  ... %lld mismatches in all\n", (long long)bad);
    return bad;
}
// Same contract with one absolute and one relative tolerance: |got - ref| <= atol + rtol |ref|.
static inline int64_t check_close_ar(const char *name, const float *got, const float *ref, int64_t n, double atol,
                                     double rtol) {
    return check_close(name, got, ref, n, [&](int64_t i) { return atol + rtol * fabs((double)ref[i]); });
}

// Integers (and bit patterns) must be equal.
template <class T> static int64_t check_equal(const char *name, const T *got, const T *ref, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (got[i] != ref[i]) {
            if (bad < 10)
                printf("  MISMATCH %s[%lld]: got %lld, reference %lld\n", name, (long long)i, (long long)got[i],
                       (long long)ref[i]);
            bad++;
        }
    printf("  %-12s %11lld values: %s\n", name, (long long)n, bad ? "FAIL" : "all equal");
    if (bad > 10) printf("  ... %lld mismatches in all\n", (long long)bad);
    return bad;
}

// ------------------------------------------------------------------------------------------------
// timing: mean milliseconds of fn() over reps, after warm-up, each rep after an L2 flush (untimed)

template <class F> static float time_ms(const dev_info &d, int reps, F fn) {
    if (d.emulated) return -1.0f; // the CPU shim proves correctness, never speed
    static char *flush = NULL;
    const size_t flush_bytes = d.l2_bytes ? d.l2_bytes * 2 : ((size_t)64 << 20);
    if (!flush) cudaCheck(cudaMalloc((void **)&flush, flush_bytes));
    for (int i = 0; i < 3; i++) fn(); // warm-up: module loading, cuBLAS heuristics, clocks
    cudaCheck(cudaStreamSynchronize(d.stream));
    cudaEvent_t t0, t1;
    cudaCheck(cudaEventCreate(&t0));
    cudaCheck(cudaEventCreate(&t1));
    double total = 0.0;
    for (int i = 0; i < reps; i++) {
        cudaCheck(cudaMemsetAsync(flush, i & 0xff, flush_bytes, d.stream));
        cudaCheck(cudaEventRecord(t0, d.stream));
        fn();
        cudaCheck(cudaEventRecord(t1, d.stream));
        cudaCheck(cudaEventSynchronize(t1));
        float ms = 0.0f;
        cudaCheck(cudaEventElapsedTime(&ms, t0, t1));
        total += ms;
    }
    cudaCheck(cudaEventDestroy(t0));
    cudaCheck(cudaEventDestroy(t1));
    return (float)(total / reps);
}

// One timing line: time, achieved GB/s and GFLOP/s of `bytes` and `flops` (what the version's
// algorithm must at least move and compute), and the roofline bound of those on this device with
// the fraction of it reached.
// After a version's checks: a version with mismatches is reported as failed and not timed.
static inline bool version_failed(int version, int64_t mismatches) {
    if (!mismatches) return false;
    printf("version %d: FAIL (%lld mismatches); not timed\n", version, (long long)mismatches);
    return true;
}

static inline void report_time(const dev_info &d, int version, float ms, double bytes, double flops, int launches) {
    if (ms < 0.0f) {
        printf("version %d: checked; not timed (qf_emu CPU shim)\n", version);
        return;
    }
    const double s = ms * 1e-3, t_bw = bytes / d.peak_bw, t_fl = flops / d.peak_flops;
    const double bound = t_bw > t_fl ? t_bw : t_fl;
    printf("version %d: %10.2f us  %8.1f GB/s  %8.1f GFLOP/s  %3d launches | roofline %9.2f us (%s) -> %5.1f%% of "
           "bound\n",
           version, ms * 1e3, bytes / s / 1e9, flops / s / 1e9, launches, bound * 1e6, t_bw >= t_fl ? "memory" : "compute",
           100.0 * bound / s);
}

// ------------------------------------------------------------------------------------------------
// the command line and the verdicts

// argv[1]: the version to run (1..n); none: every version. Exits 2 on anything else.
static inline int parse_version(int argc, char **argv, int n_versions) {
    if (argc < 2) return 0;
    char *end = NULL;
    const long v = strtol(argv[1], &end, 10);
    if (argc > 2 || !end || *end || v < 1 || v > n_versions) {
        fprintf(stderr, "usage: %s [VERSION]  (VERSION 1..%d; none: every version)\n", argv[0], n_versions);
        exit(2);
    }
    return (int)v;
}

// The last line of a run without a device: the CPU checks decide the exit code.
static inline int finish_cpu_only(const char *prog, const char *reason, int64_t bad) {
    printf("%s: no CUDA device: %s; CPU reference only\n", prog, reason);
    if (bad) {
        printf("%s: FAILED: the CPU reference disagrees with its independent check (%lld mismatches)\n", prog,
               (long long)bad);
        return 1;
    }
    printf("%s: SKIPPED the GPU versions (no device); the CPU reference passed its independent check\n", prog);
    return 0;
}

// The last line of a run on a device.
static inline int finish_gpu(const char *prog, int64_t bad) {
    if (bad) {
        printf("%s: FAILED: %lld mismatches against the CPU reference\n", prog, (long long)bad);
        return 1;
    }
    printf("%s: PASSED: every version run matches the CPU reference\n", prog);
    return 0;
}

#endif // QF_DEV_COMMON_H
