/* cublas_lazy.h — loading cuBLAS at the CUDA backend's start instead of the process's (see
 * cublas_lazy.c for why and how). Real CUDA builds only; the CPU-shim build has no such step. */
#ifndef QF_CUBLAS_LAZY_H
#define QF_CUBLAS_LAZY_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Loads libcublas.so.<the toolkit's major version> once per process (thread-safe; later calls
 * return the first outcome). Returns 0, or -1 with a one-line reason in err ("cuda backend: cannot
 * load libcublas.so.13: ..."). Until it succeeds the cuBLAS functions qfleet calls return
 * CUBLAS_STATUS_NOT_INITIALIZED. */
int qf_cublas_load(char *err, size_t err_len);

/* Loads cuBLAS from the file path (dlopen's rules: a name without '/' is searched for) and binds
 * the functions qfleet calls. Returns 0, or -1 with the reason in err (no such file, a symbol
 * missing); on failure nothing stays bound; once bound, later calls return 0 and keep the first
 * library. For qf_cublas_load and its tests (not to be raced with qf_cublas_load). */
int qf_cublas_load_path(const char *path, char *err, size_t err_len);

/* 1 once cuBLAS is bound. */
int qf_cublas_loaded(void);

#ifdef __cplusplus
}
#endif
#endif
