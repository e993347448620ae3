//! Honest simplification. [`simplify`] rewrites locally (x + 0 → x, x·1 → x, x·0 → 0,
//! x − x → 0, x/x → 1, x^1 → x, −(−x) → x, ...), each rule true wherever both sides
//! are defined, and folds constants only when the f64 result is exact. [`prove_zero`]
//! expands an expression into a Laurent polynomial over atoms (variables, and function
//! calls or non-integer powers of normalised arguments) with exactly-computed
//! coefficients: if every coefficient cancels, the expression is 0 wherever it is
//! defined. When a coefficient would be inexact it gives up rather than guess.

use std::collections::BTreeMap;

use super::{Func, Sym};
use crate::expr::BinOp;

/// a + b when f64 computes it exactly.
fn exact_add(a: f64, b: f64) -> Option<f64> {
    let s = a + b;
    let bb = s - a;
    let err = (a - (s - bb)) + (b - bb);
    (err == 0.0 && s.is_finite()).then_some(s)
}

/// a · b when f64 computes it exactly.
fn exact_mul(a: f64, b: f64) -> Option<f64> {
    let p = a * b;
    (p.is_finite() && a.mul_add(b, -p) == 0.0).then_some(p)
}

/// a / b when f64 computes it exactly.
fn exact_div(a: f64, b: f64) -> Option<f64> {
    let q = a / b;
    (b != 0.0 && q.is_finite() && q.mul_add(b, -a) == 0.0).then_some(q)
}

fn exact_pow(a: f64, k: f64) -> Option<f64> {
    if k.fract() != 0.0 || !(0.0..=64.0).contains(&k) {
        return None;
    }
    (0..k as u32).try_fold(1.0, |acc, _| exact_mul(acc, a))
}

fn exact_call(f: Func, x: f64) -> Option<f64> {
    match (f, x) {
        (Func::Abs, _) => Some(x.abs()),
        (Func::Sign, _) => Some(f.apply(x)),
        (Func::Sqrt, _) if x >= 0.0 => {
            let r = x.sqrt();
            (r.mul_add(r, -x) == 0.0).then_some(r)
        }
        (Func::Exp | Func::Cosh, 0.0) => Some(1.0),
        (Func::Sinh | Func::Tanh | Func::Asinh, 0.0) => Some(0.0),
        (Func::Ln, 1.0) => Some(0.0),
        _ => None,
    }
}

fn num(s: &Sym) -> Option<f64> {
    if let Sym::Num(x) = s { Some(*x) } else { None }
}

/// Local rewrites, bottom up.
pub fn simplify(e: &Sym) -> Sym {
    use BinOp::*;
    match e {
        Sym::Num(_) | Sym::Var(_) => e.clone(),
        Sym::Neg(a) => match simplify(a) {
            Sym::Num(x) => Sym::Num(-x),
            Sym::Neg(inner) => *inner,
            a => Sym::Neg(Box::new(a)),
        },
        Sym::Call(f, a) => {
            let a = simplify(a);
            match num(&a).and_then(|x| exact_call(*f, x)) {
                Some(v) => Sym::Num(v),
                None => Sym::Call(*f, Box::new(a)),
            }
        }
        Sym::Bin(op, a, b) => {
            let (a, b) = (simplify(a), simplify(b));
            let (na, nb) = (num(&a), num(&b));
            let folded = match (op, na, nb) {
                (Add, Some(x), Some(y)) => exact_add(x, y),
                (Sub, Some(x), Some(y)) => exact_add(x, -y),
                (Mul, Some(x), Some(y)) => exact_mul(x, y),
                (Div, Some(x), Some(y)) => exact_div(x, y),
                (Pow, Some(x), Some(y)) => exact_pow(x, y),
                _ => None,
            };
            if let Some(v) = folded {
                return Sym::Num(v);
            }
            match (op, na, nb) {
                (Add, Some(0.0), _) => b,
                (Add | Sub, _, Some(0.0)) => a,
                (Sub, Some(0.0), _) => simplify(&Sym::Neg(Box::new(b))),
                (Sub, _, _) if a == b => Sym::Num(0.0),
                (Mul, Some(0.0), _) | (Mul, _, Some(0.0)) | (Div, Some(0.0), _) => Sym::Num(0.0),
                (Mul, Some(1.0), _) => b,
                (Mul | Div | Pow, _, Some(1.0)) => a,
                (Div, _, _) if a == b => Sym::Num(1.0),
                (Pow, _, Some(0.0)) | (Pow, Some(1.0), _) => Sym::Num(1.0),
                _ => Sym::Bin(*op, Box::new(a), Box::new(b)),
            }
        }
    }
}

/// A monomial: atom → integer exponent (non-zero).
type Monomial = Vec<(String, i64)>;
/// monomial → coefficient (non-zero).
type Poly = BTreeMap<Monomial, f64>;

/// Terms beyond which expansion gives up (the numeric route decides instead).
const MAX_TERMS: usize = 256;

fn constant(c: f64) -> Poly {
    let mut p = Poly::new();
    if c != 0.0 {
        p.insert(Vec::new(), c);
    }
    p
}

fn atom(name: String, exponent: i64) -> Poly {
    Poly::from([(vec![(name, exponent)], 1.0)])
}

fn add(mut p: Poly, q: &Poly, sign: f64) -> Option<Poly> {
    for (m, c) in q {
        let sum = exact_add(p.get(m).copied().unwrap_or(0.0), sign * c)?;
        if sum == 0.0 {
            p.remove(m);
        } else {
            p.insert(m.clone(), sum);
        }
    }
    (p.len() <= MAX_TERMS).then_some(p)
}

fn mul_monomials(a: &Monomial, b: &Monomial) -> Monomial {
    let mut m: BTreeMap<String, i64> = a.iter().cloned().collect();
    for (atom, e) in b {
        *m.entry(atom.clone()).or_insert(0) += e;
    }
    m.into_iter().filter(|(_, e)| *e != 0).collect()
}

fn mul(p: &Poly, q: &Poly) -> Option<Poly> {
    let mut out = Poly::new();
    for (ma, ca) in p {
        for (mb, cb) in q {
            let term = Poly::from([(mul_monomials(ma, mb), exact_mul(*ca, *cb)?)]);
            out = add(out, &term, 1.0)?;
        }
    }
    Some(out)
}

/// The inverse of a single-term polynomial, when its coefficient inverts exactly.
fn invert(p: &Poly) -> Option<Poly> {
    let [(m, c)] = p.iter().collect::<Vec<_>>()[..] else { return None };
    let inv: Monomial = m.iter().map(|(a, e)| (a.clone(), -e)).collect();
    Some(Poly::from([(inv, exact_div(1.0, *c)?)]))
}

fn canon(p: &Poly) -> String {
    if p.is_empty() {
        return "0".into();
    }
    let terms: Vec<String> = p
        .iter()
        .map(|(m, c)| {
            let factors: Vec<String> = m.iter().map(|(a, e)| format!("{a}^{e}")).collect();
            format!("{c:e}*{}", factors.join("*"))
        })
        .collect();
    terms.join(" + ")
}

fn opaque(e: &Sym) -> String {
    to_poly(e).map_or_else(|| format!("[{e}]"), |p| canon(&p))
}

fn to_poly(e: &Sym) -> Option<Poly> {
    use BinOp::*;
    match e {
        Sym::Num(c) => Some(constant(*c)),
        Sym::Var(v) => Some(atom(v.clone(), 1)),
        Sym::Neg(a) => add(Poly::new(), &to_poly(a)?, -1.0),
        Sym::Call(f, a) => Some(atom(format!("{}({})", f.name(), opaque(a)), 1)),
        Sym::Bin(op, a, b) => match op {
            Add => add(to_poly(a)?, &to_poly(b)?, 1.0),
            Sub => add(to_poly(a)?, &to_poly(b)?, -1.0),
            Mul => mul(&to_poly(a)?, &to_poly(b)?),
            Div => {
                let pb = to_poly(b)?;
                let inv = invert(&pb).unwrap_or_else(|| atom(format!("({})", canon(&pb)), -1));
                mul(&to_poly(a)?, &inv)
            }
            Pow => match num(b) {
                Some(k) if k.fract() == 0.0 && k.abs() <= 12.0 => {
                    let pa = to_poly(a)?;
                    let base = if k >= 0.0 {
                        pa
                    } else {
                        invert(&pa).unwrap_or_else(|| atom(format!("({})", canon(&pa)), -1))
                    };
                    (0..k.abs() as u32).try_fold(constant(1.0), |acc, _| mul(&acc, &base))
                }
                _ => Some(atom(format!("pow({}, {})", opaque(a), opaque(b)), 1)),
            },
        },
    }
}

/// Whether `e` is identically 0 wherever defined, by expansion (false: not proved).
pub fn prove_zero(e: &Sym) -> bool {
    to_poly(&simplify(e)).is_some_and(|p| p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbolic::Builder;

    fn sym(text: &str) -> Sym {
        let vars = vec!["x".to_string(), "y".to_string()];
        Builder { variables: &vars, defines: &BTreeMap::new() }.parse(text).unwrap()
    }

    #[test]
    fn proves_what_expansion_shows_and_nothing_else() {
        assert!(prove_zero(&sym("(x + y)^2 - x^2 - 2*x*y - y^2")));
        assert!(prove_zero(&sym("diff(x^3 / 2, x) - 1.5 * x^2")));
        assert!(prove_zero(&sym("sinh(x + y) - sinh(y + x)")));
        assert!(prove_zero(&sym("x / (x * y) - 1 / y")));
        // True identities beyond expansion are not claimed.
        assert!(!prove_zero(&sym("cosh(x)^2 - sinh(x)^2 - 1")));
        assert!(!prove_zero(&sym("sqrt(x)^2 - x")));
        // 0.1 + 0.2 is not 0.3 in f64: no inexact folding.
        assert!(!prove_zero(&sym("0.1 + 0.2 - 0.3")));
        assert!(!prove_zero(&sym("x - y")));
    }

    #[test]
    fn local_rewrites_are_exact() {
        assert_eq!(simplify(&sym("(x * 1 + 0) ^ 1 - -(-x)")), Sym::Num(0.0));
        assert_eq!(simplify(&sym("2 * 3 + sqrt(16) - exp(0)")), Sym::Num(9.0));
        assert_eq!(simplify(&sym("sqrt(2)")), sym("sqrt(2)"));
    }
}
