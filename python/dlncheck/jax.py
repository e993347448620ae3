"""The gain as pure JAX functions, for use inside `jit` and `lax.scan` (the steps never
leave the device): `gain_init(d)` → state, `gain_update(state, stepsize, grad, param)` →
state, `to_accumulator(state, ...)` → a dlncheck.GainAccumulator for `predict` and
`diagnose`. Needs 64-bit JAX (`jax.config.update("jax_enable_x64", True)`), since the
gain is summed over many small increments.

    def block(carry, _):
        (u, v, gain_state) = carry
        g = X.T @ (X @ (u * v) - y) / n
        gain_state = dlncheck.jax.gain_update(gain_state, gamma, g)
        return (u - gamma * g * v, v - gamma * g * u, gain_state), None
    carry, _ = jax.lax.scan(block, (u, v, dlncheck.jax.gain_init(d)), None, length=1000)
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

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
    if param == "md":
        return state._replace(steps=state.steps + 1)
    x = (_device.x_scale(param) * stepsize) * jnp.asarray(grad, dtype=jnp.float64)
    dq, dr, bad = _increments(x)
    return GainState(state.gain + dq, state.rho + dr, state.steps + 1, state.degenerate | bad)


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


def to_accumulator(state: GainState, alpha: Any = None, d: Optional[int] = None, *, u0: Any = None, v0: Any = None,
                   b0: Any = None, param: str = "uv") -> _Host:
    """A dlncheck.GainAccumulator with the state's sums for this start (ValueError if a
    step was degenerate)."""
    if bool(state.degenerate):
        raise ValueError("a step had a factor 1 ∓ γg exactly 0 or not finite: its gain is undefined")
    import numpy as np

    return _Host.from_sums(np.asarray(state.gain), np.asarray(state.rho), int(state.steps), alpha, d, u0=u0, v0=v0,
                           b0=b0, param=param)
