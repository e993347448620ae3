//! The allocation-free inner loops of training. Column-major X for GD (one pass over X
//! per step), row-major X for SGD (only the batch rows are touched).

use crate::bias::SERIES_LIMIT;
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

/// The weights and their product, b = u ⊙ v.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub u: Vec<f64>,
    pub v: Vec<f64>,
    pub b: Vec<f64>,
}

impl Weights {
    /// u_0 = sqrt(2) α, v_0 = 0, so b_0 = 0.
    pub fn init(alpha: &[f64]) -> Self {
        let d = alpha.len();
        Self { u: alpha.iter().map(|a| std::f64::consts::SQRT_2 * a).collect(), v: vec![0.0; d], b: vec![0.0; d] }
    }

    /// The update with x = c·row, writing x into `xs` in the same pass (batch-1 SGD).
    #[inline]
    pub fn update_scaled(&mut self, c: f64, row: &[f64], xs: &mut [f64]) {
        let d = row.len();
        let (u, v, b, xs) = (&mut self.u[..d], &mut self.v[..d], &mut self.b[..d], &mut xs[..d]);
        for j in 0..d {
            let xj = c * row[j];
            xs[j] = xj;
            let (u0, v0) = (u[j], v[j]);
            u[j] = u0 - xj * v0;
            v[j] = v0 - xj * u0;
            b[j] = u[j] * v[j];
        }
    }

    /// One simultaneous update per coordinate with x = γ g:
    /// u ← u - x v, v ← v - x u, b = u v.
    #[inline]
    pub fn update(&mut self, x: &[f64]) {
        for (((u, v), b), &xj) in self.u.iter_mut().zip(self.v.iter_mut()).zip(self.b.iter_mut()).zip(x) {
            let (u0, v0) = (*u, *v);
            *u = u0 - xj * v0;
            *v = v0 - xj * u0;
            *b = *u * *v;
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
/// x_j = γ/n <X_j, r>, update (u_j, v_j, b_j), then r_next += X_j b_j.
/// On return `xs` holds x = γ g and `r_next` = X b_next - y.
pub fn gd_step(x_cm: &[f64], y: &[f64], gamma: f64, w: &mut Weights, r: &[f64], r_next: &mut [f64], xs: &mut [f64]) {
    let n = y.len();
    let scale = gamma / n as f64;
    r_next.iter_mut().zip(y).for_each(|(ri, yi)| *ri = -yi);
    for (j, col) in x_cm.chunks_exact(n).enumerate() {
        let xj = scale * dot(col, r);
        xs[j] = xj;
        let (u0, v0) = (w.u[j], w.v[j]);
        let (u1, v1) = (u0 - xj * v0, v0 - xj * u0);
        w.u[j] = u1;
        w.v[j] = v1;
        w.b[j] = u1 * v1;
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
pub fn gd_step_blocked(
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
    let weights = w.u.par_chunks_mut(GD_BLOCK).zip(w.v.par_chunks_mut(GD_BLOCK)).zip(w.b.par_chunks_mut(GD_BLOCK));
    partials.par_chunks_mut(n).zip(cols).zip(weights).for_each(|((part, (block, xs)), ((u, v), b))| {
        part.fill(0.0);
        for (j, col) in block.chunks_exact(n).enumerate() {
            let xj = scale * dot(col, r);
            xs[j] = xj;
            let (u0, v0) = (u[j], v[j]);
            (u[j], v[j]) = (u0 - xj * v0, v0 - xj * u0);
            b[j] = u[j] * v[j];
            axpy(part, b[j], col);
        }
    });
    r_next.iter_mut().zip(y).for_each(|(ri, yi)| *ri = -yi);
    for part in partials.chunks_exact(n) {
        r_next.iter_mut().zip(part).for_each(|(ri, p)| *ri += p);
    }
}

/// One stochastic step on the batch `rows` of row-major X (n × d), gain included:
/// r_i = <x_i, b> - y_i, x = γ/m Σ_i r_i x_i, the weight update, and Gain, ρ += q(x),
/// (q₋ - q₊)(x). `row_max[i]` = max_j |X_ij| bounds |x| for batch 1 without a pass, so
/// the update and the accumulation share one loop there. `xs` is scratch of length d.
/// Returns Σ r_i² over the batch.
#[allow(clippy::too_many_arguments)]
pub fn sgd_step(
    x_rm: &[f64],
    row_max: &[f64],
    y: &[f64],
    rows: &[usize],
    gamma: f64,
    w: &mut Weights,
    xs: &mut [f64],
    acc: &mut GainAccumulator,
) -> Result<f64, DegenerateFactor> {
    let d = w.b.len();
    let scale = gamma / rows.len() as f64;
    if let [i] = rows {
        let row = &x_rm[i * d..(i + 1) * d];
        let ri = dot(row, &w.b) - y[*i];
        let c = scale * ri;
        let bound = c.abs() * row_max[*i];
        if bound < SERIES_LIMIT && acc.first_order.is_none() {
            let (u, v, b) = (&mut w.u[..d], &mut w.v[..d], &mut w.b[..d]);
            acc.add_fused(bound, |j| {
                let xj = c * row[j];
                let (u0, v0) = (u[j], v[j]);
                (u[j], v[j]) = (u0 - xj * v0, v0 - xj * u0);
                b[j] = u[j] * v[j];
                xj
            });
        } else {
            w.update_scaled(c, row, xs);
            acc.add_bounded(xs, bound)?;
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
    w.update(xs);
    acc.add(xs)?;
    Ok(batch_sq)
}
