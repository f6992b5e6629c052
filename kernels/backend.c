/* backend.c — choosing a backend: CUDA when usable, else the CPU reference. */
#include "backend.h"

#include <stdio.h>
#include <string.h>

qf_backend *qf_backend_open(const char *want, char *err, size_t err_len) {
    if (strcmp(want, "cpu") == 0) return qf_cpu_open(err, err_len);
    if (strcmp(want, "cuda") == 0) return qf_cuda_open(err, err_len);
    if (strcmp(want, "auto") != 0) {
        snprintf(err, err_len, "unknown backend '%s' (allowed: auto, cpu, cuda)", want);
        return NULL;
    }
    char why[512];
    qf_backend *b = qf_cuda_open(why, sizeof why);
    if (b) {
        fprintf(stderr, "qfleet: backend cuda (%s)\n", b->device);
        return b;
    }
    b = qf_cpu_open(err, err_len);
    if (b) fprintf(stderr, "qfleet: backend cpu (%s; no GPU: %s)\n", b->device, why);
    return b;
}

void qf_backend_close(qf_backend *b) {
    if (b) b->close(b);
}
