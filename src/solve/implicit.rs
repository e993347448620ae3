//! The implicit-regularisation problem of Theorem 1,
//! `argmin_{X b = y} D_{ψ_{α_∞}}(b, b̃_0)`, solved on its dual (theory/README.md § Solving the implicit problem).
//!
//! With ℓ = ln α_∞² and z = ρ + Xᵀμ, the primal point is
//! b(μ) = ½(exp(ℓ + z) - exp(ℓ - z)) = α_∞² sinh(z), and μ minimises the smooth convex
//! F(μ) = Σ_i ½(exp(ℓ_i + z_i) + exp(ℓ_i - z_i)) - <μ, y>,
//! with gradient X b(μ) - y and Hessian X diag(α_∞² cosh z) Xᵀ (SPD when X has full row
//! rank). Damped Newton with Cholesky converges quadratically near the solution. When
//! α_∞ is tiny (ℓ down to -1000) plain Newton from μ = 0 crawls, so we follow the path
//! ℓ(s) = s·ℓ from an easy scale to s = 1 (see [`solve_implicit`]).

use nalgebra::{DMatrix, DVector};

use super::newton_system::NewtonSystem;

use super::SolveError;
use crate::bias::{Scales, Side};
use crate::numeric;

/// Settings of the dual Newton solver.
///
/// | field | default | meaning |
/// |---|---|---|
/// | tol | 1e-13 | stop when ‖X b - y‖₂ ≤ tol · max(‖y‖₂, 1e-300) |
///
/// Below the rounding floor 8 ε max_i (|ℓ_i| + |z_i|) a stalled iteration (residual not
/// halved, or no descent) also stops: b_i = ½(e^{ℓ_i+z_i} − e^{ℓ_i−z_i}) carries a
/// relative error ≈ ε(|ℓ_i| + |z_i|) from its exponents alone, so at ℓ ≈ −3000 no μ may
/// bring the residual below ~1e-12.
/// | max_iters | 500 | Newton iterations over all continuation stages |
/// | stage_tol | 1e-3 | relative residual of intermediate path stages |
/// | start_level | -30 | plain Newton when min ℓ ≥ this; else the path starts here |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewtonSettings {
    pub tol: f64,
    pub max_iters: usize,
    pub stage_tol: f64,
    pub start_level: f64,
}

impl Default for NewtonSettings {
    fn default() -> Self {
        Self { tol: 1e-13, max_iters: 500, stage_tol: 1e-3, start_level: -30.0 }
    }
}

/// Above this relative residual the Newton direction comes from the f32 system (half
/// the cost); below, from f64 unless the last f32 step contracted the residual by 1e3 or
/// more. An f32 direction has relative error ~κ(H)·1e-7, so a step from residual r
/// reaches ~max(r², κ·1e-7·r): harmless down to here, and the answer is judged by its
/// f64 residual whatever gave the steps. Measured (α = 0.1, 100 × 1,000 / 300 × 3,000 /
/// 1,000 × 5,000): the same 7 / 9 / 10 iterations as all-f64.
const SINGLE_PRECISION_ABOVE: f64 = 1e-6;

/// The largest relative residual an answer may have (exit 5 above it, whether the
/// iteration stalled at its rounding floor or ran out of steps): the one bound the README
/// quotes.
pub const MAX_RESIDUAL: f64 = 1e-10;

/// The largest exponent ln α_∞² ± ρ + … the dual evaluates (e^700 ≈ 1e304).
pub const MAX_EXPONENT: f64 = 700.0;

/// The solution of the implicit problem and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct ImplicitSolution {
    pub beta: DVector<f64>,
    /// The dual variable: asinh(b/α_∞²) = ρ + Xᵀμ.
    pub mu: DVector<f64>,
    /// Newton iterations over all stages.
    pub newton_iters: usize,
    /// Continuation stages (1 when no continuation was needed).
    pub stages: usize,
    /// ‖X b - y‖₂ / ‖y‖₂.
    pub residual: f64,
}

/// Reused buffers of the dual evaluations.
struct Workspace<'a> {
    x: &'a DMatrix<f64>,
    side: &'a [Side],
    y: &'a DVector<f64>,
    z: DVector<f64>,
    grad: DVector<f64>,
    system: NewtonSystem,
}

/// Value of F, primal point b and curvature weights c = α_∞² cosh z at one μ.
struct DualPoint {
    f: f64,
    b: DVector<f64>,
    c: DVector<f64>,
}

/// Solves `argmin_{Xb=y} D_{ψ_{α_∞}}(b, b̃_0)` given ℓ = ln α_∞² and ρ per coordinate
/// (with sign-constrained coordinates: their relative-entropy terms, see [`Scales`]).
///
/// Plain damped Newton from μ = 0 when min ℓ ≥ `start_level`; otherwise (or if that
/// fails) path following on ℓ(s) = s·ℓ: s starts where min ℓ(s) = `start_level`, grows
/// geometrically to 1, and each stage starts from the linear extrapolation of the last
/// two solutions (μ(s) is asymptotically linear in s, like an interior-point central path).
pub fn solve_implicit(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    scales: &Scales,
    settings: &NewtonSettings,
) -> Result<ImplicitSolution, SolveError> {
    check_inputs(x, y, scales)?;
    // The problem is the same for (X·2⁻ᵏ, y·2⁻ᵏ) with μ·2ᵏ (z = ρ + Xᵀμ and b unchanged):
    // an X far from unit scale is brought near it exactly (a power of two), so its
    // Hessian X C Xᵀ neither underflows nor overflows.
    let k = x.amax().log2().round();
    if k.abs() > 200.0 {
        let s = (-k).exp2();
        let mut sol = solve_implicit(&(x * s), &(y * s), scales, settings)?;
        sol.mu *= s;
        // y·2⁻ᵏ may have left f64's range where X·2⁻ᵏ did not: judge the answer by the
        // data as given.
        let residual = numeric::rel_residual(&(x * &sol.beta - y), y);
        if !(residual <= MAX_RESIDUAL) {
            return Err(SolveError::Missed {
                method: "dual Newton (implicit problem)",
                reached: format!(
                    "relative residual ‖Xb − y‖/‖y‖ = {residual:.3e} in the data's units (max|X| = {:e}, max|y| = {:e}: \
                     b is beyond f64's range)",
                    x.amax(),
                    y.amax()
                ),
                needed: format!("≤ {MAX_RESIDUAL:e}"),
            });
        }
        sol.residual = sol.residual.max(residual);
        return Ok(sol);
    }
    let mut ws = Workspace::new(x, y, &scales.side);
    let (ell, rho) = (&scales.ell, &scales.rho);
    if ell.min() >= settings.start_level {
        let mut mu = DVector::zeros(x.nrows());
        let plain = ws.newton(ell, rho, &mut mu, settings.tol, settings.max_iters);
        if let Ok((iters, residual)) = plain {
            return ws.finish(ell, rho, mu, iters, 1, residual);
        }
    }
    follow_path(&mut ws, ell, rho, settings)
}

/// Path following on (ℓ(s), ρ(s)) = s·(ℓ, ρ) from s₀ = start_level / min ℓ to s = 1: the
/// exponents s(ℓ_i ± ρ_i) of every stage stay within those of the problem itself, so a
/// problem in range has every stage in range. A stage whose Newton run fails is retried
/// from the last solved point with a smaller step in s.
fn follow_path(
    ws: &mut Workspace,
    ell: &DVector<f64>,
    rho: &DVector<f64>,
    settings: &NewtonSettings,
) -> Result<ImplicitSolution, SolveError> {
    let mut s = (settings.start_level.min(-1.0) / ell.min()).clamp(1e-12, 1.0);
    let mut mu = DVector::zeros(ws.x.nrows());
    // The last solved point (s, μ) and the one before, for the predictor.
    let mut solved: Vec<(f64, DVector<f64>)> = Vec::new();
    let (mut factor, mut iters, mut stages) = (2.0_f64, 0, 0);
    loop {
        let last = s >= 1.0;
        let tol = if last { settings.tol } else { settings.stage_tol };
        let budget = settings.max_iters.saturating_sub(iters);
        match ws.newton(&(ell * s), &(rho * s), &mut mu, tol, budget) {
            Ok((used, residual)) => {
                iters += used;
                stages += 1;
                if last {
                    return ws.finish(ell, rho, mu, iters, stages, residual);
                }
                factor = if used <= 3 {
                    factor * 2.0
                } else if used > 8 {
                    factor.sqrt().max(1.05)
                } else {
                    factor
                };
                solved.push((s, mu.clone()));
            }
            Err(e) => {
                // Back off: a shorter step from the last solved point.
                if solved.is_empty() || factor <= 1.05 || iters >= settings.max_iters {
                    return Err(e);
                }
                factor = factor.sqrt().max(1.05);
            }
        }
        let (s1, mu1) = solved.last().expect("at least one solved stage");
        let next = (s1 * factor).min(1.0);
        mu = match solved.len() {
            1 => mu1 * (next / s1),
            len => {
                let (s0, mu0) = &solved[len - 2];
                mu1 + (mu1 - mu0) * ((next - s1) / (s1 - s0))
            }
        };
        s = next;
    }
}

fn check_inputs(x: &DMatrix<f64>, y: &DVector<f64>, scales: &Scales) -> Result<(), SolveError> {
    let (n, d) = x.shape();
    let (ell, rho) = (&scales.ell, &scales.rho);
    if y.len() != n || ell.len() != d || rho.len() != d || scales.side.len() != d {
        return Err(SolveError::Shape(format!(
            "X is {n}×{d} but y has {}, ln α_∞² {} and ρ {} entries",
            y.len(),
            ell.len(),
            rho.len()
        )));
    }
    let finite = |v: &DVector<f64>| v.iter().all(|t| t.is_finite());
    if !(finite(y) && finite(ell) && finite(rho) && x.iter().all(|t| t.is_finite())) {
        return Err(SolveError::Numerical("non-finite input (X, y, ln α_∞² or ρ)".into()));
    }
    let top = ell.iter().zip(rho.iter()).map(|(l, r)| l + r.abs()).fold(f64::NEG_INFINITY, f64::max);
    if top > MAX_EXPONENT {
        return Err(SolveError::Numerical(format!(
            "α₊² or α₋² = exp(ln α_∞² ± ρ) overflows f64 (max ln α_∞² + |ρ| = {top:.4e}, the limit is \
             {MAX_EXPONENT}: α_∞ up to about 1e152); a gain this negative comes from a run that did not converge"
        )));
    }
    Ok(())
}

impl<'a> Workspace<'a> {
    fn new(x: &'a DMatrix<f64>, y: &'a DVector<f64>, side: &'a [Side]) -> Self {
        let (n, d) = x.shape();
        Self { x, side, y, z: DVector::zeros(d), grad: DVector::zeros(n), system: NewtonSystem::new(n, d) }
    }

    fn finish(
        &mut self,
        ell: &DVector<f64>,
        rho: &DVector<f64>,
        mu: DVector<f64>,
        newton_iters: usize,
        stages: usize,
        residual: f64,
    ) -> Result<ImplicitSolution, SolveError> {
        let beta =
            self.eval(ell, rho, &mu).map(|p| p.b).ok_or(SolveError::Numerical("overflow at the solution".into()))?;
        if !(residual <= MAX_RESIDUAL) {
            return Err(SolveError::Missed {
                method: "dual Newton (implicit problem)",
                reached: format!("relative residual ‖Xb − y‖/‖y‖ = {residual:.3e} at its rounding floor"),
                needed: format!("≤ {MAX_RESIDUAL:e}"),
            });
        }
        Ok(ImplicitSolution { beta, mu, newton_iters, stages, residual })
    }

    /// F, b and c at μ; `None` if an exponent leaves the range of f64.
    ///
    /// Written so no term cancels, whatever the scale: with a = |z|,
    /// b = sign(z)·½e^{ℓ+a}·(−expm1(−2a)), c = ½e^{ℓ+a}(1 + e^{−2a}), and F is taken
    /// up to its constant Σ e^ℓ: e^ℓ(cosh z − 1) = b·tanh(z/2). The naive
    /// ½(e^{ℓ+z} − e^{ℓ−z}) loses every digit when α_∞ is large and z tiny (the kernel
    /// regime, α ≥ 1e4), where b = α_∞² z to first order.
    fn eval(&mut self, ell: &DVector<f64>, rho: &DVector<f64>, mu: &DVector<f64>) -> Option<DualPoint> {
        self.z.copy_from(rho);
        // Xᵀμ as one dot product per (contiguous) column of X: no transposed copy.
        self.z.gemv_tr(1.0, self.x, mu, 1.0);
        let mut b = DVector::zeros(ell.len());
        let mut c = DVector::zeros(ell.len());
        let mut f = -mu.dot(self.y);
        for i in 0..ell.len() {
            let (z, a) = (self.z[i], self.z[i].abs());
            let top = match self.side[i] {
                Side::Both => a,
                Side::Plus => z,
                Side::Minus => -z,
                Side::Zero => 0.0,
            };
            if ell[i] + top > MAX_EXPONENT || !a.is_finite() {
                return None;
            }
            match self.side[i] {
                Side::Both => {
                    let half = 0.5 * (ell[i] + a).exp();
                    let decay = (-2.0 * a).exp();
                    b[i] = (half * -(-2.0 * a).exp_m1()).copysign(z);
                    c[i] = half * (1.0 + decay);
                    f += b[i] * (0.5 * z).tanh();
                }
                // One-sided (relative entropy): b = ±½e^{ℓ ± z}, its own curvature, and
                // F's term ½e^{ℓ ± z} = |b|.
                Side::Plus | Side::Minus => {
                    let s = if self.side[i] == Side::Plus { 1.0 } else { -1.0 };
                    let e = 0.5 * (ell[i] + s * z).exp();
                    b[i] = s * e;
                    c[i] = e;
                    f += e;
                }
                Side::Zero => (b[i], c[i]) = (0.0, 0.0),
            }
        }
        self.grad.copy_from(self.y);
        self.grad.gemv(1.0, self.x, &b, -1.0);
        Some(DualPoint { f, b, c })
    }

    /// Damped Newton from `mu` until ‖X b - y‖ ≤ tol ‖y‖ (or the Newton decrement
    /// reaches rounding). Returns iterations used and the final relative residual.
    fn newton(
        &mut self,
        ell: &DVector<f64>,
        rho: &DVector<f64>,
        mu: &mut DVector<f64>,
        tol: f64,
        budget: usize,
    ) -> Result<(usize, f64), SolveError> {
        let scale = numeric::norm(self.y).max(f64::MIN_POSITIVE);
        let mut point = match self.eval(ell, rho, mu) {
            Some(p) => p,
            None => {
                // A poor warm start: fall back to μ = 0, whose exponents ℓ ± ρ the
                // input check bounds.
                mu.fill(0.0);
                self.eval(ell, rho, mu).ok_or(SolveError::Numerical("exp(ln α_∞² ± ρ) overflows at μ = 0".into()))?
            }
        };
        let mut previous = f64::INFINITY;
        let mut single = false;
        for it in 0..=budget {
            let residual = numeric::norm(&self.grad) / scale;
            let floor = self.rounding_floor(ell);
            if residual <= tol || (residual <= floor && residual > 0.5 * previous) {
                return Ok((it, residual));
            }
            if it == budget {
                // Out of iterations: an answer within the acceptance bound is an answer.
                if residual <= MAX_RESIDUAL {
                    return Ok((it, residual));
                }
                return Err(SolveError::NotConverged { iters: it, residual, needed: MAX_RESIDUAL });
            }
            // Every step forms its own Hessian: reusing a factorisation for every other
            // step (Shamanskii) was measured no faster at 1,000 × 5,000, with a 10× larger
            // final residual at 300 × 3,000. It is f32 while far from the answer, and for
            // as long as its steps keep contracting the residual by 1e3 or more (then the
            // f32 error is not what limits the step).
            let contracting = single && residual <= 1e-3 * previous;
            let rough = (residual > SINGLE_PRECISION_ABOVE || contracting)
                .then(|| self.system.direction_f32(self.x, &point.c, &self.grad))
                .flatten()
                .filter(|dir| self.grad.dot(dir) < 0.0);
            single = rough.is_some();
            let dir = match rough {
                Some(dir) => dir,
                None => {
                    self.system.factorize(self.x, &point.c)?;
                    self.system.solve(&self.grad)
                }
            };
            let slope = self.grad.dot(&dir);
            if !(slope < 0.0) && residual <= floor {
                // No descent direction left at rounding level: nothing left to gain.
                return Ok((it, residual));
            }
            point = match self.line_search(ell, rho, mu, &dir, point, slope, residual * scale) {
                Ok(p) => p,
                Err(_) if residual <= floor => return Ok((it, residual)),
                Err(e) => return Err(e),
            };
            previous = residual;
        }
        unreachable!("the loop returns at it == budget")
    }

    /// 8 ε max_i (|ℓ_i| + |z_i|) at the last evaluated point (see [`NewtonSettings`]).
    fn rounding_floor(&self, ell: &DVector<f64>) -> f64 {
        let top = ell.iter().zip(self.z.iter()).map(|(l, z)| l.abs() + z.abs()).fold(0.0, f64::max);
        8.0 * f64::EPSILON * top
    }

    /// Backtracking: accept μ + tΔ when F decreases enough (Armijo) or, near the
    /// solution where F's decrease is below rounding, when the residual shrinks.
    #[allow(clippy::too_many_arguments)]
    fn line_search(
        &mut self,
        ell: &DVector<f64>,
        rho: &DVector<f64>,
        mu: &mut DVector<f64>,
        dir: &DVector<f64>,
        point: DualPoint,
        slope: f64,
        grad_norm: f64,
    ) -> Result<DualPoint, SolveError> {
        let mut t = 1.0;
        for _ in 0..60 {
            let trial = &*mu + t * dir;
            if let Some(p) = self.eval(ell, rho, &trial) {
                let armijo = p.f <= point.f + 1e-4 * t * slope;
                if armijo || numeric::norm(&self.grad) < (1.0 - 1e-4 * t) * grad_norm {
                    *mu = trial;
                    return Ok(p);
                }
            }
            t *= 0.5;
        }
        Err(SolveError::Numerical("line search failed: no decrease along the Newton direction".into()))
    }
}
