// test_batch.cc — the vectorized stepping on the CPU backend: determinism for a seed, different
// seeds differ, results independent of thread count and of the other runs in the batch (isolation),
// and the s' / auto-reset contract of the step (next observation before reset, observation after).
#include "batch_util.h"
#include "test_util.h"

namespace {


// Step `steps` times with random actions drawn in the step (actions = NULL).
void run_random(qf_backend *b, Batch &bt, int steps, uint32_t t0 = 0) {
    for (int t = 0; t < steps; t++)
        ASSERT_EQ(b->env_step(b, &bt.v.batch, nullptr, t0 + (uint32_t)t, nullptr, nullptr), QF_OK);
}

qf_env_params stochastic_deep_sea() {
    qf_env_params p = default_params(QF_ENV_DEEP_SEA);
    p.deep_sea.stochastic = 1;
    return p;
}

class EveryKind : public ::testing::TestWithParam<int> {};

TEST_P(EveryKind, SameSeedSameTrajectoryOtherSeedDiffers) {
    CpuBackend cpu;
    const int kind = GetParam();
    qf_env_params p = kind == QF_ENV_DEEP_SEA ? stochastic_deep_sea() : default_params(kind);
    Batch a(cpu.b, kind, p, 3, 257, 7), b(cpu.b, kind, p, 3, 257, 7), c(cpu.b, kind, p, 3, 257, 8);
    run_random(cpu.b, a, 300);
    run_random(cpu.b, b, 300);
    run_random(cpu.b, c, 300);
    HostBatch ha = download_batch(a.v), hb = download_batch(b.v), hc = download_batch(c.v);
    expect_same(ha, hb, "same seed");
    // 771 envs x 300 steps: two seeds agreeing on every reward and episode return is impossible
    // unless the seed is ignored
    EXPECT_FALSE(same_bits(ha.sf, hc.sf) && ha.si == hc.si && same_bits(ha.reward, hc.reward) &&
                 same_bits(ha.last_return, hc.last_return))
        << "seed 7 and seed 8 gave identical batches";
}

TEST_P(EveryKind, ThreadCountDoesNotChangeResults) {
    const int kind = GetParam();
    qf_env_params p = kind == QF_ENV_DEEP_SEA ? stochastic_deep_sea() : default_params(kind);
    HostBatch h[2];
    for (int k = 0; k < 2; k++) {
        qf_cpu_set_threads(k + 1);
        CpuBackend cpu;
        Batch bt(cpu.b, kind, p, 2, 1001, 3);
        run_random(cpu.b, bt, 200);
        h[k] = download_batch(bt.v);
    }
    qf_cpu_set_threads(0);
    expect_same(h[0], h[1], "1 thread vs 2 threads");
}

TEST_P(EveryKind, RunAloneEqualsSameRunInsideAFleet) {
    CpuBackend cpu;
    const int kind = GetParam();
    qf_env_params p = kind == QF_ENV_DEEP_SEA ? stochastic_deep_sea() : default_params(kind);
    const int E = 64, R = 8, where = 5;
    const uint32_t run_id = 42;
    std::vector<uint32_t> ids = {0, 1, 2, 3, 4, run_id, 6, 7};
    Batch alone(cpu.b, kind, p, 1, E, 11, {run_id});
    Batch fleet(cpu.b, kind, p, R, E, 11, ids);
    run_random(cpu.b, alone, 250);
    run_random(cpu.b, fleet, 250);
    HostBatch ha = download_batch(alone.v), hf = download_batch(fleet.v);
    // slice run `where` out of the fleet (every array is run-major, field-major for state)
    HostBatch slice;
    const size_t n = (size_t)R * E, off = (size_t)where * E;
    auto cut = [&](auto &dst, const auto &src, int fields) {
        dst.clear();
        for (int f = 0; f < fields; f++)
            dst.insert(dst.end(), src.begin() + f * n + off, src.begin() + f * n + off + E);
    };
    cut(slice.sf, hf.sf, QF_NF);
    cut(slice.si, hf.si, QF_NI + 1);
    cut(slice.ep_return, hf.ep_return, 1);
    cut(slice.reward, hf.reward, 1);
    cut(slice.flags, hf.flags, 1);
    cut(slice.episodes, hf.episodes, 1);
    cut(slice.last_return, hf.last_return, 1);
    cut(slice.last_length, hf.last_length, 1);
    cut(slice.treasures, hf.treasures, 1);
    cut(slice.bad, hf.bad, 1);
    expect_same(ha, slice, "run alone vs run 5 of 8");
}

INSTANTIATE_TEST_SUITE_P(Batch, EveryKind,
                         ::testing::Values(QF_ENV_DEEP_SEA, QF_ENV_CARTPOLE, QF_ENV_MOUNTAIN_CAR,
                                           QF_ENV_CHAIN, QF_ENV_BANDIT),
                         [](const ::testing::TestParamInfo<int> &i) {
                             return std::string(qf_env_spec_of(i.param)->name);
                         });

// The step writes the s' of the transition (before auto-reset); observe gives the state after it.
TEST(BatchStep, NextObservationIsBeforeResetObservationAfter) {
    CpuBackend cpu;
    qf_env_params p = default_params(QF_ENV_DEEP_SEA);
    const int N = p.deep_sea.size, E = 5;
    Batch bt(cpu.b, QF_ENV_DEEP_SEA, p, 1, E, 1);
    std::vector<int32_t> actions(E, 0);
    int32_t *idx_dev = (int32_t *)cpu.b->alloc(cpu.b, sizeof(int32_t) * E);
    float *obs_dev = (float *)cpu.b->alloc(cpu.b, sizeof(float) * E * N * N);
    for (int t = 0; t < N; t++) {
        ASSERT_EQ(cpu.b->env_step(cpu.b, &bt.v.batch, actions.data(), (uint32_t)t, obs_dev, idx_dev), QF_OK);
        HostBatch h = download_batch(bt.v);
        for (int e = 0; e < E; e++) {
            if (t < N - 1) {
                EXPECT_EQ(h.flags[e] & QF_TERMINAL, 0) << "t=" << t;
                EXPECT_GE(idx_dev[e], (t + 1) * N);  // row t+1
                EXPECT_LT(idx_dev[e], (t + 2) * N);
                EXPECT_EQ(obs_dev[(size_t)e * N * N + idx_dev[e]], 1.0f);
            } else {
                EXPECT_EQ(h.flags[e] & QF_TERMINAL, QF_TERMINAL);
                EXPECT_EQ(idx_dev[e], N * N) << "s' of the last step is the null state";
                for (int j = 0; j < N * N; j++) ASSERT_EQ(obs_dev[(size_t)e * N * N + j], 0.0f);
                EXPECT_EQ(h.episodes[e], 1u);
                EXPECT_EQ(h.last_length[e], N);
            }
        }
    }
    // after the terminal step the env was reset: observe gives the start cell
    ASSERT_EQ(cpu.b->env_observe(cpu.b, &bt.v.batch, obs_dev, idx_dev), QF_OK);
    for (int e = 0; e < E; e++) {
        EXPECT_EQ(idx_dev[e], 0);
        EXPECT_EQ(obs_dev[(size_t)e * N * N], 1.0f);
    }
    cpu.b->release(cpu.b, idx_dev);
    cpu.b->release(cpu.b, obs_dev);
}

// Random actions drawn in the step are uniform over the action set: on a bandit whose arm a pays
// with certainty only for a == 0 (means 1, 0, 0, 0), the rate of reward-1 pulls is 1/4.
TEST(BatchStep, DeviceDrawnRandomActionsAreUniform) {
    CpuBackend cpu;
    qf_env_params p = default_params(QF_ENV_BANDIT);
    p.bandit.n_probs = 4;
    p.bandit.arms = 4;
    p.bandit.probs[0] = 1.0f;
    p.bandit.probs[1] = p.bandit.probs[2] = p.bandit.probs[3] = 0.0f;
    const int E = 4096, T = 25;
    Batch bt(cpu.b, QF_ENV_BANDIT, p, 1, E, 5);
    double hits = 0;
    for (int t = 0; t < T; t++) {
        ASSERT_EQ(cpu.b->env_step(cpu.b, &bt.v.batch, nullptr, (uint32_t)t, nullptr, nullptr), QF_OK);
        for (int e = 0; e < E; e++) hits += bt.v.batch.reward[e];
    }
    const double n = (double)E * T, rate = hits / n, se = std::sqrt(0.25 * 0.75 / n);
    EXPECT_NEAR(rate, 0.25, 5 * se);
}

}  // namespace
