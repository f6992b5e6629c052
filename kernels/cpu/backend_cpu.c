/* backend_cpu.c — the CPU backend: the reference implementation of every operation.
 * Loops over the batch with OpenMP, calling the element functions of kernels/env_batch.h, the same
 * ones the CUDA kernels call. Results do not depend on the number of threads. */
#define _GNU_SOURCE
/* No floating-point traps are assumed in this file (GCC's -fno-trapping-math): the env stepping
 * loops convert and divide under branches (qf_u01 of a conditional draw, DeepSea's move cost), and
 * only without possible traps may the compiler compute such lanes unconditionally and vectorize.
 * Computed values are those of IEEE arithmetic either way (contraction stays off); only the
 * exception flags, which nothing reads, may differ. Before any include, so that every function of
 * this file, inlined header functions included, has the same options. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#if defined(__AVX512F__)
/* and 512-bit vectors where the processor has them (GCC picks 256 by default): ~5% on the steps */
#pragma GCC target("prefer-vector-width=512")
#endif
#endif
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backend.h"
#include "gemm_cpu.h"


static void *cpu_alloc(qf_backend *b, size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) snprintf(b->err, sizeof b->err, "cpu backend: out of memory allocating %zu bytes", bytes);
    return p;
}
static void cpu_release(qf_backend *b, void *p) {
    (void)b;
    free(p);
}
/* Copies and syncs are counted like the GPU's host synchronizations (the benchmark reports them). */
static int cpu_copy(qf_backend *b, void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
    b->n_sync++;
    return QF_OK;
}
static int cpu_sync(qf_backend *b) {
    b->n_sync++;
    return QF_OK;
}

/* Envs are visited in blocks of at most QF_CPU_BLOCK consecutive envs of one run, so (r, e) is
 * computed once per block; OpenMP shares the blocks statically (results do not depend on the
 * thread count, nor on where the blocks are cut: each env's work reads and writes that env alone).
 * A run is cut into as many blocks as it takes for every thread to get an equal share (a batch of
 * 1024 envs in one run was one block of 2048 before, stepped by one thread whatever the team), in
 * multiples of 64 envs so that no two threads write into one cache line, not even of the 1-byte
 * flags array. Below QF_CPU_PAR_MIN envs in all the batch stays on the calling thread: a parallel
 * region (fork and barrier) cost 0.8 us at best on this 2-core Zen 5 VM while other processes ran
 * (an empty one, best of 200000) and more when a thread was descheduled, against 1.6 us for a
 * 1024-env DeepSea step on one thread; stepped by two threads, 1024 envs took 3.7 us a step at best
 * under that load (threads_cpu.c's auto team measures which is faster as the load changes). */
#define QF_CPU_BLOCK 2048
#define QF_CPU_PAR_MIN 2048
static inline int64_t cpu_block_envs(int64_t R, int64_t E) {
    const int64_t nt = omp_get_max_threads();
    int64_t per_run = (E + QF_CPU_BLOCK - 1) / QF_CPU_BLOCK;
    if (nt > 1 && R * E >= QF_CPU_PAR_MIN) {
        if (per_run * R < nt) per_run = (nt + R - 1) / R;
        while ((per_run * R) % nt) per_run++; /* equal shares: at most nt - 1 more */
    }
    const int64_t bs = ((E + per_run - 1) / per_run + 63) & ~(int64_t)63;
    return bs < QF_CPU_BLOCK ? bs : QF_CPU_BLOCK; /* ceil(E / per_run) <= QF_CPU_BLOCK, a multiple of 64 */
}
/* The serial case runs outside any parallel region: libgomp builds and frees a team even for an
 * if(0) region (malloc, free and a futex call: ~250 ns a step, an eighth of a 1024-env step). */
/* block blk_ of QF_FOR_EACH_BLOCK: run r, envs [e0, e1) */
#define QF_BLOCK_BODY_(batch, BODY)                                                                \
    do {                                                                                           \
        const int32_t r = (int32_t)(blk_ / per_run_);                                              \
        const int32_t e0 = (int32_t)((blk_ % per_run_) * bs_);                                     \
        const int32_t e1 = e0 + bs_ < (batch)->E ? (int32_t)(e0 + bs_) : (batch)->E;               \
        BODY;                                                                                      \
    } while (0)
#define QF_FOR_EACH_BLOCK(batch, BODY)                                                             \
    do {                                                                                           \
        const int64_t bs_ = cpu_block_envs((batch)->R, (batch)->E);                               \
        const int64_t per_run_ = ((int64_t)(batch)->E + bs_ - 1) / bs_;                            \
        const int64_t blocks_ = per_run_ * (batch)->R, n_ = (int64_t)(batch)->R * (batch)->E;     \
        if (blocks_ > 1 && n_ >= QF_CPU_PAR_MIN && omp_get_max_threads() > 1) {                   \
            _Pragma("omp parallel for schedule(static)")                                           \
            for (int64_t blk_ = 0; blk_ < blocks_; blk_++) QF_BLOCK_BODY_(batch, BODY);           \
        } else {                                                                                   \
            for (int64_t blk_ = 0; blk_ < blocks_; blk_++) QF_BLOCK_BODY_(batch, BODY);           \
        }                                                                                          \
    } while (0)
#define QF_FOR_EACH_ENV(batch, BODY) \
    QF_FOR_EACH_BLOCK(batch, for (int32_t e = e0; e < e1; e++) BODY)

static int cpu_env_reset(qf_backend *b, const qf_env_batch *batch) {
    (void)b;
    QF_FOR_EACH_ENV(batch, qf_batch_reset_one(batch, r, e));
    return QF_OK;
}

#if defined(__AVX512F__)
#include <immintrin.h>

/* 16 lanes of the 32 x 32 -> 64-bit product a * m: high words into *hi, low words returned
 * (Random123's mulhilo32, lane by lane). The high words: even lanes' products by vpmuludq, odd
 * lanes' from the odd words shifted down, merged by one masked shuffle; the low words by one
 * vpmulld. Timed on Zen 5 (rdtsc, best of 20000 x 1024 draws): 1.47 against 1.93 TSC cycles per
 * action of the shift-and-blend form, the same bits. */
static inline __m512i mulhilo16(__m512i a, __m512i m, __m512i *hi) {
    const __m512i even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    /* even lane 2i <- dword 2i + 1 of even's 64-bit product (0xF5 picks dwords 1, 1, 3, 3) */
    *hi = _mm512_mask_shuffle_epi32(odd, 0x5555, even, (_MM_PERM_ENUM)0xF5);
    return _mm512_mullo_epi32(a, m);
}

/* Philox4x32-10 (Random123's rounds and key schedule) of key (k0, k1) on 16 counters (stream, c1
 * lane by lane, step, 0) at once: word j of each lane's block into w[j]. Integer arithmetic only:
 * the same bits as the scalar philox4x32; GCC's own vectorization of that spends most of its time
 * shuffling 64-bit products. */
static inline void philox16(uint32_t k0, uint32_t k1, uint32_t stream, __m512i c1, uint32_t step, __m512i w[4]) {
    const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
    __m512i c0 = _mm512_set1_epi32((int)stream), c2 = _mm512_set1_epi32((int)step), c3 = _mm512_setzero_si512();
    uint32_t key0 = k0, key1 = k1;
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            key0 += 0x9E3779B9u;
            key1 += 0xBB67AE85u;
        }
        __m512i hi0, hi1;
        const __m512i lo0 = mulhilo16(c0, m0, &hi0), lo1 = mulhilo16(c2, m1, &hi1);
        /* hi ^ c ^ key as one three-input logic op (0x96: a ^ b ^ c) */
        const __m512i n0 = _mm512_ternarylogic_epi32(hi1, c1, _mm512_set1_epi32((int)key0), 0x96);
        const __m512i n2 = _mm512_ternarylogic_epi32(hi0, c3, _mm512_set1_epi32((int)key1), 0x96);
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    w[0] = c0;
    w[1] = c1;
    w[2] = c2;
    w[3] = c3;
}

/* qf_random_action for envs e .. e+15: philox16, then the multiply-shift. */
static inline __m512i random_actions16(uint32_t k0, uint32_t k1, int32_t e, uint32_t t, uint32_t n_act) {
    const __m512i c1 = _mm512_add_epi32(_mm512_set1_epi32(e),
                                        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512i w[4], a;
    philox16(k0, k1, QF_STREAM_ACTION, c1, t, w);
    (void)mulhilo16(w[0], _mm512_set1_epi32((int)n_act), &a);
    return a;
}
#define QF_PHILOX_LANES 16
#define QF_PHILOX_BLOCKS(k0, k1, stream, ctr1, step, out)                                          \
    do {                                                                                           \
        __m512i w_[4];                                                                             \
        philox16(k0, k1, stream, _mm512_loadu_si512((const void *)(ctr1)), step, w_);              \
        for (int j_ = 0; j_ < 4; j_++) _mm512_storeu_si512((void *)((out)[j_]), w_[j_]);           \
    } while (0)
#elif defined(__AVX2__)
#include <immintrin.h>

/* The same with 8 lanes of AVX2 (x86-64-v3: AMD Zen 1-4, Intel since Haswell), where GCC's own
 * vectorization of the scalar function does not happen at all (the 32 x 32 -> 64-bit products
 * need AVX-512's wider lanes for its pattern): without this, every draw is scalar Philox. */
static inline __m256i mulhilo8(__m256i a, __m256i m, __m256i *hi) {
    const __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    /* the low words by vpmulld (off the rounds' critical path, which runs through the high words):
     * 3.8 against 4.2 TSC cycles per action of a shift and a blend, Zen 5, x86-64-v3 build */
    return _mm256_mullo_epi32(a, m);
}

/* philox16 with 8 lanes */
static inline void philox8(uint32_t k0, uint32_t k1, uint32_t stream, __m256i c1, uint32_t step, __m256i w[4]) {
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    __m256i c0 = _mm256_set1_epi32((int)stream), c2 = _mm256_set1_epi32((int)step), c3 = _mm256_setzero_si256();
    uint32_t key0 = k0, key1 = k1;
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            key0 += 0x9E3779B9u;
            key1 += 0xBB67AE85u;
        }
        __m256i hi0, hi1;
        const __m256i lo0 = mulhilo8(c0, m0, &hi0), lo1 = mulhilo8(c2, m1, &hi1);
        const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)key0));
        const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)key1));
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    w[0] = c0;
    w[1] = c1;
    w[2] = c2;
    w[3] = c3;
}

static inline __m256i random_actions8(uint32_t k0, uint32_t k1, int32_t e, uint32_t t, uint32_t n_act) {
    __m256i w[4], a;
    philox8(k0, k1, QF_STREAM_ACTION, _mm256_add_epi32(_mm256_set1_epi32(e), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
            t, w);
    (void)mulhilo8(w[0], _mm256_set1_epi32((int)n_act), &a);
    return a;
}
#define QF_PHILOX_LANES 8
#define QF_PHILOX_BLOCKS(k0, k1, stream, ctr1, step, out)                                          \
    do {                                                                                           \
        __m256i w_[4];                                                                             \
        philox8(k0, k1, stream, _mm256_loadu_si256((const __m256i *)(const void *)(ctr1)), step, w_); \
        for (int j_ = 0; j_ < 4; j_++) _mm256_storeu_si256((__m256i *)(void *)((out)[j_]), w_[j_]); \
    } while (0)
#endif

/* The RESET stream's blocks (counter (QF_STREAM_RESET, ctr1[i], step, 0), key (k0, k1)) for
 * i < cnt: word j into w[j][i]. What qf_rng_next of qf_batch_end_episode's generator returns,
 * QF_PHILOX_LANES resets at a time where the processor has vectors for it. */
#define QF_RESET_CHUNK 64
static void reset_blocks(uint32_t k0, uint32_t k1, const uint32_t *ctr1, int32_t cnt, uint32_t step,
                         uint32_t w[4][QF_RESET_CHUNK]) {
    int32_t i = 0;
#if defined(QF_PHILOX_LANES)
    for (; i + QF_PHILOX_LANES <= cnt; i += QF_PHILOX_LANES) {
        uint32_t *out[4] = {w[0] + i, w[1] + i, w[2] + i, w[3] + i};
        QF_PHILOX_BLOCKS(k0, k1, QF_STREAM_RESET, ctr1 + i, step, out);
    }
#endif
    for (; i < cnt; i++) {
        qf_rng g = qf_rng_make(k0, k1, QF_STREAM_RESET, ctr1[i], step);
        const philox4x32_ctr_t r = qf_rng_next(&g);
        for (int j = 0; j < 4; j++) w[j][i] = r.v[j];
    }
}

/* Random actions for the envs [e0, e1) of run r, before the env steps (a loop of their own). */
static void draw_actions(const qf_env_batch *batch, int32_t r, int32_t e0, int32_t e1, uint32_t t,
                         int32_t *out) {
    const uint32_t k0 = batch->keys[2 * r], k1 = batch->keys[2 * r + 1];
    const int32_t n_act = qf_env_n_actions(batch->kind, &batch->params[r]);
    int32_t e = e0;
#if defined(__AVX512F__)
    for (; e + 16 <= e1; e += 16)
        _mm512_storeu_si512((void *)(out + (e - e0)), random_actions16(k0, k1, e, t, (uint32_t)n_act));
#elif defined(__AVX2__)
    for (; e + 8 <= e1; e += 8)
        _mm256_storeu_si256((__m256i *)(void *)(out + (e - e0)), random_actions8(k0, k1, e, t, (uint32_t)n_act));
#endif
    for (; e < e1; e++) out[e - e0] = qf_random_action(k0, k1, e, t, n_act);
}

/* Pass 1 of step_block: the transition of every env of [e0, e1) (qf_batch_transition), its reward,
 * return, flags, state and, for short observations, next_obs / next_index. kind is a constant, p
 * a local copy, obs and next_index each NULL or not by the caller's branch (step_pass), so the
 * loop has no switch, no invariant tests and no loads that its stores could alias: the compiler
 * if-converts and vectorizes it. */
static inline __attribute__((always_inline)) void step_loop(const qf_env_batch *b, const int kind,
                                                            const qf_env_params *p, int32_t r,
                                                            int32_t e0, int32_t e1, const int32_t *act,
                                                            uint32_t t, float *obs, int32_t *next_index) {
    const int64_t n = (int64_t)b->R * b->E, base = (int64_t)r * b->E;
    const uint32_t k0 = b->keys[2 * r], k1 = b->keys[2 * r + 1];
    const int64_t d = qf_env_obs_dim(kind, p);
#pragma omp simd
    for (int32_t e = e0; e < e1; e++) {
        const int64_t idx = base + e;
        qf_env_state s = qf_batch_load_k(b, kind, idx, n);
        uint32_t fl = 0;
        const float rew = qf_batch_transition(kind, p, &s, act[e - e0], b->rng_env0 + (uint32_t)e, t, k0, k1, &fl);
        b->ep_return[idx] = b->ep_return[idx] + rew;
        if (obs) qf_env_observe(kind, p, &s, obs + idx * d);
        if (next_index) next_index[idx] = qf_env_state_index(kind, p, &s);
        qf_batch_store_k(b, kind, idx, n, &s);
        b->reward[idx] = rew;
        b->flags[idx] = (uint8_t)fl;
    }
}

static inline __attribute__((always_inline)) void step_pass(const qf_env_batch *b, const int kind,
                                                            const qf_env_params *p, int32_t r,
                                                            int32_t e0, int32_t e1, const int32_t *act,
                                                            uint32_t t, float *obs, int32_t *next_index) {
    if (obs && next_index)
        step_loop(b, kind, p, r, e0, e1, act, t, obs, next_index);
    else if (obs)
        step_loop(b, kind, p, r, e0, e1, act, t, obs, NULL);
    else if (next_index)
        step_loop(b, kind, p, r, e0, e1, act, t, NULL, next_index);
    else
        step_loop(b, kind, p, r, e0, e1, act, t, NULL, NULL);
}

/* x[0 .. n) = 0 in a loop of vector stores, kept a loop (GCC would make it a memset call, whose
 * `rep stosb` for large n also works, but callgrind counts it byte by byte, and instruction counts
 * are how the CPU paths are compared: docs/design-notes.md) */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noinline, optimize("no-tree-loop-distribute-patterns")))
#endif
static void clear_floats(float *x, int64_t n) {
#pragma GCC unroll 8
    for (int64_t i = 0; i < n; i++) x[i] = 0.0f;
}

/* One-hot rows: out[i][0 .. d) = 0 but out[i][hot[i]] = 1 where 0 <= hot[i] < d, i < rows (the
 * rows contiguous). Written in groups of QF_ONE_HOT_GROUP rows, each cleared by a loop of vector
 * stores (one memset call per row of a few hundred bytes cost more than the step itself) and then
 * given its ones while its lines are still in the L1 cache (a block's rows at once, up to 800 KB,
 * went out to L2 before the ones came). Non-temporal stores for outputs larger than the caches
 * were tried: 10% faster at best on this Zen 5 VM (streaming the zeros, then the ones), slower
 * when each 64-byte chunk was composed with its ones (a branch per chunk), so not kept. */
#define QF_ONE_HOT_GROUP 64
static void one_hot_rows(float *out, const int32_t *hot, int64_t rows, int64_t d) {
    for (int64_t g = 0; g < rows; g += QF_ONE_HOT_GROUP) {
        const int64_t g1 = g + QF_ONE_HOT_GROUP < rows ? g + QF_ONE_HOT_GROUP : rows;
        clear_floats(out + g * d, (g1 - g) * d);
        for (int64_t i = g; i < g1; i++)
            if (hot[i] >= 0 && hot[i] < d) out[i * d + hot[i]] = 1.0f;
    }
}

/* The one-hot observations of the envs [e0, e1) of a run (base: its first env) from their stored
 * states: the hot cell of each (qf_env_state_index), then one_hot_rows over the block. */
static inline __attribute__((always_inline)) void one_hot_block(const qf_env_batch *b, const int kind,
                                                                const qf_env_params *p, int64_t n, int64_t base,
                                                                int32_t e0, int32_t e1, int64_t d, float *out) {
    int32_t hot[QF_CPU_BLOCK];
    for (int32_t e = e0; e < e1; e++) {
        const qf_env_state s = qf_batch_load_k(b, kind, base + e, n);
        hot[e - e0] = qf_env_state_index(kind, p, &s);
    }
    one_hot_rows(out + (base + e0) * d, hot, e1 - e0, d);
}

/* Pass 3 of step_block where most envs of [e0, e1) ended: qf_batch_end_episode for each of them
 * in one loop over the block, which the compiler if-converts and vectorizes for the kinds whose
 * reset draws nothing (DeepSea, chain, gridworld, bandit). */
static inline __attribute__((always_inline)) void end_loop(const qf_env_batch *b, const int kind, int32_t r,
                                                           int32_t e0, int32_t e1, uint32_t t) {
    const int64_t n = (int64_t)b->R * b->E, base = (int64_t)r * b->E;
    /* omp simd: each iteration reads and writes element idx of each array alone, and the arrays
     * do not overlap (vecenv.c carves them apart); without it GCC wants more run-time alias
     * checks between the dozen arrays than it allows and leaves the loop scalar */
#pragma omp simd
    for (int32_t e = e0; e < e1; e++) {
        const int64_t idx = base + e;
        const uint32_t fl = b->flags[idx];
        if (fl & (QF_TERMINAL | QF_TRUNCATED)) {
            qf_env_state s = qf_batch_load_k(b, kind, idx, n);
            qf_batch_end_episode(b, r, e, idx, &s, b->ep_return[idx], fl, t);
            qf_batch_store_k(b, kind, idx, n, &s);
            b->ep_return[idx] = 0.0f;
        }
    }
}

/* The envs [e0, e1) of run r stepped in three passes over the block, for one env kind (a
 * constant after inlining, so each kind gets loops of its own with no switch inside):
 *  1. step_pass: the transitions, one branch-free loop over the block;
 *  2. one-hot observations (deep_sea, chain, gridworld) of the states just stored, still before any reset
 *     (one_hot_rows);
 *  3. the envs whose episode ended: statistics and reset (qf_batch_end_episode).
 * Each env goes through the same element functions, in the same order, as qf_batch_step_one (what
 * the CUDA kernel runs), so every number is the same bits; test_batch checks it for every kind. */
static inline __attribute__((always_inline)) void step_block(const qf_env_batch *batch, const int kind,
                                                             int32_t r, int32_t e0, int32_t e1,
                                                             const int32_t *act, uint32_t t,
                                                             float *next_obs, int32_t *next_index) {
    qf_env_batch b = *batch; /* local copies: stores into the arrays cannot change them */
    b.kind = kind;           /* the constant: the element functions' switches on b.kind fold */
    const qf_env_params p = b.params[r];
    const int64_t n = (int64_t)b.R * b.E, base = (int64_t)r * b.E;
    const int64_t d = qf_env_obs_dim(kind, &p);
    const int one_hot = kind == QF_ENV_DEEP_SEA || kind == QF_ENV_CHAIN || kind == QF_ENV_GRIDWORLD;
    float *obs_inline = one_hot ? NULL : next_obs;
    qf_env_params q = p;
    if (kind == QF_ENV_DEEP_SEA && q.deep_sea.mapping == QF_DEEP_SEA_MAP_PHILOX &&
        q.deep_sea.size <= QF_DEEP_SEA_TABLE_MAX && e1 - e0 >= 2 * q.deep_sea.size) {
        /* DeepSea's Philox mapping read from a table of its bits, filled here once per block (N
         * Philox calls) instead of one Philox call per env step: the same bit for every cell
         * (qf_deep_sea_philox_table), and the table loop vectorizes with AVX2 as with AVX-512
         * (a gather), where GCC vectorizes the Philox of the mapping with AVX-512 only */
        qf_deep_sea_philox_table(&q.deep_sea, b.keys[2 * r], b.keys[2 * r + 1], q.deep_sea.map_bits);
        q.deep_sea.mapping = QF_DEEP_SEA_MAP_BSUITE;
    }
    if (kind == QF_ENV_DEEP_SEA && !q.deep_sea.stochastic) {
        /* the deterministic DeepSea (bsuite's, the main job's) as a loop of its own: the stochastic
         * one's noise (log, sqrt, cos) under a branch keeps a loop from vectorizing */
        qf_env_params det = q;
        det.deep_sea.stochastic = 0;
        /* and one loop per source of the mapping (a constant in each), so neither computes both */
        if (q.deep_sea.mapping == QF_DEEP_SEA_MAP_PHILOX) {
            det.deep_sea.mapping = QF_DEEP_SEA_MAP_PHILOX;
            step_pass(&b, kind, &det, r, e0, e1, act, t, obs_inline, next_index);
        } else { /* bsuite and ones read the same table */
            det.deep_sea.mapping = QF_DEEP_SEA_MAP_BSUITE;
            step_pass(&b, kind, &det, r, e0, e1, act, t, obs_inline, next_index);
        }
    } else {
        step_pass(&b, kind, &q, r, e0, e1, act, t, obs_inline, next_index);
    }
    if (one_hot && next_obs) {
        /* qf_env_observe of these kinds, for the whole block at once, from the states just stored
         * (deep_sea: no hot cell once the episode has ended, index N*N = d; chain: its position) */
        one_hot_block(&b, kind, &p, n, base, e0, e1, d, next_obs);
    }
    /* the ended envs: one bit per env from the flags bytes (eight at once, no branch per env: with
     * CartPole's random episodes a few envs of every 64 end at random places, and a test per env
     * mispredicted about once per ended env), then the set bits alone; or, where most of the block
     * ended (DeepSea: every env at once, every N steps) and the reset draws nothing, one loop over
     * the block */
    uint64_t ended[QF_CPU_BLOCK / 64];
    int64_t n_ended = 0;
    for (int32_t g = e0; g < e1; g += 64) {
        const int32_t g1 = g + 64 < e1 ? g + 64 : e1;
        uint64_t m = 0;
        if (g1 - g == 64) {
            for (int w = 0; w < 8; w++) {
                uint64_t x;
                memcpy(&x, b.flags + base + g + 8 * w, sizeof x);
                x = (x | (x >> 1)) & 0x0101010101010101ull; /* bit 0 of byte i: TERMINAL or TRUNCATED */
                m |= ((x * 0x0102040810204080ull) >> 56) << (8 * w); /* byte i's bit to bit i */
            }
        } else {
            for (int32_t e = g; e < g1; e++)
                m |= (uint64_t)((b.flags[base + e] & (QF_TERMINAL | QF_TRUNCATED)) != 0) << (e - g);
        }
        ended[(g - e0) / 64] = m;
        n_ended += __builtin_popcountll(m);
    }
    if (n_ended == 0) return;
    if (!qf_env_reset_one_block(kind) && 2 * n_ended >= e1 - e0) {
        end_loop(&b, kind, r, e0, e1, t);
        return;
    }
    if (!qf_env_reset_one_block(kind)) {
        for (int32_t g = e0; g < e1; g += 64) {
            uint64_t m = ended[(g - e0) / 64];
            while (m) {
                const int32_t e = g + (int32_t)__builtin_ctzll(m);
                m &= m - 1;
                const int64_t idx = base + e;
                qf_env_state s = qf_batch_load_k(&b, kind, idx, n);
                qf_batch_end_episode(&b, r, e, idx, &s, b.ep_return[idx], b.flags[idx], t);
                qf_batch_store_k(&b, kind, idx, n, &s);
                b.ep_return[idx] = 0.0f;
            }
        }
        return;
    }
    /* kinds whose reset is one Philox block (CartPole, MountainCar): qf_batch_end_episode in its
     * two halves, the statistics per env and the resets from blocks drawn QF_PHILOX_LANES at a
     * time (one scalar Philox per ended env, with its 64-bit products, was most of this pass) */
    const uint32_t k0 = b.keys[2 * r], k1 = b.keys[2 * r + 1];
    int32_t list[QF_RESET_CHUNK];
    uint32_t ctr1[QF_RESET_CHUNK], w[4][QF_RESET_CHUNK];
    int32_t cnt = 0;
    const int32_t groups = (e1 - e0 + 63) / 64;
    for (int32_t gi = 0; gi <= groups; gi++) {
        const int32_t g = e0 + 64 * gi;
        uint64_t m = gi < groups ? ended[gi] : 0;
        if (gi < groups && cnt + __builtin_popcountll(m) <= QF_RESET_CHUNK) {
            while (m) {
                const int32_t e = g + (int32_t)__builtin_ctzll(m);
                m &= m - 1;
                list[cnt] = e;
                ctr1[cnt++] = b.rng_env0 + (uint32_t)e;
            }
            continue;
        }
        /* the list is full (or the block done): its resets, then this group again */
        reset_blocks(k0, k1, ctr1, cnt, t + 1u, w);
        for (int32_t i = 0; i < cnt; i++) {
            const int64_t idx = base + list[i];
            qf_env_state s = qf_batch_load_k(&b, kind, idx, n);
            qf_batch_episode_stats(&b, r, idx, &s, b.ep_return[idx], b.flags[idx]);
            const philox4x32_ctr_t words = {{w[0][i], w[1][i], w[2][i], w[3][i]}};
            qf_env_reset_words(kind, &p, &s, words);
            qf_batch_store_k(&b, kind, idx, n, &s);
            b.ep_return[idx] = 0.0f;
        }
        cnt = 0;
        if (gi < groups) gi--; /* at most 64 ended in a group: it fits the emptied list */
    }
}

/* One function per kind, kept out of line (inlined into one OpenMP body, the six would exceed
 * the compiler's inlining budget) and flattened: every element function is inlined into its loops
 * (only what QF_HD_OUTLINE marks stays a call), which is what lets them vectorize. */
#define QF_STEP_BLOCK_FN(name, KIND)                                                               \
    static __attribute__((noinline, flatten)) void name(const qf_env_batch *batch, int32_t r,      \
                                                        int32_t e0, int32_t e1, const int32_t *act, \
                                                        uint32_t t, float *next_obs,               \
                                                        int32_t *next_index) {                     \
        step_block(batch, KIND, r, e0, e1, act, t, next_obs, next_index);                          \
    }
QF_STEP_BLOCK_FN(step_block_deep_sea, QF_ENV_DEEP_SEA)
QF_STEP_BLOCK_FN(step_block_cartpole, QF_ENV_CARTPOLE)
QF_STEP_BLOCK_FN(step_block_mountain_car, QF_ENV_MOUNTAIN_CAR)
QF_STEP_BLOCK_FN(step_block_chain, QF_ENV_CHAIN)
QF_STEP_BLOCK_FN(step_block_bandit, QF_ENV_BANDIT)
QF_STEP_BLOCK_FN(step_block_gridworld, QF_ENV_GRIDWORLD)

static int cpu_env_step(qf_backend *b, const qf_env_batch *batch, const int32_t *actions,
                        uint32_t t, float *next_obs, int32_t *next_index) {
    (void)b;
    qf_cpu_threads_tick(); /* one env step per training iteration: the auto team size's clock */
    void (*const step)(const qf_env_batch *, int32_t, int32_t, int32_t, const int32_t *, uint32_t,
                       float *, int32_t *) =
        batch->kind == QF_ENV_DEEP_SEA       ? step_block_deep_sea
        : batch->kind == QF_ENV_CARTPOLE     ? step_block_cartpole
        : batch->kind == QF_ENV_MOUNTAIN_CAR ? step_block_mountain_car
        : batch->kind == QF_ENV_CHAIN        ? step_block_chain
        : batch->kind == QF_ENV_GRIDWORLD    ? step_block_gridworld
                                             : step_block_bandit;
    QF_FOR_EACH_BLOCK(batch, {
        int32_t drawn[QF_CPU_BLOCK];
        const int32_t *act = actions ? actions + (int64_t)r * batch->E + e0 : drawn;
        if (!actions) draw_actions(batch, r, e0, e1, t, drawn);
        step(batch, r, e0, e1, act, t, next_obs, next_index);
    });
    return QF_OK;
}

/* qf_batch_observe_one for the envs [e0, e1) of run r, one kind (a constant after inlining): the
 * observation the agent acts on at every training iteration, as loops over the block (state index,
 * short observations) and one_hot_rows for the one-hot kinds, instead of a switch on the kind and a
 * per-env loop of zeros for every env. The same values: copies of state fields, zeros and ones. */
static inline __attribute__((always_inline)) void observe_block(const qf_env_batch *batch, const int kind,
                                                                int32_t r, int32_t e0, int32_t e1,
                                                                float *obs, int32_t *index) {
    const qf_env_batch b = *batch;
    const qf_env_params p = b.params[r];
    const int64_t n = (int64_t)b.R * b.E, base = (int64_t)r * b.E;
    const int64_t d = qf_env_obs_dim(kind, &p);
    const int one_hot = kind == QF_ENV_DEEP_SEA || kind == QF_ENV_CHAIN || kind == QF_ENV_GRIDWORLD;
    if (index)
        for (int32_t e = e0; e < e1; e++) {
            const qf_env_state s = qf_batch_load_k(&b, kind, base + e, n);
            index[base + e] = qf_env_state_index(kind, &p, &s);
        }
    if (obs && one_hot) {
        one_hot_block(&b, kind, &p, n, base, e0, e1, d, obs);
    } else if (obs) {
        for (int32_t e = e0; e < e1; e++) {
            const qf_env_state s = qf_batch_load_k(&b, kind, base + e, n);
            qf_env_observe(kind, &p, &s, obs + (base + e) * d);
        }
    }
}

#define QF_OBSERVE_BLOCK_FN(name, KIND)                                                            \
    static __attribute__((noinline, flatten)) void name(const qf_env_batch *batch, int32_t r,      \
                                                        int32_t e0, int32_t e1, float *obs,        \
                                                        int32_t *index) {                          \
        observe_block(batch, KIND, r, e0, e1, obs, index);                                         \
    }
QF_OBSERVE_BLOCK_FN(observe_block_deep_sea, QF_ENV_DEEP_SEA)
QF_OBSERVE_BLOCK_FN(observe_block_cartpole, QF_ENV_CARTPOLE)
QF_OBSERVE_BLOCK_FN(observe_block_mountain_car, QF_ENV_MOUNTAIN_CAR)
QF_OBSERVE_BLOCK_FN(observe_block_chain, QF_ENV_CHAIN)
QF_OBSERVE_BLOCK_FN(observe_block_bandit, QF_ENV_BANDIT)
QF_OBSERVE_BLOCK_FN(observe_block_gridworld, QF_ENV_GRIDWORLD)

static int cpu_env_observe(qf_backend *b, const qf_env_batch *batch, float *obs, int32_t *index) {
    (void)b;
    void (*const observe)(const qf_env_batch *, int32_t, int32_t, int32_t, float *, int32_t *) =
        batch->kind == QF_ENV_DEEP_SEA       ? observe_block_deep_sea
        : batch->kind == QF_ENV_CARTPOLE     ? observe_block_cartpole
        : batch->kind == QF_ENV_MOUNTAIN_CAR ? observe_block_mountain_car
        : batch->kind == QF_ENV_CHAIN        ? observe_block_chain
        : batch->kind == QF_ENV_GRIDWORLD    ? observe_block_gridworld
                                             : observe_block_bandit;
    QF_FOR_EACH_BLOCK(batch, observe(batch, r, e0, e1, obs, index));
    return QF_OK;
}

static void cpu_close(qf_backend *b) {
    qf_cpu_learn_close(b);
    free(b);
}

/* Name of the processor from /proc/cpuinfo (best effort). */
static void cpu_model(char *out, size_t len) {
    snprintf(out, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c += 1 + (c[1] == ' ');
                c[strcspn(c, "\n")] = 0;
                snprintf(out, len, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

qf_backend *qf_cpu_open(char *err, size_t err_len) {
    qf_backend *b = (qf_backend *)calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, err_len, "cpu backend: out of memory");
        return NULL;
    }
    b->kind = QF_BACKEND_CPU;
    b->name = "cpu";
    char model[200];
    cpu_model(model, sizeof model);
    char isa_err[256];
    const int isa = qf_cpu_gemm_isa_checked(isa_err, sizeof isa_err); /* the learner's GEMM variant */
    if (isa < 0) {
        snprintf(err, err_len, "cpu backend: %s", isa_err);
        free(b);
        return NULL;
    }
    snprintf(b->device, sizeof b->device, "%s, %d threads, GEMM %s", model, omp_get_max_threads(), qf_cpu_isa_name(isa));
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    b->mem_total = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : 0;
    b->mem_free = avail > 0 && psz > 0 ? (size_t)avail * (size_t)psz : b->mem_total;
    b->peak_bytes_per_s = 0;
    b->alloc = cpu_alloc;
    b->release = cpu_release;
    b->upload = cpu_copy;
    b->download = cpu_copy;
    b->sync = cpu_sync;
    b->env_reset = cpu_env_reset;
    b->env_step = cpu_env_step;
    b->env_observe = cpu_env_observe;
    b->solve = qf_solve_cpu;
    qf_cpu_learn_ops(b);
    qf_cpu_bandit_ops(b);
    qf_cpu_infer_ops(b);
    qf_cpu_peaks_op(b);
    b->close = cpu_close;
    return b;
}
