//! (S)GD on the diagonal linear network b = u ⊙ v (theory/README.md § Setting): u_0 = sqrt(2) α,
//! v_0 = 0; at step k, g_k = ∇L_{B_k}(b_k), u ← u - γ_k g_k ⊙ v, v ← v - γ_k g_k ⊙ u;
//! and the rest of the exact family ([`Model`]: any start, b = u² − v², mirror descent),
//! all kept as w± = (u ± v)/√2 (or their equivalent), which move multiplicatively.
//! The gain accumulates online; why a run stopped is data ([`Stop`]), not an error.

#[macro_use]
mod kernels;
mod schedule;

pub use kernels::{
    Depth, EXP_LIMITS, Exp, ExpSeries, Factors, GD_BLOCK, Linear, MomentumState, Weights, axpy, dot, exp_terms,
    gd_step, gd_step_blocked, gd_step_momentum, sgd_step, sgd_step_momentum,
};
pub use schedule::{Batching, StepsizeRuns, Stepsizes, load_schedule};

use nalgebra::DVector;

use crate::model::{Model, Param};
use crate::problem::Problem;
use crate::trajectory::{DegenerateFactor, GainAccumulator, LossHistory, max_abs};
use schedule::BatchSampler;

/// A loss above this multiple of the initial loss counts as divergence.
pub const BLOWUP: f64 = 1e16;

/// Training settings. | field | default | meaning |
/// |---|---|---|
/// | model | uv from α | parametrisation and start ([`Model`]) |
/// | stepsizes | — | γ_k |
/// | batching | Full | GD, SGD (random m-subsets) or replayed rows |
/// | tol | 1e-25 | stop when L(b_k) < tol |
/// | max_iters | 1e6 | step cap |
/// | record_batches | false | keep the rows of every step in the run |
/// | history_cap | 4096 | points kept in the thinned loss history |
/// | check_every | 4 epochs | SGD: steps between full-loss checks |
/// | accumulate_gain | true | accumulate the gain (a search that needs only whether runs converge turns it off) |
/// | first_order_gain | false | also accumulate Σ γ_k² g_k² |
/// | trace_growth | None | GD: keep (step, loss, b) at k = 0 and then k ← max(k+1, ⌈k(1+growth)⌉) |
/// | momentum | None | heavy ball or Nesterov on the weights ([`Momentum`]) |
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub model: Model,
    pub stepsizes: Stepsizes,
    pub batching: Batching,
    pub tol: f64,
    pub max_iters: usize,
    pub record_batches: bool,
    pub history_cap: usize,
    pub check_every: Option<usize>,
    pub accumulate_gain: bool,
    pub first_order_gain: bool,
    pub trace_growth: Option<f64>,
    pub momentum: Option<Momentum>,
}

/// Momentum on the network's weights (theory/README.md § Deeper networks and momentum):
/// heavy ball θ ← θ − γ∇(θ) + μ(θ − θ_prev), or Nesterov, whose gradient is taken at
/// θ + μ(θ − θ_prev); from zero velocity.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Momentum {
    pub mu: f64,
    pub nesterov: bool,
}

impl Momentum {
    /// Checks 0 ≤ μ < 1.
    pub fn new(mu: f64, nesterov: bool) -> Result<Self, String> {
        if !(mu.is_finite() && (0.0..1.0).contains(&mu)) {
            return Err(format!("momentum μ = {mu} must be in [0, 1)"));
        }
        Ok(Self { mu, nesterov })
    }
}

impl TrainConfig {
    /// b = u ⊙ v from u₀ = √2α, v₀ = 0 (see [`Self::with_model`] for the rest of the family).
    pub fn new(alpha: DVector<f64>, stepsizes: Stepsizes, batching: Batching) -> Self {
        Self::with_model(Model::uv(alpha), stepsizes, batching)
    }

    pub fn with_model(model: Model, stepsizes: Stepsizes, batching: Batching) -> Self {
        Self {
            model,
            stepsizes,
            batching,
            tol: 1e-25,
            max_iters: 1_000_000,
            record_batches: false,
            history_cap: 4096,
            check_every: None,
            accumulate_gain: true,
            first_order_gain: false,
            trace_growth: None,
            momentum: None,
        }
    }

    /// Validates the settings against a problem of size n × d.
    pub fn check(&self, n: usize, d: usize) -> Result<(), TrainError> {
        let bad = |what: String| Err(TrainError::Config(what));
        self.model.check(d).map_err(TrainError::Config)?;
        self.stepsizes.check().map_err(TrainError::Config)?;
        crate::limits::check_count("the step cap (--iters)", self.max_iters, crate::limits::MAX_STEPS)
            .map_err(TrainError::Config)?;
        if let Some(m) = self.momentum {
            Momentum::new(m.mu, m.nesterov).map_err(TrainError::Config)?;
            if self.model.param == Param::Md {
                return bad("mirror descent has no weights to carry momentum: use --param uv, u2v2 or depth:D".into());
            }
        }
        if self.tol.is_nan() || self.tol < 0.0 {
            return bad(format!("tol is {}; it must be ≥ 0", self.tol));
        }
        self.check_batch_record()?;
        match &self.batching {
            Batching::Random { m, .. } if *m == 0 || *m > n => bad(format!("batch size {m} is outside 1..={n}")),
            Batching::Replay { m, rows } if rows.len() != m * self.stepsizes.len().unwrap_or(0) => bad(format!(
                "replayed batches cover {} steps, the stepsizes {}",
                rows.len() / m,
                self.stepsizes.len().unwrap_or(0)
            )),
            _ => Ok(()),
        }
    }

    /// The most steps a run takes: `max_iters`, or fewer if the schedule ends first.
    pub fn step_cap(&self) -> usize {
        self.stepsizes.len().map_or(self.max_iters, |k| k.min(self.max_iters))
    }

    /// The recorded rows of every step (K × m, at the step cap) fit in memory: each is
    /// kept, copied to int64 and encoded for the run file, 24 bytes in all.
    fn check_batch_record(&self) -> Result<(), TrainError> {
        let m = match &self.batching {
            Batching::Random { m, .. } if self.record_batches => *m,
            _ => return Ok(()),
        };
        crate::limits::check_alloc(
            "recording the batches (--record-batches, K × m at the step cap)",
            self.step_cap() as u128 * m as u128,
            24,
        )
        .map_err(TrainError::Config)
    }
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Stop {
    /// L(b) fell below the tolerance.
    Converged,
    /// The step cap (or the end of a replayed schedule) was reached.
    MaxIters,
    /// Non-finite or exploding iterates at this step.
    Diverged { step: usize },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error("bad training settings: {0}")]
    Config(String),
    #[error(transparent)]
    Degenerate(#[from] DegenerateFactor),
}

/// A finished run: final weights, the gain accumulators and what was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub model: Model,
    /// Momentum, when the run used it (then the gain accumulators stay empty: no theory).
    pub momentum: Option<Momentum>,
    pub weights: Weights,
    pub accumulator: GainAccumulator,
    pub history: LossHistory,
    /// Steps taken.
    pub iters: usize,
    /// L(b) at the final iterate.
    pub loss: f64,
    /// Σ max(0, ln(L_next / L)) over successive evaluations of the full loss (every step
    /// for GD, every `check_every` steps for SGD): how far the log-loss climbed in total;
    /// 0 for a monotone descent.
    pub loss_climb: f64,
    pub stop: Stop,
    /// γ_k of every step taken, as runs of equal values.
    pub stepsizes: StepsizeRuns,
    /// Rows of every step (K × m, row-major) when recorded and not full-batch.
    pub batches: Option<(usize, Vec<usize>)>,
    /// GD with `trace_growth`: the iterates along the way, log-spaced in steps.
    pub trace: Vec<TracePoint>,
}

/// One recorded point of a GD trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePoint {
    pub step: usize,
    pub loss: f64,
    pub beta: Vec<f64>,
}

impl Run {
    pub fn beta(&self) -> DVector<f64> {
        DVector::from_column_slice(&self.weights.b)
    }

    pub fn diverged(&self) -> bool {
        matches!(self.stop, Stop::Diverged { .. })
    }

    /// Whether Theorem 1 covers this run: the exact family, no momentum.
    pub fn has_exact_theory(&self) -> bool {
        self.model.param.is_exact() && self.momentum.is_none()
    }

    /// The balance gain ln|w₊,₀w₋,₀| − ln|w₊w₋| per coordinate (the gain, by the
    /// conservation law, for the exact family without momentum; a measurement otherwise).
    pub fn balance_gain(&self) -> DVector<f64> {
        let (p0, m0) = self.model.start();
        DVector::from_fn(p0.len(), |i, _| {
            (p0[i] * m0[i]).abs().ln() - (self.weights.w_plus[i] * self.weights.w_minus[i]).abs().ln()
        })
    }
}

/// Runs (S)GD on the config's model from its start until L(b) < tol, the step cap, the end of
/// the schedule, or divergence.
pub fn train(problem: &Problem, config: &TrainConfig) -> Result<Run, TrainError> {
    let (n, d) = (problem.n(), problem.d());
    config.check(n, d)?;
    let max_iters = config.step_cap();
    let mut state = State::new(problem, config);
    let stop = match (config.batching.clone(), config.momentum) {
        (Batching::Full, None) => state.run_gd(problem, config, max_iters)?,
        (_, None) => state.run_sgd(problem, config, max_iters)?,
        (Batching::Full, Some(m)) => state.run_gd_momentum(problem, config, max_iters, m),
        (_, Some(m)) => state.run_sgd_momentum(problem, config, max_iters, m)?,
    };
    Ok(state.finish(config, stop))
}

/// The mutable state of a run and its scratch buffers.
struct State {
    weights: Weights,
    acc: GainAccumulator,
    history: LossHistory,
    r: Vec<f64>,
    r_next: Vec<f64>,
    xs: Vec<f64>,
    iters: usize,
    loss: f64,
    loss_climb: f64,
    stepsizes: StepsizeRuns,
    batches: Vec<usize>,
    trace: Vec<TracePoint>,
}

impl State {
    fn new(problem: &Problem, config: &TrainConfig) -> Self {
        let (n, d) = (problem.n(), problem.d());
        let weights = Weights::init(&config.model);
        let mut r = vec![0.0; n];
        kernels::residual_cm(problem.x.as_slice(), problem.y.as_slice(), &weights.b, &mut r);
        Self {
            weights,
            acc: if config.first_order_gain {
                GainAccumulator::new(d).with_first_order()
            } else {
                GainAccumulator::new(d)
            },
            history: LossHistory::new(config.history_cap),
            loss: loss_of(&r),
            loss_climb: 0.0,
            r,
            r_next: vec![0.0; n],
            xs: vec![0.0; d],
            iters: 0,
            stepsizes: StepsizeRuns::default(),
            batches: Vec::new(),
            trace: Vec::new(),
        }
    }

    /// Records the loss at step k and decides whether to stop there.
    fn observe(&mut self, k: usize, loss: f64, loss0: f64, tol: f64) -> Option<Stop> {
        if loss > self.loss && self.loss > 0.0 {
            self.loss_climb += (loss / self.loss).ln();
        }
        self.loss = loss;
        self.iters = k;
        self.history.offer(k, loss);
        if !loss.is_finite() || loss > BLOWUP * loss0 {
            Some(Stop::Diverged { step: k })
        } else if loss < tol {
            Some(Stop::Converged)
        } else {
            None
        }
    }

    fn run_gd(&mut self, p: &Problem, c: &TrainConfig, max_iters: usize) -> Result<Stop, TrainError> {
        let (x_cm, y) = (p.x.as_slice(), p.y.as_slice());
        let loss0 = self.loss;
        let blocked = x_cm.len() >= kernels::PARALLEL_MIN_ENTRIES;
        let param = c.model.param;
        let n = p.n() as f64;
        let col_norm = p.x.column_iter().map(|col| col.norm()).fold(0.0, f64::max);
        let mut partials = if blocked { vec![0.0; p.d().div_ceil(kernels::GD_BLOCK) * p.n()] } else { Vec::new() };
        for k in 0..max_iters {
            if let Some(stop) = self.observe(k, loss_of(&self.r), loss0, c.tol) {
                return Ok(stop);
            }
            if let Some(growth) = c.trace_growth
                && self
                    .trace
                    .last()
                    .is_none_or(|t| k >= (t.step + 1).max((t.step as f64 * (1.0 + growth)).ceil() as usize))
            {
                self.trace.push(TracePoint { step: k, loss: self.loss, beta: self.weights.b.clone() });
            }
            let gamma = c.stepsizes.at(k);
            let (w, r, r_next, xs) = (&mut self.weights, &self.r, &mut self.r_next, &mut self.xs);
            let gx = param.x_scale() * gamma;
            let parts = &mut partials;
            match param {
                // |x_j| = γ/n |<X_j, r>| ≤ γ/n max_j ‖X_j‖ ‖r‖.
                Param::Md => with_exp_factors!(gx / n * col_norm * norm(r), F => if blocked {
                    kernels::gd_step_blocked::<F>(x_cm, y, gx, w, r, r_next, xs, parts)
                } else {
                    kernels::gd_step::<F>(x_cm, y, gx, w, r, r_next, xs)
                }),
                Param::Uv | Param::U2v2 if blocked => {
                    kernels::gd_step_blocked::<Linear>(x_cm, y, gx, w, r, r_next, xs, parts)
                }
                Param::Uv | Param::U2v2 => kernels::gd_step::<Linear>(x_cm, y, gx, w, r, r_next, xs),
                Param::Depth(depth) => with_depth_factors!(depth, F => if blocked {
                    kernels::gd_step_blocked::<F>(x_cm, y, gx, w, r, r_next, xs, parts)
                } else {
                    kernels::gd_step::<F>(x_cm, y, gx, w, r, r_next, xs)
                }),
            }
            if param.has_gain() && c.accumulate_gain {
                self.acc.add(&self.xs)?;
            }
            self.stepsizes.push(gamma);
            std::mem::swap(&mut self.r, &mut self.r_next);
        }
        Ok(self.observe(max_iters, loss_of(&self.r), loss0, c.tol).unwrap_or(Stop::MaxIters))
    }

    fn run_sgd(&mut self, p: &Problem, c: &TrainConfig, max_iters: usize) -> Result<Stop, TrainError> {
        let x_rm: Vec<f64> = p.x.transpose().as_slice().to_vec();
        let row_max: Vec<f64> = x_rm.chunks_exact(p.d()).map(max_abs).collect();
        let (y, param, gain) = (p.y.as_slice(), c.model.param, c.accumulate_gain);
        self.sgd_loop(p, c, max_iters, |w, xs, acc, rows, gamma| {
            let acc = (param.has_gain() && gain).then_some(acc);
            Ok(kernels::sgd_step(&x_rm, &row_max, y, rows, param.x_scale() * gamma, w, xs, acc, param)?)
        })
    }

    fn run_gd_momentum(&mut self, p: &Problem, c: &TrainConfig, max_iters: usize, m: Momentum) -> Stop {
        let (x_cm, y) = (p.x.as_slice(), p.y.as_slice());
        let loss0 = self.loss;
        let param = c.model.param;
        let mut mom = MomentumState::new(&self.weights);
        let (mut r_eval, mut r_eval_next) = (self.r.clone(), vec![0.0; p.n()]);
        for k in 0..max_iters {
            if let Some(stop) = self.observe(k, loss_of(&self.r), loss0, c.tol) {
                return stop;
            }
            let gamma = c.stepsizes.at(k);
            let at = (param.x_scale() * gamma, m.mu, m.nesterov);
            let (w, xs, r_next) = (&mut self.weights, &mut self.xs, &mut self.r_next);
            let r_at = if m.nesterov { &r_eval } else { &self.r };
            match param {
                Param::Depth(depth) => with_depth_factors!(depth, F => kernels::gd_step_momentum::<F>(
                    x_cm, y, at, w, &mut mom, r_at, r_next, &mut r_eval_next, xs
                )),
                _ => kernels::gd_step_momentum::<Linear>(x_cm, y, at, w, &mut mom, r_at, r_next, &mut r_eval_next, xs),
            }
            self.stepsizes.push(gamma);
            std::mem::swap(&mut self.r, &mut self.r_next);
            std::mem::swap(&mut r_eval, &mut r_eval_next);
        }
        self.observe(max_iters, loss_of(&self.r), loss0, c.tol).unwrap_or(Stop::MaxIters)
    }

    fn run_sgd_momentum(
        &mut self,
        p: &Problem,
        c: &TrainConfig,
        max_iters: usize,
        m: Momentum,
    ) -> Result<Stop, TrainError> {
        let x_rm: Vec<f64> = p.x.transpose().as_slice().to_vec();
        let (y, param) = (p.y.as_slice(), c.model.param);
        let mut mom = MomentumState::new(&self.weights);
        self.sgd_loop(p, c, max_iters, |w, xs, _, rows, gamma| {
            let at = (param.x_scale() * gamma, m.mu, m.nesterov);
            Ok(match param {
                Param::Depth(depth) => {
                    with_depth_factors!(depth, F => kernels::sgd_step_momentum::<F>(&x_rm, y, rows, at, w, &mut mom, xs))
                }
                _ => kernels::sgd_step_momentum::<Linear>(&x_rm, y, rows, at, w, &mut mom, xs),
            })
        })
    }

    /// The SGD loop around one step (`step(weights, xs, acc, rows, γ)` returns Σ r_i² over
    /// the batch): the full loss every `check_every` steps, the batches recorded, a
    /// blow-up of the batch residual as divergence.
    fn sgd_loop(
        &mut self,
        p: &Problem,
        c: &TrainConfig,
        max_iters: usize,
        mut step: impl FnMut(&mut Weights, &mut [f64], &mut GainAccumulator, &[usize], f64) -> Result<f64, TrainError>,
    ) -> Result<Stop, TrainError> {
        let n = p.n();
        let (x_cm, y) = (p.x.as_slice(), p.y.as_slice());
        let mut sampler = BatchSampler::new(&c.batching, n);
        let loss0 = self.loss;
        let check_every = c.check_every.unwrap_or(4 * n.div_ceil(batch_size(&c.batching).max(1))).max(1);
        // A single row's squared residual can reach 2n times the loss.
        let batch_limit = 2.0 * n as f64 * BLOWUP * loss0.max(f64::MIN_POSITIVE);
        for k in 0..max_iters {
            if k % check_every == 0 {
                kernels::residual_cm(x_cm, y, &self.weights.b, &mut self.r);
                if let Some(stop) = self.observe(k, loss_of(&self.r), loss0, c.tol) {
                    return Ok(stop);
                }
            }
            let gamma = c.stepsizes.at(k);
            let rows = sampler.next(k).expect("SGD batching yields rows");
            let batch_sq = step(&mut self.weights, &mut self.xs, &mut self.acc, rows, gamma)?;
            if c.record_batches {
                self.batches.extend_from_slice(rows);
            }
            if !(batch_sq.is_finite() && batch_sq <= batch_limit) {
                self.iters = k;
                self.loss = f64::INFINITY;
                return Ok(Stop::Diverged { step: k });
            }
            self.stepsizes.push(gamma);
        }
        kernels::residual_cm(x_cm, y, &self.weights.b, &mut self.r);
        Ok(self.observe(max_iters, loss_of(&self.r), loss0, c.tol).unwrap_or(Stop::MaxIters))
    }

    fn finish(mut self, c: &TrainConfig, stop: Stop) -> Run {
        self.history.finish(self.iters, self.loss);
        let m = batch_size(&c.batching);
        let batches = (c.record_batches && m > 0).then(|| (m, std::mem::take(&mut self.batches)));
        Run {
            model: c.model.clone(),
            momentum: c.momentum,
            weights: self.weights,
            accumulator: self.acc,
            history: self.history,
            iters: self.iters,
            loss: self.loss,
            loss_climb: self.loss_climb,
            stop,
            stepsizes: self.stepsizes,
            batches,
            trace: self.trace,
        }
    }
}

/// Rows per step; 0 for full batch.
fn batch_size(b: &Batching) -> usize {
    match b {
        Batching::Random { m, .. } | Batching::Replay { m, .. } => *m,
        Batching::Full => 0,
    }
}
/// ‖r‖₂.
fn norm(r: &[f64]) -> f64 {
    dot(r, r).sqrt()
}

/// ½ mean of squared residuals: L(b) = |r|²/(2n).
fn loss_of(r: &[f64]) -> f64 {
    dot(r, r) / (2.0 * r.len() as f64)
}
