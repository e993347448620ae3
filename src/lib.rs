//! dlncheck: checks the implicit regularisation of (S)GD on diagonal linear networks
//! (Even, Pesme, Gunasekar & Flammarion, NeurIPS 2023) against what the algorithms do.
//!
//! Layers, bottom up: [`npz`] (files), [`problem`] (data), [`train`] (runs, with the gain
//! accumulated online in [`trajectory`]), [`bias`] (ψ_α, q functions, α_∞), [`solve`]
//! (the implicit problem), [`predict`] (theory against a run), [`app`] (the commands).

pub mod app;
pub mod bias;
pub mod claims;
pub mod compare;
pub mod expr;
pub mod limits;
pub mod npz;
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
