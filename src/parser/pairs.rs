//! Reading one pest pair: its span, the literal or type name it holds, and
//! the error for a pair nested past the limit. Shared by the statement
//! (`build`) and expression (`expr`) builders.

use super::ast::TypeName;
use super::literal::parse_int;
use super::Rule;
use crate::diagnostic::Diagnostic;
use crate::nesting::MAX_NESTING;
use crate::span::Span;
use pest::iterators::Pair;

pub type Result<T> = std::result::Result<T, Diagnostic>;

/// The error for a program nested deeper than `MAX_NESTING`, at the place
/// the limit is passed.
pub fn too_deep(at: Span) -> Diagnostic {
    Diagnostic::error(format!("the program nests too deeply here: more than {} levels", MAX_NESTING), at).with_help(
        "blocks, parentheses and operators each add a level; keep parts of the expression in variables, or split the blocks",
    )
}

pub fn span(pair: &Pair<Rule>) -> Span {
    Span::new(pair.as_span().start(), pair.as_span().end())
}

/// `unsigned   long` → `unsigned long`
pub fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn type_name(pair: Pair<Rule>) -> TypeName {
    let sp = span(&pair);
    let mut base = String::new();
    let mut pointer = 0;
    let mut array = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::pointer => pointer += 1,
            Rule::cast_dim => array = Some(p.into_inner().next().and_then(|n| n.as_str().parse::<u32>().ok())),
            _ => base = words(p.as_str()),
        }
    }
    TypeName { base, pointer, array, span: sp }
}

pub fn int_literal(pair: &Pair<Rule>) -> Result<u64> {
    parse_int(pair.as_str()).map_err(|e| Diagnostic::error(e.to_string(), span(pair)))
}

pub fn string_literal(pair: Pair<Rule>) -> Result<Vec<u8>> {
    let body = pair.into_inner().next().unwrap();
    let start = body.as_span().start();
    super::literal::unescape(body.as_str())
        .map_err(|(msg, a, b)| Diagnostic::error(msg, Span::new(start + a, start + b)))
}
