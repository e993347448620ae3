//! The `dlncheck` binary: runs the command line ([`dlncheck::cli::execute`]), prints once,
//! maps exit codes (0 ok, 1 a claim or prediction does not hold, 2 bad usage or input,
//! 3 a run diverged, 4 a trajectory has not converged, 5 a method missed its tolerance or
//! certificate).

use std::process::ExitCode;

use dlncheck::cli::{Invocation, execute};

fn main() -> ExitCode {
    match execute(std::env::args_os().skip(1)) {
        Invocation::Done { outcome, json } => {
            if json {
                println!("{}", outcome.json);
                eprint!("{}", outcome.text);
            } else {
                print!("{}", outcome.text);
            }
            ExitCode::from(outcome.exit)
        }
        Invocation::Help(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Invocation::Failed { message, exit } => {
            if message.starts_with("error:") {
                eprint!("{message}");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::from(exit)
        }
    }
}
