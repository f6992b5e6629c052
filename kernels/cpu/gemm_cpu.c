/* gemm_cpu.c — the CPU learner's small GEMMs (gemm_cpu.h has the contract).
 *
 * The learner's GEMMs are tiny (batch 128 x widths of 2 to a few hundred) and there are many of
 * them (per network and layer: three forwards, two weight-gradient and one input-gradient GEMM
 * per update). The register-tiled loop nest below has no packing of A, no buffer allocation and no
 * thread dispatch per call, and it uses the widest vectors of its compilation (variant): 16-float
 * AVX-512 vectors where the compiler targets them, 8-float AVX/AVX2 ones, else 4-float SSE2 ones (the same source:
 * the vector type and tile are the only differences). B's panel (at most KC rows of the tile's
 * width) is copied into a zero-padded buffer on the stack, so widths that are not a multiple of
 * the vector (2 actions, 50 units) need no scalar edge code: the padding columns are computed and
 * dropped. Each element of C is summed over k in increasing order (gemm_cpu.h).
 *
 * The build compiles this file once per instruction-set variant (CMakeLists.txt: sse2 = baseline
 * x86-64, avx2 = -mavx2 -mfma, avx512 = -mavx512f -mavx512dq -mavx2 -mfma), each with
 * -DQF_GEMM_SUFFIX=_<variant>, which names its two entry points qf_cpu_gemm_<variant> and
 * qf_cpu_gemm_shape_<variant>; kernels/cpu/gemm_dispatch.c picks one per process at run time. */
#include "gemm_cpu.h"

#include <math.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__)
#include <immintrin.h>
#endif

/* One fused multiply-add per term where the build targets FMA, else a multiply and an add (with
 * -ffp-contract=off the compiler fuses nothing itself): the vector and the scalar forms below must
 * agree, since the sparse path and the dense one compute the same sums. */
#if defined(__FMA__)
#define SFMA(a, b, c) fmaf((a), (b), (c))
#else
#define SFMA(a, b, c) ((a) * (b) + (c))
#endif

#if defined(__AVX512F__)
typedef __m512 vf;
#define VW 16     /* floats per vector      */
#define NV_MAX 4  /* vectors per tile row   */
#define MR 6      /* rows per tile: 24 accumulators + 4 of B + 1 broadcast of the 32 registers */
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(x) _mm512_set1_ps(x)
#if defined(__FMA__)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#else
#define VFMA(a, b, c) _mm512_add_ps(_mm512_mul_ps((a), (b)), (c))
#endif
#elif defined(__AVX__)
typedef __m256 vf;
#define VW 8
#define NV_MAX 2
#define MR 6 /* 12 accumulators + 2 of B + 1 broadcast of the 16 registers */
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSET1(x) _mm256_set1_ps(x)
#if defined(__FMA__)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#else
#define VFMA(a, b, c) _mm256_add_ps(_mm256_mul_ps((a), (b)), (c))
#endif
#elif defined(__SSE2__)
typedef __m128 vf;
#define VW 4
#define NV_MAX 2
#define MR 4
#define VZERO() _mm_setzero_ps()
#define VLOAD(p) _mm_loadu_ps(p)
#define VSTORE(p, v) _mm_storeu_ps((p), (v))
#define VSET1(x) _mm_set1_ps(x)
#if defined(__FMA__)
#define VFMA(a, b, c) _mm_fmadd_ps((a), (b), (c))
#else
#define VFMA(a, b, c) _mm_add_ps(_mm_mul_ps((a), (b)), (c))
#endif
#else /* other processors: scalar, the same order */
typedef float vf;
#define VW 1
#define NV_MAX 4
#define MR 4
#define VZERO() 0.0f
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSET1(x) (x)
#define VFMA(a, b, c) SFMA(a, b, c)
#endif

/* this compilation's entry points: qf_cpu_gemm##QF_GEMM_SUFFIX, qf_cpu_gemm_shape##QF_GEMM_SUFFIX */
#ifndef QF_GEMM_SUFFIX
#error "compile gemm_cpu.c with -DQF_GEMM_SUFFIX=_<variant> (CMakeLists.txt); gemm_dispatch.c defines qf_cpu_gemm"
#endif
#define QF_GEMM_CAT2_(a, b) a##b
#define QF_GEMM_CAT_(a, b) QF_GEMM_CAT2_(a, b)
#define QF_GEMM_ENTRY QF_GEMM_CAT_(qf_cpu_gemm, QF_GEMM_SUFFIX)
#define QF_GEMM_SHAPE_ENTRY QF_GEMM_CAT_(qf_cpu_gemm_shape, QF_GEMM_SUFFIX)
void QF_GEMM_ENTRY(int ta, int tb, int32_t M, int32_t N, int32_t K, const float *A, int64_t lda, const float *B,
                   int64_t ldb, float *C, int64_t ldc, int sparse_a);
void QF_GEMM_SHAPE_ENTRY(int *vector_floats, int *tile_rows, int *tile_cols);

#define NR_MAX (NV_MAX * VW) /* columns per tile at most */
#define KC 128               /* rows of B per packed panel: KC x NR_MAX floats, 32 KiB with AVX-512 */

void QF_GEMM_SHAPE_ENTRY(int *vector_floats, int *tile_rows, int *tile_cols) {
    *vector_floats = VW;
    *tile_rows = MR;
    *tile_cols = NR_MAX;
}

/* The first w floats of p as a vector, the rest 0 (w < VW: a tile's last, partial vector), and
 * the store of its first w floats: AVX-512's masks, else through a copy. */
static inline vf load_part(const float *p, int w) {
    if (w >= VW) return VLOAD(p);
#if defined(__AVX512F__)
    return _mm512_maskz_loadu_ps((__mmask16)((1u << w) - 1u), p);
#else /* (AVX2's vmaskmovps is microcoded and slow on AMD processors) */
    float t[VW];
    for (int i = 0; i < VW; i++) t[i] = i < w ? p[i] : 0.0f;
    return VLOAD(t);
#endif
}
static inline void store_part(float *p, vf v, int w) {
    if (w >= VW) {
        VSTORE(p, v);
        return;
    }
#if defined(__AVX512F__)
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << w) - 1u), v);
#else
    float t[VW];
    VSTORE(t, v);
    for (int i = 0; i < w; i++) p[i] = t[i];
#endif
}

/* The tile C[0..mr)[0..nw) += (or =, first) the kc terms of A's rows times the packed panel bp
 * ([kc][nv * VW], zero-padded). A's element (r, k) is a[r * a_ms + k * a_ks]. mr and nv are
 * constants in every instance (the wrappers below), so the loops unroll and acc lives in registers. */
static inline __attribute__((always_inline)) void tile(const int mr, const int nv, int kc, const float *a, int64_t a_ms,
                                                       int64_t a_ks, const float *bp, int64_t bs, float *c, int64_t ldc,
                                                       int nw, int first) {
    vf acc[12][4]; /* (the rows and vectors of the largest instance; 2 MR <= 12, NV_MAX <= 4) */
#pragma GCC unroll 16
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[r][v] = first ? VZERO() : load_part(c + r * ldc + v * VW, nw - v * VW);
    for (int k = 0; k < kc; k++) {
        const float *b = bp + k * bs;
        vf bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) bv[v] = VLOAD(b + v * VW);
        const float *ak = a + k * a_ks;
#pragma GCC unroll 16
        for (int r = 0; r < mr; r++) {
            const vf ar = VSET1(ak[r * a_ms]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) acc[r][v] = VFMA(ar, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) store_part(c + r * ldc + v * VW, acc[r][v], nw - v * VW);
}

typedef void (*tile_fn)(int kc, const float *a, int64_t a_ms, int64_t a_ks, const float *bp, int64_t bs, float *c,
                        int64_t ldc, int nw, int first);
#define TILE_FN(name, ROWS, NV)                                                                                  \
    static void name(int kc, const float *a, int64_t a_ms, int64_t a_ks, const float *bp, int64_t bs, float *c,  \
                     int64_t ldc, int nw, int first) {                                                           \
        tile(ROWS, NV, kc, a, a_ms, a_ks, bp, bs, c, ldc, nw, first);                                            \
    }
/* tiles[r][nv - 1]: r rows (1 .. MR; row 0: 2 MR rows of one vector, enough independent sums to
 * hide the FMA latency) */
#define TILE_ROW(R)                                                                                              \
    TILE_FN(tile_##R##_1, R, 1) TILE_FN(tile_##R##_2, R, 2) TILE_FN(tile_##R##_3, R, 3) TILE_FN(tile_##R##_4, R, 4)
TILE_FN(tile_wide_1, 2 * MR, 1)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
TILE_ROW(5)
TILE_ROW(6)
#define TILE_PTRS(R) {tile_##R##_1, tile_##R##_2, tile_##R##_3, tile_##R##_4}
static const tile_fn tiles[7][4] = {{tile_wide_1, NULL, NULL, NULL}, TILE_PTRS(1), TILE_PTRS(2), TILE_PTRS(3),
                                    TILE_PTRS(4), TILE_PTRS(5), TILE_PTRS(6)};

/* bp [kc][w_pad] = B's rows k0 .. k0+kc, columns n0 .. n0+nw, zero beyond nw. B's element (k, n) is
 * B[k * b_ks + n * b_ns]. */
static void pack_b(float *bp, const float *B, int64_t b_ks, int64_t b_ns, int32_t k0, int kc, int32_t n0, int nw,
                   int w_pad) {
    for (int k = 0; k < kc; k++) {
        float *row = bp + (int64_t)k * w_pad;
        const float *src = B + (int64_t)(k0 + k) * b_ks + (int64_t)n0 * b_ns;
        if (b_ns == 1)
            memcpy(row, src, sizeof(float) * (size_t)nw);
        else
            for (int j = 0; j < nw; j++) row[j] = src[(int64_t)j * b_ns];
        for (int j = nw; j < w_pad; j++) row[j] = 0.0f;
    }
}

static void gemm_dense(int ta, int tb, int32_t M, int32_t N, int32_t K, const float *A, int64_t lda, const float *B,
                       int64_t ldb, float *C, int64_t ldc) {
    const int64_t a_ms = ta ? 1 : lda, a_ks = ta ? lda : 1;
    const int64_t b_ks = tb ? 1 : ldb, b_ns = tb ? ldb : 1;
    float bp[KC * NR_MAX] __attribute__((aligned(64)));
    for (int32_t n0 = 0; n0 < N; n0 += NR_MAX) {
        const int nw = N - n0 < NR_MAX ? N - n0 : NR_MAX, nv = (nw + VW - 1) / VW;
        for (int32_t k0 = 0; k0 < K; k0 += KC) {
            const int kc = K - k0 < KC ? K - k0 : KC;
            /* B's rows read in place when they hold whole vectors; else the zero-padded copy */
            const int direct = b_ns == 1 && nw == nv * VW;
            const float *panel = direct ? B + k0 * b_ks + n0 : bp;
            const int64_t bs = direct ? b_ks : nv * VW;
            if (!direct) pack_b(bp, B, b_ks, b_ns, k0, kc, n0, nw, nv * VW);
            const float *ak = A + k0 * a_ks;
            int32_t m0 = 0;
            if (nv == 1)
                for (; m0 + 2 * MR <= M; m0 += 2 * MR)
                    tiles[0][0](kc, ak + m0 * a_ms, a_ms, a_ks, panel, bs, C + m0 * ldc + n0, ldc, nw, k0 == 0);
            while (m0 < M) {
                const int r = M - m0 < MR ? M - m0 : MR;
                tiles[r][nv - 1](kc, ak + m0 * a_ms, a_ms, a_ks, panel, bs, C + m0 * ldc + n0, ldc, nw, k0 == 0);
                m0 += r;
            }
        }
    }
}

/* ---- narrow outputs (N <= NARROW columns: the Q layer's actions, its weight gradient) ----------
 * A tile of one vector per row wastes most of its lanes on 2 columns; these vectorize the other
 * way. */
#define NARROW 4

/* ta = 1 (A stored [K][M]: the weight gradient in^T dy): C^T in registers, vectors along C's rows
 * (contiguous in A's rows), one broadcast of B per column: the same terms in the same increasing
 * k order as the tiles (fma(a, b, c) = fma(b, a, c)), so the same bits. IV vectors of rows. */
#define IV 4
static inline __attribute__((always_inline)) void narrow_tn_n(const int N, int32_t M, int32_t K, const float *A,
                                                               int64_t lda, const float *B, int64_t ldb, float *C,
                                                               int64_t ldc) {
    for (int32_t i0 = 0; i0 < M; i0 += IV * VW) {
        const int rows = M - i0 < IV * VW ? M - i0 : IV * VW, nvec = (rows + VW - 1) / VW;
        vf acc[NARROW][IV];
        for (int n = 0; n < NARROW; n++)
            for (int v = 0; v < IV; v++) acc[n][v] = VZERO();
        for (int32_t k = 0; k < K; k++) {
            const float *a = A + k * lda + i0, *b = B + k * ldb;
            vf av[IV];
            if (nvec == IV && rows == IV * VW) {
#pragma GCC unroll 4
                for (int v = 0; v < IV; v++) av[v] = VLOAD(a + v * VW);
#pragma GCC unroll 4
                for (int n = 0; n < NARROW; n++) {
                    if (n >= N) break;
                    const vf bn = VSET1(b[n]);
#pragma GCC unroll 4
                    for (int v = 0; v < IV; v++) acc[n][v] = VFMA(av[v], bn, acc[n][v]);
                }
            } else {
                for (int v = 0; v < nvec; v++) av[v] = load_part(a + v * VW, rows - v * VW);
                for (int n = 0; n < N; n++) {
                    const vf bn = VSET1(b[n]);
                    for (int v = 0; v < nvec; v++) acc[n][v] = VFMA(av[v], bn, acc[n][v]);
                }
            }
        }
        float t[NARROW][IV * VW];
        for (int n = 0; n < N; n++)
            for (int v = 0; v < IV; v++) VSTORE(t[n] + v * VW, acc[n][v]);
        for (int i = 0; i < rows; i++)
            for (int n = 0; n < N; n++) C[(int64_t)(i0 + i) * ldc + n] = t[n][i];
    }
}
/* one instance per N (a constant: the accumulators stay in registers) */
static void narrow_tn(int32_t M, int32_t N, int32_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                      float *C, int64_t ldc) {
    switch (N) {
    case 1: narrow_tn_n(1, M, K, A, lda, B, ldb, C, ldc); break;
    case 2: narrow_tn_n(2, M, K, A, lda, B, ldb, C, ldc); break;
    case 3: narrow_tn_n(3, M, K, A, lda, B, ldb, C, ldc); break;
    default: narrow_tn_n(4, M, K, A, lda, B, ldb, C, ldc); break;
    }
}

/* ta = 0 (A [M][K]: the Q layer's forward): each element a dot product along k, VW partial sums
 * (term k in lane k mod VW, in increasing k within a lane), then the lanes added in a fixed tree.
 * Not the tiles' order, but fixed by K and the build alone: a row still does not depend on the
 * others. Bt: B's columns as rows ([N][K], stride ldt). */
static inline float hsum(vf v) { /* halves added: lane i + lane i + VW/2, then i + VW/4, ... */
#if defined(__AVX512F__)
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), hi);
#elif defined(__AVX__)
    const __m256 h = v;
#endif
#if defined(__AVX__)
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
#elif defined(__SSE2__)
    __m128 q = v;
#endif
#if defined(__SSE2__)
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
#else
    return v;
#endif
}
static inline __attribute__((always_inline)) void narrow_nn_n(const int N, int32_t M, int32_t K, const float *A,
                                                               int64_t lda, const float *Bt, int64_t ldt, float *C,
                                                               int64_t ldc) {
    for (int32_t m = 0; m < M; m++) {
        const float *a = A + m * lda;
        vf acc[NARROW];
        for (int n = 0; n < NARROW; n++) acc[n] = VZERO();
        int32_t k = 0;
        for (; k + VW <= K; k += VW) {
            const vf av = VLOAD(a + k);
#pragma GCC unroll 4
            for (int n = 0; n < NARROW; n++) {
                if (n >= N) break;
                acc[n] = VFMA(av, VLOAD(Bt + n * ldt + k), acc[n]);
            }
        }
        if (k < K) {
            const vf av = load_part(a + k, K - k);
            for (int n = 0; n < N; n++) acc[n] = VFMA(av, load_part(Bt + n * ldt + k, K - k), acc[n]);
        }
        for (int n = 0; n < N; n++) C[m * ldc + n] = hsum(acc[n]);
    }
}
static void narrow_nn(int32_t M, int32_t N, int32_t K, const float *A, int64_t lda, const float *Bt, int64_t ldt,
                      float *C, int64_t ldc) {
    switch (N) {
    case 1: narrow_nn_n(1, M, K, A, lda, Bt, ldt, C, ldc); break;
    case 2: narrow_nn_n(2, M, K, A, lda, Bt, ldt, C, ldc); break;
    case 3: narrow_nn_n(3, M, K, A, lda, Bt, ldt, C, ldc); break;
    default: narrow_nn_n(4, M, K, A, lda, Bt, ldt, C, ldc); break;
    }
}

/* c[0..n) = a * b[0..n) + c, term by term as the dense tiles add it. */
static inline void axpy_row(float *restrict c, float a, const float *restrict b, int32_t n) {
#pragma omp simd
    for (int32_t j = 0; j < n; j++) c[j] = SFMA(a, b[j], c[j]);
}

/* c[0..n) = a * b[0..n) + 0: the first term of a sum (the accumulator starts at +0). */
static inline void first_row(float *restrict c, float a, const float *restrict b, int32_t n) {
#pragma omp simd
    for (int32_t j = 0; j < n; j++) c[j] = SFMA(a, b[j], 0.0f);
}

/* Nonzeros of the rows x cols block of A at p (leading dimension ld): one vector pass. */
static int64_t count_nonzeros(const float *p, int64_t ld, int32_t rows, int32_t cols) {
    if (ld == cols) { /* one block: one loop */
        cols = rows * cols;
        rows = 1;
    }
    int64_t n = 0;
    for (int32_t i = 0; i < rows; i++) {
        const float *row = p + i * ld;
        int32_t c = 0;
#pragma omp simd reduction(+ : c)
        for (int32_t j = 0; j < cols; j++) c += row[j] != 0.0f;
        n += c;
    }
    return n;
}

/* Whether one of the 16 floats at p is nonzero (-0 counts as zero, NaN as nonzero: C's != 0.0f),
 * with one vector compare where the ISA has one. */
static inline int any_nonzero16(const float *p) {
#if defined(__AVX512F__)
    return _mm512_cmp_ps_mask(_mm512_loadu_ps(p), _mm512_setzero_ps(), _CMP_NEQ_UQ) != 0;
#elif defined(__AVX__)
    const __m256 z = _mm256_setzero_ps();
    return (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p), z, _CMP_NEQ_UQ)) |
            _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + 8), z, _CMP_NEQ_UQ))) != 0;
#else
    int any = 0;
    for (int t = 0; t < 16; t++) any |= p[t] != 0.0f;
    return any;
#endif
}

/* For every nonzero row[j] (j increasing): f(j, row[j]); blocks of 16 zeros are skipped with one
 * vector test. */
#define FOR_NONZEROS(row, n, J, X, BODY)                                                                         \
    do {                                                                                                         \
        int32_t j0_ = 0;                                                                                         \
        for (; j0_ + 16 <= (n); j0_ += 16) {                                                                     \
            if (!any_nonzero16((row) + j0_)) continue;                                                           \
            for (int32_t J = j0_; J < j0_ + 16; J++) {                                                           \
                const float X = (row)[J];                                                                        \
                if (X != 0.0f) BODY;                                                                             \
            }                                                                                                    \
        }                                                                                                        \
        for (int32_t J = j0_; J < (n); J++) {                                                                    \
            const float X = (row)[J];                                                                            \
            if (X != 0.0f) BODY;                                                                                 \
        }                                                                                                        \
    } while (0)

void QF_GEMM_ENTRY(int ta, int tb, int32_t M, int32_t N, int32_t K, const float *A, int64_t lda, const float *B,
                   int64_t ldb, float *C, int64_t ldc, int sparse_a) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int32_t m = 0; m < M; m++) memset(C + m * ldc, 0, sizeof(float) * (size_t)N);
        return;
    }
    if (N <= NARROW && !ta && K <= 4096) { /* (dense only: its order is not the sparse path's) */
        if (tb) {
            narrow_nn(M, N, K, A, lda, B, ldb, C, ldc);
        } else {
            float bt[NARROW * 4096];
            for (int n = 0; n < N; n++)
                for (int32_t k = 0; k < K; k++) bt[n * K + k] = B[k * ldb + n];
            narrow_nn(M, N, K, A, lda, bt, K, C, ldc);
        }
        return;
    }
    /* A's rows in memory: M rows of K (ta = 0) or K rows of M (ta = 1) */
    const int32_t a_rows = ta ? K : M, a_cols = ta ? M : K;
    /* Sparse or dense: both give the same floats, so the choice may look at a sample: A's first
     * rows (up to 8). Rows of fewer than 16 inputs (CartPole's 4) stay dense: the tiles cost little
     * there, the count more. */
    const int32_t probe = a_rows < 8 ? a_rows : 8;
    if (!sparse_a || tb || a_cols < 16 || 4 * count_nonzeros(A, lda, probe, a_cols) >= (int64_t)probe * a_cols) {
        if (ta && !tb && N <= NARROW)
            narrow_tn(M, N, K, A, lda, B, ldb, C, ldc);
        else
            gemm_dense(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
        return;
    }
    if (!ta) { /* row m of C: the nonzeros of row m of A, each times its row of B; the first term
                * is fma(a, b, +0) as in the tiles, written without clearing the row first */
        for (int32_t m = 0; m < M; m++) {
            const float *row = A + m * lda;
            float *c = C + m * ldc;
            int started = 0;
            FOR_NONZEROS(row, K, k, a, {
                if (started) {
                    axpy_row(c, a, B + k * ldb, N);
                } else {
                    first_row(c, a, B + k * ldb, N);
                    started = 1;
                }
            });
            if (!started) memset(c, 0, sizeof(float) * (size_t)N);
        }
    } else { /* A stored [K][M]: row k of it scatters into the rows of C it is nonzero in, k increasing */
        for (int32_t m = 0; m < M; m++) memset(C + m * ldc, 0, sizeof(float) * (size_t)N);
        for (int32_t k = 0; k < K; k++) {
            const float *row = A + k * lda, *b = B + k * ldb;
            FOR_NONZEROS(row, M, m, a, axpy_row(C + m * ldc, a, b, N));
        }
    }
}
