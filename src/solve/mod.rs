//! Solvers for the problems the theory relates: the implicit-regularisation problem
//! (hyperbolic entropy, dual Newton), weighted basis pursuit (LP), the minimum-ℓ2
//! interpolator, the small-scale limit that links the first two, and gradient flow's
//! limit on deeper networks.

mod damped;
mod depth;
mod homotopy;
mod implicit;
mod limit;
mod lp;
mod newton_system;
mod potential;
mod unit_scales;

pub use depth::{DepthFlow, DepthFlowSolution, depth_kkt_residual, solve_depth_flow};
pub use homotopy::{HomotopySolution, l1_homotopy};
pub use implicit::{ImplicitSolution, MAX_EXPONENT, MAX_RESIDUAL, NewtonSettings, solve_implicit};
pub use limit::{LimitPoint, weighted_bp_limit_curve};
pub use lp::{
    FEASIBILITY_TOL, GAP_TOL, LpBackend, LpSolution, basis_pursuit, certify_exactly, dual_basis_pursuit, min_norm,
    weighted_basis_pursuit,
};
pub use newton_system::NewtonSystem;
pub use potential::{Potential, PotentialSolution, solve_potential};

/// The part of r outside the row space of X, r − Xᵀ(XXᵀ)⁻¹X r, in norm over
/// max(‖r‖₂, 1): the KKT residual of a limit whose dual variable must lie in that space.
pub fn row_space_residual(x: &nalgebra::DMatrix<f64>, r: &nalgebra::DVector<f64>) -> Result<f64, SolveError> {
    let gram = x * x.transpose();
    let chol = nalgebra::Cholesky::new(gram).ok_or(SolveError::Numerical("X Xᵀ is not positive definite".into()))?;
    let outside = r - x.transpose() * chol.solve(&(x * r));
    Ok(crate::numeric::norm(&outside) / crate::numeric::norm(r).max(1.0))
}

/// Serialises a vector as a JSON array.
pub(crate) fn ser_vec<S: serde::Serializer>(v: &nalgebra::DVector<f64>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter())
}

/// Why a solve produced no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolveError {
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error(
        "dual Newton did not converge in {iters} iterations (relative residual {residual:.3e}, needed ≤ {needed:e})"
    )]
    NotConverged { iters: usize, residual: f64, needed: f64 },
    #[error("numerical failure: {0}")]
    Numerical(String),
    #[error("bad weights: {0}")]
    BadWeights(String),
    #[error("{0}")]
    Potential(String),
    #[error("LP backend {backend} gave no answer: {status}")]
    Lp { backend: &'static str, status: String },
    /// A method ended with an answer that misses its tolerance or certificate.
    #[error("{method} missed its tolerance: {reached}, needed {needed}")]
    Missed { method: &'static str, reached: String, needed: String },
}

impl SolveError {
    /// The exit code of the command line: 2 for bad input (shapes, weights, a
    /// potential that is not strictly convex), 5 for a method that did not reach its
    /// tolerance or certificate.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Shape(_) | Self::BadWeights(_) | Self::Potential(_) => 2,
            Self::NotConverged { .. } | Self::Numerical(_) | Self::Lp { .. } | Self::Missed { .. } => 5,
        }
    }
}
