/* infer.h — control as inference on tabular environments: finite-horizon backward and forward
 * messages in log space, batched over runs (one run = one problem: its env parameters and key, its
 * temperature, its reward). Interface fixed here; per-element math: kernels/infer_ops.h;
 * implementations: kernels/cpu/infer_cpu.c (the reference), kernels/cuda/infer_cuda.cu.
 *
 * Sources: S. Levine, "Reinforcement Learning and Control as Probabilistic Inference: Tutorial
 * and Review" (2018), sections 2-3 (backward messages, the optimism of the inference backup, the
 * variational backup = soft value iteration); B. Ziebart, "Modeling Purposeful Adaptive Behavior
 * with the Principle of Maximum Causal Entropy" (PhD thesis, 2010) for the causal (variational)
 * model and its feature expectations used by MaxEnt IRL (host/irl.c).
 *
 * The problem of run r: steps t = 0 .. T-1 from a start distribution, reward r(s, a) (the env's,
 * per outcome, or reward[r][s][a] when given), temperature alpha_r > 0, optimality variables
 * p(O_t = 1 | s, a) = exp(r(s, a) / alpha). In reward units (V = alpha * log beta):
 *   V_T(s) = 0
 *   variational backup: Q_t(s, a) = sum_o p_o (r_o + [not terminal_o] V_{t+1}(s'_o))
 *   inference backup:   Q_t(s, a) = alpha log sum_o p_o exp((r_o + [not terminal_o] V_{t+1}(s'_o)) / alpha)
 *   V_t(s) = alpha log sum_a exp(Q_t(s, a) / alpha),  pi_t(a | s) = exp((Q_t(s, a) - V_t(s)) / alpha)
 * log beta_t(s, a) = Q_t(s, a) / alpha and log beta_t(s) = V_t(s) / alpha are the backward
 * messages; V_0(s0) / alpha is the log-partition log Z = log sum over trajectories of
 * prod p(s'|s,a) exp(r / alpha) (inference backup; uniform improper action prior, as in the
 * tutorial). A state without transitions (DeepSea's null state) has V = 0; an episode that
 * terminates leaves the problem (its later steps contribute nothing). With the variational backup
 * and T -> infinity V_0 is soft value iteration's V* at gamma = 1 (kernels/solve_ops.h shares the
 * code). Inference >= variational (Jensen), equal when the dynamics are deterministic.
 *
 * Forward: the state marginals p(s_t | O_0:T-1) proportional to alpha_t(s) beta_t(s) (forward
 * message times backward message), computed normalized by running the posterior forward: under
 * the inference backup the posterior policy is pi_t and the posterior dynamics are
 * p_o exp((r_o + V_{t+1}(s'_o) - Q_t(s, a)) / alpha) (the outcome weights of Q's log-sum-exp);
 * under the variational backup the dynamics stay p_o. So the marginals never overflow, whatever
 * the reward scale. Their sum over s at time t is the probability of not having terminated. With
 * a start distribution d0 the inference backup's posterior also moves the start:
 * p(s_0 | O) proportional to d0(s_0) beta_0(s_0); the variational backup keeps d0. */
#ifndef QF_INFER_H
#define QF_INFER_H
#include "../envs/envs.h"

enum { QF_BACKUP_VARIATIONAL = 0, QF_BACKUP_INFERENCE = 1 };

typedef struct qf_infer_problem {
    int32_t kind;
    int32_t R;                   /* independent problems, one per run                             */
    const qf_env_params *params; /* [R] on the backend's memory                                    */
    const uint32_t *keys;        /* [R][2] run keys (DeepSea per-run mappings, bandit means)       */
    const double *alpha;         /* [R] temperature > 0 (finite)                                   */
    const double *reward;        /* [R][S][A] reward replacing the env's, or NULL (env rewards)    */
    int32_t n_states, n_actions; /* shared by all runs (qf_env_n_states / qf_env_n_actions)        */
    int32_t T;                   /* horizon: steps 0 .. T-1 (>= 1)                                 */
    int32_t backup;              /* QF_BACKUP_VARIATIONAL or QF_BACKUP_INFERENCE                   */
} qf_infer_problem;

/* Demonstration steps of every run, flat: run r owns steps [offset[r], offset[r+1]). Step j is
 * (t[j], state[j], action[j]); a demonstration is a run of steps with t = 0, 1, 2, ... */
typedef struct qf_demo_steps {
    const int32_t *offset; /* [R + 1] */
    const int32_t *t, *state, *action; /* [offset[R]] */
} qf_demo_steps;

#endif /* QF_INFER_H */
