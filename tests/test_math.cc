// test_math.cc — the portable float math and random bits of envs/qf_common.h, checked against
// independent truths: double-precision libm (<cmath>), Random123's published known-answer vectors,
// exact closed forms of the uniform maps, and the moments of N(0,1) with standard-error bounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "envs/qf_common.h"

namespace {

// Spacing of float32 numbers at the magnitude of `ref` (one ulp of the float nearest ref).
double float_ulp(double ref) {
    const double a = std::fabs(ref);
    if (a < std::ldexp(1.0, -126)) return std::ldexp(1.0, -149);  // subnormal spacing
    int e = 0;
    std::frexp(a, &e);                                            // a = m * 2^e, m in [0.5, 1)
    return std::ldexp(1.0, e - 24);
}

// Error bound for qf_sincosf(x) against the exact sin/cos of the float x.
//  * |x| <= pi/4 needs no reduction (k = 0): the result is Cephes' minimax polynomial (truncation
//    error < 0.5 ulp) evaluated with about six float roundings that the small higher-order terms
//    damp, so 2 ulp of the result bounds it.
//  * Otherwise r = x - k*pi/2 is formed with the three-part Cody-Waite constant. DP1 (8 bits) and DP2
//    (11 bits) times k are exact for |k| < 2^13 and the subtractions are exact (Sterbenz), so the
//    reduced argument carries only the split's residual |pi/2 - DP1 - DP2 - DP3| <= 2^-25 * DP3 and
//    the rounding of k*DP3 (<= 2^-25 * |k| * DP3): together <= |k| * 4.5e-15 absolute. The same 2 ulp
//    then apply, plus an absolute |k| * 1e-14. Near the zeros of sin and cos this absolute term is
//    what matters: there the result is tiny and a pure ulp bound would be meaningless.
double sincos_tolerance(float x, double ref) {
    const double k = std::fabs(std::nearbyint(static_cast<double>(x) / M_PI_2));
    return 2.0 * float_ulp(ref) + k * 1e-14;
}

void expect_sincos_accurate(float x) {
    float s = 0.0f, c = 0.0f;
    qf_sincosf(x, &s, &c);
    const double S = std::sin(static_cast<double>(x)), C = std::cos(static_cast<double>(x));
    ASSERT_LE(std::fabs(s - S), sincos_tolerance(x, S)) << "sin at x=" << x;
    ASSERT_LE(std::fabs(c - C), sincos_tolerance(x, C)) << "cos at x=" << x;
}

// Cephes' logf polynomial is accurate to ~1 ulp; its float evaluation adds at most ~1 ulp more
// (the exponent part is added in two pieces, 0.693359375*e exact, so no cancellation).
void expect_log_accurate(float x) {
    const double L = std::log(static_cast<double>(x));
    ASSERT_LE(std::fabs(qf_logf(x) - L), 2.0 * float_ulp(L)) << "log at x=" << x;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// sin / cos

TEST(Math, SinCosDenseGridOnMinus10To10) {
    const int n = 200000;
    for (int i = 0; i <= n; i++) expect_sincos_accurate(static_cast<float>(-10.0 + 20.0 * i / n));
}

TEST(Math, SinCosEveryFloatNearMultiplesOfHalfPi) {
    // The hard cases for argument reduction: results close to zero. 512 consecutive floats around
    // each k*pi/2 inside [-10, 10].
    for (int k = -6; k <= 6; k++) {
        float x = static_cast<float>(k * M_PI_2);
        for (int j = 0; j < 256; j++) x = std::nextafter(x, -100.0f);
        for (int j = 0; j < 512; j++, x = std::nextafter(x, 100.0f)) expect_sincos_accurate(x);
    }
}

TEST(Math, SinCosReductionStaysExactWhileKBelow2Pow13) {
    // Beyond the environments' range but inside the range where k*DP2 is exact (|x| < 8192*pi/2).
    const int n = 100000;
    for (int i = 0; i <= n; i++) expect_sincos_accurate(static_cast<float>(-12800.0 + 25600.0 * i / n));
}

TEST(Math, SinCosSpecialValues) {
    float s = 1.0f, c = 0.0f;
    qf_sincosf(0.0f, &s, &c);
    EXPECT_EQ(s, 0.0f);
    EXPECT_EQ(c, 1.0f);
    EXPECT_EQ(qf_cosf(0.0f), 1.0f);
    qf_sincosf(NAN, &s, &c);  // documented: NaN in, NaN out
    EXPECT_TRUE(std::isnan(s));
    EXPECT_TRUE(std::isnan(c));
    // qf_cosf is the cosine half of qf_sincosf.
    for (float x = -3.7f; x < 2.0f; x += 0.013f) {
        qf_sincosf(x, &s, &c);
        EXPECT_EQ(qf_cosf(x), c) << x;
    }
}

// ---------------------------------------------------------------------------------------------
// log

TEST(Math, LogOnUnitIntervalDownTo2PowMinus24) {
    // Log-spaced grid over (2^-24, 1]: the range qf_normal feeds it (qf_u01_open0 >= 2^-24).
    const int n = 100000;
    for (int i = 0; i < n; i++) expect_log_accurate(static_cast<float>(std::exp2(-24.0 * i / n)));
    expect_log_accurate(std::ldexp(1.0f, -24) * 1.0000001f);
    for (int j = -23; j <= 0; j++) expect_log_accurate(std::ldexp(1.0f, j));
    EXPECT_EQ(qf_logf(1.0f), 0.0f);
}

TEST(Math, LogFromOneTo1e4) {
    const int n = 100000;
    for (int i = 0; i <= n; i++) expect_log_accurate(static_cast<float>(std::pow(1e4, 1.0 * i / n)));
    for (int j = 1; j <= 13; j++) expect_log_accurate(std::ldexp(1.0f, j));
}

TEST(Math, LogEveryFloatNearOne) {
    // Cancellation-prone neighbourhood of 1 (log x ~ x - 1), including the sqrt(2) fold boundary
    // just below 1: every float in [1 - 2^-10, 1 + 2^-10].
    for (float x = 1.0f - 1.0f / 1024; x <= 1.0f + 1.0f / 1024; x = std::nextafter(x, 2.0f))
        expect_log_accurate(x);
    for (float x = 1.41421f; x <= 1.41422f; x = std::nextafter(x, 2.0f)) expect_log_accurate(x);
}

// ---------------------------------------------------------------------------------------------
// uniform maps

TEST(Math, U01IsExactMultipleOf2PowMinus24InHalfOpenInterval) {
    const double step = std::ldexp(1.0, -24);
    for (uint32_t q = 0; q < (1u << 24); q++) {
        // Only the top 24 bits matter; the low 8 bits must be ignored.
        const uint32_t lo = q << 8, hi = (q << 8) | 0xffu;
        const float a = qf_u01(lo), b = qf_u01_open0(lo);
        if (a != static_cast<float>(q * step) || qf_u01(hi) != a) FAIL() << "qf_u01 at q=" << q;
        if (b != static_cast<float>((q + 1) * step) || qf_u01_open0(hi) != b)
            FAIL() << "qf_u01_open0 at q=" << q;
    }
    EXPECT_EQ(qf_u01(0u), 0.0f);
    EXPECT_LT(qf_u01(0xffffffffu), 1.0f);
    EXPECT_EQ(qf_u01(0xffffffffu), static_cast<float>(1.0 - step));
    EXPECT_EQ(qf_u01_open0(0u), static_cast<float>(step));
    EXPECT_GT(qf_u01_open0(0u), 0.0f);
    EXPECT_EQ(qf_u01_open0(0xffffffffu), 1.0f);
}

// ---------------------------------------------------------------------------------------------
// Philox4x32-10 and the counter layout of qf_rng

namespace {
void expect_words(const philox4x32_ctr_t &r, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    EXPECT_EQ(r.v[0], a);
    EXPECT_EQ(r.v[1], b);
    EXPECT_EQ(r.v[2], c);
    EXPECT_EQ(r.v[3], d);
}
bool same_words(const philox4x32_ctr_t &x, const philox4x32_ctr_t &y) {
    return x.v[0] == y.v[0] && x.v[1] == y.v[1] && x.v[2] == y.v[2] && x.v[3] == y.v[3];
}
}  // namespace

TEST(Math, PhiloxKnownAnswerVectorsThroughQfRng) {
    // Random123 tests/kat_vectors, "philox4x32 10" lines: ctr[4] key[2] -> result[4].
    // qf_rng_make(k0, k1, stream, env, step) must lay out ctr = (stream, env, step, draw=0).
    qf_rng g = qf_rng_make(0u, 0u, 0u, 0u, 0u);
    expect_words(qf_rng_next(&g), 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u);
    EXPECT_EQ(g.ctr.v[3], 1u);  // the draw counter advanced

    g = qf_rng_make(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
    g.ctr.v[3] = 0xffffffffu;
    expect_words(qf_rng_next(&g), 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu);

    g = qf_rng_make(0xa4093822u, 0x299f31d0u, 0x243f6a88u, 0x85a308d3u, 0x13198a2eu);
    g.ctr.v[3] = 0x03707344u;
    expect_words(qf_rng_next(&g), 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u);
}

TEST(Math, PhiloxSameCoordinatesSameBitsOtherCoordinatesOtherBits) {
    const uint32_t base[5] = {20240601u, 7u, QF_STREAM_STEP, 123u, 45u};
    qf_rng a = qf_rng_make(base[0], base[1], base[2], base[3], base[4]);
    qf_rng b = qf_rng_make(base[0], base[1], base[2], base[3], base[4]);
    std::vector<philox4x32_ctr_t> draws;
    for (int d = 0; d < 8; d++) {
        const philox4x32_ctr_t x = qf_rng_next(&a), y = qf_rng_next(&b);
        EXPECT_TRUE(same_words(x, y)) << "draw " << d;
        for (const auto &earlier : draws) EXPECT_FALSE(same_words(x, earlier)) << "draw " << d;
        draws.push_back(x);
    }
    // Changing any one coordinate (key word, stream, env, step) changes every output word.
    const qf_rng ref = qf_rng_make(base[0], base[1], base[2], base[3], base[4]);
    const philox4x32_ctr_t r0 = philox4x32(ref.ctr, ref.key);
    for (int which = 0; which < 5; which++) {
        uint32_t c[5] = {base[0], base[1], base[2], base[3], base[4]};
        c[which] += 1u;
        qf_rng g = qf_rng_make(c[0], c[1], c[2], c[3], c[4]);
        const philox4x32_ctr_t r = qf_rng_next(&g);
        for (int w = 0; w < 4; w++) EXPECT_NE(r.v[w], r0.v[w]) << "coordinate " << which << " word " << w;
    }
}

TEST(Math, PhiloxBitsAreBalanced) {
    // 4 * 50000 words = 6.4e6 bits; fraction of ones is 0.5 with SE 0.5/sqrt(6.4e6) = 2e-4.
    const int n = 50000;
    uint64_t ones = 0;
    for (int i = 0; i < n; i++) {
        qf_rng g = qf_rng_make(99u, 1u, QF_STREAM_ACTION, static_cast<uint32_t>(i), 0u);
        const philox4x32_ctr_t r = qf_rng_next(&g);
        for (int w = 0; w < 4; w++) ones += static_cast<uint64_t>(__builtin_popcount(r.v[w]));
    }
    const double bits = 128.0 * n, frac = static_cast<double>(ones) / bits;
    EXPECT_NEAR(frac, 0.5, 5.0 * 0.5 / std::sqrt(bits));
}

// ---------------------------------------------------------------------------------------------
// standard normal (Box-Muller)

TEST(Math, NormalMomentsOver2e5PhiloxDraws) {
    const int n = 200000;
    double s1 = 0, s2 = 0, s4 = 0, maxabs = 0;
    long tail = 0, positive = 0;
    for (int i = 0; i < n; i++) {
        qf_rng g = qf_rng_make(12345u, 0u, QF_STREAM_STEP, static_cast<uint32_t>(i), 3u);
        const philox4x32_ctr_t r = qf_rng_next(&g);
        const double z = qf_normal(r.v[0], r.v[1]);
        ASSERT_TRUE(std::isfinite(z)) << i;
        s1 += z;
        s2 += z * z;
        s4 += z * z * z * z;
        maxabs = std::max(maxabs, std::fabs(z));
        tail += std::fabs(z) > 1.959963984540054;
        positive += z > 0;
    }
    const double mean = s1 / n, var = s2 / n - mean * mean, m4 = s4 / n;
    // For N(0,1): SE(mean) = 1/sqrt(n); Var(z^2) = 2 -> SE(var) = sqrt(2/n);
    // Var(z^4) = E z^8 - 9 = 105 - 9 = 96 -> SE(m4) = sqrt(96/n).
    EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(n));
    EXPECT_NEAR(var, 1.0, 5.0 * std::sqrt(2.0 / n));
    EXPECT_NEAR(m4, 3.0, 5.0 * std::sqrt(96.0 / n));
    // P(|z| > 1.96) = 0.05 and P(z > 0) = 0.5, binomial SEs.
    EXPECT_NEAR(static_cast<double>(tail) / n, 0.05, 5.0 * std::sqrt(0.05 * 0.95 / n));
    EXPECT_NEAR(static_cast<double>(positive) / n, 0.5, 5.0 * std::sqrt(0.25 / n));
    // The radius sqrt(-2 log u) with u >= 2^-24 is at most sqrt(48 ln 2) = 5.7683; float rounding
    // of log, sqrt and cos can add a few ulp only.
    EXPECT_LE(maxabs, std::sqrt(48.0 * std::log(2.0)) * (1.0 + 1e-6));
    EXPECT_GT(maxabs, 3.5);  // with 2e5 draws some |z| > 3.5 (P(none) = (1-4.65e-4)^2e5 ~ 1e-40)
}

TEST(Math, NormalExtremeWordsGiveClosedFormValues) {
    // u1 word 0xffffffff -> u = 1 -> radius 0 -> z = 0 exactly (log(1) = 0).
    EXPECT_EQ(qf_normal(0xffffffffu, 0x12345678u), 0.0f);
    // u1 word 0 -> u = 2^-24 -> radius sqrt(48 ln 2); u2 word 0 -> angle 0 -> cos = 1.
    EXPECT_NEAR(qf_normal(0u, 0u), std::sqrt(48.0 * std::log(2.0)), 4e-6);
    // angle pi (u2 = 1/2): cos = -1.
    EXPECT_NEAR(qf_normal(0u, 0x80000000u), -std::sqrt(48.0 * std::log(2.0)), 4e-6);
}
