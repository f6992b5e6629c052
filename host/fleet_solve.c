/* fleet_solve.c — V*(s0) for the fleet's regret, from the backend's exact solver. */
#include <math.h>
#include <stdlib.h>

#include "fleet.h"

/* Sets f->v_star to V*(s0) of run 0's environment (undiscounted, hard max), NaN on failure. All
 * runs of a fleet share env params; bandit means drawn per run differ, so then V* is per run and
 * regret is not reported (NaN) until per-run optima are wired. */
int qf_fleet_solve_v0(qf_fleet *f) {
    qf_backend *b = f->b;
    f->v_star = NAN;
    const qf_env_params *p = &f->cfg.env_params;
    if (f->cfg.env == QF_ENV_BANDIT && p->bandit.n_probs == 0) return QF_ERR;
    /* DeepSea with per-run mappings: the optimum does not depend on the mapping, run 0's will do */
    const int32_t S = qf_env_n_states(f->cfg.env, p), A = qf_env_n_actions(f->cfg.env, p);
    qf_solve_problem prob;
    prob.kind = f->cfg.env;
    prob.R = 1;
    prob.n_states = S;
    prob.n_actions = A;
    prob.max_iters = 100000;
    prob.tol = 1e-12;
    double one = 1.0, zero = 0.0, v0 = NAN;
    int32_t iters = 0;
    size_t bytes = sizeof(double) * (size_t)S * (size_t)(A + 1) + 4 * sizeof(double);
    char *blk = (char *)b->alloc(b, bytes);
    if (!blk) return QF_ERR;
    double *q = (double *)blk, *v = q + (size_t)S * A, *g = v + S, *a = g + 1;
    prob.params = f->env.batch.params;
    prob.keys = f->env.batch.keys;
    prob.gamma = g;
    prob.alpha = a;
    int rc = b->upload(b, g, &one, sizeof one) == QF_OK && b->upload(b, a, &zero, sizeof zero) == QF_OK &&
             b->solve(b, &prob, q, v, &iters) == QF_OK && b->download(b, &v0, v, sizeof v0) == QF_OK;
    b->release(b, blk);
    if (rc) f->v_star = v0;
    return rc ? QF_OK : QF_ERR;
}
