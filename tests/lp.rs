//! Basis pursuit and its relatives (theory/README.md § Theorem 1): exact recovery, certificates, a second
//! method (the t → ∞ limit of the implicit solver), and the answers to bad problems.

use dlncheck::problem::ProblemSpec;
use dlncheck::solve::{
    LpBackend, SolveError, basis_pursuit, certify_exactly, dual_basis_pursuit, l1_homotopy, min_norm,
    weighted_basis_pursuit, weighted_bp_limit_curve,
};
use nalgebra::{DMatrix, DVector};

#[test]
fn basis_pursuit_recovers_a_sparse_vector_and_is_certified() {
    let p =
        ProblemSpec { n: 40, d: 100, sparsity: 4, n_test: 0, seed: 2, ..ProblemSpec::default() }.generate().unwrap();
    let mut bp = basis_pursuit(&p.x, &p.y, LpBackend::Minilp).unwrap();
    certify_exactly(&p.x, &p.y, &DVector::from_element(p.d(), 1.0), &mut bp).unwrap();
    let b_star = p.beta_star.unwrap();
    let err = (&bp.beta - &b_star).norm() / b_star.norm();
    assert!(err < 1e-12, "recovery error {err:e}");
    assert!(bp.feasibility < 1e-12 * p.y.amax(), "{:e}", bp.feasibility);
    assert!(bp.rel_gap.abs() < 1e-12, "gap {:e}", bp.rel_gap);
    assert!((bp.objective - b_star.lp_norm(1)).abs() < 1e-12 * bp.objective);
}

#[test]
fn basis_pursuit_fails_to_recover_when_n_is_too_small_but_stays_optimal() {
    let p = ProblemSpec { n: 8, d: 100, sparsity: 6, n_test: 0, seed: 5, ..ProblemSpec::default() }.generate().unwrap();
    let bp = basis_pursuit(&p.x, &p.y, LpBackend::Minilp).unwrap();
    let b_star = p.beta_star.unwrap();
    assert!((&bp.beta - &b_star).norm() / b_star.norm() > 0.1, "8 samples cannot pin down 6 of 100");
    assert!(bp.objective < b_star.lp_norm(1), "BP finds a smaller ℓ1 interpolator than b*");
    assert!(bp.rel_gap.abs() < 1e-10, "still certified optimal: gap {:e}", bp.rel_gap);
}

/// A second method: the implicit solution with ln(1/α_∞) = t·w at t = 80 is weighted BP
/// to ~1e-13 (theory/README.md § Theorem 1), computed by a different algorithm (dual Newton).
#[test]
fn weighted_bp_matches_the_implicit_limit() {
    let p = ProblemSpec { n: 15, d: 40, sparsity: 3, n_test: 0, seed: 1, ..ProblemSpec::default() }.generate().unwrap();
    let w = DVector::from_fn(p.d(), |i, _| 1.0 + 2.0 * ((i * 29 % 40) as f64 / 39.0));
    let curve = weighted_bp_limit_curve(
        &p.x,
        &p.y,
        &w,
        &DVector::zeros(p.d()),
        &[2.0, 10.0, 20.0, 40.0, 80.0],
        LpBackend::Minilp,
    )
    .unwrap();
    let d: Vec<f64> = curve.iter().map(|c| c.rel_dist).collect();
    // It falls with t until it reaches rounding (~1e-13), where it may wobble.
    assert!(d.windows(2).all(|w| w[1] < w[0] || w[1] < 1e-12), "the distance falls with t: {d:?}");
    assert!(d[0] > 0.01, "at t = 2 the implicit solution is not yet sparse: {d:?}");
    assert!(d[4] <= 1e-8, "at t = 80 it is weighted BP: {d:?}");
    let mut wbp = weighted_basis_pursuit(&p.x, &p.y, &w, LpBackend::Minilp).unwrap();
    certify_exactly(&p.x, &p.y, &w, &mut wbp).unwrap();
    assert!(
        wbp.rel_gap.abs() < 1e-10,
        "gap {:e}, support {}, curve {d:?}",
        wbp.rel_gap,
        wbp.beta.iter().filter(|b| b.abs() > 1e-9).count()
    );
}

#[test]
fn min_norm_interpolates_within_the_row_space() {
    let p = ProblemSpec { n: 10, d: 25, n_test: 0, ..ProblemSpec::default() }.generate().unwrap();
    let b = min_norm(&p.x, &p.y).unwrap();
    assert!((&p.x * &b - &p.y).amax() < 1e-12 * p.y.amax());
    // b = Xᵀc for some c: the least-squares residual of that system vanishes.
    let c = p.x.transpose().svd(true, true).solve(&b, 1e-12).unwrap();
    assert!((p.x.transpose() * c - &b).amax() < 1e-12 * b.amax());
    // Any other interpolator is longer: b + (null-space direction).
    let bp = basis_pursuit(&p.x, &p.y, LpBackend::Minilp).unwrap();
    assert!(b.norm() <= bp.beta.norm());
}

#[test]
fn bad_problems_are_answers_not_crashes() {
    let x = DMatrix::from_row_slice(3, 4, &[1.0, 2.0, 0.0, 1.0, 1.0, 2.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
    let y = DVector::from_vec(vec![1.0, 2.0, 0.5]); // rows 0 and 1 equal, labels differ
    for backend in [LpBackend::Minilp, LpBackend::Homotopy] {
        // The homotopy ends off the span of X and hands over to microlp, which says why.
        match basis_pursuit(&x, &y, backend) {
            Err(SolveError::Lp { backend: "minilp", status }) => assert!(status.contains("infeasible"), "{status}"),
            other => panic!("expected an infeasible LP, got {other:?}"),
        }
    }
    let w = DVector::from_vec(vec![1.0, 0.0, 1.0, 1.0]);
    assert!(matches!(weighted_basis_pursuit(&x, &y, &w, LpBackend::Minilp), Err(SolveError::BadWeights(_))));
    let w = DVector::from_vec(vec![1.0, -2.0, 1.0, f64::NAN]);
    assert!(matches!(weighted_basis_pursuit(&x, &y, &w, LpBackend::Minilp), Err(SolveError::BadWeights(_))));
    assert!(min_norm(&x, &y).is_err(), "X Xᵀ is singular");
}

#[cfg(not(feature = "highs"))]
#[test]
fn a_backend_not_compiled_in_says_so() {
    let x = DMatrix::from_row_slice(1, 2, &[1.0, 1.0]);
    match basis_pursuit(&x, &DVector::from_vec(vec![1.0]), LpBackend::Highs) {
        Err(SolveError::Lp { backend: "highs", status }) => assert!(status.contains("--features highs")),
        other => panic!("{other:?}"),
    }
}

/// With `--features clarabel`: an interior-point method agrees with microlp's simplex.
#[cfg(feature = "clarabel")]
#[test]
fn clarabel_agrees_with_minilp() {
    let p = ProblemSpec { n: 30, d: 80, sparsity: 4, n_test: 0, seed: 3, ..ProblemSpec::default() }.generate().unwrap();
    let a = basis_pursuit(&p.x, &p.y, LpBackend::Minilp).unwrap();
    let b = basis_pursuit(&p.x, &p.y, LpBackend::Clarabel).unwrap();
    assert!((&a.beta - &b.beta).norm() / a.beta.norm() < 1e-8);
    assert!(b.rel_gap.abs() < 1e-8, "{:e}", b.rel_gap);
}

/// yᵀν after scaling ν into {|X_iᵀν| ≤ w_i}: a lower bound on the optimum.
fn dual_value(x: &DMatrix<f64>, y: &DVector<f64>, w: &DVector<f64>, nu: &DVector<f64>) -> f64 {
    y.dot(nu) / x.tr_mul(nu).component_div(w).amax().max(1.0)
}

/// Sparse recovery puts the optimum at a degenerate vertex (|support| < n), where the
/// support does not fix ν. The homotopy's certificate must equal the dual LP's optimum
/// (solved by microlp's simplex) and the primal LP's, for plain and weighted BP.
#[test]
fn homotopy_certificate_equals_the_dual_lp_on_degenerate_vertices() {
    for (seed, weighted) in [(0, false), (1, false), (2, true), (3, true)] {
        let p =
            ProblemSpec { n: 30, d: 90, sparsity: 4, n_test: 0, seed, ..ProblemSpec::default() }.generate().unwrap();
        let w = DVector::from_fn(p.d(), |i, _| if weighted { 0.5 + ((i * 37 % 90) as f64) / 60.0 } else { 1.0 });
        let h = l1_homotopy(&p.x, &p.y, &w).unwrap();
        let support = h.beta.iter().filter(|b| b.abs() > 1e-9 * h.beta.amax()).count();
        assert!(support < p.n(), "seed {seed}: a degenerate vertex ({support} nonzeros, n = {})", p.n());
        let objective = w.component_mul(&h.beta.abs()).sum();
        let certificate = dual_value(&p.x, &p.y, &w, &h.nu);
        let dual_lp = dual_value(&p.x, &p.y, &w, &dual_basis_pursuit(&p.x, &p.y, &w, LpBackend::Minilp).unwrap());
        let lp = weighted_basis_pursuit(&p.x, &p.y, &w, LpBackend::Minilp).unwrap();
        assert!((certificate - dual_lp).abs() <= 1e-10 * dual_lp, "seed {seed}: {certificate} vs dual LP {dual_lp}");
        assert!((objective - certificate).abs() <= 1e-12 * objective, "seed {seed}: gap {objective} − {certificate}");
        assert!(
            (lp.objective - objective).abs() <= 1e-10 * objective,
            "seed {seed}: LP {} vs {objective}",
            lp.objective
        );
        assert!((&lp.beta - &h.beta).amax() <= 1e-9 * h.beta.amax(), "seed {seed}: the same minimiser");
    }
}

/// At a non-degenerate vertex (|S| = n) ν is unique: X_Sᵀν = w_S ⊙ sign(b_S), i.e.
/// B⁻ᵀc_B of the optimal basis; the homotopy's ν must be that one.
#[test]
fn homotopy_dual_is_the_basis_dual_at_a_nondegenerate_vertex() {
    let p =
        ProblemSpec { n: 25, d: 60, sparsity: 20, n_test: 0, seed: 4, ..ProblemSpec::default() }.generate().unwrap();
    let w = DVector::from_element(p.d(), 1.0);
    let h = l1_homotopy(&p.x, &p.y, &w).unwrap();
    let s: Vec<usize> = (0..p.d()).filter(|&i| h.beta[i].abs() > 1e-9 * h.beta.amax()).collect();
    assert_eq!(s.len(), p.n(), "20 of 60 with 25 samples: BP fails to recover and uses n coordinates");
    let c = DVector::from_fn(s.len(), |k, _| h.beta[s[k]].signum());
    let basis_dual = p.x.select_columns(&s).transpose().lu().solve(&c).unwrap();
    assert!((&h.nu - &basis_dual).amax() <= 1e-11 * basis_dual.amax(), "ν = B⁻ᵀc_B");
    let sol = basis_pursuit(&p.x, &p.y, LpBackend::Homotopy).unwrap();
    assert_eq!((sol.backend, sol.dual_from, sol.fallback.as_deref()), (LpBackend::Homotopy, "homotopy", None));
    assert!(sol.rel_gap.abs() <= 1e-12 && sol.feasibility <= 1e-12 * p.y.amax(), "{sol:?}");
}

/// Two equal columns tie on the whole path: the second never joins (its correlation
/// moves exactly with the first's), so the answer uses one of them and stays exact.
#[test]
fn homotopy_handles_tied_columns() {
    let mut p =
        ProblemSpec { n: 12, d: 30, sparsity: 2, n_test: 0, seed: 6, ..ProblemSpec::default() }.generate().unwrap();
    let j =
        (0..p.d()).max_by(|&a, &b| p.x.column(a).dot(&p.y).abs().total_cmp(&p.x.column(b).dot(&p.y).abs())).unwrap();
    let twin = (j + 1) % p.d();
    let col = p.x.column(j).clone_owned();
    p.x.set_column(twin, &col);
    let sol = basis_pursuit(&p.x, &p.y, LpBackend::Homotopy).unwrap();
    assert_eq!((sol.backend, sol.fallback.as_deref()), (LpBackend::Homotopy, None));
    assert!(sol.rel_gap.abs() <= 1e-12 && sol.feasibility <= 1e-12 * p.y.amax(), "{sol:?}");
    assert!(sol.beta[j] == 0.0 || sol.beta[twin] == 0.0, "one of the twins");
    let lp = basis_pursuit(&p.x, &p.y, LpBackend::Minilp).unwrap();
    assert!((lp.objective - sol.objective).abs() <= 1e-12 * sol.objective);
}

/// Issue 20: nearly parallel columns (pairs differing by 1e-11 … 1e-7). The homotopy
/// meets a singular pivot and microlp's answer is not certifiable; the primal recovered
/// from the dual LP's tight constraints is, and it is HiGHS's optimum (stored with the
/// fixture, made by tests/fixtures/make_fixtures.py).
#[test]
fn nearly_parallel_columns_are_answered_by_the_primal_from_the_dual() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parallel_columns.npz");
    let mut f = dlncheck::npz::NpzReader::open(&path).unwrap();
    let (x, y) = (f.matrix("X", None).unwrap(), f.vector("y", None).unwrap());
    let highs = f.scalar("bp_objective_highs").unwrap();
    let w = DVector::from_element(x.ncols(), 1.0);
    assert!(l1_homotopy(&x, &y, &w).is_err(), "the case this test is for: the homotopy cannot finish");
    for backend in [LpBackend::Homotopy, LpBackend::Minilp] {
        let mut sol = weighted_basis_pursuit(&x, &y, &w, backend).unwrap();
        certify_exactly(&x, &y, &w, &mut sol).unwrap();
        assert!(sol.fallback.as_deref().is_some_and(|f| f.contains("primal recovered from the dual LP")), "{sol:?}");
        assert!(sol.rel_gap <= 1e-12 && sol.feasibility <= 1e-12 * y.amax(), "{sol:?}");
        assert!((sol.objective / highs - 1.0).abs() < 1e-12, "{} vs HiGHS {highs}", sol.objective);
    }
}
