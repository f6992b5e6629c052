// gpu_util.h — what the CPU-vs-CUDA tests (label `gpu`) share: both backends opened side by side,
// device buffers with host copies, bitwise and tolerance comparisons.
// QFLEET_TEST_CPU_AS_GPU=1 makes a second CPU backend stand in for CUDA on a machine without a GPU:
// a self-check of the tests' own code (every comparison must then hold exactly), not a GPU test.
#ifndef QF_TESTS_GPU_UTIL_H
#define QF_TESTS_GPU_UTIL_H
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/backend.h"

struct Backends {
    qf_backend *cpu = nullptr, *cuda = nullptr;
    std::string why;
    Backends() {
        char err[512];
        cpu = qf_cpu_open(err, sizeof err);
        cuda = qf_cuda_open(err, sizeof err);
        if (!cuda) why = err;
        if (!cuda && std::getenv("QFLEET_TEST_CPU_AS_GPU")) cuda = qf_cpu_open(err, sizeof err);
    }
    ~Backends() {
        qf_backend_close(cpu);
        qf_backend_close(cuda);
    }
    Backends(const Backends &) = delete;
    Backends &operator=(const Backends &) = delete;
};

// n values of T in backend memory, optionally uploaded from a host vector.
template <class T>
struct DevBuf {
    qf_backend *b;
    T *p = nullptr;
    size_t n;
    DevBuf(qf_backend *be, size_t count) : b(be), n(count) {
        p = (T *)b->alloc(b, sizeof(T) * (count ? count : 1));
        EXPECT_NE(p, nullptr) << b->err;
    }
    DevBuf(qf_backend *be, const std::vector<T> &v) : DevBuf(be, v.size()) { put(v); }
    ~DevBuf() { b->release(b, p); }
    DevBuf(const DevBuf &) = delete;
    DevBuf &operator=(const DevBuf &) = delete;
    void put(const std::vector<T> &v) {
        ASSERT_EQ(v.size(), n);
        EXPECT_EQ(b->upload(b, p, v.data(), sizeof(T) * n), QF_OK) << b->err;
    }
    std::vector<T> get() const {
        std::vector<T> v(n);
        EXPECT_EQ(b->download(b, v.data(), p, sizeof(T) * n), QF_OK) << b->err;
        return v;
    }
};

template <class T>
bool same_bits(const std::vector<T> &a, const std::vector<T> &b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Every |a - b| <= rel * (1 + |a|); says how many differ and where the first is.
template <class T>
void expect_close(const std::vector<T> &a, const std::vector<T> &b, double rel, const std::string &what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    size_t bad = 0, first = a.size();
    for (size_t i = 0; i < a.size(); i++)
        if (!(std::fabs((double)a[i] - (double)b[i]) <= rel * (1.0 + std::fabs((double)a[i])))) {
            bad++;
            if (first == a.size()) first = i;
        }
    EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << a.size() << " values differ beyond " << rel
                       << (bad ? " (first at " + std::to_string(first) + ": " + std::to_string((double)a[first]) +
                                     " vs " + std::to_string((double)b[first]) + ")"
                               : std::string());
}

#endif
