/* solve.c — `qfleet solve`: the exact optimal values of a tabular environment by soft (alpha > 0)
 * or hard (alpha = 0) value iteration on the backend, one problem per run (run r has key (seed, r),
 * which matters for DeepSea's env.map_per_run and for drawn bandit means).
 *
 * Prints V*(s0) per run (the first few and a summary when runs > 8) and, with policy=1, the optimal
 * policy of run 0: greedy (R/L per state, '=' for a tie) when alpha = 0, else the soft policy
 * pi(a|s) = exp((Q(s,a) - V(s)) / alpha) as probabilities. The discount is `gamma` as given (default
 * 0.99): DeepSea's published optimal return 0.99 is the undiscounted one, `gamma=1`.
 *
 * Which problem: with horizon=T > 0, or by default for envs with a time limit (chain, gridworld),
 * the finite-horizon undiscounted problem of T steps (backward induction, the variational backup
 * of kernels/infer.h at alpha, 0 = hard max); printed values are V_0(s0) and the policy is that of
 * t = 0. Otherwise (DeepSea and bandit, whose episodes end by termination, or horizon=-1) the
 * infinite-horizon discounted MDP by value iteration; the chain and the gridworld then need
 * gamma < 1. The command prints which one it solved. */
#include "solve.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../envs/tabular.h"
#include "../kernels/infer_ops.h"
#include "../kernels/solve_ops.h"

#define QF_SOLVE_MAX_ITERS 1000000
#define QF_SOLVE_TOL 1e-10
#define QF_SOLVE_RUNS_SHOWN 8  /* all runs up to this many; else the first 4 and a summary */
#define QF_SOLVE_GRID_MAX 32   /* largest DeepSea grid printed cell by cell */
#define QF_SOLVE_STATES_MAX 64 /* chain states printed */
#define QF_SOLVE_LAYER_PARALLEL 1024 /* layer width from which one run's layer is shared among threads */

/* ---- the layered fast path (solve.h) ---------------------------------------------------------- */

/* Run r's layers from the last to the first; layer l reads only layer l + 1's final values. */
static void layered_run(const qf_solve_problem *prob, int32_t r, int32_t L, int32_t W, double *q, double *v,
                        int parallel) {
    const int32_t S = prob->n_states, A = prob->n_actions;
    const qf_env_params *p = &prob->params[r];
    const uint32_t k0 = prob->keys[2 * r], k1 = prob->keys[2 * r + 1];
    const double gamma = prob->gamma[r], alpha = prob->alpha[r];
    double *vr = v + (size_t)r * (size_t)S; /* [S] */
    for (int32_t l = L - 1; l >= 0; l--) {
#pragma omp parallel for schedule(static) if (parallel)
        for (int32_t s = l * W; s < (l + 1) * W; s++) {
            double row[QF_MAX_ARMS];
            double *qs = q ? q + ((size_t)r * (size_t)S + (size_t)s) * (size_t)A : row; /* [A] */
            vr[s] = qf_solve_state(prob->kind, p, k0, k1, gamma, alpha, s, A, vr, qs);
        }
    }
}

int qf_solve_layered(const qf_solve_problem *prob, double *q, double *v, char *msg, size_t len) {
    if (qf_solve_check_problem(prob, msg, len)) return -1;
    const int32_t R = prob->R, S = prob->n_states, A = prob->n_actions;
    int32_t L = 0, W = 0;
    for (int32_t r = 0; r < R; r++) {
        const int code = qf_solve_check_run(prob->kind, &prob->params[r], S, A, prob->gamma[r], prob->alpha[r]);
        if (code) {
            qf_solve_run_message(code, r, prob->kind, &prob->params[r], prob, prob->gamma[r], prob->alpha[r], msg,
                                 len);
            return -1;
        }
        int32_t l, w;
        if (!qf_env_layers(prob->kind, &prob->params[r], &l, &w) || (int64_t)l * w > S || (r && (l != L || w != W))) {
            snprintf(msg, len, "solve: run %d's environment (%s) is not layered the same way as run 0's (the "
                               "layered solve: deep_sea and bandit)", (int)r, qf_env_spec_of(prob->kind)->name);
            return -1;
        }
        L = l;
        W = w;
    }
    memset(v, 0, sizeof(double) * (size_t)R * (size_t)S); /* states after the layers (DeepSea's null state): 0 */
    if (q) memset(q, 0, sizeof(double) * (size_t)R * (size_t)S * (size_t)A);
    /* whole runs among threads when there are enough, else the states of each layer (no nesting) */
    if (R >= omp_get_max_threads()) {
#pragma omp parallel for schedule(dynamic, 1)
        for (int32_t r = 0; r < R; r++) layered_run(prob, r, L, W, q, v, 0);
    } else {
        for (int32_t r = 0; r < R; r++) layered_run(prob, r, L, W, q, v, W >= QF_SOLVE_LAYER_PARALLEL);
    }
    return 0;
}

/* "name (key=value ...)" of the environment and its parameters. */
static void describe_env(const qf_config *cfg, char *out, size_t len) {
    const qf_env_spec *es = qf_env_spec_of(cfg->env);
    size_t used = (size_t)snprintf(out, len, "%s (", es->name);
    for (int j = 0; j < es->n_params && used < len; j++) {
        const qf_param_spec *ps = &es->params[j];
        char v[1024];
        if (ps->type == QF_P_LIST && cfg->env_params.bandit.n_probs == 0)
            snprintf(v, sizeof v, "drawn");
        else
            qf_env_param_format(ps, &cfg->env_params, v, sizeof v);
        used += (size_t)snprintf(out + used, len - used, "%s%s=%s", j ? " " : "", ps->name, v);
    }
    if (used < len) snprintf(out + used, len - used, ")");
}

/* pi(.|s) from the Q row: soft (alpha > 0) or greedy with ties shared evenly. */
static void policy_row(const double *q, int32_t A, double alpha, double *pi) {
    double m = q[0];
    for (int32_t a = 1; a < A; a++) m = q[a] > m ? q[a] : m;
    double sum = 0.0;
    for (int32_t a = 0; a < A; a++) {
        if (alpha > 0.0)
            pi[a] = exp((q[a] - m) / alpha);
        else
            pi[a] = fabs(q[a] - m) <= 1e-12 * (fabs(m) > 1.0 ? fabs(m) : 1.0) ? 1.0 : 0.0;
        sum += pi[a];
    }
    for (int32_t a = 0; a < A; a++) pi[a] /= sum;
}

/* One cell of a two-action policy: R / L / = (tie) when greedy, P(right) when soft. */
static void print_cell(double p_right, double alpha) {
    if (alpha > 0.0)
        printf(" %4.2f", p_right);
    else
        printf(" %c", p_right == 1.0 ? 'R' : (p_right == 0.0 ? 'L' : '='));
}

static void print_policy(const qf_config *cfg, const double *q, int32_t S, int32_t A) {
    const qf_env_params *p = &cfg->env_params;
    const uint32_t k0 = (uint32_t)cfg->seed, k1 = 0; /* run 0 */
    const double alpha = cfg->alpha;
    double pi[QF_MAX_ARMS];
    if (cfg->env == QF_ENV_DEEP_SEA) {
        const int32_t n = p->deep_sea.size;
        if (n > QF_SOLVE_GRID_MAX) {
            double lo = 1.0, sum = 0.0;
            for (int32_t d = 0; d < n; d++) {
                const int32_t s = d * n + d;
                policy_row(q + (size_t)s * A, A, alpha, pi);
                const double pr = pi[qf_deep_sea_right_action(&p->deep_sea, k0, k1, d, d)];
                lo = pr < lo ? pr : lo;
                sum += pr;
            }
            printf("policy of run 0: P(right) on the diagonal: min %.4f, mean %.4f (the grid is printed "
                   "for env.size <= %d)\n", lo, sum / n, QF_SOLVE_GRID_MAX);
            return;
        }
        printf("policy of run 0: %s per cell, row 0 (start) at the top; '.' = not reachable\n",
               alpha > 0.0 ? "P(right)" : "greedy action (R right, L left, = tie)");
        for (int32_t row = 0; row < n; row++) {
            printf("  row %3d:", row);
            for (int32_t col = 0; col < n; col++) {
                if (col > row) {
                    printf(alpha > 0.0 ? "    ." : " .");
                    continue;
                }
                const int32_t s = row * n + col;
                policy_row(q + (size_t)s * A, A, alpha, pi);
                print_cell(pi[qf_deep_sea_right_action(&p->deep_sea, k0, k1, row, col)], alpha);
            }
            printf("\n");
        }
    } else if (cfg->env == QF_ENV_CHAIN) {
        const int32_t shown = S < QF_SOLVE_STATES_MAX ? S : QF_SOLVE_STATES_MAX;
        printf("policy of run 0: %s for states 0..%d%s\n ",
               alpha > 0.0 ? "P(right)" : "greedy action (R right, L left, = tie)", shown - 1,
               shown < S ? " (of the first states only)" : "");
        for (int32_t s = 0; s < shown; s++) {
            policy_row(q + (size_t)s * A, A, alpha, pi);
            print_cell(pi[1], alpha);
        }
        printf("\n");
    } else if (cfg->env == QF_ENV_GRIDWORLD) {
        const int32_t n = p->gridworld.size;
        static const char arrow[5] = {'^', 'v', '<', '>', 'o'};
        printf("policy of run 0: most likely action per cell (^ up, v down, < left, > right, o stay)%s\n",
               n > QF_SOLVE_GRID_MAX ? " (first rows only)" : "");
        for (int32_t row = 0; row < n && row < QF_SOLVE_GRID_MAX; row++) {
            printf("  row %3d:", row);
            for (int32_t col = 0; col < n && col < QF_SOLVE_GRID_MAX; col++) {
                policy_row(q + (size_t)(row * n + col) * A, A, alpha, pi);
                int best = 0;
                for (int a = 1; a < A; a++) best = pi[a] > pi[best] ? a : best;
                printf(" %c", arrow[best]);
            }
            printf("\n");
        }
    } else { /* bandit: one state */
        policy_row(q, A, alpha, pi);
        printf("policy of run 0: %s over arms 0..%d:\n ", alpha > 0.0 ? "pi(a)" : "greedy pi(a)", A - 1);
        for (int32_t a = 0; a < A; a++) printf(" %.4f", pi[a]);
        printf("\n  Q*(a):");
        for (int32_t a = 0; a < A; a++) printf(" %.6f", q[a]);
        printf("\n");
    }
}

static void print_values_and_policy(const qf_config *cfg, const double *v_host, const double *q_host, int32_t R,
                                    int32_t S, int32_t A, int32_t s0);

int qf_cmd_solve(const qf_config *cfg, qf_backend *b) {
    const int kind = cfg->env;
    const char *name = qf_env_spec_of(kind)->name;
    if (!qf_env_tabular(kind)) {
        fprintf(stderr, "qfleet: solve needs a tabular environment (allowed: env=deep_sea, chain, bandit, gridworld); "
                        "env=%s has continuous states\n", name);
        return 2;
    }
    /* the problem: finite horizon T (horizon=, default the env's time limit where it has one) or
     * the infinite-horizon discounted MDP (horizon=-1, or envs whose episodes end by termination) */
    const int32_t limit = qf_env_horizon(kind, &cfg->env_params);
    const int32_t T = cfg->horizon > 0 ? (int32_t)cfg->horizon : (cfg->horizon == 0 ? limit : 0);
    if (T == 0 && (kind == QF_ENV_CHAIN || kind == QF_ENV_GRIDWORLD) && cfg->gamma >= 1.0) {
        fprintf(stderr, "qfleet: solve env=%s horizon=%lld (infinite) needs gamma < 1 (got gamma=%g): the %s never "
                        "terminates, so its undiscounted value is infinite\n", name, (long long)cfg->horizon,
                cfg->gamma, name);
        return 2;
    }
    const int32_t R = (int32_t)(cfg->runs * cfg->seeds);
    const int32_t S = qf_env_n_states(kind, &cfg->env_params), A = qf_env_n_actions(kind, &cfg->env_params);
    const int32_t s0 = qf_env_start_state(kind, &cfg->env_params);
    const size_t RS = (size_t)R * (size_t)S;
    /* a layered env (DeepSea, the bandit) in the infinite-horizon problem: one backward pass on the
     * host (qf_solve_layered), exact, instead of value iteration's sweeps on the backend */
    int32_t n_layers = 0, width = 0;
    const int layered = T == 0 && qf_env_layers(kind, &cfg->env_params, &n_layers, &width);
    /* q, v and the solver's scratch copy of v (finite horizon: V_t for every t; layered: v alone),
     * plus the small per-run arrays */
    const double need = (double)RS * 8.0 * (layered ? 1.0 : T > 0 ? (double)(T + 1) : (double)(A + 2)) +
                        (double)R * (sizeof(qf_env_params) + 64.0);
    if (need > (double)(b->mem_free / 10 * 9)) {
        fprintf(stderr, "qfleet: solve of %s with runs=%d needs %.2f GiB, but the %s backend has %.2f GiB "
                        "free (allowed: fewer runs or a smaller env.size)\n", name, R, need / (1 << 30),
                b->name, (double)b->mem_free / (1 << 30));
        return 2;
    }

    qf_env_params *params = (qf_env_params *)malloc(sizeof(qf_env_params) * (size_t)R);
    uint32_t *keys = (uint32_t *)malloc(sizeof(uint32_t) * 2 * (size_t)R);
    double *gamma = (double *)malloc(sizeof(double) * (size_t)R);
    double *alpha = (double *)malloc(sizeof(double) * (size_t)R);
    double *v_host = (double *)malloc(sizeof(double) * RS);
    double *q_host = cfg->policy ? (double *)malloc(sizeof(double) * (size_t)S * (size_t)A) : NULL;
    void *d_params = NULL, *d_keys = NULL, *d_gamma = NULL, *d_alpha = NULL, *d_q = NULL, *d_v = NULL;
    int rc = 1;
    if (!params || !keys || !gamma || !alpha || !v_host || (cfg->policy && !q_host)) {
        fprintf(stderr, "qfleet: out of host memory\n");
        goto done;
    }
    for (int32_t r = 0; r < R; r++) {
        params[r] = cfg->env_params;
        keys[2 * r] = (uint32_t)(cfg->seed + r % cfg->seeds); /* same run keys as train */
        keys[2 * r + 1] = (uint32_t)(r / cfg->seeds);
        gamma[r] = cfg->gamma;
        alpha[r] = cfg->alpha;
    }
    if (layered) {
        char env_desc[768], msg[512];
        describe_env(cfg, env_desc, sizeof env_desc);
        printf("qfleet solve: %s\n  %d run%s, %d state%s x %d actions, gamma=%g, alpha=%g%s\n"
               "  problem: infinite horizon, discounted by gamma (episodes end by termination, so with gamma=1 this "
               "is the episodic return)\n",
               env_desc, R, R == 1 ? "" : "s", S, S == 1 ? "" : "s", A, cfg->gamma, cfg->alpha,
               cfg->alpha > 0.0 ? " (soft max)" : " (hard max)");
        fflush(stdout);
        qf_solve_problem lp;
        memset(&lp, 0, sizeof lp);
        lp.kind = kind;
        lp.R = R;
        lp.params = params;
        lp.keys = keys;
        lp.gamma = gamma;
        lp.alpha = alpha;
        lp.n_states = S;
        lp.n_actions = A;
        lp.max_iters = 1;
        lp.tol = 0.0;
        if (qf_solve_layered(&lp, NULL, v_host, msg, sizeof msg)) {
            fprintf(stderr, "qfleet: %s\n", msg);
            goto done;
        }
        if (cfg->policy) /* Q of run 0 from its final values, with the same backup */
            for (int32_t s = 0; s < S; s++)
                qf_solve_state(kind, &params[0], keys[0], keys[1], gamma[0], alpha[0], s, A, v_host,
                               q_host + (size_t)s * A);
        printf("  layered: %d layer%s of %d state%s solved backward in one pass (each layer reaches only the next), "
               "exact; on the host\n", n_layers, n_layers == 1 ? "" : "s", width, width == 1 ? "" : "s");
        print_values_and_policy(cfg, v_host, q_host, R, S, A, s0);
        rc = 0;
        goto done;
    }
    if (!(d_params = b->alloc(b, sizeof(qf_env_params) * (size_t)R)) ||
        !(d_keys = b->alloc(b, sizeof(uint32_t) * 2 * (size_t)R)) ||
        !(d_gamma = b->alloc(b, sizeof(double) * (size_t)R)) ||
        !(d_alpha = b->alloc(b, sizeof(double) * (size_t)R)) ||
        !(d_q = b->alloc(b, sizeof(double) * (T > 0 ? 1 : RS * (size_t)A))) ||
        !(d_v = b->alloc(b, sizeof(double) * RS * (T > 0 ? (size_t)(T + 1) : 1))))
        goto fail;
    if (b->upload(b, d_params, params, sizeof(qf_env_params) * (size_t)R) ||
        b->upload(b, d_keys, keys, sizeof(uint32_t) * 2 * (size_t)R) ||
        b->upload(b, d_gamma, gamma, sizeof(double) * (size_t)R) ||
        b->upload(b, d_alpha, alpha, sizeof(double) * (size_t)R))
        goto fail;

    char env_desc[768];
    describe_env(cfg, env_desc, sizeof env_desc);
    if (T > 0)
        printf("qfleet solve: %s\n  %d run%s, %d state%s x %d actions, alpha=%g%s, backend %s\n"
               "  problem: finite horizon T=%d steps (%s), undiscounted (gamma is not used): backward induction\n",
               env_desc, R, R == 1 ? "" : "s", S, S == 1 ? "" : "s", A, cfg->alpha,
               cfg->alpha > 0.0 ? " (soft max)" : " (hard max)", b->name, T,
               cfg->horizon > 0 ? "horizon=" : "the env's time limit; horizon=-1: the infinite-horizon discounted MDP");
    else
        printf("qfleet solve: %s\n  %d run%s, %d state%s x %d actions, gamma=%g, alpha=%g%s, backend %s\n"
               "  problem: infinite horizon, discounted by gamma%s\n",
               env_desc, R, R == 1 ? "" : "s", S, S == 1 ? "" : "s", A, cfg->gamma, cfg->alpha,
               cfg->alpha > 0.0 ? " (soft value iteration)" : " (hard max)", b->name,
               limit == 0 ? " (episodes end by termination, so with gamma=1 this is the episodic return)"
                          : " (horizon=-1; the env truncates episodes after its time limit)");
    fflush(stdout);
    if (T > 0) {
        qf_infer_problem ip;
        memset(&ip, 0, sizeof ip);
        ip.kind = kind;
        ip.R = R;
        ip.params = (const qf_env_params *)d_params;
        ip.keys = (const uint32_t *)d_keys;
        ip.alpha = (const double *)d_alpha;
        ip.n_states = S;
        ip.n_actions = A;
        ip.T = T;
        ip.backup = QF_BACKUP_VARIATIONAL;
        double *v_all = (double *)malloc(sizeof(double) * RS * (size_t)(T + 1));
        if (!v_all) {
            fprintf(stderr, "qfleet: out of host memory\n");
            goto done;
        }
        if (b->infer_backward(b, &ip, (double *)d_v) ||
            b->download(b, v_all, d_v, sizeof(double) * RS * (size_t)(T + 1))) {
            free(v_all);
            goto fail;
        }
        for (int32_t r = 0; r < R; r++) memcpy(v_host + (size_t)r * S, v_all + (size_t)r * (T + 1) * S, sizeof(double) * S);
        if (cfg->policy) { /* Q_0 of run 0 from V_1, with the same functions */
            ip.params = params;
            ip.keys = keys;
            ip.alpha = alpha;
            for (int32_t s = 0; s < S; s++) qf_infer_state(&ip, 0, s, v_all + S, q_host + (size_t)s * A);
        }
        free(v_all);
        printf("  %d backward steps\n", T);
        print_values_and_policy(cfg, v_host, q_host, R, S, A, s0);
        rc = 0;
        goto done;
    }

    qf_solve_problem prob;
    memset(&prob, 0, sizeof prob);
    prob.kind = kind;
    prob.R = R;
    prob.params = (const qf_env_params *)d_params;
    prob.keys = (const uint32_t *)d_keys;
    prob.gamma = (const double *)d_gamma;
    prob.alpha = (const double *)d_alpha;
    prob.n_states = S;
    prob.n_actions = A;
    prob.max_iters = QF_SOLVE_MAX_ITERS;
    prob.tol = QF_SOLVE_TOL;
    int32_t iters = 0;
    if (b->solve(b, &prob, (double *)d_q, (double *)d_v, &iters) ||
        b->download(b, v_host, d_v, sizeof(double) * RS) ||
        (cfg->policy && b->download(b, q_host, d_q, sizeof(double) * (size_t)S * (size_t)A)))
        goto fail;

    printf("  %d sweeps", iters);
    if (iters >= QF_SOLVE_MAX_ITERS) {
        printf(" (the limit)\n");
        fprintf(stderr, "qfleet: warning: value iteration stopped after %d sweeps before every |dV| < %g; "
                        "the values below are not converged\n", iters, QF_SOLVE_TOL);
    } else {
        printf(" to max|dV| < %g\n", QF_SOLVE_TOL);
    }
    print_values_and_policy(cfg, v_host, q_host, R, S, A, s0);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "qfleet: %s\n", b->err);
    rc = 1;
done:
    if (d_params) b->release(b, d_params);
    if (d_keys) b->release(b, d_keys);
    if (d_gamma) b->release(b, d_gamma);
    if (d_alpha) b->release(b, d_alpha);
    if (d_q) b->release(b, d_q);
    if (d_v) b->release(b, d_v);
    free(params);
    free(keys);
    free(gamma);
    free(alpha);
    free(v_host);
    free(q_host);
    return rc;
}

/* V*(s0) per run (the first few and a summary when runs > 8), then run 0's policy on request. */
static void print_values_and_policy(const qf_config *cfg, const double *v_host, const double *q_host, int32_t R,
                                    int32_t S, int32_t A, int32_t s0) {
    const int32_t shown = R <= QF_SOLVE_RUNS_SHOWN ? R : 4;
    double lo = 0, hi = 0, sum = 0;
    int32_t r_lo = 0, r_hi = 0;
    for (int32_t r = 0; r < R; r++) {
        const double v0 = v_host[(size_t)r * S + (size_t)s0];
        if (r < shown) printf("run %d: V*(s0) = %.6f\n", r, v0);
        if (r == 0 || v0 < lo) {
            lo = v0;
            r_lo = r;
        }
        if (r == 0 || v0 > hi) {
            hi = v0;
            r_hi = r;
        }
        sum += v0;
    }
    if (shown < R)
        printf("runs 0..%d: V*(s0) mean %.6f, min %.6f (run %d), max %.6f (run %d)\n", R - 1, sum / R, lo,
               r_lo, hi, r_hi);
    if (cfg->policy) print_policy(cfg, q_host, S, A);
}
