/* sweep.c — `qfleet sweep`: expansion into points, packing into fleets, running, results (sweep.h). */
#define _POSIX_C_SOURCE 200809L
#include "sweep.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"
#include "experiment.h"
#include "results.h"

#define MAX_POINTS 10000

enum { AX_GRID = 0, AX_UNIFORM = 1, AX_LOGUNIFORM = 2, AX_CHOICE = 3 };

typedef struct axis {
    char *key;
    int kind, n;
    char **vals;    /* [n] grid and choice values; uniform, loguniform: lo and hi as text */
    double lo, hi;  /* uniform, loguniform */
    char *origin;
} axis;

typedef struct sweep {
    qf_words base;   /* every non-axis word (the last of each key), in order */
    axis *ax;        /* [n_axes] the swept keys, in the order of their words */
    int n_axes, n_grid, has_random;
    int64_t n_points, trials, seeds;
} sweep;

static void free_parts(char **parts, int k) {
    for (int i = 0; i < k; i++) free(parts[i]);
    free(parts);
}

/* Split v[0..len) at commas outside [] and () into malloc'd parts (*out, free_parts); returns the
 * count, -1 when out of memory, or -2 when an item is empty ("a,,b", "a,"). */
static int split_top(const char *v, size_t len, char ***out) {
    int n = 0, cap = 0, depth = 0;
    char **parts = NULL;
    const char *start = v;
    for (const char *p = v;; p++) {
        const int end = p == v + len;
        if (!end && (*p == '[' || *p == '(')) depth++;
        if (!end && (*p == ']' || *p == ')')) depth--;
        if (end || (*p == ',' && depth == 0)) {
            const size_t w = (size_t)(p - start);
            if (w == 0 && !(end && n == 0)) {
                free_parts(parts, n);
                return -2;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 8;
                char **g = (char **)realloc(parts, sizeof(char *) * (size_t)cap);
                if (!g) {
                    free_parts(parts, n);
                    return -1;
                }
                parts = g;
            }
            if (!(parts[n] = (char *)malloc(w + 1))) {
                free_parts(parts, n);
                return -1;
            }
            memcpy(parts[n], start, w);
            parts[n][w] = 0;
            n++;
            start = p + 1;
        }
        if (end) break;
    }
    *out = parts;
    return n;
}

/* "name(a,b)" -> the parts inside (as split_top); -3 when v is not of that form. */
static int call_args(const char *v, const char *name, char ***out) {
    const size_t n = strlen(name), len = strlen(v);
    if (strncmp(v, name, n) != 0 || v[n] != '(' || len < n + 2 || v[len - 1] != ')') return -3;
    return split_top(v + n + 1, len - n - 2, out);
}

static int parse_num(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    while (*end == ' ') end++;
    return errno || end == s || *end || !isfinite(*v) ? -1 : 0;
}

/* "key=value" as a malloc'd string. */
static char *word_of(const char *key, const char *val) {
    const size_t k = strlen(key), v = strlen(val);
    char *w = (char *)malloc(k + v + 2);
    if (!w) return NULL;
    memcpy(w, key, k);
    w[k] = '=';
    memcpy(w + k + 1, val, v + 1);
    return w;
}

static void sweep_free(sweep *sw) {
    qf_words_free(&sw->base);
    for (int a = 0; a < sw->n_axes; a++) {
        free(sw->ax[a].key);
        free(sw->ax[a].origin);
        free_parts(sw->ax[a].vals, sw->ax[a].n);
    }
    free(sw->ax);
    memset(sw, 0, sizeof *sw);
}

/* Build the axes and base words; check every axis value against the key table. Linear in the
 * number of words: a later word of a key replaces an earlier one, which is not looked at. */
static int build(const qf_words *ws, sweep *sw, qf_config *first, char *msg, size_t n) {
    static const char *const rnd[] = {"uniform", "loguniform", "choice"};
    memset(sw, 0, sizeof *sw);
    unsigned char *last = qf_words_last_of_key(ws);
    if (!last) goto oom;
    for (int i = 0; i < ws->n; i++) {
        if (!last[i]) continue;
        const qf_word *w = &ws->w[i];
        const char *eq = strchr(w->text, '=');
        if (!eq) { /* qf_config_from_words reports it */
            if (qf_words_add(&sw->base, w->text, w->origin)) goto oom;
            continue;
        }
        const char *val = eq + 1;
        const size_t klen = (size_t)(eq - w->text);
        char **parts = NULL;
        int k = -3, kind = -1;
        for (int r = 0; r < 3 && k == -3; r++)
            if ((k = call_args(val, rnd[r], &parts)) != -3) kind = r + 1;
        if (k == -3) {
            k = split_top(val, strlen(val), &parts);
            kind = AX_GRID;
        }
        if (k == -1) goto oom;
        if (k == -2) {
            snprintf(msg, n, "%s: %.*s: '%.200s' has an empty value (values are separated by single commas)",
                     w->origin, (int)klen, w->text, val);
            goto fail;
        }
        for (int x = 0; x < k && kind != AX_UNIFORM && kind != AX_LOGUNIFORM; x++) /* a repeated value: twice the runs */
            for (int y = x + 1; y < k; y++)
                if (strcmp(parts[x], parts[y]) == 0) {
                    snprintf(msg, n, "%s: %.*s names '%.100s' twice (each value of an axis once; seeds= repeats a point)",
                             w->origin, (int)klen, w->text, parts[x]);
                    free_parts(parts, k);
                    goto fail;
                }
        if (kind == AX_GRID && k <= 1) { /* a plain value */
            free_parts(parts, k);
            if (qf_words_add(&sw->base, w->text, w->origin)) goto oom;
            continue;
        }
        axis ax;
        memset(&ax, 0, sizeof ax);
        ax.kind = kind;
        ax.n = k;
        ax.vals = parts;
        ax.key = (char *)malloc(klen + 1);
        ax.origin = (char *)malloc(strlen(w->origin) + 1);
        axis *grown = (axis *)realloc(sw->ax, sizeof(axis) * (size_t)(sw->n_axes + 1));
        if (grown) sw->ax = grown;
        if (!ax.key || !ax.origin || !grown) {
            free(ax.key);
            free(ax.origin);
            free_parts(parts, k);
            goto oom;
        }
        memcpy(ax.key, w->text, klen);
        ax.key[klen] = 0;
        strcpy(ax.origin, w->origin);
        sw->ax[sw->n_axes++] = ax; /* owned by the sweep from here on */
        if (qf_config_key_scope(ax.key) == QF_SCOPE_ONCE) {
            snprintf(msg, n, "%s: %s cannot be swept (one value per sweep)", w->origin, ax.key);
            goto fail;
        }
        if (kind == AX_UNIFORM || kind == AX_LOGUNIFORM) {
            axis *x = &sw->ax[sw->n_axes - 1];
            if (k != 2 || parse_num(parts[0], &x->lo) || parse_num(parts[1], &x->hi) || !(x->lo < x->hi) ||
                (kind == AX_LOGUNIFORM && x->lo <= 0.0)) {
                snprintf(msg, n, "%s: bad value for %s: '%.200s' (allowed: %s(lo,hi) with numbers lo < hi%s)",
                         w->origin, x->key, val, rnd[kind - 1], kind == AX_LOGUNIFORM ? " and lo > 0" : "");
                goto fail;
            }
        }
    }
    free(last);
    last = NULL;
    /* the base alone must parse; then each axis value (bounds of random axes) on top of it */
    if (qf_config_from_words(first, &sw->base, msg, n)) goto fail;
    sw->seeds = first->seeds;
    sw->trials = first->trials;
    sw->n_points = 1;
    for (int a = 0; a < sw->n_axes; a++) {
        axis *ax = &sw->ax[a];
        if (ax->kind == AX_GRID) sw->n_points *= ax->n;
        else sw->has_random = 1;
        for (int j = 0; j < ax->n; j++) {
            qf_words t = {0};
            char m[768];
            char *text = word_of(ax->key, ax->vals[j]);
            int bad = !text;
            for (int b = 0; b < sw->base.n && !bad; b++) bad = qf_words_add(&t, sw->base.w[b].text, sw->base.w[b].origin);
            bad = bad || qf_words_add(&t, text, ax->origin);
            free(text);
            qf_config c;
            if (!bad && qf_config_from_words(&c, &t, m, sizeof m)) {
                snprintf(msg, n, "%s", m);
                qf_words_free(&t);
                goto fail;
            }
            qf_words_free(&t);
            if (bad) goto oom;
        }
        if (sw->n_points > MAX_POINTS) break;
    }
    if (sw->has_random) sw->n_points *= sw->trials;
    else if (qf_config_given(first, "trials")) {
        snprintf(msg, n, "trials=%lld draws points for random-search axes (uniform, loguniform, choice), but no axis "
                         "of this sweep is random: remove trials, or make an axis random", (long long)sw->trials);
        goto fail;
    }
    if (sw->n_points > MAX_POINTS) {
        snprintf(msg, n, "the sweep has more than %d points (grid x trials); split it", MAX_POINTS);
        goto fail;
    }
    return 0;
oom:
    snprintf(msg, n, "out of memory");
fail:
    free(last);
    sweep_free(sw);
    return -1;
}

/* The value of axis a at point p (grid index from p's mixed radix; random draws from the seed):
 * the axis' own text, or a number written into buf. */
static const char *axis_value(const sweep *sw, int a, int64_t p, uint32_t seed, char buf[32]) {
    const axis *ax = &sw->ax[a];
    int64_t grid_index = p / (sw->has_random ? sw->trials : 1), trial = p % (sw->has_random ? sw->trials : 1);
    if (ax->kind == AX_GRID) {
        int64_t stride = 1;
        for (int b = a + 1; b < sw->n_axes; b++)
            if (sw->ax[b].kind == AX_GRID) stride *= sw->ax[b].n;
        return ax->vals[(grid_index / stride) % ax->n];
    }
    qf_rng g = qf_rng_make(seed, 0x73776565u /* "swee" */, 14u, (uint32_t)a, (uint32_t)trial);
    const double u = (double)(qf_rng_next(&g).v[0] >> 8) / 16777216.0;
    if (ax->kind == AX_CHOICE) return ax->vals[(int)(u * ax->n) < ax->n ? (int)(u * ax->n) : ax->n - 1];
    if (ax->kind == AX_UNIFORM)
        snprintf(buf, 32, "%.6g", ax->lo + u * (ax->hi - ax->lo));
    else
        snprintf(buf, 32, "%.6g", exp(log(ax->lo) + u * (log(ax->hi) - log(ax->lo))));
    return buf;
}

/* The configuration of point p. */
static int point_config(const sweep *sw, int64_t p, uint32_t seed, qf_config *cfg, char *msg, size_t n) {
    qf_words t = {0};
    int bad = 0;
    for (int b = 0; b < sw->base.n && !bad; b++) bad = qf_words_add(&t, sw->base.w[b].text, sw->base.w[b].origin);
    for (int a = 0; a < sw->n_axes && !bad; a++) {
        char buf[32];
        char *text = word_of(sw->ax[a].key, axis_value(sw, a, p, seed, buf));
        bad = !text || qf_words_add(&t, text, sw->ax[a].origin);
        free(text);
    }
    int rc = bad ? -1 : qf_config_from_words(cfg, &t, msg, n);
    if (bad) snprintf(msg, n, "out of memory");
    qf_words_free(&t);
    return rc;
}

int qf_sweep_check(const qf_words *ws, qf_config *cfg) {
    sweep sw;
    char msg[1024];
    if (build(ws, &sw, cfg, msg, sizeof msg)) {
        fprintf(stderr, "qfleet: %s\n", msg);
        return 2;
    }
    int rc = 0;
    qf_config c;
    if (point_config(&sw, 0, (uint32_t)cfg->seed, &c, msg, sizeof msg)) {
        fprintf(stderr, "qfleet: %s\n", msg);
        rc = 2;
    } else {
        *cfg = c;
    }
    /* the checks across keys are judged per point: a contradiction (explore=boltzmann with alpha=0)
     * in any point is refused; a key that a point ignores (heads in an epsilon point) only when no
     * point of the sweep uses it (explore=epsilon,bootstrap heads=2,4 is fine) */
    const int nk = qf_config_key_count();
    unsigned char *used = (unsigned char *)calloc((size_t)nk, 1);
    char **unused_msg = (char **)calloc((size_t)nk, sizeof(char *));
    if (!used || !unused_msg) {
        fprintf(stderr, "qfleet: out of memory\n");
        rc = 2;
    }
    for (int64_t p = 0; p < sw.n_points && rc == 0; p++) {
        if (point_config(&sw, p, (uint32_t)cfg->seed, &c, msg, sizeof msg)) {
            fprintf(stderr, "qfleet: %s\n", msg);
            rc = 2;
            break;
        }
        char at[512] = "";
        size_t used_at = 0;
        for (int a = 0; a < sw.n_axes && used_at < sizeof at; a++) {
            char buf[32];
            used_at += (size_t)snprintf(at + used_at, sizeof at - used_at, " %s=%s", sw.ax[a].key,
                                        axis_value(&sw, a, p, (uint32_t)cfg->seed, buf));
        }
        for (int k = 0; k < nk && rc == 0; k++) {
            int unused = 0;
            if (!qf_config_check_one(&c, QF_CMD_SWEEP, k, &unused, msg, sizeof msg)) {
                used[k] |= qf_config_given(&c, qf_config_key_name(k));
            } else if (!unused) {
                fprintf(stderr, "qfleet: sweep point %lld (%s): %s\n", (long long)p, at[0] ? at + 1 : "no axes", msg);
                rc = 2;
            } else if (!unused_msg[k]) {
                unused_msg[k] = strdup(msg);
            }
        }
    }
    for (int k = 0; k < nk && rc == 0 && used; k++)
        if (unused_msg[k] && !used[k]) {
            fprintf(stderr, "qfleet: %s (in every point of the sweep)\n", unused_msg[k]);
            rc = 2;
        }
    for (int k = 0; unused_msg && k < nk; k++) free(unused_msg[k]);
    free(unused_msg);
    free(used);
    sweep_free(&sw);
    return rc;
}

/* ---- running: the experiment runner ------------------------------------------------------------- */

static void mean_se(const double *v, int n, double *mean, double *se) {
    double s = 0.0, ss = 0.0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) {
            s += v[i];
            k++;
        }
    *mean = k ? s / k : NAN;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) ss += (v[i] - *mean) * (v[i] - *mean);
    *se = k > 1 ? sqrt(ss / (k - 1) / k) : NAN;
}

typedef struct sweep_ctx {
    const sweep *sw;
    const char *const *values; /* [n_points][n_axes] every axis' value (env, explore included) */
} sweep_ctx;

static void print_summary(FILE *f, const sweep_ctx *c, const qf_experiment *x, const qf_exp_run *rows, int md) {
    const sweep *sw = c->sw;
    const int S = (int)x->seeds;
    double *ret = (double *)malloc(sizeof(double) * (size_t)S), *reg = (double *)malloc(sizeof(double) * (size_t)S);
    if (!ret || !reg) {
        free(ret);
        free(reg);
        return;
    }
    if (md) fprintf(f, "| point |");
    else fprintf(f, "%-6s", "point");
    for (int a = 0; a < sw->n_axes; a++) fprintf(f, md ? " %s |" : " %-12s", sw->ax[a].key);
    fprintf(f, md ? " runs | diverged | return (last 20) | regret |\n" : " %5s %8s %22s %22s\n", "runs", "diverged",
            "return(last 20)", "regret");
    if (md) {
        fprintf(f, "|---|");
        for (int a = 0; a < sw->n_axes; a++) fprintf(f, "---|");
        fprintf(f, "---:|---:|---:|---:|\n");
    }
    for (int64_t p = 0; p < x->n_points; p++) {
        int div = 0;
        for (int s = 0; s < S; s++) {
            const qf_exp_run *w = &rows[p * S + s];
            ret[s] = w->ret20;
            reg[s] = w->last.regret;
            div += w->diverged_at >= 0;
        }
        fprintf(f, md ? "| %lld |" : "%-6lld", (long long)p);
        for (int a = 0; a < sw->n_axes; a++) fprintf(f, md ? " %s |" : " %-12s", c->values[p * sw->n_axes + a]);
        double m1, s1, m2, s2;
        mean_se(ret, S, &m1, &s1);
        mean_se(reg, S, &m2, &s2);
        char r1[64], r2[64];
        snprintf(r1, sizeof r1, "%.4g +- %.2g", m1, s1);
        snprintf(r2, sizeof r2, "%.4g +- %.2g", m2, s2);
        fprintf(f, md ? " %d | %d | %s | %s |\n" : " %5d %8d %22s %22s\n", S, div, r1, r2);
    }
    free(ret);
    free(reg);
}

static void config_notes(void *vctx, FILE *f) {
    const sweep *sw = ((const sweep_ctx *)vctx)->sw;
    for (int a = 0; a < sw->n_axes; a++) {
        static const char *const kinds[] = {"grid", "uniform", "loguniform", "choice"};
        fprintf(f, "# sweep axis %s: %s", sw->ax[a].key, kinds[sw->ax[a].kind]);
        const int nv = sw->ax[a].kind == AX_UNIFORM || sw->ax[a].kind == AX_LOGUNIFORM ? 2 : sw->ax[a].n;
        for (int j = 0; j < nv; j++) fprintf(f, "%s%s", j ? ", " : " ", sw->ax[a].vals[j]);
        fprintf(f, "\n");
    }
}

static void describe(void *vctx, FILE *f) {
    const sweep *sw = ((const sweep_ctx *)vctx)->sw;
    for (int a = 0; a < sw->n_axes; a++) {
        static const char *const kinds[] = {"grid", "uniform", "loguniform", "choice"};
        fprintf(f, "  axis %-14s %-10s", sw->ax[a].key, kinds[sw->ax[a].kind]);
        const int nv = sw->ax[a].kind == AX_UNIFORM || sw->ax[a].kind == AX_LOGUNIFORM ? 2 : sw->ax[a].n;
        for (int j = 0; j < nv; j++) fprintf(f, "%s%s", j ? ", " : " ", sw->ax[a].vals[j]);
        fprintf(f, "  (%s)\n", sw->ax[a].origin);
    }
}

static int report(void *vctx, const qf_experiment *x, const qf_exp_run *rows, FILE *summary, const char *dir) {
    (void)dir;
    const sweep_ctx *c = (const sweep_ctx *)vctx;
    fprintf(summary, "Mean +- standard error over seeds.\n\n");
    print_summary(summary, c, x, rows, 1);
    printf("\n");
    print_summary(stdout, c, x, rows, 0);
    return 0;
}

int qf_cmd_sweep(const qf_words *ws, qf_backend *b, const qf_dist *d) {
    sweep sw;
    qf_config first;
    char msg[1024];
    if (build(ws, &sw, &first, msg, sizeof msg)) {
        fprintf(stderr, "qfleet: %s\n", msg);
        return 2;
    }
    const uint32_t base_seed = (uint32_t)first.seed;
    const int64_t P = sw.n_points;
    int rc = 0, n_cols = 0;
    qf_config *points = (qf_config *)calloc((size_t)P, sizeof(qf_config));
    char *text = (char *)calloc((size_t)(P * (sw.n_axes + 1)), 32); /* random axes' drawn values */
    const char **values = (const char **)calloc((size_t)(P * (sw.n_axes + 1)), sizeof(char *));
    const char **cols = (const char **)calloc((size_t)(P * (sw.n_axes + 1)), sizeof(char *));
    const char **col_keys = (const char **)calloc((size_t)(sw.n_axes + 1), sizeof(char *));
    if (!points || !text || !values || !cols || !col_keys) {
        fprintf(stderr, "qfleet: out of host memory for %lld points\n", (long long)P);
        rc = 1;
        goto done;
    }
    for (int a = 0; a < sw.n_axes; a++) /* runs.csv's axis columns: every axis but env and explore */
        if (strcmp(sw.ax[a].key, "env") != 0 && strcmp(sw.ax[a].key, "explore") != 0) col_keys[n_cols++] = sw.ax[a].key;
    for (int64_t p = 0; p < P; p++) {
        if (point_config(&sw, p, base_seed, &points[p], msg, sizeof msg)) {
            fprintf(stderr, "qfleet: point %lld: %s\n", (long long)p, msg);
            rc = 2;
            goto done;
        }
        for (int a = 0, k = 0; a < sw.n_axes; a++) {
            char *buf = text + 32 * (p * sw.n_axes + a);
            const char *v = axis_value(&sw, a, p, base_seed, buf);
            values[p * sw.n_axes + a] = v;
            if (strcmp(sw.ax[a].key, "env") != 0 && strcmp(sw.ax[a].key, "explore") != 0) cols[p * n_cols + k++] = v;
        }
    }
    sweep_ctx sc = {&sw, values};
    qf_experiment x;
    qf_experiment_init(&x, "sweep", "sweep", ws, &first);
    x.n_points = P;
    x.seeds = sw.seeds;
    x.points = points;
    x.n_axes = n_cols;
    x.axis_keys = col_keys;
    x.axis_values = cols;
    x.key1 = NULL; /* run (point, seed): key (seed + s, point) */
    x.probe = 1;
    x.ctx = &sc;
    x.config_notes = config_notes;
    x.describe = describe;
    x.report = report;
    rc = qf_experiment_run(&x, b, d);
done:
    free(points);
    free(text);
    free(values);
    free(cols);
    free(col_keys);
    sweep_free(&sw);
    return rc;
}
