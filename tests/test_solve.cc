// test_solve.cc — the exact solver (soft / hard value iteration, kernels/solve_ops.h) and its
// tabular model (envs/tabular.h) against independent truths:
// - the model's probabilities against an exhaustive count over all 2^24 values of qf_u01, and its
//   transitions against one real step of the environment, state by state;
// - closed forms derived by hand (below, in comments): bandit values hard and soft, a 2-state and a
//   3-state chain, DeepSea's optimal value deterministic (0.99) and stochastic, plus a backward-
//   induction DP over DeepSea's (row, column) written here from the environment's description;
// - the soft-to-hard bound 0 <= V_soft - V_hard <= alpha * log(A) / (1 - gamma);
// - Monte Carlo: the solver's greedy policy rolled out in the real CPU env batch returns V*(s0)
//   within 5 standard errors (stochastic DeepSea), which ties the model to the dynamics;
// - isolation (a run alone = the same run in a fleet; thread count), input checks, CPU = CUDA
//   (skipped without a GPU) and the `qfleet solve` command line.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "batch_util.h"
#include "envs/tabular.h"
#include "host/solve.h"
#include "kernels/backend.h"
#include "test_util.h"

namespace {

// ---- helpers ---------------------------------------------------------------------------------

struct Problem {
    int kind = QF_ENV_BANDIT;
    std::vector<qf_env_params> params;
    std::vector<uint32_t> keys;
    std::vector<double> gamma, alpha;
    int32_t n_states = 0, n_actions = 0, max_iters = 100000;
    double tol = 1e-12;
    int R() const { return (int)params.size(); }
};

// R runs of one kind with the same parameters, keys (seed, r).
Problem make(int kind, const qf_env_params &p, double gamma, double alpha, int R = 1,
             uint32_t seed = 7) {
    Problem pb;
    pb.kind = kind;
    for (int r = 0; r < R; r++) {
        pb.params.push_back(p);
        pb.keys.push_back(seed);
        pb.keys.push_back((uint32_t)r);
        pb.gamma.push_back(gamma);
        pb.alpha.push_back(alpha);
    }
    pb.n_states = qf_env_n_states(kind, &p);
    pb.n_actions = qf_env_n_actions(kind, &p);
    return pb;
}

// Run r of pb as a problem of its own.
Problem single(const Problem &pb, int r) {
    Problem one = pb;
    one.params = {pb.params[r]};
    one.keys = {pb.keys[2 * r], pb.keys[2 * r + 1]};
    one.gamma = {pb.gamma[r]};
    one.alpha = {pb.alpha[r]};
    return one;
}

struct Solution {
    int rc = QF_ERR;
    std::string err;
    std::vector<double> q, v;
    int32_t iters = -1, S = 0, A = 0;
    double V(int r, int s) const { return v[(size_t)r * S + s]; }
    double Q(int r, int s, int a) const { return q[((size_t)r * S + s) * A + a]; }
    int greedy(int r, int s) const {  // argmax, lowest action on ties
        int best = 0;
        for (int a = 1; a < A; a++)
            if (Q(r, s, a) > Q(r, s, best)) best = a;
        return best;
    }
};

// Solve pb on backend b through the backend's own memory, as the host does.
Solution solve_on(qf_backend *b, const Problem &pb) {
    Solution out;
    const size_t R = pb.params.size(), S = (size_t)pb.n_states, A = (size_t)pb.n_actions;
    out.S = pb.n_states;
    out.A = pb.n_actions;
    void *dp = b->alloc(b, sizeof(qf_env_params) * R), *dk = b->alloc(b, sizeof(uint32_t) * 2 * R);
    void *dg = b->alloc(b, sizeof(double) * R), *da = b->alloc(b, sizeof(double) * R);
    void *dq = b->alloc(b, sizeof(double) * R * S * A + 8), *dv = b->alloc(b, sizeof(double) * R * S + 8);
    if (dp && dk && dg && da && dq && dv && b->upload(b, dp, pb.params.data(), sizeof(qf_env_params) * R) == QF_OK &&
        b->upload(b, dk, pb.keys.data(), sizeof(uint32_t) * 2 * R) == QF_OK &&
        b->upload(b, dg, pb.gamma.data(), sizeof(double) * R) == QF_OK &&
        b->upload(b, da, pb.alpha.data(), sizeof(double) * R) == QF_OK) {
        qf_solve_problem prob;
        std::memset(&prob, 0, sizeof prob);
        prob.kind = pb.kind;
        prob.R = (int32_t)R;
        prob.params = (const qf_env_params *)dp;
        prob.keys = (const uint32_t *)dk;
        prob.gamma = (const double *)dg;
        prob.alpha = (const double *)da;
        prob.n_states = pb.n_states;
        prob.n_actions = pb.n_actions;
        prob.max_iters = pb.max_iters;
        prob.tol = pb.tol;
        out.rc = b->solve(b, &prob, (double *)dq, (double *)dv, &out.iters);
        if (out.rc == QF_OK) {
            out.q.resize(R * S * A);
            out.v.resize(R * S);
            if (b->download(b, out.q.data(), dq, sizeof(double) * out.q.size()) != QF_OK ||
                b->download(b, out.v.data(), dv, sizeof(double) * out.v.size()) != QF_OK)
                out.rc = QF_ERR;
        }
    }
    out.err = b->err;
    for (void *p : {dp, dk, dg, da, dq, dv})
        if (p) b->release(b, p);
    return out;
}


Solution solve_cpu(const Problem &pb) {
    CpuBackend cpu;
    Solution s = solve_on(cpu.b, pb);
    EXPECT_EQ(s.rc, QF_OK) << s.err;
    return s;
}

qf_env_params bandit(std::vector<float> probs) {
    qf_env_params p = default_params(QF_ENV_BANDIT);
    p.bandit.n_probs = (int32_t)probs.size();
    p.bandit.arms = (int32_t)probs.size();
    for (size_t a = 0; a < probs.size(); a++) p.bandit.probs[a] = probs[a];
    return p;
}

qf_env_params chain(int n, float slip, float r_small = 0.001f, float r_large = 1.0f) {
    qf_env_params p = default_params(QF_ENV_CHAIN);
    p.chain.size = n;
    p.chain.slip = slip;
    p.chain.r_small = r_small;
    p.chain.r_large = r_large;
    return p;
}

qf_env_params deep_sea(int n, int stochastic, int map_per_run = 0) {
    qf_env_params p = default_params(QF_ENV_DEEP_SEA);
    p.deep_sea.size = n;
    p.deep_sea.stochastic = stochastic;
    p.deep_sea.map_per_run = map_per_run;
    return p;
}

// ---- the tabular model -----------------------------------------------------------------------

// qf_u01 takes the values k * 2^-24, k = 0 .. 2^24 - 1, equally likely: count them all.
TEST(SolveTabular, DrawProbabilitiesMatchAnExhaustiveCount) {
    const std::vector<float> xs = {0.0f, 1.0f / 3.0f, 1.0f / 7.0f, 1.0f / 8.0f, 0.1f, 0.3f, 0.9f, 1.0f};
    std::vector<long> below(xs.size(), 0), at_most(xs.size(), 0);
    for (uint32_t k = 0; k < (1u << 24); k++) {
        const float u = qf_u01(k << 8);
        for (size_t i = 0; i < xs.size(); i++) {
            below[i] += u < xs[i];
            at_most[i] += u <= xs[i];
        }
    }
    for (size_t i = 0; i < xs.size(); i++) {
        EXPECT_EQ(qf_u01_p_below(xs[i]), (double)below[i] / 16777216.0) << "P(u < " << xs[i] << ")";
        EXPECT_EQ(qf_u01_p_at_most(xs[i]), (double)at_most[i] / 16777216.0) << "P(u <= " << xs[i] << ")";
    }
}

// Deterministic kinds: every (state, action) of the model is exactly what one real step does.
TEST(SolveTabular, DeterministicTransitionsMatchOneRealStep) {
    const uint32_t k0 = 99, k1 = 5;
    for (int kind : {QF_ENV_DEEP_SEA, QF_ENV_CHAIN}) {
        qf_env_params p = kind == QF_ENV_DEEP_SEA ? deep_sea(6, 0, 1) : chain(5, 0.0f, 0.25f, 2.0f);
        const int S = qf_env_n_states(kind, &p);
        for (int s = 0; s < S; s++) {
            for (int a = 0; a < 2; a++) {
                qf_outcome o[QF_MAX_OUTCOMES];
                const int n = qf_env_outcomes(kind, &p, k0, k1, s, a, o);
                if (kind == QF_ENV_DEEP_SEA && s == S - 1) {  // the null state: no transitions
                    EXPECT_EQ(n, 0);
                    continue;
                }
                ASSERT_EQ(n, 1) << "kind " << kind << " s " << s << " a " << a;
                qf_env_state st;
                std::memset(&st, 0, sizeof st);
                if (kind == QF_ENV_DEEP_SEA) {
                    st.t = s / 6;
                    st.i[0] = s % 6;
                } else {
                    st.i[0] = s;
                }
                qf_rng g = qf_rng_make(k0, k1, QF_STREAM_STEP, 0, 0);
                uint32_t flags = 0;
                const float r = qf_env_step(kind, &p, &st, a, &g, k0, k1, &flags);
                EXPECT_EQ(o[0].prob, 1.0);
                EXPECT_EQ(o[0].reward, r) << "s " << s << " a " << a;
                EXPECT_EQ(o[0].next, qf_env_state_index(kind, &p, &st)) << "s " << s << " a " << a;
                EXPECT_EQ(o[0].terminal != 0, (flags & QF_TERMINAL) != 0) << "s " << s << " a " << a;
            }
        }
    }
    qf_env_params p = bandit({0.9f, 0.25f, 0.3f});
    qf_outcome o[QF_MAX_OUTCOMES];
    ASSERT_EQ(qf_env_outcomes(QF_ENV_BANDIT, &p, k0, k1, 0, 2, o), 1);
    EXPECT_EQ(o[0].terminal, 1);
    EXPECT_EQ(o[0].reward, (float)qf_u01_p_below(0.3f));
    EXPECT_EQ(qf_env_outcomes(QF_ENV_CARTPOLE, &p, k0, k1, 0, 0, o), 0);
}

// Gridworld: the slip direction's probabilities against an exhaustive count over the 2^24 values
// the step can draw; every (state, action)'s outcomes sum to exactly 1; real steps land on the
// model's cells at the model's rates (5 standard errors), and pay the model's reward.
TEST(SolveTabular, GridworldModelMatchesTheSteps) {
    long count[5] = {0, 0, 0, 0, 0};
    for (uint32_t x = 0; x < (1u << 24); x++) count[qf_gridworld_slip_dir(x << 8)]++;
    for (int k = 0; k < 5; k++) EXPECT_EQ(qf_gridworld_p_dir(k), (double)count[k] / 16777216.0) << k;
    qf_env_params p;
    qf_env_params_default(QF_ENV_GRIDWORLD, &p);
    p.gridworld.size = 4;
    p.gridworld.slip = 0.35f;
    const int S = 16;
    for (int s = 0; s < S; s++)
        for (int a = 0; a < 5; a++) {
            qf_outcome o[QF_MAX_OUTCOMES];
            const int n = qf_env_outcomes(QF_ENV_GRIDWORLD, &p, 0, 0, s, a, o);
            ASSERT_EQ(n, 5);
            double sum = 0.0;
            for (int j = 0; j < n; j++) sum += o[j].prob;
            EXPECT_EQ(sum, 1.0) << "s " << s << " a " << a;
        }
    const int draws = 40000;
    for (int s : {0, 5, 15}) {
        const int a = 3;
        qf_outcome o[QF_MAX_OUTCOMES];
        const int n = qf_env_outcomes(QF_ENV_GRIDWORLD, &p, 0, 0, s, a, o);
        std::vector<double> want(S, 0.0);
        for (int j = 0; j < n; j++) want[o[j].next] += o[j].prob;
        std::vector<long> got(S, 0);
        for (int d = 0; d < draws; d++) {
            qf_env_state st;
            std::memset(&st, 0, sizeof st);
            st.i[0] = s;
            qf_rng g = qf_rng_make(3, 4, QF_STREAM_STEP, (uint32_t)d, 0);
            uint32_t flags = 0;
            const float r = qf_env_step(QF_ENV_GRIDWORLD, &p, &st, a, &g, 3, 4, &flags);
            ASSERT_EQ(r, o[0].reward);
            got[st.i[0]]++;
        }
        for (int c = 0; c < S; c++) {
            const double pc = want[c], se = std::sqrt(pc * (1 - pc) / draws);
            if (pc == 0.0)
                EXPECT_EQ(got[c], 0) << "s " << s << " reached " << c;
            else
                EXPECT_NEAR((double)got[c] / draws, pc, 5 * se) << "s " << s << " -> " << c;
        }
    }
}

// Stochastic DeepSea: real steps land only on the model's outcomes, at the model's rate.
TEST(SolveTabular, StochasticDeepSeaStepsFollowTheModel) {
    const int n = 5, draws = 40000;
    qf_env_params p = deep_sea(n, 1);
    const int s = 1 * n + 1, row = 1, col = 1;  // on the diagonal
    const int right = qf_deep_sea_right_action(&p.deep_sea, 1, 2, row, col);
    qf_outcome o[QF_MAX_OUTCOMES];
    ASSERT_EQ(qf_env_outcomes(QF_ENV_DEEP_SEA, &p, 1, 2, s, right, o), 2);
    long failed = 0;
    for (int t = 0; t < draws; t++) {
        qf_env_state st;
        std::memset(&st, 0, sizeof st);
        st.t = row;
        st.i[0] = col;
        qf_rng g = qf_rng_make(1, 2, QF_STREAM_STEP, (uint32_t)t, 0);
        uint32_t flags = 0;
        const float r = qf_env_step(QF_ENV_DEEP_SEA, &p, &st, right, &g, 1, 2, &flags);
        const int next = qf_env_state_index(QF_ENV_DEEP_SEA, &p, &st);
        ASSERT_TRUE(next == o[0].next || next == o[1].next) << next;
        EXPECT_EQ(r, o[0].reward);  // no noise away from the last row's ends
        failed += next == o[1].next;
    }
    const double pf = o[1].prob, se = std::sqrt(pf * (1 - pf) / draws);
    EXPECT_NEAR((double)failed / draws, pf, 5 * se);
    EXPECT_NEAR(pf, 1.0 / n, 1.0 / 16777216.0);
}

// ---- bandit ----------------------------------------------------------------------------------

// One state, every pull terminal: Q(a) = mean_a, V = max_a mean_a (hard), and with temperature
// alpha V = alpha * log(sum_a exp(mean_a / alpha)) (soft), for any gamma. 0.9f, 0.8f, 0.7f are
// multiples of 2^-24, so the expected rewards are the means exactly.
TEST(SolveBandit, HardValueIsTheBestArm) {
    for (double gamma : {0.0, 0.99, 1.0}) {
        Solution s = solve_cpu(make(QF_ENV_BANDIT, bandit({0.9f, 0.8f, 0.7f}), gamma, 0.0));
        EXPECT_EQ(s.V(0, 0), (double)0.9f);
        EXPECT_EQ(s.Q(0, 0, 1), (double)0.8f);
        EXPECT_EQ(s.Q(0, 0, 2), (double)0.7f);
        EXPECT_EQ(s.iters, 2);  // the second sweep sees no change
    }
}

TEST(SolveBandit, SoftValueIsTheClosedForm) {
    const float m[3] = {0.9f, 0.8f, 0.7f};
    for (double alpha : {0.01, 0.1, 1.0, 10.0}) {
        Solution s = solve_cpu(make(QF_ENV_BANDIT, bandit({m[0], m[1], m[2]}), 0.9, alpha));
        long double sum = 0;
        for (float x : m) sum += std::exp((long double)x / alpha);
        const double truth = (double)(alpha * std::log(sum));
        EXPECT_NEAR(s.V(0, 0), truth, 1e-13 * (1 + std::fabs(truth))) << "alpha " << alpha;
    }
}

TEST(SolveBandit, DrawnMeansPerRun) {
    qf_env_params p = default_params(QF_ENV_BANDIT);  // 10 arms, means drawn from each run's key
    Solution s = solve_cpu(make(QF_ENV_BANDIT, p, 0.99, 0.0, 5, 31));
    for (int r = 0; r < 5; r++) {
        float best = 0;
        for (int a = 0; a < 10; a++) best = std::max(best, qf_bandit_mean(&p.bandit, 31, (uint32_t)r, a));
        EXPECT_EQ(s.V(r, 0), (double)best) << "run " << r;
    }
}

// ---- chain -----------------------------------------------------------------------------------

// N = 2, no slip. Always right: state 1 pays r_large forever, V(1) = r_large / (1 - g); state 0
// moves to 1 for nothing, V(0) = g V(1). Left: Q(0, L) = r_small + g V(0), Q(1, L) = g V(0);
// with r_small = 0.001, g = 0.9: V(1) = 10, V(0) = 9 beat them.
TEST(SolveChain, TwoStatesClosedForm) {
    const double g = 0.9, rs = (double)0.001f;
    Solution s = solve_cpu(make(QF_ENV_CHAIN, chain(2, 0.0f), g, 0.0));
    const double v1 = 1.0 / (1 - g), v0 = g * v1;
    EXPECT_NEAR(s.V(0, 1), v1, 1e-9);
    EXPECT_NEAR(s.V(0, 0), v0, 1e-9);
    EXPECT_NEAR(s.Q(0, 0, 0), rs + g * v0, 1e-9);
    EXPECT_NEAR(s.Q(0, 1, 0), g * v0, 1e-9);
    EXPECT_EQ(s.greedy(0, 0), 1);
    EXPECT_EQ(s.greedy(0, 1), 1);
}

// N = 3, slip p = 0.25 (a multiple of 2^-24: exact), q = 1 - p, always right (R = r_large):
//   V0 = g (q V1 + p V0)            ->  V0 = a V1,  a = g q / (1 - g p)
//   V1 = g (q V2 + p V0)            ->  V1 = b V2,  b = g q / (1 - g p a)
//   V2 = R + g (q V2 + p V1)        ->  V2 = R / (1 - g q - g p b)
TEST(SolveChain, ThreeStatesWithSlipClosedForm) {
    const double g = 0.9, p = 0.25, q = 0.75, R = 2.0;
    Solution s = solve_cpu(make(QF_ENV_CHAIN, chain(3, 0.25f, 0.001f, 2.0f), g, 0.0));
    const double a = g * q / (1 - g * p), b = g * q / (1 - g * p * a);
    const double v2 = R / (1 - g * q - g * p * b), v1 = b * v2, v0 = a * v1;
    EXPECT_NEAR(s.V(0, 0), v0, 1e-9);
    EXPECT_NEAR(s.V(0, 1), v1, 1e-9);
    EXPECT_NEAR(s.V(0, 2), v2, 1e-9);
    for (int st = 0; st < 3; st++) EXPECT_EQ(s.greedy(0, st), 1) << "state " << st;
}

// The soft value exceeds the hard one by at most alpha log(A) per step, discounted:
// 0 <= V_soft - V_hard <= alpha log(A) / (1 - g); and alpha -> 0 approaches the hard value.
TEST(SolveChain, SoftValueIsWithinTheTemperatureBoundOfTheHardValue) {
    const double g = 0.9;
    qf_env_params p = chain(6, 0.1f);
    Solution hard = solve_cpu(make(QF_ENV_CHAIN, p, g, 0.0));
    for (double alpha : {1e-4, 0.05, 0.5}) {
        Solution soft = solve_cpu(make(QF_ENV_CHAIN, p, g, alpha));
        for (int st = 0; st < 6; st++) {
            const double gap = soft.V(0, st) - hard.V(0, st);
            EXPECT_GE(gap, -1e-9) << "alpha " << alpha << " state " << st;
            EXPECT_LE(gap, alpha * std::log(2.0) / (1 - g) + 1e-9) << "alpha " << alpha << " state " << st;
        }
    }
}

// ---- DeepSea ---------------------------------------------------------------------------------

// Always right: N - 1 moves cost move_cost/N each, the last one pays 1 - move_cost/N, both rounded
// to float as the step computes them; total 0.99 for move_cost 0.01. Jacobi sweeps fill one row per
// sweep from the bottom: N sweeps, plus one that sees no change.
TEST(SolveDeepSea, DeterministicOptimalValueIsPoint99) {
    for (int n : {1, 2, 10, 50}) {
        qf_env_params p = deep_sea(n, 0);
        const float cost = p.deep_sea.move_cost / (float)n;
        const double truth = (double)(n - 1) * (double)(-cost) + (double)((0.0f + 1.0f) - cost);
        for (double alpha : {0.0, 0.5}) {
            Solution s = solve_cpu(make(QF_ENV_DEEP_SEA, p, 1.0, alpha));
            if (alpha == 0.0) {
                EXPECT_NEAR(s.V(0, 0), truth, 1e-12) << "N " << n;
                EXPECT_NEAR(s.V(0, 0), 0.99, 1e-6) << "N " << n;
                EXPECT_EQ(s.iters, n + 1) << "N " << n;
            } else {
                // soft values exceed hard ones, by at most alpha log(A) per step over N steps
                EXPECT_GT(s.V(0, 0), truth) << "N " << n;
                EXPECT_LE(s.V(0, 0), truth + alpha * std::log(2.0) * n) << "N " << n;
            }
            EXPECT_EQ(s.V(0, n * n), 0.0) << "the null state is worth 0, also with alpha > 0";
        }
    }
}

// With per-run mappings the value is the same for every run, and the greedy action on the
// diagonal is each run's own "right" action.
TEST(SolveDeepSea, GreedyPolicyGoesRightAlongTheDiagonalOfEachRunsMapping) {
    const int n = 12, R = 4;
    qf_env_params p = deep_sea(n, 0, 1);
    Solution s = solve_cpu(make(QF_ENV_DEEP_SEA, p, 1.0, 0.0, R, 77));
    int differs = 0;
    for (int r = 0; r < R; r++) {
        EXPECT_NEAR(s.V(r, 0), 0.99, 1e-6);
        for (int d = 0; d < n; d++) {
            const int right = qf_deep_sea_right_action(&p.deep_sea, 77, (uint32_t)r, d, d);
            EXPECT_EQ(s.greedy(r, d * n + d), right) << "run " << r << " row " << d;
            differs += right != qf_deep_sea_right_action(&p.deep_sea, 77, 0, d, d);
        }
    }
    EXPECT_GT(differs, 0) << "the runs' mappings should differ";
}

// An independent truth: backward induction over (row, column) from the environment's description.
// A right move costs c = move_cost/N (float) and pays 1 in the last column (1 - c in float); it
// fails with pf = P(qf_u01 <= 1/N) and keeps the column; a left move goes to max(col - 1, 0);
// the value after the last row is 0. Noise has mean 0.
std::vector<double> deep_sea_dp(int n, float move_cost, double pf) {
    const float c = move_cost / (float)n;
    const double r_move = -(double)c, r_last = (double)((0.0f + 1.0f) - c);
    std::vector<double> V((size_t)(n + 1) * n, 0.0);  // V[row][col], row n = after the end
    auto at = [&](int row, int col) -> double & { return V[(size_t)row * n + col]; };
    for (int row = n - 1; row >= 0; row--)
        for (int col = 0; col < n; col++) {
            const double right = (col == n - 1 ? r_last : r_move) +
                                 (1 - pf) * at(row + 1, std::min(col + 1, n - 1)) + pf * at(row + 1, col);
            const double left = at(row + 1, std::max(col - 1, 0));
            at(row, col) = std::max(right, left);
        }
    return V;
}

// Closed form of the optimal policy (right while on the diagonal, left once off it, since the last
// column is then out of reach): the treasure needs N - 1 successes, (1 - pf)^(N-1); the agent pays
// c on diagonal row k with probability (1 - pf)^k: c (1 - (1 - pf)^N) / pf in all.
double deep_sea_stochastic_closed_form(int n, double move_cost, double pf) {
    return std::pow(1 - pf, n - 1) - move_cost / n * (1 - std::pow(1 - pf, n)) / pf;
}

TEST(SolveDeepSea, StochasticMatchesBackwardInductionAndTheClosedForm) {
    for (int n : {3, 8, 20}) {
        qf_env_params p = deep_sea(n, 1);
        const double pf = (std::floor((double)(1.0f / (float)n) * 16777216.0) + 1.0) / 16777216.0;
        Solution s = solve_cpu(make(QF_ENV_DEEP_SEA, p, 1.0, 0.0));
        std::vector<double> truth = deep_sea_dp(n, p.deep_sea.move_cost, pf);
        for (int row = 0; row < n; row++)
            for (int col = 0; col <= row; col++)
                EXPECT_NEAR(s.V(0, row * n + col), truth[(size_t)row * n + col], 1e-12)
                    << "N " << n << " (" << row << ", " << col << ")";
        EXPECT_NEAR(s.V(0, 0), deep_sea_stochastic_closed_form(n, 0.01, 1.0 / n), 1e-6) << "N " << n;
    }
}

// The greedy policy of the solver, played in the real environment (CPU batch, stochastic DeepSea,
// N = 8, 100k episodes), returns V*(s0) on average: within 5 standard errors.
TEST(SolveDeepSea, GreedyPolicyRolloutReturnsTheOptimalValue) {
    const int n = 8, E = 100000;
    qf_env_params p = deep_sea(n, 1);
    Solution s = solve_cpu(make(QF_ENV_DEEP_SEA, p, 1.0, 0.0, 1, 2024));
    CpuBackend cpu;
    Batch batch(cpu.b, QF_ENV_DEEP_SEA, p, 1, E, 2024);
    ASSERT_TRUE(batch.ok);
    std::vector<int32_t> index(E), actions(E);
    for (int t = 0; t < n; t++) {
        ASSERT_EQ(cpu.b->env_observe(cpu.b, &batch.v.batch, nullptr, index.data()), QF_OK);
        for (int e = 0; e < E; e++) actions[e] = s.greedy(0, index[e]);
        ASSERT_EQ(cpu.b->env_step(cpu.b, &batch.v.batch, actions.data(), (uint32_t)t, nullptr, nullptr), QF_OK);
    }
    HostBatch h = download_batch(batch.v);
    double sum = 0, sum2 = 0;
    for (int e = 0; e < E; e++) {
        ASSERT_EQ(h.episodes[e], 1u);
        sum += h.last_return[e];
        sum2 += (double)h.last_return[e] * h.last_return[e];
    }
    const double mean = sum / E, var = sum2 / E - mean * mean, se = std::sqrt(var / E);
    EXPECT_NEAR(mean, s.V(0, 0), 5 * se) << "V*(s0) " << s.V(0, 0) << ", se " << se;
}

// ---- the operation itself --------------------------------------------------------------------

// Runs stop on their own convergence: a run alone gives the same bits as inside a fleet whose
// other runs need more or fewer sweeps; the thread count changes nothing either.
TEST(SolveBackend, RunAloneEqualsRunInFleetAndThreadsDoNotMatter) {
    Problem fleet = make(QF_ENV_CHAIN, chain(6, 0.2f), 0.0, 0.0, 4);
    fleet.gamma = {0.5, 0.99, 0.9, 0.0};
    fleet.alpha = {0.0, 0.1, 0.0, 1.0};
    Solution all = solve_cpu(fleet);
    int most = 0;
    for (int r = 0; r < 4; r++) {
        Solution one = solve_cpu(single(fleet, r));
        most = std::max(most, one.iters);
        EXPECT_EQ(std::memcmp(one.v.data(), &all.v[(size_t)r * 6], 6 * sizeof(double)), 0) << "run " << r;
        EXPECT_EQ(std::memcmp(one.q.data(), &all.q[(size_t)r * 12], 12 * sizeof(double)), 0) << "run " << r;
    }
    EXPECT_EQ(all.iters, most);
    for (int threads : {1, 3}) {
        qf_cpu_set_threads(threads);
        Solution again = solve_cpu(fleet);
        EXPECT_TRUE(again.v == all.v && again.q == all.q) << threads << " threads";
    }
    qf_cpu_set_threads(0);
}

// A big run alone is solved with the states of each sweep shared among threads; in a fleet of as
// many runs as threads, each run by one thread. Same bits (after 3 sweeps: a DeepSea of 33k states).
TEST(SolveBackend, SweepsSharedAmongThreadsGiveTheSameBits) {
    Problem pb = make(QF_ENV_DEEP_SEA, deep_sea(182, 1, 1), 1.0, 0.3, 2, 8);
    pb.max_iters = 3;
    qf_cpu_set_threads(2);
    Solution fleet = solve_cpu(pb);  // two runs, one per thread
    Solution alone = solve_cpu(single(pb, 1));  // one run, its states shared by two threads
    qf_cpu_set_threads(1);
    Solution serial = solve_cpu(single(pb, 1));
    qf_cpu_set_threads(0);
    const size_t S = (size_t)pb.n_states;
    EXPECT_EQ(fleet.iters, 3);
    EXPECT_TRUE(alone.v == serial.v && alone.q == serial.q);
    EXPECT_EQ(std::memcmp(alone.v.data(), &fleet.v[S], S * sizeof(double)), 0);
    EXPECT_EQ(std::memcmp(alone.q.data(), &fleet.q[2 * S], 2 * S * sizeof(double)), 0);
}

TEST(SolveBackend, RejectsBadProblemsWithAReason) {
    CpuBackend cpu;
    auto expect_error = [&](const Problem &pb, const char *needle) {
        Solution s = solve_on(cpu.b, pb);
        EXPECT_EQ(s.rc, QF_ERR) << needle;
        EXPECT_NE(s.err.find(needle), std::string::npos) << s.err;
    };
    Problem pb = make(QF_ENV_CHAIN, chain(4, 0.1f), 0.9, 0.0, 3);
    Problem bad = pb;
    bad.gamma[1] = 1.5;
    expect_error(bad, "run 1 has gamma=1.5");
    bad = pb;
    bad.alpha[2] = -1;
    expect_error(bad, "run 2 has alpha=-1");
    bad = pb;
    bad.n_states = 5;
    expect_error(bad, "n_states=5");
    bad = pb;
    bad.max_iters = 0;
    expect_error(bad, "max_iters");
    bad = pb;
    bad.kind = QF_ENV_CARTPOLE;
    expect_error(bad, "not tabular");
}

TEST(SolveBackend, CpuAndCudaAgree) {
    char err[512];
    qf_backend *cuda = qf_cuda_open(err, sizeof err);
    if (!cuda) GTEST_SKIP() << "no usable GPU: " << err;
    CpuBackend cpu;
    // hard max: the same double operations in the same order (no FMA): identical bits
    Problem ds = make(QF_ENV_DEEP_SEA, deep_sea(12, 1, 1), 1.0, 0.0, 3, 5);
    Solution c = solve_on(cpu.b, ds), g = solve_on(cuda, ds);
    ASSERT_EQ(g.rc, QF_OK) << g.err;
    EXPECT_EQ(c.iters, g.iters);
    EXPECT_TRUE(c.v == g.v && c.q == g.q) << "deep_sea, alpha = 0";
    // soft: exp and log may differ in the last bit
    Problem ch = make(QF_ENV_CHAIN, chain(7, 0.1f), 0.95, 0.0, 3);
    ch.alpha = {0.0, 0.1, 1.0};
    Problem bd = make(QF_ENV_BANDIT, default_params(QF_ENV_BANDIT), 0.9, 0.2, 5, 3);
    for (const Problem *pb : {&ch, &bd}) {
        c = solve_on(cpu.b, *pb);
        g = solve_on(cuda, *pb);
        ASSERT_EQ(g.rc, QF_OK) << g.err;
        EXPECT_NEAR(c.iters, g.iters, 1);
        for (size_t i = 0; i < c.v.size(); i++) EXPECT_NEAR(c.v[i], g.v[i], 1e-11 * (1 + std::fabs(c.v[i])));
        for (size_t i = 0; i < c.q.size(); i++) EXPECT_NEAR(c.q[i], g.q[i], 1e-11 * (1 + std::fabs(c.q[i])));
    }
    // and a bad run is reported from the device
    Problem bad = ch;
    bad.gamma[2] = 2.0;
    g = solve_on(cuda, bad);
    EXPECT_EQ(g.rc, QF_ERR);
    EXPECT_NE(g.err.find("run 2 has gamma=2"), std::string::npos) << g.err;
    qf_backend_close(cuda);
}

// ---- the layered fast path (qf_solve_layered) ------------------------------------------------

// pb solved by one backward pass over its layers, on the host
Solution solve_layered(const Problem &pb) {
    Solution out;
    out.S = pb.n_states;
    out.A = pb.n_actions;
    qf_solve_problem prob;
    std::memset(&prob, 0, sizeof prob);
    prob.kind = pb.kind;
    prob.R = pb.R();
    prob.params = pb.params.data();
    prob.keys = pb.keys.data();
    prob.gamma = pb.gamma.data();
    prob.alpha = pb.alpha.data();
    prob.n_states = pb.n_states;
    prob.n_actions = pb.n_actions;
    prob.max_iters = 1;
    out.q.assign((size_t)pb.R() * pb.n_states * pb.n_actions, -1.0);
    out.v.assign((size_t)pb.R() * pb.n_states, -1.0);
    char msg[512] = "";
    out.rc = qf_solve_layered(&prob, out.q.data(), out.v.data(), msg, sizeof msg) == 0 ? QF_OK : QF_ERR;
    out.err = msg;
    return out;
}

// The layered pass against the general solver (Jacobi value iteration to tol 1e-12): every V and Q
// of every run, DeepSea deterministic and stochastic, with per-run mappings, hard and soft, gamma 1
// and 0.9; and the bandit. Both evaluate the same backup, so they agree to rounding (1e-12).
TEST(SolveLayered, MatchesValueIterationOnSmallProblems) {
    std::vector<Problem> problems;
    for (int n : {1, 2, 5, 12})
        for (int stochastic : {0, 1})
            for (double gamma : {1.0, 0.9})
                for (double alpha : {0.0, 0.3})
                    problems.push_back(make(QF_ENV_DEEP_SEA, deep_sea(n, stochastic, 1), gamma, alpha, 3, 11));
    problems.push_back(make(QF_ENV_BANDIT, bandit({0.2f, 0.7f, 0.5f}), 0.99, 0.0));
    problems.push_back(make(QF_ENV_BANDIT, bandit({0.2f, 0.7f, 0.5f}), 0.99, 0.25));
    for (const Problem &pb : problems) {
        const Solution vi = solve_cpu(pb), lay = solve_layered(pb);
        ASSERT_EQ(lay.rc, QF_OK) << lay.err;
        const std::string what = "kind " + std::to_string(pb.kind) + " states " + std::to_string(pb.n_states) +
                                 " gamma " + std::to_string(pb.gamma[0]) + " alpha " + std::to_string(pb.alpha[0]);
        for (size_t i = 0; i < vi.v.size(); i++)
            ASSERT_NEAR(lay.v[i], vi.v[i], 1e-12 * std::max(1.0, std::fabs(vi.v[i]))) << what << " V[" << i << "]";
        for (size_t i = 0; i < vi.q.size(); i++)
            ASSERT_NEAR(lay.q[i], vi.q[i], 1e-12 * std::max(1.0, std::fabs(vi.q[i]))) << what << " Q[" << i << "]";
    }
}

// Values by hand. N = 1: one cell, the last row and column: right pays 1 - c (c = move_cost in
// float), left 0, so V = alpha log(exp((1 - c)/alpha) + 1). N = 3 deterministic, hard max, gamma
// 0.9: always right pays -c, -c, 1 - c (c = move_cost/3 in float), discounted -c - 0.9c + 0.81(1 - c)
// (> 0, the value of always left). N = 300, gamma 1: 0.99 as for every N (the moves sum to the cost).
TEST(SolveLayered, DeepSeaValuesByHand) {
    {
        qf_env_params p = deep_sea(1, 0);
        const double alpha = 0.4, r = (double)((0.0f + 1.0f) - p.deep_sea.move_cost / 1.0f);
        Solution s = solve_layered(make(QF_ENV_DEEP_SEA, p, 1.0, alpha));
        ASSERT_EQ(s.rc, QF_OK) << s.err;
        EXPECT_NEAR(s.V(0, 0), alpha * std::log(std::exp(r / alpha) + 1.0), 1e-12);
        EXPECT_EQ(s.V(0, 1), 0.0) << "the null state";
    }
    {
        qf_env_params p = deep_sea(3, 0);
        const float c = p.deep_sea.move_cost / 3.0f;
        const double truth = -(double)c - 0.9 * (double)c + 0.81 * (double)((0.0f + 1.0f) - c);
        Solution s = solve_layered(make(QF_ENV_DEEP_SEA, p, 0.9, 0.0));
        ASSERT_EQ(s.rc, QF_OK) << s.err;
        EXPECT_NEAR(s.V(0, 0), truth, 1e-12);
    }
    {
        Solution s = solve_layered(make(QF_ENV_DEEP_SEA, deep_sea(300, 0), 1.0, 0.0));
        ASSERT_EQ(s.rc, QF_OK) << s.err;
        EXPECT_NEAR(s.V(0, 0), 0.99, 1e-5);  // 300 float rewards of ~3e-5 each: float rounding
    }
}

TEST(SolveLayered, RefusesKindsThatAreNotLayered) {
    Solution s = solve_layered(make(QF_ENV_CHAIN, chain(4, 0.0f), 0.9, 0.0));
    EXPECT_EQ(s.rc, QF_ERR);
    EXPECT_NE(s.err.find("not layered"), std::string::npos) << s.err;
    Problem bad = make(QF_ENV_DEEP_SEA, deep_sea(4, 0), 1.5, 0.0);
    s = solve_layered(bad);
    EXPECT_EQ(s.rc, QF_ERR);
    EXPECT_NE(s.err.find("gamma=1.5"), std::string::npos) << s.err;
}

// ---- the command line ------------------------------------------------------------------------


TEST(SolveCli, DeepSeaPrintsTheOptimalValueAndADiagonalPolicy) {
    CliResult r = run_qfleet("solve env=deep_sea env.size=10 alpha=0 gamma=1 policy=1 backend=cpu");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("run 0: V*(s0) = 0.990000"), std::string::npos) << r.out;
    for (int d = 0; d < 10; d++) {  // row d of the grid: "  row   d:" then one cell per column
        char head[32];
        std::snprintf(head, sizeof head, "row %3d:", d);
        const size_t at = r.out.find(head);
        ASSERT_NE(at, std::string::npos) << head << "\n" << r.out;
        EXPECT_EQ(r.out[at + std::strlen(head) + 2 * d + 1], 'R') << head << "\n" << r.out;
    }
}

// DeepSea goes through the layered pass (a new user's `solve env.size=4096` ran value iteration's
// O(N^3) sweeps for hours); the answer is the same 0.99 (N = 2000, gamma = 1).
TEST(SolveCli, DeepSeaIsSolvedLayerByLayer) {
    CliResult r = run_qfleet("solve env=deep_sea env.size=2000 alpha=0 gamma=1 backend=cpu");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("layered: 2000 layers of 2000 states"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("run 0: V*(s0) = 0.9900"), std::string::npos) << r.out;
}

TEST(SolveCli, ManyRunsPrintASummary) {
    CliResult r = run_qfleet("solve env=bandit runs=20 seed=4 backend=cpu");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("run 3: V*(s0)"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("run 4: V*(s0)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("runs 0..19: V*(s0) mean"), std::string::npos) << r.out;
}

TEST(SolveCli, NonTabularEnvironmentIsBadInput) {
    CliResult r = run_qfleet("solve env=cartpole backend=cpu");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("env=cartpole"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("tabular"), std::string::npos) << r.out;
}

TEST(SolveCli, ChainInfiniteHorizonNeedsADiscount) {
    CliResult r = run_qfleet("solve env=chain gamma=1 horizon=-1 backend=cpu");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("gamma < 1"), std::string::npos) << r.out;
}

// By default the chain is solved as what its episodes are: 20 steps, undiscounted. Without slip
// always-right reaches state N-1 = 9 after 9 steps and collects r_large = 1 in each of the other
// 11: V*(s0) = 11 (always-left earns 20 * 0.001). horizon=5 cannot reach the end: 5 * 0.001.
TEST(SolveCli, ChainDefaultIsItsFiniteHorizonProblem) {
    CliResult r = run_qfleet("solve env=chain env.slip=0 backend=cpu");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("finite horizon T=20"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("run 0: V*(s0) = 11.000000"), std::string::npos) << r.out;
    r = run_qfleet("solve env=chain env.slip=0 horizon=5 backend=cpu");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("run 0: V*(s0) = 0.005000"), std::string::npos) << r.out;
    r = run_qfleet("solve env=chain horizon=-1 backend=cpu");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("infinite horizon, discounted"), std::string::npos) << r.out;
}

}  // namespace
