// test_roofline.cc — the roofline (host/roofline.c): the FLOP and byte formulas against counts done
// by hand for small shapes, the machine probes giving finite numbers within physical limits, and
// the benchmarks printing their bounds. No timed assertions.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "envs/spec.h"
#include "host/roofline.h"
#include "test_util.h"

extern "C" int openblas_get_num_threads(void);

namespace {

qf_net mlp(std::initializer_list<int> widths, int embed = 0) {
    qf_net n{};
    n.R = 1;
    n.K = 1;
    n.embed = embed;
    n.L = (int32_t)widths.size() - 1;
    int i = 0;
    for (int w : widths) n.w[i++] = w;
    qf_net_layout(&n);
    return n;
}

// The MLP 4-64-64-2 (CartPole's DQN network) at batch M = 128.
//   P = (4*64 + 64) + (64*64 + 64) + (64*2 + 2) = 320 + 4160 + 130 = 4610 parameters, H = 64 + 64 = 128.
//   GEMM multiply-adds per input: 4*64 + 64*64 + 64*2 = 256 + 4096 + 128 = 4480.
TEST(Roofline, MlpShape) {
    const qf_net n = mlp({4, 64, 64, 2});
    EXPECT_EQ(n.P, 4610);
    EXPECT_EQ(n.H, 128);
}

// Forward, M = 128:
//   FLOPs = 2*128*4480 (GEMMs) + 128*(64 + 64 + 2) (biases) = 1,146,880 + 16,640 = 1,163,520
//   bytes = 4*P = 18,440 (the parameters; inputs, activations and Q are intermediates)
TEST(Roofline, ForwardOfAnMlp) {
    const qf_net n = mlp({4, 64, 64, 2});
    const qf_roof_work w = qf_roof_forward(&n, 128);
    EXPECT_DOUBLE_EQ(w.flops, 1163520.0);
    EXPECT_DOUBLE_EQ(w.bytes, 18440.0);
}

// Backward, M = 128:
//   dW GEMMs 2*128*4480 = 1,146,880; bias gradients 16,640; dX GEMMs above layer 0:
//   2*128*(64*64 + 64*2) = 256*4224 = 1,081,344; FLOPs = 2,244,864
//   bytes = 4*((64*64 + 64*2) + P) = 4*(4224 + 4610) = 35,336 (weights above layer 0 read for dX,
//   the gradients written)
TEST(Roofline, BackwardOfAnMlp) {
    const qf_net n = mlp({4, 64, 64, 2});
    const qf_roof_work w = qf_roof_backward(&n, 128);
    EXPECT_DOUBLE_EQ(w.flops, 2244864.0);
    EXPECT_DOUBLE_EQ(w.bytes, 35336.0);
}

// Adam: 16 FLOPs and 32 bytes per parameter: 16*4610 = 73,760; 32*4610 = 147,520.
// Target: a copy every 100 updates is 8*4610/100 = 368.8 bytes per update; Polyak (tau = 0.005)
// 3*4610 = 13,830 FLOPs and 12*4610 = 55,320 bytes every update.
TEST(Roofline, AdamAndTarget) {
    const qf_net n = mlp({4, 64, 64, 2});
    const qf_roof_work a = qf_roof_adam(&n);
    EXPECT_DOUBLE_EQ(a.flops, 73760.0);
    EXPECT_DOUBLE_EQ(a.bytes, 147520.0);
    const qf_roof_work copy = qf_roof_target(&n, 1.0, 100);
    EXPECT_DOUBLE_EQ(copy.flops, 0.0);
    EXPECT_DOUBLE_EQ(copy.bytes, 368.8);
    const qf_roof_work polyak = qf_roof_target(&n, 0.005, 100);
    EXPECT_DOUBLE_EQ(polyak.flops, 13830.0);
    EXPECT_DOUBLE_EQ(polyak.bytes, 55320.0);
}

// A table (DeepSea-10: 100 states -> 2 actions, embedded), M = 32: P = 100*2 + 2 = 202.
//   forward: no GEMM, the bias add 32*2 = 64 FLOPs; bytes: of the table only the 32 rows gathered,
//   4*(202 - 100*2 + 32*2) = 4*66 = 264
//   backward: scatter-add 32*2 + bias 32*2 = 128 FLOPs; bytes: no weights above layer 0, the
//   gradients written 4*202 = 808
TEST(Roofline, TableForwardAndBackward) {
    const qf_net n = mlp({100, 2}, 1);
    EXPECT_EQ(n.P, 202);
    const qf_roof_work f = qf_roof_forward(&n, 32), b = qf_roof_backward(&n, 32);
    EXPECT_DOUBLE_EQ(f.flops, 64.0);
    EXPECT_DOUBLE_EQ(f.bytes, 264.0);
    EXPECT_DOUBLE_EQ(b.flops, 128.0);
    EXPECT_DOUBLE_EQ(b.bytes, 808.0);
}

// Env steps: CartPole (4 float fields) with dense observations: 2*4*(4 + 0 + 1) + 8 + 4 + 1 + 4*4 = 69;
// DeepSea (2 int fields) with indices: 2*4*(0 + 2 + 1) + 13 + 4 = 41.
TEST(Roofline, EnvStepBytes) {
    qf_env_params p;
    qf_env_params_default(QF_ENV_CARTPOLE, &p);
    EXPECT_DOUBLE_EQ(qf_roof_env_step_bytes(QF_ENV_CARTPOLE, &p, "dense"), 69.0);
    qf_env_params_default(QF_ENV_DEEP_SEA, &p);
    EXPECT_DOUBLE_EQ(qf_roof_env_step_bytes(QF_ENV_DEEP_SEA, &p, "index"), 41.0);
}

qf_roof_fleet dqn_cartpole() {
    qf_roof_fleet s{};
    s.net = mlp({4, 64, 64, 2});
    s.E = 1;
    s.B = 128;
    s.obs_floats = 4;
    s.env_step_bytes = 69.0;
    s.tau = 1.0;
    s.target_every = 100;
    return s;
}

// One DQN update on CartPole (K = 1, B = 128, dense obs of 4 floats, no double Q, no prior, a target
// copy every 100 updates). A transition is 2*4*4 + 21 = 53 bytes (8 of them the bootstrap mask).
//   sample:   128*53 = 6,784 bytes read from the ring
//   forwards: target on s', online on s: 2 x (1,163,520 FLOPs, 18,440 bytes)
//   backward 2,244,864 FLOPs, 35,336 bytes; Adam 73,760 FLOPs, 147,520 bytes; target 368.8 bytes
//   FLOPs = 2,327,040 + 2,244,864 + 73,760 = 4,645,664
//   bytes = 6,784 + 36,880 + 35,336 + 147,520 + 368.8 = 226,888.8
// Collecting one step of its one env: the act forward of 1 input, 2*4480 + 130 = 9090 FLOPs and
// 18,440 bytes; the env step 69; the transition stored 53: 18,562 bytes.
TEST(Roofline, DqnUpdateAndCollect) {
    const qf_roof_fleet s = dqn_cartpole();
    const qf_roof_work u = qf_roof_update(&s), c = qf_roof_collect(&s), r = qf_roof_run_step(&s);
    EXPECT_DOUBLE_EQ(u.flops, 4645664.0);
    EXPECT_NEAR(u.bytes, 226888.8, 1e-6);
    EXPECT_DOUBLE_EQ(c.flops, 9090.0);
    EXPECT_DOUBLE_EQ(c.bytes, 18562.0);
    EXPECT_DOUBLE_EQ(r.flops, u.flops + c.flops);
    EXPECT_DOUBLE_EQ(r.bytes, u.bytes + c.bytes);
}

// Double Q adds one online forward on s'; K heads multiply the forwards by K and priors add their
// sums (1 FLOP per Q value) but no forward in the update: their outputs are kept with the stored
// transitions (2 K A floats more per transition read), computed once when stored (K prior forwards of
// the E next observations in collect); backward, Adam and target scale with K.
TEST(Roofline, DoubleQAndEnsembleWithPriors) {
    qf_roof_fleet s = dqn_cartpole();
    const qf_roof_work base = qf_roof_update(&s), fwd = qf_roof_forward(&s.net, 128);
    s.double_q = 1;
    const qf_roof_work dq = qf_roof_update(&s);
    EXPECT_DOUBLE_EQ(dq.flops - base.flops, fwd.flops);
    EXPECT_NEAR(dq.bytes - base.bytes, fwd.bytes, 1e-6);

    qf_roof_fleet e = dqn_cartpole();
    e.net.K = 10;
    e.prior = 1;
    const qf_roof_work ens = qf_roof_update(&e);
    const qf_roof_work bwd = qf_roof_backward(&e.net, 128), adam = qf_roof_adam(&e.net);
    // 2 forwards x 10 heads + 2 x 10 x 128 x 2 prior adds + backward + Adam
    EXPECT_DOUBLE_EQ(ens.flops, 20.0 * fwd.flops + 2.0 * 10 * 128 * 2 + 10.0 * bwd.flops + 10.0 * adam.flops);
    qf_roof_fleet e1 = e;
    e1.prior = 0;
    // the kept outputs: 2 x 10 heads x 2 actions x 4 bytes = 160 bytes more per sampled transition
    EXPECT_NEAR(ens.bytes - qf_roof_update(&e1).bytes, 128.0 * 160.0, 1e-6);
    // collect: acting's prior forward of the E = 1 input, the prior's forward of the next one, the
    // prior sums, and the kept rows stored
    const qf_roof_work c1 = qf_roof_collect(&e1), c = qf_roof_collect(&e), f1 = qf_roof_forward(&e.net, 1);
    EXPECT_DOUBLE_EQ(c.flops - c1.flops, 2.0 * 10 * f1.flops + 10.0 * 2);
    EXPECT_NEAR(c.bytes - c1.bytes, 2.0 * 10 * f1.bytes + 160.0, 1e-6);
}

// RND adds two forwards on the batch, the predictor's backward and Adam.
TEST(Roofline, RndAddsItsNetworks) {
    qf_roof_fleet s = dqn_cartpole();
    const qf_roof_work base = qf_roof_update(&s);
    s.rnd = 1;
    s.rnd_net = mlp({4, 64, 16});
    const qf_roof_work r = qf_roof_update(&s);
    const double expect = 2.0 * qf_roof_forward(&s.rnd_net, 128).flops + qf_roof_backward(&s.rnd_net, 128).flops +
                          qf_roof_adam(&s.rnd_net).flops + 4.0 * 128 * 4 /* input normalization */ +
                          3.0 * 128 * 16 /* loss gradient */;
    EXPECT_DOUBLE_EQ(r.flops - base.flops, expect);
}

TEST(Roofline, BoundIsTheLargerTerm) {
    qf_roof_peaks p{};
    p.flops = 1e11;
    p.bytes_per_s = 1e10;
    int mem = -1;
    EXPECT_DOUBLE_EQ(qf_roof_bound_s({2e9, 1e8}, &p, &mem), 0.02);  // 2e9/1e11 = 0.02 > 1e8/1e10 = 0.01
    EXPECT_EQ(mem, 0);
    EXPECT_DOUBLE_EQ(qf_roof_bound_s({1e9, 1e9}, &p, &mem), 0.1);
    EXPECT_EQ(mem, 1);
    p.flops = 0;  // unknown peak: no bound
    EXPECT_EQ(qf_roof_bound_s({1e9, 1e9}, &p, nullptr), 0.0);
}

TEST(Roofline, Fp32LanesPerSm) {
    EXPECT_EQ(qf_fp32_lanes_per_sm(9, 0), 128);  // H100
    EXPECT_EQ(qf_fp32_lanes_per_sm(8, 0), 64);   // A100
    EXPECT_EQ(qf_fp32_lanes_per_sm(8, 6), 128);  // GA10x
    EXPECT_EQ(qf_fp32_lanes_per_sm(7, 0), 64);   // V100
    EXPECT_EQ(qf_fp32_lanes_per_sm(3, 5), 0);    // unknown: no theoretical figure
}

// The CPU backend's probes (its `peaks` operation): finite, positive, within physical limits;
// cached by the roofline; OpenBLAS's thread count restored.
TEST(Roofline, CpuProbesAreSane) {
    char err[256] = "";
    qf_backend *b = qf_cpu_open(err, sizeof err);
    ASSERT_NE(b, nullptr) << err;
    ASSERT_NE(b->peaks, nullptr);
    const int blas_threads = openblas_get_num_threads();
    const qf_roof_peaks *p = qf_roof_peaks_of(b);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(std::isfinite(p->bytes_per_s));
    EXPECT_GT(p->bytes_per_s, 1e8);   // 0.1 GB/s
    EXPECT_LT(p->bytes_per_s, 1e13);  // 10 TB/s
    EXPECT_TRUE(std::isfinite(p->flops));
    EXPECT_GT(p->flops, 1e8);   // 0.1 GFLOP/s
    EXPECT_LT(p->flops, 1e15);  // 1 PFLOP/s: no CPU is near
    EXPECT_TRUE(p->theo_flops == 0.0 || (p->theo_flops > 1e8 && p->theo_flops < 1e15)) << p->theo_flops;
    EXPECT_GE(p->threads, 1);
    EXPECT_NE(std::string(p->how).find("triad"), std::string::npos) << p->how;
    EXPECT_EQ(openblas_get_num_threads(), blas_threads);
    EXPECT_EQ(qf_roof_peaks_of(b), p);  // measured once per process
    qf_backend_close(b);
}

// Without a GPU (or a CUDA build) the CUDA backend does not open, with a reason; with one its
// `peaks` operation gives sane numbers.
TEST(Roofline, CudaPeaksFailSoftOrAreSane) {
    char err[256] = "";
    qf_backend *b = qf_cuda_open(err, sizeof err);
    if (!b) {
        EXPECT_GT(std::strlen(err), 0u);
        return;
    }
    ASSERT_NE(b->peaks, nullptr);
    qf_roof_peaks p;
    ASSERT_EQ(b->peaks(b, &p), QF_OK) << b->err;
    EXPECT_GT(p.theo_bytes_per_s, 1e10);
    EXPECT_LT(p.theo_bytes_per_s, 1e14);
    EXPECT_GT(p.bytes_per_s, 1e9);
    EXPECT_LT(p.bytes_per_s, 1e14);
    EXPECT_TRUE(p.theo_flops == 0.0 || (p.theo_flops > 1e11 && p.theo_flops < 1e16)) << p.how;
    qf_backend_close(b);
}

// The benchmarks print the peaks and the bound columns (tests/test_cli.cc checks the main columns).
TEST(Roofline, BenchmarksPrintTheirBounds) {
    CliResult r = run_qfleet("bench train backend=cpu env=chain max_runs=1 seconds=0.01 hidden=[8]");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("roofline peaks (cpu): "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("roofline per run-step"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("of bound"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("inf"), std::string::npos) << r.out;

    const std::string csv = "/tmp/qfleet_roofline_" + std::to_string(getpid()) + ".csv";
    r = run_qfleet("bench envs env=chain backend=cpu max_envs=1024 seconds=0.01 csv=" + csv);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("bound steps/s"), std::string::npos) << r.out;
    FILE *f = fopen(csv.c_str(), "r");
    ASSERT_NE(f, nullptr);
    char line[512] = "";
    ASSERT_NE(fgets(line, sizeof line, f), nullptr);
    fclose(f);
    std::remove(csv.c_str());
    EXPECT_NE(std::string(line).find(",bound_bytes_per_s,bound_steps_per_s,frac_of_bound"), std::string::npos) << line;
}

// bench envs csv=: a path that cannot be written is refused before any timing (one line naming csv=,
// exit 2; a new user waited for the whole benchmark first), and a figure the backend does not know
// (the CPU backend's theoretical bandwidth, peak_bytes_per_s = 0 in kernels/cpu) is an empty cell,
// not 0; frac_of_bound = steps_per_s / bound_steps_per_s. bench irl says its fp64 peaks once.
TEST(Roofline, BenchCsvIsCheckedFirstAndUnknownFiguresAreEmpty) {
    CliResult r = run_qfleet("bench envs env=chain backend=cpu max_envs=1024 seconds=0.01 csv=/nonexistent/dir/x.csv");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_EQ(r.out, "qfleet: csv=/nonexistent/dir/x.csv: cannot write it: No such file or directory\n");
    r = run_qfleet("bench irl backend=cpu max_runs=1 seconds=0.01 horizon=2 csv=/nonexistent/dir/x.csv");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_EQ(r.out, "qfleet: csv=/nonexistent/dir/x.csv: cannot write it: No such file or directory\n");

    const std::string csv = "/tmp/qfleet_roofline_empty_" + std::to_string(getpid()) + ".csv";
    r = run_qfleet("bench envs env=chain backend=cpu max_envs=1024 seconds=0.01 csv=" + csv);
    ASSERT_EQ(r.code, 0) << r.out;
    std::ifstream in(csv);
    std::string head, row;
    ASSERT_TRUE(std::getline(in, head) && std::getline(in, row));
    std::remove(csv.c_str());
    // the last four cells (the device name before them is quoted and may hold commas)
    std::vector<std::string> tail;
    for (int k = 0; k < 4; k++) {
        const size_t comma = row.rfind(',');
        ASSERT_NE(comma, std::string::npos) << row;
        tail.insert(tail.begin(), row.substr(comma + 1));
        row.resize(comma);
    }
    EXPECT_EQ(tail[0], "") << "peak_bytes_per_s is unknown on the CPU backend";
    const double bound_bytes = std::atof(tail[1].c_str()), bound_steps = std::atof(tail[2].c_str());
    const double frac = std::atof(tail[3].c_str());
    EXPECT_GT(bound_bytes, 1e8) << "the measured bandwidth";
    const size_t c1 = row.rfind(','), c2 = row.rfind(',', c1 - 1);
    const double bytes_per_step = std::atof(row.c_str() + c1 + 1), steps_per_s = std::atof(row.c_str() + c2 + 1);
    EXPECT_NEAR(bound_steps, bound_bytes / bytes_per_step, 1e-6 * bound_steps) << "9 digits";
    EXPECT_NEAR(frac, steps_per_s / bound_steps, 1e-5 * frac) << "steps_per_s has 6 digits";

    r = run_qfleet("bench irl backend=cpu max_runs=1 seconds=0.01 horizon=2");
    ASSERT_EQ(r.code, 0) << r.out;
    size_t n = 0;  // the fp64 peak's figure: "... GFLOP/s (the fp32 peak / 2)", once, not once per size
    for (size_t at = r.out.find("/ 2"); at != std::string::npos; at = r.out.find("/ 2", at + 1)) n++;
    EXPECT_EQ(n, 1u) << r.out;
    EXPECT_NE(r.out.find("bounds below: fp64 peak "), std::string::npos) << r.out;
}

}  // namespace
