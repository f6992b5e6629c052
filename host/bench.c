/* bench.c — the benchmarks: env stepping, training fleets, exploration strategies, MaxEnt IRL
 * iterations; each against its roofline bound (host/roofline.c). */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "../kernels/infer_ops.h"
#include "fleet.h"
#include "infer.h"
#include "results.h"
#include "roofline.h"
#include "vecenv.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* index for discrete kinds, dense for continuous ones, unless the user chose (the whole-table
 * benchmark, without env=, writes dense vectors where a kind has no state index). */
static const char *resolve_obs(int mode, int kind, const qf_env_params *p) {
    if (mode == QF_AUTO || mode == QF_OBS_INDEX) mode = qf_env_n_states(kind, p) > 0 ? QF_OBS_INDEX : QF_OBS_DENSE;
    return qf_config_choice_name("obs", mode);
}

double qf_bench_bytes_per_step(int kind, const qf_env_params *p, const char *obs_mode) {
    return qf_roof_env_step_bytes(kind, p, obs_mode);
}

/* A line when other processes were using the cores as the benchmark started (the 1-minute load
 * average of /proc/loadavg against the online cores): wall-time figures then include waiting for
 * a core, and repeats can differ several-fold (a new user saw bootstrap K=10 above K=40). */
static void note_load(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    double load = 0.0;
    if (!f) return;
    const int got = fscanf(f, "%lf", &load);
    fclose(f);
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (got != 1 || cores < 1 || load < (double)cores - 0.5) return;
    printf("note: the machine is busy (load average %.1f on %ld cores): the times below include waiting for a core "
           "and may differ several-fold between repeats; measure on an idle machine\n", load, cores);
}

/* One line naming the peaks every bound below is computed from. */
static const qf_roof_peaks *print_peaks(qf_backend *b) {
    note_load();
    fflush(stdout);
    const qf_roof_peaks *pk = qf_roof_peaks_of(b);
    printf("roofline peaks (%s): %s\n", b->name, pk->how);
    return pk;
}

typedef struct row {
    const char *env, *obs;
    int64_t envs;
    double steps_per_s, bytes_per_step;
} row;

/* Time one (kind, E) cell. Returns 0, 1 (backend failure) or 2 (does not fit). */
static int bench_cell(const qf_config *cfg, int kind, const qf_env_params *p0, int64_t E,
                      qf_backend *b, row *out) {
    const int32_t R = (int32_t)cfg->runs;
    const char *obs = resolve_obs(cfg->obs, kind, p0);
    const int64_t n = (int64_t)R * E;
    const size_t obs_bytes = strcmp(obs, "dense") == 0 ? (size_t)n * 4u * (size_t)qf_env_obs_dim(kind, p0)
                             : strcmp(obs, "index") == 0 ? (size_t)n * 4u : 0;
    const size_t need = qf_vecenv_bytes(R, E) + obs_bytes;
    if (need > b->mem_free / 10 * 9) {
        fprintf(stderr, "qfleet: envs=%lld x runs=%d of %s needs %.2f GiB, but the %s backend has "
                        "%.2f GiB free (allowed: lower envs, max_envs or runs)\n",
                (long long)E, R, qf_env_spec_of(kind)->name, (double)need / (1 << 30), b->name,
                (double)b->mem_free / (1 << 30));
        return 2;
    }
    qf_env_params *params = (qf_env_params *)malloc(sizeof(qf_env_params) * (size_t)R);
    uint32_t *keys = (uint32_t *)malloc(sizeof(uint32_t) * 2 * (size_t)R);
    if (!params || !keys) {
        free(params);
        free(keys);
        fprintf(stderr, "qfleet: out of host memory\n");
        return 1;
    }
    for (int32_t r = 0; r < R; r++) {
        params[r] = *p0;
        keys[2 * r] = (uint32_t)cfg->seed;
        keys[2 * r + 1] = (uint32_t)r;
    }
    qf_vecenv v;
    char err[512];
    int rc = 0;
    void *obs_buf = NULL;
    if (qf_vecenv_create(&v, b, kind, R, (int32_t)E, params, keys, err, sizeof err) != QF_OK) {
        fprintf(stderr, "qfleet: %s\n", err);
        rc = 1;
        goto done;
    }
    if (obs_bytes && !(obs_buf = b->alloc(b, obs_bytes))) {
        fprintf(stderr, "qfleet: %s\n", b->err);
        rc = 1;
        goto done_v;
    }
    float *dense = strcmp(obs, "dense") == 0 ? (float *)obs_buf : NULL;
    int32_t *index = strcmp(obs, "index") == 0 ? (int32_t *)obs_buf : NULL;
    uint32_t t = 0;
    int64_t total = 0;
    double elapsed = 0;
    /* Untimed warm-up: first touch of the arrays, and on the CPU with threads=0 the auto team
     * size's first choice (kernels/cpu/threads_cpu.c: 0.05 s, then a timed window at one thread and
     * one at every core), made afresh for this cell: a choice made on another cell's E, carried
     * over, said nothing about this one (1024 envs ran on one thread before any split of a run,
     * so a probe there could pick one thread for the next cell too). */
    if (b->kind == QF_BACKEND_CPU && cfg->threads == 0) qf_cpu_set_threads(0);
    const int auto_team = b->kind == QF_BACKEND_CPU && cfg->threads == 0 && qf_cpu_threads() > 1;
    const double w0 = now_s();
    for (int w = 0; w < 2 || (auto_team && qf_cpu_thread_stats_get().probes < 1 && now_s() - w0 < 2.0); w++)
        if (b->env_step(b, &v.batch, NULL, t++, dense, index) != QF_OK) goto fail;
    if (b->sync(b) != QF_OK) goto fail;
    for (int64_t chunk = 1;; chunk *= 2) {
        double t0 = now_s();
        for (int64_t k = 0; k < chunk; k++)
            if (b->env_step(b, &v.batch, NULL, t++, dense, index) != QF_OK) goto fail;
        if (b->sync(b) != QF_OK) goto fail;
        elapsed += now_s() - t0;
        total += chunk;
        if (elapsed >= cfg->seconds && total >= 3) break;
    }
    out->env = qf_env_spec_of(kind)->name;
    out->obs = obs;
    out->envs = E;
    out->steps_per_s = (double)total * (double)n / elapsed;
    out->bytes_per_step = qf_bench_bytes_per_step(kind, p0, obs);
    goto done_o;
fail:
    fprintf(stderr, "qfleet: %s\n", b->err);
    rc = 1;
done_o:
    if (obs_buf) b->release(b, obs_buf);
done_v:
    qf_vecenv_destroy(&v);
done:
    free(params);
    free(keys);
    return rc;
}

int qf_bench_envs(const qf_config *cfg, int only_env, qf_backend *b) {
    static const int64_t sizes[] = {1024, 16384, 131072, 1048576};
    row rows[QF_ENV_COUNT * 5];
    int n_rows = 0;
    /* csv=: opened before the benchmark, so that a path that cannot be written is refused at once,
     * not after minutes of timing (a new user's finding); written at the end */
    char tmp[QF_PATH_CAP + 8] = "";
    FILE *f = NULL;
    if (cfg->csv[0] && !(f = qf_open_output(cfg->csv, tmp, sizeof tmp))) {
        fprintf(stderr, "qfleet: csv=%s: cannot write it: %s\n", cfg->csv, strerror(errno));
        return 2;
    }
    printf("qfleet bench envs: backend %s (%s), runs=%lld, random actions drawn on the device\n",
           b->name, b->device, (long long)cfg->runs);
    const qf_roof_peaks *pk = print_peaks(b);
    /* bound: the steps/s at which bytes/step would saturate the memory bandwidth */
    printf("%-13s %-6s %10s %14s %9s %10s %9s %13s %8s\n", "env", "obs", "envs", "steps/s", "ns/step",
           "bytes/step", "GB/s", "bound steps/s", "of bound");
    fflush(stdout);
    for (int kind = 0; kind < QF_ENV_COUNT; kind++) {
        if (only_env >= 0 && kind != only_env) continue;
        qf_env_params p;
        if (kind == cfg->env) {
            p = cfg->env_params;
        } else {
            qf_env_params_default(kind, &p);
        }
        int n_sizes = 0;
        int64_t list[5];
        for (int s = 0; s < 4; s++)
            if (sizes[s] <= cfg->max_envs) list[n_sizes++] = sizes[s];
        if (n_sizes == 0 || list[n_sizes - 1] != cfg->max_envs) list[n_sizes++] = cfg->max_envs;
        for (int s = 0; s < n_sizes; s++) {
            row *r = &rows[n_rows];
            int rc = bench_cell(cfg, kind, &p, list[s] / cfg->runs > 0 ? list[s] / cfg->runs : 1, b, r);
            if (rc) {
                if (f) { /* nothing half-written: the temporary file goes */
                    fclose(f);
                    if (tmp[0]) remove(tmp);
                }
                return rc;
            }
            r->envs = list[s] / cfg->runs > 0 ? list[s] / cfg->runs * cfg->runs : cfg->runs;
            const double bw = r->steps_per_s * r->bytes_per_step;
            printf("%-13s %-6s %10lld %14.4g %9.3f %10.0f %9.2f", r->env, r->obs, (long long)r->envs,
                   r->steps_per_s, 1e9 / r->steps_per_s, r->bytes_per_step, bw / 1e9);
            if (pk->bytes_per_s > 0)
                printf(" %13.4g %7.1f%%\n", pk->bytes_per_s / r->bytes_per_step, 100.0 * bw / pk->bytes_per_s);
            else
                printf(" %13s %8s\n", "-", "-");
            fflush(stdout);
            n_rows++;
        }
    }
    if (f) {
        /* bound_bytes_per_s: the roofline's bandwidth (measured; peak_bytes_per_s is the backend's
         * theoretical figure); bound_steps_per_s = bound_bytes_per_s / bytes_per_step. A figure the
         * backend does not know (peak_bytes_per_s on the CPU) is an empty cell, as in runs.csv */
        fprintf(f, "env,backend,device,obs,envs,runs,steps_per_s,bytes_per_step,peak_bytes_per_s,"
                   "bound_bytes_per_s,bound_steps_per_s,frac_of_bound\n");
        for (int i = 0; i < n_rows; i++) {
            const double bound = pk->bytes_per_s > 0 ? pk->bytes_per_s / rows[i].bytes_per_step : NAN;
            fprintf(f, "%s,%s,\"%s\",%s,%lld,%lld,%.6g,%.0f", rows[i].env, b->name, b->device, rows[i].obs,
                    (long long)rows[i].envs, (long long)cfg->runs, rows[i].steps_per_s, rows[i].bytes_per_step);
            qf_csv_num(f, b->peak_bytes_per_s > 0 ? b->peak_bytes_per_s : NAN);
            qf_csv_num(f, pk->bytes_per_s > 0 ? pk->bytes_per_s : NAN);
            qf_csv_num(f, bound);
            qf_csv_num(f, rows[i].steps_per_s / bound);
            fprintf(f, "\n");
        }
        if (qf_close_output(f, cfg->csv, tmp)) return 1;
    }
    return 0;
}

/* The roofline shapes of a fleet (per run). */
static void roof_shape(const qf_fleet *f, qf_roof_fleet *s) {
    memset(s, 0, sizeof *s);
    s->net = f->net;
    s->E = f->E;
    s->B = f->B;
    s->obs_floats = f->embed ? 0 : f->D;
    s->env_step_bytes = qf_roof_env_step_bytes(f->cfg.env, &f->cfg.env_params, f->embed ? "index" : "dense");
    s->double_q = f->cfg.double_q != 0;
    s->prior = f->has_prior;
    s->tau = f->cfg.tau;
    s->target_every = f->cfg.target_every;
    s->rnd = f->has_rnd;
    if (f->has_rnd) s->rnd_net = f->rnd.net;
    s->count = f->counts.mode;
    s->count_act = f->any_count_act;
    s->count_bonus = f->any_bonus_count;
    s->simhash_bits = f->counts.bits;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double bench_cpu_elapsed; /* CPU seconds of the last timing loop's chunks */
static double bench_launches;       /* work items enqueued per iteration in the last timing */
static double bench_graph_launches; /* work items inside one recorded learning iteration (0: no graphs) */

int qf_bench_time_fleet(const qf_config *cfg, qf_backend *b, const qf_run_hp *hp, double *us, double *bytes,
                        int64_t *steps, double *syncs, char *err, size_t err_len) {
    return qf_bench_time_fleet_roof(cfg, b, hp, us, bytes, steps, syncs, NULL, err, err_len);
}

int qf_bench_time_fleet_cpu(const qf_config *cfg, qf_backend *b, double *us, double *cpu_us, double *bytes,
                            char *err, size_t err_len) {
    int64_t steps;
    double syncs;
    const int rc = qf_bench_time_fleet_roof(cfg, b, NULL, us, bytes, &steps, &syncs, NULL, err, err_len);
    *cpu_us = rc == QF_OK ? 1e6 * bench_cpu_elapsed / ((double)steps * (double)(cfg->runs * cfg->seeds)) : 0.0;
    return rc;
}

/* Time a fleet of c->runs runs: warm-up past one batch, then doubling chunks until `seconds`.
 * Returns QF_OK with microseconds per run-step, bytes per run and steps timed. */
int qf_bench_time_fleet_roof(const qf_config *cfg, qf_backend *b, const qf_run_hp *hp, double *us, double *bytes,
                             int64_t *steps, double *syncs, qf_roof_work *work, char *err, size_t err_len) {
    qf_config c = *cfg;
    c.timing_only = 1; /* no V*(s0): regret is not timed */
    c.learning_starts = 0;
    c.train_every = 1;
    c.updates = 1;
    c.log_every = 1000000000;
    qf_fleet f;
    if (qf_fleet_create(&f, b, &c, hp, NULL, err, err_len) != QF_OK) return QF_ERR;
    int64_t warm = (c.batch + c.envs - 1) / c.envs + 1, total = 0;
    double elapsed = 0;
    f.log_at_end = 0; /* log points only every log_every (never, here) */
    int rc = qf_fleet_train(&f, warm, NULL, NULL, err, err_len);
    const unsigned long long syncs0 = b->n_sync, launches0 = b->n_launch;
    int64_t chunks = 0;
    bench_cpu_elapsed = 0.0;
    for (int64_t chunk = 1; rc == QF_OK; chunk *= 2) {
        const double c0 = cpu_s();
        double t0 = now_s();
        rc = qf_fleet_train(&f, chunk, NULL, NULL, err, err_len);
        if (rc == QF_OK && b->sync(b) != QF_OK) {
            snprintf(err, err_len, "%s", b->err);
            rc = QF_ERR;
        }
        elapsed += now_s() - t0;
        bench_cpu_elapsed += cpu_s() - c0;
        total += chunk;
        chunks++;
        if (elapsed >= cfg->seconds && total >= 3) break;
    }
    *us = 1e6 * elapsed / ((double)total * (double)(c.runs * c.seeds));
    /* host synchronizations per training iteration (the explicit sync closing each timed chunk taken
     * out; no log points fall inside the timed chunks) */
    *syncs = ((double)(b->n_sync - syncs0) - (double)chunks) / (double)total;
    /* work items enqueued per iteration (kernels, cuBLAS calls, memsets; a graph replay counts 1) */
    bench_launches = (double)(b->n_launch - launches0) / (double)total;
    bench_graph_launches = f.graphs ? (double)f.graph_launches[1] : 0.0;
    *bytes = (double)(f.bytes + qf_vecenv_bytes(f.R, c.envs)) / (double)f.R;
    *steps = total;
    if (work) {
        qf_roof_fleet shape;
        roof_shape(&f, &shape);
        *work = qf_roof_run_step(&shape);
    }
    qf_fleet_destroy(&f);
    return rc;
}

int qf_bench_train(const qf_config *cfg, qf_backend *b) {
    static const int64_t sizes[] = {1, 16, 256, 4096};
    /* CUDA graphs: with cuda_graphs=auto and a backend that has them, every size is timed with
     * direct launches and with one graph replay per iteration (docs/cuda-graphs.md) */
    const int has_graphs = b->iter_begin_capture != NULL;
    int variants[2], n_var = 0;
    if (!has_graphs) variants[n_var++] = QF_GRAPHS_OFF;
    else if (cfg->cuda_graphs == QF_AUTO) {
        variants[n_var++] = QF_GRAPHS_OFF;
        variants[n_var++] = QF_GRAPHS_ON;
    } else variants[n_var++] = cfg->cuda_graphs;
    printf("qfleet bench train: backend %s (%s), env %s, envs=%lld per run, batch=%lld, hidden ",
           b->name, b->device, qf_env_spec_of(cfg->env)->name, (long long)cfg->envs, (long long)cfg->batch);
    for (int i = 0; i < cfg->n_hidden; i++) printf("%s%lld", i ? "-" : "", (long long)cfg->hidden[i]);
    printf(", explore=%s, one update per env step\n", qf_config_choice_name("explore", cfg->explore));
    const qf_roof_peaks *pk = print_peaks(b);
    printf("%7s %6s %14s %12s %16s %14s %12s %12s %14s %14s\n", "runs", "graphs", "env-steps/s", "updates/s",
           "us per run-step", "bytes per run", "steps timed", "syncs/step", "launches/step", "in one graph");
    int64_t done_runs[4];
    double done_us[4];
    qf_roof_work work = {0, 0};
    int n_done = 0;
    for (int s = 0; s < 4; s++) {
        if (sizes[s] > cfg->max_runs) break;
        int failed = 0;
        for (int v = 0; v < n_var && !failed; v++) {
            qf_config c = *cfg;
            c.runs = sizes[s];
            c.seeds = 1;
            c.cuda_graphs = variants[v];
            double us, bytes, syncs;
            int64_t total;
            char err[768];
            if (qf_bench_time_fleet_roof(&c, b, NULL, &us, &bytes, &total, &syncs, &work, err, sizeof err) != QF_OK) {
                printf("%7lld  (stops here: %s)\n", (long long)c.runs, err);
                failed = 1;
                break;
            }
            const char *gname = !has_graphs ? "none" : variants[v] == QF_GRAPHS_ON ? "on" : "off";
            printf("%7lld %6s %14.4g %12.4g %16.4g %14.4g %12lld %12.3g %14.4g", (long long)c.runs, gname,
                   1e6 * (double)c.envs / us, 1e6 / us, us, bytes, (long long)total, syncs, bench_launches);
            if (bench_graph_launches > 0) printf(" %14.0f\n", bench_graph_launches);
            else printf(" %14s\n", "-");
            fflush(stdout);
            if (v == n_var - 1) { /* the roofline table takes the last variant (graphs on where there are) */
                done_runs[n_done] = c.runs;
                done_us[n_done++] = us;
            }
        }
        if (failed) break;
    }
    if (n_done == 0) return 0;
    /* the work per run-step does not depend on the number of runs; the bound divides it by the
     * whole machine's peaks */
    int mem_bound = 0;
    const double bound_us = 1e6 * qf_roof_bound_s(work, pk, &mem_bound);
    printf("roofline per run-step (act on envs=%lld, step, store, one update on batch=%lld): %.4g FLOP, %.4g bytes "
           "(%.3g FLOP/byte); bound %.4g us (%s)\n",
           (long long)cfg->envs, (long long)cfg->batch, work.flops, work.bytes, work.flops / work.bytes, bound_us,
           mem_bound ? "memory" : "FLOPs");
    printf("%7s %12s %10s %10s %11s\n", "runs", "GFLOP/s", "of peak", "GB/s", "of bound");
    for (int i = 0; i < n_done; i++) {
        const double sec = 1e-6 * done_us[i];
        printf("%7lld %12.4g", (long long)done_runs[i], 1e-9 * work.flops / sec);
        if (pk->flops > 0) printf(" %9.2f%%", 100.0 * work.flops / sec / pk->flops);
        else printf(" %10s", "-");
        printf(" %10.4g", 1e-9 * work.bytes / sec);
        if (bound_us > 0) printf(" %10.2f%%\n", 100.0 * bound_us / done_us[i]);
        else printf(" %11s\n", "-");
    }
    return 0;
}

/* The rows of bench explore: each strategy once, bootstrap at K = 1, 10, 40 (the scaling-law
 * study's range, Knyazhitskiy 2025) and at heads= when that is another K. Returns the count. */
typedef struct explore_row {
    int explore;
    int64_t heads; /* bootstrap: K; 0 otherwise */
} explore_row;
static int explore_rows(const qf_config *cfg, explore_row *rows) {
    int64_t ks[4] = {1, 10, 40, 0};
    int nk = 3;
    if (cfg->heads != 1 && cfg->heads != 10 && cfg->heads != 40) ks[nk++] = cfg->heads;
    for (int i = nk - 1; i > 0 && ks[i] < ks[i - 1]; i--) { /* ascending */
        const int64_t t = ks[i];
        ks[i] = ks[i - 1];
        ks[i - 1] = t;
    }
    int n = 0;
    rows[n++] = (explore_row){QF_EXPLORE_EPSILON, 0};
    rows[n++] = (explore_row){QF_EXPLORE_BOLTZMANN, 0};
    for (int i = 0; i < nk; i++) rows[n++] = (explore_row){QF_EXPLORE_BOOTSTRAP, ks[i]};
    rows[n++] = (explore_row){QF_EXPLORE_COUNT, 0};
    rows[n++] = (explore_row){QF_EXPLORE_RND, 0};
    return n;
}

/* env-steps/s of a fleet from its cost per run-step: an iteration of R runs takes R x us and makes
 * R x envs env steps, so the rate is envs / us whatever R is (issue 14: bench explore printed R
 * times this). */
double qf_bench_env_steps_per_s(int64_t envs, double us_per_run_step) { return 1e6 * (double)envs / us_per_run_step; }

int qf_bench_explore(const qf_config *cfg, qf_backend *b) {
    static const int64_t sizes[] = {1, 64, 1024};
    explore_row rows[8];
    const int n_rows = explore_rows(cfg, rows);
    printf("qfleet bench explore: backend %s (%s), env %s, envs=%lld per run, batch=%lld, hidden ", b->name,
           b->device, qf_env_spec_of(cfg->env)->name, (long long)cfg->envs, (long long)cfg->batch);
    for (int i = 0; i < cfg->n_hidden; i++) printf("%s%lld", i ? "-" : "", (long long)cfg->hidden[i]);
    printf(", bootstrap at K heads (bootstrap-KN), one update per env step; cost relative to epsilon-greedy\n");
    const qf_roof_peaks *pk = print_peaks(b);
    /* roofline: FLOP/byte of one run-step of the strategy's fleet, the FLOP/s reached and the
     * measured time against the bound max(FLOPs / peak, bytes / bandwidth) */
    /* FLOPs vs epsilon: the arithmetic of the strategy's run-step over epsilon's (the roofline's
     * count): on a machine where the learner is compute-bound the time ratio cannot fall below it
     * (bootstrap with K separate networks does K networks' updates) */
    printf("%7s %-13s %14s %16s %10s %12s %14s %10s %10s %10s\n", "runs", "explore", "env-steps/s",
           "us per run-step", "vs epsilon", "FLOPs vs eps", "bytes per run", "FLOP/byte", "GFLOP/s", "of bound");
    for (int s = 0; s < 3; s++) {
        if (sizes[s] > cfg->max_runs) break;
        double base = 0.0, base_flops = 0.0;
        for (int k = 0; k < n_rows; k++) {
            qf_config c = *cfg;
            c.runs = sizes[s];
            c.seeds = 1;
            char name[32];
            snprintf(name, sizeof name, "%s", qf_config_choice_name("explore", rows[k].explore));
            c.explore = rows[k].explore;
            if (rows[k].heads > 0) {
                c.heads = rows[k].heads;
                snprintf(name, sizeof name, "bootstrap-K%lld", (long long)rows[k].heads);
            }
            if (c.explore == QF_EXPLORE_BOLTZMANN && c.alpha <= 0.0) c.alpha = 0.1; /* Boltzmann needs a temperature */
            double us, bytes, syncs;
            int64_t total;
            qf_roof_work work;
            char err[768];
            if (qf_bench_time_fleet_roof(&c, b, NULL, &us, &bytes, &total, &syncs, &work, err, sizeof err) != QF_OK) {
                printf("%7lld %-13s (stops here: %s)\n", (long long)c.runs, name, err);
                return 0;
            }
            if (k == 0) {
                base = us;
                base_flops = work.flops;
            }
            const double bound_us = 1e6 * qf_roof_bound_s(work, pk, NULL);
            printf("%7lld %-13s %14.4g %16.4g %9.2fx %11.2fx %14.4g %10.3g %10.4g", (long long)c.runs, name,
                   qf_bench_env_steps_per_s(c.envs, us), us, us / base, work.flops / base_flops, bytes,
                   work.flops / work.bytes, 1e-3 * work.flops / us);
            if (bound_us > 0) printf(" %9.2f%%\n", 100.0 * bound_us / us);
            else printf(" %10s\n", "-");
            fflush(stdout);
        }
    }
    return 0;
}

/* ---- `qfleet bench irl` ---------------------------------------------------------------------------- */

/* The (s, a, s') entries of a gridworld's sparse dynamics: the outcome counts summed over (s, a). */
static int64_t irl_nnz(const qf_env_params *p) {
    const int32_t S = qf_env_n_states(QF_ENV_GRIDWORLD, p), A = qf_env_n_actions(QF_ENV_GRIDWORLD, p);
    int64_t nnz = 0;
    for (int32_t s = 0; s < S; s++)
        for (int32_t a = 0; a < A; a++) {
            qf_outcome o[QF_MAX_OUTCOMES];
            nnz += qf_env_outcomes_no_reward(QF_ENV_GRIDWORLD, p, 0, 0, s, a, o);
        }
    return nnz;
}

/* MaxEnt IRL iterations on gridworld 16x16 and 32x32 for 1, 64, 1024 problems, each size with its
 * roofline line (host/roofline.c qf_roof_irl_iteration): the work is in double, so the FLOP bound
 * is half the backend's fp32 peak (the same vector units, half the lanes). */
int qf_bench_irl(const qf_config *cfg, qf_backend *b) {
    static const int sizes[2] = {16, 32};
    static const int counts[3] = {1, 64, 1024};
    const int32_t T = cfg->horizon > 0 ? (int32_t)cfg->horizon : 64;
    /* its problems are fixed (gridworld 16 x 16 and 32 x 32): an env or env.* key would do nothing */
    qf_env_params dflt;
    memset(&dflt, 0, sizeof dflt);
    qf_env_params_default(cfg->env, &dflt);
    if ((qf_config_given(cfg, "env") && cfg->env != QF_ENV_GRIDWORLD) ||
        memcmp(&dflt, &cfg->env_params, sizeof dflt) != 0) {
        fprintf(stderr, "qfleet: bench irl times MaxEnt IRL on gridworld 16x16 and 32x32 only: env= and env.* keys "
                        "would do nothing (remove them; irl env=... runs IRL on another environment)\n");
        return 2;
    }
    FILE *csv = NULL;
    char csv_tmp[QF_PATH_CAP + 8] = "";
    if (cfg->csv[0] && !(csv = qf_open_output(cfg->csv, csv_tmp, sizeof csv_tmp))) {
        fprintf(stderr, "qfleet: csv=%s: cannot write it: %s\n", cfg->csv, strerror(errno));
        return 2;
    }
    if (csv)
        fprintf(csv, "size,problems,horizon,iterations,seconds,problem_iterations_per_s,ms_per_problem_iteration,"
                     "cpu_ms_per_problem_iteration,flops_per_iteration,bytes_per_iteration,gflop_per_s,gbyte_per_s,"
                     "fraction_of_bound\n");
    printf("qfleet bench irl: gridworld N x N, T=%d, 16 demonstrations per problem, MaxEnt IRL iterations "
           "(backward + forward + feature counts + Adam), backend %s\n", T, b->name);
    const qf_roof_peaks *pk0 = print_peaks(b);
    qf_roof_peaks pk = *pk0;
    pk.flops = pk0->flops / 2.0; /* fp64 */
    printf("bounds below: fp64 peak %.4g GFLOP/s (the fp32 peak / 2), %.4g GB/s\n", 1e-9 * pk.flops,
           1e-9 * pk.bytes_per_s);
    int rc = 0;
    for (int si = 0; si < 2 && rc == 0; si++) {
        qf_roof_work work = {0.0, 0.0};
        double trans = 0.0, bound_s = 0.0;
        int mem_bound = 0;
        {
            qf_env_params p;
            qf_env_params_default(QF_ENV_GRIDWORLD, &p);
            p.gridworld.size = sizes[si];
            p.gridworld.horizon = T;
            p.gridworld.objects = 16;
            const int32_t S = sizes[si] * sizes[si], A = QF_GRID_ACTIONS, F = qf_irl_n_features(QF_ENV_GRIDWORLD, &p);
            const int64_t nnz = irl_nnz(&p);
            work = qf_roof_irl_iteration(S, A, F, T, nnz, &trans);
            bound_s = qf_roof_bound_s(work, &pk, &mem_bound);
            /* the peaks the bound uses were said once, after the peaks line */
            printf("roofline per problem-iteration, N=%d (S=%d, A=%d, F=%d, T=%d, %lld dynamics entries): %.4g FLOP "
                   "(fp64) + %.4g exp/log, %.4g bytes (%.3g FLOP/byte); bound %.4g us (%s)\n",
                   sizes[si], S, A, F, T, (long long)nnz, work.flops, trans, work.bytes, work.flops / work.bytes,
                   1e6 * bound_s, mem_bound ? "memory" : "FLOPs");
            printf("  %-4s %-8s %-10s %-20s %-12s %-12s %-9s %-8s %-8s %s\n", "N", "problems", "iterations",
                   "problem-iterations/s", "ms per p-it", "cpu ms/p-it", "GFLOP/s", "of peak", "GB/s", "of bound");
        }
        for (int ci = 0; ci < 3 && rc == 0; ci++) {
            const int32_t R = counts[ci];
            if (R > cfg->max_runs) continue;
            qf_env_params p;
            qf_env_params_default(QF_ENV_GRIDWORLD, &p);
            p.gridworld.size = sizes[si];
            p.gridworld.horizon = T;
            p.gridworld.objects = 16;
            const int32_t S = sizes[si] * sizes[si], A = QF_GRID_ACTIONS, F = qf_irl_n_features(QF_ENV_GRIDWORLD, &p);
            const double need = (double)R * 8.0 * ((double)S * A * (F + 3) + (double)(T + 1) * S);
            if (need > (double)(b->mem_free / 10 * 8)) {
                printf("  %-6d %-9d (needs %.1f GiB, more than the backend has free)\n", sizes[si], R, need / (1 << 30));
                continue;
            }
            qf_env_params *params = (qf_env_params *)malloc(sizeof(qf_env_params) * (size_t)R);
            uint32_t *keys = (uint32_t *)malloc(sizeof(uint32_t) * 2 * (size_t)R);
            double *alpha = (double *)malloc(sizeof(double) * (size_t)R), *lr = (double *)malloc(sizeof(double) * (size_t)R);
            double *feat = (double *)malloc(sizeof(double) * (size_t)S * A * F * (size_t)R);
            double *psi = (double *)malloc(sizeof(double) * (size_t)R * F);
            double *v0 = (double *)calloc((size_t)(T + 1) * S, sizeof(double));
            qf_demos *demos = (qf_demos *)calloc((size_t)R, sizeof(qf_demos));
            if (!params || !keys || !alpha || !lr || !feat || !psi || !v0 || !demos) {
                fprintf(stderr, "qfleet: out of host memory\n");
                rc = 1;
            }
            for (int32_t r = 0; rc == 0 && r < R; r++) {
                params[r] = p;
                params[r].gridworld.map_seed = r;
                keys[2 * r] = (uint32_t)cfg->seed;
                keys[2 * r + 1] = (uint32_t)r;
                alpha[r] = 1.0;
                lr[r] = 0.05;
                qf_irl_features(QF_ENV_GRIDWORLD, &params[r], feat + (size_t)r * S * A * F);
                /* demonstrations of the reward-greedy-ish policy exp(r / alpha) (V = 0): any 16 episodes do */
                if (qf_irl_draw_demos(QF_ENV_GRIDWORLD, &params[r], keys[2 * r], keys[2 * r + 1], 1.0, T, v0, 16, &demos[r]))
                    rc = 1;
            }
            qf_irl_setup in;
            memset(&in, 0, sizeof in);
            in.kind = QF_ENV_GRIDWORLD;
            in.R = R;
            in.T = T;
            in.S = S;
            in.A = A;
            in.F = F;
            in.params = params;
            in.keys = keys;
            in.alpha = alpha;
            in.lr = lr;
            in.feat = feat;
            in.demos = demos;
            /* calls of k = 1, 2, 4, ... iterations until one takes seconds=; the rate is that of the
             * last k/2 iterations, t(k) - t(k/2), which leaves out the set-up and the metrics (the same
             * in both calls: log points at the first and the last iteration) */
            double secs = 0.0, prev = 0.0, t_k = 0.0, c_k = 0.0, c_prev = 0.0;
            int32_t iters = 1, prev_iters = 0;
            char err[512];
            while (rc == 0) {
                in.iters = iters;
                in.log_every = iters;
                qf_irl_curves cv;
                const double t0 = qf_wall_s(), c0 = cpu_s();
                if (qf_irl_train(b, &in, psi, &cv, err, sizeof err)) {
                    fprintf(stderr, "qfleet: %s\n", err);
                    rc = 1;
                    break;
                }
                t_k = qf_wall_s() - t0;
                c_k = cpu_s() - c0;
                qf_irl_curves_free(&cv);
                if (prev_iters > 0 && (t_k >= cfg->seconds || iters >= (1 << 20))) break;
                prev = t_k;
                c_prev = c_k;
                prev_iters = iters;
                iters *= 2;
            }
            secs = t_k - prev;
            double csecs = c_k - c_prev;
            iters = iters - prev_iters;
            if (!(secs > 0.0)) secs = t_k / 2.0; /* timer noise on a tiny problem: the whole call, halved */
            if (!(csecs > 0.0)) csecs = c_k / 2.0;
            if (rc == 0) {
                const double pis = (double)R * iters / secs, cpu_ms = 1e3 * csecs / ((double)R * iters);
                const double gflops = 1e-9 * work.flops * pis, gbs = 1e-9 * work.bytes * pis;
                const double frac = bound_s > 0.0 ? bound_s * pis : 0.0;
                printf("  %-4d %-8d %-10d %-20.1f %-12.4g %-12.4g %-9.4g", sizes[si], R, iters, pis, 1e3 / pis, cpu_ms,
                       gflops);
                if (pk.flops > 0) printf(" %7.3f%%", 100.0 * 1e9 * gflops / pk.flops);
                else printf(" %8s", "-");
                printf(" %-8.4g %.3f%%\n", gbs, 100.0 * frac);
                if (csv)
                    fprintf(csv, "%d,%d,%d,%d,%.6f,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", sizes[si], R, T, iters, secs,
                            pis, 1e3 / pis, cpu_ms, work.flops, work.bytes, gflops, gbs, frac);
                fflush(stdout);
            }
            for (int32_t r = 0; demos && r < R; r++) qf_demos_free(&demos[r]);
            free(params);
            free(keys);
            free(alpha);
            free(lr);
            free(feat);
            free(psi);
            free(v0);
            free(demos);
        }
    }
    printf("  (cpu ms/p-it: the process's CPU time over the timed iterations (all threads) per problem-iteration,\n"
           "   less sensitive than the wall time to other processes on the cores; of peak: fp64 FLOP/s against\n"
           "   the fp64 peak; of bound: the roofline bound's time over the measured time)\n");
    printf("  (iterations: the difference of two timed calls of k and k/2 iterations, k doubling until a call\n"
           "   takes seconds=; set-up and metrics cancel out)\n");
    if (csv && qf_close_output(csv, cfg->csv, csv_tmp)) rc = rc ? rc : 1;
    return rc;
}
