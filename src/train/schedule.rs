//! Stepsize schedules and batch selection, including exact replay of a schedule
//! recorded elsewhere.

use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::limits;
use crate::npz::{self, NpzReader};

/// γ_k for every step k.
#[derive(Debug, Clone, PartialEq)]
pub enum Stepsizes {
    /// γ_k = γ.
    Constant(f64),
    /// Piecewise constant: `(γ, steps)` phases in order, then `last` forever
    /// (e.g. a two-phase schedule: one phase and a last stepsize).
    Phases { phases: Vec<(f64, usize)>, last: f64 },
    /// γ_k given for each step; the run has at most that many steps.
    PerStep(Vec<f64>),
}

impl Stepsizes {
    /// Parses `"0.1"` or phases `"0.5@1000,0.05"` (0.5 for 1000 steps, then 0.05).
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let (last, init) = parts.split_last().ok_or("empty stepsize")?;
        let num = |s: &str| -> Result<f64, String> {
            let g: f64 = s.parse().map_err(|_| format!("stepsize `{s}` is not a number"))?;
            if g.is_finite() && g > 0.0 { Ok(g) } else { Err(format!("stepsize {s} must be finite and > 0")) }
        };
        let last = num(last)?;
        if init.is_empty() {
            return Ok(Self::Constant(last));
        }
        let phases = init
            .iter()
            .map(|p| {
                let (g, k) = p.split_once('@').ok_or(format!("phase `{p}` must read γ@steps"))?;
                let k: usize = k.parse().map_err(|_| format!("phase `{p}`: `{k}` is not a step count"))?;
                Ok((num(g)?, k))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self::Phases { phases, last })
    }

    #[inline]
    pub fn at(&self, k: usize) -> f64 {
        match self {
            Self::Constant(g) => *g,
            Self::Phases { phases, last } => {
                let mut start = 0;
                for &(g, len) in phases {
                    start += len;
                    if k < start {
                        return g;
                    }
                }
                *last
            }
            Self::PerStep(v) => v[k],
        }
    }

    /// The number of steps the schedule defines, if finite.
    pub fn len(&self) -> Option<usize> {
        match self {
            Self::PerStep(v) => Some(v.len()),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Every γ finite and > 0.
    pub fn check(&self) -> Result<(), String> {
        let bad = |g: f64| !(g.is_finite() && g > 0.0);
        let found = match self {
            Self::Constant(g) => bad(*g).then_some((0, *g)),
            Self::Phases { phases, last } => {
                phases.iter().map(|p| p.0).chain([*last]).enumerate().find(|(_, g)| bad(*g))
            }
            Self::PerStep(v) => v.iter().copied().enumerate().find(|(_, g)| bad(*g)),
        };
        match found {
            Some((i, g)) => Err(format!("stepsize {i} is {g}; stepsizes must be finite and > 0")),
            None if self.is_empty() => Err("the schedule has no steps".into()),
            None => Ok(()),
        }
    }
}

/// The stepsizes of the steps taken, as runs of equal values `(γ, steps)` in order
/// (bitwise equality): a constant-γ run of K steps is one pair, so a long run costs no
/// memory per step. Run files store it as `stepsize_values` and `stepsize_counts`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepsizeRuns(Vec<(f64, usize)>);

impl StepsizeRuns {
    /// Records one step of size γ.
    #[inline]
    pub fn push(&mut self, gamma: f64) {
        match self.0.last_mut() {
            Some((last, count)) if last.to_bits() == gamma.to_bits() => *count += 1,
            _ => self.0.push((gamma, 1)),
        }
    }

    /// The runs, in order; neighbours differ and every count is ≥ 1.
    pub fn runs(&self) -> &[(f64, usize)] {
        &self.0
    }

    /// The number of steps.
    pub fn steps(&self) -> usize {
        self.0.iter().map(|r| r.1).sum()
    }

    /// γ_k for every step.
    pub fn expand(&self) -> Vec<f64> {
        self.0.iter().flat_map(|&(g, k)| std::iter::repeat_n(g, k)).collect()
    }
}

impl FromIterator<f64> for StepsizeRuns {
    fn from_iter<I: IntoIterator<Item = f64>>(steps: I) -> Self {
        let mut runs = Self::default();
        steps.into_iter().for_each(|g| runs.push(g));
        runs
    }
}

/// How the rows of each step are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Batching {
    /// Every step uses all n rows (GD).
    Full,
    /// m rows drawn uniformly without repetition, independently at every step (SGD).
    Random { m: usize, seed: u64 },
    /// The rows given for each step: row-major K × m indices.
    Replay { m: usize, rows: Vec<usize> },
}

/// A replayable schedule read from a file: `stepsizes` (K), or a run file's
/// `stepsize_values` and `stepsize_counts` (P each: γ repeated that many steps), and
/// optional `batches` (K × m).
pub fn load_schedule(path: &Path, n: usize) -> npz::Result<(Stepsizes, Batching)> {
    let mut f = NpzReader::open(path)?;
    let (gammas, name) = if f.contains("stepsize_values") || f.contains("stepsize_counts") {
        (read_runs(&mut f)?, "stepsize_values")
    } else {
        (f.vector("stepsizes", None)?.as_slice().to_vec(), "stepsizes")
    };
    if gammas.is_empty() {
        return Err(f.error(name, "is empty: the schedule has no steps"));
    }
    let stepsizes = Stepsizes::PerStep(gammas);
    stepsizes.check().map_err(|e| f.error(name, e))?;
    if !f.contains("batches") {
        return Ok((stepsizes, Batching::Full));
    }
    let b = f.i64_array("batches")?;
    let k = stepsizes.len().unwrap_or(0);
    let m = match b.shape[..] {
        [rows, m] if rows == k && m > 0 => m,
        [m] if k == 1 && m > 0 => m,
        _ => {
            let s = npz::fmt_shape(&b.shape);
            return Err(f.error("batches", format!("has shape {s}, expected ({k}, m) with m ≥ 1")));
        }
    };
    if let Some((at, &i)) = b.data.iter().enumerate().find(|(_, i)| !(0..n as i64).contains(*i)) {
        return Err(f.error("batches", format!("index {i} at step {}, slot {} is out of range 0..{n}", at / m, at % m)));
    }
    Ok((stepsizes, Batching::Replay { m, rows: b.data.iter().map(|&i| i as usize).collect() }))
}

/// A run file's `stepsize_values` (P) and `stepsize_counts` (P, each ≥ 1) expanded to γ_k,
/// after the step count is checked against [`limits::MAX_STEPS`] and the memory budget.
fn read_runs(f: &mut NpzReader) -> npz::Result<Vec<f64>> {
    if f.contains("stepsizes") {
        return Err(f.error("stepsizes", "and stepsize_values are both given: give one form of the schedule"));
    }
    for (name, other) in [("stepsize_values", "stepsize_counts"), ("stepsize_counts", "stepsize_values")] {
        if !f.contains(other) {
            return Err(f.error(other, format!("missing: {name} and {other} go together")));
        }
    }
    let values = f.vector("stepsize_values", None)?;
    let counts = f.i64_array("stepsize_counts")?;
    if counts.shape != [values.len()] {
        let (got, p) = (npz::fmt_shape(&counts.shape), values.len());
        return Err(f.error("stepsize_counts", format!("has shape {got}, expected ({p},): one per stepsize value")));
    }
    if let Some((i, g)) = values.iter().enumerate().find(|(_, g)| !(g.is_finite() && **g > 0.0)) {
        return Err(f.error("stepsize_values", format!("entry {i} is {g}; stepsizes must be finite and > 0")));
    }
    let mut steps: usize = 0;
    for (i, &k) in counts.data.iter().enumerate() {
        let total = usize::try_from(k).ok().filter(|&k| k >= 1).and_then(|k| steps.checked_add(k));
        steps = match total {
            Some(t) if t <= limits::MAX_STEPS => t,
            _ if k < 1 => return Err(f.error("stepsize_counts", format!("entry {i} is {k}; counts must be ≥ 1"))),
            _ => {
                let what =
                    format!("adds up past {} steps at entry {i}; at most that many are accepted", limits::MAX_STEPS);
                return Err(f.error("stepsize_counts", what));
            }
        };
    }
    limits::check_alloc("the schedule's stepsizes", steps as u128, 8).map_err(|e| f.error("stepsize_counts", e))?;
    Ok(values.iter().zip(&counts.data).flat_map(|(&g, &k)| std::iter::repeat_n(g, k as usize)).collect())
}

/// Produces the rows of each step without allocating.
pub(crate) enum BatchSampler {
    Full,
    Random { rng: Box<ChaCha8Rng>, perm: Vec<usize>, m: usize },
    Replay { m: usize, rows: Vec<usize> },
}

impl BatchSampler {
    pub fn new(batching: &Batching, n: usize) -> Self {
        match batching {
            Batching::Full => Self::Full,
            Batching::Random { m, seed } => {
                Self::Random { rng: Box::new(ChaCha8Rng::seed_from_u64(*seed)), perm: (0..n).collect(), m: *m }
            }
            Batching::Replay { m, rows } => Self::Replay { m: *m, rows: rows.clone() },
        }
    }

    /// The rows of step k, or `None` for a full-batch step. A partial Fisher–Yates
    /// shuffle of a persistent permutation gives a uniform m-subset from any state.
    #[inline]
    pub fn next(&mut self, k: usize) -> Option<&[usize]> {
        match self {
            Self::Full => None,
            Self::Random { rng, perm, m } => {
                let n = perm.len();
                for i in 0..*m {
                    let j = rng.random_range(i..n);
                    perm.swap(i, j);
                }
                Some(&perm[..*m])
            }
            Self::Replay { m, rows } => Some(&rows[k * *m..(k + 1) * *m]),
        }
    }
}
