//! A researcher's own run (issue 11): a GD loop written here, as a user would write it in
//! numpy, logs its gradients; `predict` gives a verdict on it; trajectories stream.

mod common;

use std::path::Path;

use common::{dlncheck, dlncheck_json};
use dlncheck::npz::NpzWriter;
use dlncheck::problem::{Problem, ProblemSpec};
use nalgebra::DVector;

/// GD on b = u ⊙ v from u₀ = √2 α, v₀ = 0 for `steps` steps (stopping early below
/// `tol`), logging the gradients with respect to b: (grads row-major, final b).
fn user_loop(p: &Problem, alpha: f64, gamma: f64, steps: usize, tol: f64) -> (Vec<f64>, DVector<f64>, usize) {
    let d = p.d();
    let mut u = DVector::from_element(d, 2f64.sqrt() * alpha);
    let mut v = DVector::zeros(d);
    let mut grads = Vec::new();
    for k in 0..steps {
        let b = u.component_mul(&v);
        let r = &p.x * &b - &p.y;
        if r.norm_squared() / (2.0 * p.n() as f64) < tol {
            return (grads, b, k);
        }
        let g = p.x.tr_mul(&r) / p.n() as f64;
        grads.extend(g.iter());
        let (du, dv) = (g.component_mul(&v) * gamma, g.component_mul(&u) * gamma);
        u -= du;
        v -= dv;
    }
    let b = u.component_mul(&v);
    (grads, b, steps)
}

fn write_trajectory(path: &Path, alpha: f64, gamma: f64, grads: &[f64], d: usize, beta: &DVector<f64>) {
    let k = grads.len() / d;
    let mut w = NpzWriter::new();
    w.f64("alpha", &[], &[alpha])
        .f64("stepsizes", &[k], &vec![gamma; k])
        .f64("grads", &[k, d], grads)
        .vector("beta", beta);
    w.write(path, &[]).unwrap();
}

#[test]
fn predict_verdicts_agree_disagree_and_not_converged() {
    let dir = tempfile::tempdir().unwrap();
    let p = ProblemSpec::default().generate().unwrap();
    let problem = dir.path().join("p.npz");
    p.save(&problem, &[]).unwrap();
    let (alpha, gamma) = (0.1, 0.1);
    let (grads, beta, k) = user_loop(&p, alpha, gamma, 2_000_000, 1e-28);
    let traj = dir.path().join("t.npz");
    let d = p.d();
    write_trajectory(&traj, alpha, gamma, &grads, d, &beta);
    let pr = problem.to_str().unwrap();
    let (code, v) = dlncheck_json(&["predict", "--problem", pr, "--trajectory", traj.to_str().unwrap()]);
    assert_eq!((code, v["verdict"].as_str()), (0, Some("agrees")), "{v}");
    assert!(v["rel_err"].as_f64().unwrap() <= 1e-10);

    // The same limit moved by 1e-6 (relative) along the null space of X: it still
    // interpolates, so the run is converged, and the theory says it is the wrong limit.
    let xxt = &p.x * p.x.transpose();
    let e0 = DVector::from_fn(d, |i, _| if i == 0 { 1.0 } else { 0.0 });
    let null = &e0 - p.x.transpose() * xxt.cholesky().unwrap().solve(&(&p.x * &e0));
    let moved = &beta + null.normalize() * (1e-6 * beta.norm());
    let wrong = dir.path().join("wrong.npz");
    write_trajectory(&wrong, alpha, gamma, &grads, d, &moved);
    let (code, v) = dlncheck_json(&["predict", "--problem", pr, "--trajectory", wrong.to_str().unwrap()]);
    assert_eq!((code, v["verdict"].as_str()), (1, Some("disagrees")), "{v}");

    // The trajectory cut at 10% of its steps: not converged, and the message says so.
    let (cut_grads, cut_beta, _) = user_loop(&p, alpha, gamma, k / 10, 0.0);
    let cut = dir.path().join("cut.npz");
    write_trajectory(&cut, alpha, gamma, &cut_grads, d, &cut_beta);
    let (code, v) = dlncheck_json(&["predict", "--problem", pr, "--trajectory", cut.to_str().unwrap()]);
    assert_eq!((code, v["verdict"].as_str()), (4, Some("not_converged")), "{v}");
    let (_, _, err) = dlncheck(&["predict", "--problem", pr, "--trajectory", cut.to_str().unwrap()]);
    assert!(err.is_empty(), "{err}");
    let (_, out, _) = dlncheck(&["predict", "--problem", pr, "--trajectory", cut.to_str().unwrap()]);
    assert!(out.contains("not converged") && out.contains("run") && out.contains("longer"), "{out}");

    // Without beta: no verdict.
    let mut w = NpzWriter::new();
    w.f64("alpha", &[], &[alpha]).f64("stepsizes", &[k], &vec![gamma; k]).f64("grads", &[k, d], &grads);
    let nobeta = dir.path().join("nobeta.npz");
    w.write(&nobeta, &[]).unwrap();
    let (code, v) = dlncheck_json(&["predict", "--problem", pr, "--trajectory", nobeta.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(v["verdict"].is_null(), "{v}");
}

#[test]
fn a_run_logged_in_pieces_gives_the_gain_of_the_whole_to_the_bit() {
    let dir = tempfile::tempdir().unwrap();
    let p = ProblemSpec::default().generate().unwrap();
    let (alpha, gamma) = (0.1, 0.2);
    let (grads, beta, k) = user_loop(&p, alpha, gamma, 3000, 0.0);
    let d = p.d();
    let whole = dir.path().join("whole.npz");
    write_trajectory(&whole, alpha, gamma, &grads, d, &beta);
    let split = 1234 * d;
    let (a, b) = (dir.path().join("a.npz"), dir.path().join("b.npz"));
    let mut w = NpzWriter::new();
    w.f64("alpha", &[], &[alpha]).f64("stepsizes", &[1234], &[gamma; 1234]).f64("grads", &[1234, d], &grads[..split]);
    w.write(&a, &[]).unwrap();
    write_trajectory(&b, alpha, gamma, &grads[split..], d, &beta);
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let (c1, v1) = dlncheck_json(&["gain", "--trajectory", &s(&whole)]);
    let (c2, v2) = dlncheck_json(&["gain", "--trajectory", &s(&a), "--trajectory", &s(&b)]);
    assert_eq!((c1, c2), (0, 0));
    assert_eq!(v1["gain"], v2["gain"]);
    assert_eq!(v1["rho"], v2["rho"]);
    assert_eq!(k, 3000);
    // The gain read in blocks equals the accumulation over the rows held in memory.
    let mut acc = dlncheck::trajectory::GainAccumulator::new(d);
    for row in grads.chunks_exact(d) {
        let x: Vec<f64> = row.iter().map(|g| gamma * g).collect();
        acc.add(&x).unwrap();
    }
    let streamed: Vec<f64> = serde_json::from_value(v1["gain"].clone()).unwrap();
    assert!(streamed.iter().zip(acc.gain.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
    // Pieces of different runs are refused.
    let mut w = NpzWriter::new();
    w.f64("alpha", &[], &[0.2]).f64("stepsizes", &[1], &[gamma]).f64("grads", &[1, d], &grads[..d]);
    let other = dir.path().join("other.npz");
    w.write(&other, &[]).unwrap();
    let (code, _, err) = dlncheck(&["gain", "--trajectory", &s(&a), "--trajectory", &s(&other)]);
    assert_eq!(code, 2);
    assert!(err.contains("alpha") && err.contains("pieces of one run"), "{err}");
}

#[test]
fn files_given_to_the_wrong_flag_say_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let p = ProblemSpec::default().generate().unwrap();
    let prob = dir.path().join("p.npz");
    p.save(&prob, &[]).unwrap();
    let (grads, beta, _) = user_loop(&p, 0.1, 0.1, 100, 0.0);
    let traj = dir.path().join("t.npz");
    write_trajectory(&traj, 0.1, 0.1, &grads, p.d(), &beta);
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let (code, _, err) = dlncheck(&["gain", &s(&traj)]);
    assert_eq!(code, 2);
    assert!(err.contains("is a trajectory") && err.contains("--trajectory"), "{err}");
    let (code, _, err) = dlncheck(&["gain", "--trajectory", &s(&prob)]);
    assert_eq!(code, 2);
    assert!(err.contains("problem file") && err.contains("--problem"), "{err}");
    // A transposed grads (d × K) is named as such.
    let k = grads.len() / p.d();
    let mut t = vec![0.0; grads.len()];
    for i in 0..k {
        for j in 0..p.d() {
            t[j * k + i] = grads[i * p.d() + j];
        }
    }
    let mut w = NpzWriter::new();
    w.f64("alpha", &[], &[0.1]).f64("stepsizes", &[k], &vec![0.1; k]).f64("grads", &[p.d(), k], &t);
    let tr = dir.path().join("tr.npz");
    w.write(&tr, &[]).unwrap();
    let (code, _, err) = dlncheck(&["gain", "--trajectory", &s(&tr)]);
    assert_eq!(code, 2);
    assert!(err.contains("transposed"), "{err}");
}

/// Writes a trajectory of `k` × `d` gradients row by row (the test holds one row), as an
/// uncompressed member; returns the gain accumulated over the same rows in memory.
fn write_large_trajectory(path: &Path, k: usize, d: usize, gamma: f64) -> Vec<f64> {
    use std::io::Write;
    let npy_header = |shape: &str| common::npy_header("<f8", shape);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(true);
    zip.start_file("alpha.npy", opts).unwrap();
    zip.write_all(&npy_header("()")).unwrap();
    zip.write_all(&0.1f64.to_le_bytes()).unwrap();
    zip.start_file("stepsizes.npy", opts).unwrap();
    zip.write_all(&npy_header(&format!("({k},)"))).unwrap();
    for _ in 0..k {
        zip.write_all(&gamma.to_le_bytes()).unwrap();
    }
    zip.start_file("grads.npy", opts).unwrap();
    zip.write_all(&npy_header(&format!("({k}, {d})"))).unwrap();
    let mut acc = dlncheck::trajectory::GainAccumulator::new(d);
    let (mut row, mut x, mut bytes) = (vec![0.0; d], vec![0.0; d], Vec::with_capacity(8 * d));
    for i in 0..k {
        for (j, g) in row.iter_mut().enumerate() {
            *g = 1e-2 * ((i * 31 + j * 17) as f64 * 0.001).sin();
        }
        x.iter_mut().zip(&row).for_each(|(xi, g)| *xi = gamma * g);
        acc.add(&x).unwrap();
        bytes.clear();
        row.iter().for_each(|g| bytes.extend(g.to_le_bytes()));
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
    acc.gain.as_slice().to_vec()
}

/// Peak resident memory of the largest finished child process, in bytes.
fn children_peak_rss() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    usage.ru_maxrss as u64 * 1024
}

/// 256 MB of gradients (K = 32,000, d = 1,000): `gain --trajectory` streams them with a
/// peak memory far below the file, and gives the same gain as in-memory accumulation
/// to the last bit. (The same with K = 125,000, 1 GB, is reported in the README.)
#[test]
fn gain_streams_a_large_trajectory_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.npz");
    let (k, d) = (32_000, 1_000);
    let expected = write_large_trajectory(&path, k, d, 0.5);
    assert!(std::fs::metadata(&path).unwrap().len() > 250_000_000);
    let (code, v) = dlncheck_json(&["gain", "--trajectory", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    let peak = children_peak_rss();
    assert!(peak < 100 << 20, "peak RSS {} MB", peak >> 20);
    let gain: Vec<f64> = serde_json::from_value(v["gain"].clone()).unwrap();
    assert!(gain.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "gain differs");
}

#[test]
fn gen_takes_a_given_b_star_and_solve_takes_a_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let mut b = vec![0.0; 40];
    (b[3], b[17], b[25]) = (100.0, -100.0, 2.5);
    let bfile = dir.path().join("b.npz");
    let mut w = NpzWriter::new();
    w.f64("beta_star", &[40], &b);
    w.write(&bfile, &[]).unwrap();
    let prob = dir.path().join("p.npz");
    let (code, v) = dlncheck_json(&["gen", "--n", "20", "--beta-star", &s(&bfile), "--out", &s(&prob)]);
    assert_eq!(code, 0, "{v}");
    assert_eq!((v["d"].as_u64(), v["sparsity"].as_u64()), (Some(40), Some(3)));
    let p = Problem::load(&prob).unwrap();
    assert_eq!(p.beta_star.as_ref().unwrap().as_slice(), &b[..]);
    let y = &p.x * DVector::from_vec(b.clone());
    assert!((&p.y - &y).amax() <= 1e-12 * y.amax(), "y = X b*");
    let yt = p.x_test.as_ref().unwrap() * DVector::from_vec(b);
    assert!((p.y_test.as_ref().unwrap() - &yt).amax() <= 1e-12 * yt.amax(), "y_test = X_test b*");

    // solve --trajectory gives the theory's limit that predict reports, to the bit.
    let q = ProblemSpec::default().generate().unwrap();
    let qp = dir.path().join("q.npz");
    q.save(&qp, &[]).unwrap();
    let (grads, beta, _) = user_loop(&q, 0.1, 0.1, 50_000, 1e-26);
    let traj = dir.path().join("t.npz");
    write_trajectory(&traj, 0.1, 0.1, &grads, q.d(), &beta);
    let (c1, solved) = dlncheck_json(&["solve", "--problem", &s(&qp), "--trajectory", &s(&traj)]);
    let (_, predicted) = dlncheck_json(&["predict", "--problem", &s(&qp), "--trajectory", &s(&traj)]);
    assert_eq!(c1, 0);
    assert_eq!(solved["beta"], predicted["beta_theory"]);
}

#[test]
fn errors_name_the_cause_and_nothing_is_silent() {
    let dir = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let p = ProblemSpec::default().generate().unwrap();
    let prob = dir.path().join("p.npz");
    p.save(&prob, &[]).unwrap();
    // A transposed X is named as such.
    let mut w = NpzWriter::new();
    w.matrix("X", &p.x.transpose()).vector("y", &p.y);
    let tx = dir.path().join("tx.npz");
    w.write(&tx, &[]).unwrap();
    let (code, _, err) = dlncheck(&["solve", "--problem", &s(&tx), "--l2"]);
    assert!(code == 2 && err.contains("array `y`") && err.contains("transposed"), "{err}");
    // --alpha that is neither a number nor a file.
    let (code, _, err) = dlncheck(&["train", "--problem", &s(&prob), "--alpha", "foo", "--stepsize", "0.1"]);
    assert!(code == 2 && err.contains("neither a number nor an existing .npz"), "{err}");
    // A binary file given to plot or merge.
    let (code, _, err) = dlncheck(&["plot", &s(&prob), "--out", &s(&dir.path().join("f"))]);
    assert!(code == 2 && err.contains("not a sweep file"), "{err}");
    let (code, _, err) = dlncheck(&["merge", &s(&prob), "--out", &s(&dir.path().join("m.jsonl"))]);
    assert!(code == 2 && err.contains("not a sweep file"), "{err}");
    // train without --out says that nothing is written.
    let (code, out, _) = dlncheck(&["train", "--problem", &s(&prob), "--alpha", "0.1", "--stepsize", "0.1"]);
    assert!(code == 0 && out.contains("not written"), "{out}");
    // A replayed schedule stopped early by --tol says so.
    let mut w = NpzWriter::new();
    w.f64("stepsizes", &[200_000], &vec![0.1; 200_000]);
    let sched = dir.path().join("s.npz");
    w.write(&sched, &[]).unwrap();
    let (code, out, _) = dlncheck(&["train", "--problem", &s(&prob), "--alpha", "0.1", "--schedule", &s(&sched)]);
    assert!(code == 0 && out.contains("the schedule has 200000 steps") && out.contains("--tol 0"), "{out}");
    // merge of 2 of 3 shards names what is missing, and --allow-partial accepts it.
    let grid = ["--n", "10", "--d", "20", "--sparsity", "2", "--stepsizes", "0.05,0.1,0.15", "--algorithm", "gd"];
    for k in 1..=2 {
        let out = s(&dir.path().join(format!("part{k}.jsonl")));
        let (code, _, err) =
            dlncheck(&[&["sweep", "--out", &out, "--shard", &format!("{k}/3")][..], &grid[..]].concat());
        assert_eq!(code, 0, "{err}");
    }
    let parts = [s(&dir.path().join("part1.jsonl")), s(&dir.path().join("part2.jsonl"))];
    let merged = s(&dir.path().join("all.jsonl"));
    let (code, _, err) = dlncheck(&["merge", &parts[0], &parts[1], "--out", &merged]);
    assert!(code == 2 && err.contains("cover 2 of the grid's 3 cells") && err.contains("cells 2"), "{err}");
    assert!(!dir.path().join("all.jsonl").exists());
    let (code, _, err) = dlncheck(&["merge", &parts[0], &parts[1], "--out", &merged, "--allow-partial"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn compare_puts_a_logged_run_beside_the_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let p = ProblemSpec::default().generate().unwrap();
    let prob = dir.path().join("p.npz");
    p.save(&prob, &[]).unwrap();
    let (grads, beta, _) = user_loop(&p, 0.1, 0.1, 200_000, 1e-28);
    let traj = dir.path().join("t.npz");
    write_trajectory(&traj, 0.1, 0.1, &grads, p.d(), &beta);
    let mine = format!("{}:mine", s(&traj));
    let (code, v) = dlncheck_json(&[
        "compare",
        "--problem",
        &s(&prob),
        "--run",
        "gd:0.1",
        "--trajectory",
        &mine,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{v}");
    let rows = v["rows"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|r| r["method"] == name).unwrap_or_else(|| panic!("no row {name}: {v}"));
    let ours = row("mine: run");
    assert!(ours["dist_theory"].as_f64().unwrap() <= 1e-10, "{ours}");
    // The same loop as the built-in GD at γ = 0.1: the same limit.
    let builtin = row("GD γ=0.1: run");
    let (a, b) = (ours["err"].as_f64().unwrap(), builtin["err"].as_f64().unwrap());
    assert!((a - b).abs() <= 1e-9 * b, "{a} vs {b}");
    let (code, _, err) = dlncheck(&["compare", "--trajectory", &mine]);
    assert!(code == 2 && err.contains("--problem"), "{err}");
}

#[test]
fn sweep_and_plot_run_on_a_users_problem() {
    let dir = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let p = ProblemSpec { n: 12, d: 35, ..ProblemSpec::default() }.generate().unwrap();
    let prob = dir.path().join("p.npz");
    p.save(&prob, &[]).unwrap();
    let out = dir.path().join("s.jsonl");
    let args = ["sweep", "--problem", &s(&prob), "--out", &s(&out), "--stepsizes", "0.02,0.05", "--seeds", "2"];
    let (code, _, err) = dlncheck(&args);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2 * 2 * 2);
    assert!(
        lines.iter().all(|l| l["support"].as_array().unwrap().len() == 3 && l["gain"].as_array().unwrap().len() == 35)
    );
    let (code, _, err) = dlncheck(&["plot", &s(&out), "--out", &s(&dir.path().join("figs"))]);
    assert_eq!(code, 0, "{err}");
    // Another file is another grid: resuming onto it is refused.
    let q = ProblemSpec { n: 12, d: 35, seed: 1, ..ProblemSpec::default() }.generate().unwrap();
    q.save(&prob, &[]).unwrap();
    let (code, _, err) = dlncheck(&[&args[..], &["--resume"]].concat());
    assert!(code == 2 && err.contains("another grid"), "{err}");
    let (code, _, err) = dlncheck(&[&args[..], &["--n", "5"]].concat());
    assert_eq!(code, 2, "{err}");
}
