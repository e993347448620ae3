//! The allocation-free inner loops of training. Column-major X for GD (one pass over X
//! per step), row-major X for SGD (only the batch rows are touched).

use crate::bias::SERIES_LIMIT;
use crate::model::{Model, Param, beta_of};
use crate::trajectory::{DegenerateFactor, GainAccumulator};

/// Σ a_i b_i: with 8 independent accumulators for short vectors and 32 for long ones
/// (enough to hide the add latency on wide vector units), so the loop vectorises; the
/// summation order depends only on the length, so results are reproducible.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    if a.len() >= 256 { dot_lanes::<32>(a, b) } else { dot_lanes::<8>(a, b) }
}

#[inline(always)]
fn dot_lanes<const W: usize>(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; W];
    let (ca, cb) = (a.chunks_exact(W), b.chunks_exact(W));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for k in 0..W {
            acc[k] += xa[k] * xb[k];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    // Pairwise reduction of the lanes (W is a power of two).
    let mut width = W / 2;
    while width > 0 {
        for k in 0..width {
            acc[k] += acc[k + width];
        }
        width /= 2;
    }
    acc[0] + tail
}

/// y += a x.
#[inline]
pub fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// The weights of a run in the coordinates that evolve multiplicatively, w₊ and w₋
/// (theory/README.md § Other starts and parametrisations), and b = ½(w₊² − w₋²).
/// Neither weight is ever formed from a difference, so the smaller keeps every digit
/// however far below the larger it falls.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub w_plus: Vec<f64>,
    pub w_minus: Vec<f64>,
    pub b: Vec<f64>,
}

/// How one step moves (w₊, w₋) given x = s·γ·g (theory/README.md § Other starts and
/// parametrisations): [`Linear`] for b = u ⊙ v and b = u² − v², [`ExpSeries`] or [`Exp`]
/// for mirror descent, [`Depth`] for b = u^D − v^D; and how the weights make b.
pub trait Factors {
    fn apply(wp: f64, wm: f64, x: f64) -> (f64, f64);

    /// b = ½(w₊² − w₋²).
    #[inline(always)]
    fn beta(wp: f64, wm: f64) -> f64 {
        beta_of(wp, wm)
    }
}

/// b = u^D − v^D with (w₊, w₋) = (u, v): u ← u − x D u^{D−1}, v ← v + x D v^{D−1}
/// (x = γg; theory/README.md § Deeper networks and momentum).
pub struct Depth<const D: i32>;

impl<const D: i32> Factors for Depth<D> {
    #[inline(always)]
    fn apply(u: f64, v: f64, x: f64) -> (f64, f64) {
        let k = x * D as f64;
        (u - k * u.powi(D - 1), v + k * v.powi(D - 1))
    }

    #[inline(always)]
    fn beta(u: f64, v: f64) -> f64 {
        u.powi(D) - v.powi(D)
    }
}

/// Runs `$body` with `$F` the [`Depth`] factors of depth `$d` (3..=8, checked by
/// [`crate::model::Param::parse`]).
macro_rules! with_depth_factors {
    ($d:expr, $F:ident => $body:expr) => {
        match $d {
            3 => {
                type $F = $crate::train::kernels::Depth<3>;
                $body
            }
            4 => {
                type $F = $crate::train::kernels::Depth<4>;
                $body
            }
            5 => {
                type $F = $crate::train::kernels::Depth<5>;
                $body
            }
            6 => {
                type $F = $crate::train::kernels::Depth<6>;
                $body
            }
            7 => {
                type $F = $crate::train::kernels::Depth<7>;
                $body
            }
            _ => {
                type $F = $crate::train::kernels::Depth<8>;
                $body
            }
        }
    };
}

/// w₊ ← (1 − x) w₊, w₋ ← (1 + x) w₋.
pub struct Linear;

impl Factors for Linear {
    #[inline(always)]
    fn apply(wp: f64, wm: f64, x: f64) -> (f64, f64) {
        (wp - x * wp, wm + x * wm)
    }
}

/// w₊ ← e^{−x} w₊, w₋ ← e^{x} w₋ by the library's exponential (any x).
pub struct Exp;

impl Factors for Exp {
    #[inline(always)]
    fn apply(wp: f64, wm: f64, x: f64) -> (f64, f64) {
        let e = (-x).exp();
        (wp * e, wm / e)
    }
}

/// e^{∓x} = E ∓ O from K terms of the even part E = Σ_k x^{2k}/(2k)! and of the odd part
/// O = Σ_k x^{2k+1}/(2k+1)!, exact to rounding while |x| ≤ [`EXP_LIMITS`]`[K − 1]`: no
/// call and no division, so the loop over coordinates vectorises.
pub struct ExpSeries<const K: usize>;

impl<const K: usize> Factors for ExpSeries<K> {
    #[inline(always)]
    fn apply(wp: f64, wm: f64, x: f64) -> (f64, f64) {
        let t = x * x;
        let (mut even, mut odd) = (0.0, 0.0);
        for k in (0..K).rev() {
            even = even * t + INV_FACTORIAL[2 * k];
            odd = odd * t + INV_FACTORIAL[2 * k + 1];
        }
        odd *= x;
        (wp * (even - odd), wm * (even + odd))
    }
}

/// 1/j! for j < 16.
const INV_FACTORIAL: [f64; 16] = {
    let mut f = [1.0; 16];
    let mut j = 1;
    while j < 16 {
        f[j] = f[j - 1] / j as f64;
        j += 1;
    }
    f
};

/// The largest |x| at which K = 1, 2, … 8 terms of [`ExpSeries`] reach rounding: the
/// first omitted term x^{2K}/(2K)! is at most 2⁻⁵⁴ (relative to E ≥ 1).
pub const EXP_LIMITS: [f64; 8] = [1.05e-8, 1.9e-4, 5.8e-3, 0.0349, 0.107, 0.233, 0.417, 0.655];

/// Terms of [`ExpSeries`] a step needs when every |x| ≤ `max_abs`; `None` above the
/// table (or for NaN): use [`Exp`].
pub fn exp_terms(max_abs: f64) -> Option<usize> {
    EXP_LIMITS.iter().position(|l| max_abs <= *l).map(|k| k + 1)
}

/// Runs `$body` with `$F` the mirror-descent [`Factors`] for steps whose |x| ≤ `$bound`:
/// [`ExpSeries`] with as few terms as reach rounding, or [`Exp`] beyond its table.
macro_rules! with_exp_factors {
    ($bound:expr, $F:ident => $body:expr) => {
        match $crate::train::kernels::exp_terms($bound) {
            Some(1) => {
                type $F = $crate::train::kernels::ExpSeries<1>;
                $body
            }
            Some(2) => {
                type $F = $crate::train::kernels::ExpSeries<2>;
                $body
            }
            Some(3) => {
                type $F = $crate::train::kernels::ExpSeries<3>;
                $body
            }
            Some(4) => {
                type $F = $crate::train::kernels::ExpSeries<4>;
                $body
            }
            Some(5) | Some(6) => {
                type $F = $crate::train::kernels::ExpSeries<6>;
                $body
            }
            Some(_) => {
                type $F = $crate::train::kernels::ExpSeries<8>;
                $body
            }
            None => {
                type $F = $crate::train::kernels::Exp;
                $body
            }
        }
    };
}

/// One coordinate's step: the new (w₊, w₋) and b = ½(w₊² − w₋²).
#[inline(always)]
pub fn advance<F: Factors>(wp: f64, wm: f64, x: f64) -> (f64, f64, f64) {
    let (p, m) = F::apply(wp, wm, x);
    (p, m, F::beta(p, m))
}

impl Weights {
    /// From the signed w±,₀ of a start.
    pub fn init(model: &Model) -> Self {
        let (wp, wm) = model.start();
        let b = wp.iter().zip(wm.iter()).map(|(p, m)| model.param.beta(*p, *m)).collect();
        Self { w_plus: wp.as_slice().to_vec(), w_minus: wm.as_slice().to_vec(), b }
    }

    /// The update with x = c·row, writing x into `xs` in the same pass (batch-1 SGD).
    #[inline]
    pub fn update_scaled<F: Factors>(&mut self, c: f64, row: &[f64], xs: &mut [f64]) {
        let d = row.len();
        let (wp, wm, b, xs) = (&mut self.w_plus[..d], &mut self.w_minus[..d], &mut self.b[..d], &mut xs[..d]);
        for j in 0..d {
            let xj = c * row[j];
            xs[j] = xj;
            (wp[j], wm[j], b[j]) = advance::<F>(wp[j], wm[j], xj);
        }
    }

    /// One simultaneous update per coordinate with x = s γ g.
    #[inline]
    pub fn update<F: Factors>(&mut self, x: &[f64]) {
        let (wp, wm, b) = (&mut self.w_plus, &mut self.w_minus, &mut self.b);
        for (j, &xj) in x.iter().enumerate() {
            (wp[j], wm[j], b[j]) = advance::<F>(wp[j], wm[j], xj);
        }
    }
}

/// r = X b - y for column-major X (n × d); one pass over X.
pub fn residual_cm(x_cm: &[f64], y: &[f64], b: &[f64], r: &mut [f64]) {
    let n = y.len();
    r.iter_mut().zip(y).for_each(|(ri, yi)| *ri = -yi);
    for (col, &bj) in x_cm.chunks_exact(n).zip(b) {
        axpy(r, bj, col);
    }
}

/// One full-batch GD step in a single pass over X: for each column j,
/// x_j = γ/n <X_j, r> (γ already times the parametrisation's s), update (w₊, w₋, b)_j,
/// then r_next += X_j b_j. On return `xs` holds x and `r_next` = X b_next - y.
pub fn gd_step<F: Factors>(
    x_cm: &[f64],
    y: &[f64],
    gamma: f64,
    w: &mut Weights,
    r: &[f64],
    r_next: &mut [f64],
    xs: &mut [f64],
) {
    let n = y.len();
    let scale = gamma / n as f64;
    r_next.iter_mut().zip(y).for_each(|(ri, yi)| *ri = -yi);
    for (j, col) in x_cm.chunks_exact(n).enumerate() {
        let xj = scale * dot(col, r);
        xs[j] = xj;
        (w.w_plus[j], w.w_minus[j], w.b[j]) = advance::<F>(w.w_plus[j], w.w_minus[j], xj);
        axpy(r_next, w.b[j], col);
    }
}

/// Problems with n·d at least this large take the blocked, parallel GD step.
pub const PARALLEL_MIN_ENTRIES: usize = 1 << 20;

/// Columns per block of the blocked GD step (fixed, so results do not depend on the
/// number of threads).
pub const GD_BLOCK: usize = 256;

/// [`gd_step`] over blocks of [`GD_BLOCK`] columns in parallel: each block accumulates
/// its own part of X b_next, and the parts are summed in block order, so the result is
/// the same whatever the thread count. `partials` holds one n-vector per block.
#[allow(clippy::too_many_arguments)]
pub fn gd_step_blocked<F: Factors>(
    x_cm: &[f64],
    y: &[f64],
    gamma: f64,
    w: &mut Weights,
    r: &[f64],
    r_next: &mut [f64],
    xs: &mut [f64],
    partials: &mut [f64],
) {
    use rayon::prelude::*;
    let n = y.len();
    let scale = gamma / n as f64;
    let cols = x_cm.par_chunks(GD_BLOCK * n).zip(xs.par_chunks_mut(GD_BLOCK));
    let weights =
        w.w_plus.par_chunks_mut(GD_BLOCK).zip(w.w_minus.par_chunks_mut(GD_BLOCK)).zip(w.b.par_chunks_mut(GD_BLOCK));
    partials.par_chunks_mut(n).zip(cols).zip(weights).for_each(|((part, (block, xs)), ((wp, wm), b))| {
        part.fill(0.0);
        for (j, col) in block.chunks_exact(n).enumerate() {
            let xj = scale * dot(col, r);
            xs[j] = xj;
            (wp[j], wm[j], b[j]) = advance::<F>(wp[j], wm[j], xj);
            axpy(part, b[j], col);
        }
    });
    r_next.iter_mut().zip(y).for_each(|(ri, yi)| *ri = -yi);
    for part in partials.chunks_exact(n) {
        r_next.iter_mut().zip(part).for_each(|(ri, p)| *ri += p);
    }
}

/// One stochastic step on the batch `rows` of row-major X (n × d), gain included:
/// r_i = <x_i, b> - y_i, x = γ/m Σ_i r_i x_i (γ already times s), the weight update,
/// and Gain, ρ += q(x), (q₋ - q₊)(x) into `acc` (None: no gain, the same weights).
/// Mirror descent moves by e^{∓x} and has no gain. `row_max[i]` = max_j |X_ij|
/// bounds |x| for batch 1 without a pass, so the update and the accumulation share one
/// loop there. Depth D (`param`) moves (u, v) by [`Depth`] and has no gain. `xs` is
/// scratch of length d. Returns Σ r_i² over the batch.
#[allow(clippy::too_many_arguments)]
pub fn sgd_step(
    x_rm: &[f64],
    row_max: &[f64],
    y: &[f64],
    rows: &[usize],
    gamma: f64,
    w: &mut Weights,
    xs: &mut [f64],
    acc: Option<&mut GainAccumulator>,
    param: Param,
) -> Result<f64, DegenerateFactor> {
    let d = w.b.len();
    let scale = gamma / rows.len() as f64;
    if let [i] = rows {
        let row = &x_rm[i * d..(i + 1) * d];
        let ri = dot(row, &w.b) - y[*i];
        let c = scale * ri;
        let bound = c.abs() * row_max[*i];
        if let Param::Depth(depth) = param {
            with_depth_factors!(depth, F => w.update_scaled::<F>(c, row, xs));
            return Ok(ri * ri);
        }
        if param == Param::Md {
            with_exp_factors!(bound, F => w.update_scaled::<F>(c, row, xs));
            return Ok(ri * ri);
        }
        match acc {
            Some(acc) if bound < SERIES_LIMIT && acc.first_order.is_none() => {
                let (wp, wm, b) = (&mut w.w_plus[..d], &mut w.w_minus[..d], &mut w.b[..d]);
                acc.add_fused(bound, |j| {
                    let xj = c * row[j];
                    (wp[j], wm[j], b[j]) = advance::<Linear>(wp[j], wm[j], xj);
                    xj
                });
            }
            Some(acc) => {
                w.update_scaled::<Linear>(c, row, xs);
                acc.add_bounded(xs, bound)?;
            }
            None => w.update_scaled::<Linear>(c, row, xs),
        }
        return Ok(ri * ri);
    }
    xs.fill(0.0);
    let mut batch_sq = 0.0;
    for &i in rows {
        let row = &x_rm[i * d..(i + 1) * d];
        let ri = dot(row, &w.b) - y[i];
        batch_sq += ri * ri;
        axpy(xs, scale * ri, row);
    }
    if let Param::Depth(depth) = param {
        with_depth_factors!(depth, F => w.update::<F>(xs));
        return Ok(batch_sq);
    }
    if param == Param::Md {
        with_exp_factors!(crate::trajectory::max_abs(xs), F => w.update::<F>(xs));
        return Ok(batch_sq);
    }
    match acc {
        Some(acc) => {
            w.update::<Linear>(xs);
            acc.add(xs)?;
        }
        None => w.update::<Linear>(xs),
    }
    Ok(batch_sq)
}

/// The previous weights of a momentum run (velocity = w − prev) and, for Nesterov, the
/// iterate at the look-ahead point w + μ(w − prev) where the gradient is taken.
#[derive(Debug, Clone, PartialEq)]
pub struct MomentumState {
    pub prev_plus: Vec<f64>,
    pub prev_minus: Vec<f64>,
    /// Nesterov: b at the look-ahead point where the next gradient is taken (heavy ball
    /// takes it at the iterate, `Weights::b`, and leaves this unused).
    pub b_eval: Vec<f64>,
}

impl MomentumState {
    /// Zero velocity at the start.
    pub fn new(w: &Weights) -> Self {
        Self { prev_plus: w.w_plus.clone(), prev_minus: w.w_minus.clone(), b_eval: w.b.clone() }
    }
}

/// One coordinate's momentum step given x = s·γ·g at the evaluation point: heavy ball
/// w ← step(w) + μ(w − prev); Nesterov w ← step(w + μ(w − prev)). Moves prev to w and
/// returns the new b and the b of the next evaluation point.
#[inline(always)]
fn advance_momentum<F: Factors>(
    (wp, wm): (&mut f64, &mut f64),
    (pp, pm): (&mut f64, &mut f64),
    x: f64,
    mu: f64,
    nesterov: bool,
) -> (f64, f64) {
    let (p, m) = (*wp, *wm);
    let (vp, vm) = (p - *pp, m - *pm);
    let (np, nm) = if nesterov {
        F::apply(p + mu * vp, m + mu * vm, x)
    } else {
        let (gp, gm) = F::apply(p, m, x);
        (gp + mu * vp, gm + mu * vm)
    };
    (*pp, *pm, *wp, *wm) = (p, m, np, nm);
    let b = F::beta(np, nm);
    let b_eval = if nesterov { F::beta(np + mu * (np - p), nm + mu * (nm - m)) } else { b };
    (b, b_eval)
}

/// One full-batch momentum step in a single pass over X ([`gd_step`] with momentum
/// `mu`): `r_eval` is the residual at the evaluation point; on return `r_next` holds
/// X b_next − y and `r_eval_next` the next evaluation point's residual (Nesterov; heavy
/// ball leaves it untouched, its evaluation point is the iterate).
#[allow(clippy::too_many_arguments)]
pub fn gd_step_momentum<F: Factors>(
    x_cm: &[f64],
    y: &[f64],
    (gamma, mu, nesterov): (f64, f64, bool),
    w: &mut Weights,
    mom: &mut MomentumState,
    r_eval: &[f64],
    r_next: &mut [f64],
    r_eval_next: &mut [f64],
    xs: &mut [f64],
) {
    let n = y.len();
    let scale = gamma / n as f64;
    r_next.iter_mut().zip(y).for_each(|(ri, yi)| *ri = -yi);
    if nesterov {
        r_eval_next.iter_mut().zip(y).for_each(|(ri, yi)| *ri = -yi);
    }
    for (j, col) in x_cm.chunks_exact(n).enumerate() {
        let xj = scale * dot(col, r_eval);
        xs[j] = xj;
        let (b, b_eval) = advance_momentum::<F>(
            (&mut w.w_plus[j], &mut w.w_minus[j]),
            (&mut mom.prev_plus[j], &mut mom.prev_minus[j]),
            xj,
            mu,
            nesterov,
        );
        w.b[j] = b;
        axpy(r_next, b, col);
        if nesterov {
            mom.b_eval[j] = b_eval;
            axpy(r_eval_next, b_eval, col);
        }
    }
}

/// One stochastic momentum step on the batch `rows` of row-major X: the batch gradient
/// at the evaluation point (the iterate, or Nesterov's `mom.b_eval`), then every
/// coordinate's momentum step.
/// Returns Σ r_i² over the batch (at the evaluation point).
#[allow(clippy::too_many_arguments)]
pub fn sgd_step_momentum<F: Factors>(
    x_rm: &[f64],
    y: &[f64],
    rows: &[usize],
    (gamma, mu, nesterov): (f64, f64, bool),
    w: &mut Weights,
    mom: &mut MomentumState,
    xs: &mut [f64],
) -> f64 {
    let d = w.b.len();
    let scale = gamma / rows.len() as f64;
    xs.fill(0.0);
    let mut batch_sq = 0.0;
    let at = if nesterov { &mom.b_eval } else { &w.b };
    for &i in rows {
        let row = &x_rm[i * d..(i + 1) * d];
        let ri = dot(row, at) - y[i];
        batch_sq += ri * ri;
        axpy(xs, scale * ri, row);
    }
    for (j, &xj) in xs.iter().enumerate() {
        let (b, b_eval) = advance_momentum::<F>(
            (&mut w.w_plus[j], &mut w.w_minus[j]),
            (&mut mom.prev_plus[j], &mut mom.prev_minus[j]),
            xj,
            mu,
            nesterov,
        );
        w.b[j] = b;
        if nesterov {
            mom.b_eval[j] = b_eval;
        }
    }
    batch_sq
}
