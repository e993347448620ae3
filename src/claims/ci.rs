//! CI reports of `check`: JUnit XML (one test case per claim, through quick-junit) and
//! one self-contained HTML page (claims table, statements, verdicts, figures inline).

use std::fmt::Write;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{ClaimError, ClaimReport, ComparisonReport, Verdict};
use crate::escape::{html as esc, xml_text};

/// An SVG figure the HTML report shows (as an inert image), with the file it came from.
pub struct Figure {
    pub path: std::path::PathBuf,
    pub name: String,
    pub svg: String,
    /// The claims that name it (their `figures` field).
    pub claims: Vec<String>,
}

impl Figure {
    /// The command that drew it, from the SVG's `<desc>made by: …</desc>` (`plot` and
    /// `figures` write it).
    pub fn made_by(&self) -> Option<&str> {
        let start = self.svg.find("<desc>made by: ")? + "<desc>made by: ".len();
        let len = self.svg[start..].find("</desc>")?;
        Some(&self.svg[start..start + len])
    }
}

/// One comparison as a line: relation, both sides and how it was decided.
fn measured(c: &ComparisonReport) -> String {
    let mut s = format!("{}: {:.4e} vs {:.4e}", c.relation, c.lhs, c.rhs);
    if let (Some(p), Some(d)) = (c.p_value, c.effect_size) {
        let _ = write!(s, " (means; p = {p:.3e}, d_z = {d:.3})");
    }
    if let Some(seed) = c.worst_seed {
        let _ = write!(s, " (worst seed {seed})");
    }
    if let Some(route) = &c.route {
        let _ = write!(s, " ({route})");
    }
    let _ = write!(s, " -> {}", if c.holds { "holds" } else { "fails" });
    s
}

fn measurements(r: &ClaimReport) -> String {
    r.comparisons.iter().map(measured).collect::<Vec<_>>().join("\n")
}

/// JUnit XML: suite `dlncheck`, one test case per claim (failure = the claim fails,
/// error = it could not be measured or its file did not load; a known disagreement
/// passes with a `verdict` property and its explanation in system-out).
pub fn junit(reports: &[ClaimReport], errors: &[ClaimError]) -> String {
    let mut suite = TestSuite::new("dlncheck");
    for r in reports {
        let status = match r.verdict {
            Verdict::Holds | Verdict::KnownDisagreement | Verdict::NotReproduced => TestCaseStatus::success(),
            Verdict::Fails => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(xml_text(&format!("claim {} fails", r.id))).set_description(xml_text(&measurements(r)));
                s
            }
            Verdict::Error | Verdict::Invalid => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(xml_text(r.error.as_deref().unwrap_or_default()));
                s
            }
        };
        let mut case = TestCase::new(xml_text(&r.id), status);
        case.set_classname("claims").set_time(Duration::from_secs_f64(r.seconds.max(0.0)));
        case.add_property(Property::new("verdict", r.verdict.label()));
        case.add_property(Property::new("source", xml_text(&r.source)));
        case.add_property(Property::new("seeds", r.seeds.to_string()));
        let mut out = format!("{}\n\n{}", r.statement, measurements(r));
        if let Some(why) = &r.known_disagreement {
            let _ = write!(out, "\n\nknown disagreement: {}", why.trim());
        }
        case.set_system_out(xml_text(&out));
        suite.add_test_case(case);
    }
    for e in errors {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_message(xml_text(&e.to_string()));
        let name = e.file.file_stem().map_or("?".into(), |s| xml_text(&s.to_string_lossy()));
        let mut case = TestCase::new(name, s);
        case.set_classname("claims");
        suite.add_test_case(case);
    }
    let mut report = Report::new("dlncheck check");
    report.add_test_suite(suite);
    report.to_string().unwrap_or_else(|e| format!("<!-- JUnit serialisation failed: {e} -->\n"))
}

/// One self-contained HTML page: a summary, a table (claim, verdict, measured, time),
/// each claim's statement and explanation, and the given SVG figures inline.
pub fn html(reports: &[ClaimReport], errors: &[ClaimError], figures: &[Figure]) -> String {
    use base64::Engine;
    let mut s = String::from(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<title>dlncheck check</title>\n<style>\n",
        "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}\n",
        "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;",
        "text-align:left;vertical-align:top}\n.holds{color:#176117}.fails,.error{color:#a11;font-weight:bold}",
        ".known{color:#8a5a00}\npre{white-space:pre-wrap;font-size:.85rem}figure{margin:1rem 0}",
        "figure img{max-width:100%;height:auto}\n</style>\n</head>\n<body>\n<h1>dlncheck check</h1>\n"
    ));
    let _ = writeln!(s, "<p id=\"summary\">{}.</p>", esc(&super::table::summary(reports, errors)));
    s += "<table id=\"claims\">\n<thead><tr><th>claim</th><th>verdict</th><th>measured</th><th>time</th></tr></thead>\n<tbody>\n";
    for r in reports {
        let class = match r.verdict {
            Verdict::Holds => "holds",
            Verdict::Fails => "fails",
            Verdict::Error | Verdict::Invalid => "error",
            Verdict::KnownDisagreement | Verdict::NotReproduced => "known",
        };
        let _ = writeln!(
            s,
            "<tr><td><a href=\"#{id}\">{id}</a></td><td class=\"{class}\">{}</td><td><pre>{}</pre></td><td>{:.1} s</td></tr>",
            esc(r.verdict.label()),
            esc(&measurements(r)),
            r.seconds,
            id = esc(&r.id)
        );
    }
    s += "</tbody>\n</table>\n";
    for r in reports {
        let _ = writeln!(s, "<section id=\"{}\">\n<h2>{}</h2>", esc(&r.id), esc(&r.id));
        let _ = writeln!(s, "<p><em>{}</em></p>\n<p>{}</p>", esc(&r.source), esc(&r.statement));
        if let Some(e) = &r.error {
            let _ = writeln!(s, "<p class=\"error\">error: {}</p>", esc(e));
        }
        if let Some(why) = &r.known_disagreement {
            let _ = writeln!(s, "<p class=\"known\">known disagreement: {}</p>", esc(why.trim()));
        }
        s += "</section>\n";
    }
    for e in errors {
        let _ = writeln!(s, "<p class=\"error\">{}</p>", esc(&e.to_string()));
    }
    if !figures.is_empty() {
        s += "<h2>Figures</h2>\n";
    }
    for f in figures {
        // As an image, not inline markup: whatever the SVG holds (scripts, event
        // handlers, links), an <img> shows it inert.
        let data = base64::engine::general_purpose::STANDARD.encode(f.svg.as_bytes());
        let _ = writeln!(
            s,
            "<figure><img src=\"data:image/svg+xml;base64,{data}\" alt=\"{name}\"/><figcaption>{name}, for {claims}; \
             made by <code>{made_by}</code></figcaption></figure>",
            name = esc(&f.name),
            claims = esc(&f.claims.join(", ")),
            made_by = esc(f.made_by().unwrap_or("a command that did not record itself")),
        );
    }
    s + "</body>\n</html>\n"
}
