/* bench.h — `qfleet bench envs|train|explore`: env-steps/s per environment, whole training fleets
 * and exploration strategies on a backend, each with its roofline bound (bytes moved and FLOPs of
 * its shapes against the machine's peaks, host/roofline.h) and the fraction of it reached. */
#ifndef QF_BENCH_H
#define QF_BENCH_H
#include "../kernels/backend.h"
#include "config.h"
#include "roofline.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes one env step must read and write for this kind and observation mode (the roofline;
 * qf_roof_env_step_bytes). */
double qf_bench_bytes_per_step(int kind, const qf_env_params *p, const char *obs_mode);

/* Run the benchmark. only_env: the one kind to measure, or -1 for all. Returns the exit code:
 * 0, 1 (a backend failure, message printed) or 2 (a request that does not fit, message printed). */
int qf_bench_envs(const qf_config *cfg, int only_env, qf_backend *b);

/* `qfleet bench train`: env-steps/s and updates/s of whole fleets as the number of runs grows
 * (1, 16, 256, 4096, capped by max_runs and memory) at the shapes of cfg; memory per run. */
int qf_bench_train(const qf_config *cfg, qf_backend *b);
/* Time a fleet of cfg->runs x cfg->seeds runs (learning from the first batch on): a warm-up, then
 * doubling chunks of steps until cfg->seconds have passed. Gives microseconds per run-step, bytes
 * per run, steps timed and host synchronizations per step. QF_OK or QF_ERR (message in err). */
int qf_bench_time_fleet(const qf_config *cfg, qf_backend *b, const qf_run_hp *hp, double *us, double *bytes,
                        int64_t *steps, double *syncs, char *err, size_t err_len);
/* The same, and cpu_us receives the process's CPU microseconds per run-step over the timed chunks
 * (all threads): the work, which other processes competing for the cores do not inflate as they do
 * the wall time (sweep --dry-run estimates from it). */
int qf_bench_time_fleet_cpu(const qf_config *cfg, qf_backend *b, double *us, double *cpu_us, double *bytes,
                            char *err, size_t err_len);
/* The same, and work (unless NULL) receives the FLOPs and bytes of one run-step of that fleet
 * (host/roofline.c qf_roof_run_step: act on its envs, step, store, one update). */
int qf_bench_time_fleet_roof(const qf_config *cfg, qf_backend *b, const qf_run_hp *hp, double *us, double *bytes,
                             int64_t *steps, double *syncs, qf_roof_work *work, char *err, size_t err_len);

/* `qfleet bench explore`: every exploration strategy on fleets of 1, 64, 1024 runs (capped at
 * max_runs), bootstrap at K = 1, 10 and 40 heads (and at heads= when another K): microseconds per
 * run-step and the ratio to epsilon-greedy. */
int qf_bench_explore(const qf_config *cfg, qf_backend *b);

/* env-steps/s of a fleet whose iteration costs us_per_run_step microseconds per run and makes envs
 * env steps per run: 1e6 envs / us_per_run_step, independent of the number of runs. */
double qf_bench_env_steps_per_s(int64_t envs, double us_per_run_step);

#ifdef __cplusplus
}
#endif
#endif /* QF_BENCH_H */
