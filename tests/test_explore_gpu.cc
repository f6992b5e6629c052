// test_explore_gpu.cc — CPU vs CUDA (label `gpu`) for the exploration operations: the same inputs
// on both backends give bit-identical heads and actions (bootstrap sampling, UCB, epsilon,
// Boltzmann), masks and intrinsic rewards in the replay, prior sums, exact counts, SimHash counts
// per code and bonuses, and agree to float32 tolerance for the TD step with masks and the RND
// operations. Skips with the reason when this machine has no usable GPU.
// QFLEET_TEST_CPU_AS_GPU=1 runs the same comparisons against a second CPU backend (a self-check of
// this file on machines without a GPU; every comparison must then hold exactly).
// Every test is in suite ExploreGpu (ctest -R Explore selects it with the CPU explore tests).
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "gpu_util.h"
#include "test_util.h"

namespace {

std::vector<float> normal(size_t n, uint32_t seed, float scale = 1.0f, float offset = 0.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> N01(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto &x : v) x = offset + scale * N01(rng);
    return v;
}

std::vector<uint8_t> random_flags(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> f(n);
    for (auto &x : f) {
        const uint32_t u = rng() % 20;
        x = (uint8_t)(u < 12 ? 0 : u < 14 ? QF_TERMINAL : u < 16 ? QF_TRUNCATED : u < 18 ? QF_TREASURE
                                                                  : (QF_TERMINAL | QF_BAD_EPISODE));
    }
    return f;
}

// ---- act with heads ------------------------------------------------------------------------------
TEST(ExploreGpu, ActHeadsAndActionsAreBitIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 6, K = 6, E = 1000, A = 4;
    const qf_net net = make_net(R, K, 1, {3, A});
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].explore = QF_EXPLORE_BOOTSTRAP;  // sample, 4 of 6 heads
    hp[0].n_heads = 4;
    hp[1].explore = QF_EXPLORE_BOOTSTRAP;  // sample, Boltzmann on the head's row
    hp[1].n_heads = 6;
    hp[1].alpha = 0.5f;
    hp[2].explore = QF_EXPLORE_BOOTSTRAP;  // UCB
    hp[2].n_heads = 5;
    hp[2].act_mode = QF_ACT_UCB;
    hp[2].ucb_c = 1.3f;
    hp[3].eps_start = 0.6f;  // epsilon schedule
    hp[3].eps_end = 0.1f;
    hp[3].eps_steps = 300;
    hp[4].explore = QF_EXPLORE_BOLTZMANN;
    hp[4].alpha = 0.3f;
    hp[5].explore = QF_EXPLORE_COUNT;  // acts epsilon-greedily
    const std::vector<uint32_t> keys = {9, 0, 9, 1, 9, 2, 9, 3, 9, 4, 10, 0};
    const std::vector<float> q = normal((size_t)R * K * E * A, 1);
    std::vector<std::vector<int32_t>> heads[2], acts[2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<float> dq(b, q);
        DevBuf<qf_run_hp> dhp(b, hp);
        DevBuf<uint32_t> dkeys(b, keys);
        DevBuf<int32_t> dheads(b, std::vector<int32_t>((size_t)R * E, 0)), dact(b, (size_t)R * E);
        DevBuf<uint8_t> dflags(b, (size_t)R * E);
        for (uint32_t t = 0; t < 8; t++) {
            dflags.put(random_flags((size_t)R * E, 100 + t));
            ASSERT_EQ(b->act(b, &net, dhp.p, E, dq.p, dkeys.p, t * 41, dflags.p, dheads.p, dact.p), QF_OK) << b->err;
            heads[k].push_back(dheads.get());
            acts[k].push_back(dact.get());
        }
    }
    for (size_t t = 0; t < heads[0].size(); t++) {
        EXPECT_EQ(heads[0][t], heads[1][t]) << "heads differ at call " << t;
        EXPECT_EQ(acts[0][t], acts[1][t]) << "actions differ at call " << t;
    }
}

// ---- replay with masks and intrinsic rewards ------------------------------------------------------
TEST(ExploreGpu, ReplayMasksAndIntrAreBitIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 4, E = 300, C = 701, B = 128, D = 3;
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].explore = QF_EXPLORE_BOOTSTRAP;
    hp[0].n_heads = 10;
    hp[0].mask_p = 0.5f;
    hp[1].explore = QF_EXPLORE_BOOTSTRAP;
    hp[1].n_heads = 32;
    hp[1].mask_p = 0.25f;
    hp[2].explore = QF_EXPLORE_BOOTSTRAP;
    hp[2].n_heads = 3;
    hp[2].mask_p = 1.0f;
    hp[3].explore = QF_EXPLORE_BOOTSTRAP; // 64 heads: bits 32-63 from the second half of the draws
    hp[3].n_heads = 64;
    hp[3].mask_p = 0.5f;
    const std::vector<uint32_t> keys = {4, 0, 4, 1, 5, 0, 5, 1};
    const std::vector<float> obs = normal((size_t)R * E * D, 2), nobs = normal((size_t)R * E * D, 3);
    const std::vector<float> rew = normal((size_t)R * E, 4), intr = normal((size_t)R * E, 5, 0.2f, 1.0f);
    std::vector<int32_t> act((size_t)R * E);
    for (size_t i = 0; i < act.size(); i++) act[i] = (int32_t)(i % 5);
    const std::vector<uint8_t> flags = random_flags((size_t)R * E, 6);
    std::vector<qf_mask> rmask[2], smask[2];
    std::vector<float> rintr[2], sintr[2], sobs[2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<float> dobs(b, obs), dnobs(b, nobs), drew(b, rew), dintr(b, intr);
        DevBuf<int32_t> dact(b, act);
        DevBuf<uint8_t> dflags(b, flags);
        DevBuf<qf_run_hp> dhp(b, hp);
        DevBuf<uint32_t> dkeys(b, keys);
        DevBuf<float> ro(b, (size_t)R * C * D), rno(b, (size_t)R * C * D), rr(b, (size_t)R * C), ri(b, (size_t)R * C);
        DevBuf<int32_t> ra(b, (size_t)R * C);
        DevBuf<uint8_t> rt(b, (size_t)R * C);
        DevBuf<qf_mask> rm(b, (size_t)R * C);
        qf_replay rp = {R, C, D, 0, ro.p, rno.p, nullptr, nullptr, ra.p, rr.p, rt.p, rm.p, ri.p, {}, nullptr, nullptr, nullptr, 0, 0};
        for (int64_t step = 0; step < 4; step++)  // wraps; the last store has no intrinsic rewards
            ASSERT_EQ(b->replay_store(b, &rp, dhp.p, dkeys.p, E, step * E % C, (uint32_t)step, dobs.p, nullptr, dact.p,
                                      drew.p, dflags.p, dnobs.p, nullptr, step == 3 ? nullptr : dintr.p),
                      QF_OK)
                << b->err;
        rmask[k] = rm.get();
        rintr[k] = ri.get();
        DevBuf<float> so(b, (size_t)R * B * D), sno(b, (size_t)R * B * D), sr(b, (size_t)R * B), si(b, (size_t)R * B);
        DevBuf<int32_t> sa(b, (size_t)R * B);
        DevBuf<uint8_t> st(b, (size_t)R * B);
        DevBuf<qf_mask> sm(b, (size_t)R * B);
        qf_sample smp = {R, B, D, 0, so.p, sno.p, nullptr, nullptr, sa.p, sr.p, st.p, sm.p, si.p, {}, nullptr, nullptr, nullptr, 0, 0};
        ASSERT_EQ(b->replay_sample(b, &rp, B, C, 17, dkeys.p, &smp), QF_OK) << b->err;
        smask[k] = sm.get();
        sintr[k] = si.get();
        sobs[k] = sno.get();
    }
    EXPECT_EQ(rmask[0], rmask[1]) << "stored masks differ";
    EXPECT_TRUE(same_bits(rintr[0], rintr[1])) << "stored intrinsic rewards differ";
    EXPECT_EQ(smask[0], smask[1]) << "sampled masks differ";
    EXPECT_TRUE(same_bits(sintr[0], sintr[1])) << "sampled intrinsic rewards differ";
    EXPECT_TRUE(same_bits(sobs[0], sobs[1])) << "sampled next observations differ";
}

// ---- the priors' outputs kept with the transitions ------------------------------------------------
// replay_store_prior writes each head's rows into the ring's slots, replay_sample copies the drawn
// slots' rows into [G][B][A] (every head's for a run's batch, the head's own for per-head batches):
// copies, so bit-identical on both backends and equal to the rows they came from.
TEST(ExploreGpu, KeptPriorOutputsStoreAndSampleAreBitIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 3, K = 5, E = 7, C = 40, B = 16, A = 3, G = R * K;
    const std::vector<uint32_t> keys = {1, 0, 1, 1, 2, 0};
    std::vector<float> ring[2][2], smp[2][2][2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<int32_t> ridx(b, (size_t)R * C), rnidx(b, (size_t)R * C), ract(b, (size_t)R * C);
        DevBuf<float> rrew(b, (size_t)R * C), rintr(b, (size_t)R * C), po(b, (size_t)G * C * A), pn(b, (size_t)G * C * A);
        DevBuf<uint8_t> rterm(b, (size_t)R * C);
        DevBuf<qf_mask> rmask(b, (size_t)R * C);
        DevBuf<uint32_t> dkeys(b, keys);
        qf_replay rp = {R, C, 1, 1, nullptr, nullptr, ridx.p, rnidx.p, ract.p, rrew.p, rterm.p, rmask.p, rintr.p,
                        {}, nullptr, po.p, pn.p, K, A};
        for (int64_t step = 0; step < 7; step++) {  // 49 transitions into 40 slots: wraps
            DevBuf<float> qo(b, normal((size_t)G * E * A, 50 + (uint32_t)step)), qn(b, normal((size_t)G * E * A, 70 + (uint32_t)step));
            ASSERT_EQ(b->replay_store_prior(b, &rp, E, step * E % C, qo.p, qn.p), QF_OK) << b->err;
        }
        ring[k][0] = po.get();
        ring[k][1] = pn.get();
        for (int per_head = 0; per_head < 2; per_head++) {
            const int rows = per_head ? G : R;
            DevBuf<int32_t> six(b, (size_t)rows * B), snix(b, (size_t)rows * B), sa(b, (size_t)rows * B);
            DevBuf<float> sr(b, (size_t)rows * B), si(b, (size_t)rows * B), so(b, (size_t)G * B * A), sn(b, (size_t)G * B * A);
            DevBuf<uint8_t> st(b, (size_t)rows * B);
            DevBuf<qf_mask> sm(b, (size_t)rows * B);
            qf_sample s = {rows, B, 1, 1, nullptr, nullptr, six.p, snix.p, sa.p, sr.p, st.p, sm.p, si.p, {}, nullptr, so.p, sn.p, K, A};
            ASSERT_EQ(b->replay_sample(b, &rp, B, C, 9, dkeys.p, &s), QF_OK) << b->err;
            smp[k][per_head][0] = so.get();
            smp[k][per_head][1] = sn.get();
        }
    }
    for (int w = 0; w < 2; w++) {
        EXPECT_TRUE(same_bits(ring[0][w], ring[1][w])) << (w ? "prior_next" : "prior_obs") << " ring differs";
        for (int per_head = 0; per_head < 2; per_head++)
            EXPECT_TRUE(same_bits(smp[0][per_head][w], smp[1][per_head][w])) << "sampled rows differ, per_head=" << per_head;
    }
    // the ring holds step 6's rows at slots (42 + e) % 40 (CPU copy): head g, env e of the last store
    const std::vector<float> last = normal((size_t)G * E * A, 56);
    for (int g = 0; g < G; g++)
        for (int e = 0; e < E; e++)
            for (int a = 0; a < A; a++)
                ASSERT_EQ(ring[0][0][((size_t)g * C + (42 + e) % C) * A + a], last[((size_t)g * E + e) * A + a]);
    // every sampled row is a row of the ring of its head (shared batches: the same slot for all heads)
    for (int per_head = 0; per_head < 2; per_head++)
        for (int g = 0; g < G; g++)
            for (int j = 0; j < B; j++) {
                const float *row = &smp[0][per_head][0][((size_t)g * B + j) * A];
                bool found = false;
                for (int slot = 0; slot < C && !found; slot++)
                    found = std::memcmp(row, &ring[0][0][((size_t)g * C + slot) * A], sizeof(float) * A) == 0;
                EXPECT_TRUE(found) << "per_head=" << per_head << " g=" << g << " j=" << j;
            }
}

// ---- TD with masks and intrinsic rewards ----------------------------------------------------------
TEST(ExploreGpu, TdWithMasksAndIntrAgrees) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 3, K = 4, B = 64, A = 5;
    const qf_net net = make_net(R, K, 1, {7, A});
    const size_t G = (size_t)R * K;
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].beta = 0.5f;  // hard max, Huber
    hp[1].alpha = 0.4f;  // soft, squared loss
    hp[1].loss = QF_LOSS_SQUARED;
    hp[1].beta = 2.0f;
    hp[2].double_q = 1;  // double Q, beta 0
    const std::vector<float> q = normal(G * B * A, 7), qt = normal(G * B * A, 8), qo = normal(G * B * A, 9);
    const std::vector<float> rew = normal((size_t)R * B, 10), intr = normal((size_t)R * B, 11, 0.3f, 1.0f);
    std::vector<int32_t> act((size_t)R * B);
    std::vector<uint8_t> term((size_t)R * B);
    std::vector<qf_mask> mask((size_t)R * B);
    std::mt19937 rng(12);
    for (size_t i = 0; i < act.size(); i++) {
        act[i] = (int32_t)(rng() % A);
        term[i] = (uint8_t)(rng() % 6 == 0);
        mask[i] = rng();
    }
    std::vector<float> dq[2], loss[2], qmean[2], imean[2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<float> dq_(b, G * B * A), dqv(b, q), dqt(b, qt), dqo(b, qo), drew(b, rew), dintr(b, intr), dloss(b, G),
            dqmean(b, G), dimean(b, (size_t)R);
        DevBuf<int32_t> dact(b, act);
        DevBuf<uint8_t> dterm(b, term);
        DevBuf<qf_mask> dmask(b, mask);
        DevBuf<qf_run_hp> dhp(b, hp);
        qf_sample s;
        std::memset(&s, 0, sizeof s);
        s.R = R;
        s.C = B;
        s.embed = 1;
        s.action = dact.p;
        s.reward = drew.p;
        s.terminal = dterm.p;
        s.mask = dmask.p;
        s.intr = dintr.p;
        ASSERT_EQ(b->td(b, &net, dhp.p, B, &s, dqv.p, dqt.p, dqo.p, dq_.p, dloss.p, dqmean.p, dimean.p), QF_OK) << b->err;
        dq[k] = dq_.get();
        loss[k] = dloss.get();
        qmean[k] = dqmean.get();
        imean[k] = dimean.get();
    }
    expect_close(dq[0], dq[1], 1e-5, "td dq with masks");
    expect_close(loss[0], loss[1], 1e-5, "td loss with masks");
    expect_close(qmean[0], qmean[1], 1e-5, "td mean Q");
    expect_close(imean[0], imean[1], 1e-5, "td mean beta * intr");
    // the masked-out rows are exactly zero on both
    for (size_t g = 0; g < G; g++)
        for (int j = 0; j < B; j++)
            if (!((mask[(g / K) * B + j] >> (g % K)) & 1u)) {
                for (int a = 0; a < A; a++) ASSERT_EQ(dq[1][(g * B + j) * A + a], 0.0f) << "g=" << g << " j=" << j;
            }
}

// ---- randomized priors -----------------------------------------------------------------------------
TEST(ExploreGpu, AddPriorIsBitIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 4, K = 3, M = 333, A = 6;
    const qf_net net = make_net(R, K, 1, {5, A});
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].prior_scale = 3.0f;
    hp[1].prior_scale = 0.0f;
    hp[2].prior_scale = 0.37f;
    hp[3].prior_scale = 10.0f;
    const size_t per = (size_t)M * A, n = (size_t)R * K * per;
    const std::vector<float> q = normal(n, 13);
    std::vector<float> qp = normal(n, 14);
    for (size_t i = 1 * K * per; i < 2 * K * per; i++) qp[i] = NAN;  // scale 0: never read
    std::vector<float> out[2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<float> dq(b, q), dqp(b, qp);
        DevBuf<qf_run_hp> dhp(b, hp);
        ASSERT_EQ(b->add_prior(b, &net, dhp.p, M, dq.p, dqp.p), QF_OK) << b->err;
        out[k] = dq.get();
    }
    EXPECT_TRUE(same_bits(out[0], out[1])) << "q + prior differs";
    EXPECT_TRUE(std::memcmp(out[1].data() + K * per, q.data() + K * per, sizeof(float) * K * per) == 0)
        << "a run with prior_scale 0 was changed";
}

// ---- Q-diversity ----------------------------------------------------------------------------------
// The same sums in the same order on both; they differ only where a compiler contracts d * d + ss
// into an FMA. Each std is within (2K + 4) float ulps of max|Q| (the mean's and the squared
// deviations' K-term sums, the divide and the sqrt), the mean over E A cells adds E A ulps of it, and
// two calls sum twice: tolerance 2 ((2K + 4) + E A) FLT_EPSILON max|Q| per backend, both counted.
TEST(ExploreGpu, QDiversityAgrees) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 5, K = 64, E = 7, A = 4;
    const qf_net net = make_net(R, K, 1, {5, A});
    std::vector<qf_run_hp> hp(R, default_hp());
    const int heads[R] = {64, 40, 2, 1, 10};
    for (int r = 0; r < R; r++) {
        hp[r].explore = r == 3 ? QF_EXPLORE_EPSILON : QF_EXPLORE_BOOTSTRAP;
        hp[r].n_heads = heads[r];
    }
    const std::vector<float> q = normal((size_t)R * K * E * A, 31, 3.0f, 1.0f);
    double qmax = 0.0;
    for (float v : q) qmax = std::max(qmax, (double)std::fabs(v));
    const std::vector<float> acc0 = {0.0f, 1.5f, 0.0f, 0.25f, 2.0f};
    std::vector<float> out[2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<float> dq(b, q), dacc(b, acc0);
        DevBuf<qf_run_hp> dhp(b, hp);
        for (int i = 0; i < 2; i++) ASSERT_EQ(b->q_diversity(b, &net, dhp.p, E, dq.p, dacc.p), QF_OK) << b->err;
        out[k] = dacc.get();
    }
    for (int r = 0; r < R; r++) {
        const double tol = 2.0 * 2.0 * ((2.0 * K + 4.0) + E * A) * FLT_EPSILON * qmax;
        EXPECT_NEAR(out[0][r], out[1][r], tol) << "run " << r;
        if (r != 3) {
            EXPECT_GT(out[0][r], acc0[r] + 1.0f) << "run " << r << ": std of N(1, 3^2) values, twice";
        }
    }
    EXPECT_EQ(out[1][3], 0.25f) << "an epsilon run's sum is not touched";
    EXPECT_EQ(out[0][3], 0.25f);
}

// ---- counts ----------------------------------------------------------------------------------------
TEST(ExploreGpu, ExactCountsAndBonusesAreIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 3, S = 101, E = 512, B = 256, steps = 12;
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].bonus = QF_BONUS_COUNT;
    hp[1].bonus = QF_BONUS_NONE;
    hp[2].bonus = QF_BONUS_COUNT;
    const std::vector<uint32_t> keys = {1, 0, 1, 1, 1, 2};
    std::mt19937 rng(15);
    std::vector<std::vector<int32_t>> seq(steps, std::vector<int32_t>((size_t)R * E));
    for (auto &v : seq)
        for (auto &x : v) {
            const double u = (double)(rng() >> 8) / 16777216.0;
            x = (int32_t)(90.0 * u * u);  // many envs on the same few states: contended increments
        }
    std::vector<int32_t> sidx((size_t)R * B);
    for (size_t i = 0; i < sidx.size(); i++) sidx[i] = (int32_t)(rng() % S);
    std::vector<uint32_t> cnt[2];
    std::vector<float> intr[2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<uint32_t> dcnt(b, (size_t)R * S), dkeys(b, keys);
        ASSERT_EQ(b->fill0(b, dcnt.p, sizeof(uint32_t) * R * S), QF_OK);
        qf_counts c;
        std::memset(&c, 0, sizeof c);
        c.R = R;
        c.mode = QF_COUNT_EXACT;
        c.S = S;
        c.cnt = dcnt.p;
        ASSERT_EQ(b->count_init(b, &c, dkeys.p), QF_OK) << b->err;
        DevBuf<int32_t> didx(b, (size_t)R * E);
        for (const auto &v : seq) {
            didx.put(v);
            ASSERT_EQ(b->count_update(b, &c, E, nullptr, didx.p), QF_OK) << b->err;
        }
        cnt[k] = dcnt.get();
        DevBuf<int32_t> dsidx(b, sidx);
        DevBuf<float> dintr(b, std::vector<float>((size_t)R * B, -3.0f));
        DevBuf<qf_run_hp> dhp(b, hp);
        qf_sample s;
        std::memset(&s, 0, sizeof s);
        s.R = R;
        s.C = B;
        s.embed = 1;
        s.next_idx = dsidx.p;
        s.intr = dintr.p;
        ASSERT_EQ(b->count_bonus(b, &c, dhp.p, B, &s), QF_OK) << b->err;
        intr[k] = dintr.get();
    }
    EXPECT_EQ(cnt[0], cnt[1]) << "exact counts differ";
    EXPECT_TRUE(same_bits(intr[0], intr[1])) << "count bonuses differ";
    for (int j = 0; j < B; j++) EXPECT_EQ(intr[1][(size_t)B + j], -3.0f) << "run without a count bonus was written";
}

TEST(ExploreGpu, SimHashCountsPerCodeAndBonusesAreIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 2, bits = 24, D = 12, log2cap = 8, NV = 60, E = 500, B = 200, steps = 10;
    const size_t cap = (size_t)1 << log2cap;
    const std::vector<uint32_t> keys = {70, 0, 71, 0};
    const std::vector<float> pool = normal((size_t)NV * D, 16);  // 60 observations, repeated often
    std::mt19937 rng(17);
    std::vector<std::vector<float>> seq(steps, std::vector<float>((size_t)R * E * D));
    for (auto &v : seq)
        for (int i = 0; i < R * E; i++) {
            const size_t p = rng() % NV;
            std::copy(pool.begin() + p * D, pool.begin() + (p + 1) * D, v.begin() + (size_t)i * D);
        }
    std::vector<float> sobs((size_t)R * B * D);
    for (int i = 0; i < R * B; i++) {
        const size_t p = rng() % (NV + 10);  // some never-seen observations
        const std::vector<float> fresh = normal(D, 1000 + i);
        for (int d = 0; d < D; d++) sobs[(size_t)i * D + d] = p < (size_t)NV ? pool[p * D + d] : fresh[d];
    }
    std::vector<float> proj[2], intr[2];
    std::vector<uint64_t> key[2];
    std::vector<uint32_t> cnt[2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<uint32_t> dcnt(b, R * cap), dkeys(b, keys);
        DevBuf<uint64_t> dkey(b, R * cap);
        DevBuf<float> dproj(b, (size_t)R * bits * D);
        ASSERT_EQ(b->fill0(b, dcnt.p, sizeof(uint32_t) * R * cap), QF_OK);
        ASSERT_EQ(b->fill0(b, dkey.p, sizeof(uint64_t) * R * cap), QF_OK);
        qf_counts c;
        std::memset(&c, 0, sizeof c);
        c.R = R;
        c.mode = QF_COUNT_SIMHASH;
        c.bits = bits;
        c.D = D;
        c.log2cap = log2cap;
        c.cnt = dcnt.p;
        c.key = dkey.p;
        c.proj = dproj.p;
        ASSERT_EQ(b->count_init(b, &c, dkeys.p), QF_OK) << b->err;
        proj[k] = dproj.get();
        DevBuf<float> dobs(b, (size_t)R * E * D);
        for (const auto &v : seq) {
            dobs.put(v);
            ASSERT_EQ(b->count_update(b, &c, E, dobs.p, nullptr), QF_OK) << b->err;
        }
        key[k] = dkey.get();
        cnt[k] = dcnt.get();
        std::vector<qf_run_hp> hp(R, default_hp());
        for (auto &h : hp) h.bonus = QF_BONUS_COUNT;
        DevBuf<qf_run_hp> dhp(b, hp);
        DevBuf<float> dsobs(b, sobs), dintr(b, (size_t)R * B);
        qf_sample s;
        std::memset(&s, 0, sizeof s);
        s.R = R;
        s.C = B;
        s.D = D;
        s.next_obs = dsobs.p;
        s.intr = dintr.p;
        ASSERT_EQ(b->count_bonus(b, &c, dhp.p, B, &s), QF_OK) << b->err;
        intr[k] = dintr.get();
    }
    EXPECT_TRUE(same_bits(proj[0], proj[1])) << "SimHash projections differ";
    // slot positions may differ (insertion order); the count of every code may not
    for (int r = 0; r < R; r++) {
        const float *pr = proj[0].data() + (size_t)r * bits * D;
        int occ[2] = {0, 0};
        uint64_t tot[2] = {0, 0};
        for (int k = 0; k < 2; k++)
            for (size_t sl = 0; sl < cap; sl++) {
                occ[k] += key[k][r * cap + sl] != 0;
                tot[k] += cnt[k][r * cap + sl];
            }
        EXPECT_EQ(occ[0], occ[1]) << "run " << r << ": distinct codes";
        EXPECT_EQ(tot[0], (uint64_t)E * steps) << "run " << r;
        EXPECT_EQ(tot[1], (uint64_t)E * steps) << "run " << r;
        for (int v = 0; v < NV; v++) {
            const uint64_t code = qf_simhash_code(pr, bits, D, &pool[(size_t)v * D]);
            const uint32_t n0 = qf_hash_count(&key[0][r * cap], &cnt[0][r * cap], log2cap, code);
            const uint32_t n1 = qf_hash_count(&key[1][r * cap], &cnt[1][r * cap], log2cap, code);
            EXPECT_GT(n0, 0u) << "run " << r << " observation " << v;
            EXPECT_EQ(n0, n1) << "run " << r << " observation " << v;
        }
    }
    EXPECT_TRUE(same_bits(intr[0], intr[1])) << "SimHash bonuses differ";
}

// ---- RND -------------------------------------------------------------------------------------------
// The qf_rnd fields the RND ops use, in one backend's memory.
struct DevRnd {
    qf_rnd q;
    DevBuf<float> out_t, out_p, dq, xn, ret, loss;
    DevBuf<double> obs_mean, obs_m2, obs_n, ret_mean, ret_m2, ret_n;
    DevRnd(qf_backend *b, const qf_net &net, int M, int E)
        : out_t(b, (size_t)net.R * M * net.w[net.L]), out_p(b, out_t.n), dq(b, out_t.n),
          xn(b, (size_t)net.R * M * net.w[0]), ret(b, (size_t)net.R * E), loss(b, (size_t)net.R),
          obs_mean(b, (size_t)net.R * net.w[0]), obs_m2(b, obs_mean.n), obs_n(b, (size_t)net.R),
          ret_mean(b, (size_t)net.R), ret_m2(b, (size_t)net.R), ret_n(b, (size_t)net.R) {
        std::memset(&q, 0, sizeof q);
        q.net = net;
        q.out_t = out_t.p;
        q.out_p = out_p.p;
        q.dq = dq.p;
        q.xn = xn.p;
        q.ret = ret.p;
        q.loss = loss.p;
        q.obs_mean = obs_mean.p;
        q.obs_m2 = obs_m2.p;
        q.obs_n = obs_n.p;
        q.ret_mean = ret_mean.p;
        q.ret_m2 = ret_m2.p;
        q.ret_n = ret_n.p;
        EXPECT_EQ(b->fill0(b, ret.p, sizeof(float) * ret.n), QF_OK);
        for (DevBuf<double> *d : {&obs_mean, &obs_m2, &obs_n, &ret_mean, &ret_m2, &ret_n})
            EXPECT_EQ(b->fill0(b, d->p, sizeof(double) * d->n), QF_OK);
    }
};

TEST(ExploreGpu, RndInputRewardAndGradAgree) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 3, D = 6, M = 96, E = 96, dim = 8;
    const qf_net net = make_net(R, 1, 0, {D, 16, dim});
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].rnd_episodic = 1;
    hp[1].gamma = 0.5f;
    hp[2].rnd_episodic = 1;
    hp[2].gamma = 0.9f;
    const int rounds = 5;
    // per round: observations with large offsets (one constant dimension, some outliers), outputs
    std::vector<std::vector<float>> xs, ots, ops;
    std::vector<std::vector<uint8_t>> fls;
    for (int i = 0; i < rounds; i++) {
        std::vector<float> x = normal((size_t)R * M * D, 200 + i, 50.0f, 1000.0f);
        for (int m = 0; m < R * M; m++) x[(size_t)m * D + 2] = 42.5f;
        if (i == rounds - 1) x[5 * D] = 1e7f;  // an outlier: clipped
        xs.push_back(x);
        ots.push_back(normal((size_t)R * M * dim, 300 + i));
        ops.push_back(normal((size_t)R * M * dim, 400 + i, 1.5f));
        fls.push_back(random_flags((size_t)R * E, 500 + i));
    }
    std::vector<double> mean[2], m2[2], n[2], rmean[2], rm2[2], rn[2];
    std::vector<std::vector<float>> xn[2], intr[2], dq[2], loss[2], ret[2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevRnd r(b, net, M, E);
        DevBuf<qf_run_hp> dhp(b, hp);
        DevBuf<float> dx(b, (size_t)R * M * D), dintr(b, (size_t)R * E);
        DevBuf<uint8_t> dflags(b, (size_t)R * E);
        for (int i = 0; i < rounds; i++) {
            dx.put(xs[i]);
            ASSERT_EQ(b->rnd_input(b, &r.q, M, dx.p, i != rounds - 1), QF_OK) << b->err;
            xn[k].push_back(r.xn.get());
            r.out_t.put(ots[i]);
            r.out_p.put(ops[i]);
            dflags.put(fls[i]);
            ASSERT_EQ(b->rnd_reward(b, &r.q, dhp.p, E, dflags.p, dintr.p), QF_OK) << b->err;
            intr[k].push_back(dintr.get());
            ret[k].push_back(r.ret.get());
            ASSERT_EQ(b->rnd_grad(b, &r.q, M), QF_OK) << b->err;
            dq[k].push_back(r.dq.get());
            loss[k].push_back(r.loss.get());
        }
        mean[k] = r.obs_mean.get();
        m2[k] = r.obs_m2.get();
        n[k] = r.obs_n.get();
        rmean[k] = r.ret_mean.get();
        rm2[k] = r.ret_m2.get();
        rn[k] = r.ret_n.get();
    }
    // The observation statistics come from identical inputs through the same fixed-order double
    // merges: any difference beyond reassociation (1e-15) is a bug; 1e-9 leaves a wide margin.
    expect_close(mean[0], mean[1], 1e-9, "obs mean");
    expect_close(m2[0], m2[1], 1e-9, "obs m2");
    EXPECT_EQ(n[0], n[1]) << "obs count";
    expect_close(rmean[0], rmean[1], 1e-5, "return mean");
    expect_close(rm2[0], rm2[1], 1e-5, "return m2");
    EXPECT_EQ(rn[0], rn[1]) << "return count";
    for (int i = 0; i < rounds; i++) {
        const std::string at = " (round " + std::to_string(i) + ")";
        expect_close(xn[0][i], xn[1][i], 1e-5, "normalized inputs" + at);
        expect_close(intr[0][i], intr[1][i], 1e-5, "intrinsic rewards" + at);
        expect_close(ret[0][i], ret[1][i], 1e-5, "intrinsic returns" + at);
        expect_close(dq[0][i], dq[1][i], 1e-5, "predictor dq" + at);
        expect_close(loss[0][i], loss[1][i], 1e-5, "predictor loss" + at);
    }
    EXPECT_EQ(xn[1][rounds - 1][5 * D], QF_RND_CLIP) << "outlier clipped";
}

// RND's (state, action) inputs (rnd_pair: pair indices, and the one-hot columns after the
// normalized observation) and acting on Q_E + beta Q_I (add_int_q): integer and exact float work,
// bit-identical on both backends.
TEST(ExploreGpu, RndPairAndIntrinsicActingAreBitIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 3, M = 77, S = 11, A = 4, D = 5;
    std::mt19937 rng(31);
    std::vector<int32_t> xi((size_t)R * M), act((size_t)R * M);
    for (size_t i = 0; i < xi.size(); i++) {
        xi[i] = (int32_t)(rng() % (S + 2)) - 1; // out-of-range indices are clamped alike
        act[i] = (int32_t)(rng() % A);
    }
    const std::vector<float> x = normal((size_t)R * M * D, 32, 3.0f, 1.0f);
    std::vector<int32_t> pairs[2];
    std::vector<float> xn[2], q[2], qa[2];
    const int K = 2, E = 9;
    const qf_net qnet = make_net(R, K, 1, {S, A});
    std::vector<qf_run_hp> hp(R, default_hp());
    for (int r = 0; r < R; r++) {
        hp[r].bonus = QF_BONUS_RND;
        hp[r].beta = 0.25f + (float)r;
    }
    hp[1].rnd_value = QF_RND_VALUE_SEPARATE;
    hp[2].rnd_value = QF_RND_VALUE_SEPARATE;
    hp[2].bonus = QF_BONUS_COUNT; // not an RND run: untouched
    hp[0].rnd_act = 1;
    hp[1].rnd_act = 1;
    hp[2].rnd_act = 1;
    const std::vector<float> q0 = normal((size_t)R * K * E * A, 33), qi = normal((size_t)R * E * A, 34);
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int k = 0; k < 2; k++) {
        qf_backend *b = bs[k];
        DevBuf<int32_t> dxi(b, xi), dact(b, act), dout(b, (size_t)R * M);
        qf_rnd qe;
        std::memset(&qe, 0, sizeof qe);
        qe.net = make_net(R, 1, 1, {S * A, 8, 4});
        qe.n_actions = A;
        qe.xi = dout.p;
        ASSERT_EQ(b->rnd_pair(b, &qe, M, dxi.p, dact.p), QF_OK) << b->err;
        pairs[k] = dout.get();
        const qf_net dn = make_net(R, 1, 0, {D + A, 8, 4});
        DevRnd r(b, dn, M, 1);
        r.q.obs_dim = D;
        r.q.n_actions = A;
        DevBuf<float> dx(b, x);
        ASSERT_EQ(b->rnd_input(b, &r.q, M, dx.p, 1), QF_OK) << b->err;
        ASSERT_EQ(b->rnd_pair(b, &r.q, M, nullptr, dact.p), QF_OK) << b->err;
        xn[k] = r.xn.get();
        DevBuf<float> dq(b, q0), dqi(b, qi);
        DevBuf<qf_run_hp> dhp(b, hp);
        ASSERT_EQ(b->add_int_q(b, &qnet, dhp.p, E, dq.p, dqi.p), QF_OK) << b->err;
        q[k] = dq.get();
        // rnd_act: the scaled pair bonus of rows (r, e) added to action 1 of every head
        const qf_net an = make_net(R, 1, 1, {S * A, 8, 4});
        DevRnd ra(b, an, E, E);
        ra.out_t.put(normal(ra.out_t.n, 35));
        ra.out_p.put(normal(ra.out_p.n, 36));
        ra.ret_m2.put({9.0, 0.5, 2.0});
        ra.ret_n.put({3.0, 1.0, 7.0});
        DevBuf<float> dqa(b, q0);
        ASSERT_EQ(b->rnd_act(b, &ra.q, &qnet, dhp.p, E, 1, dqa.p), QF_OK) << b->err;
        qa[k] = dqa.get();
    }
    EXPECT_EQ(pairs[0], pairs[1]) << "pair indices";
    for (int i = 0; i < R * M; i++)
        EXPECT_EQ(pairs[0][i], std::min(std::max(xi[i], 0), S - 1) * A + act[i]) << "pair " << i;
    expect_close(xn[0], xn[1], 1e-6, "normalized (s, a) inputs");
    for (int i = 0; i < R * M; i++)
        for (int a = 0; a < A; a++) EXPECT_EQ(xn[1][(size_t)i * (D + A) + D + a], a == act[i] ? 1.0f : 0.0f);
    EXPECT_TRUE(same_bits(q[0], q[1])) << "Q_E + beta Q_I";
    // the mean over 4 outputs of squared differences in a fixed order: equal, but for FMA contraction
    expect_close(qa[0], qa[1], 1e-6, "Q + beta x pair bonus (rnd_act)");
    EXPECT_TRUE(std::memcmp(qa[1].data() + 2 * (size_t)K * E * A, q0.data() + 2 * (size_t)K * E * A,
                            sizeof(float) * K * E * A) == 0) << "rnd_act changed a run without RND";
    for (size_t i = 0; i < (size_t)R * K * E * A; i++) {
        if (i % A != 1) {
            EXPECT_EQ(qa[1][i], q0[i]) << "rnd_act changed another action's column at " << i;
        }
    }
    const size_t per = (size_t)K * E * A;
    EXPECT_TRUE(std::memcmp(q[1].data(), q0.data(), sizeof(float) * per) == 0) << "a shared-value run was changed";
    EXPECT_TRUE(std::memcmp(q[1].data() + 2 * per, q0.data() + 2 * per, sizeof(float) * per) == 0)
        << "a run without RND was changed";
    EXPECT_FLOAT_EQ(q[1][per + (size_t)E * A + 5], q0[per + (size_t)E * A + 5] + 1.25f * qi[(size_t)E * A + 5])
        << "run 1, head 1: q + beta qi";
}

// (state, action) counts and optimistic acting: exact and SimHash, identical on both backends.
TEST(ExploreGpu, StateActionCountsAndOptimisticActingAreIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 2, S = 26, D = 25, A = 2, E = 300, K = 3, steps = 10, log2cap = 10;
    std::vector<qf_run_hp> hp(R, default_hp());
    for (auto &h : hp) {
        h.bonus = QF_BONUS_COUNT;
        h.count_act = 1;
        h.beta = 0.7f;
    }
    hp[1].count_act = 0;
    const std::vector<uint32_t> keys = {2, 0, 2, 1};
    std::mt19937 rng(27);
    std::vector<std::vector<int32_t>> sidx(steps, std::vector<int32_t>((size_t)R * E)), sact = sidx;
    for (int t = 0; t < steps; t++)
        for (int i = 0; i < R * E; i++) {
            sidx[t][i] = (int32_t)(rng() % 20);
            sact[t][i] = (int32_t)(rng() % A);
        }
    auto onehot = [&](const std::vector<int32_t> &v) {
        std::vector<float> o(v.size() * D, 0.0f);
        for (size_t i = 0; i < v.size(); i++)
            if (v[i] < D) o[i * D + v[i]] = 1.0f;
        return o;
    };
    const qf_net n = make_net(R, K, 1, {S, A});
    std::vector<float> q0((size_t)R * K * E * A);
    for (auto &x : q0) x = (float)(rng() % 1000) / 1000.0f;
    std::vector<float> out[2][2];
    qf_backend *bs[2] = {be.cpu, be.cuda};
    for (int mode = 0; mode < 2; mode++)
        for (int k = 0; k < 2; k++) {
            qf_backend *b = bs[k];
            const size_t cap = (size_t)1 << log2cap;
            DevBuf<uint32_t> dcnt(b, (size_t)R * cap), dcsa(b, (size_t)R * cap), dkeys(b, keys);
            DevBuf<uint64_t> dkey(b, (size_t)R * cap), dksa(b, (size_t)R * cap);
            DevBuf<float> dproj(b, (size_t)R * 40 * D);
            ASSERT_EQ(b->fill0(b, dcnt.p, sizeof(uint32_t) * R * cap), QF_OK);
            ASSERT_EQ(b->fill0(b, dcsa.p, sizeof(uint32_t) * R * cap), QF_OK);
            ASSERT_EQ(b->fill0(b, dkey.p, sizeof(uint64_t) * R * cap), QF_OK);
            ASSERT_EQ(b->fill0(b, dksa.p, sizeof(uint64_t) * R * cap), QF_OK);
            qf_counts c;
            std::memset(&c, 0, sizeof c);
            c.R = R;
            c.A = A;
            c.cnt = dcnt.p;
            c.cnt_sa = dcsa.p;
            if (mode == 0) {
                c.mode = QF_COUNT_EXACT;
                c.S = S;
            } else {
                c.mode = QF_COUNT_SIMHASH;
                c.bits = 40;
                c.D = D;
                c.log2cap = log2cap;
                c.key = dkey.p;
                c.key_sa = dksa.p;
                c.proj = dproj.p;
            }
            ASSERT_EQ(b->count_init(b, &c, dkeys.p), QF_OK) << b->err;
            DevBuf<int32_t> didx(b, (size_t)R * E), dact(b, (size_t)R * E);
            DevBuf<float> dobs(b, (size_t)R * E * D);
            for (int t = 0; t < steps; t++) {
                didx.put(sidx[t]);
                dact.put(sact[t]);
                dobs.put(onehot(sidx[t]));
                ASSERT_EQ(b->count_sa_update(b, &c, E, dobs.p, didx.p, dact.p), QF_OK) << b->err;
            }
            DevBuf<float> dq(b, q0);
            DevBuf<qf_run_hp> dhp(b, hp);
            ASSERT_EQ(b->count_act(b, &c, &n, dhp.p, E, dobs.p, didx.p, dq.p), QF_OK) << b->err;
            out[mode][k] = dq.get();
        }
    for (int mode = 0; mode < 2; mode++) {
        EXPECT_TRUE(same_bits(out[mode][0], out[mode][1])) << (mode ? "SimHash" : "exact");
        EXPECT_TRUE(same_bits(out[0][0], out[1][0])) << "40-bit codes of one-hot states: SimHash equals exact";
    }
}

}  // namespace

// ---- per-head minibatches (head_batch=separate) ------------------------------------------------------
// The sampler's per-head rows, the learner with per-network inputs (dense and embedding), the TD step
// on per-head rows and count bonuses written into per-head rows: CUDA against the CPU reference.
TEST(ExploreGpu, PerHeadBatchesSampleLearnAndBonusAgree) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 3, K = 4, C = 300, B = 64, D = 5, A = 3, S = 40;
    const size_t G = (size_t)R * K, rows = G;
    const std::vector<uint32_t> keys = {3, 0, 3, 1, 8, 0};
    std::mt19937 rng(21);
    std::vector<float> robs = normal((size_t)R * C * D, 22), rnobs = normal((size_t)R * C * D, 23), rrew = normal((size_t)R * C, 24),
                       rintr = normal((size_t)R * C, 25);
    std::vector<int32_t> ridx((size_t)R * C), rnidx((size_t)R * C), ract((size_t)R * C);
    std::vector<uint8_t> rterm((size_t)R * C);
    std::vector<qf_mask> rmask((size_t)R * C);
    for (size_t i = 0; i < ridx.size(); i++) {
        ridx[i] = (int32_t)(rng() % S);
        rnidx[i] = (int32_t)(rng() % S);
        ract[i] = (int32_t)(rng() % A);
        rterm[i] = (uint8_t)(rng() % 6 == 0);
        rmask[i] = rng();
    }
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].bonus = QF_BONUS_COUNT;
    hp[0].beta = 0.5f;
    hp[1].alpha = 0.4f;
    hp[2].bonus = QF_BONUS_COUNT;
    hp[2].beta = 1.5f;
    hp[2].double_q = 1;
    std::vector<uint32_t> counts((size_t)R * S);
    for (auto &c : counts) c = rng() % 9;
    for (int embed = 0; embed < 2; embed++) {
        qf_net net = make_net(R, K, embed, embed ? std::vector<int>{S, 8, A} : std::vector<int>{D, 8, A});
        net.x_per_net = 1;
        const size_t P = (size_t)net.P, H = (size_t)net.H;
        std::vector<float> params = normal(G * P, 26 + embed, 0.3f);
        std::vector<float> s_obs[2], s_intr[2], q[2], grads[2], dq[2], loss[2];
        std::vector<int32_t> s_idx[2];
        qf_backend *bs[2] = {be.cpu, be.cuda};
        for (int k = 0; k < 2; k++) {
            qf_backend *b = bs[k];
            DevBuf<float> ro(b, robs), rno(b, rnobs), rr(b, rrew), ri(b, rintr);
            DevBuf<int32_t> rix(b, ridx), rnix(b, rnidx), ra(b, ract);
            DevBuf<uint8_t> rt(b, rterm);
            DevBuf<qf_mask> rm(b, rmask);
            DevBuf<uint32_t> dkeys(b, keys), dcnt(b, counts);
            qf_replay rp = {R, C, D, embed, ro.p, rno.p, rix.p, rnix.p, ra.p, rr.p, rt.p, rm.p, ri.p, {}, nullptr, nullptr, nullptr, 0, 0};
            DevBuf<float> so(b, rows * B * D), sno(b, rows * B * D), sr(b, rows * B), si(b, rows * B);
            DevBuf<int32_t> six(b, rows * B), snix(b, rows * B), sa(b, rows * B);
            DevBuf<uint8_t> st(b, rows * B);
            DevBuf<qf_mask> sm(b, rows * B);
            qf_sample smp = {(int32_t)rows, B, D, embed, so.p, sno.p, six.p, snix.p, sa.p, sr.p, st.p, sm.p, si.p, {}, nullptr, nullptr, nullptr, 0, 0};
            ASSERT_EQ(b->replay_sample(b, &rp, B, 250, 7, dkeys.p, &smp), QF_OK) << b->err;
            DevBuf<qf_run_hp> dhp(b, hp);
            qf_counts c;
            std::memset(&c, 0, sizeof c);
            c.R = R;
            c.mode = QF_COUNT_EXACT;
            c.S = S;
            c.cnt = dcnt.p;
            if (embed) {
                ASSERT_EQ(b->count_bonus(b, &c, dhp.p, B, &smp), QF_OK) << b->err;
            }
            s_obs[k] = so.get();
            s_idx[k] = six.get();
            s_intr[k] = si.get();
            DevBuf<float> dparams(b, params), acts(b, G * B * H), dqv(b, G * B * A), dqt(b, G * B * A), ddq(b, G * B * A),
                dgr(b, G * P), work(b, (size_t)qf_net_work_floats(&net, B)), dloss(b, G), dqmean(b, G), dimean(b, (size_t)R);
            ASSERT_EQ(b->net_forward(b, &net, dparams.p, B, so.p, six.p, acts.p, dqv.p), QF_OK) << b->err;
            ASSERT_EQ(b->net_forward(b, &net, dparams.p, B, sno.p, snix.p, work.p, dqt.p), QF_OK) << b->err;
            ASSERT_EQ(b->td(b, &net, dhp.p, B, &smp, dqv.p, dqt.p, dqt.p, ddq.p, dloss.p, dqmean.p, dimean.p), QF_OK) << b->err;
            ASSERT_EQ(b->net_backward(b, &net, dparams.p, B, so.p, six.p, acts.p, ddq.p, dgr.p, work.p), QF_OK) << b->err;
            q[k] = dqv.get();
            dq[k] = ddq.get();
            loss[k] = dloss.get();
            grads[k] = dgr.get();
        }
        EXPECT_TRUE(same_bits(s_obs[0], s_obs[1])) << "per-head sampled observations";
        EXPECT_EQ(s_idx[0], s_idx[1]) << "per-head sampled indices";
        EXPECT_TRUE(same_bits(s_intr[0], s_intr[1])) << "count bonuses in per-head rows (embed=" << embed << ")";
        expect_close(q[0], q[1], 1e-5, "forward on per-head inputs");
        expect_close(dq[0], dq[1], 1e-4, "td on per-head rows");
        expect_close(loss[0], loss[1], 1e-4, "td loss on per-head rows");
        expect_close(grads[0], grads[1], 1e-4, "backward on per-head inputs");
    }
}
