/* gemm_shapes.c — the learner's GEMM shapes, OpenBLAS's cblas_sgemm against qfleet's qf_cpu_gemm
 * (kernels/cpu/gemm_cpu.c) in each instruction-set variant this CPU runs (sse2, avx2, avx512:
 * gemm_cpu.h), one thread: per call, the best of 5 timings of a loop of calls, in the thread's CPU
 * time (less disturbed than wall time by other processes on the cores, not immune: caches and
 * clocks are shared), and each variant's largest difference from OpenBLAS's result (float32 sums
 * in different orders).
 *
 *   cmake --build build --target qf_gemm_shapes && OMP_NUM_THREADS=1 build/qf_gemm_shapes
 *
 * Instruction counts, which other processes do not change: `qf_gemm_shapes --count IMPL SHAPE REPS`
 * makes REPS calls of one shape by one implementation (openblas, sse2, avx2, avx512) inside the
 * function `counted_calls`, for `valgrind --tool=callgrind --collect-atstart=no
 * --toggle-collect=counted_calls` (valgrind 3.19 runs no AVX-512: avx512 cannot be counted there).
 *
 * Shapes: CartPole's MLP 4-64-64-2 with batch 128 (cp-*: forwards, weight gradients dW, input
 * gradients dx, the acting forward on 1 row) and DeepSea-20's 400-50-50-2 with the dense one-hot
 * input (ds-*; "sp": the one-hot rows, which qf_cpu_gemm's sparse path skips; OpenBLAS multiplies
 * every zero). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../kernels/cpu/gemm_cpu.h"

/* n floats uniform in [-0.5, 0.5); one_hot: one 1 per row of `cols` instead */
static float *fill(size_t rows, size_t cols, int one_hot, unsigned *seed) {
    float *p = (float *)calloc(rows * cols + 16, sizeof(float));
    if (!p) exit(1);
    for (size_t r = 0; r < rows; r++)
        if (one_hot)
            p[r * cols + (size_t)rand_r(seed) % cols] = 1.0f;
        else
            for (size_t c = 0; c < cols; c++) p[r * cols + c] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
    return p;
}

typedef struct {
    const char *name;
    int ta, tb, M, N, K, one_hot;
} shape;
static const shape shapes[] = {
    {"cp-fwd0", 0, 0, 128, 64, 4, 0},     {"cp-fwd1", 0, 0, 128, 64, 64, 0},  {"cp-fwd2", 0, 0, 128, 2, 64, 0},
    {"cp-act1", 0, 0, 1, 64, 64, 0},      {"cp-dW2", 1, 0, 64, 2, 128, 0},    {"cp-dW1", 1, 0, 64, 64, 128, 0},
    {"cp-dW0", 1, 0, 4, 64, 128, 0},      {"cp-dx2", 0, 1, 128, 64, 2, 0},    {"cp-dx1", 0, 1, 128, 64, 64, 0},
    {"ds-fwd0", 0, 0, 128, 50, 400, 0},   {"ds-fwd0sp", 0, 0, 128, 50, 400, 1}, {"ds-fwd1", 0, 0, 128, 50, 50, 0},
    {"ds-dW0", 1, 0, 400, 50, 128, 0},    {"ds-dW0sp", 1, 0, 400, 50, 128, 1}, {"ds-dx1", 0, 1, 128, 50, 50, 0},
    {"ds-act0sp", 0, 0, 1, 50, 400, 1},
};
enum { N_SHAPES = (int)(sizeof shapes / sizeof shapes[0]), IMPLS = 1 + QF_CPU_ISA_COUNT };

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    float *A, *B, *C;
    int64_t lda, ldb;
} operands;

static operands make(const shape *s) {
    unsigned seed = 1;
    operands o;
    /* A's rows in memory: M x K, or K x M when transposed (the one-hot rows are A's rows) */
    o.A = s->ta ? fill((size_t)s->K, (size_t)s->M, s->one_hot, &seed) : fill((size_t)s->M, (size_t)s->K, s->one_hot, &seed);
    o.B = fill((size_t)s->K, (size_t)s->N, 0, &seed);
    o.C = fill((size_t)s->M, (size_t)s->N, 0, &seed);
    o.lda = s->ta ? s->M : s->K;
    o.ldb = s->tb ? s->K : s->N;
    return o;
}

/* impl 0: OpenBLAS; 1 + isa: that variant of qf_cpu_gemm (gemm must be its function) */
static __attribute__((noinline)) void counted_calls(int impl, qf_cpu_gemm_fn gemm, const shape *s, const operands *o,
                                                    int reps) {
    for (int r = 0; r < reps; r++)
        if (impl == 0)
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->M, s->N,
                        s->K, 1.0f, o->A, (int)o->lda, o->B, (int)o->ldb, 0.0f, o->C, s->N);
        else
            gemm(s->ta, s->tb, s->M, s->N, s->K, o->A, o->lda, o->B, o->ldb, o->C, s->N, s->one_hot);
}

static const char *impl_name(int impl) { return impl == 0 ? "openblas" : qf_cpu_isa_name(impl - 1); }

static void table(void) {
    qf_cpu_gemm_fn fns[IMPLS] = {NULL};
    char why[160];
    printf("per call, thread CPU time in us (best of 5 loops), and OpenBLAS's time / the variant's\n");
    printf("%-10s %-2s %4s %4s %4s %10s", "shape", "op", "M", "N", "K", "openblas");
    for (int isa = 0; isa < QF_CPU_ISA_COUNT; isa++) {
        fns[1 + isa] = qf_cpu_gemm_variant(isa, why, sizeof why);
        if (fns[1 + isa]) {
            int vw, mr, nr;
            qf_cpu_gemm_variant_shape(isa, &vw, &mr, &nr);
            printf(" %10s %6s", impl_name(1 + isa), "x");
            fprintf(stderr, "qf_gemm_shapes: %s: %d floats per vector, register tile %d rows x %d floats\n",
                    impl_name(1 + isa), vw, mr, nr);
        } else {
            fprintf(stderr, "qf_gemm_shapes: %s: %s\n", qf_cpu_isa_name(isa), why);
        }
    }
    printf("  max|diff| vs openblas\n");
    for (int si = 0; si < N_SHAPES; si++) {
        const shape *s = &shapes[si];
        operands o = make(s);
        float *ref = (float *)malloc(sizeof(float) * (size_t)s->M * (size_t)s->N);
        if (!ref) exit(1);
        const double flop = 2.0 * s->M * s->N * s->K;
        int reps = (int)(2e8 / flop);
        reps = reps < 20 ? 20 : reps > 200000 ? 200000 : reps;
        double best[IMPLS];
        for (int i = 0; i < IMPLS; i++) best[i] = 1e30;
        for (int t = 0; t < 5; t++) /* the implementations interleaved, so a burst of load hits all */
            for (int i = 0; i < IMPLS; i++) {
                if (i > 0 && !fns[i]) continue;
                const double t0 = cpu_now();
                counted_calls(i, fns[i], s, &o, reps);
                const double dt = cpu_now() - t0;
                best[i] = dt < best[i] ? dt : best[i];
                if (i == 0) memcpy(ref, o.C, sizeof(float) * (size_t)s->M * (size_t)s->N);
            }
        printf("%-10s %s%s %4d %4d %4d %10.2f", s->name, s->ta ? "T" : "N", s->tb ? "T" : "N", s->M, s->N, s->K,
               1e6 * best[0] / reps);
        double diff = 0.0;
        for (int i = 1; i < IMPLS; i++) {
            if (!fns[i]) continue;
            printf(" %10.2f %5.2fx", 1e6 * best[i] / reps, best[0] / best[i]);
            counted_calls(i, fns[i], s, &o, 1);
            for (int j = 0; j < s->M * s->N; j++) diff = fmax(diff, fabs((double)ref[j] - o.C[j]));
        }
        printf("  %.2g\n", diff);
        free(o.A);
        free(o.B);
        free(o.C);
        free(ref);
    }
}

int main(int argc, char **argv) {
    openblas_set_num_threads(1);
    if (argc == 5 && strcmp(argv[1], "--count") == 0) { /* --count IMPL SHAPE REPS (for callgrind) */
        int impl = -1, si = -1;
        for (int i = 0; i < IMPLS; i++)
            if (strcmp(argv[2], impl_name(i)) == 0) impl = i;
        for (int i = 0; i < N_SHAPES; i++)
            if (strcmp(argv[3], shapes[i].name) == 0) si = i;
        const int reps = atoi(argv[4]);
        char why[160] = "";
        qf_cpu_gemm_fn fn = impl > 0 ? qf_cpu_gemm_variant(impl - 1, why, sizeof why) : NULL;
        if (impl < 0 || si < 0 || reps < 1 || (impl > 0 && !fn)) {
            fprintf(stderr, "qf_gemm_shapes --count: impl '%s' (openblas, sse2, avx2, avx512) shape '%s' reps '%s'%s%s\n",
                    argv[2], argv[3], argv[4], why[0] ? ": " : "", why);
            return 2;
        }
        operands o = make(&shapes[si]);
        counted_calls(impl, fn, &shapes[si], &o, 1); /* warm-up (not counted: the count is per REPS) */
        counted_calls(impl, fn, &shapes[si], &o, reps);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: qf_gemm_shapes | qf_gemm_shapes --count IMPL SHAPE REPS\n");
        return 2;
    }
    char err[256];
    const int isa = qf_cpu_gemm_isa_checked(err, sizeof err);
    if (isa < 0) {
        fprintf(stderr, "qf_gemm_shapes: %s\n", err);
        return 2;
    }
    int vw, mr, nr;
    qf_cpu_gemm_shape(&vw, &mr, &nr);
    printf("qf_cpu_gemm: variant %s (of this process: QFLEET_CPU_ISA or the widest), %d floats per vector, register "
           "tile %d rows x %d floats\n", qf_cpu_isa_name(isa), vw, mr, nr);
    table();
    return 0;
}
