/* solve.h — `qfleet solve`: V*(s0) (and on request the policy) of a tabular environment. */
#ifndef QF_HOST_SOLVE_H
#define QF_HOST_SOLVE_H
#include "../kernels/backend.h"
#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The exact solver's fast path for layered kinds (qf_env_layers: DeepSea, the bandit): backward
 * induction, one pass over the layers from the last to the first, each state's value computed once
 * by the value-iteration backup (qf_solve_state, kernels/solve_ops.h) from the next layer's final
 * values. That is the fixed point soft / hard value iteration (kernels/solve.h) converges to, for
 * any gamma in [0, 1]: O(S * A) work per run instead of O(layers * S * A) for the sweeps (DeepSea
 * N = 4096: 16.8M states once, not 4096 sweeps over them). Bellman 1957 (backward induction).
 * prob: on HOST memory (params, keys, gamma, alpha [R]); max_iters and tol are not used.
 * v [R][n_states] (host) receives V*; q [R][n_states][n_actions] (host) receives Q*, or NULL.
 * Returns 0, or -1 with one line in msg (a kind that is not layered, a bad problem or run). */
int qf_solve_layered(const qf_solve_problem *prob, double *q, double *v, char *msg, size_t len);

/* Run the command; returns the exit code (0, 1 runtime failure, 2 bad input), messages printed. */
int qf_cmd_solve(const qf_config *cfg, qf_backend *b);

#ifdef __cplusplus
}
#endif
#endif
