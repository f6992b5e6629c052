// test_explore.cc — the exploration operations of the CPU backend (kernels/explore.h,
// kernels/cpu/explore_cpu.c and the exploration parts of kernels/cpu/learn_cpu.c) against
// independent truths: binomial standard errors of mask bits and head draws, argmax / UCB / logsumexp
// computed in double, std::map visit counts, SimHash sign bits of a double projection, two-pass
// double statistics, central differences of the RND loss, a hand-run RND training loop, and a
// fleet-level equivalence (a one-head bootstrap is greedy DQN).
// Every suite name starts with "Explore" (ctest -R Explore selects them all).
// The CPU backend's memory is host memory, so plain std::vector arrays are passed as device arrays.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "host/fleet.h"
#include "kernels/backend.h"
#include "test_util.h"

namespace {

// Binomial standard error of a frequency with probability p over n trials.
double se(double p, double n) { return std::sqrt(p * (1.0 - p) / n); }

// alpha * log sum_a exp(q_a / alpha), in double, stable.
double logsumexp_d(const float *q, int n, double alpha) {
    double m = q[0];
    for (int a = 1; a < n; a++) m = std::max(m, (double)q[a]);
    double s = 0.0;
    for (int a = 0; a < n; a++) s += std::exp(((double)q[a] - m) / alpha);
    return m + alpha * std::log(s);
}

template <class T>
bool same_bits(const T *a, const T *b, size_t n) {
    return std::memcmp(a, b, n * sizeof(T)) == 0;
}

// ================================================================================================
// 1. qf_draw_mask
// ================================================================================================

TEST(ExploreMask, BitFrequenciesMatchMaskPAndBitsArePairwiseIndependent) {
    const int n_e = 160, n_t = 125;  // 20000 masks per case
    const double N = (double)n_e * n_t;
    for (float p : {0.1f, 0.5f, 0.9f}) {
        for (int heads : {2, 5, 10, 32, 40, 64}) {
            std::vector<int64_t> per_bit(64, 0);
            int64_t both01 = 0, both_hi = 0, above = 0;
            for (int e = 0; e < n_e; e++)
                for (int t = 0; t < n_t; t++) {
                    const qf_mask m = qf_draw_mask(77u, 3u, e, (uint32_t)t * 13u, heads, p);
                    for (int k = 0; k < 64; k++) per_bit[k] += (m >> k) & 1u;
                    both01 += (m & 3u) == 3u;
                    both_hi += ((m >> 31) & 3u) == 3u; // bits 31 and 32: two different Philox draws
                    if (heads < 64) above += (m >> heads) != 0;
                }
            int64_t total = 0;
            for (int k = 0; k < heads; k++) {
                total += per_bit[k];
                // every bit on its own is Bernoulli(p)
                EXPECT_NEAR(per_bit[k] / N, p, 5 * se(p, N)) << "p=" << p << " heads=" << heads << " bit " << k;
            }
            EXPECT_NEAR(total / (N * heads), p, 5 * se(p, N * heads)) << "p=" << p << " heads=" << heads;
            EXPECT_EQ(above, 0) << "bits >= n_heads set (p=" << p << " heads=" << heads << ")";
            // independence of bits 0 and 1 (both drawn from the same Philox block)
            const double p2 = (double)p * p;
            EXPECT_NEAR(both01 / N, p2, 5 * se(p2, N)) << "p=" << p << " heads=" << heads;
            if (heads > 32) {
                EXPECT_NEAR(both_hi / N, p2, 5 * se(p2, N)) << "p=" << p << " heads=" << heads;
            }
        }
    }
}

// The masks of the 32-bit era (heads <= 32), restated: word j of the i-th Philox4x32-10 draw of
// counter (MASK, e, t, i) under key (k0, k1) decides head 4i + j, set when its top 24 bits / 2^24 <
// mask_p. Runs with at most 32 heads must draw exactly these masks after the widening to 64 bits.
static uint32_t mask32_reference(uint32_t k0, uint32_t k1, int e, uint32_t t, int heads, float p) {
    if (heads <= 1 || p >= 1.0f) return heads >= 32 ? 0xffffffffu : (1u << heads) - 1u;
    uint32_t m = 0;
    for (int i = 0; 4 * i < heads; i++) {
        philox4x32_ctr_t c = {{QF_STREAM_MASK, (uint32_t)e, t, (uint32_t)i}};
        const philox4x32_key_t key = {{k0, k1}};
        const philox4x32_ctr_t w = philox4x32(c, key);
        for (int j = 0; j < 4 && 4 * i + j < heads; j++)
            if ((double)(w.v[j] >> 8) / 16777216.0 < (double)p) m |= 1u << (4 * i + j);
    }
    return m;
}

TEST(ExploreMask, HeadsUpTo32DrawTheSameBitsAsThe32BitMasksAndWiderEnsemblesExtendThem) {
    int differ = 0;
    for (int heads = 1; heads <= 32; heads++)
        for (float p : {0.0f, 0.25f, 0.5f, 0.9f, 1.0f})
            for (int e = 0; e < 40; e++) {
                const uint32_t t = (uint32_t)e * 977u + (uint32_t)heads;
                differ += qf_draw_mask(9u, 4u, e, t, heads, p) != (qf_mask)mask32_reference(9u, 4u, e, t, heads, p);
            }
    EXPECT_EQ(differ, 0);
    // more heads add bits above the old ones: heads k < K draw the same bit at every K
    for (int e = 0; e < 200; e++) {
        const qf_mask m64 = qf_draw_mask(1u, 2u, e, 5u, 64, 0.5f);
        for (int heads : {2, 31, 32, 33, 40, 63}) {
            const qf_mask low = ((qf_mask)1 << heads) - 1u;
            EXPECT_EQ(qf_draw_mask(1u, 2u, e, 5u, heads, 0.5f), m64 & low) << "heads=" << heads << " e=" << e;
        }
    }
}

TEST(ExploreMask, FullMaskWhenMaskPIsOneOrOneHeadAndDeterministic) {
    for (int heads = 1; heads <= QF_MAX_HEADS; heads++) {
        qf_mask full = 0;
        for (int k = 0; k < heads; k++) full |= (qf_mask)1 << k;
        for (int e = 0; e < 50; e++) {
            EXPECT_EQ(qf_draw_mask(5u, 6u, e, (uint32_t)e * 7u, heads, 1.0f), full) << "heads=" << heads;
            EXPECT_EQ(qf_draw_mask(5u, 6u, e, 3u, heads, 1.5f), full) << "heads=" << heads;
        }
    }
    for (float p : {0.0f, 0.3f, 0.99f})
        for (int e = 0; e < 50; e++) EXPECT_EQ(qf_draw_mask(5u, 6u, e, 9u, 1, p), 1u) << "one head, p=" << p;
    // mask_p = 0 with several heads: no head trains on the transition
    for (int e = 0; e < 50; e++) EXPECT_EQ(qf_draw_mask(5u, 6u, e, 9u, 8, 0.0f), 0u);
    for (int e = 0; e < 50; e++) EXPECT_EQ(qf_draw_mask(5u, 6u, e, 9u, 64, 0.0f), 0u);
    // the mask is a function of (key, e, t): recomputable, and it changes with each coordinate
    int same_e = 0, same_t = 0, same_k = 0;
    for (int e = 0; e < 200; e++) {
        const qf_mask m = qf_draw_mask(1u, 2u, e, 10u, 16, 0.5f);
        EXPECT_EQ(m, qf_draw_mask(1u, 2u, e, 10u, 16, 0.5f));
        same_e += m == qf_draw_mask(1u, 2u, e + 1, 10u, 16, 0.5f);
        same_t += m == qf_draw_mask(1u, 2u, e, 11u, 16, 0.5f);
        same_k += m == qf_draw_mask(1u, 3u, e, 10u, 16, 0.5f);
    }
    // two independent 16-bit masks agree with probability 2^-16
    EXPECT_LE(same_e, 2);
    EXPECT_LE(same_t, 2);
    EXPECT_LE(same_k, 2);
}

// ================================================================================================
// 2. act with bootstrap runs
// ================================================================================================

TEST(ExploreAct, BootstrapHeadsUniformKeptPerEpisodeRedrawnAtEpisodeEnds) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 4, K = 5, A = 5, E = 20000;
    const qf_net n = make_net(R, K, 1, {3, A});
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].explore = QF_EXPLORE_BOOTSTRAP;  // 4 of the fleet's 5 heads
    hp[0].n_heads = 4;
    hp[1].explore = QF_EXPLORE_BOOTSTRAP;  // all 5
    hp[1].n_heads = 5;
    hp[2].explore = QF_EXPLORE_EPSILON;    // constant epsilon 0.3 on head 0
    hp[2].eps_start = hp[2].eps_end = 0.3f;
    hp[3].explore = QF_EXPLORE_BOLTZMANN;  // softmax of head 0 at alpha 0.5
    hp[3].alpha = 0.5f;
    // Q [G][E][A]. Bootstrap runs: head k of env e prefers action (k + e) % A (margin >= 0.5 over
    // small per-entry noise), so the action names the head. Runs 2, 3: head 0 is a fixed row,
    // heads k > 0 strongly prefer action 0 and must be ignored.
    std::vector<float> q((size_t)R * K * E * A);
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> U(0.0f, 0.5f);
    const float boltz_row[A] = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f};
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++)
            for (int e = 0; e < E; e++)
                for (int a = 0; a < A; a++) {
                    float &v = q[(((size_t)r * K + k) * E + e) * A + a];
                    if (r < 2) v = U(rng) + (a == (k + e) % A ? 1.0f : 0.0f);
                    else if (k > 0) v = a == 0 ? 10.0f : 0.0f;
                    else if (r == 2) v = a == 2 ? 1.0f : 0.0f;
                    else v = boltz_row[a];
                }
    const std::vector<uint32_t> keys = {21, 0, 21, 1, 21, 2, 21, 3};
    std::vector<int32_t> heads((size_t)R * E, -1), act((size_t)R * E, -1);
    // flags at t = 0 are arbitrary: every env draws a head anyway
    std::vector<uint8_t> flags((size_t)R * E);
    for (size_t i = 0; i < flags.size(); i++) flags[i] = (uint8_t)(i % 3 == 0 ? QF_TREASURE : 0);
    ASSERT_EQ(b->act(b, &n, hp.data(), E, q.data(), keys.data(), 0, flags.data(), heads.data(), act.data()), QF_OK);
    for (int r = 0; r < 2; r++) {
        const int nh = hp[r].n_heads;
        std::vector<int64_t> freq(K, 0);
        int bad_head = 0, bad_draw = 0, bad_act = 0;
        for (int e = 0; e < E; e++) {
            const int32_t h = heads[(size_t)r * E + e];
            if (h < 0 || h >= nh) {
                bad_head++;
                continue;
            }
            freq[h]++;
            bad_draw += h != qf_draw_head(keys[2 * r], keys[2 * r + 1], e, 0, nh);
            bad_act += act[(size_t)r * E + e] != (h + e) % A;
        }
        EXPECT_EQ(bad_head, 0) << "run " << r << ": heads outside [0, n_heads)";
        EXPECT_EQ(bad_draw, 0) << "run " << r << ": heads differ from qf_draw_head(key, e, 0)";
        EXPECT_EQ(bad_act, 0) << "run " << r << ": actions are not the argmax of the env's head";
        for (int k = 0; k < nh; k++)
            EXPECT_NEAR(freq[k] / (double)E, 1.0 / nh, 5 * se(1.0 / nh, E)) << "run " << r << " head " << k;
    }
    // non-bootstrap runs: head 0, epsilon / Boltzmann frequencies of head 0's row
    auto check_plain = [&](const char *when) {
        for (int r = 2; r < 4; r++) {
            std::vector<int64_t> cnt(A, 0);
            for (int e = 0; e < E; e++) {
                EXPECT_EQ(heads[(size_t)r * E + e], 0) << when << " run " << r << " e=" << e;
                cnt[act[(size_t)r * E + e]]++;
            }
            double z = 0.0;
            for (int a = 0; a < A; a++) z += std::exp(boltz_row[a] / 0.5);
            for (int a = 0; a < A; a++) {
                const double p = r == 2 ? (a == 2 ? 0.7 + 0.3 / A : 0.3 / A) : std::exp(boltz_row[a] / 0.5) / z;
                EXPECT_NEAR(cnt[a] / (double)E, p, 5 * se(p, E)) << when << " run " << r << " action " << a;
            }
        }
    };
    check_plain("t=0");

    // later steps: random episode ends; only TERMINAL / TRUNCATED redraw
    std::uniform_real_distribution<double> U01(0.0, 1.0);
    int64_t redrawn[2] = {0, 0}, changed[2] = {0, 0};
    for (uint32_t t = 1; t <= 6; t++) {
        for (auto &f : flags) {
            const double u = U01(rng);
            f = (uint8_t)(u < 0.55 ? 0
                          : u < 0.65 ? QF_TERMINAL
                          : u < 0.75 ? QF_TRUNCATED
                          : u < 0.85 ? (QF_TERMINAL | QF_TREASURE | QF_BAD_EPISODE)
                          : u < 0.93 ? QF_TREASURE
                                     : QF_BAD_EPISODE);
        }
        const std::vector<int32_t> before = heads;
        ASSERT_EQ(b->act(b, &n, hp.data(), E, q.data(), keys.data(), t * 101u, flags.data(), heads.data(), act.data()),
                  QF_OK);
        for (int r = 0; r < 2; r++) {
            int bad_keep = 0, bad_draw = 0, bad_act = 0;
            for (int e = 0; e < E; e++) {
                const size_t i = (size_t)r * E + e;
                if (flags[i] & (QF_TERMINAL | QF_TRUNCATED)) {
                    redrawn[r]++;
                    changed[r] += heads[i] != before[i];
                    bad_draw += heads[i] != qf_draw_head(keys[2 * r], keys[2 * r + 1], e, t * 101u, hp[r].n_heads);
                } else {
                    bad_keep += heads[i] != before[i];
                }
                bad_act += act[i] != (heads[i] + e) % A;
            }
            EXPECT_EQ(bad_keep, 0) << "t=" << t << " run " << r << ": heads changed without an episode end";
            EXPECT_EQ(bad_draw, 0) << "t=" << t << " run " << r << ": redrawn heads differ from qf_draw_head(key, e, t)";
            EXPECT_EQ(bad_act, 0) << "t=" << t << " run " << r << ": actions are not the argmax of the env's head";
        }
        check_plain(("t=" + std::to_string(t)).c_str());
    }
    // a redraw is a fresh uniform draw: it lands on another head with probability 1 - 1/n_heads
    for (int r = 0; r < 2; r++) {
        const double p = 1.0 - 1.0 / hp[r].n_heads;
        EXPECT_NEAR(changed[r] / (double)redrawn[r], p, 5 * se(p, (double)redrawn[r])) << "run " << r;
    }
}

TEST(ExploreAct, UcbIsArgmaxOfEnsembleMeanPlusCStd) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 3, K = 6, A = 6, E = 3000;
    const qf_net n = make_net(R, K, 1, {3, A});
    std::vector<qf_run_hp> hp(R, default_hp());
    for (auto &h : hp) {
        h.explore = QF_EXPLORE_BOOTSTRAP;
        h.act_mode = QF_ACT_UCB;
    }
    hp[0].n_heads = 4;  // heads 4, 5 of the fleet are not this run's: they hold huge values
    hp[0].ucb_c = 1.5f;
    hp[1].n_heads = 6;
    hp[1].ucb_c = 0.0f;  // the ensemble mean
    hp[2].n_heads = 3;
    hp[2].ucb_c = 20.0f;  // dominated by the std
    hp[2].alpha = 0.7f;   // UCB ignores the temperature
    std::vector<float> q((size_t)R * K * E * A);
    std::mt19937 rng(5);
    std::normal_distribution<float> N01(0.0f, 1.0f);
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++)
            for (int e = 0; e < E; e++)
                for (int a = 0; a < A; a++)
                    q[(((size_t)r * K + k) * E + e) * A + a] = k >= hp[r].n_heads ? (a == 0 ? 1e3f : -1e3f) : N01(rng);
    const std::vector<uint32_t> keys = {8, 0, 8, 1, 8, 2};
    const std::vector<uint8_t> flags((size_t)R * E, 0);
    std::vector<int32_t> heads((size_t)R * E, 0), act((size_t)R * E), act2((size_t)R * E);
    ASSERT_EQ(b->act(b, &n, hp.data(), E, q.data(), keys.data(), 0, flags.data(), heads.data(), act.data()), QF_OK);
    ASSERT_EQ(b->act(b, &n, hp.data(), E, q.data(), keys.data(), 7, flags.data(), heads.data(), act2.data()), QF_OK);
    EXPECT_EQ(act, act2) << "UCB acting is deterministic: it depends on neither t nor the head";
    for (int r = 0; r < R; r++) {
        const int nh = hp[r].n_heads;
        int checked = 0, bad = 0;
        for (int e = 0; e < E; e++) {
            std::vector<double> v(A);
            for (int a = 0; a < A; a++) {
                double s = 0.0, ss = 0.0;
                for (int k = 0; k < nh; k++) s += q[(((size_t)r * K + k) * E + e) * A + a];
                const double mean = s / nh;
                for (int k = 0; k < nh; k++) {
                    const double d = q[(((size_t)r * K + k) * E + e) * A + a] - mean;
                    ss += d * d;
                }
                v[a] = mean + (double)hp[r].ucb_c * std::sqrt(ss / nh);  // population std
            }
            std::vector<double> sorted = v;
            std::sort(sorted.rbegin(), sorted.rend());
            // float32 rounding of mean and std: ~1e-6 of |v| (~|c| * 3); skip near-ties
            if (sorted[0] - sorted[1] < 1e-4 * (1.0 + hp[r].ucb_c)) continue;
            checked++;
            bad += act[(size_t)r * E + e] != (int32_t)(std::max_element(v.begin(), v.end()) - v.begin());
        }
        EXPECT_GT(checked, E * 9 / 10) << "run " << r;
        EXPECT_EQ(bad, 0) << "run " << r << ": UCB actions differ from argmax mean + c std (of " << checked << ")";
    }
}

// ================================================================================================
// 3. add_prior
// ================================================================================================

TEST(ExplorePrior, AddPriorIsQPlusScaleTimesPriorBitwise) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 3, K = 2, M = 7, A = 4;
    const qf_net n = make_net(R, K, 1, {5, A});
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].prior_scale = 3.0f;
    hp[1].prior_scale = 0.0f;
    hp[2].prior_scale = 0.3f;  // not a power of two: the product rounds
    const size_t per = (size_t)M * A, total = (size_t)R * K * per;
    std::vector<float> q(total), qp(total);
    std::mt19937 rng(2);
    std::normal_distribution<float> N01(0.0f, 1.0f);
    for (size_t i = 0; i < total; i++) {
        q[i] = N01(rng);
        qp[i] = N01(rng);
    }
    // run 1 (scale 0) must not even read its prior: NaN and inf there would poison q
    for (size_t i = 1 * K * per; i < 2 * K * per; i++) qp[i] = i % 2 ? NAN : INFINITY;
    const std::vector<float> q0 = q;
    ASSERT_EQ(b->add_prior(b, &n, hp.data(), M, q.data(), qp.data()), QF_OK);
    for (int r = 0; r < R; r++)
        for (size_t i = (size_t)r * K * per; i < (size_t)(r + 1) * K * per; i++) {
            if (hp[r].prior_scale == 0.0f) {
                EXPECT_TRUE(same_bits(&q[i], &q0[i], 1)) << "run " << r << " i=" << i;
                continue;
            }
            volatile float prod = hp[r].prior_scale * qp[i];  // rounded on its own: no fused multiply-add
            const float want = q0[i] + prod;
            EXPECT_TRUE(same_bits(&q[i], &want, 1)) << "run " << r << " i=" << i << ": " << q[i] << " vs " << want;
        }
}

// ================================================================================================
// 4. td with bootstrap masks and intrinsic rewards
// ================================================================================================


TEST(ExploreTd, MasksZeroHeadsAndTargetsUseRewardPlusBetaIntrinsic) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    constexpr int R = 3, K = 3, B = 16, A = 3;
    TdCase c(R, K, B, A);
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].alpha = 0.0f;  // hard max, squared loss, beta 0.5
    hp[0].gamma = 0.9f;
    hp[0].loss = QF_LOSS_SQUARED;
    hp[0].beta = 0.5f;
    hp[1].alpha = 0.3f;  // soft, squared loss, beta 2
    hp[1].gamma = 0.8f;
    hp[1].loss = QF_LOSS_SQUARED;
    hp[1].beta = 2.0f;
    hp[2].alpha = 0.0f;  // hard max, Huber 1, beta 0: the intrinsic reward is ignored
    hp[2].gamma = 0.95f;
    hp[2].beta = 0.0f;
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> U(-3.0f, 3.0f), U01(0.0f, 1.0f);
    for (int r = 0; r < R; r++)
        for (int j = 0; j < B; j++) {
            const size_t t = (size_t)r * B + j;
            c.action[t] = (j * 7 + r) % A;
            c.reward[t] = U(rng) / 3.0f;
            c.intr[t] = U01(rng);
            c.terminal[t] = j % 5 == 4;
            for (int k = 0; k < K; k++)
                for (int a = 0; a < A; a++) {
                    const size_t row = (((size_t)r * K + k) * B + j) * A;
                    c.q[row + a] = U(rng);
                    c.qt[row + a] = U(rng);
                }
        }
    // Hand-computed transitions (j = 0, every head; masks all set in the first pass):
    //  run 0: Qt(s') = (1, 3, 2), r = 0.5, intr = 0.4, beta = 0.5, a = 0, Q(s, a) = 1
    //         -> y = 0.5 + 0.2 + 0.9 * 3 = 3.4, dq = (1 - 3.4) / B = -2.4 / B
    //  run 1: Qt(s') = (0, 0, 0), alpha 0.3 -> V = 0.3 ln 3; r = 1, intr = 0.25, beta = 2, Q = 0
    //         -> y = 1.5 + 0.8 * 0.3 ln 3, dq = -y / B
    for (int k = 0; k < K; k++)
        for (int a = 0; a < A; a++) {
            c.qt[((size_t)(0 * K + k) * B) * A + a] = (float)(a == 0 ? 1 : a == 1 ? 3 : 2);
            c.qt[((size_t)(1 * K + k) * B) * A + a] = 0.0f;
            c.q[((size_t)(0 * K + k) * B) * A + a] = a == 0 ? 1.0f : 40.0f;
            c.q[((size_t)(1 * K + k) * B) * A + a] = a == 0 ? 0.0f : -40.0f;
        }
    c.action[0] = 0, c.reward[0] = 0.5f, c.intr[0] = 0.4f, c.terminal[0] = 0;
    c.action[B] = 0, c.reward[B] = 1.0f, c.intr[B] = 0.25f, c.terminal[B] = 0;

    // pass 1: every head learns from everything
    ASSERT_EQ(c.run(b, hp), QF_OK);
    const std::vector<float> dq_full = c.dq, qmean_full = c.qmean;
    for (int k = 0; k < K; k++) {
        EXPECT_NEAR(c.dq[((size_t)(0 * K + k) * B) * A], -2.4 / B, 1e-6) << "head " << k;
        EXPECT_NEAR(c.dq[((size_t)(1 * K + k) * B) * A], -(1.5 + 0.8 * 0.3 * std::log(3.0)) / B, 1e-6) << "head " << k;
    }
    for (int r = 0; r < R; r++) {
        double isum = 0.0;
        for (int j = 0; j < B; j++) isum += (double)hp[r].beta * c.intr[(size_t)r * B + j];
        EXPECT_NEAR(c.imean[r], isum / B, 1e-6 * std::max(1.0, isum / B)) << "run " << r;
        if (hp[r].beta == 0.0f) { EXPECT_EQ(c.imean[r], 0.0f); }
        for (int k = 0; k < K; k++) {
            const int g = r * K + k;
            double qs = 0.0;
            for (int j = 0; j < B; j++) {
                const size_t t = (size_t)r * B + j, row = ((size_t)g * B + j) * A;
                const int a = c.action[t];
                const double v = hp[r].alpha > 0.0f ? logsumexp_d(&c.qt[row], A, hp[r].alpha)
                                                    : (double)*std::max_element(&c.qt[row], &c.qt[row] + A);
                const double rt = (double)c.reward[t] + (double)hp[r].beta * c.intr[t];
                const double y = c.terminal[t] ? rt : rt + (double)hp[r].gamma * v;
                const double d = c.q[row + a] - y;
                const double want = hp[r].loss == QF_LOSS_SQUARED ? d / B : std::max(-1.0, std::min(1.0, d)) / B;
                // float32 roundings of y (terms <= ~5 in size) dominate: ~4 ulp of 10, over B
                const double tol = 4e-6 * (1.0 + std::fabs(y) + std::fabs(c.q[row + a])) / B;
                for (int i = 0; i < A; i++) {
                    if (i == a) { EXPECT_NEAR(c.dq[row + i], want, tol) << "g=" << g << " j=" << j; }
                    else { EXPECT_EQ(c.dq[row + i], 0.0f) << "g=" << g << " j=" << j; }
                }
                qs += c.q[row + a];
            }
            EXPECT_NEAR(c.qmean[g], qs / B, 1e-6 * std::max(1.0, std::fabs(qs / B))) << "g=" << g;
        }
    }

    // pass 2: random masks; head k learns from transition j only when bit k is set
    std::uniform_int_distribution<uint32_t> bits(0, 7);
    for (auto &m : c.mask) m = bits(rng) | ~(qf_mask)7;  // bits >= K are set and must not matter
    c.mask[0] = ~(qf_mask)7;                             // no head of run 0 learns from j = 0
    std::vector<float> loss_full = c.loss;
    ASSERT_EQ(c.run(b, hp), QF_OK);
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++) {
            const int g = r * K + k;
            int set = 0, clear = 0;
            double ls = 0.0;
            for (int j = 0; j < B; j++) {
                const size_t row = ((size_t)g * B + j) * A;
                if ((c.mask[(size_t)r * B + j] >> k) & 1u) {
                    set++;
                    EXPECT_TRUE(same_bits(&c.dq[row], &dq_full[row], A)) << "g=" << g << " j=" << j << ": masked-in row differs";
                    const double d = dq_full[row + c.action[(size_t)r * B + j]] * B;  // = delta (or clipped)
                    if (hp[r].loss == QF_LOSS_SQUARED) ls += 0.5 * d * d;
                } else {
                    clear++;
                    for (int a = 0; a < A; a++) EXPECT_EQ(c.dq[row + a], 0.0f) << "g=" << g << " j=" << j << ": masked-out row";
                }
            }
            EXPECT_GT(set, 0);
            EXPECT_GT(clear, 0);
            if (hp[r].loss == QF_LOSS_SQUARED) {
                EXPECT_NEAR(c.loss[g], ls / B, 1e-5 * std::max(1.0, ls / B)) << "g=" << g << ": loss counts masked-in transitions only";
            }
            EXPECT_LE(c.loss[g], loss_full[g] * (1.0f + 1e-6f)) << "g=" << g;
            EXPECT_EQ(c.qmean[g], qmean_full[g]) << "g=" << g << ": the mean Q is over the whole batch";
        }
}

// ================================================================================================
// 5. replay_store / replay_sample carry masks and intrinsic rewards
// ================================================================================================

TEST(ExploreReplay, StoreDrawsMasksAndStoresIntrSampleCarriesThem) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 3, E = 20, C = 50, B = 64;
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].explore = QF_EXPLORE_BOOTSTRAP;
    hp[0].n_heads = 7;
    hp[0].mask_p = 0.5f;
    hp[1].n_heads = 1;  // everything trains head 0
    hp[1].mask_p = 1.0f;
    hp[2].explore = QF_EXPLORE_BOOTSTRAP;
    hp[2].n_heads = 40;
    hp[2].mask_p = 0.3f;
    const std::vector<uint32_t> keys = {31, 4, 31, 5, 32, 4};
    std::vector<int32_t> ridx(R * C), rnidx(R * C), ract(R * C);
    std::vector<float> rrew(R * C);
    std::vector<uint8_t> rterm(R * C);
    std::vector<qf_mask> rmask(R * C, 0xdeadbeefdeadbeefull);
    std::vector<float> rintr(R * C, -9.0f);
    qf_replay rp = {R, C, 1, 1, nullptr, nullptr, ridx.data(), rnidx.data(), ract.data(),
                    rrew.data(), rterm.data(), rmask.data(), rintr.data(), {}, nullptr, nullptr, nullptr, 0, 0};
    // expected slot contents: the last writer of each slot
    std::vector<qf_mask> want_mask(R * C, 0);
    std::vector<float> want_intr(R * C, 0.0f);
    std::vector<int32_t> want_idx(R * C, -1);
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> U(0.0f, 2.0f);
    for (uint32_t t = 0; t < 5; t++) {
        const int64_t ptr = (int64_t)t * E % C;
        std::vector<int32_t> idx(R * E), nidx(R * E), act(R * E);
        std::vector<float> rew(R * E, 0.5f), intr(R * E);
        std::vector<uint8_t> flags(R * E, 0);
        for (int i = 0; i < R * E; i++) {
            idx[i] = (int32_t)(t * 1000 + i);
            nidx[i] = idx[i] + 1;
            act[i] = i % 3;
            intr[i] = U(rng);
        }
        const bool null_intr = t == 4;  // the last store passes NULL: 0 stored
        ASSERT_EQ(b->replay_store(b, &rp, hp.data(), keys.data(), E, ptr, t, nullptr, idx.data(), act.data(),
                                  rew.data(), flags.data(), nullptr, nidx.data(), null_intr ? nullptr : intr.data()),
                  QF_OK);
        for (int r = 0; r < R; r++)
            for (int e = 0; e < E; e++) {
                const size_t dst = (size_t)r * C + (size_t)((ptr + e) % C);
                want_mask[dst] = qf_draw_mask(keys[2 * r], keys[2 * r + 1], e, t, hp[r].n_heads, hp[r].mask_p);
                want_intr[dst] = null_intr ? 0.0f : intr[(size_t)r * E + e];
                want_idx[dst] = idx[(size_t)r * E + e];
            }
    }
    ASSERT_EQ(ridx, want_idx);  // every slot was written, by the expected (e, t)
    EXPECT_EQ(rmask, want_mask);
    EXPECT_TRUE(same_bits(rintr.data(), want_intr.data(), rintr.size()));
    for (int i = 0; i < C; i++) EXPECT_EQ(rmask[(size_t)C + i], 1u) << "one head: mask 1";
    for (int i = 0; i < C; i++) EXPECT_EQ(rmask[(size_t)0 * C + i] >> 7, 0u) << "bits >= n_heads";
    // the mask bits of the stored transitions are Bernoulli(mask_p): run 2, 40 bits x 50 slots
    int64_t set2 = 0;
    for (int i = 0; i < C; i++) set2 += __builtin_popcountll(rmask[(size_t)2 * C + i]);
    EXPECT_NEAR(set2 / (40.0 * C), 0.3, 5 * se(0.3, 40.0 * C));
    for (int i = 0; i < C; i++) EXPECT_EQ(rmask[(size_t)2 * C + i] >> 40, 0u) << "bits >= n_heads (40)";

    std::vector<int32_t> sidx(R * B), snidx(R * B), sact(R * B);
    std::vector<float> srew(R * B);
    std::vector<uint8_t> sterm(R * B);
    std::vector<qf_mask> smask(R * B);
    std::vector<float> sintr(R * B, -5.0f);
    qf_sample s = {R, B, 1, 1, nullptr, nullptr, sidx.data(), snidx.data(), sact.data(),
                   srew.data(), sterm.data(), smask.data(), sintr.data(), {}, nullptr, nullptr, nullptr, 0, 0};
    for (int64_t size : {(int64_t)C, (int64_t)17}) {
        ASSERT_EQ(b->replay_sample(b, &rp, B, size, 12, keys.data(), &s), QF_OK);
        for (int r = 0; r < R; r++)
            for (int j = 0; j < B; j++) {
                const int slot = qf_sample_slot(keys.data(), r, 12, j, size);
                ASSERT_TRUE(slot >= 0 && slot < size);
                const size_t src = (size_t)r * C + slot, dst = (size_t)r * B + j;
                EXPECT_EQ(sidx[dst], ridx[src]);
                EXPECT_EQ(smask[dst], rmask[src]) << "r=" << r << " j=" << j;
                EXPECT_TRUE(same_bits(&sintr[dst], &rintr[src], 1)) << "r=" << r << " j=" << j;
            }
    }
}

// ================================================================================================
// 6. exact counts
// ================================================================================================

TEST(ExploreCount, ExactCountsEqualAMapAndBonusOnlyForCountRuns) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 3, S = 37, E = 16, steps = 60, B = 100;
    std::vector<uint32_t> cnt((size_t)R * S, 0);
    qf_counts c;
    std::memset(&c, 0, sizeof c);
    c.R = R;
    c.mode = QF_COUNT_EXACT;
    c.S = S;
    c.cnt = cnt.data();
    const std::vector<uint32_t> keys = {1, 0, 1, 1, 1, 2};
    ASSERT_EQ(b->count_init(b, &c, keys.data()), QF_OK);
    std::vector<std::map<int, uint32_t>> ref(R);
    std::mt19937 rng(6);
    for (int s = 0; s < steps; s++) {
        std::vector<int32_t> nidx((size_t)R * E);
        for (int r = 0; r < R; r++)
            for (int e = 0; e < E; e++) {
                // skewed over [0, 30): states 30..36 are never visited
                const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
                const int st = (int)(30.0 * u * u);
                nidx[(size_t)r * E + e] = st;
                ref[r][st]++;
            }
        ASSERT_EQ(b->count_update(b, &c, E, nullptr, nidx.data()), QF_OK);
    }
    for (int r = 0; r < R; r++)
        for (int st = 0; st < S; st++) {
            const auto it = ref[r].find(st);
            EXPECT_EQ(cnt[(size_t)r * S + st], it == ref[r].end() ? 0u : it->second) << "r=" << r << " s=" << st;
        }
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].bonus = QF_BONUS_COUNT;
    hp[1].bonus = QF_BONUS_NONE;
    hp[2].bonus = QF_BONUS_RND;
    std::vector<int32_t> snidx((size_t)R * B);
    for (int i = 0; i < R * B; i++) snidx[i] = (int32_t)((i * 13) % S);
    std::vector<float> sintr((size_t)R * B, -7.0f);
    qf_sample smp;
    std::memset(&smp, 0, sizeof smp);
    smp.R = R;
    smp.C = B;
    smp.embed = 1;
    smp.next_idx = snidx.data();
    smp.intr = sintr.data();
    ASSERT_EQ(b->count_bonus(b, &c, hp.data(), B, &smp), QF_OK);
    for (int r = 0; r < R; r++)
        for (int j = 0; j < B; j++) {
            const float got = sintr[(size_t)r * B + j];
            if (hp[r].bonus != QF_BONUS_COUNT) {
                EXPECT_EQ(got, -7.0f) << "run " << r << " has no count bonus: intr untouched";
                continue;
            }
            const auto it = ref[r].find(snidx[(size_t)r * B + j]);
            const double nn = it == ref[r].end() ? 0.0 : it->second;
            const double want = 1.0 / std::sqrt(std::max(1.0, nn));  // never seen: treated as once
            EXPECT_NEAR(got, want, 2.5e-7 * want) << "r=" << r << " j=" << j << " n=" << nn;
        }
}

// (state, action) counts, and acting on Q + beta / sqrt(N(s, a) + 1) for count runs with count_act:
// counts against a map, bonuses against the formula in double, other runs untouched.
TEST(ExploreCount, StateActionCountsAndOptimisticActing) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 3, S = 11, A = 3, E = 8, K = 2, steps = 40;
    std::vector<uint32_t> cnt((size_t)R * S, 0), cnt_sa((size_t)R * S * A, 0);
    qf_counts c;
    std::memset(&c, 0, sizeof c);
    c.R = R;
    c.mode = QF_COUNT_EXACT;
    c.S = S;
    c.A = A;
    c.cnt = cnt.data();
    c.cnt_sa = cnt_sa.data();
    std::map<std::pair<int, int>, uint32_t> ref[R];
    std::mt19937 rng(9);
    for (int t = 0; t < steps; t++) {
        std::vector<int32_t> idx((size_t)R * E), act((size_t)R * E);
        for (int i = 0; i < R * E; i++) {
            idx[i] = (int32_t)(rng() % 6);  // states 6..10 never seen
            act[i] = (int32_t)(rng() % 2);  // action 2 never taken
            ref[i / E][{idx[i], act[i]}]++;
        }
        ASSERT_EQ(b->count_sa_update(b, &c, E, nullptr, idx.data(), act.data()), QF_OK);
    }
    for (int r = 0; r < R; r++)
        for (int st = 0; st < S; st++)
            for (int a = 0; a < A; a++) {
                const auto it = ref[r].find({st, a});
                EXPECT_EQ(cnt_sa[((size_t)r * S + st) * A + a], it == ref[r].end() ? 0u : it->second);
            }
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].bonus = QF_BONUS_COUNT;
    hp[0].count_act = 1;
    hp[0].beta = 0.5f;
    hp[1].bonus = QF_BONUS_COUNT;  // count bonus, but acting without optimism
    hp[1].count_act = 0;
    hp[1].beta = 0.5f;
    hp[2].bonus = QF_BONUS_NONE;
    hp[2].count_act = 1;
    const qf_net n = make_net(R, K, 1, {S, A});
    std::vector<int32_t> idx((size_t)R * E);
    for (int i = 0; i < R * E; i++) idx[i] = (int32_t)(i % S);
    std::vector<float> q((size_t)R * K * E * A), q0;
    for (auto &x : q) x = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    q0 = q;
    ASSERT_EQ(b->count_act(b, &c, &n, hp.data(), E, nullptr, idx.data(), q.data()), QF_OK);
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++)
            for (int e = 0; e < E; e++)
                for (int a = 0; a < A; a++) {
                    const size_t i = (((size_t)r * K + k) * E + e) * A + a;
                    if (r != 0) {
                        EXPECT_EQ(q[i], q0[i]) << "run " << r << " must be untouched";
                        continue;
                    }
                    const auto it = ref[r].find({idx[(size_t)r * E + e], a});
                    const double nsa = it == ref[r].end() ? 0.0 : it->second;
                    const double want = q0[i] + 0.5 / std::sqrt(nsa + 1.0);
                    EXPECT_NEAR(q[i], want, 1e-6) << "e=" << e << " a=" << a << " n=" << nsa;
                    if (a == 2) {
                        EXPECT_NEAR(q[i] - q0[i], 0.5, 1e-6) << "an untried action gets the full beta";
                    }
                }
}

// ================================================================================================
// 7. SimHash
// ================================================================================================

// Exact visit counts of R runs over S states in host memory (the CPU backend's memory).
struct ExactCounts {
    qf_counts c;
    std::vector<uint32_t> cnt;
    ExactCounts(int R, int S) : cnt((size_t)R * S, 0) {
        std::memset(&c, 0, sizeof c);
        c.R = R;
        c.mode = QF_COUNT_EXACT;
        c.S = S;
        c.cnt = cnt.data();
    }
    ExactCounts(const ExactCounts &) = delete;
    ExactCounts &operator=(const ExactCounts &) = delete;
};

struct HashCounts {
    qf_counts c;
    std::vector<uint32_t> cnt;
    std::vector<uint64_t> key, key_sa;
    std::vector<uint32_t> cnt_sa;
    std::vector<float> proj;
    HashCounts(int R, int bits, int D, int log2cap, int A = 0) {
        std::memset(&c, 0, sizeof c);
        c.R = R;
        c.mode = QF_COUNT_SIMHASH;
        c.bits = bits;
        c.D = D;
        c.log2cap = log2cap;
        cnt.assign((size_t)R << log2cap, 0);
        key.assign((size_t)R << log2cap, 0);
        proj.assign((size_t)R * bits * D, 0.0f);
        c.cnt = cnt.data();
        c.key = key.data();
        c.proj = proj.data();
        c.A = A;
        if (A) {
            cnt_sa.assign((size_t)R << log2cap, 0);
            key_sa.assign((size_t)R << log2cap, 0);
            c.cnt_sa = cnt_sa.data();
            c.key_sa = key_sa.data();
        }
    }
    const float *proj_of(int r) const { return proj.data() + (size_t)r * c.bits * c.D; }
    uint32_t count_of(int r, uint64_t code) const {
        const size_t cap = (size_t)1 << c.log2cap;
        return qf_hash_count(key.data() + r * cap, cnt.data() + r * cap, c.log2cap, code);
    }
    int occupied(int r) const {
        const size_t cap = (size_t)1 << c.log2cap;
        int o = 0;
        for (size_t s = 0; s < cap; s++) o += key[r * cap + s] != 0;
        return o;
    }
    uint64_t total(int r) const {
        const size_t cap = (size_t)1 << c.log2cap;
        uint64_t t = 0;
        for (size_t s = 0; s < cap; s++) t += cnt[r * cap + s];
        return t;
    }
};

// Sign bits of the projection in double; *ambiguous = a row with |dot| < tol.
uint64_t code_d(const float *proj, int bits, int D, const float *x, double tol, bool *ambiguous) {
    uint64_t c = 0;
    *ambiguous = false;
    for (int i = 0; i < bits; i++) {
        double s = 0.0;
        for (int d = 0; d < D; d++) s += (double)proj[(size_t)i * D + d] * x[d];
        if (std::fabs(s) < tol) *ambiguous = true;
        if (s > 0.0) c |= (uint64_t)1 << i;
    }
    return c;
}

TEST(ExploreSimHash, ProjectionIsGaussianAndCodesAreSignBitsOfTheDoubleProjection) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 2, bits = 62, D = 100;
    HashCounts h(R, bits, D, 10);
    const std::vector<uint32_t> keys = {40, 1, 41, 1};
    ASSERT_EQ(b->count_init(b, &h.c, keys.data()), QF_OK);
    for (int r = 0; r < R; r++) {
        double s = 0.0, ss = 0.0;
        int bad = 0;
        for (int i = 0; i < bits; i++)
            for (int d = 0; d < D; d++) {
                const float v = h.proj[((size_t)r * bits + i) * D + d];
                const float want = qf_simhash_proj(keys[2 * r], keys[2 * r + 1], i, d);
                bad += !same_bits(&v, &want, 1);
                s += v;
                ss += (double)v * v;
            }
        EXPECT_EQ(bad, 0) << "run " << r << ": projection differs from qf_simhash_proj";
        const double N = (double)bits * D, mean = s / N, var = ss / N - mean * mean;
        EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(N)) << "run " << r;
        EXPECT_NEAR(var, 1.0, 5.0 * std::sqrt(2.0 / N)) << "run " << r;
    }
    // the two runs' projections are independent draws
    EXPECT_FALSE(same_bits(h.proj_of(0), h.proj_of(1), (size_t)bits * D));
    std::mt19937 rng(12);
    std::normal_distribution<float> N01(0.0f, 1.0f);
    int compared = 0, bad = 0;
    for (int n = 0; n < 300; n++) {
        std::vector<float> x(D);
        for (auto &v : x) v = N01(rng);
        const int r = n % R;
        const uint64_t got = qf_simhash_code(h.proj_of(r), bits, D, x.data());
        for (int i = 0; i < bits; i++) {
            double s = 0.0;
            for (int d = 0; d < D; d++) s += (double)h.proj_of(r)[(size_t)i * D + d] * x[d];
            if (std::fabs(s) < 1e-4) continue;  // float and double may disagree on the sign
            compared++;
            bad += (int)((got >> i) & 1u) != (s > 0.0);
        }
        EXPECT_EQ(got >> bits, 0u);
    }
    EXPECT_GT(compared, 300 * bits * 99 / 100);
    EXPECT_EQ(bad, 0) << "code bits differ from the sign of the double projection";
}

TEST(ExploreSimHash, TableCountsEqualAMapOfCodesWithProbing) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    // 40 distinct observations per run in a 64-slot table: many probe chains
    const int R = 2, bits = 20, D = 16, log2cap = 6, NV = 40, E = 10, steps = 50;
    HashCounts h(R, bits, D, log2cap);
    const std::vector<uint32_t> keys = {3, 30, 4, 30};
    ASSERT_EQ(b->count_init(b, &h.c, keys.data()), QF_OK);
    std::mt19937 rng(13);
    std::normal_distribution<float> N01(0.0f, 1.0f);
    std::vector<std::vector<float>> vecs((size_t)R * NV);
    std::vector<uint64_t> codes((size_t)R * NV);
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) {
            bool amb = true;
            std::vector<float> x(D);
            while (amb) {  // an observation whose code is unambiguous in float and double
                for (auto &e : x) e = N01(rng);
                codes[(size_t)r * NV + v] = code_d(h.proj_of(r), bits, D, x.data(), 1e-3, &amb);
            }
            ASSERT_EQ(qf_simhash_code(h.proj_of(r), bits, D, x.data()), codes[(size_t)r * NV + v]);
            vecs[(size_t)r * NV + v] = x;
        }
    std::vector<std::map<uint64_t, uint32_t>> ref(R);
    for (int s = 0; s < steps; s++) {
        std::vector<float> obs((size_t)R * E * D);
        for (int r = 0; r < R; r++)
            for (int e = 0; e < E; e++) {
                const int v = (int)(rng() % NV);
                std::copy(vecs[(size_t)r * NV + v].begin(), vecs[(size_t)r * NV + v].end(), &obs[((size_t)r * E + e) * D]);
                ref[r][codes[(size_t)r * NV + v]]++;
            }
        ASSERT_EQ(b->count_update(b, &h.c, E, obs.data(), nullptr), QF_OK);
    }
    for (int r = 0; r < R; r++) {
        EXPECT_EQ(h.occupied(r), (int)ref[r].size()) << "run " << r << ": one slot per distinct code";
        EXPECT_EQ(h.total(r), (uint64_t)E * steps) << "run " << r;
        for (const auto &kv : ref[r]) EXPECT_EQ(h.count_of(r, kv.first), kv.second) << "run " << r << " code " << kv.first;
        const size_t cap = (size_t)1 << log2cap;
        for (size_t sl = 0; sl < cap; sl++) {
            const uint64_t k = h.key[r * cap + sl];
            if (k) { EXPECT_EQ(ref[r].count(k - 1), 1u) << "run " << r << ": slot " << sl << " holds an unknown code"; }
            else { EXPECT_EQ(h.cnt[r * cap + sl], 0u); }
        }
    }
    // bonuses of sampled observations (and one never seen: its code's count, 0 -> bonus 1)
    const int B = 30;
    std::vector<float> snobs((size_t)R * B * D), sintr((size_t)R * B, -1.0f);
    std::vector<uint64_t> scode((size_t)R * B);
    for (int r = 0; r < R; r++)
        for (int j = 0; j < B; j++) {
            std::vector<float> x = vecs[(size_t)r * NV + (j * 7) % NV];
            if (j == B - 1)
                for (auto &e : x) e = N01(rng);
            std::copy(x.begin(), x.end(), &snobs[((size_t)r * B + j) * D]);
            scode[(size_t)r * B + j] = qf_simhash_code(h.proj_of(r), bits, D, x.data());
        }
    std::vector<qf_run_hp> hp(R, default_hp());
    for (auto &x : hp) x.bonus = QF_BONUS_COUNT;
    qf_sample smp;
    std::memset(&smp, 0, sizeof smp);
    smp.R = R;
    smp.C = B;
    smp.D = D;
    smp.next_obs = snobs.data();
    smp.intr = sintr.data();
    ASSERT_EQ(b->count_bonus(b, &h.c, hp.data(), B, &smp), QF_OK);
    for (int r = 0; r < R; r++)
        for (int j = 0; j < B; j++) {
            const auto it = ref[r].find(scode[(size_t)r * B + j]);
            const double nn = it == ref[r].end() ? 0.0 : it->second;
            const double want = 1.0 / std::sqrt(std::max(1.0, nn));
            EXPECT_NEAR(sintr[(size_t)r * B + j], want, 2.5e-7 * want) << "r=" << r << " j=" << j;
        }
}

// DeepSea N = 10: dense observations are one-hot over D = N*N cells, all zeros for the null
// observation after the episode ends (state index N*N).
struct DeepSeaSequence {
    static constexpr int N = 10, D = N * N, S = D + 1;
    int R, E, steps;
    std::vector<std::vector<int32_t>> idx;  // per step [R][E]
    DeepSeaSequence(int r, int e, int st, uint32_t seed) : R(r), E(e), steps(st) {
        std::mt19937 rng(seed);
        std::uniform_real_distribution<double> U(0.0, 1.0);
        for (int s = 0; s < steps; s++) {
            std::vector<int32_t> v((size_t)R * E);
            for (auto &x : v) {
                const double u = U(rng);  // rows 0..8 (cells 0..89) skewed to the top, or the null state
                x = u < 0.1 ? D : (int32_t)(90.0 * (u - 0.1) / 0.9 * (u - 0.1) / 0.9);
            }
            idx.push_back(v);
        }
    }
    std::vector<float> obs(int s) const {
        std::vector<float> o((size_t)R * E * D, 0.0f);
        for (size_t i = 0; i < idx[s].size(); i++)
            if (idx[s][i] < D) o[i * D + idx[s][i]] = 1.0f;
        return o;
    }
};

// Bonuses of every DeepSea state (all S, visited or not) after the sequence, from the counts c.
std::vector<float> deep_sea_bonuses(qf_backend *b, const qf_counts *c, int R) {
    constexpr int D = DeepSeaSequence::D, S = DeepSeaSequence::S;
    std::vector<int32_t> nidx((size_t)R * S);
    std::vector<float> nobs((size_t)R * S * D, 0.0f), intr((size_t)R * S, -1.0f);
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) {
            nidx[(size_t)r * S + s] = s;
            if (s < D) nobs[((size_t)r * S + s) * D + s] = 1.0f;
        }
    std::vector<qf_run_hp> hp(R, default_hp());
    for (auto &h : hp) h.bonus = QF_BONUS_COUNT;
    qf_sample smp;
    std::memset(&smp, 0, sizeof smp);
    smp.R = R;
    smp.C = S;
    smp.D = D;
    smp.next_obs = nobs.data();
    smp.next_idx = nidx.data();
    smp.intr = intr.data();
    EXPECT_EQ(b->count_bonus(b, c, hp.data(), S, &smp), QF_OK);
    return intr;
}

TEST(ExploreSimHash, LongCodesOnDeepSeaGiveTheExactCountBonuses) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    constexpr int D = DeepSeaSequence::D, S = DeepSeaSequence::S;
    const int R = 2, E = 8;
    DeepSeaSequence seq(R, E, 250, 21);
    const std::vector<uint32_t> keys = {0, 0, 0, 1};
    ExactCounts exact(R, S);
    qf_counts &ex = exact.c;
    const std::vector<uint32_t> &cnt = exact.cnt;
    HashCounts h(R, 62, D, 12);
    ASSERT_EQ(b->count_init(b, &ex, keys.data()), QF_OK);
    ASSERT_EQ(b->count_init(b, &h.c, keys.data()), QF_OK);
    std::vector<std::set<int32_t>> visited(R);
    for (int s = 0; s < seq.steps; s++) {
        const std::vector<float> o = seq.obs(s);
        ASSERT_EQ(b->count_update(b, &ex, E, nullptr, seq.idx[s].data()), QF_OK);
        ASSERT_EQ(b->count_update(b, &h.c, E, o.data(), nullptr), QF_OK);
        for (int r = 0; r < R; r++)
            for (int e = 0; e < E; e++) visited[r].insert(seq.idx[s][(size_t)r * E + e]);
    }
    for (int r = 0; r < R; r++) {
        EXPECT_EQ(h.occupied(r), (int)visited[r].size()) << "run " << r << ": 62-bit codes of distinct cells collide";
        EXPECT_GT((int)visited[r].size(), 60);
        EXPECT_LT((int)visited[r].size(), S) << "some cells must stay unvisited";
    }
    const std::vector<float> be = deep_sea_bonuses(b, &ex, R), bh = deep_sea_bonuses(b, &h.c, R);
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) {
            const size_t i = (size_t)r * S + s;
            EXPECT_TRUE(same_bits(&be[i], &bh[i], 1)) << "run " << r << " state " << s << ": exact " << be[i]
                                                      << " vs SimHash " << bh[i] << " (n = " << cnt[i] << ")";
            EXPECT_NEAR(be[i], 1.0 / std::sqrt(std::max(1.0, (double)cnt[i])), 2.5e-7) << "run " << r << " state " << s;
        }
}

// (state, action) pseudo-counts with 57-bit codes (pair keys are injective up to 57 bits) give the
// same optimistic-acting bonuses as exact (state, action) counts on one-hot DeepSea observations.
TEST(ExploreSimHash, StateActionPseudoCountsEqualExactCountsForLongCodes) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    constexpr int D = DeepSeaSequence::D, S = DeepSeaSequence::S, A = 2;
    const int R = 2, E = 8, K = 1;
    DeepSeaSequence seq(R, E, 200, 33);
    const std::vector<uint32_t> keys = {5, 0, 5, 1};
    std::vector<uint32_t> cnt((size_t)R * S, 0), cnt_sa((size_t)R * S * A, 0);
    qf_counts ex;
    std::memset(&ex, 0, sizeof ex);
    ex.R = R;
    ex.mode = QF_COUNT_EXACT;
    ex.S = S;
    ex.A = A;
    ex.cnt = cnt.data();
    ex.cnt_sa = cnt_sa.data();
    HashCounts h(R, 57, D, 12, A);
    ASSERT_EQ(b->count_init(b, &h.c, keys.data()), QF_OK);
    std::mt19937 rng(4);
    for (int t = 0; t < seq.steps; t++) {
        const std::vector<float> o = seq.obs(t);
        std::vector<int32_t> act((size_t)R * E);
        for (auto &a : act) a = (int32_t)(rng() % A);
        ASSERT_EQ(b->count_sa_update(b, &ex, E, nullptr, seq.idx[t].data(), act.data()), QF_OK);
        ASSERT_EQ(b->count_sa_update(b, &h.c, E, o.data(), nullptr, act.data()), QF_OK);
    }
    // every state as one env: the acting bonuses of both count kinds
    std::vector<int32_t> idx((size_t)R * S);
    std::vector<float> obs((size_t)R * S * D, 0.0f);
    for (int r = 0; r < R; r++)
        for (int st = 0; st < S; st++) {
            idx[(size_t)r * S + st] = st;
            if (st < D) obs[((size_t)r * S + st) * D + st] = 1.0f;
        }
    std::vector<qf_run_hp> hp(R, default_hp());
    for (auto &x : hp) {
        x.bonus = QF_BONUS_COUNT;
        x.count_act = 1;
        x.beta = 1.0f;
    }
    const qf_net n = make_net(R, K, 1, {S, A});
    std::vector<float> qe((size_t)R * S * A, 0.0f), qh = qe;
    ASSERT_EQ(b->count_act(b, &ex, &n, hp.data(), S, nullptr, idx.data(), qe.data()), QF_OK);
    ASSERT_EQ(b->count_act(b, &h.c, &n, hp.data(), S, obs.data(), nullptr, qh.data()), QF_OK);
    int tried = 0;
    for (int r = 0; r < R; r++)
        for (int st = 0; st < S; st++)
            for (int a = 0; a < A; a++) {
                const size_t i = ((size_t)r * S + st) * A + a;
                EXPECT_TRUE(same_bits(&qe[i], &qh[i], 1)) << "r=" << r << " s=" << st << " a=" << a;
                tried += cnt_sa[i] > 0;
            }
    EXPECT_GT(tried, 100) << "the sequence must try many pairs";
}

TEST(ExploreSimHash, TwoBitCodesOnlyMergeStates) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    constexpr int D = DeepSeaSequence::D, S = DeepSeaSequence::S;
    const int R = 2, E = 8;
    DeepSeaSequence seq(R, E, 250, 22);
    const std::vector<uint32_t> keys = {5, 0, 5, 1};
    ExactCounts exact(R, S);
    qf_counts &ex = exact.c;
    const std::vector<uint32_t> &cnt = exact.cnt;
    HashCounts h(R, 2, D, 4);
    ASSERT_EQ(b->count_init(b, &h.c, keys.data()), QF_OK);
    std::vector<std::set<int32_t>> visited(R);
    for (int s = 0; s < seq.steps; s++) {
        const std::vector<float> o = seq.obs(s);
        ASSERT_EQ(b->count_update(b, &ex, E, nullptr, seq.idx[s].data()), QF_OK);
        ASSERT_EQ(b->count_update(b, &h.c, E, o.data(), nullptr), QF_OK);
        for (int r = 0; r < R; r++)
            for (int e = 0; e < E; e++) visited[r].insert(seq.idx[s][(size_t)r * E + e]);
    }
    const std::vector<float> be = deep_sea_bonuses(b, &ex, R), bh = deep_sea_bonuses(b, &h.c, R);
    for (int r = 0; r < R; r++) {
        EXPECT_LE(h.occupied(r), 4) << "run " << r << ": at most 2^2 codes";
        EXPECT_LT(h.occupied(r), (int)visited[r].size()) << "run " << r << ": states must merge";
        EXPECT_EQ(h.total(r), (uint64_t)E * seq.steps) << "run " << r;
        std::vector<float> onehot(D);
        for (int s = 0; s < S; s++) {
            std::fill(onehot.begin(), onehot.end(), 0.0f);
            if (s < D) onehot[s] = 1.0f;
            const uint32_t pseudo = h.count_of(r, qf_simhash_code(h.proj_of(r), 2, D, onehot.data()));
            const uint32_t exact = cnt[(size_t)r * S + s];
            EXPECT_GE(pseudo, exact) << "run " << r << " state " << s;
            EXPECT_LE(bh[(size_t)r * S + s], be[(size_t)r * S + s]) << "run " << r << " state " << s;
        }
    }
}

// ================================================================================================
// 8. RND
// ================================================================================================

// A hand-built qf_rnd: nets R runs x 1 head, input D, every field in std::vectors.
struct RndState {
    qf_rnd q;
    int R, M, E, D, dim;
    std::vector<float> target, pred, adam_m, adam_v, grads, work, acts_t, acts_p, out_t, out_p, dq, xn, ret, loss,
        gnorm;
    std::vector<int32_t> adam_t, status;
    std::vector<double> obs_mean, obs_m2, obs_n, ret_mean, ret_m2, ret_n;
    RndState(int r, int m, int e, const std::vector<int> &w) : R(r), M(m), E(e) {
        std::memset(&q, 0, sizeof q);
        q.net = make_net(R, 1, 0, w);
        D = w.front();
        dim = w.back();
        const size_t P = (size_t)q.net.P, H = (size_t)std::max<int64_t>(1, q.net.H);
        target.assign(R * P, 0.0f);
        pred = adam_m = adam_v = grads = target;
        work.assign((size_t)qf_net_work_floats(&q.net, M), 0.0f);
        acts_t.assign((size_t)R * M * H, 0.0f);
        acts_p = acts_t;
        out_t.assign((size_t)R * M * dim, 0.0f);
        out_p = dq = out_t;
        xn.assign((size_t)R * M * D, 0.0f);
        ret.assign((size_t)R * E, 0.0f);
        loss.assign(R, 0.0f);
        gnorm.assign(R, 0.0f);
        adam_t.assign(R, 0);
        status.assign(R, QF_RUN_OK);
        obs_mean.assign((size_t)R * D, 0.0);
        obs_m2 = obs_mean;
        obs_n.assign(R, 0.0);
        ret_mean.assign(R, 0.0);
        ret_m2 = ret_n = ret_mean;
        q.target = target.data();
        q.pred = pred.data();
        q.adam_m = adam_m.data();
        q.adam_v = adam_v.data();
        q.grads = grads.data();
        q.work = work.data();
        q.adam_t = adam_t.data();
        q.acts_t = acts_t.data();
        q.acts_p = acts_p.data();
        q.out_t = out_t.data();
        q.out_p = out_p.data();
        q.dq = dq.data();
        q.xn = xn.data();
        q.obs_mean = obs_mean.data();
        q.obs_m2 = obs_m2.data();
        q.obs_n = obs_n.data();
        q.ret = ret.data();
        q.ret_mean = ret_mean.data();
        q.ret_m2 = ret_m2.data();
        q.ret_n = ret_n.data();
        q.loss = loss.data();
        q.gnorm = gnorm.data();
    }
    RndState(const RndState &) = delete;
    RndState &operator=(const RndState &) = delete;
};

TEST(ExploreRnd, InputStatisticsAreTwoPassAndInputsAreNormalizedAndClipped) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 2, D = 5, Mmax = 50;
    RndState st(R, Mmax, 1, {D, 8, 4});
    std::mt19937 rng(17);
    std::normal_distribution<double> N01(0.0, 1.0);
    // per-run, per-dimension offsets and scales; dimension 3 is constant
    const double off[R][D] = {{1000, -3e4, 0.5, 42.5, 1e3}, {-1000, 7, 1e4, -3.25, 0}};
    const double scl[R][D] = {{50, 0.01, 1, 0, 1e-3}, {5, 300, 2e3, 0, 1}};
    std::vector<std::vector<double>> fed((size_t)R * D);
    for (int M : {7, 50, 1, 13, 50}) {
        std::vector<float> x((size_t)R * M * D);
        for (int r = 0; r < R; r++)
            for (int m = 0; m < M; m++)
                for (int d = 0; d < D; d++) {
                    const float v = (float)(off[r][d] + scl[r][d] * N01(rng));
                    x[((size_t)r * M + m) * D + d] = v;
                    fed[(size_t)r * D + d].push_back(v);
                }
        ASSERT_EQ(b->rnd_input(b, &st.q, M, x.data(), 1), QF_OK);
        int in_range = 0;
        for (int r = 0; r < R; r++) {
            const double n = (double)fed[(size_t)r * D].size();
            EXPECT_EQ(st.obs_n[r], n) << "run " << r;
            for (int d = 0; d < D; d++) {
                const std::vector<double> &v = fed[(size_t)r * D + d];
                double mean = 0.0, m2 = 0.0;
                for (double e : v) mean += e;
                mean /= n;
                for (double e : v) m2 += (e - mean) * (e - mean);
                const double var = m2 / n, var_got = st.obs_m2[(size_t)r * D + d] / st.obs_n[r];
                EXPECT_NEAR(st.obs_mean[(size_t)r * D + d], mean, 1e-6 * (std::fabs(mean) + std::sqrt(var)) + 1e-300)
                    << "run " << r << " dim " << d << " after " << n;
                EXPECT_NEAR(var_got, var, 1e-6 * var + 1e-300) << "run " << r << " dim " << d << " after " << n;
                if (scl[r][d] == 0.0) { EXPECT_EQ(st.obs_m2[(size_t)r * D + d], 0.0) << "constant dimension"; }
                for (int m = 0; m < M; m++) {
                    const size_t i = ((size_t)r * M + m) * D + d;
                    const float z = st.xn[i];
                    ASSERT_TRUE(z >= -QF_RND_CLIP && z <= QF_RND_CLIP) << z;
                    const double zd = ((double)x[i] - mean) / std::sqrt(var + 1e-8);
                    if (std::fabs(zd) < QF_RND_CLIP - 1e-3) {
                        in_range++;
                        // float rounding of a value <= 5: 3e-7; statistics: ~1e-12 relative
                        EXPECT_NEAR(z, zd, 1e-6) << "run " << r << " dim " << d << " m=" << m;
                    } else if (std::fabs(zd) > QF_RND_CLIP + 1e-3) {
                        EXPECT_EQ(z, zd > 0 ? QF_RND_CLIP : -QF_RND_CLIP);
                    }
                    if (scl[r][d] == 0.0) { EXPECT_EQ(z, 0.0f) << "constant dimension normalizes to 0"; }
                }
            }
        }
        EXPECT_GT(in_range, R * M * D / 2);
    }
    // outliers with update = 0: exactly +-5, and the statistics do not move
    const std::vector<double> mean0 = st.obs_mean, m20 = st.obs_m2, n0 = st.obs_n;
    std::vector<float> x((size_t)R * 2 * D);
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++) {
            const double sd = std::sqrt(st.obs_m2[(size_t)r * D + d] / st.obs_n[r] + 1e-8);
            x[((size_t)r * 2 + 0) * D + d] = (float)(st.obs_mean[(size_t)r * D + d] + 1e3 * sd + 1.0);
            x[((size_t)r * 2 + 1) * D + d] = (float)(st.obs_mean[(size_t)r * D + d] - 1e3 * sd - 1.0);
        }
    ASSERT_EQ(b->rnd_input(b, &st.q, 2, x.data(), 0), QF_OK);
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++) {
            EXPECT_EQ(st.xn[((size_t)r * 2 + 0) * D + d], QF_RND_CLIP) << "run " << r << " dim " << d;
            EXPECT_EQ(st.xn[((size_t)r * 2 + 1) * D + d], -QF_RND_CLIP) << "run " << r << " dim " << d;
        }
    EXPECT_TRUE(same_bits(mean0.data(), st.obs_mean.data(), mean0.size()));
    EXPECT_TRUE(same_bits(m20.data(), st.obs_m2.data(), m20.size()));
    EXPECT_TRUE(same_bits(n0.data(), st.obs_n.data(), n0.size()));
}

TEST(ExploreRnd, GradIsTheDerivativeOfTheMeanSquaredErrorAndLossIsIt) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 2, M = 5, dim = 4;
    RndState st(R, M, 1, {3, 8, dim});
    std::mt19937 rng(19);
    std::normal_distribution<float> N01(0.0f, 1.0f);
    for (auto &v : st.out_t) v = N01(rng);
    for (auto &v : st.out_p) v = N01(rng) * 2.0f;
    ASSERT_EQ(b->rnd_grad(b, &st.q, M), QF_OK);
    for (int r = 0; r < R; r++) {
        std::vector<double> p(st.out_p.begin() + (size_t)r * M * dim, st.out_p.begin() + (size_t)(r + 1) * M * dim);
        const float *t = &st.out_t[(size_t)r * M * dim];
        auto loss = [&](const std::vector<double> &pp) {
            double s = 0.0;
            for (int m = 0; m < M; m++) {
                double sm = 0.0;
                for (int j = 0; j < dim; j++) sm += (pp[(size_t)m * dim + j] - t[m * dim + j]) * (pp[(size_t)m * dim + j] - t[m * dim + j]);
                s += sm / dim;
            }
            return s / M;
        };
        const double l = loss(p);
        EXPECT_NEAR(st.loss[r], l, 1e-6 * l) << "run " << r;
        const double h = 1e-3;  // the loss is quadratic: central differences are exact up to rounding
        for (size_t i = 0; i < p.size(); i++) {
            std::vector<double> pp = p, pm = p;
            pp[i] += h;
            pm[i] -= h;
            const double fd = (loss(pp) - loss(pm)) / (2.0 * h);
            EXPECT_NEAR(st.dq[(size_t)r * M * dim + i], fd, 1e-6 * std::max(0.1, std::fabs(fd))) << "run " << r << " i=" << i;
        }
    }
}

TEST(ExploreRnd, RewardIsErrorOverTheRunningStdOfTheDiscountedIntrinsicReturn) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 2, E = 5, dim = 3;
    RndState st(R, E, E, {2, 4, dim});
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].gamma = 0.9f;
    hp[0].rnd_episodic = 1;
    hp[1].gamma = 0.5f;
    hp[1].rnd_episodic = 0;
    std::mt19937 rng(23);
    std::normal_distribution<float> N01(0.0f, 1.0f);
    std::vector<double> ret_ref((size_t)R * E, 0.0);
    std::vector<std::vector<double>> all(R);
    std::vector<float> intr((size_t)R * E);
    for (int call = 0; call < 6; call++) {
        for (auto &v : st.out_t) v = N01(rng);
        for (auto &v : st.out_p) v = N01(rng);
        std::vector<uint8_t> flags((size_t)R * E, 0);
        for (size_t i = 0; i < flags.size(); i++) flags[i] = (uint8_t)((i + call) % 3 == 0 ? QF_TERMINAL : (i + call) % 7 == 0 ? QF_TRUNCATED : 0);
        ASSERT_EQ(b->rnd_reward(b, &st.q, hp.data(), E, flags.data(), intr.data()), QF_OK);
        for (int r = 0; r < R; r++) {
            std::vector<double> err(E);
            for (int e = 0; e < E; e++) {
                double s = 0.0;
                for (int j = 0; j < dim; j++) {
                    const double d = (double)st.out_p[((size_t)r * E + e) * dim + j] - st.out_t[((size_t)r * E + e) * dim + j];
                    s += d * d;
                }
                err[e] = s / dim;
                double &rt = ret_ref[(size_t)r * E + e];
                rt = rt * hp[r].gamma + err[e];
                all[r].push_back(rt);
            }
            double mean = 0.0, m2 = 0.0;
            for (double v : all[r]) mean += v;
            mean /= (double)all[r].size();
            for (double v : all[r]) m2 += (v - mean) * (v - mean);
            const double sd = std::sqrt(m2 / (double)all[r].size());
            EXPECT_EQ(st.ret_n[r], (double)all[r].size());
            EXPECT_NEAR(st.ret_mean[r], mean, 1e-5 * mean) << "call " << call << " run " << r;
            EXPECT_NEAR(st.ret_m2[r] / st.ret_n[r], m2 / (double)all[r].size(), 1e-5 * m2 / (double)all[r].size());
            for (int e = 0; e < E; e++) {
                const size_t i = (size_t)r * E + e;
                const double want = err[e] / sd;  // sd > 0: the returns have spread from the first call on
                EXPECT_NEAR(intr[i], want, 1e-5 * want) << "call " << call << " run " << r << " e=" << e;
                if (hp[r].rnd_episodic && (flags[i] & (QF_TERMINAL | QF_TRUNCATED))) ret_ref[i] = 0.0;
                if (ret_ref[i] == 0.0) { EXPECT_EQ(st.ret[i], 0.0f) << "episodic return restarts"; }
                else { EXPECT_NEAR(st.ret[i], ret_ref[i], 1e-5 * ret_ref[i]) << "call " << call << " run " << r << " e=" << e; }
            }
        }
    }
}

// The predictor learns to imitate the target on a state presented over and over: its error (and
// the intrinsic reward of that state) decays towards zero, while a state it never saw keeps its error.
TEST(ExploreRnd, RepeatedStateRewardDecaysWhileANovelStateKeepsItsError) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 2, E = 8, M = 8, D = 4, steps = 300;
    RndState st(R, M, E, {D, 16, 8});
    const std::vector<uint32_t> keys = {101, 0, 101, 1};
    ASSERT_EQ(b->net_init(b, &st.q.net, keys.data(), QF_STREAM_PRIOR, st.target.data()), QF_OK);
    ASSERT_EQ(b->net_init(b, &st.q.net, keys.data(), QF_STREAM_RND_PRED, st.pred.data()), QF_OK);
    EXPECT_FALSE(same_bits(st.target.data(), st.pred.data(), st.target.size())) << "target and predictor differ";
    std::vector<qf_run_hp> hp(R, default_hp());  // lr 1e-2
    std::mt19937 rng(29);
    std::normal_distribution<float> N01(0.0f, 1.0f);
    auto draw_obs = [&]() {
        std::vector<float> o(D);
        for (int d = 0; d < D; d++) o[d] = 10.0f * (float)d + (float)(d + 1) * N01(rng);
        return o;
    };
    // observation statistics from 64 diverse observations, then frozen (update = 0)
    for (int k = 0; k < 8; k++) {
        std::vector<float> x((size_t)R * M * D);
        for (int i = 0; i < R * M; i++) {
            const std::vector<float> o = draw_obs();
            std::copy(o.begin(), o.end(), &x[(size_t)i * D]);
        }
        ASSERT_EQ(b->rnd_input(b, &st.q, M, x.data(), 1), QF_OK);
    }
    const std::vector<float> seen = draw_obs(), novel = draw_obs();
    auto batch_of = [&](const std::vector<float> &o) {
        std::vector<float> x((size_t)R * M * D);
        for (int i = 0; i < R * M; i++) std::copy(o.begin(), o.end(), &x[(size_t)i * D]);
        return x;
    };
    const std::vector<float> xs = batch_of(seen), xv = batch_of(novel);
    // mean squared error of run r, row 0, computed from the outputs in double
    auto forward_err = [&](const std::vector<float> &x, std::vector<double> &err) {
        ASSERT_EQ(b->rnd_input(b, &st.q, M, x.data(), 0), QF_OK);
        ASSERT_EQ(b->net_forward(b, &st.q.net, st.target.data(), M, st.xn.data(), nullptr, st.acts_t.data(), st.out_t.data()), QF_OK);
        ASSERT_EQ(b->net_forward(b, &st.q.net, st.pred.data(), M, st.xn.data(), nullptr, st.acts_p.data(), st.out_p.data()), QF_OK);
        err.assign(R, 0.0);
        for (int r = 0; r < R; r++) {
            for (int j = 0; j < st.dim; j++) {
                const double d = (double)st.out_p[(size_t)r * M * st.dim + j] - st.out_t[(size_t)r * M * st.dim + j];
                err[r] += d * d / st.dim;
            }
        }
    };
    std::vector<double> e0, e_novel0;
    forward_err(xv, e_novel0);
    std::vector<float> intr((size_t)R * E), intr_first, intr_last;
    const std::vector<uint8_t> flags((size_t)R * E, 0);
    for (int it = 0; it < steps; it++) {
        std::vector<double> e;
        forward_err(xs, e);
        if (it == 0) e0 = e;
        ASSERT_EQ(b->rnd_reward(b, &st.q, hp.data(), E, flags.data(), intr.data()), QF_OK);
        if (it == 0) intr_first = intr;
        intr_last = intr;
        ASSERT_EQ(b->rnd_grad(b, &st.q, M), QF_OK);
        for (int r = 0; r < R; r++) EXPECT_NEAR(st.loss[r], e[r], 1e-5 * e[r]) << "it=" << it;
        ASSERT_EQ(b->net_backward(b, &st.q.net, st.pred.data(), M, st.xn.data(), nullptr, st.acts_p.data(), st.dq.data(),
                                  st.grads.data(), st.work.data()),
                  QF_OK);
        ASSERT_EQ(b->adam(b, &st.q.net, hp.data(), st.pred.data(), st.grads.data(), st.adam_m.data(), st.adam_v.data(),
                          st.adam_t.data(), st.status.data(), st.gnorm.data()),
                  QF_OK);
    }
    std::vector<double> eT, e_novel;
    forward_err(xs, eT);
    forward_err(xv, e_novel);
    for (int r = 0; r < R; r++) {
        EXPECT_EQ(st.adam_t[r], steps);
        EXPECT_GT(e0[r], 1e-3) << "run " << r << ": untrained predictor already matches the target";
        EXPECT_LT(eT[r], 0.01 * e0[r]) << "run " << r << ": error of the repeated state did not decay";
        EXPECT_GT(e_novel[r], 10.0 * eT[r]) << "run " << r << ": the novel state's error collapsed too";
        EXPECT_GT(e_novel[r], 0.1 * e_novel0[r]) << "run " << r << ": the novel state's error collapsed too";
        // the intrinsic reward of the repeated state: all envs alike, decaying across calls
        for (int e = 1; e < E; e++) EXPECT_EQ(intr_last[(size_t)r * E + e], intr_last[(size_t)r * E]);
        EXPECT_GT(intr_first[(size_t)r * E], 0.0f);
        EXPECT_LT(intr_last[(size_t)r * E], 0.01f * intr_first[(size_t)r * E])
            << "run " << r << ": first " << intr_first[(size_t)r * E] << ", last " << intr_last[(size_t)r * E];
    }
}

// ================================================================================================
// 9. fleet: a one-head bootstrap that trains on everything, without a prior, is greedy DQN
// ================================================================================================

qf_config fleet_config(const std::vector<std::string> &extra) {
    qf_config c;
    qf_config_default(&c);
    std::vector<std::string> words = {"env=deep_sea", "env.size=8", "envs=4", "batch=16", "buffer=400",
                                      "learning_starts=32", "alpha=0", "target_every=10", "lr=0.01",
                                      "log_every=100000", "seed=5", "runs=2"};
    words.insert(words.end(), extra.begin(), extra.end());
    std::vector<char *> argv;
    for (auto &w : words) argv.push_back(&w[0]);
    char msg[512];
    EXPECT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    return c;
}

std::vector<float> train_params(qf_backend *b, const qf_config &c, int64_t steps, std::vector<float> *init) {
    qf_fleet f;
    char err[512];
    std::vector<float> p;
    EXPECT_EQ(qf_fleet_create(&f, b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    if (!f.block) return p;
    p.resize((size_t)f.R * f.net.K * f.net.P);
    if (init) {
        init->resize(p.size());
        EXPECT_EQ(qf_fleet_get_params(&f, init->data()), QF_OK);
    }
    EXPECT_EQ(qf_fleet_train(&f, steps, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    EXPECT_EQ(qf_fleet_get_params(&f, p.data()), QF_OK);
    qf_fleet_destroy(&f);
    return p;
}

TEST(ExploreFleet, OneHeadBootstrapWithoutPriorOrMasksIsGreedyEpsilon) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    const char *greedy[] = {"explore=epsilon", "eps_start=0", "eps_end=0"};
    for (const std::vector<std::string> &net :
         {std::vector<std::string>{"hidden=[]"}, std::vector<std::string>{"hidden=[16]", "obs=dense"}}) {
        std::vector<std::string> eps = net, boot = net, ucb = net;
        eps.insert(eps.end(), std::begin(greedy), std::end(greedy));
        for (const char *w : {"explore=bootstrap", "heads=1", "prior_scale=0", "mask_p=1"}) {
            boot.push_back(w);
            ucb.push_back(w);
        }
        ucb.push_back("act=ucb");  // one head: mean = Q, std = 0
        std::vector<float> init;
        const std::vector<float> pe = train_params(cpu.b, fleet_config(eps), 300, &init);
        const std::vector<float> pb = train_params(cpu.b, fleet_config(boot), 300, nullptr);
        const std::vector<float> pu = train_params(cpu.b, fleet_config(ucb), 300, nullptr);
        ASSERT_FALSE(pe.empty());
        ASSERT_EQ(pe.size(), pb.size()) << net[0];
        ASSERT_EQ(pe.size(), pu.size()) << net[0];
        EXPECT_FALSE(same_bits(pe.data(), init.data(), pe.size())) << net[0] << ": nothing was learned";
        EXPECT_TRUE(same_bits(pe.data(), pb.data(), pe.size())) << net[0] << ": bootstrap(1 head) != greedy epsilon";
        EXPECT_TRUE(same_bits(pe.data(), pu.data(), pe.size())) << net[0] << ": bootstrap(1 head, ucb) != greedy epsilon";
    }
}


// Runs with different exploration strategies share one fleet (and its shapes: K = the most heads,
// prior networks, RND networks, SimHash tables) without noticing: each run trained alone, with its
// own hyperparameters and key, ends with bit-identical parameters.
TEST(ExploreFleet, MixedStrategiesInOneFleetEqualEachRunAlone) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    const std::vector<std::string> base = {"hidden=[16]", "obs=dense", "simhash_bits=16", "count_table=8"};
    const std::vector<std::vector<std::string>> strategies = {
        {"explore=epsilon"},
        {"explore=bootstrap", "heads=3", "prior_scale=3", "mask_p=0.5"},
        {"explore=rnd", "beta=0.5"},
        {"explore=count", "beta=0.2"},
        {"explore=bootstrap", "heads=2", "act=ucb", "prior_scale=0", "bonus=count"},
        {"explore=boltzmann", "alpha=0.1"}};
    const int R = (int)strategies.size();
    std::vector<qf_run_hp> hp(R);
    std::vector<uint32_t> keys;
    for (int r = 0; r < R; r++) {
        std::vector<std::string> w = base;
        w.insert(w.end(), strategies[r].begin(), strategies[r].end());
        const qf_config c = fleet_config(w);
        qf_fleet_hp_from_config(&c, &hp[r]);
        keys.push_back(900u + (uint32_t)r);
        keys.push_back((uint32_t)r);
    }
    qf_config fc = fleet_config(base), one = fleet_config(base);
    fc.runs = R;
    fc.seeds = 1;
    one.runs = 1;
    one.seeds = 1;
    char err[512];
    qf_fleet fleet;
    ASSERT_EQ(qf_fleet_create(&fleet, cpu.b, &fc, hp.data(), keys.data(), err, sizeof err), QF_OK) << err;
    EXPECT_EQ(fleet.net.K, 3);
    EXPECT_TRUE(fleet.has_prior && fleet.has_rnd && fleet.any_bonus_count);
    EXPECT_EQ(fleet.counts.mode, QF_COUNT_SIMHASH);
    ASSERT_EQ(qf_fleet_train(&fleet, 200, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    std::vector<float> pf((size_t)R * fleet.net.K * fleet.net.P);
    ASSERT_EQ(qf_fleet_get_params(&fleet, pf.data()), QF_OK);
    const int64_t P = fleet.net.P, Kf = fleet.net.K;
    for (int r = 0; r < R; r++) {
        qf_fleet alone;
        ASSERT_EQ(qf_fleet_create(&alone, cpu.b, &one, &hp[r], &keys[2 * r], err, sizeof err), QF_OK) << err;
        ASSERT_EQ(alone.net.P, P);
        ASSERT_EQ(qf_fleet_train(&alone, 200, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        std::vector<float> pa((size_t)alone.net.K * P);
        ASSERT_EQ(qf_fleet_get_params(&alone, pa.data()), QF_OK);
        EXPECT_TRUE(same_bits(pa.data(), &pf[(size_t)r * Kf * P], pa.size()))
            << "run " << r << " (" << strategies[r][0] << ") differs alone vs in the mixed fleet";
        qf_fleet_destroy(&alone);
    }
    qf_fleet_destroy(&fleet);
}


// Wider ensembles than 32 heads: a run of 40 heads with masks (bits 32-39 from the second half of the
// MASK draws) trains every head, and in a fleet beside a 3-head run it equals itself alone.
TEST(ExploreFleet, FortyHeadsTrainEveryHeadAndEqualTheRunAlone) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    const std::vector<std::string> base = {"hidden=[]", "explore=bootstrap", "prior_scale=1", "mask_p=0.5"};
    std::vector<qf_run_hp> hp(2);
    for (int r = 0; r < 2; r++) {
        std::vector<std::string> w = base;
        w.push_back(r == 0 ? "heads=40" : "heads=3");
        const qf_config c = fleet_config(w);
        qf_fleet_hp_from_config(&c, &hp[r]);
    }
    const std::vector<uint32_t> keys = {41, 0, 42, 1};
    qf_config fc = fleet_config(base), one = fleet_config(base);
    fc.runs = 2, fc.seeds = 1, one.runs = 1, one.seeds = 1;
    char err[512];
    qf_fleet fleet;
    ASSERT_EQ(qf_fleet_create(&fleet, cpu.b, &fc, hp.data(), keys.data(), err, sizeof err), QF_OK) << err;
    ASSERT_EQ(fleet.net.K, 40);
    const int64_t P = fleet.net.P;
    std::vector<float> p0((size_t)2 * 40 * P), pf(p0.size());
    ASSERT_EQ(qf_fleet_get_params(&fleet, p0.data()), QF_OK);
    ASSERT_EQ(qf_fleet_train(&fleet, 200, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(qf_fleet_get_params(&fleet, pf.data()), QF_OK);
    for (int k = 0; k < 40; k++)  // run 0: every head learned (each trains on about half the data)
        EXPECT_FALSE(same_bits(&p0[(size_t)k * P], &pf[(size_t)k * P], (size_t)P)) << "head " << k << " never learned";
    for (int k = 3; k < 40; k++)  // run 1: heads beyond its 3 never learn
        EXPECT_TRUE(same_bits(&p0[(size_t)(40 + k) * P], &pf[(size_t)(40 + k) * P], (size_t)P)) << "run 1 head " << k;
    for (int r = 0; r < 2; r++) {
        qf_fleet alone;
        ASSERT_EQ(qf_fleet_create(&alone, cpu.b, &one, &hp[r], &keys[2 * r], err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_train(&alone, 200, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        const int Ka = alone.net.K;
        std::vector<float> pa((size_t)Ka * P);
        ASSERT_EQ(qf_fleet_get_params(&alone, pa.data()), QF_OK);
        EXPECT_TRUE(same_bits(pa.data(), &pf[(size_t)r * 40 * P], (size_t)hp[r].n_heads * P))
            << "run " << r << " differs alone vs in the fleet";
        qf_fleet_destroy(&alone);
    }
    qf_fleet_destroy(&fleet);
}

// The fixed priors' outputs kept with each stored transition (replay.prior_obs / prior_next) are
// the prior networks' forward on the stored s and s' (to float rounding: the forward ran on E rows
// then, on C rows here), and a tabular ensemble (an embedding: a row gather and a bias, exact at any
// batch size) trains bit for bit as when the learner ran the priors' forward at every update (the
// pointers set to NULL: the fleet then keeps nothing). With shared and with per-head batches.
TEST(ExploreFleet, KeptPriorOutputsAreThePriorsForwardAndTrainAsBefore) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    char err[512];
    for (const char *hb : {"head_batch=shared", "head_batch=separate"})
    for (const char *demos : {"demos=0", "demos=3"}) { // with a demo part: its outputs kept too
        const qf_config c = fleet_config({"hidden=[]", "explore=bootstrap", "heads=4", "prior_scale=3", "mask_p=0.5",
                                          "double_q=1", hb, demos});
        std::vector<float> p[2];
        for (int keep = 0; keep < 2; keep++) {
            qf_fleet f;
            ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
            ASSERT_NE(f.replay.prior_obs, nullptr) << "a fleet with priors keeps their outputs";
            EXPECT_EQ(f.replay.demo.prior_obs != nullptr, f.replay.demo.C > 0) << demos;
            if (!keep)
                f.replay.prior_obs = f.replay.prior_next = f.sample.prior_obs = f.sample.prior_next =
                    f.replay.demo.prior_obs = f.replay.demo.prior_next = nullptr;
            ASSERT_EQ(qf_fleet_train(&f, 300, nullptr, nullptr, err, sizeof err), QF_OK) << err;
            p[keep].resize((size_t)f.R * f.net.K * f.net.P);
            ASSERT_EQ(qf_fleet_get_params(&f, p[keep].data()), QF_OK);
            qf_fleet_destroy(&f);
        }
        EXPECT_TRUE(same_bits(p[0].data(), p[1].data(), p[0].size())) << hb << ", " << demos
                                                                       << ": kept priors train differently";
    }
    // dense MLP: the kept outputs against the prior networks' forward on every stored s and s'
    const qf_config c = fleet_config({"hidden=[16]", "obs=dense", "explore=bootstrap", "heads=3", "prior_scale=2"});
    qf_fleet f;
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(qf_fleet_train(&f, 150, nullptr, nullptr, err, sizeof err), QF_OK) << err;  // 600 > 400 slots
    const int64_t G = (int64_t)f.R * f.net.K, C = f.C, A = f.A;
    std::vector<float> acts((size_t)(G * C * f.net.H)), q_obs((size_t)(G * C * A)), q_next(q_obs.size());
    // the replay's obs [R][C][D] is net_forward's input layout for M = C
    ASSERT_EQ(cpu.b->net_forward(cpu.b, &f.net, f.prior, (int32_t)C, f.replay.obs, nullptr, acts.data(), q_obs.data()), QF_OK);
    ASSERT_EQ(cpu.b->net_forward(cpu.b, &f.net, f.prior, (int32_t)C, f.replay.next_obs, nullptr, acts.data(), q_next.data()),
              QF_OK);
    // a row within n u sum|terms| (a one-hot input, then 17 terms per output, |terms| of order 1): 1e-5
    double worst = 0.0;
    for (size_t i = 0; i < q_obs.size(); i++) {
        worst = std::max(worst, std::fabs((double)q_obs[i] - f.replay.prior_obs[i]) / (1.0 + std::fabs(q_obs[i])));
        worst = std::max(worst, std::fabs((double)q_next[i] - f.replay.prior_next[i]) / (1.0 + std::fabs(q_next[i])));
    }
    EXPECT_LE(worst, 1e-5);
    int nonzero = 0;
    for (size_t i = 0; i < q_obs.size(); i++) nonzero += f.replay.prior_obs[i] != 0.0f;
    EXPECT_GT(nonzero, (int)(q_obs.size() / 2)) << "the ring holds the priors' outputs";
    qf_fleet_destroy(&f);
    // the demo part's kept outputs: the priors' forward on its s and s' ([R][Cd][D], the layout of
    // net_forward's input for M = Cd), within the same bound
    const qf_config cd = fleet_config({"hidden=[16]", "obs=dense", "explore=bootstrap", "heads=3", "prior_scale=2",
                                       "demos=3"});
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &cd, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    const qf_demo_part &dp = f.replay.demo;
    ASSERT_GT(dp.C, 0);
    ASSERT_NE(dp.prior_obs, nullptr);
    const int64_t Gd = (int64_t)f.R * f.net.K, Cd = dp.C;
    std::vector<float> dacts((size_t)(Gd * Cd * f.net.H)), d_obs((size_t)(Gd * Cd * A)), d_next(d_obs.size());
    ASSERT_EQ(cpu.b->net_forward(cpu.b, &f.net, f.prior, (int32_t)Cd, dp.obs, nullptr, dacts.data(), d_obs.data()), QF_OK);
    ASSERT_EQ(cpu.b->net_forward(cpu.b, &f.net, f.prior, (int32_t)Cd, dp.next_obs, nullptr, dacts.data(), d_next.data()),
              QF_OK);
    worst = 0.0;
    nonzero = 0;
    for (size_t i = 0; i < d_obs.size(); i++) {
        worst = std::max(worst, std::fabs((double)d_obs[i] - dp.prior_obs[i]) / (1.0 + std::fabs(d_obs[i])));
        worst = std::max(worst, std::fabs((double)d_next[i] - dp.prior_next[i]) / (1.0 + std::fabs(d_next[i])));
        nonzero += dp.prior_obs[i] != 0.0f;
    }
    EXPECT_LE(worst, 1e-5);
    EXPECT_GT(nonzero, (int)(d_obs.size() / 2)) << "the demo part holds the priors' outputs";
    qf_fleet_destroy(&f);
}

// ================================================================================================
// 10. Q-diversity (docs/design-notes.md): the op on a hand-computed ensemble, and the fleet's log
// ================================================================================================

TEST(ExploreQDiversity, HandComputedEnsembles) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 3, K = 3, E = 2, A = 2;
    const qf_net net = make_net(R, K, 1, {4, A});
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].explore = hp[1].explore = QF_EXPLORE_BOOTSTRAP;
    hp[0].n_heads = 3;
    hp[1].n_heads = 2;  // head 2's values must not count
    // q [G][E][A]; per run, (e, a) cells in order (0,0) (0,1) (1,0) (1,1), one row per head
    const float run0[3][4] = {{1, 0, -1, 5}, {1, 0, 2, -1}, {1, 3, 2, 2}};
    const float run1[3][4] = {{0, 1, -3, 2}, {4, 1, 3, -2}, {1e6f, -1e6f, 7, 7}};
    std::vector<float> q((size_t)R * K * E * A, 0.0f);
    for (int k = 0; k < K; k++)
        for (int i = 0; i < E * A; i++) {
            q[(size_t)(0 * K + k) * E * A + i] = run0[k][i];
            q[(size_t)(1 * K + k) * E * A + i] = run1[k][i];
            q[(size_t)(2 * K + k) * E * A + i] = (float)(k * 10 + i);  // epsilon run: untouched
        }
    // run 0: {1,1,1} std 0; {0,0,3} mean 1, squared deviations 1+1+4 = 6, std sqrt(6/3) = sqrt 2;
    // {-1,2,2} mean 1, 4+1+1 = 6, sqrt 2; {5,-1,2} mean 2, 9+9+0 = 18, sqrt 6. Mean (2 sqrt2 + sqrt6)/4.
    const double d0 = (2.0 * std::sqrt(2.0) + std::sqrt(6.0)) / 4.0;
    // run 1 (two heads: std = |a - b| / 2): {0,4} 2, {1,1} 0, {-3,3} 3, {2,-2} 2. Mean 7/4.
    const double d1 = 7.0 / 4.0;
    std::vector<float> acc = {0.25f, 0.0f, 0.5f};
    ASSERT_EQ(b->q_diversity(b, &net, hp.data(), E, q.data(), acc.data()), QF_OK);
    EXPECT_NEAR(acc[0], 0.25 + d0, 4e-7 * (0.25 + d0));
    EXPECT_NEAR(acc[1], d1, 4e-7 * d1);
    EXPECT_EQ(acc[2], 0.5f);
    ASSERT_EQ(b->q_diversity(b, &net, hp.data(), E, q.data(), acc.data()), QF_OK);  // it sums
    EXPECT_NEAR(acc[0], 0.25 + 2 * d0, 8e-7 * (0.25 + 2 * d0));
    EXPECT_NEAR(acc[1], 2 * d1, 8e-7 * d1);
    EXPECT_EQ(acc[2], 0.5f);
    // one head: 0; identical heads: 0
    hp[0].n_heads = 1;
    for (int k = 0; k < K; k++)
        for (int i = 0; i < E * A; i++) q[(size_t)(1 * K + k) * E * A + i] = 3.5f - (float)i;
    acc = {0.0f, 0.0f, 0.0f};
    ASSERT_EQ(b->q_diversity(b, &net, hp.data(), E, q.data(), acc.data()), QF_OK);
    EXPECT_EQ(acc[0], 0.0f);
    EXPECT_EQ(acc[1], 0.0f);
}

// A bandit has one state: with no learning (learning_starts beyond the run) every head's Q(s0, .)
// stays its initial network plus prior, so every step's Q-diversity is the same number, computed
// here in double from the exported parameters; a 64-head run, a 2-head run of the 64-head fleet
// and an epsilon run (no value: NaN) share the fleet.
TEST(ExploreQDiversity, FleetLogsTheMeanOverStepsForBootstrapRunsOnly) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    qf_config c;
    qf_config_default(&c);
    std::vector<std::string> words = {"env=bandit", "env.arms=3", "obs=index", "hidden=[]", "envs=2", "batch=8",
                                      "buffer=64", "learning_starts=100000", "log_every=10", "explore=bootstrap",
                                      "heads=64", "prior_scale=2", "mask_p=0.5", "seed=3"};
    std::vector<char *> argv;
    for (auto &w : words) argv.push_back(&w[0]);
    char msg[512];
    ASSERT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    c.runs = 3;
    c.seeds = 1;
    std::vector<qf_run_hp> hp(3);
    for (auto &h : hp) qf_fleet_hp_from_config(&c, &h);
    hp[1].n_heads = 2;
    hp[2].explore = QF_EXPLORE_EPSILON;
    hp[2].n_heads = 1;
    hp[2].prior_scale = 0.0f;
    qf_fleet f;
    char err[512];
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, hp.data(), nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(f.net.K, 64);
    ASSERT_EQ(f.net.L, 1);
    ASSERT_TRUE(f.has_prior);
    const int64_t P = f.net.P, G = (int64_t)f.R * f.net.K;
    const int A = f.A;
    std::vector<float> w((size_t)(G * P)), pr((size_t)(G * P));
    ASSERT_EQ(qf_fleet_get_params(&f, w.data()), QF_OK);
    ASSERT_EQ(cpu.b->download(cpu.b, pr.data(), f.prior, sizeof(float) * pr.size()), QF_OK);
    struct Log {
        std::vector<std::vector<double>> qd;
    } log;
    auto keep = [](void *ctx, const qf_fleet *fl, const qf_log_point *p) {
        std::vector<double> v;
        for (int r = 0; r < fl->R; r++) v.push_back(p[r].q_diversity);
        static_cast<Log *>(ctx)->qd.push_back(v);
    };
    ASSERT_EQ(qf_fleet_train(&f, 30, keep, &log, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(log.qd.size(), 3u);
    for (int r = 0; r < 2; r++) {
        // Q_k(s0, a) = W_k[0][a] + b_k[a] + prior_scale (Wp_k[0][a] + bp_k[a]) (one layer, row 0)
        const int n = hp[r].n_heads;
        double d = 0.0;
        for (int a = 0; a < A; a++) {
            std::vector<double> qk(n);
            double m = 0.0;
            for (int k = 0; k < n; k++) {
                const size_t blk = (size_t)((int64_t)r * 64 + k) * P;
                qk[k] = (double)w[blk + f.net.off_w[0] + a] + w[blk + f.net.off_b[0] + a] +
                        (double)hp[r].prior_scale * ((double)pr[blk + f.net.off_w[0] + a] + pr[blk + f.net.off_b[0] + a]);
                m += qk[k] / n;
            }
            double ss = 0.0;
            for (int k = 0; k < n; k++) ss += (qk[k] - m) * (qk[k] - m);
            d += std::sqrt(ss / n) / A;
        }
        ASSERT_GT(d, 0.0);
        // float: Q rows within 4 ulp of |Q| sums, the std's two passes within (2n + 4) ulp of max|Q|,
        // 10 steps summed: 1e-5 relative is above all of it for |Q| of a few units
        for (const auto &pt : log.qd) EXPECT_NEAR(pt[r], d, 1e-5 * (1.0 + d)) << "run " << r;
    }
    for (const auto &pt : log.qd) EXPECT_TRUE(std::isnan(pt[2])) << "epsilon run: no Q-diversity";
    qf_fleet_destroy(&f);
}

// backend.h's `learn` contract written out: the backend's operations one after another.
int learn_in_turn(qf_backend *b, const qf_learn_args *a) {
    const qf_net *n = a->net;
    qf_sample *s = a->s;
    auto q_forward = [&](const float *params, const float *x, const int32_t *xi, float *acts, float *q, bool reuse,
                         const float *kept) {
        if (b->net_forward(b, n, params, a->B, x, xi, acts, q) != QF_OK) return false;
        if (!a->prior) return true;
        if (kept) return b->add_prior(b, n, a->hp, a->B, q, kept) == QF_OK;  // kept with the transitions
        return (reuse || b->net_forward(b, n, a->prior, a->B, x, xi, a->acts_tmp, a->qp) == QF_OK) &&
               b->add_prior(b, n, a->hp, a->B, q, a->qp) == QF_OK;
    };
    const bool ok =
        b->replay_sample(b, a->replay, a->B, a->stored, a->update, a->keys, s) == QF_OK &&
        (!a->counts || b->count_bonus(b, a->counts, a->hp, a->B, s) == QF_OK) &&
        q_forward(a->target, s->next_obs, s->next_idx, a->acts_tmp, a->qt, false, s->prior_next) &&
        (!a->qo || q_forward(a->params, s->next_obs, s->next_idx, a->acts_tmp, a->qo, true, s->prior_next)) &&
        q_forward(a->params, s->obs, s->idx, a->acts, a->q, false, s->prior_obs) &&
        b->td(b, n, a->hp, a->B, s, a->q, a->qt, a->qo, a->dq, a->loss, a->qmean, a->imean) == QF_OK &&
        b->net_backward(b, n, a->params, a->B, s->obs, s->idx, a->acts, a->dq, a->grads, a->work) == QF_OK &&
        b->adam(b, n, a->hp, a->params, a->grads, a->adam_m, a->adam_v, a->adam_t, a->status, a->gnorm) == QF_OK &&
        (!a->rnd || qf_learn_rnd_step(b, a) == QF_OK) &&
        (!a->target_mode ||
         b->target_update(b, n, a->hp, a->params, a->target, a->status, a->target_mode == 2) == QF_OK);
    return ok ? QF_OK : QF_ERR;
}

// The CPU backend's learner update (learn: each network's forward-to-backward on one core while its
// data is in that core's caches, then each run's Adam) equals its operations called one after
// another as backend.h's contract lists them, bit for bit: for a fleet mixing every strategy
// (priors, masks, RND, count bonuses), with and without double Q and with Polyak or copied targets,
// with one thread and with two (one run and three heads: the heads spread over the threads).
// Parameters, targets and Adam moments are compared.
TEST(ExploreFleet, LearnEqualsTheOperationsInTurn) {
    CpuBackend fused, ops;
    ASSERT_NE(fused.b, nullptr);
    ASSERT_NE(ops.b, nullptr);
    ASSERT_NE(fused.b->learn, nullptr);
    ops.b->learn = learn_in_turn;
    const std::vector<std::vector<std::string>> all = {
        {"explore=epsilon"},
        {"explore=bootstrap", "heads=3", "prior_scale=3", "mask_p=0.5"},
        {"explore=rnd", "beta=0.5"},
        {"explore=count", "beta=0.2"},
        {"explore=bootstrap", "heads=2", "act=ucb", "prior_scale=0", "bonus=count"}};
    std::vector<std::vector<std::string>> no_rnd = all;
    no_rnd.erase(no_rnd.begin() + 2); // without RND the CPU does the target update with Adam
    struct Case {
        const std::vector<std::vector<std::string>> *strategies;
        std::vector<std::string> extra;
    };
    const std::vector<std::vector<std::string>> one_ensemble = {all[1]};
    for (int threads = 1; threads <= 2; threads++)
    for (const Case &cs : {Case{&all, {"double_q=1", "tau=0.05"}}, Case{&no_rnd, {"double_q=1", "tau=0.05"}},
                           Case{&no_rnd, {"double_q=0", "target_every=7"}}, Case{&one_ensemble, {"double_q=1", "tau=0.05"}}}) {
        qf_cpu_set_threads(threads);
        const std::vector<std::vector<std::string>> &strategies = *cs.strategies;
        const std::vector<std::string> &extra = cs.extra;
        std::vector<std::string> base = {"hidden=[16,8]", "obs=dense", "simhash_bits=16", "count_table=8"};
        base.insert(base.end(), extra.begin(), extra.end());
        const int R = (int)strategies.size();
        std::vector<qf_run_hp> hp(R);
        std::vector<uint32_t> keys;
        for (int r = 0; r < R; r++) {
            std::vector<std::string> w = base;
            w.insert(w.end(), strategies[r].begin(), strategies[r].end());
            const qf_config c = fleet_config(w);
            qf_fleet_hp_from_config(&c, &hp[r]);
            keys.push_back(700u + (uint32_t)r);
            keys.push_back((uint32_t)r);
        }
        qf_config fc = fleet_config(base);
        fc.runs = R;
        fc.seeds = 1;
        char err[512];
        qf_fleet a, b;
        ASSERT_EQ(qf_fleet_create(&a, fused.b, &fc, hp.data(), keys.data(), err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_create(&b, ops.b, &fc, hp.data(), keys.data(), err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_train(&a, 150, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_train(&b, 150, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        ASSERT_GT(a.n_updates, 50u) << "the comparison must cover learner updates";
        const size_t n = (size_t)R * a.net.K * a.net.P;
        const std::string what = extra[0] + ", " + std::to_string(R) + " runs, threads=" + std::to_string(threads);
        EXPECT_TRUE(same_bits(a.params, b.params, n)) << what << ": parameters differ";
        EXPECT_TRUE(same_bits(a.target, b.target, n)) << what << ": targets differ";
        EXPECT_TRUE(same_bits(a.adam_m, b.adam_m, n) && same_bits(a.adam_v, b.adam_v, n)) << what << ": Adam moments differ";
        if (extra[1] == "tau=0.05") {
            EXPECT_FALSE(same_bits(a.target, a.params, n)) << "Polyak targets lag the parameters";
        }
        qf_fleet_destroy(&a);
        qf_fleet_destroy(&b);
    }
    qf_cpu_set_threads(0);
}

// A fleet of one network (one run, one head) shares each update over the team (learn_split in
// kernels/cpu/learn_cpu.c: rows, dW rows, bias columns, parameter ranges): with two threads it
// must give the bits of the operations in turn on one thread. The networks are large enough
// (batch x parameters >= 2^18) for the shared path; dense one-hot inputs take the sparse GEMM.
TEST(ExploreFleet, OneNetworkSharedOverTheTeamEqualsTheOperationsInTurn) {
    CpuBackend fused, ops;
    ASSERT_NE(fused.b, nullptr);
    ASSERT_NE(ops.b, nullptr);
    ops.b->learn = learn_in_turn;
    const std::vector<std::vector<std::string>> cases = {
        {"explore=epsilon", "obs=dense", "hidden=[128,96]", "double_q=1", "tau=0.05"},
        {"explore=epsilon", "obs=index", "hidden=[128,96]", "double_q=0", "target_every=7"},
        {"explore=bootstrap", "heads=1", "prior_scale=3", "obs=dense", "hidden=[128,96]", "activation=gelu",
         "double_q=1", "tau=0.05"},
        {"explore=epsilon", "obs=dense", "hidden=[400]", "double_q=1", "tau=0.05"}};
    for (const auto &w : cases) {
        qf_config fc = fleet_config(w);
        fc.runs = 1;
        fc.seeds = 1;
        char err[512];
        qf_fleet a, b;
        qf_cpu_set_threads(2);
        ASSERT_EQ(qf_fleet_create(&a, fused.b, &fc, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        ASSERT_GE((int64_t)a.B * a.net.P, (int64_t)1 << 18) << "too small for the shared path";
        ASSERT_EQ(qf_fleet_train(&a, 150, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        qf_cpu_set_threads(1);
        ASSERT_EQ(qf_fleet_create(&b, ops.b, &fc, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_train(&b, 150, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        ASSERT_GT(a.n_updates, 50u) << "the comparison must cover learner updates";
        const size_t n = (size_t)a.net.K * a.net.P;
        std::string what;
        for (const std::string &word : w) what += word + " ";
        EXPECT_TRUE(same_bits(a.params, b.params, n)) << what << ": parameters differ";
        EXPECT_TRUE(same_bits(a.target, b.target, n)) << what << ": targets differ";
        EXPECT_TRUE(same_bits(a.adam_m, b.adam_m, n) && same_bits(a.adam_v, b.adam_v, n)) << what << ": Adam moments differ";
        qf_fleet_destroy(&a);
        qf_fleet_destroy(&b);
    }
    qf_cpu_set_threads(0);
}

}  // namespace

// rnd_warmup (Burda et al. 2018: RND's observation normalization starts from a random agent's
// steps): the statistics of DeepSea's dense observations after W warm-up steps and one training
// step, against what DeepSea's dynamics fix whatever the actions: the agent falls one row per step,
// so the next observation of step s of an episode is the one-hot of a cell in row s + 1 (all zeros
// after the last row, as bsuite). Per dimension the data are 0/1, so the variance is mean (1 - mean)
// exactly; the means of a row sum to the share of observations in that row. Nothing is stored or
// learned in the warm-up: the fleet is at step 1 with one step's transitions.
TEST(ExploreFleet, RndWarmupFillsObservationStatisticsFromRandomSteps) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    const int N = 3, W = 7, E = 4;
    qf_config c = fleet_config({"env.size=3", "obs=dense", "hidden=[8]", "explore=rnd", "beta=0.5",
                                "rnd_warmup=7", "learning_starts=1000"});
    char err[512];
    qf_fleet f;
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(f.E, E);
    ASSERT_EQ(f.D, N * N);
    ASSERT_EQ(qf_fleet_train(&f, 1, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    EXPECT_EQ(f.t, 1);
    // rows of the next observations: warm-up steps s = 0..W-1 give row (s mod N) + 1 (none at the
    // last step of an episode), the training step 0 gives row 1
    std::vector<double> row_share(N, 0.0);
    for (int s = 0; s < W; s++)
        if (s % N + 1 < N) row_share[s % N + 1] += 1.0;
    row_share[1] += 1.0;
    const double n = (double)(W + 1) * E;
    for (auto &v : row_share) v *= E / n;
    for (int r = 0; r < f.R; r++) {
        EXPECT_EQ(f.rnd.obs_n[r], n) << "run " << r;
        for (int row = 0; row < N; row++) {
            double sum = 0.0;
            for (int col = 0; col < N; col++) {
                const int d = row * N + col;
                const double mean = f.rnd.obs_mean[(size_t)r * f.D + d];
                const double var = f.rnd.obs_m2[(size_t)r * f.D + d] / n;
                EXPECT_NEAR(var, mean * (1.0 - mean), 1e-12) << "run " << r << " dim " << d;
                if (col > row) {
                    EXPECT_EQ(mean, 0.0) << "cell (" << row << ", " << col << ") is unreachable";
                }
                sum += mean;
            }
            EXPECT_NEAR(sum, row_share[row], 1e-12) << "run " << r << " row " << row;
        }
    }
    qf_fleet_destroy(&f);
    // without the warm-up: one step's E observations
    qf_config c0 = fleet_config({"env.size=3", "obs=dense", "hidden=[8]", "explore=rnd", "beta=0.5",
                                 "learning_starts=1000"});
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c0, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(qf_fleet_train(&f, 1, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    for (int r = 0; r < f.R; r++) EXPECT_EQ(f.rnd.obs_n[r], (double)E);
    qf_fleet_destroy(&f);
}
