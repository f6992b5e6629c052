/* demos.c — the demo part of a fleet's replay (learning from demonstrations, issue 15 item 4).
 *
 * Run r with demos = M > 0 gets M expert episodes, drawn once when the fleet is created and never
 * overwritten (kernels/learn.h, qf_demo_part): the expert is the exact solver's policy for the
 * run's own MDP (backend `solve`: soft value iteration at the run's discount gamma and temperature
 * alpha, the fixed point the soft-Q learner's target aims at), acting by pi(a|s) = softmax(Q* / alpha)
 * for alpha > 0 and by the greedy argmax of Q* (the first maximum) at alpha = 0. The episodes are
 * stepped here on the host with the env's own step function (envs/envs.h), so a demo transition has
 * exactly the observation, reward and termination flag a training step would store. Draws: the
 * DEMO stream of the run's key, counter (episode i, step t); the env step draws from the same
 * generator after the action's word. So the demonstrations of a run depend on its key, env, gamma
 * and alpha only, never on the fleet around it, and a resumed fleet rebuilds the same bytes
 * (qf_fleet_check_snapshot compares them). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../envs/tabular.h"
#include "fleet.h"

int32_t qf_fleet_demo_slots(int kind, const qf_env_params *p, int32_t max_demos) {
    if (max_demos <= 0) return 0;
    const int64_t slots = (int64_t)max_demos * qf_env_episode_steps(kind, p);
    return slots > 2147483647 ? -1 : (int32_t)slots;
}

/* The expert's action in state s from its Q* row q[A] (double): greedy at alpha = 0, else the
 * inverse CDF of softmax(q / alpha) at a uniform of 53 bits from bits.v[0], v[1]. */
static int32_t expert_action(const double *q, int32_t A, double alpha, philox4x32_ctr_t bits) {
    int32_t best = 0;
    for (int32_t a = 1; a < A; a++)
        if (q[a] > q[best]) best = a;
    if (alpha <= 0.0) return best;
    double z = 0.0;
    for (int32_t a = 0; a < A; a++) z += exp((q[a] - q[best]) / alpha);
    const double u = ((double)(bits.v[0] >> 5) * 67108864.0 + (double)(bits.v[1] >> 6)) / 9007199254740992.0 * z;
    double acc = 0.0;
    for (int32_t a = 0; a < A; a++) {
        acc += exp((q[a] - q[best]) / alpha);
        if (u < acc) return a;
    }
    return best; /* u in the rounding gap at the top */
}

#define DFAIL(...)                                                                                 \
    do {                                                                                           \
        snprintf(err, err_len, __VA_ARGS__);                                                       \
        goto done;                                                                                 \
    } while (0)

int qf_fleet_fill_demos(qf_fleet *f, char *err, size_t err_len) {
    qf_demo_part *dp = &f->replay.demo;
    if (dp->C <= 0) return QF_OK;
    qf_backend *b = f->b;
    const int kind = f->cfg.env;
    const int32_t R = f->R, C = dp->C, D = f->D, A = f->A;
    const int32_t S = qf_env_n_states(kind, &f->cfg.env_params);
    int rc = QF_ERR;
    /* host buffers */
    qf_env_params *params = (qf_env_params *)malloc(sizeof(qf_env_params) * (size_t)R);
    double *hq = (double *)malloc(sizeof(double) * (size_t)R * S * A);
    double *gam = (double *)malloc(sizeof(double) * (size_t)R), *alp = (double *)malloc(sizeof(double) * (size_t)R);
    const size_t RC = (size_t)R * C;
    float *obs = f->embed ? NULL : (float *)calloc(RC * D, sizeof(float));
    float *nobs = f->embed ? NULL : (float *)calloc(RC * D, sizeof(float));
    int32_t *idx = f->embed ? (int32_t *)calloc(RC, sizeof(int32_t)) : NULL;
    int32_t *nidx = f->embed ? (int32_t *)calloc(RC, sizeof(int32_t)) : NULL;
    int32_t *act = (int32_t *)calloc(RC, sizeof(int32_t));
    float *rew = (float *)calloc(RC, sizeof(float));
    uint8_t *term = (uint8_t *)calloc(RC, 1);
    int32_t *size = (int32_t *)calloc((size_t)R, sizeof(int32_t)), *draws = (int32_t *)calloc((size_t)R, sizeof(int32_t));
    char *blk = NULL;
    if (!params || !hq || !gam || !alp || (f->embed ? !idx || !nidx : !obs || !nobs) || !act || !rew || !term || !size ||
        !draws)
        DFAIL("out of host memory for the demo part");
    if (b->download(b, params, f->env.batch.params, sizeof(qf_env_params) * (size_t)R) != QF_OK) DFAIL("%s", b->err);
    for (int32_t r = 0; r < R; r++) {
        gam[r] = f->hp_host[r].gamma;
        alp[r] = f->hp_host[r].alpha > 0.0f ? f->hp_host[r].alpha : 0.0;
    }

    /* ---- Q* of every run's MDP (the backend's exact solver, all runs at once) ---- */
    const size_t qbytes = sizeof(double) * (size_t)R * S * A, vbytes = sizeof(double) * (size_t)R * S;
    blk = (char *)b->alloc(b, qbytes + vbytes + 2 * sizeof(double) * (size_t)R);
    if (!blk) DFAIL("demo part: %s", b->err);
    double *dq = (double *)blk, *dv = (double *)(blk + qbytes), *dg = dv + (size_t)R * S, *da = dg + R;
    qf_solve_problem prob;
    memset(&prob, 0, sizeof prob);
    prob.kind = kind;
    prob.R = R;
    prob.params = f->env.batch.params;
    prob.keys = f->env.batch.keys;
    prob.gamma = dg;
    prob.alpha = da;
    prob.n_states = S;
    prob.n_actions = A;
    prob.max_iters = 100000;
    prob.tol = 1e-10;
    int32_t iters = 0;
    if (b->upload(b, dg, gam, sizeof(double) * (size_t)R) != QF_OK ||
        b->upload(b, da, alp, sizeof(double) * (size_t)R) != QF_OK || b->solve(b, &prob, dq, dv, &iters) != QF_OK ||
        b->download(b, hq, dq, qbytes) != QF_OK)
        DFAIL("demo part: the exact solver failed: %s", b->err);

    /* ---- the episodes, on the host ---- */
    for (int32_t r = 0; r < R; r++) {
        const qf_env_params *p = &params[r];
        const uint32_t k0 = f->keys_host[2 * r], k1 = f->keys_host[2 * r + 1];
        int32_t n = 0;
        for (int32_t i = 0; i < f->hp_host[r].demos; i++) {
            qf_env_state st;
            memset(&st, 0, sizeof st);
            qf_rng g0 = qf_rng_make(k0, k1, QF_STREAM_DEMO, (uint32_t)i, 0xffffffffu); /* the reset's draws */
            qf_env_reset(kind, p, &st, &g0);
            for (int32_t t = 0;; t++) {
                if (n >= C) DFAIL("demo part: run %d's episodes need more than %d slots (an episode longer than "
                                  "the env's %d steps)", r, C, qf_env_episode_steps(kind, p));
                const int64_t j = (int64_t)r * C + n;
                const int32_t s = qf_env_state_index(kind, p, &st);
                if (s < 0 || s >= S) DFAIL("demo part: run %d reached state %d outside [0, %d)", r, s, S);
                if (f->embed) idx[j] = s;
                else qf_env_observe(kind, p, &st, obs + j * D);
                qf_rng g = qf_rng_make(k0, k1, QF_STREAM_DEMO, (uint32_t)i, (uint32_t)t);
                const int32_t a = expert_action(hq + ((size_t)r * S + s) * A, A, alp[r], qf_rng_next(&g));
                uint32_t fl = 0;
                act[j] = a;
                rew[j] = qf_env_step(kind, p, &st, a, &g, k0, k1, &fl);
                term[j] = (uint8_t)((fl & QF_TERMINAL) != 0);
                if (f->embed) nidx[j] = qf_env_state_index(kind, p, &st);
                else qf_env_observe(kind, p, &st, nobs + j * D);
                n++;
                if (fl & (QF_TERMINAL | QF_TRUNCATED)) break;
            }
        }
        size[r] = n;
        draws[r] = qf_demo_draws(&f->hp_host[r], f->B, n);
    }

    /* ---- into the demo part (backend memory) ---- */
    int ok = b->upload(b, dp->action, act, sizeof(int32_t) * RC) == QF_OK &&
             b->upload(b, dp->reward, rew, sizeof(float) * RC) == QF_OK &&
             b->upload(b, dp->terminal, term, RC) == QF_OK &&
             b->upload(b, dp->size, size, sizeof(int32_t) * (size_t)R) == QF_OK &&
             b->upload(b, dp->draws, draws, sizeof(int32_t) * (size_t)R) == QF_OK;
    if (f->embed)
        ok = ok && b->upload(b, dp->idx, idx, sizeof(int32_t) * RC) == QF_OK &&
             b->upload(b, dp->next_idx, nidx, sizeof(int32_t) * RC) == QF_OK;
    else
        ok = ok && b->upload(b, dp->obs, obs, sizeof(float) * RC * D) == QF_OK &&
             b->upload(b, dp->next_obs, nobs, sizeof(float) * RC * D) == QF_OK;
    /* the fixed priors' outputs on the demo transitions' s and s', once, kept like the ring's (the
     * learner then adds them instead of running the priors' forward on sampled demo rows): network g
     * alone over row chunks of its run (a row's outputs do not depend on the other rows) */
    if (ok && dp->prior_obs) {
        const qf_net *n = &f->net;
        qf_net v = *n;
        v.R = 1;
        v.K = 1;
        v.x_per_net = 0;
        v.active = NULL;
        const int32_t MC = C < 4096 ? C : 4096;
        float *acts = (float *)b->alloc(b, sizeof(float) * (size_t)MC * (size_t)(n->H ? n->H : 1));
        ok = acts != NULL;
        for (int64_t g = 0; ok && g < (int64_t)R * n->K; g++) {
            const int64_t r = g / n->K;
            for (int32_t m0 = 0; ok && m0 < C; m0 += MC) {
                const int32_t mc = C - m0 < MC ? C - m0 : MC;
                const int64_t row = r * C + m0;
                for (int w = 0; ok && w < 2; w++) {
                    const float *x = f->embed ? NULL : (w ? dp->next_obs : dp->obs) + row * D;
                    const int32_t *xi = f->embed ? (w ? dp->next_idx : dp->idx) + row : NULL;
                    float *q = (w ? dp->prior_next : dp->prior_obs) + (g * C + m0) * A;
                    ok = b->net_forward(b, &v, f->prior + g * n->P, mc, x, xi, acts, q) == QF_OK;
                }
            }
        }
        if (acts) b->release(b, acts);
    }
    if (!ok) DFAIL("demo part: %s", b->err);
    rc = QF_OK;
done:
    if (blk) b->release(b, blk);
    free(params);
    free(hq);
    free(gam);
    free(alp);
    free(obs);
    free(nobs);
    free(idx);
    free(nidx);
    free(act);
    free(rew);
    free(term);
    free(size);
    free(draws);
    return rc;
}
