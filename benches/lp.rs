//! Certified basis pursuit (issue 15): the ℓ1 homotopy (default) and the LP backends,
//! on Gaussian problems of two kinds: a sparse b* that BP recovers (s = n/10, a
//! degenerate vertex) and one it does not (s = n/2, n nonzeros). Each iteration is the
//! whole `solve --l1` computation: solve, certificate, and `certify_exactly`.
//! `cargo bench --bench lp`; `--features "clarabel highs"` adds those backends.

use criterion::{Criterion, criterion_group, criterion_main};
use dlncheck::problem::ProblemSpec;
use dlncheck::solve::{LpBackend, LpSolution, SolveError, basis_pursuit, certify_exactly};
use nalgebra::{DMatrix, DVector};

fn backends() -> Vec<LpBackend> {
    let mut b = vec![LpBackend::Homotopy, LpBackend::Minilp];
    if cfg!(feature = "clarabel") {
        b.push(LpBackend::Clarabel);
    }
    if cfg!(feature = "highs") {
        b.push(LpBackend::Highs);
    }
    b
}

fn certified(x: &DMatrix<f64>, y: &DVector<f64>, backend: LpBackend) -> Result<LpSolution, SolveError> {
    let mut sol = basis_pursuit(x, y, backend)?;
    certify_exactly(x, y, &DVector::from_element(x.ncols(), 1.0), &mut sol)?;
    Ok(sol)
}

fn bp(c: &mut Criterion) {
    let mut g = c.benchmark_group("certified basis pursuit");
    g.sample_size(10);
    for (n, d) in [(100, 500), (200, 1000), (500, 2000), (1000, 5000)] {
        for (kind, s) in [("sparse", n / 10), ("dense", n / 2)] {
            let p = ProblemSpec { n, d, sparsity: s, n_test: 0, ..ProblemSpec::default() }.generate().unwrap();
            for backend in backends() {
                // microlp takes minutes at 1000 × 5000 (DESIGN notes: only HiGHS finished).
                if n >= 1000 && backend != LpBackend::Homotopy || n >= 500 && backend == LpBackend::Minilp && s > 50 {
                    continue;
                }
                let sol = match certified(&p.x, &p.y, backend) {
                    Ok(sol) => sol,
                    Err(e) => {
                        println!("{n}x{d} {kind} {}: no answer: {e}", backend.name());
                        continue;
                    }
                };
                println!(
                    "{n}x{d} {kind} {}: feasibility {:.1e}, gap {:.1e} ({})",
                    backend.name(),
                    sol.feasibility,
                    sol.rel_gap,
                    sol.dual_from
                );
                g.bench_function(format!("{n}x{d} {kind} {}", backend.name()), |b| {
                    b.iter(|| certified(&p.x, &p.y, backend).unwrap())
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, bp);
criterion_main!(benches);
