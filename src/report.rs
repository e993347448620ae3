//! Tables of a [`Comparison`]: Markdown, CSV, LaTeX (booktabs) and JSON. Over several
//! seeds each cell is the mean and the half-width of a 95% Student-t interval
//! (t_{0.975, K−1} · sd / √K); NaN entries (a column that does not apply) are skipped.

use serde_json::{Value, json};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::compare::{Comparison, Metrics};
use crate::escape;

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

/// How a column prints: fixed notation when every mean in it is 0 or in [1e-3, 1e4),
/// scientific otherwise; `digits` significant digits either way.
#[derive(Debug, Clone, Copy)]
struct Notation {
    fixed: bool,
    digits: usize,
}

impl Notation {
    fn of(means: impl Iterator<Item = f64>, digits: usize) -> Self {
        let fixed = means.filter(|x| x.is_finite()).all(|x| x == 0.0 || (1e-3..1e4).contains(&x.abs()));
        Self { fixed, digits }
    }

    fn show(self, x: f64, digits: usize) -> String {
        if !x.is_finite() {
            return "–".to_owned();
        }
        if x == 0.0 {
            return "0".to_owned();
        }
        if !self.fixed {
            return format!("{x:.*e}", digits.saturating_sub(1));
        }
        // Decimals for `digits` significant digits of x (at least 0).
        let magnitude = if x == 0.0 { 0 } else { x.abs().log10().floor() as i32 };
        let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
        format!("{x:.decimals$}")
    }

    /// mean ± half-width; an interval of zero width (up to rounding: ≤ 1e-12 of the
    /// mean, as for a row that is the same on every seed) prints as the exact value.
    fn cell(self, mean: f64, hw: f64, pm: &str) -> String {
        let exact = !hw.is_finite() || hw <= 1e-12 * mean.abs();
        if exact {
            self.show(mean, self.digits)
        } else {
            format!("{} {pm} {}", self.show(mean, self.digits), self.show(hw, 2))
        }
    }
}

/// Table settings: significant digits of the means (half-widths get 2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableStyle {
    pub digits: usize,
}

impl Default for TableStyle {
    fn default() -> Self {
        Self { digits: 4 }
    }
}

/// Accepted `--digits`.
pub const DIGITS_RANGE: (usize, usize) = (1, 17);

fn notations(cells: &[Vec<(f64, f64)>], style: TableStyle) -> Vec<Notation> {
    (0..COLUMNS.len()).map(|j| Notation::of(cells.iter().map(|row| row[j].0), style.digits)).collect()
}

pub fn render(c: &Comparison, format: Format, style: TableStyle) -> String {
    let cells = summarise(c);
    match format {
        Format::Markdown => markdown(c, &cells, style),
        Format::Csv => csv(c, &cells),
        Format::Latex => latex(c, &cells, style),
        Format::Json => json_value(c, &cells).to_string(),
    }
}

/// The cells of one row in a text format: the numbers, or the flag across the row.
fn row_cells(c: &Comparison, r: usize, row: &[(f64, f64)], cols: &[Notation], pm: &str) -> Vec<String> {
    match &c.flags[r] {
        Some(flag) => {
            let mut v = vec!["–".to_owned(); COLUMNS.len()];
            v[0] = flag.text();
            v
        }
        None => row.iter().zip(cols).map(|((m, h), n)| n.cell(*m, *h, pm)).collect(),
    }
}

fn markdown(c: &Comparison, cells: &[Vec<(f64, f64)>], style: TableStyle) -> String {
    let cols = notations(cells, style);
    let mut s = format!("| method | {} |\n|---|{}\n", COLUMNS.map(|c| c.1).join(" | "), "---:|".repeat(COLUMNS.len()));
    for (r, (label, row)) in c.labels.iter().zip(cells).enumerate() {
        let cells: Vec<String> = row_cells(c, r, row, &cols, "±").iter().map(|t| escape::markdown_cell(t)).collect();
        s += &format!("| {} | {} |\n", escape::markdown_cell(label), cells.join(" | "));
    }
    s
}

/// A number for CSV: the shortest text that reads back to the same f64, positional
/// between 1e-4 and 1e6 and scientific beyond; empty when not finite.
fn csv_num(x: f64) -> String {
    if x.is_finite() { short(x) } else { String::new() }
}

fn csv(c: &Comparison, cells: &[Vec<(f64, f64)>]) -> String {
    let head: Vec<String> = COLUMNS.iter().flat_map(|c| [c.0.to_owned(), format!("{}_ci95", c.0)]).collect();
    let mut s = format!("method,{},status\n", head.join(","));
    for (r, (label, row)) in c.labels.iter().zip(cells).enumerate() {
        let (vals, status): (Vec<String>, String) = match &c.flags[r] {
            Some(flag) => (vec![String::new(); 2 * COLUMNS.len()], flag.text()),
            None => (row.iter().flat_map(|(m, h)| [csv_num(*m), csv_num(*h)]).collect(), String::new()),
        };
        s += &format!("{},{},{}\n", escape::csv_field(label), vals.join(","), escape::csv_field(&status));
    }
    s
}

/// A label in LaTeX: every special character escaped, then the symbols it uses typeset.
fn latex_label(label: &str) -> String {
    escape::latex(label)
        .replace("γ", r"$\gamma$")
        .replace("ℓ1", r"$\ell_1$")
        .replace("ℓ2", r"$\ell_2$")
        .replace("b*", r"$b^\star$")
}

fn latex(c: &Comparison, cells: &[Vec<(f64, f64)>], style: TableStyle) -> String {
    let cols = notations(cells, style);
    let mut s = format!(
        "\\begin{{tabular}}{{l{}}}\n\\toprule\nmethod & {} \\\\\n\\midrule\n",
        "r".repeat(COLUMNS.len()),
        COLUMNS.map(|c| c.2).join(" & ")
    );
    for (r, (label, row)) in c.labels.iter().zip(cells).enumerate() {
        let vals = match &c.flags[r] {
            Some(flag) => {
                format!("\\multicolumn{{{}}}{{l}}{{\\emph{{{}}}}}", COLUMNS.len(), escape::latex(&flag.text()))
            }
            None => row_cells(c, r, row, &cols, r"$\pm$").join(" & "),
        };
        s += &format!("{} & {vals} \\\\\n", latex_label(label));
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
        .enumerate()
        .map(|(r, (label, row))| {
            let mut o = serde_json::Map::new();
            o.insert("method".into(), json!(label));
            let flag = &c.flags[r];
            for ((key, ..), (m, h)) in COLUMNS.iter().zip(row) {
                let shown = |x: f64| if flag.is_some() { Value::Null } else { finite(x) };
                o.insert((*key).into(), shown(*m));
                o.insert(format!("{key}_ci95"), shown(*h));
            }
            o.insert("flag".into(), json!(flag));
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
