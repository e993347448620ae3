//! Runs batch-1 SGD on d = 1000 for profiling (`perf record`).
use dlncheck::problem::ProblemSpec;
use dlncheck::train::{Batching, Stepsizes, TrainConfig, train};
use nalgebra::DVector;
fn main() {
    let p = ProblemSpec { n: 100, d: 1000, sparsity: 5, n_test: 0, ..ProblemSpec::default() }.generate().unwrap();
    let mut c = TrainConfig::new(
        DVector::from_element(p.d(), 0.1),
        Stepsizes::Constant(0.001),
        Batching::Random { m: 1, seed: 1 },
    );
    c.tol = 0.0;
    c.max_iters = 1_000_000;
    let t = std::time::Instant::now();
    let r = train(&p, &c).unwrap();
    println!("{:.3} us/step, loss {:e}", t.elapsed().as_secs_f64() * 1e6 / c.max_iters as f64, r.loss);
}
