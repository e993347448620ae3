//! The theory as data: claim files under `theory/claims/`, each a scenario, named runs
//! and a relation in a small expression language, decided over seeds (every seed, or a
//! paired t-test) and reported as a table.
//!
//! Layers: [`crate::expr`] (parser, shared with the symbolic layer and `solve --potential`) → [`eval`] (types, evaluation) → [`file`] (TOML, checks,
//! line/column errors) → [`run`] (one seed) → this module (decisions, reports).

pub mod author;
pub mod ci;
pub mod eval;
pub mod file;
pub mod run;
pub mod table;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use statrs::distribution::{ContinuousCDF, StudentsT};

pub use file::{Claim, ClaimError, Test, load, parse};

use crate::expr::CmpOp;
use crate::symbolic::check as symbolic_check;

/// A claim's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Holds,
    Fails,
    /// Fails, and the file marks this as a known disagreement with the paper.
    KnownDisagreement,
    /// The file marks a known disagreement, but these seeds did not show it (with
    /// `--quick`'s seeds, or because the marker is stale): not a failure, said plainly.
    NotReproduced,
    /// Could not be measured (a run diverged, a value was not finite, a solver failed).
    Error,
    /// The claim's expressions do not fit the values they met (vectors of different
    /// lengths, a solver argument that is not a d-vector): a defect of the file (exit 2).
    Invalid,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Self::Holds => "holds",
            Self::Fails => "FAILS",
            Self::KnownDisagreement => "disagrees (known)",
            Self::NotReproduced => "holds; known disagreement NOT reproduced",
            Self::Error => "ERROR",
            Self::Invalid => "INVALID",
        }
    }
}

/// How one comparison fared across seeds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ComparisonReport {
    pub relation: String,
    pub op: CmpOp,
    /// every_seed: both sides on the seed with the smallest margin; paired_t: their means.
    pub lhs: f64,
    pub rhs: f64,
    pub holds: bool,
    /// every_seed: the seed shown.
    pub worst_seed: Option<u64>,
    /// paired_t: one-sided p-value of "the margin is ≤ 0", and Cohen's d_z = mean/sd of the margins.
    pub p_value: Option<f64>,
    pub effect_size: Option<f64>,
    /// Symbolic claims: how it was decided, where, and the observed order.
    pub route: Option<String>,
    pub detail: Option<String>,
    pub order: Option<f64>,
}

/// A run's measured threshold, summarised over seeds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThresholdSummary {
    pub run: String,
    /// Mean over seeds of the largest converging stepsize.
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// Everything `check` reports about one claim.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClaimReport {
    pub id: String,
    pub file: PathBuf,
    pub source: String,
    pub statement: String,
    #[serde(flatten)]
    pub test: Test,
    pub seeds: usize,
    /// Run with the quick seeds (`--quick`).
    pub quick: bool,
    pub comparisons: Vec<ComparisonReport>,
    pub thresholds: Vec<ThresholdSummary>,
    pub verdict: Verdict,
    pub error: Option<String>,
    pub known_disagreement: Option<String>,
    pub seconds: f64,
}

/// Runs a claim on its seeds (`quick`: its quick seeds) and decides it; a symbolic
/// claim is decided on its formulas.
pub fn run_claim(claim: &Claim, quick: bool) -> ClaimReport {
    let start = Instant::now();
    let (seeds, comparisons, thresholds, error) = match &claim.symbolic {
        Some(sym) => match symbolic_comparison(sym) {
            Ok(c) => (0, vec![c], Vec::new(), None),
            Err(e) => (0, Vec::new(), Vec::new(), Some(run::SeedError::from(e))),
        },
        None => {
            let seeds = if quick { &claim.quick_seeds } else { &claim.seeds };
            match seeds.par_iter().map(|&s| run::run_seed(claim, s)).collect::<Result<Vec<_>, _>>() {
                Ok(values) => (seeds.len(), decide_all(claim, &values), summarise_thresholds(&values), None),
                Err(e) => (seeds.len(), Vec::new(), Vec::new(), Some(e)),
            }
        }
    };
    let verdict = match (&error, comparisons.iter().all(|c| c.holds), &claim.known_disagreement) {
        (Some(e), _, _) if e.shape => Verdict::Invalid,
        (Some(_), _, _) => Verdict::Error,
        (None, true, Some(_)) => Verdict::NotReproduced,
        (None, true, None) => Verdict::Holds,
        (None, false, Some(_)) => Verdict::KnownDisagreement,
        (None, false, None) => Verdict::Fails,
    };
    ClaimReport {
        id: claim.id.clone(),
        file: claim.file.clone(),
        source: claim.source.clone(),
        statement: claim.statement.clone(),
        test: claim.test,
        seeds,
        quick: quick && claim.symbolic.is_none(),
        comparisons,
        thresholds,
        verdict,
        error: error.map(|e| e.message),
        known_disagreement: claim.known_disagreement.clone(),
        seconds: start.elapsed().as_secs_f64(),
    }
}

fn symbolic_comparison(sym: &symbolic_check::SymbolicClaim) -> Result<ComparisonReport, String> {
    let positive = matches!(sym.statement, symbolic_check::Statement::Positive { .. });
    let d = sym.decide()?;
    Ok(ComparisonReport {
        op: if positive { CmpOp::Gt } else { CmpOp::Le },
        relation: d.relation,
        lhs: d.measured,
        rhs: d.bound,
        holds: d.holds,
        worst_seed: None,
        p_value: None,
        effect_size: None,
        route: Some(d.route),
        detail: Some(d.detail),
        order: d.order,
    })
}

fn decide_all(claim: &Claim, values: &[run::SeedValues]) -> Vec<ComparisonReport> {
    claim
        .comparisons
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let sides: Vec<(u64, f64, f64)> = values.iter().map(|v| (v.seed, v.sides[i].0, v.sides[i].1)).collect();
            decide(claim.texts[i].clone(), c.op, claim.test, &sides)
        })
        .collect()
}

/// Decides `lhs op rhs` from per-seed (seed, lhs, rhs); a claim has at least one seed
/// (one for every_seed, two for paired_t), which loading checks.
fn decide(relation: String, op: CmpOp, test: Test, sides: &[(u64, f64, f64)]) -> ComparisonReport {
    let margins: Vec<f64> = sides.iter().map(|(_, l, r)| op.margin(*l, *r)).collect();
    match test {
        Test::EverySeed => {
            let worst = (0..sides.len()).min_by(|&a, &b| margins[a].total_cmp(&margins[b])).expect("at least one seed");
            let (seed, lhs, rhs) = sides[worst];
            let holds = sides.iter().all(|(_, l, r)| op.holds(*l, *r));
            let (route, detail, order) = (None, None, None);
            ComparisonReport {
                relation,
                op,
                lhs,
                rhs,
                holds,
                worst_seed: Some(seed),
                p_value: None,
                effect_size: None,
                route,
                detail,
                order,
            }
        }
        Test::PairedT { level } => {
            let k = sides.len() as f64;
            let mean = |v: &mut dyn Iterator<Item = f64>| v.sum::<f64>() / k;
            let (lhs, rhs) = (mean(&mut sides.iter().map(|s| s.1)), mean(&mut sides.iter().map(|s| s.2)));
            let (p, effect) = paired_t(&margins);
            ComparisonReport {
                relation,
                op,
                lhs,
                rhs,
                holds: p < level,
                worst_seed: None,
                p_value: Some(p),
                effect_size: Some(effect),
                route: None,
                detail: None,
                order: None,
            }
        }
    }
}

/// One-sided paired t-test of H₀: E[margin] ≤ 0 against E[margin] > 0: the p-value and
/// the effect size d_z = mean/sd. With identical margins, p is 0 (all > 0) or 1.
pub fn paired_t(margins: &[f64]) -> (f64, f64) {
    let k = margins.len() as f64;
    let mean = margins.iter().sum::<f64>() / k;
    let sd = (margins.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
    if sd.is_nan() || sd <= 0.0 {
        return (if mean > 0.0 { 0.0 } else { 1.0 }, mean.signum() * f64::INFINITY);
    }
    let t = mean / (sd / k.sqrt());
    let p = StudentsT::new(0.0, 1.0, k - 1.0).map_or(f64::NAN, |dist| 1.0 - dist.cdf(t));
    (p, mean / sd)
}

fn summarise_thresholds(values: &[run::SeedValues]) -> Vec<ThresholdSummary> {
    let Some(first) = values.first() else { return Vec::new() };
    first
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, (run, _))| {
            let los: Vec<f64> = values.iter().map(|v| v.thresholds[i].1.lo).collect();
            ThresholdSummary {
                run: run.clone(),
                mean: los.iter().sum::<f64>() / los.len() as f64,
                min: los.iter().copied().fold(f64::INFINITY, f64::min),
                max: los.iter().copied().fold(0.0, f64::max),
            }
        })
        .collect()
}

/// The folder of a theory directory's claim files: `DIR/claims`, or `DIR` itself when
/// it has no `claims` folder.
pub fn claims_dir(dir: &Path) -> PathBuf {
    if dir.join("claims").is_dir() { dir.join("claims") } else { dir.to_path_buf() }
}

/// The claim files of a theory directory: `DIR/claims/*.toml` (or `DIR/*.toml` when
/// there is no `claims` folder), in file-name order; ids must be unique.
pub fn load_dir(dir: &Path) -> std::io::Result<Vec<Result<Claim, ClaimError>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(claims_dir(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut loaded: Vec<Result<Claim, ClaimError>> = files.iter().map(|f| load(f)).collect();
    let mut seen = std::collections::BTreeMap::new();
    for c in &mut loaded {
        if let Ok(claim) = c
            && let Some(first) = seen.insert(claim.id.clone(), claim.file.clone())
        {
            let message = format!("claim id `{}` is already used by {}", claim.id, first.display());
            *c = Err(ClaimError { file: claim.file.clone(), line: 1, col: 1, message });
        }
    }
    Ok(loaded)
}

/// Measured values as a snapshot pins them: 2 significant digits; magnitudes below
/// 1e-9 (rounding-level residuals, which vary with the last bits) as `< 1e-9`.
pub fn stable(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x.abs() < 1e-9 {
        return "< 1e-9".into();
    }
    format!("{x:.1e}")
}

/// A claim's report as its snapshot pins it (no timings, values through [`stable`]).
pub fn snapshot_text(r: &ClaimReport) -> String {
    use std::fmt::Write;
    let over = if r.seeds == 0 { "symbolic".to_string() } else { format!("over {} seed(s)", r.seeds) };
    let mut t = format!("claim {}: {} {over}\n", r.id, r.verdict.label());
    for c in &r.comparisons {
        if let Some(route) = &c.route {
            // The bound is the file's constant, shown as written; a measured value far
            // below it (rounding level, whose last bits vary) as `< bound/100`.
            let _ = writeln!(t, "  route: {route}");
            if let Some(order) = c.order {
                let _ = writeln!(t, "  observed order: {order:.1}");
            }
            let verdict = if c.holds { "holds" } else { "fails" };
            let measured = if c.op == CmpOp::Le && c.lhs.abs() < c.rhs / 100.0 {
                format!("< {:e}", c.rhs / 100.0)
            } else {
                format!("{:.1e}", c.lhs)
            };
            let _ = writeln!(t, "  {}: {measured} {} {:e} -> {verdict}", c.relation, c.op.symbol(), c.rhs);
            continue;
        }
        let _ = write!(t, "  {}: {} {} {}", c.relation, stable(c.lhs), c.op.symbol(), stable(c.rhs));
        if let (Some(p), Some(e)) = (c.p_value, c.effect_size) {
            let p = if p < 1e-4 { "< 1e-4".to_string() } else { format!("{p:.1e}") };
            let _ = write!(t, " (p {p}, d_z {})", stable(e));
        }
        let _ = writeln!(t, " -> {}", if c.holds { "holds" } else { "fails" });
    }
    for th in &r.thresholds {
        let _ = writeln!(
            t,
            "  threshold of {}: mean {} (min {}, max {})",
            th.run,
            stable(th.mean),
            stable(th.min),
            stable(th.max)
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(t, "  error: {e}");
    }
    t
}
