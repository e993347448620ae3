//! Times the dual Newton solve behind `predict` (n = 100, d = 1000), for profiling.
use dlncheck::bias::EffectiveInit;
use dlncheck::predict::predict;
use dlncheck::problem::ProblemSpec;
use dlncheck::solve::NewtonSettings;
use nalgebra::DVector;
use std::time::Instant;

fn main() {
    let p = ProblemSpec { n: 100, d: 1000, sparsity: 5, n_test: 0, ..ProblemSpec::default() }.generate().unwrap();
    let ell = DVector::from_fn(p.d(), |i, _| 2.0 * 0.1f64.ln() - 4.0 * ((i * 37 % 101) as f64 / 100.0));
    let rho = DVector::from_fn(p.d(), |i, _| 0.2 * ((i * 13 % 7) as f64 / 7.0 - 0.5));
    let eff =
        EffectiveInit::from_alpha(DVector::from_element(p.d(), 0.1f64.ln()), ell.map(|l| 2.0 * 0.1f64.ln() - l), rho);
    let s = NewtonSettings { tol: 1e-12, ..NewtonSettings::default() };
    let reps = 200;
    let t = Instant::now();
    for _ in 0..reps {
        let pr = predict(&p.x, &p.y, &eff, None, &s).unwrap();
        std::hint::black_box(pr);
    }
    println!("predict: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    let pr = predict(&p.x, &p.y, &eff, None, &s).unwrap();
    println!("theory {} iters, gradient flow {} iters", pr.theory.newton_iters, pr.gradient_flow.newton_iters);
}
