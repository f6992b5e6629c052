// test_train.cc — the fleet trainer on the CPU backend: isolation (a run alone equals the same run
// inside a fleet of 64, bit for bit), divergence (a run poisoned with NaN is marked diverged and
// frozen while the others stay bit-identical to a clean fleet), and `qfleet train` end to end
// (results files, bad input).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "host/fleet.h"
#include "test_util.h"

namespace {


qf_config small_config(int kind, int runs) {
    qf_config c;
    qf_config_default(&c);
    const char *env = qf_env_spec_of(kind)->name;
    std::string e = std::string("env=") + env;
    std::vector<std::string> words = {e, "hidden=[16,16]", "batch=32", "buffer=500", "learning_starts=64",
                                      "envs=2", "log_every=50", "eps_steps=200", "target_every=20"};
    std::vector<char *> argv;
    for (auto &w : words) argv.push_back(&w[0]);
    char msg[512];
    EXPECT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    c.runs = runs;
    return c;
}

std::vector<float> params_of(qf_fleet &f) {
    std::vector<float> p((size_t)f.R * f.net.K * f.net.P);
    EXPECT_EQ(qf_fleet_get_params(&f, p.data()), QF_OK);
    return p;
}

TEST(Train, RunAloneEqualsTheSameRunInAFleetOf64) {
    CpuBackend cpu;
    for (int kind : {QF_ENV_CARTPOLE, QF_ENV_DEEP_SEA}) {
        qf_config big = small_config(kind, 64), one = small_config(kind, 1);
        std::vector<uint32_t> keys(2 * 64);
        for (int r = 0; r < 64; r++) {
            keys[2 * r] = 5;
            keys[2 * r + 1] = (uint32_t)r;
        }
        // per-run hyperparameters differ across the fleet: the run under test must not notice
        std::vector<qf_run_hp> hp(64);
        for (int r = 0; r < 64; r++) {
            qf_fleet_hp_from_config(&big, &hp[r]);
            hp[r].lr = 1e-3f * (float)(1 + r % 5);
            hp[r].gamma = 0.9f + 0.001f * (float)(r % 7);
        }
        const int who = 37;
        qf_fleet fleet, alone;
        char err[512];
        ASSERT_EQ(qf_fleet_create(&fleet, cpu.b, &big, hp.data(), keys.data(), err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_create(&alone, cpu.b, &one, &hp[who], &keys[2 * who], err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_train(&fleet, 100, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_train(&alone, 100, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        std::vector<float> pf = params_of(fleet), pa = params_of(alone);
        const size_t P = (size_t)alone.net.P;
        ASSERT_EQ(pa.size(), P);
        EXPECT_EQ(0, std::memcmp(pa.data(), pf.data() + who * P, P * sizeof(float)))
            << qf_env_spec_of(kind)->name << ": run " << who << " differs alone vs in the fleet";
        // and learning happened: parameters moved away from the initial ones
        qf_fleet fresh;
        ASSERT_EQ(qf_fleet_create(&fresh, cpu.b, &one, &hp[who], &keys[2 * who], err, sizeof err), QF_OK);
        std::vector<float> p0 = params_of(fresh);
        EXPECT_NE(0, std::memcmp(pa.data(), p0.data(), P * sizeof(float)));
        qf_fleet_destroy(&fresh);
        qf_fleet_destroy(&fleet);
        qf_fleet_destroy(&alone);
    }
}

TEST(Train, DivergedRunIsFrozenAndTheOthersAreUntouched) {
    CpuBackend cpu;
    qf_config c = small_config(QF_ENV_CARTPOLE, 4);
    qf_fleet clean, poisoned;
    char err[512];
    ASSERT_EQ(qf_fleet_create(&clean, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(qf_fleet_create(&poisoned, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(qf_fleet_train(&clean, 120, nullptr, nullptr, err, sizeof err), QF_OK);
    ASSERT_EQ(qf_fleet_train(&poisoned, 120, nullptr, nullptr, err, sizeof err), QF_OK);
    std::vector<float> p = params_of(poisoned);
    const size_t P = (size_t)poisoned.net.P;
    p[2 * P + 3] = NAN; // one weight of run 2
    ASSERT_EQ(qf_fleet_set_params(&poisoned, p.data()), QF_OK);
    std::vector<qf_log_point> last(4);
    auto keep = [](void *ctx, const qf_fleet *, const qf_log_point *pts) {
        std::memcpy(ctx, pts, sizeof(qf_log_point) * 4);
    };
    ASSERT_EQ(qf_fleet_train(&clean, 200, keep, last.data(), err, sizeof err), QF_OK);
    ASSERT_EQ(qf_fleet_train(&poisoned, 200, keep, last.data(), err, sizeof err), QF_OK);
    std::vector<float> pc = params_of(clean), pp = params_of(poisoned);
    for (int r : {0, 1, 3})
        EXPECT_EQ(0, std::memcmp(pc.data() + r * P, pp.data() + r * P, P * sizeof(float))) << "run " << r;
    EXPECT_EQ(last[2].status, QF_RUN_DIVERGED);
    EXPECT_EQ(last[0].status, QF_RUN_OK);
    EXPECT_GE(poisoned.diverged_at[2], 0) << "the step of divergence is recorded";
    EXPECT_EQ(poisoned.diverged_at[0], -1);
    // frozen: the diverged run's parameters no longer change
    std::vector<float> before = params_of(poisoned);
    ASSERT_EQ(qf_fleet_train(&poisoned, 50, nullptr, nullptr, err, sizeof err), QF_OK);
    std::vector<float> after = params_of(poisoned);
    EXPECT_EQ(0, std::memcmp(before.data() + 2 * P, after.data() + 2 * P, P * sizeof(float)));
    qf_fleet_destroy(&clean);
    qf_fleet_destroy(&poisoned);
}

// Tabular soft Q-learning (hidden=[], state-index input: the network is a Q table) on deterministic
// tabular MDPs converges to the soft-VI Q* of the exact solver. The behaviour is uniform random
// (eps = 1), which soft Q-learning, being off-policy, may use. Deterministic transitions make each
// target exact, so the only error left is Adam's jitter around the fixed point (steps of ~lr) plus
// the not-yet-propagated tail; tolerance: 0.03 * (1 + |Q*|).
void expect_converges_to_soft_vi(const char *env_words, double gamma, double alpha, int64_t steps) {
    CpuBackend cpu;
    qf_config c;
    qf_config_default(&c);
    std::string w = std::string(env_words) + " hidden=[] obs=index envs=16 batch=64 buffer=20000 " +
                    "learning_starts=256 eps_start=1 eps_end=1 lr=0.02 loss=squared tau=1 target_every=25 " +
                    "log_every=100000";
    std::vector<std::string> words;
    std::istringstream in(w);
    for (std::string t; in >> t;) words.push_back(t);
    std::vector<char *> argv;
    for (auto &x : words) argv.push_back(&x[0]);
    char msg[512];
    ASSERT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    c.gamma = gamma;
    c.alpha = alpha;
    c.runs = 2;
    qf_fleet f;
    char err[512];
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(qf_fleet_train(&f, steps, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    const int S = f.net.w[0], A = f.A;
    // the learned table: Q(s, .) for every state index, through the network itself
    std::vector<int32_t> xi((size_t)2 * S);
    for (int r = 0; r < 2; r++)
        for (int s = 0; s < S; s++) xi[(size_t)r * S + s] = s;
    std::vector<float> q((size_t)2 * S * A), acts(1);
    ASSERT_EQ(cpu.b->net_forward(cpu.b, &f.net, f.params, S, nullptr, xi.data(), acts.data(), q.data()), QF_OK);
    // the exact answer
    std::vector<double> qs((size_t)S * A), vs(S), g = {gamma}, a = {alpha};
    qf_solve_problem prob;
    prob.kind = c.env;
    prob.R = 1;
    prob.params = f.env.batch.params;
    prob.keys = f.env.batch.keys;
    prob.gamma = g.data();
    prob.alpha = a.data();
    prob.n_states = S;
    prob.n_actions = A;
    prob.max_iters = 100000;
    prob.tol = 1e-12;
    int32_t iters = 0;
    ASSERT_EQ(cpu.b->solve(cpu.b, &prob, qs.data(), vs.data(), &iters), QF_OK) << cpu.b->err;
    int compared = 0;
    for (int r = 0; r < 2; r++)
        for (int s = 0; s < S; s++) {
            if (c.env == QF_ENV_DEEP_SEA) { // cells reachable from the start (col <= row), not the null state
                const int n = c.env_params.deep_sea.size;
                if (s >= n * n || s % n > s / n) continue;
            }
            for (int act = 0; act < A; act++) {
                const double want = qs[(size_t)s * A + act], got = q[((size_t)r * S + s) * A + act];
                EXPECT_NEAR(got, want, 0.03 * (1.0 + std::fabs(want))) << env_words << " run " << r << " s=" << s << " a=" << act;
                compared++;
            }
        }
    EXPECT_GT(compared, 0);
    qf_fleet_destroy(&f);
}

TEST(TrainTabular, SoftQLearningOnChainConvergesToSoftVI) {
    expect_converges_to_soft_vi("env=chain env.size=5 env.slip=0 env.r_small=0.1", 0.9, 0.2, 2500);
}

TEST(TrainTabular, SoftQLearningOnDeepSeaConvergesToSoftVI) {
    expect_converges_to_soft_vi("env=deep_sea env.size=4", 1.0, 0.05, 2500);
}


std::string slurp(const std::string &path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

TEST(TrainCli, WritesConfigCurvesAndRuns) {
    const std::string dir = ::testing::TempDir() + "qfleet_train_cli";
    std::system(("rm -rf " + dir).c_str());
    CliResult r = run_qfleet("train env=chain env.size=5 backend=cpu runs=3 envs=2 steps=400 log_every=100 hidden=[] "
                   "learning_starts=50 batch=16 buffer=400 out=" + dir);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("return(last20)"), std::string::npos) << r.out;
    std::string cfg = slurp(dir + "/config.txt"), curves = slurp(dir + "/curves.csv"), runs = slurp(dir + "/runs.csv");
    EXPECT_NE(cfg.find("env=chain"), std::string::npos);
    EXPECT_NE(cfg.find("env.size=5"), std::string::npos);
    EXPECT_NE(cfg.find("hidden=[]"), std::string::npos);
    // only train's keys: none of bandits', irl's or infer's (host/config.c's table says who uses what)
    for (const char *other : {"\nbandit_eps=", "\ndemo_alpha=", "\ntemperatures=", "\nstrategies="})
        EXPECT_EQ(cfg.find(other), std::string::npos) << other << " in\n" << cfg;
    // the one results format (docs/results-format.md): long curves, one row per run
    EXPECT_EQ(curves.rfind("run,name,step,env_steps,metric,value\n", 0), 0u);
    EXPECT_EQ(runs.rfind("run,name,fleet,point,env,explore,run_copy,seed,status,", 0), 0u) << runs;
    EXPECT_EQ(std::count(runs.begin(), runs.end(), '\n'), 4) << runs;
    EXPECT_NE(runs.find("chain__epsilon__run=2__seed0"), std::string::npos) << runs;
    // 4 log points x 3 runs, each with its episode count
    size_t n_episode_rows = 0;
    for (size_t at = 0; (at = curves.find(",episodes,", at)) != std::string::npos; at++) n_episode_rows++;
    EXPECT_EQ(n_episode_rows, 12u) << curves;
    // chain: 400 steps x 2 envs / horizon 20 = 40 episodes per run
    EXPECT_NE(curves.find("\n0,chain__epsilon__run=0__seed0,400,800,episodes,40\n"), std::string::npos) << curves;
    EXPECT_NE(curves.find("\n2,chain__epsilon__run=2__seed0,400,800,episodes,40\n"), std::string::npos) << curves;
    // a second train into the same folder is refused (the results stay), --overwrite replaces them
    CliResult again = run_qfleet("train env=chain env.size=5 backend=cpu steps=50 envs=2 hidden=[] learning_starts=50 out=" + dir);
    EXPECT_EQ(again.code, 2) << again.out;
    EXPECT_NE(again.out.find("already holds results"), std::string::npos) << again.out;
    EXPECT_EQ(slurp(dir + "/runs.csv"), runs);
    CliResult over = run_qfleet("train env=chain env.size=5 backend=cpu steps=50 envs=2 hidden=[] learning_starts=50 "
                                "--overwrite out=" + dir);
    EXPECT_EQ(over.code, 0) << over.out;
    EXPECT_NE(slurp(dir + "/runs.csv"), runs);
    std::system(("rm -rf " + dir).c_str());
}

TEST(TrainCli, BadInput) {
    expect_cli("train env=cartpole obs=none steps=10", 2, "obs=none");
    expect_cli("train env=cartpole buffer=2 envs=4 steps=10", 2, "buffer=2");
    expect_cli("train hidden=[64,x]", 2, "bad value for hidden");
    expect_cli("train env=cartpole runs=1048576 buffer=1000000000 steps=1", 2, "GiB");
    expect_cli("train env=cartpole steps=5 out=/proc/qfleet_cannot_write_here", 1, "cannot create the results folder");
    // out= naming an existing file: refused before training, not after it (found by a new-user trial)
    const std::string file = "/tmp/qfleet_out_is_a_file_" + std::to_string(getpid());
    std::FILE *f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
    CliResult r = run_qfleet("train backend=cpu env=cartpole steps=5 out=" + file);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("cannot create the results folder " + file + ": Not a directory"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("run  seed"), std::string::npos) << "trained before checking the folder:\n" << r.out;
    std::remove(file.c_str());
}

}  // namespace
