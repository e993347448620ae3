//! The measured threshold brackets the change of behaviour: the run at `lo` converges
//! within the budget, the run at `hi` does not, for GD and SGD.

use dlncheck::model::Model;
use dlncheck::problem::ProblemSpec;
use dlncheck::threshold::{SCAN_RATIO, ThresholdSettings, budget_steps, divergence, stability_bound, threshold};
use dlncheck::train::{Batching, Stepsizes, Stop, TrainConfig, train};
use nalgebra::DVector;

#[test]
fn the_bracket_separates_converging_from_failing_runs() {
    let p = ProblemSpec { seed: 3, ..ProblemSpec::default() }.generate().unwrap();
    let alpha = DVector::from_element(p.d(), 0.1);
    let s = ThresholdSettings::default();
    for batch in [None, Some(1), Some(5)] {
        let t = threshold(&p, &Model::uv(alpha.clone()), batch, 7, &s).unwrap();
        assert!(t.lo < t.hi && t.hi / t.lo - 1.0 <= s.rel_width, "{t:?}");
        let run = |gamma: f64| {
            let batching = batch.map_or(Batching::Full, |m| Batching::Random { m, seed: 7 });
            let mut c = TrainConfig::new(alpha.clone(), Stepsizes::Constant(gamma), batching);
            c.tol = s.tol;
            c.max_iters = (s.time * p.n().div_ceil(batch.unwrap_or(p.n())) as f64 / gamma) as usize;
            train(&p, &c).unwrap().stop
        };
        assert_eq!(run(t.lo), Stop::Converged, "{batch:?}: {t:?}");
        assert_eq!(run(t.hi), t.hi_stop, "{batch:?}: {t:?}");
        assert_ne!(t.hi_stop, Stop::Converged);
        // Well beyond the threshold the iterates blow up.
        assert!(matches!(run(4.0 * t.hi), Stop::Diverged { .. }), "{batch:?}");
    }
}

/// The divergence bracket: its lo runs the whole budget without blowing up, its hi blows
/// up within it; the scan's stepsizes between the two thresholds do not blow up; the
/// window is where runs oscillate (GD on seed 0 of the default problem: 33% of θ).
#[test]
fn the_divergence_bracket_separates_blow_up_from_oscillation() {
    let p = ProblemSpec::default().generate().unwrap();
    let alpha = DVector::from_element(p.d(), 0.1);
    let s = ThresholdSettings::default();
    for batch in [None, Some(1)] {
        let conv = threshold(&p, &Model::uv(alpha.clone()), batch, 0, &s).unwrap();
        let div = divergence(&p, &Model::uv(alpha.clone()), batch, 0, &s, &conv).unwrap();
        let run = |gamma: f64| {
            let batching = batch.map_or(Batching::Full, |m| Batching::Random { m, seed: 0 });
            let mut c = TrainConfig::new(alpha.clone(), Stepsizes::Constant(gamma), batching);
            c.tol = s.tol;
            c.max_iters = budget_steps(&p, batch, gamma, &s) as usize;
            train(&p, &c).unwrap().stop
        };
        assert!(conv.hi <= div.lo && div.hi / div.lo - 1.0 <= s.rel_width, "{batch:?}: {conv:?} {div:?}");
        assert_eq!(run(div.lo), Stop::MaxIters, "{batch:?}");
        assert!(matches!(run(div.hi), Stop::Diverged { .. }), "{batch:?}");
        // Every scanned stepsize below div.lo oscillated through its budget.
        let mut gamma = conv.hi * SCAN_RATIO;
        while gamma < div.lo {
            assert_eq!(run(gamma), Stop::MaxIters, "{batch:?} at {gamma}");
            gamma *= SCAN_RATIO;
        }
    }
}

/// The stability bound against its closed form when b* = 0: the weights' scale is then
/// c = 2α², so GD's bound is n / (α² λ_max(X Xᵀ)) and SGD's 1 / (α² max_i |x_i|²).
#[test]
fn the_stability_bound_matches_its_closed_form_at_zero() {
    let p = ProblemSpec::default().generate().unwrap().with_beta_star(DVector::zeros(30)).unwrap();
    let alpha = 0.3;
    let a = DVector::from_element(p.d(), alpha);
    let gram = &p.x * p.x.transpose();
    let lambda = gram.clone().symmetric_eigenvalues().max();
    let gd = p.n() as f64 / (alpha * alpha * lambda);
    let sgd = 1.0 / (alpha * alpha * gram.diagonal().max());
    let rel = |a: f64, b: f64| (a - b).abs() / b;
    assert!(rel(stability_bound(&p, &Model::uv(a.clone()), None).unwrap(), gd) < 1e-12);
    for m in [1, 5] {
        assert!(rel(stability_bound(&p, &Model::uv(a.clone()), Some(m)).unwrap(), sgd) < 1e-12);
    }
    let no_star = dlncheck::problem::Problem { beta_star: None, ..p };
    assert!(stability_bound(&no_star, &Model::uv(a.clone()), None).unwrap_err().contains("beta_star"));
}

/// A trial whose step makes a factor 1 ∓ γg exactly 0 (rows e₁, e₂, y = 1, batch 1: the
/// first step at γ = 1 has γg = −1) is a run like any other for the search, which asks
/// only whether it converges: the gain, undefined there, is not accumulated. (The search
/// used to stop with the gain's error.)
#[test]
fn a_trial_with_a_factor_exactly_zero_does_not_stop_the_search() {
    let p = dlncheck::problem::Problem {
        x: nalgebra::DMatrix::from_row_slice(2, 3, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
        y: DVector::from_vec(vec![1.0, 1.0]),
        beta_star: None,
        x_test: None,
        y_test: None,
    };
    let model = Model::uv(DVector::from_element(3, 0.1));
    let s = ThresholdSettings::default();
    let t = threshold(&p, &model, Some(1), 0, &s).unwrap();
    assert!(t.lo < 1.0 && t.hi >= 1.0 && t.hi / t.lo - 1.0 <= s.rel_width, "{t:?}");
    // The trial at γ = 1 is the degenerate one: with the gain, the run refuses it.
    let mut c = TrainConfig::with_model(model.clone(), Stepsizes::Constant(1.0), Batching::Random { m: 1, seed: 0 });
    c.max_iters = 10;
    let e = train(&p, &c).unwrap_err().to_string();
    assert!(e.contains("exactly 0"), "{e}");
    divergence(&p, &model, Some(1), 0, &s, &t).unwrap();
}
