/* prof.h — NVTX ranges (NVTX v3, header-only, from the CUDA toolkit) so that an Nsight Systems
 * timeline reads as the algorithm: act, step, bonus, store, learn, target, log, and one range per
 * fleet. Without the CUDA toolkit they compile to nothing. A range costs a function call when no
 * tool is attached. */
#ifndef QF_PROF_H
#define QF_PROF_H
#ifdef QFLEET_HAVE_NVTX
#include <nvtx3/nvToolsExt.h>
#define QF_RANGE_PUSH(name) nvtxRangePushA(name)
#define QF_RANGE_POP() nvtxRangePop()
#else
#define QF_RANGE_PUSH(name) ((void)0)
#define QF_RANGE_POP() ((void)0)
#endif
#endif
