/* sweep.h — `qfleet sweep [file.yaml ...] [key=value ...] [--dry-run] [--quiet]`.
 *
 * Axes: `key=a,b,c` (a grid; commas inside [] or () do not split, so `env.probs=[0.9,0.8]` is one
 * value), `key=uniform(lo,hi)`, `key=loguniform(lo,hi)`, `key=choice(a,b,...)` (random search, drawn
 * `trials` times from the seed). Points = the grid's product x trials; each point runs `seeds`
 * seeds. Points whose configurations differ only in per-run hyperparameters (learning rate,
 * discount, temperature, exploration strategy and its settings, ...) share a fleet; fleets are sized
 * to the device memory (and max_runs) and run one after another. Results: one folder with
 * config.txt, runs.csv (a row per run: hyperparameters, status, final metrics, exploration
 * statistics), curves.csv (long format: run, name, step, env_steps, metric, value) and summary.md
 * (the table that is also printed). --dry-run prints the fleets, runs per fleet, bytes per run and an
 * estimated time, and trains nothing.
 *
 * Conditional axes: `key=a,b{k2=x,y;k3=z}` sweeps k2 and k3 only in the points where key=b (nested
 * to any depth; a grid value only). Derived keys (`lr=2e-4*heads`, words.c and expr.h) are
 * evaluated per point. prune=M (deep_sea): the points are ordered by env.size, and a point whose
 * column (the points equal but for env.size) had M consecutive smaller sizes without a converged
 * seed is not trained (status pruned; scaling.h's qf_prune_next). */
#ifndef QF_SWEEP_H
#define QF_SWEEP_H
#include "../kernels/backend.h"
#include "words.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qf_dist; /* dist.h: which rank of how many */

/* Expand and check the sweep; cfg receives the configuration of its first point (for the backend).
 * Returns 0, or 2 after printing one line naming the origin, the key and the problem. */
int qf_sweep_check(const qf_words *ws, qf_config *cfg);

/* Run (or with ws->dry_run, plan) the sweep on backend b; returns the exit code. */
int qf_cmd_sweep(const qf_words *ws, qf_backend *b, const struct qf_dist *d);

#ifdef __cplusplus
}
#endif
#endif
