// cuda_runtime.h (qf_emu) — what CUDA C++ adds to the runtime API, for kernels compiled by g++ and
// run on the CPU (tests/cuda_emu/README.md): the kernel qualifiers, the built-in indices, barriers,
// warp shuffles, atomics and the launch (QF_LAUNCH, which is <<<>>> under nvcc). A block's threads
// run as real threads, concurrently; blocks run one after another.
#ifndef QF_EMU_CUDA_RUNTIME_H
#define QF_EMU_CUDA_RUNTIME_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cmath>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime_api.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __grid_constant__
// One block runs at a time, so a static variable is the block's shared memory.
#define __shared__ static

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
// The built-in indices of the calling thread. A function-local thread_local, not an extern one:
// GCC reaches an extern thread_local through a wrapper that UBSan misreads as a null pointer.
namespace qf_emu {
struct Builtins {
    uint3 thread, block, block_dim, grid_dim;
};
inline Builtins &builtins() {
    static thread_local Builtins b;
    return b;
}
} // namespace qf_emu
#define threadIdx (qf_emu::builtins().thread)
#define blockIdx (qf_emu::builtins().block)
#define blockDim (qf_emu::builtins().block_dim)
#define gridDim (qf_emu::builtins().grid_dim)
static const int warpSize = 32;

namespace qf_emu {
// __syncthreads (with __syncthreads_or's predicate): every live thread of the block must arrive at
// the same call site, else the shim reports a divergent barrier.
int syncthreads(const char *file, int line, int pred);
// __syncwarp and the exchange of __shfl_*: the same contract within a warp.
void syncwarp(const char *file, int line);
uint64_t *warp_slots(); // 32 exchange slots of the calling thread's warp

struct LaunchCfg {
    const char *name;
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    const char *file;
    int line;
};
// Checks the geometry and the pointer arguments (bad_arg: index of a pointer argument outside every
// device allocation, or -1), then runs the kernel on the stream (or queues or captures it). recheck
// repeats the pointer check when the kernel runs (a queued launch or a graph replay may run after a
// buffer it names was freed): it returns bad_arg's index and sets *bad_ptr.
void launch(const LaunchCfg &cfg, const void *key, std::function<void()> body, int bad_arg, const void *bad_ptr,
            std::function<int(const void **)> recheck);
bool is_device_range(const void *p, size_t bytes);

template <class F> struct Launcher;
template <class... P> struct Launcher<void(P...)> {
    void (*kernel)(P...);
    LaunchCfg cfg;
    template <class... A> void operator()(A &&...a) const {
        static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
        std::tuple<std::decay_t<P>...> args(conv<std::decay_t<P>>(std::forward<A>(a))...); // the kernel's types, as CUDA
        int bad = -1, i = 0;
        const void *bad_ptr = nullptr;
        std::apply([&](const auto &...v) { (check(v, i++, bad, bad_ptr), ...); }, args);
        auto k = kernel;
        auto recheck = [args](const void **bp) {
            int bad_now = -1, j = 0;
            std::apply([&](const auto &...v) { (check(v, j++, bad_now, *bp), ...); }, args);
            return bad_now;
        };
        launch(cfg, reinterpret_cast<const void *>(k), [k, args]() { std::apply(k, args); }, bad, bad_ptr, recheck);
    }
    template <class T, class A> static T conv(A &&a) { // implicit conversions only; NULL (an integer) as nullptr
        if constexpr (std::is_pointer_v<T> && std::is_integral_v<std::decay_t<A>>)
            return nullptr;
        else
            return std::forward<A>(a);
    }
    template <class T> static void check(const T &v, int i, int &bad, const void *&bad_ptr) {
        if constexpr (std::is_pointer_v<T>)
            if (v && bad < 0 && !is_device_range((const void *)v, 0)) {
                bad = i;
                bad_ptr = (const void *)v;
            }
    }
};
} // namespace qf_emu

#define QF_LAUNCH(kernel, grid, block, smem, stream)                                                      \
    (qf_emu::Launcher<std::remove_pointer_t<decltype(&kernel)>>{                                          \
        &kernel, qf_emu::LaunchCfg{#kernel, dim3(grid), dim3(block), (size_t)(smem), (stream), __FILE__, __LINE__}})

#define __syncthreads() ((void)qf_emu::syncthreads(__FILE__, __LINE__, 0))
#define __syncthreads_or(pred) qf_emu::syncthreads(__FILE__, __LINE__, (pred) != 0)
#define __syncwarp(...) qf_emu::syncwarp(__FILE__, __LINE__)

template <class T> static inline T qf_emu_shfl(T v, int src_lane, bool ok, const char *file, int line) {
    static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
    uint64_t *slot = qf_emu::warp_slots(), bits = 0;
    const int lane = (int)(threadIdx.x % 32);
    memcpy(&bits, &v, sizeof v);
    slot[lane] = bits;
    qf_emu::syncwarp(file, line); // every lane has written
    T out = v;
    if (ok) memcpy(&out, &slot[src_lane], sizeof out);
    qf_emu::syncwarp(file, line); // every lane has read
    return out;
}
#define __shfl_down_sync(mask, v, delta, ...)                                                             \
    qf_emu_shfl((v), (int)(threadIdx.x % 32) + (int)(delta),                                              \
                (int)(threadIdx.x % 32) + (int)(delta) < 32, __FILE__, __LINE__)
#define __shfl_xor_sync(mask, v, m, ...)                                                                  \
    qf_emu_shfl((v), (int)(threadIdx.x % 32) ^ (int)(m), true, __FILE__, __LINE__)
#define __shfl_sync(mask, v, src, ...) qf_emu_shfl((v), (int)(src) & 31, true, __FILE__, __LINE__)

// Atomics: the compiler's builtins, relaxed (CUDA's atomics order nothing else either).
template <class T> static inline T atomicAdd(T *p, T v) {
    if constexpr (std::is_integral_v<T>) {
        return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
    } else {
        T old = __atomic_load_n(p, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(p, &old, old + v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
        return old;
    }
}
template <class T> static inline T atomicCAS(T *p, T cmp, T v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return cmp;
}
template <class T> static inline T atomicExch(T *p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
template <class T> static inline T atomicOr(T *p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
template <class T> static inline T atomicMin(T *p, T v) {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v < old && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
template <class T> static inline T atomicMax(T *p, T v) {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v > old && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
template <class T> static inline T __ldcg(const T *p) { return *p; }

#endif
