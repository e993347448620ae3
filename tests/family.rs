//! Issue 21, the exact family (theory/README.md § Other starts and parametrisations):
//! each member's limit against loops written here in the user's coordinates (u, v or z,
//! not the kernels' w±), with the KKT conditions checked independently of the solver
//! (a least-squares projection written here); and the new surfaces (--param, --init,
//! start arrays in files, `param` texts, claims' `init`) under hostile input.

mod common;

use common::{Dir, dlncheck};
use dlncheck::model::{Init, Model, Param};
use dlncheck::npz::{NpzReader, NpzWriter};
use dlncheck::predict::predict;
use dlncheck::problem::{Problem, ProblemSpec};
use dlncheck::solve::NewtonSettings;
use dlncheck::train::{Batching, Stepsizes, TrainConfig, train};
use dlncheck::trajectory::{ExternalTrajectory, continued};
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("DLNCHECK_PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64)
}

fn problem(d: usize, seed: u64) -> Problem {
    ProblemSpec { n: 20, d, sparsity: 3, seed, ..ProblemSpec::default() }.generate().unwrap()
}

/// A user's GD loop: `step(g, γ)` moves their weights, `beta()` reads b. Returns the
/// final b and the gradients.
fn gd_loop(
    p: &Problem,
    gamma: f64,
    mut step: impl FnMut(&DVector<f64>),
    beta: impl Fn() -> DVector<f64>,
) -> (DVector<f64>, Vec<DVector<f64>>) {
    let mut grads = Vec::new();
    for _ in 0..2_000_000 {
        let r = &p.x * beta() - &p.y;
        if r.norm_squared() / 40.0 < 1e-27 {
            break;
        }
        let g = p.x.tr_mul(&r) / p.n() as f64;
        step(&(gamma * &g));
        grads.push(g);
    }
    (beta(), grads)
}

/// GD on b = u ⊙ v written in (u, v), as a user writes it, from (u₀, v₀).
fn uv_loop(p: &Problem, gamma: f64, u0: DVector<f64>, v0: DVector<f64>) -> (DVector<f64>, Vec<DVector<f64>>) {
    let w = std::cell::RefCell::new((u0, v0));
    gd_loop(
        p,
        gamma,
        |x| {
            let (u, v) = &mut *w.borrow_mut();
            (*u, *v) = (&*u - x.component_mul(v), &*v - x.component_mul(u));
        },
        || w.borrow().0.component_mul(&w.borrow().1),
    )
}

/// The part of r outside the row space of x, relative to ‖r‖ (least squares by SVD).
fn outside_row_space(x: &DMatrix<f64>, r: &DVector<f64>) -> f64 {
    let coef = x.transpose().svd(true, true).solve(r, 1e-14).unwrap();
    (r - x.transpose() * coef).norm() / r.norm().max(1.0)
}

/// Saves a trajectory with the start's arrays, loads it as the command line does, and
/// returns the prediction's rel_err and the file's model.
fn predict_file(
    dir: &Dir,
    p: &Problem,
    start: &[(&str, DVector<f64>)],
    param: Option<&str>,
    gamma: f64,
    grads: &[DVector<f64>],
    beta: &DVector<f64>,
) -> (f64, Model) {
    let path = dir.path("t.npz");
    let mut w = NpzWriter::new();
    for (name, v) in start {
        w.vector(name, v);
    }
    if let Some(p) = param {
        w.text("param", p);
    }
    let g = DMatrix::from_fn(grads.len(), p.d(), |k, j| grads[k][j]);
    w.matrix("grads", &g).vector("stepsizes", &DVector::from_element(grads.len(), gamma)).vector("beta", beta);
    w.write(&path, &[]).unwrap();
    let t = ExternalTrajectory::load(&path, None).unwrap();
    let eff = continued(std::slice::from_ref(&t)).unwrap();
    let pred = predict(&p.x, &p.y, &eff, Some(beta), &NewtonSettings::default()).unwrap();
    (pred.checks.unwrap().rel_err, t.model)
}

#[test]
fn any_start_of_u_times_v_is_theorem_1_with_its_own_scale() {
    let dir = Dir::new();
    let p = problem(30, 3);
    let d = p.d();
    let u0 = DVector::from_fn(d, |i, _| 0.1 * (1.0 + (i % 7) as f64 / 7.0));
    let v0 = DVector::from_fn(d, |i, _| 0.1 * ((i % 5) as f64 / 5.0 - 0.4));
    let (beta, grads) = uv_loop(&p, 0.2, u0.clone(), v0.clone());
    let (rel, model) = predict_file(&dir, &p, &[("u0", u0.clone()), ("v0", v0.clone())], None, 0.2, &grads, &beta);
    assert!(rel <= 1e-10, "rel_err {rel}");
    // KKT by hand: asinh(b/α_∞²) − ρ in the row space, α_∞² = |w₊,₀w₋,₀| e^{−Gain}.
    let eff = model.effective_init(&accumulated(&model, 0.2, &grads));
    let (ell, rho) = (eff.ln_alpha_inf2(), eff.rho_total());
    let r = DVector::from_fn(d, |i, _| (beta[i] / ell[i].exp()).asinh() - rho[i]);
    assert!(outside_row_space(&p.x, &r) <= 1e-9);
    // The paper's formula at the same scale misses: the start matters.
    let paper = Model::uv(DVector::from_fn(d, |i, _| ((u0[i] * u0[i] - v0[i] * v0[i]).abs() / 2.0).sqrt()));
    let eff = paper.effective_init(&accumulated(&paper, 0.2, &grads));
    let wrong = predict(&p.x, &p.y, &eff, Some(&beta), &NewtonSettings::default()).unwrap().checks.unwrap().rel_err;
    assert!(wrong > 1e-3, "{wrong}");
}

/// The gain of the steps (x = s·γ·g) as the command line accumulates it.
fn accumulated(model: &Model, gamma: f64, grads: &[DVector<f64>]) -> dlncheck::trajectory::GainAccumulator {
    let mut acc = dlncheck::trajectory::GainAccumulator::new(grads[0].len());
    for g in grads {
        acc.add((model.param.x_scale() * gamma * g).as_slice()).unwrap();
    }
    acc
}

#[test]
fn u0_equal_to_v0_gives_the_relative_entropy_limit() {
    let dir = Dir::new();
    let p = problem(60, 0);
    let d = p.d();
    let a = DVector::from_element(d, 0.1);
    let (beta, grads) = uv_loop(&p, 0.1, a.clone(), a.clone());
    assert!(beta.min() > 0.0, "b keeps its sign");
    let (rel, model) = predict_file(&dir, &p, &[("u0", a.clone()), ("v0", a.clone())], None, 0.1, &grads, &beta);
    assert!(rel <= 1e-10, "rel_err {rel}");
    // KKT by hand: ln(2b/α₊²) in the row space, α₊² = w₊,₀² e^{−2Σq₊}, w₊,₀ = √2·0.1.
    let acc = accumulated(&model, 0.1, &grads);
    let q_plus = 0.5 * (&acc.gain - &acc.rho);
    let r = DVector::from_fn(d, |i, _| (2.0 * beta[i]).ln() - (0.02f64.ln() - 2.0 * q_plus[i]));
    assert!(outside_row_space(&p.x, &r) <= 1e-9);
}

#[test]
fn u2v2_and_mirror_descent_from_their_own_loops() {
    let dir = Dir::new();
    let p = problem(30, 1);
    let d = p.d();
    // b = u² − v²: u ← u − γ·2ug, v ← v + γ·2vg, from u₀ = v₀ = α.
    let (mut u, mut v) = (DVector::from_element(d, 0.1), DVector::from_element(d, 0.1));
    let (u_ref, v_ref) = (std::cell::RefCell::new(&mut u), std::cell::RefCell::new(&mut v));
    let (beta, grads) = gd_loop(
        &p,
        0.1,
        |x| {
            let (mut u, mut v) = (u_ref.borrow_mut(), v_ref.borrow_mut());
            let (u1, v1) = (&**u - 2.0 * x.component_mul(&**u), &**v + 2.0 * x.component_mul(&**v));
            (**u, **v) = (u1, v1);
        },
        || u_ref.borrow().map(|t| t * t) - v_ref.borrow().map(|t| t * t),
    );
    let start = [("alpha", DVector::from_element(d, 0.1))];
    let (rel, model) = predict_file(&dir, &p, &start, Some("u2v2"), 0.1, &grads, &beta);
    assert!(rel <= 1e-10 && model.param == Param::U2v2, "rel_err {rel}");
    // Mirror descent: z ← z − 2γg, b = α² sinh z, from b₀ (its limit is argmin D_ψ(b, b₀)).
    let b0 = DVector::from_fn(d, |i, _| 0.002 * ((i % 3) as f64 - 1.0));
    let mut z = b0.map(|b| (b / 0.01).asinh());
    let z_ref = std::cell::RefCell::new(&mut z);
    let (beta, grads) =
        gd_loop(&p, 0.1, |x| **z_ref.borrow_mut() -= 2.0 * x, || z_ref.borrow().map(|z| 0.01 * z.sinh()));
    let start = [("alpha", DVector::from_element(d, 0.1)), ("b0", b0.clone())];
    let (rel, model) = predict_file(&dir, &p, &start, Some("md"), 0.1, &grads, &beta);
    assert!(rel <= 1e-10 && model.param == Param::Md, "rel_err {rel}");
    // KKT by hand: asinh(b/α²) − asinh(b₀/α²) in the row space (no gain).
    let r = DVector::from_fn(d, |i, _| (beta[i] / 0.01).asinh() - (b0[i] / 0.01).asinh());
    assert!(outside_row_space(&p.x, &r) <= 1e-9);
}

#[test]
fn train_from_any_start_follows_the_users_loop() {
    let p = problem(30, 2);
    let d = p.d();
    let u0 = DVector::from_fn(d, |i, _| 0.05 + 0.01 * (i % 4) as f64);
    let v0 = DVector::from_fn(d, |i, _| if i % 3 == 0 { u0[i] } else { -0.02 * (i % 5) as f64 });
    let model = Model { param: Param::Uv, init: Init::Weights { u0: u0.clone(), v0: v0.clone() } };
    let mut c = TrainConfig::with_model(model, Stepsizes::Constant(0.2), Batching::Full);
    c.max_iters = 500;
    c.tol = 0.0;
    let run = train(&p, &c).unwrap();
    let (mut u, mut v) = (u0, v0);
    for _ in 0..500 {
        let x = 0.2 * p.x.tr_mul(&(&p.x * u.component_mul(&v) - &p.y)) / p.n() as f64;
        (u, v) = (&u - x.component_mul(&v), &v - x.component_mul(&u));
    }
    let (ru, rv) = run.model.weights(&run.weights.w_plus, &run.weights.w_minus).unwrap();
    assert!((ru - &u).amax() <= 1e-12 && (rv - &v).amax() <= 1e-12);
}

// ---- hostile input on the new surfaces -------------------------------------------------

fn problem_file(dir: &Dir) -> std::path::PathBuf {
    let path = dir.path("p.npz");
    problem(30, 0).save(&path, &[]).unwrap();
    path
}

#[test]
fn bad_starts_and_parametrisations_exit_2_naming_the_array() {
    let dir = Dir::new();
    let p = problem_file(&dir);
    let p = p.to_str().unwrap();
    let d = 30;
    let ones = DVector::from_element(d, 0.1);
    let write = |name: &str, f: &dyn Fn(&mut NpzWriter)| {
        let path = dir.path(name);
        let mut w = NpzWriter::new();
        f(&mut w);
        w.write(&path, &[]).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (
            write("only_u0.npz", &|w| {
                w.vector("u0", &ones);
            }),
            vec![],
            "v0",
        ),
        (
            write("short.npz", &|w| {
                w.vector("u0", &ones).vector("v0", &DVector::from_element(29, 0.1));
            }),
            vec![],
            "v0",
        ),
        (
            write("huge.npz", &|w| {
                w.vector("u0", &DVector::from_element(d, 1e200)).vector("v0", &ones);
            }),
            vec![],
            "1e150",
        ),
        (
            write("b0_uv.npz", &|w| {
                w.vector("alpha", &ones).vector("b0", &ones);
            }),
            vec![],
            "param md",
        ),
        (
            write("uv_md.npz", &|w| {
                w.vector("u0", &ones).vector("v0", &ones);
            }),
            vec!["--param", "md"],
            "param md",
        ),
        (
            write("empty.npz", &|w| {
                w.vector("w", &ones);
            }),
            vec![],
            "no start",
        ),
        (
            write("param_clash.npz", &|w| {
                w.vector("u0", &ones).vector("v0", &ones).text("param", "u2v2");
            }),
            vec!["--param", "uv"],
            "make them agree",
        ),
        (
            write("param_bad.npz", &|w| {
                w.vector("u0", &ones).vector("v0", &ones).text("param", "<script>");
            }),
            vec![],
            "unknown parametrisation",
        ),
        (
            write("param_number.npz", &|w| {
                w.vector("u0", &ones).vector("v0", &ones).f64("param", &[], &[2.0]);
            }),
            vec![],
            "not a text",
        ),
    ];
    for (init, extra, needle) in cases {
        let mut args = vec!["train", "--problem", p, "--init", &init, "--stepsize", "0.1", "--iters", "10"];
        args.extend(extra);
        let (code, _, err) = dlncheck(&args);
        assert_eq!(code, 2, "{init}: {err}");
        assert!(err.contains(needle), "{init}: {err}");
    }
    for bad in ["uvw", "", "UV ", "depth:2", "depth:9", "depth:x"] {
        let (code, _, err) =
            dlncheck(&["train", "--problem", p, "--alpha", "0.1", "--param", bad, "--stepsize", "0.1"]);
        assert_eq!(code, 2, "{bad}");
        assert!(err.contains("unknown parametrisation") || err.contains("invalid value"), "{bad}: {err}");
    }
    // A NaN in a start is refused where it is read, by name.
    let nan = write("nan.npz", &|w| {
        w.vector("u0", &DVector::from_element(d, f64::NAN)).vector("v0", &ones);
    });
    let (code, _, err) = dlncheck(&["train", "--problem", p, "--init", &nan, "--stepsize", "0.1"]);
    assert!(code == 2 && err.contains("u0") && err.contains("not finite"), "{err}");
}

/// A text read back is the text written (numpy's `<U…`), for any text without NUL up to
/// the length limit; longer texts and other dtypes are refused, never misread.
#[test]
fn param_texts_round_trip_and_long_ones_are_refused() {
    let dir = Dir::new();
    let path = dir.path("t.npz");
    let limit = dlncheck::npz::MAX_TEXT as usize;
    proptest!(ProptestConfig::with_cases(cases()), |(text in "[^\u{0}]{0,64}")| {
        NpzWriter::new().text("param", &text).write(&path, &[]).unwrap();
        let got = NpzReader::open(&path).unwrap().text("param");
        if text.chars().count() <= limit {
            prop_assert_eq!(got.unwrap(), text);
        } else {
            prop_assert!(got.is_err());
        }
    });
    NpzWriter::new().text("param", &"x".repeat(limit + 1)).write(&path, &[]).unwrap();
    assert!(NpzReader::open(&path).unwrap().text("param").unwrap_err().to_string().contains("≤ 64"));
}

/// Claims: a bad `param` or `init` is an error at its line; a start of the wrong length
/// makes that claim INVALID and the others still run.
#[test]
fn claim_starts_are_checked_where_they_are_written() {
    let dir = Dir::new();
    let claim = |scenario: &str| {
        format!(
            "id = \"c\"\nsource = \"s\"\nstatement = \"t\"\n[scenario]\nseeds = 1\n{scenario}\n[runs.r]\nalgorithm = \"gd\"\n\
             stepsize = 0.05\nmax_iters = 10\n[check]\nholds = \"r.loss >= 0\"\n"
        )
    };
    for (scenario, needle) in [
        ("param = \"uvw\"", "unknown parametrisation"),
        ("param = \"md\"\ninit = { u0 = \"alpha\", v0 = \"alpha\" }", "starts from b0"),
        ("init = { b0 = \"alpha\" }", "b0 is mirror descent's start"),
        ("init = { u0 = \"alpha\" }", "init needs u0 and v0"),
        ("init = { u0 = \"X\", v0 = \"alpha\" }", "a start is a vector or a number"),
        ("init = { u0 = \"r.beta\", v0 = \"alpha\" }", "unknown name"),
        ("init = { u0 = \"alpha\", v0 = \"alpha\", w0 = \"1\" }", "unknown field"),
    ] {
        let path = dir.path("c.toml");
        std::fs::write(&path, claim(scenario)).unwrap();
        let e = dlncheck::claims::load(&path).unwrap_err();
        assert!(e.to_string().contains(needle), "{scenario}: {e}");
        assert!(e.line >= 5, "{scenario}: placed at {}:{}", e.line, e.col);
    }
    let path = dir.path("c.toml");
    std::fs::write(&path, claim("init = { u0 = \"alpha[support]\", v0 = \"alpha\" }")).unwrap();
    let c = dlncheck::claims::load(&path).unwrap();
    let report = dlncheck::claims::run_claim(&c, true);
    assert_eq!(report.verdict, dlncheck::claims::Verdict::Invalid, "{:?}", report.error);
    assert!(report.error.unwrap_or_default().contains("entries"));
}

#[test]
fn a_start_too_large_for_f64_is_refused_before_training() {
    let d = 4;
    let model = Model {
        param: Param::U2v2,
        init: Init::Weights { u0: DVector::from_element(d, 1e151), v0: DVector::zeros(d) },
    };
    assert!(model.check(d).unwrap_err().contains("1e150"));
    let md = Model {
        param: Param::Md,
        init: Init::Mirror { alpha: DVector::from_element(d, 1e-300), b0: DVector::from_element(d, 1e300) },
    };
    assert!(md.check(d).is_err());
}

/// `diagnose` refuses what it cannot read, naming the cause (exit 2), and answers a run
/// that agrees with the hypothesis `none`.
#[test]
fn diagnose_refuses_bad_input_and_names_none_for_an_agreeing_run() {
    let dir = Dir::new();
    let pf = problem_file(&dir);
    let p = problem(30, 0);
    let a = DVector::from_element(30, 0.1);
    let (beta, grads) = uv_loop(&p, 0.2, a.map(|t| t * std::f64::consts::SQRT_2), DVector::zeros(30));
    let write = |name: &str, with_beta: bool| {
        let path = dir.path(name);
        let g = DMatrix::from_fn(grads.len(), 30, |k, j| grads[k][j]);
        let mut w = NpzWriter::new();
        w.vector("alpha", &a).matrix("grads", &g).vector("stepsizes", &DVector::from_element(grads.len(), 0.2));
        if with_beta {
            w.vector("beta", &beta);
        }
        w.write(&path, &[]).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (good, no_beta) = (write("good.npz", true), write("no_beta.npz", false));
    let pf = pf.to_str().unwrap();
    let (code, out, err) = dlncheck(&["--json", "diagnose", "--problem", pf, "--trajectory", &good]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"hypothesis\":\"none\""), "{out}");
    let (code, _, err) = dlncheck(&["diagnose", "--problem", pf, "--trajectory", &no_beta]);
    assert!(code == 2 && err.contains("beta"), "{err}");
    let (code, _, err) = dlncheck(&["diagnose", "--problem", pf, "--trajectory", &good, "--param", "vu"]);
    assert!(code == 2 && err.contains("unknown parametrisation"), "{err}");
    let other = dir.path("other.npz");
    problem(40, 0).save(&other, &[]).unwrap();
    let (code, _, err) = dlncheck(&["diagnose", "--problem", other.to_str().unwrap(), "--trajectory", &good]);
    assert!(code == 2 && err.contains("d = 30"), "{err}");
    // No trajectory nor run, or both: usage errors.
    let (code, _, err) = dlncheck(&["diagnose", "--problem", pf]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = dlncheck(&["diagnose", "--problem", pf, "--trajectory", &good, "--run", &good]);
    assert_eq!(code, 2, "{err}");
    // A run of `train`: no steps are stored, so the step hypotheses say they were not tried.
    let run = dir.path("run.npz");
    let (code, _, err) =
        dlncheck(&["train", "--problem", pf, "--alpha", "0.1", "--stepsize", "0.2", "--out", run.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = dlncheck(&["--json", "diagnose", "--problem", pf, "--run", run.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["best"]["hypothesis"], "none", "{out}");
    let tried = json["tried"].as_array().unwrap();
    let untried = tried.iter().filter(|t| t["rel_err"].is_null()).count();
    assert!(untried >= 4 && tried.iter().any(|t| t["hypothesis"] == "start" && t["guess"] == "recovered"), "{out}");
}
