/* results.c — results-folder helpers (see results.h). */
#define _POSIX_C_SOURCE 200809L
#include "results.h"

#include <errno.h>
#include <math.h>
#include <string.h>
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

double qf_wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
