"""What on-device gain accumulation costs a JAX loop (issue 23): GD on b = u ⊙ v in
`lax.scan` blocks of 1,000 steps, without the gain, with `dlncheck.jax.gain_scan` (one
check per block) and with `gain_update` in the step (a branch per step), timed after
compilation, the three loops interleaved (best of 15 rounds), in µs per step.

    python python/bench/jax_overhead.py
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

import dlncheck.jax as dj

jax.config.update("jax_enable_x64", True)


def compiled(n, d, how, block=1000, gamma=0.01):
    """The jitted block and a warm carry: `how` is "plain", "scan" or "update"."""
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((n, d)))
    y = X[:, :3] @ jnp.array([1.5, -2.0, 1.0])

    def step(carry, _):
        u, v = carry
        g = X.T @ (X @ (u * v) - y) / n
        return (u - gamma * g * v, v - gamma * g * u), (gamma, g)

    def plain(carry, _):
        return step(carry, None)[0], None

    def updated(carry, _):
        (u, v), s = carry
        (u, v), (gm, g) = step((u, v), None)
        return ((u, v), dj.gain_update(s, gm, g)), None

    start = (jnp.full(d, np.sqrt(2) * 0.1), jnp.zeros(d))
    if how == "plain":
        run, carry = jax.jit(lambda c: jax.lax.scan(plain, c, None, length=block)[0]), start
    elif how == "scan":
        run, carry = jax.jit(lambda c: dj.gain_scan(step, c, length=block)[0]), (start, dj.gain_init(d))
    else:
        run, carry = jax.jit(lambda c: jax.lax.scan(updated, c, None, length=block)[0]), (start, dj.gain_init(d))
    carry = run(carry)
    jax.block_until_ready(carry)
    return run, carry


def per_step(run, carry, blocks=20, block=1000):
    t = time.perf_counter()
    for _ in range(blocks):
        carry = run(carry)
    jax.block_until_ready(carry)
    return (time.perf_counter() - t) / (blocks * block)


for n, d in [(20, 30), (50, 100), (100, 300), (200, 1000)]:
    loops = {how: compiled(n, d, how) for how in ("plain", "scan", "update")}
    best = {how: np.inf for how in loops}
    for _ in range(15):
        for how, (run, carry) in loops.items():
            best[how] = min(best[how], per_step(run, carry))
    p, s, u = best["plain"], best["scan"], best["update"]
    print(f"{n} × {d}: {p * 1e6:.2f} µs/step without the gain; gain_scan {s * 1e6:.2f} ({s / p:.2f}×); "
          f"gain_update in the step {u * 1e6:.2f} ({u / p:.2f}×)")
