"""The exact family (theory/README.md § Other starts and parametrisations) from numpy
loops written here as a user writes them: any start of b = u ⊙ v, u₀ = v₀ (b ≥ 0),
b = u² − v², mirror descent. Each gets `agrees` with its own parametrisation and start,
by the Python route (the accumulator) and the file route (`dlncheck predict
--trajectory`), and `disagrees` with the default one."""

import json
import subprocess

import numpy as np
import pytest

import dlncheck
from _cli import cli


def problem(n=20, d=30, s=3, seed=0, positive=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    b = np.zeros(d)
    signs = np.ones(s) if positive else rng.choice([-1, 1], s)
    b[rng.choice(d, s, replace=False)] = signs * (1 + np.abs(rng.standard_normal(s)))
    return X, X @ b


def gradient(X, y, b):
    return X.T @ (X @ b - y) / X.shape[0]


def train(X, y, step, b_of, gamma, steps=2_000_000, tol=1e-27):
    """GD with a user's update `step(g, gamma)` and readout `b_of()`; returns the final
    b and the logged gradients."""
    n = X.shape[0]
    grads = []
    for k in range(steps):
        b = b_of()
        if k % 100 == 0 and np.sum((X @ b - y) ** 2) / (2 * n) < tol:
            break
        g = gradient(X, y, b)
        grads.append(g)
        step(g, gamma)
    return b_of(), np.array(grads)


def uv_loop(X, y, u0, v0, gamma):
    w = {"u": u0.copy(), "v": v0.copy()}

    def step(g, gamma):
        w["u"], w["v"] = w["u"] - gamma * g * w["v"], w["v"] - gamma * g * w["u"]

    return train(X, y, step, lambda: w["u"] * w["v"], gamma)


def u2v2_loop(X, y, u0, v0, gamma):
    w = {"u": u0.copy(), "v": v0.copy()}

    def step(g, gamma):
        # ∂L/∂u = 2u g, ∂L/∂v = −2v g for b = u² − v².
        w["u"], w["v"] = w["u"] - gamma * 2 * w["u"] * g, w["v"] + gamma * 2 * w["v"] * g

    return train(X, y, step, lambda: w["u"] ** 2 - w["v"] ** 2, gamma)


def md_loop(X, y, alpha, b0, gamma):
    # ∇ψ_α(b) = ½ asinh(b/α²): the mirror step in z = asinh(b/α²) is z ← z − 2γg.
    z = {"z": np.arcsinh(b0 / alpha**2)}

    def step(g, gamma):
        z["z"] = z["z"] - 2 * gamma * g

    return train(X, y, step, lambda: alpha**2 * np.sinh(z["z"]), gamma)


def cases():
    """(name, problem, loop result, accumulator keywords, trajectory arrays, --param)."""
    d = 30
    rng = np.random.default_rng(7)
    X, y = problem(seed=0)
    u0, v0 = 0.1 * (1 + rng.random(d)), 0.1 * (rng.random(d) - 0.5)
    out = {}
    out["uv-any-start"] = (X, y, uv_loop(X, y, u0, v0, 0.2), {"u0": u0, "v0": v0}, {"u0": u0, "v0": v0}, "uv")
    out["u2v2"] = (
        X,
        y,
        u2v2_loop(X, y, np.full(d, 0.1), np.full(d, 0.1), 0.1),
        {"u0": np.full(d, 0.1), "v0": np.full(d, 0.1), "param": "u2v2"},
        {"u0": np.full(d, 0.1), "v0": np.full(d, 0.1)},
        "u2v2",
    )
    b0 = 0.01 * rng.standard_normal(d)
    out["md"] = (
        X,
        y,
        md_loop(X, y, 0.1, b0, 0.1),
        {"alpha": 0.1, "d": d, "b0": b0, "param": "md"},
        {"alpha": np.float64(0.1), "b0": b0},
        "md",
    )
    # u₀ = v₀: b ≥ 0, so the problem needs an interpolator with b ≥ 0 (d = 60, b* ≥ 0).
    Xp, yp = problem(d=60, seed=3, positive=True)
    same = np.full(60, 0.1)
    out["u0-equals-v0"] = (Xp, yp, uv_loop(Xp, yp, same, same, 0.1), {"u0": same, "v0": same}, {"u0": same, "v0": same}, "uv")
    return out


CASES = cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_python_route_agrees_with_its_model_and_not_the_default(name):
    X, y, (beta, grads), kwargs, _, _ = CASES[name]
    assert np.sum((X @ beta - y) ** 2) / (2 * X.shape[0]) < 1e-26, name
    gamma = 0.2 if name == "uv-any-start" else 0.1
    acc = dlncheck.GainAccumulator(**kwargs)
    acc.add_many(np.full(len(grads), gamma), grads)
    out = dlncheck.predict(X, y, acc, beta=beta)
    assert out["verdict"] == "agrees" and out["rel_err"] <= 1e-10, (name, out["rel_err"])
    default = dlncheck.GainAccumulator(0.1, d=X.shape[1])
    default.add_many(np.full(len(grads), gamma), grads)
    assert dlncheck.predict(X, y, default, beta=beta)["verdict"] == "disagrees", name


@pytest.mark.parametrize("name", sorted(CASES))
def test_file_route_agrees_with_its_param_and_not_the_default(name, tmp_path):
    X, y, (beta, grads), _, start, param = CASES[name]
    gamma = 0.2 if name == "uv-any-start" else 0.1
    np.savez(tmp_path / "p.npz", X=X, y=y)
    np.savez(tmp_path / "t.npz", stepsizes=np.full(len(grads), gamma), grads=grads, beta=beta, **start)

    def predict(*extra):
        cmd = [cli(), "--json", "predict", "--problem", tmp_path / "p.npz", "--trajectory", tmp_path / "t.npz", *extra]
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)

    good = predict("--param", param)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["verdict"] == "agrees"
    if param == "md":
        # A trajectory with b0 read as a network's: refused with what to pass.
        wrong = predict()
        assert wrong.returncode == 2 and "param md" in wrong.stderr, wrong.stderr
    elif param == "u2v2":
        # Read as b = u ⊙ v it disagrees, and the message names the parametrisation that agrees.
        wrong = predict()
        out = json.loads(wrong.stdout)
        assert wrong.returncode == 1 and out["verdict"] == "disagrees"
        assert "--param u2v2" in out["hint"], out.get("hint")
    else:
        # The same steps from the paper's start at the same scale: disagrees, and the hint
        # (`diagnose`) names u₀ = v₀ = α, or else says the first gradient shows the loop
        # started elsewhere.
        np.savez(tmp_path / "t.npz", stepsizes=np.full(len(grads), gamma), grads=grads, beta=beta, alpha=0.1)
        wrong = predict()
        out = json.loads(wrong.stdout)
        assert wrong.returncode == 1 and out["verdict"] == "disagrees"
        expected = "u₀ = v₀ = α" if name == "u0-equals-v0" else "started elsewhere"
        assert expected in out["hint"], out.get("hint")


def test_sign_constrained_limit_keeps_its_sign():
    X, y, (beta, _), _, _, _ = CASES["u0-equals-v0"]
    assert beta.min() > 0


def test_u2v2_at_gamma_has_the_gain_of_uv_at_twice_gamma():
    # The same w± (√2·α): u2v2 from u₀ = v₀ = α, uv from u₀ = 2α, v₀ = 0.
    X, y = problem(seed=4)
    d = X.shape[1]
    _, grads = u2v2_loop(X, y, np.full(d, 0.1), np.full(d, 0.1), 0.1)
    sq = dlncheck.GainAccumulator(u0=np.full(d, 0.1), v0=np.full(d, 0.1), param="u2v2")
    sq.add_many(np.full(len(grads), 0.1), grads)
    uv = dlncheck.GainAccumulator(u0=np.full(d, 0.2), v0=np.zeros(d))
    uv.add_many(np.full(len(grads), 0.2), grads)
    np.testing.assert_array_equal(sq.gain, uv.gain)
    # The starts √2·α and 2α/√2 may differ in the last bit.
    np.testing.assert_allclose(sq.ln_alpha_inf2, uv.ln_alpha_inf2, rtol=1e-15, atol=0)


def test_mirror_descent_has_no_gain_and_lands_on_gradient_flow():
    X, y = problem(seed=5)
    d = X.shape[1]
    beta, grads = md_loop(X, y, 0.1, np.zeros(d), 0.1)
    acc = dlncheck.GainAccumulator(0.1, d=d, param="md")
    acc.add_many(np.full(len(grads), 0.1), grads)
    assert acc.steps == len(grads) and np.all(acc.gain == 0)
    out = dlncheck.predict(X, y, acc, beta=beta)
    assert out["verdict"] == "agrees"
    np.testing.assert_array_equal(out["beta_theory"], out["beta_gradient_flow"])


def test_bad_starts_raise_and_name_the_cause():
    d = 5
    with pytest.raises(ValueError, match="u0 and v0 go together"):
        dlncheck.GainAccumulator(u0=np.ones(d))
    with pytest.raises(ValueError, match="not both"):
        dlncheck.GainAccumulator(0.1, d=d, u0=np.ones(d), v0=np.ones(d))
    with pytest.raises(ValueError, match="param md"):
        dlncheck.GainAccumulator(u0=np.ones(d), v0=np.ones(d), param="md")
    with pytest.raises(ValueError, match="param md"):
        dlncheck.GainAccumulator(0.1, d=d, b0=np.zeros(d))
    with pytest.raises(ValueError, match="unknown parametrisation"):
        dlncheck.GainAccumulator(0.1, d=d, param="uvw")
    with pytest.raises(ValueError, match="v0 has 4 entries"):
        dlncheck.GainAccumulator(u0=np.ones(d), v0=np.ones(4))
    with pytest.raises(ValueError, match="1e150|1e+150|reach"):
        dlncheck.GainAccumulator(u0=np.full(d, 1e200), v0=np.zeros(d))
    with pytest.raises(ValueError, match="not finite"):
        dlncheck.GainAccumulator(u0=np.full(d, np.nan), v0=np.zeros(d))


@pytest.mark.parametrize("name", ["u2v2", "md", "u0-equals-v0"])
def test_save_records_the_parametrisation_and_start(name, tmp_path):
    X, y, (beta, grads), kwargs, _, param = CASES[name]
    acc = dlncheck.GainAccumulator(**kwargs)
    acc.add_many(np.full(len(grads), 0.1), grads)
    acc.save(tmp_path / "acc.npz", beta=beta)
    saved = np.load(tmp_path / "acc.npz")
    assert str(saved["param"]) == param
    np.savez(tmp_path / "p.npz", X=X, y=y)
    gain = subprocess.run([cli(), "--json", "gain", str(tmp_path / "acc.npz")], capture_output=True, text=True)
    assert gain.returncode == 0 and json.loads(gain.stdout)["param"] == param, gain.stderr
    cmd = [cli(), "--json", "predict", "--problem", str(tmp_path / "p.npz"), "--run", str(tmp_path / "acc.npz")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["verdict"] == "agrees", out.stderr
