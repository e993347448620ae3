"""Type stubs for dlncheck (the compiled module dlncheck._dlncheck)."""

from os import PathLike
from typing import Literal, Optional, TypedDict, Union

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
Vector = npt.NDArray[np.float64]

class NumericalError(Exception):
    """A numerical method did not reach its tolerance or certificate."""

class GainAccumulator:
    """Gain = Σ_k q(γ_k g_k) and ρ = Σ_k (q₋ − q₊)(γ_k g_k), accumulated online in O(d).

    ``alpha`` is a float (then ``d`` is required) or a 1-D array of length d.

    Every call is transactional (one that raises leaves the accumulator as it was) and
    reads each array once, into memory of its own. Complex, boolean and object arrays
    raise TypeError; sizes beyond memory MemoryError; bad shapes and values ValueError.
    """

    def __init__(self, alpha: Union[float, ArrayLike], d: Optional[int] = None) -> None: ...
    def add(self, stepsize: float, grad: ArrayLike) -> None:
        """One step; ``grad`` is the gradient of the loss with respect to b = u ⊙ v.

        Raises ValueError (nothing added) if a factor 1 ∓ γg is exactly 0 or not finite."""
    def add_many(self, stepsizes: ArrayLike, grads: ArrayLike) -> None:
        """K steps: ``stepsizes`` (K,), ``grads`` (K, d); all or nothing, a bad row is named."""
    @property
    def steps(self) -> int: ...
    @property
    def gain(self) -> Vector: ...
    @property
    def rho(self) -> Vector: ...
    @property
    def ln_alpha_inf2(self) -> Vector:
        """ln α_∞² = 2 ln α − Gain."""
    @property
    def alpha_inf(self) -> Vector:
        """α_∞ = α · exp(−Gain/2)."""
    @property
    def beta_tilde0(self) -> Vector:
        """b̃₀ = ½(α₊² − α₋²)."""
    @property
    def float32_source(self) -> bool:
        """Whether some gradient arrived as float32 (agreement then ~1e-7 at best)."""
    def save(self, path: Union[str, PathLike[str]], beta: Optional[ArrayLike] = None) -> None:
        """A file the command line's gain, predict --run, solve --run and compare --trajectory read."""

class Prediction(TypedDict):
    beta_theory: Vector
    beta_gradient_flow: Vector
    newton_iters: int
    rel_err: Optional[float]
    kkt_residual: Optional[float]
    primal_residual: Optional[float]
    residual_error: Optional[float]
    verdict: Optional[Literal["agrees", "disagrees", "not_converged"]]
    float32_source: bool

class ImplicitSolution(TypedDict):
    beta: Vector
    newton_iters: int
    residual: float

class BasisPursuit(TypedDict):
    beta: Vector
    objective: float
    dual_objective: float
    rel_gap: float
    feasibility: float
    dual_from: str

def predict(
    x: ArrayLike, y: ArrayLike, acc: GainAccumulator, beta: Optional[ArrayLike] = None, tol: float = 1e-8
) -> Prediction:
    """Theorem 1's limit for the accumulated gain and, with ``beta``, a verdict."""

def solve_implicit(x: ArrayLike, y: ArrayLike, acc: GainAccumulator) -> ImplicitSolution:
    """argmin D_{ψ_{α_∞}}(b, b̃₀) subject to X b = y."""

def basis_pursuit(x: ArrayLike, y: ArrayLike, weights: Optional[ArrayLike] = None) -> BasisPursuit:
    """argmin Σ w_i |b_i| subject to X b = y, with a certified duality gap."""

def min_l2(x: ArrayLike, y: ArrayLike) -> Vector:
    """The minimum-ℓ2 interpolator."""
