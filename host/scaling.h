/* scaling.h — the bootstrapped-DQN scaling study (Knyazhitskiy 2025, "A Unified Scaling Law for
 * Bootstrapped DQNs"; repository knyazer/bootstrapped-dqn-scaling): the adaptive grid's prune rule
 * and the fit of its law
 *
 *     P(convergence | K heads, DeepSea size n) = 1 - (1 - psi^n)^K
 *
 * (each of K heads independently finds the treasure with probability psi^n; the run converges when
 * one does). psi is fitted per method (BDQN: prior_scale = 0, RP-BDQN: prior_scale > 0) by binomial
 * maximum likelihood over the (K, n) cells of a results folder, with the profile-likelihood
 * interval {psi : 2 (l(psi_hat) - l(psi)) <= chi2_1(level)} (Wilks' theorem). `qfleet fit DIR`
 * prints the fits and writes DIR/fit.csv and DIR/cells.csv (scripts/plot_scaling.py draws them). */
#ifndef QF_SCALING_H
#define QF_SCALING_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the prune rule (sweep's prune=M) ------------------------------------------------------------- */

/* Outcome of a cell (all seeds of one point): */
enum { QF_CELL_UNKNOWN = -1, QF_CELL_FAILED = 0, QF_CELL_SUCCESS = 1, QF_CELL_PRUNED = 2 };

/* Whether the next cell of a column is pruned, given the outcomes of the column's cells before it
 * (outcome[0..n), sizes increasing): yes when m consecutive cells ending at the last one failed (no
 * seed converged), or when the last one was pruned; an unknown cell counts as not failed (the cell
 * is trained). m <= 0: never. The study stops a column after 3 cells without success. */
int qf_prune_next(const int *outcome, int n, int m);

/* ---- the law and its fit ----------------------------------------------------------------------------- */

typedef struct qf_cell {
    double heads, size;   /* K, n */
    double runs, success; /* seeds trained, seeds converged (0 <= success <= runs) */
} qf_cell;

/* P(convergence) = 1 - (1 - psi^n)^K, for psi in [0, 1]. */
double qf_scaling_p(double psi, double heads, double size);

/* Binomial log-likelihood of psi over the cells (without the binomial coefficients): sum of
 * s log P + (t - s) log(1 - P); -INFINITY where a cell's data are impossible (s > 0 at P = 0). */
double qf_scaling_loglik(const qf_cell *cells, int n, double psi);

/* Maximum-likelihood psi over [0, 1] and its profile-likelihood interval [lo, hi] at `level` (e.g.
 * 0.95: chi2_1 quantile 3.8415). 0, or -1 when the cells hold no run. The likelihood is maximized
 * on a grid of 4001 points refined by golden-section search; the interval's ends by bisection to
 * 1e-9. */
int qf_scaling_fit(const qf_cell *cells, int n, double level, double *psi, double *lo, double *hi, double *loglik);

/* The size n at which P(convergence) = p for K heads: log(1 - (1 - p)^(1/K)) / log(psi). */
double qf_scaling_frontier(double psi, double heads, double p);

/* `qfleet fit DIR [level=0.95]`: read DIR/runs.csv (explore=bootstrap runs; K from the heads
 * column or config.txt, n from env.size likewise; converged: episodes_to_converge given; pruned
 * and failed runs left out), fit psi per method, print the table, write DIR/fit.csv and
 * DIR/cells.csv. Returns the exit code (2: bad input with one line printed). */
int qf_cmd_fit(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
