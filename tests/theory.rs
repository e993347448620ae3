//! The objects of theory/README.md § Objects to § Solving the implicit problem against independent expectations: closed forms, finite
//! differences, the conservation law, a second solver (bisection) and limits.

use dlncheck::bias::Scales;
use dlncheck::bias::{self, EffectiveInit};
use dlncheck::problem::ProblemSpec;
use dlncheck::runfile::RunRecord;
use dlncheck::solve::{NewtonSettings, solve_implicit};
use dlncheck::train::{Batching, Stepsizes, TrainConfig, train};
use dlncheck::trajectory::GainAccumulator;
use nalgebra::{DMatrix, DVector};

fn grid() -> Vec<f64> {
    let mut xs: Vec<f64> = (-400..=400).map(|k| k as f64 * 0.0075).collect(); // [-3, 3]
    xs.extend([1e-300, 1e-12, -1e-8, 0.0624999, 0.0625, 0.0625001, -0.0625, 0.999999, -1.000001, 1e3]);
    xs
}

/// q, q₊, q₋ against their defining logarithms where those are accurate, and
/// q₊ + q₋ = q everywhere.
#[test]
fn q_functions_match_their_definitions() {
    for x in grid() {
        if x.abs() == 1.0 {
            continue;
        }
        let q_def = -((1.0 - x).abs().ln() + (1.0 + x).abs().ln());
        let qp_def = -x - (1.0 - x).abs().ln();
        let qm_def = x - (1.0 + x).abs().ln();
        // The definitions cancel catastrophically for small |x|; compare there with the
        // leading terms of the series instead.
        if x.abs() > 0.05 {
            assert!((bias::q(x) - q_def).abs() <= 1e-13 * q_def.abs().max(1.0), "q({x})");
            assert!((bias::q_plus(x) - qp_def).abs() <= 1e-13 * qp_def.abs().max(1.0), "q+({x})");
            assert!((bias::q_minus(x) - qm_def).abs() <= 1e-13 * qm_def.abs().max(1.0), "q-({x})");
        } else {
            let series = x * x + x.powi(4) / 2.0 + x.powi(6) / 3.0;
            assert!((bias::q(x) - series).abs() <= 1e-15 * series + x.powi(8), "q({x}) series");
            let qp_series = x * x / 2.0 + x.powi(3) / 3.0 + x.powi(4) / 4.0;
            assert!((bias::q_plus(x) - qp_series).abs() <= 1e-15 * qp_series.abs() + x.abs().powi(5), "q+({x})");
        }
        assert!((bias::q_plus(x) + bias::q_minus(x) - bias::q(x)).abs() <= 1e-14 * bias::q(x).abs().max(1e-300));
    }
}

/// Every branch of the increments against a 60-term series summed term by term, on
/// both sides of each switch point.
#[test]
fn increments_match_a_long_series() {
    for x in [0.0624999, 0.0625, 0.0625001, -0.2499, 0.25, 0.2501, -0.3, 0.5] {
        let (dq, dr) = bias::increments(x).unwrap();
        let t: f64 = x * x;
        let q_ref: f64 = (1..=60).map(|k| t.powi(k) / k as f64).sum();
        let r_ref: f64 = -2.0 * (1..=60).map(|k| x.powi(2 * k + 1) / (2 * k + 1) as f64).sum::<f64>();
        assert!((dq - q_ref).abs() <= 4.0 * f64::EPSILON * q_ref, "q({x}): {dq} vs {q_ref}");
        assert!((dr - r_ref).abs() <= 40.0 * f64::EPSILON * r_ref.abs(), "rho({x}): {dr} vs {r_ref}");
    }
}

/// A factor 1 ∓ γg exactly 0 is reported with its step and coordinate.
#[test]
fn degenerate_factor_is_an_error() {
    let mut acc = GainAccumulator::new(3);
    acc.add(&[0.1, 0.2, 0.3]).unwrap();
    let e = acc.add(&[0.1, -1.0, 0.3]).unwrap_err();
    assert_eq!((e.step, e.coord), (1, 1));
}

/// ∇ψ_α = ½ asinh(b/α²) against central finite differences of ψ_α; D_ψ ≥ 0.
#[test]
fn hyperbolic_entropy_gradient_and_bregman() {
    let alpha = DVector::from_vec(vec![0.1, 0.5, 1.0, 2.0]);
    let b = DVector::from_vec(vec![0.3, -1.2, 0.0, 4.0]);
    let grad = bias::hyperbolic_entropy_grad(&alpha, &b);
    for i in 0..4 {
        let h = 1e-5;
        let mut bp = b.clone();
        let mut bm = b.clone();
        bp[i] += h;
        bm[i] -= h;
        let fd = (bias::hyperbolic_entropy(&alpha, &bp) - bias::hyperbolic_entropy(&alpha, &bm)) / (2.0 * h);
        assert!((fd - grad[i]).abs() < 1e-8, "coordinate {i}: {fd} vs {}", grad[i]);
    }
    let b2 = DVector::from_vec(vec![-0.3, 0.2, 1.0, 3.0]);
    assert!(bias::bregman_divergence(&alpha, &b2, &b) > 0.0);
    assert!(bias::bregman_divergence(&alpha, &b, &b).abs() < 1e-15);
}

/// asinh(b̃₀ / α_∞²) = ρ (theory/README.md § Objects), including where α_∞² underflows.
#[test]
fn beta_tilde0_identity() {
    let eff = EffectiveInit::from_alpha(
        DVector::from_vec(vec![-2.3, -2.3, 0.0, -1.0]),
        DVector::from_vec(vec![0.5, 80.0, 3.0, 1e-9]),
        DVector::from_vec(vec![0.3, -4.0, 1e-6, 25.0]),
    );
    let bt = eff.beta_tilde0();
    let ell = eff.ln_alpha_inf2();
    for i in 0..4 {
        let back = bias::asinh_scaled(bt[i], ell[i]);
        assert!((back - eff.rho[i]).abs() <= 1e-13 * eff.rho[i].abs().max(1.0), "{i}: {back} vs {}", eff.rho[i]);
    }
    // And ½(α₊² - α₋²) directly, where nothing underflows.
    let (ap, am) = (eff.alpha_plus(), eff.alpha_minus());
    let direct = 0.5 * (ap[0] * ap[0] - am[0] * am[0]);
    assert!((direct - bt[0]).abs() <= 1e-14 * direct.abs());
}

fn small_run(gamma: f64, batch: Option<usize>, iters: usize) -> (dlncheck::train::Run, dlncheck::problem::Problem) {
    let p = ProblemSpec::default().generate().unwrap();
    let batching = batch.map_or(Batching::Full, |m| Batching::Random { m, seed: 3 });
    let mut c = TrainConfig::new(DVector::from_element(p.d(), 0.1), Stepsizes::Constant(gamma), batching);
    c.max_iters = iters;
    (train(&p, &c).unwrap(), p)
}

/// |u² - v²| = 2α² exp(-Gain) at the end of a run, to 1e-12 (relative to u² + v²).
#[test]
fn conservation_law() {
    for (gamma, batch) in [(0.3, None), (0.05, Some(1)), (0.1, Some(5))] {
        let (run, _) = small_run(gamma, batch, 2000);
        let r = RunRecord::from_run(&run).conservation_residual();
        assert!(r <= 1e-12, "γ={gamma} batch={batch:?}: {r:e}");
    }
}

/// Gain ≈ Σ_k γ² g_k² for small stepsizes: the relative gap shrinks like γ² (the next
/// term of q is x⁴/2).
#[test]
fn small_stepsize_gain_is_sum_of_squares() {
    let p = ProblemSpec::default().generate().unwrap();
    let mut gaps = Vec::new();
    for gamma in [0.1, 0.01, 0.001] {
        // Accumulate Σ x² alongside the run, with the same steps: replay x from a GD loop.
        let mut acc = GainAccumulator::new(p.d());
        let mut sum_sq = DVector::zeros(p.d());
        let (mut u, mut v) = (DVector::from_element(p.d(), 0.1 * 2f64.sqrt()), DVector::zeros(p.d()));
        for _ in 0..(20.0 / gamma) as usize {
            let b = u.component_mul(&v);
            let g = p.x.tr_mul(&(&p.x * &b - &p.y)) / p.n() as f64;
            let x = gamma * &g;
            acc.add(x.as_slice()).unwrap();
            sum_sq += x.component_mul(&x);
            let (u1, v1) = (&u - x.component_mul(&v), &v - x.component_mul(&u));
            (u, v) = (u1, v1);
        }
        let gap = (&acc.gain - &sum_sq).amax() / acc.gain.amax();
        gaps.push(gap);
    }
    assert!(gaps[0] < 0.05, "{gaps:?}");
    assert!(gaps[1] < gaps[0] / 50.0 && gaps[2] < gaps[1] / 50.0, "gap must fall like γ²: {gaps:?}");
}

/// n = 1: the dual is one-dimensional, so bisection on μ is a second, independent
/// solver. Checked at ordinary and extreme scales (ln α_∞² down to -1000).
#[test]
fn newton_matches_bisection_for_one_constraint() {
    let x = DMatrix::from_row_slice(1, 5, &[1.0, -0.5, 2.0, 0.3, -1.5]);
    let y = DVector::from_vec(vec![2.0]);
    let rho = DVector::from_vec(vec![0.1, -0.2, 0.0, 0.5, 0.05]);
    for level in [0.0, -5.0, -50.0, -1000.0] {
        let ell = DVector::from_vec(vec![level, level - 1.0, level + 0.5, level, level - 3.0]);
        let sol =
            solve_implicit(&x, &y, &Scales::two_sided(ell.clone(), rho.clone()), &NewtonSettings::default()).unwrap();
        let mu = bisect(|mu| constraint(&x, &ell, &rho, mu) - y[0]);
        let beta_ref = beta_at(&x, &ell, &rho, mu);
        let err = (&sol.beta - &beta_ref).norm() / beta_ref.norm();
        assert!(err < 1e-10, "level {level}: {err:e}, newton {} stages {}", sol.newton_iters, sol.stages);
        assert!(sol.residual < 1e-12);
    }
}

fn beta_at(x: &DMatrix<f64>, ell: &DVector<f64>, rho: &DVector<f64>, mu: f64) -> DVector<f64> {
    DVector::from_fn(ell.len(), |i, _| {
        let z = rho[i] + x[(0, i)] * mu;
        0.5 * ((ell[i] + z).exp() - (ell[i] - z).exp())
    })
}

fn constraint(x: &DMatrix<f64>, ell: &DVector<f64>, rho: &DVector<f64>, mu: f64) -> f64 {
    (x * beta_at(x, ell, rho, mu))[0]
}

/// Bisection for an increasing function over [-1e4, 1e4] (overflow counts as +∞ or -∞).
fn bisect(f: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (-1e4, 1e4);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        let v = f(mid);
        if v > 0.0 || v.is_nan() && mid > 0.0 { hi = mid } else { lo = mid }
    }
    0.5 * (lo + hi)
}

/// At tiny effective scales (ln α_∞² down to -1500 on a 20 × 30 problem): the answer is
/// feasible, b = α_∞² sinh(ρ + Xᵀμ) recomputed here from μ reproduces it, a different
/// path (from ln α_∞² = -5 instead of -30, every stage solved to 1e-10) reaches the same
/// point, and where nothing underflows the KKT check passes.
#[test]
fn implicit_solution_at_tiny_scale() {
    let p = ProblemSpec::default().generate().unwrap();
    let rho = DVector::from_fn(p.d(), |i, _| 0.01 * (i as f64).sin());
    let other_path =
        NewtonSettings { start_level: -5.0, stage_tol: 1e-10, max_iters: 5000, ..NewtonSettings::default() };
    for level in [-10.0, -200.0, -1000.0] {
        let ell = DVector::from_fn(p.d(), |i, _| level * (1.0 + 0.5 * (i as f64 / 30.0)));
        let sol = solve_implicit(&p.x, &p.y, &Scales::two_sided(ell.clone(), rho.clone()), &NewtonSettings::default())
            .unwrap();
        assert!(sol.residual <= 1e-12, "level {level}: residual {:e}", sol.residual);
        let z = &rho + p.x.tr_mul(&sol.mu);
        let b_from_mu = DVector::from_fn(p.d(), |i, _| 0.5 * ((ell[i] + z[i]).exp() - (ell[i] - z[i]).exp()));
        // exp amplifies the rounding of z by |z| (up to ~1500 here).
        let tol = 16.0 * f64::EPSILON * z.amax();
        assert!((&b_from_mu - &sol.beta).amax() <= tol * sol.beta.amax(), "level {level}");
        assert!((&p.x * &b_from_mu - &p.y).norm() <= tol * p.y.norm(), "level {level}");
        let reference = solve_implicit(&p.x, &p.y, &Scales::two_sided(ell.clone(), rho.clone()), &other_path).unwrap();
        let err = (&sol.beta - &reference.beta).norm() / reference.beta.norm();
        assert!(err <= 1e-10, "level {level}: {err:e} ({} vs {} iterations)", sol.newton_iters, reference.newton_iters);
        match dlncheck::predict::kkt_residual(&p.x, &Scales::two_sided(ell.clone(), rho.clone()), &sol.beta).unwrap() {
            Some(kkt) => assert!(kkt <= 1e-10, "level {level}: KKT {kkt:e}"),
            None => assert_eq!(level, -1000.0, "only the extreme scale underflows"),
        }
    }
}

/// The series length chosen for a bound makes the first omitted term negligible:
/// (x²)^K ≤ 2⁻⁵⁶, and no shorter accepted length would do.
#[test]
fn series_terms_suffice() {
    for &m in &[0.0, 1e-12, 1e-9, 3e-5, 6e-5, 1e-3, 1.5e-3, 7e-3, 0.01, 0.039, 0.04, 0.0624] {
        let k = bias::series_terms(m);
        let t: f64 = m * m;
        assert!(t.powi(k as i32) <= 2f64.powi(-56) * (1.0 + 1e-12), "|x| = {m}: K = {k}");
        let shorter = [1, 2, 3, 4, 6, 8].iter().rev().find(|&&j| j < k).copied();
        if let Some(j) = shorter {
            assert!(t.powi(j as i32) > 2f64.powi(-56), "|x| = {m}: K = {j} would do");
        }
    }
}

/// The signs behind alpha-inf-below-alpha and beta-tilde0-small: q ≥ 0 iff |x| ≤ √2;
/// q₊, q₋ ≥ 0 on (−1, 1); and q₊ < 0 somewhere beyond 1.
#[test]
fn signs_of_q_and_its_parts() {
    for x in grid() {
        if x.abs() == 1.0 {
            continue;
        }
        let (q, qp, qm) = (bias::q(x), bias::q_plus(x), bias::q_minus(x));
        assert_eq!(q >= 0.0, x.abs() <= 2f64.sqrt(), "q({x}) = {q}");
        if x.abs() < 1.0 {
            assert!(qp >= 0.0 && qm >= 0.0, "x = {x}: q₊ {qp}, q₋ {qm}");
        }
    }
    assert!(bias::q_plus(5.0) < 0.0 && bias::q(5.0) < 0.0);
}

/// The accumulator's max |γg| is the exact maximum over steps and coordinates, on every
/// path: GD (add), batch-1 SGD fused and unfused (first-order gain on), and batch 3.
#[test]
fn max_gamma_g_is_the_exact_maximum() {
    let mut acc = GainAccumulator::new(3);
    acc.add(&[0.01, -0.02, 0.0]).unwrap();
    acc.add(&[0.5, -1.5, 0.2]).unwrap();
    acc.add(&[0.01, 0.03, -0.04]).unwrap();
    assert_eq!(acc.max_abs_x(), 1.5);
    let p = ProblemSpec::default().generate().unwrap();
    for (batch, first_order) in [(None, false), (Some(1), false), (Some(1), true), (Some(3), false)] {
        let batching = batch.map_or(Batching::Full, |m| Batching::Random { m, seed: 4 });
        let mut c = TrainConfig::new(DVector::from_element(30, 0.1), Stepsizes::Constant(0.05), batching);
        (c.max_iters, c.record_batches, c.first_order_gain) = (500, true, first_order);
        let run = train(&p, &c).unwrap();
        // Replay the recorded rows through the plain accumulator.
        let replay = Batching::Replay { m: batch.unwrap_or(0), rows: run.batches.clone().map_or(Vec::new(), |b| b.1) };
        let batching = if batch.is_some() { replay } else { Batching::Full };
        let mut c2 =
            TrainConfig::new(DVector::from_element(30, 0.1), Stepsizes::PerStep(run.stepsizes.expand()), batching);
        (c2.max_iters, c2.first_order_gain) = (500, true);
        let again = train(&p, &c2).unwrap();
        assert_eq!(run.accumulator.max_abs_x(), again.accumulator.max_abs_x(), "{batch:?}");
        assert!(run.accumulator.max_abs_x() > 0.0);
    }
}
