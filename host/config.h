/* config.h — every key qfleet understands, declared once in a table (name, type, bounds, default,
 * doc). Parsing of `key=value` words, validation, `qfleet help keys` and the resolved configuration
 * all come from that table. Environment parameters are `env.<name>` keys declared by the
 * environment's own spec (envs/spec.h). */
#ifndef QF_CONFIG_H
#define QF_CONFIG_H
#include <stdint.h>
#include <stdio.h>

#include "../envs/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qf_config {
    char backend[16];  /* auto | cpu | cuda */
    int env;           /* environment kind */
    int64_t envs;      /* envs per run (E) */
    int64_t runs;      /* runs per seed: the fleet has runs * seeds runs */
    int64_t seeds;     /* seeds per run: run (c, s) draws from key (seed + s, c) */
    int64_t seed;      /* base seed; run r gets key (seed, r) */
    int64_t steps;     /* steps to take (rollout) */
    char obs[16];      /* auto | index | dense | none */
    int64_t threads;   /* CPU threads (0: all cores) */
    double seconds;    /* bench: seconds of timing per table cell */
    int64_t max_envs;  /* bench: largest envs value in the sweep 1k..max */
    int64_t max_runs;  /* bench train: largest fleet in the sweep 1, 16, 256, 4096 */
    char csv[512];     /* bench: also write results to this CSV file ("" = no) */
    double gamma;      /* discount */
    double alpha;      /* soft-Q temperature; 0 = hard max (DQN) */
    int64_t policy;    /* solve: also print the optimal policy */
    int64_t profile;   /* train: warm up, then capture this many iterations for a profiler */
    /* trainer */
    char explore[16];  /* epsilon | boltzmann | bootstrap | rnd | count */
    char bonus[16];    /* auto | none | rnd | count: intrinsic reward added to any strategy */
    int64_t heads;     /* bootstrap: ensemble heads K */
    double prior_scale, mask_p, ucb_c, beta;
    char act[16];      /* bootstrap acting: sample (one head per episode) | ucb (mean + c std) */
    int64_t rnd_width, rnd_dim, rnd_episodic;
    char count[16];    /* auto | exact | simhash */
    int64_t simhash_bits, count_table, count_act;
    char strategies[128]; /* bandits: comma-separated strategies */
    char explorers[128];  /* compare: comma-separated exploration strategies */
    char sizes[128];      /* compare: comma-separated DeepSea sizes */
    int64_t episodes;     /* compare: episodes per run and size */
    int64_t trials;       /* sweep: draws of the random-search axes */
    double checkpoint_seconds; /* sweep: seconds between checkpoints (0: none) */
    double bandit_eps, bandit_temp;
    char loss[16];     /* huber | squared */
    double lr, tau, eps_start, eps_end, huber, max_grad_norm;
    int64_t target_every, eps_steps, double_q, batch, buffer, learning_starts, train_every, updates;
    int64_t log_every;
    int64_t hidden[4]; /* hidden widths */
    int64_t n_hidden;  /* how many of them (0: linear / tabular) */
    char out[512];     /* results folder ("" = results/<env>__<explore>__<time>) */
    qf_env_params env_params; /* env.* keys over the environment's defaults */
} qf_config;

/* Fill cfg with defaults (deep_sea and its defaults). */
void qf_config_default(qf_config *cfg);

/* Apply `key=value` words. Returns 0, or -1 after writing one line to msg that names the key, the
 * value and what is allowed. env= is applied first, so env.* keys may come in any order. */
int qf_config_parse(qf_config *cfg, int argc, char **argv, char *msg, size_t msg_len);

/* Print the key table (for --help). */
void qf_config_print_keys(FILE *f);

/* The value of `key` (a key of the table or env.<name> of cfg's env) as text that parses back to
 * the same value; 0, or -1 for an unknown key. */
int qf_config_get(const qf_config *cfg, const char *key, char *out, size_t len);
/* The key table, by index (0 .. qf_config_key_count() - 1). */
int qf_config_key_count(void);
const char *qf_config_key_name(int i);

/* Print the resolved configuration as `key=value` lines (with the env's parameters). */
void qf_config_print(FILE *f, const qf_config *cfg);

#ifdef __cplusplus
}
#endif
#endif /* QF_CONFIG_H */
