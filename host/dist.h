/* dist.h — one sweep across processes (MPI, optional at build time). Under `mpirun -np G` every
 * rank builds the same sweep, rank 0 plans the fleets and names the results folder, rank r trains
 * the fleets i with i % G == r and records them in the shared folder, and rank 0 merges them into
 * the same files a single process writes. Without mpirun (or without MPI in the build) the program
 * runs alone: rank 0 of 1. */
#ifndef QF_DIST_H
#define QF_DIST_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qf_dist {
    int rank, size, local_rank;
    int mpi; /* MPI_Init was called */
} qf_dist;

/* Start MPI when launched by mpirun (its environment says so); otherwise rank 0 of 1. */
void qf_dist_init(qf_dist *d, int *argc, char ***argv);
void qf_dist_finalize(qf_dist *d);
/* Collective operations (no-ops alone). */
void qf_dist_barrier(const qf_dist *d);
void qf_dist_bcast(const qf_dist *d, void *buf, size_t bytes); /* from rank 0 */
int qf_dist_max(const qf_dist *d, int v);                       /* the largest v of all ranks */

#ifdef __cplusplus
}
#endif
#endif
