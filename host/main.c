/* main.c — the qfleet command line: `qfleet <command> [key=value ...]`.
 * Exit codes: 0 success, 1 a runtime failure (a backend or file error), 2 bad input. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* set by CMakeLists.txt for the qfleet target; a build of this file outside it says so */
#ifndef QFLEET_VERSION
#define QFLEET_VERSION "unknown"
#endif
#ifndef QFLEET_BUILD_INFO
#define QFLEET_BUILD_INFO "built outside qfleet's CMake project"
#endif

#include "../kernels/backend.h"
#include "../kernels/cpu/gemm_cpu.h"
#include "bandits.h"
#include "compare.h"
#include "dist.h"
#include "experiment.h"
#include "results.h"
#include "sweep.h"
#include "words.h"
#include "bench.h"
#include "config.h"
#include "solve.h"
#include "infer.h"
#include "train.h"
#include "scaling.h"

static void usage(FILE *f) {
    fprintf(f,
            "qfleet — a fleet of reinforcement-learning agents trained at once on one GPU (or the CPU)\n"
            "\n"
            "usage: qfleet [command] [key=value ...]\n"
            "commands:\n"
            "  (none)        the main job: `compare` with its defaults\n"
            "  compare       exploration strategies side by side on DeepSea (explorers=, sizes=, episodes=,\n"
            "                seeds=): table of solved fraction, episodes to solve, regret; results + plot\n"
            "  envs          list the environments, their shapes and parameters\n"
            "  bench envs    env-steps/s per environment for envs = 1k .. 1M (env= picks one)\n"
            "  bench train   env-steps/s and updates/s of fleets of 1, 16, 256, 4096 runs\n"
            "  bench explore cost per run-step of every exploration strategy vs epsilon (1, 64, 1024 runs;\n"
            "                bootstrap at K = 1, 10, 40 heads)\n"
            "  bench irl     MaxEnt IRL iterations/s on gridworld 16x16 and 32x32 for 1, 64, 1024 problems\n"
            "  solve         exact soft/hard optimal values on deep_sea, chain, bandit, gridworld: V*(s0) (value iteration; one backward pass on the layered deep_sea and bandit)\n"
            "  infer         control as inference (finite horizon): V(s0) under the inference and the variational\n"
            "                backup, optimism gap, marginals.csv, visitation heat map (temperatures=, horizon=)\n"
            "  irl           MaxEnt IRL with known dynamics, one problem per (env seed, lr, demo count, seed):\n"
            "                demo log-likelihood, feature gap, true regret (demos=, lrs=, iters=, demos_file=)\n"
            "  train         train one fleet of runs by soft Q-learning; results in a folder\n"
            "                (params.npy + params.json); --load DIR/params.npy starts from them, steps=0\n"
            "                only evaluates them greedily (eval_episodes=)\n"
            "  sweep         a hyperparameter sweep: key=a,b,c grids, key=loguniform(lo,hi) with trials=N,\n"
            "                seeds=N; runs of equal shapes share fleets; derived keys lr=2e-4*heads;\n"
            "                conditional axes explore=epsilon,bootstrap{heads=1,2;prior_scale=0,3};\n"
            "                prune=M stops a column of sizes after M cells without a converged seed\n"
            "  fit DIR       the scaling law P = 1 - (1 - psi^n)^K fitted per method (BDQN, RP-BDQN) to a\n"
            "                sweep's runs.csv: psi and its 95%% interval (level=), fit.csv, cells.csv\n"
            "  (every command with a results folder) --resume DIR: go on after a stop (Ctrl-C, a kill,\n"
            "                a crash); --overwrite: replace a folder's results; (train, compare, sweep)\n"
            "                --dry-run: plan only; --quiet\n"
            "  (any command) file.yaml arguments: the same keys as key=value words, which override them\n"
            "  bandits       bandit strategies (epsilon, ucb1, thompson, boltzmann) over envs= instances\n"
            "                each, one fleet: pseudo-regret table and curves (env=bandit)\n"
            "  help [keys]   this text / the key table, grouped by the commands that use each key\n"
            "                (also --help, -h); --version: the version and how this binary was built\n"
            "  help COMMAND  the keys of one command (e.g. qfleet help train, qfleet help bench envs)\n"
            "\n");
    qf_config_print_keys(f, QF_CMD_ALL);
    fprintf(f, "\nexamples:\n  qfleet envs\n  qfleet bench envs env=cartpole backend=cpu max_envs=65536\n"
               "  qfleet bandits env.probs=[0.9,0.8,0.7] envs=4096 steps=10000\n");
}

static void list_envs(void) {
    for (int k = 0; k < QF_ENV_COUNT; k++) {
        const qf_env_spec *s = qf_env_spec_of(k);
        qf_env_params p;
        qf_env_params_default(k, &p);
        qf_env_params_check(k, &p, NULL, 0);
        int ns = qf_env_n_states(k, &p), h = qf_env_horizon(k, &p);
        printf("%s — %s\n", s->name, s->doc);
        printf("  observation %d floats%s, %d actions, ", qf_env_obs_dim(k, &p),
               ns ? " (or a state index)" : "", qf_env_n_actions(k, &p));
        if (ns) printf("%d states, ", ns);
        if (h)
            printf("truncated after %d steps\n", h);
        else
            printf("episodes end by termination\n");
        for (int j = 0; j < s->n_params; j++) {
            const qf_param_spec *ps = &s->params[j];
            char range[64], def[32];
            static const char *tn[] = {"int", "float", "bool", "list"};
            const char *doc = ps->doc;
            if (ps->type == QF_P_LIST)
                snprintf(range, sizeof range, "list of [%g, %g]", ps->lo, ps->hi);
            else if (ps->type == QF_P_CHOICE)
                qf_env_choice_names(ps, range, sizeof range);
            else
                snprintf(range, sizeof range, ps->type == QF_P_INT ? "%s [%.0f, %.0f]" : "%s [%g, %g]", tn[ps->type],
                         ps->lo, ps->hi);
            if (ps->type == QF_P_LIST)
                snprintf(def, sizeof def, "(drawn)");
            else if (ps->type == QF_P_CHOICE) {
                qf_env_param_format(ps, &p, def, sizeof def);
                doc = strstr(doc, ": ") + 2; /* the names are in the range column */
            } else
                snprintf(def, sizeof def, "%g", ps->def);
            printf("  env.%-12s %-22s default %-8s %s\n", ps->name, range, def, doc);
        }
    }
}

/* The options (--flags) of a command, for its help. */
/* One line on what a command does, before its options and keys (`qfleet help COMMAND`). */
static void print_what(const char *cmd) {
    static const char *what[][2] = {
        {"train", "train one fleet of runs by soft Q-learning; results in a folder (runs.csv, curves.csv, params.npy)"},
        {"compare", "exploration strategies side by side on DeepSea: solved seeds, episodes to solve, regret"},
        {"main", "the main job: `qfleet compare` with its defaults"},
        {"sweep", "a hyperparameter sweep packed into fleets: grids, random search, seeds, derived keys, "
                  "conditional axes, prune="},
        {"solve", "exact soft/hard optimal values on deep_sea, chain, bandit, gridworld: V*(s0) (value iteration; one backward pass on the layered deep_sea and bandit)"},
        {"infer", "control as inference (finite horizon): backward/forward messages, optimism gap, visitation"},
        {"irl", "MaxEnt inverse RL with known dynamics, one problem per (env seed, lr, demo count, seed)"},
        {"bandits", "bandit strategies (epsilon, ucb1, thompson, boltzmann) over envs= instances each"},
        {"bench envs", "env-steps/s per environment for envs = 1k .. 1M"},
        {"bench train", "env-steps/s and updates/s of fleets of 1, 16, 256, 4096 runs"},
        {"bench explore", "cost per run-step of every exploration strategy relative to epsilon-greedy"},
        {"bench irl", "MaxEnt IRL iterations/s on gridworld 16x16 and 32x32 for 1, 64, 1024 problems"},
    };
    for (size_t i = 0; i < sizeof what / sizeof what[0]; i++)
        if (strcmp(cmd, what[i][0]) == 0) printf("qfleet %s: %s\n\n", strcmp(cmd, "main") == 0 ? "(no command)" : cmd, what[i][1]);
}

static void print_options(const char *cmd) {
    print_what(cmd);
    if (strcmp(cmd, "train") == 0 || strcmp(cmd, "compare") == 0 || strcmp(cmd, "sweep") == 0 || strcmp(cmd, "main") == 0)
        printf("options: --resume DIR (go on after a stop), --overwrite (replace a folder's results), --dry-run "
               "(plan only), --quiet (no progress line)%s\n\n", strcmp(cmd, "train") == 0 ? ", --load FILE "
               "(start from exported parameters; with steps=0, evaluate them)" : "");
    else if (strcmp(cmd, "bandits") == 0 || strcmp(cmd, "infer") == 0 || strcmp(cmd, "irl") == 0)
        printf("options: --resume DIR (go on after a stop), --overwrite (replace a folder's results)\n\n");
}

static int open_backend(const qf_config *cfg, qf_backend **out) {
    char err[512];
    long threads = (long)cfg->threads;
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0 && threads > 4 * cores) { /* thousands of OpenMP threads on a few cores stall every step */
        fprintf(stderr, "qfleet: warning: threads=%ld on %ld cores: capped at %ld (4 per core)\n", threads, cores,
                4 * cores);
        threads = 4 * cores;
    }
    qf_cpu_set_threads((int)threads);
    const char *name = qf_config_choice_name("backend", cfg->backend);
    *out = qf_backend_open(name, err, sizeof err);
    if (!*out) {
        fprintf(stderr, "qfleet: backend=%s cannot be used: %s\n", name, err);
        return 1;
    }
    return 0;
}

static int run_main(int argc, char **argv, const qf_dist *dist) {
    const char *cmd = argc > 1 ? argv[1] : "";
    { /* QFLEET_CPU_ISA (the CPU GEMMs' variant, kernels/cpu/gemm_cpu.h): refused before anything runs */
        char err[256];
        if (qf_cpu_gemm_isa_checked(err, sizeof err) < 0) {
            fprintf(stderr, "qfleet: %s\n", err);
            return 2;
        }
    }
    int first_key = 2;
    if (strcmp(cmd, "--version") == 0) {
        printf("qfleet %s (%s)\n", QFLEET_VERSION, QFLEET_BUILD_INFO);
        return 0;
    }
    if (strchr(cmd, '=') || (strncmp(cmd, "--", 2) == 0 && strcmp(cmd, "--help") != 0)) {
        /* `qfleet key=value ...`, `qfleet --resume DIR`: the main job */
        cmd = "";
        first_key = 1;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        /* help | help keys | help COMMAND | help keys COMMAND (COMMAND may be two words: bench envs) */
        int at = 2;
        const int keys = argc > at && strcmp(argv[at], "keys") == 0;
        at += keys;
        char topic[64] = "";
        for (int i = at; i < argc && i < at + 2; i++)
            snprintf(topic + strlen(topic), sizeof topic - strlen(topic), "%s%.20s", i > at ? " " : "", argv[i]);
        if (!keys && strcmp(topic, "envs") == 0 && argc == at + 1) { /* no keys: what it prints */
            printf("qfleet envs: lists every environment with its observation and action shapes and its env.* "
                   "parameters (no keys)\n");
            return 0;
        }
        if (!keys && strcmp(topic, "fit") == 0 && argc == at + 1) { /* not a key command: its own usage */
            char help_word[] = "--help";
            char *fit_argv[] = {help_word, NULL};
            return qf_cmd_fit(1, fit_argv);
        }
        const unsigned c = topic[0] ? qf_config_command(strcmp(topic, "main") == 0 ? "compare" : topic) : QF_CMD_ALL;
        if (!c || argc > at + (strncmp(topic, "bench ", 6) == 0 ? 2 : topic[0] ? 1 : 0)) {
            fprintf(stderr, "qfleet: help: unknown topic '%s' (allowed: qfleet help, help keys, help COMMAND with "
                            "COMMAND one of train, sweep, compare, solve, infer, irl, bandits, fit, envs, bench envs, bench "
                            "train, bench explore, bench irl)\n", argc > at ? argv[at] : "");
            return 2;
        }
        if (keys || c != QF_CMD_ALL) {
            if (topic[0]) print_options(topic);
            qf_config_print_keys(stdout, c);
        }
        else
            usage(stdout);
        return 0;
    }
    for (int i = 2; i < argc; i++) /* `qfleet train --help`: that command's keys and options */
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            const unsigned c = qf_config_command(strcmp(cmd, "bench") == 0 && argc > 2 && strcmp(argv[2], "--help") != 0
                                                     ? (strcmp(argv[2], "envs") == 0 ? "bench envs" : strcmp(argv[2], "train") == 0 ? "bench train"
                                                        : strcmp(argv[2], "explore") == 0 ? "bench explore" : "bench irl")
                                                     : cmd);
            if (!c) break; /* not a command: the usual message below */
            print_options(cmd);
            qf_config_print_keys(stdout, c);
            return 0;
        }
    if (strcmp(cmd, "fit") == 0) return dist->rank == 0 ? qf_cmd_fit(argc - 2, argv + 2) : 0;
    if (strcmp(cmd, "envs") == 0) {
        if (argc > 2) {
            fprintf(stderr, "qfleet: envs takes no arguments (got '%s')\n", argv[2]);
            return 2;
        }
        list_envs();
        return 0;
    }
    int is_bench = strcmp(cmd, "bench") == 0, is_solve = strcmp(cmd, "solve") == 0;
    int is_train = strcmp(cmd, "train") == 0, is_bandits = strcmp(cmd, "bandits") == 0;
    int is_compare = strcmp(cmd, "compare") == 0 || cmd[0] == 0, is_sweep = strcmp(cmd, "sweep") == 0;
    int is_infer = strcmp(cmd, "infer") == 0, is_irl = strcmp(cmd, "irl") == 0;
    if (is_bench) {
        if (argc < 3 || (strcmp(argv[2], "envs") != 0 && strcmp(argv[2], "train") != 0 &&
                         strcmp(argv[2], "explore") != 0 && strcmp(argv[2], "irl") != 0)) {
            fprintf(stderr, "qfleet: unknown benchmark '%s' (allowed: bench envs, bench train, bench explore, bench irl)\n",
                    argc > 2 ? argv[2] : "");
            return 2;
        }
        first_key = 3;
    } else if (!is_compare && !is_solve && !is_train && !is_bandits && !is_sweep && !is_infer && !is_irl) {
        fprintf(stderr, "qfleet: unknown command '%s' (allowed: envs, bench envs|train|explore|irl, solve, infer, irl, train, sweep, fit, "
                        "bandits, compare, help; or none for "
                        "the main job)\n", cmd);
        return 2;
    }

    if (dist->size > 1 && !is_sweep && !is_compare) {
        if (dist->rank == 0)
            fprintf(stderr, "qfleet: under mpirun only `qfleet sweep` and `qfleet compare` are split across ranks; run %s "
                            "alone\n", cmd);
        return 2;
    }
    qf_config cfg;
    qf_config_default(&cfg);
    char msg[1024];
    /* words: YAML files expanded in place, each word knowing where it came from */
    qf_words ws;
    memset(&ws, 0, sizeof ws);
    if (qf_words_collect(&ws, argc - first_key, argv + first_key, msg, sizeof msg)) {
        fprintf(stderr, "qfleet: %s\n", msg);
        qf_words_free(&ws);
        return 2;
    }
    char bench_name[32];
    snprintf(bench_name, sizeof bench_name, "bench %s", is_bench ? argv[2] : "");
    unsigned cmd_bit = is_bench ? qf_config_command(bench_name) : is_compare ? QF_CMD_COMPARE : qf_config_command(cmd);
    /* a key the command does not use is refused (compare checks its words itself, after its own hints) */
    for (int i = 0; i < ws.n && !is_compare; i++)
        if (qf_config_key_for_command(ws.w[i].text, cmd_bit, msg, sizeof msg)) {
            fprintf(stderr, "qfleet: %s: %s\n", ws.w[i].origin, msg);
            qf_words_free(&ws);
            return 2;
        }
    if (ws.load[0] && !is_train) {
        fprintf(stderr, "qfleet: --load FILE belongs to `qfleet train`\n");
        qf_words_free(&ws);
        return 2;
    }
    const int is_runner = is_train || is_compare || is_sweep;
    if ((ws.dry_run || ws.quiet) && !is_runner) {
        fprintf(stderr, "qfleet: --dry-run and --quiet belong to train, compare and sweep\n");
        qf_words_free(&ws);
        return 2;
    }
    if (ws.overwrite && !is_runner && !is_bandits && !is_infer && !is_irl) {
        fprintf(stderr, "qfleet: --overwrite belongs to the commands that write a results folder (train, compare, "
                        "sweep, bandits, infer, irl)\n");
        qf_words_free(&ws);
        return 2;
    }
    if (ws.resume[0] && !is_runner && !is_bandits && !is_infer && !is_irl) {
        fprintf(stderr, "qfleet: --resume belongs to the commands that write a results folder (train, compare, sweep, "
                        "bandits, infer, irl)\n");
        qf_words_free(&ws);
        return 2;
    }
    if (ws.resume[0] && ws.load[0]) {
        fprintf(stderr, "qfleet: --resume continues a folder as it was started (its --load, if any, is recorded in "
                        "it): give --resume alone\n");
        qf_words_free(&ws);
        return 2;
    }
    if (ws.resume[0] && ws.overwrite) {
        fprintf(stderr, "qfleet: --resume continues a folder and --overwrite replaces it: give one of them\n");
        qf_words_free(&ws);
        return 2;
    }
    if (ws.resume[0]) { /* the experiment is the one saved in DIR/run.words */
        if (ws.n) {
            fprintf(stderr, "qfleet: --resume DIR continues the experiment saved in DIR; it takes no other keys (got "
                            "'%s')\n", ws.w[0].text);
            qf_words_free(&ws);
            return 2;
        }
        char saved[32];
        if (qf_experiment_read_words(ws.resume, saved, sizeof saved, &ws, msg, sizeof msg)) {
            fprintf(stderr, "qfleet: %s\n", msg);
            qf_words_free(&ws);
            return 2;
        }
        const int given = cmd[0] != 0;
        if (strcmp(saved, "train") != 0 && strcmp(saved, "compare") != 0 && strcmp(saved, "sweep") != 0 &&
            strcmp(saved, "bandits") != 0 && strcmp(saved, "infer") != 0 && strcmp(saved, "irl") != 0) {
            fprintf(stderr, "qfleet: %s/run.words names the command '%s'; only train, compare, sweep, bandits, infer "
                            "and irl resume\n",
                    ws.resume, saved);
            qf_words_free(&ws);
            return 2;
        }
        if (given && strcmp(saved, is_compare ? "compare" : cmd) != 0) {
            fprintf(stderr, "qfleet: %s holds an experiment of `qfleet %s`, not of `qfleet %s` (resume it with qfleet %s --resume "
                            "%s)\n", ws.resume, saved, is_compare ? "compare" : cmd, saved, ws.resume);
            qf_words_free(&ws);
            return 2;
        }
        is_bandits = strcmp(saved, "bandits") == 0;
        is_infer = strcmp(saved, "infer") == 0;
        is_irl = strcmp(saved, "irl") == 0;
        is_train = strcmp(saved, "train") == 0;
        is_sweep = strcmp(saved, "sweep") == 0;
        is_compare = strcmp(saved, "compare") == 0;
        cmd_bit = is_compare ? QF_CMD_COMPARE : qf_config_command(saved);
    }
    char **texts = (char **)malloc(sizeof(char *) * (size_t)(ws.n + 1));
    if (!texts) {
        qf_words_free(&ws);
        return 1;
    }
    int env_given = 0;
    for (int i = 0; i < ws.n; i++) {
        texts[i] = ws.w[i].text;
        env_given |= strncmp(ws.w[i].text, "env=", 4) == 0;
    }
    int bad = 0;
    if (is_compare) {
        bad = qf_compare_config(ws.n, texts, &cfg);
    } else if (is_sweep) {
        bad = qf_sweep_check(&ws, &cfg);
    } else if (is_bandits) {
        /* bandits: env=bandit and envs=4096 unless given (the user's words come after, so they win) */
        qf_words bw;
        memset(&bw, 0, sizeof bw);
        qf_words_add(&bw, "env=bandit", "bandits default");
        qf_words_add(&bw, "envs=4096", "bandits default");
        for (int i = 0; i < ws.n; i++) qf_words_add(&bw, ws.w[i].text, ws.w[i].origin);
        if (qf_config_from_words(&cfg, &bw, msg, sizeof msg) || qf_bandits_check(&cfg, msg, sizeof msg) ||
            qf_config_check(&cfg, cmd_bit, msg, sizeof msg)) {
            fprintf(stderr, "qfleet: %s\n", msg);
            bad = 2;
        }
        qf_words_free(&bw);
    } else if (qf_config_from_words(&cfg, &ws, msg, sizeof msg) || qf_config_check(&cfg, cmd_bit, msg, sizeof msg)) {
        fprintf(stderr, "qfleet: %s\n", msg);
        bad = 2;
    }
    if (!bad && is_train && cfg.steps == 0 && !ws.load[0]) {
        fprintf(stderr, "qfleet: steps=0 trains nothing: with --load DIR/params.npy it evaluates the loaded networks "
                        "(allowed otherwise: steps >= 1)\n");
        bad = 2;
    }
    if (bad) {
        free(texts);
        qf_words_free(&ws);
        return bad;
    }

    qf_backend *b = NULL;
    int rc = 1;
    if (open_backend(&cfg, &b) == 0 && cfg.cuda_graphs == QF_GRAPHS_ON && b->kind == QF_BACKEND_CPU) {
        /* backend=auto fell back to the CPU: refused here, before any plan or folder */
        fprintf(stderr, "qfleet: cuda_graphs=on replays CUDA graphs, but the backend is the cpu (no usable GPU): set "
                        "cuda_graphs=auto or off\n");
        qf_backend_close(b);
        free(texts);
        qf_words_free(&ws);
        return 2;
    } else if (b) {
        if (is_infer || is_irl)
            rc = is_infer ? qf_cmd_infer(&cfg, &ws, b) : qf_cmd_irl(&cfg, &ws, b);
        else if (is_solve || is_train || is_bandits)
            rc = is_solve ? qf_cmd_solve(&cfg, b) : is_train ? qf_cmd_train(&cfg, &ws, b) : qf_cmd_bandits(&cfg, &ws, b);
        else if (is_compare || is_sweep)
            rc = is_compare ? qf_cmd_compare(&ws, &cfg, b, dist) : qf_cmd_sweep(&ws, b, dist);
        else
            rc = strcmp(argv[2], "irl") == 0       ? qf_bench_irl(&cfg, b)
                 : strcmp(argv[2], "train") == 0   ? qf_bench_train(&cfg, b)
                 : strcmp(argv[2], "explore") == 0 ? qf_bench_explore(&cfg, b)
                                                   : qf_bench_envs(&cfg, env_given ? cfg.env : -1, b);
        qf_backend_close(b);
    }
    free(texts);
    qf_words_free(&ws);
    return rc;
}

int main(int argc, char **argv) {
    qf_dist dist;
    qf_dist_init(&dist, &argc, &argv); /* MPI only when launched by mpirun */
    const int rc = run_main(argc, argv, &dist);
    qf_dist_finalize(&dist);
    return rc;
}
