/* gemm_cpu.h — the CPU learner's small GEMMs (kernels/cpu/gemm_cpu.c).
 *
 * C [M][N] = op(A) op(B), float32, row-major, beta = 0 (C is overwritten):
 *   ta = 0: A is [M][K] (leading dimension lda);  ta = 1: A is stored transposed, [K][M];
 *   tb = 0: B is [K][N] (leading dimension ldb);  tb = 1: B is stored transposed, [N][K].
 * Every element of C is one sum over k = 0 .. K-1 in increasing order, starting from +0, one fused
 * multiply-add per term in the variants with FMA (avx2, avx512), else a multiply and an add (sse2).
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
 * Instruction-set variants (runtime dispatch): the loops (gemm_cpu.c, one source) are compiled once
 * per variant: sse2 (baseline x86-64: 4-float vectors, no FMA), avx2 (8 floats, FMA) and avx512
 * (16 floats, FMA); the portable build (QFLEET_PORTABLE) and other processors have the first alone.
 * qf_cpu_gemm calls ONE variant for the whole process, chosen at its first call (thread-safe): the
 * one QFLEET_CPU_ISA names (sse2|avx2|avx512), else the widest this CPU runs. One variant per
 * process keeps one summation order per output element, so results split over threads stay
 * bit-identical; two variants may differ in the last bits (FMA or not, the Q layer's lane count).
 *
 * Why qfleet's own and not OpenBLAS's sgemm, and why dispatch: docs/design-notes.md, "The CPU
 * learner's GEMMs". */
#ifndef QF_GEMM_CPU_H
#define QF_GEMM_CPU_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The GEMM above, by the process's variant (qf_cpu_gemm_isa). A bad QFLEET_CPU_ISA makes the first
 * call print a one-line error and exit(2); `qfleet` checks it at start (qf_cpu_gemm_isa_checked). */
void qf_cpu_gemm(int ta, int tb, int32_t M, int32_t N, int32_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, int sparse_a);

/* The vector width in floats and the register tile (rows x floats) of the process's variant, for
 * the docs and the benchmark's header line. */
void qf_cpu_gemm_shape(int *vector_floats, int *tile_rows, int *tile_cols);

/* ---- the variants ------------------------------------------------------------------------------ */
enum { QF_CPU_ISA_SSE2 = 0, QF_CPU_ISA_AVX2 = 1, QF_CPU_ISA_AVX512 = 2, QF_CPU_ISA_COUNT = 3 };
typedef void (*qf_cpu_gemm_fn)(int ta, int tb, int32_t M, int32_t N, int32_t K, const float *A, int64_t lda,
                               const float *B, int64_t ldb, float *C, int64_t ldc, int sparse_a);

/* "sse2", "avx2", "avx512" (the values of QFLEET_CPU_ISA; "generic" for the one variant of a
 * processor other than x86-64); NULL for an isa out of range. */
const char *qf_cpu_isa_name(int isa);

/* Variant isa's GEMM when this build has it and this CPU runs it, else NULL and why (one line) in
 * why[why_len] ("not compiled into this build (...)", "this CPU lacks avx512f"). Calling it directly
 * (tests, benchmarks) does not change the process's variant. */
qf_cpu_gemm_fn qf_cpu_gemm_variant(int isa, char *why, size_t why_len);
/* variant isa's vector width and register tile (as qf_cpu_gemm_shape); 0 if the build lacks it */
int qf_cpu_gemm_variant_shape(int isa, int *vector_floats, int *tile_rows, int *tile_cols);

/* The variant a value of QFLEET_CPU_ISA selects: NULL or "" the widest this CPU runs; a name, that
 * variant if it runs here. -1 and a one-line message naming QFLEET_CPU_ISA, the value and what is
 * allowed in err[err_len] for an unknown name or a variant this build or CPU cannot run. */
int qf_cpu_isa_choose(const char *value, char *err, size_t err_len);

/* The process's variant (chosen once, at the first call of this or qf_cpu_gemm, from the
 * environment's QFLEET_CPU_ISA): its index, or -1 and the message of qf_cpu_isa_choose. */
int qf_cpu_gemm_isa_checked(char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif
