"""What on-device gain accumulation costs a JAX loop (issue 23): GD on b = u ⊙ v in
`lax.scan` blocks of 1,000 steps, with and without `dlncheck.jax.gain_update` in the
step, timed after compilation, both loops interleaved (best of 15 rounds), in µs per step.

    python python/bench/jax_overhead.py
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

import dlncheck.jax as dj

jax.config.update("jax_enable_x64", True)


def compiled(n, d, with_gain, block=1000, gamma=0.01):
    """The jitted block and a warm carry."""
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((n, d)))
    y = X[:, :3] @ jnp.array([1.5, -2.0, 1.0])

    def step(carry, _):
        u, v, s = carry
        g = X.T @ (X @ (u * v) - y) / n
        if with_gain:
            s = dj.gain_update(s, gamma, g)
        return (u - gamma * g * v, v - gamma * g * u, s), None

    run = jax.jit(lambda c: jax.lax.scan(step, c, None, length=block)[0])
    carry = run((jnp.full(d, np.sqrt(2) * 0.1), jnp.zeros(d), dj.gain_init(d)))
    jax.block_until_ready(carry)
    return run, carry


def per_step(run, carry, blocks=20, block=1000):
    t = time.perf_counter()
    for _ in range(blocks):
        carry = run(carry)
    jax.block_until_ready(carry)
    return (time.perf_counter() - t) / (blocks * block)


for n, d in [(20, 30), (50, 100), (100, 300), (200, 1000)]:
    loops = {g: compiled(n, d, g) for g in (False, True)}
    best = {g: np.inf for g in loops}
    for _ in range(15):
        for g, (run, carry) in loops.items():
            best[g] = min(best[g], per_step(run, carry))
    plain, gained = best[False], best[True]
    print(f"{n} × {d}: {plain * 1e6:.2f} µs/step without the gain, {gained * 1e6:.2f} with it ({gained / plain:.2f}×)")
