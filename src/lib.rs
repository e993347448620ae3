//! dlncheck: checks the implicit regularisation of (S)GD on diagonal linear networks
//! (Even, Pesme, Gunasekar & Flammarion, NeurIPS 2023) against what the algorithms do.
//!
//! Layers, bottom up: [`limits`] (every size and count limit), [`npz`] and [`output`]
//! (files in, checked; files out, atomic), [`problem`] (data), [`train`] (runs, with the
//! gain accumulated online in [`trajectory`]), [`bias`] (ψ_α, q functions, α_∞),
//! [`expr`] (the expression language), [`symbolic`] (formulas), [`solve`] (the implicit
//! problem, LPs, potentials), [`predict`] (theory against a run), [`claims`], [`sweep`],
//! [`compare`], [`plot`], and [`app`] (the commands).

// `!(x <= tol)` is how a NaN fails a tolerance; the lint's `partial_cmp` would hide that.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod app;
pub mod bias;
pub mod claims;
pub mod cli;
pub mod compare;
pub mod diagnose;
pub mod escape;
pub mod expr;
pub mod image;
pub mod limits;
pub mod model;
pub mod npz;
pub mod numeric;
pub mod output;
#[cfg(feature = "figures")]
pub mod plot;
pub mod predict;
pub mod problem;
pub mod report;
pub mod runfile;
pub mod solve;
pub mod sweep;
pub mod symbolic;
pub mod threshold;
pub mod train;
pub mod trajectory;
