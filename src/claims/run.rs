//! Running a claim on one seed: the problem, the thresholds its runs need, the runs, and
//! the per-seed values of both sides of every comparison.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

use nalgebra::{DMatrix, DVector};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::eval::{EvalError, Scope, Value, eval};
use super::file::{Claim, InitSpec, ModelSpec, RunDef};
use crate::bias::{EffectiveInit, Scales};
use crate::expr::Expr;
use crate::model::{Init, Model};
use crate::predict::kkt_residual;
use crate::problem::{Problem, ProblemSpec};
use crate::runfile::RunRecord;
use crate::solve::{
    LpBackend, NewtonSettings, basis_pursuit, depth_kkt_residual, min_norm, solve_depth_flow, solve_implicit,
    weighted_basis_pursuit,
};
use crate::threshold::{Threshold, divergence_cached, stability_bound, threshold_cached};

type ThresholdFn =
    fn(&str, u64, &Problem, &Model, Option<usize>, &crate::threshold::ThresholdSettings) -> Result<Threshold, String>;
use crate::train::{Batching, Run, Stepsizes, Stop, TrainConfig, train};

/// What one seed measured: both sides of every comparison, and the thresholds used.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedValues {
    pub seed: u64,
    /// `sides[i]` = (lhs, rhs) of comparison i.
    pub sides: Vec<(f64, f64)>,
    /// (run name, threshold) for runs whose stepsize or fields use it.
    pub thresholds: Vec<(String, Threshold)>,
}

/// What a stepsize expression may name: the run's convergence `threshold` and
/// `divergence` threshold (their `lo`), and the problem's size.
#[derive(Debug, Clone, Copy)]
pub struct StepsizeScope {
    pub threshold: f64,
    pub divergence: f64,
    pub bound: f64,
    pub n: usize,
    pub d: usize,
}

/// Evaluates a stepsize expression.
pub fn stepsize(e: &Expr, at: StepsizeScope) -> Result<f64, String> {
    struct S(StepsizeScope);
    impl Scope for S {
        fn name(&self, name: &str) -> Result<Value, String> {
            match name {
                "threshold" => Ok(Value::Num(self.0.threshold)),
                "divergence" => Ok(Value::Num(self.0.divergence)),
                "bound" => Ok(Value::Num(self.0.bound)),
                "n" => Ok(Value::Num(self.0.n as f64)),
                "d" => Ok(Value::Num(self.0.d as f64)),
                _ => Err(format!("unknown name `{name}` in a stepsize")),
            }
        }
        fn field(&self, _: &str, _: &str) -> Result<Value, String> {
            Err("a stepsize has no runs".into())
        }
        fn solve(&self, f: &str, _: &[Value]) -> Result<Value, String> {
            Err(format!("{f} cannot be used in a stepsize"))
        }
        fn dim(&self) -> Option<usize> {
            None
        }
    }
    match eval(e, &S(at)).map_err(|e| e.message)? {
        Value::Num(g) => Ok(g),
        _ => Err("a stepsize must be a number".into()),
    }
}

/// A finished run of a claim, with what the theory reads from it.
struct RunResult {
    name: String,
    stepsize: f64,
    bound: f64,
    threshold: Option<Threshold>,
    divergence: Option<Threshold>,
    run: Run,
    record: RunRecord,
    eff: EffectiveInit,
    theory: OnceCell<Result<DVector<f64>, String>>,
    /// Gradient flow's limit from the run's start and its KKT residual (`flow`, `flow_kkt`).
    flow: OnceCell<Result<(DVector<f64>, f64), String>>,
}

fn execute(
    claim: &Claim,
    def: &RunDef,
    spec: &ProblemSpec,
    p: &Problem,
    (model, threshold_model): (&Model, &Model),
) -> Result<RunResult, String> {
    let key = format!("{spec:?}");
    let measure = |kind: &str, f: ThresholdFn| {
        f(&key, spec.seed, p, threshold_model, def.batch, &claim.threshold)
            .map_err(|e| format!("{kind} threshold of run `{}`: {e}", def.name))
    };
    let th = def.uses_threshold.then(|| measure("convergence", threshold_cached)).transpose()?;
    let div = def.uses_divergence.then(|| measure("divergence", divergence_cached)).transpose()?;
    let bound = stability_bound(p, threshold_model, def.batch);
    let at = StepsizeScope {
        threshold: th.map_or(f64::NAN, |t| t.lo),
        divergence: div.map_or(f64::NAN, |t| t.lo),
        bound: bound.as_ref().map_or(f64::NAN, |b| *b),
        n: p.n(),
        d: p.d(),
    };
    let gamma = stepsize(&def.stepsize, at)?;
    if !(gamma.is_finite() && gamma > 0.0) {
        let bound = bound.map_or_else(|e| format!("not available: {e}"), |b| format!("{b:e}"));
        return Err(format!(
            "run `{}`: its stepsize is {gamma}, not a positive number, at α = {:e} (threshold {:e}, divergence {:e}, \
             stability bound {bound})",
            def.name, claim.alpha, at.threshold, at.divergence
        ));
    }
    let batching = def.batch.map_or(Batching::Full, |m| Batching::Random { m, seed: spec.seed });
    let mut config = TrainConfig::with_model(model.clone(), Stepsizes::Constant(gamma), batching);
    config.max_iters = def.max_iters;
    config.tol = def.tol;
    config.history_cap = 2;
    config.first_order_gain = claim.first_order_gain;
    config.momentum = def.momentum;
    let run = train(p, &config).map_err(|e| format!("run `{}`: {e}", def.name))?;
    let record = RunRecord::from_run(&run);
    let eff = record.effective_init();
    Ok(RunResult {
        name: def.name.clone(),
        stepsize: gamma,
        bound: at.bound,
        threshold: th,
        divergence: div,
        run,
        record,
        eff,
        theory: OnceCell::new(),
        flow: OnceCell::new(),
    })
}

/// Why a seed could not be measured. `shape` marks a defect of the claim's expressions
/// (vectors of different lengths): the claim is invalid rather than unmeasured.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedError {
    pub message: String,
    pub shape: bool,
}

impl From<String> for SeedError {
    fn from(message: String) -> Self {
        Self { message, shape: false }
    }
}

impl SeedError {
    fn eval(context: &str, e: EvalError) -> Self {
        Self { message: format!("{context}: {}", e.message), shape: e.shape }
    }
}

/// Runs the claim's scenario on one seed and evaluates both sides of each comparison.
pub fn run_seed(claim: &Claim, seed: u64) -> Result<SeedValues, SeedError> {
    let spec = ProblemSpec { seed, ..claim.problem };
    let problem = spec.generate()?;
    let alpha = DVector::from_element(problem.d(), claim.alpha);
    // The starts first, in a scope without runs (a start cannot read a run).
    let starts = SeedScope::new(claim, &problem, alpha.clone(), &[], seed, None);
    let scenario = starts.model(&claim.model)?;
    let models = claim
        .runs
        .iter()
        .map(|def| Ok((starts.model(&def.model)?, starts.model(&def.threshold_model)?)))
        .collect::<Result<Vec<_>, SeedError>>()?;
    let runs = claim
        .runs
        .par_iter()
        .zip(&models)
        .map(|(def, (model, at))| execute(claim, def, &spec, &problem, (model, at)))
        .collect::<Result<Vec<_>, String>>()?;
    let scope = SeedScope::new(claim, &problem, alpha, &runs, seed, Some(scenario));
    // Definitions in dependency order, so each name lookup below hits the memo and no
    // evaluation recurses through a chain of definitions.
    for name in &claim.define_order {
        scope.define(name).map_err(|e| SeedError::eval(&format!("in definition `{name}`"), e))?;
    }
    let sides = claim
        .comparisons
        .iter()
        .zip(&claim.texts)
        .map(|(c, text)| {
            let side = |e: &Expr| {
                let context = format!("in `{text}`");
                match eval(e, &scope).map_err(|e| SeedError::eval(&context, e))? {
                    Value::Num(x) if x.is_finite() => Ok(x),
                    Value::Num(x) => Err(SeedError::from(format!("{context}: the value is {x}, not a finite number"))),
                    _ => Err(SeedError::from(format!("{context}: not a number"))),
                }
            };
            Ok((side(&c.lhs)?, side(&c.rhs)?))
        })
        .collect::<Result<Vec<_>, SeedError>>()?;
    let thresholds = runs
        .iter()
        .flat_map(|r| {
            let conv = r.threshold.map(|t| (r.name.clone(), t));
            conv.into_iter().chain(r.divergence.map(|t| (format!("{} (divergence)", r.name), t)))
        })
        .collect();
    Ok(SeedValues { seed, sides, thresholds })
}

/// Names of one seed: the problem, the runs and the claim's definitions (memoised).
struct SeedScope<'a> {
    claim: &'a Claim,
    p: &'a Problem,
    alpha: DVector<f64>,
    runs: &'a [RunResult],
    seed: u64,
    /// The scenario's model (`None` while the starts themselves are evaluated).
    model: Option<Model>,
    memo: RefCell<HashMap<String, Value>>,
}

impl<'a> SeedScope<'a> {
    fn new(
        claim: &'a Claim,
        p: &'a Problem,
        alpha: DVector<f64>,
        runs: &'a [RunResult],
        seed: u64,
        model: Option<Model>,
    ) -> Self {
        Self { claim, p, alpha, runs, seed, model, memo: RefCell::default() }
    }

    /// A claim's parametrisation and start on this seed: the start's expressions
    /// evaluated (a number is every coordinate's), then checked like a user's start.
    fn model(&self, spec: &ModelSpec) -> Result<Model, SeedError> {
        let d = self.p.d();
        let vector = |what: &str, e: &Expr| -> Result<DVector<f64>, SeedError> {
            match eval(e, self).map_err(|e| SeedError::eval(&format!("in the start's {what}"), e))? {
                Value::Num(x) => Ok(DVector::from_element(d, x)),
                Value::Vec(v) if v.len() == d => Ok(v),
                Value::Vec(v) => Err(SeedError {
                    message: format!("the start's {what} has {} entries, the problem has d = {d}", v.len()),
                    shape: true,
                }),
                _ => Err(SeedError { message: format!("the start's {what} is not a vector"), shape: true }),
            }
        };
        let init = match &spec.init {
            InitSpec::Default => Init::Alpha(self.alpha.clone()),
            InitSpec::Weights { u0, v0 } => Init::Weights { u0: vector("u0", u0)?, v0: vector("v0", v0)? },
            InitSpec::Mirror { b0 } => Init::Mirror { alpha: self.alpha.clone(), b0: vector("b0", b0)? },
        };
        let model = Model { param: spec.param, init };
        model.check(d).map_err(|e| SeedError::from(format!("the start: {e}")))?;
        Ok(model)
    }

    /// Gradient flow's limit from `model`'s start and its KKT residual, checked without
    /// the solver: argmin ψ_α (exact family) or depth D's potential.
    fn flow(&self, model: &Model) -> Result<(DVector<f64>, f64), String> {
        let (x, y) = (&self.p.x, &self.p.y);
        if let Some(flow) = model.depth_flow() {
            let sol = solve_depth_flow(x, y, &flow, &NewtonSettings::default()).map_err(|e| e.to_string())?;
            let kkt = depth_kkt_residual(x, &flow, &sol.beta).map_err(|e| e.to_string())?;
            return Ok((sol.beta, kkt));
        }
        let scales = model.gradient_flow().scales();
        let beta = self.implicit(&scales)?;
        let kkt = kkt_residual(x, &scales, &beta)
            .map_err(|e| e.to_string())?
            .ok_or("KKT residual not computable: entries of the flow's limit underflowed")?;
        Ok((beta, kkt))
    }

    fn beta_star(&self) -> Result<&DVector<f64>, String> {
        self.p.beta_star.as_ref().ok_or_else(|| "the problem has no beta_star".into())
    }

    fn implicit(&self, scales: &Scales) -> Result<DVector<f64>, String> {
        Ok(solve_implicit(&self.p.x, &self.p.y, scales, &NewtonSettings::default()).map_err(|e| e.to_string())?.beta)
    }

    /// Evaluates definition `name` into the memo (its dependencies are there already).
    fn define(&self, name: &str) -> Result<(), EvalError> {
        let Some(e) = self.claim.defines.get(name) else { return Ok(()) };
        let v = eval(e, self)?;
        self.memo.borrow_mut().insert(name.to_string(), v);
        Ok(())
    }

    fn support(&self, on: bool) -> Result<Value, String> {
        Ok(Value::Mask(self.beta_star()?.iter().map(|b| (*b != 0.0) == on).collect()))
    }
}

impl Scope for SeedScope<'_> {
    fn name(&self, name: &str) -> Result<Value, String> {
        if let Some(v) = self.memo.borrow().get(name) {
            return Ok(v.clone());
        }
        let (p, d) = (self.p, self.p.d());
        let v = match name {
            "X" => Value::Mat(p.x.clone()),
            "y" => Value::Vec(p.y.clone()),
            "beta_star" => Value::Vec(self.beta_star()?.clone()),
            "H" => Value::Mat(p.x.transpose() * &p.x / p.n() as f64),
            "support" => self.support(true)?,
            "off_support" => self.support(false)?,
            "alpha" => Value::Vec(self.alpha.clone()),
            "gradient_flow" => {
                let model = self.model.as_ref().ok_or("a start cannot use gradient_flow (it depends on the start)")?;
                Value::Vec(self.flow(model)?.0)
            }
            "index" => Value::Vec(DVector::from_fn(d, |i, _| i as f64)),
            "uniform" => {
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x0075_6e69_666f_726d);
                Value::Vec(DVector::from_fn(d, |_, _| rng.random::<f64>()))
            }
            "n" => Value::Num(p.n() as f64),
            "d" => Value::Num(d as f64),
            _ => {
                let e = self.claim.defines.get(name).ok_or_else(|| format!("unknown name `{name}`"))?;
                eval(e, self).map_err(|e| format!("in definition `{name}`: {}", e.message))?
            }
        };
        self.memo.borrow_mut().insert(name.to_string(), v.clone());
        Ok(v)
    }

    fn field(&self, run: &str, field: &str) -> Result<Value, String> {
        let r = self.runs.iter().find(|r| r.name == run).ok_or_else(|| format!("unknown run `{run}`"))?;
        let num = |x: f64| Ok(Value::Num(x));
        let vec = |v: &DVector<f64>| Ok(Value::Vec(v.clone()));
        match field {
            "converged" => return num(f64::from(u8::from(r.run.stop == Stop::Converged))),
            "diverged" => return num(f64::from(u8::from(r.run.diverged()))),
            "stepsize" => return num(r.stepsize),
            "bound" if r.bound.is_nan() => return Err("the stability bound needs the planted b*".into()),
            "bound" => return num(r.bound),
            "iters" => return num(r.run.iters as f64),
            "threshold" => return r.threshold.map_or(Err(format!("run `{run}` has no threshold")), |t| num(t.lo)),
            "flow" | "flow_kkt" => {
                let flow = r.flow.get_or_init(|| self.flow(&r.run.model)).clone();
                return flow.map(|(b, kkt)| if field == "flow" { Value::Vec(b) } else { Value::Num(kkt) });
            }
            "divergence" => {
                return r.divergence.map_or(Err(format!("run `{run}` has no divergence threshold")), |t| num(t.lo));
            }
            _ => {}
        }
        if let Stop::Diverged { step } = r.run.stop {
            return Err(format!("run `{run}` (γ = {:.4e}) diverged at step {step}", r.stepsize));
        }
        if field == "balance_gain" {
            return vec(&r.run.balance_gain());
        }
        if !r.run.has_exact_theory() && !matches!(field, "beta" | "u" | "v" | "loss" | "loss_climb") {
            let what = match r.run.momentum {
                Some(m) => format!("a momentum run (μ = {})", m.mu),
                None => r.run.model.param.name(),
            };
            return Err(format!(
                "run `{run}` is {what}: it has no `{field}` (no exact discrete-time theory: no gain, no Theorem 1); \
                 compare `{run}.beta` with `{run}.flow`, or read `{run}.balance_gain`"
            ));
        }
        match field {
            "beta" => vec(&r.record.beta),
            "theory" => r.theory.get_or_init(|| self.implicit(&r.eff.scales())).clone().map(Value::Vec),
            "gain" => vec(&r.eff.gain),
            "first_order_gain" => r.run.accumulator.first_order.as_ref().map_or(Err("not recorded".into()), vec),
            "rho" => vec(&r.eff.rho_total()),
            "alpha" => vec(&r.eff.ln_alpha().map(f64::exp)),
            "alpha_inf" => vec(&r.eff.alpha_inf()),
            "ln_alpha_inf2" => vec(&r.eff.ln_alpha_inf2()),
            "beta_tilde0" => vec(&r.eff.beta_tilde0()),
            "max_gamma_g" => num(r.run.accumulator.max_abs_x()),
            "u" | "v" => {
                let (u, v) = r
                    .record
                    .model
                    .weights(r.record.w_plus.as_slice(), r.record.w_minus.as_slice())
                    .ok_or_else(|| format!("run `{run}` is mirror descent: it has no u, v"))?;
                vec(if field == "u" { &u } else { &v })
            }
            "loss" => num(r.run.loss),
            "loss_climb" => num(r.run.loss_climb),
            "gain_l1" => num(r.eff.gain.lp_norm(1)),
            "kkt" => kkt_residual(&self.p.x, &r.eff.scales(), &r.record.beta)
                .map_err(|e| e.to_string())?
                .map_or(Err("KKT residual not computable: entries of the limit underflowed".into()), num),
            "conservation" => num(r.record.conservation_residual()),
            _ => Err(format!("unknown run field `{field}`")),
        }
    }

    fn dim(&self) -> Option<usize> {
        Some(self.p.d())
    }

    fn solve(&self, f: &str, args: &[Value]) -> Result<Value, String> {
        let (x, y) = (&self.p.x, &self.p.y);
        let lp = |e: crate::solve::SolveError| e.to_string();
        let beta = match (f, args) {
            ("implicit", [Value::Vec(ell), Value::Vec(rho)]) => {
                self.implicit(&Scales::two_sided(ell.clone(), rho.clone()))?
            }
            ("kkt", [Value::Vec(b), Value::Vec(ell), Value::Vec(rho)]) => {
                let k = kkt_residual(x, &Scales::two_sided(ell.clone(), rho.clone()), b).map_err(lp)?;
                return k.map(Value::Num).ok_or_else(|| "KKT residual not computable (underflow)".into());
            }
            ("weighted_bp", [Value::Vec(w)]) => weighted_basis_pursuit(x, y, w, LpBackend::Homotopy).map_err(lp)?.beta,
            ("bp", []) => basis_pursuit(x, y, LpBackend::Homotopy).map_err(lp)?.beta,
            ("min_l2", []) => min_norm(x, y).map_err(lp)?,
            ("gram", [Value::Vec(w)]) => {
                return Ok(Value::Mat(x * DMatrix::from_diagonal(w) * x.transpose() / self.p.n() as f64));
            }
            ("test_loss", [Value::Vec(b)]) => {
                return self.p.test_loss(b).map(Value::Num).ok_or_else(|| "the problem has no test set".into());
            }
            _ => return Err(format!("bad call of {f}")),
        };
        Ok(Value::Vec(beta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse_expr;

    #[test]
    fn stepsize_reads_threshold() {
        let e = parse_expr("0.5 * threshold + 1 / n - divergence / d").unwrap();
        let at = StepsizeScope { threshold: 0.4, divergence: 0.5, bound: 9.0, n: 4, d: 10 };
        assert_eq!(stepsize(&e, at).unwrap(), 0.4);
    }
}
