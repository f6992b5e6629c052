// test_learn.cc — the learner operations of the CPU backend (kernels/learn.h, kernels/cpu/learn_cpu.c)
// against independent truths: central differences of a separate double-precision MLP (forward and
// backward), the one-hot product (embedding), double-precision logsumexp, a hand-written double
// Adam and its closed form, hand-computed TD targets, binomial standard errors of action and replay
// frequencies, hand-computed ring positions, and the moments of the uniform initialization.
// The CPU backend's memory is host memory, so plain std::vector arrays are passed as device arrays.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/gemm_cpu.h"
#include "test_util.h"

namespace {

constexpr double kU = 5.9604644775390625e-08;  // float32 unit roundoff, 2^-24




template <class T>
bool same_bits(const T *a, const T *b, size_t n) {
    return std::memcmp(a, b, n * sizeof(T)) == 0;
}

// ---- an independent double-precision MLP -----------------------------------------------------
// y = x Wt + b per layer, Wt_l stored [in][out] at off_w[l], b_l at off_b[l], ReLU (or GELU,
// z (1 + erf(z / sqrt 2)) / 2, n.act) between layers. pre (optional) receives every hidden
// pre-activation.
std::vector<double> forward_d(const qf_net &n, const double *W, const std::vector<double> &x,
                              std::vector<double> *pre = nullptr) {
    std::vector<double> h = x;
    for (int l = 0; l < n.L; l++) {
        const int in = n.w[l], out = n.w[l + 1];
        std::vector<double> y(out);
        for (int j = 0; j < out; j++) {
            double s = W[n.off_b[l] + j];
            for (int i = 0; i < in; i++) s += h[i] * W[n.off_w[l] + (int64_t)i * out + j];
            y[j] = s;
        }
        if (l + 1 < n.L)
            for (double &v : y) {
                if (pre) pre->push_back(v);
                v = n.act == QF_ACTIVATION_GELU ? 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))) : (v > 0.0 ? v : 0.0);
            }
        h.swap(y);
    }
    return h;
}

// The layout is the documented one: per layer Wt [in][out] then b [out], layers in order.
TEST(NetLayout, OffsetsOfEachLayer) {
    qf_net n = make_net(2, 2, 0, {5, 7, 6, 3});
    EXPECT_EQ(n.off_w[0], 0);
    EXPECT_EQ(n.off_b[0], 35);
    EXPECT_EQ(n.off_w[1], 42);
    EXPECT_EQ(n.off_b[1], 84);
    EXPECT_EQ(n.off_w[2], 90);
    EXPECT_EQ(n.off_b[2], 108);
    EXPECT_EQ(n.P, 111);
    EXPECT_EQ(n.H, 13);
    qf_net t = make_net(1, 1, 1, {10, 4});
    EXPECT_EQ(t.P, 44);
    EXPECT_EQ(t.H, 0);
}

// net_backward's scratch: rows as wide as the widest hidden layer, never the input (the backward
// stops at layer 0, so an input gradient is never staged): an embedded DeepSea-4096 table (16.7M
// states) needs B floats per buffer, not B x 16.7M (17 GB at batch 128; a new user's finding).
TEST(NetLayout, BackwardScratchIsAsWideAsTheWidestHiddenLayer) {
    const int M = 128;
    qf_net table = make_net(1, 1, 1, {4096 * 4096, 2});
    EXPECT_EQ(qf_net_work_floats(&table, M), 2LL * M * 1);
    qf_net mlp = make_net(3, 2, 1, {400, 50, 64, 2});
    EXPECT_EQ(qf_net_work_floats(&mlp, M), 3LL * 2 * 2 * M * 64);
    mlp.act = QF_ACTIVATION_GELU; // a third buffer for the recomputed pre-activations
    EXPECT_EQ(qf_net_work_floats(&mlp, M), 3LL * 2 * 3 * M * 64);
}

// ---- 1. forward and backward against central differences of the double MLP --------------------
void gradient_check(const std::vector<int> &w, uint32_t seed, int act = QF_ACTIVATION_RELU) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 2, K = 2, M = 4, G = R * K;
    qf_net n = make_net(R, K, 0, w);
    n.act = act;
    const int D = w[0], A = w.back();
    const int64_t P = n.P;
    std::mt19937 rng(seed);
    std::normal_distribution<double> N01(0.0, 1.0);
    std::vector<float> params(G * P), x((size_t)R * M * D), dq((size_t)G * M * A);
    // Random parameters and inputs, redrawn until every hidden pre-activation is at least 1e-3 away
    // from the ReLU kink: the float forward (error ~1e-6, below) then has the same activation
    // pattern as the double one, and a finite-difference step h = 1e-6 moves a pre-activation by at
    // most ~h * |inputs| * |weights| < 1e-4, so no difference quotient straddles a kink.
    int attempt = 0;
    for (;; attempt++) {
        ASSERT_LT(attempt, 200) << "could not draw a kink-free network";
        for (float &p : params) p = (float)(0.5 * N01(rng));
        for (float &v : x) v = (float)N01(rng);
        double zmin = 1e300;
        for (int g = 0; g < G; g++) {
            std::vector<double> Wd(params.begin() + g * P, params.begin() + (g + 1) * P);
            for (int m = 0; m < M; m++) {
                const float *xr = &x[((size_t)(g / K) * M + m) * D];
                std::vector<double> pre;
                forward_d(n, Wd.data(), std::vector<double>(xr, xr + D), &pre);
                for (double z : pre) zmin = std::min(zmin, std::fabs(z));
            }
        }
        if (zmin >= 1e-3) break;
    }
    for (float &v : dq) v = (float)N01(rng);

    std::vector<float> acts((size_t)std::max<int64_t>(1, G * M * n.H)), q((size_t)G * M * A);
    std::vector<float> grads(G * P, -1.0f), work((size_t)qf_net_work_floats(&n, M));
    ASSERT_EQ(b->net_forward(b, &n, params.data(), M, x.data(), nullptr, acts.data(), q.data()), QF_OK);
    ASSERT_EQ(b->net_backward(b, &n, params.data(), M, x.data(), nullptr, acts.data(), dq.data(),
                              grads.data(), work.data()),
              QF_OK);

    for (int g = 0; g < G; g++) {
        std::vector<double> Wd(params.begin() + g * P, params.begin() + (g + 1) * P);
        std::vector<std::vector<double>> xs(M);
        for (int m = 0; m < M; m++) {
            const float *xr = &x[((size_t)(g / K) * M + m) * D];
            xs[m].assign(xr, xr + D);
        }
        auto loss_d = [&](const std::vector<double> &W) {
            double s = 0.0;
            for (int m = 0; m < M; m++) {
                std::vector<double> qd = forward_d(n, W.data(), xs[m]);
                for (int a = 0; a < A; a++) s += (double)dq[((size_t)g * M + m) * A + a] * qd[a];
            }
            return s;
        };
        // Float forward vs double forward. Each output is a chain of L dot products of <= 7 terms
        // with O(1) operands; float32 rounding gives ~(terms + 1) * L * 2^-24 ~ 2e-6 relative to the
        // magnitude of the sums, so 1e-5 * max(1, |q|) has a 5x margin and is far below the effect of
        // any indexing error.
        for (int m = 0; m < M; m++) {
            std::vector<double> qd = forward_d(n, Wd.data(), xs[m]);
            for (int a = 0; a < A; a++) {
                const double qf = q[((size_t)g * M + m) * A + a];
                EXPECT_NEAR(qf, qd[a], 1e-5 * std::max(1.0, std::fabs(qd[a])))
                    << "L=" << n.L << " g=" << g << " m=" << m << " a=" << a;
            }
        }
        // Central differences in double. With ReLU q is affine in any single parameter while the
        // activation pattern is fixed, so the quotient has no truncation error; with GELU (smooth,
        // third derivatives O(1) here) the truncation error is ~h^2 ~ 1e-12. Rounding error:
        // ~|loss| * 1e-16 / h ~ 1e-9. The float backward sums <= M * 7 products per entry through
        // L layers: ~30 roundings of 2^-24 relative to O(1) magnitudes, ~2e-6; tolerance
        // 2e-5 * max(1, |grad|) leaves a 10x margin.
        const double h = 1e-6;
        for (int64_t j = 0; j < P; j++) {
            std::vector<double> Wp = Wd, Wm = Wd;
            Wp[j] += h;
            Wm[j] -= h;
            const double fd = (loss_d(Wp) - loss_d(Wm)) / (2.0 * h);
            const double got = grads[g * P + j];
            EXPECT_NEAR(got, fd, 2e-5 * std::max(1.0, std::fabs(fd))) << "L=" << n.L << " g=" << g << " param " << j;
        }
    }
}

TEST(NetGradient, ThreeLayersMatchesFiniteDifferences) { gradient_check({5, 7, 6, 3}, 1234u); }
TEST(NetGradient, OneLayerMatchesFiniteDifferences) { gradient_check({5, 3}, 99u); }
// GELU: the float forward against the double one (erff within a few ulps) and the backward, whose
// derivative uses pre-activations recomputed from the stored layer inputs, against central differences
TEST(NetGradient, GeluThreeLayersMatchesFiniteDifferences) { gradient_check({5, 7, 6, 3}, 4321u, QF_ACTIVATION_GELU); }

// GELU's values and slope at hand-known points: GELU(z) = z Phi(z), GELU'(z) = Phi(z) + z phi(z);
// Phi(1) = 0.8413447460685429, phi(1) = 0.24197072451914337, Phi(0) = 1/2; erff within 2 ulps.
TEST(NetGradient, GeluValuesAndSlopeAtKnownPoints) {
    EXPECT_EQ(qf_gelu(0.0f), 0.0f);
    EXPECT_NEAR(qf_gelu(1.0f), 0.8413447460685429, 3e-7);
    EXPECT_NEAR(qf_gelu(-1.0f), -1.0 + 0.8413447460685429, 3e-7);  // -Phi(-1) = -(1 - Phi(1))
    EXPECT_NEAR(qf_gelu(3.0f), 3.0 * 0.9986501019683699, 1e-6);
    EXPECT_EQ(qf_gelu_grad(0.0f), 0.5f);
    EXPECT_NEAR(qf_gelu_grad(1.0f), 0.8413447460685429 + 0.24197072451914337, 3e-7);
    EXPECT_NEAR(qf_gelu_grad(-1.0f), 1.0 - 0.8413447460685429 - 0.24197072451914337, 3e-7);
}

// ---- 2. embedding first layer == one-hot input ----------------------------------------------
// ---- the learner's GEMMs (kernels/cpu/gemm_cpu.c) ---------------------------------------------
// C = op(A) op(B) against a double-precision product. Summing K terms in float32 (one rounding per
// product or fused multiply-add, one per addition) is off by at most gamma_K * sum_k |a_k b_k|
// with gamma_K = K u / (1 - K u) (Higham, Accuracy and Stability of Numerical Algorithms, 3.1):
// the bound holds for any order, FMA or not, on any CPU.
struct GemmCase {
    int ta, tb, M, N, K;
};

// op(A) element (m, k) and op(B) element (k, n) of the row-major storage qf_cpu_gemm reads.
static float a_at(const std::vector<float> &A, const GemmCase &c, int m, int k) {
    return c.ta ? A[(size_t)k * c.M + m] : A[(size_t)m * c.K + k];
}
static float b_at(const std::vector<float> &B, const GemmCase &c, int k, int n) {
    return c.tb ? B[(size_t)n * c.K + k] : B[(size_t)k * c.N + n];
}

// gemm: qf_cpu_gemm (the process's variant) or one variant's function (GemmVariant below)
static std::vector<float> gemm_run(qf_cpu_gemm_fn gemm, const GemmCase &c, const std::vector<float> &A,
                                   const std::vector<float> &B, int sparse, int M_rows = -1) {
    const int M = M_rows < 0 ? c.M : M_rows;
    std::vector<float> C((size_t)c.M * c.N, std::nanf(""));  // every element must be written
    gemm(c.ta, c.tb, M, c.N, c.K, A.data(), c.ta ? c.M : c.K, B.data(), c.tb ? c.K : c.N, C.data(), c.N, sparse);
    return C;
}

static void check_within_float32_bound(qf_cpu_gemm_fn gemm) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const int Ms[] = {1, 5, 7, 128}, Ns[] = {1, 2, 17, 50, 64, 70}, Ks[] = {1, 4, 64, 300};
    int checked = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int M : Ms)
                for (int N : Ns)
                    for (int K : Ks) {
                        const GemmCase c{ta, tb, M, N, K};
                        std::vector<float> A((size_t)M * K), B((size_t)K * N);
                        for (float &v : A) v = u(rng);
                        for (float &v : B) v = u(rng);
                        const std::vector<float> C = gemm_run(gemm, c, A, B, 0);
                        const double gamma = K * kU / (1.0 - K * kU);
                        for (int m = 0; m < M; m++)
                            for (int n = 0; n < N; n++) {
                                double ref = 0.0, mag = 0.0;
                                for (int k = 0; k < K; k++) {
                                    const double p = (double)a_at(A, c, m, k) * b_at(B, c, k, n);
                                    ref += p;
                                    mag += std::fabs(p);
                                }
                                ASSERT_LE(std::fabs(C[(size_t)m * N + n] - ref), gamma * mag)
                                    << "ta=" << ta << " tb=" << tb << " M=" << M << " N=" << N << " K=" << K
                                    << " at (" << m << ", " << n << ")";
                                checked++;
                            }
                    }
    EXPECT_GT(checked, 100000);
}
TEST(Gemm, EveryShapeAndTransposeWithinTheFloat32Bound) { check_within_float32_bound(qf_cpu_gemm); }

// A row of C depends on its row of A only: the first m rows of a 128-row product are the bits of
// the m-row product (the learner's forward on E acting rows and on B sampled rows agree, and a
// run's numbers do not depend on the batch it shares a call with).
static void check_rows_independent(qf_cpu_gemm_fn gemm) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int tb = 0; tb < 2; tb++)
        for (int N : {2, 50, 64, 100})
            for (int K : {4, 64, 200}) {
                const GemmCase c{0, tb, 128, N, K};
                std::vector<float> A((size_t)128 * K), B((size_t)K * N);
                for (float &v : A) v = u(rng);
                for (float &v : B) v = u(rng);
                const std::vector<float> full = gemm_run(gemm, c, A, B, 0);
                for (int m : {1, 3, 6, 7, 13}) {
                    const std::vector<float> part = gemm_run(gemm, c, A, B, 0, m);
                    EXPECT_TRUE(same_bits(full.data(), part.data(), (size_t)m * N))
                        << "tb=" << tb << " N=" << N << " K=" << K << " m=" << m;
                }
            }
}
TEST(Gemm, RowsDoNotDependOnTheOtherRows) { check_rows_independent(qf_cpu_gemm); }

// The sparse path (sparse_a: one-hot observations) skips zero terms of the same sums: the same
// floats as the dense path, for A's rows (forward) and A's columns (weight gradient); a dense A
// takes the dense path whatever the flag says.
static void check_sparse_equals_dense(qf_cpu_gemm_fn gemm) {
    std::mt19937 rng(13);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f), p01(0.0f, 1.0f);
    for (double density : {0.0, 1.0 / 400.0, 0.05, 0.2, 0.6})
        for (int ta = 0; ta < 2; ta++)
            for (auto [M, N, K] : {std::array<int, 3>{128, 50, 400}, std::array<int, 3>{7, 2, 37},
                                   std::array<int, 3>{1, 64, 400}, std::array<int, 3>{400, 50, 128}}) {
                const GemmCase c{ta, 0, M, N, K};
                std::vector<float> A((size_t)M * K), B((size_t)K * N);
                for (float &v : A) v = p01(rng) < density ? u(rng) : 0.0f;
                for (float &v : B) v = u(rng);
                if (density > 0.0 && density < 0.01) A[(size_t)M * K / 2] = 1.0f;  // at least one
                const std::vector<float> dense = gemm_run(gemm, c, A, B, 0), sparse = gemm_run(gemm, c, A, B, 1);
                for (size_t i = 0; i < dense.size(); i++)
                    ASSERT_EQ(dense[i], sparse[i]) << "density " << density << " ta=" << ta << " M=" << M
                                                   << " N=" << N << " K=" << K << " element " << i;
            }
}
TEST(Gemm, SparsePathEqualsTheDenseSums) { check_sparse_equals_dense(qf_cpu_gemm); }

// ---- the instruction-set variants (runtime dispatch, kernels/cpu/gemm_dispatch.c) -------------
// Each variant the build has and this CPU runs passes the three checks above on its own (FMA or
// not, 4/8/16 lanes: the float32 bound holds for any order); a variant this CPU lacks skips,
// saying why. What this build has and this CPU runs, found here independently of the dispatcher:
// the portable build and other processors have the baseline alone; avx2 needs AVX2 and FMA,
// avx512 also AVX512F and AVX512DQ (the variants' compile flags, CMakeLists.txt).
static bool variant_expected(int isa) {
    if (isa == QF_CPU_ISA_SSE2) return true;
#if defined(QFLEET_PORTABLE) || !(defined(__x86_64__) || defined(__i386__))
    return false;
#else
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == QF_CPU_ISA_AVX2) return avx2;
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#endif
}

class GemmVariant : public ::testing::TestWithParam<int> {
  protected:
    qf_cpu_gemm_fn gemm = nullptr;
    void SetUp() override {
        char why[200] = "";
        gemm = qf_cpu_gemm_variant(GetParam(), why, sizeof why);
        ASSERT_EQ(gemm != nullptr, variant_expected(GetParam())) << qf_cpu_isa_name(GetParam()) << ": " << why;
        if (!gemm) GTEST_SKIP() << qf_cpu_isa_name(GetParam()) << ": " << why;
    }
};
TEST_P(GemmVariant, EveryShapeAndTransposeWithinTheFloat32Bound) { check_within_float32_bound(gemm); }
TEST_P(GemmVariant, RowsDoNotDependOnTheOtherRows) { check_rows_independent(gemm); }
TEST_P(GemmVariant, SparsePathEqualsTheDenseSums) { check_sparse_equals_dense(gemm); }
INSTANTIATE_TEST_SUITE_P(Isa, GemmVariant, ::testing::Values(QF_CPU_ISA_SSE2, QF_CPU_ISA_AVX2, QF_CPU_ISA_AVX512),
                         [](const ::testing::TestParamInfo<int> &i) { return std::string(qf_cpu_isa_name(i.param)); });

// QFLEET_CPU_ISA's values: unset or empty = the widest expected variant; a name = that variant
// when expected, else a one-line refusal naming the variable and the value; an unknown name (also
// in other case) refused. The variant names are the documented ones (gemm_cpu.h, README).
TEST(GemmIsa, TheEnvironmentValueChoosesOrIsRefusedInOneLine) {
    int widest = QF_CPU_ISA_SSE2;
    for (int isa = 0; isa < QF_CPU_ISA_COUNT; isa++)
        if (variant_expected(isa)) widest = isa;
    char err[256];
    EXPECT_EQ(qf_cpu_isa_choose(nullptr, err, sizeof err), widest);
    EXPECT_EQ(qf_cpu_isa_choose("", err, sizeof err), widest);
    const char *names[] = {
#if defined(__x86_64__) || defined(__i386__)
        "sse2",
#else
        "generic",
#endif
        "avx2", "avx512"};
    for (int isa = 0; isa < QF_CPU_ISA_COUNT; isa++) {
        EXPECT_STREQ(qf_cpu_isa_name(isa), names[isa]);
        err[0] = 0;
        const int got = qf_cpu_isa_choose(names[isa], err, sizeof err);
        if (variant_expected(isa)) {
            EXPECT_EQ(got, isa) << names[isa] << ": " << err;
        } else {
            EXPECT_EQ(got, -1) << names[isa];
            EXPECT_NE(std::string(err).find(std::string("QFLEET_CPU_ISA=") + names[isa]), std::string::npos) << err;
            EXPECT_EQ(std::string(err).find('\n'), std::string::npos) << err;
        }
    }
    for (const char *bad : {"AVX2", "avx", "sse", "avx512f", "native", " avx2"}) {
        err[0] = 0;
        EXPECT_EQ(qf_cpu_isa_choose(bad, err, sizeof err), -1) << bad;
        const std::string e(err);
        EXPECT_NE(e.find(std::string("QFLEET_CPU_ISA=") + bad + ": unknown"), std::string::npos) << e;
        EXPECT_NE(e.find("sse2"), std::string::npos) << e;
        EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    }
}

// The process's variant is the one the environment selects, and qf_cpu_gemm computes with it:
// the same bits as that variant called directly (dense, narrow and sparse paths).
TEST(GemmIsa, TheProcessUsesTheChosenVariantForEveryCall) {
    char err[256] = "";
    const int isa = qf_cpu_gemm_isa_checked(err, sizeof err);
    ASSERT_GE(isa, 0) << err;
    EXPECT_EQ(isa, qf_cpu_isa_choose(std::getenv("QFLEET_CPU_ISA"), err, sizeof err));
    EXPECT_EQ(qf_cpu_gemm_isa_checked(err, sizeof err), isa);  // chosen once
    const qf_cpu_gemm_fn mine = qf_cpu_gemm_variant(isa, err, sizeof err);
    ASSERT_NE(mine, nullptr) << err;
    int vw[2], mr[2], nr[2];
    qf_cpu_gemm_shape(&vw[0], &mr[0], &nr[0]);
    ASSERT_TRUE(qf_cpu_gemm_variant_shape(isa, &vw[1], &mr[1], &nr[1]));
    EXPECT_EQ(vw[0], vw[1]);
    EXPECT_EQ(nr[0], nr[1]);
    std::mt19937 rng(17);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f), p01(0.0f, 1.0f);
    for (const GemmCase &c : {GemmCase{0, 0, 128, 64, 64}, GemmCase{1, 0, 64, 64, 128}, GemmCase{0, 1, 128, 50, 50},
                              GemmCase{0, 0, 128, 2, 64}, GemmCase{1, 0, 64, 2, 128}, GemmCase{0, 0, 128, 50, 400}})
        for (int sparse = 0; sparse < 2; sparse++) {
            std::vector<float> A((size_t)c.M * c.K), B((size_t)c.K * c.N);
            for (float &v : A) v = sparse && p01(rng) < 0.95f ? 0.0f : u(rng);
            for (float &v : B) v = u(rng);
            const std::vector<float> via = gemm_run(qf_cpu_gemm, c, A, B, sparse), direct = gemm_run(mine, c, A, B, sparse);
            EXPECT_TRUE(same_bits(via.data(), direct.data(), via.size()))
                << qf_cpu_isa_name(isa) << " ta=" << c.ta << " tb=" << c.tb << " N=" << c.N << " K=" << c.K;
        }
}

TEST(NetEmbed, EqualsOneHotInputIncludingRepeatedStates) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 2, K = 2, M = 8, G = R * K, S = 6, A = 3;
    const std::vector<int> w = {S, 5, 4, A};
    const qf_net ne = make_net(R, K, 1, w), nd = make_net(R, K, 0, w);
    ASSERT_EQ(ne.P, nd.P);
    const int64_t P = ne.P;
    std::mt19937 rng(7);
    std::normal_distribution<float> N01(0.0f, 1.0f);
    std::vector<float> params(G * P), dq((size_t)G * M * A);
    for (float &p : params) p = 0.5f * N01(rng);
    for (float &v : dq) v = N01(rng);
    // repeated states within each run's batch (state 2 three times, 4 four times)
    const std::vector<int32_t> xi = {2, 0, 2, 5, 2, 1, 0, 3, /* run 1 */ 4, 4, 4, 1, 5, 0, 4, 2};
    std::vector<float> x((size_t)R * M * S, 0.0f);
    for (int i = 0; i < R * M; i++) x[(size_t)i * S + xi[i]] = 1.0f;

    std::vector<float> acts_e(G * M * ne.H), acts_d(G * M * ne.H), q_e(G * M * A), q_d(G * M * A);
    ASSERT_EQ(b->net_forward(b, &ne, params.data(), M, nullptr, xi.data(), acts_e.data(), q_e.data()), QF_OK);
    ASSERT_EQ(b->net_forward(b, &nd, params.data(), M, x.data(), nullptr, acts_d.data(), q_d.data()), QF_OK);
    // Exact: the one-hot product sums 1*Wt[s][j] (exact) with 0*Wt[i][j] = +-0 terms, and adding a
    // signed zero to a nonzero float is exact, so the GEMM gives Wt[s][j] + b[j] rounded once — the
    // same single rounding as the gather. Everything after layer 0 then sees identical inputs.
    for (size_t i = 0; i < acts_e.size(); i++) ASSERT_EQ(acts_e[i], acts_d[i]) << "hidden " << i;
    for (size_t i = 0; i < q_e.size(); i++) ASSERT_EQ(q_e[i], q_d[i]) << "q " << i;

    std::vector<float> g_e(G * P), g_d(G * P), work((size_t)qf_net_work_floats(&ne, M));
    ASSERT_EQ(b->net_backward(b, &ne, params.data(), M, nullptr, xi.data(), acts_e.data(), dq.data(),
                              g_e.data(), work.data()),
              QF_OK);
    ASSERT_EQ(b->net_backward(b, &nd, params.data(), M, x.data(), nullptr, acts_d.data(), dq.data(),
                              g_d.data(), work.data()),
              QF_OK);
    // Only layer 0's weight gradient is summed differently (scatter-add in batch order vs the GEMM's
    // X^T dY, whose order OpenBLAS chooses): a row of a state seen k <= 4 times is a sum of k terms,
    // so two orders differ by <= 2 (k - 1) 2^-24 of the sum of magnitudes ~ 4e-7 of it; 1e-6 of the
    // network's largest gradient entry covers it (in practice the two paths agree bitwise here).
    for (int g = 0; g < G; g++) {
        double scale = 0.0;
        for (int64_t j = 0; j < P; j++) scale = std::max(scale, (double)std::fabs(g_d[g * P + j]));
        for (int64_t j = 0; j < P; j++)
            EXPECT_NEAR(g_e[g * P + j], g_d[g * P + j], 1e-6 * scale) << "g=" << g << " param " << j;
        // a state never seen by run g/K has a zero weight-gradient row in both paths
        for (int s = 0; s < S; s++) {
            bool seen = false;
            for (int m = 0; m < M; m++) seen |= xi[(g / K) * M + m] == s;
            if (!seen) {
                for (int j = 0; j < w[1]; j++) EXPECT_EQ(g_e[g * P + ne.off_w[0] + s * w[1] + j], 0.0f);
            }
        }
    }
}

// ---- 3. L = 1 with embedding is a table ------------------------------------------------------
TEST(NetEmbed, OneLayerIsATable) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 2, K = 2, M = 6, G = R * K, S = 5, A = 4;
    const qf_net n = make_net(R, K, 1, {S, A});
    const int64_t P = n.P;
    std::mt19937 rng(3);
    std::normal_distribution<float> N01(0.0f, 1.0f);
    std::vector<float> params(G * P), dq((size_t)G * M * A);
    for (float &p : params) p = N01(rng);
    for (float &v : dq) v = N01(rng);
    const std::vector<int32_t> xi = {4, 0, 4, 2, 1, 4, /* run 1 */ 3, 3, 0, 1, 2, 3};
    std::vector<float> acts(1), q((size_t)G * M * A);
    ASSERT_EQ(b->net_forward(b, &n, params.data(), M, nullptr, xi.data(), acts.data(), q.data()), QF_OK);
    for (int g = 0; g < G; g++)
        for (int m = 0; m < M; m++) {
            const int s = xi[(g / K) * M + m];
            for (int a = 0; a < A; a++)  // one float addition on both sides: exact
                EXPECT_EQ(q[((size_t)g * M + m) * A + a], params[g * P + s * A + a] + params[g * P + S * A + a])
                    << "g=" << g << " m=" << m << " a=" << a;
        }
    // Backward: dWt[s][a] = sum over the batch rows with state s of dq, db[a] = sum of all rows.
    // <= 6 float additions of O(1) terms: error <= 6 * 2^-24 * 6 ~ 2e-6.
    std::vector<float> grads(G * P), work((size_t)qf_net_work_floats(&n, M));
    ASSERT_EQ(b->net_backward(b, &n, params.data(), M, nullptr, xi.data(), acts.data(), dq.data(),
                              grads.data(), work.data()),
              QF_OK);
    for (int g = 0; g < G; g++)
        for (int a = 0; a < A; a++) {
            double db = 0.0;
            std::vector<double> dW(S, 0.0);
            for (int m = 0; m < M; m++) {
                const double d = dq[((size_t)g * M + m) * A + a];
                db += d;
                dW[xi[(g / K) * M + m]] += d;
            }
            EXPECT_NEAR(grads[g * P + S * A + a], db, 1e-5);
            for (int s = 0; s < S; s++) EXPECT_NEAR(grads[g * P + s * A + a], dW[s], 1e-5);
        }
}

// ---- 4. soft value -----------------------------------------------------------------------------
double logsumexp_d(const std::vector<float> &q, double alpha) {
    double m = -std::numeric_limits<double>::infinity();
    for (float v : q) m = std::max(m, (double)v);
    double s = 0.0;
    for (float v : q) s += std::exp(((double)v - m) / alpha);
    return m + alpha * std::log(s);
}

TEST(SoftValue, HardMaxSoftLogSumExpStableAndNaN) {
    const std::vector<std::vector<float>> rows = {
        {0.0f, 1.0f, 2.0f}, {-3.5f, 7.25f, 7.0f, -1.0f}, {5.0f}, {1e3f, 999.0f}, {-2.0f, -2.0f, -2.0f}};
    for (const auto &q : rows) {
        const float mx = *std::max_element(q.begin(), q.end());
        EXPECT_EQ(qf_soft_value(q.data(), (int32_t)q.size(), 0.0f), mx);
        for (float alpha : {1e-3f, 0.1f, 0.5f, 1.0f, 10.0f}) {
            const double ref = logsumexp_d(q, alpha);
            double spread = 0.0;
            for (float v : q) spread = std::max(spread, (double)mx - v);
            // float: (q - m)/alpha rounded (2^-24 relative to spread/alpha, scaled back by alpha),
            // ~n expf/adds and one logf: <= ~10 roundings of the magnitudes |V|, spread, alpha.
            const double tol = 10 * kU * (std::fabs(ref) + spread + alpha) + 1e-30;
            EXPECT_NEAR(qf_soft_value(q.data(), (int32_t)q.size(), alpha), ref, tol) << "alpha=" << alpha;
            EXPECT_GE(qf_soft_value(q.data(), (int32_t)q.size(), alpha), mx);  // V >= max
        }
    }
    // Extreme magnitudes with a tiny temperature: the non-maximal terms underflow to 0 (e.g.
    // exp(-2e36)), the sum is 1 (or 2 for a tie) and V = max + alpha*log(1 or 2) = max in float.
    const std::vector<std::vector<float>> big = {
        {1e30f, -1e30f, 5e29f}, {-1e30f, -3e30f}, {1e30f, 1e30f}, {-1e30f, 1e30f, 0.0f}};
    for (const auto &q : big) {
        const float mx = *std::max_element(q.begin(), q.end());
        const float v = qf_soft_value(q.data(), (int32_t)q.size(), 1e-6f);
        EXPECT_TRUE(std::isfinite(v));
        EXPECT_EQ(v, mx);
        EXPECT_NEAR(qf_soft_value(q.data(), (int32_t)q.size(), 1.0f), mx, 1e-7 * std::fabs(mx));
    }
    // NaN anywhere gives NaN, hard or soft.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<std::vector<float>> bad = {{nan, 1.0f, 2.0f}, {1.0f, nan, 2.0f}, {1.0f, 2.0f, nan}, {nan}};
    for (const auto &q : bad)
        for (float alpha : {0.0f, 1e-6f, 0.5f}) EXPECT_TRUE(std::isnan(qf_soft_value(q.data(), (int32_t)q.size(), alpha)));
}

// ---- 5. Adam -----------------------------------------------------------------------------------
// Double-precision bias-corrected Adam of one network, with the hyperparameters as stored (float).
struct AdamRef {
    std::vector<double> p, m, v;
    int t = 0;
    explicit AdamRef(const float *p0, int64_t P) : p(p0, p0 + P), m(P, 0.0), v(P, 0.0) {}
    // returns the gradient norm; clip as the documented global-norm clipping
    double step(const float *g, const qf_run_hp &h) {
        double ss = 0.0;
        for (size_t j = 0; j < p.size(); j++) ss += (double)g[j] * g[j];
        const double norm = std::sqrt(ss), c = h.max_grad_norm;
        const double scale = (c > 0.0 && norm > c) ? c / norm : 1.0;
        t++;
        const double b1 = h.adam_b1, b2 = h.adam_b2;
        const double c1 = 1.0 - std::pow(b1, t), c2 = 1.0 - std::pow(b2, t);
        for (size_t j = 0; j < p.size(); j++) {
            const double gj = scale * g[j];
            m[j] = b1 * m[j] + (1.0 - b1) * gj;
            v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
            // AdamW (Loshchilov & Hutter 2019, as PyTorch's AdamW): decay first, outside the
            // adaptive denominator; weight_decay = 0 is Adam
            p[j] *= 1.0 - (double)h.lr * (double)h.weight_decay;
            p[j] -= (double)h.lr * (m[j] / c1) / (std::sqrt(v[j] / c2) + (double)h.adam_eps);
        }
        return norm;
    }
};

// Float Adam's error per step: c2 = 1 - b2^t in float loses digits to cancellation (b2^t rounded by
// 2^-25 absolute, c2 >= 1e-3 at t = 1 (exact there) and 2e-3 at t = 2: <= 1.5e-5 relative, halved by
// the sqrt), other roundings ~ few 2^-24: step error <= lr * 1e-5, plus the rounding of p itself,
// <= 2^-24 |p| per step. Over T steps: T * (lr * 1e-5 + 2^-23 |p|max).
double adam_tol(int T, double lr, double pmax) { return T * (lr * 1e-5 + 2 * kU * pmax); }

struct AdamSetup {
    qf_net n;
    int G;
    int64_t P;
    std::vector<float> params, m, v, grads, gnorm;
    std::vector<int32_t> t, status;
    AdamSetup(int R, int K, const std::vector<int> &w) : n(make_net(R, K, 0, w)) {
        G = R * K;
        P = n.P;
        params.assign(G * P, 0.0f);
        m.assign(G * P, 0.0f);
        v.assign(G * P, 0.0f);
        grads.assign(G * P, 0.0f);
        gnorm.assign(G, -1.0f);
        t.assign(R, 0);
        status.assign(R, QF_RUN_OK);
    }
    int step(qf_backend *b, const std::vector<qf_run_hp> &hp) {
        return b->adam(b, &n, hp.data(), params.data(), grads.data(), m.data(), v.data(), t.data(),
                       status.data(), gnorm.data());
    }
};

TEST(Adam, MatchesDoubleReferenceOverTenSteps) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    AdamSetup s(2, 1, {3, 2});  // P = 8
    std::vector<qf_run_hp> hp(2, default_hp());
    hp[1].lr = 3e-3f;  // per-run hyperparameters
    hp[1].adam_b1 = 0.8f;
    std::mt19937 rng(21);
    std::uniform_real_distribution<float> U(-1.0f, 1.0f);
    for (float &p : s.params) p = U(rng);
    std::vector<AdamRef> ref;
    for (int g = 0; g < s.G; g++) ref.emplace_back(&s.params[g * s.P], s.P);
    for (int it = 0; it < 10; it++) {
        for (float &gr : s.grads) gr = U(rng) * (1.0f + it);  // varying magnitude and sign
        ASSERT_EQ(s.step(b, hp), QF_OK);
        for (int g = 0; g < s.G; g++) {
            const double norm = ref[g].step(&s.grads[g * s.P], hp[g]);
            // gnorm is the 2-norm rounded to float: within half an ulp
            EXPECT_NEAR(s.gnorm[g], norm, kU * norm) << "step " << it;
            EXPECT_EQ(s.t[g], it + 1);
            EXPECT_EQ(s.status[g], QF_RUN_OK);
            for (int64_t j = 0; j < s.P; j++) {
                EXPECT_NEAR(s.params[g * s.P + j], ref[g].p[j], adam_tol(it + 1, hp[g].lr, 2.0))
                    << "g=" << g << " step " << it << " param " << j;
                // moments: ~3 roundings per step of values bounded by max|g| = 1 + it (m) and its
                // square (v), accumulated over it + 1 steps (the decays shrink older errors)
                EXPECT_NEAR(s.m[g * s.P + j], ref[g].m[j], 8 * kU * (it + 1) * (1.0 + it));
                EXPECT_NEAR(s.v[g * s.P + j], ref[g].v[j], 8 * kU * (it + 1) * (1.0 + it) * (1.0 + it));
            }
        }
    }
}

// AdamW: the same ten-step double reference with a decoupled weight decay (0.5 and 2 per unit of
// lr), and with a zero gradient the update is the decay alone, p (1 - lr wd), whatever the moments'
// scale: the decay does not pass through Adam's denominator (Loshchilov & Hutter's point).
TEST(Adam, WeightDecayIsDecoupledAsAdamW) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    AdamSetup s(2, 1, {3, 2});
    std::vector<qf_run_hp> hp(2, default_hp());
    hp[0].weight_decay = 0.5f;
    hp[1].weight_decay = 2.0f;
    hp[1].lr = 3e-2f;
    std::mt19937 rng(22);
    std::uniform_real_distribution<float> U(-1.0f, 1.0f);
    for (float &p : s.params) p = U(rng);
    std::vector<AdamRef> ref;
    for (int g = 0; g < s.G; g++) ref.emplace_back(&s.params[g * s.P], s.P);
    for (int it = 0; it < 10; it++) {
        for (float &gr : s.grads) gr = U(rng);
        ASSERT_EQ(s.step(b, hp), QF_OK);
        for (int g = 0; g < s.G; g++) {
            ref[g].step(&s.grads[g * s.P], hp[g]);
            // adam_tol, plus the rounding of the decay factor and of the decayed parameter
            for (int64_t j = 0; j < s.P; j++)
                EXPECT_NEAR(s.params[g * s.P + j], ref[g].p[j], adam_tol(it + 1, hp[g].lr, 2.0) + (it + 1) * 2 * kU)
                    << "g=" << g << " step " << it << " param " << j;
        }
    }
    // zero gradient on fresh moments: m = v = 0, so the Adam term is exactly 0 and p' = p * decay,
    // decay = 1 - lr wd rounded to float once
    AdamSetup z(2, 1, {3, 2});
    for (float &p : z.params) p = U(rng);
    const std::vector<float> before = z.params;
    ASSERT_EQ(z.step(b, hp), QF_OK);
    for (int g = 0; g < z.G; g++)
        for (int64_t j = 0; j < z.P; j++)
            EXPECT_EQ(z.params[g * z.P + j], before[g * z.P + j] * (1.0f - hp[g].lr * hp[g].weight_decay)) << "g=" << g;
}

// The CPU learner flushes denormals to zero inside its loops (learn_cpu.c: an x86 operation on a
// denormal costs ~100 cycles), and leaves the caller's floating-point mode as it was. A gradient of
// 1e-20 has (1 - b2) g^2 = 1e-43, a denormal: v must come out exactly 0, while m = (1 - b1) g =
// 1e-21 is normal and kept, so the step is step * m / eps (v = 0) — all per the flush semantics.
TEST(Adam, DenormalsAreFlushedInsideAndTheCallersModeIsKept) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    AdamSetup s(2, 1, {3, 2});
    std::vector<qf_run_hp> hp(2, default_hp());
    for (float &g : s.grads) g = 1e-20f;
    ASSERT_EQ(s.step(cpu.b, hp), QF_OK);
    for (int64_t j = 0; j < 2 * s.P; j++) {
        EXPECT_EQ(s.v[j], 0.0f) << "j=" << j;
        EXPECT_FLOAT_EQ(s.m[j], (1.0f - hp[0].adam_b1) * 1e-20f) << "j=" << j;
        // t = 1: step = lr / (1 - b1), so p = -lr * g / eps
        EXPECT_NEAR(s.params[j], -(double)hp[0].lr * 1e-20 / hp[0].adam_eps, 1e-6 * hp[0].lr) << "j=" << j;
    }
    volatile float tiny = 1e-30f, scale = 1e-10f; // volatile: computed at run time, on this thread
    const float prod = tiny * scale;
    EXPECT_GT(prod, 0.0f) << "the caller's thread must keep IEEE denormals";
    EXPECT_LT(prod, 1.2e-38f);
}

// With a constant gradient, m_t = (1 - b1^t) g and v_t = (1 - b2^t) g^2 exactly, so every bias-
// corrected step is lr * g / (|g| + eps), whatever t.
TEST(Adam, ConstantGradientStepClosedForm) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    AdamSetup s(2, 1, {3, 2});
    std::vector<qf_run_hp> hp(2, default_hp());
    const std::vector<float> g0 = {0.5f, -0.25f, 1.0f, -1e-3f, 3.0f, -0.75f, 1e-7f, 0.125f};
    for (int g = 0; g < s.G; g++)
        for (int64_t j = 0; j < s.P; j++) {
            s.params[g * s.P + j] = 0.25f * (float)(j % 3) - 0.2f;  // |p| <= 0.3
            s.grads[g * s.P + j] = g0[j] * (g == 0 ? 1.0f : -2.0f);
        }
    for (int it = 0; it < 10; it++) {
        std::vector<float> before = s.params;
        ASSERT_EQ(s.step(b, hp), QF_OK);
        for (int g = 0; g < s.G; g++)
            for (int64_t j = 0; j < s.P; j++) {
                const double gj = s.grads[g * s.P + j];
                const double want = -(double)hp[g].lr * gj / (std::fabs(gj) + (double)hp[g].adam_eps);
                const double got = (double)s.params[g * s.P + j] - before[g * s.P + j];
                // one step: lr * 1e-5 (c2 cancellation, see adam_tol) + two roundings of |p| <= 0.4
                EXPECT_NEAR(got, want, hp[g].lr * 1e-5 + 2 * kU * 0.4)
                    << "g=" << g << " step " << it << " param " << j;
            }
    }
}

TEST(Adam, GlobalNormClippingIsAdamOnTheScaledGradient) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    AdamSetup s(2, 2, {3, 2});  // clipping is per network: 4 networks, each with its own norm
    std::vector<qf_run_hp> hp(2, default_hp());
    hp[0].max_grad_norm = 0.5f;
    hp[1].max_grad_norm = 2.0f;
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> U(-1.0f, 1.0f);
    for (float &p : s.params) p = U(rng);
    std::vector<AdamRef> ref;
    for (int g = 0; g < s.G; g++) ref.emplace_back(&s.params[g * s.P], s.P);
    int clipped = 0, unclipped = 0;
    for (int it = 0; it < 10; it++) {
        // norms ~ 0.1 .. 3 across steps and networks: some above, some below the threshold
        const float mag = 0.05f + 0.4f * (float)((it * 7) % 10) / 3.0f;
        for (int g = 0; g < s.G; g++)
            for (int64_t j = 0; j < s.P; j++) s.grads[g * s.P + j] = U(rng) * mag * (g % 2 ? 1.5f : 1.0f);
        ASSERT_EQ(s.step(b, hp), QF_OK);
        for (int g = 0; g < s.G; g++) {
            const qf_run_hp &h = hp[g / 2];
            const double norm = ref[g].step(&s.grads[g * s.P], h);
            (norm > h.max_grad_norm ? clipped : unclipped)++;
            EXPECT_NEAR(s.gnorm[g], norm, kU * norm);
            for (int64_t j = 0; j < s.P; j++)
                EXPECT_NEAR(s.params[g * s.P + j], ref[g].p[j], adam_tol(it + 1, h.lr, 2.0))
                    << "g=" << g << " step " << it << " param " << j;
        }
    }
    EXPECT_GT(clipped, 5);
    EXPECT_GT(unclipped, 5);
}

// ---- 6. divergence -----------------------------------------------------------------------------
TEST(Adam, NaNGradientFreezesOnlyItsRun) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    AdamSetup s(2, 2, {3, 2});  // runs 0, 1; networks 0, 1 (run 0) and 2, 3 (run 1)
    std::vector<qf_run_hp> hp(2, default_hp());
    std::mt19937 rng(8);
    std::uniform_real_distribution<float> U(-1.0f, 1.0f);
    for (float &p : s.params) p = U(rng);
    for (float &gr : s.grads) gr = U(rng);
    // give run 1 some Adam state first, so "unchanged" is not just "still zero"
    ASSERT_EQ(s.step(b, hp), QF_OK);
    ASSERT_EQ(s.t[0], 1);
    ASSERT_EQ(s.t[1], 1);
    std::vector<AdamRef> ref;
    for (int g = 0; g < 2; g++) {
        ref.emplace_back(&s.params[g * s.P], s.P);
        for (int64_t j = 0; j < s.P; j++) {  // continue the reference from the op's state
            ref[g].m[j] = s.m[g * s.P + j];
            ref[g].v[j] = s.v[g * s.P + j];
        }
        ref[g].t = 1;
    }
    const std::vector<float> p1(s.params.begin() + 2 * s.P, s.params.end());
    const std::vector<float> m1(s.m.begin() + 2 * s.P, s.m.end()), v1(s.v.begin() + 2 * s.P, s.v.end());
    std::vector<float> target = s.params;
    for (float &x : target) x += 1.0f;
    const std::vector<float> target0 = target;

    for (float &gr : s.grads) gr = U(rng);
    s.grads[3 * s.P + 4] = std::numeric_limits<float>::quiet_NaN();  // run 1, head 1
    ASSERT_EQ(s.step(b, hp), QF_OK);
    EXPECT_EQ(s.status[0], QF_RUN_OK);
    EXPECT_EQ(s.status[1], QF_RUN_DIVERGED);
    EXPECT_EQ(s.t[0], 2);
    EXPECT_EQ(s.t[1], 1);
    EXPECT_TRUE(std::isnan(s.gnorm[3]));
    EXPECT_TRUE(same_bits(p1.data(), &s.params[2 * s.P], p1.size())) << "run 1 parameters changed";
    EXPECT_TRUE(same_bits(m1.data(), &s.m[2 * s.P], m1.size())) << "run 1 first moments changed";
    EXPECT_TRUE(same_bits(v1.data(), &s.v[2 * s.P], v1.size())) << "run 1 second moments changed";
    for (int g = 0; g < 2; g++) {
        ref[g].step(&s.grads[g * s.P], hp[0]);
        for (int64_t j = 0; j < s.P; j++)
            EXPECT_NEAR(s.params[g * s.P + j], ref[g].p[j], adam_tol(2, hp[0].lr, 2.0)) << "run 0 net " << g;
    }

    // Later calls with finite gradients leave run 1 frozen and keep updating run 0.
    for (int it = 0; it < 3; it++) {
        for (float &gr : s.grads) gr = U(rng);
        ASSERT_EQ(s.step(b, hp), QF_OK);
        EXPECT_EQ(s.status[1], QF_RUN_DIVERGED);
        EXPECT_EQ(s.t[1], 1);
        EXPECT_EQ(s.t[0], 3 + it);
        EXPECT_TRUE(same_bits(p1.data(), &s.params[2 * s.P], p1.size()));
        EXPECT_TRUE(same_bits(m1.data(), &s.m[2 * s.P], m1.size()));
    }
    // Target update skips the diverged run, soft or copy.
    ASSERT_EQ(b->target_update(b, &s.n, hp.data(), s.params.data(), target.data(), s.status.data(), 1), QF_OK);
    EXPECT_TRUE(same_bits(s.params.data(), target.data(), 2 * s.P)) << "run 0 target is not a copy";
    EXPECT_TRUE(same_bits(&target0[2 * s.P], &target[2 * s.P], 2 * s.P)) << "run 1 target changed";
    hp[0].tau = hp[1].tau = 0.25f;
    std::vector<float> before = target;
    for (float &x : target) x = -1.0f;
    before = target;
    ASSERT_EQ(b->target_update(b, &s.n, hp.data(), s.params.data(), target.data(), s.status.data(), 0), QF_OK);
    for (int64_t j = 0; j < 2 * s.P; j++)  // two float roundings of O(1) values
        EXPECT_NEAR(target[j], 0.25 * s.params[j] + 0.75 * before[j], 4 * kU * 2);
    EXPECT_TRUE(same_bits(&before[2 * s.P], &target[2 * s.P], 2 * s.P));
}

// A parameter that overflows in the step marks the run after that step; the run stays frozen.
TEST(Adam, ParameterOverflowMarksRunAfterTheStep) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    AdamSetup s(2, 2, {3, 2});  // the overflow is in head 1 of run 1 (network 3)
    std::vector<qf_run_hp> hp(2, default_hp());
    hp[1].lr = 1e38f;
    for (float &p : s.params) p = 0.5f;
    s.params[3 * s.P + 2] = 3e38f;
    for (float &gr : s.grads) gr = -1.0f;  // step +lr: 3e38 + 1e38 overflows to +inf
    ASSERT_EQ(s.step(b, hp), QF_OK);
    EXPECT_EQ(s.status[0], QF_RUN_OK);
    EXPECT_EQ(s.status[1], QF_RUN_DIVERGED);
    EXPECT_EQ(s.t[1], 1);  // the step was taken, then the run was marked
    EXPECT_TRUE(std::isinf(s.params[3 * s.P + 2]));
    const std::vector<float> frozen(s.params.begin() + 2 * s.P, s.params.end());
    ASSERT_EQ(s.step(b, hp), QF_OK);
    EXPECT_TRUE(same_bits(frozen.data(), &s.params[2 * s.P], frozen.size()));
    EXPECT_EQ(s.t[0], 2);
    EXPECT_EQ(s.t[1], 1);
}

// ---- 7. TD targets and gradients -------------------------------------------------------------

// Reference of one transition in double: target, then d loss/d q and loss.
struct TdRef {
    double y, dq, loss;
};
TdRef td_ref(const qf_run_hp &h, const float *q, const float *qt, const float *qo, int a, double r,
             bool term, int B) {
    const int A = 3;
    double v;
    std::vector<float> row(qt, qt + A);
    if (h.alpha > 0.0f) {
        v = logsumexp_d(row, h.alpha);
    } else if (h.double_q && qo) {
        int best = 0;
        for (int i = 1; i < A; i++)
            if (qo[i] > qo[best]) best = i;
        v = qt[best];
    } else {
        v = *std::max_element(row.begin(), row.end());
    }
    TdRef o;
    o.y = term ? r : r + (double)h.gamma * v;
    const double d = q[a] - o.y, k = h.huber;
    if (h.loss == QF_LOSS_SQUARED) {
        o.dq = d / B;
        o.loss = 0.5 * d * d;
    } else {
        o.dq = std::max(-k, std::min(k, d)) / B;
        o.loss = std::fabs(d) <= k ? 0.5 * d * d : k * (std::fabs(d) - 0.5 * k);
    }
    return o;
}

TEST(Td, TargetsGradientsAndMeans) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    TdCase c(2, 2, 4, 3);
    std::vector<qf_run_hp> hp(2, default_hp());
    hp[0].gamma = 0.9f;  // run 0: hard max, Huber 1
    hp[0].alpha = 0.0f;
    hp[0].huber = 1.0f;
    hp[1].gamma = 0.5f;  // run 1: soft, squared loss
    hp[1].alpha = 0.5f;
    hp[1].loss = QF_LOSS_SQUARED;
    const int A = c.A, B = c.B, K = c.K;
    // Run 0 transitions (head 0; head 1 gets shifted Q values):
    //  j=0: Qt(s') = (1, 3, 2), r = 0.5, a = 0, Q(s,a) = 1.0 -> y = 0.5 + 0.9*3 = 3.2,
    //       delta = -2.2 -> Huber-clipped dq = -1/B, loss = 1*(2.2 - 0.5) = 1.7
    //  j=1: terminal, r = 2, Q(s,a=2) = 2.25 -> y = 2, delta = 0.25, dq = 0.25/B, loss = 0.03125
    //  j=2: Qt = (-1, -4, -2), r = 1, a = 1, Q = 0.0 -> y = 1 - 0.9 = 0.1, delta = -0.1
    //  j=3: Qt = (0, 0, 5), r = -1, a = 2, Q = 10 -> y = 3.5, delta = 6.5 -> dq = +1/B
    const float qt0[4][3] = {{1, 3, 2}, {7, 8, 9}, {-1, -4, -2}, {0, 0, 5}};
    const float qa0[4] = {1.0f, 2.25f, 0.0f, 10.0f};
    const int act0[4] = {0, 2, 1, 2};
    const float r0[4] = {0.5f, 2.0f, 1.0f, -1.0f};
    const uint8_t term0[4] = {0, 1, 0, 0};
    std::mt19937 rng(4);
    std::uniform_real_distribution<float> U(-3.0f, 3.0f);
    for (int j = 0; j < B; j++) {
        c.action[j] = act0[j];
        c.reward[j] = r0[j];
        c.terminal[j] = term0[j];
        c.action[B + j] = (j + 1) % A;  // run 1: random values, terminal at j = 2
        c.reward[B + j] = U(rng);
        c.terminal[B + j] = j == 2;
        for (int k = 0; k < K; k++)
            for (int a = 0; a < A; a++) {
                const size_t row0 = ((size_t)(0 * K + k) * B + j) * A, row1 = ((size_t)(1 * K + k) * B + j) * A;
                c.qt[row0 + a] = qt0[j][a] + (float)k;
                c.q[row0 + a] = (a == act0[j] ? qa0[j] : 50.0f) + (float)k;  // other actions don't matter
                c.qt[row1 + a] = U(rng);
                c.q[row1 + a] = U(rng);
            }
    }
    ASSERT_EQ(c.run(b, hp, false), QF_OK);
    // hand-computed values of run 0 head 0 (float roundings of O(1) numbers: 1e-6)
    const double hand_dq[4] = {-1.0 / B, 0.25 / B, -0.1 / B, 1.0 / B};
    const double hand_loss[4] = {1.7, 0.03125, 0.005, 6.0};
    double lmean = 0.0;
    for (int j = 0; j < B; j++) {
        for (int a = 0; a < A; a++)
            EXPECT_NEAR(c.dq[(size_t)j * A + a], a == act0[j] ? hand_dq[j] : 0.0, 1e-6) << "j=" << j;
        lmean += hand_loss[j] / B;
    }
    EXPECT_NEAR(c.loss[0], lmean, 1e-5);
    EXPECT_NEAR(c.qmean[0], (1.0 + 2.25 + 0.0 + 10.0) / B, 1e-6);
    // every network against the double reference
    for (int g = 0; g < c.R * K; g++) {
        const int r = g / K;
        double ls = 0.0, qs = 0.0;
        for (int j = 0; j < B; j++) {
            const size_t row = ((size_t)g * B + j) * A;
            const int a = c.action[r * B + j];
            const TdRef t = td_ref(hp[r], &c.q[row], &c.qt[row], nullptr, a, c.reward[r * B + j],
                                   c.terminal[r * B + j], B);
            // dq = (q - y)/B: roundings of y (r + gamma V, |terms| <= ~10) dominate: 1e-6 absolute
            for (int i = 0; i < A; i++) {
                if (i == a) {
                    EXPECT_NEAR(c.dq[row + i], t.dq, 1e-6) << "g=" << g << " j=" << j;
                } else {
                    EXPECT_EQ(c.dq[row + i], 0.0f) << "g=" << g << " j=" << j;
                }
            }
            ls += t.loss;
            qs += c.q[row + a];
        }
        EXPECT_NEAR(c.loss[g], ls / B, 1e-5 * std::max(1.0, ls / B)) << "g=" << g;
        EXPECT_NEAR(c.qmean[g], qs / B, 1e-6 * std::max(1.0, std::fabs(qs / B))) << "g=" << g;
    }
}

TEST(Td, DoubleQUsesTargetAtOnlineArgmax) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    TdCase c(2, 2, 4, 3);
    std::vector<qf_run_hp> hp(2, default_hp());
    hp[0].double_q = 1;  // alpha = 0: the online net picks a'
    hp[0].gamma = 0.5f;
    hp[0].loss = QF_LOSS_SQUARED;
    hp[1] = hp[0];
    hp[1].double_q = 0;  // run 1: plain max, qo ignored
    const int A = c.A, B = c.B;
    for (int g = 0; g < 4; g++)
        for (int j = 0; j < B; j++) {
            const size_t row = ((size_t)g * B + j) * A;
            // Qt(s') = (4, 2, 0) (max at 0); Qo(s') = (0, 1, 1) for j < 3 (a tie: the first index,
            // a' = 1) and (0, 0, 5) for j = 3 (a' = 2).
            c.qt[row + 0] = 4.0f;
            c.qt[row + 1] = 2.0f;
            c.qt[row + 2] = 0.0f;
            c.qo[row + 0] = 0.0f;
            c.qo[row + 1] = j == 3 ? 0.0f : 1.0f;
            c.qo[row + 2] = j == 3 ? 5.0f : 1.0f;
            c.q[row + 0] = 0.0f;
            c.q[row + 1] = 0.0f;
            c.q[row + 2] = 0.0f;
        }
    for (int i = 0; i < 2 * B; i++) {
        c.action[i] = 0;
        c.reward[i] = 1.0f;
    }
    ASSERT_EQ(c.run(b, hp, true), QF_OK);
    for (int g = 0; g < 4; g++)
        for (int j = 0; j < B; j++) {
            // run 0: y = 1 + 0.5 * Qt(a') with a' = 1 (j < 3) or 2 (j = 3); run 1: y = 1 + 0.5*4 = 3.
            const double y = g < 2 ? (j == 3 ? 1.0 : 2.0) : 3.0;
            EXPECT_FLOAT_EQ(c.dq[((size_t)g * B + j) * A], (float)((0.0 - y) / B)) << "g=" << g << " j=" << j;
        }
    // with alpha > 0 double Q is not used: the soft value of Qt
    hp[0].alpha = 1.0f;
    ASSERT_EQ(c.run(b, hp, true), QF_OK);
    const std::vector<float> qt_row = {4.0f, 2.0f, 0.0f};
    const double y = 1.0 + 0.5 * logsumexp_d(qt_row, 1.0);
    EXPECT_NEAR(c.dq[0], -y / B, 1e-6);
}

// ---- 8. acting -----------------------------------------------------------------------------------
// Fraction of actions equal to `a` in run r.
double frac(const std::vector<int32_t> &act, int r, int E, int a) {
    int64_t c = 0;
    for (int e = 0; e < E; e++) c += act[(size_t)r * E + e] == a;
    return (double)c / E;
}

TEST(Act, EpsilonGreedyFrequenciesAndSchedule) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 2, K = 2, E = 20000, A = 2;
    const qf_net n = make_net(R, K, 1, {4, A});
    const std::vector<uint8_t> no_flags((size_t)R * E, 0);
    std::vector<int32_t> heads((size_t)R * E, 0);
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].eps_start = hp[0].eps_end = 0.3f;  // constant epsilon
    hp[1].eps_start = 1.0f;                  // linear 1 -> 0 over 100 steps
    hp[1].eps_end = 0.0f;
    hp[1].eps_steps = 100;
    // schedule: start, exact midpoint, end and after
    EXPECT_EQ(qf_epsilon(&hp[1], 0), 1.0f);
    EXPECT_EQ(qf_epsilon(&hp[1], 50), 0.5f);
    EXPECT_EQ(qf_epsilon(&hp[1], 25), 0.75f);
    EXPECT_EQ(qf_epsilon(&hp[1], 100), 0.0f);
    EXPECT_EQ(qf_epsilon(&hp[1], 1000000), 0.0f);
    EXPECT_EQ(qf_epsilon(&hp[0], 7), 0.3f);
    qf_run_hp nodecay = hp[1];
    nodecay.eps_steps = 0;
    EXPECT_EQ(qf_epsilon(&nodecay, 0), 0.0f);

    // head 0 favors action 1; head 1 favors action 0 and must be ignored
    std::vector<float> q((size_t)R * K * E * A);
    for (int g = 0; g < R * K; g++)
        for (int e = 0; e < E; e++) {
            q[((size_t)g * E + e) * A + 0] = g % K == 0 ? 0.0f : 1.0f;
            q[((size_t)g * E + e) * A + 1] = g % K == 0 ? 1.0f : 0.0f;
        }
    const std::vector<uint32_t> keys = {17, 0, 17, 1};
    std::vector<int32_t> act((size_t)R * E, -1), again((size_t)R * E, -1);
    const uint32_t ts[3] = {0, 50, 100};
    const double p1_run1[3] = {0.5, 0.75, 1.0};  // 1 - eps + eps/2
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(b->act(b, &n, hp.data(), E, q.data(), keys.data(), ts[i], no_flags.data(), heads.data(), act.data()), QF_OK);
        for (int32_t a : act) ASSERT_TRUE(a == 0 || a == 1);
        // run 0: P(1) = 1 - 0.3 + 0.3/2 = 0.85, binomial SE = sqrt(p(1-p)/E)
        const double p0 = 0.7 + 0.3 / 2;
        EXPECT_NEAR(frac(act, 0, E, 1), p0, 5 * std::sqrt(p0 * (1 - p0) / E)) << "t=" << ts[i];
        const double p1 = p1_run1[i];
        if (p1 == 1.0) {
            EXPECT_EQ(frac(act, 1, E, 1), 1.0);  // eps = 0: always greedy
        } else {
            EXPECT_NEAR(frac(act, 1, E, 1), p1, 5 * std::sqrt(p1 * (1 - p1) / E)) << "t=" << ts[i];
        }
        // same t: same actions; next t: different draws
        ASSERT_EQ(b->act(b, &n, hp.data(), E, q.data(), keys.data(), ts[i], no_flags.data(), heads.data(), again.data()), QF_OK);
        EXPECT_EQ(act, again);
    }
    ASSERT_EQ(b->act(b, &n, hp.data(), E, q.data(), keys.data(), 1, no_flags.data(), heads.data(), act.data()), QF_OK);
    ASSERT_EQ(b->act(b, &n, hp.data(), E, q.data(), keys.data(), 2, no_flags.data(), heads.data(), again.data()), QF_OK);
    EXPECT_NE(act, again);
}

TEST(Act, BoltzmannFrequenciesAreSoftmax) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 1, K = 2, E = 20000, A = 3;
    const qf_net n = make_net(R, K, 1, {4, A});
    const std::vector<uint8_t> no_flags((size_t)R * E, 0);
    std::vector<int32_t> heads((size_t)R * E, 0);
    std::vector<qf_run_hp> hp(R, default_hp());
    hp[0].explore = QF_EXPLORE_BOLTZMANN;
    hp[0].alpha = 0.5f;
    std::vector<float> q((size_t)R * K * E * A);
    for (int e = 0; e < E; e++)
        for (int a = 0; a < A; a++) {
            q[(size_t)e * A + a] = 0.5f * (float)a;                 // head 0: (0, 0.5, 1)
            q[((size_t)E + e) * A + a] = a == 0 ? 10.0f : 0.0f;     // head 1: ignored
        }
    const std::vector<uint32_t> keys = {3, 9};
    std::vector<int32_t> act(E);
    ASSERT_EQ(b->act(b, &n, hp.data(), E, q.data(), keys.data(), 12345u, no_flags.data(), heads.data(), act.data()), QF_OK);
    const double z = 1.0 + std::exp(1.0) + std::exp(2.0);  // softmax(Q / alpha) = softmax(0, 1, 2)
    for (int a = 0; a < A; a++) {
        const double p = std::exp((double)a) / z;
        EXPECT_NEAR(frac(act, 0, E, a), p, 5 * std::sqrt(p * (1 - p) / E)) << "action " << a;
    }
}

// ---- 9. replay ----------------------------------------------------------------------------------
struct Ring {
    int R, C, D, embed;
    std::vector<float> obs, next_obs, reward;
    std::vector<int32_t> idx, next_idx, action;
    std::vector<uint8_t> terminal;
    std::vector<qf_mask> mask;
    std::vector<float> intr;
    qf_replay rp;
    Ring(int R_, int C_, int D_, int embed_) : R(R_), C(C_), D(D_), embed(embed_) {
        obs.assign((size_t)R * C * D, 0.0f);
        next_obs = obs;
        reward.assign((size_t)R * C, 0.0f);
        idx.assign((size_t)R * C, 0);
        next_idx = action = idx;
        terminal.assign((size_t)R * C, 0);
        mask.assign((size_t)R * C, 0);
        intr.assign((size_t)R * C, 0.0f);
        std::memset(&rp, 0, sizeof rp);
        rp.R = R;
        rp.C = C;
        rp.D = D;
        rp.embed = embed;
        rp.obs = obs.data();
        rp.next_obs = next_obs.data();
        rp.idx = idx.data();
        rp.next_idx = next_idx.data();
        rp.action = action.data();
        rp.reward = reward.data();
        rp.terminal = terminal.data();
        rp.mask = mask.data();
        rp.intr = intr.data();
    }
};

// Transition number n (= step * E + e) of run r is encoded in every field.
float code(int r, int n) { return (float)(1000 * r + n); }
uint8_t flags_of(int n) {
    const uint8_t f[4] = {0, QF_TERMINAL, QF_TRUNCATED, QF_TERMINAL | QF_TRUNCATED};
    return f[n % 4];
}
bool terminal_of(int n) { return n % 4 == 1 || n % 4 == 3; }  // QF_TERMINAL set; truncation alone is not

void store_step(qf_backend *b, Ring &ring, int E, int step) {
    const int R = ring.R, D = ring.D;
    std::vector<float> obs((size_t)R * E * D), nobs((size_t)R * E * D), rew((size_t)R * E);
    std::vector<int32_t> oi((size_t)R * E), ni((size_t)R * E), act((size_t)R * E);
    std::vector<uint8_t> fl((size_t)R * E);
    for (int r = 0; r < R; r++)
        for (int e = 0; e < E; e++) {
            const int n = step * E + e;
            const size_t i = (size_t)r * E + e;
            for (int d = 0; d < D; d++) {
                obs[i * D + d] = code(r, n) + 0.25f * (float)d;
                nobs[i * D + d] = -code(r, n) - 0.25f * (float)d;
            }
            oi[i] = 1000 * r + n;
            ni[i] = 1000 * r + n + 500;
            act[i] = n % 5;
            rew[i] = code(r, n);
            fl[i] = flags_of(n);
        }
    std::vector<qf_run_hp> hp((size_t)R, default_hp());
    std::vector<uint32_t> keys((size_t)2 * R, 3u);
    ASSERT_EQ(b->replay_store(b, &ring.rp, hp.data(), keys.data(), E, (int64_t)step * E, (uint32_t)step, obs.data(),
                              oi.data(), act.data(), rew.data(), fl.data(), nobs.data(), ni.data(), nullptr),
              QF_OK);
}

// Slot-level check of a ring (or a sample): record i of run r holds transition n.
void expect_record(const Ring &ring, int r, int i, int n, int C) {
    const size_t s = (size_t)r * C + i;
    EXPECT_EQ(ring.reward[s], code(r, n)) << "run " << r << " record " << i;
    EXPECT_EQ(ring.action[s], n % 5);
    EXPECT_EQ(ring.terminal[s], terminal_of(n) ? 1 : 0) << "n=" << n;
    if (ring.embed) {
        EXPECT_EQ(ring.idx[s], 1000 * r + n);
        EXPECT_EQ(ring.next_idx[s], 1000 * r + n + 500);
    } else {
        for (int d = 0; d < ring.D; d++) {
            EXPECT_EQ(ring.obs[s * ring.D + d], code(r, n) + 0.25f * (float)d);
            EXPECT_EQ(ring.next_obs[s * ring.D + d], -code(r, n) - 0.25f * (float)d);
        }
    }
}

class Replay : public ::testing::TestWithParam<int> {};

TEST_P(Replay, StoreWrapsAroundTheRing) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 2, C = 7, E = 3, D = 2;
    Ring ring(R, C, D, GetParam());
    // steps write transitions n = 0..2, 3..5, 6..8, 9..11 to slots n % 7
    for (int step = 0; step < 3; step++) store_step(b, ring, E, step);
    const int after3[C] = {7, 8, 2, 3, 4, 5, 6};  // slots 0, 1 overwritten by the third step
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j++) expect_record(ring, r, j, after3[j], C);
    store_step(b, ring, E, 3);
    const int after4[C] = {7, 8, 9, 10, 11, 5, 6};
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j++) expect_record(ring, r, j, after4[j], C);
}

TEST_P(Replay, SampleIsUniformOverFilledSlotsAndDeterministic) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const int R = 2, C = 7, E = 3, D = 2, B = 4096;
    Ring ring(R, C, D, GetParam());
    for (int step = 0; step < 4; step++) store_step(b, ring, E, step);
    const int slot_n[C] = {7, 8, 9, 10, 11, 5, 6};
    const std::vector<uint32_t> keys = {5, 0, 5, 1};
    Ring out(R, B, D, GetParam());
    auto slot_of = [&](int r, int i) {
        const int n = (int)out.reward[(size_t)r * B + i] - 1000 * r;
        for (int j = 0; j < C; j++)
            if (slot_n[j] == n) return j;
        return -1;
    };
    for (int size : {1, 5, C}) {
        // 32 updates x 4096 = 131072 draws per run (few calls: each OpenMP region is slow on a
        // loaded machine)
        const int U = 32;
        std::vector<std::vector<int64_t>> count(R, std::vector<int64_t>(C, 0));
        int64_t foreign = 0, unfilled = 0;
        for (int u = 0; u < U; u++) {
            ASSERT_EQ(b->replay_sample(b, &ring.rp, B, size, (uint32_t)u, keys.data(), &out.rp), QF_OK);
            for (int r = 0; r < R; r++)
                for (int i = 0; i < B; i++) {
                    const int j = slot_of(r, i);
                    if (j < 0) {
                        foreign++;
                        continue;
                    }
                    unfilled += j >= size;
                    count[r][j]++;
                    if (u < 2 && i < 64) expect_record(out, r, i, slot_n[j], B);  // every field copied
                }
        }
        EXPECT_EQ(foreign, 0) << "samples not from their run's ring";
        EXPECT_EQ(unfilled, 0) << "samples of slots >= size " << size;
        const double N = (double)U * B, p = 1.0 / size, se = std::sqrt(N * p * (1 - p));
        for (int r = 0; r < R; r++)
            for (int j = 0; j < size; j++)
                EXPECT_NEAR((double)count[r][j], N * p, 5 * se + 1e-9) << "size " << size << " slot " << j;
    }
    // same (keys, update): same draws; another update or another run key: different draws
    auto draws = [&](uint32_t u, int r) {
        EXPECT_EQ(b->replay_sample(b, &ring.rp, B, C, u, keys.data(), &out.rp), QF_OK);
        std::vector<int> s(B);
        for (int i = 0; i < B; i++) s[i] = slot_of(r, i);
        return s;
    };
    EXPECT_EQ(draws(77, 0), draws(77, 0));
    EXPECT_NE(draws(77, 0), draws(78, 0));
    EXPECT_NE(draws(77, 0), draws(77, 1));
}

INSTANTIATE_TEST_SUITE_P(Learn, Replay, ::testing::Values(0, 1),
                         [](const ::testing::TestParamInfo<int> &i) { return std::string(i.param ? "Embed" : "Dense"); });

// ---- 10. initialization -----------------------------------------------------------------------
TEST(NetInit, BoundsMomentsAndIndependenceOfTheFleet) {
    CpuBackend cpu;
    qf_backend *b = cpu.b;
    ASSERT_NE(b, nullptr);
    const std::vector<int> w = {256, 512, 7, 4};
    const int K = 2;
    const qf_net n3 = make_net(3, K, 0, w), n1 = make_net(1, K, 0, w);
    const int64_t P = n3.P;
    const std::vector<uint32_t> keys3 = {11, 0, 11, 1, 12, 2}, keys1 = {12, 2};
    std::vector<float> p3(3 * K * P), p3b(3 * K * P), p1(K * P);
    ASSERT_EQ(b->net_init(b, &n3, keys3.data(), QF_STREAM_INIT, p3.data()), QF_OK);
    ASSERT_EQ(b->net_init(b, &n3, keys3.data(), QF_STREAM_INIT, p3b.data()), QF_OK);
    ASSERT_EQ(b->net_init(b, &n1, keys1.data(), QF_STREAM_INIT, p1.data()), QF_OK);
    EXPECT_TRUE(same_bits(p3.data(), p3b.data(), p3.size())) << "same keys, different parameters";
    EXPECT_TRUE(same_bits(&p3[2 * K * P], p1.data(), p1.size())) << "run 2 of 3 differs from the same run alone";
    EXPECT_FALSE(same_bits(&p3[0], &p3[K * P], K * P)) << "runs 0 and 1 (other keys) coincide";
    EXPECT_FALSE(same_bits(&p3[0], &p3[P], P)) << "heads 0 and 1 coincide";

    for (int64_t g = 0; g < 3 * K; g++)
        for (int l = 0; l < n3.L; l++) {
            // U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bound in float may round up by half an ulp
            const double bound = 1.0 / std::sqrt((double)w[l]) * (1.0 + kU);
            const int64_t lo = n3.off_w[l], hi = n3.off_b[l] + w[l + 1];
            for (int64_t j = lo; j < hi; j++)
                ASSERT_LE(std::fabs((double)p3[g * P + j]), bound) << "net " << g << " layer " << l << " param " << j;
        }
    // Moments of the 131072 weights of layer 0 of each network: mean 0 (SE = bound/sqrt(3 N)) and
    // mean square bound^2/3 (variance of U^2 is 4 bound^4 / 45, SE = sqrt(4/45) bound^2 / sqrt(N)).
    const double bnd = 1.0 / 16.0;
    const int64_t N = (int64_t)w[0] * w[1];
    for (int64_t g = 0; g < 3 * K; g++) {
        double s = 0.0, s2 = 0.0, mx = 0.0;
        for (int64_t j = 0; j < N; j++) {
            const double v = p3[g * P + j];
            s += v;
            s2 += v * v;
            mx = std::max(mx, std::fabs(v));
        }
        EXPECT_NEAR(s / N, 0.0, 5 * bnd / std::sqrt(3.0 * N)) << "net " << g;
        EXPECT_NEAR(s2 / N, bnd * bnd / 3, 5 * std::sqrt(4.0 / 45.0) * bnd * bnd / std::sqrt((double)N)) << "net " << g;
        EXPECT_GT(mx, 0.999 * bnd);  // the whole range is used (P(max < 0.999 b) = 0.999^N ~ e^-131)
    }
}

// ---- isolation: a run's forward, backward and Adam step do not depend on its fleet or threads ----
TEST(NetIsolation, RunAloneEqualsRunInFleetAndThreadCountDoesNotMatter) {
    const std::vector<int> w = {6, 16, 8, 3};
    const int K = 2, M = 32;
    const qf_net n3 = make_net(3, K, 0, w), n1 = make_net(1, K, 0, w);
    const int64_t P = n3.P, A = 3;
    const std::vector<uint32_t> keys3 = {1, 0, 1, 1, 1, 2}, keys1 = {1, 1};
    std::mt19937 rng(2);
    std::normal_distribution<float> N01(0.0f, 1.0f);
    std::vector<float> x3((size_t)3 * M * w[0]), dq3((size_t)3 * K * M * A);
    for (float &v : x3) v = N01(rng);
    for (float &v : dq3) v = N01(rng);
    struct Out {
        std::vector<float> q, grads;
    };
    auto pass = [&](const qf_net &n, const std::vector<uint32_t> &keys, const float *x, const float *dq) {
        CpuBackend cpu;
        qf_backend *b = cpu.b;
        const int G = n.R * K;
        std::vector<float> params(G * P), acts((size_t)G * M * n.H), work((size_t)qf_net_work_floats(&n, M));
        Out o;
        o.q.resize((size_t)G * M * A);
        o.grads.resize(G * P);
        EXPECT_EQ(b->net_init(b, &n, keys.data(), QF_STREAM_INIT, params.data()), QF_OK);
        EXPECT_EQ(b->net_forward(b, &n, params.data(), M, x, nullptr, acts.data(), o.q.data()), QF_OK);
        EXPECT_EQ(b->net_backward(b, &n, params.data(), M, x, nullptr, acts.data(), dq, o.grads.data(), work.data()),
                  QF_OK);
        return o;
    };
    qf_cpu_set_threads(1);
    const Out one = pass(n3, keys3, x3.data(), dq3.data());
    qf_cpu_set_threads(2);
    const Out two = pass(n3, keys3, x3.data(), dq3.data());
    const Out alone = pass(n1, keys1, &x3[(size_t)1 * M * w[0]], &dq3[(size_t)1 * K * M * A]);
    qf_cpu_set_threads(0);
    EXPECT_TRUE(same_bits(one.q.data(), two.q.data(), one.q.size()));
    EXPECT_TRUE(same_bits(one.grads.data(), two.grads.data(), one.grads.size()));
    EXPECT_TRUE(same_bits(&one.q[(size_t)K * M * A], alone.q.data(), alone.q.size()));
    EXPECT_TRUE(same_bits(&one.grads[K * P], alone.grads.data(), alone.grads.size()));
}

}  // namespace
