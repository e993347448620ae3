"""The exact family in plain numpy (theory/README.md § Other starts and parametrisations):
GD on b = u ⊙ v from any start, from u₀ = v₀ (b ≥ 0), on b = u² − v², and mirror descent
with ψ_α; each loop's gain accumulated by dlncheck with its own parametrisation and
start, and a verdict at the end (and the default accumulator's, which disagrees).

    pip install ./python && python examples/family.py
"""

import numpy as np

import dlncheck

rng = np.random.default_rng(0)
n, d, alpha, gamma = 20, 60, 0.1, 0.05
X = rng.standard_normal((n, d))
b_star = np.zeros(d)
b_star[:3] = [1.5, -2.0, 1.0]
y = X @ b_star


PLAIN = {}


def run(step, beta, acc, max_steps=2_000_000, tol=1e-27):
    """GD: `step(g)` moves the user's weights, `beta()` reads b; `acc` gets every step,
    and so does the default accumulator (uv from u₀ = √2α, v₀ = 0), for contrast."""
    PLAIN["acc"] = dlncheck.GainAccumulator(alpha, d=d)
    for k in range(max_steps):
        if k % 100 == 0 and np.sum((X @ beta() - y) ** 2) / (2 * n) < tol:
            break
        g = X.T @ (X @ beta() - y) / n  # the gradient of L(b) = ‖Xb − y‖²/(2n) w.r.t. b
        acc.add(gamma, g)
        PLAIN["acc"].add(gamma, g)
        step(g)
    return beta()


def verdict(name, acc, beta):
    out = dlncheck.predict(X, y, acc, beta=beta)
    default = dlncheck.predict(X, y, PLAIN["acc"], beta=beta)
    print(
        f"{name:22s} {out['verdict']} (rel_err {out['rel_err']:.1e}, param {acc.param}); "
        f"default accumulator: {default['verdict']} ({default['rel_err']:.1e})"
    )


# 1. b = u ⊙ v from any start.
u0, v0 = alpha * (1 + rng.random(d)), alpha * (rng.random(d) - 0.5)
w = {"u": u0.copy(), "v": v0.copy()}
acc = dlncheck.GainAccumulator(u0=u0, v0=v0)


def uv_step(g):
    w["u"], w["v"] = w["u"] - gamma * g * w["v"], w["v"] - gamma * g * w["u"]


verdict("uv, any start", acc, run(uv_step, lambda: w["u"] * w["v"], acc))

# 2. u₀ = v₀: every coordinate sign-constrained (b ≥ 0, a relative-entropy limit).
w = {"u": np.full(d, alpha), "v": np.full(d, alpha)}
acc = dlncheck.GainAccumulator(u0=w["u"], v0=w["v"])
verdict("uv, u0 = v0 (b >= 0)", acc, run(uv_step, lambda: w["u"] * w["v"], acc))

# 3. b = u² − v² (Woodworth et al.), from u₀ = v₀ = α.
w = {"u": np.full(d, alpha), "v": np.full(d, alpha)}
acc = dlncheck.GainAccumulator(alpha, d=d, param="u2v2")  # its default start: u₀ = v₀ = α


def u2v2_step(g):
    w["u"], w["v"] = w["u"] - gamma * 2 * w["u"] * g, w["v"] + gamma * 2 * w["v"] * g


verdict("u2v2", acc, run(u2v2_step, lambda: w["u"] ** 2 - w["v"] ** 2, acc))

# 4. Mirror descent with ψ_α: ∇ψ_α(b) = ½ asinh(b/α²), so z = asinh(b/α²) moves by −2γg.
z = {"z": np.zeros(d)}
acc = dlncheck.GainAccumulator(alpha, d=d, param="md")  # b₀ = 0; or b0=... for another start


def md_step(g):
    z["z"] = z["z"] - 2 * gamma * g


beta = run(md_step, lambda: alpha**2 * np.sinh(z["z"]), acc)
verdict("mirror descent", acc, beta)
print("mirror descent's gain:", np.abs(acc.gain).sum(), "(none: its limit is gradient flow's)")
