// backend_v1.h — version 1 of every workbench program is the CUDA backend as it is today: this
// header compiles kernels/cuda/learn_cuda.cu and explore_cuda.cu into the program (their kernels
// and static operations, unchanged; no copy that could drift from them) and gives them a
// qf_backend on the program's stream and cuBLAS handle.
#ifndef QF_DEV_BACKEND_V1_H
#define QF_DEV_BACKEND_V1_H
#include "common.h"
#include "kernels/cuda/learn_cuda.cu"
#include "kernels/cuda/explore_cuda.cu"

// The backend's operations need only impl's stream and cuBLAS handle, and err for failures.
static inline qf_backend *v1_backend(const dev_info &d, cublasHandle_t blas) {
    static qf_backend b;
    static cuda_impl impl;
    impl.stream = d.stream;
    impl.blas = blas;
    impl.sm_count = d.sm_count;
    b.kind = QF_BACKEND_CUDA;
    b.name = "cuda";
    b.impl = &impl;
    return &b;
}

// A backend operation must return QF_OK; otherwise its message (file:line inside the backend).
#define v1Check(b, call)                                                                               \
    do {                                                                                               \
        if ((call) != QF_OK) {                                                                         \
            fprintf(stderr, "[backend ERROR] %s at %s:%d: %s\n", #call, __FILE__, __LINE__, (b)->err); \
            exit(1);                                                                                   \
        }                                                                                              \
    } while (0)

#endif // QF_DEV_BACKEND_V1_H
