// emu.cc — the qf_emu CUDA shim: the runtime, cuBLAS and graph capture of cuda_runtime_api.h and
// cublas_v2.h, on the CPU, for tests only (README.md beside it says what it proves and what not).
//
// Memory: cudaMalloc gives exactly the bytes asked for, filled with 0xFF (a float read before any
// write is NaN), in a registry; outside ASan builds each allocation sits between two guard zones,
// checked after every kernel and copy. Kernels: each block's threads are real threads (a pool),
// running concurrently, so __shared__ and __syncthreads behave and ThreadSanitizer sees races within
// a block; blocks run one after another. Streams: work runs at once, or with QF_EMU_DEFER=1 work on
// non-default streams waits in a queue until something synchronizes with it. A fault inside a kernel
// is sticky, as on a device: every later call returns the error.
#include <cblas.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#define QF_EMU_GUARD 0 // AddressSanitizer checks the exact bytes itself
#else
#define QF_EMU_GUARD 256
#endif


struct qf_emu_stream {
    unsigned flags = 0;
    std::deque<std::pair<std::string, std::function<void()>>> queue;
    struct qf_emu_graph *capture = nullptr;
};
struct qf_emu_event {
    qf_emu_stream *stream = nullptr;
    bool done = false;
    double t = 0;
};
struct qf_emu_graph {
    std::vector<std::pair<std::string, std::function<void()>>> work;
    bool invalid = false;
};
struct qf_emu_blas {
    cudaStream_t stream = nullptr;
};

namespace qf_emu {
namespace {

// ---- errors --------------------------------------------------------------------------------------
std::recursive_mutex api_mu; // one host call at a time (the tests are single-threaded on the host)
std::mutex fault_mu;             // device threads report faults while the host thread holds api_mu
thread_local cudaError_t last_error = cudaSuccess;
std::atomic<cudaError_t> sticky{cudaSuccess};
std::string fault_msg;
long long n_launches = 0;
bool deferred = [] {
    const char *v = getenv("QF_EMU_DEFER");
    return v && *v && strcmp(v, "0") != 0;
}();

cudaError_t ret(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}
// Prints and keeps the message; a sticky code poisons the context, as a device fault does.
cudaError_t report(cudaError_t code, bool is_sticky, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "qf_emu: %s\n", buf);
    {
        std::lock_guard<std::mutex> lk(fault_mu);
        fault_msg = buf;
        cudaError_t none = cudaSuccess;
        if (is_sticky) sticky.compare_exchange_strong(none, code);
    }
    return ret(code);
}

// ---- memory --------------------------------------------------------------------------------------
struct Alloc {
    char *base;
    size_t size;
};
std::map<uintptr_t, Alloc> allocs;
size_t allocated = 0;
const size_t kTotal = (size_t)512 << 20; // what cudaMemGetInfo reports

const Alloc *find_alloc(const void *p) {
    auto it = allocs.upper_bound((uintptr_t)p);
    if (it == allocs.begin()) return nullptr;
    --it;
    const Alloc &a = it->second;
    return (uintptr_t)p <= (uintptr_t)a.base + a.size ? &a : nullptr;
}

unsigned char guard_byte(size_t i) { return (unsigned char)(0xA5 ^ (i * 31)); }
void fill_guard(char *g) {
    for (size_t i = 0; i != QF_EMU_GUARD; i++) g[i] = (char)guard_byte(i);
}
bool guard_ok(const char *g) {
    for (size_t i = 0; i != QF_EMU_GUARD; i++)
        if ((unsigned char)g[i] != guard_byte(i)) return false;
    return true;
}
// After each piece of work: did it write outside its allocations?
void check_guards(const std::string &what) {
    if (!QF_EMU_GUARD || sticky != cudaSuccess) return;
    for (auto &kv : allocs) {
        const Alloc &a = kv.second;
        const bool before = guard_ok(a.base - QF_EMU_GUARD), after = guard_ok(a.base + a.size);
        if (!before || !after)
            report(cudaErrorIllegalAddress, true, "%s wrote %s the allocation of %zu bytes at %p (out of bounds)",
                   what.c_str(), after ? "before the start of" : "past the end of", a.size, (void *)a.base);
    }
}

// ---- streams -------------------------------------------------------------------------------------
qf_emu_stream legacy_stream; // stream 0: the legacy default stream
std::set<qf_emu_stream *> streams;
int capturing = 0; // streams being captured

qf_emu_stream *stream_of(cudaStream_t s) { return s ? s : &legacy_stream; }
bool valid_stream(cudaStream_t s) { return !s || streams.count(s); }

void run_now(const std::string &what, const std::function<void()> &fn) {
    if (sticky != cudaSuccess) return; // a faulted context runs nothing more
    fn();
    check_guards(what);
}
void drain(qf_emu_stream *s) {
    while (!s->queue.empty()) {
        auto w = std::move(s->queue.front());
        s->queue.pop_front();
        run_now(w.first, w.second);
    }
}
void drain_all() {
    for (auto *s : streams) drain(s);
}
// Work on the legacy stream waits for every blocking stream (not for cudaStreamNonBlocking ones).
void drain_blocking() {
    for (auto *s : streams)
        if (!(s->flags & cudaStreamNonBlocking)) drain(s);
}
void enqueue(cudaStream_t st, std::string what, std::function<void()> fn) {
    qf_emu_stream *s = stream_of(st);
    if (s->capture) {
        s->capture->work.emplace_back(std::move(what), std::move(fn));
    } else if (deferred && s != &legacy_stream) {
        s->queue.emplace_back(std::move(what), std::move(fn));
    } else {
        if (s == &legacy_stream) drain_blocking();
        run_now(what, fn);
    }
}
// A call that synchronizes with the host is not allowed while a stream is captured (it invalidates
// the capture, as in CUDA's global capture mode).
bool capture_forbids(const char *call) {
    if (!capturing) return false;
    for (auto *s : streams)
        if (s->capture) s->capture->invalid = true;
    report(cudaErrorStreamCaptureUnsupported, false, "%s while a stream is being captured", call);
    return true;
}

// ---- kernel execution ----------------------------------------------------------------------------
// The barrier of a block (or of a warp): every live thread arrives at the same call site.
struct Barrier {
    std::mutex m;
    std::condition_variable cv;
    int n = 0, arrived = 0, exited = 0, pred_or = 0, result = 0;
    unsigned long phase = 0;
    bool broken = false;
    const char *file = nullptr;
    int line = 0;
    void reset(int count) {
        n = count;
        arrived = exited = pred_or = result = 0;
        broken = false;
        file = nullptr;
    }
    void release() { // under m
        result = pred_or;
        pred_or = arrived = 0;
        phase++;
        cv.notify_all();
    }
};

struct Block {
    const char *kernel = "";
    bool sequential = false;     // threads one after another on the host thread (a barrier-free kernel)
    std::atomic<long> barriers{0}; // barrier and shuffle arrivals seen
    const std::function<void()> *body = nullptr;
    dim3 grid, block;
    uint3 idx;
    int nthreads = 0;
    Barrier bar;
    std::unique_ptr<Barrier[]> warp_bar;
    std::unique_ptr<uint64_t[]> warp_slot; // [warps][32]
    std::mutex done_m;
    std::condition_variable done_cv;
    int running = 0;
};
thread_local Block *cur_block = nullptr;

std::string where(const Block &b) {
    char s[256];
    snprintf(s, sizeof s, "kernel %s, block (%u,%u,%u), thread (%u,%u,%u)", b.kernel, b.idx.x, b.idx.y, b.idx.z,
             threadIdx.x, threadIdx.y, threadIdx.z);
    return s;
}

int arrive(Barrier &bar, const char *kind, const char *file, int line, int pred) {
    if (cur_block->sequential) {
        report(cudaErrorLaunchFailure, true,
               "%s at %s:%d in %s, whose earlier launches reached no barrier and now run their threads one after "
               "another: rerun with QF_EMU_THREADS=all",
               kind, file, line, where(*cur_block).c_str());
        return pred;
    }
    cur_block->barriers.fetch_add(1, std::memory_order_relaxed);
    std::unique_lock<std::mutex> lk(bar.m);
    if (bar.broken) return pred;
    if (bar.arrived > 0 && (bar.line != line || strcmp(bar.file, file) != 0)) {
        report(cudaErrorLaunchFailure, true, "divergent %s: threads wait at %s:%d and at %s:%d (%s)", kind, bar.file,
               bar.line, file, line, where(*cur_block).c_str());
        bar.broken = true;
        bar.release();
        return pred;
    }
    bar.file = file;
    bar.line = line;
    bar.arrived++;
    bar.pred_or |= pred;
    if (bar.arrived + bar.exited == bar.n) {
        if (bar.exited > 0) {
            report(cudaErrorLaunchFailure, true, "%s at %s:%d reached by %d of %d threads; the others had exited (%s)",
                   kind, file, line, bar.arrived, bar.n, where(*cur_block).c_str());
            bar.broken = true;
        }
        bar.release();
        return bar.result;
    }
    const unsigned long ph = bar.phase;
    bar.cv.wait(lk, [&] { return bar.phase != ph; });
    return bar.result;
}
void leave(Barrier &bar, const char *kind) {
    std::lock_guard<std::mutex> lk(bar.m);
    bar.exited++;
    if (!bar.broken && bar.arrived > 0 && bar.arrived + bar.exited == bar.n) {
        report(cudaErrorLaunchFailure, true, "%s at %s:%d reached by %d of %d threads; the others exited (kernel %s)",
               kind, bar.file, bar.line, bar.arrived, bar.n, cur_block->kernel);
        bar.broken = true;
        bar.release();
    }
}

// A pool of threads, one per thread of the largest block so far; thread i is threadIdx i of each block.
struct Worker {
    pthread_t th;
    int id;
    std::mutex m;
    std::condition_variable cv;
    Block *job = nullptr;
};
std::vector<Worker *> &pool = *new std::vector<Worker *>; // never destroyed: its threads wait forever

void run_thread(Block &b, int id) {
    cur_block = &b;
    threadIdx = uint3{id % b.block.x, (id / b.block.x) % b.block.y, id / (b.block.x * b.block.y)};
    blockIdx = b.idx;
    blockDim = uint3{b.block.x, b.block.y, b.block.z};
    gridDim = uint3{b.grid.x, b.grid.y, b.grid.z};
    (*b.body)();
    leave(b.warp_bar[id / 32], "__syncwarp");
    leave(b.bar, "__syncthreads");
    cur_block = nullptr;
    std::lock_guard<std::mutex> lk(b.done_m);
    if (--b.running == 0) b.done_cv.notify_one();
}

void *worker_main(void *arg) {
    Worker *w = (Worker *)arg;
    for (;;) {
        Block *b;
        {
            std::unique_lock<std::mutex> lk(w->m);
            w->cv.wait(lk, [&] { return w->job != nullptr; });
            b = w->job;
            w->job = nullptr;
        }
        run_thread(*b, w->id);
    }
    return nullptr;
}

void grow_pool(int n) {
    while ((int)pool.size() < n) {
        pool.push_back(new Worker);
        Worker *w = pool.back();
        w->id = (int)pool.size() - 1;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, (size_t)1 << 20);
        if (pthread_create(&w->th, &attr, worker_main, w) != 0) {
            fprintf(stderr, "qf_emu: cannot start thread %d\n", w->id);
            abort();
        }
        pthread_attr_destroy(&attr);
        pthread_detach(w->th);
    }
}

// Kernels whose first launch reached no barrier (no __syncthreads, __syncwarp or shuffle) run their
// later blocks' threads one after another on the host thread: a legal schedule, far cheaper than
// waking a thread per CUDA thread. QF_EMU_THREADS=all keeps every block concurrent (the TSan pass).
std::map<const void *, bool> barrier_free;
const bool all_threads = [] {
    const char *v = getenv("QF_EMU_THREADS");
    return v && strcmp(v, "all") == 0;
}();

void run_kernel(const void *key, const char *name, dim3 grid, dim3 block, const std::function<void()> &body) {
    const int nt = (int)(block.x * block.y * block.z), nw = (nt + 31) / 32;
    Block b;
    b.kernel = name;
    b.body = &body;
    b.grid = grid;
    b.block = block;
    b.nthreads = nt;
    b.sequential = !all_threads && barrier_free.count(key) && barrier_free[key];
    if (!b.sequential) grow_pool(nt);
    b.warp_bar.reset(new Barrier[nw]);
    b.warp_slot.reset(new uint64_t[(size_t)nw * 32]);
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                b.idx = uint3{x, y, z};
                if (b.sequential) {
                    cur_block = &b;
                    blockIdx = b.idx;
                    blockDim = uint3{block.x, block.y, block.z};
                    gridDim = uint3{grid.x, grid.y, grid.z};
                    for (int id = 0; id < nt; id++) {
                        threadIdx = uint3{id % block.x, (id / block.x) % block.y, id / (block.x * block.y)};
                        body();
                    }
                    cur_block = nullptr;
                } else {
                    b.bar.reset(nt);
                    for (int w = 0; w < nw; w++) b.warp_bar[w].reset(w == nw - 1 ? nt - 32 * w : 32);
                    b.running = nt;
                    for (int i = 0; i < nt; i++) {
                        std::lock_guard<std::mutex> lk(pool[i]->m);
                        pool[i]->job = &b;
                        pool[i]->cv.notify_one();
                    }
                    std::unique_lock<std::mutex> lk(b.done_m);
                    b.done_cv.wait(lk, [&] { return b.running == 0; });
                }
                if (sticky != cudaSuccess) return; // a fault: the rest of the grid does not run
            }
    if (!barrier_free.count(key)) barrier_free[key] = b.barriers.load() == 0;
}

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The range [p, p + bytes) inside one allocation (bytes 0: p inside or at the end of one).
bool in_device(const void *p, size_t bytes) {
    const Alloc *a = find_alloc(p);
    return a && (uintptr_t)p + bytes <= (uintptr_t)a->base + a->size;
}

} // namespace

// ---- device-side entry points --------------------------------------------------------------------
int syncthreads(const char *file, int line, int pred) {
    return arrive(cur_block->bar, "__syncthreads", file, line, pred);
}
void syncwarp(const char *file, int line) {
    const int id = (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
    arrive(cur_block->warp_bar[id / 32], "__syncwarp", file, line, 0);
}
uint64_t *warp_slots() {
    const int id = (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
    return cur_block->warp_slot.get() + (size_t)(id / 32) * 32;
}
bool is_device_range(const void *p, size_t bytes) {
    std::lock_guard<std::recursive_mutex> lk(api_mu);
    return in_device(p, bytes);
}

void launch(const LaunchCfg &c, const void *key, std::function<void()> body, int bad_arg, const void *bad_ptr,
            std::function<int(const void **)> recheck) {
    std::lock_guard<std::recursive_mutex> lk(api_mu);
    n_launches++;
    if (sticky != cudaSuccess) {
        ret(sticky);
        return;
    }
    const unsigned long long nt = (unsigned long long)c.block.x * c.block.y * c.block.z;
    if (nt == 0 || nt > 1024 || c.block.x > 1024 || c.block.y > 1024 || c.block.z > 64) {
        report(cudaErrorInvalidConfiguration, false,
               "launch of %s at %s:%d: block (%u,%u,%u) = %llu threads (limits: 1..1024, z <= 64)", c.name, c.file,
               c.line, c.block.x, c.block.y, c.block.z, nt);
        return;
    }
    if (c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 || c.grid.x > 2147483647u || c.grid.y > 65535 ||
        c.grid.z > 65535) {
        report(cudaErrorInvalidConfiguration, false,
               "launch of %s at %s:%d: grid (%u,%u,%u) (limits: x 1..2^31-1, y and z 1..65535)", c.name, c.file,
               c.line, c.grid.x, c.grid.y, c.grid.z);
        return;
    }
    if (c.smem > 48 * 1024) {
        report(cudaErrorInvalidValue, false, "launch of %s at %s:%d: %zu bytes of dynamic shared memory (limit 48 KiB)",
               c.name, c.file, c.line, c.smem);
        return;
    }
    if (!valid_stream(c.stream)) {
        report(cudaErrorInvalidResourceHandle, false, "launch of %s at %s:%d: not a live stream", c.name, c.file,
               c.line);
        return;
    }
    if (bad_arg >= 0) {
        report(cudaErrorIllegalAddress, true,
               "launch of %s at %s:%d: pointer argument %d (%p) points into no device allocation (host memory?)",
               c.name, c.file, c.line, bad_arg, bad_ptr);
        return;
    }
    const std::string what = std::string("kernel ") + c.name;
    enqueue(c.stream, what, [key, name = c.name, file = c.file, line = c.line, g = c.grid, b = c.block,
                             body = std::move(body), recheck = std::move(recheck)] {
        const void *gone = nullptr;
        const int arg = recheck(&gone);
        if (arg >= 0) { // freed between the launch and the run: a queued launch, or a graph replayed later
            report(cudaErrorIllegalAddress, true,
                   "kernel %s (launched at %s:%d): pointer argument %d (%p) points into no live device allocation "
                   "when it runs (freed after the launch was queued or captured?)", name, file, line, arg, gone);
            return;
        }
        run_kernel(key, name, g, b, body);
    });
}
} // namespace qf_emu

using namespace qf_emu;
#define API_LOCK std::lock_guard<std::recursive_mutex> lk_(api_mu)
#define STICKY_CHECK                                                                                       \
    do {                                                                                                   \
        if (sticky != cudaSuccess) return ret(sticky);                                                     \
    } while (0)

extern "C" {

const char *qf_emu_last_fault(void) {
    static thread_local std::string s;
    std::lock_guard<std::mutex> lk(fault_mu);
    s = fault_msg;
    return s.c_str();
}
int qf_emu_deferred(void) { return deferred; }
void qf_emu_set_deferred(int on) {
    API_LOCK;
    drain_all();
    deferred = on != 0;
}
long long qf_emu_launches(void) { return n_launches; }

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define QF_NAME(x) \
    case x: return #x;
        QF_NAME(cudaSuccess) QF_NAME(cudaErrorInvalidValue) QF_NAME(cudaErrorMemoryAllocation)
        QF_NAME(cudaErrorInvalidConfiguration) QF_NAME(cudaErrorInvalidDevicePointer)
        QF_NAME(cudaErrorInvalidMemcpyDirection) QF_NAME(cudaErrorNoDevice) QF_NAME(cudaErrorInvalidDevice)
        QF_NAME(cudaErrorInvalidResourceHandle) QF_NAME(cudaErrorNotReady) QF_NAME(cudaErrorIllegalAddress)
        QF_NAME(cudaErrorLaunchOutOfResources) QF_NAME(cudaErrorLaunchFailure)
        QF_NAME(cudaErrorStreamCaptureUnsupported) QF_NAME(cudaErrorStreamCaptureInvalidated)
        QF_NAME(cudaErrorIllegalState)
#undef QF_NAME
    }
    return "unknown error";
}
const char *cudaGetErrorString(cudaError_t e) {
    static thread_local std::string s;
    std::lock_guard<std::mutex> lk(fault_mu);
    s = std::string(cudaGetErrorName(e)) + (fault_msg.empty() || e == cudaSuccess ? "" : " (qf_emu: " + fault_msg + ")");
    return s.c_str();
}
cudaError_t cudaGetLastError(void) {
    API_LOCK;
    cudaError_t e = sticky != cudaSuccess ? sticky.load() : last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return sticky != cudaSuccess ? sticky.load() : last_error; }

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *dev) {
    *dev = 0;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : ret(cudaErrorInvalidDevice); }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev) {
    if (dev != 0) return ret(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "qf_emu (CUDA shim on the CPU, tests only)");
    p->totalGlobalMem = kTotal;
    p->sharedMemPerBlock = 48 * 1024;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 2; // few blocks per grid-stride launch: the stride loops run several rounds
    p->maxThreadsPerBlock = 1024;
    p->warpSize = 32;
    p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647;
    p->maxGridSize[1] = p->maxGridSize[2] = 65535;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int dev) {
    if (dev != 0) return ret(cudaErrorInvalidDevice);
    switch (a) {
    case cudaDevAttrMaxThreadsPerBlock: *v = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = 48 * 1024; break;
    case cudaDevAttrClockRate: *v = 1000000; break;
    case cudaDevAttrMultiProcessorCount: *v = 2; break;
    case cudaDevAttrMemoryClockRate: *v = 1000000; break;
    case cudaDevAttrGlobalMemoryBusWidth: *v = 64; break;
    case cudaDevAttrL2CacheSize: *v = 1 << 20; break;
    case cudaDevAttrComputeCapabilityMajor: *v = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *v = 0; break;
    default: return ret(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    API_LOCK;
    *total_bytes = kTotal;
    *free_bytes = allocated < kTotal ? kTotal - allocated : 0;
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    API_LOCK;
    if (capture_forbids("cudaDeviceSynchronize")) return ret(cudaErrorStreamCaptureUnsupported);
    drain_all();
    STICKY_CHECK;
    return cudaSuccess;
}
cudaError_t cudaDeviceReset(void) {
    API_LOCK;
    for (auto *s : streams) s->queue.clear();
    for (auto &kv : allocs) free(kv.second.base - QF_EMU_GUARD);
    allocs.clear();
    allocated = 0;
    sticky = cudaSuccess;
    last_error = cudaSuccess;
    std::lock_guard<std::mutex> lk(fault_mu);
    fault_msg.clear();
    return cudaSuccess;
}

// ---- memory ----------------------------------------------------------------------------------------
cudaError_t cudaMalloc(void **p, size_t bytes) {
    API_LOCK;
    *p = nullptr;
    STICKY_CHECK;
    if (capture_forbids("cudaMalloc")) return ret(cudaErrorStreamCaptureUnsupported);
    if (bytes == 0) return cudaSuccess; // as CUDA: a null pointer, no error
    if (bytes > kTotal - allocated) return ret(cudaErrorMemoryAllocation);
    void *raw = nullptr;
    if (posix_memalign(&raw, 256, bytes + 2 * QF_EMU_GUARD) != 0) return ret(cudaErrorMemoryAllocation);
    char *base = (char *)raw + QF_EMU_GUARD;
    fill_guard(base - QF_EMU_GUARD);
    fill_guard(base + bytes);
    memset(base, 0xFF, bytes); // poison: what is read before it is written is NaN / -1
    allocs[(uintptr_t)base] = Alloc{base, bytes};
    allocated += bytes;
    *p = base;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    API_LOCK;
    if (capture_forbids("cudaFree")) return ret(cudaErrorStreamCaptureUnsupported);
    drain_all(); // cudaFree waits for the device
    if (!p) return sticky != cudaSuccess ? ret(sticky.load()) : cudaSuccess;
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end())
        return report(cudaErrorInvalidDevicePointer, false, "cudaFree(%p): not the start of a device allocation", p);
    check_guards("a kernel or copy before cudaFree");
    allocated -= it->second.size;
    free((char *)p - QF_EMU_GUARD);
    allocs.erase(it);
    STICKY_CHECK;
    return cudaSuccess;
}

static cudaError_t copy_check(const char *call, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    const bool dd = in_device(dst, bytes), sd = in_device(src, bytes);
    const bool dst_any = find_alloc(dst) != nullptr, src_any = find_alloc(src) != nullptr;
    bool ok;
    switch (kind) {
    case cudaMemcpyHostToDevice: ok = dd && !src_any; break;
    case cudaMemcpyDeviceToHost: ok = sd && !dst_any; break;
    case cudaMemcpyDeviceToDevice: ok = dd && sd; break;
    case cudaMemcpyDefault: ok = (dd || !dst_any) && (sd || !src_any); break;
    default: return report(cudaErrorInvalidMemcpyDirection, false, "%s: kind %d", call, (int)kind);
    }
    if (!ok)
        return report(cudaErrorInvalidValue, false,
                      "%s(dst %p%s, src %p%s, %zu bytes, kind %d): a range is outside its allocation or the kind "
                      "does not match the pointers",
                      call, dst, dst_any ? (dd ? " device" : " device, too short") : " host", src,
                      src_any ? (sd ? " device" : " device, too short") : " host", bytes, (int)kind);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
    API_LOCK;
    STICKY_CHECK;
    if (!valid_stream(s)) return ret(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    cudaError_t e = copy_check("cudaMemcpyAsync", dst, src, bytes, kind);
    if (e != cudaSuccess) return e;
    enqueue(s, "cudaMemcpyAsync", [=] { memmove(dst, src, bytes); });
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    API_LOCK;
    STICKY_CHECK;
    if (capture_forbids("cudaMemcpy")) return ret(cudaErrorStreamCaptureUnsupported);
    if (bytes == 0) return cudaSuccess;
    cudaError_t e = copy_check("cudaMemcpy", dst, src, bytes, kind);
    if (e != cudaSuccess) return e;
    enqueue(nullptr, "cudaMemcpy", [=] { memmove(dst, src, bytes); }); // the legacy stream
    STICKY_CHECK;
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s) {
    API_LOCK;
    STICKY_CHECK;
    if (!valid_stream(s)) return ret(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    if (!in_device(p, bytes))
        return report(cudaErrorInvalidValue, false, "cudaMemset(%p, %zu bytes): outside every device allocation", p,
                      bytes);
    enqueue(s, "cudaMemsetAsync", [=] { memset(p, value, bytes); });
    return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int value, size_t bytes) {
    API_LOCK;
    if (capture_forbids("cudaMemset")) return ret(cudaErrorStreamCaptureUnsupported);
    cudaError_t e = cudaMemsetAsync(p, value, bytes, nullptr);
    if (e != cudaSuccess) return e;
    STICKY_CHECK;
    return cudaSuccess;
}

// ---- streams and events ------------------------------------------------------------------------------
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    API_LOCK;
    *s = new qf_emu_stream;
    (*s)->flags = flags;
    streams.insert(*s);
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    API_LOCK;
    if (!s || !streams.count(s)) return ret(cudaErrorInvalidResourceHandle);
    drain(s); // CUDA finishes the stream's work first
    streams.erase(s);
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    API_LOCK;
    if (!valid_stream(s)) return ret(cudaErrorInvalidResourceHandle);
    if (stream_of(s)->capture) {
        stream_of(s)->capture->invalid = true;
        return report(cudaErrorStreamCaptureUnsupported, false, "cudaStreamSynchronize of a stream being captured");
    }
    if (s)
        drain(s);
    else
        drain_blocking();
    STICKY_CHECK;
    return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
    API_LOCK;
    (void)flags;
    if (!valid_stream(s) || !e) return ret(cudaErrorInvalidResourceHandle);
    if (e->stream && e->stream != stream_of(s)) drain(e->stream); // stricter than needed: done now
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = new qf_emu_event;
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    API_LOCK;
    STICKY_CHECK;
    if (!e || !valid_stream(s)) return ret(cudaErrorInvalidResourceHandle);
    e->stream = stream_of(s);
    e->done = false;
    enqueue(s, "cudaEventRecord", [e] {
        e->t = now_ms();
        e->done = true;
    });
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    API_LOCK;
    if (!e) return ret(cudaErrorInvalidResourceHandle);
    if (capture_forbids("cudaEventSynchronize")) return ret(cudaErrorStreamCaptureUnsupported);
    if (e->stream) e->stream == &legacy_stream ? drain_blocking() : drain(e->stream);
    STICKY_CHECK;
    return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (!a || !b) return ret(cudaErrorInvalidResourceHandle);
    if (!a->done || !b->done) return ret(cudaErrorNotReady);
    *ms = (float)(b->t - a->t);
    return cudaSuccess;
}

// ---- graphs: capture records the work, a launch replays it in order -------------------------------------
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    API_LOCK;
    (void)mode;
    if (!s || !streams.count(s))
        return report(cudaErrorStreamCaptureUnsupported, false, "cudaStreamBeginCapture: the legacy stream cannot be captured");
    if (s->capture) return report(cudaErrorIllegalState, false, "cudaStreamBeginCapture: the stream is already captured");
    drain(s);
    s->capture = new qf_emu_graph;
    capturing++;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    API_LOCK;
    *graph = nullptr;
    if (!s || !streams.count(s) || !s->capture) return report(cudaErrorIllegalState, false, "cudaStreamEndCapture: no capture");
    qf_emu_graph *g = s->capture;
    s->capture = nullptr;
    capturing--;
    if (g->invalid) {
        delete g;
        return ret(cudaErrorStreamCaptureInvalidated);
    }
    *graph = g;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    (void)flags;
    if (!graph) return ret(cudaErrorInvalidValue);
    *exec = new qf_emu_graph(*graph);
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    API_LOCK;
    STICKY_CHECK;
    if (!exec || !valid_stream(s)) return ret(cudaErrorInvalidResourceHandle);
    for (auto &w : exec->work) {
        if (w.first.compare(0, 7, "kernel ") == 0) n_launches++;
        enqueue(s, w.first, w.second);
    }
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t g) {
    delete g;
    return cudaSuccess;
}

cudaError_t cudaProfilerStart(void) { return cudaSuccess; }
cudaError_t cudaProfilerStop(void) { return cudaSuccess; }

// ---- cuBLAS on OpenBLAS --------------------------------------------------------------------------------
cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new qf_emu_blas;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *workspace, size_t bytes) {
    API_LOCK;
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes && !in_device(workspace, bytes)) {
        report(cudaErrorInvalidValue, false, "cublasSetWorkspace(%p, %zu bytes): outside every device allocation",
               workspace, bytes);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE (see the qf_emu line on stderr)";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    }
    return "unknown cuBLAS status";
}

// The elements an operand of `rows` x `cols` (column-major, leading dimension ld) spans over the batch.
static bool operand_ok(const char *name, const float *p, int rows, int cols, int ld, long long stride, int batch,
                       bool written, long long *span) {
    if (ld < (rows > 1 ? rows : 1)) {
        report(cudaErrorInvalidValue, false, "cublasSgemmStridedBatched: ld%s = %d < %d rows", name, ld, rows);
        return false;
    }
    const long long one = (long long)(cols - 1) * ld + rows; // elements one matrix spans
    *span = one;
    if (batch > 1 && written && (stride < 0 ? -stride : stride) < one) {
        report(cudaErrorInvalidValue, false,
               "cublasSgemmStridedBatched: stride%s = %lld < %lld elements of one matrix: the batch's outputs overlap",
               name, stride, one);
        return false;
    }
    const long long lo = stride < 0 ? (long long)(batch - 1) * stride : 0;
    const long long hi = (stride > 0 ? (long long)(batch - 1) * stride : 0) + one;
    if (!in_device(p + lo, (size_t)(hi - lo) * sizeof(float))) {
        report(cudaErrorInvalidValue, false,
               "cublasSgemmStridedBatched: %s (%p, %d x %d, ld %d, stride %lld, batch %d) reaches outside its device "
               "allocation (%lld elements from the pointer)",
               name, (const void *)p, rows, cols, ld, stride, batch, hi);
        return false;
    }
    return true;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sa,
                                         const float *B, int ldb, long long sb, const float *beta, float *C, int ldc,
                                         long long sc, int batch) {
    API_LOCK;
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (sticky != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (m < 0 || n < 0 || k < 0 || batch < 0) {
        report(cudaErrorInvalidValue, false, "cublasSgemmStridedBatched: m %d, n %d, k %d, batch %d", m, n, k, batch);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
    long long span;
    const bool na = ta == CUBLAS_OP_N, nb = tb == CUBLAS_OP_N;
    if (!operand_ok("C", C, m, n, ldc, sc, batch, true, &span)) return CUBLAS_STATUS_INVALID_VALUE;
    if (k > 0 && (!operand_ok("A", A, na ? m : k, na ? k : m, lda, sa, batch, false, &span) ||
                  !operand_ok("B", B, nb ? k : n, nb ? n : k, ldb, sb, batch, false, &span)))
        return CUBLAS_STATUS_INVALID_VALUE;
    const float al = *alpha, be = *beta; // host pointer mode: read during the call
    enqueue(h->stream, "cublasSgemmStridedBatched", [=] {
        for (int i = 0; i < batch; i++)
            cblas_sgemm(CblasColMajor, na ? CblasNoTrans : CblasTrans, nb ? CblasNoTrans : CblasTrans, m, n, k, al,
                        A + i * sa, lda, B + i * sb, ldb, be, C + i * sc, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

} // extern "C"
