// test_irl.cc — MaxEnt IRL (host/irl.c on the backend operations of kernels/infer.h) against
// independent truths:
// - the gradient (mu_demo - mu_psi) / alpha against central finite differences of the demos'
//   mean log-likelihood computed by a tree recursion over every continuation (deterministic
//   gridworld, where the two are the same function), and of the MCE dual
//   (psi . mu_demo - E V_0) / alpha (stochastic gridworld, where the log-likelihood differs by a
//   zero-mean term);
// - recovery on the gridworld with many demonstrations: the learned policy's feature expectations
//   are within the measured optimization gap plus a Hoeffding radius (false-failure probability
//   1e-6) of the demonstrator's exact ones, and its regret is below the demonstrator's regret plus
//   ||w||_1 times that distance (the reward is linear in the features);
// - isolation: a run alone equals the same run inside a fleet of runs with other learning rates,
//   demo counts and env seeds, bit for bit;
// - the demonstrations file: every malformed kind refused with file:line; `qfleet irl` exits 2
//   and writes nothing.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "envs/tabular.h"
#include "gpu_util.h"
#include "host/config.h"
#include "host/infer.h"
#include "infer_util.h"
#include "test_util.h"

namespace {

qf_env_params grid(int n, float slip, int seed = 3, int T = 4) {
    qf_env_params p = infer_default_params(QF_ENV_GRIDWORLD);
    p.gridworld.size = n;
    p.gridworld.slip = slip;
    p.gridworld.horizon = T;
    p.gridworld.map_seed = seed;
    return p;
}

// V_t(s) of the variational backup with reward table r [S][A], by a tree recursion.
struct Tree {
    const qf_env_params &p;
    const std::vector<double> &r;
    int S, A, T;
    double alpha;
    double V(int t, int s) const {
        if (t == T) return 0.0;
        double m = -INFINITY, sum = 0;
        std::vector<double> q;
        for (int a = 0; a < A; a++) q.push_back(Q(t, s, a));
        for (double x : q) m = std::max(m, x);
        for (double x : q) sum += std::exp((x - m) / alpha);
        return m + alpha * std::log(sum);
    }
    double Q(int t, int s, int a) const {
        qf_outcome o[QF_MAX_OUTCOMES];
        const int n = qf_env_outcomes(QF_ENV_GRIDWORLD, &p, 0, 0, s, a, o);
        double acc = 0;
        for (int j = 0; j < n; j++) acc += o[j].prob * (r[(size_t)s * A + a] + V(t + 1, o[j].next));
        return acc;
    }
};

struct Demo {
    int t, s, a;
};

// Expected feature counts mu_psi [F] from the start distribution of the demos, via the backend.
std::vector<double> expected_counts(qf_backend *b, const qf_env_params &p, int T, double alpha,
                                    const std::vector<double> &feat, int F, const std::vector<double> &psi,
                                    const std::vector<double> &start) {
    InferProblem pb = infer_make(QF_ENV_GRIDWORLD, p, T, {alpha}, 1, 0);
    pb.reward.assign((size_t)pb.S * pb.A, 0.0);
    for (int i = 0; i < pb.S * pb.A; i++)
        for (int k = 0; k < F; k++) pb.reward[(size_t)i] += feat[(size_t)i * F + k] * psi[(size_t)k];
    pb.start = start;
    const InferResult res = infer_run(b, pb, QF_BACKUP_VARIATIONAL);
    EXPECT_EQ(res.rc, QF_OK) << res.err;
    std::vector<double> mu((size_t)F, 0.0);
    for (int i = 0; i < pb.S * pb.A; i++)
        for (int k = 0; k < F; k++) mu[(size_t)k] += res.occ[(size_t)i] * feat[(size_t)i * F + k];
    return mu;
}

void gradient_check(float slip) {
    CpuBackend cpu;
    const int n = 3, T = 3;
    const double alpha = 0.7;
    const qf_env_params p = grid(n, slip, 9, T);
    const int S = n * n, A = 5, F = qf_irl_n_features(QF_ENV_GRIDWORLD, &p);
    std::vector<double> feat((size_t)S * A * F);
    qf_irl_features(QF_ENV_GRIDWORLD, &p, feat.data());
    // three demonstrations of T steps that follow the dynamics, from two start states
    const std::vector<std::vector<Demo>> demos = {{{0, 0, 3}, {1, 1, 1}, {2, 4, 4}},
                                                  {{0, 0, 1}, {1, 3, 3}, {2, 4, 3}},
                                                  {{0, 4, 4}, {1, 4, 0}, {2, 1, 2}}};
    std::vector<double> start((size_t)S, 0.0), mu_demo((size_t)F, 0.0);
    for (const auto &d : demos) {
        start[(size_t)d[0].s] += 1.0 / demos.size();
        for (const Demo &st : d)
            for (int k = 0; k < F; k++) mu_demo[(size_t)k] += feat[((size_t)st.s * A + st.a) * F + k] / demos.size();
    }
    std::vector<double> psi = {0.3, -0.7, 1.1, 0.2, -0.4, 0.9};
    ASSERT_EQ((int)psi.size(), F);
    const std::vector<double> mu = expected_counts(cpu.b, p, T, alpha, feat, F, psi, start);
    // the objective by enumeration: mean log-likelihood (deterministic) or the MCE dual (stochastic)
    auto objective = [&](const std::vector<double> &w) {
        std::vector<double> r((size_t)S * A, 0.0);
        for (int i = 0; i < S * A; i++)
            for (int k = 0; k < F; k++) r[(size_t)i] += feat[(size_t)i * F + k] * w[(size_t)k];
        const Tree tree{p, r, S, A, T, alpha};
        double j = 0;
        if (slip == 0.0f) {
            for (const auto &d : demos)
                for (const Demo &st : d) j += (tree.Q(st.t, st.s, st.a) - tree.V(st.t, st.s)) / alpha;
        } else {
            for (const auto &d : demos) {
                for (const Demo &st : d) j += r[(size_t)st.s * A + st.a] / alpha;
                j -= tree.V(0, d[0].s) / alpha;
            }
        }
        return j / demos.size();
    };
    const double h = 1e-5;
    for (int k = 0; k < F; k++) {
        std::vector<double> up = psi, dn = psi;
        up[(size_t)k] += h;
        dn[(size_t)k] -= h;
        const double fd = (objective(up) - objective(dn)) / (2 * h);
        const double g = (mu_demo[(size_t)k] - mu[(size_t)k]) / alpha;
        // central differences: O(h^2) truncation (third derivatives are O(T^3 / alpha^2) ~ 1e2,
        // so ~1e-8) plus rounding eps * |J| / h ~ 1e-10
        EXPECT_NEAR(g, fd, 1e-6 * (1 + std::fabs(fd))) << "feature " << k << " slip " << slip;
    }
    // the backend's Adam step reports the same gradient
    DevBuf<double> e(cpu.b, mu_demo), x(cpu.b, mu), al(cpu.b, std::vector<double>{alpha}),
        lr(cpu.b, std::vector<double>{0.1}), m(cpu.b, F), v(cpu.b, F), ps(cpu.b, psi), gr(cpu.b, F);
    ASSERT_EQ(cpu.b->irl_adam(cpu.b, 1, F, e.p, x.p, al.p, lr.p, 0, m.p, v.p, ps.p, gr.p), QF_OK);
    const std::vector<double> got = gr.get(), moved = ps.get();
    for (int k = 0; k < F; k++) {
        EXPECT_DOUBLE_EQ(got[(size_t)k], (mu_demo[(size_t)k] - mu[(size_t)k]) / alpha);
        // Adam's first step moves every weight by lr * sign(g) (to within eps / |g|)
        if (std::fabs(got[(size_t)k]) > 1e-3) {
            EXPECT_NEAR(moved[(size_t)k] - psi[(size_t)k], 0.1 * (got[(size_t)k] > 0 ? 1 : -1), 1e-4);
        }
    }
}

}  // namespace

TEST(IrlGradient, MatchesFiniteDifferencesOfTheDemoLogLikelihood) { gradient_check(0.0f); }
TEST(IrlGradient, MatchesFiniteDifferencesOfTheMceDualWithSlip) { gradient_check(0.3f); }

namespace {

struct Fleet {
    std::vector<qf_env_params> params;
    std::vector<uint32_t> keys;
    std::vector<double> alpha, lr, feat;
    std::vector<qf_demos> demos;
    int S = 0, A = 0, F = 0, T = 0;
    ~Fleet() {
        for (auto &d : demos) qf_demos_free(&d);
    }
};

// Run (env seed, lr, M) with demonstrations drawn from the soft-optimal policy at alpha.
void add_run(qf_backend *b, Fleet &fl, const qf_env_params &p, double alpha, double lr, int M, uint32_t seed) {
    const int T = p.gridworld.horizon;
    InferProblem pb = infer_make(QF_ENV_GRIDWORLD, p, T, {alpha}, 1, seed);
    const InferResult res = infer_run(b, pb, QF_BACKUP_VARIATIONAL);
    ASSERT_EQ(res.rc, QF_OK) << res.err;
    qf_demos d;
    ASSERT_EQ(qf_irl_draw_demos(QF_ENV_GRIDWORLD, &p, seed, 0, alpha, T, res.v.data(), M, &d), 0);
    fl.S = pb.S;
    fl.A = pb.A;
    fl.T = T;
    fl.F = qf_irl_n_features(QF_ENV_GRIDWORLD, &p);
    fl.params.push_back(p);
    fl.keys.push_back(seed);
    fl.keys.push_back(0);
    fl.alpha.push_back(alpha);
    fl.lr.push_back(lr);
    fl.demos.push_back(d);
    const size_t at = fl.feat.size();
    fl.feat.resize(at + (size_t)fl.S * fl.A * fl.F);
    qf_irl_features(QF_ENV_GRIDWORLD, &p, fl.feat.data() + at);
}

struct Trained {
    std::vector<double> psi;
    qf_irl_curves cv;
    int rc;
};

Trained train(qf_backend *b, const Fleet &fl, int iters, int log_every, std::vector<int> only = {}) {
    if (only.empty())
        for (size_t r = 0; r < fl.params.size(); r++) only.push_back((int)r);
    std::vector<qf_env_params> params;
    std::vector<uint32_t> keys;
    std::vector<double> alpha, lr, feat;
    std::vector<qf_demos> demos;
    const size_t per = (size_t)fl.S * fl.A * fl.F;
    for (int r : only) {
        params.push_back(fl.params[(size_t)r]);
        keys.push_back(fl.keys[2 * (size_t)r]);
        keys.push_back(fl.keys[2 * (size_t)r + 1]);
        alpha.push_back(fl.alpha[(size_t)r]);
        lr.push_back(fl.lr[(size_t)r]);
        demos.push_back(fl.demos[(size_t)r]);
        feat.insert(feat.end(), fl.feat.begin() + (long)(r * per), fl.feat.begin() + (long)((r + 1) * per));
    }
    qf_irl_setup in;
    std::memset(&in, 0, sizeof in);
    in.kind = QF_ENV_GRIDWORLD;
    in.R = (int32_t)only.size();
    in.T = fl.T;
    in.S = fl.S;
    in.A = fl.A;
    in.F = fl.F;
    in.params = params.data();
    in.keys = keys.data();
    in.alpha = alpha.data();
    in.lr = lr.data();
    in.feat = feat.data();
    in.demos = demos.data();
    in.iters = iters;
    in.log_every = log_every;
    Trained t;
    t.psi.resize((size_t)in.R * fl.F);
    char err[512] = "";
    t.rc = qf_irl_train(b, &in, t.psi.data(), &t.cv, err, sizeof err);
    EXPECT_EQ(t.rc, QF_OK) << err;
    return t;
}

}  // namespace

// With M = 2000 demonstrations the learned policy's feature expectations are within (optimization
// gap + Hoeffding radius) of the demonstrator's exact ones, and its regret within ||w||_1 times that
// of the demonstrator's regret. Two env seeds.
TEST(IrlRecovery, ManyDemosRecoverFeatureExpectationsAndValue) {
    CpuBackend cpu;
    Fleet fl;
    const double alpha = 0.5;
    const int M = 2000;
    for (int seed : {1, 2}) {
        qf_env_params p = grid(6, 0.2f, seed, 10);
        add_run(cpu.b, fl, p, alpha, 0.05, M, 11);
    }
    Trained t = train(cpu.b, fl, 300, 100);
    ASSERT_EQ(t.rc, QF_OK);
    const int R = 2, F = fl.F, T = fl.T, last = t.cv.n_logs - 1;
    for (int r = 0; r < R; r++) {
        const qf_env_params &p = fl.params[(size_t)r];
        // the demonstrator's exact feature expectations (env reward, from s0)
        InferProblem pb = infer_make(QF_ENV_GRIDWORLD, p, T, {alpha}, 1, 11);
        const InferResult ex = infer_run(cpu.b, pb, QF_BACKUP_VARIATIONAL);
        ASSERT_EQ(ex.rc, QF_OK);
        std::vector<double> mu_e((size_t)F, 0.0), psi(t.psi.begin() + r * F, t.psi.begin() + (r + 1) * F);
        const double *feat = fl.feat.data() + (size_t)r * fl.S * fl.A * F;
        for (int i = 0; i < fl.S * fl.A; i++)
            for (int k = 0; k < F; k++) mu_e[(size_t)k] += ex.occ[(size_t)i] * feat[(size_t)i * F + k];
        std::vector<double> start((size_t)fl.S, 0.0);
        start[0] = 1.0;
        const std::vector<double> mu = expected_counts(cpu.b, p, T, alpha, std::vector<double>(feat, feat + (size_t)fl.S * fl.A * F), F, psi, start);
        double dist = 0;
        for (int k = 0; k < F; k++) dist = std::max(dist, std::fabs(mu[(size_t)k] - mu_e[(size_t)k]));
        const double opt_gap = t.cv.gap[(size_t)last * R + r];
        const double hoeffding = T * std::sqrt(std::log(2.0 * F / 1e-6) / (2.0 * M));
        EXPECT_LE(dist, opt_gap + hoeffding) << "run " << r;
        std::printf("run %d: distance to the demonstrator's features %.4f (optimization gap %.4f + Hoeffding %.4f); "
                    "regret %.4f, demonstrator's %.4f\n", r, dist, opt_gap, hoeffding, t.cv.regret[(size_t)last * R + r],
                    t.cv.expert_regret[r]);
        // the optimizer made progress on its objective: the gap shrank from the start (psi = 0)
        EXPECT_LT(opt_gap, 0.5 * t.cv.gap[(size_t)r]) << "run " << r;
        double w1 = 0;
        for (int k = 0; k < F; k++) w1 += std::fabs((double)qf_gridworld_weight(&p.gridworld, k));
        // values under the linear reward: |V(pi_psi) - V(pi_E)| <= ||w||_1 * dist; the float sums
        // of the env reward add at most F * 2^-24 per step relative
        const double bound = t.cv.expert_regret[r] + w1 * dist + T * w1 * F * 6e-8;
        EXPECT_LE(t.cv.regret[(size_t)last * R + r], bound) << "run " << r;
        EXPECT_GE(t.cv.regret[(size_t)last * R + r], -1e-9) << "no policy beats the optimum";
    }
    qf_irl_curves_free(&t.cv);
}

// A run alone equals the same run inside a fleet of runs with other lrs, demo counts, env seeds.
TEST(IrlFleet, RunAloneEqualsRunInFleet) {
    CpuBackend cpu;
    Fleet fl;
    add_run(cpu.b, fl, grid(4, 0.2f, 1, 6), 0.5, 0.05, 20, 3);
    add_run(cpu.b, fl, grid(4, 0.2f, 2, 6), 0.8, 0.2, 50, 4);
    add_run(cpu.b, fl, grid(4, 0.2f, 3, 6), 0.5, 0.1, 7, 5);
    Trained all = train(cpu.b, fl, 30, 10), one = train(cpu.b, fl, 30, 10, {1});
    ASSERT_EQ(all.rc, QF_OK);
    ASSERT_EQ(one.rc, QF_OK);
    const int F = fl.F;
    EXPECT_EQ(std::memcmp(one.psi.data(), all.psi.data() + F, sizeof(double) * F), 0);
    ASSERT_EQ(one.cv.n_logs, all.cv.n_logs);
    for (int k = 0; k < one.cv.n_logs; k++) {
        EXPECT_EQ(one.cv.loglik[k], all.cv.loglik[(size_t)k * 3 + 1]);
        EXPECT_EQ(one.cv.gap[k], all.cv.gap[(size_t)k * 3 + 1]);
        EXPECT_EQ(one.cv.regret[k], all.cv.regret[(size_t)k * 3 + 1]);
    }
    qf_irl_curves_free(&all.cv);
    qf_irl_curves_free(&one.cv);
}

// ---- the demonstrations file --------------------------------------------------------------------

namespace {
std::string write_file(const std::string &name, const std::string &text) {
    const std::string path = ::testing::TempDir() + name;
    FILE *f = std::fopen(path.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return path;
}
}  // namespace

TEST(IrlDemosFile, ValidFileIsRead) {
    const std::string path = write_file("ok.csv", "episode,t,state,action\n0,0,0,3\n0,1,1,1\n1,0,0,4\n1,1,0,2\n");
    qf_demos d;
    char msg[512];
    ASSERT_EQ(qf_irl_read_demos(path.c_str(), 2, 4, 5, &d, msg, sizeof msg), 0) << msg;
    EXPECT_EQ(d.n_episodes, 2);
    EXPECT_EQ(d.n_steps, 4);
    EXPECT_EQ(d.episode_start[1], 2);
    EXPECT_EQ(d.action[1], 1);
    qf_demos_free(&d);
    // columns in another order
    const std::string p2 = write_file("ok2.csv", "state,action,episode,t\n2,1,0,0\n");
    ASSERT_EQ(qf_irl_read_demos(p2.c_str(), 2, 4, 5, &d, msg, sizeof msg), 0) << msg;
    EXPECT_EQ(d.state[0], 2);
    qf_demos_free(&d);
}

TEST(IrlDemosFile, EveryMalformedFileIsRefusedWithFileAndLine) {
    struct Bad {
        const char *text, *where, *what;
    };
    const Bad bad[] = {
        {"", ":1:", "empty"},
        {"episode,t,state\n0,0,0\n", ":1:", "missing column 'action'"},
        {"episode,t,state,action,x\n", ":1:", "unknown"},
        {"episode,t,state,action\n", ":1:", "no demonstration rows"},
        {"episode,t,state,action\n0,0,0,1\n0,1,9,1\n", ":3:", "state 9 is out of range"},
        {"episode,t,state,action\n0,0,0,5\n", ":2:", "action 5 is out of range"},
        {"episode,t,state,action\n0,0,0,x\n", ":2:", "not an integer"},
        {"episode,t,state,action\n0,0,0\n", ":2:", "not an integer"},
        {"episode,t,state,action\n0,0,0,1,\n", ":2:", "more than the header's 4 fields (a trailing comma?)"},
        {"episode,t,state,action\n0,0,0,1,7\n", ":2:", "more than the header's 4 fields"},
        {"episode,t,state,action\n0,0,0,1\n0,1,0,1\n0,2,0,1\n", ":4:", "longer than the horizon"},
        {"episode,t,state,action\n0,0,0,1\n0,0,0,1\n", ":3:", "follows t=0"},
        {"episode,t,state,action\n1,0,0,1\n", ":2:", "numbered 0, 1"},
        {"episode,t,state,action\n0,0,0,1\n\n", ":3:", "empty line"},
    };
    int i = 0;
    for (const Bad &b : bad) {
        const std::string path = write_file("bad" + std::to_string(i++) + ".csv", b.text);
        qf_demos d;
        char msg[512] = "";
        EXPECT_EQ(qf_irl_read_demos(path.c_str(), 2, 4, 5, &d, msg, sizeof msg), -1) << b.text;
        const std::string m = msg;
        EXPECT_NE(m.find(path + b.where), std::string::npos) << m;
        EXPECT_NE(m.find(b.what), std::string::npos) << m;
    }
    // a directory is named as such (not "empty"); found by a new-user trial
    qf_demos d;
    char msg[512] = "";
    EXPECT_EQ(qf_irl_read_demos("/tmp", 2, 4, 5, &d, msg, sizeof msg), -1);
    EXPECT_NE(std::string(msg).find("is a directory"), std::string::npos) << msg;
}

// The command: exit 2, one line naming file:line, and no results folder.
TEST(IrlCli, BadDemosFileExitsTwoAndWritesNothing) {
    const std::string path = write_file("cli_bad.csv", "episode,t,state,action\n0,0,99,1\n");
    const std::string out = ::testing::TempDir() + "irl_cli_out";
    const std::string cmd = std::string(QFLEET_BIN) + " irl env=gridworld backend=cpu demos_file=" + path +
                            " out=" + out + " 2>&1";
    FILE *pipe = popen(cmd.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string text;
    char buf[512];
    while (fgets(buf, sizeof buf, pipe)) text += buf;
    const int status = pclose(pipe);
    EXPECT_EQ(WEXITSTATUS(status), 2) << text;
    EXPECT_NE(text.find(path + ":2: state 99"), std::string::npos) << text;
    struct stat st;
    EXPECT_NE(stat(out.c_str(), &st), 0) << "nothing may be written";
    // a good run of the real program writes every file
    const std::string good = write_file("cli_good.csv", "episode,t,state,action\n0,0,0,3\n0,1,1,1\n0,2,2,4\n");
    const std::string out2 = ::testing::TempDir() + "irl_cli_good";
    std::system(("rm -rf " + out2).c_str());
    const std::string cmd2 = std::string(QFLEET_BIN) + " irl env=gridworld env.size=4 horizon=3 backend=cpu iters=5 "
                                                      "log_every=2 demos_file=" + good + " out=" + out2 + " 2>&1";
    pipe = popen(cmd2.c_str(), "r");
    text.clear();
    while (fgets(buf, sizeof buf, pipe)) text += buf;
    EXPECT_EQ(WEXITSTATUS(pclose(pipe)), 0) << text;
    for (const char *f : {"runs.csv", "curves.csv", "summary.md", "config.txt", "reward_map.csv"})
        EXPECT_EQ(stat((out2 + "/" + f).c_str(), &st), 0) << f;
    {  // its axes (env.map_seed, lr, demos) quoted, as every runs.csv writes them (docs/results-format.md)
        FILE *rf = std::fopen((out2 + "/runs.csv").c_str(), "r");
        ASSERT_NE(rf, nullptr);
        char row[1024] = "";
        ASSERT_NE(std::fgets(row, sizeof row, rf), nullptr);
        ASSERT_NE(std::fgets(row, sizeof row, rf), nullptr);
        std::fclose(rf);
        int seed = -1, demos = -1;
        double lr = 0;
        ASSERT_EQ(std::sscanf(std::strstr(row, ",maxent_irl,"), ",maxent_irl,\"%d\",\"%lg\",\"%d\",", &seed, &lr, &demos), 3)
            << row;
        EXPECT_EQ(demos, 1) << row;  // the file's one episode
    }
    // demos= beside demos_file= would do nothing (the file's episodes are the demonstrations): refused
    const std::string out3 = ::testing::TempDir() + "irl_cli_both";
    std::system(("rm -rf " + out3).c_str());
    pipe = popen((std::string(QFLEET_BIN) + " irl env=gridworld backend=cpu demos=4,8 demos_file=" + good + " out=" +
                  out3 + " 2>&1").c_str(), "r");
    text.clear();
    while (fgets(buf, sizeof buf, pipe)) text += buf;
    EXPECT_EQ(WEXITSTATUS(pclose(pipe)), 2) << text;
    EXPECT_NE(text.find("would do nothing"), std::string::npos) << text;
    EXPECT_NE(stat(out3.c_str(), &st), 0) << "nothing may be written";
    // an episode shorter than the horizon that does not end in a terminal transition: the error names
    // the line where it ends (episode 1 is the rows on lines 5-6; a 4x4 gridworld has no terminal
    // state next to states 5 and 6); found by a new-user trial
    const std::string shortep = write_file("cli_short.csv", "episode,t,state,action\n0,0,0,3\n0,1,1,1\n0,2,2,4\n"
                                                            "1,0,5,1\n1,1,6,1\n");
    const std::string out4 = ::testing::TempDir() + "irl_cli_short";
    std::system(("rm -rf " + out4).c_str());
    pipe = popen((std::string(QFLEET_BIN) + " irl env=gridworld env.size=4 horizon=3 backend=cpu iters=5 demos_file=" +
                  shortep + " out=" + out4 + " 2>&1").c_str(), "r");
    text.clear();
    while (fgets(buf, sizeof buf, pipe)) text += buf;
    EXPECT_EQ(WEXITSTATUS(pclose(pipe)), 2) << text;
    EXPECT_NE(text.find(shortep + ":6: episode 1 ends here after 2 steps"), std::string::npos) << text;
    EXPECT_NE(stat(out4.c_str(), &st), 0) << "nothing may be written";
    // a state the env cannot reach from the previous step (4x4 gridworld, row-major: from state 1
    // a move or a slip reaches 0, 2, 5 or 1 itself, never 9, two rows down): refused with the line
    // of the impossible state and what was reachable; found by a new-user trial
    const std::string jump = write_file("cli_jump.csv", "episode,t,state,action\n0,0,0,3\n0,1,1,1\n0,2,9,4\n");
    const std::string out5 = ::testing::TempDir() + "irl_cli_jump";
    std::system(("rm -rf " + out5).c_str());
    pipe = popen((std::string(QFLEET_BIN) + " irl env=gridworld env.size=4 horizon=3 backend=cpu iters=5 demos_file=" +
                  jump + " out=" + out5 + " 2>&1").c_str(), "r");
    text.clear();
    while (fgets(buf, sizeof buf, pipe)) text += buf;
    EXPECT_EQ(WEXITSTATUS(pclose(pipe)), 2) << text;
    EXPECT_NE(text.find(jump + ":4: state 9 cannot follow state 1 under action 1"), std::string::npos) << text;
    const size_t at = text.find("reachable without ending the episode: ");
    ASSERT_NE(at, std::string::npos) << text;
    std::set<int> reach;
    for (const char *p = text.c_str() + at + 38; *p && *p != ')'; p++)
        if (*p >= '0' && *p <= '9') reach.insert((int)std::strtol(p, (char **)&p, 10)), p--;
    EXPECT_EQ(reach, (std::set<int>{0, 1, 2, 5})) << text;
    EXPECT_NE(stat(out5.c_str(), &st), 0) << "nothing may be written";
}

// expert_regret with demos_file=: the file's demonstrator is known only by its episodes, so its value
// is their mean env-reward return. DeepSea-4 by hand: always right returns 1 - move_cost (4 right moves
// of move_cost / 4 each, +1 at the bottom right) = V*(s0); always left returns 0. A file with one
// episode of each: expert_regret = V* - (V* + 0) / 2 = V* / 2, and V* = 0.99. (Before, it reported the
// regret of the built-in soft-optimal demonstrator whatever the file held.) The right action of each
// cell comes from the env's dynamics (the action whose outcome has a reward: every right move costs).
TEST(IrlCli, ExpertRegretOfADemosFileIsFromItsEpisodes) {
    qf_config c;
    qf_config_default(&c);
    std::vector<std::string> words = {"env=deep_sea", "env.size=4"};
    std::vector<char *> argv;
    for (auto &w : words) argv.push_back(&w[0]);
    char msg[512];
    ASSERT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    const int N = 4;
    std::string csv = "episode,t,state,action\n";
    for (int ep = 0; ep < 2; ep++) { // 0: always right (the diagonal), 1: always left (column 0)
        for (int row = 0; row < N; row++) {
            const int col = ep == 0 ? row : 0, s = row * N + col;
            int act = -1;
            for (int a = 0; a < 2; a++) {
                qf_outcome o[QF_MAX_OUTCOMES] = {};
                const int n = qf_env_outcomes(QF_ENV_DEEP_SEA, &c.env_params, 0, 0, s, a, o);
                ASSERT_EQ(n, 1);
                // a right move pays -move_cost / N (or 1 - that in the last column), a left one 0
                const bool right = o[0].reward != 0.0f;
                if (right == (ep == 0)) act = a;
            }
            ASSERT_GE(act, 0);
            csv += std::to_string(ep) + "," + std::to_string(row) + "," + std::to_string(s) + "," + std::to_string(act) + "\n";
        }
    }
    const std::string path = write_file("cli_deep_sea.csv", csv);
    const std::string out = ::testing::TempDir() + "irl_cli_expert";
    std::system(("rm -rf " + out).c_str());
    CliResult r = run_qfleet("irl env=deep_sea env.size=4 backend=cpu iters=3 demos_file=" + path + " out=" + out);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("demonstrations' mean env-reward return"), std::string::npos) << r.out;
    FILE *f = std::fopen((out + "/runs.csv").c_str(), "r");
    ASSERT_NE(f, nullptr);
    char head[2048], row[2048];
    ASSERT_NE(std::fgets(head, sizeof head, f), nullptr);
    ASSERT_NE(std::fgets(row, sizeof row, f), nullptr);
    std::fclose(f);
    auto cell = [&](const std::string &name) -> double {
        std::vector<std::string> h, v;
        std::string cur;
        for (const char *p = head; *p && *p != '\n'; p++) {
            if (*p == ',') h.push_back(cur), cur.clear();
            else cur += *p;
        }
        h.push_back(cur), cur.clear();
        for (const char *p = row; *p && *p != '\n'; p++) {
            if (*p == ',') v.push_back(cur), cur.clear();
            else cur += *p;
        }
        v.push_back(cur);
        for (size_t i = 0; i < h.size() && i < v.size(); i++)
            if (h[i] == name) return std::atof(v[i].c_str());
        ADD_FAILURE() << "no column " << name << " in " << head;
        return NAN;
    };
    const double v_star = cell("v_star"), expert = cell("expert_regret");
    const double want_v = 1.0 - (double)c.env_params.deep_sea.move_cost; // 0.99
    // rewards are floats (move_cost / N rounded once per step): a few float ulps of 1
    EXPECT_NEAR(v_star, want_v, 1e-6);
    EXPECT_NEAR(expert, want_v / 2.0, 1e-6);
}
