//! Theory against practice for one run: the predicted limit (Theorem 1), gradient
//! flow's limit, and independent checks of the observed limit (KKT residual).

use nalgebra::{Cholesky, DMatrix, DVector};

use crate::bias::{EffectiveInit, Scales};
use crate::numeric;
use crate::solve::{ImplicitSolution, NewtonSettings, SolveError, solve_implicit};

/// The theory's predictions for one effective initialisation, and how an observed
/// limit compares with them.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// argmin_{Xb=y} D_{ψ_{α_∞}}(b, b̃_0).
    pub theory: ImplicitSolution,
    /// Gradient flow's limit argmin_{Xb=y} ψ_α(b) (Gain = 0, b̃_0 = 0).
    pub gradient_flow: ImplicitSolution,
    pub beta_limit: Option<DVector<f64>>,
    pub checks: Option<LimitChecks>,
}

/// Checks of an observed limit b∞ against the theory.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LimitChecks {
    /// ‖b_theory - b∞‖₂ / ‖b∞‖₂.
    pub rel_err: f64,
    /// ‖b_gradient_flow - b∞‖₂ / ‖b∞‖₂.
    pub rel_err_gradient_flow: f64,
    /// The part of asinh(b∞/α_∞²) - ρ outside the row space of X, relative to its size
    /// (Theorem 1's KKT condition, checked without the solver); `None` where b∞ has
    /// underflowed entries that no longer determine it.
    pub kkt_residual: Option<f64>,
    /// ‖X b∞ - y‖₂ / ‖y‖₂.
    pub primal_residual: f64,
    /// How far the primal residual alone can move the limit, relative to ‖b_theory‖:
    /// ‖C Xᵀ (X C Xᵀ)⁻¹ (X b∞ − y)‖ / ‖b_theory‖ with C = diag(α_∞² cosh z) at the
    /// theory's solution (theory/README.md, "When is a run converged").
    pub residual_error: f64,
}

/// What a prediction says about an observed limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Converged, and rel_err ≤ tol.
    Agrees,
    /// Converged, and rel_err > tol.
    Disagrees,
    /// The residual allows an error above tol / [`CONVERGED_MARGIN`]: run longer.
    NotConverged,
}

/// A run counts as converged when its residual can move the limit by at most
/// tol / CONVERGED_MARGIN, so the residual cannot decide a verdict either way.
pub const CONVERGED_MARGIN: f64 = 10.0;

impl LimitChecks {
    /// The verdict at relative tolerance `tol`.
    pub fn verdict(&self, tol: f64) -> Verdict {
        if !(self.residual_error <= tol / CONVERGED_MARGIN) {
            Verdict::NotConverged
        } else if self.rel_err <= tol {
            Verdict::Agrees
        } else {
            Verdict::Disagrees
        }
    }
}

/// Where a run's steps were taken, for the advice a verdict gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A run of `dlncheck train`.
    Train,
    /// The user's own loop, logged as a trajectory file.
    Trajectory,
    /// The user's own loop, accumulated in Python.
    Python,
}

/// A verdict, the sentence that explains it, and the exit code it means.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// `None` when there is nothing to compare (no final iterate, or a precision floor
    /// ≥ [`MAX_FLOOR`]).
    pub verdict: Option<Verdict>,
    pub message: String,
    /// 0 agrees (or nothing to compare), 1 disagrees, 4 not converged, 5 a floor so high
    /// that no digit can be compared.
    pub exit: u8,
}

/// The verdict on `checks` at the tolerance actually used (`tol`, after the run's
/// precision floors), in words a user can act on.
pub fn decide(checks: Option<&LimitChecks>, tol: f64, source: Source) -> Decision {
    let Some(c) = checks else {
        let message = "verdict: none (the source has no final iterate `beta` to compare)".into();
        return Decision { verdict: None, message, exit: 0 };
    };
    if tol >= MAX_FLOOR {
        let message = format!(
            "verdict: none: the run's own arithmetic limits any agreement to {tol:.2e} (≥ {MAX_FLOOR:e}), so no \
             digit of its limit can be compared"
        );
        return Decision { verdict: None, message, exit: 5 };
    }
    let verdict = c.verdict(tol);
    let (message, exit) = match verdict {
        Verdict::Agrees => (format!("verdict: agrees (rel_err {:.3e} ≤ tol {tol:.0e})", c.rel_err), 0),
        Verdict::Disagrees => {
            let why = match source {
                Source::Train => "",
                Source::Trajectory => ": `dlncheck diagnose` says why",
                Source::Python => {
                    ": dlncheck.diagnose(X, y, acc, beta) says why (an accumulator made with \
                                   diagnose=True lets it test every hypothesis)"
                }
            };
            (format!("verdict: disagrees (rel_err {:.3e} > tol {tol:.0e}, on a converged run){why}", c.rel_err), 1)
        }
        Verdict::NotConverged => {
            let how = match source {
                Source::Train => "run longer (a lower --tol in train)",
                Source::Trajectory | Source::Python => "run your loop longer",
            };
            let message = format!(
                "verdict: not converged: the primal residual ‖Xb − y‖/‖y‖ = {:.3e} alone can move the limit by \
                 {:.3e} (relative), more than tol/{CONVERGED_MARGIN} = {:.0e}; the theorem speaks of the limit: {how} \
                 until the residual is about {:.0e}",
                c.primal_residual,
                c.residual_error,
                tol / CONVERGED_MARGIN,
                c.primal_residual * tol / CONVERGED_MARGIN / c.residual_error.max(f64::MIN_POSITIVE)
            );
            (message, 4)
        }
    };
    Decision { verdict: Some(verdict), message, exit }
}

/// float32's unit roundoff, 2⁻²⁴.
pub const F32_UNIT_ROUNDOFF: f64 = 5.960_464_477_539_063e-8;

/// How closely a run's own arithmetic lets its limit agree with the theory, and why
/// (theory/README.md § Precision of a run): a verdict's tolerance is never below it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Precision {
    pub floor: f64,
    pub reason: String,
}

impl Precision {
    /// A loop of K steps in float32 (iterates or gradients) whose gain reaches
    /// `max_gain`: u₃₂·(4√K + 2(1 + max |Gain|)), u₃₂ = 2⁻²⁴. Each step rounds ln|w±| by
    /// about u₃₂ (a random walk: 2u₃₂√K at two standard deviations, for each of
    /// ln α₊² and ln α₋²), and a float32 gradient moves each q term by about 2x²u₃₂
    /// (2u₃₂·Gain in all); b∞ moves relatively by at most the error of its exponents.
    pub fn float32(steps: usize, max_gain: f64) -> Self {
        let floor = F32_UNIT_ROUNDOFF * (4.0 * (steps as f64).sqrt() + 2.0 * (1.0 + max_gain.abs()));
        let reason = format!(
            "float32 arithmetic: u₃₂ (4√K + 2(1 + max|Gain|)) with K = {steps} steps, max|Gain| = {max_gain:.3}"
        );
        Self { floor, reason }
    }

    /// From the final weights of a K-step run computed with unit roundoff `unit`: the
    /// conservation law ln|w₊w₋| = ln α_∞² holds exactly in exact arithmetic, so its
    /// defect 4·max_i |ln|w₊w₋| − ln α_∞,i²| measures the digits the run lost, and b∞'s
    /// exponents carry the same error. Only coordinates where rounding can explain the
    /// defect count: at most 4(K + 1)·unit·((|w₊| + |w₋|)/min(|w₊|, |w₋|) + 1 + Gain_i),
    /// the smaller weight's relative error when it is a difference of the loop's
    /// iterates, plus the gain's. A larger defect is not lost digits but a start or a
    /// gain that does not match the loop (`dlncheck diagnose` recovers the start from
    /// it). `None` when no coordinate counts.
    pub fn conservation(
        eff: &EffectiveInit,
        w_plus: &DVector<f64>,
        w_minus: &DVector<f64>,
        steps: usize,
        unit: f64,
    ) -> Option<Self> {
        let ell = eff.ln_alpha_inf2();
        let k = steps as f64 + 1.0;
        let defect = (0..ell.len())
            .filter(|&i| w_plus[i] != 0.0 && w_minus[i] != 0.0 && ell[i].is_finite())
            .filter_map(|i| {
                let (p, m) = (w_plus[i].abs(), w_minus[i].abs());
                let defect = ((w_plus[i] * w_minus[i]).abs().ln() - ell[i]).abs();
                let rounding = 4.0 * k * unit * ((p + m) / p.min(m) + 1.0 + eff.gain[i].abs());
                (defect <= rounding).then_some(defect)
            })
            .reduce(f64::max)?;
        let reason = format!("the conservation law's defect on the final weights: 4 × {defect:.3e}");
        Some(Self { floor: 4.0 * defect, reason })
    }
}

/// Above this floor a run's arithmetic leaves no digit of its limit to compare: no verdict.
pub const MAX_FLOOR: f64 = 1e-2;

/// The tolerance a verdict uses: `tol`, or the largest floor above it, with its reason.
pub fn tol_used(tol: f64, floors: &[Precision]) -> (f64, Option<String>) {
    match floors.iter().filter(|p| p.floor > tol).max_by(|a, b| a.floor.total_cmp(&b.floor)) {
        Some(p) => (p.floor, Some(p.reason.clone())),
        None => (tol, None),
    }
}

/// Solves the implicit problem and gradient flow's, and checks `beta_limit` if given.
pub fn predict(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    eff: &EffectiveInit,
    beta_limit: Option<&DVector<f64>>,
    settings: &NewtonSettings,
) -> Result<Prediction, SolveError> {
    let scales = eff.scales();
    // The two solves are independent: one per core.
    let (theory, gradient_flow) = rayon::join(
        || solve_implicit(x, y, &scales, settings),
        || solve_implicit(x, y, &eff.without_steps().scales(), settings),
    );
    let (theory, gradient_flow) = (theory?, gradient_flow?);
    let checks = match beta_limit {
        Some(b) => {
            let r = x * b - y;
            Some(LimitChecks {
                rel_err: rel_dist(&theory.beta, b),
                rel_err_gradient_flow: rel_dist(&gradient_flow.beta, b),
                kkt_residual: kkt_residual(x, &scales, b)?,
                primal_residual: numeric::rel_residual(&r, y),
                residual_error: residual_error(x, &scales, &theory.beta, &r),
            })
        }
        None => None,
    };
    Ok(Prediction { theory, gradient_flow, beta_limit: beta_limit.cloned(), checks })
}

/// First-order displacement of the limit explained by a primal residual r = X b∞ − y:
/// near the solution b(μ) = α_∞² sinh(ρ + Xᵀμ), so a change δμ moves b by C Xᵀ δμ and
/// X b by H δμ (H = X C Xᵀ, C = diag(db/dz) = diag(√(b² + α_∞⁴)), |b| on
/// sign-constrained coordinates). The iterate
/// with residual r is the dual point δμ = H⁻¹ r away from the solution, hence
/// ‖b∞ − b_theory‖ ≈ ‖C Xᵀ H⁻¹ r‖. Relative to ‖b_theory‖; infinite when H cannot be
/// factored (then nothing bounds the error).
pub fn residual_error(x: &DMatrix<f64>, scales: &Scales, b_theory: &DVector<f64>, r: &DVector<f64>) -> f64 {
    let c = DVector::from_fn(b_theory.len(), |i, _| scales.curvature(i, b_theory[i]));
    let scaled_xt = DMatrix::from_fn(x.ncols(), x.nrows(), |i, k| c[i] * x[(k, i)]);
    let mut h = x * &scaled_xt;
    let ridge = 1e-14 * h.diagonal().max();
    for i in 0..h.nrows() {
        h[(i, i)] += ridge;
    }
    let Some(chol) = Cholesky::new(h) else { return f64::INFINITY };
    let delta = scaled_xt * chol.solve(r);
    let e = numeric::rel_residual(&delta, b_theory);
    if e.is_finite() { e } else { f64::INFINITY }
}

pub use crate::numeric::rel_dist;

/// KKT residual of b for Theorem 1's problem: with r = z(b) - ρ (z = asinh(b/α_∞²);
/// ln(2b) − ℓ or ℓ − ln(−2b) on sign-constrained coordinates, see [`Scales::z_of`]), the
/// norm of r - Xᵀ(XXᵀ)⁻¹X r (the part of r outside the row space of X) over
/// max(‖r‖₂, 1), over the coordinates that can move (`Zero` ones are fixed at 0 and
/// must be 0).
///
/// `None` when some b_i underflowed (|b_i| below the smallest normal f64 while
/// α_∞,i² sinh(z) need not be 0): such an entry no longer carries r_i. Infinite when
/// b_i has the wrong sign on a sign-constrained coordinate (or is not 0 on a fixed one).
pub fn kkt_residual(x: &DMatrix<f64>, scales: &Scales, b: &DVector<f64>) -> Result<Option<f64>, SolveError> {
    use crate::bias::Side;
    let live: Vec<usize> = (0..b.len()).filter(|&i| scales.side[i] != Side::Zero).collect();
    if live.len() < b.len() && live.len() + b.iter().filter(|v| **v == 0.0).count() < b.len() {
        return Ok(Some(f64::INFINITY));
    }
    if live.iter().any(|&i| b[i].abs() < f64::MIN_POSITIVE) {
        return Ok(None);
    }
    let mut r = DVector::zeros(live.len());
    for (k, &i) in live.iter().enumerate() {
        match scales.z_of(i, b[i]) {
            Some(z) => r[k] = z - scales.rho[i],
            None => return Ok(Some(f64::INFINITY)),
        }
    }
    crate::solve::row_space_residual(&x.select_columns(&live), &r).map(Some)
}

/// Depth D: gradient flow's limit, its own KKT residual (checked without the solver), and
/// a run's distance to it. A measurement, not a verdict: the discrete run has no exact
/// theory (theory/README.md § Deeper networks and momentum).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlowComparison {
    pub depth: u8,
    #[serde(serialize_with = "crate::solve::ser_vec")]
    pub flow_limit: DVector<f64>,
    /// ‖b∞ − b_flow‖₂ / ‖b_flow‖₂.
    pub dist_flow: Option<f64>,
    /// KKT residual of the flow's limit for the flow's potential.
    pub kkt_flow: f64,
    /// KKT residual of the run's limit for the same potential.
    pub kkt_run: Option<f64>,
    /// ‖X b∞ − y‖₂ / ‖y‖₂.
    pub primal_residual: Option<f64>,
    pub newton_iters: usize,
}

impl FlowComparison {
    /// Whether the run has not reached its limit (primal residual above [`FLOW_CONVERGED`]).
    pub fn unconverged(&self) -> bool {
        self.primal_residual.is_some_and(|r| !(r <= FLOW_CONVERGED))
    }

    /// The sentence that replaces a verdict (there is none: `verdict: null`).
    pub fn message(&self) -> String {
        let tail = match self.primal_residual {
            Some(r) if self.unconverged() => {
                format!("; the run has not reached its limit (‖Xb − y‖/‖y‖ = {r:.3e} > {FLOW_CONVERGED:e}): run longer")
            }
            _ => String::new(),
        };
        format!(
            "verdict: null: depth:{} has no exact discrete-time theory, only gradient flow's limit; the distance to it \
             is a measurement (claims check that it falls as γ → 0, at an order){tail}",
            self.depth
        )
    }
}

/// A run whose primal residual is above this has not reached its limit: its distance
/// to the flow's limit is not yet the limit's.
pub const FLOW_CONVERGED: f64 = 1e-8;

/// Solves depth D's flow limit for `model` and compares `beta_limit` with it; `None` for
/// a model of the exact family.
pub fn depth_prediction(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    model: &crate::model::Model,
    beta_limit: Option<&DVector<f64>>,
) -> Option<Result<FlowComparison, SolveError>> {
    let flow = model.depth_flow()?;
    Some((|| {
        let sol = crate::solve::solve_depth_flow(x, y, &flow, &NewtonSettings::default())?;
        let kkt_flow = crate::solve::depth_kkt_residual(x, &flow, &sol.beta)?;
        let kkt_run = beta_limit.map(|b| crate::solve::depth_kkt_residual(x, &flow, b)).transpose()?;
        Ok(FlowComparison {
            depth: flow.depth,
            dist_flow: beta_limit.map(|b| rel_dist(b, &sol.beta)),
            primal_residual: beta_limit.map(|b| numeric::rel_residual(&(x * b - y), y)),
            flow_limit: sol.beta,
            kkt_flow,
            kkt_run,
            newton_iters: sol.newton_iters,
        })
    })())
}
