//! The implicit problem for any separable, strictly convex potential given as a formula
//! φ(b, a) (a: the per-coordinate scale α): argmin_{Xb=y} D_φ(b, 0), on its dual.
//!
//! With z = φ'(0) + Xᵀμ, b_i = (φ')⁻¹(z_i) coordinatewise (safeguarded Newton), and μ
//! minimises F(μ) = Σ_i [z_i b_i − φ(b_i)] − ⟨μ, y⟩: gradient X b − y, Hessian
//! X diag(1/φ''(b)) Xᵀ (Cholesky). φ' and φ'' are derived symbolically from the formula.

use nalgebra::{DMatrix, DVector};

use super::damped::{DualPoint, damped_newton};
use super::{NewtonSettings, SolveError};
use crate::expr::BinOp;
use crate::symbolic::{Builder, FormulaError, Func, Sym, derivative};

/// Formulas compiled to one stack program over the variables (b, a), each leaving its
/// value on the stack; a subexpression that occurs again (within or across formulas) is
/// computed once and reloaded from a slot.
#[derive(Debug, Clone)]
struct Program {
    ops: Vec<Op>,
    slots: usize,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Num(f64),
    B,
    A,
    Neg,
    Bin(BinOp),
    /// x^k for a small integer constant k (powi, far cheaper than powf).
    PowI(i32),
    Call(Func),
    /// Copy the top of the stack into a slot.
    Store(usize),
    Load(usize),
}

/// Reused evaluation buffers.
#[derive(Debug, Default)]
struct Scratch {
    stack: Vec<f64>,
    slots: Vec<f64>,
}

impl Program {
    fn compile(formulas: &[&Sym]) -> Self {
        let mut p = Self { ops: Vec::new(), slots: 0 };
        let mut seen = std::collections::HashMap::new();
        for f in formulas {
            p.emit(f, &mut seen);
        }
        p
    }

    fn emit(&mut self, s: &Sym, seen: &mut std::collections::HashMap<String, usize>) {
        let key = s.to_string();
        if let Some(&slot) = seen.get(&key) {
            self.ops.push(Op::Load(slot));
            return;
        }
        match s {
            Sym::Num(x) => return self.ops.push(Op::Num(*x)),
            Sym::Var(v) => return self.ops.push(if v == "b" { Op::B } else { Op::A }),
            Sym::Neg(a) => {
                self.emit(a, seen);
                self.ops.push(Op::Neg);
            }
            Sym::Call(f, a) => {
                self.emit(a, seen);
                self.ops.push(Op::Call(*f));
            }
            Sym::Bin(BinOp::Pow, a, b) if matches!(**b, Sym::Num(k) if k.fract() == 0.0 && k.abs() <= 64.0) => {
                self.emit(a, seen);
                let Sym::Num(k) = **b else { unreachable!("matched above") };
                self.ops.push(Op::PowI(k as i32));
            }
            Sym::Bin(op, a, b) => {
                self.emit(a, seen);
                self.emit(b, seen);
                self.ops.push(Op::Bin(*op));
            }
        }
        seen.insert(key, self.slots);
        self.ops.push(Op::Store(self.slots));
        self.slots += 1;
    }

    /// Runs the program at (b, a); the formulas' values are `scratch.stack` in order.
    fn run(&self, b: f64, a: f64, scratch: &mut Scratch) {
        let Scratch { stack, slots } = scratch;
        stack.clear();
        slots.resize(self.slots, 0.0);
        for op in &self.ops {
            let v = match *op {
                Op::Num(x) => x,
                Op::B => b,
                Op::A => a,
                Op::Load(i) => slots[i],
                Op::Store(i) => {
                    slots[i] = stack.last().copied().unwrap_or(f64::NAN);
                    continue;
                }
                Op::Neg => -stack.pop().unwrap_or(f64::NAN),
                Op::Call(f) => f.apply(stack.pop().unwrap_or(f64::NAN)),
                Op::PowI(k) => stack.pop().unwrap_or(f64::NAN).powi(k),
                Op::Bin(op) => {
                    let (y, x) = (stack.pop().unwrap_or(f64::NAN), stack.pop().unwrap_or(f64::NAN));
                    op.apply(x, y)
                }
            };
            stack.push(v);
        }
    }
}

/// A separable potential φ(b, a) with its derived φ' and φ''.
#[derive(Debug, Clone)]
pub struct Potential {
    pub phi: Sym,
    pub dphi: Sym,
    pub d2phi: Sym,
    phi_program: Program,
    /// φ' and φ'' together (they share most subexpressions).
    slope_program: Program,
}

impl Potential {
    /// Parses φ in the variables `b` and `a` and derives φ' and φ'' in b.
    pub fn parse(formula: &str) -> Result<Self, FormulaError> {
        let variables = ["b".to_string(), "a".to_string()];
        let phi = Builder { variables: &variables, defines: &Default::default() }.parse(formula)?;
        if !phi.mentions("b") {
            return Err(FormulaError { span: (0, formula.len()), message: "the potential must depend on b".into() });
        }
        let whole = |message| FormulaError { span: (0, formula.len()), message };
        let dphi = derivative(&phi, "b").map_err(whole)?;
        let d2phi = derivative(&dphi, "b").map_err(whole)?;
        let (phi_program, slope_program) = (Program::compile(&[&phi]), Program::compile(&[&dphi, &d2phi]));
        Ok(Self { phi, dphi, d2phi, phi_program, slope_program })
    }

    /// Refuses a potential that is not strictly convex (φ'' ≤ 0 or not finite) at
    /// b = 0, ±R·10^-k (k = 0..12) for each scale in `scales`.
    pub fn check_convex(&self, scales: &[f64], radius: f64) -> Result<(), SolveError> {
        let mut scratch = Scratch::default();
        let bs = std::iter::once(0.0).chain((0..=12).flat_map(|k| {
            let r = radius * 10f64.powi(-k);
            [r, -r]
        }));
        for b in bs {
            for &a in scales {
                let h = self.slopes(b, a, &mut scratch).1;
                if !(h.is_finite() && h > 0.0) {
                    return Err(SolveError::Potential(format!(
                        "φ = {} is not strictly convex: φ''(b = {b:e}, a = {a:e}) = {h:e}",
                        self.phi
                    )));
                }
            }
        }
        Ok(())
    }

    /// D_φ(b, 0) = Σ_i φ(b_i) − φ(0) − φ'(0)·b_i.
    pub fn divergence_from_zero(&self, b: &DVector<f64>, alpha: &DVector<f64>) -> f64 {
        let mut s = Scratch::default();
        (0..b.len())
            .map(|i| {
                let a = alpha[i];
                self.phi(b[i], a, &mut s) - self.phi(0.0, a, &mut s) - self.slopes(0.0, a, &mut s).0 * b[i]
            })
            .sum()
    }

    fn phi(&self, b: f64, a: f64, scratch: &mut Scratch) -> f64 {
        self.phi_program.run(b, a, scratch);
        scratch.stack.first().copied().unwrap_or(f64::NAN)
    }

    /// (φ'(b), φ''(b)).
    fn slopes(&self, b: f64, a: f64, scratch: &mut Scratch) -> (f64, f64) {
        self.slope_program.run(b, a, scratch);
        match scratch.stack[..] {
            [d1, d2] => (d1, d2),
            _ => (f64::NAN, f64::NAN),
        }
    }

    /// b with φ'(b; a) = z: Newton from `start` (a warm start), kept inside the bracket
    /// [lo, hi] that the signs of φ'(b) − z have established so far; a step that leaves
    /// it bisects, or, while one side is still open, doubles the distance outwards.
    /// Returns b and φ''(b) (at the last evaluated point, within 4ε of b).
    fn inverse_gradient(&self, z: f64, a: f64, start: f64, scratch: &mut Scratch) -> Option<(f64, f64)> {
        let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
        let mut b = start;
        for _ in 0..400 {
            let (d1, d2) = self.slopes(b, a, scratch);
            let r = d1 - z;
            if r == 0.0 {
                return Some((b, d2));
            }
            if r < 0.0 {
                lo = b
            } else {
                hi = b
            }
            let newton = b - r / d2;
            let next = if newton > lo && newton < hi {
                newton
            } else if lo.is_finite() && hi.is_finite() {
                0.5 * (lo + hi)
            } else if r < 0.0 {
                b + 1f64.max(2.0 * b.abs())
            } else {
                b - 1f64.max(2.0 * b.abs())
            };
            if !next.is_finite() {
                return None;
            }
            if (next - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(f64::MIN_POSITIVE) {
                return Some((next, d2));
            }
            b = next;
        }
        let (_, d2) = self.slopes(b, a, scratch);
        (lo.is_finite() && hi.is_finite()).then_some((b, d2))
    }
}

/// The solution and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct PotentialSolution {
    pub beta: DVector<f64>,
    pub newton_iters: usize,
    /// ‖X b − y‖₂ / ‖y‖₂.
    pub residual: f64,
}

struct Dual<'a> {
    x: &'a DMatrix<f64>,
    y: &'a DVector<f64>,
    pot: &'a Potential,
    alpha: &'a DVector<f64>,
    z0: DVector<f64>,
    scratch: Scratch,
}

impl Dual<'_> {
    /// F, b and the curvature weights 1/φ''(b) at μ (b warm-started from `warm`).
    fn eval(&mut self, mu: &DVector<f64>, warm: &DVector<f64>) -> Result<DualPoint, SolveError> {
        let z = &self.z0 + self.x.tr_mul(mu);
        let (mut b, mut c) = (warm.clone(), DVector::zeros(z.len()));
        let mut f = -mu.dot(self.y);
        for i in 0..z.len() {
            let a = self.alpha[i];
            let (bi, curvature) = self.pot.inverse_gradient(z[i], a, b[i], &mut self.scratch).ok_or_else(|| {
                SolveError::Potential(format!("φ'(b) = {:e} has no solution b (a = {a:e}): φ' does not reach it", z[i]))
            })?;
            b[i] = bi;
            c[i] = 1.0 / curvature;
            f += z[i] * bi - self.pot.phi(bi, a, &mut self.scratch);
        }
        if f.is_finite() && c.iter().all(|v| v.is_finite()) {
            Ok(DualPoint { f, b, c })
        } else {
            Err(SolveError::Numerical(format!("the dual of φ = {} is not finite at this point", self.pot.phi)))
        }
    }
}

/// Solves argmin_{Xb=y} D_φ(b, 0) for the potential with per-coordinate scales `alpha`.
pub fn solve_potential(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    pot: &Potential,
    alpha: &DVector<f64>,
    settings: &NewtonSettings,
) -> Result<PotentialSolution, SolveError> {
    let (n, d) = x.shape();
    if y.len() != n || alpha.len() != d {
        return Err(SolveError::Shape(format!("X is {n}×{d}, y has {} and α {} entries", y.len(), alpha.len())));
    }
    let mut scales: Vec<f64> = alpha.iter().copied().collect();
    scales.sort_by(f64::total_cmp);
    scales.dedup();
    pot.check_convex(&scales, 1e3 * (1.0 + y.amax()))?;
    let mut scratch = Scratch::default();
    let z0 = DVector::from_fn(d, |i, _| pot.slopes(0.0, alpha[i], &mut scratch).0);
    let mut dual = Dual { x, y, pot, alpha, z0, scratch };
    let start = dual.eval(&DVector::zeros(n), &DVector::zeros(d))?;
    let sol = damped_newton(x, y, settings, false, start, |mu, at| dual.eval(mu, &at.b))?;
    Ok(PotentialSolution { beta: sol.beta, newton_iters: sol.iters, residual: sol.residual })
}
