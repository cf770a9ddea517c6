//! Where runtime messages say they come from: spans of the program turned
//! into places as bpftrace v0.26 prints them (`stdin:1:9-62`, with the
//! source line and `~` under the span), for `errorf()` and `warnf()`.

use crate::diagnostic::Source;
use crate::output::Place;
use crate::sema::manifest::{Action, Manifest, PrintfKind, StdlibPlace};
use crate::span::Span;

/// The place of `span`: `file:line:col-endcol` (the end column is the
/// first one after the span), or `file:line-endline` when it spans lines;
/// tabs count as 4 columns in the marker line, as bpftrace draws it.
pub fn place(source: &Source, span: Span) -> Place {
    let (line, col) = source.line_col(span.start);
    let (end_line, end_col) = source.line_col(span.end);
    let file = source.name.clone();
    if end_line != line {
        let context = (line..=end_line).map(|l| source.line_text(l).to_string()).collect();
        return Place { location: format!("{}:{}-{}", file, line, end_line), file, line, col, context };
    }
    let (mut shown, mut marker) = (String::new(), String::new());
    for (i, c) in source.line_text(line).chars().enumerate() {
        let width = if c == '\t' { 4 } else { 1 };
        match c {
            '\t' => shown.push_str("    "),
            c => shown.push(c),
        }
        if i + 1 < end_col {
            marker.push_str(&(if i + 1 < col { " " } else { "~" }).repeat(width));
        }
    }
    Place { location: format!("{}:{}:{}-{}", file, line, col, end_col), file, line, col, context: vec![shown, marker] }
}

/// A place in bpftrace's standard library (no source to show).
fn stdlib_place(at: &StdlibPlace) -> Place {
    Place {
        file: at.file.to_string(),
        line: at.line,
        col: at.col,
        location: format!("{}:{}:{}-{}", at.file, at.line, at.col, at.end_col),
        context: vec![],
    }
}

/// For each action, by id: where an `errorf()`/`warnf()` was called and
/// the macro uses it was expanded from (`None` for other actions).
pub fn message_places(manifest: &Manifest, source: &Source) -> Vec<Option<(Place, Vec<Place>)>> {
    manifest
        .actions
        .iter()
        .map(|a| match a {
            Action::Printf { span, kind: PrintfKind::Error | PrintfKind::Warning, expanded_from, stdlib, .. } => {
                let uses = expanded_from.iter().map(|s| place(source, *s));
                Some(match stdlib {
                    Some(at) => (stdlib_place(at), std::iter::once(place(source, *span)).chain(uses).collect()),
                    None => (place(source, *span), uses.collect()),
                })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_read_as_bpftrace_prints_them() {
        let source = Source::new("stdin", "begin {\n\terrorf(\"x\"); }\n");
        let start = source.text.find("errorf").unwrap() as u32;
        let p = place(&source, Span::new(start as usize, start as usize + 11));
        assert_eq!(p.location, "stdin:2:2-13");
        assert_eq!((p.line, p.col), (2, 2));
        assert_eq!(p.context, vec!["    errorf(\"x\"); }".to_string(), "    ~~~~~~~~~~~".to_string()]);
        let across = place(&source, Span::new(0, start as usize + 3));
        assert_eq!(across.location, "stdin:1-2");
    }
}
