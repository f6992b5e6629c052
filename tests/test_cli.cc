// test_cli.cc — the qfleet command line, run as a user would: listings, the benchmark table, and
// every kind of bad input (unknown env or key, out-of-range and malformed values, a request that
// cannot fit in memory) gives one clear line naming the key and value and exit code 2, never a crash.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "test_util.h"

namespace {


void expect_bad(const std::string &args, const std::string &needle1, const std::string &needle2 = "") {
    expect_cli(args, 2, needle1);
    if (!needle2.empty()) expect_cli(args, 2, needle2);
}

TEST(Cli, EnvsListsTheFiveEnvironments) {
    CliResult r = run_qfleet("envs");
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char *name : {"deep_sea", "cartpole", "mountain_car", "chain", "bandit"})
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
    const std::string last = line.substr(line.find_last_of(' ') + 1);
    EXPECT_EQ(last, "0") << line;
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
