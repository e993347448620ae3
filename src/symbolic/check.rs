//! Deciding symbolic claims: identities (by simplification, else by evaluation at
//! seeded points including the edges of the domain), positivity on a domain, series
//! (Taylor coefficients from symbolic derivatives, and the observed order of the
//! remainder) and limits (numeric, with the observed convergence order).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Sym;
use super::simplify::{prove_zero, simplify};
use crate::expr::BinOp;

/// A variable and its domain [lo, hi].
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    pub name: String,
    pub lo: f64,
    pub hi: f64,
}

/// What a symbolic claim states.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// lhs = rhs on the domain.
    Identity { lhs: Sym, rhs: Sym },
    /// f > 0 on the domain.
    Positive { f: Sym },
    /// f(var) = terms + O((var − at)^order) near `at` (other variables: none).
    Series { f: Sym, var: String, at: f64, terms: Sym, order: u32 },
    /// f → equals as var runs geometrically from `from` to `until` (other variables
    /// sampled on their domains).
    Limit { f: Sym, var: String, equals: Sym, from: f64, until: f64 },
}

/// A symbolic claim ready to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolicClaim {
    /// The statement as written (for reports).
    pub text: String,
    pub statement: Statement,
    pub domains: Vec<Domain>,
    pub tol: f64,
    pub points: usize,
    pub seed: u64,
}

/// The decision: a measured number against a bound, and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub relation: String,
    pub measured: f64,
    pub bound: f64,
    pub holds: bool,
    /// How it was decided ("simplification", "evaluation at N points", ...).
    pub route: String,
    /// Where and how much, for the report.
    pub detail: String,
    /// Series and limits: the observed order.
    pub order: Option<f64>,
}

/// Fraction of the sample points where an identity's or a positivity claim's formulas
/// must be defined (finite) for the evaluation to count as a check.
pub const MIN_DEFINED_FRACTION: f64 = 0.5;

impl SymbolicClaim {
    fn names(&self) -> Vec<&str> {
        self.domains.iter().map(|d| d.name.as_str()).collect()
    }

    /// Seeded points: 70% uniform on the box, 30% in edge regions (next to either end
    /// of each interval, and at tiny magnitudes when it contains 0).
    pub fn sample(&self) -> (Vec<Vec<f64>>, usize) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let edge_count = self.points * 3 / 10;
        let points = (0..self.points)
            .map(|k| {
                self.domains
                    .iter()
                    .map(|d| {
                        let u: f64 = rng.random();
                        if k >= edge_count {
                            return d.lo + (d.hi - d.lo) * u;
                        }
                        let near = (d.hi - d.lo) * 10f64.powf(-8.0 * rng.random::<f64>());
                        match rng.random_range(0..3) {
                            0 => d.lo + near * u,
                            1 => d.hi - near * u,
                            _ if d.lo < 0.0 && d.hi > 0.0 => near * 1e-3 * if u < 0.5 { -1.0 } else { 1.0 },
                            _ => d.lo + near * u,
                        }
                    })
                    .collect()
            })
            .collect();
        (points, edge_count)
    }

    /// Decides the statement, or says why it cannot be decided (an identity or a
    /// positivity claim whose formulas are finite at too few sample points, a series
    /// whose derivatives grow past the size limits).
    pub fn decide(&self) -> Result<Decision, String> {
        match &self.statement {
            Statement::Identity { lhs, rhs } => self.identity(lhs, rhs),
            Statement::Positive { f } => self.positive(f),
            Statement::Series { f, var, at, terms, order } => {
                Ok(Decision { relation: self.text.clone(), ..series(f, var, *at, terms, *order, self.tol)? })
            }
            Statement::Limit { f, var, equals, from, until } => Ok(self.limit(f, var, equals, *from, *until)),
        }
    }

    /// An error unless at least [`MIN_DEFINED_FRACTION`] of the `total` sample points
    /// had every formula finite: a statement checked nowhere is not checked.
    fn enough_points(&self, defined: usize, total: usize) -> Result<(), String> {
        if (defined as f64) < MIN_DEFINED_FRACTION * total as f64 {
            return Err(format!(
                "the formulas are finite at only {defined} of {total} sample points of the domain; \
                 at least {:.0}% are needed (is the domain where they are defined?)",
                100.0 * MIN_DEFINED_FRACTION
            ));
        }
        Ok(())
    }

    fn at(&self, p: &[f64]) -> String {
        let parts: Vec<String> = self.domains.iter().zip(p).map(|(d, v)| format!("{} = {v:.6e}", d.name)).collect();
        parts.join(", ")
    }

    fn identity(&self, lhs: &Sym, rhs: &Sym) -> Result<Decision, String> {
        let relation = self.text.clone();
        let names = self.names();
        let (points, edges) = self.sample();
        let defined =
            points.iter().filter(|p| lhs.eval(&names, p).is_finite() && rhs.eval(&names, p).is_finite()).count();
        self.enough_points(defined, points.len())?;
        let difference = Sym::Bin(BinOp::Sub, Box::new(lhs.clone()), Box::new(rhs.clone()));
        if prove_zero(&difference) {
            let route = "simplification".to_string();
            return Ok(Decision {
                relation,
                measured: 0.0,
                bound: self.tol,
                holds: true,
                route,
                detail: String::new(),
                order: None,
            });
        }
        let (mut worst, mut worst_at) = (0.0_f64, Vec::new());
        for p in &points {
            let (l, r) = (lhs.eval(&names, p), rhs.eval(&names, p));
            let err = if !l.is_finite() && !r.is_finite() {
                continue;
            } else if l.is_finite() != r.is_finite() {
                f64::INFINITY
            } else {
                (l - r).abs() / 1f64.max(l.abs()).max(r.abs())
            };
            if err > worst || worst_at.is_empty() {
                (worst, worst_at) = (err, p.clone());
            }
        }
        let route = format!("evaluation at {} points ({edges} in edge regions)", points.len());
        let detail = format!("largest relative difference at {}; both sides finite at {defined}", self.at(&worst_at));
        Ok(Decision {
            relation,
            measured: worst,
            bound: self.tol,
            holds: worst <= self.tol,
            route,
            detail,
            order: None,
        })
    }

    fn positive(&self, f: &Sym) -> Result<Decision, String> {
        let names = self.names();
        let (points, edges) = self.sample();
        let defined = points.iter().filter(|p| !f.eval(&names, p).is_nan()).count();
        self.enough_points(defined, points.len())?;
        let (mut least, mut least_at) = (f64::INFINITY, Vec::new());
        for p in &points {
            let v = f.eval(&names, p);
            let v = if v.is_nan() { f64::NEG_INFINITY } else { v };
            if v < least || least_at.is_empty() {
                (least, least_at) = (v, p.clone());
            }
        }
        let route = format!("evaluation at {} points ({edges} in edge regions)", points.len());
        let detail = format!("smallest at {}", self.at(&least_at));
        let relation = self.text.clone();
        Ok(Decision { relation, measured: least, bound: 0.0, holds: least > 0.0, route, detail, order: None })
    }

    fn limit(&self, f: &Sym, var: &str, equals: &Sym, from: f64, until: f64) -> Decision {
        const STEPS: usize = 24;
        let mut names = self.names();
        names.retain(|n| *n != var);
        let others: Vec<&Domain> = self.domains.iter().filter(|d| d.name != var).collect();
        let mut names_with_var = names.clone();
        names_with_var.push(var);
        let (points, _) =
            SymbolicClaim { domains: others.iter().map(|d| (*d).clone()).collect(), points: 8, ..self.clone() }
                .sample();
        let ratio = (until / from).powf(1.0 / STEPS as f64);
        let ts: Vec<f64> = (0..=STEPS).map(|k| from * ratio.powi(k as i32)).collect();
        // err[k] = worst relative error over the sampled points at t_k.
        let errs: Vec<f64> = ts
            .iter()
            .map(|&t| {
                points
                    .iter()
                    .map(|p| {
                        let mut v = p.clone();
                        v.push(t);
                        let (got, want) = (f.eval(&names_with_var, &v), equals.eval(&names_with_var, &v));
                        let e = (got - want).abs() / 1f64.max(want.abs());
                        if e.is_nan() { f64::INFINITY } else { e }
                    })
                    .fold(0.0, f64::max)
            })
            .collect();
        let last = errs[STEPS];
        // Observed order: slope of ln err against ln |t| (t → 0) or −ln t (t → ∞), over the
        // second half of the sequence.
        let h = |t: f64| if until < from { t.abs() } else { 1.0 / t.abs() };
        let half = STEPS / 2;
        let order = (errs[STEPS].ln() - errs[half].ln()) / (h(ts[STEPS]).ln() - h(ts[half]).ln());
        let decreasing = last < errs[0];
        let route = format!("numeric limit, {var} from {from:e} to {until:e} in {STEPS} geometric steps");
        let detail = format!(
            "at {} points of the other variables: error {:.2e} → {:.2e}, observed order {order:.2} in {}",
            points.len(),
            errs[0],
            last,
            if until < from { format!("|{var}|") } else { format!("1/{var}") }
        );
        Decision {
            relation: self.text.clone(),
            measured: last,
            bound: self.tol,
            holds: decreasing && last <= self.tol,
            route,
            detail,
            order: Some(order),
        }
    }
}

/// Taylor coefficients c_k = f^(k)(at)/k!, k < order, from symbolic derivatives (each
/// within the size limits of [`super::derivative`]).
fn taylor(f: &Sym, var: &str, at: f64, order: u32) -> Result<Vec<f64>, String> {
    let mut g = simplify(f);
    let mut factorial = 1.0;
    let mut out = Vec::new();
    for k in 0..order {
        if k > 0 {
            factorial *= f64::from(k);
            g = super::derivative(&g, var).map_err(|e| format!("derivative {k} of the series: {e}"))?;
        }
        out.push(g.eval(&[var], &[at]) / factorial);
    }
    Ok(out)
}

fn series(f: &Sym, var: &str, at: f64, terms: &Sym, order: u32, tol: f64) -> Result<Decision, String> {
    let (cf, ct) = (taylor(f, var, at, order)?, taylor(terms, var, at, order)?);
    let gap = cf.iter().zip(&ct).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    let gap = if gap.is_nan() { f64::INFINITY } else { gap };
    // Observed order of the remainder f − terms at h = 2^-2 … 2^-7.
    let rem = |h: f64| (f.eval(&[var], &[at + h]) - terms.eval(&[var], &[at + h])).abs();
    let (h1, h2) = (2f64.powi(-2), 2f64.powi(-7));
    let observed = (rem(h1).ln() - rem(h2).ln()) / (h1.ln() - h2.ln());
    let holds = gap <= tol && observed >= f64::from(order) - 0.5;
    let route = format!("Taylor coefficients up to {var}^{} from symbolic derivatives", order - 1);
    let detail = format!(
        "at {var} = {at}: largest coefficient gap {gap:.2e}; remainder shrinks like h^{observed:.2} (h = 2^-2 … 2^-7)"
    );
    Ok(Decision { relation: String::new(), measured: gap, bound: tol, holds, route, detail, order: Some(observed) })
}
