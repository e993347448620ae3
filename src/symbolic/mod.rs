//! Scalar symbolic expressions over named variables: built from the claims' parser
//! ([`crate::expr`]), evaluated, differentiated ([`diff`]) and simplified
//! honestly ([`simplify`]: a rewrite is applied only when it holds wherever both sides
//! are defined, and constants fold only when f64 arithmetic is exact).
//!
//! Why not exmex: exmex 0.21 differentiates sqrt, ln, exp, sinh, cosh, tanh and asinh
//! but not abs or sign, its simplification is constant folding, and it would bring a
//! second expression syntax with its own error messages. This small tree reuses the one
//! parser the claims already have.

pub mod check;
pub mod diff;
pub mod simplify;

use std::collections::BTreeMap;
use std::fmt;

use crate::expr::{BinOp, Expr, Kind, Span, parse_expr};
use crate::limits;

/// The functions a formula may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Func {
    Sqrt,
    Abs,
    Ln,
    Exp,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Sign,
}

const FUNCS: [(&str, Func); 9] = [
    ("sqrt", Func::Sqrt),
    ("abs", Func::Abs),
    ("ln", Func::Ln),
    ("exp", Func::Exp),
    ("sinh", Func::Sinh),
    ("cosh", Func::Cosh),
    ("tanh", Func::Tanh),
    ("asinh", Func::Asinh),
    ("sign", Func::Sign),
];

impl Func {
    pub fn name(self) -> &'static str {
        FUNCS.iter().find(|(_, f)| *f == self).map_or("?", |(n, _)| n)
    }

    pub fn apply(self, x: f64) -> f64 {
        match self {
            Self::Sqrt => x.sqrt(),
            Self::Abs => x.abs(),
            Self::Ln => x.ln(),
            Self::Exp => x.exp(),
            Self::Sinh => x.sinh(),
            Self::Cosh => x.cosh(),
            Self::Tanh => x.tanh(),
            Self::Asinh => x.asinh(),
            // sign(0) = 0, unlike f64::signum.
            Self::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
        }
    }
}

/// A symbolic scalar expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Sym {
    Num(f64),
    Var(String),
    Neg(Box<Sym>),
    Bin(BinOp, Box<Sym>, Box<Sym>),
    Call(Func, Box<Sym>),
}

/// A formula that cannot be built: where (byte span in its text) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct FormulaError {
    pub span: Span,
    pub message: String,
}

/// `s` if it has at most [`limits::MAX_NODES`] nodes and height [`MAX_HEIGHT`]; else
/// an error naming `what` (a formula with its definitions substituted, a derivative).
pub fn checked(s: Sym, what: &str) -> Result<Sym, String> {
    let (nodes, height) = s.size();
    if nodes > limits::MAX_NODES || height > MAX_HEIGHT {
        return Err(format!(
            "{what} expands to {nodes} nodes of height {height}; at most {} nodes and height {MAX_HEIGHT} \
             (definitions are substituted where used)",
            limits::MAX_NODES
        ));
    }
    Ok(s)
}

/// d/dx of `e`, simplified, refused when it would be too large: checked before
/// differentiating (the derivative of a tree of n nodes and height h has at most about
/// 3·n·h nodes) and after.
pub fn derivative(e: &Sym, x: &str) -> Result<Sym, String> {
    let (nodes, height) = e.size();
    if nodes.saturating_mul(height) > 50 * limits::MAX_NODES {
        return Err(format!(
            "the derivative of a formula of {nodes} nodes and height {height} would be too large to form"
        ));
    }
    checked(simplify::simplify(&diff::diff(e, x)), "a derivative")
}

/// Named formulas a formula may refer to, and `diff(f, x)` inside formulas.
pub struct Builder<'a> {
    /// Variable names.
    pub variables: &'a [String],
    /// Definitions, already built (substituted where used).
    pub defines: &'a BTreeMap<String, Sym>,
}

impl Builder<'_> {
    /// Parses and builds a formula.
    pub fn parse(&self, text: &str) -> Result<Sym, FormulaError> {
        let e = parse_expr(text).map_err(|e| FormulaError {
            span: (e.offset, e.offset),
            message: format!("expected {}, found {}", e.expected, e.found),
        })?;
        self.build_checked(&e)
    }

    /// Builds a formula from its parsed text, substituting definitions, within the size
    /// limits of [`checked`] (counted as it goes, so nothing large is ever formed).
    pub fn build_checked(&self, e: &Expr) -> Result<Sym, FormulaError> {
        let mut budget = limits::MAX_NODES;
        let s = self.build(e, &mut budget)?;
        checked(s, "this formula").map_err(|message| FormulaError { span: e.span, message })
    }

    fn build(&self, e: &Expr, budget: &mut usize) -> Result<Sym, FormulaError> {
        let fail = |m: String| Err(FormulaError { span: e.span, message: m });
        Ok(match &e.kind {
            Kind::Num(x) => {
                spend(budget, 1, e.span)?;
                Sym::Num(*x)
            }
            Kind::Name(n) if self.variables.contains(n) => {
                spend(budget, 1, e.span)?;
                Sym::Var(n.clone())
            }
            Kind::Name(n) => match self.defines.get(n) {
                Some(s) => {
                    spend(budget, s.size().0, e.span)?;
                    s.clone()
                }
                None => return fail(format!("unknown variable `{n}`; variables: {}", self.variables.join(", "))),
            },
            Kind::Neg(a) => {
                spend(budget, 1, e.span)?;
                Sym::Neg(Box::new(self.build(a, budget)?))
            }
            Kind::Bin(op, a, b) => {
                spend(budget, 1, e.span)?;
                Sym::Bin(*op, Box::new(self.build(a, budget)?), Box::new(self.build(b, budget)?))
            }
            Kind::Call(f, args) if f == "diff" => match &args[..] {
                [g, Expr { kind: Kind::Name(x), .. }] if self.variables.contains(x) => {
                    let d = derivative(&self.build(g, budget)?, x)
                        .map_err(|m| FormulaError { span: e.span, message: m })?;
                    spend(budget, d.size().0, e.span)?;
                    d
                }
                _ => return fail("diff takes a formula and a variable: diff(f, x)".into()),
            },
            Kind::Call(f, args) => match (FUNCS.iter().find(|(n, _)| n == f), &args[..]) {
                (Some((_, func)), [a]) => {
                    spend(budget, 1, e.span)?;
                    Sym::Call(*func, Box::new(self.build(a, budget)?))
                }
                (Some(_), _) => return fail(format!("{f} takes one argument")),
                (None, _) => {
                    let known: Vec<&str> = FUNCS.iter().map(|(n, _)| *n).collect();
                    return fail(format!("unknown function `{f}`; known: {}, diff", known.join(", ")));
                }
            },
            Kind::Field(..) | Kind::Index(..) => return fail("a formula has no fields or indices".into()),
        })
    }
}

/// Takes `nodes` from the node budget of one formula, or refuses it.
fn spend(budget: &mut usize, nodes: usize, span: Span) -> Result<(), FormulaError> {
    *budget = budget.checked_sub(nodes).ok_or_else(|| FormulaError {
        span,
        message: format!(
            "this formula expands to more than {} nodes (definitions are substituted where used)",
            limits::MAX_NODES
        ),
    })?;
    Ok(())
}

/// Largest height of a built formula: a parsed formula's nesting plus what its
/// definitions bring when substituted.
pub const MAX_HEIGHT: usize = 4 * limits::MAX_NESTING;

impl Sym {
    /// Nodes and height of the tree (definitions count once per use: they are
    /// substituted). Only called on trees built through [`checked`], so bounded.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Sym::Num(_) | Sym::Var(_) => (1, 1),
            Sym::Neg(a) | Sym::Call(_, a) => {
                let (n, h) = a.size();
                (n + 1, h + 1)
            }
            Sym::Bin(_, a, b) => {
                let ((na, ha), (nb, hb)) = (a.size(), b.size());
                (na + nb + 1, ha.max(hb) + 1)
            }
        }
    }

    /// Evaluates with `vars[i]` the value of variable `names[i]` (NaN if unknown).
    pub fn eval(&self, names: &[&str], vars: &[f64]) -> f64 {
        match self {
            Sym::Num(x) => *x,
            Sym::Var(v) => names.iter().position(|n| n == v).map_or(f64::NAN, |i| vars[i]),
            Sym::Neg(a) => -a.eval(names, vars),
            Sym::Bin(op, a, b) => op.apply(a.eval(names, vars), b.eval(names, vars)),
            Sym::Call(f, a) => f.apply(a.eval(names, vars)),
        }
    }

    /// Whether the expression mentions variable `v`.
    pub fn mentions(&self, v: &str) -> bool {
        match self {
            Sym::Num(_) => false,
            Sym::Var(w) => w == v,
            Sym::Neg(a) | Sym::Call(_, a) => a.mentions(v),
            Sym::Bin(_, a, b) => a.mentions(v) || b.mentions(v),
        }
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sym::Num(x) => write!(f, "{x}"),
            Sym::Var(v) => write!(f, "{v}"),
            Sym::Neg(a) => write!(f, "-({a})"),
            Sym::Bin(op, a, b) => {
                let s = match op {
                    BinOp::Add => "+",
                    BinOp::Sub => "-",
                    BinOp::Mul => "*",
                    BinOp::Div => "/",
                    BinOp::Pow => "^",
                };
                write!(f, "({a} {s} {b})")
            }
            Sym::Call(func, a) => write!(f, "{}({a})", func.name()),
        }
    }
}
