/* gemm_shapes.c — the learner's GEMM shapes, OpenBLAS's cblas_sgemm against qfleet's qf_cpu_gemm
 * (kernels/cpu/gemm_cpu.c), one thread, best of 5 timings of a loop of calls per shape, and the
 * largest difference between the two results (both are float32 sums in different orders).
 *
 *   cmake --build build --target qf_gemm_shapes && OMP_NUM_THREADS=1 build/qf_gemm_shapes
 *
 * Shapes: CartPole's MLP 4-64-64-2 with batch 128 (cp-*: forwards, weight gradients dW, input
 * gradients dx, the acting forward on 1 row) and DeepSea-20's 400-50-50-2 with the dense one-hot
 * input (ds-*; "sp": the one-hot rows, which qf_cpu_gemm's sparse path skips; OpenBLAS multiplies
 * every zero). Wall time: run it on an idle core. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../kernels/cpu/gemm_cpu.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

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

static void run(const char *name, int ta, int tb, int M, int N, int K, int one_hot) {
    unsigned seed = 1;
    /* A's rows in memory: M x K, or K x M when transposed (the one-hot rows are A's rows) */
    float *A = ta ? fill((size_t)K, (size_t)M, one_hot, &seed) : fill((size_t)M, (size_t)K, one_hot, &seed);
    float *B = fill((size_t)K, (size_t)N, 0, &seed), *C = fill((size_t)M, (size_t)N, 0, &seed),
          *D = fill((size_t)M, (size_t)N, 0, &seed);
    const int64_t lda = ta ? M : K, ldb = tb ? K : N;
    const double flop = 2.0 * M * N * K;
    int reps = (int)(2e8 / flop);
    reps = reps < 20 ? 20 : reps > 200000 ? 200000 : reps;
    double best_o = 1e30, best_q = 1e30;
    for (int t = 0; t < 5; t++) {
        const double t0 = now();
        for (int r = 0; r < reps; r++)
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
                        A, (int)lda, B, (int)ldb, 0.0f, C, N);
        const double t1 = now();
        for (int r = 0; r < reps; r++) qf_cpu_gemm(ta, tb, M, N, K, A, lda, B, ldb, D, N, one_hot);
        const double t2 = now();
        best_o = t1 - t0 < best_o ? t1 - t0 : best_o;
        best_q = t2 - t1 < best_q ? t2 - t1 : best_q;
    }
    double diff = 0.0;
    for (int i = 0; i < M * N; i++) diff = fmax(diff, fabs((double)C[i] - D[i]));
    printf("%-10s %s%s M=%-4d N=%-4d K=%-4d  OpenBLAS %8.2f us %6.1f GFLOP/s  qfleet %8.2f us %6.1f GFLOP/s  %5.2fx  "
           "max|diff| %.2g\n",
           name, ta ? "T" : "N", tb ? "T" : "N", M, N, K, 1e6 * best_o / reps, flop * reps / best_o * 1e-9,
           1e6 * best_q / reps, flop * reps / best_q * 1e-9, best_o / best_q, diff);
    free(A);
    free(B);
    free(C);
    free(D);
}

int main(void) {
    openblas_set_num_threads(1);
    int vw, mr, nr;
    qf_cpu_gemm_shape(&vw, &mr, &nr);
    printf("qf_cpu_gemm: %d floats per vector, register tile %d rows x %d floats\n", vw, mr, nr);
    run("cp-fwd0", 0, 0, 128, 64, 4, 0);
    run("cp-fwd1", 0, 0, 128, 64, 64, 0);
    run("cp-fwd2", 0, 0, 128, 2, 64, 0);
    run("cp-act1", 0, 0, 1, 64, 64, 0);
    run("cp-dW2", 1, 0, 64, 2, 128, 0);
    run("cp-dW1", 1, 0, 64, 64, 128, 0);
    run("cp-dW0", 1, 0, 4, 64, 128, 0);
    run("cp-dx2", 0, 1, 128, 64, 2, 0);
    run("cp-dx1", 0, 1, 128, 64, 64, 0);
    run("ds-fwd0", 0, 0, 128, 50, 400, 0);
    run("ds-fwd0sp", 0, 0, 128, 50, 400, 1);
    run("ds-fwd1", 0, 0, 128, 50, 50, 0);
    run("ds-dW0", 1, 0, 400, 50, 128, 0);
    run("ds-dW0sp", 1, 0, 400, 50, 128, 1);
    run("ds-dx1", 0, 1, 128, 50, 50, 0);
    run("ds-act0sp", 0, 0, 1, 50, 400, 1);
    return 0;
}
