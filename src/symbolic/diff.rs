//! Symbolic differentiation: d/dx by the usual rules (sum, product, quotient, chain).
//!
//! d(a^b) = b·a^(b−1)·a' when b does not mention x, else a^b·(b'·ln a + b·a'/a);
//! d sqrt(a) = a'/(2 sqrt a); d|a| = sign(a)·a'; d ln a = a'/a; d exp a = exp(a)·a';
//! d sinh a = cosh(a)·a'; d cosh a = sinh(a)·a'; d tanh a = (1 − tanh(a)²)·a';
//! d asinh a = a'/sqrt(a² + 1); d sign(a) = 0 (away from a = 0).

use super::{Func, Sym};
use crate::expr::BinOp;

fn bin(op: BinOp, a: Sym, b: Sym) -> Sym {
    Sym::Bin(op, Box::new(a), Box::new(b))
}

fn call(f: Func, a: Sym) -> Sym {
    Sym::Call(f, Box::new(a))
}

/// The derivative of `e` with respect to variable `x` (unsimplified).
pub fn diff(e: &Sym, x: &str) -> Sym {
    use BinOp::*;
    match e {
        Sym::Num(_) => Sym::Num(0.0),
        Sym::Var(v) => Sym::Num(if v == x { 1.0 } else { 0.0 }),
        Sym::Neg(a) => Sym::Neg(Box::new(diff(a, x))),
        Sym::Bin(op, a, b) => {
            let (a, b) = (a.as_ref().clone(), b.as_ref().clone());
            let (da, db) = (diff(&a, x), diff(&b, x));
            match op {
                Add => bin(Add, da, db),
                Sub => bin(Sub, da, db),
                Mul => bin(Add, bin(Mul, da, b), bin(Mul, a, db)),
                Div => bin(Div, bin(Sub, bin(Mul, da, b.clone()), bin(Mul, a, db)), bin(Pow, b, Sym::Num(2.0))),
                Pow if !b.mentions(x) => bin(Mul, bin(Mul, b.clone(), bin(Pow, a, bin(Sub, b, Sym::Num(1.0)))), da),
                Pow => {
                    let inner =
                        bin(Add, bin(Mul, db, call(Func::Ln, a.clone())), bin(Div, bin(Mul, b.clone(), da), a.clone()));
                    bin(Mul, bin(Pow, a, b), inner)
                }
            }
        }
        Sym::Call(f, a) => {
            let a = a.as_ref().clone();
            let da = diff(&a, x);
            let outer = match f {
                Func::Sqrt => bin(Div, Sym::Num(1.0), bin(Mul, Sym::Num(2.0), call(Func::Sqrt, a))),
                Func::Abs => call(Func::Sign, a),
                Func::Ln => bin(Div, Sym::Num(1.0), a),
                Func::Exp => call(Func::Exp, a),
                Func::Sinh => call(Func::Cosh, a),
                Func::Cosh => call(Func::Sinh, a),
                Func::Tanh => bin(Sub, Sym::Num(1.0), bin(Pow, call(Func::Tanh, a), Sym::Num(2.0))),
                Func::Asinh => {
                    bin(Div, Sym::Num(1.0), call(Func::Sqrt, bin(Add, bin(Pow, a, Sym::Num(2.0)), Sym::Num(1.0))))
                }
                Func::Sign => return Sym::Num(0.0),
            };
            bin(Mul, outer, da)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbolic::Builder;
    use std::collections::BTreeMap;

    /// Every rule against a central difference at a few points.
    #[test]
    fn derivatives_match_finite_differences() {
        let vars = vec!["x".to_string(), "y".to_string()];
        let defines = BTreeMap::new();
        let b = Builder { variables: &vars, defines: &defines };
        for text in [
            "x^3 * y - x / (1 + x^2)",
            "sqrt(x^2 + y) + abs(x - 0.3)",
            "ln(x + 2) * exp(-x) + sinh(x) - cosh(2 * x)",
            "tanh(x * y) + asinh(x / y) + sign(x) * x",
            "x^y + (1 + x)^(x * y)",
        ] {
            let f = b.parse(text).unwrap();
            let df = diff(&f, "x");
            for (x, y) in [(0.7, 1.3), (1.9, 0.4), (0.2, 2.5)] {
                let h = 1e-6;
                let fd = (f.eval(&["x", "y"], &[x + h, y]) - f.eval(&["x", "y"], &[x - h, y])) / (2.0 * h);
                let exact = df.eval(&["x", "y"], &[x, y]);
                assert!((fd - exact).abs() <= 1e-7 * (1.0 + exact.abs()), "{text} at {x}: {fd} vs {exact}");
            }
        }
    }
}
