/* solve.h — exact solver for tabular environments: soft value iteration (alpha > 0) and hard value
 * iteration (alpha = 0), one problem per run, on either backend (the `solve` backend operation).
 * (interface fixed here; implementation: kernels/cpu/solve_cpu.c, kernels/cuda/solve_cuda.cu) */
#ifndef QF_SOLVE_H
#define QF_SOLVE_H
#include "../envs/envs.h"

typedef struct qf_solve_problem {
    int32_t kind;
    int32_t R;                   /* independent problems, one per run                          */
    const qf_env_params *params; /* [R] on the backend's memory                                 */
    const uint32_t *keys;        /* [R][2] run keys (DeepSea per-run mappings)                  */
    const double *gamma;         /* [R] discount                                                */
    const double *alpha;         /* [R] temperature; 0 = hard max                               */
    int32_t n_states, n_actions; /* shared by all runs (qf_env_n_states / qf_env_n_actions)     */
    int32_t max_iters;           /* sweep limit                                                 */
    double tol;                  /* stop when max |V_new - V| < tol for every run               */
} qf_solve_problem;

#endif /* QF_SOLVE_H */
