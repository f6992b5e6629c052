/* sweep.c — `qfleet sweep`: expansion into points, packing into fleets, running, results (sweep.h). */
#define _POSIX_C_SOURCE 200809L
#include "sweep.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <signal.h>

#include "bench.h"
#include "dist.h"
#include "fleet.h"
#include "results.h"

/* SIGINT / SIGTERM: finish the current step, write a checkpoint, exit. */
static volatile int g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

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

/* Points differing only in keys that shape no fleet (per-run hyperparameters, seed, ...; the key
 * table's scope) share a fleet. */
static int is_per_run(const char *key) {
    const int scope = qf_config_key_scope(key);
    return scope >= 0 && scope != QF_SCOPE_FLEET;
}

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

/* What decides a fleet's shapes: every key but the per-run ones, and the env's parameters. */
static void shape_key(const qf_config *c, char *out, size_t len) {
    size_t used = 0;
    out[0] = 0;
    for (int k = 0; k < qf_config_key_count(); k++) {
        const char *name = qf_config_key_name(k);
        if (is_per_run(name)) continue;
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

/* ---- running ----------------------------------------------------------------------------------- */

typedef struct fleet_plan {
    int64_t first, count; /* points [first, first + count) of the sorted order */
    double bytes_per_run, seconds; /* memory per run, estimated training time */
} fleet_plan;

typedef struct point {
    int64_t index;       /* point number in the sweep */
    double us;           /* estimated microseconds per run-step */
    char shape[4096];
    qf_config cfg;
} point;

static int cmp_point(const void *a, const void *b) {
    const point *x = (const point *)a, *y = (const point *)b;
    const int c = strcmp(x->shape, y->shape);
    if (c) return c;
    return (x->index > y->index) - (x->index < y->index);
}

typedef struct log_ctx {
    qf_log_point *pts; /* [n_logs][R] */
    int64_t n_logs, cap;
    int32_t R;
    int quiet, tty;
    int fleet, n_fleets;
    int64_t steps, runs_done, runs_total;
    double t0;
    /* checkpoints */
    const char *dir;
    uint64_t hash;
    double every, last;  /* seconds between checkpoints (0: never), time of the last one */
    int ckpt_failed;
} log_ctx;

/* ---- checkpoint files: magic, version, the sweep's hash, sizes, payload, FNV-1a checksum ---------- */

#define CKPT_MAGIC "QFLTCKPT"
#define ROWS_MAGIC "QFLTROWS"
#define CKPT_VERSION 2u /* 2: DeepSea params carry the mapping table and thresholds; converged_at */

typedef struct file_header {
    char magic[8];
    uint32_t version, fleet;
    uint64_t hash, a, b, c; /* checkpoint: state bytes, log points, runs; rows: rows, 0, 0 */
    uint64_t checksum;      /* of the payload */
} file_header;

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static uint64_t words_hash(const qf_words *ws) {
    uint64_t h = FNV_INIT;
    for (int i = 0; i < ws->n; i++) h = fnv1a(h, ws->w[i].text, strlen(ws->w[i].text) + 1);
    return h;
}

/* Write header + parts atomically as dir/name. */
static int write_parts(const char *dir, const char *name, file_header *h, const void *p1, size_t n1, const void *p2,
                       size_t n2) {
    char tmp[QF_RESULTS_PATH_CAP];
    h->checksum = fnv1a(fnv1a(FNV_INIT, p1, n1), p2, n2);
    FILE *f = qf_open_atomic(dir, name, tmp, sizeof tmp);
    if (!f) {
        fprintf(stderr, "qfleet: cannot write %s/%s: %s\n", dir, name, strerror(errno));
        return -1;
    }
    const int ok = fwrite(h, sizeof *h, 1, f) == 1 && (n1 == 0 || fwrite(p1, n1, 1, f) == 1) &&
                   (n2 == 0 || fwrite(p2, n2, 1, f) == 1);
    if (!ok) {
        fprintf(stderr, "qfleet: cannot write %s/%s: %s\n", dir, name, strerror(errno));
        fclose(f);
        remove(tmp);
        return -1;
    }
    return qf_close_atomic(f, dir, name, tmp);
}

/* Read and check dir/name: the payload (malloc'd) of a file written by write_parts. 1 when the file
 * does not exist, 0 when it was read, -1 (message printed) when it is not a valid file of this sweep. */
static int read_parts(const char *dir, const char *name, const char *magic, uint64_t hash, file_header *h,
                      char **payload, size_t *n) {
    char path[QF_RESULTS_PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? 1 : (fprintf(stderr, "qfleet: cannot read %s: %s\n", path, strerror(errno)), -1);
    *payload = NULL;
    if (fread(h, sizeof *h, 1, f) != 1 || memcmp(h->magic, magic, 8) != 0) {
        fprintf(stderr, "qfleet: %s is not a qfleet %s file (or is truncated before its header)\n", path,
                strcmp(magic, CKPT_MAGIC) == 0 ? "checkpoint" : "results");
        fclose(f);
        return -1;
    }
    if (h->version != CKPT_VERSION) {
        fprintf(stderr, "qfleet: %s was written by format version %u; this qfleet reads version %u\n", path,
                h->version, CKPT_VERSION);
        fclose(f);
        return -1;
    }
    if (h->hash != hash) {
        fprintf(stderr, "qfleet: %s belongs to another sweep (its configuration differs from sweep.words)\n", path);
        fclose(f);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    const long end = ftell(f);
    fseek(f, (long)sizeof *h, SEEK_SET);
    *n = end > (long)sizeof *h ? (size_t)(end - (long)sizeof *h) : 0;
    *payload = (char *)malloc(*n ? *n : 1);
    if (!*payload || (*n && fread(*payload, *n, 1, f) != 1)) {
        fprintf(stderr, "qfleet: cannot read %s\n", path);
        free(*payload);
        *payload = NULL;
        fclose(f);
        return -1;
    }
    fclose(f);
    if (fnv1a(FNV_INIT, *payload, *n) != h->checksum) {
        fprintf(stderr, "qfleet: %s is corrupted or truncated (checksum mismatch); remove it to start that fleet "
                        "again\n", path);
        free(*payload);
        *payload = NULL;
        return -1;
    }
    return 0;
}

static int write_checkpoint(log_ctx *c, qf_fleet *f) {
    const size_t sb = qf_fleet_snapshot_bytes(f);
    char *state = (char *)malloc(sb);
    if (!state) return -1;
    if (qf_fleet_snapshot(f, state) != QF_OK) {
        fprintf(stderr, "qfleet: checkpoint: %s\n", f->b->err);
        free(state);
        return -1;
    }
    file_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, 8);
    h.version = CKPT_VERSION;
    h.fleet = (uint32_t)c->fleet;
    h.hash = c->hash;
    h.a = sb;
    h.b = (uint64_t)c->n_logs;
    h.c = (uint64_t)c->R;
    char name[64];
    snprintf(name, sizeof name, "fleet_%d.ckpt", c->fleet + 1);
    const int rc = write_parts(c->dir, name, &h, state, sb, c->pts,
                               sizeof(qf_log_point) * (size_t)(c->n_logs * c->R));
    free(state);
    c->last = qf_wall_s();
    return rc;
}

static void on_log(void *vctx, const qf_fleet *f, const qf_log_point *p) {
    log_ctx *c = (log_ctx *)vctx;
    if (c->n_logs == c->cap) {
        const int64_t cap = c->cap ? 2 * c->cap : 64;
        qf_log_point *np = (qf_log_point *)realloc(c->pts, sizeof(qf_log_point) * (size_t)(cap * c->R));
        if (!np) return;
        c->pts = np;
        c->cap = cap;
    }
    memcpy(c->pts + c->n_logs * c->R, p, sizeof(qf_log_point) * (size_t)c->R);
    c->n_logs++;
    if (c->every > 0 && qf_wall_s() - c->last >= c->every && p[0].step < c->steps && !c->ckpt_failed)
        c->ckpt_failed = write_checkpoint(c, (qf_fleet *)f) != 0; /* a failed checkpoint is said once */
    if (c->quiet) return;
    const double frac = (double)p[0].step / (double)c->steps, el = qf_wall_s() - c->t0;
    const double done = (double)c->runs_done + frac * f->R;
    const double eta = done > 0 ? el * ((double)c->runs_total - done) / done : NAN;
    fprintf(stderr, "%sfleet %d/%d  runs %lld/%lld done  %.3g env-steps/s  ETA %.0f s%s", c->tty ? "\r" : "",
            c->fleet + 1, c->n_fleets, (long long)c->runs_done, (long long)c->runs_total, p[0].sps, eta,
            c->tty ? "   " : "\n");
}

static const char *const metric_names[] = {"episodic_return", "episodic_length", "SPS", "td_loss", "q_values",
                                           "grad_norm", "regret", "intrinsic_reward", "distinct_states"};
static double metric(const qf_log_point *p, int m) {
    switch (m) {
    case 0: return p->episodic_return;
    case 1: return p->episodic_length;
    case 2: return p->sps;
    case 3: return p->td_loss;
    case 4: return p->q_values;
    case 5: return p->grad_norm;
    case 6: return p->regret;
    case 7: return p->intrinsic;
    default: return p->distinct >= 0 ? (double)p->distinct : NAN;
    }
}

/* One finished run. */
typedef struct run_row {
    int64_t point;
    int seed, fleet;
    qf_log_point last;
    double ret20;
    int32_t diverged_at;
    int32_t failed; /* the fleet's training failed (a backend error): status "failed" */
} run_row;

/* A run's name, written whole into f: env__explore__key=value...__seed<s>. */
static void put_run_name(FILE *f, const sweep *sw, const point *pt, int seed, uint32_t base_seed) {
    fprintf(f, "%s__%s", qf_env_spec_of(pt->cfg.env)->name, qf_config_choice_name("explore", pt->cfg.explore));
    for (int a = 0; a < sw->n_axes; a++) {
        if (strcmp(sw->ax[a].key, "explore") == 0 || strcmp(sw->ax[a].key, "env") == 0) continue;
        char buf[32];
        fprintf(f, "__%s=%s", sw->ax[a].key, axis_value(sw, a, pt->index, base_seed, buf));
    }
    fprintf(f, "__seed%d", seed);
}

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

static void print_summary(FILE *f, const sweep *sw, const point *pts, const run_row *rows, int64_t n_rows,
                          uint32_t base_seed, int md) {
    const int S = (int)sw->seeds;
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
    for (int64_t p = 0; p < sw->n_points; p++) {
        int k = 0, div = 0;
        for (int64_t i = 0; i < n_rows; i++)
            if (rows[i].point == p && k < S) {
                ret[k] = rows[i].ret20;
                reg[k] = rows[i].last.regret;
                div += rows[i].diverged_at >= 0;
                k++;
            }
        if (!k) continue;
        const point *pt = NULL;
        for (int64_t i = 0; i < sw->n_points; i++)
            if (pts[i].index == p) pt = &pts[i];
        fprintf(f, md ? "| %lld |" : "%-6lld", (long long)p);
        for (int a = 0; a < sw->n_axes; a++) {
            char buf[32];
            fprintf(f, md ? " %s |" : " %-12s", axis_value(sw, a, pt ? pt->index : p, base_seed, buf));
        }
        double m1, s1, m2, s2;
        mean_se(ret, k, &m1, &s1);
        mean_se(reg, k, &m2, &s2);
        char r1[64], r2[64];
        snprintf(r1, sizeof r1, "%.4g +- %.2g", m1, s1);
        snprintf(r2, sizeof r2, "%.4g +- %.2g", m2, s2);
        fprintf(f, md ? " %d | %d | %s | %s |\n" : " %5d %8d %22s %22s\n", k, div, r1, r2);
    }
    free(ret);
    free(reg);
}

/* Bytes per run and microseconds per run-step of one run of configuration c (bench's timing loop,
 * about 0.05 s of steps). The estimate uses the process's CPU time, not the wall time: on a machine
 * where other processes hold the cores, a 0.05 s wall window may hold a small share of a core (an
 * estimate 100x too long was seen), while the CPU time is the work itself. load receives wall/CPU. */
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

int qf_cmd_sweep(const qf_words *ws, qf_backend *b, const qf_dist *d) {
    sweep sw;
    qf_config first;
    char msg[1024], dir[QF_RESULTS_DIR_CAP], tmp[QF_RESULTS_PATH_CAP];
    if (build(ws, &sw, &first, msg, sizeof msg)) {
        fprintf(stderr, "qfleet: %s\n", msg);
        return 2;
    }
    const uint32_t base_seed = (uint32_t)first.seed;
    int rc = 0;
    point *pts = (point *)calloc((size_t)sw.n_points, sizeof(point));
    run_row *rows = (run_row *)calloc((size_t)(sw.n_points * sw.seeds), sizeof(run_row));
    fleet_plan *plans = (fleet_plan *)calloc((size_t)sw.n_points, sizeof(fleet_plan));
    FILE *curves = NULL;
    if (!pts || !rows || !plans) {
        fprintf(stderr, "qfleet: out of host memory for %lld points\n", (long long)sw.n_points);
        rc = 1;
        goto done;
    }
    for (int64_t p = 0; p < sw.n_points; p++) {
        pts[p].index = p;
        if (point_config(&sw, p, base_seed, &pts[p].cfg, msg, sizeof msg)) {
            fprintf(stderr, "qfleet: point %lld: %s\n", (long long)p, msg);
            rc = 2;
            goto done;
        }
        shape_key(&pts[p].cfg, pts[p].shape, sizeof pts[p].shape);
    }
    qsort(pts, (size_t)sw.n_points, sizeof(point), cmp_point);

    /* pack: consecutive points of one shape, as many as memory and max_runs allow */
    int n_fleets = 0;
    double probe_load = 1.0; /* the largest wall/CPU ratio a probe saw (> 1: other processes compete) */
    for (int64_t p = 0; p < sw.n_points && d->rank == 0;) { /* rank 0 plans, the others receive the plan */
        int64_t q = p;
        while (q < sw.n_points && strcmp(pts[q].shape, pts[p].shape) == 0) q++;
        /* bytes per run and speed from one run of each cost class (strategy, heads, bonus) of this
         * shape: a few timed steps each; a fleet's runs take the largest class's bytes (K heads) */
        double bpr = 0.0;
        struct { char cls[64]; double us, bytes, load; } probes[16];
        int n_probes = 0;
        for (int64_t j = p; j < q; j++) {
            char cls[64];
            snprintf(cls, sizeof cls, "%d/%lld/%d", (int)pts[j].cfg.explore, (long long)pts[j].cfg.heads,
                     (int)pts[j].cfg.bonus);
            int k = 0;
            while (k < n_probes && strcmp(probes[k].cls, cls) != 0) k++;
            if (k == n_probes && n_probes < 16) {
                char err[768];
                if (probe(b, &pts[j].cfg, &probes[k].bytes, &probes[k].us, &probes[k].load, err, sizeof err)) {
                    fprintf(stderr, "qfleet: point %lld: %s\n", (long long)pts[j].index, err);
                    rc = 2;
                    goto planned;
                }
                snprintf(probes[k].cls, sizeof probes[k].cls, "%s", cls);
                n_probes++;
            }
            if (k == 16) k = 15;
            pts[j].us = probes[k].us;
            probe_load = probes[k].load > probe_load ? probes[k].load : probe_load;
            bpr = probes[k].bytes > bpr ? probes[k].bytes : bpr;
        }
        const double mem_runs = 0.8 * (double)b->mem_free / bpr;
        int64_t cap_runs = pts[p].cfg.max_runs < (int64_t)mem_runs ? pts[p].cfg.max_runs : (int64_t)mem_runs;
        int64_t per_fleet = cap_runs / sw.seeds;
        if (per_fleet < 1) {
            fprintf(stderr, "qfleet: point %lld: %lld seeds of %.3g MB each do not fit one fleet (max_runs=%lld, "
                            "%.3g GB free)\n", (long long)pts[p].index, (long long)sw.seeds, bpr / 1e6,
                    (long long)pts[p].cfg.max_runs, (double)b->mem_free / 1e9);
            rc = 2;
            goto planned;
        }
        for (int64_t s = p; s < q; s += per_fleet) {
            plans[n_fleets].first = s;
            plans[n_fleets].count = q - s < per_fleet ? q - s : per_fleet;
            plans[n_fleets].bytes_per_run = bpr;
            plans[n_fleets].seconds = 0.0;
            for (int64_t j = s; j < s + plans[n_fleets].count; j++)
                plans[n_fleets].seconds += 1e-6 * pts[j].us * (double)sw.seeds * (double)pts[j].cfg.steps;
            n_fleets++;
        }
        p = q;
    }
planned:
    rc = qf_dist_max(d, rc);
    if (rc) goto done;
    qf_dist_bcast(d, &n_fleets, sizeof n_fleets);
    qf_dist_bcast(d, plans, sizeof(fleet_plan) * (size_t)n_fleets);
    const int64_t runs_total = sw.n_points * sw.seeds;
    double est_total = 0.0;
    for (int i = 0; i < n_fleets; i++) est_total += plans[i].seconds;
    if (d->rank == 0)
        printf("qfleet sweep: %lld points x %lld seeds = %lld runs in %d fleet%s on %s (%s)%s\n", (long long)sw.n_points,
               (long long)sw.seeds, (long long)runs_total, n_fleets, n_fleets == 1 ? "" : "s", b->name, b->device,
               d->size > 1 ? ", across MPI ranks" : "");
    for (int a = 0; a < sw.n_axes && d->rank == 0; a++) {
        static const char *const kinds[] = {"grid", "uniform", "loguniform", "choice"};
        printf("  axis %-14s %-10s", sw.ax[a].key, kinds[sw.ax[a].kind]);
        const int nv = sw.ax[a].kind == AX_UNIFORM || sw.ax[a].kind == AX_LOGUNIFORM ? 2 : sw.ax[a].n;
        for (int j = 0; j < nv; j++) printf("%s%s", j ? ", " : " ", sw.ax[a].vals[j]);
        printf("  (%s)\n", sw.ax[a].origin);
    }
    if (ws->dry_run && d->rank > 0) goto done;
    if (ws->dry_run) {
        printf("%6s %7s %7s %14s %12s  %s\n", "fleet", "points", "runs", "bytes/run", "est. time", "shape");
        for (int i = 0; i < n_fleets; i++) {
            const qf_config *c = &pts[plans[i].first].cfg;
            char hid[64];
            qf_config_get(c, "hidden", hid, sizeof hid);
            printf("%6d %7lld %7lld %14.4g %11.1fs  %s envs=%lld hidden=%s batch=%lld buffer=%lld steps=%lld\n", i + 1,
                   (long long)plans[i].count, (long long)(plans[i].count * sw.seeds), plans[i].bytes_per_run,
                   plans[i].seconds,
                   qf_env_spec_of(c->env)->name, (long long)c->envs, hid, (long long)c->batch, (long long)c->buffer,
                   (long long)c->steps);
        }
        printf("estimated time: %.0f s of CPU time (one run per strategy and shape timed for about 0.05 s, in CPU time so "
               "that other processes do not inflate it; runs add up linearly in this estimate, so a fleet spread over "
               "several cores or a GPU takes less wall time).", est_total);
        if (probe_load > 1.5)
            printf(" Other processes are competing for this machine now: a probe took %.1fx its CPU time in wall time.",
                   probe_load);
        printf(" --dry-run: nothing was trained.\n");
        goto done;
    }

    if (ws->resume[0])
        snprintf(dir, sizeof dir, "%s", ws->resume);
    else
        qf_results_dir(dir, sizeof dir, first.out, "sweep");
    qf_dist_bcast(d, dir, sizeof dir); /* rank 0 names the folder (its clock) */
    const uint64_t hash = words_hash(ws);
    if (!ws->resume[0] && d->rank == 0) {
        if (qf_mkdir_p(dir)) {
            fprintf(stderr, "qfleet: cannot create the results folder %s: %s\n", dir, strerror(errno));
            rc = 1;
            goto done;
        }
        /* the words, so that --resume rebuilds exactly this sweep */
        FILE *wf = qf_open_atomic(dir, "sweep.words", tmp, sizeof tmp);
        if (!wf) {
            fprintf(stderr, "qfleet: cannot write into %s: %s\n", dir, strerror(errno));
            rc = 1;
            goto done;
        }
        for (int i = 0; i < ws->n; i++) fprintf(wf, "%s\t%s\n", ws->w[i].origin, ws->w[i].text);
        if (qf_close_atomic(wf, dir, "sweep.words", tmp)) {
            rc = 1;
            goto done;
        }
    }
    rc = qf_dist_max(d, rc);
    if (rc) goto done;
    if (d->rank == 0) printf("results: %s (estimated %.0f s)%s\n", dir, est_total, ws->resume[0] ? ", resuming" : "");
    fflush(stdout);
    int64_t n_rows = 0;
    const double t_start = qf_wall_s();
    g_stop = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int64_t first_row = 0;
    for (int i = 0; i < n_fleets && rc == 0; first_row += plans[i].count * sw.seeds, i++) {
        if (i % d->size != d->rank) continue; /* another rank's fleet */
        const fleet_plan *pl = &plans[i];
        const int32_t R = (int32_t)(pl->count * sw.seeds);
        char part[64];
        /* a finished fleet: its rows are on disk */
        snprintf(part, sizeof part, "fleet_%d.rows", i + 1);
        file_header h;
        char *payload = NULL;
        size_t pn = 0;
        int rr = read_parts(dir, part, ROWS_MAGIC, hash, &h, &payload, &pn);
        if (rr < 0) {
            rc = 1;
            break;
        }
        if (rr == 0) {
            if (h.a != (uint64_t)R || pn != sizeof(run_row) * (size_t)R) {
                fprintf(stderr, "qfleet: %s/%s does not match fleet %d of this sweep\n", dir, part, i + 1);
                free(payload);
                rc = 1;
                break;
            }
            free(payload);
            continue;
        }
        qf_run_hp *hp = (qf_run_hp *)calloc((size_t)R, sizeof(qf_run_hp));
        uint32_t *keys = (uint32_t *)calloc((size_t)R * 2, sizeof(uint32_t));
        if (!hp || !keys) {
            free(hp);
            free(keys);
            fprintf(stderr, "qfleet: out of host memory\n");
            rc = 1;
            break;
        }
        for (int64_t j = 0; j < pl->count; j++)
            for (int s = 0; s < sw.seeds; s++) {
                const point *pt = &pts[pl->first + j];
                const int64_t r = j * sw.seeds + s;
                qf_fleet_hp_from_config(&pt->cfg, &hp[r]);
                keys[2 * r] = (uint32_t)(pt->cfg.seed + (uint64_t)s); /* run (point, seed): key (seed + s, point) */
                keys[2 * r + 1] = (uint32_t)pt->index;
            }
        qf_config fc = pts[pl->first].cfg;
        fc.runs = pl->count;
        fc.seeds = sw.seeds;
        qf_fleet fl;
        char err[768];
        if (qf_fleet_create(&fl, b, &fc, hp, keys, err, sizeof err) != QF_OK) {
            fprintf(stderr, "qfleet: fleet %d: %s\n", i + 1, err);
            free(hp);
            free(keys);
            rc = 2;
            break;
        }
        fl.stop = &g_stop;
        log_ctx lc;
        memset(&lc, 0, sizeof lc);
        lc.R = R;
        lc.quiet = ws->quiet || d->rank > 0;
        lc.tty = isatty(2);
        lc.fleet = i;
        lc.n_fleets = n_fleets;
        lc.steps = fc.steps;
        lc.runs_done = n_rows;
        lc.runs_total = runs_total;
        lc.t0 = t_start;
        lc.dir = dir;
        lc.hash = hash;
        lc.every = first.checkpoint_seconds;
        lc.last = qf_wall_s();
        /* a fleet stopped part-way: its checkpoint */
        char ckname[64];
        snprintf(ckname, sizeof ckname, "fleet_%d.ckpt", i + 1);
        rr = read_parts(dir, ckname, CKPT_MAGIC, hash, &h, &payload, &pn);
        if (rr == 0 && h.fleet == (uint32_t)i) {
            const size_t sb = qf_fleet_snapshot_bytes(&fl);
            if (h.a != sb || h.c != (uint64_t)R || pn != sb + sizeof(qf_log_point) * (size_t)(h.b * h.c)) {
                fprintf(stderr, "qfleet: %s/%s does not match fleet %d of this sweep (sizes differ)\n", dir,
                        ckname, i + 1);
                rr = -1;
            } else if (qf_fleet_restore(&fl, payload) != QF_OK) {
                fprintf(stderr, "qfleet: restoring the checkpoint: %s\n", b->err);
                rr = -1;
            } else {
                lc.n_logs = lc.cap = (int64_t)h.b;
                lc.pts = (qf_log_point *)malloc(sizeof(qf_log_point) * (size_t)(lc.cap * R + 1));
                if (lc.pts) memcpy(lc.pts, payload + sb, sizeof(qf_log_point) * (size_t)(lc.n_logs * R));
                if (!ws->quiet)
                    fprintf(stderr, "qfleet: fleet %d resumes at step %lld of %lld\n", i + 1, (long long)fl.t,
                            (long long)fc.steps);
            }
        } else if (rr == 0) {
            fprintf(stderr, "qfleet: %s/%s is for fleet %u, not fleet %d\n", dir, ckname, h.fleet + 1, i + 1);
            rr = -1;
        }
        free(payload);
        if (rr < 0) {
            qf_fleet_destroy(&fl);
            free(hp);
            free(keys);
            rc = 1;
            break;
        }
        const int trc = qf_fleet_train(&fl, fc.steps - fl.t, on_log, &lc, err, sizeof err);
        if (trc != QF_OK) {
            fprintf(stderr, "%sqfleet: fleet %d: training failed: %s (its runs are marked failed; the other fleets go "
                            "on)\n", lc.tty ? "\n" : "", i + 1, err);
        } else if (g_stop && fl.t < fc.steps) {
            const int cw = write_checkpoint(&lc, &fl);
            fprintf(stderr, "%sqfleet: interrupted at step %lld of fleet %d; %s\n", lc.tty ? "\n" : "", (long long)fl.t,
                    i + 1, cw ? "the checkpoint could not be written (the last one, if any, is kept)"
                              : "checkpoint written");
            fprintf(stderr, "qfleet: resume with: qfleet sweep --resume %s\n", dir);
            rc = 130;
        }
        for (int32_t r = 0; r < R && rc == 0; r++) {
            const point *pt = &pts[pl->first + r / sw.seeds];
            run_row *row = &rows[first_row + r];
            memset(row, 0, sizeof *row);
            row->point = pt->index;
            row->seed = (int)(r % sw.seeds);
            row->fleet = i;
            row->diverged_at = fl.diverged_at[r];
            row->failed = trc != QF_OK || !lc.n_logs;
            if (row->failed) {
                row->ret20 = row->last.td_loss = row->last.q_values = row->last.regret = row->last.intrinsic = NAN;
                row->last.distinct = -1;
                continue;
            }
            row->last = lc.pts[(lc.n_logs - 1) * R + r];
            int64_t cnt;
            row->ret20 = qf_recent_return(lc.pts, lc.n_logs, R, r, &cnt);
        }
        if (rc == 0) {
            /* this fleet's curves, then its rows (the rows mark it finished), then no checkpoint */
            char cpart[64];
            snprintf(cpart, sizeof cpart, "fleet_%d.curves", i + 1);
            FILE *cf = qf_open_atomic(dir, cpart, tmp, sizeof tmp);
            int wrc = cf ? 0 : -1;
            for (int32_t r = 0; r < R && cf; r++) {
                const point *pt = &pts[pl->first + r / sw.seeds];
                for (int64_t l = 0; l < lc.n_logs; l++) {
                    const qf_log_point *p = &lc.pts[l * R + r];
                    for (int m = 0; m < 9; m++) {
                        const double v = metric(p, m);
                        if (isnan(v)) continue;
                        fprintf(cf, "%lld,", (long long)(first_row + r));
                        put_run_name(cf, &sw, pt, (int)(r % sw.seeds), base_seed);
                        fprintf(cf, ",%lld,%lld,%s,%.9g\n", (long long)p->step, (long long)p->env_steps,
                                metric_names[m], v);
                    }
                }
            }
            if (cf) wrc = qf_close_atomic(cf, dir, cpart, tmp);
            memset(&h, 0, sizeof h);
            memcpy(h.magic, ROWS_MAGIC, 8);
            h.version = CKPT_VERSION;
            h.fleet = (uint32_t)i;
            h.hash = hash;
            h.a = (uint64_t)R;
            if (wrc || write_parts(dir, part, &h, &rows[first_row], sizeof(run_row) * (size_t)R, NULL, 0)) {
                fprintf(stderr, "qfleet: cannot record fleet %d in %s (disk full?); the earlier fleets are kept\n",
                        i + 1, dir);
                rc = 1;
            } else {
                char ck[QF_RESULTS_PATH_CAP];
                snprintf(ck, sizeof ck, "%s/%s", dir, ckname);
                remove(ck);
            }
        }
        free(lc.pts);
        qf_fleet_destroy(&fl);
        free(hp);
        free(keys);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    /* every rank's fleets are recorded in the folder: rank 0 reads them all, in fleet order */
    {
        const int rc_own = rc;
        rc = qf_dist_max(d, rc);
        qf_dist_barrier(d);
        if (d->rank > 0 || rc) {
            rc = rc_own ? rc_own : rc;
            goto done;
        }
    }
    for (int i = 0; i < n_fleets && rc == 0; i++) {
        char part[64];
        snprintf(part, sizeof part, "fleet_%d.rows", i + 1);
        file_header h;
        char *payload = NULL;
        size_t pn = 0;
        const int64_t R = plans[i].count * sw.seeds;
        if (read_parts(dir, part, ROWS_MAGIC, hash, &h, &payload, &pn) != 0 || pn != sizeof(run_row) * (size_t)R) {
            fprintf(stderr, "qfleet: fleet %d's results are missing or wrong in %s\n", i + 1, dir);
            free(payload);
            rc = 1;
            break;
        }
        memcpy(&rows[n_rows], payload, pn);
        n_rows += R;
        free(payload);
    }
    if (rc == 0) { /* every fleet finished: merge the curves */
        curves = qf_open_atomic(dir, "curves.csv", tmp, sizeof tmp);
        if (!curves) {
            fprintf(stderr, "qfleet: cannot write into %s: %s\n", dir, strerror(errno));
            rc = 1;
        } else {
            fprintf(curves, "run,name,step,env_steps,metric,value\n");
            for (int i = 0; i < n_fleets; i++) {
                char path[QF_RESULTS_PATH_CAP], line[2048];
                snprintf(path, sizeof path, "%s/fleet_%d.curves", dir, i + 1);
                FILE *cf = fopen(path, "r");
                if (!cf) {
                    fprintf(stderr, "qfleet: %s is missing\n", path);
                    rc = 1;
                    break;
                }
                while (fgets(line, sizeof line, cf)) fputs(line, curves);
                fclose(cf);
            }
        }
    }
    if (!ws->quiet && isatty(2)) fprintf(stderr, "\n");
    if (rc == 0 && n_rows) {
        int wrc = qf_close_atomic(curves, dir, "curves.csv", tmp);
        curves = NULL;
        FILE *f = qf_open_atomic(dir, "runs.csv", tmp, sizeof tmp);
        if (f) {
            fprintf(f, "run,name,fleet,point");
            for (int a = 0; a < sw.n_axes; a++) fprintf(f, ",%s", sw.ax[a].key);
            fprintf(f, ",seed,status,diverged_at_update,episodes,return_last20,td_loss,q_values,regret,first_treasure,"
                       "episodes_to_solve,episodes_to_converge,distinct_states,intrinsic_reward\n");
            for (int64_t i = 0; i < n_rows; i++) {
                const run_row *rw = &rows[i];
                const point *pt = NULL;
                for (int64_t p = 0; p < sw.n_points && !pt; p++)
                    if (pts[p].index == rw->point) pt = &pts[p];
                fprintf(f, "%lld,", (long long)i);
                put_run_name(f, &sw, pt, rw->seed, base_seed);
                fprintf(f, ",%d,%lld", rw->fleet + 1, (long long)rw->point);
                for (int a = 0; a < sw.n_axes; a++) {
                    char buf[32];
                    fprintf(f, ",\"%s\"", axis_value(&sw, a, rw->point, base_seed, buf));
                }
                fprintf(f, ",%lld,%s,%d,%lld", (long long)(pt->cfg.seed + rw->seed),
                        rw->failed ? "failed" : rw->diverged_at >= 0 ? "diverged" : "finished", rw->diverged_at,
                        (long long)rw->last.episodes);
                qf_csv_num(f, rw->ret20);
                qf_csv_num(f, rw->last.td_loss);
                qf_csv_num(f, rw->last.q_values);
                qf_csv_num(f, rw->last.regret);
                qf_csv_num(f, rw->last.first_treasure ? (double)rw->last.first_treasure : NAN);
                qf_csv_num(f, rw->last.solved_at ? (double)rw->last.solved_at : NAN);
                qf_csv_num(f, rw->last.converged_at ? (double)rw->last.converged_at : NAN);
                qf_csv_num(f, rw->last.distinct >= 0 ? (double)rw->last.distinct : NAN);
                qf_csv_num(f, rw->last.intrinsic);
                fprintf(f, "\n");
            }
            wrc |= qf_close_atomic(f, dir, "runs.csv", tmp);
        } else {
            wrc = -1;
        }
        f = qf_open_atomic(dir, "summary.md", tmp, sizeof tmp);
        if (f) {
            fprintf(f, "# Sweep summary\n\n%lld points x %lld seeds; mean +- standard error over seeds.\n\n",
                    (long long)sw.n_points, (long long)sw.seeds);
            print_summary(f, &sw, pts, rows, n_rows, base_seed, 1);
            wrc |= qf_close_atomic(f, dir, "summary.md", tmp);
        } else {
            wrc = -1;
        }
        f = qf_open_atomic(dir, "config.txt", tmp, sizeof tmp);
        if (f) {
            qf_config_print(f, &first);
            for (int a = 0; a < sw.n_axes; a++) {
                static const char *const kinds[] = {"grid", "uniform", "loguniform", "choice"};
                fprintf(f, "# sweep axis %s: %s", sw.ax[a].key, kinds[sw.ax[a].kind]);
                const int nv = sw.ax[a].kind == AX_UNIFORM || sw.ax[a].kind == AX_LOGUNIFORM ? 2 : sw.ax[a].n;
                for (int j = 0; j < nv; j++) fprintf(f, "%s%s", j ? ", " : " ", sw.ax[a].vals[j]);
                fprintf(f, "\n");
            }
            wrc |= qf_close_atomic(f, dir, "config.txt", tmp);
        } else {
            wrc = -1;
        }
        printf("\n");
        print_summary(stdout, &sw, pts, rows, n_rows, base_seed, 0);
        printf("\n%lld runs in %.1f s; results: %s/{runs.csv,curves.csv,summary.md,config.txt}\n", (long long)n_rows,
               qf_wall_s() - t_start, dir);
        int64_t n_failed = 0;
        for (int64_t i = 0; i < n_rows; i++) n_failed += rows[i].failed;
        if (n_failed) {
            fprintf(stderr, "qfleet: %lld runs failed (status failed in runs.csv); the others finished\n",
                    (long long)n_failed);
            rc = rc ? rc : 1;
        }
        if (wrc) {
            fprintf(stderr, "qfleet: writing the results into %s failed: %s\n", dir, strerror(errno));
            rc = rc ? rc : 1;
        } else {
            for (int i = 0; i < n_fleets; i++) { /* merged: the parts go */
                char path[QF_RESULTS_PATH_CAP];
                snprintf(path, sizeof path, "%s/fleet_%d.curves", dir, i + 1);
                remove(path);
                snprintf(path, sizeof path, "%s/fleet_%d.rows", dir, i + 1);
                remove(path);
            }
        }
    }
done:
    if (curves) {
        fclose(curves);
        remove(tmp);
    }
    free(pts);
    free(rows);
    free(plans);
    sweep_free(&sw);
    return rc;
}
