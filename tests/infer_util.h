// infer_util.h — what the inference / IRL tests share: a host-side problem (R runs of one tabular
// kind), the backend operations run through the backend's own memory as the host does, and the
// outputs downloaded.
#ifndef QF_TESTS_INFER_UTIL_H
#define QF_TESTS_INFER_UTIL_H
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "envs/spec.h"
#include "kernels/backend.h"

struct InferProblem {
    int kind = QF_ENV_CHAIN;
    std::vector<qf_env_params> params;
    std::vector<uint32_t> keys;
    std::vector<double> alpha;
    std::vector<double> reward;  // [R][S][A] or empty: the env's rewards
    std::vector<double> start;   // [R][S] or empty: the env's start state
    int32_t T = 1, S = 0, A = 0;
    int R() const { return (int)params.size(); }
};

inline qf_env_params infer_default_params(int kind) {
    qf_env_params p;
    qf_env_params_default(kind, &p);
    qf_env_params_check(kind, &p, nullptr, 0);
    return p;
}

// R runs with the same parameters, keys (seed, r), temperatures alphas[r % size].
inline InferProblem infer_make(int kind, const qf_env_params &p, int32_t T, std::vector<double> alphas,
                               int R = 1, uint32_t seed = 7) {
    InferProblem pb;
    pb.kind = kind;
    pb.T = T;
    for (int r = 0; r < R; r++) {
        pb.params.push_back(p);
        pb.keys.push_back(seed);
        pb.keys.push_back((uint32_t)r);
        pb.alpha.push_back(alphas[(size_t)r % alphas.size()]);
    }
    pb.S = qf_env_n_states(kind, &p);
    pb.A = qf_env_n_actions(kind, &p);
    return pb;
}

struct InferResult {
    int rc = QF_ERR;
    std::string err;
    std::vector<double> v, marg, occ;  // [R][T+1][S], [R][T][S], [R][S][A]
    int32_t T = 0, S = 0, A = 0;
    double V(int r, int t, int s) const { return v[((size_t)r * (T + 1) + t) * S + s]; }
    double M(int r, int t, int s) const { return marg[((size_t)r * T + t) * S + s]; }
    double O(int r, int s, int a) const { return occ[((size_t)r * S + s) * A + a]; }
};

template <class X>
X *infer_upload(qf_backend *b, const std::vector<X> &h, std::vector<void *> &owned) {
    if (h.empty()) return nullptr;
    void *d = b->alloc(b, sizeof(X) * h.size());
    if (!d) return nullptr;
    owned.push_back(d);
    if (b->upload(b, d, h.data(), sizeof(X) * h.size()) != QF_OK) return nullptr;
    return (X *)d;
}

// Backward pass under `backup`, then the forward pass; everything downloaded.
inline InferResult infer_run(qf_backend *b, const InferProblem &pb, int backup) {
    InferResult out;
    out.T = pb.T;
    out.S = pb.S;
    out.A = pb.A;
    const size_t R = (size_t)pb.R(), S = (size_t)pb.S, A = (size_t)pb.A, T = (size_t)pb.T;
    std::vector<void *> owned;
    qf_infer_problem prob;
    std::memset(&prob, 0, sizeof prob);
    prob.kind = pb.kind;
    prob.R = (int32_t)R;
    prob.params = infer_upload(b, pb.params, owned);
    prob.keys = infer_upload(b, pb.keys, owned);
    prob.alpha = infer_upload(b, pb.alpha, owned);
    prob.reward = infer_upload(b, pb.reward, owned);
    prob.n_states = pb.S;
    prob.n_actions = pb.A;
    prob.T = pb.T;
    prob.backup = backup;
    const double *start = infer_upload(b, pb.start, owned);
    double *v = (double *)b->alloc(b, sizeof(double) * R * (T + 1) * S);
    double *marg = (double *)b->alloc(b, sizeof(double) * R * T * S);
    double *occ = (double *)b->alloc(b, sizeof(double) * R * S * A);
    for (void *p : {(void *)v, (void *)marg, (void *)occ}) owned.push_back(p);
    if (prob.params && prob.keys && prob.alpha && v && marg && occ) {
        out.rc = b->infer_backward(b, &prob, v);
        if (out.rc == QF_OK) out.rc = b->infer_forward(b, &prob, v, start, marg, occ);
        if (out.rc == QF_OK) {
            out.v.resize(R * (T + 1) * S);
            out.marg.resize(R * T * S);
            out.occ.resize(R * S * A);
            if (b->download(b, out.v.data(), v, sizeof(double) * out.v.size()) != QF_OK ||
                b->download(b, out.marg.data(), marg, sizeof(double) * out.marg.size()) != QF_OK ||
                b->download(b, out.occ.data(), occ, sizeof(double) * out.occ.size()) != QF_OK)
                out.rc = QF_ERR;
        }
    }
    out.err = b->err;
    for (void *p : owned)
        if (p) b->release(b, p);
    return out;
}

// Sum of log pi_t(a | s) over run r's steps, for every run (demos: per run, (t, s, a) triples).
inline std::vector<double> infer_loglik(qf_backend *b, const InferProblem &pb, int backup,
                                        const std::vector<std::vector<std::array<int32_t, 3>>> &demos,
                                        std::string *err = nullptr) {
    const size_t R = (size_t)pb.R(), S = (size_t)pb.S, T = (size_t)pb.T;
    std::vector<void *> owned;
    qf_infer_problem prob;
    std::memset(&prob, 0, sizeof prob);
    prob.kind = pb.kind;
    prob.R = (int32_t)R;
    prob.params = infer_upload(b, pb.params, owned);
    prob.keys = infer_upload(b, pb.keys, owned);
    prob.alpha = infer_upload(b, pb.alpha, owned);
    prob.reward = infer_upload(b, pb.reward, owned);
    prob.n_states = pb.S;
    prob.n_actions = pb.A;
    prob.T = pb.T;
    prob.backup = backup;
    std::vector<int32_t> off{0}, ts, ss, as;
    for (size_t r = 0; r < R; r++) {
        for (const auto &st : demos[r]) {
            ts.push_back(st[0]);
            ss.push_back(st[1]);
            as.push_back(st[2]);
        }
        off.push_back((int32_t)ts.size());
    }
    if (ts.empty()) {
        ts.push_back(0);
        ss.push_back(0);
        as.push_back(0);
    }
    qf_demo_steps d;
    d.offset = infer_upload(b, off, owned);
    d.t = infer_upload(b, ts, owned);
    d.state = infer_upload(b, ss, owned);
    d.action = infer_upload(b, as, owned);
    double *v = (double *)b->alloc(b, sizeof(double) * R * (T + 1) * S);
    double *ll = (double *)b->alloc(b, sizeof(double) * R);
    owned.push_back(v);
    owned.push_back(ll);
    std::vector<double> out(R, 0.0);
    int rc = b->infer_backward(b, &prob, v);
    if (rc == QF_OK) rc = b->infer_loglik(b, &prob, v, &d, ll);
    if (rc == QF_OK) rc = b->download(b, out.data(), ll, sizeof(double) * R);
    EXPECT_EQ(rc, QF_OK) << b->err;
    if (err) *err = b->err;
    for (void *p : owned)
        if (p) b->release(b, p);
    return out;
}

#endif
