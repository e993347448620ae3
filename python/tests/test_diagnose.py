"""`dlncheck diagnose` (issue 22, item 1) on numpy loops that each make one mistake a real
loop makes: the diagnosis names it (or, for momentum, says there is no exact theory)."""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = pathlib.Path(os.environ.get("DLNCHECK_BIN", ROOT / "target" / "release" / "dlncheck"))

rng = np.random.default_rng(0)
X = rng.standard_normal((20, 30))
B_STAR = np.zeros(30)
B_STAR[:3] = [1.5, -2.0, 1.0]
Y = X @ B_STAR
ALPHA = 0.1


def gd(u, v, step, beta, gammas, logged=lambda g, k: g, momentum=0.0, data=(X, Y)):
    """GD as a user writes it, until the loss is below 1e-27 or the stepsizes end;
    returns the stepsizes used, the logged gradients and the final b."""
    (Xd, Yd), grads, velocity = data, [], None
    for k, gamma in enumerate(gammas):
        if k % 100 == 0 and np.sum((Xd @ beta(u, v) - Yd) ** 2) / 40 < 1e-27:
            break
        g = Xd.T @ (Xd @ beta(u, v) - Yd) / 20
        grads.append(logged(g, k))
        u, v, velocity = step(u, v, g, gamma, velocity, momentum)
    return gammas[: len(grads)], np.array(grads), beta(u, v)


def uv_step(u, v, g, gamma, velocity, momentum):
    du, dv = g * v, g * u
    if momentum:
        velocity = (du, dv) if velocity is None else (momentum * velocity[0] + du, momentum * velocity[1] + dv)
        du, dv = velocity
    return u - gamma * du, v - gamma * dv, velocity


def uv(u, v):
    return u * v


def diagnose(tmp_path, gammas, grads, beta, data=(X, Y), **start):
    np.savez(tmp_path / "p.npz", X=data[0], y=data[1])
    np.savez(tmp_path / "t.npz", stepsizes=np.asarray(gammas), grads=grads, beta=beta, **start)
    cmd = [str(CLI), "--json", "diagnose", "--problem", str(tmp_path / "p.npz"), "--trajectory", str(tmp_path / "t.npz")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    return res.returncode, json.loads(res.stdout)


CONSTANT = np.full(300_000, 0.2)
DECAYING = 0.25 / (1 + np.arange(300_000) / 100_000)
ONES = np.ones(30)


@pytest.mark.parametrize(
    "name, gammas, u0, v0, logged, step, beta, start, hypothesis",
    [
        ("sqrt2-missing", CONSTANT, ALPHA * ONES, 0 * ONES, None, uv_step, uv, {"alpha": ALPHA}, "start-scale"),
        (
            "u2v2",
            np.full(300_000, 0.1),
            ALPHA * ONES,
            ALPHA * ONES,
            None,
            lambda u, v, g, gamma, vel, m: (u - gamma * 2 * u * g, v + gamma * 2 * v * g, vel),
            lambda u, v: u**2 - v**2,
            {"alpha": ALPHA},
            "param",
        ),
        ("loss-1-over-n", CONSTANT, np.sqrt(2) * ALPHA * ONES, 0 * ONES, lambda g, k: 2 * g, uv_step, uv, {"alpha": ALPHA}, "gradient-scale"),
        ("lag", DECAYING, np.sqrt(2) * ALPHA * ONES, 0 * ONES, "lag", uv_step, uv, {"alpha": ALPHA}, "lag"),
    ],
)
def test_each_mistake_is_named(tmp_path, name, gammas, u0, v0, logged, step, beta, start, hypothesis):
    if logged == "lag":
        gammas, grads, b = gd(u0, v0, step, beta, gammas)
        grads = np.vstack([np.zeros((1, 30)), grads[:-1]])  # row k holds step k − 1's gradient
    else:
        gammas, grads, b = gd(u0, v0, step, beta, gammas, logged or (lambda g, k: g))
    code, out = diagnose(tmp_path, gammas, grads, b, **start)
    assert code == 0, out
    assert out["best"]["hypothesis"] == hypothesis, (name, out["best"])
    assert out["best"]["rel_err"] <= 1e-8 and out["best"]["message"]
    assert out["tried"][0]["hypothesis"] == hypothesis


def test_u0_equal_to_v0_is_named(tmp_path):
    # b ≥ 0 needs an interpolator with b ≥ 0: d = 60 puts y inside the cone X·R₊^d.
    X60 = np.random.default_rng(1).standard_normal((20, 60))
    data = (X60, X60[:, :30] @ B_STAR)
    same = ALPHA * np.ones(60)
    gammas, grads, b = gd(same, same, uv_step, uv, np.full(300_000, 0.1), data=data)
    code, out = diagnose(tmp_path, gammas, grads, b, data=data, alpha=ALPHA)
    assert code == 0 and out["best"]["hypothesis"] == "start", out["best"]


def test_a_run_that_agrees_is_diagnosed_none(tmp_path):
    gammas, grads, b = gd(np.sqrt(2) * ALPHA * ONES, 0 * ONES, uv_step, uv, CONSTANT)
    code, out = diagnose(tmp_path, gammas, grads, b, alpha=ALPHA)
    assert code == 0 and out["best"]["hypothesis"] == "none"


def test_momentum_has_no_exact_theory_and_says_so(tmp_path):
    gammas, grads, b = gd(np.sqrt(2) * ALPHA * ONES, 0 * ONES, uv_step, uv, np.full(200_000, 0.02), momentum=0.9)
    code, out = diagnose(tmp_path, gammas, grads, b, alpha=ALPHA)
    assert code == 1, out["best"]
    assert "momentum" in out["best"]["message"]
