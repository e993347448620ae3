use nalgebra::DMatrix;
use std::time::Instant;
fn main() {
    let x = DMatrix::<f64>::from_fn(100, 1000, |i, j| ((i * 31 + j * 17) % 13) as f64 - 6.0);
    let xt = x.transpose();
    let mut h = DMatrix::<f64>::zeros(100, 100);
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..100 {
            h.gemm(1.0, &x, &xt, 0.0);
        }
        println!("gemm 100x1000x100: {:.3} ms", t.elapsed().as_secs_f64() * 10.0);
        let t = Instant::now();
        for _ in 0..100 {
            const B: usize = 32;
            let n = 100;
            for i0 in (0..n).step_by(B) {
                let bi = B.min(n - i0);
                for j0 in (0..=i0).step_by(B) {
                    let bj = B.min(n - j0);
                    let mut block = h.view_mut((i0, j0), (bi, bj));
                    block.gemm(1.0, &x.rows(i0, bi), &xt.columns(j0, bj), 0.0);
                }
            }
        }
        println!("blocked: {:.3} ms", t.elapsed().as_secs_f64() * 10.0);
        let t = Instant::now();
        for _ in 0..100 {
            let c = nalgebra::Cholesky::new(h.clone() + DMatrix::<f64>::identity(100, 100) * 1e6);
            std::hint::black_box(c);
        }
        println!("chol: {:.3} ms", t.elapsed().as_secs_f64() * 10.0);
    }
}
