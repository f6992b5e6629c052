/* compare.h — `qfleet compare` (and the main job): exploration strategies side by side on DeepSea.
 * For each size N, one fleet holds every strategy x seed as its runs (the strategy is a per-run
 * hyperparameter), trained for `episodes` episodes; the table reports, per strategy and size, the
 * fraction of seeds that solved (bsuite's criterion: bad episodes / episodes < solved_threshold,
 * 0.9 as in bsuite 0.3.6, at an episode < 2^N + 100), the median episodes to solve and the mean
 * cumulative regret. Results: config.txt,
 * runs.csv, curves.csv, summary.md and scaling.svg in one folder. */
#ifndef QF_COMPARE_H
#define QF_COMPARE_H
#include "../kernels/backend.h"
#include "config.h"
#include "words.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The words every comparison starts from, before each strategy's own words and the user's. */
extern const char *const qf_compare_defaults[];
extern const int qf_compare_n_defaults;

/* Parse the user's words over the comparison defaults into cfg and check them (sizes, explorers,
 * env). Returns 0, or 2 after printing one line that says what is wrong. */
int qf_compare_config(int argc, char **argv, qf_config *cfg);

/* Run the comparison with the user's words (argc, argv) on backend b; returns the exit code. */
struct qf_dist; /* dist.h: which rank of how many (its fleets, one per size, are split across ranks) */
int qf_cmd_compare(const qf_words *ws, const qf_config *cfg, qf_backend *b, const struct qf_dist *d);

#ifdef __cplusplus
}
#endif
#endif
