/* bandit_cpu.c — the CPU bandit-agent operation: one step of every bandit instance of a fleet,
 * by the element function of kernels/bandit_agent.h (the one the CUDA kernel calls).
 * Instances are visited in blocks of consecutive instances of one run, so (r, e) is computed once
 * per block; OpenMP shares the blocks statically (results do not depend on the thread count) only
 * when there is enough work (a parallel region on a busy machine waits for descheduled threads,
 * see docs/design-notes.md). */
#include "../backend.h"
#include "../bandit_agent.h"

#define QF_BANDIT_BLOCK 1024

static int cpu_bandit_step(qf_backend *b, const struct qf_bandit_fleet *f, uint32_t t) {
    (void)b;
    qf_cpu_threads_tick(); /* one pull per iteration: the auto team size's clock, as env_step's */
    const int64_t per_run = ((int64_t)f->E + QF_BANDIT_BLOCK - 1) / QF_BANDIT_BLOCK;
    const int64_t blocks = per_run * f->R, n = (int64_t)f->R * f->E;
#pragma omp parallel for schedule(static) if (blocks > 1 && n >= 2 * QF_BANDIT_BLOCK)
    for (int64_t blk = 0; blk < blocks; blk++) {
        const int32_t r = (int32_t)(blk / per_run);
        const int32_t e0 = (int32_t)(blk % per_run) * QF_BANDIT_BLOCK;
        const int32_t e1 = e0 + QF_BANDIT_BLOCK < f->E ? e0 + QF_BANDIT_BLOCK : f->E;
        for (int32_t e = e0; e < e1; e++) qf_bandit_agent_step(f, r, e, t);
    }
    return QF_OK;
}

void qf_cpu_bandit_ops(qf_backend *b) { b->bandit_step = cpu_bandit_step; }
