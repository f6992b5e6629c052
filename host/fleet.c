/* fleet.c — allocation of a fleet and the soft Q-learning loop (written once, backend-agnostic). */
#define _POSIX_C_SOURCE 200809L
#include "fleet.h"
#include "prof.h"
#include "../envs/tabular.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void qf_fleet_hp_from_config(const qf_config *cfg, qf_run_hp *hp) {
    memset(hp, 0, sizeof *hp);
    qf_config_run_hp(cfg, hp); /* the keys whose row names a field of qf_run_hp */
    hp->adam_b1 = 0.9f;
    hp->adam_b2 = 0.999f;
    hp->adam_eps = 1e-8f;
    /* what depends on several keys: the ensemble only for bootstrap runs, the bonus from explore */
    const int boot = hp->explore == QF_EXPLORE_BOOTSTRAP;
    if (!boot) {
        hp->n_heads = 1;
        hp->prior_scale = 0.0f;
        hp->mask_p = 1.0f;
    }
    if (cfg->bonus != QF_AUTO) hp->bonus = cfg->bonus;
    else hp->bonus = hp->explore == QF_EXPLORE_RND ? QF_BONUS_RND
                   : hp->explore == QF_EXPLORE_COUNT ? QF_BONUS_COUNT : QF_BONUS_NONE;
    if (hp->bonus == QF_BONUS_NONE) hp->beta = 0.0f;
    if (hp->bonus != QF_BONUS_RND) hp->rnd_value = QF_RND_VALUE_SHARED;
    if (hp->rnd_value != QF_RND_VALUE_SEPARATE) hp->gamma_int = 0.0f; /* unread: keep runs alike */
    if (hp->bonus != QF_BONUS_RND) hp->rnd_act = 0;
    const int64_t demos = qf_config_demos(cfg); /* the key is text (irl reads a list): not in qf_config_run_hp */
    hp->demos = demos > 0 ? (int32_t)demos : 0;
    if (!hp->demos) hp->demo_ratio = hp->demo_weight = hp->demo_margin = 0.0f; /* unread: keep runs alike */
}

static size_t align_up(size_t x) { return (x + 255) & ~(size_t)255; }

/* Carve the learner block (base NULL: count only). */
static size_t carve(qf_fleet *f, char *base) {
    const size_t R = (size_t)f->R, E = (size_t)f->E, B = (size_t)f->B, C = (size_t)f->C;
    const size_t D = (size_t)f->D, A = (size_t)f->A, G = R * (size_t)f->net.K;
    const size_t P = (size_t)f->net.P, H = (size_t)f->net.H;
    const size_t M = E > B ? E : B;
    const size_t SR = (size_t)f->sample.R; /* sampled rows: runs, or runs x heads (per-head batches) */
    size_t off = 0;
#define TAKE(ptr, type, count)                                                                     \
    do {                                                                                           \
        if (base) ptr = (type *)(base + off);                                                      \
        off = align_up(off + sizeof(type) * (size_t)(count));                                      \
    } while (0)
    TAKE(f->hp, qf_run_hp, R);
    TAKE(f->keys, uint32_t, 2 * R);
    TAKE(f->adam_t, int32_t, R);
    TAKE(f->status, int32_t, R);
    TAKE(f->params, float, G * P);
    TAKE(f->target, float, G * P);
    TAKE(f->adam_m, float, G * P);
    TAKE(f->adam_v, float, G * P);
    TAKE(f->grads, float, G * P);
    TAKE(f->work, float, qf_net_work_floats(&f->net, f->B));
    if (f->embed) {
        TAKE(f->obs_idx, int32_t, R * E);
        TAKE(f->next_idx, int32_t, R * E);
        TAKE(f->replay.idx, int32_t, R * C);
        TAKE(f->replay.next_idx, int32_t, R * C);
        TAKE(f->sample.idx, int32_t, SR * B);
        TAKE(f->sample.next_idx, int32_t, SR * B);
    } else {
        TAKE(f->obs, float, R * E * D);
        TAKE(f->next_obs, float, R * E * D);
        TAKE(f->replay.obs, float, R * C * D);
        TAKE(f->replay.next_obs, float, R * C * D);
        TAKE(f->sample.obs, float, SR * B * D);
        TAKE(f->sample.next_obs, float, SR * B * D);
    }
    TAKE(f->actions, int32_t, R * E);
    TAKE(f->q_act, float, G * E * A);
    TAKE(f->acts_act, float, G * E * (H ? H : 1));
    TAKE(f->replay.action, int32_t, R * C);
    TAKE(f->replay.reward, float, R * C);
    TAKE(f->replay.terminal, uint8_t, R * C);
    TAKE(f->sample.action, int32_t, SR * B);
    TAKE(f->sample.reward, float, SR * B);
    TAKE(f->sample.terminal, uint8_t, SR * B);
    TAKE(f->q, float, G * B * A);
    TAKE(f->qt, float, G * B * A);
    TAKE(f->qo, float, G * B * A);
    TAKE(f->dq, float, G * B * A);
    TAKE(f->acts, float, G * B * (H ? H : 1));
    TAKE(f->acts_tmp, float, G * B * (H ? H : 1));
    TAKE(f->loss, float, G);
    TAKE(f->qmean, float, G);
    TAKE(f->gnorm, float, G);
    TAKE(f->replay.mask, qf_mask, R * C);
    TAKE(f->replay.intr, float, R * C);
    TAKE(f->sample.mask, qf_mask, SR * B);
    TAKE(f->sample.intr, float, SR * B);
    TAKE(f->heads, int32_t, R * E);
    TAKE(f->intr_env, float, R * E);
    TAKE(f->imean, float, R);
    TAKE(f->qdiv, float, R);
    TAKE(f->active, int32_t, 2 * R); /* [R] Q heads in use, then [R] 1 for runs with RND */
    qf_demo_part *dp = &f->replay.demo;
    if (dp->C > 0) { /* the demo part (demos > 0 in some run): not carved otherwise */
        const size_t Cd = (size_t)dp->C;
        if (f->embed) {
            TAKE(dp->idx, int32_t, R * Cd);
            TAKE(dp->next_idx, int32_t, R * Cd);
        } else {
            TAKE(dp->obs, float, R * Cd * D);
            TAKE(dp->next_obs, float, R * Cd * D);
        }
        TAKE(dp->action, int32_t, R * Cd);
        TAKE(dp->reward, float, R * Cd);
        TAKE(dp->terminal, uint8_t, R * Cd);
        TAKE(dp->size, int32_t, R);
        TAKE(dp->draws, int32_t, R);
        TAKE(f->sample.is_demo, uint8_t, SR * B);
    }
    if (f->has_prior) {
        TAKE(f->prior, float, G * P);
        TAKE(f->qp, float, G * M * A);
    }
    /* the priors' outputs kept with the transitions: 2 K A floats per stored and sampled one; the
     * demo part's are computed once when it is filled (qf_fleet_fill_demos) */
    if (f->has_prior) {
        TAKE(f->qp_next, float, G * E * A);
        TAKE(f->replay.prior_obs, float, G * C * A);
        TAKE(f->replay.prior_next, float, G * C * A);
        TAKE(f->sample.prior_obs, float, G * B * A);
        TAKE(f->sample.prior_next, float, G * B * A);
        if (dp->C > 0) {
            TAKE(dp->prior_obs, float, G * dp->C * A);
            TAKE(dp->prior_next, float, G * dp->C * A);
        }
    }
    qf_counts *c = &f->counts;
    if (c->mode == QF_COUNT_EXACT) {
        TAKE(c->cnt, uint32_t, R * (size_t)c->S);
        if (c->A) TAKE(c->cnt_sa, uint32_t, R * (size_t)c->S * (size_t)c->A);
    }
    if (c->mode == QF_COUNT_SIMHASH) {
        TAKE(c->cnt, uint32_t, R << c->log2cap);
        TAKE(c->key, uint64_t, R << c->log2cap);
        TAKE(c->proj, float, R * (size_t)c->bits * D);
        if (c->A) {
            TAKE(c->cnt_sa, uint32_t, R << c->log2cap);
            TAKE(c->key_sa, uint64_t, R << c->log2cap);
        }
    }
    if (f->has_rnd) {
        qf_rnd *q = &f->rnd;
        const size_t Pr = (size_t)q->net.P, Hr = (size_t)q->net.H, dim = (size_t)q->net.w[q->net.L];
        TAKE(q->target, float, R * Pr);
        TAKE(q->pred, float, R * Pr);
        TAKE(q->adam_m, float, R * Pr);
        TAKE(q->adam_v, float, R * Pr);
        TAKE(q->grads, float, R * Pr);
        TAKE(q->work, float, qf_net_work_floats(&q->net, (int32_t)M));
        TAKE(q->adam_t, int32_t, R);
        TAKE(q->acts_t, float, R * M * Hr);
        TAKE(q->acts_p, float, R * M * Hr);
        TAKE(q->out_t, float, R * M * dim);
        TAKE(q->out_p, float, R * M * dim);
        TAKE(q->dq, float, R * M * dim);
        TAKE(q->loss, float, R);
        TAKE(q->gnorm, float, R);
        TAKE(q->ret, float, R * E);
        TAKE(q->ret_mean, double, R);
        TAKE(q->ret_m2, double, R);
        TAKE(q->ret_n, double, R);
        if (q->n_actions > 0 && f->embed) TAKE(q->xi, int32_t, R * M);
        if (!f->embed) {
            TAKE(q->xn, float, R * M * (size_t)q->net.w[0]);
            TAKE(q->obs_mean, double, R * D);
            TAKE(q->obs_m2, double, R * D);
            TAKE(q->obs_n, double, R);
        }
    }
    if (f->any_rnd_act) TAKE(f->rnd_act_a, int32_t, A * R * E);
    if (f->any_int_value) { /* RND's separate intrinsic value: one network per run */
        qf_int_value *iv = &f->ival;
        const size_t Pi = (size_t)iv->net.P, Hi = H ? H : 1;
        TAKE(iv->hp, qf_run_hp, R);
        TAKE(iv->params, float, R * Pi);
        TAKE(iv->target, float, R * Pi);
        TAKE(iv->adam_m, float, R * Pi);
        TAKE(iv->adam_v, float, R * Pi);
        TAKE(iv->grads, float, R * Pi);
        TAKE(iv->work, float, qf_net_work_floats(&iv->net, f->B));
        TAKE(iv->adam_t, int32_t, R);
        TAKE(iv->active, int32_t, R);
        TAKE(iv->q_act, float, R * E * A);
        TAKE(iv->acts_act, float, R * E * Hi);
        TAKE(iv->q, float, R * B * A);
        TAKE(iv->qt, float, R * B * A);
        TAKE(iv->dq, float, R * B * A);
        TAKE(iv->acts, float, R * B * Hi);
        TAKE(iv->acts_tmp, float, R * B * Hi);
        TAKE(iv->loss, float, R);
        TAKE(iv->qmean, float, R);
        TAKE(iv->gnorm, float, R);
        TAKE(iv->imean, float, R);
        TAKE(iv->zero_reward, float, R * B);
        TAKE(iv->zero_terminal, uint8_t, R * B);
        TAKE(iv->ones_mask, qf_mask, R * B);
    }
#undef TAKE
    return off;
}

static size_t eval_carve(qf_fleet *f, int32_t E, char *base);
static int eval_alloc(qf_fleet *f, int32_t E, char *err, size_t err_len);
static void eval_free(qf_fleet *f);

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, err_len, __VA_ARGS__);                                                       \
        goto fail;                                                                                 \
    } while (0)

int qf_fleet_create(qf_fleet *f, qf_backend *b, const qf_config *cfg, const qf_run_hp *hp,
                    const uint32_t *keys, char *err, size_t err_len) {
    memset(f, 0, sizeof *f);
    f->b = b;
    f->cfg = *cfg;
    f->R = (int32_t)(cfg->runs * cfg->seeds);
    f->E = (int32_t)cfg->envs;
    f->B = (int32_t)cfg->batch;
    f->C = (int32_t)(cfg->buffer > 2147483647 ? 2147483647 : cfg->buffer);
    const qf_env_params *p = &cfg->env_params;
    const int kind = cfg->env;
    const int discrete = qf_env_n_states(kind, p) > 0;
    if (cfg->obs == QF_OBS_NONE) FAIL("obs=none: the learner needs observations (allowed: auto, index, dense)");
    f->embed = discrete && cfg->obs != QF_OBS_DENSE;
    f->D = qf_env_obs_dim(kind, p);
    f->A = qf_env_n_actions(kind, p);
    if (!b->net_forward) FAIL("the %s backend has no learner operations yet (use backend=cpu)", b->name);

    /* the runs' hyperparameters decide the fleet's shapes: K = the most heads any run uses */
    f->hp_host = (qf_run_hp *)calloc((size_t)f->R, sizeof(qf_run_hp));
    if (!f->hp_host) FAIL("out of host memory");
    int32_t K = 1;
    for (int32_t r = 0; r < f->R; r++) {
        if (hp) f->hp_host[r] = hp[r];
        else qf_fleet_hp_from_config(cfg, &f->hp_host[r]);
        const qf_run_hp *h = &f->hp_host[r];
        if (h->n_heads < 1 || h->n_heads > QF_MAX_HEADS) FAIL("run %d: heads=%d (allowed: 1 to %d)", r, h->n_heads, QF_MAX_HEADS);
        K = h->n_heads > K ? h->n_heads : K;
        f->has_prior |= h->prior_scale != 0.0f;
        f->has_rnd |= h->bonus == QF_BONUS_RND;
        f->any_bonus_count |= h->bonus == QF_BONUS_COUNT;
        f->any_count_act |= h->bonus == QF_BONUS_COUNT && h->count_act;
        f->any_bootstrap |= h->explore == QF_EXPLORE_BOOTSTRAP;
        f->any_int_value |= h->bonus == QF_BONUS_RND && h->rnd_value == QF_RND_VALUE_SEPARATE;
        f->any_rnd_act |= h->bonus == QF_BONUS_RND && h->rnd_act;
    }
    if (f->any_rnd_act && cfg->rnd_input != QF_RND_INPUT_SA)
        FAIL("rnd_act=1 acts on RND's bonus of each (state, action) pair, which needs rnd_input=state_action");
    qf_counts *ct = &f->counts;
    ct->R = f->R;
    ct->mode = QF_COUNT_OFF;
    ct->A = f->any_count_act ? f->A : 0; /* (state, action) counts only where a run acts on them */
    const int want_simhash = cfg->count == QF_COUNT_SIMHASH;
    if (f->any_bonus_count && cfg->count == QF_COUNT_EXACT && !f->embed)
        FAIL("count=exact counts state indices: it needs a discrete env (deep_sea, chain, bandit) with obs=index "
             "or auto (allowed otherwise: count=simhash or auto)");
    if (f->any_bonus_count && (want_simhash || !f->embed)) {
        if (f->embed) FAIL("count=simhash hashes dense observations: use obs=dense with it");
        ct->mode = QF_COUNT_SIMHASH;
        ct->bits = (int32_t)cfg->simhash_bits;
        ct->D = f->D;
        ct->log2cap = (int32_t)cfg->count_table;
    } else if (f->embed) { /* exact counts also give the distinct-states statistic */
        ct->mode = QF_COUNT_EXACT;
        ct->S = qf_env_n_states(kind, p);
    }
    qf_net *n = &f->net;
    n->R = f->R;
    n->K = K;
    n->embed = f->embed;
    n->L = (int32_t)cfg->n_hidden + 1;
    n->w[0] = f->embed ? qf_env_n_states(kind, p) : f->D;
    for (int i = 0; i < cfg->n_hidden; i++) n->w[i + 1] = (int32_t)cfg->hidden[i];
    n->w[n->L] = f->A;
    n->act = cfg->activation;
    qf_net_layout(n);
    /* head_batch=separate: each head draws its own minibatch (sample rows [R*K][B]); the learner's
     * calls then read inputs per network (learn_net), acting still reads each run's observations */
    const int separate = cfg->head_batch == QF_HEAD_BATCH_SEPARATE && K > 1;
    if (separate && f->has_rnd)
        FAIL("head_batch=separate with an RND bonus in a fleet of %d heads is not built (RND's predictor and "
             "its input statistics learn from one batch per run; allowed: head_batch=shared)", K);
    f->sample.R = separate ? f->R * K : f->R;
    if (f->has_rnd) {
        qf_net *rn = &f->rnd.net;
        rn->R = f->R;
        rn->K = 1;
        rn->embed = f->embed;
        rn->L = 2;
        /* rnd_input=state_action: the pair (s, a), one index of S*A (embed) or D + A values */
        const int sa = cfg->rnd_input == QF_RND_INPUT_SA;
        f->rnd.obs_dim = f->embed ? 0 : f->D;
        f->rnd.n_actions = sa ? f->A : 0;
        rn->w[0] = !sa ? n->w[0] : f->embed ? n->w[0] * f->A : n->w[0] + f->A;
        rn->w[1] = (int32_t)cfg->rnd_width;
        rn->w[2] = (int32_t)cfg->rnd_dim;
        qf_net_layout(rn);
    }
    if (f->any_int_value) { /* Q_I: the Q-network's shape with one head */
        f->ival.net = *n;
        f->ival.net.K = 1;
        f->ival.net.x_per_net = 0;
    }
    if (f->C < f->E) FAIL("buffer=%d is smaller than envs=%d: one step would overwrite itself", f->C, f->E);
    int32_t max_demos = 0;
    for (int32_t r = 0; r < f->R; r++) max_demos = f->hp_host[r].demos > max_demos ? f->hp_host[r].demos : max_demos;
    if (max_demos > 0) {
        if (kind != QF_ENV_DEEP_SEA && kind != QF_ENV_CHAIN && kind != QF_ENV_GRIDWORLD)
            FAIL("demos=%d draws episodes from the exact solver's policy, which env=%s has not (allowed: deep_sea, "
                 "chain, gridworld)", max_demos, qf_env_spec_of(kind)->name);
        f->replay.demo.C = qf_fleet_demo_slots(kind, p, max_demos);
        if (f->replay.demo.C < 0) FAIL("demos=%d: the demo part would hold more than 2^31 transitions per run", max_demos);
    }

    f->bytes = carve(f, NULL);
    /* greedy evaluations (eval_every > 0) take their own envs and buffers, counted here too */
    const size_t env_bytes = qf_vecenv_bytes(f->R, f->E) +
                             (cfg->eval_every > 0 ? eval_carve(f, (int32_t)cfg->eval_episodes, NULL) +
                                                        qf_vecenv_bytes(f->R, cfg->eval_episodes)
                                                  : 0);
    if (f->bytes + env_bytes > b->mem_free / 10 * 9)
        FAIL("runs=%d with envs=%d, buffer=%d, batch=%d and hidden widths as given needs %.2f GiB, "
             "but the %s backend has %.2f GiB free (allowed: fewer runs, a smaller buffer or network)",
             f->R, f->E, f->C, f->B, (double)(f->bytes + env_bytes) / (1 << 30), b->name,
             (double)b->mem_free / (1 << 30));
    f->block = b->alloc(b, f->bytes);
    if (!f->block) FAIL("%s", b->err);
    carve(f, (char *)f->block);
    f->replay.R = f->R;
    f->replay.C = f->C;
    f->replay.D = f->D;
    f->replay.embed = f->embed;
    f->sample.C = f->B;
    f->sample.D = f->D;
    f->sample.embed = f->embed;
    f->replay.K = f->sample.K = f->net.K;
    f->replay.A = f->sample.A = f->A;

    /* host copies of per-run data */
    f->keys_host = (uint32_t *)calloc((size_t)f->R * 2, sizeof(uint32_t));
    f->diverged_at = (int32_t *)malloc(sizeof(int32_t) * (size_t)f->R);
    f->regret = (double *)calloc((size_t)f->R, sizeof(double));
    f->episodes = (int64_t *)calloc((size_t)f->R, sizeof(int64_t));
    const size_t N = (size_t)f->R * (size_t)f->E;
    f->ep_prev = (uint32_t *)calloc(N, sizeof(uint32_t));
    f->ep_host = (uint32_t *)calloc(N, sizeof(uint32_t));
    f->ret_sum_host = (float *)calloc(N, sizeof(float));
    f->len_sum_host = (int32_t *)calloc(N, sizeof(int32_t));
    f->ft_host = (uint32_t *)calloc(N, sizeof(uint32_t));
    f->solved_host = (uint32_t *)calloc(N, sizeof(uint32_t));
    f->conv_host = (uint32_t *)calloc(N, sizeof(uint32_t));
    f->cnt_host = ct->mode == QF_COUNT_EXACT ? (uint32_t *)calloc((size_t)f->R * (size_t)ct->S, sizeof(uint32_t)) : NULL;
    if ((ct->mode == QF_COUNT_EXACT && !f->cnt_host) || !f->ft_host || !f->solved_host || !f->conv_host) FAIL("out of host memory");
    if (!f->hp_host || !f->keys_host || !f->diverged_at || !f->regret || !f->episodes || !f->ep_prev ||
        !f->ep_host || !f->ret_sum_host || !f->len_sum_host)
        FAIL("out of host memory");
    for (int32_t r = 0; r < f->R; r++) {
        /* run (c, s) = (r / seeds, r % seeds) draws from key (seed + s, c) */
        f->keys_host[2 * r] = keys ? keys[2 * r] : (uint32_t)(cfg->seed + r % cfg->seeds);
        f->keys_host[2 * r + 1] = keys ? keys[2 * r + 1] : (uint32_t)(r / cfg->seeds);
        f->diverged_at[r] = -1;
    }
    int32_t *active = (int32_t *)malloc(sizeof(int32_t) * 2 * (size_t)f->R);
    if (!active) FAIL("out of host memory");
    for (int32_t r = 0; r < f->R; r++) {
        active[r] = f->hp_host[r].n_heads;
        active[f->R + r] = f->hp_host[r].bonus == QF_BONUS_RND;
    }
    const int up = b->upload(b, f->active, active, sizeof(int32_t) * 2 * (size_t)f->R);
    free(active);
    n->active = f->active;
    f->learn_net = *n;
    f->learn_net.x_per_net = f->sample.R > f->R;
    f->rnd.net.active = f->active + f->R; /* runs without RND skip its networks */
    if (up != QF_OK || b->upload(b, f->hp, f->hp_host, sizeof(qf_run_hp) * (size_t)f->R) != QF_OK ||
        b->upload(b, f->keys, f->keys_host, sizeof(uint32_t) * 2 * (size_t)f->R) != QF_OK ||
        b->net_init(b, n, f->keys, QF_STREAM_INIT, f->params) != QF_OK ||
        b->target_update(b, n, f->hp, f->params, f->target, f->status, 1) != QF_OK ||
        (f->has_prior && b->net_init(b, n, f->keys, QF_STREAM_PRIOR, f->prior) != QF_OK) ||
        (ct->mode != QF_COUNT_OFF && b->count_init(b, ct, f->keys) != QF_OK))
        FAIL("%s", b->err);
    if (f->any_rnd_act) { /* the constant action columns of rnd_act's pairs */
        const size_t RE = (size_t)f->R * (size_t)f->E;
        int32_t *aa = (int32_t *)malloc(sizeof(int32_t) * RE * (size_t)f->A);
        if (!aa) FAIL("out of host memory");
        for (size_t i = 0; i < RE * (size_t)f->A; i++) aa[i] = (int32_t)(i / RE);
        const int up_a = b->upload(b, f->rnd_act_a, aa, sizeof(int32_t) * RE * (size_t)f->A);
        free(aa);
        if (up_a != QF_OK) FAIL("%s", b->err);
    }
    if (f->any_int_value) { /* Q_I: its own hyperparameters, initial parameters, constant batch parts */
        qf_int_value *iv = &f->ival;
        const size_t R = (size_t)f->R, RB = R * (size_t)f->B;
        qf_run_hp *ih = (qf_run_hp *)malloc(sizeof(qf_run_hp) * R);
        int32_t *ion = (int32_t *)malloc(sizeof(int32_t) * R);
        qf_mask *ones = (qf_mask *)malloc(sizeof(qf_mask) * RB);
        int iok = ih && ion && ones;
        for (size_t r = 0; iok && r < R; r++) {
            const qf_run_hp *h = &f->hp_host[r];
            ih[r] = *h;
            ih[r].gamma = h->gamma_int;
            ih[r].beta = 1.0f; /* target: 0 + 1 * intr + gamma_int * V_I(s'), terminal never set */
            ih[r].rnd_value = QF_RND_VALUE_SHARED;
            ih[r].double_q = 0;
            ih[r].n_heads = 1;
            ih[r].prior_scale = 0.0f;
            ih[r].mask_p = 1.0f;
            ih[r].demos = 0;
            ih[r].demo_ratio = ih[r].demo_weight = ih[r].demo_margin = 0.0f;
            ion[r] = h->bonus == QF_BONUS_RND && h->rnd_value == QF_RND_VALUE_SEPARATE;
        }
        for (size_t i = 0; iok && i < RB; i++) ones[i] = ~(qf_mask)0;
        iv->net.active = iv->active;
        /* Q_I's initial parameters: a stream of their own (QF_STREAM_IVAL_INIT) */
        qf_net in1 = iv->net;
        in1.active = NULL;
        iok = iok && b->upload(b, iv->hp, ih, sizeof(qf_run_hp) * R) == QF_OK &&
              b->upload(b, iv->active, ion, sizeof(int32_t) * R) == QF_OK &&
              b->upload(b, iv->ones_mask, ones, sizeof(qf_mask) * RB) == QF_OK &&
              b->net_init(b, &in1, f->keys, QF_STREAM_IVAL_INIT, iv->params) == QF_OK &&
              b->target_update(b, &in1, iv->hp, iv->params, iv->target, f->status, 1) == QF_OK;
        free(ih);
        free(ion);
        free(ones);
        if (!iok) FAIL("%s", b->err[0] ? b->err : "out of host memory");
    }
    if (f->has_rnd) { /* RND's target draws from the PRIOR stream, the predictor from INIT (head 1) */
        qf_net tn = f->rnd.net;
        if (b->net_init(b, &tn, f->keys, QF_STREAM_PRIOR, f->rnd.target) != QF_OK ||
            b->net_init(b, &tn, f->keys, QF_STREAM_RND_PRED, f->rnd.pred) != QF_OK)
            FAIL("%s", b->err);
    }

    /* the environments: every run's env params are cfg's (sweeps will vary them) */
    qf_env_params *ep = (qf_env_params *)malloc(sizeof(qf_env_params) * (size_t)f->R);
    if (!ep) FAIL("out of host memory");
    for (int32_t r = 0; r < f->R; r++) ep[r] = *p;
    int rc = qf_vecenv_create(&f->env, b, kind, f->R, f->E, ep, f->keys_host, err, err_len);
    free(ep);
    if (rc != QF_OK) goto fail;
    if (qf_fleet_fill_demos(f, err, err_len) != QF_OK) goto fail;

    /* the optimum for regret: V*(s0), undiscounted, hard max, where the environment is episodic
     * and tabular (deep_sea, bandit); chain episodes are time-limited slices of a continuing
     * MDP, so no regret is reported for them */
    f->v_star = NAN;
    if ((kind == QF_ENV_DEEP_SEA || kind == QF_ENV_BANDIT) && !cfg->timing_only) {
        qf_fleet_solve_v0(f); /* NaN when the solver cannot answer */
    }
    if (cfg->eval_every > 0 && eval_alloc(f, (int32_t)cfg->eval_episodes, err, err_len) != QF_OK) goto fail;
    /* CUDA graphs where the backend has them, unless cuda_graphs=off (config.c refuses on with
     * backend=cpu; backend=auto may still land on the CPU) */
    f->iter_t = f->iter_update = -1;
    if (cfg->cuda_graphs == QF_GRAPHS_ON && !b->iter_begin_capture)
        FAIL("cuda_graphs=on: the %s backend has no CUDA graphs (allowed: cuda_graphs=auto or off)", b->name);
    if (cfg->cuda_graphs != QF_GRAPHS_OFF && b->iter_begin_capture) {
        f->iter = (qf_iter *)b->alloc(b, sizeof(qf_iter));
        if (!f->iter) FAIL("%s", b->err);
        f->graphs = 1;
    }
    f->last_log_time = now_s();
    f->log_at_end = 1;
    return QF_OK;
fail:
    qf_fleet_destroy(f);
    return QF_ERR;
}

void qf_fleet_destroy(qf_fleet *f) {
    if (f->b) eval_free(f);
    for (int k = 0; k < 2; k++)
        if (f->graph[k]) f->b->iter_release(f->b, f->graph[k]);
    if (f->iter) f->b->release(f->b, f->iter);
    if (f->env.block) qf_vecenv_destroy(&f->env);
    if (f->block) f->b->release(f->b, f->block);
    free(f->hp_host);
    free(f->keys_host);
    free(f->diverged_at);
    free(f->regret);
    free(f->episodes);
    free(f->ep_prev);
    free(f->ep_host);
    free(f->ret_sum_host);
    free(f->len_sum_host);
    free(f->ft_host);
    free(f->solved_host);
    free(f->conv_host);
    free(f->cnt_host);
    memset(f, 0, sizeof *f);
}

/* Q(s, .) of every network for M inputs, with the run's prior added (randomized priors).
 * reuse_prior: qp already holds the prior's outputs for these inputs (the previous call's x). */
static int q_forward(qf_fleet *f, const qf_net *n, const float *params, int32_t M, const float *x,
                     const int32_t *xi, float *acts, float *q, float *scratch_acts, int reuse_prior) {
    qf_backend *b = f->b;
    if (b->net_forward(b, n, params, M, x, xi, acts, q) != QF_OK) return QF_ERR;
    if (!f->has_prior) return QF_OK;
    return (reuse_prior || b->net_forward(b, n, f->prior, M, x, xi, scratch_acts, f->qp) == QF_OK) &&
                   b->add_prior(b, n, f->hp, M, q, f->qp) == QF_OK
               ? QF_OK
               : QF_ERR;
}

/* RND: target and predictor outputs for M inputs (dense: normalized first; update: the inputs
 * also update the running observation statistics). */
static int rnd_forward(qf_fleet *f, int32_t M, const float *x, const int32_t *xi, const int32_t *actions,
                       int update) {
    qf_backend *b = f->b;
    qf_rnd *q = &f->rnd;
    const float *in = NULL;
    if (!f->embed) {
        if (b->rnd_input(b, q, M, x, update) != QF_OK) return QF_ERR;
        in = q->xn;
    }
    if (q->n_actions > 0) { /* (s, a) pairs: one-hot(a) after the observation, or the pair index */
        if (b->rnd_pair(b, q, M, xi, actions) != QF_OK) return QF_ERR;
        xi = q->xi;
    }
    return b->net_forward(b, &q->net, q->target, M, in, xi, q->acts_t, q->out_t) == QF_OK &&
                   b->net_forward(b, &q->net, q->pred, M, in, xi, q->acts_p, q->out_p) == QF_OK
               ? QF_OK
               : QF_ERR;
}

/* Optimistic acting on RND's (s, a) novelty (rnd_act): for each action a, target and predictor on
 * the pairs (s_e, a) of the E envs (dense: s_e normalized once, statistics not updated), and
 * beta x the scaled error added to Q(s_e, a) of every head of the runs with rnd_act. */
static int rnd_act(qf_fleet *f) {
    qf_backend *b = f->b;
    qf_rnd *q = &f->rnd;
    const int32_t E = f->E;
    const size_t RE = (size_t)f->R * (size_t)E;
    const float *in = NULL;
    if (!f->embed) {
        if (b->rnd_input(b, q, E, f->obs, 0) != QF_OK) return QF_ERR;
        in = q->xn;
    }
    for (int32_t a = 0; a < f->A; a++)
        if (b->rnd_pair(b, q, E, f->obs_idx, f->rnd_act_a + (size_t)a * RE) != QF_OK ||
            b->net_forward(b, &q->net, q->target, E, in, q->xi, q->acts_t, q->out_t) != QF_OK ||
            b->net_forward(b, &q->net, q->pred, E, in, q->xi, q->acts_p, q->out_p) != QF_OK ||
            b->rnd_act(b, q, &f->net, f->hp, E, a, f->q_act) != QF_OK)
            return QF_ERR;
    return QF_OK;
}

/* Q_I's update on the batch Q's update just sampled (rnd_value=separate): the operations of the
 * learner's specification for one head without prior (backend.h, learn), with the TD step's
 * reward 0 + intr (hp beta 1), discount gamma_int and no termination, then Adam and, on Q's
 * schedule (target_mode), the target network. Runs without a separate value skip it (net.active). */
static int learn_int_value(qf_fleet *f, int target_mode) {
    qf_backend *b = f->b;
    qf_int_value *iv = &f->ival;
    const qf_sample *s = &f->sample;
    qf_sample v = *s; /* the same transitions; no extrinsic reward, no episode end, every one counts */
    v.reward = iv->zero_reward;
    v.terminal = iv->zero_terminal;
    v.mask = iv->ones_mask;
    v.is_demo = NULL;
    const int32_t B = f->B;
    return b->net_forward(b, &iv->net, iv->target, B, s->next_obs, s->next_idx, iv->acts_tmp, iv->qt) == QF_OK &&
                   b->net_forward(b, &iv->net, iv->params, B, s->obs, s->idx, iv->acts, iv->q) == QF_OK &&
                   b->td(b, &iv->net, iv->hp, B, &v, iv->q, iv->qt, NULL, iv->dq, iv->loss, iv->qmean, iv->imean) ==
                       QF_OK &&
                   b->net_backward(b, &iv->net, iv->params, B, s->obs, s->idx, iv->acts, iv->dq, iv->grads,
                                   iv->work) == QF_OK &&
                   b->adam(b, &iv->net, iv->hp, iv->params, iv->grads, iv->adam_m, iv->adam_v, iv->adam_t, f->status,
                           iv->gnorm) == QF_OK &&
                   (!target_mode ||
                    b->target_update(b, &iv->net, iv->hp, iv->params, iv->target, f->status, target_mode == 2) == QF_OK)
               ? QF_OK
               : QF_ERR;
}

/* One learner update of every run: one backend operation (sample, targets, loss, backward, Adam,
 * RND's predictor, target networks; kernels/backend.h, learn). */
static int learn_once(qf_fleet *f, int64_t stored) {
    qf_backend *b = f->b;
    int target_mode = f->cfg.tau < 1.0 ? 1 : (f->n_updates + 1) % (uint32_t)f->cfg.target_every == 0 ? 2 : 0;
    /* recording (CUDA graphs): the target update is always enqueued, and decides on the device at
     * every replay whether it is due (backend.h, qf_iter) */
    if (f->capturing && target_mode == 0) target_mode = 2;
    const qf_learn_args a = {
        .net = &f->learn_net, /* with per-head batches, inputs per network */
        .hp = f->hp, .keys = f->keys, .replay = &f->replay, .stored = stored, .update = f->n_updates,
        .B = f->B, .s = &f->sample, .counts = f->any_bonus_count ? &f->counts : NULL,
        .params = f->params, .target = f->target, .prior = f->has_prior ? f->prior : NULL,
        .acts = f->acts, .acts_tmp = f->acts_tmp, .q = f->q, .qt = f->qt,
        .qo = f->cfg.double_q ? f->qo : NULL, .qp = f->qp, .dq = f->dq, .grads = f->grads, .work = f->work,
        .adam_m = f->adam_m, .adam_v = f->adam_v, .adam_t = f->adam_t, .status = f->status,
        .gnorm = f->gnorm, .loss = f->loss, .qmean = f->qmean, .imean = f->imean,
        .rnd = f->has_rnd ? &f->rnd : NULL, .target_mode = target_mode};
    if (b->learn(b, &a) != QF_OK) return QF_ERR;
    if (f->any_int_value && learn_int_value(f, target_mode) != QF_OK) return QF_ERR;
    f->n_updates++;
    return QF_OK;
}

/* Reduce the statistics since the last log point into points [R]. */
static int collect(qf_fleet *f, qf_log_point *pts) {
    qf_backend *b = f->b;
    const size_t N = (size_t)f->R * (size_t)f->E, G = (size_t)f->R * (size_t)f->net.K;
    float *lq = (float *)malloc(sizeof(float) * (3 * G + 2 * (size_t)f->R));
    int32_t *st = (int32_t *)malloc(sizeof(int32_t) * 2 * (size_t)f->R);
    if (!lq || !st) {
        free(lq);
        free(st);
        snprintf(b->err, sizeof b->err, "out of host memory");
        return QF_ERR;
    }
    int ok = b->download(b, f->ep_host, f->env.batch.episodes, sizeof(uint32_t) * N) == QF_OK &&
             b->download(b, f->ret_sum_host, f->env.batch.ret_sum, sizeof(float) * N) == QF_OK &&
             b->download(b, f->len_sum_host, f->env.batch.len_sum, sizeof(int32_t) * N) == QF_OK &&
             b->download(b, lq, f->loss, sizeof(float) * G) == QF_OK &&
             b->download(b, lq + G, f->qmean, sizeof(float) * G) == QF_OK &&
             b->download(b, lq + 2 * G, f->gnorm, sizeof(float) * G) == QF_OK &&
             b->download(b, st, f->status, sizeof(int32_t) * (size_t)f->R) == QF_OK &&
             b->download(b, st + f->R, f->adam_t, sizeof(int32_t) * (size_t)f->R) == QF_OK &&
             b->download(b, lq + 3 * G, f->imean, sizeof(float) * (size_t)f->R) == QF_OK &&
             b->download(b, lq + 3 * G + f->R, f->qdiv, sizeof(float) * (size_t)f->R) == QF_OK &&
             b->fill0(b, f->qdiv, sizeof(float) * (size_t)f->R) == QF_OK &&
             b->download(b, f->ft_host, f->env.batch.first_treasure, sizeof(uint32_t) * N) == QF_OK &&
             b->download(b, f->solved_host, f->env.batch.solved_at, sizeof(uint32_t) * N) == QF_OK &&
             b->download(b, f->conv_host, f->env.batch.converged_at, sizeof(uint32_t) * N) == QF_OK &&
             (!f->cnt_host || b->download(b, f->cnt_host, f->counts.cnt,
                                          sizeof(uint32_t) * (size_t)f->R * (size_t)f->counts.S) == QF_OK) &&
             b->fill0(b, f->env.batch.ret_sum, sizeof(float) * N) == QF_OK &&
             b->fill0(b, f->env.batch.len_sum, sizeof(int32_t) * N) == QF_OK;
    if (ok) {
        const double t_now = now_s();
        const double sps = (double)(f->t - f->last_log_step) * (double)N / (t_now - f->last_log_time + 1e-12);
        for (int32_t r = 0; r < f->R; r++) {
            int64_t neps = 0, ft = 0, sv = 0, cv = 0;
            double ret = 0.0, len = 0.0;
            for (int32_t e = 0; e < f->E; e++) {
                const size_t i = (size_t)r * f->E + e;
                /* an env's k-th episode is about the run's ((k - 1) * E + 1)-th (exact for E = 1) */
                const int64_t fte = f->ft_host[i] ? ((int64_t)f->ft_host[i] - 1) * f->E + 1 : 0;
                const int64_t sve = f->solved_host[i] ? ((int64_t)f->solved_host[i] - 1) * f->E + 1 : 0;
                if (fte && (!ft || fte < ft)) ft = fte;
                const int64_t cve = f->conv_host[i] ? ((int64_t)f->conv_host[i] - 1) * f->E + 1 : 0;
                if (sve && (!sv || sve < sv)) sv = sve;
                if (cve && (!cv || cve < cv)) cv = cve;
                neps += (int64_t)(f->ep_host[i] - f->ep_prev[i]);
                f->ep_prev[i] = f->ep_host[i];
                ret += f->ret_sum_host[i];
                len += f->len_sum_host[i];
            }
            f->episodes[r] += neps;
            if (!isnan(f->v_star)) f->regret[r] += (double)neps * f->v_star - ret;
            if (st[r] != QF_RUN_OK && f->diverged_at[r] < 0) f->diverged_at[r] = st[f->R + r];
            qf_log_point *pt = &pts[r];
            pt->step = f->t;
            pt->env_steps = f->t * f->E;
            pt->episodes = f->episodes[r];
            pt->new_episodes = neps;
            pt->episodic_return = neps ? ret / (double)neps : NAN;
            pt->episodic_length = neps ? len / (double)neps : NAN;
            const int learned = f->n_updates > 0;
            pt->td_loss = learned ? lq[(size_t)r * f->net.K] : NAN;
            pt->q_values = learned ? lq[G + (size_t)r * f->net.K] : NAN;
            pt->grad_norm = learned ? lq[2 * G + (size_t)r * f->net.K] : NAN;
            pt->regret = isnan(f->v_star) ? NAN : f->regret[r];
            pt->sps = sps;
            pt->intrinsic = learned && f->hp_host[r].bonus != QF_BONUS_NONE ? lq[3 * G + r] : NAN;
            pt->q_diversity = f->hp_host[r].explore == QF_EXPLORE_BOOTSTRAP && f->t > f->last_log_step
                                  ? (double)lq[3 * G + f->R + r] / (double)(f->t - f->last_log_step)
                                  : NAN;
            pt->first_treasure = ft;
            pt->solved_at = sv;
            pt->converged_at = cv;
            pt->distinct = -1;
            if (f->cnt_host) {
                int64_t d = 0;
                for (int32_t j = 0; j < f->counts.S; j++) d += f->cnt_host[(size_t)r * f->counts.S + j] != 0;
                pt->distinct = d;
            }
            pt->status = st[r];
            pt->eval_return = NAN; /* qf_fleet_train fills it at an evaluation */
        }
        f->last_log_time = t_now;
        f->last_log_step = f->t;
    }
    free(lq);
    free(st);
    return ok ? QF_OK : QF_ERR;
}

/* ---- greedy evaluation ------------------------------------------------------------------------ */

/* Carve the evaluation block for E envs per run (base NULL: count only). */
static size_t eval_carve(qf_fleet *f, int32_t E, char *base) {
    qf_fleet_eval *ev = &f->eval;
    const size_t R = (size_t)f->R, G = R * (size_t)f->net.K, D = (size_t)f->D, A = (size_t)f->A;
    const size_t H = (size_t)f->net.H, N = R * (size_t)E;
    size_t off = 0;
#define TAKE(ptr, type, count)                                                                     \
    do {                                                                                           \
        if (base) ptr = (type *)(base + off);                                                      \
        off = align_up(off + sizeof(type) * (size_t)(count));                                      \
    } while (0)
    TAKE(ev->hp, qf_run_hp, R);
    if (f->embed) TAKE(ev->obs_idx, int32_t, N);
    else TAKE(ev->obs, float, N * D);
    TAKE(ev->q, float, G * E * A);
    TAKE(ev->acts, float, G * E * (H ? H : 1));
    if (f->has_prior) TAKE(ev->qp, float, G * E * A);
    TAKE(ev->heads, int32_t, N);
    TAKE(ev->actions, int32_t, N);
#undef TAKE
    return off;
}

static void eval_free(qf_fleet *f) {
    qf_fleet_eval *ev = &f->eval;
    if (ev->env.block) qf_vecenv_destroy(&ev->env);
    if (ev->block) f->b->release(f->b, ev->block);
    free(ev->ep_host);
    free(ev->ret_host);
    free(ev->first);
    memset(ev, 0, sizeof *ev);
}

/* A run's hyperparameters made greedy: argmax of Q (of the heads' mean for bootstrap ensembles,
 * through act=ucb at ucb_c = 0), no epsilon, no Boltzmann sampling, no count bonus in acting. */
static void greedy_hp(qf_run_hp *h) {
    if (h->explore == QF_EXPLORE_BOOTSTRAP) {
        h->act_mode = QF_ACT_UCB;
        h->ucb_c = 0.0f;
    } else {
        h->explore = QF_EXPLORE_EPSILON;
    }
    h->eps_start = h->eps_end = 0.0f;
    h->eps_steps = 0;
    h->count_act = 0;
}

/* The evaluation's batch and buffers for E envs per run (kept while E stays the same). */
static int eval_alloc(qf_fleet *f, int32_t E, char *err, size_t err_len) {
    qf_backend *b = f->b;
    qf_fleet_eval *ev = &f->eval;
    if (ev->E == E) return QF_OK;
    eval_free(f);
    const size_t bytes = eval_carve(f, E, NULL), N = (size_t)f->R * (size_t)E;
    qf_run_hp *hp = (qf_run_hp *)malloc(sizeof(qf_run_hp) * (size_t)f->R);
    qf_env_params *ep = (qf_env_params *)malloc(sizeof(qf_env_params) * (size_t)f->R);
    ev->ep_host = (uint32_t *)malloc(sizeof(uint32_t) * N);
    ev->ret_host = (float *)malloc(sizeof(float) * N);
    ev->first = (double *)malloc(sizeof(double) * N);
    int rc = QF_ERR;
    if (!hp || !ep || !ev->ep_host || !ev->ret_host || !ev->first) {
        snprintf(err, err_len, "out of host memory for the greedy evaluation");
        goto out;
    }
    if (!(ev->block = b->alloc(b, bytes))) {
        snprintf(err, err_len, "greedy evaluation (%d envs per run): %s", (int)E, b->err);
        goto out;
    }
    eval_carve(f, E, (char *)ev->block);
    for (int32_t r = 0; r < f->R; r++) {
        hp[r] = f->hp_host[r];
        greedy_hp(&hp[r]);
        ep[r] = f->cfg.env_params; /* every run's env params are cfg's, as in training */
    }
    if (b->upload(b, ev->hp, hp, sizeof(qf_run_hp) * (size_t)f->R) != QF_OK) {
        snprintf(err, err_len, "%s", b->err);
        goto out;
    }
    /* the same keys as training: DeepSea's per-run mapping and the bandit arms are the run's MDP */
    if (qf_vecenv_create(&ev->env, b, f->cfg.env, f->R, E, ep, f->keys_host, err, err_len) != QF_OK) goto out;
    ev->E = E;
    rc = QF_OK;
out:
    free(hp);
    free(ep);
    if (rc != QF_OK) eval_free(f);
    return rc;
}

int qf_fleet_evaluate(qf_fleet *f, int32_t episodes, double *ret, char *err, size_t err_len) {
    qf_backend *b = f->b;
    if (episodes < 1) {
        snprintf(err, err_len, "greedy evaluation: episodes=%d (allowed: >= 1)", (int)episodes);
        return QF_ERR;
    }
    if (eval_alloc(f, episodes, err, err_len) != QF_OK) return QF_ERR;
    qf_fleet_eval *ev = &f->eval;
    const int32_t E = ev->E;
    const size_t N = (size_t)f->R * (size_t)E;
    const qf_env_params *p = &f->cfg.env_params;
    /* every episode ends within the env's time limit (DeepSea: N steps, bandit: 1) */
    int64_t T = qf_env_episode_steps(f->cfg.env, p);
    if (T <= 0) T = qf_env_horizon(f->cfg.env, p);
    if (T <= 0) {
        snprintf(err, err_len, "greedy evaluation: env %s has no time limit", qf_env_spec_of(f->cfg.env)->name);
        return QF_ERR;
    }
    /* env counters 2^31 + c .. 2^31 + c + E - 1, c = (t * E) mod (2^31 - E): above every training env's */
    const uint64_t span = 0x80000000ull - (uint64_t)E;
    ev->env.batch.rng_env0 = 0x80000000u + (uint32_t)(((uint64_t)f->t * (uint64_t)E) % span);
    for (size_t i = 0; i < N; i++) ev->first[i] = NAN;
    qf_env_batch *bt = &ev->env.batch;
    int ok = b->env_reset(b, bt) == QF_OK;
    size_t left = N;
    for (int64_t s = 0; ok && s < T && left > 0; s++) {
        const uint32_t t = (uint32_t)s;
        /* act: greedy on Q(s, .) with the prior; the act operation's random draws go unused */
        ok = b->env_observe(b, bt, ev->obs, ev->obs_idx) == QF_OK &&
             b->net_forward(b, &f->net, f->params, E, ev->obs, ev->obs_idx, ev->acts, ev->q) == QF_OK &&
             (!f->has_prior ||
              (b->net_forward(b, &f->net, f->prior, E, ev->obs, ev->obs_idx, ev->acts, ev->qp) == QF_OK &&
               b->add_prior(b, &f->net, ev->hp, E, ev->q, ev->qp) == QF_OK)) &&
             b->act(b, &f->net, ev->hp, E, ev->q, f->keys, t, bt->flags, ev->heads, ev->actions) == QF_OK &&
             b->env_step(b, bt, ev->actions, t, NULL, NULL) == QF_OK &&
             b->download(b, ev->ep_host, bt->episodes, sizeof(uint32_t) * N) == QF_OK &&
             b->download(b, ev->ret_host, bt->last_return, sizeof(float) * N) == QF_OK;
        for (size_t i = 0; ok && i < N; i++)
            if (isnan(ev->first[i]) && ev->ep_host[i] >= 1) {
                ev->first[i] = (double)ev->ret_host[i]; /* the env's first episode: the one evaluated */
                left--;
            }
    }
    if (!ok) {
        snprintf(err, err_len, "greedy evaluation: %s", b->err);
        return QF_ERR;
    }
    for (int32_t r = 0; r < f->R; r++) {
        double sum = 0.0;
        for (int32_t e = 0; e < E; e++) sum += ev->first[(size_t)r * E + e]; /* NaN if one never ended */
        ret[r] = sum / (double)E;
    }
    return QF_OK;
}

/* The evaluation of a log point: eval_return of every run; the SPS clock skips its time. */
static int eval_into(qf_fleet *f, qf_log_point *pts) {
    double *ret = (double *)malloc(sizeof(double) * (size_t)f->R);
    char msg[512];
    int rc = ret ? qf_fleet_evaluate(f, (int32_t)f->cfg.eval_episodes, ret, msg, sizeof msg) : QF_ERR;
    if (!ret) snprintf(msg, sizeof msg, "out of host memory");
    if (rc == QF_OK)
        for (int32_t r = 0; r < f->R; r++) pts[r].eval_return = ret[r];
    else
        snprintf(f->b->err, sizeof f->b->err, "%s", msg);
    free(ret);
    f->last_log_time = now_s();
    return rc;
}

/* One training iteration at env step f->t: act, step, bonus, store, then (learn) cfg.updates learner
 * updates. The host's t moves on in the caller; learn_once counts the updates. While f->capturing,
 * the device counters move on too (the recording then reads them at every replay). */
static int iteration(qf_fleet *f, int learn) {
    qf_backend *b = f->b;
    const qf_net *n = &f->net;
    const int32_t E = f->E;
    const uint32_t t = (uint32_t)f->t;
    const int64_t ptr = (f->t * E) % f->C;
    /* act: Q(s, .) of every env's network, then each run's strategy */
    QF_RANGE_PUSH("act");
    int ok = b->env_observe(b, &f->env.batch, f->obs, f->obs_idx) == QF_OK &&
             q_forward(f, &f->net, f->params, E, f->obs, f->obs_idx, f->acts_act, f->q_act, f->acts_act, 0) == QF_OK &&
             (!f->any_count_act || b->count_act(b, &f->counts, n, f->hp, E, f->obs, f->obs_idx, f->q_act) == QF_OK) &&
             (!f->any_rnd_act || rnd_act(f) == QF_OK) &&
             (!f->any_int_value || /* rnd_value=separate: act on Q_E + beta Q_I */
              (b->net_forward(b, &f->ival.net, f->ival.params, E, f->obs, f->obs_idx, f->ival.acts_act,
                              f->ival.q_act) == QF_OK &&
               b->add_int_q(b, n, f->hp, E, f->q_act, f->ival.q_act) == QF_OK)) &&
             b->act(b, n, f->hp, E, f->q_act, f->keys, t, f->env.batch.flags, f->heads, f->actions) == QF_OK &&
             (!f->any_bootstrap || b->q_diversity(b, n, f->hp, E, f->q_act, f->qdiv) == QF_OK);
    QF_RANGE_POP();
    /* step with auto-reset; s' before the reset goes to the replay */
    QF_RANGE_PUSH("step");
    ok = ok && b->env_step(b, &f->env.batch, f->actions, t, f->next_obs, f->next_idx) == QF_OK;
    QF_RANGE_POP();
    QF_RANGE_PUSH("bonus");
    ok = ok && (f->counts.mode == QF_COUNT_OFF ||
                b->count_update(b, &f->counts, E, f->next_obs, f->next_idx) == QF_OK);
    ok = ok && (!f->any_count_act ||
                b->count_sa_update(b, &f->counts, E, f->obs, f->obs_idx, f->actions) == QF_OK);
    /* RND's bonus of each transition, when stored: the novelty of s' (rnd_input=state) or of the pair
     * (s, a) it left from (state_action); either way the observation statistics take the inputs' states */
    const int sa = f->has_rnd && f->rnd.n_actions > 0;
    ok = ok && (!f->has_rnd || (rnd_forward(f, E, sa ? f->obs : f->next_obs, sa ? f->obs_idx : f->next_idx,
                                            f->actions, 1) == QF_OK &&
                                b->rnd_reward(b, &f->rnd, f->hp, E, f->env.batch.flags, f->intr_env) == QF_OK));
    QF_RANGE_POP();
    QF_RANGE_PUSH("store");
    ok = ok && b->replay_store(b, &f->replay, f->hp, f->keys, E, ptr, t, f->obs, f->obs_idx, f->actions,
                               f->env.batch.reward, f->env.batch.flags, f->next_obs, f->next_idx,
                               f->has_rnd ? f->intr_env : NULL) == QF_OK;
    /* the fixed priors' outputs on s (qp, from acting) and s' (one forward on the E stored states),
     * kept with the transitions: the learner then adds them instead of two prior forwards on B
     * sampled states per update (docs/design-notes.md) */
    ok = ok && (!f->replay.prior_obs ||
                (b->net_forward(b, n, f->prior, E, f->next_obs, f->next_idx, f->acts_act, f->qp_next) == QF_OK &&
                 b->replay_store_prior(b, &f->replay, E, ptr, f->qp, f->qp_next) == QF_OK));
    QF_RANGE_POP();
    if (!ok) return QF_ERR;
    const int64_t total = (f->t + 1) * E, stored = total < f->C ? total : f->C;
    if (learn) {
        QF_RANGE_PUSH("learn");
        for (int64_t u = 0; u < f->cfg.updates && ok; u++)
            ok = learn_once(f, stored) == QF_OK && (!f->capturing || b->iter_advance(b, f->iter, 0, 1) == QF_OK);
        QF_RANGE_POP();
    }
    return ok && (!f->capturing || b->iter_advance(b, f->iter, 1, 0) == QF_OK) ? QF_OK : QF_ERR;
}

/* The same iteration as a replay of its recording (recorded first when this kind has none yet):
 * one launch, and the host's counters move on as iteration() would move them. */
static int iteration_replayed(qf_fleet *f, int learn) {
    qf_backend *b = f->b;
    if (f->iter_t != f->t || f->iter_update != (int64_t)f->n_updates) { /* first use, or a restore */
        const qf_iter h = {(uint32_t)f->t, f->n_updates, f->E, (int32_t)f->cfg.target_every, f->cfg.tau < 1.0, 0};
        if (b->upload(b, f->iter, &h, sizeof h) != QF_OK) return QF_ERR;
    }
    if (!f->graph[learn]) {
        const uint32_t updates0 = f->n_updates;
        const unsigned long long launches0 = b->n_launch;
        if (b->iter_begin_capture(b, f->iter) != QF_OK) return QF_ERR;
        f->capturing = 1;
        const int rc = iteration(f, learn);
        f->capturing = 0;
        f->graph_launches[learn] = b->n_launch - launches0;
        b->n_launch = launches0; /* recorded, not launched: the replays count */
        f->n_updates = updates0;  /* nothing ran */
        if (rc != QF_OK) {
            char why[sizeof b->err];
            snprintf(why, sizeof why, "%s", b->err);
            b->iter_end_capture(b, NULL);
            snprintf(b->err, sizeof b->err, "%s", why);
            return QF_ERR;
        }
        if (b->iter_end_capture(b, &f->graph[learn]) != QF_OK) return QF_ERR;
    }
    if (b->iter_replay(b, f->graph[learn]) != QF_OK) return QF_ERR;
    if (learn) f->n_updates += (uint32_t)f->cfg.updates;
    f->iter_t = f->t + 1;
    f->iter_update = f->n_updates;
    return QF_OK;
}

/* RND's observation statistics warmed up before training (rnd_warmup; Burda et al. 2018 initialize
 * the observation normalization from a random agent's steps): rnd_warmup steps of E envs per run
 * acting uniformly at random (epsilon-greedy at epsilon 1), in envs of their own (the evaluation's
 * batch), whose next observations update the statistics as training's do. Nothing is stored or
 * learned; the training envs, step counter and schedules are untouched. The random draws use
 * counters above training's (env counters as a greedy evaluation at t = 0, ACT counters from 2^31),
 * so they never repeat a training draw. Dense observations only (the key table refuses the rest). */
static int rnd_warmup(qf_fleet *f, char *err, size_t err_len) {
    qf_backend *b = f->b;
    const int32_t E = f->E;
    if (eval_alloc(f, E, err, err_len) != QF_OK) return QF_ERR;
    qf_fleet_eval *ev = &f->eval;
    qf_run_hp *hp = (qf_run_hp *)malloc(sizeof(qf_run_hp) * (size_t)f->R);
    float *q0 = (float *)calloc((size_t)f->R * (size_t)f->net.K * (size_t)E * (size_t)f->A, sizeof(float));
    int ok = hp && q0;
    if (!ok) snprintf(b->err, sizeof b->err, "out of host memory for rnd_warmup");
    for (int32_t r = 0; ok && r < f->R; r++) {
        hp[r] = f->hp_host[r];
        hp[r].explore = QF_EXPLORE_EPSILON;
        hp[r].alpha = 0.0f;
        hp[r].eps_start = hp[r].eps_end = 1.0f;
        hp[r].eps_steps = 0;
    }
    qf_env_batch *bt = &ev->env.batch;
    bt->rng_env0 = 0x80000000u;
    ok = ok && b->upload(b, ev->hp, hp, sizeof(qf_run_hp) * (size_t)f->R) == QF_OK &&
         b->upload(b, ev->q, q0, sizeof(float) * (size_t)f->R * (size_t)f->net.K * (size_t)E * (size_t)f->A) == QF_OK &&
         b->env_reset(b, bt) == QF_OK;
    for (int64_t s = 0; ok && s < f->cfg.rnd_warmup; s++) {
        const uint32_t t = 0x80000000u + (uint32_t)s;
        ok = b->act(b, &f->net, ev->hp, E, ev->q, f->keys, t, bt->flags, ev->heads, ev->actions) == QF_OK &&
             b->env_step(b, bt, ev->actions, t, f->next_obs, f->next_idx) == QF_OK &&
             b->rnd_input(b, &f->rnd, E, f->next_obs, 1) == QF_OK;
    }
    if (!ok) snprintf(err, err_len, "rnd_warmup: %s", b->err);
    free(hp);
    free(q0);
    eval_free(f); /* the next evaluation allocates its own, with greedy settings */
    return ok ? QF_OK : QF_ERR;
}

int qf_fleet_train(qf_fleet *f, int64_t steps, qf_log_fn log, void *ctx, char *err, size_t err_len) {
    qf_backend *b = f->b;
    const int32_t E = f->E;
    qf_log_point *pts = (qf_log_point *)calloc((size_t)f->R, sizeof(qf_log_point));
    if (!pts) {
        snprintf(err, err_len, "out of host memory");
        return QF_ERR;
    }
    int rc = QF_OK;
    char range[96]; /* one NVTX range per fleet (the tool copies the text) */
    snprintf(range, sizeof range, "fleet: %d runs x %d envs, %d heads", (int)f->R, (int)E, (int)f->net.K);
    (void)range;
    QF_RANGE_PUSH(range);
    if (steps > 0 && f->t == 0 && f->cfg.rnd_warmup > 0 && f->has_rnd && !f->embed) {
        QF_RANGE_PUSH("rnd_warmup");
        rc = rnd_warmup(f, err, err_len);
        QF_RANGE_POP();
        if (rc != QF_OK) {
            QF_RANGE_POP();
            free(pts);
            return rc;
        }
    }
    for (int64_t s = 0; s < steps && rc == QF_OK; s++) {
        if (f->stop && *f->stop) break; /* a signal asked to stop: between two whole steps */
        /* learning after learning_starts transitions, every train_every steps (counted from 0) */
        const int64_t total = (f->t + 1) * E;
        const int learn = total >= f->cfg.learning_starts && f->t % f->cfg.train_every == 0;
        rc = f->graphs ? iteration_replayed(f, learn) : iteration(f, learn);
        if (rc != QF_OK) break;
        f->t++;
        if (f->t % f->cfg.log_every == 0 || (s == steps - 1 && f->log_at_end)) {
            QF_RANGE_PUSH("log"); /* the only place the host waits for the device */
            const int64_t prev_log = f->last_log_step;
            rc = collect(f, pts);
            /* greedy evaluation at the first log point at or after each multiple of eval_every (a
             * multiple in (previous log point, t]) and at the last log point of the call */
            const int64_t ev = f->cfg.eval_every;
            if (rc == QF_OK && ev > 0 && (f->t / ev > prev_log / ev || (s == steps - 1 && f->log_at_end))) {
                QF_RANGE_PUSH("eval");
                rc = eval_into(f, pts);
                QF_RANGE_POP();
            }
            if (rc == QF_OK && log) log(ctx, f, pts);
            QF_RANGE_POP();
        }
    }
    QF_RANGE_POP();
    if (rc != QF_OK) snprintf(err, err_len, "%s", b->err);
    free(pts);
    return rc;
}

int qf_fleet_get_params(qf_fleet *f, float *params) {
    return f->b->download(f->b, params, f->params, sizeof(float) * (size_t)f->R * f->net.K * (size_t)f->net.P);
}

int qf_fleet_set_params(qf_fleet *f, const float *params) {
    return f->b->upload(f->b, f->params, params, sizeof(float) * (size_t)f->R * f->net.K * (size_t)f->net.P);
}

double qf_recent_return(const qf_log_point *pts, int64_t n_logs, int32_t R, int32_t r, int64_t *count) {
    double sum = 0.0;
    int64_t n = 0;
    for (int64_t i = n_logs - 1; i >= 0 && n < 20; i--) {
        const qf_log_point *p = &pts[i * R + r];
        if (p->new_episodes) {
            sum += p->episodic_return * (double)p->new_episodes;
            n += p->new_episodes;
        }
    }
    *count = n;
    return n ? sum / (double)n : NAN;
}

/* Snapshot layout: the learner block, the env block, then the host scalars and arrays (in the order
 * of PUT below; qf_fleet_check_snapshot reads them at the same offsets: change both together). */
size_t qf_fleet_snapshot_bytes(const qf_fleet *f) {
    const size_t R = (size_t)f->R, N = R * (size_t)f->E;
    return f->bytes + f->env.bytes + 2 * sizeof(int64_t) + sizeof(uint32_t) + sizeof(double) +
           R * (sizeof(int32_t) + sizeof(double) + sizeof(int64_t)) + N * sizeof(uint32_t);
}

#define PUT(src, n)                                                                                \
    do {                                                                                           \
        if (buf) memcpy(buf + off, (src), (n));                                                    \
        off += (n);                                                                                \
    } while (0)
#define GET(dst, n)                                                                                \
    do {                                                                                           \
        memcpy((dst), buf + off, (n));                                                             \
        off += (n);                                                                                \
    } while (0)

int qf_fleet_snapshot(qf_fleet *f, void *out) {
    char *buf = (char *)out;
    size_t off = 0;
    qf_backend *b = f->b;
    if (b->sync(b) != QF_OK || b->download(b, buf, f->block, f->bytes) != QF_OK ||
        b->download(b, buf + f->bytes, f->env.block, f->env.bytes) != QF_OK)
        return QF_ERR;
    off = f->bytes + f->env.bytes;
    const size_t R = (size_t)f->R, N = R * (size_t)f->E;
    PUT(&f->t, sizeof f->t);
    PUT(&f->last_log_step, sizeof f->last_log_step);
    PUT(&f->n_updates, sizeof f->n_updates);
    PUT(&f->v_star, sizeof f->v_star);
    PUT(f->diverged_at, R * sizeof(int32_t));
    PUT(f->regret, R * sizeof(double));
    PUT(f->episodes, R * sizeof(int64_t));
    PUT(f->ep_prev, N * sizeof(uint32_t));
    return QF_OK;
}

int qf_fleet_restore(qf_fleet *f, const void *in) {
    const char *buf = (const char *)in;
    size_t off = 0;
    qf_backend *b = f->b;
    char why[512];
    /* every field is checked before any byte is uploaded; the step budget is the caller's to check
     * (qf_fleet_check_snapshot with the plan's steps): the fleet does not know it */
    if (qf_fleet_check_snapshot(f, in, INT64_MAX, why, sizeof why) != QF_OK) {
        snprintf(b->err, sizeof b->err, "%s", why);
        return QF_ERR;
    }
    if (b->upload(b, f->block, buf, f->bytes) != QF_OK || b->upload(b, f->env.block, buf + f->bytes, f->env.bytes) != QF_OK)
        return QF_ERR;
    off = f->bytes + f->env.bytes;
    const size_t R = (size_t)f->R, N = R * (size_t)f->E;
    GET(&f->t, sizeof f->t);
    GET(&f->last_log_step, sizeof f->last_log_step);
    GET(&f->n_updates, sizeof f->n_updates);
    GET(&f->v_star, sizeof f->v_star);
    GET(f->diverged_at, R * sizeof(int32_t));
    GET(f->regret, R * sizeof(double));
    GET(f->episodes, R * sizeof(int64_t));
    GET(f->ep_prev, N * sizeof(uint32_t));
    f->last_log_time = now_s();
    return b->sync(b);
}
#undef PUT
#undef GET

/* ---- checkpoint validation ---------------------------------------------------------------- */
/* A snapshot is trusted only after this: the checksum of a file proves no more than that its writer
 * meant it, so every field that training reads as an index, a loop bound or a counter is checked
 * against what the dynamics and the loop above can produce, and every field fixed by the
 * configuration must equal this fleet's own bytes. Reads go through memcpy: the snapshot may sit
 * at any alignment. */

#define SNAP_FAIL(...)                                                                             \
    do {                                                                                           \
        int n_ = snprintf(err, err_len, "snapshot: ");                                             \
        if (n_ > 0 && (size_t)n_ < err_len) snprintf(err + n_, err_len - (size_t)n_, __VA_ARGS__); \
        goto fail;                                                                                 \
    } while (0)

static int32_t snap_i32(const char *s, size_t off, size_t i) {
    int32_t v;
    memcpy(&v, s + off + 4 * i, 4);
    return v;
}
static uint32_t snap_u32(const char *s, size_t off, size_t i) {
    uint32_t v;
    memcpy(&v, s + off + 4 * i, 4);
    return v;
}
static int64_t snap_i64(const char *s, size_t off, size_t i) {
    int64_t v;
    memcpy(&v, s + off + 8 * i, 8);
    return v;
}
static uint64_t snap_u64(const char *s, size_t off, size_t i) {
    uint64_t v;
    memcpy(&v, s + off + 8 * i, 8);
    return v;
}
static double snap_f64(const char *s, size_t off, size_t i) {
    double v;
    memcpy(&v, s + off + 8 * i, 8);
    return v;
}
static float snap_f32(const char *s, size_t off, size_t i) {
    float v;
    memcpy(&v, s + off + 4 * i, 4);
    return v;
}

/* Compare a region fixed by the configuration (device pointer dev, `bytes` long, at offset off of
 * the snapshot) with the fleet's own; per: bytes per run (the message names the run). Returns 0
 * when equal, 1 when not (message in err), -1 when the download failed. */
static int snap_fixed(qf_fleet *f, const char *s, const void *dev, size_t off, size_t bytes, size_t per,
                      const char *name, char *err, size_t err_len) {
    if (!bytes) return 0;
    char *mine = (char *)malloc(bytes);
    if (!mine || f->b->download(f->b, mine, dev, bytes) != QF_OK) {
        snprintf(err, err_len, "snapshot: reading the fleet's %s: %s", name, mine ? f->b->err : "out of host memory");
        free(mine);
        return -1;
    }
    int rc = 0;
    if (memcmp(mine, s + off, bytes) != 0) {
        size_t i = 0;
        while (mine[i] == s[off + i]) i++;
        snprintf(err, err_len,
                 "snapshot: %s of run %zu (byte %zu) differs from this fleet's, which the configuration fixes: "
                 "a checkpoint of another experiment, build or machine, or a forged one",
                 name, i / per, i % per);
        rc = 1;
    }
    free(mine);
    return rc;
}

/* Updates the loop above has made after t steps: cfg.updates at every step s in [1, t] with
 * s*E >= learning_starts and (s - 1) % train_every == 0 (mod 2^32, as n_updates counts). */
static uint32_t expected_updates(const qf_fleet *f, int64_t t) {
    const int64_t E = f->E, te = f->cfg.train_every;
    const int64_t ls = f->cfg.learning_starts;
    int64_t s0 = ls <= E ? 1 : (ls + E - 1) / E; /* first step whose s*E >= learning_starts */
    if (s0 < 1) s0 = 1;
    if (t < s0 || te < 1) return 0;
    const int64_t a = s0 - 1, bnd = t - 1; /* k = s - 1 in [a, bnd], multiples of te */
    const uint64_t n = (uint64_t)(bnd / te - (a + te - 1) / te + 1);
    return (uint32_t)(n * (uint64_t)f->cfg.updates);
}

int qf_fleet_check_snapshot(qf_fleet *f, const void *snap, int64_t max_steps, char *err, size_t err_len) {
    const char *s = (const char *)snap;
    const int32_t R = f->R, E = f->E, A = f->A;
    const int64_t N = (int64_t)R * E, G = (int64_t)R * f->net.K, P = f->net.P;
    const char *blk = (const char *)f->block, *eblk = (const char *)f->env.block;
#define LOFF(ptr) ((size_t)((const char *)(ptr) - blk))
#define EOFF(ptr) (f->bytes + (size_t)((const char *)(ptr) - eblk))
    int32_t *active = NULL;
    qf_env_params *ep = NULL;
    int fx;

    /* ---- (a) what the configuration fixes: this fleet's bytes ---- */
#define FIXED(dev, off, bytes, per, name)                                                          \
    do {                                                                                           \
        if ((fx = snap_fixed(f, s, (dev), (off), (bytes), (per), (name), err, err_len)) != 0) goto fail; \
    } while (0)
    FIXED(f->hp, LOFF(f->hp), sizeof(qf_run_hp) * (size_t)R, sizeof(qf_run_hp), "hp (hyperparameters)");
    FIXED(f->keys, LOFF(f->keys), sizeof(uint32_t) * 2 * (size_t)R, 2 * sizeof(uint32_t), "keys");
    if (f->replay.demo.C > 0) { /* the demo part: rebuilt from the configuration when the fleet was created */
        const qf_demo_part *dp = &f->replay.demo;
        const size_t Cd = (size_t)dp->C, per_o = f->embed ? sizeof(int32_t) * Cd : sizeof(float) * Cd * (size_t)f->D;
        if (f->embed) {
            FIXED(dp->idx, LOFF(dp->idx), per_o * (size_t)R, per_o, "replay.demo.idx (demo part)");
            FIXED(dp->next_idx, LOFF(dp->next_idx), per_o * (size_t)R, per_o, "replay.demo.next_idx (demo part)");
        } else {
            FIXED(dp->obs, LOFF(dp->obs), per_o * (size_t)R, per_o, "replay.demo.obs (demo part)");
            FIXED(dp->next_obs, LOFF(dp->next_obs), per_o * (size_t)R, per_o, "replay.demo.next_obs (demo part)");
        }
        FIXED(dp->action, LOFF(dp->action), sizeof(int32_t) * Cd * (size_t)R, sizeof(int32_t) * Cd,
              "replay.demo.action (demo part)");
        FIXED(dp->reward, LOFF(dp->reward), sizeof(float) * Cd * (size_t)R, sizeof(float) * Cd,
              "replay.demo.reward (demo part)");
        FIXED(dp->terminal, LOFF(dp->terminal), Cd * (size_t)R, Cd, "replay.demo.terminal (demo part)");
        FIXED(dp->size, LOFF(dp->size), sizeof(int32_t) * (size_t)R, sizeof(int32_t), "replay.demo.size (demo part)");
        FIXED(dp->draws, LOFF(dp->draws), sizeof(int32_t) * (size_t)R, sizeof(int32_t), "replay.demo.draws (demo part)");
    }
    FIXED(f->active, LOFF(f->active), sizeof(int32_t) * (size_t)R, sizeof(int32_t), "active (heads in use)");
    FIXED(f->active + R, LOFF(f->active + R), sizeof(int32_t) * (size_t)R, sizeof(int32_t), "active (RND on)");
    if (f->has_prior)
        FIXED(f->prior, LOFF(f->prior), sizeof(float) * (size_t)(G * P), sizeof(float) * (size_t)(f->net.K * P),
              "prior (randomized prior networks)");
    if (f->counts.mode == QF_COUNT_SIMHASH) {
        const size_t per = sizeof(float) * (size_t)f->counts.bits * (size_t)f->D;
        FIXED(f->counts.proj, LOFF(f->counts.proj), per * (size_t)R, per, "counts.proj (SimHash projections)");
    }
    if (f->has_rnd) {
        const size_t per = sizeof(float) * (size_t)f->rnd.net.P;
        FIXED(f->rnd.target, LOFF(f->rnd.target), per * (size_t)R, per, "rnd.target (RND target networks)");
    }
    if (f->any_int_value) {
        FIXED(f->ival.hp, LOFF(f->ival.hp), sizeof(qf_run_hp) * (size_t)R, sizeof(qf_run_hp),
              "ival.hp (hyperparameters of the intrinsic value)");
        FIXED(f->ival.active, LOFF(f->ival.active), sizeof(int32_t) * (size_t)R, sizeof(int32_t),
              "ival.active (runs with rnd_value=separate)");
    }
    if (f->any_rnd_act) {
        const size_t per = sizeof(int32_t) * (size_t)E;
        FIXED(f->rnd_act_a, LOFF(f->rnd_act_a), per * (size_t)R * (size_t)A, per, "rnd_act_a (actions of rnd_act's pairs)");
    }
    FIXED(f->env.batch.keys, EOFF(f->env.batch.keys), sizeof(uint32_t) * 2 * (size_t)R, 2 * sizeof(uint32_t),
          "env.keys");
    ep = (qf_env_params *)malloc(sizeof(qf_env_params) * (size_t)R);
    active = (int32_t *)malloc(sizeof(int32_t) * (size_t)R);
    if (!ep || !active) {
        snprintf(err, err_len, "snapshot: out of host memory");
        goto fail;
    }
    if (f->b->download(f->b, ep, f->env.batch.params, sizeof(qf_env_params) * (size_t)R) != QF_OK) {
        snprintf(err, err_len, "snapshot: reading the fleet's env params: %s", f->b->err);
        goto fail;
    }
    const int kind = f->env.batch.kind;
    const size_t pb = (size_t)qf_env_params_bytes(kind), poff = EOFF(f->env.batch.params);
    for (int32_t r = 0; r < R; r++) /* only the kind's member of the union: the rest is never read */
        if (memcmp((const char *)&ep[r], s + poff + sizeof(qf_env_params) * (size_t)r, pb) != 0)
            SNAP_FAIL("env.params of run %d differ from this fleet's, which the configuration fixes (size, "
                      "mapping, time limit, ...): a checkpoint of another experiment, or a forged one", r);
    for (int32_t r = 0; r < R; r++) active[r] = f->hp_host[r].n_heads; /* equal to the snapshot's, checked */

    /* ---- (c) host counters ---- */
    const size_t h0 = f->bytes + f->env.bytes;
    const size_t h_t = h0, h_log = h_t + 8, h_upd = h_log + 8, h_vstar = h_upd + 4, h_div = h_vstar + 8;
    const size_t h_reg = h_div + 4 * (size_t)R, h_eps = h_reg + 8 * (size_t)R, h_prev = h_eps + 8 * (size_t)R;
    const int64_t t = snap_i64(s, h_t, 0);
    const int64_t t_cap = INT64_MAX / (E > 0 ? E : 1);
    if (t < 0 || t > max_steps || t > t_cap)
        SNAP_FAIL("t (env steps per env) = %lld, outside [0, %lld] (the run's steps)", (long long)t,
                  (long long)(max_steps < t_cap ? max_steps : t_cap));
    const int64_t last_log = snap_i64(s, h_log, 0);
    if (last_log < 0 || last_log > t)
        SNAP_FAIL("last_log_step = %lld, outside [0, t = %lld]", (long long)last_log, (long long)t);
    const uint32_t n_updates = snap_u32(s, h_upd, 0), want_updates = expected_updates(f, t);
    if (n_updates != want_updates)
        SNAP_FAIL("n_updates = %u, but %lld steps with learning_starts=%lld, train_every=%lld, updates=%lld make %u",
                  n_updates, (long long)t, (long long)f->cfg.learning_starts, (long long)f->cfg.train_every,
                  (long long)f->cfg.updates, want_updates);
    const double v_star = snap_f64(s, h_vstar, 0);
    /* the solver's answer may differ in its last bits between backends (a GPU fleet's checkpoint
     * resumed on the CPU): equal to 1e-9, relative */
    if (isnan(v_star) != isnan(f->v_star) ||
        (!isnan(v_star) && !(fabs(v_star - f->v_star) <= 1e-9 * fmax(1.0, fabs(f->v_star)))))
        SNAP_FAIL("v_star = %.17g differs from this fleet's %.17g (the exact solver's V*(s0) of the configured env)",
                  v_star, f->v_star);

    /* ---- (b) per run: status, optimizer steps, divergence, regret, episodes ---- */
    const size_t l_status = LOFF(f->status), l_adam = LOFF(f->adam_t);
    const size_t l_rnd_t = f->has_rnd ? LOFF(f->rnd.adam_t) : 0;
    for (int32_t r = 0; r < R; r++) {
        const int32_t st = snap_i32(s, l_status, (size_t)r), at = snap_i32(s, l_adam, (size_t)r);
        if (st != QF_RUN_OK && st != QF_RUN_DIVERGED)
            SNAP_FAIL("status[run %d] = %d (allowed: %d ok, %d diverged)", r, st, QF_RUN_OK, QF_RUN_DIVERGED);
        /* Adam counts every update of a run until it diverges, then freezes (backend.h, adam) */
        if (st == QF_RUN_OK ? (uint32_t)at != n_updates : (at < 0 || (uint32_t)at > n_updates))
            SNAP_FAIL("adam_t[run %d] = %d with status %s and n_updates = %u (allowed: %s)", r, at,
                      st == QF_RUN_OK ? "ok" : "diverged", n_updates,
                      st == QF_RUN_OK ? "equal to n_updates" : "0 to n_updates");
        if (f->has_rnd) { /* RND's Adam runs after the Q networks' in the same update */
            const int32_t rt = snap_i32(s, l_rnd_t, (size_t)r);
            if (st == QF_RUN_OK ? rt != at : (rt != at && rt != at - 1))
                SNAP_FAIL("rnd.adam_t[run %d] = %d with adam_t = %d and status %s (allowed: %s)", r, rt, at,
                          st == QF_RUN_OK ? "ok" : "diverged", st == QF_RUN_OK ? "adam_t" : "adam_t or adam_t - 1");
        }
        if (f->any_int_value) { /* Q_I's Adam runs last in an update */
            const int32_t it = snap_i32(s, LOFF(f->ival.adam_t), (size_t)r);
            if (st == QF_RUN_OK ? it != at : (it != at && it != at - 1))
                SNAP_FAIL("ival.adam_t[run %d] = %d with adam_t = %d and status %s (allowed: %s)", r, it, at,
                          st == QF_RUN_OK ? "ok" : "diverged", st == QF_RUN_OK ? "adam_t" : "adam_t or adam_t - 1");
        }
        const int32_t dv = snap_i32(s, h_div, (size_t)r);
        if (dv < -1 || (dv >= 0 && (st != QF_RUN_DIVERGED || dv != at)))
            SNAP_FAIL("diverged_at[run %d] = %d with status %s and adam_t = %d (allowed: -1, or adam_t of a "
                      "diverged run)", r, dv, st == QF_RUN_OK ? "ok" : "diverged", at);
        const double rg = snap_f64(s, h_reg, (size_t)r);
        if (isnan(f->v_star) ? rg != 0.0 : isinf(rg))
            SNAP_FAIL("regret[run %d] = %g (allowed: %s)", r, rg,
                      isnan(f->v_star) ? "0, no V* to measure it against" : "finite or NaN");
        int64_t sum_prev = 0;
        for (int32_t e = 0; e < E; e++) sum_prev += (int64_t)snap_u32(s, h_prev, (size_t)r * E + e);
        const int64_t eps = snap_i64(s, h_eps, (size_t)r);
        if (eps != sum_prev)
            SNAP_FAIL("episodes[run %d] = %lld, but its envs had finished %lld at the last log point (ep_prev)", r,
                      (long long)eps, (long long)sum_prev);
        /* a sum of standard deviations: >= 0 (NaN once a head's Q is NaN); 0 where nothing adds to it */
        const float qd = snap_f32(s, LOFF(f->qdiv), (size_t)r);
        if (f->hp_host[r].explore == QF_EXPLORE_BOOTSTRAP ? qd < 0.0f : qd != 0.0f)
            SNAP_FAIL("qdiv[run %d] = %g (allowed: %s)", r, (double)qd,
                      f->hp_host[r].explore == QF_EXPLORE_BOOTSTRAP ? "a sum of Q-diversities, >= 0 or NaN"
                                                                    : "0, the run is not an ensemble");
    }

    /* ---- (b) per env: the head followed, the last actions and state indices ---- */
    const int32_t S = f->embed ? f->net.w[0] : 0;
    for (int32_t r = 0; r < R; r++)
        for (int32_t e = 0; e < E; e++) {
            const size_t i = (size_t)r * E + e;
            const int32_t h = snap_i32(s, LOFF(f->heads), i), a = snap_i32(s, LOFF(f->actions), i);
            if (h < 0 || h >= active[r])
                SNAP_FAIL("heads[run %d][env %d] = %d, outside [0, %d) (the run's heads)", r, e, h, active[r]);
            if (a < 0 || a >= A) SNAP_FAIL("actions[run %d][env %d] = %d, outside [0, %d)", r, e, a, A);
            if (f->embed) {
                const int32_t o = snap_i32(s, LOFF(f->obs_idx), i), nx = snap_i32(s, LOFF(f->next_idx), i);
                if (o < 0 || o >= S) SNAP_FAIL("obs_idx[run %d][env %d] = %d, outside [0, %d)", r, e, o, S);
                if (nx < 0 || nx >= S) SNAP_FAIL("next_idx[run %d][env %d] = %d, outside [0, %d)", r, e, nx, S);
            }
        }

    /* ---- (b) replay: the slots sampling can read, j < min(t*E, C) ---- */
    const int64_t C = f->C, stored = t < (C + E - 1) / E ? t * E : C;
    for (int32_t r = 0; r < R; r++) {
        const qf_mask heads_mask = active[r] >= 64 ? ~(qf_mask)0 : ((qf_mask)1 << active[r]) - 1u;
        for (int64_t j = 0; j < stored; j++) {
            const size_t i = (size_t)(r * C + j);
            const int32_t a = snap_i32(s, LOFF(f->replay.action), i);
            if (a < 0 || a >= A) SNAP_FAIL("replay.action[run %d][slot %lld] = %d, outside [0, %d)", r, (long long)j, a, A);
            const uint8_t term = (uint8_t)s[LOFF(f->replay.terminal) + i];
            if (term > 1) SNAP_FAIL("replay.terminal[run %d][slot %lld] = %u (allowed: 0, 1)", r, (long long)j, term);
            const qf_mask m = snap_u64(s, LOFF(f->replay.mask), i);
            if (m & ~heads_mask)
                SNAP_FAIL("replay.mask[run %d][slot %lld] = 0x%llx names heads beyond the run's %d", r, (long long)j,
                          (unsigned long long)m, active[r]);
            if (f->embed) {
                const int32_t o = snap_i32(s, LOFF(f->replay.idx), i), nx = snap_i32(s, LOFF(f->replay.next_idx), i);
                if (o < 0 || o >= S)
                    SNAP_FAIL("replay.idx[run %d][slot %lld] = %d, outside [0, %d)", r, (long long)j, o, S);
                if (nx < 0 || nx >= S)
                    SNAP_FAIL("replay.next_idx[run %d][slot %lld] = %d, outside [0, %d)", r, (long long)j, nx, S);
            }
        }
    }

    /* ---- (b) counts: every step counts each env's arrival state (and, for count_act, its pair) ---- */
    const qf_counts *ct = &f->counts;
    const uint64_t arrivals = (uint64_t)t * (uint64_t)E;
    if (ct->mode == QF_COUNT_EXACT) {
        for (int32_t r = 0; r < R; r++) {
            uint64_t sum = 0, sum_sa = 0;
            for (int32_t j = 0; j < ct->S; j++) sum += snap_u32(s, LOFF(ct->cnt), (size_t)r * ct->S + j);
            if ((uint32_t)sum != (uint32_t)arrivals)
                SNAP_FAIL("counts.cnt of run %d sum to %llu, but %lld steps x %d envs arrived in %llu states", r,
                          (unsigned long long)sum, (long long)t, E, (unsigned long long)arrivals);
            if (ct->A) {
                for (int64_t j = 0; j < (int64_t)ct->S * ct->A; j++)
                    sum_sa += snap_u32(s, LOFF(ct->cnt_sa), (size_t)((int64_t)r * ct->S * ct->A + j));
                if ((uint32_t)sum_sa != (uint32_t)arrivals)
                    SNAP_FAIL("counts.cnt_sa of run %d sum to %llu, but %lld steps x %d envs took %llu actions", r,
                              (unsigned long long)sum_sa, (long long)t, E, (unsigned long long)arrivals);
            }
        }
    } else if (ct->mode == QF_COUNT_SIMHASH) {
        const uint64_t cap = (uint64_t)1 << ct->log2cap;
        /* keys: a code c of `bits` bits is stored as c + 1; a (code, action) pair as qf_sa_key */
        const uint64_t max_key = ct->bits >= 64 ? UINT64_MAX : ((uint64_t)1 << ct->bits);
        for (int32_t r = 0; r < R; r++)
            for (int tab = 0; tab < (ct->A ? 2 : 1); tab++) {
                const size_t ko = tab ? LOFF(ct->key_sa) : LOFF(ct->key), co = tab ? LOFF(ct->cnt_sa) : LOFF(ct->cnt);
                const char *nm = tab ? "counts.key_sa" : "counts.key";
                uint64_t sum = 0;
                for (uint64_t j = 0; j < cap; j++) {
                    const uint64_t k = snap_u64(s, ko, (size_t)(r * cap + j));
                    const uint32_t c = snap_u32(s, co, (size_t)(r * cap + j));
                    if ((k == 0) != (c == 0))
                        SNAP_FAIL("%s[run %d][slot %llu] = %llu with count %u (an empty slot has count 0, a used one "
                                  "at least 1)", nm, r, (unsigned long long)j, (unsigned long long)k, c);
                    if (!tab && k > max_key)
                        SNAP_FAIL("%s[run %d][slot %llu] = %llu is no %d-bit code + 1", nm, r, (unsigned long long)j,
                                  (unsigned long long)k, ct->bits);
                    sum += c;
                }
                if (arrivals < ((uint64_t)1 << 32) && sum > arrivals)
                    SNAP_FAIL("%s of run %d count %llu visits, more than %lld steps x %d envs", tab ? "counts.cnt_sa" : "counts.cnt",
                              r, (unsigned long long)sum, (long long)t, E);
            }
    }

    /* ---- (b) RND: the running statistics count every env of every step ---- */
    if (f->has_rnd) {
        const qf_rnd *q = &f->rnd;
        for (int32_t r = 0; r < R; r++) {
            const double rn = snap_f64(s, LOFF(q->ret_n), (size_t)r);
            if (rn != (double)arrivals)
                SNAP_FAIL("rnd.ret_n[run %d] = %g, but %lld steps x %d envs make %llu returns", r, rn, (long long)t, E,
                          (unsigned long long)arrivals);
            if (!f->embed) { /* after step 0 the statistics also hold rnd_warmup steps x E envs */
                const double on = snap_f64(s, LOFF(q->obs_n), (size_t)r);
                const double warm = t > 0 ? (double)f->cfg.rnd_warmup * (double)E : 0.0;
                if (on != (double)arrivals + warm)
                    SNAP_FAIL("rnd.obs_n[run %d] = %g, but %lld steps x %d envs (and rnd_warmup=%lld) make %g "
                              "observations", r, on, (long long)t, E, (long long)f->cfg.rnd_warmup,
                              (double)arrivals + warm);
            }
        }
    }

    /* ---- (b) env batch: states, flags, episode statistics ---- */
    {
        const qf_env_batch *bt = &f->env.batch;
        const int nf = qf_env_nf(kind), ni = qf_env_ni(kind);
        const size_t o_sf = EOFF(bt->sf), o_si = EOFF(bt->si), o_fl = EOFF(bt->flags), o_ep = EOFF(bt->episodes);
        for (int32_t r = 0; r < R; r++) {
            const int32_t fixed_len = qf_env_fixed_length(kind, &ep[r]);
            for (int32_t e = 0; e < E; e++) {
                const size_t i = (size_t)r * E + e;
                qf_env_state st;
                memset(&st, 0, sizeof st);
                for (int j = 0; j < nf; j++) st.f[j] = snap_f32(s, o_sf, (size_t)j * (size_t)N + i);
                for (int j = 0; j < ni; j++) st.i[j] = snap_i32(s, o_si, (size_t)j * (size_t)N + i);
                st.t = snap_i32(s, o_si, (size_t)QF_NI * (size_t)N + i);
                const char *bad = qf_env_state_check(kind, &ep[r], &st);
                if (bad) SNAP_FAIL("env state [run %d][env %d]: %s is not a state of this env (t = %d)", r, e, bad, st.t);
                if (st.t > t) SNAP_FAIL("env state [run %d][env %d]: episode step %d exceeds the fleet's %lld steps", r, e, st.t, (long long)t);
                const uint8_t fl = (uint8_t)s[o_fl + i];
                if (fl & ~(QF_TERMINAL | QF_TRUNCATED | QF_TREASURE | QF_BAD_EPISODE))
                    SNAP_FAIL("env flags[run %d][env %d] = 0x%x (allowed bits: 0xf)", r, e, fl);
                /* an episode step of 0 after a step means the env just ended an episode and reset */
                const int ended = (fl & (QF_TERMINAL | QF_TRUNCATED)) != 0;
                if (t == 0 ? fl != 0 : ended != (st.t == 0))
                    SNAP_FAIL("env flags[run %d][env %d] = 0x%x disagree with its episode step %d", r, e, fl, st.t);
                const uint32_t eps = snap_u32(s, o_ep, i);
                /* every episode takes at least one step; fixed-length ones exactly their length */
                if (fixed_len ? (uint32_t)((uint64_t)eps * (uint64_t)fixed_len + (uint64_t)st.t) != (uint32_t)t
                              : (t < ((int64_t)1 << 32) && (int64_t)eps + st.t > t))
                    SNAP_FAIL("env episodes[run %d][env %d] = %u with episode step %d is impossible after %lld steps", r,
                              e, eps, st.t, (long long)t);
                const uint32_t prev = snap_u32(s, h_prev, i);
                if (prev > eps)
                    SNAP_FAIL("ep_prev[run %d][env %d] = %u exceeds the env's %u episodes", r, e, prev, eps);
                if (last_log == 0 && prev != 0)
                    SNAP_FAIL("ep_prev[run %d][env %d] = %u before any log point", r, e, prev);
                const uint32_t tr = snap_u32(s, EOFF(bt->treasures), i), bad_eps = snap_u32(s, EOFF(bt->bad_episodes), i);
                const uint32_t ft = snap_u32(s, EOFF(bt->first_treasure), i), sv = snap_u32(s, EOFF(bt->solved_at), i);
                const uint32_t cv = snap_u32(s, EOFF(bt->converged_at), i);
                if (tr > eps || bad_eps > eps || ft > eps || sv > eps || cv > eps || (ft == 0) != (tr == 0))
                    SNAP_FAIL("env episode statistics [run %d][env %d] (treasures %u, bad_episodes %u, first_treasure "
                              "%u, solved_at %u, converged_at %u) are impossible with %u episodes", r, e, tr, bad_eps,
                              ft, sv, cv, eps);
                const int32_t ll = snap_i32(s, EOFF(bt->last_length), i), ls = snap_i32(s, EOFF(bt->len_sum), i);
                if (ll < 0 || (int64_t)ll > t || ls < 0)
                    SNAP_FAIL("env last_length / len_sum [run %d][env %d] = %d / %d (allowed: 0 to t, >= 0)", r, e, ll, ls);
            }
        }
    }
#undef FIXED
#undef LOFF
#undef EOFF
    free(ep);
    free(active);
    return QF_OK;
fail:
    free(ep);
    free(active);
    return QF_ERR;
}
#undef SNAP_FAIL
