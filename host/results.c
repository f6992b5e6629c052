/* results.c — results-folder helpers (see results.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "results.h"

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int qf_mkdir_p(const char *path) {
    char buf[QF_RESULTS_PATH_CAP];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) return -1;
            *s = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST) return -1;
    /* an existing path must be a folder we can write into (a file of that name, or a read-only
     * folder, is refused here, before any work, not when the results are written) */
    struct stat st;
    if (stat(buf, &st)) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return access(buf, W_OK | X_OK) ? -1 : 0;
}

FILE *qf_open_atomic(const char *dir, const char *name, char *tmp, size_t len) {
    snprintf(tmp, len, "%s/%s.tmp", dir, name);
    return fopen(tmp, "w");
}

int qf_close_atomic(FILE *f, const char *dir, const char *name, const char *tmp) {
    int ok = fflush(f) == 0 && !ferror(f) && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    char dst[QF_RESULTS_PATH_CAP];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    if (!ok || rename(tmp, dst) != 0) {
        fprintf(stderr, "qfleet: cannot write %s: %s\n", dst, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

FILE *qf_open_output(const char *path, char *tmp, size_t len) {
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) {
            errno = EISDIR;
            return NULL;
        }
        tmp[0] = 0;
        return fopen(path, "w");
    }
    snprintf(tmp, len, "%s.tmp", path);
    return fopen(tmp, "w");
}

int qf_close_output(FILE *f, const char *path, const char *tmp) {
    int ok = fflush(f) == 0 && !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (ok && tmp[0] && rename(tmp, path) != 0) ok = 0;
    if (!ok) {
        fprintf(stderr, "qfleet: cannot write %s: %s\n", path, strerror(errno));
        if (tmp[0]) remove(tmp);
        return -1;
    }
    return 0;
}

void qf_results_dir(char *dir, size_t len, const char *out, const char *prefix) {
    if (out && out[0]) {
        snprintf(dir, len, "%s", out);
        return;
    }
    char stamp[32];
    time_t now = time(NULL);
    struct tm tmv;
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r(&now, &tmv));
    snprintf(dir, len, "results/%s__%s", prefix, stamp);
}

void qf_csv_num(FILE *f, double v) {
    if (isnan(v))
        fprintf(f, ",");
    else
        fprintf(f, ",%.9g", v);
}

const char *qf_fmt_num(char *buf, size_t len, double v) {
    if (isnan(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.4g", v);
    return buf;
}

const char *qf_fmt_mean_se(char *buf, size_t len, double mean, double se) {
    if (isnan(mean))
        snprintf(buf, len, "-");
    else if (isnan(se))
        snprintf(buf, len, "%.4g", mean);
    else
        snprintf(buf, len, "%.4g +- %.2g", mean, se);
    return buf;
}

double qf_wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- owning a results folder (results.h) ---- */

static const char *const kOurFiles[] = {"run.words", "plan.bin", "runs.csv", "curves.csv", "summary.md",
                                        "config.txt", "scaling.svg", "sweep.words", "bandits.ckpt", "irl.ckpt",
                                        "marginals.csv", "visitation.csv", "reward_map.csv", "params.npy", "params.json", NULL};

/* A fleet part: fleet_K.ckpt, fleet_K.rows, fleet_K.curves (and their temporary files). */
static int is_fleet_part(const char *name) {
    if (strncmp(name, "fleet_", 6) != 0) return 0;
    const char *p = name + 6;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    return strncmp(p, ".ckpt", 5) == 0 || strncmp(p, ".rows", 5) == 0 || strncmp(p, ".curves", 7) == 0 ||
           strncmp(p, ".params.", 8) == 0;
}

/* Does dir hold results of an earlier experiment? With clear = 1, remove them (--overwrite). */
static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int qf_results_held(const char *dir, int clear) {
    char path[QF_RESULTS_PATH_CAP];
    int found = 0;
    for (int i = 0; kOurFiles[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, kOurFiles[i]);
        if (access(path, F_OK) == 0) found = 1;
        if (clear) remove(path);
    }
    DIR *dp = opendir(dir);
    for (struct dirent *e; dp && (e = readdir(dp));)
        if (is_fleet_part(e->d_name)) {
            found = 1;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (clear) remove(path);
        }
    if (dp) closedir(dp);
    /* what the scripts and `qfleet fit` derive from those results goes with them (it would show the
     * old run): plot.py's pictures, plot_scaling.py's, fit's tables, tensorboard.py's event files */
    static const char *const kDerived[] = {"learning_curves.png", "eval_return.png", "regret.png", "scaling.png",
                                           "visitation.png", "irl_curves.png", "reward_map.png", "true_regret.png",
                                           "demo_log_likelihood.png", "feature_expectation_gap.png",
                                           "scaling_law.png", "fit.csv", "cells.csv", NULL};
    for (int i = 0; clear && kDerived[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, kDerived[i]);
        remove(path);
    }
    if (clear) {
        snprintf(path, sizeof path, "%s/tensorboard", dir);
        if (access(path, F_OK) == 0) nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    return found;
}

/* The advisory lock: DIR/.lock held (flock) for the whole run. Returns the fd, -1 with one line
 * printed (exit 1: cannot open), or -2 (exit 2: another process holds it, named). */
int qf_results_lock(const char *dir) {
    char path[QF_RESULTS_PATH_CAP];
    snprintf(path, sizeof path, "%s/.lock", dir);
    const int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "qfleet: cannot lock the results folder %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        char holder[256] = "";
        const ssize_t k = pread(fd, holder, sizeof holder - 1, 0);
        holder[k > 0 ? k : 0] = 0;
        holder[strcspn(holder, "\n")] = 0;
        fprintf(stderr, "qfleet: the results folder %s is in use by another qfleet (%s); wait for it to finish or "
                        "choose another out=\n", dir, holder[0] ? holder : "holder unknown");
        close(fd);
        return -2;
    }
    char host[128] = "?", line[256];
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    const int w = snprintf(line, sizeof line, "pid %ld on %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) || pwrite(fd, line, (size_t)w, 0) != w) { /* the name is a courtesy; the lock holds */
    }
    return fd;
}


int qf_results_claim(const char *out, const char *prefix, const char *command, int overwrite, char *dir, size_t len,
                     int *created) {
    qf_results_dir(dir, len, out, prefix);
    if (!(out && out[0])) { /* two runs in one second get two folders */
        const size_t n = strlen(dir);
        for (int k = 2; k < 1000 && access(dir, F_OK) == 0; k++) snprintf(dir + n, len - n, "-%d", k);
    }
    *created = access(dir, F_OK) != 0;
    if (qf_mkdir_p(dir)) {
        fprintf(stderr, "qfleet: cannot create the results folder %s: %s\n", dir, strerror(errno));
        return -1;
    }
    const int fd = qf_results_lock(dir);
    if (fd < 0) return fd;
    if (qf_results_held(dir, 0)) {
        if (!overwrite) {
            char words[QF_RESULTS_PATH_CAP], runs[QF_RESULTS_PATH_CAP];
            snprintf(words, sizeof words, "%s/run.words", dir);
            snprintf(runs, sizeof runs, "%s/runs.csv", dir);
            if (access(words, F_OK) == 0 && access(runs, F_OK) != 0) /* a run stopped part-way */
                fprintf(stderr, "qfleet: %s already holds a stopped run; resume it with `qfleet --resume %s`, replace it "
                                "with `qfleet %s ... --overwrite`, or choose another out=\n", dir, dir, command);
            else
                fprintf(stderr, "qfleet: %s already holds results; replace them with `qfleet %s ... --overwrite`, or "
                                "choose another out=\n", dir, command);
            close(fd);
            return -2;
        }
        qf_results_held(dir, 1);
    }
    return fd;
}

void qf_results_release(int fd, const char *dir, int created, int rc) {
    if (rc && created && !qf_results_held(dir, 0)) {
        char path[QF_RESULTS_PATH_CAP];
        snprintf(path, sizeof path, "%s/.lock", dir);
        remove(path);
        rmdir(dir); /* fails, as it should, when anything else is there */
    }
    if (fd >= 0) close(fd);
}
