// infer_cuda.cu — control as inference and MaxEnt IRL on the GPU, the twin of
// kernels/cpu/infer_cpu.c (the specification). The per-element math is kernels/infer_ops.h, shared
// with the CPU; built with --fmad=false, so results differ from the CPU only by the last-bit
// differences of CUDA's exp, log and pow.
//
// Launch geometry: the backward pass is one thread per (run, state) per step t (T launches); the
// forward pass and the demo log-likelihood are one thread per run (the forward pass scatters mass
// to next states in state order, so it needs no atomics and gives the CPU's order of additions;
// a gather over predecessors would use the device better, and is left for when a GPU is at hand
// to measure it); feature products one thread per output; Adam one thread per parameter.
// Everything runs on the backend's stream; operations that allocate scratch synchronize it
// before releasing.
#include <stdio.h>

#include "../infer_ops.h"
#include "cuda_impl.h"

#define QF_INFER_QROW (QF_MAX_ARMS > QF_GRID_ACTIONS ? QF_MAX_ARMS : QF_GRID_ACTIONS)

// ------------------------------------------------------------------------------------------------
// checks: the first invalid run (or R) into *first

__global__ void infer_check_kernel(qf_infer_problem prob, int need_policy, int32_t *first) {
    GRID_FOR(r, prob.R) {
        if (qf_infer_check_run(&prob, &prob.params[r], prob.alpha[r], need_policy)) atomicMin(first, (int32_t)r);
    }
}

static int check(qf_backend *b, const qf_infer_problem *prob, int need_policy) {
    if (qf_infer_check_problem(prob, b->err, sizeof b->err)) return QF_ERR;
    int32_t *first = (int32_t *)b->alloc(b, sizeof(int32_t));
    if (!first) return QF_ERR;
    int32_t host = prob->R;
    int rc = QF_OK;
    if (b->upload(b, first, &host, sizeof host) != QF_OK) rc = QF_ERR;
    if (rc == QF_OK) {
        QF_LAUNCH(infer_check_kernel, blocks_for(prob->R), kBlock, 0, qf_cuda_impl(b)->stream)(*prob, need_policy, first);
        if (cudaGetLastError() != cudaSuccess || b->download(b, &host, first, sizeof host) != QF_OK) {
            snprintf(b->err, sizeof b->err, "cuda infer: the run check failed at %s:%d", __FILE__, __LINE__);
            rc = QF_ERR;
        }
    }
    if (rc == QF_OK && host < prob->R) { // say why, from the first invalid run's own values
        qf_env_params p;
        double alpha = 0.0;
        if (b->download(b, &p, prob->params + host, sizeof p) == QF_OK &&
            b->download(b, &alpha, prob->alpha + host, sizeof alpha) == QF_OK)
            qf_infer_run_message(qf_infer_check_run(prob, &p, alpha, need_policy), host, prob, &p, alpha, b->err,
                                 sizeof b->err);
        rc = QF_ERR;
    }
    b->release(b, first);
    return rc;
}

// ------------------------------------------------------------------------------------------------
// backward

__global__ void infer_zero_last_kernel(qf_infer_problem prob, double *v) {
    const int64_t S = prob.n_states, per_run = (int64_t)(prob.T + 1) * S;
    GRID_FOR(i, (int64_t)prob.R * S) { v[(i / S) * per_run + (int64_t)prob.T * S + i % S] = 0.0; }
}

__global__ void infer_backward_kernel(qf_infer_problem prob, int32_t t, double *v) {
    const int64_t S = prob.n_states, per_run = (int64_t)(prob.T + 1) * S;
    GRID_FOR(i, (int64_t)prob.R * S) {
        const int32_t r = (int32_t)(i / S), s = (int32_t)(i % S);
        double q_row[QF_INFER_QROW];
        double *vr = v + r * per_run;
        vr[(int64_t)t * S + s] = qf_infer_state(&prob, r, s, vr + (int64_t)(t + 1) * S, q_row);
    }
}

static int cuda_infer_backward(qf_backend *b, const qf_infer_problem *prob, double *v) {
    if (check(b, prob, 0)) return QF_ERR;
    const int64_t RS = (int64_t)prob->R * prob->n_states;
    LAUNCH(b, infer_zero_last_kernel, RS, *prob, v);
    for (int32_t t = prob->T - 1; t >= 0; t--) LAUNCH(b, infer_backward_kernel, RS, *prob, t, v);
    return QF_OK;
}

// ------------------------------------------------------------------------------------------------
// forward and log-likelihood: one thread per run

__global__ void infer_forward_kernel(qf_infer_problem prob, const double *v, const double *start,
                                     double *scratch, double *marg, double *occ) {
    const int64_t S = prob.n_states, A = prob.n_actions, T = prob.T;
    GRID_FOR(r, prob.R) {
        qf_infer_forward_run(&prob, (int32_t)r, v + r * (T + 1) * S, start ? start + r * S : NULL,
                             scratch + 2 * r * S, scratch + (2 * r + 1) * S, marg ? marg + r * T * S : NULL,
                             occ ? occ + r * S * A : NULL);
    }
}

static int cuda_infer_forward(qf_backend *b, const qf_infer_problem *prob, const double *v,
                              const double *start, double *marg, double *occ) {
    if (check(b, prob, 1)) return QF_ERR;
    double *scratch = (double *)b->alloc(b, sizeof(double) * 2 * (size_t)prob->R * (size_t)prob->n_states);
    if (!scratch) return QF_ERR;
    QF_LAUNCH(infer_forward_kernel, blocks_for(prob->R), kBlock, 0, qf_cuda_impl(b)->stream)(*prob, v, start, scratch,
                                                                                      marg, occ);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaStreamSynchronize(qf_cuda_impl(b)->stream);
    b->release(b, scratch);
    if (e != cudaSuccess) {
        snprintf(b->err, sizeof b->err, "cuda infer: forward pass failed at %s:%d: %s", __FILE__, __LINE__,
                 cudaGetErrorString(e));
        return QF_ERR;
    }
    return QF_OK;
}

__global__ void infer_loglik_kernel(qf_infer_problem prob, const double *v, qf_demo_steps demos,
                                    double *loglik) {
    const int64_t per_run = (int64_t)(prob.T + 1) * prob.n_states;
    GRID_FOR(r, prob.R) { loglik[r] = qf_infer_demo_loglik_run(&prob, (int32_t)r, v + r * per_run, &demos); }
}

static int cuda_infer_loglik(qf_backend *b, const qf_infer_problem *prob, const double *v,
                             const qf_demo_steps *demos, double *loglik) {
    if (check(b, prob, 1)) return QF_ERR;
    LAUNCH(b, infer_loglik_kernel, prob->R, *prob, v, *demos, loglik);
    return QF_OK;
}

// ------------------------------------------------------------------------------------------------
// feature products and Adam

__global__ void feat_matvec_kernel(int32_t R, int32_t N, int32_t F, const double *feat, int64_t stride,
                                   const double *x, int transpose, double *y) {
    const int64_t out = transpose ? F : N;
    GRID_FOR(i, (int64_t)R * out) {
        const int64_t r = i / out, j = i % out;
        const double *fr = feat + r * stride;
        double acc = 0.0;
        if (!transpose) {
            for (int32_t k = 0; k < F; k++) acc += fr[j * F + k] * x[r * F + k];
        } else {
            for (int32_t n = 0; n < N; n++) acc += fr[(int64_t)n * F + j] * x[r * N + n];
        }
        y[i] = acc;
    }
}

static int cuda_feat_matvec(qf_backend *b, int32_t R, int32_t N, int32_t F, const double *feat,
                            int64_t feat_stride, const double *x, int transpose, double *y) {
    LAUNCH(b, feat_matvec_kernel, (int64_t)R * (transpose ? F : N), R, N, F, feat, feat_stride, x, transpose, y);
    return QF_OK;
}

__global__ void irl_adam_kernel(int32_t R, int32_t F, const double *expert, const double *expected,
                                const double *alpha, const double *lr, int32_t t, double *m, double *v,
                                double *psi, double *grad) {
    GRID_FOR(i, (int64_t)R * F) {
        const double g = qf_irl_adam_one(expert[i], expected[i], alpha[i / F], lr[i / F], t, &m[i], &v[i], &psi[i]);
        if (grad) grad[i] = g;
    }
}

static int cuda_irl_adam(qf_backend *b, int32_t R, int32_t F, const double *expert, const double *expected,
                         const double *alpha, const double *lr, int32_t t, double *m, double *v, double *psi,
                         double *grad) {
    LAUNCH(b, irl_adam_kernel, (int64_t)R * F, R, F, expert, expected, alpha, lr, t, m, v, psi, grad);
    return QF_OK;
}

void qf_cuda_infer_ops(qf_backend *b) {
    b->infer_backward = cuda_infer_backward;
    b->infer_forward = cuda_infer_forward;
    b->infer_loglik = cuda_infer_loglik;
    b->feat_matvec = cuda_feat_matvec;
    b->irl_adam = cuda_irl_adam;
}
