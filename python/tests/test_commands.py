"""The command line's commands as Python functions (issue 23, item 1 and 2): gen, train
and threshold equal the binary's results to the bit; compare and check return its rows
and reports; a sweep on any executor writes the command line's lines, and resumes."""

import concurrent.futures
import json
import subprocess

import numpy as np
import pytest

import dlncheck
from _cli import cli


def run_cli(*args):
    res = subprocess.run([cli(), "--json", *map(str, args)], capture_output=True, text=True)
    assert res.returncode in (0, 1), res.stderr
    return json.loads(res.stdout)


@pytest.mark.parametrize("kw", [{}, {"seed": 7, "mean": 1.0, "noise": 0.1, "n_test": 5, "sparsity": 4}])
def test_gen_is_the_command_lines_problem_to_the_bit(tmp_path, kw):
    p = dlncheck.gen(**kw)
    flags = [x for k, v in kw.items() for x in (f"--{k.replace('_', '-')}", v)]
    run_cli("gen", "--out", tmp_path / "p.npz", *flags)
    with np.load(tmp_path / "p.npz") as f:
        assert sorted(f.files) == sorted(p)
        for k in f.files:
            assert f[k].tobytes() == p[k].tobytes(), k


@pytest.mark.parametrize("batch, stepsize", [(None, "0.2"), (2, "0.05"), (None, "0.5@100,0.1")])
def test_train_is_the_command_lines_run_to_the_bit(tmp_path, batch, stepsize):
    p = dlncheck.gen(seed=1)
    r = dlncheck.train(p["X"], p["y"], 0.1, stepsize, batch=batch, seed=3)
    np.savez(tmp_path / "p.npz", **p)
    flags = ["--batch", batch, "--seed", 3] if batch else []
    run_cli("train", "--problem", tmp_path / "p.npz", "--alpha", 0.1, "--stepsize", stepsize, *flags,
            "--out", tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz") as f:
        for k in ("beta", "u", "v", "w_plus", "w_minus", "gain", "q_plus", "q_minus", "loss_history"):
            assert f[k].tobytes() == np.asarray(r[k]).tobytes(), k
        stepsizes = np.repeat(f["stepsize_values"], f["stepsize_counts"])
        assert stepsizes.tobytes() == np.ascontiguousarray(r["stepsizes"]).tobytes()
        assert int(f["iters"]) == r["iters"]
    assert r["stop"]["reason"] == "converged"
    # The run's accumulator gives the verdict the command line gives on the file (not
    # with u, v: at γ = 0.5 the smaller of w± = (u ± v)/√2 is lost in that conversion, so
    # the conservation law's floor would rightly withhold a verdict; the file has w±).
    out = dlncheck.predict(p["X"], p["y"], r["acc"], beta=r["beta"])
    cli_out = run_cli("predict", "--problem", tmp_path / "p.npz", "--run", tmp_path / "r.npz")
    assert out["verdict"] == cli_out["verdict"] == "agrees" and out["rel_err"] == cli_out["rel_err"]


def test_train_stepsizes_expand_the_files_runs(tmp_path):
    # The run file keeps runs of equal stepsizes; train gives them per step: a constant γ
    # as a read-only view (no memory per step), 70 alternating phases repeated out.
    p = dlncheck.gen(seed=2)
    np.savez(tmp_path / "p.npz", **p)
    many = ",".join(f"{0.05 + 1e-3 * (k % 2)}@1" for k in range(70)) + ",0.1"
    for spec, runs in (("0.1", 1), (many, 71)):
        r = dlncheck.train(p["X"], p["y"], 0.1, spec, iters=500, tol=0)
        run_cli("train", "--problem", tmp_path / "p.npz", "--alpha", 0.1, "--stepsize", spec, "--iters", 500,
                "--tol", 0, "--out", tmp_path / "r.npz")
        with np.load(tmp_path / "r.npz") as f:
            assert len(f["stepsize_values"]) == runs and int(f["stepsize_counts"].sum()) == 500
            assert np.repeat(f["stepsize_values"], f["stepsize_counts"]).tobytes() == np.ascontiguousarray(
                r["stepsizes"]).tobytes()
        assert r["stepsizes"].shape == (500,) and "stepsize_values" not in r
    constant = dlncheck.train(p["X"], p["y"], 0.1, "0.1", iters=500, tol=0)["stepsizes"]
    assert not constant.flags.writeable and constant.strides == (0,) and constant[499] == 0.1


def test_train_reports_divergence_and_other_starts():
    p = dlncheck.gen()
    r = dlncheck.train(p["X"], p["y"], 0.1, 50.0)
    assert r["diverged"] and "acc" not in r
    r = dlncheck.train(p["X"], p["y"], stepsize=0.1, param="u2v2", u0=np.full(30, 0.1), v0=np.full(30, 0.05))
    assert r["acc"].param == "u2v2" and np.allclose(r["u"] ** 2 - r["v"] ** 2, r["beta"], atol=1e-12)


def test_threshold_is_the_command_lines(tmp_path):
    p = dlncheck.gen(seed=2)
    np.savez(tmp_path / "p.npz", **p)
    for batch in (None, 1):
        th = dlncheck.threshold(p["X"], p["y"], 0.1, batch=batch, seed=4, beta_star=p["beta_star"])
        assert th["bound"] > 0
        flags = ["--batch", batch, "--seed", 4] if batch else ["--seed", 4]
        assert th == run_cli("threshold", "--problem", tmp_path / "p.npz", "--alpha", 0.1, *flags)


def test_compare_rows_and_check_reports():
    rows = dlncheck.compare(["gd:0.1", "sgd:0.03:1"], seeds=2)
    assert rows == run_cli("compare", "--run", "gd:0.1", "--run", "sgd:0.03:1", "--seeds", 2)["rows"]
    assert {"err", "gain_l1"} <= set(rows[0])
    reports = dlncheck.check(theory=pathlib_root() / "theory", quick=True, claim="conservation-kkt")
    assert len(reports) == 1 and reports[0]["id"] == "conservation-kkt" and reports[0]["verdict"] == "holds"


def pathlib_root():
    import pathlib

    return pathlib.Path(__file__).resolve().parents[2]


def test_bad_arguments_raise_by_name():
    with pytest.raises(ValueError, match="algorithm `adam`"):
        dlncheck.sweep_cells(algorithm="adam")
    with pytest.raises(ValueError, match="--stepsizes"):
        dlncheck.sweep_cells(stepsizes="0.1:0.05:x")
    with pytest.raises(ValueError, match="unexpected argument"):
        dlncheck.compare(["gd:0.1"], flavour=2)
    with pytest.raises(ValueError, match="stepsize"):
        dlncheck.train(np.eye(3), np.ones(3), 0.1)
    with pytest.raises(ValueError):
        dlncheck.gen(n=0)


GRID = dict(stepsizes="0.05:0.2:3", algorithm="gd,sgd:2", seeds=2, iters=200_000, tol=1e-16)


def cli_sweep_lines(tmp_path):
    flags = [x for k, v in GRID.items() for x in (f"--{k}", v)]
    run_cli("sweep", "--out", tmp_path / "cli.jsonl", *flags)
    return sorted((tmp_path / "cli.jsonl").read_text().splitlines())


def test_sweep_on_a_process_pool_writes_the_command_lines_lines(tmp_path):
    cells = dlncheck.sweep_cells(**GRID)
    assert len(cells) == 2 * 3 * 2 and [c.index for c in cells] == list(range(12))
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        rows = dlncheck.sweep(pool, out=tmp_path / "py.jsonl", **GRID)
    assert [r["index"] for r in rows] == list(range(12))
    assert sorted((tmp_path / "py.jsonl").read_text().splitlines()) == cli_sweep_lines(tmp_path)
    assert rows[5] == dlncheck.run_cell(cells[5])


def test_sweep_resumes_after_an_interruption(tmp_path):
    out = tmp_path / "py.jsonl"
    full = dlncheck.sweep(out=tmp_path / "all.jsonl", **GRID)
    lines = (tmp_path / "all.jsonl").read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:5]) + lines[5][:40])  # five cells and half a line
    ran = []

    class Recording(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn, cell):
            ran.append(cell.index)
            return super().submit(fn, cell)

    with Recording(2) as pool:
        assert dlncheck.sweep(pool, out=out, **GRID) == full
    assert sorted(ran) == list(range(5, 12))
    assert sorted(out.read_text().splitlines()) == sorted(x.rstrip("\n") for x in lines)
    with pytest.raises(ValueError, match="another grid"):
        dlncheck.sweep(out=out, **{**GRID, "seeds": 1})


def test_sweep_on_submitits_local_executor(tmp_path):
    submitit = pytest.importorskip("submitit", reason="submitit is not installed (CI installs it)")
    executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="local")
    executor.update_parameters(timeout_min=10)
    dlncheck.sweep(executor, out=tmp_path / "py.jsonl", **GRID)
    assert sorted((tmp_path / "py.jsonl").read_text().splitlines()) == cli_sweep_lines(tmp_path)


def test_a_failing_cell_does_not_stop_the_sweep(tmp_path):
    # An executor on which cell 4 fails as a cell does (NumericalError): the other cells
    # are written, then the error names the failed cell; a rerun runs only that cell.
    class FailingOne(concurrent.futures.ThreadPoolExecutor):
        fail = {4}

        def submit(self, fn, cell):
            if cell.index in self.fail:
                def raise_():
                    raise dlncheck.NumericalError(f"cell {cell.index}: its threshold: no stepsize converges")
                return super().submit(raise_)
            return super().submit(fn, cell)

    out = tmp_path / "py.jsonl"
    with FailingOne(2) as pool, pytest.raises(dlncheck.NumericalError, match="1 of 12 cells failed.*cell 4"):
        dlncheck.sweep(pool, out=out, **GRID)
    assert sorted(json.loads(x)["index"] for x in out.read_text().splitlines()) == [i for i in range(12) if i != 4]
    FailingOne.fail = set()
    with FailingOne(2) as pool:
        rows = dlncheck.sweep(pool, out=out, **GRID)
    assert [r["index"] for r in rows] == list(range(12))


def test_cells_failing_on_submitit_are_reported_not_raised_by_the_job(tmp_path):
    # Each cell's threshold search fails on an ill-conditioned problem; submitit would wrap
    # an exception raised in the job in its own FailedJobError, so the failure comes back
    # as a value and is reported as NumericalError naming both cells, with nothing written.
    submitit = pytest.importorskip("submitit", reason="submitit is not installed (CI installs it)")
    problem = tmp_path / "ill.npz"
    np.savez(problem, X=np.array([[1.0, 0.0, 0.0], [0.0, 1e-5, 0.0]]), y=np.array([1.0, 1.0]))
    executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="local")
    executor.update_parameters(timeout_min=10)
    out = tmp_path / "py.jsonl"
    with pytest.raises(dlncheck.NumericalError, match="2 of 2 cells failed.*cell 0: its threshold.*cell 1:"):
        dlncheck.sweep(executor, out=out, problem=str(problem), fractions="0.5,0.9", algorithm="gd")
    assert not out.exists() or out.read_text() == ""
