//! Weighted basis pursuit `argmin_{Xb=y} Σ_i w_i |b_i|` by the ℓ1 homotopy (the lasso
//! path, LARS with the lasso modification; Osborne, Presnell & Turlach 2000), with its
//! dual certificate read off the last segment (theory/README.md § Basis pursuit).
//!
//! With X̃ = X diag(1/w) and b̃ = w ⊙ b the problem is plain basis pursuit. The path
//! b̃(λ) = argmin ½‖y − X̃b̃‖² + λ‖b̃‖₁ starts at b̃ = 0 for λ = ‖X̃ᵀy‖∞ and ends, as λ → 0,
//! at the basis pursuit solution (X of full row rank). On it the active set A with signs s
//! satisfies X̃_Aᵀ(y − X̃b̃) = λs and |X̃_jᵀ(y − X̃b̃)| ≤ λ off A, so with G = X̃_AᵀX̃_A:
//!   b̃_A(λ) = G⁻¹(X̃_Aᵀy − λs),  moving along δ = G⁻¹s as λ decreases.
//! A segment ends when an inactive correlation reaches ±λ (the coordinate joins A) or an
//! active b̃_i reaches 0 (it leaves). On the last segment the residual is λ·X̃_Aδ, so
//! ν = X̃_A G⁻¹ s satisfies X̃_Aᵀν = s and |X̃_jᵀν| ≤ 1 for every j, i.e. |X_jᵀν| ≤ w_j:
//! a dual optimal point, also at a degenerate vertex (|A| < n: exact sparse recovery)
//! where the support alone leaves ν free. When |A| = n it is B⁻ᵀc_B of the optimal basis.
//! Each segment costs one pass over X (both correlations at once) and O(n|A|) for the
//! updated Cholesky factor of G; the end point and ν are recomputed from A and s by a QR
//! of X̃_A, and the caller certifies them (feasibility and duality gap).

use faer::linalg::triangular_solve::{solve_lower_triangular_in_place, solve_upper_triangular_in_place};
use faer::{Mat, MatRef, Par};
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

use super::SolveError;

/// The end of the homotopy: b (in the original coordinates) and the dual point ν.
#[derive(Debug, Clone, PartialEq)]
pub struct HomotopySolution {
    pub beta: DVector<f64>,
    pub nu: DVector<f64>,
    /// Segments followed (joins plus leaves).
    pub steps: usize,
}

/// Segments allowed per row of X before the path counts as failed (typical paths
/// take one to three per row).
const STEPS_PER_ROW: usize = 50;

/// y counts as in the span of the active columns when ‖y − P_A y‖ ≤ this · ‖y‖.
const SPAN_TOL: f64 = 1e-10;

/// Shapes of weighted basis pursuit, and weights finite and > 0.
pub(super) fn check_weighted_bp(x: &DMatrix<f64>, y: &DVector<f64>, w: &DVector<f64>) -> Result<(), SolveError> {
    let (n, d) = x.shape();
    if y.len() != n || w.len() != d {
        return Err(SolveError::Shape(format!("X is {n}×{d}, y has {}, weights {}", y.len(), w.len())));
    }
    match w.iter().enumerate().find(|(_, wi)| !(wi.is_finite() && **wi > 0.0)) {
        Some((i, wi)) => Err(SolveError::BadWeights(format!("weight {i} is {wi}; weights must be finite and > 0"))),
        None => Ok(()),
    }
}

/// Follows the path of `argmin_{Xb=y} Σ w_i|b_i|` to λ = 0.
pub fn l1_homotopy(x: &DMatrix<f64>, y: &DVector<f64>, w: &DVector<f64>) -> Result<HomotopySolution, SolveError> {
    check_weighted_bp(x, y, w)?;
    let (n, d) = x.shape();
    let mut xt = x.clone();
    for (j, mut col) in xt.column_iter_mut().enumerate() {
        col /= w[j];
    }
    let mut path = Path::new(xt, y);
    let mut steps = 0;
    while path.lambda > 0.0 {
        if steps >= STEPS_PER_ROW * n + 100 {
            return Err(SolveError::Missed {
                method: "basis pursuit (ℓ1 homotopy)",
                reached: format!("{steps} segments with λ = {:.3e} left", path.lambda),
                needed: "λ = 0".into(),
            });
        }
        path.step()?;
        steps += 1;
    }
    let (bt, nu) = path.end_point();
    let mut beta = DVector::zeros(d);
    for (k, &j) in path.active.iter().enumerate() {
        beta[j] = bt[k] / w[j];
    }
    Ok(HomotopySolution { beta, nu, steps })
}

/// What ends a segment: coordinate j joins A, or the k-th active coordinate leaves.
enum Event {
    Join(usize),
    Leave(usize),
}

/// One point of the path and its buffers (allocated once).
struct Path<'a> {
    /// X̃ = X diag(1/w), n × d.
    xt: DMatrix<f64>,
    y: &'a DVector<f64>,
    y_norm: f64,
    /// X̃ᵀy.
    xty: DVector<f64>,
    lambda: f64,
    /// A in the order of the Cholesky factor, its signs s, whether j ∈ A.
    active: Vec<usize>,
    signs: Vec<f64>,
    in_active: Vec<bool>,
    /// Lower Cholesky factor L of G = X̃_AᵀX̃_A in the leading |A| × |A| block.
    chol: Mat<f64>,
    /// The coordinate that entered or left at the last event (not allowed to undo it
    /// at t = 0).
    last: Option<usize>,
    /// Columns δ = G⁻¹s and b̃_A (first |A| rows).
    seg: Mat<f64>,
    /// r = y − X̃_Ab̃_A and v = X̃_Aδ.
    r: Vec<f64>,
    v: Vec<f64>,
    /// X̃ᵀr (correlations) and X̃ᵀv (their rates of change).
    corr: Vec<f64>,
    rate: Vec<f64>,
}

impl<'a> Path<'a> {
    fn new(xt: DMatrix<f64>, y: &'a DVector<f64>) -> Self {
        let (n, d) = xt.shape();
        let xty = xt.tr_mul(y);
        let (j0, lambda) =
            xty.iter().map(|v| v.abs()).enumerate().fold((0, 0.0), |m, (j, v)| if v > m.1 { (j, v) } else { m });
        let mut path = Self {
            xt,
            y,
            y_norm: crate::numeric::norm(y),
            xty,
            lambda,
            active: Vec::with_capacity(n),
            signs: Vec::with_capacity(n),
            in_active: vec![false; d],
            chol: Mat::zeros(n, n),
            last: None,
            seg: Mat::zeros(n, 2),
            r: vec![0.0; n],
            v: vec![0.0; n],
            corr: vec![0.0; d],
            rate: vec![0.0; d],
        };
        if lambda > 0.0 {
            let s = path.xty[j0].signum();
            // A one-column factor cannot fail: ‖x̃_j‖ > 0 since |x̃_jᵀy| > 0.
            let _ = path.add(j0, s);
        }
        path
    }

    /// Follows the current segment to its end (an event or λ = 0).
    fn step(&mut self) -> Result<(), SolveError> {
        let (n, k) = (self.xt.nrows(), self.active.len());
        // δ = G⁻¹s and G⁻¹X̃_Aᵀy by two triangular solves; b̃_A = G⁻¹X̃_Aᵀy − λδ.
        for (i, &j) in self.active.iter().enumerate() {
            self.seg[(i, 0)] = self.signs[i];
            self.seg[(i, 1)] = self.xty[j];
        }
        let l = self.chol.as_ref().submatrix(0, 0, k, k);
        let mut seg = self.seg.as_mut().submatrix_mut(0, 0, k, 2);
        solve_lower_triangular_in_place(l, seg.as_mut(), Par::Seq);
        solve_upper_triangular_in_place(l.transpose(), seg.as_mut(), Par::Seq);
        for i in 0..k {
            self.seg[(i, 1)] -= self.lambda * self.seg[(i, 0)];
        }
        // r = y − X̃_Ab̃_A and v = X̃_Aδ, then both correlations in one pass over X̃.
        self.r.copy_from_slice(self.y.as_slice());
        self.v.fill(0.0);
        for (i, &j) in self.active.iter().enumerate() {
            let (dl, b) = (self.seg[(i, 0)], self.seg[(i, 1)]);
            let col = &self.xt.as_slice()[j * n..(j + 1) * n];
            for ((r, v), x) in self.r.iter_mut().zip(self.v.iter_mut()).zip(col) {
                *r -= b * x;
                *v += dl * x;
            }
        }
        correlations(&self.xt, &self.r, &self.v, &mut self.corr, &mut self.rate);
        // y in the span of X̃_A (always once |A| = n): r = λ·X̃_Aδ, every correlation is
        // proportional to λ and would reach ±λ only at λ = 0; only leaves remain.
        let projection: f64 = self.r.iter().zip(&self.v).map(|(r, v)| (r - self.lambda * v).powi(2)).sum();
        let spanned = projection.sqrt() <= SPAN_TOL * self.y_norm;
        let join = if spanned { None } else { self.next_join() };
        // Once spanned, b̃_A(λ) = b̃_A(0) + λδ exactly; a b̃_i(0) at rounding level is a zero
        // of the end point (a degenerate vertex), not a coordinate leaving before λ = 0.
        let end_scale = if spanned {
            SPAN_TOL * (0..k).map(|i| (self.seg[(i, 1)] + self.lambda * self.seg[(i, 0)]).abs()).fold(0.0, f64::max)
        } else {
            -1.0
        };
        let leave = self.next_leave(end_scale);
        // The earlier event; a join wins a tie (min_by keeps the first of equals).
        let next = [join.map(|(t, j)| (t, Event::Join(j))), leave.map(|(t, k)| (t, Event::Leave(k)))]
            .into_iter()
            .flatten()
            .min_by(|a, b| a.0.total_cmp(&b.0));
        match next {
            Some((t, event)) if t < self.lambda => {
                self.lambda -= t;
                match event {
                    Event::Join(j) => self.add(j, (self.corr[j] - t * self.rate[j]).signum()),
                    Event::Leave(k) => {
                        self.remove(k);
                        Ok(())
                    }
                }
            }
            _ => {
                self.lambda = 0.0;
                Ok(())
            }
        }
    }

    /// The first t at which an inactive correlation c_j − t·a_j reaches ±(λ − t), and j.
    fn next_join(&self) -> Option<(f64, usize)> {
        let mut best: Option<(f64, usize)> = None;
        for j in 0..self.corr.len() {
            if self.in_active[j] || self.last == Some(j) {
                continue;
            }
            let (c, a) = (self.corr[j], self.rate[j]);
            for (num, den) in [(self.lambda - c, 1.0 - a), (self.lambda + c, 1.0 + a)] {
                let t = num.max(0.0) / den;
                if den > 0.0 && best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, j));
                }
            }
        }
        best
    }

    /// The first t at which an active b̃_k + t·δ_k reaches 0, and its position k;
    /// coordinates with |b̃_k(0)| ≤ `end_scale` (b̃_k(0) = b̃_k + λδ_k) are skipped.
    fn next_leave(&self, end_scale: f64) -> Option<(f64, usize)> {
        let mut best: Option<(f64, usize)> = None;
        for k in 0..self.active.len() {
            let (delta, coef) = (self.seg[(k, 0)], self.seg[(k, 1)]);
            let at_end = (coef + self.lambda * delta).abs() <= end_scale;
            if self.last == Some(self.active[k]) || coef * delta >= 0.0 || at_end {
                continue;
            }
            let t = (-coef / delta).max(0.0);
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, k));
            }
        }
        best
    }

    /// Appends j to A: the new row of L is (L⁻¹X̃_Aᵀx̃_j, √(‖x̃_j‖² − ‖L⁻¹X̃_Aᵀx̃_j‖²)).
    fn add(&mut self, j: usize, sign: f64) -> Result<(), SolveError> {
        let k = self.active.len();
        if k == self.xt.nrows() {
            return Err(SolveError::Numerical(format!(
                "ℓ1 homotopy: coordinate {j} would join a full active set (X rank-deficient or ties)"
            )));
        }
        let xj = self.xt.column(j);
        let mut row = Mat::from_fn(k, 1, |c, _| self.xt.column(self.active[c]).dot(&xj));
        solve_lower_triangular_in_place(self.chol.as_ref().submatrix(0, 0, k, k), row.as_mut(), Par::Seq);
        let norm2 = xj.norm_squared();
        let pivot = norm2 - row.squared_norm_l2();
        if !(pivot > 1e-24 * norm2) {
            return Err(SolveError::Numerical(format!(
                "ℓ1 homotopy: column {j} of X/w is in the span of the active columns (pivot {pivot:.3e})"
            )));
        }
        for c in 0..k {
            self.chol[(k, c)] = row[(c, 0)];
        }
        self.chol[(k, k)] = pivot.sqrt();
        self.active.push(j);
        self.signs.push(sign);
        self.in_active[j] = true;
        self.last = Some(j);
        Ok(())
    }

    /// Removes the k-th active coordinate: drop row k of L, then Givens rotations on
    /// columns (k, k+1), (k+1, k+2), … restore the lower triangle (G' = L'L'ᵀ).
    fn remove(&mut self, k: usize) {
        let m = self.active.len();
        let l = &mut self.chol;
        for i in k..m - 1 {
            for c in 0..=i + 1 {
                l[(i, c)] = l[(i + 1, c)];
            }
        }
        for c in k..m - 1 {
            let (a, b) = (l[(c, c)], l[(c, c + 1)]);
            let r = a.hypot(b);
            let (cs, sn) = (a / r, b / r);
            for i in c..m - 1 {
                let (u, v) = (l[(i, c)], l[(i, c + 1)]);
                l[(i, c)] = cs * u + sn * v;
                l[(i, c + 1)] = cs * v - sn * u;
            }
        }
        for c in 0..m {
            l[(m - 1, c)] = 0.0;
            l[(c, m - 1)] = 0.0;
        }
        let j = self.active.remove(k);
        self.signs.remove(k);
        self.in_active[j] = false;
        self.last = Some(j);
    }

    /// b̃_A = X̃_A⁺y and ν = X̃_A(X̃_AᵀX̃_A)⁻¹s from a QR of X̃_A (Q thin, R upper).
    fn end_point(&self) -> (Vec<f64>, DVector<f64>) {
        let (n, k) = (self.xt.nrows(), self.active.len());
        if k == 0 {
            return (Vec::new(), DVector::zeros(n));
        }
        let xa = Mat::from_fn(n, k, |i, c| self.xt[(i, self.active[c])]);
        let qr = xa.qr();
        let q = qr.compute_thin_Q();
        let r = qr.thin_R();
        let ys = MatRef::from_column_major_slice(self.y.as_slice(), n, 1);
        let mut bt = q.transpose() * ys;
        solve_upper_triangular_in_place(r, bt.as_mut(), Par::Seq);
        let mut z = Mat::from_fn(k, 1, |c, _| self.signs[c]);
        solve_lower_triangular_in_place(r.transpose(), z.as_mut(), Par::Seq);
        let nu = &q * &z;
        ((0..k).map(|c| bt[(c, 0)]).collect(), DVector::from_fn(n, |i, _| nu[(i, 0)]))
    }
}

/// corr_j = x̃_jᵀr and rate_j = x̃_jᵀv for every column, in one pass over X̃ (both
/// cores from 2¹⁸ entries on).
fn correlations(xt: &DMatrix<f64>, r: &[f64], v: &[f64], corr: &mut [f64], rate: &mut [f64]) {
    let n = xt.nrows();
    let dots = |(col, (c, a)): (&[f64], (&mut f64, &mut f64))| (*c, *a) = dot2(col, r, v);
    let cols = xt.as_slice();
    if cols.len() >= 1 << 18 {
        cols.par_chunks_exact(n).zip(corr.par_iter_mut().zip(rate.par_iter_mut())).for_each(dots);
    } else {
        cols.chunks_exact(n).zip(corr.iter_mut().zip(rate.iter_mut())).for_each(dots);
    }
}

/// (xᵀr, xᵀv) with eight running partial sums each, so the loop vectorises (the
/// summation order is fixed, hence reproducible).
fn dot2(x: &[f64], r: &[f64], v: &[f64]) -> (f64, f64) {
    const L: usize = 8;
    let (mut sr, mut sv) = ([0.0; L], [0.0; L]);
    let (xc, rc, vc) = (x.chunks_exact(L), r.chunks_exact(L), v.chunks_exact(L));
    let (xt, rt, vt) = (xc.remainder(), rc.remainder(), vc.remainder());
    for ((x, r), v) in xc.zip(rc).zip(vc) {
        for l in 0..L {
            sr[l] += x[l] * r[l];
            sv[l] += x[l] * v[l];
        }
    }
    let tail = |y: &[f64]| xt.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    (sr.iter().sum::<f64>() + tail(rt), sv.iter().sum::<f64>() + tail(vt))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// L Lᵀ − X̃_AᵀX̃_A in max norm.
    fn factor_error(path: &Path) -> f64 {
        let k = path.active.len();
        let l = DMatrix::from_fn(k, k, |i, j| path.chol[(i, j)]);
        let xa = path.xt.select_columns(&path.active);
        (&l * l.transpose() - xa.tr_mul(&xa)).amax()
    }

    #[test]
    fn cholesky_updates_track_the_gram_matrix() {
        let p = crate::problem::ProblemSpec { n: 8, d: 12, n_test: 0, ..Default::default() }.generate().unwrap();
        let mut path = Path::new(p.x, &p.y);
        for j in [3, 7, 0, 9, 5] {
            if !path.in_active[j] {
                path.add(j, 1.0).unwrap();
            }
        }
        assert!(factor_error(&path) < 1e-10, "after adds: {:e}", factor_error(&path));
        for from_end in [false, false, true] {
            let k = if from_end { path.active.len() - 2 } else { path.active.len() / 3 };
            path.remove(k);
            assert!(factor_error(&path) < 1e-10, "after removing position {k}: {:e}", factor_error(&path));
            let k = path.active.len();
            let outside = (0..8).flat_map(|i| (0..8).map(move |j| (i, j))).filter(|&(i, j)| i >= k || j >= k);
            assert!(outside.into_iter().all(|(i, j)| path.chol[(i, j)] == 0.0), "L lives in the leading block");
        }
    }

    /// On a 1 × 2 problem the path is known in closed form: b = y/x₁ on the larger
    /// column, ν = sign(y)/|x₁|.
    #[test]
    fn one_row_problem_in_closed_form() {
        let x = DMatrix::from_row_slice(1, 2, &[2.0, -0.5]);
        let y = DVector::from_vec(vec![3.0]);
        let w = DVector::from_vec(vec![1.0, 1.0]);
        let h = l1_homotopy(&x, &y, &w).unwrap();
        assert_eq!(h.beta.as_slice(), &[1.5, 0.0]);
        assert!((h.nu[0] - 0.5).abs() < 1e-15);
        // Weight 5 on the first column makes the second cheaper: |b₂| = 6 at cost 6 < 7.5.
        let h = l1_homotopy(&x, &y, &DVector::from_vec(vec![5.0, 1.0])).unwrap();
        assert!((h.beta[1] + 6.0).abs() < 1e-14 && h.beta[0] == 0.0, "{:?}", h.beta);
    }
}
