//! Pinned measurements (insta snapshots under `snapshots/`): values rounded to digits
//! that are stable across machines. A changed snapshot is reviewed with
//! `cargo insta review`, never accepted blindly.

mod common;

use common::{sig, snapshot_settings};
use dlncheck::problem::ProblemSpec;
use std::fmt::Write;

/// The same seed draws the same problem on every machine (ChaCha8, portable sampling).
#[test]
fn generator_is_portable() {
    let p = ProblemSpec::default().generate().unwrap();
    let mut s = String::new();
    let support: Vec<String> = p
        .beta_star
        .as_ref()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, b)| **b != 0.0)
        .map(|(i, b)| format!("{i}: {}", sig(*b, 12)))
        .collect();
    writeln!(s, "beta_star support: {}", support.join(", ")).unwrap();
    let row: Vec<String> = (0..6).map(|j| sig(p.x[(0, j)], 12)).collect();
    writeln!(s, "X[0, :6] = {}", row.join(" ")).unwrap();
    writeln!(s, "y[:3] = {} {} {}", sig(p.y[0], 12), sig(p.y[1], 12), sig(p.y[2], 12)).unwrap();
    let u = ProblemSpec { mean: 1.0, noise: 0.1, seed: 9, ..ProblemSpec::default() }.generate().unwrap();
    writeln!(
        s,
        "uncentred noisy X[19, 29] = {}, y_test[99] = {}",
        sig(u.x[(19, 29)], 12),
        sig(u.y_test.unwrap()[99], 12)
    )
    .unwrap();
    snapshot_settings().bind(|| insta::assert_snapshot!("generator", s));
}

/// The built-in suite: the gain to six digits; steps to convergence to two, since the
/// step at which the loss crosses 1e-25 moves with the last bits of rounding.
#[test]
fn builtin_suite_measurements() {
    let mut s = String::from("scenario | steps | |Gain|_1 | max Gain | holds\n");
    for scenario in common::suite::builtin() {
        let o = scenario.run().unwrap();
        writeln!(
            s,
            "{} | {} | {} | {} | {}",
            o.name,
            sig(o.iters as f64, 2),
            sig(o.gain_l1, 6),
            sig(o.gain_max, 6),
            o.pass
        )
        .unwrap();
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("builtin_suite", s));
}

/// `compare` on the default problem: the error to b* and the ℓ1 norm of every row, and
/// the gain columns of the runs, to five digits; the LaTeX rendering of the same table.
#[test]
fn compare_default_problem() {
    use dlncheck::compare::{CompareSpec, ProblemSource, RunSpec, compare};
    use dlncheck::report::{Format, TableStyle, render};
    use dlncheck::solve::LpBackend;
    let spec = CompareSpec {
        alpha: 0.1,
        param: dlncheck::model::Param::Uv,
        init: None,
        runs: vec![RunSpec::parse("gd:0.2").unwrap(), RunSpec::parse("sgd:0.05:1").unwrap()],
        seeds: 1,
        max_iters: 1_000_000,
        tol: 1e-25,
        backend: LpBackend::Minilp,
        trajectories: Vec::new(),
        momentum: None,
    };
    let mut c = compare(&ProblemSource::Generated(ProblemSpec::default()), &spec).unwrap();
    let mut s = String::from("method | err | l1 | gain_l1 | gain on/off\n");
    for (label, m) in c.labels.iter().zip(&c.per_seed[0]) {
        // Exact recovery leaves an error at rounding level: pin that it is tiny, not its digits.
        let err = if m.err < 1e-10 { "<1e-10".to_owned() } else { sig(m.err, 5) };
        writeln!(s, "{label} | {err} | {} | {} | {}", sig(m.l1, 5), sig(m.gain_l1, 5), sig(m.gain_ratio, 5)).unwrap();
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("compare_default", s));
    // Distances to the theory (~1e-13) and errors of exact recovery (~1e-15) are rounding
    // noise: pin the format, not those digits.
    for row in &mut c.per_seed[0] {
        for x in [&mut row.dist_theory, &mut row.err, &mut row.test_loss] {
            if *x < 1e-10 {
                *x = 0.0;
            }
        }
    }
    snapshot_settings()
        .bind(|| insta::assert_snapshot!("compare_default_latex", render(&c, Format::Latex, TableStyle::default())));
}
