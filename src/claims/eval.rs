//! Types and evaluation of claim expressions. Every expression is type-checked when its
//! file loads (unknown names, fields, functions and wrong argument types are errors with
//! a position), then evaluated once per seed against a [`Scope`].

use nalgebra::{DMatrix, DVector};

use crate::expr::{BinOp, Expr, Kind, Span};

/// Static type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Num,
    Vec,
    /// A set of coordinates (`support`), used to index vectors.
    Mask,
    Mat,
    /// A named run: only its fields (`run.beta`) are values.
    Run,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Num(f64),
    Vec(DVector<f64>),
    Mask(Vec<bool>),
    Mat(DMatrix<f64>),
}

/// An error at a span of the expression's text. `shape` marks an expression that is
/// wrong for the values it met (vectors of different lengths, a solver argument that is
/// not a d-vector): a defect of the claim file, not of the measurement.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub span: Span,
    pub message: String,
    pub shape: bool,
}

/// What names mean when an expression is checked.
pub trait Names {
    /// The type of a bare name, or `None` if unknown.
    fn name_ty(&self, name: &str) -> Option<Ty>;
    /// Every name, for "expected one of" messages.
    fn known_names(&self) -> Vec<String>;
}

/// What names mean when an expression is evaluated (one seed).
pub trait Scope {
    fn name(&self, name: &str) -> Result<Value, String>;
    fn field(&self, run: &str, field: &str) -> Result<Value, String>;
    /// The problem-dependent functions ([`SOLVER_FUNCTIONS`]), called with vectors of
    /// length [`Self::dim`] only.
    fn solve(&self, function: &str, args: &[Value]) -> Result<Value, String>;
    /// The problem's number of coordinates d (`None` where no problem is in scope).
    fn dim(&self) -> Option<usize>;
}

/// Fields of a run and their types.
pub const RUN_FIELDS: [(&str, Ty); 27] = [
    ("balance_gain", Ty::Vec),
    ("flow", Ty::Vec),
    ("flow_kkt", Ty::Num),
    ("beta", Ty::Vec),
    ("theory", Ty::Vec),
    ("gain", Ty::Vec),
    ("first_order_gain", Ty::Vec),
    ("rho", Ty::Vec),
    ("alpha", Ty::Vec),
    ("alpha_inf", Ty::Vec),
    ("ln_alpha_inf2", Ty::Vec),
    ("beta_tilde0", Ty::Vec),
    ("u", Ty::Vec),
    ("v", Ty::Vec),
    ("loss", Ty::Num),
    ("iters", Ty::Num),
    ("converged", Ty::Num),
    ("diverged", Ty::Num),
    ("loss_climb", Ty::Num),
    ("gain_l1", Ty::Num),
    ("max_gamma_g", Ty::Num),
    ("stepsize", Ty::Num),
    ("threshold", Ty::Num),
    ("divergence", Ty::Num),
    ("bound", Ty::Num),
    ("kkt", Ty::Num),
    ("conservation", Ty::Num),
];

/// Functions that need the problem: `implicit(ell, rho)` = argmin_{Xb=y} D_ψ(b, b̃_0) with
/// ln α_∞² = ell; `kkt(b, ell, rho)`; `weighted_bp(w)`; `bp()`; `min_l2()`;
/// `gram(w)` = X diag(w) Xᵀ / n; `test_loss(b)` = ½ mean (X_test b − y_test)².
pub const SOLVER_FUNCTIONS: [(&str, &[Ty], Ty); 7] = [
    ("implicit", &[Ty::Vec, Ty::Vec], Ty::Vec),
    ("kkt", &[Ty::Vec, Ty::Vec, Ty::Vec], Ty::Num),
    ("weighted_bp", &[Ty::Vec], Ty::Vec),
    ("bp", &[], Ty::Vec),
    ("min_l2", &[], Ty::Vec),
    ("gram", &[Ty::Vec], Ty::Mat),
    ("test_loss", &[Ty::Vec], Ty::Num),
];

const ELEMENTWISE: [&str; 8] = ["abs", "sqrt", "ln", "exp", "sinh", "cosh", "tanh", "asinh"];
const REDUCTIONS: [&str; 7] = ["norm", "norm1", "norm_inf", "sum", "mean", "max", "min"];
const PAIRS: [&str; 3] = ["rel_err", "corr", "dot"];
/// `order(v1, g1, v2, g2, …)`: the least-squares slope of ln v against ln g;
/// `order_residual(…)`: the largest |residual| of that fit, in ln units.
const ORDER_FUNCTIONS: [&str; 2] = ["order", "order_residual"];

fn err<T>(span: Span, message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError { span, message: message.into(), shape: false })
}

fn shape_err<T>(span: Span, message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError { span, message: message.into(), shape: true })
}

/// Type-checks an expression.
pub fn check(e: &Expr, names: &dyn Names) -> Result<Ty, EvalError> {
    match &e.kind {
        Kind::Num(_) => Ok(Ty::Num),
        Kind::Name(n) => names
            .name_ty(n)
            .map_or_else(|| err(e.span, format!("unknown name `{n}`; known: {}", names.known_names().join(", "))), Ok),
        Kind::Field(base, field) => {
            if check(base, names)? != Ty::Run {
                return err(base.span, "only a run has fields (`run.beta`)");
            }
            RUN_FIELDS.iter().find(|(f, _)| f == field).map(|(_, t)| *t).map_or_else(
                || {
                    let known: Vec<&str> = RUN_FIELDS.iter().map(|(f, _)| *f).collect();
                    err(e.span, format!("unknown run field `{field}`; known: {}", known.join(", ")))
                },
                Ok,
            )
        }
        Kind::Index(v, m) => match (check(v, names)?, check(m, names)?) {
            (Ty::Vec, Ty::Mask) => Ok(Ty::Vec),
            (Ty::Vec, t) => err(m.span, format!("an index must be a coordinate set (`support`), not {t:?}")),
            (t, _) => err(v.span, format!("only a vector can be indexed, not {t:?}")),
        },
        Kind::Neg(inner) => match check(inner, names)? {
            t @ (Ty::Num | Ty::Vec) => Ok(t),
            t => err(inner.span, format!("cannot negate {t:?}")),
        },
        Kind::Bin(op, a, b) => match (check(a, names)?, check(b, names)?) {
            (Ty::Num, Ty::Num) => Ok(Ty::Num),
            (Ty::Vec, Ty::Num) => Ok(Ty::Vec),
            (Ty::Num | Ty::Vec, Ty::Vec) if *op != BinOp::Pow => Ok(Ty::Vec),
            (ta, tb) => err(e.span, format!("no {op:?} between {ta:?} and {tb:?}")),
        },
        Kind::Call(f, args) => {
            let tys = args.iter().map(|a| check(a, names)).collect::<Result<Vec<_>, _>>()?;
            signature(f, &tys).map_err(|m| EvalError { span: e.span, message: m, shape: false })
        }
    }
}

fn signature(f: &str, args: &[Ty]) -> Result<Ty, String> {
    let want = |expected: &[Ty], out: Ty| {
        if args == expected { Ok(out) } else { Err(format!("{f} takes {expected:?}, got {args:?}")) }
    };
    if ELEMENTWISE.contains(&f) {
        return match args {
            [t @ (Ty::Num | Ty::Vec)] => Ok(*t),
            _ => Err(format!("{f} takes one number or vector, got {args:?}")),
        };
    }
    if REDUCTIONS.contains(&f) {
        return want(&[Ty::Vec], Ty::Num);
    }
    if PAIRS.contains(&f) {
        return want(&[Ty::Vec, Ty::Vec], Ty::Num);
    }
    if ORDER_FUNCTIONS.contains(&f) {
        return if args.len() >= 6 && args.len().is_multiple_of(2) && args.iter().all(|t| *t == Ty::Num) {
            Ok(Ty::Num)
        } else {
            Err(format!(
                "{f} takes pairs of numbers (value, stepsize), at least 3 pairs: {f}(dist1, g1.stepsize, dist2, \
                 g2.stepsize, dist3, g3.stepsize); got {args:?}"
            ))
        };
    }
    match f {
        "diag" => want(&[Ty::Mat], Ty::Vec),
        "lambda_max" => want(&[Ty::Mat], Ty::Num),
        "count" => want(&[Ty::Mask], Ty::Num),
        _ => match SOLVER_FUNCTIONS.iter().find(|(name, _, _)| *name == f) {
            Some((_, expected, out)) => want(expected, *out),
            None => Err(format!("unknown function `{f}`")),
        },
    }
}

/// Evaluates a checked expression.
pub fn eval(e: &Expr, scope: &dyn Scope) -> Result<Value, EvalError> {
    let at = |m: String| EvalError { span: e.span, message: m, shape: false };
    match &e.kind {
        Kind::Num(x) => Ok(Value::Num(*x)),
        Kind::Name(n) => scope.name(n).map_err(at),
        Kind::Field(base, field) => {
            let Kind::Name(run) = &base.kind else { return err(base.span, "a field needs a run name") };
            scope.field(run, field).map_err(at)
        }
        Kind::Index(v, m) => match (eval(v, scope)?, eval(m, scope)?) {
            (Value::Vec(v), Value::Mask(m)) if v.len() == m.len() => Ok(Value::Vec(DVector::from_iterator(
                m.iter().filter(|b| **b).count(),
                v.iter().zip(&m).filter(|(_, b)| **b).map(|(x, _)| *x),
            ))),
            (Value::Vec(v), Value::Mask(m)) => {
                shape_err(e.span, format!("vector of length {} indexed by a set over {}", v.len(), m.len()))
            }
            _ => err(e.span, "bad index"),
        },
        Kind::Neg(inner) => map(eval(inner, scope)?, |x| -x).map_err(at),
        Kind::Bin(op, a, b) => {
            binary(*op, eval(a, scope)?, eval(b, scope)?).map_err(|m| EvalError { shape: true, ..at(m) })
        }
        Kind::Call(f, args) => {
            let vals = args.iter().map(|a| eval(a, scope)).collect::<Result<Vec<_>, _>>()?;
            call(f, vals, scope).map_err(|m| match m {
                CallError::Shape(m) => EvalError { shape: true, ..at(m) },
                CallError::Value(m) => at(m),
            })
        }
    }
}

/// Why a call failed: its arguments' shapes, or the computation.
enum CallError {
    Shape(String),
    Value(String),
}

impl From<String> for CallError {
    fn from(m: String) -> Self {
        Self::Value(m)
    }
}

fn map(v: Value, f: impl Fn(f64) -> f64) -> Result<Value, String> {
    match v {
        Value::Num(x) => Ok(Value::Num(f(x))),
        Value::Vec(v) => Ok(Value::Vec(v.map(f))),
        _ => Err("expected a number or a vector".into()),
    }
}

fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, String> {
    let f = |x: f64, y: f64| op.apply(x, y);
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => Ok(Value::Num(f(x, y))),
        (Value::Vec(v), Value::Num(y)) => Ok(Value::Vec(v.map(|x| f(x, y)))),
        (Value::Num(x), Value::Vec(v)) => Ok(Value::Vec(v.map(|y| f(x, y)))),
        (Value::Vec(v), Value::Vec(w)) if v.len() == w.len() => Ok(Value::Vec(v.zip_map(&w, f))),
        (Value::Vec(v), Value::Vec(w)) => Err(format!("vectors of lengths {} and {} in {op:?}", v.len(), w.len())),
        _ => Err(format!("bad operands for {op:?}")),
    }
}

fn call(f: &str, args: Vec<Value>, scope: &dyn Scope) -> Result<Value, CallError> {
    let unary = |g: fn(f64) -> f64| match args.as_slice() {
        [v] => map(v.clone(), g).map_err(CallError::Shape),
        _ => Err(CallError::Shape(format!("{f} takes one argument, got {}", args.len()))),
    };
    match (f, &args[..]) {
        ("abs", _) => unary(f64::abs),
        ("sqrt", _) => unary(f64::sqrt),
        ("ln", _) => unary(f64::ln),
        ("exp", _) => unary(f64::exp),
        ("sinh", _) => unary(f64::sinh),
        ("cosh", _) => unary(f64::cosh),
        ("tanh", _) => unary(f64::tanh),
        ("asinh", _) => unary(f64::asinh),
        (_, [Value::Vec(v)]) if REDUCTIONS.contains(&f) => Ok(Value::Num(reduce(f, v)?)),
        ("rel_err", [Value::Vec(a), Value::Vec(b)]) => {
            same_len(a, b).map(|_| Value::Num(crate::predict::rel_dist(a, b)))
        }
        ("dot", [Value::Vec(a), Value::Vec(b)]) => same_len(a, b).map(|_| Value::Num(a.dot(b))),
        ("corr", [Value::Vec(a), Value::Vec(b)]) => {
            same_len(a, b)?;
            Ok(Value::Num(pearson(a, b)?))
        }
        ("diag", [Value::Mat(m)]) => square(m).map(|_| Value::Vec(m.diagonal())),
        ("lambda_max", [Value::Mat(m)]) => {
            square(m)?;
            Ok(Value::Num(lambda_max(m)?))
        }
        ("count", [Value::Mask(m)]) => Ok(Value::Num(m.iter().filter(|b| **b).count() as f64)),
        _ if ORDER_FUNCTIONS.contains(&f) => {
            let (slope, residual) = log_log_fit(&args)?;
            Ok(Value::Num(if f == "order" { slope } else { residual }))
        }
        _ if SOLVER_FUNCTIONS.iter().any(|(name, _, _)| *name == f) => {
            solver_args(f, &args, scope.dim())?;
            Ok(scope.solve(f, &args)?)
        }
        _ => Err(CallError::Shape(format!("unknown function `{f}` or arguments of the wrong type"))),
    }
}

/// The least-squares line ln v = c + slope·ln g through the pairs (v, g) of `args`, and
/// the largest |residual| of the fit. Every v and g must be a finite number > 0, and the
/// stepsizes must not all be equal.
pub fn log_log_fit(args: &[Value]) -> Result<(f64, f64), String> {
    let mut points = Vec::with_capacity(args.len() / 2);
    for (k, pair) in args.chunks_exact(2).enumerate() {
        match pair {
            [Value::Num(v), Value::Num(g)] if v.is_finite() && *v > 0.0 && g.is_finite() && *g > 0.0 => {
                points.push((g.ln(), v.ln()))
            }
            [Value::Num(v), Value::Num(g)] => {
                return Err(format!(
                    "order: pair {} is (value {v:e}, stepsize {g:e}); both must be finite and > 0 (a log-log fit)",
                    k + 1
                ));
            }
            _ => return Err("order takes numbers".into()),
        }
    }
    let m = points.len() as f64;
    let (gx, gy) = (points.iter().map(|p| p.0).sum::<f64>() / m, points.iter().map(|p| p.1).sum::<f64>() / m);
    let sxx: f64 = points.iter().map(|p| (p.0 - gx).powi(2)).sum();
    if !(sxx > 0.0) {
        return Err("order: the stepsizes are all equal, so no slope can be fitted".into());
    }
    let slope = points.iter().map(|p| (p.0 - gx) * (p.1 - gy)).sum::<f64>() / sxx;
    let residual = points.iter().map(|p| (p.1 - gy - slope * (p.0 - gx)).abs()).fold(0.0, f64::max);
    if !(slope.is_finite() && residual.is_finite()) {
        return Err("order: the fit is not finite (the stepsizes are too close together)".into());
    }
    Ok((slope, residual))
}

/// A solver function's arguments: each vector of the problem's length d.
fn solver_args(f: &str, args: &[Value], d: Option<usize>) -> Result<(), CallError> {
    let Some(d) = d else { return Err(CallError::Shape(format!("{f} needs a problem"))) };
    match args.iter().enumerate().find_map(|(i, a)| match a {
        Value::Vec(v) if v.len() != d => Some((i, v.len())),
        _ => None,
    }) {
        Some((i, len)) => Err(CallError::Shape(format!(
            "{f}: argument {} has length {len}; it must be a vector over the problem's d = {d} coordinates",
            i + 1
        ))),
        None => Ok(()),
    }
}

fn square(m: &DMatrix<f64>) -> Result<(), CallError> {
    if m.is_square() && !m.is_empty() {
        Ok(())
    } else {
        Err(CallError::Shape(format!("needs a non-empty square matrix, got {}×{}", m.nrows(), m.ncols())))
    }
}

fn same_len(a: &DVector<f64>, b: &DVector<f64>) -> Result<(), CallError> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(CallError::Shape(format!("vectors of lengths {} and {}", a.len(), b.len())))
    }
}

fn reduce(f: &str, v: &DVector<f64>) -> Result<f64, String> {
    if v.is_empty() && f != "norm" && f != "norm1" && f != "sum" {
        return Err(format!("{f} of an empty vector"));
    }
    Ok(match f {
        "norm" => crate::numeric::norm(v),
        "norm1" => v.lp_norm(1),
        "norm_inf" => v.amax(),
        "sum" => v.sum(),
        "mean" => v.mean(),
        "max" => v.max(),
        _ => v.min(),
    })
}

/// The largest eigenvalue of a symmetric matrix (`H`, `gram(w)`); an error for a
/// matrix that is not symmetric to 1e-12 of its largest entry, or not finite.
pub fn lambda_max(m: &DMatrix<f64>) -> Result<f64, String> {
    let scale = m.amax();
    if !scale.is_finite() || !m.is_square() {
        return Err(format!("lambda_max needs a finite square matrix ({}×{})", m.nrows(), m.ncols()));
    }
    if (m - m.transpose()).amax() > 1e-12 * scale {
        return Err("lambda_max needs a symmetric matrix".into());
    }
    Ok(m.clone().symmetric_eigenvalues().max())
}

/// Pearson correlation; an error when it is undefined (fewer than 2 entries, or a
/// vector constant up to rounding: spread ≤ 1e-12 of its magnitude).
pub fn pearson(a: &DVector<f64>, b: &DVector<f64>) -> Result<f64, String> {
    let centred = |v: &DVector<f64>, which: &str| {
        let m = v.mean();
        let c = v.map(|x| x - m);
        let flat = !(crate::numeric::norm(&c) > 1e-12 * crate::numeric::norm(v)) || v.len() < 2;
        if flat { Err(format!("corr is undefined: its {which} vector is constant")) } else { Ok(c) }
    };
    let (ca, cb) = (centred(a, "first")?, centred(b, "second")?);
    let (na, nb) = (crate::numeric::norm(&ca), crate::numeric::norm(&cb));
    Ok((&ca / na).dot(&(&cb / nb)))
}
