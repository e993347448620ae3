//! Damped Newton on a separable dual F(μ) = Σ_i φ*(z_i) − ⟨μ, y⟩ with z = z₀ + Xᵀμ: the
//! driver shared by the formula potentials and depth D's flow (the hyperbolic entropy has
//! its own, with continuation and an f32 phase). Gradient X b(μ) − y, Hessian
//! X diag(c) Xᵀ with c = db/dz (Cholesky); a step is halved until F falls (Armijo) or the
//! residual does, and an evaluation that fails (outside the dual's domain) is halved too.

use nalgebra::{Cholesky, DMatrix, DVector};

use super::{MAX_RESIDUAL, NewtonSettings, SolveError};
use crate::numeric;

/// One evaluation of the dual: F(μ), the primal point b(μ) and the curvatures db/dz.
pub(super) struct DualPoint {
    pub f: f64,
    pub b: DVector<f64>,
    pub c: DVector<f64>,
}

/// The answer: b, μ, the iterations and ‖X b − y‖₂ / ‖y‖₂.
pub(super) struct DampedAnswer {
    pub beta: DVector<f64>,
    pub mu: DVector<f64>,
    pub iters: usize,
    pub residual: f64,
}

/// From μ = 0 (`start` = its evaluation) to ‖X b − y‖ ≤ tol·‖y‖; with `stop_at_floor`
/// also once the residual is within [`MAX_RESIDUAL`] and a step no longer halves it (the
/// rounding floor of b). A stalled line search or the step cap ends with an answer only
/// within [`MAX_RESIDUAL`]. `eval(μ, at)` evaluates the dual at μ, warm-started from the
/// current point `at`.
pub(super) fn damped_newton(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    settings: &NewtonSettings,
    stop_at_floor: bool,
    start: DualPoint,
    mut eval: impl FnMut(&DVector<f64>, &DualPoint) -> Result<DualPoint, SolveError>,
) -> Result<DampedAnswer, SolveError> {
    let scale = numeric::norm(y).max(f64::MIN_POSITIVE);
    let (mut mu, mut at) = (DVector::zeros(x.nrows()), start);
    let mut last = f64::INFINITY;
    let answer = |at: DualPoint, mu, iters, residual: f64| {
        if residual <= MAX_RESIDUAL {
            Ok(DampedAnswer { beta: at.b, mu, iters, residual })
        } else {
            Err(SolveError::NotConverged { iters, residual, needed: MAX_RESIDUAL })
        }
    };
    for it in 0..=settings.max_iters {
        let grad = x * &at.b - y;
        let residual = numeric::norm(&grad) / scale;
        if residual <= settings.tol || (stop_at_floor && residual <= MAX_RESIDUAL && residual > 0.5 * last) {
            return Ok(DampedAnswer { beta: at.b, mu, iters: it, residual });
        }
        let mut scaled = x.clone();
        for (mut col, cj) in scaled.column_iter_mut().zip(at.c.iter()) {
            col *= *cj;
        }
        let chol = Cholesky::new(scaled * x.transpose()).ok_or(SolveError::Numerical(
            "the dual Hessian X diag(db/dz) Xᵀ is not positive definite (is X of full row rank?)".into(),
        ))?;
        let dir = -chol.solve(&grad);
        let slope = grad.dot(&dir);
        last = residual;
        let mut t = 1.0;
        loop {
            let trial = &mu + t * &dir;
            if let Ok(next) = eval(&trial, &at)
                && (next.f <= at.f + 1e-4 * t * slope
                    || numeric::norm(&(x * &next.b - y)) < (1.0 - 1e-4 * t) * numeric::norm(&grad))
            {
                (mu, at) = (trial, next);
                break;
            }
            t *= 0.5;
            if t < 1e-12 {
                return answer(at, mu, it, residual);
            }
        }
    }
    let residual = numeric::norm(&(x * &at.b - y)) / scale;
    answer(at, mu, settings.max_iters, residual)
}
