//! Figures (SVG, through plotters): recovery error and |Gain|₁ against the stepsize for
//! GD and SGD with their thresholds marked, the gain per coordinate with the support of
//! b* marked, and an edge-of-stability run against gradient flow. Log axes where the
//! data span more than a decade.
//!
//! PNG is not offered: plotters' bitmap backend needs a font rasteriser and a font file,
//! while SVG text is drawn by the viewer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nalgebra::DVector;
use plotters::prelude::*;

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
}

/// A 2-D figure: curves, labelled vertical lines, axis labels.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// (x, label, colour) of vertical dashed lines.
    pub vlines: Vec<(f64, String, RGBColor)>,
    /// Legend in the lower left corner instead of the upper left.
    pub legend_lower: bool,
}

/// Tick labels: plain decimals between 1e-3 and 1e4, else 1e-5 style.
fn tick(v: &f64) -> String {
    let a = v.abs();
    if a == 0.0 || (1e-3..1e4).contains(&a) {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

pub const GD_COLOR: RGBColor = RGBColor(200, 40, 40);
pub const SGD_COLOR: RGBColor = RGBColor(30, 90, 200);
pub const SUPPORT_COLOR: RGBColor = RGBColor(40, 150, 60);

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
        return (0.0, 1.0);
    }
    if log {
        (lo.max(hi / 10f64.powf(MAX_DECADES)) / 1.3, hi * 1.3)
    } else {
        let pad = 0.05 * (hi - lo).max(1e-12 * hi.abs().max(1.0));
        (lo - pad, hi + pad)
    }
}

macro_rules! draw_on {
    ($root:expr, $fig:expr, $xr:expr, $yr:expr, $ylo:expr, $yhi:expr) => {{
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let mut chart = ChartBuilder::on($root)
            .caption(&$fig.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d($xr, $yr)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc($fig.x_label.as_str())
            .y_desc($fig.y_label.as_str())
            .light_line_style(WHITE.mix(0.0))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(|e| err(&e))?;
        for (x, label, color) in &$fig.vlines {
            chart
                .draw_series(DashedLineSeries::new(vec![(*x, $ylo), (*x, $yhi)], 6, 4, color.stroke_width(1)))
                .map_err(|e| err(&e))?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(1)));
        }
        for s in &$fig.series {
            let color = s.color;
            let pts: Vec<(f64, f64)> =
                s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            let style = color.stroke_width(2);
            let anno = if s.dashed {
                chart.draw_series(DashedLineSeries::new(pts.clone(), 5, 4, style)).map_err(|e| err(&e))?
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), style)).map_err(|e| err(&e))?
            };
            if !s.label.is_empty() {
                anno.label(s.label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            }
            if s.markers {
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(|e| err(&e))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(if $fig.legend_lower { SeriesLabelPosition::LowerLeft } else { SeriesLabelPosition::UpperLeft })
            .draw()
            .map_err(|e| err(&e))?;
    }};
}

/// Writes the figure as SVG (atomically, through [`crate::output`]).
pub fn render(fig: &Figure, path: &Path) -> Result<(), String> {
    let mut svg = String::new();
    draw(fig, &mut svg)?;
    crate::output::write_bytes(path, &[], svg.as_bytes()).map_err(|e| e.to_string())
}

fn draw(fig: &Figure, svg: &mut String) -> Result<(), String> {
    let xs = fig.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(fig.vlines.iter().map(|v| v.0));
    let ys = fig.series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (x_log, y_log) = (wants_log(xs.clone()), wants_log(ys.clone()));
    let ((x0, x1), (y0, y1)) = (range(xs, x_log), range(ys, y_log));
    let root = SVGBackend::with_string(svg, (760, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    match (x_log, y_log) {
        (true, true) => draw_on!(&root, fig, (x0..x1).log_scale(), (y0..y1).log_scale(), y0, y1),
        (true, false) => draw_on!(&root, fig, (x0..x1).log_scale(), y0..y1, y0, y1),
        (false, true) => draw_on!(&root, fig, x0..x1, (y0..y1).log_scale(), y0, y1),
        (false, false) => draw_on!(&root, fig, x0..x1, y0..y1, y0, y1),
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
    if batch.is_some() { SGD_COLOR } else { GD_COLOR }
}

/// Per algorithm: mean over seeds of (γ, value) at each grid step, and the mean threshold.
type Curves = BTreeMap<Option<usize>, (Vec<(f64, f64)>, Option<f64>)>;
/// Grid step (as bits) → the seeds' (γ, value).
type ByStep = BTreeMap<u64, Vec<(f64, f64)>>;
/// A traced point: (time γk, loss, b).
type Sample = (f64, f64, Vec<f64>);

fn curves(cells: &[&CellResult], value: impl Fn(&CellResult) -> Option<f64>) -> Curves {
    let mut by_algo: BTreeMap<Option<usize>, ByStep> = BTreeMap::new();
    let mut thresholds: BTreeMap<Option<usize>, Vec<f64>> = BTreeMap::new();
    for c in cells {
        // Group by the grid step: the fraction (or γ) as exact bits.
        let key = c.fraction.unwrap_or(c.stepsize).to_bits();
        if let Some(v) = value(c) {
            by_algo.entry(c.batch).or_default().entry(key).or_default().push((c.stepsize, v));
        }
        if let Some(t) = c.threshold {
            thresholds.entry(c.batch).or_default().push(t);
        }
    }
    by_algo
        .into_iter()
        .map(|(algo, steps)| {
            let mut pts: Vec<(f64, f64)> = steps
                .values()
                .map(|v| {
                    (
                        v.iter().map(|p| p.0).sum::<f64>() / v.len() as f64,
                        v.iter().map(|p| p.1).sum::<f64>() / v.len() as f64,
                    )
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let th = thresholds.get(&algo).map(|t| t.iter().sum::<f64>() / t.len() as f64);
            (algo, (pts, th))
        })
        .collect()
}

fn stepsize_figure(title: String, y_label: &str, curves: Curves) -> Figure {
    let mut fig = Figure { title, x_label: "stepsize γ".into(), y_label: y_label.into(), ..Figure::default() };
    for (algo, (points, th)) in curves {
        let color = algo_color(algo);
        fig.series.push(Series { label: algo_label(algo), points, color, dashed: false, markers: true });
        if let Some(t) = th {
            let name = if algo.is_some() { "θ_SGD (threshold)" } else { "θ_GD (threshold)" };
            fig.vlines.push((t, name.into(), color));
        }
    }
    fig
}

/// The sweep figures, one set per feature mean: recovery error and |Gain|₁ against γ, and
/// the gain per coordinate of GD and SGD (seed 0, the grid step nearest 0.5 θ).
pub fn sweep_figures(results: &[CellResult], dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut means: Vec<f64> = results.iter().map(|r| r.mean).collect();
    means.sort_by(f64::total_cmp);
    means.dedup();
    let mut written = Vec::new();
    for mean in means {
        let cells: Vec<&CellResult> = results.iter().filter(|r| r.mean == mean && !r.diverged).collect();
        let data = if mean == 0.0 { "centred".to_string() } else { format!("uncentred, feature mean {mean}") };
        let tag = if mean == 0.0 { "centred".to_string() } else { format!("mean{mean}") };
        let mut err =
            stepsize_figure(format!("Recovery error vs stepsize ({data})"), "‖β∞ − β*‖₂", curves(&cells, |c| c.error));
        err.legend_lower = true;
        let path = dir.join(format!("error_vs_stepsize_{tag}.svg"));
        render(&err, &path)?;
        written.push(path);
        let gain = stepsize_figure(format!("|Gain|₁ vs stepsize ({data})"), "‖Gain‖₁", curves(&cells, |c| c.gain_l1));
        let path = dir.join(format!("gain_vs_stepsize_{tag}.svg"));
        render(&gain, &path)?;
        written.push(path);
        if let Some(fig) = gain_per_coordinate(&cells, &data) {
            let path = dir.join(format!("gain_per_coordinate_{tag}.svg"));
            render(&fig, &path)?;
            written.push(path);
        }
    }
    Ok(written)
}

fn gain_per_coordinate(cells: &[&CellResult], data: &str) -> Option<Figure> {
    let mut fig = Figure {
        title: format!("Gain per coordinate at γ ≈ 0.5 θ, seed 0 ({data})"),
        x_label: "coordinate i (support of β* marked)".into(),
        y_label: "Gain_i".into(),
        ..Figure::default()
    };
    let mut top: f64 = 0.0;
    let mut support = Vec::new();
    for algo in [None, Some(1)] {
        let c = cells.iter().filter(|c| c.batch == algo && c.seed == 0 && c.gain.is_some()).min_by(|a, b| {
            (a.fraction.unwrap_or(0.5) - 0.5).abs().total_cmp(&(b.fraction.unwrap_or(0.5) - 0.5).abs())
        })?;
        let gain = c.gain.as_ref()?;
        top = top.max(gain.iter().copied().fold(0.0, f64::max));
        support.clone_from(&c.support);
        let label = format!("{} at γ = {}", algo_label(algo), crate::report::short(c.stepsize));
        let points = gain.iter().enumerate().map(|(i, g)| (i as f64, *g)).collect();
        fig.series.push(Series { label, points, color: algo_color(algo), dashed: false, markers: true });
    }
    for (k, &i) in support.iter().enumerate() {
        let label = if k == 0 { "supp(β*)".to_string() } else { String::new() };
        fig.series.push(Series {
            label,
            points: vec![(i as f64, 0.0), (i as f64, top)],
            color: SUPPORT_COLOR,
            dashed: true,
            markers: false,
        });
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
pub fn edge_of_stability_figures(dir: &Path, fraction: f64) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let p = ProblemSpec::default().generate()?;
    let alpha = 0.1;
    let th = threshold(&p, &DVector::from_element(p.d(), alpha), None, 0, &ThresholdSettings::default())
        .map_err(|e| e.to_string())?;
    let (g_eos, g_flow) = (fraction * th.lo, 0.02 * th.lo);
    let eos = traced(&p, alpha, g_eos, 3_000_000)?;
    let horizon = eos.last().map_or(1.0, |t| t.0);
    let flow = traced(&p, alpha, g_flow, (horizon / g_flow) as usize + 1)?;
    let mut loss = Figure {
        title: format!("GD at {fraction} θ (γ = {g_eos:.3}) vs gradient flow: training loss"),
        x_label: "time t = γ·k".into(),
        y_label: "L(β_t)".into(),
        legend_lower: true,
        ..Figure::default()
    };
    let pts = |tr: &[Sample], f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        tr.iter().filter(|t| t.0 > 0.0).map(|t| (t.0, f(t))).collect()
    };
    loss.series.push(Series {
        label: format!("GD, γ = {g_eos:.3}"),
        points: pts(&eos, &|t| t.1),
        color: GD_COLOR,
        dashed: false,
        markers: false,
    });
    loss.series.push(Series {
        label: format!("gradient flow (GD, γ = {g_flow:.4})"),
        points: pts(&flow, &|t| t.1),
        color: BLACK,
        dashed: true,
        markers: false,
    });
    let beta_star = p.beta_star.clone().unwrap_or_else(|| DVector::zeros(p.d()));
    let last = &eos.last().ok_or("empty trace")?.2;
    let mut coords: Vec<usize> = (0..p.d()).filter(|&i| beta_star[i] != 0.0).collect();
    let mut others: Vec<usize> = (0..p.d()).filter(|&i| beta_star[i] == 0.0).collect();
    others.sort_by(|&a, &b| last[b].abs().total_cmp(&last[a].abs()));
    coords.extend(others.iter().take(2));
    let mut b = Figure {
        title: format!("GD at {fraction} θ vs gradient flow: coordinates of β over time"),
        x_label: "time t = γ·k".into(),
        y_label: "β_i(t)  (solid: GD at the edge, dashed: gradient flow)".into(),
        ..Figure::default()
    };
    for (k, &i) in coords.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let tag = if beta_star[i] != 0.0 {
            format!("β_{i} (β*_{i} = {:.2})", beta_star[i])
        } else {
            format!("β_{i} (off support)")
        };
        b.series.push(Series { label: tag, points: pts(&eos, &|t| t.2[i]), color, dashed: false, markers: false });
        b.series.push(Series {
            label: String::new(),
            points: pts(&flow, &|t| t.2[i]),
            color,
            dashed: true,
            markers: false,
        });
    }
    let (lp, bp) = (dir.join("eos_loss.svg"), dir.join("eos_coordinates.svg"));
    render(&loss, &lp)?;
    render(&b, &bp)?;
    Ok(vec![lp, bp])
}
