//! Python bindings: the library's gain accumulator, prediction and solvers for numpy and
//! PyTorch loops. No formula lives here: arrays are converted (zero-copy for contiguous
//! float64), the library is called, and its errors become `ValueError` (bad input) or
//! `dlncheck.NumericalError` (a method that missed its tolerance), with its messages.

use dlncheck::bias::EffectiveInit;
use dlncheck::predict::{self as prediction, Verdict};
use dlncheck::problem::Problem;
use dlncheck::solve::{self, LpBackend, NewtonSettings, SolveError};
use dlncheck::trajectory;
use nalgebra::{DMatrix, DVector};
use numpy::{
    AllowTypeChange, IntoPyArray, PyArray1, PyArrayLike1, PyArrayLike2, PyArrayMethods, PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(dlncheck, NumericalError, PyException, "A numerical method did not reach its tolerance.");

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// One `From` for the library's solver errors: bad input → ValueError, else NumericalError.
fn solve_error(e: SolveError) -> PyErr {
    if e.exit_code() == 2 { PyValueError::new_err(e.to_string()) } else { NumericalError::new_err(e.to_string()) }
}

/// Whether `obj` is an array of float32 (its dtype, read before conversion).
fn is_float32(obj: &Bound<'_, PyAny>) -> bool {
    obj.getattr("dtype").and_then(|d| d.str()).is_ok_and(|s| s.to_string_lossy() == "float32")
}

fn finite_vector(name: &str, v: &[f64]) -> PyResult<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(value_error(format!("{name}[{i}] is {} (not finite)", v[i]))),
        None => Ok(()),
    }
}

/// A final iterate of length d with finite entries.
fn checked_beta(b: PyArrayLike1<'_, f64, AllowTypeChange>, d: usize) -> PyResult<DVector<f64>> {
    let b = DVector::from_vec(b.as_array().to_vec());
    if b.len() != d {
        return Err(value_error(format!("beta has {} entries, expected d = {d}", b.len())));
    }
    finite_vector("beta", b.as_slice())?;
    Ok(b)
}

/// The accumulated gain of a training loop, in O(d) memory: the same series as the
/// command line's `gain --trajectory` (bit-identical for the same steps).
#[pyclass(module = "dlncheck")]
struct GainAccumulator {
    acc: trajectory::GainAccumulator,
    ln_alpha: DVector<f64>,
    x: Vec<f64>,
    float32_source: bool,
}

impl GainAccumulator {
    fn eff(&self) -> EffectiveInit {
        self.acc.effective_init(self.ln_alpha.clone())
    }

    /// Adds x = γ g (the library's step) after checking γ and g.
    fn step(&mut self, stepsize: f64, grad: &[f64]) -> PyResult<()> {
        if !(stepsize.is_finite() && stepsize > 0.0) {
            return Err(value_error(format!("stepsize is {stepsize}; it must be finite and > 0")));
        }
        if grad.len() != self.x.len() {
            return Err(value_error(format!("grad has {} entries, expected d = {}", grad.len(), self.x.len())));
        }
        // Passes the compiler vectorises: non-finite entries counted on the exponent bits
        // (an integer sum), then x = γ g, then the library's step.
        const EXP: u64 = 0x7ff0_0000_0000_0000;
        let bad: u32 = grad.iter().map(|g| u32::from(g.to_bits() & EXP == EXP)).sum();
        if bad > 0 {
            finite_vector("grad", grad)?;
        }
        self.x.iter_mut().zip(grad).for_each(|(x, g)| *x = stepsize * g);
        self.acc.add(&self.x).map_err(value_error)
    }
}

#[pymethods]
impl GainAccumulator {
    /// GainAccumulator(alpha, d=None): alpha a float (then d is required) or a 1-D array.
    #[new]
    #[pyo3(signature = (alpha, d=None))]
    fn new(alpha: &Bound<'_, PyAny>, d: Option<usize>) -> PyResult<Self> {
        let alpha: Vec<f64> = match alpha.extract::<f64>() {
            Ok(a) => vec![a; d.ok_or_else(|| value_error("a scalar alpha needs d"))?],
            Err(_) => {
                let arr: PyArrayLike1<'_, f64, AllowTypeChange> = alpha.extract()?;
                let v = arr.as_array().to_vec();
                if d.is_some_and(|d| d != v.len()) {
                    return Err(value_error(format!("alpha has {} entries but d = {}", v.len(), d.unwrap_or(0))));
                }
                v
            }
        };
        if alpha.is_empty() {
            return Err(value_error("d must be ≥ 1"));
        }
        if let Some(i) = alpha.iter().position(|a| !(a.is_finite() && *a > 0.0)) {
            return Err(value_error(format!("alpha[{i}] is {}; α must be finite and > 0", alpha[i])));
        }
        let d = alpha.len();
        Ok(Self {
            acc: trajectory::GainAccumulator::new(d),
            ln_alpha: DVector::from_iterator(d, alpha.iter().map(|a| a.ln())),
            x: vec![0.0; d],
            float32_source: false,
        })
    }

    /// One step: `grad` is the gradient of the loss with respect to b (1-D, length d).
    fn add(&mut self, stepsize: f64, grad: &Bound<'_, PyAny>) -> PyResult<()> {
        // Fast path: a float64 numpy vector, read in place.
        if let Ok(arr) = grad.cast::<PyArray1<f64>>() {
            // SAFETY: the GIL is held and nothing below calls back into Python, so no
            // Python code can write the array while it is read.
            if let Ok(s) = unsafe { arr.as_slice() } {
                return self.step(stepsize, s);
            }
        }
        self.float32_source |= is_float32(grad);
        let g: PyArrayLike1<'_, f64, AllowTypeChange> =
            grad.extract().map_err(|_| value_error("grad must be a 1-D array of length d"))?;
        match g.as_slice() {
            Ok(s) => self.step(stepsize, s),
            Err(_) => self.step(stepsize, &g.as_array().to_vec()),
        }
    }

    /// K steps at once: `stepsizes` (K), `grads` (K × d).
    fn add_many(&mut self, stepsizes: &Bound<'_, PyAny>, grads: &Bound<'_, PyAny>) -> PyResult<()> {
        self.float32_source |= is_float32(grads);
        let s: PyArrayLike1<'_, f64, AllowTypeChange> = stepsizes.extract()?;
        let g: PyArrayLike2<'_, f64, AllowTypeChange> =
            grads.extract().map_err(|_| value_error("grads must be a 2-D array (K × d)"))?;
        let (k, d) = (g.shape()[0], g.shape()[1]);
        if s.len() != k || d != self.x.len() {
            return Err(value_error(format!(
                "stepsizes has {} entries and grads is {k}×{d}; expected K stepsizes and K × {} grads",
                s.len(),
                self.x.len()
            )));
        }
        let (s, g) = (s.as_array(), g.as_array());
        for (gamma, row) in s.iter().zip(g.rows()) {
            match row.as_slice() {
                Some(r) => self.step(*gamma, r)?,
                None => self.step(*gamma, &row.to_vec())?,
            }
        }
        Ok(())
    }

    #[getter]
    fn steps(&self) -> usize {
        self.acc.steps()
    }

    #[getter]
    fn gain<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        self.acc.gain.as_slice().to_vec().into_pyarray(py)
    }

    #[getter]
    fn rho<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        self.acc.rho.as_slice().to_vec().into_pyarray(py)
    }

    #[getter]
    fn ln_alpha_inf2<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        self.eff().ln_alpha_inf2().as_slice().to_vec().into_pyarray(py)
    }

    #[getter]
    fn alpha_inf<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        self.eff().alpha_inf().as_slice().to_vec().into_pyarray(py)
    }

    #[getter]
    fn beta_tilde0<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        self.eff().beta_tilde0().as_slice().to_vec().into_pyarray(py)
    }

    /// Whether some gradient came as float32 (it bounds the agreement to ~1e-7).
    #[getter]
    fn float32_source(&self) -> bool {
        self.float32_source
    }

    /// Writes a file `dlncheck gain`, `predict --run`, `solve --run` and `compare
    /// --trajectory` read: alpha, gain, q_plus, q_minus, iters, and beta if given.
    #[pyo3(signature = (path, beta=None))]
    fn save(&self, path: std::path::PathBuf, beta: Option<PyArrayLike1<'_, f64, AllowTypeChange>>) -> PyResult<()> {
        let beta = beta.map(|b| checked_beta(b, self.x.len())).transpose()?;
        dlncheck::runfile::save_accumulated(&path, &self.eff(), self.acc.steps(), beta.as_ref()).map_err(value_error)
    }

    fn __repr__(&self) -> String {
        format!("GainAccumulator(d={}, steps={})", self.x.len(), self.acc.steps())
    }
}

/// X (n × d) and y (n) checked as the command line checks a problem file.
fn problem(x: PyArrayLike2<'_, f64, AllowTypeChange>, y: PyArrayLike1<'_, f64, AllowTypeChange>) -> PyResult<Problem> {
    let (n, d) = (x.shape()[0], x.shape()[1]);
    let xs = x.as_array();
    let x = DMatrix::from_fn(n, d, |i, j| xs[[i, j]]);
    let y = DVector::from_vec(y.as_array().to_vec());
    if y.len() != n {
        return Err(value_error(format!("y has {} entries, X is {n}×{d}: one label per row of X", y.len())));
    }
    finite_vector("X", x.as_slice())?;
    finite_vector("y", y.as_slice())?;
    let p = Problem { x, y, beta_star: None, x_test: None, y_test: None };
    p.check_overparametrised(std::path::Path::new("X")).map_err(value_error)?;
    Ok(p)
}

/// A solver's failure, blamed on X (ValueError) when X is rank-deficient: as on the
/// command line, the rank is checked only when a solver fails.
fn solver_failed(p: &Problem) -> impl FnOnce(SolveError) -> PyErr + '_ {
    move |e| match p.check_interpolation(std::path::Path::new("X")) {
        Err(bad) => value_error(bad),
        Ok(()) => solve_error(e),
    }
}

fn to_array<'py>(py: Python<'py>, v: &DVector<f64>) -> Bound<'py, numpy::PyArray1<f64>> {
    v.as_slice().to_vec().into_pyarray(py)
}

/// predict(X, y, acc, beta=None, tol=1e-8) → dict: the command line's `predict`.
#[pyfunction]
#[pyo3(signature = (x, y, acc, beta=None, tol=1e-8))]
fn predict<'py>(
    py: Python<'py>,
    x: PyArrayLike2<'_, f64, AllowTypeChange>,
    y: PyArrayLike1<'_, f64, AllowTypeChange>,
    acc: &GainAccumulator,
    beta: Option<PyArrayLike1<'_, f64, AllowTypeChange>>,
    tol: f64,
) -> PyResult<Bound<'py, PyDict>> {
    if !(tol.is_finite() && tol > 0.0) {
        return Err(value_error(format!("tol is {tol}; it must be finite and > 0")));
    }
    let p = problem(x, y)?;
    if acc.x.len() != p.d() {
        return Err(value_error(format!("the accumulator has d = {}, X has d = {}", acc.x.len(), p.d())));
    }
    let beta = beta.map(|b| checked_beta(b, p.d())).transpose()?;
    let eff = acc.eff();
    let pred = py
        .detach(|| prediction::predict(&p.x, &p.y, &eff, beta.as_ref(), &NewtonSettings::default()))
        .map_err(solver_failed(&p))?;
    let out = PyDict::new(py);
    out.set_item("beta_theory", to_array(py, &pred.theory.beta))?;
    out.set_item("beta_gradient_flow", to_array(py, &pred.gradient_flow.beta))?;
    out.set_item("newton_iters", pred.theory.newton_iters)?;
    let c = pred.checks;
    out.set_item("rel_err", c.map(|c| c.rel_err))?;
    out.set_item("kkt_residual", c.and_then(|c| c.kkt_residual))?;
    out.set_item("primal_residual", c.map(|c| c.primal_residual))?;
    out.set_item("residual_error", c.map(|c| c.residual_error))?;
    let verdict = c.map(|c| match c.verdict(tol) {
        Verdict::Agrees => "agrees",
        Verdict::Disagrees => "disagrees",
        Verdict::NotConverged => "not_converged",
    });
    out.set_item("verdict", verdict)?;
    out.set_item("float32_source", acc.float32_source)?;
    Ok(out)
}

/// solve_implicit(X, y, acc) → dict: argmin D_{ψ_{α_∞}}(b, b̃₀) subject to Xb = y.
#[pyfunction]
fn solve_implicit<'py>(
    py: Python<'py>,
    x: PyArrayLike2<'_, f64, AllowTypeChange>,
    y: PyArrayLike1<'_, f64, AllowTypeChange>,
    acc: &GainAccumulator,
) -> PyResult<Bound<'py, PyDict>> {
    let p = problem(x, y)?;
    let eff = acc.eff();
    let sol = py
        .detach(|| solve::solve_implicit(&p.x, &p.y, &eff.ln_alpha_inf2(), &eff.rho, &NewtonSettings::default()))
        .map_err(solver_failed(&p))?;
    let out = PyDict::new(py);
    out.set_item("beta", to_array(py, &sol.beta))?;
    out.set_item("newton_iters", sol.newton_iters)?;
    out.set_item("residual", sol.residual)?;
    Ok(out)
}

/// basis_pursuit(X, y, weights=None) → dict: (weighted) basis pursuit by the ℓ1 homotopy,
/// certified (beta, objective, dual_objective, rel_gap, feasibility, dual_from, backend,
/// fallback: why the LP answered instead, or None).
#[pyfunction]
#[pyo3(signature = (x, y, weights=None))]
fn basis_pursuit<'py>(
    py: Python<'py>,
    x: PyArrayLike2<'_, f64, AllowTypeChange>,
    y: PyArrayLike1<'_, f64, AllowTypeChange>,
    weights: Option<PyArrayLike1<'_, f64, AllowTypeChange>>,
) -> PyResult<Bound<'py, PyDict>> {
    let p = problem(x, y)?;
    let w = weights.map_or_else(|| DVector::from_element(p.d(), 1.0), |w| DVector::from_vec(w.as_array().to_vec()));
    let sol = py
        .detach(|| {
            let mut sol = solve::weighted_basis_pursuit(&p.x, &p.y, &w, LpBackend::Homotopy)?;
            solve::certify_exactly(&p.x, &p.y, &w, &mut sol).map(|_| sol)
        })
        .map_err(solver_failed(&p))?;
    let out = PyDict::new(py);
    out.set_item("beta", to_array(py, &sol.beta))?;
    out.set_item("objective", sol.objective)?;
    out.set_item("dual_objective", sol.dual_objective)?;
    out.set_item("rel_gap", sol.rel_gap)?;
    out.set_item("feasibility", sol.feasibility)?;
    out.set_item("dual_from", sol.dual_from)?;
    out.set_item("backend", sol.backend.name())?;
    out.set_item("fallback", sol.fallback)?;
    Ok(out)
}

/// min_l2(X, y) → the minimum-ℓ2 interpolator.
#[pyfunction]
fn min_l2<'py>(
    py: Python<'py>,
    x: PyArrayLike2<'_, f64, AllowTypeChange>,
    y: PyArrayLike1<'_, f64, AllowTypeChange>,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let p = problem(x, y)?;
    let b = solve::min_norm(&p.x, &p.y).map_err(solver_failed(&p))?;
    Ok(to_array(py, &b))
}

#[pymodule]
fn _dlncheck(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<GainAccumulator>()?;
    m.add_function(wrap_pyfunction!(predict, m)?)?;
    m.add_function(wrap_pyfunction!(solve_implicit, m)?)?;
    m.add_function(wrap_pyfunction!(basis_pursuit, m)?)?;
    m.add_function(wrap_pyfunction!(min_l2, m)?)?;
    m.add("NumericalError", m.py().get_type::<NumericalError>())?;
    Ok(())
}
