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
#include "expr.h"
#include "experiment.h"
#include "results.h"
#include "scaling.h"

#define MAX_POINTS 10000

enum { AX_GRID = 0, AX_UNIFORM = 1, AX_LOGUNIFORM = 2, AX_CHOICE = 3 };

typedef struct axis {
    char *key;
    int kind, n;
    char **vals;    /* [n] grid and choice values; uniform, loguniform: lo and hi as text */
    double lo, hi;  /* uniform, loguniform */
    char *origin;
    int parent, parent_val; /* a conditional axis: swept only in the points where axis `parent` takes
                               its value `parent_val` (-1: a top-level axis, in every point) */
} axis;

typedef struct sweep {
    qf_words base;   /* every non-axis word (the last of each key), in order */
    axis *ax;        /* [n_axes] the swept keys: top-level ones in the order of their words, each
                        followed by the axes nested in its values */
    int n_axes, has_random;
    int32_t *assign; /* [n_assign][n_axes] the grid's points: each axis' value index, -1 where the
                        axis is not swept (a conditional axis whose value is not chosen) */
    int64_t n_assign, n_points, trials, seeds;
} sweep;

static void free_parts(char **parts, int k) {
    for (int i = 0; i < k; i++) free(parts[i]);
    free(parts);
}

/* Split v[0..len) at `sep` outside [], () and {} into malloc'd parts (*out, free_parts); returns
 * the count, -1 when out of memory, or -2 when an item is empty ("a,,b", "a,"). */
static int split_top_at(const char *v, size_t len, char sep, char ***out) {
    int n = 0, cap = 0, depth = 0;
    char **parts = NULL;
    const char *start = v;
    for (const char *p = v;; p++) {
        const int end = p == v + len;
        if (!end && (*p == '[' || *p == '(' || *p == '{')) depth++;
        if (!end && (*p == ']' || *p == ')' || *p == '}')) depth--;
        if (end || (*p == sep && depth == 0)) {
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

static int split_top(const char *v, size_t len, char ***out) { return split_top_at(v, len, ',', out); }

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
    free(sw->assign);
    memset(sw, 0, sizeof *sw);
}

/* A grid value "v{key=a,b;key2=c}": its own text cut to "v" in place; *sub = the text inside the
 * braces (pointing into v), or NULL for a value without braces. -1 when the braces are malformed. */
static int cut_sub(char *v, char **sub) {
    *sub = NULL;
    int depth = 0;
    for (char *p = v; *p; p++) {
        if (*p == '[' || *p == '(') depth++;
        if (*p == ']' || *p == ')') depth--;
        if (*p == '{' && depth == 0) {
            const size_t len = strlen(p);
            if (p == v || len < 2 || p[len - 1] != '}') return -1;
            int d = 0; /* the '{' must close at the end, not before */
            for (char *q = p; *q; q++) {
                if (*q == '{') d++;
                if (*q == '}' && --d == 0 && q[1]) return -1;
            }
            p[len - 1] = 0;
            *p = 0;
            *sub = p + 1;
            return 0;
        }
        if (*p == '}') return -1;
    }
    return 0;
}

/* Add the axis (or base word) of "key=value" from `origin`, nested under (parent, parent_val) when
 * parent >= 0, and then the axes nested in its values. 0, 1 (out of memory) or -1 (msg). */
static int add_axis(sweep *sw, const char *text, const char *origin, int parent, int parent_val, int depth, char *msg,
                    size_t n) {
    static const char *const rnd[] = {"uniform", "loguniform", "choice"};
    const char *eq = strchr(text, '=');
    if (!eq || eq == text) {
        snprintf(msg, n, "%s: '%.200s' inside {...} is not key=value (conditional axes: explore=epsilon,bootstrap"
                         "{heads=1,2;prior_scale=0,3})", origin, text);
        return -1;
    }
    if (depth > 8) {
        snprintf(msg, n, "%s: conditional axes nested deeper than 8 levels", origin);
        return -1;
    }
    const char *val = eq + 1;
    const size_t klen = (size_t)(eq - text);
    char **parts = NULL;
    int k = -3, kind = -1;
    for (int r = 0; r < 3 && k == -3; r++)
        if ((k = call_args(val, rnd[r], &parts)) != -3) kind = r + 1;
    if (k == -3) {
        k = split_top(val, strlen(val), &parts);
        kind = AX_GRID;
    }
    if (k == -1) return 1;
    if (k == -2) {
        snprintf(msg, n, "%s: %.*s: '%.200s' has an empty value (values are separated by single commas)", origin,
                 (int)klen, text, val);
        return -1;
    }
    /* values with {...}: cut each to its name, keeping what is nested */
    char **subs = (char **)calloc((size_t)k, sizeof(char *));
    if (!subs) {
        free_parts(parts, k);
        return 1;
    }
    int any_sub = 0;
    for (int x = 0; x < k; x++) {
        char *sub;
        if (kind != AX_GRID && strchr(parts[x], '{')) {
            snprintf(msg, n, "%s: %.*s: a conditional axis hangs on a grid value (key=a,b{...}), not on %s(...)", origin,
                     (int)klen, text, rnd[kind - 1]);
            free(subs);
            free_parts(parts, k);
            return -1;
        }
        if (kind == AX_GRID && cut_sub(parts[x], &sub)) {
            snprintf(msg, n, "%s: %.*s: '%.200s' is not value{key=a,b;key2=c,d} (braces hold the axes swept only "
                             "with that value)", origin, (int)klen, text, parts[x]);
            for (int y = 0; y < x; y++) free(subs[y]);
            free(subs);
            free_parts(parts, k);
            return -1;
        }
        if (kind == AX_GRID && sub) {
            /* copy: parts[x] is cut to the value's name in place */
            if (!(subs[x] = strdup(sub))) {
                for (int y = 0; y < x; y++) free(subs[y]);
                free(subs);
                free_parts(parts, k);
                return 1;
            }
            any_sub = 1;
        }
    }
    int rc = 0;
    for (int x = 0; x < k && rc == 0 && kind != AX_UNIFORM && kind != AX_LOGUNIFORM; x++) /* a repeated value: twice the runs */
        for (int y = x + 1; y < k && rc == 0; y++)
            if (strcmp(parts[x], parts[y]) == 0) {
                snprintf(msg, n, "%s: %.*s names '%.100s' twice (each value of an axis once; seeds= repeats a point)",
                         origin, (int)klen, text, parts[x]);
                rc = -1;
            }
    if (rc == 0 && kind == AX_GRID && k <= 1 && !any_sub && parent < 0) { /* a plain value */
        if (qf_words_add(&sw->base, text, origin)) rc = 1;
        for (int x = 0; x < k; x++) free(subs[x]);
        free(subs);
        free_parts(parts, k);
        return rc;
    }
    axis ax;
    memset(&ax, 0, sizeof ax);
    ax.kind = kind;
    ax.n = k;
    ax.vals = parts;
    ax.parent = parent;
    ax.parent_val = parent_val;
    ax.key = (char *)malloc(klen + 1);
    ax.origin = strdup(origin);
    axis *grown = rc ? NULL : (axis *)realloc(sw->ax, sizeof(axis) * (size_t)(sw->n_axes + 1));
    if (grown) sw->ax = grown;
    if (rc || !ax.key || !ax.origin || !grown) {
        free(ax.key);
        free(ax.origin);
        free_parts(parts, k);
        for (int x = 0; x < k; x++) free(subs[x]);
        free(subs);
        return rc ? rc : 1;
    }
    memcpy(ax.key, text, klen);
    ax.key[klen] = 0;
    const int me = sw->n_axes;
    sw->ax[sw->n_axes++] = ax; /* owned by the sweep from here on */
    if (qf_config_key_scope(ax.key) == QF_SCOPE_ONCE) {
        snprintf(msg, n, "%s: %s cannot be swept (one value per sweep)", origin, ax.key);
        rc = -1;
    }
    if (rc == 0 && parent >= 0) {
        char m[512];
        if (qf_config_key_for_command(text, QF_CMD_SWEEP, m, sizeof m)) {
            snprintf(msg, n, "%s: %s", origin, m);
            rc = -1;
        }
    }
    if (rc == 0 && (kind == AX_UNIFORM || kind == AX_LOGUNIFORM)) {
        axis *x = &sw->ax[me];
        if (k != 2 || parse_num(parts[0], &x->lo) || parse_num(parts[1], &x->hi) || !(x->lo < x->hi) ||
            (kind == AX_LOGUNIFORM && x->lo <= 0.0)) {
            snprintf(msg, n, "%s: bad value for %s: '%.200s' (allowed: %s(lo,hi) with numbers lo < hi%s)", origin,
                     x->key, val, rnd[kind - 1], kind == AX_LOGUNIFORM ? " and lo > 0" : "");
            rc = -1;
        }
    }
    /* the axes nested in each value, separated by ';' */
    for (int x = 0; x < k && rc == 0; x++) {
        if (!subs[x]) continue;
        char **items = NULL;
        const int m = split_top_at(subs[x], strlen(subs[x]), ';', &items);
        if (m == -1) rc = 1;
        else if (m <= 0 || (m == 1 && !items[0][0])) {
            snprintf(msg, n, "%s: %s=...%s{}: the braces hold no axis (value{key=a,b;key2=c})", origin, sw->ax[me].key,
                     sw->ax[me].vals[x]);
            rc = -1;
        }
        for (int i = 0; i < m && rc == 0; i++) rc = add_axis(sw, items[i], origin, me, x, depth + 1, msg, n);
        if (m > 0) free_parts(items, m);
    }
    for (int x = 0; x < k; x++) free(subs[x]);
    free(subs);
    return rc;
}

/* The grid's points: the product of the top-level axes, where each value of an axis brings the
 * product of the axes nested in it. Order: the first axis varies slowest, so a sweep without
 * conditional axes numbers its points as the mixed radix of its axes. */
typedef struct assign_list {
    int32_t *a; /* [n][n_axes] */
    int64_t n, cap;
} assign_list;

static int list_push(assign_list *l, const int32_t *row, int na) {
    if (l->n == l->cap) {
        const int64_t cap = l->cap ? 2 * l->cap : 16;
        int32_t *g = (int32_t *)realloc(l->a, sizeof(int32_t) * (size_t)(cap * (na ? na : 1)));
        if (!g) return -1;
        l->a = g;
        l->cap = cap;
    }
    memcpy(l->a + l->n * na, row, sizeof(int32_t) * (size_t)na);
    l->n++;
    return 0;
}

/* Extend every partial point of *in by the axes hanging on (parent, parent_val) (top level: -1,
 * -1), into *in itself. 0, -1 out of memory, -2 more than MAX_POINTS. */
static int expand(const sweep *sw, int parent, int parent_val, assign_list *in) {
    const int na = sw->n_axes;
    for (int a = 0; a < na; a++) {
        const axis *ax = &sw->ax[a];
        if (ax->parent != parent || ax->parent_val != parent_val) continue;
        assign_list out = {0};
        const int nv = ax->kind == AX_GRID ? ax->n : 1; /* a random axis: one slot, drawn per trial */
        for (int64_t i = 0; i < in->n; i++)
            for (int v = 0; v < nv; v++) {
                assign_list one = {0};
                int32_t *row = (int32_t *)malloc(sizeof(int32_t) * (size_t)(na ? na : 1));
                if (!row) {
                    free(out.a);
                    return -1;
                }
                memcpy(row, in->a + i * na, sizeof(int32_t) * (size_t)na);
                row[a] = v;
                int rc = list_push(&one, row, na);
                free(row);
                if (rc == 0 && ax->kind == AX_GRID) rc = expand(sw, a, v, &one);
                for (int64_t j = 0; j < one.n && rc == 0; j++) {
                    rc = list_push(&out, one.a + j * na, na);
                    if (out.n > MAX_POINTS) rc = -2;
                }
                free(one.a);
                if (rc) {
                    free(out.a);
                    return rc;
                }
            }
        free(in->a);
        *in = out;
    }
    return 0;
}

/* (size, index) pairs, by size then index: a stable sort */
static int cmp_pair(const void *a, const void *b) {
    const int64_t *x = (const int64_t *)a, *y = (const int64_t *)b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

/* Build the axes and base words; check every axis value against the key table. Linear in the
 * number of words: a later word of a key replaces an earlier one, which is not looked at. */
static int build(const qf_words *ws, sweep *sw, qf_config *first, char *msg, size_t n) {
    memset(sw, 0, sizeof *sw);
    unsigned char *last = qf_words_last_of_key(ws);
    if (!last) goto oom;
    for (int i = 0; i < ws->n; i++) {
        if (!last[i]) continue;
        const qf_word *w = &ws->w[i];
        if (!strchr(w->text, '=')) { /* qf_config_from_words reports it */
            if (qf_words_add(&sw->base, w->text, w->origin)) goto oom;
            continue;
        }
        const int r = add_axis(sw, w->text, w->origin, -1, -1, 0, msg, n);
        if (r == 1) goto oom;
        if (r) goto fail;
    }
    free(last);
    last = NULL;
    /* the base alone must parse; then each axis value (bounds of random axes) on top of it */
    if (qf_config_from_words_partial(first, &sw->base, msg, n)) goto fail;
    sw->seeds = first->seeds;
    sw->trials = first->trials;
    for (int a = 0; a < sw->n_axes; a++) {
        axis *ax = &sw->ax[a];
        if (ax->kind != AX_GRID) sw->has_random = 1;
        for (int j = 0; j < ax->n; j++) {
            qf_words t = {0};
            char m[768];
            char *text = word_of(ax->key, ax->vals[j]);
            int bad = !text;
            for (int b = 0; b < sw->base.n && !bad; b++) bad = qf_words_add(&t, sw->base.w[b].text, sw->base.w[b].origin);
            bad = bad || qf_words_add(&t, text, ax->origin);
            free(text);
            qf_config c;
            if (!bad && qf_config_from_words_partial(&c, &t, m, sizeof m)) {
                snprintf(msg, n, "%s", m);
                qf_words_free(&t);
                goto fail;
            }
            qf_words_free(&t);
            if (bad) goto oom;
        }
    }
    {
        assign_list l = {0};
        int32_t *row = (int32_t *)malloc(sizeof(int32_t) * (size_t)(sw->n_axes ? sw->n_axes : 1));
        if (!row) goto oom;
        for (int a = 0; a < sw->n_axes; a++) row[a] = -1;
        int rc = list_push(&l, row, sw->n_axes);
        free(row);
        if (rc == 0) rc = expand(sw, -1, -1, &l);
        if (rc == -2) {
            free(l.a);
            snprintf(msg, n, "the sweep has more than %d points (grid x trials); split it", MAX_POINTS);
            goto fail;
        }
        if (rc) {
            free(l.a);
            goto oom;
        }
        sw->assign = l.a;
        sw->n_assign = l.n;
    }
    /* a key swept twice in one point (a nested axis under a value of an axis of the same key, or
     * the same key at two levels) would leave the later one to win silently */
    for (int64_t p = 0; p < sw->n_assign; p++)
        for (int a = 0; a < sw->n_axes; a++)
            for (int b = a + 1; b < sw->n_axes && sw->assign[p * sw->n_axes + a] >= 0; b++)
                if (sw->assign[p * sw->n_axes + b] >= 0 && strcmp(sw->ax[a].key, sw->ax[b].key) == 0) {
                    snprintf(msg, n, "%s: %s is swept twice in the same points (also at %s): give each key one axis "
                                     "per point", sw->ax[b].origin, sw->ax[b].key, sw->ax[a].origin);
                    goto fail;
                }
    /* prune=: the sizes of a column must come in increasing order, in fleets one after another, so
     * that a column's small sizes have finished before its larger ones are planned: env.size is a
     * top-level grid axis, and the points are ordered by it (stably: the rest keeps its order) */
    if (first->prune > 0) {
        int sa = -1;
        for (int a = 0; a < sw->n_axes; a++)
            if (strcmp(sw->ax[a].key, "env.size") == 0 && sw->ax[a].parent < 0 && sw->ax[a].kind == AX_GRID) sa = a;
        if (sa < 0 || first->env != QF_ENV_DEEP_SEA) {
            snprintf(msg, n, "prune=%lld stops a column of DeepSea sizes: give env=deep_sea and sweep env.size as a "
                             "top-level grid axis (e.g. env.size=4,6,8,10), or remove prune", (long long)first->prune);
            goto fail;
        }
        int64_t *idx = (int64_t *)malloc(sizeof(int64_t) * 2 * (size_t)sw->n_assign);
        int32_t *sorted = (int32_t *)malloc(sizeof(int32_t) * (size_t)(sw->n_assign * sw->n_axes));
        if (!idx || !sorted) {
            free(idx);
            free(sorted);
            goto oom;
        }
        for (int64_t p = 0; p < sw->n_assign; p++) {
            idx[2 * p] = strtoll(sw->ax[sa].vals[sw->assign[p * sw->n_axes + sa]], NULL, 10);
            idx[2 * p + 1] = p;
        }
        qsort(idx, (size_t)sw->n_assign, 2 * sizeof(int64_t), cmp_pair);
        for (int64_t p = 0; p < sw->n_assign; p++)
            memcpy(sorted + p * sw->n_axes, sw->assign + idx[2 * p + 1] * sw->n_axes, sizeof(int32_t) * (size_t)sw->n_axes);
        free(sw->assign);
        sw->assign = sorted;
        free(idx);
    }
    sw->n_points = sw->n_assign;
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

/* The value of axis a at point p (its grid value; random draws from the seed): the axis' own text,
 * a number written into buf, or NULL where the axis is not swept (a conditional axis). */
static const char *axis_value(const sweep *sw, int a, int64_t p, uint32_t seed, char buf[32]) {
    const axis *ax = &sw->ax[a];
    const int64_t per = sw->has_random ? sw->trials : 1, grid_index = p / per, trial = p % per;
    const int32_t v = sw->assign[grid_index * sw->n_axes + a];
    if (v < 0) return NULL;
    if (ax->kind == AX_GRID) return ax->vals[v];
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
        const char *v = axis_value(sw, a, p, seed, buf);
        if (!v) continue;
        char *text = word_of(sw->ax[a].key, v);
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
            const char *v = axis_value(&sw, a, p, (uint32_t)cfg->seed, buf);
            if (v) used_at += (size_t)snprintf(at + used_at, sizeof at - used_at, " %s=%s", sw.ax[a].key, v);
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

/* The table's columns: each swept key once (a key swept under several values of a conditional
 * axis is one column), then each derived key of the base (lr=2e-4*heads: its value per point). */
typedef struct sweep_ctx {
    const sweep *sw;
    int n_cols;
    const char **col_keys;     /* [n_cols] */
    const char *const *values; /* [n_points][n_cols] each column's value ("-": not swept there) */
    /* prune=: the column of each point (its values but env.size), its points by size */
    int64_t prune;
    int64_t *column;           /* [n_points] column id */
    int64_t *by_column;        /* [n_points] points sorted by (column, size) */
    int64_t *column_start;     /* [n_columns + 1] into by_column */
} sweep_ctx;

/* The outcome of point q's cell from the rows known so far (scaling.h's QF_CELL_*). */
static int cell_outcome(const qf_experiment *x, int64_t q, const qf_exp_run *rows, const unsigned char *done) {
    int all = 1, pruned = 0, conv = 0;
    for (int64_t s = 0; s < x->seeds; s++) {
        const int64_t run = q * x->seeds + s;
        if (!done[run]) {
            all = 0;
            continue;
        }
        pruned |= rows[run].pruned;
        conv |= !rows[run].failed && !rows[run].pruned && rows[run].last.converged_at > 0;
    }
    if (pruned) return QF_CELL_PRUNED;
    if (conv) return QF_CELL_SUCCESS;
    return all ? QF_CELL_FAILED : QF_CELL_UNKNOWN;
}

/* skip_points for prune=M: point p is pruned when the cells of its column at smaller sizes end in M
 * that failed (qf_prune_next). */
static void prune_points(void *vctx, const qf_experiment *x, const qf_exp_run *rows, const unsigned char *done,
                         const int64_t *points, int64_t n, unsigned char *skip) {
    const sweep_ctx *c = (const sweep_ctx *)vctx;
    for (int64_t j = 0; j < n; j++) {
        const int64_t p = points[j], col = c->column[p];
        const int size = x->points[p].env_params.deep_sea.size;
        int seq[512], k = 0;
        for (int64_t i = c->column_start[col]; i < c->column_start[col + 1]; i++) {
            const int64_t q = c->by_column[i];
            if (x->points[q].env_params.deep_sea.size >= size) break;
            if (k == 512) memmove(seq, seq + 1, sizeof(int) * (size_t)--k); /* the last 512 cells decide */
            seq[k++] = cell_outcome(x, q, rows, done);
        }
        skip[j] = (unsigned char)qf_prune_next(seq, k, (int)c->prune);
    }
}

static const sweep_ctx *g_sort_ctx; /* for qsort's comparison */
static const qf_config *g_sort_points;
static int cmp_column(const void *a, const void *b) {
    const int64_t p = *(const int64_t *)a, q = *(const int64_t *)b;
    const sweep_ctx *c = g_sort_ctx;
    for (int k = 0; k < c->n_cols; k++) {
        if (strcmp(c->col_keys[k], "env.size") == 0) continue;
        const int r = strcmp(c->values[p * c->n_cols + k], c->values[q * c->n_cols + k]);
        if (r) return r;
    }
    const int sp = g_sort_points[p].env_params.deep_sea.size, sq = g_sort_points[q].env_params.deep_sea.size;
    if (sp != sq) return sp < sq ? -1 : 1;
    return (p > q) - (p < q);
}

/* Columns for prune=: points equal in every column value but env.size share a column. 0 or -1 (out
 * of memory). */
static int make_columns(sweep_ctx *c, const qf_config *points, int64_t P) {
    c->column = (int64_t *)malloc(sizeof(int64_t) * (size_t)P);
    c->by_column = (int64_t *)malloc(sizeof(int64_t) * (size_t)P);
    c->column_start = (int64_t *)malloc(sizeof(int64_t) * (size_t)(P + 1));
    if (!c->column || !c->by_column || !c->column_start) return -1;
    for (int64_t p = 0; p < P; p++) c->by_column[p] = p;
    g_sort_ctx = c;
    g_sort_points = points;
    qsort(c->by_column, (size_t)P, sizeof(int64_t), cmp_column);
    int64_t n_col = 0;
    for (int64_t i = 0; i < P; i++) {
        int same = i > 0;
        for (int k = 0; same && k < c->n_cols; k++)
            if (strcmp(c->col_keys[k], "env.size") != 0 &&
                strcmp(c->values[c->by_column[i] * c->n_cols + k], c->values[c->by_column[i - 1] * c->n_cols + k]) != 0)
                same = 0;
        if (!same) c->column_start[n_col++] = i;
        c->column[c->by_column[i]] = n_col - 1;
    }
    c->column_start[n_col] = P;
    return 0;
}

/* The table per point (md: summary.md's markdown, else stdout's): mean +- standard error over the
 * seeds; eval_return (the last greedy evaluation) is a column when some point evaluates
 * (eval_every > 0); a value that does not apply is "-" (qf_fmt_mean_se). */
static void print_summary(FILE *f, const sweep_ctx *c, const qf_experiment *x, const qf_exp_run *rows, int md) {
    const int S = (int)x->seeds;
    double *ret = (double *)malloc(sizeof(double) * (size_t)S), *reg = (double *)malloc(sizeof(double) * (size_t)S),
           *evr = (double *)malloc(sizeof(double) * (size_t)S);
    if (!ret || !reg || !evr) {
        free(ret);
        free(reg);
        free(evr);
        return;
    }
    int ev = 0;
    for (int64_t p = 0; p < x->n_points; p++) ev |= x->points[p].eval_every > 0;
    if (md) fprintf(f, "| point |");
    else fprintf(f, "%-6s", "point");
    for (int a = 0; a < c->n_cols; a++) fprintf(f, md ? " %s |" : " %-12s", c->col_keys[a]);
    if (md)
        fprintf(f, " runs | diverged | converged | return (last 20) |%s regret |\n", ev ? " eval_return |" : "");
    else {
        fprintf(f, " %5s %8s %9s %22s", "runs", "diverged", "converged", "return(last 20)");
        if (ev) fprintf(f, " %22s", "eval_return");
        fprintf(f, " %22s\n", "regret");
    }
    if (md) {
        fprintf(f, "|---|");
        for (int a = 0; a < c->n_cols; a++) fprintf(f, "---|");
        fprintf(f, "---:|---:|---:|---:|%s---:|\n", ev ? "---:|" : "");
    }
    for (int64_t p = 0; p < x->n_points; p++) {
        int div = 0, conv = 0, pruned = 0;
        for (int s = 0; s < S; s++) {
            const qf_exp_run *w = &rows[p * S + s];
            ret[s] = w->ret20;
            reg[s] = w->last.regret;
            evr[s] = w->last.eval_return;
            div += w->diverged_at >= 0;
            conv += !w->failed && !w->pruned && w->last.converged_at > 0;
            pruned |= w->pruned;
        }
        fprintf(f, md ? "| %lld |" : "%-6lld", (long long)p);
        for (int a = 0; a < c->n_cols; a++) fprintf(f, md ? " %s |" : " %-12s", c->values[p * c->n_cols + a]);
        if (pruned) { /* not trained: the prune= rule judged it from the cells before */
            if (md) fprintf(f, " %d | pruned | pruned | pruned |%s pruned |\n", S, ev ? " pruned |" : "");
            else {
                fprintf(f, " %5d %8s %9s %22s", S, "pruned", "pruned", "pruned");
                if (ev) fprintf(f, " %22s", "pruned");
                fprintf(f, " %22s\n", "pruned");
            }
            continue;
        }
        double m1, s1, m2, s2, m3, s3;
        mean_se(ret, S, &m1, &s1);
        mean_se(reg, S, &m2, &s2);
        mean_se(evr, S, &m3, &s3);
        char r1[64], r2[64], r3[64], cv[32];
        qf_fmt_mean_se(r1, sizeof r1, m1, s1);
        qf_fmt_mean_se(r2, sizeof r2, m2, s2);
        qf_fmt_mean_se(r3, sizeof r3, m3, s3);
        if (x->points[p].env == QF_ENV_DEEP_SEA) snprintf(cv, sizeof cv, "%d/%d", conv, S);
        else snprintf(cv, sizeof cv, "-");
        if (md) {
            fprintf(f, " %d | %d | %s | %s |", S, div, cv, r1);
            if (ev) fprintf(f, " %s |", r3);
            fprintf(f, " %s |\n", r2);
        } else {
            fprintf(f, " %5d %8d %9s %22s", S, div, cv, r1);
            if (ev) fprintf(f, " %22s", r3);
            fprintf(f, " %22s\n", r2);
        }
    }
    free(ret);
    free(reg);
    free(evr);
}

/* "  (only where explore=bootstrap)" for a conditional axis, with the whole chain of conditions */
static void print_condition(FILE *f, const sweep *sw, int a) {
    if (sw->ax[a].parent < 0) return;
    fprintf(f, " (only where");
    for (int b = a, first = 1; sw->ax[b].parent >= 0; b = sw->ax[b].parent, first = 0)
        fprintf(f, "%s %s=%s", first ? "" : " and", sw->ax[sw->ax[b].parent].key,
                sw->ax[sw->ax[b].parent].vals[sw->ax[b].parent_val]);
    fprintf(f, ")");
}

static void config_notes(void *vctx, FILE *f) {
    const sweep *sw = ((const sweep_ctx *)vctx)->sw;
    for (int a = 0; a < sw->n_axes; a++) {
        static const char *const kinds[] = {"grid", "uniform", "loguniform", "choice"};
        fprintf(f, "# sweep axis %s: %s", sw->ax[a].key, kinds[sw->ax[a].kind]);
        const int nv = sw->ax[a].kind == AX_UNIFORM || sw->ax[a].kind == AX_LOGUNIFORM ? 2 : sw->ax[a].n;
        for (int j = 0; j < nv; j++) fprintf(f, "%s%s", j ? ", " : " ", sw->ax[a].vals[j]);
        print_condition(f, sw, a);
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
        print_condition(f, sw, a);
        fprintf(f, "  (%s)\n", sw->ax[a].origin);
    }
    const sweep_ctx *c = (const sweep_ctx *)vctx;
    if (c->prune > 0)
        fprintf(f, "  prune=%lld: a column (points equal but for env.size) stops after %lld consecutive sizes without a "
                   "converged seed; sizes run in increasing order, the larger ones of a stopped column are not trained "
                   "(the plan below counts every cell: an upper bound)\n", (long long)c->prune, (long long)c->prune);
}

static int report(void *vctx, const qf_experiment *x, const qf_exp_run *rows, FILE *summary, const char *dir) {
    (void)dir;
    const sweep_ctx *c = (const sweep_ctx *)vctx;
    fprintf(summary, "Mean +- standard error over seeds. converged: seeds with an episode of return >= converge_return "
                     "(deep_sea); pruned: cells not trained by the prune= rule (not failures); eval_return (where evaluations ran): "
                     "mean return of the last greedy evaluation; -: does not apply (regret where no exact V*(s0) is "
                     "known; with one seed the standard error is left out).\n\n");
    print_summary(summary, c, x, rows, 1);
    printf("\n");
    print_summary(stdout, c, x, rows, 0);
    return 0;
}

/* The derived keys of the base (a numeric key whose value is an expression), as columns. */
static int is_derived_word(const qf_config *first, const char *text, char *key, size_t klen) {
    const char *eq = strchr(text, '=');
    if (!eq || (size_t)(eq - text) >= klen) return 0;
    memcpy(key, text, (size_t)(eq - text));
    key[eq - text] = 0;
    return qf_config_key_numeric(first, key) && qf_expr_is_candidate(eq + 1);
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
    int rc = 0, n_all = 0, n_cols = 0;
    const int max_cols = sw.n_axes + sw.base.n + 1;
    qf_config *points = (qf_config *)calloc((size_t)P, sizeof(qf_config));
    char *text = (char *)calloc((size_t)(P * max_cols), 40); /* drawn and derived values */
    char (*derived)[128] = (char (*)[128])calloc((size_t)max_cols, 128);
    const char **values = (const char **)calloc((size_t)(P * max_cols), sizeof(char *));
    const char **cols = (const char **)calloc((size_t)(P * max_cols), sizeof(char *));
    const char **all_keys = (const char **)calloc((size_t)max_cols, sizeof(char *));
    const char **col_keys = (const char **)calloc((size_t)max_cols, sizeof(char *));
    int *is_col = (int *)calloc((size_t)max_cols, sizeof(int));
    if (!points || !text || !derived || !values || !cols || !all_keys || !col_keys || !is_col) {
        fprintf(stderr, "qfleet: out of host memory for %lld points\n", (long long)P);
        rc = 1;
        goto done;
    }
    /* the columns: each swept key once, then the derived keys; runs.csv's: all but env and explore */
    int n_swept = 0;
    for (int a = 0; a < sw.n_axes; a++) {
        int k = 0;
        while (k < n_all && strcmp(all_keys[k], sw.ax[a].key) != 0) k++;
        if (k == n_all) all_keys[n_all++] = sw.ax[a].key;
    }
    n_swept = n_all;
    for (int w = 0; w < sw.base.n; w++)
        if (is_derived_word(&first, sw.base.w[w].text, derived[n_all - n_swept], 128)) {
            all_keys[n_all] = derived[n_all - n_swept];
            n_all++;
        }
    for (int k = 0; k < n_all; k++)
        if (strcmp(all_keys[k], "env") != 0 && strcmp(all_keys[k], "explore") != 0) {
            is_col[k] = 1;
            col_keys[n_cols++] = all_keys[k];
        }
    for (int64_t p = 0; p < P; p++) {
        if (point_config(&sw, p, base_seed, &points[p], msg, sizeof msg)) {
            fprintf(stderr, "qfleet: point %lld: %s\n", (long long)p, msg);
            rc = 2;
            goto done;
        }
        for (int k = 0; k < n_all; k++) {
            char *buf = text + 40 * (p * max_cols + k);
            const char *v = "-";
            if (k < n_swept) {
                for (int a = 0; a < sw.n_axes; a++) {
                    const char *va = strcmp(sw.ax[a].key, all_keys[k]) == 0 ? axis_value(&sw, a, p, base_seed, buf) : NULL;
                    if (va) v = va;
                }
                /* a derived value of an axis (bootstrap{heads=1,2;lr=0.005*heads}): its number in this
                 * point, as for a derived key of the base, not the expression's text */
                if (v != buf && strcmp(v, "-") != 0 && qf_config_key_numeric(&points[p], all_keys[k]) &&
                    qf_expr_is_candidate(v) && qf_config_get(&points[p], all_keys[k], buf, 40) == 0)
                    v = buf;
            } else {
                qf_config_get(&points[p], all_keys[k], buf, 40);
                v = buf;
            }
            values[p * n_all + k] = v;
        }
        for (int k = 0, j = 0; k < n_all; k++)
            if (is_col[k]) cols[p * n_cols + j++] = values[p * n_all + k];
    }
    sweep_ctx sc = {&sw, n_all, all_keys, values, first.prune, NULL, NULL, NULL};
    if (first.prune > 0) {
        if (d->size > 1) {
            fprintf(stderr, "qfleet: prune= decides each cell from the cells before it, one fleet after another: run "
                            "it without mpirun (or remove prune)\n");
            rc = 2;
            goto done_cols;
        }
        for (int64_t p = 0; p < P; p++)
            if (points[p].env != QF_ENV_DEEP_SEA) {
                fprintf(stderr, "qfleet: prune= judges cells by DeepSea's converge_return, but point %lld has env=%s\n",
                        (long long)p, qf_env_spec_of(points[p].env)->name);
                rc = 2;
                goto done_cols;
            }
        if (make_columns(&sc, points, P)) {
            fprintf(stderr, "qfleet: out of host memory for %lld points\n", (long long)P);
            rc = 1;
            goto done_cols;
        }
    }
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
    if (first.prune > 0) x.skip_points = prune_points;
    rc = qf_experiment_run(&x, b, d);
done_cols:
    free(sc.column);
    free(sc.by_column);
    free(sc.column_start);
done:
    free(points);
    free(text);
    free(derived);
    free(values);
    free(cols);
    free(all_keys);
    free(col_keys);
    free(is_col);
    sweep_free(&sw);
    return rc;
}
