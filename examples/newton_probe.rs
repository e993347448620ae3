use dlncheck::problem::ProblemSpec;
use dlncheck::solve::{NewtonSettings, solve_implicit};
use nalgebra::DVector;
use std::time::Instant;

fn main() {
    let p = ProblemSpec { n: 100, d: 1000, sparsity: 5, n_test: 0, ..ProblemSpec::default() }.generate().unwrap();
    for scale in [1.0, 5.0, 40.0, 100.0] {
        let ell = DVector::from_fn(p.d(), |i, _| scale * (2.0 * 0.1f64.ln() - 4.0 * ((i * 37 % 101) as f64 / 100.0)));
        let rho = DVector::from_fn(p.d(), |i, _| 0.2 * ((i * 13 % 7) as f64 / 7.0 - 0.5));
        for (start, stage_tol) in [(-30.0, 1e-3), (-10.0, 1e-3), (-5.0, 1e-3), (-30.0, 1e-6), (-5.0, 1e-1)] {
            let s = NewtonSettings { tol: 1e-12, start_level: start, stage_tol, max_iters: 2000 };
            let t = Instant::now();
            let r = solve_implicit(&p.x, &p.y, &ell, &rho, &s);
            let el = t.elapsed();
            match r {
                Ok(sol) => println!(
                    "scale {scale} start {start} stol {stage_tol}: {} iters {} stages {:.2} ms res {:.1e}",
                    sol.newton_iters,
                    sol.stages,
                    el.as_secs_f64() * 1e3,
                    sol.residual
                ),
                Err(e) => println!("scale {scale} start {start} stol {stage_tol}: {e}"),
            }
        }
    }
}
