"""The command line's commands as Python functions: each builds the argument list of the
command and runs it in this process (the binary's own code, `dlncheck::cli::execute`), so
a result equals the command's to the bit. Arrays go through temporary .npz files, the
command line's formats; no formula lives here."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import tempfile
from typing import Any, Callable, Iterable, Optional

import numpy as np

from ._dlncheck import GainAccumulator, NumericalError, command, sweep_cell, sweep_plan


def _flags(**kw: Any) -> list[str]:
    """--key value for each keyword (underscores become dashes); True is a bare flag,
    None and False are left out, a list repeats the flag."""
    out: list[str] = []
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, (list, tuple)):
            for v in value:
                out += [flag, str(v)]
        else:
            out += [flag, str(value)]
    return out


def _run(args: list[str]) -> tuple[int, Any, str]:
    """Runs `dlncheck --json ARGS`; exit 2 raises ValueError, exit 5 NumericalError (both
    with the command's message); otherwise (exit, JSON, text)."""
    code, out, text = command(["--json", *args])
    if code == 2 or out is None and code != 0:
        raise ValueError(text.strip())
    if code == 5:
        raise NumericalError(text.strip())
    return code, (json.loads(out) if out is not None else None), text


def _problem_file(tmp: str, X: Any, y: Any, beta_star: Any = None) -> str:
    path = os.path.join(tmp, "problem.npz")
    arrays = {"X": np.asarray(X, dtype=np.float64), "y": np.asarray(y, dtype=np.float64)}
    if beta_star is not None:
        arrays["beta_star"] = np.asarray(beta_star, dtype=np.float64)
    np.savez(path, **arrays)
    return path


def _start_file(tmp: str, u0: Any, v0: Any, b0: Any, alpha: Any) -> Optional[str]:
    if u0 is None and v0 is None and b0 is None:
        return None
    path = os.path.join(tmp, "init.npz")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in dict(u0=u0, v0=v0, b0=b0).items() if v is not None}
    if b0 is not None and alpha is not None:
        arrays["alpha"] = np.asarray(alpha, dtype=np.float64)
    np.savez(path, **arrays)
    return path


def _load(path: str) -> dict[str, Any]:
    """The archive's arrays, each read once (0-d arrays, except the `param` text, as
    Python scalars)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return {k: (a.item() if a.ndim == 0 and k != "param" else a) for k, a in arrays.items()}


def gen(
    n: int = 20,
    d: int = 30,
    sparsity: int = 3,
    seed: int = 0,
    mean: float = 0.0,
    noise: float = 0.0,
    n_test: int = 100,
    scale_decades: float = 0.0,
    positive: bool = False,
) -> dict[str, np.ndarray]:
    """The command line's `gen` problem for the same settings, to the bit: X, y, beta_star,
    X_test, y_test."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "problem.npz")
        _run(["gen", *_flags(n=n, d=d, sparsity=sparsity, seed=seed, mean=mean, noise=noise, n_test=n_test,
                             scale_decades=scale_decades, positive=positive, out=out)])
        return _load(out)


def train(
    X: Any,
    y: Any,
    alpha: Any = None,
    stepsize: Any = None,
    *,
    batch: Optional[int] = None,
    iters: int = 1_000_000,
    tol: float = 1e-25,
    seed: int = 0,
    param: str = "uv",
    u0: Any = None,
    v0: Any = None,
    b0: Any = None,
    record_batches: bool = False,
    momentum: Optional[float] = None,
    nesterov: bool = False,
) -> dict[str, Any]:
    """`dlncheck train` on (X, y), to the bit: GD (batch None) or SGD with `batch` rows per
    step; `stepsize` a number or the command line's spec ("0.5@1000,0.05"); the start is
    alpha's default, or u0 and v0, or (md) alpha and b0; `param` "uv", "u2v2", "md" or
    "depth:D"; `momentum` μ (heavy ball, or Nesterov with `nesterov=True`). Returns the
    command's JSON (stop, loss, iters, diverged, gain_l1, balance_gain_l1, beta) and, unless
    it diverged, the run file's arrays (u, v, w_plus, w_minus, gain, q_plus, q_minus,
    loss_history, loss_steps, stepsizes: a read-only view for a constant γ) and `acc`, the run's GainAccumulator (for
    `predict` and `diagnose`; None for a momentum run, which has no theory to predict)."""
    if stepsize is None:
        raise ValueError("give a stepsize (a number, or a spec such as '0.5@1000,0.05')")
    with tempfile.TemporaryDirectory() as tmp:
        problem = _problem_file(tmp, X, y)
        init = _start_file(tmp, u0, v0, b0, alpha)
        out = os.path.join(tmp, "run.npz")
        a = None if init is not None else (alpha if np.isscalar(alpha) or alpha is None else _alpha_file(tmp, alpha))
        code, res, _ = _run(["train", *_flags(problem=problem, alpha=a, stepsize=stepsize, batch=batch, iters=iters,
                                               tol=tol, seed=seed, param=param, init=init,
                                               record_batches=record_batches, momentum=momentum,
                                               nesterov=nesterov, out=out)])
        if not res["diverged"]:
            arrays = _load(out)
            arrays["stepsizes"] = _expand_runs(arrays.pop("stepsize_values"), arrays.pop("stepsize_counts"))
            res.update({k: v for k, v in arrays.items() if k not in res})
            res["acc"] = None if res.get("momentum") else GainAccumulator.load(out)
        res["beta"] = np.asarray(res["beta"], dtype=np.float64)
        return res


def _expand_runs(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The per-step stepsizes from a run file's runs (γ `values[i]` for `counts[i]` steps):
    one run is a read-only view of its γ (no memory per step), several are repeated out."""
    if len(values) == 1:
        return np.broadcast_to(values, (int(counts[0]),))
    return np.repeat(values, counts)


def _alpha_file(tmp: str, alpha: Any) -> str:
    path = os.path.join(tmp, "alpha.npz")
    np.savez(path, alpha=np.asarray(alpha, dtype=np.float64))
    return path


def threshold(
    X: Any,
    y: Any,
    alpha: Any = 0.1,
    batch: Optional[int] = None,
    seed: int = 0,
    *,
    param: str = "uv",
    u0: Any = None,
    v0: Any = None,
    b0: Any = None,
    time: float = 1e4,
    tol: float = 1e-12,
    rel_width: float = 0.005,
    beta_star: Any = None,
) -> dict[str, Any]:
    """`dlncheck threshold` on (X, y): the convergence and divergence brackets and, with
    the planted `beta_star`, the classical stability bound, as the command's JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        problem = _problem_file(tmp, X, y, beta_star)
        init = _start_file(tmp, u0, v0, b0, alpha)
        a = None if init is not None else (alpha if np.isscalar(alpha) else _alpha_file(tmp, alpha))
        return _run(["threshold", *_flags(problem=problem, alpha=a, batch=batch, seed=seed, param=param, init=init,
                                          time=time, tol=tol, rel_width=rel_width)])[1]


def compare(runs: Iterable[str] = ("gd:0.1", "sgd:0.03:1"), seeds: int = 1, problem: Any = None, **kw: Any
            ) -> list[dict[str, Any]]:
    """`dlncheck compare --run R ...` (each R as the command line writes it: "gd:0.1",
    "sgd:0.03:1", fractions "gd:0.9θ"...): a list of row dicts, so
    `pandas.DataFrame(rows)` is the table. `problem` is a problem file or a dict with X
    and y; other keywords are the command's flags with underscores (alpha, n, d, mean...)."""
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(problem, dict):
            problem = _problem_file(tmp, problem["X"], problem["y"])
        res = _run(["compare", *_flags(run=list(runs), seeds=seeds, problem=problem, **kw)])[1]
        return res["rows"] if isinstance(res, dict) and "rows" in res else res


def check(theory: Any = None, quick: bool = False, claim: Optional[str] = None) -> list[dict[str, Any]]:
    """`dlncheck check` on a theory directory (default ./theory): the claim reports as
    dicts (a claim that does not hold is a report with its verdict, not an exception)."""
    where = [] if theory is None else [os.fspath(theory)]
    res = _run(["check", *where, *_flags(quick=quick, claim=claim)])[1]
    return res["claims"] if isinstance(res, dict) and "claims" in res else res


@dataclasses.dataclass(frozen=True)
class Cell:
    """One cell of a sweep grid (picklable): the grid's flags, its fingerprint, and the
    cell's coordinates; `step` is a fraction of the threshold or a stepsize, as the grid says."""

    argv: tuple[str, ...]
    grid: str
    index: int
    mean: float
    alpha: float
    batch: Optional[int]
    seed: int
    step: float


def _grid_argv(grid: dict[str, Any]) -> tuple[str, ...]:
    return tuple(_flags(**grid))


def sweep_cells(**grid: Any) -> list[Cell]:
    """The cells of the grid `dlncheck sweep` would run with these flags (underscores for
    dashes, the same value syntax: stepsizes="0.01:0.1:30", algorithm="gd,sgd", seeds=3,
    mean="0,1", alpha="0.1", problem=path, param="u2v2", ...)."""
    argv = _grid_argv(grid)
    fingerprint, cells = sweep_plan(list(argv))
    return [Cell(argv, fingerprint, *c) for c in cells]


def run_cell(cell: Cell) -> dict[str, Any]:
    """The cell's result: the same dict as its line in the command line's sweep file."""
    return json.loads(_cell_line(cell))


def _cell_line(cell: Cell) -> str:
    return sweep_cell(list(cell.argv), cell.index)


def _cell_outcome(cell: Cell) -> tuple[bool, str]:
    """(True, the cell's line) or (False, why it failed): a cell's own failure comes back
    as a value, so every executor (submitit, Dask, Ray: each wraps a job's exceptions its
    own way) reports it alike."""
    try:
        return True, _cell_line(cell)
    except NumericalError as e:
        return False, str(e)


def _done(out: pathlib.Path, fingerprint: str) -> dict[int, str]:
    """The lines of `out` already holding this grid's cells (a line cut short at the end,
    by an interruption, is dropped from the file); another grid's lines are an error."""
    if not out.exists():
        return {}
    text = out.read_text()
    done, valid = {}, 0
    for line in text.splitlines(keepends=True):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if line.endswith("\n"):
                raise ValueError(f"{out}: not a sweep file (a line is not JSON)") from None
            break
        if row.get("grid") != fingerprint:
            raise ValueError(f"{out} holds another grid ({row.get('grid')}); write to a new file")
        done[row["index"]] = line.rstrip("\n")
        valid += len(line.encode())
    if valid < len(text.encode()):
        with open(out, "r+b") as f:
            f.truncate(valid)
    return done


def sweep(executor: Any = None, out: Any = None, **grid: Any) -> list[dict[str, Any]]:
    """Runs a sweep's cells on `executor` (anything with the concurrent.futures.Executor
    interface: ProcessPoolExecutor, submitit's AutoExecutor, a Dask client's
    get_executor(), ...; None runs them here, one after another) and returns every cell's
    result, by index. With `out`, results are appended to it as JSON lines the command
    line's merge and plot read, and a rerun skips the cells already there (resume). A cell
    that fails (NumericalError, e.g. no threshold found) does not stop the others; after
    them, NumericalError lists the failed cells, which are not written."""
    cells = sweep_cells(**grid)
    fingerprint = cells[0].grid if cells else ""
    path = pathlib.Path(out) if out is not None else None
    done = _done(path, fingerprint) if path is not None else {}
    todo = [c for c in cells if c.index not in done]
    if executor is None:
        pending: Iterable[tuple[Cell, Callable[[], tuple[bool, str]]]] = (
            (c, functools.partial(_cell_outcome, c)) for c in todo)
    else:
        pending = [(c, executor.submit(_cell_outcome, c).result) for c in todo]
    results, failed = dict(done), []
    sink = open(path, "a") if path is not None else None
    try:
        for cell, outcome in pending:
            try:
                ok, line = outcome()
            except NumericalError as e:  # raised by the executor itself: the cell's failure too
                ok, line = False, str(e)
            if not ok:  # this cell's own failure: the others go on
                failed.append(line)
                continue
            results[cell.index] = line
            if sink is not None:
                sink.write(line + "\n")
                sink.flush()
    finally:
        if sink is not None:
            sink.close()
    if failed:
        listed = "; ".join(failed[:20]) + (f"; … and {len(failed) - 20} more" if len(failed) > 20 else "")
        raise NumericalError(f"{len(failed)} of {len(todo)} cells failed and are not written (a rerun runs them "
                             f"again): {listed}")
    return [json.loads(results[i]) for i in sorted(results)]
