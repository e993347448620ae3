//! Sweeps survive interruption (a killed child, then --resume, gives the same lines as an
//! uninterrupted run), shards merge into the unsharded sweep, and bad inputs exit 2.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::dlncheck;

const GRID: [&str; 14] = [
    "--n",
    "10",
    "--d",
    "20",
    "--sparsity",
    "2",
    "--stepsizes",
    "0.05:0.3:10",
    "--algorithm",
    "gd,sgd",
    "--seeds",
    "4",
    "--tol",
    "1e-14",
];

/// Runs the sweep on GRID, with `extra` flags replacing GRID's values of the same flags.
fn sweep(out: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["sweep", "--out", out.to_str().unwrap()];
    for pair in GRID.chunks(2) {
        if !extra.contains(&pair[0]) {
            args.extend(pair);
        }
    }
    args.extend(extra);
    dlncheck(&args)
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(path).unwrap().lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn a_killed_sweep_resumes_to_the_same_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (full, part) = (dir.path().join("full.jsonl"), dir.path().join("part.jsonl"));
    assert_eq!(sweep(&full, &[]).0, 0);
    let total = sorted_lines(&full).len();
    assert_eq!(total, 80);
    let mut child = Command::new(env!("CARGO_BIN_EXE_dlncheck"))
        .args(["sweep", "--out", part.to_str().unwrap(), "--threads", "1"])
        .args(GRID)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let lines = |p: &Path| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
    while lines(&part) < 5 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let at_kill = lines(&part);
    assert!((5..total).contains(&at_kill), "killed after {at_kill} of {total} cells");
    let (code, out, err) = sweep(&part, &["--resume", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["skipped"].as_u64().unwrap() as usize + report["ran"].as_u64().unwrap() as usize, total);
    assert!(report["skipped"].as_u64().unwrap() >= 4, "{report}");
    assert_eq!(sorted_lines(&part), sorted_lines(&full));
}

#[test]
fn shards_merge_into_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    assert_eq!(sweep(&p("all.jsonl"), &[]).0, 0);
    for k in 1..=3 {
        let shard = format!("{k}/3");
        assert_eq!(sweep(&p(&format!("s{k}.jsonl")), &["--shard", &shard]).0, 0);
    }
    let s = |name: &str| p(name).to_str().unwrap().to_owned();
    let (code, _, err) =
        dlncheck(&["merge", &s("s1.jsonl"), &s("s2.jsonl"), &s("s3.jsonl"), "--out", &s("merged.jsonl")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(dlncheck(&["merge", &s("all.jsonl"), "--out", &s("all_sorted.jsonl")]).0, 0);
    let (merged, all) =
        (std::fs::read_to_string(p("merged.jsonl")).unwrap(), std::fs::read_to_string(p("all_sorted.jsonl")).unwrap());
    assert_eq!(merged.lines().count(), 80);
    assert_eq!(merged, all);
    // Each shard holds exactly its residue class.
    assert_eq!(std::fs::read_to_string(p("s2.jsonl")).unwrap().lines().count(), 27);
}

#[test]
fn bad_sweep_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.jsonl");
    assert_eq!(sweep(&out, &["--shard", "1/40"]).0, 0);
    let (code, _, err) = sweep(&out, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("exists: pass --resume"), "{err}");
    for (flags, what) in [
        (vec!["--shard", "0/3"], "1 ≤ k ≤ N"),
        (vec!["--shard", "4/3"], "1 ≤ k ≤ N"),
        (vec!["--algorithm", "adam"], "algorithm `adam`"),
        (vec!["--algorithm", "sgd:11"], "batch size 11"),
        (vec!["--stepsizes", "0.3:0.1:5"], "lo < hi"),
    ] {
        let (code, _, err) = sweep(&dir.path().join("x.jsonl"), &flags);
        assert_eq!(code, 2, "{flags:?}");
        assert!(err.contains(what), "{flags:?}: {err}");
    }
    // Another grid's line in the file: resume refuses, merge refuses.
    let other = dir.path().join("other.jsonl");
    assert_eq!(sweep(&other, &["--shard", "1/40", "--tol", "1e-13"]).0, 0);
    let (code, _, err) = dlncheck(&[
        "merge",
        out.to_str().unwrap(),
        other.to_str().unwrap(),
        "--out",
        dir.path().join("m.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("differs from"), "{err}");
}

/// A cell whose threshold cannot be found (an ill-conditioned problem: no stepsize reaches
/// the loss within the search's time) fails alone: exit 5, the cell named and not
/// written, the hint that absolute stepsizes need no threshold; `--resume` tries it again;
/// the same problem with absolute stepsizes sweeps.
#[test]
fn a_cell_without_a_threshold_fails_alone_with_exit_5() {
    let dir = tempfile::tempdir().unwrap();
    let problem = dir.path().join("ill.npz");
    let mut w = dlncheck::npz::NpzWriter::new();
    w.f64("X", &[2, 3], &[1.0, 0.0, 0.0, 0.0, 1e-5, 0.0]).f64("y", &[2], &[1.0, 1.0]);
    w.write(&problem, &[]).unwrap();
    let out = dir.path().join("s.jsonl");
    let run = |extra: &[&str]| {
        let base =
            ["sweep", "--problem", problem.to_str().unwrap(), "--algorithm", "gd", "--out", out.to_str().unwrap()];
        dlncheck(&[&base[..], extra].concat())
    };
    let (code, text, err) = run(&["--fractions", "0.5,0.9"]);
    assert_eq!(code, 5, "{text}{err}");
    assert!(text.contains("2 cells failed and are not written"), "{text}");
    assert!(text.contains("cell 0: its threshold: no stepsize converges") && text.contains("absolute"), "{text}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "");
    let (code, text, _) = run(&["--fractions", "0.5,0.9", "--resume"]);
    assert!(code == 5 && text.contains("0 cells run, 0 already done") && text.contains("cell 1:"), "{text}");
    std::fs::remove_file(&out).unwrap();
    let (code, text, err) = run(&["--stepsizes", "0.1,0.2", "--iters", "1000"]);
    assert_eq!(code, 0, "{text}{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 2);
}
