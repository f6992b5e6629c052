/* spec.h — the declared table of every environment (host side): name, doc, parameters with type,
 * default, bounds and a one-line doc. Listing (`qfleet envs`), `env.*` key parsing and validation
 * all read this table; the rows come from the X-macros in each environment header. */
#ifndef QF_SPEC_H
#define QF_SPEC_H
#include <stddef.h>
#include "envs.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qf_param_spec {
    const char *name;
    int type;      /* QF_P_INT, QF_P_FLOAT, QF_P_BOOL, QF_P_LIST, QF_P_CHOICE */
    size_t offset; /* into qf_env_params */
    double def, lo, hi;
    const char *doc;
} qf_param_spec;

typedef struct qf_env_spec {
    const char *name;
    int kind;
    const char *doc;
    const qf_param_spec *params;
    int n_params;
} qf_env_spec;

/* The spec of a kind (0 <= kind < QF_ENV_COUNT). */
const qf_env_spec *qf_env_spec_of(int kind);
/* Kind of the environment called name, or -1. */
int qf_env_find(const char *name);
/* Parameter `name` of a kind, or NULL. */
const qf_param_spec *qf_env_param_find(int kind, const char *name);
/* Fill p with the defaults of the kind. */
void qf_env_params_default(int kind, qf_env_params *p);
/* Cross-parameter checks and derived values after all values are set (bandit: arms = len(probs)
 * when probs are given; deep_sea: the mapping table of mapping=bsuite|ones). Returns 0 when valid,
 * else -1 with a one-line explanation in msg. */
int qf_env_params_check(int kind, qf_env_params *p, char *msg, size_t msg_len);
/* Value of a scalar parameter as double (lists: their length; choices: the index). */
double qf_env_param_get(const qf_param_spec *ps, const qf_env_params *p);
/* A QF_P_CHOICE parameter: the index of the name val, or -1; its names "a|b|c" into out. */
int qf_env_choice_find(const qf_param_spec *ps, const char *val);
void qf_env_choice_names(const qf_param_spec *ps, char *out, size_t len);
/* The value of a parameter as text that `env.<name>=` takes back (lists [a,b], choices by name). */
void qf_env_param_format(const qf_param_spec *ps, const qf_env_params *p, char *out, size_t len);
/* bsuite's DeepSea action mapping for mapping_seed = seed, numpy's RandomState(seed).binomial(1,
 * 0.5, [n, n]), into bits (bit row*n + col), n <= QF_DEEP_SEA_TABLE_MAX; ones = 1: all ones. */
void qf_deep_sea_fill_table(uint32_t *bits, int32_t n, uint32_t seed, int ones);

#ifdef __cplusplus
}
#endif
#endif /* QF_SPEC_H */
