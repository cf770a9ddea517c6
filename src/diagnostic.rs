//! One `Diagnostic` type for every stage, rendered with bpftrace v0.26's
//! header, `file:line:col-endcol: ERROR: message`, then the source line and
//! a caret under the span.

use crate::span::Span;
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// A problem found in the user's program (or while loading it), with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub span: Option<Span>,
    /// Secondary places worth pointing at ("first assigned here").
    pub labels: Vec<Label>,
    pub help: Option<String>,
    /// Extra text printed after the diagnostic (for example a verifier log tail).
    pub notes: Vec<String>,
    /// Printed as the message alone, without `error:` (bpftrace's
    /// `ERROR: ...`/`HINT: ...` lines about the command line).
    pub bare: bool,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic::new(Severity::Error, message, Some(span))
    }

    /// An error that is about the whole program, not one place in it.
    pub fn error_nowhere(message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Error, message, None)
    }

    pub fn warning(message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic::new(Severity::Warning, message, Some(span))
    }

    fn new(severity: Severity, message: impl Into<String>, span: Option<Span>) -> Diagnostic {
        Diagnostic {
            severity,
            message: message.into(),
            span,
            labels: Vec::new(),
            help: None,
            notes: Vec::new(),
            bare: false,
        }
    }

    /// An error about the command line, printed as `text` is.
    pub fn bare_error(text: impl Into<String>) -> Diagnostic {
        Diagnostic { bare: true, ..Diagnostic::new(Severity::Error, text, None) }
    }

    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: message.into() });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The program text and the name it is shown under (`stdin`, `script.rt`, ...).
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        Source { name: name.into(), text: text.into() }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = (offset as usize).min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// The text of 1-based line `line`, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        self.text.split('\n').nth(line - 1).unwrap_or("").trim_end_matches('\r')
    }

    /// Where each line starts, for callers that ask for many places: each
    /// question then costs a binary search, not a scan from the start of the
    /// text (the compiler asks once per statement; a rescan made large
    /// programs quadratic).
    pub fn lines(&self) -> Lines<'_> {
        let starts = std::iter::once(0).chain(self.text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Lines { source: self, starts }
    }
}

/// `Source::line_col` and `Source::line_text` over an index of line starts.
pub struct Lines<'a> {
    source: &'a Source,
    /// Byte offset of the start of each line; the first is 0.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub fn source(&self) -> &'a Source {
        self.source
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let text = &self.source.text;
        let offset = floor_char_boundary(text, (offset as usize).min(text.len()));
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        (line, text[start..offset].chars().count() + 1)
    }

    /// The text of 1-based line `line`, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let text = &self.source.text;
        let Some(&start) = self.starts.get(line.wrapping_sub(1)) else { return "" };
        let end = self.starts.get(line).map_or(text.len(), |&next| next - 1);
        text[start..end].trim_end_matches('\r')
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Renders one diagnostic; the result ends with a newline.
pub fn render(diag: &Diagnostic, source: &Source) -> String {
    let mut out = String::new();
    let level = match diag.severity {
        Severity::Error => "ERROR",
        Severity::Warning => "WARNING",
    };
    match diag.span {
        Some(span) => {
            let _ = writeln!(out, "{}:{}: {}: {}", source.name, place(source, span), level, diag.message);
            snippet(&mut out, source, span, "");
        }
        None if diag.bare => {
            let _ = writeln!(out, "{}", diag.message);
        }
        None => {
            let _ = writeln!(out, "{}: {}", level, diag.message);
        }
    }
    for label in &diag.labels {
        let (line, col) = source.line_col(label.span.start);
        let _ = writeln!(out, "{}:{}:{}: note: {}", source.name, line, col, label.message);
        snippet(&mut out, source, label.span, "");
    }
    if let Some(help) = &diag.help {
        let _ = writeln!(out, "help: {}", help);
    }
    for note in &diag.notes {
        out.push_str(note);
        if !note.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Where a span is, as bpftrace writes it: `line:col-endcol` (the end
/// column just past the span; one column for an empty span), or
/// `line-endline` for a span over several lines.
pub fn place(source: &Source, span: Span) -> String {
    let (line, col) = source.line_col(span.start);
    let (end_line, end_col) = source.line_col(span.end);
    // A span that takes in the newline ends on its own line.
    if end_line == line + 1 && end_col == 1 {
        return format!("{}:{}-{}", line, col, source.line_text(line).chars().count() + 2);
    }
    if end_line > line {
        format!("{}-{}", line, end_line)
    } else {
        format!("{}:{}-{}", line, col, end_col.max(col + 1))
    }
}

/// Lines longer than this (in characters) are shown as a window around
/// the caret: a one-line program of a megabyte is not echoed whole.
const MAX_SHOWN: usize = 160;
/// Characters shown before the caret in such a window.
const SHOWN_BEFORE: usize = 60;

/// `  12 | source line` then a caret line under the span (clipped to that line).
fn snippet(out: &mut String, source: &Source, span: Span, _label: &str) {
    let (line, col) = source.line_col(span.start);
    let text = source.line_text(line);
    let gutter = line.to_string();
    let line_chars = text.chars().count();
    let width = if span.is_empty() {
        1
    } else {
        let (end_line, end_col) = source.line_col(span.end);
        if end_line == line {
            (end_col - col).max(1)
        } else {
            (line_chars + 1 - col).max(1)
        }
    };
    let (shown, caret_at, width) = if line_chars <= MAX_SHOWN {
        (text.to_string(), col - 1, width)
    } else {
        // A window of MAX_SHOWN characters, `...` where the line goes on.
        let first = (col - 1).saturating_sub(SHOWN_BEFORE).min(line_chars.saturating_sub(MAX_SHOWN));
        let last = (first + MAX_SHOWN).min(line_chars);
        let (before, after) = (if first > 0 { "..." } else { "" }, if last < line_chars { "..." } else { "" });
        let window: String = text.chars().skip(first).take(last - first).collect();
        let caret_at = before.len() + (col - 1 - first);
        (format!("{}{}{}", before, window, after), caret_at, width.min(last + 1 - col).max(1))
    };
    // Bytes that are not UTF-8 and control characters show as U+FFFD: still
    // one column each.
    let shown: String = crate::raw_text::shown(&shown)
        .chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => char::REPLACEMENT_CHARACTER,
            c => c,
        })
        .collect();
    let _ = writeln!(out, " {} | {}", gutter, shown);
    let _ = writeln!(out, " {} | {}^{}", " ".repeat(gutter.len()), " ".repeat(caret_at), "~".repeat(width - 1));
}

/// Renders every diagnostic in order.
pub fn render_all(diags: &[Diagnostic], source: &Source) -> String {
    diags.iter().map(|d| render(d, source)).collect()
}

/// The closest candidate to `name` by edit distance, if it is close enough to be a
/// plausible typo ("did you mean ...?").
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1) + 1;
    // Ties go to a candidate the name is an abbreviation of (a letter left
    // out is the commonest typo), then to one of the same length (a letter
    // mistyped), then to the shorter one.
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, !is_subsequence(name, c), c.len().abs_diff(name.len()), c.len()))
        .map(|(_, c)| c)
}

fn is_subsequence(short: &str, long: &str) -> bool {
    let mut it = long.chars();
    short.chars().all(|c| it.any(|l| l == c))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Prints diagnostics to stderr and returns `code` (the exit code they end with).
pub fn report(source: &Source, diags: &[Diagnostic], code: i32) -> i32 {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    for d in diags {
        let _ = err.write_all(render(d, source).as_bytes());
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_agrees_with_the_scan() {
        let src = Source::new("stdin", "BEGIN {\r\n  é = 1;\n\n}\nlast");
        let lines = src.lines();
        for offset in 0..=src.text.len() as u32 + 2 {
            assert_eq!(lines.line_col(offset), src.line_col(offset), "offset {offset}");
        }
        for line in 1..=6 {
            assert_eq!(lines.line_text(line), src.line_text(line), "line {line}");
        }
    }

    #[test]
    fn renders_caret_under_span() {
        let src = Source::new("stdin", "BEGIN { fo(); }");
        let d = Diagnostic::error("unknown function `fo`", Span::new(8, 10)).with_help("did you mean `for`?");
        assert_eq!(
            render(&d, &src),
            "stdin:1:9-11: ERROR: unknown function `fo`\n 1 | BEGIN { fo(); }\n   |         ^~\nhelp: did you mean `for`?\n"
        );
    }

    #[test]
    fn a_long_line_shows_a_window_around_the_caret() {
        let text = format!("BEGIN {{ {}; fo(); {}; }}", "$a = 1".repeat(100_000), "$b = 2".repeat(100_000));
        let at = text.find("fo()").unwrap();
        let src = Source::new("stdin", text);
        let rendered = render(&Diagnostic::error("unknown function `fo`", Span::new(at, at + 2)), &src);
        assert!(rendered.len() < 600, "{} bytes", rendered.len());
        let lines: Vec<&str> = rendered.lines().collect();
        assert!(lines[1].starts_with(" 1 | ...") && lines[1].ends_with("..."), "{}", lines[1]);
        // The caret is under `fo`.
        let caret = lines[2].find('^').unwrap();
        assert_eq!(&lines[1][caret..caret + 4], "fo()", "{}\n{}", lines[1], lines[2]);
        assert!(lines[2].ends_with("^~"), "{}", lines[2]);
        // Near the start of the line the window starts there too.
        let src = Source::new("stdin", format!("BEGIN {{ fo(); {} }}", "$a = 1;".repeat(1000)));
        let rendered = render(&Diagnostic::error("unknown function `fo`", Span::new(8, 10)), &src);
        assert!(rendered.lines().nth(1).unwrap().starts_with(" 1 | BEGIN { fo(); $a"), "{}", rendered);
        assert!(rendered.lines().nth(2).unwrap().ends_with("|         ^~"), "{}", rendered);
    }

    #[test]
    fn line_and_column_on_later_lines() {
        let src = Source::new("s.rt", "a\nbc\n  d");
        assert_eq!(src.line_col(7), (3, 3));
        assert_eq!(src.line_text(2), "bc");
    }

    #[test]
    fn closest_finds_typos_only() {
        assert_eq!(closest("prinf", ["printf", "print", "exit"]), Some("printf"));
        assert_eq!(closest("prnt", ["printf", "print", "exit"]), Some("print"));
        assert_eq!(closest("sys_enter_opnat", ["sys_enter_openat", "sys_exit_openat"]), Some("sys_enter_openat"));
        assert_eq!(closest("zzzz", ["printf"]), None);
    }
}
