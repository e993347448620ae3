//! Why a logged run disagrees (theory/README.md § Diagnosing a disagreement): the
//! mistakes a real loop makes, each tested by recomputing the gain from the logged
//! steps under that hypothesis and predicting again. The hypotheses are data
//! ([`Hypothesis`]); the best one is the one whose prediction is closest to the run.

use nalgebra::DVector;

use crate::model::{Init, Model, Param};
use crate::predict::predict;
use crate::problem::Problem;
use crate::solve::NewtonSettings;
use crate::trajectory::GainAccumulator;

/// One explanation of a disagreement: how the logged steps or the start are read.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "hypothesis", rename_all = "kebab-case")]
pub enum Hypothesis {
    /// The run as logged.
    None,
    /// The start's scale times `factor` (1/√2: the √2 of u₀ = √2α missing).
    StartScale { factor: f64 },
    /// u₀ = v₀ = α (b ≥ 0 on every coordinate) instead of the stored start.
    Start,
    /// Another parametrisation of the same start.
    Param { param: Param },
    /// The logged gradients are `factor` times the gradient of L = ‖Xb − y‖²/(2n).
    GradientScale { factor: f64 },
    /// Row k holds the gradient of step k − 1 (logged after the update).
    Lag,
    /// The first step is missing from the log (GD: its gradient is ∇L at b₀).
    MissingFirstStep,
}

/// A hypothesis and how far its prediction is from the run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Tried {
    #[serde(flatten)]
    pub hypothesis: Hypothesis,
    /// ‖b_theory − b∞‖/‖b∞‖ under it (`None` when its prediction failed).
    pub rel_err: Option<f64>,
    pub message: String,
}

/// The logged run: its model, stepsizes and gradients (K × d, in memory), final iterate.
pub struct Logged<'a> {
    pub model: &'a Model,
    pub stepsizes: &'a [f64],
    pub grads: &'a [f64],
    pub beta: &'a DVector<f64>,
}

impl Hypothesis {
    /// Every hypothesis worth testing for `model`.
    pub fn all(model: &Model) -> Vec<Self> {
        let mut h = vec![Self::None];
        h.extend([0.5f64.sqrt(), 2f64.sqrt(), 0.5, 2.0].map(|factor| Self::StartScale { factor }));
        if matches!(model.init, Init::Alpha(_)) && model.param != Param::Md {
            h.push(Self::Start);
        }
        h.extend(Param::ALL.into_iter().filter(|p| *p != model.param).map(|param| Self::Param { param }));
        h.extend([2.0, 0.5].map(|factor| Self::GradientScale { factor }));
        h.extend([Self::Lag, Self::MissingFirstStep]);
        h
    }

    /// The model this hypothesis reads the start as (`None` if it does not apply).
    fn model(self, m: &Model) -> Option<Model> {
        let scaled = |c: f64| match &m.init {
            Init::Alpha(a) => Init::Alpha(a * c),
            Init::Weights { u0, v0 } => Init::Weights { u0: u0 * c, v0: v0 * c },
            // α·c at the same z₀ = asinh(b₀/α²).
            Init::Mirror { alpha, b0 } => Init::Mirror { alpha: alpha * c, b0: b0 * (c * c) },
        };
        let model = match self {
            Self::StartScale { factor } => Model { param: m.param, init: scaled(factor) },
            Self::Start => match &m.init {
                Init::Alpha(a) => Model { param: m.param, init: Init::Weights { u0: a.clone(), v0: a.clone() } },
                _ => return None,
            },
            Self::Param { param } => Model { param, init: m.init.clone() },
            _ => m.clone(),
        };
        model.check(model.dim()).ok().map(|()| model)
    }

    /// What the user should do if this hypothesis explains the run.
    pub fn message(self, m: &Model) -> String {
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
            Self::Start => "your loop starts from u₀ = v₀ = α: store u0 and v0 in the trajectory".into(),
            Self::Param { param } => format!(
                "your loop is {}: pass --param {} (or store param = \"{}\" in the file)",
                match param {
                    Param::Uv => "b = u ⊙ v",
                    Param::U2v2 => "b = u² − v²",
                    Param::Md => "mirror descent with ψ_α",
                },
                param.name(),
                param.name()
            ),
            Self::GradientScale { factor } => format!(
                "your gradients are {factor} times the gradient of L = ‖Xb − y‖²/(2n) (a loss with 1/n instead of \
                 1/(2n) gives 2): log the gradient of that L (divide yours by {factor})"
            ),
            Self::Lag => "your gradients are logged one step late (row k is step k − 1's): log each gradient \
                          before the update that uses it"
                .into(),
            Self::MissingFirstStep => "the first step is missing from the log: log from step 0".into(),
        }
    }

    /// The gain accumulated from the logged steps as this hypothesis reads them.
    fn accumulate(self, p: &Problem, run: &Logged, model: &Model) -> Result<GainAccumulator, String> {
        let d = run.beta.len();
        let mut acc = GainAccumulator::new(d);
        if !model.param.has_gain() {
            return Ok(acc);
        }
        let s = model.param.x_scale();
        let rows: Vec<&[f64]> = run.grads.chunks_exact(d).collect();
        let mut x = vec![0.0; d];
        let mut add = |gamma: f64, g: &[f64], factor: f64| -> Result<(), String> {
            x.iter_mut().zip(g).for_each(|(xi, gi)| *xi = s * gamma * gi / factor);
            acc.add(&x).map_err(|e| e.to_string())
        };
        let factor = match self {
            Self::GradientScale { factor } => factor,
            _ => 1.0,
        };
        let skip = usize::from(self == Self::Lag);
        if self == Self::MissingFirstStep {
            let g0 = p.x.tr_mul(&(&p.x * model.b0() - &p.y)) / p.n() as f64;
            add(run.stepsizes[0], g0.as_slice(), 1.0)?;
        }
        for (gamma, g) in run.stepsizes.iter().zip(rows.iter().skip(skip)) {
            add(*gamma, g, factor)?;
        }
        Ok(acc)
    }
}

/// Tries every hypothesis on the logged run; sorted best first (smallest rel_err).
pub fn diagnose(p: &Problem, run: &Logged) -> Vec<Tried> {
    let settings = NewtonSettings::default();
    let mut tried: Vec<Tried> = Hypothesis::all(run.model)
        .into_iter()
        .map(|h| {
            let rel_err = h.model(run.model).and_then(|model| {
                let acc = h.accumulate(p, run, &model).ok()?;
                let eff = model.effective_init(&acc);
                let pred = predict(&p.x, &p.y, &eff, Some(run.beta), &settings).ok()?;
                pred.checks.map(|c| c.rel_err).filter(|e| e.is_finite())
            });
            Tried { hypothesis: h, rel_err, message: h.message(run.model) }
        })
        .collect();
    tried.sort_by(|a, b| a.rel_err.unwrap_or(f64::INFINITY).total_cmp(&b.rel_err.unwrap_or(f64::INFINITY)));
    tried
}

/// What to say when no hypothesis explains the run.
pub const NO_EXPLANATION: &str = "no exact hypothesis explains the run: a loop with momentum (heavy ball, Nesterov) \
     has no exact discrete-time theory here, nor has weight decay, another loss or another network; and with a \
     constant stepsize a one-step lag is invisible to the theory";
