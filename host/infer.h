/* infer.h — `qfleet infer` (control as inference on a tabular env) and `qfleet irl` (MaxEnt IRL
 * with known dynamics), and the pieces of them the tests call directly. */
#ifndef QF_HOST_INFER_H
#define QF_HOST_INFER_H
#include <stdint.h>

#include "../kernels/backend.h"
#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Run the commands; return the exit code (0, 1 runtime failure, 2 bad input, 130 interrupted with a
 * checkpoint), messages printed. Each opens its results folder (out=, or ws->resume) through the
 * runner (qf_results_begin: locked, refused when it holds results unless --overwrite). */
struct qf_words;
int qf_cmd_infer(const qf_config *cfg, const struct qf_words *ws, qf_backend *b);
int qf_cmd_irl(const qf_config *cfg, const struct qf_words *ws, qf_backend *b);
/* `qfleet bench irl`: MaxEnt IRL iterations per second for 1, 64 and 1024 gridworld problems
 * (capped by max_runs and memory) of N = 16 and 32, T = horizon (default 64). */
int qf_bench_irl(const qf_config *cfg, qf_backend *b);

/* Parse a comma-separated list of numbers in [lo, hi] (integers when integer != 0) into out
 * [0 .. cap); returns the count, or -1 with one line naming `key` in msg (also for a value given
 * twice: each value makes its own runs, which would repeat under one name). */
int qf_parse_list(const char *key, const char *text, double lo, double hi, int integer, double *out,
                  int cap, char *msg, size_t len);

/* The horizon T of a finite-horizon problem: `horizon` when > 0, else the env's episode length
 * (qf_env_episode_steps). */
int32_t qf_problem_horizon(int kind, const qf_env_params *p, int64_t horizon);

/* ---- MaxEnt IRL (host/irl.c) ----------------------------------------------------------------- */

/* Demonstrations of one run, host memory: steps (t, state, action) of n episodes, each a run of
 * steps with t = 0, 1, ...; episode_start[i] indexes the first step of episode i. */
typedef struct qf_demos {
    int32_t n_episodes, n_steps;
    int32_t *episode_start; /* [n_episodes] */
    int32_t *t, *state, *action; /* [n_steps] */
} qf_demos;
void qf_demos_free(qf_demos *d);

/* Number of features F of the IRL reward r_psi(s, a) = psi . f(s, a) of a kind: the gridworld's
 * object features (C * D), else one indicator per state (a tabular state reward). */
int32_t qf_irl_n_features(int kind, const qf_env_params *p);
/* f(s, a) of every (s, a) into feat [S][A][F] (doubles). */
void qf_irl_features(int kind, const qf_env_params *p, double *feat);

/* M episodes of T steps drawn from the soft-optimal policy (variational backup, temperature
 * alpha) of the env's own reward, from its start state, with the model's outcome probabilities;
 * randomness: Philox key (k0, k1), QF_STREAM_DEMO. v: the V table [T+1][S] of that problem (host).
 * Returns 0 or -1 (out of memory). */
int qf_irl_draw_demos(int kind, const qf_env_params *p, uint32_t k0, uint32_t k1, double alpha, int32_t T,
                      const double *v, int32_t M, qf_demos *out);

/* Read demonstrations from a CSV file with the header `episode,t,state,action` (columns in any
 * order, other columns refused): rows of one episode are consecutive with t = 0, 1, ... < T, states
 * in [0, S), actions in [0, A); episodes numbered 0, 1, ... in order. Returns 0, or -1 with
 * "path:line: what is wrong" in msg. */
int qf_irl_read_demos(const char *path, int32_t T, int32_t S, int32_t A, qf_demos *out, char *msg, size_t len);

/* R independent IRL problems trained together. All arrays host memory. */
typedef struct qf_irl_setup {
    int kind;
    int32_t R, T, S, A, F;
    const qf_env_params *params; /* [R] */
    const uint32_t *keys;        /* [R][2] */
    const double *alpha;         /* [R] temperature of the learner's model */
    const double *lr;            /* [R] Adam learning rate */
    const double *feat;          /* [R][S][A][F] */
    const qf_demos *demos;       /* [R] */
    int32_t demos_given;         /* 1: the demonstrations came from a file (demos_file=), not from the
                                    soft-optimal policy at alpha: expert_regret then uses their
                                    empirical return (below) instead of that policy's exact value */
    int32_t iters, log_every;    /* iterations; metrics every log_every and at the last */
    /* resuming and stopping (all may be 0/NULL: a fresh start that runs to the end) */
    int32_t start_iter;          /* first iteration to run (a checkpoint's); psi, adam_m, adam_v hold the
                                    state before it (else psi starts at 0, the moments at 0) */
    const double *adam_m0, *adam_v0; /* [R][F] Adam moments at start_iter (NULL: zeros) */
    volatile int *stop;          /* set (a signal): stop before the next iteration, the state saved */
    void *ctx;
    /* at each log point k (iteration it): the metrics of every run [R] (loglik, gap, regret). Returns
     * nonzero to stop (a curve part that cannot be written) */
    int (*on_log)(void *ctx, int32_t it, const double *loglik, const double *gap, const double *regret);
    /* called between iterations: nonzero when a checkpoint is due now (time); then on_state gets the
     * state before iteration `it` (psi, adam_m, adam_v, each [R][F]); nonzero: stop */
    int (*want_state)(void *ctx);
    int (*on_state)(void *ctx, int32_t it, const double *psi, const double *adam_m, const double *adam_v);
} qf_irl_setup;

/* Metrics of every run at log points k = 0 .. n_logs-1 (iteration iter[k], before that
 * iteration's update): [n_logs][R]. */
typedef struct qf_irl_curves {
    int32_t n_logs;
    int32_t *iter;     /* [n_logs] */
    double *loglik;    /* mean demo log-likelihood per episode */
    double *gap;       /* max_k |expert feature expectation - expected under r_psi| */
    double *regret;    /* V*(s0) of the env's reward (hard max, horizon T) - value of pi_psi under it */
    double *v_star;    /* [R] V*(s0) */
    double *expert_regret; /* [R] V*(s0) - value of the demonstrator's own soft-optimal policy (alpha of
                              the run, env reward): what a perfect recovery of its policy would reach */
} qf_irl_curves;
void qf_irl_curves_free(qf_irl_curves *c);

/* Train: psi [R][F] starts at 0 (or, with start_iter > 0, holds the state to resume from) and
 * receives the learned weights; curves filled with the log points this call reached (from
 * start_iter). Returns QF_OK, QF_ERR with one line in err, or QF_IRL_STOPPED when *stop was set or a
 * callback asked to stop (on_state has then been given the state to resume from, unless on_log
 * stopped it). */
#define QF_IRL_STOPPED 2
int qf_irl_train(qf_backend *b, const qf_irl_setup *in, double *psi, qf_irl_curves *curves, char *err,
                 size_t err_len);

#ifdef __cplusplus
}
#endif
#endif
