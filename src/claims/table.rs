//! The `check` report: a Markdown table (claim, source, measured, relation, verdict,
//! time), the load errors and known disagreements under it; or the same as JSON.

use std::fmt::Write;

use serde_json::{Value, json};

use super::{ClaimError, ClaimReport, ComparisonReport, Verdict};
use crate::escape::{markdown_cell, markdown_code};

fn num(x: f64) -> String {
    if x == 0.0 || (1e-3..1e4).contains(&x.abs()) {
        format!("{x:.4}").trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{x:.2e}")
    }
}

fn measured(c: &ComparisonReport) -> String {
    let mut s = format!("{} vs {}", num(c.lhs), num(c.rhs));
    if let Some(route) = &c.route {
        let _ = write!(s, " ({route}; {})", c.detail.as_deref().unwrap_or_default());
        return s;
    }
    match (c.p_value, c.effect_size, c.worst_seed) {
        (Some(p), Some(e), _) => {
            let _ = write!(s, " (means; p = {}, d_z = {})", num(p), num(e));
        }
        (_, _, Some(seed)) => {
            let _ = write!(s, " (worst seed {seed})");
        }
        _ => {}
    }
    s
}

/// The Markdown report.
/// One line: how many claims hold, fail, are known disagreements (and how many of those
/// were not reproduced), errors, and files that could not be loaded, with plurals right.
pub fn summary(reports: &[ClaimReport], errors: &[ClaimError]) -> String {
    let count = |v: Verdict| reports.iter().filter(|r| r.verdict == v).count();
    format!(
        "{}: {}, {}, {} ({} not reproduced), {}; {} could not be loaded",
        counted(reports.len(), "claim", "claims"),
        counted(count(Verdict::Holds), "holds", "hold"),
        counted(count(Verdict::Fails), "fails", "fail"),
        counted(
            count(Verdict::KnownDisagreement) + count(Verdict::NotReproduced),
            "known disagreement",
            "known disagreements"
        ),
        count(Verdict::NotReproduced),
        counted(count(Verdict::Error) + count(Verdict::Invalid), "error", "errors"),
        counted(errors.len(), "file", "files"),
    )
}

pub fn markdown(reports: &[ClaimReport], errors: &[ClaimError]) -> String {
    let mut t = String::from("| claim | source | measured | relation | verdict | time |\n|---|---|---|---|---|---|\n");
    for r in reports {
        let m: Vec<String> = r.comparisons.iter().map(measured).collect();
        let rel: Vec<&str> = r.comparisons.iter().map(|c| c.relation.as_str()).collect();
        let m = if m.is_empty() { "–".to_string() } else { markdown_cell(&m.join("; ")) };
        let rel = if rel.is_empty() {
            "–".to_string()
        } else {
            rel.iter().map(|r| markdown_code(r)).collect::<Vec<_>>().join(" and ")
        };
        let (id, source) = (markdown_cell(&r.id), markdown_cell(&r.source));
        let _ = writeln!(t, "| {id} | {source} | {m} | {rel} | {} | {:.1} s |", r.verdict.label(), r.seconds);
    }
    let _ = writeln!(t, "\n{}", summary(reports, errors));
    for r in reports {
        if let Some(e) = &r.error {
            let _ = writeln!(t, "\nerror in {} ({}): {e}", r.id, r.file.display());
        }
        let Some(why) = &r.known_disagreement else { continue };
        let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
        match (r.verdict, r.quick) {
            (Verdict::KnownDisagreement, _) => {
                let _ = writeln!(t, "\nknown disagreement {}: {why}", r.id);
            }
            (Verdict::NotReproduced, true) => {
                let _ = writeln!(
                    t,
                    "\nknown disagreement {} NOT reproduced with the quick seeds ({}): the full run's seeds show it. {why}",
                    r.id,
                    counted(r.seeds, "seed", "seeds")
                );
            }
            (Verdict::NotReproduced, false) => {
                let _ = writeln!(
                    t,
                    "\nknown disagreement {} NOT reproduced: the claim held on all its seeds; the marker in {} may be stale. {why}",
                    r.id,
                    r.file.display()
                );
            }
            _ => {}
        }
    }
    for e in errors {
        let _ = writeln!(t, "\n{e}");
    }
    t
}

/// The JSON report.
pub fn to_json(reports: &[ClaimReport], errors: &[ClaimError]) -> Value {
    let errors: Vec<Value> =
        errors.iter().map(|e| json!({"file": e.file, "line": e.line, "col": e.col, "message": e.message})).collect();
    json!({"claims": reports, "load_errors": errors})
}

/// `1 claim`, `2 claims`.
fn counted(k: usize, one: &str, many: &str) -> String {
    format!("{k} {}", if k == 1 { one } else { many })
}
