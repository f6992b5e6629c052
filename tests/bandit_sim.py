#!/usr/bin/env python3
"""bandit_sim.py — an independent simulation of the bandit strategies of `qfleet bandits`, written
outside the product (numpy, its own RNG, float64), for tests/test_bandits.cc to compare against.

Same strategies, written the straightforward way:
  epsilon    pull every arm once, then w.p. eps a uniform arm, else argmax of the empirical mean
  ucb1       pull every arm once, then argmax mean_a + sqrt(2 ln t / n_a) (t = pulls so far)
  thompson   argmax of theta_a ~ Beta(1 + s_a, 1 + f_a) (numpy's beta sampler), no initial pulls
  boltzmann  pull every arm once, then an arm drawn from softmax(mean / temp) (inverse CDF)
Ties between equal values are broken uniformly at random. Rewards are Bernoulli(mu_a).

Prints CSV on stdout: strategy,step,mean_regret,stderr_regret, where regret is the pseudo-regret
sum_t (mu* - mu_{a_t}) of each instance and the standard error is across instances.

usage: bandit_sim.py --probs 0.9,0.8,0.7 --steps 10000 --instances 2048 --checkpoints 100,1000,10000
                     [--strategies epsilon,ucb1,thompson,boltzmann] [--eps 0.1] [--temp 0.1] [--seed 1]
"""
import argparse
import sys

import numpy as np


def argmax_random_ties(vals, rng):
    """Row-wise argmax of vals (E, K), ties broken uniformly at random."""
    best = vals.max(axis=1, keepdims=True)
    noise = rng.random(vals.shape) * (vals == best)
    return noise.argmax(axis=1)


def simulate(strategy, mu, steps, n_inst, checkpoints, eps, temp, rng):
    K = len(mu)
    gap = mu.max() - mu
    n = np.zeros((n_inst, K), dtype=np.int64)
    s = np.zeros((n_inst, K), dtype=np.int64)
    regret = np.zeros(n_inst)
    rows = np.arange(n_inst)
    out = []
    want = set(checkpoints)
    for t in range(steps):
        if strategy != "thompson" and t < K:
            # every instance has pulled arms 0..t-1 once: the next untried arm is t
            arm = np.full(n_inst, t)
        else:
            mean = s / np.maximum(n, 1)
            if strategy == "epsilon":
                greedy = argmax_random_ties(mean, rng)
                explore = rng.random(n_inst) < eps
                arm = np.where(explore, rng.integers(0, K, size=n_inst), greedy)
            elif strategy == "ucb1":
                arm = argmax_random_ties(mean + np.sqrt(2.0 * np.log(t) / n), rng)
            elif strategy == "thompson":
                arm = argmax_random_ties(rng.beta(1.0 + s, 1.0 + n - s), rng)
            elif strategy == "boltzmann":
                z = mean / temp
                p = np.exp(z - z.max(axis=1, keepdims=True))
                cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
                u = rng.random(n_inst)[:, None]
                arm = np.minimum((u >= cum).sum(axis=1), K - 1)
            else:
                raise ValueError(strategy)
        reward = rng.random(n_inst) < mu[arm]
        n[rows, arm] += 1
        s[rows, arm] += reward
        regret += gap[arm]
        if t + 1 in want:
            out.append((t + 1, regret.mean(), regret.std(ddof=1) / np.sqrt(n_inst)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--probs", required=True, help="arm means, comma-separated")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--instances", type=int, required=True)
    ap.add_argument("--checkpoints", required=True, help="steps at which to report, comma-separated")
    ap.add_argument("--strategies", default="epsilon,ucb1,thompson,boltzmann")
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--temp", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    mu = np.array([float(x) for x in a.probs.split(",")])
    checkpoints = sorted({int(x) for x in a.checkpoints.split(",")})
    rng = np.random.default_rng(a.seed)
    w = sys.stdout.write
    w("strategy,step,mean_regret,stderr_regret\n")
    for strategy in a.strategies.split(","):
        for step, m, se in simulate(strategy, mu, a.steps, a.instances, checkpoints, a.eps, a.temp, rng):
            w(f"{strategy},{step},{m:.9g},{se:.9g}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
