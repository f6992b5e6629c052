/* train.c — `qfleet train`: one configuration x runs x seeds through the experiment runner
 * (experiment.h): progress, checkpoints, --resume, the results folder of docs/results-format.md.
 * What is train's own: `runs` copies of the point (keys (seed + s, copy)), the table per run, and
 * profile=N (warm-up, then N captured iterations, nothing written). */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment.h"
#include "fleet.h"
#include "results.h"

/* The table per run (md: summary.md's markdown, else stdout's). eval_return (the last greedy
 * evaluation's mean return) is a column when evaluations ran (eval_every > 0); a value that does not
 * apply (a regret without an exact solve) is "-" (qf_fmt_num). */
static void print_table(FILE *f, const qf_experiment *x, const qf_exp_run *rows, int md) {
    const int64_t n = x->n_points * x->seeds;
    const int ev = x->base->eval_every > 0;
    if (md)
        fprintf(f, "| run | name | status | episodes | return (last 20) |%s td_loss | q_values | regret |\n"
                   "|---:|---|---|---:|---:|%s---:|---:|---:|\n", ev ? " eval_return |" : "", ev ? "---:|" : "");
    else {
        printf("%-4s %-9s %-10s %9s %14s", "run", "seed", "status", "episodes", "return(last20)");
        if (ev) printf(" %12s", "eval_return");
        printf(" %12s %12s %12s\n", "td_loss", "q_values", "regret");
    }
    for (int64_t i = 0; i < n; i++) {
        const qf_exp_run *w = &rows[i];
        char status[32], c_ret[32], c_ev[32], c_td[32], c_q[32], c_reg[32];
        if (w->failed)
            snprintf(status, sizeof status, "failed");
        else if (w->diverged_at >= 0)
            snprintf(status, sizeof status, "div@%d", w->diverged_at);
        else
            snprintf(status, sizeof status, "finished"); /* runs.csv's word */
        qf_fmt_num(c_ret, sizeof c_ret, w->ret20);
        qf_fmt_num(c_ev, sizeof c_ev, w->last.eval_return);
        qf_fmt_num(c_td, sizeof c_td, w->last.td_loss);
        qf_fmt_num(c_q, sizeof c_q, w->last.q_values);
        qf_fmt_num(c_reg, sizeof c_reg, w->last.regret);
        if (md) {
            fprintf(f, "| %lld | ", (long long)i);
            qf_run_name(f, x, w->point, w->seed_index);
            fprintf(f, " | %s | %lld | %s |", status, (long long)w->last.episodes, c_ret);
            if (ev) fprintf(f, " %s |", c_ev);
            fprintf(f, " %s | %s | %s |\n", c_td, c_q, c_reg);
        } else {
            printf("%-4lld %-9llu %-10s %9lld %14s", (long long)i,
                   (unsigned long long)qf_run_seed(x, w->point, w->seed_index), status,
                   (long long)w->last.episodes, c_ret);
            if (ev) printf(" %12s", c_ev);
            printf(" %12s %12s %12s\n", c_td, c_q, c_reg);
            if (i == 15 && n > 20) {
                printf("... (%lld more runs in runs.csv)\n", (long long)(n - 16));
                break;
            }
        }
    }
}

static int report(void *ctx, const qf_experiment *x, const qf_exp_run *rows, FILE *summary, const char *dir) {
    (void)ctx;
    (void)dir;
    const qf_cpu_thread_stats ts = qf_cpu_thread_stats_get(); /* probes happen only in the CPU auto mode */
    if (ts.probes)
        fprintf(stderr, "qfleet: threads=auto: one thread was faster in %lld of %lld probes (other processes "
                        "competing for the cores); %d in use at the end\n",
                ts.picked_one, ts.probes, ts.current);
    print_table(stdout, x, rows, 0);
    fprintf(summary, "Environment %s, strategy %s, %lld env steps per env; return (last 20): mean return of each "
                     "run's last >= 20 episodes%s; -: does not apply (regret where no exact V*(s0) is known).\n\n",
            qf_env_spec_of(x->base->env)->name, qf_config_choice_name("explore", x->base->explore),
            (long long)x->base->steps,
            x->base->eval_every > 0 ? "; eval_return: mean return of the last greedy evaluation (eval_episodes "
                                      "episodes, no exploration)" : "");
    print_table(summary, x, rows, 1);
    return 0;
}

/* profile=N: warm-up (learning has started), then the captured iterations; nothing is written. */
static int profile(const qf_config *cfg, qf_backend *b) {
    qf_fleet fl;
    char err[768];
    if (qf_fleet_create(&fl, b, cfg, NULL, NULL, err, sizeof err) != QF_OK) {
        fprintf(stderr, "qfleet: %s\n", err);
        return 2;
    }
    const int64_t warm = cfg->learning_starts / cfg->envs + 10;
    fl.log_at_end = 0;
    int prc = qf_fleet_train(&fl, warm, NULL, NULL, err, sizeof err);
    if (prc == QF_OK && b->profile) prc = b->profile(b, 1);
    const double t0 = qf_wall_s();
    if (prc == QF_OK) prc = qf_fleet_train(&fl, cfg->profile, NULL, NULL, err, sizeof err);
    if (prc == QF_OK) prc = b->sync(b);
    const double el = qf_wall_s() - t0;
    if (prc == QF_OK && b->profile) prc = b->profile(b, 0);
    if (prc != QF_OK) fprintf(stderr, "qfleet: profile: %s\n", err[0] ? err : b->err);
    else
        printf("qfleet: profiled %lld iterations after %lld warm-up steps (%.3g ms per iteration)%s\n",
               (long long)cfg->profile, (long long)warm, 1e3 * el / (double)cfg->profile,
               b->profile ? "" : "; this backend has no profiler capture (the NVTX ranges still mark the phases)");
    qf_fleet_destroy(&fl);
    return prc == QF_OK ? 0 : 1;
}

/* --load FILE steps=0: a greedy evaluation of the loaded networks only (qf_fleet_evaluate), a row
 * per run; nothing written. */
static int evaluate_only(const qf_config *cfg, const char *load, qf_backend *b) {
    qf_fleet fl;
    char err[1024];
    if (qf_fleet_create(&fl, b, cfg, NULL, NULL, err, sizeof err) != QF_OK) {
        fprintf(stderr, "qfleet: %s\n", err);
        return 2;
    }
    if (qf_fleet_load_params(&fl, load, err, sizeof err) != 0) {
        fprintf(stderr, "qfleet: --load %s\n", err);
        qf_fleet_destroy(&fl);
        return 2;
    }
    double *ret = (double *)malloc(sizeof(double) * (size_t)fl.R);
    const int erc = ret ? qf_fleet_evaluate(&fl, (int32_t)cfg->eval_episodes, ret, err, sizeof err) : QF_ERR;
    if (erc == QF_OK) {
        printf("%-4s %-9s %14s\n", "run", "seed", "eval_return");
        for (int32_t r = 0; r < fl.R; r++) printf("%-4d %-9u %14.6g\n", r, fl.keys_host[2 * r], ret[r]);
    } else {
        fprintf(stderr, "qfleet: %s\n", ret ? err : "out of host memory");
    }
    free(ret);
    qf_fleet_destroy(&fl);
    return erc == QF_OK ? 0 : 1;
}

int qf_cmd_train(const qf_config *cfg, const qf_words *ws, qf_backend *b) {
    if (cfg->profile > 0) return profile(cfg, b);
    if (cfg->steps == 0) {
        if (cfg->out[0]) { /* evaluate-only prints its table and writes no folder: say so, not ignore out= */
            fprintf(stderr, "qfleet: steps=0 evaluates the loaded parameters and writes no results folder: remove "
                            "out=, or train (steps > 0) to write one\n");
            return 2;
        }
        return evaluate_only(cfg, ws->load, b);
    }
    if (!qf_config_given(cfg, "learning_starts") && cfg->learning_starts >= cfg->steps * cfg->envs)
        fprintf(stderr, "qfleet: warning: learning_starts=%lld (the default) is at least the steps*envs = %lld "
                        "transitions a run collects, so no run will learn: give learning_starts=, or more steps or "
                        "envs\n", (long long)cfg->learning_starts, (long long)(cfg->steps * cfg->envs));
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s__%s", qf_env_spec_of(cfg->env)->name,
             qf_config_choice_name("explore", cfg->explore));
    qf_config point = *cfg;
    point.runs = 1;
    const uint32_t key1 = 0;
    qf_experiment x;
    qf_experiment_init(&x, "train", prefix, ws, cfg); /* --load: fleets start from those networks (not on a resume) */
    x.n_points = 1;
    x.copies = cfg->runs; /* copy c of the configuration: keys (seed + s, c), as qf_fleet_create's */
    x.seeds = cfg->runs * cfg->seeds;
    x.points = &point;
    x.key1 = &key1;
    x.report = report;
    const qf_dist alone = {0, 1, 0, 0};
    return qf_experiment_run(&x, b, &alone);
}
