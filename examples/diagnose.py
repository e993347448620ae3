"""Three numpy loops with a mistake each, and what `dlncheck.diagnose` says about them.

    pip install ./python && python examples/diagnose.py
"""

import numpy as np

import dlncheck

rng = np.random.default_rng(0)
n, d, alpha = 20, 30, 0.1
X = rng.standard_normal((n, d))
b_star = np.zeros(d)
b_star[:3] = [1.5, -2.0, 1.0]
y = X @ b_star


def gd(u, v, gamma=0.2, loss_scale=1.0, momentum=0.0, steps=300_000):
    """GD on b = u ⊙ v descending loss_scale·‖Xb − y‖²/(2n), logging the gradient of
    ‖Xb − y‖²/(2n) (the one the README's loop logs)."""
    acc = dlncheck.GainAccumulator(alpha, d=d, diagnose=True)  # stores alpha: u₀ = √2α, v₀ = 0
    mu, mv = np.zeros(d), np.zeros(d)
    for k in range(steps):
        if k % 100 == 0 and np.sum((X @ (u * v) - y) ** 2) / (2 * n) < 1e-27:
            break
        g = X.T @ (X @ (u * v) - y) / n
        acc.add(gamma, g)
        g = loss_scale * g
        mu, mv = momentum * mu + g * v, momentum * mv + g * u
        u, v = u - gamma * mu, v - gamma * mv
    return acc, u, v


loops = {
    "u₀ = α (the √2 forgotten)": gd(alpha * np.ones(d), np.zeros(d)),
    "descends ‖Xb − y‖²/n, logs ∇ of ‖Xb − y‖²/(2n)": gd(np.sqrt(2) * alpha * np.ones(d), np.zeros(d), loss_scale=2.0),
    "heavy ball, μ = 0.9, γ = 0.02": gd(np.sqrt(2) * alpha * np.ones(d), np.zeros(d), gamma=0.02, momentum=0.9),
}
for name, (acc, u, v) in loops.items():
    verdict = dlncheck.predict(X, y, acc, beta=u * v)
    out = dlncheck.diagnose(X, y, acc, beta=u * v, u=u, v=v)
    best = out["best"]
    print(f"{name}\n  predict: {verdict['message']}\n  diagnose: {best['hypothesis']} "
          f"(rel_err {best['rel_err']:.1e}): {best['message']}\n")
