// test_envs.cc — every environment against its published semantics: bsuite DeepSea (Osband et al.
// 2019, bsuite/environments/deep_sea.py), Gymnasium CartPole-v1 and MountainCar-v0 (re-implemented
// here in double precision, step for step), the RiverSwim-style chain and the Bernoulli bandit
// (hand-computed returns and binomial bounds), plus auto-reset and episode statistics of the CPU
// batch. Statistical checks use fixed seeds and 5-standard-error bounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <vector>

#include "envs/envs.h"
#include "envs/spec.h"
#include "host/vecenv.h"

namespace {

constexpr uint32_t kSeed = 20240917u;  // key word 0 of the run (its seed)
constexpr uint32_t kRun = 3u;          // key word 1 (run id)

qf_env_params defaults(int kind) {
    qf_env_params p;
    qf_env_params_default(kind, &p);
    return p;
}

struct Step {
    float reward;
    uint32_t flags;
};

// One transition with the STEP stream of (run kSeed/kRun, env, step s.t), as the batch draws it.
Step step_env(int kind, const qf_env_params &p, qf_env_state &s, int32_t action, uint32_t env = 0,
              uint32_t k0 = kSeed, uint32_t k1 = kRun) {
    qf_rng g = qf_rng_make(k0, k1, QF_STREAM_STEP, env, static_cast<uint32_t>(s.t));
    Step out{0.0f, 0u};
    out.reward = qf_env_step(kind, &p, &s, action, &g, k0, k1, &out.flags);
    return out;
}

// `flag` when cond holds, else no flag.
uint32_t flag_if(bool cond, uint32_t flag) { return cond ? flag : 0u; }

qf_env_state zero_state() {
    qf_env_state s;
    std::memset(&s, 0, sizeof s);
    return s;
}

// Fraction hits/n against probability p: within 5 binomial standard errors.
void expect_rate(long hits, long n, double p, const char *what) {
    const double se = std::sqrt(p * (1.0 - p) / static_cast<double>(n));
    EXPECT_NEAR(static_cast<double>(hits) / static_cast<double>(n), p, 5.0 * se) << what;
}

// Sample mean and variance against a distribution with the given mean, variance and fourth central
// moment: SE(mean) = sqrt(var/n), SE(sample variance) = sqrt((mu4 - var^2)/n).
void expect_moments(const std::vector<double> &xs, double mean, double var, double mu4, const char *what) {
    const double n = static_cast<double>(xs.size());
    double s1 = 0.0, s2 = 0.0;
    for (double x : xs) s1 += x;
    const double m = s1 / n;
    for (double x : xs) s2 += (x - m) * (x - m);
    EXPECT_NEAR(m, mean, 5.0 * std::sqrt(var / n)) << what << ": mean";
    EXPECT_NEAR(s2 / n, var, 5.0 * std::sqrt((mu4 - var * var) / n)) << what << ": variance";
}

// ---------------------------------------------------------------------------------------------
// DeepSea helpers

qf_env_params deep_sea(int32_t n, int32_t stochastic = 0) {
    qf_env_params p = defaults(QF_ENV_DEEP_SEA);
    p.deep_sea.size = n;
    p.deep_sea.stochastic = stochastic;
    return p;
}

// The action that moves right (want_right) or left in the current cell of s.
int32_t deep_sea_action(const qf_env_params &p, const qf_env_state &s, bool want_right,
                        uint32_t k0 = kSeed, uint32_t k1 = kRun) {
    const int right = qf_deep_sea_right_action(&p.deep_sea, k0, k1, s.t, s.i[0]);
    return want_right ? right : 1 - right;
}

struct Episode {
    std::vector<float> rewards;
    std::vector<uint32_t> flags;
    std::vector<int32_t> index;  // state index after each step
    std::vector<int32_t> col;    // column after each step
    float ret = 0.0f;            // float-accumulated return, as the batch accumulates it
};

// One DeepSea episode from reset; policy(row, col) says whether to move right.
Episode run_deep_sea(const qf_env_params &p, const std::function<bool(int, int)> &policy,
                     uint32_t env = 0) {
    qf_env_state s = zero_state();
    qf_rng g = qf_rng_make(kSeed, kRun, QF_STREAM_RESET, env, 0);  // unused by DeepSea
    qf_env_reset(QF_ENV_DEEP_SEA, &p, &s, &g);
    EXPECT_EQ(qf_env_state_index(QF_ENV_DEEP_SEA, &p, &s), 0);
    Episode ep;
    for (int k = 0; k < p.deep_sea.size; k++) {
        const Step st = step_env(QF_ENV_DEEP_SEA, p, s, deep_sea_action(p, s, policy(s.t, s.i[0])), env);
        ep.rewards.push_back(st.reward);
        ep.flags.push_back(st.flags);
        ep.index.push_back(qf_env_state_index(QF_ENV_DEEP_SEA, &p, &s));
        ep.col.push_back(s.i[0]);
        ep.ret += st.reward;
        // Dense observation: one-hot at the index, all zeros after the end.
        std::vector<float> obs(static_cast<size_t>(qf_env_obs_dim(QF_ENV_DEEP_SEA, &p)), -1.0f);
        qf_env_observe(QF_ENV_DEEP_SEA, &p, &s, obs.data());
        for (size_t j = 0; j < obs.size(); j++)
            EXPECT_EQ(obs[j], static_cast<int32_t>(j) == ep.index.back() ? 1.0f : 0.0f) << "cell " << j;
    }
    return ep;
}

// Flags of every step but the last are 0; the last is TERMINAL plus `last_extra`.
void expect_deep_sea_flags(const Episode &ep, uint32_t last_extra) {
    for (size_t k = 0; k + 1 < ep.flags.size(); k++) EXPECT_EQ(ep.flags[k], 0u) << "step " << k;
    EXPECT_EQ(ep.flags.back(), QF_TERMINAL | last_extra);
}

}  // namespace

// =============================================================================================
// DeepSea

TEST(EnvDeepSea, AllRightFindsTreasureWithReturn099) {
    const int n = 10;
    const qf_env_params p = deep_sea(n);
    const Episode ep = run_deep_sea(p, [](int, int) { return true; });
    // Each right move costs 0.01/N; the last one (column N-1) also pays +1.
    for (int k = 0; k < n - 1; k++) {
        EXPECT_FLOAT_EQ(ep.rewards[k], -0.001f) << k;  // 0.01f / 10 in float: within 4 ulp
        EXPECT_EQ(ep.index[k], (k + 1) * n + (k + 1)) << k;  // one row down, one column right
    }
    EXPECT_FLOAT_EQ(ep.rewards[n - 1], 1.0f - 0.001f);
    EXPECT_NEAR(ep.ret, 0.99, 1e-6);
    EXPECT_EQ(ep.index[n - 1], n * n);  // null observation after the end
    expect_deep_sea_flags(ep, QF_TREASURE);
}

TEST(EnvDeepSea, AllLeftEarnsNothingAndIsBad) {
    const int n = 10;
    const Episode ep = run_deep_sea(deep_sea(n), [](int, int) { return false; });
    for (int k = 0; k < n; k++) {
        EXPECT_EQ(ep.rewards[k], 0.0f) << k;
        EXPECT_EQ(ep.col[k], 0) << k;  // clipped at the left wall
    }
    for (int k = 0; k < n - 1; k++) EXPECT_EQ(ep.index[k], (k + 1) * n) << k;
    EXPECT_EQ(ep.ret, 0.0f);
    expect_deep_sea_flags(ep, QF_BAD_EPISODE);  // left at (row 0, col 0), on the diagonal
}

TEST(EnvDeepSea, HandCheckedDeviations) {
    const int n = 6;
    const qf_env_params p = deep_sea(n);
    // Right once, then left: the left at (row 1, col 1) is on the diagonal -> bad.
    Episode ep = run_deep_sea(p, [](int row, int) { return row == 0; });
    EXPECT_EQ(ep.col, (std::vector<int32_t>{1, 0, 0, 0, 0, 0}));
    EXPECT_FLOAT_EQ(ep.ret, -0.01f / n);
    expect_deep_sea_flags(ep, QF_BAD_EPISODE);

    // Right until the last row, then left at (N-1, N-1): bad, no treasure, N-1 move costs.
    ep = run_deep_sea(p, [n](int row, int) { return row < n - 1; });
    EXPECT_EQ(ep.col, (std::vector<int32_t>{1, 2, 3, 4, 5, 4}));
    EXPECT_NEAR(ep.ret, -(n - 1) * 0.01 / n, 1e-7);
    expect_deep_sea_flags(ep, QF_BAD_EPISODE);

    // Left, then right to the end: the bad flag is sticky (bsuite sets it, never clears it) and is
    // reported only on the terminal step; the right edge is never reached, so no treasure.
    ep = run_deep_sea(p, [](int row, int) { return row > 0; });
    EXPECT_EQ(ep.col, (std::vector<int32_t>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(ep.index[n - 2], (n - 1) * n + 4);
    EXPECT_NEAR(ep.ret, -(n - 1) * 0.01 / n, 1e-7);
    expect_deep_sea_flags(ep, QF_BAD_EPISODE);
}

TEST(EnvDeepSea, SizeOneIsASingleStep) {
    const qf_env_params p = deep_sea(1);
    // Right in column N-1 = 0 pays 1 - move_cost/1; left on the diagonal is bad.
    Episode ep = run_deep_sea(p, [](int, int) { return true; });
    EXPECT_EQ(ep.rewards, std::vector<float>{1.0f - 0.01f});
    EXPECT_EQ(ep.flags, std::vector<uint32_t>{QF_TERMINAL | QF_TREASURE});
    EXPECT_EQ(ep.index, std::vector<int32_t>{1});
    ep = run_deep_sea(p, [](int, int) { return false; });
    EXPECT_EQ(ep.rewards, std::vector<float>{0.0f});
    EXPECT_EQ(ep.flags, std::vector<uint32_t>{QF_TERMINAL | QF_BAD_EPISODE});
}

TEST(EnvDeepSea, MappingIsAFairCoinPerCellAndSharedUnlessPerRun) {
    const int n = 64;
    qf_env_params shared = deep_sea(n), per_run = deep_sea(n), other_seed = deep_sea(n);
    per_run.deep_sea.map_per_run = 1;
    other_seed.deep_sea.map_seed = 43;
    long ones = 0, diff_keys_shared = 0, diff_keys_per_run = 0, diff_seed = 0, diff_neighbour = 0;
    for (int row = 0; row < n; row++) {
        for (int col = 0; col < n; col++) {
            const int a = qf_deep_sea_right_action(&shared.deep_sea, 1u, 2u, row, col);
            ASSERT_TRUE(a == 0 || a == 1);
            ones += a;
            diff_keys_shared += a != qf_deep_sea_right_action(&shared.deep_sea, 777u, 9u, row, col);
            diff_seed += a != qf_deep_sea_right_action(&other_seed.deep_sea, 1u, 2u, row, col);
            diff_keys_per_run += qf_deep_sea_right_action(&per_run.deep_sea, 1u, 2u, row, col) !=
                                 qf_deep_sea_right_action(&per_run.deep_sea, 777u, 9u, row, col);
            if (col > 0) diff_neighbour += a != qf_deep_sea_right_action(&shared.deep_sea, 1u, 2u, row, col - 1);
        }
    }
    const long cells = static_cast<long>(n) * n;
    expect_rate(ones, cells, 0.5, "fraction of cells where action 1 is right");
    EXPECT_EQ(diff_keys_shared, 0) << "map_per_run=0: the mapping must not depend on the run key";
    expect_rate(diff_keys_per_run, cells, 0.5, "map_per_run=1: two run keys, independent mappings");
    expect_rate(diff_seed, cells, 0.5, "map_seed 42 vs 43: independent mappings");
    expect_rate(diff_neighbour, static_cast<long>(n) * (n - 1), 0.5, "adjacent cells independent");
}

TEST(EnvDeepSea, MappingIsIndependentAcrossBlocksOf128Columns) {
    // bsuite draws every cell independently; cells 128 columns apart must agree only half the time.
    const int n = 256;
    const qf_env_params p = deep_sea(n);
    long agree = 0;
    for (int row = 0; row < n; row++)
        for (int col = 0; col < 128; col++)
            agree += qf_deep_sea_right_action(&p.deep_sea, kSeed, kRun, row, col) ==
                     qf_deep_sea_right_action(&p.deep_sea, kSeed, kRun, row, col + 128);
    expect_rate(agree, static_cast<long>(n) * 128, 0.5, "cells (r, c) and (r, c + 128)");
}


TEST(EnvDeepSea, PhiloxTableHoldsEveryCellsMappingBit) {
    // The CPU backend reads mapping=philox from a table filled once per block of envs: every bit of
    // it must be the per-cell function's (what the CUDA kernel computes per step), for every size
    // the table takes, shared and per-run mappings, and no bit set past the N*N cells.
    for (int n = 1; n <= QF_DEEP_SEA_TABLE_MAX; n++) {
        for (int per_run = 0; per_run < 2; per_run++) {
            qf_env_params p = deep_sea(n);
            p.deep_sea.map_per_run = per_run;
            p.deep_sea.map_seed = 42 + n;
            uint32_t bits[QF_DEEP_SEA_TABLE_CELLS / 32];
            std::memset(bits, 0xff, sizeof bits);
            qf_deep_sea_philox_table(&p.deep_sea, kSeed + (uint32_t)n, kRun, bits);
            for (int cell = 0; cell < QF_DEEP_SEA_TABLE_CELLS; cell++) {
                const int bit = (int)((bits[cell / 32] >> (cell % 32)) & 1u);
                const int want = cell < n * n ? qf_deep_sea_right_action(&p.deep_sea, kSeed + (uint32_t)n, kRun,
                                                                         cell / n, cell % n)
                                              : 0;
                ASSERT_EQ(bit, want) << "N=" << n << " map_per_run=" << per_run << " cell " << cell;
            }
        }
    }
}
TEST(EnvDeepSea, StochasticRightFailsWithProbabilityOneOverN) {
    const int n = 10;
    const qf_env_params p = deep_sea(n, 1);
    const long envs = 200000;
    long failed = 0;
    for (long e = 0; e < envs; e++) {
        qf_env_state s = zero_state();
        const Step st = step_env(QF_ENV_DEEP_SEA, p, s, deep_sea_action(p, s, true), static_cast<uint32_t>(e));
        ASSERT_TRUE(s.i[0] == 0 || s.i[0] == 1);
        failed += s.i[0] == 0;
        ASSERT_FLOAT_EQ(st.reward, -0.001f) << "the move cost is paid even when the move fails (bsuite)";
        ASSERT_EQ(st.flags, 0u);
    }
    expect_rate(failed, envs, 1.0 / n, "failure rate of right moves");
}

TEST(EnvDeepSea, StochasticNoiseOnlyAtTheLastRowsEndCells) {
    const int n = 8;
    const qf_env_params p = deep_sea(n, 1);
    const long envs = 100000;
    std::vector<double> left_end, right_end;
    for (long e = 0; e < envs; e++) {
        const uint32_t env = static_cast<uint32_t>(e);
        // (row N-1, col 0), moving left: reward = noise.
        qf_env_state s = zero_state();
        s.t = n - 1;
        left_end.push_back(step_env(QF_ENV_DEEP_SEA, p, s, deep_sea_action(p, s, false), env).reward);
        // (row N-1, col N-1), moving right: reward = 1 + noise - move_cost/N, treasure.
        s = zero_state();
        s.t = n - 1;
        s.i[0] = n - 1;
        const Step st = step_env(QF_ENV_DEEP_SEA, p, s, deep_sea_action(p, s, true), env);
        ASSERT_EQ(st.flags, QF_TERMINAL | QF_TREASURE);
        right_end.push_back(st.reward - (1.0 - 0.01 / n));
        // Interior cell of the last row and end cell of an earlier row: no noise at all.
        s = zero_state();
        s.t = n - 1;
        s.i[0] = n / 2;
        ASSERT_EQ(step_env(QF_ENV_DEEP_SEA, p, s, deep_sea_action(p, s, false), env).reward, 0.0f);
        s = zero_state();
        s.t = n - 2;
        ASSERT_EQ(step_env(QF_ENV_DEEP_SEA, p, s, deep_sea_action(p, s, false), env).reward, 0.0f);
    }
    expect_moments(left_end, 0.0, 1.0, 3.0, "N(0,1) noise at the bottom-left cell");
    expect_moments(right_end, 0.0, 1.0, 3.0, "N(0,1) noise at the bottom-right cell");
}

TEST(EnvDeepSea, StochasticLeftAfterAFailedRightIsNotBad) {
    // After a failed right move the agent is off the diagonal (col < row) and can never return to
    // it, so a later left move must not mark the episode bad.
    const int n = 4;
    const qf_env_params p = deep_sea(n, 1);
    int found = 0;
    for (uint32_t e = 0; e < 200 && found < 5; e++) {
        qf_env_state s = zero_state();
        step_env(QF_ENV_DEEP_SEA, p, s, deep_sea_action(p, s, true), e);
        if (s.i[0] != 0) continue;  // the right move succeeded; look for one that failed
        found++;
        uint32_t flags = 0;
        while (s.t < n) flags = step_env(QF_ENV_DEEP_SEA, p, s, deep_sea_action(p, s, false), e).flags;
        EXPECT_EQ(flags, QF_TERMINAL) << "env " << e;
    }
    EXPECT_EQ(found, 5) << "P(right fails) = 1/4; 5 failures among 200 envs are certain for all practical purposes";
}

// =============================================================================================
// CartPole-v1: Gymnasium's step in double precision

namespace {

struct CartRef {
    double x, x_dot, theta, theta_dot;
};

// gymnasium/envs/classic_control/cartpole.py, CartPoleEnv.step (euler), returns `terminated`.
bool cartpole_ref_step(CartRef &s, int action) {
    const double gravity = 9.8, masscart = 1.0, masspole = 0.1, total_mass = masspole + masscart;
    const double length = 0.5, polemass_length = masspole * length, force_mag = 10.0, tau = 0.02;
    const double theta_threshold = 12 * 2 * M_PI / 360, x_threshold = 2.4;
    const double force = action == 1 ? force_mag : -force_mag;
    const double costheta = std::cos(s.theta), sintheta = std::sin(s.theta);
    const double temp = (force + polemass_length * s.theta_dot * s.theta_dot * sintheta) / total_mass;
    const double thetaacc = (gravity * sintheta - costheta * temp) /
                            (length * (4.0 / 3.0 - masspole * costheta * costheta / total_mass));
    const double xacc = temp - polemass_length * thetaacc * costheta / total_mass;
    s.x = s.x + tau * s.x_dot;
    s.x_dot = s.x_dot + tau * xacc;
    s.theta = s.theta + tau * s.theta_dot;
    s.theta_dot = s.theta_dot + tau * thetaacc;
    return s.x < -x_threshold || s.x > x_threshold || s.theta < -theta_threshold || s.theta > theta_threshold;
}

qf_env_state cartpole_state(float x, float x_dot, float theta, float theta_dot) {
    qf_env_state s = zero_state();
    s.f[0] = x;
    s.f[1] = x_dot;
    s.f[2] = theta;
    s.f[3] = theta_dot;
    return s;
}

CartRef cartpole_ref_of(const qf_env_state &s) { return CartRef{s.f[0], s.f[1], s.f[2], s.f[3]}; }

// A linear state-feedback controller that balances the pole indefinitely from near-upright states.
int balance(double x, double x_dot, double theta, double theta_dot) {
    return theta + 0.3 * theta_dot + 0.01 * x + 0.05 * x_dot > 0.0 ? 1 : 0;
}

qf_env_params cartpole(int32_t horizon) {
    qf_env_params p = defaults(QF_ENV_CARTPOLE);
    p.cartpole.horizon = horizon;
    return p;
}

}  // namespace

TEST(EnvCartPole, DefaultsAreCartPoleV1) { EXPECT_EQ(defaults(QF_ENV_CARTPOLE).cartpole.horizon, 500); }

TEST(EnvCartPole, FiftyStepTrajectoryMatchesDoubleReference) {
    const qf_env_params p = cartpole(500);
    qf_env_state s = cartpole_state(0.01f, -0.02f, 0.03f, 0.04f);
    CartRef ref = cartpole_ref_of(s);  // the same start, exactly
    for (int k = 1; k <= 50; k++) {
        const int action = __builtin_popcount(static_cast<unsigned>(k)) & 1;  // Thue-Morse sequence
        const bool ref_terminated = cartpole_ref_step(ref, action);
        const Step st = step_env(QF_ENV_CARTPOLE, p, s, action);
        // About eight float roundings per step (relative 2^-24 each, ~5e-7 together) are
        // amplified by the unstable pole, whose linearised growth rate is
        // sqrt(g / (l (4/3 - m_pole/m_total))) ~ 4 /s, i.e. a factor e^(4 k tau) after k steps.
        const double growth = 5e-7 * std::exp(4.0 * k * 0.02);
        const double got[4] = {s.f[0], s.f[1], s.f[2], s.f[3]};
        const double want[4] = {ref.x, ref.x_dot, ref.theta, ref.theta_dot};
        for (int j = 0; j < 4; j++)
            ASSERT_NEAR(got[j], want[j], growth * (1.0 + std::fabs(want[j]))) << "step " << k << " field " << j;
        ASSERT_EQ(st.reward, 1.0f);
        ASSERT_EQ((st.flags & QF_TERMINAL) != 0, ref_terminated) << "step " << k;
        ASSERT_EQ(st.flags & QF_TRUNCATED, 0u);
        ASSERT_EQ(s.t, k);
    }
    EXPECT_GT(std::fabs(ref.theta), 0.5) << "the trajectory should probe the nonlinear regime";
}

TEST(EnvCartPole, TerminatesExactlyOutsideTheLimits) {
    const qf_env_params p = cartpole(500);
    struct Case {
        float x, x_dot, theta, theta_dot;
        bool terminal;  // by hand: x' = x + 0.02 x_dot, theta' = theta + 0.02 theta_dot
    };
    const Case cases[] = {
        {0.0f, 0.0f, 0.2f, 0.5f, true},      // theta' = 0.210 > 0.2094
        {0.0f, 0.0f, 0.2f, 0.4f, false},     // theta' = 0.208
        {0.0f, 0.0f, -0.2f, -0.5f, true},    // mirrored
        {0.0f, 0.0f, -0.2f, -0.4f, false},
        {2.39f, 1.0f, 0.0f, 0.0f, true},     // x' = 2.41 > 2.4
        {2.39f, 0.4f, 0.0f, 0.0f, false},    // x' = 2.398
        {-2.39f, -1.0f, 0.0f, 0.0f, true},
        {-2.39f, -0.4f, 0.0f, 0.0f, false},
        {2.3999f, 0.0f, 0.0f, 0.0f, false},  // just inside / outside with no motion
        {2.4001f, 0.0f, 0.0f, 0.0f, true},
        {0.0f, 0.0f, 0.2094f, 0.0f, false},  // 12 degrees = 0.20943951 rad
        {0.0f, 0.0f, -0.2095f, 0.0f, true},
    };
    for (const Case &c : cases) {
        for (int action = 0; action < 2; action++) {
            qf_env_state s = cartpole_state(c.x, c.x_dot, c.theta, c.theta_dot);
            CartRef ref = cartpole_ref_of(s);
            ASSERT_EQ(cartpole_ref_step(ref, action), c.terminal) << "reference disagrees with the table";
            const Step st = step_env(QF_ENV_CARTPOLE, p, s, action);
            EXPECT_EQ(st.flags, flag_if(c.terminal, QF_TERMINAL)) << c.x << " " << c.x_dot << " " << c.theta
                                                              << " " << c.theta_dot << " a=" << action;
            EXPECT_EQ(st.reward, 1.0f) << "reward 1 on every step, the terminal one included";
        }
    }
}

TEST(EnvCartPole, TruncatesExactlyAtACustomHorizon) {
    // Alternating pushes from the upright rest state survive 32 steps in the reference (checked
    // below), so with horizon 7 the only flag is TRUNCATED, exactly at step 7.
    const qf_env_params p = cartpole(7);
    qf_env_state s = zero_state();
    CartRef ref{0, 0, 0, 0};
    for (int k = 1; k <= 7; k++) {
        ASSERT_FALSE(cartpole_ref_step(ref, k % 2));
        const Step st = step_env(QF_ENV_CARTPOLE, p, s, k % 2);
        EXPECT_EQ(st.flags, flag_if(k == 7, QF_TRUNCATED)) << "step " << k;
    }
}

TEST(EnvCartPole, BalancedPoleIsTruncatedAtExactly500) {
    // The double reference certifies that the controller keeps Gymnasium's pole up for 500 steps;
    // the float env under the same controller must then end by truncation at t = 500 only.
    CartRef ref{0, 0, 0, 0};
    for (int k = 1; k <= 500; k++)
        ASSERT_FALSE(cartpole_ref_step(ref, balance(ref.x, ref.x_dot, ref.theta, ref.theta_dot))) << k;
    const qf_env_params p = defaults(QF_ENV_CARTPOLE);
    qf_env_state s = zero_state();
    float ret = 0.0f;
    for (int k = 1; k <= 500; k++) {
        const Step st = step_env(QF_ENV_CARTPOLE, p, s, balance(s.f[0], s.f[1], s.f[2], s.f[3]));
        ret += st.reward;
        ASSERT_EQ(st.flags, flag_if(k == 500, QF_TRUNCATED)) << "step " << k;
    }
    EXPECT_EQ(ret, 500.0f);
}

TEST(EnvCartPole, ResetIsUniformOnPlusMinus005) {
    // Each coordinate ~ U(-0.05, 0.05): mean 0, variance a^2/3, mu4 = a^4/5 with a = 0.05.
    const double a = 0.05;
    const qf_env_params p = defaults(QF_ENV_CARTPOLE);
    std::vector<std::vector<double>> coord(4);
    for (uint32_t e = 0; e < 50000; e++) {
        qf_env_state s = zero_state();
        s.t = 17;
        qf_rng g = qf_rng_make(kSeed, kRun, QF_STREAM_RESET, e, 0);
        qf_env_reset(QF_ENV_CARTPOLE, &p, &s, &g);
        ASSERT_EQ(s.t, 0);
        for (int j = 0; j < 4; j++) {
            ASSERT_GE(s.f[j], -0.05f);
            ASSERT_LT(s.f[j], 0.05f);
            coord[j].push_back(s.f[j]);
        }
    }
    for (int j = 0; j < 4; j++) expect_moments(coord[j], 0.0, a * a / 3, std::pow(a, 4) / 5, "cartpole reset");
}

// =============================================================================================
// MountainCar-v0: Gymnasium's step in double precision

namespace {

struct CarRef {
    double position, velocity;
};

// gymnasium/envs/classic_control/mountain_car.py, MountainCarEnv.step, returns `terminated`.
bool mountain_car_ref_step(CarRef &s, int action) {
    const double min_position = -1.2, max_position = 0.6, max_speed = 0.07, goal_position = 0.5;
    const double force = 0.001, gravity = 0.0025;
    s.velocity += (action - 1) * force + std::cos(3 * s.position) * (-gravity);
    s.velocity = std::min(std::max(s.velocity, -max_speed), max_speed);
    s.position += s.velocity;
    s.position = std::min(std::max(s.position, min_position), max_position);
    if (s.position == min_position && s.velocity < 0) s.velocity = 0;
    return s.position >= goal_position && s.velocity >= 0;
}

qf_env_state car_state(float position, float velocity) {
    qf_env_state s = zero_state();
    s.f[0] = position;
    s.f[1] = velocity;
    return s;
}

int bang_bang(double velocity) { return velocity >= 0 ? 2 : 0; }

qf_env_params mountain_car(int32_t horizon) {
    qf_env_params p = defaults(QF_ENV_MOUNTAIN_CAR);
    p.mountain_car.horizon = horizon;
    return p;
}

// Float position and velocity within `tol` of the reference.
void expect_car_near(const qf_env_state &s, const CarRef &ref, double tol, int k) {
    ASSERT_NEAR(s.f[0], ref.position, tol) << "position, step " << k;
    ASSERT_NEAR(s.f[1], ref.velocity, tol) << "velocity, step " << k;
}

}  // namespace

TEST(EnvMountainCar, DefaultsAreMountainCarV0) { EXPECT_EQ(defaults(QF_ENV_MOUNTAIN_CAR).mountain_car.horizon, 200); }

TEST(EnvMountainCar, TrajectoryMatchesDoubleReference) {
    // From -0.5 at rest, the actions of the energy-pumping policy run on the reference (so both
    // sides get identical actions): the car swings to the left wall region and up to the goal,
    // covering the whole track.
    const qf_env_params p = mountain_car(200);
    qf_env_state s = car_state(-0.5f, 0.0f);
    CarRef ref{-0.5, 0.0};
    double lowest = 0.0;
    bool ref_terminated = false;
    int k = 0;
    while (!ref_terminated) {
        k++;
        ASSERT_LE(k, 200);
        const int action = bang_bang(ref.velocity);
        ref_terminated = mountain_car_ref_step(ref, action);
        const Step st = step_env(QF_ENV_MOUNTAIN_CAR, p, s, action);
        // Each step rounds v + dv (|v| <= 0.07, half-ulp 4e-9) and p + v (|p| <= 1.2, half-ulp
        // 6e-8). The oscillation in the valley is neutrally stable, so these add up at most
        // linearly: 1e-7 per step bounds position and velocity.
        expect_car_near(s, ref, 1e-7 * k, k);
        ASSERT_EQ(st.reward, -1.0f);
        ASSERT_EQ(st.flags, flag_if(ref_terminated, QF_TERMINAL)) << "step " << k;
        lowest = std::min(lowest, ref.position);
    }
    EXPECT_LT(lowest, -1.0) << "the trajectory should swing far up the left slope";
}

TEST(EnvMountainCar, BangBangReachesTheGoalFromEveryStart) {
    const qf_env_params p = defaults(QF_ENV_MOUNTAIN_CAR);
    for (int i = 0; i <= 40; i++) {
        const float start = static_cast<float>(-0.6 + 0.2 * i / 40);
        CarRef ref{start, 0.0};
        int ref_steps = 0;
        while (!mountain_car_ref_step(ref, bang_bang(ref.velocity))) ref_steps++;
        ref_steps++;
        ASSERT_LE(ref_steps, 200) << "reference, start " << start;
        qf_env_state s = car_state(start, 0.0f);
        uint32_t flags = 0;
        while (!(flags & (QF_TERMINAL | QF_TRUNCATED))) flags = step_env(QF_ENV_MOUNTAIN_CAR, p, s, bang_bang(s.f[1])).flags;
        EXPECT_EQ(flags, QF_TERMINAL) << "start " << start;
        EXPECT_GE(s.f[0], 0.5f);
        EXPECT_GE(s.f[1], 0.0f);
        EXPECT_NEAR(s.t, ref_steps, 1) << "start " << start;
    }
}

TEST(EnvMountainCar, IdlingNeverArrivesAndIsTruncatedAtTheHorizon) {
    for (int32_t horizon : {200, 1000}) {
        const qf_env_params p = mountain_car(horizon);
        qf_env_state s = car_state(-0.5f, 0.0f);
        float ret = 0.0f;
        for (int k = 1; k <= horizon; k++) {
            const Step st = step_env(QF_ENV_MOUNTAIN_CAR, p, s, 1);
            ret += st.reward;
            ASSERT_EQ(st.flags, flag_if(k == horizon, QF_TRUNCATED)) << "horizon " << horizon << " step " << k;
            ASSERT_LT(s.f[0], -0.4f);  // the car only rocks around the valley bottom (-0.5236)
        }
        EXPECT_EQ(ret, -static_cast<float>(horizon));
    }
}

TEST(EnvMountainCar, WallsSpeedLimitAndGoalVelocityRule) {
    const qf_env_params p = defaults(QF_ENV_MOUNTAIN_CAR);
    struct Case {
        float position, velocity;
        int action;
        float want_position, want_velocity;  // exact where a clip decides, else NaN (use reference)
        uint32_t flags;
    };
    const Case cases[] = {
        {-1.19f, -0.05f, 0, -1.2f, 0.0f, 0u},      // hits the left wall: velocity reset to 0
        {-1.2f, -0.01f, 0, -1.2f, 0.0f, 0u},       // already at the wall, still pushing left
        {-0.7f, 0.069f, 2, NAN, 0.07f, 0u},        // speed limit +0.07
        {-0.3f, -0.069f, 0, NAN, -0.07f, 0u},      // speed limit -0.07
        {0.59f, 0.05f, 2, 0.6f, NAN, QF_TERMINAL}, // right edge clip, at the goal
        {0.52f, -0.005f, 0, NAN, NAN, 0u},         // past 0.5 but moving left: not terminal
    };
    for (const Case &c : cases) {
        qf_env_state s = car_state(c.position, c.velocity);
        CarRef ref{c.position, c.velocity};
        const bool ref_terminated = mountain_car_ref_step(ref, c.action);
        const Step st = step_env(QF_ENV_MOUNTAIN_CAR, p, s, c.action);
        EXPECT_EQ(st.flags, c.flags) << c.position << " " << c.velocity;
        EXPECT_EQ(ref_terminated, c.flags == QF_TERMINAL);
        EXPECT_EQ(st.reward, -1.0f);
        expect_car_near(s, ref, 1e-6, 1);
        if (!std::isnan(c.want_position)) {
            EXPECT_EQ(s.f[0], c.want_position) << c.position;
        }
        if (!std::isnan(c.want_velocity)) {
            EXPECT_EQ(s.f[1], c.want_velocity) << c.position;
        }
    }
}

TEST(EnvMountainCar, ResetIsUniformOnMinus06ToMinus04AtRest) {
    const double half = 0.1;  // U(-0.6, -0.4): mean -0.5, var half^2/3, mu4 half^4/5
    const qf_env_params p = defaults(QF_ENV_MOUNTAIN_CAR);
    std::vector<double> positions;
    for (uint32_t e = 0; e < 50000; e++) {
        qf_env_state s = car_state(0.3f, 0.02f);
        s.t = 5;
        qf_rng g = qf_rng_make(kSeed, kRun, QF_STREAM_RESET, e, 1);
        qf_env_reset(QF_ENV_MOUNTAIN_CAR, &p, &s, &g);
        ASSERT_GE(s.f[0], -0.6f);
        ASSERT_LT(s.f[0], -0.4f);
        ASSERT_EQ(s.f[1], 0.0f);
        ASSERT_EQ(s.t, 0);
        positions.push_back(s.f[0]);
    }
    expect_moments(positions, -0.5, half * half / 3, std::pow(half, 4) / 5, "mountain car reset");
}

// =============================================================================================
// Chain

namespace {

qf_env_params chain(float slip) {
    qf_env_params p = defaults(QF_ENV_CHAIN);  // N = 10, r_small 0.001, r_large 1, horizon 20
    p.chain.slip = slip;
    return p;
}

// A whole episode with a fixed action; positions after each step, float return, flags.
Episode run_chain(const qf_env_params &p, int32_t action) {
    qf_env_state s = zero_state();
    qf_env_reset(QF_ENV_CHAIN, &p, &s, nullptr);
    Episode ep;
    for (int k = 0; k < p.chain.horizon; k++) {
        const Step st = step_env(QF_ENV_CHAIN, p, s, action);
        ep.rewards.push_back(st.reward);
        ep.flags.push_back(st.flags);
        ep.col.push_back(s.i[0]);
        ep.ret += st.reward;
    }
    return ep;
}

void expect_truncated_at_horizon(const Episode &ep) {
    for (size_t k = 0; k + 1 < ep.flags.size(); k++) EXPECT_EQ(ep.flags[k], 0u) << "step " << k;
    EXPECT_EQ(ep.flags.back(), QF_TRUNCATED) << "a time limit, never a terminal state";
}

}  // namespace

TEST(EnvChain, AlwaysRightWithoutSlipEarnsRLargeFromTheEnd) {
    qf_env_params p = chain(0.0f);
    p.chain.r_large = 2.5f;
    const int n = p.chain.size, h = p.chain.horizon;
    ASSERT_EQ(n, 10);
    ASSERT_EQ(h, 20);
    const Episode ep = run_chain(p, 1);
    for (int k = 0; k < h; k++) {
        EXPECT_EQ(ep.col[k], std::min(k + 1, n - 1)) << k;
        // Right pays r_large when taken in N-1, reached after N-1 steps: steps N-1 .. H-1.
        EXPECT_EQ(ep.rewards[k], k >= n - 1 ? 2.5f : 0.0f) << k;
    }
    EXPECT_EQ(ep.ret, 2.5f * (h - (n - 1)));  // 27.5, exact in float
    expect_truncated_at_horizon(ep);
}

TEST(EnvChain, AlwaysLeftEarnsRSmallEveryStep) {
    const qf_env_params p = chain(0.1f);  // left moves never slip
    const Episode ep = run_chain(p, 0);
    for (int k = 0; k < p.chain.horizon; k++) {
        EXPECT_EQ(ep.col[k], 0);
        EXPECT_EQ(ep.rewards[k], 0.001f);
    }
    EXPECT_NEAR(ep.ret, 20 * 0.001, 20 * 2e-9);  // 20 float additions, each within half an ulp (1e-9)
    expect_truncated_at_horizon(ep);
}

TEST(EnvChain, LeftMovesNeverSlipAndPayOnlyInStateZero) {
    const qf_env_params p = chain(0.5f);
    for (uint32_t e = 0; e < 1000; e++) {
        for (int32_t pos : {0, 1, 5, 9}) {
            qf_env_state s = zero_state();
            s.i[0] = pos;
            const Step st = step_env(QF_ENV_CHAIN, p, s, 0, e);
            ASSERT_EQ(s.i[0], std::max(pos - 1, 0)) << "from " << pos;
            ASSERT_EQ(st.reward, pos == 0 ? 0.001f : 0.0f) << "from " << pos;
            ASSERT_EQ(st.flags, 0u);
        }
    }
}

TEST(EnvChain, RightMovesSlipBackWithProbabilitySlip) {
    const qf_env_params p = chain(0.3f);
    const long envs = 200000;
    long slipped = 0, slipped_at_end = 0;
    for (long e = 0; e < envs; e++) {
        const uint32_t env = static_cast<uint32_t>(e);
        qf_env_state s = zero_state();
        s.i[0] = 3;
        ASSERT_EQ(step_env(QF_ENV_CHAIN, p, s, 1, env).reward, 0.0f);
        ASSERT_TRUE(s.i[0] == 2 || s.i[0] == 4) << s.i[0];
        slipped += s.i[0] == 2;
        // In N-1 the right move pays r_large whether or not it slips; a slip lands in N-2.
        s = zero_state();
        s.i[0] = 9;
        ASSERT_EQ(step_env(QF_ENV_CHAIN, p, s, 1, env).reward, 1.0f);
        ASSERT_TRUE(s.i[0] == 8 || s.i[0] == 9);
        slipped_at_end += s.i[0] == 8;
    }
    expect_rate(slipped, envs, 0.3, "slip rate in the middle of the chain");
    expect_rate(slipped_at_end, envs, 0.3, "slip rate at the right end");
}

// =============================================================================================
// Bandit

namespace {
qf_env_params bandit(std::initializer_list<float> probs) {
    qf_env_params p = defaults(QF_ENV_BANDIT);
    p.bandit.n_probs = 0;
    for (float q : probs) p.bandit.probs[p.bandit.n_probs++] = q;
    char msg[256];
    EXPECT_EQ(qf_env_params_check(QF_ENV_BANDIT, &p, msg, sizeof msg), 0) << msg;
    return p;
}

// Pull `arm` once in each of `envs` envs; every pull is a one-step terminal episode.
long count_successes(const qf_env_params &p, int arm, long envs, uint32_t k0) {
    long wins = 0;
    for (long e = 0; e < envs; e++) {
        qf_env_state s = zero_state();
        const Step st = step_env(QF_ENV_BANDIT, p, s, arm, static_cast<uint32_t>(e), k0);
        EXPECT_TRUE(st.reward == 0.0f || st.reward == 1.0f);
        if (st.flags != QF_TERMINAL || s.t != 1) {
            ADD_FAILURE() << "a pull must be a terminal one-step episode, flags " << st.flags;
            return -1;
        }
        wins += st.reward == 1.0f;
    }
    return wins;
}
}  // namespace

TEST(EnvBandit, GivenProbabilitiesArePaidAtThoseRates) {
    const qf_env_params p = bandit({0.9f, 0.8f, 0.7f});
    EXPECT_EQ(p.bandit.arms, 3);
    EXPECT_EQ(qf_env_n_actions(QF_ENV_BANDIT, &p), 3);
    const long envs = 100000;
    const double probs[3] = {0.9, 0.8, 0.7};
    for (int arm = 0; arm < 3; arm++) expect_rate(count_successes(p, arm, envs, kSeed), envs, probs[arm], "arm");
}

TEST(EnvBandit, DrawnMeansAreUniformPerRunAndPaidAtThoseRates) {
    const qf_env_params p = bandit({});
    ASSERT_EQ(p.bandit.arms, 10);
    std::vector<double> means;
    for (uint32_t run = 0; run < 2000; run++) {
        for (int a = 0; a < p.bandit.arms; a++) {
            const float m = qf_bandit_mean(&p.bandit, kSeed, run, a);
            ASSERT_GE(m, 0.0f);
            ASSERT_LT(m, 1.0f);
            ASSERT_EQ(m, qf_bandit_mean(&p.bandit, kSeed, run, a)) << "deterministic for a key";
            ASSERT_NE(m, qf_bandit_mean(&p.bandit, kSeed + 1, run, a)) << "another seed, another mean";
            ASSERT_NE(m, qf_bandit_mean(&p.bandit, kSeed, run + 1, a)) << "another run, another mean";
            means.push_back(m);
        }
    }
    expect_moments(means, 0.5, 1.0 / 12, 1.0 / 80, "U(0,1) arm means");
    const long envs = 40000;
    for (int arm : {0, 7}) {
        const double m = qf_bandit_mean(&p.bandit, 555u, kRun, arm);
        expect_rate(count_successes(p, arm, envs, 555u), envs, m, "drawn arm");
    }
}

// =============================================================================================
// Gridworld (objectworld-style, Levine et al. 2011)

namespace {
qf_env_params grid(int n, float slip, int colours = 2, int objects = 8, int dist = 3, int seed = 5) {
    qf_env_params p = defaults(QF_ENV_GRIDWORLD);
    p.gridworld.size = n;
    p.gridworld.slip = slip;
    p.gridworld.colours = colours;
    p.gridworld.objects = objects;
    p.gridworld.dist = dist;
    p.gridworld.map_seed = seed;
    char msg[256];
    EXPECT_EQ(qf_env_params_check(QF_ENV_GRIDWORLD, &p, msg, sizeof msg), 0) << msg;
    return p;
}

// The features of cell, written here from the description: for every object of colour c, its
// Manhattan distance; feature (c, d) is 1 when some object of colour c is at distance <= d.
std::vector<int> features_by_hand(const qf_gridworld_params &g, int cell) {
    const int n = g.size, D = g.dist;
    std::vector<int> f((size_t)(g.colours * D), 0);
    for (int j = 0; j < g.objects; j++) {
        const int o = qf_gridworld_object_cell(&g, j);
        const int dist = std::abs(o / n - cell / n) + std::abs(o % n - cell % n);
        for (int d = 1; d <= D; d++)
            if (dist <= d) f[(size_t)((j % g.colours) * D + d - 1)] = 1;
    }
    return f;
}
}  // namespace

TEST(EnvGridworld, ShapesAndDefaults) {
    const qf_env_params p = defaults(QF_ENV_GRIDWORLD);
    EXPECT_EQ(qf_env_n_states(QF_ENV_GRIDWORLD, &p), 64);
    EXPECT_EQ(qf_env_obs_dim(QF_ENV_GRIDWORLD, &p), 64);
    EXPECT_EQ(qf_env_n_actions(QF_ENV_GRIDWORLD, &p), 5);
    EXPECT_EQ(qf_env_horizon(QF_ENV_GRIDWORLD, &p), 16);
    EXPECT_EQ(qf_gridworld_n_features(&p.gridworld), 6);
    qf_env_params bad = p;
    bad.gridworld.objects = 1;
    bad.gridworld.colours = 3;
    char msg[256];
    EXPECT_NE(qf_env_params_check(QF_ENV_GRIDWORLD, &bad, msg, sizeof msg), 0);
    EXPECT_NE(std::string(msg).find("env.objects"), std::string::npos) << msg;
}

// Without slip every action moves as described, walls stop, and the reward is sum_k w_k f_k of the
// cell left, with the features recomputed by hand.
TEST(EnvGridworld, DeterministicMovesWallsAndLinearReward) {
    const qf_env_params p = grid(5, 0.0f, 3, 9, 2, 11);
    const qf_gridworld_params &g = p.gridworld;
    const int n = 5;
    int nonzero = 0;
    for (int cell = 0; cell < n * n; cell++) {
        const std::vector<int> f = features_by_hand(g, cell);
        float want = 0.0f;  // the same float additions in the same order
        for (size_t k = 0; k < f.size(); k++)
            if (f[k]) want = want + qf_gridworld_weight(&g, (int)k);
        std::vector<float> got(f.size());
        qf_gridworld_features(&g, cell, got.data());
        for (size_t k = 0; k < f.size(); k++) ASSERT_EQ(got[k], (float)f[k]) << "cell " << cell << " k " << k;
        nonzero += want != 0.0f;
        const int row = cell / n, col = cell % n;
        const int expect[5] = {row > 0 ? cell - n : cell, row < n - 1 ? cell + n : cell,
                               col > 0 ? cell - 1 : cell, col < n - 1 ? cell + 1 : cell, cell};
        for (int a = 0; a < 5; a++) {
            qf_env_state s = zero_state();
            s.i[0] = cell;
            const Step st = step_env(QF_ENV_GRIDWORLD, p, s, a);
            ASSERT_EQ(s.i[0], expect[a]) << "cell " << cell << " action " << a;
            ASSERT_EQ(st.reward, want) << "cell " << cell;
            ASSERT_EQ(st.flags, 0u);
        }
    }
    EXPECT_GT(nonzero, 0) << "some cell must be near an object";
}

// Object cells and weights: a pure function of map_seed; weights in [-1, 1) with mean 0 and
// variance 1/3; object cells uniform over the grid (mean index (N^2 - 1) / 2).
TEST(EnvGridworld, ObjectsAndWeightsComeFromTheEnvSeed) {
    std::vector<double> w, cells;
    for (int seed = 0; seed < 3000; seed++) {
        const qf_env_params p = grid(8, 0.3f, 4, 16, 4, seed);
        const qf_env_params p2 = grid(8, 0.3f, 4, 16, 4, seed + 1);
        for (int k = 0; k < 16; k++) {
            const float x = qf_gridworld_weight(&p.gridworld, k);
            ASSERT_GE(x, -1.0f);
            ASSERT_LT(x, 1.0f);
            ASSERT_EQ(x, qf_gridworld_weight(&p.gridworld, k));
            ASSERT_NE(x, qf_gridworld_weight(&p2.gridworld, k));
            w.push_back(x);
            const int c = qf_gridworld_object_cell(&p.gridworld, k);
            ASSERT_GE(c, 0);
            ASSERT_LT(c, 64);
            cells.push_back(c);
        }
    }
    expect_moments(w, 0.0, 1.0 / 3, 1.0 / 5, "U(-1,1) weights");
    // discrete uniform on 0..63: variance (64^2 - 1) / 12, fourth central moment (n^2-1)(3n^2-7)/240
    expect_moments(cells, 31.5, (64.0 * 64 - 1) / 12, (64.0 * 64 - 1) * (3 * 64.0 * 64 - 7) / 240, "object cells");
}

// With slip the direction is the intended one w.p. 1 - slip + slip/5, each other w.p. slip/5.
TEST(EnvGridworld, SlipReplacesTheActionByAUniformDirection) {
    const qf_env_params p = grid(7, 0.4f);
    const long envs = 100000;
    long hits[5] = {0, 0, 0, 0, 0};
    const int centre = 3 * 7 + 3, to[5] = {centre - 7, centre + 7, centre - 1, centre + 1, centre};
    for (long e = 0; e < envs; e++) {
        qf_env_state s = zero_state();
        s.i[0] = centre;
        step_env(QF_ENV_GRIDWORLD, p, s, 3, static_cast<uint32_t>(e));
        int k = 0;
        while (k < 5 && to[k] != s.i[0]) k++;
        ASSERT_LT(k, 5) << "moved to " << s.i[0];
        hits[k]++;
    }
    for (int k = 0; k < 5; k++) expect_rate(hits[k], envs, (k == 3 ? 0.6 : 0.0) + 0.4 / 5, "direction");
}

TEST(EnvGridworld, TruncatedExactlyAtTheHorizon) {
    qf_env_params p = grid(4, 0.2f);
    p.gridworld.horizon = 9;
    qf_env_state s = zero_state();
    qf_env_reset(QF_ENV_GRIDWORLD, &p, &s, nullptr);
    EXPECT_EQ(s.i[0], 0);
    for (int k = 0; k < 9; k++) {
        const Step st = step_env(QF_ENV_GRIDWORLD, p, s, k % 5);
        EXPECT_EQ(st.flags, k == 8 ? (uint32_t)QF_TRUNCATED : 0u) << k;
    }
}

// =============================================================================================
// The CPU batch: auto-reset and episode statistics

namespace {

// R runs x E envs of one kind on the CPU backend, with device buffers for actions and outputs.
class CpuBatch {
  public:
    CpuBatch(int kind, const qf_env_params &params, int32_t runs, int32_t envs) : n_(static_cast<size_t>(runs) * envs) {
        char err[512] = {0};
        backend_ = qf_cpu_open(err, sizeof err);
        if (!backend_) throw std::runtime_error(err);
        std::vector<qf_env_params> ps(static_cast<size_t>(runs), params);
        std::vector<uint32_t> keys;
        for (int32_t r = 0; r < runs; r++) keys.insert(keys.end(), {kSeed, static_cast<uint32_t>(r)});
        if (qf_vecenv_create(&v_, backend_, kind, runs, envs, ps.data(), keys.data(), err, sizeof err) != QF_OK)
            throw std::runtime_error(err);
        actions_ = static_cast<int32_t *>(backend_->alloc(backend_, n_ * sizeof(int32_t)));
        obs_ = static_cast<float *>(backend_->alloc(backend_, n_ * v_.obs_dim * sizeof(float)));
        index_ = static_cast<int32_t *>(backend_->alloc(backend_, n_ * sizeof(int32_t)));
    }
    ~CpuBatch() {
        backend_->release(backend_, actions_);
        backend_->release(backend_, obs_);
        backend_->release(backend_, index_);
        qf_vecenv_destroy(&v_);
        qf_backend_close(backend_);
    }
    CpuBatch(const CpuBatch &) = delete;
    CpuBatch &operator=(const CpuBatch &) = delete;

    // One step at global step t; actions empty: uniform random actions drawn by the batch.
    void step(const std::vector<int32_t> &actions, uint32_t t) {
        if (!actions.empty()) {
            ASSERT_EQ(backend_->upload(backend_, actions_, actions.data(), n_ * sizeof(int32_t)), QF_OK);
        }
        ASSERT_EQ(backend_->env_step(backend_, &v_.batch, actions.empty() ? nullptr : actions_, t, obs_, index_), QF_OK);
        ASSERT_EQ(backend_->sync(backend_), QF_OK);
    }
    // Observation and index of the current states (after auto-reset).
    void observe() { ASSERT_EQ(backend_->env_observe(backend_, &v_.batch, obs_, index_), QF_OK); }

    template <class T>
    std::vector<T> fetch(const T *device, size_t count = 0) {
        std::vector<T> out(count ? count : n_);
        EXPECT_EQ(backend_->download(backend_, out.data(), device, out.size() * sizeof(T)), QF_OK);
        return out;
    }
    std::vector<float> obs() { return fetch(obs_, n_ * v_.obs_dim); }
    std::vector<int32_t> index() { return fetch(index_); }
    const qf_env_batch &b() const { return v_.batch; }
    size_t size() const { return n_; }
    int32_t obs_dim() const { return v_.obs_dim; }

  private:
    size_t n_;
    qf_backend *backend_ = nullptr;
    qf_vecenv v_{};
    int32_t *actions_ = nullptr;
    float *obs_ = nullptr;
    int32_t *index_ = nullptr;
};

}  // namespace

TEST(EnvBatch, DeepSeaAllRightThenAllLeftStatistics) {
    const int n = 10;
    const qf_env_params p = deep_sea(n);
    CpuBatch batch(QF_ENV_DEEP_SEA, p, 2, 8);
    uint32_t t = 0;
    for (int episode = 0; episode < 2; episode++) {
        const bool right = episode == 0;
        for (int k = 0; k < n; k++, t++) {
            // Deterministic DeepSea: before step k every env sits at (k, k) going right, (k, 0) left.
            qf_env_state s = zero_state();
            s.t = k;
            s.i[0] = right ? k : 0;
            std::vector<int32_t> actions(batch.size());
            for (size_t e = 0; e < actions.size(); e++)
                actions[e] = deep_sea_action(p, s, right, kSeed, static_cast<uint32_t>(e / 8));
            batch.step(actions, t);
            const auto flags = batch.fetch(batch.b().flags);
            const auto index = batch.index();
            const auto ep_return = batch.fetch(batch.b().ep_return);
            const auto obs = batch.obs();
            for (size_t e = 0; e < batch.size(); e++) {
                if (k < n - 1) {
                    ASSERT_EQ(flags[e], 0u);
                    ASSERT_EQ(index[e], (k + 1) * n + s.i[0] + (right ? 1 : 0));
                    ASSERT_NEAR(ep_return[e], right ? -0.001 * (k + 1) : 0.0, 1e-7);
                } else {
                    ASSERT_EQ(flags[e], QF_TERMINAL | (right ? QF_TREASURE : QF_BAD_EPISODE));
                    ASSERT_EQ(index[e], n * n) << "next_index is s' before the auto-reset";
                    for (int j = 0; j < n * n; j++) ASSERT_EQ(obs[e * n * n + j], 0.0f);
                    ASSERT_EQ(ep_return[e], 0.0f) << "a new episode starts from 0";
                }
            }
        }
        const auto episodes = batch.fetch(batch.b().episodes);
        const auto last_return = batch.fetch(batch.b().last_return);
        const auto last_length = batch.fetch(batch.b().last_length);
        const auto treasures = batch.fetch(batch.b().treasures);
        const auto bad = batch.fetch(batch.b().bad_episodes);
        batch.observe();
        const auto index = batch.index();
        for (size_t e = 0; e < batch.size(); e++) {
            EXPECT_EQ(episodes[e], static_cast<uint32_t>(episode + 1));
            EXPECT_NEAR(last_return[e], right ? 0.99 : 0.0, 1e-6);
            EXPECT_EQ(last_length[e], n);
            EXPECT_EQ(treasures[e], 1u);
            EXPECT_EQ(bad[e], right ? 0u : 1u);
            EXPECT_EQ(index[e], 0) << "auto-reset back to row 0, column 0";
        }
    }
}

TEST(EnvBatch, DeepSeaUniformPolicyFindsTreasureAtRate2PowMinusN) {
    // Deterministic DeepSea with uniform actions: the treasure needs N right moves in a row,
    // probability 2^-N; every other episode takes a left move while still on the diagonal (before
    // its first left move it has only moved right), so bad = 1 - treasure, episode by episode.
    const int n = 6;
    CpuBatch batch(QF_ENV_DEEP_SEA, deep_sea(n), 1, 65536);
    for (uint32_t t = 0; t < static_cast<uint32_t>(n); t++) {
        batch.step({}, t);
        if (t == 0) {
            const auto index = batch.index();
            long went_right = 0;
            for (int32_t i : index) went_right += i == n + 1;
            expect_rate(went_right, static_cast<long>(index.size()), 0.5, "uniform actions move right half the time");
        }
    }
    const auto episodes = batch.fetch(batch.b().episodes);
    const auto treasures = batch.fetch(batch.b().treasures);
    const auto bad = batch.fetch(batch.b().bad_episodes);
    const auto length = batch.fetch(batch.b().last_length);
    long found = 0;
    for (size_t e = 0; e < batch.size(); e++) {
        ASSERT_EQ(episodes[e], 1u);
        ASSERT_EQ(length[e], n);
        ASSERT_EQ(treasures[e] + bad[e], 1u) << "env " << e;
        found += treasures[e];
    }
    expect_rate(found, static_cast<long>(batch.size()), 1.0 / 64, "treasure rate of the uniform policy");
}

TEST(EnvBatch, CartPoleReturnsLengthsAndTerminalVsTruncated) {
    // Uniform random actions with a 30-step limit: some episodes fall (TERMINAL, state outside the
    // limits), the others reach the limit (TRUNCATED, length 30). Reward 1 per step, so the return
    // of every finished episode equals its length.
    const int32_t horizon = 30;
    const int32_t envs = 256;
    CpuBatch batch(QF_ENV_CARTPOLE, cartpole(horizon), 1, envs);
    std::vector<int32_t> length(envs, 0);
    std::vector<uint32_t> finished(envs, 0);
    long terminal_only = 0, truncated = 0;
    for (uint32_t t = 0; t < 200; t++) {
        batch.step({}, t);
        const auto flags = batch.fetch(batch.b().flags);
        const auto obs = batch.obs();
        const auto ep_return = batch.fetch(batch.b().ep_return);
        const auto last_return = batch.fetch(batch.b().last_return);
        const auto last_length = batch.fetch(batch.b().last_length);
        const auto episodes = batch.fetch(batch.b().episodes);
        for (int32_t e = 0; e < envs; e++) {
            length[e]++;
            const float *o = &obs[static_cast<size_t>(e) * 4];
            const bool outside = std::fabs(o[0]) > 2.4f || std::fabs(o[2]) > QF_CARTPOLE_THETA_LIMIT;
            ASSERT_EQ((flags[e] & QF_TERMINAL) != 0, outside) << "env " << e << " t " << t;
            ASSERT_EQ((flags[e] & QF_TRUNCATED) != 0, length[e] == horizon) << "env " << e << " t " << t;
            if (flags[e] & (QF_TERMINAL | QF_TRUNCATED)) {
                finished[e]++;
                ASSERT_EQ(episodes[e], finished[e]);
                ASSERT_EQ(last_length[e], length[e]);
                ASSERT_EQ(last_return[e], static_cast<float>(length[e]));
                ASSERT_EQ(ep_return[e], 0.0f);
                terminal_only += flags[e] == QF_TERMINAL;
                truncated += (flags[e] & QF_TRUNCATED) != 0;
                length[e] = 0;
            } else {
                ASSERT_EQ(ep_return[e], static_cast<float>(length[e]));
            }
        }
        // After the auto-reset every finished env starts from a fresh U(-0.05, 0.05) state.
        batch.observe();
        const auto now = batch.obs();
        for (int32_t e = 0; e < envs; e++) {
            if (length[e] != 0) continue;
            for (int j = 0; j < 4; j++) ASSERT_LE(std::fabs(now[static_cast<size_t>(e) * 4 + j]), 0.05f);
        }
    }
    EXPECT_GT(terminal_only, 100) << "the random policy should fall often within 30 steps";
    EXPECT_GT(truncated, 100) << "and survive to the limit often";
}
