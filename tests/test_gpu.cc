// test_gpu.cc — CPU vs CUDA (label `gpu`): the same seed gives bit-identical trajectories on both
// backends, for every environment, with random actions drawn on the device, dense and index
// observations and auto-reset. Skips with the reason when this machine has no usable GPU.
#include "batch_util.h"
#include "gpu_util.h"
#include "test_util.h"

#include <cmath>
#include <cstdlib>
#include <limits>

namespace {

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
                                           QF_ENV_CHAIN, QF_ENV_BANDIT, QF_ENV_GRIDWORLD),
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

// ------------------------------------------------------------------------------------------------
// Learner operations: the CUDA twin against the CPU reference on the same inputs. Initial
// parameters, acting with the same Q, and replay are bit-identical; GEMM-based results agree to
// float32 tolerance (cuBLAS and OpenBLAS sum in different orders).
namespace {

std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
    std::vector<float> v(n);
    uint32_t s = seed * 2654435761u + 1;
    for (auto &x : v) {
        s = s * 1664525u + 1013904223u;
        x = lo + (hi - lo) * (float)(s >> 8) * 5.9604644775390625e-08f;
    }
    return v;
}

qf_run_hp test_hp() {
    qf_run_hp h = default_hp();
    h.lr = 1e-3f;
    h.gamma = 0.9f;
    h.alpha = 0.1f;
    h.eps_start = 0.5f;
    h.eps_end = 0.1f;
    h.eps_steps = 100;
    h.tau = 0.5f;
    h.max_grad_norm = 1.0f;
    return h;
}

TEST(GpuLearn, InitForwardBackwardTdAdamAgree) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    for (int variant = 0; variant < 4; variant++) {  // {dense, embedding} x {ReLU, GELU}
        const int embed = variant & 1;
        const int R = 3, K = 2, M = 37, B = M;
        qf_net net = make_net(R, K, embed, embed ? std::vector<int>{11, 16, 8, 3} : std::vector<int>{5, 16, 8, 3});
        net.act = variant >= 2 ? QF_ACTIVATION_GELU : QF_ACTIVATION_RELU;
        const size_t G = (size_t)R * K, P = (size_t)net.P, A = 3;
        std::vector<uint32_t> keys = {1, 0, 1, 1, 7, 9};
        std::vector<float> x = uniform((size_t)R * M * 5, 3, -1, 1);
        std::vector<int32_t> xi(R * M);
        for (size_t i = 0; i < xi.size(); i++) xi[i] = (int32_t)((i * 7) % 11);
        std::vector<float> hq[2], hgr[2], hdq[2], hloss[2], hp2[2], hinit[2];
        qf_backend *bs[2] = {be.cpu, be.cuda};
        for (int k = 0; k < 2; k++) {
            qf_backend *b = bs[k];
            DevBuf<uint32_t> dkeys(b, keys);
            DevBuf<float> params(b, G * P), acts(b, G * M * (size_t)net.H), q(b, G * M * A), grads(b, G * P),
                work(b, (size_t)qf_net_work_floats(&net, M)), dx(b, x);
            DevBuf<int32_t> dxi(b, xi);
            ASSERT_EQ(b->net_init(b, &net, dkeys.p, QF_STREAM_INIT, params.p), QF_OK) << b->err;
            hinit[k] = params.get();
            ASSERT_EQ(b->net_forward(b, &net, params.p, M, dx.p, dxi.p, acts.p, q.p), QF_OK) << b->err;
            hq[k] = q.get();
            // TD against a target = the same network (s' := s), then backward and one Adam step
            std::vector<qf_run_hp> hp(R, test_hp());
            hp[1].alpha = 0.0f;
            hp[2].loss = QF_LOSS_SQUARED;
            hp[2].weight_decay = 0.7f;  // AdamW on the CUDA twin too
            DevBuf<qf_run_hp> dhp(b, hp);
            std::vector<int32_t> act(R * B);
            std::vector<float> rew = uniform(R * B, 5, -1, 1);
            std::vector<uint8_t> term(R * B);
            for (size_t i = 0; i < act.size(); i++) {
                act[i] = (int32_t)(i % 3);
                term[i] = (uint8_t)(i % 5 == 0);
            }
            DevBuf<int32_t> dact(b, act);
            DevBuf<float> drew(b, rew), dq(b, G * B * A), loss(b, G), qmean(b, G), m(b, G * P), v(b, G * P),
                gnorm(b, G);
            DevBuf<uint8_t> dterm(b, term);
            DevBuf<int32_t> adam_t(b, R), status(b, R);
            DevBuf<uint32_t> dmask(b, std::vector<uint32_t>((size_t)R * B, 0xffffffffu));
            DevBuf<float> dintr(b, std::vector<float>((size_t)R * B, 0.0f)), imean(b, R);
            qf_sample s;
            std::memset(&s, 0, sizeof s);
            s.action = dact.p;
            s.reward = drew.p;
            s.terminal = dterm.p;
            s.mask = dmask.p;
            s.intr = dintr.p;
            ASSERT_EQ(b->td(b, &net, dhp.p, B, &s, q.p, q.p, nullptr, dq.p, loss.p, qmean.p, imean.p), QF_OK)
                << b->err;
            hdq[k] = dq.get();
            hloss[k] = loss.get();
            ASSERT_EQ(b->net_backward(b, &net, params.p, M, dx.p, dxi.p, acts.p, dq.p, grads.p, work.p), QF_OK)
                << b->err;
            hgr[k] = grads.get();
            ASSERT_EQ(b->adam(b, &net, dhp.p, params.p, grads.p, m.p, v.p, adam_t.p, status.p, gnorm.p), QF_OK)
                << b->err;
            hp2[k] = params.get();
        }
        EXPECT_TRUE(same_bits(hinit[0], hinit[1])) << "initial parameters differ (embed=" << embed << ")";
        expect_close(hq[0], hq[1], 1e-5f, "forward q");
        expect_close(hdq[0], hdq[1], 1e-4f, "td dq");
        expect_close(hloss[0], hloss[1], 1e-4f, "td loss");
        expect_close(hgr[0], hgr[1], 1e-4f, "backward grads");
        expect_close(hp2[0], hp2[1], 1e-5f, "params after Adam");
    }
}

// Divergence marks: a NaN gradient (run 1: its norm is NaN, nothing of the run moves) and a
// parameter that is infinite after the step (run 2: the finite check after the update) mark the run
// diverged on both backends alike; run 0 learns on.
TEST(GpuLearn, AdamMarksDivergedRunsLikeTheCpu) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 3, K = 2;
    qf_net net = make_net(R, K, 0, {4, 8, 2});
    const size_t G = (size_t)R * K, P = (size_t)net.P;
    std::vector<float> params = uniform(G * P, 21, -0.5f, 0.5f), grads = uniform(G * P, 22, -0.1f, 0.1f);
    grads[1 * K * P + 3] = std::nanf("");                   // run 1, head 0
    params[2 * K * P + P + 1] = std::numeric_limits<float>::infinity(); // run 2, head 1
    std::vector<qf_run_hp> hp(R, test_hp());
    std::vector<int32_t> status[2], adam_t[2];
    std::vector<float> after[2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<float> p(b, params), g(b, grads), m(b, std::vector<float>(G * P, 0.0f)),
            v(b, std::vector<float>(G * P, 0.0f)), gnorm(b, G);
        DevBuf<qf_run_hp> dhp(b, hp);
        DevBuf<int32_t> t(b, std::vector<int32_t>(R, 0)), st(b, std::vector<int32_t>(R, QF_RUN_OK));
        ASSERT_EQ(b->adam(b, &net, dhp.p, p.p, g.p, m.p, v.p, t.p, st.p, gnorm.p), QF_OK) << b->err;
        status[k] = st.get();
        adam_t[k] = t.get();
        after[k] = p.get();
    }
    EXPECT_EQ(status[0], (std::vector<int32_t>{QF_RUN_OK, QF_RUN_DIVERGED, QF_RUN_DIVERGED}));
    EXPECT_EQ(status[1], status[0]);
    EXPECT_EQ(adam_t[1], adam_t[0]);
    expect_close(std::vector<float>(after[0].begin(), after[0].begin() + K * P),
                 std::vector<float>(after[1].begin(), after[1].begin() + K * P), 1e-5, "run 0 params after Adam");
}

TEST(GpuLearn, ActReplayAreBitIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 4, E = 300, A = 3, C = 517, B = 64, D = 2;
    qf_net net = make_net(R, 1, 0, {D, A});
    std::vector<float> q = uniform((size_t)R * E * A, 11, -1, 1);
    std::vector<qf_run_hp> hp(R, test_hp());
    hp[1].explore = QF_EXPLORE_BOLTZMANN;
    hp[3].eps_steps = 0;
    std::vector<uint32_t> keys = {4, 0, 4, 1, 4, 2, 4, 3};
    std::vector<float> obs = uniform((size_t)R * E * D, 12, -2, 2), nobs = uniform((size_t)R * E * D, 13, -2, 2);
    std::vector<float> rew = uniform((size_t)R * E, 14, 0, 1);
    std::vector<uint8_t> flags(R * E);
    for (size_t i = 0; i < flags.size(); i++) flags[i] = (uint8_t)(i % 7 == 0 ? QF_TERMINAL : (i % 7 == 1 ? QF_TRUNCATED : 0));
    std::vector<int32_t> acts[2];
    std::vector<float> sample_obs[2], sample_rew[2];
    std::vector<int32_t> sample_act[2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<float> dq(b, q), dobs(b, obs), dnobs(b, nobs), drew(b, rew);
        DevBuf<qf_run_hp> dhp(b, hp);
        DevBuf<uint32_t> dkeys(b, keys);
        DevBuf<int32_t> dact(b, (size_t)R * E);
        DevBuf<uint8_t> dflags(b, flags);
        DevBuf<int32_t> dheads(b, (size_t)R * E);
        for (uint32_t t = 0; t < 5; t++)
            ASSERT_EQ(b->act(b, &net, dhp.p, E, dq.p, dkeys.p, t * 37, dflags.p, dheads.p, dact.p), QF_OK);
        acts[k] = dact.get();
        DevBuf<float> ro(b, (size_t)R * C * D), rno(b, (size_t)R * C * D), rr(b, (size_t)R * C);
        DevBuf<int32_t> ra(b, (size_t)R * C);
        DevBuf<uint8_t> rt(b, (size_t)R * C);
        DevBuf<uint32_t> rm(b, (size_t)R * C);
        DevBuf<float> ri(b, (size_t)R * C);
        qf_replay rp = {R, C, D, 0, ro.p, rno.p, nullptr, nullptr, ra.p, rr.p, rt.p, rm.p, ri.p};
        for (int64_t step = 0; step < 3; step++)
            ASSERT_EQ(b->replay_store(b, &rp, dhp.p, dkeys.p, E, step * E % C, (uint32_t)step, dobs.p, nullptr, dact.p,
                                      drew.p, dflags.p, dnobs.p, nullptr, nullptr),
                      QF_OK);
        DevBuf<float> so(b, (size_t)R * B * D), sno(b, (size_t)R * B * D), sr(b, (size_t)R * B);
        DevBuf<int32_t> sa(b, (size_t)R * B);
        DevBuf<uint8_t> stt(b, (size_t)R * B);
        DevBuf<uint32_t> sm(b, (size_t)R * B);
        DevBuf<float> si(b, (size_t)R * B);
        qf_sample smp = {R, B, D, 0, so.p, sno.p, nullptr, nullptr, sa.p, sr.p, stt.p, sm.p, si.p};
        ASSERT_EQ(b->replay_sample(b, &rp, B, C, 3, dkeys.p, &smp), QF_OK);
        sample_obs[k] = so.get();
        sample_rew[k] = sr.get();
        sample_act[k] = sa.get();
    }
    EXPECT_EQ(acts[0], acts[1]);
    EXPECT_TRUE(same_bits(sample_obs[0], sample_obs[1]));
    EXPECT_TRUE(same_bits(sample_rew[0], sample_rew[1]));
    EXPECT_EQ(sample_act[0], sample_act[1]);
}

}  // namespace
