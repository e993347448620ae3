//! Times basis pursuit (model, solve, certificate) on Gaussian problems.
use dlncheck::problem::ProblemSpec;
use dlncheck::solve::{LpBackend, basis_pursuit};
use std::time::Instant;

fn main() {
    for (n, d) in [(20, 30), (100, 500), (200, 1000), (500, 2000)] {
        let p = ProblemSpec { n, d, sparsity: n / 10, n_test: 0, ..ProblemSpec::default() }.generate().unwrap();
        let t = Instant::now();
        let sol = basis_pursuit(&p.x, &p.y, LpBackend::Minilp).unwrap();
        let total = t.elapsed().as_secs_f64();
        println!(
            "{n}x{d}: total {:.1} ms (model+solve {:.1} ms), feasibility {:.1e}, gap {:.1e} from {}",
            total * 1e3,
            sol.solve_seconds * 1e3,
            sol.feasibility,
            sol.rel_gap,
            sol.dual_from
        );
    }
}
