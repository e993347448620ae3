//! One problem (or one per seed), several runs, and the reference solutions side by
//! side: what `dlncheck compare` measures. Rendering lives in [`crate::report`].

use nalgebra::DVector;

use crate::bias::EffectiveInit;
use crate::model::{Init, Model, Param};
use crate::predict::rel_dist;
use crate::problem::{Problem, ProblemSpec};
use crate::runfile::RunRecord;
use crate::solve::{
    LpBackend, NewtonSettings, SolveError, basis_pursuit, min_norm, solve_implicit, weighted_basis_pursuit,
};
use crate::train::{Batching, Stepsizes, Stop, TrainConfig, train};

/// A run to compare: `gd:γ` or `sgd:γ:m`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub stepsize: f64,
    /// SGD batch size; `None` for GD.
    pub batch: Option<usize>,
}

impl RunSpec {
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let num = |t: &str| t.parse::<f64>().ok().filter(|g| g.is_finite() && *g > 0.0);
        match parts[..] {
            ["gd", g] => num(g).map(|stepsize| Self { stepsize, batch: None }),
            ["sgd", g, m] => {
                num(g).zip(m.parse().ok().filter(|m| *m > 0)).map(|(stepsize, m)| Self { stepsize, batch: Some(m) })
            }
            _ => None,
        }
        .ok_or_else(|| format!("run `{s}` must read gd:γ or sgd:γ:m with γ > 0 and m ≥ 1"))
    }

    pub fn label(&self) -> String {
        match self.batch {
            None => format!("GD γ={}", crate::report::short(self.stepsize)),
            Some(m) => format!("SGD γ={} m={m}", crate::report::short(self.stepsize)),
        }
    }
}

/// Settings of a comparison.
#[derive(Debug, Clone)]
pub struct CompareSpec {
    pub alpha: f64,
    /// The parametrisation of the built-in runs, and their start when not the default
    /// one at scale `alpha` (a given start must have the problems' d).
    pub param: Param,
    pub init: Option<Init>,
    pub runs: Vec<RunSpec>,
    pub seeds: usize,
    pub max_iters: usize,
    pub tol: f64,
    pub backend: LpBackend,
    /// Runs logged elsewhere, compared on the given problem beside the built-in runs.
    pub trajectories: Vec<LoggedRun>,
    /// Momentum for the built-in runs (no theory: their theory and weighted-BP rows are
    /// empty and the gain columns hold the balance gain).
    pub momentum: Option<crate::train::Momentum>,
}

impl CompareSpec {
    /// The built-in runs' model on d coordinates (checked).
    pub fn model(&self, d: usize) -> Result<Model, String> {
        crate::sweep::exact_only(self.param, "compare")?;
        let model = match &self.init {
            Some(init) => Model { param: self.param, init: init.clone() },
            None => Model::new(self.param, DVector::from_element(d, self.alpha)),
        };
        model.check(d)?;
        Ok(model)
    }
}

/// A run made elsewhere: its label, where it came from, its effective initialisation
/// and its final iterate.
#[derive(Debug, Clone)]
pub struct LoggedRun {
    pub label: String,
    pub file: std::path::PathBuf,
    pub eff: EffectiveInit,
    pub beta: DVector<f64>,
}

/// The measured columns of one row (NaN where a column does not apply).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// ‖b − b*‖₂.
    pub err: f64,
    pub test_loss: f64,
    pub l1: f64,
    /// Support recovery at |b_i| > 0.01 ‖b*‖_∞.
    pub precision: f64,
    pub recall: f64,
    pub gain_l1: f64,
    /// mean Gain on supp(b*) / mean Gain off it.
    pub gain_ratio: f64,
    /// ‖b − b_theory‖₂ / ‖b_theory‖₂ for the run's own prediction.
    pub dist_theory: f64,
}

/// Support threshold, relative to ‖b*‖_∞.
pub const SUPPORT_THRESHOLD: f64 = 0.01;

/// Rows (labels) and, per seed, their metrics.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub labels: Vec<String>,
    /// `per_seed[k][row]`.
    pub per_seed: Vec<Vec<Metrics>>,
    /// Runs that did not converge or diverged, with their seed.
    pub notes: Vec<String>,
    /// Per row: why its numbers are not shown (the run diverged, or did not converge
    /// on some seed), the first seed's reason; `None` for a measured row.
    pub flags: Vec<Option<RowFlag>>,
}

/// Why a row of a run carries no numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RowFlag {
    Diverged { seed: u64, step: usize },
    NotConverged { seed: u64, loss: f64 },
}

impl RowFlag {
    pub fn text(&self) -> String {
        match self {
            Self::Diverged { seed, step } => format!("diverged at step {step} (seed {seed})"),
            Self::NotConverged { seed, loss } => format!("not converged: loss {loss:.1e} (seed {seed})"),
        }
    }
}

/// The problem for seed k: the given one, or a fresh draw with seed k.
pub enum ProblemSource<'a> {
    Fixed(&'a Problem),
    Generated(ProblemSpec),
}

pub fn compare(source: &ProblemSource, spec: &CompareSpec) -> Result<Comparison, SolveError> {
    let mut per_seed = Vec::with_capacity(spec.seeds);
    let (mut labels, mut notes, mut flags) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..spec.seeds {
        let owned;
        let p = match source {
            ProblemSource::Fixed(p) => *p,
            ProblemSource::Generated(g) => {
                owned = ProblemSpec { seed: k as u64, ..*g }.generate().map_err(SolveError::Shape)?;
                &owned
            }
        };
        let (rows, row_metrics, row_flags) = compare_one(p, spec, k as u64, &mut notes)?;
        labels = rows;
        flags.resize(labels.len(), None);
        for (flag, new) in flags.iter_mut().zip(row_flags) {
            *flag = flag.take().or(new);
        }
        per_seed.push(row_metrics);
    }
    Ok(Comparison { labels, per_seed, notes, flags })
}

/// One seed's rows: labels, measured columns, and flags.
type SeedRows = (Vec<String>, Vec<Metrics>, Vec<Option<RowFlag>>);

fn compare_one(p: &Problem, spec: &CompareSpec, seed: u64, notes: &mut Vec<String>) -> Result<SeedRows, SolveError> {
    let d = p.d();
    let settings = NewtonSettings::default();
    let model = spec.model(d).map_err(SolveError::Shape)?;
    let (mut labels, mut rows, mut flags) = (Vec::new(), Vec::new(), Vec::new());
    for run_spec in &spec.runs {
        let batching = run_spec.batch.map_or(Batching::Full, |m| Batching::Random { m, seed });
        let mut config = TrainConfig::with_model(model.clone(), Stepsizes::Constant(run_spec.stepsize), batching);
        config.max_iters = spec.max_iters;
        config.tol = spec.tol;
        config.momentum = spec.momentum;
        let run = train(p, &config).map_err(|e| SolveError::Shape(e.to_string()))?;
        let label = match spec.momentum {
            Some(m) => {
                format!("{} {} μ={}", run_spec.label(), if m.nesterov { "nesterov" } else { "heavy ball" }, m.mu)
            }
            None => run_spec.label(),
        };
        let flag = match run.stop {
            Stop::Diverged { step } => Some(RowFlag::Diverged { seed, step }),
            _ if run.loss >= CONVERGED_LOSS => Some(RowFlag::NotConverged { seed, loss: run.loss }),
            _ => None,
        };
        if let Some(f) = &flag {
            notes.push(format!("{label}: {}", f.text()));
        }
        let run_rows = if matches!(flag, Some(RowFlag::Diverged { .. })) {
            RUN_ROWS.map(|r| (format!("{label}: {r}"), metrics_nan())).to_vec()
        } else if !run.has_exact_theory() {
            if seed == 0 && !notes.iter().any(|n| n.contains("momentum has no theory")) {
                notes.push(
                    "momentum has no theory: its theory and weighted-BP rows are empty, its gain columns hold the \
                     balance gain ln|w₊,₀w₋,₀| − ln|w₊w₋|"
                        .into(),
                );
            }
            let mut rows = RUN_ROWS.map(|r| (format!("{label}: {r}"), metrics_nan())).to_vec();
            rows[0].1 = metrics(p, &run.beta(), Some(&run.balance_gain()), None);
            rows
        } else {
            let rec = RunRecord::from_run(&run);
            run_rows(p, &label, &rec.beta, &rec.effective_init(), spec, seed, notes)?
        };
        push_rows(&mut labels, &mut rows, &mut flags, run_rows, flag);
    }
    for r in &spec.trajectories {
        let loss = p.loss(&r.beta);
        let flag = (loss >= CONVERGED_LOSS).then_some(RowFlag::NotConverged { seed, loss });
        if let Some(f) = &flag {
            notes.push(format!("{} (from {}): {}", r.label, r.file.display(), f.text()));
        }
        let run_rows = run_rows(p, &r.label, &r.beta, &r.eff, spec, seed, notes)?;
        push_rows(&mut labels, &mut rows, &mut flags, run_rows, flag);
    }
    let gf = solve_implicit(&p.x, &p.y, &model.gradient_flow().scales(), &settings)?.beta;
    let references = [
        ("gradient flow", gf),
        ("BP (ℓ1)", basis_pursuit(&p.x, &p.y, spec.backend)?.beta),
        ("min ℓ2", min_norm(&p.x, &p.y)?),
    ];
    let mut reference_rows: Vec<(String, Metrics)> =
        references.into_iter().map(|(label, b)| (label.to_owned(), metrics(p, &b, None, None))).collect();
    if let Some(b) = &p.beta_star {
        reference_rows.push(("b*".to_owned(), metrics(p, b, None, None)));
    }
    push_rows(&mut labels, &mut rows, &mut flags, reference_rows, None);
    Ok((labels, rows, flags))
}

/// The rows of one run, by the suffix of their labels (see [`run_rows`]).
const RUN_ROWS: [&str; 3] = ["run", "theory", "weighted BP"];

/// A run counts as converged below this training loss.
pub const CONVERGED_LOSS: f64 = 1e-12;

fn push_rows(
    labels: &mut Vec<String>,
    rows: &mut Vec<Metrics>,
    flags: &mut Vec<Option<RowFlag>>,
    new: Vec<(String, Metrics)>,
    flag: Option<RowFlag>,
) {
    for (l, m) in new {
        labels.push(l);
        rows.push(m);
        flags.push(flag.clone());
    }
}

/// The three rows of one run (built-in or logged elsewhere): its limit, the theory's
/// prediction from its gain, and weighted basis pursuit with w = ln(1/α_∞).
fn run_rows(
    p: &Problem,
    label: &str,
    beta: &DVector<f64>,
    eff: &EffectiveInit,
    spec: &CompareSpec,
    seed: u64,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, Metrics)>, SolveError> {
    let ell = eff.ln_alpha_inf2();
    let gain = Some(&eff.gain);
    let theory = match solve_implicit(&p.x, &p.y, &eff.scales(), &NewtonSettings::default()) {
        Ok(sol) => Some(sol.beta),
        Err(e) => {
            notes.push(format!("seed {seed}: {label}: no theory prediction ({e})"));
            None
        }
    };
    let weights = ell.map(|l| -0.5 * l); // ln(1/α_∞)
    let wbp = match weighted_basis_pursuit(&p.x, &p.y, &weights, spec.backend) {
        // Not a run: no gain of its own (the run's row has it); its distance to the theory is kept.
        Ok(s) => metrics(p, &s.beta, None, theory.as_ref()),
        Err(SolveError::BadWeights(_)) => metrics_nan(),
        Err(e) => return Err(e),
    };
    let [run, predicted, weighted] = RUN_ROWS;
    Ok(vec![
        (format!("{label}: {run}"), metrics(p, beta, gain, theory.as_ref())),
        (format!("{label}: {predicted}"), theory.as_ref().map_or_else(metrics_nan, |t| metrics(p, t, gain, Some(t)))),
        (format!("{label}: {weighted}"), wbp),
    ])
}

fn metrics_nan() -> Metrics {
    let nan = f64::NAN;
    Metrics {
        err: nan,
        test_loss: nan,
        l1: nan,
        precision: nan,
        recall: nan,
        gain_l1: nan,
        gain_ratio: nan,
        dist_theory: nan,
    }
}

/// The metrics of one solution `b` (NaN where they do not apply): against b* (error,
/// support recovery), the held-out loss, the gain's size and shape, and the distance to
/// `theory` when given.
pub fn metrics(p: &Problem, b: &DVector<f64>, gain: Option<&DVector<f64>>, theory: Option<&DVector<f64>>) -> Metrics {
    let mut m = metrics_nan();
    m.l1 = b.lp_norm(1);
    m.test_loss = p.test_loss(b).unwrap_or(f64::NAN);
    m.dist_theory = theory.map_or(f64::NAN, |t| rel_dist(b, t));
    if let Some(g) = gain {
        m.gain_l1 = g.lp_norm(1);
    }
    let Some(star) = &p.beta_star else { return m };
    m.err = crate::numeric::norm(&(b - star));
    let tau = SUPPORT_THRESHOLD * star.amax();
    let on: Vec<bool> = star.iter().map(|s| *s != 0.0).collect();
    let found: Vec<bool> = b.iter().map(|v| v.abs() > tau).collect();
    let hits = on.iter().zip(&found).filter(|(a, b)| **a && **b).count() as f64;
    let (n_found, n_on) = (found.iter().filter(|f| **f).count() as f64, on.iter().filter(|o| **o).count() as f64);
    m.precision = if n_found > 0.0 { hits / n_found } else { f64::NAN };
    m.recall = if n_on > 0.0 { hits / n_on } else { f64::NAN };
    if let Some(g) = gain {
        let mean = |want: bool| {
            let v: Vec<f64> = g.iter().zip(&on).filter(|(_, o)| **o == want).map(|(g, _)| *g).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        m.gain_ratio = mean(true) / mean(false);
    }
    m
}
