//! Claim files (TOML, one claim per file; format in theory/README.md): parsing,
//! validation and type-checking, with every error placed at a line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::eval::{Names, RUN_FIELDS, Ty, check};
use crate::expr::{Comparison, Expr, Kind, ParseError, parse_expr, parse_relation};
use crate::limits;
use crate::model::Param;
use crate::problem::ProblemSpec;
use crate::symbolic::check::{Domain, Statement, SymbolicClaim};
use crate::symbolic::{Builder, Sym};
use crate::threshold::ThresholdSettings;

/// A claim file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{line}:{col}: {message}", file.display())]
pub struct ClaimError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaim {
    id: Spanned<String>,
    source: String,
    statement: String,
    #[serde(default)]
    scenario: RawScenario,
    #[serde(default)]
    threshold: RawThreshold,
    #[serde(default)]
    runs: BTreeMap<String, RawRun>,
    #[serde(default)]
    define: BTreeMap<String, Spanned<String>>,
    check: Option<RawCheck>,
    symbolic: Option<RawSymbolic>,
    known_disagreement: Option<String>,
    /// SVG files in `figures/` beside the theory directory that the HTML report shows
    /// with this claim.
    #[serde(default)]
    figures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSymbolic {
    /// name = [lo, hi]
    variables: BTreeMap<String, Spanned<Vec<f64>>>,
    #[serde(default)]
    define: BTreeMap<String, Spanned<String>>,
    identity: Option<RawIdentity>,
    positive: Option<Spanned<String>>,
    series: Option<RawSeries>,
    limit: Option<RawLimit>,
    tol: Option<Spanned<f64>>,
    points: Option<Spanned<usize>>,
    seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    lhs: Spanned<String>,
    rhs: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeries {
    f: Spanned<String>,
    var: Spanned<String>,
    at: f64,
    terms: Spanned<String>,
    order: Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    f: Spanned<String>,
    var: Spanned<String>,
    equals: Spanned<String>,
    from: f64,
    until: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default = "d_n")]
    n: Spanned<usize>,
    #[serde(default = "d_d")]
    d: Spanned<usize>,
    #[serde(default = "d_s")]
    sparsity: Spanned<usize>,
    #[serde(default = "d_zero")]
    mean: Spanned<f64>,
    #[serde(default = "d_zero")]
    noise: Spanned<f64>,
    #[serde(default = "d_alpha")]
    alpha: Spanned<f64>,
    #[serde(default = "d_zero")]
    scale_decades: Spanned<f64>,
    #[serde(default = "d_one")]
    seeds: Spanned<usize>,
    quick_seeds: Option<Spanned<toml::Value>>,
    #[serde(default)]
    first_seed: u64,
    param: Option<Spanned<String>>,
    init: Option<Spanned<RawInit>>,
    #[serde(default)]
    positive: bool,
}

/// A start other than the parametrisation's default: `u0` and `v0`, or md's `b0`
/// (expressions of the globals, e.g. `alpha * (1 + uniform)`, evaluated per seed).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInit {
    u0: Option<Spanned<String>>,
    v0: Option<Spanned<String>>,
    b0: Option<Spanned<String>>,
}

fn d_n() -> Spanned<usize> {
    Spanned::new(0..0, 20)
}
fn d_d() -> Spanned<usize> {
    Spanned::new(0..0, 30)
}
fn d_s() -> Spanned<usize> {
    Spanned::new(0..0, 3)
}
fn d_alpha() -> Spanned<f64> {
    Spanned::new(0..0, 0.1)
}
fn d_zero() -> Spanned<f64> {
    Spanned::new(0..0, 0.0)
}
fn d_one() -> Spanned<usize> {
    Spanned::new(0..0, 1)
}

impl Default for RawScenario {
    fn default() -> Self {
        Self {
            n: d_n(),
            d: d_d(),
            sparsity: d_s(),
            mean: d_zero(),
            noise: d_zero(),
            alpha: d_alpha(),
            scale_decades: d_zero(),
            seeds: d_one(),
            quick_seeds: None,
            first_seed: 0,
            param: None,
            init: None,
            positive: false,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    time: Option<Spanned<f64>>,
    tol: Option<Spanned<f64>>,
    rel_width: Option<Spanned<f64>>,
}

/// `quick_seeds`: how many of the seeds (the first ones), or which ones; read from any
/// TOML value so a wrong one is named ("a count or a list of seeds, got -1").
enum QuickSeeds {
    Count(usize),
    List(Vec<u64>),
}

impl QuickSeeds {
    fn of(v: &toml::Value) -> Result<Self, String> {
        let seed = |v: &toml::Value| v.as_integer().and_then(|i| u64::try_from(i).ok());
        match v {
            toml::Value::Integer(i) => usize::try_from(*i).map(Self::Count).map_err(|_| format!("got {i}")),
            toml::Value::Array(a) => a
                .iter()
                .map(|s| seed(s).ok_or_else(|| format!("got the entry {s}")))
                .collect::<Result<_, _>>()
                .map(Self::List),
            other => Err(format!("got {other}")),
        }
        .map_err(|got| {
            format!(
                "quick_seeds must be a count (≥ 1) or a list of seeds (integers ≥ 0), {}",
                crate::limits::clip(&got, 60)
            )
        })
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(f64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    algorithm: Spanned<String>,
    batch: Option<Spanned<usize>>,
    stepsize: Spanned<NumOrText>,
    max_iters: Option<Spanned<usize>>,
    tol: Option<Spanned<f64>>,
    param: Option<Spanned<String>>,
    init: Option<Spanned<RawInit>>,
    threshold_param: Option<Spanned<String>>,
    momentum: Option<Spanned<f64>>,
    #[serde(default)]
    nesterov: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    holds: Spanned<String>,
    #[serde(default = "d_test")]
    test: Spanned<String>,
    level: Option<Spanned<f64>>,
}

fn d_test() -> Spanned<String> {
    Spanned::new(0..0, "every_seed".into())
}

/// How the relation is decided across seeds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "test", rename_all = "snake_case")]
pub enum Test {
    /// Each comparison must hold on every seed.
    EverySeed,
    /// Each comparison by a one-sided paired t-test on its per-seed margins, at `level`.
    PairedT { level: f64 },
}

/// One run of a claim's scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDef {
    pub name: String,
    /// SGD batch size; `None` for GD.
    pub batch: Option<usize>,
    /// In terms of `threshold`, `divergence`, `n`, `d`.
    pub stepsize: Expr,
    /// Whether the stepsize or a run field needs the convergence / divergence threshold.
    pub uses_threshold: bool,
    pub uses_divergence: bool,
    pub max_iters: usize,
    pub tol: f64,
    /// The run's parametrisation and start (the scenario's unless the run sets them).
    pub model: ModelSpec,
    /// The parametrisation whose thresholds `threshold` and `divergence` are (the run's
    /// own unless `threshold_param` names another, e.g. md's for a uv run at md's γ).
    pub threshold_model: ModelSpec,
    /// Heavy ball or Nesterov (`momentum = 0.9`, `nesterov = true`).
    pub momentum: Option<crate::train::Momentum>,
}

/// A claim's parametrisation and start, the start's vectors as expressions per seed.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub param: Param,
    pub init: InitSpec,
}

/// See [`ModelSpec`].
#[derive(Debug, Clone, PartialEq)]
pub enum InitSpec {
    /// The parametrisation's default start at the scenario's α.
    Default,
    Weights {
        u0: Expr,
        v0: Expr,
    },
    Mirror {
        b0: Expr,
    },
}

/// A loaded, checked claim.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: String,
    pub file: PathBuf,
    pub source: String,
    pub statement: String,
    /// The generator settings (the seed is set per seed).
    pub problem: ProblemSpec,
    pub alpha: f64,
    /// The scenario's parametrisation and start (`gradient_flow` is its limit as γ → 0).
    pub model: ModelSpec,
    pub seeds: Vec<u64>,
    pub quick_seeds: Vec<u64>,
    pub threshold: ThresholdSettings,
    pub runs: Vec<RunDef>,
    pub defines: BTreeMap<String, Expr>,
    /// The definitions in dependency order: evaluated in this order, each one's
    /// references are already known, so evaluation never recurses through definitions.
    pub define_order: Vec<String>,
    pub comparisons: Vec<Comparison>,
    /// The source text of each comparison.
    pub texts: Vec<String>,
    pub test: Test,
    pub known_disagreement: Option<String>,
    /// Figures the HTML report shows with this claim (file names in `figures/`).
    pub figures: Vec<String>,
    /// Whether some expression reads `run.first_order_gain`.
    pub first_order_gain: bool,
    /// A symbolic claim (then there are no runs or comparisons).
    pub symbolic: Option<SymbolicClaim>,
}

/// Names every claim expression may use (per seed), with their types.
pub const GLOBALS: [(&str, Ty); 12] = [
    ("X", Ty::Mat),
    ("y", Ty::Vec),
    ("beta_star", Ty::Vec),
    ("H", Ty::Mat),
    ("support", Ty::Mask),
    ("off_support", Ty::Mask),
    ("alpha", Ty::Vec),
    ("gradient_flow", Ty::Vec),
    ("uniform", Ty::Vec),
    ("index", Ty::Vec),
    ("n", Ty::Num),
    ("d", Ty::Num),
];

/// Default step cap and loss tolerance of a claim's runs.
pub const RUN_MAX_ITERS: usize = 3_000_000;
pub const RUN_TOL: f64 = 1e-25;

/// Places a byte offset of `src` at a 1-based line and column (in characters).
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

struct Loader<'a> {
    file: &'a Path,
    src: &'a str,
}

impl Loader<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> ClaimError {
        let (line, col) = line_col(self.src, offset);
        ClaimError { file: self.file.to_path_buf(), line, col, message: message.into() }
    }

    /// Where the text of a string value starts (after its opening quotes).
    fn text_start<T>(&self, s: &Spanned<T>) -> usize {
        let start = s.span().start;
        let quote = if self.src[start..].starts_with("\"\"\"") || self.src[start..].starts_with("'''") { 3 } else { 1 };
        start + quote
    }

    fn parse_error(&self, base: usize, e: ParseError) -> ClaimError {
        self.error(base + e.offset, format!("expected {}, found {}", e.expected, e.found))
    }

    fn range<T: PartialOrd + std::fmt::Display>(&self, v: &Spanned<T>, ok: bool, what: &str) -> Result<(), ClaimError> {
        if ok { Ok(()) } else { Err(self.error(v.span().start, format!("{what} (got {})", v.get_ref()))) }
    }
}

/// Reads and checks one claim file.
pub fn load(file: &Path) -> Result<Claim, ClaimError> {
    let src = std::fs::read_to_string(file).map_err(|e| ClaimError {
        file: file.to_path_buf(),
        line: 0,
        col: 0,
        message: e.to_string(),
    })?;
    parse(file, &src)
}

/// Parses and checks the text of a claim file.
pub fn parse(file: &Path, src: &str) -> Result<Claim, ClaimError> {
    let l = Loader { file, src };
    let raw: RawClaim = toml::from_str(src).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        l.error(offset, e.message().trim_end().to_string())
    })?;
    super::author::check_id(raw.id.get_ref()).map_err(|e| l.error(raw.id.span().start, e))?;
    let raw_check = match (&raw.check, &raw.symbolic) {
        (Some(c), None) => c,
        (None, Some(sym)) => return symbolic_claim(&l, &raw, sym),
        _ => return Err(l.error(0, "a claim has exactly one of [check] (runs) and [symbolic] (formulas)")),
    };
    let sc = &raw.scenario;
    l.range(&sc.n, *sc.n.get_ref() >= 1, "n must be ≥ 1")?;
    l.range(&sc.d, sc.d.get_ref() > sc.n.get_ref(), "d must exceed n (an interpolation problem)")?;
    l.range(&sc.sparsity, sc.sparsity.get_ref() <= sc.d.get_ref(), "sparsity must be ≤ d")?;
    l.range(&sc.noise, sc.noise.get_ref().is_finite() && *sc.noise.get_ref() >= 0.0, "noise must be ≥ 0")?;
    l.range(&sc.alpha, sc.alpha.get_ref().is_finite() && *sc.alpha.get_ref() > 0.0, "alpha must be finite and > 0")?;
    l.range(&sc.mean, sc.mean.get_ref().is_finite(), "mean must be finite")?;
    let max_seeds = limits::MAX_SEEDS;
    l.range(&sc.seeds, (1..=max_seeds).contains(sc.seeds.get_ref()), &format!("seeds must be in 1..={max_seeds}"))?;
    let cells = sc.n.get_ref().checked_mul(*sc.d.get_ref()).unwrap_or(usize::MAX);
    limits::check_alloc("the scenario's X (n × d)", cells as u128, 8).map_err(|e| l.error(sc.d.span().start, e))?;
    let max_decades = crate::problem::MAX_SCALE_DECADES;
    let decades = *sc.scale_decades.get_ref();
    l.range(
        &sc.scale_decades,
        (0.0..=max_decades).contains(&decades),
        &format!("scale_decades must be in [0, {max_decades}]"),
    )?;
    let count = *sc.seeds.get_ref() as u64;
    if sc.first_seed.checked_add(count - 1).is_none() {
        let what = format!("first_seed {} + {count} seeds passes the largest seed 2^64 − 1", sc.first_seed);
        return Err(l.error(sc.seeds.span().start, what));
    }
    let seeds: Vec<u64> = (0..count).map(|k| sc.first_seed + k).collect();
    let (quick_seeds, quick_at) = quick_seeds(&l, sc, &seeds)?;
    let problem = ProblemSpec {
        n: *sc.n.get_ref(),
        d: *sc.d.get_ref(),
        sparsity: *sc.sparsity.get_ref(),
        mean: *sc.mean.get_ref(),
        noise: *sc.noise.get_ref(),
        scale_decades: decades,
        positive: sc.positive,
        ..ProblemSpec::default()
    };
    let threshold = threshold_settings(&l, &raw.threshold)?;
    let model = model_spec(&l, sc.param.as_ref(), sc.init.as_ref(), None)?;
    let runs = raw
        .runs
        .iter()
        .map(|(name, r)| run_def(&l, name, r, (problem.n, problem.d), &model))
        .collect::<Result<Vec<_>, _>>()?;
    let defines = parse_defines(&l, &raw.define)?;
    let define_order =
        dependency_order(&defines, |_| l.error(0, "a cycle of definitions"))?.into_iter().map(str::to_owned).collect();
    let run_names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    let define_types = define_types(&l, &raw, &defines)?;
    let names = ClaimNames { runs: &run_names, defines: &define_types };
    let base = l.text_start(&raw_check.holds);
    let comparisons = parse_relation(raw_check.holds.get_ref()).map_err(|e| l.parse_error(base, e))?;
    for c in &comparisons {
        for side in [&c.lhs, &c.rhs] {
            match check(side, &names).map_err(|e| l.error(base + e.span.0, e.message))? {
                Ty::Num => {}
                t => {
                    return Err(l.error(
                        base + side.span.0,
                        format!("a comparison needs numbers on both sides, this is {t:?}"),
                    ));
                }
            }
        }
    }
    let texts = comparisons.iter().map(|c| raw_check.holds.get_ref()[c.lhs.span.0..c.rhs.span.1].to_string()).collect();
    let test = test_kind(&l, raw_check)?;
    if matches!(test, Test::PairedT { .. }) && quick_seeds.len() < 2 {
        return Err(l.error(quick_at, "a paired test needs at least 2 seeds (and quick_seeds)"));
    }
    let first_order_gain = src.contains("first_order_gain");
    Ok(Claim {
        id: raw.id.into_inner(),
        file: file.to_path_buf(),
        source: raw.source,
        statement: raw.statement.trim().to_string(),
        problem,
        alpha: *sc.alpha.get_ref(),
        model,
        seeds,
        quick_seeds,
        threshold,
        runs,
        defines,
        define_order,
        comparisons,
        texts,
        test,
        known_disagreement: raw.known_disagreement,
        figures: figure_names(&raw.figures).map_err(|e| l.error(0, e))?,
        first_order_gain,
        symbolic: None,
    })
}

/// A claim's `figures`: plain SVG file names (no directory), each at most once.
fn figure_names(names: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let plain = !n.is_empty()
            && n.len() <= 100
            && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !n.starts_with('.');
        if !(plain && n.ends_with(".svg")) {
            return Err(format!("figures: `{}` is not a plain .svg file name in figures/", n.escape_debug()));
        }
        if out.contains(n) {
            return Err(format!("figures: `{n}` is named twice"));
        }
        out.push(n.clone());
    }
    Ok(out)
}

/// The seeds `--quick` uses: the first `k` of `seeds`, or a list of them (so a known
/// disagreement can keep the seeds that show it); and where the setting is, for errors.
fn quick_seeds(l: &Loader, sc: &RawScenario, seeds: &[u64]) -> Result<(Vec<u64>, usize), ClaimError> {
    let Some(q) = &sc.quick_seeds else { return Ok((seeds.to_vec(), sc.seeds.span().start)) };
    let at = q.span().start;
    match QuickSeeds::of(q.get_ref()).map_err(|e| l.error(at, e))? {
        QuickSeeds::Count(k) if (1..=seeds.len()).contains(&k) => Ok((seeds[..k].to_vec(), at)),
        QuickSeeds::Count(k) => Err(l.error(at, format!("quick_seeds must be in 1..={} (got {k})", seeds.len()))),
        QuickSeeds::List(list) => {
            if let Some(s) = list.iter().find(|s| !seeds.contains(s)) {
                let what = format!("quick seed {s} is not one of the seeds {}..={}", seeds[0], seeds[seeds.len() - 1]);
                return Err(l.error(at, what));
            }
            if list.is_empty() || (1..list.len()).any(|i| list[..i].contains(&list[i])) {
                return Err(l.error(at, "quick_seeds must list distinct seeds, at least one"));
            }
            Ok((list, at))
        }
    }
}

/// A claim about formulas: variables with domains, definitions, and one statement.
fn symbolic_claim(l: &Loader, raw: &RawClaim, s: &RawSymbolic) -> Result<Claim, ClaimError> {
    let mut domains = Vec::new();
    for (name, range) in &s.variables {
        let &[lo, hi] = range.get_ref().as_slice() else {
            let what = format!("the domain of `{name}` must be two numbers [lo, hi], not {}", range.get_ref().len());
            return Err(l.error(range.span().start, what));
        };
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(l.error(range.span().start, format!("the domain of `{name}` must be [lo, hi] with lo < hi")));
        }
        domains.push(Domain { name: name.clone(), lo, hi });
    }
    let variables: Vec<String> = s.variables.keys().cloned().collect();
    let defines = symbolic_defines(l, &variables, &s.define)?;
    let b = Builder { variables: &variables, defines: &defines };
    let formula =
        |text: &Spanned<String>| b.parse(text.get_ref()).map_err(|e| l.error(l.text_start(text) + e.span.0, e.message));
    let variable = |v: &Spanned<String>| {
        if variables.contains(v.get_ref()) {
            Ok(v.get_ref().clone())
        } else {
            Err(l.error(v.span().start, format!("`{}` is not a declared variable", v.get_ref())))
        }
    };
    let text = match (&s.identity, &s.positive, &s.series, &s.limit) {
        (Some(i), ..) => format!("{} = {}", i.lhs.get_ref(), i.rhs.get_ref()),
        (_, Some(f), ..) => format!("{} > 0", f.get_ref()),
        (_, _, Some(r), _) => {
            format!(
                "{} = {} + O(({} - {})^{})",
                r.f.get_ref(),
                r.terms.get_ref(),
                r.var.get_ref(),
                r.at,
                r.order.get_ref()
            )
        }
        (.., Some(m)) => format!(
            "{} → {} ({} from {:e} to {:e})",
            m.f.get_ref(),
            m.equals.get_ref(),
            m.var.get_ref(),
            m.from,
            m.until.get_ref()
        ),
        _ => String::new(),
    };
    let statement = match (&s.identity, &s.positive, &s.series, &s.limit) {
        (Some(i), None, None, None) => Statement::Identity { lhs: formula(&i.lhs)?, rhs: formula(&i.rhs)? },
        (None, Some(f), None, None) => Statement::Positive { f: formula(f)? },
        (None, None, Some(r), None) => {
            l.range(&r.order, (1..=12).contains(r.order.get_ref()), "order must be in 1..=12")?;
            if !r.at.is_finite() {
                return Err(l.error(r.var.span().start, format!("the series point `at` must be finite (got {})", r.at)));
            }
            let var = variable(&r.var)?;
            Statement::Series { f: formula(&r.f)?, var, at: r.at, terms: formula(&r.terms)?, order: *r.order.get_ref() }
        }
        (None, None, None, Some(m)) => {
            let until = *m.until.get_ref();
            let ok = m.from.is_finite() && until.is_finite() && m.from * until > 0.0 && m.from != until;
            l.range(&m.until, ok, "from and until must be finite, distinct and of one sign")?;
            let var = variable(&m.var)?;
            Statement::Limit { f: formula(&m.f)?, var, equals: formula(&m.equals)?, from: m.from, until }
        }
        _ => return Err(l.error(0, "[symbolic] needs exactly one of identity, positive, series, limit")),
    };
    let tol = s.tol.as_ref().map_or(Ok(1e-10), |t| {
        l.range(t, t.get_ref().is_finite() && *t.get_ref() > 0.0, "tol must be > 0").map(|_| *t.get_ref())
    })?;
    let symbolic = SymbolicClaim {
        text,
        statement,
        domains,
        tol,
        points: symbolic_points(l, s.points.as_ref())?,
        seed: s.seed.unwrap_or(0),
    };
    Ok(Claim {
        id: raw.id.get_ref().clone(),
        file: l.file.to_path_buf(),
        source: raw.source.clone(),
        statement: raw.statement.trim().to_string(),
        problem: ProblemSpec::default(),
        alpha: 0.1,
        model: ModelSpec { param: Param::Uv, init: InitSpec::Default },
        seeds: Vec::new(),
        quick_seeds: Vec::new(),
        threshold: ThresholdSettings::default(),
        runs: Vec::new(),
        defines: BTreeMap::new(),
        define_order: Vec::new(),
        comparisons: Vec::new(),
        texts: Vec::new(),
        test: Test::EverySeed,
        known_disagreement: raw.known_disagreement.clone(),
        figures: figure_names(&raw.figures).map_err(|e| l.error(0, e))?,
        first_order_gain: false,
        symbolic: Some(symbolic),
    })
}

/// Sample points of a symbolic claim: 2000 unless given, in 10..=[`limits::MAX_SYMBOLIC_POINTS`].
fn symbolic_points(l: &Loader, points: Option<&Spanned<usize>>) -> Result<usize, ClaimError> {
    let Some(p) = points else { return Ok(2000) };
    let max = limits::MAX_SYMBOLIC_POINTS;
    l.range(p, (10..=max).contains(p.get_ref()), &format!("points must be in 10..={max}"))?;
    Ok(*p.get_ref())
}

/// Builds the definitions of a symbolic claim in dependency order.
fn symbolic_defines(
    l: &Loader,
    variables: &[String],
    raw: &BTreeMap<String, Spanned<String>>,
) -> Result<BTreeMap<String, Sym>, ClaimError> {
    let parsed = parse_texts(l, raw)?;
    let cycle = |name: &str| {
        l.error(l.text_start(&raw[name]), format!("`{name}` is defined in terms of itself (a cycle of definitions)"))
    };
    resolve_in_order(&parsed, cycle, |name, built| {
        (Builder { variables, defines: built })
            .build_checked(&parsed[name])
            .map_err(|e| l.error(l.text_start(&raw[name]) + e.span.0, format!("in `{name}`: {}", e.message)))
    })
}

/// Parses every definition's text, at most [`limits::MAX_DEFINITIONS`] of them.
fn parse_texts(l: &Loader, raw: &BTreeMap<String, Spanned<String>>) -> Result<BTreeMap<String, Expr>, ClaimError> {
    if let Some((_, text)) = raw.iter().nth(limits::MAX_DEFINITIONS) {
        let what = format!("{} definitions; at most {} are accepted", raw.len(), limits::MAX_DEFINITIONS);
        return Err(l.error(text.span().start, what));
    }
    raw.iter()
        .map(|(name, text)| {
            let e = parse_expr(text.get_ref()).map_err(|e| l.parse_error(l.text_start(text), e))?;
            Ok((name.clone(), e))
        })
        .collect()
}

/// Definitions in dependency order, each after the definitions it mentions (Kahn's
/// algorithm: linear in definitions and mentions), or the error `cycle` makes for the
/// first definition on a cycle.
fn dependency_order(
    defs: &BTreeMap<String, Expr>,
    cycle: impl Fn(&str) -> ClaimError,
) -> Result<Vec<&str>, ClaimError> {
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, e) in defs {
        let deps: Vec<&str> = e.names().into_iter().filter(|n| defs.contains_key(*n)).collect();
        waiting.insert(name, deps.len());
        for d in deps {
            users.entry(d).or_default().push(name);
        }
    }
    let mut ready: Vec<&str> = waiting.iter().filter(|(_, w)| **w == 0).map(|(n, _)| *n).collect();
    let mut order = Vec::with_capacity(defs.len());
    while let Some(name) = ready.pop() {
        order.push(name);
        for user in users.get(name).into_iter().flatten() {
            if let Some(w) = waiting.get_mut(user) {
                *w -= 1;
                if *w == 0 {
                    ready.push(user);
                }
            }
        }
    }
    match waiting.iter().find(|(_, w)| **w > 0) {
        Some((name, _)) => Err(cycle(name)),
        None => Ok(order),
    }
}

/// Resolves definitions once each, in [`dependency_order`], each seeing those before it.
fn resolve_in_order<T>(
    defs: &BTreeMap<String, Expr>,
    cycle: impl Fn(&str) -> ClaimError,
    mut resolve: impl FnMut(&str, &BTreeMap<String, T>) -> Result<T, ClaimError>,
) -> Result<BTreeMap<String, T>, ClaimError> {
    let mut done = BTreeMap::new();
    for name in dependency_order(defs, cycle)? {
        let v = resolve(name, &done)?;
        done.insert(name.to_owned(), v);
    }
    Ok(done)
}

/// The `[threshold]` table, checked by [`ThresholdSettings::check`] (the one place that
/// bounds a threshold search); an error points at the first value given.
fn threshold_settings(l: &Loader, t: &RawThreshold) -> Result<ThresholdSettings, ClaimError> {
    let mut s = ThresholdSettings::default();
    let value = |v: &Option<Spanned<f64>>, default: f64| v.as_ref().map_or(default, |v| *v.get_ref());
    (s.time, s.tol, s.rel_width) = (value(&t.time, s.time), value(&t.tol, s.tol), value(&t.rel_width, s.rel_width));
    let at = [&t.time, &t.tol, &t.rel_width].iter().find_map(|v| v.as_ref().map(|v| v.span().start)).unwrap_or(0);
    s.check().map_err(|e| l.error(at, format!("[threshold]: {e}")))?;
    Ok(s)
}

/// The parametrisation and start of a scenario (`parent` = None) or of a run (which
/// inherits what it does not set from the scenario's `parent`).
fn model_spec(
    l: &Loader,
    param: Option<&Spanned<String>>,
    init: Option<&Spanned<RawInit>>,
    parent: Option<&ModelSpec>,
) -> Result<ModelSpec, ClaimError> {
    let p = match param {
        Some(t) => Param::parse(t.get_ref()).map_err(|e| l.error(t.span().start, e))?,
        None => parent.map_or(Param::Uv, |m| m.param),
    };
    let expr = |t: &Spanned<String>| -> Result<Expr, ClaimError> {
        let e = parse_expr(t.get_ref()).map_err(|e| l.parse_error(l.text_start(t), e))?;
        let none = BTreeMap::new();
        match check(&e, &ClaimNames { runs: &[], defines: &none }) {
            Ok(Ty::Vec | Ty::Num) => Ok(e),
            Ok(ty) => Err(l.error(t.span().start, format!("a start is a vector or a number, this is {ty:?}"))),
            Err(e) => Err(l.error(l.text_start(t) + e.span.0, format!("in the start: {}", e.message))),
        }
    };
    let spec = match init {
        None => parent.map_or(InitSpec::Default, |m| m.init.clone()),
        Some(i) => match (&i.get_ref().u0, &i.get_ref().v0, &i.get_ref().b0) {
            (Some(u0), Some(v0), None) => InitSpec::Weights { u0: expr(u0)?, v0: expr(v0)? },
            (None, None, Some(b0)) => InitSpec::Mirror { b0: expr(b0)? },
            _ => return Err(l.error(i.span().start, "init needs u0 and v0 (uv, u2v2), or b0 alone (md)")),
        },
    };
    let at = init.map(|i| i.span().start).or(param.map(|t| t.span().start)).unwrap_or(0);
    match (&spec, p) {
        (InitSpec::Weights { .. }, Param::Md) => {
            Err(l.error(at, "param = \"md\" starts from b0 (init = { b0 = \"…\" }), not u0, v0"))
        }
        (InitSpec::Mirror { .. }, Param::Uv | Param::U2v2 | Param::Depth(_)) => {
            Err(l.error(at, format!("b0 is mirror descent's start; param = \"{}\" starts from u0, v0", p.name())))
        }
        _ => Ok(ModelSpec { param: p, init: spec }),
    }
}

fn run_def(
    l: &Loader,
    name: &str,
    r: &RawRun,
    (n, d): (usize, usize),
    scenario: &ModelSpec,
) -> Result<RunDef, ClaimError> {
    let batch = match r.algorithm.get_ref().as_str() {
        "gd" => {
            if let Some(b) = &r.batch {
                return Err(l.error(b.span().start, "GD uses every row: drop `batch` or use algorithm = \"sgd\""));
            }
            None
        }
        "sgd" => {
            let b = r.batch.as_ref().map_or(1, |b| *b.get_ref());
            if let Some(bs) = &r.batch {
                l.range(bs, (1..=n).contains(&b), &format!("batch must be in 1..={n}"))?;
            }
            Some(b)
        }
        other => {
            return Err(
                l.error(r.algorithm.span().start, format!("algorithm must be \"gd\" or \"sgd\", not \"{other}\""))
            );
        }
    };
    let model = model_spec(l, r.param.as_ref(), r.init.as_ref(), Some(scenario))?;
    let at = r.stepsize.span().start;
    let stepsize = match r.stepsize.get_ref() {
        NumOrText::Num(g) => Expr { kind: Kind::Num(*g), span: (0, 0) },
        NumOrText::Text(t) => parse_expr(t).map_err(|e| l.parse_error(l.text_start(&r.stepsize), e))?,
    };
    let names = StepsizeNames;
    check(&stepsize, &names).map_err(|e| l.error(at, format!("stepsize: {}", e.message)))?;
    // The stepsize at thresholds 1 is the fraction; it must be a positive finite number.
    let unit = super::run::StepsizeScope { threshold: 1.0, divergence: 1.0, bound: 1.0, n, d };
    let fraction = super::run::stepsize(&stepsize, unit).map_err(|e| l.error(at, format!("stepsize: {e}")))?;
    if !(fraction.is_finite() && fraction > 0.0) {
        let what = format!("stepsize must be finite and > 0 (got {fraction} at threshold = divergence = bound = 1)");
        return Err(l.error(at, what));
    }
    Ok(RunDef {
        name: name.to_string(),
        batch,
        uses_threshold: mentions(&stepsize, "threshold") || l.src.contains(&format!("{name}.threshold")),
        uses_divergence: mentions(&stepsize, "divergence") || l.src.contains(&format!("{name}.divergence")),
        stepsize,
        max_iters: run_max_iters(l, r)?,
        tol: run_tol(l, r)?,
        momentum: run_momentum(l, r, &model)?,
        threshold_model: match &r.threshold_param {
            Some(t) => model_spec(l, Some(t), None, Some(&model))?,
            None => model.clone(),
        },
        model,
    })
}

fn run_max_iters(l: &Loader, r: &RawRun) -> Result<usize, ClaimError> {
    let Some(k) = &r.max_iters else { return Ok(RUN_MAX_ITERS) };
    l.range(
        k,
        (1..=limits::MAX_STEPS).contains(k.get_ref()),
        &format!("max_iters must be in 1..={}", limits::MAX_STEPS),
    )?;
    Ok(*k.get_ref())
}

fn run_momentum(l: &Loader, r: &RawRun, model: &ModelSpec) -> Result<Option<crate::train::Momentum>, ClaimError> {
    let Some(mu) = &r.momentum else {
        return if r.nesterov { Err(l.error(0, "nesterov = true needs momentum = μ")) } else { Ok(None) };
    };
    let m = crate::train::Momentum::new(*mu.get_ref(), r.nesterov).map_err(|e| l.error(mu.span().start, e))?;
    if model.param == Param::Md {
        return Err(l.error(mu.span().start, "mirror descent (param = \"md\") has no weights to carry momentum"));
    }
    Ok(Some(m))
}

fn run_tol(l: &Loader, r: &RawRun) -> Result<f64, ClaimError> {
    let Some(t) = &r.tol else { return Ok(RUN_TOL) };
    l.range(t, t.get_ref().is_finite() && *t.get_ref() > 0.0, "tol must be finite and > 0")?;
    Ok(*t.get_ref())
}

fn mentions(e: &Expr, name: &str) -> bool {
    match &e.kind {
        Kind::Num(_) => false,
        Kind::Name(n) => n == name,
        Kind::Field(b, _) | Kind::Neg(b) => mentions(b, name),
        Kind::Index(a, b) | Kind::Bin(_, a, b) => mentions(a, name) || mentions(b, name),
        Kind::Call(_, args) => args.iter().any(|a| mentions(a, name)),
    }
}

fn parse_defines(l: &Loader, raw: &BTreeMap<String, Spanned<String>>) -> Result<BTreeMap<String, Expr>, ClaimError> {
    if let Some((name, text)) = raw.iter().find(|(name, _)| GLOBALS.iter().any(|(g, _)| g == name)) {
        return Err(l.error(text.span().start, format!("`{name}` is a built-in name; choose another")));
    }
    parse_texts(l, raw)
}

/// Types of the definitions, resolved in dependency order (see [`resolve_in_order`]).
fn define_types(
    l: &Loader,
    raw: &RawClaim,
    defines: &BTreeMap<String, Expr>,
) -> Result<BTreeMap<String, Ty>, ClaimError> {
    let runs: Vec<String> = raw.runs.keys().cloned().collect();
    let cycle = |name: &str| {
        l.error(
            l.text_start(&raw.define[name]),
            format!("`{name}` is defined in terms of itself (a cycle of definitions)"),
        )
    };
    resolve_in_order(defines, cycle, |name, known| {
        let names = ClaimNames { runs: &runs, defines: known };
        check(&defines[name], &names).map_err(|e| {
            let base = l.text_start(&raw.define[name]);
            l.error(base + e.span.0, format!("in `{name}`: {}", e.message))
        })
    })
}

fn test_kind(l: &Loader, c: &RawCheck) -> Result<Test, ClaimError> {
    match (c.test.get_ref().as_str(), &c.level) {
        ("every_seed", None) => Ok(Test::EverySeed),
        ("every_seed", Some(lv)) => Err(l.error(lv.span().start, "`level` belongs to test = \"paired_t\"")),
        ("paired_t", Some(lv)) => {
            l.range(lv, *lv.get_ref() > 0.0 && *lv.get_ref() < 0.5, "level must be in (0, 0.5)")?;
            Ok(Test::PairedT { level: *lv.get_ref() })
        }
        ("paired_t", None) => Err(l.error(c.test.span().start, "test = \"paired_t\" needs a `level` (e.g. 0.05)")),
        (other, _) => {
            Err(l.error(c.test.span().start, format!("test must be \"every_seed\" or \"paired_t\", not \"{other}\"")))
        }
    }
}

/// Names in relations and definitions: globals, runs, definitions.
struct ClaimNames<'a> {
    runs: &'a [String],
    defines: &'a BTreeMap<String, Ty>,
}

impl Names for ClaimNames<'_> {
    fn name_ty(&self, name: &str) -> Option<Ty> {
        if self.runs.iter().any(|r| r == name) {
            return Some(Ty::Run);
        }
        GLOBALS.iter().find(|(g, _)| *g == name).map(|(_, t)| *t).or_else(|| self.defines.get(name).copied())
    }

    fn known_names(&self) -> Vec<String> {
        let mut v: Vec<String> = GLOBALS.iter().map(|(g, _)| g.to_string()).collect();
        v.extend(self.runs.iter().map(|r| format!("{r} (run: {r}.{})", RUN_FIELDS[0].0)));
        v.extend(self.defines.keys().cloned());
        v
    }
}

/// Names in a stepsize: the run's thresholds and the problem size.
struct StepsizeNames;

const STEPSIZE_NAMES: [&str; 5] = ["threshold", "divergence", "bound", "n", "d"];

impl Names for StepsizeNames {
    fn name_ty(&self, name: &str) -> Option<Ty> {
        STEPSIZE_NAMES.contains(&name).then_some(Ty::Num)
    }

    fn known_names(&self) -> Vec<String> {
        STEPSIZE_NAMES.iter().map(|s| s.to_string()).collect()
    }
}
