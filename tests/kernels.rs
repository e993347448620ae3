//! The training kernels against a plain nalgebra implementation of theory/README.md § Setting, and
//! the blocked parallel GD step against the serial one.

use dlncheck::model::Model;
use dlncheck::train::{
    EXP_LIMITS, Exp, ExpSeries, Factors, GD_BLOCK, Linear, Weights, exp_terms, gd_step, gd_step_blocked, sgd_step,
};
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
        gd_step::<Linear>(x.as_slice(), y.as_slice(), 0.05, &mut w1, &r1, &mut next1, &mut xs1);
        gd_step_blocked::<Linear>(x.as_slice(), y.as_slice(), 0.05, &mut w2, &r2, &mut next2, &mut xs2, &mut partials);
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

/// X, y and what sgd_step reads: X row-major and each row's max |X_ij|.
fn sgd_data(n: usize, d: usize) -> (DMatrix<f64>, DVector<f64>, Vec<f64>, Vec<f64>) {
    let (x, y) = data(n, d);
    let x_rm: Vec<f64> = x.transpose().as_slice().to_vec();
    let row_max = x_rm.chunks_exact(d).map(|r| r.iter().fold(0.0f64, |m, v| m.max(v.abs()))).collect();
    (x, y, x_rm, row_max)
}

#[test]
fn sgd_kernel_matches_the_plain_update() {
    let (n, d) = (12, 50);
    let (x, y, x_rm, row_max) = sgd_data(n, d);
    let model = Model::uv(DVector::from_element(d, 0.2));
    let mut w = Weights::init(&model);
    let (mut u, mut v) = (DVector::from_element(d, 0.2 * 2f64.sqrt()), DVector::zeros(d));
    let mut xs = vec![0.0; d];
    let mut acc = GainAccumulator::new(d);
    let mut reference = GainAccumulator::new(d);
    for k in 0..300 {
        let rows: Vec<usize> = if k % 2 == 0 { vec![k % n] } else { vec![k % n, (k * 5 + 1) % n, (k * 7 + 3) % n] };
        let b = u.component_mul(&v);
        sgd_step(
            &x_rm,
            &row_max,
            y.as_slice(),
            &rows,
            0.1,
            &mut w,
            &mut xs,
            Some(&mut acc),
            dlncheck::model::Param::Uv,
        )
        .unwrap();
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

/// Mirror descent's factors e^{∓x} from K terms of the series agree with the library's
/// exponential to rounding (2 ulp) up to each K's limit, and `exp_terms` picks a K whose
/// limit covers the step (or the library's exponential beyond the table, and for NaN).
#[test]
fn the_exponential_series_reaches_rounding_up_to_its_limits() {
    fn check<const K: usize>(limit: f64) {
        for i in 0..=2000 {
            let x = limit * (i as f64 / 1000.0 - 1.0);
            let (p, m) = ExpSeries::<K>::apply(1.0, 1.0, x);
            let (ep, em) = Exp::apply(1.0, 1.0, x);
            let ulp = |a: f64, b: f64| (a - b).abs() / (f64::EPSILON * b.abs());
            assert!(ulp(p, ep) <= 2.0 && ulp(m, em) <= 2.0, "K = {K}, x = {x:e}: {p} vs {ep}, {m} vs {em}");
        }
    }
    check::<1>(EXP_LIMITS[0]);
    check::<2>(EXP_LIMITS[1]);
    check::<3>(EXP_LIMITS[2]);
    check::<4>(EXP_LIMITS[3]);
    check::<6>(EXP_LIMITS[5]);
    check::<8>(EXP_LIMITS[7]);
    assert_eq!(exp_terms(0.0), Some(1));
    assert_eq!(exp_terms(0.01), Some(4));
    assert_eq!(exp_terms(0.6), Some(8));
    assert_eq!((exp_terms(0.7), exp_terms(f64::NAN), exp_terms(f64::INFINITY)), (None, None, None));
}

/// Mirror descent in the kernels equals mirror descent written in z = asinh(b/α²):
/// z ← z − 2γg, b = α² sinh z (theory/README.md § Other starts and parametrisations).
#[test]
fn mirror_descent_kernels_match_the_mirror_step() {
    let (n, d) = (15, 40);
    let (x, y) = data(n, d);
    let alpha = 0.2;
    let model = Model::new(dlncheck::model::Param::Md, DVector::from_element(d, alpha));
    let mut w = Weights::init(&model);
    let mut z = DVector::zeros(d);
    let (mut r, mut next, mut xs) = (y.iter().map(|t| -t).collect::<Vec<f64>>(), vec![0.0; n], vec![0.0; d]);
    for k in 0..300 {
        let gamma = if k % 2 == 0 { 0.05 } else { 0.3 };
        let b = z.map(|z: f64| alpha * alpha * z.sinh());
        let g = x.tr_mul(&(&x * &b - &y)) / n as f64;
        z -= 2.0 * gamma * g;
        // Both the series and the library exponential, by the step's size.
        let bound =
            gamma * x.column_iter().map(|c| c.norm()).fold(0.0, f64::max) * r.iter().map(|v| v * v).sum::<f64>().sqrt()
                / n as f64;
        match exp_terms(bound) {
            Some(_) => gd_step::<ExpSeries<8>>(x.as_slice(), y.as_slice(), gamma, &mut w, &r, &mut next, &mut xs),
            None => gd_step::<Exp>(x.as_slice(), y.as_slice(), gamma, &mut w, &r, &mut next, &mut xs),
        }
        std::mem::swap(&mut r, &mut next);
    }
    let b = z.map(|z: f64| alpha * alpha * z.sinh());
    assert!(close(&w.b, &b, 1e-11), "mirror step");
}

/// Each reading `diagnose` keeps is the gain a plain accumulator computes from the same
/// steps at that scale, to the bit; a reading whose factor 1 ∓ x vanishes is dropped
/// alone (python/tests/test_diagnose.py replays a heavy-ball loop).
#[test]
fn diagnose_readings_are_plain_accumulations() {
    use dlncheck::diagnose::Readings;
    use dlncheck::model::Param;
    let d = 7;
    let steps: Vec<(f64, Vec<f64>)> =
        (0..50).map(|k| (0.1 / (1.0 + k as f64), (0..d).map(|i| ((k * 7 + i) as f64).sin()).collect())).collect();
    for param in [Param::Uv, Param::U2v2] {
        let model = Model { param, init: dlncheck::model::Init::Alpha(DVector::from_element(d, 0.1)) };
        let mut readings = Readings::new(&model, d);
        steps.iter().for_each(|(gamma, g)| readings.add(*gamma, g));
        let s = param.x_scale();
        for a in [s / 2.0, 2.0 * s] {
            let mut acc = GainAccumulator::new(d);
            for (gamma, g) in &steps {
                acc.add(&g.iter().map(|gi| a * gamma * gi).collect::<Vec<_>>()).unwrap();
            }
            let r = readings.at_scale(a).unwrap();
            assert_eq!(
                (r.gain.as_slice(), r.rho.as_slice()),
                (acc.gain.as_slice(), acc.rho.as_slice()),
                "{param:?} a={a}"
            );
        }
        assert!(readings.at_scale(s).is_none(), "the model's own scale is not kept twice");
    }
    // x = 2·γ·g = 1 exactly at scale 2: that reading is dropped, the others stay.
    let model = Model::uv(DVector::from_element(2, 0.1));
    let mut readings = Readings::new(&model, 2);
    readings.add(0.5, &[1.0, 0.1]);
    assert!(readings.at_scale(2.0).is_none() && readings.at_scale(0.5).is_some());
}

/// Without the accumulator an SGD step moves the weights exactly as with it (batch 1,
/// fused or not, and larger batches), for uv and u2v2: a search that skips the gain
/// follows the same run.
#[test]
fn sgd_without_the_gain_is_the_same_run() {
    let (n, d) = (12, 50);
    let (_, y, x_rm, row_max) = sgd_data(n, d);
    for (param, gamma) in
        [(dlncheck::model::Param::Uv, 0.1), (dlncheck::model::Param::Uv, 2.0), (dlncheck::model::Param::U2v2, 0.1)]
    {
        let model = Model::new(param, DVector::from_element(d, 0.2));
        let (mut with, mut without) = (Weights::init(&model), Weights::init(&model));
        let (mut xs, mut acc) = (vec![0.0; d], GainAccumulator::new(d));
        for k in 0..300 {
            let rows: Vec<usize> = if k % 2 == 0 { vec![k % n] } else { vec![k % n, (k * 5 + 1) % n] };
            let g = gamma * param.x_scale();
            let step = |w: &mut Weights, xs: &mut [f64], acc: Option<&mut GainAccumulator>| {
                let _ = sgd_step(&x_rm, &row_max, y.as_slice(), &rows, g, w, xs, acc, param);
            };
            step(&mut with, &mut xs, Some(&mut acc));
            step(&mut without, &mut xs, None);
        }
        assert_eq!(with.w_plus, without.w_plus, "{param:?} γ = {gamma}");
        assert_eq!(with.w_minus, without.w_minus, "{param:?} γ = {gamma}");
    }
}
