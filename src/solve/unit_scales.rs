//! Weighted basis pursuit on unit scales. The problem argmin_{Xb=y} Σ_j w_j |b_j| is the
//! same under X_j → X_j / c_j, y → y / s_y and w_j → w_j / (c_j s_w), with b̂_j =
//! c_j b_j / s_y, objective s_y s_w Σ ŵ_j |b̂_j| and dual point ν = s_w ν̂, where c_j,
//! s_y and s_w are the powers of two at or below max_i |X_ij|, max_i |y_i| and
//! max_j w_j / c_j ([`crate::numeric::pow2_scale`]). So every solver and certificate
//! works on numbers of order 1, whatever the scale of the data (1e-300 to 1e300), and,
//! the scaling being exact, the answer mapped back has the same residual and gap, bit
//! for bit, unless an entry leaves f64's normal range.

use nalgebra::{DMatrix, DVector};

use super::SolveError;
use super::lp::LpSolution;
use crate::numeric::pow2_scale;

/// The scales of one problem and its unit-scale copy.
pub struct UnitScales {
    /// c_j (1 for a zero column).
    columns: DVector<f64>,
    s_y: f64,
    s_w: f64,
    pub x: DMatrix<f64>,
    pub y: DVector<f64>,
    pub w: DVector<f64>,
}

impl UnitScales {
    /// The unit-scale copy of (X, y, w), y ≠ 0; an error when the weights relative to
    /// the column scales leave f64's range.
    pub fn new(x: &DMatrix<f64>, y: &DVector<f64>, w: &DVector<f64>) -> Result<Self, SolveError> {
        let columns = DVector::from_iterator(x.ncols(), x.column_iter().map(|c| pow2_scale(c.amax())));
        let s_y = pow2_scale(y.amax());
        let ratio = w.component_div(&columns);
        let s_w = pow2_scale(ratio.max());
        let w_unit = &ratio / s_w;
        if !(s_w.is_finite() && s_w > 0.0 && w_unit.iter().all(|v| v.is_finite() && *v > 0.0)) {
            return Err(SolveError::Numerical(format!(
                "weighted basis pursuit: the weights over the column scales, w_j / max_i |X_ij|, span beyond f64's \
                 range (from {:e} to {:e})",
                ratio.min(),
                ratio.max()
            )));
        }
        let mut x_unit = x.clone();
        for (mut col, c) in x_unit.column_iter_mut().zip(columns.iter()) {
            col /= *c;
        }
        Ok(Self { columns, s_y, s_w, x: x_unit, y: y / s_y, w: w_unit })
    }

    /// b_j = b̂_j s_y / c_j; an error if an entry overflows.
    fn beta(&self, b_unit: &DVector<f64>) -> Result<DVector<f64>, SolveError> {
        let b = DVector::from_fn(b_unit.len(), |j, _| b_unit[j] * (self.s_y / self.columns[j]));
        if crate::numeric::kept_in_range(b_unit, &b) {
            Ok(b)
        } else {
            Err(SolveError::Numerical("the answer b leaves f64's range (y is extreme for X's column scales)".into()))
        }
    }

    /// A unit-scale solution in the units of (x, y) (gap and dual source unchanged; the
    /// feasibility ‖Xb − y‖∞ of the b returned).
    pub fn to_original(&self, x: &DMatrix<f64>, y: &DVector<f64>, sol: LpSolution) -> Result<LpSolution, SolveError> {
        let factor = self.s_y * self.s_w;
        let beta = self.beta(&sol.beta)?;
        Ok(LpSolution {
            feasibility: (x * &beta - y).amax(),
            beta,
            objective: sol.objective * factor,
            dual_objective: sol.dual_objective * factor,
            ..sol
        })
    }

    /// A solution in original units as its unit-scale counterpart.
    pub fn to_unit(&self, sol: &LpSolution) -> LpSolution {
        let factor = self.s_y * self.s_w;
        let beta = DVector::from_fn(sol.beta.len(), |j, _| sol.beta[j] * (self.columns[j] / self.s_y));
        LpSolution {
            beta,
            objective: sol.objective / factor,
            dual_objective: sol.dual_objective / factor,
            feasibility: sol.feasibility / self.s_y,
            ..sol.clone()
        }
    }
}
