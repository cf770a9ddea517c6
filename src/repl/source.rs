//! The session program's text, made of the inputs typed at the prompt, and
//! diagnostics shown against the input they point into (`input 3:1:12`).

use crate::diagnostic::{render, Diagnostic, Source};
use crate::span::Span;

/// One input inside the session program.
#[derive(Clone, Debug)]
pub struct Piece {
    /// Counts every input, accepted or not.
    pub number: usize,
    /// The input as typed.
    pub text: String,
    /// What goes into the program: statements are wrapped in a BEGIN probe.
    wrapped: String,
    /// Where `wrapped` starts in the session program, and where `text` does.
    start: usize,
    base: usize,
}

impl Piece {
    /// True when `span` points into this input (its wrapper included).
    pub fn contains(&self, span: Span) -> bool {
        (self.start..self.start + self.wrapped.len()).contains(&(span.start as usize))
    }

    /// `span` relative to the input's text, clamped to it.
    fn relative(&self, span: Span) -> Span {
        let at = |o: u32| (o as usize).saturating_sub(self.base).min(self.text.len());
        Span::new(at(span.start), at(span.end))
    }

    fn source(&self) -> Source {
        Source::new(format!("input {}", self.number), self.text.clone())
    }
}

#[derive(Default)]
pub struct Pieces {
    /// The accepted inputs, one after another.
    text: String,
    accepted: Vec<Piece>,
    count: usize,
}

/// Statements typed at the prompt run as a BEGIN probe of their own.
const STATEMENTS_OPEN: &str = "BEGIN {\n";
const STATEMENTS_CLOSE: &str = "\n}\n";

impl Pieces {
    /// The next input, placed after the accepted ones.
    pub fn next(&mut self, text: &str, statements: bool) -> Piece {
        self.count += 1;
        let (open, close) = if statements { (STATEMENTS_OPEN, STATEMENTS_CLOSE) } else { ("", "\n") };
        let start = self.text.len();
        Piece {
            number: self.count,
            text: text.to_string(),
            wrapped: format!("{}{}{}", open, text, close),
            start,
            base: start + open.len(),
        }
    }

    /// The session program with `piece` appended.
    pub fn combined_with(&self, piece: &Piece) -> Source {
        Source::new("session", format!("{}{}", self.text, piece.wrapped))
    }

    pub fn push(&mut self, piece: Piece) {
        self.text.push_str(&piece.wrapped);
        self.accepted.push(piece);
    }

    /// Renders `d`, a diagnostic of the session program with `current` appended.
    pub fn render(&self, d: &Diagnostic, current: &Piece) -> String {
        let Some(span) = d.span else { return render(d, &current.source()) };
        let owner = |s: Span| self.accepted.iter().chain([current]).find(|p| p.contains(s));
        let Some(piece) = owner(span) else { return render(d, &current.source()) };
        let mut shown = d.clone();
        shown.span = Some(piece.relative(span));
        shown.labels.clear();
        let mut elsewhere = Vec::new();
        for label in &d.labels {
            match owner(label.span) {
                Some(p) if p.number == piece.number => shown
                    .labels
                    .push(crate::diagnostic::Label { span: p.relative(label.span), message: label.message.clone() }),
                Some(p) => {
                    let (line, col) = p.source().line_col(p.relative(label.span).start);
                    elsewhere.push(format!("input {}:{}:{}: note: {}\n", p.number, line, col, label.message));
                }
                None => {}
            }
        }
        render(&shown, &piece.source()) + &elsewhere.concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_shown_relative_to_their_input() {
        let mut pieces = Pieces::default();
        let first = pieces.next("interval:s:1 { @x = 1; }", false);
        pieces.push(first);
        let second = pieces.next("@x = \"s\";", true);
        let program = pieces.combined_with(&second);
        let at = program.text.find("\"s\"").unwrap();
        let d = Diagnostic::error("type mismatch", Span::new(at, at + 3)).with_label(Span::new(15, 22), "first here");
        let text = pieces.render(&d, &second);
        assert!(text.starts_with("input 2:1:6-9: ERROR: type mismatch\n"), "{}", text);
        assert!(text.contains("@x = \"s\";"), "{}", text);
        assert!(text.ends_with("input 1:1:16: note: first here\n"), "{}", text);
        assert!(second.contains(Span::new(at, at + 1)) && !second.contains(Span::new(3, 4)));
    }
}
