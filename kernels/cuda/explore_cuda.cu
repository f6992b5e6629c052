// explore_cuda.cu — the CUDA twins of the exploration operations (kernels/explore.h).
#include "cuda_impl.h"
