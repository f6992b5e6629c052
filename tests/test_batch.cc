// test_batch.cc — the vectorized stepping on the CPU backend: determinism for a seed, different
// seeds differ, results independent of thread count and of the other runs in the batch (isolation),
// the s' / auto-reset contract of the step (next observation before reset, observation after), and
// the CPU backend's per-kind block loops against the plain element function qf_batch_step_one.
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
                                           QF_ENV_CHAIN, QF_ENV_BANDIT, QF_ENV_GRIDWORLD),
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

// The CPU backend steps a block of envs in per-kind passes (kernels/cpu/backend_cpu.c); the CUDA
// kernel calls qf_batch_step_one per env. Both must give the same bits: here the backend's env_step
// runs side by side with qf_batch_step_one called env by env (this file is C++ and compiled
// without the backend's flags, so it is an independent build of the element functions), over
// hundreds of steps with auto-resets, actions drawn in the step and given by the caller, and every
// combination of next_obs / next_index, and every array is compared after every step.
struct RefVariant {
    const char *name;
    int kind;
    qf_env_params p;
    int R, E, steps;
    int threads;  // 0: the process's default team; > 0: this many (other block cuts)
};

std::vector<RefVariant> ref_variants() {
    std::vector<RefVariant> v;
    auto add = [&](const char *name, int kind, auto tweak, int R, int E, int steps, int threads = 0) {
        qf_env_params p = default_params(kind);
        tweak(p);
        qf_env_params_check(kind, &p, nullptr, 0);
        v.push_back({name, kind, p, R, E, steps, threads});
    };
    const int E = 2048 + 777;  // a full block and a partial one per run
    add("deep_sea", QF_ENV_DEEP_SEA, [](qf_env_params &) {}, 2, E, 260);
    add("deep_sea_stochastic", QF_ENV_DEEP_SEA, [](qf_env_params &p) { p.deep_sea.stochastic = 1; }, 2, E, 260);
    // the tabled mappings (bsuite's numpy draw, the all-ones debug mapping): the CPU loop of its own
    add("deep_sea_bsuite", QF_ENV_DEEP_SEA,
        [](qf_env_params &p) { p.deep_sea.size = 6; p.deep_sea.mapping = QF_DEEP_SEA_MAP_BSUITE; }, 2, E, 200);
    add("deep_sea_bsuite_stochastic", QF_ENV_DEEP_SEA,
        [](qf_env_params &p) { p.deep_sea.size = 64; p.deep_sea.stochastic = 1; p.deep_sea.mapping = QF_DEEP_SEA_MAP_BSUITE; }, 1, 40, 290);
    // 140 columns: the mapping bits come from every word of two Philox blocks
    add("deep_sea_140_per_run", QF_ENV_DEEP_SEA,
        [](qf_env_params &p) { p.deep_sea.size = 140; p.deep_sea.map_per_run = 1; }, 2, 40, 290);
    add("deep_sea_140_stochastic", QF_ENV_DEEP_SEA,
        [](qf_env_params &p) { p.deep_sea.size = 140; p.deep_sea.stochastic = 1; }, 1, 40, 290);
    add("cartpole", QF_ENV_CARTPOLE, [](qf_env_params &) {}, 2, E, 260);
    add("cartpole_horizon_30", QF_ENV_CARTPOLE, [](qf_env_params &p) { p.cartpole.horizon = 30; }, 2, E, 100);
    add("mountain_car", QF_ENV_MOUNTAIN_CAR, [](qf_env_params &) {}, 2, E, 430);
    add("chain", QF_ENV_CHAIN, [](qf_env_params &) {}, 2, E, 100);
    add("chain_no_slip", QF_ENV_CHAIN, [](qf_env_params &p) { p.chain.slip = 0.0f; }, 2, E, 100);
    add("bandit", QF_ENV_BANDIT, [](qf_env_params &) {}, 2, E, 40);
    add("gridworld", QF_ENV_GRIDWORLD, [](qf_env_params &) {}, 2, E, 40);
    add("gridworld_no_slip", QF_ENV_GRIDWORLD, [](qf_env_params &p) { p.gridworld.slip = 0.0f; }, 2, E, 40);
    // one run cut into blocks of another size per team (2 and 3 threads: 1280 + 1220, 896 x 2 +
    // 708), the Philox mapping read from a table filled per block, shared and per run; and blocks
    // too small for the table (16 envs per run, N = 10: Philox per step)
    add("deep_sea_one_run_2_threads", QF_ENV_DEEP_SEA, [](qf_env_params &) {}, 1, 2500, 60, 2);
    add("deep_sea_per_run_3_threads", QF_ENV_DEEP_SEA, [](qf_env_params &p) { p.deep_sea.map_per_run = 1; },
        1, 2500, 60, 3);
    add("deep_sea_small_blocks", QF_ENV_DEEP_SEA, [](qf_env_params &p) { p.deep_sea.map_per_run = 1; }, 160, 16,
        60, 2);
    add("cartpole_one_run_3_threads", QF_ENV_CARTPOLE, [](qf_env_params &) {}, 1, 2500, 100, 3);
    add("bandit_probs", QF_ENV_BANDIT,
        [](qf_env_params &p) {
            p.bandit.n_probs = p.bandit.arms = 3;
            p.bandit.probs[0] = 0.9f;
            p.bandit.probs[1] = 0.5f;
            p.bandit.probs[2] = 0.1f;
        },
        2, E, 40);
    return v;
}

class BlockLoopsMatchElementFunction : public ::testing::TestWithParam<int> {};

TEST_P(BlockLoopsMatchElementFunction, EveryArrayEveryStep) {
    const RefVariant c = ref_variants()[GetParam()];
    struct Team {  // the variant's team size while it runs, the default (auto) after
        int n;
        explicit Team(int threads) : n(threads) { if (n > 0) qf_cpu_set_threads(n); }
        ~Team() { if (n > 0) qf_cpu_set_threads(0); }
    } team(c.threads);
    CpuBackend cpu;
    Batch fast(cpu.b, c.kind, c.p, c.R, c.E, 17), ref(cpu.b, c.kind, c.p, c.R, c.E, 17);
    ASSERT_TRUE(fast.ok && ref.ok);
    const qf_env_batch &rb = ref.v.batch;
    const size_t n = (size_t)c.R * c.E, d = (size_t)qf_env_obs_dim(c.kind, &c.p);
    const int32_t n_act = qf_env_n_actions(c.kind, &c.p);
    std::vector<float> obs_fast(n * d), obs_ref(n * d);
    std::vector<int32_t> idx_fast(n), idx_ref(n), actions(n);
    int64_t episodes_ended = 0;
    for (int step = 0; step < c.steps; step++) {
        const uint32_t t = (uint32_t)step;
        // next_obs / next_index: both, obs only, index only, neither; actions drawn in the step for
        // half the steps, given (any valid ones, here a hash) for the other half
        const bool with_obs = step % 4 < 2, with_idx = step % 4 == 0 || step % 4 == 2;
        const bool given = step % 8 >= 4;
        std::fill(obs_fast.begin(), obs_fast.end(), -7.0f);
        std::fill(obs_ref.begin(), obs_ref.end(), -7.0f);
        std::fill(idx_fast.begin(), idx_fast.end(), -7);
        std::fill(idx_ref.begin(), idx_ref.end(), -7);
        for (size_t i = 0; i < n; i++) actions[i] = (int32_t)((i * 2654435761u + t * 40503u) >> 7) % n_act;
        ASSERT_EQ(cpu.b->env_step(cpu.b, &fast.v.batch, given ? actions.data() : nullptr, t,
                                  with_obs ? obs_fast.data() : nullptr, with_idx ? idx_fast.data() : nullptr),
                  QF_OK);
        for (int32_t r = 0; r < c.R; r++)
            for (int32_t e = 0; e < c.E; e++) {
                const int32_t a = given ? actions[(size_t)r * c.E + e]
                                        : qf_random_action(rb.keys[2 * r], rb.keys[2 * r + 1], e, t, n_act);
                qf_batch_step_one(&rb, r, e, a, t, with_obs ? obs_ref.data() : nullptr,
                                  with_idx ? idx_ref.data() : nullptr);
            }
        HostBatch hf = download_batch(fast.v), hr = download_batch(ref.v);
        const std::string at = std::string(c.name) + " step " + std::to_string(step);
        expect_same(hf, hr, at);
        ASSERT_TRUE(same_bits(obs_fast, obs_ref)) << at << ": next_obs differs";
        ASSERT_EQ(idx_fast, idx_ref) << at << ": next_index differs";
        if (::testing::Test::HasFailure()) return;
        // the observation after the auto-resets (what the agent acts on next): the backend's
        // env_observe against qf_batch_observe_one env by env
        std::fill(obs_fast.begin(), obs_fast.end(), -7.0f);
        std::fill(obs_ref.begin(), obs_ref.end(), -7.0f);
        std::fill(idx_fast.begin(), idx_fast.end(), -7);
        std::fill(idx_ref.begin(), idx_ref.end(), -7);
        ASSERT_EQ(cpu.b->env_observe(cpu.b, &fast.v.batch, with_obs ? obs_fast.data() : nullptr,
                                     with_idx ? idx_fast.data() : nullptr),
                  QF_OK);
        for (int32_t r = 0; r < c.R; r++)
            for (int32_t e = 0; e < c.E; e++)
                qf_batch_observe_one(&rb, r, e, with_obs ? obs_ref.data() : nullptr, with_idx ? idx_ref.data() : nullptr);
        ASSERT_TRUE(same_bits(obs_fast, obs_ref)) << at << ": env_observe's obs differs";
        ASSERT_EQ(idx_fast, idx_ref) << at << ": env_observe's index differs";
        for (size_t i = 0; i < n; i++) episodes_ended += (hr.flags[i] & (QF_TERMINAL | QF_TRUNCATED)) != 0;
    }
    // the statistics expect_same does not cover
    auto same_array = [&](auto *a, auto *b) { return std::memcmp(a, b, sizeof(*a) * n) == 0; };
    const qf_env_batch &fb = fast.v.batch;
    EXPECT_TRUE(same_array(fb.first_treasure, rb.first_treasure)) << c.name << ": first_treasure differs";
    EXPECT_TRUE(same_array(fb.solved_at, rb.solved_at)) << c.name << ": solved_at differs";
    EXPECT_TRUE(same_array(fb.converged_at, rb.converged_at)) << c.name << ": converged_at differs";
    EXPECT_TRUE(same_array(fb.ret_sum, rb.ret_sum)) << c.name << ": ret_sum differs";
    EXPECT_TRUE(same_array(fb.len_sum, rb.len_sum)) << c.name << ": len_sum differs";
    // auto-resets happened, many times per env
    EXPECT_GE(episodes_ended, (int64_t)(2 * n)) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Batch, BlockLoopsMatchElementFunction,
                         ::testing::Range(0, (int)ref_variants().size()),
                         [](const ::testing::TestParamInfo<int> &i) {
                             return std::string(ref_variants()[i.param].name);
                         });

}  // namespace
