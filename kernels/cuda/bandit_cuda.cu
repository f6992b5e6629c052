// bandit_cuda.cu — the CUDA bandit-agent operation: one launch steps every bandit instance of a
// fleet (all runs, hence all strategies, at once), one thread per instance with a grid-stride
// loop. The per-instance work is kernels/bandit_agent.h, shared with the CPU reference; built with
// --fmad=false, so the arms chosen (and the counts) are bit-identical to the CPU backend's.
#include <stdio.h>

#include "../bandit_agent.h"
#include "cuda_impl.h"

__global__ void bandit_step_kernel(qf_bandit_fleet f, uint32_t t) {
    const int64_t n = (int64_t)f.R * f.E;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        qf_bandit_agent_step(&f, (int32_t)(i / f.E), (int32_t)(i % f.E), t);
}

static int cuda_bandit_step(qf_backend *b, const struct qf_bandit_fleet *f, uint32_t t) {
    const int block = 256;
    const int64_t n = (int64_t)f->R * f->E;
    int64_t grid = (n + block - 1) / block;
    const int64_t cap = (int64_t)qf_cuda_impl(b)->sm_count * 32;
    if (grid > cap) grid = cap;
    if (grid < 1) grid = 1;
    QF_LAUNCH(bandit_step_kernel, (unsigned)grid, block, 0, qf_cuda_impl(b)->stream)(*f, t);
    QF_LAUNCH_CHECK(b, bandit_step_kernel);
    return QF_OK;
}

void qf_cuda_bandit_ops(qf_backend *b) { b->bandit_step = cuda_bandit_step; }
