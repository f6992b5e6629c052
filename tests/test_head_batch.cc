// test_head_batch.cc — per-head minibatches (head_batch=separate: each ensemble head draws its own
// batch, as in the bootstrapped-DQN scaling study, knyazer/bootstrapped-dqn-scaling) on the CPU
// backend. Truths: head 0's batch is the shared batch draw for draw; the heads' draws are uniform
// and independent (binomial and chi-square bounds at 6 standard deviations, fixed seeds); a K-head
// network with per-head inputs computes exactly what K one-head networks compute, each on its own
// batch (forward, backward, TD: the same per-network code, so the same bits); a run trained in a
// fleet of four (12 networks over 2 threads) equals the run trained alone (its 3 heads over 2 threads).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "test_util.h"

namespace {

struct Cpu {
    qf_backend *b = nullptr;
    Cpu() {
        char err[512];
        b = qf_cpu_open(err, sizeof err);
        EXPECT_NE(b, nullptr) << err;
    }
    ~Cpu() { qf_backend_close(b); }
};

std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> U(lo, hi);
    std::vector<float> v(n);
    for (auto &x : v) x = U(rng);
    return v;
}

// A replay of R runs x C slots whose every field names its slot: idx = next_idx = slot, action =
// slot % 7, reward = slot + 1000 r, mask = slot * 0x9E3779B97F4A7C15 (64 bits), intr = -slot, terminal = slot & 1.
struct SlotReplay {
    int R, C;
    std::vector<int32_t> idx, next_idx, action;
    std::vector<float> reward, intr;
    std::vector<qf_mask> mask;
    std::vector<uint8_t> terminal;
    qf_replay rp;
    SlotReplay(int R_, int C_) : R(R_), C(C_) {
        const size_t n = (size_t)R * C;
        idx.resize(n), next_idx.resize(n), action.resize(n), reward.resize(n), intr.resize(n), mask.resize(n), terminal.resize(n);
        for (int r = 0; r < R; r++)
            for (int j = 0; j < C; j++) {
                const size_t i = (size_t)r * C + j;
                idx[i] = next_idx[i] = j;
                action[i] = j % 7;
                reward[i] = (float)(j + 1000 * r);
                intr[i] = -(float)j;
                mask[i] = (qf_mask)j * 0x9E3779B97F4A7C15ull;
                terminal[i] = (uint8_t)(j & 1);
            }
        std::memset(&rp, 0, sizeof rp);
        rp.R = R, rp.C = C, rp.embed = 1;
        rp.idx = idx.data(), rp.next_idx = next_idx.data(), rp.action = action.data(), rp.reward = reward.data();
        rp.intr = intr.data(), rp.mask = mask.data(), rp.terminal = terminal.data();
    }
};

// Room for `rows` x B sampled transitions (index inputs).
struct SampleBuf {
    std::vector<int32_t> idx, next_idx, action;
    std::vector<float> reward, intr;
    std::vector<qf_mask> mask;
    std::vector<uint8_t> terminal;
    qf_sample s;
    SampleBuf(int rows, int B) {
        const size_t n = (size_t)rows * B;
        idx.resize(n), next_idx.resize(n), action.resize(n), reward.resize(n), intr.resize(n), mask.resize(n), terminal.resize(n);
        std::memset(&s, 0, sizeof s);
        s.R = rows, s.C = B, s.embed = 1;
        s.idx = idx.data(), s.next_idx = next_idx.data(), s.action = action.data(), s.reward = reward.data();
        s.intr = intr.data(), s.mask = mask.data(), s.terminal = terminal.data();
    }
};

}  // namespace

TEST(HeadBatch, HeadZeroDrawsTheSharedBatchAndTheHeadsDrawIndependently) {
    Cpu cpu;
    const int R = 3, K = 4, B = 4096, C = 300, size = 256;  // 256 of 300 slots filled
    SlotReplay rep(R, C);
    const std::vector<uint32_t> keys = {5, 0, 5, 1, 6, 0};
    SampleBuf shared(R, B), heads(R * K, B);
    const uint32_t update = 17;
    ASSERT_EQ(cpu.b->replay_sample(cpu.b, &rep.rp, B, size, update, keys.data(), &shared.s), QF_OK);
    ASSERT_EQ(cpu.b->replay_sample(cpu.b, &rep.rp, B, size, update, keys.data(), &heads.s), QF_OK);
    for (int r = 0; r < R; r++)
        for (int j = 0; j < B; j++) {
            const size_t h0 = ((size_t)r * K) * B + j, sh = (size_t)r * B + j;
            ASSERT_EQ(heads.idx[h0], shared.idx[sh]) << "run " << r << " draw " << j << ": head 0 draws the shared batch";
            ASSERT_EQ(heads.reward[h0], shared.reward[sh]);
        }
    for (int row = 0; row < R * K; row++) {
        const int r = row / K;
        std::vector<int> count(size, 0);
        for (int j = 0; j < B; j++) {
            const size_t i = (size_t)row * B + j;
            const int slot = heads.idx[i];
            ASSERT_GE(slot, 0);
            ASSERT_LT(slot, size) << "only filled slots are drawn";
            // every field comes from the same slot of the same run
            ASSERT_EQ(heads.next_idx[i], slot);
            ASSERT_EQ(heads.action[i], slot % 7);
            ASSERT_EQ(heads.reward[i], (float)(slot + 1000 * r));
            ASSERT_EQ(heads.intr[i], -(float)slot);
            ASSERT_EQ(heads.mask[i], (qf_mask)slot * 0x9E3779B97F4A7C15ull);
            ASSERT_EQ(heads.terminal[i], (uint8_t)(slot & 1));
            count[slot]++;
        }
        // uniform over the filled slots: Pearson's chi-square with 255 degrees of freedom (mean 255,
        // sd sqrt(510) = 22.6), below mean + 6 sd
        const double expect = (double)B / size;
        double chi2 = 0;
        for (int c : count) chi2 += (c - expect) * (c - expect) / expect;
        EXPECT_LT(chi2, 255 + 6 * std::sqrt(510.0)) << "row " << row;
    }
    // independent heads: draw j of two heads of a run hits the same slot with probability 1/size,
    // B/size = 16 expected matches (sd 4); equal streams would match B times, shifted ones 0 times
    for (int r = 0; r < R; r++)
        for (int k1 = 0; k1 < K; k1++)
            for (int k2 = k1 + 1; k2 < K; k2++) {
                int same = 0, same_next = 0;
                for (int j = 0; j < B; j++) {
                    same += heads.idx[((size_t)r * K + k1) * B + j] == heads.idx[((size_t)r * K + k2) * B + j];
                    if (j + 1 < B) same_next += heads.idx[((size_t)r * K + k1) * B + j + 1] == heads.idx[((size_t)r * K + k2) * B + j];
                }
                const double mean = (double)B / size, sd = std::sqrt(B * (1.0 / size) * (1 - 1.0 / size));
                EXPECT_NEAR(same, mean, 6 * sd) << "run " << r << " heads " << k1 << ", " << k2;
                EXPECT_NEAR(same_next, mean, 6 * sd) << "run " << r << " heads " << k1 << ", " << k2 << " (shifted by one)";
            }
}

// A K-head network with per-head inputs against G = R*K one-head networks (runs) with the same
// parameters and each head's inputs: every output the same bits.
TEST(HeadBatch, PerHeadInputsEqualOneHeadNetworksOnTheirOwnBatches) {
    Cpu cpu;
    qf_backend *b = cpu.b;
    for (int embed = 0; embed < 2; embed++) {
        const int R = 2, K = 3, M = 16, B = M, A = 4, D = embed ? 9 : 6;
        qf_net net = make_net(R, K, embed, {D, 8, A});
        net.x_per_net = 1;
        const qf_net ref = make_net(R * K, 1, embed, {D, 8, A});
        const size_t G = (size_t)R * K, P = (size_t)net.P, H = (size_t)net.H;
        const std::vector<float> params = uniform(G * P, 1 + embed, -0.5f, 0.5f), x = uniform(G * M * D, 3, -1, 1);
        std::vector<int32_t> xi(G * M);
        for (size_t i = 0; i < xi.size(); i++) xi[i] = (int32_t)((i * 5 + i / 7) % D);
        std::vector<float> q1(G * M * A), q2(G * M * A), a1(G * M * H), a2(G * M * H);
        ASSERT_EQ(b->net_forward(b, &net, params.data(), M, x.data(), xi.data(), a1.data(), q1.data()), QF_OK);
        ASSERT_EQ(b->net_forward(b, &ref, params.data(), M, x.data(), xi.data(), a2.data(), q2.data()), QF_OK);
        EXPECT_EQ(q1, q2) << "forward, embed=" << embed;
        // the heads really read different rows: head 1 on head 0's inputs would differ
        qf_net shared = net;
        shared.x_per_net = 0;
        std::vector<float> q3(G * M * A), a3(G * M * H);
        ASSERT_EQ(b->net_forward(b, &shared, params.data(), M, x.data(), xi.data(), a3.data(), q3.data()), QF_OK);
        EXPECT_NE(q1, q3);
        const std::vector<float> dq = uniform(G * M * A, 4, -1, 1);
        std::vector<float> g1(G * P), g2(G * P), w1((size_t)qf_net_work_floats(&net, M)), w2((size_t)qf_net_work_floats(&ref, M));
        ASSERT_EQ(b->net_backward(b, &net, params.data(), M, x.data(), xi.data(), a1.data(), dq.data(), g1.data(), w1.data()), QF_OK);
        ASSERT_EQ(b->net_backward(b, &ref, params.data(), M, x.data(), xi.data(), a2.data(), dq.data(), g2.data(), w2.data()), QF_OK);
        EXPECT_EQ(g1, g2) << "backward, embed=" << embed;
        // TD: head k of run r learns from bit k of its own transitions' masks; the one-head network
        // g from bit 0 of the same rows
        std::vector<qf_run_hp> hp(R, default_hp()), hp_ref(G, default_hp());
        hp[1].alpha = 0.3f;
        hp[1].beta = 0.5f;
        for (size_t g = 0; g < G; g++) hp_ref[g] = hp[g / K];
        std::mt19937 rng(9);
        SampleBuf s(R * K, B), s_ref(R * K, B);
        for (size_t i = 0; i < G * B; i++) {
            const size_t g = i / B;
            s.action[i] = s_ref.action[i] = (int32_t)(rng() % A);
            s.reward[i] = s_ref.reward[i] = (float)(rng() % 100) / 50.0f - 1.0f;
            s.intr[i] = s_ref.intr[i] = (float)(rng() % 10) / 10.0f;
            s.terminal[i] = s_ref.terminal[i] = (uint8_t)(rng() % 5 == 0);
            s.mask[i] = (qf_mask)rng() << 32 | rng();
            s_ref.mask[i] = (s.mask[i] >> (g % K)) & 1u;
        }
        const std::vector<float> qt = uniform(G * B * A, 11, -1, 1);
        std::vector<float> dq1(G * B * A), dq2(G * B * A), l1(G), l2(G), m1(G), m2(G), i1(R), i2(G);
        ASSERT_EQ(b->td(b, &net, hp.data(), B, &s.s, q1.data(), qt.data(), nullptr, dq1.data(), l1.data(), m1.data(), i1.data()), QF_OK);
        ASSERT_EQ(b->td(b, &ref, hp_ref.data(), B, &s_ref.s, q2.data(), qt.data(), nullptr, dq2.data(), l2.data(), m2.data(), i2.data()), QF_OK);
        EXPECT_EQ(dq1, dq2) << "td, embed=" << embed;
        EXPECT_EQ(l1, l2);
        EXPECT_EQ(m1, m2);
        for (int r = 0; r < R; r++) EXPECT_EQ(i1[r], i2[(size_t)r * K]) << "imean: head 0's batch";
    }
}

namespace {

// runs.csv of `qfleet train ARGS` as rows of fields, the name and run_copy columns dropped (they say
// which copy of a fleet a run is, which a run trained alone does not have).
std::vector<std::vector<std::string>> train_rows(const std::string &args, const std::string &dir) {
    CliResult r = run_qfleet("train backend=cpu " + args + " out=" + dir);
    EXPECT_EQ(r.code, 0) << r.out;
    std::ifstream in(dir + "/runs.csv");
    std::vector<std::vector<std::string>> rows;
    std::string line;
    std::getline(in, line);
    std::vector<bool> keep;
    {
        std::stringstream ss(line);
        for (std::string tok; std::getline(ss, tok, ',');) keep.push_back(tok != "name" && tok != "run_copy");
    }
    while (std::getline(in, line)) {
        std::vector<std::string> f;
        std::stringstream ss(line);
        size_t col = 0;
        for (std::string tok; std::getline(ss, tok, ','); col++)
            if (col >= keep.size() || keep[col]) f.push_back(tok);
        rows.push_back(f);
    }
    std::system(("rm -rf " + dir).c_str());
    return rows;
}

}  // namespace

TEST(HeadBatch, ARunInAFleetEqualsTheRunAloneAndOneHeadEqualsShared) {
    const std::string base = "threads=2 env=deep_sea env.size=6 explore=bootstrap hidden=[] batch=16 learning_starts=40 "
                             "steps=480 log_every=240 ";
    const std::string dir = "/tmp/qfleet_head_batch_" + std::to_string(getpid());
    // 4 runs x 3 heads and 1 run x 3 heads: different splits of the networks over the 2 threads
    const auto fleet = train_rows(base + "heads=3 head_batch=separate runs=4", dir + "a");
    const auto alone = train_rows(base + "heads=3 head_batch=separate runs=1", dir + "b");
    ASSERT_EQ(fleet.size(), 4u);
    ASSERT_EQ(alone.size(), 1u);
    EXPECT_EQ(fleet[0], alone[0]) << "run 0 in a fleet of 4 vs alone";
    const auto shared = train_rows(base + "heads=3 head_batch=shared runs=1", dir + "c");
    EXPECT_NE(shared[0], alone[0]) << "three heads on their own batches learn otherwise than on one";
    const auto one_sep = train_rows(base + "heads=1 head_batch=separate runs=2", dir + "d");
    const auto one_sh = train_rows(base + "heads=1 head_batch=shared runs=2", dir + "e");
    EXPECT_EQ(one_sep, one_sh) << "with one head a run's own batch is the head's batch";
}

TEST(HeadBatch, SeparateBatchesWithRndInAFleetOfHeadsAreRefused) {
    expect_cli("train backend=cpu env=deep_sea explore=bootstrap bonus=rnd heads=3 head_batch=separate steps=10", 2,
               "head_batch=separate with bonus=rnd is not built");
    expect_cli("train backend=cpu head_batch=each steps=10", 2, "shared|separate");
    expect_cli("train backend=cpu head_batch=separate steps=10", 2, "head_batch is a setting of explore=bootstrap");
}
