/* dist.c — MPI when present and launched by mpirun; a single process otherwise (see dist.h). */
#include "dist.h"

#include <stdlib.h>
#include <string.h>

#ifdef QFLEET_HAVE_MPI
#include <mpi.h>
#endif

static int env_int(const char *name, int def) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : def;
}

void qf_dist_init(qf_dist *d, int *argc, char ***argv) {
    memset(d, 0, sizeof *d);
    d->size = 1;
#ifdef QFLEET_HAVE_MPI
    /* launched by mpirun (Open MPI, MPICH/Hydra or PMIx)? */
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK")) {
        if (MPI_Init(argc, argv) == MPI_SUCCESS) {
            d->mpi = 1;
            MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
            MPI_Comm_size(MPI_COMM_WORLD, &d->size);
        }
    }
#else
    (void)argc;
    (void)argv;
#endif
    d->local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("MPI_LOCALRANKID", env_int("PMI_LOCAL_RANK", 0)));
}

void qf_dist_finalize(qf_dist *d) {
#ifdef QFLEET_HAVE_MPI
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = 0;
}

void qf_dist_barrier(const qf_dist *d) {
#ifdef QFLEET_HAVE_MPI
    if (d->mpi) MPI_Barrier(MPI_COMM_WORLD);
#else
    (void)d;
#endif
}

void qf_dist_bcast(const qf_dist *d, void *buf, size_t bytes) {
#ifdef QFLEET_HAVE_MPI
    if (d->mpi) MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
#else
    (void)d;
    (void)buf;
    (void)bytes;
#endif
}

int qf_dist_max(const qf_dist *d, int v) {
#ifdef QFLEET_HAVE_MPI
    int out = v;
    if (d->mpi) MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return out;
#else
    (void)d;
    return v;
#endif
}
