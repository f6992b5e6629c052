// test_util.h — helpers shared by the test suites: a CPU backend for the length of a test, and
// running the qfleet binary as a user would (stdout and stderr captured together, exit code).
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/backend.h"

struct CpuBackend {
    qf_backend *b = nullptr;
    CpuBackend() {
        char err[512];
        b = qf_cpu_open(err, sizeof err);
        EXPECT_NE(b, nullptr) << err;
    }
    ~CpuBackend() { qf_backend_close(b); }
    CpuBackend(const CpuBackend &) = delete;
    CpuBackend &operator=(const CpuBackend &) = delete;
};

struct CliResult {
    int code = -1; // exit status; 128 + signal when killed by one
    std::string out;
};

// Run `qfleet ARGS` (QFLEET_BIN is defined for every test target).
inline CliResult run_qfleet(const std::string &args) {
    CliResult r;
    FILE *p = popen((std::string(QFLEET_BIN) + " " + args + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, got);
    const int st = pclose(p);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return r;
}

// Run `qfleet ARGS` and expect exit code `code` and `needle` in its output.
inline void expect_cli(const std::string &args, int code, const std::string &needle) {
    CliResult r = run_qfleet(args);
    EXPECT_EQ(r.code, code) << "qfleet " << args << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << "qfleet " << args << "\n" << r.out;
    EXPECT_EQ(r.out.find("Segmentation"), std::string::npos) << "qfleet " << args;
}

// A network shape of R runs x K heads with widths w[0] -> ... -> w[L].
inline qf_net make_net(int R, int K, int embed, const std::vector<int> &w) {
    qf_net n;
    std::memset(&n, 0, sizeof n);
    n.R = R;
    n.K = K;
    n.L = (int)w.size() - 1;
    n.embed = embed;
    for (size_t i = 0; i < w.size(); i++) n.w[i] = w[i];
    qf_net_layout(&n);
    return n;
}

// Learner hyperparameters the op tests start from (each test changes what it checks).
inline qf_run_hp default_hp() {
    qf_run_hp h;
    std::memset(&h, 0, sizeof h);
    h.lr = 1e-2f;
    h.gamma = 0.99f;
    h.alpha = 0.0f;
    h.eps_start = 1.0f;
    h.eps_end = 0.05f;
    h.tau = 1.0f;
    h.max_grad_norm = 0.0f;
    h.huber = 1.0f;
    h.adam_b1 = 0.9f;
    h.adam_b2 = 0.999f;
    h.adam_eps = 1e-8f;
    h.eps_steps = 1000;
    h.explore = QF_EXPLORE_EPSILON;
    h.loss = QF_LOSS_HUBER;
    h.double_q = 0;
    h.n_heads = 1;
    h.mask_p = 1.0f;
    return h;
}
