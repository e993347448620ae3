//! The agreement scenarios (tests/agreement.rs, snapshots): trains GD and SGD on
//! generated problems and compares each observed limit with Theorem 1's prediction, including settings the
//! claim files do not express (per-coordinate α, phased stepsizes).

use nalgebra::DVector;

use dlncheck::predict::{LimitChecks, predict};
use dlncheck::problem::ProblemSpec;
use dlncheck::runfile::RunRecord;
use dlncheck::solve::NewtonSettings;
use dlncheck::train::{Batching, Stepsizes, Stop, TrainConfig, train};

/// Converged runs must match the theory to this relative error (DESIGN.md).
pub const REL_TOL: f64 = 1e-10;

/// One training scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: &'static str,
    pub problem: ProblemSpec,
    /// α: a scalar, or a per-coordinate ramp from `alpha` to `alpha_hi`.
    pub alpha: f64,
    pub alpha_hi: Option<f64>,
    /// A stepsize spec for [`Stepsizes::parse`].
    pub stepsize: &'static str,
    /// SGD batch size (`None`: GD).
    pub batch: Option<usize>,
    pub max_iters: usize,
}

/// What a scenario measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub name: &'static str,
    pub iters: usize,
    pub loss: f64,
    pub stop: Stop,
    pub gain_l1: f64,
    pub gain_max: f64,
    pub conservation_residual: f64,
    pub checks: LimitChecks,
    pub newton_iters: usize,
    pub pass: bool,
}

impl Scenario {
    fn alpha_vec(&self, d: usize) -> DVector<f64> {
        match self.alpha_hi {
            None => DVector::from_element(d, self.alpha),
            Some(hi) => DVector::from_fn(d, |i, _| self.alpha + (hi - self.alpha) * i as f64 / (d.max(2) - 1) as f64),
        }
    }

    /// Trains, predicts and checks; errors are reported as strings (bugs, not input).
    pub fn run(&self) -> Result<Outcome, String> {
        let p = self.problem.generate()?;
        let stepsizes = Stepsizes::parse(self.stepsize)?;
        let batching = self.batch.map_or(Batching::Full, |m| Batching::Random { m, seed: self.problem.seed });
        let mut config = TrainConfig::new(self.alpha_vec(p.d()), stepsizes, batching);
        config.max_iters = self.max_iters;
        let run = train(&p, &config).map_err(|e| e.to_string())?;
        let rec = RunRecord::from_run(&run);
        let eff = rec.effective_init();
        let pred = predict(&p.x, &p.y, &eff, Some(&rec.beta), &NewtonSettings::default()).map_err(|e| e.to_string())?;
        let checks = pred.checks.expect("a limit was given");
        let conservation_residual = rec.conservation_residual();
        let pass = run.stop == Stop::Converged
            && checks.rel_err <= REL_TOL
            && checks.kkt_residual.is_some_and(|k| k <= REL_TOL)
            && conservation_residual <= REL_TOL;
        Ok(Outcome {
            name: self.name,
            iters: run.iters,
            loss: run.loss,
            stop: run.stop,
            gain_l1: eff.gain.lp_norm(1),
            gain_max: eff.gain.max(),
            conservation_residual,
            checks,
            newton_iters: pred.theory.newton_iters,
            pass,
        })
    }
}

/// The built-in scenarios: GD and SGD (batch 1, 2, n), centred and uncentred data,
/// scalar and per-coordinate α, constant and two-phase stepsizes, a gain above 50.
pub fn builtin() -> Vec<Scenario> {
    let centred = ProblemSpec::default();
    let uncentred = ProblemSpec { mean: 1.0, ..centred };
    let base = Scenario {
        name: "",
        problem: centred,
        alpha: 0.1,
        alpha_hi: None,
        stepsize: "0.2",
        batch: None,
        max_iters: 3_000_000,
    };
    vec![
        Scenario { name: "gd-centred", ..base.clone() },
        Scenario { name: "gd-large-gain", stepsize: "0.5", ..base.clone() },
        Scenario { name: "gd-uncentred", problem: uncentred, stepsize: "0.02", ..base.clone() },
        Scenario { name: "gd-alpha-per-coordinate", alpha: 0.05, alpha_hi: Some(0.2), ..base.clone() },
        Scenario { name: "sgd-batch1", stepsize: "0.05", batch: Some(1), ..base.clone() },
        Scenario { name: "sgd-batch2", stepsize: "0.1", batch: Some(2), ..base.clone() },
        Scenario { name: "sgd-batch-n", stepsize: "0.2", batch: Some(20), ..base.clone() },
        Scenario { name: "sgd-uncentred", problem: uncentred, stepsize: "0.01", batch: Some(1), ..base.clone() },
        Scenario { name: "sgd-two-phase", stepsize: "0.08@20000,0.05", batch: Some(1), ..base },
    ]
}
