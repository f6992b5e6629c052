// cuda_impl.h — what the CUDA backend's translation units share: the private state behind
// qf_backend.impl and the error-check macros (every CUDA and cuBLAS call, every launch).
#ifndef QF_CUDA_IMPL_H
#define QF_CUDA_IMPL_H
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>

#include "../backend.h"

typedef struct cuda_impl {
    cudaStream_t stream;
    cublasHandle_t blas;
    int sm_count;
    // Non-NULL while an iteration is being captured (iter_begin_capture .. iter_end_capture): the
    // per-iteration values the operations read at replay time (backend.h, qf_iter).
    const qf_iter *iter;
    void *blas_workspace; // cuBLAS's workspace, set explicitly so captured GEMMs allocate nothing
} cuda_impl;

static inline cuda_impl *qf_cuda_impl(qf_backend *b) { return (cuda_impl *)b->impl; }

#define QF_CUDA_TRY(b, call)                                                                        \
    do {                                                                                            \
        cudaError_t e_ = (call);                                                                    \
        if (e_ != cudaSuccess) {                                                                    \
            snprintf((b)->err, sizeof (b)->err, "cuda backend: %s failed at %s:%d: %s", #call,      \
                     __FILE__, __LINE__, cudaGetErrorString(e_));                                   \
            return QF_ERR;                                                                          \
        }                                                                                           \
    } while (0)

#define QF_CUBLAS_TRY(b, call)                                                                      \
    do {                                                                                            \
        cublasStatus_t s_ = (call);                                                                 \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                          \
            snprintf((b)->err, sizeof (b)->err, "cuda backend: %s failed at %s:%d: %s", #call,      \
                     __FILE__, __LINE__, cublasGetStatusString(s_));                                \
            return QF_ERR;                                                                          \
        }                                                                                           \
    } while (0)

// After every launch: the launch error, named by the kernel; the launch is counted (b->n_launch).
#define QF_LAUNCH_CHECK(b, name)                                                                    \
    do {                                                                                            \
        (b)->n_launch++;                                                                            \
        QF_CUDA_TRY(b, (cudaGetLastError()));                                                       \
    } while (0)

// Every launch is written QF_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...): <<<>>> under
// nvcc; the test shim (tests/cuda_emu, -DQFLEET_CUDA_EMU=ON) defines it to run the kernel on the CPU.
#ifndef QF_LAUNCH
#define QF_LAUNCH(kernel, grid, block, smem, stream) kernel<<<(grid), (block), (smem), (stream)>>>
#endif

// Elementwise kernels: blocks of kBlock threads, a grid-stride loop, one launch plus its check.
static const int kBlock = 256;
static inline unsigned blocks_for(int64_t n) {
    return (unsigned)((n + kBlock - 1) / kBlock < 1 ? 1 : (n + kBlock - 1) / kBlock);
}
#define GRID_FOR(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)
#define LAUNCH(b, kernel, n, ...)                                                                   \
    do {                                                                                            \
        QF_LAUNCH(kernel, blocks_for(n), kBlock, 0, qf_cuda_impl(b)->stream)(__VA_ARGS__);          \
        QF_LAUNCH_CHECK(b, #kernel);                                                                \
    } while (0)

// Installs the learner operations (learn_cuda.cu).
void qf_cuda_learn_ops(qf_backend *b);
// Installs the bandit-agent operations (bandit_cuda.cu).
void qf_cuda_bandit_ops(qf_backend *b);
// Installs the inference / IRL operations (infer_cuda.cu).
void qf_cuda_infer_ops(qf_backend *b);

#endif
