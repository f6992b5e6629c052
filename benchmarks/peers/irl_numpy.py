#!/usr/bin/env python3
"""irl_numpy.py N [T] [seconds] — an independent numpy implementation of one MaxEnt IRL (maximum
causal entropy) iteration on an objectworld-style gridworld of the same shapes as `qfleet bench irl`
(N x N cells, 5 actions, slip 0.3, 16 objects of 2 colours, 6 distance features, horizon T, alpha 1),
one problem at a time, the way tabular MCE IRL is usually written in numpy (a dense transition
matrix P[s*a, s'], as in the `imitation` library's tabular MCE IRL). Prints problem-iterations/s.

Written for the benchmark from the equations (Ziebart 2010), not from any implementation:
  backward  Q_t = r + P V_{t+1};  V_t = alpha logsumexp(Q_t / alpha);  pi_t = exp((Q_t - V_t) / alpha)
  forward   D_0 = start;  D_{t+1}(s') = sum_{s,a} D_t(s) pi_t(a|s) P(s'|s,a)
  gradient  (mu_demo - sum_t sum_{s,a} D_t(s) pi_t(a|s) f(s,a)) / alpha;  Adam on psi
The object placement uses numpy's generator, so the map differs from qfleet's; the work per
iteration depends only on the shapes.
"""
import sys
import time

import numpy as np


def gridworld(n, slip, objects, colours, dist, rng):
    S, A = n * n, 5
    P = np.zeros((S * A, S))
    moves = [(-1, 0), (1, 0), (0, -1), (0, 1), (0, 0)]
    for s in range(S):
        r, c = divmod(s, n)
        for a in range(A):
            for k, (dr, dc) in enumerate(moves):
                p = (1 - slip) * (k == a) + slip / 5
                rr, cc = r + dr, c + dc
                nxt = rr * n + cc if 0 <= rr < n and 0 <= cc < n else s
                P[s * A + a, nxt] += p
    cells = rng.integers(0, S, objects)
    rows, cols = np.divmod(np.arange(S), n)
    feat_s = np.zeros((S, colours * dist))
    for c in range(colours):
        mine = cells[c::colours]
        near = np.min(np.abs(rows[:, None] - mine[None, :] // n) + np.abs(cols[:, None] - mine[None, :] % n), axis=1)
        for d in range(dist):
            feat_s[:, c * dist + d] = near <= d + 1
    feat = np.repeat(feat_s, A, axis=0)  # f(s, a) = f(s)
    return P, feat, S, A


def irl_iteration(P, feat, S, A, T, alpha, psi, mu_demo, start, adam, lr=0.05):
    r = feat @ psi
    V = np.zeros(S)
    pis = []
    for _ in range(T):
        Q = (r + P @ V).reshape(S, A)
        m = Q.max(axis=1, keepdims=True)
        V = (m + alpha * np.log(np.exp((Q - m) / alpha).sum(axis=1, keepdims=True)))[:, 0]
        pis.append(np.exp((Q - V[:, None]) / alpha))
    pis.reverse()
    D = start.copy()
    occ = np.zeros(S * A)
    for t in range(T):
        Dsa = (D[:, None] * pis[t]).reshape(-1)
        occ += Dsa
        D = Dsa @ P
    g = (mu_demo - occ @ feat) / alpha
    m, v, k = adam
    k += 1
    m[:] = 0.9 * m + 0.1 * g
    v[:] = 0.999 * v + 0.001 * g * g
    psi += lr * (m / (1 - 0.9 ** k)) / (np.sqrt(v / (1 - 0.999 ** k)) + 1e-8)
    return (m, v, k)


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip())
        return 2
    n = int(argv[1])
    T = int(argv[2]) if len(argv) > 2 else 64
    seconds = float(argv[3]) if len(argv) > 3 else 2.0
    rng = np.random.default_rng(0)
    P, feat, S, A = gridworld(n, 0.3, 16, 2, 3, rng)
    F = feat.shape[1]
    psi = np.zeros(F)
    mu_demo = rng.uniform(0, T, F)
    start = np.zeros(S)
    start[0] = 1.0
    adam = (np.zeros(F), np.zeros(F), 0)
    adam = irl_iteration(P, feat, S, A, T, 1.0, psi, mu_demo, start, adam)  # warm-up
    done, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        adam = irl_iteration(P, feat, S, A, T, 1.0, psi, mu_demo, start, adam)
        done += 1
    secs, csecs = time.perf_counter() - t0, time.process_time() - c0
    print(f"numpy MCE IRL: N={n} T={T} S={S}: {done} iterations in {secs:.2f} s, "
          f"{done / secs:.2f} problem-iterations/s, {1e3 * secs / done:.1f} ms per problem-iteration, "
          f"{1e3 * csecs / done:.1f} cpu ms per problem-iteration")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
