// test_gpu.cc — CPU vs CUDA (label `gpu`): the same seed gives bit-identical trajectories on both
// backends, for every environment, with random actions drawn on the device, dense and index
// observations and auto-reset. Skips with the reason when this machine has no usable GPU.
#include "batch_util.h"

namespace {

struct Backends {
    qf_backend *cpu = nullptr, *cuda = nullptr;
    std::string why;
    Backends() {
        char err[512];
        cpu = qf_cpu_open(err, sizeof err);
        cuda = qf_cuda_open(err, sizeof err);
        if (!cuda) why = err;
    }
    ~Backends() {
        qf_backend_close(cpu);
        qf_backend_close(cuda);
    }
};

// Device buffers for next_obs / next_index on one backend, with host copies.
struct ObsBuffers {
    qf_backend *b;
    float *obs;
    int32_t *idx;
    std::vector<float> host_obs;
    std::vector<int32_t> host_idx;
    ObsBuffers(qf_backend *be, size_t n, size_t d) : b(be), host_obs(n * d), host_idx(n) {
        obs = (float *)b->alloc(b, sizeof(float) * n * d);
        idx = (int32_t *)b->alloc(b, sizeof(int32_t) * n);
        EXPECT_TRUE(obs && idx) << b->err;
    }
    ~ObsBuffers() {
        b->release(b, obs);
        b->release(b, idx);
    }
    void fetch() {
        ASSERT_EQ(b->download(b, host_obs.data(), obs, sizeof(float) * host_obs.size()), QF_OK) << b->err;
        ASSERT_EQ(b->download(b, host_idx.data(), idx, sizeof(int32_t) * host_idx.size()), QF_OK) << b->err;
    }
};

class GpuEveryKind : public ::testing::TestWithParam<int> {};

TEST_P(GpuEveryKind, CpuAndCudaTrajectoriesAreBitIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int kind = GetParam();
    qf_env_params p = default_params(kind);
    if (kind == QF_ENV_DEEP_SEA) p.deep_sea.stochastic = 1;  // exercises normal noise and slips
    if (kind == QF_ENV_CARTPOLE) p.cartpole.horizon = 60;     // many resets within the test
    const int R = 4, E = 1000, T = 120;
    Batch c(be.cpu, kind, p, R, E, 2024), g(be.cuda, kind, p, R, E, 2024);
    ASSERT_TRUE(c.ok && g.ok);
    const size_t n = (size_t)R * E, d = (size_t)c.v.obs_dim;
    ObsBuffers cb(be.cpu, n, d), gb(be.cuda, n, d);
    int obs_mismatch = 0, idx_mismatch = 0;
    for (int t = 0; t < T; t++) {
        ASSERT_EQ(be.cpu->env_step(be.cpu, &c.v.batch, nullptr, (uint32_t)t, cb.obs, cb.idx), QF_OK);
        ASSERT_EQ(be.cuda->env_step(be.cuda, &g.v.batch, nullptr, (uint32_t)t, gb.obs, gb.idx), QF_OK)
            << be.cuda->err;
        cb.fetch();
        gb.fetch();
        obs_mismatch += !same_bits(cb.host_obs, gb.host_obs);
        idx_mismatch += cb.host_idx != gb.host_idx;
    }
    EXPECT_EQ(obs_mismatch, 0) << "steps whose next observations differ between cpu and cuda";
    EXPECT_EQ(idx_mismatch, 0) << "steps whose next state indices differ between cpu and cuda";
    expect_same(download_batch(c.v), download_batch(g.v), "cpu vs cuda");
}

INSTANTIATE_TEST_SUITE_P(Gpu, GpuEveryKind,
                         ::testing::Values(QF_ENV_DEEP_SEA, QF_ENV_CARTPOLE, QF_ENV_MOUNTAIN_CAR,
                                           QF_ENV_CHAIN, QF_ENV_BANDIT),
                         [](const ::testing::TestParamInfo<int> &i) {
                             return std::string(qf_env_spec_of(i.param)->name);
                         });

// Given actions (not drawn) are honoured identically; observe agrees after auto-reset.
TEST(Gpu, GivenActionsAndObserveAgree) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    qf_env_params p = default_params(QF_ENV_MOUNTAIN_CAR);
    const int R = 2, E = 777;
    Batch c(be.cpu, QF_ENV_MOUNTAIN_CAR, p, R, E, 9), g(be.cuda, QF_ENV_MOUNTAIN_CAR, p, R, E, 9);
    ASSERT_TRUE(c.ok && g.ok);
    std::vector<int32_t> acts(R * E);
    int32_t *dacts = (int32_t *)be.cuda->alloc(be.cuda, sizeof(int32_t) * acts.size());
    float *dobs = (float *)be.cuda->alloc(be.cuda, sizeof(float) * 2 * acts.size());
    std::vector<float> cobs(2 * acts.size()), gobs(2 * acts.size());
    for (int t = 0; t < 450; t++) {
        for (size_t i = 0; i < acts.size(); i++) acts[i] = (int32_t)((i * 7 + (size_t)t / 3) % 3);
        ASSERT_EQ(be.cuda->upload(be.cuda, dacts, acts.data(), sizeof(int32_t) * acts.size()), QF_OK);
        ASSERT_EQ(be.cpu->env_step(be.cpu, &c.v.batch, acts.data(), (uint32_t)t, nullptr, nullptr), QF_OK);
        ASSERT_EQ(be.cuda->env_step(be.cuda, &g.v.batch, dacts, (uint32_t)t, nullptr, nullptr), QF_OK);
    }
    ASSERT_EQ(be.cpu->env_observe(be.cpu, &c.v.batch, cobs.data(), nullptr), QF_OK);
    ASSERT_EQ(be.cuda->env_observe(be.cuda, &g.v.batch, dobs, nullptr), QF_OK);
    ASSERT_EQ(be.cuda->download(be.cuda, gobs.data(), dobs, sizeof(float) * gobs.size()), QF_OK);
    EXPECT_TRUE(same_bits(cobs, gobs));
    expect_same(download_batch(c.v), download_batch(g.v), "cpu vs cuda, given actions");
    be.cuda->release(be.cuda, dacts);
    be.cuda->release(be.cuda, dobs);
}

}  // namespace
