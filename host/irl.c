/* irl.c — `qfleet irl`: maximum (causal) entropy inverse RL with known dynamics (Ziebart et al.
 * 2008; Ziebart 2010, the causal form), many problems at once on the backend.
 *
 * Run r learns psi_r in r_psi(s, a) = psi . f(s, a) (the gridworld's object features, else one
 * indicator per state) from demonstrations, under the finite-horizon soft-optimal model of
 * kernels/infer.h (variational backup, temperature alpha_r, horizon T). Each iteration:
 *   1. reward = feat psi (backend feat_matvec)
 *   2. backward pass (V_t of r_psi), forward pass from the demonstrations' empirical start
 *      distribution: occupancy D(s, a) = sum_t p(s_t = s, a_t = a) under pi_psi
 *   3. expected feature counts mu_psi = feat^T D; gradient of the MCE objective
 *      J(psi) = (psi . mu_demo - E_{s0}[V_0(s0)]) / alpha:  (mu_demo - mu_psi) / alpha
 *      (mu_demo: the demonstrations' mean feature counts). J equals the demonstrations' mean log-
 *      likelihood sum_t log pi_t(a_t | s_t) when the dynamics are deterministic; with stochastic
 *      dynamics the two differ by a zero-mean term (tests/test_irl.cc checks both).
 *   4. Adam ascent on psi (backend irl_adam).
 * Metrics per log point: demo_loglik (mean per episode), feature_gap (max_k |mu_demo - mu_psi|),
 * regret = V*(s0) - V^{pi_psi}(s0), both under the env's own reward, V* the hard-max optimum of
 * the same horizon-T problem and V^{pi_psi} the occupancy of pi_psi from s0 times the env reward.
 *
 * `qfleet irl` runs one problem per (env seed, lr, demo count, seed): key (seed + s, env seed
 * index), so runs that differ only in lr or demo count see the same demonstrations (the first M
 * of the same draw). Results: runs.csv, curves.csv (run, iter, metric, value), reward_map.csv
 * (gridworld: true and learned reward per cell), summary.md, config.txt. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../kernels/infer_ops.h"
#include "checkpoint.h"
#include "experiment.h"
#include "infer.h"
#include "results.h"
#include <unistd.h>

#define QF_IRL_MAX_LIST 256
#define QF_IRL_QROW (QF_MAX_ARMS > QF_GRID_ACTIONS ? QF_MAX_ARMS : QF_GRID_ACTIONS)

void qf_demos_free(qf_demos *d) {
    free(d->episode_start);
    free(d->t);
    free(d->state);
    free(d->action);
    memset(d, 0, sizeof *d);
}

void qf_irl_curves_free(qf_irl_curves *c) {
    free(c->iter);
    free(c->loglik);
    free(c->gap);
    free(c->regret);
    free(c->v_star);
    free(c->expert_regret);
    memset(c, 0, sizeof *c);
}

int32_t qf_irl_n_features(int kind, const qf_env_params *p) {
    return kind == QF_ENV_GRIDWORLD ? qf_gridworld_n_features(&p->gridworld) : qf_env_n_states(kind, p);
}

void qf_irl_features(int kind, const qf_env_params *p, double *feat) {
    const int32_t S = qf_env_n_states(kind, p), A = qf_env_n_actions(kind, p), F = qf_irl_n_features(kind, p);
    float f[QF_GRID_MAX_FEATURES];
    for (int32_t s = 0; s < S; s++) {
        if (kind == QF_ENV_GRIDWORLD) qf_gridworld_features(&p->gridworld, s, f);
        for (int32_t a = 0; a < A; a++)
            for (int32_t k = 0; k < F; k++)
                feat[((size_t)s * A + a) * F + k] = kind == QF_ENV_GRIDWORLD ? (double)f[k] : (double)(k == s);
    }
}

/* Room for n more steps / episodes. */
static int demos_reserve(qf_demos *d, int32_t steps, int32_t episodes, int32_t *cap_s, int32_t *cap_e) {
    if (d->n_steps + steps > *cap_s) {
        int32_t c = *cap_s ? *cap_s * 2 : 1024;
        while (c < d->n_steps + steps) c *= 2;
        int32_t *t = (int32_t *)realloc(d->t, sizeof(int32_t) * (size_t)c);
        if (t) d->t = t;
        int32_t *s = (int32_t *)realloc(d->state, sizeof(int32_t) * (size_t)c);
        if (s) d->state = s;
        int32_t *a = (int32_t *)realloc(d->action, sizeof(int32_t) * (size_t)c);
        if (a) d->action = a;
        if (!t || !s || !a) return -1;
        *cap_s = c;
    }
    if (d->n_episodes + episodes > *cap_e) {
        int32_t c = *cap_e ? *cap_e * 2 : 64;
        while (c < d->n_episodes + episodes) c *= 2;
        int32_t *e = (int32_t *)realloc(d->episode_start, sizeof(int32_t) * (size_t)c);
        if (!e) return -1;
        d->episode_start = e;
        *cap_e = c;
    }
    return 0;
}

int qf_irl_draw_demos(int kind, const qf_env_params *p, uint32_t k0, uint32_t k1, double alpha, int32_t T,
                      const double *v, int32_t M, qf_demos *out) {
    memset(out, 0, sizeof *out);
    const int32_t S = qf_env_n_states(kind, p), A = qf_env_n_actions(kind, p);
    const uint32_t keys[2] = {k0, k1};
    qf_infer_problem hp;
    memset(&hp, 0, sizeof hp);
    hp.kind = kind;
    hp.R = 1;
    hp.params = p;
    hp.keys = keys;
    hp.alpha = &alpha;
    hp.n_states = S;
    hp.n_actions = A;
    hp.T = T;
    hp.backup = QF_BACKUP_VARIATIONAL;
    int32_t cap_s = 0, cap_e = 0;
    double q_row[QF_IRL_QROW];
    for (int32_t i = 0; i < M; i++) {
        if (demos_reserve(out, T, 1, &cap_s, &cap_e)) {
            qf_demos_free(out);
            return -1;
        }
        out->episode_start[out->n_episodes++] = out->n_steps;
        int32_t s = qf_env_start_state(kind, p);
        for (int32_t t = 0; t < T; t++) {
            qf_rng g = qf_rng_make(k0, k1, QF_STREAM_DEMO, (uint32_t)i, (uint32_t)t);
            const philox4x32_ctr_t bits = qf_rng_next(&g);
            const double vs = qf_infer_state(&hp, 0, s, v + (size_t)(t + 1) * S, q_row);
            /* the action: inverse CDF of pi_t(. | s) at a uniform with 53 random bits */
            const double u = ((double)(bits.v[0] >> 5) * 67108864.0 + (double)(bits.v[1] >> 6)) / 9007199254740992.0;
            int32_t a = A - 1;
            double acc = 0.0;
            for (int32_t c = 0; c < A; c++) {
                acc += exp((q_row[c] - vs) / alpha);
                if (u < acc) {
                    a = c;
                    break;
                }
            }
            out->t[out->n_steps] = t;
            out->state[out->n_steps] = s;
            out->action[out->n_steps] = a;
            out->n_steps++;
            qf_outcome o[QF_MAX_OUTCOMES];
            const int n = qf_env_outcomes(kind, p, k0, k1, s, a, o);
            const double u2 = (double)bits.v[2] / 4294967296.0;
            int j = n - 1;
            acc = 0.0;
            for (int c = 0; c < n; c++) {
                acc += o[c].prob;
                if (u2 < acc) {
                    j = c;
                    break;
                }
            }
            if (n == 0 || o[j].terminal) break;
            s = o[j].next;
        }
    }
    return 0;
}

/* ---- the demonstrations file ------------------------------------------------------------------ */

int qf_irl_read_demos(const char *path, int32_t T, int32_t S, int32_t A, qf_demos *out, char *msg, size_t len) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(msg, len, "demos_file=%s is %s, not a CSV file of demonstrations (episode,t,state,action)", path,
                 S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, len, "demos_file=%s: cannot open it (%s)", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, col[4] = {-1, -1, -1, -1}, ncols = 0;
    static const char *names[4] = {"episode", "t", "state", "action"};
    int32_t cap_s = 0, cap_e = 0, prev_t = -1;
    long long prev_ep = -1;
    int rc = -1;
    if (!fgets(line, sizeof line, f)) {
        snprintf(msg, len, "%s:1: the file is empty (expected the header episode,t,state,action)", path);
        goto done;
    }
    lineno = 1;
    line[strcspn(line, "\r\n")] = 0;
    for (char *tok = strtok(line, ","); tok; tok = strtok(NULL, ",")) {
        int k = 0;
        while (k < 4 && strcmp(tok, names[k]) != 0) k++;
        if (k == 4 || col[k] >= 0) {
            snprintf(msg, len, "%s:1: column '%s' is %s (the header must name episode,t,state,action once each)",
                     path, tok, k == 4 ? "unknown" : "repeated");
            goto done;
        }
        col[k] = ncols++;
    }
    for (int k = 0; k < 4; k++)
        if (col[k] < 0) {
            snprintf(msg, len, "%s:1: missing column '%s' (the header must be episode,t,state,action)", path, names[k]);
            goto done;
        }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(msg, len, "%s:%d: line longer than %d characters", path, lineno, (int)sizeof line - 2);
            goto done;
        }
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) {
            snprintf(msg, len, "%s:%d: empty line", path, lineno);
            goto done;
        }
        long long val[4] = {0, 0, 0, 0};
        int got = 0;
        char *p = line;
        for (int c = 0; c < ncols; c++) {
            char *end;
            errno = 0;
            const long long x = strtoll(p, &end, 10);
            if (end != p && !errno && c + 1 == ncols && *end == ',') {
                snprintf(msg, len, "%s:%d: the row has more than the header's %d fields (a trailing comma?)", path,
                         lineno, ncols);
                goto done;
            }
            if (end == p || errno || (*end != ',' && *end != 0) || (c + 1 < ncols && *end != ',') ||
                (c + 1 == ncols && *end != 0)) {
                snprintf(msg, len, "%s:%d: field %d ('%.*s') is not an integer, or the row does not have %d fields",
                         path, lineno, c + 1, (int)strcspn(p, ","), p, ncols);
                goto done;
            }
            for (int k = 0; k < 4; k++)
                if (col[k] == c) val[k] = x;
            got++;
            p = *end ? end + 1 : end;
        }
        (void)got;
        const long long ep = val[0], t = val[1], s = val[2], a = val[3];
        if (s < 0 || s >= S) {
            snprintf(msg, len, "%s:%d: state %lld is out of range [0, %d)", path, lineno, s, S);
            goto done;
        }
        if (a < 0 || a >= A) {
            snprintf(msg, len, "%s:%d: action %lld is out of range [0, %d)", path, lineno, a, A);
            goto done;
        }
        if (t >= T) {
            snprintf(msg, len, "%s:%d: t=%lld: the trajectory is longer than the horizon T=%d", path, lineno, t, T);
            goto done;
        }
        if (ep != prev_ep) {
            if (ep != prev_ep + 1 || t != 0) {
                snprintf(msg, len, "%s:%d: episode %lld, t=%lld: episodes must be numbered 0, 1, ... in order and "
                                   "start at t=0", path, lineno, ep, t);
                goto done;
            }
        } else if (t != prev_t + 1) {
            snprintf(msg, len, "%s:%d: episode %lld: t=%lld follows t=%d (steps must be t = 0, 1, 2, ...)", path,
                     lineno, ep, t, prev_t);
            goto done;
        }
        if (demos_reserve(out, 1, 1, &cap_s, &cap_e)) {
            snprintf(msg, len, "%s:%d: out of memory", path, lineno);
            goto done;
        }
        if (ep != prev_ep) out->episode_start[out->n_episodes++] = out->n_steps;
        out->t[out->n_steps] = (int32_t)t;
        out->state[out->n_steps] = (int32_t)s;
        out->action[out->n_steps] = (int32_t)a;
        out->n_steps++;
        prev_ep = ep;
        prev_t = (int32_t)t;
    }
    if (ferror(f)) {
        snprintf(msg, len, "%s:%d: read error (%s)", path, lineno + 1, strerror(errno));
        goto done;
    }
    if (out->n_episodes == 0) {
        snprintf(msg, len, "%s:%d: no demonstration rows after the header", path, lineno);
        goto done;
    }
    rc = 0;
done:
    fclose(f);
    if (rc) qf_demos_free(out);
    return rc;
}

/* One past the last step of episode e of d. */
static int32_t episode_end(const qf_demos *d, int32_t e) {
    return e + 1 < d->n_episodes ? d->episode_start[e + 1] : d->n_steps;
}

/* Every episode of d has T steps, or ends in a terminal transition of the model (DeepSea, bandit).
 * Returns the first episode that does not, or -1. */
static int32_t demos_short_episode(const qf_demos *d, int kind, const qf_env_params *p, uint32_t k0, uint32_t k1,
                                   int32_t T) {
    for (int32_t i = 0; i < d->n_episodes; i++) {
        const int32_t lo = d->episode_start[i], hi = episode_end(d, i);
        if (hi - lo == T) continue;
        qf_outcome o[QF_MAX_OUTCOMES];
        const int n = qf_env_outcomes(kind, p, k0, k1, d->state[hi - 1], d->action[hi - 1], o);
        int ends = n > 0;
        for (int j = 0; j < n; j++) ends &= o[j].terminal;
        if (!ends) return i;
    }
    return -1;
}

/* The first step i (index into d's steps) whose next row's state the env cannot reach: s_{t+1} is
 * not among the outcomes of (s_t, a_t) that continue the episode (probability > 0, not terminal).
 * Returns -1 when every step is possible, and the reachable states of the failing step in reach[]
 * (count in *n_reach). */
static int32_t demos_impossible_step(const qf_demos *d, int kind, const qf_env_params *p, uint32_t k0, uint32_t k1,
                                     int32_t *reach, int *n_reach) {
    for (int32_t e = 0; e < d->n_episodes; e++) {
        const int32_t lo = d->episode_start[e], hi = episode_end(d, e);
        for (int32_t i = lo; i + 1 < hi; i++) {
            qf_outcome o[QF_MAX_OUTCOMES];
            const int n = qf_env_outcomes(kind, p, k0, k1, d->state[i], d->action[i], o);
            int ok = 0;
            *n_reach = 0;
            for (int j = 0; j < n; j++)
                if (o[j].prob > 0.0 && !o[j].terminal) {
                    ok |= o[j].next == d->state[i + 1];
                    int seen = 0; /* a move into a wall and staying reach the same state */
                    for (int q = 0; q < *n_reach; q++) seen |= reach[q] == o[j].next;
                    if (!seen) reach[(*n_reach)++] = o[j].next;
                }
            if (!ok) return i;
        }
    }
    return -1;
}

/* ---- training ----------------------------------------------------------------------------------- */

#define TRY(cond)                                                                                     \
    do {                                                                                             \
        if (!(cond)) {                                                                               \
            snprintf(err, err_len, "irl: %s", b->err);                                               \
            goto fail;                                                                               \
        }                                                                                            \
    } while (0)

int qf_irl_train(qf_backend *b, const qf_irl_setup *in, double *psi, qf_irl_curves *cv, char *err, size_t err_len) {
    const int32_t R = in->R, T = in->T, S = in->S, A = in->A, F = in->F;
    const size_t SA = (size_t)S * A, RSA = (size_t)R * SA, RF = (size_t)R * F;
    memset(cv, 0, sizeof *cv);
    int ok = 0, stopped = 0;
    /* host: expert feature means, start distributions, demo steps flattened, the env reward */
    double *expert = (double *)calloc(RF, sizeof(double)), *start = (double *)calloc((size_t)R * S, sizeof(double));
    double *rtrue = (double *)calloc(RSA, sizeof(double)), *tmpF = (double *)malloc(sizeof(double) * RF);
    double *host_ll = (double *)malloc(sizeof(double) * R), *host_val = (double *)malloc(sizeof(double) * R);
    double *zero_alpha = (double *)calloc((size_t)R, sizeof(double));
    int32_t *off = (int32_t *)malloc(sizeof(int32_t) * (size_t)(R + 1));
    int64_t total = 0;
    for (int32_t r = 0; r < R; r++) total += in->demos[r].n_steps;
    int32_t *dt = (int32_t *)malloc(sizeof(int32_t) * (size_t)(total + 1));
    int32_t *ds = (int32_t *)malloc(sizeof(int32_t) * (size_t)(total + 1));
    int32_t *da = (int32_t *)malloc(sizeof(int32_t) * (size_t)(total + 1));
    char *blk = NULL;
    const int32_t n_logs = in->iters / in->log_every + 1 + (in->iters % in->log_every != 0);
    cv->n_logs = n_logs;
    cv->iter = (int32_t *)malloc(sizeof(int32_t) * (size_t)n_logs);
    cv->loglik = (double *)malloc(sizeof(double) * (size_t)n_logs * R);
    cv->gap = (double *)malloc(sizeof(double) * (size_t)n_logs * R);
    cv->regret = (double *)malloc(sizeof(double) * (size_t)n_logs * R);
    cv->v_star = (double *)malloc(sizeof(double) * (size_t)R);
    cv->expert_regret = (double *)malloc(sizeof(double) * (size_t)R);
    if (!expert || !start || !rtrue || !tmpF || !host_ll || !host_val || !zero_alpha || !off || !dt || !ds || !da ||
        !cv->iter || !cv->loglik || !cv->gap || !cv->regret || !cv->v_star || !cv->expert_regret) {
        snprintf(err, err_len, "irl: out of host memory");
        goto fail;
    }
    off[0] = 0;
    for (int32_t r = 0; r < R; r++) {
        const qf_demos *d = &in->demos[r];
        const double *fr = in->feat + (size_t)r * SA * F;
        for (int32_t j = 0; j < d->n_steps; j++) {
            const size_t at = (size_t)off[r] + (size_t)j;
            dt[at] = d->t[j];
            ds[at] = d->state[j];
            da[at] = d->action[j];
            for (int32_t k = 0; k < F; k++)
                expert[(size_t)r * F + k] += fr[((size_t)d->state[j] * A + d->action[j]) * F + k] / d->n_episodes;
        }
        for (int32_t i = 0; i < d->n_episodes; i++) start[(size_t)r * S + d->state[d->episode_start[i]]] += 1.0 / d->n_episodes;
        off[r + 1] = off[r] + d->n_steps;
        const qf_env_params *p = &in->params[r];
        for (int32_t s = 0; s < S; s++)
            for (int32_t a = 0; a < A; a++) {
                qf_outcome o[QF_MAX_OUTCOMES];
                const int n = qf_env_outcomes(in->kind, p, in->keys[2 * r], in->keys[2 * r + 1], s, a, o);
                double e = 0.0;
                for (int j = 0; j < n; j++) e += o[j].prob * (double)o[j].reward;
                rtrue[(size_t)r * SA + (size_t)s * A + a] = e;
            }
    }

    /* device: one block carved into the arrays */
    {
        size_t at = 0;
        const size_t sizes[] = {sizeof(qf_env_params) * R, sizeof(uint32_t) * 2 * R, 8 * (size_t)R, 8 * (size_t)R,
                                8 * RSA * F, 8 * RSA, 8 * (size_t)R * (T + 1) * S, 8 * RSA, 8 * (size_t)R * S, 8 * RF,
                                8 * RF, 8 * RF, 8 * RF, 8 * RF, 8 * RF, 8 * (size_t)R, 8 * RSA, 8 * (size_t)R,
                                8 * (size_t)R, 4 * (size_t)(R + 1), 4 * (size_t)(total + 1), 4 * (size_t)(total + 1),
                                4 * (size_t)(total + 1)};
        enum { N_ARR = sizeof sizes / sizeof sizes[0] };
        size_t offs[N_ARR];
        for (int i = 0; i < N_ARR; i++) {
            offs[i] = at;
            at += (sizes[i] + 255) & ~(size_t)255;
        }
        blk = (char *)b->alloc(b, at);
        TRY(blk);
#define D(i, type) ((type *)(blk + offs[i]))
        qf_env_params *d_params = D(0, qf_env_params);
        uint32_t *d_keys = D(1, uint32_t);
        double *d_alpha = D(2, double), *d_lr = D(3, double), *d_feat = D(4, double), *d_reward = D(5, double);
        double *d_v = D(6, double), *d_occ = D(7, double), *d_start = D(8, double), *d_expert = D(9, double);
        double *d_expected = D(10, double), *d_m = D(11, double), *d_vv = D(12, double), *d_psi = D(13, double);
        double *d_grad = D(14, double), *d_ll = D(15, double), *d_rtrue = D(16, double), *d_val = D(17, double);
        double *d_zero = D(18, double);
        int32_t *d_off = D(19, int32_t), *d_t = D(20, int32_t), *d_s = D(21, int32_t), *d_a = D(22, int32_t);
#undef D
        TRY(!b->upload(b, d_params, in->params, sizes[0]) && !b->upload(b, d_keys, in->keys, sizes[1]) &&
            !b->upload(b, d_alpha, in->alpha, sizes[2]) && !b->upload(b, d_lr, in->lr, sizes[3]) &&
            !b->upload(b, d_feat, in->feat, sizes[4]) && !b->upload(b, d_start, start, sizes[8]) &&
            !b->upload(b, d_expert, expert, sizes[9]) && !b->upload(b, d_rtrue, rtrue, sizes[16]) &&
            !b->upload(b, d_zero, zero_alpha, sizes[18]) && !b->upload(b, d_off, off, sizes[19]) &&
            !b->upload(b, d_t, dt, 4 * (size_t)total) && !b->upload(b, d_s, ds, 4 * (size_t)total) &&
            !b->upload(b, d_a, da, 4 * (size_t)total));
        qf_infer_problem prob;
        memset(&prob, 0, sizeof prob);
        prob.kind = in->kind;
        prob.R = R;
        prob.params = d_params;
        prob.keys = d_keys;
        prob.n_states = S;
        prob.n_actions = A;
        prob.T = T;
        prob.backup = QF_BACKUP_VARIATIONAL;
        qf_demo_steps demos = {d_off, d_t, d_s, d_a};

        /* V*(s0): the env's reward, hard max */
        prob.alpha = d_zero;
        prob.reward = NULL;
        TRY(!b->infer_backward(b, &prob, d_v));
        for (int32_t r = 0; r < R; r++) {
            const int32_t s0 = qf_env_start_state(in->kind, &in->params[r]);
            TRY(!b->download(b, &cv->v_star[r], d_v + (size_t)r * (T + 1) * S + s0, sizeof(double)));
        }
        /* the demonstrator's own policy (env reward, temperature alpha) and its value from s0 */
        prob.alpha = d_alpha;
        TRY(!b->infer_backward(b, &prob, d_v) && !b->infer_forward(b, &prob, d_v, NULL, NULL, d_occ) &&
            !b->feat_matvec(b, R, (int32_t)SA, 1, d_rtrue, (int64_t)SA, d_occ, 1, d_val) &&
            !b->download(b, host_val, d_val, 8 * (size_t)R));
        for (int32_t r = 0; r < R; r++) {
            if (!in->demos_given) {
                cv->expert_regret[r] = cv->v_star[r] - host_val[r];
                continue;
            }
            /* a file's demonstrator is unknown: its value is estimated by the demonstrations' mean
             * env-reward return, sum_t r(s_t, a_t) (expected reward of each pair) averaged over
             * the episodes (from the episodes' own start states) */
            const qf_demos *d = &in->demos[r];
            double ret = 0.0;
            for (int32_t j = 0; j < d->n_steps; j++) ret += rtrue[(size_t)r * SA + (size_t)d->state[j] * A + d->action[j]];
            cv->expert_regret[r] = cv->v_star[r] - ret / d->n_episodes;
        }
        prob.reward = d_reward;
        /* the state to start from: psi and Adam's moments (zeros unless resuming) */
        if (in->start_iter > 0) {
            TRY(!b->upload(b, d_psi, psi, 8 * RF));
            if (in->adam_m0) TRY(!b->upload(b, d_m, in->adam_m0, 8 * RF));
            if (in->adam_v0) TRY(!b->upload(b, d_vv, in->adam_v0, 8 * RF));
        } else {
            memset(tmpF, 0, 8 * RF);
            TRY(!b->upload(b, d_psi, tmpF, 8 * RF) && !b->upload(b, d_m, tmpF, 8 * RF) && !b->upload(b, d_vv, tmpF, 8 * RF));
        }

        int32_t k = 0;
        for (int32_t it = in->start_iter; it <= in->iters; it++) {
            /* between iterations: a checkpoint when one is due or a stop was asked for */
            const int stop_now = it > in->start_iter && ((in->stop && *in->stop) || stopped);
            if (it > in->start_iter && in->on_state && (stop_now || (in->want_state && in->want_state(in->ctx)))) {
                double *mh = (double *)malloc(8 * RF), *vh = (double *)malloc(8 * RF);
                int sok = mh && vh && !b->download(b, psi, d_psi, 8 * RF) && !b->download(b, mh, d_m, 8 * RF) &&
                          !b->download(b, vh, d_vv, 8 * RF);
                if (!sok) {
                    free(mh);
                    free(vh);
                    snprintf(err, err_len, "irl: %s", mh && vh ? b->err : "out of host memory");
                    goto fail;
                }
                if (in->on_state(in->ctx, it, psi, mh, vh)) stopped = 1;
                free(mh);
                free(vh);
            }
            if (stop_now || stopped) {
                stopped = 1;
                break;
            }
            const int log_now = it % in->log_every == 0 || it == in->iters;
            TRY(!b->feat_matvec(b, R, (int32_t)SA, F, d_feat, (int64_t)SA * F, d_psi, 0, d_reward));
            TRY(!b->infer_backward(b, &prob, d_v));
            if (log_now) {
                /* value of pi_psi under the env's reward from s0; the demos' log-likelihood */
                TRY(!b->infer_forward(b, &prob, d_v, NULL, NULL, d_occ));
                TRY(!b->feat_matvec(b, R, (int32_t)SA, 1, d_rtrue, (int64_t)SA, d_occ, 1, d_val));
                TRY(!b->infer_loglik(b, &prob, d_v, &demos, d_ll));
                TRY(!b->download(b, host_val, d_val, 8 * (size_t)R) && !b->download(b, host_ll, d_ll, 8 * (size_t)R));
            }
            TRY(!b->infer_forward(b, &prob, d_v, d_start, NULL, d_occ));
            TRY(!b->feat_matvec(b, R, (int32_t)SA, F, d_feat, (int64_t)SA * F, d_occ, 1, d_expected));
            if (log_now) {
                TRY(!b->download(b, tmpF, d_expected, 8 * RF));
                cv->iter[k] = it;
                for (int32_t r = 0; r < R; r++) {
                    double gap = 0.0;
                    for (int32_t f = 0; f < F; f++) {
                        const double d = fabs(expert[(size_t)r * F + f] - tmpF[(size_t)r * F + f]);
                        gap = d > gap ? d : gap;
                    }
                    cv->gap[(size_t)k * R + r] = gap;
                    cv->loglik[(size_t)k * R + r] = host_ll[r] / in->demos[r].n_episodes;
                    cv->regret[(size_t)k * R + r] = cv->v_star[r] - host_val[r];
                }
                if (in->on_log && in->on_log(in->ctx, it, cv->loglik + (size_t)k * R, cv->gap + (size_t)k * R,
                                             cv->regret + (size_t)k * R)) {
                    k++;
                    stopped = 2; /* the log could not be kept: stop without a new state */
                    break;
                }
                k++;
            }
            if (it < in->iters)
                TRY(!b->irl_adam(b, R, F, d_expert, d_expected, d_alpha, d_lr, it, d_m, d_vv, d_psi, d_grad));
        }
        cv->n_logs = k;
        if (!stopped) TRY(!b->download(b, psi, d_psi, 8 * RF));
    }
    ok = 1;
fail:
    if (blk) b->release(b, blk);
    free(expert);
    free(start);
    free(rtrue);
    free(tmpF);
    free(host_ll);
    free(host_val);
    free(zero_alpha);
    free(off);
    free(dt);
    free(ds);
    free(da);
    if (!ok) qf_irl_curves_free(cv);
    return !ok ? QF_ERR : stopped ? QF_IRL_STOPPED : QF_OK;
}
#undef TRY

/* ---- the command -------------------------------------------------------------------------------- */

/* The command's side of the training: the curve part appended at each log point, a checkpoint
 * (irl.ckpt: psi, Adam's m and v [R][F]; meta: iteration, R, F, curve-part bytes) every
 * checkpoint_seconds and when stopped. */
typedef struct irl_ctx {
    const char *dir;
    FILE *curves;
    char **names; /* [R] run names */
    int32_t R, F, iters, stopped_at;
    uint64_t hash;
    double every, last, shown;
    int tty, failed;
} irl_ctx;

static int irl_on_log(void *vctx, int32_t it, const double *loglik, const double *gap, const double *regret) {
    irl_ctx *c = (irl_ctx *)vctx;
    for (int32_t r = 0; r < c->R; r++) {
        qf_curve_row(c->curves, r, c->names[r], it, -1, "demo_log_likelihood", loglik[r]);
        qf_curve_row(c->curves, r, c->names[r], it, -1, "feature_expectation_gap", gap[r]);
        qf_curve_row(c->curves, r, c->names[r], it, -1, "true_regret", regret[r]);
    }
    if (qf_curve_part_sync(c->curves, c->dir) < 0) {
        c->failed = 1;
        return 1;
    }
    /* the progress line: a terminal at most 10 times a second, a log file every 10 s and at the end */
    const double now = qf_wall_s();
    if (it < c->iters && now - c->shown < (c->tty ? 0.1 : 10.0)) return 0;
    c->shown = now;
    double mean = 0.0;
    for (int32_t r = 0; r < c->R; r++) mean += regret[r] / c->R;
    fprintf(stderr, "%sirl: iteration %d/%d  mean true regret %.4g%s", c->tty ? "\r" : "", it, c->iters, mean,
            c->tty ? "   " : "\n");
    return 0;
}

static int irl_want_state(void *vctx) {
    irl_ctx *c = (irl_ctx *)vctx;
    return c->every > 0 && qf_wall_s() - c->last >= c->every;
}

static int irl_on_state(void *vctx, int32_t it, const double *psi, const double *m, const double *v) {
    irl_ctx *c = (irl_ctx *)vctx;
    const int64_t bytes = qf_curve_part_sync(c->curves, c->dir);
    qf_file_header h;
    memset(&h, 0, sizeof h);
    h.kind = QF_FILE_CKPT;
    h.hash = c->hash;
    h.meta[0] = (uint64_t)it;
    h.meta[1] = (uint64_t)c->R;
    h.meta[2] = (uint64_t)c->F;
    h.meta[3] = (uint64_t)bytes;
    const size_t n = sizeof(double) * (size_t)c->R * (size_t)c->F;
    const void *ptr[3] = {psi, m, v};
    const size_t sz[3] = {n, n, n};
    c->last = qf_wall_s();
    c->stopped_at = it;
    if (bytes < 0 || qf_file_write(c->dir, "irl.ckpt", &h, 3, ptr, sz)) {
        c->failed = 1; /* said; the last checkpoint, if any, is kept */
        return 1;
    }
    return 0;
}

static int32_t env_seed_or(int kind, const qf_env_params *p) {
    return kind == QF_ENV_GRIDWORLD ? p->gridworld.map_seed : (kind == QF_ENV_DEEP_SEA ? p->deep_sea.map_seed : 0);
}

int qf_cmd_irl(const qf_config *cfg, const qf_words *ws, qf_backend *b) {
    const int kind = cfg->env;
    const char *name = qf_env_spec_of(kind)->name;
    char msg[768];
    if (!qf_env_tabular(kind) || kind == QF_ENV_BANDIT) {
        fprintf(stderr, "qfleet: irl needs a tabular environment with states (allowed: env=gridworld, deep_sea, "
                        "chain); env=%s %s\n", name, kind == QF_ENV_BANDIT ? "has a single state" : "has continuous states");
        return 2;
    }
    if (cfg->horizon < 0) {
        fprintf(stderr, "qfleet: irl learns on finite-horizon problems: horizon=%lld (allowed: T >= 1, or 0 for the "
                        "env's episode length)\n", (long long)cfg->horizon);
        return 2;
    }
    if (cfg->demos_file[0] && qf_config_given(cfg, "demos")) {
        fprintf(stderr, "qfleet: demos=%s and demos_file=%s: the file's episodes are the demonstrations (their count "
                        "is the file's), so demos= would do nothing: give one of them\n", cfg->demos, cfg->demos_file);
        return 2;
    }
    double counts[QF_IRL_MAX_LIST], lrs[QF_IRL_MAX_LIST];
    int n_counts = 1;
    if (!cfg->demos_file[0])
        n_counts = qf_parse_list("demos", cfg->demos[0] ? cfg->demos : "64", 1, 1e7, 1, counts, QF_IRL_MAX_LIST, msg, sizeof msg);
    const int n_lr = n_counts < 0 ? 0 : qf_parse_list("lrs", cfg->lrs, 1e-9, 1e3, 0, lrs, QF_IRL_MAX_LIST, msg, sizeof msg);
    if (n_counts < 0 || n_lr < 0) {
        fprintf(stderr, "qfleet: %s\n", msg);
        return 2;
    }
    const qf_env_params *p0 = &cfg->env_params;
    const int32_t T = qf_problem_horizon(kind, p0, cfg->horizon);
    const int32_t S = qf_env_n_states(kind, p0), A = qf_env_n_actions(kind, p0), F = qf_irl_n_features(kind, p0);
    const int64_t R64 = (int64_t)cfg->env_seeds * n_lr * n_counts * cfg->seeds;
    const double need = (double)R64 * 8.0 * ((double)S * A * (F + 3) + (double)(T + 1) * S + 8.0 * F);
    if (R64 > 1048576 || need > (double)(b->mem_free / 10 * 9)) {
        fprintf(stderr, "qfleet: irl with %lld runs needs %.2f GiB, the %s backend has %.2f GiB free (allowed: fewer "
                        "runs, a smaller horizon or env)\n", (long long)R64, need / (1 << 30), b->name,
                (double)b->mem_free / (1 << 30));
        return 2;
    }
    const int32_t R = (int32_t)R64;
    qf_demos file_demos;
    memset(&file_demos, 0, sizeof file_demos);
    if (cfg->demos_file[0]) {
        if (qf_irl_read_demos(cfg->demos_file, T, S, A, &file_demos, msg, sizeof msg)) {
            fprintf(stderr, "qfleet: %s\n", msg);
            return 2;
        }
        const int32_t bad = demos_short_episode(&file_demos, kind, p0, (uint32_t)cfg->seed, 0, T);
        if (bad >= 0) {
            const int32_t lo = file_demos.episode_start[bad], hi = episode_end(&file_demos, bad);
            /* one step per data row after the header: step i of the file is on line i + 2 */
            fprintf(stderr, "qfleet: %s:%d: episode %d ends here after %d steps; it must have T=%d (horizon=) or end "
                            "in a terminal transition\n", cfg->demos_file, hi + 1, bad, hi - lo, T);
            qf_demos_free(&file_demos);
            return 2;
        }
        counts[0] = file_demos.n_episodes;
    }

    qf_env_params *params = (qf_env_params *)malloc(sizeof(qf_env_params) * (size_t)R);
    uint32_t *keys = (uint32_t *)malloc(sizeof(uint32_t) * 2 * (size_t)R);
    double *alpha = (double *)malloc(sizeof(double) * (size_t)R), *lr = (double *)malloc(sizeof(double) * (size_t)R);
    double *feat = (double *)malloc(sizeof(double) * (size_t)R * S * A * F);
    double *psi = (double *)malloc(sizeof(double) * (size_t)R * F);
    qf_demos *demos = (qf_demos *)calloc((size_t)R, sizeof(qf_demos));
    int32_t *m_of = (int32_t *)malloc(sizeof(int32_t) * (size_t)R);
    double *vtab = (double *)malloc(sizeof(double) * (size_t)(T + 1) * S);
    qf_irl_curves cv;
    memset(&cv, 0, sizeof cv);
    irl_ctx ic;
    memset(&ic, 0, sizeof ic);
    int rc = 1, lock_fd = -1, created = 0;
    char dir[QF_RESULTS_DIR_CAP], tmp[QF_RESULTS_PATH_CAP];
    FILE *f = NULL;
    if (!params || !keys || !alpha || !lr || !feat || !psi || !demos || !m_of || !vtab) {
        fprintf(stderr, "qfleet: out of host memory\n");
        goto done;
    }
    /* runs: r = ((env seed k * n_lr + lr j) * n_counts + count i) * seeds + seed s */
    for (int32_t r = 0; r < R; r++) {
        const int64_t s = r % cfg->seeds, i = (r / cfg->seeds) % n_counts, j = (r / cfg->seeds / n_counts) % n_lr,
                      k = r / cfg->seeds / n_counts / n_lr;
        params[r] = *p0;
        if (kind == QF_ENV_GRIDWORLD) params[r].gridworld.map_seed = (int32_t)((p0->gridworld.map_seed + k) % 2147483647);
        if (kind == QF_ENV_DEEP_SEA) params[r].deep_sea.map_seed = (int32_t)((p0->deep_sea.map_seed + k) % 2147483647);
        keys[2 * r] = (uint32_t)(cfg->seed + s);
        keys[2 * r + 1] = (uint32_t)k;
        alpha[r] = cfg->demo_alpha;
        lr[r] = lrs[j];
        m_of[r] = (int32_t)counts[i];
        qf_irl_features(kind, &params[r], feat + (size_t)r * S * A * F);
    }
    /* a demonstrations file must follow the env's dynamics in every run's env (DeepSea's action map
     * depends on the run's key and env seed): a state that cannot follow the previous step is
     * refused. Runs that differ only in lr or demo count share their env: one check per (env seed,
     * seed). */
    for (int32_t r = 0; cfg->demos_file[0] && r < R; r++) {
        if ((r / cfg->seeds) % ((int64_t)n_counts * n_lr) != 0) continue;
        int32_t reach[QF_MAX_OUTCOMES];
        int nr = 0;
        const int32_t i = demos_impossible_step(&file_demos, kind, &params[r], keys[2 * r], keys[2 * r + 1], reach, &nr);
        if (i < 0) continue;
        char list[96] = "";
        size_t at = 0;
        for (int j = 0; j < nr && at < sizeof list; j++)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%d", j ? ", " : "", reach[j]);
        /* step i is on line i + 2 (one row per step after the header); its successor on i + 3 */
        fprintf(stderr, "qfleet: %s:%d: state %d cannot follow state %d under action %d in %s env.map_seed=%d "
                        "(reachable without ending the episode: %s)\n", cfg->demos_file, i + 3,
                file_demos.state[i + 1], file_demos.state[i], file_demos.action[i], name, env_seed_or(kind, &params[r]),
                nr ? list : "none: the episode ends there");
        rc = 2;
        goto done;
    }
#define QF_PL(n) ((n) == 1 ? "" : "s")
    printf("qfleet irl: %s, %d run%s (%lld env seed%s x %d lr%s x %d demo count%s x %lld seed%s), %d states x %d "
           "actions, %d features, backend %s\n", name, R, QF_PL(R), (long long)cfg->env_seeds, QF_PL(cfg->env_seeds),
           n_lr, QF_PL(n_lr), n_counts, QF_PL(n_counts), (long long)cfg->seeds, QF_PL(cfg->seeds), S, A, F, b->name);
#undef QF_PL
    printf("  problem: finite horizon T=%d%s, model temperature alpha=%g; demonstrations: %s\n", T,
           cfg->horizon > 0 ? " (horizon=)" : " (the env's episode length; horizon= changes it)", cfg->demo_alpha,
           cfg->demos_file[0] ? cfg->demos_file : "drawn from the soft-optimal policy of the env's reward");
    fflush(stdout);
    /* demonstrations: the expert's V table per run (the backend), then draws on the host */
    if (!cfg->demos_file[0]) {
        qf_infer_problem prob;
        memset(&prob, 0, sizeof prob);
        void *d_p = b->alloc(b, sizeof(qf_env_params)), *d_k = b->alloc(b, 8), *d_a = b->alloc(b, 8);
        void *d_v = b->alloc(b, sizeof(double) * (size_t)(T + 1) * S);
        int okd = d_p && d_k && d_a && d_v;
        for (int32_t r = 0; okd && r < R; r++) {
            prob.kind = kind;
            prob.R = 1;
            prob.params = (const qf_env_params *)d_p;
            prob.keys = (const uint32_t *)d_k;
            prob.alpha = (const double *)d_a;
            prob.n_states = S;
            prob.n_actions = A;
            prob.T = T;
            prob.backup = QF_BACKUP_VARIATIONAL;
            okd = !b->upload(b, d_p, &params[r], sizeof(qf_env_params)) && !b->upload(b, d_k, &keys[2 * r], 8) &&
                  !b->upload(b, d_a, &alpha[r], 8) && !b->infer_backward(b, &prob, (double *)d_v) &&
                  !b->download(b, vtab, d_v, sizeof(double) * (size_t)(T + 1) * S) &&
                  !qf_irl_draw_demos(kind, &params[r], keys[2 * r], keys[2 * r + 1], alpha[r], T, vtab, m_of[r], &demos[r]);
        }
        if (d_p) b->release(b, d_p);
        if (d_k) b->release(b, d_k);
        if (d_a) b->release(b, d_a);
        if (d_v) b->release(b, d_v);
        if (!okd) {
            fprintf(stderr, "qfleet: irl: drawing the demonstrations failed: %s\n", b->err);
            goto done;
        }
    } else {
        for (int32_t r = 0; r < R; r++) { /* every run learns from the file (shared arrays, freed once) */
            demos[r] = file_demos;
        }
    }
    /* ---- the results folder (the runner's): claimed, or resumed from its checkpoint ---- */
    lock_fd = qf_results_begin("irl", cfg->out, ws, dir, sizeof dir, &created);
    if (lock_fd < 0) {
        rc = lock_fd == -2 ? 2 : 1;
        goto done;
    }
    if (ws->resume[0] && qf_results_complete(dir)) {
        rc = 0;
        goto done;
    }
    ic.dir = dir;
    ic.R = R;
    ic.F = F;
    ic.iters = (int32_t)cfg->iters;
    ic.every = cfg->checkpoint_seconds;
    ic.last = qf_wall_s();
    ic.tty = isatty(2);
    /* the experiment: its words, and the demonstrations a file brought (a changed file is another one) */
    ic.hash = qf_experiment_hash("irl", ws);
    if (cfg->demos_file[0]) {
        ic.hash = qf_fnv1a(ic.hash, file_demos.state, sizeof(int32_t) * (size_t)file_demos.n_steps);
        ic.hash = qf_fnv1a(ic.hash, file_demos.action, sizeof(int32_t) * (size_t)file_demos.n_steps);
        ic.hash = qf_fnv1a(ic.hash, file_demos.t, sizeof(int32_t) * (size_t)file_demos.n_steps);
    }
    if (!(ic.names = (char **)calloc((size_t)R, sizeof(char *)))) goto oom;
    for (int32_t r = 0; r < R; r++) { /* gridworld__maxent_irl__env.map_seed=K__lr=L__demos=M__seedS */
        char v[3][48];
        const char *keys_[3] = {"env.map_seed", "lr", "demos"}, *vals[3] = {v[0], v[1], v[2]};
        snprintf(v[0], sizeof v[0], "%d", env_seed_or(kind, &params[r]));
        snprintf(v[1], sizeof v[1], "%g", lr[r]);
        snprintf(v[2], sizeof v[2], "%d", demos[r].n_episodes);
        size_t nl = 0;
        FILE *m = open_memstream(&ic.names[r], &nl);
        if (!m) goto oom;
        qf_run_name_parts(m, name, "maxent_irl", 3, keys_, vals, keys[2 * r]);
        if (fclose(m)) goto oom;
    }
    int64_t curve_bytes = -1;
    int32_t start_iter = 0;
    double *m0 = NULL, *v0 = NULL;
    if (ws->resume[0]) {
        qf_file_header h;
        char *pl = NULL;
        size_t pn = 0;
        const int rr = qf_file_read(dir, "irl.ckpt", QF_FILE_CKPT, ic.hash, 0, &h, &pl, &pn, msg, sizeof msg);
        if (rr < 0) {
            fprintf(stderr, "qfleet: %s\n", msg);
            goto done;
        }
        if (rr == 0) {
            const uint64_t it = h.meta[0], RF = (uint64_t)R * (uint64_t)F;
            char path[QF_RESULTS_PATH_CAP];
            snprintf(path, sizeof path, "%s/fleet_1.curves", dir);
            struct stat st;
            const int64_t part_len = stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
            int ok = h.n_parts == 3 && it >= 1 && it <= (uint64_t)cfg->iters && h.meta[1] == (uint64_t)R &&
                     h.meta[2] == (uint64_t)F && h.part[0] == 8 * RF && h.part[1] == 8 * RF && h.part[2] == 8 * RF;
            if (ok && (part_len < 0 || h.meta[3] > (uint64_t)part_len)) {
                fprintf(stderr, "qfleet: %s is missing or shorter than its checkpoint says; remove %s/irl.ckpt to "
                                "start again\n", path, dir);
                free(pl);
                goto done;
            }
            if (ok && (m0 = (double *)malloc(8 * RF)) && (v0 = (double *)malloc(8 * RF))) {
                memcpy(psi, pl, 8 * RF);
                memcpy(m0, pl + 8 * RF, 8 * RF);
                memcpy(v0, pl + 16 * RF, 8 * RF);
                for (uint64_t i = 0; ok && i < RF; i++) /* Adam's second moment is >= 0; all finite */
                    ok = isfinite(psi[i]) && isfinite(m0[i]) && isfinite(v0[i]) && v0[i] >= 0.0;
            } else if (ok) {
                free(pl);
                goto oom;
            }
            free(pl);
            if (!ok) {
                fprintf(stderr, "qfleet: %s/irl.ckpt does not match this experiment (sizes, iteration or values out "
                                "of range: forged or damaged)\n", dir);
                goto done;
            }
            start_iter = (int32_t)it;
            curve_bytes = (int64_t)h.meta[3];
            fprintf(stderr, "qfleet: irl resumes at iteration %d of %lld\n", start_iter, (long long)cfg->iters);
        }
    }
    if (!(ic.curves = qf_curve_part_open(dir, 1, curve_bytes))) goto done;

    qf_irl_setup in;
    memset(&in, 0, sizeof in);
    in.kind = kind;
    in.R = R;
    in.T = T;
    in.S = S;
    in.A = A;
    in.F = F;
    in.params = params;
    in.keys = keys;
    in.alpha = alpha;
    in.lr = lr;
    in.feat = feat;
    in.demos = demos;
    in.demos_given = cfg->demos_file[0] != 0;
    in.iters = (int32_t)cfg->iters;
    /* log_every: as given (capped at iters), else about 100 log points (the key's default, 1000, is
     * env steps for the training commands) */
    const int64_t le = qf_config_given(cfg, "log_every") ? cfg->log_every : (cfg->iters + 99) / 100;
    in.log_every = (int32_t)(le < cfg->iters ? (le > 0 ? le : 1) : (cfg->iters > 0 ? cfg->iters : 1));
    in.start_iter = start_iter;
    in.adam_m0 = m0;
    in.adam_v0 = v0;
    in.stop = &qf_stop_flag;
    in.ctx = &ic;
    in.on_log = irl_on_log;
    in.want_state = irl_want_state;
    in.on_state = irl_on_state;
    const double t0 = qf_wall_s();
    qf_stop_signals_on();
    const int trc = qf_irl_train(b, &in, psi, &cv, msg, sizeof msg);
    qf_stop_signals_off();
    free(m0);
    free(v0);
    if (ic.tty) fprintf(stderr, "\n");
    if (trc == QF_IRL_STOPPED) {
        if (ic.failed) goto done; /* a curve part or checkpoint that could not be written: said */
        fprintf(stderr, "qfleet: interrupted at iteration %d of %lld; checkpoint written\nqfleet: resume with: "
                        "qfleet irl --resume %s\n", ic.stopped_at, (long long)cfg->iters, dir);
        rc = 130;
        goto done;
    }
    if (trc != QF_OK) {
        fprintf(stderr, "qfleet: %s\n", msg);
        goto done;
    }
    fclose(ic.curves);
    ic.curves = NULL;
    const double secs = qf_wall_s() - t0;
    const int32_t last = cv.n_logs - 1;
    printf("  %lld iterations in %.2f s in this process (%.1f run-iterations/s)\n",
           (long long)cfg->iters - start_iter, secs,
           secs > 0 ? (double)R * (double)(cfg->iters - start_iter) / secs : 0.0);
    printf("  %-5s %-8s %-8s %-8s %-14s %-12s %-10s %-14s %s\n", "run", "env_seed", "demos", "lr", "demo_loglik",
           "feature_gap", "regret", "expert_regret", "V*(s0)");
    for (int32_t r = 0; r < R && r < 8; r++)
        printf("  %-5d %-8u %-8d %-8g %-14.5f %-12.5g %-10.5g %-14.5g %.5f\n", r, (unsigned)env_seed_or(kind, &params[r]),
               m_of[r], lr[r], cv.loglik[(size_t)last * R + r], cv.gap[(size_t)last * R + r],
               cv.regret[(size_t)last * R + r], cv.expert_regret[r], cv.v_star[r]);
    printf("  regret: V*(s0) (hard max, env reward) minus the env-reward value of the policy soft-optimal at alpha for "
           "the learned reward; expert_regret: %s\n",
           cfg->demos_file[0] ? "V*(s0) minus the demonstrations' mean env-reward return (the file's demonstrator is "
                                "known only by its episodes)"
                              : "the same for the demonstrator's policy");
    if (R > 8) printf("  ... (%d runs: runs.csv)\n", R);

    /* the end: curves.csv, config.txt, reward_map.csv, summary.md, then runs.csv (complete) */
    if (qf_curves_merge(dir, 1)) goto done;
    if (!(f = qf_open_atomic(dir, "config.txt", tmp, sizeof tmp))) goto io_fail;
    qf_config_print_for(f, cfg, "irl");
    fprintf(f, "resolved_horizon=%d\n", T);
    if (qf_close_atomic(f, dir, "config.txt", tmp)) goto done;
    if (kind == QF_ENV_GRIDWORLD) {
        if (!(f = qf_open_atomic(dir, "reward_map.csv", tmp, sizeof tmp))) goto io_fail;
        fprintf(f, "run,state,row,col,true_reward,learned_reward\n");
        const int n = p0->gridworld.size;
        for (int32_t r = 0; r < R && r < 64; r++)
            for (int32_t s = 0; s < S; s++) {
                double learned = 0.0;
                for (int32_t k = 0; k < F; k++) learned += psi[(size_t)r * F + k] * feat[((size_t)r * S * A + (size_t)s * A) * F + k];
                fprintf(f, "%d,%d,%d,%d", r, s, s / n, s % n);
                qf_csv_num(f, (double)qf_gridworld_reward(&params[r].gridworld, s));
                qf_csv_num(f, learned);
                fprintf(f, "\n");
            }
        if (qf_close_atomic(f, dir, "reward_map.csv", tmp)) goto done;
    }
    if (!(f = qf_open_atomic(dir, "summary.md", tmp, sizeof tmp))) goto io_fail;
    fprintf(f, "# qfleet irl: %s\n\nMaxEnt IRL (causal, Ziebart 2010), horizon T=%d, alpha=%g, %lld iterations, %d runs.\n\n",
            name, T, cfg->demo_alpha, (long long)cfg->iters, R);
    fprintf(f, "| demos | runs | mean true regret | mean expert regret | mean feature-expectation gap | mean demo "
               "log-likelihood |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_counts; i++) {
        double sr = 0, sg = 0, sl = 0, se = 0;
        int cnt = 0;
        for (int32_t r = 0; r < R; r++)
            if (m_of[r] == (int32_t)counts[i]) {
                sr += cv.regret[(size_t)last * R + r];
                se += cv.expert_regret[r];
                sg += cv.gap[(size_t)last * R + r];
                sl += cv.loglik[(size_t)last * R + r];
                cnt++;
            }
        fprintf(f, "| %d | %d | %.5g | %.5g | %.5g | %.5g |\n", (int)counts[i], cnt, sr / cnt, se / cnt, sg / cnt, sl / cnt);
    }
    if (qf_close_atomic(f, dir, "summary.md", tmp)) goto done;
    /* runs.csv (docs/results-format.md): the runner's leading columns, irl's axes, its outcome */
    if (!(f = qf_open_atomic(dir, "runs.csv", tmp, sizeof tmp))) goto io_fail;
    fprintf(f, "run,name,fleet,point,env,explore,env.map_seed,lr,demos,seed,status,alpha,horizon,iters,v_star,"
               "demo_log_likelihood,feature_expectation_gap,true_regret,expert_regret,hoeffding_radius\n");
    for (int32_t r = 0; r < R; r++) {
        /* per-feature Hoeffding radius of the demos' mean feature counts (each in [0, T]), 95%,
         * union bound over the F features */
        const double radius = T * sqrt(log(2.0 * F / 0.05) / (2.0 * demos[r].n_episodes));
        /* the axis values quoted, as the runner's runs.csv writes its axes (docs/results-format.md) */
        fprintf(f, "%d,%s,1,%lld,%s,maxent_irl,\"%d\",\"%.9g\",\"%d\",%u,finished", r, ic.names[r],
                (long long)(r / cfg->seeds), name, env_seed_or(kind, &params[r]), lr[r], demos[r].n_episodes,
                keys[2 * r]);
        qf_csv_num(f, alpha[r]);
        fprintf(f, ",%d,%lld", T, (long long)cfg->iters);
        qf_csv_num(f, cv.v_star[r]);
        qf_csv_num(f, cv.loglik[(size_t)last * R + r]);
        qf_csv_num(f, cv.gap[(size_t)last * R + r]);
        qf_csv_num(f, cv.regret[(size_t)last * R + r]);
        qf_csv_num(f, cv.expert_regret[r]);
        qf_csv_num(f, radius);
        fprintf(f, "\n");
    }
    if (qf_close_atomic(f, dir, "runs.csv", tmp)) goto done;
    f = NULL;
    qf_curve_parts_remove(dir, 1);
    {
        char path[QF_RESULTS_PATH_CAP];
        snprintf(path, sizeof path, "%s/irl.ckpt", dir);
        remove(path);
    }
    printf("results: %s (runs.csv, curves.csv%s, summary.md; plots: python3 scripts/plot.py %s)\n", dir,
           kind == QF_ENV_GRIDWORLD ? ", reward_map.csv" : "", dir);
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "qfleet: out of host memory\n");
    goto done;
io_fail:
    fprintf(stderr, "qfleet: cannot write into %s: %s\n", dir, strerror(errno));
done:
    if (ic.names) {
        for (int32_t r = 0; r < R; r++) free(ic.names[r]);
        free(ic.names);
    }
    if (ic.curves) fclose(ic.curves);
    if (lock_fd >= 0) qf_results_release(lock_fd, dir, created, rc);
    if (demos) {
        if (cfg->demos_file[0])
            qf_demos_free(&file_demos);
        else
            for (int32_t r = 0; r < R; r++) qf_demos_free(&demos[r]);
    }
    qf_irl_curves_free(&cv);
    free(params);
    free(keys);
    free(alpha);
    free(lr);
    free(feat);
    free(psi);
    free(demos);
    free(m_of);
    free(vtab);
    return rc;
}
