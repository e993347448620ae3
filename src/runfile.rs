//! The run file written by `dlncheck train` and read by `gain` and `predict`: `param`
//! (uv, u2v2 or md) and the start (`alpha`; or `u0`, `v0`; md: `alpha`, `b0`), the final
//! `w_plus`, `w_minus` (the weights that move multiplicatively), `u`, `v` (not for md),
//! `beta`, `gain`, `q_plus`, `q_minus` (d), `loss_history` and `loss_steps` (thinned),
//! `iters`, the stepsizes as runs of equal values (`stepsize_values`, `stepsize_counts`: γ
//! repeated that many steps; `np.repeat` expands them) and, when recorded, `batches`
//! (K × m). Files without `param`
//! are uv; without `w_plus`, `w_minus` these come from `u`, `v`.

use std::path::Path;

use nalgebra::DVector;

use crate::bias::EffectiveInit;
use crate::model::{Init, Model, Param};
use crate::npz::{self, NpzReader, NpzWriter};
use crate::predict::Precision;
use crate::train::Run;
use crate::trajectory::{GainAccumulator, read_alpha};

/// The final state of a run as stored on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub model: Model,
    pub w_plus: DVector<f64>,
    pub w_minus: DVector<f64>,
    pub beta: DVector<f64>,
    pub gain: DVector<f64>,
    pub q_plus: DVector<f64>,
    pub q_minus: DVector<f64>,
    pub iters: usize,
}

impl RunRecord {
    pub fn from_run(run: &Run) -> Self {
        let eff = run.model.effective_init(&run.accumulator);
        let w = &run.weights;
        Self {
            model: run.model.clone(),
            w_plus: DVector::from_column_slice(&w.w_plus),
            w_minus: DVector::from_column_slice(&w.w_minus),
            beta: DVector::from_column_slice(&w.b),
            q_plus: eff.q_plus(),
            q_minus: eff.q_minus(),
            gain: eff.gain,
            iters: run.iters,
        }
    }

    /// The start's ln|w±,₀|, the gain and Σ(q₋ − q₊).
    pub fn effective_init(&self) -> EffectiveInit {
        let mut acc = GainAccumulator::new(self.gain.len());
        acc.gain = self.gain.clone();
        acc.rho = &self.q_minus - &self.q_plus;
        self.model.effective_init(&acc)
    }

    /// The conservation law |w₊ w₋| = |w₊,₀ w₋,₀| exp(-Gain) (uv: |u² − v²| = 2α² e^{−Gain};
    /// theory/README.md § Other starts and parametrisations), coordinate-wise, as
    /// max_i ||w₊ w₋| − |w₊,₀ w₋,₀| e^{−Gain}| / (w₊² + w₋²): relative to the scale at which
    /// the weights carry the product.
    pub fn conservation_residual(&self) -> f64 {
        let ell = self.effective_init().ln_alpha_inf2();
        (0..self.w_plus.len())
            .map(|i| {
                let (p, m) = (self.w_plus[i], self.w_minus[i]);
                let scale = p * p + m * m;
                if scale == 0.0 { 0.0 } else { ((p * m).abs() - ell[i].exp()).abs() / scale }
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
        let model = read_model(&mut f, d, None)?;
        let iters = f.scalar("iters")?;
        if !(iters >= 0.0 && iters.fract() == 0.0) {
            return Err(f.error("iters", format!("is {iters}, expected a step count")));
        }
        let (w_plus, w_minus) = read_weights(&mut f, &model, d)?.ok_or_else(|| {
            f.error("u", "missing: a run file stores its final weights (u and v, or w_plus and w_minus)")
        })?;
        check_weights(&f, model.param, (&w_plus, &w_minus), &beta, f64::EPSILON / 2.0)?;
        Ok(Self {
            model,
            w_plus,
            w_minus,
            gain: f.vector("gain", Some(d))?,
            q_plus: f.vector("q_plus", Some(d))?,
            q_minus: f.vector("q_minus", Some(d))?,
            beta,
            iters: iters as usize,
        })
    }
}

/// Reads the parametrisation (`param`, default uv, or `forced` when the command line names
/// one) and the start (`u0`, `v0`; or `alpha` with md's optional `b0`), checked against d.
pub fn read_model(f: &mut NpzReader, d: usize, forced: Option<Param>) -> npz::Result<Model> {
    let stored = if f.contains("param") {
        Some(Param::parse(&f.text("param")?).map_err(|what| f.error("param", what))?)
    } else {
        None
    };
    if let (Some(p), Some(s)) = (forced, stored)
        && p != s
    {
        let what = format!("is '{}' but --param {} was given: drop --param or make them agree", s.name(), p.name());
        return Err(f.error("param", what));
    }
    let param = forced.or(stored).unwrap_or_default();
    let init = if f.contains("u0") || f.contains("v0") {
        Init::Weights { u0: f.vector("u0", Some(d))?, v0: f.vector("v0", Some(d))? }
    } else if f.contains("b0") {
        Init::Mirror { alpha: read_alpha(f, d)?, b0: f.vector("b0", Some(d))? }
    } else {
        Init::Alpha(read_alpha(f, d)?)
    };
    let model = Model { param, init };
    model.check(d).map_err(|what| {
        let array = match &model.init {
            Init::Weights { .. } => "u0",
            Init::Mirror { .. } => "b0",
            Init::Alpha(_) => "alpha",
        };
        f.error(array, what)
    })?;
    Ok(model)
}

/// Writes the parametrisation and the start as [`read_model`] reads them.
pub fn write_model(w: &mut NpzWriter, model: &Model) {
    w.text("param", &model.param.name());
    match &model.init {
        Init::Alpha(a) => w.vector("alpha", a),
        Init::Weights { u0, v0 } => w.vector("u0", u0).vector("v0", v0),
        Init::Mirror { alpha, b0 } => w.vector("alpha", alpha).vector("b0", b0),
    };
}

/// Writes a run atomically.
pub fn save_run(run: &Run, path: &Path, inputs: &[&Path]) -> npz::Result<()> {
    let rec = RunRecord::from_run(run);
    let mut w = NpzWriter::new();
    write_model(&mut w, &rec.model);
    w.vector("w_plus", &rec.w_plus).vector("w_minus", &rec.w_minus);
    if let Some((u, v)) = rec.model.weights(rec.w_plus.as_slice(), rec.w_minus.as_slice()) {
        w.vector("u", &u).vector("v", &v);
    }
    w.vector("beta", &rec.beta)
        .vector("gain", &rec.gain)
        .vector("q_plus", &rec.q_plus)
        .vector("q_minus", &rec.q_minus)
        .f64("loss_history", &[run.history.losses.len()], &run.history.losses)
        .i64("loss_steps", &[run.history.steps.len()], &to_i64(&run.history.steps))
        .i64("iters", &[], &[run.iters as i64]);
    let (values, counts): (Vec<f64>, Vec<i64>) = run.stepsizes.runs().iter().map(|&(g, k)| (g, k as i64)).unzip();
    w.f64("stepsize_values", &[values.len()], &values).i64("stepsize_counts", &[counts.len()], &counts);
    if let Some(m) = run.momentum {
        w.f64("momentum", &[], &[m.mu]).text("momentum_kind", if m.nesterov { "nesterov" } else { "heavy_ball" });
    }
    if let Some((m, rows)) = &run.batches {
        w.i64("batches", &[rows.len() / m, *m], &to_i64(rows));
    }
    w.write(path, inputs)
}

fn to_i64(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&s| s as i64).collect()
}

/// What a training loop that keeps only the online sums stores (the Python package's
/// `GainAccumulator.save`): the parametrisation and start as in a run file, `gain`,
/// `q_plus`, `q_minus`, `rho` (d), `iters`, optional `beta` (d). A run file without its
/// weights; `rho` is stored as accumulated (q₋ − q₊ recomputed from the stored halves
/// would differ in the last bit).
pub fn save_accumulated(
    path: &Path,
    model: &Model,
    acc: &GainAccumulator,
    beta: Option<&DVector<f64>>,
) -> npz::Result<()> {
    let eff = model.effective_init(acc);
    let mut w = NpzWriter::new();
    write_model(&mut w, model);
    w.vector("gain", &eff.gain)
        .vector("q_plus", &eff.q_plus())
        .vector("q_minus", &eff.q_minus())
        .vector("rho", &eff.rho)
        .f64("iters", &[], &[acc.steps() as f64]);
    if let Some(b) = beta {
        w.vector("beta", b);
    }
    w.write(path, &[])
}

/// The final weights (w₊, w₋) if the file stores them: `w_plus` and `w_minus`, or the
/// network's `u` and `v` (each of a pair needs the other; mirror descent has no u, v).
pub fn read_weights(f: &mut NpzReader, model: &Model, d: usize) -> npz::Result<Option<(DVector<f64>, DVector<f64>)>> {
    let pair = |f: &mut NpzReader, a: &str, b: &str| -> npz::Result<Option<(DVector<f64>, DVector<f64>)>> {
        match (f.contains(a), f.contains(b)) {
            (false, false) => Ok(None),
            (true, true) => Ok(Some((f.vector(a, Some(d))?, f.vector(b, Some(d))?))),
            (true, false) => Err(f.error(b, format!("missing: {a} and {b} go together"))),
            (false, true) => Err(f.error(a, format!("missing: {a} and {b} go together"))),
        }
    };
    if let Some(w) = pair(f, "w_plus", "w_minus")? {
        return Ok(Some(w));
    }
    match pair(f, "u", "v")? {
        None => Ok(None),
        Some((u, v)) => model
            .w_from(&u, &v)
            .map(Some)
            .ok_or_else(|| f.error("u", "mirror descent has no u, v: store its final weights as w_plus and w_minus")),
    }
}

/// The first coordinate where the final weights do not give the final iterate,
/// b = ½(w₊ − w₋)(w₊ + w₋), beyond the rounding of a loop with unit roundoff `unit`
/// (16·unit·(w₊² + w₋²)): (i, b_i, ½(w₊² − w₋²)_i). Weights and iterate from different
/// steps or runs would otherwise pass their defect off as lost digits.
pub fn weights_mismatch(
    param: Param,
    w_plus: &DVector<f64>,
    w_minus: &DVector<f64>,
    beta: &DVector<f64>,
    unit: f64,
) -> Option<(usize, f64, f64)> {
    (0..beta.len()).find_map(|i| {
        let (p, m) = (w_plus[i], w_minus[i]);
        let b = param.beta(p, m);
        let slack = match param {
            Param::Depth(depth) => {
                let k = i32::from(depth);
                16.0 * f64::from(depth) * unit * (p.abs().powi(k) + m.abs().powi(k)) + f64::MIN_POSITIVE
            }
            _ => 16.0 * unit * (p * p + m * m) + f64::MIN_POSITIVE,
        };
        (!((beta[i] - b).abs() <= slack)).then_some((i, beta[i], b))
    })
}

/// [`weights_mismatch`] as an input error on `f`'s `beta`.
pub fn check_weights(
    f: &NpzReader,
    param: Param,
    (wp, wm): (&DVector<f64>, &DVector<f64>),
    beta: &DVector<f64>,
    unit: f64,
) -> npz::Result<()> {
    match weights_mismatch(param, wp, wm, beta, unit) {
        None => Ok(()),
        Some((i, b, from_w)) => Err(f.error(
            "beta",
            format!(
                "entry {i} is {b:e} but the final weights give {from_w:e}: beta and u, v (or w_plus, w_minus) must \
                 come from the same step of the same run"
            ),
        )),
    }
}

/// A run file or an accumulator file, as `gain` and `predict` read it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub model: Model,
    pub eff: EffectiveInit,
    /// The conservation residual (run files, which hold the final weights).
    pub conservation: Option<f64>,
    /// The final iterate, when stored.
    pub beta: Option<DVector<f64>>,
    /// What the run's own arithmetic lets it reach (theory/README.md § Precision of a run).
    pub floors: Vec<Precision>,
    /// The final weights (w₊, w₋), when stored.
    pub weights: Option<(DVector<f64>, DVector<f64>)>,
}

/// Reads a run file or an accumulator file; `forced` is the command line's --param,
/// which must agree with a stored `param`.
pub fn load_effective(path: &Path, forced: Option<Param>) -> npz::Result<Loaded> {
    let mut f = NpzReader::open(path)?;
    if f.contains("momentum") {
        let mu = f.scalar("momentum")?;
        return Err(f.error(
            "momentum",
            format!(
                "is {mu}: a momentum run has no exact theory (no gain, no Theorem 1; theory/README.md § Deeper \
                 networks and momentum), so gain, predict, diagnose and solve --weights-from-run do not apply; \
                 claims compare its limit with `flow` as γ → 0"
            ),
        ));
    }
    if f.contains("u") || f.contains("w_plus") || !f.contains("q_plus") {
        let d = f.vector("beta", None)?.len();
        read_model(&mut f, d, forced)?;
        let rec = RunRecord::load(path)?;
        let conservation = Some(rec.conservation_residual());
        let eff = rec.effective_init();
        let unit = f64::EPSILON / 2.0;
        let floors = Precision::conservation(&eff, &rec.w_plus, &rec.w_minus, rec.iters, unit).into_iter().collect();
        let weights = Some((rec.w_plus, rec.w_minus));
        return Ok(Loaded { eff, model: rec.model, conservation, beta: Some(rec.beta), floors, weights });
    }
    let gain = f.vector("gain", None)?;
    let d = gain.len();
    let model = read_model(&mut f, d, forced)?;
    let rho = if f.contains("rho") {
        f.vector("rho", Some(d))?
    } else {
        f.vector("q_minus", Some(d))? - f.vector("q_plus", Some(d))?
    };
    let beta = if f.contains("beta") { Some(f.vector("beta", Some(d))?) } else { None };
    let mut acc = GainAccumulator::new(d);
    (acc.gain, acc.rho) = (gain, rho);
    Ok(Loaded { eff: model.effective_init(&acc), model, conservation: None, beta, floors: Vec::new(), weights: None })
}
