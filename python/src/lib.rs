//! Python bindings: the library's gain accumulator, prediction and solvers for numpy and
//! PyTorch loops. No formula lives here: arrays are converted (zero-copy for contiguous
//! float64), the library is called, and its errors become `ValueError` (bad input) or
//! `dlncheck.NumericalError` (a method that missed its tolerance), with its messages.

use dlncheck::bias::EffectiveInit;
use dlncheck::model::{Init, Model, Param};
use dlncheck::predict::{self as prediction, Verdict};
use dlncheck::problem::Problem;
use dlncheck::solve::{self, LpBackend, NewtonSettings, SolveError};
use dlncheck::trajectory;
use nalgebra::{DMatrix, DVector};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyMemoryError, PyTypeError, PyValueError};
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

/// An array argument read once into memory of its own: its values as f64 in C order,
/// its shape, and whether its dtype holds less than float64's precision (float16,
/// float32). Every Python entry point takes its arrays through [`read_array`], so each
/// is converted, size-checked, type-checked and copied in one place.
struct Input {
    data: Vec<f64>,
    shape: Vec<usize>,
    low_precision: bool,
}

/// Reads argument `name` as an `ndim`-dimensional real array. Refused by name: complex,
/// boolean, object, string and date dtypes, the wrong number of dimensions, sizes beyond
/// the memory budget (MemoryError), NaN and ±inf. Anything numpy's `asarray` reads
/// (lists, any byte order or strides, PyTorch CPU tensors, JAX arrays) is accepted.
fn read_array(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str, ndim: usize) -> PyResult<Input> {
    let np = py.import("numpy")?;
    let arr = np
        .call_method1("asarray", (obj,))
        .map_err(|e| value_error(format!("{name} cannot be read as an array: {}", e.value(py))))?;
    let dtype = arr.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    let itemsize: usize = dtype.getattr("itemsize")?.extract()?;
    let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
    let dtype_name = dtype.str()?.to_string_lossy().into_owned();
    match kind.as_str() {
        "f" | "i" | "u" => {}
        "c" => {
            return Err(type_error(format!(
                "{name} is complex ({dtype_name}); dlncheck takes real arrays: pass the real part explicitly"
            )));
        }
        _ => return Err(type_error(format!("{name} has dtype {dtype_name}; a real numeric array is expected"))),
    }
    if shape.len() != ndim {
        let want = if ndim == 1 { "a 1-D array (a vector)" } else { "a 2-D array (a matrix)" };
        return Err(value_error(format!("{name} must be {want}, got shape {shape:?}")));
    }
    let count = shape.iter().try_fold(1u128, |acc, &s| acc.checked_mul(s as u128)).unwrap_or(u128::MAX);
    dlncheck::limits::check_alloc(name, count, 8).map_err(PyMemoryError::new_err)?;
    let contiguous = np.call_method1("ascontiguousarray", (&arr, "float64"))?;
    let view: PyReadonlyArrayDyn<'_, f64> = contiguous.extract()?;
    let data = view.as_slice().map(<[f64]>::to_vec).unwrap_or_else(|_| view.as_array().iter().copied().collect());
    finite(name, &data, &shape)?;
    Ok(Input { data, shape, low_precision: kind == "f" && itemsize < 8 })
}

/// An error naming the first non-finite entry (with its index in `shape`). The common
/// case is one pass the compiler vectorises: non-finite entries counted on their
/// exponent bits (an integer sum); only then is the first one looked for.
fn finite(name: impl std::fmt::Display, data: &[f64], shape: &[usize]) -> PyResult<()> {
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    if data.iter().map(|g| u32::from(g.to_bits() & EXP == EXP)).sum::<u32>() == 0 {
        return Ok(());
    }
    match data.iter().position(|x| !x.is_finite()) {
        Some(i) if shape.len() == 2 && shape[1] > 0 => {
            Err(value_error(format!("{name}[{}, {}] is {} (not finite)", i / shape[1], i % shape[1], data[i])))
        }
        Some(i) => Err(value_error(format!("{name}[{i}] is {} (not finite)", data[i]))),
        None => Ok(()),
    }
}

fn type_error(e: impl std::fmt::Display) -> PyErr {
    PyTypeError::new_err(e.to_string())
}

/// A vector argument of length `d` (checked), as a `DVector`.
fn vector_of_len(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str, d: usize) -> PyResult<DVector<f64>> {
    let v = read_array(py, obj, name, 1)?;
    if v.data.len() != d {
        return Err(value_error(format!("{name} has {} entries, expected d = {d}", v.data.len())));
    }
    Ok(DVector::from_vec(v.data))
}

/// α as a vector: a float repeated d times (d required), or a 1-D array (of length d
/// when d is given); every entry finite and > 0 is checked with the start.
fn alpha_vector(py: Python<'_>, alpha: &Bound<'_, PyAny>, d: Option<usize>) -> PyResult<DVector<f64>> {
    match (alpha.extract::<f64>(), d) {
        (Ok(a), Some(d)) => Ok(DVector::from_element(d, a)),
        (Ok(_), None) => Err(value_error("a scalar alpha needs d")),
        (Err(_), _) => {
            let v = read_array(py, alpha, "alpha", 1)?.data;
            if d.is_some_and(|d| d != v.len()) {
                return Err(value_error(format!("alpha has {} entries but d = {}", v.len(), d.unwrap_or(0))));
            }
            accumulator_fits(v.len() as u128)?;
            Ok(DVector::from_vec(v))
        }
    }
}

/// A size argument `d` ≥ 1 whose accumulator fits in memory (else MemoryError).
fn dimension(d: &Bound<'_, PyAny>) -> PyResult<usize> {
    let d: i128 = d.extract().map_err(|_| type_error("d must be an integer"))?;
    if d < 1 {
        return Err(value_error(format!("d is {d}; it must be ≥ 1")));
    }
    accumulator_fits(d as u128)?;
    usize::try_from(d).map_err(|_| PyMemoryError::new_err(format!("d = {d} does not fit in memory")))
}

/// MemoryError unless an accumulator of d coordinates fits: alpha, ln α, gain, ρ and
/// two scratch vectors of d entries each.
fn accumulator_fits(d: u128) -> PyResult<()> {
    dlncheck::limits::check_alloc("an accumulator of d coordinates", d.saturating_mul(6), 8)
        .map_err(PyMemoryError::new_err)
}

/// The accumulated gain of a training loop, in O(d) memory: the same series as the
/// command line's `gain --trajectory` (bit-identical for the same steps).
///
/// Every call is transactional: one that raises leaves the accumulator exactly as it
/// was. Each call reads its arrays once, into memory of its own, before it uses them.
#[pyclass(module = "dlncheck")]
struct GainAccumulator {
    acc: trajectory::GainAccumulator,
    /// The parametrisation and start (theory/README.md § Other starts and parametrisations).
    model: Model,
    /// This step's gradient (a copy) and x = γ g.
    g: Vec<f64>,
    x: Vec<f64>,
    float32_source: bool,
    /// Every other reading of the steps `diagnose` tries (with `diagnose=True`).
    readings: Option<dlncheck::diagnose::Readings>,
}

/// x = s·γ·g after checking γ (g was checked when it was read); s is the
/// parametrisation's (2 for u2v2).
fn step_x(param: Param, stepsize: f64, grad: &[f64], x: &mut [f64]) -> Result<(), String> {
    if !(stepsize.is_finite() && stepsize > 0.0) {
        return Err(format!("stepsize is {stepsize}; it must be finite and > 0"));
    }
    let c = param.x_scale() * stepsize;
    x.iter_mut().zip(grad).for_each(|(x, g)| *x = c * g);
    Ok(())
}

/// Adds x to `acc`, or counts the step where the parametrisation has no gain (md).
fn add_step(param: Param, acc: &mut trajectory::GainAccumulator, x: &[f64]) -> Result<(), String> {
    if param.has_gain() {
        acc.add(x).map_err(|e| e.to_string())
    } else {
        acc.count_step();
        Ok(())
    }
}

impl GainAccumulator {
    fn eff(&self) -> EffectiveInit {
        self.model.effective_init(&self.acc)
    }

    fn d(&self) -> usize {
        self.x.len()
    }

    /// The K steps of `add_many`, all or nothing: each row of `grads` (K × d, row-major)
    /// is copied into `self.g`, checked, and added to a copy of the accumulator that
    /// replaces it only when every row was added.
    fn add_rows(&mut self, stepsizes: &[f64], grads: &[f64], [k, d]: [usize; 2], low_precision: bool) -> PyResult<()> {
        if stepsizes.len() != k || d != self.d() {
            return Err(value_error(format!(
                "stepsizes has {} entries and grads is {k}×{d}; expected K stepsizes and K × {} grads",
                stepsizes.len(),
                self.d()
            )));
        }
        let (mut acc, mut readings) = (self.acc.clone(), self.readings.clone());
        for (row, (gamma, grad)) in stepsizes.iter().zip(grads.chunks_exact(d.max(1))).enumerate() {
            self.g.copy_from_slice(grad);
            finite(format_args!("grads row {row} of {k}: grad"), &self.g, &[d])?;
            step_x(self.model.param, *gamma, &self.g, &mut self.x)
                .and_then(|()| add_step(self.model.param, &mut acc, &self.x))
                .map_err(|e| value_error(format!("row {row} of {k}: {e}")))?;
            if let Some(r) = &mut readings {
                r.add(*gamma, &self.g);
            }
        }
        (self.acc, self.readings) = (acc, readings);
        self.float32_source |= low_precision;
        Ok(())
    }

    /// Adds the step in `self.g` (the library's step is transactional).
    fn step(&mut self, stepsize: f64) -> PyResult<()> {
        step_x(self.model.param, stepsize, &self.g, &mut self.x).map_err(value_error)?;
        add_step(self.model.param, &mut self.acc, &self.x).map_err(value_error)?;
        if let Some(r) = &mut self.readings {
            r.add(stepsize, &self.g);
        }
        Ok(())
    }
}

#[pymethods]
impl GainAccumulator {
    /// GainAccumulator(alpha=None, d=None, *, u0=None, v0=None, b0=None, param="uv",
    /// diagnose=False): param "uv" (b = u ⊙ v), "u2v2" (b = u² − v²) or "md" (mirror
    /// descent with ψ_α); the start is the parametrisation's default at scale alpha (a
    /// float with d, or a vector), or u0 and v0 (uv, u2v2), or alpha and b0 (md).
    /// diagnose=True also keeps the readings `dlncheck.diagnose` tests (about 28 d
    /// floats; a step costs about 5× more).
    #[new]
    #[pyo3(signature = (alpha=None, d=None, *, u0=None, v0=None, b0=None, param="uv", diagnose=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        alpha: Option<&Bound<'_, PyAny>>,
        d: Option<&Bound<'_, PyAny>>,
        u0: Option<&Bound<'_, PyAny>>,
        v0: Option<&Bound<'_, PyAny>>,
        b0: Option<&Bound<'_, PyAny>>,
        param: &str,
        diagnose: bool,
    ) -> PyResult<Self> {
        let param = Param::parse(param).map_err(value_error)?;
        let d = d.map(dimension).transpose()?;
        let init = match (alpha, u0, v0, b0) {
            (None, Some(u0), Some(v0), None) => {
                let u0 = read_array(py, u0, "u0", 1)?.data;
                accumulator_fits(u0.len() as u128)?;
                let len = d.unwrap_or(u0.len());
                Init::Weights { u0: DVector::from_vec(u0), v0: vector_of_len(py, v0, "v0", len)? }
            }
            (Some(alpha), None, None, b0) => {
                let alpha = alpha_vector(py, alpha, d)?;
                match b0 {
                    Some(b0) => Init::Mirror { b0: vector_of_len(py, b0, "b0", alpha.len())?, alpha },
                    None => Init::Alpha(alpha),
                }
            }
            (None, None, None, _) => return Err(value_error("give alpha, or u0 and v0 (or, for md, alpha and b0)")),
            (None, Some(_), None, _) | (None, None, Some(_), _) => {
                return Err(value_error("u0 and v0 go together: give both"));
            }
            (None, Some(_), Some(_), Some(_)) => {
                return Err(value_error("b0 is mirror descent's start (with alpha); u0 and v0 are a network's"));
            }
            _ => return Err(value_error("give either alpha (and, for md, b0) or u0 and v0, not both")),
        };
        let model = Model { param, init };
        let len = model.dim();
        if d.is_some_and(|d| d != len) {
            return Err(value_error(format!("the start has {len} entries but d = {}", d.unwrap_or(0))));
        }
        model.check(len).map_err(value_error)?;
        if diagnose {
            accumulator_fits(32 * len as u128)?;
        }
        Ok(Self {
            acc: trajectory::GainAccumulator::new(len),
            readings: diagnose.then(|| dlncheck::diagnose::Readings::new(&model, len)),
            model,
            g: vec![0.0; len],
            x: vec![0.0; len],
            float32_source: false,
        })
    }

    /// One step: `grad` is the gradient of the loss with respect to b (1-D, length d).
    fn add(&mut self, py: Python<'_>, stepsize: f64, grad: &Bound<'_, PyAny>) -> PyResult<()> {
        // Fast path: a float64 numpy vector, copied once (one read of each entry) into
        // the accumulator's own buffer; everything after reads the copy.
        if let Ok(arr) = grad.cast::<PyArray1<f64>>()
            && arr.len() == self.d()
        {
            // SAFETY: the GIL is held; another thread may still write the buffer (numpy
            // releases the GIL in its kernels), so it is read exactly once, by this copy.
            if let Ok(s) = unsafe { arr.as_slice() } {
                self.g.copy_from_slice(s);
                finite("grad", &self.g, &[self.g.len()])?;
                return self.step(stepsize);
            }
        }
        let g = read_array(py, grad, "grad", 1)?;
        if g.data.len() != self.d() {
            return Err(value_error(format!("grad has {} entries, expected d = {}", g.data.len(), self.d())));
        }
        self.g.copy_from_slice(&g.data);
        self.step(stepsize)?;
        self.float32_source |= g.low_precision;
        Ok(())
    }

    /// K steps at once: `stepsizes` (K), `grads` (K × d). All or nothing: a bad row
    /// raises (naming the row and column) with no step added.
    fn add_many(&mut self, py: Python<'_>, stepsizes: &Bound<'_, PyAny>, grads: &Bound<'_, PyAny>) -> PyResult<()> {
        let s = read_array(py, stepsizes, "stepsizes", 1)?.data;
        // Fast path: a C-contiguous float64 matrix, each row copied once (into the
        // accumulator's own buffer, in cache) and checked there; no K × d copy.
        if let Ok(arr) = grads.cast::<PyArray2<f64>>() {
            // SAFETY: as in `add`: the GIL is held, and each row is read exactly once.
            if let Ok(all) = unsafe { arr.as_slice() } {
                let [k, d] = [arr.shape()[0], arr.shape()[1]];
                return self.add_rows(&s, all, [k, d], false);
            }
        }
        let g = read_array(py, grads, "grads", 2)?;
        self.add_rows(&s, &g.data, [g.shape[0], g.shape[1]], g.low_precision)
    }

    #[getter]
    fn steps(&self) -> usize {
        self.acc.steps()
    }

    /// The parametrisation: "uv", "u2v2", "md" or "depth:D".
    #[getter]
    fn param(&self) -> String {
        self.model.param.name()
    }

    #[getter]
    fn gain<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        self.eff().gain.as_slice().to_vec().into_pyarray(py)
    }

    /// ρ = ln(α₊/α₋) (±inf on sign-constrained coordinates).
    #[getter]
    fn rho<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        self.eff().rho_total().as_slice().to_vec().into_pyarray(py)
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

    /// Whether the accumulator keeps the readings `dlncheck.diagnose` tests.
    #[getter]
    fn diagnose(&self) -> bool {
        self.readings.is_some()
    }

    /// Whether some gradient came as float32 (it bounds the agreement to ~1e-7).
    #[getter]
    fn float32_source(&self) -> bool {
        self.float32_source
    }

    /// Writes a file `dlncheck gain`, `predict --run`, `solve --run` and `compare
    /// --trajectory` read: alpha, gain, q_plus, q_minus, iters, and beta if given.
    #[pyo3(signature = (path, beta=None))]
    fn save(&self, py: Python<'_>, path: std::path::PathBuf, beta: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let beta = beta.map(|b| vector_of_len(py, b, "beta", self.d())).transpose()?;
        dlncheck::runfile::save_accumulated(&path, &self.model, &self.acc, beta.as_ref()).map_err(value_error)
    }

    /// GainAccumulator.from_sums(gain, rho, steps, alpha=None, d=None, *, u0, v0, b0,
    /// param): the accumulator whose sums Gain and Σ(q₋ − q₊) were accumulated elsewhere
    /// (on a device: `dlncheck.torch`, `dlncheck.jax`), for the start given as in the
    /// constructor. Both must be finite, of length d.
    #[staticmethod]
    #[pyo3(signature = (gain, rho, steps, alpha=None, d=None, *, u0=None, v0=None, b0=None, param="uv"))]
    #[allow(clippy::too_many_arguments)]
    fn from_sums(
        py: Python<'_>,
        gain: &Bound<'_, PyAny>,
        rho: &Bound<'_, PyAny>,
        steps: usize,
        alpha: Option<&Bound<'_, PyAny>>,
        d: Option<&Bound<'_, PyAny>>,
        u0: Option<&Bound<'_, PyAny>>,
        v0: Option<&Bound<'_, PyAny>>,
        b0: Option<&Bound<'_, PyAny>>,
        param: &str,
    ) -> PyResult<Self> {
        let mut acc = Self::new(py, alpha, d, u0, v0, b0, param, false)?;
        let len = acc.d();
        let (gain, rho) = (vector_of_len(py, gain, "gain", len)?, vector_of_len(py, rho, "rho", len)?);
        acc.acc = trajectory::GainAccumulator::from_sums(gain, rho, steps);
        Ok(acc)
    }

    /// GainAccumulator.load(path): the accumulator a run file (`dlncheck train`,
    /// `dlncheck.train`) or an accumulator file (`save`) holds: its model, Gain, Σ(q₋ − q₊)
    /// and step count, ready for `predict` and `diagnose` (without readings).
    #[staticmethod]
    fn load(path: std::path::PathBuf) -> PyResult<Self> {
        let l = dlncheck::runfile::load_effective(&path, None).map_err(value_error)?;
        let iters = dlncheck::npz::NpzReader::open(&path).and_then(|mut f| f.scalar("iters")).map_err(value_error)?;
        let d = l.model.dim();
        let steps = if iters >= 0.0 && iters.fract() == 0.0 { iters as usize } else { 0 };
        Ok(Self {
            acc: trajectory::GainAccumulator::from_sums(l.eff.gain.clone(), l.eff.rho.clone(), steps),
            model: l.model,
            g: vec![0.0; d],
            x: vec![0.0; d],
            float32_source: false,
            readings: None,
        })
    }

    fn __repr__(&self) -> String {
        format!("GainAccumulator(d={}, steps={}, param=\"{}\")", self.d(), self.acc.steps(), self.model.param.name())
    }
}

/// X (n × d) and y (n) checked as the command line checks a problem file.
fn problem(py: Python<'_>, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<Problem> {
    let xa = read_array(py, x, "X", 2)?;
    let (n, d) = (xa.shape[0], xa.shape[1]);
    let x = DMatrix::from_row_slice(n, d, &xa.data);
    let y = vector_of_len(py, y, "y", n)
        .map_err(|_| value_error(format!("y must be a vector with one label per row of X ({n}×{d})")))?;
    let p = Problem { x, y, beta_star: None, x_test: None, y_test: None };
    p.check_overparametrised(std::path::Path::new("X")).map_err(value_error)?;
    Ok(p)
}

/// A solver's failure, blamed on X (ValueError) when X is rank-deficient: as on the
/// command line, the rank is checked only when a method missed its tolerance.
fn solver_failed(p: &Problem) -> impl FnOnce(SolveError) -> PyErr + '_ {
    move |e| match (e.exit_code(), p.check_interpolation(std::path::Path::new("X"))) {
        (5, Err(bad)) => value_error(bad),
        _ => solve_error(e),
    }
}

fn to_array<'py>(py: Python<'py>, v: &DVector<f64>) -> Bound<'py, numpy::PyArray1<f64>> {
    v.as_slice().to_vec().into_pyarray(py)
}

/// What `predict` and `diagnose` read besides X and y: the final iterate, the final
/// weights (w₊, w₋) from u, v, and the precision floors they and the gradients set.
/// And the tolerance a verdict uses at the asked-for `tol`, with its reason.
struct Evidence {
    problem: Problem,
    beta: Option<DVector<f64>>,
    weights: Option<(DVector<f64>, DVector<f64>)>,
    tol: f64,
    tol_reason: Option<String>,
}

#[allow(clippy::too_many_arguments)]
fn evidence(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    acc: &GainAccumulator,
    beta: Option<&Bound<'_, PyAny>>,
    u: Option<&Bound<'_, PyAny>>,
    v: Option<&Bound<'_, PyAny>>,
    tol: f64,
) -> PyResult<Evidence> {
    if !(tol.is_finite() && tol > 0.0) {
        return Err(value_error(format!("tol is {tol}; it must be finite and > 0")));
    }
    let problem = problem(py, x, y)?;
    let d = problem.d();
    if acc.d() != d {
        return Err(value_error(format!("the accumulator has d = {}, X has d = {d}", acc.d())));
    }
    let (beta, beta32) = match beta {
        Some(b) => {
            let b = read_array(py, b, "beta", 1)?;
            if b.data.len() != d {
                return Err(value_error(format!("beta has {} entries, expected d = {d}", b.data.len())));
            }
            (Some(DVector::from_vec(b.data)), b.low_precision)
        }
        None => (None, false),
    };
    let eff = acc.eff();
    let mut floors = Vec::new();
    if acc.float32_source || beta32 {
        let max_gain = eff.gain.iter().fold(0.0, |m: f64, g| m.max(g.abs()));
        floors.push(prediction::Precision::float32(acc.acc.steps(), max_gain));
    }
    let weights = match (u, v) {
        (Some(u), Some(v)) => {
            let (u, v) = (read_array(py, u, "u", 1)?, read_array(py, v, "v", 1)?);
            if u.data.len() != d || v.data.len() != d {
                return Err(value_error(format!("u and v must have d = {d} entries each")));
            }
            let low = acc.float32_source || beta32 || u.low_precision || v.low_precision;
            let (u, v) = (DVector::from_vec(u.data), DVector::from_vec(v.data));
            let (wp, wm) = acc.model.w_from(&u, &v).ok_or_else(|| value_error("mirror descent has no u, v"))?;
            let unit = if low { prediction::F32_UNIT_ROUNDOFF } else { f64::EPSILON / 2.0 };
            if let Some((i, b, from_w)) =
                beta.as_ref().and_then(|b| dlncheck::runfile::weights_mismatch(acc.model.param, &wp, &wm, b, unit))
            {
                return Err(value_error(format!(
                    "beta[{i}] is {b:e} but the final u, v give {from_w:e}: beta and u, v must come from the same step"
                )));
            }
            floors.extend(prediction::Precision::conservation(&eff, &wp, &wm, acc.acc.steps(), unit));
            Some((wp, wm))
        }
        (None, None) => None,
        _ => return Err(value_error("u and v go together: give both or neither")),
    };
    let (tol, tol_reason) = prediction::tol_used(tol, &floors);
    Ok(Evidence { problem, beta, weights, tol, tol_reason })
}

/// predict(X, y, acc, beta=None, tol=1e-8, u=None, v=None) → dict: the command line's
/// `predict`. The verdict's tolerance is never below what the loop's arithmetic allows
/// (`tol_used`, `tol_reason`): float32 gradients or a float32 `beta`, and the
/// conservation law's defect on the final weights `u`, `v` when given. `message` is
/// the command line's verdict sentence.
#[pyfunction]
#[pyo3(signature = (x, y, acc, beta=None, tol=1e-8, u=None, v=None))]
#[allow(clippy::too_many_arguments)]
fn predict<'py>(
    py: Python<'py>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    acc: &GainAccumulator,
    beta: Option<&Bound<'_, PyAny>>,
    tol: f64,
    u: Option<&Bound<'_, PyAny>>,
    v: Option<&Bound<'_, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let ev = evidence(py, x, y, acc, beta, u, v, tol)?;
    let (p, tol) = (&ev.problem, ev.tol);
    if let Some(flow) = py.detach(|| prediction::depth_prediction(&p.x, &p.y, &acc.model, ev.beta.as_ref())) {
        // Depth D: gradient flow's limit and the distance to it, no verdict.
        let c = flow.map_err(solver_failed(p))?;
        let out = PyDict::new(py);
        out.set_item("beta_flow", to_array(py, &c.flow_limit))?;
        out.set_item("dist_flow", c.dist_flow)?;
        out.set_item("kkt_flow", c.kkt_flow)?;
        out.set_item("kkt_residual", c.kkt_run)?;
        out.set_item("primal_residual", c.primal_residual)?;
        out.set_item("newton_iters", c.newton_iters)?;
        out.set_item("verdict", None::<&str>)?;
        out.set_item("message", c.message())?;
        return Ok(out);
    }
    let eff = acc.eff();
    let pred = py
        .detach(|| prediction::predict(&p.x, &p.y, &eff, ev.beta.as_ref(), &NewtonSettings::default()))
        .map_err(solver_failed(p))?;
    let out = PyDict::new(py);
    out.set_item("beta_theory", to_array(py, &pred.theory.beta))?;
    out.set_item("beta_gradient_flow", to_array(py, &pred.gradient_flow.beta))?;
    out.set_item("newton_iters", pred.theory.newton_iters)?;
    let c = pred.checks;
    out.set_item("rel_err", c.map(|c| c.rel_err))?;
    out.set_item("kkt_residual", c.and_then(|c| c.kkt_residual))?;
    out.set_item("primal_residual", c.map(|c| c.primal_residual))?;
    out.set_item("residual_error", c.map(|c| c.residual_error))?;
    let decision = prediction::decide(c.as_ref(), tol, prediction::Source::Python);
    let verdict = decision.verdict.map(|v| match v {
        Verdict::Agrees => "agrees",
        Verdict::Disagrees => "disagrees",
        Verdict::NotConverged => "not_converged",
    });
    out.set_item("verdict", verdict)?;
    out.set_item("message", decision.message)?;
    out.set_item("float32_source", acc.float32_source)?;
    out.set_item("tol_used", tol)?;
    out.set_item("tol_reason", ev.tol_reason)?;
    Ok(out)
}

/// diagnose(X, y, acc, beta, u=None, v=None, tol=1e-8) → dict: the command line's
/// `diagnose` (best, tried, tol_used, tol_reason): which mistake in the loop makes the
/// run agree. An accumulator made with diagnose=True lets it try every hypothesis;
/// otherwise only those about the start and the parametrisation. The final u, v add the
/// start recovered by the conservation law.
#[pyfunction]
#[pyo3(signature = (x, y, acc, beta, u=None, v=None, tol=1e-8))]
#[allow(clippy::too_many_arguments)]
fn diagnose<'py>(
    py: Python<'py>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    acc: &GainAccumulator,
    beta: &Bound<'_, PyAny>,
    u: Option<&Bound<'_, PyAny>>,
    v: Option<&Bound<'_, PyAny>>,
    tol: f64,
) -> PyResult<Bound<'py, PyAny>> {
    if let Some(d) = acc.model.param.depth() {
        return Err(value_error(format!(
            "depth:{d} has no gain and no exact theory to diagnose against: predict() reports gradient flow's limit"
        )));
    }
    let ev = evidence(py, x, y, acc, Some(beta), u, v, tol)?;
    let beta = ev.beta.as_ref().ok_or_else(|| value_error("beta is required"))?;
    let logged = dlncheck::diagnose::Logged {
        model: &acc.model,
        acc: &acc.acc,
        readings: acc.readings.as_ref(),
        beta,
        weights: ev.weights.as_ref().map(|(wp, wm)| (wp, wm)),
    };
    let dx = py.detach(|| dlncheck::diagnose::diagnose(&ev.problem, &logged, ev.tol));
    let out = PyDict::new(py);
    out.set_item("best", pythonize::pythonize(py, &dx.best).map_err(value_error)?)?;
    out.set_item("tried", pythonize::pythonize(py, &dx.tried).map_err(value_error)?)?;
    out.set_item("explained", dx.explained)?;
    out.set_item("tol_used", ev.tol)?;
    out.set_item("tol_reason", &ev.tol_reason)?;
    Ok(out.into_any())
}

/// command(argv) → (exit, json, text): one command line, run in this process (the
/// binary's code: [`dlncheck::cli::execute`]) with the GIL released. `json` is the
/// command's JSON object as text (`None` for help and errors), `text` what it prints
/// (the error message for exit ≥ 2 before it ran).
#[pyfunction]
fn command(py: Python<'_>, argv: Vec<String>) -> (u8, Option<String>, String) {
    use dlncheck::cli::{Invocation, execute};
    match py.detach(|| execute(argv)) {
        Invocation::Done { outcome, .. } => (outcome.exit, Some(outcome.json.to_string()), outcome.text),
        Invocation::Help(text) => (0, None, text),
        Invocation::Failed { message, exit } => (exit, None, message),
    }
}

/// The grid of `dlncheck sweep` flags (checked as the command checks it).
fn grid(argv: Vec<String>) -> PyResult<dlncheck::sweep::Grid> {
    let grid = dlncheck::cli::grid_from_args(argv).map_err(value_error)?;
    grid.check().map_err(value_error)?;
    Ok(grid)
}

/// A cell: (index, mean, alpha, batch, seed, step) — `step` a fraction of the threshold
/// or a stepsize, as the grid says.
type CellTuple = (usize, f64, f64, Option<usize>, u64, f64);

/// sweep_plan(argv) → (fingerprint, cells): the grid of these `dlncheck sweep` flags.
#[pyfunction]
fn sweep_plan(argv: Vec<String>) -> PyResult<(String, Vec<CellTuple>)> {
    let grid = grid(argv)?;
    let cells = grid.cells().iter().map(|c| (c.index, c.mean, c.alpha, c.batch, c.seed, c.step)).collect();
    Ok((grid.fingerprint(), cells))
}

/// sweep_cell(argv, index) → the JSON line `dlncheck sweep` writes for that cell.
#[pyfunction]
fn sweep_cell(py: Python<'_>, argv: Vec<String>, index: usize) -> PyResult<String> {
    let grid = grid(argv)?;
    let fingerprint = grid.fingerprint();
    let count = grid.cell_count();
    let cell = grid
        .cells()
        .into_iter()
        .find(|c| c.index == index)
        .ok_or_else(|| value_error(format!("cell {index} is not in the grid (it has {count} cells)")))?;
    let result = py
        .detach(|| dlncheck::sweep::run_cell(&grid, &fingerprint, &cell))
        .map_err(|e| PyErr::new::<NumericalError, _>(format!("cell {index}: {e}")))?;
    serde_json::to_string(&result).map_err(value_error)
}

/// solve_implicit(X, y, acc) → dict: argmin D_{ψ_{α_∞}}(b, b̃₀) subject to Xb = y.
#[pyfunction]
fn solve_implicit<'py>(
    py: Python<'py>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    acc: &GainAccumulator,
) -> PyResult<Bound<'py, PyDict>> {
    let p = problem(py, x, y)?;
    let eff = acc.eff();
    let sol = py
        .detach(|| solve::solve_implicit(&p.x, &p.y, &eff.scales(), &NewtonSettings::default()))
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
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    weights: Option<&Bound<'_, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let p = problem(py, x, y)?;
    let w =
        weights.map_or_else(|| Ok(DVector::from_element(p.d(), 1.0)), |w| vector_of_len(py, w, "weights", p.d()))?;
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
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let p = problem(py, x, y)?;
    let b = solve::min_norm(&p.x, &p.y).map_err(solver_failed(&p))?;
    Ok(to_array(py, &b))
}

#[pymodule]
fn _dlncheck(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<GainAccumulator>()?;
    m.add_function(wrap_pyfunction!(predict, m)?)?;
    m.add_function(wrap_pyfunction!(diagnose, m)?)?;
    m.add_function(wrap_pyfunction!(command, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_plan, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_cell, m)?)?;
    m.add_function(wrap_pyfunction!(solve_implicit, m)?)?;
    m.add_function(wrap_pyfunction!(basis_pursuit, m)?)?;
    m.add_function(wrap_pyfunction!(min_l2, m)?)?;
    m.add("NumericalError", m.py().get_type::<NumericalError>())?;
    Ok(())
}
