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

/* Envs are visited in blocks of QF_CPU_BLOCK consecutive envs of one run, so (r, e) is computed
 * once per block; OpenMP shares the blocks statically (results do not depend on the thread count)
 * once there are at least QF_CPU_BLOCK envs: below that a parallel region costs more than it saves,
 * and on a busy machine its barrier waits for descheduled threads. */
#define QF_CPU_BLOCK 2048
#define QF_FOR_EACH_BLOCK(batch, BODY)                                                             \
    do {                                                                                           \
        const int64_t per_run_ = ((int64_t)(batch)->E + QF_CPU_BLOCK - 1) / QF_CPU_BLOCK;           \
        const int64_t blocks_ = per_run_ * (batch)->R, n_ = (int64_t)(batch)->R * (batch)->E;     \
        _Pragma("omp parallel for schedule(static) if(blocks_ > 1 && n_ >= QF_CPU_BLOCK)")        \
        for (int64_t blk_ = 0; blk_ < blocks_; blk_++) {                                           \
            const int32_t r = (int32_t)(blk_ / per_run_);                                          \
            const int32_t e0 = (int32_t)(blk_ % per_run_) * QF_CPU_BLOCK;                          \
            const int32_t e1 = e0 + QF_CPU_BLOCK < (batch)->E ? e0 + QF_CPU_BLOCK : (batch)->E;    \
            BODY;                                                                                  \
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
 * (Random123's mulhilo32, lane by lane). */
static inline __m512i mulhilo16(__m512i a, __m512i m, __m512i *hi) {
    const __m512i even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
    return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

/* qf_random_action for envs e .. e+15: Philox4x32-10 (Random123's rounds and key schedule) on 16
 * counters at once, then the multiply-shift. Integer arithmetic only: the same bits as the scalar
 * function; GCC's own vectorization of it spends most of its time shuffling 64-bit products. */
static inline __m512i random_actions16(uint32_t k0, uint32_t k1, int32_t e, uint32_t t, uint32_t n_act) {
    const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
    __m512i c0 = _mm512_set1_epi32(QF_STREAM_ACTION);
    __m512i c1 = _mm512_add_epi32(_mm512_set1_epi32(e),
                                  _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512i c2 = _mm512_set1_epi32((int)t), c3 = _mm512_setzero_si512();
    uint32_t key0 = k0, key1 = k1;
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            key0 += 0x9E3779B9u;
            key1 += 0xBB67AE85u;
        }
        __m512i hi0, hi1;
        const __m512i lo0 = mulhilo16(c0, m0, &hi0), lo1 = mulhilo16(c2, m1, &hi1);
        const __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)key0));
        const __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)key1));
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    __m512i a;
    (void)mulhilo16(c0, _mm512_set1_epi32((int)n_act), &a);
    return a;
}
#elif defined(__AVX2__)
#include <immintrin.h>

/* The same with 8 lanes of AVX2 (x86-64-v3: AMD Zen 1-4, Intel since Haswell), where GCC's own
 * vectorization of the scalar function does not happen at all (the 32 x 32 -> 64-bit products
 * need AVX-512's wider lanes for its pattern): without this, every draw is scalar Philox. */
static inline __m256i mulhilo8(__m256i a, __m256i m, __m256i *hi) {
    const __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

static inline __m256i random_actions8(uint32_t k0, uint32_t k1, int32_t e, uint32_t t, uint32_t n_act) {
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    __m256i c0 = _mm256_set1_epi32(QF_STREAM_ACTION);
    __m256i c1 = _mm256_add_epi32(_mm256_set1_epi32(e), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i c2 = _mm256_set1_epi32((int)t), c3 = _mm256_setzero_si256();
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
    __m256i a;
    (void)mulhilo8(c0, _mm256_set1_epi32((int)n_act), &a);
    return a;
}
#endif

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

/* The envs [e0, e1) of run r stepped in three passes over the block, for one env kind (a
 * constant after inlining, so each kind gets loops of its own with no switch inside):
 *  1. step_pass: the transitions, one branch-free loop over the block;
 *  2. one-hot observations (deep_sea, chain, gridworld) of the states just stored, still before any reset
 *     (the block's rows cleared at once, then one 1 per env);
 *  3. the envs whose episode ended (a few per block): statistics and reset (qf_batch_end_episode).
 * Each env goes through the same element functions, in the same order, as qf_batch_step_one (what
 * the CUDA kernel runs), so every number is the same bits; test_batch checks it for every kind. */
static inline __attribute__((always_inline)) void step_block(const qf_env_batch *batch, const int kind,
                                                             int32_t r, int32_t e0, int32_t e1,
                                                             const int32_t *act, uint32_t t,
                                                             float *next_obs, int32_t *next_index) {
    const qf_env_batch b = *batch; /* local copies: stores into the arrays cannot change them */
    const qf_env_params p = b.params[r];
    const int64_t n = (int64_t)b.R * b.E, base = (int64_t)r * b.E;
    const int64_t d = qf_env_obs_dim(kind, &p);
    const int one_hot = kind == QF_ENV_DEEP_SEA || kind == QF_ENV_CHAIN || kind == QF_ENV_GRIDWORLD;
    float *obs_inline = one_hot ? NULL : next_obs;
    if (kind == QF_ENV_DEEP_SEA && !p.deep_sea.stochastic) {
        /* the deterministic DeepSea (bsuite's, the main job's) as a loop of its own: the stochastic
         * one's noise (log, sqrt, cos) under a branch keeps a loop from vectorizing */
        qf_env_params det = p;
        det.deep_sea.stochastic = 0;
        /* and one loop per source of the mapping (a constant in each), so neither computes both */
        if (p.deep_sea.mapping == QF_DEEP_SEA_MAP_PHILOX) {
            det.deep_sea.mapping = QF_DEEP_SEA_MAP_PHILOX;
            step_pass(&b, kind, &det, r, e0, e1, act, t, obs_inline, next_index);
        } else { /* bsuite and ones read the same table */
            det.deep_sea.mapping = QF_DEEP_SEA_MAP_BSUITE;
            step_pass(&b, kind, &det, r, e0, e1, act, t, obs_inline, next_index);
        }
    } else {
        step_pass(&b, kind, &p, r, e0, e1, act, t, obs_inline, next_index);
    }
    if (one_hot && next_obs) {
        /* qf_env_observe of these kinds, for the whole block at once: the block's rows of next_obs
         * are contiguous, so one loop of vector stores clears them (not one memset call per env of
         * a few hundred bytes, which cost more than the step itself), then the hot cell of each env is its state index
         * (deep_sea: none once the episode has ended, index N*N = d; chain: its position). */
        clear_floats(next_obs + (base + e0) * d, (int64_t)(e1 - e0) * d);
        for (int32_t e = e0; e < e1; e++) {
            const int64_t idx = base + e;
            const qf_env_state s = qf_batch_load_k(&b, kind, idx, n);
            const int32_t hot = qf_env_state_index(kind, &p, &s);
            if (hot >= 0 && hot < d) next_obs[idx * d + hot] = 1.0f;
        }
    }
    for (int32_t e = e0; e < e1; e++) {
        const int64_t idx = base + e;
        if (e + 8 <= e1) { /* eight flags at a time: most steps end no episode */
            uint64_t w;
            memcpy(&w, b.flags + idx, sizeof w);
            if (!(w & 0x0101010101010101ull * (QF_TERMINAL | QF_TRUNCATED))) {
                e += 7;
                continue;
            }
        }
        const uint32_t fl = b.flags[idx];
        if (!(fl & (QF_TERMINAL | QF_TRUNCATED))) continue;
        qf_env_state s = qf_batch_load_k(&b, kind, idx, n);
        qf_batch_end_episode(&b, r, e, idx, &s, b.ep_return[idx], fl, t);
        qf_batch_store_k(&b, kind, idx, n, &s);
        b.ep_return[idx] = 0.0f;
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

static int cpu_env_observe(qf_backend *b, const qf_env_batch *batch, float *obs, int32_t *index) {
    (void)b;
    QF_FOR_EACH_ENV(batch, qf_batch_observe_one(batch, r, e, obs, index));
    return QF_OK;
}

static void cpu_close(qf_backend *b) { free(b); }

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
    snprintf(b->device, sizeof b->device, "%s, %d threads", model, omp_get_max_threads());
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
