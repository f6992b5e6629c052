/* nvtx3/nvToolsExt.h (qf_emu) — NVTX ranges as no-ops: no Nsight tool runs on the CPU. */
#ifndef QF_EMU_NVTX_H
#define QF_EMU_NVTX_H
static inline int nvtxRangePushA(const char *name) { (void)name; return 0; }
static inline int nvtxRangePop(void) { return 0; }
#endif
