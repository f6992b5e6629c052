/* step_count.c — a fixed amount of env stepping on the CPU backend, for instruction counts.
 *
 * Wall time on a shared machine is not a measurement; the number of instructions executed is (it
 * does not depend on the load). This program steps R x E envs of one kind for a fixed number of
 * steps with random actions drawn in the step (as `qfleet bench envs` does), so that
 *
 *   OMP_NUM_THREADS=1 valgrind --tool=callgrind --toggle-collect=cpu_env_step ./qf_step_count deep_sea 16384 20 index
 *
 * counts the instructions of env stepping alone: Ir / (E x steps) = instructions per env-step.
 * (Valgrind 3.19 does not decode AVX-512: run it on builds for x86-64 or x86-64-v3.)
 *
 * It also times windows of 10 steps (DeepSea's default episode length, so that each window holds
 * one end of every episode) and prints the best and the median ns per env-step: on a machine that
 * other processes load, a compute-bound step is only ever slowed down, so the best of many windows
 * is what the code does on a free core (compare two builds timed in turn, never one number against
 * another day's). The team is OpenMP's default (OMP_NUM_THREADS).
 *
 * Usage: qf_step_count ENV E STEPS OBS   (OBS: none, index or dense). Exit 2 on bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envs/spec.h"
#include "host/vecenv.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    static const char *names[QF_ENV_COUNT] = {"deep_sea", "cartpole", "mountain_car", "chain", "bandit",
                                                "gridworld"};
    int kind = -1;
    if (argc == 5)
        for (int k = 0; k < QF_ENV_COUNT; k++)
            if (strcmp(argv[1], names[k]) == 0) kind = k;
    const long E = argc == 5 ? strtol(argv[2], NULL, 10) : 0, steps = argc == 5 ? strtol(argv[3], NULL, 10) : 0;
    const char *obs = argc == 5 ? argv[4] : "";
    const int dense = strcmp(obs, "dense") == 0, index = strcmp(obs, "index") == 0;
    if (kind < 0 || E < 1 || E > (1L << 26) || steps < 1 || !(dense || index || strcmp(obs, "none") == 0)) {
        fprintf(stderr, "usage: qf_step_count ENV(deep_sea|cartpole|mountain_car|chain|bandit|gridworld) E STEPS "
                        "OBS(none|index|dense)\n");
        return 2;
    }
    char err[512];
    qf_backend *b = qf_cpu_open(err, sizeof err);
    if (!b) {
        fprintf(stderr, "qf_step_count: %s\n", err);
        return 1;
    }
    qf_env_params p;
    qf_env_params_default(kind, &p);
    qf_env_params_check(kind, &p, NULL, 0);
    const uint32_t keys[2] = {1, 0};
    qf_vecenv v;
    if (qf_vecenv_create(&v, b, kind, 1, (int32_t)E, &p, keys, err, sizeof err) != QF_OK) {
        fprintf(stderr, "qf_step_count: %s\n", err);
        return 1;
    }
    if (index && v.n_states == 0) {
        fprintf(stderr, "qf_step_count: %s has no state index (use obs=dense or none)\n", names[kind]);
        return 2;
    }
    float *next_obs = dense ? malloc(sizeof(float) * (size_t)E * (size_t)v.obs_dim) : NULL;
    int32_t *next_index = index ? malloc(sizeof(int32_t) * (size_t)E) : NULL;
    if ((dense && !next_obs) || (index && !next_index)) {
        fprintf(stderr, "qf_step_count: out of memory\n");
        return 1;
    }
    const long per = steps < 10 ? steps : 10, windows = steps / per; /* steps a window, timed windows */
    double *secs = calloc((size_t)windows, sizeof(double));
    if (!secs) {
        fprintf(stderr, "qf_step_count: out of memory\n");
        return 1;
    }
    double sum = 0.0;
    for (long t = 0; t < steps; t++) {
        const double t0 = now_s();
        if (b->env_step(b, &v.batch, NULL, (uint32_t)t, next_obs, next_index) != QF_OK) {
            fprintf(stderr, "qf_step_count: %s\n", b->err);
            return 1;
        }
        if (t < windows * per) secs[t / per] += now_s() - t0;
        sum += dense ? next_obs[t % E] : index ? next_index[t % E] : v.batch.reward[t % E];
    }
    qsort(secs, (size_t)windows, sizeof *secs, by_value);
    printf("%s E=%ld steps=%ld obs=%s env-steps=%ld checksum=%g ns/env-step best %.3f median %.3f\n", names[kind],
           E, steps, obs, E * steps, sum, 1e9 * secs[0] / (double)(E * per),
           1e9 * secs[windows / 2] / (double)(E * per));
    free(secs);
    free(next_obs);
    free(next_index);
    qf_vecenv_destroy(&v);
    b->close(b);
    return 0;
}
