//! The small-scale limit (theory/README.md § Theorem 1): with ln(1/α_∞,i) = t·w_i and t → ∞, the
//! implicit solution tends to weighted basis pursuit argmin_{Xb=y} Σ w_i |b_i|.

use nalgebra::{DMatrix, DVector};

use super::{LpBackend, NewtonSettings, SolveError, solve_implicit, weighted_basis_pursuit};

/// One point of the limit curve.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LimitPoint {
    pub t: f64,
    /// ‖b_implicit(t) − b_wbp‖₂ / ‖b_wbp‖₂.
    pub rel_dist: f64,
    pub newton_iters: usize,
}

/// For each t: solve the implicit problem with ln α_∞² = −2 t w and shift ρ, and measure
/// its relative distance to weighted basis pursuit with weights w.
pub fn weighted_bp_limit_curve(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    w: &DVector<f64>,
    rho: &DVector<f64>,
    ts: &[f64],
    backend: LpBackend,
) -> Result<Vec<LimitPoint>, SolveError> {
    let wbp = weighted_basis_pursuit(x, y, w, backend)?;
    let settings = NewtonSettings::default();
    ts.iter()
        .map(|&t| {
            let scales = crate::bias::Scales::two_sided(w * (-2.0 * t), rho.clone());
            let sol = solve_implicit(x, y, &scales, &settings)?;
            let rel_dist = crate::numeric::rel_dist(&sol.beta, &wbp.beta);
            Ok(LimitPoint { t, rel_dist, newton_iters: sol.newton_iters })
        })
        .collect()
}
