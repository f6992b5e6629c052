// backend_cuda.cu — the CUDA backend: the same operations as kernels/cpu, one launch per operation
// for all runs and envs of a batch. The per-element work is kernels/env_batch.h, shared with the
// CPU reference; this file only owns launches, memory and error checks. Built with --fmad=false
// so the float results are bit-identical to the CPU backend.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_profiler_api.h>

#include "cublas_lazy.h"
#include "cuda_impl.h"

static cudaStream_t stream_of(qf_backend *b) { return ((cuda_impl *)b->impl)->stream; }

// Grid for n elements with a grid-stride loop: enough blocks to fill the device a few times over.
static unsigned grid_for(qf_backend *b, int64_t n, int block) {
    int64_t want = (n + block - 1) / block;
    int64_t cap = (int64_t)((cuda_impl *)b->impl)->sm_count * 32;
    if (want > cap) want = cap;
    return (unsigned)(want < 1 ? 1 : want);
}

// ------------------------------------------------------------------------------------------------
// kernels

__global__ void env_reset_kernel(qf_env_batch batch) {
    const int64_t n = (int64_t)batch.R * batch.E;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        qf_batch_reset_one(&batch, (int32_t)(i / batch.E), (int32_t)(i % batch.E));
}

// it: NULL, or the captured iteration's counters (t read from there at replay time)
__global__ void env_step_kernel(qf_env_batch batch, const int32_t *actions, uint32_t t, const qf_iter *it,
                                float *next_obs, int32_t *next_index) {
    if (it) t = it->t;
    const int64_t n = (int64_t)batch.R * batch.E;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
    {
        const int32_t r = (int32_t)(i / batch.E), e = (int32_t)(i % batch.E);
        const int32_t a = actions ? actions[i]
                                  : qf_random_action(batch.keys[2 * r], batch.keys[2 * r + 1], e, t,
                                                     qf_env_n_actions(batch.kind, &batch.params[r]));
        qf_batch_step_one(&batch, r, e, a, t, next_obs, next_index);
    }
}

__global__ void env_observe_kernel(qf_env_batch batch, float *obs, int32_t *index) {
    const int64_t n = (int64_t)batch.R * batch.E;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        qf_batch_observe_one(&batch, (int32_t)(i / batch.E), (int32_t)(i % batch.E), obs, index);
}

// One thread: the training loop's device counters move on (backend.h, qf_iter).
__global__ void iter_advance_kernel(qf_iter *it, uint32_t dt, uint32_t du) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        it->t += dt;
        it->update += du;
    }
}

// ------------------------------------------------------------------------------------------------
// backend functions

static void *cuda_alloc(qf_backend *b, size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        snprintf(b->err, sizeof b->err, "cuda backend: cudaMalloc(%zu bytes) failed: %s", bytes,
                 cudaGetErrorString(e));
        return NULL;
    }
    e = cudaMemsetAsync(p, 0, bytes, stream_of(b));
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream_of(b));
    if (e != cudaSuccess) {
        snprintf(b->err, sizeof b->err, "cuda backend: clearing %zu bytes failed: %s", bytes,
                 cudaGetErrorString(e));
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void cuda_release(qf_backend *b, void *p) {
    (void)b;
    if (p) cudaFree(p);
}

static int cuda_upload(qf_backend *b, void *dst, const void *src, size_t bytes) {
    QF_CUDA_TRY(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_of(b)));
    QF_CUDA_TRY(b, cudaStreamSynchronize(stream_of(b)));
    b->n_sync++;
    return QF_OK;
}

static int cuda_download(qf_backend *b, void *dst, const void *src, size_t bytes) {
    QF_CUDA_TRY(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_of(b)));
    QF_CUDA_TRY(b, cudaStreamSynchronize(stream_of(b)));
    b->n_sync++;
    return QF_OK;
}

static int cuda_sync(qf_backend *b) {
    QF_CUDA_TRY(b, cudaStreamSynchronize(stream_of(b)));
    b->n_sync++;
    return QF_OK;
}

// profile=N: the iterations between start and stop are what `nsys --capture-range=cudaProfilerApi` records
static int cuda_profile(qf_backend *b, int on) {
    QF_CUDA_TRY(b, cudaStreamSynchronize(stream_of(b)));
    if (on)
        QF_CUDA_TRY(b, cudaProfilerStart());
    else
        QF_CUDA_TRY(b, cudaProfilerStop());
    return QF_OK;
}


static int cuda_env_reset(qf_backend *b, const qf_env_batch *batch) {
    const int64_t n = (int64_t)batch->R * batch->E;
    QF_LAUNCH(env_reset_kernel, grid_for(b, n, kBlock), kBlock, 0, stream_of(b))(*batch);
    QF_LAUNCH_CHECK(b, "env_reset_kernel");
    return QF_OK;
}

static int cuda_env_step(qf_backend *b, const qf_env_batch *batch, const int32_t *actions,
                         uint32_t t, float *next_obs, int32_t *next_index) {
    const int64_t n = (int64_t)batch->R * batch->E;
    QF_LAUNCH(env_step_kernel, grid_for(b, n, kBlock), kBlock, 0, stream_of(b))(*batch, actions, t,
                                                                         qf_cuda_impl(b)->iter, next_obs, next_index);
    QF_LAUNCH_CHECK(b, "env_step_kernel");
    return QF_OK;
}

static int cuda_env_observe(qf_backend *b, const qf_env_batch *batch, float *obs, int32_t *index) {
    const int64_t n = (int64_t)batch->R * batch->E;
    QF_LAUNCH(env_observe_kernel, grid_for(b, n, kBlock), kBlock, 0, stream_of(b))(*batch, obs, index);
    QF_LAUNCH_CHECK(b, "env_observe_kernel");
    return QF_OK;
}

// ------------------------------------------------------------------------------------------------
// peaks (backend.h): theoretical DRAM bandwidth and fp32 FLOP/s from device attributes (clock x bus
// width; SMs x FP32 lanes per SM x 2 x clock; CUDA 13's cudaDeviceProp has no clock fields) and a
// measured device-to-device copy on the backend's stream (read + write), the bandwidth bound used.

// Every call checked: on failure, b->err names the call and file:line, and the probe cleans up.
#define PEAK_TRY(call)                                                                              \
    do {                                                                                            \
        cudaError_t e_ = (call);                                                                    \
        if (e_ != cudaSuccess) {                                                                    \
            snprintf(b->err, sizeof b->err, "cuda backend: %s failed at %s:%d: %s", #call, __FILE__, \
                     __LINE__, cudaGetErrorString(e_));                                             \
            goto done;                                                                              \
        }                                                                                           \
    } while (0)

// Device-to-device copies of `bytes`, reps times, counted as read + write: bytes/s, or 0 with the
// reason in b->err.
static double probe_d2d(qf_backend *b, size_t bytes, int reps) {
    void *src = NULL, *dst = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    cudaStream_t st = stream_of(b);
    float ms = 0.0f;
    double bw = 0.0;
    PEAK_TRY(cudaMalloc(&src, bytes));
    PEAK_TRY(cudaMalloc(&dst, bytes));
    PEAK_TRY(cudaMemsetAsync(src, 1, bytes, st));
    PEAK_TRY(cudaEventCreate(&e0));
    PEAK_TRY(cudaEventCreate(&e1));
    PEAK_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st)); // warm-up
    PEAK_TRY(cudaEventRecord(e0, st));
    for (int r = 0; r < reps; r++) PEAK_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st));
    PEAK_TRY(cudaEventRecord(e1, st));
    PEAK_TRY(cudaEventSynchronize(e1));
    PEAK_TRY(cudaEventElapsedTime(&ms, e0, e1));
    if (ms > 0.0f) bw = 2.0 * (double)bytes * reps / (1e-3 * ms);
done:; // the releases are checked too: a failure there voids the measurement
    const cudaError_t r0 = e0 ? cudaEventDestroy(e0) : cudaSuccess, r1 = e1 ? cudaEventDestroy(e1) : cudaSuccess;
    const cudaError_t r2 = src ? cudaFree(src) : cudaSuccess, r3 = dst ? cudaFree(dst) : cudaSuccess;
    const cudaError_t rel = r0 != cudaSuccess ? r0 : r1 != cudaSuccess ? r1 : r2 != cudaSuccess ? r2 : r3;
    if (rel != cudaSuccess && bw > 0.0) {
        snprintf(b->err, sizeof b->err, "cuda backend: releasing the copy probe's buffers failed at %s:%d: %s",
                 __FILE__, __LINE__, cudaGetErrorString(rel));
        bw = 0.0;
    }
    return bw;
}

static int cuda_peaks(qf_backend *b, qf_peaks *out) {
    memset(out, 0, sizeof *out);
    int dev = 0, clock_khz = 0, mem_khz = 0, bus_bits = 0, sms = 0, major = 0, minor = 0;
    size_t free_b = 0, total_b = 0;
    QF_CUDA_TRY(b, cudaGetDevice(&dev));
    QF_CUDA_TRY(b, cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev));
    QF_CUDA_TRY(b, cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, dev));
    QF_CUDA_TRY(b, cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev));
    QF_CUDA_TRY(b, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    QF_CUDA_TRY(b, cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    QF_CUDA_TRY(b, cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    QF_CUDA_TRY(b, cudaMemGetInfo(&free_b, &total_b));
    const int lanes = qf_fp32_lanes_per_sm(major, minor);
    out->theo_bytes_per_s = 2.0 * (double)mem_khz * 1e3 * (double)bus_bits / 8.0; // DDR/HBM: 2 per clock
    out->theo_flops = (double)sms * lanes * 2.0 * (double)clock_khz * 1e3;
    char why[200] = "";
    double copy = 0.0;
    if (free_b > ((size_t)600 << 20)) {
        copy = probe_d2d(b, (size_t)256 << 20, 10);
        if (copy <= 0.0) snprintf(why, sizeof why, "%.190s", b->err);
    } else {
        snprintf(why, sizeof why, "under 600 MiB free");
    }
    out->bytes_per_s = copy > 0 ? copy : out->theo_bytes_per_s;
    out->flops = out->theo_flops;
    char cp[240];
    if (copy > 0)
        snprintf(cp, sizeof cp, "%.4g GB/s measured (device-to-device copy of 256 MiB, read + write, 10 reps)",
                 copy / 1e9);
    else
        snprintf(cp, sizeof cp, "copy not measured (%.150s)", why);
    snprintf(out->how, sizeof out->how,
             "%s; theoretical %.4g GB/s (2 x %d MHz x %d-bit bus), %.4g GFLOP/s fp32 (%d SMs x %d FP32 lanes "
             "(sm_%d%d) x 2 x %d MHz boost clock%s)",
             cp, out->theo_bytes_per_s / 1e9, mem_khz / 1000, bus_bits, out->theo_flops / 1e9, sms, lanes, major,
             minor, clock_khz / 1000, lanes ? "" : ": lanes unknown for this architecture");
    return QF_OK;
}
#undef PEAK_TRY

// ------------------------------------------------------------------------------------------------
// CUDA graphs of one training iteration (docs/cuda-graphs.md): the host enqueues the iteration's
// operations between begin and end capture; they read the per-iteration values from the device
// counters (impl->iter), so one recording serves every iteration.

static int cuda_iter_begin_capture(qf_backend *b, const qf_iter *it) {
    cuda_impl *impl = qf_cuda_impl(b);
    if (!it) {
        snprintf(b->err, sizeof b->err, "cuda backend: iter_begin_capture needs the device counters (it is NULL)");
        return QF_ERR;
    }
    // global mode: a synchronous call from any thread during the capture invalidates it (and is
    // reported), so nothing in the iteration can wait for the device unseen
    QF_CUDA_TRY(b, cudaStreamBeginCapture(impl->stream, cudaStreamCaptureModeGlobal));
    impl->iter = it;
    return QF_OK;
}

static int cuda_iter_advance(qf_backend *b, qf_iter *it, uint32_t dt, uint32_t du) {
    QF_LAUNCH(iter_advance_kernel, 1, 1, 0, stream_of(b))(it, dt, du);
    QF_LAUNCH_CHECK(b, "iter_advance_kernel");
    return QF_OK;
}

static int cuda_iter_end_capture(qf_backend *b, void **graph) {
    cuda_impl *impl = qf_cuda_impl(b);
    impl->iter = NULL;
    cudaGraph_t g = NULL;
    const cudaError_t e = cudaStreamEndCapture(impl->stream, &g);
    if (graph) *graph = NULL;
    if (e != cudaSuccess || !graph) { // a failed capture, or one the caller discards
        const cudaError_t ed = g ? cudaGraphDestroy(g) : cudaSuccess;
        if (!graph) { // the failure being unwound was reported by the caller already: clear, and keep going
            (void)cudaGetLastError();
            return QF_OK;
        }
        QF_CUDA_TRY(b, ed);
        snprintf(b->err, sizeof b->err, "cuda backend: cudaStreamEndCapture failed at %s:%d: %s (an operation "
                 "of the captured iteration synchronized or failed)", __FILE__, __LINE__, cudaGetErrorString(e));
        return QF_ERR;
    }
    cudaGraphExec_t exec = NULL;
    const cudaError_t ei = cudaGraphInstantiate(&exec, g, 0);
    const cudaError_t ed = cudaGraphDestroy(g);
    QF_CUDA_TRY(b, ei);
    if (ed != cudaSuccess) {
        cudaGraphExecDestroy(exec);
        QF_CUDA_TRY(b, ed);
    }
    *graph = (void *)exec;
    return QF_OK;
}

static int cuda_iter_replay(qf_backend *b, void *graph) {
    QF_CUDA_TRY(b, cudaGraphLaunch((cudaGraphExec_t)graph, stream_of(b)));
    b->n_launch++;
    return QF_OK;
}

// Nothing to return (as release): a failure is left in b->err, for whoever reads it next.
static void cuda_iter_release(qf_backend *b, void *graph) {
    if (!graph) return;
    const cudaError_t e = cudaGraphExecDestroy((cudaGraphExec_t)graph);
    if (e != cudaSuccess)
        snprintf(b->err, sizeof b->err, "cuda backend: cudaGraphExecDestroy failed at %s:%d: %s", __FILE__, __LINE__,
                 cudaGetErrorString(e));
}

static void cuda_close(qf_backend *b) {
    cuda_impl *impl = (cuda_impl *)b->impl;
    if (impl) {
        cudaStreamSynchronize(impl->stream);
        if (impl->blas) cublasDestroy(impl->blas);
        if (impl->blas_workspace) cudaFree(impl->blas_workspace);
        cudaStreamDestroy(impl->stream);
        free(impl);
    }
    free(b);
}

// Opening fails softly, with the reason, when there is no driver, no device or no context.
extern "C" qf_backend *qf_cuda_open(char *err, size_t err_len) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        snprintf(err, err_len, "no usable CUDA device (%s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "no device found");
        return NULL;
    }
    // one GPU per process: QFLEET_DEVICE, else the local rank under mpirun (rank r of a node takes
    // GPU r mod count), else GPU 0
    int dev = 0;
    const char *names[] = {"QFLEET_DEVICE", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK"};
    for (const char *nm : names) {
        const char *v = getenv(nm);
        if (v && *v) {
            dev = atoi(v) % count;
            break;
        }
    }
    e = cudaSetDevice(dev);
    if (e == cudaSuccess) e = cudaFree(0); // creates the context: driver problems surface here
    if (e != cudaSuccess) {
        snprintf(err, err_len, "CUDA device %d cannot be used: %s", dev, cudaGetErrorString(e));
        return NULL;
    }
    qf_backend *b = (qf_backend *)calloc(1, sizeof *b);
    cuda_impl *impl = (cuda_impl *)calloc(1, sizeof *impl);
    if (!b || !impl) {
        free(b);
        free(impl);
        snprintf(err, err_len, "cuda backend: out of host memory");
        return NULL;
    }
    b->impl = impl;
    cudaDeviceProp prop;
    int clock_khz = 0, bus_bits = 0;
    size_t free_b = 0, total_b = 0;
    e = cudaGetDeviceProperties(&prop, dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev);
    if (e == cudaSuccess) e = cudaMemGetInfo(&free_b, &total_b);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking);
#ifndef QFLEET_CUDA_EMU
    // cuBLAS is loaded here, on a usable device, not at every start of qfleet (cublas_lazy.c)
    if (e == cudaSuccess && qf_cublas_load(err, err_len) != 0) {
        cudaStreamDestroy(impl->stream);
        free(impl);
        free(b);
        return NULL;
    }
#endif
    if (e == cudaSuccess && cublasCreate(&impl->blas) != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, err_len, "cuda backend: cublasCreate failed");
        cudaStreamDestroy(impl->stream);
        free(impl);
        free(b);
        return NULL;
    }
    if (e == cudaSuccess && cublasSetStream(impl->blas, impl->stream) != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, err_len, "cuda backend: cublasSetStream failed");
        cublasDestroy(impl->blas);
        cudaStreamDestroy(impl->stream);
        free(impl);
        free(b);
        return NULL;
    }
    // cuBLAS's workspace, owned here (after cublasSetStream, which resets it): GEMMs captured into
    // a graph then need no allocation (32 MiB: what the cuBLAS guide recommends for Hopper)
    const size_t ws_bytes = (size_t)32 << 20;
    if (e == cudaSuccess && (e = cudaMalloc(&impl->blas_workspace, ws_bytes)) != cudaSuccess) {
        snprintf(err, err_len, "cuda backend: cudaMalloc of cuBLAS's %zu-byte workspace failed: %s", ws_bytes,
                 cudaGetErrorString(e));
        cublasDestroy(impl->blas);
        cudaStreamDestroy(impl->stream);
        free(impl);
        free(b);
        return NULL;
    }
    if (e == cudaSuccess && cublasSetWorkspace(impl->blas, impl->blas_workspace, ws_bytes) != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, err_len, "cuda backend: cublasSetWorkspace failed");
        cublasDestroy(impl->blas);
        cudaFree(impl->blas_workspace);
        cudaStreamDestroy(impl->stream);
        free(impl);
        free(b);
        return NULL;
    }
    if (e != cudaSuccess) {
        snprintf(err, err_len, "cuda backend: querying device 0 failed: %s", cudaGetErrorString(e));
        free(impl);
        free(b);
        return NULL;
    }
    free_b = free_b > ws_bytes ? free_b - ws_bytes : 0;
    impl->sm_count = prop.multiProcessorCount;
    b->kind = QF_BACKEND_CUDA;
    b->name = "cuda";
    snprintf(b->device, sizeof b->device, "GPU %d: %.170s, sm_%d%d, %d SMs, %.1f GiB", dev, prop.name, prop.major,
             prop.minor, prop.multiProcessorCount, (double)total_b / (1 << 30));
    b->mem_total = total_b;
    b->mem_free = free_b;
    b->peak_bytes_per_s = 2.0 * (double)clock_khz * 1e3 * (double)bus_bits / 8.0; // DDR: 2 per clock
    b->alloc = cuda_alloc;
    b->release = cuda_release;
    b->upload = cuda_upload;
    b->download = cuda_download;
    b->sync = cuda_sync;
    b->profile = cuda_profile;
    b->env_reset = cuda_env_reset;
    b->env_step = cuda_env_step;
    b->env_observe = cuda_env_observe;
    b->iter_begin_capture = cuda_iter_begin_capture;
    b->iter_advance = cuda_iter_advance;
    b->iter_end_capture = cuda_iter_end_capture;
    b->iter_replay = cuda_iter_replay;
    b->iter_release = cuda_iter_release;
    b->solve = qf_solve_cuda;
    b->peaks = cuda_peaks;
    qf_cuda_learn_ops(b);
    qf_cuda_bandit_ops(b);
    qf_cuda_infer_ops(b);
    b->close = cuda_close;
    return b;
}
