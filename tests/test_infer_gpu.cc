// test_infer_gpu.cc — the CUDA twins of the inference / IRL operations (kernels/cuda/infer_cuda.cu)
// against the CPU reference on the same inputs (label `gpu`: skipped without a usable GPU).
// Both run the same per-element functions in the same order (kernels/infer_ops.h); only CUDA's exp,
// log and pow may differ in the last bit, so values agree to 1e-11 relative (double precision over
// T <= 12 backward steps), and feature products, which use no transcendental function, bit for bit.
#include <gtest/gtest.h>

#include <vector>

#include "gpu_util.h"
#include "infer_util.h"

namespace {

InferProblem problems(int kind) {
    qf_env_params p = infer_default_params(kind);
    if (kind == QF_ENV_DEEP_SEA) {
        p.deep_sea.size = 9;
        p.deep_sea.stochastic = 1;
        p.deep_sea.map_per_run = 1;
    }
    if (kind == QF_ENV_GRIDWORLD) p.gridworld.size = 7;
    InferProblem pb = infer_make(kind, p, 12, {0.05, 0.5, 3.0}, 300, 17);
    if (kind == QF_ENV_GRIDWORLD)
        for (int r = 0; r < pb.R(); r++) pb.params[(size_t)r].gridworld.map_seed = r;
    return pb;
}

class InferGpu : public ::testing::TestWithParam<int> {};

TEST_P(InferGpu, BackwardForwardAndLogLikelihoodAgree) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    InferProblem pb = problems(GetParam());
    for (int backup : {QF_BACKUP_VARIATIONAL, QF_BACKUP_INFERENCE}) {
        const InferResult c = infer_run(be.cpu, pb, backup), g = infer_run(be.cuda, pb, backup);
        ASSERT_EQ(c.rc, QF_OK) << c.err;
        ASSERT_EQ(g.rc, QF_OK) << g.err;
        expect_close(c.v, g.v, 1e-11, "V");
        expect_close(c.marg, g.marg, 1e-11, "marginals");
        expect_close(c.occ, g.occ, 1e-11, "occupancy");
        std::vector<std::vector<std::array<int32_t, 3>>> demos((size_t)pb.R());
        for (int r = 0; r < pb.R(); r++)
            for (int j = 0; j < 5; j++) demos[(size_t)r].push_back({j % pb.T, (r + 3 * j) % (pb.S - 1), (r + j) % pb.A});
        expect_close(infer_loglik(be.cpu, pb, backup, demos), infer_loglik(be.cuda, pb, backup, demos), 1e-11,
                     "demo log-likelihood");
    }
    // with a reward table and a start distribution
    pb.reward.resize((size_t)pb.R() * pb.S * pb.A);
    pb.start.assign((size_t)pb.R() * pb.S, 0.0);
    for (size_t i = 0; i < pb.reward.size(); i++) pb.reward[i] = (double)((i * 2654435761u) % 1000) / 250.0 - 2.0;
    for (int r = 0; r < pb.R(); r++) {
        pb.start[(size_t)r * pb.S] = 0.5;
        pb.start[(size_t)r * pb.S + 1] = 0.5;
    }
    for (int backup : {QF_BACKUP_VARIATIONAL, QF_BACKUP_INFERENCE}) {
        const InferResult c = infer_run(be.cpu, pb, backup), g = infer_run(be.cuda, pb, backup);
        ASSERT_EQ(c.rc, QF_OK) << c.err;
        ASSERT_EQ(g.rc, QF_OK) << g.err;
        expect_close(c.v, g.v, 1e-11, "V, reward table");
        expect_close(c.occ, g.occ, 1e-11, "occupancy, reward table");
    }
}

INSTANTIATE_TEST_SUITE_P(Gpu, InferGpu, ::testing::Values(QF_ENV_DEEP_SEA, QF_ENV_CHAIN, QF_ENV_GRIDWORLD),
                         [](const ::testing::TestParamInfo<int> &i) { return std::string(qf_env_spec_of(i.param)->name); });

TEST(InferGpu, FeatureProductsAndAdamAgree) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    const int R = 37, N = 245, F = 6;
    std::vector<double> feat((size_t)R * N * F), x((size_t)R * F), occ((size_t)R * N);
    for (size_t i = 0; i < feat.size(); i++) feat[i] = (double)((i * 7) % 3 == 0);
    for (size_t i = 0; i < x.size(); i++) x[i] = 0.1 * (double)(i % 11) - 0.5;
    for (size_t i = 0; i < occ.size(); i++) occ[i] = (double)(i % 13) / 13.0;
    for (int shared : {0, 1}) {
        const int64_t stride = shared ? 0 : (int64_t)N * F;
        DevBuf<double> cf(be.cpu, feat), gf(be.cuda, feat), cx(be.cpu, x), gx(be.cuda, x), co(be.cpu, occ),
            go(be.cuda, occ), cy(be.cpu, (size_t)R * N), gy(be.cuda, (size_t)R * N), cz(be.cpu, (size_t)R * F),
            gz(be.cuda, (size_t)R * F);
        ASSERT_EQ(be.cpu->feat_matvec(be.cpu, R, N, F, cf.p, stride, cx.p, 0, cy.p), QF_OK);
        ASSERT_EQ(be.cuda->feat_matvec(be.cuda, R, N, F, gf.p, stride, gx.p, 0, gy.p), QF_OK) << be.cuda->err;
        ASSERT_EQ(be.cpu->feat_matvec(be.cpu, R, N, F, cf.p, stride, co.p, 1, cz.p), QF_OK);
        ASSERT_EQ(be.cuda->feat_matvec(be.cuda, R, N, F, gf.p, stride, go.p, 1, gz.p), QF_OK) << be.cuda->err;
        EXPECT_TRUE(same_bits(cy.get(), gy.get())) << "reward = feat psi";
        EXPECT_TRUE(same_bits(cz.get(), gz.get())) << "counts = feat^T occ";
    }
    std::vector<double> expert((size_t)R * F), expected((size_t)R * F), alpha((size_t)R), lr((size_t)R);
    for (size_t i = 0; i < expert.size(); i++) {
        expert[i] = (double)(i % 5);
        expected[i] = (double)(i % 7) * 0.5;
    }
    for (int r = 0; r < R; r++) {
        alpha[(size_t)r] = 0.5 + r;
        lr[(size_t)r] = 0.01 * (1 + r % 3);
    }
    DevBuf<double> ce(be.cpu, expert), ge(be.cuda, expert), cx2(be.cpu, expected), gx2(be.cuda, expected),
        ca(be.cpu, alpha), ga(be.cuda, alpha), cl(be.cpu, lr), gl(be.cuda, lr), cm(be.cpu, (size_t)R * F),
        gm(be.cuda, (size_t)R * F), cv(be.cpu, (size_t)R * F), gv(be.cuda, (size_t)R * F), cp(be.cpu, (size_t)R * F),
        gp(be.cuda, (size_t)R * F), cg(be.cpu, (size_t)R * F), gg(be.cuda, (size_t)R * F);
    for (int t = 0; t < 5; t++) {
        ASSERT_EQ(be.cpu->irl_adam(be.cpu, R, F, ce.p, cx2.p, ca.p, cl.p, t, cm.p, cv.p, cp.p, cg.p), QF_OK);
        ASSERT_EQ(be.cuda->irl_adam(be.cuda, R, F, ge.p, gx2.p, ga.p, gl.p, t, gm.p, gv.p, gp.p, gg.p), QF_OK)
            << be.cuda->err;
    }
    EXPECT_TRUE(same_bits(cg.get(), gg.get())) << "gradient";
    expect_close(cp.get(), gp.get(), 1e-13, "psi after 5 Adam steps");
}

}  // namespace
