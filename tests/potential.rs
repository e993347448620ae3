//! The generic separable-potential solver against the built-in ones: ψ_α's formula gives
//! gradient flow's limit (dual Newton on the hyperbolic entropy), b²/2 gives min-ℓ2;
//! non-convex potentials are refused.

use dlncheck::bias::Scales;
use dlncheck::predict::rel_dist;
use dlncheck::problem::ProblemSpec;
use dlncheck::solve::{NewtonSettings, Potential, SolveError, min_norm, solve_implicit, solve_potential};
use nalgebra::DVector;

const PSI: &str = "(b * asinh(b / a^2) - sqrt(b^2 + a^4) + a^2) / 2";

#[test]
fn psi_formula_matches_the_hyperbolic_entropy_solver() {
    let s = NewtonSettings::default();
    for (n, d, alpha) in [(20, 30, 0.1), (20, 30, 1.0), (100, 1000, 0.3)] {
        let p = ProblemSpec { n, d, sparsity: n / 5, seed: 2, ..ProblemSpec::default() }.generate().unwrap();
        let a = DVector::from_fn(d, |i, _| alpha * (1.0 + 0.5 * (i % 3) as f64));
        let generic = solve_potential(&p.x, &p.y, &Potential::parse(PSI).unwrap(), &a, &s).unwrap();
        let ell = a.map(|v| 2.0 * v.ln());
        let builtin = solve_implicit(&p.x, &p.y, &Scales::two_sided(ell.clone(), DVector::zeros(d)), &s).unwrap();
        let gap = rel_dist(&generic.beta, &builtin.beta);
        assert!(gap <= 1e-9, "{n}×{d}, α = {alpha}: {gap:e}");
    }
}

#[test]
fn half_squared_norm_gives_min_l2() {
    let p = ProblemSpec { n: 15, d: 40, seed: 5, ..ProblemSpec::default() }.generate().unwrap();
    let a = DVector::from_element(40, 1.0);
    let sol =
        solve_potential(&p.x, &p.y, &Potential::parse("b^2 / 2").unwrap(), &a, &NewtonSettings::default()).unwrap();
    let gap = rel_dist(&sol.beta, &min_norm(&p.x, &p.y).unwrap());
    assert!(gap <= 1e-9, "{gap:e}");
    // A quadratic needs one Newton step.
    assert!(sol.newton_iters <= 2, "{}", sol.newton_iters);
}

#[test]
fn derived_derivatives_are_the_known_ones() {
    let pot = Potential::parse(PSI).unwrap();
    for (b, a) in [(0.3, 0.1), (-2.0, 1.5), (1e-6, 0.01)] {
        let names = ["b", "a"];
        let d1 = pot.dphi.eval(&names, &[b, a]);
        let d2 = pot.d2phi.eval(&names, &[b, a]);
        assert!((d1 - 0.5 * (b / (a * a)).asinh()).abs() <= 1e-12 * (1.0 + d1.abs()));
        assert!((d2 - 0.5 / (b * b + a.powi(4)).sqrt()).abs() <= 1e-12 * d2.abs());
    }
}

#[test]
fn non_convex_potentials_are_refused() {
    let p = ProblemSpec::default().generate().unwrap();
    let a = DVector::from_element(30, 0.1);
    for (formula, at) in [("-b^2", "b = 0"), ("b^4", "b = 0"), ("b^3 + b^2", "b = -"), ("cosh(b) - 2 * b^2", "b = 0")] {
        let pot = Potential::parse(formula).unwrap();
        match solve_potential(&p.x, &p.y, &pot, &a, &NewtonSettings::default()) {
            Err(SolveError::Potential(m)) => {
                assert!(m.contains("not strictly convex") && m.contains(at), "{formula}: {m}")
            }
            other => panic!("{formula}: {other:?}"),
        }
    }
    assert!(Potential::parse("a^2").unwrap_err().message.contains("depend on b"));
    assert_eq!(Potential::parse("b^2 + * 2").unwrap_err().span.0, 6);
    assert!(Potential::parse("b^2 + q").unwrap_err().message.contains("unknown variable `q`"));
}
