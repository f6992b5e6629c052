/* vecenv.c — allocation and set-up of an env batch on a backend. */
#include "vecenv.h"

#include <stdio.h>
#include <string.h>

static size_t align_up(size_t x) { return (x + 255) & ~(size_t)255; }

/* Carve the arrays out of `base` (NULL: only count). Returns the bytes used. */
static size_t carve(qf_env_batch *bt, char *base, int64_t R, int64_t E) {
    const size_t n = (size_t)(R * E);
    size_t off = 0;
#define QF_TAKE(field, type, count)                                                                \
    do {                                                                                           \
        if (base) bt->field = (type *)(base + off);                                                \
        off = align_up(off + sizeof(type) * (size_t)(count));                                      \
    } while (0)
    QF_TAKE(params, const qf_env_params, R);
    QF_TAKE(keys, const uint32_t, 2 * R);
    QF_TAKE(sf, float, QF_NF * n);
    QF_TAKE(si, int32_t, (QF_NI + 1) * n);
    QF_TAKE(ep_return, float, n);
    QF_TAKE(reward, float, n);
    QF_TAKE(flags, uint8_t, n);
    QF_TAKE(episodes, uint32_t, n);
    QF_TAKE(last_return, float, n);
    QF_TAKE(last_length, int32_t, n);
    QF_TAKE(treasures, uint32_t, n);
    QF_TAKE(bad_episodes, uint32_t, n);
    QF_TAKE(first_treasure, uint32_t, n);
    QF_TAKE(solved_at, uint32_t, n);
    QF_TAKE(converged_at, uint32_t, n);
    QF_TAKE(ret_sum, float, n);
    QF_TAKE(len_sum, int32_t, n);
#undef QF_TAKE
    return off;
}

size_t qf_vecenv_bytes(int64_t R, int64_t E) {
    qf_env_batch tmp;
    return carve(&tmp, NULL, R, E);
}

int qf_vecenv_create(qf_vecenv *v, qf_backend *b, int kind, int32_t R, int32_t E,
                     const qf_env_params *params, const uint32_t *keys, char *err, size_t err_len) {
    memset(v, 0, sizeof *v);
    if (R < 1 || E < 1) {
        snprintf(err, err_len, "a batch needs at least one run and one env (got runs=%d, envs=%d)", R, E);
        return QF_ERR;
    }
    v->obs_dim = qf_env_obs_dim(kind, &params[0]);
    v->n_actions = qf_env_n_actions(kind, &params[0]);
    v->n_states = qf_env_n_states(kind, &params[0]);
    for (int32_t r = 1; r < R; r++) {
        if (qf_env_obs_dim(kind, &params[r]) != v->obs_dim ||
            qf_env_n_actions(kind, &params[r]) != v->n_actions) {
            snprintf(err, err_len, "run %d has another observation size or action count than run 0; "
                                   "runs of one batch must share shapes", r);
            return QF_ERR;
        }
    }
    v->backend = b;
    v->bytes = qf_vecenv_bytes(R, E);
    v->block = b->alloc(b, v->bytes);
    if (!v->block) {
        snprintf(err, err_len, "%s", b->err);
        return QF_ERR;
    }
    carve(&v->batch, (char *)v->block, R, E);
    v->batch.kind = kind;
    v->batch.R = R;
    v->batch.E = E;
    if (b->upload(b, (void *)v->batch.params, params, sizeof(qf_env_params) * (size_t)R) != QF_OK ||
        b->upload(b, (void *)v->batch.keys, keys, sizeof(uint32_t) * 2 * (size_t)R) != QF_OK ||
        b->env_reset(b, &v->batch) != QF_OK || b->sync(b) != QF_OK) {
        snprintf(err, err_len, "%s", b->err);
        b->release(b, v->block);
        memset(v, 0, sizeof *v);
        return QF_ERR;
    }
    return QF_OK;
}

void qf_vecenv_destroy(qf_vecenv *v) {
    if (v->block) v->backend->release(v->backend, v->block);
    memset(v, 0, sizeof *v);
}
