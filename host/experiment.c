/* experiment.c — the one experiment runner (see experiment.h; the folder: docs/results-format.md). */
#define _POSIX_C_SOURCE 200809L
#include "experiment.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "checkpoint.h"
#include "results.h"

/* ---- the results format -------------------------------------------------------------------------- */

const char *const qf_metric_names[QF_N_METRICS] = {
    "episodes", "episodic_return", "episodic_length", "eval_return", "SPS", "td_loss",
    "q_values", "grad_norm", "regret", "intrinsic_reward", "distinct_states", "q_diversity",
    /* irl (host/irl.c): per log point (step = iteration) */
    "demo_log_likelihood", "feature_expectation_gap", "true_regret"};

double qf_metric_value(const qf_log_point *p, int m) {
    switch (m) {
    case 0: return (double)p->episodes;
    case 1: return p->episodic_return;
    case 2: return p->episodic_length;
    case 3: return p->eval_return; /* greedy evaluation (qf_fleet_evaluate); NaN where none ran */
    case 4: return p->sps;
    case 5: return p->td_loss;
    case 6: return p->q_values;
    case 7: return p->grad_norm;
    case 8: return p->regret;
    case 9: return p->intrinsic;
    case 10: return p->distinct >= 0 ? (double)p->distinct : NAN;
    case 11: return p->q_diversity; /* bootstrap runs only (NaN otherwise: not written) */
    default: return NAN; /* another command's metric */
    }
}

static int64_t seeds_per_copy(const qf_experiment *x) { return x->copies > 1 ? x->seeds / x->copies : x->seeds; }

uint64_t qf_run_seed(const qf_experiment *x, int64_t point, int64_t seed_index) {
    return x->points[point].seed + (uint64_t)(seed_index % seeds_per_copy(x));
}

void qf_run_name(FILE *f, const qf_experiment *x, int64_t point, int seed_index) {
    const qf_config *c = &x->points[point];
    fprintf(f, "%s__%s", qf_env_spec_of(c->env)->name, qf_config_choice_name("explore", c->explore));
    for (int a = 0; a < x->n_axes; a++)
        fprintf(f, "__%s=%s", x->axis_keys[a], x->axis_values[point * x->n_axes + a]);
    if (x->copies > 1) fprintf(f, "__run=%lld", (long long)(seed_index / seeds_per_copy(x)));
    fprintf(f, "__seed%llu", (unsigned long long)qf_run_seed(x, point, seed_index));
}

uint64_t qf_experiment_hash(const char *command, const qf_words *ws) {
    uint64_t h = qf_fnv1a(QF_FNV_INIT, command, strlen(command) + 1);
    for (int i = 0; i < ws->n; i++) h = qf_fnv1a(h, ws->w[i].text, strlen(ws->w[i].text) + 1);
    if (ws->load[0]) h = qf_fnv1a(qf_fnv1a(h, "--load", 7), ws->load, strlen(ws->load) + 1);
    return h;
}

int qf_experiment_read_words(const char *dir, char *cmd, size_t cmd_len, qf_words *ws, char *msg, size_t n) {
    char path[QF_RESULTS_PATH_CAP];
    if (!dir[0]) {
        snprintf(msg, n, "--resume needs a results folder (--resume DIR)");
        return -1;
    }
    snprintf(path, sizeof path, "%s/run.words", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, n, "--resume %s: cannot read %s (%s); is it a qfleet results folder?", dir, path, strerror(errno));
        return -1;
    }
    char *line = NULL; /* any length: a word is never cut */
    size_t cap = 0;
    int first = 1, rc = 0;
    cmd[0] = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        line[strcspn(line, "\n")] = 0;
        char *tab = strchr(line, '\t');
        if (!tab) {
            snprintf(msg, n, "%s: a line without a tab: not a run.words file", path);
            rc = -1;
            break;
        }
        *tab = 0;
        if (first) {
            if (strcmp(line, "command") != 0 || !tab[1] || strlen(tab + 1) >= cmd_len) {
                snprintf(msg, n, "%s does not start with the command line (written by an older qfleet?)", path);
                rc = -1;
            } else {
                snprintf(cmd, cmd_len, "%s", tab + 1);
            }
            first = 0;
            continue;
        }
        if (strcmp(line, "--load") == 0) {
            if (strlen(tab + 1) >= sizeof ws->load) {
                snprintf(msg, n, "%s: the --load path is longer than any path the system accepts", path);
                rc = -1;
            } else {
                snprintf(ws->load, sizeof ws->load, "%s", tab + 1);
            }
            continue;
        }
        if (qf_words_add(ws, tab + 1, line)) {
            snprintf(msg, n, "out of memory");
            rc = -1;
        }
    }
    if (rc == 0 && first) {
        snprintf(msg, n, "%s is empty", path);
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* ---- planning ------------------------------------------------------------------------------------ */

/* What decides a fleet's shapes: every key but the per-run ones, and the env's parameters. */
static void shape_key(const qf_config *c, char *out, size_t len) {
    size_t used = 0;
    out[0] = 0;
    for (int k = 0; k < qf_config_key_count(); k++) {
        const char *name = qf_config_key_name(k);
        const int scope = qf_config_key_scope(name);
        if (scope >= 0 && scope != QF_SCOPE_FLEET) continue;
        char v[QF_PATH_CAP + 64];
        qf_config_get(c, name, v, sizeof v);
        const int w = snprintf(out + used, len - used, "%s=%s;", name, v);
        if (w < 0 || (size_t)w >= len - used) return;
        used += (size_t)w;
    }
    const qf_env_spec *es = qf_env_spec_of(c->env);
    for (int j = 0; j < es->n_params; j++) {
        char name[80], v[QF_MAX_ARMS * 24 + 8];
        snprintf(name, sizeof name, "env.%s", es->params[j].name);
        qf_config_get(c, name, v, sizeof v);
        const int w = snprintf(out + used, len - used, "%s=%s;", name, v);
        if (w < 0 || (size_t)w >= len - used) return;
        used += (size_t)w;
    }
}

typedef struct plan {
    int64_t n_fleets;
    int64_t *order;    /* [n_points] points sorted by shape, then number */
    int64_t *fleet;    /* [n_fleets][2] first (into order) and count of each fleet */
    double *work;      /* [n_fleets] estimated seconds (probe) or run-steps: the progress line's weights */
    double *bytes;     /* [n_fleets] bytes per run (probe; not in plan.bin: --dry-run prints it) */
} plan;

static void plan_free(plan *p) {
    free(p->order);
    free(p->fleet);
    free(p->work);
    free(p->bytes);
    memset(p, 0, sizeof *p);
}

typedef struct sort_item {
    int64_t index;
    char *shape;
} sort_item;

static int cmp_item(const void *a, const void *b) {
    const sort_item *x = (const sort_item *)a, *y = (const sort_item *)b;
    const int c = strcmp(x->shape, y->shape);
    if (c) return c;
    return (x->index > y->index) - (x->index < y->index);
}

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static char **shapes_of(const qf_experiment *x) {
    char **s = (char **)calloc((size_t)x->n_points, sizeof(char *));
    for (int64_t p = 0; s && p < x->n_points; p++) {
        if (!(s[p] = (char *)malloc(8192))) {
            for (int64_t q = 0; q < p; q++) free(s[q]);
            free(s);
            return NULL;
        }
        shape_key(&x->points[p], s[p], 8192);
    }
    return s;
}

static void shapes_free(char **s, int64_t n) {
    for (int64_t p = 0; s && p < n; p++) free(s[p]);
    free(s);
}

/* Bytes per run and CPU microseconds per run-step of one run of configuration c (bench's timing
 * loop, about 0.05 s of steps). CPU time, not wall time: on a machine where other processes hold the
 * cores a 0.05 s wall window may hold a small share of a core. load receives wall/CPU. */
static int probe(qf_backend *b, const qf_config *c, double *bytes, double *us, double *load, char *err, size_t n) {
    qf_config c1 = *c;
    c1.runs = 1;
    c1.seeds = 1;
    c1.seconds = 0.05;
    double wall_us;
    if (qf_bench_time_fleet_cpu(&c1, b, &wall_us, us, bytes, err, n) != QF_OK) return -1;
    if (!(*us > 0.0)) *us = wall_us; /* a clock too coarse for the window: the wall time then */
    *load = wall_us / *us;
    return 0;
}

/* Plan the fleets: consecutive points of one shape, as many as memory and max_runs allow (probe) or
 * all of them (no probe). 0, or the exit code with one line printed. */
static int make_plan(const qf_experiment *x, qf_backend *b, char **shapes, plan *pl, double *probe_load) {
    const int64_t N = x->n_points, S = x->seeds;
    sort_item *it = (sort_item *)calloc((size_t)N, sizeof(sort_item));
    pl->order = (int64_t *)calloc((size_t)N, sizeof(int64_t));
    pl->fleet = (int64_t *)calloc((size_t)N * 2, sizeof(int64_t));
    pl->work = (double *)calloc((size_t)N, sizeof(double));
    pl->bytes = (double *)calloc((size_t)N, sizeof(double));
    double *us = (double *)calloc((size_t)N, sizeof(double));
    int rc = 0;
    if (!it || !pl->order || !pl->fleet || !pl->work || !pl->bytes || !us) {
        fprintf(stderr, "qfleet: out of host memory for %lld points\n", (long long)N);
        rc = 1;
        goto out;
    }
    for (int64_t p = 0; p < N; p++) it[p] = (sort_item){p, shapes[p]};
    qsort(it, (size_t)N, sizeof *it, cmp_item);
    /* shapes in the order of their first points (compare's sizes as given), points by number within */
    {
        sort_item *by = (sort_item *)malloc(sizeof(sort_item) * (size_t)N);
        int64_t *grp = (int64_t *)malloc(sizeof(int64_t) * (size_t)N * 2), n_grp = 0;
        if (!by || !grp) {
            free(by);
            free(grp);
            fprintf(stderr, "qfleet: out of host memory for %lld points\n", (long long)N);
            rc = 1;
            goto out;
        }
        for (int64_t p = 0; p < N;) { /* (first point's number, start) of each shape */
            int64_t q = p;
            while (q < N && strcmp(it[q].shape, it[p].shape) == 0) q++;
            grp[2 * n_grp] = it[p].index;
            grp[2 * n_grp + 1] = p;
            n_grp++;
            p = q;
        }
        qsort(grp, (size_t)n_grp, 2 * sizeof(int64_t), cmp_i64);
        int64_t k = 0;
        for (int64_t g = 0; g < n_grp; g++)
            for (int64_t j = grp[2 * g + 1]; j < N && (j == grp[2 * g + 1] || strcmp(it[j].shape, it[j - 1].shape) == 0);
                 j++)
                by[k++] = it[j];
        memcpy(it, by, sizeof(sort_item) * (size_t)N);
        free(by);
        free(grp);
    }
    for (int64_t p = 0; p < N; p++) pl->order[p] = it[p].index;
    *probe_load = 1.0;
    for (int64_t p = 0; p < N;) {
        int64_t q = p;
        while (q < N && strcmp(it[q].shape, it[p].shape) == 0) q++;
        int64_t per_fleet = q - p;
        double bpr = 0.0;
        if (x->probe) {
            /* bytes and speed from one run of each cost class (strategy, heads, bonus) of this shape;
             * a fleet's runs take the largest class's bytes (K heads) */
            struct { char cls[64]; double us, bytes, load; } probes[16];
            int n_probes = 0;
            for (int64_t j = p; j < q; j++) {
                const qf_config *c = &x->points[it[j].index];
                char cls[64];
                snprintf(cls, sizeof cls, "%d/%lld/%d", (int)c->explore, (long long)c->heads, (int)c->bonus);
                int k = 0;
                while (k < n_probes && strcmp(probes[k].cls, cls) != 0) k++;
                if (k == n_probes && n_probes < 16) {
                    char err[768];
                    if (probe(b, c, &probes[k].bytes, &probes[k].us, &probes[k].load, err, sizeof err)) {
                        fprintf(stderr, "qfleet: point %lld: %s\n", (long long)it[j].index, err);
                        rc = 2;
                        goto out;
                    }
                    snprintf(probes[k].cls, sizeof probes[k].cls, "%s", cls);
                    n_probes++;
                }
                if (k == 16) k = 15;
                us[j] = probes[k].us;
                *probe_load = probes[k].load > *probe_load ? probes[k].load : *probe_load;
                bpr = probes[k].bytes > bpr ? probes[k].bytes : bpr;
            }
            const qf_config *c0 = &x->points[it[p].index];
            const double mem_runs = 0.8 * (double)b->mem_free / bpr;
            const int64_t cap_runs = c0->max_runs < (int64_t)mem_runs ? c0->max_runs : (int64_t)mem_runs;
            per_fleet = cap_runs / S;
            if (per_fleet < 1) {
                fprintf(stderr, "qfleet: point %lld: %lld seeds of %.3g MB each do not fit one fleet (max_runs=%lld, "
                                "%.3g GB free)\n", (long long)it[p].index, (long long)S, bpr / 1e6,
                        (long long)c0->max_runs, (double)b->mem_free / 1e9);
                rc = 2;
                goto out;
            }
        }
        for (int64_t s = p; s < q; s += per_fleet) {
            int64_t *fl = &pl->fleet[2 * pl->n_fleets];
            fl[0] = s;
            fl[1] = q - s < per_fleet ? q - s : per_fleet;
            double w = 0.0;
            for (int64_t j = s; j < s + fl[1]; j++)
                w += (x->probe ? 1e-6 * us[j] : 1.0) * (double)S * (double)x->points[it[j].index].steps;
            pl->bytes[pl->n_fleets] = bpr;
            pl->work[pl->n_fleets++] = w;
        }
        p = q;
    }
out:
    free(it);
    free(us);
    return rc;
}

/* plan.bin: order [n_points] int64, fleets [n_fleets][2] int64, work [n_fleets] double. */
static int write_plan(const char *dir, uint64_t hash, const qf_experiment *x, const plan *pl) {
    qf_file_header h;
    memset(&h, 0, sizeof h);
    h.kind = QF_FILE_PLAN;
    h.hash = hash;
    h.meta[0] = (uint64_t)x->n_points;
    h.meta[1] = (uint64_t)pl->n_fleets;
    h.meta[2] = (uint64_t)x->seeds;
    const void *ptr[3] = {pl->order, pl->fleet, pl->work};
    const size_t bytes[3] = {sizeof(int64_t) * (size_t)x->n_points, 2 * sizeof(int64_t) * (size_t)pl->n_fleets,
                             sizeof(double) * (size_t)pl->n_fleets};
    return qf_file_write(dir, "plan.bin", &h, 3, ptr, bytes);
}

/* Read plan.bin and check every field against this experiment before anything is indexed: a
 * permutation of the points, fleets covering it in order, each of one shape. */
static int read_plan(const char *dir, uint64_t hash, const qf_experiment *x, char **shapes, plan *pl, char *err,
                     size_t n) {
    qf_file_header h;
    char *p = NULL;
    size_t len;
    const int rr = qf_file_read(dir, "plan.bin", QF_FILE_PLAN, hash, 0, &h, &p, &len, err, n);
    if (rr == 1) snprintf(err, n, "%s has no plan.bin: not a folder this qfleet can resume", dir);
    if (rr) return -1;
    const int64_t N = x->n_points;
    const uint64_t F = h.meta[1];
    int ok = h.n_parts == 3 && h.meta[0] == (uint64_t)N && h.meta[2] == (uint64_t)x->seeds && F >= 1 &&
             F <= (uint64_t)N && h.part[0] == sizeof(int64_t) * (uint64_t)N &&
             h.part[1] == 2 * sizeof(int64_t) * F && h.part[2] == sizeof(double) * F;
    if (ok) {
        pl->n_fleets = (int64_t)F;
        pl->order = (int64_t *)malloc(sizeof(int64_t) * (size_t)N);
        pl->fleet = (int64_t *)malloc(2 * sizeof(int64_t) * (size_t)F);
        pl->work = (double *)malloc(sizeof(double) * (size_t)F);
        unsigned char *seen = (unsigned char *)calloc((size_t)N, 1);
        ok = pl->order && pl->fleet && pl->work && seen;
        if (ok) {
            memcpy(pl->order, p, (size_t)h.part[0]);
            memcpy(pl->fleet, p + h.part[0], (size_t)h.part[1]);
            memcpy(pl->work, p + h.part[0] + h.part[1], (size_t)h.part[2]);
        }
        for (int64_t i = 0; ok && i < N; i++) {
            ok = pl->order[i] >= 0 && pl->order[i] < N && !seen[pl->order[i]];
            if (ok) seen[pl->order[i]] = 1;
        }
        int64_t next = 0;
        for (int64_t f = 0; ok && f < (int64_t)F; f++) {
            const int64_t first = pl->fleet[2 * f], count = pl->fleet[2 * f + 1];
            ok = first == next && count >= 1 && count <= N - first && count * x->seeds <= INT32_MAX &&
                 isfinite(pl->work[f]) && pl->work[f] >= 0.0;
            for (int64_t j = first + 1; ok && j < first + count; j++)
                ok = strcmp(shapes[pl->order[j]], shapes[pl->order[first]]) == 0;
            next = first + count;
        }
        ok = ok && next == N;
        free(seen);
    }
    free(p);
    if (!ok) {
        snprintf(err, n, "%s/plan.bin does not describe this experiment's fleets (counts, points or shapes differ)",
                 dir);
        plan_free(pl);
        return -1;
    }
    return 0;
}

/* ---- the results folder --------------------------------------------------------------------------- */

int qf_experiment_write_words(const char *dir, const char *command, const qf_words *ws) {
    char tmp[QF_RESULTS_PATH_CAP];
    FILE *f = qf_open_atomic(dir, "run.words", tmp, sizeof tmp);
    if (!f) {
        fprintf(stderr, "qfleet: cannot write into %s: %s\n", dir, strerror(errno));
        return -1;
    }
    fprintf(f, "command\t%s\n", command);
    if (ws->load[0]) fprintf(f, "--load\t%s\n", ws->load); /* a resumed fleet that had not started loads it too */
    for (int i = 0; i < ws->n; i++) fprintf(f, "%s\t%s\n", ws->w[i].origin, ws->w[i].text);
    return qf_close_atomic(f, dir, "run.words", tmp);
}

/* ---- training ------------------------------------------------------------------------------------ */

/* SIGINT / SIGTERM (or a curve part that cannot be written): finish the current step, checkpoint, stop. */
volatile int qf_stop_flag;
static void on_signal(int sig) {
    (void)sig;
    qf_stop_flag = 1;
}
static struct sigaction old_int, old_term;
void qf_stop_signals_on(void) {
    qf_stop_flag = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
}
void qf_stop_signals_off(void) {
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}

typedef struct fleet_ctx {
    const qf_experiment *x;
    const plan *pl;
    int64_t fleet;
    int32_t R;
    qf_log_point *pts; /* [n_logs][R] */
    int64_t n_logs, cap;
    FILE *curves;      /* fleet_K.curves, appended */
    int curves_failed, ckpt_failed, oom;
    const char *dir;
    uint64_t hash;
    double every, last;
    /* progress */
    int quiet, tty;
    double work_done, work_total, work_at_start, shown;
    double learn_t0, learn_done0; /* when (and at what work done) the first log point with learning came */
    int64_t runs_done, runs_total;
    /* skipped points (skip_points): the rows known so far by run number, and the fleet's points
     * that train (indices into its points; NULL: all) */
    const qf_exp_run *known;
    const unsigned char *done;
    const int64_t *act;
} fleet_ctx;

/* The run number of run r of the fleet being trained (r < c->R: its training runs). */
static int64_t run_of(const fleet_ctx *c, int32_t r) {
    const int64_t j = c->act ? c->act[r / c->x->seeds] : r / c->x->seeds;
    const int64_t p = c->pl->order[c->pl->fleet[2 * c->fleet] + j];
    return p * c->x->seeds + r % c->x->seeds;
}

static int write_ckpt(fleet_ctx *c, qf_fleet *f) {
    const size_t sb = qf_fleet_snapshot_bytes(f);
    char *state = (char *)malloc(sb);
    if (!state) {
        fprintf(stderr, "qfleet: out of host memory for a checkpoint of %zu bytes\n", sb);
        return -1;
    }
    if (qf_fleet_snapshot(f, state) != QF_OK) {
        fprintf(stderr, "qfleet: checkpoint: %s\n", f->b->err);
        free(state);
        return -1;
    }
    long curve_bytes = -1;
    if (c->curves && fflush(c->curves) == 0) curve_bytes = ftell(c->curves);
    if (curve_bytes < 0) {
        fprintf(stderr, "qfleet: checkpoint: the curve part of fleet %lld cannot be measured\n", (long long)c->fleet + 1);
        free(state);
        return -1;
    }
    qf_file_header h;
    memset(&h, 0, sizeof h);
    h.kind = QF_FILE_CKPT;
    h.fleet = (uint32_t)c->fleet;
    h.hash = c->hash;
    h.meta[0] = (uint64_t)c->n_logs;
    h.meta[1] = (uint64_t)c->R;
    h.meta[2] = (uint64_t)curve_bytes;
    const void *ptr[2] = {state, c->pts};
    const size_t bytes[2] = {sb, sizeof(qf_log_point) * (size_t)(c->n_logs * c->R)};
    char name[64];
    snprintf(name, sizeof name, "fleet_%lld.ckpt", (long long)c->fleet + 1);
    const int rc = qf_file_write(c->dir, name, &h, 2, ptr, bytes);
    free(state);
    c->last = qf_wall_s();
    return rc;
}

static void progress(fleet_ctx *c, const qf_fleet *f, const qf_log_point *p) {
    if (c->quiet) return;
    /* a terminal: at most 10 updates a second; a log file: a line every 10 s and at a fleet's end */
    const double now = qf_wall_s();
    if (p[0].step < f->cfg.steps && now - c->shown < (c->tty ? 0.1 : 10.0)) return;
    c->shown = now;
    const double frac = (double)p[0].step / (double)f->cfg.steps;
    const double done = c->work_done + frac * c->pl->work[c->fleet];
    /* steps before learning starts run many times faster than the rest: the rate is measured from the
     * first log point with learning (before it, the plan's own estimate: sweep's probes time learning
     * steps, in seconds; or none) */
    if (c->learn_t0 == 0.0 && !isnan(p[0].td_loss)) {
        c->learn_t0 = qf_wall_s();
        c->learn_done0 = done;
    }
    const double lel = qf_wall_s() - c->learn_t0, lrate = (done - c->learn_done0) / (lel > 1e-9 ? lel : 1e-9);
    const double eta = c->learn_t0 == 0.0 || done <= c->learn_done0 ? (c->x->probe ? c->work_total - done : NAN)
                                                                      : (c->work_total - done) / lrate;
    double ret = 0.0;
    int64_t eps = 0, div = 0;
    for (int32_t r = 0; r < c->R; r++) {
        if (p[r].new_episodes) ret += p[r].episodic_return * (double)p[r].new_episodes;
        eps += p[r].new_episodes;
        div += p[r].status != QF_RUN_OK;
    }
    double ev = 0.0; /* mean greedy evaluation return, when this log point has one (eval_every=) */
    int n_ev = 0;
    for (int32_t r = 0; r < c->R; r++)
        if (!isnan(p[r].eval_return)) {
            ev += p[r].eval_return;
            n_ev++;
        }
    char ev_s[40] = "";
    if (n_ev) snprintf(ev_s, sizeof ev_s, "  eval %.4g", ev / n_ev);
    char eta_s[32] = "ETA -";
    if (isfinite(eta)) snprintf(eta_s, sizeof eta_s, "ETA %.0f s", eta);
    fprintf(stderr, "%sfleet %lld/%lld  runs %lld/%lld done  step %lld/%lld  %.3g env-steps/s  return %.4g%s%s  %s%s",
            c->tty ? "\r" : "", (long long)c->fleet + 1, (long long)c->pl->n_fleets, (long long)c->runs_done,
            (long long)c->runs_total, (long long)p[0].step, (long long)f->cfg.steps, p[0].sps,
            eps ? ret / (double)eps : NAN, ev_s, div ? "  DIVERGED" : "", eta_s, c->tty ? "   " : "\n");
    if (div) fprintf(stderr, c->tty ? " %lld" : "  (%lld runs diverged)\n", (long long)div);
}

static void on_log(void *vctx, const qf_fleet *f, const qf_log_point *p) {
    fleet_ctx *c = (fleet_ctx *)vctx;
    if (c->n_logs == c->cap) {
        const int64_t cap = c->cap ? 2 * c->cap : 64;
        qf_log_point *np = (qf_log_point *)realloc(c->pts, sizeof(qf_log_point) * (size_t)(cap * c->R));
        if (!np) {
            c->oom = 1;
            return;
        }
        c->pts = np;
        c->cap = cap;
    }
    memcpy(c->pts + c->n_logs * c->R, p, sizeof(qf_log_point) * (size_t)c->R);
    c->n_logs++;
    for (int32_t r = 0; r < c->R && c->curves && !c->curves_failed; r++) {
        const int64_t run = run_of(c, r);
        for (int m = 0; m < QF_N_METRICS; m++) {
            const double v = qf_metric_value(&p[r], m);
            if (isnan(v)) continue;
            fprintf(c->curves, "%lld,", (long long)run);
            qf_run_name(c->curves, c->x, run / c->x->seeds, (int)(run % c->x->seeds));
            fprintf(c->curves, ",%lld,%lld,%s,%.9g\n", (long long)p[r].step, (long long)p[r].env_steps,
                    qf_metric_names[m], v);
        }
    }
    if (c->curves && !c->curves_failed && (fflush(c->curves) || ferror(c->curves))) {
        fprintf(stderr, "%sqfleet: cannot write %s/fleet_%lld.curves: %s\n", c->tty ? "\n" : "", c->dir,
                (long long)c->fleet + 1, strerror(errno));
        c->curves_failed = 1;
        qf_stop_flag = 1; /* stop: what is not written cannot be kept; the last checkpoint is */
    }
    if (c->every > 0 && qf_wall_s() - c->last >= c->every && p[0].step < f->cfg.steps && !c->ckpt_failed &&
        !c->curves_failed)
        c->ckpt_failed = write_ckpt(c, (qf_fleet *)f) != 0; /* a failed checkpoint is said once */
    progress(c, f, p);
}

/* Check the log points read back from a checkpoint (they are printed and summarized, not indexed,
 * but a forged count would make a wrong table). */
static int check_points(const qf_log_point *p, int64_t n_logs, int32_t R, int64_t t) {
    for (int64_t l = 0; l < n_logs; l++)
        for (int32_t r = 0; r < R; r++) {
            const qf_log_point *q = &p[l * R + r];
            if (q->step < 0 || q->step > t || q->episodes < 0 || q->new_episodes < 0 || q->new_episodes > q->episodes ||
                (q->status != QF_RUN_OK && q->status != QF_RUN_DIVERGED) || q->first_treasure < 0 ||
                q->solved_at < 0 || q->converged_at < 0 || q->distinct < -1)
                return -1;
            if (l > 0 && q->step < p[(l - 1) * R + r].step) return -1;
        }
    return 0;
}

/* Rows of a finished fleet read back: each names the point and seed the plan puts there. */
static int check_rows(const qf_exp_run *rows, int32_t R, const fleet_ctx *c) {
    for (int32_t r = 0; r < R; r++) {
        const qf_exp_run *w = &rows[r];
        if (w->point != c->pl->order[c->pl->fleet[2 * c->fleet] + r / c->x->seeds] ||
            w->seed_index != (int32_t)(r % c->x->seeds) || w->fleet != (int32_t)c->fleet ||
            (w->failed != 0 && w->failed != 1) || (w->pruned != 0 && w->pruned != 1) || w->diverged_at < -1 ||
            (w->last.status != QF_RUN_OK && w->last.status != QF_RUN_DIVERGED) || w->last.episodes < 0)
            return -1;
    }
    return 0;
}

/* The finished fleet's networks (docs/params-format.md): params.npy + params.json when the plan has
 * one fleet, fleet_K.params.npy + fleet_K.params.json each when it has several (their shapes may
 * differ); rows in fleet order, each named as in runs.csv. 0, or -1 with a line on stderr. */
static int export_params(const fleet_ctx *c, qf_fleet *fl, int32_t R) {
    const qf_experiment *x = c->x;
    char stem[64], err[1024];
    if (c->pl->n_fleets == 1) snprintf(stem, sizeof stem, "params");
    else snprintf(stem, sizeof stem, "fleet_%lld.params", (long long)c->fleet + 1);
    char **names = (char **)calloc((size_t)R, sizeof(char *));
    int bad = !names;
    for (int32_t r = 0; !bad && r < R; r++) {
        size_t len = 0;
        FILE *m = open_memstream(&names[r], &len);
        if (!m) {
            bad = 1;
            break;
        }
        const int64_t run = run_of(c, r);
        qf_run_name(m, x, run / x->seeds, (int)(run % x->seeds));
        bad = fclose(m) != 0;
    }
    if (bad) snprintf(err, sizeof err, "out of host memory");
    else if (qf_fleet_export_params(fl, c->dir, stem, (const char *const *)names, err, sizeof err) != 0) bad = 1;
    for (int32_t r = 0; names && r < R; r++) free(names[r]);
    free(names);
    if (bad) fprintf(stderr, "qfleet: fleet %lld: %s\n", (long long)c->fleet + 1, err);
    return bad ? -1 : 0;
}

/* The row of a run that the command skipped (prune=): not trained, no metrics. */
static void pruned_row(qf_exp_run *row, int64_t point, int32_t seed_index, int32_t fleet) {
    memset(row, 0, sizeof *row);
    row->point = point;
    row->seed_index = seed_index;
    row->fleet = fleet;
    row->diverged_at = -1;
    row->pruned = 1;
    row->ret20 = row->last.td_loss = row->last.q_values = row->last.regret = row->last.intrinsic = NAN;
    row->last.episodic_return = row->last.episodic_length = row->last.sps = row->last.grad_norm = NAN;
    row->last.eval_return = NAN;
    row->last.distinct = -1;
}

/* Record a finished fleet: its rows [R] in fleet_K.rows (which marks it finished for --resume).
 * 0, or -1 with one line printed. */
static int write_rows(const fleet_ctx *c, const qf_exp_run *rows, int32_t R) {
    qf_file_header h;
    memset(&h, 0, sizeof h);
    h.kind = QF_FILE_ROWS;
    h.fleet = (uint32_t)c->fleet;
    h.hash = c->hash;
    h.meta[0] = (uint64_t)R;
    const void *ptr[1] = {rows};
    const size_t bytes[1] = {sizeof(qf_exp_run) * (size_t)R};
    char name[64];
    snprintf(name, sizeof name, "fleet_%lld.rows", (long long)c->fleet + 1);
    return qf_file_write(c->dir, name, &h, 1, ptr, bytes);
}

/* A fleet whose every point is skipped: its rows (status pruned), an empty curve part (the merge
 * reads one per fleet) and its rows file, which marks it finished for --resume. */
static int skipped_fleet(fleet_ctx *c, qf_exp_run *rows_out, int32_t R, int64_t *act, unsigned char *skip) {
    const qf_experiment *x = c->x;
    const int64_t i = c->fleet, first = c->pl->fleet[2 * i];
    for (int32_t r = 0; r < R; r++)
        pruned_row(&rows_out[r], c->pl->order[first + r / x->seeds], (int32_t)(r % x->seeds), (int32_t)i);
    free(act);
    free(skip);
    c->act = NULL;
    FILE *f = qf_curve_part_open(c->dir, i + 1, -1);
    const int bad = !f || fclose(f) != 0;
    if (bad || write_rows(c, rows_out, R)) {
        fprintf(stderr, "qfleet: cannot record fleet %lld in %s (disk full?)\n", (long long)i + 1, c->dir);
        return 1;
    }
    if (!c->quiet) fprintf(stderr, "qfleet: fleet %lld: every point pruned (prune=), nothing to train\n", (long long)i + 1);
    if (x->fleet_done) x->fleet_done(x->ctx, x, (int)i, rows_out, R, 0.0);
    return 0;
}

/* Train fleet i (or find it finished). rows_out [R] receives its rows. Returns 0, 1 (runtime
 * failure), 2 (bad input), 130 (stopped, checkpoint written). */
static int run_fleet(fleet_ctx *c, qf_backend *b, qf_exp_run *rows_out, int *trained) {
    const qf_experiment *x = c->x;
    const int64_t i = c->fleet, first = c->pl->fleet[2 * i], count = c->pl->fleet[2 * i + 1];
    const int32_t R = (int32_t)(count * x->seeds);
    char rows_name[64], ck_name[64], cv_name[64], path[QF_RESULTS_PATH_CAP], err[1024];
    snprintf(rows_name, sizeof rows_name, "fleet_%lld.rows", (long long)i + 1);
    snprintf(ck_name, sizeof ck_name, "fleet_%lld.ckpt", (long long)i + 1);
    snprintf(cv_name, sizeof cv_name, "fleet_%lld.curves", (long long)i + 1);
    *trained = 0;
    qf_file_header h;
    char *payload = NULL;
    size_t pn = 0;
    int rr = qf_file_read(c->dir, rows_name, QF_FILE_ROWS, c->hash, (uint32_t)i, &h, &payload, &pn, err, sizeof err);
    if (rr < 0) {
        fprintf(stderr, "qfleet: %s\n", err);
        return 1;
    }
    if (rr == 0) { /* finished before */
        const int ok = h.n_parts == 1 && h.meta[0] == (uint64_t)R && pn == sizeof(qf_exp_run) * (size_t)R &&
                       check_rows((const qf_exp_run *)payload, R, c) == 0;
        if (ok) memcpy(rows_out, payload, pn);
        free(payload);
        if (!ok) {
            fprintf(stderr, "qfleet: %s/%s does not match fleet %lld of this experiment\n", c->dir, rows_name,
                    (long long)i + 1);
            return 1;
        }
        return 0;
    }
    /* the points that train: all, or those the command does not skip (prune=); Ra runs */
    int64_t *act = (int64_t *)malloc(sizeof(int64_t) * (size_t)count), n_act = 0;
    unsigned char *skip = (unsigned char *)calloc((size_t)count, 1);
    if (!act || !skip) {
        free(act);
        free(skip);
        fprintf(stderr, "qfleet: out of host memory\n");
        return 1;
    }
    if (x->skip_points) {
        for (int64_t j = 0; j < count; j++) act[j] = c->pl->order[first + j];
        x->skip_points(x->ctx, x, c->known, c->done, act, count, skip);
    }
    for (int64_t j = 0; j < count; j++)
        if (!skip[j]) act[n_act++] = j;
    const int32_t Ra = (int32_t)(n_act * x->seeds);
    c->act = act;
    c->R = Ra;
    if (n_act == 0) /* every point skipped: its rows, an empty curve part, nothing trained */
        return skipped_fleet(c, rows_out, R, act, skip);
    qf_run_hp *hp = (qf_run_hp *)calloc((size_t)Ra, sizeof(qf_run_hp));
    uint32_t *keys = (uint32_t *)calloc((size_t)Ra * 2, sizeof(uint32_t));
    if (!hp || !keys) {
        free(hp);
        free(keys);
        free(act);
        free(skip);
        c->act = NULL;
        fprintf(stderr, "qfleet: out of host memory\n");
        return 1;
    }
    for (int64_t a = 0; a < n_act; a++)
        for (int64_t s = 0; s < x->seeds; s++) {
            const int64_t j = act[a], p = c->pl->order[first + j], r = a * x->seeds + s;
            qf_fleet_hp_from_config(&x->points[p], &hp[r]);
            /* run (point, seed s): key (seed + s, key1); train's copy c of a point: (seed + s, c) */
            keys[2 * r] = (uint32_t)qf_run_seed(x, p, s);
            keys[2 * r + 1] = x->copies > 1 ? (uint32_t)(s / seeds_per_copy(x)) : x->key1 ? x->key1[p] : (uint32_t)p;
        }
    qf_config fc = x->points[c->pl->order[first + act[0]]];
    fc.runs = n_act;
    fc.seeds = x->seeds;
    qf_fleet fl;
    if (qf_fleet_create(&fl, b, &fc, hp, keys, err, sizeof err) != QF_OK) {
        fprintf(stderr, "qfleet: fleet %lld: %s\n", (long long)i + 1, err);
        free(hp);
        free(keys);
        free(act);
        free(skip);
        c->act = NULL;
        return 2;
    }
    fl.stop = &qf_stop_flag;
    int rc = 0;
    /* train --load FILE: the fleet starts from the file's networks. Loaded before a checkpoint is
     * checked: the file's randomized priors are then part of what the configuration fixes, and the
     * check compares a checkpoint's priors with the fleet's (a restore overwrites the rest) */
    if (x->load && x->load[0] && qf_fleet_load_params(&fl, x->load, err, sizeof err) != 0) {
        fprintf(stderr, "qfleet: --load %s\n", err);
        rc = 2;
    }
    /* a fleet stopped part-way: its checkpoint, checked before anything is restored */
    rr = rc ? 1 : qf_file_read(c->dir, ck_name, QF_FILE_CKPT, c->hash, (uint32_t)i, &h, &payload, &pn, err, sizeof err);
    int64_t curve_bytes = -1;
    if (rr < 0) {
        fprintf(stderr, "qfleet: %s\n", err);
        rc = 1;
    } else if (rr == 0) {
        const size_t sb = qf_fleet_snapshot_bytes(&fl);
        const uint64_t n_logs = h.meta[0], max_logs = (uint64_t)(fc.steps / fc.log_every) + 2;
        snprintf(path, sizeof path, "%s/%s", c->dir, cv_name);
        struct stat st;
        const int64_t part_len = stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
        if (h.n_parts != 2 || h.part[0] != sb || h.meta[1] != (uint64_t)Ra || n_logs > max_logs ||
            h.part[1] != sizeof(qf_log_point) * n_logs * (uint64_t)Ra) {
            fprintf(stderr, "qfleet: %s/%s does not match fleet %lld of this experiment (sizes differ)\n", c->dir,
                    ck_name, (long long)i + 1);
            rc = 1;
        } else if (part_len < 0 || h.meta[2] > (uint64_t)part_len) {
            fprintf(stderr, "qfleet: %s is missing or shorter than its checkpoint says; remove %s/%s to train fleet "
                            "%lld again\n", path, c->dir, ck_name, (long long)i + 1);
            rc = 1;
        } else if (qf_fleet_check_snapshot(&fl, payload, fc.steps, err, sizeof err) != QF_OK) {
            fprintf(stderr, "qfleet: %s/%s: %s\n", c->dir, ck_name, err);
            rc = 1;
        } else if (!(c->pts = (qf_log_point *)malloc(sizeof(qf_log_point) * (size_t)(n_logs * (uint64_t)Ra + 1)))) {
            fprintf(stderr, "qfleet: out of host memory\n");
            rc = 1;
        } else if (memcpy(c->pts, payload + sb, sizeof(qf_log_point) * (size_t)(n_logs * (uint64_t)Ra)),
                   check_points(c->pts, (int64_t)n_logs, Ra, fc.steps)) { /* copied first: the payload is unaligned */
            fprintf(stderr, "qfleet: %s/%s: its log points are out of range (forged or damaged)\n", c->dir, ck_name);
            rc = 1;
        } else if (qf_fleet_restore(&fl, payload) != QF_OK) {
            fprintf(stderr, "qfleet: restoring %s/%s: %s\n", c->dir, ck_name, b->err);
            rc = 1;
        } else if (n_logs && c->pts[(n_logs - 1) * (uint64_t)Ra].step > fl.t) {
            fprintf(stderr, "qfleet: %s/%s: its log points run past its step counter (forged or damaged)\n", c->dir,
                    ck_name);
            rc = 1;
        } else {
            c->n_logs = c->cap = (int64_t)n_logs;
            curve_bytes = (int64_t)h.meta[2];
            if (!c->quiet)
                fprintf(stderr, "qfleet: fleet %lld resumes at step %lld of %lld\n", (long long)i + 1,
                        (long long)fl.t, (long long)fc.steps);
        }
        free(payload);
    }
    /* the curve part: cut back to the checkpoint's length, or begun anew */
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/%s", c->dir, cv_name);
        if (curve_bytes < 0 && access(path, F_OK) == 0 && !c->quiet) /* it ran before, and stopped unsaved */
            fprintf(stderr, "qfleet: fleet %lld starts again from step 0: it stopped before its first checkpoint "
                            "(checkpoint_seconds=%g)\n", (long long)i + 1, x->base->checkpoint_seconds);
        if (!(c->curves = qf_curve_part_open(c->dir, i + 1, curve_bytes))) rc = 1;
    }
    const double t0 = qf_wall_s();
    int trc = QF_OK;
    if (rc == 0) {
        c->last = qf_wall_s();
        *trained = 1;
        trc = qf_fleet_train(&fl, fc.steps - fl.t, on_log, c, err, sizeof err);
        if (c->tty && !c->quiet) fprintf(stderr, "\n");
        if (trc != QF_OK)
            fprintf(stderr, "qfleet: fleet %lld: training failed: %s (its runs are marked failed; the other fleets go "
                            "on)\n", (long long)i + 1, err);
        if (c->oom) {
            fprintf(stderr, "qfleet: fleet %lld: out of host memory for its log points\n", (long long)i + 1);
            rc = 1;
        } else if (c->curves_failed) {
            rc = 1;
        } else if (qf_stop_flag && fl.t < fc.steps && trc == QF_OK) {
            const int cw = write_ckpt(c, &fl);
            fprintf(stderr, "qfleet: interrupted at step %lld of %lld of fleet %lld; %s\n", (long long)fl.t,
                    (long long)fc.steps, (long long)i + 1,
                    cw ? "the checkpoint could not be written (the last one, if any, is kept)" : "checkpoint written");
            rc = 130;
        }
    }
    if (rc == 0) {
        int64_t a = 0; /* the training index of point r / seeds */
        for (int32_t r = 0; r < R; r++) {
            qf_exp_run *row = &rows_out[r];
            const int64_t j = r / x->seeds;
            if (skip[j]) {
                pruned_row(row, c->pl->order[first + j], (int32_t)(r % x->seeds), (int32_t)i);
                continue;
            }
            while (act[a] != j) a++;
            const int32_t ra = (int32_t)(a * x->seeds + r % x->seeds);
            memset(row, 0, sizeof *row);
            row->point = c->pl->order[first + j];
            row->seed_index = (int32_t)(r % x->seeds);
            row->fleet = (int32_t)i;
            row->diverged_at = fl.diverged_at[ra];
            row->failed = trc != QF_OK || !c->n_logs;
            if (row->failed) {
                row->ret20 = row->last.td_loss = row->last.q_values = row->last.regret = row->last.intrinsic = NAN;
                row->last.episodic_return = row->last.episodic_length = row->last.sps = row->last.grad_norm = NAN;
                row->last.distinct = -1;
                continue;
            }
            row->last = c->pts[(c->n_logs - 1) * Ra + ra];
            int64_t cnt;
            row->ret20 = qf_recent_return(c->pts, c->n_logs, Ra, ra, &cnt);
        }
        /* its curves are flushed; its rows mark it finished; then no checkpoint */
        int wrc = c->curves && (fflush(c->curves) || fsync(fileno(c->curves)));
        if (c->curves) wrc |= fclose(c->curves) != 0;
        c->curves = NULL;
        if (wrc || write_rows(c, rows_out, R)) {
            fprintf(stderr, "qfleet: cannot record fleet %lld in %s (disk full?); the earlier fleets are kept\n",
                    (long long)i + 1, c->dir);
            rc = 1;
        } else {
            snprintf(path, sizeof path, "%s/%s", c->dir, ck_name);
            remove(path);
            if (export_params(c, &fl, Ra)) rc = 1;
            if (x->fleet_done) x->fleet_done(x->ctx, x, (int)i, rows_out, R, qf_wall_s() - t0);
        }
    }
    if (c->curves) fclose(c->curves);
    c->curves = NULL;
    free(c->pts);
    c->pts = NULL;
    c->n_logs = c->cap = 0;
    qf_fleet_destroy(&fl);
    free(hp);
    free(keys);
    free(act);
    free(skip);
    c->act = NULL;
    return rc;
}

/* ---- the results ---------------------------------------------------------------------------------- */

static int64_t deadline_of(const qf_config *c) {
    const int n = c->env_params.deep_sea.size;
    return n >= 40 ? INT64_MAX : ((int64_t)1 << n) + 100;
}

static int write_runs(FILE *f, const qf_experiment *x, const qf_exp_run *rows) {
    fprintf(f, "run,name,fleet,point,env,explore");
    for (int a = 0; a < x->n_axes; a++) fprintf(f, ",%s", x->axis_keys[a]);
    if (x->copies > 1) fprintf(f, ",run_copy");
    fprintf(f, ",seed,status,diverged_at_update,episodes,return_last20,eval_return,td_loss,q_values,regret,"
               "first_treasure,episodes_to_solve,solved,episodes_to_converge,distinct_states,intrinsic_reward\n");
    const int64_t n = x->n_points * x->seeds;
    for (int64_t i = 0; i < n; i++) {
        const qf_exp_run *w = &rows[i];
        const qf_config *c = &x->points[w->point];
        fprintf(f, "%lld,", (long long)i);
        qf_run_name(f, x, w->point, w->seed_index);
        fprintf(f, ",%d,%lld,%s,%s", w->fleet + 1, (long long)w->point, qf_env_spec_of(c->env)->name,
                qf_config_choice_name("explore", c->explore));
        for (int a = 0; a < x->n_axes; a++) fprintf(f, ",\"%s\"", x->axis_values[w->point * x->n_axes + a]);
        if (x->copies > 1) fprintf(f, ",%lld", (long long)(w->seed_index / seeds_per_copy(x)));
        fprintf(f, ",%llu,%s,%d,%lld", (unsigned long long)qf_run_seed(x, w->point, w->seed_index),
                w->failed ? "failed" : w->pruned ? "pruned" : w->diverged_at >= 0 ? "diverged" : "finished", w->diverged_at,
                (long long)w->last.episodes);
        qf_csv_num(f, w->ret20);
        qf_csv_num(f, qf_metric_value(&w->last, 3));
        qf_csv_num(f, w->last.td_loss);
        qf_csv_num(f, w->last.q_values);
        qf_csv_num(f, w->last.regret);
        qf_csv_num(f, w->last.first_treasure ? (double)w->last.first_treasure : NAN);
        qf_csv_num(f, w->last.solved_at ? (double)w->last.solved_at : NAN);
        if (c->env == QF_ENV_DEEP_SEA)
            fprintf(f, ",%d", qf_exp_solved(w, c));
        else
            fprintf(f, ",");
        qf_csv_num(f, w->last.converged_at ? (double)w->last.converged_at : NAN);
        qf_csv_num(f, w->last.distinct >= 0 ? (double)w->last.distinct : NAN);
        qf_csv_num(f, w->last.intrinsic);
        fprintf(f, "\n");
    }
    return ferror(f) ? -1 : 0;
}

int qf_exp_solved(const qf_exp_run *w, const qf_config *c) {
    return !w->failed && !w->pruned && w->last.status == QF_RUN_OK && w->last.solved_at > 0 && w->last.solved_at < deadline_of(c);
}

/* Merge the fleets' parts into the final files (rank 0, every fleet finished). */
static int finish(const qf_experiment *x, const plan *pl, const char *dir, uint64_t hash, qf_exp_run *rows,
                  double t_start) {
    char tmp[QF_RESULTS_PATH_CAP], path[QF_RESULTS_PATH_CAP], err[1024];
    const int64_t n_runs = x->n_points * x->seeds;
    /* rows of every fleet (some trained by other ranks), by run number */
    qf_exp_run *fr = (qf_exp_run *)malloc(sizeof(qf_exp_run) * (size_t)n_runs);
    if (!fr) {
        fprintf(stderr, "qfleet: out of host memory\n");
        return 1;
    }
    for (int64_t i = 0; i < pl->n_fleets; i++) {
        char name[64];
        snprintf(name, sizeof name, "fleet_%lld.rows", (long long)i + 1);
        qf_file_header h;
        char *p = NULL;
        size_t pn;
        const int32_t R = (int32_t)(pl->fleet[2 * i + 1] * x->seeds);
        fleet_ctx c;
        memset(&c, 0, sizeof c);
        c.x = x;
        c.pl = pl;
        c.fleet = i;
        const int rr = qf_file_read(dir, name, QF_FILE_ROWS, hash, (uint32_t)i, &h, &p, &pn, err, sizeof err);
        if (rr != 0 || h.meta[0] != (uint64_t)R || pn != sizeof(qf_exp_run) * (size_t)R ||
            check_rows((const qf_exp_run *)p, R, &c)) {
            fprintf(stderr, "qfleet: %s\n", rr < 0 ? err : "a finished fleet's results are missing or wrong");
            free(p);
            free(fr);
            return 1;
        }
        const qf_exp_run *src = (const qf_exp_run *)p;
        for (int32_t r = 0; r < R; r++) fr[src[r].point * x->seeds + src[r].seed_index] = src[r];
        free(p);
    }
    memcpy(rows, fr, sizeof(qf_exp_run) * (size_t)n_runs);
    free(fr);
    /* curves.csv: the parts in fleet order, one header */
    if (qf_curves_merge(dir, pl->n_fleets)) return 1;
    int wrc = 0;
    FILE *f = qf_open_atomic(dir, "config.txt", tmp, sizeof tmp);
    if (f) {
        qf_config_print_for(f, x->base, x->command);
        if (x->config_notes) x->config_notes(x->ctx, f);
        wrc |= qf_close_atomic(f, dir, "config.txt", tmp);
    } else {
        wrc = -1;
    }
    f = qf_open_atomic(dir, "summary.md", tmp, sizeof tmp);
    if (f) {
        fprintf(f, "# qfleet %s\n\n%lld point%s x %lld seed%s%s = %lld run%s.\n\n", x->command,
                (long long)x->n_points, x->n_points == 1 ? "" : "s", (long long)seeds_per_copy(x),
                seeds_per_copy(x) == 1 ? "" : "s", x->copies > 1 ? " per copy" : "", (long long)n_runs,
                n_runs == 1 ? "" : "s");
        if (x->report && x->report(x->ctx, x, rows, f, dir)) wrc = -1;
        wrc |= qf_close_atomic(f, dir, "summary.md", tmp);
    } else {
        wrc = -1;
    }
    /* runs.csv last, and only when everything before it is written: its presence marks the folder
     * complete (a full disk here must leave a folder --resume finishes) */
    f = wrc ? NULL : qf_open_atomic(dir, "runs.csv", tmp, sizeof tmp);
    if (f) {
        wrc |= write_runs(f, x, rows);
        wrc |= qf_close_atomic(f, dir, "runs.csv", tmp);
    } else {
        wrc = -1;
    }
    if (wrc) {
        fprintf(stderr, "qfleet: writing the results into %s failed: %s (the fleets' parts are kept; --resume %s "
                        "writes them again)\n", dir, strerror(errno), dir);
        return 1;
    }
    qf_curve_parts_remove(dir, pl->n_fleets); /* merged: the parts go */
    for (int64_t i = 0; i < pl->n_fleets; i++) {
        snprintf(path, sizeof path, "%s/fleet_%lld.rows", dir, (long long)i + 1);
        remove(path);
    }
    int64_t n_failed = 0;
    for (int64_t i = 0; i < n_runs; i++) n_failed += rows[i].failed;
    printf("\n%lld run%s (%.1f s in this process); results: %s/{runs.csv,curves.csv,summary.md,config.txt}\n",
           (long long)n_runs, n_runs == 1 ? "" : "s", qf_wall_s() - t_start, dir);
    if (n_failed) {
        fprintf(stderr, "qfleet: %lld runs failed (status failed in runs.csv); the others finished\n",
                (long long)n_failed);
        return 1;
    }
    return 0;
}

/* ---- the runner ------------------------------------------------------------------------------------ */

void qf_experiment_init(qf_experiment *x, const char *command, const char *dir_prefix, const qf_words *ws,
                        const qf_config *base) {
    memset(x, 0, sizeof *x);
    x->command = command;
    x->dir_prefix = dir_prefix;
    x->words = ws;
    x->base = base;
    x->dry_run = ws->dry_run;
    x->quiet = ws->quiet;
    x->overwrite = ws->overwrite;
    x->resume = ws->resume;
    x->load = ws->load;
}

int qf_experiment_run(qf_experiment *x, qf_backend *b, const qf_dist *d) {
    char dir[QF_RESULTS_DIR_CAP], err[1024];
    const uint64_t hash = qf_experiment_hash(x->command, x->words);
    const int64_t n_runs = x->n_points * x->seeds;
    int rc = 0, lock_fd = -1, created = 0, any_trained = 0;
    plan pl;
    memset(&pl, 0, sizeof pl);
    qf_exp_run *rows = (qf_exp_run *)calloc((size_t)n_runs, sizeof(qf_exp_run));
    char **shapes = shapes_of(x);
    double probe_load = 1.0;
    if (!rows || !shapes) {
        fprintf(stderr, "qfleet: out of host memory for %lld runs\n", (long long)n_runs);
        rc = 1;
        goto done;
    }
    /* the folder: rank 0 names it (its clock), locks it, reads or writes the plan */
    if (x->resume[0])
        snprintf(dir, sizeof dir, "%s", x->resume);
    else if (x->base->out[0])
        snprintf(dir, sizeof dir, "%s", x->base->out);
    else {
        qf_results_dir(dir, sizeof dir, NULL, x->dir_prefix);
        const size_t len = strlen(dir);
        for (int k = 2; k < 1000 && access(dir, F_OK) == 0; k++) /* two runs in one second */
            snprintf(dir + len, sizeof dir - len, "-%d", k);
    }
    if (d->rank == 0 && !x->dry_run) {
        if (x->resume[0]) {
            struct stat st;
            if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "qfleet: --resume %s: not a folder\n", dir);
                rc = 2;
            }
        } else if ((created = access(dir, F_OK) != 0, qf_mkdir_p(dir))) {
            fprintf(stderr, "qfleet: cannot create the results folder %s: %s\n", dir, strerror(errno));
            rc = 1;
        }
        if (rc == 0) {
            lock_fd = qf_results_lock(dir);
            if (lock_fd < 0) rc = lock_fd == -2 ? 2 : 1;
        }
        if (rc == 0 && x->resume[0]) {
            char path[QF_RESULTS_PATH_CAP];
            snprintf(path, sizeof path, "%s/runs.csv", dir);
            if (access(path, F_OK) == 0) {
                printf("qfleet: %s is complete (runs.csv is written); nothing to train\n", dir);
                rc = -1; /* done, exit 0 */
            } else if (read_plan(dir, hash, x, shapes, &pl, err, sizeof err)) {
                fprintf(stderr, "qfleet: %s\n", err);
                rc = 2;
            }
        } else if (rc == 0 && qf_results_held(dir, 0)) {
            if (!x->overwrite) {
                char saved[32] = "";
                qf_words tmp_ws;
                memset(&tmp_ws, 0, sizeof tmp_ws);
                if (qf_experiment_read_words(dir, saved, sizeof saved, &tmp_ws, err, sizeof err)) saved[0] = 0;
                qf_words_free(&tmp_ws);
                char path[QF_RESULTS_PATH_CAP];
                snprintf(path, sizeof path, "%s/runs.csv", dir);
                if (saved[0] && access(path, F_OK) != 0)
                    fprintf(stderr, "qfleet: %s already holds a stopped `%s` run; resume it with `qfleet %s --resume %s`, "
                                    "replace it with --overwrite, or choose another out=\n", dir, saved, saved, dir);
                else
                    fprintf(stderr, "qfleet: %s already holds results; replace them with --overwrite, or choose another "
                                    "out=\n", dir);
                rc = 2;
            } else {
                qf_results_held(dir, 1);
            }
        }
    }
    if (d->rank == 0 && rc == 0 && !pl.n_fleets) rc = make_plan(x, b, shapes, &pl, &probe_load);
    rc = qf_dist_max(d, rc);
    if (rc) goto done;
    if (d->rank == 0 && !x->dry_run && !x->resume[0] && (qf_experiment_write_words(dir, x->command, x->words) || write_plan(dir, hash, x, &pl)))
        rc = 1;
    rc = qf_dist_max(d, rc);
    if (rc) goto done;
    /* every rank holds the plan */
    {
        int64_t nf = pl.n_fleets;
        qf_dist_bcast(d, &nf, sizeof nf);
        if (d->rank > 0) {
            pl.n_fleets = nf;
            pl.order = (int64_t *)malloc(sizeof(int64_t) * (size_t)x->n_points);
            pl.fleet = (int64_t *)malloc(2 * sizeof(int64_t) * (size_t)nf);
            pl.work = (double *)malloc(sizeof(double) * (size_t)nf);
            if (!pl.order || !pl.fleet || !pl.work) abort(); /* a few bytes per point */
        }
        qf_dist_bcast(d, pl.order, sizeof(int64_t) * (size_t)x->n_points);
        qf_dist_bcast(d, pl.fleet, 2 * sizeof(int64_t) * (size_t)nf);
        qf_dist_bcast(d, pl.work, sizeof(double) * (size_t)nf);
        qf_dist_bcast(d, dir, sizeof dir);
    }
    double work_total = 0.0;
    for (int64_t i = 0; i < pl.n_fleets; i++) work_total += pl.work[i];
    if (d->rank == 0) {
        char copies[48] = "";
        if (x->copies > 1) snprintf(copies, sizeof copies, " x %lld copies", (long long)x->copies);
        printf("qfleet %s: %lld point%s%s x %lld seed%s = %lld run%s in %lld fleet%s on %s (%s)%s\n", x->command,
               (long long)x->n_points, x->n_points == 1 ? "" : "s", copies, (long long)seeds_per_copy(x),
               seeds_per_copy(x) == 1 ? "" : "s", (long long)n_runs, n_runs == 1 ? "" : "s", (long long)pl.n_fleets, pl.n_fleets == 1 ? "" : "s", b->name, b->device,
               d->size > 1 ? ", across MPI ranks" : "");
        if (x->describe) x->describe(x->ctx, stdout);
        if (x->dry_run) {
            printf("%6s %7s %7s %14s %12s  %s\n", "fleet", "points", "runs", "bytes/run", x->probe ? "est. time" : "run-steps",
                   "shape");
            for (int64_t i = 0; i < pl.n_fleets; i++) {
                const qf_config *c = &x->points[pl.order[pl.fleet[2 * i]]];
                char hid[64];
                qf_config_get(c, "hidden", hid, sizeof hid);
                char bytes[32] = "-";
                if (pl.bytes && pl.bytes[i] > 0) snprintf(bytes, sizeof bytes, "%.4g", pl.bytes[i]);
                printf("%6lld %7lld %7lld %14s %11.4g%s  %s envs=%lld hidden=%s batch=%lld buffer=%lld steps=%lld\n",
                       (long long)i + 1, (long long)pl.fleet[2 * i + 1], (long long)(pl.fleet[2 * i + 1] * x->seeds),
                       bytes, pl.work[i], x->probe ? "s" : " ", qf_env_spec_of(c->env)->name, (long long)c->envs, hid,
                       (long long)c->batch, (long long)c->buffer, (long long)c->steps);
            }
            double est = work_total;
            if (!x->probe) { /* train, compare: the plan packs by count; the estimate times each point once */
                est = 0.0;
                for (int64_t i = 0; i < pl.n_fleets && !isnan(est); i++)
                    for (int64_t j = 0; j < pl.fleet[2 * i + 1]; j++) {
                        const qf_config *c = &x->points[pl.order[pl.fleet[2 * i] + j]];
                        double bytes, us, load;
                        char err[768];
                        if (probe(b, c, &bytes, &us, &load, err, sizeof err)) {
                            est = NAN;
                            break;
                        }
                        est += 1e-6 * us * (double)x->seeds * (double)c->steps;
                        probe_load = load > probe_load ? load : probe_load;
                    }
            }
            if (!isnan(est)) {
                printf("estimated time: %.0f s of CPU time (one run per strategy and shape timed for about 0.05 s, in "
                       "CPU time so that other processes do not inflate it; runs add up linearly in this estimate, so "
                       "a fleet spread over several cores or a GPU takes less wall time).", est);
                if (probe_load > 1.5)
                    printf(" Other processes are competing for this machine now: a probe took %.1fx its CPU time in "
                           "wall time.", probe_load);
            }
            printf(" --dry-run: nothing was trained.\n");
        } else {
            printf("results: %s%s%s\n", dir, x->probe ? "" : "", x->resume[0] ? ", resuming" : "");
        }
        fflush(stdout);
    }
    if (x->dry_run) goto done;

    /* train this rank's fleets */
    qf_stop_signals_on();
    const double t_start = qf_wall_s();
    fleet_ctx c;
    memset(&c, 0, sizeof c);
    c.x = x;
    c.pl = &pl;
    c.dir = dir;
    c.hash = hash;
    c.every = x->base->checkpoint_seconds;
    c.quiet = x->quiet || d->rank > 0;
    c.tty = isatty(2);
    c.work_total = work_total;
    c.runs_total = n_runs;
    qf_exp_run *frows = (qf_exp_run *)calloc((size_t)n_runs, sizeof(qf_exp_run));
    qf_exp_run *known = x->skip_points ? (qf_exp_run *)calloc((size_t)n_runs, sizeof(qf_exp_run)) : NULL;
    unsigned char *done_runs = x->skip_points ? (unsigned char *)calloc((size_t)n_runs, 1) : NULL;
    c.known = known;
    c.done = done_runs;
    if (!frows || (x->skip_points && (!known || !done_runs))) {
        fprintf(stderr, "qfleet: out of host memory\n");
        rc = 1;
    }
    for (int64_t i = 0; i < pl.n_fleets && rc == 0; i++) {
        const double w = pl.work[i];
        const int64_t R = pl.fleet[2 * i + 1] * x->seeds;
        if (i % d->size != d->rank) { /* another rank's fleet: counted as done for the progress line */
            c.work_done += w;
            c.work_at_start += w;
            continue;
        }
        if (qf_stop_flag) {
            rc = 130;
            break;
        }
        c.fleet = i;
        c.R = (int32_t)R;
        int trained = 0;
        const int frc = run_fleet(&c, b, frows, &trained);
        if (!trained) c.work_at_start += w; /* found finished: not this process's work */
        for (int64_t r = 0; known && frc == 0 && r < R; r++) { /* what skip_points judges from */
            const int64_t run = frows[r].point * x->seeds + frows[r].seed_index;
            known[run] = frows[r];
            done_runs[run] = 1;
        }
        any_trained |= trained || frc == 0;
        c.work_done += w;
        c.runs_done += R;
        if (frc) rc = frc;
    }
    free(frows);
    free(known);
    free(done_runs);
    qf_stop_signals_off();
    if (rc == 2 && !any_trained && !x->resume[0] && d->size == 1) {
        /* refused before anything was trained (a fleet that does not fit): no folder is left behind */
        qf_results_held(dir, 1);
        if (created) {
            char path[QF_RESULTS_PATH_CAP];
            snprintf(path, sizeof path, "%s/.lock", dir);
            remove(path);
            rmdir(dir);
        }
    }
    if (rc == 130 && d->rank == 0)
        fprintf(stderr, "qfleet: resume with: qfleet %s --resume %s\n", x->command, dir);
    /* every rank's fleets are recorded in the folder: rank 0 merges them */
    {
        const int rc_own = rc;
        rc = qf_dist_max(d, rc);
        qf_dist_barrier(d);
        if (d->rank > 0 || rc) {
            rc = rc_own ? rc_own : rc;
            goto done;
        }
    }
    rc = finish(x, &pl, dir, hash, rows, t_start);
done:
    if (rc == -1) rc = 0;
    if (lock_fd >= 0) close(lock_fd);
    plan_free(&pl);
    shapes_free(shapes, x->n_points);
    free(rows);
    return rc;
}

/* ---- the runner's services for bandits, irl and infer --------------------------------------------- */

int qf_results_begin(const char *command, const char *out, const qf_words *ws, char *dir, size_t len, int *created) {
    *created = 0;
    if (!ws->resume[0]) {
        const int fd = qf_results_claim(out, command, command, ws->overwrite, dir, len, created);
        if (fd >= 0 && qf_experiment_write_words(dir, command, ws)) {
            qf_results_release(fd, dir, *created, 1);
            return -1;
        }
        return fd;
    }
    snprintf(dir, len, "%s", ws->resume);
    return qf_results_lock(dir);
}

int qf_results_complete(const char *dir) {
    char path[QF_RESULTS_PATH_CAP];
    snprintf(path, sizeof path, "%s/runs.csv", dir);
    if (access(path, F_OK) != 0) return 0;
    printf("qfleet: %s is complete (runs.csv is written); nothing to run\n", dir);
    return 1;
}

FILE *qf_curve_part_open(const char *dir, int64_t fleet, int64_t keep_bytes) {
    char path[QF_RESULTS_PATH_CAP];
    snprintf(path, sizeof path, "%s/fleet_%lld.curves", dir, (long long)fleet);
    FILE *f = NULL;
    if (keep_bytes >= 0) {
        if (truncate(path, (off_t)keep_bytes) == 0) f = fopen(path, "a");
    } else if ((f = fopen(path, "w")) && (fprintf(f, "run,name,step,env_steps,metric,value\n") < 0 || fflush(f))) {
        fclose(f);
        f = NULL;
    }
    if (!f) fprintf(stderr, "qfleet: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

void qf_curve_row(FILE *f, int64_t run, const char *name, int64_t step, int64_t env_steps, const char *metric,
                  double value) {
    if (isnan(value)) return;
    fprintf(f, "%lld,%s,%lld,", (long long)run, name, (long long)step);
    if (env_steps >= 0) fprintf(f, "%lld", (long long)env_steps);
    fprintf(f, ",%s,%.9g\n", metric, value);
}

int64_t qf_curve_part_sync(FILE *f, const char *dir) {
    long n = -1;
    if (fflush(f) == 0 && !ferror(f)) n = ftell(f);
    if (n < 0) fprintf(stderr, "qfleet: cannot write %s/fleet_1.curves: %s\n", dir, strerror(errno));
    return n;
}

int qf_curves_merge(const char *dir, int64_t n_parts) {
    char tmp[QF_RESULTS_PATH_CAP], path[QF_RESULTS_PATH_CAP];
    FILE *cv = qf_open_atomic(dir, "curves.csv", tmp, sizeof tmp);
    if (!cv) {
        fprintf(stderr, "qfleet: cannot write into %s: %s\n", dir, strerror(errno));
        return -1;
    }
    fprintf(cv, "run,name,step,env_steps,metric,value\n");
    char *line = NULL;
    size_t cap = 0;
    for (int64_t i = 0; i < n_parts; i++) {
        snprintf(path, sizeof path, "%s/fleet_%lld.curves", dir, (long long)i + 1);
        FILE *f = fopen(path, "r");
        if (!f) {
            fprintf(stderr, "qfleet: %s is missing\n", path);
            free(line);
            fclose(cv);
            remove(tmp);
            return -1;
        }
        int first = 1;
        while (getline(&line, &cap, f) >= 0) {
            if (!first) fputs(line, cv);
            first = 0;
        }
        fclose(f);
    }
    free(line);
    return qf_close_atomic(cv, dir, "curves.csv", tmp);
}

void qf_curve_parts_remove(const char *dir, int64_t n_parts) {
    char path[QF_RESULTS_PATH_CAP];
    for (int64_t i = 0; i < n_parts; i++) {
        snprintf(path, sizeof path, "%s/fleet_%lld.curves", dir, (long long)i + 1);
        remove(path);
    }
}

void qf_run_name_parts(FILE *f, const char *env, const char *explore, int n_axes, const char *const *keys,
                       const char *const *values, uint64_t seed) {
    fprintf(f, "%s__%s", env, explore);
    for (int a = 0; a < n_axes; a++) fprintf(f, "__%s=%s", keys[a], values[a]);
    fprintf(f, "__seed%llu", (unsigned long long)seed);
}
