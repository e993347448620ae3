"""Depth and momentum (theory/README.md § Deeper networks and momentum) from Python: a
numpy GD loop on b = u³ − v³ at three stepsizes, checked by `predict` against gradient
flow's limit (no verdict: there is no exact discrete-time theory), and `train` with
momentum, which has no theory to predict with."""

import numpy as np
import pytest

import dlncheck


def problem(n=20, d=30, s=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    b = np.zeros(d)
    b[rng.choice(d, s, replace=False)] = rng.choice([-1, 1], s) * (1 + np.abs(rng.standard_normal(s)))
    return X, X @ b


def depth3_gd(X, y, alpha, gamma, tol=1e-23, steps=3_000_000):
    """GD on b = u³ − v³ from u₀ = v₀ = α, written in (u, v) as a user writes it."""
    n, d = X.shape
    u, v = np.full(d, alpha), np.full(d, alpha)
    for k in range(steps):
        b = u**3 - v**3
        r = X @ b - y
        if k % 50 == 0 and r @ r / (2 * n) < tol:
            break
        g = X.T @ r / n
        u, v = u - 3 * gamma * u**2 * g, v + 3 * gamma * v**2 * g
    return u**3 - v**3


def test_a_depth3_loop_approaches_the_flow_limit_as_the_stepsize_falls_with_no_verdict():
    X, y = problem()
    acc = dlncheck.GainAccumulator(0.3, X.shape[1], param="depth:3")
    dists = []
    for gamma in (0.04, 0.02, 0.01):
        out = dlncheck.predict(X, y, acc, depth3_gd(X, y, 0.3, gamma))
        assert out["verdict"] is None
        assert "no exact discrete-time theory" in out["message"]
        assert out["kkt_flow"] <= 1e-12
        dists.append(out["dist_flow"])
    assert dists[0] > dists[1] > dists[2], dists
    order = np.polyfit(np.log([0.04, 0.02, 0.01]), np.log(dists), 1)[0]
    assert 0.8 <= order <= 1.3, order
    with pytest.raises(ValueError, match="depth:3 has no gain"):
        dlncheck.diagnose(X, y, acc, depth3_gd(X, y, 0.3, 0.04))


def test_train_with_momentum_reports_the_balance_gain_and_no_accumulator():
    X, y = problem(seed=1)
    plain = dlncheck.train(X, y, 0.1, 0.1)
    hb = dlncheck.train(X, y, 0.1, 0.05, momentum=0.5)
    assert hb["acc"] is None and plain["acc"] is not None
    # The balance gain of plain GD is its gain (the conservation law).
    assert abs(plain["balance_gain_l1"] - plain["gain_l1"]) <= 1e-9 * plain["gain_l1"]
    assert hb["balance_gain_l1"] > 0 and hb["gain_l1"] is None
    zero = dlncheck.train(X, y, 0.1, 0.1, momentum=0.0)
    assert np.array_equal(zero["beta"], plain["beta"])
    for bad in (1.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            dlncheck.train(X, y, 0.1, 0.05, momentum=bad)


def test_the_same_numpy_loop_checked_by_the_command_line_predict(tmp_path):
    import json

    from dlncheck._dlncheck import command

    X, y = problem()
    np.savez(tmp_path / "p.npz", X=X, y=y)
    dists = []
    for gamma in (0.04, 0.02, 0.01):
        t = tmp_path / f"t{gamma}.npz"
        d = X.shape[1]
        np.savez(t, alpha=np.full(d, 0.3), stepsizes=np.array([gamma]), grads=np.zeros((1, d)),
                 beta=depth3_gd(X, y, 0.3, gamma))
        code, out, text = command(["--json", "predict", "--problem", str(tmp_path / "p.npz"), "--trajectory", str(t),
                                   "--param", "depth:3"])
        assert code == 0, text
        res = json.loads(out)
        assert res["verdict"] is None
        dists.append(res["dist_flow"])
    assert dists[0] > dists[1] > dists[2], dists
