//! Solvers for the problems the theory relates: the implicit-regularisation problem
//! (hyperbolic entropy, dual Newton).

mod implicit;

pub use implicit::{ImplicitSolution, NewtonSettings, solve_implicit, solve_implicit_from};

/// Why a solve produced no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolveError {
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error("dual Newton did not converge in {iters} iterations (relative residual {residual:.3e})")]
    NotConverged { iters: usize, residual: f64 },
    #[error("numerical failure in the dual Newton solver: {0}")]
    Numerical(String),
}
