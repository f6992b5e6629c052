/* results.h — what every command that writes a results folder shares: creating the folder, writing
 * each file atomically (temporary file, fsync, rename: a crash or a full disk never leaves a
 * half-written file under the final name), the default folder name, CSV numbers, wall time. */
#ifndef QF_RESULTS_H
#define QF_RESULTS_H
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Room for a path under a results folder: the folder (any path the system accepts, PATH_MAX 4096
 * on Linux), '/', a file name and ".tmp". */
#define QF_RESULTS_DIR_CAP 4096
#define QF_RESULTS_PATH_CAP (QF_RESULTS_DIR_CAP + 256)

/* mkdir -p; 0 or -1 (errno set). */
int qf_mkdir_p(const char *path);
/* Open dir/name.tmp for writing (tmp receives its path); finish with qf_close_atomic. */
FILE *qf_open_atomic(const char *dir, const char *name, char *tmp, size_t len);
/* Flush, fsync and rename the temporary file to dir/name; on failure say so on stderr, remove the
 * temporary file and return -1. */
int qf_close_atomic(FILE *f, const char *dir, const char *name, const char *tmp);
/* A file the user named (csv=PATH): a regular file (or a new one) is written through PATH.tmp and
 * renamed, so a crash leaves the old file whole; a device or FIFO (csv=/dev/stdout, a pipe) is
 * written directly, never renamed over. tmp receives the temporary path ("" when direct). */
FILE *qf_open_output(const char *path, char *tmp, size_t len);
/* Flush and close; rename tmp to path when there is one. 0, or -1 with one line printed. */
int qf_close_output(FILE *f, const char *path, const char *tmp);
/* dir = out when given, else results/<prefix>__<date-time>. */
void qf_results_dir(char *dir, size_t len, const char *out, const char *prefix);
/* ",<v>" with 9 significant digits, or "," for NaN. */
void qf_csv_num(FILE *f, double v);
/* Numbers in the human-readable outputs (printed tables, summary.md): "%.4g" into buf, or "-" where
 * the value does not apply or is unknown (NaN: a regret without an exact solve, an eval_return
 * without evaluations), never "nan". The CSV files write those as empty cells (qf_csv_num).
 * Returns buf. */
const char *qf_fmt_num(char *buf, size_t len, double v);
/* "MEAN +- SE" likewise: "-" when mean is NaN, the mean alone when se is NaN (one sample). */
const char *qf_fmt_mean_se(char *buf, size_t len, double mean, double se);
/* Does dir hold results of an earlier run (run.words, plan.bin, runs.csv, curves.csv, summary.md,
 * config.txt, fleet parts, a bandits checkpoint)? With clear = 1 they are removed (--overwrite), and
 * the pictures scripts/plot.py drew from them. */
int qf_results_held(const char *dir, int clear);
/* The advisory lock on a results folder: DIR/.lock held with flock for the life of the process (the
 * returned fd; closing it releases the lock), naming the holder ("pid N on HOST") inside. Returns
 * the fd, -1 with one line printed when it cannot be opened (exit 1), or -2 when another process
 * holds it, named in the line printed (exit 2). */
int qf_results_lock(const char *dir);
/* Claim a results folder before any work: dir = out, or results/PREFIX__DATE-TIME (a free name);
 * created and tested for writing, locked (qf_results_lock), and refused when it holds results unless
 * overwrite (which removes them). *created says whether it was made here. Returns the lock's fd, or
 * -1 (exit 1) / -2 (exit 2) with one line printed naming the command for --overwrite. */
int qf_results_claim(const char *out, const char *prefix, const char *command, int overwrite, char *dir, size_t len,
                     int *created);
/* Give a claimed folder back: the lock released; with rc != 0, a folder made by the claim that
 * holds nothing else is removed. */
void qf_results_release(int fd, const char *dir, int created, int rc);
/* Monotonic wall-clock seconds. */
double qf_wall_s(void);

#ifdef __cplusplus
}
#endif
#endif
