//! Issue 22, item 3: dlncheck's own runs keep every digit. At α = 1e-8 the smaller of
//! w± = (u ± v)/√2 falls far below ε times the larger, which (u, v) coordinates in f64
//! lose; training keeps (w₊, w₋). Checked against GD in double-double arithmetic
//! (~32 digits) in the user's (u, v) coordinates, and by the verdict itself.

use dlncheck::model::Model;
use dlncheck::predict::{Verdict, predict};
use dlncheck::problem::{Problem, ProblemSpec};
use dlncheck::runfile::RunRecord;
use dlncheck::solve::NewtonSettings;
use dlncheck::train::{Batching, Stepsizes, TrainConfig, train};
use nalgebra::DVector;
use twofloat::TwoFloat;

/// `steps` GD steps on b = u ⊙ v from u₀ = √2α, v₀ = 0 in double-double arithmetic.
fn double_double_gd(p: &Problem, alpha: f64, gamma: f64, steps: usize) -> Vec<f64> {
    let (n, d) = (p.n(), p.d());
    let root2 = TwoFloat::from(2.0).sqrt();
    let mut u: Vec<TwoFloat> = vec![root2 * alpha; d];
    let mut v: Vec<TwoFloat> = vec![TwoFloat::from(0.0); d];
    let scale = TwoFloat::from(gamma) / n as f64;
    for _ in 0..steps {
        let b: Vec<TwoFloat> = (0..d).map(|j| u[j] * v[j]).collect();
        let r: Vec<TwoFloat> =
            (0..n).map(|i| (0..d).fold(TwoFloat::from(-p.y[i]), |acc, j| acc + b[j] * p.x[(i, j)])).collect();
        for j in 0..d {
            let g = (0..n).fold(TwoFloat::from(0.0), |acc, i| acc + r[i] * p.x[(i, j)]);
            let x = scale * g;
            (u[j], v[j]) = (u[j] - x * v[j], v[j] - x * u[j]);
        }
    }
    (0..d).map(|j| (u[j] * v[j]).hi()).collect()
}

fn run(p: &Problem, alpha: f64, steps: usize, tol: f64) -> dlncheck::train::Run {
    let mut c = TrainConfig::with_model(
        Model::uv(DVector::from_element(p.d(), alpha)),
        Stepsizes::Constant(0.3),
        Batching::Full,
    );
    (c.max_iters, c.tol) = (steps, tol);
    train(p, &c).unwrap()
}

#[test]
fn a_run_at_alpha_1e_minus_8_follows_double_double_gd_and_agrees() {
    let p = ProblemSpec::default().generate().unwrap();
    // The iterates after 20,000 steps, against ~32-digit GD in (u, v).
    let steps = 20_000;
    let reference = DVector::from_vec(double_double_gd(&p, 1e-8, 0.3, steps));
    let ours = run(&p, 1e-8, steps, 0.0).beta();
    let rel = (&ours - &reference).norm() / reference.norm();
    assert!(rel <= 1e-10, "after {steps} steps: rel {rel:e} from double-double GD");
    // To the limit: the verdict agrees, to 1e-10.
    for alpha in [1e-8, 1e-12] {
        let r = run(&p, alpha, 1_000_000, 1e-25);
        let rec = RunRecord::from_run(&r);
        let pred = predict(&p.x, &p.y, &rec.effective_init(), Some(&rec.beta), &NewtonSettings::default()).unwrap();
        let c = pred.checks.unwrap();
        assert!(c.rel_err <= 1e-10 && c.verdict(1e-8) == Verdict::Agrees, "α = {alpha:e}: {c:?}");
        assert!(rec.conservation_residual() <= 1e-11, "α = {alpha:e}: {}", rec.conservation_residual());
    }
}

/// An honest run file keeps the tolerance asked for; one whose weights do not give its
/// iterate is refused (exit 2, naming beta), not passed off as lost digits; one whose
/// start does not fit its weights (the conservation law off by ln 2.25, far beyond
/// rounding) keeps the tolerance and disagrees.
#[test]
fn predict_tells_lost_digits_from_a_file_that_contradicts_itself() {
    let dir = std::env::temp_dir().join(format!("dlncheck-precision-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = ProblemSpec::default().generate().unwrap();
    let problem = dir.join("p.npz");
    p.save(&problem, &[]).unwrap();
    let r = run(&p, 0.1, 1_000_000, 1e-25);
    let good = dir.join("run.npz");
    dlncheck::runfile::save_run(&r, &good, &[]).unwrap();
    let bin = env!("CARGO_BIN_EXE_dlncheck");
    let predict = |file: &std::path::Path| {
        let out = std::process::Command::new(bin)
            .args(["--json", "predict", "--problem", problem.to_str().unwrap(), "--run", file.to_str().unwrap()])
            .output()
            .unwrap();
        (out.status.code(), serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap())
    };
    let (code, json) = predict(&good);
    assert_eq!((code, json["verdict"].as_str()), (Some(0), Some("agrees")), "{json}");
    assert_eq!(json["tol_used"].as_f64(), Some(1e-8));
    // The same file with w₊ tripled: its weights no longer fit its gain.
    let rec = RunRecord::from_run(&r);
    let bad = dir.join("bad.npz");
    let write = |model: &Model, w_plus: &DVector<f64>| {
        let mut w = dlncheck::npz::NpzWriter::new();
        dlncheck::runfile::write_model(&mut w, model);
        w.vector("w_plus", w_plus)
            .vector("w_minus", &rec.w_minus)
            .vector("beta", &rec.beta)
            .vector("gain", &rec.gain)
            .vector("q_plus", &rec.q_plus)
            .vector("q_minus", &rec.q_minus)
            .i64("iters", &[], &[rec.iters as i64]);
        w.write(&bad, &[]).unwrap();
    };
    write(&rec.model, &(&rec.w_plus * 3.0));
    let out = std::process::Command::new(bin)
        .args(["--json", "predict", "--problem", problem.to_str().unwrap(), "--run", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("beta") && stderr.contains("same step"), "{stderr}");
    // The weights and iterate as trained, credited to a start 1.5 times larger.
    write(&Model::uv(DVector::from_element(p.d(), 0.15)), &rec.w_plus);
    let (code, json) = predict(&bad);
    assert_eq!((code, json["verdict"].as_str()), (Some(1), Some("disagrees")), "{json}");
    assert_eq!(json["tol_used"].as_f64(), Some(1e-8), "{json}");
    std::fs::remove_dir_all(&dir).ok();
}
