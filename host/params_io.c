/* params_io.c — each run's Q-networks out of a fleet into params.npy + params.json, and back in
 * (`qfleet train --load FILE`). The layout is documented in docs/params-format.md and in the
 * params.json written next to every params.npy. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "npy.h"
#include "results.h"

int64_t qf_fleet_run_floats(const qf_fleet *f) {
    return (int64_t)f->net.K * f->net.P * (f->has_prior ? 2 : 1);
}

/* The fleet's networks as rows [R][P_run]: run r's K trained blocks, then its K prior blocks. */
static float *gather_rows(qf_fleet *f, char *err, size_t err_len) {
    const size_t G = (size_t)f->R * (size_t)f->net.K, P = (size_t)f->net.P, KP = (size_t)f->net.K * P;
    const size_t run = (size_t)qf_fleet_run_floats(f);
    float *rows = (float *)malloc(sizeof(float) * (size_t)f->R * run);
    float *tmp = (float *)malloc(sizeof(float) * G * P);
    if (!rows || !tmp) {
        free(rows);
        free(tmp);
        snprintf(err, err_len, "out of host memory for %zu parameters", (size_t)f->R * run);
        return NULL;
    }
    qf_backend *b = f->b;
    int ok = b->download(b, tmp, f->params, sizeof(float) * G * P) == QF_OK;
    for (int32_t r = 0; ok && r < f->R; r++) memcpy(rows + (size_t)r * run, tmp + (size_t)r * KP, sizeof(float) * KP);
    if (ok && f->has_prior) {
        ok = b->download(b, tmp, f->prior, sizeof(float) * G * P) == QF_OK;
        for (int32_t r = 0; ok && r < f->R; r++)
            memcpy(rows + (size_t)r * run + KP, tmp + (size_t)r * KP, sizeof(float) * KP);
    }
    free(tmp);
    if (!ok) {
        snprintf(err, err_len, "%s", b->err);
        free(rows);
        return NULL;
    }
    return rows;
}

/* a JSON string (quotes, backslashes and control characters escaped) */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 32) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void json_layout(FILE *f, const qf_fleet *fl, const char *npy, const char *const *names) {
    const qf_net *n = &fl->net;
    const int64_t K = n->K, P = n->P;
    const char *env = qf_env_spec_of(fl->cfg.env)->name;
    fprintf(f, "{\n  \"format\": \"qfleet-params\",\n  \"version\": 1,\n  \"npy\": ");
    json_str(f, npy);
    fprintf(f, ",\n");
    fprintf(f, "  \"dtype\": \"float32\",\n  \"shape\": [%d, %lld],\n", (int)fl->R, (long long)qf_fleet_run_floats(fl));
    fprintf(f, "  \"env\": ");
    json_str(f, env);
    fprintf(f, ",\n  \"input\": \"%s\",\n  \"input_width\": %d,\n  \"actions\": %d,\n", n->embed ? "index" : "dense",
            (int)n->w[0], (int)n->w[n->L]);
    fprintf(f, "  \"activation\": ");
    json_str(f, qf_config_choice_name("activation", n->act));
    fprintf(f, ",\n  \"network_floats\": %lld,\n  \"heads\": %lld,\n", (long long)P, (long long)K);
    fprintf(f, "  \"networks\": [{\"kind\": \"q\", \"offset\": 0, \"count\": %lld}", (long long)K);
    if (fl->has_prior) fprintf(f, ", {\"kind\": \"prior\", \"offset\": %lld, \"count\": %lld}", (long long)(K * P), (long long)K);
    fprintf(f, "],\n  \"layers\": [");
    for (int l = 0; l < n->L; l++)
        fprintf(f, "%s\n    {\"weight_offset\": %lld, \"weight_shape\": [%d, %d], \"bias_offset\": %lld, \"bias_shape\": [%d]}",
                l ? "," : "", (long long)n->off_w[l], (int)n->w[l], (int)n->w[l + 1], (long long)n->off_b[l],
                (int)n->w[l + 1]);
    fprintf(f, "\n  ],\n");
    fprintf(f, "  \"q_function\": \"network k of a run starts at offset + k * network_floats in its row; a layer "
               "computes y = x @ W + b with W stored row-major as weight_shape [in, out] (input-major), the "
               "activation after every layer but the last; input index: x @ W0 is row s of W0 (an embedding, "
               "equal to a one-hot x); Q_k(x) = q_k(x) + prior_scale * prior_k(x); heads k >= the run's heads are "
               "unused; greedy evaluation acts on argmax of the mean of Q_k over the run's heads\",\n");
    fprintf(f, "  \"runs\": [");
    for (int32_t r = 0; r < fl->R; r++) {
        const qf_run_hp *h = &fl->hp_host[r];
        char dflt[160];
        snprintf(dflt, sizeof dflt, "%s__%s__run%u__seed%u", env, qf_config_choice_name("explore", h->explore),
                 fl->keys_host[2 * r + 1], fl->keys_host[2 * r]);
        fprintf(f, "%s\n    {\"run\": %d, \"name\": ", r ? "," : "", (int)r);
        json_str(f, names && names[r] ? names[r] : dflt);
        fprintf(f, ", \"seed\": %u, \"run_id\": %u, \"explore\": ", fl->keys_host[2 * r], fl->keys_host[2 * r + 1]);
        json_str(f, qf_config_choice_name("explore", h->explore));
        fprintf(f, ", \"heads\": %d, \"prior_scale\": %.9g, \"status\": \"%s\"}", (int)h->n_heads,
                (double)h->prior_scale, fl->diverged_at[r] >= 0 ? "diverged" : "ok");
    }
    fprintf(f, "\n  ],\n  \"steps\": %lld,\n  \"updates\": %u\n}\n", (long long)fl->t, fl->n_updates);
}

int qf_fleet_export_params(qf_fleet *f, const char *dir, const char *stem, const char *const *names, char *err,
                           size_t err_len) {
    char npy[96], json[96];
    snprintf(npy, sizeof npy, "%.80s.npy", stem ? stem : "params");
    snprintf(json, sizeof json, "%.80s.json", stem ? stem : "params");
    float *rows = gather_rows(f, err, err_len);
    if (!rows) return -1;
    char tmp[QF_RESULTS_PATH_CAP];
    FILE *o = qf_open_atomic(dir, npy, tmp, sizeof tmp);
    int bad = !o || qf_npy_write_f32(o, f->R, qf_fleet_run_floats(f), rows) != 0;
    free(rows);
    if (bad) {
        snprintf(err, err_len, "cannot write %s/%s: %s", dir, npy, strerror(errno));
        if (o) {
            fclose(o);
            remove(tmp);
        }
        return -1;
    }
    if (qf_close_atomic(o, dir, npy, tmp)) {
        snprintf(err, err_len, "cannot write %s/%s", dir, npy);
        return -1;
    }
    o = qf_open_atomic(dir, json, tmp, sizeof tmp);
    if (!o) {
        snprintf(err, err_len, "cannot write %s/%s: %s", dir, json, strerror(errno));
        return -1;
    }
    json_layout(o, f, npy, names);
    if (qf_close_atomic(o, dir, json, tmp)) {
        snprintf(err, err_len, "cannot write %s/%s", dir, json);
        return -1;
    }
    return 0;
}

/* The part of a params.json that must agree for a load to mean anything: the env, the input, the
 * network layout ("env" up to "q_function"), and each run's heads and prior scale. malloc'd. */
static char *layout_key(const char *json) {
    const char *a = strstr(json, "\"env\""), *b = a ? strstr(a, "\"q_function\"") : NULL;
    if (!a || !b) return NULL;
    size_t cap = (size_t)(b - a) + 1 + strlen(json), n = 0;
    char *k = (char *)malloc(cap);
    if (!k) return NULL;
    memcpy(k, a, (size_t)(b - a));
    n = (size_t)(b - a);
    for (const char *h = strstr(b, "\"heads\": "); h; h = strstr(h + 1, "\"heads\": ")) {
        const char *e = strstr(h, ", \"status\"");
        if (!e) break;
        memcpy(k + n, h, (size_t)(e - h));
        n += (size_t)(e - h);
        k[n++] = ';';
    }
    k[n] = 0;
    return k;
}

static char *slurp_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    for (size_t got; m && (got = fread(chunk, 1, sizeof chunk, f)) > 0;) fwrite(chunk, 1, got, m);
    fclose(f);
    if (m) fclose(m);
    return buf;
}

/* params.json beside the .npy must describe this fleet's networks (env, input, layers, per-run heads
 * and prior scale): parameters of another shape-compatible network would load silently otherwise. */
static int check_layout(qf_fleet *f, const char *path, char *err, size_t err_len) {
    char json_path[4200];
    const size_t n = strlen(path);
    if (n < 4 || strcmp(path + n - 4, ".npy") != 0 || n + 2 >= sizeof json_path) return 0;
    snprintf(json_path, sizeof json_path, "%.*s.json", (int)(n - 4), path);
    char *theirs = slurp_text(json_path);
    if (!theirs) {
        fprintf(stderr, "qfleet: warning: %s has no %s beside it: only its shape is checked\n", path, json_path);
        return 0;
    }
    char *mine = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&mine, &len);
    if (m) {
        json_layout(m, f, "", NULL);
        fclose(m);
    }
    char *a = layout_key(theirs), *b = mine ? layout_key(mine) : NULL;
    int rc = 0;
    if (!a || !b || strcmp(a, b) != 0) {
        snprintf(err, err_len, "%s: %s describes other networks than this run's (env, input, layers, or a run's heads "
                               "or prior_scale differ): load parameters exported by the same configuration",
                 path, json_path);
        rc = -1;
    }
    free(a);
    free(b);
    free(theirs);
    free(mine);
    return rc;
}

int qf_fleet_load_params(qf_fleet *f, const char *path, char *err, size_t err_len) {
    const size_t G = (size_t)f->R * (size_t)f->net.K, P = (size_t)f->net.P, KP = (size_t)f->net.K * P;
    const int64_t run = qf_fleet_run_floats(f);
    float *rows = (float *)malloc(sizeof(float) * (size_t)f->R * (size_t)run);
    float *tmp = (float *)malloc(sizeof(float) * G * P);
    if (!rows || !tmp) {
        free(rows);
        free(tmp);
        snprintf(err, err_len, "%s: out of host memory", path);
        return -1;
    }
    int rc = -1;
    if (qf_npy_read_f32(path, f->R, run, rows, err, err_len) == 0 && check_layout(f, path, err, err_len) == 0) {
        qf_backend *b = f->b;
        for (int32_t r = 0; r < f->R; r++) memcpy(tmp + (size_t)r * KP, rows + (size_t)r * run, sizeof(float) * KP);
        /* the trained networks and their target copies */
        int ok = b->upload(b, f->params, tmp, sizeof(float) * G * P) == QF_OK &&
                 b->upload(b, f->target, tmp, sizeof(float) * G * P) == QF_OK;
        if (ok && f->has_prior) {
            for (int32_t r = 0; r < f->R; r++)
                memcpy(tmp + (size_t)r * KP, rows + (size_t)r * run + KP, sizeof(float) * KP);
            ok = b->upload(b, f->prior, tmp, sizeof(float) * G * P) == QF_OK;
        }
        if (ok) rc = 0;
        else snprintf(err, err_len, "%s: %s", path, b->err);
    }
    free(rows);
    free(tmp);
    return rc;
}
