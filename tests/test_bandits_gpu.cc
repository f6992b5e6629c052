// test_bandits_gpu.cc — bandit fleets on CPU vs CUDA (label `gpu`): the same fleet (every strategy,
// given and drawn arm means, several seeds) makes the same choices on both backends, so the pull
// and success counts, hence the regret, are bit-identical (the per-instance math is portable float
// code compiled without contraction on both sides). Skips with the reason when there is no usable GPU.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gpu_util.h"
#include "host/bandits.h"

namespace {

qf_config config_of(std::vector<std::string> words) {
    qf_config c;
    qf_config_default(&c);
    words.insert(words.begin(), "env=bandit");
    std::vector<char *> argv;
    for (auto &w : words) argv.push_back(&w[0]);
    char msg[512];
    EXPECT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    return c;
}

struct Counts {
    std::vector<int32_t> pulls, wins;
    std::vector<double> regret;
};

Counts run_on(qf_backend *b, const qf_config &cfg, int64_t T) {
    Counts c;
    qf_bandits bf;
    int bad;
    char err[512];
    EXPECT_EQ(qf_bandits_create(&bf, b, &cfg, &bad, err, sizeof err), QF_OK) << err;
    EXPECT_EQ(qf_bandits_run(&bf, T, err, sizeof err), QF_OK) << err;
    const size_t N = (size_t)bf.R * bf.E;
    c.pulls.resize(N * bf.K);
    c.wins.resize(N * bf.K);
    c.regret.resize(N);
    EXPECT_EQ(qf_bandits_regret(&bf, c.regret.data(), c.pulls.data(), err, sizeof err), QF_OK) << err;
    EXPECT_EQ(b->download(b, c.wins.data(), bf.f.wins, sizeof(int32_t) * c.wins.size()), QF_OK) << b->err;
    qf_bandits_destroy(&bf);
    return c;
}

TEST(BanditsGpu, CpuAndCudaCountsAreBitIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    for (const char *probs : {"env.probs=[0.9,0.8,0.7]", "env.arms=10"}) {
        const qf_config cfg = config_of({probs, "envs=512", "seeds=2", "seed=9", "bandit_eps=0.2", "bandit_temp=0.05"});
        const Counts a = run_on(be.cpu, cfg, 600), b = run_on(be.cuda, cfg, 600);
        ASSERT_EQ(a.pulls.size(), b.pulls.size());
        size_t first = a.pulls.size();
        for (size_t i = 0; i < a.pulls.size() && first == a.pulls.size(); i++)
            if (a.pulls[i] != b.pulls[i] || a.wins[i] != b.wins[i]) first = i;
        EXPECT_EQ(first, a.pulls.size()) << probs << ": counts differ first at element " << first;
        EXPECT_EQ(0, std::memcmp(a.regret.data(), b.regret.data(), sizeof(double) * a.regret.size())) << probs;
    }
}

} // namespace
