//! Tables of a [`Comparison`]: Markdown, CSV, LaTeX (booktabs) and JSON. Over several
//! seeds each cell is the mean and the half-width of a 95% Student-t interval
//! (t_{0.975, K−1} · sd / √K); NaN entries (a column that does not apply) are skipped.

use serde_json::{Value, json};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::compare::{Comparison, Metrics};

/// Output formats of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Csv,
    Latex,
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "md" | "markdown" => Ok(Self::Markdown),
            "csv" => Ok(Self::Csv),
            "latex" | "tex" => Ok(Self::Latex),
            "json" => Ok(Self::Json),
            _ => Err(format!("unknown format `{s}` (md, csv, latex, json)")),
        }
    }
}

/// (key, Markdown header, LaTeX header, value).
type Column = (&'static str, &'static str, &'static str, fn(&Metrics) -> f64);

const COLUMNS: [Column; 8] = [
    ("err", "‖b − b*‖₂", r"$\|b-b^\star\|_2$", |m| m.err),
    ("test_loss", "test loss", "test loss", |m| m.test_loss),
    ("l1", "‖b‖₁", r"$\|b\|_1$", |m| m.l1),
    ("precision", "precision", "precision", |m| m.precision),
    ("recall", "recall", "recall", |m| m.recall),
    ("gain_l1", "‖Gain‖₁", r"$\|\mathrm{Gain}\|_1$", |m| m.gain_l1),
    ("gain_ratio", "Gain on/off supp", r"Gain on/off supp.", |m| m.gain_ratio),
    ("dist_theory", "dist. to theory", "dist.\\ to theory", |m| m.dist_theory),
];

/// Mean and 95% half-width of the finite values (half-width NaN with fewer than 2).
pub fn mean_ci(values: &[f64]) -> (f64, f64) {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let k = v.len();
    if k == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / k as f64;
    if k < 2 {
        return (mean, f64::NAN);
    }
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1) as f64).sqrt();
    let t = StudentsT::new(0.0, 1.0, (k - 1) as f64).map_or(f64::NAN, |d| d.inverse_cdf(0.975));
    (mean, t * sd / (k as f64).sqrt())
}

/// cells[row][column] = (mean, half-width).
fn summarise(c: &Comparison) -> Vec<Vec<(f64, f64)>> {
    (0..c.labels.len())
        .map(|r| {
            COLUMNS
                .iter()
                .map(|(_, _, _, get)| mean_ci(&c.per_seed.iter().map(|s| get(&s[r])).collect::<Vec<_>>()))
                .collect()
        })
        .collect()
}

fn num(x: f64) -> String {
    if !x.is_finite() {
        "–".to_owned()
    } else if x == 0.0 || (1e-3..1e4).contains(&x.abs()) {
        format!("{x:.4}").trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{x:.2e}")
    }
}

fn cell(mean: f64, hw: f64, pm: &str) -> String {
    if hw.is_finite() { format!("{} {pm} {}", num(mean), num(hw)) } else { num(mean) }
}

pub fn render(c: &Comparison, format: Format) -> String {
    let cells = summarise(c);
    match format {
        Format::Markdown => markdown(c, &cells),
        Format::Csv => csv(c, &cells),
        Format::Latex => latex(c, &cells),
        Format::Json => json_value(c, &cells).to_string(),
    }
}

fn markdown(c: &Comparison, cells: &[Vec<(f64, f64)>]) -> String {
    let mut s = format!("| method | {} |\n|---|{}\n", COLUMNS.map(|c| c.1).join(" | "), "---|".repeat(COLUMNS.len()));
    for (label, row) in c.labels.iter().zip(cells) {
        let vals: Vec<String> = row.iter().map(|(m, h)| cell(*m, *h, "±")).collect();
        s += &format!("| {label} | {} |\n", vals.join(" | "));
    }
    s
}

fn csv(c: &Comparison, cells: &[Vec<(f64, f64)>]) -> String {
    let head: Vec<String> = COLUMNS.iter().flat_map(|c| [c.0.to_owned(), format!("{}_ci95", c.0)]).collect();
    let mut s = format!("method,{}\n", head.join(","));
    for (label, row) in c.labels.iter().zip(cells) {
        let vals: Vec<String> = row.iter().flat_map(|(m, h)| [m.to_string(), h.to_string()]).collect();
        s += &format!("\"{}\",{}\n", label.replace('"', "\"\""), vals.join(","));
    }
    s
}

fn latex_label(label: &str) -> String {
    label
        .replace('&', r"\&")
        .replace('%', r"\%")
        .replace('_', r"\_")
        .replace("γ", r"$\gamma$")
        .replace("ℓ1", r"$\ell_1$")
        .replace("ℓ2", r"$\ell_2$")
        .replace("b*", r"$b^\star$")
}

fn latex(c: &Comparison, cells: &[Vec<(f64, f64)>]) -> String {
    let mut s = format!(
        "\\begin{{tabular}}{{l{}}}\n\\toprule\nmethod & {} \\\\\n\\midrule\n",
        "r".repeat(COLUMNS.len()),
        COLUMNS.map(|c| c.2).join(" & ")
    );
    for (label, row) in c.labels.iter().zip(cells) {
        let vals: Vec<String> = row.iter().map(|(m, h)| cell(*m, *h, r"$\pm$")).collect();
        s += &format!("{} & {} \\\\\n", latex_label(label), vals.join(" & "));
    }
    s + "\\bottomrule\n\\end{tabular}\n"
}

/// The comparison as a JSON object: one row per method, each column with its `_ci95`.
pub fn to_json(c: &Comparison) -> Value {
    json_value(c, &summarise(c))
}

fn json_value(c: &Comparison, cells: &[Vec<(f64, f64)>]) -> Value {
    let finite = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    let rows: Vec<Value> = c
        .labels
        .iter()
        .zip(cells)
        .map(|(label, row)| {
            let mut o = serde_json::Map::new();
            o.insert("method".into(), json!(label));
            for ((key, ..), (m, h)) in COLUMNS.iter().zip(row) {
                o.insert((*key).into(), finite(*m));
                o.insert(format!("{key}_ci95"), finite(*h));
            }
            Value::Object(o)
        })
        .collect();
    json!({"rows": rows, "seeds": c.per_seed.len(), "notes": c.notes})
}

/// A number as a short label: the shortest round-trip form between 1e-4 and 1e6,
/// scientific beyond (so γ = 1e300 reads `1e300`, not 301 digits).
pub fn short(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 || (1e-4..1e6).contains(&a) || !x.is_finite() { format!("{x}") } else { format!("{x:e}") }
}
