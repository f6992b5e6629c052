// test_cli.cc — the qfleet command line, run as a user would: listings, the benchmark table, and
// every kind of bad input (unknown env or key, out-of-range and malformed values, a request that
// cannot fit in memory) gives one clear line naming the key and value and exit code 2, never a crash.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cfloat>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "host/config.h"
#include <thread>
#include <fstream>
#include <sstream>
#include "test_util.h"

namespace {


void expect_bad(const std::string &args, const std::string &needle1, const std::string &needle2 = "") {
    expect_cli(args, 2, needle1);
    if (!needle2.empty()) expect_cli(args, 2, needle2);
}

TEST(Cli, EnvsListsEveryEnvironment) {
    CliResult r = run_qfleet("envs");
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char *name : {"deep_sea", "cartpole", "mountain_car", "chain", "bandit", "gridworld"})
        EXPECT_NE(r.out.find(std::string(name) + " —"), std::string::npos) << name;
    EXPECT_NE(r.out.find("env.size"), std::string::npos);
    EXPECT_NE(r.out.find("truncated after 500 steps"), std::string::npos);
}

TEST(Cli, HelpShowsTheKeyTable) {
    CliResult r = run_qfleet("help");
    ASSERT_EQ(r.code, 0);
    for (const char *key : {"backend", "envs", "runs", "seed", "obs", "max_envs"})
        EXPECT_NE(r.out.find(std::string("  ") + key + " "), std::string::npos) << key;
}

TEST(Cli, BenchPrintsATableRowPerSize) {
    CliResult r = run_qfleet("bench envs env=chain env.size=7 backend=cpu max_envs=2048 seconds=0.01");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("chain         index        1024"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("chain         index        2048"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("cartpole"), std::string::npos) << "env= must restrict the table";
}

// QFLEET_CPU_ISA (the CPU GEMMs' variant, kernels/cpu/gemm_cpu.h): an unknown value is refused in one
// line before any command runs; sse2, which every x86-64 CPU runs, is used when asked for (the
// backend line names the variant).
TEST(Cli, CpuIsaFromTheEnvironment) {
    struct Env {
        explicit Env(const char *v) { setenv("QFLEET_CPU_ISA", v, 1); }
        ~Env() { unsetenv("QFLEET_CPU_ISA"); }
    };
    {
        Env e("avx3");
        CliResult r = run_qfleet("bench envs env=chain env.size=7 backend=cpu max_envs=1024 seconds=0.01");
        EXPECT_EQ(r.code, 2) << r.out;
        EXPECT_EQ(r.out.rfind("qfleet: QFLEET_CPU_ISA=avx3: unknown variant (allowed: ", 0), 0u) << r.out;
        EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "one line: " << r.out;
    }
#if defined(__x86_64__)
    {
        Env e("sse2");
        CliResult r = run_qfleet("bench envs env=chain env.size=7 backend=cpu max_envs=1024 seconds=0.01");
        EXPECT_EQ(r.code, 0) << r.out;
        EXPECT_NE(r.out.find("GEMM sse2)"), std::string::npos) << r.out;
    }
#endif
}

// steps=1e3 (a budget as researchers write it) is 1000 steps, on the command line as in YAML
TEST(Cli, IntegerKeysTakeExactScientificNotation) {
    CliResult r = run_qfleet("train env=chain steps=1e3 runs=2 backend=cpu --dry-run");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("steps=1000"), std::string::npos) << r.out;
    r = run_qfleet("train env=chain steps=2.5e3 backend=cpu --dry-run");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("steps=2500"), std::string::npos) << r.out;
}

TEST(Cli, MainJobRunsWithoutArguments) {
    // the no-argument job is `compare` with its defaults (about a minute); keys shorten it but it is
    // the same code path: every strategy, a table row each, and the results folder with its plot
    const std::string dir = "/tmp/qfleet_cli_main_" + std::to_string(getpid());
    CliResult r = run_qfleet("backend=cpu sizes=4,6 episodes=150 seeds=2 out=" + dir);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("DeepSea exploration comparison"), std::string::npos) << r.out;
    for (const char *name : {"epsilon ", "boltzmann ", "bootstrap ", "count ", "rnd "})
        EXPECT_NE(r.out.find(std::string("\n") + name), std::string::npos) << name << "\n" << r.out;
    EXPECT_NE(r.out.find("N=4"), std::string::npos);
    EXPECT_NE(r.out.find("N=6"), std::string::npos);
    for (const char *file : {"summary.md", "runs.csv", "curves.csv", "scaling.svg", "config.txt"}) {
        FILE *f = fopen((dir + "/" + file).c_str(), "r");
        EXPECT_NE(f, nullptr) << file;
        if (f) fclose(f);
    }
    // runs.csv: a row per (size, strategy, seed)
    FILE *f = fopen((dir + "/runs.csv").c_str(), "r");
    ASSERT_NE(f, nullptr);
    int lines = 0;
    for (int c; (c = fgetc(f)) != EOF;) lines += c == '\n';
    fclose(f);
    EXPECT_EQ(lines, 1 + 2 * 5 * 2);
    // config.txt says that its env.size line is not what ran (sizes= is), and that presets override
    // the base lines (a new user read env.size=10 and prior_scale=3 there as bootstrap's)
    std::string cfg;
    if (FILE *c = fopen((dir + "/config.txt").c_str(), "r")) {
        for (int ch; (ch = fgetc(c)) != EOF;) cfg += (char)ch;
        fclose(c);
    }
    EXPECT_NE(cfg.find("# env.size above is not used: each run's size is one of sizes=4,6"), std::string::npos) << cfg;
    EXPECT_NE(cfg.find("# bootstrap: explore=bootstrap prior_scale=10"), std::string::npos) << cfg;
    std::system(("rm -rf " + dir).c_str());
}

// profile=N: a warm-up past learning_starts, then N captured iterations, and nothing written.
TEST(Cli, ProfileRunsTheCapturedIterationsAndWritesNothing) {
    const std::string dir = "/tmp/qfleet_cli_profile_" + std::to_string(getpid());
    CliResult r = run_qfleet("train backend=cpu env=deep_sea learning_starts=100 profile=20 out=" + dir);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("profiled 20 iterations after 110 warm-up steps"), std::string::npos) << r.out;
    FILE *f = fopen((dir + "/runs.csv").c_str(), "r");
    EXPECT_EQ(f, nullptr) << "a profiling run writes no results";
    if (f) fclose(f);
}

// bench train reports host synchronizations per training iteration: none between log points.
TEST(Cli, BenchTrainReportsNoHostSyncsBetweenLogPoints) {
    CliResult r = run_qfleet("bench train backend=cpu env=chain max_runs=1 seconds=0.01 hidden=[8]");
    ASSERT_EQ(r.code, 0) << r.out;
    const size_t h = r.out.find("syncs/step");
    ASSERT_NE(h, std::string::npos) << r.out;
    const size_t row = r.out.find("\n      1 ", h);
    ASSERT_NE(row, std::string::npos) << r.out;
    const std::string line = r.out.substr(row + 1, r.out.find('\n', row + 1) - row - 1);
    // columns are right-aligned under their headers: a value ends where its header ends
    const size_t head_start = r.out.rfind('\n', h) + 1;
    const auto cell = [&](const char *header) {
        const size_t end = r.out.find(header, head_start) - head_start + std::strlen(header);
        const std::string upto = line.substr(0, end);
        return upto.substr(upto.find_last_of(' ') + 1);
    };
    EXPECT_EQ(cell("syncs/step"), "0") << line;
    // the CPU has no CUDA graphs and launches nothing (docs/cuda-graphs.md)
    EXPECT_EQ(cell("graphs"), "none") << line;
    EXPECT_EQ(cell("launches/step"), "0") << line;
}

// bench explore: a fleet iteration of R runs takes R x (us per run-step) and makes R x envs env
// steps, so env-steps/s = envs * 1e6 / (us per run-step) at any R (issue 14: it printed R times that).
TEST(Cli, BenchExploreRateIsEnvsOverTheCostPerRunStep) {
    CliResult r = run_qfleet("bench explore backend=cpu env=deep_sea env.size=4 hidden=[] batch=8 envs=3 "
                             "max_runs=64 seconds=0.01");
    ASSERT_EQ(r.code, 0) << r.out;
    int rows = 0;
    for (const char *runs : {"\n      1 epsilon ", "\n     64 epsilon ", "\n     64 bootstrap-K1 ", "\n     64 bootstrap-K10 ",
                             "\n     64 bootstrap-K40 ", "\n      1 bootstrap-K40 "}) {
        const size_t at = r.out.find(runs);
        ASSERT_NE(at, std::string::npos) << runs << "\n" << r.out;
        double rate = 0, us = 0;
        char name[32];
        int n = 0;
        ASSERT_EQ(std::sscanf(r.out.c_str() + at, " %d %31s %lf %lf", &n, name, &rate, &us), 4) << r.out;
        // both printed with 4 significant digits: relative error below 2 x 5e-4
        EXPECT_NEAR(rate * us, 3e6, 3e6 * 1e-3) << runs << ": rate " << rate << ", us " << us;
        // FLOPs vs eps: K separate networks (each with its prior) do at least K times the
        // arithmetic of epsilon-greedy's one network; epsilon's own row is 1
        double vs_time = 0, vs_flops = 0;
        ASSERT_EQ(std::sscanf(r.out.c_str() + at, " %*d %*s %*f %*f %lfx %lfx", &vs_time, &vs_flops), 2) << r.out;
        const std::string nm = name;
        const double K = nm.rfind("bootstrap-K", 0) == 0 ? std::atof(nm.c_str() + 11) : 0.0;
        if (nm == "epsilon") EXPECT_DOUBLE_EQ(vs_flops, 1.0) << runs;
        else EXPECT_GE(vs_flops, K) << runs;
        rows++;
    }
    EXPECT_EQ(rows, 6);
}

// bench irl: the roofline line's counts are the model of host/roofline.c at the printed shapes
// (gridworld: every (s, a) lists its 5 moves as outcomes, so 25 S dynamics entries; hand count
// below), and each row's GFLOP/s is that count times its rate.
TEST(Cli, BenchIrlRooflineCountsAndRates) {
    CliResult r = run_qfleet("bench irl backend=cpu max_runs=1 seconds=0.01 horizon=2");
    ASSERT_EQ(r.code, 0) << r.out;
    for (int n : {16, 32}) {
        char head[96];
        std::snprintf(head, sizeof head, "roofline per problem-iteration, N=%d (", n);
        const size_t at = r.out.find(head);
        ASSERT_NE(at, std::string::npos) << head << "\n" << r.out;
        int S = 0, A = 0, F = 0, T = 0;
        long long nnz = 0;
        double flop = 0, trans = 0;
        ASSERT_EQ(std::sscanf(r.out.c_str() + at + std::strlen(head),
                              "S=%d, A=%d, F=%d, T=%d, %lld dynamics entries): %lf FLOP (fp64) + %lf exp/log",
                              &S, &A, &F, &T, &nnz, &flop, &trans), 7) << r.out;
        EXPECT_EQ(S, n * n);
        EXPECT_EQ(A, 5);
        EXPECT_EQ(T, 2);
        EXPECT_EQ(nnz, 25LL * S);
        // per step: backward 3 nnz + S (4A + 2), forward 5 nnz + 4 S A; feat products 4 S A F; Adam 15 F
        const double want = T * (8.0 * nnz + S * (4.0 * A + 2) + 4.0 * S * A) + 4.0 * S * A * F + 15.0 * F;
        EXPECT_NEAR(flop, want, want * 1e-3) << "printed with 4 significant digits";
        EXPECT_NEAR(trans, T * S * (2.0 * A + 1), T * S * (2.0 * A + 1) * 1e-3);
        char row[64];
        std::snprintf(row, sizeof row, "\n  %-4d %-8d ", n, 1);
        const size_t rat = r.out.find(row, at);
        ASSERT_NE(rat, std::string::npos) << row << "\n" << r.out;
        int iters = 0;
        double rate = 0, ms = 0, cpu_ms = 0, gflops = 0;
        ASSERT_EQ(std::sscanf(r.out.c_str() + rat + std::strlen(row), "%d %lf %lf %lf %lf", &iters, &rate, &ms, &cpu_ms,
                              &gflops), 5) << r.out;
        EXPECT_GT(rate, 0.0);
        EXPECT_NEAR(rate * ms, 1e3, 1e3 * 2e-3) << "rate 1 decimal, ms 4 significant digits";
        EXPECT_NEAR(gflops, flop * rate * 1e-9, flop * rate * 1e-9 * 2e-3) << r.out;
    }
}

TEST(Cli, CompareRejectsBadInput) {
    expect_bad("compare explorers=epsilon,nope", "unknown strategy in explorers: 'nope'", "bootstrap");
    expect_bad("compare explorers=count,count", "explorers names 'count' twice");
    expect_bad("compare sizes=8,0", "bad value in sizes: '0'", "[1, 4096]");
    expect_bad("compare sizes=", "bad value for sizes");
    expect_bad("compare env=cartpole", "compare runs on DeepSea");
    expect_bad("compare env.size=9", "sizes=");
    expect_bad("compare explore=rnd", "explorers=");
    expect_bad("compare episodes=0", "bad value for episodes: '0'");
}

TEST(Cli, UnknownEnvironment) { expect_bad("bench envs env=nope", "unknown environment: env=nope", "deep_sea"); }
TEST(Cli, UnknownKey) { expect_bad("bench envs colour=red", "unknown key: 'colour'"); }
TEST(Cli, UnknownEnvKey) { expect_bad("bench envs env=cartpole env.size=5", "env.size is not a parameter of env=cartpole", "env.horizon"); }
TEST(Cli, GridSmallerThanOne) { expect_bad("bench envs env=deep_sea env.size=0", "env.size: '0'", "[1, 4096]"); }
// (bench envs sweeps envs itself, so these go to train, which reads envs)
TEST(Cli, ZeroEnvs) { expect_bad("train envs=0", "bad value for envs: '0'", "[1, "); }
TEST(Cli, MalformedNumber) { expect_bad("train envs=12x", "bad value for envs: '12x'"); }
// bench irl's problems are fixed: env= and env.* keys would do nothing and are refused (a new user's
// finding); help knows envs and says what a command does
TEST(Cli, BenchIrlRefusesEnvKeysAndHelpNamesEveryCommand) {
    expect_bad("bench irl backend=cpu env=deep_sea max_runs=1", "bench irl times MaxEnt IRL on gridworld");
    expect_bad("bench irl backend=cpu env.size=8 max_runs=1", "env= and env.* keys would do nothing");
    CliResult r = run_qfleet("help envs");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("lists every environment"), std::string::npos) << r.out;
    r = run_qfleet("help irl");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.rfind("qfleet irl: MaxEnt inverse RL", 0), 0u) << r.out;
    expect_bad("frobnicate", "bench envs|train|explore|irl");
}
// what the fleet would refuse, the dry run refuses too
TEST(Cli, DryRunRefusesPerHeadBatchesWithRnd) {
    expect_bad("train explore=bootstrap head_batch=separate bonus=rnd --dry-run", "head_batch=separate with bonus=rnd is not built");
}
// a path with a newline could not be resumed (run.words is one word per line): refused at the start
TEST(Cli, ControlCharactersInPathsAreRefused) {
    expect_bad("train steps=10 'out=nl\ndir'", "bad value for out: it holds a control character");
}
// seed + seeds - 1 past 2^32 - 1 would wrap to seed 0 and repeat its runs under another name
TEST(Cli, SeedsPastTheLastSeedAreRefused) {
    expect_bad("train seed=4294967295 seeds=2 steps=10", "would wrap to 0");
    expect_bad("sweep seed=4294967290 seeds=7 lr=0.1,0.2 steps=10", "the last seed, 4294967296");
}
// a dry run times a small probe fleet; it does not solve the MDP for regret (at env.size=4096 the
// exact solve takes hours: the dry run hung, a new user's finding)
TEST(Cli, DryRunOfAHugeDeepSeaDoesNotSolveIt) {
    CliResult r = run_qfleet("compare backend=cpu sizes=4096 seeds=1 explorers=epsilon episodes=1 --dry-run");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("nothing was trained"), std::string::npos) << r.out;
}
// A number the floating-point types cannot hold is named as such, not as "not a number" (a new
// user's 1e-300): a double's normal range ends at DBL_MIN ~ 2.2e-308 (strtod: ERANGE below it), an
// env parameter is a float (FLT_MIN ~ 1.2e-38: 1e-300 would become 0). And a mistyped number or a
// word gets the key's message alone; how the text read as an expression only where one was
// plausible (an operator, a function, a key's name). Each is one line, exit 2.
TEST(Cli, NumbersOutOfRangeAndTyposSayWhatIsWrong) {
    static_assert(1e-320 < DBL_MIN && 1e-300 > DBL_MIN && 1e-300 < FLT_MIN, "the premises");
    auto one_line = [](const std::string &args, const std::string &want) {
        CliResult r = run_qfleet(args);
        EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
        EXPECT_EQ(r.out, "qfleet: " + want + "\n") << args;
    };
    one_line("train backend=cpu gamma=1e-320 --dry-run",
             "command line: bad value for gamma: '1e-320' (out of the floating-point range: nonzero magnitudes run "
             "from 2.2e-308 to 1.8e308; allowed: a number in [0, 1])");
    one_line("train backend=cpu gamma=1e400 --dry-run",
             "command line: bad value for gamma: '1e400' (out of the floating-point range: nonzero magnitudes run "
             "from 2.2e-308 to 1.8e308; allowed: a number in [0, 1])");
    one_line("train backend=cpu env=deep_sea env.move_cost=1e-300 --dry-run",
             "command line: bad value for env.move_cost: '1e-300' (out of the float range: env parameters are 32-bit "
             "floats, nonzero magnitudes from 1.2e-38 to 3.4e38; allowed: a number in [0, 1])");
    expect_cli("train backend=cpu 'gamma=2*1e-400' --dry-run", 2,
               "read as an expression of other keys: position 3: '1e-400' is out of the floating-point range");
    one_line("infer backend=cpu env=chain temperatures=0.5,1e-330",
             "temperatures=0.5,1e-330: '1e-330' is out of the floating-point range (allowed: [1e-06, 1e+06])");
    one_line("infer backend=cpu env=chain temperatures=0.5,1e-300",
             "temperatures=0.5,1e-300: '1e-300' is out of range (allowed: [1e-06, 1e+06])");
    // typos: the key's message alone
    one_line("train backend=cpu lr=1e-3x --dry-run", "command line: bad value for lr: '1e-3x' (allowed: a number in "
                                                     "[1e-08, 10])");
    one_line("train backend=cpu steps=1o0 --dry-run", "command line: bad value for steps: '1o0' (allowed: an integer "
                                                      "in [0, 1000000000000])");
    one_line("train backend=cpu lr=fast --dry-run", "command line: bad value for lr: 'fast' (allowed: a number in "
                                                    "[1e-08, 10])");
    // an expression was plausible (an operator; a function): how it read stays
    expect_cli("train backend=cpu 'lr=2e-4*heds' --dry-run", 2, "read as an expression of other keys: position 6: "
                                                                 "unknown key 'heds'");
    expect_cli("train backend=cpu 'lr=sqrt(x)' --dry-run", 2, "read as an expression of other keys: position 6: "
                                                               "unknown key 'x'");
}

TEST(Cli, MalformedFloat) { expect_bad("bench envs seconds=fast", "bad value for seconds: 'fast'"); }
TEST(Cli, NotKeyValue) { expect_bad("bench envs cartpole", "expected key=value, got 'cartpole'"); }
TEST(Cli, UnknownBackend) { expect_bad("bench envs backend=gpu", "bad value for backend: 'gpu'", "auto|cpu|cuda"); }
TEST(Cli, UnknownCommand) { expect_bad("train-fast", "unknown command 'train-fast'"); }
TEST(Cli, UnknownBenchmark) { expect_bad("bench fleets", "unknown benchmark 'fleets'"); }
TEST(Cli, BadList) { expect_bad("bench envs env=bandit env.probs=[0.9,x]", "bad value for env.probs"); }
TEST(Cli, ProbabilityOutOfRange) { expect_bad("bench envs env=bandit env.probs=[0.9,1.5]", "bad value for env.probs"); }
TEST(Cli, ArmsContradictProbs) { expect_bad("bench envs env=bandit env.arms=3 env.probs=[0.9,0.8]", "env.arms=3"); }
TEST(Cli, TooManyEnvsForOneBatch) { expect_bad("train envs=1073741824 runs=1048576", "at most 2^31-1"); }
TEST(Cli, RequestThatCannotFitInMemory) {
    // 2^30 cartpole envs need > 60 GiB; this machine (and CI's) has far less free
    expect_bad("bench envs env=cartpole backend=cpu max_envs=1073741824 seconds=0.01", "GiB", "envs=1073741824");
}

// ---- the key table: help, keys a command does not use, contradictions (issue 11) ----------------

TEST(Cli, HelpGroupsTheKeysByCommandAndRefusesAnUnknownTopic) {
    CliResult r = run_qfleet("help keys");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("used by every command:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("used by solve:\n  policy "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("used by sweep:\n  trials "), std::string::npos) << r.out;
    // one command's keys: what solve reads, and nothing that only the learner reads
    CliResult s = run_qfleet("help solve");
    ASSERT_EQ(s.code, 0) << s.out;
    for (const char *key : {"gamma", "alpha", "policy", "seeds", "env"})
        EXPECT_NE(s.out.find(std::string("\n  ") + key + " "), std::string::npos) << key << "\n" << s.out;
    for (const char *key : {"lr", "hidden", "batch", "explore", "steps"})
        EXPECT_EQ(s.out.find(std::string("\n  ") + key + " "), std::string::npos) << key << "\n" << s.out;
    EXPECT_EQ(run_qfleet("help bench envs").code, 0);
    expect_bad("help frobnicate", "unknown topic 'frobnicate'", "help COMMAND");
    expect_bad("help keys frobnicate", "unknown topic 'frobnicate'");
    expect_bad("help train extra", "unknown topic");
}

TEST(Cli, AKeyTheCommandDoesNotUseIsRefused) {
    expect_bad("solve lr=5", "the key lr is not used by `qfleet solve`", "train, sweep, compare");
    expect_bad("solve env=chain hidden=[8]", "the key hidden is not used by `qfleet solve`");
    expect_bad("bench envs envs=4096", "the key envs is not used by `qfleet bench envs`");
    expect_bad("bench train steps=100", "the key steps is not used by `qfleet bench train`");
    expect_bad("bench explore explore=rnd", "the key explore is not used by `qfleet bench explore`");
    expect_bad("bandits lr=0.1", "the key lr is not used by `qfleet bandits`");
    expect_bad("train sizes=8", "the key sizes is not used by `qfleet train`", "compare");
    expect_bad("train policy=1", "the key policy is not used by `qfleet train`", "solve");
    expect_bad("sweep profile=5 --dry-run", "the key profile is not used by `qfleet sweep`");
    expect_bad("compare steps=100", "the key steps is not used by `qfleet compare`");
    expect_bad("steps=100", "the key steps is not used by `qfleet compare`");  // the main job is compare
    expect_bad("compare runs=4", "the key runs is not used by `qfleet compare`");
}

TEST(Cli, ContradictoryKeysAreRefusedWithWhatToChange) {
    // Boltzmann at temperature 0 would act greedily: refused, whether alpha=0 is given or the default
    expect_bad("train explore=boltzmann", "explore=boltzmann samples actions at temperature alpha",
               "give alpha > 0");
    expect_bad("train explore=boltzmann alpha=0", "alpha=0 is a hard max", "explore=epsilon");
    // double-Q chooses a' by argmax: the soft target has none
    expect_bad("train double_q=1 alpha=0.5", "double_q=1", "set double_q=0, or alpha=0");
    // index observations need a discrete env
    expect_bad("train env=cartpole obs=index", "obs=index needs a discrete environment", "obs=dense");
    expect_bad("train env=mountain_car obs=index", "env=mountain_car has continuous observations");
    expect_bad("train obs=none", "obs=none writes no observations");
    // settings of a strategy no run uses
    expect_bad("train heads=4", "heads is a setting of explore=bootstrap", "explore=epsilon");
    expect_bad("train explore=rnd prior_scale=1", "prior_scale is a setting of explore=bootstrap");
    expect_bad("train mask_p=0.5", "mask_p is a setting of explore=bootstrap");
    expect_bad("train rnd_warmup=100", "rnd_warmup is a setting of the RND bonus");
    expect_bad("train explore=rnd rnd_warmup=100", "rnd_warmup=100 warms up the statistics of dense observations",
               "add obs=dense");
    expect_bad("train act=ucb", "act is a setting of explore=bootstrap");
    expect_bad("train explore=bootstrap ucb_c=2", "ucb_c weights the ensemble's std", "set act=ucb");
    expect_bad("train explore=bootstrap eps_start=0.5", "eps_start sets epsilon-greedy acting", "explore=bootstrap");
    expect_bad("train explore=boltzmann alpha=0.1 eps_steps=10", "eps_steps sets epsilon-greedy acting");
    expect_bad("train beta=0.5", "beta weighs the intrinsic reward, but no run has one", "bonus=rnd");
    expect_bad("train rnd_width=8", "rnd_width is a setting of the RND bonus", "explore=rnd");
    expect_bad("train explore=count rnd_input=state_action", "rnd_input is a setting of the RND bonus");
    expect_bad("train rnd_value=separate", "rnd_value is a setting of the RND bonus", "explore=rnd");
    expect_bad("train explore=rnd rnd_input=pair", "rnd_input", "state_action");
    expect_bad("train explore=rnd rnd_value=both", "rnd_value", "separate");
    expect_bad("train explore=rnd gamma_int=0.9", "gamma_int is the discount of RND's separate intrinsic value",
               "rnd_value=separate");
    expect_bad("train explore=rnd rnd_value=separate gamma_int=1.5", "gamma_int");
    expect_bad("train explore=rnd rnd_act=1", "rnd_act=1 acts on RND's bonus of each (state, action) pair",
               "rnd_input=state_action");
    expect_bad("train explore=count rnd_dim=8", "rnd_dim is a setting of the RND bonus");
    expect_bad("train count=simhash", "count is a setting of the count bonus", "explore=count");
    expect_bad("train explore=rnd count_act=0", "count_act is a setting of the count bonus");
    expect_bad("train explore=count count=exact simhash_bits=8", "simhash_bits is a setting of SimHash",
               "count=simhash");
    expect_bad("train explore=rnd bonus=none", "explore=rnd with bonus=none is plain epsilon-greedy");
    expect_bad("compare explorers=epsilon,count bonus=none", "explore=count with bonus=none is plain epsilon-greedy");
    expect_bad("train tau=0.5 target_every=10", "target_every counts the updates between copies", "tau=1");
    expect_bad("train loss=squared huber=2", "huber is the threshold of the Huber loss", "loss=huber");
    expect_bad("train steps=100 envs=4 learning_starts=400", "learning_starts=400: a run collects steps*envs = 400",
               "never learn");
    // greedy evaluations: episodes without evaluations, steps=0 without parameters to evaluate
    expect_bad("train eval_episodes=5", "eval_episodes=5 sets the episodes of each greedy evaluation",
               "eval_every=0 runs none");
    expect_bad("sweep eval_episodes=5 lr=0.1,0.2", "eval_episodes=5 sets the episodes");
    expect_bad("compare eval_episodes=5", "eval_episodes=5 sets the episodes");
    expect_bad("train eval_episodes=0 eval_every=10", "bad value for eval_episodes");
    expect_bad("train eval_every=-1", "bad value for eval_every");
    expect_bad("solve eval_every=100", "the key eval_every is not used by `qfleet solve`");
    expect_bad("bandits eval_every=100", "the key eval_every is not used by `qfleet bandits`");
    expect_bad("train steps=0", "steps=0 trains nothing", "--load");
    // an integer key takes scientific notation only when it names an integer exactly
    expect_bad("train steps=1.5e0", "bad value for steps: '1.5e0'");
    expect_bad("train steps=1e-3", "bad value for steps: '1e-3'");
    expect_bad("train steps=1e30", "bad value for steps: '1e30'");
    expect_bad("sweep steps=0 lr=0.1,0.2", "steps=0 trains nothing");
    expect_bad("bandits steps=0", "steps=0 trains nothing");
    expect_bad("sweep --load x.npy lr=0.1,0.2", "--load FILE belongs to `qfleet train`");
    expect_bad("train --load", "--load needs a parameter file");
    expect_bad("bandits strategies=ucb1,thompson bandit_eps=0.2", "bandit_eps is the epsilon of the strategy");
    expect_bad("bandits strategies=ucb1 bandit_temp=0.2", "bandit_temp is the temperature of the strategy");
    // compare judges each key against every strategy it runs
    expect_bad("compare explorers=epsilon,count heads=2", "heads is a setting of explore=bootstrap",
               "explorers=epsilon,count");
    expect_bad("compare explorers=boltzmann alpha=0", "explore=boltzmann samples actions at temperature alpha");
    expect_bad("compare explorers=bootstrap,boltzmann eps_end=0.2", "eps_end sets epsilon-greedy acting");
}

TEST(Cli, KeysWithTheirDefaultsNeverTriggerARefusal) {
    // every strategy with nothing but what it needs: the defaults of the other strategies' keys (heads,
    // rnd_width, beta, eps_*, ...) are there in every configuration and must not count as given
    for (const char *words : {"explore=epsilon", "explore=boltzmann alpha=0.1", "explore=bootstrap", "explore=rnd",
                              "explore=count", "explore=bootstrap act=ucb ucb_c=2 heads=3 prior_scale=1 mask_p=0.5",
                              "explore=rnd bonus=count beta=0.2", "double_q=1 alpha=0", "tau=0.5 lr=0.01",
                              "env=cartpole obs=dense", "env=chain obs=index"}) {
        qf_config cfg;
        qf_config_default(&cfg);
        char buf[256], msg[1024];
        snprintf(buf, sizeof buf, "%s", words);
        char *argv[16];
        int argc = 0;
        for (char *save = nullptr, *t = strtok_r(buf, " ", &save); t; t = strtok_r(nullptr, " ", &save)) argv[argc++] = t;
        ASSERT_EQ(qf_config_parse(&cfg, argc, argv, msg, sizeof msg), 0) << words << ": " << msg;
        for (unsigned cmd : {(unsigned)QF_CMD_TRAIN, (unsigned)QF_CMD_SWEEP})
            EXPECT_EQ(qf_config_check(&cfg, cmd, msg, sizeof msg), 0) << words << ": " << msg;
    }
    // the main job and the benchmarks with their defaults
    qf_config cfg;
    qf_config_default(&cfg);
    char msg[1024];
    for (unsigned cmd = 1; cmd < QF_CMD_ALL; cmd <<= 1) EXPECT_EQ(qf_config_check(&cfg, cmd, msg, sizeof msg), 0) << msg;
}

TEST(Cli, EmptyListItemsAreRefused) {
    expect_bad("train hidden=[64,,64]", "bad value for hidden: '[64,,64]' has an empty item");
    expect_bad("train hidden=[64,]", "has an empty item");
    expect_bad("train hidden=[,64]", "has an empty item");
    expect_bad("bandits env.probs=[0.5,,0.5]", "bad value for env.probs: '[0.5,,0.5]' has an empty item");
    expect_bad("bench envs env=bandit env.probs=[0.5,]", "has an empty item");
    expect_bad("compare explorers=epsilon,,bootstrap", "bad value for explorers: 'epsilon,,bootstrap' has an empty item");
    expect_bad("compare sizes=8,,12", "bad value for sizes: '8,,12' has an empty item");
    expect_bad("compare sizes=8,", "has an empty item");
    expect_bad("bandits strategies=ucb1,,thompson", "has an empty item");
    expect_bad("sweep lr=0.1,,0.2 --dry-run", "lr: '0.1,,0.2' has an empty value");
    expect_bad("sweep lr=0.1, --dry-run", "has an empty value");
    expect_bad("sweep 'lr=choice(0.1,,0.2)' --dry-run", "has an empty value");
}

TEST(Cli, LongPathsAndListsAreTakenWhole) {
    // a results folder of 1500 characters (components of 99): taken whole, nothing cut at 95 or 511
    std::string dir = "/tmp/qfleet_cli_long_" + std::to_string(getpid());
    const std::string top = dir;
    for (int i = 0; i < 15; i++) dir += "/" + std::string(99, 'a' + i);
    CliResult r = run_qfleet("train backend=cpu steps=2 out=" + dir);
    ASSERT_EQ(r.code, 0) << r.out.substr(0, 400);
    FILE *f = fopen((dir + "/config.txt").c_str(), "r");
    EXPECT_NE(f, nullptr) << "config.txt under the long folder";
    if (f) fclose(f);
    // the same folder as a sweep value (was: at most 95 characters)
    r = run_qfleet("sweep backend=cpu steps=2 --quiet lr=0.001,0.002 out=" + dir + "/s");
    EXPECT_EQ(r.code, 0) << r.out.substr(0, 400);
    // a longer path than the system accepts is refused, with what the limit is
    expect_bad("train out=/" + std::string(4200, 'x'), "bad value for out: 4201 characters", "at most 4095");
    // sizes: more than the old 16, fewer than the limit; explorers may name every strategy
    expect_bad("compare sizes=" + [] {
        std::string s;
        for (int i = 1; i <= 65; i++) s += (i > 1 ? "," : "") + std::to_string(i);
        return s;
    }(), "bad value for sizes: at most 64 items");
    std::system(("rm -rf " + top).c_str());
}

TEST(Cli, ADirectoryGivenAsConfigurationFileGetsAClearLine) {
    const std::string dir = "/tmp/qfleet_cli_dir_" + std::to_string(getpid()) + ".yaml";
    mkdir(dir.c_str(), 0755);
    expect_bad("train " + dir, dir + " is a directory, not a YAML file");
    expect_bad("sweep /tmp --dry-run", "/tmp is a directory");
    rmdir(dir.c_str());
}

TEST(Cli, ForcedCudaWithoutGpuFailsCleanly) {
    char err[512];
    qf_backend *b = qf_cuda_open(err, sizeof err);
    if (b) {
        qf_backend_close(b);
        GTEST_SKIP() << "a GPU is present: backend=cuda works here";
    }
    expect_cli("bench envs backend=cuda max_envs=1024 seconds=0.01", 1, "backend=cuda cannot be used");
    // and auto falls back to the CPU with one line saying so
    expect_cli("bench envs backend=auto env=bandit max_envs=1024 seconds=0.01", 0, "qfleet: backend cpu");
}

}  // namespace

// csv= naming a FIFO (or a device) is written directly, never through a temporary file renamed over
// it (issue 13: a pipe was replaced by a regular file); a regular file still goes through one.
TEST(Cli, BenchCsvToAFifoIsWrittenDirectly) {
    const std::string fifo = "/tmp/qfleet_cli_fifo_" + std::to_string(getpid());
    std::remove(fifo.c_str());
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    std::string got;
    std::thread reader([&] {
        std::ifstream in(fifo);
        std::stringstream s;
        s << in.rdbuf();
        got = s.str();
    });
    CliResult r = run_qfleet("bench envs env=chain backend=cpu max_envs=1024 seconds=0.01 csv=" + fifo);
    reader.join();
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(got.rfind("env,backend,device,obs,envs,", 0), 0u) << got;
    struct stat st;
    ASSERT_EQ(stat(fifo.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was renamed over";
    EXPECT_NE(stat((fifo + ".tmp").c_str(), &st), 0) << "no temporary file beside it";
    std::remove(fifo.c_str());
}

// `help COMMAND` and `COMMAND --help` list the command's options as well as its keys.
TEST(Cli, HelpListsTheOptions) {
    for (const std::string &args : {std::string("help train"), std::string("train --help")}) {
        CliResult r = run_qfleet(args);
        EXPECT_EQ(r.code, 0) << args << "\n" << r.out;
        for (const char *opt : {"--resume DIR", "--overwrite", "--dry-run", "--quiet", "--load FILE", "eval_every"})
            EXPECT_NE(r.out.find(opt), std::string::npos) << args << ": " << opt;
    }
    CliResult r = run_qfleet("bandits --help");
    EXPECT_NE(r.out.find("--resume DIR"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("--dry-run"), std::string::npos) << "bandits has no --dry-run";
    // `qfleet --help` is `qfleet help` (it was read as an unknown option of the main job), and
    // --version names the version and the build (a new user's findings)
    r = run_qfleet("--help");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("usage: qfleet [command]"), std::string::npos) << r.out;
    r = run_qfleet("--version");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.rfind("qfleet 0.", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("CUDA backend"), std::string::npos) << r.out;
}
