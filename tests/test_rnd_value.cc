// test_rnd_value.cc — RND's (state, action) input (rnd_input=state_action) and its separate
// intrinsic value (rnd_value=separate, gamma_int), on the CPU reference, against independent truths:
// the pair inputs written out by hand, the novelty of never-seen pairs against pairs trained on
// many times, the first update of Q_E and Q_I recomputed by hand from the sampled batch (the
// intrinsic target bootstraps through episode ends), and the defaults' paths left untouched.
// CPU-vs-CUDA comparisons of the new operations are in test_explore_gpu.cc; checkpoints in
// test_checkpoint.cc; the refusals in test_cli.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "host/config.h"
#include "host/fleet.h"
#include "kernels/backend.h"
#include "test_util.h"

namespace {

qf_config config_of(const std::vector<std::string> &extra) {
    qf_config c;
    qf_config_default(&c);
    std::vector<std::string> words = {"env=deep_sea", "env.size=8", "envs=4", "batch=16", "buffer=400",
                                      "learning_starts=32", "alpha=0", "target_every=10", "lr=0.01",
                                      "log_every=100000", "seed=5", "runs=2", "explore=rnd"};
    words.insert(words.end(), extra.begin(), extra.end());
    std::vector<char *> argv;
    for (auto &w : words) argv.push_back(&w[0]);
    char msg[512];
    EXPECT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    return c;
}

// ---- the (s, a) input, written out by hand ---------------------------------------------------------

// State indices: the pair is the one index s*A + a (clamped into range), S = 5 states, A = 3.
TEST(RndPair, IndexInputIsSTimesAPlusA) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    const int R = 2, M = 4, S = 5, A = 3;
    qf_rnd q;
    std::memset(&q, 0, sizeof q);
    q.net = make_net(R, 1, 1, {S * A, 4, 2});
    q.n_actions = A;
    std::vector<int32_t> out((size_t)R * M, -1);
    q.xi = out.data();
    const std::vector<int32_t> s = {0, 4, 2, 7 /* clamped to 4 */, 1, 3, -2 /* clamped to 0 */, 4};
    const std::vector<int32_t> a = {0, 2, 1, 1, 2, 0, 1, 5 /* clamped to 2 */};
    ASSERT_EQ(cpu.b->rnd_pair(cpu.b, &q, M, s.data(), a.data()), QF_OK);
    const std::vector<int32_t> want = {0, 14, 7, 13, 5, 9, 1, 14};
    EXPECT_EQ(out, want);
}

// Dense observations: the first D columns are the normalized observation (rnd_input), the last A
// one-hot(a) (rnd_pair). Two rows x = (1, 2) and (3, 6) give mean (2, 4) and variance (1, 4), so
// the normalized rows are (-1, -1) and (1, 1) (to 1e-8 of the variance's epsilon).
TEST(RndPair, DenseInputIsNormalizedObservationThenOneHot) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    const int R = 1, M = 2, D = 2, A = 3;
    qf_rnd q;
    std::memset(&q, 0, sizeof q);
    q.net = make_net(R, 1, 0, {D + A, 4, 2});
    q.obs_dim = D;
    q.n_actions = A;
    std::vector<float> xn((size_t)R * M * (D + A), -7.0f);
    std::vector<double> mean(D, 0.0), m2(D, 0.0), n(R, 0.0);
    q.xn = xn.data();
    q.obs_mean = mean.data();
    q.obs_m2 = m2.data();
    q.obs_n = n.data();
    const std::vector<float> x = {1, 2, 3, 6};
    const std::vector<int32_t> a = {2, 0};
    ASSERT_EQ(cpu.b->rnd_input(cpu.b, &q, M, x.data(), 1), QF_OK);
    ASSERT_EQ(cpu.b->rnd_pair(cpu.b, &q, M, nullptr, a.data()), QF_OK);
    const std::vector<float> want = {-1, -1, 0, 0, 1, 1, 1, 1, 0, 0};
    for (size_t i = 0; i < want.size(); i++) EXPECT_NEAR(xn[i], want[i], 1e-6) << "column " << i % (D + A) << " of row " << i / (D + A);
    EXPECT_EQ(n[0], 2.0);
}

// The fleet sizes RND's input by rnd_input: S*A pair indices with obs=index, D + A values dense.
TEST(RndPair, FleetInputWidths) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    char err[512];
    qf_fleet f;
    const qf_config ci = config_of({"env.size=4", "rnd_input=state_action"});
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &ci, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    EXPECT_EQ(f.rnd.net.w[0], f.net.w[0] * 2); // DeepSea-4: 17 state indices (16 cells, the end)
    EXPECT_NE(f.rnd.xi, nullptr);
    qf_fleet_destroy(&f);
    const qf_config cd = config_of({"env.size=4", "obs=dense", "hidden=[8]", "rnd_input=state_action"});
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &cd, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    EXPECT_EQ(f.rnd.net.w[0], 16 + 2);
    EXPECT_EQ(f.rnd.obs_dim, 16);
    qf_fleet_destroy(&f);
    const qf_config cs = config_of({"env.size=4", "obs=dense", "hidden=[8]"});
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &cs, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    EXPECT_EQ(f.rnd.net.w[0], 16);
    EXPECT_EQ(f.rnd.n_actions, 0);
    qf_fleet_destroy(&f);
}

// rnd_act: Q(s_e, a) of every head += beta x err / std, err the mean squared error over the outputs
// of row e, std = sqrt(ret_m2 / ret_n) (1 when there is no spread yet: the error itself), only for
// runs with rnd_act and the RND bonus and only in column a. R = 3 runs, K = 2 heads, E = 2, A = 3.
TEST(RndPair, ActingAddsTheScaledPairBonusToOneAction) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    const int R = 3, K = 2, E = 2, A = 3, dim = 2;
    qf_rnd q;
    std::memset(&q, 0, sizeof q);
    q.net = make_net(R, 1, 1, {6, 4, dim});
    // rows (r, e): target 0, predictor (1, 3) -> err 5; (2, 0) -> err 2
    std::vector<float> ot((size_t)R * E * dim, 0.0f), op = {1, 3, 2, 0, 1, 3, 2, 0, 1, 3, 2, 0};
    std::vector<double> m2 = {16.0, 0.0, 4.0}, n = {4.0, 4.0, 1.0}; // std 2; -; n = 1: no spread yet
    q.out_t = ot.data();
    q.out_p = op.data();
    q.ret_m2 = m2.data();
    q.ret_n = n.data();
    std::vector<qf_run_hp> hp(R, default_hp());
    for (auto &h : hp) {
        h.bonus = QF_BONUS_RND;
        h.rnd_act = 1;
        h.beta = 0.5f;
    }
    hp[1].rnd_act = 0; // untouched
    const qf_net qn = make_net(R, K, 1, {6, A});
    std::vector<float> qv((size_t)R * K * E * A, 1.0f);
    ASSERT_EQ(cpu.b->rnd_act(cpu.b, &q, &qn, hp.data(), E, 2, qv.data()), QF_OK);
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++)
            for (int e = 0; e < E; e++)
                for (int a = 0; a < A; a++) {
                    const double err = e == 0 ? 5.0 : 2.0, sd = r == 0 ? 2.0 : 0.0;
                    const double want = a != 2 || r == 1 ? 1.0 : 1.0 + 0.5 * (sd > 0 ? err / sd : err);
                    EXPECT_NEAR(qv[(((size_t)r * K + k) * E + e) * A + a], want, 1e-6)
                        << "run " << r << " head " << k << " env " << e << " action " << a;
                }
}

// ---- novelty: a never-seen pair against pairs trained on many times -------------------------------

// The predictor's squared error of each run at pair indices pairs (obs=index): target and predictor
// forward through the backend, the mean over outputs (the unnormalized bonus).
std::vector<std::vector<float>> pair_errors(qf_fleet &f, const std::vector<int32_t> &pairs) {
    const int R = f.R, M = (int)pairs.size(), dim = f.rnd.net.w[f.rnd.net.L];
    std::vector<int32_t> xi((size_t)R * M);
    for (int r = 0; r < R; r++) std::copy(pairs.begin(), pairs.end(), xi.begin() + (size_t)r * M);
    std::vector<float> acts((size_t)R * M * std::max<int64_t>(1, f.rnd.net.H)), ot((size_t)R * M * dim),
        op((size_t)R * M * dim);
    qf_net n = f.rnd.net;
    n.active = nullptr;
    EXPECT_EQ(f.b->net_forward(f.b, &n, f.rnd.target, M, nullptr, xi.data(), acts.data(), ot.data()), QF_OK);
    EXPECT_EQ(f.b->net_forward(f.b, &n, f.rnd.pred, M, nullptr, xi.data(), acts.data(), op.data()), QF_OK);
    std::vector<std::vector<float>> e(R, std::vector<float>(M, 0.0f));
    for (int r = 0; r < R; r++)
        for (int m = 0; m < M; m++) {
            double s = 0.0;
            for (int j = 0; j < dim; j++) {
                const double d = op[((size_t)r * M + m) * dim + j] - ot[((size_t)r * M + m) * dim + j];
                s += d * d;
            }
            e[r][m] = (float)(s / dim);
        }
    return e;
}

// DeepSea-6 under uniformly random actions (epsilon 1): both actions of the start state (row 0)
// are taken in every episode's first step, about 300 times each in 600 steps x 4 envs, and the
// predictor trains on them in every batch that samples row 0 (1/6 of the transitions). Cells above
// the diagonal (column > row) are unreachable, so their pairs are never stored: their predictor rows
// never see a gradient. The bonus of every never-seen pair must exceed 10x that of both start pairs
// in every run. The margin is the method's, not this machine's: the start pairs' error falls by
// orders of magnitude under hundreds of Adam steps on them, the unseen pairs' stays at its initial
// size (distinct random target rows), so no CPU's rounding comes near it.
TEST(RndNovelty, NeverSeenPairsOutscorePairsTrainedOnManyTimes) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    const int N = 6, A = 2;
    const qf_config c = config_of({"env.size=6", "rnd_input=state_action", "eps_start=1", "eps_end=1", "beta=0.5"});
    char err[512];
    qf_fleet f;
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(qf_fleet_train(&f, 600, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    std::vector<int32_t> pairs = {0 * A + 0, 0 * A + 1}; // start state (row 0, column 0), both actions
    for (int row = 0; row < N; row++)
        for (int col = row + 1; col < N; col++)
            for (int a = 0; a < A; a++) pairs.push_back((row * N + col) * A + a);
    const std::vector<std::vector<float>> e = pair_errors(f, pairs);
    for (int r = 0; r < f.R; r++) {
        const float trained = std::max(e[r][0], e[r][1]);
        float unseen = INFINITY;
        for (size_t m = 2; m < pairs.size(); m++) unseen = std::min(unseen, e[r][m]);
        EXPECT_GT(unseen, 10.0f * trained) << "run " << r << ": least novel unseen pair " << unseen
                                           << ", start pairs " << e[r][0] << " and " << e[r][1];
    }
    qf_fleet_destroy(&f);
}

// ---- the first update of Q_E and Q_I, recomputed by hand -----------------------------------------

// Tabular networks (hidden=[], obs=index): Q(s, a) = W[s][a] + b[a]. One learner update (8 steps of
// 4 envs with learning_starts 32: the update at step 7) from the initial parameters, whose target
// copies are still the initial ones (target_every 10). From the batch the update sampled:
//   Q_E: y = r + gamma (1 - terminal) max_a' Qt_E(s', a')       (no beta * intr: rnd_value=separate)
//   Q_I: y = intr + gamma_int max_a' Qt_I(s', a')               (never cut at episode ends)
// Squared loss: per parameter the gradient is the sum over the batch of (Q - y) / B, and
// Adam's first step moves it by lr * g / (|g| + eps) (bias corrections make m-hat = g, v-hat = g^2).
// DeepSea-3 ends an episode every 3 steps, so the batch holds terminal transitions (asserted): a Q_I
// that cut there would land elsewhere.
struct Tabular {
    int S, A;
    std::vector<float> p; // [S][A] weights then [A] biases
    float q(int s, int a) const { return p[(size_t)s * A + a] + p[(size_t)S * A + a]; }
    float vmax(int s) const { return std::max(q(s, 0), q(s, 1)); }
};

std::vector<float> adam_first_step(const Tabular &online, const std::vector<float> &y, const qf_sample &s, int row0,
                                   int B, float lr, float huber) {
    std::vector<double> g(online.p.size(), 0.0);
    for (int j = 0; j < B; j++) {
        const int t = row0 * B + j, st = s.idx[t], a = s.action[t];
        double d = (double)online.q(st, a) - y[j];
        d = std::max(-(double)huber, std::min((double)huber, d));
        g[(size_t)st * online.A + a] += d / B;
        g[(size_t)online.S * online.A + a] += d / B;
    }
    std::vector<float> out(online.p);
    for (size_t i = 0; i < g.size(); i++)
        if (g[i] != 0.0) out[i] = (float)(online.p[i] - lr * g[i] / (std::fabs(g[i]) + 1e-8));
    return out;
}

TEST(RndValue, FirstUpdateOfBothValuesMatchesTheHandBackup) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    const qf_config c = config_of({"env.size=3", "hidden=[]", "rnd_value=separate", "gamma_int=0.9", "gamma=0.8",
                                   "beta=0.5", "runs=1", "max_grad_norm=0", "loss=squared"});
    char err[512];
    qf_fleet f;
    ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_TRUE(f.any_int_value);
    const int S = f.net.w[0], A = 2, B = f.B; // DeepSea-3: 9 cells and the end state
    const size_t P = (size_t)f.net.P;
    ASSERT_EQ(S, 10);
    ASSERT_EQ(P, (size_t)S * A + A);
    Tabular qe{S, A, std::vector<float>(f.params, f.params + P)}, qi{S, A, std::vector<float>(f.ival.params, f.ival.params + P)};
    ASSERT_EQ(qf_fleet_train(&f, 8, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(f.n_updates, 1u);
    const qf_sample &s = f.sample;
    ASSERT_EQ(f.hp_host[0].loss, QF_LOSS_SQUARED); // the early bonuses are large: Huber would clip them all alike
    const float huber = INFINITY, lr = f.hp_host[0].lr;
    std::vector<float> ye(B), yi(B), yi_cut(B);
    int terminal = 0;
    for (int j = 0; j < B; j++) {
        const int nx = s.next_idx[j];
        terminal += s.terminal[j];
        ye[j] = s.terminal[j] ? s.reward[j] : s.reward[j] + 0.8f * qe.vmax(nx);
        yi[j] = s.intr[j] + 0.9f * qi.vmax(nx);
        yi_cut[j] = s.terminal[j] ? s.intr[j] : yi[j];
    }
    ASSERT_GT(terminal, 0) << "the batch has no terminal transition: the test would not tell a cut";
    const std::vector<float> pe = adam_first_step(qe, ye, s, 0, B, lr, huber);
    const std::vector<float> pi = adam_first_step(qi, yi, s, 0, B, lr, huber);
    const std::vector<float> pi_cut = adam_first_step(qi, yi_cut, s, 0, B, lr, huber);
    // a parameter's update is lr * g / (|g| + eps) to float rounding of a few ulps of lr and p
    const double tol = 1e-6;
    for (size_t i = 0; i < P; i++) {
        EXPECT_NEAR(f.params[i], pe[i], tol) << "Q_E parameter " << i;
        EXPECT_NEAR(f.ival.params[i], pi[i], tol) << "Q_I parameter " << i;
    }
    // Adam's first step keeps only signs, so also the TD step's d loss / d Q(s, a) of each transition
    // ((Q - y) / B, 0 for the other action): there a cut would show
    bool cut_differs = false;
    for (int j = 0; j < B; j++)
        for (int a = 0; a < A; a++) {
            const int st = s.idx[j];
            auto grad = [&](const Tabular &t, float y) {
                const double d = (double)t.q(st, a) - y;
                return a != s.action[j] ? 0.0 : std::max(-(double)huber, std::min((double)huber, d)) / B;
            };
            EXPECT_NEAR(f.dq[(size_t)j * A + a], grad(qe, ye[j]), tol) << "Q_E dq, transition " << j;
            EXPECT_NEAR(f.ival.dq[(size_t)j * A + a], grad(qi, yi[j]), tol) << "Q_I dq, transition " << j;
            cut_differs |= std::fabs(grad(qi, yi_cut[j]) - grad(qi, yi[j])) > 100 * tol;
        }
    (void)pi_cut;
    EXPECT_TRUE(cut_differs) << "the batch does not tell a cut at episode ends from none";
    qf_fleet_destroy(&f);
}

// ---- the new settings leave the other paths alone -------------------------------------------------

// With beta = 0 the bonus reaches no Q: Q's parameters after training are bit-identical whether
// the bonus would go into Q's target (shared) or into Q_I (separate: acting on Q_E + 0 Q_I), and
// whatever RND reads (s' or (s, a)). So neither option moves any other random stream or operation.
TEST(RndValue, AtBetaZeroQIsTheSameWhateverTheOptions) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    for (const std::vector<std::string> &net :
         {std::vector<std::string>{"hidden=[]"}, std::vector<std::string>{"hidden=[16]", "obs=dense"}}) {
        std::vector<std::vector<float>> params;
        for (const char *opt : {"rnd_value=shared", "rnd_value=separate", "rnd_input=state_action"}) {
            std::vector<std::string> w = net;
            w.push_back("beta=0");
            w.push_back(opt);
            const qf_config c = config_of(w);
            char err[512];
            qf_fleet f;
            ASSERT_EQ(qf_fleet_create(&f, cpu.b, &c, nullptr, nullptr, err, sizeof err), QF_OK) << err;
            ASSERT_EQ(qf_fleet_train(&f, 200, nullptr, nullptr, err, sizeof err), QF_OK) << err;
            params.emplace_back(f.params, f.params + (size_t)f.R * f.net.K * f.net.P);
            qf_fleet_destroy(&f);
        }
        EXPECT_EQ(0, std::memcmp(params[0].data(), params[1].data(), sizeof(float) * params[0].size()))
            << net[0] << ": separate at beta 0";
        EXPECT_EQ(0, std::memcmp(params[0].data(), params[2].data(), sizeof(float) * params[0].size()))
            << net[0] << ": state_action at beta 0";
    }
}

// A run alone equals the same run inside a fleet whose other run has no separate value (the
// intrinsic value's work is per run).
TEST(RndValue, ARunAloneEqualsItselfInAMixedFleet) {
    CpuBackend cpu;
    ASSERT_NE(cpu.b, nullptr);
    const qf_config one = config_of({"hidden=[16]", "obs=dense", "rnd_value=separate", "rnd_input=state_action",
                                     "runs=1", "beta=0.5"});
    qf_config two = one;
    two.runs = 2;
    std::vector<qf_run_hp> hp(2);
    qf_fleet_hp_from_config(&two, &hp[0]);
    hp[1] = hp[0];
    hp[1].rnd_value = QF_RND_VALUE_SHARED;
    hp[1].gamma_int = 0.0f;
    const uint32_t keys[4] = {5, 0, 9, 1};
    char err[512];
    qf_fleet a, b;
    ASSERT_EQ(qf_fleet_create(&a, cpu.b, &one, nullptr, keys, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(qf_fleet_create(&b, cpu.b, &two, hp.data(), keys, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(qf_fleet_train(&a, 150, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    ASSERT_EQ(qf_fleet_train(&b, 150, nullptr, nullptr, err, sizeof err), QF_OK) << err;
    const size_t P = (size_t)a.net.P;
    EXPECT_EQ(0, std::memcmp(a.params, b.params, sizeof(float) * P)) << "Q_E";
    EXPECT_EQ(0, std::memcmp(a.ival.params, b.ival.params, sizeof(float) * P)) << "Q_I";
    qf_fleet_destroy(&a);
    qf_fleet_destroy(&b);
}

}  // namespace
