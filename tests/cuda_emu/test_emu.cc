// test_emu.cc — the shim's own tests (QFLEET_CUDA_EMU builds): CUDA semantics it must honour (block
// barriers and shared memory, warp shuffles, atomics, streams, graph replay, cuBLAS against a naive
// product), and each kind of fault it exists to find, injected on purpose, must be reported: a
// missing __syncthreads (ThreadSanitizer build), an out-of-bounds write, a host pointer passed to a
// kernel, an oversized block, a divergent barrier, a wrong batch stride, a missing stream
// synchronization (deferred streams).
#include <gtest/gtest.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstring>
#include <unistd.h>
#include <string>
#include <vector>

#if defined(__SANITIZE_THREAD__)
#define QF_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__)
#define QF_ASAN 1
#endif

namespace {

// ---- kernels under test ----------------------------------------------------------------------------
__global__ void block_sum_kernel(const float *x, float *out, int n) { // one block, a tree in shared memory
    __shared__ float part[256];
    float acc = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = part[0];
}
[[maybe_unused]] __global__ void block_sum_no_barrier_kernel(const float *x, float *out, int n) { // the fault: no barrier
    __shared__ float part[256];
    float acc = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
    part[threadIdx.x] = acc;
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (unsigned j = 0; j < blockDim.x; j++) s += part[j]; // reads the other threads' slots unsynchronized
        *out = s;
    }
}
__global__ void warp_sum_kernel(const int *x, int *out) { // one warp, shuffle tree
    int v = x[threadIdx.x];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) *out = v;
}
__global__ void count_kernel(unsigned *c) { atomicAdd(c, 1u); }
__global__ void fill_kernel(float *p, int n, float v) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) p[i] = v;
}
__global__ void add_kernel(float *p, int n, float v) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) p[i] += v;
}
__global__ void off_by_one_kernel(float *p, int n) { // the fault: i <= n
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i <= n; i += gridDim.x * blockDim.x) p[i] = 1.0f;
}
__global__ void divergent_barrier_kernel(int *p) { // the fault: half the block skips the barrier
    if (threadIdx.x < 16) {
        __syncthreads();
        p[threadIdx.x] = 1;
    }
}
__global__ void two_barriers_kernel(int *p) { // the fault: two halves wait at different barriers
    if (threadIdx.x < 16)
        __syncthreads();
    else
        __syncthreads();
    p[threadIdx.x] = 1;
}

template <class T> T *dev(size_t n) {
    T *p = nullptr;
    EXPECT_EQ(cudaMalloc((void **)&p, n * sizeof(T)), cudaSuccess);
    return p;
}

struct EmuTest : ::testing::Test {
    void SetUp() override { ASSERT_EQ(cudaDeviceReset(), cudaSuccess); }
    void TearDown() override {
        qf_emu_set_deferred(0);
        cudaDeviceReset();
    }
    static bool said(const char *what) { return std::strstr(qf_emu_last_fault(), what) != nullptr; }
};

// ---- semantics -------------------------------------------------------------------------------------
TEST_F(EmuTest, ReportsOneDevice) {
    int n = 0;
    ASSERT_EQ(cudaGetDeviceCount(&n), cudaSuccess);
    EXPECT_EQ(n, 1);
    cudaDeviceProp p;
    ASSERT_EQ(cudaGetDeviceProperties(&p, 0), cudaSuccess);
    EXPECT_NE(std::string(p.name).find("qf_emu"), std::string::npos);
}

TEST_F(EmuTest, AllocationsArePoisonedAndExact) {
    float *p = dev<float>(3);
    std::vector<uint32_t> h(3);
    ASSERT_EQ(cudaMemcpy(h.data(), p, 12, cudaMemcpyDeviceToHost), cudaSuccess);
    for (uint32_t v : h) EXPECT_EQ(v, 0xFFFFFFFFu); // 0xFF bytes: a NaN float, -1 as an integer
    EXPECT_EQ(cudaMemcpy(h.data(), p, 16, cudaMemcpyDeviceToHost), cudaErrorInvalidValue) << "copy past the end";
    EXPECT_EQ(cudaMemcpy(h.data(), p, 12, cudaMemcpyHostToDevice), cudaErrorInvalidValue) << "kind reversed";
    EXPECT_EQ(cudaMemset(p + 1, 0, 12), cudaErrorInvalidValue) << "memset past the end";
    EXPECT_EQ(cudaFree(p), cudaSuccess);
}

TEST_F(EmuTest, BarriersAndSharedMemoryGiveTheExactBlockSum) {
    const int n = 1000;
    std::vector<float> h(n);
    for (int i = 0; i < n; i++) h[i] = (float)(i % 7); // small integers: every order of summation is exact
    float *x = dev<float>(n), *out = dev<float>(1), got = 0;
    ASSERT_EQ(cudaMemcpy(x, h.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    for (int rep = 0; rep < 3; rep++) {
        QF_LAUNCH(block_sum_kernel, 1, 256, 0, 0)(x, out, n);
        ASSERT_EQ(cudaGetLastError(), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(&got, out, sizeof got, cudaMemcpyDeviceToHost), cudaSuccess);
        EXPECT_EQ(got, 2997.0f); // 142 full cycles of 0..6 (21 each: 2982) + 0..5 (15)
    }
}

TEST_F(EmuTest, WarpShuffleAndAtomics) {
    std::vector<int> h(32);
    for (int i = 0; i < 32; i++) h[i] = i * i;
    int *x = dev<int>(32), *out = dev<int>(1), got = 0;
    ASSERT_EQ(cudaMemcpy(x, h.data(), sizeof(int) * 32, cudaMemcpyHostToDevice), cudaSuccess);
    QF_LAUNCH(warp_sum_kernel, 1, 32, 0, 0)(x, out);
    ASSERT_EQ(cudaMemcpy(&got, out, sizeof got, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(got, 31 * 32 * 63 / 6); // sum of squares 0..31
    unsigned *c = dev<unsigned>(1), cnt = 0;
    ASSERT_EQ(cudaMemset(c, 0, sizeof *c), cudaSuccess);
    QF_LAUNCH(count_kernel, 5, 200, 0, 0)(c);
    ASSERT_EQ(cudaMemcpy(&cnt, c, sizeof cnt, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(cnt, 1000u);
}

TEST_F(EmuTest, SgemmStridedBatchedMatchesANaiveProduct) {
    // column-major C_b (m x n) = A_b^T (A stored k x m) * B_b (k x n), batch 3, padded leading dims
    const int m = 3, n = 4, k = 5, batch = 3, lda = 6, ldb = 7, ldc = 4;
    const long long sa = lda * m, sb = ldb * n, sc = ldc * n;
    std::vector<float> A(sa * batch), B(sb * batch), C(sc * batch, 0.0f);
    for (size_t i = 0; i < A.size(); i++) A[i] = (float)((int)(i % 5) - 2);
    for (size_t i = 0; i < B.size(); i++) B[i] = (float)((int)(i % 3) - 1);
    float *dA = dev<float>(A.size()), *dB = dev<float>(B.size()), *dC = dev<float>(C.size());
    cudaMemcpy(dA, A.data(), A.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dB, B.data(), B.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dC, C.data(), C.size() * 4, cudaMemcpyHostToDevice);
    cublasHandle_t h;
    ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    const float one = 1.0f, zero = 0.0f;
    ASSERT_EQ(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, dA, lda, sa, dB, ldb, sb, &zero, dC,
                                        ldc, sc, batch),
              CUBLAS_STATUS_SUCCESS);
    cudaMemcpy(C.data(), dC, C.size() * 4, cudaMemcpyDeviceToHost);
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float want = 0.0f; // small integers: exact in any order
                for (int l = 0; l < k; l++) want += A[b * sa + i * lda + l] * B[b * sb + j * ldb + l];
                EXPECT_EQ(C[b * sc + j * ldc + i], want) << "batch " << b << " (" << i << "," << j << ")";
            }
    cublasDestroy(h);
}

TEST_F(EmuTest, GraphReplayEqualsDirectLaunches) {
    const int n = 300;
    cudaStream_t s;
    ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    float *p = dev<float>(n), *q = dev<float>(n);
    std::vector<float> h(n);
    ASSERT_EQ(cudaMemsetAsync(p, 0, n * sizeof(float), s), cudaSuccess);
    ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    QF_LAUNCH(add_kernel, 2, 128, 0, s)(p, n, 1.5f);
    ASSERT_EQ(cudaMemcpyAsync(q, p, n * sizeof(float), cudaMemcpyDeviceToDevice, s), cudaSuccess);
    cudaGraph_t g;
    ASSERT_EQ(cudaStreamEndCapture(s, &g), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(h[7], 0.0f) << "captured work must not run during capture";
    cudaGraphExec_t ex;
    ASSERT_EQ(cudaGraphInstantiate(&ex, g, 0), cudaSuccess);
    cudaGraphDestroy(g);
    for (int r = 0; r < 3; r++) ASSERT_EQ(cudaGraphLaunch(ex, s), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(h.data(), q, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    for (int i = 0; i < n; i++) ASSERT_EQ(h[i], 4.5f) << i;
    // a synchronous call during capture invalidates it, as in CUDA's global mode
    ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(h.data(), q, sizeof(float), cudaMemcpyDeviceToHost), cudaErrorStreamCaptureUnsupported);
    EXPECT_EQ(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    cudaGraphExecDestroy(ex);
    cudaStreamDestroy(s);
}

// ---- faults, injected: each must be reported --------------------------------------------------------
// (in a child process where the report is the sanitizer's)
[[maybe_unused]] void run_racy_block_sum() {
    const int n = 256;
    float *x = nullptr, *out = nullptr;
    cudaMalloc((void **)&x, n * sizeof(float));
    cudaMalloc((void **)&out, sizeof(float));
    cudaMemset(x, 0, n * sizeof(float));
    QF_LAUNCH(block_sum_no_barrier_kernel, 1, 256, 0, 0)(x, out, n);
    cudaDeviceSynchronize();
    fflush(stderr);
    _exit(0);
}
[[maybe_unused]] void run_off_by_one(float *p, int n) {
    QF_LAUNCH(off_by_one_kernel, 1, 128, 0, 0)(p, n);
    cudaDeviceSynchronize();
}

TEST_F(EmuTest, FaultMissingSyncthreadsIsADataRace) {
#ifndef QF_TSAN
    GTEST_SKIP() << "found by ThreadSanitizer: runs in the TSan build (.ci/run)";
#else
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(run_racy_block_sum(), [](int) { return true; }, "ThreadSanitizer: data race"); // any exit status
#endif
}

TEST_F(EmuTest, FaultOutOfBoundsWrite) {
    const int n = 100;
    float *p = dev<float>(n);
#ifdef QF_ASAN
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(run_off_by_one(p, n), "heap-buffer-overflow");
#else
    QF_LAUNCH(off_by_one_kernel, 1, 128, 0, 0)(p, n);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
    EXPECT_TRUE(said("past the end of the allocation of 400 bytes")) << qf_emu_last_fault();
    EXPECT_EQ(cudaMemset(p, 0, 4), cudaErrorIllegalAddress) << "the fault is sticky, as on a device";
#endif
}

TEST_F(EmuTest, FaultHostPointerPassedToKernel) {
    std::vector<float> host(64);
    QF_LAUNCH(fill_kernel, 1, 64, 0, 0)(host.data(), 64, 2.0f);
    EXPECT_EQ(cudaGetLastError(), cudaErrorIllegalAddress);
    EXPECT_TRUE(said("pointer argument 0")) << qf_emu_last_fault();
    EXPECT_EQ(host[0], 0.0f) << "the kernel must not have run";
}

// A graph names its buffers when it is captured; replaying it after one was freed is reported when
// the kernel would run (on a device: a read of freed memory, found by compute-sanitizer at best).
TEST_F(EmuTest, FaultGraphReplayedAfterItsBufferWasFreed) {
    cudaStream_t s;
    ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    float *p = dev<float>(64);
    ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    QF_LAUNCH(fill_kernel, 1, 64, 0, s)(p, 64, 2.0f);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    cudaGraph_t g;
    ASSERT_EQ(cudaStreamEndCapture(s, &g), cudaSuccess);
    cudaGraphExec_t ex;
    ASSERT_EQ(cudaGraphInstantiate(&ex, g, 0), cudaSuccess);
    cudaGraphDestroy(g);
    ASSERT_EQ(cudaGraphLaunch(ex, s), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess) << "a replay while the buffer lives is fine";
    ASSERT_EQ(cudaFree(p), cudaSuccess);
    cudaGraphLaunch(ex, s);
    EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorIllegalAddress);
    EXPECT_TRUE(said("no live device allocation when it runs")) << qf_emu_last_fault();
    cudaGraphExecDestroy(ex);
    cudaStreamDestroy(s);
}

TEST_F(EmuTest, FaultOversizedBlockAndGrid) {
    float *p = dev<float>(2048);
    QF_LAUNCH(fill_kernel, 1, 1025, 0, 0)(p, 2048, 1.0f);
    EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
    EXPECT_TRUE(said("1025 threads")) << qf_emu_last_fault();
    EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "a launch error is not sticky";
    QF_LAUNCH(fill_kernel, dim3(1, 70000), 32, 0, 0)(p, 2048, 1.0f);
    EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
    QF_LAUNCH(fill_kernel, 1, 32, 49 * 1024, 0)(p, 2048, 1.0f);
    EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue) << "dynamic shared memory over 48 KiB";
}

TEST_F(EmuTest, FaultDivergentBarrier) {
    int *p = dev<int>(32);
    QF_LAUNCH(divergent_barrier_kernel, 1, 32, 0, 0)(p);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
    EXPECT_TRUE(said("reached by 16 of 32 threads")) << qf_emu_last_fault();
    ASSERT_EQ(cudaDeviceReset(), cudaSuccess);
    p = dev<int>(32);
    QF_LAUNCH(two_barriers_kernel, 1, 32, 0, 0)(p);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
    EXPECT_TRUE(said("divergent __syncthreads")) << qf_emu_last_fault();
}

TEST_F(EmuTest, FaultWrongBatchStride) {
    const int m = 4, n = 4, k = 4, batch = 3;
    float *A = dev<float>(16 * batch), *B = dev<float>(16 * batch), *C = dev<float>(16 * batch);
    cublasHandle_t h;
    ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    const float one = 1.0f, zero = 0.0f;
    // stride of A one element too long: the last matrix reaches past the allocation
    EXPECT_EQ(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A, 4, 17, B, 4, 16, &zero, C, 4,
                                        16, batch),
              CUBLAS_STATUS_INVALID_VALUE);
    EXPECT_TRUE(said("A (")) << qf_emu_last_fault();
    // output stride shorter than a matrix: the batch's outputs overlap
    EXPECT_EQ(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A, 4, 16, B, 4, 16, &zero, C, 4,
                                        12, batch),
              CUBLAS_STATUS_INVALID_VALUE);
    EXPECT_TRUE(said("overlap")) << qf_emu_last_fault();
    // a leading dimension smaller than the rows
    EXPECT_EQ(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A, 3, 16, B, 4, 16, &zero, C, 4,
                                        16, batch),
              CUBLAS_STATUS_INVALID_VALUE);
    cublasDestroy(h);
}

TEST_F(EmuTest, FaultMissingStreamSyncShowsInDeferredMode) {
    const int n = 64;
    cudaStream_t s;
    ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    float *p = dev<float>(n);
    std::vector<float> h(n);
    for (int defer = 0; defer < 2; defer++) {
        qf_emu_set_deferred(defer);
        ASSERT_EQ(cudaMemset(p, 0, n * sizeof(float)), cudaSuccess);
        QF_LAUNCH(fill_kernel, 1, 64, 0, s)(p, n, 3.0f);
        // the fault: reading on the legacy stream, which does not wait for a non-blocking stream
        ASSERT_EQ(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
        if (defer)
            EXPECT_EQ(h[0], 0.0f) << "deferred mode must show the kernel's result as not yet there";
        else
            EXPECT_EQ(h[0], 3.0f); // immediate mode hides the missing synchronization
        ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess); // the fix
        ASSERT_EQ(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
        EXPECT_EQ(h[0], 3.0f);
    }
    cudaStreamDestroy(s);
}

} // namespace
