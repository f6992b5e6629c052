/* bandits.c — `qfleet bandits`: epsilon-greedy, UCB1, Thompson sampling and Boltzmann exploration
 * over E bandit instances each, all in one fleet (one bandit_step per step for every strategy).
 * Pseudo-regret is reduced per strategy on the host at log points only (one download of the pull
 * counts). Prints a table (mean regret +- standard error across instances at T/100, T/10, T, and
 * UCB1's bound when the means are given) and writes config.txt and curves.csv (long format:
 * strategy, step, mean_regret, stderr_regret) into the results folder, atomically. */
#define _POSIX_C_SOURCE 200809L
#include "bandits.h"
#include "checkpoint.h"
#include "experiment.h"
#include "results.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const strategy_names[QF_BANDIT_N_STRATEGIES] = {QF_BANDIT_NAMES};

const char *qf_bandit_strategy_name(int32_t strategy) {
    return strategy >= 0 && strategy < QF_BANDIT_N_STRATEGIES ? strategy_names[strategy] : "?";
}

int qf_bandits_check(const qf_config *cfg, char *msg, size_t n) {
    if (cfg->env != QF_ENV_BANDIT) {
        snprintf(msg, n, "env=%s: qfleet bandits runs env=bandit only (its arms: env.probs=[...] or env.arms=K)",
                 qf_env_spec_of(cfg->env)->name);
        return -1;
    }
    const int S = cfg->n_strategies; /* parsed by the key table: known, distinct, at least one */
    if (cfg->runs != 1) {
        snprintf(msg, n, "runs=%lld: qfleet bandits makes one run per strategy and seed; use strategies=, "
                         "seeds= and envs= (instances per run)", (long long)cfg->runs);
        return -1;
    }
    if (cfg->steps > 2147483647LL) {
        snprintf(msg, n, "steps=%lld: qfleet bandits takes at most 2^31-1 steps", (long long)cfg->steps);
        return -1;
    }
    const int64_t N = (int64_t)S * cfg->seeds * cfg->envs;
    if (N > 2147483647LL) {
        snprintf(msg, n, "strategies (%d) x seeds=%lld x envs=%lld is %lld instances; at most 2^31-1 fit one "
                         "fleet", S, (long long)cfg->seeds, (long long)cfg->envs, (long long)N);
        return -1;
    }
    return 0;
}

double qf_ucb1_bound(const double *mu, int32_t K, int64_t T) {
    double best = mu[0];
    for (int32_t a = 1; a < K; a++) best = mu[a] > best ? mu[a] : best;
    double sum_log = 0.0, sum_gap = 0.0;
    for (int32_t a = 0; a < K; a++) {
        const double gap = best - mu[a];
        if (gap > 0.0) sum_log += log((double)T) / gap;
        sum_gap += gap;
    }
    return 8.0 * sum_log + (1.0 + 3.14159265358979323846 * 3.14159265358979323846 / 3.0) * sum_gap;
}

void qf_bandits_destroy(qf_bandits *bf) {
    if (bf->b) {
        bf->b->release(bf->b, (void *)bf->f.keys);
        bf->b->release(bf->b, (void *)bf->f.hp);
        bf->b->release(bf->b, bf->f.pulls);
        bf->b->release(bf->b, bf->f.wins);
    }
    free(bf->keys_host);
    free(bf->mu);
    free(bf->pulls_host);
    memset(bf, 0, sizeof *bf);
}

int qf_bandits_create(qf_bandits *bf, qf_backend *b, const qf_config *cfg, int *bad_input, char *err,
                      size_t err_len) {
    memset(bf, 0, sizeof *bf);
    *bad_input = 1;
    if (qf_bandits_check(cfg, err, err_len)) return QF_ERR;
    bf->S = cfg->n_strategies;
    memcpy(bf->strategy, cfg->strategies, sizeof(int32_t) * (size_t)bf->S);
    bf->seeds = (int32_t)cfg->seeds;
    bf->R = bf->S * bf->seeds;
    bf->E = (int32_t)cfg->envs;
    bf->K = cfg->env_params.bandit.arms;
    const int64_t N = (int64_t)bf->R * bf->E;
    const double bytes = 2.0 * 4.0 * (double)bf->K * (double)N + 32.0 * bf->R;
    if (b->mem_free && bytes > 0.9 * (double)b->mem_free) {
        snprintf(err, err_len, "envs=%lld: %d runs x %lld instances x %d arms need %.3g GB; the %s backend has "
                               "%.3g GB free", (long long)cfg->envs, bf->R, (long long)cfg->envs, bf->K,
                 bytes / 1e9, b->name, (double)b->mem_free / 1e9);
        return QF_ERR;
    }
    *bad_input = 0;
    bf->b = b;
    qf_bandit_hp *hp = (qf_bandit_hp *)calloc((size_t)bf->R, sizeof *hp);
    bf->keys_host = (uint32_t *)calloc((size_t)bf->R * 2, sizeof(uint32_t));
    bf->mu = (double *)calloc((size_t)bf->R * bf->K, sizeof(double));
    bf->pulls_host = (int32_t *)calloc((size_t)(N * bf->K), sizeof(int32_t));
    if (!hp || !bf->keys_host || !bf->mu || !bf->pulls_host) {
        free(hp);
        snprintf(err, err_len, "out of host memory for %lld instances", (long long)N);
        qf_bandits_destroy(bf);
        return QF_ERR;
    }
    bf->f.R = bf->R;
    bf->f.E = bf->E;
    bf->f.K = bf->K;
    bf->f.env = cfg->env_params.bandit;
    for (int32_t i = 0; i < bf->S; i++)
        for (int32_t s = 0; s < bf->seeds; s++) {
            const int32_t r = i * bf->seeds + s;
            hp[r].strategy = bf->strategy[i];
            hp[r].eps = (float)cfg->bandit_eps;
            hp[r].temp = (float)cfg->bandit_temp;
            bf->keys_host[2 * r] = (uint32_t)(cfg->seed + s);
            bf->keys_host[2 * r + 1] = 0;
            for (int32_t a = 0; a < bf->K; a++)
                bf->mu[(int64_t)r * bf->K + a] = qf_bandit_mean(&bf->f.env, bf->keys_host[2 * r], 0, a);
        }
    uint32_t *keys = (uint32_t *)b->alloc(b, sizeof(uint32_t) * 2 * (size_t)bf->R);
    bf->f.keys = keys;
    qf_bandit_hp *hp_dev = (qf_bandit_hp *)b->alloc(b, sizeof(qf_bandit_hp) * (size_t)bf->R);
    bf->f.hp = hp_dev;
    bf->f.pulls = (int32_t *)b->alloc(b, sizeof(int32_t) * (size_t)(N * bf->K));
    bf->f.wins = (int32_t *)b->alloc(b, sizeof(int32_t) * (size_t)(N * bf->K));
    int ok = keys && hp_dev && bf->f.pulls && bf->f.wins;
    ok = ok && b->upload(b, keys, bf->keys_host, sizeof(uint32_t) * 2 * (size_t)bf->R) == QF_OK;
    ok = ok && b->upload(b, hp_dev, hp, sizeof(qf_bandit_hp) * (size_t)bf->R) == QF_OK;
    free(hp);
    if (!ok) {
        snprintf(err, err_len, "%s", b->err);
        qf_bandits_destroy(bf);
        return QF_ERR;
    }
    return QF_OK;
}

int qf_bandits_run(qf_bandits *bf, int64_t until, char *err, size_t err_len) {
    for (; bf->t < until && !(bf->stop && *bf->stop); bf->t++)
        if (bf->b->bandit_step(bf->b, &bf->f, (uint32_t)bf->t) != QF_OK) {
            snprintf(err, err_len, "%s", bf->b->err);
            return QF_ERR;
        }
    return QF_OK;
}

int qf_bandits_regret(qf_bandits *bf, double *regret, int32_t *pulls, char *err, size_t err_len) {
    const int64_t N = (int64_t)bf->R * bf->E;
    int32_t *h = pulls ? pulls : bf->pulls_host;
    if (bf->b->download(bf->b, h, bf->f.pulls, sizeof(int32_t) * (size_t)(N * bf->K)) != QF_OK) {
        snprintf(err, err_len, "%s", bf->b->err);
        return QF_ERR;
    }
    for (int32_t r = 0; r < bf->R; r++) {
        const double *mu = bf->mu + (int64_t)r * bf->K;
        double best = mu[0];
        for (int32_t a = 1; a < bf->K; a++) best = mu[a] > best ? mu[a] : best;
        for (int64_t idx = (int64_t)r * bf->E; idx < (int64_t)(r + 1) * bf->E; idx++) {
            double sum = 0.0;
            for (int32_t a = 0; a < bf->K; a++) sum += (double)h[a * N + idx] * (best - mu[a]);
            regret[idx] = sum;
        }
    }
    return QF_OK;
}

/* ------------------------------------------------------------------------------------------------
 * The command. */





static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct bandit_point {
    double mean, se;
} bandit_point;

/* Mean and standard error across the seeds x E instances of each strategy. */
static void reduce(const qf_bandits *bf, const double *regret, bandit_point *out) {
    const int64_t per = (int64_t)bf->seeds * bf->E;
    for (int32_t i = 0; i < bf->S; i++) {
        const double *x = regret + (int64_t)i * per; /* runs i*seeds .. : contiguous */
        double sum = 0.0;
        for (int64_t j = 0; j < per; j++) sum += x[j];
        const double mean = sum / (double)per;
        double ss = 0.0;
        for (int64_t j = 0; j < per; j++) ss += (x[j] - mean) * (x[j] - mean);
        out[i].mean = mean;
        out[i].se = per > 1 ? sqrt(ss / (double)(per - 1) / (double)per) : NAN;
    }
}

/* A run's name: bandit__STRATEGY__seedSEED (the runner's rule; strategies are the runs' explore). */
static void bandit_run_name(char *out, size_t n, const qf_bandits *bf, int32_t r) {
    snprintf(out, n, "bandit__%s__seed%u", qf_bandit_strategy_name(bf->strategy[r / bf->seeds]), bf->keys_host[2 * r]);
}

/* The log point's curve rows: every run's mean pseudo-regret over its E instances (metric regret). */
static void curve_rows(FILE *f, const qf_bandits *bf, int64_t step, const double *regret) {
    char name[96];
    for (int32_t r = 0; r < bf->R; r++) {
        double m = 0.0;
        for (int32_t e = 0; e < bf->E; e++) m += regret[(int64_t)r * bf->E + e];
        bandit_run_name(name, sizeof name, bf, r);
        qf_curve_row(f, r, name, step, step * bf->E, "regret", m / bf->E);
    }
}

/* The end (docs/results-format.md): curves.csv from the part, config.txt, summary.md (the table),
 * then runs.csv: the runner's leading columns, then instances, steps, the run's mean pseudo-regret
 * over its instances at the last log point and its standard error. */
static int write_results(const char *dir, const qf_config *cfg, const qf_bandits *bf, const double *regret,
                         int64_t last_step, const char *table, double bound) {
    char tmp[QF_RESULTS_PATH_CAP], name[96];
    if (qf_curves_merge(dir, 1)) return -1;
    FILE *f = qf_open_atomic(dir, "config.txt", tmp, sizeof tmp);
    if (!f) goto fail;
    qf_config_print_for(f, cfg, "bandits");
    if (qf_close_atomic(f, dir, "config.txt", tmp)) return -1;
    if (!(f = qf_open_atomic(dir, "summary.md", tmp, sizeof tmp))) goto fail;
    fprintf(f, "# qfleet bandits\n\n%d strateg%s x %d seed%s = %d run%s, %d instance%s each of a %d-armed bandit, "
               "T=%lld.\n\n```\n%s```\n", bf->S, bf->S == 1 ? "y" : "ies", bf->seeds, bf->seeds == 1 ? "" : "s",
            bf->R, bf->R == 1 ? "" : "s", bf->E, bf->E == 1 ? "" : "s", bf->K, (long long)cfg->steps, table);
    if (qf_close_atomic(f, dir, "summary.md", tmp)) return -1;
    if (!(f = qf_open_atomic(dir, "runs.csv", tmp, sizeof tmp))) goto fail;
    fprintf(f, "run,name,fleet,point,env,explore,seed,status,instances,arms,steps,regret,regret_stderr,ucb1_bound\n");
    for (int32_t r = 0; r < bf->R; r++) {
        const double *x = regret + (int64_t)r * bf->E;
        double m = 0.0, ss = 0.0;
        for (int32_t e = 0; e < bf->E; e++) m += x[e] / bf->E;
        for (int32_t e = 0; e < bf->E; e++) ss += (x[e] - m) * (x[e] - m);
        bandit_run_name(name, sizeof name, bf, r);
        fprintf(f, "%d,%s,1,%d,bandit,%s,%u,finished,%d,%d,%lld", r, name, r / bf->seeds,
                qf_bandit_strategy_name(bf->strategy[r / bf->seeds]), bf->keys_host[2 * r], bf->E, bf->K,
                (long long)last_step);
        qf_csv_num(f, m);
        qf_csv_num(f, bf->E > 1 ? sqrt(ss / (bf->E - 1) / bf->E) : NAN);
        qf_csv_num(f, bound);
        fprintf(f, "\n");
    }
    return qf_close_atomic(f, dir, "runs.csv", tmp);
fail:
    fprintf(stderr, "qfleet: cannot write into %s: %s\n", dir, strerror(errno));
    return -1;
}

/* bandits.ckpt: pulls [K][N], wins [K][N], the reached log points [done][S]; meta: t, done, K*N,
 * the curve part's bytes. */
static int write_ckpt(qf_bandits *bf, const char *dir, uint64_t hash, int64_t done, const bandit_point *pts,
                      FILE *curves) {
    const int64_t curve_bytes = qf_curve_part_sync(curves, dir);
    if (curve_bytes < 0) return -1;
    const size_t nk = (size_t)bf->R * (size_t)bf->E * (size_t)bf->K;
    int32_t *wins = (int32_t *)malloc(sizeof(int32_t) * nk);
    int rc = -1;
    if (wins && bf->b->download(bf->b, bf->pulls_host, bf->f.pulls, sizeof(int32_t) * nk) == QF_OK &&
        bf->b->download(bf->b, wins, bf->f.wins, sizeof(int32_t) * nk) == QF_OK) {
        qf_file_header h;
        memset(&h, 0, sizeof h);
        h.kind = QF_FILE_CKPT;
        h.hash = hash;
        h.meta[0] = (uint64_t)bf->t;
        h.meta[1] = (uint64_t)done;
        h.meta[2] = (uint64_t)nk;
        h.meta[3] = (uint64_t)curve_bytes;
        const void *ptr[3] = {bf->pulls_host, wins, pts};
        const size_t bytes[3] = {sizeof(int32_t) * nk, sizeof(int32_t) * nk, sizeof(bandit_point) * (size_t)(done * bf->S)};
        rc = qf_file_write(dir, "bandits.ckpt", &h, 3, ptr, bytes);
    } else {
        fprintf(stderr, "qfleet: checkpoint: %s\n", wins ? bf->b->err : "out of host memory");
    }
    free(wins);
    return rc;
}

int qf_cmd_bandits(const qf_config *cfg, const qf_words *ws, qf_backend *b) {
    char err[768];
    qf_bandits bf;
    int bad_input = 0;
    if (qf_bandits_create(&bf, b, cfg, &bad_input, err, sizeof err) != QF_OK) {
        fprintf(stderr, "qfleet: %s\n", err);
        return bad_input ? 2 : 1;
    }
    const int64_t T = cfg->steps, N = (int64_t)bf.R * bf.E;
    /* log points: every log_every steps, the checkpoints T/100, T/10 and T */
    const int64_t n_every = T / cfg->log_every;
    int64_t *steps = (int64_t *)malloc(sizeof(int64_t) * (size_t)(n_every + 4));
    double *regret = (double *)malloc(sizeof(double) * (size_t)N);
    const int64_t checks[3] = {T / 100, T / 10, T};
    int64_t n_points = 0;
    bandit_point *pts = NULL;
    if (steps && regret) {
        for (int64_t k = 1; k <= n_every; k++) steps[n_points++] = k * cfg->log_every;
        for (int c = 0; c < 3; c++)
            if (checks[c] >= 1) steps[n_points++] = checks[c];
        qsort(steps, (size_t)n_points, sizeof *steps, cmp_i64);
        int64_t u = 0;
        for (int64_t p = 0; p < n_points; p++)
            if (u == 0 || steps[p] != steps[u - 1]) steps[u++] = steps[p];
        n_points = u;
        pts = (bandit_point *)calloc((size_t)(n_points * bf.S), sizeof *pts);
    }
    if (!pts) {
        fprintf(stderr, "qfleet: out of host memory for the regret log\n");
        free(steps);
        free(regret);
        qf_bandits_destroy(&bf);
        return 1;
    }

    char dir[QF_RESULTS_DIR_CAP], msg[1024];
    const uint64_t hash = qf_experiment_hash("bandits", ws);
    const int64_t NK = N * bf.K;
    int lock_fd = -1, created = 0, rc = QF_OK, exit_rc = 0;
    int64_t done = 0, curve_bytes = -1;
    FILE *curves = NULL;
    lock_fd = qf_results_begin("bandits", cfg->out, ws, dir, sizeof dir, &created);
    if (lock_fd < 0) {
        exit_rc = lock_fd == -2 ? 2 : 1;
    } else if (ws->resume[0] && qf_results_complete(dir)) {
        exit_rc = -1;
    } else if (ws->resume[0]) {
        /* the checkpoint: every count checked before use (pulls add up to t per instance) */
        char path[QF_RESULTS_PATH_CAP];
        snprintf(path, sizeof path, "%s/fleet_1.curves", dir);
        struct stat st;
        const int64_t part_len = stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
        qf_file_header h;
        char *p = NULL;
        size_t pn = 0;
        const int rr = qf_file_read(dir, "bandits.ckpt", QF_FILE_CKPT, hash, 0, &h, &p, &pn, msg, sizeof msg);
        if (rr == 1) {
            fprintf(stderr, "qfleet: %s has no bandits.ckpt (it stopped before its first checkpoint): it starts again "
                            "from step 0\n", dir);
        } else if (rr < 0) {
            fprintf(stderr, "qfleet: %s\n", msg);
            exit_rc = 1;
        } else {
            const int64_t t = (int64_t)h.meta[0], dn = (int64_t)h.meta[1];
            int ok = h.n_parts == 3 && h.meta[2] == (uint64_t)NK && t >= 0 && t <= T && dn >= 0 && dn <= n_points &&
                     (dn == 0 || steps[dn - 1] <= t) && (dn == n_points || steps[dn] >= t) &&
                     h.part[0] == sizeof(int32_t) * (uint64_t)NK && h.part[1] == sizeof(int32_t) * (uint64_t)NK &&
                     h.part[2] == sizeof(bandit_point) * (uint64_t)(dn * bf.S);
            const int32_t *pulls = (const int32_t *)p, *wins = ok ? (const int32_t *)(p + h.part[0]) : NULL;
            for (int64_t idx = 0; ok && idx < N; idx++) {
                int64_t sum = 0;
                for (int32_t a = 0; a < bf.K && ok; a++) {
                    const int32_t n = pulls[a * N + idx], w = wins[a * N + idx];
                    ok = n >= 0 && w >= 0 && w <= n;
                    sum += n;
                }
                ok = ok && sum == t;
            }
            if (!ok) {
                fprintf(stderr, "qfleet: %s/bandits.ckpt does not match this run (sizes, step or pull counts out of "
                                "range: forged or damaged)\n", dir);
                exit_rc = 1;
            } else if (part_len < 0 || h.meta[3] > (uint64_t)part_len) {
                fprintf(stderr, "qfleet: %s is missing or shorter than its checkpoint says; remove %s/bandits.ckpt to "
                                "start again\n", path, dir);
                exit_rc = 1;
            } else if (b->upload(b, bf.f.pulls, pulls, (size_t)h.part[0]) != QF_OK ||
                       b->upload(b, bf.f.wins, wins, (size_t)h.part[1]) != QF_OK) {
                fprintf(stderr, "qfleet: restoring %s/bandits.ckpt: %s\n", dir, b->err);
                exit_rc = 1;
            } else {
                bf.t = t;
                done = dn;
                curve_bytes = (int64_t)h.meta[3];
                memcpy(pts, p + h.part[0] + h.part[1], (size_t)h.part[2]);
                fprintf(stderr, "qfleet: bandits resume at step %lld of %lld\n", (long long)t, (long long)T);
            }
        }
        free(p);
    }
    if (!exit_rc && !(curves = qf_curve_part_open(dir, 1, curve_bytes))) exit_rc = 1;
    if (exit_rc) {
        if (lock_fd >= 0) qf_results_release(lock_fd, dir, created, exit_rc < 0 ? 0 : exit_rc);
        free(steps);
        free(regret);
        free(pts);
        qf_bandits_destroy(&bf);
        return exit_rc < 0 ? 0 : exit_rc;
    }

    const qf_bandit_params *bp = &cfg->env_params.bandit;
    fprintf(stderr, "qfleet bandits: %d strateg%s x %d seed%s x %d instance%s of a %d-armed bandit (%s) on %s, "
                    "T=%lld; results in %s\n", bf.S, bf.S == 1 ? "y" : "ies", bf.seeds, bf.seeds == 1 ? "" : "s", bf.E,
            bf.E == 1 ? "" : "s", bf.K,
            bp->n_probs ? "means from env.probs" : "means drawn per seed", b->name, (long long)T, dir);
    const int tty = isatty(2);
    const double t0 = qf_wall_s();
    double t_prev = t0, last_ckpt = t0;
    int64_t s_prev = bf.t;
    const int64_t t_start = bf.t; /* steps done before this process (a resume): not in its rate */
    qf_stop_signals_on();
    bf.stop = &qf_stop_flag;
    int64_t last_step = -1; /* the last log point whose regret is in `regret` */
    for (int64_t p = done; p < n_points; p++) {
        rc = qf_bandits_run(&bf, steps[p], err, sizeof err);
        if (rc == QF_OK && bf.t < steps[p]) break; /* stopped by a signal */
        if (rc == QF_OK) rc = qf_bandits_regret(&bf, regret, NULL, err, sizeof err);
        if (rc != QF_OK) {
            fprintf(stderr, "%sqfleet: bandits failed at step %lld: %s (the log points reached are kept in fleet_1.curves)\n",
                    tty ? "\n" : "", (long long)bf.t, err);
            break;
        }
        reduce(&bf, regret, pts + p * bf.S);
        curve_rows(curves, &bf, steps[p], regret);
        if (qf_curve_part_sync(curves, dir) < 0) {
            rc = QF_ERR;
            break;
        }
        last_step = steps[p];
        done = p + 1;
        const double now = qf_wall_s();
        /* the progress line: a terminal at most 10 times a second, a log file every 10 s and at the end */
        if (steps[p] == T || now - t_prev >= (tty ? 0.1 : 10.0)) {
            fprintf(stderr, "%sstep %lld/%lld  %.3g pulls/s%s", tty ? "\r" : "", (long long)steps[p], (long long)T,
                    (double)(steps[p] - s_prev) * (double)N / (now - t_prev + 1e-12), tty ? "   " : "\n");
            t_prev = now;
            s_prev = steps[p];
        }
        if (cfg->checkpoint_seconds > 0 && now - last_ckpt >= cfg->checkpoint_seconds && done < n_points) {
            if (write_ckpt(&bf, dir, hash, done, pts, curves)) break;
            last_ckpt = qf_wall_s();
        }
        if (qf_stop_flag) break;
    }
    qf_stop_signals_off();
    bf.stop = NULL;
    if (rc == QF_OK && done < n_points) { /* stopped: a checkpoint, the logged points kept in it */
        if (tty) fprintf(stderr, "\n");
        const int cw = write_ckpt(&bf, dir, hash, done, pts, curves);
        fprintf(stderr, "qfleet: interrupted at step %lld of %lld; %s\nqfleet: resume with: qfleet bandits --resume %s\n",
                (long long)bf.t, (long long)T, cw ? "the checkpoint could not be written" : "checkpoint written", dir);
        fclose(curves);
        qf_results_release(lock_fd, dir, created, 130);
        free(steps);
        free(regret);
        free(pts);
        qf_bandits_destroy(&bf);
        return 130;
    }
    if (tty) fprintf(stderr, "\n");
    const double elapsed = qf_wall_s() - t0;

    /* the table: mean pseudo-regret +- standard error at the checkpoints that were reached */
    int64_t cols[3];
    int n_cols = 0;
    for (int c = 0; c < 3; c++)
        if (checks[c] >= 1 && (n_cols == 0 || cols[n_cols - 1] != checks[c])) cols[n_cols++] = checks[c];
    char *table = NULL;
    size_t table_len = 0;
    FILE *tf = open_memstream(&table, &table_len);
    if (!tf) {
        fprintf(stderr, "qfleet: out of host memory\n");
        rc = QF_ERR;
        tf = stdout;
    }
    fprintf(tf, "pseudo-regret sum_t (mu* - mu_a_t): mean +- standard error over %lld instances per strategy\n",
            (long long)bf.seeds * bf.E);
    fprintf(tf, "%-10s", "strategy");
    for (int c = 0; c < n_cols; c++) {
        char h[40];
        snprintf(h, sizeof h, "T=%lld", (long long)cols[c]);
        fprintf(tf, " %22s", h);
    }
    fprintf(tf, "\n");
    for (int32_t i = 0; i < bf.S; i++) {
        fprintf(tf, "%-10s", qf_bandit_strategy_name(bf.strategy[i]));
        for (int c = 0; c < n_cols; c++) {
            int64_t p = 0;
            while (p < done && steps[p] != cols[c]) p++;
            char cell[64];
            if (p < done)
                qf_fmt_mean_se(cell, sizeof cell, pts[p * bf.S + i].mean, pts[p * bf.S + i].se);
            else
                snprintf(cell, sizeof cell, "-");
            fprintf(tf, " %22s", cell);
        }
        fprintf(tf, "\n");
    }
    const double bound = bp->n_probs > 0 ? qf_ucb1_bound(bf.mu, bf.K, T) : NAN;
    if (bp->n_probs > 0)
        fprintf(tf, "UCB1 bound (Auer et al. 2002, Thm 1) at T=%lld: 8 sum ln T/Delta_i + (1 + pi^2/3) sum Delta_i = "
                    "%.5g\n", (long long)T, bound);
    if (tf != stdout) {
        fclose(tf);
        fputs(table, stdout);
    }
    printf("%lld pulls in %.3g s (%.3g pulls/s) on %s%s\n", (long long)((bf.t - t_start) * N), elapsed,
           (double)(bf.t - t_start) * (double)N / (elapsed + 1e-12), b->device,
           t_start ? " in this process (the rest before the resume)" : "");
    fflush(stdout);

    /* a failed run keeps its parts and checkpoint (resume writes the results); a finished one's go */
    fclose(curves);
    const int wrc = rc == QF_OK && table ? write_results(dir, cfg, &bf, regret, last_step, table, bound) : -1;
    free(table);
    if (wrc == 0) {
        char path[QF_RESULTS_PATH_CAP];
        snprintf(path, sizeof path, "%s/bandits.ckpt", dir);
        remove(path);
        qf_curve_parts_remove(dir, 1);
        printf("results: %s/{runs.csv,curves.csv,summary.md,config.txt}\n", dir);
    }
    qf_results_release(lock_fd, dir, created, rc != QF_OK || wrc ? 1 : 0);
    free(steps);
    free(regret);
    free(pts);
    qf_bandits_destroy(&bf);
    return rc != QF_OK || wrc ? 1 : 0;
}
