//! The commands behind the binary: each takes plain settings, reads its files, computes,
//! and returns an [`Outcome`] (a JSON object, a human text and an exit code). Errors of
//! every library area meet here in [`Error`], rendered once by the binary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use nalgebra::DVector;
use serde_json::{Value, json};

use crate::bias::{EffectiveInit, Side};
use crate::compare::{CompareSpec, LoggedRun, ProblemSource, compare};
use crate::image::FigureOutput;
use crate::model::{Model, Param};
use crate::npz::{self, InputError, NpzReader};
use crate::predict::{Precision, Prediction, Source, Verdict, decide, predict, tol_used};
use crate::problem::{Problem, ProblemSpec};
use crate::report::{Format, TableStyle, render};
use crate::runfile::{Loaded, save_run};
use crate::solve::{
    LpBackend, NewtonSettings, Potential, SolveError, certify_exactly, min_norm, solve_implicit, solve_potential,
    weighted_basis_pursuit,
};
use crate::sweep::{Grid, Shard, merge, run_sweep};
use crate::threshold::{ThresholdSettings, budget_steps, divergence, stability_bound, threshold};
use crate::train::{Batching, Run, Stepsizes, Stop, TrainConfig, TrainError, load_schedule, train};
use crate::trajectory::{ExternalTrajectory, GainAccumulator, TrajectoryError, continued, read_alpha};
use crate::{limits, output};

/// Every error a command can meet: bad usage or input (exit code 2), or a numerical
/// method that missed its tolerance or certificate (exit code 5).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Trajectory(#[from] TrajectoryError),
    #[error("{0}")]
    Train(#[from] TrainError),
    #[error("{0}")]
    Solve(#[from] SolveError),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Solve(e) => e.exit_code(),
            _ => 2,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// What a command produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub json: Value,
    pub text: String,
    /// 0 ok, 1 a checked claim does not hold, 3 a run diverged, 5 sweep cells failed.
    pub exit: u8,
}

impl Outcome {
    fn ok(json: Value, text: String) -> Self {
        Self { json, text, exit: 0 }
    }
}

/// `dlncheck gen`: draws a problem and writes it.
///
/// With `beta_star` (a .npy vector, or a .npz holding `beta_star`), b* is that vector and
/// d its length; the features and the noise are drawn as usual.
pub fn generate(spec: &ProblemSpec, out: &Path, beta_star: Option<&Path>) -> Result<Outcome> {
    let (spec, b) = match beta_star {
        Some(path) => {
            let b = crate::npz::read_vector(path, "beta_star", None)?;
            let sparsity = b.iter().filter(|v| **v != 0.0).count();
            (ProblemSpec { d: b.len(), sparsity: 0, ..*spec }, Some((b, sparsity)))
        }
        None => (*spec, None),
    };
    let mut p = spec.generate().map_err(Error::Usage)?;
    let sparsity = match b {
        Some((b, s)) => {
            p = p.with_beta_star(b).map_err(Error::Usage)?;
            s
        }
        None => spec.sparsity,
    };
    let inputs: Vec<&Path> = beta_star.into_iter().collect();
    p.save(out, &inputs)?;
    let text = format!("wrote {} ({}×{}, {sparsity} nonzeros in b*)\n", out.display(), p.n(), p.d());
    Ok(Outcome::ok(json!({"out": out, "n": p.n(), "d": p.d(), "sparsity": sparsity}), text))
}

/// α from the command line: a number, or a `.npz` file holding `alpha`.
#[derive(Debug, Clone, PartialEq)]
pub enum AlphaArg {
    Scalar(f64),
    File(PathBuf),
}

impl AlphaArg {
    pub fn parse(s: &str) -> Self {
        s.parse().map_or_else(|_| Self::File(s.into()), Self::Scalar)
    }

    fn resolve(&self, d: usize) -> Result<DVector<f64>> {
        match self {
            Self::Scalar(a) if a.is_finite() && *a > 0.0 => Ok(DVector::from_element(d, *a)),
            Self::Scalar(a) => Err(Error::Usage(format!("--alpha is {a}; α must be finite and > 0"))),
            Self::File(path) if !path.exists() => Err(Error::Usage(format!(
                "--alpha `{}` is neither a number nor an existing .npz file holding `alpha`",
                path.display()
            ))),
            Self::File(path) => Ok(read_alpha(&mut NpzReader::open(path)?, d)?),
        }
    }
}

/// The family flags: `--param` (default uv) and `--init INIT.npz` (`u0`, `v0`; for md
/// `alpha` and optional `b0`), which replaces `--alpha` where given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    pub param: Param,
    pub init: Option<PathBuf>,
}

impl Family {
    /// The model of a run on d coordinates: the start from --init, else the
    /// parametrisation's default start at scale --alpha.
    pub fn model(&self, alpha: Option<&AlphaArg>, d: usize) -> Result<Model> {
        match (&self.init, alpha) {
            (Some(path), _) => {
                let mut f = NpzReader::open(path)?;
                if !["u0", "v0", "alpha", "b0"].iter().any(|a| f.contains(a)) {
                    let what = "holds no start: expected u0 and v0 (or alpha, and b0 for --param md)";
                    return Err(InputError { file: path.clone(), array: None, what: what.into() }.into());
                }
                Ok(crate::runfile::read_model(&mut f, d, Some(self.param))?)
            }
            (None, Some(a)) => {
                let model = Model::new(self.param, a.resolve(d)?);
                model.check(d).map_err(Error::Usage)?;
                Ok(model)
            }
            (None, None) => Err(Error::Usage("give --alpha or --init".into())),
        }
    }

    /// Files the command reads (a report may not replace them).
    fn inputs(&self) -> Vec<&Path> {
        self.init.iter().map(PathBuf::as_path).collect()
    }
}

/// Settings of `dlncheck train`.
#[derive(Debug, Clone)]
pub struct TrainArgs {
    pub problem: PathBuf,
    pub alpha: Option<AlphaArg>,
    pub family: Family,
    /// A stepsize spec (`0.1` or `0.5@1000,0.05`), or `None` with a schedule file.
    pub stepsize: Option<String>,
    pub schedule: Option<PathBuf>,
    pub batch: Option<usize>,
    pub seed: u64,
    pub iters: usize,
    pub tol: f64,
    pub record_batches: bool,
    pub momentum: Option<crate::train::Momentum>,
    pub out: Option<PathBuf>,
}

/// `dlncheck train`: runs (S)GD and writes the run file (not when it diverged: exit 3).
pub fn train_cmd(a: &TrainArgs) -> Result<Outcome> {
    let mut inputs = vec![a.problem.as_path()];
    inputs.extend(a.schedule.as_deref());
    if let Some(AlphaArg::File(f)) = &a.alpha
        && a.family.init.is_none()
    {
        inputs.push(f);
    }
    inputs.extend(a.family.inputs());
    if let Some(out) = &a.out {
        output::check_target(out, &inputs).map_err(|e| Error::Usage(e.to_string()))?;
    }
    let problem = Problem::load(&a.problem)?;
    let (n, d) = (problem.n(), problem.d());
    let (stepsizes, batching) = match (&a.stepsize, &a.schedule) {
        (Some(s), None) => {
            let batching = match a.batch {
                None => Batching::Full,
                Some(m) => Batching::Random { m, seed: a.seed },
            };
            (Stepsizes::parse(s).map_err(Error::Usage)?, batching)
        }
        (None, Some(path)) if a.batch.is_none() => load_schedule(path, n)?,
        _ => return Err(Error::Usage("give either --stepsize (with optional --batch) or --schedule".into())),
    };
    let mut config = TrainConfig::with_model(a.family.model(a.alpha.as_ref(), d)?, stepsizes, batching);
    config.max_iters = a.iters;
    config.tol = a.tol;
    config.record_batches = a.record_batches;
    config.momentum = a.momentum;
    let schedule_len = if a.schedule.is_some() { config.stepsizes.len() } else { None };
    let run = train(&problem, &config)?;
    if let (Some(out), false) = (&a.out, run.diverged()) {
        save_run(&run, out, &inputs)?;
    }
    let mut outcome = train_outcome(&run, a.out.as_deref());
    if let (Some(k), Stop::Converged) = (schedule_len, run.stop)
        && run.iters < k
    {
        let _ = writeln!(
            outcome.text,
            "note: the schedule has {k} steps; --tol {:e} stopped the replay after {} (pass --tol 0 to replay it all)",
            a.tol, run.iters
        );
        outcome.json["schedule_steps"] = json!(k);
    }
    if a.out.is_none() && !run.diverged() {
        outcome.text.push_str("note: no --out given, so the run is not written (give --out run.npz to keep it)\n");
    }
    outcome.json["written"] = json!(a.out.is_some() && !run.diverged());
    Ok(outcome)
}

fn train_outcome(run: &Run, out: Option<&Path>) -> Outcome {
    let beta = run.beta();
    let json = json!({
        "beta": beta.as_slice(),
        "loss": finite_or_null(run.loss),
        "iters": run.iters,
        "diverged": run.diverged(),
        "stop": run.stop,
        "gain_l1": run.has_exact_theory().then(|| run.accumulator.gain.lp_norm(1)),
        "balance_gain_l1": finite_or_null(run.balance_gain().lp_norm(1)),
        "momentum": run.momentum,
        "out": out,
    });
    let mut text = match run.stop {
        Stop::Converged => format!("converged after {} steps, loss {:.3e}\n", run.iters, run.loss),
        Stop::MaxIters => format!("stopped at the step cap ({} steps), loss {:.3e}\n", run.iters, run.loss),
        Stop::Diverged { step } => {
            format!("diverged at step {step} (non-finite or exploding iterates); nothing written\n")
        }
    };
    if !run.diverged() && run.has_exact_theory() && run.model.param.has_gain() {
        let _ = writeln!(text, "|Gain|_1 = {:.6e}", run.accumulator.gain.lp_norm(1));
    } else if !run.diverged() && run.model.param != Param::Md {
        let _ = writeln!(
            text,
            "balance gain ln|w₊,₀w₋,₀| − ln|w₊w₋|, ℓ1 over coordinates: {:.6e} (a measurement: no gain theory for \
             this run)",
            run.balance_gain().lp_norm(1)
        );
        if let Some(p) = out {
            let _ = writeln!(text, "wrote {}", p.display());
        }
    }
    Outcome { json, text, exit: if run.diverged() { 3 } else { 0 } }
}

fn finite_or_null(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

/// Where the gain comes from: a run file, or an external trajectory (one run logged in
/// one or more files, in order).
#[derive(Debug, Clone)]
pub enum GainSource {
    Run(PathBuf),
    Trajectory(Vec<PathBuf>),
}

impl GainSource {
    fn first_file(&self) -> &Path {
        match self {
            Self::Run(p) => p,
            Self::Trajectory(p) => p.first().map_or(Path::new("--trajectory"), PathBuf::as_path),
        }
    }
}

/// The source's d (from `beta` of a run, the columns of `grads` of a trajectory) must
/// be the problem's; the message blames the source's primary array.
fn check_dim(src: &GainSource, got: usize, d: usize) -> Result<()> {
    if got == d {
        return Ok(());
    }
    let array = if matches!(src, GainSource::Run(_)) { "beta" } else { "grads" };
    let what = format!("has d = {got} coordinates, the problem's X has d = {d} columns");
    Err(InputError { file: src.first_file().to_owned(), array: Some(array.into()), what }.into())
}

/// The model, effective initialisation, conservation residual (run files) and final
/// iterate of a source; `param` is the command line's --param (it must agree with a
/// `param` the files store).
fn load_source(src: &GainSource, param: Option<Param>) -> Result<Loaded> {
    match src {
        GainSource::Run(path) => Ok(crate::runfile::load_effective(path, param)?),
        GainSource::Trajectory(paths) => {
            let parts = paths.iter().map(|p| ExternalTrajectory::load(p, param)).collect::<npz::Result<Vec<_>>>()?;
            let eff = continued(&parts)?;
            let beta = parts.last().and_then(|t| t.beta.clone());
            let model = parts
                .first()
                .map(|t| t.model.clone())
                .ok_or_else(|| Error::Usage("no trajectory file given".into()))?;
            let steps = parts.iter().map(|t| t.stepsizes.len()).sum();
            let max_gain = eff.gain.iter().fold(0.0, |m: f64, g| m.max(g.abs()));
            let float32 = parts.iter().any(|t| t.float32);
            let weights = parts.last().and_then(|t| t.weights.clone());
            let mut floors: Vec<Precision> = float32.then(|| Precision::float32(steps, max_gain)).into_iter().collect();
            let unit = if float32 { crate::predict::F32_UNIT_ROUNDOFF } else { f64::EPSILON / 2.0 };
            floors.extend(weights.as_ref().and_then(|(wp, wm)| Precision::conservation(&eff, wp, wm, steps, unit)));
            Ok(Loaded { model, eff, conservation: None, beta, floors, weights })
        }
    }
}

/// `dlncheck gain`: Gain, α_∞, ln α_∞², ρ, α_±, b̃_0.
pub fn gain_cmd(src: &GainSource, param: Option<Param>) -> Result<Outcome> {
    let l = load_source(src, param)?;
    no_gain_for_depth(&l.model)?;
    let e = &l.eff;
    let v = |x: DVector<f64>| json!(x.as_slice());
    let json = json!({
        "gain": v(e.gain.clone()),
        "alpha_inf": v(e.alpha_inf()),
        "ln_alpha_inf2": v(e.ln_alpha_inf2()),
        "rho": v(e.rho_total()),
        "param": l.model.param,
        "q_plus": v(e.q_plus()),
        "q_minus": v(e.q_minus()),
        "alpha_plus": v(e.alpha_plus()),
        "alpha_minus": v(e.alpha_minus()),
        "beta_tilde0": v(e.beta_tilde0()),
        "gain_l1": e.gain.lp_norm(1),
        "conservation_residual": l.conservation,
    });
    let mut text = String::new();
    let _ =
        writeln!(text, "d = {}, |Gain|_1 = {:.6e}, max Gain = {:.6e}", e.gain.len(), e.gain.lp_norm(1), e.gain.max());
    let scales = e.scales();
    let two_sided: Vec<usize> = (0..scales.len()).filter(|&i| scales.side[i] == Side::Both).collect();
    let (ell, rho) = (e.ln_alpha_inf2(), e.rho_total());
    let range = |v: &DVector<f64>, f: fn(f64, f64) -> f64, init: f64| two_sided.iter().map(|&i| v[i]).fold(init, f);
    if !two_sided.is_empty() {
        let _ = writeln!(
            text,
            "ln α_∞² in [{:.6}, {:.6}], |ρ|_∞ = {:.3e} (param {}, {} two-sided coordinates)",
            range(&ell, f64::min, f64::INFINITY),
            range(&ell, f64::max, f64::NEG_INFINITY),
            two_sided.iter().map(|&i| rho[i].abs()).fold(0.0, f64::max),
            l.model.param.name(),
            two_sided.len()
        );
    }
    let count = |side: Side| scales.side.iter().filter(|s| **s == side).count();
    let (plus, minus, zero) = (count(Side::Plus), count(Side::Minus), count(Side::Zero));
    if plus + minus + zero > 0 {
        let _ = writeln!(
            text,
            "sign-constrained coordinates: {plus} with b ≥ 0, {minus} with b ≤ 0, {zero} fixed at 0 (their limit is a \
             relative entropy's; α_∞ and ρ are not defined there)"
        );
    }
    if let Some(c) = l.conservation {
        let _ = writeln!(text, "conservation |w₊w₋| = |w₊,₀w₋,₀| exp(-Gain): residual {c:.3e} (relative to w₊²+w₋²)");
    }
    text.push_str("(--json for every vector)\n");
    Ok(Outcome::ok(json, text))
}

/// Depth D has no gain: the commands that read one say so (exit 2).
fn no_gain_for_depth(model: &Model) -> Result<()> {
    match model.param {
        Param::Depth(d) => Err(Error::Usage(format!(
            "depth:{d} has no gain: its discrete steps have no exact theory (theory/README.md § Deeper networks and \
             momentum); `predict --param depth:{d}` reports gradient flow's limit and the distance to it"
        ))),
        _ => Ok(()),
    }
}

/// `dlncheck predict`: the theory's limit for a run or trajectory on a problem.
///
/// With a final iterate `beta` the prediction is a verdict at relative tolerance `tol`:
/// `agrees` (exit 0), `disagrees` (exit 1) or `not_converged` (exit 4).
pub fn predict_cmd(problem_path: &Path, src: &GainSource, param: Option<Param>, user_tol: f64) -> Result<Outcome> {
    if !(user_tol.is_finite() && user_tol > 0.0) {
        return Err(Error::Usage(format!("--tol {user_tol:e} must be finite and > 0")));
    }
    let problem = Problem::load(problem_path)?;
    problem.check_interpolation(problem_path)?;
    let l = load_source(src, param)?;
    check_dim(src, l.eff.gain.len(), problem.d())?;
    if let Some(cmp) = crate::predict::depth_prediction(&problem.x, &problem.y, &l.model, l.beta.as_ref()) {
        return Ok(depth_outcome(&cmp?));
    }
    let pred = predict(&problem.x, &problem.y, &l.eff, l.beta.as_ref(), &NewtonSettings::default())?;
    let (tol, tol_reason) = tol_used(user_tol, &l.floors);
    let source = match src {
        GainSource::Run(_) => Source::Train,
        GainSource::Trajectory(_) => Source::Trajectory,
    };
    let decision = decide(pred.checks.as_ref(), tol, source);
    let mut json = prediction_json(&pred);
    json["verdict"] = json!(decision.verdict);
    json["message"] = json!(decision.message);
    json["tol"] = json!(user_tol);
    json["tol_used"] = json!(tol);
    json["tol_reason"] = json!(tol_reason);
    let mut text = prediction_text(&pred);
    if let Some(reason) = &tol_reason {
        let _ = writeln!(text, "tolerance raised from {user_tol:.0e} to {tol:.2e}: {reason}");
    }
    let _ = writeln!(text, "{}", decision.message);
    if decision.verdict == Some(Verdict::Disagrees)
        && let GainSource::Trajectory(_) = src
    {
        let dx = diagnose_run(&problem, src, &l, tol)?;
        let _ = writeln!(text, "hint: {}", dx.best.message);
        json["hint"] = json!(dx.best.message);
    }
    Ok(Outcome { json, text, exit: decision.exit })
}

/// Depth D: the flow's limit and the distance to it, with `verdict: null` (exit 0; 4 when
/// the run has not reached its limit).
fn depth_outcome(c: &crate::predict::FlowComparison) -> Outcome {
    let message = c.message();
    let mut json = serde_json::to_value(c).unwrap_or(Value::Null);
    json["verdict"] = Value::Null;
    json["message"] = json!(message);
    let mut text = format!(
        "gradient flow's limit on b = u^{d} − v^{d}: {} Newton iterations, KKT residual {:.3e}\n",
        c.newton_iters,
        c.kkt_flow,
        d = c.depth
    );
    if let (Some(dist), Some(r)) = (c.dist_flow, c.primal_residual) {
        let _ = writeln!(text, "distance to it ‖b∞ − b_flow‖/‖b_flow‖ = {dist:.6e} (primal residual {r:.3e})");
    }
    let _ = writeln!(text, "{message}");
    Outcome { json, text, exit: if c.unconverged() { 4 } else { 0 } }
}

/// `dlncheck diagnose`: which hypothesis about a logged run makes it agree
/// ([`crate::diagnose`]); exit 0 when one does (the run as logged included), 1 when none.
/// A trajectory is streamed once through every reading; a run file (no steps) allows
/// only the hypotheses about the start and the parametrisation.
pub fn diagnose_cmd(problem_path: &Path, src: &GainSource, param: Option<Param>, user_tol: f64) -> Result<Outcome> {
    let problem = Problem::load(problem_path)?;
    problem.check_interpolation(problem_path)?;
    let l = load_source(src, param)?;
    no_gain_for_depth(&l.model)?;
    check_dim(src, l.eff.gain.len(), problem.d())?;
    let (tol, tol_reason) = tol_used(user_tol, &l.floors);
    let dx = diagnose_run(&problem, src, &l, tol)?;
    let mut text = String::new();
    for t in &dx.tried {
        let rel = t.rel_err.map_or("–".to_owned(), |e| format!("{e:.3e}"));
        let _ = writeln!(text, "  {:<70} rel_err {rel}", serde_json::to_string(&t.hypothesis).unwrap_or_default());
    }
    let _ = writeln!(text, "best: {}", dx.best.message);
    if let Some(reason) = &tol_reason {
        let _ = writeln!(text, "tolerance raised from {user_tol:.0e} to {tol:.2e}: {reason}");
    }
    let json = json!({"best": dx.best, "tried": dx.tried, "explained": dx.explained, "tol_used": tol, "tol_reason": tol_reason});
    Ok(Outcome { json, text, exit: if dx.explained { 0 } else { 1 } })
}

/// The diagnosis of a loaded run ([`crate::diagnose::diagnose`]).
fn diagnose_run(problem: &Problem, src: &GainSource, l: &Loaded, tol: f64) -> Result<crate::diagnose::Diagnosis> {
    let beta = l.beta.as_ref().ok_or_else(|| InputError {
        file: src.first_file().to_owned(),
        array: Some("beta".into()),
        what: "missing: diagnose compares the run's final iterate".into(),
    })?;
    let mut acc = GainAccumulator::new(problem.d());
    (acc.gain, acc.rho) = (l.eff.gain.clone(), l.eff.rho.clone());
    let readings = match src {
        GainSource::Trajectory(paths) => Some(read_readings(paths, &l.model)?),
        GainSource::Run(_) => None,
    };
    let weights = l.weights.as_ref().map(|(wp, wm)| (wp, wm));
    let logged = crate::diagnose::Logged { model: &l.model, acc: &acc, readings: readings.as_ref(), beta, weights };
    Ok(crate::diagnose::diagnose(problem, &logged, tol))
}

/// Every logged step of a run (in pieces, in order), streamed through the readings.
fn read_readings(paths: &[PathBuf], model: &Model) -> Result<crate::diagnose::Readings> {
    let d = model.dim();
    let mut readings = crate::diagnose::Readings::new(model, d);
    for path in paths {
        let t = ExternalTrajectory::load(path, Some(model.param))?;
        let mut f = NpzReader::open(path)?;
        let mut rows = f.rows("grads")?;
        let (mut block, mut gammas) = (Vec::new(), t.stepsizes.iter());
        while rows.next_rows(&mut block, 1024)? > 0 {
            for (g, gamma) in block.chunks_exact(d).zip(&mut gammas) {
                readings.add(*gamma, g);
            }
        }
    }
    Ok(readings)
}

fn prediction_json(p: &Prediction) -> Value {
    let c = p.checks;
    json!({
        "residual_error": c.map(|c| c.residual_error),
        "beta_theory": p.theory.beta.as_slice(),
        "beta_gradient_flow": p.gradient_flow.beta.as_slice(),
        "beta_limit": p.beta_limit.as_ref().map(|b| b.as_slice().to_vec()),
        "rel_err": c.map(|c| c.rel_err),
        "rel_err_gradient_flow": c.map(|c| c.rel_err_gradient_flow),
        "kkt_residual": c.map(|c| c.kkt_residual),
        "primal_residual": c.map(|c| c.primal_residual),
        "theory_residual": p.theory.residual,
        "newton_iters": p.theory.newton_iters,
        "newton_stages": p.theory.stages,
    })
}

fn prediction_text(p: &Prediction) -> String {
    let mut t = format!(
        "theory: Newton {} iterations in {} stage(s), relative residual {:.2e}\n",
        p.theory.newton_iters, p.theory.stages, p.theory.residual
    );
    if let Some(c) = p.checks {
        let _ = writeln!(t, "rel_err (theory vs limit)         {:.3e}", c.rel_err);
        let _ = writeln!(t, "rel_err (gradient flow vs limit)  {:.3e}", c.rel_err_gradient_flow);
        match c.kkt_residual {
            Some(k) => writeln!(t, "KKT residual of the limit         {k:.3e}"),
            None => writeln!(t, "KKT residual of the limit         not computable (entries of the limit underflowed)"),
        }
        .ok();
        let _ = writeln!(t, "primal residual of the limit      {:.3e}", c.primal_residual);
    }
    t
}

/// `dlncheck sweep`: runs the grid on `threads` workers (default: all cores).
pub fn sweep_cmd(
    grid: &Grid,
    out: &Path,
    resume: bool,
    shard: Option<Shard>,
    threads: Option<usize>,
) -> Result<Outcome> {
    let start = std::time::Instant::now();
    if let Some(t) = threads {
        limits::check_count("--threads", t, limits::MAX_THREADS).map_err(Error::Usage)?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let report = pool.install(|| run_sweep(grid, out, resume, shard, true)).map_err(Error::Usage)?;
    let seconds = start.elapsed().as_secs_f64();
    let mut text = format!(
        "{} cells run, {} already done, in {seconds:.1} s on {} threads; results in {}\n",
        report.ran,
        report.skipped,
        pool.current_num_threads(),
        out.display()
    );
    text.push_str(&failed_cells_text(&report.failed));
    let json = json!({"ran": report.ran, "skipped": report.skipped, "seconds": seconds, "out": out,
        "grid": grid.fingerprint(), "failed": failed_cells_json(&report.failed)});
    Ok(Outcome { json, text, exit: if report.failed.is_empty() { 0 } else { 5 } })
}

/// Most failed cells a sweep's report lists one by one.
const FAILED_CELLS_LISTED: usize = 20;

/// The failed cells of a sweep, for its text: how many, that they are not written, and
/// why (the first [`FAILED_CELLS_LISTED`]); empty when none failed.
fn failed_cells_text(failed: &[(usize, String)]) -> String {
    if failed.is_empty() {
        return String::new();
    }
    let mut text = format!("{} cells failed and are not written (--resume runs them again):\n", failed.len());
    for (i, why) in failed.iter().take(FAILED_CELLS_LISTED) {
        let _ = writeln!(text, "  cell {i}: {why}");
    }
    if failed.len() > FAILED_CELLS_LISTED {
        let _ = writeln!(text, "  … and {} more", failed.len() - FAILED_CELLS_LISTED);
    }
    text
}

fn failed_cells_json(failed: &[(usize, String)]) -> Value {
    let listed: Vec<Value> =
        failed.iter().take(FAILED_CELLS_LISTED).map(|(i, why)| json!({"index": i, "error": why})).collect();
    json!({"count": failed.len(), "first": listed})
}

/// `dlncheck plot`: the sweep figures.
pub fn plot_cmd(sweep: &Path, out: &Path, to: FigureOutput) -> Result<Outcome> {
    let results = crate::sweep::read(sweep).map_err(Error::Usage)?;
    if results.is_empty() {
        return Err(Error::Usage(format!("{}: no cells", sweep.display())));
    }
    let files = figures::sweep(&results, out, to)?;
    Ok(files_outcome(&files))
}

/// The figure renderers, or (in a build without the `figures` feature, as the Python
/// package is) a usage error saying so.
mod figures {
    use std::path::{Path, PathBuf};

    use super::{Error, Result};
    use crate::image::FigureOutput;
    use crate::sweep::CellResult;

    #[cfg(feature = "figures")]
    pub fn available() -> Result<()> {
        Ok(())
    }

    #[cfg(feature = "figures")]
    pub fn sweep(results: &[CellResult], out: &Path, to: FigureOutput) -> Result<Vec<PathBuf>> {
        crate::plot::sweep_figures(results, out, to).map_err(Error::Usage)
    }

    #[cfg(feature = "figures")]
    pub fn edge_of_stability(out: &Path, fraction: f64, to: FigureOutput) -> Result<Vec<PathBuf>> {
        crate::plot::edge_of_stability_figures(out, fraction, to).map_err(Error::Usage)
    }

    #[cfg(not(feature = "figures"))]
    const NONE: &str = "this build has no figures (built without the `figures` feature, as the Python package \
                        is): draw them with the command line's `dlncheck plot` on the sweep file";

    #[cfg(not(feature = "figures"))]
    pub fn available() -> Result<()> {
        Err(Error::Usage(NONE.into()))
    }

    #[cfg(not(feature = "figures"))]
    pub fn sweep(_: &[CellResult], _: &Path, _: FigureOutput) -> Result<Vec<PathBuf>> {
        Err(Error::Usage(NONE.into()))
    }

    #[cfg(not(feature = "figures"))]
    pub fn edge_of_stability(_: &Path, _: f64, _: FigureOutput) -> Result<Vec<PathBuf>> {
        Err(Error::Usage(NONE.into()))
    }
}

fn files_outcome(files: &[PathBuf]) -> Outcome {
    let text: String = files.iter().map(|f| format!("wrote {}\n", f.display())).collect();
    Outcome::ok(json!({"files": files}), text)
}

/// `dlncheck figures`: the default sweep (centred and uncentred), its figures, and the
/// edge-of-stability figures, all into `out`.
pub fn figures_cmd(out: &Path, seeds: usize, fraction: f64, to: FigureOutput) -> Result<Outcome> {
    figures::available()?;
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::Usage(format!("--fraction {fraction} must be in (0, 1)")));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::Usage(format!("{}: {e}", out.display())))?;
    let grid = Grid { means: vec![0.0, 1.0], seeds, ..Grid::default_paper() };
    let sweep_file = out.join("sweep.jsonl");
    let _ = std::fs::remove_file(&sweep_file);
    let report = run_sweep(&grid, &sweep_file, false, None, true).map_err(Error::Usage)?;
    if !report.failed.is_empty() {
        let text = format!("no figures drawn: {}", failed_cells_text(&report.failed));
        return Ok(Outcome { json: json!({"failed": failed_cells_json(&report.failed)}), text, exit: 5 });
    }
    let results = crate::sweep::read(&sweep_file).map_err(Error::Usage)?;
    let mut files = figures::sweep(&results, out, to)?;
    files.extend(figures::edge_of_stability(out, fraction, to)?);
    files.push(sweep_file);
    Ok(files_outcome(&files))
}

/// `dlncheck merge`: joins sweep files.
pub fn merge_cmd(inputs: &[PathBuf], out: &Path, allow_partial: bool) -> Result<Outcome> {
    let paths: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let cells = merge(&paths, out, allow_partial).map_err(Error::Usage)?;
    Ok(Outcome::ok(json!({"cells": cells, "out": out}), format!("{cells} cells written to {}\n", out.display())))
}

/// `dlncheck threshold`: the convergence and divergence thresholds of a constant
/// stepsize, by bisection, and the window of persistent oscillation between them.
pub fn threshold_cmd(
    problem: &Path,
    alpha: Option<&AlphaArg>,
    family: &Family,
    batch: Option<usize>,
    seed: u64,
    s: &ThresholdSettings,
) -> Result<Outcome> {
    let p = Problem::load(problem)?;
    p.check_interpolation(problem)?;
    if let Some(m) = batch.filter(|m| *m == 0 || *m > p.n()) {
        return Err(Error::Usage(format!("--batch {m} is outside 1..={}", p.n())));
    }
    s.check().map_err(|e| Error::Usage(format!("threshold settings (--time, --tol, --rel-width): {e}")))?;
    let model = family.model(alpha, p.d())?;
    if (&p.x * model.b0() - &p.y).amax() == 0.0 {
        return Err(Error::Usage(
            "X b₀ = y: the loss is already 0 at the start, so every stepsize converges in 0 steps and there \
             is no threshold to measure"
                .into(),
        ));
    }
    let usage = |e: crate::threshold::ThresholdError| Error::Usage(e.to_string());
    let conv = threshold(&p, &model, batch, seed, s).map_err(usage)?;
    let div = divergence(&p, &model, batch, seed, s, &conv).map_err(usage)?;
    // How a failing trial ended: one wording for both brackets, and no panic if a
    // bracket ever ended otherwise than its search intends.
    let ended = |stop: Stop| match stop {
        Stop::Diverged { step } => format!("blew up at step {step}"),
        _ => "still oscillated when its budget ended".to_string(),
    };
    let (how, blew) = (ended(conv.hi_stop), ended(div.hi_stop));
    let budget = |g: f64| budget_steps(&p, batch, g, s);
    // The classical bound needs the planted b*; without it there is none to report.
    let bound = stability_bound(&p, &model, batch).ok();
    let bound_text = bound.map_or(String::new(), |b| {
        format!(
            "classical stability bound at b* (theory/README.md § Stability bound): {b:.6e}; θ / bound = {:.3}\n",
            conv.lo / b
        )
    });
    let text = format!(
        "convergence threshold in [{:.6e}, {:.6e}]: γ = {:.6e} reaches loss < {:e} within {:.3e} steps, \
         γ = {:.6e} {how}\n\
         divergence threshold in [{:.6e}, {:.6e}]: γ = {:.6e} does not blow up within {:.3e} steps, \
         γ = {:.6e} {blew}\n\
         window of persistent oscillation: {}\n\
         {bound_text}({} trials, each with a budget of T·⌈n/m⌉/γ steps, T = {:e})\n",
        conv.lo,
        conv.hi,
        conv.lo,
        s.tol,
        budget(conv.lo),
        conv.hi,
        div.lo,
        div.hi,
        div.lo,
        budget(div.lo),
        div.hi,
        if matches!(conv.hi_stop, Stop::Diverged { .. }) {
            "none (the first failing stepsize blew up)".to_string()
        } else {
            format!(
                "[{:.6e}, {:.6e}], {:.1}% of the convergence threshold",
                conv.hi,
                div.lo,
                100.0 * (div.lo / conv.hi - 1.0)
            )
        },
        conv.trials + div.trials,
        s.time,
    );
    let bracket = |t: &crate::threshold::Threshold| json!({"lo": t.lo, "hi": t.hi, "trials": t.trials, "hi_stop": t.hi_stop, "budget_steps_at_lo": budget(t.lo)});
    let json = json!({
        "convergence": bracket(&conv),
        "divergence": bracket(&div),
        "window": {"lo": conv.hi, "hi": div.lo},
        "bound": bound,
        "settings": {"time": s.time, "tol": s.tol, "rel_width": s.rel_width},
    });
    Ok(Outcome::ok(json, text))
}

/// Formats of the `check` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFormat {
    Markdown,
    Json,
    Junit,
    Html,
}

impl CheckFormat {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        match s {
            "md" | "markdown" => Ok(Self::Markdown),
            "json" => Ok(Self::Json),
            "junit" => Ok(Self::Junit),
            "html" => Ok(Self::Html),
            _ => Err(format!("--format must be md, json, junit or html, not `{s}`")),
        }
    }

    /// The format a report file's extension names: .xml (JUnit), .html/.htm, .json, .md.
    pub fn of_file(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "xml" => Some(Self::Junit),
            "html" | "htm" => Some(Self::Html),
            "json" => Some(Self::Json),
            "md" => Some(Self::Markdown),
            _ => None,
        }
    }
}

/// What `dlncheck check` runs and how it reports.
#[derive(Debug, Clone)]
pub struct CheckArgs {
    pub dir: PathBuf,
    pub only: Option<String>,
    pub quick: bool,
    pub format: CheckFormat,
    /// Write the report to each of these files (atomically), in the format its extension
    /// names (.xml JUnit, .html, .json, .md; another: `format`), and print the Markdown table.
    pub out: Vec<PathBuf>,
    /// Write the claim's snapshot (`--claim ID` only).
    pub accept: bool,
    /// Report progress on stderr: a bar on a terminal, else one line per finished claim
    /// and the summary (a CI log); off from Python.
    pub progress: bool,
}

/// `dlncheck check`: loads every claim file of `dir`, runs the loadable ones (in
/// parallel) and reports. Exit 2 if a file is malformed (the others still run), else 1
/// if a claim fails or cannot be measured, else 0.
pub fn check_cmd(a: &CheckArgs) -> Result<Outcome> {
    use crate::claims::{Verdict, ci, load_dir, run_claim, table};
    use rayon::prelude::*;
    if a.accept && a.only.is_none() {
        return Err(Error::Usage("--accept writes one claim's snapshot: give --claim ID (review each one)".into()));
    }
    if a.accept && a.quick {
        return Err(Error::Usage("--accept pins the full run that the claims test compares: drop --quick".into()));
    }
    let dir = &a.dir;
    let loaded = load_dir(dir).map_err(|e| Error::Usage(format!("{}: {e}", dir.display())))?;
    let stem_is = |f: &Path, id: &str| f.file_stem().is_some_and(|s| s == id);
    let claim_files: Vec<PathBuf> =
        loaded.iter().map(|c| c.as_ref().map_or_else(|e| e.file.clone(), |c| c.file.clone())).collect();
    let only = a.only.as_deref();
    let (mut claims, mut errors) = (Vec::new(), Vec::new());
    for c in loaded {
        match c {
            Ok(c) if only.is_none_or(|id| id == c.id) => claims.push(c),
            Ok(_) => {}
            Err(e) if only.is_none_or(|id| stem_is(&e.file, id)) => errors.push(e),
            Err(_) => {}
        }
    }
    if let (Some(id), true, true) = (only, claims.is_empty(), errors.is_empty()) {
        return Err(Error::Usage(format!("no claim with id `{id}` in {}", dir.display())));
    }
    let progress = Progress::new(a.progress, claims.len());
    let reports: Vec<_> = claims.par_iter().map(|c| progress.finished(run_claim(c, a.quick))).collect();
    progress.done(&table::summary(&reports, &errors));
    let exit = if !errors.is_empty() || reports.iter().any(|r| r.verdict == Verdict::Invalid) {
        2
    } else if reports.iter().any(|r| matches!(r.verdict, Verdict::Fails | Verdict::Error)) {
        1
    } else {
        0
    };
    let value = table::to_json(&reports, &errors);
    let markdown = table::markdown(&reports, &errors);
    let wants_html =
        a.format == CheckFormat::Html || a.out.iter().any(|o| CheckFormat::of_file(o) == Some(CheckFormat::Html));
    let figures = if wants_html { figures_named(dir, &claims)? } else { Vec::new() };
    let render = |format: CheckFormat| match format {
        CheckFormat::Markdown => markdown.clone(),
        CheckFormat::Json => format!("{value:#}\n"),
        CheckFormat::Junit => ci::junit(&reports, &errors),
        CheckFormat::Html => ci::html(&reports, &errors, &figures),
    };
    let mut text = if a.out.is_empty() { render(a.format) } else { markdown.clone() };
    let read = check_inputs(dir, &claim_files, &figures);
    let read: Vec<&Path> = read.iter().map(PathBuf::as_path).collect();
    for out in &a.out {
        refuse_inside(out, &crate::claims::claims_dir(dir))?;
        let format = CheckFormat::of_file(out).unwrap_or(a.format);
        crate::output::write_bytes(out, &read, render(format).as_bytes()).map_err(|e| Error::Usage(e.to_string()))?;
        let _ = writeln!(text, "wrote {}", out.display());
    }
    if a.accept {
        text += &accept(dir, &reports)?;
        text += &quick_agrees(&claims, &reports);
    }
    Ok(Outcome { json: value, text, exit })
}

/// What `check` shows while it runs: a bar on a terminal; elsewhere (a CI log) one line
/// per finished claim, `[k/N] id: verdict (seconds)`, and the summary.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    done: std::sync::atomic::AtomicUsize,
    total: usize,
}

impl Progress {
    fn new(on: bool, total: usize) -> Self {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let bar = (on && terminal).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} claims, {elapsed}") {
                bar.set_style(style);
            }
            bar
        });
        Self { bar, lines: on && !terminal, done: 0.into(), total }
    }

    fn finished(&self, r: crate::claims::ClaimReport) -> crate::claims::ClaimReport {
        let k = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if self.lines {
            eprintln!("[{k}/{}] {}: {} ({:.1} s)", self.total, r.id, r.verdict.label(), r.seconds);
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        r
    }

    fn done(&self, summary: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.lines {
            eprintln!("check: {summary}");
        }
    }
}

/// Every file `check` reads or may write besides its reports: the claim files, the
/// snapshots and the figures it inlines; no `--out` may replace one of them.
fn check_inputs(dir: &Path, claim_files: &[PathBuf], figures: &[crate::claims::ci::Figure]) -> Vec<PathBuf> {
    let snapshots = crate::claims::author::snapshot_dir(dir);
    let snapshot_files = std::fs::read_dir(&snapshots).into_iter().flatten().filter_map(|e| Some(e.ok()?.path()));
    claim_files.iter().cloned().chain(snapshot_files).chain(figures.iter().map(|f| f.path.clone())).collect()
}

/// Refuses an output inside `dir` (the claims folder: a report there would be read as
/// a claim by the next `check`).
fn refuse_inside(out: &Path, dir: &Path) -> Result<()> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match (std::fs::canonicalize(parent), std::fs::canonicalize(dir)) {
        (Ok(p), Ok(d)) if p == d => Err(Error::Usage(format!(
            "--out {}: is inside the claims folder {} that check reads; write reports elsewhere",
            out.display(),
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// The figures the checked claims name (`figures = [...]`), read from `figures/` beside
/// the theory directory, for the HTML report; a named figure that is missing is an error
/// of that report, said by name.
fn figures_named(theory: &Path, claims: &[crate::claims::Claim]) -> Result<Vec<crate::claims::ci::Figure>> {
    let dir = crate::claims::author::snapshot_dir(theory).with_file_name("figures");
    let mut names: Vec<&str> = claims.iter().flat_map(|c| c.figures.iter().map(String::as_str)).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(name);
            let claims = claims.iter().filter(|c| c.figures.iter().any(|f| f == name)).map(|c| c.id.clone()).collect();
            let svg = std::fs::read_to_string(&path).map_err(|e| {
                Error::Usage(format!(
                    "{}: {e} (a figure named by a claim; make it with `dlncheck figures --out {}`)",
                    path.display(),
                    dir.display()
                ))
            })?;
            Ok(crate::claims::ci::Figure { path, name: name.to_owned(), svg, claims })
        })
        .collect()
}

/// `--accept`: writes the claim's snapshot where the claims test reads it, and says
/// whether it is new, unchanged or changed (with the lines that changed).
fn accept(dir: &Path, reports: &[crate::claims::ClaimReport]) -> Result<String> {
    use crate::claims::author::{acceptable, snapshot_body, snapshot_file, snapshot_path};
    let mut text = String::new();
    for r in reports {
        acceptable(r).map_err(Error::Usage)?;
        let path = snapshot_path(dir, &r.id);
        let new = snapshot_file(r);
        let old = std::fs::read_to_string(&path).ok();
        let old_body = old.as_deref().and_then(snapshot_body);
        let new_body = snapshot_body(&new).unwrap_or_default();
        if old_body == Some(new_body) {
            let _ = writeln!(text, "snapshot {} unchanged", path.display());
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::Usage(format!("{}: {e}", parent.display())))?;
        }
        crate::output::write_bytes(&path, &[], new.as_bytes()).map_err(|e| Error::Usage(e.to_string()))?;
        match old_body {
            None => {
                let _ = writeln!(text, "wrote new snapshot {}", path.display());
            }
            Some(old_body) => {
                let _ = writeln!(text, "updated snapshot {}:", path.display());
                for line in old_body.lines().filter(|l| !new_body.lines().any(|n| n == *l)) {
                    let _ = writeln!(text, "- {line}");
                }
                for line in new_body.lines().filter(|l| !old_body.lines().any(|o| o == *l)) {
                    let _ = writeln!(text, "+ {line}");
                }
            }
        }
    }
    Ok(text)
}

/// After `--accept`: the claims' quick runs, and a warning for each whose `--quick`
/// verdict differs from the full run's (too few quick seeds for its test, say).
fn quick_agrees(claims: &[crate::claims::Claim], full: &[crate::claims::ClaimReport]) -> String {
    let mut text = String::new();
    for (c, r) in claims.iter().zip(full) {
        let quick = crate::claims::run_claim(c, true);
        if quick.verdict != r.verdict {
            let _ = writeln!(
                text,
                "warning: `check --quick` decides {} `{}` but the full run `{}`: give quick_seeds the power to \
                 decide its test (a paired t-test on 2 seeds has one degree of freedom: t must exceed 6.3)",
                c.id,
                quick.verdict.label(),
                r.verdict.label()
            );
        }
    }
    text
}

/// `dlncheck new-claim`: writes `DIR/claims/ID.toml`, a commented template or a copy of
/// another claim (`--like`), refusing to overwrite a file.
pub fn new_claim_cmd(dir: &Path, id: &str, like: Option<&str>) -> Result<Outcome> {
    use crate::claims::author::{check_id, template};
    check_id(id).map_err(Error::Usage)?;
    let claims_dir = dir.join("claims");
    let path = claims_dir.join(format!("{id}.toml"));
    if path.exists() {
        return Err(Error::Usage(format!("{} exists: choose another id, or edit it", path.display())));
    }
    let like_text = match like {
        Some(other) => {
            check_id(other).map_err(|e| Error::Usage(format!("--like: {e}")))?;
            let file = claims_dir.join(format!("{other}.toml"));
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::Usage(format!("--like {other}: {}: {e}", file.display())))?;
            Some((other, text))
        }
        None => None,
    };
    let text = template(id, like_text.as_ref().map(|(o, t)| (*o, t.as_str()))).map_err(Error::Usage)?;
    std::fs::create_dir_all(&claims_dir).map_err(|e| Error::Usage(format!("{}: {e}", claims_dir.display())))?;
    crate::output::write_bytes(&path, &[], text.as_bytes()).map_err(|e| Error::Usage(e.to_string()))?;
    let next = format!(
        "wrote {}\nnext: edit it, then  dlncheck check {} --claim {id}  and, when it holds,  dlncheck check {} --claim {id} --accept\n",
        path.display(),
        dir.display(),
        dir.display()
    );
    Ok(Outcome::ok(json!({"file": path, "id": id}), next))
}

/// What `dlncheck solve` solves.
#[derive(Debug, Clone)]
pub enum SolveMode {
    /// argmin_{Xb=y} ψ_α(b): gradient flow's limit.
    Entropy(Option<AlphaArg>, Family),
    /// argmin_{Xb=y} D_{ψ_{α_∞}}(b, b̃₀) with α_∞ and b̃₀ from a run or trajectory.
    EntropyFromRun(GainSource),
    /// Basis pursuit argmin |b|₁.
    L1,
    /// Weighted basis pursuit with weights from a .npy / .npz (`weights`) file.
    Weights(PathBuf),
    /// Weighted basis pursuit with w = ln(1/α_∞) from a run or trajectory.
    WeightsFromRun(GainSource),
    /// The minimum-ℓ2 interpolator.
    L2,
    /// argmin_{Xb=y} D_φ(b, 0) for a separable potential φ(b, a), a = α (default 1).
    Potential { formula: String, alpha: Option<AlphaArg> },
}

/// `dlncheck solve`: one of the interpolation problems the theory relates.
pub fn solve_cmd(problem_path: &Path, mode: &SolveMode, backend: LpBackend) -> Result<Outcome> {
    let p = Problem::load(problem_path)?;
    p.check_overparametrised(problem_path)?;
    // The rank of X is checked only when a solver fails (the check costs one more
    // X Xᵀ and Cholesky): a certified answer stands whatever the rank, and a failure on
    // a rank-deficient X is the input's fault (exit 2), not the solver's.
    let solved = solve_mode(&p, mode, backend);
    if matches!(&solved, Err(Error::Solve(e)) if e.exit_code() == 5) {
        p.check_interpolation(problem_path)?;
    }
    let (name, json) = solved?;
    let mut text = format!("{name}: objective {}\n", json["objective"]);
    for key in [
        "feasibility",
        "dual_objective",
        "rel_gap",
        "dual_from",
        "backend",
        "fallback",
        "newton_iters",
        "residual",
        "kkt_residual",
    ] {
        if let Some(v) = json.get(key) {
            let _ = writeln!(text, "  {key}: {v}");
        }
    }
    text.push_str("(--json for the solution vector)\n");
    Ok(Outcome::ok(json, text))
}

/// The name of what `mode` solves and its JSON answer.
fn solve_mode(p: &Problem, mode: &SolveMode, backend: LpBackend) -> Result<(&'static str, Value)> {
    let d = p.d();
    let run_eff = |src: &GainSource| -> Result<EffectiveInit> {
        let l = load_source(src, None)?;
        no_gain_for_depth(&l.model)?;
        check_dim(src, l.eff.gain.len(), d)?;
        Ok(l.eff)
    };
    Ok(match mode {
        SolveMode::Entropy(a, family) => {
            let model = family.model(a.as_ref(), d)?;
            if let Some(flow) = model.depth_flow() {
                return Ok(("gradient flow's limit on b = u^D − v^D", depth_json(p, &flow)?));
            }
            let gf = model.gradient_flow();
            ("hyperbolic entropy ψ_α (gradient flow's limit)", entropy_json(p, &gf)?)
        }
        SolveMode::EntropyFromRun(src) => ("Bregman divergence D_{ψ_{α_∞}}(·, b̃₀)", entropy_json(p, &run_eff(src)?)?),
        SolveMode::L1 => ("basis pursuit", lp_json(p, &DVector::from_element(d, 1.0), backend)?),
        SolveMode::Weights(path) => {
            let w = crate::npz::read_vector(path, "weights", Some(d))?;
            ("weighted basis pursuit", lp_json(p, &w, backend)?)
        }
        SolveMode::WeightsFromRun(src) => {
            let w = run_eff(src)?.ln_alpha_inf2().map(|l| -0.5 * l);
            if let Some((i, wi)) = w.iter().enumerate().find(|(_, wi)| **wi <= 0.0) {
                let what = format!("ln(1/α_∞) at coordinate {i} is {wi}: weights must be > 0 (α_∞ < 1)");
                return Err(InputError { file: src.first_file().to_owned(), array: Some("gain".into()), what }.into());
            }
            ("weighted basis pursuit, w = ln(1/α_∞)", lp_json(p, &w, backend)?)
        }
        SolveMode::Potential { formula, alpha } => ("potential", potential_json(p, formula, alpha.as_ref())?),
        SolveMode::L2 => {
            let b = min_norm(&p.x, &p.y)?;
            let feas = (&p.x * &b - &p.y).amax();
            (
                "minimum ℓ2 norm",
                json!({"beta": b.as_slice(), "objective": crate::numeric::norm(&b), "feasibility": feas}),
            )
        }
    })
}

/// Solves argmin_{Xb=y} D_φ(b, 0) for a formula; a malformed formula is a usage error
/// that points at the offending column.
fn potential_json(p: &Problem, formula: &str, alpha: Option<&AlphaArg>) -> Result<Value> {
    let pot = Potential::parse(formula).map_err(|e| {
        let caret = format!("{}^", " ".repeat(formula[..e.span.0.min(formula.len())].chars().count()));
        Error::Usage(format!("--potential, column {}: {}\n  {formula}\n  {caret}", e.span.0 + 1, e.message))
    })?;
    let alpha = alpha.map_or_else(|| Ok(DVector::from_element(p.d(), 1.0)), |a| a.resolve(p.d()))?;
    let sol = solve_potential(&p.x, &p.y, &pot, &alpha, &NewtonSettings::default())?;
    Ok(json!({
        "beta": sol.beta.as_slice(),
        "objective": finite_or_null(pot.divergence_from_zero(&sol.beta, &alpha)),
        "phi": pot.phi.to_string(),
        "phi_prime": pot.dphi.to_string(),
        "phi_second": pot.d2phi.to_string(),
        "newton_iters": sol.newton_iters,
        "residual": sol.residual,
        "feasibility": (&p.x * &sol.beta - &p.y).amax(),
    }))
}

/// Solves argmin_{Xb=y} D_{ψ_{α_∞}}(b, b̃₀); the objective is reported where α_∞ is
/// representable (it is the plain ψ_α when b̃₀ = 0), else `null`.
fn entropy_json(p: &Problem, eff: &EffectiveInit) -> Result<Value> {
    let sol = solve_implicit(&p.x, &p.y, &eff.scales(), &NewtonSettings::default())?;
    let objective = Some(eff.divergence(&sol.beta)).filter(|o| o.is_finite());
    Ok(json!({
        "beta": sol.beta.as_slice(),
        "objective": objective,
        "residual": sol.residual,
        "feasibility": (&p.x * &sol.beta - &p.y).amax(),
        "newton_iters": sol.newton_iters,
    }))
}

/// Depth D's flow limit with its KKT residual (checked without the solver).
fn depth_json(p: &Problem, flow: &crate::solve::DepthFlow) -> Result<Value> {
    let sol = crate::solve::solve_depth_flow(&p.x, &p.y, flow, &NewtonSettings::default())?;
    let kkt = crate::solve::depth_kkt_residual(&p.x, flow, &sol.beta)?;
    Ok(json!({
        "beta": sol.beta.as_slice(),
        "objective": Value::Null,
        "depth": flow.depth,
        "kkt_residual": kkt,
        "residual": sol.residual,
        "feasibility": (&p.x * &sol.beta - &p.y).amax(),
        "newton_iters": sol.newton_iters,
    }))
}

/// Weighted basis pursuit with the full certificate.
fn lp_json(p: &Problem, w: &DVector<f64>, backend: LpBackend) -> Result<Value> {
    let mut sol = weighted_basis_pursuit(&p.x, &p.y, w, backend)?;
    certify_exactly(&p.x, &p.y, w, &mut sol)?;
    Ok(serde_json::to_value(&sol).unwrap_or(Value::Null))
}

/// Settings of `dlncheck compare` beyond [`CompareSpec`].
#[derive(Debug, Clone)]
pub struct CompareArgs {
    /// A problem file; without it, problems are drawn from `generator` with seed k.
    pub problem: Option<PathBuf>,
    pub generator: ProblemSpec,
    pub spec: CompareSpec,
    pub format: Format,
    pub style: TableStyle,
    /// Exit 0 even when a run diverged (3) or did not converge (4); the rows say so.
    pub allow_diverged: bool,
    /// `FILE[:label]` of runs logged elsewhere.
    pub trajectories: Vec<String>,
    /// --param and --init of the built-in runs.
    pub family: Family,
}

/// `FILE[:label]` → a logged run (a trajectory, a run file or an accumulator file with
/// its final `beta`); the label defaults to the file's stem.
fn logged_run(arg: &str) -> Result<LoggedRun> {
    // The file is the shortest prefix before a `:` that names an existing file, so a
    // label may hold `:` too; without one, the whole argument is the file.
    let split = arg
        .match_indices(':')
        .map(|(i, _)| (&arg[..i], &arg[i + 1..]))
        .find(|(path, label)| Path::new(path).is_file() && !label.is_empty());
    let (file, label) = match split {
        Some((path, label)) => (PathBuf::from(path), label.to_owned()),
        None => {
            let path = PathBuf::from(arg);
            let stem = path.file_stem().map_or_else(|| arg.to_owned(), |s| s.to_string_lossy().into_owned());
            (path, stem)
        }
    };
    let is_trajectory = NpzReader::open(&file)?.contains("grads");
    let src = if is_trajectory { GainSource::Trajectory(vec![file.clone()]) } else { GainSource::Run(file.clone()) };
    let l = load_source(&src, None)?;
    let beta = l.beta.ok_or_else(|| InputError {
        file: file.clone(),
        array: Some("beta".into()),
        what: "missing: compare needs the run's final iterate".into(),
    })?;
    Ok(LoggedRun { label, file, eff: l.eff, beta })
}

/// `dlncheck compare`: runs and reference solutions side by side.
pub fn compare_cmd(mut a: CompareArgs) -> Result<Outcome> {
    if a.spec.runs.is_empty() && a.trajectories.is_empty() {
        return Err(Error::Usage("give at least one --run gd:γ or sgd:γ:m, or --trajectory FILE".into()));
    }
    if !a.trajectories.is_empty() && a.problem.is_none() {
        return Err(Error::Usage("--trajectory needs the --problem the run trained on".into()));
    }
    a.spec.trajectories = a.trajectories.iter().map(|t| logged_run(t)).collect::<Result<_>>()?;
    if !(a.spec.alpha.is_finite() && a.spec.alpha > 0.0) || a.spec.seeds == 0 {
        return Err(Error::Usage(format!(
            "--alpha must be > 0 and --seeds ≥ 1 (got {}, {})",
            a.spec.alpha, a.spec.seeds
        )));
    }
    limits::check_count("--seeds", a.spec.seeds, limits::MAX_SEEDS).map_err(Error::Usage)?;
    limits::check_count("--iters", a.spec.max_iters, limits::MAX_STEPS).map_err(Error::Usage)?;
    let loaded;
    let source = match &a.problem {
        Some(path) => {
            loaded = Problem::load(path)?;
            loaded.check_interpolation(path)?;
            for r in &a.spec.trajectories {
                check_dim(&GainSource::Trajectory(vec![r.file.clone()]), r.beta.len(), loaded.d())?;
            }
            ProblemSource::Fixed(&loaded)
        }
        None => ProblemSource::Generated(a.generator),
    };
    a.spec.param = a.family.param;
    crate::sweep::exact_only(a.spec.param, "compare").map_err(Error::Usage)?;
    if a.family.init.is_some() {
        let d = match &source {
            ProblemSource::Fixed(p) => p.d(),
            ProblemSource::Generated(g) => g.d,
        };
        a.spec.init = Some(a.family.model(None, d)?.init);
    }
    let (lo, hi) = crate::report::DIGITS_RANGE;
    if !(lo..=hi).contains(&a.style.digits) {
        return Err(Error::Usage(format!("--digits {} must be in {lo}..={hi}", a.style.digits)));
    }
    let c = compare(&source, &a.spec)?;
    let mut text = render(&c, a.format, a.style);
    // Notes under the table, as comments where the format has them (LaTeX); CSV keeps
    // them in its status column and JSON in `notes`.
    let prefix = match a.format {
        Format::Markdown => Some(""),
        Format::Latex => Some("% "),
        Format::Csv | Format::Json => None,
    };
    for note in c.notes.iter().filter(|_| prefix.is_some()) {
        let _ = writeln!(text, "{}note: {note}", prefix.unwrap_or_default());
    }
    let flagged = |diverged: bool| {
        c.flags.iter().flatten().any(|f| matches!(f, crate::compare::RowFlag::Diverged { .. }) == diverged)
    };
    let exit = match (a.allow_diverged, flagged(true), flagged(false)) {
        (true, ..) | (false, false, false) => 0,
        (false, true, _) => 3,
        (false, false, true) => 4,
    };
    if let (true, Some(prefix)) = (exit != 0, prefix) {
        let _ = writeln!(
            text,
            "{prefix}exit {exit}: a run {} (its rows say so); --allow-diverged keeps the table with exit 0",
            if exit == 3 { "diverged" } else { "did not converge" }
        );
    }
    Ok(Outcome { json: crate::report::to_json(&c), text, exit })
}
