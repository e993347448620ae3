//! Hostile files, extreme settings and numerical failures (issue 10): one test per class.
//! Each case must end within seconds with its exit code (2 bad input, 5 a method that
//! missed its tolerance) and a message naming the file, array, flag or formula position,
//! and leave no output written or damaged.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use common::{Dir, dlncheck, npy_header};
use dlncheck::bias::Scales;
use dlncheck::npz::NpzWriter;
use dlncheck::problem::ProblemSpec;

/// Runs and checks the exit code and that the message (stderr; `check` reports a
/// malformed claim file in its table on stdout) names every `needles`, within 20 s.
fn expect(args: &[&str], code: i32, needles: &[&str]) -> String {
    let start = Instant::now();
    let (got, out, err) = dlncheck(args);
    assert_eq!(got, code, "args {args:?}\nstdout {out}\nstderr {err}");
    let err = if args[0] == "check" { out + &err } else { err };
    for n in needles {
        assert!(err.contains(n), "args {args:?}: message lacks `{n}`: {err}");
    }
    assert!(start.elapsed().as_secs() < 20, "args {args:?} took {:?}", start.elapsed());
    err
}

/// A `.npy` image with a hand-written header (shape, dtype) and `data` after it.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut out = npy_header(descr, shape);
    out.extend(data);
    out
}

fn npz(path: &Path, members: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in members {
        zip.start_file(format!("{name}.npy"), opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn f64s(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn crafted_npy_headers_are_refused_before_allocating() {
    let dir = Dir::new();
    let good_y = npy("<f8", "(3,)", &f64s(&[1.0, 2.0, 3.0]));
    // Element counts that overflow 64 bits, or that exceed the bytes present.
    for shape in ["(3, 6148914691236517206)", "(18446744073709551615, 18446744073709551615)", "(3, 5)", "(1000000000,)"]
    {
        let p = dir.path("p.npz");
        npz(&p, &[("X", npy("<f8", shape, &f64s(&[1.0, 2.0]))), ("y", good_y.clone())]);
        expect(&["solve", "--problem", &dir.s("p.npz"), "--l2"], 2, &["array `X`", "corrupt"]);
    }
    // The same through a trajectory's grads and a schedule's batches.
    let traj = dir.path("t.npz");
    let grads = npy("<f8", "(2, 6148914691236517206)", &f64s(&[1.0]));
    npz(
        &traj,
        &[
            ("alpha", npy("<f8", "()", &f64s(&[0.1]))),
            ("stepsizes", npy("<f8", "(2,)", &f64s(&[0.1, 0.1]))),
            ("grads", grads),
        ],
    );
    expect(&["gain", "--trajectory", &dir.s("t.npz")], 2, &["array `grads`", "corrupt"]);
    ProblemSpec::default().generate().unwrap().save(&dir.path("prob.npz"), &[]).unwrap();
    let sched = dir.path("s.npz");
    let batches = npy("<i8", "(2, 9223372036854775807)", &[0u8; 16]);
    npz(&sched, &[("stepsizes", npy("<f8", "(2,)", &f64s(&[0.1, 0.1]))), ("batches", batches)]);
    let args = ["train", "--problem", &dir.s("prob.npz"), "--alpha", "0.1", "--schedule", &dir.s("s.npz")];
    expect(&args, 2, &["array `batches`", "corrupt"]);
    // A huge header is not echoed whole.
    let long = format!("({})", vec!["1"; 30_000].join(", "));
    npz(&dir.path("h.npz"), &[("X", npy("<f8", &long, &[])), ("y", good_y)]);
    let err = expect(&["solve", "--problem", &dir.s("h.npz"), "--l2"], 2, &["array `X`"]);
    assert!(err.len() < 1_000, "message of {} bytes", err.len());
    // A .npy where a .npz is expected says so, with the call that makes the right file.
    std::fs::write(dir.path("x.npy"), npy("<f8", "(1,)", &f64s(&[1.0]))).unwrap();
    expect(&["solve", "--problem", &dir.s("x.npy"), "--l2"], 2, &["is a .npy file", "np.savez"]);
}

#[test]
fn allocation_by_request_is_refused_with_the_size() {
    let dir = Dir::new();
    let out = dir.s("p.npz");
    expect(&["gen", "--n", "100000", "--d", "100000", "--out", &out], 2, &["would need", "80.1 GB"]);
    expect(&["gen", "--n", "2305843009213693952", "--d", "8", "--out", &out], 2, &["would need"]);
    expect(&["gen", "--n", "18446744073709551615", "--out", &out], 2, &["would need"]);
    assert!(!dir.path("p.npz").exists());
    let sweep = dir.s("s.jsonl");
    expect(&["sweep", "--out", &sweep, "--seeds", "100000000000"], 2, &["--seeds", "at most"]);
    expect(&["sweep", "--out", &sweep, "--stepsizes", "0.01:0.1:100000000000"], 2, &["stepsize count"]);
    expect(&["sweep", "--out", &sweep, "--threads", "18446744073709551615"], 2, &["--threads"]);
    expect(&["compare", "--run", "gd:0.1", "--seeds", "1000000000000"], 2, &["--seeds"]);
    ProblemSpec::default().generate().unwrap().save(&dir.path("prob.npz"), &[]).unwrap();
    let train = ["train", "--problem", &dir.s("prob.npz"), "--alpha", "0.1", "--stepsize", "0.1"];
    expect(&[&train[..], &["--iters", "100000000000000"]].concat(), 2, &["--iters"]);
    // The rows of 10⁹ steps of batch 20 (480 GB) are refused before the run, not at its end.
    let record = ["--batch", "20", "--record-batches", "--iters", "1000000000"];
    expect(&[&train[..], &record[..]].concat(), 2, &["recording the batches", "would need", "480.0 GB"]);
}

fn claim_dir(body: &str) -> (Dir, String) {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.path("theory/claims")).unwrap();
    std::fs::write(dir.path("theory/claims/c.toml"), body).unwrap();
    let theory = dir.s("theory");
    (dir, theory)
}

const SYMBOLIC_HEAD: &str = "id = \"c\"\nsource = \"test\"\nstatement = \"test\"\n[symbolic]\n";

#[test]
fn claim_settings_that_would_hang_or_allocate_are_refused_at_load() {
    let numeric = |extra: &str| {
        format!(
            "id = \"c\"\nsource = \"t\"\nstatement = \"t\"\n{extra}\n[runs]\ngd = {{ algorithm = \"gd\", stepsize = 0.1 }}\n[check]\nholds = \"gd.loss < 1\"\n"
        )
    };
    for (extra, needle) in [
        ("[scenario]\nseeds = 1000000000", "seeds must be in"),
        ("[scenario]\nmean = nan", "mean must be finite"),
        ("[threshold]\ntol = 0.0", "tol = 0"),
        ("[threshold]\ntol = nan", "tol = NaN"),
        ("[threshold]\ntime = 1.0", "time = 1"),
        ("[threshold]\ntime = 1e300", "time = 1"),
        ("[threshold]\ntime = nan", "time = NaN"),
        ("[threshold]\nrel_width = 1e-17", "rel_width"),
        ("[scenario]\nn = 100000\nd = 1000000", "would need"),
    ] {
        let (_dir, theory) = claim_dir(&numeric(extra));
        expect(&["check", &theory], 2, &["c.toml", needle]);
    }
    for (body, needle) in [
        ("variables = { b = [0, 1, 2] }\npositive = \"b\"\n", "two numbers"),
        ("variables = { b = [0, 1] }\npositive = \"b + 1\"\npoints = 1000000000000\n", "points must be in"),
    ] {
        let (_dir, theory) = claim_dir(&format!("{SYMBOLIC_HEAD}{body}"));
        expect(&["check", &theory], 2, &["c.toml", needle]);
    }
}

#[test]
fn expressions_are_bounded_in_nesting_size_and_expansion() {
    let nest = |open: &str, close: &str, k: usize| format!("{}b{}", open.repeat(k), close.repeat(k));
    for formula in [nest("(", ")", 5_000), nest("abs(", ")", 2_000), nest("-", "", 20_000), nest("b^", "", 5_000)] {
        let (_dir, theory) =
            claim_dir(&format!("{SYMBOLIC_HEAD}variables = {{ b = [1, 2] }}\npositive = \"{formula}\"\n"));
        expect(&["check", &theory], 2, &["c.toml", "at most"]);
    }
    let sum = vec!["b"; 100_000].join("+");
    let (_dir, theory) = claim_dir(&format!("{SYMBOLIC_HEAD}variables = {{ b = [1, 2] }}\npositive = \"{sum}\"\n"));
    expect(&["check", &theory], 2, &["c.toml", "at most"]);
    // Doubling definitions: refused once the substituted formula passes the node limit.
    let mut defs = String::from("p1 = \"b\"\n");
    for k in 2..=32 {
        defs.push_str(&format!("p{k} = \"p{} * p{}\"\n", k - 1, k - 1));
    }
    let body = format!("{SYMBOLIC_HEAD}variables = {{ b = [1, 2] }}\npositive = \"p32\"\n[symbolic.define]\n{defs}");
    let (_dir, theory) = claim_dir(&body);
    expect(&["check", &theory], 2, &["c.toml", "nodes"]);
    // Nested derivatives and a deep series are refused, not left running.
    let diffs = nest("diff(", ", b)", 12).replace("diff(b", "diff(tanh(tanh(tanh(tanh(b))))");
    let (_dir, theory) = claim_dir(&format!("{SYMBOLIC_HEAD}variables = {{ b = [1, 2] }}\npositive = \"{diffs}\"\n"));
    expect(&["check", &theory], 2, &["c.toml"]);
    let series = "series = { f = \"tanh(tanh(tanh(tanh(b))))\", var = \"b\", at = 0.0, terms = \"b\", order = 12 }";
    let (_dir, theory) = claim_dir(&format!("{SYMBOLIC_HEAD}variables = {{ b = [-1, 1] }}\n{series}\n"));
    let (code, out, _) = dlncheck(&["check", &theory]);
    assert!(code == 1 && out.contains("derivative 5 of the series"), "{code}: {out}");
    // The same limits in solve --potential.
    let dir = Dir::new();
    ProblemSpec::default().generate().unwrap().save(&dir.path("p.npz"), &[]).unwrap();
    let long = vec!["b^2"; 10_000].join("+");
    expect(&["solve", "--problem", &dir.s("p.npz"), "--potential", &long], 2, &["--potential", "at most"]);
    expect(&["solve", "--problem", &dir.s("p.npz"), "--potential", &nest("(", ")", 5_000)], 2, &["at most"]);
}

#[test]
fn a_thousand_chained_definitions_resolve_in_linear_time() {
    let mut defs = String::new();
    for k in (1..=1000).rev() {
        defs.push_str(&format!(
            "d{k:04} = \"{} + 1\"\n",
            if k == 1 { "n".to_string() } else { format!("d{:04}", k - 1) }
        ));
    }
    let body = format!(
        "id = \"c\"\nsource = \"t\"\nstatement = \"t\"\n[runs]\ngd = {{ algorithm = \"gd\", stepsize = 0.1 }}\n[define]\n{defs}[check]\nholds = \"d1000 > 1000\"\n"
    );
    let (_dir, theory) = claim_dir(&body);
    let start = Instant::now();
    let (code, out, err) = dlncheck(&["check", &theory]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(start.elapsed().as_secs_f64() < 10.0, "{:?}", start.elapsed());
}

#[test]
fn bounded_loops_end_within_seconds() {
    let dir = Dir::new();
    ProblemSpec::default().generate().unwrap().save(&dir.path("p.npz"), &[]).unwrap();
    let th = ["threshold", "--problem", &dir.s("p.npz"), "--alpha", "0.1"];
    expect(&[&th[..], &["--rel-width", "1e-17"]].concat(), 2, &["rel_width"]);
    expect(&[&th[..], &["--time", "1"]].concat(), 2, &["time = 1"]);
    // A time too short for any stepsize: the search stops at the gradient-flow floor.
    expect(&[&th[..], &["--time", "10"]].concat(), 2, &["no stepsize converges", "raise --time"]);
    expect(&[&th[..], &["--tol", "1e-300"]].concat(), 2, &["tol = 1e-300"]);
    // Problems without interpolators are refused at once.
    let square = ProblemSpec { n: 30, d: 30, ..ProblemSpec::default() }.generate().unwrap();
    square.save(&dir.path("sq.npz"), &[]).unwrap();
    expect(&["threshold", "--problem", &dir.s("sq.npz"), "--alpha", "0.1"], 2, &["need d > n"]);
    let mut zero = ProblemSpec::default().generate().unwrap();
    zero.x.fill(0.0);
    zero.save(&dir.path("zero.npz"), &[]).unwrap();
    expect(&["threshold", "--problem", &dir.s("zero.npz"), "--alpha", "0.1"], 2, &["rank-deficient"]);
    // A sweep file with a threshold of 1e308 and values over 400 decades plots at once.
    let line = |i: usize, step: f64, err: f64| {
        format!(
            "{{\"grid\":\"g\",\"index\":{i},\"algorithm\":\"gd\",\"batch\":null,\"mean\":0.0,\"alpha\":0.1,\"seed\":0,\"fraction\":null,\"stepsize\":{step:e},\"threshold\":1e308,\"converged\":true,\"diverged\":false,\"iters\":1,\"loss\":{err:e},\"error\":{err:e},\"test_loss\":{err:e},\"gain_l1\":{err:e},\"gain_ratio\":1.0,\"dist_theory\":{err:e},\"precision\":1.0,\"recall\":1.0,\"gain\":null,\"support\":[0]}}\n"
        )
    };
    let text: String =
        (0..4).map(|i| line(i, 10f64.powi(-200 + 130 * i as i32), 10f64.powi(200 - 130 * i as i32))).collect();
    std::fs::write(dir.path("s.jsonl"), text).unwrap();
    let (code, _, err) = dlncheck(&["plot", &dir.s("s.jsonl"), "--out", &dir.s("figs")]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn methods_that_miss_their_tolerance_exit_5_never_0() {
    let dir = Dir::new();
    let p = ProblemSpec::default().generate().unwrap();
    p.save(&dir.path("p.npz"), &[]).unwrap();
    // Weights of 1e-200 and 1e200: their ratio is beyond f64's range, so no unit-scale
    // problem exists and no certificate could close; exit 5 saying so.
    let w: Vec<f64> = (0..p.d()).map(|i| if i % 2 == 0 { 1e-200 } else { 1e200 }).collect();
    std::fs::write(dir.path("w.npy"), npy("<f8", &format!("({},)", p.d()), &f64s(&w))).unwrap();
    let args = ["solve", "--problem", &dir.s("p.npz"), "--weights", &dir.s("w.npy")];
    expect(&args, 5, &["weighted basis pursuit", "beyond f64's range"]);
    // X × 1e-10 and y × 1e300: the minimum-ℓ2 interpolator (≈ 1e310) overflows; not an
    // answer. (y × 1e300 alone is solved on unit scales: b ≈ 1e300 is representable.)
    let mut huge = p.clone();
    huge.y *= 1e300;
    huge.x *= 1e-10;
    huge.save(&dir.path("huge.npz"), &[]).unwrap();
    expect(&["solve", "--problem", &dir.s("huge.npz"), "--l2"], 5, &["minimum-ℓ2", "f64's range"]);
    // γ·g that overflows is a degenerate step (exit 2), not `inf` and `NaN` in the output.
    let traj = dir.path("t.npz");
    let mut w = NpzWriter::new();
    w.f64("alpha", &[], &[0.1]).f64("stepsizes", &[1], &[1e300]).f64("grads", &[1, 2], &[1e300, 0.0]);
    w.write(&traj, &[]).unwrap();
    expect(&["gain", "--trajectory", &dir.s("t.npz")], 2, &["not finite"]);
    // A constant vector has no correlation.
    let body = "id = \"c\"\nsource = \"t\"\nstatement = \"t\"\n[runs]\ngd = { algorithm = \"gd\", stepsize = 0.1 }\n[check]\nholds = \"corr(gd.gain, 0 * gd.gain + 1) > 0\"\n";
    let (_d, theory) = claim_dir(body);
    let (code, out, _) = dlncheck(&["check", &theory]);
    assert!(code == 1 && out.contains("constant"), "{code}: {out}");
    // An identity on a domain where neither side is defined is not "held by evaluation".
    let (_d, theory) = claim_dir(&format!(
        "{SYMBOLIC_HEAD}variables = {{ b = [-1, 1] }}\nidentity = {{ lhs = \"ln(b-5)\", rhs = \"ln(b-5)+1\" }}\n"
    ));
    let (code, out, _) = dlncheck(&["check", &theory]);
    assert!(code == 1 && out.contains("finite at only 0 of 2000"), "{code}: {out}");
}

#[test]
fn the_implicit_solver_is_right_from_tiny_to_huge_scales() {
    use dlncheck::solve::{NewtonSettings, min_norm, solve_implicit};
    use nalgebra::DVector;
    let p = ProblemSpec { n: 20, d: 60, ..ProblemSpec::default() }.generate().unwrap();
    let l2 = min_norm(&p.x, &p.y).unwrap();
    for ln_alpha in [-690.0, -230.0, -23.0, -2.3, 0.0, 9.2, 18.4, 115.0, 230.0, 345.0] {
        let ell = DVector::from_element(p.d(), 2.0 * ln_alpha);
        let sol = solve_implicit(
            &p.x,
            &p.y,
            &Scales::two_sided(ell.clone(), DVector::zeros(p.d()).clone()),
            &NewtonSettings::default(),
        )
        .unwrap();
        let residual = (&p.x * &sol.beta - &p.y).norm() / p.y.norm();
        assert!(residual <= 1e-12, "ln α = {ln_alpha}: residual {residual:e}");
        if ln_alpha >= 18.4 {
            // α ≥ 1e8: the kernel regime, where the limit is the minimum-ℓ2 interpolator.
            let dist = (&sol.beta - &l2).norm() / l2.norm();
            assert!(dist <= 1e-10, "ln α = {ln_alpha}: distance to min-ℓ2 {dist:e}");
        }
    }
}

#[test]
fn outputs_are_never_written_over_inputs_special_files_or_by_two_sweeps() {
    let dir = Dir::new();
    ProblemSpec::default().generate().unwrap().save(&dir.path("p.npz"), &[]).unwrap();
    let before = std::fs::read(dir.path("p.npz")).unwrap();
    let args = ["train", "--problem", &dir.s("p.npz"), "--alpha", "0.1", "--stepsize", "0.1", "--out", &dir.s("p.npz")];
    expect(&args, 2, &["also an input"]);
    assert_eq!(std::fs::read(dir.path("p.npz")).unwrap(), before);
    expect(&["gen", "--out", &dir.s("")], 2, &["not a regular file"]);
    if Path::new("/dev/null").exists() {
        expect(&["gen", "--out", "/dev/null"], 2, &["not a regular file"]);
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    }
    // A second sweep on a locked file is refused and writes nothing.
    let out = dir.path("s.jsonl");
    let held = std::fs::OpenOptions::new().create(true).append(true).open(&out).unwrap();
    held.lock().unwrap();
    expect(&["sweep", "--out", &dir.s("s.jsonl"), "--fractions", "0.2,0.4"], 2, &["another dlncheck sweep"]);
    drop(held);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 0);
    // Resume rejects lines that are outside the grid or do not match their cell, and
    // skips blank lines like merge does.
    let grid = ["sweep", "--out", &dir.s("s.jsonl"), "--stepsizes", "0.05,0.1", "--algorithm", "gd"];
    let (code, _, err) = dlncheck(&grid);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&out, format!("{}\n\n", lines[0])).unwrap();
    let (code, _, err) = dlncheck(&[&grid[..], &["--resume"]].concat());
    assert_eq!(code, 0, "{err}");
    let outside = lines[0].replacen("\"index\":0", "\"index\":7", 1).replacen("\"index\":1", "\"index\":7", 1);
    std::fs::write(&out, format!("{outside}\n")).unwrap();
    expect(&[&grid[..], &["--resume"]].concat(), 2, &["outside the grid"]);
    let other = lines[0].replacen("\"seed\":0", "\"seed\":3", 1);
    std::fs::write(&out, format!("{other}\n")).unwrap();
    expect(&[&grid[..], &["--resume"]].concat(), 2, &["differ"]);
}
