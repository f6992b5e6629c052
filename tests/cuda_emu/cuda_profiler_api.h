/* cuda_profiler_api.h (qf_emu) — cudaProfilerStart/Stop are declared in cuda_runtime_api.h and do
 * nothing on the CPU (no profiler is attached). */
#include "cuda_runtime_api.h"
