//! Sweeps: a grid over stepsize (absolute, or a fraction of the measured threshold),
//! algorithm, batch size, α, feature mean and seed. Each cell trains, computes the gain,
//! predicts, and appends one JSON line as soon as it finishes, so an interrupted sweep
//! loses nothing finished; `resume` skips cells already in the file, `shard k/N` runs the
//! cells with index ≡ k−1 (mod N), and [`merge`] joins shard files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nalgebra::DVector;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::compare::metrics;
use crate::model::{Init, Model, Param};
use crate::problem::{Problem, ProblemSpec};
use crate::runfile::RunRecord;
use crate::solve::{NewtonSettings, solve_implicit};
use crate::threshold::{ThresholdSettings, threshold_cached};
use crate::train::{Batching, Stepsizes, Stop, TrainConfig, train};
use crate::{limits, output};

/// Stepsizes of a grid: absolute, or fractions of each cell's measured threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StepGrid {
    Absolute(Vec<f64>),
    Fraction(Vec<f64>),
}

impl StepGrid {
    /// `lo:hi:count` (evenly spaced, inclusive), or a comma list; `frac` for fractions.
    pub fn parse(text: &str, fraction: bool) -> Result<Self, String> {
        let values: Vec<f64> = if let [lo, hi, k] = text.split(':').collect::<Vec<_>>()[..] {
            let (lo, hi): (f64, f64) = (
                lo.parse().map_err(|_| format!("`{lo}` is not a number"))?,
                hi.parse().map_err(|_| format!("`{hi}` is not a number"))?,
            );
            let k: usize = k.parse().map_err(|_| format!("`{k}` is not a count (a whole number)"))?;
            if k < 2 || lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
                return Err(format!("`{text}`: need lo < hi and a count ≥ 2"));
            }
            limits::check_count("the stepsize count", k, limits::MAX_AXIS_VALUES)?;
            (0..k).map(|i| lo + (hi - lo) * i as f64 / (k - 1) as f64).collect()
        } else {
            text.split(',')
                .map(|v| v.trim().parse().map_err(|_| format!("`{v}` is not a number")))
                .collect::<Result<_, _>>()?
        };
        if let Some(bad) = values.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(format!("stepsize {bad} must be finite and > 0"));
        }
        Ok(if fraction { Self::Fraction(values) } else { Self::Absolute(values) })
    }

    fn values(&self) -> &[f64] {
        match self {
            Self::Absolute(v) | Self::Fraction(v) => v,
        }
    }
}

/// The grid. Cells are enumerated mean → α → algorithm → seed → stepsize.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grid {
    pub n: usize,
    pub d: usize,
    pub sparsity: usize,
    pub means: Vec<f64>,
    pub alphas: Vec<f64>,
    /// Batch size per algorithm: `None` for GD.
    pub algorithms: Vec<Option<usize>>,
    pub seeds: usize,
    pub stepsizes: StepGrid,
    pub max_iters: usize,
    pub tol: f64,
    /// A user's problem, used by every cell instead of drawn ones (seeds then vary the
    /// SGD batches only; n, d and sparsity are the file's, the mean axis is unused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<GridProblem>,
    /// The parametrisation of every run (uv is left out of the fingerprint, so grids
    /// written before it existed keep theirs).
    #[serde(skip_serializing_if = "Param::is_uv")]
    pub param: Param,
    /// A start for every run (`--init`), replacing the default start at α.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<GridInit>,
    /// Momentum for every run (no theory: `gain_l1` and `gain` are then the balance gain
    /// and `dist_theory` is absent; fraction grids stay fractions of plain (S)GD's θ).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub momentum: Option<crate::train::Momentum>,
}

/// Refuses a parametrisation without Theorem 1 in a command whose rows report the
/// theory's limit (depth D: `predict` and the claims compare with gradient flow's limit).
pub fn exact_only(param: Param, command: &str) -> Result<(), String> {
    match param {
        Param::Depth(d) => Err(format!(
            "{command} reports Theorem 1's limit, which depth:{d} does not have (no exact discrete-time theory): \
             use train + predict --param depth:{d} (gradient flow's limit) or a claim with `order(…)`"
        )),
        _ => Ok(()),
    }
}

/// A start file of a sweep (`--init`): its path and content hash (part of the
/// fingerprint) and the start it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridInit {
    pub file: PathBuf,
    pub hash: String,
    #[serde(skip)]
    pub init: Init,
}

impl GridInit {
    /// Reads a start for `param` on d coordinates ([`crate::runfile::read_model`]).
    pub fn load(path: &Path, param: Param, d: usize) -> Result<Self, crate::npz::InputError> {
        let mut f = crate::npz::NpzReader::open(path)?;
        let init = crate::runfile::read_model(&mut f, d, Some(param))?.init;
        let bytes = std::fs::read(path).map_err(|e| crate::npz::InputError {
            file: path.to_owned(),
            array: None,
            what: e.to_string(),
        })?;
        Ok(Self { file: path.to_owned(), hash: format!("{:016x}", fnv1a(&bytes)), init })
    }
}

/// A problem file of a sweep: its path and content hash (part of the fingerprint, so a
/// changed file is another grid) and the data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridProblem {
    pub file: PathBuf,
    pub hash: String,
    #[serde(skip)]
    pub data: std::sync::Arc<Problem>,
}

impl GridProblem {
    /// Loads and checks a problem file (interpolators must exist).
    pub fn load(path: &Path) -> Result<Self, crate::npz::InputError> {
        let data = Problem::load(path)?;
        data.check_interpolation(path)?;
        let bytes = std::fs::read(path).map_err(|e| crate::npz::InputError {
            file: path.to_owned(),
            array: None,
            what: e.to_string(),
        })?;
        Ok(Self { file: path.to_owned(), hash: format!("{:016x}", fnv1a(&bytes)), data: std::sync::Arc::new(data) })
    }
}

/// FNV-1a, 64 bit: stable across platforms and versions.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

impl Grid {
    /// The paper's setting: n = 20, d = 30, s = 3, α = 0.1, centred, GD and SGD (batch 1),
    /// 30 stepsizes from 0.03 to 0.97 of each threshold, one seed.
    pub fn default_paper() -> Self {
        Self {
            n: 20,
            d: 30,
            sparsity: 3,
            means: vec![0.0],
            alphas: vec![0.1],
            algorithms: vec![None, Some(1)],
            seeds: 1,
            stepsizes: StepGrid::Fraction((0..30).map(|i| 0.03 + 0.94 * i as f64 / 29.0).collect()),
            max_iters: 3_000_000,
            tol: 1e-20,
            problem: None,
            param: Param::Uv,
            init: None,
            momentum: None,
        }
    }

    /// A short fingerprint of the grid, stored in every line so shards of different
    /// grids are never merged.
    pub fn fingerprint(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        format!("{:016x}", fnv1a(text.as_bytes()))
    }

    /// The number of cells (the product of the axes' lengths).
    pub fn cell_count(&self) -> usize {
        self.means.len() * self.alphas.len() * self.algorithms.len() * self.seeds * self.stepsizes.values().len()
    }

    pub fn cells(&self) -> Vec<Cell> {
        let mut out = Vec::new();
        for &mean in &self.means {
            for &alpha in &self.alphas {
                for &batch in &self.algorithms {
                    for seed in 0..self.seeds as u64 {
                        for &step in self.stepsizes.values() {
                            out.push(Cell { index: out.len(), mean, alpha, batch, seed, step });
                        }
                    }
                }
            }
        }
        out
    }

    pub fn check(&self) -> Result<(), String> {
        exact_only(self.param, "sweep")?;
        if self.d <= self.n || self.sparsity > self.d || self.n == 0 {
            return Err(format!(
                "need 0 < n < d and sparsity ≤ d (n = {}, d = {}, s = {})",
                self.n, self.d, self.sparsity
            ));
        }
        if let Some(a) = self.alphas.iter().find(|a| !(a.is_finite() && **a > 0.0)) {
            return Err(format!("α = {a} must be finite and > 0"));
        }
        if self.init.is_some() && self.alphas.len() > 1 {
            return Err(format!("--init replaces --alpha: give one α or none (got {})", self.alphas.len()));
        }
        if let Some(m) = self.algorithms.iter().flatten().find(|m| **m == 0 || **m > self.n) {
            return Err(format!("batch size {m} is outside 1..={}", self.n));
        }
        if self.seeds == 0 || self.means.is_empty() || self.alphas.is_empty() || self.algorithms.is_empty() {
            return Err("every grid axis needs at least one value".into());
        }
        if let Some(m) = self.means.iter().find(|m| !m.is_finite()) {
            return Err(format!("mean {m} must be finite"));
        }
        limits::check_count("--seeds", self.seeds, limits::MAX_SEEDS)?;
        limits::check_count("--max-iters", self.max_iters, limits::MAX_STEPS)?;
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(format!("--tol {} must be finite and > 0", self.tol));
        }
        let axes =
            [self.means.len(), self.alphas.len(), self.algorithms.len(), self.seeds, self.stepsizes.values().len()];
        for len in axes {
            limits::check_count("a grid axis", len, limits::MAX_AXIS_VALUES)?;
        }
        let cells = axes.iter().try_fold(1usize, |acc, &k| acc.checked_mul(k)).unwrap_or(usize::MAX);
        limits::check_count("the number of grid cells", cells, limits::MAX_GRID_CELLS)?;
        limits::check_alloc("the problem (n × d)", (self.n as u128) * (self.d as u128), 8)
    }
}

/// One cell of the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub index: usize,
    pub mean: f64,
    pub alpha: f64,
    pub batch: Option<usize>,
    pub seed: u64,
    /// Absolute stepsize or fraction of the threshold, as the grid says.
    pub step: f64,
}

/// One JSON line: the cell and what it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub grid: String,
    pub index: usize,
    /// Cells in the whole grid, so `merge` can tell whether shards cover it (absent in
    /// files written before this field existed).
    #[serde(default)]
    pub grid_cells: Option<usize>,
    pub algorithm: String,
    pub batch: Option<usize>,
    pub mean: f64,
    pub alpha: f64,
    pub seed: u64,
    /// γ/θ when the grid is in fractions.
    pub fraction: Option<f64>,
    pub stepsize: f64,
    /// The measured threshold θ (largest converging stepsize), when the grid uses it.
    pub threshold: Option<f64>,
    pub converged: bool,
    pub diverged: bool,
    pub iters: usize,
    /// Final training loss (None when the run diverged).
    pub loss: Option<f64>,
    /// ‖b − b*‖₂.
    pub error: Option<f64>,
    pub test_loss: Option<f64>,
    pub gain_l1: Option<f64>,
    /// mean Gain on supp(b*) / mean Gain off it.
    pub gain_ratio: Option<f64>,
    /// ‖b − b_theory‖₂/‖b_theory‖₂ (None when the prediction cannot be computed).
    pub dist_theory: Option<f64>,
    /// Support recovery at |b_i| > 0.01‖b*‖_∞.
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub gain: Option<Vec<f64>>,
    pub support: Vec<usize>,
}

impl CellResult {
    /// Whether this line was measured on `cell` (same settings, to the bit).
    fn matches(&self, cell: &Cell) -> bool {
        let step = self.fraction.unwrap_or(self.stepsize);
        self.batch == cell.batch
            && self.mean.to_bits() == cell.mean.to_bits()
            && self.alpha.to_bits() == cell.alpha.to_bits()
            && self.seed == cell.seed
            && step.to_bits() == cell.step.to_bits()
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Runs one cell.
pub fn run_cell(grid: &Grid, fingerprint: &str, cell: &Cell) -> Result<CellResult, String> {
    let spec = ProblemSpec {
        n: grid.n,
        d: grid.d,
        sparsity: grid.sparsity,
        mean: cell.mean,
        seed: cell.seed,
        ..ProblemSpec::default()
    };
    let (p, key) = match &grid.problem {
        Some(gp) => ((*gp.data).clone(), format!("file {}", gp.hash)),
        None => (spec.generate()?, format!("{spec:?}")),
    };
    let model = match &grid.init {
        Some(start) => Model { param: grid.param, init: start.init.clone() },
        None => Model::new(grid.param, DVector::from_element(p.d(), cell.alpha)),
    };
    let (fraction, threshold, gamma) = match grid.stepsizes {
        StepGrid::Absolute(_) => (None, None, cell.step),
        StepGrid::Fraction(_) => {
            let th = threshold_cached(&key, cell.seed, &p, &model, cell.batch, &ThresholdSettings::default()).map_err(
                |e| {
                    format!(
                        "its threshold: {e} (a sweep searches with `dlncheck threshold`'s defaults; absolute \
                         --stepsizes need no threshold)"
                    )
                },
            )?;
            (Some(cell.step), Some(th.lo), cell.step * th.lo)
        }
    };
    let batching = cell.batch.map_or(Batching::Full, |m| Batching::Random { m, seed: cell.seed });
    let mut config = TrainConfig::with_model(model, Stepsizes::Constant(gamma), batching);
    config.max_iters = grid.max_iters;
    config.tol = grid.tol;
    config.history_cap = 2;
    config.momentum = grid.momentum;
    let run = train(&p, &config).map_err(|e| e.to_string())?;
    let support: Vec<usize> =
        p.beta_star.as_ref().map_or(Vec::new(), |b| (0..p.d()).filter(|&i| b[i] != 0.0).collect());
    let mut r = CellResult {
        grid: fingerprint.to_string(),
        index: cell.index,
        grid_cells: Some(grid.cell_count()),
        algorithm: if cell.batch.is_some() { "sgd" } else { "gd" }.into(),
        batch: cell.batch,
        mean: cell.mean,
        alpha: cell.alpha,
        seed: cell.seed,
        fraction,
        stepsize: gamma,
        threshold,
        converged: run.stop == Stop::Converged,
        diverged: run.diverged(),
        iters: run.iters,
        loss: finite(run.loss),
        error: None,
        test_loss: None,
        gain_l1: None,
        gain_ratio: None,
        dist_theory: None,
        precision: None,
        recall: None,
        gain: None,
        support,
    };
    if r.diverged {
        return Ok(r);
    }
    let rec = RunRecord::from_run(&run);
    let (gain, theory) = if run.has_exact_theory() {
        let eff = rec.effective_init();
        (eff.gain.clone(), solve_implicit(&p.x, &p.y, &eff.scales(), &NewtonSettings::default()).ok())
    } else {
        (run.balance_gain(), None)
    };
    let m = metrics(&p, &rec.beta, Some(&gain), theory.as_ref().map(|t| &t.beta));
    r.error = finite(m.err);
    r.test_loss = finite(m.test_loss);
    r.gain_l1 = finite(m.gain_l1);
    r.gain_ratio = finite(m.gain_ratio);
    r.precision = finite(m.precision);
    r.recall = finite(m.recall);
    r.dist_theory = finite(m.dist_theory);
    r.gain = Some(gain.iter().copied().collect());
    Ok(r)
}

/// Which cells a run covers: `k/N` (1-based k).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shard {
    pub k: usize,
    pub of: usize,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (k, n) = text.split_once('/').ok_or(format!("shard `{text}` must read k/N"))?;
        let (k, of) = (
            k.parse().map_err(|_| format!("`{k}` is not a number"))?,
            n.parse().map_err(|_| format!("`{n}` is not a number"))?,
        );
        if k == 0 || k > of {
            return Err(format!("shard {k}/{of}: need 1 ≤ k ≤ N"));
        }
        Ok(Self { k, of })
    }

    pub fn contains(&self, index: usize) -> bool {
        index % self.of == self.k - 1
    }
}

/// Checks the complete lines of an existing sweep file against the grid: each line of
/// this grid (same fingerprint), its cell index inside the grid and its settings those
/// of that cell. Blank lines are skipped; a truncated last line (a killed writer) is
/// dropped. Returns the cells done and the byte length of the valid part.
fn done_cells(text: &str, path: &Path, grid: &Grid, fingerprint: &str) -> Result<(BTreeSet<usize>, usize), String> {
    let cells = grid.cells();
    let (mut done, mut valid_len, mut offset) = (BTreeSet::new(), 0, 0);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        offset += line.len();
        let at = format!("{}:{}", path.display(), i + 1);
        if line.trim().is_empty() {
            valid_len = offset;
            continue;
        }
        let complete = line.ends_with('\n');
        match serde_json::from_str::<CellResult>(line.trim_end()) {
            Ok(r) if r.grid != fingerprint => {
                return Err(format!(
                    "{at}: a line of another grid ({}; this one is {fingerprint}): {}",
                    r.grid,
                    grid_difference(&r, grid)
                ));
            }
            Ok(r) if complete => {
                let cell = cells
                    .get(r.index)
                    .ok_or_else(|| format!("{at}: cell {} is outside the grid of {} cells", r.index, cells.len()))?;
                if !r.matches(cell) {
                    return Err(format!(
                        "{at}: cell {} has settings that differ from the grid's cell {}",
                        r.index, r.index
                    ));
                }
                done.insert(r.index);
                valid_len = offset;
            }
            _ if i + 1 == lines.len() && !complete => {} // cut short by an interruption
            Ok(_) | Err(_) => return Err(format!("{at}: not a sweep line")),
        }
    }
    Ok((done, valid_len))
}

/// What differs between a line of another grid and this grid, for the message.
fn grid_difference(r: &CellResult, grid: &Grid) -> String {
    let mut diffs = Vec::new();
    if !grid.means.contains(&r.mean) {
        diffs.push(format!("mean {} is not among --mean {:?}", r.mean, grid.means));
    }
    if !grid.alphas.contains(&r.alpha) {
        diffs.push(format!("α {} is not among --alpha {:?}", r.alpha, grid.alphas));
    }
    if !grid.algorithms.contains(&r.batch) {
        diffs.push(format!("algorithm {} is not among --algorithm", r.algorithm));
    }
    if r.seed >= grid.seeds as u64 {
        diffs.push(format!("seed {} is beyond --seeds {}", r.seed, grid.seeds));
    }
    if diffs.is_empty() {
        "another n, d, sparsity, seed count, stepsize list, --iters or --tol (every setting is part of the grid)".into()
    } else {
        diffs.join("; ")
    }
}

/// Opens (creating) the sweep file and takes its exclusive lock, so two sweeps never
/// append to one file; the lock is released when the file is closed.
fn open_locked(out: &Path) -> Result<File, String> {
    output::check_target(out, &[]).map_err(|e| e.to_string())?;
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "{}: another dlncheck sweep is writing this file (it holds its lock); wait for it, or use another --out",
            out.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("{}: cannot lock: {e}", out.display())),
    }
}

/// Runs the cells of `grid` (in `shard`, not yet in `out` when `resume`) in parallel,
/// appending one JSON line per finished cell. Returns (cells run, cells skipped).
///
/// The file is locked for the whole sweep. On resume, a line cut short by an
/// interruption is removed by truncating the file to its valid part (one system call:
/// nothing else in the file is ever rewritten). A cell that fails does not stop the
/// others: the report lists it.
pub fn run_sweep(
    grid: &Grid,
    out: &Path,
    resume: bool,
    shard: Option<Shard>,
    progress: bool,
) -> Result<SweepReport, String> {
    grid.check()?;
    let fingerprint = grid.fingerprint();
    let mut file = open_locked(out)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| format!("{}: not a sweep file (JSON lines): {e}", out.display()))?;
    let done = if resume {
        let (done, valid_len) = done_cells(&text, out, grid, &fingerprint)?;
        file.set_len(valid_len as u64).map_err(|e| format!("{}: {e}", out.display()))?;
        done
    } else {
        if !text.is_empty() {
            return Err(format!("{} exists: pass --resume to continue it, or remove it", out.display()));
        }
        BTreeSet::new()
    };
    let todo: Vec<Cell> = grid
        .cells()
        .into_iter()
        .filter(|c| shard.is_none_or(|s| s.contains(c.index)) && !done.contains(&c.index))
        .collect();
    let writer = Mutex::new(file);
    let bar = indicatif::ProgressBar::new(todo.len() as u64);
    if !progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} cells, {elapsed} elapsed, ~{eta} left")
            .map_err(|e| e.to_string())?,
    );
    let failed = Mutex::new(Vec::new());
    todo.par_iter().try_for_each(|cell| -> Result<(), String> {
        match run_cell(grid, &fingerprint, cell) {
            Ok(r) => {
                let line = serde_json::to_string(&r).map_err(|e| e.to_string())? + "\n";
                let mut f = writer.lock().map_err(|e| e.to_string())?;
                f.write_all(line.as_bytes()).map_err(|e| format!("{}: {e}", out.display()))?;
            }
            Err(e) => failed.lock().map_err(|e| e.to_string())?.push((cell.index, e)),
        }
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();
    let mut failed = failed.into_inner().map_err(|e| e.to_string())?;
    failed.sort_by_key(|f| f.0);
    Ok(SweepReport { ran: todo.len() - failed.len(), skipped: done.len(), failed })
}

/// What a sweep did: the cells run and written, the cells already in the file, and the
/// cells that failed (index, why), which are not written, so `--resume` runs them again.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepReport {
    pub ran: usize,
    pub skipped: usize,
    pub failed: Vec<(usize, String)>,
}

/// Joins sweep files (shards, or a run and its resumption) into one, sorted by cell
/// index. Lines must share one grid; a cell present twice must be identical.
/// Fails unless the cells cover the grid (when `allow_partial` is false), saying which
/// cells are missing.
pub fn merge(inputs: &[&Path], out: &Path, allow_partial: bool) -> Result<usize, String> {
    let mut cells: BTreeMap<usize, (String, String)> = BTreeMap::new();
    let mut grid: Option<String> = None;
    let mut total = None;
    for path in inputs {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            format!("{}: not a sweep file (JSON lines written by `dlncheck sweep`): not text", path.display())
        })?;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let r: CellResult = serde_json::from_str(line)
                .map_err(|e| format!("{}:{}: not a sweep line ({e})", path.display(), i + 1))?;
            if let Some(g) = &grid
                && *g != r.grid
            {
                return Err(format!("{}:{}: grid {} differs from {g}", path.display(), i + 1, r.grid));
            }
            grid = Some(r.grid.clone());
            total = total.or(r.grid_cells);
            let at = format!("{}:{}", path.display(), i + 1);
            if let Some((prev, prev_at)) = cells.insert(r.index, (line.to_string(), at.clone()))
                && prev != line
            {
                return Err(format!("cell {} differs between {prev_at} and {at}", r.index));
            }
        }
    }
    if let (Some(total), false) = (total, allow_partial) {
        let missing: Vec<usize> = (0..total).filter(|i| !cells.contains_key(i)).collect();
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(10).map(usize::to_string).collect();
            return Err(format!(
                "the inputs cover {} of the grid's {total} cells; missing {} (cells {}{}): a shard is absent or \
                 unfinished; pass --allow-partial to merge them anyway",
                cells.len(),
                missing.len(),
                shown.join(", "),
                if missing.len() > 10 { ", …" } else { "" }
            ));
        }
    }
    let mut text = String::new();
    for (line, _) in cells.values() {
        text.push_str(line);
        text.push('\n');
    }
    output::write_bytes(out, inputs, text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(cells.len())
}

/// Reads a sweep file (for plots).
pub fn read(path: &Path) -> Result<Vec<CellResult>, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = std::io::read_to_string(f).map_err(|_| {
        format!("{}: not a sweep file (JSON lines written by `dlncheck sweep`): not text", path.display())
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("{}:{}: not a sweep line ({e})", path.display(), i + 1))
        })
        .collect()
}
