/* fleet.h — a fleet: R runs trained side by side on one backend by soft Q-learning, one backend
 * call per operation for all of them. All device state (parameters, target copies, Adam moments,
 * replay, env batch, scratch) is allocated once, carved into named pointers. The training loop is
 * written once here and calls only backend operations. */
#ifndef QF_FLEET_H
#define QF_FLEET_H
#include "config.h"
#include "vecenv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One log point of one run (what curves.csv holds). */
typedef struct qf_log_point {
    int64_t step;          /* env steps per env so far */
    int64_t env_steps;     /* transitions collected by the run so far */
    int64_t episodes;      /* episodes finished by the run so far */
    int64_t new_episodes;  /* episodes finished since the previous log point */
    double episodic_return, episodic_length; /* means over the new episodes (NaN if none) */
    double td_loss, q_values, grad_norm;     /* last update's (NaN before learning starts) */
    double regret;         /* cumulative: sum over episodes of (V*(s0) - return); NaN if unknown */
    double sps;            /* env steps per second of the whole fleet since the previous point */
    double intrinsic;      /* mean beta * intrinsic reward of the last update's batch (NaN: none) */
    double q_diversity;    /* bootstrap runs: mean over the steps since the previous log point of the
                              ensemble's Q-diversity (kernels/explore.h qf_q_diversity_run); NaN for
                              other runs and for a point with no step since the previous one */
    int64_t first_treasure;/* run episode that first found the DeepSea treasure (0: not yet) */
    int64_t solved_at;     /* bsuite's episodes to solve: first episode with bad/episodes < solved_threshold */
    int64_t converged_at;  /* the scaling study's: first episode with return >= converge_return (0: not yet) */
    int64_t distinct;      /* distinct states visited (discrete envs with obs=index; -1 unknown) */
    int32_t status;        /* QF_RUN_OK or QF_RUN_DIVERGED */
    double eval_return;    /* mean undiscounted return of eval_episodes greedy episodes at this point
                              (qf_fleet_evaluate); NaN when no evaluation ran at this point */
} qf_log_point;

/* Greedy evaluation (qf_fleet_evaluate): its own env batch of R runs x eval_episodes envs and
 * buffers, never shared with training. Allocated at the first evaluation (or at creation when
 * eval_every > 0). */
typedef struct qf_fleet_eval {
    int32_t E;                  /* envs per run = episodes per run per evaluation (0: not allocated) */
    qf_vecenv env;
    void *block;                /* the one device allocation below */
    qf_run_hp *hp;              /* [R] the runs' hyperparameters, made greedy (device) */
    float *obs;                 /* [R][E][D] (dense) */
    int32_t *obs_idx;           /* [R][E] (embed) */
    float *q, *acts, *qp;       /* [G][E][A], [G][E][H], [G][E][A] prior outputs */
    int32_t *heads, *actions;   /* [R][E] */
    uint32_t *ep_host;          /* [R*E] host scratch: episodes finished */
    float *ret_host;            /* [R*E] host scratch: return of the last finished episode */
    double *first;              /* [R*E] return of each env's first episode (NaN: not yet) */
} qf_fleet_eval;

/* RND's separate intrinsic value (rnd_value=separate; Burda et al. 2018's second value head, for
 * Q-learning): one Q-network per run, Q_I, of the Q-networks' shape (one head), learning from the
 * intrinsic reward alone with discount gamma_int and no cut at episode ends (each update: the same
 * sampled batch as Q's, after Q's update; its own Adam and target network on Q's schedule). The
 * run acts on Q_E + beta * Q_I (backend add_int_q). Device memory, carved from the fleet's block
 * (net.active: 1 for runs with rnd_value=separate, 0 for the others, which skip its work). */
typedef struct qf_int_value {
    qf_net net;                 /* R runs x 1 head, the Q-network's widths */
    qf_run_hp *hp;              /* [R] each run's hp with gamma = gamma_int, beta = 1, no prior, no
                                   double Q, no demos: the TD target intr + gamma_int V_I(s') */
    float *params, *target, *adam_m, *adam_v, *grads, *work;
    int32_t *adam_t, *active;   /* [R] */
    float *q_act, *acts_act;    /* [R][E][A], [R][E][H]: Q_I(s, .) for acting */
    float *q, *qt, *dq;         /* [R][B][A] */
    float *acts, *acts_tmp;     /* [R][B][H] */
    float *loss, *qmean, *gnorm, *imean; /* [R] */
    float *zero_reward;         /* [R][B] zeros: Q_I's batch has no extrinsic reward */
    uint8_t *zero_terminal;     /* [R][B] zeros: ... and no termination (non-episodic) */
    qf_mask *ones_mask;         /* [R][B] every transition counts */
} qf_int_value;

typedef struct qf_fleet {
    qf_backend *b;
    qf_config cfg;
    int32_t R, E, B, C, D, A;
    int embed;
    qf_net net;       /* the Q-networks as acting reads them (each run's inputs shared by its heads) */
    qf_net learn_net; /* the same networks as the learner reads them: per-head inputs with
                         head_batch=separate (x_per_net), else equal to net */
    qf_vecenv env;
    void *block;      /* the one learner allocation */
    size_t bytes;
    /* device */
    qf_run_hp *hp;
    uint32_t *keys;
    int32_t *adam_t, *status;
    float *params, *target, *adam_m, *adam_v, *grads, *work;
    float *prior;               /* [G][P] fixed random prior networks (NULL: no run uses one) */
    float *qp;                  /* [G][max(E,B)][A] prior outputs */
    float *qp_next;             /* [G][E][A] prior outputs on s' at store time (replay.prior_next) */
    int32_t *heads;             /* [R][E] the head each env follows this episode */
    int32_t *active;            /* [R] heads each run uses (net.active) */
    float *intr_env;            /* [R][E] RND intrinsic reward of the last step */
    float *imean;               /* [R] */
    float *qdiv;                /* [R] Q-diversity summed over the steps since the last log point */
    qf_counts counts;           /* visit counts (mode QF_COUNT_OFF: none) */
    qf_rnd rnd;                 /* RND networks (rnd.target NULL: no run uses RND) */
    int has_prior, has_rnd, any_bonus_count, any_count_act, any_bootstrap;
    int any_int_value;          /* some run has rnd_value=separate: ival is allocated */
    int any_rnd_act;            /* some run acts on RND's (s, a) bonus (rnd_act) */
    int32_t *rnd_act_a;         /* [A][R][E]: action a everywhere (the pairs (s_e, a) of rnd_act) */
    qf_int_value ival;          /* RND's separate intrinsic value (any_int_value) */
    float *obs, *next_obs;      /* [R][E][D] (dense) */
    int32_t *obs_idx, *next_idx;/* [R][E] (embed) */
    int32_t *actions;           /* [R][E] */
    float *q_act, *acts_act;    /* [G][E][A], [G][E][H] */
    qf_replay replay;
    qf_sample sample;
    float *q, *acts, *qt, *qo, *acts_tmp, *dq; /* [G][B][A] / [G][B][H] */
    float *loss, *qmean, *gnorm;               /* [G] */
    /* host */
    qf_run_hp *hp_host;
    uint32_t *keys_host;
    int64_t t;                  /* env steps per env so far */
    uint32_t n_updates;
    double v_star;              /* V*(s0) for regret, NaN if not available */
    int32_t *diverged_at;       /* [R] step at which a run was marked diverged (-1: never) */
    double *regret;             /* [R] cumulative regret */
    int64_t *episodes;          /* [R] */
    uint32_t *ep_prev;          /* [R*E] episode counters at the previous log */
    float *ret_sum_host;        /* scratch [R*E] */
    int32_t *len_sum_host;
    uint32_t *ep_host;
    uint32_t *ft_host, *solved_host, *conv_host; /* [R*E] scratch */
    uint32_t *cnt_host;              /* [R*S] scratch (exact counts) */
    double last_log_time;
    int64_t last_log_step;
    int log_at_end;             /* 1 (default): qf_fleet_train also logs after its last step */
    volatile int *stop;         /* when set and *stop != 0, qf_fleet_train returns after the current step */
    qf_fleet_eval eval;         /* greedy evaluation state (eval.E == 0: none yet) */
    /* CUDA graphs (cfg.cuda_graphs; backend.h iter_*, docs/cuda-graphs.md): an iteration is
     * recorded once per kind and replayed; kind 0 acts, steps, adds bonuses and stores, kind 1 also
     * makes the cfg.updates learner updates. */
    int graphs;                 /* 1: iterations replay recordings */
    qf_iter *iter;              /* backend memory: the counters the recordings read (NULL: no graphs) */
    void *graph[2];             /* the recordings by kind (NULL: not recorded yet) */
    unsigned long long graph_launches[2]; /* work items inside each recording */
    int capturing;              /* 1 while an iteration is being recorded (its operations do not run) */
    int64_t iter_t;             /* the t and update the device counters hold (-1: unknown) */
    int64_t iter_update;
} qf_fleet;

/* The demo part (host/demos.c): slots per run for episodes of max_demos expert episodes of env kind
 * (max_demos x the longest episode; -1 past 2^31), and its filling when the fleet is created (the
 * exact solver's policy per run, episodes stepped on the host; QF_ERR with the reason in err). */
int32_t qf_fleet_demo_slots(int kind, const qf_env_params *p, int32_t max_demos);
int qf_fleet_fill_demos(qf_fleet *f, char *err, size_t err_len);

/* The hyperparameters of a run from the configuration. */
void qf_fleet_hp_from_config(const qf_config *cfg, qf_run_hp *hp);

/* Create a fleet of R = cfg->runs * cfg->seeds runs. hp: [R] per-run hyperparameters (NULL: all
 * from cfg); keys: [R][2] (NULL: run r = (c, s) = (r / seeds, r % seeds) gets (seed + s, c)). Returns QF_OK, or QF_ERR with the reason in err (bad sizes say which
 * key; a fleet that does not fit in the backend's memory says how much it needs). */
int qf_fleet_create(qf_fleet *f, qf_backend *b, const qf_config *cfg, const qf_run_hp *hp,
                    const uint32_t *keys, char *err, size_t err_len);
void qf_fleet_destroy(qf_fleet *f);

/* Advance every run by `steps` env steps (acting, stepping, storing, learning). Every log_every
 * steps (and at the end) the log points of all R runs are appended to log (if not NULL) through
 * the callback. Returns QF_OK or QF_ERR (message in err). */
typedef void (*qf_log_fn)(void *ctx, const qf_fleet *f, const qf_log_point *points /* [R] */);
int qf_fleet_train(qf_fleet *f, int64_t steps, qf_log_fn log, void *ctx, char *err, size_t err_len);

/* Greedy evaluation of every run's current Q-network: `episodes` fresh episodes per run (one env
 * each, run until its first episode ends, at most the env's time limit), acting by argmax of Q
 * (randomized prior included) with no exploration, no bonus, no learning and no statistics of
 * training touched. Bootstrap runs act on the mean of their heads' Q-values (the `act=ucb` rule at
 * ucb_c = 0); Osband et al. 2016 (Bootstrapped DQN) evaluate an ensemble by its vote, which picks
 * the same action whenever the heads agree. The envs are their own batch, whose Philox env
 * counters start at 2^31 + (t * episodes) mod (2^31 - episodes) (t: the fleet's step), so their
 * draws never coincide with a training env's (counters < 2^30) and differ between evaluations; the
 * training trajectories are bit-identical with and without evaluations. Operations: env_reset,
 * env_observe, net_forward, add_prior, act, env_step (both backends). ret [R] receives the mean
 * undiscounted return of each run's episodes. QF_OK, or QF_ERR with the reason in err. */
int qf_fleet_evaluate(qf_fleet *f, int32_t episodes, double *ret, char *err, size_t err_len);

/* Parameter export (host/params_io.c). dir/params.npy: numpy .npy format 1.0, little-endian float32,
 * shape [R][P_run] with P_run = qf_fleet_run_floats(f): run r's K trained networks (head k's block
 * of net.P floats at k * net.P), then, when the fleet has randomized priors, its K prior networks.
 * dir/params.json: the layout (networks, layers with weight/bias offsets and shapes, activation,
 * embedding input, heads and prior_scale of every run) to rebuild Q(s, .) = f_k(s) + prior_scale *
 * p_k(s) in numpy. Both files written atomically. 0, or -1 with one line in err. */
int64_t qf_fleet_run_floats(const qf_fleet *f);
/* stem: the files' name without extension (NULL: "params"); names [R]: each run's name in
 * params.json (NULL: ENV__EXPLORE__runC__seedS). */
int qf_fleet_export_params(qf_fleet *f, const char *dir, const char *stem, const char *const *names, char *err,
                           size_t err_len);
/* Load a params.npy written by qf_fleet_export_params into the fleet (trained networks, their
 * target copies and, when present, the priors). The file is validated before anything changes:
 * magic, version, header dict (descr '<f4', fortran_order False, shape equal to [R][P_run]) and
 * exact size; one line in err naming the file and the problem. 0 or -1. */
int qf_fleet_load_params(qf_fleet *f, const char *path, char *err, size_t err_len);

/* Set f->v_star = V*(s0) from the exact solver (host/fleet_solve.c); NaN when unavailable. */
int qf_fleet_solve_v0(qf_fleet *f);

/* Checkpoints: every byte of run state (parameters, target, Adam moments, replay, env states and
 * statistics, counters, host statistics) in qf_fleet_snapshot_bytes(f) bytes. A snapshot restores
 * into a fleet created with the same configuration, hyperparameters and keys, and training goes on
 * exactly as if it had never stopped (CPU: bit for bit; only the SPS timing differs). qf_fleet_restore
 * first runs qf_fleet_check_snapshot (without a step budget) and refuses, with the reason in the
 * backend's err, a snapshot that fails it; nothing is uploaded then. */
size_t qf_fleet_snapshot_bytes(const qf_fleet *f);
int qf_fleet_snapshot(qf_fleet *f, void *out);
int qf_fleet_restore(qf_fleet *f, const void *in);

/* Validate a snapshot of qf_fleet_snapshot_bytes(f) bytes (the caller checks its length) before
 * qf_fleet_restore uploads it, assuming its writer may be an attacker who recomputed any checksum:
 *  - what the configuration fixes must equal this fleet's own bytes: hyperparameters, keys, heads in
 *    use, prior networks, RND target networks, SimHash projections, env parameters (DeepSea's
 *    mapping table included) and keys, V*(s0);
 *  - what training reads as an index or a bound must lie in range: heads [R][E] in [0, n_heads),
 *    actions in [0, A), state indices in [0, S), replay slots that sampling can read (action,
 *    terminal 0/1, bootstrap mask bits of the run's heads, state indices), run status, env states
 *    (qf_env_state_check), env flags;
 *  - counters must be what the loop produces: 0 <= t <= max_steps, last_log_step <= t, n_updates
 *    from t and the schedule, adam_t = n_updates for a healthy run (<= for a diverged one),
 *    diverged_at -1 or the diverged run's adam_t, episodes = sum of ep_prev <= env episodes
 *    (DeepSea / bandit: exactly t / length), exact counts summing to t*E, RND statistics over t*E.
 * Floats that learning produces (parameters, target, Adam moments, rewards, statistics) may hold any
 * value: a NaN is a diverged run's business (status), not the file's.
 * f: a fleet created with the snapshot's configuration, hyperparameters and keys, with the same
 * params.npy loaded where the run used one (its priors are compared), trained or not (only what
 * training never changes is compared). max_steps: the run's step budget (INT64_MAX: none).
 * Returns QF_OK, or QF_ERR with one line in err naming the field, run and index. */
int qf_fleet_check_snapshot(qf_fleet *f, const void *snap, int64_t max_steps, char *err, size_t err_len);

/* Mean return of run r over its last >= 20 episodes (whole log intervals from the end) of the log
 * points pts [n_logs][R]; count receives the episodes used (0: NaN). */
double qf_recent_return(const qf_log_point *pts, int64_t n_logs, int32_t R, int32_t r, int64_t *count);

/* Copy the parameters of all runs to host memory params [G][P] (for tests). */
int qf_fleet_get_params(qf_fleet *f, float *params);
/* Overwrite them (tests poison a run with NaN). */
int qf_fleet_set_params(qf_fleet *f, const float *params);

#ifdef __cplusplus
}
#endif
#endif
