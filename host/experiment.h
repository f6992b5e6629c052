/* experiment.h — the one experiment runner behind `train`, `compare` (the main job) and `sweep`.
 *
 * An experiment is points x seeds: each point a complete configuration, each (point, seed) a run.
 * The runner plans fleets (points of one shape packed together, as many as memory and max_runs
 * allow), owns the results folder (an advisory lock for the whole run; a folder holding results is
 * refused unless --resume or --overwrite), trains the fleets with one progress line, appends every
 * log point to the fleet's curve part (flushed, so a folder can be read while it trains),
 * checkpoints every checkpoint_seconds and on SIGINT/SIGTERM (exit 130), resumes with
 * --resume DIR (the plan read back, finished fleets skipped, a stopped fleet restored and going on
 * bit for bit on the CPU backend), shards fleets over MPI ranks, and writes one results format
 * (docs/results-format.md): runs.csv, curves.csv, config.txt, summary.md. The commands keep only
 * what is theirs: expanding points (sweep axes, compare presets) and their report. */
#ifndef QF_EXPERIMENT_H
#define QF_EXPERIMENT_H
#include <stdio.h>

#include "config.h"
#include "dist.h"
#include "fleet.h"
#include "words.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The metrics of curves.csv, in the order written (CleanRL / TensorBoard names): the fleets' (train,
 * compare, sweep), then irl's. bandits writes `regret` (its runs' mean cumulative pseudo-regret). */
#define QF_N_METRICS 15
extern const char *const qf_metric_names[QF_N_METRICS];
/* Value of metric m at log point p (NaN: unknown, not written). */
double qf_metric_value(const qf_log_point *p, int m);

/* One run's outcome: a row of runs.csv. Runs are numbered point-major: run = point * seeds + seed. */
typedef struct qf_exp_run {
    int64_t point;
    int32_t seed_index, fleet;
    qf_log_point last;      /* its last log point */
    double ret20;           /* mean return of its last >= 20 episodes (qf_recent_return) */
    int32_t diverged_at;    /* update at which it diverged (-1: never) */
    int32_t failed;         /* its fleet's training failed (status "failed") */
    int32_t pruned;         /* not trained: the sweep's prune= rule skipped its cell (status "pruned") */
} qf_exp_run;

typedef struct qf_experiment qf_experiment;
struct qf_experiment {
    /* what the command fills */
    const char *command;       /* "train", "compare" or "sweep": run.words, messages */
    const char *dir_prefix;    /* the default folder's name: results/PREFIX__YYYYmmdd-HHMMSS */
    const qf_words *words;     /* the user's words, recorded in run.words for --resume */
    const qf_config *base;     /* config.txt, out=, checkpoint_seconds */
    int64_t n_points, seeds;   /* seeds: runs per point (copies x the seed count) */
    int64_t copies;            /* train's runs=C: each point C times, keys (seed + s, copy c), named
                                  __run=c (0 or 1: once); run index within a point = c * seeds/C + s */
    const qf_config *points;   /* [n_points] each point's whole configuration */
    int n_axes;
    const char *const *axis_keys; /* [n_axes] runs.csv columns and run-name parts (not env, explore) */
    const char *const *axis_values; /* [n_points][n_axes] */
    const uint32_t *key1;      /* [n_points] second word of each run's key (NULL: the point index) */
    int probe;                 /* 1: time one run per cost class to pack by memory and to estimate time */
    int dry_run, quiet, overwrite;
    const char *resume;        /* "" or the folder to resume */
    const char *load;          /* NULL, "" or a params.npy every fleet that starts afresh loads (train --load) */
    /* the command's report (each may be NULL) */
    void *ctx;
    void (*config_notes)(void *ctx, FILE *f); /* '#' lines appended to config.txt */
    void (*describe)(void *ctx, FILE *f);     /* lines printed under the runner's first line (sweep: axes) */
    /* after fleet `fleet` finished: rows [R] of its runs, in fleet order (one line to stderr) */
    void (*fleet_done)(void *ctx, const qf_experiment *x, int fleet, const qf_exp_run *rows, int32_t R,
                       double seconds);
    /* before a fleet trains: skip[j] = 1 for each of its points (points[j], j < n) that the command
     * leaves untrained (sweep's prune=), judged from rows[run] where done[run] = 1 (the runs of the
     * fleets before it in the plan, trained or read back on --resume: the same decision either way).
     * Skipped runs get status "pruned". NULL: every point trains. */
    void (*skip_points)(void *ctx, const qf_experiment *x, const qf_exp_run *rows, const unsigned char *done,
                        const int64_t *points, int64_t n, unsigned char *skip);
    /* at the end: rows [n_points * seeds] by run number; print the console table to stdout, the
     * body of summary.md to `summary` (after its heading); extra files into dir. 0 or -1. */
    int (*report)(void *ctx, const qf_experiment *x, const qf_exp_run *rows, FILE *summary, const char *dir);
};

/* x zeroed, then the command, its default folder prefix, the user's words, the base configuration
 * and the options the words carry (--dry-run, --quiet, --overwrite, --resume, --load). */
void qf_experiment_init(qf_experiment *x, const char *command, const char *dir_prefix, const qf_words *ws,
                        const qf_config *base);

/* Run the experiment. Returns the exit code: 0 done, 1 a runtime failure (backend, disk; the
 * finished fleets are kept), 2 bad input (a folder in use or holding results, a plan that does not
 * fit), 130 interrupted (a checkpoint written; the resume command printed). */
int qf_experiment_run(qf_experiment *x, qf_backend *b, const qf_dist *d);

/* The seed a run was trained with: its point's seed key plus its seed number. */
uint64_t qf_run_seed(const qf_experiment *x, int64_t point, int64_t seed_index);

/* Did the run solve by bsuite's criterion: episodes to solve at an episode < 2^N + 100 (DeepSea-N;
 * bsuite deep_sea/analysis.py), not diverged, not failed? */
int qf_exp_solved(const qf_exp_run *w, const qf_config *c);

/* A run's name, written whole into f: ENV__EXPLORE[__KEY=VALUE...]__seedSEED. */
void qf_run_name(FILE *f, const qf_experiment *x, int64_t point, int seed_index);

/* The experiment's hash: its command and words (what run.words holds). */
uint64_t qf_experiment_hash(const char *command, const qf_words *ws);

/* Write DIR/run.words: the command, then every word with its origin. 0, or -1 with one line printed. */
int qf_experiment_write_words(const char *dir, const char *command, const qf_words *ws);

/* Read DIR/run.words into ws (appended) and its command into cmd. 0, or -1 with one line in msg. */
int qf_experiment_read_words(const char *dir, char *cmd, size_t cmd_len, qf_words *ws, char *msg, size_t n);

/* ---- the runner's services for the commands whose work is not a soft-Q fleet: bandits (a bandit
 * fleet), irl (a batch of IRL problems), infer (one exact computation). They write the same folder
 * (docs/results-format.md): run.words first, a curve part appended and flushed at every log point
 * (fleet_1.curves, the layout of curves.csv) with a checkpoint recording its length, then at the end
 * curves.csv, config.txt, summary.md and runs.csv last (its presence marks the folder complete). */

/* Open the command's folder: with ws->resume, that folder locked (exit 2 when another process holds
 * it); else the folder claimed as qf_results_claim does (out=, or results/COMMAND__DATE-TIME; created,
 * tested for writing, locked, refused when it holds results unless --overwrite) and run.words
 * written. Returns the lock's fd (close it at the end), or -1 (exit 1) / -2 (exit 2) with one line
 * printed. *created: made here (qf_results_release removes it again when nothing was written). */
int qf_results_begin(const char *command, const char *out, const qf_words *ws, char *dir, size_t len, int *created);

/* Is the folder complete (runs.csv written)? Prints that it is, for --resume. */
int qf_results_complete(const char *dir);

/* The curve part DIR/fleet_K.curves of fleet K (1-based; the runner's fleets, and fleet 1 of the
 * other commands): keep_bytes < 0 begins it (header written); else it is cut back to keep_bytes (a
 * checkpoint's length) and appended to. NULL with one line printed. */
FILE *qf_curve_part_open(const char *dir, int64_t fleet, int64_t keep_bytes);
/* One row of the long format: run,name,step,env_steps,metric,value (env_steps < 0: empty; a NaN
 * value: no row). metric must be one of qf_metric_names. */
void qf_curve_row(FILE *f, int64_t run, const char *name, int64_t step, int64_t env_steps, const char *metric,
                  double value);
/* Flush the part to the disk at a log point; its length (for a checkpoint), or -1 with one line. */
int64_t qf_curve_part_sync(FILE *f, const char *dir);
/* curves.csv written (atomically) from the parts fleet_1 .. fleet_N.curves, one header. 0 or -1. */
int qf_curves_merge(const char *dir, int64_t n_parts);
/* The parts removed (after runs.csv is written). */
void qf_curve_parts_remove(const char *dir, int64_t n_parts);

/* The signal flag of the runner: SIGINT/SIGTERM set it (qf_stop_signals_on installs the handlers,
 * qf_stop_signals_off restores the previous ones). */
extern volatile int qf_stop_flag;
void qf_stop_signals_on(void);
void qf_stop_signals_off(void);

/* A run's name from its parts: ENV__EXPLORE[__KEY=VALUE...]__seedSEED (qf_run_name's rule). */
void qf_run_name_parts(FILE *f, const char *env, const char *explore, int n_axes, const char *const *keys,
                       const char *const *values, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
