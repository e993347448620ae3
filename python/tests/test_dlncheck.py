"""The Python package against independent expectations: numpy loops written here, the
command line on the same steps, and bad inputs."""

import json
import subprocess

import numpy as np
import pytest

import dlncheck
from _cli import cli


def problem(n=20, d=30, s=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    b = np.zeros(d)
    b[rng.choice(d, s, replace=False)] = rng.choice([-1, 1], s) * (1 + np.abs(rng.standard_normal(s)))
    return X, X @ b


def loop(X, y, alpha, gamma, steps, batch=None, seed=0, acc=None, log=None, tol=0.0):
    """(S)GD on b = u ⊙ v as a user writes it, for `steps` steps or until the training
    loss is below `tol`; feeds acc and/or logs the gradients."""
    n, d = X.shape
    u, v = np.sqrt(2) * alpha * np.ones(d), np.zeros(d)
    rng = np.random.default_rng(seed)
    for k in range(steps):
        if tol > 0 and k % 100 == 0 and np.sum((X @ (u * v) - y) ** 2) / (2 * n) < tol:
            break
        rows = slice(None) if batch is None else rng.choice(n, batch, replace=False)
        Xb, yb = X[rows], y[rows]
        g = Xb.T @ (Xb @ (u * v) - yb) / Xb.shape[0]
        if acc is not None:
            acc.add(gamma, g)
        if log is not None:
            log.append(g)
        u, v = u - gamma * g * v, v - gamma * g * u
    return u * v


def test_gd_loop_agrees_with_the_theory():
    X, y = problem()
    acc = dlncheck.GainAccumulator(0.1, d=30)
    beta = loop(X, y, 0.1, 0.2, 1_000_000, acc=acc, tol=1e-27)
    assert np.sum((X @ beta - y) ** 2) / 40 < 1e-27
    out = dlncheck.predict(X, y, acc, beta=beta)
    assert out["verdict"] == "agrees"
    assert out["rel_err"] <= 1e-10
    assert np.allclose(out["beta_theory"], beta, rtol=0, atol=1e-9)
    assert not out["float32_source"]
    # The same prediction from solve_implicit.
    np.testing.assert_array_equal(dlncheck.solve_implicit(X, y, acc)["beta"], out["beta_theory"])


def test_sgd_loop_agrees_with_the_theory():
    X, y = problem(seed=1)
    acc = dlncheck.GainAccumulator(np.full(30, 0.1))
    beta = loop(X, y, 0.1, 0.05, 2_000_000, batch=1, acc=acc, tol=1e-27)
    out = dlncheck.predict(X, y, acc, beta=beta)
    assert out["verdict"] == "agrees", out["rel_err"]
    assert out["rel_err"] <= 1e-10
    # A run stopped early is not converged; without beta there is no verdict.
    early = dlncheck.GainAccumulator(0.1, d=30)
    b = loop(X, y, 0.1, 0.05, 200, batch=1, acc=early)
    assert dlncheck.predict(X, y, early, beta=b)["verdict"] == "not_converged"
    assert dlncheck.predict(X, y, early)["verdict"] is None


def test_add_many_equals_add_and_the_cli_to_the_bit(tmp_path):
    X, y = problem(seed=2)
    grads = []
    beta = loop(X, y, 0.1, 0.3, 3000, log=grads)
    G = np.array(grads)
    one, many = dlncheck.GainAccumulator(0.1, d=30), dlncheck.GainAccumulator(0.1, d=30)
    for g in G:
        one.add(0.3, g)
    many.add_many(np.full(len(G), 0.3), G)
    np.testing.assert_array_equal(one.gain, many.gain)
    np.testing.assert_array_equal(one.rho, many.rho)
    traj = tmp_path / "t.npz"
    np.savez(traj, alpha=0.1, stepsizes=np.full(len(G), 0.3), grads=G, beta=beta)
    cli_out = json.loads(subprocess.run([cli(), "gain", "--trajectory", traj, "--json"], capture_output=True, check=True).stdout)
    np.testing.assert_array_equal(np.array(cli_out["gain"]), one.gain)
    np.testing.assert_array_equal(np.array(cli_out["rho"]), one.rho)
    assert one.steps == 3000


def test_save_round_trips_through_the_cli(tmp_path):
    X, y = problem(seed=3)
    acc = dlncheck.GainAccumulator(0.1, d=30)
    beta = loop(X, y, 0.1, 0.2, 1_000_000, acc=acc, tol=1e-27)
    acc.save(tmp_path / "acc.npz", beta=beta)
    np.savez(tmp_path / "p.npz", X=X, y=y)
    gain = json.loads(subprocess.run([cli(), "gain", tmp_path / "acc.npz", "--json"], capture_output=True, check=True).stdout)
    np.testing.assert_array_equal(np.array(gain["gain"]), acc.gain)
    res = subprocess.run(
        [cli(), "predict", "--problem", tmp_path / "p.npz", "--run", tmp_path / "acc.npz", "--json"], capture_output=True
    )
    assert res.returncode == 0, res.stderr
    pred = json.loads(res.stdout)
    assert pred["verdict"] == "agrees"
    np.testing.assert_array_equal(np.array(pred["beta_theory"]), dlncheck.predict(X, y, acc)["beta_theory"])
    res = subprocess.run(
        [cli(), "compare", "--problem", tmp_path / "p.npz", "--trajectory", f"{tmp_path / 'acc.npz'}:mine", "--json"],
        capture_output=True,
    )
    assert res.returncode == 0, res.stderr
    rows = {r["method"]: r for r in json.loads(res.stdout)["rows"]}
    assert rows["mine: run"]["dist_theory"] <= 1e-10


def test_float32_gradients_are_converted_and_noted():
    X, y = problem(seed=4)
    acc = dlncheck.GainAccumulator(0.1, d=30)
    acc.add(0.1, np.ones(30, dtype=np.float32))
    assert acc.float32_source
    assert dlncheck.predict(X, y, acc)["float32_source"]


def test_bad_inputs_raise_with_a_message():
    acc = dlncheck.GainAccumulator(0.1, d=3)
    with pytest.raises(ValueError, match="expected d = 3"):
        acc.add(0.1, np.ones(4))
    with pytest.raises(ValueError, match="not finite"):
        acc.add(0.1, np.array([1.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="1-D"):
        acc.add(0.1, np.ones((3, 3)))
    with pytest.raises(ValueError, match="stepsize"):
        acc.add(-0.1, np.ones(3))
    with pytest.raises(ValueError, match="exactly 0"):
        acc.add(1.0, np.array([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="needs d"):
        dlncheck.GainAccumulator(0.1)
    with pytest.raises(ValueError, match="alpha"):
        dlncheck.GainAccumulator(np.array([0.1, -1.0]))
    X, y = problem()
    with pytest.raises(ValueError, match="one label per row"):
        dlncheck.predict(X, y[:5], dlncheck.GainAccumulator(0.1, d=30))
    with pytest.raises(ValueError, match="need d > n"):
        dlncheck.min_l2(X.T[:20, :20], y)


def test_numerical_failure_is_its_own_exception():
    X, y = problem()
    with pytest.raises(dlncheck.NumericalError, match="minimum-ℓ2"):
        dlncheck.min_l2(X * 1e-10, y * 1e300)  # b ≈ 1e310: beyond f64
    bp = dlncheck.basis_pursuit(X, y)
    assert bp["rel_gap"] <= 1e-9 and bp["feasibility"] <= 1e-9
    assert (bp["backend"], bp["dual_from"], bp["fallback"]) == ("homotopy", "homotopy", None)
    # ‖·‖₁ is minimal among interpolators, the minimum-ℓ2 one included.
    assert bp["objective"] <= np.abs(dlncheck.min_l2(X, y)).sum()
    np.testing.assert_allclose(X @ dlncheck.min_l2(X, y), y, atol=1e-10)


def test_a_rank_deficient_x_is_blamed_when_a_solver_fails():
    X, y = problem()
    X[1], y[1] = X[0], y[0] + 1.0  # two equal rows, different labels: no interpolator
    with pytest.raises(ValueError, match="rank-deficient"):
        dlncheck.basis_pursuit(X, y)
    with pytest.raises(ValueError, match="rank-deficient"):
        dlncheck.min_l2(X, y)
