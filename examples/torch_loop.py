"""A PyTorch loop on u, v tensors calling acc.add each step (the gradient with respect to
b = u ⊙ v is read off b's .grad), and a verdict at the end.

    pip install ./python torch && python examples/torch_loop.py
"""

import sys

try:
    import torch
except ImportError:
    print("torch is not installed: `pip install torch` to run this example (skipped)")
    sys.exit(0)

import numpy as np

import dlncheck

torch.manual_seed(0)
n, d, alpha, gamma = 20, 30, 0.1, 0.2
X = torch.randn(n, d, dtype=torch.float64)
b_star = torch.zeros(d, dtype=torch.float64)
b_star[:3] = torch.tensor([1.5, -2.0, 1.0], dtype=torch.float64)
y = X @ b_star

u = (np.sqrt(2) * alpha * torch.ones(d, dtype=torch.float64)).requires_grad_()
v = torch.zeros(d, dtype=torch.float64, requires_grad=True)
acc = dlncheck.GainAccumulator(alpha, d=d)
for step in range(1_000_000):
    b = u * v
    b.retain_grad()
    loss = ((X @ b - y) ** 2).sum() / (2 * n)
    if loss.item() < 1e-27:
        break
    u.grad = v.grad = None
    loss.backward()
    acc.add(gamma, b.grad.numpy())  # the gradient w.r.t. b, as the theory defines it
    with torch.no_grad():
        u -= gamma * u.grad
        v -= gamma * v.grad
out = dlncheck.predict(X.numpy(), y.numpy(), acc, beta=(u * v).detach().numpy())
print(f"{step} steps, rel_err = {out['rel_err']:.2e}, verdict: {out['verdict']}")
