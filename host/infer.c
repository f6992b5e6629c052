/* infer.c — `qfleet infer`: control as inference on a tabular environment (deep_sea, chain,
 * gridworld, bandit), batched over runs: one run per (temperature, env seed). For every run the
 * backend computes the backward messages under both backups (kernels/infer.h), the inference
 * backup's log-partition, and the forward pass of each; the command prints V(s0) under both and
 * the optimism gap, and writes a results folder:
 *   runs.csv        run, env, map_seed, alpha, horizon, v_inference, v_variational, optimism_gap,
 *                   log_partition
 *   marginals.csv   run, backup, t, state, action, probability  (p(s_t, a_t | O), > 1e-12 only)
 *   visitation.csv  run, backup, state, row, col, visits        (expected visits sum_t p(s_t))
 *   summary.md, config.txt; `python3 scripts/plot.py DIR` draws visitation.png (heat maps).
 * The problem is finite-horizon and undiscounted: T = horizon= or the env's episode length. */
#include "experiment.h"
#include "infer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/infer_ops.h"
#include "results.h"

#define QF_INFER_RUNS_SHOWN 8
#define QF_INFER_MAX_LIST 1024

int qf_parse_list(const char *key, const char *text, double lo, double hi, int integer, double *out,
                  int cap, char *msg, size_t len) {
    int n = 0;
    const char *p = text;
    if (!*p) {
        snprintf(msg, len, "%s is empty (allowed: a comma-separated list of numbers in [%g, %g])", key, lo, hi);
        return -1;
    }
    while (*p) {
        char *end;
        errno = 0;
        const double v = strtod(p, &end);
        if (end == p || (*end && *end != ',') || (integer && v != floor(v) && !errno)) {
            snprintf(msg, len, "%s=%s: '%.*s' is not %s (allowed: a comma-separated list of %s in [%g, %g])", key, text,
                     (int)strcspn(p, ","), p, integer ? "an integer" : "a number", integer ? "integers" : "numbers", lo,
                     hi);
            return -1;
        }
        if (errno || !(v >= lo && v <= hi)) { /* a number, but not one allowed here (ERANGE: 1e-400, 1e400) */
            snprintf(msg, len, "%s=%s: '%.*s' is %s (allowed: [%g, %g])", key, text, (int)strcspn(p, ","), p,
                     errno ? "out of the floating-point range" : "out of range", lo, hi);
            return -1;
        }
        if (n == cap) {
            snprintf(msg, len, "%s: at most %d values", key, cap);
            return -1;
        }
        for (int j = 0; j < n; j++)
            if (out[j] == v) { /* the same runs twice, under one name: refused, not trained twice */
                snprintf(msg, len, "%s=%s: the value %g is given twice (each value makes its own runs: give it once)",
                         key, text, v);
                return -1;
            }
        out[n++] = v;
        p = *end ? end + 1 : end;
        if (*end && !*p) {
            snprintf(msg, len, "%s=%s ends with a comma", key, text);
            return -1;
        }
    }
    return n;
}

int32_t qf_problem_horizon(int kind, const qf_env_params *p, int64_t horizon) {
    return horizon > 0 ? (int32_t)horizon : qf_env_episode_steps(kind, p);
}

/* Row and column of a state for the heat map (-1: not drawn, e.g. DeepSea's null state). */
static void cell_of(int kind, const qf_env_params *p, int32_t s, int *row, int *col) {
    *row = 0;
    *col = s;
    if (kind == QF_ENV_DEEP_SEA) {
        const int n = p->deep_sea.size;
        *row = s < n * n ? s / n : -1;
        *col = s < n * n ? s % n : -1;
    } else if (kind == QF_ENV_GRIDWORLD) {
        *row = s / p->gridworld.size;
        *col = s % p->gridworld.size;
    }
}

/* The env seed of run k's env (DeepSea and gridworld: map_seed + k). */
static void set_env_seed(int kind, qf_env_params *p, int64_t k) {
    if (kind == QF_ENV_GRIDWORLD) p->gridworld.map_seed = (int32_t)((p->gridworld.map_seed + k) % 2147483647);
    if (kind == QF_ENV_DEEP_SEA) p->deep_sea.map_seed = (int32_t)((p->deep_sea.map_seed + k) % 2147483647);
}

static int32_t env_seed_of(int kind, const qf_env_params *p) {
    return kind == QF_ENV_GRIDWORLD ? p->gridworld.map_seed : (kind == QF_ENV_DEEP_SEA ? p->deep_sea.map_seed : 0);
}

int qf_cmd_infer(const qf_config *cfg, const qf_words *ws, qf_backend *b) {
    const int kind = cfg->env;
    const char *name = qf_env_spec_of(kind)->name;
    char msg[512];
    if (!qf_env_tabular(kind)) {
        fprintf(stderr, "qfleet: infer needs a tabular environment (allowed: env=deep_sea, chain, gridworld, "
                        "bandit); env=%s has continuous states\n", name);
        return 2;
    }
    if (cfg->horizon < 0) {
        fprintf(stderr, "qfleet: infer solves finite-horizon problems: horizon=%lld (allowed: T >= 1, or 0 for the "
                        "env's episode length; -1, the infinite horizon, is for solve)\n", (long long)cfg->horizon);
        return 2;
    }
    double temps[QF_INFER_MAX_LIST];
    const int n_temp = qf_parse_list("temperatures", cfg->temperatures, 1e-6, 1e6, 0, temps, QF_INFER_MAX_LIST,
                                     msg, sizeof msg);
    if (n_temp < 0) {
        fprintf(stderr, "qfleet: %s\n", msg);
        return 2;
    }
    const int32_t T = qf_problem_horizon(kind, &cfg->env_params, cfg->horizon);
    const int64_t R64 = (int64_t)n_temp * cfg->env_seeds;
    const int32_t S = qf_env_n_states(kind, &cfg->env_params), A = qf_env_n_actions(kind, &cfg->env_params);
    const double need = (double)R64 * (3.0 * (T + 1) * S + (double)S * A) * 8.0;
    if (R64 > 1048576 || need > (double)(b->mem_free / 10 * 9)) {
        fprintf(stderr, "qfleet: infer with %lld runs, T=%d and %d states needs %.2f GiB, but the %s backend has "
                        "%.2f GiB free (allowed: fewer temperatures or env_seeds, a smaller horizon or env)\n",
                (long long)R64, T, S, need / (1 << 30), b->name, (double)b->mem_free / (1 << 30));
        return 2;
    }
    const int32_t R = (int32_t)R64;
    const size_t per_v = (size_t)(T + 1) * S, per_m = (size_t)T * S;
    /* the results folder (the runner's), before the work; --resume of a complete one runs nothing, of
     * an incomplete one computes it again (one exact computation: nothing to checkpoint) */
    char dir[QF_RESULTS_DIR_CAP], tmp[QF_RESULTS_PATH_CAP];
    int created = 0;
    const int lock_fd = qf_results_begin("infer", cfg->out, ws, dir, sizeof dir, &created);
    if (lock_fd < 0) return lock_fd == -2 ? 2 : 1;
    if (ws->resume[0] && qf_results_complete(dir)) {
        qf_results_release(lock_fd, dir, created, 0);
        return 0;
    }

    qf_env_params *params = (qf_env_params *)malloc(sizeof(qf_env_params) * (size_t)R);
    uint32_t *keys = (uint32_t *)malloc(sizeof(uint32_t) * 2 * (size_t)R);
    double *alpha = (double *)malloc(sizeof(double) * (size_t)R);
    double *v_host[2] = {(double *)malloc(sizeof(double) * R * per_v), (double *)malloc(sizeof(double) * R * per_v)};
    double *m_host[2] = {(double *)malloc(sizeof(double) * R * per_m), (double *)malloc(sizeof(double) * R * per_m)};
    void *d_params = NULL, *d_keys = NULL, *d_alpha = NULL, *d_v = NULL, *d_m = NULL;
    int rc = 1;
    if (!params || !keys || !alpha || !v_host[0] || !v_host[1] || !m_host[0] || !m_host[1]) {
        fprintf(stderr, "qfleet: out of host memory\n");
        goto done;
    }
    for (int32_t r = 0; r < R; r++) {
        params[r] = cfg->env_params;
        set_env_seed(kind, &params[r], r / n_temp);
        keys[2 * r] = (uint32_t)cfg->seed;
        keys[2 * r + 1] = (uint32_t)r;
        alpha[r] = temps[r % n_temp];
    }
    if (!(d_params = b->alloc(b, sizeof(qf_env_params) * (size_t)R)) ||
        !(d_keys = b->alloc(b, sizeof(uint32_t) * 2 * (size_t)R)) || !(d_alpha = b->alloc(b, sizeof(double) * (size_t)R)) ||
        !(d_v = b->alloc(b, sizeof(double) * R * per_v)) || !(d_m = b->alloc(b, sizeof(double) * R * per_m)) ||
        b->upload(b, d_params, params, sizeof(qf_env_params) * (size_t)R) ||
        b->upload(b, d_keys, keys, sizeof(uint32_t) * 2 * (size_t)R) ||
        b->upload(b, d_alpha, alpha, sizeof(double) * (size_t)R))
        goto fail;

    printf("qfleet infer: %s, %d run%s (%d temperature%s x %lld env seed%s), %d states x %d actions, backend %s\n",
           name, R, R == 1 ? "" : "s", n_temp, n_temp == 1 ? "" : "s", (long long)cfg->env_seeds,
           cfg->env_seeds == 1 ? "" : "s", S, A, b->name);
    printf("  problem: finite horizon T=%d steps%s from s0=%d, undiscounted; p(O_t=1|s,a) = exp(r(s,a)/alpha)\n", T,
           cfg->horizon > 0 ? " (horizon=)" : " (the env's episode length; horizon= changes it)",
           qf_env_start_state(kind, &cfg->env_params));
    fflush(stdout);

    qf_infer_problem prob;
    memset(&prob, 0, sizeof prob);
    prob.kind = kind;
    prob.R = R;
    prob.params = (const qf_env_params *)d_params;
    prob.keys = (const uint32_t *)d_keys;
    prob.alpha = (const double *)d_alpha;
    prob.n_states = S;
    prob.n_actions = A;
    prob.T = T;
    for (int backup = 0; backup < 2; backup++) {
        prob.backup = backup;
        if (b->infer_backward(b, &prob, (double *)d_v) || b->infer_forward(b, &prob, (double *)d_v, NULL, (double *)d_m, NULL) ||
            b->download(b, v_host[backup], d_v, sizeof(double) * R * per_v) ||
            b->download(b, m_host[backup], d_m, sizeof(double) * R * per_m))
            goto fail;
    }

    const int32_t s0 = qf_env_start_state(kind, &cfg->env_params);
    const int32_t shown = R <= QF_INFER_RUNS_SHOWN ? R : 4;
    printf("  %-5s %-10s %-9s %-14s %-14s %-12s %s\n", "run", "alpha", "env_seed", "V_inference(s0)",
           "V_variational", "optimism_gap", "log Z");
    double gap_lo = 0, gap_hi = 0;
    for (int32_t r = 0; r < R; r++) {
        const double vi = v_host[1][r * per_v + s0], vv = v_host[0][r * per_v + s0], gap = vi - vv;
        if (r < shown)
            printf("  %-5d %-10g %-9d %-15.6f %-14.6f %-12.6g %.6f\n", r, alpha[r], env_seed_of(kind, &params[r]), vi, vv,
                   gap, vi / alpha[r]);
        gap_lo = r == 0 || gap < gap_lo ? gap : gap_lo;
        gap_hi = r == 0 || gap > gap_hi ? gap : gap_hi;
    }
    if (shown < R) printf("  runs 0..%d: optimism gap from %.6g to %.6g\n", R - 1, gap_lo, gap_hi);

    /* ---- the results: runs.csv last (it marks the folder complete) ---- */
    FILE *f = qf_open_atomic(dir, "config.txt", tmp, sizeof tmp);
    if (!f) goto io_fail;
    qf_config_print_for(f, cfg, "infer");
    fprintf(f, "resolved_horizon=%d\n", T);
    if (qf_close_atomic(f, dir, "config.txt", tmp)) goto done;


    /* p(s_t, a_t | O) = p(s_t | O) pi_t(a | s), pi from V_{t+1} on the host (the same functions) */
    f = qf_open_atomic(dir, "marginals.csv", tmp, sizeof tmp);
    if (!f) goto io_fail;
    fprintf(f, "run,backup,t,state,action,probability\n");
    {
        qf_infer_problem hp = prob;
        hp.params = params;
        hp.keys = keys;
        hp.alpha = alpha;
        double q_row[QF_MAX_ARMS > QF_GRID_ACTIONS ? QF_MAX_ARMS : QF_GRID_ACTIONS];
        for (int32_t r = 0; r < R; r++)
            for (int backup = 0; backup < 2; backup++) {
                hp.backup = backup;
                for (int32_t t = 0; t < T; t++)
                    for (int32_t s = 0; s < S; s++) {
                        const double ps = m_host[backup][r * per_m + (size_t)t * S + s];
                        if (!(ps > 1e-12)) continue;
                        const double vs = qf_infer_state(&hp, r, s, v_host[backup] + r * per_v + (size_t)(t + 1) * S, q_row);
                        for (int32_t a = 0; a < A; a++) {
                            const double p = ps * exp((q_row[a] - vs) / alpha[r]);
                            if (p > 1e-12)
                                fprintf(f, "%d,%s,%d,%d,%d,%.9g\n", r, backup ? "inference" : "variational", t, s, a, p);
                        }
                    }
            }
    }
    if (qf_close_atomic(f, dir, "marginals.csv", tmp)) goto done;

    f = qf_open_atomic(dir, "visitation.csv", tmp, sizeof tmp);
    if (!f) goto io_fail;
    fprintf(f, "run,backup,state,row,col,visits\n");
    for (int32_t r = 0; r < R; r++)
        for (int backup = 0; backup < 2; backup++)
            for (int32_t s = 0; s < S; s++) {
                int row, col;
                cell_of(kind, &params[r], s, &row, &col);
                if (row < 0) continue;
                double visits = 0.0;
                for (int32_t t = 0; t < T; t++) visits += m_host[backup][r * per_m + (size_t)t * S + s];
                fprintf(f, "%d,%s,%d,%d,%d,%.9g\n", r, backup ? "inference" : "variational", s, row, col, visits);
            }
    if (qf_close_atomic(f, dir, "visitation.csv", tmp)) goto done;

    f = qf_open_atomic(dir, "summary.md", tmp, sizeof tmp);
    if (!f) goto io_fail;
    fprintf(f, "# qfleet infer: %s\n\nFinite horizon T=%d, undiscounted, from s0=%d; %d runs.\n\n", name, T, s0, R);
    fprintf(f, "| run | alpha | env seed | V inference (s0) | V variational (s0) | optimism gap | log Z |\n"
               "|---|---|---|---|---|---|---|\n");
    for (int32_t r = 0; r < R; r++) {
        const double vi = v_host[1][r * per_v + s0], vv = v_host[0][r * per_v + s0];
        fprintf(f, "| %d | %g | %d | %.6f | %.6f | %.6g | %.6f |\n", r, alpha[r], env_seed_of(kind, &params[r]), vi,
                vv, vi - vv, vi / alpha[r]);
    }
    if (qf_close_atomic(f, dir, "summary.md", tmp)) goto done;
    f = qf_open_atomic(dir, "runs.csv", tmp, sizeof tmp);
    if (!f) goto io_fail;
    fprintf(f, "run,name,fleet,point,env,explore,env.map_seed,alpha,seed,status,horizon,v_inference,v_variational,"
               "optimism_gap,log_partition\n");
    for (int32_t r = 0; r < R; r++) {
        const double vi = v_host[1][r * per_v + s0], vv = v_host[0][r * per_v + s0];
        char v[2][48];
        const char *ks[2] = {"env.map_seed", "alpha"}, *vs[2] = {v[0], v[1]};
        snprintf(v[0], sizeof v[0], "%d", env_seed_of(kind, &params[r]));
        snprintf(v[1], sizeof v[1], "%g", alpha[r]);
        fprintf(f, "%d,", r);
        qf_run_name_parts(f, name, "inference", 2, ks, vs, keys[2 * r]);
        /* the axis values quoted, as the runner's runs.csv writes its axes (docs/results-format.md) */
        fprintf(f, ",1,%d,%s,inference,\"%s\",\"%s\",%u,finished,%d", r, name, v[0], v[1], keys[2 * r], T);
        qf_csv_num(f, vi);
        qf_csv_num(f, vv);
        qf_csv_num(f, vi - vv);
        qf_csv_num(f, vi / alpha[r]);
        fprintf(f, "\n");
    }
    if (qf_close_atomic(f, dir, "runs.csv", tmp)) goto done;
    printf("results: %s (runs.csv, marginals.csv, visitation.csv, summary.md; heat maps: python3 scripts/plot.py %s)\n",
           dir, dir);
    rc = 0;
    goto done;
io_fail:
    fprintf(stderr, "qfleet: cannot write into %s: %s\n", dir, strerror(errno));
    rc = 1;
    goto done;
fail:
    fprintf(stderr, "qfleet: %s\n", b->err);
    rc = 1;
done:
    qf_results_release(lock_fd, dir, created, rc);
    if (d_params) b->release(b, d_params);
    if (d_keys) b->release(b, d_keys);
    if (d_alpha) b->release(b, d_alpha);
    if (d_v) b->release(b, d_v);
    if (d_m) b->release(b, d_m);
    free(params);
    free(keys);
    free(alpha);
    for (int i = 0; i < 2; i++) {
        free(v_host[i]);
        free(m_host[i]);
    }
    return rc;
}
