//! Sparse-regression problems: the seeded generator, `.npz` I/O, and the checks an
//! interpolation problem needs (d > n, X of full row rank).

use std::path::Path;

use nalgebra::{DMatrix, DVector};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::limits;
use crate::npz::{self, InputError, NpzReader, NpzWriter};

/// A regression problem: X (n × d), y (n), and optionally the planted b* and a test set.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub x: DMatrix<f64>,
    pub y: DVector<f64>,
    pub beta_star: Option<DVector<f64>>,
    pub x_test: Option<DMatrix<f64>>,
    pub y_test: Option<DVector<f64>>,
}

/// Settings of the sparse-regression generator.
///
/// | field | default | meaning |
/// |---|---|---|
/// | n, d | 20, 30 | samples, features |
/// | sparsity | 3 | nonzeros of b* |
/// | mean | 0 | mean of every feature (≥ 1: uncentred data) |
/// | noise | 0 | standard deviation of the label noise |
/// | n_test | 100 | held-out samples |
/// | scale_decades | 0 | feature j is scaled by 10^(−scale_decades·u_j), u_j ~ U[0,1] |
/// | seed | 0 | ChaCha8 seed: same problem on every machine |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProblemSpec {
    pub n: usize,
    pub d: usize,
    pub sparsity: usize,
    pub mean: f64,
    pub noise: f64,
    pub n_test: usize,
    pub scale_decades: f64,
    pub seed: u64,
    /// b* ≥ 0 (its draws' signs dropped; everything else drawn as without it): a target
    /// X|b*| that sign-constrained starts (b ≥ 0) can interpolate.
    pub positive: bool,
}

impl Default for ProblemSpec {
    fn default() -> Self {
        Self {
            n: 20,
            d: 30,
            sparsity: 3,
            mean: 0.0,
            noise: 0.0,
            n_test: 100,
            scale_decades: 0.0,
            seed: 0,
            positive: false,
        }
    }
}

impl ProblemSpec {
    /// Draws the problem: X_ij ~ s_j·N(mean, 1) with s_j = 10^(−scale_decades·u_j) (u_j
    /// ~ U[0,1] from a stream of its own, so scale_decades = 0 leaves every draw as it
    /// was); b* has `sparsity` nonzeros on a uniform random support, each ±(1 + |N(0,1)|);
    /// y = X b* + noise·N(0,1).
    pub fn generate(&self) -> Result<Problem, String> {
        if self.n == 0 || self.d == 0 {
            return Err(format!("n and d must be ≥ 1 (got n={}, d={})", self.n, self.d));
        }
        if self.sparsity > self.d {
            return Err(format!("sparsity {} exceeds d = {}", self.sparsity, self.d));
        }
        let rows = (self.n as u128) + (self.n_test as u128);
        limits::check_alloc(
            &format!("a {}×{} problem with {} test rows", self.n, self.d, self.n_test),
            rows * self.d as u128,
            8,
        )?;
        if !(self.mean.is_finite() && self.noise.is_finite() && self.noise >= 0.0) {
            return Err(format!("mean must be finite and noise ≥ 0 (got {}, {})", self.mean, self.noise));
        }
        if !(0.0..=MAX_SCALE_DECADES).contains(&self.scale_decades) {
            return Err(format!("scale_decades must be in [0, {MAX_SCALE_DECADES}] (got {})", self.scale_decades));
        }
        let mut scale_rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x7363_616c_6573);
        let scales: Vec<f64> =
            (0..self.d).map(|_| 10f64.powf(-self.scale_decades * scale_rng.random::<f64>())).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut beta_star = DVector::zeros(self.d);
        for i in rand::seq::index::sample(&mut rng, self.d, self.sparsity) {
            let mag = 1.0 + normal(&mut rng).abs();
            let plus = rng.random::<bool>();
            beta_star[i] = if plus || self.positive { mag } else { -mag };
        }
        let draw = |rng: &mut ChaCha8Rng, rows: usize| {
            let mut x = DMatrix::zeros(rows, self.d);
            // Fill row by row so the draw order is the row-major order of the file.
            for i in 0..rows {
                for j in 0..self.d {
                    x[(i, j)] = scales[j] * (self.mean + normal(rng));
                }
            }
            let y = &x * &beta_star + DVector::from_fn(rows, |_, _| self.noise * normal(rng));
            (x, y)
        };
        let (x, y) = draw(&mut rng, self.n);
        let (x_test, y_test) = draw(&mut rng, self.n_test);
        let has_test = self.n_test > 0;
        Ok(Problem {
            x,
            y,
            beta_star: Some(beta_star),
            x_test: has_test.then_some(x_test),
            y_test: has_test.then_some(y_test),
        })
    }
}

/// Largest spread of feature scales the generator accepts (10 decades).
pub const MAX_SCALE_DECADES: f64 = 10.0;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

impl Problem {
    /// The same draw with a given b* (d entries): y = X b* + the drawn noise, on the
    /// training and the test rows.
    pub fn with_beta_star(mut self, beta_star: DVector<f64>) -> Result<Self, String> {
        let old = self.beta_star.take().unwrap_or_else(|| DVector::zeros(self.d()));
        if beta_star.len() != self.d() {
            return Err(format!("b* has {} entries, the problem has d = {}", beta_star.len(), self.d()));
        }
        self.y += &self.x * (&beta_star - &old);
        if let (Some(xt), Some(yt)) = (&self.x_test, &mut self.y_test) {
            *yt += xt * (&beta_star - &old);
        }
        self.beta_star = Some(beta_star);
        Ok(self)
    }

    pub fn n(&self) -> usize {
        self.x.nrows()
    }

    pub fn d(&self) -> usize {
        self.x.ncols()
    }

    /// Reads a problem file: `X` (n×d), `y` (n); optional `beta_star`, `X_test`, `y_test`.
    pub fn load(path: &Path) -> npz::Result<Self> {
        let mut f = NpzReader::open(path)?;
        let x = f.matrix("X", None)?;
        let (n, d) = x.shape();
        if n == 0 || d == 0 {
            return Err(f.error("X", format!("is empty ({n}×{d})")));
        }
        let y = f.f64_array("y")?;
        if y.shape != [n] {
            let what = match y.shape[..] {
                [m] if m == d && d != n => {
                    format!("has {m} entries, X is {n}×{d}: is X transposed? (X must be n × d, one row per sample)")
                }
                _ => {
                    format!("has shape {}, expected ({n},): one label per row of X ({n}×{d})", npz::fmt_shape(&y.shape))
                }
            };
            return Err(f.error("y", what));
        }
        let y = DVector::from_vec(y.data);
        let beta_star = if f.contains("beta_star") { Some(f.vector("beta_star", Some(d))?) } else { None };
        let (x_test, y_test) = match (f.contains("X_test"), f.contains("y_test")) {
            (false, false) => (None, None),
            (true, true) => {
                let xt = f.matrix("X_test", Some(d))?;
                let yt = f.vector("y_test", Some(xt.nrows()))?;
                (Some(xt), Some(yt))
            }
            (true, false) => return Err(f.error("y_test", "missing (X_test is present)")),
            (false, true) => return Err(f.error("X_test", "missing (y_test is present)")),
        };
        Ok(Self { x, y, beta_star, x_test, y_test })
    }

    /// Writes the problem to `path`, refusing to write over any of `inputs`.
    pub fn save(&self, path: &Path, inputs: &[&Path]) -> npz::Result<()> {
        let mut w = NpzWriter::new();
        w.matrix("X", &self.x).vector("y", &self.y);
        if let Some(b) = &self.beta_star {
            w.vector("beta_star", b);
        }
        if let (Some(xt), Some(yt)) = (&self.x_test, &self.y_test) {
            w.matrix("X_test", xt).vector("y_test", yt);
        }
        w.write(path, inputs)
    }

    /// An input error unless d > n.
    pub fn check_overparametrised(&self, file: &Path) -> npz::Result<()> {
        let (n, d) = self.x.shape();
        if n >= d {
            let what = format!("is {n}×{d}: need d > n (overparametrised) for interpolators");
            return Err(InputError { file: file.to_owned(), array: Some("X".into()), what });
        }
        Ok(())
    }

    /// Checks that interpolators X b = y exist and are not unique: d > n and X of full
    /// row rank. Row rank does not change when columns or rows are scaled, so X is first
    /// equilibrated (each column, then each row, to max |entry| = 1: no scale over- or
    /// underflows, and columns of 1e-20 and 1e20 weigh alike); then as numpy's
    /// `matrix_rank`: the smallest singular value against max(n, d)·ε·σ_max. A condition
    /// number of 1e12 is full rank; only rows dependent to rounding are not.
    pub fn check_interpolation(&self, file: &Path) -> npz::Result<()> {
        self.check_overparametrised(file)?;
        let err = |what: String| InputError { file: file.to_owned(), array: Some("X".into()), what };
        let (n, d) = self.x.shape();
        let mut unit = self.x.clone();
        for mut col in unit.column_iter_mut().filter(|c| c.amax() > 0.0) {
            col /= col.amax();
        }
        for i in 0..n {
            let top = unit.row(i).amax();
            if !(top > 0.0) {
                return Err(err(format!(
                    "{n}×{d} is rank-deficient: row {i} is zero, so X b = y has no solution unless y_{i} = 0"
                )));
            }
            unit.row_mut(i).scale_mut(1.0 / top);
        }
        let unit = faer::Mat::from_fn(n, d, |i, j| unit[(i, j)]);
        let sigma =
            unit.singular_values().map_err(|e| err(format!("its singular values failed to converge: {e:?}")))?;
        let (top, bottom) = (sigma.first().copied().unwrap_or(0.0), sigma.last().copied().unwrap_or(0.0));
        let tol = n.max(d) as f64 * f64::EPSILON * top;
        if bottom > tol {
            Ok(())
        } else {
            Err(err(format!(
                "{n}×{d} is rank-deficient: its smallest singular value is {:.3e} of the largest (at most {:.1e} is rank \
                 deficiency); rows linearly dependent, X b = y may have no solution",
                bottom / top,
                tol / top
            )))
        }
    }

    /// Test loss ½ mean (X_test b - y_test)², when a test set is present.
    pub fn test_loss(&self, b: &DVector<f64>) -> Option<f64> {
        let (xt, yt) = (self.x_test.as_ref()?, self.y_test.as_ref()?);
        Some((xt * b - yt).norm_squared() / (2.0 * yt.len() as f64))
    }

    /// Training loss L(b) = 1/(2n) |X b - y|².
    pub fn loss(&self, b: &DVector<f64>) -> f64 {
        (&self.x * b - &self.y).norm_squared() / (2.0 * self.n() as f64)
    }
}
