//! Basis pursuit speed (issue 3) on Gaussian problems, model building and certificate
//! included, for the default backend and, when built with `--features clarabel` /
//! `--features highs`, for those.

use criterion::{Criterion, criterion_group, criterion_main};
use dlncheck::problem::ProblemSpec;
use dlncheck::solve::{LpBackend, basis_pursuit};

fn backends() -> Vec<LpBackend> {
    let mut b = vec![LpBackend::Minilp];
    if cfg!(feature = "clarabel") {
        b.push(LpBackend::Clarabel);
    }
    if cfg!(feature = "highs") {
        b.push(LpBackend::Highs);
    }
    b
}

fn bp(c: &mut Criterion) {
    let mut g = c.benchmark_group("basis pursuit");
    g.sample_size(10);
    for (n, d) in [(100, 500), (200, 1000), (500, 2000)] {
        let p = ProblemSpec { n, d, sparsity: n / 10, n_test: 0, ..ProblemSpec::default() }.generate().unwrap();
        for backend in backends() {
            let sol = match basis_pursuit(&p.x, &p.y, backend) {
                Ok(sol) => sol,
                Err(e) => {
                    println!("{n}x{d} {}: no answer: {e}", backend.name());
                    continue;
                }
            };
            println!(
                "{n}x{d} {}: feasibility {:.1e}, gap {:.1e} ({})",
                backend.name(),
                sol.feasibility,
                sol.rel_gap,
                sol.dual_from
            );
            g.bench_function(format!("{n}x{d} {}", backend.name()), |b| {
                b.iter(|| basis_pursuit(&p.x, &p.y, backend).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bp);
criterion_main!(benches);
