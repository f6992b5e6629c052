/* bandits.h — `qfleet bandits`: multi-armed bandit strategies over thousands of bandit instances
 * at once, with pseudo-regret curves. One fleet holds every strategy (x seeds) as its runs, E
 * instances each; one backend bandit_step per step serves them all (kernels/bandit_agent.h). */
#ifndef QF_HOST_BANDITS_H
#define QF_HOST_BANDITS_H
#include "../kernels/backend.h"
#include "../kernels/bandit_agent.h"
#include "config.h"
#include "words.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Name of a strategy (QF_BANDIT_*): "epsilon", "ucb1", "thompson", "boltzmann". */
const char *qf_bandit_strategy_name(int32_t strategy);

/* Checks of `qfleet bandits` input that need no backend (env is bandit, strategies, sizes).
 * Returns 0, or -1 with one line in msg (exit code 2). */
int qf_bandits_check(const qf_config *cfg, char *msg, size_t msg_len);

/* A bandit fleet: S strategies x `seeds` seeds = R runs, E instances each. Run r = i*seeds + s
 * plays strategy i with key (seed + s, 0): every strategy faces the same bandit instances (the
 * same means when they are drawn per seed, the same reward coins per instance and step). */
typedef struct qf_bandits {
    qf_backend *b;
    qf_bandit_fleet f;   /* device pointers */
    int32_t S, seeds, R, E, K;
    int32_t strategy[QF_BANDIT_N_STRATEGIES];
    int64_t t;           /* steps taken by every instance */
    uint32_t *keys_host; /* [R][2] */
    double *mu;          /* [R][K] arm means of each run (as the env uses them, float -> double) */
    int32_t *pulls_host; /* [K][N] scratch for downloads */
    volatile int *stop;  /* when set and *stop != 0, qf_bandits_run returns early (bf->t < until) */
} qf_bandits;

/* Create the fleet from cfg (strategies, seeds, seed, envs, env.*, bandit_eps, bandit_temp).
 * Returns QF_OK, or QF_ERR with one line in err; *bad_input is set to 1 when the cause is the
 * input (exit code 2: e.g. does not fit in memory), 0 for a backend failure (exit code 1). */
int qf_bandits_create(qf_bandits *bf, qf_backend *b, const qf_config *cfg, int *bad_input, char *err,
                      size_t err_len);
/* Take steps until every instance has pulled `until` arms in all. */
int qf_bandits_run(qf_bandits *bf, int64_t until, char *err, size_t err_len);
/* Pseudo-regret sum_a n_a (mu* - mu_a) of every instance, regret[N] (run-major: idx = r*E + e),
 * exact in double from the counts. pulls (optional, [K][N]) receives the pull counts. */
int qf_bandits_regret(qf_bandits *bf, double *regret, int32_t *pulls, char *err, size_t err_len);
void qf_bandits_destroy(qf_bandits *bf);

/* Auer et al. (2002), Theorem 1: UCB1's expected regret after T pulls is at most
 * 8 sum_{i: mu_i < mu*} ln T / Delta_i + (1 + pi^2/3) sum_i Delta_i. */
double qf_ucb1_bound(const double *mu, int32_t K, int64_t T);

/* Run the command; returns the exit code (0; 1 runtime failure; 2 bad input), messages printed. */
int qf_cmd_bandits(const qf_config *cfg, const qf_words *ws, qf_backend *b);

#ifdef __cplusplus
}
#endif
#endif
