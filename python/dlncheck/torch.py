"""A gain accumulator whose state lives on the gradient's device (PyTorch): the steps
never leave the GPU; `to_accumulator()` brings the sums to the host for `predict` and
`diagnose`. Requires torch (not a dependency of dlncheck).

>>> acc = dlncheck.torch.GainAccumulator(0.1, d=30, device="cuda")
>>> for ...: acc.add(gamma, g)          # g: a float tensor on that device
>>> dlncheck.predict(X, y, acc.to_accumulator(), beta=beta)
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import torch

from . import _device
from ._dlncheck import GainAccumulator as _Host


class GainAccumulator:
    """Gain = Σ q(x_k) and Σ (q₋ − q₊)(x_k), x_k = s·γ_k g_k, as float64 tensors on
    `device`, by the Rust accumulator's branches and series (dlncheck/_device.py). The
    start and parametrisation are given and checked as for dlncheck.GainAccumulator."""

    def __init__(self, alpha: Any = None, d: Optional[int] = None, *, u0: Any = None, v0: Any = None,
                 b0: Any = None, param: str = "uv", device: Any = None) -> None:
        self._start = dict(alpha=alpha, d=d, u0=u0, v0=v0, b0=b0, param=param)
        n = len(_Host(alpha, d, u0=u0, v0=v0, b0=b0, param=param).gain)  # checks the start
        self.param = param
        self._scale = _device.x_scale(param)
        self.gain = torch.zeros(n, dtype=torch.float64, device=device)
        self.rho = torch.zeros(n, dtype=torch.float64, device=device)
        self._degenerate = torch.zeros((), dtype=torch.bool, device=device)
        self.steps = 0

    def add(self, stepsize: float, grad: Any) -> None:
        """One step: `grad` is the gradient with respect to b (a tensor of length d)."""
        if not (math.isfinite(stepsize) and stepsize > 0.0):
            raise ValueError(f"stepsize is {stepsize}; it must be finite and > 0")
        g = grad if isinstance(grad, torch.Tensor) else _from_host(grad)
        if g.is_complex() or g.dtype == torch.bool:
            raise TypeError(f"grad has dtype {g.dtype}; a real numeric tensor is expected")
        g = g.detach().to(device=self.gain.device, dtype=torch.float64)
        if g.shape != self.gain.shape:
            raise ValueError(f"grad has shape {tuple(g.shape)}, expected ({self.gain.shape[0]},)")
        if self.param != "md":
            dq, dr, bad = _device.increments(torch, (self._scale * stepsize) * g)
            self.gain += dq
            self.rho += dr
            self._degenerate |= bad.any()
        self.steps += 1

    def to_numpy(self) -> dict[str, Any]:
        """The sums and the step count on the host."""
        return {"gain": self.gain.cpu().numpy(), "rho": self.rho.cpu().numpy(), "steps": self.steps}

    def to_accumulator(self) -> _Host:
        """A dlncheck.GainAccumulator with these sums (ValueError if a step was degenerate:
        a factor 1 ∓ γg exactly 0 or not finite)."""
        if bool(self._degenerate):
            raise ValueError("a step had a factor 1 ∓ γg exactly 0 or not finite: its gain is undefined")
        s = self.to_numpy()
        return _Host.from_sums(s["gain"], s["rho"], s["steps"], **self._start)


def _from_host(grad: Any) -> torch.Tensor:
    """A host array (any byte order) as a float64 tensor; complex and bool refused."""
    a = np.asarray(grad)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"grad has dtype {a.dtype}; a real numeric array is expected")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))
