// test_portable.cc — the portable build (CMake -DQFLEET_PORTABLE=ON) promises the same numbers on
// every x86-64 machine. A test cannot change the CPU it runs on, but it can change everything that
// picks code by CPU at run time: glibc's per-CPU variants of exp/log/pow and memcpy (selected from
// the CPU features, which GLIBC_TUNABLES=glibc.cpu.hwcaps can mask down to a baseline x86-64), the
// OpenBLAS core type (OPENBLAS_CORETYPE; the portable build must not use OpenBLAS at all), and the
// number of threads. Each training below runs the real program under each setting; runs.csv and
// curves.csv (less the SPS rows, which are wall-clock rates) must be byte-identical. CI builds the
// portable configuration and runs this test (label `portable`); in other builds it skips.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

// Runs `env SETTINGS qfleet ARGS out=DIR`; returns the exit status.
[[maybe_unused]] int run_with(const std::string &settings, const std::string &args, const std::string &dir) {
    const std::string cmd = "env " + settings + " " + QFLEET_BIN + " " + args + " out=" + dir + " >" + dir +
                            ".log 2>&1";
    std::system(("rm -rf " + dir + " " + dir + ".log").c_str());
    const int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

[[maybe_unused]] std::vector<std::string> split(const std::string &line) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string tok; std::getline(ss, tok, ',');) f.push_back(tok);
    return f;
}

// The file's text; with drop_sps, without the wall-clock rate: the SPS column of a wide table, or the
// rows whose metric is SPS in a long one.
[[maybe_unused]] std::string slurp(const std::string &path, bool drop_sps) {
    std::ifstream in(path);
    std::string line, out;
    int sps_col = -1;
    bool header = true;
    while (std::getline(in, line)) {
        std::vector<std::string> f = split(line);
        if (header && drop_sps)
            for (size_t i = 0; i < f.size(); i++)
                if (f[i] == "SPS") sps_col = (int)i;
        header = false;
        if (drop_sps && sps_col < 0 && line.find(",SPS,") != std::string::npos) continue;
        for (size_t i = 0; i < f.size(); i++)
            if ((int)i != sps_col) out += f[i] + ",";
        out += "\n";
    }
    return out;
}

// The settings a run is repeated under: the machine as it is; a baseline x86-64 C library with no
// AVX/AVX2/AVX-512/FMA variants and another BLAS core type; one thread.
[[maybe_unused]] const std::vector<std::string> kSettings = {
    "OPENBLAS_CORETYPE=Haswell",
    "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX,-AVX2,-FMA,-FMA4,-AVX512F,-AVX512DQ,-AVX512BW,-AVX512VL "
    "OPENBLAS_CORETYPE=Prescott",
    "OPENBLAS_CORETYPE=Zen OMP_NUM_THREADS=1",
};

void expect_identical_everywhere(const std::string &args, const std::string &file, bool curves_has_sps) {
#ifndef QFLEET_PORTABLE
    (void)args;
    (void)file;
    (void)curves_has_sps;
    GTEST_SKIP() << "this build is not the portable one (cmake -DQFLEET_PORTABLE=ON); native builds are "
                    "reproducible on one machine only (docs/reproducibility.md)";
#else
    std::vector<std::string> runs, curves;
    for (size_t i = 0; i < kSettings.size(); i++) {
        const std::string dir = "/tmp/qfleet_portable_" + std::to_string(getpid()) + "_" + std::to_string(i);
        ASSERT_EQ(run_with(kSettings[i], args, dir), 0) << kSettings[i] << ": " << slurp(dir + ".log", false);
        runs.push_back(slurp(dir + "/" + file, false));
        curves.push_back(slurp(dir + "/curves.csv", curves_has_sps));
        ASSERT_GT(runs.back().size(), 100u) << dir;
        std::system(("rm -rf " + dir + " " + dir + ".log").c_str());
    }
    for (size_t i = 1; i < kSettings.size(); i++) {
        EXPECT_EQ(runs[0], runs[i]) << file << " differs under " << kSettings[i];
        EXPECT_EQ(curves[0], curves[i]) << "curves.csv differs under " << kSettings[i];
    }
#endif
}

// An MLP with soft targets (expf, logf in the learner; sgemm in every layer), Adam (pow).
TEST(Portable, CartPoleSoftQIsIdenticalUnderEveryCpuSetting) {
    expect_identical_everywhere(
        "train backend=cpu env=cartpole runs=4 steps=4000 hidden=[32,32] batch=64 learning_starts=500 alpha=1 "
        "log_every=500",
        "runs.csv", true);
}

// Bootstrapped heads with randomized priors on DeepSea (ensemble acting, bootstrap masks, priors)
// and the count bonus: the comparison's own code path.
TEST(Portable, DeepSeaComparisonIsIdenticalUnderEveryCpuSetting) {
    expect_identical_everywhere("compare backend=cpu sizes=6 episodes=150 seeds=2 explorers=bootstrap,count,rnd "
                                "hidden=[16]",
                                "runs.csv", true);
}

}  // namespace
