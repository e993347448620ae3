//! Figures, drawn once as SVG through plotters and written as SVG, PNG and PDF
//! ([`crate::image`], with the bundled font): recovery error, test loss and ‖Gain‖₁
//! against the stepsize for GD and SGD (mean over seeds with a 95% band, thresholds
//! marked), the gain per coordinate as stems with the support of b* marked, and an
//! edge-of-stability run against gradient flow. Log axes (decade ticks, minor ticks at
//! 2…9) where the data span more than a decade; the legend sits beside the plot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nalgebra::DVector;
use plotters::prelude::*;

use crate::image::{FigureOutput, FigureSize};
use crate::problem::{Problem, ProblemSpec};
use crate::sweep::CellResult;
use crate::threshold::{ThresholdSettings, threshold};
use crate::train::{Batching, Stepsizes, TrainConfig, train};

/// One curve.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub dashed: bool,
    pub markers: bool,
    /// Draw each point as a stem from 0 (discrete coordinates), not joined by lines.
    pub stems: bool,
    /// (x, lower, upper) of a shaded band around the curve (a 95% interval over seeds).
    pub band: Vec<(f64, f64, f64)>,
    /// Points drawn hollow over the curve (a run behind them stopped unconverged).
    pub hollow: Vec<(f64, f64)>,
}

impl Series {
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>, color: RGBColor) -> Self {
        Self {
            label: label.into(),
            points,
            color,
            dashed: false,
            markers: false,
            stems: false,
            band: Vec::new(),
            hollow: Vec::new(),
        }
    }
}

/// A 2-D figure: curves, labelled vertical lines, axis labels.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// (x, label, colour) of vertical dashed lines (thresholds), drawn above the grid.
    pub vlines: Vec<(f64, String, RGBColor)>,
    /// Also write each vertical line's label (up to " (") at its top, not only in the
    /// legend (thresholds; not the support's many lines).
    pub tag_vlines: bool,
    /// Force a log (true) or linear (false) y axis; by default log when the data span
    /// more than a decade.
    pub y_log: Option<bool>,
    /// A line under the legend (e.g. how many seeds the curves average).
    pub note: String,
}

pub const GD_COLOR: RGBColor = RGBColor(200, 40, 40);
pub const SGD_COLOR: RGBColor = RGBColor(30, 90, 200);
pub const SUPPORT_COLOR: RGBColor = RGBColor(40, 150, 60);
const GRID: RGBColor = RGBColor(225, 225, 225);
const MINOR_GRID: RGBColor = RGBColor(243, 243, 243);

/// Where the legend goes: a panel beside the plot (this wide, in px), or below it.
#[derive(Debug, Clone, Copy)]
enum LegendAt {
    Beside(u32),
    Below,
}

/// A figure's drawing at its print size, in SVG units of 1/96 in (so text of p points
/// is 4p/3 units high whatever the size). Font sizes are as asked of plotters (×1.24).
#[derive(Debug, Clone, Copy)]
struct Layout {
    width: u32,
    plot_height: u32,
    legend: LegendAt,
    /// Font sizes in units: ticks, axis titles, the figure title, legend and note.
    tick: f64,
    axis: f64,
    title: f64,
    text: f64,
    /// Line width and marker radius in units.
    line: u32,
    marker: u32,
}

const PX_PER_PT: f64 = 96.0 / 72.0;
/// plotters writes a font of size s as SVG font-size s/1.24: sizes asked of it are
/// scaled by this so that the SVG has the sizes of the layout.
const PLOTTERS_EM: f64 = 1.24;

impl Layout {
    fn of(size: FigureSize) -> Self {
        // Whole sizes, rounded up: plotters truncates some (tick labels) to integers.
        let pt = |p: f64| (p * PX_PER_PT * PLOTTERS_EM).ceil();
        let inch = |i: f64| (i * 96.0).round() as u32;
        match size {
            FigureSize::Column => Self {
                width: inch(3.25),
                plot_height: inch(2.3),
                legend: LegendAt::Below,
                tick: pt(8.0),
                axis: pt(8.5),
                title: pt(9.0),
                text: pt(8.0),
                line: 2,
                marker: 3,
            },
            FigureSize::Page => Self {
                width: inch(6.75),
                plot_height: inch(3.4),
                legend: LegendAt::Beside(inch(2.1)),
                tick: pt(9.0),
                axis: pt(9.5),
                title: pt(10.5),
                text: pt(8.5),
                line: 2,
                marker: 3,
            },
            FigureSize::Slide => Self {
                width: inch(10.0),
                plot_height: inch(5.0),
                legend: LegendAt::Beside(inch(3.1)),
                tick: pt(15.0),
                axis: pt(16.0),
                title: pt(18.0),
                text: pt(13.0),
                line: 3,
                marker: 5,
            },
        }
    }

    /// The plot panel's width.
    fn plot_width(&self) -> u32 {
        match self.legend {
            LegendAt::Beside(w) => self.width - w,
            LegendAt::Below => self.width,
        }
    }

    /// A tick label's width in units (digits and × in DejaVu Sans are about 0.6 em;
    /// `font` as asked of plotters).
    fn text_width(chars: usize, font: f64) -> f64 {
        chars as f64 * 0.6 * font / PLOTTERS_EM
    }

    /// A line of prose's width in units (about 0.52 em a character).
    fn prose_width(chars: usize, font: f64) -> f64 {
        chars as f64 * 0.52 * font / PLOTTERS_EM
    }

    /// How many labelled ticks fit along an axis of `length` units whose labels are
    /// at most `chars` characters wide (x) or one line high (y).
    fn tick_budget(&self, length: f64, chars: usize, horizontal: bool) -> usize {
        let each = if horizontal { Self::text_width(chars, self.tick) + 1.5 * self.tick } else { 2.2 * self.tick };
        ((length / each).floor() as usize).max(2)
    }
}

/// Linear tick labels: plain decimals, trailing zeros dropped.
fn tick(v: &f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Log tick labels: 10 with a superscript exponent at decades (10⁻³), m×10ᵉ between.
fn log_tick(v: &f64) -> String {
    let e = v.log10().floor() as i32;
    let m = v / 10f64.powi(e);
    let (m, e) = if (m - m.round()).abs() < 1e-9 && m.round() >= 10.0 { (1.0, e + 1) } else { (m, e) };
    let sup: String = e
        .to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            d => ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'][d.to_digit(10).unwrap_or(0) as usize],
        })
        .collect();
    if (m - 1.0).abs() < 1e-9 {
        format!("10{sup}")
    } else {
        format!("{}×10{sup}", tick(&((m * 100.0).round() / 100.0)))
    }
}

/// Subscript digits for labels (β₃).
pub fn subscript(k: usize) -> String {
    k.to_string()
        .chars()
        .map(|c| ['₀', '₁', '₂', '₃', '₄', '₅', '₆', '₇', '₈', '₉'][c as usize - '0' as usize])
        .collect()
}

/// Labelled (bold) and light ticks of a log axis over [lo, hi], at least two and only
/// as many as `fits` accepts (labels that do not overlap) where possible: the first that fits of 1…9 × decades (within
/// one decade), 1, 2, 5 × (up to three decades), 1, 3 ×, then every decade or every
/// k-th; within one decade holding fewer than two of 1…9 ×, steps of 0.5, 0.2 or 0.1
/// in the mantissa. The other 1…9 × decades are light. Nothing when [lo, hi] is not a positive finite range (a
/// linear axis, or no data): only finite doubles' decades are counted, so it always ends.
fn log_points(lo: f64, hi: f64, fits: &dyn Fn(&[f64]) -> bool) -> (Vec<f64>, Vec<f64>) {
    if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
        return (Vec::new(), Vec::new());
    }
    let (a, b) = (lo.log10().floor().max(-330.0) as i32, hi.log10().ceil().min(310.0) as i32);
    let within = |v: &f64| (lo..=hi).contains(v);
    let multiples = |ms: &[f64]| {
        (a..=b).flat_map(|e| ms.iter().map(move |&m| m * 10f64.powi(e))).filter(within).collect::<Vec<_>>()
    };
    let ones: Vec<f64> = (1..10).map(f64::from).collect();
    let decades = multiples(&[1.0]).len();
    let all = multiples(&ones);
    let light = |keys: &[f64]| -> Vec<f64> {
        let pool = if decades <= 12 { all.clone() } else { multiples(&[1.0]) };
        pool.into_iter().filter(|v| !keys.contains(v)).collect()
    };
    let fine =
        |step: f64| multiples(&(0..).map(|k| 1.0 + step * k as f64).take_while(|m| *m < 10.0).collect::<Vec<_>>());
    let pick = |sets: Vec<Vec<f64>>| sets.into_iter().find(|k| k.len() >= 2 && fits(k));
    let (twos, threes) = (multiples(&[1.0, 2.0, 5.0]), multiples(&[1.0, 3.0]));
    let keys = match decades {
        0 | 1 if all.len() >= 2 => pick(vec![all.clone(), twos, threes]),
        0 | 1 => pick(vec![fine(0.5), fine(0.2), fine(0.1)]),
        2 | 3 => pick(vec![twos, threes]),
        _ => None,
    };
    if let Some(keys) = keys {
        let rest = light(&keys);
        return (keys, rest);
    }
    let every_kth = |k: i32| -> Vec<f64> {
        let aligned: Vec<f64> =
            (a..=b).filter(|e| e.rem_euclid(k) == 0).map(|e| 10f64.powi(e)).filter(within).collect();
        // Aligned to 10⁰ the multiples of k may miss the range: then every k-th from its first decade.
        if aligned.len() >= 2 { aligned } else { multiples(&[1.0]).into_iter().step_by(k as usize).collect() }
    };
    let every = (1..=decades.max(1) as i32)
        .map(every_kth)
        .find(|k| fits(k))
        .unwrap_or_else(|| every_kth(decades.max(1) as i32));
    let rest = light(&every);
    (every, rest)
}

/// Whether labels at `keys` on a log axis over [lo, hi] of `length` units keep apart:
/// each neighbour pair at least the mean of their `extent`s (width or height) apart.
fn log_gaps(keys: &[f64], lo: f64, hi: f64, length: f64, extent: &dyn Fn(f64) -> f64) -> bool {
    let scale = length / (hi / lo).log10();
    keys.windows(2).all(|w| scale * (w[1] / w[0]).log10() >= 0.5 * (extent(w[0]) + extent(w[1])))
}

/// A positive range spanning more than a decade is drawn on a log axis.
fn wants_log(values: impl Iterator<Item = f64> + Clone) -> bool {
    let (lo, hi) = values.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    lo > 0.0 && hi / lo > 10.0
}

/// Most decades a log axis spans; values further below its top are left off the axis.
const MAX_DECADES: f64 = 40.0;
/// Values beyond ±1e300 are left off every axis (their padding would overflow).
const MAX_ABS: f64 = 1e300;

/// The axis range of `values`, bounded so that drawing it always ends: at most
/// [`MAX_DECADES`] decades on a log axis, nothing beyond ±[`MAX_ABS`].
fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && v.abs() <= MAX_ABS && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (if log { 0.1 } else { 0.0 }, 1.0);
    }
    if log {
        (lo.max(hi / 10f64.powf(MAX_DECADES)) / 1.3, hi * 1.3)
    } else {
        let pad = 0.05 * (hi - lo).max(1e-12 * hi.abs().max(1.0));
        (lo - pad, hi + pad)
    }
}

macro_rules! draw_on {
    ($area:expr, $fig:expr, $l:expr, $labels:expr, $xr:expr, $yr:expr, $xfmt:expr, $yfmt:expr, $ylo:expr, $yhi:expr) => {{
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let l: &Layout = $l;
        let mut chart = ChartBuilder::on($area)
            .caption(&$fig.title, ("sans-serif", l.title))
            .margin(l.tick * 0.8)
            .x_label_area_size(l.tick * 1.4 + l.axis * 1.6)
            .y_label_area_size(Layout::text_width($labels.2, l.tick) + l.axis * 2.2)
            .build_cartesian_2d($xr, $yr)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc($fig.x_label.as_str())
            .y_desc($fig.y_label.as_str())
            .x_labels($labels.0)
            .y_labels($labels.1)
            .bold_line_style(GRID)
            .light_line_style(MINOR_GRID)
            .x_label_formatter($xfmt)
            .y_label_formatter($yfmt)
            .label_style(("sans-serif", l.tick))
            .axis_desc_style(("sans-serif", l.axis))
            .draw()
            .map_err(|e| err(&e))?;
        for s in &$fig.series {
            if s.band.is_empty() {
                continue;
            }
            let mut poly: Vec<(f64, f64)> = s.band.iter().map(|b| (b.0, b.2.min($yhi))).collect();
            poly.extend(s.band.iter().rev().map(|b| (b.0, b.1.max($ylo))));
            chart.draw_series(std::iter::once(Polygon::new(poly, s.color.mix(0.15).filled()))).map_err(|e| err(&e))?;
        }
        for s in &$fig.series {
            let color = s.color;
            let pts: Vec<(f64, f64)> =
                s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            let style = color.stroke_width(l.line);
            if s.stems {
                let base = 0f64.max($ylo);
                chart
                    .draw_series(
                        pts.iter().map(|&(x, y)| PathElement::new(vec![(x, base), (x, y)], color.stroke_width(l.line))),
                    )
                    .map_err(|e| err(&e))?;
            } else if s.dashed {
                chart.draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style)).map_err(|e| err(&e))?;
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), style)).map_err(|e| err(&e))?;
            }
            if s.markers || s.stems {
                chart
                    .draw_series(pts.iter().map(|p| Circle::new(*p, l.marker, color.filled())))
                    .map_err(|e| err(&e))?;
            }
            let hollow = s.hollow.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite());
            chart
                .draw_series(hollow.clone().map(|p| Circle::new(p, l.marker + 2, WHITE.filled())))
                .map_err(|e| err(&e))?;
            chart
                .draw_series(hollow.map(|p| Circle::new(p, l.marker + 2, color.stroke_width(l.line))))
                .map_err(|e| err(&e))?;
        }
        // Thresholds last: above the grid and the bands, labelled at the top.
        for (x, label, color) in &$fig.vlines {
            chart
                .draw_series(DashedLineSeries::new(vec![(*x, $ylo), (*x, $yhi)], 8, 5, color.stroke_width(l.line)))
                .map_err(|e| err(&e))?;
            let short = label.split(" (").next().unwrap_or(label).to_string();
            if short.is_empty() || !$fig.tag_vlines {
                continue;
            }
            chart
                .draw_series(std::iter::once(Text::new(
                    short,
                    (*x, $yhi),
                    ("sans-serif", l.text).into_font().color(color),
                )))
                .map_err(|e| err(&e))?;
        }
    }};
}

/// One legend entry: a sample of the line (dashed, with a marker or a band as drawn).
struct Entry {
    label: String,
    color: RGBColor,
    dashed: bool,
    marker: bool,
    band: bool,
}

fn entries(fig: &Figure) -> Vec<Entry> {
    let mut v: Vec<Entry> = fig
        .series
        .iter()
        .filter(|s| !s.label.is_empty())
        .map(|s| Entry {
            label: s.label.clone(),
            color: s.color,
            dashed: s.dashed,
            marker: s.markers || s.stems,
            band: !s.band.is_empty(),
        })
        .collect();
    v.extend(fig.vlines.iter().filter(|v| !v.1.is_empty()).map(|(_, label, color)| Entry {
        label: label.clone(),
        color: *color,
        dashed: true,
        marker: false,
        band: false,
    }));
    v
}

/// The legend laid out in a given width: entries in as many columns as fit (one
/// beside the plot), labels and the note wrapped to that width.
struct LegendBox {
    entries: Vec<(Entry, Vec<String>)>,
    columns: usize,
    column_width: f64,
    note: Vec<String>,
    font: f64,
    line_width: u32,
    marker: u32,
}

impl LegendBox {
    fn new(fig: &Figure, l: &Layout, width: f64) -> Self {
        let font = l.text;
        let sample = 3.2 * font;
        let entries = entries(fig);
        let longest = entries.iter().map(|e| e.label.chars().count()).max().unwrap_or(0);
        let natural = sample + Layout::prose_width(longest, font) + 1.5 * font;
        let columns = ((width / natural).floor() as usize).clamp(1, entries.len().max(1));
        let column_width = width / columns as f64;
        let chars = |w: f64| ((w / Layout::prose_width(1, font)).floor() as usize).max(8);
        let label_chars = chars(column_width - sample);
        let entries = entries
            .into_iter()
            .map(|e| {
                let lines = wrap(&e.label, label_chars);
                (e, lines)
            })
            .collect();
        let note = fig.note.lines().flat_map(|line| wrap(line, chars(width))).collect();
        Self { entries, columns, column_width, note, font, line_width: l.line, marker: l.marker }
    }

    fn line(&self) -> f64 {
        1.1 * self.font
    }

    /// The entries' rows: each as tall as its longest wrapped label.
    fn rows(&self) -> impl Iterator<Item = &[(Entry, Vec<String>)]> {
        self.entries.chunks(self.columns)
    }

    fn height(&self) -> f64 {
        let rows: f64 = self.rows().map(|r| self.row_height(r)).sum();
        rows + self.note.len() as f64 * self.line() + self.font
    }

    fn row_height(&self, row: &[(Entry, Vec<String>)]) -> f64 {
        row.iter().map(|e| e.1.len().max(1)).max().unwrap_or(1) as f64 * self.line() + 0.35 * self.font
    }

    /// Draws the legend from (left, top) of `area`: dash patterns as drawn.
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        left: f64,
        top: f64,
    ) -> Result<(), String> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let font = ("sans-serif", self.font).into_font();
        let px = |v: f64| v.round() as i32;
        let mut y = top;
        for row in self.rows() {
            for (c, (e, lines)) in row.iter().enumerate() {
                let x0 = left + c as f64 * self.column_width;
                let (a, b) = (px(x0), px(x0 + 2.6 * self.font));
                let mid = px(y + 0.5 * self.line());
                if e.band {
                    let h = px(0.45 * self.font);
                    area.draw(&Rectangle::new([(a, mid - h), (b, mid + h)], e.color.mix(0.15).filled()))
                        .map_err(err)?;
                }
                let style = e.color.stroke_width(self.line_width);
                if e.dashed {
                    let third = (b - a) / 3;
                    for (s, t) in [(a, a + third - 2), (a + third + 2, b - third - 2), (b - third + 2, b)] {
                        area.draw(&PathElement::new(vec![(s, mid), (t, mid)], style)).map_err(err)?;
                    }
                } else {
                    area.draw(&PathElement::new(vec![(a, mid), (b, mid)], style)).map_err(err)?;
                }
                if e.marker {
                    area.draw(&Circle::new(((a + b) / 2, mid), self.marker, e.color.filled())).map_err(err)?;
                }
                for (k, text) in lines.iter().enumerate() {
                    let at = (px(x0 + 3.2 * self.font), px(y + k as f64 * self.line() + 0.15 * self.font));
                    area.draw(&Text::new(text.clone(), at, font.clone())).map_err(err)?;
                }
            }
            y += self.row_height(row);
        }
        let grey = ("sans-serif", self.font).into_font().color(&RGBColor(90, 90, 90));
        for line in &self.note {
            area.draw(&Text::new(line.clone(), (px(left), px(y + 0.15 * self.font)), grey.clone())).map_err(err)?;
            y += self.line();
        }
        Ok(())
    }
}

/// `text` broken at spaces into lines of at most `chars` characters (longer words alone).
fn wrap(text: &str, chars: usize) -> Vec<String> {
    textwrap::wrap(text, chars).into_iter().map(|c| c.into_owned()).collect()
}

/// Writes the figure as `stem.svg`, `.png`, `.pdf` (those asked for) from one drawing at
/// the size asked for.
pub fn render(fig: &Figure, stem: &Path, out: FigureOutput) -> Result<Vec<PathBuf>, String> {
    let mut svg = String::new();
    draw(fig, &mut svg, &Layout::of(out.size))?;
    crate::image::write_all(&with_provenance(&svg), stem, out.formats)
}

/// The SVG with the command that drew it as its `<desc>` (`made by: dlncheck …`), which
/// the HTML report of `check` prints under the figure.
fn with_provenance(svg: &str) -> String {
    let mut command: Vec<String> = std::env::args().collect();
    if let Some(program) = command.first_mut() {
        *program = program.rsplit('/').next().unwrap_or("dlncheck").to_owned();
    }
    let desc = format!("<desc>made by: {}</desc>", crate::escape::xml_text(&command.join(" ")));
    match svg.find("<svg").and_then(|i| svg[i..].find('>').map(|j| i + j + 1)) {
        Some(at) => format!("{}\n{desc}{}", &svg[..at], &svg[at..]),
        None => svg.to_owned(),
    }
}

/// The figure with a title that fits the plot's width: at the title font, else at the
/// text font, else with its parenthetical moved to the note's first line.
fn fit_title(fig: &Figure, l: &Layout) -> (Figure, Layout) {
    let width = f64::from(l.plot_width()) - 2.0 * l.tick;
    let fits = |title: &str, font: f64| Layout::prose_width(title.chars().count(), font) <= width;
    let mut fig = fig.clone();
    if fits(&fig.title, l.title) {
        return (fig, *l);
    }
    let smaller = Layout { title: l.text, ..*l };
    if let (false, Some((head, tail))) = (fits(&fig.title, l.text), fig.title.split_once(" (")) {
        let tail = tail.strip_suffix(')').unwrap_or(tail);
        fig.note = if fig.note.is_empty() { tail.to_string() } else { format!("{tail}\n{}", fig.note) };
        fig.title = head.to_string();
        if fits(&fig.title, l.title) {
            return (fig, *l);
        }
    }
    (fig, smaller)
}

fn draw(fig: &Figure, svg: &mut String, l: &Layout) -> Result<(), String> {
    let (fig, l) = fit_title(fig, l);
    let (fig, l) = (&fig, &l);
    let xs = fig.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(fig.vlines.iter().map(|v| v.0));
    let ys = fig.series.iter().flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().flat_map(|b| [b.1, b.2])));
    let stems = fig.series.iter().any(|s| s.stems);
    let x_log = !stems && wants_log(xs.clone());
    let y_log = fig.y_log.unwrap_or_else(|| wants_log(ys.clone()));
    let ((x0, x1), (y0, y1)) = (range(xs, x_log), range(ys.chain(stems.then_some(0.0)), y_log));
    let pad = l.text;
    let legend = match l.legend {
        LegendAt::Beside(w) => LegendBox::new(fig, l, f64::from(w) - pad),
        LegendAt::Below => LegendBox::new(fig, l, f64::from(l.width) - 2.0 * pad),
    };
    let top = 2.5 * l.title;
    let height = match l.legend {
        LegendAt::Beside(_) => l.plot_height.max((top + legend.height()).ceil() as u32),
        LegendAt::Below => l.plot_height + legend.height().ceil() as u32,
    };
    let root = SVGBackend::with_string(svg, (l.width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (plot, side) = match l.legend {
        LegendAt::Beside(_) => root.split_horizontally(l.plot_width()),
        LegendAt::Below => root.split_vertically(l.plot_height),
    };
    // Labelled ticks that fit the axes (the label areas and margins as draw_on! sets them).
    let y_len = f64::from(l.plot_height) - 2.0 * l.title - 3.0 * l.tick - 1.6 * l.axis;
    let y_budget = l.tick_budget(y_len, 1, false);
    let y_fits = |keys: &[f64]| log_gaps(keys, y0, y1, y_len, &|_| 2.0 * l.tick / PLOTTERS_EM);
    let (yk, yl) = if y_log { log_points(y0, y1, &y_fits) } else { Default::default() };
    // The y labels' width: the longest drawn on a log axis, six characters on a linear one.
    let y_chars = if y_log { yk.iter().map(|v| log_tick(v).chars().count()).max().unwrap_or(4) } else { 6 };
    let x_len = f64::from(l.plot_width()) - Layout::text_width(y_chars, l.tick) - 2.2 * l.axis - 2.0 * l.tick;
    let x_budget = l.tick_budget(x_len, 4, true);
    let x_fits = |keys: &[f64]| {
        log_gaps(keys, x0, x1, x_len, &|v| Layout::text_width(log_tick(&v).chars().count(), l.tick) + l.tick)
    };
    let (xk, xl) = if x_log { log_points(x0, x1, &x_fits) } else { Default::default() };
    // plotters thins key points to the label count it is given: on a log axis, all of ours.
    let count = |log: bool, keys: &[f64], budget: usize| if log { keys.len().max(1) } else { budget };
    let labels = (count(x_log, &xk, x_budget), count(y_log, &yk, y_budget), y_chars);
    match (x_log, y_log) {
        (true, true) => draw_on!(
            &plot,
            fig,
            l,
            labels,
            (x0..x1).log_scale().with_key_points(xk).with_light_points(xl),
            (y0..y1).log_scale().with_key_points(yk).with_light_points(yl),
            &log_tick,
            &log_tick,
            y0,
            y1
        ),
        (true, false) => {
            draw_on!(
                &plot,
                fig,
                l,
                labels,
                (x0..x1).log_scale().with_key_points(xk).with_light_points(xl),
                y0..y1,
                &log_tick,
                &tick,
                y0,
                y1
            )
        }
        (false, true) => {
            draw_on!(
                &plot,
                fig,
                l,
                labels,
                x0..x1,
                (y0..y1).log_scale().with_key_points(yk).with_light_points(yl),
                &tick,
                &log_tick,
                y0,
                y1
            )
        }
        (false, false) => draw_on!(&plot, fig, l, labels, x0..x1, y0..y1, &tick, &tick, y0, y1),
    }
    match l.legend {
        LegendAt::Beside(_) => legend.draw(&side, pad * 0.5, top)?,
        LegendAt::Below => legend.draw(&side, pad, 0.3 * pad)?,
    }
    root.present().map_err(|e| e.to_string())
}

fn algo_label(batch: Option<usize>) -> String {
    match batch {
        None => "GD".into(),
        Some(m) => format!("SGD (batch {m})"),
    }
}

fn algo_color(batch: Option<usize>) -> RGBColor {
    match batch {
        None => GD_COLOR,
        Some(1) => SGD_COLOR,
        Some(m) => [RGBColor(130, 60, 170), SUPPORT_COLOR, RGBColor(220, 130, 0), RGBColor(120, 80, 40)]
            [m.saturating_sub(2) % 4],
    }
}

/// One series of a sweep figure: whatever the grid varies besides the stepsize and the
/// seed (the feature mean has figures of its own): the algorithm with its batch, and α.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    batch: Option<usize>,
    alpha_bits: u64,
}

/// Per series: at each grid step the geometric mean over seeds with a 95% Student-t
/// interval of the log values (a band that lives on a log axis), the steps with an
/// unconverged run, the mean threshold, and the number of seeds.
struct Curve {
    points: Vec<(f64, f64)>,
    band: Vec<(f64, f64, f64)>,
    hollow: Vec<(f64, f64)>,
    threshold: Option<f64>,
    seeds: usize,
}
type Curves = BTreeMap<SeriesKey, Curve>;
/// Grid step (as bits) → the seeds' (x, value, converged).
type ByStep = BTreeMap<u64, Vec<(f64, f64, bool)>>;
/// A traced point: (time γk, loss, b).
type Sample = (f64, f64, Vec<f64>);

/// The curves of `value` over finished cells; x is the fraction of each seed's threshold
/// when the grid gives fractions (`fraction_axis`), else the stepsize.
fn curves(cells: &[&CellResult], fraction_axis: bool, value: impl Fn(&CellResult) -> Option<f64>) -> Curves {
    let mut by_series: BTreeMap<SeriesKey, ByStep> = BTreeMap::new();
    let mut thresholds: BTreeMap<SeriesKey, Vec<f64>> = BTreeMap::new();
    let mut seeds: BTreeMap<SeriesKey, std::collections::BTreeSet<u64>> = BTreeMap::new();
    for c in cells {
        let key = SeriesKey { batch: c.batch, alpha_bits: c.alpha.to_bits() };
        let x = if fraction_axis { c.fraction.unwrap_or(f64::NAN) } else { c.stepsize };
        // Group by the grid step: the fraction (or γ) as exact bits.
        let step = c.fraction.unwrap_or(c.stepsize).to_bits();
        if let Some(v) = value(c).filter(|v| *v > 0.0 && v.is_finite()) {
            by_series.entry(key).or_default().entry(step).or_default().push((x, v, c.converged));
            seeds.entry(key).or_default().insert(c.seed);
        }
        if let Some(t) = c.threshold {
            thresholds.entry(key).or_default().push(t);
        }
    }
    by_series
        .into_iter()
        .map(|(key, steps)| {
            let mut rows: Vec<(f64, f64, f64, bool)> = steps
                .values()
                .map(|v| {
                    let x = v.iter().map(|p| p.0).sum::<f64>() / v.len() as f64;
                    let logs: Vec<f64> = v.iter().map(|p| p.1.ln()).collect();
                    let (mean, hw) = crate::report::mean_ci(&logs);
                    (x, mean, if hw.is_finite() { hw } else { 0.0 }, v.iter().all(|p| p.2))
                })
                .collect();
            rows.sort_by(|a, b| a.0.total_cmp(&b.0));
            let threshold = thresholds.get(&key).map(|t| t.iter().sum::<f64>() / t.len() as f64);
            let curve = Curve {
                points: rows.iter().map(|r| (r.0, r.1.exp())).collect(),
                band: rows.iter().filter(|r| r.2 > 0.0).map(|r| (r.0, (r.1 - r.2).exp(), (r.1 + r.2).exp())).collect(),
                hollow: rows.iter().filter(|r| !r.3).map(|r| (r.0, r.1.exp())).collect(),
                threshold,
                seeds: seeds.get(&key).map_or(0, |s| s.len()),
            };
            (key, curve)
        })
        .collect()
}

/// How many cells of a figure's data stopped unconverged or diverged, of how many.
#[derive(Debug, Clone, Copy)]
struct CellCounts {
    unconverged: usize,
    diverged: usize,
    total: usize,
}

fn stepsize_figure(title: String, y_label: &str, curves: Curves, fraction_axis: bool, n: CellCounts) -> Figure {
    let x_label = if fraction_axis { "γ / θ (each seed's own threshold θ)" } else { "stepsize γ" };
    let mut fig = Figure {
        title,
        x_label: x_label.into(),
        y_label: y_label.into(),
        y_log: Some(true),
        tag_vlines: true,
        ..Figure::default()
    };
    let alphas: std::collections::BTreeSet<u64> = curves.keys().map(|k| k.alpha_bits).collect();
    let mut seeds = Vec::new();
    for (key, c) in curves {
        let color = algo_color(key.batch);
        let alpha_index = alphas.iter().position(|a| *a == key.alpha_bits).unwrap_or(0);
        let label = match alphas.len() {
            1 => algo_label(key.batch),
            _ => format!("{}, α = {}", algo_label(key.batch), f64::from_bits(key.alpha_bits)),
        };
        let mut s = Series::line(label.clone(), c.points, color);
        (s.markers, s.dashed, s.band, s.hollow) = (true, alpha_index % 2 == 1, c.band, c.hollow);
        fig.series.push(s);
        seeds.push(c.seeds);
        if let (Some(t), false) = (c.threshold, fraction_axis) {
            fig.vlines.push((t, format!("θ {label} (mean threshold)"), color));
        }
    }
    seeds.sort_unstable();
    seeds.dedup();
    let mut note = match seeds.as_slice() {
        [1] => "points: one seed (no band)".to_string(),
        s => {
            let k = s.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("/");
            format!("points: geometric mean over {k} seeds\nband: 95% t-interval of log values")
        }
    };
    if n.unconverged > 0 {
        note += "\nhollow: a run stopped unconverged";
    }
    note += &format!("\n{} of {} cells unconverged, {} diverged (not drawn)", n.unconverged, n.total, n.diverged);
    if !fraction_axis {
        note += "\nθ: convergence threshold";
    }
    fig.note = note;
    fig
}

/// The sweep figures, one set per feature mean: recovery error, test loss and ‖Gain‖₁
/// against γ, and the gain per coordinate of GD and SGD (seed 0, the grid step nearest
/// 0.5 θ), each in every format and at the size of `out`.
pub fn sweep_figures(results: &[CellResult], dir: &Path, out: FigureOutput) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut means: Vec<f64> = results.iter().map(|r| r.mean).collect();
    means.sort_by(f64::total_cmp);
    means.dedup();
    let mut written = Vec::new();
    for mean in means {
        let all: Vec<&CellResult> = results.iter().filter(|r| r.mean == mean).collect();
        let cells: Vec<&CellResult> = all.iter().copied().filter(|r| !r.diverged).collect();
        let fraction_axis = cells.iter().all(|c| c.fraction.is_some());
        let counts = CellCounts {
            unconverged: cells.iter().filter(|c| !c.converged).count(),
            diverged: all.len() - cells.len(),
            total: all.len(),
        };
        let data = if mean == 0.0 { "centred".to_string() } else { format!("uncentred, feature mean {mean}") };
        let tag = if mean == 0.0 { "centred".to_string() } else { format!("mean{mean}") };
        let figures = [
            (
                "error_vs_stepsize",
                "Recovery error vs stepsize",
                "‖β∞ − β*‖₂",
                curves(&cells, fraction_axis, |c| c.error),
            ),
            (
                "test_loss_vs_stepsize",
                "Test loss vs stepsize",
                "test loss (held-out)",
                curves(&cells, fraction_axis, |c| c.test_loss),
            ),
            ("gain_vs_stepsize", "‖Gain‖₁ vs stepsize", "‖Gain‖₁", curves(&cells, fraction_axis, |c| c.gain_l1)),
        ];
        let diverged = results.iter().filter(|r| r.mean == mean && r.diverged).count();
        for (name, title, y_label, c) in figures {
            let mut fig = stepsize_figure(format!("{title} ({data})"), y_label, c, fraction_axis, counts);
            if fig.series.is_empty() {
                fig.note = no_data_note(diverged, cells.len());
            }
            written.extend(render(&fig, &dir.join(format!("{name}_{tag}")), out)?);
        }
        if let Some(fig) = gain_per_coordinate(&cells, &data) {
            written.extend(render(&fig, &dir.join(format!("gain_per_coordinate_{tag}")), out)?);
        }
    }
    Ok(written)
}

/// Why a sweep figure has no curve: every cell diverged, or no cell has the value
/// (the recovery error needs the problem's `beta_star`, the test loss its test set).
fn no_data_note(diverged: usize, finished: usize) -> String {
    if finished == 0 {
        format!("no data: all {diverged} cells diverged")
    } else {
        format!(
            "no data: none of the {finished} finished cells has this value (no beta_star or test set in the problem?)"
        )
    }
}

fn gain_per_coordinate(cells: &[&CellResult], data: &str) -> Option<Figure> {
    let mut fig = Figure {
        title: format!("Gain per coordinate at γ ≈ 0.5 θ, seed 0 ({data})"),
        x_label: "coordinate i".into(),
        y_label: "Gainᵢ".into(),
        y_log: Some(false),
        note: "stems: GD left, SGD right of i".into(),
        ..Figure::default()
    };
    let mut support = Vec::new();
    for (algo, shift) in [(None, -0.17), (Some(1), 0.17)] {
        let c = cells.iter().filter(|c| c.batch == algo && c.seed == 0 && c.gain.is_some()).min_by(|a, b| {
            (a.fraction.unwrap_or(0.5) - 0.5).abs().total_cmp(&(b.fraction.unwrap_or(0.5) - 0.5).abs())
        })?;
        let gain = c.gain.as_ref()?;
        support.clone_from(&c.support);
        let label = format!("{} at γ = {:.3}", algo_label(algo), c.stepsize);
        let points = gain.iter().enumerate().map(|(i, g)| (i as f64 + shift, *g)).collect();
        let mut s = Series::line(label, points, algo_color(algo));
        s.stems = true;
        fig.series.push(s);
    }
    for (k, &i) in support.iter().enumerate() {
        let label = if k == 0 { "supp(β*)".to_string() } else { String::new() };
        fig.vlines.push((i as f64, label, SUPPORT_COLOR));
    }
    Some(fig)
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(200, 40, 40),
    RGBColor(30, 90, 200),
    RGBColor(40, 150, 60),
    RGBColor(150, 60, 170),
    RGBColor(230, 140, 20),
    RGBColor(90, 90, 90),
];

/// GD at `gamma` on `p` from α, recorded at log-spaced steps (every step at first, so
/// a period-2 oscillation shows): (time γk, loss, b).
fn traced(p: &Problem, alpha: f64, gamma: f64, max_iters: usize) -> Result<Vec<Sample>, String> {
    let mut c = TrainConfig::new(DVector::from_element(p.d(), alpha), Stepsizes::Constant(gamma), Batching::Full);
    (c.max_iters, c.tol, c.history_cap, c.trace_growth) = (max_iters, 1e-20, 2, Some(0.003));
    let run = train(p, &c).map_err(|e| e.to_string())?;
    Ok(run.trace.into_iter().map(|t| (gamma * t.step as f64, t.loss, t.beta)).collect())
}

/// The edge-of-stability figures on the default problem (seed 0, α = 0.1): GD at
/// `fraction`·θ against gradient flow (GD at 0.02 θ), the loss and the coordinates of b
/// (the support of b* and the two largest others) over time t = γ·k.
pub fn edge_of_stability_figures(dir: &Path, fraction: f64, out: FigureOutput) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let p = ProblemSpec::default().generate()?;
    let alpha = 0.1;
    let th = threshold(
        &p,
        &crate::model::Model::uv(DVector::from_element(p.d(), alpha)),
        None,
        0,
        &ThresholdSettings::default(),
    )
    .map_err(|e| e.to_string())?;
    let (g_eos, g_flow) = (fraction * th.lo, 0.02 * th.lo);
    let eos = traced(&p, alpha, g_eos, 3_000_000)?;
    let horizon = eos.last().map_or(1.0, |t| t.0);
    let flow = traced(&p, alpha, g_flow, (horizon / g_flow) as usize + 1)?;
    let note = format!("seed 0, 20 × 30, α = 0.1\nθ = {:.4} (convergence threshold)", th.lo);
    let mut loss = Figure {
        title: format!("GD at {fraction} θ vs gradient flow: training loss"),
        x_label: "time t = γ·k".into(),
        y_label: "L(βₜ)".into(),
        note: note.clone(),
        ..Figure::default()
    };
    let pts = |tr: &[Sample], f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        tr.iter().filter(|t| t.0 > 0.0).map(|t| (t.0, f(t))).collect()
    };
    loss.series.push(Series::line(format!("GD, γ = {g_eos:.3}"), pts(&eos, &|t| t.1), GD_COLOR));
    let mut flow_loss = Series::line(format!("gradient flow (γ = {g_flow:.4})"), pts(&flow, &|t| t.1), BLACK);
    flow_loss.dashed = true;
    loss.series.push(flow_loss);
    let beta_star = p.beta_star.clone().unwrap_or_else(|| DVector::zeros(p.d()));
    let last = &eos.last().ok_or("empty trace")?.2;
    let mut coords: Vec<usize> = (0..p.d()).filter(|&i| beta_star[i] != 0.0).collect();
    let mut others: Vec<usize> = (0..p.d()).filter(|&i| beta_star[i] == 0.0).collect();
    others.sort_by(|&a, &b| last[b].abs().total_cmp(&last[a].abs()));
    coords.extend(others.iter().take(2));
    let mut b = Figure {
        title: format!("GD at {fraction} θ vs gradient flow: coordinates of β"),
        x_label: "time t = γ·k".into(),
        y_label: "βᵢ(t)".into(),
        y_log: Some(false),
        note: format!("solid: GD at {fraction} θ\ndashed: gradient flow\n{note}"),
        ..Figure::default()
    };
    for (k, &i) in coords.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let tag = if beta_star[i] != 0.0 {
            format!("β{} (β*{} = {:.2})", subscript(i), subscript(i), beta_star[i])
        } else {
            format!("β{} (off support)", subscript(i))
        };
        b.series.push(Series::line(tag, pts(&eos, &|t| t.2[i]), color));
        let mut dashed = Series::line("", pts(&flow, &|t| t.2[i]), color);
        dashed.dashed = true;
        b.series.push(dashed);
    }
    let mut written = render(&loss, &dir.join("eos_loss"), out)?;
    written.extend(render(&b, &dir.join("eos_coordinates"), out)?);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labelled log ticks: at least two and within the budget wherever the range
    /// allows, whatever the range (short ranges get mantissa steps, long ones every
    /// k-th decade), and light ticks never repeat a labelled one.
    #[test]
    fn log_ticks_fit_their_budget() {
        for (lo, hi) in [(0.31, 0.52), (0.2, 0.9), (1e-3, 5.0), (1e-20, 1e2), (0.101, 0.13), (2e-300, 1e300)] {
            for budget in [2, 3, 5, 8, 12] {
                let (keys, light) = log_points(lo, hi, &|k: &[f64]| k.len() <= budget);
                assert!(keys.len() <= budget.max(2), "[{lo}, {hi}] budget {budget}: {keys:?}");
                assert!(keys.len() >= 2 || hi / lo < 1.5, "[{lo}, {hi}] budget {budget}: {keys:?}");
                assert!(keys.iter().all(|k| (lo..=hi).contains(k) && !light.contains(k)));
            }
        }
        let any = |_: &[f64]| true;
        assert!(log_points(0.0, 1.0, &any).0.is_empty() && log_points(1.0, f64::INFINITY, &any).0.is_empty());
    }
}
