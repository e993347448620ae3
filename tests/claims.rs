//! The claims under theory/claims: each holds (or is a marked known disagreement) and is
//! pinned by a snapshot; a deliberately wrong variant of each family flips its verdict;
//! malformed files are refused with file, line and column while the others still run.

mod common;

use std::path::{Path, PathBuf};

use common::{dlncheck, dlncheck_json, snapshot_settings};
use dlncheck::claims::author::{snapshot_body, snapshot_path};
use dlncheck::claims::{Verdict, load_dir, paired_t, parse, run_claim, snapshot_text};
use rayon::prelude::*;

fn theory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("theory")
}

fn claim_file(id: &str) -> (PathBuf, String) {
    let path = theory().join("claims").join(format!("{id}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

/// Runs claim `id` with `from` replaced by `to` (quick seeds) and returns its verdict.
fn variant(id: &str, replacements: &[(&str, &str)]) -> Verdict {
    let (path, mut text) = claim_file(id);
    for (from, to) in replacements {
        assert!(text.contains(from), "{id} contains `{from}`");
        text = text.replace(from, to);
    }
    let claim = parse(&path, &text).unwrap_or_else(|e| panic!("{e}"));
    let report = run_claim(&claim, true);
    assert!(report.error.is_none(), "{id}: {:?}", report.error);
    report.verdict
}

/// Whether `relation` of claim `id` (with the replacements, quick seeds) holds.
fn relation_holds(id: &str, replacements: &[(&str, &str)], relation: &str) -> bool {
    let (path, mut text) = claim_file(id);
    for (from, to) in replacements {
        assert!(text.contains(from), "{id} contains `{from}`");
        text = text.replace(from, to);
    }
    let report = run_claim(&parse(&path, &text).unwrap_or_else(|e| panic!("{e}")), true);
    assert!(report.error.is_none(), "{id}: {:?}", report.error);
    let c = report.comparisons.iter().find(|c| c.relation == relation);
    c.unwrap_or_else(|| panic!("{id} has no relation `{relation}`")).holds
}

#[test]
fn every_claim_holds_or_is_a_known_disagreement_and_is_pinned() {
    let claims: Vec<_> =
        load_dir(&theory()).unwrap().into_iter().map(|c| c.unwrap_or_else(|e| panic!("{e}"))).collect();
    assert!(claims.len() >= 15);
    let reports: Vec<_> = claims.par_iter().map(|c| run_claim(c, false)).collect();
    for (claim, r) in claims.iter().zip(&reports) {
        let expected = if claim.known_disagreement.is_some() { Verdict::KnownDisagreement } else { Verdict::Holds };
        assert_eq!(r.verdict, expected, "{}", snapshot_text(r));
        // Say how to accept a new or changed snapshot before insta compares.
        let path = snapshot_path(&theory(), &r.id);
        let accept = format!("review, then accept with: cargo run --release -- check --claim {} --accept", r.id);
        match std::fs::read_to_string(&path) {
            Err(_) => panic!("claim {} has no snapshot {}; {accept}", r.id, path.display()),
            Ok(pinned) => assert!(
                snapshot_body(&pinned) == Some(snapshot_text(r).as_str()),
                "claim {}'s measured values differ from {}:\n{}\n{accept}",
                r.id,
                path.display(),
                snapshot_text(r)
            ),
        }
        snapshot_settings().bind(|| insta::assert_snapshot!(format!("claim_{}", r.id), snapshot_text(r)));
    }
}

#[test]
fn exact_characterisation_without_the_half_in_alpha_inf_fails() {
    // α_∞ = α exp(−Gain/2): dropping the 1/2 doubles the gain in ln α_∞².
    let wrong = [("2 * ln(half.alpha) - half.gain", "2 * ln(half.alpha) - 2 * half.gain")];
    assert_eq!(variant("exact-gd-uncentred", &wrong), Verdict::Fails);
}

/// The exact family (theory/README.md § Other starts and parametrisations): each claim
/// flips when its theory forgets what the start or parametrisation changes.
#[test]
fn the_family_claims_flip_when_the_start_or_parametrisation_is_forgotten() {
    // The paper's scale 2 ln α − Gain in place of the start's ln|w₊,₀ w₋,₀| − Gain.
    let paper = [("implicit(gd.ln_alpha_inf2, gd.rho)", "implicit(2 * ln(alpha) - gd.gain, gd.rho)")];
    assert_eq!(variant("exact-family-starts", &paper), Verdict::Fails);
    // The two-sided hyperbolic problem in place of the relative entropy with b ≥ 0.
    let two_sided =
        [("rel_err(gd.beta, gd.theory)", "rel_err(gd.beta, implicit(2 * ln(alpha) - gd.gain, 0 * gd.gain))")];
    assert_eq!(variant("exact-family-sign-constrained", &two_sided), Verdict::Fails);
    let mixed = [(
        "rel_err(gd_half.beta, gd_half.theory)",
        "rel_err(gd_half.beta, implicit(2 * ln(alpha) - gd_half.gain, 0 * gd_half.gain))",
    )];
    assert_eq!(variant("exact-family-mixed", &mixed), Verdict::Fails);
    // u2v2's start w± = √2α without its √2.
    let no_root_two = [("ln(2) + 2 * ln(alpha) - gd.gain", "2 * ln(alpha) - gd.gain")];
    assert_eq!(variant("exact-u2v2", &no_root_two), Verdict::Fails);
    // GD on u ⊙ v is not mirror descent: its limit is not gradient flow's.
    let gd_for_md = [("rel_err(md.beta, gradient_flow) <= 1e-10", "rel_err(uv.beta, gradient_flow) <= 1e-10")];
    assert_eq!(variant("mirror-descent-has-no-gain", &gd_for_md), Verdict::Fails);
    // u2v2 at γ is uv at 2γ, not at 1.9γ.
    assert_eq!(
        variant("u2v2-gain-is-uv-at-double-stepsize", &[("stepsize = 0.3", "stepsize = 0.285")]),
        Verdict::Fails
    );
    // The shape's sign sets the direction the limit moves.
    let flipped = [("v0 = \"sqrt(2) * alpha * sinh(1)\"", "v0 = \"-sqrt(2) * alpha * sinh(1)\"")];
    assert_eq!(variant("init-shape-moves-the-limit", &flipped), Verdict::Fails);
}

#[test]
fn conservation_without_its_factor_two_fails_and_kkt_at_alpha_fails() {
    assert_eq!(variant("conservation-kkt", &[("- 2 * gd.alpha^2", "- gd.alpha^2")]), Verdict::Fails);
    // KKT at the initial scale α instead of α_∞ (i.e. ignoring the gain).
    assert_eq!(
        variant("conservation-kkt", &[("kkt(gd.beta, gd.ln_alpha_inf2", "kkt(gd.beta, 2 * ln(gd.alpha)")]),
        Verdict::Fails
    );
}

#[test]
fn small_stepsizes_do_not_approach_min_l2() {
    assert_eq!(variant("gradient-flow-limit", &[("gradient_flow)", "min_l2())")]), Verdict::Fails);
}

#[test]
fn small_stepsize_gain_with_a_halved_sum_fails() {
    let wrong = [("gd_small.gain - gd_small.first_order_gain", "gd_small.gain - 0.5 * gd_small.first_order_gain")];
    assert_eq!(variant("small-stepsize-gain", &wrong), Verdict::Fails);
}

#[test]
fn the_small_scale_limit_flips_with_the_sign_of_ln_alpha() {
    // ln α_∞ = +t·w (a growing scale) goes the other way, towards min-ℓ2; at t = 80 the
    // scales α_∞² span e^160..e^480, so the weighted min-norm solution b = C Xᵀ(X C Xᵀ)⁻¹y
    // (C = diag(α_∞²)) cannot be computed to its tolerance in f64 (the dual step is
    // magnified by C): the solver says so instead of answering (before, it returned a
    // residual-1 answer that made the claim "fail" for the wrong reason).
    let (path, text) = claim_file("weighted-bp-limit");
    let claim = parse(&path, &text.replace("implicit(-2 * 80 * w", "implicit(2 * 80 * w")).unwrap();
    let report = run_claim(&claim, true);
    assert_eq!(report.verdict, Verdict::Error);
    assert!(report.error.unwrap().contains("dual Newton did not converge"));
    // The dense claim disagrees only through its quoted rate: without it, the marked
    // disagreement is reported as not reproduced.
    assert_eq!(variant("weighted-bp-limit-dense", &[("and dist80 <= 1e-8", "")]), Verdict::NotReproduced);
}

#[test]
fn gd_labelled_as_sgd_flips_the_stepsize_claims() {
    let gd = [("algorithm = \"sgd\"", "algorithm = \"gd\"")];
    assert_eq!(variant("sgd-large-stepsize-helps", &gd), Verdict::Fails);
    assert_eq!(variant("gd-edge-of-stability", &[("algorithm = \"gd\"", "algorithm = \"sgd\"")]), Verdict::Fails);
}

#[test]
fn swapped_algorithms_flip_the_gain_claims() {
    let swap = [
        ("[runs.gd]\nalgorithm = \"gd\"", "[runs.gd]\nalgorithm = \"@\""),
        ("[runs.sgd]\nalgorithm = \"sgd\"", "[runs.sgd]\nalgorithm = \"gd\""),
        ("\"@\"", "\"sgd\""),
    ];
    assert_eq!(variant("gain-shape-gd", &swap), Verdict::Fails);
    assert_eq!(variant("gain-tracks-diag-h", &swap), Verdict::Fails);
    let swap_mid = [
        ("[runs.gd_mid]\nalgorithm = \"gd\"", "[runs.gd_mid]\nalgorithm = \"sgd\""),
        ("[runs.sgd_mid]\nalgorithm = \"sgd\"", "[runs.sgd_mid]\nalgorithm = \"gd\""),
    ];
    assert_eq!(variant("gain-sgd-near-threshold", &swap_mid), Verdict::Fails);
}

#[test]
fn the_edge_of_stability_claims_flip_when_their_runs_move() {
    // Another stepsize's prediction is not this run's limit.
    let other = [("rel_err(e99.beta, e99.theory)", "rel_err(e99.beta, e90.theory)")];
    assert_eq!(variant("exact-gd-edge-of-stability", &other), Verdict::Fails);
    let other = [("rel_err(b2_99.beta, b2_99.theory)", "rel_err(b2_99.beta, b2_90.theory)")];
    assert_eq!(variant("exact-sgd-edge-of-stability", &other), Verdict::Fails);
    // The window claims are known disagreements (islands of blow-up at fixed fractions
    // of θ_div), so their parts are checked one by one: a run moved above the divergence
    // threshold does not converge, and the part that held fails.
    for (id, run) in [("edge-of-stability-window", "c90"), ("sgd-edge-of-stability-window", "c90")] {
        let relation = format!("{run}.converged >= 1");
        assert!(relation_holds(id, &[], &relation), "{id}: {relation} holds as written");
        let moved = [("stepsize = \"0.9 * threshold\"", "stepsize = \"1.5 * divergence\"")];
        assert!(!relation_holds(id, &moved, &relation), "{id}: {relation} fails above θ_div");
    }
    // Far above the classical bound (θ/bound ≤ 2.1 for GD) the runs do not converge.
    let above = [(
        "[runs.gd_near]\nalgorithm = \"gd\"\nstepsize = \"0.99 * bound\"",
        "[runs.gd_near]\nalgorithm = \"gd\"\nstepsize = \"2.5 * bound\"",
    )];
    assert_eq!(variant("stepsize-bound-converges", &above), Verdict::Fails);
}

#[test]
fn the_test_loss_claims_flip_with_the_algorithm_or_the_data() {
    assert_eq!(variant("test-loss-sgd-helps", &[("algorithm = \"sgd\"", "algorithm = \"gd\"")]), Verdict::Fails);
    assert_eq!(variant("test-loss-gd-edge", &[("algorithm = \"gd\"", "algorithm = \"sgd\"")]), Verdict::Fails);
    assert_eq!(variant("test-loss-gd-edge-uncentred", &[("mean = 1.0", "mean = 0.0")]), Verdict::Fails);
}

#[test]
fn the_gain_claims_flip_when_misstated() {
    let swap = [
        ("[runs.gd]\nalgorithm = \"gd\"", "[runs.gd]\nalgorithm = \"@\""),
        ("[runs.sgd]\nalgorithm = \"sgd\"", "[runs.sgd]\nalgorithm = \"gd\""),
        ("\"@\"", "\"sgd\""),
    ];
    assert_eq!(variant("gain-tracks-diag-h-heterogeneous", &swap), Verdict::Fails);
    // α_∞ ≤ α holds, α_∞ ≤ α/2 does not (GD at 0.9θ keeps up to 0.9α).
    let half = [("max(gd_edge.alpha_inf / alpha) <= 1", "max(gd_edge.alpha_inf / alpha) <= 0.5")];
    assert_eq!(variant("alpha-inf-below-alpha", &half), Verdict::Fails);
    let tighter = [("half_alpha2 = \"max(alpha)^2 / 2\"", "half_alpha2 = \"max(alpha)^2 / 2000\"")];
    assert_eq!(variant("beta-tilde0-small", &tighter), Verdict::Fails);
    let reversed = [("b1.gain_l1 > b2.gain_l1 > b5.gain_l1 > b20.gain_l1", "b1.gain_l1 < b20.gain_l1")];
    assert_eq!(variant("gain-batch-size", &reversed), Verdict::Fails);
    let smaller = [(
        "[runs.gd9]\nalgorithm = \"gd\"\nstepsize = \"0.9 * threshold\"",
        "[runs.gd9]\nalgorithm = \"gd\"\nstepsize = \"0.2 * threshold\"",
    )];
    assert_eq!(variant("gain-monotone-in-stepsize", &smaller), Verdict::Fails);
    let gd = [("algorithm = \"sgd\"", "algorithm = \"gd\"")];
    assert_eq!(variant("sgd-limit-approaches-weighted-bp", &gd), Verdict::Fails);
}

/// A known disagreement stays visible with the quick seeds, and says so when a seed
/// list does not reproduce it.
#[test]
fn a_known_disagreement_is_never_reported_as_holding() {
    let (path, text) = claim_file("weighted-bp-limit-dense");
    let quick = run_claim(&parse(&path, &text).unwrap(), true);
    assert_eq!(quick.verdict, Verdict::KnownDisagreement);
    let easy = text.replace("quick_seeds = [2]", "quick_seeds = [0]");
    let report = run_claim(&parse(&path, &easy).unwrap(), true);
    assert_eq!(report.verdict, Verdict::NotReproduced);
    let table = dlncheck::claims::table::markdown(&[report], &[]);
    assert!(table.contains("NOT reproduced with the quick seeds (1 seed)"), "{table}");
}

/// df = 1: the t distribution is Cauchy, P(T > t) = 1/2 − atan(t)/π.
#[test]
fn paired_t_matches_the_cauchy_closed_form() {
    let (p, d) = paired_t(&[1.0, 3.0]);
    assert!((p - (0.5 - 2f64.atan() / std::f64::consts::PI)).abs() < 1e-12, "{p}");
    assert!((d - 2.0 / 2f64.sqrt()).abs() < 1e-12);
    assert_eq!(paired_t(&[1.0, 1.0, 1.0]).0, 0.0);
    assert_eq!(paired_t(&[-1.0, -1.0]).0, 1.0);
}

const GOOD: &str = r#"id = "good"
source = "test"
statement = "basis pursuit has the smallest l1 norm"
[scenario]
n = 10
d = 20
[check]
holds = "norm1(bp()) <= norm1(min_l2())"
"#;

/// 1-based line and column of the first `needle` in `text`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).unwrap_or_else(|| panic!("`{needle}` in {text}"));
    let line = text[..at].matches('\n').count() + 1;
    (line, at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1)
}

#[test]
fn malformed_claims_exit_2_with_position_and_the_rest_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let named = |id: &str| GOOD.replace("id = \"good\"", &format!("id = \"{id}\""));
    let runs = "[runs.r]\nalgorithm = \"gd\"\nstepsize = 0.1\n[check]";
    // (file, text, where the error must point, what it must say)
    let cases = [
        ("syntax.toml", named("syntax").replace("[check]", "[check"), "\nholds", "expected `]`"),
        ("quantity.toml", named("quantity").replace("bp()", "bpp()"), "bpp()", "unknown function `bpp`"),
        ("run.toml", named("run").replace("[check]", runs).replace("bp()", "q.beta"), "q.beta", "unknown name `q`"),
        ("range.toml", named("range").replace("d = 20", "d = 5"), "5", "d must exceed n"),
        ("expr.toml", named("expr").replace("<= norm1", "<= * norm1"), "* norm1", "expected a number, a name or `(`"),
        (
            "stepsize.toml",
            named("step").replace("[check]", &runs.replace("0.1", "\"-0.5 * threshold\"")),
            "\"-0.5",
            "> 0",
        ),
    ];
    std::fs::write(dir.path().join("good.toml"), GOOD).unwrap();
    for (file, text, _, _) in &cases {
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    let (code, out, err) = dlncheck(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("| good |") && out.contains("| holds |"), "{out}");
    for (file, text, needle, what) in &cases {
        let (mut line, mut col) = position(text, needle);
        if needle.starts_with('\n') {
            // toml reports the unclosed header at the end of its line.
            col = text.lines().nth(line - 1).unwrap().len() + 1;
        } else if *needle == "5" {
            (line, col) = position(text, "d = 5");
            col += 4;
        }
        let full = format!("{}:{line}:{col}:", dir.path().join(file).display());
        let hit = out.lines().find(|l| l.starts_with(&full)).unwrap_or_else(|| panic!("{full} in:\n{out}"));
        assert!(hit.contains(what), "{hit}");
    }
    let (code, json) = dlncheck_json(&["check", dir.path().to_str().unwrap(), "--claim", "good"]);
    assert_eq!(code, 0);
    assert_eq!(json["claims"][0]["verdict"], "holds");
    let (code, _, err) = dlncheck(&["check", dir.path().to_str().unwrap(), "--claim", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no claim with id `nope`"), "{err}");
}

/// Each symbolic claim holds as shipped; a dropped factor or a flipped sign is rejected.
#[test]
fn symbolic_claims_reject_their_wrong_variants() {
    for (id, from, to) in [
        ("psi-gradient", "rhs = \"asinh(b / a^2) / 2\"", "rhs = \"asinh(b / a^2)\""),
        ("psi-hessian", "rhs = \"1 / (2 * sqrt(b^2 + a^4))\"", "rhs = \"1 / sqrt(b^2 + a^4)\""),
        ("psi-convex", "positive = \"diff(diff(psi, b), b)\"", "positive = \"diff(psi, b)\""),
        ("q-split", "q_minus = \"x - ln(abs(1 + x))\"", "q_minus = \"x + ln(abs(1 + x))\""),
        ("q-series", "terms = \"x^2 + x^4 / 2\"", "terms = \"x^2 + x^4 / 3\""),
        ("beta-tilde0", "rho = \"ln(a_plus / a_minus)\"", "rho = \"ln(a_minus / a_plus)\""),
        ("psi-small-scale-limit", "equals = \"abs(b)\"", "equals = \"2 * abs(b)\""),
        ("psi-large-scale-limit", "equals = \"b^2 / 4\"", "equals = \"b^2 / 2\""),
        ("quadratic-potential", "rhs = \"1 + b\"", "rhs = \"1 - b\""),
    ] {
        assert_eq!(variant(id, &[]), Verdict::Holds, "{id}");
        assert_eq!(variant(id, &[(from, to)]), Verdict::Fails, "{id} with {to}");
    }
}

#[test]
fn symbolic_routes_are_reported() {
    let route = |id: &str| {
        let (path, text) = claim_file(id);
        run_claim(&parse(&path, &text).unwrap(), true).comparisons[0].route.clone().unwrap()
    };
    assert_eq!(route("quadratic-potential"), "simplification");
    assert!(route("psi-gradient").starts_with("evaluation at 2000 points (600 in edge regions)"));
    assert!(route("q-series").starts_with("Taylor coefficients"));
    assert!(route("psi-small-scale-limit").starts_with("numeric limit"));
}

#[test]
fn malformed_formulas_point_at_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = "id = \"bad\"\nsource = \"t\"\nstatement = \"t\"\n[symbolic]\nvariables = { x = [0.0, 1.0] }\nidentity = { lhs = \"x + sin(x)\", rhs = \"x\" }\n";
    std::fs::write(dir.path().join("bad.toml"), text).unwrap();
    let (code, out, _) = dlncheck(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    let (line, col) = position(text, "sin(x)");
    let needle = format!("bad.toml:{line}:{col}: unknown function `sin`");
    assert!(out.contains(&needle), "{needle} in {out}");
}

/// Adding a claim needs no other tool: scaffold it from another claim, check it, accept
/// its snapshot, and the snapshot is the one the claims test compares (same path and
/// format as every pinned claim).
#[test]
fn a_new_claim_is_scaffolded_checked_and_accepted() {
    let dir = common::Dir::new();
    let mine = dir.path("theory");
    std::fs::create_dir_all(mine.join("claims")).unwrap();
    std::fs::copy(theory().join("claims/q-split.toml"), mine.join("claims/q-split.toml")).unwrap();
    let t = mine.to_str().unwrap();
    let (code, out, err) = dlncheck(&["new-claim", "q-split-again", "--like", "q-split", "--dir", t]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("--accept"), "{out}");
    let (code, _, err) = dlncheck(&["new-claim", "q-split-again", "--dir", t]);
    assert_eq!(code, 2, "an existing file is not overwritten");
    assert!(err.contains("exists"), "{err}");
    assert_eq!(dlncheck(&["new-claim", "Bad Id", "--dir", t]).0, 2);
    let (code, out, _) = dlncheck(&["check", t, "--claim", "q-split-again"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(dlncheck(&["check", t, "--accept"]).0, 2, "--accept needs --claim");
    assert_eq!(dlncheck(&["check", t, "--claim", "q-split-again", "--accept", "--quick"]).0, 2);
    let (code, out, err) = dlncheck(&["check", t, "--claim", "q-split-again", "--accept"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("wrote new snapshot"), "{out}");
    // The accepted file is what the claims test compares: same body as the original
    // claim's pinned snapshot, up to the id.
    let written = std::fs::read_to_string(dir.path("snapshots/claim_q-split-again.snap")).unwrap();
    let pinned = std::fs::read_to_string(snapshot_path(&theory(), "q-split")).unwrap();
    assert_eq!(
        snapshot_body(&written).unwrap(),
        snapshot_body(&pinned).unwrap().replace("claim q-split:", "claim q-split-again:")
    );
    let (_, again, _) = dlncheck(&["check", t, "--claim", "q-split-again", "--accept"]);
    assert!(again.contains("unchanged"), "{again}");
    // The template itself loads and is a valid claim.
    let (code, _, _) = dlncheck(&["new-claim", "from-template", "--dir", t]);
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(mine.join("claims/from-template.toml")).unwrap();
    parse(&mine.join("claims/from-template.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
}

/// CI reports: JUnit XML with one test case per claim (parsed), and an HTML page with
/// the claims table and the figures inline (parsed as XML-compatible markup where it
/// matters: the table rows and the inline SVG).
#[test]
fn check_writes_junit_and_html_reports() {
    let dir = common::Dir::new();
    let mine = dir.path("theory");
    std::fs::create_dir_all(mine.join("claims")).unwrap();
    for id in ["q-split", "psi-convex", "quadratic-potential"] {
        std::fs::copy(theory().join(format!("claims/{id}.toml")), mine.join(format!("claims/{id}.toml"))).unwrap();
    }
    let bad = mine.join("claims/broken.toml");
    std::fs::write(&bad, "id = \"broken\"\nsource = 1\n").unwrap();
    let t = mine.to_str().unwrap();
    let xml_out = dir.path("check.xml");
    let (code, out, _) = dlncheck(&["check", t, "--out", xml_out.to_str().unwrap()]);
    assert_eq!(code, 2, "a file did not load: {out}");
    assert!(out.contains("| claim |"), "the Markdown table on stdout: {out}");
    let xml = std::fs::read_to_string(&xml_out).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    let names: Vec<&str> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for id in ["q-split", "psi-convex", "quadratic-potential", "broken"] {
        assert!(names.contains(&id), "{names:?}");
    }
    let broken = cases.iter().find(|c| c.attribute("name") == Some("broken")).unwrap();
    assert!(broken.children().any(|n| n.has_tag_name("error")));
    // HTML, with a figure beside the theory directory inlined.
    std::fs::create_dir_all(dir.path("figures")).unwrap();
    let svg = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"><script>alert(2)</script><circle r=\"1\"/></svg>";
    std::fs::write(dir.path("figures/f.svg"), svg).unwrap();
    std::fs::write(dir.path("figures/unnamed.svg"), "<svg xmlns=\"http://www.w3.org/2000/svg\"/>").unwrap();
    std::fs::remove_file(&bad).unwrap();
    // Only the figures a claim names are shown (issue 24), with the claims naming them.
    let q = mine.join("claims/q-split.toml");
    let text = std::fs::read_to_string(&q).unwrap();
    let named = text.replacen("\nsource = ", "\nfigures = [\"missing.svg\"]\nsource = ", 1);
    std::fs::write(&q, &named).unwrap();
    let (code, _, err) = dlncheck(&["check", t, "--format", "html"]);
    assert!(code == 2 && err.contains("missing.svg") && err.contains("dlncheck figures"), "{err}");
    let (code, _, err) = dlncheck(&["check", t, "--claim", "q-split"]);
    assert_eq!(code, 0, "a missing figure matters only to the HTML report: {err}");
    std::fs::write(&q, named.replace("missing.svg", "f.svg")).unwrap();
    let (code, html, _) = dlncheck(&["check", t, "--format", "html"]);
    assert_eq!(code, 0);
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    let body = &html[html.find("<body>").unwrap()..html.find("</html>").unwrap()];
    let doc = roxmltree::Document::parse(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let rows = doc.descendants().filter(|n| n.has_tag_name("tr")).count();
    assert_eq!(rows, 4, "header and three claims");
    // The figure is an inert image (issue 20, class 6: no script or handler of an SVG
    // runs when the report is opened), its bytes intact.
    let imgs: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("img")).collect();
    assert_eq!(imgs.len(), 1, "the figure as an image");
    let src = imgs[0].attribute("src").unwrap().strip_prefix("data:image/svg+xml;base64,").unwrap();
    use base64::Engine;
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(src).unwrap(), svg.as_bytes());
    assert!(!body.contains("<script") && !body.contains("onload") && !body.contains("<circle"));
    assert!(body.contains("f.svg, for q-split; made by"), "the caption names the claim");
}

/// The template's quick seeds can decide its paired t-test (`check --quick` agrees with
/// the full run), and `--accept` warns when a claim's quick run would decide otherwise
/// (the template with the former quick_seeds = 2: one degree of freedom).
#[test]
fn the_templates_quick_run_decides_as_the_full_run_and_accept_warns_otherwise() {
    let dir = common::Dir::new();
    let t = dir.path("theory");
    let t = t.to_str().unwrap();
    assert_eq!(dlncheck(&["new-claim", "mine", "--dir", t]).0, 0);
    let (quick, full) =
        (dlncheck(&["check", t, "--claim", "mine", "--quick"]), dlncheck(&["check", t, "--claim", "mine"]));
    assert_eq!((quick.0, full.0), (0, 0), "{}{}", quick.1, full.1);
    let (_, out, _) = dlncheck(&["check", t, "--claim", "mine", "--accept"]);
    assert!(!out.contains("warning"), "{out}");
    let file = dir.path("theory/claims/mine.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let two = text.replace("quick_seeds = 4 ", "quick_seeds = 2 ");
    assert_ne!(two, text, "the template sets quick_seeds = 4");
    std::fs::write(&file, two).unwrap();
    let (_, out, _) = dlncheck(&["check", t, "--claim", "mine", "--accept"]);
    assert!(out.contains("warning: `check --quick` decides mine `FAILS` but the full run `holds`"), "{out}");
}

/// Issue 25: each depth and momentum claim flips with a wrong variant.
#[test]
fn the_depth_and_momentum_claims_flip_when_misstated() {
    // Order 2 is not what GD on depth 3 shows (≈ 1).
    let order_two = [("d3_gd >= 0.8", "d3_gd >= 1.5")];
    assert_eq!(variant("depth-flow-order", &order_two), Verdict::Fails);
    let shallower = [("bp4 < bp3 < bp2", "bp2 < bp3")];
    assert_eq!(variant("depth-promotes-sparsity", &shallower), Verdict::Fails);
    let swapped = [("rel_err(d3_tiny.flow, bp_sol) <= 1e-2", "rel_err(d3_tiny.flow, l2_sol) <= 1e-2")];
    assert_eq!(variant("depth-scale-limits", &swapped), Verdict::Fails);
    // Runs at another λ are not on the λ = 0.4 path.
    let off_path = [("stepsize = 0.025\nmomentum = 0.75", "stepsize = 0.025\nmomentum = 0.5")];
    assert_eq!(variant("momentum-lambda-path", &off_path), Verdict::Fails);
    let reversed =
        [("norm1(gd.balance_gain) < norm1(hb.balance_gain)", "norm1(gd.balance_gain) > norm1(hb.balance_gain)")];
    assert_eq!(variant("momentum-effective-stepsize", &reversed), Verdict::Fails);
}
