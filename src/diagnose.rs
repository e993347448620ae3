//! Why a logged run disagrees (theory/README.md § Diagnosing a disagreement): the
//! mistakes a real loop makes, each tested by recomputing the gain from the logged
//! steps under that hypothesis and predicting again. The hypotheses are data
//! ([`Hypothesis`]); the logged steps are read every way they need in one pass
//! ([`Readings`], O(d) memory per reading), so the command line streams a trajectory
//! and a Python loop can keep the readings as it goes.

use nalgebra::DVector;

use crate::model::{Init, Model, Param};
use crate::predict::predict;
use crate::problem::Problem;
use crate::solve::NewtonSettings;
use crate::trajectory::GainAccumulator;

/// The momenta a heavy-ball replay tries.
pub const MOMENTA: [f64; 5] = [0.5, 0.8, 0.9, 0.95, 0.99];

/// How close a heavy-ball replay must come to the logged final iterate to name momentum.
pub const REPLAY_TOL: f64 = 1e-6;

/// The hypotheses worth trying, in the order they are preferred when several explain a
/// run: the run as logged, then the most specific mistakes, then the start recovered
/// from the final weights (which has d free numbers).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "hypothesis", rename_all = "kebab-case")]
pub enum Hypothesis {
    /// The run as logged.
    None,
    /// The start's scale times `factor` (1/√2: the √2 of u₀ = √2α missing).
    StartScale { factor: f64 },
    /// Another start: u₀ = v₀ = α, or the one the final weights imply.
    Start {
        #[serde(flatten)]
        start: StartGuess,
    },
    /// Another parametrisation of the same start.
    Param { param: Param },
    /// The logged gradients are `factor` times the ones the updates used (a loss with
    /// 1/n against one with 1/(2n): 2 or ½).
    GradientScale { factor: f64 },
    /// The log is shifted by one step against the stepsizes.
    Lag { shift: Shift },
    /// Heavy ball with momentum `mu`: the logged gradients replayed from the start
    /// through the heavy-ball update; its rel_err is the replay's distance from the
    /// logged final iterate (there is no exact theory to predict with).
    Momentum { mu: f64 },
}

/// Which other start [`Hypothesis::Start`] reads.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "guess", rename_all = "kebab-case")]
pub enum StartGuess {
    /// u₀ = v₀ = α (b ≥ 0 on every coordinate).
    Equal,
    /// The scale the conservation law |w₊w₋| = |w₊,₀w₋,₀|e^{−Gain} gives from the final
    /// weights and the logged gain, at the stored start's shape w₊,₀/w₋,₀: coordinate i
    /// is the stored start times a factor between `factor_min` and `factor_max`.
    Recovered { factor_min: f64, factor_max: f64 },
}

/// How a lagged log pairs its rows with the stepsizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shift {
    /// Row k holds step k − 1's gradient (logged after the update).
    Late,
    /// The first step is missing from the log (its gradient is ∇L at b₀).
    MissingFirst,
}

/// One reading of the logged steps: its gain, or `None` once a factor 1 ∓ x vanished.
#[derive(Debug, Clone)]
struct Reading(Option<GainAccumulator>);

impl Reading {
    fn new(d: usize) -> Self {
        Self(Some(GainAccumulator::new(d)))
    }

    fn add(&mut self, x: &[f64]) {
        if self.0.as_mut().is_some_and(|acc| acc.add(x).is_err()) {
            self.0 = None;
        }
    }
}

/// A heavy-ball loop replayed on the logged gradients, in (w₊, w₋): with x = s·γ·g,
/// m± ← μ m± ± s·g·w±, w± ← w± − γ m± (PyTorch's `SGD(momentum=μ)` on u, v).
#[derive(Debug, Clone)]
struct HeavyBall {
    mu: f64,
    w: [Vec<f64>; 2],
    m: [Vec<f64>; 2],
}

impl HeavyBall {
    fn step(&mut self, s: f64, gamma: f64, g: &[f64]) {
        for (sign, (w, m)) in [1.0, -1.0].into_iter().zip(self.w.iter_mut().zip(self.m.iter_mut())) {
            for ((wi, mi), gi) in w.iter_mut().zip(m.iter_mut()).zip(g) {
                *mi = self.mu * *mi + sign * s * gi * *wi;
                *wi -= gamma * *mi;
            }
        }
    }

    /// The replay's final b = ½(w₊ − w₋)(w₊ + w₋).
    fn beta(&self) -> DVector<f64> {
        DVector::from_fn(self.w[0].len(), |i, _| crate::model::beta_of(self.w[0][i], self.w[1][i]))
    }
}

/// The logged steps read as every hypothesis other than the model's own reading needs:
/// x = a·γ·g at the other scales a, the late pairing x_k = s·γ_{k−1}·g_k, and the
/// heavy-ball replays. Fed one step at a time; no step is kept.
#[derive(Debug, Clone)]
pub struct Readings {
    /// The model's own scale s (x = s·γ·g).
    s: f64,
    scaled: Vec<(f64, Reading)>,
    late: Option<Reading>,
    momentum: Vec<HeavyBall>,
    prev_gamma: Option<f64>,
    /// The first logged gradient (is it ∇L at the start?).
    first_grad: Vec<f64>,
    /// The first stepsize and the range of all of them.
    first_gamma: Option<f64>,
    gamma_range: (f64, f64),
    x: Vec<f64>,
}

impl Readings {
    /// The readings `model`'s hypotheses need, for d coordinates: the scales s/2 and 2s
    /// (gradients 2× or ½×) and the other parametrisations' (1 for uv, 2 for u2v2).
    /// Mirror descent's limit does not depend on its steps: only the networks' scales.
    pub fn new(model: &Model, d: usize) -> Self {
        let s = model.param.x_scale();
        let gains = model.param.has_gain();
        let mut scales: Vec<f64> = Param::ALL.iter().filter(|p| p.has_gain()).map(|p| p.x_scale()).collect();
        if gains {
            scales.extend([s / 2.0, 2.0 * s]);
        }
        scales.sort_by(f64::total_cmp);
        scales.dedup();
        scales.retain(|a| !(gains && *a == s));
        let (wp, wm) = model.start();
        let ball =
            |mu| HeavyBall { mu, w: [wp.as_slice().to_vec(), wm.as_slice().to_vec()], m: [vec![0.0; d], vec![0.0; d]] };
        let momentum = if gains { MOMENTA.map(ball).to_vec() } else { vec![] };
        Self {
            s,
            scaled: scales.into_iter().map(|a| (a, Reading::new(d))).collect(),
            late: gains.then(|| Reading::new(d)),
            momentum,
            prev_gamma: None,
            first_grad: Vec::new(),
            first_gamma: None,
            gamma_range: (f64::INFINITY, 0.0),
            x: vec![0.0; d],
        }
    }

    /// One logged step: stepsize γ and gradient g (length d, checked by the caller).
    pub fn add(&mut self, gamma: f64, g: &[f64]) {
        let x = &mut self.x;
        for (a, r) in &mut self.scaled {
            x.iter_mut().zip(g).for_each(|(xi, gi)| *xi = *a * gamma * gi);
            r.add(x);
        }
        if let (Some(late), Some(prev)) = (&mut self.late, self.prev_gamma) {
            x.iter_mut().zip(g).for_each(|(xi, gi)| *xi = self.s * prev * gi);
            late.add(x);
        }
        for ball in &mut self.momentum {
            ball.step(self.s, gamma, g);
        }
        self.prev_gamma = Some(gamma);
        if self.first_gamma.is_none() {
            self.first_gamma = Some(gamma);
            self.first_grad = g.to_vec();
        }
        self.gamma_range = (self.gamma_range.0.min(gamma), self.gamma_range.1.max(gamma));
    }

    /// The gain of the steps read at x = a·γ·g (`None` for a scale not kept, or degenerate).
    pub fn at_scale(&self, a: f64) -> Option<&GainAccumulator> {
        self.scaled.iter().find(|(b, _)| *b == a).and_then(|(_, r)| r.0.as_ref())
    }

    /// Whether every stepsize was the same (a one-step lag is then invisible).
    fn constant_stepsize(&self) -> bool {
        self.gamma_range.0 == self.gamma_range.1
    }
}

/// A hypothesis and how far its prediction is from the run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Tried {
    #[serde(flatten)]
    pub hypothesis: Hypothesis,
    /// ‖b_theory − b∞‖/‖b∞‖ under it (`None` when it was not tried or its prediction failed).
    pub rel_err: Option<f64>,
    /// Whether the theory is exact under this hypothesis (momentum is read approximately).
    pub exact: bool,
    pub message: String,
}

/// The logged run: its model, the gain as logged, the other readings when the steps were
/// seen, the final iterate and, when known, the final weights (w₊, w₋).
pub struct Logged<'a> {
    pub model: &'a Model,
    pub acc: &'a GainAccumulator,
    pub readings: Option<&'a Readings>,
    pub beta: &'a DVector<f64>,
    pub weights: Option<(&'a DVector<f64>, &'a DVector<f64>)>,
}

/// Why a hypothesis was not tried.
const NEEDS_STEPS: &str = "not tried: it needs every logged step (a trajectory, or GainAccumulator(..., \
                           diagnose=True) in Python)";

impl Logged<'_> {
    /// Per coordinate, the factor the conservation law puts on the stored start:
    /// c² = |w₊w₋|_final e^{Gain} / |w₊,₀w₋,₀| (1 where either product is zero).
    fn recovered_factors(&self) -> Option<DVector<f64>> {
        let (wp, wm) = self.weights?;
        if !self.model.param.has_gain() {
            return None;
        }
        let (lp, lm) = self.model.ln_start();
        Some(DVector::from_fn(wp.len(), |i, _| {
            let ln_c2 = wp[i].abs().ln() + wm[i].abs().ln() + self.acc.gain[i] - lp[i] - lm[i];
            if ln_c2.is_finite() { (0.5 * ln_c2).exp() } else { 1.0 }
        }))
    }
}

impl Hypothesis {
    /// Every hypothesis worth testing on `run`, in order of preference.
    pub fn all(run: &Logged) -> Vec<Self> {
        let model = run.model;
        let mut h = vec![Self::None];
        h.extend([0.5f64.sqrt(), 2f64.sqrt(), 0.5, 2.0].map(|factor| Self::StartScale { factor }));
        if matches!(model.init, Init::Alpha(_)) && model.param.has_gain() {
            h.push(Self::Start { start: StartGuess::Equal });
        }
        h.extend(Param::ALL.into_iter().filter(|p| *p != model.param).map(|param| Self::Param { param }));
        if model.param.has_gain() {
            h.extend([2.0, 0.5].map(|factor| Self::GradientScale { factor }));
            h.extend([Shift::Late, Shift::MissingFirst].map(|shift| Self::Lag { shift }));
        }
        if let Some(c) = run.recovered_factors() {
            let (factor_min, factor_max) = (c.min(), c.max());
            h.push(Self::Start { start: StartGuess::Recovered { factor_min, factor_max } });
        }
        if model.param.has_gain() {
            h.extend(MOMENTA.map(|mu| Self::Momentum { mu }));
        }
        h
    }

    /// The model this hypothesis reads the start as (`None` if it is not a valid start).
    fn model(self, run: &Logged) -> Option<Model> {
        let m = run.model;
        let scaled = |c: &DVector<f64>| match &m.init {
            Init::Alpha(a) => Init::Alpha(a.component_mul(c)),
            Init::Weights { u0, v0 } => Init::Weights { u0: u0.component_mul(c), v0: v0.component_mul(c) },
            // α·c at the same z₀ = asinh(b₀/α²).
            Init::Mirror { alpha, b0 } => {
                Init::Mirror { alpha: alpha.component_mul(c), b0: b0.component_mul(&c.component_mul(c)) }
            }
        };
        let model = match self {
            Self::StartScale { factor } => {
                Model { param: m.param, init: scaled(&DVector::from_element(m.dim(), factor)) }
            }
            Self::Start { start: StartGuess::Equal } => match &m.init {
                Init::Alpha(a) => Model { param: m.param, init: Init::Weights { u0: a.clone(), v0: a.clone() } },
                _ => return None,
            },
            Self::Start { start: StartGuess::Recovered { .. } } => {
                Model { param: m.param, init: scaled(&run.recovered_factors()?) }
            }
            Self::Param { param } => Model { param, init: m.init.clone() },
            _ => m.clone(),
        };
        model.check(model.dim()).ok().map(|()| model)
    }

    /// What the user should do if this hypothesis explains the run.
    pub fn message(self, run: &Logged) -> String {
        let m = run.model;
        match self {
            Self::None => "the run agrees with the theory as logged".into(),
            Self::StartScale { factor } if (factor - 0.5f64.sqrt()).abs() < 1e-12 && m.param == Param::Uv => {
                "your loop starts from u₀ = α (v₀ = 0): the √2 of u₀ = √2α is missing; store alpha = α/√2, or u0 \
                 and v0 as the loop has them"
                    .into()
            }
            Self::StartScale { factor } => {
                format!("your start is {factor:.4} times the stored one: store u0 and v0 as the loop has them")
            }
            Self::Start { start: StartGuess::Equal } => {
                "your loop starts from u₀ = v₀ = α: store u0 and v0 in the trajectory".into()
            }
            Self::Start { start: StartGuess::Recovered { factor_min, factor_max } } => format!(
                "the final weights and the logged gain imply a start {factor_min:.4}–{factor_max:.4} times the stored \
                 one, coordinate by coordinate (the conservation law |w₊w₋| = |w₊,₀w₋,₀|e^{{−Gain}}): store u0 and \
                 v0 as the loop has them"
            ),
            Self::Param { param } => format!(
                "your loop is {}: pass --param {} (or store param = \"{}\" in the file)",
                match param {
                    Param::Uv => "b = u ⊙ v",
                    Param::U2v2 => "b = u² − v²",
                    Param::Md => "mirror descent with ψ_α",
                    Param::Depth(_) => "a deeper network b = u^D − v^D",
                },
                param.name(),
                param.name()
            ),
            Self::GradientScale { factor } => {
                let (why, fix) = if factor > 1.0 {
                    ("e.g. the gradient of ‖Xb − y‖²/n logged for a loop that descends ‖Xb − y‖²/(2n)", "divide")
                } else {
                    ("e.g. a loop that descends ‖Xb − y‖²/n logging the gradient of ‖Xb − y‖²/(2n)", "multiply")
                };
                let by = if factor > 1.0 { factor } else { 1.0 / factor };
                format!(
                    "your logged gradients are {factor} times the ones your updates used ({why}): log the gradient \
                     your update uses ({fix} yours by {by})"
                )
            }
            Self::Lag { shift: Shift::Late } => {
                let mut s = "your gradients are logged one step late (row k is step k − 1's): log each gradient \
                             before the update that uses it"
                    .to_owned();
                if run.readings.is_some_and(Readings::constant_stepsize) {
                    s.push_str(" (with a constant stepsize a one-step lag is invisible to the theory)");
                }
                s
            }
            Self::Lag { shift: Shift::MissingFirst } => {
                "the first step is missing from the log: log from step 0".into()
            }
            Self::Momentum { mu } => format!(
                "your loop is heavy ball with momentum μ = {mu} (replaying your gradients through its update \
                 reproduces your final b): with momentum there is no exact discrete-time theory, so dlncheck gives \
                 no verdict on it"
            ),
        }
    }

    /// The gain of the logged steps as this hypothesis reads them, or why it cannot be formed.
    fn accumulate(self, p: &Problem, run: &Logged, model: &Model) -> Result<GainAccumulator, &'static str> {
        let s = model.param.x_scale();
        let readings = run.readings.ok_or(NEEDS_STEPS);
        let failed = "its reading of the steps has a factor 1 ∓ x ≤ 0 (a degenerate step)";
        let reading = |acc: Option<&GainAccumulator>| acc.cloned().ok_or(failed);
        match self {
            Self::None | Self::StartScale { .. } | Self::Start { .. } => Ok(run.acc.clone()),
            Self::Param { param } if !param.has_gain() => Ok(GainAccumulator::new(run.beta.len())),
            Self::Param { .. } => reading(readings?.at_scale(s)),
            Self::GradientScale { factor } => reading(readings?.at_scale(s / factor)),
            Self::Lag { shift: Shift::Late } => reading(readings?.late.as_ref().and_then(|r| r.0.as_ref())),
            Self::Lag { shift: Shift::MissingFirst } => {
                let gamma = readings?.first_gamma.ok_or(NEEDS_STEPS)?;
                let g0 = p.x.tr_mul(&(&p.x * model.b0() - &p.y)) / p.n() as f64;
                let mut acc = run.acc.clone();
                acc.add((g0 * (s * gamma)).as_slice()).map_err(|_| failed)?;
                Ok(acc)
            }
            Self::Momentum { .. } => Err("a replay, not a gain (see Hypothesis::try_on)"),
        }
    }

    fn try_on(self, p: &Problem, run: &Logged, settings: &NewtonSettings) -> Tried {
        let exact = !matches!(self, Self::Momentum { .. });
        let message = self.message(run);
        if let Self::Momentum { mu } = self {
            let ball = run.readings.and_then(|r| r.momentum.iter().find(|b| b.mu == mu));
            return match ball {
                None => Tried { hypothesis: self, rel_err: None, exact, message: NEEDS_STEPS.into() },
                Some(b) => {
                    let rel_err = Some(crate::numeric::rel_dist(&b.beta(), run.beta)).filter(|e| e.is_finite());
                    Tried { hypothesis: self, rel_err, exact, message }
                }
            };
        }
        let Some(model) = self.model(run) else {
            return Tried { hypothesis: self, rel_err: None, exact, message: "not tried: not a valid start".into() };
        };
        match self.accumulate(p, run, &model) {
            Err(why) => Tried { hypothesis: self, rel_err: None, exact, message: why.into() },
            Ok(acc) => {
                let eff = model.effective_init(&acc);
                let rel_err = predict(&p.x, &p.y, &eff, Some(run.beta), settings)
                    .ok()
                    .and_then(|pred| pred.checks.map(|c| c.rel_err))
                    .filter(|e| e.is_finite());
                Tried { hypothesis: self, rel_err, exact, message }
            }
        }
    }
}

/// Every hypothesis tried on a run, and the one that explains it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diagnosis {
    /// The first exact hypothesis (in order of preference) within the tolerance; else
    /// heavy ball when a replay reproduces the final iterate to [`REPLAY_TOL`]; else the
    /// closest exact one, with [`NO_EXPLANATION`] as its message.
    pub best: Tried,
    /// Closest first.
    pub tried: Vec<Tried>,
    /// Whether `best` makes the run agree exactly.
    #[serde(skip)]
    pub explained: bool,
}

/// Tries every hypothesis on the logged run and picks the best at tolerance `tol`.
pub fn diagnose(p: &Problem, run: &Logged, tol: f64) -> Diagnosis {
    let settings = NewtonSettings::default();
    let in_order: Vec<Tried> = Hypothesis::all(run).into_iter().map(|h| h.try_on(p, run, &settings)).collect();
    let err = |t: &Tried| t.rel_err.unwrap_or(f64::INFINITY);
    let mut tried = in_order.clone();
    tried.sort_by(|a, b| err(a).total_cmp(&err(b)));
    if let Some(best) = in_order.iter().find(|t| t.exact && err(t) <= tol) {
        return Diagnosis { best: best.clone(), tried, explained: true };
    }
    let replayed = tried.iter().find(|t| !t.exact && err(t) <= REPLAY_TOL.max(tol));
    let best = match (replayed, tried.iter().find(|t| t.exact)) {
        (Some(t), _) => t.clone(),
        (None, Some(t)) => Tried { message: unexplained(p, run), ..t.clone() },
        (None, None) => {
            Tried { hypothesis: Hypothesis::None, rel_err: None, exact: true, message: NO_EXPLANATION.into() }
        }
    };
    Diagnosis { best, tried, explained: false }
}

/// [`NO_EXPLANATION`], and whether the first logged gradient is ∇L at the stored
/// start's b₀ (for a full-batch loop, a loop that started elsewhere when it is not).
fn unexplained(p: &Problem, run: &Logged) -> String {
    let Some(first) = run.readings.map(|r| &r.first_grad).filter(|g| g.len() == p.d()) else {
        return NO_EXPLANATION.into();
    };
    let at_start = p.x.tr_mul(&(&p.x * run.model.b0() - &p.y)) / p.n() as f64;
    let gap = crate::numeric::rel_dist(&DVector::from_column_slice(first), &at_start);
    if gap > 1e-8 {
        format!(
            "{NO_EXPLANATION}. The first logged gradient is not ∇L at the stored start's b₀ (relative difference \
             {gap:.2e}): for a full-batch loop this means it started elsewhere; store its u0 and v0 (mirror descent: \
             alpha and b0), or its final u and v so the start can be recovered"
        )
    } else {
        NO_EXPLANATION.into()
    }
}

/// What to say when no hypothesis explains the run.
pub const NO_EXPLANATION: &str = "no exact hypothesis explains the run: a loop with momentum (heavy ball, Nesterov) \
     has no exact discrete-time theory here, nor has weight decay, another loss or another network; and with a \
     constant stepsize a one-step lag is invisible to the theory";
