/* cublas_lazy.c — cuBLAS loaded when the CUDA backend starts, not when qfleet starts.
 *
 * Linked the usual way, libcublas.so and libcublasLt.so (together over 500 MB of code) are mapped
 * and relocated by the dynamic loader before main: ~60 ms on every start of qfleet, also of
 * `qfleet help` and of every run on a machine without a GPU, where cuBLAS is never called (issue 16:
 * a one-run CPU training paid it in the peer table). qfleet calls six cuBLAS functions; this file
 * defines them (the prototypes come from the toolkit's own cublas_v2.h, so a signature that
 * drifted would not compile) as forwarders to the real ones, which qf_cublas_load finds with
 * dlopen/dlsym the first time the CUDA backend is created. The CPU-shim build (QFLEET_CUDA_EMU)
 * does not compile this file: there the shim defines these functions.
 *
 * The library is the toolkit's major version that qfleet was compiled against
 * (libcublas.so.CUBLAS_VER_MAJOR), found on the loader's usual path (LD_LIBRARY_PATH, the cache,
 * RUNPATH) or, failing that, in the toolkit's lib directory known at build time (QF_CUBLAS_DIR). */
#include "cublas_lazy.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <cublas_v2.h>

#define QF_STR2(x) #x
#define QF_STR(x) QF_STR2(x)
#define QF_CUBLAS_SONAME "libcublas.so." QF_STR(CUBLAS_VER_MAJOR)

typedef cublasStatus_t (*create_fn)(cublasHandle_t *);
typedef cublasStatus_t (*destroy_fn)(cublasHandle_t);
typedef cublasStatus_t (*set_stream_fn)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*set_workspace_fn)(cublasHandle_t, void *, size_t);
typedef const char *(*status_string_fn)(cublasStatus_t);
typedef cublasStatus_t (*sgemm_sb_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                      const float *, const float *, int, long long int, const float *, int,
                                      long long int, const float *, float *, int, long long int, int);

typedef struct cublas_fns {
    create_fn create;
    destroy_fn destroy;
    set_stream_fn set_stream;
    set_workspace_fn set_workspace;
    status_string_fn status_string;
    sgemm_sb_fn sgemm_sb;
} cublas_fns;
static cublas_fns g_fn; /* set once, all together, by a load that found every symbol */
static int g_loaded;          /* 1: every pointer above is set */
static char g_why[640];       /* why loading failed (empty: not tried or loaded) */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* The symbols, in cuBLAS's ABI names (cublas_v2.h maps cublasCreate to cublasCreate_v2, ...), into
 * f. Returns 0, or -1 with the first missing name in err. */
static int bind_all(void *h, const char *path, cublas_fns *f, char *err, size_t err_len) {
    struct {
        void **slot;
        const char *name;
    } want[] = {{(void **)&f->create, "cublasCreate_v2"},
                {(void **)&f->destroy, "cublasDestroy_v2"},
                {(void **)&f->set_stream, "cublasSetStream_v2"},
                {(void **)&f->set_workspace, "cublasSetWorkspace_v2"},
                {(void **)&f->status_string, "cublasGetStatusString"},
                {(void **)&f->sgemm_sb, "cublasSgemmStridedBatched"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        *want[i].slot = dlsym(h, want[i].name);
        if (!*want[i].slot) {
            snprintf(err, err_len, "%s has no symbol %s (not cuBLAS %d?)", path, want[i].name, CUBLAS_VER_MAJOR);
            return -1;
        }
    }
    return 0;
}

int qf_cublas_load_path(const char *path, char *err, size_t err_len) {
    if (g_loaded) return 0; /* bound already: the first library stays */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(err, err_len, "cannot load %s: %s", path, why ? why : "unknown dlopen error");
        return -1;
    }
    cublas_fns f;
    memset(&f, 0, sizeof f);
    if (bind_all(h, path, &f, err, err_len) != 0) {
        dlclose(h);
        return -1;
    }
    g_fn = f;
    g_loaded = 1; /* the handle stays open for the life of the process */
    return 0;
}

static void load_once(void) {
    char first[512];
    if (qf_cublas_load_path(QF_CUBLAS_SONAME, first, sizeof first) == 0) return;
#ifdef QF_CUBLAS_DIR
    char err[512];
    if (qf_cublas_load_path(QF_CUBLAS_DIR "/" QF_CUBLAS_SONAME, err, sizeof err) == 0) return;
#endif
    snprintf(g_why, sizeof g_why, "%s (is the CUDA toolkit's lib directory on LD_LIBRARY_PATH?)", first);
}

int qf_cublas_load(char *err, size_t err_len) {
    pthread_once(&g_once, load_once);
    if (g_loaded) return 0;
    snprintf(err, err_len, "cuda backend: %s", g_why[0] ? g_why : "cuBLAS not loaded");
    return -1;
}

int qf_cublas_loaded(void) { return g_loaded; }

/* The forwarders. Before a successful qf_cublas_load every call returns NOT_INITIALIZED (no crash). */
cublasStatus_t CUBLASWINAPI cublasCreate_v2(cublasHandle_t *handle) {
    return g_loaded ? g_fn.create(handle) : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t CUBLASWINAPI cublasDestroy_v2(cublasHandle_t handle) {
    return g_loaded ? g_fn.destroy(handle) : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t CUBLASWINAPI cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
    return g_loaded ? g_fn.set_stream(handle, streamId) : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t CUBLASWINAPI cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace, size_t workspaceSizeInBytes) {
    return g_loaded ? g_fn.set_workspace(handle, workspace, workspaceSizeInBytes) : CUBLAS_STATUS_NOT_INITIALIZED;
}
const char *CUBLASWINAPI cublasGetStatusString(cublasStatus_t status) {
    return g_loaded ? g_fn.status_string(status) : "cuBLAS not loaded";
}
cublasStatus_t CUBLASWINAPI cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                                      cublasOperation_t transb, int m, int n, int k,
                                                      const float *alpha, const float *A, int lda,
                                                      long long int strideA, const float *B, int ldb,
                                                      long long int strideB, const float *beta, float *C, int ldc,
                                                      long long int strideC, int batchCount) {
    if (!g_loaded) return CUBLAS_STATUS_NOT_INITIALIZED;
    return g_fn.sgemm_sb(handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc,
                         strideC, batchCount);
}
