/* solve.h — `qfleet solve`: V*(s0) (and on request the policy) of a tabular environment. */
#ifndef QF_HOST_SOLVE_H
#define QF_HOST_SOLVE_H
#include "../kernels/backend.h"
#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Run the command; returns the exit code (0, 1 runtime failure, 2 bad input), messages printed. */
int qf_cmd_solve(const qf_config *cfg, qf_backend *b);

#ifdef __cplusplus
}
#endif
#endif
