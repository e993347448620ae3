//! The exact family as data (theory/README.md § Other starts and parametrisations): a
//! parametrisation ([`Param`]) and a start ([`Init`]) make a [`Model`], used alike by
//! training, the gain, the prediction, the claims and the Python package.
//!
//! Every member evolves two weights per coordinate multiplicatively, with x = s·γ·g:
//! w₊ ← f₊(x)·w₊, w₋ ← f₋(x)·w₋ and b = ½(w₊² − w₋²), where f± = 1 ∓ x (uv: s = 1,
//! u2v2: s = 2) or e^{∓x} (md: s = 1).

use nalgebra::DVector;

use crate::bias::EffectiveInit;
use crate::trajectory::GainAccumulator;

/// How the weights make b and how a step moves them.
///
/// | name | network | w₊, w₋ | step |
/// |---|---|---|---|
/// | uv | b = u ⊙ v | (u ± v)/√2 | w± ← (1 ∓ γg) w± |
/// | u2v2 | b = u² − v² | √2 u, √2 v | w± ← (1 ∓ 2γg) w± |
/// | md | mirror descent with ψ_α | α e^{±z/2}, z = asinh(b/α²) | w± ← e^{∓γg} w± |
/// | depth:D | b = u^D − v^D (D ≥ 3) | u, v | u ← u − γD u^{D−1} g, v ← v + γD v^{D−1} g |
///
/// The first three are the exact family (Theorem 1 holds at every stepsize); depth D has
/// only gradient flow's limit (theory/README.md § Deeper networks and momentum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Param {
    #[default]
    Uv,
    U2v2,
    Md,
    Depth(u8),
}

/// Depths `depth:D` accepts.
pub const DEPTHS: std::ops::RangeInclusive<u8> = 3..=8;

impl serde::Serialize for Param {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl Param {
    /// The exact family (depth has no exact discrete-time theory).
    pub const ALL: [Param; 3] = [Param::Uv, Param::U2v2, Param::Md];

    pub fn is_uv(&self) -> bool {
        *self == Param::Uv
    }

    pub fn name(self) -> String {
        match self {
            Param::Uv => "uv".into(),
            Param::U2v2 => "u2v2".into(),
            Param::Md => "md".into(),
            Param::Depth(d) => format!("depth:{d}"),
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(depth) = s.strip_prefix("depth:") {
            return match depth.trim().parse::<u8>() {
                Ok(d) if DEPTHS.contains(&d) => Ok(Param::Depth(d)),
                _ => Err(format!(
                    "unknown parametrisation 'depth:{}': depth:D takes D in {}..={} (D = 2 is u2v2)",
                    crate::limits::clip(depth, 20),
                    DEPTHS.start(),
                    DEPTHS.end()
                )),
            };
        }
        Self::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            format!("unknown parametrisation '{}': expected uv, u2v2, md or depth:D", crate::limits::clip(s, 40))
        })
    }

    /// s in x = s·γ·g, the argument of the step factors (depth: x = γg).
    pub fn x_scale(self) -> f64 {
        match self {
            Param::U2v2 => 2.0,
            Param::Uv | Param::Md | Param::Depth(_) => 1.0,
        }
    }

    /// Whether steps move the effective scale by a gain (mirror descent's factors e^{∓x}
    /// multiply to 1; depth D has no gain theory).
    pub fn has_gain(self) -> bool {
        matches!(self, Param::Uv | Param::U2v2)
    }

    /// D of depth:D.
    pub fn depth(self) -> Option<u8> {
        match self {
            Param::Depth(d) => Some(d),
            _ => None,
        }
    }

    /// Whether Theorem 1 (an exact theory at every stepsize) covers this parametrisation.
    pub fn is_exact(self) -> bool {
        self.depth().is_none()
    }
}

/// A start as the user gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// The parametrisation's default start at scale α: uv u₀ = √2α, v₀ = 0 (w± = α);
    /// u2v2 u₀ = v₀ = α (w± = √2α); md b₀ = 0 (w± = α).
    Alpha(DVector<f64>),
    /// Any u₀, v₀ (uv and u2v2).
    Weights { u0: DVector<f64>, v0: DVector<f64> },
    /// Mirror descent from b₀ at scale α.
    Mirror { alpha: DVector<f64>, b0: DVector<f64> },
}

/// A parametrisation and its start.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub param: Param,
    pub init: Init,
}

/// The largest |w±,₀| a start may have: w² stays far inside f64's range.
pub const MAX_WEIGHT: f64 = 1e150;

impl Model {
    /// The default start of `param` at scale α.
    pub fn new(param: Param, alpha: DVector<f64>) -> Self {
        Self { param, init: Init::Alpha(alpha) }
    }

    /// uv from u₀ = √2α, v₀ = 0: the paper's setting.
    pub fn uv(alpha: DVector<f64>) -> Self {
        Self::new(Param::Uv, alpha)
    }

    pub fn dim(&self) -> usize {
        match &self.init {
            Init::Alpha(a) | Init::Mirror { alpha: a, .. } => a.len(),
            Init::Weights { u0, .. } => u0.len(),
        }
    }

    /// Checks lengths (d), signs and ranges; a message naming the array at fault.
    pub fn check(&self, d: usize) -> Result<(), String> {
        let len = |name: &str, v: &DVector<f64>| {
            if v.len() == d { Ok(()) } else { Err(format!("{name} has length {}, the problem has d = {d}", v.len())) }
        };
        let finite = |name: &str, v: &DVector<f64>| match v.iter().position(|t| !t.is_finite()) {
            Some(i) => Err(format!("{name} entry {i} is {} (not finite)", v[i])),
            None => Ok(()),
        };
        let alpha = |a: &DVector<f64>| {
            len("alpha", a)?;
            match a.iter().position(|t| !(t.is_finite() && *t > 0.0)) {
                Some(i) => Err(format!("alpha entry {i} is {}; α must be finite and > 0", a[i])),
                None => Ok(()),
            }
        };
        match (&self.init, self.param) {
            (Init::Alpha(a), _) => alpha(a)?,
            (Init::Weights { u0, v0 }, Param::Uv | Param::U2v2) => {
                len("u0", u0)?;
                len("v0", v0)?;
                finite("u0", u0)?;
                finite("v0", v0)?;
            }
            (Init::Weights { u0, v0 }, Param::Depth(depth)) => {
                for (name, w) in [("u0", u0), ("v0", v0)] {
                    len(name, w)?;
                    if let Some(i) = w.iter().position(|t| !(t.is_finite() && *t > 0.0)) {
                        return Err(format!(
                            "{name} entry {i} is {}; depth:{depth} needs u0, v0 finite and > 0 (the flow's limit \
                             lives where u, v > 0)",
                            w[i]
                        ));
                    }
                }
            }
            (Init::Weights { .. }, Param::Md) => {
                return Err("mirror descent (param md) starts from alpha and b0, not u0, v0: for a network's u0, v0 \
                            pass param uv (b = u ⊙ v) or u2v2 (b = u² − v²)"
                    .into());
            }
            (Init::Mirror { alpha: a, b0 }, Param::Md) => {
                alpha(a)?;
                len("b0", b0)?;
                finite("b0", b0)?;
            }
            (Init::Mirror { .. }, p @ Param::Depth(_)) => {
                return Err(format!("b0 is mirror descent's start: param {} starts from u0, v0 or alpha", p.name()));
            }
            (Init::Mirror { .. }, p) => {
                return Err(format!(
                    "b0 is mirror descent's start: pass param md for mirror descent (param {} starts from u0, v0 or \
                     alpha)",
                    p.name()
                ));
            }
        }
        let (wp, wm) = self.start();
        let big = wp.iter().chain(wm.iter()).map(|w| w.abs()).fold(0.0, f64::max);
        let (limit, why) = match self.param {
            Param::Depth(depth) => (10f64.powf(300.0 / f64::from(depth)), format!("b = u^{depth} − v^{depth}")),
            _ => (MAX_WEIGHT, "b = ½(w₊² − w₋²)".into()),
        };
        if !(big <= limit) {
            return Err(format!(
                "the start's weights reach |w±| = {big:e}; the limit is {limit:e} ({why} must fit f64)"
            ));
        }
        Ok(())
    }

    /// The signed w±,₀ (theory/README.md § Other starts and parametrisations).
    pub fn start(&self) -> (DVector<f64>, DVector<f64>) {
        use std::f64::consts::SQRT_2;
        match (&self.init, self.param) {
            (Init::Alpha(a), Param::U2v2) => (a * SQRT_2, a * SQRT_2),
            (Init::Alpha(a), _) => (a.clone(), a.clone()),
            (Init::Weights { u0, v0 }, Param::U2v2) => (u0 * SQRT_2, v0 * SQRT_2),
            (Init::Weights { u0, v0 }, Param::Depth(_)) => (u0.clone(), v0.clone()),
            (Init::Weights { u0, v0 }, _) => ((u0 + v0) / SQRT_2, (u0 - v0) / SQRT_2),
            (Init::Mirror { .. }, _) => {
                let (ln_plus, ln_minus) = self.ln_start();
                (ln_plus.map(f64::exp), ln_minus.map(f64::exp))
            }
        }
    }

    /// ln|w₊,₀| and ln|w₋,₀| (−∞ where that weight is 0), in the log domain for md.
    pub fn ln_start(&self) -> (DVector<f64>, DVector<f64>) {
        match &self.init {
            // w± = α e^{±z₀/2}, z₀ = asinh(b₀/α²), in the log domain.
            Init::Mirror { alpha, b0 } => {
                let half_z =
                    DVector::from_fn(alpha.len(), |i, _| 0.5 * crate::bias::asinh_scaled(b0[i], 2.0 * alpha[i].ln()));
                let ln_a = alpha.map(f64::ln);
                (&ln_a + &half_z, &ln_a - &half_z)
            }
            _ => {
                let (wp, wm) = self.start();
                (wp.map(|w| w.abs().ln()), wm.map(|w| w.abs().ln()))
            }
        }
    }

    /// b₀ = ½(w₊,₀² − w₋,₀²).
    pub fn b0(&self) -> DVector<f64> {
        match &self.init {
            Init::Mirror { b0, .. } => b0.clone(),
            _ => {
                let (wp, wm) = self.start();
                wp.zip_map(&wm, |p, m| self.param.beta(p, m))
            }
        }
    }

    /// The effective initialisation after the steps in `acc` (mirror descent: none).
    pub fn effective_init(&self, acc: &GainAccumulator) -> EffectiveInit {
        let (ln_plus, ln_minus) = self.ln_start();
        let (gain, rho) = if self.param.has_gain() {
            (acc.gain.clone(), acc.rho.clone())
        } else {
            (DVector::zeros(ln_plus.len()), DVector::zeros(ln_plus.len()))
        };
        EffectiveInit { ln_w0: (ln_plus, ln_minus), gain, rho }
    }

    /// Depth D's gradient-flow map from this start (`None` for the exact family).
    pub fn depth_flow(&self) -> Option<crate::solve::DepthFlow> {
        let depth = self.param.depth()?;
        let (u0, v0) = self.start();
        Some(crate::solve::DepthFlow::new(depth, &u0, &v0))
    }

    /// Gradient flow's effective initialisation: the start, no gain.
    pub fn gradient_flow(&self) -> EffectiveInit {
        let (ln_plus, ln_minus) = self.ln_start();
        let d = ln_plus.len();
        EffectiveInit { ln_w0: (ln_plus, ln_minus), gain: DVector::zeros(d), rho: DVector::zeros(d) }
    }

    /// The user's weights from the signed w±: uv (u, v) = ((w₊ + w₋)/√2, (w₊ − w₋)/√2),
    /// u2v2 (u, v) = (w₊/√2, w₋/√2); md has none.
    pub fn weights(&self, wp: &[f64], wm: &[f64]) -> Option<(DVector<f64>, DVector<f64>)> {
        use std::f64::consts::FRAC_1_SQRT_2;
        let (p, m) = (DVector::from_column_slice(wp), DVector::from_column_slice(wm));
        match self.param {
            Param::Uv => Some(((&p + &m) * FRAC_1_SQRT_2, (&p - &m) * FRAC_1_SQRT_2)),
            Param::U2v2 => Some((p * FRAC_1_SQRT_2, m * FRAC_1_SQRT_2)),
            Param::Depth(_) => Some((p, m)),
            Param::Md => None,
        }
    }
}

impl Model {
    /// The signed w± from the user's weights (the inverse of [`Self::weights`]); md has none.
    pub fn w_from(&self, u: &DVector<f64>, v: &DVector<f64>) -> Option<(DVector<f64>, DVector<f64>)> {
        use std::f64::consts::{FRAC_1_SQRT_2, SQRT_2};
        match self.param {
            Param::Uv => Some(((u + v) * FRAC_1_SQRT_2, (u - v) * FRAC_1_SQRT_2)),
            Param::U2v2 => Some((u * SQRT_2, v * SQRT_2)),
            Param::Depth(_) => Some((u.clone(), v.clone())),
            Param::Md => None,
        }
    }
}

impl Param {
    /// b from the kept weights: ½(w₊² − w₋²) for the exact family, u^D − v^D for depth D.
    #[inline]
    pub fn beta(self, wp: f64, wm: f64) -> f64 {
        match self {
            Param::Depth(d) => wp.powi(i32::from(d)) - wm.powi(i32::from(d)),
            _ => beta_of(wp, wm),
        }
    }
}

/// b = ½(w₊² − w₋²) as ½(w₊ − w₋)(w₊ + w₋): about 3 roundings relative to b itself.
#[inline(always)]
pub fn beta_of(wp: f64, wm: f64) -> f64 {
    0.5 * (wp - wm) * (wp + wm)
}
