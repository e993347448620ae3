//! The claim expression language: a lexer and a recursive-descent parser.
//!
//! ```text
//! relation := chain ("and" chain)*            chain := sum (("<" | "<=" | ">" | ">=") sum)+
//! sum      := product (("+" | "-") product)*  product := unary (("*" | "/") unary)*
//! unary    := "-" unary | power               power := postfix ("^" unary)?
//! postfix  := primary ("." name | "[" sum "]")*
//! primary  := number | name | name "(" (sum ("," sum)*)? ")" | "(" sum ")"
//! ```
//! A chain `a < b < c` means `a < b and b < c`. Every node keeps its byte span so errors
//! can point at it, and its height, so the parser refuses a tree deeper than
//! [`limits::MAX_NESTING`] (nested parentheses, calls, `-` or `^`, or a sum or product of
//! that many terms) or larger than [`limits::MAX_NODES`] before anything recurses on it.
//! Every recursive walk of an [`Expr`] is therefore bounded.

use std::collections::BTreeSet;
use std::fmt;

use crate::limits;

/// Byte range in the source text.
pub type Span = (usize, usize);

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: Kind,
    pub span: Span,
}

impl Expr {
    /// The names this expression mentions (run names of fields included).
    pub fn names(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.collect_names(&mut out);
        out
    }

    fn collect_names<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match &self.kind {
            Kind::Num(_) => {}
            Kind::Name(n) => {
                out.insert(n);
            }
            Kind::Field(b, _) | Kind::Neg(b) => b.collect_names(out),
            Kind::Index(a, b) | Kind::Bin(_, a, b) => {
                a.collect_names(out);
                b.collect_names(out);
            }
            Kind::Call(_, args) => args.iter().for_each(|a| a.collect_names(out)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Num(f64),
    Name(String),
    /// `run.field`
    Field(Box<Expr>, String),
    /// `v[mask]`
    Index(Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

impl BinOp {
    pub fn apply(self, x: f64, y: f64) -> f64 {
        match self {
            Self::Add => x + y,
            Self::Sub => x - y,
            Self::Mul => x * y,
            Self::Div => x / y,
            Self::Pow => x.powf(y),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CmpOp {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl CmpOp {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
        }
    }

    /// The signed margin by which `a op b` holds: positive when it holds.
    pub fn margin(self, a: f64, b: f64) -> f64 {
        match self {
            Self::Lt | Self::Le => b - a,
            Self::Gt | Self::Ge => a - b,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// One comparison `lhs op rhs` of a relation.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub lhs: Expr,
    pub op: CmpOp,
    pub rhs: Expr,
}

/// A parse error at byte `offset`: what was expected and what was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expected {expected}, found {found}")]
pub struct ParseError {
    pub offset: usize,
    pub expected: String,
    pub found: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Sym(&'static str),
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(x) => write!(f, "number {x}"),
            Tok::Name(s) => write!(f, "`{s}`"),
            Tok::Sym(s) => write!(f, "`{s}`"),
            Tok::End => write!(f, "end of expression"),
        }
    }
}

const SYMBOLS: [&str; 14] = ["<=", ">=", "<", ">", "+", "-", "*", "/", "^", "(", ")", "[", "]", ","];

fn lex(src: &str) -> Result<Vec<(Tok, Span)>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.' || bytes[i] == b'_') {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                i += 1;
                if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                    i += 1;
                }
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text = src[start..i].replace('_', "");
            let x = text.parse().map_err(|_| ParseError {
                offset: start,
                expected: "a number".into(),
                found: format!("`{}`", &src[start..i]),
            })?;
            out.push((Tok::Num(x), (start, i)));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Name(src[start..i].to_string()), (start, i)));
        } else if c == b'.' {
            out.push((Tok::Sym("."), (i, i + 1)));
            i += 1;
        } else if let Some(s) = SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) {
            out.push((Tok::Sym(s), (i, i + s.len())));
            i += s.len();
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(ParseError {
                offset: i,
                expected: "an operator, a name or a number".into(),
                found: format!("`{ch}`"),
            });
        }
    }
    out.push((Tok::End, (src.len(), src.len())));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    /// Nodes made so far.
    nodes: usize,
    /// Current recursion depth into nested constructs.
    depth: usize,
}

impl Parser {
    /// Makes a node of the given height (1 + its tallest child), refusing a tree taller
    /// than [`limits::MAX_NESTING`] or with more than [`limits::MAX_NODES`] nodes.
    fn node(&mut self, kind: Kind, span: Span, height: usize) -> Result<(Expr, usize), ParseError> {
        self.nodes += 1;
        if height > limits::MAX_NESTING {
            return Err(ParseError {
                offset: span.0,
                expected: format!(
                    "at most {} levels of nesting (parentheses, calls, `-`, `^`, or terms of one sum or product)",
                    limits::MAX_NESTING
                ),
                found: "deeper nesting".into(),
            });
        }
        if self.nodes > limits::MAX_NODES {
            return Err(ParseError {
                offset: span.0,
                expected: format!("at most {} terms in one expression", limits::MAX_NODES),
                found: "more".into(),
            });
        }
        Ok((Expr { kind, span }, height))
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn span(&self) -> Span {
        self.toks[self.pos].1
    }

    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Tok::Sym(s) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn error(&self, expected: &str) -> ParseError {
        ParseError { offset: self.span().0, expected: expected.into(), found: self.peek().to_string() }
    }

    fn expect(&mut self, sym: &str) -> Result<(), ParseError> {
        if self.eat(sym) { Ok(()) } else { Err(self.error(&format!("`{sym}`"))) }
    }

    fn relation(&mut self) -> Result<Vec<Comparison>, ParseError> {
        let mut atoms = Vec::new();
        loop {
            let mut lhs = self.sum()?.0;
            let mut any = false;
            while let Some(op) = self.cmp_op() {
                let rhs = self.sum()?.0;
                atoms.push(Comparison { lhs, op, rhs: rhs.clone() });
                lhs = rhs;
                any = true;
            }
            if !any {
                return Err(self.error("a comparison (`<`, `<=`, `>`, `>=`)"));
            }
            if !matches!(self.peek(), Tok::Name(s) if s == "and") {
                return Ok(atoms);
            }
            self.pos += 1;
        }
    }

    fn cmp_op(&mut self) -> Option<CmpOp> {
        let op = match self.peek() {
            Tok::Sym("<") => CmpOp::Lt,
            Tok::Sym("<=") => CmpOp::Le,
            Tok::Sym(">") => CmpOp::Gt,
            Tok::Sym(">=") => CmpOp::Ge,
            _ => return None,
        };
        self.pos += 1;
        Some(op)
    }

    fn binary(&mut self, ops: &[(&str, BinOp)], next: fn(&mut Self) -> Parsed) -> Parsed {
        let (mut lhs, mut height) = next(self)?;
        'outer: loop {
            for (sym, op) in ops {
                if self.eat(sym) {
                    let (rhs, h) = next(self)?;
                    let span = (lhs.span.0, rhs.span.1);
                    (lhs, height) = self.node(Kind::Bin(*op, Box::new(lhs), Box::new(rhs)), span, 1 + height.max(h))?;
                    continue 'outer;
                }
            }
            return Ok((lhs, height));
        }
    }

    fn sum(&mut self) -> Parsed {
        self.binary(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::product)
    }

    fn product(&mut self) -> Parsed {
        self.binary(&[("*", BinOp::Mul), ("/", BinOp::Div)], Self::unary)
    }

    fn unary(&mut self) -> Parsed {
        let start = self.span().0;
        if self.eat("-") {
            self.descend(start)?;
            let (inner, h) = self.unary()?;
            self.depth -= 1;
            let span = (start, inner.span.1);
            return self.node(Kind::Neg(Box::new(inner)), span, h + 1);
        }
        let (base, hb) = self.postfix()?;
        if self.eat("^") {
            self.descend(start)?;
            let (exp, he) = self.unary()?;
            self.depth -= 1;
            let span = (base.span.0, exp.span.1);
            return self.node(Kind::Bin(BinOp::Pow, Box::new(base), Box::new(exp)), span, 1 + hb.max(he));
        }
        Ok((base, hb))
    }

    /// Counts one level of recursion into a nested construct and refuses it beyond
    /// [`limits::MAX_NESTING`], before the recursion happens (so a tall input never
    /// reaches the stack).
    fn descend(&mut self, at: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > limits::MAX_NESTING {
            return Err(ParseError {
                offset: at,
                expected: format!("at most {} levels of nesting", limits::MAX_NESTING),
                found: "deeper nesting".into(),
            });
        }
        Ok(())
    }

    fn postfix(&mut self) -> Parsed {
        let (mut e, mut h) = self.primary()?;
        loop {
            if self.eat(".") {
                let Tok::Name(field) = self.peek().clone() else { return Err(self.error("a field name after `.`")) };
                let end = self.span().1;
                self.pos += 1;
                let span = (e.span.0, end);
                (e, h) = self.node(Kind::Field(Box::new(e), field), span, h + 1)?;
            } else if self.eat("[") {
                self.descend(e.span.0)?;
                let (idx, hi) = self.sum()?;
                self.depth -= 1;
                let end = self.span().1;
                self.expect("]")?;
                let span = (e.span.0, end);
                (e, h) = self.node(Kind::Index(Box::new(e), Box::new(idx)), span, 1 + h.max(hi))?;
            } else {
                return Ok((e, h));
            }
        }
    }

    fn primary(&mut self) -> Parsed {
        let span = self.span();
        let depth = self.depth;
        let out = match self.peek().clone() {
            Tok::Num(x) => {
                self.pos += 1;
                self.node(Kind::Num(x), span, 1)
            }
            Tok::Name(name) => {
                self.pos += 1;
                if !self.eat("(") {
                    return self.node(Kind::Name(name), span, 1);
                }
                self.descend(span.0)?;
                let (mut args, mut height) = (Vec::new(), 0);
                if !self.eat(")") {
                    loop {
                        let (a, h) = self.sum()?;
                        args.push(a);
                        height = height.max(h);
                        if self.eat(")") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                let end = self.toks[self.pos - 1].1.1;
                self.node(Kind::Call(name, args), (span.0, end), height + 1)
            }
            Tok::Sym("(") => {
                self.pos += 1;
                self.descend(span.0)?;
                let inner = self.sum()?;
                self.expect(")")?;
                Ok(inner)
            }
            _ => Err(self.error("a number, a name or `(`")),
        };
        self.depth = depth;
        out
    }

    fn finish<T>(&self, value: T) -> Result<T, ParseError> {
        if *self.peek() == Tok::End { Ok(value) } else { Err(self.error("an operator or the end of the expression")) }
    }
}

type Parsed = Result<(Expr, usize), ParseError>;

fn parser(src: &str) -> Result<Parser, ParseError> {
    if src.len() > limits::MAX_EXPR_BYTES {
        return Err(ParseError {
            offset: limits::MAX_EXPR_BYTES,
            expected: format!("an expression of at most {} bytes", limits::MAX_EXPR_BYTES),
            found: format!("{} bytes", src.len()),
        });
    }
    Ok(Parser { toks: lex(src)?, pos: 0, nodes: 0, depth: 0 })
}

/// Parses a quantity (no comparison).
pub fn parse_expr(src: &str) -> Result<Expr, ParseError> {
    let mut p = parser(src)?;
    let (e, _) = p.sum()?;
    p.finish(e)
}

/// Parses a relation: one or more comparisons joined by chains and `and`.
pub fn parse_relation(src: &str) -> Result<Vec<Comparison>, ParseError> {
    let mut p = parser(src)?;
    let r = p.relation()?;
    p.finish(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_chains() {
        let e = parse_expr("1 + 2 * 3 ^ 2").unwrap();
        let Kind::Bin(BinOp::Add, _, rhs) = e.kind else { panic!("{e:?}") };
        assert!(matches!(rhs.kind, Kind::Bin(BinOp::Mul, _, _)));
        let r = parse_relation("a < b <= c and norm(x.beta[support]) > 1e-3").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1].op, CmpOp::Le);
    }

    #[test]
    fn errors_point_at_the_fault() {
        let e = parse_expr("norm(a.beta - )").unwrap_err();
        assert_eq!((e.offset, e.expected.as_str(), e.found.as_str()), (14, "a number, a name or `(`", "`)`"));
        assert_eq!(parse_relation("norm(x)").unwrap_err().offset, 7);
        assert_eq!(parse_expr("a $ b").unwrap_err().offset, 2);
        assert_eq!(parse_expr("a b").unwrap_err().found, "`b`");
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        let deep = |open: &str, close: &str, k: usize| format!("{}x{}", open.repeat(k), close.repeat(k));
        let ok = limits::MAX_NESTING - 2;
        assert!(parse_expr(&deep("(", ")", ok)).is_ok());
        for (open, close) in [("(", ")"), ("abs(", ")"), ("-", ""), ("x^", ""), ("v[", "]")] {
            let e = parse_expr(&deep(open, close, 1_000)).unwrap_err();
            assert!(e.expected.contains("levels of nesting"), "{open}: {e}");
        }
        let long_sum = vec!["x"; 100_000].join("+");
        assert!(parse_expr(&long_sum).unwrap_err().to_string().contains("bytes"));
        let sum = vec!["x"; 5_000].join("+");
        assert!(parse_expr(&sum).unwrap_err().expected.contains("levels of nesting"));
        // Siblings do not add up: 100 negated terms of a short sum nest only a little.
        let flat = vec!["-x"; 30].join("*");
        assert!(parse_expr(&format!("{flat} + {flat}")).is_ok());
    }
}
