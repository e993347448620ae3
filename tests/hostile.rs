//! Issue 20 (never silently wrong, round two): one test per class of defect, and
//! property tests over the surfaces it names, so the next surface starts hardened.
//! Property tests run `DLNCHECK_PROPTEST_CASES` cases each (default 64: a few seconds in
//! all); raise it for a longer local run.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{Dir, dlncheck};
use dlncheck::bias::Scales;
use dlncheck::claims::eval::{Scope, Value, eval};
use dlncheck::claims::{ClaimReport, ComparisonReport, Test, Verdict};
use dlncheck::expr::{CmpOp, parse_expr};
use dlncheck::npz::NpzWriter;
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("DLNCHECK_PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64)
}

fn theory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("theory")
}

/// A theory folder with the given claim files (id → text) and a copy of `q-split`.
fn theory_with(dir: &Dir, files: &[(&str, &str)]) -> PathBuf {
    let t = dir.path("theory");
    std::fs::create_dir_all(t.join("claims")).unwrap();
    std::fs::copy(theory().join("claims/q-split.toml"), t.join("claims/q-split.toml")).unwrap();
    for (name, text) in files {
        std::fs::write(t.join(format!("claims/{name}.toml")), text).unwrap();
    }
    t
}

// ---- class 1: writes outside their place ------------------------------------------

#[test]
fn claim_ids_are_checked_on_load_and_reports_never_replace_what_check_reads() {
    let dir = Dir::new();
    let q = std::fs::read_to_string(theory().join("claims/q-split.toml")).unwrap();
    let evil = q.replacen("id = \"q-split\"", "id = \"../../../../x\"", 1);
    let t = theory_with(&dir, &[("evil", &evil)]);
    let ts = t.to_str().unwrap();
    let (code, out, err) = dlncheck(&["check", ts, "--claim", "evil", "--accept"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("claim id") || err.contains("claim id"), "{out}{err}");
    assert!(!dir.path("x").exists() && !Path::new("/x.snap").exists());
    assert!(std::fs::read_dir(dir.path("snapshots")).map_or(true, |mut d| d.next().is_none()));
    std::fs::remove_file(t.join("claims/evil.toml")).unwrap();
    // --out onto a claim file, into the claims folder, onto a snapshot: refused, untouched.
    let claim = t.join("claims/q-split.toml");
    for target in [claim.clone(), t.join("claims/report.md")] {
        let (code, _, err) = dlncheck(&["check", ts, "--out", target.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert_eq!(std::fs::read_to_string(&claim).unwrap(), q);
        assert!(!t.join("claims/report.md").exists());
    }
    std::fs::create_dir_all(dir.path("snapshots")).unwrap();
    std::fs::write(dir.path("snapshots/claim_q-split.snap"), "pinned").unwrap();
    let (code, _, err) = dlncheck(&["check", ts, "--out", &dir.s("snapshots/claim_q-split.snap")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("also an input"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.path("snapshots/claim_q-split.snap")).unwrap(), "pinned");
}

// ---- class 2: arrays read wrongly but silently --------------------------------------

/// A `.npy` image of `values` as `descr` (one of <f8 >f8 <f4 >f4), shape (rows, cols).
fn npy(descr: &str, rows: usize, cols: usize, values: &[f64]) -> Vec<u8> {
    let mut out = common::npy_header(descr, &format!("({rows}, {cols})"));
    for v in values {
        match descr {
            "<f8" => out.extend(v.to_le_bytes()),
            ">f8" => out.extend(v.to_be_bytes()),
            "<f4" => out.extend((*v as f32).to_le_bytes()),
            ">f4" => out.extend((*v as f32).to_be_bytes()),
            _ => unreachable!("a descr of this test"),
        }
    }
    out
}

/// A trajectory archive: alpha, stepsizes, and `grads` as the given member bytes.
fn trajectory(path: &Path, grads: Vec<u8>, steps: usize, compressed: bool) {
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let small = dir_bytes(|p| {
        NpzWriter::new().f64("alpha", &[], &[0.1]).f64("stepsizes", &[steps], &vec![0.1; steps]).write(p, &[]).unwrap()
    });
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(small)).unwrap();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut bytes).unwrap();
        members.push((f.name().unwrap().into_owned(), bytes));
    }
    members.push(("grads.npy".into(), grads));
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let method = if compressed { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
    for (name, bytes) in members {
        w.start_file(name, zip::write::SimpleFileOptions::default().compression_method(method)).unwrap();
        w.write_all(&bytes).unwrap();
    }
    w.finish().unwrap();
}

fn dir_bytes(write: impl FnOnce(&Path)) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npz");
    write(&p);
    std::fs::read(p).unwrap()
}

fn gain_of(path: &Path) -> Result<Vec<f64>, String> {
    let t = dlncheck::trajectory::ExternalTrajectory::load(path, None).map_err(|e| e.to_string())?;
    Ok(t.effective_init().map_err(|e| e.to_string())?.gain.as_slice().to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Every dtype and byte order the streaming reader accepts gives the values written
    /// (to f32's rounding for f4), plain or compressed.
    #[test]
    fn the_streaming_reader_honours_byte_order(
        descr in prop::sample::select(vec!["<f8", ">f8", "<f4", ">f4"]),
        values in prop::collection::vec(-0.5f64..0.5, 6),
        compressed in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.npz"), dir.path().join("b.npz"));
        let exact: Vec<f64> = if descr.ends_with('4') { values.iter().map(|v| f64::from(*v as f32)).collect() } else { values.clone() };
        trajectory(&a, npy(descr, 2, 3, &values), 2, compressed);
        trajectory(&b, npy("<f8", 2, 3, &exact), 2, false);
        prop_assert_eq!(gain_of(&a).unwrap(), gain_of(&b).unwrap());
    }

    /// A byte of a compressed `grads` changed: refused (inflate or CRC-32 error), or, if
    /// the change did not alter the data, the same gain. Never a different gain.
    #[test]
    fn a_corrupted_compressed_member_is_never_read_silently(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.npz");
        let values: Vec<f64> = (0..60).map(|i| ((i * 37) % 11) as f64 / 40.0 - 0.12).collect();
        trajectory(&path, npy("<f8", 10, 6, &values), 10, true);
        let good = gain_of(&path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        // The compressed data of grads.npy: after its local header, before the directory.
        let start = bytes.windows(9).position(|w| w == b"grads.npy").unwrap() + 9;
        let end = bytes.windows(4).position(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap();
        let i = start + at.index(end - start);
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(gain) = gain_of(&path) {
            prop_assert_eq!(gain, good);
        }
    }
}

#[test]
fn dtypes_the_readers_do_not_decode_are_refused_by_name() {
    let dir = Dir::new();
    for descr in ["<f2", "<c16", "|u1", "|b1"] {
        let mut grads = common::npy_header(descr, "(1, 2)");
        grads.extend(vec![
            0u8;
            if descr == "<c16" {
                32
            } else if descr == "<f2" {
                4
            } else {
                2
            }
        ]);
        let path = dir.path(&format!("t{}.npz", descr.len()));
        trajectory(&path, grads, 1, false);
        let err = gain_of(&path).unwrap_err();
        assert!(err.contains("dtype") && err.contains("accepted"), "{descr}: {err}");
    }
    let path = dir.path("w.npy");
    let mut w = common::npy_header(">f8", "(2,)");
    w.extend(1.5f64.to_be_bytes());
    w.extend(2.5f64.to_be_bytes());
    std::fs::write(&path, w).unwrap();
    assert_eq!(dlncheck::npz::read_vector(&path, "weights", Some(2)).unwrap().as_slice(), &[1.5, 2.5]);
}

// ---- class 4: panics in the claim runtime ---------------------------------------------

/// Names of a hostile scope: vectors of several lengths, a non-square matrix.
struct Hostile;

impl Scope for Hostile {
    fn name(&self, name: &str) -> Result<Value, String> {
        Ok(match name {
            "a" => Value::Vec(DVector::from_vec(vec![1.0, -2.0, 3.0])),
            "b" => Value::Vec(DVector::from_vec(vec![0.5, 1e300])),
            "e" => Value::Vec(DVector::zeros(0)),
            "m" => Value::Mat(DMatrix::from_element(2, 3, 1.0)),
            "s" => Value::Mask(vec![true, false]),
            _ => Value::Num(1e-300),
        })
    }
    fn field(&self, _: &str, _: &str) -> Result<Value, String> {
        Ok(Value::Vec(DVector::from_element(4, 1.0)))
    }
    fn solve(&self, f: &str, args: &[Value]) -> Result<Value, String> {
        match args.iter().find(|a| matches!(a, Value::Vec(v) if v.len() != 3)) {
            Some(_) => panic!("{f} was called with a vector of the wrong length"),
            None => Ok(Value::Num(0.0)),
        }
    }
    fn dim(&self) -> Option<usize> {
        Some(3)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() * 8, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary expressions over vectors of every length, masks and a non-square
    /// matrix: a value or an error, never a panic.
    #[test]
    fn the_claim_runtime_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "a", "b", "e", "m", "s", "x", "+", "-", "*", "/", "^", "(", ")", ",", "[", "]", "1", "0",
        "norm(", "corr(", "dot(", "rel_err(", "diag(", "lambda_max(", "gram(", "test_loss(", "kkt(",
        "implicit(", "max(", "mean(", "count(", "abs(", "r.beta",
    ]), 1..12)) {
        let text = parts.concat();
        if let Ok(e) = parse_expr(&text) {
            let _ = eval(&e, &Hostile);
        }
    }
}

#[test]
fn a_shape_error_is_that_claims_invalid_verdict_and_the_others_still_run() {
    let dir = Dir::new();
    let claim = r#"id = "bad-shape"
source = "test"
statement = "test_loss of a sub-vector"
[scenario]
n = 4
d = 8
sparsity = 2
[runs.r]
algorithm = "gd"
stepsize = "0.02"
max_iters = 200
tol = 1e-2
[check]
holds = "test_loss(r.beta[support]) >= 0 and lambda_max(gram(r.beta[support])) >= 0"
test = "every_seed"
"#;
    let t = theory_with(&dir, &[("bad-shape", claim)]);
    let (code, out, err) = dlncheck(&["check", t.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("| bad-shape |") && out.contains("INVALID"), "{out}");
    assert!(out.contains("argument 1 has length 2"), "{out}");
    assert!(out.contains("| q-split |") && out.contains("holds"), "the other claim ran: {out}");
}

// ---- class 5: hangs in figures ----------------------------------------------------------

#[test]
fn figures_of_empty_and_degenerate_sweeps_end() {
    let dir = Dir::new();
    let (p, nb) = (dir.s("p.npz"), dir.path("nb.npz"));
    assert_eq!(dlncheck(&["gen", "--n", "6", "--d", "10", "--sparsity", "2", "--out", &p]).0, 0);
    let mut f = dlncheck::npz::NpzReader::open(Path::new(&p)).unwrap();
    let (x, y) = (f.matrix("X", None).unwrap(), f.vector("y", None).unwrap());
    NpzWriter::new().matrix("X", &x).vector("y", &y).write(&nb, &[]).unwrap();
    for (problem, stepsizes, name) in [(nb.to_str().unwrap(), "0.01:0.05:2", "nb"), (p.as_str(), "500:600:2", "div")] {
        let sweep = dir.s(&format!("{name}.jsonl"));
        let args = ["sweep", "--problem", problem, "--out", &sweep, "--seeds", "1", "--stepsizes", stepsizes];
        let (code, _, err) = dlncheck(&[&args[..], &["--iters", "20000"]].concat());
        assert_eq!(code, 0, "{err}");
        let start = std::time::Instant::now();
        let (code, out, err) = dlncheck(&["plot", &sweep, "--out", &dir.s(name), "--format", "svg"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(start.elapsed().as_secs() < 30);
        let svg = std::fs::read_to_string(dir.path(&format!("{name}/error_vs_stepsize_centred.svg"))).unwrap();
        assert!(svg.contains("no data"), "the empty figure says why");
    }
}

// ---- class 6: every writer escapes for its format ---------------------------------------

fn report(id: &str, text: &str) -> ClaimReport {
    ClaimReport {
        id: id.to_owned(),
        file: PathBuf::from(format!("{id}.toml")),
        source: text.to_owned(),
        statement: text.to_owned(),
        test: Test::EverySeed,
        seeds: 1,
        quick: false,
        comparisons: vec![ComparisonReport {
            relation: text.to_owned(),
            op: CmpOp::Le,
            lhs: 1.0,
            rhs: 2.0,
            holds: true,
            worst_seed: Some(0),
            p_value: None,
            effect_size: None,
            route: Some(text.to_owned()),
            detail: Some(text.to_owned()),
            order: None,
        }],
        thresholds: Vec::new(),
        verdict: Verdict::Error,
        error: Some(text.to_owned()),
        known_disagreement: Some(text.to_owned()),
        seconds: 0.5,
    }
}

/// The cells of every row of the first table in Markdown `text`.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let (mut rows, mut row, mut cell, mut depth) = (Vec::new(), Vec::new(), String::new(), 0);
    for event in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::TableCell) => (cell.clear(), depth += 1).1,
            Event::End(TagEnd::TableCell) => (row.push(cell.clone()), depth -= 1).1,
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => rows.push(std::mem::take(&mut row)),
            Event::Text(t) | Event::Code(t) if depth > 0 => cell.push_str(&t),
            Event::Html(_) | Event::InlineHtml(_) if depth > 0 => panic!("raw HTML in a cell: {text}"),
            _ => {}
        }
    }
    rows
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary text (markup of every format, separators, newlines, controls,
    /// noncharacters) through the Markdown, JUnit, HTML, LaTeX and CSV writers: each output
    /// parses back, with the text where it was put.
    #[test]
    fn every_writer_escapes_arbitrary_text(text in "[\\PC\\n\\r\\t|`*_<>&\"'#^$%{}~\\\\\u{fffe}\u{ffff}\u{1}-]{0,40}") {
        let r = report("my-claim", &text);
        let md = dlncheck::claims::table::markdown(std::slice::from_ref(&r), &[]);
        let rows = table_rows(&md);
        prop_assert_eq!(rows.len(), 2, "{}", md);
        prop_assert!(rows.iter().all(|r| r.len() == 6), "{:?}", rows);
        let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        prop_assert_eq!(rows[1][1].trim(), one_line.trim(), "the source cell shows the text");

        let xml = dlncheck::claims::ci::junit(std::slice::from_ref(&r), &[]);
        let doc = roxmltree::Document::parse(&xml).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert!(doc.descendants().any(|n| n.has_tag_name("testcase")));

        let html = dlncheck::claims::ci::html(std::slice::from_ref(&r), &[], &[]);
        let body = &html[html.find("<body>").unwrap()..html.find("</html>").unwrap()];
        let doc = roxmltree::Document::parse(body).map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        prop_assert!(!doc.descendants().any(|n| n.has_tag_name("script")));

        let tex = dlncheck::escape::latex(&text);
        let spaced: String = text.chars().map(|c| if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') { ' ' } else { c }).collect();
        prop_assert_eq!(unlatex(&tex), spaced, "LaTeX: every special escaped, lines joined");
        let csv = dlncheck::escape::csv_field(&text);
        prop_assert_eq!(csv[1..csv.len() - 1].replace("\"\"", "\""), text);
    }
}

/// Reads back what [`dlncheck::escape::latex`] wrote: every special is escaped.
fn unlatex(s: &str) -> String {
    let s =
        s.replace(r"\textbackslash{}", "\u{0}").replace(r"\textasciicircum{}", "^").replace(r"\textasciitilde{}", "~");
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().expect("an escape names a character")),
            '#' | '$' | '%' | '&' | '_' | '{' | '}' => panic!("unescaped {c} in {s}"),
            c => out.push(c),
        }
    }
    out.replace('\u{0}', "\\")
}

// ---- classes 7 and 8: numerics and scale ---------------------------------------------------

fn gaussian(n: usize, d: usize, seed: u64) -> (DMatrix<f64>, DVector<f64>) {
    let p = dlncheck::problem::ProblemSpec { n, d, sparsity: 3, seed, ..Default::default() }.generate().unwrap();
    (p.x, p.y)
}

#[test]
fn rank_is_decided_by_scale_free_singular_values() {
    let (x, y) = gaussian(10, 25, 1);
    let problem =
        |x: DMatrix<f64>| dlncheck::problem::Problem { x, y: y.clone(), beta_star: None, x_test: None, y_test: None };
    // Condition number 6e8 (one row nearly the sum of two others): full rank.
    let mut ill = x.clone();
    let mix = ill.row(0) + ill.row(1) + ill.row(2) * 1.6e-9;
    ill.set_row(2, &mix);
    assert!(problem(ill.clone()).check_interpolation(Path::new("X")).is_ok());
    // Columns of 1e-20 … 1e20, and X × 1e200: full rank.
    let cols = DMatrix::from_fn(10, 25, |i, j| x[(i, j)] * 10f64.powf(-20.0 + 40.0 * j as f64 / 24.0));
    assert!(problem(cols).check_interpolation(Path::new("X")).is_ok());
    assert!(problem(&x * 1e200).check_interpolation(Path::new("X")).is_ok());
    // Two equal rows: rank-deficient, said so.
    let mut dup = x.clone();
    let r0 = dup.row(0).into_owned();
    dup.set_row(1, &r0);
    let e = problem(dup).check_interpolation(Path::new("X")).unwrap_err().to_string();
    assert!(e.contains("rank-deficient"), "{e}");
}

#[test]
fn answers_hold_at_every_scale_or_are_refused() {
    use dlncheck::solve::{LpBackend, NewtonSettings, min_norm, solve_implicit, weighted_basis_pursuit};
    let (x, y) = gaussian(10, 25, 3);
    let ones = DVector::from_element(25, 1.0);
    let rel = |a: &DVector<f64>, b: &DVector<f64>| dlncheck::numeric::rel_dist(a, b);
    // min-ℓ2 is homogeneous: 1e200 · X.
    let l2 = min_norm(&x, &y).unwrap();
    assert!(rel(&(min_norm(&(&x * 1e200), &y).unwrap() * 1e200), &l2) < 1e-12);
    // argmin ψ_1 with y × 1e-200 is the min-ℓ2 interpolator (ψ_α ≈ b²/(2α²) there), not 0.
    let zero = DVector::zeros(25);
    let tiny =
        solve_implicit(&x, &(&y * 1e-200), &Scales::two_sided(zero.clone(), zero.clone()), &NewtonSettings::default())
            .unwrap();
    assert!(rel(&(tiny.beta * 1e200), &l2) < 1e-10);
    // X and y × 1e-160: the same problem as X, y.
    let plain =
        solve_implicit(&x, &y, &Scales::two_sided(zero.clone(), zero.clone()), &NewtonSettings::default()).unwrap();
    let scaled = solve_implicit(
        &(&x * 1e-160),
        &(&y * 1e-160),
        &Scales::two_sided(zero.clone(), zero.clone()),
        &NewtonSettings::default(),
    )
    .unwrap();
    assert!(rel(&scaled.beta, &plain.beta) < 1e-12);
    // ψ_α keeps its digits for |b| ≪ α²: ≈ b²/(4α²).
    let b = DVector::from_vec(vec![1e-100, -2e-100]);
    let psi = dlncheck::bias::hyperbolic_entropy(&DVector::from_element(2, 1.0), &b);
    assert!((psi / 1.25e-200 - 1.0).abs() < 1e-14, "{psi:e}"); // Σ b²/(4α²)
    // Basis pursuit: weights × 1e-12 (LP backend), y × 1e-200: the same argmin, a true gap.
    let w = DVector::from_fn(25, |i, _| 1.0 + (i % 3) as f64);
    let reference = weighted_basis_pursuit(&x, &y, &w, LpBackend::Homotopy).unwrap();
    let small_w = weighted_basis_pursuit(&x, &y, &(&w * 1e-12), LpBackend::Minilp).unwrap();
    assert!(rel(&small_w.beta, &reference.beta) < 1e-9 && small_w.rel_gap <= 1e-9);
    assert!((small_w.objective / (reference.objective * 1e-12) - 1.0).abs() < 1e-9);
    let small_y = weighted_basis_pursuit(&x, &(&y * 1e-200), &ones, LpBackend::Homotopy).unwrap();
    assert!((small_y.dual_objective / small_y.objective - 1.0).abs() < 1e-9, "a gap relative to the objective");
    // A large-gain run: ln α_∞² = −5005, ρ = ±4000 (max ln α_∞² + |ρ| = −1005) is in range.
    let ell = DVector::from_element(25, -5005.0);
    let rho = DVector::from_fn(25, |i, _| if i % 2 == 0 { 4000.0 } else { -4000.0 });
    let sol = solve_implicit(&x, &y, &Scales::two_sided(ell.clone(), rho.clone()), &NewtonSettings::default()).unwrap();
    let kkt = dlncheck::predict::kkt_residual(&x, &Scales::two_sided(ell.clone(), rho.clone()), &sol.beta).unwrap();
    assert!(kkt.is_none_or(|k| k < 1e-8), "{kkt:?}");
    // A trajectory whose steps sit at γg = ±(1 − 2⁻⁴⁵): each adds ≈ 30.5 to the gain and
    // ∓30 to ρ, so ℓ ≈ −1500 with |ρ| up to ≈ 1500 (in range, max ℓ + |ρ| ≈ −30).
    let mut acc = dlncheck::trajectory::GainAccumulator::new(25);
    let edge = 1.0 - (-45f64).exp2();
    for k in 0..50 {
        let step: Vec<f64> = (0..25).map(|i| if (i + k) % 3 == 0 { -edge } else { edge }).collect();
        acc.add(&step).unwrap();
    }
    let eff = dlncheck::model::Model::uv(DVector::from_element(25, 0.1)).effective_init(&acc);
    let (ell, rho) = (eff.ln_alpha_inf2(), eff.rho.clone());
    let top = ell.iter().zip(rho.iter()).map(|(l, r)| l + r.abs()).fold(f64::NEG_INFINITY, f64::max);
    assert!(top < -20.0 && ell.max() < -1400.0, "the case: ln α_∞² + |ρ| = {top}");
    let sol = solve_implicit(&x, &y, &Scales::two_sided(ell.clone(), rho.clone()), &NewtonSettings::default()).unwrap();
    let kkt = dlncheck::predict::kkt_residual(&x, &Scales::two_sided(ell.clone(), rho.clone()), &sol.beta).unwrap();
    assert!(sol.residual <= 1e-10 && kkt.is_none_or(|k| k < 1e-8), "{kkt:?}");
}

// ---- class 9: messages that name the cause ---------------------------------------------------

#[test]
fn messages_name_the_cause() {
    let dir = Dir::new();
    let q = std::fs::read_to_string(theory().join("claims/q-split.toml")).unwrap();
    let claim = |extra: &str| {
        format!(
            "id = \"c\"\nsource = \"s\"\nstatement = \"t\"\n[scenario]\n{extra}\n[runs.r]\nalgorithm = \"gd\"\nstepsize = \"0.1\"\n\
             [check]\nholds = \"r.loss >= 0\"\ntest = \"every_seed\"\n"
        )
    };
    for (extra, needle) in [
        ("quick_seeds = [-1]", "quick_seeds must be a count (≥ 1) or a list of seeds"),
        ("seeds = 2\nfirst_seed = 18446744073709551615", "passes the largest seed"),
    ] {
        let path = dir.path("c.toml");
        std::fs::write(&path, claim(extra)).unwrap();
        let e = dlncheck::claims::load(&path).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
    // new-claim: the length limit is said; --like replaces an id written without spaces.
    let t = dir.path("th");
    std::fs::create_dir_all(t.join("claims")).unwrap();
    let long = "a".repeat(81);
    let (code, _, err) = dlncheck(&["new-claim", &long, "--dir", t.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("at most 80"), "{err}");
    std::fs::write(t.join("claims/old.toml"), q.replacen("id = \"q-split\"", "id=\"old\"", 1)).unwrap();
    assert_eq!(dlncheck(&["new-claim", "new", "--like", "old", "--dir", t.to_str().unwrap()]).0, 0);
    assert_eq!(dlncheck::claims::load(&t.join("claims/new.toml")).unwrap().id, "new");
    // threshold on y = 0 says the loss is already 0.
    let zero = dir.path("zero.npz");
    let (x, _) = gaussian(6, 10, 0);
    NpzWriter::new().matrix("X", &x).vector("y", &DVector::zeros(6)).write(&zero, &[]).unwrap();
    let (code, _, err) = dlncheck(&["threshold", "--problem", zero.to_str().unwrap(), "--alpha", "0.1"]);
    assert_eq!(code, 2);
    assert!(err.contains("already 0"), "{err}");
}

/// Values from 1e-300 to 1e300, signed zeros, and the non-finite ones.
fn hostile_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, f64::NAN, f64::INFINITY, 0.1, -0.1]),
        -2.0f64..2.0,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Final weights in a trajectory (issue 22): any lengths, values and pairings are
    /// read or refused by name (u, v, w_plus, w_minus, beta), weights kept only when they
    /// give beta; and `diagnose` on what was read never panics and changes nothing.
    #[test]
    fn final_weights_are_read_or_refused_by_name(
        u in prop::option::of(prop::collection::vec(hostile_value(), 2..5)),
        v in prop::option::of(prop::collection::vec(hostile_value(), 2..5)),
        beta in prop::collection::vec(hostile_value(), 3..4),
        grads in prop::collection::vec(hostile_value(), 6..7),
    ) {
        let dir = Dir::new();
        let path = dir.path("t.npz");
        let mut w = NpzWriter::new();
        w.f64("alpha", &[], &[0.1]).f64("stepsizes", &[2], &[0.1, 0.05]).f64("grads", &[2, 3], &grads).f64("beta", &[3], &beta);
        if let Some(u) = &u { w.f64("u", &[u.len()], u); }
        if let Some(v) = &v { w.f64("v", &[v.len()], v); }
        w.write(&path, &[]).unwrap();
        match dlncheck::trajectory::ExternalTrajectory::load(&path, None) {
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(["u", "v", "beta", "grads"].iter().any(|a| msg.contains(&format!("`{a}`")) || msg.contains(a)), "{msg}");
            }
            Ok(t) => {
                if let Some((wp, wm)) = &t.weights {
                    let b = t.beta.as_ref().unwrap();
                    prop_assert!(dlncheck::runfile::weights_mismatch(dlncheck::model::Param::Uv, wp, wm, b, f64::EPSILON / 2.0).is_none());
                }
                let (x, y) = gaussian(2, 3, 1);
                let p = dlncheck::problem::Problem { x, y, beta_star: None, x_test: None, y_test: None };
                let mut readings = dlncheck::diagnose::Readings::new(&t.model, 3);
                for (g, gamma) in grads.chunks_exact(3).zip(&t.stepsizes) {
                    readings.add(*gamma, g);
                }
                if let (Ok(eff), Some(b)) = (t.effective_init(), t.beta.as_ref()) {
                    let mut acc = dlncheck::trajectory::GainAccumulator::new(3);
                    (acc.gain, acc.rho) = (eff.gain.clone(), eff.rho.clone());
                    let weights = t.weights.as_ref().map(|(p, m)| (p, m));
                    let logged = dlncheck::diagnose::Logged { model: &t.model, acc: &acc, readings: Some(&readings), beta: b, weights };
                    let dx = dlncheck::diagnose::diagnose(&p, &logged, 1e-8);
                    prop_assert!(!dx.best.message.is_empty());
                    prop_assert!(dx.tried.iter().all(|t| t.rel_err.is_none_or(f64::is_finite)));
                }
            }
        }
    }
}
