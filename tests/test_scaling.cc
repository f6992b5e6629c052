// test_scaling.cc — the scaling study's sweep features (issue 14): derived keys (expr.h) against
// hand-computed values and their one-line errors; conditional axes' point counts against
// enumeration by hand; the prune= rule on hand-made cell sequences; the psi fit of
// P = 1 - (1 - psi^n)^K recovering psi from data drawn from that law.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../host/experiment.h"
#include "../host/expr.h"
#include "../host/scaling.h"
#include "test_util.h"

namespace {

// ---- the expression language ---------------------------------------------------------------------

int lookup_heads(void *, const char *name, double *v, char *why, size_t n) {
    if (std::string(name) == "heads") {
        *v = 8;
        return 0;
    }
    if (std::string(name) == "env.size") {
        *v = 20;
        return 0;
    }
    if (std::string(name) == "later") return 1;
    snprintf(why, n, "unknown key '%s'", name);
    return -1;
}

double eval(const char *t) {
    double v = NAN;
    char pend[64], msg[256];
    const int r = qf_expr_eval(t, lookup_heads, nullptr, &v, pend, sizeof pend, msg, sizeof msg);
    EXPECT_EQ(r, 0) << t << ": " << msg;
    return v;
}

std::string eval_error(const char *t) {
    double v;
    char pend[64], msg[256] = "";
    const int r = qf_expr_eval(t, lookup_heads, nullptr, &v, pend, sizeof pend, msg, sizeof msg);
    EXPECT_EQ(r, -1) << t;
    EXPECT_EQ(std::string(msg).find('\n'), std::string::npos);
    return msg;
}

TEST(Expr, ArithmeticPrecedenceAndFunctionsAsWrittenByHand) {
    EXPECT_DOUBLE_EQ(eval("2e-4*heads"), 2e-4 * 8);
    EXPECT_DOUBLE_EQ(eval("1 + 2 * 3"), 7);
    EXPECT_DOUBLE_EQ(eval("(1 + 2) * 3"), 9);
    EXPECT_DOUBLE_EQ(eval("8 / 4 / 2"), 1); // left to right
    EXPECT_DOUBLE_EQ(eval("10 - 4 - 3"), 3);
    EXPECT_DOUBLE_EQ(eval("2^3^2"), 512); // right to left
    EXPECT_DOUBLE_EQ(eval("-2^2"), -4);   // ^ before the sign, as Python's **
    EXPECT_DOUBLE_EQ(eval("2^-1"), 0.5);
    EXPECT_DOUBLE_EQ(eval("sqrt(heads)"), std::sqrt(8.0));
    EXPECT_DOUBLE_EQ(eval("log(exp(2))"), 2);
    EXPECT_DOUBLE_EQ(eval("log2(heads)"), 3);
    EXPECT_DOUBLE_EQ(eval("max(1, heads, 3)"), 8);
    EXPECT_DOUBLE_EQ(eval("min(4, heads)"), 4);
    EXPECT_DOUBLE_EQ(eval("round(2.5)"), 3);
    EXPECT_DOUBLE_EQ(eval("floor(-1.5) + ceil(1.2)"), 0);
    EXPECT_DOUBLE_EQ(eval("env.size * 50"), 1000);
    EXPECT_DOUBLE_EQ(eval(" .5 + 1E2 "), 100.5);
}

TEST(Expr, ErrorsNameThePositionOnOneLine) {
    EXPECT_EQ(eval_error("2*"), "position 3: the expression ends where a number or a key was expected");
    EXPECT_EQ(eval_error("(1+2"), "position 5: missing ')'");
    EXPECT_EQ(eval_error("1+2)"), "position 4: a ')' without its '('");
    EXPECT_EQ(eval_error("1 / (heads - 8)"), "position 3: division by zero");
    EXPECT_EQ(eval_error("2*hedas"), "position 3: unknown key 'hedas'");
    EXPECT_EQ(eval_error("sqrt(-1)"), "position 1: sqrt of a negative number");
    EXPECT_EQ(eval_error("log(0)"), "position 1: log of a number <= 0");
    EXPECT_NE(eval_error("cbrt(8)").find("position 1: unknown function 'cbrt'"), std::string::npos);
    EXPECT_EQ(eval_error("2 3"), "position 3: unexpected '3' (expected an operator + - * / ^)");
    EXPECT_EQ(eval_error("10^400"), "position 3: the power is not a finite number");
    EXPECT_EQ(eval_error("0x10"), "position 2: unexpected 'x' (expected an operator + - * / ^)");
    // a key not evaluated yet: pending, not an error
    double v;
    char pend[64] = "", msg[256];
    EXPECT_EQ(qf_expr_eval("2*later", lookup_heads, nullptr, &v, pend, sizeof pend, msg, sizeof msg), 1);
    EXPECT_STREQ(pend, "later");
    // nesting is bounded, not a stack overflow
    std::string deep(100000, '(');
    EXPECT_NE(eval_error(deep.c_str()).find("more than 64 nested"), std::string::npos);
    std::string powers = "2";
    for (int i = 0; i < 100000; i++) powers += "^1";
    EXPECT_NE(eval_error(powers.c_str()).find("more than 64 nested"), std::string::npos);
    std::string signs(100000, '-');
    signs += "1";
    EXPECT_NE(eval_error(signs.c_str()).find("more than 64 nested"), std::string::npos);
}

TEST(Expr, CandidatesAreExpressionsNotNumbers) {
    EXPECT_TRUE(qf_expr_is_candidate("2e-4*heads"));
    EXPECT_TRUE(qf_expr_is_candidate("heads"));
    EXPECT_TRUE(qf_expr_is_candidate("(1)"));
    EXPECT_FALSE(qf_expr_is_candidate("1e-3"));
    EXPECT_FALSE(qf_expr_is_candidate("-5"));
    EXPECT_FALSE(qf_expr_is_candidate("2.5E+3"));
}

// Of the candidates that fail, those plausibly meant as expressions (an operator, a parenthesis, a
// function call, a known key) against typos and words; "known" here: the names heads and env.size.
TEST(Expr, PlausibleExpressionsAgainstTyposAndWords) {
    auto known = [](void *, const char *name) -> int {
        return std::strcmp(name, "heads") == 0 || std::strcmp(name, "env.size") == 0;
    };
    for (const char *yes : {"2e-4*heds", "2*1e-400", "(1", "sqrt(x)", "heads", "env.size", "-heads", "1/0"})
        EXPECT_TRUE(qf_expr_is_plausible(yes, known, nullptr)) << yes;
    for (const char *no : {"1e-3x", "1o0", "fast", "yes", "heds", "-abc", "2.5E+3q", "1e-3"})
        EXPECT_FALSE(qf_expr_is_plausible(no, known, nullptr)) << no;
    EXPECT_FALSE(qf_expr_is_plausible("heads", nullptr, nullptr)) << "no name is known without a test";
}

// ---- derived keys through the binary -----------------------------------------------------------------

std::string tmp_dir(const std::string &name) { return "/tmp/qfleet_scaling_" + std::to_string(getpid()) + "_" + name; }

std::string read_text(const std::string &p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::vector<std::string>> read_csv(const std::string &path) {
    std::vector<std::vector<std::string>> rows;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        std::vector<std::string> f;
        std::stringstream ss(line);
        for (std::string tok; std::getline(ss, tok, ',');) {
            if (tok.size() >= 2 && tok.front() == '"' && tok.back() == '"') tok = tok.substr(1, tok.size() - 2);
            f.push_back(tok);
        }
        rows.push_back(f);
    }
    return rows;
}

int col(const std::vector<std::string> &h, const std::string &name) {
    for (size_t i = 0; i < h.size(); i++)
        if (h[i] == name) return (int)i;
    ADD_FAILURE() << "no column " << name;
    return 0;
}

TEST(DerivedKeys, AKeyTiedToAnotherTakesItsValuePerPoint) {
    const std::string d = tmp_dir("derived");
    CliResult r = run_qfleet("sweep backend=cpu env.size=4 hidden=[] batch=8 learning_starts=8 steps=40 log_every=20 "
                             "explore=bootstrap heads=1,2,4 'lr=2.5e-4*heads' 'batch=4*heads' --quiet out=" + d);
    ASSERT_EQ(r.code, 0) << r.out;
    auto rows = read_csv(d + "/runs.csv");
    ASSERT_EQ(rows.size(), 4u);
    const int h = col(rows[0], "heads"), l = col(rows[0], "lr"), b = col(rows[0], "batch");
    for (size_t i = 1; i < rows.size(); i++) {
        const double heads = std::stod(rows[i][h]);
        EXPECT_DOUBLE_EQ(std::stod(rows[i][l]), 2.5e-4 * heads) << i; // exact in binary for these K
        EXPECT_EQ(std::stod(rows[i][b]), 4 * heads);
    }
    std::string rm = "rm -rf " + d;
    EXPECT_EQ(system(rm.c_str()), 0);
}

// A derived value inside a conditional axis' braces is recorded as its number per point (runs.csv and
// the run's name), as a derived key of the base is; before, the expression's text was written (a new
// user's finding). The epsilon point has no lr axis value: '-'.
TEST(DerivedKeys, ADerivedValueInsideAConditionalAxisIsRecordedAsItsNumber) {
    const std::string d = tmp_dir("derived_cond");
    CliResult r = run_qfleet("sweep backend=cpu env.size=4 hidden=[] batch=8 learning_starts=8 steps=40 log_every=20 "
                             "'explore=epsilon,bootstrap{heads=1,2;lr=0.25*heads}' --quiet out=" + d);
    ASSERT_EQ(r.code, 0) << r.out;
    auto rows = read_csv(d + "/runs.csv");
    ASSERT_EQ(rows.size(), 4u);
    const int h = col(rows[0], "heads"), l = col(rows[0], "lr"), n = col(rows[0], "name");
    EXPECT_EQ(rows[1][l], "-");
    for (size_t i = 2; i < rows.size(); i++) {
        const double heads = std::stod(rows[i][h]);
        EXPECT_DOUBLE_EQ(std::stod(rows[i][l]), 0.25 * heads) << i; // exact in binary
        EXPECT_EQ(rows[i][n].find("*"), std::string::npos) << rows[i][n];
    }
    std::string rm = "rm -rf " + d;
    EXPECT_EQ(system(rm.c_str()), 0);
}

TEST(DerivedKeys, BadExpressionsAreRefusedWithOriginKeyAndPosition) {
    expect_cli("train backend=cpu 'lr=2e-4*heds' --dry-run", 2,
               "command line: bad value for lr: '2e-4*heds' (allowed: a number in [1e-08, 10]); read as an expression of other "
               "keys: position 6: unknown key 'heds'");
    expect_cli("train backend=cpu 'batch=heads/3' explore=bootstrap --dry-run", 2,
               "batch=heads/3 evaluates to 3.3333333333333335, but batch takes an integer");
    expect_cli("train backend=cpu 'lr=prior_scale' 'prior_scale=lr' explore=bootstrap --dry-run", 2,
               "derived keys that name each other in a cycle");
    expect_cli("train backend=cpu 'lr=explore*2' --dry-run", 2, "key explore is not a number here (it is 'epsilon')");
    expect_cli("train backend=cpu explore=bootstrap 'lr=heads*100' --dry-run", 2, "lr=heads*100 = 1000: bad value for lr");
    // a key that does nothing in the configuration (heads of an epsilon-greedy run) is refused, not
    // read silently at its default (a new user's finding); likewise in a sweep's epsilon points
    expect_cli("train backend=cpu explore=epsilon 'lr=1e-4*heads' --dry-run", 2,
               "it names heads, which does nothing in this configuration");
    expect_cli("sweep backend=cpu 'explore=epsilon,bootstrap{heads=1,2}' 'lr=1e-4*heads' steps=10 --dry-run", 2,
               "it names heads, which does nothing in this configuration");
    // a derived key may name another derived key (evaluated in order)
    CliResult ok = run_qfleet("train backend=cpu explore=bootstrap 'lr=1e-4*batch' 'batch=2*heads' heads=4 "
                              "learning_starts=1 steps=2 --dry-run");
    EXPECT_EQ(ok.code, 0) << ok.out;
}

// ---- conditional axes ---------------------------------------------------------------------------------

int64_t points_of(const std::string &args) {
    CliResult r = run_qfleet("sweep backend=cpu steps=50 learning_starts=10 hidden=[] " + args + " --dry-run");
    EXPECT_EQ(r.code, 0) << args << "\n" << r.out;
    const size_t at = r.out.find("qfleet sweep: ");
    if (at == std::string::npos) return -1;
    return std::stoll(r.out.substr(at + 14));
}

TEST(ConditionalAxes, PointsAreCountedPerValueNotMultiplied) {
    // epsilon: 1 point; bootstrap: 5 heads x 2 priors = 10; x 2 sizes
    EXPECT_EQ(points_of("'explore=epsilon,bootstrap{heads=1,2,4,8,16;prior_scale=0,3}' env.size=4,6"), 22);
    // the same without braces multiplies every strategy: 2 x 5 x 2 x 2 = 40
    EXPECT_EQ(points_of("explore=epsilon,bootstrap heads=1,2,4,8,16 prior_scale=0,3 env.size=4,6"), 40);
    // nested twice: epsilon 1, bootstrap heads=1 (1) and heads=2 with two priors (2) -> 4
    EXPECT_EQ(points_of("'explore=epsilon,bootstrap{heads=1,2{prior_scale=0,3}}'"), 4);
    // a single conditional value, and conditions on two strategies
    EXPECT_EQ(points_of("'explore=epsilon{eps_end=0.05,0.1},bootstrap{heads=2}' lr=0.01,0.1"), 6);
    // with a random axis: grid points x trials
    EXPECT_EQ(points_of("'explore=epsilon,bootstrap{heads=2,4}' 'lr=loguniform(1e-4,1e-2)' trials=3"), 9);
}

TEST(ConditionalAxes, MalformedBracesAndRepeatedKeysAreRefused) {
    expect_cli("sweep backend=cpu 'explore=epsilon,bootstrap{heads=1,2' --dry-run", 2,
               "explore: 'bootstrap{heads=1,2' is not value{key=a,b;key2=c,d}");
    expect_cli("sweep backend=cpu 'explore=epsilon,bootstrap{heads=1,2}' heads=1,2 --dry-run", 2,
               "heads is swept twice in the same points");
    expect_cli("sweep backend=cpu 'explore=epsilon,bootstrap{}' --dry-run", 2, "the braces hold no axis");
    expect_cli("sweep backend=cpu 'explore=epsilon{eps_end=0.1},bootstrap{heads' --dry-run", 2, "is not value{key=a,b");
    expect_cli("sweep backend=cpu 'explore=epsilon,bootstrap{heads}' --dry-run", 2, "'heads' inside {...} is not key=value");
    expect_cli("sweep backend=cpu 'explore=epsilon,bootstrap{hedas=1}' --dry-run", 2, "unknown key: 'hedas'");
    expect_cli("sweep backend=cpu 'explore=epsilon,bootstrap{heads=0,2}' --dry-run", 2, "bad value for heads: '0'");
    expect_cli("sweep backend=cpu 'explore=choice(epsilon,bootstrap{heads=2})' --dry-run", 2,
               "a conditional axis hangs on a grid value");
}

TEST(ConditionalAxes, EpsilonRunsCarryNoHeadsAndBootstrapRunsTheirOwn) {
    const std::string d = tmp_dir("cond");
    CliResult r = run_qfleet("sweep backend=cpu env.size=4 hidden=[] batch=8 learning_starts=8 steps=40 log_every=20 "
                             "'explore=epsilon,bootstrap{heads=1,3}' --quiet out=" + d);
    ASSERT_EQ(r.code, 0) << r.out;
    auto rows = read_csv(d + "/runs.csv");
    ASSERT_EQ(rows.size(), 4u);
    const int e = col(rows[0], "explore"), h = col(rows[0], "heads");
    EXPECT_EQ(rows[1][e], "epsilon");
    EXPECT_EQ(rows[1][h], "-");
    EXPECT_EQ(rows[2][e], "bootstrap");
    EXPECT_EQ(rows[2][h], "1");
    EXPECT_EQ(rows[3][h], "3");
    EXPECT_NE(read_text(d + "/config.txt").find("# sweep axis heads: grid 1, 3 (only where explore=bootstrap)"),
              std::string::npos);
    std::string rm = "rm -rf " + d;
    EXPECT_EQ(system(rm.c_str()), 0);
}

} // namespace

namespace {

// ---- the prune rule on hand-made sequences -----------------------------------------------------------

TEST(Prune, AColumnStopsAfterMConsecutiveCellsWithoutSuccess) {
    const int S = QF_CELL_SUCCESS, F = QF_CELL_FAILED, U = QF_CELL_UNKNOWN, P = QF_CELL_PRUNED;
    { int o[] = {S, S, F, F}; EXPECT_FALSE(qf_prune_next(o, 4, 3)); }
    { int o[] = {S, F, F, F}; EXPECT_TRUE(qf_prune_next(o, 4, 3)); }
    { int o[] = {F, F, S, F, F}; EXPECT_FALSE(qf_prune_next(o, 5, 3)); } // consecutive: a success resets
    { int o[] = {F, F, F, S}; EXPECT_FALSE(qf_prune_next(o, 4, 3)); }
    { int o[] = {F, U, F, F}; EXPECT_FALSE(qf_prune_next(o, 4, 3)); }  // unknown: trained
    { int o[] = {F, F, F, P}; EXPECT_TRUE(qf_prune_next(o, 4, 3)); }   // once pruned, the rest too
    { int o[] = {F}; EXPECT_TRUE(qf_prune_next(o, 1, 1)); }
    { int o[] = {F, F, F, F}; EXPECT_FALSE(qf_prune_next(o, 4, 0)); }  // prune=0: never
    EXPECT_FALSE(qf_prune_next(nullptr, 0, 2));                         // the first cell is always trained
}

// ---- the law and its fit --------------------------------------------------------------------------

TEST(ScalingFit, TheLawAtHandComputedPoints) {
    EXPECT_DOUBLE_EQ(qf_scaling_p(0.5, 1, 1), 0.5);
    EXPECT_DOUBLE_EQ(qf_scaling_p(0.5, 2, 1), 0.75);          // 1 - (1/2)^2
    EXPECT_NEAR(qf_scaling_p(0.9, 3, 2), 1 - std::pow(1 - 0.81, 3), 1e-15);
    EXPECT_EQ(qf_scaling_p(1.0, 4, 10), 1.0);
    EXPECT_EQ(qf_scaling_p(0.0, 4, 10), 0.0);
    // the frontier inverts the law
    const double n = qf_scaling_frontier(0.85, 8, 0.5);
    EXPECT_NEAR(qf_scaling_p(0.85, 8, n), 0.5, 1e-12);
}

// Cells of the study's shape drawn from the law with psi_true: K in {1,2,4,8,16,32}, n = 4..24.
std::vector<qf_cell> draw_cells(double psi, int seeds, uint64_t seed) {
    std::mt19937_64 g(seed);
    std::vector<qf_cell> cells;
    for (int K : {1, 2, 4, 8, 16, 32})
        for (int n = 4; n <= 24; n += 2) {
            std::bernoulli_distribution b(qf_scaling_p(psi, K, n));
            int s = 0;
            for (int i = 0; i < seeds; i++) s += b(g);
            cells.push_back({(double)K, (double)n, (double)seeds, (double)s});
        }
    return cells;
}

TEST(ScalingFit, RecoversPsiWithinItsIntervalAtTheStatedRate) {
    // One draw: psi_true inside the 95% interval (a 5% false-failure probability for a random seed;
    // this seed is fixed, so the test is deterministic, but the tolerance is the interval's)
    {
        auto c = draw_cells(0.85, 32, 1);
        double psi, lo, hi, ll;
        ASSERT_EQ(qf_scaling_fit(c.data(), (int)c.size(), 0.95, &psi, &lo, &hi, &ll), 0);
        EXPECT_LE(lo, 0.85);
        EXPECT_GE(hi, 0.85);
        EXPECT_LT(lo, psi);
        EXPECT_GT(hi, psi);
        // the maximum is a maximum: the likelihood is lower on both sides
        EXPECT_GE(ll, qf_scaling_loglik(c.data(), (int)c.size(), psi - 1e-4));
        EXPECT_GE(ll, qf_scaling_loglik(c.data(), (int)c.size(), psi + 1e-4));
        // and the ends are where 2 (l_hat - l) = chi2_1(0.95) = 3.841459
        EXPECT_NEAR(2 * (ll - qf_scaling_loglik(c.data(), (int)c.size(), lo)), 3.841459, 1e-3);
        EXPECT_NEAR(2 * (ll - qf_scaling_loglik(c.data(), (int)c.size(), hi)), 3.841459, 1e-3);
    }
    // Coverage over 60 independent data sets for each method's psi (0.80: BDQN, 0.87: RP-BDQN as in
    // the study): each interval covers with probability ~0.95, so fewer than 50 of 60 covering has
    // probability P(Binomial(60, 0.95) < 50) = 1.7e-4 when the intervals are right (the false-failure
    // probability of this test, per psi).
    for (double truth : {0.80, 0.87}) {
        int covered = 0;
        for (int rep = 0; rep < 60; rep++) {
            auto c = draw_cells(truth, 32, 1000 + rep);
            double psi, lo, hi, ll;
            ASSERT_EQ(qf_scaling_fit(c.data(), (int)c.size(), 0.95, &psi, &lo, &hi, &ll), 0);
            covered += lo <= truth && truth <= hi;
        }
        EXPECT_GE(covered, 50) << "psi " << truth;
    }
    // a 99% interval is wider than the 95% one
    auto c = draw_cells(0.85, 32, 7);
    double p1, l1, h1, p2, l2, h2;
    qf_scaling_fit(c.data(), (int)c.size(), 0.95, &p1, &l1, &h1, nullptr);
    qf_scaling_fit(c.data(), (int)c.size(), 0.99, &p2, &l2, &h2, nullptr);
    EXPECT_EQ(p1, p2);
    EXPECT_LT(l2, l1);
    EXPECT_GT(h2, h1);
}

} // namespace

// ---- the runner's skipped points (experiment.h skip_points) ------------------------------------------

namespace {

struct SkipLog {
    int calls = 0;
    bool saw_first_fleet_done = false;
};

void skip_1_and_4(void *ctx, const qf_experiment *x, const qf_exp_run *rows, const unsigned char *done,
                  const int64_t *points, int64_t n, unsigned char *skip) {
    SkipLog *log = (SkipLog *)ctx;
    log->calls++;
    for (int64_t j = 0; j < n; j++) skip[j] = points[j] == 1 || points[j] == 4;
    if (points[0] >= 3) { // the second fleet: the first one's rows are known, point 1's pruned
        bool all = true;
        for (int64_t r = 0; r < 3 * x->seeds; r++) all = all && done[r];
        log->saw_first_fleet_done = all && rows[1 * x->seeds].pruned == 1 && rows[0].pruned == 0;
    }
}

// lines of a CSV file whose first field (the run number) is in `runs`, SPS rows left out
std::string lines_of_runs(const std::string &path, const std::vector<int> &runs) {
    std::ifstream in(path);
    std::string out, line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        const int run = std::stoi(line.substr(0, line.find(',')));
        bool keep = false;
        for (int r : runs) keep = keep || r == run;
        if (keep && line.find(",SPS,") == std::string::npos) out += line + "\n";
    }
    return out;
}

int run_points(const std::string &dir, bool with_skip, SkipLog *log) {
    // 6 points: lr 0.01, 0.02, 0.03 at sizes 5 and 6 (one fleet per size); 2 seeds
    qf_words ws = {};
    const char *base[] = {"backend=cpu", "env=deep_sea", "hidden=[]", "batch=8", "learning_starts=8", "steps=300",
                          "log_every=50", "explore=bootstrap", "heads=3", "seeds=2", "checkpoint_seconds=0"};
    for (const char *w : base) qf_words_add(&ws, w, "test");
    const std::string out = "out=" + dir;
    qf_words_add(&ws, out.c_str(), "test");
    qf_config first, points[6];
    char msg[1024];
    if (qf_config_from_words(&first, &ws, msg, sizeof msg)) {
        ADD_FAILURE() << msg;
        return -1;
    }
    const char *lrs[] = {"lr=0.01", "lr=0.02", "lr=0.03"};
    for (int p = 0; p < 6; p++) {
        qf_words one = {};
        for (int i = 0; i < ws.n; i++) qf_words_add(&one, ws.w[i].text, "test");
        qf_words_add(&one, lrs[p % 3], "test");
        qf_words_add(&one, p < 3 ? "env.size=5" : "env.size=6", "test");
        EXPECT_EQ(qf_config_from_words(&points[p], &one, msg, sizeof msg), 0) << msg;
        qf_words_free(&one);
    }
    qf_experiment x;
    ws.quiet = 1;
    qf_experiment_init(&x, "sweep", "sweep", &ws, &first);
    x.n_points = 6;
    x.seeds = 2;
    x.points = points;
    x.probe = 0;
    if (with_skip) {
        x.ctx = log;
        x.skip_points = skip_1_and_4;
    }
    char err[256];
    qf_backend *b = qf_backend_open("cpu", err, sizeof err);
    if (!b) {
        ADD_FAILURE() << err;
        return -1;
    }
    qf_dist d = {0, 1, 0, 0};
    const int rc = qf_experiment_run(&x, b, &d);
    qf_backend_close(b);
    qf_words_free(&ws);
    return rc;
}

// qfleet fit on a compare folder: its bootstrap runs trained with compare's preset prior_scale (10,
// config.txt's "# bootstrap:" line), not the key's default (3); a prior_scale the user gave wins
// (a new user found RP-BDQN labelled 3).
TEST(ScalingFit, ACompareFolderIsFittedWithThePriorItsRunsUsed) {
    for (const char *extra : {"", " prior_scale=2"}) {
        const std::string dir = ::testing::TempDir() + "qfleet_fit_compare_" + std::to_string(getpid());
        std::system(("rm -rf " + dir).c_str());
        ASSERT_EQ(run_qfleet("compare sizes=4,5 explorers=bootstrap seeds=2 episodes=40 backend=cpu --quiet out=" + dir +
                             extra).code, 0);
        CliResult r = run_qfleet("fit " + dir);
        ASSERT_EQ(r.code, 0) << r.out;
        std::ifstream in(dir + "/fit.csv");
        std::string header, row;
        std::getline(in, header);
        std::getline(in, row);
        EXPECT_EQ(row.rfind(std::string("RP-BDQN,") + (extra[0] ? "2," : "10,"), 0), 0u) << extra << ": " << row;
        std::system(("rm -rf " + dir).c_str());
    }
}

TEST(Prune, APartlyPrunedFleetTrainsItsOtherRunsAsAFullFleetDoes) {
    const std::string a = tmp_dir("skip_a"), b = tmp_dir("skip_b");
    SkipLog log;
    ASSERT_EQ(run_points(a, true, &log), 0);
    ASSERT_EQ(run_points(b, false, nullptr), 0);
    EXPECT_EQ(log.calls, 2);
    EXPECT_TRUE(log.saw_first_fleet_done);
    auto rows = read_csv(a + "/runs.csv");
    ASSERT_EQ(rows.size(), 13u);
    const int st = col(rows[0], "status");
    for (int run = 0; run < 12; run++) {
        const int point = run / 2;
        EXPECT_EQ(rows[1 + run][st], point == 1 || point == 4 ? "pruned" : "finished") << run;
    }
    // the runs that trained are the full fleet's, bit for bit (their rows and curves)
    const std::vector<int> kept = {0, 1, 4, 5, 6, 7, 10, 11};
    EXPECT_NE(lines_of_runs(a + "/curves.csv", kept).find("episodic_return"), std::string::npos);
    EXPECT_EQ(lines_of_runs(a + "/runs.csv", kept), lines_of_runs(b + "/runs.csv", kept));
    EXPECT_EQ(lines_of_runs(a + "/curves.csv", kept), lines_of_runs(b + "/curves.csv", kept));
    EXPECT_EQ(lines_of_runs(a + "/curves.csv", {2, 3, 8, 9}), "");
    EXPECT_NE(read_text(a + "/summary.md").find("6 points"), std::string::npos);
    EXPECT_EQ(system(("rm -rf " + a + " " + b).c_str()), 0);
}

// The sweep's rule end to end: a converge_return no episode reaches (2 > DeepSea's best return
// 0.99) fails every cell, so with prune=2 the sizes after the first two are pruned in every column;
// with converge_return=-1 every episode converges and nothing is pruned.
TEST(Prune, SweepPrunesTheLargerSizesOfFailingColumns) {
    const std::string d = tmp_dir("prune_sweep");
    const std::string common = "sweep backend=cpu env.size=6,4,5,7 explore=bootstrap heads=1,2 episodes=4 hidden=[] "
                               "batch=4 learning_starts=4 log_every=4 seeds=2 prune=2 --quiet out=";
    CliResult r = run_qfleet(common + d + " converge_return=2");
    ASSERT_EQ(r.code, 0) << r.out;
    auto rows = read_csv(d + "/runs.csv");
    ASSERT_EQ(rows.size(), 17u);
    const int st = col(rows[0], "status"), sz = col(rows[0], "env.size");
    for (size_t i = 1; i < rows.size(); i++) // sizes in increasing order; 6 and 7 pruned
        EXPECT_EQ(rows[i][st], std::stoi(rows[i][sz]) >= 6 ? "pruned" : "finished") << i;
    EXPECT_NE(read_text(d + "/summary.md").find("pruned"), std::string::npos);
    CliResult again = run_qfleet(common + d + " converge_return=-1 --overwrite");
    ASSERT_EQ(again.code, 0) << again.out;
    rows = read_csv(d + "/runs.csv");
    for (size_t i = 1; i < rows.size(); i++) EXPECT_EQ(rows[i][st], "finished") << i;
    expect_cli("sweep backend=cpu env.size=4 heads=1,2 explore=bootstrap prune=2 episodes=4 --dry-run", 2,
               "prune=2 stops a column of DeepSea sizes");
    EXPECT_EQ(system(("rm -rf " + d).c_str()), 0);
}

TEST(Episodes, ABudgetInEpisodesIsExactOnDeepSea) {
    const std::string d = tmp_dir("episodes");
    CliResult r = run_qfleet("train backend=cpu env.size=5 envs=4 episodes=40 hidden=[] batch=4 learning_starts=4 "
                             "log_every=5 --quiet out=" + d);
    ASSERT_EQ(r.code, 0) << r.out;
    auto rows = read_csv(d + "/runs.csv");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[1][col(rows[0], "episodes")], "40");
    expect_cli("train backend=cpu episodes=40 steps=100 --dry-run", 2, "both set the budget of a run");
    expect_cli("train backend=cpu env=cartpole episodes=40 --dry-run", 2, "give steps instead");
    expect_cli("train backend=cpu envs=3 episodes=40 --dry-run", 2, "not a multiple of envs=3");
    EXPECT_EQ(system(("rm -rf " + d).c_str()), 0);
}

} // namespace

namespace {

// --resume decides the same cells: a pruned sweep stopped by SIGINT in its second fleet (its
// checkpoint written), then resumed, ends with the runs.csv and summary of an uninterrupted one.
TEST(Prune, AResumedSweepPrunesTheSameCells) {
    const std::string full = tmp_dir("prune_full"), cut = tmp_dir("prune_cut");
    const std::string args = "sweep backend=cpu env.size=4,5,6,7 explore=bootstrap heads=1,2 episodes=2000 hidden=[] "
                             "batch=8 learning_starts=8 log_every=100 seeds=2 prune=2 converge_return=2 "
                             "checkpoint_seconds=0.0001 --quiet out=";
    CliResult r = run_qfleet(args + full);
    ASSERT_EQ(r.code, 0) << r.out;
    const pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
        execl("/bin/sh", "sh", "-c", (std::string("exec ") + QFLEET_BIN + " " + args + cut).c_str(), (char *)nullptr);
        _exit(127);
    }
    bool seen = false; // the second fleet checkpointed: the first one's rows are on disk
    for (int i = 0; i < 12000 && !seen; i++) {
        seen = access((cut + "/fleet_2.ckpt").c_str(), F_OK) == 0;
        int st;
        if (!seen && waitpid(pid, &st, WNOHANG) == pid) break;
        usleep(10000);
    }
    ASSERT_TRUE(seen) << "fleet 2 never checkpointed";
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 130);
    r = run_qfleet("sweep --resume " + cut + " --quiet");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(read_text(full + "/runs.csv"), read_text(cut + "/runs.csv"));
    EXPECT_EQ(read_text(full + "/summary.md"), read_text(cut + "/summary.md"));
    EXPECT_NE(read_text(cut + "/runs.csv").find(",pruned,"), std::string::npos);
    EXPECT_EQ(system(("rm -rf " + full + " " + cut).c_str()), 0);
}

} // namespace
