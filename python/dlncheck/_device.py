"""The gain increments on a device: the Rust accumulator's branches and series written
once over an array namespace (torch or jax.numpy), for `dlncheck.torch` and `dlncheck.jax`.
This is the one formula that lives outside Rust, on purpose (the steps never leave the
device); python/tests/test_device.py holds it to the Rust accumulator to ≤ 1e-13.

Per coordinate, with x = s·γ·g (s = 2 for u2v2):
  q(x) = −ln|1 − x²| and q₋ − q₊ = 2x − ln|1 + x| + ln|1 − x|,
by the series t·Σ_{k<16} t^k/(k+1) and −2x·t·Σ_{k<16} t^k/(2k+3), t = x², for |x| < 1/4
(theory/README.md § The gain; the Rust accumulator uses 8 terms below 1/16, which agree to
rounding), and by logarithms above. |x| = 1 or a non-finite x is degenerate: it is
flagged, and the conversion to a host accumulator raises."""

from __future__ import annotations

from typing import Any

SERIES_TERMS = 16
LONG_SERIES_LIMIT = 0.25


SERIES_LIMIT = 1.0 / 16.0


def series(x: Any, terms: int) -> tuple[Any, Any]:
    """`terms` terms of q = t Σ t^k/(k+1) and q₋ − q₊ = −2x t Σ t^k/(2k+3), t = x²."""
    t = x * x
    pq = pr = 0.0 * x
    for k in reversed(range(terms)):
        pq = pq * t + 1.0 / (k + 1)
        pr = pr * t + 1.0 / (2 * k + 3)
    return t * pq, -2.0 * x * t * pr


def increments(xp: Any, x: Any) -> tuple[Any, Any, Any]:
    """(q(x), q₋(x) − q₊(x), degenerate) elementwise, in the namespace `xp`."""
    series_q, series_r = series(x, SERIES_TERMS)
    ax = xp.abs(x)
    # Both logarithms' branches, as bias::increments takes them (the unused side of each
    # `where` may be NaN; it is never selected).
    ln_1mx = xp.where(x < 1.0, xp.log1p(-x), xp.log(xp.abs(x - 1.0)))
    ln_1px = xp.where(x > -1.0, xp.log1p(x), xp.log(xp.abs(-1.0 - x)))
    log_q, log_r = -(ln_1mx + ln_1px), 2.0 * x - ln_1px + ln_1mx
    small = ax < LONG_SERIES_LIMIT
    dq = xp.where(small, series_q, log_q)
    dr = xp.where(small, series_r, log_r)
    degenerate = ~(ax <= 8.98846567431158e307) | (ax == 1.0)
    return dq, dr, degenerate


def x_scale(param: str) -> float:
    """s in x = s·γ·g: 2 for b = u² − v², 1 otherwise."""
    return 2.0 if param == "u2v2" else 1.0
