/* spec.c — instantiates the environment tables from the X-macros in the environment headers. */
#include "spec.h"

#include <stdio.h>
#include <string.h>

#include "np_mt19937.h"

#define QF_ROW(S, field, type, def, lo, hi, doc) {#field, type, offsetof(S, field), def, lo, hi, doc},

static const qf_param_spec deep_sea_params[] = {QF_DEEP_SEA_PARAMS(QF_ROW)};
static const qf_param_spec cartpole_params[] = {QF_CARTPOLE_PARAMS(QF_ROW)};
static const qf_param_spec mountain_car_params[] = {QF_MOUNTAIN_CAR_PARAMS(QF_ROW)};
static const qf_param_spec chain_params[] = {QF_CHAIN_PARAMS(QF_ROW)};
static const qf_param_spec bandit_params[] = {QF_BANDIT_PARAMS(QF_ROW)};
static const qf_param_spec gridworld_params[] = {QF_GRIDWORLD_PARAMS(QF_ROW)};

#define QF_N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const qf_env_spec specs[QF_ENV_COUNT] = {
    {"deep_sea", QF_ENV_DEEP_SEA, "bsuite DeepSea: N x N grid, deep exploration, optimal return 0.99",
     deep_sea_params, QF_N(deep_sea_params)},
    {"cartpole", QF_ENV_CARTPOLE, "Gymnasium CartPole-v1: balance a pole, +1 per step, 500-step limit",
     cartpole_params, QF_N(cartpole_params)},
    {"mountain_car", QF_ENV_MOUNTAIN_CAR, "Gymnasium MountainCar-v0: drive up the hill, -1 per step",
     mountain_car_params, QF_N(mountain_car_params)},
    {"chain", QF_ENV_CHAIN, "RiverSwim-style N-state chain: small reward left, large reward far right",
     chain_params, QF_N(chain_params)},
    {"bandit", QF_ENV_BANDIT, "K-armed Bernoulli bandit, one-step episodes", bandit_params,
     QF_N(bandit_params)},
    {"gridworld", QF_ENV_GRIDWORLD,
     "objectworld-style N x N grid, 5 actions, slip, reward linear in object-distance features (IRL)",
     gridworld_params, QF_N(gridworld_params)},
};

const qf_env_spec *qf_env_spec_of(int kind) {
    return (kind >= 0 && kind < QF_ENV_COUNT) ? &specs[kind] : NULL;
}

int qf_env_find(const char *name) {
    for (int k = 0; k < QF_ENV_COUNT; k++)
        if (strcmp(specs[k].name, name) == 0) return k;
    return -1;
}

const qf_param_spec *qf_env_param_find(int kind, const char *name) {
    const qf_env_spec *s = qf_env_spec_of(kind);
    if (!s) return NULL;
    for (int j = 0; j < s->n_params; j++)
        if (strcmp(s->params[j].name, name) == 0) return &s->params[j];
    return NULL;
}

void qf_env_params_default(int kind, qf_env_params *p) {
    memset(p, 0, sizeof *p);
    const qf_env_spec *s = qf_env_spec_of(kind);
    if (!s) return;
    for (int j = 0; j < s->n_params; j++) {
        const qf_param_spec *ps = &s->params[j];
        char *dst = (char *)p + ps->offset;
        if (ps->type == QF_P_FLOAT) {
            float v = (float)ps->def;
            memcpy(dst, &v, sizeof v);
        } else if (ps->type == QF_P_INT || ps->type == QF_P_BOOL || ps->type == QF_P_CHOICE) {
            int32_t v = (int32_t)ps->def;
            memcpy(dst, &v, sizeof v);
        } /* lists start empty (memset) */
    }
    if (kind == QF_ENV_DEEP_SEA) {
        p->deep_sea.solved_threshold = QF_BSUITE_SOLVED_THRESHOLD;
        p->deep_sea.converge_return = QF_STUDY_CONVERGE_RETURN;
    }
}

int qf_env_choice_find(const qf_param_spec *ps, const char *val) {
    const char *c = ps->doc, *end = strstr(c, ": ");
    const size_t len = strlen(val);
    for (int i = 0; c < end; i++) {
        size_t w = strcspn(c, "|:");
        if (w == len && strncmp(c, val, len) == 0) return i;
        c += w + 1;
    }
    return -1;
}

void qf_env_choice_names(const qf_param_spec *ps, char *out, size_t len) {
    const char *end = strstr(ps->doc, ": ");
    snprintf(out, len, "%.*s", (int)(end - ps->doc), ps->doc);
}

void qf_env_param_format(const qf_param_spec *ps, const qf_env_params *p, char *out, size_t len) {
    if (ps->type == QF_P_LIST) {
        size_t used = (size_t)snprintf(out, len, "[");
        for (int a = 0; a < p->bandit.n_probs && used < len; a++)
            used += (size_t)snprintf(out + used, len - used, "%s%g", a ? "," : "", p->bandit.probs[a]);
        if (used < len) snprintf(out + used, len - used, "]");
    } else if (ps->type == QF_P_CHOICE) {
        const int idx = (int)qf_env_param_get(ps, p);
        const char *c = ps->doc;
        for (int i = 0; i < idx; i++) c += strcspn(c, "|:") + 1;
        snprintf(out, len, "%.*s", (int)strcspn(c, "|:"), c);
    } else {
        snprintf(out, len, "%g", qf_env_param_get(ps, p));
    }
}

void qf_deep_sea_fill_table(uint32_t *bits, int32_t n, uint32_t seed, int ones) {
    memset(bits, 0, sizeof(uint32_t) * (QF_DEEP_SEA_TABLE_CELLS / 32));
    qf_np_mt19937 m;
    qf_np_mt19937_seed(&m, seed);
    /* numpy fills the [n, n] array in C order: draw j is cell (j / n, j % n) */
    for (int32_t j = 0; j < n * n; j++) {
        const int64_t bit = ones ? 1 : qf_np_legacy_binomial(&m, 1, 0.5);
        if (bit) bits[j >> 5] |= 1u << (j & 31);
    }
}

double qf_env_param_get(const qf_param_spec *ps, const qf_env_params *p) {
    const char *src = (const char *)p + ps->offset;
    if (ps->type == QF_P_FLOAT) {
        float v;
        memcpy(&v, src, sizeof v);
        return v;
    }
    if (ps->type == QF_P_LIST) return p->bandit.n_probs; /* the only list parameter */
    int32_t v;
    memcpy(&v, src, sizeof v);
    return v;
}

int qf_env_params_check(int kind, qf_env_params *p, char *msg, size_t msg_len) {
    if (kind == QF_ENV_BANDIT) {
        if (p->bandit.n_probs > 0) p->bandit.arms = p->bandit.n_probs;
    }
    if (kind == QF_ENV_DEEP_SEA && (int64_t)p->deep_sea.size * p->deep_sea.size > (1 << 24)) {
        snprintf(msg, msg_len, "env.size=%d gives %lld cells; at most 2^24 are allowed",
                 p->deep_sea.size, (long long)p->deep_sea.size * p->deep_sea.size);
        return -1;
    }
    if (kind == QF_ENV_DEEP_SEA && p->deep_sea.mapping != QF_DEEP_SEA_MAP_PHILOX) {
        qf_deep_sea_params *d = &p->deep_sea;
        const char *name = d->mapping == QF_DEEP_SEA_MAP_BSUITE ? "bsuite" : "ones";
        if (d->size > QF_DEEP_SEA_TABLE_MAX) {
            snprintf(msg, msg_len, "env.mapping=%s supports env.size up to %d (bsuite's sweep goes to 50), "
                     "got env.size=%d; env.mapping=philox takes any size", name, QF_DEEP_SEA_TABLE_MAX, d->size);
            return -1;
        }
        if (d->map_per_run) {
            snprintf(msg, msg_len, "env.map_per_run=1 draws Philox mappings from each run's key; with "
                     "env.mapping=%s the mapping comes from env.map_seed (sweep it, e.g. env.map_seed=1,2,3)", name);
            return -1;
        }
        qf_deep_sea_fill_table(d->map_bits, d->size, (uint32_t)d->map_seed, d->mapping == QF_DEEP_SEA_MAP_ONES);
    }
    if (kind == QF_ENV_GRIDWORLD && p->gridworld.objects < p->gridworld.colours) {
        snprintf(msg, msg_len, "env.objects=%d is less than env.colours=%d: every colour needs an object",
                 p->gridworld.objects, p->gridworld.colours);
        return -1;
    }
    return 0;
}
