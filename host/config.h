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

/* Commands: every key names the commands that use it; a key given to another command is refused. */
enum {
    QF_CMD_TRAIN = 1u << 0,
    QF_CMD_SWEEP = 1u << 1,
    QF_CMD_COMPARE = 1u << 2, /* also the main job (no command) */
    QF_CMD_SOLVE = 1u << 3,
    QF_CMD_BANDITS = 1u << 4,
    QF_CMD_BENCH_ENVS = 1u << 5,
    QF_CMD_BENCH_TRAIN = 1u << 6,
    QF_CMD_BENCH_EXPLORE = 1u << 7,
    QF_CMD_INFER = 1u << 8,
    QF_CMD_IRL = 1u << 9,
    QF_CMD_BENCH_IRL = 1u << 10,
    QF_CMD_COUNT = 11,
    QF_CMD_ALL = (1u << QF_CMD_COUNT) - 1u
};

/* How a key may vary inside a sweep: FLEET keys shape a fleet (points that differ in one run in
 * different fleets); RUN keys are per-run hyperparameters (qf_run_hp) and FREE keys change no shape
 * (seed, runs, threads), so points that differ only in these share a fleet; ONCE keys take one value
 * per sweep (cannot be swept). */
enum { QF_SCOPE_FLEET = 0, QF_SCOPE_RUN = 1, QF_SCOPE_FREE = 2, QF_SCOPE_ONCE = 3 };

/* Choice keys are parsed once into the enums the kernels use (kernels/learn.h, explore.h,
 * bandit_agent.h); QF_AUTO is the value of `auto` where a key offers it. */
#define QF_AUTO (-1)
/* backend=: QF_AUTO (the GPU when usable) or a qf_backend_kind (kernels/backend.h: QF_BACKEND_CPU, _CUDA) */
enum { QF_OBS_INDEX = 0, QF_OBS_DENSE = 1, QF_OBS_NONE = 2 }; /* obs= (QF_AUTO: index when discrete) */
#define QF_OBS_NAMES "index", "dense", "none"
enum { QF_GRAPHS_OFF = 0, QF_GRAPHS_ON = 1 }; /* cuda_graphs= (QF_AUTO: on where the backend has graphs) */
#define QF_GRAPHS_NAMES "off", "on"

#define QF_PATH_CAP 4096 /* out=, csv=: PATH_MAX on Linux, the longest path the system accepts */
#define QF_MAX_LIST 64   /* sizes=: at most this many items */
#define QF_MAX_HIDDEN 3  /* hidden=: at most this many layers */
#define QF_MAX_KEYS 256  /* capacity of the table (and of the `given` bitset) */

typedef struct qf_config {
    int32_t backend;   /* QF_AUTO | QF_BACKEND_* */
    int env;           /* environment kind */
    int64_t envs;      /* envs per run (E) */
    int64_t runs;      /* runs per seed: the fleet has runs * seeds runs */
    int64_t seeds;     /* seeds per run: run (c, s) draws from key (seed + s, c) */
    int64_t seed;      /* base seed; run r gets key (seed, r) */
    int64_t steps;     /* steps to take (rollout) */
    int32_t obs;       /* QF_AUTO | QF_OBS_* */
    int64_t threads;   /* CPU threads (0: all cores) */
    double seconds;    /* bench: seconds of timing per table cell */
    int64_t max_envs;  /* bench: largest envs value in the sweep 1k..max */
    int64_t max_runs;  /* bench train: largest fleet in the sweep 1, 16, 256, 4096 */
    char csv[QF_PATH_CAP]; /* bench: also write results to this CSV file ("" = no) */
    double gamma;      /* discount */
    double alpha;      /* soft-Q temperature; 0 = hard max (DQN) */
    int64_t policy;    /* solve: also print the optimal policy */
    int64_t profile;   /* train: warm up, then capture this many iterations for a profiler */
    int32_t cuda_graphs; /* QF_AUTO | QF_GRAPHS_OFF | QF_GRAPHS_ON: replay each training iteration as a CUDA graph */
    /* trainer */
    int32_t explore;   /* QF_EXPLORE_* */
    int32_t bonus;     /* QF_AUTO | QF_BONUS_*: intrinsic reward added to any strategy */
    int64_t heads;     /* bootstrap: ensemble heads K */
    int32_t head_batch; /* QF_HEAD_BATCH_*: one minibatch per run (shared) or one per head (separate) */
    double prior_scale, mask_p, ucb_c, beta;
    int32_t act;       /* QF_ACT_*: bootstrap acting (one head per episode | mean + c std) */
    int64_t rnd_width, rnd_dim, rnd_episodic;
    int64_t rnd_warmup; /* RND: steps per env of random actions that only warm up the observation statistics */
    int32_t rnd_input;  /* QF_RND_INPUT_*: RND's target and predictor read s' or the pair (s, a) */
    int32_t rnd_value;  /* QF_RND_VALUE_*: the bonus in Q's target, or learned by Q_I of its own */
    double gamma_int;   /* rnd_value=separate: Q_I's discount */
    int64_t rnd_act;    /* RND with (s, a) inputs: also act on Q + beta * bonus(s, a) */
    int32_t count;     /* QF_AUTO | QF_COUNT_EXACT | QF_COUNT_SIMHASH */
    int64_t simhash_bits, count_table, count_act;
    int32_t strategies[QF_MAX_LIST]; /* bandits: QF_BANDIT_* strategies compared */
    int32_t n_strategies;
    int32_t explorers[QF_MAX_LIST];  /* compare: QF_EXPLORE_* strategies compared */
    int32_t n_explorers;
    int32_t sizes[QF_MAX_LIST];      /* compare: DeepSea sizes */
    int32_t n_sizes;
    int64_t episodes;     /* compare: episodes per run and size */
    double solved_threshold; /* deep_sea: solved when bad episodes / episodes < this (bsuite: 0.9) */
    double converge_return;  /* deep_sea: converged at the first episode with return >= this (0.95) */
    int64_t trials;       /* sweep: draws of the random-search axes */
    int64_t prune;        /* sweep: stop a column of DeepSea sizes after this many cells without success (0: off) */
    double checkpoint_seconds; /* sweep: seconds between checkpoints (0: none) */
    double bandit_eps, bandit_temp;
    int32_t loss;      /* QF_LOSS_* */
    double lr, tau, eps_start, eps_end, huber, max_grad_norm;
    double weight_decay; /* AdamW's decoupled weight decay (0: Adam) */
    int64_t target_every, eps_steps, double_q, batch, buffer, learning_starts, train_every, updates;
    int64_t log_every;
    int64_t eval_every;    /* env steps per env between greedy evaluations (0: none) */
    int64_t eval_episodes; /* episodes per run of each greedy evaluation */
    int64_t hidden[QF_MAX_HIDDEN + 1]; /* hidden widths */
    int32_t activation; /* QF_ACTIVATION_*: the hidden layers' activation */
    int64_t n_hidden;  /* how many of them (0: linear / tabular) */
    char out[QF_PATH_CAP]; /* results folder ("" = results/<env>__<explore>__<time>) */
    /* solve / infer / irl: finite-horizon problems */
    int64_t horizon;        /* steps T (0: the env's time limit / episode length; solve: -1 infinite) */
    char temperatures[256]; /* infer: comma-separated temperatures, one run per value and env seed */
    int64_t env_seeds;      /* infer / irl: env seeds per point (env.map_seed + k, k < env_seeds) */
    char demos[256];        /* irl: comma-separated demonstration counts M ("": 64); train, sweep,
                               compare: expert episodes per run in its replay's demo part ("": 0),
                               read by qf_config_demos */
    double demo_ratio;      /* train: fraction of each minibatch drawn from the demo part */
    double demo_weight;     /* train: lambda, weight of the demo loss (learn.h, qf_demo_loss) */
    double demo_margin;     /* train, alpha = 0: margin of DQfD's large-margin loss */
    double demo_alpha;      /* irl: temperature of the demonstrator (and of the learner's model) */
    char demos_file[QF_PATH_CAP]; /* irl: demonstrations from this CSV (episode,t,state,action) */
    int64_t iters;          /* irl: gradient iterations */
    char lrs[256];          /* irl: comma-separated Adam learning rates */
    qf_env_params env_params; /* env.* keys over the environment's defaults */
    /* which keys a word set (bit i: key i of the table), for the checks across keys: a default
     * never triggers a refusal, only what the user (or a command's own preset) gave */
    uint64_t given[QF_MAX_KEYS / 64];
    /* not a key: set on the copy a fleet that is only timed gets (bench, --dry-run probes), which
     * then skips the exact solve of V*(s0) for regret (hours for DeepSea at env.size=4096) */
    int timing_only;
} qf_config;

/* Fill cfg with defaults (deep_sea and its defaults). */
void qf_config_default(qf_config *cfg);

/* Apply `key=value` words. Returns 0, or -1 after writing one line to msg that names the key, the
 * value and what is allowed. env= is applied first, so env.* keys may come in any order. */
int qf_config_parse(qf_config *cfg, int argc, char **argv, char *msg, size_t msg_len);

/* Print the key table grouped by the commands that use each key (`qfleet help keys`); with cmds
 * other than QF_CMD_ALL, only the keys those commands use. */
void qf_config_print_keys(FILE *f, unsigned cmds);

/* The command bit of "train", "sweep", "compare", "solve", "bandits", "bench envs", "bench train",
 * "bench explore" (also "envs", "train", "explore" after "bench"); 0 when unknown. */
unsigned qf_config_command(const char *name);
const char *qf_config_command_name(unsigned cmd);

/* Whether the key of `word` (key=value; env.<name> counts as env) is used by command cmd: 0, or -1
 * with "key lr is not used by `qfleet solve` ..." in msg. Unknown keys pass (the parser names them). */
int qf_config_key_for_command(const char *word, unsigned cmd, char *msg, size_t msg_len);

/* The checks across keys for command cmd (0: as train): contradictions such as explore=boltzmann
 * with alpha=0, or a key that no run of cmd would read (heads without a bootstrap run), judged on
 * what was given (cfg->given; a default never triggers one); 0, or -1 with one line in msg saying
 * what to change. */
int qf_config_check(const qf_config *cfg, unsigned cmd, char *msg, size_t msg_len);

/* The check of key i of the table alone: 0 when it passes, the key was not given or has no check;
 * -1 with msg otherwise, *unused (when not NULL) = 1 when the refusal says the key would be ignored
 * (heads without a bootstrap run), 0 when the configuration contradicts itself (explore=boltzmann
 * with alpha=0). A sweep refuses the first kind only when no point uses the key. */
int qf_config_check_one(const qf_config *cfg, unsigned cmd, int i, int *unused, char *msg, size_t msg_len);

/* Copy the keys that are per-run hyperparameters into hp (each row names its qf_run_hp field:
 * floats as float, integers saturated to int32, choices as their enum); the rest of hp is left
 * as it is (host/fleet.c derives what depends on several keys). */
struct qf_run_hp;
void qf_config_run_hp(const qf_config *cfg, struct qf_run_hp *hp);

/* Whether key `name` was set by a word. */
int qf_config_given(const qf_config *cfg, const char *name);

/* The name of a choice value (e.g. qf_config_choice_name("explore", QF_EXPLORE_RND) = "rnd"). */
const char *qf_config_choice_name(const char *key, int value);
/* The value of a choice name for key, or -2 when name is not one of its choices. */
int qf_config_choice_value(const char *key, const char *name);

/* The value of `key` (a key of the table or env.<name> of cfg's env) as text that parses back to
 * the same value; 0, or -1 for an unknown key. */
int qf_config_get(const qf_config *cfg, const char *key, char *out, size_t len);
/* The key table, by index (0 .. qf_config_key_count() - 1). */
int qf_config_key_count(void);
const char *qf_config_key_name(int i);
/* The demonstration count of a training command (key demos): one integer in [0, QF_MAX_DEMOS],
 * 0 when not given; -1 when the value is not one such integer. */
#define QF_MAX_DEMOS 100000
int64_t qf_config_demos(const qf_config *cfg);

/* The scope (QF_SCOPE_*) of key `name`; -1 for an unknown key. */
int qf_config_key_scope(const char *name);

/* Whether key `name` (a key of the table or env.<name> of cfg's env) takes one number: 1 an
 * integer, 2 a real number, 0 anything else (a choice, a list, a string) or an unknown key. */
int qf_config_key_numeric(const qf_config *cfg, const char *name);

/* Print the resolved configuration as `key=value` lines (with the env's parameters). */
void qf_config_print(FILE *f, const qf_config *cfg);
/* The same, only the keys command `command` (a name, e.g. "irl") uses; every key for an unknown name. */
void qf_config_print_for(FILE *f, const qf_config *cfg, const char *command);

#ifdef __cplusplus
}
#endif
#endif /* QF_CONFIG_H */
