// test_demos_gpu.cc — the demo part on the CUDA backend against the CPU reference (label `gpu`: runs
// on a GPU, and in CI on the tests/cuda_emu shim). Sampling copies transitions and draws integers
// from Philox, so the batches (demo draws included) must agree bit for bit; the demo loss uses expf
// and logf, which the C library and CUDA round differently in the last bits, so its gradient agrees
// to float tolerance (a few ulp of values of order 1, relative 1e-5).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "gpu_util.h"
#include "test_util.h"

namespace {

std::vector<float> uniform(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto &x : v) x = u(rng);
    return v;
}

// replay_sample with a demo part: run r takes draws[r] transitions of each batch from it; the kept
// priors' outputs come along, the ring's for ring draws and the demo part's for demo draws.
TEST(DemosGpu, SampleWithDemoPartIsBitIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 3, K = 2, C = 40, Cd = 12, B = 16, D = 4, A = 5;
    for (int separate = 0; separate < 2; separate++) {
        const int rows = separate ? R * K : R;
        const std::vector<float> ro = uniform((size_t)R * C * D, 1), rno = uniform((size_t)R * C * D, 2),
                                 rr = uniform((size_t)R * C, 3), ri = uniform((size_t)R * C, 4);
        const std::vector<float> dob = uniform((size_t)R * Cd * D, 5), dnob = uniform((size_t)R * Cd * D, 6),
                                 drw = uniform((size_t)R * Cd, 7);
        // priors' outputs: the ring's in [-1, 1], the demo part's in [9, 11] (told apart below)
        const std::vector<float> rpo = uniform((size_t)R * K * C * A, 8), rpn = uniform((size_t)R * K * C * A, 9);
        std::vector<float> dpo = uniform((size_t)R * K * Cd * A, 10), dpn = uniform((size_t)R * K * Cd * A, 11);
        for (auto &x : dpo) x += 10.0f;
        for (auto &x : dpn) x += 10.0f;
        std::vector<int32_t> ra((size_t)R * C), da((size_t)R * Cd);
        std::vector<uint8_t> rt((size_t)R * C), dt((size_t)R * Cd);
        std::vector<qf_mask> rm((size_t)R * C);
        for (size_t i = 0; i < ra.size(); i++) ra[i] = (int32_t)(i % 3), rt[i] = (uint8_t)(i % 7 == 0), rm[i] = (qf_mask)i;
        for (size_t i = 0; i < da.size(); i++) da[i] = 3 + (int32_t)(i % 2), dt[i] = (uint8_t)(i % 5 == 0);
        const std::vector<int32_t> size = {12, 7, 0}, draws = {4, 16, 0}; // a run all demos, one without
        const std::vector<uint32_t> keys = {9, 0, 9, 1, 9, 2};
        std::vector<float> sobs[2], snobs[2], srew[2], sintr[2], spo[2], spn[2];
        std::vector<int32_t> sact[2];
        std::vector<uint8_t> sterm[2], sdemo[2];
        std::vector<qf_mask> smask[2];
        qf_backend *bs[2] = {be.cpu, be.cuda};
        for (int k = 0; k < 2; k++) {
            qf_backend *b = bs[k];
            DevBuf<float> dro(b, ro), drno(b, rno), drr(b, rr), dri(b, ri), ddo(b, dob), ddno(b, dnob), ddr(b, drw);
            DevBuf<int32_t> dra(b, ra), dda(b, da), dsize(b, size), ddraws(b, draws);
            DevBuf<uint8_t> drt(b, rt), ddt(b, dt);
            DevBuf<qf_mask> drm(b, rm);
            DevBuf<uint32_t> dkeys(b, keys);
            DevBuf<float> drpo(b, rpo), drpn(b, rpn), ddpo(b, dpo), ddpn(b, dpn);
            qf_replay rp;
            std::memset(&rp, 0, sizeof rp);
            rp.R = R, rp.C = C, rp.D = D, rp.embed = 0;
            rp.obs = dro.p, rp.next_obs = drno.p, rp.action = dra.p, rp.reward = drr.p, rp.terminal = drt.p;
            rp.mask = drm.p, rp.intr = dri.p;
            rp.K = K, rp.A = A, rp.prior_obs = drpo.p, rp.prior_next = drpn.p;
            rp.demo.prior_obs = ddpo.p, rp.demo.prior_next = ddpn.p;
            rp.demo.C = Cd, rp.demo.obs = ddo.p, rp.demo.next_obs = ddno.p, rp.demo.action = dda.p;
            rp.demo.reward = ddr.p, rp.demo.terminal = ddt.p, rp.demo.size = dsize.p, rp.demo.draws = ddraws.p;
            DevBuf<float> so(b, (size_t)rows * B * D), sno(b, (size_t)rows * B * D), sr(b, (size_t)rows * B),
                si(b, (size_t)rows * B);
            DevBuf<int32_t> sa(b, (size_t)rows * B);
            DevBuf<uint8_t> st(b, (size_t)rows * B), sd(b, (size_t)rows * B);
            DevBuf<qf_mask> sm(b, (size_t)rows * B);
            DevBuf<float> spo_(b, (size_t)R * K * B * A), spn_(b, (size_t)R * K * B * A);
            qf_sample s;
            std::memset(&s, 0, sizeof s);
            s.R = rows, s.C = B, s.D = D, s.embed = 0;
            s.obs = so.p, s.next_obs = sno.p, s.action = sa.p, s.reward = sr.p, s.terminal = st.p, s.mask = sm.p;
            s.intr = si.p, s.is_demo = sd.p;
            s.K = K, s.A = A, s.prior_obs = spo_.p, s.prior_next = spn_.p;
            ASSERT_EQ(b->replay_sample(b, &rp, B, C, 5, dkeys.p, &s), QF_OK) << b->err;
            sobs[k] = so.get(), snobs[k] = sno.get(), srew[k] = sr.get(), sintr[k] = si.get();
            sact[k] = sa.get(), sterm[k] = st.get(), sdemo[k] = sd.get(), smask[k] = sm.get();
            spo[k] = spo_.get(), spn[k] = spn_.get();
        }
        EXPECT_TRUE(same_bits(sobs[0], sobs[1])) << "observations differ (separate=" << separate << ")";
        EXPECT_TRUE(same_bits(snobs[0], snobs[1])) << "next observations differ";
        EXPECT_TRUE(same_bits(srew[0], srew[1])) << "rewards differ";
        EXPECT_TRUE(same_bits(sintr[0], sintr[1])) << "intrinsic rewards differ";
        EXPECT_EQ(sact[0], sact[1]);
        EXPECT_EQ(sterm[0], sterm[1]);
        EXPECT_EQ(sdemo[0], sdemo[1]);
        EXPECT_EQ(smask[0], smask[1]);
        EXPECT_TRUE(same_bits(spo[0], spo[1])) << "kept priors on s differ (separate=" << separate << ")";
        EXPECT_TRUE(same_bits(spn[0], spn[1])) << "kept priors on s' differ";
        // the reference: a demo draw carries the demo part's outputs (>= 9), a ring draw the ring's;
        // a run's batch fills every head's, a head's batch its own head's
        for (int row = 0; row < rows; row++)
            for (int j = 0; j < B; j++) {
                const int r = row / (rows / R), k = separate ? row % K : -1;
                const bool demo = sdemo[0][(size_t)row * B + j] != 0;
                for (int h = 0; h < K; h++) {
                    if (separate && h != k) continue;
                    for (int a = 0; a < A; a++) {
                        const size_t t = (((size_t)r * K + h) * B + j) * A + a;
                        EXPECT_EQ(spo[0][t] >= 9.0f, demo) << "row " << row << " draw " << j << " head " << h;
                        EXPECT_EQ(spn[0][t] >= 9.0f, demo) << "row " << row << " draw " << j << " head " << h;
                    }
                }
            }
        // the reference itself: the demo count of each row is its run's draws, demo actions are 3 or 4
        for (int row = 0; row < rows; row++) {
            int n = 0;
            for (int j = 0; j < B; j++) {
                const size_t t = (size_t)row * B + j;
                n += sdemo[0][t];
                if (sdemo[0][t]) {
                    EXPECT_GE(sact[0][t], 3);
                } else {
                    EXPECT_LT(sact[0][t], 3);
                }
            }
            EXPECT_EQ(n, draws[(size_t)(row / (rows / R))]) << "row " << row;
        }
    }
}

// td with demo transitions: the demo loss's gradient added on both backends (soft and large-margin).
TEST(DemosGpu, TdWithDemoLossAgrees) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 3, K = 2, B = 32, A = 4;
    const qf_net net = make_net(R, K, 1, {6, A});
    const size_t G = (size_t)R * K;
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].demo_weight = 0.5f; // alpha = 0: large margin
    hp[0].demo_margin = 0.8f;
    hp[1].alpha = 0.3f; // soft: -log softmax(q / alpha)
    hp[1].demo_weight = 2.0f;
    hp[2].alpha = 1.0f; // demo transitions, but no demo loss
    const std::vector<float> q = uniform(G * B * A, 11), qt = uniform(G * B * A, 12);
    const std::vector<float> rew = uniform((size_t)R * B, 13), intr((size_t)R * B, 0.0f);
    std::vector<int32_t> act((size_t)R * B);
    std::vector<uint8_t> term((size_t)R * B), demo((size_t)R * B);
    std::vector<qf_mask> mask((size_t)R * B, ~(qf_mask)0);
    std::mt19937 rng(14);
    for (size_t i = 0; i < act.size(); i++) {
        act[i] = (int32_t)(rng() % A);
        term[i] = (uint8_t)(rng() % 5 == 0);
        demo[i] = (uint8_t)(i % B < 10);
    }
    std::vector<float> dq[2], loss[2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<float> dq_(b, G * B * A), dqv(b, q), dqt(b, qt), drew(b, rew), dintr(b, intr), dloss(b, G), dqmean(b, G),
            dimean(b, (size_t)R);
        DevBuf<int32_t> dact(b, act);
        DevBuf<uint8_t> dterm(b, term), ddemo(b, demo);
        DevBuf<qf_mask> dmask(b, mask);
        DevBuf<qf_run_hp> dhp(b, hp);
        qf_sample s;
        std::memset(&s, 0, sizeof s);
        s.R = R, s.C = B, s.embed = 1, s.action = dact.p, s.reward = drew.p, s.terminal = dterm.p, s.mask = dmask.p;
        s.intr = dintr.p, s.is_demo = ddemo.p;
        ASSERT_EQ(b->td(b, &net, dhp.p, B, &s, dqv.p, dqt.p, nullptr, dq_.p, dloss.p, dqmean.p, dimean.p), QF_OK)
            << b->err;
        dq[k] = dq_.get();
        loss[k] = dloss.get();
    }
    expect_close(dq[0], dq[1], 1e-5, "td dq with the demo loss");
    expect_close(loss[0], loss[1], 1e-5, "td loss");
    // the reference adds exactly qf_demo_loss's gradient on the demo rows of runs 0 and 1
    for (size_t g = 0; g < G; g++) {
        const int r = (int)(g / K);
        for (int j = 0; j < 10; j++) {
            const size_t row = (g * B + j) * A, t = (size_t)r * B + j;
            std::vector<float> want(A, 0.0f);
            qf_td_one(&hp[r], A, B, &q[row], &qt[row], nullptr, act[t], rew[t], term[t], 1.0f, want.data());
            if (hp[r].demo_weight > 0.0f) qf_demo_loss(&hp[r], A, B, &q[row], act[t], 1.0f, want.data());
            for (int a = 0; a < A; a++) ASSERT_EQ(dq[0][row + a], want[a]) << "g " << g << " j " << j << " a " << a;
        }
    }
}

}  // namespace
