// test_eval.cc — greedy evaluation episodes and parameter export / load, on the CPU backend.
// Truths: the exact value of the deterministic greedy policy (finite-horizon policy evaluation on
// the envs' tabular model, kernels' envs/tabular.h, and the exact solver's V*(s0)); for a stochastic
// env its mean and variance (a 6-sigma bar); training with and without evaluations bit for bit;
// numpy's own reading of params.npy (tests/params_q.py) against qfleet's Q-values; a load that gives
// back the exported bits; and every malformed file refused with exit code 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "envs/tabular.h"
#include "host/fleet.h"
#include "host/results.h"
#include "test_util.h"

namespace {

qf_config config_of(const std::vector<std::string> &words) {
    qf_config c;
    qf_config_default(&c);
    std::vector<std::string> w = words;
    std::vector<char *> argv;
    for (auto &s : w) argv.push_back(&s[0]);
    char msg[512];
    EXPECT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    return c;
}

std::vector<float> download(qf_fleet &f, const float *p) {
    std::vector<float> v((size_t)f.R * f.net.K * f.net.P);
    EXPECT_EQ(f.b->download(f.b, v.data(), p, sizeof(float) * v.size()), QF_OK);
    return v;
}

// The greedy action of run r in state s of a table fleet (hidden=[]; obs=index): argmax over a of
// the mean over the run's heads of W_k[s][a] + b_k[a] + prior_scale * (prior's), in the float
// operations of net_forward, add_prior and the act operation (first index of the maximum).
int greedy_action(const qf_fleet &f, const std::vector<float> &params, const std::vector<float> &prior, int r,
                  int s) {
    const int A = f.A, K = f.net.K;
    const qf_run_hp &h = f.hp_host[r];
    const int heads = h.explore == QF_EXPLORE_BOOTSTRAP ? h.n_heads : 1;
    std::vector<float> mean(A);
    for (int a = 0; a < A; a++) {
        float sum = 0.0f;
        for (int k = 0; k < heads; k++) {
            const float *w = &params[((size_t)r * K + k) * f.net.P];
            float q = w[f.net.off_w[0] + (int64_t)s * A + a] + w[f.net.off_b[0] + a];
            if (f.has_prior) {
                const float *p = &prior[((size_t)r * K + k) * f.net.P];
                q += h.prior_scale * (p[f.net.off_w[0] + (int64_t)s * A + a] + p[f.net.off_b[0] + a]);
            }
            sum += q;
        }
        mean[a] = heads > 1 ? sum / (float)heads : sum;
    }
    int best = 0;
    for (int a = 1; a < A; a++)
        if (mean[a] > mean[best]) best = a;
    return best;
}

// Mean and variance of the undiscounted return of a deterministic stationary policy over T steps
// from the start state, by backward induction on the env's outcomes (tabular.h):
// m1_t(s) = sum_o p_o (r_o + m1_{t+1}(s'_o)), m2_t(s) = sum_o p_o (r_o^2 + 2 r_o m1' + m2');
// a terminal outcome ends the episode.
void policy_return(int kind, const qf_env_params *p, uint32_t k0, uint32_t k1, int S, int T,
                   const std::vector<int> &pi, double *mean, double *var) {
    std::vector<double> m1(S + 1, 0.0), m2(S + 1, 0.0), n1(S + 1), n2(S + 1);
    for (int t = T - 1; t >= 0; t--) {
        for (int s = 0; s < S; s++) {
            qf_outcome out[QF_MAX_OUTCOMES];
            const int n = qf_env_outcomes(kind, p, k0, k1, s, pi[s], out);
            double a1 = 0.0, a2 = 0.0;
            for (int i = 0; i < n; i++) {
                const double r = out[i].reward;
                const double f1 = out[i].terminal ? 0.0 : m1[out[i].next];
                const double f2 = out[i].terminal ? 0.0 : m2[out[i].next];
                a1 += out[i].prob * (r + f1);
                a2 += out[i].prob * (r * r + 2.0 * r * f1 + f2);
            }
            n1[s] = a1;
            n2[s] = a2;
        }
        for (int s = 0; s < S; s++) {
            m1[s] = n1[s];
            m2[s] = n2[s];
        }
    }
    const int s0 = qf_env_start_state(kind, p);
    *mean = m1[s0];
    *var = m2[s0] - m1[s0] * m1[s0];
}

// ---------------------------------------------------------------------------------------------
// Greedy evaluation

TEST(Eval, DeepSeaGreedyReturnIsTheExactValueOfThePolicy) {
    CpuBackend cpu;
    for (const char *explore : {"epsilon", "bootstrap"}) {
        // bootstrap: 3 heads with randomized priors, evaluated on the mean of the heads
        qf_config c = config_of({"env=deep_sea", "env.size=10", "hidden=[]", "gamma=1", "runs=4",
                                 std::string("explore=") + explore, "eval_episodes=3"});
        if (std::string(explore) == "bootstrap") c.heads = 3;
        qf_fleet f;
        char err[512];
        ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        const int N = 10, S = f.net.w[0], A = f.A, K = f.net.K;
        ASSERT_EQ(A, 2);
        std::vector<float> params = download(f, f.params), prior;
        if (f.has_prior) prior = download(f, f.prior);
        // run 0: "right" everywhere (by the mapping), run 1: "left" everywhere, runs 2, 3: random
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (int r = 0; r < f.R; r++)
            for (int k = 0; k < K; k++) {
                float *w = &params[((size_t)r * K + k) * f.net.P];
                for (int64_t j = 0; j < f.net.P; j++) w[j] = r >= 2 ? u(rng) : 0.0f;
                if (r >= 2) continue;
                for (int s = 0; s < N * N; s++) {
                    const int right = qf_deep_sea_right_action(&c.env_params.deep_sea, f.keys_host[2 * r],
                                                               f.keys_host[2 * r + 1], s / N, s % N);
                    w[f.net.off_w[0] + (int64_t)s * A + (r == 0 ? right : 1 - right)] = 1000.0f; // beats any prior
                }
            }
        ASSERT_EQ(qf_fleet_set_params(&f, params.data()), QF_OK);
        std::vector<double> ret(f.R);
        ASSERT_EQ(qf_fleet_evaluate(&f, 3, ret.data(), err, sizeof err), QF_OK) << err;
        for (int r = 0; r < f.R; r++) {
            std::vector<int> pi(S);
            for (int s = 0; s < S; s++) pi[s] = greedy_action(f, params, prior, r, s);
            double mean, var;
            policy_return(c.env, &c.env_params, f.keys_host[2 * r], f.keys_host[2 * r + 1], S, N, pi, &mean, &var);
            EXPECT_NEAR(var, 0.0, 1e-12); // deterministic env and policy: every episode the same
            // float sums of N rewards against the double induction: a few ulp of 1
            EXPECT_NEAR(ret[r], mean, 1e-5) << explore << " run " << r;
        }
        // the right-everywhere policy is optimal: the exact solver's V*(s0) (undiscounted, hard max)
        EXPECT_NEAR(ret[0], f.v_star, 1e-5) << explore;
        EXPECT_NEAR(ret[0], 1.0 - 0.01, 1e-5); // bsuite: +1 at the end, N right moves of 0.01 / N
        EXPECT_EQ(ret[1], 0.0);                // left moves cost nothing and never reach the treasure
        qf_fleet_destroy(&f);
    }
}

TEST(Eval, BootstrapActsOnTheMeanOfItsHeads) {
    // head 0 prefers a = 1 by 0.1, head 1 prefers a = 0 by 0.2: the mean prefers a = 0 (a vote
    // would tie); a = 1 is "right" in DeepSea's mapping `ones`, so the return tells which was taken
    CpuBackend cpu;
    qf_config c = config_of({"env=deep_sea", "env.size=4", "env.mapping=ones", "hidden=[]", "explore=bootstrap",
                             "heads=2", "prior_scale=0", "eval_episodes=1"});
    qf_fleet f;
    char err[512];
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    std::vector<float> params = download(f, f.params);
    const int A = f.A;
    for (int k = 0; k < 2; k++) {
        float *w = &params[(size_t)k * f.net.P];
        for (int64_t j = 0; j < f.net.P; j++) w[j] = 0.0f;
        for (int s = 0; s < f.net.w[0]; s++) {
            w[f.net.off_w[0] + (int64_t)s * A + 1] = k == 0 ? 1.0f : 0.0f;
            w[f.net.off_w[0] + (int64_t)s * A + 0] = k == 0 ? 0.9f : 0.2f;
        }
    }
    ASSERT_EQ(qf_fleet_set_params(&f, params.data()), QF_OK);
    double ret;
    ASSERT_EQ(qf_fleet_evaluate(&f, 1, &ret, err, sizeof err), QF_OK) << err;
    EXPECT_EQ(ret, 0.0); // left all the way (head 0 alone would have earned 0.99)
    qf_fleet_destroy(&f);
}

TEST(Eval, StochasticChainMatchesThePolicysMeanReturn) {
    // slips make returns random: the mean of 4000 greedy episodes against the exact mean, within 6
    // standard errors (false failure probability about 2e-9 under the normal approximation)
    CpuBackend cpu;
    qf_config c = config_of({"env=chain", "env.size=6", "env.slip=0.3", "env.horizon=20", "hidden=[]", "runs=3"});
    qf_fleet f;
    char err[512];
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    std::vector<float> params = download(f, f.params), prior;
    const int S = f.net.w[0];
    for (int s = 0; s < S; s++) { // run 0: always right (reaches the far end); others: the random init
        params[f.net.off_w[0] + (int64_t)s * f.A + 1] = 10.0f;
        params[f.net.off_w[0] + (int64_t)s * f.A + 0] = -10.0f;
    }
    ASSERT_EQ(qf_fleet_set_params(&f, params.data()), QF_OK);
    const int n = 4000;
    std::vector<double> ret(f.R);
    ASSERT_EQ(qf_fleet_evaluate(&f, n, ret.data(), err, sizeof err), QF_OK) << err;
    for (int r = 0; r < f.R; r++) {
        std::vector<int> pi(S);
        for (int s = 0; s < S; s++) pi[s] = greedy_action(f, params, prior, r, s);
        double mean, var;
        policy_return(c.env, &c.env_params, f.keys_host[2 * r], f.keys_host[2 * r + 1], S, 20, pi, &mean, &var);
        if (r == 0) {
            EXPECT_GT(mean, 1.0); // the right policy collects the large reward several times
        }
        EXPECT_NEAR(ret[r], mean, 6.0 * std::sqrt(var / n) + 1e-5) << "run " << r << " var " << var;
    }
    // a second evaluation at another step draws other slips (its own counters), same policy
    const std::vector<double> first(f.eval.first, f.eval.first + n);
    f.t = 12345;
    std::vector<double> again(f.R);
    ASSERT_EQ(qf_fleet_evaluate(&f, n, again.data(), err, sizeof err), QF_OK) << err;
    EXPECT_NE(first, std::vector<double>(f.eval.first, f.eval.first + n));
    qf_fleet_destroy(&f);
}

// ---------------------------------------------------------------------------------------------
// Evaluations never change training

struct Logged {
    std::vector<qf_log_point> pts;
};
void keep(void *ctx, const qf_fleet *f, const qf_log_point *p) {
    auto *l = (Logged *)ctx;
    l->pts.insert(l->pts.end(), p, p + f->R);
}

TEST(Eval, TrainingIsBitIdenticalWithAndWithoutEvaluations) {
    CpuBackend cpu;
    const std::vector<std::vector<std::string>> cases = {
        {"env=chain", "env.slip=0.2", "hidden=[]", "explore=bootstrap", "heads=3"},
        {"env=deep_sea", "env.size=6", "explore=count", "hidden=[8]"},
        {"env=cartpole", "hidden=[16,16]", "explore=boltzmann", "alpha=0.1"},
    };
    for (const auto &words : cases) {
        std::vector<std::string> base = words;
        for (const char *w : {"runs=3", "envs=2", "batch=16", "buffer=400", "learning_starts=40", "log_every=25",
                              "target_every=10", "eps_steps=100"})
            base.push_back(w);
        std::vector<std::string> with = base;
        with.push_back("eval_every=50");
        with.push_back("eval_episodes=4");
        qf_config c0 = config_of(base), c1 = config_of(with);
        qf_fleet f0, f1;
        char err[512];
        ASSERT_EQ(qf_fleet_create(&f0, cpu.b, &c0, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_create(&f1, cpu.b, &c1, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        Logged l0, l1;
        ASSERT_EQ(qf_fleet_train(&f0, 160, keep, &l0, err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_train(&f1, 160, keep, &l1, err, sizeof err), QF_OK) << err;
        EXPECT_EQ(download(f0, f0.params), download(f1, f1.params)) << words[0];
        ASSERT_EQ(l0.pts.size(), l1.pts.size());
        for (size_t i = 0; i < l0.pts.size(); i++) {
            const qf_log_point &a = l0.pts[i], &b = l1.pts[i];
            EXPECT_TRUE(std::isnan(a.eval_return));
            // evaluated at 50, 100, 150 (log points at multiples of 25) and at the last point, 160
            const bool due = b.step % 50 == 0 || b.step == 160;
            EXPECT_EQ(!std::isnan(b.eval_return), due) << words[0] << " step " << b.step;
            // every field but the timing (SPS) and eval_return, NaN or bit for bit
            const double da[] = {a.episodic_return, a.episodic_length, a.td_loss, a.q_values, a.grad_norm, a.regret, a.intrinsic};
            const double db[] = {b.episodic_return, b.episodic_length, b.td_loss, b.q_values, b.grad_norm, b.regret, b.intrinsic};
            EXPECT_EQ(0, std::memcmp(da, db, sizeof da)) << words[0] << " log point " << i;
            const int64_t ia[] = {a.step, a.env_steps, a.episodes, a.new_episodes, a.first_treasure, a.solved_at,
                                  a.converged_at, a.distinct, a.status};
            const int64_t ib[] = {b.step, b.env_steps, b.episodes, b.new_episodes, b.first_treasure, b.solved_at,
                                  b.converged_at, b.distinct, b.status};
            EXPECT_EQ(0, std::memcmp(ia, ib, sizeof ia)) << words[0] << " log point " << i;
        }
        qf_fleet_destroy(&f0);
        qf_fleet_destroy(&f1);
    }
}

// the cells of one CSV line split at commas (no quoting: the files these tests read hold none in
// the cells they compare), a trailing empty cell included
std::vector<std::string> csv_cells(const std::string &line) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    return cells;
}

// the columns of a CSV file without the named ones
std::string csv_without(const std::string &path, const std::vector<std::string> &drop) {
    std::ifstream in(path);
    std::string line, out;
    std::vector<bool> keep_col;
    while (std::getline(in, line)) {
        const std::vector<std::string> cells = csv_cells(line);
        if (keep_col.empty())
            for (auto &c : cells) keep_col.push_back(std::find(drop.begin(), drop.end(), c) == drop.end());
        for (size_t i = 0; i < cells.size(); i++)
            if (i >= keep_col.size() || keep_col[i]) out += cells[i] + ",";
        out += "\n";
    }
    return out;
}

TEST(Eval, TrainCommandWritesTheSameRunsWithEvaluations) {
    const std::string dir = "/tmp/qfleet_eval_cli_" + std::to_string(getpid());
    const std::string args = "train backend=cpu env=chain hidden=[] runs=2 steps=300 log_every=50 "
                             "learning_starts=50 envs=2";
    CliResult a = run_qfleet(args + " out=" + dir + "/off");
    ASSERT_EQ(a.code, 0) << a.out;
    CliResult b = run_qfleet(args + " eval_every=100 eval_episodes=5 out=" + dir + "/on");
    ASSERT_EQ(b.code, 0) << b.out;
    const std::string runs_off = csv_without(dir + "/off/runs.csv", {"eval_return"});
    EXPECT_FALSE(runs_off.empty());
    EXPECT_EQ(runs_off, csv_without(dir + "/on/runs.csv", {"eval_return"}));
    // curves.csv (long format): the same rows but for the SPS timing, plus eval_return rows with it
    auto rows_without = [](const std::string &path, bool *has_eval) {
        std::ifstream in(path);
        std::string line, out;
        *has_eval = false;
        while (std::getline(in, line)) {
            const bool ev = line.find(",eval_return,") != std::string::npos;
            *has_eval |= ev;
            if (!ev && line.find(",SPS,") == std::string::npos) out += line + "\n";
        }
        return out;
    };
    bool eval_off, eval_on;
    const std::string curves_off = rows_without(dir + "/off/curves.csv", &eval_off);
    EXPECT_EQ(curves_off, rows_without(dir + "/on/curves.csv", &eval_on));
    EXPECT_FALSE(eval_off);
    EXPECT_TRUE(eval_on);
    EXPECT_GT(curves_off.size(), 100u);
    std::system(("rm -rf " + dir).c_str());
}

std::string slurp_file(const std::string &path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// The cells of a markdown table's rows: the header row that starts with `first`, then its rows.
std::vector<std::vector<std::string>> md_table(const std::string &text, const std::string &first) {
    std::vector<std::vector<std::string>> rows;
    std::stringstream in(text);
    std::string line;
    bool on = false;
    while (std::getline(in, line)) {
        if (!on && line.rfind(first, 0) != 0) continue;
        if (on && (line.empty() || line[0] != '|')) break;
        on = true;
        if (line.rfind("|---", 0) == 0) continue;
        std::vector<std::string> cells;
        std::stringstream ss(line.substr(1));
        std::string cell;
        while (std::getline(ss, cell, '|')) cells.push_back(cell.substr(1, cell.size() - 2));
        rows.push_back(cells);
    }
    return rows;
}

// runs.csv's column `name` per run (docs/results-format.md; names in this test hold no commas)
std::vector<std::string> csv_column(const std::string &path, const std::string &name) {
    std::ifstream in(path);
    std::string line;
    std::vector<std::string> out;
    int col = -1;
    while (std::getline(in, line)) {
        const std::vector<std::string> cells = csv_cells(line);
        if (col < 0) {
            col = (int)(std::find(cells.begin(), cells.end(), name) - cells.begin());
            if (col >= (int)cells.size()) return out;
        } else {
            out.push_back(col < (int)cells.size() ? cells[col] : "");
        }
    }
    return out;
}

// summary.md and the printed table show runs.csv's eval_return where evaluations ran (a new
// user's finding: it was only in the CSV files), and "-", never "nan", where a value does not apply:
// cartpole has no exact solve, so its regret is unknown (an empty cell in runs.csv).
TEST(Eval, SummaryShowsEvalReturnAndDashesWhereNothingApplies) {
    const std::string dir = "/tmp/qfleet_eval_md_" + std::to_string(getpid());
    const std::string args = "train backend=cpu env=cartpole runs=2 steps=300 envs=2 learning_starts=100";
    CliResult r = run_qfleet(args + " eval_every=100 eval_episodes=2 out=" + dir + "/on");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("eval_return"), std::string::npos) << r.out;
    const std::string md = slurp_file(dir + "/on/summary.md");
    EXPECT_EQ(md.find("nan"), std::string::npos) << md;
    const auto rows = md_table(md, "| run |");
    ASSERT_EQ(rows.size(), 3u) << md;
    const auto &head = rows[0];
    const size_t ev = std::find(head.begin(), head.end(), "eval_return") - head.begin();
    const size_t reg = std::find(head.begin(), head.end(), "regret") - head.begin();
    ASSERT_LT(ev, head.size()) << md;
    ASSERT_LT(reg, head.size()) << md;
    const auto csv_ev = csv_column(dir + "/on/runs.csv", "eval_return");
    const auto csv_reg = csv_column(dir + "/on/runs.csv", "regret");
    ASSERT_EQ(csv_ev.size(), 2u);
    for (int i = 0; i < 2; i++) {
        ASSERT_FALSE(csv_ev[i].empty()) << "run " << i << " evaluated";
        char want[32];
        std::snprintf(want, sizeof want, "%.4g", std::strtod(csv_ev[i].c_str(), nullptr));
        EXPECT_EQ(rows[1 + i][ev], want) << md;
        EXPECT_EQ(csv_reg[i], "") << "cartpole: no exact V*(s0), regret unknown";
        EXPECT_EQ(rows[1 + i][reg], "-") << md;
    }
    // without evaluations there is no eval_return column
    r = run_qfleet(args + " out=" + dir + "/off");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.find("eval_return"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
    EXPECT_EQ(md_table(slurp_file(dir + "/off/summary.md"), "| run |")[0].size(), head.size() - 1);
    // sweep: mean +- se per point, eval_return where evaluations ran, one seed: no "+- nan"
    r = run_qfleet("sweep backend=cpu env=cartpole steps=300 envs=2 learning_starts=100 eval_every=100 "
                   "eval_episodes=2 lr=1e-3,2e-3 out=" + dir + "/sweep");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
    const std::string smd = slurp_file(dir + "/sweep/summary.md");
    EXPECT_EQ(smd.find("nan"), std::string::npos) << smd;
    const auto srows = md_table(smd, "| point |");
    ASSERT_EQ(srows.size(), 3u) << smd;
    const size_t sev = std::find(srows[0].begin(), srows[0].end(), "eval_return") - srows[0].begin();
    const size_t sreg = std::find(srows[0].begin(), srows[0].end(), "regret") - srows[0].begin();
    ASSERT_LT(sev, srows[0].size()) << smd;
    const auto sweep_ev = csv_column(dir + "/sweep/runs.csv", "eval_return");
    ASSERT_EQ(sweep_ev.size(), 2u);
    for (int p = 0; p < 2; p++) {
        char want[32];
        std::snprintf(want, sizeof want, "%.4g", std::strtod(sweep_ev[p].c_str(), nullptr));
        EXPECT_EQ(srows[1 + p][sev], want) << smd;
        EXPECT_EQ(srows[1 + p][sreg], "-") << smd;
    }
    std::system(("rm -rf " + dir).c_str());
}

// ---------------------------------------------------------------------------------------------
// Parameter export and load

std::string python_with_numpy() {
    for (const char *py : {"python3", "/usr/bin/python3"})
        if (std::system((std::string(py) + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0) return py;
    return "";
}

// Q(x, .) of every head of run r by qfleet's own operations (forward, prior): [K][A]
std::vector<float> qfleet_q(qf_fleet &f, const float *x, int32_t xi) {
    qf_backend *b = f.b;
    const size_t G = (size_t)f.R * f.net.K, A = (size_t)f.A, H = f.net.H ? (size_t)f.net.H : 1;
    const size_t D = (size_t)f.net.w[0];
    float *dx = (float *)b->alloc(b, sizeof(float) * f.R * D);
    int32_t *di = (int32_t *)b->alloc(b, sizeof(int32_t) * f.R);
    float *q = (float *)b->alloc(b, sizeof(float) * G * A), *qp = (float *)b->alloc(b, sizeof(float) * G * A);
    float *acts = (float *)b->alloc(b, sizeof(float) * G * H);
    std::vector<float> xs((size_t)f.R * D), out(G * A);
    std::vector<int32_t> is(f.R, xi);
    for (int r = 0; r < f.R && !f.embed; r++) std::memcpy(&xs[r * D], x, sizeof(float) * D);
    EXPECT_EQ(b->upload(b, dx, xs.data(), sizeof(float) * xs.size()), QF_OK);
    EXPECT_EQ(b->upload(b, di, is.data(), sizeof(int32_t) * is.size()), QF_OK);
    EXPECT_EQ(b->net_forward(b, &f.net, f.params, 1, f.embed ? nullptr : dx, f.embed ? di : nullptr, acts, q), QF_OK);
    if (f.has_prior) {
        EXPECT_EQ(b->net_forward(b, &f.net, f.prior, 1, f.embed ? nullptr : dx, f.embed ? di : nullptr, acts, qp), QF_OK);
        EXPECT_EQ(b->add_prior(b, &f.net, f.hp, 1, q, qp), QF_OK);
    }
    EXPECT_EQ(b->download(b, out.data(), q, sizeof(float) * out.size()), QF_OK);
    for (void *p : {(void *)dx, (void *)di, (void *)q, (void *)qp, (void *)acts}) b->release(b, p);
    return out;
}

TEST(Params, NumpyRebuildsTheQValues) {
    const std::string py = python_with_numpy();
    if (py.empty()) GTEST_SKIP() << "no python3 with numpy (install python3-numpy)";
    CpuBackend cpu;
    const std::vector<std::vector<std::string>> cases = {
        {"env=cartpole", "hidden=[16,16]", "explore=bootstrap", "heads=3", "activation=gelu"},
        {"env=deep_sea", "env.size=5", "hidden=[8]", "runs=2"},
    };
    for (const auto &words : cases) {
        std::vector<std::string> w = words;
        for (const char *x : {"batch=16", "buffer=200", "learning_starts=20", "log_every=50", "envs=2"}) w.push_back(x);
        qf_config c = config_of(w);
        qf_fleet f;
        char err[512];
        ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_train(&f, 100, nullptr, nullptr, err, sizeof err), QF_OK) << err; // trained, not initial
        const std::string dir = "/tmp/qfleet_params_" + std::to_string(getpid());
        ASSERT_EQ(qf_mkdir_p(dir.c_str()), 0);
        ASSERT_EQ(qf_fleet_export_params(&f, dir.c_str(), nullptr, nullptr, err, sizeof err), 0) << err;
        const float obs[4] = {0.03f, -0.2f, 0.05f, 0.3f};
        const int32_t state = 7;
        std::vector<float> q = qfleet_q(f, obs, state);
        const int r = f.R - 1, A = f.A;
        const std::string input = f.embed ? std::to_string(state) : "0.03,-0.2,0.05,0.3";
        FILE *p = popen((py + " " + QFLEET_SOURCE_DIR + "/tests/params_q.py " + dir + " " + std::to_string(r) + " " +
                         input + " 2>&1").c_str(), "r");
        ASSERT_NE(p, nullptr);
        std::string text;
        char buf[4096];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, got);
        ASSERT_EQ(pclose(p), 0) << text;
        std::istringstream in(text);
        const int heads = f.hp_host[r].explore == QF_EXPLORE_BOOTSTRAP ? f.hp_host[r].n_heads : 1;
        for (int k = 0; k < heads; k++)
            for (int a = 0; a < A; a++) {
                double v;
                ASSERT_TRUE(in >> v) << text;
                // numpy in float64 from the same float32 parameters; qfleet in float32 (widths <= 16:
                // accumulation error ~1e-6 relative); 1e-4 leaves room for GELU's erf
                EXPECT_NEAR(q[((size_t)r * f.net.K + k) * A + a], v, 1e-4 * (1.0 + std::fabs(v)))
                    << words[0] << " head " << k << " action " << a;
            }
        double extra;
        EXPECT_FALSE(in >> extra) << "more heads than the run uses:\n" << text;

        // load into a fleet of another seed: the very same networks (and priors), bit for bit
        qf_config c2 = c;
        c2.seed = 99;
        qf_fleet g;
        ASSERT_EQ(qf_fleet_create(&g, cpu.b, &c2, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        EXPECT_NE(download(g, g.params), download(f, f.params));
        ASSERT_EQ(qf_fleet_load_params(&g, (dir + "/params.npy").c_str(), err, sizeof err), 0) << err;
        EXPECT_EQ(download(g, g.params), download(f, f.params));
        EXPECT_EQ(download(g, g.target), download(f, f.params));
        if (f.has_prior) {
            EXPECT_EQ(download(g, g.prior), download(f, f.prior));
        }
        qf_fleet_destroy(&g);
        qf_fleet_destroy(&f);
        std::system(("rm -rf " + dir).c_str());
    }
}

void write_file(const std::string &path, const std::string &bytes) {
    FILE *f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
}

// a v1.0 .npy file with this header dict and n data bytes
std::string npy_bytes(const std::string &dict, size_t n) {
    std::string h = dict;
    while ((10 + h.size() + 1) % 64) h += ' ';
    h += '\n';
    std::string out = std::string("\x93NUMPY\x01\x00", 8);
    out += (char)(h.size() & 255);
    out += (char)(h.size() >> 8);
    return out + h + std::string(n, '\0');
}

TEST(Params, LoadRefusesEveryMalformedFile) {
    const std::string dir = "/tmp/qfleet_load_" + std::to_string(getpid());
    ASSERT_EQ(qf_mkdir_p(dir.c_str()), 0);
    // chain with hidden=[] and 2 runs: [2][10*2 + 2] floats
    const std::string args = "train backend=cpu env=chain hidden=[] runs=2 steps=0 eval_episodes=2 --load ";
    const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 22), }";
    write_file(dir + "/ok.npy", npy_bytes(good, 2 * 22 * 4));
    CliResult r = run_qfleet(args + dir + "/ok.npy");
    EXPECT_EQ(r.code, 0) << r.out; // all-zero tables: greedy is action 0 (left) everywhere
    EXPECT_NE(r.out.find("eval_return"), std::string::npos) << r.out;
    struct Bad {
        std::string name, bytes, needle;
    };
    const std::vector<Bad> bad = {
        {"magic.npy", "\x93NUMPX" + npy_bytes(good, 176).substr(6), "not a numpy .npy file"},
        {"version.npy", npy_bytes(good, 176).replace(6, 1, "\x04"), "format version 4.0"},
        {"dtype.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 22), }", 352), "dtype '<f8'"},
        {"big.npy", npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 22), }", 176), "dtype '>f4'"},
        {"fortran.npy", npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 22), }", 176), "fortran_order True"},
        {"shape.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 22), }", 264), "shape (3, 22)"},
        {"flat.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (44,), }", 176), "shape (44,)"},
        {"short.npy", npy_bytes(good, 175), "truncated"},
        {"long.npy", npy_bytes(good, 180), "trailing bytes"},
        {"key.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 22), 'x': 1}", 176), "unexpected key 'x'"},
        {"nokey.npy", npy_bytes("{'descr': '<f4', 'shape': (2, 22), }", 176), "lacks 'fortran_order'"},
        {"twice.npy", npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 22)}", 176), "repeated 'descr'"},
        {"garbage.npy", npy_bytes("[1, 2, 3]", 176), "not a dict"},
        {"tiny.npy", "\x93NUM", "too short"},
        {"hlen.npy", std::string("\x93NUMPY\x01\x00\xff\xff", 10) + "{}", "header length 65535"},
    };
    for (const auto &b : bad) {
        write_file(dir + "/" + b.name, b.bytes);
        expect_cli(args + dir + "/" + b.name, 2, b.needle);
        expect_cli(args + dir + "/" + b.name, 2, dir + "/" + b.name); // the file is named
    }
    expect_cli(args + dir + "/missing.npy", 2, "cannot open");
    expect_cli(args + dir, 2, "not a regular file");
    std::system(("rm -rf " + dir).c_str());
}

TEST(Params, TrainWritesThemAndLoadContinuesOrEvaluates) {
    const std::string dir = "/tmp/qfleet_export_" + std::to_string(getpid());
    const std::string args = "train backend=cpu env=deep_sea env.size=6 hidden=[] runs=2 learning_starts=50 ";
    CliResult r = run_qfleet(args + "steps=600 out=" + dir + "/a");
    ASSERT_EQ(r.code, 0) << r.out;
    std::ifstream json(dir + "/a/params.json");
    std::stringstream js;
    js << json.rdbuf();
    EXPECT_NE(js.str().find("\"shape\": [2, 76]"), std::string::npos) << js.str(); // 37 states x 2 + 2
    // evaluate only: a row per run (learning_starts would be ignored, so it is refused with steps=0)
    expect_cli(args + "steps=0 --load " + dir + "/a/params.npy", 2, "would never learn");
    r = run_qfleet("train backend=cpu env=deep_sea env.size=6 hidden=[] runs=2 steps=0 eval_episodes=3 --load " + dir +
                   "/a/params.npy");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("eval_return"), std::string::npos) << r.out;
    // continue training from them
    r = run_qfleet(args + "steps=100 --load " + dir + "/a/params.npy out=" + dir + "/b");
    EXPECT_EQ(r.code, 0) << r.out;
    // a fleet of another shape is refused before training
    expect_cli(args + "runs=3 steps=100 --load " + dir + "/a/params.npy", 2, "shape (2, 76), but this fleet needs (3, 76)");
    std::system(("rm -rf " + dir).c_str());
}

}  // namespace
