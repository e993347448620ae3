//! Property tests (issue 10): arbitrary bytes into the npz reader, arbitrary strings into
//! the expression parser and formula builder, arbitrary TOML into the claim loader. None
//! may panic; each case is bounded in time by the limits. 10,000 cases each.

use std::io::Write;
use std::path::Path;

use dlncheck::npz::{NpzReader, NpzWriter};
use proptest::prelude::*;

const CASES: u32 = 10_000;

/// A valid archive (a small problem) to mutate.
fn valid_archive() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.npz");
    let mut w = NpzWriter::new();
    w.f64("X", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).f64("y", &[2], &[1.0, 2.0]).i64("batches", &[2, 1], &[0, 1]);
    w.write(&path, &[]).unwrap();
    std::fs::read(path).unwrap()
}

/// Reads every array the commands read, in every way they read them.
fn read_all(path: &Path) {
    let Ok(mut f) = NpzReader::open(path) else { return };
    let _ = f.matrix("X", None);
    let _ = f.vector("y", None);
    let _ = f.scalar("y");
    let _ = f.i64_array("batches");
    let _ = f.f64_array("batches");
    let _ = dlncheck::problem::Problem::load(path);
    let _ = dlncheck::trajectory::ExternalTrajectory::load(path, None);
    let _ = dlncheck::npz::read_vector(path, "y", Some(2));
    let _ = dlncheck::train::load_schedule(path, 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn npz_reader_survives_mutations(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                                     cut in any::<prop::sample::Index>(), truncate in any::<bool>()) {
        let mut bytes = valid_archive_cached().to_vec();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npz");
        std::fs::File::create(&path).unwrap().write_all(&bytes).unwrap();
        read_all(&path);
    }

    #[test]
    fn npz_reader_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npz");
        std::fs::write(&path, &bytes).unwrap();
        read_all(&path);
        let npy = dir.path().join("a.npy");
        std::fs::write(&npy, &bytes).unwrap();
        let _ = dlncheck::npz::read_vector(&npy, "w", Some(3));
    }

    #[test]
    fn parser_and_builder_survive_arbitrary_text(text in "[-+*/^()\\[\\],.<>=a-z0-9 _eE]{0,80}") {
        let _ = dlncheck::expr::parse_expr(&text);
        let _ = dlncheck::expr::parse_relation(&text);
        let vars = ["b".to_string(), "a".to_string()];
        let defines = Default::default();
        let builder = dlncheck::symbolic::Builder { variables: &vars, defines: &defines };
        if let Ok(s) = builder.parse(&text) {
            let _ = s.eval(&["b", "a"], &[0.5, 1.0]);
            let _ = dlncheck::symbolic::derivative(&s, "b");
        }
    }

    #[test]
    fn parser_survives_arbitrary_unicode(text in "\\PC{0,60}") {
        let _ = dlncheck::expr::parse_expr(&text);
        let _ = dlncheck::solve::Potential::parse(&text);
    }

    #[test]
    fn claim_loader_survives_arbitrary_toml(body in claim_like()) {
        let _ = dlncheck::claims::parse(Path::new("fuzz.toml"), &body);
    }
}

fn valid_archive_cached() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(valid_archive)
}

/// TOML that looks like a claim file: the real keys and tables with arbitrary values.
fn claim_like() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}").replace("inf", "1e999")),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        "\"[a-z0-9_ .*+()<>=-]{0,30}\"",
        Just("[0, 1]".to_string()),
        Just("[1, 0, 2]".to_string()),
        Just("{ algorithm = \"sgd\", batch = 0, stepsize = \"0.5 * threshold\" }".to_string()),
        Just("{ algorithm = \"gd\", stepsize = 0.1 }".to_string()),
    ];
    let key = prop_oneof![
        Just("id"),
        Just("source"),
        Just("statement"),
        Just("n"),
        Just("d"),
        Just("sparsity"),
        Just("seeds"),
        Just("quick_seeds"),
        Just("alpha"),
        Just("mean"),
        Just("noise"),
        Just("time"),
        Just("tol"),
        Just("rel_width"),
        Just("holds"),
        Just("test"),
        Just("level"),
        Just("positive"),
        Just("points"),
        Just("b"),
        Just("gd"),
        Just("x"),
    ];
    let table = prop_oneof![
        Just(""),
        Just("[scenario]"),
        Just("[threshold]"),
        Just("[runs]"),
        Just("[define]"),
        Just("[check]"),
        Just("[symbolic]"),
        Just("[symbolic.variables]"),
        Just("[symbolic.define]"),
    ];
    let line = (table, key, value)
        .prop_map(|(t, k, v)| if t.is_empty() { format!("{k} = {v}") } else { format!("{t}\n{k} = {v}") });
    proptest::collection::vec(line, 0..12)
        .prop_map(|lines| format!("id = \"f\"\nsource = \"s\"\nstatement = \"s\"\n{}", lines.join("\n")))
}

proptest! {
    /// Runs of equal stepsizes expand back to the stepsizes, count them, and neighbouring
    /// runs differ.
    #[test]
    fn stepsize_runs_expand_back(picks in proptest::collection::vec(0usize..4, 0..200)) {
        let values = [0.1, 0.1 + f64::EPSILON, 1e-300, 1e300];
        let gammas: Vec<f64> = picks.iter().map(|&i| values[i]).collect();
        let runs: dlncheck::train::StepsizeRuns = gammas.iter().copied().collect();
        prop_assert_eq!(runs.expand(), gammas.clone());
        prop_assert_eq!(runs.steps(), gammas.len());
        prop_assert!(runs.runs().windows(2).all(|w| w[0].0 != w[1].0));
        prop_assert!(runs.runs().iter().all(|&(_, k)| k > 0));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any values and counts as a schedule's runs: an error naming the array, or exactly
    /// the expanded stepsizes; never a panic.
    #[test]
    fn stepsize_runs_reader_takes_any_input(
        values in proptest::collection::vec(any::<f64>(), 0..6),
        counts in proptest::collection::vec(prop_oneof![-3i64..1000, Just(i64::MAX), Just(i64::MIN)], 0..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.npz");
        let mut w = NpzWriter::new();
        w.f64("stepsize_values", &[values.len()], &values).i64("stepsize_counts", &[counts.len()], &counts);
        w.write(&path, &[]).unwrap();
        match dlncheck::train::load_schedule(&path, 2) {
            Ok((dlncheck::train::Stepsizes::PerStep(g), _)) => {
                let expected: Vec<f64> =
                    values.iter().zip(&counts).flat_map(|(&v, &k)| std::iter::repeat_n(v, k as usize)).collect();
                prop_assert_eq!(g, expected);
                prop_assert!(values.len() == counts.len() && values.iter().all(|v| v.is_finite() && *v > 0.0));
            }
            Ok(other) => prop_assert!(false, "{other:?}"),
            Err(e) => prop_assert!(e.to_string().contains("stepsize"), "{e}"),
        }
    }
}
