//! The Newton system of the dual problem: H Δ = −g with H = X diag(c) Xᵀ (n × n, SPD),
//! formed as the lower triangle of A Aᵀ, A = X diag(√c) (a symmetric rank-d update:
//! half the flops of a general product), factored by a blocked Cholesky, both on
//! every core (faer, rayon). Every buffer is allocated once per solve.
//! Far from the answer a single-precision system gives the direction in half the time
//! ([`NewtonSystem::direction_f32`]); the iterations that decide the answer use f64.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::traits::ComplexField;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use nalgebra::{DMatrix, DVector};

use super::SolveError;

/// Buffers of the Newton system of an n × d problem.
pub struct NewtonSystem {
    /// A = X diag(√c), n × d, column-major.
    scaled: Vec<f64>,
    /// Lower triangle of H.
    hessian: Mat<f64>,
    /// H (+ ridge) being factored.
    factor: Mat<f64>,
    rhs: Mat<f64>,
    mem: MemBuffer,
    /// The same in f32: A/√c_max, H/c_max (factored in place), the right-hand side.
    scaled32: Vec<f32>,
    factor32: Mat<f32>,
    rhs32: Mat<f32>,
    mem32: MemBuffer,
    par: Par,
}

impl NewtonSystem {
    pub fn new(n: usize, d: usize) -> Self {
        let par = if n * n * d >= 1 << 22 { Par::rayon(0) } else { Par::Seq };
        let req = llt::factor::cholesky_in_place_scratch::<f64>(n, par, Default::default())
            .or(llt::solve::solve_in_place_scratch::<f64>(n, 1, par));
        let req32 = llt::factor::cholesky_in_place_scratch::<f32>(n, par, Default::default())
            .or(llt::solve::solve_in_place_scratch::<f32>(n, 1, par));
        Self {
            scaled: vec![0.0; n * d],
            hessian: Mat::zeros(n, n),
            factor: Mat::zeros(n, n),
            rhs: Mat::zeros(n, 1),
            mem: MemBuffer::new(req),
            scaled32: vec![0.0; n * d],
            factor32: Mat::zeros(n, n),
            rhs32: Mat::zeros(n, 1),
            mem32: MemBuffer::new(req32),
            par,
        }
    }

    /// −H⁻¹g from H formed and factored in f32 (as H/c_max, so no entry over- or
    /// underflows; the right-hand side is g/‖g‖), or `None` when that factorisation
    /// fails or gives a non-finite direction. Half the time of the f64 system; its
    /// relative error (~1e-5 for a well-conditioned H) does not matter while the step
    /// is damped, far from the answer. The caller checks that it is a descent direction.
    pub fn direction_f32(&mut self, x: &DMatrix<f64>, c: &DVector<f64>, g: &DVector<f64>) -> Option<DVector<f64>> {
        let n = x.nrows();
        let c_max = c.max();
        let g_norm = g.norm();
        if !(c_max > 0.0 && c_max.is_finite() && g_norm > 0.0 && g_norm.is_finite()) {
            return None;
        }
        lower_gram(&mut self.scaled32, self.factor32.as_mut(), x, c, c_max, |v| v as f32, self.par);
        let stack = MemStack::new(&mut self.mem32);
        llt::factor::cholesky_in_place(self.factor32.as_mut(), Default::default(), self.par, stack, Default::default())
            .ok()?;
        for i in 0..n {
            self.rhs32[(i, 0)] = (-g[i] / g_norm) as f32;
        }
        llt::solve::solve_in_place(self.factor32.as_ref(), self.rhs32.as_mut(), self.par, stack);
        let dir = DVector::from_fn(n, |i, _| f64::from(self.rhs32[(i, 0)]) * (g_norm / c_max));
        dir.iter().all(|v| v.is_finite()).then_some(dir)
    }

    /// The lower triangle of H = A Aᵀ, A = X diag(√c).
    fn form(&mut self, x: &DMatrix<f64>, c: &DVector<f64>) {
        lower_gram(&mut self.scaled, self.hessian.as_mut(), x, c, 1.0, |v| v, self.par);
    }

    /// Factors H + r I = L Lᵀ, H = X diag(c) Xᵀ, with the smallest ridge r ∈ {0,
    /// 1e-15·max diag H, ×100, …} that lets the Cholesky factorisation through: when fewer
    /// than n coordinates carry curvature (c spans e^-200..1), H is SPD in exact arithmetic
    /// but not in floating point; the ridge only damps the step.
    pub fn factorize(&mut self, x: &DMatrix<f64>, c: &DVector<f64>) -> Result<(), SolveError> {
        let n = x.nrows();
        self.form(x, c);
        let top = (0..n).map(|i| self.hessian[(i, i)]).fold(0.0, f64::max);
        let mut ridge = 0.0;
        loop {
            for j in 0..n {
                for i in j..n {
                    self.factor[(i, j)] = self.hessian[(i, j)];
                }
                self.factor[(j, j)] += ridge;
            }
            let stack = MemStack::new(&mut self.mem);
            let factored = llt::factor::cholesky_in_place(
                self.factor.as_mut(),
                Default::default(),
                self.par,
                stack,
                Default::default(),
            );
            if factored.is_ok() {
                return Ok(());
            }
            ridge = if ridge == 0.0 { 1e-15 * top } else { ridge * 100.0 };
            if !(ridge < top) {
                return Err(SolveError::Numerical(
                    "the dual Hessian X diag(α_∞² cosh z) Xᵀ is not positive definite (is X of full row rank?)".into(),
                ));
            }
        }
    }

    /// −(L Lᵀ)⁻¹ g with the last factorisation (two triangular solves, O(n²)).
    pub fn solve(&mut self, g: &DVector<f64>) -> DVector<f64> {
        let n = g.len();
        for i in 0..n {
            self.rhs[(i, 0)] = -g[i];
        }
        let stack = MemStack::new(&mut self.mem);
        llt::solve::solve_in_place(self.factor.as_ref(), self.rhs.as_mut(), self.par, stack);
        DVector::from_fn(n, |i, _| self.rhs[(i, 0)])
    }
}

/// The lower triangle of A Aᵀ into `out`, A = X diag(√(c / c_scale)) written into
/// `scaled` (n × d, column-major) in the precision `cast` gives.
fn lower_gram<T: ComplexField + Copy>(
    scaled: &mut [T],
    out: MatMut<'_, T>,
    x: &DMatrix<f64>,
    c: &DVector<f64>,
    c_scale: f64,
    cast: fn(f64) -> T,
    par: Par,
) {
    let (n, d) = x.shape();
    let columns = scaled.chunks_exact_mut(n).zip(x.as_slice().chunks_exact(n));
    for ((a, xj), cj) in columns.zip(c.iter()) {
        let s = (cj.max(0.0) / c_scale).sqrt();
        for (ai, xi) in a.iter_mut().zip(xj) {
            *ai = cast(s * xi);
        }
    }
    let a = MatRef::from_column_major_slice(scaled, n, d);
    let (lower, full) = (BlockStructure::TriangularLower, BlockStructure::Rectangular);
    matmul(out, lower, Accum::Replace, a, full, a.transpose(), full, cast(1.0), par);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against nalgebra's dense product and Cholesky: the same Δ, and H Δ = −g.
    #[test]
    fn matches_the_dense_solve() {
        for (n, d) in [(5, 9), (40, 200)] {
            let x = crate::problem::ProblemSpec { n, d, ..Default::default() }.generate().unwrap().x;
            let c = DVector::from_fn(d, |j, _| 0.5 + (j % 5) as f64);
            let g = DVector::from_fn(n, |i, _| (i as f64).cos());
            let h = &x * DMatrix::from_diagonal(&c) * x.transpose();
            let expected = -h.clone().cholesky().unwrap().solve(&g);
            let mut system = NewtonSystem::new(n, d);
            system.factorize(&x, &c).unwrap();
            let got = system.solve(&g);
            assert!((&got - &expected).norm() <= 1e-10 * expected.norm(), "{n}×{d}");
            assert!((h * &got + &g).norm() <= 1e-9 * g.norm());
        }
    }

    /// The f32 direction is the f64 one to single-precision accuracy (× κ), a descent
    /// direction, and scale-free: c × 1e100 and g × 1e-100 leave it as it was, scaled.
    #[test]
    fn single_precision_direction_is_close_and_scale_free() {
        let x = crate::problem::ProblemSpec { n: 40, d: 200, ..Default::default() }.generate().unwrap().x;
        let c = DVector::from_fn(200, |j, _| 0.01 * (1.0 + (j % 7) as f64 * 30.0));
        let g = DVector::from_fn(40, |i, _| (i as f64).sin());
        let mut system = NewtonSystem::new(40, 200);
        system.factorize(&x, &c).unwrap();
        let exact = system.solve(&g);
        let rough = system.direction_f32(&x, &c, &g).unwrap();
        let rel = (&rough - &exact).norm() / exact.norm();
        assert!(rel < 1e-4 && rel > 0.0, "relative error {rel:e}");
        assert!(g.dot(&rough) < 0.0);
        // H⁻¹g scales by 1e-200 and nothing leaves f32's range on the way.
        let scaled = system.direction_f32(&x, &(&c * 1e100), &(&g * 1e-100)).unwrap();
        assert!((&scaled * 1e200 - &rough).norm() <= 1e-12 * rough.norm());
        assert!(system.direction_f32(&x, &DVector::zeros(200), &g).is_none(), "no curvature: no direction");
    }
}
