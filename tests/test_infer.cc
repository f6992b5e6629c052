// test_infer.cc — control as inference (kernels/infer.h) against independent truths:
// - brute-force enumeration of every trajectory of tiny MDPs (chain, stochastic DeepSea past its
//   end, gridworld with slip, bandit, an explicit reward table, a given start distribution): the
//   inference backup's log-partition log Z = log sum_tau prod p(s'|s,a) exp(r / alpha) and its
//   posterior state marginals and occupancies; the variational backup's values by a tree recursion
//   (no tables) and the state marginals of its policy under the true dynamics;
// - the variational backup equals the exact solver's soft value iteration (gamma = 1) on DeepSea;
// - the optimism gap V_inf - V_var is zero (to rounding) with deterministic dynamics and positive
//   with stochastic ones (Jensen's inequality), at every (t, s);
// - log space: rewards of 1e4 at temperature 0.01 give finite values and marginals;
// - the demo log-likelihood against log pi by the tree recursion;
// - isolation: a run alone equals the same run inside a fleet, bit for bit; input checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "envs/tabular.h"
#include "infer_util.h"
#include "test_util.h"

namespace {

// ---- brute force ------------------------------------------------------------------------------

struct Tiny {
    const InferProblem &pb;
    int r;
    std::vector<qf_outcome> outs(int s, int a) const {
        qf_outcome o[QF_MAX_OUTCOMES];
        const int n = qf_env_outcomes(pb.kind, &pb.params[r], pb.keys[2 * r], pb.keys[2 * r + 1], s, a, o);
        return std::vector<qf_outcome>(o, o + n);
    }
    double reward(int s, int a, const qf_outcome &o) const {
        return pb.reward.empty() ? (double)o.reward : pb.reward[((size_t)r * pb.S + s) * pb.A + a];
    }
    double alpha() const { return pb.alpha[r]; }
    std::vector<double> start() const {
        std::vector<double> d((size_t)pb.S, 0.0);
        if (pb.start.empty())
            d[(size_t)qf_env_start_state(pb.kind, &pb.params[r])] = 1.0;
        else
            std::copy(pb.start.begin() + (long)r * pb.S, pb.start.begin() + (long)(r + 1) * pb.S, d.begin());
        return d;
    }
};

double logsumexp(const std::vector<double> &x) {
    double m = -INFINITY;
    for (double v : x) m = std::max(m, v);
    if (m == -INFINITY) return m;
    double s = 0;
    for (double v : x) s += std::exp(v - m);
    return m + std::log(s);
}

struct Enumerated {
    double logZ = 0;                           // inference: log sum over trajectories (start-weighted)
    std::vector<double> marg, occ;             // [T][S], [S][A]
};

// Every trajectory from every start state: weight prod start * p * exp(r / alpha) (inference) or
// prod start * pi_t(a|s) * p (variational, pi from the tree recursion).
Enumerated enumerate(const Tiny &m, int backup, const std::function<double(int, int, int)> &log_pi) {
    const int S = m.pb.S, A = m.pb.A, T = m.pb.T;
    struct Path {
        double logw;
        std::vector<std::pair<int, int>> sa;
    };
    std::vector<Path> paths;
    std::function<void(int, int, double, std::vector<std::pair<int, int>> &)> go =
        [&](int t, int s, double logw, std::vector<std::pair<int, int>> &sa) {
            if (t == T || m.outs(s, 0).empty()) {
                paths.push_back({logw, sa});
                return;
            }
            for (int a = 0; a < A; a++) {
                for (const qf_outcome &o : m.outs(s, a)) {
                    double lw = logw + std::log(o.prob);
                    lw += backup == QF_BACKUP_INFERENCE ? m.reward(s, a, o) / m.alpha() : log_pi(t, s, a);
                    sa.push_back({s, a});
                    if (o.terminal)
                        paths.push_back({lw, sa});
                    else
                        go(t + 1, o.next, lw, sa);
                    sa.pop_back();
                }
            }
        };
    const std::vector<double> d0 = m.start();
    for (int s = 0; s < S; s++) {
        if (d0[(size_t)s] == 0.0) continue;
        std::vector<std::pair<int, int>> sa;
        go(0, s, std::log(d0[(size_t)s]), sa);
    }
    std::vector<double> lw;
    for (const Path &p : paths) lw.push_back(p.logw);
    Enumerated e;
    e.logZ = logsumexp(lw);
    const double norm = backup == QF_BACKUP_INFERENCE ? e.logZ : 0.0;
    e.marg.assign((size_t)T * S, 0.0);
    e.occ.assign((size_t)S * A, 0.0);
    for (const Path &p : paths) {
        const double w = std::exp(p.logw - norm);
        for (size_t t = 0; t < p.sa.size(); t++) {
            e.marg[t * S + (size_t)p.sa[t].first] += w;
            e.occ[(size_t)p.sa[t].first * A + (size_t)p.sa[t].second] += w;
        }
    }
    return e;
}

// Variational values by a tree recursion (no tables, no sharing): V(t, s) and log pi_t(a | s).
struct Tree {
    const Tiny &m;
    double V(int t, int s) const {
        if (t == m.pb.T || m.outs(s, 0).empty()) return 0.0;
        std::vector<double> q;
        for (int a = 0; a < m.pb.A; a++) q.push_back(Q(t, s, a) / m.alpha());
        return m.alpha() * logsumexp(q);
    }
    double Q(int t, int s, int a) const {
        double acc = 0;
        for (const qf_outcome &o : m.outs(s, a)) acc += o.prob * (m.reward(s, a, o) + (o.terminal ? 0.0 : V(t + 1, o.next)));
        return acc;
    }
    double log_pi(int t, int s, int a) const { return (Q(t, s, a) - V(t, s)) / m.alpha(); }
};

void expect_near_rel(double got, double want, double rel, const std::string &what) {
    EXPECT_NEAR(got, want, rel * (1.0 + std::fabs(want))) << what;
}

// Both backups of run r of pb against the enumeration.
void check_against_enumeration(const InferProblem &pb, const std::string &name) {
    CpuBackend cpu;
    const double tol = 1e-10;  // double arithmetic over a few hundred terms
    for (int backup : {QF_BACKUP_INFERENCE, QF_BACKUP_VARIATIONAL}) {
        const InferResult res = infer_run(cpu.b, pb, backup);
        ASSERT_EQ(res.rc, QF_OK) << res.err;
        const std::string tag = name + (backup ? " inference" : " variational");
        for (int r = 0; r < pb.R(); r++) {
            const Tiny m{pb, r};
            const Tree tree{m};
            const Enumerated e = enumerate(m, backup, [&](int t, int s, int a) { return tree.log_pi(t, s, a); });
            const std::vector<double> d0 = m.start();
            if (backup == QF_BACKUP_INFERENCE) {
                // log Z = log sum_s0 d0(s0) exp(V_0(s0) / alpha)
                std::vector<double> terms;
                for (int s = 0; s < pb.S; s++)
                    if (d0[(size_t)s] > 0) terms.push_back(std::log(d0[(size_t)s]) + res.V(r, 0, s) / m.alpha());
                expect_near_rel(logsumexp(terms), e.logZ, tol, tag + ": log-partition");
            } else {
                for (int t = 0; t < pb.T; t++)
                    for (int s = 0; s < pb.S; s++)
                        if (t == 0 || res.M(r, t, s) > 0) expect_near_rel(res.V(r, t, s), tree.V(t, s), tol, tag + ": V");
                EXPECT_NEAR(e.logZ, 0.0, tol) << tag << ": trajectory probabilities sum to 1";
            }
            for (int t = 0; t < pb.T; t++)
                for (int s = 0; s < pb.S; s++)
                    EXPECT_NEAR(res.M(r, t, s), e.marg[(size_t)t * pb.S + s], tol)
                        << tag << ": marginal t=" << t << " s=" << s;
            for (int s = 0; s < pb.S; s++)
                for (int a = 0; a < pb.A; a++)
                    EXPECT_NEAR(res.O(r, s, a), e.occ[(size_t)s * pb.A + a], tol * pb.T)
                        << tag << ": occupancy s=" << s << " a=" << a;
        }
    }
}

qf_env_params chain(int n, float slip, float r_small = 0.001f, float r_large = 1.0f) {
    qf_env_params p = infer_default_params(QF_ENV_CHAIN);
    p.chain.size = n;
    p.chain.slip = slip;
    p.chain.r_small = r_small;
    p.chain.r_large = r_large;
    return p;
}
qf_env_params deep_sea(int n, int stochastic) {
    qf_env_params p = infer_default_params(QF_ENV_DEEP_SEA);
    p.deep_sea.size = n;
    p.deep_sea.stochastic = stochastic;
    return p;
}
qf_env_params grid(int n, float slip, int seed = 3) {
    qf_env_params p = infer_default_params(QF_ENV_GRIDWORLD);
    p.gridworld.size = n;
    p.gridworld.slip = slip;
    p.gridworld.objects = 3;
    p.gridworld.dist = 1;
    p.gridworld.map_seed = seed;
    return p;
}

}  // namespace

// ---- enumeration ------------------------------------------------------------------------------

TEST(InferEnumeration, ChainWithSlip) {
    check_against_enumeration(infer_make(QF_ENV_CHAIN, chain(3, 0.3f, 0.2f, 1.5f), 4, {0.5, 2.0}, 2), "chain");
}

TEST(InferEnumeration, StochasticDeepSeaPastItsEnd) {
    // N = 3 ends after 3 steps; T = 5 checks that terminated episodes leave the problem
    check_against_enumeration(infer_make(QF_ENV_DEEP_SEA, deep_sea(3, 1), 5, {0.2}), "deep_sea stochastic");
    check_against_enumeration(infer_make(QF_ENV_DEEP_SEA, deep_sea(3, 0), 3, {0.7}), "deep_sea");
}

TEST(InferEnumeration, GridworldWithSlip) {
    check_against_enumeration(infer_make(QF_ENV_GRIDWORLD, grid(2, 0.3f), 3, {1.0, 0.25}, 2), "gridworld");
}

TEST(InferEnumeration, BanditOneStepEpisodes) {
    qf_env_params p = infer_default_params(QF_ENV_BANDIT);
    p.bandit.n_probs = p.bandit.arms = 3;
    p.bandit.probs[0] = 0.75f;
    p.bandit.probs[1] = 0.5f;
    p.bandit.probs[2] = 0.25f;
    check_against_enumeration(infer_make(QF_ENV_BANDIT, p, 2, {0.3}), "bandit");
}

TEST(InferEnumeration, ExplicitRewardAndStartDistribution) {
    InferProblem pb = infer_make(QF_ENV_GRIDWORLD, grid(2, 0.2f), 3, {0.6, 1.7}, 2);
    uint32_t x = 12345;
    for (int i = 0; i < pb.R() * pb.S * pb.A; i++) {
        x = x * 1664525u + 1013904223u;
        pb.reward.push_back(-2.0 + 4.0 * (double)(x >> 8) / 16777216.0);
    }
    pb.start = {0.1, 0.2, 0.3, 0.4, 0.0, 0.5, 0.5, 0.0};
    check_against_enumeration(pb, "gridworld reward table");
}

// ---- relations --------------------------------------------------------------------------------

// The variational backup at gamma = 1 is soft value iteration: DeepSea ends after N steps, so for
// T >= N V_0 equals the solver's converged V*(s), at every state of row 0... and every row.
TEST(InferRelations, VariationalBackupIsSoftValueIteration) {
    CpuBackend cpu;
    const int n = 6;
    for (int stochastic : {0, 1}) {
        qf_env_params p = deep_sea(n, stochastic);
        const InferResult res = infer_run(cpu.b, infer_make(QF_ENV_DEEP_SEA, p, n + 2, {0.1, 0.05}, 2),
                                          QF_BACKUP_VARIATIONAL);
        ASSERT_EQ(res.rc, QF_OK) << res.err;
        for (int r = 0; r < 2; r++) {
            qf_solve_problem prob;
            std::memset(&prob, 0, sizeof prob);
            const double gamma = 1.0, alpha = r == 0 ? 0.1 : 0.05;
            const uint32_t keys[2] = {7, (uint32_t)r};
            const int S = n * n + 1;
            std::vector<double> q((size_t)S * 2), v((size_t)S);
            prob.kind = QF_ENV_DEEP_SEA;
            prob.R = 1;
            prob.params = &p;
            prob.keys = keys;
            prob.gamma = &gamma;
            prob.alpha = &alpha;
            prob.n_states = S;
            prob.n_actions = 2;
            prob.max_iters = 1000;
            prob.tol = 0;
            int32_t iters = 0;
            ASSERT_EQ(cpu.b->solve(cpu.b, &prob, q.data(), v.data(), &iters), QF_OK) << cpu.b->err;
            for (int row = 0; row < n; row++)
                for (int col = 0; col <= row; col++) {
                    const int s = row * n + col;
                    // V_t at t = row is the value with n - row steps left: exactly what the episode has
                    EXPECT_NEAR(res.V(r, row, s), v[(size_t)s], 1e-12) << "stochastic " << stochastic << " s " << s;
                    EXPECT_NEAR(res.V(r, 0, s), v[(size_t)s], 1e-12) << "T >= N: t = 0 too";
                }
        }
    }
}

// Optimism gap: V_inf - V_var >= 0 everywhere; 0 with deterministic dynamics, > 0 with stochastic.
TEST(InferRelations, OptimismGapZeroDeterministicPositiveStochastic) {
    CpuBackend cpu;
    struct Case {
        int kind;
        qf_env_params p;
        int T;
        bool stochastic;
    };
    std::vector<Case> cases = {{QF_ENV_DEEP_SEA, deep_sea(8, 0), 8, false}, {QF_ENV_DEEP_SEA, deep_sea(8, 1), 8, true},
                               {QF_ENV_GRIDWORLD, grid(5, 0.0f), 10, false}, {QF_ENV_GRIDWORLD, grid(5, 0.3f), 10, true},
                               {QF_ENV_CHAIN, chain(6, 0.0f), 12, false}, {QF_ENV_CHAIN, chain(6, 0.2f), 12, true}};
    for (const Case &c : cases) {
        const InferProblem pb = infer_make(c.kind, c.p, c.T, {0.5});
        const InferResult inf = infer_run(cpu.b, pb, QF_BACKUP_INFERENCE);
        const InferResult var = infer_run(cpu.b, pb, QF_BACKUP_VARIATIONAL);
        ASSERT_EQ(inf.rc, QF_OK) << inf.err;
        ASSERT_EQ(var.rc, QF_OK) << var.err;
        const std::string name = qf_env_spec_of(c.kind)->name + std::string(c.stochastic ? " stochastic" : " deterministic");
        for (int t = 0; t <= c.T; t++)
            for (int s = 0; s < pb.S; s++) {
                const double gap = inf.V(0, t, s) - var.V(0, t, s), scale = 1e-12 * (1 + std::fabs(var.V(0, t, s))) * c.T;
                EXPECT_GE(gap, -scale) << name << " t " << t << " s " << s;
                if (!c.stochastic) {
                    EXPECT_LE(gap, scale) << name << " t " << t << " s " << s;
                }
            }
        const int s0 = qf_env_start_state(c.kind, &c.p);
        if (c.stochastic) {
            EXPECT_GT(inf.V(0, 0, s0) - var.V(0, 0, s0), 1e-6) << name;
        }
    }
}

// Log space: a reward of 1e4 at alpha = 0.01 (exp(1e6) overflows any float) stays finite, the
// marginals are probabilities and the posterior follows the large reward.
TEST(InferRelations, LargeRewardScaleIsStable) {
    CpuBackend cpu;
    const InferProblem pb = infer_make(QF_ENV_CHAIN, chain(5, 0.1f, 1.0f, 1e4f), 20, {0.01});
    for (int backup : {QF_BACKUP_INFERENCE, QF_BACKUP_VARIATIONAL}) {
        const InferResult res = infer_run(cpu.b, pb, backup);
        ASSERT_EQ(res.rc, QF_OK) << res.err;
        for (double x : res.v) ASSERT_TRUE(std::isfinite(x));
        for (int t = 0; t < pb.T; t++) {
            double sum = 0;
            for (int s = 0; s < pb.S; s++) {
                ASSERT_GE(res.M(0, t, s), 0.0);
                sum += res.M(0, t, s);
            }
            // pi sums to 1 up to the rounding of (Q - V) / alpha: |Q| <= T * 1e4 = 2e5, so each
            // exp is off by up to 2e5 / 0.01 * 2^-52 ~ 4.4e-9 relative, over A = 2 actions, T steps
            EXPECT_NEAR(sum, 1.0, pb.T * 2 * (2e5 / 0.01) * 2.2e-16) << "the chain never terminates";
        }
        EXPECT_GT(res.M(0, pb.T - 1, 4), 0.5) << "the posterior sits at the large reward";
    }
}

TEST(InferRelations, DemoLogLikelihoodIsSumOfLogPi) {
    CpuBackend cpu;
    const InferProblem pb = infer_make(QF_ENV_GRIDWORLD, grid(3, 0.25f), 3, {0.4, 1.3}, 2);
    std::vector<std::vector<std::array<int32_t, 3>>> demos = {{{0, 0, 3}, {1, 1, 1}, {2, 4, 4}, {0, 0, 0}},
                                                              {{0, 0, 1}, {1, 3, 3}, {2, 4, 2}}};
    for (int backup : {QF_BACKUP_INFERENCE, QF_BACKUP_VARIATIONAL}) {
        const std::vector<double> ll = infer_loglik(cpu.b, pb, backup, demos);
        for (int r = 0; r < 2; r++) {
            const Tiny m{pb, r};
            double want = 0;
            if (backup == QF_BACKUP_VARIATIONAL) {
                const Tree tree{m};
                for (const auto &st : demos[(size_t)r]) want += tree.log_pi(st[0], st[1], st[2]);
            } else {  // log pi = log beta(s,a) - log beta(s): sums over continuations by enumeration
                for (const auto &st : demos[(size_t)r]) {
                    InferProblem rest = pb;  // the steps left from t: a problem of horizon T - t
                    rest.T = pb.T - st[0];
                    rest.start.assign((size_t)pb.R() * pb.S, 0.0);
                    rest.start[(size_t)r * pb.S + st[1]] = 1.0;
                    const Enumerated e = enumerate(Tiny{rest, r}, QF_BACKUP_INFERENCE, nullptr);
                    // lz[a] = log beta_t(s, a): the trajectories of the remaining steps that start
                    // with a, each continuation enumerated from the outcome's next state
                    std::vector<double> lz;
                    for (int a = 0; a < pb.A; a++) {
                        double sum = 0;
                        for (const qf_outcome &o : Tiny{rest, r}.outs(st[1], a)) {
                            InferProblem tail = rest;
                            tail.T = rest.T - 1;
                            if (tail.T == 0 || o.terminal) {
                                sum += o.prob * std::exp(Tiny{rest, r}.reward(st[1], a, o) / m.alpha());
                                continue;
                            }
                            tail.start.assign((size_t)pb.R() * pb.S, 0.0);
                            tail.start[(size_t)r * pb.S + o.next] = 1.0;
                            sum += o.prob * std::exp(Tiny{rest, r}.reward(st[1], a, o) / m.alpha() +
                                                     enumerate(Tiny{tail, r}, QF_BACKUP_INFERENCE, nullptr).logZ);
                        }
                        lz.push_back(std::log(sum));
                    }
                    want += lz[(size_t)st[2]] - logsumexp(lz);
                    EXPECT_NEAR(logsumexp(lz), e.logZ, 1e-10);
                }
            }
            EXPECT_NEAR(ll[(size_t)r], want, 1e-10) << "backup " << backup << " run " << r;
        }
    }
}

// ---- isolation and checks ---------------------------------------------------------------------

// Run r alone gives the same bits as run r among runs with other temperatures and env seeds.
TEST(InferFleet, RunAloneEqualsRunInFleet) {
    CpuBackend cpu;
    InferProblem fleet = infer_make(QF_ENV_GRIDWORLD, grid(6, 0.2f), 9, {0.3, 1.0, 0.05, 2.0, 0.7}, 5);
    for (int r = 0; r < 5; r++) fleet.params[(size_t)r].gridworld.map_seed = 100 + r;
    for (int backup : {QF_BACKUP_INFERENCE, QF_BACKUP_VARIATIONAL}) {
        const InferResult all = infer_run(cpu.b, fleet, backup);
        ASSERT_EQ(all.rc, QF_OK) << all.err;
        for (int r : {0, 3}) {
            InferProblem one = fleet;
            one.params = {fleet.params[(size_t)r]};
            one.keys = {fleet.keys[2 * (size_t)r], fleet.keys[2 * (size_t)r + 1]};
            one.alpha = {fleet.alpha[(size_t)r]};
            const InferResult alone = infer_run(cpu.b, one, backup);
            ASSERT_EQ(alone.rc, QF_OK) << alone.err;
            const size_t nv = alone.v.size(), nm = alone.marg.size(), no = alone.occ.size();
            EXPECT_EQ(std::memcmp(alone.v.data(), all.v.data() + r * nv, nv * 8), 0) << "V, run " << r;
            EXPECT_EQ(std::memcmp(alone.marg.data(), all.marg.data() + r * nm, nm * 8), 0) << "marginals, run " << r;
            EXPECT_EQ(std::memcmp(alone.occ.data(), all.occ.data() + r * no, no * 8), 0) << "occupancy, run " << r;
        }
    }
}

TEST(InferChecks, BadProblemsAreRefusedWithTheRun) {
    CpuBackend cpu;
    InferProblem pb = infer_make(QF_ENV_CHAIN, chain(4, 0.1f), 5, {0.5, 0.0}, 2);
    InferResult res = infer_run(cpu.b, pb, QF_BACKUP_INFERENCE);
    EXPECT_EQ(res.rc, QF_ERR);
    EXPECT_NE(res.err.find("run 1 has alpha=0"), std::string::npos) << res.err;
    pb = infer_make(QF_ENV_CARTPOLE, infer_default_params(QF_ENV_CARTPOLE), 5, {0.5});
    pb.S = pb.A = 2;
    res = infer_run(cpu.b, pb, QF_BACKUP_INFERENCE);
    EXPECT_EQ(res.rc, QF_ERR);
    EXPECT_NE(res.err.find("not tabular"), std::string::npos) << res.err;
    pb = infer_make(QF_ENV_CHAIN, chain(4, 0.1f), 0, {0.5});
    res = infer_run(cpu.b, pb, QF_BACKUP_INFERENCE);
    EXPECT_EQ(res.rc, QF_ERR);
    EXPECT_NE(res.err.find("T >= 1"), std::string::npos) << res.err;
}

// ---- the command line -------------------------------------------------------------------------

// `qfleet infer`: says which problem it solved, prints both values and the gap, writes every file;
// a deterministic env has a zero gap. Non-tabular envs and bad temperatures are bad input (exit 2,
// no folder).
TEST(InferCli, PrintsBothBackupsAndWritesTheResults) {
    const std::string out = ::testing::TempDir() + "infer_cli";
    std::system(("rm -rf " + out).c_str());
    CliResult r = run_qfleet("infer env=deep_sea env.size=5 temperatures=0.5,2 backend=cpu out=" + out);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("finite horizon T=5 steps"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("optimism_gap"), std::string::npos) << r.out;
    for (const char *f : {"runs.csv", "marginals.csv", "visitation.csv", "summary.md", "config.txt"}) {
        FILE *fp = std::fopen((out + "/" + f).c_str(), "r");
        EXPECT_NE(fp, nullptr) << f;
        if (fp) std::fclose(fp);
    }
    // deterministic DeepSea: v_inference == v_variational in runs.csv (gap printed as 0)
    FILE *fp = std::fopen((out + "/runs.csv").c_str(), "r");
    ASSERT_NE(fp, nullptr);
    char line[512];
    ASSERT_NE(std::fgets(line, sizeof line, fp), nullptr);
    int rows = 0;
    while (std::fgets(line, sizeof line, fp)) {
        double vi = 0, vv = 0, gap = 1;
        // run,name,fleet,point,env,explore,env.map_seed,alpha,seed,status,horizon,v_inference,v_variational,gap,...
        ASSERT_EQ(std::sscanf(line, "%*d,deep_sea__inference__%*[^,],1,%*d,deep_sea,inference,\"%*d\",\"%*g\",%*d,finished,%*d,%lg,%lg,%lg",
                              &vi, &vv, &gap), 3) << line;
        EXPECT_NEAR(gap, 0.0, 1e-12 * (1 + std::fabs(vv))) << line;
        rows++;
    }
    std::fclose(fp);
    EXPECT_EQ(rows, 2);
    // the folder now holds results: a second run is refused (before any work), --overwrite replaces them
    r = run_qfleet("infer env=deep_sea env.size=5 temperatures=0.5 backend=cpu out=" + out);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("already holds results"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("optimism_gap"), std::string::npos) << "worked before refusing:\n" << r.out;
    r = run_qfleet("infer env=deep_sea env.size=5 temperatures=0.5 backend=cpu --overwrite out=" + out);
    EXPECT_EQ(r.code, 0) << r.out;
    const std::string bad = ::testing::TempDir() + "infer_cli_bad";
    std::system(("rm -rf " + bad).c_str());
    r = run_qfleet("infer env=mountain_car backend=cpu out=" + bad);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("tabular"), std::string::npos) << r.out;
    r = run_qfleet("infer env=chain temperatures=0.5,x backend=cpu out=" + bad);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("temperatures"), std::string::npos) << r.out;
    // a temperature given twice would make the same runs twice under one name: one line naming the key
    r = run_qfleet("infer env=chain temperatures=0.5,1,0.5 backend=cpu out=" + bad);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find("temperatures=0.5,1,0.5: the value 0.5 is given twice"), std::string::npos) << r.out;
    r = run_qfleet("infer env=chain temperatures=0.5,5e-1 backend=cpu out=" + bad);  // the same number
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("given twice"), std::string::npos) << r.out;
    r = run_qfleet("infer env=chain horizon=-1 backend=cpu out=" + bad);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("horizon=-1"), std::string::npos) << r.out;
    r = run_qfleet("infer env=chain demos=5 backend=cpu out=" + bad);  // a key of irl, not of infer
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("demos"), std::string::npos) << r.out;
    FILE *none = std::fopen((bad + "/runs.csv").c_str(), "r");
    EXPECT_EQ(none, nullptr) << "nothing written on bad input";
    if (none) std::fclose(none);
}
