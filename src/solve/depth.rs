//! Gradient flow's limit on the depth-D network b = u^D − v^D (theory/README.md § Deeper
//! networks and momentum), solved on its dual.
//!
//! Along the flow u^{2−D} = a_u − z and v^{2−D} = a_v + z with a_u = u₀^{2−D},
//! a_v = v₀^{2−D} and z = Xᵀμ in the row space of X, so per coordinate
//! b(z) = (a_u − z)^{−p} − (a_v + z)^{−p}, p = D/(D − 2), on the open interval
//! −a_v < z < a_u. μ minimises F(μ) = Σ_i φ*(z_i) − ⟨μ, y⟩ with
//! φ*(z) = [(a_u − z)^{1−p} + (a_v + z)^{1−p}]/(p − 1): gradient X b(μ) − y, Hessian
//! X diag(φ*''(z)) Xᵀ, φ*'' = p[(a_u − z)^{−p−1} + (a_v + z)^{−p−1}]; F is +∞ outside
//! the interval, so a damped Newton step that leaves it is shortened.

use nalgebra::{DMatrix, DVector};

use super::damped::{DualPoint, damped_newton};
use super::{NewtonSettings, SolveError};

/// The flow's map z ↦ b of one depth and start.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthFlow {
    pub depth: u8,
    /// u₀^{2−D}.
    pub a_u: DVector<f64>,
    /// v₀^{2−D}.
    pub a_v: DVector<f64>,
}

impl DepthFlow {
    /// From the start u₀, v₀ > 0 (checked by [`crate::model::Model::check`]).
    pub fn new(depth: u8, u0: &DVector<f64>, v0: &DVector<f64>) -> Self {
        let k = 2 - i32::from(depth);
        Self { depth, a_u: u0.map(|u| u.powi(k)), a_v: v0.map(|v| v.powi(k)) }
    }

    /// p = D/(D − 2).
    fn p(&self) -> f64 {
        let d = f64::from(self.depth);
        d / (d - 2.0)
    }

    /// (b(z), db/dz) at coordinate i; `None` outside −a_v < z < a_u.
    pub fn b_of(&self, i: usize, z: f64) -> Option<(f64, f64)> {
        let (tu, tv) = (self.a_u[i] - z, self.a_v[i] + z);
        if !(tu > 0.0 && tv > 0.0) {
            return None;
        }
        let p = self.p();
        let (bu, bv) = (tu.powf(-p), tv.powf(-p));
        // tu^{−p} − tv^{−p} = −tu^{−p}·expm1(p·ln(tu/tv)), tu/tv = 1 + (a_u − a_v − 2z)/tv:
        // no cancellation where tu ≈ tv (large scales, z tiny and b ≪ tu^{−p}).
        let b = -bu * (p * ((self.a_u[i] - self.a_v[i] - 2.0 * z) / tv).ln_1p()).exp_m1();
        Some((b, p * (bu / tu + bv / tv)))
    }

    /// φ*(z) at coordinate i (+∞ outside the interval).
    fn conjugate(&self, i: usize, z: f64) -> f64 {
        let (tu, tv) = (self.a_u[i] - z, self.a_v[i] + z);
        if !(tu > 0.0 && tv > 0.0) {
            return f64::INFINITY;
        }
        let q = 1.0 - self.p();
        (tu.powf(q) + tv.powf(q)) / (self.p() - 1.0)
    }

    /// z with b(z) = b at coordinate i: Newton kept inside the bracket that the signs of
    /// b(z) − b have established on (−a_v, a_u), bisecting when a step leaves it. The
    /// KKT check's inverse, independent of the dual solver.
    pub fn z_of(&self, i: usize, b: f64) -> Option<f64> {
        let (mut lo, mut hi) = (-self.a_v[i], self.a_u[i]);
        let mut z = 0.0f64.clamp(lo, hi);
        for _ in 0..2000 {
            let (bz, slope) = self.b_of(i, z)?;
            let r = bz - b;
            if r == 0.0 {
                return Some(z);
            }
            if r < 0.0 {
                lo = z
            } else {
                hi = z
            }
            let newton = z - r / slope;
            let next = if newton > lo && newton < hi { newton } else { 0.5 * (lo + hi) };
            if (next - z).abs() <= 2.0 * f64::EPSILON * z.abs().max(f64::MIN_POSITIVE) || next == lo || next == hi {
                return Some(next);
            }
            z = next;
        }
        Some(z)
    }
}

/// The flow's limit and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthFlowSolution {
    pub beta: DVector<f64>,
    /// The dual variable: z = Xᵀμ.
    pub mu: DVector<f64>,
    pub newton_iters: usize,
    /// ‖X b − y‖₂ / ‖y‖₂.
    pub residual: f64,
}

/// F, b and the curvature φ*'' = db/dz at μ; an error when some z_i leaves its interval.
fn evaluate(x: &DMatrix<f64>, y: &DVector<f64>, flow: &DepthFlow, mu: &DVector<f64>) -> Result<DualPoint, SolveError> {
    let z = x.tr_mul(mu);
    let (mut b, mut c) = (DVector::zeros(z.len()), DVector::zeros(z.len()));
    let mut f = -mu.dot(y);
    let outside = || SolveError::Numerical("z = Xᵀμ left the flow's domain".into());
    for i in 0..z.len() {
        (b[i], c[i]) = flow.b_of(i, z[i]).ok_or_else(outside)?;
        f += flow.conjugate(i, z[i]);
    }
    if f.is_finite() && b.iter().chain(c.iter()).all(|v| v.is_finite()) {
        Ok(DualPoint { f, b, c })
    } else {
        Err(outside())
    }
}

/// Solves X b(Xᵀμ) = y: gradient flow's limit on b = u^D − v^D from the flow's start.
/// Below the acceptance bound a step that no longer halves the residual has met the
/// rounding floor of b(z) near a pole (ε·a/(a − z) relative): the iteration stops there.
pub fn solve_depth_flow(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    flow: &DepthFlow,
    settings: &NewtonSettings,
) -> Result<DepthFlowSolution, SolveError> {
    let (n, d) = x.shape();
    if y.len() != n || flow.a_u.len() != d || flow.a_v.len() != d {
        return Err(SolveError::Shape(format!(
            "X is {n}×{d}, y has {} and the start {} entries",
            y.len(),
            flow.a_u.len()
        )));
    }
    let start = evaluate(x, y, flow, &DVector::zeros(n))
        .map_err(|_| SolveError::Numerical("the start is outside the flow's domain".into()))?;
    let sol = damped_newton(x, y, settings, true, start, |mu, _| evaluate(x, y, flow, mu))?;
    Ok(DepthFlowSolution { beta: sol.beta, mu: sol.mu, newton_iters: sol.iters, residual: sol.residual })
}

/// KKT residual of b for the flow's potential, computed without the solver: z_i(b_i) by
/// a scalar root on each coordinate's interval, then the part of z outside the row space
/// of X over max(‖z‖₂, 1). Infinite when some b_i has no z (not finite).
pub fn depth_kkt_residual(x: &DMatrix<f64>, flow: &DepthFlow, b: &DVector<f64>) -> Result<f64, SolveError> {
    let mut z = DVector::zeros(b.len());
    for i in 0..b.len() {
        match flow.z_of(i, b[i]) {
            Some(zi) if b[i].is_finite() => z[i] = zi,
            _ => return Ok(f64::INFINITY),
        }
    }
    super::row_space_residual(x, &z)
}
