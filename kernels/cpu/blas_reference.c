/* blas_reference.c — the portable build (QFLEET_PORTABLE) links the netlib reference BLAS instead of
 * OpenBLAS. The reference BLAS has no threads of its own; these two OpenBLAS extensions, which the
 * learner and the roofline probe call, are kept valid with that meaning: one thread, always. */
int openblas_get_num_threads(void);
void openblas_set_num_threads(int n);

int openblas_get_num_threads(void) { return 1; }
void openblas_set_num_threads(int n) { (void)n; }
