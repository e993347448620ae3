"""The paper's headline figure from Python only: recovery error and |Gain|₁ against the
stepsize (as a fraction of each seed's convergence threshold), GD against SGD, on the
command line's seeded problems, with the sweep on a process pool.

    pip install ./python && python examples/paper_figure.py [--seeds 3] [--points 30]

Draws with matplotlib when it is installed; otherwise hands the sweep file to the command
line's `dlncheck plot` (found on PATH or in target/release), or says how to.
"""

import argparse
import concurrent.futures
import os
import pathlib
import shutil
import subprocess
import tempfile

import numpy as np

import dlncheck

parser = argparse.ArgumentParser()
parser.add_argument("--seeds", type=int, default=1)
parser.add_argument("--points", type=int, default=8)
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "dlncheck-paper-figure"))
args = parser.parse_args()
out = pathlib.Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# One problem of the grid, and its thresholds, as the sweep will see them (seed 0).
p = dlncheck.gen(n=20, d=30, sparsity=3, seed=0)
th = dlncheck.threshold(p["X"], p["y"], 0.1, beta_star=p["beta_star"])
print(f"seed 0: GD converges below γ = {th['convergence']['lo']:.4f} (stability bound {th['bound']:.4f})")

grid = dict(fractions=f"0.05:0.95:{args.points}", algorithm="gd,sgd", seeds=args.seeds)
# One file per grid (named by its fingerprint): a rerun of the same grid resumes it, and
# another grid never meets a file it cannot extend.
sweep_file = out / f"sweep-{dlncheck.sweep_cells(**grid)[0].grid}.jsonl"
with concurrent.futures.ProcessPoolExecutor(2) as pool:
    rows = dlncheck.sweep(pool, out=sweep_file, **grid)
print(f"{len(rows)} cells in {sweep_file}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None

if plt is not None:
    fig, (ax_err, ax_gain) = plt.subplots(1, 2, figsize=(6.5, 2.6), constrained_layout=True)
    for algorithm, colour in (("gd", "tab:orange"), ("sgd", "tab:blue")):
        cells = [r for r in rows if r["algorithm"] == algorithm and r["converged"]]
        fractions = sorted({r["fraction"] for r in cells})
        err = [np.exp(np.mean([np.log(r["error"]) for r in cells if r["fraction"] == f])) for f in fractions]
        gain = [np.mean([r["gain_l1"] for r in cells if r["fraction"] == f]) for f in fractions]
        ax_err.plot(fractions, err, "o-", color=colour, label=algorithm.upper())
        ax_gain.plot(fractions, gain, "o-", color=colour, label=algorithm.upper())
    ax_err.set(xlabel="γ / θ", ylabel="‖b∞ − b*‖ (geometric mean)", yscale="log")
    ax_gain.set(xlabel="γ / θ", ylabel="|Gain|₁ (mean)", yscale="log")
    ax_err.legend()
    fig.savefig(out / "paper_figure.png", dpi=150)
    print(f"wrote {out / 'paper_figure.png'}")
else:
    root = pathlib.Path(__file__).resolve().parents[1]
    binary = os.environ.get("DLNCHECK_BIN") or shutil.which("dlncheck")
    if binary is None and (root / "target" / "release" / "dlncheck").exists():
        binary = str(root / "target" / "release" / "dlncheck")
    if binary is None:
        print(f"matplotlib is not installed: draw the figures with `dlncheck plot {sweep_file} --out {out}`")
    else:
        subprocess.run([binary, "plot", str(sweep_file), "--out", str(out)], check=True)
