// test_graphs_gpu.cc — CUDA graphs of the training iteration (docs/cuda-graphs.md; label `gpu`: runs
// on a GPU, and in CI on the tests/cuda_emu shim). The truth is the same fleet trained with direct
// launches (cuda_graphs=off), whose per-iteration values come from the host: a recorded iteration
// replayed from device counters must leave every byte of the fleet's state identical to it. Bit for
// bit, not a tolerance: both paths launch the same kernels with the same geometry and inputs, in
// the same order, on the same device and cuBLAS workspace, and no reduction uses floating-point
// atomics, so nothing is free to round differently (a difference is a wrong counter, not rounding).
#include <gtest/gtest.h>

#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "gpu_util.h"
#include "host/config.h"
#include "host/fleet.h"

namespace {

qf_config make_config(const std::vector<std::string> &extra) {
    qf_config c;
    qf_config_default(&c);
    // deep_sea 6 with 2 envs per run, 30 steps: epsilon decays over the first 20, learning starts at
    // step 4 and happens every second step (two iteration kinds), 2 updates each, the target is
    // copied every 3 updates (so copies fall inside replayed iterations), the ring (32) wraps
    std::vector<std::string> words = {"env=deep_sea", "env.size=6", "envs=2", "batch=8", "buffer=32",
                                      "hidden=[16]", "learning_starts=8", "train_every=2", "updates=2",
                                      "target_every=3", "tau=1", "eps_start=1", "eps_end=0.05", "eps_steps=20",
                                      "alpha=0", "lr=0.01", "log_every=15", "seed=3", "runs=2"};
    words.insert(words.end(), extra.begin(), extra.end());
    std::vector<char *> argv;
    for (auto &w : words) argv.push_back(&w[0]);
    char msg[512];
    EXPECT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    return c;
}

struct Trained {
    std::vector<char> snapshot; // every byte of run state, host counters included
    int graphs = 0;
    void *graph[2] = {nullptr, nullptr};
    unsigned long long graph_launches[2] = {0, 0};
    unsigned long long launches = 0, syncs = 0; // during the timed-free middle stretch (no log point)
    qf_iter counters{};
    int64_t t = 0;
    uint32_t n_updates = 0;
};

// Train `steps` steps in three calls (`first` steps, 4 without a log point, the rest; log points
// inside and at the end of each call but the second); with `restore`, snapshot after the first call,
// train on to the end, restore the snapshot and go on from there (the device counters must follow).
Trained train(qf_backend *b, const qf_config &c, int64_t steps, int64_t first, bool restore = false) {
    Trained out;
    qf_fleet f;
    char err[512];
    if (qf_fleet_create(&f, b, &c, nullptr, nullptr, err, sizeof err) != QF_OK) {
        ADD_FAILURE() << err;
        return out;
    }
    std::vector<char> mid;
    int64_t done = 0;
    EXPECT_EQ(qf_fleet_train(&f, first, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    done += first;
    if (restore) {
        mid.resize(qf_fleet_snapshot_bytes(&f));
        EXPECT_EQ(qf_fleet_snapshot(&f, mid.data()), QF_OK) << b->err;
        EXPECT_EQ(qf_fleet_train(&f, steps - done, nullptr, nullptr, err, sizeof err), QF_OK) << err;
        EXPECT_EQ(qf_fleet_restore(&f, mid.data()), QF_OK) << b->err;
    }
    // a stretch without log points: launches and syncs per iteration
    f.log_at_end = 0;
    const int64_t quiet = 4; // no multiple of log_every (15) inside: first + 4 < 15
    const unsigned long long l0 = b->n_launch, s0 = b->n_sync;
    EXPECT_EQ(qf_fleet_train(&f, quiet, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    out.launches = b->n_launch - l0;
    out.syncs = b->n_sync - s0;
    done += quiet;
    f.log_at_end = 1;
    EXPECT_EQ(qf_fleet_train(&f, steps - done, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    out.snapshot.resize(qf_fleet_snapshot_bytes(&f));
    EXPECT_EQ(qf_fleet_snapshot(&f, out.snapshot.data()), QF_OK) << b->err;
    out.graphs = f.graphs;
    for (int k = 0; k < 2; k++) {
        out.graph[k] = f.graph[k];
        out.graph_launches[k] = f.graph_launches[k];
    }
    if (f.iter) {
        EXPECT_EQ(b->download(b, &out.counters, f.iter, sizeof out.counters), QF_OK) << b->err;
    }
    out.t = f.t;
    out.n_updates = f.n_updates;
    qf_fleet_destroy(&f);
    return out;
}

// The first byte where two snapshots differ, as text ("" when equal).
std::string first_difference(const std::vector<char> &a, const std::vector<char> &b) {
    if (a.size() != b.size()) return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size());
    for (size_t i = 0; i < a.size(); i++)
        if (a[i] != b[i]) return "byte " + std::to_string(i) + " of " + std::to_string(a.size());
    return "";
}

struct GraphCase {
    const char *name;
    std::vector<std::string> extra;
};

// gtest prints a case by its name (not its bytes)
void PrintTo(const GraphCase &c, std::ostream *os) { *os << c.name; }

class GraphsEqualDirect : public ::testing::TestWithParam<GraphCase> {};

TEST_P(GraphsEqualDirect, EveryByteOfTheFleetIsIdentical) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    if (!be.cuda->iter_begin_capture) GTEST_SKIP() << "the stand-in backend has no graphs (QFLEET_TEST_CPU_AS_GPU)";
    std::vector<std::string> on = GetParam().extra, off = GetParam().extra;
    on.push_back("cuda_graphs=on");
    off.push_back("cuda_graphs=off");
    const int64_t steps = 30, first = 10;
    const Trained direct = train(be.cuda, make_config(off), steps, first);
    const Trained graphed = train(be.cuda, make_config(on), steps, first);
    ASSERT_FALSE(direct.snapshot.empty());
    ASSERT_EQ(direct.graphs, 0);
    ASSERT_EQ(graphed.graphs, 1);
    // both iteration kinds were recorded and replayed
    EXPECT_NE(graphed.graph[0], nullptr);
    EXPECT_NE(graphed.graph[1], nullptr);
    EXPECT_EQ(first_difference(direct.snapshot, graphed.snapshot), "")
        << "graph replay changed the fleet's state (" << GetParam().name << ")";
    // the device counters followed the host's: t steps, every update counted
    EXPECT_EQ((int64_t)graphed.counters.t, graphed.t);
    EXPECT_EQ(graphed.counters.update, graphed.n_updates);
    EXPECT_EQ(graphed.n_updates, direct.n_updates);
    // launches: one per replayed iteration, no host synchronization between log points; a
    // recording holds a direct iteration's work plus its counter updates (one per update, one per step)
    EXPECT_EQ(graphed.launches, 4u);
    EXPECT_EQ(graphed.syncs, 0u);
    EXPECT_EQ(direct.syncs, 0u);
    // The quiet stretch is steps 10..13: two learning iterations (10, 12) and two without. A recording
    // holds a direct iteration's launches, plus one counter kernel per update and one per step, and a
    // target update for every update, where direct launches make one only when it is due.
    const qf_config c = make_config(off);
    uint32_t u = 0; // updates before step 10, from the schedule (learning_starts, train_every)
    for (int64_t t = 0; t < first; t++)
        if ((t + 1) * c.envs >= c.learning_starts && t % c.train_every == 0) u += (uint32_t)c.updates;
    unsigned long long not_due = 0;
    for (uint32_t k = u; k < u + 2 * (uint32_t)c.updates; k++)
        not_due += c.tau >= 1.0 && (k + 1) % (uint32_t)c.target_every != 0;
    EXPECT_EQ(direct.launches + not_due,
              2 * (graphed.graph_launches[0] - 1) + 2 * (graphed.graph_launches[1] - 1 - (unsigned long long)c.updates));
}


INSTANTIATE_TEST_SUITE_P(
    Graphs, GraphsEqualDirect,
    ::testing::Values(
        // epsilon decaying inside the recorded iterations, target copies every 3 updates
        GraphCase{"epsilon_copy", {}},
        // Polyak target, Boltzmann acting at a temperature, double Q
        GraphCase{"boltzmann_polyak", {"explore=boltzmann", "alpha=0.2", "tau=0.1", "double_q=0"}},
        // bootstrapped ensemble with priors and masks, a head drawn per episode, per-head batches
        GraphCase{"bootstrap", {"explore=bootstrap", "heads=3", "prior_scale=2", "mask_p=0.7", "head_batch=separate"}},
        // count bonus acted on (exact counts of (s, a)), and RND on dense observations
        GraphCase{"count", {"explore=count", "count_act=1", "beta=0.2"}},
        GraphCase{"rnd_dense", {"explore=rnd", "obs=dense", "beta=0.2", "rnd_width=8", "rnd_dim=4"}},
        // the replay's demo part: demo draws in every batch and the demo loss (soft, then the large
        // margin at alpha = 0 in per-head batches of an ensemble)
        GraphCase{"demos_soft", {"demos=2", "demo_ratio=0.3", "demo_weight=1", "explore=boltzmann", "alpha=0.2"}},
        GraphCase{"demos_margin", {"demos=3", "demo_weight=0.5", "explore=bootstrap", "heads=3", "head_batch=separate",
                                   "obs=dense"}}),
    [](const ::testing::TestParamInfo<GraphCase> &i) { return std::string(i.param.name); });

// A checkpoint restored into a fleet that replays graphs: the device counters follow the host's
// restored ones (re-sent before the next replay), so training goes on as if never interrupted.
TEST(Graphs, ARestoredFleetReplaysFromTheRestoredStep) {
    Backends be;
    if (!be.cuda) GTEST_SKIP() << "no usable GPU: " << be.why;
    if (!be.cuda->iter_begin_capture) GTEST_SKIP() << "the stand-in backend has no graphs (QFLEET_TEST_CPU_AS_GPU)";
    const qf_config c = make_config({"cuda_graphs=on"});
    const Trained straight = train(be.cuda, c, 30, 10);
    const Trained resumed = train(be.cuda, c, 30, 10, true); // snapshot at 10, on to 30, back to 10, on to 30
    ASSERT_FALSE(straight.snapshot.empty());
    EXPECT_EQ(first_difference(straight.snapshot, resumed.snapshot), "");
}

// The choice belongs to the backend: the CPU has no graphs, auto trains directly there, and asking
// for them is refused with the key named.
TEST(GraphsChoice, CpuDeclinesAndOnIsRefused) {
    char err[512];
    qf_backend *cpu = qf_cpu_open(err, sizeof err);
    ASSERT_NE(cpu, nullptr) << err;
    EXPECT_EQ(cpu->iter_begin_capture, nullptr);
    qf_fleet f;
    const qf_config autoc = make_config({"cuda_graphs=auto"});
    ASSERT_EQ(qf_fleet_create(&f, cpu, &autoc, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    EXPECT_EQ(f.graphs, 0);
    EXPECT_EQ(f.iter, nullptr);
    qf_fleet_destroy(&f);
    const qf_config onc = make_config({"cuda_graphs=on"});
    EXPECT_EQ(qf_fleet_create(&f, cpu, &onc, nullptr, nullptr, err, sizeof err), QF_ERR);
    EXPECT_NE(std::string(err).find("cuda_graphs=on"), std::string::npos) << err;
    qf_backend_close(cpu);
    // backend=cpu with cuda_graphs=on: a configuration error, before anything runs
    qf_config c;
    qf_config_default(&c);
    std::string w1 = "backend=cpu", w2 = "cuda_graphs=on";
    char *argv[] = {&w1[0], &w2[0]};
    char msg[512] = "";
    ASSERT_EQ(qf_config_parse(&c, 2, argv, msg, sizeof msg), 0) << msg;
    EXPECT_NE(qf_config_check(&c, QF_CMD_TRAIN, msg, sizeof msg), 0);
    EXPECT_NE(std::string(msg).find("cuda_graphs=on"), std::string::npos) << msg;
}

} // namespace
