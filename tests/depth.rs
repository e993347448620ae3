//! Issue 25, depth and momentum (theory/README.md § Deeper networks and momentum): the
//! depth-D flow limit against the flow itself, integrated here by RK4 in (u, v); user
//! loops written here in (u, v) (depth GD, heavy ball, Nesterov) against the kernels;
//! `predict --param depth:3` on a user's trajectory; the order fit and its hostile input.

mod common;

use common::{Dir, dlncheck, dlncheck_json};
use dlncheck::claims::eval::{Value, log_log_fit};
use dlncheck::model::{Init, Model, Param};
use dlncheck::npz::NpzWriter;
use dlncheck::problem::{Problem, ProblemSpec};
use dlncheck::solve::{DepthFlow, NewtonSettings, depth_kkt_residual, solve_depth_flow};
use dlncheck::train::{Batching, Momentum, Stepsizes, TrainConfig, train};
use nalgebra::DVector;

fn problem(seed: u64) -> Problem {
    ProblemSpec { n: 20, d: 30, sparsity: 3, seed, ..ProblemSpec::default() }.generate().unwrap()
}

fn rel(a: &DVector<f64>, b: &DVector<f64>) -> f64 {
    (a - b).norm() / b.norm()
}

/// u̇ = −D u^{D−1} g, v̇ = D v^{D−1} g by classical RK4 with step h, until the loss is
/// below 1e-23 (b = u^D − v^D has a rounding floor near 1e-25): gradient flow on
/// b = u^D − v^D, independent of the dual solver.
fn flow_by_rk4(p: &Problem, depth: i32, u0: f64, h: f64) -> DVector<f64> {
    let d = p.d();
    let field = |u: &DVector<f64>, v: &DVector<f64>| {
        let b = u.map(|t| t.powi(depth)) - v.map(|t| t.powi(depth));
        let g = p.x.tr_mul(&(&p.x * b - &p.y)) / p.n() as f64;
        let du = -f64::from(depth) * u.map(|t| t.powi(depth - 1)).component_mul(&g);
        let dv = f64::from(depth) * v.map(|t| t.powi(depth - 1)).component_mul(&g);
        (du, dv)
    };
    let (mut u, mut v) = (DVector::from_element(d, u0), DVector::from_element(d, u0));
    for _ in 0..5_000_000 {
        let b = u.map(|t| t.powi(depth)) - v.map(|t| t.powi(depth));
        if (&p.x * &b - &p.y).norm_squared() / (2.0 * p.n() as f64) < 1e-23 {
            return b;
        }
        let (k1u, k1v) = field(&u, &v);
        let (k2u, k2v) = field(&(&u + &k1u * (h / 2.0)), &(&v + &k1v * (h / 2.0)));
        let (k3u, k3v) = field(&(&u + &k2u * (h / 2.0)), &(&v + &k2v * (h / 2.0)));
        let (k4u, k4v) = field(&(&u + &k3u * h), &(&v + &k3v * h));
        u += (k1u + k2u * 2.0 + k3u * 2.0 + k4u) * (h / 6.0);
        v += (k1v + k2v * 2.0 + k3v * 2.0 + k4v) * (h / 6.0);
    }
    panic!("the flow did not converge");
}

#[test]
fn the_depth_flow_limit_is_where_the_flow_itself_ends_and_satisfies_its_kkt() {
    for (depth, seed) in [(3u8, 0u64), (4, 1)] {
        let p = problem(seed);
        let ones = DVector::from_element(p.d(), 0.3);
        let flow = DepthFlow::new(depth, &ones, &ones);
        let sol = solve_depth_flow(&p.x, &p.y, &flow, &NewtonSettings::default()).unwrap();
        let kkt = depth_kkt_residual(&p.x, &flow, &sol.beta).unwrap();
        assert!(kkt <= 1e-12, "D = {depth}: KKT {kkt:e}");
        // RK4's own error is O(h⁴): halving h must bring it ~16× closer to the solver's
        // limit (a wrong limit would stop the gaps at the mismatch).
        let gaps: Vec<f64> =
            [0.04, 0.02, 0.01].iter().map(|h| rel(&flow_by_rk4(&p, i32::from(depth), 0.3, *h), &sol.beta)).collect();
        assert!(gaps[1] < gaps[0] / 10.0 && gaps[2] < gaps[1] / 10.0, "D = {depth}: RK4 gaps {gaps:?}");
        assert!(gaps[2] <= 1e-5, "D = {depth}: RK4 gaps {gaps:?}");
        // A wrong depth in the map is far away: the check can fail.
        let wrong = DepthFlow::new(depth + 1, &ones, &ones);
        let other = solve_depth_flow(&p.x, &p.y, &wrong, &NewtonSettings::default()).unwrap();
        assert!(rel(&other.beta, &sol.beta) > 1e-3);
        assert!(depth_kkt_residual(&p.x, &wrong, &sol.beta).unwrap() > 1e-6);
    }
}

/// GD on b = u^D − v^D written in (u, v) as a user writes it: `iters` steps, or until
/// the loss is below 1e-23.
fn depth_gd_loop(p: &Problem, depth: i32, alpha: f64, gamma: f64, iters: usize) -> DVector<f64> {
    let (mut u, mut v) = (DVector::from_element(p.d(), alpha), DVector::from_element(p.d(), alpha));
    for _ in 0..iters {
        let b = u.map(|t| t.powi(depth)) - v.map(|t| t.powi(depth));
        let r = &p.x * b - &p.y;
        if r.norm_squared() / (2.0 * p.n() as f64) < 1e-23 {
            break;
        }
        let g = p.x.tr_mul(&r) / p.n() as f64;
        let k = gamma * f64::from(depth);
        let du = u.map(|t| t.powi(depth - 1)).component_mul(&g) * k;
        let dv = v.map(|t| t.powi(depth - 1)).component_mul(&g) * k;
        u -= du;
        v += dv;
    }
    u.map(|t| t.powi(depth)) - v.map(|t| t.powi(depth))
}

#[test]
fn the_depth_kernels_follow_a_loop_in_u_v() {
    let p = problem(2);
    for depth in [3u8, 4, 5] {
        let model = Model::new(Param::Depth(depth), DVector::from_element(p.d(), 0.3));
        let mut config = TrainConfig::with_model(model, Stepsizes::Constant(0.01), Batching::Full);
        (config.max_iters, config.tol) = (3000, 0.0);
        let run = train(&p, &config).unwrap();
        let by_hand = depth_gd_loop(&p, i32::from(depth), 0.3, 0.01, 3000);
        assert!(rel(&run.beta(), &by_hand) < 1e-12, "D = {depth}: {:e}", rel(&run.beta(), &by_hand));
    }
}

#[test]
fn a_numpy_style_depth_loop_is_checked_against_the_flow_with_verdict_null() {
    let dir = Dir::new();
    let p = problem(0);
    let pp = dir.s("p.npz");
    p.save(std::path::Path::new(&pp), &[]).unwrap();
    let mut dists = Vec::new();
    for gamma in [0.02, 0.01, 0.005] {
        let b = depth_gd_loop(&p, 3, 0.3, gamma, 10_000_000);
        let path = dir.s(&format!("t{gamma}.npz"));
        let mut w = NpzWriter::new();
        w.vector("alpha", &DVector::from_element(p.d(), 0.3))
            .f64("stepsizes", &[1], &[gamma])
            .f64("grads", &[1, p.d()], &vec![0.0; p.d()])
            .vector("beta", &b);
        w.write(std::path::Path::new(&path), &[]).unwrap();
        let (code, j) = dlncheck_json(&["predict", "--problem", &pp, "--trajectory", &path, "--param", "depth:3"]);
        assert_eq!(code, 0, "{j}");
        assert!(j["verdict"].is_null(), "{j}");
        assert!(j["message"].as_str().unwrap().contains("no exact discrete-time theory"));
        assert!(j["kkt_flow"].as_f64().unwrap() <= 1e-12);
        dists.push(j["dist_flow"].as_f64().unwrap());
    }
    assert!(dists[0] > dists[1] && dists[1] > dists[2], "{dists:?}");
    let args: Vec<Value> =
        dists.iter().zip([0.02, 0.01, 0.005]).flat_map(|(d, g)| [Value::Num(*d), Value::Num(g)]).collect();
    let (order, _) = log_log_fit(&args).unwrap();
    assert!((0.8..1.3).contains(&order), "order {order}");
    // The exact family's commands refuse a depth run's gain by name (exit 2).
    let (code, _, err) = dlncheck(&["gain", "--trajectory", &dir.s("t0.01.npz"), "--param", "depth:3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("depth:3 has no gain"), "{err}");
}

/// Heavy ball (or Nesterov) on b = u ⊙ v written in (u, v).
fn momentum_loop(p: &Problem, alpha: f64, gamma: f64, mu: f64, nesterov: bool, iters: usize) -> DVector<f64> {
    let d = p.d();
    let mut u = DVector::from_element(d, std::f64::consts::SQRT_2 * alpha);
    let mut v = DVector::zeros(d);
    let (mut up, mut vp) = (u.clone(), v.clone());
    for _ in 0..iters {
        let (eu, ev) = if nesterov { (&u + (&u - &up) * mu, &v + (&v - &vp) * mu) } else { (u.clone(), v.clone()) };
        let g = p.x.tr_mul(&(&p.x * eu.component_mul(&ev) - &p.y)) / p.n() as f64;
        let (nu, nv) = if nesterov {
            (&eu - (&g.component_mul(&ev)) * gamma, &ev - (&g.component_mul(&eu)) * gamma)
        } else {
            (&u - g.component_mul(&v) * gamma + (&u - &up) * mu, &v - g.component_mul(&u) * gamma + (&v - &vp) * mu)
        };
        (up, vp, u, v) = (u, v, nu, nv);
    }
    u.component_mul(&v)
}

#[test]
fn momentum_kernels_follow_a_loop_in_u_v_and_mu_zero_is_plain_gd_to_the_bit() {
    let p = problem(3);
    let alpha = DVector::from_element(p.d(), 0.1);
    let run_with = |m: Option<Momentum>, batching: Batching| {
        let mut c = TrainConfig::with_model(Model::uv(alpha.clone()), Stepsizes::Constant(0.05), batching);
        (c.max_iters, c.tol, c.momentum) = (4000, 0.0, m);
        train(&p, &c).unwrap()
    };
    for nesterov in [false, true] {
        let run = run_with(Some(Momentum::new(0.5, nesterov).unwrap()), Batching::Full);
        let by_hand = momentum_loop(&p, 0.1, 0.05, 0.5, nesterov, 4000);
        assert!(rel(&run.beta(), &by_hand) < 1e-10, "nesterov {nesterov}: {:e}", rel(&run.beta(), &by_hand));
        assert!(!run.has_exact_theory());
        for batching in [Batching::Full, Batching::Random { m: 2, seed: 4 }] {
            let plain = run_with(None, batching.clone());
            let zero = run_with(Some(Momentum::new(0.0, nesterov).unwrap()), batching);
            assert_eq!(plain.beta(), zero.beta());
        }
    }
    // The balance gain of plain GD is its gain (the conservation law).
    let plain = run_with(None, Batching::Full);
    let (b, g) = (plain.balance_gain(), &plain.accumulator.gain);
    assert!((b - g).amax() <= 1e-9 * g.amax(), "{:e}", (plain.balance_gain() - g).amax());
}

#[test]
fn momentum_and_depth_are_refused_where_no_theory_applies_exit_2_nothing_written() {
    let dir = Dir::new();
    let p = problem(0);
    let pp = dir.s("p.npz");
    p.save(std::path::Path::new(&pp), &[]).unwrap();
    let base = ["train", "--problem", &pp, "--alpha", "0.1", "--stepsize", "0.05", "--iters", "50"];
    for (extra, needle) in [
        (vec!["--momentum", "1"], "[0, 1)"),
        (vec!["--momentum", "-0.1"], "[0, 1)"),
        (vec!["--momentum", "NaN"], "[0, 1)"),
        (vec!["--nesterov"], "--momentum"),
        (vec!["--momentum", "0.5", "--param", "md"], "mirror descent"),
        (vec!["--param", "depth:9"], "depth:D takes D in 3..=8"),
    ] {
        let out = dir.s("r.npz");
        let mut args = base.to_vec();
        args.extend(extra.iter().copied());
        args.extend(["--out", &out]);
        let (code, _, err) = dlncheck(&args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!dir.path("r.npz").exists(), "{extra:?} wrote a file");
    }
    let out = dir.s("hb.npz");
    let mut args = base.to_vec();
    args.extend(["--momentum", "0.5", "--out", &out]);
    assert_eq!(dlncheck(&args).0, 0);
    for cmd in [vec!["gain", &out], vec!["predict", "--problem", &pp, "--run", &out]] {
        let (code, _, err) = dlncheck(&cmd);
        assert_eq!(code, 2, "{cmd:?}: {err}");
        assert!(err.contains("array `momentum`") && err.contains("no exact theory"), "{err}");
    }
    // The commands that report Theorem 1's limit refuse depth by name, writing nothing.
    let sweep_out = dir.s("sweep.jsonl");
    for cmd in [
        vec!["compare", "--problem", &pp, "--param", "depth:3", "--run", "gd:0.01"],
        vec!["sweep", "--param", "depth:3", "--stepsizes", "0.01:0.02:2", "--out", &sweep_out],
    ] {
        let (code, _, err) = dlncheck(&cmd);
        assert_eq!(code, 2, "{cmd:?}: {err}");
        assert!(err.contains("depth:3 does not have") && !err.contains("shape mismatch"), "{err}");
    }
    assert!(!dir.path("sweep.jsonl").exists());
    // A depth start must be positive, by name.
    let init = dir.s("init.npz");
    let mut w = NpzWriter::new();
    let mut u0 = DVector::from_element(p.d(), 0.3);
    u0[4] = -0.1;
    w.vector("u0", &u0).vector("v0", &DVector::from_element(p.d(), 0.3));
    w.write(std::path::Path::new(&init), &[]).unwrap();
    let (code, _, err) =
        dlncheck(&["train", "--problem", &pp, "--init", &init, "--param", "depth:3", "--stepsize", "0.01"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("u0 entry 4") && err.contains("> 0"), "{err}");
    let model = Model { param: Param::Depth(3), init: Init::Weights { u0, v0: DVector::from_element(p.d(), 0.3) } };
    assert!(model.check(p.d()).is_err());
}

#[test]
fn the_order_fit_is_exact_on_a_power_law_and_refuses_what_has_no_log() {
    let pairs = |v: &[(f64, f64)]| v.iter().flat_map(|(a, g)| [Value::Num(*a), Value::Num(*g)]).collect::<Vec<_>>();
    for k in [0.5, 1.0, 2.0, 6.0] {
        for scale in [1e-300, 1.0, 1e250] {
            let pts: Vec<(f64, f64)> =
                [0.1, 0.05, 0.025, 0.0125].iter().map(|g: &f64| (scale * g.powf(k), *g)).collect();
            let (slope, residual) = log_log_fit(&pairs(&pts)).unwrap();
            assert!((slope - k).abs() < 1e-9 && residual < 1e-9, "k {k} scale {scale:e}: {slope} {residual}");
        }
    }
    let (_, residual) = log_log_fit(&pairs(&[(1.0, 0.1), (0.1, 0.05), (0.5, 0.025)])).unwrap();
    assert!(residual > 0.5, "a zig-zag has a large residual: {residual}");
    for bad in [
        vec![(0.0, 0.1), (1.0, 0.2), (2.0, 0.3)],
        vec![(-1.0, 0.1), (1.0, 0.2), (2.0, 0.3)],
        vec![(f64::NAN, 0.1), (1.0, 0.2), (2.0, 0.3)],
        vec![(1.0, f64::INFINITY), (1.0, 0.2), (2.0, 0.3)],
        vec![(1.0, 0.1), (2.0, 0.1), (3.0, 0.1)],
    ] {
        assert!(log_log_fit(&pairs(&bad)).is_err(), "{bad:?}");
    }
}

fn cases() -> u32 {
    std::env::var("DLNCHECK_PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64)
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Any text: parsed as one of the parametrisations or refused with a message, never a
    /// panic; depth:D only for D in 3..=8.
    #[test]
    fn param_parse_never_panics(text in "\\\\PC{0,12}|depth:[0-9]{1,4}|depth: ?-?[0-9]") {
        match Param::parse(&text) {
            Ok(Param::Depth(d)) => prop_assert!((3..=8).contains(&d)),
            Ok(p) => prop_assert_eq!(p.name(), text.trim()),
            Err(m) => prop_assert!(m.contains("unknown parametrisation")),
        }
    }

    /// μ is accepted exactly on [0, 1).
    #[test]
    fn momentum_is_checked(mu in prop_oneof![any::<f64>(), -2.0..2.0f64, Just(1.0), Just(0.0), Just(f64::NAN)]) {
        prop_assert_eq!(Momentum::new(mu, false).is_ok(), (0.0..1.0).contains(&mu));
    }

    /// The depth flow's solver on targets from 1e-300 to 1e300 and scales from 1e-2 to
    /// 1e2: an answer within its residual bound and with a small KKT residual, or a typed
    /// error; never a panic or a silent non-answer.
    #[test]
    fn the_depth_flow_solver_answers_or_says_why(
        depth in 3u8..=6,
        y_exp in -300i32..=300,
        a_exp in -2.0..2.0f64,
        seed in 0u64..4,
    ) {
        let p = ProblemSpec { n: 6, d: 12, sparsity: 2, seed, ..ProblemSpec::default() }.generate().unwrap();
        let y = &p.y * 10f64.powi(y_exp);
        let w0 = DVector::from_element(p.d(), 10f64.powf(a_exp));
        let flow = DepthFlow::new(depth, &w0, &w0);
        if let Ok(sol) = solve_depth_flow(&p.x, &y, &flow, &NewtonSettings::default()) {
            prop_assert!(sol.residual <= 1e-10, "residual {:e}", sol.residual);
            prop_assert!(sol.beta.iter().all(|b| b.is_finite()));
            let r = dlncheck::numeric::rel_residual(&(&p.x * &sol.beta - &y), &y);
            prop_assert!(r <= 1e-9, "recomputed residual {r:e}");
        }
    }

    /// The order fit on any numbers: a slope and a residual, or an error; never a panic.
    #[test]
    fn the_order_fit_never_panics(v in proptest::collection::vec((any::<f64>(), any::<f64>()), 3..8)) {
        let args: Vec<Value> = v.iter().flat_map(|(a, g)| [Value::Num(*a), Value::Num(*g)]).collect();
        if let Ok((slope, residual)) = log_log_fit(&args) {
            prop_assert!(v.iter().all(|(a, g)| *a > 0.0 && *g > 0.0 && a.is_finite() && g.is_finite()));
            prop_assert!(slope.is_finite() && residual.is_finite() && residual >= 0.0);
        }
    }
}

#[test]
fn compare_and_sweep_take_momentum_and_report_the_balance_gain_without_theory() {
    let dir = Dir::new();
    let p = problem(0);
    let pp = dir.s("p.npz");
    p.save(std::path::Path::new(&pp), &[]).unwrap();
    let (code, j) =
        dlncheck_json(&["train", "--problem", &pp, "--alpha", "0.1", "--stepsize", "0.05", "--momentum", "0.5"]);
    assert_eq!(code, 0);
    let balance = j["balance_gain_l1"].as_f64().unwrap();
    assert!(j["gain_l1"].is_null());
    // The sweep line of the same run carries the same balance gain, and no theory.
    let (with, without) = (dir.s("m.jsonl"), dir.s("plain.jsonl"));
    let grid = ["sweep", "--problem", &pp, "--algorithm", "gd", "--stepsizes", "0.05:0.1:2", "--iters", "1000000"];
    let mut args = grid.to_vec();
    args.extend(["--tol", "1e-25", "--momentum", "0.5", "--out", &with]);
    assert_eq!(dlncheck(&args).0, 0);
    let mut args = grid.to_vec();
    args.extend(["--tol", "1e-25", "--out", &without]);
    assert_eq!(dlncheck(&args).0, 0);
    let line = |f: &str| -> serde_json::Value {
        let lines = std::fs::read_to_string(f).unwrap();
        let all: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        all.into_iter().find(|v| v["stepsize"] == 0.05).expect("the γ = 0.05 line")
    };
    let (m, plain) = (line(&with), line(&without));
    assert_eq!(m["gain_l1"].as_f64().unwrap(), balance);
    assert!(m["dist_theory"].is_null() && plain["dist_theory"].as_f64().unwrap() < 1e-8);
    assert_ne!(m["grid"], plain["grid"], "momentum is part of the grid's fingerprint");
    // compare: the run row is measured, its theory rows are empty, and a note says why.
    let (code, out, err) =
        dlncheck(&["compare", "--problem", &pp, "--run", "gd:0.05", "--momentum", "0.5", "--format", "md"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("GD γ=0.05 heavy ball μ=0.5: run") && (out + &err).contains("momentum has no theory"));
}

#[test]
fn heavy_ball_on_depth_3_follows_a_loop_in_u_v() {
    let p = problem(4);
    let (gamma, mu, steps) = (0.01, 0.6, 3000);
    let (mut u, mut v) = (DVector::from_element(p.d(), 0.3), DVector::from_element(p.d(), 0.3));
    let (mut up, mut vp) = (u.clone(), v.clone());
    for _ in 0..steps {
        let b = u.map(|t: f64| t.powi(3)) - v.map(|t: f64| t.powi(3));
        let g = p.x.tr_mul(&(&p.x * b - &p.y)) / p.n() as f64;
        let nu = &u - u.map(|t| 3.0 * t * t).component_mul(&g) * gamma + (&u - &up) * mu;
        let nv = &v + v.map(|t| 3.0 * t * t).component_mul(&g) * gamma + (&v - &vp) * mu;
        (up, vp, u, v) = (u, v, nu, nv);
    }
    let by_hand = u.map(|t| t.powi(3)) - v.map(|t| t.powi(3));
    let model = Model::new(Param::Depth(3), DVector::from_element(p.d(), 0.3));
    let mut c = TrainConfig::with_model(model, Stepsizes::Constant(gamma), Batching::Full);
    (c.max_iters, c.tol, c.momentum) = (steps, 0.0, Some(Momentum::new(mu, false).unwrap()));
    let run = train(&p, &c).unwrap();
    assert!(rel(&run.beta(), &by_hand) < 1e-11, "{:e}", rel(&run.beta(), &by_hand));
}
