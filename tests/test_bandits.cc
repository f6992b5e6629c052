// test_bandits.cc — bandits at scale on the CPU backend, against independent truths: UCB1 under its
// published bound, Thompson sampling far below UCB1, epsilon-greedy's exact linear regret rate, the
// whole regret curves of every strategy against an independent numpy simulation
// (tests/bandit_sim.py), the Beta sampler against its closed-form moments, the portable exp, a run
// alone equal to the same run inside a fleet, and `qfleet bandits` end to end (results, bad input).
// Fixed seeds; every band comes from standard errors.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "host/bandits.h"
#include "test_util.h"

namespace {

const int kStrategies[4] = {QF_BANDIT_EPSILON, QF_BANDIT_UCB1, QF_BANDIT_THOMPSON, QF_BANDIT_BOLTZMANN};

qf_config bandit_config(std::vector<std::string> words) {
    qf_config c;
    qf_config_default(&c);
    words.insert(words.begin(), "env=bandit");
    std::vector<char *> argv;
    for (auto &w : words) argv.push_back(&w[0]);
    char msg[512];
    EXPECT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    return c;
}

// Per-instance pseudo-regret of each strategy (S blocks of seeds*E) at each checkpoint.
struct FleetRegret {
    int32_t S = 0, per = 0;
    std::map<int64_t, std::vector<double>> at; // step -> regret [R*E]
    double mean(int i, int64_t step) const {
        const double *x = at.at(step).data() + (size_t)i * per;
        double s = 0;
        for (int j = 0; j < per; j++) s += x[j];
        return s / per;
    }
    double se(int i, int64_t step) const {
        const double *x = at.at(step).data() + (size_t)i * per;
        const double m = mean(i, step);
        double ss = 0;
        for (int j = 0; j < per; j++) ss += (x[j] - m) * (x[j] - m);
        return std::sqrt(ss / (per - 1) / per);
    }
};

FleetRegret run_fleet(qf_backend *b, const qf_config &cfg, const std::vector<int64_t> &checkpoints) {
    FleetRegret out;
    qf_bandits bf;
    int bad = 0;
    char err[512];
    EXPECT_EQ(qf_bandits_create(&bf, b, &cfg, &bad, err, sizeof err), QF_OK) << err;
    out.S = bf.S;
    out.per = bf.seeds * bf.E;
    for (int64_t t : checkpoints) {
        EXPECT_EQ(qf_bandits_run(&bf, t, err, sizeof err), QF_OK) << err;
        std::vector<double> r((size_t)bf.R * bf.E);
        EXPECT_EQ(qf_bandits_regret(&bf, r.data(), nullptr, err, sizeof err), QF_OK) << err;
        out.at[t] = r;
    }
    qf_bandits_destroy(&bf);
    return out;
}

const int64_t kT = 10000;
const int kE = 2048;
const std::vector<int64_t> kChecks = {100, 1000, 2500, 5000, 10000};

qf_config paper_config(const std::string &strategies = "epsilon,ucb1,thompson,boltzmann") {
    return bandit_config({"env.probs=[0.9,0.8,0.7]", "envs=" + std::to_string(kE), "seed=1",
                          "strategies=" + strategies, "bandit_eps=0.1", "bandit_temp=0.1"});
}

// Means as the environment uses them (float) and their gaps.
std::vector<double> float_means() { return {(double)0.9f, (double)0.8f, (double)0.7f}; }

TEST(Bandits, PublishedBoundsAndRates) {
    CpuBackend cpu;
    const qf_config cfg = paper_config("epsilon,ucb1,thompson");
    FleetRegret fr = run_fleet(cpu.b, cfg, {kT / 4, kT / 2, kT});
    ASSERT_EQ(fr.S, 3);
    const std::vector<double> mu = float_means();
    const double bound = qf_ucb1_bound(mu.data(), 3, kT);
    EXPECT_NEAR(bound, 8 * (std::log(1e4) / 0.1 + std::log(1e4) / 0.2) + (1 + M_PI * M_PI / 3) * 0.3, 0.01);

    // UCB1 (Auer et al. 2002, Thm 1): expected regret below the bound
    const double ucb = fr.mean(1, kT), ucb_se = fr.se(1, kT);
    EXPECT_LT(ucb + 4 * ucb_se, bound) << "UCB1 regret " << ucb << " +- " << ucb_se;
    // Thompson sampling: far below UCB1
    const double ts = fr.mean(2, kT), ts_se = fr.se(2, kT);
    EXPECT_LT(ts + 4 * ts_se, 0.5 * (ucb - 4 * ucb_se)) << "Thompson " << ts << " vs UCB1 " << ucb;

    // epsilon-greedy with fixed eps: once the greedy arm is the best one, regret grows by
    // eps * mean_a(Delta_a) per step (the exploring pull is uniform over all K arms).
    const double eps = (double)0.1f; // the coin: u01 (24 bits) < 0.1f
    const double rate = eps * ((mu[0] - mu[1]) + (mu[0] - mu[2])) / 3.0;
    const double *r4 = fr.at[kT / 4].data(), *r2 = fr.at[kT / 2].data(), *r1 = fr.at[kT].data();
    double s = 0, ss = 0, d = 0, dd = 0;
    for (int j = 0; j < kE; j++) { // epsilon is strategy 0: instances [0, E)
        const double inc = (r1[j] - r2[j]) / (double)(kT / 2);
        s += inc;
        ss += inc * inc;
        const double lin = (r1[j] - r2[j]) - 2 * (r2[j] - r4[j]); // 0 in expectation when linear
        d += lin;
        dd += lin * lin;
    }
    const double slope = s / kE, slope_se = std::sqrt((ss / kE - slope * slope) / (kE - 1));
    const double lin = d / kE, lin_se = std::sqrt((dd / kE - lin * lin) / (kE - 1));
    // late greedy mistakes (arm 2 or 3 estimated best) can only add regret: 1% allowance above
    EXPECT_GT(slope, rate - 4 * slope_se) << "slope " << slope << " +- " << slope_se << ", rate " << rate;
    EXPECT_LT(slope, rate * 1.01 + 4 * slope_se) << "slope " << slope << " +- " << slope_se << ", rate " << rate;
    // linear growth: the regret gained over [T/2, T] is twice that over [T/4, T/2]
    EXPECT_LT(std::fabs(lin), 4 * lin_se + 0.02 * rate * (kT / 2))
        << "[T/2,T] minus 2x[T/4,T/2]: " << lin << " +- " << lin_se;
    const double ratio = fr.mean(0, kT) / fr.mean(0, kT / 2);
    std::printf("epsilon: slope %.6g +- %.2g (rate %.6g), R(T)/R(T/2) = %.4g (the initial transient keeps it "
                "below 2); UCB1 %.4g +- %.2g (bound %.5g); Thompson %.4g +- %.2g\n",
                slope, slope_se, rate, ratio, ucb, ucb_se, bound, ts, ts_se);
    EXPECT_GT(ratio, 1.7);
    EXPECT_LT(ratio, 2.0 + 4 * slope_se);
}

// A python3 that can import numpy, or "" (with the interpreters tried in why).
std::string python_with_numpy(std::string *why) {
    for (const char *py : {"python3", "/usr/bin/python3"}) {
        const std::string cmd = std::string(py) + " -c 'import numpy' >/dev/null 2>&1";
        if (std::system(cmd.c_str()) == 0) return py;
        *why += std::string(*why == "" ? "" : ", ") + py;
    }
    return "";
}

TEST(Bandits, RegretCurvesAgreeWithAnIndependentSimulation) {
    std::string tried;
    const std::string py = python_with_numpy(&tried);
    if (py.empty())
        GTEST_SKIP() << "no python3 with numpy (tried " << tried << "); install python3-numpy to run the "
                     << "comparison with tests/bandit_sim.py";
    std::string checks;
    for (int64_t t : kChecks) checks += (checks.empty() ? "" : ",") + std::to_string(t);
    const std::string cmd = py + " " + QFLEET_SOURCE_DIR + "/tests/bandit_sim.py --probs 0.9,0.8,0.7 --steps " +
                            std::to_string(kT) + " --instances " + std::to_string(kE) + " --checkpoints " +
                            checks + " --eps 0.1 --temp 0.1 --seed 12345 2>&1";
    FILE *p = popen(cmd.c_str(), "r"); // the simulation runs while the fleet does
    ASSERT_NE(p, nullptr) << cmd;
    CpuBackend cpu;
    FleetRegret fr = run_fleet(cpu.b, paper_config(), kChecks);
    std::string text;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, got);
    ASSERT_EQ(pclose(p), 0) << cmd << "\n" << text;

    std::map<std::pair<std::string, int64_t>, std::pair<double, double>> sim;
    std::istringstream in(text);
    std::string line;
    std::getline(in, line);
    ASSERT_EQ(line, "strategy,step,mean_regret,stderr_regret") << text;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string name, step, m, se;
        std::getline(ls, name, ',');
        std::getline(ls, step, ',');
        std::getline(ls, m, ',');
        std::getline(ls, se, ',');
        sim[{name, std::stoll(step)}] = {std::stod(m), std::stod(se)};
    }
    for (int i = 0; i < 4; i++) {
        const std::string name = qf_bandit_strategy_name(kStrategies[i]);
        for (int64_t t : kChecks) {
            ASSERT_TRUE(sim.count({name, t})) << name << " at " << t << " missing from\n" << text;
            const auto [sm, sse] = sim[{name, t}];
            const double m = fr.mean(i, t), se = fr.se(i, t);
            const double tol = 4 * std::sqrt(se * se + sse * sse) + 0.01 * std::fabs(sm) + 0.05;
            EXPECT_NEAR(m, sm, tol) << name << " at step " << t << ": qfleet " << m << " +- " << se << ", numpy "
                                    << sm << " +- " << sse;
            if (t == kT)
                std::printf("%-9s T=%lld: qfleet %8.4g +- %.2g   numpy %8.4g +- %.2g\n", name.c_str(),
                            (long long)t, m, se, sm, sse);
        }
    }
}

TEST(Bandits, BetaSamplerMatchesClosedFormMoments) {
    const double cases[][2] = {{1, 1}, {2, 5}, {0.5, 0.5}, {0.3, 2}, {30, 10}, {1000, 9000}};
    const int n = 200000;
    for (int c = 0; c < 6; c++) {
        const double a = cases[c][0], b = cases[c][1];
        qf_rng g = qf_rng_make(7, (uint32_t)c, QF_STREAM_BANDIT, 0, 0);
        std::vector<double> x(n);
        double s = 0;
        for (int i = 0; i < n; i++) {
            x[i] = qf_beta((float)a, (float)b, &g);
            ASSERT_TRUE(x[i] >= 0 && x[i] <= 1) << x[i];
            s += x[i];
        }
        const double m = s / n;
        double m2 = 0, m4 = 0;
        for (double v : x) {
            m2 += (v - m) * (v - m);
            m4 += std::pow(v - m, 4);
        }
        m2 /= n - 1;
        m4 /= n;
        const double mean = a / (a + b), var = a * b / ((a + b) * (a + b) * (a + b + 1));
        EXPECT_NEAR(m, mean, 5 * std::sqrt(var / n)) << "Beta(" << a << ", " << b << ") mean";
        EXPECT_NEAR(m2, var, 5 * std::sqrt((m4 - m2 * m2) / n) + 1e-3 * var) << "Beta(" << a << ", " << b << ") variance";
    }
}

TEST(Bandits, PortableExpIsAccurate) {
    for (double x = -87.0; x <= 88.5; x += 0.01234) {
        const double want = std::exp(x), got = qf_expf((float)x);
        EXPECT_NEAR(got, std::exp((double)(float)x), 4e-7 * want) << "x=" << x;
    }
    EXPECT_EQ(qf_expf(0.0f), 1.0f);
    EXPECT_EQ(qf_expf(-100.0f), 0.0f);
    EXPECT_TRUE(std::isinf(qf_expf(100.0f)));
}

TEST(Bandits, ARunAloneEqualsTheSameRunInsideTheFleet) {
    CpuBackend cpu;
    for (const char *probs : {"env.probs=[0.9,0.8,0.7]", "env.arms=7"}) {
        const qf_config all = bandit_config({probs, "envs=300", "seeds=2", "seed=4"});
        qf_bandits big, one;
        int bad;
        char err[512];
        ASSERT_EQ(qf_bandits_create(&big, cpu.b, &all, &bad, err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_bandits_run(&big, 400, err, sizeof err), QF_OK) << err;
        const int64_t N = (int64_t)big.R * big.E;
        std::vector<int32_t> pb((size_t)(N * big.K));
        std::vector<double> rb((size_t)N);
        ASSERT_EQ(qf_bandits_regret(&big, rb.data(), pb.data(), err, sizeof err), QF_OK) << err;
        for (int i = 0; i < 4; i++) {
            qf_config c = bandit_config({probs, "envs=300", "seeds=2", "seed=4",
                                         std::string("strategies=") + qf_bandit_strategy_name(kStrategies[i])});
            ASSERT_EQ(qf_bandits_create(&one, cpu.b, &c, &bad, err, sizeof err), QF_OK) << err;
            ASSERT_EQ(qf_bandits_run(&one, 400, err, sizeof err), QF_OK) << err;
            const int64_t n1 = (int64_t)one.R * one.E;
            std::vector<int32_t> po((size_t)(n1 * one.K));
            std::vector<double> ro((size_t)n1);
            ASSERT_EQ(qf_bandits_regret(&one, ro.data(), po.data(), err, sizeof err), QF_OK) << err;
            for (int a = 0; a < one.K; a++)
                for (int64_t j = 0; j < n1; j++)
                    ASSERT_EQ(po[a * n1 + j], pb[a * N + i * n1 + j])
                        << qf_bandit_strategy_name(kStrategies[i]) << " " << probs << " arm " << a << " instance " << j;
            int64_t total = 0;
            for (int a = 0; a < one.K; a++) total += po[a * n1];
            EXPECT_EQ(total, 400);
            qf_bandits_destroy(&one);
        }
        qf_bandits_destroy(&big);
    }
}

std::string temp_dir(const std::string &tag) {
    return ::testing::TempDir() + "qfleet_bandits_" + tag + "_" + std::to_string(getpid());
}

TEST(BanditsCli, BadInputIsExitCode2WithOneLine) {
    expect_cli("bandits strategies=epsilon,ucb2 backend=cpu", 2, "'ucb2'");
    expect_cli("bandits strategies=ucb1,ucb1 backend=cpu", 2, "twice");
    expect_cli("bandits strategies= backend=cpu", 2, "bad value for strategies: empty");
    expect_cli("bandits env=cartpole backend=cpu", 2, "env=cartpole");
    expect_cli("bandits runs=4 backend=cpu", 2, "runs=4");
    expect_cli("bandits env.probs=[0.9,1.5] backend=cpu", 2, "env.probs");
    expect_cli("bandits bandit_temp=0 backend=cpu", 2, "bandit_temp");
    expect_cli("bandits steps=3000000000 backend=cpu", 2, "steps=3000000000");
    expect_cli("bandit backend=cpu", 2, "bandits");
}

std::string slurp(const std::string &path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

TEST(BanditsCli, TinyRunWritesTheTableAndTheCurves) {
    const std::string dir = temp_dir("tiny");
    CliResult r = run_qfleet("bandits env.probs=[0.9,0.8,0.7] envs=16 steps=200 log_every=50 backend=cpu out=" + dir);
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char *s : {"epsilon", "ucb1", "thompson", "boltzmann", "T=2 ", "T=20 ", "T=200", "UCB1 bound"})
        EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
    // curves.csv in the results format (docs/results-format.md): per log point, per run (one run per
    // strategy here), the run's mean pseudo-regret over its 16 instances
    const std::string csv = slurp(dir + "/curves.csv");
    std::istringstream in(csv);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "run,name,step,env_steps,metric,value");
    std::vector<std::string> rows;
    while (std::getline(in, line)) rows.push_back(line);
    const std::vector<int> steps = {2, 20, 50, 100, 150, 200}; // T/100, T/10, every 50, T
    ASSERT_EQ(rows.size(), 4 * steps.size()) << csv;
    const char *names[] = {"epsilon", "ucb1", "thompson", "boltzmann"};
    for (size_t i = 0; i < rows.size(); i++) {
        const int run = (int)(i % 4), step = steps[i / 4];
        const std::string want = std::to_string(run) + ",bandit__" + names[run] + "__seed0," + std::to_string(step) +
                                 "," + std::to_string(step * 16) + ",regret,";
        EXPECT_EQ(rows[i].rfind(want, 0), 0u) << rows[i] << " (want " << want << "...)";
        const double m = std::stod(rows[i].substr(want.size()));
        EXPECT_GE(m, 0.0);
        EXPECT_LE(m, 0.2 * step + 1e-6) << rows[i]; // at most max gap per pull
    }
    // runs.csv: one row per run, the runner's leading columns; the last point's regret
    const std::string runs = slurp(dir + "/runs.csv");
    std::istringstream rin(runs);
    std::getline(rin, line);
    EXPECT_EQ(line, "run,name,fleet,point,env,explore,seed,status,instances,arms,steps,regret,regret_stderr,ucb1_bound");
    for (int r = 0; r < 4; r++) {
        ASSERT_TRUE(std::getline(rin, line)) << runs;
        const std::string want = std::to_string(r) + ",bandit__" + names[r] + "__seed0,1," + std::to_string(r) +
                                 ",bandit," + names[r] + ",0,finished,16,3,200,";
        EXPECT_EQ(line.rfind(want, 0), 0u) << line << " (want " << want << "...)";
        const std::string last = rows[rows.size() - 4 + r];
        EXPECT_EQ(std::stod(line.substr(want.size())), std::stod(last.substr(last.rfind(',') + 1))) << line;
    }
    EXPECT_NE(slurp(dir + "/summary.md").find("UCB1 bound"), std::string::npos);
    const std::string config = slurp(dir + "/config.txt");
    EXPECT_NE(config.find("env=bandit\n"), std::string::npos) << config;
    EXPECT_NE(config.find("strategies=epsilon,ucb1,thompson,boltzmann\n"), std::string::npos) << config;
    struct stat st;
    EXPECT_NE(stat((dir + "/curves.csv.tmp").c_str(), &st), 0) << "temporary file left behind";

    // drawn means (no env.probs): no bound line; one strategy, two seeds
    const std::string dir2 = temp_dir("drawn");
    r = run_qfleet("bandits env.arms=5 strategies=thompson seeds=2 envs=8 steps=100 backend=cpu out=" + dir2);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.find("UCB1 bound"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("over 16 instances"), std::string::npos) << r.out;
    EXPECT_NE(slurp(dir2 + "/curves.csv").find("1,bandit__thompson__seed1,100,800,regret,"), std::string::npos);
    std::system(("rm -rf '" + dir + "' '" + dir2 + "'").c_str());
}

} // namespace
