// test_demos.cc — learning from demonstrations (issue 15 item 4): the replay's demo part, the
// share of demonstrations in each minibatch, the demo loss and learning on DeepSea. Truths: the
// published semantics of DeepSea (bsuite: the optimal episode goes right N times and returns
// 1 - move_cost = 0.99), hand-computed rounding of demo_ratio * batch, central finite differences
// of the demo loss, isolation (a run without demos is the same run in a fleet without a demo part,
// bit for bit) and the exploration bound of DeepSea.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <sys/stat.h>
#include <sstream>
#include <string>
#include <vector>

#include "host/fleet.h"
#include "test_util.h"

namespace {

struct Fleet {
    qf_backend *b = nullptr;
    qf_config c;
    qf_fleet f;
    bool made = false;
    char err[512] = {0};
    // words: the configuration; hp_edit: per-run changes of the hyperparameters (may be null)
    void make(const std::string &words, void (*hp_edit)(int32_t r, qf_run_hp *h) = nullptr) {
        b = qf_cpu_open(err, sizeof err);
        ASSERT_NE(b, nullptr) << err;
        qf_config_default(&c);
        std::vector<std::string> w;
        std::istringstream in(words);
        for (std::string t; in >> t;) w.push_back(t);
        std::vector<char *> argv;
        for (auto &x : w) argv.push_back(&x[0]);
        ASSERT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), err, sizeof err), 0) << err;
        const int32_t R = (int32_t)(c.runs * c.seeds);
        std::vector<qf_run_hp> hp((size_t)R);
        for (int32_t r = 0; r < R; r++) {
            qf_fleet_hp_from_config(&c, &hp[(size_t)r]);
            if (hp_edit) hp_edit(r, &hp[(size_t)r]);
        }
        ASSERT_EQ(qf_fleet_create(&f, b, &c, hp.data(), nullptr, err, sizeof err), QF_OK) << err;
        made = true;
    }
    ~Fleet() {
        if (made) qf_fleet_destroy(&f);
        if (b) qf_backend_close(b);
    }
    template <class T> std::vector<T> get(const T *p, size_t n) {
        std::vector<T> v(n);
        if (n) {
            EXPECT_EQ(b->download(b, v.data(), p, sizeof(T) * n), QF_OK);
        }
        return v;
    }
};

// ---- 1. the demo part: the expert's episodes, never overwritten by the ring ----------------------

TEST(DemoPart, HoldsOptimalEpisodesAndSurvivesTheRingWrapping) {
    Fleet x;
    const int N = 6, M = 3;
    // buffer 64 slots, 600 steps: the ring wraps about 9 times while the learner samples
    x.make("env=deep_sea env.size=6 seeds=2 steps=600 buffer=64 batch=16 learning_starts=32 demos=3 demo_ratio=0.5 "
           "demo_weight=1 hidden=[16]");
    const qf_demo_part &dp = x.f.replay.demo;
    const int32_t R = x.f.R, C = dp.C;
    ASSERT_EQ(C, M * N); // M episodes of DeepSea's N steps
    auto size0 = x.get(dp.size, (size_t)R);
    auto act0 = x.get(dp.action, (size_t)R * C);
    auto rew0 = x.get(dp.reward, (size_t)R * C);
    auto term0 = x.get(dp.terminal, (size_t)R * C);
    auto idx0 = x.get(dp.idx, (size_t)R * C);
    auto nidx0 = x.get(dp.next_idx, (size_t)R * C);
    for (int32_t r = 0; r < R; r++) {
        ASSERT_EQ(size0[(size_t)r], M * N);
        for (int i = 0; i < M; i++) {
            // bsuite: the optimal episode moves right at every row (cell (t, t)) and returns 0.99
            double ret = 0;
            for (int t = 0; t < N; t++) {
                const size_t j = (size_t)r * C + (size_t)i * N + t;
                EXPECT_EQ(idx0[j], t * N + t) << "run " << r << " episode " << i << " step " << t;
                EXPECT_EQ(term0[j], t == N - 1 ? 1 : 0);
                if (t < N - 1) {
                    EXPECT_EQ(nidx0[j], (t + 1) * N + t + 1);
                }
                ret += rew0[j];
            }
            EXPECT_NEAR(ret, 0.99, 1e-5);
        }
    }
    ASSERT_EQ(qf_fleet_train(&x.f, x.c.steps, nullptr, nullptr, x.err, sizeof x.err), QF_OK) << x.err;
    EXPECT_GT((int64_t)x.f.t * x.f.E, 8 * (int64_t)x.f.C); // the ring wrapped
    EXPECT_EQ(x.get(dp.size, (size_t)R), size0);
    EXPECT_EQ(x.get(dp.action, (size_t)R * C), act0);
    EXPECT_EQ(x.get(dp.reward, (size_t)R * C), rew0);
    EXPECT_EQ(x.get(dp.terminal, (size_t)R * C), term0);
    EXPECT_EQ(x.get(dp.idx, (size_t)R * C), idx0);
    EXPECT_EQ(x.get(dp.next_idx, (size_t)R * C), nidx0);
}

// A fleet with demos killed and resumed from its snapshot trains on bit for bit as if never stopped
// (the demo part travels in the snapshot and is rebuilt identically at creation); a snapshot whose
// demo part was changed is refused, naming it.
TEST(DemoPart, ResumeIsBitIdenticalAndAForgedDemoPartIsRefused) {
    const std::string words = "env=chain env.size=6 env.slip=0.2 seeds=2 steps=400 buffer=100 batch=16 learning_starts=32 "
                              "demos=2 demo_weight=0.5 alpha=0.3 explore=boltzmann hidden=[16]";
    Fleet straight, first, resumed;
    straight.make(words);
    first.make(words);
    resumed.make(words);
    ASSERT_GT(straight.f.replay.demo.C, 0);
    ASSERT_EQ(qf_fleet_train(&straight.f, 400, nullptr, nullptr, straight.err, sizeof straight.err), QF_OK);
    ASSERT_EQ(qf_fleet_train(&first.f, 200, nullptr, nullptr, first.err, sizeof first.err), QF_OK);
    std::vector<char> mid(qf_fleet_snapshot_bytes(&first.f)), end(qf_fleet_snapshot_bytes(&straight.f)),
        end2(qf_fleet_snapshot_bytes(&resumed.f));
    ASSERT_EQ(qf_fleet_snapshot(&first.f, mid.data()), QF_OK);
    ASSERT_EQ(qf_fleet_restore(&resumed.f, mid.data()), QF_OK) << resumed.b->err;
    ASSERT_EQ(qf_fleet_train(&resumed.f, 200, nullptr, nullptr, resumed.err, sizeof resumed.err), QF_OK);
    ASSERT_EQ(qf_fleet_snapshot(&straight.f, end.data()), QF_OK);
    ASSERT_EQ(qf_fleet_snapshot(&resumed.f, end2.data()), QF_OK);
    ASSERT_EQ(end.size(), end2.size());
    EXPECT_EQ(std::memcmp(end.data(), end2.data(), end.size()), 0) << "the resumed fleet differs from the straight one";
    // a forged demo action (the expert's action of run 1's first demo transition flipped)
    const qf_demo_part &dp = first.f.replay.demo;
    const size_t off = (size_t)((const char *)(dp.action + dp.C) - (const char *)first.f.block);
    int32_t a;
    std::memcpy(&a, mid.data() + off, sizeof a);
    a = 1 - a;
    std::memcpy(mid.data() + off, &a, sizeof a);
    char err[512];
    EXPECT_NE(qf_fleet_check_snapshot(&first.f, mid.data(), INT64_MAX, err, sizeof err), QF_OK);
    EXPECT_NE(std::strstr(err, "demo part"), nullptr) << err;
    EXPECT_NE(std::strstr(err, "run 1"), nullptr) << err;
}

// ---- 2. the share of demonstrations in a minibatch -----------------------------------------------

const float kRatios[4] = {0.25f, 0.1f, 0.5f, 0.3f};
void set_ratio(int32_t r, qf_run_hp *h) {
    h->demo_ratio = kRatios[r % 4];
    if (r == 4) h->demos = 0; // a run without demos draws none
}

TEST(DemoBatch, DemoCountPerRunIsRoundedRatioTimesBatch) {
    Fleet x;
    x.make("env=deep_sea env.size=5 runs=5 steps=200 buffer=100 batch=10 learning_starts=20 demos=2 hidden=[8]",
           set_ratio);
    ASSERT_EQ(qf_fleet_train(&x.f, x.c.steps, nullptr, nullptr, x.err, sizeof x.err), QF_OK) << x.err;
    const int32_t R = x.f.R, B = x.f.B;
    // round half up of ratio x 10, by hand: 2.5 -> 3, 1, 5, 3; the run without demos: 0
    const int expect[5] = {3, 1, 5, 3, 0};
    auto is_demo = x.get(x.f.sample.is_demo, (size_t)R * B);
    auto idx = x.get(x.f.sample.idx, (size_t)R * B);
    auto mask = x.get(x.f.sample.mask, (size_t)R * B);
    for (int32_t r = 0; r < R; r++) {
        int n = 0;
        for (int32_t j = 0; j < B; j++) {
            const size_t t = (size_t)r * B + j;
            if (!is_demo[t]) continue;
            n++;
            // a demo transition is the expert's: on the diagonal, the right action of its cell
            const int32_t row = idx[t] / 5, col = idx[t] % 5;
            EXPECT_EQ(row, col);
            EXPECT_EQ(mask[t], ~(qf_mask)0) << "every head learns from a demo transition";
        }
        EXPECT_EQ(n, expect[r]) << "run " << r << " ratio " << kRatios[r % 4];
    }
}

// ---- 3. the demo loss against central finite differences ----------------------------------------

double demo_loss_at(const qf_run_hp &h, const std::vector<float> &q, int a_d) {
    std::vector<float> dq(q.size(), 0.0f);
    return qf_demo_loss(&h, (int32_t)q.size(), 1, q.data(), a_d, 1.0f, dq.data());
}

TEST(DemoLoss, GradientMatchesCentralFiniteDifferences) {
    const std::vector<float> q = {0.3f, -1.2f, 0.9f, 0.1f, -0.4f};
    for (float alpha : {0.0f, 0.2f, 1.0f, 3.0f})
        for (int a_d = 0; a_d < 5; a_d++) {
            qf_run_hp h = default_hp();
            h.alpha = alpha;
            h.demo_weight = 0.7f;
            h.demo_margin = 0.8f; // alpha = 0: kinks where q_a + 0.8 ties; q is away from them
            const int B = 4;
            std::vector<float> dq(5, 0.25f); // the loss adds to what is there
            const float L = qf_demo_loss(&h, 5, B, q.data(), a_d, 1.0f, dq.data());
            if (alpha > 0.0f) { // -log softmax(q / alpha)[a_d], in double
                double m = -1e30, z = 0;
                for (float v : q) m = std::max(m, (double)v);
                for (float v : q) z += std::exp((v - m) / alpha);
                EXPECT_NEAR(L, 0.7 * (-(q[a_d] - m) / alpha + std::log(z)), 1e-5 * (1 + std::fabs(L)));
            }
            for (int a = 0; a < 5; a++) {
                const float hstep = 1e-3f;
                std::vector<float> qp = q, qm = q;
                qp[a] += hstep;
                qm[a] -= hstep;
                const double fd = (demo_loss_at(h, qp, a_d) - demo_loss_at(h, qm, a_d)) / (qp[a] - qm[a]);
                // dq holds 0.25 + d loss / d q / B; float32 loss values of size ~3 differenced over
                // 2e-3 carry about 3 * 6e-8 / 2e-3 = 1e-4 of rounding
                EXPECT_NEAR((dq[a] - 0.25f) * B, fd, 2e-3) << "alpha " << alpha << " a_d " << a_d << " a " << a;
            }
        }
}

TEST(DemoLoss, LargeMarginIsZeroWhenTheDemoActionLeadsByTheMargin) {
    qf_run_hp h = default_hp();
    h.demo_weight = 1.0f;
    h.demo_margin = 0.5f;
    const float q[3] = {1.0f, 1.6f, 0.2f}; // a_d = 1 leads the others by more than 0.5
    float dq[3] = {0, 0, 0};
    EXPECT_EQ(qf_demo_loss(&h, 3, 1, q, 1, 1.0f, dq), 0.0f);
    EXPECT_EQ(dq[0], 0.0f);
    EXPECT_EQ(dq[1], 0.0f);
    // a_d = 0: max_a [q_a + 0.5 (a != 0)] = 2.1 at a = 1, so the loss is 2.1 - 1.0 = 1.1
    EXPECT_NEAR(qf_demo_loss(&h, 3, 1, q, 0, 1.0f, dq), 1.1f, 1e-6);
    EXPECT_EQ(dq[0], -1.0f);
    EXPECT_EQ(dq[1], 1.0f);
}

// ---- 4. without demos nothing changes -----------------------------------------------------------

void demos_on_odd(int32_t r, qf_run_hp *h) {
    if (r % 2 == 0) h->demos = 0, h->demo_ratio = h->demo_weight = h->demo_margin = 0.0f;
}

// Run 0 (no demos) of a fleet whose other runs have a demo part and a demo loss equals, bit for bit,
// the same run trained in a fleet with no demo part at all (the learner of before the demo part:
// no is_demo flags, no demo draws, no demo loss).
TEST(DemoOff, RunWithoutDemosIsBitIdenticalToAFleetWithoutADemoPart) {
    const std::string base = "env=deep_sea env.size=8 steps=800 buffer=300 batch=16 learning_starts=50 hidden=[16] "
                             "alpha=0.1 explore=boltzmann";
    Fleet alone, mixed;
    alone.make(base + " runs=1");
    mixed.make(base + " runs=2 demos=2 demo_weight=1", demos_on_odd);
    ASSERT_EQ(alone.f.replay.demo.C, 0);
    ASSERT_EQ(alone.f.sample.is_demo, nullptr);
    ASSERT_GT(mixed.f.replay.demo.C, 0);
    // the same key for run 0 in both fleets (key (seed, c) with c = 0)
    ASSERT_EQ(alone.f.keys_host[0], mixed.f.keys_host[0]);
    ASSERT_EQ(alone.f.keys_host[1], mixed.f.keys_host[1]);
    ASSERT_EQ(qf_fleet_train(&alone.f, alone.c.steps, nullptr, nullptr, alone.err, sizeof alone.err), QF_OK);
    ASSERT_EQ(qf_fleet_train(&mixed.f, mixed.c.steps, nullptr, nullptr, mixed.err, sizeof mixed.err), QF_OK);
    const size_t P = (size_t)alone.f.net.P;
    auto pa = alone.get(alone.f.params, P);
    auto pm = mixed.get(mixed.f.params, P); // run 0's network: the first block
    ASSERT_EQ(std::memcmp(pa.data(), pm.data(), P * sizeof(float)), 0) << "run 0's parameters differ";
    // and the run with demos did learn something else (the comparison can fail)
    auto pm1 = mixed.get(mixed.f.params + P, P);
    EXPECT_NE(std::memcmp(pm.data(), pm1.data(), P * sizeof(float)), 0);
}

// demo_weight = 0: the demo transitions are replayed but add no loss, so the margin (read only by
// the loss) changes nothing, bit for bit; demo_weight > 0 changes the run (the loss is wired).
TEST(DemoOff, ZeroDemoWeightAddsNoLoss) {
    const std::string base = "env=deep_sea env.size=8 steps=600 buffer=300 batch=16 learning_starts=50 hidden=[16] "
                             "demos=2 runs=1";
    Fleet w0, w0m, w1;
    w0.make(base + " demo_weight=0 demo_margin=0.8");
    w0m.make(base + " demo_weight=0 demo_margin=5");
    w1.make(base + " demo_weight=1 demo_margin=0.8");
    for (Fleet *x : {&w0, &w0m, &w1})
        ASSERT_EQ(qf_fleet_train(&x->f, x->c.steps, nullptr, nullptr, x->err, sizeof x->err), QF_OK) << x->err;
    const size_t P = (size_t)w0.f.net.P;
    auto p0 = w0.get(w0.f.params, P), p0m = w0m.get(w0m.f.params, P), p1 = w1.get(w1.f.params, P);
    EXPECT_EQ(std::memcmp(p0.data(), p0m.data(), P * sizeof(float)), 0);
    EXPECT_NE(std::memcmp(p0.data(), p1.data(), P * sizeof(float)), 0);
}

// ---- 5. learning from demonstrations on DeepSea --------------------------------------------------

// DeepSea of size N = 16 with epsilon-greedy acting at a fixed epsilon = 0.1 and 100 episodes per run.
// Without demonstrations the treasure must be found by exploration: dithering reaches it with
// probability about 2^-N per episode (Osband et al. 2019, bsuite: epsilon-greedy needs a number of
// episodes exponential in N; a uniformly random policy hits the treasure with probability exactly
// 2^-N = 1.5e-5 per episode, so at most 100 * 1.5e-5 = 0.15% over the whole budget). With one
// expert episode in the demo part every seed must reach the treasure (episodes_to_converge, the
// first episode with return >= 0.95) and its greedy policy must be the optimal one (evaluation
// return 0.99 from bsuite's semantics) within the same budget. Measured on one machine: all seeds
// converged at episodes 17 to 20 (learning starts after 12.5 episodes), a margin of 5x to 100.
TEST(DemoLearning, OneDemoLetsEpsilonGreedySolveDeepSea16) {
    Fleet x;
    x.make("env=deep_sea env.size=16 seeds=4 steps=1600 eps_start=0.1 eps_end=0.1 learning_starts=200 demos=1 "
           "demo_weight=1 eval_every=1600 eval_episodes=1 log_every=1600");
    std::vector<qf_log_point> pts;
    auto keep = [](void *ctx, const qf_fleet *f, const qf_log_point *p) {
        auto *v = (std::vector<qf_log_point> *)ctx;
        v->insert(v->end(), p, p + f->R);
    };
    ASSERT_EQ(qf_fleet_train(&x.f, x.c.steps, keep, &pts, x.err, sizeof x.err), QF_OK) << x.err;
    ASSERT_GE(pts.size(), (size_t)x.f.R);
    const qf_log_point *last = &pts[pts.size() - (size_t)x.f.R];
    for (int32_t r = 0; r < x.f.R; r++) {
        std::printf("seed %d: episodes_to_converge %lld, eval_return %.3f\n", r,
                    (long long)last[r].converged_at, last[r].eval_return);
        EXPECT_GT(last[r].converged_at, 0) << "seed " << r << " never reached the treasure";
        EXPECT_NEAR(last[r].eval_return, 0.99, 1e-4) << "seed " << r << "'s greedy policy is not the optimal one";
    }
}

}  // namespace

namespace {

// ---- 6. bad input: one line naming the key, exit 2, before anything is written ------------------

TEST(DemoCli, BadInputIsRefusedNamingTheKey) {
    const std::string out = " out=" + std::string(::testing::TempDir()) + "qf_demos_cli --quiet";
    expect_cli("train demos=1,2" + out, 2, "demos=1,2: train, sweep and compare take one count");
    expect_cli("train demos=-3" + out, 2, "demos=-3");
    expect_cli("train demos=abc" + out, 2, "demos=abc");
    expect_cli("train env=cartpole demos=2" + out, 2, "env=cartpole has not (allowed: deep_sea, chain, gridworld)");
    expect_cli("train env=bandit demos=2" + out, 2, "demos=2 draws episodes from the exact solver's policy");
    expect_cli("train demo_weight=1" + out, 2, "demo_weight is a setting of the replay's demo part");
    expect_cli("train demos=0 demo_ratio=0.5" + out, 2, "demo_ratio is a setting");
    expect_cli("train demos=2 demo_ratio=1.5" + out, 2, "demo_ratio");
    // a ratio whose round(ratio x batch) is 0 draws no demo transition: the demos would do nothing
    // (batch 128: 0.5 / 128 = 0.0039 is the least that draws one); found by a new-user trial
    expect_cli("train demos=4 demo_ratio=0 demo_weight=5" + out, 2, "the demonstrations would never be used");
    expect_cli("train demos=4 demo_ratio=0.003" + out, 2, "round(0.003 x batch 128) = 0");
    // nothing was written for any of them
    struct stat st;
    EXPECT_NE(stat((std::string(::testing::TempDir()) + "qf_demos_cli").c_str(), &st), 0);
    // the irl meaning of the key is kept: a list of counts
    const std::string irl_out = std::string(::testing::TempDir()) + "qf_demos_irl";
    CliResult r = run_qfleet("irl env=gridworld env.size=4 demos=2,3 iters=2 --overwrite out=" + irl_out);
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("2 demo counts"), std::string::npos) << r.out;
    r = run_qfleet("irl env=gridworld env.size=4 iters=2 --overwrite out=" + irl_out); // default: 64
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("1 demo count x"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" 64 "), std::string::npos) << r.out;
}

}  // namespace
