/* vecenv.h — a batch of R runs x E envs living on a backend: one allocation carved into the named
 * arrays of qf_env_batch, plus the per-run parameters and keys. Backend-agnostic. */
#ifndef QF_VECENV_H
#define QF_VECENV_H
#include "../kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qf_vecenv {
    qf_backend *backend;
    qf_env_batch batch; /* device pointers */
    void *block;        /* the one allocation */
    size_t bytes;
    int32_t obs_dim, n_actions, n_states;
} qf_vecenv;

/* Device bytes a batch of R x E envs of this kind needs (obs buffers not included). */
size_t qf_vecenv_bytes(int64_t R, int64_t E);

/* Create the batch on backend b. params: [R] host array (all runs must share obs_dim and actions);
 * keys: [R][2] host array (seed, run id). Envs are reset. Returns QF_OK, or QF_ERR with the reason
 * in err. */
int qf_vecenv_create(qf_vecenv *v, qf_backend *b, int kind, int32_t R, int32_t E,
                     const qf_env_params *params, const uint32_t *keys, char *err, size_t err_len);
void qf_vecenv_destroy(qf_vecenv *v);

#ifdef __cplusplus
}
#endif
#endif /* QF_VECENV_H */
