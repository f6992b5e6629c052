// test_learning.cc — learning, end to end (label `slow`; skipped by the sanitizer pass, which would
// take too long): MLP soft Q-learning on CartPole-v1, 16 seeds trained side by side in one fleet
// within a budget that fits CI on 2 cores. The truth is the environment's published semantics: the
// episode cap is 500 and Gym's CartPole-v0 counted the task solved at an average return of 195;
// a uniformly random policy averages about 22.
//
// The bar holds for the method, not for one machine's rounding (docs/reproducibility.md): the
// outcome of a seed depends on float rounding (OpenBLAS kernels per CPU, glibc variants), so every
// seed's last-20 return is a draw from the method's distribution. That distribution was measured
// under three arithmetic variants (OpenBLAS's Haswell, SkylakeX and Sandybridge kernels; its Zen
// kernels and the non-native build gave the Haswell numbers bit for bit) x 16 seeds; the bars
// below and their false-failure probabilities come from that pool (docs/reproducibility.md).
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "host/fleet.h"

namespace {

// The configuration under test: soft Q-learning targets (alpha = 2, about 2% of the Q scale of
// 1/(1-gamma) = 100), epsilon-greedy acting, a 64-64 MLP (chosen from a sweep of learning rates x
// temperatures; alpha = 0, plain DQN, was far less stable). History: a bar of >= 425 mean over 8
// seeds, set on one Xeon, failed on an AMD EPYC (mean 280) with the same code: the bars now come
// from the spread across arithmetic variants.
const char *const QF_CARTPOLE_WORDS =
    "env=cartpole runs=16 envs=1 steps=80000 hidden=[64,64] batch=128 buffer=50000 learning_starts=1000 "
    "target_every=250 eps_steps=10000 eps_end=0.01 lr=0.0005 alpha=2 loss=squared log_every=1000";

struct Logs {
    int32_t R = 0;
    std::vector<qf_log_point> pts; // [n][R]
};

void keep(void *ctx, const qf_fleet *f, const qf_log_point *p) {
    Logs *l = (Logs *)ctx;
    l->R = f->R;
    l->pts.insert(l->pts.end(), p, p + f->R);
}

// Mean return of run r over its last >= 20 episodes (whole log intervals from the end).
double last20(const Logs &l, int32_t r, int64_t *count) {
    double sum = 0;
    int64_t n = 0;
    for (int64_t i = (int64_t)l.pts.size() / l.R - 1; i >= 0 && n < 20; i--) {
        const qf_log_point &p = l.pts[(size_t)i * l.R + r];
        if (p.new_episodes) {
            sum += p.episodic_return * (double)p.new_episodes;
            n += p.new_episodes;
        }
    }
    *count = n;
    return n ? sum / (double)n : NAN;
}

TEST(Learning, CartPoleLearnsInMostOfSixteenSeeds) {
    char err[512];
    qf_backend *b = qf_cpu_open(err, sizeof err);
    ASSERT_NE(b, nullptr) << err;
    qf_cpu_set_threads(0); /* the product's default (auto team size): results do not depend on it */
    qf_config c;
    qf_config_default(&c);
    std::string words = QF_CARTPOLE_WORDS;
    std::vector<std::string> w;
    std::istringstream in(words);
    for (std::string t; in >> t;) w.push_back(t);
    std::vector<char *> argv;
    for (auto &x : w) argv.push_back(&x[0]);
    ASSERT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), err, sizeof err), 0) << err;
    qf_fleet f;
    ASSERT_EQ(qf_fleet_create(&f, b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    Logs logs;
    ASSERT_EQ(qf_fleet_train(&f, c.steps, keep, &logs, err, sizeof err), QF_OK) << err;
    int solved = 0;
    double sum = 0.0;
    for (int32_t r = 0; r < f.R; r++) {
        int64_t n;
        const double m = last20(logs, r, &n);
        std::printf("run %d (key %u, %u): mean return %.1f over the last %lld episodes\n", r, f.keys_host[2 * r],
                    f.keys_host[2 * r + 1], m, (long long)n);
        EXPECT_GE(n, 20);
        solved += m >= 195.0;
        sum += m;
    }
    EXPECT_EQ(f.R, 16);
    // Pooled over 3 arithmetic variants x 16 seeds (48 draws), a seed reached 195 with
    // probability 0.917 (one-sided 95% Clopper-Pearson lower bound 0.819). At least 9 of 16: the
    // false-failure probability is 1.6e-5 at 0.917 and 3.7e-3 at 0.819.
    EXPECT_GE(solved, 9) << "fewer than 9 of 16 seeds reached CartPole-v0's solved level 195 (" << QF_CARTPOLE_WORDS
                         << ")";
    // The mean over 16 seeds: resampling 16 of the pooled per-seed returns 200,000 times put its
    // 1e-4 quantile at 309 (pool mean 431, sd 114); 300 is below it, and 14x a random policy's 22.
    EXPECT_GE(sum / f.R, 300.0) << "mean over seeds (" << QF_CARTPOLE_WORDS << ")";
    qf_fleet_destroy(&f);
    qf_backend_close(b);
}

}  // namespace
