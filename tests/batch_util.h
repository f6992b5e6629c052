// batch_util.h — test helpers: build an env batch on a backend and copy every array of it back to
// the host, so two batches (two seeds, two thread counts, CPU and CUDA) can be compared exactly.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "envs/spec.h"
#include "host/vecenv.h"

struct HostBatch {
    std::vector<float> sf, ep_return, reward, last_return, obs;
    std::vector<int32_t> si, last_length, index;
    std::vector<uint8_t> flags;
    std::vector<uint32_t> episodes, treasures, bad;
};

template <class T>
static void fetch(qf_backend *b, std::vector<T> &dst, const T *src, size_t count) {
    dst.resize(count);
    ASSERT_EQ(b->download(b, dst.data(), src, sizeof(T) * count), QF_OK) << b->err;
}

static inline HostBatch download_batch(const qf_vecenv &v) {
    HostBatch h;
    qf_backend *b = v.backend;
    const size_t n = (size_t)v.batch.R * v.batch.E;
    fetch(b, h.sf, v.batch.sf, QF_NF * n);
    fetch(b, h.si, (const int32_t *)v.batch.si, (QF_NI + 1) * n);
    fetch(b, h.ep_return, v.batch.ep_return, n);
    fetch(b, h.reward, v.batch.reward, n);
    fetch(b, h.flags, v.batch.flags, n);
    fetch(b, h.episodes, v.batch.episodes, n);
    fetch(b, h.last_return, v.batch.last_return, n);
    fetch(b, h.last_length, v.batch.last_length, n);
    fetch(b, h.treasures, v.batch.treasures, n);
    fetch(b, h.bad, v.batch.bad_episodes, n);
    return h;
}

// Bitwise equality of two float arrays (NaN-safe, -0 != +0).
static inline bool same_bits(const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Expect every array of two host batches to be identical; `what` names the comparison.
static inline void expect_same(const HostBatch &a, const HostBatch &b, const std::string &what) {
    EXPECT_TRUE(same_bits(a.sf, b.sf)) << what << ": float state differs";
    EXPECT_EQ(a.si, b.si) << what << ": int state differs";
    EXPECT_TRUE(same_bits(a.ep_return, b.ep_return)) << what << ": ep_return differs";
    EXPECT_TRUE(same_bits(a.reward, b.reward)) << what << ": reward differs";
    EXPECT_EQ(a.flags, b.flags) << what << ": flags differ";
    EXPECT_EQ(a.episodes, b.episodes) << what << ": episode counts differ";
    EXPECT_TRUE(same_bits(a.last_return, b.last_return)) << what << ": last_return differs";
    EXPECT_EQ(a.last_length, b.last_length) << what << ": last_length differs";
    EXPECT_EQ(a.treasures, b.treasures) << what << ": treasure counts differ";
    EXPECT_EQ(a.bad, b.bad) << what << ": bad-episode counts differ";
}

// A batch of R runs x E envs of `kind` with params p for every run and keys (seed, run_ids[r]).
struct Batch {
    qf_vecenv v{};
    std::vector<float> obs;   // host copy of the last next_obs (when requested)
    bool ok = false;
    Batch(qf_backend *b, int kind, const qf_env_params &p, int R, int E, uint32_t seed,
          const std::vector<uint32_t> &run_ids = {}) {
        std::vector<qf_env_params> params(R, p);
        std::vector<uint32_t> keys(2 * R);
        for (int r = 0; r < R; r++) {
            keys[2 * r] = seed;
            keys[2 * r + 1] = run_ids.empty() ? (uint32_t)r : run_ids[r];
        }
        char err[512];
        ok = qf_vecenv_create(&v, b, kind, R, E, params.data(), keys.data(), err, sizeof err) == QF_OK;
        EXPECT_TRUE(ok) << err;
    }
    ~Batch() { qf_vecenv_destroy(&v); }
    Batch(const Batch &) = delete;
    Batch &operator=(const Batch &) = delete;
};

static inline qf_env_params default_params(int kind) {
    qf_env_params p;
    qf_env_params_default(kind, &p);
    qf_env_params_check(kind, &p, nullptr, 0);
    return p;
}
