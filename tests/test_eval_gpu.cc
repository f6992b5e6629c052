// test_eval_gpu.cc — greedy evaluation (qf_fleet_evaluate) on the CUDA backend against the CPU
// reference (label gpu; runs on the CPU shim in CI, tests/cuda_emu). Tables (hidden=[]) make the
// Q-values exact on both backends (a row gather plus a bias, the prior added elementwise), and the
// dynamics are bit-identical, so every evaluation episode must return the same bits: on deterministic
// DeepSea with a bootstrap ensemble and priors (the heads' mean), on the slipping chain (the
// evaluation envs' own Philox counters), and with a pole-balancing MLP the evaluation must at least
// run (its GEMMs round differently on a device, so near-ties may act differently: no equality).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "gpu_util.h"
#include "host/fleet.h"

namespace {

qf_config config_of(std::vector<std::string> words) {
    qf_config c;
    qf_config_default(&c);
    std::vector<char *> argv;
    for (auto &s : words) argv.push_back(&s[0]);
    char msg[512];
    EXPECT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    return c;
}

TEST(GpuEval, GreedyEpisodesAreBitIdenticalOnCpuAndCuda) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const std::vector<std::vector<std::string>> cases = {
        {"env=deep_sea", "env.size=8", "hidden=[]", "explore=bootstrap", "heads=3", "runs=3"},
        {"env=chain", "env.slip=0.3", "env.size=6", "hidden=[]", "runs=4"},
    };
    for (const auto &words : cases) {
        qf_config c = config_of(words);
        qf_fleet fc, fg;
        char err[512];
        ASSERT_EQ(qf_fleet_create(&fc, be.cpu, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_create(&fg, be.cuda, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        // random tables (not the initial ones), the same on both
        std::vector<float> p((size_t)fc.R * fc.net.K * fc.net.P);
        std::mt19937 rng(3);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (auto &v : p) v = u(rng);
        ASSERT_EQ(qf_fleet_set_params(&fc, p.data()), QF_OK);
        ASSERT_EQ(qf_fleet_set_params(&fg, p.data()), QF_OK) << be.cuda->err;
        const int n = 64;
        for (int64_t t : {0, 5000}) { // two evaluations: other counters, other draws
            fc.t = fg.t = t;
            std::vector<double> rc(fc.R), rg(fg.R);
            ASSERT_EQ(qf_fleet_evaluate(&fc, n, rc.data(), err, sizeof err), QF_OK) << err;
            ASSERT_EQ(qf_fleet_evaluate(&fg, n, rg.data(), err, sizeof err), QF_OK) << err;
            const std::vector<double> ec(fc.eval.first, fc.eval.first + (size_t)fc.R * n),
                eg(fg.eval.first, fg.eval.first + (size_t)fg.R * n);
            EXPECT_EQ(ec, eg) << words[0] << " t=" << t << ": episode returns differ between cpu and cuda";
            EXPECT_EQ(rc, rg) << words[0];
        }
        qf_fleet_destroy(&fc);
        qf_fleet_destroy(&fg);
    }
}

TEST(GpuEval, MlpEvaluationRunsOnCudaDuringTraining) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    qf_config c = config_of({"env=cartpole", "env.horizon=50", "hidden=[16,16]", "explore=bootstrap", "heads=2",
                             "runs=2", "batch=16", "buffer=200", "learning_starts=32", "log_every=20",
                             "eval_every=40", "eval_episodes=3"});
    qf_fleet f;
    char err[512];
    ASSERT_EQ(qf_fleet_create(&f, be.cuda, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    std::vector<double> last;
    auto keep = [](void *ctx, const qf_fleet *fl, const qf_log_point *p) {
        auto *v = (std::vector<double> *)ctx;
        for (int r = 0; r < fl->R; r++) v->push_back(p[r].eval_return);
    };
    ASSERT_EQ(qf_fleet_train(&f, 80, keep, &last, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(last.size(), 8u); // 4 log points x 2 runs; evaluations at steps 40 and 80
    for (int i = 0; i < 8; i++) {
        const bool due = i >= 2 && (i / 2) % 2 == 1;
        EXPECT_EQ(!std::isnan(last[i]), due) << i;
        if (due) { // CartPole pays 1 per step: a return in [1, horizon]
            EXPECT_GE(last[i], 1.0);
            EXPECT_LE(last[i], 50.0);
        }
    }
    qf_fleet_destroy(&f);
}

}  // namespace
