"""The gain as pure JAX functions, for use inside `jit` and `lax.scan` (the steps never
leave the device): `gain_init(d)` → state; `gain_scan(step, (carry, state), length=K)`
runs a block of K steps and accumulates their gain (the fast pattern: one check per
block); `gain_update(state, stepsize, grad, param)` → state, one step, for loops of your
own shape; `to_accumulator(state, ...)` → a dlncheck.GainAccumulator for `predict` and
`diagnose`. Needs 64-bit JAX (`jax.config.update("jax_enable_x64", True)`), since the
gain is summed over many small increments.

    def step(carry, _):
        u, v = carry
        g = X.T @ (X @ (u * v) - y) / n
        return (u - gamma * g * v, v - gamma * g * u), (gamma, g)
    ((u, v), state), _ = dlncheck.jax.gain_scan(step, ((u, v), dlncheck.jax.gain_init(d)), length=1000)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from . import _device
from ._dlncheck import GainAccumulator as _Host


class GainState(NamedTuple):
    """Σ q, Σ (q₋ − q₊), the step count and whether a step was degenerate (a pytree)."""

    gain: Any
    rho: Any
    steps: Any
    degenerate: Any


def gain_init(d: int) -> GainState:
    """The empty state for d coordinates (float64; raises if JAX runs in 32 bits)."""
    if not jax.config.jax_enable_x64:
        raise ValueError('dlncheck.jax needs float64: call jax.config.update("jax_enable_x64", True) first')
    zero = jnp.zeros(d, dtype=jnp.float64)
    return GainState(zero, zero, jnp.zeros((), dtype=jnp.int64), jnp.zeros((), dtype=bool))


def gain_update(state: GainState, stepsize: Any, grad: Any, param: str = "uv") -> GainState:
    """The state after one step of size `stepsize` with gradient `grad` (w.r.t. b)."""
    _check_step(state, stepsize, grad)
    bad_step = ~_valid_stepsize(stepsize)
    if param == "md":
        return state._replace(steps=state.steps + 1, degenerate=state.degenerate | bad_step)
    x = (_device.x_scale(param) * stepsize) * jnp.asarray(grad, dtype=jnp.float64)
    dq, dr, bad = _increments(x)
    return GainState(state.gain + dq, state.rho + dr, state.steps + 1, state.degenerate | bad | bad_step)


def _valid_stepsize(stepsize: Any) -> Any:
    """γ finite and > 0 (on the device: the stepsize may be traced)."""
    gamma = jnp.asarray(stepsize, dtype=jnp.float64)
    return jnp.isfinite(gamma) & (gamma > 0.0)


def _check_step(state: GainState, stepsize: Any, grad: Any) -> None:
    """A scalar stepsize and a gradient of the state's shape (d,), checked when traced, so a
    scalar or a (d, 1) gradient is refused instead of broadcast into every coordinate."""
    d = jnp.shape(state.gain)
    for name, value in (("stepsize", stepsize), ("grad", grad)):
        dtype = jnp.result_type(value)
        if jnp.issubdtype(dtype, jnp.complexfloating) or jnp.issubdtype(dtype, jnp.bool_):
            raise TypeError(f"{name} has dtype {dtype}; a real numeric value is expected")
    if jnp.shape(stepsize) != ():
        raise ValueError(f"the stepsize must be a scalar, not of shape {jnp.shape(stepsize)}")
    if jnp.shape(grad) != d:
        raise ValueError(f"the gradient has shape {jnp.shape(grad)}; the gain state has shape {d}")


def _increments(x: Any) -> tuple[Any, Any, Any]:
    """The accumulator's branches for this step, chosen on the device by max |x| as
    GainAccumulator::add chooses them: the eight-term series when every |x| < 1/16 (the
    Rust accumulator's shorter series agree with it to rounding), else per coordinate
    the sixteen-term series below 1/4 and logarithms above. A NaN takes the second
    branch, where it is flagged."""
    small = jnp.max(jnp.abs(x)) < _device.SERIES_LIMIT

    def series(x: Any) -> tuple[Any, Any, Any]:
        return (*_device.series(x, 8), jnp.zeros((), dtype=bool))

    def general(x: Any) -> tuple[Any, Any, Any]:
        dq, dr, bad = _device.increments(jnp, x)
        return dq, dr, jnp.any(bad)

    return jax.lax.cond(small, series, general, x)


def gain_scan(step: Callable[[Any, Any], tuple[Any, tuple[Any, ...]]], init: tuple[Any, GainState], xs: Any = None,
              length: Optional[int] = None, param: str = "uv") -> tuple[tuple[Any, GainState], Any]:
    """`lax.scan` of a training step that accumulates the gain on the device, for a block
    of steps: `step(carry, x)` returns `(carry, (stepsize, grad))` or
    `(carry, (stepsize, grad, y))`; `init` is `(carry, state)`; returns
    `((carry, state), ys)` as `lax.scan` does (ys None without y).

    The block runs once with the eight-term series only, where a step with |x| ≥ 1/16 (or
    x NaN) makes its coordinate's gain infinite; if any is, the block is run again from
    `init` with `gain_update`'s branches at every step, so the sums are those of
    `gain_update` either way. `step` must be a pure function of (carry, x), as JAX
    requires, so the second run retraces the first (put random keys in the carry or xs).
    Cheaper than `gain_update` in the step: one check per block instead of a branch per
    step."""
    carry0, state0 = init
    scale = _device.x_scale(param)

    def split(out: Any) -> tuple[Any, Any, Any]:
        if not isinstance(out, tuple) or len(out) not in (2, 3):
            raise ValueError("step(carry, x) must return (carry, (stepsize, grad)) or (carry, (stepsize, grad, y))")
        _check_step(state0, out[0], out[1])
        return out[0], out[1], (out[2] if len(out) > 2 else None)

    def fast(c: Any, x: Any) -> tuple[Any, Any]:
        carry, gain, rho = c
        carry, out = step(carry, x)
        gamma, grad, y = split(out)
        z = (scale * gamma) * jnp.asarray(grad, dtype=jnp.float64)
        dq, dr = _device.series(z, 8)
        # |z| ≥ 1/16 (or z NaN, or γ not finite and > 0) makes the gain's sum infinite: the
        # series-only run then does not stand. (Measured: cheaper than carrying a max, or
        # than a NaN fed to the series.)
        limit = jnp.where(_valid_stepsize(gamma), _device.SERIES_LIMIT**2, -1.0)
        beyond = jnp.where(z * z < limit, 0.0, jnp.inf)
        return (carry, gain + dq + beyond, rho + dr), y

    def exact(c: Any, x: Any) -> tuple[Any, Any]:
        carry, state = c
        carry, out = step(carry, x)
        gamma, grad, y = split(out)
        return (carry, gain_update(state, gamma, grad, param)), y

    if param == "md":
        return jax.lax.scan(exact, init, xs, length)
    (carry, gain, rho), ys = jax.lax.scan(fast, (carry0, state0.gain, state0.rho), xs, length)
    steps = jax.tree_util.tree_leaves(xs)[0].shape[0] if length is None else length
    quick = ((carry, GainState(gain, rho, state0.steps + steps, state0.degenerate)), ys)
    return jax.lax.cond(jnp.all(jnp.isfinite(gain)), lambda: quick, lambda: jax.lax.scan(exact, init, xs, length))


def to_accumulator(state: GainState, alpha: Any = None, d: Optional[int] = None, *, u0: Any = None, v0: Any = None,
                   b0: Any = None, param: str = "uv") -> _Host:
    """A dlncheck.GainAccumulator with the state's sums for this start (ValueError if a
    step was degenerate)."""
    if bool(state.degenerate):
        raise ValueError("a step had a factor 1 ∓ γg exactly 0 or not finite, or a stepsize not finite and > 0: "
                         "its gain is undefined")
    import numpy as np

    return _Host.from_sums(np.asarray(state.gain), np.asarray(state.rho), int(state.steps), alpha, d, u0=u0, v0=v0,
                           b0=b0, param=param)
