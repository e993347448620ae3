"""dlncheck: the implicit regularisation of (S)GD on diagonal linear networks, checked.

The Rust core of the ``dlncheck`` command line, for training loops written in numpy,
PyTorch or JAX: accumulate the gain online in O(d) memory with ``GainAccumulator``, then
ask ``predict`` for a verdict (Theorem 1 of Even, Pesme, Gunasekar & Flammarion, 2023).

>>> import numpy as np, dlncheck
>>> acc = dlncheck.GainAccumulator(0.1, d=3)
>>> acc.add(0.1, np.array([0.5, -0.2, 0.0]))
>>> acc.steps
1
"""

from ._dlncheck import (
    GainAccumulator,
    NumericalError,
    basis_pursuit,
    diagnose,
    min_l2,
    predict,
    solve_implicit,
)

from ._commands import Cell, check, compare, gen, run_cell, sweep, sweep_cells, threshold, train

__all__ = [
    "Cell",
    "GainAccumulator",
    "NumericalError",
    "basis_pursuit",
    "check",
    "compare",
    "diagnose",
    "gen",
    "min_l2",
    "predict",
    "run_cell",
    "solve_implicit",
    "sweep",
    "sweep_cells",
    "threshold",
    "train",
]
