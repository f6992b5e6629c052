// test_gpu.cc — CPU vs CUDA (label `gpu`): the same seed gives bit-identical trajectories on both
// backends, for every environment, with random actions drawn on the device, dense and index
// observations and auto-reset; the learner operations, and the whole learner update (learn), agree
// to float32 tolerance. Skips with the reason when this machine has no usable GPU.
#include "batch_util.h"
#include "gpu_util.h"
#include "test_util.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>

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
            DevBuf<qf_mask> dmask(b, std::vector<qf_mask>((size_t)R * B, ~(qf_mask)0));
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
        DevBuf<qf_mask> rm(b, (size_t)R * C);
        DevBuf<float> ri(b, (size_t)R * C);
        qf_replay rp = {R, C, D, 0, ro.p, rno.p, nullptr, nullptr, ra.p, rr.p, rt.p, rm.p, ri.p, {}, nullptr, nullptr, nullptr, 0, 0};
        for (int64_t step = 0; step < 3; step++)
            ASSERT_EQ(b->replay_store(b, &rp, dhp.p, dkeys.p, E, step * E % C, (uint32_t)step, dobs.p, nullptr, dact.p,
                                      drew.p, dflags.p, dnobs.p, nullptr, nullptr),
                      QF_OK);
        DevBuf<float> so(b, (size_t)R * B * D), sno(b, (size_t)R * B * D), sr(b, (size_t)R * B);
        DevBuf<int32_t> sa(b, (size_t)R * B);
        DevBuf<uint8_t> stt(b, (size_t)R * B);
        DevBuf<qf_mask> sm(b, (size_t)R * B);
        DevBuf<float> si(b, (size_t)R * B);
        qf_sample smp = {R, B, D, 0, so.p, sno.p, nullptr, nullptr, sa.p, sr.p, stt.p, sm.p, si.p, {}, nullptr, nullptr, nullptr, 0, 0};
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

// ------------------------------------------------------------------------------------------------
// The whole learner update (backend.h, learn): one call on each backend from the same state
// (replay, parameters, targets, priors, Adam moments), compared output by output. A small fleet
// with bootstrap heads and randomized priors, double Q, a head a run does not use, a soft target,
// Huber and squared losses, gradient clipping, Polyak and copied targets; dense inputs and state
// indices with count bonuses.
//
// Tolerances (float32, e = FLT_EPSILON), from magnitudes the CPU computes on absolute values:
// - Q rows (q, qt, qo): a dot product of n terms is within n u sum|terms|, layer after layer, so
//   |dQ| <= gf Qabs with gf = (sum_l (w_l + 1) + 3) e and Qabs the forward on |W|, |x| plus
//   |prior_scale| times the prior's forward on |W_prior|.
// - TD: the soft value within max tol_qt + 8 e (max|qt| + alpha (1 + log A)) (expf, logf: a few ulp);
//   the hard max within max tol_qt; a double-Q argmax whose runner-up is within 2 max tol_qo of it
//   may pick either, so the target may move by |qt[a] - qt[a*]| over those a. delta = q_a - y within
//   tol_q + gamma tol_v + 4 e (|r| + gamma |v| + |q_a|); dq = w clip(delta) / B (clip 1-Lipschitz).
// - Gradients: G1 = backward on |W|, the |W| forward's activations and |dq|; G2 = the same with
//   tol_dq: |dgrad| <= gb G1 + (1 + gb) G2, gb = gf + (B + sum_l w_l + 4) e. A hidden unit whose
//   pre-activation is within rounding of 0 may be cut by one backend's ReLU and not the other's:
//   networks where the two backends' activations differ in sign pattern are not compared after
//   the backward (counted; most networks must be compared).
// - Adam from random moments (v > 0): m' = b1 m + (1-b1) s g and v' = b2 v + (1-b2) (s g)^2 move by
//   their terms' differences (d(s g) <= s dg + |g| ds, ds <= s dnorm / norm when clipped,
//   dnorm <= ||dg||_2); p' = p decay - step m' / (sqrt(v') ic2 + eps) moves by
//   step (dm' / den + |m'| ic2 dsqrt(v') / den^2), den >= sqrt(b2 v) ic2, plus 8 e of its terms.
// - Targets: tau p' + (1 - tau) t within tau tol_p + 2 e of its terms.
namespace {

struct LearnState {  // host copies of everything one learn call reads or writes
    std::vector<float> params, target, prior, m, v, q, qt, qo, acts, dq, grads, gnorm, loss, qmean, imean;
    std::vector<float> s_obs, s_nobs, s_rew, s_intr;
    std::vector<int32_t> s_idx, s_nidx, s_act, adam_t, status;
    std::vector<qf_mask> s_mask;
};

struct LearnCase {
    int embed;
    int R = 3, K = 3, B = 32, C = 200, D = 4, S = 12, A = 3;
    qf_net net;
    std::vector<qf_run_hp> hp;
    std::vector<int32_t> active = {3, 2, 1};
    std::vector<uint32_t> keys = {5, 0, 5, 1, 9, 2};
    std::vector<float> robs, rnobs, rrew, rintr, params, target, prior, m, v;
    std::vector<int32_t> ridx, rnidx, ract, adam_t;
    std::vector<uint8_t> rterm;
    std::vector<qf_mask> rmask;
    std::vector<uint32_t> counts;
    int target_mode;
    explicit LearnCase(int emb) : embed(emb) {
        net = make_net(R, K, embed, embed ? std::vector<int>{S, 16, 8, A} : std::vector<int>{D, 16, 8, A});
        std::mt19937 rng(40 + embed);
        std::uniform_real_distribution<float> U(-1.0f, 1.0f);
        auto fill = [&](std::vector<float> &x, size_t n, float lo, float hi) {
            x.resize(n);
            for (auto &e : x) e = lo + (hi - lo) * 0.5f * (U(rng) + 1.0f);
        };
        const size_t RC = (size_t)R * C, G = (size_t)R * K, P = (size_t)net.P;
        fill(robs, RC * D, -2, 2);
        fill(rnobs, RC * D, -2, 2);
        fill(rrew, RC, -1, 1);
        fill(rintr, RC, 0, 1);
        ridx.resize(RC);
        rnidx.resize(RC);
        ract.resize(RC);
        rterm.resize(RC);
        rmask.resize(RC);
        for (size_t i = 0; i < RC; i++) {
            ridx[i] = (int32_t)(rng() % S);
            rnidx[i] = (int32_t)(rng() % S);
            ract[i] = (int32_t)(rng() % A);
            rterm[i] = (uint8_t)(rng() % 7 == 0);
            rmask[i] = ((qf_mask)rng() << 32 | rng()) | 1u;  // head 0 always learns; the others on random bits
        }
        counts.resize((size_t)R * S);
        for (auto &c : counts) c = 1 + rng() % 9;
        fill(params, G * P, -0.4f, 0.4f);
        fill(target, G * P, -0.4f, 0.4f);
        fill(prior, G * P, -0.4f, 0.4f);
        fill(m, G * P, -1e-3f, 1e-3f);
        fill(v, G * P, 1e-6f, 1e-4f);  // v > 0: the step's denominator is bounded away from eps
        adam_t = {4, 4, 9};
        hp.assign(R, default_hp());
        for (auto &h : hp) {
            h.lr = 1e-3f;
            h.gamma = 0.9f;
            h.tau = 0.5f;
            h.max_grad_norm = 10.0f;
        }
        hp[0].explore = QF_EXPLORE_BOOTSTRAP;  // three heads, prior, masks, double Q, Huber
        hp[0].n_heads = 3;
        hp[0].prior_scale = 3.0f;
        hp[0].double_q = 1;
        hp[1].explore = QF_EXPLORE_BOOTSTRAP;  // two of the fleet's three heads, squared loss, clipped
        hp[1].n_heads = 2;
        hp[1].prior_scale = 1.0f;
        hp[1].double_q = 1;
        hp[1].loss = QF_LOSS_SQUARED;
        hp[1].max_grad_norm = 0.05f;
        hp[1].weight_decay = 0.1f;
        hp[2].n_heads = 1;  // soft target, no prior; a count bonus with state indices
        hp[2].alpha = 0.3f;
        if (embed) {
            hp[2].bonus = QF_BONUS_COUNT;
            hp[2].beta = 0.5f;
        }
        target_mode = embed ? 2 : 1;
    }

    // One learn call on backend b from this state; everything read back.
    void run(qf_backend *b, LearnState &out) const {
        const size_t G = (size_t)R * K, P = (size_t)net.P, H = (size_t)net.H, RB = (size_t)R * B;
        DevBuf<float> ro(b, robs), rno(b, rnobs), rr(b, rrew), ri(b, rintr);
        DevBuf<int32_t> rix(b, ridx), rnix(b, rnidx), ra(b, ract), dact(b, active);
        DevBuf<uint8_t> rt(b, rterm);
        DevBuf<qf_mask> rm(b, rmask);
        DevBuf<uint32_t> dkeys(b, keys), dcnt(b, counts);
        qf_replay rp = {R, C, D, embed, embed ? nullptr : ro.p, embed ? nullptr : rno.p, embed ? rix.p : nullptr,
                        embed ? rnix.p : nullptr, ra.p, rr.p, rt.p, rm.p, ri.p, {}, nullptr, nullptr, nullptr, 0, 0};
        DevBuf<float> so(b, RB * D), sno(b, RB * D), sr(b, RB), si(b, RB);
        DevBuf<int32_t> six(b, RB), snix(b, RB), sa(b, RB);
        DevBuf<uint8_t> st(b, RB);
        DevBuf<qf_mask> sm(b, RB);
        qf_sample smp = {R, B, D, embed, embed ? nullptr : so.p, embed ? nullptr : sno.p, embed ? six.p : nullptr,
                         embed ? snix.p : nullptr, sa.p, sr.p, st.p, sm.p, si.p, {}, nullptr, nullptr, nullptr, 0, 0};
        qf_counts c;
        std::memset(&c, 0, sizeof c);
        c.R = R;
        c.mode = QF_COUNT_EXACT;
        c.S = S;
        c.cnt = dcnt.p;
        DevBuf<qf_run_hp> dhp(b, hp);
        DevBuf<float> dparams(b, params), dtarget(b, target), dprior(b, prior), dm(b, m), dv(b, v);
        DevBuf<float> acts(b, G * B * H), acts_tmp(b, G * B * H), q(b, G * B * A), qt(b, G * B * A),
            qo(b, G * B * A), qp(b, G * B * A), dq(b, G * B * A), grads(b, std::vector<float>(G * P, 0.0f)),
            work(b, (size_t)qf_net_work_floats(&net, B)), gnorm(b, G), loss(b, G), qmean(b, G), imean(b, (size_t)R);
        DevBuf<int32_t> dadam_t(b, adam_t), status(b, std::vector<int32_t>(R, QF_RUN_OK));
        qf_net n = net;
        n.active = dact.p;
        qf_learn_args a;
        std::memset(&a, 0, sizeof a);
        a.net = &n;
        a.hp = dhp.p;
        a.keys = dkeys.p;
        a.replay = &rp;
        a.stored = C - 13;
        a.update = 17;
        a.B = B;
        a.s = &smp;
        a.counts = embed ? &c : nullptr;
        a.params = dparams.p;
        a.target = dtarget.p;
        a.prior = dprior.p;
        a.acts = acts.p;
        a.acts_tmp = acts_tmp.p;
        a.q = q.p;
        a.qt = qt.p;
        a.qo = qo.p;
        a.qp = qp.p;
        a.dq = dq.p;
        a.grads = grads.p;
        a.work = work.p;
        a.adam_m = dm.p;
        a.adam_v = dv.p;
        a.adam_t = dadam_t.p;
        a.status = status.p;
        a.gnorm = gnorm.p;
        a.loss = loss.p;
        a.qmean = qmean.p;
        a.imean = imean.p;
        a.target_mode = target_mode;
        // The intermediate values (q, qt, acts, dq, grads) are compared below. The CPU keeps them in
        // each thread's own scratch when a thread has a run or more to itself (learn_cpu.c; backend.h
        // calls them scratch); with more threads than runs it takes the path that writes them where
        // the CUDA backend does. Same final values either way (ExploreFleet.LearnEqualsTheOperationsInTurn).
        const int cpu = std::strcmp(b->name, "cpu") == 0;
        if (cpu) qf_cpu_set_threads(R + 1);
        const int rc = b->learn(b, &a);
        if (cpu) qf_cpu_set_threads(0);
        ASSERT_EQ(rc, QF_OK) << b->err;
        out.params = dparams.get();
        out.target = dtarget.get();
        out.m = dm.get();
        out.v = dv.get();
        out.q = q.get();
        out.qt = qt.get();
        out.qo = qo.get();
        out.acts = acts.get();
        out.dq = dq.get();
        out.grads = grads.get();
        out.gnorm = gnorm.get();
        out.loss = loss.get();
        out.qmean = qmean.get();
        out.imean = imean.get();
        out.s_obs = so.get();
        out.s_nobs = sno.get();
        out.s_rew = sr.get();
        out.s_intr = si.get();
        out.s_idx = six.get();
        out.s_nidx = snix.get();
        out.s_act = sa.get();
        out.s_mask = sm.get();
        out.adam_t = dadam_t.get();
        out.status = status.get();
    }
};

std::vector<float> absv(const std::vector<float> &x) {
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size(); i++) y[i] = std::fabs(x[i]);
    return y;
}

// Forward (acts, q) of M inputs on the CPU backend.
void cpu_forward(qf_backend *b, const qf_net &n, const std::vector<float> &W, int M, const std::vector<float> &x,
                 const std::vector<int32_t> &xi, std::vector<float> &acts, std::vector<float> &q) {
    const size_t G = (size_t)n.R * n.K;
    acts.assign(G * M * (size_t)n.H, 0.0f);
    q.assign(G * M * (size_t)n.w[n.L], 0.0f);
    ASSERT_EQ(b->net_forward(b, &n, W.data(), M, n.embed ? nullptr : x.data(), n.embed ? xi.data() : nullptr,
                             acts.data(), q.data()),
              QF_OK);
}

// Every |a - b| <= tol[i] over the indices where use(i); the first mismatches printed.
template <class Use>
void expect_within(const std::vector<float> &a, const std::vector<float> &b, const std::vector<double> &tol,
                   const std::string &what, Use use) {
    ASSERT_EQ(a.size(), b.size());
    ASSERT_EQ(a.size(), tol.size());
    size_t bad = 0, n = 0;
    for (size_t i = 0; i < a.size(); i++) {
        if (!use(i)) continue;
        n++;
        const double d = std::fabs((double)a[i] - (double)b[i]);
        if (!(d <= tol[i])) {
            if (bad < 5)
                ADD_FAILURE() << what << "[" << i << "]: cpu " << a[i] << " cuda " << b[i] << " differ by " << d
                              << " > tolerance " << tol[i];
            bad++;
        }
    }
    EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << n << " beyond tolerance";
}

}  // namespace

TEST(GpuLearn, LearnUpdateAgreesWithTheCpu) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const double e = FLT_EPSILON;
    for (int embed = 0; embed < 2; embed++) {
        SCOPED_TRACE(embed ? "state indices, count bonus, copied target" : "dense inputs, Polyak target");
        const LearnCase lc(embed);
        LearnState cs, gs;
        lc.run(be.cpu, cs);
        lc.run(be.cuda, gs);
        if (HasFatalFailure()) return;
        const qf_net &n = lc.net;
        const int R = lc.R, K = lc.K, B = lc.B, A = lc.A;
        const size_t G = (size_t)R * K, P = (size_t)n.P, H = (size_t)n.H;
        auto on = [&](size_t g) { return (int32_t)(g % K) < lc.active[g / K]; };

        // sampling and count bonuses: integer draws and copies, exact
        if (embed) {
            EXPECT_EQ(cs.s_idx, gs.s_idx);
            EXPECT_EQ(cs.s_nidx, gs.s_nidx);
        } else {
            EXPECT_TRUE(same_bits(cs.s_obs, gs.s_obs) && same_bits(cs.s_nobs, gs.s_nobs));
        }
        EXPECT_TRUE(same_bits(cs.s_rew, gs.s_rew));
        EXPECT_EQ(cs.s_act, gs.s_act);
        EXPECT_EQ(cs.s_mask, gs.s_mask);
        EXPECT_TRUE(same_bits(cs.s_intr, gs.s_intr)) << "count bonuses";
        EXPECT_EQ(cs.status, gs.status);
        EXPECT_EQ(cs.adam_t, gs.adam_t);
        EXPECT_EQ(cs.status, std::vector<int32_t>(R, QF_RUN_OK));

        // ---- Q rows: magnitudes from the forward on absolute values
        double sum_w = 0.0, sum_wl = 0.0;
        for (int l = 0; l < n.L; l++) {
            sum_w += n.w[l] + 1;
            sum_wl += n.w[l];
        }
        const double gf = (sum_w + 3.0) * e;
        qf_net nn = n;  // every head computed for the magnitudes
        std::vector<float> ax = absv(cs.s_obs), anx = absv(cs.s_nobs), aW = absv(lc.params), aT = absv(lc.target),
                           aPr = absv(lc.prior);
        std::vector<float> acts_abs, qa, qta, qoa, pa, pna, tmp;
        cpu_forward(be.cpu, nn, aW, B, ax, cs.s_idx, acts_abs, qa);
        cpu_forward(be.cpu, nn, aW, B, anx, cs.s_nidx, tmp, qoa);
        cpu_forward(be.cpu, nn, aT, B, anx, cs.s_nidx, tmp, qta);
        cpu_forward(be.cpu, nn, aPr, B, ax, cs.s_idx, tmp, pa);
        cpu_forward(be.cpu, nn, aPr, B, anx, cs.s_nidx, tmp, pna);
        const size_t NQ = G * B * A;
        std::vector<double> tq(NQ), tqt(NQ), tqo(NQ);
        for (size_t i = 0; i < NQ; i++) {
            const double c = std::fabs(lc.hp[i / ((size_t)B * A) / K].prior_scale);
            tq[i] = gf * (qa[i] + c * pa[i]);
            tqt[i] = gf * (qta[i] + c * pna[i]);
            tqo[i] = gf * (qoa[i] + c * pna[i]);
        }
        auto row_on = [&](size_t i) { return on(i / ((size_t)B * A)); };
        expect_within(cs.q, gs.q, tq, "Q(s, .)", row_on);
        expect_within(cs.qt, gs.qt, tqt, "Q_target(s', .)", row_on);
        expect_within(cs.qo, gs.qo, tqo, "Q(s', .) (double Q)", row_on);

        // ---- TD step
        std::vector<double> tdq(NQ, 0.0), tloss(G, 0.0), tqmean(G, 0.0), timean(R, 0.0);
        std::vector<float> dq_bound(NQ, 0.0f);  // tol_dq as floats for the G2 backward
        for (size_t g = 0; g < G; g++) {
            if (!on(g)) continue;
            const size_t r = g / K, k = g % K;
            const qf_run_hp &h = lc.hp[r];
            double lsum = 0.0, labs = 0.0, qsum = 0.0, qabs = 0.0, iabs = 0.0;
            for (int j = 0; j < B; j++) {
                const size_t row = (g * B + j) * A, t = r * B + j;
                double tv = 0.0, mq = 0.0, vb;
                for (int a = 0; a < A; a++) {
                    tv = std::max(tv, tqt[row + a]);
                    mq = std::max(mq, (double)std::fabs(cs.qt[row + a]));
                }
                if (h.double_q && h.alpha <= 0.0f) {
                    double to = 0.0;
                    for (int a = 0; a < A; a++) to = std::max(to, tqo[row + a]);
                    const int32_t best = qf_argmax(&cs.qo[row], A);
                    double move = 0.0;
                    for (int a = 0; a < A; a++)
                        if (cs.qo[row + a] >= cs.qo[row + best] - 2.0 * to)
                            move = std::max(move, (double)std::fabs(cs.qt[row + a] - cs.qt[row + best]));
                    tv += move;
                    vb = mq;
                } else if (h.alpha > 0.0f) {
                    tv += 8.0 * e * (mq + h.alpha * (1.0 + std::log((double)A)));
                    vb = mq + h.alpha * std::log((double)A);
                } else {
                    vb = mq;
                }
                const int32_t a = cs.s_act[t];
                const double w = (double)((cs.s_mask[t] >> k) & 1u);
                const double rew = std::fabs(cs.s_rew[t]) + h.beta * cs.s_intr[t];
                const double td = tq[row + a] + h.gamma * tv + 4.0 * e * (rew + h.gamma * vb + std::fabs(cs.q[row + a]));
                tdq[row + a] = w * td / B + 1e-30;
                dq_bound[row + a] = (float)(tdq[row + a] * (1.0 + 4.0 * e));
                const double dabs = std::fabs(cs.q[row + a]) + rew + h.gamma * vb;  // bounds |delta|
                const double lip = h.loss == QF_LOSS_SQUARED ? dabs + td : h.huber;  // of the loss in delta
                lsum += w * lip * td;
                labs += w * (h.loss == QF_LOSS_SQUARED ? 0.5 * dabs * dabs : h.huber * dabs);
                qsum += tq[row + a];
                qabs += std::fabs(cs.q[row + a]);
                iabs += h.beta * cs.s_intr[t];
            }
            tloss[g] = (lsum + B * e * labs) / B + 1e-30;
            tqmean[g] = (qsum + B * e * qabs) / B + 1e-30;
            if (k == 0) timean[r] = B * e * iabs / B + 1e-30;
        }
        expect_within(cs.dq, gs.dq, tdq, "dq", row_on);
        expect_within(cs.loss, gs.loss, tloss, "td_loss", [&](size_t g) { return on(g); });
        expect_within(cs.qmean, gs.qmean, tqmean, "q_values", [&](size_t g) { return on(g); });
        expect_within(cs.imean, gs.imean, timean, "intrinsic mean", [](size_t) { return true; });

        // ---- networks whose ReLU patterns agree (a unit at 0 on one backend and not the other
        // takes a different gradient path)
        std::vector<char> same_relu(G, 1);
        size_t compared = 0;
        for (size_t g = 0; g < G; g++) {
            for (size_t i = g * B * H; i < (g + 1) * B * H; i++)
                if ((cs.acts[i] > 0.0f) != (gs.acts[i] > 0.0f)) same_relu[g] = 0;
            compared += on(g) && same_relu[g];
        }
        size_t used = 0;
        for (size_t g = 0; g < G; g++) used += on(g);
        EXPECT_GE(2 * compared, used) << "too few networks with equal ReLU patterns to compare";

        // ---- gradients
        std::vector<float> adq = absv(cs.dq), G1(G * P, 0.0f), G2(G * P, 0.0f);
        std::vector<float> work((size_t)qf_net_work_floats(&nn, B));
        const float *xin = n.embed ? nullptr : ax.data();
        const int32_t *xi = n.embed ? cs.s_idx.data() : nullptr;
        ASSERT_EQ(be.cpu->net_backward(be.cpu, &nn, aW.data(), B, xin, xi, acts_abs.data(), adq.data(), G1.data(), work.data()), QF_OK);
        ASSERT_EQ(be.cpu->net_backward(be.cpu, &nn, aW.data(), B, xin, xi, acts_abs.data(), dq_bound.data(), G2.data(), work.data()), QF_OK);
        const double gb = gf + (B + sum_wl + 4.0) * e;
        std::vector<double> tg(G * P);
        for (size_t i = 0; i < G * P; i++) tg[i] = gb * G1[i] + (1.0 + gb) * G2[i] + 1e-30;
        auto net_cmp = [&](size_t i) { return on(i / P) && same_relu[i / P]; };
        expect_within(cs.grads, gs.grads, tg, "gradients", net_cmp);

        // ---- norms, clipping, Adam, targets
        std::vector<double> tn(G, 0.0), ds(G, 0.0), sc(G, 1.0), tp(G * P, 0.0), tm(G * P, 0.0), tvv(G * P, 0.0),
            tt(G * P, 0.0);
        for (size_t g = 0; g < G; g++) {
            if (!on(g)) continue;
            double ss = 0.0;
            for (size_t j = 0; j < P; j++) ss += tg[g * P + j] * tg[g * P + j];
            tn[g] = std::sqrt(ss) + 4.0 * e * cs.gnorm[g];
            const qf_run_hp &h = lc.hp[g / K];
            const double norm = cs.gnorm[g], mx = h.max_grad_norm;
            if (mx > 0.0 && norm + tn[g] > mx) {  // clipped on either backend: s = min(1, mx / norm)
                sc[g] = std::min(1.0, mx / norm);
                // |d min(1, mx / x)| <= mx dx / x_min^2 over x within the norm's tolerance
                ds[g] = norm > tn[g] ? mx * tn[g] / ((norm - tn[g]) * (norm - tn[g])) : 1.0;
            }
        }
        expect_within(cs.gnorm, gs.gnorm, tn, "gradient norms", [&](size_t g) { return on(g) && same_relu[g]; });
        for (size_t g = 0; g < G; g++) {
            if (!on(g)) continue;
            const qf_run_hp &h = lc.hp[g / K];
            const qf_adam_k ak = qf_adam_consts(&h, lc.adam_t[g / K] + 1);
            for (size_t j = 0; j < P; j++) {
                const size_t i = g * P + j;
                const double gg = cs.grads[i], s = sc[g];
                const double dsg = s * tg[i] + std::fabs(gg) * ds[g];
                const double m1 = std::fabs(ak.b1 * lc.m[i]) + std::fabs((1.0 - ak.b1) * s * gg);
                tm[i] = (1.0 - ak.b1) * dsg + 4.0 * e * m1;
                const double v1 = ak.b2 * lc.v[i] + (1.0 - ak.b2) * s * gg * s * gg;
                tvv[i] = (1.0 - ak.b2) * (2.0 * std::fabs(s * gg) + dsg) * dsg + 4.0 * e * v1;
                const double den = std::sqrt(ak.b2 * lc.v[i]) * ak.ic2;
                const double dsq = tvv[i] / (2.0 * std::sqrt(ak.b2 * lc.v[i]));
                const double mm = std::fabs(cs.m[i]) + tm[i];
                const double upd = ak.step * mm / den;
                // powf's bias corrections: CUDA's is within 2 ulp, glibc's 1; 1 - b^t cancels
                const int32_t t = lc.adam_t[g / K] + 1;
                const double bc = 5.0 * e * std::pow((double)ak.b1, t) / (1.0 - std::pow((double)ak.b1, t)) +
                                  2.5 * e * std::pow((double)ak.b2, t) / (1.0 - std::pow((double)ak.b2, t));
                tp[i] = ak.step * (tm[i] / den + mm * ak.ic2 * dsq / (den * den)) + upd * bc +
                        8.0 * e * (std::fabs(lc.params[i]) + upd);
                const double tau = lc.target_mode == 2 ? 1.0 : h.tau;
                tt[i] = tau * tp[i] + 2.0 * e * (tau * std::fabs(cs.params[i]) + (1.0 - tau) * std::fabs(lc.target[i])) + 1e-30;
            }
        }
        expect_within(cs.m, gs.m, tm, "Adam first moments", net_cmp);
        expect_within(cs.v, gs.v, tvv, "Adam second moments", net_cmp);
        expect_within(cs.params, gs.params, tp, "parameters after Adam", net_cmp);
        expect_within(cs.target, gs.target, tt, "target networks", net_cmp);
        // heads a run does not use: untouched on both
        for (size_t g = 0; g < G; g++) {
            if (on(g)) continue;
            for (size_t j = 0; j < P; j++) {
                const size_t i = g * P + j;
                EXPECT_EQ(cs.params[i], lc.params[i]);
                EXPECT_EQ(gs.params[i], lc.params[i]);
                EXPECT_EQ(gs.m[i], lc.m[i]);
            }
        }
        // the update did something: parameters moved, and the target followed (Polyak or copy)
        EXPECT_FALSE(same_bits(cs.params, lc.params));
        EXPECT_FALSE(same_bits(cs.target, lc.target));
    }
}
