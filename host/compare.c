/* compare.c — `qfleet compare` and the main job: DeepSea exploration comparison (see compare.h). */
#define _POSIX_C_SOURCE 200809L
#include "compare.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "experiment.h"
#include "fleet.h"
#include "results.h"

#define MAX_STRATS QF_EXPLORE_N

/* Tabular soft Q-learning (an embedding of the one-hot cell, no hidden layer), small batches,
 * bsuite BootDQN's target period of 4 updates; 5 seeds. Sized so that the whole comparison (sizes
 * 10, 15, 20; 3000 episodes) takes under a minute on a 2-core CPU; examples/compare_gpu.yaml is the
 * larger preset with bsuite boot_dqn's MLP. */
const char *const qf_compare_defaults[] = {"env=deep_sea", "hidden=[]", "batch=32", "learning_starts=32",
                                           "lr=0.01", "target_every=4", "seeds=5"};
const int qf_compare_n_defaults = (int)(sizeof qf_compare_defaults / sizeof qf_compare_defaults[0]);

/* Each strategy's own words besides explore= (the user's words come after them and win). The order
 * is part of the results: a strategy's index is the second word of its runs' keys. */
typedef struct strategy {
    int explore; /* QF_EXPLORE_* */
    const char *words[5];
    const char *doc;
} strategy;
static const strategy strategies[] = {
    {QF_EXPLORE_EPSILON, {"eps_start=0.1", "eps_end=0.1", NULL}, "epsilon-greedy, epsilon = 0.1"},
    {QF_EXPLORE_BOLTZMANN, {"alpha=0.1", NULL}, "soft-Q targets and Boltzmann sampling at alpha = 0.1"},
    /* prior_scale 10: a tabular head's prior is its only source of optimism for untried (state, action)
     * pairs, and at scale 3 DeepSea-20 was solved in 0 of 5 seeds within 3000 episodes, at 10 in 40 of
     * 40 (median 467 episodes; docs/design-notes.md, "The main job's agent"). */
    {QF_EXPLORE_BOOTSTRAP, {"prior_scale=10", NULL}, "10 heads with randomized priors (scale 10), one head per episode"},
    {QF_EXPLORE_COUNT, {"beta=0.5", "eps_start=0.1", "eps_end=0.1", NULL}, "reward bonus beta/sqrt(N(s')) and acting on Q + beta/sqrt(N(s,a)+1), beta = 0.5; epsilon = 0.1"},
    {QF_EXPLORE_RND, {"eps_start=0.1", "eps_end=0.1", NULL}, "RND bonus, epsilon = 0.1"},
};
#define N_STRATEGIES ((int)(sizeof strategies / sizeof strategies[0]))

static const char *sname(int i) { return qf_config_choice_name("explore", strategies[i].explore); }

static int find_strategy(int explore) {
    for (int i = 0; i < N_STRATEGIES; i++)
        if (strategies[i].explore == explore) return i;
    return -1;
}

typedef struct plan {
    int n_strats, n_sizes;
    int strat[MAX_STRATS];
    int size[QF_MAX_LIST];
} plan;

/* The plan from explorers= and sizes= (parsed by the key table: known, distinct, non-empty). */
static int make_plan(const qf_config *cfg, plan *pl, char *msg, size_t n) {
    pl->n_strats = cfg->n_explorers;
    for (int i = 0; i < cfg->n_explorers; i++) {
        pl->strat[i] = find_strategy(cfg->explorers[i]);
        if (pl->strat[i] < 0) {
            snprintf(msg, n, "explorers: compare has no preset for '%s'", qf_config_choice_name("explore", cfg->explorers[i]));
            return -1;
        }
    }
    pl->n_sizes = cfg->n_sizes;
    for (int i = 0; i < cfg->n_sizes; i++) {
        pl->size[i] = cfg->sizes[i];
        for (int j = 0; j < i; j++)
            if (pl->size[j] == pl->size[i]) {
                snprintf(msg, n, "sizes names %d twice (each size once; seeds= repeats a run)", pl->size[i]);
                return -1;
            }
    }
    return 0;
}

/* cfg = defaults, then strategy st's words (st < 0: none), then the user's words, then tail. */
static int build_config(qf_config *cfg, int st, int argc, char **argv, const char *tail, char *msg, size_t n) {
    char **words = (char **)malloc(sizeof(char *) * (size_t)(qf_compare_n_defaults + 8 + argc));
    char explore_word[64];
    if (!words) {
        snprintf(msg, n, "out of memory");
        return -1;
    }
    int k = 0;
    for (int i = 0; i < qf_compare_n_defaults; i++) words[k++] = (char *)qf_compare_defaults[i];
    if (st >= 0) {
        snprintf(explore_word, sizeof explore_word, "explore=%s", sname(st));
        words[k++] = explore_word;
        for (int i = 0; strategies[st].words[i]; i++) words[k++] = (char *)strategies[st].words[i];
    }
    for (int i = 0; i < argc; i++) words[k++] = argv[i];
    if (tail) words[k++] = (char *)tail;
    qf_config_default(cfg);
    const int rc = qf_config_parse(cfg, k, words, msg, n);
    free(words);
    return rc;
}

int qf_compare_config(int argc, char **argv, qf_config *cfg) {
    char msg[768];
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "env.size=", 9) == 0) {
            fprintf(stderr, "qfleet: compare sets env.size from sizes= (e.g. sizes=10,15,20)\n");
            return 2;
        }
        if (strncmp(argv[i], "explore=", 8) == 0) {
            fprintf(stderr, "qfleet: compare runs every strategy in explorers= (e.g. explorers=bootstrap,count)\n");
            return 2;
        }
    }
    for (int i = 0; i < argc; i++)
        if (qf_config_key_for_command(argv[i], QF_CMD_COMPARE, msg, sizeof msg)) {
            fprintf(stderr, "qfleet: %s\n", msg);
            return 2;
        }
    plan pl;
    if (build_config(cfg, -1, argc, argv, NULL, msg, sizeof msg) || make_plan(cfg, &pl, msg, sizeof msg)) {
        fprintf(stderr, "qfleet: %s\n", msg);
        return 2;
    }
    /* the checks across keys, on every strategy's configuration */
    for (int i = 0; i < pl.n_strats; i++) {
        qf_config sc;
        if (build_config(&sc, pl.strat[i], argc, argv, NULL, msg, sizeof msg) ||
            qf_config_check(&sc, QF_CMD_COMPARE, msg, sizeof msg)) {
            fprintf(stderr, "qfleet: %s\n", msg);
            return 2;
        }
    }
    if (cfg->env != QF_ENV_DEEP_SEA) {
        fprintf(stderr, "qfleet: compare runs on DeepSea (env=deep_sea); for other environments use qfleet train\n");
        return 2;
    }
    return 0;
}

/* What a run ends with (its last log point). */
typedef struct run_result {
    int strat, seed, size;
    qf_log_point last;
    int failed;
} run_result;

/* bsuite's deadline (deep_sea/analysis.py, score: episode < 2^N + forgiveness, 100): a DeepSea-N
 * run counts as solved only at an episode before 2^N + 100. */
static int64_t deadline(int n) { return n >= 40 ? INT64_MAX : ((int64_t)1 << n) + 100; }

static int solved(const run_result *r) {
    return !r->failed && r->last.status == QF_RUN_OK && r->last.solved_at > 0 && r->last.solved_at < deadline(r->size);
}

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Summary of one (strategy, size) cell. */
typedef struct cell {
    int solved, seeds;
    double median;  /* episodes to solve; INFINITY when the median seed did not solve */
    double regret;  /* mean cumulative regret */
} cell;

static cell summarize(const run_result *res, int n, int strat, int size) {
    cell c = {0, 0, INFINITY, 0.0};
    int64_t eps[256];
    for (int i = 0; i < n; i++) {
        if (res[i].strat != strat || res[i].size != size) continue;
        const int ok = solved(&res[i]);
        if (c.seeds < 256) eps[c.seeds] = ok ? res[i].last.solved_at : INT64_MAX;
        c.solved += ok;
        c.regret += res[i].last.regret;
        c.seeds++;
    }
    if (!c.seeds) return c;
    c.regret /= c.seeds;
    const int m = c.seeds < 256 ? c.seeds : 256;
    qsort(eps, (size_t)m, sizeof eps[0], cmp_i64);
    const int64_t lo = eps[(m - 1) / 2], hi = eps[m / 2];
    c.median = (lo == INT64_MAX || hi == INT64_MAX) ? INFINITY : 0.5 * ((double)lo + (double)hi);
    return c;
}

static void print_table(FILE *f, const plan *pl, const run_result *res, int n, int64_t episodes, int md) {
    fprintf(f, md ? "| strategy |" : "%-10s", md ? "" : "strategy");
    for (int j = 0; j < pl->n_sizes; j++)
        fprintf(f, md ? " N=%d solved | N=%d median episodes | N=%d regret |" : " | N=%-3d solved  median  regret",
                pl->size[j], pl->size[j], pl->size[j]);
    fprintf(f, "\n");
    if (md) {
        fprintf(f, "|---|");
        for (int j = 0; j < pl->n_sizes; j++) fprintf(f, "---:|---:|---:|");
        fprintf(f, "\n");
    }
    for (int i = 0; i < pl->n_strats; i++) {
        fprintf(f, md ? "| %s |" : "%-10s", sname(pl->strat[i]));
        for (int j = 0; j < pl->n_sizes; j++) {
            const cell c = summarize(res, n, pl->strat[i], pl->size[j]);
            char med[32], frac[16];
            const int64_t cap = deadline(pl->size[j]) < episodes ? deadline(pl->size[j]) : episodes;
            if (isinf(c.median))
                snprintf(med, sizeof med, ">%lld", (long long)cap);
            else
                snprintf(med, sizeof med, "%.0f", c.median);
            snprintf(frac, sizeof frac, "%d/%d", c.solved, c.seeds);
            char reg[32] = "-"; /* no regret known (every run failed): "-", never "nan" */
            if (!isnan(c.regret)) snprintf(reg, sizeof reg, "%.1f", c.regret);
            if (isnan(c.median)) snprintf(med, sizeof med, "-");
            if (md)
                fprintf(f, " %s | %s | %s |", frac, med, reg);
            else
                fprintf(f, " | %9s %7s %7s", frac, med, reg);
        }
        fprintf(f, "\n");
    }
}

/* scaling.svg: median episodes to solve against N per strategy (log scale), bsuite's manner;
 * unsolved medians as crosses on the top line; 2^N + 100 (dithering's deadline) dashed. */
static void write_svg(FILE *f, const plan *pl, const run_result *res, int n, int64_t episodes) {
    const double W = 640, H = 420, x0 = 70, x1 = 470, y0 = 360, y1 = 40;
    static const char *colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
    int nmin = pl->size[0], nmax = pl->size[0];
    for (int j = 1; j < pl->n_sizes; j++) {
        nmin = pl->size[j] < nmin ? pl->size[j] : nmin;
        nmax = pl->size[j] > nmax ? pl->size[j] : nmax;
    }
    if (nmax == nmin) nmax = nmin + 1;
    const double lmin = 0.0, lmax = ceil(log10((double)episodes * 1.5));
#define XP(N) (x0 + (x1 - x0) * ((double)(N) - nmin) / (double)(nmax - nmin))
#define YP(E) (y0 - (y0 - y1) * (log10(E) - lmin) / (lmax - lmin))
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"22\" font-size=\"14\">DeepSea: median episodes to solve (bsuite criterion), "
               "%lld episodes per run</text>\n", x0, (long long)episodes);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", x0, y0, x1, y0);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", x0, y0, x0, y1);
    for (int k = (int)lmin; k <= (int)lmax; k++) {
        const double y = YP(pow(10.0, k));
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x0, y, x1, y);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", x0 - 6, y + 4, k);
    }
    for (int j = 0; j < pl->n_sizes; j++)
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%d</text>\n", XP(pl->size[j]), y0 + 18, pl->size[j]);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">DeepSea size N</text>\n", (x0 + x1) / 2, y0 + 38);
    /* 2^N + 100, clipped to the plot */
    fprintf(f, "<polyline fill=\"none\" stroke=\"#999\" stroke-dasharray=\"5,4\" points=\"");
    for (int k = 0; k <= 100; k++) {
        const double N = nmin + (nmax - nmin) * k / 100.0, e = pow(2.0, N) + 100.0;
        if (log10(e) <= lmax) fprintf(f, "%.1f,%.1f ", XP(N), YP(e));
    }
    fprintf(f, "\"/>\n");
    for (int i = 0; i < pl->n_strats; i++) {
        const char *col = colors[i % 8];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
        for (int j = 0; j < pl->n_sizes; j++) {
            const cell c = summarize(res, n, pl->strat[i], pl->size[j]);
            if (!isinf(c.median)) fprintf(f, "%.1f,%.1f ", XP(pl->size[j]), YP(c.median > 1 ? c.median : 1));
        }
        fprintf(f, "\"/>\n");
        for (int j = 0; j < pl->n_sizes; j++) {
            const cell c = summarize(res, n, pl->strat[i], pl->size[j]);
            const double x = XP(pl->size[j]) + (i - pl->n_strats / 2.0) * 3;
            if (isinf(c.median))
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\" text-anchor=\"middle\">x</text>\n", x, y1 + 4, col);
            else
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", x,
                        YP(c.median > 1 ? c.median : 1), col);
        }
        fprintf(f, "<rect x=\"490\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/><text x=\"510\" y=\"%d\">%s</text>\n",
                60 + 20 * i, col, 66 + 20 * i, sname(pl->strat[i]));
    }
    fprintf(f, "<line x1=\"490\" y1=\"%d\" x2=\"504\" y2=\"%d\" stroke=\"#999\" stroke-dasharray=\"5,4\"/>"
               "<text x=\"510\" y=\"%d\">2^N + 100</text>\n", 62 + 20 * pl->n_strats, 62 + 20 * pl->n_strats,
            66 + 20 * pl->n_strats);
    fprintf(f, "<text x=\"490\" y=\"%d\">x: median seed unsolved</text>\n", 86 + 20 * pl->n_strats);
    fprintf(f, "</svg>\n");
#undef XP
#undef YP
}

typedef struct compare_ctx {
    const plan *pl;
    const qf_config *cfg;
    qf_backend *b;
} compare_ctx;

/* Point p = size j x strategy i (size-major): the run's result from its row. */
static void to_result(const compare_ctx *c, const qf_experiment *x, const qf_exp_run *w, run_result *out) {
    const int64_t n_strats = c->pl->n_strats;
    out->strat = c->pl->strat[w->point % n_strats];
    out->size = c->pl->size[w->point / n_strats];
    out->seed = w->seed_index;
    out->last = w->last;
    out->failed = w->failed;
    (void)x;
}

static void fleet_done(void *vctx, const qf_experiment *x, int fleet, const qf_exp_run *rows, int32_t R,
                       double seconds) {
    const compare_ctx *c = (const compare_ctx *)vctx;
    int n_solved = 0, n_div = 0;
    run_result rr;
    for (int32_t r = 0; r < R; r++) {
        to_result(c, x, &rows[r], &rr);
        n_solved += solved(&rr);
        n_div += rr.last.status != QF_RUN_OK;
    }
    to_result(c, x, &rows[0], &rr);
    fprintf(stderr, "  N=%-3d %d runs, %lld steps each: %.1f s, %d of %d runs solved%s\n", rr.size, R,
            (long long)x->points[rows[0].point].steps, seconds, n_solved, R,
            n_div ? " (some runs diverged and were frozen)" : "");
    (void)fleet;
}

static void config_notes(void *vctx, FILE *f) {
    const compare_ctx *c = (const compare_ctx *)vctx;
    /* the lines above are the base every run starts from; say what replaces them (a new user read
     * env.size=10 and prior_scale=3 there as what bootstrap ran with) */
    fprintf(f, "# env.size above is not used: each run's size is one of sizes=");
    for (int j = 0; j < c->pl->n_sizes; j++) fprintf(f, "%s%d", j ? "," : "", c->pl->size[j]);
    fprintf(f, " (runs.csv column env.size)\n# each strategy's run: the values above, then its preset's words below, "
               "then the user's words (keys a preset sets differ from the lines above)\n");
    for (int i = 0; i < c->pl->n_strats; i++) {
        const int st = c->pl->strat[i];
        fprintf(f, "# %s: explore=%s", sname(st), sname(st));
        for (int k = 0; strategies[st].words[k]; k++) fprintf(f, " %s", strategies[st].words[k]);
        fprintf(f, " (then the user's words)\n");
    }
}

static int report(void *vctx, const qf_experiment *x, const qf_exp_run *rows, FILE *summary, const char *dir) {
    const compare_ctx *c = (const compare_ctx *)vctx;
    const qf_config *cfg = c->cfg;
    const int n = (int)(x->n_points * x->seeds);
    run_result *res = (run_result *)calloc((size_t)n, sizeof(run_result));
    if (!res) return -1;
    for (int i = 0; i < n; i++) to_result(c, x, &rows[i], &res[i]);
    printf("\n");
    print_table(stdout, c->pl, res, n, cfg->episodes, 0);
    printf("\nsolved: seeds whose bad episodes / episodes fell below %g (solved_threshold; bsuite 0.3.6: 0.9) "
           "at an episode < 2^N + 100 (bsuite's deadline) within the %lld episodes run; median: episodes to solve; "
           "regret: mean cumulative regret against V*(s0) (exact solver).\n",
           cfg->solved_threshold, (long long)cfg->episodes);
    fprintf(summary, "DeepSea exploration comparison: %lld seeds per cell, %lld episodes per run, backend %s (%s).\n\n",
            (long long)cfg->seeds, (long long)cfg->episodes, c->b->name, c->b->device);
    print_table(summary, c->pl, res, n, cfg->episodes, 1);
    fprintf(summary, "\nsolved: seeds whose bad episodes / episodes fell below %g (solved_threshold; bsuite 0.3.6's "
                     "analysis: 0.9) at an episode < 2^N + 100 (bsuite's deadline) within the episodes run; median "
                     "episodes to solve (>x: the median seed did not solve); regret: mean cumulative regret against "
                     "the exact solver's V*(s0).\n\nStrategies:\n\n", cfg->solved_threshold);
    for (int i = 0; i < c->pl->n_strats; i++)
        fprintf(summary, "- %s: %s\n", sname(c->pl->strat[i]), strategies[c->pl->strat[i]].doc);
    char tmp[QF_RESULTS_PATH_CAP];
    int wrc = 0;
    FILE *f = qf_open_atomic(dir, "scaling.svg", tmp, sizeof tmp);
    if (f) {
        write_svg(f, c->pl, res, n, cfg->episodes);
        wrc = qf_close_atomic(f, dir, "scaling.svg", tmp);
    } else {
        wrc = -1;
    }
    free(res);
    return wrc;
}

int qf_cmd_compare(const qf_words *ws, const qf_config *cfg, qf_backend *b, const qf_dist *d) {
    char msg[768];
    plan pl;
    if (make_plan(cfg, &pl, msg, sizeof msg)) {
        fprintf(stderr, "qfleet: %s\n", msg);
        return 2;
    }
    char **argv = (char **)malloc(sizeof(char *) * (size_t)(ws->n + 1));
    const int64_t P = (int64_t)pl.n_strats * pl.n_sizes;
    qf_config *points = (qf_config *)calloc((size_t)P, sizeof(qf_config));
    uint32_t *key1 = (uint32_t *)calloc((size_t)P, sizeof(uint32_t));
    char (*values)[16] = (char (*)[16])calloc((size_t)P, 16);
    const char **vals = (const char **)calloc((size_t)P, sizeof(char *));
    int rc = 0;
    if (!argv || !points || !key1 || !values || !vals) {
        fprintf(stderr, "qfleet: out of host memory\n");
        rc = 1;
        goto done;
    }
    for (int i = 0; i < ws->n; i++) argv[i] = ws->w[i].text;
    const int64_t E = cfg->envs, eps_per_env = (cfg->episodes + E - 1) / E;
    for (int j = 0; j < pl.n_sizes && rc == 0; j++) {
        const int N = pl.size[j];
        char size_word[32];
        snprintf(size_word, sizeof size_word, "env.size=%d", N);
        for (int i = 0; i < pl.n_strats; i++) {
            const int64_t p = (int64_t)j * pl.n_strats + i;
            if (build_config(&points[p], pl.strat[i], ws->n, argv, size_word, msg, sizeof msg)) {
                fprintf(stderr, "qfleet: %s\n", msg);
                rc = 2;
                break;
            }
            points[p].runs = 1;
            points[p].steps = eps_per_env * N;
            points[p].log_every = (int64_t)N * (eps_per_env / 20 > 0 ? eps_per_env / 20 : 1);
            key1[p] = (uint32_t)pl.strat[i]; /* run (strategy, seed): key (seed + s, strategy) */
            snprintf(values[p], sizeof values[p], "%d", N);
            vals[p] = values[p];
        }
    }
    if (rc) goto done;
    char sizes[512];
    qf_config_get(cfg, "sizes", sizes, sizeof sizes);
    if (d->rank == 0)
        printf("qfleet: DeepSea exploration comparison on %s (%s): %d strateg%s x %lld seed%s, sizes %s, %lld episodes "
               "per run\n", b->name, b->device, pl.n_strats, pl.n_strats == 1 ? "y" : "ies", (long long)cfg->seeds,
               cfg->seeds == 1 ? "" : "s", sizes, (long long)cfg->episodes);
    fflush(stdout);
    static const char *const axis[] = {"env.size"};
    compare_ctx cc = {&pl, cfg, b};
    qf_experiment x;
    qf_experiment_init(&x, "compare", "deep_sea_compare", ws, cfg);
    x.n_points = P;
    x.seeds = cfg->seeds;
    x.points = points;
    x.n_axes = 1;
    x.axis_keys = axis;
    x.axis_values = vals;
    x.key1 = key1;
    x.ctx = &cc;
    x.fleet_done = fleet_done;
    x.config_notes = config_notes;
    x.report = report;
    rc = qf_experiment_run(&x, b, d);
done:
    free(argv);
    free(points);
    free(key1);
    free(values);
    free(vals);
    return rc;
}
