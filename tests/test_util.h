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

// One TD call's inputs and outputs: R runs x K heads, B sampled transitions of an embedding net with
// 5 states and A actions; every mask bit set, no intrinsic reward, all zeros until a test sets them.
struct TdCase {
    int R, K, B, A;
    qf_net n;
    std::vector<float> q, qt, qo, dq, loss, qmean, imean, reward, intr;
    std::vector<int32_t> action;
    std::vector<qf_mask> mask;
    std::vector<uint8_t> terminal;
    qf_sample smp;
    TdCase(int R_, int K_, int B_, int A_) : R(R_), K(K_), B(B_), A(A_), n(make_net(R_, K_, 1, {5, A_})) {
        const size_t G = (size_t)R * K;
        q.assign(G * B * A, 0.0f);
        qt = qo = q;
        dq.assign(G * B * A, 99.0f);
        loss.assign(G, 0.0f);
        qmean.assign(G, 0.0f);
        imean.assign(R, -1.0f);
        reward.assign((size_t)R * B, 0.0f);
        intr.assign((size_t)R * B, 0.0f);
        mask.assign((size_t)R * B, ~(qf_mask)0);
        action.assign((size_t)R * B, 0);
        terminal.assign((size_t)R * B, 0);
        std::memset(&smp, 0, sizeof smp);
        smp.R = R;
        smp.C = B;
        smp.embed = 1;
        smp.action = action.data();
        smp.reward = reward.data();
        smp.terminal = terminal.data();
        smp.mask = mask.data();
        smp.intr = intr.data();
    }
    TdCase(const TdCase &) = delete;
    TdCase &operator=(const TdCase &) = delete;
    int run(qf_backend *b, const std::vector<qf_run_hp> &hp, bool with_qo = false) {
        return b->td(b, &n, hp.data(), B, &smp, q.data(), qt.data(), with_qo ? qo.data() : nullptr, dq.data(),
                     loss.data(), qmean.data(), imean.data());
    }
};
