//! The run file written by `dlncheck train` and read by `gain` and `predict`:
//! `alpha`, `u`, `v`, `beta`, `gain`, `q_plus`, `q_minus` (d), `loss_history` and
//! `loss_steps` (thinned), `iters`, `stepsizes` (K) and, when recorded, `batches` (K × m).

use std::path::Path;

use nalgebra::DVector;

use crate::bias::EffectiveInit;
use crate::npz::{self, NpzReader, NpzWriter};
use crate::train::Run;
use crate::trajectory::read_alpha;

/// The final state of a run as stored on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub alpha: DVector<f64>,
    pub u: DVector<f64>,
    pub v: DVector<f64>,
    pub beta: DVector<f64>,
    pub gain: DVector<f64>,
    pub q_plus: DVector<f64>,
    pub q_minus: DVector<f64>,
    pub iters: usize,
}

impl RunRecord {
    pub fn from_run(run: &Run) -> Self {
        let eff = run.accumulator.effective_init(run.alpha.map(f64::ln));
        let w = &run.weights;
        Self {
            alpha: run.alpha.clone(),
            u: DVector::from_column_slice(&w.u),
            v: DVector::from_column_slice(&w.v),
            beta: DVector::from_column_slice(&w.b),
            q_plus: eff.q_plus(),
            q_minus: eff.q_minus(),
            gain: eff.gain,
            iters: run.iters,
        }
    }

    /// Gain, ρ = Σq₋ - Σq₊ and ln α.
    pub fn effective_init(&self) -> EffectiveInit {
        EffectiveInit { ln_alpha: self.alpha.map(f64::ln), gain: self.gain.clone(), rho: &self.q_minus - &self.q_plus }
    }

    /// The conservation law |u² - v²| = 2α² exp(-Gain) (theory/README.md § Theorem 1), coordinate-wise, as
    /// max_i ||(u_i - v_i)(u_i + v_i)| - 2α_i² exp(-Gain_i)| / (u_i² + v_i²). (A factor
    /// 1 - γ²g² < 0, i.e. |γg| > 1, flips the sign of u² - v².)
    ///
    /// The denominator is the scale at which the iterates carry u² - v²: where α_∞ is far
    /// below |u| (large gain on the support), u and v agree to every stored digit and
    /// only this scaled form is meaningful.
    pub fn conservation_residual(&self) -> f64 {
        (0..self.u.len())
            .map(|i| {
                let (u, v) = (self.u[i], self.v[i]);
                let law = (std::f64::consts::LN_2 + 2.0 * self.alpha[i].ln() - self.gain[i]).exp();
                (((u - v) * (u + v)).abs() - law).abs() / (u * u + v * v)
            })
            .fold(0.0, f64::max)
    }

    pub fn load(path: &Path) -> npz::Result<Self> {
        let mut f = NpzReader::open(path)?;
        if f.contains("grads") && !f.contains("iters") {
            return Err(f.error(
                "iters",
                "missing: this is a trajectory (alpha, stepsizes, grads), not a run file written by `train`; \
                 give it with --trajectory",
            ));
        }
        if f.contains("X") && !f.contains("iters") {
            return Err(
                f.error("iters", "missing: this is a problem file (X, y), not a run file; give it to --problem")
            );
        }
        let beta = f.vector("beta", None)?;
        let d = beta.len();
        let alpha = read_alpha(&mut f, d)?;
        let iters = f.scalar("iters")?;
        if !(iters >= 0.0 && iters.fract() == 0.0) {
            return Err(f.error("iters", format!("is {iters}, expected a step count")));
        }
        Ok(Self {
            alpha,
            u: f.vector("u", Some(d))?,
            v: f.vector("v", Some(d))?,
            gain: f.vector("gain", Some(d))?,
            q_plus: f.vector("q_plus", Some(d))?,
            q_minus: f.vector("q_minus", Some(d))?,
            beta,
            iters: iters as usize,
        })
    }
}

/// Writes a run atomically.
pub fn save_run(run: &Run, path: &Path, inputs: &[&Path]) -> npz::Result<()> {
    let rec = RunRecord::from_run(run);
    let mut w = NpzWriter::new();
    w.vector("alpha", &rec.alpha)
        .vector("u", &rec.u)
        .vector("v", &rec.v)
        .vector("beta", &rec.beta)
        .vector("gain", &rec.gain)
        .vector("q_plus", &rec.q_plus)
        .vector("q_minus", &rec.q_minus)
        .f64("loss_history", &[run.history.losses.len()], &run.history.losses)
        .i64("loss_steps", &[run.history.steps.len()], &to_i64(&run.history.steps))
        .i64("iters", &[], &[run.iters as i64])
        .f64("stepsizes", &[run.stepsizes.len()], &run.stepsizes);
    if let Some((m, rows)) = &run.batches {
        w.i64("batches", &[rows.len() / m, *m], &to_i64(rows));
    }
    w.write(path, inputs)
}

fn to_i64(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&s| s as i64).collect()
}

/// What a training loop that keeps only the online sums stores (the Python package's
/// `GainAccumulator.save`): `alpha`, `gain`, `q_plus`, `q_minus`, `rho` (d), `iters`,
/// optional `beta` (d). A run file without its weights `u`, `v`; `rho` is stored as
/// accumulated (q₋ − q₊ recomputed from the stored halves would differ in the last bit).
pub fn save_accumulated(
    path: &Path,
    eff: &EffectiveInit,
    steps: usize,
    beta: Option<&DVector<f64>>,
) -> npz::Result<()> {
    let mut w = NpzWriter::new();
    w.vector("alpha", &eff.ln_alpha.map(f64::exp))
        .vector("gain", &eff.gain)
        .vector("q_plus", &eff.q_plus())
        .vector("q_minus", &eff.q_minus())
        .vector("rho", &eff.rho)
        .f64("iters", &[], &[steps as f64]);
    if let Some(b) = beta {
        w.vector("beta", b);
    }
    w.write(path, &[])
}

/// A run file or an accumulator file: the effective initialisation, the conservation
/// residual (run files) and the final iterate when stored.
pub fn load_effective(path: &Path) -> npz::Result<(EffectiveInit, Option<f64>, Option<DVector<f64>>)> {
    let mut f = NpzReader::open(path)?;
    if f.contains("u") || !f.contains("q_plus") {
        let rec = RunRecord::load(path)?;
        return Ok((rec.effective_init(), Some(rec.conservation_residual()), Some(rec.beta)));
    }
    let gain = f.vector("gain", None)?;
    let d = gain.len();
    let alpha = read_alpha(&mut f, d)?;
    let rho = if f.contains("rho") {
        f.vector("rho", Some(d))?
    } else {
        f.vector("q_minus", Some(d))? - f.vector("q_plus", Some(d))?
    };
    let beta = if f.contains("beta") { Some(f.vector("beta", Some(d))?) } else { None };
    let eff = EffectiveInit { ln_alpha: alpha.map(f64::ln), gain, rho };
    Ok((eff, None, beta))
}
