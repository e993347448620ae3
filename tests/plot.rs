//! Figures: `plot` draws the sweep figures (thresholds marked, axes labelled with the
//! paper's symbols, bands and seed counts, test loss) in SVG, PNG and PDF from one
//! drawing, and the edge-of-stability figures compare GD with gradient flow.

mod common;

use common::dlncheck;
use dlncheck::image::{FigureOutput, FigureSize, ImageFormat};

/// The text of an SVG's <text> elements, joined by spaces (legend notes wrap to the
/// width they are drawn at).
fn svg_text(svg: &str) -> String {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>')?.1.split_once("</text>"))
        .map(|(t, _)| t.trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// PNG width and height from its IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn plot_draws_the_sweep_figures_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("s.jsonl");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let args =
        ["sweep", "--out", &s(&sweep), "--n", "10", "--d", "20", "--sparsity", "2", "--fractions", "0.2,0.5,0.9"];
    let (code, _, err) = dlncheck(&[&args[..], &["--mean", "0,1", "--tol", "1e-14", "--seeds", "2"]].concat());
    assert_eq!(code, 0, "{err}");
    let figs = dir.path().join("figs");
    let (code, out, err) = dlncheck(&["plot", &s(&sweep), "--out", &s(&figs)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2 * 4 * 3, "two means, four figures, three formats: {out}");
    for (name, needles) in [
        (
            "error_vs_stepsize_centred",
            &["γ / θ (each seed's own threshold θ)", "SGD (batch 1)", "geometric mean over 2 seeds"][..],
        ),
        ("test_loss_vs_stepsize_mean1", &["test loss (held-out)", "uncentred", "95% t-interval of log values"][..]),
        ("gain_vs_stepsize_mean1", &["‖Gain‖₁ vs stepsize", "‖Gain‖₁"][..]),
        ("gain_per_coordinate_centred", &["supp(β*)", "Gainᵢ"][..]),
    ] {
        let svg = std::fs::read_to_string(figs.join(format!("{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{name}");
        let text = svg_text(&svg).replace("&apos;", "'");
        for n in needles {
            assert!(text.contains(n), "{name} lacks {n}: {text}");
        }
        assert!(!svg.contains("_GD") && !svg.contains("Gain_i"), "no literal underscores: {name}");
        let png = std::fs::read(figs.join(format!("{name}.png"))).unwrap();
        assert_eq!(png_size(&png).0, 2025, "{name}: the page size, 6.75 in at 300 dpi");
        let pdf = std::fs::read(figs.join(format!("{name}.pdf"))).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{name}");
        let pdf_text = String::from_utf8_lossy(&pdf);
        assert!(pdf_text.contains("DejaVuSans"), "{name}: the bundled font is embedded");
    }
    // Against fractions of each seed's own threshold, θ is x = 1 for every seed: no
    // threshold lines, in the plot or the legend.
    let svg = std::fs::read_to_string(figs.join("error_vs_stepsize_centred.svg")).unwrap();
    assert!(!svg.contains("mean threshold") && !svg_text(&svg).contains("θ GD"));
    let (code, out, _) = dlncheck(&["plot", &s(&sweep), "--out", &s(&figs), "--format", "png"]);
    assert_eq!(code, 0);
    assert!(out.lines().all(|l| l.ends_with(".png")), "{out}");
    assert_eq!(dlncheck(&["plot", &s(&sweep), "--format", "gif"]).0, 2);
    assert_eq!(dlncheck(&["plot", &s(&sweep), "--format", "png,png"]).0, 2);
    let (code, _, err) = dlncheck(&["plot", &s(&dir.path().join("none.jsonl"))]);
    assert_eq!(code, 2);
    assert!(err.contains("none.jsonl"), "{err}");
}

#[test]
fn edge_of_stability_figures_compare_with_gradient_flow() {
    let dir = tempfile::tempdir().unwrap();
    let to = FigureOutput { formats: &[ImageFormat::Svg], size: FigureSize::Page };
    let files = dlncheck::plot::edge_of_stability_figures(dir.path(), 0.9, to).unwrap();
    assert_eq!(files.len(), 2);
    let loss = std::fs::read_to_string(&files[0]).unwrap();
    assert!(loss.contains("gradient flow") && loss.contains("L(βₜ)") && loss.contains("time t = γ·k"));
    // Decade ticks down to the end of the curves: the loss reaches 1e-20.
    assert!(loss.contains("10⁻²⁰") || loss.contains("10⁻¹⁸"), "log ticks label the lowest decades");
    let coords = std::fs::read_to_string(&files[1]).unwrap();
    assert!(coords.contains("β*₂₀") && coords.contains("off support"));
}

/// Log ticks: decades as 10ᵉ, in-between values as m×10ᵉ, one format on an axis.
#[test]
fn figure_formats_parse() {
    assert_eq!(ImageFormat::parse_list("svg,png,pdf").unwrap().len(), 3);
    assert!(ImageFormat::parse_list("svg, jpg").unwrap_err().contains("jpg"));
}

/// Every series of a grid gets its own colour and label (gd, sgd, sgd:2 once drew batch 1
/// and 2 alike, with two thresholds both "θ SGD"); a run stopped at the step cap is drawn hollow
/// and counted; one seed draws no band and says so.
#[test]
fn every_series_is_distinguishable_and_unconverged_cells_are_marked() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("s.jsonl");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let (code, _, err) = dlncheck(&[
        "sweep",
        "--out",
        &s(&sweep),
        "--algorithm",
        "gd,sgd,sgd:2",
        "--stepsizes",
        "0.05,0.1",
        "--iters",
        "2000",
        "--tol",
        "1e-20",
    ]);
    assert_eq!(code, 0, "{err}");
    let figs = dir.path().join("figs");
    let (code, _, err) = dlncheck(&["plot", &s(&sweep), "--out", &s(&figs), "--format", "svg"]);
    assert_eq!(code, 0, "{err}");
    let svg = std::fs::read_to_string(figs.join("gain_vs_stepsize_centred.svg")).unwrap();
    for label in ["GD", "SGD (batch 1)", "SGD (batch 2)"] {
        assert!(svg.contains(&format!(">\n{label}\n<")), "lacks the legend entry {label}");
    }
    let colours: std::collections::BTreeSet<&str> =
        ["#C82828", "#1E5AC8", "#823CAA"].into_iter().filter(|c| svg.contains(&format!("stroke=\"{c}\""))).collect();
    assert_eq!(colours.len(), 3, "three colours: {colours:?}");
    // 2,000 steps end no run at loss 1e-20: every cell is unconverged, hollow, counted.
    let text = svg_text(&svg);
    assert!(text.contains("6 of 6 cells unconverged,"), "the count: {text}");
    assert!(text.contains("hollow: a run stopped unconverged"));
    assert!(svg.contains("fill=\"#FFFFFF\""), "hollow markers");
    assert!(text.contains("points: one seed (no band)") && !text.contains("mean over 1"));
}

/// `--size column|page|slide`: the SVG is drawn at the print width (96 units per inch),
/// the PNG is that width at 300 dpi, the PDF page is that width in points, and every
/// text is at least 8 pt there (plotters writes sizes as SVG font-size).
#[test]
fn figures_are_drawn_at_print_size_with_text_of_8_pt_or_more() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("s.jsonl");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let args = ["sweep", "--out", &s(&sweep), "--algorithm", "gd,sgd,sgd:2", "--fractions", "0.3,0.9", "--seeds", "2"];
    assert_eq!(dlncheck(&args).0, 0);
    for (size, inches) in [("column", 3.25), ("page", 6.75), ("slide", 10.0)] {
        let figs = dir.path().join(size);
        let (code, _, err) = dlncheck(&["plot", &s(&sweep), "--out", &s(&figs), "--size", size]);
        assert_eq!(code, 0, "{err}");
        for name in ["error_vs_stepsize_centred", "gain_per_coordinate_centred"] {
            let svg = std::fs::read_to_string(figs.join(format!("{name}.svg"))).unwrap();
            let width: f64 = svg.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
            assert!((width - 96.0 * inches).abs() <= 0.5, "{size}: {width} units");
            let sizes: Vec<f64> =
                svg.split("font-size=\"").skip(1).map(|t| t.split('"').next().unwrap().parse().unwrap()).collect();
            assert!(sizes.len() > 10, "{size} {name}: texts");
            let smallest = sizes.iter().copied().fold(f64::INFINITY, f64::min) * 72.0 / 96.0;
            assert!(smallest >= 8.0 - 1e-9, "{size} {name}: a {smallest} pt text");
            let png = std::fs::read(figs.join(format!("{name}.png"))).unwrap();
            assert_eq!(png_size(&png).0, (inches * 300.0).round() as u32, "{size} {name}: 300 dpi");
            let pdf = String::from_utf8_lossy(&std::fs::read(figs.join(format!("{name}.pdf"))).unwrap()).into_owned();
            let media = pdf.split("MediaBox [").nth(1).unwrap().split(']').next().unwrap().to_owned();
            let pts: f64 = media.split_whitespace().nth(2).unwrap().parse().unwrap();
            assert!((pts - 72.0 * inches).abs() <= 0.5, "{size} {name}: the PDF is {pts} pt wide");
        }
    }
    let (code, _, err) = dlncheck(&["plot", &s(&sweep), "--size", "poster"]);
    assert_eq!(code, 2);
    assert!(err.contains("poster"), "{err}");
}
