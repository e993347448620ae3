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
//! can point at it.

use std::fmt;

/// Byte range in the source text.
pub type Span = (usize, usize);

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: Kind,
    pub span: Span,
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
}

impl Parser {
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
            let mut lhs = self.sum()?;
            let mut any = false;
            while let Some(op) = self.cmp_op() {
                let rhs = self.sum()?;
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

    fn binary(
        &mut self,
        ops: &[(&str, BinOp)],
        next: fn(&mut Self) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        let mut lhs = next(self)?;
        'outer: loop {
            for (sym, op) in ops {
                if self.eat(sym) {
                    let rhs = next(self)?;
                    let span = (lhs.span.0, rhs.span.1);
                    lhs = Expr { kind: Kind::Bin(*op, Box::new(lhs), Box::new(rhs)), span };
                    continue 'outer;
                }
            }
            return Ok(lhs);
        }
    }

    fn sum(&mut self) -> Result<Expr, ParseError> {
        self.binary(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::product)
    }

    fn product(&mut self) -> Result<Expr, ParseError> {
        self.binary(&[("*", BinOp::Mul), ("/", BinOp::Div)], Self::unary)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let start = self.span().0;
        if self.eat("-") {
            let inner = self.unary()?;
            let span = (start, inner.span.1);
            return Ok(Expr { kind: Kind::Neg(Box::new(inner)), span });
        }
        let base = self.postfix()?;
        if self.eat("^") {
            let exp = self.unary()?;
            let span = (base.span.0, exp.span.1);
            return Ok(Expr { kind: Kind::Bin(BinOp::Pow, Box::new(base), Box::new(exp)), span });
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") {
                let Tok::Name(field) = self.peek().clone() else { return Err(self.error("a field name after `.`")) };
                let end = self.span().1;
                self.pos += 1;
                e = Expr { span: (e.span.0, end), kind: Kind::Field(Box::new(e), field) };
            } else if self.eat("[") {
                let idx = self.sum()?;
                let end = self.span().1;
                self.expect("]")?;
                e = Expr { span: (e.span.0, end), kind: Kind::Index(Box::new(e), Box::new(idx)) };
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let span = self.span();
        match self.peek().clone() {
            Tok::Num(x) => {
                self.pos += 1;
                Ok(Expr { kind: Kind::Num(x), span })
            }
            Tok::Name(name) => {
                self.pos += 1;
                if !self.eat("(") {
                    return Ok(Expr { kind: Kind::Name(name), span });
                }
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.sum()?);
                        if self.eat(")") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                let end = self.toks[self.pos - 1].1.1;
                Ok(Expr { kind: Kind::Call(name, args), span: (span.0, end) })
            }
            Tok::Sym("(") => {
                self.pos += 1;
                let inner = self.sum()?;
                self.expect(")")?;
                Ok(inner)
            }
            _ => Err(self.error("a number, a name or `(`")),
        }
    }

    fn finish<T>(&self, value: T) -> Result<T, ParseError> {
        if *self.peek() == Tok::End { Ok(value) } else { Err(self.error("an operator or the end of the expression")) }
    }
}

/// Parses a quantity (no comparison).
pub fn parse_expr(src: &str) -> Result<Expr, ParseError> {
    let mut p = Parser { toks: lex(src)?, pos: 0 };
    let e = p.sum()?;
    p.finish(e)
}

/// Parses a relation: one or more comparisons joined by chains and `and`.
pub fn parse_relation(src: &str) -> Result<Vec<Comparison>, ParseError> {
    let mut p = Parser { toks: lex(src)?, pos: 0 };
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
}
