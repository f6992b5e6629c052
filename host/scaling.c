/* scaling.c — the scaling study's prune rule and psi fit (scaling.h). */
#define _POSIX_C_SOURCE 200809L
#include "scaling.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results.h"

/* ---- the prune rule ------------------------------------------------------------------------------ */

int qf_prune_next(const int *outcome, int n, int m) {
    if (m <= 0 || n <= 0) return 0;
    if (outcome[n - 1] == QF_CELL_PRUNED) return 1;
    int run = 0; /* consecutive failed cells ending at the last one */
    for (int i = n - 1; i >= 0 && outcome[i] == QF_CELL_FAILED; i--) run++;
    return run >= m;
}

/* ---- the law and its fit ------------------------------------------------------------------------- */

double qf_scaling_p(double psi, double heads, double size) {
    /* 1 - (1 - psi^n)^K = -expm1(K log1p(-psi^n)), accurate where psi^n is tiny or P is near 1 */
    const double q = pow(psi, size);
    if (q >= 1.0) return 1.0;
    return -expm1(heads * log1p(-q));
}

double qf_scaling_loglik(const qf_cell *cells, int n, double psi) {
    double ll = 0.0;
    for (int i = 0; i < n; i++) {
        const qf_cell *c = &cells[i];
        const double q = pow(psi, c->size);
        const double log_fail = q >= 1.0 ? -INFINITY : c->heads * log1p(-q); /* log(1 - P) */
        const double p = -expm1(log_fail);                                    /* P */
        if (c->success > 0) {
            if (!(p > 0.0)) return -INFINITY;
            ll += c->success * log(p);
        }
        if (c->runs - c->success > 0) {
            if (log_fail == -INFINITY) return -INFINITY;
            ll += (c->runs - c->success) * log_fail;
        }
    }
    return ll;
}

/* chi-squared quantile with one degree of freedom: the square of the normal quantile at (1+level)/2
 * (Acklam's rational approximation, relative error < 1.2e-9, refined by one Newton step on erfc). */
static double normal_quantile(double p) {
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                               1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                               6.680131188771972e+01,  -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                               -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    double x;
    if (p < 0.02425) {
        const double q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p > 1 - 0.02425) {
        const double q = sqrt(-2 * log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else {
        const double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    const double e = 0.5 * erfc(-x / sqrt(2.0)) - p; /* one Newton step */
    return x - e * sqrt(2 * 3.14159265358979323846) * exp(x * x / 2);
}

int qf_scaling_fit(const qf_cell *cells, int n, double level, double *psi, double *lo, double *hi, double *loglik) {
    double total = 0.0;
    for (int i = 0; i < n; i++) total += cells[i].runs;
    if (n <= 0 || !(total > 0.0)) return -1;
    /* the grid, then golden section around its best point */
    const int G = 4000;
    int best = 0;
    double best_ll = -INFINITY;
    for (int g = 0; g <= G; g++) {
        const double ll = qf_scaling_loglik(cells, n, (double)g / G);
        if (ll > best_ll) {
            best_ll = ll;
            best = g;
        }
    }
    double a = best > 0 ? (double)(best - 1) / G : 0.0, b = best < G ? (double)(best + 1) / G : 1.0;
    const double r = (sqrt(5.0) - 1) / 2;
    double x1 = b - r * (b - a), x2 = a + r * (b - a);
    double f1 = qf_scaling_loglik(cells, n, x1), f2 = qf_scaling_loglik(cells, n, x2);
    for (int it = 0; it < 100 && b - a > 1e-13; it++) {
        if (f1 < f2) {
            a = x1;
            x1 = x2;
            f1 = f2;
            x2 = a + r * (b - a);
            f2 = qf_scaling_loglik(cells, n, x2);
        } else {
            b = x2;
            x2 = x1;
            f2 = f1;
            x1 = b - r * (b - a);
            f1 = qf_scaling_loglik(cells, n, x1);
        }
    }
    double p_hat = (a + b) / 2, ll_hat = qf_scaling_loglik(cells, n, p_hat);
    if (best_ll > ll_hat) { /* a grid end (0 or 1) beats the interior */
        p_hat = (double)best / G;
        ll_hat = best_ll;
    }
    const double z = normal_quantile((1 + level) / 2), cut = ll_hat - z * z / 2;
    /* each end: where the log-likelihood falls to the cut, by bisection (it is unimodal in psi) */
    double ends[2];
    for (int side = 0; side < 2; side++) {
        const double edge = side ? 1.0 : 0.0;
        if (qf_scaling_loglik(cells, n, edge) >= cut) {
            ends[side] = edge;
            continue;
        }
        double in = p_hat, out = edge;
        for (int it = 0; it < 200 && fabs(out - in) > 1e-9; it++) {
            const double mid = (in + out) / 2;
            if (qf_scaling_loglik(cells, n, mid) >= cut) in = mid;
            else out = mid;
        }
        ends[side] = (in + out) / 2;
    }
    *psi = p_hat;
    *lo = ends[0];
    *hi = ends[1];
    if (loglik) *loglik = ll_hat;
    return 0;
}

double qf_scaling_frontier(double psi, double heads, double p) {
    return log(-expm1(log1p(-p) / heads)) / log(psi);
}

/* ---- qfleet fit DIR -------------------------------------------------------------------------------- */

/* Split a CSV line into fields in place (quotes around a field are removed; "" inside is not used
 * by qfleet's files). Returns the count, at most cap. */
static int csv_split(char *line, char **f, int cap) {
    int n = 0;
    char *p = line;
    line[strcspn(line, "\r\n")] = 0;
    while (n < cap) {
        if (*p == '"') {
            char *q = strchr(p + 1, '"');
            if (!q) return -1;
            *q = 0;
            f[n++] = p + 1;
            p = q + 1;
            if (*p == ',') p++;
            else if (*p) return -1;
            else break;
            continue;
        }
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

static int find_col(char **h, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(h[i], name) == 0) return i;
    return -1;
}

typedef struct method_cells {
    double prior_scale;
    qf_cell *c;
    int n, cap;
    int64_t runs;
} method_cells;

static qf_cell *cell_of(method_cells *m, double heads, double size) {
    for (int i = 0; i < m->n; i++)
        if (m->c[i].heads == heads && m->c[i].size == size) return &m->c[i];
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 32;
        qf_cell *g = (qf_cell *)realloc(m->c, sizeof(qf_cell) * (size_t)m->cap);
        if (!g) return NULL;
        m->c = g;
    }
    m->c[m->n] = (qf_cell){heads, size, 0, 0};
    return &m->c[m->n++];
}

static int cmp_cell(const void *a, const void *b) {
    const qf_cell *x = (const qf_cell *)a, *y = (const qf_cell *)b;
    if (x->heads != y->heads) return x->heads < y->heads ? -1 : 1;
    return (x->size > y->size) - (x->size < y->size);
}

static int num_of(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return errno || end == s || *end || !isfinite(*v) ? -1 : 0;
}

int qf_cmd_fit(int argc, char **argv) {
    const char *dir = NULL;
    double level = 0.95;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: qfleet fit DIR [level=0.95]\n  fits P(convergence) = 1 - (1 - psi^n)^K per method (BDQN: "
                   "prior_scale=0, RP-BDQN: prior_scale>0) to the explore=bootstrap runs of DIR/runs.csv by binomial "
                   "maximum likelihood; prints psi with its profile-likelihood interval at level; writes DIR/fit.csv "
                   "and DIR/cells.csv\n");
            return 0;
        }
        if (strncmp(argv[i], "level=", 6) == 0) {
            if (num_of(argv[i] + 6, &level) || !(level > 0 && level < 1)) {
                fprintf(stderr, "qfleet: bad value for level: '%s' (allowed: a number in (0, 1), e.g. 0.95)\n",
                        argv[i] + 6);
                return 2;
            }
        } else if (!dir && !strchr(argv[i], '=')) {
            dir = argv[i];
        } else {
            fprintf(stderr, "qfleet: fit takes a results folder and level=P: `qfleet fit DIR [level=0.95]` (got '%s')\n",
                    argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "qfleet: fit needs a results folder: `qfleet fit DIR [level=0.95]`\n");
        return 2;
    }
    /* defaults of K, n and prior_scale from config.txt, for the keys the sweep did not vary */
    char path[QF_RESULTS_PATH_CAP];
    double def_heads = NAN, def_size = NAN, def_prior = NAN, preset_prior = NAN;
    snprintf(path, sizeof path, "%s/config.txt", dir);
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    if (f) {
        while (getline(&line, &cap, f) >= 0) {
            line[strcspn(line, "\r\n")] = 0;
            double v;
            if (strncmp(line, "heads=", 6) == 0 && !num_of(line + 6, &v)) def_heads = v;
            if (strncmp(line, "prior_scale=", 12) == 0 && !num_of(line + 12, &v)) def_prior = v;
            if (strncmp(line, "env.size=", 9) == 0 && !num_of(line + 9, &v)) def_size = v;
            /* compare's preset for its bootstrap runs ("# bootstrap: explore=bootstrap prior_scale=10
             * (then the user's words)"): their prior_scale unless the user gave one */
            const char *ps = strncmp(line, "# bootstrap:", 12) == 0 ? strstr(line, " prior_scale=") : NULL;
            if (ps) {
                char word[64];
                snprintf(word, sizeof word, "%s", ps + 13);
                word[strcspn(word, " ")] = 0;
                if (!num_of(word, &v)) preset_prior = v;
            }
        }
        fclose(f);
    }
    if (!isnan(preset_prior)) { /* the user's prior_scale= (run.words), if any, came after the preset */
        snprintf(path, sizeof path, "%s/run.words", dir);
        int user_prior = 0;
        if ((f = fopen(path, "r"))) {
            while (getline(&line, &cap, f) >= 0) {
                const char *w = strchr(line, '\t');
                user_prior |= w && strncmp(w + 1, "prior_scale=", 12) == 0;
            }
            fclose(f);
        }
        if (!user_prior) def_prior = preset_prior;
    }
    snprintf(path, sizeof path, "%s/runs.csv", dir);
    f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "qfleet: fit: cannot read %s (%s); is %s a finished results folder of `qfleet sweep`?\n", path,
                strerror(errno), dir);
        free(line);
        return 2;
    }
    enum { MAXF = 256 };
    char *h[MAXF], *hline = NULL;
    int nh = 0, rc = 0;
    if (getline(&line, &cap, f) < 0 || !(hline = strdup(line)) || (nh = csv_split(hline, h, MAXF)) <= 0) {
        fprintf(stderr, "qfleet: fit: %s is empty\n", path);
        fclose(f);
        free(line);
        free(hline);
        return 2;
    }
    const int c_explore = find_col(h, nh, "explore"), c_status = find_col(h, nh, "status"),
              c_conv = find_col(h, nh, "episodes_to_converge"), c_heads = find_col(h, nh, "heads"),
              c_prior = find_col(h, nh, "prior_scale"), c_size = find_col(h, nh, "env.size"),
              c_env = find_col(h, nh, "env");
    if (c_explore < 0 || c_status < 0 || c_conv < 0 || c_env < 0) {
        /* name what is missing; a folder of bandits, irl or infer is named as such */
        const char *kind = find_col(h, nh, "ucb1_bound") >= 0 ? "bandits" : find_col(h, nh, "true_regret") >= 0 ? "irl"
                           : find_col(h, nh, "v_inference") >= 0 ? "infer" : NULL;
        if (kind)
            fprintf(stderr, "qfleet: fit: %s is the runs.csv of a `qfleet %s` folder; fit reads a DeepSea sweep's "
                            "(train, sweep or compare) episodes_to_converge\n", path, kind);
        else
            fprintf(stderr, "qfleet: fit: %s lacks the column(s)%s%s%s%s (written by an older qfleet?)\n", path,
                    c_env < 0 ? " env" : "", c_explore < 0 ? " explore" : "", c_status < 0 ? " status" : "",
                    c_conv < 0 ? " episodes_to_converge" : "");
        fclose(f);
        free(line);
        free(hline);
        return 2;
    }
    method_cells m[16];
    int n_methods = 0;
    int64_t n_pruned = 0, n_failed = 0, line_no = 1;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        line_no++;
        char *v[MAXF];
        const int nv = csv_split(line, v, MAXF);
        if (nv != nh) {
            fprintf(stderr, "qfleet: fit: %s:%lld: %d fields, the header has %d\n", path, (long long)line_no, nv, nh);
            rc = 2;
            break;
        }
        if (strcmp(v[c_env], "deep_sea") != 0 || strcmp(v[c_explore], "bootstrap") != 0) continue;
        if (strcmp(v[c_status], "pruned") == 0) {
            n_pruned++;
            continue;
        }
        if (strcmp(v[c_status], "failed") == 0) {
            n_failed++;
            continue;
        }
        double K = def_heads, N = def_size, prior = def_prior;
        if ((c_heads >= 0 && num_of(v[c_heads], &K)) || (c_size >= 0 && num_of(v[c_size], &N)) ||
            (c_prior >= 0 && num_of(v[c_prior], &prior)) || isnan(K) || isnan(N) || isnan(prior)) {
            fprintf(stderr, "qfleet: fit: %s:%lld: heads, env.size or prior_scale is not a number (in runs.csv or "
                            "config.txt)\n", path, (long long)line_no);
            rc = 2;
            break;
        }
        int k = 0;
        while (k < n_methods && m[k].prior_scale != prior) k++;
        if (k == n_methods) {
            if (n_methods == 16) {
                fprintf(stderr, "qfleet: fit: more than 16 prior_scale values\n");
                rc = 2;
                break;
            }
            memset(&m[k], 0, sizeof m[k]);
            m[k].prior_scale = prior;
            n_methods++;
        }
        qf_cell *c = cell_of(&m[k], K, N);
        if (!c) {
            fprintf(stderr, "qfleet: out of memory\n");
            rc = 1;
            break;
        }
        c->runs += 1;
        c->success += v[c_conv][0] != 0;
        m[k].runs++;
    }
    fclose(f);
    free(line);
    free(hline);
    if (rc) {
        for (int k = 0; k < n_methods; k++) free(m[k].c);
        return rc;
    }
    if (n_methods == 0) {
        fprintf(stderr, "qfleet: fit: %s holds no finished explore=bootstrap run on deep_sea\n", path);
        return 2;
    }
    char tmp[QF_RESULTS_PATH_CAP];
    FILE *fit = qf_open_atomic(dir, "fit.csv", tmp, sizeof tmp);
    char tmp2[QF_RESULTS_PATH_CAP];
    FILE *cells = qf_open_atomic(dir, "cells.csv", tmp2, sizeof tmp2);
    if (!fit || !cells) {
        fprintf(stderr, "qfleet: fit: cannot write into %s: %s\n", dir, strerror(errno));
        if (fit) fclose(fit);
        if (cells) fclose(cells);
        for (int k = 0; k < n_methods; k++) free(m[k].c);
        return 1;
    }
    fprintf(fit, "method,prior_scale,cells,runs,psi,psi_lo,psi_hi,level,loglik\n");
    fprintf(cells, "method,prior_scale,heads,size,runs,converged,p_empirical,p_fit\n");
    printf("P(convergence) = 1 - (1 - psi^n)^K, binomial maximum likelihood per method; %.0f%% profile-likelihood "
           "interval\n", 100 * level);
    printf("%-10s %11s %6s %6s %9s %21s\n", "method", "prior_scale", "cells", "runs", "psi", "interval");
    for (int k = 0; k < n_methods; k++) {
        qsort(m[k].c, (size_t)m[k].n, sizeof(qf_cell), cmp_cell);
        const char *name = m[k].prior_scale > 0 ? "RP-BDQN" : "BDQN";
        double psi, lo, hi, ll;
        if (qf_scaling_fit(m[k].c, m[k].n, level, &psi, &lo, &hi, &ll)) continue;
        printf("%-10s %11g %6d %6lld %9.4f   [%.4f, %.4f]\n", name, m[k].prior_scale, m[k].n, (long long)m[k].runs, psi,
               lo, hi);
        fprintf(fit, "%s,%g,%d,%lld,%.6f,%.6f,%.6f,%g,%.6f\n", name, m[k].prior_scale, m[k].n, (long long)m[k].runs, psi,
                lo, hi, level, ll);
        for (int i = 0; i < m[k].n; i++) {
            const qf_cell *c = &m[k].c[i];
            fprintf(cells, "%s,%g,%g,%g,%g,%g,%.6f,%.6f\n", name, m[k].prior_scale, c->heads, c->size, c->runs,
                    c->success, c->success / c->runs, qf_scaling_p(psi, c->heads, c->size));
        }
        printf("%10s frontier (P = 0.5):", "");
        double last_k = -1;
        for (int i = 0; i < m[k].n; i++)
            if (m[k].c[i].heads != last_k) {
                last_k = m[k].c[i].heads;
                if (psi > 0 && psi < 1) printf(" K=%g: n=%.1f", last_k, qf_scaling_frontier(psi, last_k, 0.5));
                else printf(" K=%g: -", last_k); /* psi 0 or 1: no size where P = 0.5 */
            }
        printf("\n");
    }
    int wrc = qf_close_atomic(fit, dir, "fit.csv", tmp);
    wrc |= qf_close_atomic(cells, dir, "cells.csv", tmp2);
    if (n_pruned || n_failed)
        printf("left out: %lld pruned runs (not trained: the prune= rule), %lld failed runs\n", (long long)n_pruned,
               (long long)n_failed);
    printf("written: %s/fit.csv, %s/cells.csv (the picture: scripts/plot-env.sh, then python3 scripts/plot_scaling.py "
           "%s)\n", dir, dir, dir);
    for (int k = 0; k < n_methods; k++) free(m[k].c);
    return wrc ? 1 : 0;
}
