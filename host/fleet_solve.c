/* fleet_solve.c — V*(s0) for the fleet's regret, from the exact solver: for a layered env
 * (DeepSea, the bandit: envs/tabular.h's qf_env_layers) one backward pass on the host
 * (qf_solve_layered, O(states)), else the backend's value iteration. */
#include <math.h>
#include <stdlib.h>

#include "../envs/tabular.h"
#include "fleet.h"
#include "solve.h"

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
    int32_t layers, width;
    if (qf_env_layers(f->cfg.env, p, &layers, &width)) { /* DeepSea N = 4096: seconds, not hours of sweeps */
        const double one = 1.0, zero = 0.0;
        double *v = (double *)malloc(sizeof(double) * (size_t)S);
        char msg[256];
        qf_solve_problem lp = {f->cfg.env, 1, p, f->keys_host, &one, &zero, S, A, 1, 0.0};
        const int ok = v && qf_solve_layered(&lp, NULL, v, msg, sizeof msg) == 0;
        if (ok) f->v_star = v[qf_env_start_state(f->cfg.env, p)];
        free(v);
        return ok ? QF_OK : QF_ERR;
    }
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
