//! Adding a claim: a commented template (`dlncheck new-claim`), and the snapshot file
//! that pins a claim's measured values (`dlncheck check --claim ID --accept`), written in
//! the format the claims test compares (insta's `.snap`).

use std::path::{Path, PathBuf};

use super::{ClaimReport, Verdict, snapshot_text};

/// The snapshot folder of a theory directory: `snapshots/` beside it (for `theory/`,
/// the repository's `snapshots/`, where the claims test looks).
pub fn snapshot_dir(theory: &Path) -> PathBuf {
    let parent = theory.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parent.join("snapshots")
}

/// `snapshots/claim_<id>.snap` for a claim of `theory`.
pub fn snapshot_path(theory: &Path, id: &str) -> PathBuf {
    snapshot_dir(theory).join(format!("claim_{id}.snap"))
}

/// The file insta writes for [`snapshot_text`]: its header, then the text.
pub fn snapshot_file(r: &ClaimReport) -> String {
    format!("---\nsource: tests/claims.rs\nexpression: snapshot_text(r)\n---\n{}", snapshot_text(r))
}

/// The text a snapshot file pins (after its header), or `None` if it has none.
pub fn snapshot_body(file: &str) -> Option<&str> {
    let rest = file.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(&rest[end + 5..])
}

/// Why a report cannot be accepted as a snapshot: only what the claims test accepts
/// (a full run that holds or is a marked known disagreement).
pub fn acceptable(r: &ClaimReport) -> Result<(), String> {
    if r.quick {
        return Err("snapshots pin the full run: drop --quick".into());
    }
    match r.verdict {
        Verdict::Holds | Verdict::KnownDisagreement => Ok(()),
        v => Err(format!(
            "claim {} {}: the claims test accepts only claims that hold or are marked known disagreements",
            r.id,
            v.label()
        )),
    }
}

/// Longest claim id (it names a file and a snapshot).
pub const MAX_ID_LEN: usize = 80;

/// Checks a claim id: 1 to [`MAX_ID_LEN`] lowercase letters, digits and `-`, starting
/// with a letter (so it names one file inside `claims/` and `snapshots/`, never a path).
pub fn check_id(id: &str) -> Result<(), String> {
    let chars_ok = id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !chars_ok {
        let shown = crate::limits::clip(&format!("{id:?}"), 100);
        return Err(format!(
            "claim id {shown}: use lowercase letters, digits and -, starting with a letter (at most {MAX_ID_LEN})"
        ));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("claim id is {} characters long; at most {MAX_ID_LEN} are accepted", id.len()));
    }
    Ok(())
}

/// A new claim file's text: a copy of `like` (another claim's file, whose `id` value
/// is replaced wherever and however it is written) under the new id, or the commented
/// template.
pub fn template(id: &str, like: Option<(&str, &str)>) -> Result<String, String> {
    let Some((other, text)) = like else { return Ok(TEMPLATE.replace("ID", id)) };
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: toml::Spanned<String>,
    }
    let parsed: IdOnly =
        toml::from_str(text).map_err(|e| format!("--like {other}: its file does not parse: {}", e.message().trim()))?;
    let span = parsed.id.span();
    let body = format!("{}\"{id}\"{}", &text[..span.start], &text[span.end..]);
    Ok(format!(
        "# Started from {other}: change the statement, runs and relation, then\n# dlncheck check --claim {id}   and, when it holds,   dlncheck check --claim {id} --accept\n{body}"
    ))
}

const TEMPLATE: &str = r#"# A claim: a scenario, named runs, and a relation decided over seeds.
# Format and names: theory/README.md § Claim files and § The expression language.
# Then: dlncheck check --claim ID        (measure; exit 1 if it fails)
#       dlncheck check --claim ID --accept   (pin its values in snapshots/claim_ID.snap)
id = "ID"
source = "theory/README.md § …; paper §…"      # what the statement comes from
statement = """
What the claim says, with the setting (n, d, s, α, data) and how it is decided.
"""

[scenario]                 # the generator; defaults shown
n = 20
d = 30
sparsity = 3
mean = 0.0                 # 1.0: uncentred features
alpha = 0.1
seeds = 8
quick_seeds = 4            # --quick (≥ 4 for a paired t-test: with 2, t must exceed 6.3); a list picks seeds

[runs.small]               # any number of runs, each a name
algorithm = "sgd"          # "gd" or "sgd"
batch = 1
stepsize = "0.1 * threshold"   # a number, or threshold / divergence / bound, n, d

[runs.large]
algorithm = "sgd"
stepsize = "0.9 * threshold"
tol = 1e-16

[define]                   # optional names for the relation
err_small = "norm(small.beta - beta_star)"
err_large = "norm(large.beta - beta_star)"

[check]
holds = "err_large < err_small"     # comparisons joined by `and`
test = "paired_t"                   # or "every_seed" (then drop `level`)
level = 0.05
"#;
