// solve_cuda.cu — the exact solver on the GPU, the twin of kernels/cpu/solve_cpu.c (the
// specification): the same Jacobi sweeps, run bookkeeping and per-state math (qf_solve_state,
// kernels/solve_ops.h), one thread per (run, state) per sweep. Built with --fmad=false, so hard
// value iteration (alpha = 0) gives the CPU's values bit for bit; with alpha > 0 they differ by the
// last-bit differences of CUDA's exp and log.
//
// Convergence without floating-point atomics: a thread whose |V_new - V| is not below tol sets its
// run's `changed` flag with an integer atomicOr (a plain store from many threads is a data race in
// CUDA's memory model, and ThreadSanitizer flags it under the tests/cuda_emu shim);
// a small kernel then retires the runs whose flag stayed 0, exactly as the CPU does after a sweep.
// Work runs on the legacy default stream, bracketed by the backend's sync (its stream is idle
// before) and cudaDeviceSynchronize (everything is done after).
#include <cuda_runtime.h>
#include <stdio.h>

#include "../backend.h"
#include "../solve_ops.h"
#include "cuda_impl.h" // QF_LAUNCH

#define QF_SOLVE_TRY(call)                                                                          \
    do {                                                                                            \
        cudaError_t e_ = (call);                                                                    \
        if (e_ != cudaSuccess) {                                                                    \
            snprintf(b->err, sizeof b->err, "cuda solve: %s failed at %s:%d: %s", #call, __FILE__,  \
                     __LINE__, cudaGetErrorString(e_));                                             \
            goto fail;                                                                              \
        }                                                                                           \
    } while (0)

// One device allocation of scratch space, carved into these arrays.
struct solve_scratch {
    double *alt;      // [R*S] values of odd sweep counts (even ones live in v)
    int32_t *sweeps;  // [R] sweeps done per run
    int32_t *done;    // [R] 1 once a run has converged
    int32_t *changed; // [R] set during a sweep when some state moved by >= tol
    int32_t *counts;  // [2]: runs still going after the last sweep; first invalid run (or R)
};

static size_t align_up(size_t x) { return (x + 255) & ~(size_t)255; }

static size_t carve(solve_scratch *s, char *base, int64_t R, int64_t S) {
    size_t off = 0;
#define QF_TAKE(field, type, count)                                                                 \
    do {                                                                                            \
        if (base) s->field = (type *)(base + off);                                                  \
        off = align_up(off + sizeof(type) * (size_t)(count));                                       \
    } while (0)
    QF_TAKE(alt, double, R * S);
    QF_TAKE(sweeps, int32_t, R);
    QF_TAKE(done, int32_t, R);
    QF_TAKE(changed, int32_t, R);
    QF_TAKE(counts, int32_t, 2);
#undef QF_TAKE
    return off;
}

__global__ void solve_check_kernel(qf_solve_problem prob, solve_scratch sc) {
    for (int32_t r = blockIdx.x * blockDim.x + threadIdx.x; r < prob.R; r += gridDim.x * blockDim.x)
        if (qf_solve_check_run(prob.kind, &prob.params[r], prob.n_states, prob.n_actions, prob.gamma[r],
                               prob.alpha[r]))
            atomicMin(&sc.counts[1], r);
}

__global__ void solve_sweep_kernel(qf_solve_problem prob, solve_scratch sc, double *q, double *v) {
    const int64_t S = prob.n_states, n = (int64_t)prob.R * S;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int32_t r = (int32_t)(i / S), s = (int32_t)(i % S);
        if (sc.done[r]) continue;
        const int64_t base = (int64_t)r * S;
        const int odd = sc.sweeps[r] & 1;
        const double *cur = (odd ? sc.alt : v) + base;
        double *nxt = (odd ? v : sc.alt) + base;
        const double vn = qf_solve_state(prob.kind, &prob.params[r], prob.keys[2 * r], prob.keys[2 * r + 1],
                                         prob.gamma[r], prob.alpha[r], s, prob.n_actions, cur,
                                         q + i * prob.n_actions);
        const double old = cur[s];
        nxt[s] = vn;
        if (!(fabs(vn - old) < prob.tol)) atomicOr(&sc.changed[r], 1); // many threads of a run: atomic, not a racing store
    }
}

// After a sweep: count it for the runs still going, retire those that did not change.
__global__ void solve_status_kernel(int32_t R, solve_scratch sc) {
    for (int32_t r = blockIdx.x * blockDim.x + threadIdx.x; r < R; r += gridDim.x * blockDim.x) {
        if (sc.done[r]) continue;
        sc.sweeps[r] += 1;
        if (sc.changed[r]) {
            sc.changed[r] = 0;
            atomicAdd(&sc.counts[0], 1);
        } else {
            sc.done[r] = 1;
        }
    }
}

// The latest values of runs that stopped after an odd number of sweeps are in alt: copy them to v.
__global__ void solve_gather_kernel(int32_t R, int32_t S, solve_scratch sc, double *v) {
    const int64_t n = (int64_t)R * S;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        if (sc.sweeps[i / S] & 1) v[i] = sc.alt[i];
}

static unsigned grid_for(int64_t n, int block, int sm_count) {
    int64_t want = (n + block - 1) / block, cap = (int64_t)sm_count * 32;
    if (want > cap) want = cap;
    return (unsigned)(want < 1 ? 1 : want);
}

extern "C" int qf_solve_cuda(qf_backend *b, const qf_solve_problem *prob, double *q, double *v,
                             int32_t *iters) {
    if (qf_solve_check_problem(prob, b->err, sizeof b->err)) return QF_ERR;
    if (b->sync(b) != QF_OK) return QF_ERR; // the backend's stream is idle: inputs are in place
    const int32_t R = prob->R, S = prob->n_states, A = prob->n_actions;
    const int64_t RS = (int64_t)R * S;
    solve_scratch sc;
    void *block = NULL;
    int device = 0, sm_count = 1, ok = 0, most = 0, host_counts[2] = {0, 0};
    int32_t *host_sweeps = NULL;
    unsigned g_runs = 1, g_states = 1;
    const size_t bytes = carve(&sc, NULL, R, S);

    QF_SOLVE_TRY(cudaGetDevice(&device));
    QF_SOLVE_TRY(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
    g_runs = grid_for(R, kBlock, sm_count);
    g_states = grid_for(RS, kBlock, sm_count);
    block = b->alloc(b, bytes); // zeroed
    if (!block) return QF_ERR;
    carve(&sc, (char *)block, R, S);
    QF_SOLVE_TRY(cudaMemset(v, 0, sizeof(double) * (size_t)RS));
    QF_SOLVE_TRY(cudaMemset(q, 0, sizeof(double) * (size_t)RS * (size_t)A));
    host_counts[1] = R;
    QF_SOLVE_TRY(cudaMemcpy(sc.counts + 1, &host_counts[1], sizeof(int32_t), cudaMemcpyHostToDevice));

    QF_LAUNCH(solve_check_kernel, g_runs, kBlock, 0, 0)(*prob, sc);
    QF_SOLVE_TRY(cudaGetLastError());
    QF_SOLVE_TRY(cudaMemcpy(host_counts, sc.counts, sizeof host_counts, cudaMemcpyDeviceToHost));
    if (host_counts[1] < R) { // say why, from the first invalid run's own values
        const int32_t r = host_counts[1];
        qf_env_params p;
        double gamma = 0, alpha = 0;
        QF_SOLVE_TRY(cudaMemcpy(&p, prob->params + r, sizeof p, cudaMemcpyDeviceToHost));
        QF_SOLVE_TRY(cudaMemcpy(&gamma, prob->gamma + r, sizeof gamma, cudaMemcpyDeviceToHost));
        QF_SOLVE_TRY(cudaMemcpy(&alpha, prob->alpha + r, sizeof alpha, cudaMemcpyDeviceToHost));
        qf_solve_run_message(qf_solve_check_run(prob->kind, &p, S, A, gamma, alpha), r, prob->kind, &p,
                             prob, gamma, alpha, b->err, sizeof b->err);
        goto fail;
    }

    // Sweeps; how many runs are still going is read back now and then (a sweep after every run has
    // stopped changes nothing, so reading it late costs only idle launches, never different results).
    for (int32_t it = 0; it < prob->max_iters; it++) {
        QF_SOLVE_TRY(cudaMemsetAsync(sc.counts, 0, sizeof(int32_t)));
        QF_LAUNCH(solve_sweep_kernel, g_states, kBlock, 0, 0)(*prob, sc, q, v);
        QF_SOLVE_TRY(cudaGetLastError());
        QF_LAUNCH(solve_status_kernel, g_runs, kBlock, 0, 0)(R, sc);
        QF_SOLVE_TRY(cudaGetLastError());
        if (it < 64 || (it & 31) == 31 || it + 1 == prob->max_iters) {
            QF_SOLVE_TRY(cudaMemcpy(host_counts, sc.counts, sizeof(int32_t), cudaMemcpyDeviceToHost));
            if (host_counts[0] == 0) break;
        }
    }
    QF_LAUNCH(solve_gather_kernel, g_states, kBlock, 0, 0)(R, S, sc, v);
    QF_SOLVE_TRY(cudaGetLastError());
    QF_SOLVE_TRY(cudaDeviceSynchronize());

    host_sweeps = (int32_t *)malloc(sizeof(int32_t) * (size_t)R);
    if (!host_sweeps) {
        snprintf(b->err, sizeof b->err, "cuda solve: out of host memory");
        goto fail;
    }
    QF_SOLVE_TRY(cudaMemcpy(host_sweeps, sc.sweeps, sizeof(int32_t) * (size_t)R, cudaMemcpyDeviceToHost));
    for (int32_t r = 0; r < R; r++)
        if (host_sweeps[r] > most) most = host_sweeps[r];
    *iters = most;
    ok = 1;
fail:
    free(host_sweeps);
    if (block) {
        cudaDeviceSynchronize(); // nothing may still use the scratch (the error, if any, is reported)
        b->release(b, block);
    }
    return ok ? QF_OK : QF_ERR;
}
