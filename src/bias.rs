//! The implicit-bias objects of Even, Pesme, Gunasekar & Flammarion (NeurIPS 2023), §2 of
//! `theory/README.md`: the q functions, the hyperbolic entropy ψ_α and its Bregman divergence,
//! and the effective initialisation α_∞ built from the gain.

use nalgebra::DVector;

/// Below this |x| the gain increments use an eight-term power series (exact to
/// rounding there); the vectorised fast path of the accumulator.
pub const SERIES_LIMIT: f64 = 1.0 / 16.0;

/// Below this |x| (and above [`SERIES_LIMIT`]) a sixteen-term series; above it,
/// logarithms, whose cancellation in q₋ - q₊ = 2x - 2 atanh(x) costs ~ε/x² relative.
pub const LONG_SERIES_LIMIT: f64 = 1.0 / 4.0;

/// q(x) = -ln|1 - x²|  (the paper's -½ ln((1 - x²)²)).
pub fn q(x: f64) -> f64 {
    increments(x).map_or(f64::INFINITY, |(dq, _)| dq)
}

/// q₊(x) = -x - ln|1 - x|.
pub fn q_plus(x: f64) -> f64 {
    increments(x).map_or(f64::INFINITY, |(dq, dr)| 0.5 * (dq - dr))
}

/// q₋(x) = x - ln|1 + x|.
pub fn q_minus(x: f64) -> f64 {
    increments(x).map_or(f64::INFINITY, |(dq, dr)| 0.5 * (dq + dr))
}

/// The two per-step increments, `(q(x), q₋(x) - q₊(x))`, accurate to rounding for all x.
///
/// q(x) = Σ_{k≥1} x^{2k}/k and q₋ - q₊ = 2x - 2 atanh(x) = -2 Σ_{k≥1} x^{2k+1}/(2k+1)
/// for |x| < 1; the series are used below [`SERIES_LIMIT`] (eight terms reach rounding
/// there), logarithms above. `None` when x is [`degenerate`].
pub fn increments(x: f64) -> Option<(f64, f64)> {
    if degenerate(x) {
        return None;
    }
    if x.abs() < SERIES_LIMIT {
        return Some(series_increments(x));
    }
    if x.abs() < LONG_SERIES_LIMIT {
        return Some(series::<16>(x));
    }
    if x.abs() == 1.0 {
        return None;
    }
    let ln_1mx = if x < 1.0 { (-x).ln_1p() } else { (x - 1.0).ln() };
    let ln_1px = if x > -1.0 { x.ln_1p() } else { (-1.0 - x).ln() };
    Some((-(ln_1mx + ln_1px), 2.0 * x - ln_1px + ln_1mx))
}

/// Whether a step x = γg has no increments: a factor 1 ∓ x is exactly zero (|x| = 1),
/// or x is not finite or so large that 2x overflows (γ·g overflowed).
pub fn degenerate(x: f64) -> bool {
    !(x.abs() <= f64::MAX / 2.0) || x.abs() == 1.0
}

/// The series branch of [`increments`] below [`SERIES_LIMIT`], branch-free so loops over
/// it vectorise: the first omitted term is below 2⁻⁶⁴ relative.
#[inline(always)]
pub fn series_increments(x: f64) -> (f64, f64) {
    series::<8>(x)
}

/// Terms of the series needed for rounding-level accuracy when every |x| ≤ `max_abs`:
/// the smallest K with (x²)^K ≤ 2⁻⁵⁶ (the first omitted term, relative to the first).
pub fn series_terms(max_abs: f64) -> usize {
    // t^K ≤ 2⁻⁵⁶ ⇔ t ≤ 2^(-56/K), for the K the accumulator instantiates.
    const LIMITS: [(f64, usize); 5] = [
        (1.3877787807814457e-17, 1),
        (3.725290298461914e-9, 2),
        (2.403108691968674e-6, 3),
        (6.103515625e-5, 4),
        (1.5501963398126943e-3, 6),
    ];
    let t = max_abs * max_abs;
    LIMITS.iter().find(|(limit, _)| t <= *limit).map_or(8, |&(_, k)| k)
}

/// K terms of q = t Σ_{k<K} t^k/(k+1) and q₋ - q₊ = -2x t Σ_{k<K} t^k/(2k+3), t = x²,
/// by Horner.
#[inline(always)]
pub fn series<const K: usize>(x: f64) -> (f64, f64) {
    let t = x * x;
    let (mut pq, mut pr) = (0.0, 0.0);
    for k in (0..K).rev() {
        pq = pq * t + 1.0 / (k + 1) as f64;
        pr = pr * t + 1.0 / (2 * k + 3) as f64;
    }
    (t * pq, -2.0 * x * t * pr)
}

/// Hyperbolic entropy at scale α:
/// ψ_α(b) = ½ Σ_i [ b_i asinh(b_i/α_i²) - sqrt(b_i² + α_i⁴) + α_i² ].
///
/// ψ_α(b) = D_{ψ_α}(b, 0), evaluated by [`bregman_term`] without cancellation, so it
/// keeps its digits when |b| ≪ α² (≈ b²/(4α²) there) at any scale.
pub fn hyperbolic_entropy(alpha: &DVector<f64>, b: &DVector<f64>) -> f64 {
    alpha.iter().zip(b.iter()).map(|(a, b)| bregman_term(a * a, *b, 0.0)).sum()
}

/// ∇ψ_α(b) = ½ asinh(b/α²), coordinate-wise.
pub fn hyperbolic_entropy_grad(alpha: &DVector<f64>, b: &DVector<f64>) -> DVector<f64> {
    b.zip_map(alpha, |b, a| 0.5 * (b / (a * a)).asinh())
}

/// Bregman divergence D_ψ(b, b') = ψ(b) - ψ(b') - <∇ψ(b'), b - b'>, summed over
/// coordinates by [`bregman_term`].
pub fn bregman_divergence(alpha: &DVector<f64>, b: &DVector<f64>, b_ref: &DVector<f64>) -> f64 {
    (0..b.len()).map(|i| bregman_term(alpha[i] * alpha[i], b[i], b_ref[i])).sum()
}

/// One coordinate of D_{ψ_α}(b, r) with a2 = α²:
/// ½[b (asinh(b/α²) − asinh(r/α²)) − (b − r)·(b + r)/(√(b² + α⁴) + √(r² + α⁴))], the
/// difference of square roots written without cancellation (and (b + r)/(…) formed
/// first, so no product of two tiny numbers underflows).
fn bregman_term(a2: f64, b: f64, r: f64) -> f64 {
    let roots = (b - r) * ((b + r) / (b.hypot(a2) + r.hypot(a2)));
    0.5 * (b * ((b / a2).asinh() - (r / a2).asinh()) - roots)
}

/// asinh(b·e^{-ℓ}) computed without forming e^{-ℓ} (ℓ = ln α_∞² may be -1000).
pub fn asinh_scaled(b: f64, ell: f64) -> f64 {
    if b == 0.0 {
        return 0.0;
    }
    let a = b.abs().ln() - ell; // ln(|b| / α²)
    let s = if a < 350.0 { a.exp().asinh() } else { a + std::f64::consts::LN_2 };
    s.copysign(b)
}

/// The effective initialisation of a run (Theorem 1): everything follows from ln α,
/// the gain Σ_k q(γ_k g_k) and ρ = Σ_k (q₋ - q₊)(γ_k g_k) = ln(α₊/α₋).
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveInit {
    pub ln_alpha: DVector<f64>,
    pub gain: DVector<f64>,
    pub rho: DVector<f64>,
}

impl EffectiveInit {
    /// Gradient flow's: no gain, no shift (γ → 0).
    pub fn gradient_flow(ln_alpha: DVector<f64>) -> Self {
        let d = ln_alpha.len();
        Self { ln_alpha, gain: DVector::zeros(d), rho: DVector::zeros(d) }
    }

    /// ℓ = ln α_∞² = 2 ln α - Gain.
    pub fn ln_alpha_inf2(&self) -> DVector<f64> {
        2.0 * &self.ln_alpha - &self.gain
    }

    /// α_∞ = α ⊙ exp(-Gain/2) (may underflow to 0; use [`Self::ln_alpha_inf2`]).
    pub fn alpha_inf(&self) -> DVector<f64> {
        self.ln_alpha.zip_map(&self.gain, |la, g| (la - 0.5 * g).exp())
    }

    /// q₊ summed over the run: (Gain - ρ)/2.
    pub fn q_plus(&self) -> DVector<f64> {
        0.5 * (&self.gain - &self.rho)
    }

    /// q₋ summed over the run: (Gain + ρ)/2.
    pub fn q_minus(&self) -> DVector<f64> {
        0.5 * (&self.gain + &self.rho)
    }

    /// α₊ = α ⊙ exp(-Σ q₊).
    pub fn alpha_plus(&self) -> DVector<f64> {
        self.ln_alpha.zip_map(&self.q_plus(), |la, q| (la - q).exp())
    }

    /// α₋ = α ⊙ exp(-Σ q₋).
    pub fn alpha_minus(&self) -> DVector<f64> {
        self.ln_alpha.zip_map(&self.q_minus(), |la, q| (la - q).exp())
    }

    /// b̃₀ = ½(α₊² - α₋²) = α_∞² sinh(ρ), in the log domain.
    pub fn beta_tilde0(&self) -> DVector<f64> {
        self.ln_alpha_inf2().zip_map(&self.rho, |ell, rho| {
            let r = rho.abs();
            // sinh(r) = e^r (1 - e^{-2r}) / 2, so the product never overflows early.
            let ln_sinh =
                if r < 1.0 { r.sinh().ln() } else { r + (-(-2.0 * r).exp()).ln_1p() - std::f64::consts::LN_2 };
            if r == 0.0 { 0.0 } else { (ell + ln_sinh).exp().copysign(rho) }
        })
    }
}
