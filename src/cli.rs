//! The command line: its flags (clap) and the dispatch of each command to [`crate::app`].
//! The binary parses, calls [`run`] and prints; Python's bindings call [`execute`] on an
//! argument list, so every command is the same code from either side.

use std::path::PathBuf;

use crate::app::{self, AlphaArg, CompareArgs, GainSource, Outcome, SolveMode, TrainArgs};
use crate::compare::{CompareSpec, RunSpec};
use crate::image::{FigureOutput, FigureSize, ImageFormat};
use crate::model::Param;
use crate::problem::ProblemSpec;
use crate::report::{Format, TableStyle};
use crate::solve::LpBackend;
use crate::sweep::{Grid, GridInit, GridProblem, Shard, StepGrid};
use crate::threshold::ThresholdSettings;
use clap::{Parser, Subcommand};

/// The family flags of the commands that run or solve (theory/README.md § Other starts
/// and parametrisations).
#[derive(clap::Args, Debug, Clone)]
pub struct FamilyFlags {
    /// The parametrisation: uv (b = u ⊙ v), u2v2 (b = u² − v²), md (mirror descent with ψ_α),
    /// or depth:D (b = u^D − v^D, D = 3..8: gradient flow's limit only, no exact theory).
    #[arg(long, default_value = "uv")]
    param: String,
    /// A start instead of --alpha's default: a .npz with `u0` and `v0` (length d), or for
    /// --param md `alpha` and optional `b0`.
    #[arg(long)]
    init: Option<PathBuf>,
}

/// Momentum on the network's weights (theory/README.md § Deeper networks and momentum).
#[derive(clap::Args, Debug, Clone)]
pub struct MomentumFlags {
    /// Heavy-ball momentum μ in [0, 1) on the weights (no exact theory: the run file records
    /// it, and gain/predict refuse it).
    #[arg(long, allow_negative_numbers = true)]
    momentum: Option<f64>,
    /// Nesterov's momentum (the gradient at the look-ahead point) instead of heavy ball.
    #[arg(long, requires = "momentum")]
    nesterov: bool,
}

impl MomentumFlags {
    fn momentum(&self) -> app::Result<Option<crate::train::Momentum>> {
        // μ = 0 is plain (S)GD, with its exact theory.
        let m = self.momentum.map(|mu| crate::train::Momentum::new(mu, self.nesterov).map_err(app::Error::Usage));
        Ok(m.transpose()?.filter(|m| m.mu > 0.0))
    }
}

impl FamilyFlags {
    fn family(self) -> app::Result<app::Family> {
        Ok(app::Family { param: Param::parse(&self.param).map_err(app::Error::Usage)?, init: self.init })
    }
}

/// The grid of a sweep: `dlncheck sweep`'s flags but --out, --resume, --shard and
/// --threads (Python's `dlncheck.sweep_cells` takes the same, with underscores).
#[derive(clap::Args, Debug, Clone)]
pub struct GridFlags {
    /// Sweep on this problem file (X, y; optional beta_star, X_test, y_test) instead of
    /// drawn ones: n, d come from it, --seeds vary the SGD batches, --mean is unused.
    #[arg(long, conflicts_with_all = ["n", "d", "sparsity", "mean"])]
    problem: Option<PathBuf>,
    /// Samples of each drawn problem.
    #[arg(long, default_value_t = 20)]
    n: usize,
    /// Features of each drawn problem.
    #[arg(long, default_value_t = 30)]
    d: usize,
    /// Nonzeros of each drawn b*.
    #[arg(long, default_value_t = 3)]
    sparsity: usize,
    /// α values, comma-separated.
    #[arg(long, default_value = "0.1")]
    alpha: String,
    /// Feature means, comma-separated (0: centred, 1: uncentred).
    #[arg(long, default_value = "0")]
    mean: String,
    /// Algorithms: gd, sgd (batch 1) or sgd:m, comma-separated.
    #[arg(long, default_value = "gd,sgd")]
    algorithm: String,
    /// Stepsizes as fractions of each cell's threshold: lo:hi:count or a list.
    #[arg(long, default_value = "0.03:0.97:30", conflicts_with = "stepsizes")]
    fractions: String,
    /// Absolute stepsizes instead: lo:hi:count or a list.
    #[arg(long)]
    stepsizes: Option<String>,
    /// Seeds per cell: drawn problems and SGD batches (with --problem, the batches only).
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Most steps of each run.
    #[arg(long, default_value_t = 3_000_000)]
    iters: usize,
    /// A run has converged when its training loss falls below this.
    #[arg(long, default_value = "1e-20")]
    tol: f64,
    #[command(flatten)]
    family: FamilyFlags,
    #[command(flatten)]
    momentum: MomentumFlags,
}

impl GridFlags {
    /// The grid these flags describe (a problem file and a start file are read here).
    pub fn grid(self) -> app::Result<Grid> {
        let Self {
            problem,
            n,
            d,
            sparsity,
            alpha,
            mean,
            algorithm,
            fractions,
            stepsizes,
            seeds,
            iters,
            tol,
            family,
            momentum,
        } = self;
        let family = family.family()?;
        let usage = app::Error::Usage;
        let list = |flag: &str, s: &str| -> app::Result<Vec<f64>> {
            s.split(',')
                .map(|v| v.trim().parse().map_err(|_| usage(format!("--{flag}: `{v}` is not a number"))))
                .collect()
        };
        let algorithms = algorithm
            .split(',')
            .map(|a| match a.trim() {
                "gd" => Ok(None),
                "sgd" => Ok(Some(1)),
                other => other
                    .strip_prefix("sgd:")
                    .and_then(|m| m.parse().ok())
                    .map(Some)
                    .ok_or_else(|| usage(format!("--algorithm: algorithm `{other}` must be gd, sgd or sgd:m"))),
            })
            .collect::<app::Result<_>>()?;
        let steps = match &stepsizes {
            Some(s) => StepGrid::parse(s, false).map_err(|e| usage(format!("--stepsizes {s}: {e}"))),
            None => StepGrid::parse(&fractions, true).map_err(|e| usage(format!("--fractions {fractions}: {e}"))),
        }?;
        let problem = problem.as_deref().map(GridProblem::load).transpose()?;
        let (n, d, sparsity) = match &problem {
            Some(gp) => {
                let s = gp.data.beta_star.as_ref().map_or(0, |b| b.iter().filter(|v| **v != 0.0).count());
                (gp.data.n(), gp.data.d(), s)
            }
            None => (n, d, sparsity),
        };
        Ok(Grid {
            n,
            d,
            sparsity,
            means: list("mean", &mean)?,
            alphas: list("alpha", &alpha)?,
            algorithms,
            seeds,
            stepsizes: steps,
            max_iters: iters,
            tol,
            init: family.init.as_deref().map(|f| GridInit::load(f, family.param, d)).transpose()?,
            problem,
            param: family.param,
            momentum: momentum.momentum()?,
        })
    }
}

/// The grid of `dlncheck sweep` flags (without --out, --resume, --shard, --threads).
pub fn grid_from_args<I, T>(argv: I) -> app::Result<Grid>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    #[derive(Parser)]
    #[command(name = "sweep")]
    struct GridOnly {
        #[command(flatten)]
        grid: GridFlags,
    }
    let args = std::iter::once(std::ffi::OsString::from("sweep")).chain(argv.into_iter().map(Into::into));
    GridOnly::try_parse_from(args).map_err(|e| app::Error::Usage(e.to_string()))?.grid.grid()
}

fn param_flag(param: Option<String>) -> app::Result<Option<Param>> {
    param.map(|p| Param::parse(&p).map_err(app::Error::Usage)).transpose()
}

#[derive(Parser)]
#[command(
    name = "dlncheck",
    version,
    about = "Checks the implicit regularisation of (S)GD on diagonal linear networks"
)]
pub struct Cli {
    /// Print one JSON object on stdout (human text goes to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Draw a sparse regression problem (seeded, portable).
    Gen {
        /// Samples (rows of X).
        #[arg(long, default_value_t = 20)]
        n: usize,
        /// Features (columns of X); with --beta-star, its length instead.
        #[arg(long, default_value_t = 30)]
        d: usize,
        /// Nonzeros of b* (drawn on a uniform random support).
        #[arg(long, default_value_t = 3)]
        sparsity: usize,
        /// Mean of every feature (≥ 1 gives uncentred data).
        #[arg(long, default_value_t = 0.0)]
        mean: f64,
        /// Standard deviation of the label noise.
        #[arg(long, default_value_t = 0.0)]
        noise: f64,
        /// Held-out samples.
        #[arg(long, default_value_t = 100)]
        n_test: usize,
        /// Spread of the feature scales: column j is multiplied by 10^(−s·u_j), u_j ~ U[0,1].
        #[arg(long, default_value_t = 0.0)]
        scale_decades: f64,
        /// Seed of the draw (ChaCha8: the same problem on every machine).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Use this b* (a .npy vector, or a .npz holding `beta_star`); d is its length
        /// and --sparsity its number of nonzeros.
        #[arg(long)]
        beta_star: Option<PathBuf>,
        /// Draw b* ≥ 0 (so sign-constrained starts, u₀ = v₀, can interpolate y = X b*).
        #[arg(long)]
        positive: bool,
        /// The problem file to write (.npz: X, y, beta_star, X_test, y_test).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run GD or SGD on b = u ⊙ v (or another member of the family: --param) and record the gain.
    Train {
        /// The problem to train on (.npz with X, y).
        #[arg(long)]
        problem: PathBuf,
        /// α: a number, or a .npz file holding `alpha` (scalar or per coordinate).
        #[arg(long, allow_negative_numbers = true, required_unless_present = "init")]
        alpha: Option<String>,
        #[command(flatten)]
        family: FamilyFlags,
        /// Constant `0.1`, or phases `0.5@1000,0.05` (γ for that many steps, then the last).
        #[arg(long, conflicts_with = "schedule", allow_negative_numbers = true)]
        stepsize: Option<String>,
        /// SGD batch size (omit for GD).
        #[arg(long)]
        batch: Option<usize>,
        /// Most steps (the run stops earlier when the loss falls below --tol).
        #[arg(long, default_value_t = 1_000_000)]
        iters: usize,
        /// Seed of the SGD batches.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Replay `stepsizes` (K) and optional `batches` (K × m) from a .npz file.
        #[arg(long)]
        schedule: Option<PathBuf>,
        /// Stop when the training loss falls below this.
        #[arg(long, default_value = "1e-25")]
        tol: f64,
        /// Store the rows of every SGD step in the run file.
        #[arg(long)]
        record_batches: bool,
        #[command(flatten)]
        momentum: MomentumFlags,
        /// The run file to write (.npz); without it nothing is written, and the command says so.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Gain, effective initialisation α_∞, ρ and b̃_0 of a run or an external trajectory.
    Gain {
        /// A run file written by `train`.
        run: Option<PathBuf>,
        /// An external trajectory: `alpha`, `stepsizes`, `grads` (K × d), optional `beta`;
        /// repeat it for one run logged in pieces (in order).
        #[arg(long, conflicts_with = "run")]
        trajectory: Vec<PathBuf>,
        /// The parametrisation the run used: uv, u2v2 or md (default: the file's `param`, else uv).
        #[arg(long)]
        param: Option<String>,
    },
    /// The theory's limit (Theorem 1) for a run or trajectory, against the observed one.
    Predict {
        /// The problem the run trained on (.npz with X, y).
        #[arg(long)]
        problem: PathBuf,
        /// A run file written by `train`.
        #[arg(long)]
        run: Option<PathBuf>,
        /// A trajectory logged elsewhere (alpha, stepsizes, grads; optional beta);
        /// repeat it for one run logged in pieces (in order; beta from the last).
        #[arg(long, conflicts_with = "run")]
        trajectory: Vec<PathBuf>,
        /// Relative tolerance of the verdict on ‖b_theory − b∞‖/‖b∞‖.
        #[arg(long, default_value = "1e-8")]
        tol: f64,
        /// The parametrisation the run used: uv, u2v2 or md (default: the file's `param`, else uv).
        #[arg(long)]
        param: Option<String>,
    },
    /// Why a logged run disagrees: each mistake a loop makes (start, parametrisation,
    /// gradient scale, lag, a missing first step, momentum) tested by recomputing the gain.
    Diagnose {
        /// The problem the run trained on (.npz with X, y).
        #[arg(long)]
        problem: PathBuf,
        /// A run or accumulator file: only the hypotheses about the start and the
        /// parametrisation (the steps are not stored).
        #[arg(long)]
        run: Option<PathBuf>,
        /// The trajectory (stepsizes, grads, the start, beta; optional final u, v);
        /// repeat for pieces, in order.
        #[arg(long, conflicts_with = "run")]
        trajectory: Vec<PathBuf>,
        /// The parametrisation the run claims (default: the file's `param`, else uv).
        #[arg(long)]
        param: Option<String>,
        /// Relative tolerance of "explains" (raised to the run's precision floor).
        #[arg(long, default_value = "1e-8")]
        tol: f64,
    },
    /// Solve an interpolation problem: hyperbolic entropy, (weighted) basis pursuit, min ℓ2.
    Solve {
        /// The problem to solve on (.npz with X, y).
        #[arg(long)]
        problem: PathBuf,
        /// argmin ψ_α(b) (gradient flow's limit) for this α (number or .npz with `alpha`).
        #[arg(long, group = "mode", allow_negative_numbers = true)]
        alpha: Option<String>,
        /// argmin D_{ψ_{α_∞}}(b, b̃₀) with α_∞, b̃₀ from this run file (Theorem 1).
        #[arg(long, group = "mode")]
        run: Option<PathBuf>,
        /// Basis pursuit argmin ‖b‖₁.
        #[arg(long, group = "mode")]
        l1: bool,
        /// Weighted basis pursuit, weights from a .npy (or .npz with `weights`).
        #[arg(long, group = "mode")]
        weights: Option<PathBuf>,
        /// Weighted basis pursuit with w = ln(1/α_∞) from a run file (or, with
        /// --trajectory, from that trajectory: give `--weights-from-run -`).
        #[arg(long, group = "mode")]
        weights_from_run: Option<PathBuf>,
        /// A trajectory logged elsewhere (repeatable, in order): α_∞ and b̃₀ from it,
        /// like --run.
        #[arg(long)]
        trajectory: Vec<PathBuf>,
        /// The minimum-ℓ2 interpolator.
        #[arg(long, group = "mode")]
        l2: bool,
        /// argmin D_φ(b, 0) for a separable strictly convex φ given as a formula in b and
        /// a (a = --alpha, default 1), e.g. "b^2/2" or ψ_α's formula.
        #[arg(long, allow_hyphen_values = true)]
        potential: Option<String>,
        /// Basis pursuit method: homotopy (default, exact), or an LP: minilp, clarabel, highs (cargo features).
        #[arg(long, default_value = "homotopy")]
        backend: String,
        /// With --alpha or --init: the limit of gradient flow (γ → 0) of this member of the family.
        #[command(flatten)]
        family: FamilyFlags,
    },
    /// A grid of runs (stepsize × algorithm × α × mean × seed), in parallel, appended as
    /// JSON lines as cells finish.
    Sweep {
        /// The sweep file (JSON lines, appended as cells finish).
        #[arg(long)]
        out: PathBuf,
        /// Skip the cells already in --out (after an interruption).
        #[arg(long)]
        resume: bool,
        /// Run only cells with index ≡ k−1 (mod N), e.g. 2/3 (for job arrays).
        #[arg(long)]
        shard: Option<String>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        #[command(flatten)]
        grid: GridFlags,
    },
    /// SVG figures from a sweep file: error and |Gain|₁ vs stepsize, gain per coordinate.
    Plot {
        sweep: PathBuf,
        /// Where to write the figures (a folder).
        #[arg(long, default_value = "figures")]
        out: PathBuf,
        /// Image formats, from one drawing: any of svg, png, pdf.
        #[arg(long, default_value = "svg,png,pdf")]
        format: String,
        /// The print size drawn for: column (3.25 in, legend below), page (6.75 in,
        /// legend beside), slide (10 in); text is at least 8 pt at that size.
        #[arg(long, value_enum, default_value_t = FigureSize::Page)]
        size: FigureSize,
    },
    /// Regenerate every figure of the README from the default settings: a sweep
    /// (centred and uncentred, GD and SGD, 30 fractions of θ) and the edge-of-stability run.
    Figures {
        /// Where to write the sweep and its figures (a folder).
        #[arg(long, default_value = "figures")]
        out: PathBuf,
        /// Seeds per cell of the sweep.
        #[arg(long, default_value_t = 3)]
        seeds: usize,
        /// The edge-of-stability run's stepsize, as a fraction of GD's threshold.
        #[arg(long, default_value_t = 0.9)]
        fraction: f64,
        /// Image formats, from one drawing: any of svg, png, pdf.
        #[arg(long, default_value = "svg,png,pdf")]
        format: String,
        /// The print size drawn for: column (3.25 in, legend below), page (6.75 in,
        /// legend beside), slide (10 in); text is at least 8 pt at that size.
        #[arg(long, value_enum, default_value_t = FigureSize::Page)]
        size: FigureSize,
    },
    /// Join sweep files (shards) into one, sorted by cell.
    Merge {
        /// Sweep files (shards, or a run and its resumption).
        inputs: Vec<PathBuf>,
        /// The merged sweep file to write.
        #[arg(long)]
        out: PathBuf,
        /// Merge even when the inputs do not cover the grid (the missing cells are named).
        #[arg(long)]
        allow_partial: bool,
    },
    /// Convergence and divergence thresholds of a constant stepsize (brackets), the window
    /// between them, and the classical stability bound when the problem has b*.
    Threshold {
        /// The problem (.npz with X, y).
        #[arg(long)]
        problem: PathBuf,
        /// α: a number or a .npz with `alpha`.
        #[arg(long, allow_negative_numbers = true, required_unless_present = "init")]
        alpha: Option<String>,
        #[command(flatten)]
        family: FamilyFlags,
        /// SGD batch size (omit for GD).
        #[arg(long)]
        batch: Option<usize>,
        /// Seed of the SGD batches.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Budget of each trial: this much gradient-flow time (T·⌈n/m⌉/γ steps).
        #[arg(long, default_value = "1e4")]
        time: f64,
        /// A trial passes when the loss falls below this.
        #[arg(long, default_value = "1e-12")]
        tol: f64,
        /// Stop when hi/lo − 1 is at most this.
        #[arg(long, default_value_t = 0.005)]
        rel_width: f64,
    },
    /// Runs and reference solutions side by side, as a table.
    Compare {
        /// A problem file; without it, problems are generated (seed k for seed k).
        #[arg(long)]
        problem: Option<PathBuf>,
        /// α of every built-in run (uv: u₀ = √2 α, v₀ = 0; see --param).
        #[arg(long, default_value_t = 0.1)]
        alpha: f64,
        #[command(flatten)]
        family: FamilyFlags,
        #[command(flatten)]
        momentum: MomentumFlags,
        /// `gd:γ` or `sgd:γ:m`, repeatable.
        #[arg(long = "run")]
        runs: Vec<String>,
        /// A run logged elsewhere, `FILE[:label]` (a trajectory with its final `beta`),
        /// repeatable; needs --problem.
        #[arg(long = "trajectory")]
        trajectories: Vec<String>,
        /// Seeds: problems (when generated) and SGD batches; mean and 95% t-interval.
        #[arg(long, default_value_t = 1)]
        seeds: usize,
        /// Samples of each drawn problem.
        #[arg(long, default_value_t = 20)]
        n: usize,
        /// Features of each drawn problem.
        #[arg(long, default_value_t = 30)]
        d: usize,
        /// Nonzeros of each drawn b*.
        #[arg(long, default_value_t = 3)]
        sparsity: usize,
        /// Mean of every feature (≥ 1: uncentred data).
        #[arg(long, default_value_t = 0.0)]
        mean: f64,
        /// Most steps of each run.
        #[arg(long, default_value_t = 1_000_000)]
        iters: usize,
        /// A run has converged when its training loss falls below this.
        #[arg(long, default_value = "1e-25")]
        tol: f64,
        /// Basis pursuit method: homotopy (default, exact), or an LP: minilp, clarabel, highs (cargo features).
        #[arg(long, default_value = "homotopy")]
        backend: String,
        /// md, csv, latex or json [default: md].
        #[arg(long)]
        format: Option<String>,
        /// Significant digits of the table's means (md, latex); CSV and JSON keep every digit.
        #[arg(long, default_value_t = 4)]
        digits: usize,
        /// Print the table and exit 0 even when a run diverged (exit 3) or did not converge (exit 4).
        #[arg(long)]
        allow_diverged: bool,
    },
    /// Check the claims of a theory directory (DIR/claims/*.toml) against runs.
    Check {
        /// Theory directory (default: ./theory).
        dir: Option<PathBuf>,
        /// Run only the claim with this id.
        #[arg(long)]
        claim: Option<String>,
        /// Fewer seeds per claim (each claim's quick_seeds).
        #[arg(long)]
        quick: bool,
        /// md, json, junit (JUnit XML for CI dashboards) or html (one self-contained page) [default: md].
        #[arg(long)]
        format: Option<String>,
        /// Write the report to this file (repeatable; .xml JUnit, .html, .json, .md by
        /// extension, else --format) and print the Markdown table.
        #[arg(long)]
        out: Vec<PathBuf>,
        /// Pin the claim's measured values: write snapshots/claim_ID.snap (needs --claim; full run).
        #[arg(long)]
        accept: bool,
    },
    /// Start a claim file: DIR/claims/ID.toml from a commented template or another claim.
    NewClaim {
        /// The new claim's id (lowercase letters, digits, -).
        id: String,
        /// Start from this claim's file instead of the template.
        #[arg(long)]
        like: Option<String>,
        /// Theory directory (default: ./theory).
        #[arg(long, default_value = "theory")]
        dir: PathBuf,
    },
}

fn gain_source(run: Option<PathBuf>, trajectory: Vec<PathBuf>) -> app::Result<GainSource> {
    match (run, trajectory.is_empty()) {
        (Some(r), true) => Ok(GainSource::Run(r)),
        (None, false) => Ok(GainSource::Trajectory(trajectory)),
        _ => Err(app::Error::Usage("give a run file or --trajectory".into())),
    }
}

/// `--json` prints JSON: a `--format` asking for something else contradicts it.
pub fn format_agrees(cli: &Cli) -> app::Result<()> {
    let format = match &cli.command {
        Command::Compare { format, .. } | Command::Check { format, .. } => format.as_deref(),
        _ => None,
    };
    match format {
        Some(f) if cli.json && f != "json" => Err(app::Error::Usage(format!(
            "--json prints JSON but --format {f} asks for {f}: give one of them (--format json is the same as --json)"
        ))),
        _ => Ok(()),
    }
}

/// Runs one parsed command.
pub fn run(command: Command) -> app::Result<Outcome> {
    match command {
        Command::Gen { n, d, sparsity, mean, noise, n_test, scale_decades, seed, beta_star, positive, out } => {
            let spec = ProblemSpec { n, d, sparsity, mean, noise, n_test, scale_decades, seed, positive };
            app::generate(&spec, &out, beta_star.as_deref())
        }
        Command::Train {
            problem,
            alpha,
            family,
            stepsize,
            batch,
            iters,
            seed,
            schedule,
            tol,
            record_batches,
            momentum,
            out,
        } => {
            let alpha = alpha.as_deref().map(AlphaArg::parse);
            app::train_cmd(&TrainArgs {
                problem,
                alpha,
                family: family.family()?,
                stepsize,
                schedule,
                batch,
                seed,
                iters,
                tol,
                record_batches,
                momentum: momentum.momentum()?,
                out,
            })
        }
        Command::Diagnose { problem, run, trajectory, param, tol } => {
            app::diagnose_cmd(&problem, &gain_source(run, trajectory)?, param_flag(param)?, tol)
        }
        Command::Gain { run, trajectory, param } => app::gain_cmd(&gain_source(run, trajectory)?, param_flag(param)?),
        Command::Predict { problem, run, trajectory, tol, param } => {
            app::predict_cmd(&problem, &gain_source(run, trajectory)?, param_flag(param)?, tol)
        }
        Command::Solve {
            problem,
            alpha,
            run,
            l1,
            weights,
            weights_from_run,
            l2,
            potential,
            trajectory,
            backend,
            family,
        } => {
            let family = family.family()?;
            if family.init.is_some() && (alpha.is_some() || run.is_some() || weights.is_some() || l1 || l2) {
                return Err(app::Error::Usage("--init replaces --alpha: give one of them, alone".into()));
            }
            let from_trajectory = !trajectory.is_empty();
            let weights_from_trajectory = weights_from_run.as_deref().is_some_and(|p| p.as_os_str() == "-");
            let mode = match (alpha, run, weights, weights_from_run) {
                (None, None, None, None) if from_trajectory && !l1 && !l2 && potential.is_none() => {
                    SolveMode::EntropyFromRun(GainSource::Trajectory(trajectory))
                }
                (None, None, None, Some(_)) if weights_from_trajectory && from_trajectory => {
                    SolveMode::WeightsFromRun(GainSource::Trajectory(trajectory))
                }
                _ if from_trajectory => {
                    return Err(app::Error::Usage(
                        "--trajectory combines only with --weights-from-run - (or alone: the implicit problem)".into(),
                    ));
                }
                (alpha, None, None, None) if potential.is_some() && !l1 && !l2 => SolveMode::Potential {
                    formula: potential.unwrap_or_default(),
                    alpha: alpha.as_deref().map(AlphaArg::parse),
                },
                _ if potential.is_some() => {
                    return Err(app::Error::Usage("--potential combines only with --alpha".into()));
                }
                (Some(a), ..) => SolveMode::Entropy(Some(AlphaArg::parse(&a)), family),
                (None, None, None, None) if family.init.is_some() && !l1 && !l2 => SolveMode::Entropy(None, family),
                (_, Some(r), ..) => SolveMode::EntropyFromRun(GainSource::Run(r)),
                (_, _, Some(w), _) => SolveMode::Weights(w),
                (_, _, _, Some(r)) => SolveMode::WeightsFromRun(GainSource::Run(r)),
                _ if l1 => SolveMode::L1,
                _ if l2 => SolveMode::L2,
                _ => {
                    return Err(app::Error::Usage(
                        "give one of --alpha, --run, --trajectory, --l1, --weights, --weights-from-run, --l2, --potential"
                            .into(),
                    ));
                }
            };
            app::solve_cmd(&problem, &mode, LpBackend::parse(&backend).map_err(app::Error::Usage)?)
        }
        Command::Compare {
            problem,
            alpha,
            family,
            momentum,
            runs,
            trajectories,
            seeds,
            n,
            d,
            sparsity,
            mean,
            iters,
            tol,
            backend,
            format,
            digits,
            allow_diverged,
        } => {
            let runs = runs.iter().map(|r| RunSpec::parse(r)).collect::<Result<_, _>>().map_err(app::Error::Usage)?;
            let backend = LpBackend::parse(&backend).map_err(app::Error::Usage)?;
            let family = family.family()?;
            let spec = CompareSpec {
                alpha,
                param: family.param,
                init: None,
                runs,
                seeds,
                max_iters: iters,
                tol,
                backend,
                trajectories: Vec::new(),
                momentum: momentum.momentum()?,
            };
            let generator = ProblemSpec { n, d, sparsity, mean, ..ProblemSpec::default() };
            let format = Format::parse(format.as_deref().unwrap_or("md")).map_err(app::Error::Usage)?;
            let style = TableStyle { digits };
            app::compare_cmd(CompareArgs {
                problem,
                generator,
                spec,
                format,
                style,
                allow_diverged,
                trajectories,
                family,
            })
        }
        Command::Sweep { out, resume, shard, threads, grid } => {
            let grid = grid.grid()?;
            let shard = shard.as_deref().map(Shard::parse).transpose().map_err(app::Error::Usage)?;
            app::sweep_cmd(&grid, &out, resume, shard, threads)
        }
        Command::Merge { inputs, out, allow_partial } => app::merge_cmd(&inputs, &out, allow_partial),
        Command::Plot { sweep, out, format, size } => {
            let formats = ImageFormat::parse_list(&format).map_err(app::Error::Usage)?;
            app::plot_cmd(&sweep, &out, FigureOutput { formats: &formats, size })
        }
        Command::Figures { out, seeds, fraction, format, size } => {
            let formats = ImageFormat::parse_list(&format).map_err(app::Error::Usage)?;
            app::figures_cmd(&out, seeds, fraction, FigureOutput { formats: &formats, size })
        }
        Command::Threshold { problem, alpha, family, batch, seed, time, tol, rel_width } => {
            let settings = ThresholdSettings { time, tol, rel_width, ..ThresholdSettings::default() };
            let alpha = alpha.as_deref().map(AlphaArg::parse);
            app::threshold_cmd(&problem, alpha.as_ref(), &family.family()?, batch, seed, &settings)
        }
        Command::Check { dir, claim, quick, format, out, accept } => {
            let format = app::CheckFormat::parse(format.as_deref().unwrap_or("md")).map_err(app::Error::Usage)?;
            let dir = dir.unwrap_or_else(|| PathBuf::from("theory"));
            app::check_cmd(&app::CheckArgs { dir, only: claim, quick, format, out, accept, progress: true })
        }
        Command::NewClaim { id, like, dir } => app::new_claim_cmd(&dir, &id, like.as_deref()),
    }
}

/// What a command line did: its outcome (and whether JSON was asked for), or clap's help
/// or version text (exit 0), or an error with its exit code.
#[derive(Debug)]
pub enum Invocation {
    Done { outcome: Outcome, json: bool },
    Help(String),
    Failed { message: String, exit: u8 },
}

/// Parses `argv` (the arguments after the program name) and runs the command.
pub fn execute<I, T>(argv: I) -> Invocation
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = std::iter::once(std::ffi::OsString::from("dlncheck")).chain(argv.into_iter().map(Into::into));
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => return Invocation::Failed { message: e.to_string(), exit: 2 },
        Err(e) => return Invocation::Help(e.to_string()),
    };
    if let Err(e) = format_agrees(&cli) {
        return Invocation::Failed { message: e.to_string(), exit: e.exit_code() };
    }
    let json = cli.json;
    match run(cli.command) {
        Ok(outcome) => Invocation::Done { outcome, json },
        Err(e) => Invocation::Failed { message: e.to_string(), exit: e.exit_code() },
    }
}
