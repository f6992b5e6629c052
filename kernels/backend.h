/* backend.h — the backend API: memory and operations on one device, as a table of functions.
 * Two implementations: kernels/cpu (C11 + OpenMP, the reference, always built) and kernels/cuda
 * (CUDA C, built when nvcc is found). host/ calls only this header and never branches on the
 * backend. Every function returns QF_OK or QF_ERR; on QF_ERR, b->err holds one line saying what
 * failed, where (file:line) and, when there is one, a hint. */
#ifndef QF_BACKEND_H
#define QF_BACKEND_H
#include <stddef.h>
#include <stdint.h>
#include "env_batch.h"
#include "solve.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { QF_OK = 0, QF_ERR = -1 };
typedef enum { QF_BACKEND_CPU = 0, QF_BACKEND_CUDA = 1 } qf_backend_kind;

typedef struct qf_backend qf_backend;
struct qf_backend {
    qf_backend_kind kind;
    const char *name;       /* "cpu" or "cuda" */
    char device[256];       /* human-readable device description */
    size_t mem_total;       /* bytes of memory the backend allocates from */
    size_t mem_free;        /* bytes free when the backend was opened */
    double peak_bytes_per_s;/* memory bandwidth bound (0 when unknown) */
    char err[512];
    void *impl;

    void *(*alloc)(qf_backend *b, size_t bytes);                 /* zeroed; NULL on failure */
    void (*release)(qf_backend *b, void *p);
    int (*upload)(qf_backend *b, void *dst, const void *src, size_t bytes);
    int (*download)(qf_backend *b, void *dst, const void *src, size_t bytes);
    int (*sync)(qf_backend *b);
    /* every env of the batch starts a fresh episode; statistics cleared */
    int (*env_reset)(qf_backend *b, const qf_env_batch *batch);
    /* one step of every env at global step t; see qf_batch_step_one for the arguments */
    int (*env_step)(qf_backend *b, const qf_env_batch *batch, const int32_t *actions, uint32_t t,
                    float *next_obs, int32_t *next_index);
    /* observation of every env's current state */
    int (*env_observe)(qf_backend *b, const qf_env_batch *batch, float *obs, int32_t *index);
    /* exact solver: q [R][S][A] and v [R][S] (backend memory, double) receive Q* and V*;
     * iters (host int) receives the sweeps used. See solve.h. */
    int (*solve)(qf_backend *b, const qf_solve_problem *prob, double *q, double *v, int32_t *iters);
    void (*close)(qf_backend *b);
};

/* Open a backend. want: "auto" (CUDA if a usable GPU is present, else CPU, said in one line on
 * stderr), "cpu" or "cuda" (no fallback: fails with the reason in err). NULL on failure. */
qf_backend *qf_backend_open(const char *want, char *err, size_t err_len);
void qf_backend_close(qf_backend *b);

/* The implementations (kernels/cpu, kernels/cuda). qf_cuda_open fails with a reason when this
 * build has no CUDA backend or no usable GPU is present. */
qf_backend *qf_cpu_open(char *err, size_t err_len);
qf_backend *qf_cuda_open(char *err, size_t err_len);

/* The solver implementations (kernels/cpu/solve_cpu.c, kernels/cuda/solve_cuda.cu). */
int qf_solve_cpu(qf_backend *b, const qf_solve_problem *prob, double *q, double *v, int32_t *iters);
int qf_solve_cuda(qf_backend *b, const qf_solve_problem *prob, double *q, double *v, int32_t *iters);

/* Number of CPU threads the CPU backend uses (OpenMP), and setting it (n <= 0: all cores). */
int qf_cpu_threads(void);
void qf_cpu_set_threads(int n);

#ifdef __cplusplus
}
#endif
#endif /* QF_BACKEND_H */
