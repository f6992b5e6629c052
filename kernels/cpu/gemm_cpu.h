/* gemm_cpu.h — the CPU learner's small GEMMs (kernels/cpu/gemm_cpu.c).
 *
 * C [M][N] = op(A) op(B), float32, row-major, beta = 0 (C is overwritten):
 *   ta = 0: A is [M][K] (leading dimension lda);  ta = 1: A is stored transposed, [K][M];
 *   tb = 0: B is [K][N] (leading dimension ldb);  tb = 1: B is stored transposed, [N][K].
 * Every element of C is one sum over k = 0 .. K-1 in increasing order, starting from +0, one fused
 * multiply-add per term when the build targets FMA (-march with FMA), else a multiply and an add.
 * So a row of C does not depend on M or on the other rows, nor on the thread that computes it: the
 * learner's results do not depend on the batch's or the fleet's shape (what OpenBLAS, whose kernels
 * block K per shape and per CPU, does not promise).
 *
 * sparse_a != 0 says that A may be mostly zeros (a one-hot observation): the function then counts
 * A's nonzeros (one vector pass) and, when fewer than a quarter of A's entries are nonzero, sums
 * over the nonzero terms only, in the same order. A zero term adds exactly zero, so the result is
 * the same float for every element (only the sign of an exact zero may differ, and a zero times an
 * infinite or NaN weight, which the dense sum turns into NaN, is skipped).
 *
 * Why qfleet's own and not OpenBLAS's sgemm: docs/design-notes.md, "The CPU learner's GEMMs". */
#ifndef QF_GEMM_CPU_H
#define QF_GEMM_CPU_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void qf_cpu_gemm(int ta, int tb, int32_t M, int32_t N, int32_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, int sparse_a);

/* The vector width in floats and the register tile (rows x floats) this build uses, for the docs
 * and the benchmark's header line. */
void qf_cpu_gemm_shape(int *vector_floats, int *tile_rows, int *tile_cols);

#ifdef __cplusplus
}
#endif

#endif
