//! The README and theory/README.md render cleanly as GitHub Markdown: no table row left
//! outside its table (it would show as raw pipes), every table row with its header's
//! column count, and every relative link pointing at a file in the repository.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use std::path::Path;

fn check(file: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(file)).unwrap();
    let (mut columns, mut cells) = (0, 0);
    for (event, range) in Parser::new_ext(&text, Options::ENABLE_TABLES).into_offset_iter() {
        let source = &text[range];
        match event {
            Event::Start(Tag::Paragraph) => {
                let row = source.lines().any(|l| l.trim_start().starts_with('|') && l.trim_end().ends_with('|'));
                assert!(!row, "{file}: a table row outside a table: {source}");
            }
            // b* and β* are stars, not emphasis.
            Event::Start(Tag::Emphasis | Tag::Strong) => {
                let star = source.contains("b*") || source.contains("β*");
                assert!(!star, "{file}: `*` of b*/β* read as emphasis: {source}");
            }
            Event::Start(Tag::Table(align)) => columns = align.len(),
            Event::Start(Tag::TableRow | Tag::TableHead) => cells = 0,
            Event::Start(Tag::TableCell) => cells += 1,
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => {
                assert_eq!(cells, columns, "{file}: a table row with {cells} cells under {columns} columns");
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                let url = dest_url.split('#').next().unwrap_or_default();
                if !url.is_empty() && !url.contains("://") {
                    let base = Path::new(file).parent().unwrap_or(Path::new(""));
                    assert!(root.join(base).join(url).exists(), "{file}: link to a missing file {url}");
                }
            }
            _ => {}
        }
    }
}

#[test]
fn readmes_render_cleanly() {
    check("README.md");
    check("theory/README.md");
}

/// The README's table of exit-5 tolerances shows the constants the code uses (issue 20:
/// one source for each tolerance).
#[test]
fn the_exit_5_table_quotes_the_code() {
    use dlncheck::solve::{FEASIBILITY_TOL, GAP_TOL, MAX_EXPONENT, MAX_RESIDUAL};
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = &text[text.find("### Exit 5: the tolerances").unwrap()..];
    let table = &table[..table.find("\n### ").unwrap()];
    for (name, value) in [
        ("MAX_RESIDUAL", MAX_RESIDUAL),
        ("MAX_EXPONENT", MAX_EXPONENT),
        ("FEASIBILITY_TOL", FEASIBILITY_TOL),
        ("GAP_TOL", GAP_TOL),
    ] {
        let shown = if value >= 1.0 { format!("{value}") } else { format!("{value:e}") };
        let quoted = format!("`{name}` = {shown}");
        assert!(table.contains(&quoted), "README's exit-5 table lacks {quoted}");
    }
}
