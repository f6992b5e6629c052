/* roofline.h — the bounds the benchmarks measure themselves against: the machine's attainable
 * peaks (memory bandwidth, fp32 FLOP/s) and the bytes moved and FLOPs of the work a benchmark
 * times, from its shapes. Bound time = max(FLOPs / peak FLOP/s, bytes / peak bandwidth); a
 * benchmark reports its measured time against it ("% of bound") and its FLOP/s against the peak.
 * The formulas and their derivation are in one place: roofline.c. */
#ifndef QF_ROOFLINE_H
#define QF_ROOFLINE_H
#include "../kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The peaks of one device (kernels/backend.h). */
typedef qf_peaks qf_roof_peaks;

/* Work: FLOPs and bytes moved (compulsory memory traffic under the model in roofline.c). */
typedef struct qf_roof_work {
    double flops, bytes;
} qf_roof_work;

/* The peaks of a backend from its `peaks` operation, measured on the first call per backend kind
 * and cached for the process; falls back to b->peak_bytes_per_s (FLOP/s unknown) when the probe
 * fails. Never NULL; fields 0 where unknown. */
const qf_roof_peaks *qf_roof_peaks_of(qf_backend *b);

/* Bound time in seconds of work w on peaks p (0 when a needed peak is unknown); *memory_bound
 * (may be NULL) receives 1 when bytes / bandwidth is the larger term. */
double qf_roof_bound_s(qf_roof_work w, const qf_roof_peaks *p, int *memory_bound);

/* ---- the formulas (roofline.c derives them) ---- */

/* Bytes one env step reads and writes for this env kind and observation mode ("index", "dense",
 * "none"). */
double qf_roof_env_step_bytes(int kind, const qf_env_params *p, const char *obs_mode);

/* One network of shape n (n->w, n->L, n->embed, n->P, n->H; R and K ignored) on M inputs. */
qf_roof_work qf_roof_forward(const qf_net *n, int64_t M);
qf_roof_work qf_roof_backward(const qf_net *n, int64_t M);
/* One Adam step of one network (gradient norm, clipping, update). */
qf_roof_work qf_roof_adam(const qf_net *n);
/* One target update of one network: Polyak (tau < 1) every update, else a copy every
 * target_every updates (amortized per update). */
qf_roof_work qf_roof_target(const qf_net *n, double tau, int64_t target_every);

/* The shapes of a fleet, per run. */
typedef struct qf_roof_fleet {
    qf_net net;              /* the Q network; net.K heads per run                                  */
    int32_t E, B;            /* envs per run, batch per update                                      */
    int32_t obs_floats;      /* floats per observation in the replay and the network input: D
                                (dense) or 0 (a state index)                                         */
    double env_step_bytes;   /* qf_roof_env_step_bytes of the env and the fleet's observation mode  */
    int double_q, prior;     /* online forward on s' too; a fixed prior network per head            */
    double tau;              /* target update (see qf_roof_target)                                  */
    int64_t target_every;
    int rnd;                 /* RND networks (rnd_net: target and predictor, one each per run)      */
    qf_net rnd_net;
    int count;               /* 0: none, 1: exact table, 2: SimHash                                 */
    int count_act, count_bonus; /* (state, action) counts used in acting; bonus at sampling        */
    int32_t simhash_bits;
} qf_roof_fleet;

/* Work of one learner update of one run (B samples). */
qf_roof_work qf_roof_update(const qf_roof_fleet *s);
/* Work of collecting one env step of the E envs of one run: act, step, bonus, store. */
qf_roof_work qf_roof_collect(const qf_roof_fleet *s);
/* One training iteration of one run as `bench train` times it: collect + one update. */
qf_roof_work qf_roof_run_step(const qf_roof_fleet *s);

/* One MaxEnt IRL iteration of one problem as `bench irl` times it (host/irl.c: reward = feat psi,
 * backward pass, forward pass with occupancy, expected feature counts, Adam; variational backup,
 * kernels/infer.h): S states, A actions, F features, horizon T, nnz = the (s, a, s') entries of
 * the sparse dynamics (the sum over (s, a) of the outcome counts). FLOPs count additions,
 * multiplications, divisions and comparisons in double; the exp and log calls go to
 * *transcendentals (may be NULL), not into the FLOPs. Derived in roofline.c. */
qf_roof_work qf_roof_irl_iteration(int64_t S, int64_t A, int64_t F, int64_t T, int64_t nnz, double *transcendentals);

#ifdef __cplusplus
}
#endif
#endif /* QF_ROOFLINE_H */
