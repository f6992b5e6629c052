// test_checkpoint.cc — validation of fleet snapshots (qf_fleet_check_snapshot, host/fleet.h), as a
// checkpoint file forged by someone who recomputed its checksum would present them.
//
// Truths: a snapshot of a real fleet passes and restores into a fresh fleet that then trains bit for
// bit as the fleet that never stopped (the fleet's contract: host/fleet.h); every field changed to a
// value that training could not have produced is refused with the field named (the values are chosen
// by hand from the dynamics: a DeepSea row past the grid, a head beyond the run's, ...); random byte
// flips in the index regions are either refused or, when accepted, restore and train without a fault
// (this suite runs under ASan + UBSan in CI, which turns an access outside the fleet's allocations
// into a failure; one inside its one carved block it cannot see) into a state the check accepts
// again (closure under the dynamics).
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <unistd.h>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "host/config.h"
#include "host/fleet.h"
#include "envs/spec.h"
#include "test_util.h"

namespace {

using Snap = std::vector<char>;
using HpFn = std::function<void(int r, qf_run_hp &h)>;

qf_config parse(const std::string &words, int runs) {
    qf_config c;
    qf_config_default(&c);
    std::vector<std::string> w;
    std::istringstream in(words);
    for (std::string t; in >> t;) w.push_back(t);
    std::vector<char *> argv;
    for (auto &x : w) argv.push_back(&x[0]);
    char msg[512];
    EXPECT_EQ(qf_config_parse(&c, (int)argv.size(), argv.data(), msg, sizeof msg), 0) << msg;
    c.runs = runs;
    return c;
}

// A fleet made from words + runs, each run's hyperparameters from the configuration then edited by fn.
struct Fleet {
    qf_fleet f;
    bool ok = false;
    Fleet(qf_backend *b, const qf_config &c, const HpFn &fn) {
        std::vector<qf_run_hp> hp((size_t)(c.runs * c.seeds));
        for (size_t r = 0; r < hp.size(); r++) {
            qf_fleet_hp_from_config(&c, &hp[r]);
            if (fn) fn((int)r, hp[r]);
        }
        char err[512];
        ok = qf_fleet_create(&f, b, &c, hp.data(), nullptr, err, sizeof err) == QF_OK;
        EXPECT_TRUE(ok) << err;
    }
    ~Fleet() {
        if (ok) qf_fleet_destroy(&f);
    }
    Fleet(const Fleet &) = delete;
    Fleet &operator=(const Fleet &) = delete;
    Snap snap() {
        Snap s(qf_fleet_snapshot_bytes(&f));
        EXPECT_EQ(qf_fleet_snapshot(&f, s.data()), QF_OK);
        return s;
    }
    int train(int64_t steps, std::vector<qf_log_point> *log = nullptr) {
        char err[512];
        const int rc = qf_fleet_train(&f, steps, log ? on_log : nullptr, log, err, sizeof err);
        EXPECT_EQ(rc, QF_OK) << err;
        return rc;
    }
    // the same layout (snapshot sizes and carving) as another fleet
    bool bytes_match(const Fleet &o) const { return f.bytes == o.f.bytes && f.env.bytes == o.f.env.bytes; }
    static void on_log(void *ctx, const qf_fleet *fl, const qf_log_point *p) {
        auto *v = (std::vector<qf_log_point> *)ctx;
        for (int r = 0; r < fl->R; r++) {
            qf_log_point q = p[r];
            q.sps = 0.0; // the only field that depends on the clock
            v->push_back(q);
        }
    }
};

// Offsets of the snapshot's parts (host/fleet.c: learner block, env block, then the host counters
// t, last_log_step, n_updates, v_star, diverged_at [R], regret [R], episodes [R], ep_prev [R][E]).
size_t L(const qf_fleet &f, const void *p) { return (size_t)((const char *)p - (const char *)f.block); }
size_t Ev(const qf_fleet &f, const void *p) { return f.bytes + (size_t)((const char *)p - (const char *)f.env.block); }
size_t H(const qf_fleet &f) { return f.bytes + f.env.bytes; }
size_t H_t(const qf_fleet &f) { return H(f); }
size_t H_log(const qf_fleet &f) { return H(f) + 8; }
size_t H_upd(const qf_fleet &f) { return H(f) + 16; }
size_t H_vstar(const qf_fleet &f) { return H(f) + 20; }
size_t H_div(const qf_fleet &f) { return H(f) + 28; }
size_t H_reg(const qf_fleet &f) { return H_div(f) + 4 * (size_t)f.R; }
size_t H_eps(const qf_fleet &f) { return H_reg(f) + 8 * (size_t)f.R; }
size_t H_prev(const qf_fleet &f) { return H_eps(f) + 8 * (size_t)f.R; }

template <class T> T get(const Snap &s, size_t off, size_t i = 0) {
    T v;
    std::memcpy(&v, s.data() + off + sizeof(T) * i, sizeof v);
    return v;
}
template <class T> void put(Snap &s, size_t off, size_t i, T v) { std::memcpy(s.data() + off + sizeof(T) * i, &v, sizeof v); }

// Expect f to refuse snap with a message naming `field`.
void expect_refused(qf_fleet &f, const Snap &snap, const std::string &field, int64_t max_steps = INT64_MAX) {
    char err[512] = "";
    EXPECT_EQ(qf_fleet_check_snapshot(&f, snap.data(), max_steps, err, sizeof err), QF_ERR) << "forged " << field;
    EXPECT_NE(std::string(err).find(field), std::string::npos) << "forged " << field << ": " << err;
    EXPECT_EQ(std::string(err).find('\n'), std::string::npos) << err;
}

struct Case {
    const char *name;
    std::string words;
    int runs;
    HpFn hp;
    int64_t t1, t2; // snapshot after t1 steps (a multiple of log_every), then t2 more
};

const std::string kSmall = " hidden=[16] batch=8 learning_starts=16 train_every=2 log_every=10 eps_steps=50 target_every=5";

std::vector<Case> cases() {
    return {
        // bootstrap heads with randomized priors and masks (40 heads: masks wider than 32 bits), count
        // bonus acting on (s, a) counts, bsuite's mapping table; run 1 uses 2 of the fleet's 40 heads
        {"deep_sea", "env=deep_sea env.size=6 env.mapping=bsuite obs=index explore=bootstrap heads=40 prior_scale=1 "
                     "mask_p=0.5 bonus=count beta=0.1 count_act=1 envs=3 buffer=90" + kSmall, 2,
         [](int r, qf_run_hp &h) { h.n_heads = r == 1 ? 2 : 40; }, 60, 40},
        // RND (run 0; statistics warmed up by 6 random steps) beside a SimHash count bonus (run 1) on dense
        // observations
        {"cartpole", "env=cartpole explore=rnd rnd_width=8 rnd_dim=4 rnd_warmup=6 count_table=8 simhash_bits=8 envs=2 buffer=70" + kSmall +
                         " updates=2 learning_starts=15 train_every=3", 2,
         [](int r, qf_run_hp &h) {
             if (r == 1) {
                 h.bonus = QF_BONUS_COUNT;
                 h.count_act = 1;
             }
         },
         50, 30},
        {"chain", "env=chain env.size=5 env.horizon=12 explore=epsilon envs=2 buffer=50" + kSmall, 2, nullptr, 40, 30},
        {"gridworld", "env=gridworld env.size=4 env.horizon=9 explore=boltzmann alpha=0.1 envs=2 buffer=50" + kSmall, 1,
         nullptr, 40, 20},
        {"bandit", "env=bandit env.arms=4 explore=epsilon envs=2 buffer=50" + kSmall, 2, nullptr, 40, 20},
        {"mountain_car", "env=mountain_car env.horizon=25 explore=epsilon envs=2 buffer=50" + kSmall, 1, nullptr, 40, 20},
        // RND on (state, action) pairs with its separate intrinsic value and optimistic acting on pair
        // novelty (run 0) beside a run that adds the bonus to Q's target (run 1, also acting on it):
        // state indices, then dense observations
        {"deep_sea_rnd_value", "env=deep_sea env.size=5 obs=index explore=rnd rnd_input=state_action rnd_value=separate "
                               "gamma_int=0.9 rnd_act=1 beta=0.5 envs=3 buffer=60" + kSmall, 2,
         [](int r, qf_run_hp &h) {
             if (r == 1) {
                 h.rnd_value = QF_RND_VALUE_SHARED;
                 h.gamma_int = 0.0f;
             }
         },
         50, 30},
        {"cartpole_rnd_value", "env=cartpole explore=rnd rnd_input=state_action rnd_value=separate rnd_width=8 "
                               "rnd_dim=4 envs=2 buffer=70" + kSmall, 1, nullptr, 40, 30},
    };
}

// ---- the env state check accepts every state the dynamics reach ---------------------------------

// Random actions for many steps in every kind (default parameters, DeepSea's stochastic variant
// too): after every step (and its auto-reset) the state passes qf_env_state_check; the checks are
// bounds derived from the dynamics, so a reachable state they refuse is a bug in them.
TEST(Snapshot, EnvStateCheckAcceptsEveryReachableState) {
    for (int kind = 0; kind < QF_ENV_COUNT; kind++)
        for (int stochastic = 0; stochastic < (kind == QF_ENV_DEEP_SEA ? 2 : 1); stochastic++) {
            qf_env_params p;
            std::memset(&p, 0, sizeof p);
            qf_env_params_default(kind, &p);
            if (kind == QF_ENV_DEEP_SEA) p.deep_sea.stochastic = stochastic;
            const int32_t A = qf_env_n_actions(kind, &p);
            qf_env_state st;
            std::memset(&st, 0, sizeof st);
            qf_rng g0 = qf_rng_make(7, 1, QF_STREAM_RESET, 0, 0);
            qf_env_reset(kind, &p, &st, &g0);
            ASSERT_EQ(qf_env_state_check(kind, &p, &st), nullptr) << "kind " << kind << " after reset";
            int64_t episodes = 0;
            for (uint32_t t = 0; t < 20000; t++) {
                qf_rng ga = qf_rng_make(7, 1, QF_STREAM_ACTION, 0, t);
                const int32_t a = (int32_t)(((uint64_t)qf_rng_next(&ga).v[0] * (uint64_t)A) >> 32);
                qf_rng g = qf_rng_make(7, 1, QF_STREAM_STEP, 0, t);
                uint32_t fl = 0;
                qf_env_step(kind, &p, &st, a, &g, 7, 1, &fl);
                if (fl & (QF_TERMINAL | QF_TRUNCATED)) {
                    qf_rng gr = qf_rng_make(7, 1, QF_STREAM_RESET, 0, t + 1);
                    qf_env_reset(kind, &p, &st, &gr);
                    episodes++;
                }
                const char *bad = qf_env_state_check(kind, &p, &st);
                ASSERT_EQ(bad, nullptr) << "kind " << kind << " step " << t << ": " << bad;
            }
            EXPECT_GT(episodes, 10) << "kind " << kind << ": the walk must cross many episode ends";
        }
}

// ---- an unmodified snapshot passes and continues bit for bit ----------------------------------

TEST(Snapshot, RealSnapshotRestoresAndContinuesBitIdentically) {
    CpuBackend cpu;
    for (const Case &k : cases()) {
        SCOPED_TRACE(k.name);
        const qf_config c = parse(k.words, k.runs);
        Fleet a(cpu.b, c, k.hp), whole(cpu.b, c, k.hp), fresh(cpu.b, c, k.hp);
        ASSERT_TRUE(a.ok && whole.ok && fresh.ok);
        std::vector<qf_log_point> log_whole, log_parts;
        ASSERT_EQ(a.train(k.t1, &log_parts), QF_OK);
        const Snap s = a.snap();
        ASSERT_GT(get<uint32_t>(s, H_upd(a.f)), 0u) << "the snapshot must come after learning started";
        char err[512] = "";
        ASSERT_EQ(qf_fleet_check_snapshot(&fresh.f, s.data(), k.t1, err, sizeof err), QF_OK) << err;
        // the step budget: a snapshot past it is refused
        expect_refused(fresh.f, s, "t (env steps per env)", k.t1 - 1);
        ASSERT_EQ(qf_fleet_restore(&fresh.f, s.data()), QF_OK) << cpu.b->err;
        ASSERT_EQ(fresh.train(k.t2, &log_parts), QF_OK);
        ASSERT_EQ(whole.train(k.t1 + k.t2, &log_whole), QF_OK);
        const Snap end_parts = fresh.snap(), end_whole = whole.snap();
        ASSERT_EQ(end_parts.size(), end_whole.size());
        EXPECT_TRUE(std::memcmp(end_parts.data(), end_whole.data(), end_parts.size()) == 0)
            << "a restored fleet must continue exactly as one that never stopped";
        ASSERT_EQ(log_parts.size(), log_whole.size());
        EXPECT_TRUE(std::memcmp(log_parts.data(), log_whole.data(), sizeof(qf_log_point) * log_parts.size()) == 0);
        // the fleet after its training still accepts the snapshot (only fixed parts are compared)
        EXPECT_EQ(qf_fleet_check_snapshot(&whole.f, s.data(), INT64_MAX, err, sizeof err), QF_OK) << err;
    }
}

// A run that diverged (its parameters poisoned with NaN) is a legitimate state: accepted.
TEST(Snapshot, DivergedRunIsAccepted) {
    CpuBackend cpu;
    const Case k = cases()[0];
    const qf_config c = parse(k.words, k.runs);
    Fleet a(cpu.b, c, k.hp), fresh(cpu.b, c, k.hp);
    ASSERT_TRUE(a.ok && fresh.ok);
    ASSERT_EQ(a.train(30), QF_OK);
    std::vector<float> p((size_t)a.f.R * a.f.net.K * a.f.net.P);
    ASSERT_EQ(qf_fleet_get_params(&a.f, p.data()), QF_OK);
    for (size_t j = (size_t)a.f.net.K * a.f.net.P; j < p.size(); j++) p[j] = NAN; // run 1
    ASSERT_EQ(qf_fleet_set_params(&a.f, p.data()), QF_OK);
    ASSERT_EQ(a.train(30), QF_OK);
    const Snap s = a.snap();
    ASSERT_EQ(get<int32_t>(s, L(a.f, a.f.status), 1), QF_RUN_DIVERGED);
    ASSERT_GE(get<int32_t>(s, H_div(a.f), 1), 0) << "a log point after the divergence records it";
    char err[512] = "";
    EXPECT_EQ(qf_fleet_check_snapshot(&fresh.f, s.data(), INT64_MAX, err, sizeof err), QF_OK) << err;
    EXPECT_EQ(qf_fleet_restore(&fresh.f, s.data()), QF_OK) << cpu.b->err;
}

// Networks loaded from a params.npy (train --load) carry their randomized priors, which the check
// compares as fixed: a fleet resumed from a checkpoint of a loaded fleet must load the same file
// before the check (the runner does), and one that did not load it refuses the checkpoint.
TEST(Snapshot, LoadedPriorsMustBeLoadedAgainBeforeTheCheck) {
    CpuBackend cpu;
    const Case k = cases()[0];
    const qf_config c = parse(k.words, k.runs);
    const std::string dir = "/tmp/qfleet_snapshot_load_" + std::to_string(getpid());
    ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
    char err[512] = "";
    {
        qf_config other = c; // another seed: other priors than a fresh fleet of c has
        other.seed = 77;
        Fleet src(cpu.b, other, k.hp);
        ASSERT_TRUE(src.ok);
        ASSERT_EQ(qf_fleet_export_params(&src.f, dir.c_str(), nullptr, nullptr, err, sizeof err), 0) << err;
    }
    const std::string file = dir + "/params.npy";
    Fleet loaded(cpu.b, c, k.hp), plain(cpu.b, c, k.hp), again(cpu.b, c, k.hp);
    ASSERT_TRUE(loaded.ok && plain.ok && again.ok);
    ASSERT_EQ(qf_fleet_load_params(&loaded.f, file.c_str(), err, sizeof err), 0) << err;
    ASSERT_EQ(loaded.train(k.t1), QF_OK);
    const Snap s = loaded.snap();
    expect_refused(plain.f, s, "prior (randomized prior networks) of run 0");
    ASSERT_EQ(qf_fleet_load_params(&again.f, file.c_str(), err, sizeof err), 0) << err;
    EXPECT_EQ(qf_fleet_check_snapshot(&again.f, s.data(), k.t1, err, sizeof err), QF_OK) << err;
    EXPECT_EQ(qf_fleet_restore(&again.f, s.data()), QF_OK) << cpu.b->err;
    std::system(("rm -rf " + dir).c_str());
}

// ---- every field group, forged ----------------------------------------------------------------

// The forgeries every fleet kind shares; `base` is a real snapshot of fresh's configuration.
void forge_common(qf_fleet &f, const Snap &base) {
    const int R = f.R, E = f.E, A = f.A;
    const int64_t t = get<int64_t>(base, H_t(f));
    const uint32_t upd = get<uint32_t>(base, H_upd(f));
    auto forged = [&](const std::function<void(Snap &)> &edit, const std::string &field, int64_t max_steps = INT64_MAX) {
        Snap s = base;
        edit(s);
        expect_refused(f, s, field, max_steps);
    };
    const int rl = R - 1; // the last run
    // (a) what the configuration fixes
    forged([&](Snap &s) { put<float>(s, L(f, f.hp), (size_t)rl * sizeof(qf_run_hp) / 4, 0.5f); }, "hp (hyperparameters) of run " + std::to_string(rl));
    forged([&](Snap &s) { put<uint32_t>(s, L(f, f.keys), 2 * (size_t)rl, 12345u); }, "keys of run " + std::to_string(rl));
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.active), 0, f.net.K + 1); }, "active (heads in use) of run 0");
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.active + R), 0, 7); }, "active (RND on) of run 0");
    forged([&](Snap &s) { put<uint32_t>(s, Ev(f, f.env.batch.keys), 1, 99u); }, "env.keys of run 0");
    forged([&](Snap &s) { s[Ev(f, f.env.batch.params) + sizeof(qf_env_params) * (size_t)rl] ^= 1; },
           "env.params of run " + std::to_string(rl));
    // (c) host counters
    forged([&](Snap &s) { put<int64_t>(s, H_t(f), 0, -1); }, "t (env steps per env) = -1");
    forged([&](Snap &s) { (void)s; }, "t (env steps per env)", t - 1);
    // train_every steps more make one more round of updates: the schedule no longer matches
    forged([&](Snap &s) { put<int64_t>(s, H_t(f), 0, t + f.cfg.train_every); }, "n_updates");
    forged([&](Snap &s) { put<int64_t>(s, H_log(f), 0, t + 1); }, "last_log_step");
    forged([&](Snap &s) { put<int64_t>(s, H_log(f), 0, -5); }, "last_log_step");
    forged([&](Snap &s) { put<uint32_t>(s, H_upd(f), 0, upd + 1); }, "n_updates");
    forged([&](Snap &s) { put<double>(s, H_vstar(f), 0, 0.25); }, "v_star");
    forged([&](Snap &s) { put<int32_t>(s, H_div(f), (size_t)rl, -2); }, "diverged_at[run " + std::to_string(rl) + "]");
    forged([&](Snap &s) { put<int32_t>(s, H_div(f), (size_t)rl, 1); }, "diverged_at[run " + std::to_string(rl) + "]");
    forged([&](Snap &s) { put<double>(s, H_reg(f), (size_t)rl, INFINITY); }, "regret[run " + std::to_string(rl) + "]");
    forged([&](Snap &s) { put<int64_t>(s, H_eps(f), (size_t)rl, get<int64_t>(s, H_eps(f), rl) + 1); },
           "episodes[run " + std::to_string(rl) + "]");
    forged([&](Snap &s) { put<int64_t>(s, H_eps(f), 0, -3); }, "episodes[run 0]");
    forged([&](Snap &s) {
        const size_t i = (size_t)rl * E + (E - 1);
        const uint32_t env_eps = get<uint32_t>(s, Ev(f, f.env.batch.episodes), i);
        put<uint32_t>(s, H_prev(f), i, env_eps + 1);
        put<int64_t>(s, H_eps(f), (size_t)rl, get<int64_t>(s, H_eps(f), rl) + (env_eps + 1 - get<uint32_t>(base, H_prev(f), i)));
    }, "ep_prev[run " + std::to_string(rl) + "][env " + std::to_string(E - 1) + "]");
    // (b) per run and per env
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.status), (size_t)rl, 2); }, "status[run " + std::to_string(rl) + "]");
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.adam_t), 0, -1); }, "adam_t[run 0]");
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.adam_t), 0, (int32_t)upd + 1); }, "adam_t[run 0]");
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.adam_t), 0, (int32_t)upd - 1); }, "adam_t[run 0]");
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.heads), (size_t)rl * E, f.hp_host[rl].n_heads); },
           "heads[run " + std::to_string(rl) + "][env 0]");
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.heads), 1, -1); }, "heads[run 0][env 1]");
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.actions), (size_t)rl * E + 1, A); }, "actions[run " + std::to_string(rl) + "][env 1]");
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.actions), 0, -7); }, "actions[run 0][env 0]");
    // replay: the first and the last slot
    const int64_t C = f.C;
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.replay.action), (size_t)(rl * C + C - 1), A); },
           "replay.action[run " + std::to_string(rl) + "][slot " + std::to_string(C - 1) + "]");
    forged([&](Snap &s) { put<int32_t>(s, L(f, f.replay.action), 0, -1); }, "replay.action[run 0][slot 0]");
    forged([&](Snap &s) { s[L(f, f.replay.terminal) + 3] = 2; }, "replay.terminal[run 0][slot 3]");
    forged([&](Snap &s) { put<qf_mask>(s, L(f, f.replay.mask), (size_t)(rl * C), (qf_mask)1 << f.hp_host[rl].n_heads); },
           "replay.mask[run " + std::to_string(rl) + "][slot 0]");
    // run 0 uses 40 heads: bit 40 names a head it does not have (bit 39 is one of its own)
    forged([&](Snap &s) { put<qf_mask>(s, L(f, f.replay.mask), 1, (qf_mask)1 << 40); }, "replay.mask[run 0][slot 1]");
    // the Q-diversity sums are sums of standard deviations
    forged([&](Snap &s) { put<float>(s, L(f, f.qdiv), 0, -1.0f); }, "qdiv[run 0]");
    // env batch: flags, episode counters and statistics
    forged([&](Snap &s) { s[Ev(f, f.env.batch.flags) + 1] = 0x10; }, "env flags[run 0][env 1]");
    forged([&](Snap &s) {
        const size_t i = (size_t)rl * E;
        char &fl = s[Ev(f, f.env.batch.flags) + i];
        fl = (fl & (QF_TERMINAL | QF_TRUNCATED)) ? 0 : QF_TRUNCATED; // an episode end that did not happen, or the reverse
    }, "[run " + std::to_string(rl) + "][env 0]");
    forged([&](Snap &s) { put<uint32_t>(s, Ev(f, f.env.batch.episodes), 0, (uint32_t)t + 1); }, "env episodes[run 0][env 0]");
    forged([&](Snap &s) { put<uint32_t>(s, Ev(f, f.env.batch.treasures), 1, get<uint32_t>(s, Ev(f, f.env.batch.episodes), 1) + 1); },
           "env episode statistics [run 0][env 1]");
    forged([&](Snap &s) { put<uint32_t>(s, Ev(f, f.env.batch.solved_at), 1, get<uint32_t>(s, Ev(f, f.env.batch.episodes), 1) + 1); },
           "env episode statistics [run 0][env 1]");
    forged([&](Snap &s) { put<int32_t>(s, Ev(f, f.env.batch.last_length), 0, -1); }, "env last_length / len_sum [run 0][env 0]");
    forged([&](Snap &s) { put<int32_t>(s, Ev(f, f.env.batch.len_sum), 0, -1); }, "env last_length / len_sum [run 0][env 0]");
    // the episode step counter (every kind has one): negative
    forged([&](Snap &s) { put<int32_t>(s, Ev(f, f.env.batch.si), (size_t)QF_NI * R * E + 1, -1); }, "env state [run 0][env 1]");
}

// Forge field `si` row j / `sf` row j of env (run r, env e) of snapshot base.
Snap with_si(const qf_fleet &f, const Snap &base, int j, int r, int e, int32_t v) {
    Snap s = base;
    put<int32_t>(s, Ev(f, f.env.batch.si), (size_t)j * f.R * f.E + (size_t)r * f.E + e, v);
    return s;
}
Snap with_sf(const qf_fleet &f, const Snap &base, int j, int r, int e, float v) {
    Snap s = base;
    put<float>(s, Ev(f, f.env.batch.sf), (size_t)j * f.R * f.E + (size_t)r * f.E + e, v);
    return s;
}

// A real snapshot of case k after its t1 steps, and a fresh fleet to check against.
struct Forgery {
    CpuBackend cpu;
    qf_config c;
    std::unique_ptr<Fleet> trained, fresh;
    Snap base;
    explicit Forgery(const Case &k) {
        c = parse(k.words, k.runs);
        trained.reset(new Fleet(cpu.b, c, k.hp));
        fresh.reset(new Fleet(cpu.b, c, k.hp));
        if (!trained->ok || !fresh->ok) return;
        trained->train(k.t1);
        base = trained->snap();
        char err[512] = "";
        EXPECT_EQ(qf_fleet_check_snapshot(&fresh->f, base.data(), k.t1, err, sizeof err), QF_OK) << err;
    }
};

TEST(Snapshot, ForgedDeepSeaFieldsAreRefused) {
    Forgery g(cases()[0]);
    ASSERT_FALSE(g.base.empty());
    qf_fleet &f = g.fresh->f;
    const Snap &b = g.base;
    forge_common(f, b);
    const int N = g.c.env_params.deep_sea.size, S = N * N + 1, R = f.R, E = f.E;
    const int64_t C = f.C;
    // the randomized prior networks and the mapping table are fixed by the configuration
    Snap s = b;
    put<float>(s, L(f, f.prior), 5, get<float>(s, L(f, f.prior), 5) + 1.0f);
    expect_refused(f, s, "prior (randomized prior networks) of run 0");
    s = b;
    s[Ev(f, f.env.batch.params) + offsetof(qf_deep_sea_params, map_bits) + 2] ^= 4;
    expect_refused(f, s, "env.params of run 0");
    // state indices (embedded inputs): current, next, and in the replay
    s = b;
    put<int32_t>(s, L(f, f.obs_idx), 2, S);
    expect_refused(f, s, "obs_idx[run 0][env 2]");
    s = b;
    put<int32_t>(s, L(f, f.next_idx), (size_t)E, -1);
    expect_refused(f, s, "next_idx[run 1][env 0]");
    s = b;
    put<int32_t>(s, L(f, f.replay.idx), (size_t)(C + 4), S);
    expect_refused(f, s, "replay.idx[run 1][slot 4]");
    s = b;
    put<int32_t>(s, L(f, f.replay.next_idx), (size_t)(C - 1), 1 << 30);
    expect_refused(f, s, "replay.next_idx[run 0][slot " + std::to_string(C - 1) + "]");
    // run 1 uses 2 of the fleet's 3 heads: head 2 exists in memory but is not the run's
    s = b;
    put<int32_t>(s, L(f, f.heads), (size_t)E + 1, 2);
    expect_refused(f, s, "heads[run 1][env 1] = 2, outside [0, 2)");
    // exact visit counts and (state, action) counts: their sums are t * E
    s = b;
    put<uint32_t>(s, L(f, f.counts.cnt), (size_t)S + 3, get<uint32_t>(s, L(f, f.counts.cnt), (size_t)S + 3) + 1);
    expect_refused(f, s, "counts.cnt of run 1");
    s = b;
    put<uint32_t>(s, L(f, f.counts.cnt_sa), 0, get<uint32_t>(s, L(f, f.counts.cnt_sa), 0) + 7);
    expect_refused(f, s, "counts.cnt_sa of run 0");
    // env states: row (t) past the grid never terminates; column beyond the row; bad flag not 0/1
    const int ti = QF_NI; // si row of the episode step
    expect_refused(f, with_si(f, b, ti, 0, 1, N), "env state [run 0][env 1]: t (row)");
    const int32_t row = get<int32_t>(b, Ev(f, f.env.batch.si), (size_t)ti * R * E + 1);
    expect_refused(f, with_si(f, b, 0, 0, 1, row + 1), "env state [run 0][env 1]: i[0] (column)");
    expect_refused(f, with_si(f, b, 0, 1, 0, -1), "env state [run 1][env 0]: i[0] (column)");
    expect_refused(f, with_si(f, b, 1, 1, 2, 2), "env state [run 1][env 2]: i[1] (bad-episode flag)");
    // DeepSea episodes take exactly N steps: one more finished episode is impossible
    s = b;
    put<uint32_t>(s, Ev(f, f.env.batch.episodes), 2, get<uint32_t>(s, Ev(f, f.env.batch.episodes), 2) + 1);
    expect_refused(f, s, "env episodes[run 0][env 2]");
    // first_treasure without any treasure
    s = b;
    put<uint32_t>(s, Ev(f, f.env.batch.first_treasure), 0, 1);
    put<uint32_t>(s, Ev(f, f.env.batch.treasures), 0, 0);
    expect_refused(f, s, "env episode statistics [run 0][env 0]");
}

// RND's separate intrinsic value: its fixed hyperparameters and its Adam step count are checked.
TEST(Snapshot, ForgedIntrinsicValueFieldsAreRefused) {
    Forgery g(cases()[6]);
    ASSERT_FALSE(g.base.empty());
    qf_fleet &f = g.fresh->f;
    const Snap &b = g.base;
    ASSERT_TRUE(f.any_int_value);
    Snap s = b;
    put<int32_t>(s, L(f, f.ival.adam_t), 1, get<int32_t>(s, L(f, f.ival.adam_t), 1) + 1);
    expect_refused(f, s, "ival.adam_t[run 1]");
    s = b;
    put<int32_t>(s, L(f, f.ival.active), 1, 1);
    expect_refused(f, s, "ival.active (runs with rnd_value=separate) of run 1");
    s = b;
    put<float>(s, L(f, f.ival.hp), offsetof(qf_run_hp, gamma) / sizeof(float), 0.5f);
    expect_refused(f, s, "ival.hp (hyperparameters of the intrinsic value) of run 0");
}

TEST(Snapshot, ForgedCartPoleRndAndSimHashFieldsAreRefused) {
    Forgery g(cases()[1]);
    ASSERT_FALSE(g.base.empty());
    qf_fleet &f = g.fresh->f;
    const Snap &b = g.base;
    forge_common(f, b);
    ASSERT_EQ(f.counts.mode, QF_COUNT_SIMHASH);
    ASSERT_TRUE(f.has_rnd);
    Snap s = b;
    put<float>(s, L(f, f.rnd.target), (size_t)f.rnd.net.P + 3, 0.125f);
    expect_refused(f, s, "rnd.target (RND target networks) of run 1");
    s = b;
    put<float>(s, L(f, f.counts.proj), 1, 3.0f);
    expect_refused(f, s, "counts.proj (SimHash projections) of run 0");
    // RND's Adam step and its running statistics count every update / every env step
    s = b;
    put<int32_t>(s, L(f, f.rnd.adam_t), 0, get<int32_t>(s, L(f, f.rnd.adam_t), 0) - 1);
    expect_refused(f, s, "rnd.adam_t[run 0]");
    s = b;
    put<double>(s, L(f, f.rnd.ret_n), 0, -1.0);
    expect_refused(f, s, "rnd.ret_n[run 0]");
    s = b;
    put<double>(s, L(f, f.rnd.obs_n), 1, NAN);
    expect_refused(f, s, "rnd.obs_n[run 1]");
    // SimHash tables: a used slot with no count, a key that no code makes, more visits than steps
    const size_t cap = (size_t)1 << f.counts.log2cap;
    size_t empty = 0, used = 0;
    for (size_t j = 0; j < cap; j++) (get<uint64_t>(b, L(f, f.counts.key), cap + j) ? used : empty) = j;
    ASSERT_NE(get<uint64_t>(b, L(f, f.counts.key), cap + used), 0u);
    ASSERT_EQ(get<uint64_t>(b, L(f, f.counts.key), cap + empty), 0u);
    s = b;
    put<uint64_t>(s, L(f, f.counts.key), cap + empty, 5u);
    expect_refused(f, s, "counts.key[run 1][slot " + std::to_string(empty) + "]");
    s = b;
    put<uint64_t>(s, L(f, f.counts.key), cap + used, (uint64_t)1 << 40); // codes have simhash_bits = 8 bits
    expect_refused(f, s, "counts.key[run 1][slot " + std::to_string(used) + "]");
    s = b;
    put<uint32_t>(s, L(f, f.counts.cnt), cap + used, 1u << 20);
    expect_refused(f, s, "counts.cnt of run 1");
    size_t empty_sa = cap;
    for (size_t j = 0; j < cap; j++)
        if (!get<uint64_t>(b, L(f, f.counts.key_sa), cap + j)) empty_sa = j;
    ASSERT_LT(empty_sa, cap);
    s = b;
    put<uint32_t>(s, L(f, f.counts.cnt_sa), cap + empty_sa, 3u); // a count in an empty slot
    expect_refused(f, s, "counts.key_sa[run 1][slot " + std::to_string(empty_sa) + "]");
    // CartPole states: not finite, or past the termination bounds (such a state has been reset)
    expect_refused(f, with_sf(f, b, 0, 0, 1, NAN), "env state [run 0][env 1]: f[0] (x)");
    expect_refused(f, with_sf(f, b, 0, 1, 0, 2.5f), "env state [run 1][env 0]: f[0] (x)");
    expect_refused(f, with_sf(f, b, 1, 0, 0, INFINITY), "env state [run 0][env 0]: f[1] (x_dot)");
    expect_refused(f, with_sf(f, b, 2, 1, 1, 0.3f), "env state [run 1][env 1]: f[2] (theta)");
    expect_refused(f, with_sf(f, b, 3, 0, 0, -NAN), "env state [run 0][env 0]: f[3] (theta_dot)");
    expect_refused(f, with_si(f, b, QF_NI, 0, 0, 500), "env state [run 0][env 0]: t (episode step)");
}

TEST(Snapshot, ForgedTabularAndOtherEnvStatesAreRefused) {
    {
        SCOPED_TRACE("chain");
        Forgery g(cases()[2]);
        ASSERT_FALSE(g.base.empty());
        qf_fleet &f = g.fresh->f;
        forge_common(f, g.base);
        expect_refused(f, with_si(f, g.base, 0, 1, 1, 5), "env state [run 1][env 1]: i[0] (position)");
        expect_refused(f, with_si(f, g.base, QF_NI, 0, 0, 12), "env state [run 0][env 0]: t (episode step)");
        Snap s = g.base;
        put<int32_t>(s, L(f, f.replay.idx), 0, 5);
        expect_refused(f, s, "replay.idx[run 0][slot 0]");
    }
    {
        SCOPED_TRACE("gridworld");
        Forgery g(cases()[3]);
        ASSERT_FALSE(g.base.empty());
        qf_fleet &f = g.fresh->f;
        forge_common(f, g.base);
        expect_refused(f, with_si(f, g.base, 0, 0, 1, 16), "env state [run 0][env 1]: i[0] (cell)");
        // cell 15 is 6 moves from cell 0: impossible at episode step 0
        Snap s = with_si(f, g.base, QF_NI, 0, 0, 0);
        s[Ev(f, f.env.batch.flags)] = QF_TRUNCATED;
        put<int32_t>(s, Ev(f, f.env.batch.si), 0, 15);
        expect_refused(f, s, "env state [run 0][env 0]: i[0] (cell)");
    }
    {
        SCOPED_TRACE("bandit");
        Forgery g(cases()[4]);
        ASSERT_FALSE(g.base.empty());
        qf_fleet &f = g.fresh->f;
        forge_common(f, g.base);
        expect_refused(f, with_si(f, g.base, QF_NI, 1, 0, 1), "env state [run 1][env 0]: t (episode step");
    }
    {
        SCOPED_TRACE("mountain_car");
        Forgery g(cases()[5]);
        ASSERT_FALSE(g.base.empty());
        qf_fleet &f = g.fresh->f;
        forge_common(f, g.base);
        expect_refused(f, with_sf(f, g.base, 0, 0, 0, 0.7f), "env state [run 0][env 0]: f[0] (position)");
        expect_refused(f, with_sf(f, g.base, 1, 0, 1, -0.08f), "env state [run 0][env 1]: f[1] (velocity)");
        Snap s = with_sf(f, g.base, 0, 0, 1, 0.55f);
        s = with_sf(f, s, 1, 0, 1, 0.01f);
        expect_refused(f, s, "env state [run 0][env 1]: f[0] (position: terminal)");
    }
}

// qf_fleet_restore itself refuses a forged snapshot, and uploads nothing then.
TEST(Snapshot, RestoreRefusesAForgedSnapshotAndLeavesTheFleetAlone) {
    Forgery g(cases()[0]);
    ASSERT_FALSE(g.base.empty());
    qf_fleet &f = g.fresh->f;
    const Snap before = g.fresh->snap();
    Snap s = g.base;
    put<int32_t>(s, Ev(f, f.env.batch.si), (size_t)QF_NI * f.R * f.E, 1000); // a DeepSea row far past the grid
    EXPECT_EQ(qf_fleet_restore(&f, s.data()), QF_ERR);
    EXPECT_NE(std::string(g.cpu.b->err).find("env state [run 0][env 0]: t (row)"), std::string::npos) << g.cpu.b->err;
    const Snap after = g.fresh->snap();
    EXPECT_TRUE(before == after) << "a refused snapshot must not change the fleet";
}

// ---- random corruption: refused, or accepted and safe ------------------------------------------

// Flip random bytes of the regions training reads as indices, counters or states; every accepted
// snapshot is restored and trained (acting, stepping, storing, learning, logging) under the sanitizers.
void corrupt_loop(const Case &k, int trials, uint32_t seed) {
    SCOPED_TRACE(k.name);
    Forgery g(k);
    ASSERT_FALSE(g.base.empty());
    qf_fleet &f = g.fresh->f;
    const int64_t R = f.R, E = f.E, N = R * E, C = f.C;
    struct Region {
        size_t off, bytes;
    };
    std::vector<Region> regions = {
        {L(f, f.status), 4 * (size_t)R},          {L(f, f.adam_t), 4 * (size_t)R},
        {L(f, f.heads), 4 * (size_t)N},           {L(f, f.actions), 4 * (size_t)N},
        {L(f, f.replay.action), 4 * (size_t)(R * C)}, {L(f, f.replay.terminal), (size_t)(R * C)},
        {L(f, f.replay.mask), 8 * (size_t)(R * C)},   {Ev(f, f.env.batch.si), 4 * (size_t)((QF_NI + 1) * N)},
        {Ev(f, f.env.batch.sf), 4 * (size_t)(QF_NF * N)}, {Ev(f, f.env.batch.flags), (size_t)N},
        {Ev(f, f.env.batch.episodes), 4 * (size_t)N}, {Ev(f, f.env.batch.first_treasure), 4 * (size_t)N},
        {Ev(f, f.env.batch.last_length), 4 * (size_t)N}, {H(f), qf_fleet_snapshot_bytes(&f) - H(f)},
    };
    if (f.embed) {
        regions.push_back({L(f, f.obs_idx), 4 * (size_t)N});
        regions.push_back({L(f, f.next_idx), 4 * (size_t)N});
        regions.push_back({L(f, f.replay.idx), 4 * (size_t)(R * C)});
        regions.push_back({L(f, f.replay.next_idx), 4 * (size_t)(R * C)});
    }
    if (f.counts.mode == QF_COUNT_EXACT) regions.push_back({L(f, f.counts.cnt), 4 * (size_t)(R * f.counts.S)});
    if (f.counts.mode == QF_COUNT_SIMHASH) {
        const size_t cap = (size_t)1 << f.counts.log2cap;
        regions.push_back({L(f, f.counts.key), 8 * (size_t)R * cap});
        regions.push_back({L(f, f.counts.cnt), 4 * (size_t)R * cap});
    }
    if (f.has_rnd) regions.push_back({L(f, f.rnd.adam_t), 4 * (size_t)R});
    std::mt19937 rng(seed);
    int refused = 0, accepted = 0;
    for (int i = 0; i < trials; i++) {
        Snap s = g.base;
        const int flips = 1 + (int)(rng() % 3);
        for (int j = 0; j < flips; j++) {
            const Region &rg = regions[rng() % regions.size()];
            const size_t at = rg.off + rng() % rg.bytes;
            if (rng() & 1) s[at] ^= (char)(1 + rng() % 255); // a random byte value
            else s[at] ^= (char)(1u << (rng() % 8));          // one bit: more values stay in range
        }
        char err[512] = "";
        if (qf_fleet_check_snapshot(&f, s.data(), INT64_MAX, err, sizeof err) != QF_OK) {
            refused++;
            EXPECT_NE(std::string(err).find("snapshot: "), std::string::npos) << err;
            continue;
        }
        accepted++;
        ASSERT_EQ(qf_fleet_restore(&f, s.data()), QF_OK) << g.cpu.b->err;
        ASSERT_EQ(g.fresh->train(3), QF_OK) << "an accepted snapshot must train";
        // closure: the dynamics take an accepted state only to states the check accepts (else the
        // check accepted a state training cannot reach, or refuses one it can)
        const Snap next = g.fresh->snap();
        ASSERT_EQ(qf_fleet_check_snapshot(&f, next.data(), INT64_MAX, err, sizeof err), QF_OK)
            << err << " (after 3 steps from an accepted corruption)";
    }
    // the loop must exercise both answers: most flips make impossible values, some harmless ones
    EXPECT_GT(refused, trials / 4) << accepted << " accepted";
    EXPECT_GT(accepted, 0) << refused << " refused";
    EXPECT_EQ(refused + accepted, trials);
    std::printf("%s: %d of %d corrupted snapshots refused, %d accepted and trained\n", k.name, refused, trials, accepted);
}

TEST(Snapshot, RandomCorruptionIsRefusedOrSafe) {
    const std::vector<Case> k = cases();
    corrupt_loop(k[0], 600, 1u);
    corrupt_loop(k[1], 600, 2u);
    corrupt_loop(k[2], 300, 3u);
    corrupt_loop(k[3], 300, 4u);
    corrupt_loop(k[4], 200, 5u);
    corrupt_loop(k[5], 200, 6u);
}

std::vector<Case> gpu_cases() {
    std::vector<Case> all = cases(), k = {all[0], all[1], all[6]};
    for (Case &c : k) {
        c.t1 = 20; // learning has started (learning_starts 16 and 15 transitions)
        c.t2 = 10;
    }
    return k;
}

// ---- the CUDA backend (label gpu: ctest runs these twice, see tests/CMakeLists.txt) ----------

// A CUDA fleet's snapshots satisfy the same invariants (its operations are the CPU's twins) and
// resume bit for bit (the GPU backend is reproducible run to run on one device).
TEST(SnapshotGpu, CudaFleetSnapshotPassesAndResumesBitIdentically) {
    char err[512] = "";
    qf_backend *cuda = qf_cuda_open(err, sizeof err);
    if (!cuda) GTEST_SKIP() << "no usable GPU: " << err;
    // the richest cases (bootstrap + prior + exact counts; RND + SimHash; RND pairs + Q_I), shortened: the shim
    // that runs this in CI executes kernels slowly
    for (const Case &k : gpu_cases()) {
        SCOPED_TRACE(k.name);
        const qf_config c = parse(k.words, k.runs);
        Fleet whole(cuda, c, k.hp), fresh(cuda, c, k.hp);
        ASSERT_TRUE(whole.ok && fresh.ok);
        // t1 is a multiple of log_every: stopping there logs what a longer call logs there anyway
        ASSERT_EQ(whole.train(k.t1), QF_OK);
        const Snap s = whole.snap();
        ASSERT_EQ(whole.train(k.t2), QF_OK);
        ASSERT_EQ(qf_fleet_check_snapshot(&fresh.f, s.data(), k.t1, err, sizeof err), QF_OK) << err;
        ASSERT_EQ(qf_fleet_restore(&fresh.f, s.data()), QF_OK) << cuda->err;
        ASSERT_EQ(fresh.train(k.t2), QF_OK);
        const Snap end_parts = fresh.snap(), end_whole = whole.snap();
        EXPECT_TRUE(end_parts == end_whole) << "a restored CUDA fleet must continue exactly as one that never stopped";
        // a forged head index is refused here too
        Snap bad = s;
        put<int32_t>(bad, L(fresh.f, fresh.f.heads), 0, fresh.f.net.K);
        expect_refused(fresh.f, bad, "heads[run 0][env 0]");
    }
    qf_backend_close(cuda);
}

// What the configuration fixes is the same bits on both backends (initial parameters, priors, RND
// targets and SimHash projections come from Philox and the project's own float math), so a CUDA
// fleet's checkpoint passes the check of a CPU fleet (resuming a GPU sweep on a CPU machine).
TEST(SnapshotGpu, CudaSnapshotPassesTheCheckOfACpuFleet) {
    char err[512] = "";
    qf_backend *cuda = qf_cuda_open(err, sizeof err);
    if (!cuda) GTEST_SKIP() << "no usable GPU: " << err;
    CpuBackend cpu;
    for (const Case &k : gpu_cases()) {
        SCOPED_TRACE(k.name);
        const qf_config c = parse(k.words, k.runs);
        Fleet g(cuda, c, k.hp), onc(cpu.b, c, k.hp);
        ASSERT_TRUE(g.ok && onc.ok);
        ASSERT_EQ(g.bytes_match(onc), true);
        ASSERT_EQ(g.train(k.t1), QF_OK);
        const Snap s = g.snap();
        EXPECT_EQ(qf_fleet_check_snapshot(&onc.f, s.data(), k.t1, err, sizeof err), QF_OK) << err;
    }
    qf_backend_close(cuda);
}

} // namespace
