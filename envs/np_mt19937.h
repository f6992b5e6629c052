/* np_mt19937.h — numpy's legacy random stream (numpy.random.RandomState), enough of it to redraw
 * bsuite's DeepSea action mapping bit for bit: MT19937 seeded as RandomState(int) seeds it, numpy's
 * 53-bit double from two 32-bit outputs, and the inversion branch of its legacy binomial draw.
 *
 * Sources (read, not copied): numpy/random/src/mt19937/mt19937.c (mt19937_seed: Knuth's
 * initialization of the reference implementation, init_genrand; mt19937_gen; tempering),
 * mt19937.h (mt19937_next_double: (a >> 5) * 2^26 + (b >> 6), over 2^53), _mt19937.pyx
 * (_legacy_seeding: an integer seed goes to mt19937_seed; only an array seed goes through
 * init_by_array, which bsuite never passes), legacy/legacy-distributions.c
 * (legacy_random_binomial: inversion when min(p, 1-p) * n <= 30) and
 * distributions/distributions.c (random_binomial_inversion). Matsumoto & Nishimura (1998) define
 * MT19937 itself; the C++ standard library's std::mt19937 is the same generator and the tests
 * check this one against it.
 *
 * Host-only C99 (libm's exp, log, sqrt, as numpy calls them); 2.5 KB of state, so it is not meant
 * for device code: DeepSea draws its table on the host (spec.c) and carries the bits in its params. */
#ifndef QF_NP_MT19937_H
#define QF_NP_MT19937_H
#include <math.h>
#include <stdint.h>

#define QF_MT_N 624
#define QF_MT_M 397

typedef struct qf_np_mt19937 {
    uint32_t key[QF_MT_N];
    int pos;
} qf_np_mt19937;

/* numpy.random.RandomState(seed) for an integer seed in [0, 2^32): init_genrand. */
static inline void qf_np_mt19937_seed(qf_np_mt19937 *m, uint32_t seed) {
    for (int i = 0; i < QF_MT_N; i++) {
        m->key[i] = seed;
        seed = 1812433253u * (seed ^ (seed >> 30)) + (uint32_t)i + 1u;
    }
    m->pos = QF_MT_N;
}

/* The next tempered 32-bit output (a new block of 624 after every 624 outputs). */
static inline uint32_t qf_np_mt19937_next32(qf_np_mt19937 *m) {
    if (m->pos == QF_MT_N) {
        for (int i = 0; i < QF_MT_N; i++) {
            const uint32_t y = (m->key[i] & 0x80000000u) | (m->key[(i + 1) % QF_MT_N] & 0x7fffffffu);
            m->key[i] = m->key[(i + QF_MT_M) % QF_MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        m->pos = 0;
    }
    uint32_t y = m->key[m->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* numpy's double in [0, 1) from two outputs: 27 high bits of the first, 26 of the second. */
static inline double qf_np_mt19937_next_double(qf_np_mt19937 *m) {
    const uint32_t a = qf_np_mt19937_next32(m) >> 5, b = qf_np_mt19937_next32(m) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

/* RandomState.binomial(n, p) for the cases numpy draws by inversion (min(p, 1 - p) * n <= 30),
 * with numpy's operations in numpy's order; -1 for the cases it draws by BTPE (not reproduced)
 * and for p outside [0, 1] or n < 0. n = 1, p = 0.5 (bsuite's mapping) uses one double per draw:
 * the result is 1 exactly when that double exceeds exp(log(0.5)) = 0.5. */
static inline int64_t qf_np_legacy_binomial(qf_np_mt19937 *m, int64_t n, double p) {
    if (n < 0 || !(p >= 0.0 && p <= 1.0)) return -1;
    const int flip = p > 0.5;
    const double pp = flip ? 1.0 - p : p;
    if (pp * (double)n > 30.0) return -1;
    /* random_binomial_inversion(n, pp) */
    const double q = 1.0 - pp, qn = exp((double)n * log(q)), np = (double)n * pp;
    const double bound_d = np + 10.0 * sqrt(np * q + 1);
    const int64_t bound = (int64_t)((double)n < bound_d ? (double)n : bound_d);
    int64_t x = 0;
    double px = qn, u = qf_np_mt19937_next_double(m);
    while (u > px) {
        x++;
        if (x > bound) {
            x = 0;
            px = qn;
            u = qf_np_mt19937_next_double(m);
        } else {
            u -= px;
            px = ((double)(n - x + 1) * pp * px) / ((double)x * q);
        }
    }
    return flip ? n - x : x;
}

#endif /* QF_NP_MT19937_H */
