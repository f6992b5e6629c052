/* backend_cuda_stub.c — linked instead of backend_cuda.cu when this build has no CUDA toolkit. */
#include <stdio.h>

#include "../backend.h"

qf_backend *qf_cuda_open(char *err, size_t err_len) {
    snprintf(err, err_len, "this build has no CUDA backend (nvcc was not found at configure time, "
                           "or QFLEET_CUDA=OFF)");
    return NULL;
}
