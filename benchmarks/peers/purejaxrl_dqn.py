"""purejaxrl_dqn.py RUNS STEPS [REPEATS] [--check] [--env ENV] — a PureJaxRL-style DQN on a gymnax
env: CartPole-v1 (default) or DeepSea-bsuite (gymnax 0.0.9's DeepSea at size 20, set through its
constructor; deterministic, all-ones action map; its dense 20x20 one-hot observation is flattened to
400 floats before the network and the buffer).

Written for qfleet's peer benchmark in the style of PureJaxRL (not its code): the whole training
run is one function of a PRNG key, its env steps are `jax.lax.scan` iterations, the replay buffer
is a flat circular buffer of jnp arrays in the scan carry, and RUNS seeds are `jax.vmap`-ed and
`jax.jit`-ed as one call on jax's default device. Prints one line per timed repeat:
`purejaxrl RUNS STEPS SECONDS`; the first call (compilation included) is not timed.

Settings match rejax_dqn.py (rejax 0.1.3's DQN) and the qfleet command of run_train_peers.sh:
MLP 64-64 ReLU on CartPole, 50-50 on DeepSea (bsuite's) (flax Dense, default init), batch 128, replay 10000, one env per run, one update per
env step after 2048 warm-up steps (uniformly random actions, no updates), Polyak target (0.99 kept
per step), double DQN, gamma 0.99, Adam lr 3e-4 (no gradient clipping: rejax's max_grad_norm is
inf), loss 0.5 * mean((Q - target)^2) (optax.l2_loss, as rejax), epsilon 1 -> 0.05 linearly over the
first 10% of steps (evaluated at the global step, as rejax; when 10% of STEPS < 2048 it is already
0.05 once the warm-up ends), bootstrapping masked by gymnax's `done` (termination or the 500-step
truncation, as rejax; on DeepSea the episode's end after N steps). One difference in kind: the minibatch is drawn uniformly *with* replacement
(PureJaxRL's flashbax buffer does this; rejax draws without replacement through
jax.random.choice(p=...)).

--check: also tracks episode returns in the carry (a separate compiled function, so the timed
runs stay lean) and prints, per seed, the mean return of the random warm-up episodes and of the
last 20 finished episodes. With REPEATS 0 only the check runs, e.g.
`purejaxrl_dqn.py 4 50000 0 --check`.
"""
import math
import sys
import time

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import optax

# --env name: (gymnax.make arguments, MLP hidden widths)
ENVS = {
    "CartPole-v1": (("CartPole-v1", {}), (64, 64)),
    "DeepSea-bsuite": (("DeepSea-bsuite", {"size": 20}), (50, 50)),
}
BATCH = 128
BUFFER = 10_000
WARMUP = 2048
LR = 3e-4
GAMMA = 0.99
POLYAK = 0.99  # target <- POLYAK * target + (1 - POLYAK) * online, every step (tau = 0.01)
EPS_START, EPS_END, EPS_FRACTION = 1.0, 0.05, 0.1
LAST_EPISODES = 20  # --check: returns of the last this many episodes per seed


class QNetwork(nn.Module):
    n_actions: int
    hidden: tuple

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.n_actions)(x)


def make_train(steps, check=False, env_name="CartPole-v1"):
    (make_id, make_kwargs), hidden = ENVS[env_name]
    env, env_params = gymnax.make(make_id, **make_kwargs)
    n_actions = env.action_space(env_params).n
    obs_dim = math.prod(env.observation_space(env_params).shape)  # observations flattened
    net = QNetwork(n_actions, hidden)
    tx = optax.adam(LR)
    eps_steps = int(EPS_FRACTION * steps)
    warmup = min(WARMUP, steps)

    def epsilon(t):
        frac = jnp.clip(t / max(eps_steps, 1), 0.0, 1.0)
        return EPS_START + frac * (EPS_END - EPS_START)

    def track(stats, reward, done):
        # stats: (running return, ring of finished returns, finished count)
        ep_ret, ring, n = stats
        ep_ret = ep_ret + reward
        ring = jnp.where(done, ring.at[n % LAST_EPISODES].set(ep_ret), ring)
        n = n + done.astype(jnp.int32)
        return (jnp.where(done, 0.0, ep_ret), ring, n)

    def env_step(c, t, action, key):
        """Step the env, write the transition at slot t % BUFFER of the circular buffer."""
        obs, env_state, buf = c["obs"], c["env_state"], c["buf"]
        next_obs, env_state, reward, done, _ = env.step(key, env_state, action, env_params)
        next_obs = next_obs.reshape(-1)  # no-op on CartPole's (4,)
        i = t % BUFFER
        buf = {
            "obs": buf["obs"].at[i].set(obs),
            "action": buf["action"].at[i].set(action),
            "reward": buf["reward"].at[i].set(reward),
            "next_obs": buf["next_obs"].at[i].set(next_obs),
            "done": buf["done"].at[i].set(done),
        }
        c = {**c, "obs": next_obs, "env_state": env_state, "buf": buf}
        if check:
            c["stats"] = track(c["stats"], reward, done)
        return c

    def warmup_step(c, t):
        key, k_act, k_env = jax.random.split(c["key"], 3)
        action = jax.random.randint(k_act, (), 0, n_actions)
        c = env_step({**c, "key": key}, t, action, k_env)
        return c, None

    def loss_fn(params, target_params, b):
        q = net.apply(params, b["obs"])
        q_taken = jnp.take_along_axis(q, b["action"][:, None], axis=1)[:, 0]
        next_a = jnp.argmax(net.apply(params, b["next_obs"]), axis=1)  # double DQN: online picks
        next_q = jnp.take_along_axis(net.apply(target_params, b["next_obs"]), next_a[:, None], axis=1)[:, 0]
        target = b["reward"] + GAMMA * (1.0 - b["done"].astype(jnp.float32)) * next_q
        return optax.l2_loss(q_taken, jax.lax.stop_gradient(target)).mean()

    def train_step(c, t):
        key, k_explore, k_rand, k_env, k_sample = jax.random.split(c["key"], 5)
        # act: epsilon-greedy on the online network
        greedy = jnp.argmax(net.apply(c["params"], c["obs"]))
        random_a = jax.random.randint(k_rand, (), 0, n_actions)
        action = jnp.where(jax.random.uniform(k_explore) < epsilon(t), random_a, greedy)
        c = env_step({**c, "key": key}, t, action, k_env)
        # learn: one minibatch from the filled part of the buffer
        filled = jnp.minimum(t + 1, BUFFER)
        idx = jax.random.randint(k_sample, (BATCH,), 0, filled)
        batch = jax.tree.map(lambda x: x[idx], c["buf"])
        grads = jax.grad(loss_fn)(c["params"], c["target"], batch)
        updates, opt_state = tx.update(grads, c["opt_state"], c["params"])
        params = optax.apply_updates(c["params"], updates)
        target = jax.tree.map(lambda tp, p: POLYAK * tp + (1.0 - POLYAK) * p, c["target"], params)
        return {**c, "params": params, "target": target, "opt_state": opt_state}, None

    def train(key):
        key, k_net, k_reset = jax.random.split(key, 3)
        params = net.init(k_net, jnp.zeros((obs_dim,)))
        obs, env_state = env.reset(k_reset, env_params)
        obs = obs.reshape(-1)
        c = {
            "key": key,
            "params": params,
            "target": params,
            "opt_state": tx.init(params),
            "obs": obs,
            "env_state": env_state,
            "buf": {
                "obs": jnp.zeros((BUFFER, obs_dim), jnp.float32),
                "action": jnp.zeros((BUFFER,), jnp.int32),
                "reward": jnp.zeros((BUFFER,), jnp.float32),
                "next_obs": jnp.zeros((BUFFER, obs_dim), jnp.float32),
                "done": jnp.zeros((BUFFER,), jnp.bool_),
            },
        }
        if check:
            c["stats"] = (jnp.float32(0.0), jnp.zeros((LAST_EPISODES,), jnp.float32), jnp.int32(0))
            c["random_sum"], c["random_n"] = jnp.float32(0.0), jnp.int32(0)
        # the step index is the scan input, so it stays unbatched under vmap (static buffer slots)
        c, _ = jax.lax.scan(warmup_step, c, jnp.arange(warmup))
        if check:  # mean return of the random-policy warm-up episodes (from the ring's sum)
            _, ring, n = c["stats"]
            c["random_sum"] = jnp.sum(jnp.where(jnp.arange(LAST_EPISODES) < n, ring, 0.0))
            c["random_n"] = jnp.minimum(n, LAST_EPISODES)
            c["stats"] = (c["stats"][0], ring, jnp.int32(0))
        c, _ = jax.lax.scan(train_step, c, jnp.arange(warmup, steps))
        if check:
            _, ring, n = c["stats"]
            k = jnp.minimum(n, LAST_EPISODES)
            last = jnp.sum(jnp.where(jnp.arange(LAST_EPISODES) < k, ring, 0.0)) / jnp.maximum(k, 1)
            return {"random_mean": c["random_sum"] / jnp.maximum(c["random_n"], 1), "last_mean": last,
                    "episodes": n}
        return c["params"]

    return train


def main():
    check = "--check" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--check"]
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
    keys = jax.random.split(jax.random.PRNGKey(0), runs)
    if check:
        t0 = time.perf_counter()
        out = jax.block_until_ready(jax.jit(jax.vmap(make_train(steps, check=True, env_name=env_name)))(keys))
        print(f"check: {runs} seeds x {steps} steps in {time.perf_counter() - t0:.1f} s (compile included)")
        for s in range(runs):
            print(f"seed {s}: random warm-up episodes mean return {float(out['random_mean'][s]):.1f}; "
                  f"last {min(int(out['episodes'][s]), LAST_EPISODES)} of {int(out['episodes'][s])} "
                  f"training episodes mean return {float(out['last_mean'][s]):.1f}")
        print(f"mean over seeds: random {float(out['random_mean'].mean()):.1f}, "
              f"last episodes {float(out['last_mean'].mean()):.1f}", flush=True)
    if repeats <= 0:
        return
    train = jax.jit(jax.vmap(make_train(steps, env_name=env_name)))
    out = train(keys)  # compile + first run
    jax.block_until_ready(out)
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = train(keys)
        jax.block_until_ready(out)
        print(f"purejaxrl {runs} {steps} {time.perf_counter() - t0:.4f}", flush=True)


if __name__ == "__main__":
    main()
