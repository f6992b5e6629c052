/* config.c — the key table and the `key=value` parser.
 *
 * One row per key: name, type, where it lives in qf_config, default, bounds or choices, the
 * commands that use it, its sweep scope, an optional check across keys, and its doc line. Parsing,
 * the refusal of keys a command does not use, the checks across keys, `qfleet help keys`,
 * qf_config_get and config.txt are all driven by this table; a new hyperparameter is one row here
 * (plus the kernel that reads it). Choice keys hold the enums of the kernels (QF_EXPLORE_* etc.),
 * whose names are spelled once, next to those enums (kernels/learn.h, explore.h, bandit_agent.h). */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/backend.h"
#include "../kernels/bandit_agent.h"
#include "../kernels/explore.h"
#include "../kernels/learn.h"

enum {
    K_INT,     /* int64_t in [lo, hi] */
    K_FLOAT,   /* double in [lo, hi] */
    K_CHOICE,  /* int32_t: index into names (QF_AUTO for "auto" where has_auto) */
    K_CHOICES, /* int32_t[cap] + int32_t count: comma-separated distinct names */
    K_INTS,    /* int32_t[cap] + int32_t count: comma-separated integers in [lo, hi] */
    K_STRING,  /* char[cap] */
    K_ENV,     /* the environment kind (resets env.* to the env's defaults) */
    K_WIDTHS   /* hidden widths: "[a,b]" into int64_t hidden[] and n_hidden */
};

struct key_spec;
/* A check across keys, run when its key was given: 0, or -1 with one line in msg. */
typedef int (*check_fn)(const qf_config *c, unsigned cmd, char *msg, size_t n);

typedef struct key_spec {
    const char *name;
    int type;
    size_t offset;
    size_t cap;                /* K_STRING: bytes; K_CHOICES / K_INTS: items */
    size_t count_offset;       /* K_CHOICES / K_INTS: where the item count lives */
    const char *def;           /* default, as the user would write it */
    double lo, hi;             /* K_INT, K_FLOAT, K_INTS items, K_WIDTHS items */
    const char *const *names;  /* K_CHOICE / K_CHOICES: names by enum value (NULL: no user choice) */
    int n_names, has_auto;
    unsigned cmds;             /* QF_CMD_* that use the key */
    int scope;                 /* QF_SCOPE_* */
    check_fn check;
    const char *doc;
    /* per-run hyperparameters: the field of qf_run_hp (kernels/learn.h) the value is copied to, as
     * float (K_FLOAT) or int32 (K_INT, saturated; K_CHOICE) by qf_config_run_hp */
    int to_hp;
    size_t hp_offset;
} key_spec;

#define OFF(f) offsetof(qf_config, f)
#define SZ(f) sizeof(((qf_config *)0)->f)
#define NN(a) (int)(sizeof a / sizeof a[0])

static const char *const backend_names[] = {"cpu", "cuda"};
static const char *const obs_names[] = {QF_OBS_NAMES};
static const char *const graphs_names[] = {QF_GRAPHS_NAMES};
static const char *const explore_names[] = {QF_EXPLORE_NAMES};
static const char *const bonus_names[] = {QF_BONUS_NAMES};
static const char *const act_names[] = {QF_ACT_NAMES};
static const char *const count_names[] = {QF_COUNT_NAMES};
static const char *const loss_names[] = {QF_LOSS_NAMES};
static const char *const head_batch_names[] = {QF_HEAD_BATCH_NAMES};
static const char *const activation_names[] = {QF_ACTIVATION_NAMES};
static const char *const bandit_names[] = {QF_BANDIT_NAMES};
static const char *const rnd_input_names[] = {QF_RND_INPUT_NAMES};
static const char *const rnd_value_names[] = {QF_RND_VALUE_NAMES};

/* Row makers: name, field, default, bounds or choices, commands, scope, check, doc. */
#define NOHP , 0, 0 /* not copied into qf_run_hp */
#define INT(nm, f, d, lo, hi, cmds, sc, ck, doc) {nm, K_INT, OFF(f), 0, 0, d, lo, hi, NULL, 0, 0, cmds, sc, ck, doc NOHP}
#define FLT(nm, f, d, lo, hi, cmds, sc, ck, doc) {nm, K_FLOAT, OFF(f), 0, 0, d, lo, hi, NULL, 0, 0, cmds, sc, ck, doc NOHP}
#define CHO(nm, f, d, names, aut, cmds, sc, ck, doc)                                                                   \
    {nm, K_CHOICE, OFF(f), 0, 0, d, 0, 0, names, NN(names), aut, cmds, sc, ck, doc NOHP}
#define CHOS(nm, f, cnt, d, names, cmds, sc, ck, doc)                                                                  \
    {nm, K_CHOICES, OFF(f), NN(names), OFF(cnt), d, 0, 0, names, NN(names), 0, cmds, sc, ck, doc NOHP}
#define INTS(nm, f, cnt, d, lo, hi, cmds, sc, ck, doc)                                                                 \
    {nm, K_INTS, OFF(f), QF_MAX_LIST, OFF(cnt), d, lo, hi, NULL, 0, 0, cmds, sc, ck, doc NOHP}
/* ... and the same rows for keys copied into qf_run_hp field h */
#define HP(h) , 1, offsetof(qf_run_hp, h)
#define INT_HP(nm, f, h, d, lo, hi, cmds, sc, ck, doc)                                                                 \
    {nm, K_INT, OFF(f), 0, 0, d, lo, hi, NULL, 0, 0, cmds, sc, ck, doc HP(h)}
#define FLT_HP(nm, f, h, d, lo, hi, cmds, sc, ck, doc)                                                                 \
    {nm, K_FLOAT, OFF(f), 0, 0, d, lo, hi, NULL, 0, 0, cmds, sc, ck, doc HP(h)}
#define CHO_HP(nm, f, h, d, names, aut, cmds, sc, ck, doc)                                                            \
    {nm, K_CHOICE, OFF(f), 0, 0, d, 0, 0, names, NN(names), aut, cmds, sc, ck, doc HP(h)}
#define STR(nm, f, d, cmds, sc, ck, doc) {nm, K_STRING, OFF(f), SZ(f), 0, d, 0, 0, NULL, 0, 0, cmds, sc, ck, doc NOHP}

/* Command sets. The learner's keys are read by every command that trains (train, sweep, compare)
 * and by the benchmarks that time training; bench train/explore set learning_starts, train_every,
 * updates, log_every and steps themselves, bench explore sets explore. */
#define C_TRAIN (QF_CMD_TRAIN | QF_CMD_SWEEP)
#define C_BENCH_LEARN (QF_CMD_BENCH_TRAIN | QF_CMD_BENCH_EXPLORE)
#define C_LEARN (C_TRAIN | QF_CMD_COMPARE | C_BENCH_LEARN)
#define C_SCHEDULE (C_TRAIN | QF_CMD_COMPARE) /* when learning happens (the benchmarks fix it) */
#define C_RESULTS (C_TRAIN | QF_CMD_COMPARE | QF_CMD_BANDITS)

static int check_explore(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_obs(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_double_q(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_graphs(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_bootstrap_key(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_ucb_c(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_eps(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_bonus(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_beta(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_rnd_key(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_count_key(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_rnd_warmup(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_gamma_int(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_rnd_act(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_simhash_key(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_target_every(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_learning_starts(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_huber(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_deep_sea_key(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_bandit_eps(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_bandit_temp(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_steps(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_eval_episodes(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_demos(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_demo_key(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_episodes(const qf_config *c, unsigned cmd, char *msg, size_t n);
static int check_seed_range(const qf_config *c, unsigned cmd, char *msg, size_t n);

static const key_spec keys[] = {
    {"env", K_ENV, OFF(env), 0, 0, "deep_sea", 0, 0, NULL, 0, 0, QF_CMD_ALL, QF_SCOPE_FLEET, NULL,
     "environment: deep_sea, cartpole, mountain_car, chain, bandit, gridworld (see `qfleet envs`)" NOHP},
    CHO("backend", backend, "auto", backend_names, 1, QF_CMD_ALL, QF_SCOPE_ONCE, NULL,
        "device: auto picks the GPU when one is usable, else the CPU"),
    INT("envs", envs, "1", 1, 1073741824, C_LEARN | QF_CMD_BANDITS, QF_SCOPE_FLEET, NULL,
        "environments per run (E); bandits: instances per strategy and seed, default 4096 there"),
    INT("runs", runs, "1", 1, 1048576, QF_CMD_TRAIN | QF_CMD_SOLVE | QF_CMD_BENCH_ENVS, QF_SCOPE_FREE, NULL,
        "independent runs (R = runs x seeds)"),
    INT("seeds", seeds, "1", 1, 1048576, C_TRAIN | QF_CMD_SOLVE | QF_CMD_COMPARE | QF_CMD_BANDITS | QF_CMD_IRL, QF_SCOPE_ONCE,
        check_seed_range, "seeds per run: run c, seed s uses key (seed + s, c)"),
    INT("seed", seed, "0", 0, 4294967295.0, QF_CMD_ALL, QF_SCOPE_FREE, check_seed_range,
        "base seed; run r draws from key (seed, r)"),
    INT("steps", steps, "10000", 0, 1e12, C_TRAIN | QF_CMD_BANDITS, QF_SCOPE_FLEET, check_steps,
        "steps of every env (a run collects steps*envs transitions); train --load FILE steps=0: evaluate only"),
    CHO("obs", obs, "auto", obs_names, 1, C_LEARN | QF_CMD_BENCH_ENVS, QF_SCOPE_FLEET, check_obs,
        "observations written per step: state index, dense vector, none (auto: index when discrete)"),
    CHO("cuda_graphs", cuda_graphs, "auto", graphs_names, 1, C_LEARN, QF_SCOPE_ONCE, check_graphs,
        "record one training iteration as a CUDA graph and replay it (auto: on with backend=cuda; the CPU has "
        "none; same results either way, docs/cuda-graphs.md)"),
    INT("threads", threads, "0", 0, 4096, QF_CMD_ALL, QF_SCOPE_FREE, NULL,
        "CPU threads; 0 = auto: every core, or one while timed probes find one faster (other processes hold cores)"),
    FLT("seconds", seconds, "0.3", 0.001, 3600, QF_CMD_BENCH_ENVS | C_BENCH_LEARN | QF_CMD_BENCH_IRL, QF_SCOPE_ONCE, NULL,
        "seconds of timing per table cell"),
    INT("max_envs", max_envs, "1048576", 1, 1073741824, QF_CMD_BENCH_ENVS, QF_SCOPE_ONCE, NULL,
        "largest envs value (the sweep is 1k, 16k, 128k, 1M, capped here)"),
    INT("max_runs", max_runs, "4096", 1, 1048576, C_BENCH_LEARN | QF_CMD_SWEEP | QF_CMD_BENCH_IRL, QF_SCOPE_ONCE, NULL,
        "bench: largest number of runs in the sweep 1, 16, 256, 4096 (bench irl: problems 1, 64, 1024); sweep: "
        "most runs in one fleet"),
    STR("csv", csv, "", QF_CMD_BENCH_ENVS | QF_CMD_BENCH_IRL, QF_SCOPE_ONCE, NULL, "also write the table to this CSV file"),
    FLT_HP("gamma", gamma, gamma, "0.99", 0, 1, C_LEARN | QF_CMD_SOLVE, QF_SCOPE_RUN, NULL, "discount factor"),
    FLT_HP("alpha", alpha, alpha, "0", 0, 1e6, C_LEARN | QF_CMD_SOLVE, QF_SCOPE_RUN, NULL,
        "soft-Q temperature: target alpha*logsumexp(Q/alpha); 0 = hard max (DQN)"),
    INT("policy", policy, "0", 0, 1, QF_CMD_SOLVE, QF_SCOPE_ONCE, NULL, "also print the optimal (soft) policy"),
    INT("profile", profile, "0", 0, 1e9, QF_CMD_TRAIN, QF_SCOPE_ONCE, NULL,
        "warm up past learning_starts, then run this many iterations between cudaProfilerStart/Stop"),
    CHO_HP("explore", explore, explore, "epsilon", explore_names, 0, C_TRAIN | QF_CMD_BENCH_TRAIN, QF_SCOPE_RUN, check_explore,
        "exploration: epsilon-greedy (eps_*), Boltzmann at alpha > 0, bootstrapped ensemble with priors, RND "
        "bonus, count bonus"),
    CHO("bonus", bonus, "auto", bonus_names, 1, C_LEARN, QF_SCOPE_RUN, check_bonus,
        "intrinsic reward beta*bonus added to the reward (auto: rnd for explore=rnd, count for count, else none)"),
    INT_HP("heads", heads, n_heads, "10", 1, QF_MAX_HEADS, C_LEARN, QF_SCOPE_RUN, check_bootstrap_key,
        "bootstrap: ensemble heads K"),
    CHO("head_batch", head_batch, "shared", head_batch_names, 0, C_LEARN, QF_SCOPE_FLEET, check_bootstrap_key,
        "bootstrap: one minibatch per run shared by its heads, or one per head (each head draws its own batch of "
        "transitions, as in the bootstrapped-DQN scaling study)"),
    FLT_HP("prior_scale", prior_scale, prior_scale, "3", 0, 1e6, C_LEARN, QF_SCOPE_RUN, check_bootstrap_key,
        "bootstrap: scale of each head's fixed random prior network (0: no prior)"),
    FLT_HP("mask_p", mask_p, mask_p, "1", 0, 1, C_LEARN, QF_SCOPE_RUN, check_bootstrap_key,
        "bootstrap: probability that a head trains on a transition (drawn when stored)"),
    CHO_HP("act", act, act_mode, "sample", act_names, 0, C_LEARN, QF_SCOPE_RUN, check_bootstrap_key,
        "bootstrap acting: one head drawn per episode, or ensemble mean + ucb_c * std"),
    FLT_HP("ucb_c", ucb_c, ucb_c, "1", 0, 1e6, C_LEARN, QF_SCOPE_RUN, check_ucb_c, "bootstrap act=ucb: weight of the ensemble std"),
    FLT_HP("beta", beta, beta, "0.1", 0, 1e6, C_LEARN, QF_SCOPE_RUN, check_beta, "weight of the intrinsic reward (bonus)"),
    INT("rnd_width", rnd_width, "64", 1, 65536, C_LEARN, QF_SCOPE_FLEET, check_rnd_key,
        "RND: hidden width of target and predictor"),
    INT("rnd_dim", rnd_dim, "32", 1, 65536, C_LEARN, QF_SCOPE_FLEET, check_rnd_key,
        "RND: output width of target and predictor"),
    INT_HP("rnd_episodic", rnd_episodic, rnd_episodic, "1", 0, 1, C_LEARN, QF_SCOPE_RUN, check_rnd_key,
        "RND: 0 = the intrinsic return behind the normalizer runs across episode ends"),
    INT("rnd_warmup", rnd_warmup, "0", 0, 1e9, C_LEARN, QF_SCOPE_FLEET, check_rnd_warmup,
        "RND: env steps per env of uniformly random actions before training, in envs of their own, whose "
        "observations only warm up RND's observation statistics (Burda et al. 2018); nothing is stored or learned"),
    CHO("rnd_input", rnd_input, "state", rnd_input_names, 0, C_LEARN, QF_SCOPE_FLEET, check_rnd_key,
        "RND: what target and predictor read: state = the state a transition reached (s'); state_action = the "
        "pair (s, a) of the state it left and the action taken (normalized observation and one-hot(a); with "
        "obs=index the one index s*A + a), so the bonus of a transition is the novelty of its (s, a) pair. "
        "Either way the bonus is computed when the transition is stored and the predictor trains on sampled ones"),
    CHO_HP("rnd_value", rnd_value, rnd_value, "shared", rnd_value_names, 0, C_LEARN, QF_SCOPE_RUN, check_rnd_key,
        "RND: shared = beta*bonus added to the reward of the one Q; separate = Burda et al. 2018's two values for "
        "Q-learning: Q_E learns the reward alone, a second Q-network Q_I the bonus alone (discount gamma_int, "
        "no cut at episode ends), acting on Q_E + beta*Q_I; greedy evaluations read Q_E"),
    FLT_HP("gamma_int", gamma_int, gamma_int, "0.99", 0, 1, C_LEARN, QF_SCOPE_RUN, check_gamma_int,
        "RND rnd_value=separate: discount of the intrinsic value Q_I (Burda et al. 2018: 0.99)"),
    INT_HP("rnd_act", rnd_act, rnd_act, "0", 0, 1, C_LEARN, QF_SCOPE_RUN, check_rnd_act,
        "RND with rnd_input=state_action: 1 = also act on Q(s,a) + beta * bonus(s,a), the bonus each action's pair "
        "would get now, so untried actions look better (count_act's counterpart)"),
    CHO("count", count, "auto", count_names, 1, C_LEARN, QF_SCOPE_FLEET, check_count_key,
        "count bonus: exact state counts (discrete envs with obs=index) or SimHash pseudo-counts"),
    INT_HP("count_act", count_act, count_act, "1", 0, 1, C_LEARN, QF_SCOPE_RUN, check_count_key,
        "count bonus: also act on Q(s,a) + beta/sqrt(N(s,a)+1), so untried actions look better"),
    INT("simhash_bits", simhash_bits, "32", 1, 62, C_LEARN, QF_SCOPE_FLEET, check_simhash_key,
        "SimHash: code length k in bits"),
    INT("count_table", count_table, "16", 4, 26, C_LEARN, QF_SCOPE_FLEET, check_simhash_key,
        "SimHash: log2 of the hash-table slots per run"),
    CHOS("strategies", strategies, n_strategies, "epsilon,ucb1,thompson,boltzmann", bandit_names, QF_CMD_BANDITS,
         QF_SCOPE_ONCE, NULL, "strategies compared (comma-separated)"),
    CHOS("explorers", explorers, n_explorers, "epsilon,boltzmann,bootstrap,count,rnd", explore_names,
         QF_CMD_COMPARE, QF_SCOPE_ONCE, NULL, "exploration strategies compared (comma-separated)"),
    INTS("sizes", sizes, n_sizes, "10,15,20", 1, 4096, QF_CMD_COMPARE, QF_SCOPE_ONCE, NULL,
         "DeepSea sizes N, e.g. 10,15,20"),
    INT("episodes", episodes, "3000", 1, 1e9, C_TRAIN | QF_CMD_COMPARE, QF_SCOPE_FLEET, check_episodes,
        "compare: episodes per run and size; train, sweep (deep_sea): each run's budget in episodes instead of steps "
        "(steps = episodes / envs x N: DeepSea's episodes last N steps)"),
    FLT("solved_threshold", solved_threshold, "0.9", 0, 1, C_TRAIN | QF_CMD_COMPARE, QF_SCOPE_FLEET, check_deep_sea_key,
        "deep_sea: a run is solved at the first episode with bad episodes / episodes < this (0.9: bsuite 0.3.6's "
        "analysis)"),
    FLT("converge_return", converge_return, "0.95", -1e9, 1e9, C_TRAIN | QF_CMD_COMPARE, QF_SCOPE_FLEET,
        check_deep_sea_key,
        "deep_sea: a run has converged at its first episode with return >= this (0.95: the bootstrapped-DQN "
        "scaling study's criterion, Knyazhitskiy 2025)"),
    INT("trials", trials, "10", 1, 1000000, QF_CMD_SWEEP, QF_SCOPE_ONCE, NULL,
        "points drawn for random-search axes (uniform, loguniform, choice)"),
    INT("prune", prune, "0", 0, 1000000, QF_CMD_SWEEP, QF_SCOPE_ONCE, NULL,
        "adaptive grid (deep_sea, env.size swept): a column (the points equal but for env.size) stops after this "
        "many consecutive sizes, increasing, in which no seed converged (converge_return); its larger sizes are "
        "recorded as pruned, not trained (0: off; the scaling study: 3)"),
    FLT("checkpoint_seconds", checkpoint_seconds, "60", 0, 1e9, C_TRAIN | QF_CMD_COMPARE | QF_CMD_BANDITS | QF_CMD_IRL, QF_SCOPE_FREE, NULL,
        "seconds between checkpoints, written at log points (0: none)"),
    FLT("bandit_eps", bandit_eps, "0.1", 0, 1, QF_CMD_BANDITS, QF_SCOPE_ONCE, check_bandit_eps,
        "fixed epsilon of epsilon-greedy"),
    FLT("bandit_temp", bandit_temp, "0.1", 1e-6, 1e6, QF_CMD_BANDITS, QF_SCOPE_ONCE, check_bandit_temp,
        "temperature of Boltzmann over empirical means"),
    FLT_HP("lr", lr, lr, "0.001", 1e-8, 10, C_LEARN, QF_SCOPE_RUN, NULL, "Adam learning rate"),
    FLT_HP("weight_decay", weight_decay, weight_decay, "0", 0, 10, C_LEARN, QF_SCOPE_RUN, NULL,
        "AdamW's decoupled weight decay: each update first multiplies the parameters by 1 - lr * weight_decay "
        "(Q-networks and RND's predictor)"),
    CHO("activation", activation, "relu", activation_names, 0, C_LEARN, QF_SCOPE_FLEET, NULL,
        "hidden layers' activation: ReLU, or GELU (exact erf form, PyTorch's nn.GELU default)"),
    {"hidden", K_WIDTHS, OFF(hidden), QF_MAX_HIDDEN, 0, "[64,64]", 1, 65536, NULL, 0, 0, C_LEARN, QF_SCOPE_FLEET,
     NULL, "hidden layer widths of the Q-network, e.g. [64,64]; [] = linear (a table with obs=index)" NOHP},
    INT("batch", batch, "128", 1, 65536, C_LEARN, QF_SCOPE_FLEET, NULL, "transitions per update per run (B)"),
    INT("buffer", buffer, "10000", 1, 1e9, C_LEARN, QF_SCOPE_FLEET, NULL, "replay capacity per run (transitions)"),
    INT("learning_starts", learning_starts, "1000", 0, 1e12, C_SCHEDULE, QF_SCOPE_FLEET, check_learning_starts,
        "transitions a run stores before it learns"),
    INT("train_every", train_every, "1", 1, 1e9, C_SCHEDULE, QF_SCOPE_FLEET, NULL, "env steps between learner steps"),
    INT("updates", updates, "1", 1, 1e6, C_SCHEDULE, QF_SCOPE_FLEET, NULL, "gradient updates per learner step"),
    FLT_HP("tau", tau, tau, "1", 0, 1, C_LEARN, QF_SCOPE_FLEET, NULL,
        "target network: Polyak tau every update (< 1), or a copy every target_every updates (1)"),
    INT("target_every", target_every, "100", 1, 1e9, C_LEARN, QF_SCOPE_FLEET, check_target_every,
        "updates between target copies (tau=1)"),
    INT_HP("double_q", double_q, double_q, "0", 0, 1, C_LEARN, QF_SCOPE_FLEET, check_double_q,
        "double-Q target (alpha=0 only): a' from the online network"),
    CHO_HP("loss", loss, loss, "huber", loss_names, 0, C_LEARN, QF_SCOPE_RUN, NULL, "TD loss"),
    FLT_HP("huber", huber, huber, "1", 1e-6, 1e9, C_LEARN, QF_SCOPE_RUN, check_huber, "Huber threshold (loss=huber)"),
    FLT_HP("max_grad_norm", max_grad_norm, max_grad_norm, "10", 0, 1e9, C_LEARN, QF_SCOPE_RUN, NULL,
        "clip each network's gradient to this global norm (0: no clipping)"),
    FLT_HP("eps_start", eps_start, eps_start, "1", 0, 1, C_LEARN, QF_SCOPE_RUN, check_eps, "epsilon at step 0"),
    FLT_HP("eps_end", eps_end, eps_end, "0.05", 0, 1, C_LEARN, QF_SCOPE_RUN, check_eps, "epsilon after eps_steps"),
    INT_HP("eps_steps", eps_steps, eps_steps, "10000", 0, 1e12, C_LEARN, QF_SCOPE_RUN, check_eps,
        "env steps of the linear epsilon decay"),
    INT("log_every", log_every, "1000", 1, 1e12, C_TRAIN | QF_CMD_BANDITS | QF_CMD_IRL, QF_SCOPE_FLEET, NULL,
        "env steps between log points (curves); irl: iterations between log points (default there: iters/100)"),
    INT("eval_every", eval_every, "0", 0, 1e12, C_SCHEDULE, QF_SCOPE_FLEET, NULL,
        "env steps per env between greedy evaluations (separate envs, no exploration or learning; eval_return at "
        "the first log point at or after each multiple, and at the last); 0 = none"),
    INT("eval_episodes", eval_episodes, "10", 1, 1000000, C_SCHEDULE, QF_SCOPE_FLEET, check_eval_episodes,
        "episodes per run of each greedy evaluation (one fresh env each, run to its episode's end)"),
    STR("out", out, "", C_RESULTS | QF_CMD_INFER | QF_CMD_IRL, QF_SCOPE_ONCE, NULL,
        "results folder (default results/PREFIX__<date-time>, PREFIX: train <env>__<explore>, compare deep_sea_compare, others the command)"),
    INT("horizon", horizon, "0", -1, 100000000, QF_CMD_SOLVE | QF_CMD_INFER | QF_CMD_IRL | QF_CMD_BENCH_IRL,
        QF_SCOPE_ONCE, NULL,
        "finite horizon T in steps (0: the env's time limit / episode length; bench irl: 64; solve: -1 = the "
        "infinite-horizon discounted MDP)"),
    STR("temperatures", temperatures, "1", QF_CMD_INFER, QF_SCOPE_ONCE, NULL,
        "temperatures alpha, comma-separated; one run per temperature and env seed"),
    INT("env_seeds", env_seeds, "1", 1, 1048576, QF_CMD_INFER | QF_CMD_IRL, QF_SCOPE_ONCE, NULL,
        "env seeds per point (env.map_seed + k for k < env_seeds)"),
    STR("demos", demos, "", C_TRAIN | QF_CMD_COMPARE | QF_CMD_IRL, QF_SCOPE_RUN, check_demos,
        "expert episodes M. irl: counts, comma-separated (default 64), drawn from the soft-optimal policy at "
        "demo_alpha; train, sweep, compare: one count per run (default 0; a sweep axis may sweep it) of episodes "
        "of the exact solver's policy (soft-optimal at the run's alpha, greedy at alpha=0) kept in a never-"
        "overwritten demo part of the replay; tabular envs (deep_sea, chain, gridworld)"),
    FLT_HP("demo_ratio", demo_ratio, demo_ratio, "0.25", 0, 1, C_TRAIN | QF_CMD_COMPARE, QF_SCOPE_RUN, check_demo_key,
        "demos: fraction of each minibatch drawn from the demo part (round(demo_ratio*batch), half up)"),
    FLT_HP("demo_weight", demo_weight, demo_weight, "0", 0, 1e6, C_TRAIN | QF_CMD_COMPARE, QF_SCOPE_RUN, check_demo_key,
        "demos: lambda, adds lambda * -log pi(a_demo|s), pi = softmax(Q/alpha), on demo transitions (alpha=0: "
        "DQfD's large-margin loss, Hester et al. 2018)"),
    FLT_HP("demo_margin", demo_margin, demo_margin, "0.8", 0, 1e6, C_TRAIN | QF_CMD_COMPARE, QF_SCOPE_RUN, check_demo_key,
        "demos at alpha=0: margin l of the large-margin loss max_a[Q(s,a) + l*(a != a_demo)] - Q(s,a_demo)"),
    FLT("demo_alpha", demo_alpha, "1", 1e-6, 1e6, QF_CMD_IRL, QF_SCOPE_ONCE, NULL,
        "temperature of the demonstrator and of the learner's model"),
    STR("demos_file", demos_file, "", QF_CMD_IRL, QF_SCOPE_ONCE, NULL,
        "read demonstrations from this CSV (header episode,t,state,action) instead of drawing them"),
    INT("iters", iters, "200", 1, 100000000, QF_CMD_IRL, QF_SCOPE_ONCE, NULL, "gradient iterations (Adam on psi)"),
    STR("lrs", lrs, "0.1", QF_CMD_IRL, QF_SCOPE_ONCE, NULL, "Adam learning rates on psi, comma-separated"),
};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))
_Static_assert(N_KEYS <= QF_MAX_KEYS, "the given bitset of qf_config holds QF_MAX_KEYS keys");

static const char *const command_names[QF_CMD_COUNT] = {"train",   "sweep",      "compare",     "solve",
                                                        "bandits", "bench envs", "bench train", "bench explore",
                                                        "infer",   "irl",        "bench irl"};

/* Key lookup: a hash of the names, built once (the table is constant), so that a word costs O(1). */
#define KEY_HASH 512
static int key_hash_slots[KEY_HASH]; /* key index + 1; 0 = empty */
static int key_hash_ready;

static uint32_t name_hash(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void key_hash_build(void) {
    for (int k = 0; k < N_KEYS; k++) {
        uint32_t h = name_hash(keys[k].name, strlen(keys[k].name)) % KEY_HASH;
        while (key_hash_slots[h]) h = (h + 1) % KEY_HASH;
        key_hash_slots[h] = k + 1;
    }
    key_hash_ready = 1;
}

/* The key named by the first len bytes of name, or NULL. */
static const key_spec *find_key_n(const char *name, size_t len) {
    if (!key_hash_ready) key_hash_build();
    for (uint32_t h = name_hash(name, len) % KEY_HASH; key_hash_slots[h]; h = (h + 1) % KEY_HASH) {
        const key_spec *ks = &keys[key_hash_slots[h] - 1];
        if (strlen(ks->name) == len && memcmp(ks->name, name, len) == 0) return ks;
    }
    return NULL;
}

static const key_spec *find_key(const char *name) { return find_key_n(name, strlen(name)); }

static int key_index(const key_spec *ks) { return (int)(ks - keys); }

int qf_config_given(const qf_config *cfg, const char *name) {
    const key_spec *ks = find_key(name);
    if (!ks) return 0;
    const int i = key_index(ks);
    return (int)((cfg->given[i / 64] >> (i % 64)) & 1u);
}

static void mark_given(qf_config *cfg, const key_spec *ks) {
    const int i = key_index(ks);
    cfg->given[i / 64] |= (uint64_t)1 << (i % 64);
}

/* Whole-string integer parse; returns 0 on success. Scientific notation that names an integer
 * exactly (1e3, 2.5e4) is one too: researchers write step budgets that way. */
static int parse_int(const char *s, long long *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!errno && !*end) {
        *out = v;
        return 0;
    }
    if (!strpbrk(s, "eE") || strpbrk(s, "xXnN")) return -1; /* not hex, inf or nan */
    errno = 0;
    const double d = strtod(s, &end);
    if (errno || *end || !isfinite(d) || d != floor(d) || fabs(d) >= 9.2e18) return -1;
    *out = (long long)d;
    return 0;
}

static int parse_float(const char *s, double *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Is s a decimal number the double range cannot hold: an overflow (1e400) or a nonzero magnitude
 * below the smallest normal double, 2.2e-308 (1e-320 underflows; strtod says ERANGE)? Then the
 * message says so, not that s is not a number. */
static int beyond_double(const char *s) {
    if (!*s || isspace((unsigned char)*s) || strpbrk(s, "xXnNiI")) return 0; /* hex, inf, nan */
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    return !*end && (errno == ERANGE || isinf(v));
}

#define QF_DOUBLE_RANGE_NOTE "out of the floating-point range: nonzero magnitudes run from 2.2e-308 to 1.8e308"
#define QF_FLOAT_RANGE_NOTE                                                                                             \
    "out of the float range: env parameters are 32-bit floats, nonzero magnitudes from 1.2e-38 to 3.4e38"

/* Whole-item parses over [s, s + len) (an item of a list, not NUL-terminated; the number ends at
 * the ',' or ']' that follows it, so no copy and no length limit). */
static int parse_int_n(const char *s, size_t len, long long *out) {
    if (len == 0 || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    const long long v = strtoll(s, &end, 10);
    if (errno || end != s + len) return -1;
    *out = v;
    return 0;
}

static int parse_float_n(const char *s, size_t len, double *out) {
    if (len == 0 || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (errno || end != s + len || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* The shortest text that reads back as the same double (as_float: the same float). */
static void format_number(char *out, size_t len, double v, int as_float) {
    snprintf(out, len, "%.17g", v);
    for (int p = 6; p < 17; p++) { /* from %g's 6 digits, the usual text when it is exact */
        char t[64];
        snprintf(t, sizeof t, "%.*g", p, v);
        const double back = strtod(t, NULL);
        if (as_float ? (float)back == (float)v : back == v) {
            snprintf(out, len, "%s", t);
            return;
        }
    }
}

/* An env parameter's value as text that parses back to it (ints whole, floats exactly). */
static void format_env_param(const qf_config *cfg, const qf_param_spec *ps, char *out, size_t len) {
    if (ps->type == QF_P_LIST) {
        size_t used = (size_t)snprintf(out, len, "[");
        for (int a = 0; a < cfg->env_params.bandit.n_probs && used < len; a++) {
            char t[64];
            format_number(t, sizeof t, cfg->env_params.bandit.probs[a], 1);
            used += (size_t)snprintf(out + used, len - used, "%s%s", a ? "," : "", t);
        }
        if (used < len) snprintf(out + used, len - used, "]");
    } else if (ps->type == QF_P_FLOAT) {
        format_number(out, len, qf_env_param_get(ps, &cfg->env_params), 1);
    } else if (ps->type == QF_P_CHOICE) {
        qf_env_param_format(ps, &cfg->env_params, out, len); /* the name */
    } else {
        snprintf(out, len, "%lld", (long long)qf_env_param_get(ps, &cfg->env_params));
    }
}

/* The items of a comma-separated list: calls item(ctx, start, len, index) for each; an empty item
 * (",," or a leading or trailing comma) is refused with "empty item" in msg. Returns the count or
 * -1 (item's own refusal, or an empty item). */
typedef int (*item_fn)(void *ctx, const char *s, size_t len, int index, char *msg, size_t n);
static int for_items(const char *key, const char *list, item_fn item, void *ctx, char *msg, size_t n) {
    int count = 0;
    const char *p = list;
    if (!*p) return 0;
    for (;;) {
        const size_t w = strcspn(p, ",");
        if (w == 0) {
            snprintf(msg, n, "bad value for %s: '%.200s' has an empty item (items are separated by single commas)",
                     key, list);
            return -1;
        }
        if (item(ctx, p, w, count, msg, n)) return -1;
        count++;
        if (!p[w]) return count;
        p += w + 1;
    }
}

static int choice_of(const key_spec *ks, const char *s, size_t len) {
    if (ks->has_auto && len == 4 && memcmp(s, "auto", 4) == 0) return QF_AUTO;
    for (int i = 0; i < ks->n_names; i++)
        if (ks->names[i] && strlen(ks->names[i]) == len && memcmp(ks->names[i], s, len) == 0) return i;
    return -2;
}

static void choice_list(const key_spec *ks, char *out, size_t len) {
    size_t used = (size_t)snprintf(out, len, "%s", ks->has_auto ? "auto" : "");
    for (int i = 0; i < ks->n_names && used < len; i++)
        if (ks->names[i]) used += (size_t)snprintf(out + used, len - used, "%s%s", used ? "|" : "", ks->names[i]);
}

static void env_names(char *out, size_t len) {
    out[0] = 0;
    for (int k = 0; k < QF_ENV_COUNT; k++) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", k ? ", " : "", qf_env_spec_of(k)->name);
    }
}

typedef struct list_ctx {
    const key_spec *ks;
    int32_t *dst;
    const char *list;
} list_ctx;

static int choices_item(void *vc, const char *s, size_t len, int index, char *msg, size_t n) {
    list_ctx *c = (list_ctx *)vc;
    char allowed[256];
    choice_list(c->ks, allowed, sizeof allowed);
    const int v = choice_of(c->ks, s, len);
    if (v < 0) {
        snprintf(msg, n, "unknown strategy in %s: '%.*s' (allowed: a comma-separated list of %s)", c->ks->name,
                 (int)(len > 80 ? 80 : len), s, allowed);
        return -1;
    }
    for (int j = 0; j < index; j++)
        if (c->dst[j] == v) {
            snprintf(msg, n, "%s names '%s' twice", c->ks->name, c->ks->names[v]);
            return -1;
        }
    c->dst[index] = v; /* index < cap: distinct names, at most n_names of them */
    return 0;
}

static int ints_item(void *vc, const char *s, size_t len, int index, char *msg, size_t n) {
    list_ctx *c = (list_ctx *)vc;
    long long v;
    if (index >= (int)c->ks->cap) {
        snprintf(msg, n, "bad value for %s: at most %zu items", c->ks->name, c->ks->cap);
        return -1;
    }
    if (parse_int_n(s, len, &v) || v < c->ks->lo || v > c->ks->hi) {
        snprintf(msg, n, "bad value in %s: '%.*s' (allowed: integers in [%.0f, %.0f], comma-separated)", c->ks->name,
                 (int)(len > 80 ? 80 : len), s, c->ks->lo, c->ks->hi);
        return -1;
    }
    c->dst[index] = (int32_t)v;
    return 0;
}

static int widths_item(void *vc, const char *s, size_t len, int index, char *msg, size_t n) {
    list_ctx *c = (list_ctx *)vc;
    long long v;
    if (index >= (int)c->ks->cap || parse_int_n(s, len, &v) || v < c->ks->lo || v > c->ks->hi) {
        snprintf(msg, n, "bad value for %s: '%.200s' (allowed: a bracketed list of 0 to %zu integers in [%.0f, %.0f], "
                         "e.g. [64,64] or [])", c->ks->name, c->list, c->ks->cap, c->ks->lo, c->ks->hi);
        return -1;
    }
    c->dst[index] = (int32_t)v;
    return 0;
}

/* A hint for a list given where one value goes: a list of values is a sweep axis. */
static const char *axis_hint(const char *val) {
    return strchr(val, ',') || strncmp(val, "uniform(", 8) == 0 || strncmp(val, "loguniform(", 11) == 0 ||
                   strncmp(val, "choice(", 7) == 0
               ? "; a list of values is a sweep axis, for `qfleet sweep`"
               : "";
}

static int set_key(qf_config *cfg, const key_spec *ks, const char *val, char *msg, size_t n) {
    char *dst = (char *)cfg + ks->offset;
    switch (ks->type) {
    case K_INT: {
        long long v;
        const int is_switch = ks->lo == 0 && ks->hi == 1; /* double_q, policy, rnd_act, ...: 0/1 switches */
        if (is_switch && (strcmp(val, "true") == 0 || strcmp(val, "false") == 0)) {
            v = val[0] == 't'; /* YAML's `double_q: true`, as the env's switches (env.stochastic) take it */
        } else if (parse_int(val, &v) || v < ks->lo || v > ks->hi) {
            if (is_switch)
                snprintf(msg, n, "bad value for %s: '%.200s' (a switch: use 0 or 1, or true or false)%s", ks->name, val,
                         axis_hint(val));
            else
                snprintf(msg, n, "bad value for %s: '%.200s' (allowed: an integer in [%.0f, %.0f])%s", ks->name, val,
                         ks->lo, ks->hi, axis_hint(val));
            return -1;
        }
        int64_t v64 = v;
        memcpy(dst, &v64, sizeof v64);
        return 0;
    }
    case K_FLOAT: {
        double v;
        if (parse_float(val, &v) || v < ks->lo || v > ks->hi) {
            snprintf(msg, n, "bad value for %s: '%.200s' (%s%sallowed: a number in [%g, %g])%s", ks->name, val,
                     beyond_double(val) ? QF_DOUBLE_RANGE_NOTE : "", beyond_double(val) ? "; " : "", ks->lo, ks->hi,
                     axis_hint(val));
            return -1;
        }
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    case K_CHOICE: {
        const int32_t v = choice_of(ks, val, strlen(val));
        if (v == -2) {
            char allowed[256];
            choice_list(ks, allowed, sizeof allowed);
            snprintf(msg, n, "bad value for %s: '%.200s' (allowed: %s)%s", ks->name, val, allowed, axis_hint(val));
            return -1;
        }
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    case K_CHOICES:
    case K_INTS: {
        int32_t items[QF_MAX_LIST];
        list_ctx c = {ks, items, val};
        const int k = for_items(ks->name, val, ks->type == K_CHOICES ? choices_item : ints_item, &c, msg, n);
        if (k < 0) return -1;
        if (k == 0) {
            snprintf(msg, n, "bad value for %s: empty (allowed: a comma-separated list, e.g. %s)", ks->name, ks->def);
            return -1;
        }
        memcpy(dst, items, sizeof(int32_t) * (size_t)k);
        const int32_t k32 = k;
        memcpy((char *)cfg + ks->count_offset, &k32, sizeof k32);
        return 0;
    }
    case K_STRING:
        if (strlen(val) >= ks->cap) {
            snprintf(msg, n, "bad value for %s: %zu characters, longer than any path the system accepts (at most %zu)",
                     ks->name, strlen(val), ks->cap - 1);
            return -1;
        }
        for (const char *c = val; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) { /* run.words and the CSV files keep it on one line */
                snprintf(msg, n, "bad value for %s: it holds a control character (a newline or tab, byte 0x%02x at "
                                 "position %d); paths and names here must be printable", ks->name, (unsigned char)*c,
                         (int)(c - val) + 1);
                return -1;
            }
        memcpy(dst, val, strlen(val) + 1);
        return 0;
    case K_WIDTHS: {
        int32_t w[QF_MAX_HIDDEN + 1];
        const size_t len = strlen(val);
        list_ctx c = {ks, w, val};
        if (len < 2 || val[0] != '[' || val[len - 1] != ']') {
            snprintf(msg, n, "bad value for %s: '%.200s' (allowed: a bracketed list of 0 to %zu integers in [%.0f, %.0f], "
                             "e.g. [64,64] or [])", ks->name, val, ks->cap, ks->lo, ks->hi);
            return -1;
        }
        /* the items between the brackets (the list is not copied: items end at ',' or ']') */
        int k = 0;
        if (len > 2) {
            const char *p = val + 1, *end = val + len - 1;
            for (;;) {
                const char *q = p;
                while (q < end && *q != ',') q++;
                if (q == p) {
                    snprintf(msg, n, "bad value for %s: '%.200s' has an empty item (items are separated by single "
                                     "commas)", ks->name, val);
                    return -1;
                }
                if (widths_item(&c, p, (size_t)(q - p), k, msg, n)) return -1;
                k++;
                if (q == end) break;
                p = q + 1;
            }
        }
        for (int i = 0; i < k; i++) cfg->hidden[i] = w[i];
        cfg->n_hidden = k;
        return 0;
    }
    default: { /* K_ENV */
        int kind = qf_env_find(val);
        if (kind < 0) {
            char names[256];
            env_names(names, sizeof names);
            snprintf(msg, n, "unknown environment: env=%.100s (allowed: %s)", val, names);
            return -1;
        }
        cfg->env = kind;
        qf_env_params_default(kind, &cfg->env_params);
        return 0;
    }
    }
}

/* "[0.9,0.8]" -> list of floats in [lo, hi]; empty items refused. 0, or -1. */
static int parse_list(const char *val, float *out, int cap, int *count, double lo, double hi, int *empty_item) {
    const size_t len = strlen(val);
    *empty_item = 0;
    if (len < 3 || val[0] != '[' || val[len - 1] != ']') return -1;
    const char *p = val + 1, *end = val + len - 1;
    int k = 0;
    for (;;) {
        const char *q = p;
        while (q < end && *q != ',') q++;
        double v;
        if (q == p) {
            *empty_item = 1;
            return -1;
        }
        if (k >= cap || parse_float_n(p, (size_t)(q - p), &v) || v < lo || v > hi) return -1;
        out[k++] = (float)v;
        if (q == end) break;
        p = q + 1;
    }
    *count = k;
    return 0;
}

static int set_env_param(qf_config *cfg, const char *name, const char *val, char *msg, size_t n) {
    const qf_env_spec *es = qf_env_spec_of(cfg->env);
    const qf_param_spec *ps = qf_env_param_find(cfg->env, name);
    if (!ps) {
        char names[512] = "";
        for (int j = 0; j < es->n_params; j++) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%senv.%s", j ? ", " : "", es->params[j].name);
        }
        snprintf(msg, n, "unknown key: env.%.100s is not a parameter of env=%s (its keys: %s)", name, es->name, names);
        return -1;
    }
    char *dst = (char *)&cfg->env_params + ps->offset;
    if (ps->type == QF_P_CHOICE) {
        const int32_t idx = qf_env_choice_find(ps, val);
        if (idx < 0) {
            char names[128];
            qf_env_choice_names(ps, names, sizeof names);
            snprintf(msg, n, "bad value for env.%s: '%s' (allowed: %s)", name, val, names);
            return -1;
        }
        memcpy(dst, &idx, sizeof idx);
        return 0;
    }
    if (ps->type == QF_P_LIST) {
        float vals[QF_MAX_ARMS];
        int count = 0, empty = 0;
        if (parse_list(val, vals, QF_MAX_ARMS, &count, ps->lo, ps->hi, &empty)) {
            if (empty)
                snprintf(msg, n, "bad value for env.%s: '%.200s' has an empty item (items are separated by single "
                                 "commas)", name, val);
            else
                snprintf(msg, n, "bad value for env.%s: '%.200s' (allowed: a bracketed list of 1 to %d numbers in "
                                 "[%g, %g], e.g. [0.9,0.8,0.7])", name, val, QF_MAX_ARMS, ps->lo, ps->hi);
            return -1;
        }
        memcpy(cfg->env_params.bandit.probs, vals, sizeof(float) * (size_t)count);
        cfg->env_params.bandit.n_probs = count;
        return 0;
    }
    if (ps->type == QF_P_FLOAT) {
        double v;
        /* a nonzero value the float cannot hold as a normal number (1e-300 would become 0) */
        const int beyond_float = !parse_float(val, &v) && v != 0.0 && fabs(v) < 1.17549435e-38;
        if (beyond_float || parse_float(val, &v) || v < ps->lo || v > ps->hi) {
            const int beyond = beyond_float || beyond_double(val);
            snprintf(msg, n, "bad value for env.%s: '%.200s' (%s%sallowed: a number in [%g, %g])", name, val,
                     beyond ? QF_FLOAT_RANGE_NOTE : "", beyond ? "; " : "", ps->lo, ps->hi);
            return -1;
        }
        float f = (float)v;
        memcpy(dst, &f, sizeof f);
        return 0;
    }
    long long v;
    if (ps->type == QF_P_BOOL && (strcmp(val, "true") == 0 || strcmp(val, "false") == 0)) {
        v = val[0] == 't';
    } else if (parse_int(val, &v) || v < ps->lo || v > ps->hi) {
        if (ps->type == QF_P_BOOL)
            snprintf(msg, n, "bad value for env.%s: '%.200s' (allowed: 0, 1, true, false)", name, val);
        else
            snprintf(msg, n, "bad value for env.%s: '%.200s' (allowed: an integer in [%.0f, %.0f])", name, val, ps->lo,
                     ps->hi);
        return -1;
    }
    int32_t v32 = (int32_t)v;
    memcpy(dst, &v32, sizeof v32);
    return 0;
}

void qf_config_default(qf_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char msg[256];
    for (int k = 0; k < N_KEYS; k++) set_key(cfg, &keys[k], keys[k].def, msg, sizeof msg);
}

int qf_config_parse(qf_config *cfg, int argc, char **argv, char *msg, size_t n) {
    int arms_given = 0;
    /* pass 0: syntax and env=; pass 1: everything else */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < argc; i++) {
            const char *w = argv[i];
            const char *eq = strchr(w, '=');
            if (!eq || eq == w) {
                snprintf(msg, n, "expected key=value, got '%.200s' (keys: qfleet help keys)", w);
                return -1;
            }
            const size_t len = (size_t)(eq - w);
            const char *val = eq + 1;
            const int is_env = len == 3 && memcmp(w, "env", 3) == 0;
            if (pass == 0) {
                if (is_env) {
                    if (set_key(cfg, find_key("env"), val, msg, n)) return -1;
                    mark_given(cfg, find_key("env"));
                }
                continue;
            }
            if (is_env) continue;
            if (len > 4 && memcmp(w, "env.", 4) == 0) {
                char name[64];
                if (len - 4 >= sizeof name) {
                    snprintf(msg, n, "unknown key: '%.*s...' (keys: qfleet envs)", 40, w);
                    return -1;
                }
                memcpy(name, w + 4, len - 4);
                name[len - 4] = 0;
                if (set_env_param(cfg, name, val, msg, n)) return -1;
                if (strcmp(name, "arms") == 0) arms_given = 1;
                continue;
            }
            const key_spec *ks = find_key_n(w, len);
            if (!ks) {
                snprintf(msg, n, "unknown key: '%.*s' (keys: qfleet help keys)", (int)(len > 100 ? 100 : len), w);
                return -1;
            }
            if (set_key(cfg, ks, val, msg, n)) return -1;
            mark_given(cfg, ks);
        }
    }
    if (cfg->env == QF_ENV_BANDIT && arms_given && cfg->env_params.bandit.n_probs > 0 &&
        cfg->env_params.bandit.arms != cfg->env_params.bandit.n_probs) {
        snprintf(msg, n, "env.arms=%d contradicts env.probs, which gives %d means", cfg->env_params.bandit.arms,
                 cfg->env_params.bandit.n_probs);
        return -1;
    }
    if (cfg->env == QF_ENV_DEEP_SEA) {
        cfg->env_params.deep_sea.solved_threshold = cfg->solved_threshold;
        cfg->env_params.deep_sea.converge_return = cfg->converge_return;
        /* episodes= as the budget (train, sweep; compare sets its steps itself): each env plays
         * episodes / envs episodes of N steps (check_episodes refuses the cases where this is not exact) */
        if (qf_config_given(cfg, "episodes") && !qf_config_given(cfg, "steps"))
            cfg->steps = (cfg->episodes + cfg->envs - 1) / cfg->envs * cfg->env_params.deep_sea.size;
    }
    char why[256];
    if (qf_env_params_check(cfg->env, &cfg->env_params, why, sizeof why)) {
        snprintf(msg, n, "%s", why);
        return -1;
    }
    if (cfg->runs * cfg->seeds > 1048576) {
        snprintf(msg, n, "runs=%lld x seeds=%lld is %lld runs; at most 1048576 fit one fleet", (long long)cfg->runs,
                 (long long)cfg->seeds, (long long)(cfg->runs * cfg->seeds));
        return -1;
    }
    if (cfg->runs * cfg->seeds * cfg->envs > 2147483647LL) {
        snprintf(msg, n, "runs=%lld x seeds=%lld x envs=%lld is %lld environments; at most 2^31-1 fit one batch",
                 (long long)cfg->runs, (long long)cfg->seeds, (long long)cfg->envs,
                 (long long)(cfg->runs * cfg->seeds * cfg->envs));
        return -1;
    }
    return 0;
}

/* ---- commands ---------------------------------------------------------------------------------- */

unsigned qf_config_command(const char *name) {
    for (int i = 0; i < QF_CMD_COUNT; i++)
        if (strcmp(command_names[i], name) == 0) return 1u << i;
    return 0;
}

const char *qf_config_command_name(unsigned cmd) {
    for (int i = 0; i < QF_CMD_COUNT; i++)
        if (cmd == 1u << i) return command_names[i];
    return "?";
}

static void command_list(unsigned cmds, char *out, size_t len) {
    size_t used = 0;
    out[0] = 0;
    if (cmds == QF_CMD_ALL) {
        snprintf(out, len, "every command");
        return;
    }
    for (int i = 0; i < QF_CMD_COUNT && used < len; i++)
        if (cmds & (1u << i)) used += (size_t)snprintf(out + used, len - used, "%s%s", used ? ", " : "", command_names[i]);
}

int qf_config_key_for_command(const char *word, unsigned cmd, char *msg, size_t n) {
    const char *eq = strchr(word, '=');
    if (!eq || !cmd) return 0;
    const size_t len = (size_t)(eq - word);
    const key_spec *ks = len > 4 && memcmp(word, "env.", 4) == 0 ? find_key("env") : find_key_n(word, len);
    if (!ks || (ks->cmds & cmd)) return 0;
    char users[160];
    command_list(ks->cmds, users, sizeof users);
    snprintf(msg, n, "%.100s: the key %.*s is not used by `qfleet %s`, which would ignore it (it is a key of: %s; see "
                     "qfleet help keys)", word, (int)(len > 100 ? 100 : len), word, qf_config_command_name(cmd), users);
    return -1;
}

int qf_config_key_scope(const char *name) {
    if (strncmp(name, "env.", 4) == 0) return QF_SCOPE_FLEET;
    const key_spec *ks = find_key(name);
    return ks ? ks->scope : -1;
}

int qf_config_key_numeric(const qf_config *cfg, const char *name) {
    if (strncmp(name, "env.", 4) == 0) {
        const qf_param_spec *ps = qf_env_param_find(cfg->env, name + 4);
        return !ps ? 0 : ps->type == QF_P_INT ? 1 : ps->type == QF_P_FLOAT ? 2 : 0;
    }
    const key_spec *ks = find_key(name);
    return !ks ? 0 : ks->type == K_INT ? 1 : ks->type == K_FLOAT ? 2 : 0;
}

/* ---- checks across keys ------------------------------------------------------------------------- */

/* Whether the runs of cmd with configuration c use exploration strategy e: compare runs every
 * strategy in explorers, bench explore every strategy, the others c->explore. */
static int uses_explore(const qf_config *c, unsigned cmd, int e) {
    if (cmd & QF_CMD_BENCH_EXPLORE) return 1;
    if (cmd & QF_CMD_COMPARE) {
        for (int i = 0; i < c->n_explorers; i++)
            if (c->explorers[i] == e) return 1;
        return 0;
    }
    return c->explore == e;
}

/* The bonus a run of strategy e gets (bonus=auto: rnd for explore=rnd, count for count). */
static int bonus_of(const qf_config *c, int e) {
    if (c->bonus != QF_AUTO) return c->bonus;
    return e == QF_EXPLORE_RND ? QF_BONUS_RND : e == QF_EXPLORE_COUNT ? QF_BONUS_COUNT : QF_BONUS_NONE;
}

/* Whether some run of cmd gets bonus b. */
static int uses_bonus(const qf_config *c, unsigned cmd, int b) {
    for (int e = 0; e < QF_EXPLORE_N; e++)
        if (uses_explore(c, cmd, e) && bonus_of(c, e) == b) return 1;
    return 0;
}

static const char *strategy_words(const qf_config *c, unsigned cmd, char *buf, size_t len) {
    if (cmd & QF_CMD_COMPARE) {
        size_t used = (size_t)snprintf(buf, len, "explorers=");
        for (int i = 0; i < c->n_explorers && used < len; i++)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", explore_names[c->explorers[i]]);
    } else {
        snprintf(buf, len, "explore=%s", explore_names[c->explore]);
    }
    return buf;
}

static int check_explore(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    (void)cmd;
    if (c->explore == QF_EXPLORE_BOLTZMANN && !(c->alpha > 0.0)) {
        snprintf(msg, n, "explore=boltzmann samples actions at temperature alpha, and alpha=0%s is a hard max "
                         "(greedy acting, no exploration): give alpha > 0 (e.g. alpha=0.1), or use explore=epsilon",
                 qf_config_given(c, "alpha") ? "" : " (the default)");
        return -1;
    }
    return 0;
}

static int check_obs(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    if (c->obs == QF_OBS_INDEX && qf_env_n_states(c->env, &c->env_params) == 0) {
        snprintf(msg, n, "obs=index needs a discrete environment, but env=%s has continuous observations: use "
                         "obs=dense (or obs=auto)", qf_env_spec_of(c->env)->name);
        return -1;
    }
    if (c->obs == QF_OBS_NONE && (cmd & ~QF_CMD_BENCH_ENVS)) {
        snprintf(msg, n, "obs=none writes no observations, which only `qfleet bench envs` can use; a learner needs "
                         "obs=auto, index or dense");
        return -1;
    }
    return 0;
}

static int check_double_q(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    (void)cmd;
    if (c->double_q && c->alpha > 0.0) {
        snprintf(msg, n, "double_q=1 picks the target's a' by argmax of the online network, but alpha=%g makes the "
                         "target the soft value alpha*logsumexp(Q/alpha), which has no argmax: set double_q=0, or "
                         "alpha=0 (hard max)", c->alpha);
        return -1;
    }
    return 0;
}

static int check_graphs(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    (void)cmd;
    if (c->cuda_graphs == QF_GRAPHS_ON && c->backend == QF_BACKEND_CPU) {
        snprintf(msg, n, "cuda_graphs=on replays CUDA graphs, which the cpu backend does not have: set "
                         "backend=cuda, or cuda_graphs=auto or off");
        return -1;
    }
    return 0;
}

static const char *g_check_key; /* the key whose check runs (for messages of checks shared by keys) */
/* set by a check that found keys contradicting each other (not a key that does nothing) */
static int g_check_contradiction;

static int check_bootstrap_key(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    char sw[128];
    if (!uses_explore(c, cmd, QF_EXPLORE_BOOTSTRAP)) {
        snprintf(msg, n, "%s is a setting of explore=bootstrap, which no run uses (%s): remove %s, or use "
                         "explore=bootstrap", g_check_key, strategy_words(c, cmd, sw, sizeof sw), g_check_key);
        return -1;
    }
    /* refused here too (not only when the fleet is built), so that --dry-run refuses it as the run does */
    if (strcmp(g_check_key, "head_batch") == 0 && c->head_batch == QF_HEAD_BATCH_SEPARATE && c->heads > 1 &&
        c->bonus == QF_BONUS_RND) {
        g_check_contradiction = 1;
        snprintf(msg, n, "head_batch=separate with bonus=rnd is not built (RND's predictor and its input statistics "
                         "learn from one batch per run; allowed: head_batch=shared)");
        return -1;
    }
    return 0;
}

static int check_ucb_c(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    if (check_bootstrap_key(c, cmd, msg, n)) return -1;
    if (c->act != QF_ACT_UCB) {
        snprintf(msg, n, "ucb_c weights the ensemble's std when acting with act=ucb, but act=%s: set act=ucb, or "
                         "remove ucb_c", act_names[c->act]);
        return -1;
    }
    return 0;
}

static int check_eps(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    char sw[128];
    if (!uses_explore(c, cmd, QF_EXPLORE_EPSILON) && !uses_explore(c, cmd, QF_EXPLORE_RND) &&
        !uses_explore(c, cmd, QF_EXPLORE_COUNT)) {
        snprintf(msg, n, "%s sets epsilon-greedy acting, which no run uses (%s acts without epsilon): remove %s, "
                         "or use explore=epsilon, rnd or count", g_check_key, strategy_words(c, cmd, sw, sizeof sw),
                 g_check_key);
        return -1;
    }
    return 0;
}

static int check_bonus(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    static const int with_bonus[] = {QF_EXPLORE_RND, QF_EXPLORE_COUNT}; /* the strategies that are their bonus */
    if (c->bonus != QF_BONUS_NONE) return 0;
    for (int i = 0; i < 2; i++)
        if (uses_explore(c, cmd, with_bonus[i])) {
            snprintf(msg, n, "explore=%s with bonus=none is plain epsilon-greedy: use explore=epsilon, or drop "
                             "bonus=none", explore_names[with_bonus[i]]);
            return -1;
        }
    return 0;
}

static int check_beta(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    char sw[128];
    if (!uses_bonus(c, cmd, QF_BONUS_RND) && !uses_bonus(c, cmd, QF_BONUS_COUNT)) {
        snprintf(msg, n, "beta weighs the intrinsic reward, but no run has one (%s, bonus=%s): remove beta, or set "
                         "bonus=rnd or bonus=count", strategy_words(c, cmd, sw, sizeof sw),
                 c->bonus == QF_AUTO ? "auto" : bonus_names[c->bonus]);
        return -1;
    }
    return 0;
}

static int check_rnd_key(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    char sw[128];
    if (!uses_bonus(c, cmd, QF_BONUS_RND)) {
        snprintf(msg, n, "%s is a setting of the RND bonus, which no run has (%s, bonus=%s): remove %s, or use "
                         "explore=rnd or bonus=rnd", g_check_key, strategy_words(c, cmd, sw, sizeof sw),
                 c->bonus == QF_AUTO ? "auto" : bonus_names[c->bonus], g_check_key);
        return -1;
    }
    return 0;
}

/* gamma_int: Q_I's discount, read only with rnd_value=separate. */
static int check_gamma_int(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    if (check_rnd_key(c, cmd, msg, n)) return -1;
    if (c->rnd_value != QF_RND_VALUE_SEPARATE) {
        snprintf(msg, n, "gamma_int is the discount of RND's separate intrinsic value, but rnd_value=%s: remove "
                         "gamma_int, or add rnd_value=separate", rnd_value_names[c->rnd_value]);
        return -1;
    }
    return 0;
}

/* rnd_act: acting on the bonus of each (state, action) pair needs RND to read pairs. */
static int check_rnd_act(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    if (check_rnd_key(c, cmd, msg, n)) return -1;
    if (c->rnd_act && c->rnd_input != QF_RND_INPUT_SA) {
        snprintf(msg, n, "rnd_act=1 acts on RND's bonus of each (state, action) pair, but rnd_input=%s reads states "
                         "alone: add rnd_input=state_action, or remove rnd_act", rnd_input_names[c->rnd_input]);
        return -1;
    }
    return 0;
}

/* rnd_warmup: an RND setting that only dense observations use (with state indices RND's input is the
 * one-hot embedding, which has no running statistics). */
static int check_rnd_warmup(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    if (check_rnd_key(c, cmd, msg, n)) return -1;
    if (c->rnd_warmup > 0 && qf_env_n_states(c->env, &c->env_params) > 0 && c->obs != QF_OBS_DENSE) {
        snprintf(msg, n, "rnd_warmup=%lld warms up the statistics of dense observations, but %s gives RND state "
                         "indices (one-hot, no statistics): add obs=dense, or remove rnd_warmup",
                 (long long)c->rnd_warmup, qf_env_spec_of(c->env)->name);
        return -1;
    }
    return 0;
}

static int check_count_key(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    char sw[128];
    if (!uses_bonus(c, cmd, QF_BONUS_COUNT)) {
        snprintf(msg, n, "%s is a setting of the count bonus, which no run has (%s, bonus=%s): remove %s, or use "
                         "explore=count or bonus=count", g_check_key, strategy_words(c, cmd, sw, sizeof sw),
                 c->bonus == QF_AUTO ? "auto" : bonus_names[c->bonus], g_check_key);
        return -1;
    }
    return 0;
}

static int check_simhash_key(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    if (check_count_key(c, cmd, msg, n)) return -1;
    if (c->count == QF_COUNT_EXACT) {
        snprintf(msg, n, "%s is a setting of SimHash pseudo-counts, but count=exact counts states exactly: remove %s, "
                         "or set count=simhash (or auto)", g_check_key, g_check_key);
        return -1;
    }
    return 0;
}

static int check_target_every(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    (void)cmd;
    if (c->tau < 1.0) {
        snprintf(msg, n, "target_every counts the updates between copies of the target network, but tau=%g averages "
                         "it every update (Polyak): remove target_every, or set tau=1", c->tau);
        return -1;
    }
    return 0;
}

static int check_learning_starts(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    /* train and sweep: a run collects steps * envs transitions (compare sets steps from episodes) */
    if ((cmd & (QF_CMD_TRAIN | QF_CMD_SWEEP)) && c->learning_starts >= c->steps * c->envs) {
        snprintf(msg, n, "learning_starts=%lld: a run collects steps*envs = %lld transitions, so it would never learn: "
                         "lower learning_starts, or raise steps or envs", (long long)c->learning_starts,
                 (long long)(c->steps * c->envs));
        return -1;
    }
    return 0;
}
static int check_steps(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    if (c->steps == 0 && !(cmd & QF_CMD_TRAIN)) {
        snprintf(msg, n, "steps=0 trains nothing: only `qfleet train --load FILE steps=0` evaluates without training "
                         "(allowed here: steps >= 1)");
        return -1;
    }
    return 0;
}
static int check_eval_episodes(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    /* train --load FILE steps=0 evaluates once, without eval_every */
    if (c->eval_every == 0 && !((cmd & QF_CMD_TRAIN) && c->steps == 0)) {
        snprintf(msg, n, "eval_episodes=%lld sets the episodes of each greedy evaluation, but eval_every=0 runs none: "
                         "set eval_every (env steps between evaluations), or remove eval_episodes",
                 (long long)c->eval_episodes);
        return -1;
    }
    return 0;
}

static int check_deep_sea_key(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    (void)cmd;
    if (c->env != QF_ENV_DEEP_SEA) {
        snprintf(msg, n, "%s is a DeepSea statistic's threshold, but env=%s: remove %s, or use env=deep_sea",
                 g_check_key, qf_env_spec_of(c->env)->name, g_check_key);
        return -1;
    }
    return 0;
}

int64_t qf_config_demos(const qf_config *cfg) {
    if (!cfg->demos[0]) return 0;
    char *end = NULL;
    errno = 0;
    const long long v = strtoll(cfg->demos, &end, 10);
    if (errno || end == cfg->demos || *end || v < 0 || v > QF_MAX_DEMOS || !isdigit((unsigned char)cfg->demos[0]))
        return -1;
    return v;
}

/* demos: irl parses its list itself; the training commands take one count per run on a tabular
 * env whose exact solver draws the demonstrations. */
static int check_demos(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    if (cmd == QF_CMD_IRL) return 0;
    const int64_t m = qf_config_demos(c);
    if (m < 0) {
        snprintf(msg, n, "demos=%s: train, sweep and compare take one count of expert episodes per run, an integer "
                         "in [0, %d] (a list of counts is a sweep axis)", c->demos, QF_MAX_DEMOS);
        return -1;
    }
    if (m > 0 && c->env != QF_ENV_DEEP_SEA && c->env != QF_ENV_CHAIN && c->env != QF_ENV_GRIDWORLD) {
        snprintf(msg, n, "demos=%lld draws episodes from the exact solver's policy, which env=%s has not (allowed: "
                         "deep_sea, chain, gridworld)", (long long)m, qf_env_spec_of(c->env)->name);
        return -1;
    }
    return 0;
}

/* demo_ratio, demo_weight, demo_margin: settings of the demo part, read only with demos > 0. */
static int check_demo_key(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    (void)cmd;
    if (qf_config_demos(c) == 0) {
        snprintf(msg, n, "%s is a setting of the replay's demo part, which no run has (demos=0): remove %s, or give "
                         "demos=M", g_check_key, g_check_key);
        return -1;
    }
    /* a ratio that draws no transition of a batch leaves the demonstrations unused: demos= and
     * demo_weight= would do nothing (a new user's finding) */
    if (strcmp(g_check_key, "demo_ratio") == 0 && floorf((float)c->demo_ratio * (float)c->batch + 0.5f) < 1.0f /* qf_demo_draws, in float32 */) {
        snprintf(msg, n, "demo_ratio=%g draws round(%g x batch %lld) = 0 transitions of each minibatch from the demo "
                         "part, so the demonstrations would never be used (allowed: demo_ratio >= %g at this batch, or "
                         "demos=0)", c->demo_ratio, c->demo_ratio, (long long)c->batch, 0.5 / (double)c->batch);
        return -1;
    }
    return 0;
}

/* seed + seeds - 1 must be a 32-bit seed: a larger one would wrap to 0, 1, ... and repeat those
 * runs' random streams under another name (a new user's finding) */
static int check_seed_range(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    (void)cmd;
    if (c->seed + c->seeds - 1 <= 4294967295LL) return 0;
    snprintf(msg, n, "seed=%lld with seeds=%lld: the last seed, %lld, is past 4294967295 and would wrap to %lld, "
                     "repeating that seed's runs (allowed: seed + seeds - 1 <= 4294967295)",
             (long long)c->seed, (long long)c->seeds, (long long)(c->seed + c->seeds - 1),
             (long long)(c->seed + c->seeds - 1 - 4294967296LL));
    return -1;
}

/* episodes= in train and sweep: a budget in episodes, turned into steps where every episode has the
 * same length (DeepSea: N steps), so that each run sees exactly `episodes` episodes */
static int check_episodes(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    if (!(cmd & (QF_CMD_TRAIN | QF_CMD_SWEEP))) return 0;
    if (c->env != QF_ENV_DEEP_SEA) {
        snprintf(msg, n, "episodes=%lld is a budget in episodes for environments whose episodes all last the same "
                         "number of steps (deep_sea: N), but env=%s: give steps instead", (long long)c->episodes,
                 qf_env_spec_of(c->env)->name);
        return -1;
    }
    if (qf_config_given(c, "steps")) {
        snprintf(msg, n, "episodes=%lld and steps=%lld both set the budget of a run: give one of them",
                 (long long)c->episodes, (long long)c->steps);
        return -1;
    }
    if (c->episodes % c->envs) {
        snprintf(msg, n, "episodes=%lld is not a multiple of envs=%lld: each of a run's envs plays the same number of "
                         "episodes, so the run would see %lld; give a multiple", (long long)c->episodes,
                 (long long)c->envs, (long long)((c->episodes + c->envs - 1) / c->envs * c->envs));
        return -1;
    }
    return 0;
}

static int check_huber(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    (void)cmd;
    if (c->loss != QF_LOSS_HUBER) {
        snprintf(msg, n, "huber is the threshold of the Huber loss, but loss=%s: remove huber, or set loss=huber",
                 loss_names[c->loss]);
        return -1;
    }
    return 0;
}

static int bandits_use(const qf_config *c, int s) {
    for (int i = 0; i < c->n_strategies; i++)
        if (c->strategies[i] == s) return 1;
    return 0;
}

static int check_bandit_eps(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    (void)cmd;
    if (!bandits_use(c, QF_BANDIT_EPSILON)) {
        snprintf(msg, n, "bandit_eps is the epsilon of the strategy epsilon, which strategies= does not list: remove "
                         "bandit_eps, or add epsilon to strategies");
        return -1;
    }
    return 0;
}

static int check_bandit_temp(const qf_config *c, unsigned cmd, char *msg, size_t n) {
    (void)cmd;
    if (!bandits_use(c, QF_BANDIT_BOLTZMANN)) {
        snprintf(msg, n, "bandit_temp is the temperature of the strategy boltzmann, which strategies= does not list: "
                         "remove bandit_temp, or add boltzmann to strategies");
        return -1;
    }
    return 0;
}

int qf_config_check_one(const qf_config *cfg, unsigned cmd, int k, int *unused, char *msg, size_t n) {
    if (!cmd) cmd = QF_CMD_TRAIN;
    if (unused) *unused = 0;
    if (k < 0 || k >= N_KEYS || !keys[k].check || !((cfg->given[k / 64] >> (k % 64)) & 1u)) return 0;
    g_check_key = keys[k].name;
    g_check_contradiction = 0;
    if (!keys[k].check(cfg, cmd, msg, n)) return 0;
    /* the checks that find a configuration contradicting itself; the others find a key ignored */
    const check_fn f = keys[k].check;
    if (unused)
        *unused = !(f == check_explore || f == check_obs || f == check_double_q || f == check_bonus ||
                    f == check_learning_starts || f == check_steps || f == check_graphs ||
                    f == check_episodes || f == check_seed_range || g_check_contradiction);
    return -1;
}

int qf_config_check(const qf_config *cfg, unsigned cmd, char *msg, size_t n) {
    for (int k = 0; k < N_KEYS; k++)
        if (qf_config_check_one(cfg, cmd, k, NULL, msg, n)) return -1;
    return 0;
}

/* ---- help, get, print --------------------------------------------------------------------------- */

static void type_text(const key_spec *ks, char *range, size_t len) {
    char names[256];
    switch (ks->type) {
    case K_INT: snprintf(range, len, "int [%.0f, %.0f]", ks->lo, ks->hi); break;
    case K_FLOAT: snprintf(range, len, "float [%g, %g]", ks->lo, ks->hi); break;
    case K_CHOICE: choice_list(ks, range, len); break;
    case K_CHOICES:
        choice_list(ks, names, sizeof names);
        snprintf(range, len, "list of %s", names);
        break;
    case K_INTS: snprintf(range, len, "list of int [%.0f, %.0f]", ks->lo, ks->hi); break;
    case K_STRING: snprintf(range, len, "text"); break;
    case K_WIDTHS: snprintf(range, len, "[int, ...] (0 to %zu)", ks->cap); break;
    default: snprintf(range, len, "env name"); break;
    }
}

void qf_config_print_keys(FILE *f, unsigned cmds) {
    /* groups: the distinct command sets, in the order of the table */
    unsigned groups[QF_MAX_KEYS];
    int n_groups = 0;
    for (int k = 0; k < N_KEYS; k++) {
        if (!(keys[k].cmds & cmds)) continue;
        int seen = 0;
        for (int g = 0; g < n_groups; g++) seen |= groups[g] == keys[k].cmds;
        if (!seen) groups[n_groups++] = keys[k].cmds;
    }
    int name_w = 12; /* the name column fits the longest name */
    for (int k = 0; k < N_KEYS; k++)
        if ((int)strlen(keys[k].name) > name_w) name_w = (int)strlen(keys[k].name);
    if (cmds == QF_CMD_ALL)
        fprintf(f, "keys (key=value), grouped by the commands that use them; a key given to another command is "
                   "refused\n");
    else
        fprintf(f, "keys (key=value) of `qfleet %s`\n", qf_config_command_name(cmds));
    for (int g = 0; g < n_groups; g++) {
        char users[200];
        command_list(groups[g], users, sizeof users);
        fprintf(f, "\n used by %s:\n", users);
        for (int k = 0; k < N_KEYS; k++) {
            const key_spec *ks = &keys[k];
            if (ks->cmds != groups[g]) continue;
            char range[300];
            type_text(ks, range, sizeof range);
            fprintf(f, "  %-*s %-26s default %-10s %s%s\n", name_w, ks->name, range, *ks->def ? ks->def : "\"\"",
                    ks->doc, ks->scope == QF_SCOPE_RUN ? " [per run]" : "");
        }
    }
    fprintf(f, "\n  %-*s parameters of the chosen environment (see: qfleet envs)\n"
               "  [per run]: may differ between the runs of one fleet (a sweep over it shares fleets)\n",
            name_w, "env.<name>");
}

/* The value of key ks in cfg as text (what `key=` would take back). */
static void format_key(const key_spec *ks, const qf_config *cfg, char *out, size_t len) {
    const char *src = (const char *)cfg + ks->offset;
    if (ks->type == K_INT) {
        int64_t v;
        memcpy(&v, src, sizeof v);
        snprintf(out, len, "%lld", (long long)v);
    } else if (ks->type == K_FLOAT) {
        double v;
        memcpy(&v, src, sizeof v);
        format_number(out, len, v, 0);
    } else if (ks->type == K_CHOICE) {
        int32_t v;
        memcpy(&v, src, sizeof v);
        snprintf(out, len, "%s", v == QF_AUTO ? "auto" : v >= 0 && v < ks->n_names && ks->names[v] ? ks->names[v] : "?");
    } else if (ks->type == K_CHOICES || ks->type == K_INTS) {
        int32_t cnt;
        memcpy(&cnt, (const char *)cfg + ks->count_offset, sizeof cnt);
        size_t used = 0;
        out[0] = 0;
        for (int i = 0; i < cnt && used < len; i++) {
            int32_t v;
            memcpy(&v, src + sizeof(int32_t) * (size_t)i, sizeof v);
            if (ks->type == K_CHOICES)
                used += (size_t)snprintf(out + used, len - used, "%s%s", i ? "," : "", ks->names[v]);
            else
                used += (size_t)snprintf(out + used, len - used, "%s%d", i ? "," : "", (int)v);
        }
    } else if (ks->type == K_ENV) {
        snprintf(out, len, "%s", qf_env_spec_of(cfg->env)->name);
    } else if (ks->type == K_WIDTHS) {
        size_t used = (size_t)snprintf(out, len, "[");
        for (int i = 0; i < cfg->n_hidden && used < len; i++)
            used += (size_t)snprintf(out + used, len - used, "%s%lld", i ? "," : "", (long long)cfg->hidden[i]);
        if (used < len) snprintf(out + used, len - used, "]");
    } else {
        snprintf(out, len, "%s", src);
    }
}

int qf_config_get(const qf_config *cfg, const char *key, char *out, size_t len) {
    if (strncmp(key, "env.", 4) == 0) {
        const qf_param_spec *ps = qf_env_param_find(cfg->env, key + 4);
        if (!ps) return -1;
        format_env_param(cfg, ps, out, len);
        return 0;
    }
    const key_spec *ks = find_key(key);
    if (!ks) return -1;
    format_key(ks, cfg, out, len);
    return 0;
}

void qf_config_run_hp(const qf_config *cfg, qf_run_hp *hp) {
    for (int k = 0; k < N_KEYS; k++) {
        const key_spec *ks = &keys[k];
        if (!ks->to_hp) continue;
        const char *src = (const char *)cfg + ks->offset;
        char *dst = (char *)hp + ks->hp_offset;
        if (ks->type == K_FLOAT) {
            double v;
            memcpy(&v, src, sizeof v);
            const float f = (float)v;
            memcpy(dst, &f, sizeof f);
        } else if (ks->type == K_INT) {
            int64_t v;
            memcpy(&v, src, sizeof v);
            const int32_t i = (int32_t)(v > 2147483647 ? 2147483647 : v < -2147483647 - 1 ? -2147483647 - 1 : v);
            memcpy(dst, &i, sizeof i);
        } else { /* K_CHOICE: already the int32 enum */
            memcpy(dst, src, sizeof(int32_t));
        }
    }
}

int qf_config_key_count(void) { return N_KEYS; }
const char *qf_config_key_name(int i) { return i >= 0 && i < N_KEYS ? keys[i].name : NULL; }

const char *qf_config_choice_name(const char *key, int value) {
    const key_spec *ks = find_key(key);
    if (!ks || (ks->type != K_CHOICE && ks->type != K_CHOICES)) return "?";
    if (value == QF_AUTO && ks->has_auto) return "auto";
    return value >= 0 && value < ks->n_names && ks->names[value] ? ks->names[value] : "?";
}

int qf_config_choice_value(const char *key, const char *name) {
    const key_spec *ks = find_key(key);
    if (!ks || (ks->type != K_CHOICE && ks->type != K_CHOICES)) return -2;
    return choice_of(ks, name, strlen(name));
}

void qf_config_print(FILE *f, const qf_config *cfg) { qf_config_print_for(f, cfg, ""); }

void qf_config_print_for(FILE *f, const qf_config *cfg, const char *command) {
    const unsigned cmd = qf_config_command(command);
    for (int k = 0; k < N_KEYS; k++) {
        if (cmd && !(keys[k].cmds & cmd)) continue; /* another command's key */
        char v[QF_PATH_CAP + 64];
        format_key(&keys[k], cfg, v, sizeof v);
        fprintf(f, "%s=%s\n", keys[k].name, v);
    }
    const qf_env_spec *es = qf_env_spec_of(cfg->env);
    for (int j = 0; j < es->n_params; j++) {
        char v[QF_MAX_ARMS * 24 + 8];
        format_env_param(cfg, &es->params[j], v, sizeof v);
        fprintf(f, "env.%s=%s\n", es->params[j].name, v);
    }
}
