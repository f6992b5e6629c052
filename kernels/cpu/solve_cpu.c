/* solve_cpu.c — (placeholder until the solver lands) */
#include <stdio.h>

#include "../backend.h"

int qf_solve_cpu(qf_backend *b, const qf_solve_problem *prob, double *q, double *v, int32_t *iters) {
    (void)prob; (void)q; (void)v; (void)iters;
    snprintf(b->err, sizeof b->err, "solve: not implemented yet");
    return QF_ERR;
}
