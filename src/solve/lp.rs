//! Weighted basis pursuit `argmin_{Xb=y} Σ_i w_i |b_i|`: by the ℓ1 homotopy (the default,
//! [`super::homotopy`]) or as an LP through good_lp, behind a small adapter: no good_lp
//! type leaves this file.
//!
//! LP: b = p − m, p, m ≥ 0, minimise Σ w_i (p_i + m_i) subject to X(p − m) = y. Every
//! answer is certified here, whatever the method: primal feasibility ‖Xb − y‖_∞, and a
//! duality gap from a dual point ν, scaled into the dual feasible set {|X_iᵀν| ≤ w_i} so
//! that yᵀν is a rigorous lower bound. The homotopy returns its ν (exact also at a
//! degenerate vertex). For an LP answer ν comes from the support S of b: optimality says
//! X_Sᵀν = w_S ⊙ sign(b_S), which fixes ν when |S| = n (ν = B⁻ᵀc_B of the optimal basis).
//! When |S| < n (a degenerate vertex: exact sparse recovery) that leaves freedom, and we
//! take the ν that also minimises Σ_{i∉S} (X_iᵀν / w_i)², the least-squares dual
//! certificate of compressed sensing; its gap can be loose. [`certify_exactly`] then takes
//! the homotopy's ν, and the dual LP over all d coordinates is the last resort.
//! Before that an LP answer is polished: X_S b_S = y re-solved by least squares on the
//! support (kept only if it lowers the residual without changing a sign).

use std::time::Instant;

use good_lp::{Expression, ResolutionError, Solution, SolverModel, Variable, constraint, variable, variables};
use nalgebra::{DMatrix, DVector};

use super::SolveError;
use super::homotopy::{check_weighted_bp, l1_homotopy};
use super::unit_scales::UnitScales;

/// Basis pursuit methods: `homotopy` (the ℓ1 homotopy, exact, the default), and the LP
/// backends `minilp` (microlp, embedded), `clarabel` and `highs` (cargo features of the
/// same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LpBackend {
    Homotopy,
    Minilp,
    Clarabel,
    Highs,
}

impl LpBackend {
    /// The backend of that name, if this build has it (a usage error otherwise).
    pub fn parse(s: &str) -> Result<Self, String> {
        let backend = match s {
            "homotopy" => Self::Homotopy,
            "minilp" | "microlp" => Self::Minilp,
            "clarabel" => Self::Clarabel,
            "highs" => Self::Highs,
            _ => return Err(format!("unknown basis pursuit backend `{s}` (homotopy, minilp, clarabel, highs)")),
        };
        if !backend.built() {
            return Err(format!("LP backend {s} is not compiled in: rebuild with `--features {s}` (see the README)"));
        }
        Ok(backend)
    }

    /// Whether this build includes the backend (cargo features).
    pub fn built(self) -> bool {
        match self {
            Self::Homotopy | Self::Minilp => true,
            Self::Clarabel => cfg!(feature = "clarabel"),
            Self::Highs => cfg!(feature = "highs"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Homotopy => "homotopy",
            Self::Minilp => "minilp",
            Self::Clarabel => "clarabel",
            Self::Highs => "highs",
        }
    }
}

/// A certified LP answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LpSolution {
    #[serde(serialize_with = "crate::solve::ser_vec")]
    pub beta: DVector<f64>,
    /// Σ w_i |b_i|.
    pub objective: f64,
    /// yᵀν for the recovered, feasibility-scaled dual point ν: a lower bound.
    pub dual_objective: f64,
    /// (objective − dual_objective) / max(1, |objective|).
    pub rel_gap: f64,
    /// ‖X b − y‖_∞.
    pub feasibility: f64,
    /// The method that produced b (minilp when the homotopy fell back).
    pub backend: LpBackend,
    /// Where ν came from: `homotopy` (its last segment), `support` (least squares on
    /// the support of an LP answer), `dual_lp`, or `zero` (y = 0: b = 0 and ν = 0).
    pub dual_from: &'static str,
    /// Why the homotopy handed over to the LP (minilp), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Seconds spent building and solving the primal model (certification excluded).
    pub solve_seconds: f64,
}

/// The largest relative duality gap a certified answer may have (above it the
/// certificate tries the homotopy's dual, then the dual LP, then exit 5).
pub const GAP_TOL: f64 = 1e-9;

/// Solves weighted basis pursuit with `backend` and certifies the answer, on unit
/// scales ([`UnitScales`]); y = 0 has the answer b = 0, certified by ν = 0.
pub fn weighted_basis_pursuit(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    w: &DVector<f64>,
    backend: LpBackend,
) -> Result<LpSolution, SolveError> {
    check_weighted_bp(x, y, w)?;
    if y.amax() == 0.0 {
        return Ok(zero_solution(x.ncols(), backend));
    }
    let unit = UnitScales::new(x, y, w)?;
    unit.to_original(x, y, solve_unit(&unit.x, &unit.y, &unit.w, backend)?)
}

/// b = 0, the answer when y = 0 (any other b costs Σ w|b| > 0), with ν = 0: gap 0.
fn zero_solution(d: usize, backend: LpBackend) -> LpSolution {
    LpSolution {
        beta: DVector::zeros(d),
        objective: 0.0,
        dual_objective: 0.0,
        rel_gap: 0.0,
        feasibility: 0.0,
        backend,
        dual_from: "zero",
        fallback: None,
        solve_seconds: 0.0,
    }
}

/// [`weighted_basis_pursuit`] on data of unit scale.
fn solve_unit(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    w: &DVector<f64>,
    backend: LpBackend,
) -> Result<LpSolution, SolveError> {
    let start = Instant::now();
    if backend == LpBackend::Homotopy {
        let reason = match l1_homotopy(x, y, w) {
            Ok(h) => {
                let sol = certify(x, y, w, h.beta, &h.nu, backend, start.elapsed().as_secs_f64());
                match check_certificate(x, y, &sol) {
                    Ok(()) => return Ok(LpSolution { dual_from: "homotopy", ..sol }),
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        let sol = solve_unit(x, y, w, LpBackend::Minilp)?;
        return Ok(LpSolution { fallback: Some(format!("ℓ1 homotopy: {reason}")), ..sol });
    }
    // Basis pursuit is homogeneous in y; microlp's tolerances are absolute and it pivots
    // 1.5–2× faster on max |y| = 1 than on the raw scale (≈ 40 at 500 × 2000). The answer
    // is scaled back, polished and certified against the original y. (Clarabel and HiGHS
    // get y as it is: their tolerances are relative, and Clarabel's outcome changed.)
    let scale = if backend == LpBackend::Minilp && y.amax() > 0.0 { y.amax() } else { 1.0 };
    let raw = solve_lp(x, &(y / scale), w, backend)? * scale;
    let solve_seconds = start.elapsed().as_secs_f64();
    let beta = polish(x, y, raw);
    let nu = support_dual(x, w, &beta).unwrap_or_else(|| DVector::zeros(x.nrows()));
    Ok(certify(x, y, w, beta, &nu, backend, solve_seconds))
}

/// Tightens the certificate of `sol` (from [`weighted_basis_pursuit`] on the same data)
/// when the support dual left a gap above 1e-9 (an LP answer at a degenerate vertex):
/// first the homotopy's dual (any dual optimal ν certifies every primal optimum), then
/// the full dual LP. `solve` runs it, sweeps don't.
pub fn certify_exactly(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    w: &DVector<f64>,
    sol: &mut LpSolution,
) -> Result<(), SolveError> {
    check_weighted_bp(x, y, w)?;
    if y.amax() == 0.0 {
        return check_certificate(x, y, sol);
    }
    let unit = UnitScales::new(x, y, w)?;
    let mut unit_sol = unit.to_unit(sol);
    let outcome = certify_unit(&unit.x, &unit.y, &unit.w, &mut unit_sol);
    *sol = unit.to_original(x, y, unit_sol)?;
    outcome?;
    // The answer as returned, judged in the data's units (the scaling is exact, so this
    // differs only where an entry of b left f64's normal range).
    check_certificate(x, y, sol)
}

/// [`certify_exactly`] on data of unit scale.
fn certify_unit(x: &DMatrix<f64>, y: &DVector<f64>, w: &DVector<f64>, sol: &mut LpSolution) -> Result<(), SolveError> {
    if sol.rel_gap > GAP_TOL
        && let Ok(h) = l1_homotopy(x, y, w)
    {
        adopt_if_tighter(x, y, w, &h.nu, sol, "homotopy");
    }
    if sol.rel_gap > GAP_TOL || !feasible(x, y, sol) {
        let nu = dual_basis_pursuit(x, y, w, sol.backend)?;
        adopt_if_tighter(x, y, w, &nu, sol, "dual_lp");
        if sol.rel_gap > GAP_TOL || !feasible(x, y, sol) {
            adopt_primal_from_dual(x, y, w, &nu, sol);
        }
    }
    check_certificate(x, y, sol)
}

/// Whether `sol` interpolates to [`FEASIBILITY_TOL`] relative to max|y|.
fn feasible(x: &DMatrix<f64>, y: &DVector<f64>, sol: &LpSolution) -> bool {
    (x * &sol.beta - y).amax() <= FEASIBILITY_TOL * y.amax()
}

/// The last certified route, when the primal answer cannot be certified (an LP that
/// stopped short, e.g. on nearly parallel columns): a primal recovered from the dual
/// LP's ν. Complementary slackness puts b's support inside the tight set
/// S = {j : |X_jᵀν| ≥ (1 − 1e-9) w_j}, with b_j of the sign of X_jᵀν: b_S solves
/// X_S b_S = y by least squares, and coordinates whose sign comes out wrong leave S
/// until none does. Certified by the better of ν and the support dual of b; it
/// replaces `sol` only if it is feasible and certified better.
fn adopt_primal_from_dual(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    w: &DVector<f64>,
    nu: &DVector<f64>,
    sol: &mut LpSolution,
) {
    let corr = x.tr_mul(nu);
    let mut s: Vec<usize> = (0..w.len()).filter(|&j| corr[j].abs() >= (1.0 - 1e-9) * w[j]).collect();
    let beta = loop {
        let Some(bs) = lstsq(&x.select_columns(&s), y) else { return };
        let kept: Vec<usize> =
            s.iter().zip(bs.iter()).filter(|(j, b)| b.signum() == corr[**j].signum()).map(|(j, _)| *j).collect();
        if kept.len() == s.len() {
            let mut beta = DVector::zeros(w.len());
            s.iter().zip(bs.iter()).for_each(|(&j, &b)| beta[j] = b);
            break beta;
        }
        s = kept;
    };
    let mut candidate = certify(x, y, w, beta, nu, sol.backend, sol.solve_seconds);
    candidate.dual_from = "dual_lp";
    if let Some(support_nu) = support_dual(x, w, &candidate.beta) {
        adopt_if_tighter(x, y, w, &support_nu, &mut candidate, "support");
    }
    let better = !feasible(x, y, sol) || candidate.rel_gap < sol.rel_gap;
    if feasible(x, y, &candidate) && better {
        let why = format!(
            "primal recovered from the dual LP's tight constraints (the LP's own answer: gap {:.1e})",
            sol.rel_gap
        );
        let fallback = Some(sol.fallback.take().map_or(why.clone(), |f| format!("{f}; {why}")));
        *sol = LpSolution { fallback, ..candidate };
    }
}

/// Relative primal feasibility ‖Xb − y‖_∞ / max(‖y‖_∞, tiny) an answer must reach.
pub const FEASIBILITY_TOL: f64 = 1e-9;

/// An error unless `sol` is feasible (relative to ‖y‖_∞) and its duality gap ≤ 1e-9.
fn check_certificate(x: &DMatrix<f64>, y: &DVector<f64>, sol: &LpSolution) -> Result<(), SolveError> {
    let rel_feas = (x * &sol.beta - y).amax() / y.amax().max(f64::MIN_POSITIVE);
    let missed = |reached: String, needed: String| {
        Err(SolveError::Missed { method: "weighted basis pursuit (LP certificate)", reached, needed })
    };
    if !(rel_feas <= FEASIBILITY_TOL) {
        return missed(
            format!("relative feasibility ‖Xb − y‖∞/‖y‖∞ = {rel_feas:.3e}"),
            format!("≤ {FEASIBILITY_TOL:e}"),
        );
    }
    if !(sol.rel_gap <= GAP_TOL) {
        let reached = format!("relative duality gap {:.3e} (best dual from {})", sol.rel_gap, sol.dual_from);
        return missed(reached, format!("≤ {GAP_TOL:e}"));
    }
    Ok(())
}

/// Replaces the certificate of `sol` by the one from ν when its gap is smaller.
fn adopt_if_tighter(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    w: &DVector<f64>,
    nu: &DVector<f64>,
    sol: &mut LpSolution,
    from: &'static str,
) {
    let (dual_objective, rel_gap) = lower_bound(x, y, w, nu, sol.objective);
    if rel_gap < sol.rel_gap {
        (sol.dual_objective, sol.rel_gap, sol.dual_from) = (dual_objective, rel_gap, from);
    }
}

/// The dual LP of weighted basis pursuit: max yᵀν subject to −w ≤ Xᵀν ≤ w, solved
/// by `backend` (microlp for the homotopy). Not certified: a reference and last resort.
pub fn dual_basis_pursuit(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    w: &DVector<f64>,
    backend: LpBackend,
) -> Result<DVector<f64>, SolveError> {
    let (n, d) = x.shape();
    let mut vars = variables!();
    let nu: Vec<Variable> = vars.add_vector(variable(), n);
    let mut objective = Expression::with_capacity(n);
    for r in 0..n {
        objective.add_mul(y[r], nu[r]);
    }
    let column = |j: usize| {
        let mut e = Expression::with_capacity(n);
        for r in 0..n {
            e.add_mul(x[(r, j)], nu[r]);
        }
        e
    };
    let rows = (0..d).flat_map(|j| [constraint!(column(j) <= w[j]), constraint!(column(j) >= -w[j])]);
    Ok(DVector::from_vec(run_lp(vars.maximise(objective), rows, backend, &nu)?))
}

/// yᵀν after scaling ν into {|X_iᵀν| ≤ w_i}, and the relative gap to `objective`.
fn lower_bound(x: &DMatrix<f64>, y: &DVector<f64>, w: &DVector<f64>, nu: &DVector<f64>, objective: f64) -> (f64, f64) {
    let worst = x.tr_mul(nu).component_div(w).amax().max(1.0);
    let dual_objective = y.dot(nu) / worst;
    // Relative to the objective's own scale (0 only when y = 0, where both are 0).
    let gap = objective - dual_objective;
    (dual_objective, if gap == 0.0 { 0.0 } else { gap / objective.abs().max(f64::MIN_POSITIVE) })
}

/// Plain basis pursuit: all weights 1.
pub fn basis_pursuit(x: &DMatrix<f64>, y: &DVector<f64>, backend: LpBackend) -> Result<LpSolution, SolveError> {
    weighted_basis_pursuit(x, y, &DVector::from_element(x.ncols(), 1.0), backend)
}

fn solve_lp(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    w: &DVector<f64>,
    backend: LpBackend,
) -> Result<DVector<f64>, SolveError> {
    let (n, d) = x.shape();
    let mut vars = variables!();
    let p: Vec<Variable> = vars.add_vector(variable().min(0.0), d);
    let m: Vec<Variable> = vars.add_vector(variable().min(0.0), d);
    let mut objective = Expression::with_capacity(2 * d);
    for i in 0..d {
        objective.add_mul(w[i], p[i]);
        objective.add_mul(w[i], m[i]);
    }
    let rows = (0..n).map(|r| {
        let mut e = Expression::with_capacity(2 * d);
        for j in 0..d {
            let a = x[(r, j)];
            if a != 0.0 {
                e.add_mul(a, p[j]);
                e.add_mul(-a, m[j]);
            }
        }
        constraint!(e == y[r])
    });
    let wanted = [p.as_slice(), m.as_slice()].concat();
    let values = run_lp(vars.minimise(objective), rows, backend, &wanted)?;
    Ok(DVector::from_fn(d, |i, _| values[i] - values[d + i]))
}

/// Solves the model with `backend` and returns the values of `wanted`.
fn run_lp(
    problem: good_lp::variable::UnsolvedProblem,
    rows: impl Iterator<Item = good_lp::Constraint>,
    backend: LpBackend,
    wanted: &[Variable],
) -> Result<Vec<f64>, SolveError> {
    let failed = |e: ResolutionError| lp_failure(backend, e);
    let read = |sol: &dyn Solution| wanted.iter().map(|&v| sol.value(v)).collect();
    match backend {
        // The homotopy's LP (its fallback, the dual LP of its certificate) is microlp.
        LpBackend::Homotopy | LpBackend::Minilp => {
            Ok(read(&problem.using(good_lp::microlp).with_all(rows).solve().map_err(failed)?))
        }
        #[cfg(feature = "clarabel")]
        LpBackend::Clarabel => {
            let sol = problem.using(good_lp::clarabel).with_all(rows).solve().map_err(failed)?;
            // good_lp reports Optimal for AlmostSolved too: read the solver's own status.
            let status = sol.inner().status;
            if status != clarabel::solver::SolverStatus::Solved {
                return Err(SolveError::Lp { backend: backend.name(), status: format!("{status:?}") });
            }
            Ok(read(&sol))
        }
        #[cfg(feature = "highs")]
        LpBackend::Highs => Ok(read(&problem.using(good_lp::highs).with_all(rows).solve().map_err(failed)?)),
        #[allow(unreachable_patterns)]
        other => Err(SolveError::Lp {
            backend: other.name(),
            status: format!("not compiled in: rebuild with `--features {}`", other.name()),
        }),
    }
}

fn lp_failure(backend: LpBackend, e: ResolutionError) -> SolveError {
    let status = match e {
        ResolutionError::Infeasible => "infeasible: X b = y has no solution".to_owned(),
        ResolutionError::Unbounded => "unbounded".to_owned(),
        other => other.to_string(),
    };
    SolveError::Lp { backend: backend.name(), status }
}

/// Entries below this fraction of max |b_i| are off the support.
const SUPPORT_TOL: f64 = 1e-9;

fn support(b: &DVector<f64>) -> Vec<usize> {
    let cut = SUPPORT_TOL * b.amax();
    (0..b.len()).filter(|&i| b[i].abs() > cut).collect()
}

/// Least-squares solve of A z = r by SVD (A may be rectangular; `None` when it is
/// empty or the solve fails).
fn lstsq(a: &DMatrix<f64>, r: &DVector<f64>) -> Option<DVector<f64>> {
    if a.is_empty() || !a.iter().all(|v| v.is_finite()) {
        return None;
    }
    a.clone().svd(true, true).solve(r, 1e-12).ok().filter(|z| z.iter().all(|v| v.is_finite()))
}

/// Re-solves X_S b_S = y on the support; keeps it if the residual drops and no sign flips.
fn polish(x: &DMatrix<f64>, y: &DVector<f64>, b: DVector<f64>) -> DVector<f64> {
    let s = support(&b);
    if s.is_empty() || s.len() > x.nrows() {
        return b;
    }
    let Some(bs) = lstsq(&x.select_columns(&s), y) else { return b };
    let mut polished = DVector::zeros(b.len());
    for (k, &i) in s.iter().enumerate() {
        polished[i] = bs[k];
    }
    let same_signs = s.iter().all(|&i| polished[i].signum() == b[i].signum());
    let better = (x * &polished - y).amax() <= (x * &b - y).amax();
    if same_signs && better { polished } else { b }
}

/// The certified answer b with the dual point ν.
fn certify(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    w: &DVector<f64>,
    beta: DVector<f64>,
    nu: &DVector<f64>,
    backend: LpBackend,
    solve_seconds: f64,
) -> LpSolution {
    let objective = w.component_mul(&beta.abs()).sum();
    let feasibility = (x * &beta - y).amax();
    let (dual_objective, rel_gap) = lower_bound(x, y, w, nu, objective);
    LpSolution {
        beta,
        objective,
        dual_objective,
        rel_gap,
        feasibility,
        backend,
        dual_from: "support",
        fallback: None,
        solve_seconds,
    }
}

/// ν with X_Sᵀν = c (c = w_S ⊙ sign(b_S)) minimising ‖W⁻¹X_{S^c}ᵀν‖²: with
/// M = X_{S^c} W⁻² X_{S^c}ᵀ, ν = M⁻¹X_S λ where (X_Sᵀ M⁻¹ X_S) λ = c. Falls back to least
/// squares on X_Sᵀν = c when M is singular.
fn support_dual(x: &DMatrix<f64>, w: &DVector<f64>, beta: &DVector<f64>) -> Option<DVector<f64>> {
    let s = support(beta);
    if s.is_empty() {
        return None;
    }
    let c = DVector::from_fn(s.len(), |k, _| w[s[k]] * beta[s[k]].signum());
    let xs = x.select_columns(&s);
    let off: Vec<usize> = (0..beta.len()).filter(|i| !s.contains(i)).collect();
    let mut scaled = x.select_columns(&off);
    for (k, &i) in off.iter().enumerate() {
        scaled.column_mut(k).scale_mut(1.0 / w[i]);
    }
    let m = nalgebra::Cholesky::new(&scaled * scaled.transpose());
    match m {
        Some(m) if s.len() < x.nrows() => {
            let minv_xs = m.solve(&xs);
            let lambda = nalgebra::Cholesky::new(xs.tr_mul(&minv_xs))?.solve(&c);
            Some(minv_xs * lambda)
        }
        _ => lstsq(&xs.transpose(), &c),
    }
}

/// The minimum-ℓ2 interpolator b = Xᵀ(XXᵀ)⁻¹y (Cholesky), computed on X / max|X| and
/// y / max|y| (b is homogeneous: b = b̂ · max|y| / max|X|), so X Xᵀ neither overflows nor
/// underflows. Its relative residual ‖Xb − y‖₂/‖y‖₂ must reach [`FEASIBILITY_TOL`].
pub fn min_norm(x: &DMatrix<f64>, y: &DVector<f64>) -> Result<DVector<f64>, SolveError> {
    if y.amax() == 0.0 {
        return Ok(DVector::zeros(x.ncols()));
    }
    let (s_x, s_y) = (crate::numeric::pow2_scale(x.amax()), crate::numeric::pow2_scale(y.amax()));
    let (xu, yu) = (x / s_x, y / s_y);
    let chol = nalgebra::Cholesky::new(&xu * xu.transpose())
        .ok_or(SolveError::Numerical("X Xᵀ is not positive definite (X not of full row rank)".into()))?;
    let b_unit = xu.tr_mul(&chol.solve(&yu));
    let residual = crate::numeric::rel_residual(&(&xu * &b_unit - &yu), &yu);
    let b = b_unit.map(|v| v * s_y / s_x);
    if !crate::numeric::kept_in_range(&b_unit, &b) {
        return Err(SolveError::Numerical(
            "the minimum-ℓ2 interpolator leaves f64's range (max|y| / max|X| is extreme)".into(),
        ));
    }
    // The answer as returned, in the original units (subnormal entries keep few digits).
    let residual = residual.max(crate::numeric::rel_residual(&(x * &b - y), y));
    if residual <= FEASIBILITY_TOL {
        Ok(b)
    } else {
        Err(SolveError::Missed {
            method: "minimum-ℓ2 interpolator (Cholesky of X Xᵀ)",
            reached: format!("relative residual ‖Xb − y‖/‖y‖ = {residual:.3e}"),
            needed: format!("≤ {FEASIBILITY_TOL:e}"),
        })
    }
}
