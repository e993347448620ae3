//! Figures: `plot` draws the sweep figures (thresholds marked, axes labelled with the
//! paper's symbols), and the edge-of-stability figures compare GD with gradient flow.

mod common;

use common::dlncheck;

#[test]
fn plot_draws_the_sweep_figures() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("s.jsonl");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let args =
        ["sweep", "--out", &s(&sweep), "--n", "10", "--d", "20", "--sparsity", "2", "--fractions", "0.2,0.5,0.9"];
    let (code, _, err) = dlncheck(&[&args[..], &["--mean", "0,1", "--tol", "1e-14"]].concat());
    assert_eq!(code, 0, "{err}");
    let figs = dir.path().join("figs");
    let (code, out, err) = dlncheck(&["plot", &s(&sweep), "--out", &s(&figs)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 6, "{out}");
    for (name, needles) in [
        (
            "error_vs_stepsize_centred.svg",
            &["stepsize γ", "θ_GD (threshold)", "θ_SGD (threshold)", "SGD (batch 1)"][..],
        ),
        ("gain_vs_stepsize_mean1.svg", &["‖Gain‖₁", "uncentred"][..]),
        ("gain_per_coordinate_centred.svg", &["supp(β*)", "Gain_i"][..]),
    ] {
        let svg = std::fs::read_to_string(figs.join(name)).unwrap();
        assert!(svg.starts_with("<svg"), "{name}");
        for n in needles {
            assert!(svg.contains(n), "{name} lacks {n}");
        }
    }
    let (code, _, err) = dlncheck(&["plot", &s(&dir.path().join("none.jsonl"))]);
    assert_eq!(code, 2);
    assert!(err.contains("none.jsonl"), "{err}");
}

#[test]
fn edge_of_stability_figures_compare_with_gradient_flow() {
    let dir = tempfile::tempdir().unwrap();
    let files = dlncheck::plot::edge_of_stability_figures(dir.path(), 0.9).unwrap();
    assert_eq!(files.len(), 2);
    let loss = std::fs::read_to_string(&files[0]).unwrap();
    assert!(loss.contains("gradient flow") && loss.contains("L(β_t)") && loss.contains("time t = γ·k"));
    let coords = std::fs::read_to_string(&files[1]).unwrap();
    assert!(coords.contains("β*_") && coords.contains("off support"));
}
