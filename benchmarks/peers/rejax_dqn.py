"""rejax_dqn.py RUNS STEPS [REPEATS] [--env ENV] — rejax's DQN on a gymnax env, RUNS seeds vmapped
in one jitted call, on jax's default device; prints one line per timed repeat:
`rejax RUNS STEPS SECONDS`. The first call (compilation included) is not timed.

--env CartPole-v1 (default) or DeepSea-bsuite (gymnax 0.0.9's DeepSea at size 20, set through its
constructor: rejax passes `env_params` to gymnax.make as constructor keywords; deterministic, all-ones
action map; observation the dense 20x20 one-hot, flattened to 400 by rejax's MLP).

Settings match the qfleet command that run_train_peers.sh times: batch 128, replay 10000, one env
per run, one update per env step, Polyak target (0.99 kept per step), double DQN, learning rate
3e-4, 2048 warm-up steps, epsilon 1 -> 0.05 over the first 10% of steps (rejax's defaults), no
evaluation during training. MLP 64-64 ReLU on CartPole (rejax's DQN.create fixes the widths at
64-64); MLP 50-50 ReLU on DeepSea (bsuite's): DQN.create passes hidden_layer_sizes=(64, 64) itself, so
agent_kwargs cannot change it (a duplicate keyword); the created algorithm's agent is replaced by
rejax's own EpsilonGreedyPolicy(DiscreteQNetwork) with hidden_layer_sizes (50, 50)."""
import sys
import time

import jax
from flax import linen as nn
from rejax import DQN
from rejax.networks import DiscreteQNetwork, EpsilonGreedyPolicy

ENVS = {  # --env name: (DQN.create keywords, hidden widths or None for rejax's fixed 64-64)
    "CartPole-v1": ({"env": "CartPole-v1"}, None),
    "DeepSea-bsuite": ({"env": "DeepSea-bsuite", "env_params": {"size": 20}}, (50, 50)),
}

args = sys.argv[1:]
env_name = "CartPole-v1"
if "--env" in args:
    i = args.index("--env")
    if i + 1 >= len(args) or args[i + 1] not in ENVS:
        sys.exit(f"--env: one of {', '.join(ENVS)}")
    env_name = args[i + 1]
    del args[i:i + 2]
if len(args) < 2:
    sys.exit(__doc__)
runs, steps = int(args[0]), int(args[1])
repeats = int(args[2]) if len(args) > 2 else 3
env_kwargs, hidden = ENVS[env_name]
algo = DQN.create(
    **env_kwargs,
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
if hidden is not None:  # rejax's own Q-network class, other widths
    n_actions = algo.env.action_space(algo.env_params).n
    algo = algo.replace(agent=EpsilonGreedyPolicy(DiscreteQNetwork)(
        hidden_layer_sizes=hidden, action_dim=n_actions, activation=nn.relu))
train = jax.jit(jax.vmap(algo.train, in_axes=(0,)))
keys = jax.random.split(jax.random.PRNGKey(0), runs)
out = train(keys)  # compile + first run
jax.block_until_ready(out)
for _ in range(repeats):
    t0 = time.perf_counter()
    out = train(keys)
    jax.block_until_ready(out)
    print(f"rejax {runs} {steps} {time.perf_counter() - t0:.4f}", flush=True)
