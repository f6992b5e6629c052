#!/usr/bin/env python3
"""irl_imitation.py N [T] [seconds] — the `imitation` library's tabular maximum causal entropy IRL
(HumanCompatibleAI/imitation, imitation.algorithms.mce_irl.MCEIRL) on the gridworld of
`qfleet bench irl` (N x N cells, 5 actions, slip 0.3, 16 objects of 2 colours, 6 distance
features, horizon T), one problem at a time, timed per iteration. Prints problem-iterations/s.

Used as the library is meant to be used: a seals TabularModelPOMDP with the dense transition
matrix T[s, a, s'] and the features as its observation matrix, a linear reward net on the
features (BasicRewardNet without hidden layers, state-only reward: the gridworld's features do
not depend on the action), Adam (lr 0.05), the demonstrations given as a state occupancy measure.
Each `MCEIRL.train` iteration is one backward pass (mce_partition_fh), one forward pass
(mce_occupancy_measures), the reward net's forward and backward pass and the Adam step: the same
algorithm as one qfleet IRL iteration. The stopping thresholds are set to 0 so that every call
runs the iterations it is asked for. The gridworld comes from irl_numpy.py (the same
construction, the same shapes).

Needs `pip install imitation` (torch, stable-baselines3, seals, gymnasium) in a virtual
environment: benchmarks/peers/run_irl_peers.sh sets one up under .venv-peers.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from irl_numpy import gridworld  # noqa: E402


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip())
        return 2
    import torch as th
    from gymnasium import spaces  # noqa: F401  (imported by seals; checks the install)
    from imitation.algorithms import mce_irl
    from imitation.rewards import reward_nets
    from imitation.util import logger as imit_logger
    from seals import base_envs

    n = int(argv[1])
    horizon = int(argv[2]) if len(argv) > 2 else 64
    seconds = float(argv[3]) if len(argv) > 3 else 2.0
    th.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    rng = np.random.default_rng(0)
    P, feat, S, A = gridworld(n, 0.3, 16, 2, 3, rng)
    trans = P.reshape(S, A, S)
    obs = feat[::A].astype(np.float32)  # f(s)
    start = np.zeros(S)
    start[0] = 1.0
    env = base_envs.TabularModelPOMDP(
        transition_matrix=trans,
        observation_matrix=obs,
        reward_matrix=np.zeros(S),
        horizon=horizon,
        initial_state_dist=start,
    )
    net = reward_nets.BasicRewardNet(
        env.observation_space, env.action_space, hid_sizes=[], use_action=False,
        use_next_state=False, use_done=False)
    demo_om = rng.uniform(0, 1, S)
    demo_om *= horizon / demo_om.sum()
    logger = imit_logger.configure(format_strs=[])
    mce = mce_irl.MCEIRL(demo_om, env, net, rng, optimizer_kwargs={"lr": 0.05}, linf_eps=0.0,
                         grad_l2_eps=0.0, log_interval=None, custom_logger=logger)
    mce.train(max_iter=1)  # warm-up
    done, t0, c0 = 0, time.perf_counter(), time.process_time()
    k = 1
    while time.perf_counter() - t0 < seconds:
        mce.train(max_iter=k)
        done += k
        k = min(2 * k, 64)
    secs, csecs = time.perf_counter() - t0, time.process_time() - c0
    print(f"imitation MCE IRL: N={n} T={horizon} S={S}: {done} iterations in {secs:.2f} s, "
          f"{done / secs:.2f} problem-iterations/s, {1e3 * secs / done:.1f} ms per problem-iteration, "
          f"{1e3 * csecs / done:.1f} cpu ms per problem-iteration")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
