/* solve.c — (placeholder until the solver lands) */
#include "solve.h"

int qf_cmd_solve(const qf_config *cfg, qf_backend *b) {
    (void)cfg;
    (void)b;
    fprintf(stderr, "qfleet: solve is not implemented yet\n");
    return 1;
}
