"""GD and SGD on b = u ⊙ v in plain numpy, with the gain accumulated by dlncheck in the
loop, and a verdict at the end (Theorem 1 of Even, Pesme, Gunasekar & Flammarion).

    pip install ./python && python examples/numpy_loop.py
"""

import numpy as np

import dlncheck

rng = np.random.default_rng(0)
n, d, alpha = 20, 30, 0.1
X = rng.standard_normal((n, d))
b_star = np.zeros(d)
b_star[:3] = [1.5, -2.0, 1.0]
y = X @ b_star


def train(gamma, batch=None, max_steps=2_000_000, tol=1e-27):
    acc = dlncheck.GainAccumulator(alpha, d=d)
    u, v = np.sqrt(2) * alpha * np.ones(d), np.zeros(d)
    for k in range(max_steps):
        if k % 100 == 0 and np.sum((X @ (u * v) - y) ** 2) / (2 * n) < tol:
            break
        rows = slice(None) if batch is None else rng.choice(n, batch, replace=False)
        g = X[rows].T @ (X[rows] @ (u * v) - y[rows]) / X[rows].shape[0]  # ∇ of the batch loss w.r.t. b
        acc.add(gamma, g)
        u, v = u - gamma * g * v, v - gamma * g * u
    return acc, u * v, k


for name, gamma, batch in [("GD", 0.2, None), ("SGD (batch 1)", 0.05, 1)]:
    acc, beta, steps = train(gamma, batch)
    out = dlncheck.predict(X, y, acc, beta=beta)
    print(
        f"{name:14s} γ = {gamma}: {steps} steps, |Gain|_1 = {acc.gain.sum():.3f}, "
        f"rel_err = {out['rel_err']:.2e}, verdict: {out['verdict']}, "
        f"‖b − b*‖ = {np.linalg.norm(beta - b_star):.3f}"
    )
