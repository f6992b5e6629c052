"""rejax_dqn.py RUNS STEPS [REPEATS] — rejax's DQN on gymnax CartPole-v1, RUNS seeds vmapped in one
jitted call, on jax's default device; prints one line per timed repeat: `rejax RUNS STEPS SECONDS`.
The first call (compilation included) is not timed. Settings match the qfleet command that
run_train_peers.sh times: MLP 64-64, batch 128, replay 10000, one env per run, one update per env
step, Polyak target (0.99 kept per step), double DQN, learning rate 3e-4, 2048 warm-up steps,
no evaluation during training."""
import sys
import time

import jax
from rejax import DQN

runs, steps = int(sys.argv[1]), int(sys.argv[2])
repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
algo = DQN.create(
    env="CartPole-v1",
    agent_kwargs={"activation": "relu"},  # rejax DQN fixes the widths at 64-64
    total_timesteps=steps,
    eval_freq=steps,
    skip_initial_evaluation=True,
    num_envs=1,
    buffer_size=10000,
    fill_buffer=2048,
    batch_size=128,
    learning_rate=3e-4,
    target_update_freq=1,
    polyak=0.99,
    ddqn=True,
)
train = jax.jit(jax.vmap(algo.train, in_axes=(0,)))
keys = jax.random.split(jax.random.PRNGKey(0), runs)
out = train(keys)  # compile + first run
jax.block_until_ready(out)
for _ in range(repeats):
    t0 = time.perf_counter()
    out = train(keys)
    jax.block_until_ready(out)
    print(f"rejax {runs} {steps} {time.perf_counter() - t0:.4f}", flush=True)
