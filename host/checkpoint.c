/* checkpoint.c — the runner's binary files (see checkpoint.h). */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "results.h"

static const char kMagic[8] = {'Q', 'F', 'L', 'E', 'E', 'T', 'F', 0};
static const char *const kKindName[] = {"", "plan", "checkpoint", "finished-fleet"};

uint64_t qf_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t header_sum(const qf_file_header *h) {
    qf_file_header c = *h;
    c.checksum = 0;
    return qf_fnv1a(QF_FNV_INIT, &c, sizeof c);
}

int qf_file_write(const char *dir, const char *name, qf_file_header *h, int n, const void *const *ptr,
                  const size_t *bytes) {
    memcpy(h->magic, kMagic, sizeof kMagic);
    h->version = QF_FILE_VERSION;
    h->n_parts = (uint32_t)n;
    for (int i = 0; i < 4; i++) h->part[i] = i < n ? (uint64_t)bytes[i] : 0;
    h->checksum = 0;
    uint64_t sum = header_sum(h);
    for (int i = 0; i < n; i++) sum = qf_fnv1a(sum, ptr[i], bytes[i]);
    h->checksum = sum;
    char tmp[QF_RESULTS_PATH_CAP];
    FILE *f = qf_open_atomic(dir, name, tmp, sizeof tmp);
    if (!f) {
        fprintf(stderr, "qfleet: cannot write %s/%s: %s\n", dir, name, strerror(errno));
        return -1;
    }
    int ok = fwrite(h, sizeof *h, 1, f) == 1;
    for (int i = 0; i < n && ok; i++) ok = bytes[i] == 0 || fwrite(ptr[i], bytes[i], 1, f) == 1;
    if (!ok) {
        fprintf(stderr, "qfleet: cannot write %s/%s: %s\n", dir, name, strerror(errno));
        fclose(f);
        remove(tmp);
        return -1;
    }
    return qf_close_atomic(f, dir, name, tmp);
}

int qf_file_read(const char *dir, const char *name, uint32_t kind, uint64_t hash, uint32_t fleet,
                 qf_file_header *h, char **payload, size_t *n, char *err, size_t err_len) {
    char path[QF_RESULTS_PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *payload = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 1;
        snprintf(err, err_len, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    const char *what = kind < 4 ? kKindName[kind] : "";
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s is not a regular file", path);
        fclose(f);
        return -1;
    }
    if (fread(h, sizeof *h, 1, f) != 1 || memcmp(h->magic, kMagic, sizeof kMagic) != 0) {
        snprintf(err, err_len, "%s is not a qfleet %s file (or is truncated before its header)", path, what);
        fclose(f);
        return -1;
    }
    if (h->version != QF_FILE_VERSION) {
        snprintf(err, err_len, "%s was written by format version %u; this qfleet reads version %u", path,
                 h->version, QF_FILE_VERSION);
        fclose(f);
        return -1;
    }
    const uint64_t file_payload = (uint64_t)st.st_size - sizeof *h;
    uint64_t parts = 0;
    int sizes_ok = h->n_parts <= 4;
    for (int i = 0; i < 4 && sizes_ok; i++) {
        if (h->part[i] > file_payload || (i >= (int)h->n_parts && h->part[i] != 0)) sizes_ok = 0;
        parts += h->part[i];
    }
    /* what to do about a damaged file: a checkpoint can be removed (its part starts again); the
     * plan cannot (the fleets' checkpoints and curve parts are numbered by it) */
    const char *advice = strcmp(name, "plan.bin") == 0
                             ? "the folder cannot be resumed without its plan: run the experiment again into a new "
                               "out= folder (this one's finished fleet parts stay readable)"
                             : "remove it to start that part again";
    if (!sizes_ok || parts != file_payload) {
        snprintf(err, err_len, "%s is corrupted or truncated (its parts say %llu bytes, the file holds %llu); %s", path,
                 (unsigned long long)parts, (unsigned long long)file_payload, advice);
        fclose(f);
        return -1;
    }
    char *p = (char *)malloc(file_payload ? (size_t)file_payload : 1);
    if (!p || (file_payload && fread(p, (size_t)file_payload, 1, f) != 1)) {
        snprintf(err, err_len, "cannot read %s: %s", path, p ? "short read" : "out of memory");
        free(p);
        fclose(f);
        return -1;
    }
    fclose(f);
    if (qf_fnv1a(header_sum(h), p, (size_t)file_payload) != h->checksum) {
        snprintf(err, err_len, "%s is corrupted or truncated (checksum mismatch); %s", path, advice);
        free(p);
        return -1;
    }
    if (h->kind != kind) {
        snprintf(err, err_len, "%s is a qfleet %s file, not a %s file", path,
                 h->kind < 4 ? kKindName[h->kind] : "unknown", what);
        free(p);
        return -1;
    }
    if (h->hash != hash) {
        snprintf(err, err_len, "%s belongs to another experiment (its command or words differ from run.words)", path);
        free(p);
        return -1;
    }
    if (h->fleet != fleet) {
        snprintf(err, err_len, "%s is for fleet %u, not fleet %u", path, h->fleet + 1, fleet + 1);
        free(p);
        return -1;
    }
    *payload = p;
    *n = (size_t)file_payload;
    return 0;
}
