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
    """Gain = Σ_k q(x_k) and Σ_k (q₋ − q₊)(x_k), x_k = s·γ_k g_k, accumulated online in O(d).

    ``param`` is the loop's parametrisation: ``"uv"`` (b = u ⊙ v, s = 1), ``"u2v2"``
    (b = u² − v², s = 2) or ``"md"`` (mirror descent with ψ_α: no gain). The start is the
    parametrisation's default at scale ``alpha`` (uv: u₀ = √2α, v₀ = 0; u2v2: u₀ = v₀ = α;
    md: b₀ = 0), ``alpha`` a float (then ``d`` is required) or a 1-D array of length d; or
    ``u0`` and ``v0`` (uv, u2v2; coordinates with u₀ = ±v₀ are sign-constrained); or, for
    md, ``alpha`` and ``b0``. See theory/README.md § Other starts and parametrisations.

    ``diagnose=True`` also keeps every other reading of the steps ``dlncheck.diagnose``
    tests (the gradients at ½× and 2× scale, a one-step lag, heavy-ball replays): about
    28·d more floats; a step costs 5.9 µs instead of 1.1 µs at d = 1,000.

    Every call is transactional (one that raises leaves the accumulator as it was) and
    reads each array once, into memory of its own. Complex, boolean and object arrays
    raise TypeError; sizes beyond memory MemoryError; bad shapes and values ValueError.
    """

    def __init__(
        self,
        alpha: Union[float, ArrayLike, None] = None,
        d: Optional[int] = None,
        *,
        u0: Optional[ArrayLike] = None,
        v0: Optional[ArrayLike] = None,
        b0: Optional[ArrayLike] = None,
        param: str = "uv",
        diagnose: bool = False,
    ) -> None: ...
    def add(self, stepsize: float, grad: ArrayLike) -> None:
        """One step; ``grad`` is the gradient of the loss with respect to b (whatever ``param``).

        Raises ValueError (nothing added) if a factor 1 ∓ γg is exactly 0 or not finite."""
    def add_many(self, stepsizes: ArrayLike, grads: ArrayLike) -> None:
        """K steps: ``stepsizes`` (K,), ``grads`` (K, d); all or nothing, a bad row is named."""
    @property
    def steps(self) -> int: ...
    @property
    def param(self) -> str:
        """"uv", "u2v2" or "md"."""
    @property
    def gain(self) -> Vector:
        """Gain = Σ_k q(x_k) (zero for md)."""
    @property
    def rho(self) -> Vector:
        """ρ = ln(α₊/α₋) = ln|w₊,₀/w₋,₀| + Σ(q₋ − q₊) (±inf on sign-constrained coordinates)."""
    @property
    def ln_alpha_inf2(self) -> Vector:
        """ln α_∞² = ln|w₊,₀ w₋,₀| − Gain (2 ln α − Gain from the paper's start)."""
    @property
    def alpha_inf(self) -> Vector:
        """α_∞ = exp(ln α_∞² / 2)."""
    @property
    def beta_tilde0(self) -> Vector:
        """b̃₀ = ½(α₊² − α₋²)."""
    @property
    def diagnose(self) -> bool:
        """Whether the readings ``dlncheck.diagnose`` tests are kept."""
    @property
    def float32_source(self) -> bool:
        """Whether some gradient arrived as float32 (agreement then ~1e-7 at best)."""
    @staticmethod
    def load(path: Union[str, PathLike[str]]) -> "GainAccumulator":
        """The accumulator a run file (`train`) or an accumulator file (`save`) holds."""
    @staticmethod
    def from_sums(
        gain: ArrayLike,
        rho: ArrayLike,
        steps: int,
        alpha: Union[float, ArrayLike, None] = None,
        d: Optional[int] = None,
        *,
        u0: Optional[ArrayLike] = None,
        v0: Optional[ArrayLike] = None,
        b0: Optional[ArrayLike] = None,
        param: str = "uv",
    ) -> "GainAccumulator":
        """Sums accumulated elsewhere (dlncheck.torch, dlncheck.jax) for this start."""
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
    message: str
    float32_source: bool
    tol_used: float
    tol_reason: Optional[str]

class Tried(TypedDict, total=False):
    hypothesis: Literal["none", "start-scale", "start", "param", "gradient-scale", "lag", "momentum"]
    rel_err: Optional[float]
    exact: bool
    message: str
    factor: float
    guess: Literal["equal", "recovered"]
    factor_min: float
    factor_max: float
    param: Literal["uv", "u2v2", "md"]
    shift: Literal["late", "missing-first"]
    mu: float

class Diagnosis(TypedDict):
    best: Tried
    tried: list[Tried]
    explained: bool
    tol_used: float
    tol_reason: Optional[str]

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
    x: ArrayLike,
    y: ArrayLike,
    acc: GainAccumulator,
    beta: Optional[ArrayLike] = None,
    tol: float = 1e-8,
    u: Optional[ArrayLike] = None,
    v: Optional[ArrayLike] = None,
) -> Prediction:
    """Theorem 1's limit for the accumulated gain and, with ``beta``, a verdict.

    The verdict's tolerance ``tol_used`` is never below what the loop's arithmetic allows
    (``tol_reason`` says why): float32 gradients or a float32 ``beta``, and the
    conservation law's defect on the final weights ``u``, ``v`` when given. A floor of
    1e-2 or more leaves no digit to compare: the verdict is then None."""

def diagnose(
    x: ArrayLike,
    y: ArrayLike,
    acc: GainAccumulator,
    beta: ArrayLike,
    u: Optional[ArrayLike] = None,
    v: Optional[ArrayLike] = None,
    tol: float = 1e-8,
) -> Diagnosis:
    """Which mistake in the loop makes the run agree (the command line's ``diagnose``).

    ``best`` is the first hypothesis in order of preference whose prediction is within
    ``tol_used`` of ``beta`` (``explained``), or a heavy-ball replay that reproduces
    ``beta`` (momentum: no exact theory, no verdict), or the closest with a message that
    nothing explains the run. ``tried`` lists every hypothesis, closest first; those that
    need the steps say so unless the accumulator was made with ``diagnose=True``."""

def solve_implicit(x: ArrayLike, y: ArrayLike, acc: GainAccumulator) -> ImplicitSolution:
    """argmin D_{ψ_{α_∞}}(b, b̃₀) subject to X b = y."""

def basis_pursuit(x: ArrayLike, y: ArrayLike, weights: Optional[ArrayLike] = None) -> BasisPursuit:
    """argmin Σ w_i |b_i| subject to X b = y, with a certified duality gap."""

def min_l2(x: ArrayLike, y: ArrayLike) -> Vector:
    """The minimum-ℓ2 interpolator."""

# The command line's commands (dlncheck/_commands.py, typed there).
from ._commands import Cell as Cell
from ._commands import check as check
from ._commands import compare as compare
from ._commands import gen as gen
from ._commands import run_cell as run_cell
from ._commands import sweep as sweep
from ._commands import sweep_cells as sweep_cells
from ._commands import threshold as threshold
from ._commands import train as train
