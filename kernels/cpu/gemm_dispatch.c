/* gemm_dispatch.c — runtime choice of the CPU learner's GEMM variant (gemm_cpu.h has the contract).
 *
 * gemm_cpu.c is compiled once per instruction set (CMakeLists.txt; QF_GEMM_HAVE_AVX2 and
 * QF_GEMM_HAVE_AVX512 say which variants this build has besides the baseline one). The first call
 * of qf_cpu_gemm (or qf_cpu_gemm_isa_checked) reads QFLEET_CPU_ISA once, under pthread_once, and
 * every later call of the process goes through the one function pointer it chose: one variant, so
 * one summation order per element, for the whole process. The CPU's features come from GCC's
 * __builtin_cpu_supports (libgcc's CPUID reading, which also checks that the OS saves the vector
 * registers: XGETBV), so a variant is never picked on a CPU or kernel that cannot run it.
 * Why dispatch in every build, -march=native included: docs/design-notes.md, "The CPU learner's
 * GEMMs". */
#define _POSIX_C_SOURCE 200809L
#include "gemm_cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the variants' entry points (gemm_cpu.c compiled with -DQF_GEMM_SUFFIX=_<variant>) */
#define QF_GEMM_DECLARE(v)                                                                                       \
    void qf_cpu_gemm_##v(int ta, int tb, int32_t M, int32_t N, int32_t K, const float *A, int64_t lda,          \
                         const float *B, int64_t ldb, float *C, int64_t ldc, int sparse_a);                    \
    void qf_cpu_gemm_shape_##v(int *vector_floats, int *tile_rows, int *tile_cols);
QF_GEMM_DECLARE(sse2)
#if defined(QF_GEMM_HAVE_AVX2)
QF_GEMM_DECLARE(avx2)
#endif
#if defined(QF_GEMM_HAVE_AVX512)
QF_GEMM_DECLARE(avx512)
#endif

#if defined(__x86_64__) || defined(__i386__)
#define QF_ISA_X86 1
static const char *const isa_names[QF_CPU_ISA_COUNT] = {"sse2", "avx2", "avx512"};
#else
#define QF_ISA_X86 0
static const char *const isa_names[QF_CPU_ISA_COUNT] = {"generic", "avx2", "avx512"};
#endif

typedef void (*shape_fn)(int *, int *, int *);
static const struct {
    qf_cpu_gemm_fn gemm;
    shape_fn shape;
} variants[QF_CPU_ISA_COUNT] = {
    {qf_cpu_gemm_sse2, qf_cpu_gemm_shape_sse2},
#if defined(QF_GEMM_HAVE_AVX2)
    {qf_cpu_gemm_avx2, qf_cpu_gemm_shape_avx2},
#else
    {NULL, NULL},
#endif
#if defined(QF_GEMM_HAVE_AVX512)
    {qf_cpu_gemm_avx512, qf_cpu_gemm_shape_avx512},
#else
    {NULL, NULL},
#endif
};

const char *qf_cpu_isa_name(int isa) { return isa >= 0 && isa < QF_CPU_ISA_COUNT ? isa_names[isa] : NULL; }

/* The first CPU feature that variant isa needs and this CPU lacks, or NULL (it runs here). The
 * features are those of the variant's compile flags (CMakeLists.txt). */
static const char *missing_feature(int isa) {
#if QF_ISA_X86
    __builtin_cpu_init();
    if (isa >= QF_CPU_ISA_AVX2) {
        if (!__builtin_cpu_supports("avx2")) return "avx2";
        if (!__builtin_cpu_supports("fma")) return "fma";
    }
    if (isa >= QF_CPU_ISA_AVX512) {
        if (!__builtin_cpu_supports("avx512f")) return "avx512f";
        if (!__builtin_cpu_supports("avx512dq")) return "avx512dq";
    }
    return NULL;
#else
    return isa == QF_CPU_ISA_SSE2 ? NULL : "x86-64";
#endif
}

qf_cpu_gemm_fn qf_cpu_gemm_variant(int isa, char *why, size_t why_len) {
    if (isa < 0 || isa >= QF_CPU_ISA_COUNT) {
        snprintf(why, why_len, "no variant %d (0 .. %d)", isa, QF_CPU_ISA_COUNT - 1);
        return NULL;
    }
    if (!variants[isa].gemm) {
        snprintf(why, why_len, "the %s variant is not compiled into this build (%s)", isa_names[isa],
#if defined(QFLEET_PORTABLE)
                 "the portable build has the baseline one alone"
#else
                 "not an x86-64 build"
#endif
        );
        return NULL;
    }
    const char *lack = missing_feature(isa);
    if (lack) {
        snprintf(why, why_len, "this CPU lacks %s, which the %s variant needs", lack, isa_names[isa]);
        return NULL;
    }
    return variants[isa].gemm;
}

int qf_cpu_gemm_variant_shape(int isa, int *vector_floats, int *tile_rows, int *tile_cols) {
    if (isa < 0 || isa >= QF_CPU_ISA_COUNT || !variants[isa].shape) return 0;
    variants[isa].shape(vector_floats, tile_rows, tile_cols);
    return 1;
}

int qf_cpu_isa_choose(const char *value, char *err, size_t err_len) {
    char why[160];
    if (!value || !value[0]) { /* the widest this build has and this CPU runs; the baseline always runs */
        for (int isa = QF_CPU_ISA_COUNT - 1; isa > 0; isa--)
            if (qf_cpu_gemm_variant(isa, why, sizeof why)) return isa;
        return QF_CPU_ISA_SSE2;
    }
    char runs[64] = "";
    for (int isa = 0; isa < QF_CPU_ISA_COUNT; isa++)
        if (qf_cpu_gemm_variant(isa, why, sizeof why))
            snprintf(runs + strlen(runs), sizeof runs - strlen(runs), "%s%s", runs[0] ? ", " : "", isa_names[isa]);
    for (int isa = 0; isa < QF_CPU_ISA_COUNT; isa++)
        if (strcmp(value, isa_names[isa]) == 0) {
            if (qf_cpu_gemm_variant(isa, why, sizeof why)) return isa;
            snprintf(err, err_len, "QFLEET_CPU_ISA=%.40s: %s (allowed here: %s, or unset for the widest)", value, why,
                     runs);
            return -1;
        }
    snprintf(err, err_len, "QFLEET_CPU_ISA=%.40s: unknown variant (allowed: %s, %s, %s, or unset for the widest this "
                           "CPU runs; here: %s)", value, isa_names[0], isa_names[1], isa_names[2], runs);
    return -1;
}

/* ---- the process's variant ------------------------------------------------------------------- */
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;
static int chosen_isa = -1;
static qf_cpu_gemm_fn chosen_gemm;
static char chosen_err[256];

static void choose(void) {
    chosen_isa = qf_cpu_isa_choose(getenv("QFLEET_CPU_ISA"), chosen_err, sizeof chosen_err);
    if (chosen_isa >= 0) chosen_gemm = variants[chosen_isa].gemm;
}

int qf_cpu_gemm_isa_checked(char *err, size_t err_len) {
    pthread_once(&chosen_once, choose);
    if (chosen_isa < 0) snprintf(err, err_len, "%s", chosen_err);
    return chosen_isa;
}

static qf_cpu_gemm_fn chosen_or_exit(void) {
    pthread_once(&chosen_once, choose);
    if (!chosen_gemm) { /* a bad QFLEET_CPU_ISA that no caller checked first (qfleet checks it at start) */
        fprintf(stderr, "qfleet: %s\n", chosen_err);
        exit(2);
    }
    return chosen_gemm;
}

void qf_cpu_gemm(int ta, int tb, int32_t M, int32_t N, int32_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, int sparse_a) {
    chosen_or_exit()(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, sparse_a);
}

void qf_cpu_gemm_shape(int *vector_floats, int *tile_rows, int *tile_cols) {
    chosen_or_exit();
    variants[chosen_isa].shape(vector_floats, tile_rows, tile_cols);
}
