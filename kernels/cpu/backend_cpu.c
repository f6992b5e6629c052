/* backend_cpu.c — the CPU backend: the reference implementation of every operation.
 * Loops over the batch with OpenMP, calling the element functions of kernels/env_batch.h, the same
 * ones the CUDA kernels call. Results do not depend on the number of threads. */
#define _GNU_SOURCE
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backend.h"

int qf_cpu_threads(void) { return omp_get_max_threads(); }
void qf_cpu_set_threads(int n) { omp_set_num_threads(n > 0 ? n : omp_get_num_procs()); }

static void *cpu_alloc(qf_backend *b, size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) snprintf(b->err, sizeof b->err, "cpu backend: out of memory allocating %zu bytes", bytes);
    return p;
}
static void cpu_release(qf_backend *b, void *p) {
    (void)b;
    free(p);
}
/* Copies and syncs are counted like the GPU's host synchronizations (the benchmark reports them). */
static int cpu_copy(qf_backend *b, void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
    b->n_sync++;
    return QF_OK;
}
static int cpu_sync(qf_backend *b) {
    b->n_sync++;
    return QF_OK;
}

/* Envs are visited in blocks of QF_CPU_BLOCK consecutive envs of one run, so (r, e) is computed
 * once per block; OpenMP shares the blocks statically (results do not depend on the thread count)
 * once there are at least QF_CPU_BLOCK envs: below that a parallel region costs more than it saves,
 * and on a busy machine its barrier waits for descheduled threads. */
#define QF_CPU_BLOCK 2048
#define QF_FOR_EACH_BLOCK(batch, BODY)                                                             \
    do {                                                                                           \
        const int64_t per_run_ = ((int64_t)(batch)->E + QF_CPU_BLOCK - 1) / QF_CPU_BLOCK;           \
        const int64_t blocks_ = per_run_ * (batch)->R, n_ = (int64_t)(batch)->R * (batch)->E;     \
        _Pragma("omp parallel for schedule(static) if(blocks_ > 1 && n_ >= QF_CPU_BLOCK)")        \
        for (int64_t blk_ = 0; blk_ < blocks_; blk_++) {                                           \
            const int32_t r = (int32_t)(blk_ / per_run_);                                          \
            const int32_t e0 = (int32_t)(blk_ % per_run_) * QF_CPU_BLOCK;                          \
            const int32_t e1 = e0 + QF_CPU_BLOCK < (batch)->E ? e0 + QF_CPU_BLOCK : (batch)->E;    \
            BODY;                                                                                  \
        }                                                                                          \
    } while (0)
#define QF_FOR_EACH_ENV(batch, BODY) \
    QF_FOR_EACH_BLOCK(batch, for (int32_t e = e0; e < e1; e++) BODY)

static int cpu_env_reset(qf_backend *b, const qf_env_batch *batch) {
    (void)b;
    QF_FOR_EACH_ENV(batch, qf_batch_reset_one(batch, r, e));
    return QF_OK;
}

/* Random actions for the envs [e0, e1) of run r: a loop of its own, which the compiler vectorizes
 * (Philox is integer multiplies and xors), before the branchy env steps. */
static void draw_actions(const qf_env_batch *batch, int32_t r, int32_t e0, int32_t e1, uint32_t t,
                         int32_t *out) {
    const uint32_t k0 = batch->keys[2 * r], k1 = batch->keys[2 * r + 1];
    const int32_t n_act = qf_env_n_actions(batch->kind, &batch->params[r]);
    for (int32_t e = e0; e < e1; e++) out[e - e0] = qf_random_action(k0, k1, e, t, n_act);
}

static int cpu_env_step(qf_backend *b, const qf_env_batch *batch, const int32_t *actions,
                        uint32_t t, float *next_obs, int32_t *next_index) {
    (void)b;
    QF_FOR_EACH_BLOCK(batch, {
        const int64_t base = (int64_t)r * batch->E;
        int32_t drawn[QF_CPU_BLOCK];
        if (!actions) draw_actions(batch, r, e0, e1, t, drawn);
        for (int32_t e = e0; e < e1; e++)
            qf_batch_step_one(batch, r, e, actions ? actions[base + e] : drawn[e - e0], t, next_obs,
                              next_index);
    });
    return QF_OK;
}

static int cpu_env_observe(qf_backend *b, const qf_env_batch *batch, float *obs, int32_t *index) {
    (void)b;
    QF_FOR_EACH_ENV(batch, qf_batch_observe_one(batch, r, e, obs, index));
    return QF_OK;
}

static void cpu_close(qf_backend *b) { free(b); }

/* Name of the processor from /proc/cpuinfo (best effort). */
static void cpu_model(char *out, size_t len) {
    snprintf(out, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c += 1 + (c[1] == ' ');
                c[strcspn(c, "\n")] = 0;
                snprintf(out, len, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

qf_backend *qf_cpu_open(char *err, size_t err_len) {
    qf_backend *b = (qf_backend *)calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, err_len, "cpu backend: out of memory");
        return NULL;
    }
    b->kind = QF_BACKEND_CPU;
    b->name = "cpu";
    char model[200];
    cpu_model(model, sizeof model);
    snprintf(b->device, sizeof b->device, "%s, %d threads", model, omp_get_max_threads());
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    b->mem_total = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : 0;
    b->mem_free = avail > 0 && psz > 0 ? (size_t)avail * (size_t)psz : b->mem_total;
    b->peak_bytes_per_s = 0;
    b->alloc = cpu_alloc;
    b->release = cpu_release;
    b->upload = cpu_copy;
    b->download = cpu_copy;
    b->sync = cpu_sync;
    b->env_reset = cpu_env_reset;
    b->env_step = cpu_env_step;
    b->env_observe = cpu_env_observe;
    b->solve = qf_solve_cpu;
    qf_cpu_learn_ops(b);
    qf_cpu_bandit_ops(b);
    b->close = cpu_close;
    return b;
}
