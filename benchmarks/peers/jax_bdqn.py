"""jax_bdqn.py RUNS STEPS [REPEATS] [--check] [--size N] [--heads K] [--mask-p P] — a vmapped JAX
bootstrapped DQN with randomized prior functions on gymnax's DeepSea-bsuite, the peer of
`qfleet train env=deep_sea obs=dense explore=bootstrap` in benchmarks/peers/run_bdqn_peers.sh.

Written for qfleet's peer benchmark (issue 14, Speed), in the style of purejaxrl_dqn.py (not any
peer's code): a whole training run is one function of a PRNG key, its env steps are `jax.lax.scan`
iterations, the replay is a circular buffer of jnp arrays in the scan carry, and RUNS seeds are
`jax.vmap`-ed and `jax.jit`-ed as one call on jax's default device. The ensemble is K stacked
networks (every parameter has a leading K axis) evaluated with `jax.vmap` over heads, as the
bootstrapped-DQN scaling study (knyazer/bootstrapped-dqn-scaling) structures its ensemble. Prints
one line per timed repeat: `jax_bdqn RUNS STEPS SECONDS`; the first call (compilation included) is
not timed.

What one run does (the same as qfleet's explore=bootstrap with the runner's command):
- K heads (default 10), each an MLP 400-50-50-A (ReLU; bsuite's 50-50) on DeepSea-N's dense one-hot
  observation (N = 20 by default: 400 floats), initialized as PyTorch's nn.Linear (weights and
  biases uniform in +-1/sqrt(fan_in)), as qfleet's networks.
- Randomized prior functions (Osband et al. 2018): per head a fixed network p_k of the same shape
  from its own key, never trained; Q_k = f_k + prior_scale * p_k (prior_scale 3) in acting, in the
  online Q(s, a) and in the targets.
- Bootstrap masks: per stored transition K Bernoulli(mask_p) bits (default mask_p 1, qfleet's
  default), drawn when stored and kept in the replay; head k's TD loss on a transition is multiplied
  by its bit.
- Acting: each episode follows one head drawn uniformly at its start, greedily (no epsilon), from
  the first step on (qfleet acts with its policy during the warm-up too).
- Learning: after 2048 stored transitions (learning_starts), one update per env step: one minibatch
  of 128 drawn uniformly with replacement from the filled replay (10000 slots), shared by the heads
  (qfleet's head_batch=shared); double DQN per head (head k's online Q_k picks argmax at s', its
  Polyak target + the same prior evaluates it); gamma 0.99; Huber loss (threshold 1) summed over
  the batch and divided by the batch size; per head: gradient clipped at global norm 10, Adam
  3e-4 (optax), Polyak target 0.99 kept per step (qfleet's tau=0.01, max_grad_norm=10, huber=1).
- Env: gymnax 0.0.9's DeepSea(size=N), deterministic, its all-ones action map (qfleet draws
  bsuite's per-cell map; same dynamics and work otherwise); the episode's end after N steps is
  terminal (no bootstrap past it).

--check: before timing, a sanity run of the same function with small settings (2 seeds) that
asserts what the specification says: the parameter, prior and mask shapes (K leading, (BUFFER, K)
masks); masks' mean close to mask_p; the priors bit-identical after training and the trained
networks changed; the heads' Q-values differ at the start state (the priors differ); with
mask_p = 0 no head changes at all (every TD gradient is masked out); and on DeepSea-6 with K = 10
both seeds find the treasure in more than 100 of their 500 episodes (3000 steps): a uniformly
random policy finds it with probability 1/64 per episode (7.8 of 500 on average), a learner that
explores deeply and then exploits it in most episodes. With REPEATS 0 only the check runs.
"""
import math
import sys
import time

import gymnax
import jax
import jax.numpy as jnp
import optax

HIDDEN = (50, 50)
BATCH = 128
BUFFER = 10_000
WARMUP = 2048  # learning_starts
LR = 3e-4
GAMMA = 0.99
POLYAK = 0.99  # target <- POLYAK * target + (1 - POLYAK) * online, every update (tau = 0.01)
HUBER = 1.0
MAX_GRAD_NORM = 10.0
PRIOR_SCALE = 3.0


def init_mlp(key, sizes):
    """One MLP's parameters [(W, b), ...], PyTorch nn.Linear's default init."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        key, kw, kb = jax.random.split(key, 3)
        bound = 1.0 / math.sqrt(fan_in)
        params.append((jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -bound, bound),
                       jax.random.uniform(kb, (fan_out,), jnp.float32, -bound, bound)))
    return params


def mlp(params, x):
    for i, (w, b) in enumerate(params):
        x = x @ w + b
        if i + 1 < len(params):
            x = jax.nn.relu(x)
    return x


def make_train(steps, size=20, heads=10, mask_p=1.0, warmup=WARMUP, check=False):
    env, env_params = gymnax.make("DeepSea-bsuite", size=size)
    n_actions = env.action_space(env_params).n
    obs_dim = math.prod(env.observation_space(env_params).shape)
    sizes = (obs_dim, *HIDDEN, n_actions)
    tx = optax.chain(optax.clip_by_global_norm(MAX_GRAD_NORM), optax.adam(LR))
    warmup = min(warmup, steps)
    ens = jax.vmap(mlp, in_axes=(0, None))  # K stacked heads on one input: (K, ..., A)

    def q_all(params, prior, x):
        return ens(params, x) + PRIOR_SCALE * ens(prior, x)

    def head_loss(p, t, pr, b, m):
        """Head k's masked TD loss: sum_j m_j huber(Q_k(s_j, a_j) - y_j) / B, double DQN."""
        q = mlp(p, b["obs"]) + PRIOR_SCALE * mlp(pr, b["obs"])
        prior_next = PRIOR_SCALE * mlp(pr, b["next_obs"])
        next_a = jnp.argmax(mlp(p, b["next_obs"]) + prior_next, axis=1)
        q_next = jnp.take_along_axis(mlp(t, b["next_obs"]) + prior_next, next_a[:, None], axis=1)[:, 0]
        y = b["reward"] + GAMMA * (1.0 - b["done"].astype(jnp.float32)) * q_next
        q_taken = jnp.take_along_axis(q, b["action"][:, None], axis=1)[:, 0]
        return jnp.sum(m * optax.huber_loss(q_taken, jax.lax.stop_gradient(y), delta=HUBER)) / BATCH

    heads_grad = jax.vmap(jax.value_and_grad(head_loss), in_axes=(0, 0, 0, None, 1))

    def step(c, t):
        key, k_env, k_mask, k_head, k_sample = jax.random.split(c["key"], 5)
        # act: greedy on the episode's head (its Q with prior)
        p_h = jax.tree.map(lambda x: x[c["head"]], c["params"])
        pr_h = jax.tree.map(lambda x: x[c["head"]], c["prior"])
        action = jnp.argmax(mlp(p_h, c["obs"]) + PRIOR_SCALE * mlp(pr_h, c["obs"]))
        next_obs, env_state, reward, done, _ = env.step(k_env, c["env_state"], action, env_params)
        next_obs = next_obs.reshape(-1).astype(jnp.float32)
        mask = jax.random.bernoulli(k_mask, mask_p, (heads,)).astype(jnp.float32)
        i = t % BUFFER
        buf = c["buf"]
        buf = {"obs": buf["obs"].at[i].set(c["obs"]), "action": buf["action"].at[i].set(action),
               "reward": buf["reward"].at[i].set(reward), "next_obs": buf["next_obs"].at[i].set(next_obs),
               "done": buf["done"].at[i].set(done), "mask": buf["mask"].at[i].set(mask)}
        head = jnp.where(done, jax.random.randint(k_head, (), 0, heads), c["head"])
        c = {**c, "key": key, "obs": next_obs, "env_state": env_state, "buf": buf, "head": head}
        if check:
            ret = c["ep_ret"] + reward  # DeepSea's treasure gives 1 (minus move costs) at the last step
            c["treasure"] = c["treasure"] + (done & (ret > 0.5)).astype(jnp.int32)
            c["ep_ret"] = jnp.where(done, 0.0, ret)

        def learn(c):
            filled = jnp.minimum(t + 1, BUFFER)
            idx = jax.random.randint(k_sample, (BATCH,), 0, filled)
            b = jax.tree.map(lambda x: x[idx], c["buf"])
            loss, grads = heads_grad(c["params"], c["target"], c["prior"], b, b["mask"])
            updates, opt_state = jax.vmap(tx.update)(grads, c["opt_state"], c["params"])
            params = optax.apply_updates(c["params"], updates)
            target = jax.tree.map(lambda tp, p: POLYAK * tp + (1.0 - POLYAK) * p, c["target"], params)
            return {**c, "params": params, "target": target, "opt_state": opt_state}

        return c, None, learn

    def warm_step(c, t):
        c, _, _ = step(c, t)
        return c, None

    def train_step(c, t):
        c, _, learn = step(c, t)
        return learn(c), None

    def train(key):
        key, k_net, k_prior, k_reset, k_head = jax.random.split(key, 5)
        params = jax.vmap(lambda k: init_mlp(k, sizes))(jax.random.split(k_net, heads))
        prior = jax.vmap(lambda k: init_mlp(k, sizes))(jax.random.split(k_prior, heads))
        obs, env_state = env.reset(k_reset, env_params)
        c = {
            "key": key, "params": params, "target": params, "prior": prior,
            "opt_state": jax.vmap(tx.init)(params),
            "obs": obs.reshape(-1).astype(jnp.float32), "env_state": env_state,
            "head": jax.random.randint(k_head, (), 0, heads),
            "buf": {"obs": jnp.zeros((BUFFER, obs_dim), jnp.float32), "action": jnp.zeros((BUFFER,), jnp.int32),
                    "reward": jnp.zeros((BUFFER,), jnp.float32),
                    "next_obs": jnp.zeros((BUFFER, obs_dim), jnp.float32),
                    "done": jnp.zeros((BUFFER,), jnp.bool_), "mask": jnp.zeros((BUFFER, heads), jnp.float32)},
        }
        if check:
            c["ep_ret"] = jnp.float32(0.0)
            c["treasure"] = jnp.int32(0)
            init = {"params": params, "prior": prior, "q0": q_all(params, prior, c["obs"])}
        # the step index is the scan input, so it stays unbatched under vmap (static buffer slots)
        c, _ = jax.lax.scan(warm_step, c, jnp.arange(warmup))
        c, _ = jax.lax.scan(train_step, c, jnp.arange(warmup, steps))
        if check:
            return {"init": init, "params": c["params"], "prior": c["prior"], "mask": c["buf"]["mask"],
                    "filled": jnp.minimum(steps, BUFFER), "treasure": c["treasure"]}
        return c["params"]

    return train


def sanity_check(heads):
    """The assertions of --check (module docstring). Exits 1 with a message on a failure."""
    def fail(msg):
        sys.exit(f"jax_bdqn check FAILED: {msg}")

    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    # 1. shapes, masks, priors fixed, heads learn and differ (DeepSea-20, mask_p 0.5, 600 steps)
    out = jax.jit(jax.vmap(make_train(600, size=20, heads=heads, mask_p=0.5, warmup=300, check=True)))(keys)
    sizes = (400, *HIDDEN, 2)
    for tree in ("params", "prior"):
        shapes = [tuple(x.shape) for x in jax.tree.leaves(out[tree])]
        want = [(2, heads, i, o) if n % 2 == 0 else (2, heads, o)
                for (i, o) in zip(sizes[:-1], sizes[1:]) for n in (0, 1)]
        if shapes != want:
            fail(f"{tree} shapes {shapes}, want {want} (runs, heads, ...)")
    if out["mask"].shape != (2, BUFFER, heads):
        fail(f"mask shape {out['mask'].shape}, want (2, {BUFFER}, {heads})")
    m = out["mask"][:, :600]
    # 2 x 600 x K Bernoulli(0.5) bits: the mean is within 5 standard deviations of 0.5 (false failure < 1e-6)
    sd = 0.5 / math.sqrt(m.size)
    if abs(float(m.mean()) - 0.5) > 5 * sd or float(jnp.abs(out["mask"][:, 600:]).max()) != 0.0:
        fail(f"mask mean {float(m.mean()):.4f} (want 0.5 +- {5 * sd:.4f}) or slots beyond 600 written")
    if not all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(out["prior"]),
                                                         jax.tree.leaves(out["init"]["prior"]))):
        fail("a prior network changed during training")
    if all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(out["params"]),
                                                     jax.tree.leaves(out["init"]["params"]))):
        fail("no trained parameter changed")
    q0 = out["init"]["q0"]  # (runs, K, A)
    if float(q0.std(axis=1).min()) <= 0.0:
        fail("the heads' initial Q-values at the start state do not differ")
    print(f"check: shapes (runs, K={heads}, ...) ok; mask mean {float(m.mean()):.4f} at mask_p 0.5; "
          f"priors unchanged, trained networks changed; std over heads of Q(s0) {float(q0.std(axis=1).mean()):.3f}")
    # 2. mask_p = 0: every TD gradient is masked out, so no head changes (Adam's update of a zero gradient is 0)
    out = jax.jit(jax.vmap(make_train(600, size=20, heads=heads, mask_p=0.0, warmup=300, check=True)))(keys)
    if not all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(out["params"]),
                                                         jax.tree.leaves(out["init"]["params"]))):
        fail("with mask_p = 0 a head's parameters changed")
    print("check: mask_p 0 leaves every head unchanged")
    # 3. DeepSea-6, K heads with priors, 3000 steps (500 episodes): the treasure is found
    out = jax.jit(jax.vmap(make_train(3000, size=6, heads=heads, mask_p=1.0, warmup=256, check=True)))(keys)
    found = [int(x) for x in out["treasure"]]
    print(f"check: DeepSea-6, 500 episodes per seed: treasure episodes per seed {found}")
    # a uniformly random policy finds it in Binomial(500, 1/64) episodes (mean 7.8; P(> 100) < 1e-50)
    if min(found) <= 100:
        fail("a seed found DeepSea-6's treasure in at most 100 of 500 episodes (random acting: 7.8 on average)")


def main():
    args = sys.argv[1:]
    opts = {"--size": 20, "--heads": 10, "--mask-p": 1.0}
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    for name in opts:
        if name in args:
            i = args.index(name)
            if i + 1 >= len(args):
                sys.exit(f"{name}: needs a value")
            opts[name] = type(opts[name])(args[i + 1])
            del args[i:i + 2]
    if len(args) < 2:
        sys.exit(__doc__)
    runs, steps = int(args[0]), int(args[1])
    repeats = int(args[2]) if len(args) > 2 else 3
    if check:
        sanity_check(opts["--heads"])
    if repeats <= 0:
        return
    keys = jax.random.split(jax.random.PRNGKey(0), runs)
    train = jax.jit(jax.vmap(make_train(steps, size=opts["--size"], heads=opts["--heads"], mask_p=opts["--mask-p"])))
    jax.block_until_ready(train(keys))  # compile + first run, not timed
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(train(keys))
        print(f"jax_bdqn {runs} {steps} {time.perf_counter() - t0:.4f}", flush=True)


if __name__ == "__main__":
    main()
