/* bench.c — the environment-stepping benchmark. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.h"
#include "vecenv.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* index for discrete kinds, dense for continuous ones, unless the user chose. */
static const char *resolve_obs(const char *mode, int kind, const qf_env_params *p) {
    if (strcmp(mode, "auto") == 0) return qf_env_n_states(kind, p) > 0 ? "index" : "dense";
    if (strcmp(mode, "index") == 0 && qf_env_n_states(kind, p) == 0) return "dense";
    return mode;
}

double qf_bench_bytes_per_step(int kind, const qf_env_params *p, const char *obs_mode) {
    /* state fields and t: read and written; ep_return: read and written; reward and flags written */
    double bytes = 2.0 * 4.0 * (qf_env_nf(kind) + qf_env_ni(kind) + 1) + 8.0 + 4.0 + 1.0;
    if (strcmp(obs_mode, "index") == 0) bytes += 4.0;
    if (strcmp(obs_mode, "dense") == 0) bytes += 4.0 * qf_env_obs_dim(kind, p);
    return bytes;
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
    for (int w = 0; w < 2; w++)
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
    printf("qfleet bench envs: backend %s (%s), runs=%lld, random actions drawn on the device\n",
           b->name, b->device, (long long)cfg->runs);
    printf("%-13s %-6s %10s %14s %9s %10s", "env", "obs", "envs", "steps/s", "ns/step", "bytes/step");
    if (b->peak_bytes_per_s > 0) printf(" %9s %8s", "GB/s", "of bound");
    printf("\n");
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
            if (rc) return rc;
            r->envs = list[s] / cfg->runs > 0 ? list[s] / cfg->runs * cfg->runs : cfg->runs;
            printf("%-13s %-6s %10lld %14.4g %9.3f %10.0f", r->env, r->obs, (long long)r->envs,
                   r->steps_per_s, 1e9 / r->steps_per_s, r->bytes_per_step);
            if (b->peak_bytes_per_s > 0) {
                double bw = r->steps_per_s * r->bytes_per_step;
                printf(" %9.1f %7.1f%%", bw / 1e9, 100.0 * bw / b->peak_bytes_per_s);
            }
            printf("\n");
            fflush(stdout);
            n_rows++;
        }
    }
    if (cfg->csv[0]) {
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp", cfg->csv);
        FILE *f = fopen(tmp, "w");
        int ok = f != NULL;
        if (f) {
            fprintf(f, "env,backend,device,obs,envs,runs,steps_per_s,bytes_per_step,peak_bytes_per_s\n");
            for (int i = 0; i < n_rows; i++)
                fprintf(f, "%s,%s,\"%s\",%s,%lld,%lld,%.6g,%.0f,%.6g\n", rows[i].env, b->name, b->device,
                        rows[i].obs, (long long)rows[i].envs, (long long)cfg->runs, rows[i].steps_per_s,
                        rows[i].bytes_per_step, b->peak_bytes_per_s);
            ok = fflush(f) == 0 && !ferror(f);
            ok = (fclose(f) == 0) && ok;
        }
        if (!ok || rename(tmp, cfg->csv) != 0) {
            fprintf(stderr, "qfleet: cannot write %s (the table above is complete)\n", cfg->csv);
            remove(tmp);
            return 1;
        }
    }
    return 0;
}

/* Time a fleet of c->runs runs: warm-up past one batch, then doubling chunks until `seconds`.
 * Returns QF_OK with microseconds per run-step, bytes per run and steps timed. */
int qf_bench_time_fleet(const qf_config *cfg, qf_backend *b, const qf_run_hp *hp, double *us, double *bytes,
                        int64_t *steps, double *syncs, char *err, size_t err_len) {
    qf_config c = *cfg;
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
    const unsigned long long syncs0 = b->n_sync;
    int64_t chunks = 0;
    for (int64_t chunk = 1; rc == QF_OK; chunk *= 2) {
        double t0 = now_s();
        rc = qf_fleet_train(&f, chunk, NULL, NULL, err, err_len);
        if (rc == QF_OK && b->sync(b) != QF_OK) {
            snprintf(err, err_len, "%s", b->err);
            rc = QF_ERR;
        }
        elapsed += now_s() - t0;
        total += chunk;
        chunks++;
        if (elapsed >= cfg->seconds && total >= 3) break;
    }
    *us = 1e6 * elapsed / ((double)total * (double)(c.runs * c.seeds));
    /* host synchronizations per training iteration (the explicit sync closing each timed chunk taken
     * out; no log points fall inside the timed chunks) */
    *syncs = ((double)(b->n_sync - syncs0) - (double)chunks) / (double)total;
    *bytes = (double)(f.bytes + qf_vecenv_bytes(f.R, c.envs)) / (double)f.R;
    *steps = total;
    qf_fleet_destroy(&f);
    return rc;
}

int qf_bench_train(const qf_config *cfg, qf_backend *b) {
    static const int64_t sizes[] = {1, 16, 256, 4096};
    printf("qfleet bench train: backend %s (%s), env %s, envs=%lld per run, batch=%lld, hidden ",
           b->name, b->device, qf_env_spec_of(cfg->env)->name, (long long)cfg->envs, (long long)cfg->batch);
    for (int i = 0; i < cfg->n_hidden; i++) printf("%s%lld", i ? "-" : "", (long long)cfg->hidden[i]);
    printf(", explore=%s, one update per env step\n", cfg->explore);
    printf("%7s %14s %12s %16s %14s %12s %12s\n", "runs", "env-steps/s", "updates/s", "us per run-step",
           "bytes per run", "steps timed", "syncs/step");
    for (int s = 0; s < 4; s++) {
        if (sizes[s] > cfg->max_runs) break;
        qf_config c = *cfg;
        c.runs = sizes[s];
        c.seeds = 1;
        double us, bytes, syncs;
        int64_t total;
        char err[768];
        if (qf_bench_time_fleet(&c, b, NULL, &us, &bytes, &total, &syncs, err, sizeof err) != QF_OK) {
            printf("%7lld  (stops here: %s)\n", (long long)c.runs, err);
            break;
        }
        printf("%7lld %14.4g %12.4g %16.4g %14.4g %12lld %12.3g\n", (long long)c.runs, 1e6 * (double)c.envs / us,
               1e6 / us, us, bytes, (long long)total, syncs);
        fflush(stdout);
    }
    return 0;
}

int qf_bench_explore(const qf_config *cfg, qf_backend *b) {
    static const char *const names[] = {"epsilon", "boltzmann", "bootstrap", "count", "rnd"};
    static const int64_t sizes[] = {1, 64, 1024};
    printf("qfleet bench explore: backend %s (%s), env %s, envs=%lld per run, batch=%lld, hidden ", b->name,
           b->device, qf_env_spec_of(cfg->env)->name, (long long)cfg->envs, (long long)cfg->batch);
    for (int i = 0; i < cfg->n_hidden; i++) printf("%s%lld", i ? "-" : "", (long long)cfg->hidden[i]);
    printf(", heads=%lld (bootstrap), one update per env step; cost relative to epsilon-greedy\n", (long long)cfg->heads);
    printf("%7s %-10s %14s %16s %10s %14s\n", "runs", "explore", "env-steps/s", "us per run-step", "vs epsilon",
           "bytes per run");
    for (int s = 0; s < 3; s++) {
        if (sizes[s] > cfg->max_runs) break;
        double base = 0.0;
        for (int k = 0; k < 5; k++) {
            qf_config c = *cfg;
            c.runs = sizes[s];
            c.seeds = 1;
            snprintf(c.explore, sizeof c.explore, "%s", names[k]);
            if (k == 1 && c.alpha <= 0.0) c.alpha = 0.1; /* Boltzmann needs a temperature */
            double us, bytes, syncs;
            int64_t total;
            char err[768];
            if (qf_bench_time_fleet(&c, b, NULL, &us, &bytes, &total, &syncs, err, sizeof err) != QF_OK) {
                printf("%7lld %-10s (stops here: %s)\n", (long long)c.runs, names[k], err);
                return 0;
            }
            if (k == 0) base = us;
            printf("%7lld %-10s %14.4g %16.4g %9.2fx %14.4g\n", (long long)c.runs, names[k],
                   1e6 * (double)c.runs * (double)c.envs / us, us, us / base, bytes);
            fflush(stdout);
        }
    }
    return 0;
}
