//! Scale-free norms, in one place: every residual, distance and relative error of the
//! library is computed through these, so numbers from 1e-300 to 1e300 neither underflow
//! to 0 nor overflow to ∞ when squared.

use nalgebra::DVector;

/// ‖v‖₂ = m·‖v/m‖₂ with m = max_i |v_i| (hypot-style: no square underflows or
/// overflows); 0 for an empty or zero vector, NaN if an entry is NaN, ∞ if one is ∞.
pub fn norm(v: &DVector<f64>) -> f64 {
    let m = v.iter().fold(0.0_f64, |m, x| if x.is_nan() { f64::NAN } else { m.max(x.abs()) });
    if !(m > 0.0 && m.is_finite()) {
        return m;
    }
    let inv = 1.0 / m;
    if inv.is_finite() {
        m * v.iter().map(|x| (x * inv) * (x * inv)).sum::<f64>().sqrt()
    } else {
        // m is subnormal: 1/m overflows, so divide instead.
        m * v.iter().map(|x| (x / m) * (x / m)).sum::<f64>().sqrt()
    }
}

/// ‖a − b‖₂ / ‖b‖₂, scale-free; the absolute distance when b = 0.
pub fn rel_dist(a: &DVector<f64>, b: &DVector<f64>) -> f64 {
    let nb = norm(b);
    norm(&(a - b)) / if nb > 0.0 { nb } else { 1.0 }
}

/// ‖r‖₂ / ‖y‖₂ for a residual r of data y, scale-free; ‖r‖₂ when y = 0.
pub fn rel_residual(r: &DVector<f64>, y: &DVector<f64>) -> f64 {
    let ny = norm(y);
    norm(r) / if ny > 0.0 { ny } else { 1.0 }
}

/// The power of two 2^⌊log₂ m⌋ ≤ m for a positive finite m (else 1): dividing by it
/// brings m into [1, 2) exactly, so a problem scaled by it is the same problem to the
/// last bit (no rounding is added by the scaling or by mapping the answer back).
pub fn pow2_scale(m: f64) -> f64 {
    if m > 0.0 && m.is_finite() { m.log2().floor().exp2() } else { 1.0 }
}

/// Whether `b`, an answer mapped back from its unit-scale copy `unit`, is in f64's
/// range: every entry finite, and none flushed to 0 where the unit-scale entry is not.
pub fn kept_in_range(unit: &DVector<f64>, b: &DVector<f64>) -> bool {
    b.iter().zip(unit.iter()).all(|(v, u)| v.is_finite() && (*v != 0.0 || *u == 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_hold_at_every_scale() {
        for scale in [1e-310, 1e-300, 1e-200, 1.0, 1e200, 1e300] {
            let v = DVector::from_vec(vec![3.0 * scale, -4.0 * scale]);
            let n = norm(&v);
            assert!((n / (5.0 * scale) - 1.0).abs() < 1e-12 || scale < 1e-300, "{scale:e}: {n:e}");
            assert!(n > 0.0 && n.is_finite());
        }
        assert_eq!(norm(&DVector::zeros(3)), 0.0);
        assert!(norm(&DVector::from_vec(vec![1.0, f64::NAN])).is_nan());
        assert_eq!(norm(&DVector::from_vec(vec![1.0, f64::INFINITY])), f64::INFINITY);
        let y = DVector::from_vec(vec![1e-200, 0.0]);
        assert_eq!(rel_residual(&(&y * 0.5), &y), 0.5);
    }
}
