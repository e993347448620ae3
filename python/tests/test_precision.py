"""Verdicts that know the run's precision (issue 22, item 2; theory/README.md § Precision of
a run): a float32 loop gets `agrees` with a tolerance raised to its floor, and says why;
a float64 loop keeps the tolerance asked for; the file route does the same."""

import json
import subprocess

import numpy as np
import pytest

import dlncheck
from _cli import cli

U32 = 2.0**-24


def problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 30))
    b = np.zeros(30)
    b[:3] = [1.5, -2.0, 1.0]
    return X, X @ b


def loop(X, y, dtype, steps, gamma=0.2, alpha=0.1):
    """The README's loop, in `dtype` throughout (data, weights, gradients)."""
    Xt, yt, g32 = X.astype(dtype), y.astype(dtype), dtype(gamma)
    u, v = (np.sqrt(2) * alpha * np.ones(30)).astype(dtype), np.zeros(30, dtype)
    acc = dlncheck.GainAccumulator(alpha, d=30)
    grads = []
    for _ in range(steps):
        g = Xt.T @ (Xt @ (u * v) - yt) / dtype(20)
        acc.add(gamma, g)
        grads.append(g)
        u, v = u - g32 * g * v, v - g32 * g * u
    return acc, u, v, np.array(grads)


def test_a_float32_loop_agrees_at_its_floor_and_says_why(tmp_path):
    X, y = problem()
    steps = 100_000
    acc, u, v, grads = loop(X, y, np.float32, steps)
    beta = u * v
    out = dlncheck.predict(X, y, acc, beta=beta)
    floor = U32 * (4 * np.sqrt(steps) + 2 * (1 + np.abs(acc.gain).max()))
    assert out["verdict"] == "agrees", out
    assert out["tol_used"] == floor and "float32" in out["tol_reason"]
    assert 1e-8 < out["rel_err"] <= floor  # the asked-for 1e-8 was out of reach
    # The file route: float32 gradients and beta in the trajectory, the same floor.
    np.savez(tmp_path / "p.npz", X=X, y=y)
    np.savez(tmp_path / "t.npz", alpha=0.1, stepsizes=np.full(steps, 0.2), grads=grads, beta=beta)
    cmd = [cli(), "--json", "predict", "--problem", str(tmp_path / "p.npz"), "--trajectory", str(tmp_path / "t.npz")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    got = json.loads(res.stdout)
    assert res.returncode == 0 and got["verdict"] == "agrees", res.stderr
    assert abs(got["tol_used"] - floor) <= 1e-12 * floor and "float32" in got["tol_reason"]


def test_a_float64_loop_keeps_the_tolerance_asked_for():
    X, y = problem()
    acc, u, v, _ = loop(X, y, np.float64, 60_000)
    out = dlncheck.predict(X, y, acc, beta=u * v, u=u, v=v)
    assert out["tol_used"] == 1e-8 and out["tol_reason"] is None
    assert out["verdict"] in ("agrees", "not_converged")


def test_a_float64_loop_that_lost_digits_in_u_v_gets_its_floor():
    # The case: α = 1e-8, γ = 0.3 in (u, v) coordinates: the smaller of
    # w± = (u ± v)/√2 drops below ε times the larger, and the conservation law's defect
    # is within what rounding can do: the tolerance rises to it, with the reason.
    X, y = problem()
    acc, u, v, _ = loop(X, y, np.float64, 20_000, gamma=0.3, alpha=1e-8)
    out = dlncheck.predict(X, y, acc, beta=u * v, u=u, v=v)
    assert out["tol_used"] > 1e-8 and "conservation" in out["tol_reason"], out
    assert out["verdict"] in ("agrees", None), out
    if out["verdict"] is None:
        assert out["tol_used"] >= 1e-2 and out["message"].startswith("verdict: none")


def test_weights_from_another_step_are_refused():
    X, y = problem()
    acc, u, v, _ = loop(X, y, np.float64, 20_000)
    # u, v that do not give beta: not lost digits, a mistake; nothing is decided.
    with pytest.raises(ValueError, match="same step"):
        dlncheck.predict(X, y, acc, beta=u * v, u=u * 3, v=v / 2)


def test_a_start_that_does_not_fit_is_not_taken_for_lost_digits():
    X, y = problem()
    acc, u, v, _ = loop(X, y, np.float64, 20_000)
    # The same steps credited to a start 1.5 times larger: the conservation law is off
    # by ln 2.25, far beyond rounding, so the tolerance stays and the verdict disagrees.
    wrong = dlncheck.GainAccumulator(0.15, d=30)
    wrong.add_many(np.full(acc.steps, 0.2), loop(X, y, np.float64, 20_000)[3])
    out = dlncheck.predict(X, y, wrong, beta=u * v, u=u, v=v)
    assert out["tol_used"] == 1e-8 and out["tol_reason"] is None
    assert out["verdict"] in ("disagrees", "not_converged") and out["rel_err"] > 1e-3
