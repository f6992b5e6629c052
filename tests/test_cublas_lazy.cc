// cuBLAS loaded by the CUDA backend at its start (kernels/cuda/cublas_lazy.c), not linked into
// qfleet: what a failed load says, that nothing is bound after one, that the toolkit's own library
// has every function qfleet calls under the names the loader asks for, and that the binary does not
// need libcublas (the point of it: ~60 ms less at every start). Real CUDA builds only (the CPU shim
// defines these functions itself); no GPU needed.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include <cublas_v2.h>

#include "kernels/cuda/cublas_lazy.h"

// In declaration order: the failures first, while nothing is bound.
TEST(CublasLazy, MissingLibraryGivesOneLineReasonAndBindsNothing) {
    char err[512] = "";
    ASSERT_EQ(qf_cublas_load_path("libqf_no_such_library.so.13", err, sizeof err), -1);
    EXPECT_NE(std::string(err).find("cannot load libqf_no_such_library.so.13"), std::string::npos) << err;
    EXPECT_EQ(std::string(err).find('\n'), std::string::npos) << err;
    EXPECT_EQ(qf_cublas_loaded(), 0);
    cublasHandle_t h = nullptr;
    EXPECT_EQ(cublasCreate(&h), CUBLAS_STATUS_NOT_INITIALIZED); // a forwarder before loading: no crash
}

TEST(CublasLazy, LibraryWithoutTheFunctionsBindsNothing) {
    char err[512] = "";
    ASSERT_EQ(qf_cublas_load_path("libm.so.6", err, sizeof err), -1);
    EXPECT_NE(std::string(err).find("libm.so.6 has no symbol cublasCreate_v2"), std::string::npos) << err;
    EXPECT_EQ(qf_cublas_loaded(), 0);
    EXPECT_EQ(cublasDestroy(nullptr), CUBLAS_STATUS_NOT_INITIALIZED);
}

TEST(CublasLazy, TheToolkitsLibraryHasEveryFunctionQfleetCalls) {
    char err[512] = "";
    if (qf_cublas_load(err, sizeof err) != 0) {
        // only a machine without the toolkit's runtime libraries: the reason must still be one line
        EXPECT_NE(std::string(err).find("cuda backend: cannot load libcublas.so."), std::string::npos) << err;
        GTEST_SKIP() << err;
    }
    EXPECT_EQ(qf_cublas_loaded(), 1);
    // a real cuBLAS function answers now (a status string needs no device)
    const char *s = cublasGetStatusString(CUBLAS_STATUS_SUCCESS);
    ASSERT_NE(s, nullptr);
    EXPECT_STRNE(s, "cuBLAS not loaded");
}

TEST(CublasLazy, QfleetDoesNotNeedLibcublas) {
    const std::string cmd = std::string("readelf -d ") + QFLEET_BIN + " 2>&1";
    FILE *p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int rc = pclose(p);
    if (rc != 0) GTEST_SKIP() << "readelf failed: " << out;
    ASSERT_NE(out.find("(NEEDED)"), std::string::npos) << out; // it did list the dynamic section
    EXPECT_EQ(out.find("libcublas"), std::string::npos) << out;
}
