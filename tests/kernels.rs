//! The training kernels against a plain nalgebra implementation of theory/README.md § Setting, and
//! the blocked parallel GD step against the serial one.

use dlncheck::model::Model;
use dlncheck::train::{GD_BLOCK, Weights, gd_step, gd_step_blocked, sgd_step};
use dlncheck::trajectory::GainAccumulator;
use nalgebra::{DMatrix, DVector};

fn data(n: usize, d: usize) -> (DMatrix<f64>, DVector<f64>) {
    let x = DMatrix::from_fn(n, d, |i, j| (((i * 131 + j * 71) % 97) as f64 / 48.5 - 1.0) * 0.3);
    let y = DVector::from_fn(n, |i, _| (i as f64 * 0.37).sin());
    (x, y)
}

/// u ← u − γ g ⊙ v, v ← v − γ g ⊙ u with g = X_Bᵀ(X_B b − y_B)/|B|, written plainly.
fn naive_step(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    rows: &[usize],
    gamma: f64,
    u: &mut DVector<f64>,
    v: &mut DVector<f64>,
) {
    let b = u.component_mul(v);
    let xb = x.select_rows(rows);
    let yb = DVector::from_fn(rows.len(), |k, _| y[rows[k]]);
    let g = xb.tr_mul(&(&xb * &b - yb)) / rows.len() as f64;
    let (u1, v1) = (&*u - gamma * g.component_mul(v), &*v - gamma * g.component_mul(u));
    (*u, *v) = (u1, v1);
}

/// (u, v) of uv weights kept as w± = (u ± v)/√2.
fn uv(model: &Model, w: &Weights) -> (DVector<f64>, DVector<f64>) {
    model.weights(&w.w_plus, &w.w_minus).expect("uv has u, v")
}

fn close(a: &[f64], b: &DVector<f64>, tol: f64) -> bool {
    a.iter().zip(b.iter()).all(|(p, q)| (p - q).abs() <= tol * (1.0 + q.abs()))
}

#[test]
fn gd_kernels_match_the_plain_update() {
    let (n, d) = (40, 3 * GD_BLOCK + 17);
    let (x, y) = data(n, d);
    let model = Model::uv(DVector::from_element(d, 0.3));
    let (mut w1, mut w2) = (Weights::init(&model), Weights::init(&model));
    let (mut u, mut v) = (DVector::from_element(d, 0.3 * 2f64.sqrt()), DVector::zeros(d));
    let (mut r1, mut r2): (Vec<f64>, Vec<f64>) = (y.iter().map(|t| -t).collect(), y.iter().map(|t| -t).collect());
    let (mut next1, mut next2) = (vec![0.0; n], vec![0.0; n]);
    let (mut xs1, mut xs2) = (vec![0.0; d], vec![0.0; d]);
    let mut partials = vec![0.0; d.div_ceil(GD_BLOCK) * n];
    let all: Vec<usize> = (0..n).collect();
    for _ in 0..200 {
        gd_step::<false>(x.as_slice(), y.as_slice(), 0.05, &mut w1, &r1, &mut next1, &mut xs1);
        gd_step_blocked::<false>(x.as_slice(), y.as_slice(), 0.05, &mut w2, &r2, &mut next2, &mut xs2, &mut partials);
        naive_step(&x, &y, &all, 0.05, &mut u, &mut v);
        std::mem::swap(&mut r1, &mut next1);
        std::mem::swap(&mut r2, &mut next2);
    }
    let ((u1, v1), (u2, v2)) = (uv(&model, &w1), uv(&model, &w2));
    assert!(close(u1.as_slice(), &u, 1e-12) && close(v1.as_slice(), &v, 1e-12), "serial vs plain");
    assert!(close(u2.as_slice(), &u, 1e-12) && close(v2.as_slice(), &v, 1e-12), "blocked vs plain");
    let b = u.component_mul(&v);
    assert!(close(&r1, &(&x * &b - &y), 1e-12) && close(&r2, &(&x * &b - &y), 1e-12), "residuals");
}

#[test]
fn sgd_kernel_matches_the_plain_update() {
    let (n, d) = (12, 50);
    let (x, y) = data(n, d);
    let x_rm: Vec<f64> = x.transpose().as_slice().to_vec();
    let row_max: Vec<f64> = x_rm.chunks_exact(d).map(|r| r.iter().fold(0.0f64, |m, v| m.max(v.abs()))).collect();
    let model = Model::uv(DVector::from_element(d, 0.2));
    let mut w = Weights::init(&model);
    let (mut u, mut v) = (DVector::from_element(d, 0.2 * 2f64.sqrt()), DVector::zeros(d));
    let mut xs = vec![0.0; d];
    let mut acc = GainAccumulator::new(d);
    let mut reference = GainAccumulator::new(d);
    for k in 0..300 {
        let rows: Vec<usize> = if k % 2 == 0 { vec![k % n] } else { vec![k % n, (k * 5 + 1) % n, (k * 7 + 3) % n] };
        let b = u.component_mul(&v);
        sgd_step::<false>(&x_rm, &row_max, y.as_slice(), &rows, 0.1, &mut w, &mut xs, Some(&mut acc)).unwrap();
        let xb = x.select_rows(&rows);
        let yb = DVector::from_fn(rows.len(), |k, _| y[rows[k]]);
        let g = xb.tr_mul(&(&xb * &b - yb)) / rows.len() as f64;
        reference.add((0.1 * g).as_slice()).unwrap();
        naive_step(&x, &y, &rows, 0.1, &mut u, &mut v);
    }
    let (wu, wv) = uv(&model, &w);
    assert!(close(wu.as_slice(), &u, 1e-12) && close(wv.as_slice(), &v, 1e-12));
    // The fused batch-1 accumulation equals the separate one.
    assert!(close(acc.gain.as_slice(), &reference.gain, 1e-12) && close(acc.rho.as_slice(), &reference.rho, 1e-12));
}
