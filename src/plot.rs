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

use crate::image::ImageFormat;
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

/// Canvas, and the legend panel on its right.
const SIZE: (u32, u32) = (960, 520);
const LEGEND_WIDTH: u32 = 250;

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

/// Labelled (bold) and light ticks of a log axis over [lo, hi]: every decade (every
/// k-th when there are more than 12), with 2× and 5× labelled too when the range spans
/// fewer than 3 decades, and 2…9 × decades light; within one decade, 1…9 × labelled.
/// Nothing when [lo, hi] is not a positive finite range (a linear axis, or no data):
/// the decades counted are those of finite doubles only, so the loop always ends.
fn log_points(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
        return (Vec::new(), Vec::new());
    }
    let (a, b) = (lo.log10().floor().max(-330.0) as i32, hi.log10().ceil().min(310.0) as i32);
    let within = |v: &f64| (lo..=hi).contains(v);
    let multiples = |ms: &'static [i32]| {
        (a..=b).flat_map(move |e| ms.iter().map(move |&m| m as f64 * 10f64.powi(e))).filter(within).collect::<Vec<_>>()
    };
    let decades = multiples(&[1]);
    let minor = multiples(&[2, 3, 4, 5, 6, 7, 8, 9]);
    match decades.len() {
        0 | 1 => (multiples(&[1, 2, 3, 4, 5, 6, 7, 8, 9]), Vec::new()),
        2 | 3 => (multiples(&[1, 2, 5]), minor),
        n => {
            let step = n.div_ceil(12);
            let every: Vec<f64> =
                (a..=b).filter(|e| e.rem_euclid(step as i32) == 0).map(|e| 10f64.powi(e)).filter(within).collect();
            (every, decades.into_iter().chain(minor).collect())
        }
    }
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
    ($area:expr, $fig:expr, $xr:expr, $yr:expr, $xfmt:expr, $yfmt:expr, $ylo:expr, $yhi:expr) => {{
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let mut chart = ChartBuilder::on($area)
            .caption(&$fig.title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d($xr, $yr)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc($fig.x_label.as_str())
            .y_desc($fig.y_label.as_str())
            .bold_line_style(GRID)
            .light_line_style(MINOR_GRID)
            .x_label_formatter($xfmt)
            .y_label_formatter($yfmt)
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
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
            let style = color.stroke_width(2);
            if s.stems {
                let base = 0f64.max($ylo);
                chart
                    .draw_series(
                        pts.iter().map(|&(x, y)| PathElement::new(vec![(x, base), (x, y)], color.stroke_width(2))),
                    )
                    .map_err(|e| err(&e))?;
            } else if s.dashed {
                chart.draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style)).map_err(|e| err(&e))?;
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), style)).map_err(|e| err(&e))?;
            }
            if s.markers || s.stems {
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(|e| err(&e))?;
            }
            let hollow = s.hollow.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite());
            chart.draw_series(hollow.clone().map(|p| Circle::new(p, 5, WHITE.filled()))).map_err(|e| err(&e))?;
            chart.draw_series(hollow.map(|p| Circle::new(p, 5, color.stroke_width(2)))).map_err(|e| err(&e))?;
        }
        // Thresholds last: above the grid and the bands, labelled at the top.
        for (x, label, color) in &$fig.vlines {
            chart
                .draw_series(DashedLineSeries::new(vec![(*x, $ylo), (*x, $yhi)], 8, 5, color.stroke_width(2)))
                .map_err(|e| err(&e))?;
            let short = label.split(" (").next().unwrap_or(label).to_string();
            if short.is_empty() {
                continue;
            }
            chart
                .draw_series(std::iter::once(Text::new(short, (*x, $yhi), ("sans-serif", 13).into_font().color(color))))
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

/// The legend, drawn in its own panel beside the plot: dash patterns as drawn.
fn legend<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, fig: &Figure) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let font = ("sans-serif", 13).into_font();
    let mut y = 60;
    for e in entries(fig) {
        let (x0, x1) = (6, 40);
        if e.band {
            area.draw(&Rectangle::new([(x0, y - 6), (x1, y + 6)], e.color.mix(0.15).filled())).map_err(err)?;
        }
        let style = e.color.stroke_width(2);
        if e.dashed {
            for (a, b) in [(x0, x0 + 9), (x0 + 13, x0 + 22), (x0 + 26, x1)] {
                area.draw(&PathElement::new(vec![(a, y), (b, y)], style)).map_err(err)?;
            }
        } else {
            area.draw(&PathElement::new(vec![(x0, y), (x1, y)], style)).map_err(err)?;
        }
        if e.marker {
            area.draw(&Circle::new(((x0 + x1) / 2, y), 3, e.color.filled())).map_err(err)?;
        }
        area.draw(&Text::new(e.label, (x1 + 8, y - 7), font.clone())).map_err(err)?;
        y += 24;
    }
    if !fig.note.is_empty() {
        for line in fig.note.lines() {
            area.draw(&Text::new(
                line.to_string(),
                (6, y + 4),
                ("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90)),
            ))
            .map_err(err)?;
            y += 17;
        }
    }
    Ok(())
}

/// Writes the figure as `stem.svg`, `.png`, `.pdf` (those asked for) from one drawing.
pub fn render(fig: &Figure, stem: &Path, formats: &[ImageFormat]) -> Result<Vec<PathBuf>, String> {
    let mut svg = String::new();
    draw(fig, &mut svg)?;
    crate::image::write_all(&with_provenance(&svg), stem, formats)
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

fn draw(fig: &Figure, svg: &mut String) -> Result<(), String> {
    let xs = fig.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(fig.vlines.iter().map(|v| v.0));
    let ys = fig.series.iter().flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().flat_map(|b| [b.1, b.2])));
    let stems = fig.series.iter().any(|s| s.stems);
    let x_log = !stems && wants_log(xs.clone());
    let y_log = fig.y_log.unwrap_or_else(|| wants_log(ys.clone()));
    let ((x0, x1), (y0, y1)) = (range(xs, x_log), range(ys.chain(stems.then_some(0.0)), y_log));
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (plot, side) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let (xk, xl) = if x_log { log_points(x0, x1) } else { Default::default() };
    let (yk, yl) = if y_log { log_points(y0, y1) } else { Default::default() };
    match (x_log, y_log) {
        (true, true) => draw_on!(
            &plot,
            fig,
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
                x0..x1,
                (y0..y1).log_scale().with_key_points(yk).with_light_points(yl),
                &tick,
                &log_tick,
                y0,
                y1
            )
        }
        (false, false) => draw_on!(&plot, fig, x0..x1, y0..y1, &tick, &tick, y0, y1),
    }
    legend(&side, fig)?;
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
    let x_label = if fraction_axis { "γ / θ (θ: each seed's convergence threshold)" } else { "stepsize γ" };
    let mut fig =
        Figure { title, x_label: x_label.into(), y_label: y_label.into(), y_log: Some(true), ..Figure::default() };
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
    note += &format!("\n{} of {} cells unconverged,\n{} diverged (not drawn)", n.unconverged, n.total, n.diverged);
    if !fraction_axis {
        note += "\nθ: convergence threshold";
    }
    fig.note = note;
    fig
}

/// The sweep figures, one set per feature mean: recovery error, test loss and ‖Gain‖₁
/// against γ, and the gain per coordinate of GD and SGD (seed 0, the grid step nearest
/// 0.5 θ), each in every format of `formats`.
pub fn sweep_figures(results: &[CellResult], dir: &Path, formats: &[ImageFormat]) -> Result<Vec<PathBuf>, String> {
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
            written.extend(render(&fig, &dir.join(format!("{name}_{tag}")), formats)?);
        }
        if let Some(fig) = gain_per_coordinate(&cells, &data) {
            written.extend(render(&fig, &dir.join(format!("gain_per_coordinate_{tag}")), formats)?);
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
            "no data: none of the {finished} finished cells\nhas this value (no beta_star\nor test set in the problem?)"
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
pub fn edge_of_stability_figures(dir: &Path, fraction: f64, formats: &[ImageFormat]) -> Result<Vec<PathBuf>, String> {
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
    let mut written = render(&loss, &dir.join("eos_loss"), formats)?;
    written.extend(render(&b, &dir.join("eos_coordinates"), formats)?);
    Ok(written)
}
