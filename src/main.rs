//! The `dlncheck` binary: parses flags, calls the library, prints once, maps exit codes
//! (0 ok, 1 a claim does not hold, 2 bad usage or input, 3 a run diverged).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dlncheck::app::{self, AlphaArg, GainSource, Outcome, TrainArgs};
use dlncheck::problem::ProblemSpec;

#[derive(Parser)]
#[command(
    name = "dlncheck",
    version,
    about = "Checks the implicit regularisation of (S)GD on diagonal linear networks"
)]
struct Cli {
    /// Print one JSON object on stdout (human text goes to stderr).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Draw a sparse regression problem (seeded, portable).
    Gen {
        #[arg(long, default_value_t = 20)]
        n: usize,
        #[arg(long, default_value_t = 30)]
        d: usize,
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
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Run GD or SGD on b = u ⊙ v and record the gain.
    Train {
        #[arg(long)]
        problem: PathBuf,
        /// α: a number, or a .npz file holding `alpha` (scalar or per coordinate).
        #[arg(long, allow_negative_numbers = true)]
        alpha: String,
        /// Constant `0.1`, or phases `0.5@1000,0.05` (γ for that many steps, then the last).
        #[arg(long, conflicts_with = "schedule", allow_negative_numbers = true)]
        stepsize: Option<String>,
        /// SGD batch size (omit for GD).
        #[arg(long)]
        batch: Option<usize>,
        #[arg(long, default_value_t = 1_000_000)]
        iters: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Replay `stepsizes` (K) and optional `batches` (K × m) from a .npz file.
        #[arg(long)]
        schedule: Option<PathBuf>,
        /// Stop when the training loss falls below this.
        #[arg(long, default_value_t = 1e-25)]
        tol: f64,
        /// Store the rows of every SGD step in the run file.
        #[arg(long)]
        record_batches: bool,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Gain, effective initialisation α_∞, ρ and b̃_0 of a run or an external trajectory.
    Gain {
        /// A run file written by `train`.
        run: Option<PathBuf>,
        /// An external trajectory: `alpha`, `stepsizes`, `grads` (K × d), optional `beta`.
        #[arg(long, conflicts_with = "run")]
        trajectory: Option<PathBuf>,
    },
    /// The theory's limit (Theorem 1) for a run or trajectory, against the observed one.
    Predict {
        #[arg(long)]
        problem: PathBuf,
        #[arg(long)]
        run: Option<PathBuf>,
        #[arg(long, conflicts_with = "run")]
        trajectory: Option<PathBuf>,
    },
    /// Check the theory against runs on the built-in problems.
    Check,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli.command) {
        Ok(outcome) => {
            print_outcome(&outcome, cli.json);
            ExitCode::from(outcome.exit)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn print_outcome(o: &Outcome, json: bool) {
    if json {
        println!("{}", o.json);
        eprint!("{}", o.text);
    } else {
        print!("{}", o.text);
    }
}

fn gain_source(run: Option<PathBuf>, trajectory: Option<PathBuf>) -> app::Result<GainSource> {
    match (run, trajectory) {
        (Some(r), None) => Ok(GainSource::Run(r)),
        (None, Some(t)) => Ok(GainSource::Trajectory(t)),
        _ => Err(app::Error::Usage("give a run file or --trajectory".into())),
    }
}

fn run(command: Command) -> app::Result<Outcome> {
    match command {
        Command::Gen { n, d, sparsity, mean, noise, n_test, seed, out } => {
            app::generate(&ProblemSpec { n, d, sparsity, mean, noise, n_test, seed }, &out)
        }
        Command::Train { problem, alpha, stepsize, batch, iters, seed, schedule, tol, record_batches, out } => {
            let alpha = AlphaArg::parse(&alpha);
            app::train_cmd(&TrainArgs {
                problem,
                alpha,
                stepsize,
                schedule,
                batch,
                seed,
                iters,
                tol,
                record_batches,
                out,
            })
        }
        Command::Gain { run, trajectory } => app::gain_cmd(&gain_source(run, trajectory)?),
        Command::Predict { problem, run, trajectory } => app::predict_cmd(&problem, &gain_source(run, trajectory)?),
        Command::Check => app::check_builtin(),
    }
}
