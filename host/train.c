/* train.c — `qfleet train`: trains one fleet, prints progress and a final table per run, writes
 * the resolved configuration, curves.csv (long format, conventional metric names) and runs.csv
 * into the results folder. Every file is written atomically (temporary file, then rename). */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fleet.h"
#include "results.h"

typedef struct train_ctx {
    qf_log_point *pts; /* [n_logs][R] */
    int64_t n_logs, cap;
    int32_t R;
    int64_t steps;
    int tty;
    uint32_t prev_updates;
    double prev_time;
} train_ctx;


static void on_log(void *vctx, const qf_fleet *f, const qf_log_point *p) {
    train_ctx *c = (train_ctx *)vctx;
    if (c->n_logs == c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 64;
        qf_log_point *np = (qf_log_point *)realloc(c->pts, sizeof(qf_log_point) * (size_t)(cap * c->R));
        if (!np) return; /* keep what we have; the final table still comes from the last point */
        c->pts = np;
        c->cap = cap;
    }
    memcpy(c->pts + c->n_logs * c->R, p, sizeof(qf_log_point) * (size_t)c->R);
    c->n_logs++;
    double ret = 0.0;
    int64_t eps = 0, div = 0;
    for (int32_t r = 0; r < c->R; r++) {
        if (p[r].new_episodes) ret += p[r].episodic_return * (double)p[r].new_episodes;
        eps += p[r].new_episodes;
        div += p[r].status != QF_RUN_OK;
    }
    const double now = qf_wall_s();
    const double ups = (double)(f->n_updates - c->prev_updates) * f->R / (now - c->prev_time + 1e-12);
    c->prev_updates = f->n_updates;
    c->prev_time = now;
    double ev = 0.0; /* mean greedy-evaluation return over the runs, at points that evaluated */
    for (int32_t r = 0; r < c->R; r++) ev += p[r].eval_return;
    char evs[48] = "";
    if (!isnan(p[0].eval_return)) snprintf(evs, sizeof evs, "  eval return %.4g", ev / c->R);
    fprintf(stderr, "%sstep %lld/%lld  %.3g env-steps/s  %.3g updates/s  %lld episodes  mean return %.4g%s%s%s",
            c->tty ? "\r" : "", (long long)p[0].step, (long long)c->steps, p[0].sps, ups,
            (long long)p[0].episodes, eps ? ret / (double)eps : NAN, evs, div ? "  DIVERGED runs: " : "",
            c->tty ? "   " : "\n");
    if (div) fprintf(stderr, "%lld%s", (long long)div, c->tty ? "" : "\n");
}






static int write_results(const char *dir, const qf_config *cfg, const qf_fleet *fl, const train_ctx *c) {
    char tmp[QF_RESULTS_PATH_CAP];
    FILE *f = qf_open_atomic(dir, "config.txt", tmp, sizeof tmp);
    if (!f) goto fail;
    qf_config_print(f, cfg);
    if (qf_close_atomic(f, dir, "config.txt", tmp)) return -1;

    f = qf_open_atomic(dir, "curves.csv", tmp, sizeof tmp);
    if (!f) goto fail;
    fprintf(f, "run,step,env_steps,episodes,episodic_return,episodic_length,SPS,td_loss,q_values,"
               "grad_norm,regret,intrinsic_reward,distinct_states,status,eval_return\n");
    for (int64_t i = 0; i < c->n_logs; i++)
        for (int32_t r = 0; r < c->R; r++) {
            const qf_log_point *p = &c->pts[i * c->R + r];
            fprintf(f, "%d,%lld,%lld,%lld", r, (long long)p->step, (long long)p->env_steps, (long long)p->episodes);
            qf_csv_num(f, p->episodic_return);
            qf_csv_num(f, p->episodic_length);
            qf_csv_num(f, p->sps);
            qf_csv_num(f, p->td_loss);
            qf_csv_num(f, p->q_values);
            qf_csv_num(f, p->grad_norm);
            qf_csv_num(f, p->regret);
            qf_csv_num(f, p->intrinsic);
            qf_csv_num(f, p->distinct >= 0 ? (double)p->distinct : NAN);
            fprintf(f, ",%s", p->status == QF_RUN_OK ? "ok" : "diverged");
            qf_csv_num(f, p->eval_return);
            fprintf(f, "\n");
        }
    if (qf_close_atomic(f, dir, "curves.csv", tmp)) return -1;

    f = qf_open_atomic(dir, "runs.csv", tmp, sizeof tmp);
    if (!f) goto fail;
    fprintf(f, "run,name,seed,status,diverged_at_update,episodes,return_last20,td_loss,q_values,regret,"
               "first_treasure,episodes_to_solve,episodes_to_converge,distinct_states,intrinsic_reward,eval_return\n");
    for (int32_t r = 0; r < c->R; r++) {
        const qf_log_point *p = c->n_logs ? &c->pts[(c->n_logs - 1) * c->R + r] : NULL;
        int64_t n;
        double rr = qf_recent_return(c->pts, c->n_logs, c->R, r, &n);
        fprintf(f, "%d,%s__%s__run%u__seed%u,%u,%s,%d,%lld", r, qf_env_spec_of(cfg->env)->name, qf_config_choice_name("explore", cfg->explore),
                fl->keys_host[2 * r + 1], fl->keys_host[2 * r], fl->keys_host[2 * r],
                fl->diverged_at[r] >= 0 ? "diverged" : "finished", fl->diverged_at[r],
                (long long)(p ? p->episodes : 0));
        qf_csv_num(f, rr);
        qf_csv_num(f, p ? p->td_loss : NAN);
        qf_csv_num(f, p ? p->q_values : NAN);
        qf_csv_num(f, p ? p->regret : NAN);
        qf_csv_num(f, p && p->first_treasure ? (double)p->first_treasure : NAN);
        qf_csv_num(f, p && p->solved_at ? (double)p->solved_at : NAN);
        qf_csv_num(f, p && p->converged_at ? (double)p->converged_at : NAN);
        qf_csv_num(f, p && p->distinct >= 0 ? (double)p->distinct : NAN);
        qf_csv_num(f, p ? p->intrinsic : NAN);
        double ev = NAN; /* the last evaluation's */
        for (int64_t i = c->n_logs - 1; i >= 0 && isnan(ev); i--) ev = c->pts[i * c->R + r].eval_return;
        qf_csv_num(f, ev);
        fprintf(f, "\n");
    }
    return qf_close_atomic(f, dir, "runs.csv", tmp);
fail:
    fprintf(stderr, "qfleet: cannot write into %s: %s\n", dir, strerror(errno));
    return -1;
}

int qf_cmd_train(const qf_config *cfg, qf_backend *b, const char *load) {
    char dir[QF_RESULTS_DIR_CAP];
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s__%s", qf_env_spec_of(cfg->env)->name, qf_config_choice_name("explore", cfg->explore));
    qf_results_dir(dir, sizeof dir, cfg->out, prefix);
    qf_fleet fl;
    char err[768];
    if (qf_fleet_create(&fl, b, cfg, NULL, NULL, err, sizeof err) != QF_OK) {
        fprintf(stderr, "qfleet: %s\n", err);
        return 2;
    }
    if (load && load[0] && qf_fleet_load_params(&fl, load, err, sizeof err) != 0) {
        fprintf(stderr, "qfleet: --load %s\n", err);
        qf_fleet_destroy(&fl);
        return 2;
    }
    if (cfg->steps == 0) { /* --load FILE steps=0: a greedy evaluation of the loaded networks only */
        double *ret = (double *)malloc(sizeof(double) * (size_t)fl.R);
        int erc = ret ? qf_fleet_evaluate(&fl, (int32_t)cfg->eval_episodes, ret, err, sizeof err) : QF_ERR;
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
    if (cfg->profile > 0) { /* warm-up (learning has started), then the captured iterations, nothing written */
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
    if (qf_mkdir_p(dir)) {
        fprintf(stderr, "qfleet: cannot create the results folder %s: %s\n", dir, strerror(errno));
        qf_fleet_destroy(&fl);
        return 1;
    }
    train_ctx c = {NULL, 0, 0, fl.R, cfg->steps, isatty(2), 0, qf_wall_s()};
    fprintf(stderr, "qfleet train: %d runs x %d envs of %s on %s; network %d", fl.R, fl.E,
            qf_env_spec_of(cfg->env)->name, b->name, fl.net.w[0]);
    for (int l = 1; l <= fl.net.L; l++) fprintf(stderr, "-%d", fl.net.w[l]);
    fprintf(stderr, "%s; V*(s0) %s%.4g; results in %s\n", fl.embed ? " (embedding input)" : "",
            isnan(fl.v_star) ? "unknown " : "", fl.v_star, dir);
    int rc = qf_fleet_train(&fl, cfg->steps, on_log, &c, err, sizeof err);
    if (c.tty) fprintf(stderr, "\n");
    if (rc != QF_OK) fprintf(stderr, "qfleet: training failed: %s (writing what was logged)\n", err);
    const qf_cpu_thread_stats ts = qf_cpu_thread_stats_get(); /* probes happen only in the CPU auto mode */
    if (ts.probes)
        fprintf(stderr, "qfleet: threads=auto: one thread was faster in %lld of %lld probes (other processes "
                        "competing for the cores); %d in use at the end\n",
                ts.picked_one, ts.probes, ts.current);

    printf("%-4s %-9s %-10s %9s %14s %12s %12s %12s\n", "run", "seed", "status", "episodes",
           "return(last20)", "td_loss", "q_values", "regret");
    for (int32_t r = 0; r < fl.R && c.n_logs; r++) {
        const qf_log_point *p = &c.pts[(c.n_logs - 1) * c.R + r];
        int64_t n;
        double rr = qf_recent_return(c.pts, c.n_logs, c.R, r, &n);
        char status[32];
        if (fl.diverged_at[r] >= 0)
            snprintf(status, sizeof status, "div@%d", fl.diverged_at[r]);
        else
            snprintf(status, sizeof status, "ok");
        printf("%-4d %-9u %-10s %9lld %14.4g %12.4g %12.4g %12.4g\n", r, fl.keys_host[2 * r], status,
               (long long)p->episodes, rr, p->td_loss, p->q_values, p->regret);
        if (r == 15 && fl.R > 20) {
            printf("... (%d more runs in runs.csv)\n", fl.R - 16);
            break;
        }
    }
    int wrc = write_results(dir, cfg, &fl, &c);
    if (!wrc && qf_fleet_export_params(&fl, dir, NULL, err, sizeof err) != 0) { /* params.npy, params.json */
        fprintf(stderr, "qfleet: %s\n", err);
        wrc = -1;
    }
    free(c.pts);
    qf_fleet_destroy(&fl);
    if (rc != QF_OK || wrc) return 1;
    return 0;
}
