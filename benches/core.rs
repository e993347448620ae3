//! Speed of the core (issue 2): GD and SGD steps, one GD step on a large problem against
//! a pass over X at memory bandwidth, and the dual Newton solve behind `predict`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dlncheck::bias::EffectiveInit;
use dlncheck::bias::Scales;
use dlncheck::model::{Init, Model, Param};
use dlncheck::predict::predict;
use dlncheck::problem::{Problem, ProblemSpec};
use dlncheck::solve::{NewtonSettings, NewtonSystem, Potential, solve_implicit, solve_potential};
use dlncheck::train::{Batching, Momentum, Stepsizes, TrainConfig, dot, train};
use nalgebra::DVector;
use rayon::prelude::*;
use std::hint::black_box;

fn problem(n: usize, d: usize) -> Problem {
    ProblemSpec { n, d, sparsity: 5.min(d), n_test: 0, ..ProblemSpec::default() }.generate().unwrap()
}

/// `steps` steps of (S)GD with the loss tolerance off, so every step runs.
fn config(p: &Problem, gamma: f64, batching: Batching, steps: usize) -> TrainConfig {
    let mut c = TrainConfig::new(DVector::from_element(p.d(), 0.1), Stepsizes::Constant(gamma), batching);
    c.tol = 0.0;
    c.max_iters = steps;
    c
}

fn steps(c: &mut Criterion) {
    let mut g = c.benchmark_group("step");
    g.sample_size(20);
    let small = problem(20, 30);
    let wide = problem(100, 1000);
    let k = 100_000;
    g.throughput(Throughput::Elements(k as u64));
    // Every parametrisation of the family (issue 21): the uv kernel is the reference.
    for param in Param::ALL {
        let name = param.name();
        let cfg = family(config(&small, 0.1, Batching::Full, k), param);
        g.bench_function(format!("gd {name} n=20 d=30 (per 100k steps)"), |b| {
            b.iter(|| train(black_box(&small), &cfg).unwrap())
        });
        let cfg = family(config(&wide, 0.001, Batching::Random { m: 1, seed: 1 }, k), param);
        g.bench_function(format!("sgd {name} batch 1 d=1000 (per 100k steps)"), |b| {
            b.iter(|| train(black_box(&wide), &cfg).unwrap())
        });
    }
    // Depth and momentum (issue 25): within 2× of the uv kernel per step. Stepsizes small
    // enough that no run stops early (checked below).
    let variants: [(String, Option<Param>, Option<Momentum>, f64); 4] = [
        ("depth:3".into(), Some(Param::Depth(3)), None, 0.02),
        ("depth:4".into(), Some(Param::Depth(4)), None, 0.02),
        ("uv heavy ball".into(), None, Some(Momentum { mu: 0.5, nesterov: false }), 0.05),
        ("uv nesterov".into(), None, Some(Momentum { mu: 0.5, nesterov: true }), 0.05),
    ];
    for (name, param, momentum, gamma) in variants {
        for (p, batching, label) in [
            (&small, Batching::Full, "gd n=20 d=30"),
            (&wide, Batching::Random { m: 1, seed: 1 }, "sgd batch 1 d=1000"),
        ] {
            let gamma = if matches!(batching, Batching::Full) { gamma } else { 0.001 };
            let mut cfg = family(config(p, gamma, batching, k), param.unwrap_or(Param::Uv));
            cfg.momentum = momentum;
            assert_eq!(train(p, &cfg).unwrap().iters, k, "{name} {label} stops early");
            g.bench_function(format!("{label} {name} (per 100k steps)"), |b| {
                b.iter(|| train(black_box(p), &cfg).unwrap())
            });
        }
    }
    g.finish();
}

/// The same run on another parametrisation, from its default start at the same α.
fn family(mut c: TrainConfig, param: Param) -> TrainConfig {
    let Init::Alpha(alpha) = c.model.init.clone() else { unreachable!("config() starts from α") };
    c.model = Model::new(param, alpha);
    c
}

fn large(c: &mut Criterion) {
    let mut g = c.benchmark_group("large");
    g.sample_size(10);
    let p = problem(1000, 10_000);
    let k = 10;
    let cfg = config(&p, 1e-5, Batching::Full, k);
    g.bench_function("gd n=1000 d=10000 (per 10 steps)", |b| b.iter(|| train(black_box(&p), &cfg).unwrap()));
    let x = p.x.as_slice();
    g.bench_function("one pass over X (80 MB, per 10 passes)", |b| {
        b.iter(|| (0..k).map(|_| dot(black_box(x), black_box(x))).sum::<f64>())
    });
    // Both cores reading: the machine's memory bandwidth, the bar for the GD step.
    g.bench_function("one pass over X on all cores (per 10 passes)", |b| {
        b.iter(|| (0..k).map(|_| x.par_chunks(1 << 16).map(|c| dot(c, c)).sum::<f64>()).sum::<f64>())
    });
    g.finish();
}

fn newton(c: &mut Criterion) {
    let mut g = c.benchmark_group("predict");
    g.sample_size(20);
    let p = problem(100, 1000);
    // A realistic effective initialisation: α = 0.1, gains spread over [0, 4].
    let ell = DVector::from_fn(p.d(), |i, _| 2.0 * 0.1f64.ln() - 4.0 * ((i * 37 % 101) as f64 / 100.0));
    let rho = DVector::from_fn(p.d(), |i, _| 0.2 * ((i * 13 % 7) as f64 / 7.0 - 0.5));
    let s = NewtonSettings { tol: 1e-12, ..NewtonSettings::default() };
    let sol = solve_implicit(&p.x, &p.y, &Scales::two_sided(ell.clone(), rho.clone()), &s).unwrap();
    assert!(sol.residual <= 1e-12);
    println!("n=100 d=1000: {} Newton iterations, residual {:.1e}", sol.newton_iters, sol.residual);
    g.bench_function("dual Newton n=100 d=1000", |b| {
        b.iter(|| solve_implicit(&p.x, &p.y, &Scales::two_sided(ell.clone(), rho.clone()), &s).unwrap())
    });
    // What `predict` computes: the theory's limit and gradient flow's (warm-started).
    let eff = EffectiveInit::from_alpha(
        DVector::from_element(p.d(), 0.1f64.ln()),
        ell.map(|l| 2.0 * 0.1f64.ln() - l),
        rho.clone(),
    );
    g.bench_function("predict (theory + gradient flow) n=100 d=1000", |b| {
        b.iter(|| predict(&p.x, &p.y, &eff, None, &s).unwrap())
    });
    let deep = ell.map(|l| 40.0 * l); // ln α_∞² down to -350: continuation
    let sol = solve_implicit(&p.x, &p.y, &Scales::two_sided(deep.clone(), rho.clone()), &s).unwrap();
    println!("deep scale: {} Newton iterations in {} stages", sol.newton_iters, sol.stages);
    g.bench_function("dual Newton n=100 d=1000, ln α_∞² to -350", |b| {
        b.iter(|| solve_implicit(&p.x, &p.y, &Scales::two_sided(deep.clone(), rho.clone()), &s).unwrap())
    });
    g.finish();
}

/// The dual Newton system at the sizes the peers are measured on: the kernel alone
/// (H = X diag(c) Xᵀ by a symmetric rank-d product, then Cholesky; in f64, and the f32
/// direction of the damped phase) and a whole solve.
fn hessian(c: &mut Criterion) {
    let mut g = c.benchmark_group("hessian");
    g.sample_size(10);
    for (n, d) in [(300, 3000), (1000, 5000)] {
        let p = problem(n, d);
        let weights = DVector::from_fn(d, |j, _| 0.01 + (j % 17) as f64 / 17.0);
        let mut system = NewtonSystem::new(n, d);
        g.bench_function(format!("form and factor X diag(c) Xᵀ, n={n} d={d}"), |b| {
            b.iter(|| system.factorize(black_box(&p.x), &weights).unwrap())
        });
        let grad = DVector::from_fn(n, |i, _| (i as f64).sin());
        g.bench_function(format!("f32 direction (form, factor, solve), n={n} d={d}"), |b| {
            b.iter(|| system.direction_f32(black_box(&p.x), &weights, &grad).unwrap())
        });
        let ell = DVector::from_element(d, 2.0 * 0.1f64.ln());
        let rho = DVector::zeros(d);
        let s = NewtonSettings::default();
        g.bench_function(format!("argmin ψ_α (α = 0.1), n={n} d={d}"), |b| {
            b.iter(|| solve_implicit(&p.x, &p.y, &Scales::two_sided(ell.clone(), rho.clone()), &s).unwrap())
        });
    }
    g.finish();
}

/// The generic potential solver (issue 5) on ψ_α's formula against the built-in dual
/// Newton, both for gradient flow's problem (ρ = 0, ln α² = 2 ln α) on n = 100, d = 1000.
fn potential(c: &mut Criterion) {
    let mut g = c.benchmark_group("potential");
    g.sample_size(20);
    let p = problem(100, 1000);
    let alpha = DVector::from_fn(p.d(), |i, _| 0.1 * (1.0 + (i % 7) as f64 / 7.0));
    let s = NewtonSettings { tol: 1e-12, ..NewtonSettings::default() };
    let pot = Potential::parse("(b * asinh(b / a^2) - sqrt(b^2 + a^4) + a^2) / 2").unwrap();
    let (ell, rho) = (alpha.map(|a| 2.0 * a.ln()), DVector::zeros(p.d()));
    let generic = solve_potential(&p.x, &p.y, &pot, &alpha, &s).unwrap();
    let builtin = solve_implicit(&p.x, &p.y, &Scales::two_sided(ell.clone(), rho.clone()), &s).unwrap();
    println!(
        "generic: {} Newton iterations, built-in: {}; relative gap {:.1e}",
        generic.newton_iters,
        builtin.newton_iters,
        (&generic.beta - &builtin.beta).norm() / builtin.beta.norm()
    );
    g.bench_function("generic potential (ψ_α formula) n=100 d=1000", |b| {
        b.iter(|| solve_potential(&p.x, &p.y, &pot, &alpha, &s).unwrap())
    });
    g.bench_function("built-in dual Newton, same problem", |b| {
        b.iter(|| solve_implicit(&p.x, &p.y, &Scales::two_sided(ell.clone(), rho.clone()), &s).unwrap())
    });
    g.finish();
}

criterion_group!(benches, steps, large, newton, hessian, potential);
criterion_main!(benches);
