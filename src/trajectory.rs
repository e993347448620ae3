//! What a run records: the gain accumulators (online, O(d) memory) and a thinned loss
//! history; and external trajectories (`alpha`, `stepsizes`, `grads`) recorded elsewhere.

use std::path::{Path, PathBuf};

use nalgebra::DVector;

use crate::bias::{self, EffectiveInit, SERIES_LIMIT};
use crate::model::{Model, Param};
use crate::npz::{self, NpzReader};

/// A factor 1 ∓ γ_k g_k that is exactly zero (the weights hit 0 and the theory's
/// logarithms are undefined) or not finite (γ·g overflowed).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("step {step}, coordinate {coord}: γ·g = {x}, so a factor 1 ∓ γ·g is {}", if x.is_finite() { "exactly 0" } else { "not finite" })]
pub struct DegenerateFactor {
    pub step: usize,
    pub coord: usize,
    pub x: f64,
}

/// Online sums Gain = Σ_k q(x_k) and ρ = Σ_k (q₋ - q₊)(x_k), with x_k = γ_k g_k; and,
/// when asked, the first-order gain Σ_k x_k² (theory/README.md § The claims: Gain ≈ Σ γ²g² for small γ).
#[derive(Debug, Clone, PartialEq)]
pub struct GainAccumulator {
    pub gain: DVector<f64>,
    pub rho: DVector<f64>,
    pub first_order: Option<DVector<f64>>,
    steps: usize,
    /// max over steps and coordinates of |x_k,i|.
    max_x: f64,
}

impl GainAccumulator {
    pub fn new(d: usize) -> Self {
        Self { gain: DVector::zeros(d), rho: DVector::zeros(d), first_order: None, steps: 0, max_x: 0.0 }
    }

    /// Also accumulates Σ_k x_k² (one more pass per step; batch-1 SGD then skips its
    /// fused update-and-accumulate loop).
    pub fn with_first_order(mut self) -> Self {
        self.first_order = Some(DVector::zeros(self.gain.len()));
        self
    }

    /// Adds one step's x = γ g. Allocation-free; when every |x_i| < 1/16 a branch-free
    /// series with just the terms this step's largest |x_i| needs (vectorised).
    pub fn add(&mut self, x: &[f64]) -> Result<(), DegenerateFactor> {
        self.add_bounded(x, max_abs(x))
    }

    /// [`Self::add`] when the caller already knows `max_abs` = max_i |x_i| (e.g.
    /// |γ r_i|·max_j |X_ij| for a batch-1 step, exact since rounding is monotone), saving
    /// a pass over x.
    ///
    /// Transactional: a step with a degenerate coordinate (checked before anything is
    /// added) leaves the accumulator as it was.
    pub fn add_bounded(&mut self, x: &[f64], max_abs: f64) -> Result<(), DegenerateFactor> {
        debug_assert_eq!(self::max_abs(x), max_abs);
        if !(max_abs < SERIES_LIMIT)
            && let Some(coord) = x.iter().position(|&xi| bias::degenerate(xi))
        {
            return Err(DegenerateFactor { step: self.steps, coord, x: x[coord] });
        }
        self.max_x = self.max_x.max(max_abs);
        if let Some(sq) = &mut self.first_order {
            sq.iter_mut().zip(x).for_each(|(s, xi)| *s += xi * xi);
        }
        if max_abs < SERIES_LIMIT {
            match bias::series_terms(max_abs) {
                1 => self.add_series::<1>(x),
                2 => self.add_series::<2>(x),
                3 => self.add_series::<3>(x),
                4 => self.add_series::<4>(x),
                5 | 6 => self.add_series::<6>(x),
                _ => self.add_series::<8>(x),
            }
        } else {
            let (gain, rho) = (self.gain.as_mut_slice(), self.rho.as_mut_slice());
            for ((g, r), &xi) in gain.iter_mut().zip(rho.iter_mut()).zip(x) {
                // Checked above: every coordinate has its increments.
                let (dq, dr) = bias::increments(xi).unwrap_or((f64::NAN, f64::NAN));
                *g += dq;
                *r += dr;
            }
        }
        self.steps += 1;
        Ok(())
    }

    /// Adds x_j = `x_of(j)` for j = 0..d in one pass, given `max_abs` = max_j |x_j| <
    /// [`SERIES_LIMIT`]: lets a caller fuse its own per-coordinate work (the weight update
    /// of a batch-1 SGD step) into the accumulation loop.
    #[inline(always)]
    pub fn add_fused(&mut self, max_abs: f64, mut x_of: impl FnMut(usize) -> f64) {
        debug_assert!(max_abs < SERIES_LIMIT && self.first_order.is_none());
        self.max_x = self.max_x.max(max_abs);
        match bias::series_terms(max_abs) {
            1 => self.add_series_with::<1>(&mut x_of),
            2 => self.add_series_with::<2>(&mut x_of),
            3 => self.add_series_with::<3>(&mut x_of),
            4 => self.add_series_with::<4>(&mut x_of),
            5 | 6 => self.add_series_with::<6>(&mut x_of),
            _ => self.add_series_with::<8>(&mut x_of),
        }
        self.steps += 1;
    }

    #[inline(always)]
    fn add_series_with<const K: usize>(&mut self, x_of: &mut impl FnMut(usize) -> f64) {
        let (gain, rho) = (self.gain.as_mut_slice(), self.rho.as_mut_slice());
        for (j, (g, r)) in gain.iter_mut().zip(rho.iter_mut()).enumerate() {
            let (dq, dr) = bias::series::<K>(x_of(j));
            *g += dq;
            *r += dr;
        }
    }

    #[inline(always)]
    fn add_series<const K: usize>(&mut self, x: &[f64]) {
        let (gain, rho) = (self.gain.as_mut_slice(), self.rho.as_mut_slice());
        for ((g, r), &xi) in gain.iter_mut().zip(rho.iter_mut()).zip(x) {
            let (dq, dr) = bias::series::<K>(xi);
            *g += dq;
            *r += dr;
        }
    }

    /// Counts a step that moves no gain (mirror descent: its factors e^{∓x} multiply to 1).
    pub fn count_step(&mut self) {
        self.steps += 1;
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The accumulator of `steps` steps whose sums were stored (a run or accumulator
    /// file): Gain and Σ(q₋ − q₊); the largest |x| is not stored, so it reads as 0.
    pub fn from_sums(gain: DVector<f64>, rho: DVector<f64>, steps: usize) -> Self {
        Self { gain, rho, first_order: None, steps, max_x: 0.0 }
    }

    /// max over the steps added and their coordinates of |x_k,i| = |γ_k g_k,i| (0 before
    /// any step), from the bounds the callers pass, which are exact maxima: the
    /// sign of every q, q₊, q₋ term follows from it (theory/README.md § Objects).
    pub fn max_abs_x(&self) -> f64 {
        self.max_x
    }
}

/// max_i |x_i| (0 for an empty slice), NaN if some x_i is NaN (so a NaN step is never
/// taken for a small one).
pub fn max_abs(x: &[f64]) -> f64 {
    // On the bits of |x_i| (sign cleared), integer order is numeric order, and every NaN
    // lies above ∞: one integer max, exact and NaN-sticky (measured at d = 1,000: 0.64
    // µs, against 0.41 µs for f64::max, which skips NaN, and 1.1 µs for a NaN branch).
    f64::from_bits(x.iter().map(|v| (v.to_bits() & !(1 << 63)) as i64).fold(0, i64::max) as u64)
}

/// A loss history thinned to at most `cap` points: when full, every other point is
/// dropped and the stride doubles, so the kept steps stay evenly spaced.
#[derive(Debug, Clone, PartialEq)]
pub struct LossHistory {
    pub steps: Vec<usize>,
    pub losses: Vec<f64>,
    stride: usize,
    cap: usize,
}

impl LossHistory {
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(2);
        Self { steps: Vec::with_capacity(cap), losses: Vec::with_capacity(cap), stride: 1, cap }
    }

    /// Offers the loss at `step`; kept when `step` falls on the current stride.
    pub fn offer(&mut self, step: usize, loss: f64) {
        if !step.is_multiple_of(self.stride) {
            return;
        }
        if self.steps.len() == self.cap {
            self.stride *= 2;
            let keep = |s: &usize| s.is_multiple_of(self.stride);
            let kept: Vec<(usize, f64)> =
                self.steps.iter().copied().zip(self.losses.iter().copied()).filter(|(s, _)| keep(s)).collect();
            (self.steps, self.losses) = kept.into_iter().unzip();
            if !step.is_multiple_of(self.stride) {
                return;
            }
        }
        self.steps.push(step);
        self.losses.push(loss);
    }

    /// Records the final point whatever the stride.
    pub fn finish(&mut self, step: usize, loss: f64) {
        if self.steps.last() != Some(&step) {
            self.steps.push(step);
            self.losses.push(loss);
        }
    }
}

/// A trajectory recorded elsewhere (the start: `alpha`, or `u0` and `v0`, md `alpha` and
/// `b0`; optional `param`; `stepsizes` (K), `grads` (K × d), optional `beta` and final
/// `u`, `v`): its small
/// arrays are read on [`Self::load`]; `grads` stays on disk and is streamed in blocks of
/// rows when the gain is accumulated, so memory is O(d + block).
#[derive(Debug, Clone)]
pub struct ExternalTrajectory {
    pub path: PathBuf,
    pub model: Model,
    pub stepsizes: Vec<f64>,
    pub beta: Option<DVector<f64>>,
    /// Whether `grads` or `beta` is stored as float32 (theory/README.md § Precision of a run).
    pub float32: bool,
    /// The final weights (w₊, w₋), from optional `u` and `v` (or `w_plus`, `w_minus`).
    pub weights: Option<(DVector<f64>, DVector<f64>)>,
}

/// Rows of `grads` read at a time (with d = 1,000, 8 MB).
const BLOCK_ROWS: usize = 1024;

/// Why the gain of a trajectory cannot be accumulated.
#[derive(Debug, thiserror::Error)]
pub enum TrajectoryError {
    #[error(transparent)]
    Input(#[from] npz::InputError),
    #[error("{}: {source}", file.display())]
    Degenerate { file: PathBuf, source: DegenerateFactor },
}

impl ExternalTrajectory {
    /// Reads and validates a trajectory file: `grads` must be (K, d) with K ≥ 1, d
    /// taken from it; `stepsizes` (K,) and > 0; the start ([`crate::runfile::read_model`]);
    /// `beta` (d,). `param` is the command line's --param, if given.
    pub fn load(path: &Path, param: Option<Param>) -> npz::Result<Self> {
        let mut f = NpzReader::open(path)?;
        if !f.contains("grads") && f.contains("X") {
            return Err(f.error("grads", "missing: this is a problem file (X, y); give it to --problem"));
        }
        if !f.contains("grads") && f.contains("iters") {
            return Err(f.error(
                "grads",
                "missing: this is a run file written by `train`; give it as --run (or to `gain` without --trajectory)",
            ));
        }
        let (k, d, grads32) = {
            let g = f.rows("grads")?;
            (g.rows, g.cols, g.is_float32())
        };
        if k == 0 || d == 0 {
            return Err(f.error("grads", format!("is empty ({k} steps × {d} coordinates)")));
        }
        let stepsizes = f.f64_array("stepsizes")?;
        if stepsizes.shape != [k] {
            let what = if stepsizes.shape.len() == 1 && stepsizes.shape[0] == d && d != k {
                format!(
                    "has shape {}; grads has {k} steps (rows) of d = {d}: is grads transposed (d × K)?",
                    npz::fmt_shape(&stepsizes.shape)
                )
            } else {
                format!("has shape {}, expected ({k},): one per row of grads", npz::fmt_shape(&stepsizes.shape))
            };
            return Err(f.error("stepsizes", what));
        }
        if let Some((i, g)) = stepsizes.data.iter().enumerate().find(|(_, g)| **g <= 0.0) {
            return Err(f.error("stepsizes", format!("entry {i} is {g}; stepsizes must be > 0")));
        }
        let model = crate::runfile::read_model(&mut f, d, param)?;
        let beta = if f.contains("beta") { Some(f.vector("beta", Some(d))?) } else { None };
        let float32 = grads32 || (beta.is_some() && f.is_low_precision("beta")?);
        let weights = crate::runfile::read_weights(&mut f, &model, d)?;
        if let (Some((wp, wm)), Some(b)) = (&weights, &beta) {
            let low = float32 || (f.contains("u") && f.is_low_precision("u")?);
            let unit = if low { crate::predict::F32_UNIT_ROUNDOFF } else { f64::EPSILON / 2.0 };
            crate::runfile::check_weights(&f, model.param, (wp, wm), b, unit)?;
        }
        Ok(Self { path: path.to_owned(), model, stepsizes: stepsizes.data, beta, float32, weights })
    }

    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    /// Adds this trajectory's steps x = s·γ·g to `acc` (s: the parametrisation's, see
    /// [`Param::x_scale`]), streaming `grads` by blocks of rows (mirror descent: read and
    /// checked, nothing to add).
    pub fn accumulate(&self, acc: &mut GainAccumulator) -> Result<(), TrajectoryError> {
        let d = self.dim();
        let s = self.model.param.x_scale();
        let mut f = NpzReader::open(&self.path)?;
        let mut rows = f.rows("grads")?;
        let (mut block, mut x) = (Vec::new(), vec![0.0; d]);
        let mut gammas = self.stepsizes.iter();
        while rows.next_rows(&mut block, BLOCK_ROWS)? > 0 {
            for (row, gamma) in block.chunks_exact(d).zip(&mut gammas) {
                if !self.model.param.has_gain() {
                    continue;
                }
                x.iter_mut().zip(row).for_each(|(xi, g)| *xi = s * gamma * g);
                acc.add(&x).map_err(|source| TrajectoryError::Degenerate { file: self.path.clone(), source })?;
            }
        }
        Ok(())
    }

    /// The effective initialisation of this trajectory alone.
    pub fn effective_init(&self) -> Result<EffectiveInit, TrajectoryError> {
        continued(std::slice::from_ref(self))
    }
}

/// The effective initialisation of one run logged in several files, in order: every
/// file must share the parametrisation and start (to the bit); the steps continue across
/// files.
pub fn continued(parts: &[ExternalTrajectory]) -> Result<EffectiveInit, TrajectoryError> {
    let first = parts.first().ok_or_else(|| npz::InputError {
        file: PathBuf::from("--trajectory"),
        array: None,
        what: "no trajectory file given".into(),
    })?;
    let mut acc = GainAccumulator::new(first.dim());
    for t in parts {
        if !same_model(&t.model, &first.model) {
            let what = format!(
                "differs from the first file's ({}): pieces of one run share the parametrisation, the start and d",
                first.path.display()
            );
            return Err(npz::InputError { file: t.path.clone(), array: Some("alpha".into()), what }.into());
        }
        t.accumulate(&mut acc)?;
    }
    Ok(first.model.effective_init(&acc))
}

/// Equal to the bit (so -0.0 and 0.0 differ, and NaN cannot occur: starts are checked).
fn same_model(a: &Model, b: &Model) -> bool {
    use crate::model::Init;
    let same = |x: &DVector<f64>, y: &DVector<f64>| {
        x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| p.to_bits() == q.to_bits())
    };
    a.param == b.param
        && match (&a.init, &b.init) {
            (Init::Alpha(x), Init::Alpha(y)) => same(x, y),
            (Init::Weights { u0, v0 }, Init::Weights { u0: p, v0: q }) => same(u0, p) && same(v0, q),
            (Init::Mirror { alpha, b0 }, Init::Mirror { alpha: p, b0: q }) => same(alpha, p) && same(b0, q),
            _ => false,
        }
}

/// Reads `alpha` (scalar or length d) and checks every entry is > 0.
pub fn read_alpha(f: &mut NpzReader, d: usize) -> npz::Result<DVector<f64>> {
    let a = f.f64_array("alpha")?;
    let alpha = match a.data.len() {
        1 if a.shape.len() <= 1 => DVector::from_element(d, a.data[0]),
        len if len == d && a.shape.len() == 1 => DVector::from_vec(a.data),
        _ => {
            return Err(
                f.error("alpha", format!("has shape {}, expected a scalar or ({d},)", npz::fmt_shape(&a.shape)))
            );
        }
    };
    if let Some((i, a)) = alpha.iter().enumerate().find(|(_, a)| **a <= 0.0) {
        return Err(f.error("alpha", format!("entry {i} is {a}; α must be > 0")));
    }
    Ok(alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// max_abs is f64's max of |x_i| where that exists, and NaN wherever a NaN is, at any
    /// position (so a NaN step never takes the series path for a small one).
    #[test]
    fn max_abs_is_exact_and_nan_sticky() {
        assert_eq!(max_abs(&[]), 0.0);
        assert_eq!(max_abs(&[-0.0]), 0.0);
        assert_eq!(max_abs(&[0.5, -0.7, 1e-310, 0.2]), 0.7);
        assert_eq!(max_abs(&[f64::MIN_POSITIVE, -f64::MAX]), f64::MAX);
        assert_eq!(max_abs(&[0.1, f64::NEG_INFINITY]), f64::INFINITY);
        for at in 0..4 {
            let mut x = vec![0.01, -0.02, 0.03, f64::INFINITY];
            x[at] = f64::NAN;
            assert!(max_abs(&x).is_nan(), "NaN at {at}");
        }
        let mut acc = GainAccumulator::new(3);
        assert!(acc.add(&[0.01, f64::NAN, 0.02]).is_err());
        assert_eq!((acc.steps(), acc.gain.sum()), (0, 0.0), "nothing added");
    }
}
