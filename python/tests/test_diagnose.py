"""`dlncheck diagnose` and `dlncheck.diagnose` (issue 22, item 1) on numpy loops that each
make one mistake a real loop makes: both routes name it (or, for momentum, say that there
is no exact theory), and agree with each other."""

import json
import subprocess

import numpy as np
import pytest

import dlncheck
from _cli import cli


rng = np.random.default_rng(0)
X = rng.standard_normal((20, 30))
B_STAR = np.zeros(30)
B_STAR[:3] = [1.5, -2.0, 1.0]
Y = X @ B_STAR
ALPHA = 0.1
ONES = np.ones(30)


def gd(u, v, step, beta, gammas, logged=lambda g: g, momentum=0.0, data=(X, Y)):
    """GD as a user writes it, until the loss is below 1e-27 (float32: 1e-12) or the
    stepsizes end; returns the stepsizes used, the logged gradients, the final b, u, v."""
    (Xd, Yd), grads, velocity = data, [], None
    stop = 1e-12 if Xd.dtype == np.float32 else 1e-27
    for k, gamma in enumerate(gammas):
        if k % 100 == 0 and np.sum((Xd @ beta(u, v) - Yd) ** 2) / 40 < stop:
            break
        g = Xd.T @ (Xd @ beta(u, v) - Yd) / Xd.shape[0]
        grads.append(logged(g))
        u, v, velocity = step(u, v, g, gamma, velocity, momentum)
    return gammas[: len(grads)], np.array(grads), beta(u, v), u, v


def uv_step(u, v, g, gamma, velocity, momentum):
    du, dv = g * v, g * u
    if momentum:
        velocity = (du, dv) if velocity is None else (momentum * velocity[0] + du, momentum * velocity[1] + dv)
        du, dv = velocity
    return u - gamma * du, v - gamma * dv, velocity


def u2v2_step(u, v, g, gamma, velocity, momentum):
    return u - gamma * 2 * u * g, v + gamma * 2 * v * g, velocity


def uv(u, v):
    return u * v


def u2v2(u, v):
    return u**2 - v**2


def by_cli(tmp_path, gammas, grads, beta, data=(X, Y), extra=(), **stored):
    np.savez(tmp_path / "p.npz", X=np.asarray(data[0], dtype=np.float64), y=np.asarray(data[1], dtype=np.float64))
    np.savez(tmp_path / "t.npz", stepsizes=np.asarray(gammas), grads=grads, beta=beta, **stored)
    cmd = [cli(), "--json", "diagnose", "--problem", str(tmp_path / "p.npz"), "--trajectory", str(tmp_path / "t.npz")]
    res = subprocess.run(cmd + list(extra), capture_output=True, text=True)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def by_python(gammas, grads, beta, data=(X, Y), u=None, v=None, **start):
    acc = dlncheck.GainAccumulator(**start, d=data[0].shape[1], diagnose=True)
    acc.add_many(np.asarray(gammas), grads)
    return dlncheck.diagnose(np.asarray(data[0], dtype=np.float64), data[1], acc, beta, u=u, v=v)


CONSTANT = np.full(300_000, 0.2)
DECAYING = 0.25 / (1 + np.arange(300_000) / 100_000)
SQRT2 = np.sqrt(2) * ALPHA * ONES
LOOPS = {
    # name: (stepsizes, u0, v0, step, b(u, v), how gradients are logged, hypothesis)
    "sqrt2-missing": (CONSTANT, ALPHA * ONES, 0 * ONES, uv_step, uv, None, "start-scale"),
    "u2v2": (np.full(300_000, 0.1), ALPHA * ONES, ALPHA * ONES, u2v2_step, u2v2, None, "param"),
    "loss-1-over-n": (CONSTANT, SQRT2, 0 * ONES, uv_step, uv, lambda g: 2 * g, "gradient-scale"),
    "lag": (DECAYING, SQRT2, 0 * ONES, uv_step, uv, "late", "lag"),
}


def run_loop(name):
    gammas, u0, v0, step, beta, logged, _ = LOOPS[name]
    gammas, grads, b, u, v = gd(u0, v0, step, beta, gammas, logged if callable(logged) else (lambda g: g))
    if logged == "late":
        grads = np.vstack([np.zeros((1, 30)), grads[:-1]])  # row k holds step k − 1's gradient
    return gammas, grads, b, u, v


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_each_mistake_is_named_by_both_routes(tmp_path, name):
    hypothesis = LOOPS[name][-1]
    gammas, grads, b, _, _ = run_loop(name)
    code, cli = by_cli(tmp_path, gammas, grads, b, alpha=ALPHA)
    py = by_python(gammas, grads, b, alpha=ALPHA)
    for out in (cli, py):
        assert out["explained"] and out["best"]["hypothesis"] == hypothesis, (name, out["best"])
        assert out["best"]["rel_err"] <= 1e-8 and out["best"]["message"]
    assert code == 0
    assert cli["best"] == py["best"]
    assert [t["hypothesis"] for t in cli["tried"]] == [t["hypothesis"] for t in py["tried"]]


def test_the_named_cause_says_what_to_do():
    gammas, grads, b, _, _ = run_loop("loss-1-over-n")
    best = by_python(gammas, grads, b, alpha=ALPHA)["best"]
    assert best["factor"] == 2.0 and "divide yours by 2" in best["message"]
    assert "‖Xb − y‖²/n" in best["message"]
    gammas, grads, b, _, _ = run_loop("sqrt2-missing")
    assert "√2" in by_python(gammas, grads, b, alpha=ALPHA)["best"]["message"]
    gammas, grads, b, _, _ = run_loop("u2v2")
    best = by_python(gammas, grads, b, alpha=ALPHA)["best"]
    assert best["param"] == "u2v2" and "--param u2v2" in best["message"]


def test_a_constant_stepsize_lag_is_said_to_be_invisible():
    gammas, grads, b, u, v = gd(SQRT2, 0 * ONES, uv_step, uv, CONSTANT)
    grads = np.vstack([np.zeros((1, 30)), grads[:-1]])
    out = by_python(gammas, grads, b, alpha=ALPHA)
    assert out["best"]["hypothesis"] == "none"  # the lag is invisible: the run agrees as logged
    lag = next(t for t in out["tried"] if t["hypothesis"] == "lag" and t["shift"] == "late")
    assert "invisible" in lag["message"]


def test_u0_equal_to_v0_is_named(tmp_path):
    # b ≥ 0 needs an interpolator with b ≥ 0: d = 60 puts y inside the cone X·R₊^d.
    X60 = np.random.default_rng(1).standard_normal((20, 60))
    data = (X60, X60[:, :30] @ B_STAR)
    same = ALPHA * np.ones(60)
    gammas, grads, b, _, _ = gd(same, same, uv_step, uv, np.full(300_000, 0.1), data=data)
    code, cli = by_cli(tmp_path, gammas, grads, b, data=data, alpha=ALPHA)
    py = by_python(gammas, grads, b, data=data, alpha=ALPHA)
    for out in (cli, py):
        assert out["best"]["hypothesis"] == "start" and out["best"]["guess"] == "equal", out["best"]
    assert code == 0


def test_any_start_is_recovered_from_the_final_weights(tmp_path):
    # A start of no simple shape: u₀ = c_i·√2α with c_i in [0.5, 2], stored as alpha.
    c = np.exp(np.random.default_rng(2).uniform(np.log(0.5), np.log(2), 30))
    gammas, grads, b, u, v = gd(c * SQRT2, 0 * ONES, uv_step, uv, CONSTANT)
    code, cli = by_cli(tmp_path, gammas, grads, b, alpha=ALPHA, u=u, v=v)
    py = by_python(gammas, grads, b, u=u, v=v, alpha=ALPHA)
    for out in (cli, py):
        best = out["best"]
        assert best["hypothesis"] == "start" and best["guess"] == "recovered", best
        assert best["rel_err"] <= 1e-8
        assert best["factor_min"] == pytest.approx(c.min(), rel=1e-8)
        assert best["factor_max"] == pytest.approx(c.max(), rel=1e-8)
    assert code == 0
    # Without u, v nothing explains it.
    assert not by_python(gammas, grads, b, alpha=ALPHA)["explained"]


def test_a_run_that_agrees_is_diagnosed_none(tmp_path):
    gammas, grads, b, u, v = gd(SQRT2, 0 * ONES, uv_step, uv, CONSTANT)
    code, out = by_cli(tmp_path, gammas, grads, b, alpha=ALPHA, u=u, v=v)
    assert code == 0 and out["best"]["hypothesis"] == "none"
    assert by_python(gammas, grads, b, u=u, v=v, alpha=ALPHA)["best"]["hypothesis"] == "none"


def test_momentum_is_replayed_and_has_no_exact_theory(tmp_path):
    gammas, grads, b, _, _ = gd(SQRT2, 0 * ONES, uv_step, uv, np.full(200_000, 0.02), momentum=0.9)
    code, cli = by_cli(tmp_path, gammas, grads, b, alpha=ALPHA)
    py = by_python(gammas, grads, b, alpha=ALPHA)
    for out in (cli, py):
        best = out["best"]
        assert not out["explained"]
        assert best["hypothesis"] == "momentum" and best["mu"] == 0.9 and not best["exact"], best
        assert best["rel_err"] <= 1e-9 and "no exact discrete-time theory" in best["message"]
    assert code == 1


def test_a_float32_loop_agrees_at_its_floor(tmp_path):
    f32 = np.float32
    data = (X.astype(f32), Y.astype(f32))
    gammas, grads, b, _, _ = gd(SQRT2.astype(f32), np.zeros(30, f32), uv_step, uv, np.full(100_000, f32(0.2)), data=data)
    assert grads.dtype == f32 and b.dtype == f32
    code, cli = by_cli(tmp_path, gammas, grads, b, data=data, alpha=ALPHA)
    acc = dlncheck.GainAccumulator(ALPHA, d=30, diagnose=True)
    acc.add_many(np.asarray(gammas, dtype=f32), grads)
    py = dlncheck.diagnose(X, Y, acc, b)
    for out in (cli, py):
        assert out["explained"] and out["best"]["hypothesis"] == "none", out["best"]
        assert 1e-7 < out["tol_used"] < 1e-3 and "float32" in out["tol_reason"]
    assert code == 0


def test_without_the_readings_python_tries_what_it_can():
    gammas, grads, b, _, _ = run_loop("loss-1-over-n")
    acc = dlncheck.GainAccumulator(ALPHA, d=30)
    acc.add_many(np.asarray(gammas), grads)
    out = dlncheck.diagnose(X, Y, acc, b)
    assert not out["explained"]
    skipped = [t for t in out["tried"] if t["hypothesis"] in ("gradient-scale", "lag", "momentum")]
    assert len(skipped) == 2 + 2 + 5
    assert all(t["rel_err"] is None and "diagnose=True" in t["message"] for t in skipped)


def test_predict_carries_the_command_lines_message(tmp_path):
    gammas, grads, b, _, _ = run_loop("loss-1-over-n")
    acc = dlncheck.GainAccumulator(ALPHA, d=30)
    acc.add_many(np.asarray(gammas), grads)
    out = dlncheck.predict(X, Y, acc, b)
    assert out["verdict"] == "disagrees" and out["message"].startswith("verdict: disagrees")
    assert "dlncheck.diagnose" in out["message"]
    np.savez(tmp_path / "p.npz", X=X, y=Y)
    np.savez(tmp_path / "t.npz", stepsizes=np.asarray(gammas), grads=grads, beta=b, alpha=ALPHA)
    res = subprocess.run(
        [cli(), "--json", "predict", "--problem", str(tmp_path / "p.npz"), "--trajectory", str(tmp_path / "t.npz")],
        capture_output=True,
        text=True,
    )
    cli_out = json.loads(res.stdout)
    assert res.returncode == 1 and cli_out["message"].startswith("verdict: disagrees")
    assert "divide yours by 2" in cli_out["hint"]


def test_the_accumulator_with_readings_keeps_its_gain_and_stays_transactional():
    gammas, grads, _, _, _ = run_loop("sqrt2-missing")
    plain, full = dlncheck.GainAccumulator(ALPHA, d=30), dlncheck.GainAccumulator(ALPHA, d=30, diagnose=True)
    plain.add_many(np.asarray(gammas), grads)
    full.add_many(np.asarray(gammas), grads)
    assert full.diagnose and not plain.diagnose
    assert np.array_equal(plain.gain, full.gain) and np.array_equal(plain.rho, full.rho)
    before = (full.steps, full.gain.copy())
    bad = grads[:3].copy()
    bad[2, 5] = np.nan
    with pytest.raises(ValueError):
        full.add_many(np.full(3, 0.2), bad)
    assert full.steps == before[0] and np.array_equal(full.gain, before[1])
