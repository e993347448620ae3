"""dlncheck against its peers, side by side, in one run on one machine.

    benches/peers/install.sh            # once: a venv with numpy, scipy, cvxpy, Clarabel
    benches/peers/.venv/bin/python benches/peers/peers.py [--large] [--json out.json]

Every row runs dlncheck and a peer on the same problem (drawn by `dlncheck gen` and read
by both) and reports ratio = peer time / dlncheck time (above 1: dlncheck is faster).
dlncheck is timed as a whole command (process start, reading the problem, the solve,
certificate and output), the peers only inside Python (problem already in memory), and
each side keeps its best of a few repeats. The goals are issue 15's.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release" / "dlncheck"
try:  # the Python package, when installed (install.sh does), for in-process rows
    import dlncheck as DLNCHECK_PY
except ImportError:
    DLNCHECK_PY = None


def dlncheck(*args):
    """Wall time of one dlncheck command and its JSON answer."""
    t = time.perf_counter()
    out = subprocess.run([str(BIN), *map(str, args), "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"dlncheck {' '.join(map(str, args))} exited {out.returncode}: {out.stderr}")
    return seconds, json.loads(out.stdout)


def best(f, repeats):
    """Best wall time of `repeats` calls of f, and f's last answer."""
    times, answer = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        answer = f()
        times.append(time.perf_counter() - t)
    return min(times), answer


def best_cmd(repeats, *args):
    runs = [dlncheck(*args) for _ in range(repeats)]
    return min(r[0] for r in runs), runs[-1][1]


def problem(tmp, n, d, sparsity, seed=0):
    path = Path(tmp) / f"p_{n}x{d}_s{sparsity}_{seed}.npz"
    if not path.exists():
        dlncheck("gen", "--n", n, "--d", d, "--sparsity", sparsity, "--seed", seed, "--n-test", 0, "--out", path)
    with np.load(path) as f:
        return path, f["X"], f["y"]


# ---------------------------------------------------------------- training loops


def numpy_gd(X, y, alpha, gamma, steps):
    """The numpy reproduction's GD loop: b = u ⊙ v, L = ‖Xb − y‖²/(2n), gain += −ln|1 − γ²g²|."""
    n, d = X.shape
    u, v = np.full(d, np.sqrt(2) * alpha), np.zeros(d)
    gain = np.zeros(d)
    for _ in range(steps):
        g = X.T @ (X @ (u * v) - y) / n
        u, v = u - gamma * g * v, v - gamma * g * u
        gain -= np.log(np.abs(1 - (gamma * g) ** 2))
    return u * v


def numpy_sgd(X, y, alpha, gamma, steps, seed=0):
    """The same loop with one random row per step."""
    n, d = X.shape
    u, v = np.full(d, np.sqrt(2) * alpha), np.zeros(d)
    gain = np.zeros(d)
    rows = np.random.default_rng(seed).integers(0, n, steps)
    for i in rows:
        x = X[i]
        g = x * (x @ (u * v) - y[i])
        u, v = u - gamma * g * v, v - gamma * g * u
        gain -= np.log(np.abs(1 - (gamma * g) ** 2))
    return u * v


def loop_rows(tmp, r):
    """Time per step. dlncheck runs K and 2K steps as whole commands and the difference
    is divided by K, so process start and reading the problem cancel out."""
    rows = []
    for label, (n, d), batch, gamma, k_ours, k_numpy in [
        ("GD step", (20, 30), None, 0.05, 200_000, 20_000),
        ("SGD step, batch 1", (100, 1000), 1, 0.002, 200_000, 20_000),
        ("GD step", (1000, 10000), None, 1e-3, 100, 10),
    ]:
        path, X, y = problem(tmp, n, d, 3)
        extra = ["--batch", batch] if batch else []
        times = [
            best_cmd(r, "train", "--problem", path, "--alpha", 0.1, "--stepsize", gamma, "--iters", k, "--tol", 0, *extra)[0]
            for k in (k_ours, 2 * k_ours)
        ]
        f = (lambda: numpy_sgd(X, y, 0.1, gamma, k_numpy)) if batch else (lambda: numpy_gd(X, y, 0.1, gamma, k_numpy))
        peer, _ = best(f, r)
        rows.append(row(f"{label}, {n:,} × {d:,}", (times[1] - times[0]) / k_ours, "numpy loop", peer / k_numpy, None,
                        unit="step"))
    return rows


def sweep_rows(tmp, r):
    """The default sweep (30 stepsizes × GD, SGD on 20 × 30, thresholds found first) against
    numpy replaying the same runs: each run's stepsize, algorithm and number of steps."""
    out = Path(tmp) / "sweep.jsonl"
    out.unlink(missing_ok=True)
    ours, _ = dlncheck("sweep", "--out", out)
    runs = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    runs = [c for c in runs if "stepsize" in c]
    path, X, y = problem(tmp, 20, 30, 3)

    def replay():
        for c in runs:
            steps = int(c["iters"])
            if c["algorithm"] == "gd" or not c.get("batch"):
                numpy_gd(X, y, c["alpha"], c["stepsize"], steps)
            else:
                numpy_sgd(X, y, c["alpha"], c["stepsize"], steps)

    total = sum(int(c["iters"]) for c in runs)
    peer, _ = best(replay, 1)
    note = f"{len(runs)} runs, {total:,} steps; numpy replays the runs only (no threshold search)"
    return [row("default sweep, 20 × 30", ours, "numpy loop", peer, None, note=note)]


# ---------------------------------------------------------------- implicit problem


def numpy_dual_newton(X, y, alpha, tol=1e-12):
    """Textbook dual Newton for argmin_{Xb=y} ψ_α(b): F(μ) = Σ α² cosh(Xᵀμ) − yᵀμ,
    H = (X · c) @ Xᵀ by BLAS, np.linalg.solve, Armijo backtracking; stops at
    ‖Xb − y‖ ≤ 1e-12‖y‖ (dlncheck: 1e-13)."""
    a2 = alpha * alpha
    mu = np.zeros(X.shape[0])
    ynorm = np.linalg.norm(y)
    for it in range(100):
        z = X.T @ mu
        b = a2 * np.sinh(z)
        grad = X @ b - y
        if np.linalg.norm(grad) <= tol * ynorm:
            return b, it
        c = a2 * np.cosh(z)
        H = (X * c) @ X.T
        step = np.linalg.solve(H, -grad)
        f0 = np.sum(a2 * np.cosh(z)) - y @ mu
        slope = grad @ step
        # Armijo, with slack for the rounding of F (near the answer F's decrease is below it).
        slack = 1e-13 * (1 + abs(f0))
        t = 1.0
        while np.sum(a2 * np.cosh(X.T @ (mu + t * step))) - y @ (mu + t * step) > f0 + 1e-4 * t * slope + slack:
            t *= 0.5
        mu = mu + t * step
    raise RuntimeError("numpy dual Newton did not converge")


def cvxpy_clarabel(X, y, alpha):
    """The same dual as an exponential-cone program: cvxpy, solved by Clarabel."""
    import cvxpy as cp

    a2 = alpha * alpha
    mu = cp.Variable(X.shape[0])
    z = X.T @ mu
    cp.Problem(cp.Minimize(a2 / 2 * cp.sum(cp.exp(z) + cp.exp(-z)) - y @ mu)).solve(solver=cp.CLARABEL)
    return a2 * np.sinh(X.T @ mu.value)


def implicit_rows(tmp, r, large):
    rows = []
    sizes = [(100, 1000), (300, 3000), (1000, 5000)]
    goals = {(300, 3000): 1.5, (1000, 5000): 1.5}
    for n, d in sizes:
        path, X, y = problem(tmp, n, d, max(3, n // 10))
        reps = r if n * d <= 10**6 else max(1, r // 2)
        ours, sol = best_cmd(reps, "solve", "--problem", path, "--alpha", 0.1)
        peer, (b, iters) = best(lambda: numpy_dual_newton(X, y, 0.1), reps)
        res = np.linalg.norm(X @ b - y) / np.linalg.norm(y)
        note = f"residual {sol['residual']:.1e} (dlncheck), {res:.1e} (numpy, {iters} Newton steps)"
        rows.append(row(f"implicit problem (α = 0.1), {n:,} × {d:,}", ours, "numpy dual Newton", peer,
                        goals.get((n, d)), note=note))
        if DLNCHECK_PY is not None:
            acc = DLNCHECK_PY.GainAccumulator(0.1, d=d)
            inproc, sol = best(lambda: DLNCHECK_PY.solve_implicit(X, y, acc), reps)
            rows.append(row(f"same, in-process (`dlncheck.solve_implicit`), {n:,} × {d:,}", inproc,
                            "numpy dual Newton", peer, None,
                            note=f"{sol['newton_iters']} Newton steps, residual {sol['residual']:.1e}"))
        if n * d <= 3 * 10**5:
            peer, b = best(lambda: cvxpy_clarabel(X, y, 0.1), 1)
            res = np.linalg.norm(X @ b - y) / np.linalg.norm(y)
            rows.append(row(f"implicit problem (α = 0.1), {n:,} × {d:,}", ours, "cvxpy + Clarabel", peer, None,
                            note=f"Clarabel's residual {res:.1e}"))
    return rows


# ---------------------------------------------------------------- basis pursuit


def scipy_highs(X, y):
    """min ‖b‖₁ s.t. Xb = y as the LP b = p − m, p, m ≥ 0, by scipy's HiGHS."""
    from scipy.optimize import linprog

    d = X.shape[1]
    res = linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=y, bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(res.message)
    return res.x[:d] - res.x[d:]


def bp_rows(tmp, r, large):
    rows = []
    sizes = [(100, 500), (200, 1000), (500, 2000)] + ([(1000, 5000)] if large else [])
    for n, d in sizes:
        for kind, s in [(f"s = {n // 10} (recovered)", n // 10), (f"s = {n // 2} (not recovered)", n // 2)]:
            path, X, y = problem(tmp, n, d, s)
            reps = r if n < 500 else 1
            ours, sol = best_cmd(reps, "solve", "--problem", path, "--l1")
            peer, b = best(lambda: scipy_highs(X, y), reps)
            gap = abs(np.abs(b).sum() - sol["objective"]) / sol["objective"]
            note = (f"certified gap {sol['rel_gap']:.0e} (ν from {sol['dual_from']}); "
                    f"HiGHS's ‖b‖₁ differs by {gap:.0e}")
            # The goal: 3× HiGHS up to 500 × 2,000; at 1,000 × 5,000, certified in under 20 s.
            big = n >= 1000
            rows.append(row(f"basis pursuit, certified, {n:,} × {d:,}, {kind}", ours, "scipy HiGHS", peer,
                            None if big else 3.0, note=note, ok=ours < 20 if big else None,
                            goal_text="< 20 s" if big else None))
    if not large:
        path, X, y = problem(tmp, 1000, 5000, 500)
        ours, sol = best_cmd(1, "solve", "--problem", path, "--l1")
        rows.append(row("basis pursuit, certified, 1,000 × 5,000, s = 500 (not recovered)", ours,
                        "(HiGHS: --large)", None, None, note=f"certified gap {sol['rel_gap']:.0e}",
                        ok=ours < 20, goal_text="< 20 s"))
    return rows


# ---------------------------------------------------------------- self-check


def self_check(tmp):
    """The peers do the work dlncheck does: on one small problem the numpy GD loop ends
    where `dlncheck train` ends, and the numpy dual Newton finds `dlncheck solve`'s answer.
    Needs numpy only (CI runs it)."""
    path, X, y = problem(tmp, 20, 30, 3)
    _, run = dlncheck("train", "--problem", path, "--alpha", 0.1, "--stepsize", 0.05, "--iters", 2000, "--tol", 0)
    gd = numpy_gd(X, y, 0.1, 0.05, 2000)
    err = np.abs(gd - run["beta"]).max() / np.abs(gd).max()
    _, sol = dlncheck("solve", "--problem", path, "--alpha", 0.1)
    b, _ = numpy_dual_newton(X, y, 0.1)
    err2 = np.abs(b - sol["beta"]).max() / np.abs(b).max()
    print(f"self-check: GD loop vs dlncheck train {err:.1e}, dual Newton vs dlncheck solve {err2:.1e}")
    return 0 if err < 1e-10 and err2 < 1e-10 else 1


# ---------------------------------------------------------------- table


def row(work, ours, peer_name, peer, goal, unit=None, note="", ok=None, goal_text=None):
    """A table row; `goal` is a ratio to reach, or `goal_text` with `ok` says another goal."""
    ratio = peer / ours if peer is not None else None
    if ok is None:
        ok = None if goal is None else ratio >= goal
    goal_text = goal_text or (f"≥ {goal}×" if goal else "")
    return dict(work=work, dlncheck=ours, peer=peer_name, peer_time=peer, ratio=ratio, goal=goal, ok=ok,
                goal_text=goal_text, unit=unit, note=note)


def fmt_time(t, unit):
    if t is None:
        return "–"
    suffix = f"/{unit}" if unit else ""
    for scale, name in [(1, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")]:
        if t >= scale:
            return f"{t / scale:.3g} {name}{suffix}"
    return f"{t:.3g} s{suffix}"


def machine():
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import scipy

    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()}; numpy {np.__version__}, scipy {scipy.__version__}")


def table(rows):
    lines = ["| work | dlncheck | peer | peer's time | ratio | goal |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "–"
        goal = r["goal_text"] + ("" if r["ok"] is None else " ✓" if r["ok"] else " ✗")
        lines.append(f"| {r['work']} | {fmt_time(r['dlncheck'], r['unit'])} | {r['peer']} | "
                     f"{fmt_time(r['peer_time'], r['unit'])} | {ratio} | {goal} |")
    notes = [f"- {r['work']} vs {r['peer']}: {r['note']}" for r in rows if r["note"]]
    return "\n".join(lines + [""] + notes)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--large", action="store_true", help="also scipy HiGHS at 1,000 × 5,000 (minutes)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["loops", "sweep", "implicit", "bp"], action="append")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    ap.add_argument("--self-check", action="store_true", help="only check that the numpy peers agree with dlncheck")
    args = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: run benches/peers/install.sh (it builds it) or cargo build --release")
    if args.self_check:
        with tempfile.TemporaryDirectory() as tmp:
            return self_check(tmp)
    parts = args.only or ["loops", "sweep", "implicit", "bp"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for part in parts:
            if part == "loops":
                rows += loop_rows(tmp, args.repeats)
            elif part == "sweep":
                rows += sweep_rows(tmp, args.repeats)
            elif part == "implicit":
                rows += implicit_rows(tmp, args.repeats, args.large)
            else:
                rows += bp_rows(tmp, args.repeats, args.large)
            print(f"[{part} done]", file=sys.stderr)
    head = f"Measured {date.today().isoformat()} on {machine()}, one run of benches/peers/peers.py."
    print(head + "\n\n" + table(rows))
    if args.json:
        args.json.write_text(json.dumps(dict(header=head, rows=rows), indent=1))
    return 0 if all(r["ok"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
