/* config.c — the key table and the `key=value` parser. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { K_INT, K_FLOAT, K_CHOICE, K_STRING, K_ENV, K_WIDTHS };

typedef struct key_spec {
    const char *name;
    int type;
    size_t offset;
    size_t size; /* for K_CHOICE / K_STRING: capacity of the char array */
    const char *def;
    double lo, hi;
    const char *choices; /* K_CHOICE: "a|b|c" */
    const char *doc;
} key_spec;

#define OFF(f) offsetof(qf_config, f)
#define SZ(f) sizeof(((qf_config *)0)->f)

static const key_spec keys[] = {
    {"env", K_ENV, OFF(env), 0, "deep_sea", 0, 0, NULL,
     "environment: deep_sea, cartpole, mountain_car, chain, bandit (see `qfleet envs`)"},
    {"backend", K_CHOICE, OFF(backend), SZ(backend), "auto", 0, 0, "auto|cpu|cuda",
     "device: auto picks the GPU when one is usable, else the CPU"},
    {"envs", K_INT, OFF(envs), 0, "1", 1, 1073741824, NULL, "environments per run (E)"},
    {"runs", K_INT, OFF(runs), 0, "1", 1, 1048576, NULL, "independent runs (R = runs x seeds)"},
    {"seeds", K_INT, OFF(seeds), 0, "1", 1, 1048576, NULL,
     "seeds per run: run c, seed s uses key (seed + s, c); train and solve"},
    {"seed", K_INT, OFF(seed), 0, "0", 0, 4294967295.0, NULL, "base seed; run r draws from key (seed, r)"},
    {"steps", K_INT, OFF(steps), 0, "10000", 1, 1e12, NULL,
     "train: steps of every env (a run collects steps*envs transitions)"},
    {"obs", K_CHOICE, OFF(obs), SZ(obs), "auto", 0, 0, "auto|index|dense|none",
     "observations written per step: state index, dense vector, none (auto: index when discrete)"},
    {"threads", K_INT, OFF(threads), 0, "0", 0, 4096, NULL, "CPU threads (0: every core)"},
    {"seconds", K_FLOAT, OFF(seconds), 0, "0.3", 0.001, 3600, NULL,
     "bench: seconds of timing per table cell"},
    {"max_envs", K_INT, OFF(max_envs), 0, "1048576", 1, 1073741824, NULL,
     "bench: largest envs value (the sweep is 1k, 16k, 128k, 1M, capped here)"},
    {"max_runs", K_INT, OFF(max_runs), 0, "4096", 1, 1048576, NULL,
     "bench train: largest number of runs in the sweep 1, 16, 256, 4096"},
    {"csv", K_STRING, OFF(csv), SZ(csv), "", 0, 0, NULL, "bench: also write the table to this CSV file"},
    {"gamma", K_FLOAT, OFF(gamma), 0, "0.99", 0, 1, NULL, "discount factor"},
    {"alpha", K_FLOAT, OFF(alpha), 0, "0", 0, 1e6, NULL,
     "soft-Q temperature: target alpha*logsumexp(Q/alpha); 0 = hard max (DQN)"},
    {"policy", K_INT, OFF(policy), 0, "0", 0, 1, NULL, "solve: also print the optimal (soft) policy"},
    {"profile", K_INT, OFF(profile), 0, "0", 0, 1e9, NULL,
     "train: warm up past learning_starts, then run this many iterations between cudaProfilerStart/Stop"},
    {"explore", K_CHOICE, OFF(explore), SZ(explore), "epsilon", 0, 0,
     "epsilon|boltzmann|bootstrap|rnd|count",
     "exploration: epsilon-greedy (eps_*), Boltzmann at alpha, bootstrapped ensemble with priors, "
     "RND bonus, count bonus"},
    {"bonus", K_CHOICE, OFF(bonus), SZ(bonus), "auto", 0, 0, "auto|none|rnd|count",
     "intrinsic reward beta*bonus added to the reward (auto: rnd for explore=rnd, count for count)"},
    {"heads", K_INT, OFF(heads), 0, "10", 1, 32, NULL, "bootstrap: ensemble heads K"},
    {"prior_scale", K_FLOAT, OFF(prior_scale), 0, "3", 0, 1e6, NULL,
     "bootstrap: scale of each head's fixed random prior network (0: no prior)"},
    {"mask_p", K_FLOAT, OFF(mask_p), 0, "1", 0, 1, NULL,
     "bootstrap: probability that a head trains on a transition (drawn when stored)"},
    {"act", K_CHOICE, OFF(act), SZ(act), "sample", 0, 0, "sample|ucb",
     "bootstrap acting: one head drawn per episode, or ensemble mean + ucb_c * std"},
    {"ucb_c", K_FLOAT, OFF(ucb_c), 0, "1", 0, 1e6, NULL, "bootstrap act=ucb: weight of the ensemble std"},
    {"beta", K_FLOAT, OFF(beta), 0, "0.1", 0, 1e6, NULL, "weight of the intrinsic reward (bonus)"},
    {"rnd_width", K_INT, OFF(rnd_width), 0, "64", 1, 65536, NULL, "RND: hidden width of target and predictor"},
    {"rnd_dim", K_INT, OFF(rnd_dim), 0, "32", 1, 65536, NULL, "RND: output width of target and predictor"},
    {"rnd_episodic", K_INT, OFF(rnd_episodic), 0, "1", 0, 1, NULL,
     "RND: 0 = the intrinsic return behind the normalizer runs across episode ends"},
    {"count", K_CHOICE, OFF(count), SZ(count), "auto", 0, 0, "auto|exact|simhash",
     "count bonus: exact state counts (discrete envs with obs=index) or SimHash pseudo-counts"},
    {"count_act", K_INT, OFF(count_act), 0, "1", 0, 1, NULL,
     "count bonus: also act on Q(s,a) + beta/sqrt(N(s,a)+1), so untried actions look better"},
    {"simhash_bits", K_INT, OFF(simhash_bits), 0, "32", 1, 62, NULL, "SimHash: code length k in bits"},
    {"count_table", K_INT, OFF(count_table), 0, "16", 4, 26, NULL,
     "SimHash: log2 of the hash-table slots per run"},
    {"strategies", K_STRING, OFF(strategies), SZ(strategies), "epsilon,ucb1,thompson,boltzmann", 0, 0, NULL,
     "bandits: strategies compared (epsilon, ucb1, thompson, boltzmann)"},
    {"explorers", K_STRING, OFF(explorers), SZ(explorers), "epsilon,boltzmann,bootstrap,count,rnd", 0, 0, NULL,
     "compare: exploration strategies compared (epsilon, boltzmann, bootstrap, count, rnd)"},
    {"sizes", K_STRING, OFF(sizes), SZ(sizes), "8,12,16", 0, 0, NULL, "compare: DeepSea sizes N, e.g. 8,12,16"},
    {"episodes", K_INT, OFF(episodes), 0, "2000", 1, 1e9, NULL, "compare: episodes per run and size"},
    {"trials", K_INT, OFF(trials), 0, "10", 1, 1000000, NULL,
     "sweep: points drawn for random-search axes (uniform, loguniform, choice)"},
    {"checkpoint_seconds", K_FLOAT, OFF(checkpoint_seconds), 0, "60", 0, 1e9, NULL,
     "sweep: seconds between checkpoints, written at log points (0: none)"},
    {"bandit_eps", K_FLOAT, OFF(bandit_eps), 0, "0.1", 0, 1, NULL, "bandits: fixed epsilon of epsilon-greedy"},
    {"bandit_temp", K_FLOAT, OFF(bandit_temp), 0, "0.1", 1e-6, 1e6, NULL,
     "bandits: temperature of Boltzmann over empirical means"},
    {"lr", K_FLOAT, OFF(lr), 0, "0.001", 1e-8, 10, NULL, "Adam learning rate"},
    {"hidden", K_WIDTHS, OFF(hidden), 0, "[64,64]", 1, 65536, NULL,
     "hidden layer widths of the Q-network, e.g. [64,64]; [] = linear (a table with obs=index)"},
    {"batch", K_INT, OFF(batch), 0, "128", 1, 65536, NULL, "transitions per update per run (B)"},
    {"buffer", K_INT, OFF(buffer), 0, "10000", 1, 1e9, NULL, "replay capacity per run (transitions)"},
    {"learning_starts", K_INT, OFF(learning_starts), 0, "1000", 0, 1e12, NULL,
     "transitions a run stores before it learns"},
    {"train_every", K_INT, OFF(train_every), 0, "1", 1, 1e9, NULL, "env steps between learner steps"},
    {"updates", K_INT, OFF(updates), 0, "1", 1, 1e6, NULL, "gradient updates per learner step"},
    {"tau", K_FLOAT, OFF(tau), 0, "1", 0, 1, NULL,
     "target network: Polyak tau every update (< 1), or a copy every target_every updates (1)"},
    {"target_every", K_INT, OFF(target_every), 0, "100", 1, 1e9, NULL, "updates between target copies (tau=1)"},
    {"double_q", K_INT, OFF(double_q), 0, "0", 0, 1, NULL, "double-Q target (alpha=0): a' from the online network"},
    {"loss", K_CHOICE, OFF(loss), SZ(loss), "huber", 0, 0, "huber|squared", "TD loss"},
    {"huber", K_FLOAT, OFF(huber), 0, "1", 1e-6, 1e9, NULL, "Huber threshold"},
    {"max_grad_norm", K_FLOAT, OFF(max_grad_norm), 0, "10", 0, 1e9, NULL,
     "clip each network's gradient to this global norm (0: no clipping)"},
    {"eps_start", K_FLOAT, OFF(eps_start), 0, "1", 0, 1, NULL, "epsilon at step 0"},
    {"eps_end", K_FLOAT, OFF(eps_end), 0, "0.05", 0, 1, NULL, "epsilon after eps_steps"},
    {"eps_steps", K_INT, OFF(eps_steps), 0, "10000", 0, 1e12, NULL, "env steps of the linear epsilon decay"},
    {"log_every", K_INT, OFF(log_every), 0, "1000", 1, 1e12, NULL, "env steps between log points (curves)"},
    {"out", K_STRING, OFF(out), SZ(out), "", 0, 0, NULL,
     "results folder (default results/<env>__<explore>__<date-time>)"},
};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))

static const key_spec *find_key(const char *name) {
    for (int k = 0; k < N_KEYS; k++)
        if (strcmp(keys[k].name, name) == 0) return &keys[k];
    return NULL;
}

/* Whole-string integer parse; returns 0 on success. */
static int parse_int(const char *s, long long *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_float(const char *s, double *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static void env_names(char *out, size_t len) {
    out[0] = 0;
    for (int k = 0; k < QF_ENV_COUNT; k++) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", k ? ", " : "", qf_env_spec_of(k)->name);
    }
}

static int set_key(qf_config *cfg, const key_spec *ks, const char *val, char *msg, size_t n) {
    char *dst = (char *)cfg + ks->offset;
    switch (ks->type) {
    case K_INT: {
        long long v;
        if (parse_int(val, &v) || v < ks->lo || v > ks->hi) {
            snprintf(msg, n, "bad value for %s: '%s' (allowed: an integer in [%.0f, %.0f])", ks->name,
                     val, ks->lo, ks->hi);
            return -1;
        }
        int64_t v64 = v;
        memcpy(dst, &v64, sizeof v64);
        return 0;
    }
    case K_FLOAT: {
        double v;
        if (parse_float(val, &v) || v < ks->lo || v > ks->hi) {
            snprintf(msg, n, "bad value for %s: '%s' (allowed: a number in [%g, %g])", ks->name, val,
                     ks->lo, ks->hi);
            return -1;
        }
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    case K_CHOICE: {
        size_t len = strlen(val);
        const char *c = ks->choices;
        while (*c) {
            size_t w = strcspn(c, "|");
            if (w == len && strncmp(c, val, len) == 0) {
                snprintf(dst, ks->size, "%s", val);
                return 0;
            }
            c += w + (c[w] == '|');
        }
        snprintf(msg, n, "bad value for %s: '%s' (allowed: %s)", ks->name, val, ks->choices);
        return -1;
    }
    case K_STRING:
        if (strlen(val) >= ks->size) {
            snprintf(msg, n, "bad value for %s: too long (at most %zu characters)", ks->name, ks->size - 1);
            return -1;
        }
        snprintf(dst, ks->size, "%s", val);
        return 0;
    case K_WIDTHS: {
        int64_t w[4];
        int count = 0;
        size_t len = strlen(val);
        int ok = len >= 2 && val[0] == '[' && val[len - 1] == ']';
        if (ok && len > 2) {
            char buf[128];
            ok = len - 2 < sizeof buf;
            if (ok) {
                memcpy(buf, val + 1, len - 2);
                buf[len - 2] = 0;
                char *save = NULL;
                for (char *tok = strtok_r(buf, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
                    long long v;
                    ok = count < 3 && parse_int(tok, &v) == 0 && v >= ks->lo && v <= ks->hi;
                    if (ok) w[count++] = v;
                }
            }
        }
        if (!ok) {
            snprintf(msg, n, "bad value for %s: '%s' (allowed: a bracketed list of 0 to 3 integers in "
                             "[%.0f, %.0f], e.g. [64,64] or [])", ks->name, val, ks->lo, ks->hi);
            return -1;
        }
        memcpy(dst, w, sizeof(int64_t) * (size_t)count);
        cfg->n_hidden = count;
        return 0;
    }
    default: { /* K_ENV */
        int kind = qf_env_find(val);
        if (kind < 0) {
            char names[256];
            env_names(names, sizeof names);
            snprintf(msg, n, "unknown environment: env=%s (allowed: %s)", val, names);
            return -1;
        }
        cfg->env = kind;
        qf_env_params_default(kind, &cfg->env_params);
        return 0;
    }
    }
}

/* "[0.9,0.8]" -> list of floats in [lo, hi]. */
static int parse_list(const char *val, float *out, int cap, int *count, double lo, double hi) {
    size_t len = strlen(val);
    if (len < 2 || val[0] != '[' || val[len - 1] != ']') return -1;
    char buf[2048];
    if (len - 2 >= sizeof buf) return -1;
    memcpy(buf, val + 1, len - 2);
    buf[len - 2] = 0;
    int k = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        double v;
        if (k >= cap || parse_float(tok, &v) || v < lo || v > hi) return -1;
        out[k++] = (float)v;
    }
    if (k == 0) return -1;
    *count = k;
    return 0;
}

static int set_env_param(qf_config *cfg, const char *name, const char *val, char *msg, size_t n) {
    const qf_env_spec *es = qf_env_spec_of(cfg->env);
    const qf_param_spec *ps = qf_env_param_find(cfg->env, name);
    if (!ps) {
        char names[512] = "";
        for (int j = 0; j < es->n_params; j++) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%senv.%s", j ? ", " : "", es->params[j].name);
        }
        snprintf(msg, n, "unknown key: env.%s is not a parameter of env=%s (its keys: %s)", name,
                 es->name, names);
        return -1;
    }
    char *dst = (char *)&cfg->env_params + ps->offset;
    if (ps->type == QF_P_LIST) {
        float vals[QF_MAX_ARMS];
        int count = 0;
        if (parse_list(val, vals, QF_MAX_ARMS, &count, ps->lo, ps->hi)) {
            snprintf(msg, n, "bad value for env.%s: '%s' (allowed: a bracketed list of 1 to %d numbers "
                             "in [%g, %g], e.g. [0.9,0.8,0.7])", name, val, QF_MAX_ARMS, ps->lo, ps->hi);
            return -1;
        }
        memcpy(cfg->env_params.bandit.probs, vals, sizeof(float) * (size_t)count);
        cfg->env_params.bandit.n_probs = count;
        return 0;
    }
    if (ps->type == QF_P_FLOAT) {
        double v;
        if (parse_float(val, &v) || v < ps->lo || v > ps->hi) {
            snprintf(msg, n, "bad value for env.%s: '%s' (allowed: a number in [%g, %g])", name, val,
                     ps->lo, ps->hi);
            return -1;
        }
        float f = (float)v;
        memcpy(dst, &f, sizeof f);
        return 0;
    }
    long long v;
    if (ps->type == QF_P_BOOL && (strcmp(val, "true") == 0 || strcmp(val, "false") == 0)) {
        v = val[0] == 't';
    } else if (parse_int(val, &v) || v < ps->lo || v > ps->hi) {
        if (ps->type == QF_P_BOOL)
            snprintf(msg, n, "bad value for env.%s: '%s' (allowed: 0, 1, true, false)", name, val);
        else
            snprintf(msg, n, "bad value for env.%s: '%s' (allowed: an integer in [%.0f, %.0f])", name,
                     val, ps->lo, ps->hi);
        return -1;
    }
    int32_t v32 = (int32_t)v;
    memcpy(dst, &v32, sizeof v32);
    return 0;
}

void qf_config_default(qf_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char msg[256];
    for (int k = 0; k < N_KEYS; k++) set_key(cfg, &keys[k], keys[k].def, msg, sizeof msg);
}

int qf_config_parse(qf_config *cfg, int argc, char **argv, char *msg, size_t n) {
    int arms_given = 0;
    /* pass 0: syntax and env=; pass 1: everything else */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < argc; i++) {
            const char *w = argv[i];
            const char *eq = strchr(w, '=');
            if (!eq || eq == w) {
                snprintf(msg, n, "expected key=value, got '%s' (keys: qfleet help keys)", w);
                return -1;
            }
            char name[128];
            size_t len = (size_t)(eq - w);
            if (len >= sizeof name) {
                snprintf(msg, n, "unknown key: '%.40s...'", w);
                return -1;
            }
            memcpy(name, w, len);
            name[len] = 0;
            const char *val = eq + 1;
            int is_env = strcmp(name, "env") == 0;
            if (pass == 0) {
                if (is_env && set_key(cfg, find_key("env"), val, msg, n)) return -1;
                continue;
            }
            if (is_env) continue;
            if (strncmp(name, "env.", 4) == 0) {
                if (set_env_param(cfg, name + 4, val, msg, n)) return -1;
                if (strcmp(name + 4, "arms") == 0) arms_given = 1;
                continue;
            }
            const key_spec *ks = find_key(name);
            if (!ks) {
                snprintf(msg, n, "unknown key: '%s' (keys: qfleet help keys)", name);
                return -1;
            }
            if (set_key(cfg, ks, val, msg, n)) return -1;
        }
    }
    if (cfg->env == QF_ENV_BANDIT && arms_given && cfg->env_params.bandit.n_probs > 0 &&
        cfg->env_params.bandit.arms != cfg->env_params.bandit.n_probs) {
        snprintf(msg, n, "env.arms=%d contradicts env.probs, which gives %d means",
                 cfg->env_params.bandit.arms, cfg->env_params.bandit.n_probs);
        return -1;
    }
    char why[256];
    if (qf_env_params_check(cfg->env, &cfg->env_params, why, sizeof why)) {
        snprintf(msg, n, "%s", why);
        return -1;
    }
    if (cfg->runs * cfg->seeds > 1048576) {
        snprintf(msg, n, "runs=%lld x seeds=%lld is %lld runs; at most 1048576 fit one fleet",
                 (long long)cfg->runs, (long long)cfg->seeds, (long long)(cfg->runs * cfg->seeds));
        return -1;
    }
    if (cfg->runs * cfg->seeds * cfg->envs > 2147483647LL) {
        snprintf(msg, n, "runs=%lld x seeds=%lld x envs=%lld is %lld environments; at most 2^31-1 fit "
                 "one batch", (long long)cfg->runs, (long long)cfg->seeds, (long long)cfg->envs,
                 (long long)(cfg->runs * cfg->seeds * cfg->envs));
        return -1;
    }
    return 0;
}

void qf_config_print_keys(FILE *f) {
    fprintf(f, "keys (key=value):\n");
    for (int k = 0; k < N_KEYS; k++) {
        const key_spec *ks = &keys[k];
        char range[96];
        switch (ks->type) {
        case K_INT: snprintf(range, sizeof range, "int [%.0f, %.0f]", ks->lo, ks->hi); break;
        case K_FLOAT: snprintf(range, sizeof range, "float [%g, %g]", ks->lo, ks->hi); break;
        case K_CHOICE: snprintf(range, sizeof range, "%s", ks->choices); break;
        case K_STRING: snprintf(range, sizeof range, "text"); break;
        case K_WIDTHS: snprintf(range, sizeof range, "list of ints"); break;
        default: snprintf(range, sizeof range, "env name"); break;
        }
        fprintf(f, "  %-10s %-26s default %-10s %s\n", ks->name, range, *ks->def ? ks->def : "\"\"",
                ks->doc);
    }
    fprintf(f, "  env.<name>  parameters of the chosen environment (see: qfleet envs)\n");
}

/* The value of key ks in cfg as text (what `key=` would take back). */
static void format_key(const key_spec *ks, const qf_config *cfg, char *out, size_t len) {
    const char *src = (const char *)cfg + ks->offset;
    if (ks->type == K_INT) {
        int64_t v;
        memcpy(&v, src, sizeof v);
        snprintf(out, len, "%lld", (long long)v);
    } else if (ks->type == K_FLOAT) {
        double v;
        memcpy(&v, src, sizeof v);
        snprintf(out, len, "%.17g", v);
        /* the shortest text that reads back the same double */
        for (int p = 6; p < 17; p++) {
            char t[64];
            snprintf(t, sizeof t, "%.*g", p, v);
            if (strtod(t, NULL) == v) {
                snprintf(out, len, "%s", t);
                break;
            }
        }
    } else if (ks->type == K_ENV) {
        snprintf(out, len, "%s", qf_env_spec_of(cfg->env)->name);
    } else if (ks->type == K_WIDTHS) {
        size_t used = (size_t)snprintf(out, len, "[");
        for (int i = 0; i < cfg->n_hidden && used < len; i++)
            used += (size_t)snprintf(out + used, len - used, "%s%lld", i ? "," : "", (long long)cfg->hidden[i]);
        if (used < len) snprintf(out + used, len - used, "]");
    } else {
        snprintf(out, len, "%s", src);
    }
}

int qf_config_get(const qf_config *cfg, const char *key, char *out, size_t len) {
    if (strncmp(key, "env.", 4) == 0) {
        const qf_param_spec *ps = qf_env_param_find(cfg->env, key + 4);
        if (!ps) return -1;
        if (ps->type == QF_P_LIST) {
            size_t used = (size_t)snprintf(out, len, "[");
            for (int a = 0; a < cfg->env_params.bandit.n_probs && used < len; a++)
                used += (size_t)snprintf(out + used, len - used, "%s%g", a ? "," : "", cfg->env_params.bandit.probs[a]);
            if (used < len) snprintf(out + used, len - used, "]");
        } else {
            snprintf(out, len, "%g", qf_env_param_get(ps, &cfg->env_params));
        }
        return 0;
    }
    const key_spec *ks = find_key(key);
    if (!ks) return -1;
    format_key(ks, cfg, out, len);
    return 0;
}

int qf_config_key_count(void) { return N_KEYS; }
const char *qf_config_key_name(int i) { return i >= 0 && i < N_KEYS ? keys[i].name : NULL; }

void qf_config_print(FILE *f, const qf_config *cfg) {
    for (int k = 0; k < N_KEYS; k++) {
        char v[600];
        format_key(&keys[k], cfg, v, sizeof v);
        fprintf(f, "%s=%s\n", keys[k].name, v);
    }
    const qf_env_spec *es = qf_env_spec_of(cfg->env);
    for (int j = 0; j < es->n_params; j++) {
        const qf_param_spec *ps = &es->params[j];
        fprintf(f, "env.%s=", ps->name);
        if (ps->type == QF_P_LIST) {
            fprintf(f, "[");
            for (int a = 0; a < cfg->env_params.bandit.n_probs; a++)
                fprintf(f, "%s%g", a ? "," : "", cfg->env_params.bandit.probs[a]);
            fprintf(f, "]\n");
        } else {
            fprintf(f, "%g\n", qf_env_param_get(ps, &cfg->env_params));
        }
    }
}
