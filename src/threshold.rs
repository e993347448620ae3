//! Stepsize thresholds (theory/README.md § Thresholds): they have no closed form, so they
//! are measured by bisection on a constant stepsize, per problem, algorithm, batch size
//! and seed. Every trial has the same budget, a time T of gradient flow: T·⌈n/m⌉/γ steps
//! (T/γ passes over the data), so a small stepsize is not failed merely for needing more
//! steps. Two thresholds, each a bracket [lo, hi] narrowed until hi/lo − 1 ≤ rel_width:
//!
//! - *convergence* ([`threshold`]): lo reaches L(b) < tol within the budget; hi blows up
//!   or is still going (oscillating at the edge of stability) when the budget ends;
//! - *divergence* ([`divergence`]): the first blow-up within the budget scanning upwards
//!   from the convergence threshold, bracketed: lo does not blow up, hi does.
//!
//! Between them lies the window of persistent oscillation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use nalgebra::DVector;

use crate::limits;
use crate::model::Model;
use crate::problem::Problem;
use crate::train::{Batching, Stepsizes, Stop, TrainConfig, TrainError, train};

/// Bisection settings. | field | default | meaning |
/// |---|---|---|
/// | time | 10000 | budget T of one trial: T·⌈n/m⌉/γ steps |
/// | tol | 1e-12 | a trial passes when L(b) < tol |
/// | rel_width | 0.005 | stop when hi/lo − 1 ≤ rel_width |
/// | start | 1 | first stepsize tried |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdSettings {
    pub time: f64,
    pub tol: f64,
    pub rel_width: f64,
    pub start: f64,
}

impl Default for ThresholdSettings {
    fn default() -> Self {
        Self { time: 10_000.0, tol: 1e-12, rel_width: 0.005, start: 1.0 }
    }
}

/// Accepted ranges of [`ThresholdSettings`]: together with [`limits::MAX_STEPS`] per
/// trial and [`MAX_DOUBLINGS`] they bound every search.
pub const TIME_RANGE: (f64, f64) = (10.0, 1e7);
pub const TOL_RANGE: (f64, f64) = (1e-30, 1e-2);
/// Most training steps of one whole search (all trials together).
pub const MAX_SEARCH_STEPS: f64 = 3e8;
pub const REL_WIDTH_RANGE: (f64, f64) = (1e-9, 0.5);

impl ThresholdSettings {
    /// Checks every setting is in its range, so the search ends: `time` in [10, 1e7]
    /// (shorter budgets fail every stepsize; longer ones take days), `tol` in
    /// [1e-30, 1e-2], `rel_width` in [1e-9, 0.5] (narrower than rounding never ends),
    /// `start` finite and > 0.
    pub fn check(&self) -> Result<(), String> {
        let within = |x: f64, (lo, hi): (f64, f64)| x.is_finite() && lo <= x && x <= hi;
        let bad = |name: &str, v: f64, (lo, hi): (f64, f64)| Err(format!("{name} = {v:e} must be in [{lo:e}, {hi:e}]"));
        if !within(self.time, TIME_RANGE) {
            return bad("time", self.time, TIME_RANGE);
        }
        if !within(self.tol, TOL_RANGE) {
            return bad("tol", self.tol, TOL_RANGE);
        }
        if !within(self.rel_width, REL_WIDTH_RANGE) {
            return bad("rel_width", self.rel_width, REL_WIDTH_RANGE);
        }
        if !(self.start.is_finite() && self.start > 0.0) {
            return Err(format!("start = {} must be finite and > 0", self.start));
        }
        Ok(())
    }
}

/// A measured threshold: `lo` passes, `hi` fails (and how it failed).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Threshold {
    pub lo: f64,
    pub hi: f64,
    /// How the run at `hi` ended: diverged (at a step) or did not converge in the budget.
    pub hi_stop: Stop,
    /// Trial runs made.
    pub trials: usize,
}

/// Where the search gives up widening the bracket (γ outside [2^-60, 2^60] · start).
const MAX_DOUBLINGS: usize = 60;

/// The trial runs of one search, with the steps they spent.
struct Trials<'a> {
    problem: &'a Problem,
    model: &'a Model,
    batch: Option<usize>,
    seed: u64,
    s: &'a ThresholdSettings,
    trials: usize,
    spent: f64,
}

impl Trials<'_> {
    /// Runs γ for the budget T·⌈n/m⌉/γ steps, stopping early below `tol` or at blow-up.
    fn run(&mut self, gamma: f64) -> Result<Stop, ThresholdError> {
        self.trials += 1;
        let batching = self.batch.map_or(Batching::Full, |m| Batching::Random { m, seed: self.seed });
        let mut config = TrainConfig::with_model(self.model.clone(), Stepsizes::Constant(gamma), batching);
        config.tol = self.s.tol;
        let steps = budget_steps(self.problem, self.batch, gamma, self.s);
        self.spent += steps;
        if !(steps <= limits::MAX_STEPS as f64 && self.spent <= MAX_SEARCH_STEPS) {
            return Err(ThresholdError::Budget { gamma, steps: self.spent });
        }
        config.max_iters = steps as usize;
        config.history_cap = 2;
        // Whether the run converges is all a trial asks: without the gain, a step whose
        // factor 1 ∓ γg is exactly 0 is a step like any other.
        config.accumulate_gain = false;
        Ok(train(self.problem, &config)?.stop)
    }

    /// Narrows `lo` (passes) and `hi` (fails) by geometric bisection to `rel_width`.
    fn bisect(
        &mut self,
        (mut lo, mut hi, mut hi_stop): (f64, f64, Stop),
        passes: fn(Stop) -> bool,
    ) -> Result<Threshold, ThresholdError> {
        while hi / lo - 1.0 > self.s.rel_width {
            let mid = (lo * hi).sqrt();
            match self.run(mid)? {
                stop if passes(stop) => lo = mid,
                stop => (hi, hi_stop) = (mid, stop),
            }
        }
        Ok(Threshold { lo, hi, hi_stop, trials: self.trials })
    }
}

/// Steps of one trial at γ: T·⌈n/m⌉/γ (T/γ passes over the data).
pub fn budget_steps(problem: &Problem, batch: Option<usize>, gamma: f64, s: &ThresholdSettings) -> f64 {
    s.time * problem.n().div_ceil(batch.unwrap_or(problem.n())) as f64 / gamma
}

/// Measures the *convergence* threshold of GD (`batch = None`) or SGD with `batch` rows
/// per step, drawing batches from `seed`: `lo` reaches L(b) < tol within the budget,
/// `hi` does not (it blew up, or still oscillates when the budget ends).
pub fn threshold(
    problem: &Problem,
    model: &Model,
    batch: Option<usize>,
    seed: u64,
    s: &ThresholdSettings,
) -> Result<Threshold, ThresholdError> {
    s.check().map_err(ThresholdError::Settings)?;
    let mut t = Trials { problem, model, batch, seed, s, trials: 0, spent: 0.0 };
    let (mut lo, mut hi, mut hi_stop) = (s.start, s.start, t.run(s.start)?);
    if hi_stop == Stop::Converged {
        // Widen upwards until a trial fails.
        for _ in 0..MAX_DOUBLINGS {
            hi *= 2.0;
            hi_stop = t.run(hi)?;
            if hi_stop != Stop::Converged {
                break;
            }
            lo = hi;
        }
    } else {
        // Narrow downwards until a trial passes, but not below the gradient-flow floor:
        // a run that far below the classical bound tracks gradient flow, so if it does
        // not reach tol within the time, no smaller stepsize will.
        let floor = gradient_flow_floor(problem);
        for _ in 0..MAX_DOUBLINGS {
            lo /= 2.0;
            if lo < floor {
                return Err(ThresholdError::NoConvergence { floor, time: s.time, tol: s.tol });
            }
            let stop = t.run(lo)?;
            if stop == Stop::Converged {
                break;
            }
            (hi, hi_stop) = (lo, stop);
        }
    }
    if lo == hi {
        return Err(ThresholdError::NoBracket { start: s.start });
    }
    t.bisect((lo, hi, hi_stop), |stop| stop == Stop::Converged)
}

/// Ratio between successive stepsizes of the divergence scan.
pub const SCAN_RATIO: f64 = 1.02;

/// Measures the *divergence* threshold, the smallest γ whose iterates blow up (loss >
/// 1e16 × the initial loss, or not finite) within the budget, from a measured
/// convergence threshold `conv` (a converging run does not blow up). Blow-up is not
/// monotone in γ near the edge (a stepsize can blow up at step 34 while a larger one
/// oscillates for the whole budget), so bisection alone could land on any edge: the
/// search scans upwards from `conv.hi` in steps of [`SCAN_RATIO`] to the first blow-up,
/// then bisects that step to `rel_width`. Islands of blow-up narrower than 2% can be
/// missed. When `conv.hi` blew up, the two thresholds coincide to the bracket's width.
pub fn divergence(
    problem: &Problem,
    model: &Model,
    batch: Option<usize>,
    seed: u64,
    s: &ThresholdSettings,
    conv: &Threshold,
) -> Result<Threshold, ThresholdError> {
    s.check().map_err(ThresholdError::Settings)?;
    let diverged = |stop: Stop| matches!(stop, Stop::Diverged { .. });
    if diverged(conv.hi_stop) {
        return Ok(Threshold { trials: 0, ..*conv });
    }
    let mut t = Trials { problem, model, batch, seed, s, trials: 0, spent: 0.0 };
    let mut lo = conv.hi;
    while lo < conv.hi * 2f64.powi(MAX_DOUBLINGS as i32) {
        let hi = lo * SCAN_RATIO;
        let stop = t.run(hi)?;
        if diverged(stop) {
            return t.bisect((lo, hi, stop), |stop| !matches!(stop, Stop::Diverged { .. }));
        }
        lo = hi;
    }
    Err(ThresholdError::NoBlowUp { gamma: lo })
}

/// The classical (linear-stability) bound on a constant stepsize at the planted b*:
/// 2/λ, λ the largest curvature of the loss in the weights at the interpolator b*, where
/// conservation (with α_∞ = α, A = |w₊,₀ w₋,₀|) gives the weights' scale
/// c = s·2√(b*² + A²) (uv: u² + v² = 2√(b*² + α⁴); u2v2: s = 2; md: db/dz doubled). GD (`batch = None`): λ = λ_max(X diag(c) Xᵀ)/n. SGD, any batch:
/// λ = max_i x_iᵀ diag(c) x_i, which bounds every batch's curvature λ_max(X_B diag(c) X_Bᵀ)/m.
pub fn stability_bound(problem: &Problem, model: &Model, batch: Option<usize>) -> Result<f64, String> {
    let b = problem.beta_star.as_ref().ok_or("the stability bound needs the planted b* (beta_star)")?;
    let (lp, lm) = model.ln_start();
    let s = model.param.x_scale();
    let c = DVector::from_fn(b.len(), |i, _| 2.0 * s * b[i].hypot((lp[i] + lm[i]).exp()));
    let x = &problem.x;
    let lambda = match batch {
        None => {
            let k = x * nalgebra::DMatrix::from_diagonal(&c) * x.transpose() / problem.n() as f64;
            k.symmetric_eigenvalues().max()
        }
        Some(_) => x.row_iter().map(|r| r.iter().zip(&c).map(|(x, c)| x * x * c).sum::<f64>()).fold(0.0, f64::max),
    };
    let bound = 2.0 / lambda;
    if bound.is_finite() && bound > 0.0 {
        Ok(bound)
    } else {
        Err(format!(
            "the curvature at b* is {lambda:e} (weights' scale 2√(b*² + α⁴) from {:e} to {:e}, α from {:e} to {:e}): \
             the bound 2/λ is not a finite positive number",
            c.min(),
            c.max(),
            (0.5 * (lp.min() + lm.min())).exp(),
            (0.5 * (lp.max() + lm.max())).exp()
        ))
    }
}

/// The smallest stepsize a threshold search tries: 1e-4 / max_i ‖x_i‖², four orders
/// below the classical bound of SGD with batch 1 (and of GD, 1/λ_max(XᵀX/n) ≥ that).
pub fn gradient_flow_floor(problem: &Problem) -> f64 {
    let max_row = problem.x.row_iter().map(|r| r.norm_squared()).fold(0.0, f64::max);
    1e-4 / max_row.max(f64::MIN_POSITIVE)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error(
        "no stepsize converges within time {time:e} to loss < {tol:e}: runs down to γ = {floor:.3e} \
         (1e-4 / max_i ‖x_i‖², where a run follows gradient flow) did not; raise --time or --tol"
    )]
    NoConvergence { floor: f64, time: f64, tol: f64 },
    #[error("bad threshold settings: {0}")]
    Settings(String),
    #[error(
        "the search reached γ = {gamma:.3e}, where its trials would take {steps:.3e} steps in all (each \
         time × ⌈n/m⌉ / γ); at most {max:e} per search: no stepsize converged (is tol reachable, time long enough?)",
        max = MAX_SEARCH_STEPS
    )]
    Budget { gamma: f64, steps: f64 },
    #[error("no stepsize in start·2^±60 (start {start}) separates converging from failing runs")]
    NoBracket { start: f64 },
    #[error("no stepsize up to γ = {gamma:.3e} blew up within its budget: no divergence threshold")]
    NoBlowUp { gamma: f64 },
    #[error(transparent)]
    Train(#[from] TrainError),
}

type Cached = Arc<OnceLock<Result<Threshold, String>>>;

/// One measurement per key in the process, even when callers run in parallel.
fn cached(key: String, measure: impl FnOnce() -> Result<Threshold, String>) -> Result<Threshold, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Cached>>> = OnceLock::new();
    let cell = CACHE.get_or_init(Default::default).lock().map_err(|e| e.to_string())?.entry(key).or_default().clone();
    cell.get_or_init(measure).clone()
}

/// The cache key of a `kind` of threshold: problem `key`, seed, α, batch size, settings.
fn cache_key(kind: &str, key: &str, seed: u64, model: &Model, batch: Option<usize>, s: &ThresholdSettings) -> String {
    format!("{kind}|{key}|{seed}|{model:?}|{batch:?}|{s:?}")
}

/// [`threshold`] shared by every caller in the process that needs the same one (same
/// problem `key`, α, batch size, seed and settings). `key` names the problem: a
/// generator's settings, or a file's hash.
pub fn threshold_cached(
    key: &str,
    seed: u64,
    problem: &Problem,
    model: &Model,
    batch: Option<usize>,
    s: &ThresholdSettings,
) -> Result<Threshold, String> {
    cached(cache_key("convergence", key, seed, model, batch, s), || {
        threshold(problem, model, batch, seed, s).map_err(|e| e.to_string())
    })
}

/// [`divergence`] (after [`threshold_cached`]), shared like it.
pub fn divergence_cached(
    key: &str,
    seed: u64,
    problem: &Problem,
    model: &Model,
    batch: Option<usize>,
    s: &ThresholdSettings,
) -> Result<Threshold, String> {
    let conv = threshold_cached(key, seed, problem, model, batch, s)?;
    cached(cache_key("divergence", key, seed, model, batch, s), || {
        divergence(problem, model, batch, seed, s, &conv).map_err(|e| e.to_string())
    })
}
