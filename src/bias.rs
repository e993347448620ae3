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

/// Which of w₊, w₋ a coordinate has (theory/README.md § Other starts and
/// parametrisations): both (b two-signed, hyperbolic entropy), only w₊ (b > 0, relative
/// entropy), only w₋ (b < 0), or neither (b ≡ 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Both,
    Plus,
    Minus,
    Zero,
}

impl Side {
    pub fn of(plus: bool, minus: bool) -> Self {
        match (plus, minus) {
            (true, true) => Side::Both,
            (true, false) => Side::Plus,
            (false, true) => Side::Minus,
            (false, false) => Side::Zero,
        }
    }
}

/// The implicit problem's data per coordinate, as the dual solver reads it:
/// b(z) = ½(e^{ℓ+z} − e^{ℓ−z}) with z = ρ + (Xᵀμ) on two-sided coordinates, ½e^{ℓ+z}
/// on `Plus`, −½e^{ℓ−z} on `Minus` (there ρ = 0 and ℓ = ln α₊² or ln α₋²), 0 on `Zero`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scales {
    pub ell: DVector<f64>,
    pub rho: DVector<f64>,
    pub side: Vec<Side>,
}

impl Scales {
    /// Every coordinate two-sided.
    pub fn two_sided(ell: DVector<f64>, rho: DVector<f64>) -> Self {
        let side = vec![Side::Both; ell.len()];
        Self { ell, rho, side }
    }

    pub fn len(&self) -> usize {
        self.ell.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ell.is_empty()
    }

    /// The dual coordinate z_i of b_i (the inverse of b(z)), in the log domain;
    /// `None` where b_i carries no z: b_i of the wrong sign on a one-sided coordinate,
    /// an underflowed b_i, or a `Zero` coordinate.
    pub fn z_of(&self, i: usize, b: f64) -> Option<f64> {
        let ell = self.ell[i];
        match self.side[i] {
            _ if b.abs() < f64::MIN_POSITIVE => None,
            Side::Both => Some(asinh_scaled(b, ell)),
            Side::Plus if b > 0.0 => Some((2.0 * b).ln() - ell),
            Side::Minus if b < 0.0 => Some(ell - (-2.0 * b).ln()),
            _ => None,
        }
    }

    /// db_i/dz at the point b_i: √(b² + α_∞⁴) two-sided, |b| one-sided, 0 on `Zero`.
    pub fn curvature(&self, i: usize, b: f64) -> f64 {
        match self.side[i] {
            Side::Both => b.hypot(self.ell[i].exp()),
            Side::Plus | Side::Minus => b.abs(),
            Side::Zero => 0.0,
        }
    }
}

/// The effective initialisation of a run (Theorem 1 and its generalisation): everything
/// follows from the start's ln|w±,₀|, the gain Σ_k q(x_k) and Σ_k (q₋ - q₊)(x_k):
/// ln α±² = 2 ln|w±,₀| − Gain ± Σ(q₋ − q₊), α_∞² = α₊α₋, ρ = ln(α₊/α₋).
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveInit {
    /// ln|w₊,₀| and ln|w₋,₀|, −∞ where that weight starts at 0.
    pub ln_w0: (DVector<f64>, DVector<f64>),
    pub gain: DVector<f64>,
    /// Σ_k (q₋ − q₊)(x_k): the steps' part of ρ.
    pub rho: DVector<f64>,
}

impl EffectiveInit {
    /// The paper's start (w±,₀ = α) after steps with these sums.
    pub fn from_alpha(ln_alpha: DVector<f64>, gain: DVector<f64>, rho: DVector<f64>) -> Self {
        Self { ln_w0: (ln_alpha.clone(), ln_alpha), gain, rho }
    }

    /// Gradient flow's from the same start: the gain and shift of the steps dropped.
    pub fn without_steps(&self) -> Self {
        let d = self.gain.len();
        Self { ln_w0: self.ln_w0.clone(), gain: DVector::zeros(d), rho: DVector::zeros(d) }
    }

    /// ln α₊² and ln α₋² (−∞ on a side that does not exist).
    pub fn ln_alpha_pm2(&self) -> (DVector<f64>, DVector<f64>) {
        let plus = DVector::from_fn(self.gain.len(), |i, _| 2.0 * self.ln_w0.0[i] - self.gain[i] + self.rho[i]);
        let minus = DVector::from_fn(self.gain.len(), |i, _| 2.0 * self.ln_w0.1[i] - self.gain[i] - self.rho[i]);
        (plus, minus)
    }

    /// ln α = ½(ln|w₊,₀| + ln|w₋,₀|): the start's scale (−∞ on one-sided coordinates).
    pub fn ln_alpha(&self) -> DVector<f64> {
        0.5 * (&self.ln_w0.0 + &self.ln_w0.1)
    }

    /// ℓ = ln α_∞² = ln|w₊,₀ w₋,₀| − Gain.
    pub fn ln_alpha_inf2(&self) -> DVector<f64> {
        &self.ln_w0.0 + &self.ln_w0.1 - &self.gain
    }

    /// ρ = ln(α₊/α₋) = ln|w₊,₀/w₋,₀| + Σ(q₋ − q₊) (±∞ on one-sided coordinates).
    pub fn rho_total(&self) -> DVector<f64> {
        &self.ln_w0.0 - &self.ln_w0.1 + &self.rho
    }

    /// The solver's data (see [`Scales`]).
    pub fn scales(&self) -> Scales {
        let (plus, minus) = self.ln_alpha_pm2();
        let side: Vec<Side> = (0..plus.len()).map(|i| Side::of(plus[i].is_finite(), minus[i].is_finite())).collect();
        let ell = DVector::from_fn(plus.len(), |i, _| match side[i] {
            Side::Both => 0.5 * (plus[i] + minus[i]),
            Side::Plus => plus[i],
            Side::Minus => minus[i],
            Side::Zero => 0.0,
        });
        let rho =
            DVector::from_fn(plus.len(), |i, _| if side[i] == Side::Both { 0.5 * (plus[i] - minus[i]) } else { 0.0 });
        Scales { ell, rho, side }
    }

    /// The implicit problem's objective at b: D_{ψ_{α_∞}}(b, b̃₀) summed over two-sided
    /// coordinates, plus the relative entropy |b| ln(|b|/|b̃₀|) − |b| + |b̃₀| over one-sided
    /// ones (∞ where b leaves a coordinate's sign or is not 0 on a fixed one).
    pub fn divergence(&self, b: &DVector<f64>) -> f64 {
        let (scales, tilde) = (self.scales(), self.beta_tilde0());
        (0..b.len())
            .map(|i| match scales.side[i] {
                Side::Both => bregman_term(scales.ell[i].exp(), b[i], tilde[i]),
                Side::Zero if b[i] == 0.0 => 0.0,
                Side::Plus | Side::Minus if b[i] * tilde[i] > 0.0 || b[i] == 0.0 => {
                    let (b, t) = (b[i].abs(), tilde[i].abs());
                    if b == 0.0 { t } else { b * (b / t).ln() - b + t }
                }
                _ => f64::INFINITY,
            })
            .sum()
    }

    /// α_∞ = α ⊙ exp(-Gain/2) (may underflow to 0; use [`Self::ln_alpha_inf2`]).
    pub fn alpha_inf(&self) -> DVector<f64> {
        self.ln_alpha_inf2().map(|l| (0.5 * l).exp())
    }

    /// q₊ summed over the run: (Gain - Σ(q₋ − q₊))/2.
    pub fn q_plus(&self) -> DVector<f64> {
        0.5 * (&self.gain - &self.rho)
    }

    /// q₋ summed over the run: (Gain + Σ(q₋ − q₊))/2.
    pub fn q_minus(&self) -> DVector<f64> {
        0.5 * (&self.gain + &self.rho)
    }

    /// α₊ = |w₊,₀| exp(-Σ q₊).
    pub fn alpha_plus(&self) -> DVector<f64> {
        self.ln_alpha_pm2().0.map(|l| (0.5 * l).exp())
    }

    /// α₋ = |w₋,₀| exp(-Σ q₋).
    pub fn alpha_minus(&self) -> DVector<f64> {
        self.ln_alpha_pm2().1.map(|l| (0.5 * l).exp())
    }

    /// b̃₀ = ½(α₊² - α₋²) (= α_∞² sinh(ρ) two-sided), in the log domain.
    pub fn beta_tilde0(&self) -> DVector<f64> {
        let (plus, minus) = self.ln_alpha_pm2();
        plus.zip_map(&minus, |p, m| {
            if p == m {
                return 0.0;
            }
            let (hi, lo, sign) = if p > m { (p, m, 1.0) } else { (m, p, -1.0) };
            // ½(e^hi − e^lo) = ½e^hi(1 − e^{lo−hi}), never overflowing early.
            sign * (hi - std::f64::consts::LN_2 + (-(lo - hi).exp_m1()).ln()).exp()
        })
    }
}
