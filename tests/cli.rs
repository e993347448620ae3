//! The command-line contract (DESIGN.md): JSON on stdout, exit codes, and a clear
//! error naming the file, the array and the fault for every bad input.

mod common;

use serde_json::json;
use std::path::Path;

use common::{Dir, dlncheck, dlncheck_json, fixture};
use dlncheck::npz::NpzWriter;
use dlncheck::problem::ProblemSpec;

fn write(path: &Path, arrays: &[(&str, &[usize], &[f64])]) {
    let mut w = NpzWriter::new();
    for (name, shape, data) in arrays {
        w.f64(name, shape, data);
    }
    w.write(path, &[]).unwrap();
}

/// Asserts exit code 2 and that stderr mentions every fragment.
fn assert_bad(args: &[&str], fragments: &[&str]) {
    let (code, out, err) = dlncheck(args);
    assert_eq!(code, 2, "args {args:?}\nstdout {out}\nstderr {err}");
    for f in fragments {
        assert!(err.contains(f), "stderr lacks `{f}`: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn gen_train_gain_predict_round_trip() {
    let dir = Dir::new();
    let (code, _) = dlncheck_json(&["gen", "--n", "10", "--d", "25", "--seed", "4", "--out", &dir.s("p.npz")]);
    assert_eq!(code, 0);
    let (code, t) = dlncheck_json(&[
        "train",
        "--problem",
        &dir.s("p.npz"),
        "--alpha",
        "0.1",
        "--stepsize",
        "0.1",
        "--batch",
        "2",
        "--out",
        &dir.s("r.npz"),
    ]);
    assert_eq!(code, 0);
    assert_eq!(t["diverged"], false);
    assert!(t["loss"].as_f64().unwrap() < 1e-25);
    assert_eq!(t["beta"].as_array().unwrap().len(), 25);
    let (code, g) = dlncheck_json(&["gain", &dir.s("r.npz")]);
    assert_eq!(code, 0);
    for key in ["gain", "alpha_inf", "ln_alpha_inf2", "rho", "beta_tilde0", "q_plus", "q_minus"] {
        assert_eq!(g[key].as_array().map(Vec::len), Some(25), "{key}");
    }
    assert!(g["conservation_residual"].as_f64().unwrap() < 1e-12);
    let (code, p) = dlncheck_json(&["predict", "--problem", &dir.s("p.npz"), "--run", &dir.s("r.npz")]);
    assert_eq!(code, 0);
    assert!(p["rel_err"].as_f64().unwrap() < 1e-10, "{p}");
    assert!(p["kkt_residual"].as_f64().unwrap() < 1e-10);
    assert!(p["newton_iters"].as_u64().unwrap() > 0);
    for key in ["beta_theory", "beta_limit", "beta_gradient_flow"] {
        assert_eq!(p[key].as_array().map(Vec::len), Some(25), "{key}");
    }
}

#[test]
fn reads_numpy_plain_compressed_and_fortran_archives() {
    for name in ["problem_plain.npz", "problem_compressed.npz", "problem_fortran.npz"] {
        let p = dlncheck::problem::Problem::load(&fixture(name)).unwrap();
        let reference = dlncheck::problem::Problem::load(&fixture("problem_plain.npz")).unwrap();
        assert_eq!(p.x, reference.x, "{name}");
        assert_eq!(p.y, reference.y, "{name}");
    }
    let (code, g) = dlncheck_json(&["gain", "--trajectory", fixture("trajectory_gd.npz").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(g["gain_l1"].as_f64().unwrap() > 0.0);
}

#[test]
fn diverging_run_exits_3_with_the_step_and_writes_nothing() {
    let dir = Dir::new();
    dlncheck(&["gen", "--out", &dir.s("p.npz")]);
    let (code, t) = dlncheck_json(&[
        "train",
        "--problem",
        &dir.s("p.npz"),
        "--alpha",
        "0.1",
        "--stepsize",
        "5",
        "--out",
        &dir.s("r.npz"),
    ]);
    assert_eq!(code, 3);
    assert_eq!(t["diverged"], true);
    assert_eq!(t["stop"]["reason"], "diverged");
    assert!(t["stop"]["step"].as_u64().unwrap() > 0);
    assert!(!dir.path("r.npz").exists(), "a diverged run writes no file");
    let (code, _, err) =
        dlncheck(&["train", "--problem", &dir.s("p.npz"), "--alpha", "0.1", "--stepsize", "5", "--batch", "1"]);
    assert_eq!(code, 3);
    assert!(err.is_empty());
}

#[test]
fn bad_problem_files() {
    let dir = Dir::new();
    let x: Vec<f64> = (0..12).map(|i| ((i * 7) % 5) as f64 - 2.0 + 0.1 * i as f64).collect();
    write(&dir.path("short_y.npz"), &[("X", &[3, 4], &x), ("y", &[2], &[1.0, 2.0])]);
    assert_bad(
        &["train", "--problem", &dir.s("short_y.npz"), "--alpha", "0.1", "--stepsize", "0.1"],
        &["short_y.npz", "array `y`", "shape (2,)", "(3,)"],
    );
    let mut x_nan = x.clone();
    x_nan[5] = f64::NAN;
    write(&dir.path("nan.npz"), &[("X", &[3, 4], &x_nan), ("y", &[3], &[1.0, 2.0, 3.0])]);
    assert_bad(
        &["train", "--problem", &dir.s("nan.npz"), "--alpha", "0.1", "--stepsize", "0.1"],
        &["array `X`", "[1, 1]", "not finite"],
    );
    write(&dir.path("no_y.npz"), &[("X", &[3, 4], &x)]);
    assert_bad(
        &["train", "--problem", &dir.s("no_y.npz"), "--alpha", "0.1", "--stepsize", "0.1"],
        &["array `y`", "missing"],
    );
    write(&dir.path("tall.npz"), &[("X", &[4, 3], &x), ("y", &[4], &[1.0, 2.0, 3.0, 4.0])]);
    write(
        &dir.path("run_tall.npz"),
        &[("alpha", &[], &[0.1]), ("stepsizes", &[1], &[0.1]), ("grads", &[1, 3], &[0.1, 0.2, 0.3])],
    );
    assert_bad(
        &["predict", "--problem", &dir.s("tall.npz"), "--trajectory", &dir.s("run_tall.npz")],
        &["tall.npz", "array `X`", "d > n"],
    );
    let dup: Vec<f64> = x[..4].iter().chain(&x[..4]).chain(&x[8..]).copied().collect();
    write(&dir.path("rank.npz"), &[("X", &[3, 4], &dup), ("y", &[3], &[1.0, 1.0, 2.0])]);
    write(
        &dir.path("traj4.npz"),
        &[("alpha", &[], &[0.1]), ("stepsizes", &[1], &[0.1]), ("grads", &[1, 4], &[0.1, 0.2, 0.3, 0.4])],
    );
    assert_bad(
        &["predict", "--problem", &dir.s("rank.npz"), "--trajectory", &dir.s("traj4.npz")],
        &["array `X`", "rank-deficient"],
    );
}

#[test]
fn corrupt_and_truncated_archives() {
    let dir = Dir::new();
    std::fs::write(dir.path("junk.npz"), b"this is not a zip archive at all").unwrap();
    assert_bad(
        &["train", "--problem", &dir.s("junk.npz"), "--alpha", "0.1", "--stepsize", "0.1"],
        &["junk.npz", "not a .npz archive"],
    );
    let bytes = std::fs::read(fixture("problem_compressed.npz")).unwrap();
    std::fs::write(dir.path("cut.npz"), &bytes[..bytes.len() / 2]).unwrap();
    assert_bad(&["train", "--problem", &dir.s("cut.npz"), "--alpha", "0.1", "--stepsize", "0.1"], &["cut.npz"]);
    assert_bad(&["gain", &dir.s("missing.npz")], &["missing.npz", "cannot open"]);
}

#[test]
fn bad_training_settings() {
    let p = fixture("problem_plain.npz");
    let p = p.to_str().unwrap();
    assert_bad(&["train", "--problem", p, "--alpha", "0", "--stepsize", "0.1"], &["α must be finite and > 0"]);
    assert_bad(&["train", "--problem", p, "--alpha", "-0.5", "--stepsize", "0.1"], &["-0.5"]);
    assert_bad(&["train", "--problem", p, "--alpha", "0.1", "--stepsize", "fast"], &["`fast` is not a number"]);
    assert_bad(&["train", "--problem", p, "--alpha", "0.1", "--stepsize", "-1"], &["> 0"]);
    assert_bad(
        &["train", "--problem", p, "--alpha", "0.1", "--stepsize", "0.1", "--batch", "9"],
        &["batch size 9", "1..=4"],
    );
    assert_bad(&["train", "--problem", p, "--alpha", "0.1"], &["--stepsize", "--schedule"]);
    let dir = Dir::new();
    write(&dir.path("alpha.npz"), &[("alpha", &[6], &[0.1, 0.1, -0.1, 0.1, 0.1, 0.1])]);
    assert_bad(
        &["train", "--problem", p, "--alpha", &dir.s("alpha.npz"), "--stepsize", "0.1"],
        &["alpha.npz", "array `alpha`", "entry 2"],
    );
}

#[test]
fn bad_schedules() {
    let p = fixture("problem_plain.npz");
    let p = p.to_str().unwrap();
    let dir = Dir::new();
    write(&dir.path("empty.npz"), &[("stepsizes", &[0], &[])]);
    assert_bad(
        &["train", "--problem", p, "--alpha", "0.1", "--schedule", &dir.s("empty.npz")],
        &["empty.npz", "array `stepsizes`", "empty"],
    );
    let mut w = NpzWriter::new();
    w.f64("stepsizes", &[2], &[0.1, 0.1]).i64("batches", &[2, 1], &[0, 4]);
    w.write(&dir.path("range.npz"), &[]).unwrap();
    assert_bad(
        &["train", "--problem", p, "--alpha", "0.1", "--schedule", &dir.s("range.npz")],
        &["array `batches`", "index 4 at step 1", "out of range 0..4"],
    );
    let mut w = NpzWriter::new();
    w.f64("stepsizes", &[2], &[0.1, 0.1]).i64("batches", &[3, 1], &[0, 1, 2]);
    w.write(&dir.path("rows.npz"), &[]).unwrap();
    assert_bad(
        &["train", "--problem", p, "--alpha", "0.1", "--schedule", &dir.s("rows.npz")],
        &["array `batches`", "(3, 1)"],
    );
}

#[test]
fn bad_trajectories() {
    let dir = Dir::new();
    // γ·g = 1 exactly at step 1, coordinate 0: the factor 1 - γg is 0.
    write(
        &dir.path("zero.npz"),
        &[("alpha", &[], &[0.1]), ("stepsizes", &[2], &[0.5, 0.5]), ("grads", &[2, 2], &[0.1, 0.1, 2.0, 0.1])],
    );
    assert_bad(&["gain", "--trajectory", &dir.s("zero.npz")], &["zero.npz", "step 1, coordinate 0", "exactly 0"]);
    write(
        &dir.path("shape.npz"),
        &[("alpha", &[], &[0.1]), ("stepsizes", &[3], &[0.5, 0.5, 0.5]), ("grads", &[2, 2], &[0.1; 4])],
    );
    assert_bad(&["gain", "--trajectory", &dir.s("shape.npz")], &["array `stepsizes`", "(3,)", "(2,)"]);
    write(
        &dir.path("alpha3.npz"),
        &[("alpha", &[3], &[0.1; 3]), ("stepsizes", &[1], &[0.5]), ("grads", &[1, 2], &[0.1; 2])],
    );
    assert_bad(&["gain", "--trajectory", &dir.s("alpha3.npz")], &["array `alpha`", "scalar or (2,)"]);
    write(&dir.path("nogrid.npz"), &[("alpha", &[], &[0.1]), ("stepsizes", &[0], &[]), ("grads", &[0, 2], &[])]);
    assert_bad(&["gain", "--trajectory", &dir.s("nogrid.npz")], &["array `grads`", "empty"]);
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = dlncheck(&["train", "--nonsense"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = dlncheck(&["gain"]);
    assert_eq!(code, 2);
}

#[test]
fn solve_modes_and_certificates() {
    let dir = Dir::new();
    dlncheck(&["gen", "--out", &dir.s("p.npz")]);
    let (code, bp) = dlncheck_json(&["solve", "--problem", &dir.s("p.npz"), "--l1"]);
    assert_eq!(code, 0);
    assert!(bp["feasibility"].as_f64().unwrap() < 1e-12);
    assert!(bp["rel_gap"].as_f64().unwrap().abs() < 1e-9);
    assert_eq!((&bp["backend"], &bp["dual_from"]), (&json!("homotopy"), &json!("homotopy")));
    // The LP backend gives the same minimiser, certified by its own dual.
    let (code, lp) = dlncheck_json(&["solve", "--problem", &dir.s("p.npz"), "--l1", "--backend", "minilp"]);
    assert_eq!((code, &lp["backend"]), (0, &json!("minilp")));
    assert!((lp["objective"].as_f64().unwrap() - bp["objective"].as_f64().unwrap()).abs() < 1e-12);
    let (code, l2) = dlncheck_json(&["solve", "--problem", &dir.s("p.npz"), "--l2"]);
    assert_eq!(code, 0);
    assert!(l2["objective"].as_f64().unwrap() > 0.0);
    let (code, ent) = dlncheck_json(&["solve", "--problem", &dir.s("p.npz"), "--alpha", "0.1"]);
    assert_eq!(code, 0);
    assert_eq!(ent["beta"].as_array().unwrap().len(), 30);
    // Weighted BP with all weights 2 has the BP solution and twice its objective.
    let mut w = NpzWriter::new();
    w.f64("weights", &[30], &[2.0; 30]);
    w.write(&dir.path("w.npz"), &[]).unwrap();
    let (code, wbp) = dlncheck_json(&["solve", "--problem", &dir.s("p.npz"), "--weights", &dir.s("w.npz")]);
    assert_eq!(code, 0);
    let ratio = wbp["objective"].as_f64().unwrap() / bp["objective"].as_f64().unwrap();
    assert!((ratio - 2.0).abs() < 1e-12, "{ratio}");
}

#[test]
fn bad_solve_inputs() {
    let dir = Dir::new();
    dlncheck(&["gen", "--out", &dir.s("p.npz")]);
    let p = dir.s("p.npz");
    let mut w = NpzWriter::new();
    let mut zero = [1.0; 30];
    zero[4] = 0.0;
    w.f64("weights", &[30], &zero);
    w.write(&dir.path("zero.npz"), &[]).unwrap();
    assert_bad(&["solve", "--problem", &p, "--weights", &dir.s("zero.npz")], &["weight 4 is 0", "> 0"]);
    let mut w = NpzWriter::new();
    let mut nan = [1.0; 30];
    nan[7] = f64::NAN;
    w.f64("weights", &[30], &nan);
    w.write(&dir.path("nan.npz"), &[]).unwrap();
    assert_bad(
        &["solve", "--problem", &p, "--weights", &dir.s("nan.npz")],
        &["nan.npz", "array `weights`", "not finite"],
    );
    assert_bad(&["solve", "--problem", &p, "--l1", "--backend", "gurobi"], &["unknown basis pursuit backend `gurobi`"]);
    dlncheck(&["gen", "--n", "30", "--d", "20", "--sparsity", "2", "--out", &dir.s("tall.npz")]);
    assert_bad(&["solve", "--problem", &dir.s("tall.npz"), "--l1"], &["array `X`", "d > n"]);
    assert_bad(&["solve", "--problem", &p], &["give one of"]);
    // Two equal rows with different labels: no interpolator exists.
    let x = [1.0, 2.0, 0.0, 1.0, 1.0, 2.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0];
    write(&dir.path("inconsistent.npz"), &[("X", &[3, 4], &x), ("y", &[3], &[1.0, 2.0, 0.5])]);
    assert_bad(&["solve", "--problem", &dir.s("inconsistent.npz"), "--l1"], &["inconsistent.npz", "rank-deficient"]);
    assert_bad(&["solve", "--problem", &dir.s("inconsistent.npz"), "--alpha", "0.1"], &["rank-deficient"]);
    // The same rows with equal labels: interpolators exist, and the rank is checked only
    // when a solver fails. Basis pursuit answers, certified; dual Newton too (its
    // Hessian is singular, the ridge of its Cholesky only damps the step), to 1e-13.
    write(&dir.path("repeated.npz"), &[("X", &[3, 4], &x), ("y", &[3], &[1.0, 1.0, 0.5])]);
    let (code, bp) = dlncheck_json(&["solve", "--problem", &dir.s("repeated.npz"), "--l1"]);
    assert_eq!(code, 0, "{bp}");
    assert!(bp["rel_gap"].as_f64().unwrap().abs() <= 1e-9 && bp["feasibility"].as_f64().unwrap() <= 1e-12);
    let (code, ent) = dlncheck_json(&["solve", "--problem", &dir.s("repeated.npz"), "--alpha", "0.1"]);
    assert_eq!(code, 0, "{ent}");
    assert!(ent["residual"].as_f64().unwrap() <= 1e-13 && ent["feasibility"].as_f64().unwrap() <= 1e-13);
}

#[cfg(not(feature = "highs"))]
#[test]
fn a_backend_not_built_is_reported() {
    let dir = Dir::new();
    dlncheck(&["gen", "--out", &dir.s("p.npz")]);
    assert_bad(
        &["solve", "--problem", &dir.s("p.npz"), "--l1", "--backend", "highs"],
        &["LP backend highs", "--features highs"],
    );
}

#[test]
fn compare_formats() {
    let args = ["compare", "--run", "gd:0.2", "--run", "sgd:0.05:1", "--seeds", "3"];
    let (code, j) = dlncheck_json(&args);
    assert_eq!(code, 0);
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(j["seeds"], 3);
    let run = &rows[0];
    assert_eq!(run["method"], "GD γ=0.2: run");
    assert!(run["dist_theory"].as_f64().unwrap() < 1e-10, "{run}");
    assert!(run["err_ci95"].as_f64().unwrap() > 0.0, "three problems, three errors");
    let (_, md, _) = dlncheck(&[&args[..], &["--format", "md"]].concat());
    assert!(md.starts_with("| method |") && md.contains(" ± "), "{md}");
    let (_, tex, _) = dlncheck(&[&args[..], &["--format", "latex"]].concat());
    assert!(tex.contains("\\toprule") && tex.contains("\\bottomrule") && tex.contains("$\\gamma$"), "{tex}");
    let (_, csv, _) = dlncheck(&[&args[..], &["--format", "csv"]].concat());
    assert_eq!(csv.lines().count(), 11);
    assert!(csv.lines().all(|l| l.matches(',').count() == 17), "{csv}");
    assert_bad(&["compare", "--run", "adam:0.1"], &["gd:γ or sgd:γ:m"]);
    assert_bad(&["compare", "--run", "gd:0.1", "--format", "xlsx"], &["unknown format"]);
    assert_bad(
        &["--json", "compare", "--run", "gd:0.1", "--format", "latex"],
        &["--json prints JSON", "--format latex"],
    );
    assert_bad(&["--json", "check", "--format", "md"], &["--json prints JSON"]);
    assert_bad(&["compare", "--run", "gd:0.1", "--digits", "0"], &["--digits 0", "1..=17"]);
}

/// Tables a paper can use: CSV reads back to the JSON's f64 bit for bit; one notation
/// per column; a row that is the same on every seed prints as its value, without a
/// rounding-noise interval; `--digits` sets the significant digits.
#[test]
fn compare_tables_are_exact_and_consistent() {
    let args = ["compare", "--run", "gd:0.2", "--seeds", "3"];
    let (_, j) = dlncheck_json(&args);
    let (_, csv, _) = dlncheck(&[&args[..], &["--format", "csv"]].concat());
    let rows: Vec<Vec<String>> = csv.lines().skip(1).map(|l| l.split(',').map(str::to_owned).collect()).collect();
    for (row, json) in rows.iter().zip(j["rows"].as_array().unwrap()) {
        let err: f64 = row[1].parse().unwrap();
        assert_eq!(err.to_bits(), json["err"].as_f64().unwrap().to_bits(), "{row:?}");
        assert!(row.iter().all(|c| c.len() < 30), "shortest round-trip text: {row:?}");
    }
    let (_, md, _) = dlncheck(&[&args[..], &["--digits", "3"]].concat());
    // On one problem file GD and the references are the same on every seed: no interval
    // (the means of identical values differ from them by rounding only).
    let dir = Dir::new();
    ProblemSpec::default().generate().unwrap().save(&dir.path("p.npz"), &[]).unwrap();
    let (_, fixed, _) = dlncheck(&[&args[..], &["--problem", &dir.s("p.npz")]].concat());
    assert!(!fixed.contains('±'), "{fixed}");
    let column = |k: usize| -> Vec<String> {
        md.lines()
            .skip(2)
            .filter(|l| l.starts_with('|'))
            .map(|l| l.split('|').nth(k).unwrap().trim().to_owned())
            .collect()
    };
    // ‖b − b*‖₂ spans 1e-16 to 2: scientific in every row, 3 significant digits; b*'s
    // own error is an exact 0.
    let mut err = column(2);
    assert_eq!(err.pop().as_deref(), Some("0"), "{err:?}");
    assert!(err.iter().all(|c| c.contains('e')), "{err:?}");
    assert!(err.iter().all(|c| c.split(' ').next().unwrap().split('e').next().unwrap().len() == 4), "{err:?}");
}

/// A diverged run is marked in the table (no numbers), the exit code is 3 unless
/// --allow-diverged; an unconverged one is marked and exits 4.
#[test]
fn compare_marks_diverged_and_unconverged_runs() {
    let diverged = ["compare", "--run", "gd:0.2", "--run", "sgd:0.3:4", "--seeds", "2"];
    let (code, md, _) = dlncheck(&diverged);
    assert_eq!(code, 3, "{md}");
    let row = md.lines().find(|l| l.starts_with("| SGD γ=0.3 m=4: run |")).unwrap();
    assert!(row.contains("diverged at step") && !row.contains("e31"), "{row}");
    let (code, tex, _) = dlncheck(&[&diverged[..], &["--format", "latex", "--allow-diverged"]].concat());
    assert_eq!(code, 0);
    assert!(tex.contains("\\emph{diverged at step"), "{tex}");
    let (_, j) = dlncheck_json(&diverged);
    let flagged = &j["rows"][3];
    assert_eq!(flagged["flag"]["status"], "diverged");
    assert!(flagged["err"].is_null());
    let (code, md, _) = dlncheck(&["compare", "--run", "gd:0.2", "--iters", "50"]);
    assert_eq!(code, 4, "{md}");
    assert!(md.contains("not converged: loss"), "{md}");
}

#[test]
fn threshold_reports_a_bracket_and_refuses_bad_settings() {
    let dir = Dir::new();
    let (problem, prob) = (dir.path("p.npz"), dir.s("p.npz"));
    ProblemSpec::default().generate().unwrap().save(&problem, &[]).unwrap();
    for batch in [None, Some("1")] {
        let mut args = vec!["threshold", "--problem", &prob, "--alpha", "0.1"];
        args.extend(batch.iter().flat_map(|b| ["--batch", *b]));
        let (code, json) = dlncheck_json(&args);
        assert_eq!(code, 0, "{json}");
        let bracket = |key: &str| (json[key]["lo"].as_f64().unwrap(), json[key]["hi"].as_f64().unwrap());
        let ((lo, hi), (div_lo, div_hi)) = (bracket("convergence"), bracket("divergence"));
        assert!(lo < hi && hi / lo - 1.0 <= 0.005, "{json}");
        assert!(div_lo < div_hi && div_hi / div_lo - 1.0 <= 0.005, "{json}");
        assert!(json["convergence"]["hi_stop"]["reason"] != "converged");
        assert_eq!(json["divergence"]["hi_stop"]["reason"], "diverged");
        // A converging run does not blow up: the window lies between the two.
        assert!(hi <= div_lo, "{json}");
        assert_eq!((json["window"]["lo"].as_f64(), json["window"]["hi"].as_f64()), (Some(hi), Some(div_lo)));
    }
    assert_bad(&["threshold", "--problem", &prob, "--alpha", "0.1", "--batch", "21"], &["--batch 21", "1..=20"]);
    assert_bad(&["threshold", "--problem", &prob, "--alpha", "-1"], &["alpha"]);
    assert_bad(&["threshold", "--problem", &prob, "--alpha", "0.1", "--time", "0"], &["time = 0e0 must be in"]);
    assert_bad(&["threshold", "--problem", &dir.s("missing.npz"), "--alpha", "0.1"], &["missing.npz"]);
}

#[test]
fn solve_with_a_potential_formula() {
    let dir = Dir::new();
    let (problem, prob) = (dir.path("p.npz"), dir.s("p.npz"));
    ProblemSpec::default().generate().unwrap().save(&problem, &[]).unwrap();
    let psi = "(b * asinh(b / a^2) - sqrt(b^2 + a^4) + a^2) / 2";
    let (code, generic) = dlncheck_json(&["solve", "--problem", &prob, "--potential", psi, "--alpha", "0.1"]);
    assert_eq!(code, 0, "{generic}");
    let (_, builtin) = dlncheck_json(&["solve", "--problem", &prob, "--alpha", "0.1"]);
    let rel = (generic["objective"].as_f64().unwrap() - builtin["objective"].as_f64().unwrap()).abs();
    assert!(rel <= 1e-9 * builtin["objective"].as_f64().unwrap(), "{generic} vs {builtin}");
    assert_bad(&["solve", "--problem", &prob, "--potential", "b^2 + * 3"], &["column 7", "expected a number", "^"]);
    assert_bad(&["solve", "--problem", &prob, "--potential", "-b^2"], &["not strictly convex", "φ''(b = 0e0"]);
    assert_bad(
        &["solve", "--problem", &prob, "--potential", "b^2", "--l1"],
        &["--potential combines only with --alpha"],
    );
    assert_bad(&["solve", "--problem", &prob, "--potential", "sin(b)"], &["unknown function `sin`"]);
}

/// A run file stores its stepsizes as runs of equal values (`stepsize_values`,
/// `stepsize_counts`), and replaying the run file as a schedule (with its recorded
/// batches) gives the same run to the bit.
#[test]
fn run_files_store_stepsizes_as_runs_and_replay_to_the_bit() {
    let dir = Dir::new();
    let (code, _) = dlncheck_json(&["gen", "--n", "10", "--d", "20", "--seed", "2", "--out", &dir.s("p.npz")]);
    assert_eq!(code, 0);
    let train = |extra: &[&str], out: &str| {
        let (p, o) = (dir.s("p.npz"), dir.s(out));
        let args = [&["train", "--problem", p.as_str(), "--alpha", "0.1", "--out", o.as_str()][..], extra].concat();
        let (code, t) = dlncheck_json(&args);
        assert_eq!(code, 0, "{t}");
        t
    };
    let runs = |name: &str| {
        let mut f = dlncheck::npz::NpzReader::open(&dir.path(name)).unwrap();
        assert!(!f.contains("stepsizes"));
        (f.f64_array("stepsize_values").unwrap().data, f.i64_array("stepsize_counts").unwrap().data)
    };
    let t =
        train(&["--stepsize", "0.2@7,0.1", "--batch", "2", "--iters", "50", "--tol", "0", "--record-batches"], "a.npz");
    assert_eq!(runs("a.npz"), (vec![0.2, 0.1], vec![7, 43]));
    let again = train(&["--schedule", &dir.s("a.npz"), "--tol", "0"], "b.npz");
    assert_eq!(again["beta"], t["beta"]);
    assert_eq!(runs("b.npz"), runs("a.npz"));
    let t = train(&["--stepsize", "0.1"], "c.npz");
    assert_eq!(runs("c.npz"), (vec![0.1], vec![t["iters"].as_i64().unwrap()]));
}

#[test]
fn bad_stepsize_runs() {
    let p = fixture("problem_plain.npz");
    let p = p.to_str().unwrap();
    let dir = Dir::new();
    // (values, shape of counts, counts, what the message names)
    type Case<'a> = (&'a [f64], &'a [usize], &'a [i64], &'a [&'a str]);
    let cases: [Case; 6] = [
        (&[], &[0], &[], &["array `stepsize_values`", "empty"]),
        (&[0.1, 0.2], &[2], &[3, 0], &["array `stepsize_counts`", "entry 1 is 0", "≥ 1"]),
        (&[0.1], &[1], &[-5], &["entry 0 is -5"]),
        (&[0.1, 0.2], &[1], &[3], &["array `stepsize_counts`", "(1,)", "expected (2,)"]),
        (&[0.1, 0.2], &[2], &[i64::MAX, i64::MAX], &["adds up past 1000000000 steps at entry 0"]),
        (&[0.1, -0.2], &[2], &[3, 1], &["array `stepsize_values`", "entry 1 is -0.2"]),
    ];
    for (i, (values, shape, counts, fragments)) in cases.iter().enumerate() {
        let name = format!("s{i}.npz");
        let mut w = NpzWriter::new();
        w.f64("stepsize_values", &[values.len()], values).i64("stepsize_counts", shape, counts);
        w.write(&dir.path(&name), &[]).unwrap();
        assert_bad(&["train", "--problem", p, "--alpha", "0.1", "--schedule", &dir.s(&name)], fragments);
    }
    let mut w = NpzWriter::new();
    w.f64("stepsize_values", &[1], &[0.1]);
    w.write(&dir.path("half.npz"), &[]).unwrap();
    assert_bad(
        &["train", "--problem", p, "--alpha", "0.1", "--schedule", &dir.s("half.npz")],
        &["array `stepsize_counts`", "missing"],
    );
    let mut w = NpzWriter::new();
    w.f64("stepsize_values", &[1], &[0.1]).i64("stepsize_counts", &[1], &[2]).f64("stepsizes", &[2], &[0.1, 0.1]);
    w.write(&dir.path("both.npz"), &[]).unwrap();
    assert_bad(
        &["train", "--problem", p, "--alpha", "0.1", "--schedule", &dir.s("both.npz")],
        &["array `stepsizes`", "both given"],
    );
}
