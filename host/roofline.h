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

/* The peaks of one device. The bounds use bytes_per_s and flops (measured where measured). */
typedef struct qf_roof_peaks {
    double bytes_per_s;      /* attainable memory bandwidth used for bounds (0: unknown)            */
    double flops;            /* attainable fp32 FLOP/s used for bounds (0: unknown)                 */
    double theo_bytes_per_s; /* theoretical memory bandwidth (0: not derivable here)                */
    double theo_flops;       /* theoretical fp32 FLOP/s (0: not derivable here)                     */
    int threads;             /* CPU: threads used by the probes                                     */
    char how[640];           /* one line: what was measured or derived, how                         */
} qf_roof_peaks;

/* Work: FLOPs and bytes moved (compulsory memory traffic under the model in roofline.c). */
typedef struct qf_roof_work {
    double flops, bytes;
} qf_roof_work;

/* CPU peaks, measured on the first call and cached for the process: bandwidth from a STREAM-like
 * triad over 3 arrays of 64 MiB with every OpenMP thread (best of 5), fp32 FLOP/s from one
 * 1024^3 cblas_sgemm with OpenBLAS set to every OpenMP thread for the probe (best of 3; the
 * previous OpenBLAS thread count is restored). Theoretical FLOP/s from /proc/cpuinfo where the
 * vector width is known (assumes 2 FMA units per core, said in `how`); theoretical bandwidth: 0.
 * `flops` (the bound) is the larger of the measured and the theoretical FLOP/s, so a probe slowed by
 * other processes cannot inflate the fractions reached. */
const qf_roof_peaks *qf_roof_cpu_peaks(void);

/* GPU peaks of the current CUDA device (CUDA builds only): theoretical DRAM bandwidth and fp32
 * FLOP/s from device attributes (clock x bus width; SMs x FP32 lanes per SM x 2 x clock), and a
 * measured device-to-device cudaMemcpy bandwidth (read + write), which is the bound used.
 * QF_ERR with the reason in err when there is no CUDA build or no usable device. */
int qf_roof_cuda_peaks(qf_roof_peaks *out, char *err, size_t err_len);

/* The peaks of a backend (CPU: cached probe; CUDA: qf_roof_cuda_peaks, cached, falling back to
 * b->peak_bytes_per_s). Never NULL; fields 0 where unknown. */
const qf_roof_peaks *qf_roof_peaks_of(const qf_backend *b);

/* FP32 lanes per SM for a compute capability (0: unknown); also used by benchmarks/dev/. */
static inline int qf_roof_fp32_lanes_per_sm(int major, int minor) {
    switch (major) {
    case 5: return 128;                       /* Maxwell */
    case 6: return minor == 0 ? 64 : 128;     /* Pascal: GP100 64, GP10x 128 */
    case 7: return 64;                        /* Volta, Turing */
    case 8: return minor == 0 ? 64 : 128;     /* Ampere: GA100 64; GA10x, Ada (8.9) 128 */
    case 9: return 128;                       /* Hopper */
    case 10: case 11: case 12: return 128;    /* Blackwell */
    default: return 0;
    }
}

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

#ifdef __cplusplus
}
#endif
#endif /* QF_ROOFLINE_H */
