//! Escaping text for every output format, in one place: whatever a claim file, a label
//! or a file name holds (markup, separators, newlines, control characters,
//! noncharacters), a writer puts it through the function of its format, so the output
//! parses as that format and shows the text as text.

/// Text for HTML element content and attribute values: `& < > " '` as entities.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if !xml_char(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Whether XML 1.0 allows `c` in a document: tab, newline, carriage return, and
/// U+0020..U+D7FF, U+E000..U+FFFD, U+10000.. (so not U+FFFE, U+FFFF or other controls).
pub fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Text an XML writer may take as is (it escapes markup itself): every character XML
/// forbids replaced by its `\u{…}` spelling, so nothing is lost silently.
pub fn xml_text(s: &str) -> String {
    if s.chars().all(xml_char) {
        return s.to_owned();
    }
    s.chars().map(|c| if xml_char(c) { c.to_string() } else { c.escape_unicode().to_string() }).collect()
}

/// Text for one cell of a Markdown (GFM) table: one line (line breaks become spaces),
/// `|` and `\` escaped, `<` as an entity (no raw HTML), backticks and emphasis marks
/// escaped so the text shows as written.
pub fn markdown_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a code span inside a Markdown table cell: one line, `|` escaped (GFM splits
/// cells before it reads code spans), and fenced with enough backticks for its own.
pub fn markdown_code(s: &str) -> String {
    let line = one_line(s).replace('|', "\\|");
    let longest = line.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if line.starts_with('`') || line.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{line}{pad}{fence}")
}

/// Text for LaTeX (text mode, e.g. a tabular cell): the ten special characters
/// `\ # $ % & ^ _ { } ~` escaped, line breaks and control characters as spaces.
pub fn latex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        match c {
            '\\' => out.push_str(r"\textbackslash{}"),
            '^' => out.push_str(r"\textasciicircum{}"),
            '~' => out.push_str(r"\textasciitilde{}"),
            '#' | '$' | '%' | '&' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A field of a CSV row (RFC 4180): quoted, with `"` doubled.
pub fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The text on one line: every line break (and other control character) as a space.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_escapes_its_specials() {
        assert_eq!(html("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
        assert_eq!(xml_text("a\u{fffe}b\u{1}"), "a\\u{fffe}b\\u{1}");
        assert_eq!(markdown_cell("|a|\nb\\"), "\\|a\\| b\\\\");
        assert_eq!(markdown_code("a|b`c"), "``a\\|b`c``");
        assert_eq!(
            latex(r"# $ % & ^ _ { } ~ \"),
            r"\# \$ \% \& \textasciicircum{} \_ \{ \} \textasciitilde{} \textbackslash{}"
        );
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
    }
}
