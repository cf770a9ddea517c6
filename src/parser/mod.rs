//! Source text → AST (`ast::Program`), driven by `grammar.pest` at the
//! repository root. Syntax errors become `Diagnostic`s in plain words.

pub mod ast;
mod build;
pub mod dump;
mod expr;
mod literal;
pub use literal::parse_int;
pub mod macros;
mod pairs;
pub mod preprocess;

use crate::diagnostic::Diagnostic;
use crate::span::Span;
use pest::Parser;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar.pest"]
pub(crate) struct Grammar;

/// Parses a whole program; one nested more than `nesting::MAX_NESTING`
/// levels is an error at the place it gets too deep.
pub fn parse(source: &str) -> Result<ast::Program, Vec<Diagnostic>> {
    crate::nesting::with_stack(|| {
        let mut pairs = Grammar::parse(Rule::program, source).map_err(|e| vec![syntax_error(source, e)])?;
        let program = pairs.next().ok_or_else(|| {
            vec![Diagnostic::error_nowhere("internal error, please report: the parser produced no program")]
        })?;
        build::program(program)
    })
}

/// Translates pest's error (rules it expected) into a readable message.
fn syntax_error(source: &str, e: pest::error::Error<Rule>) -> Diagnostic {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    if let Some(d) = unterminated(source, pos) {
        return d;
    }
    // pest stops where its own recursion would leave too little native
    // stack: far past the nesting limit.
    if let pest::error::ErrorVariant::CustomError { message } = &e.variant {
        if message.contains("limit reached") {
            let end = pos + source[pos..].chars().next().map_or(0, char::len_utf8);
            return pairs::too_deep(Span::new(pos, end));
        }
    }
    let found = found_text(source, pos);
    // At the end of input the bracket left open is the whole story: point at it.
    if source[pos..].trim().is_empty() {
        if let Some((open, closer)) = innermost_open(source, pos) {
            let ch = source.as_bytes()[open] as char;
            return Diagnostic::error(
                format!("syntax error: unexpected end of input: `{ch}` is never closed"),
                Span::new(open, open + 1),
            )
            .with_help(format!("add {closer} at the end"));
        }
    }
    let message = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut words: Vec<&str> = positives.iter().filter_map(|r| rule_words(*r)).collect();
            words.sort_unstable();
            words.dedup();
            // After a complete expression an operator could always follow;
            // the bracket left open is what the user most likely forgot.
            if words.iter().all(|w| matches!(*w, "an operator" | "an assignment" | "`[`")) {
                if let Some((_, closer)) = innermost_open(source, pos) {
                    words = vec![if closer == "`}`" { "`;` or `}`" } else { closer }];
                }
            }
            if words.is_empty() {
                format!("syntax error: unexpected {}", found)
            } else {
                format!("syntax error: expected {}, found {}", join_or(&words), found)
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    let end = pos + source[pos..].chars().next().map_or(0, char::len_utf8);
    Diagnostic::error(message, Span::new(pos, end))
}

/// An unclosed string or comment before `pos` explains the error better
/// than what the grammar expected at `pos`.
fn unterminated(source: &str, pos: usize) -> Option<Diagnostic> {
    let mut in_string: Option<usize> = None;
    let mut in_comment: Option<usize> = None;
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() && i <= pos {
        match (in_string, in_comment, bytes[i]) {
            (None, None, b'"') => in_string = Some(i),
            (Some(_), _, b'\\') => i += 1,
            (Some(_), _, b'"') => in_string = None,
            (Some(start), _, b'\n') => {
                return Some(Diagnostic::error("unterminated string literal", Span::new(start, start + 1)))
            }
            (None, None, b'/') if bytes.get(i + 1) == Some(&b'*') => {
                in_comment = Some(i);
                i += 1;
            }
            (None, Some(_), b'*') if bytes.get(i + 1) == Some(&b'/') => {
                in_comment = None;
                i += 1;
            }
            (None, None, b'/') if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(start) = in_string {
        return Some(Diagnostic::error("unterminated string literal", Span::new(start, start + 1)));
    }
    in_comment.map(|start| Diagnostic::error("unterminated comment", Span::new(start, start + 2)))
}

/// What closes the innermost bracket still open at `pos` (strings and
/// comments skipped).
fn innermost_open(source: &str, pos: usize) -> Option<(usize, &'static str)> {
    let mut stack = Vec::new();
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < pos.min(bytes.len()) {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'{' | b'(' | b'[' => stack.push(i),
            b'}' | b')' | b']' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    stack.last().map(|&at| {
        let closer = match bytes[at] {
            b'(' => "`)`",
            b'[' => "`]`",
            _ => "`}`",
        };
        (at, closer)
    })
}

fn found_text(source: &str, pos: usize) -> String {
    let rest = &source[pos..];
    match rest.chars().next() {
        None => "end of input".into(),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            format!("`{}`", word)
        }
        Some('\n') => "end of line".into(),
        Some(c) if c.is_control() => format!("the control character U+{:04X}", c as u32),
        Some(c) if crate::raw_text::raw_byte(c).is_some() => {
            format!("the byte 0x{:02x}, which is not UTF-8 text", crate::raw_text::raw_byte(c).unwrap_or_default())
        }
        Some(c) => format!("`{}`", c),
    }
}

fn join_or(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// The words a rule stands for in "expected ..." messages; `None` hides it.
fn rule_words(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of input",
        Rule::probe | Rule::attach_points | Rule::attach_point => "a probe",
        Rule::predicate => "a predicate `/.../`",
        Rule::block => "`{`",
        Rule::angle_block => "`<`",
        Rule::stmts | Rule::angle_stmts => "a statement",
        Rule::if_stmt | Rule::unroll_stmt | Rule::while_stmt | Rule::for_stmt | Rule::jump_stmt => "a statement",
        Rule::assign_stmt | Rule::expr_stmt | Rule::angle_assign | Rule::angle_expr_stmt => "a statement",
        Rule::assign_op => "an assignment",
        Rule::expr
        | Rule::angle_expr
        | Rule::unary
        | Rule::paren
        | Rule::call
        | Rule::ident
        | Rule::int_lit
        | Rule::string => "an expression",
        Rule::map | Rule::var | Rule::positional | Rule::positional_count | Rule::boolean => "an expression",
        Rule::sizeof_expr | Rule::offsetof_expr | Rule::record => "an expression",
        Rule::pre_inc
        | Rule::pre_dec
        | Rule::neg
        | Rule::not
        | Rule::bitnot
        | Rule::deref
        | Rule::addr
        | Rule::cast => "an expression",
        Rule::ternary | Rule::or | Rule::and | Rule::bor | Rule::bxor | Rule::band | Rule::eq | Rule::ne => {
            "an operator"
        }
        Rule::le | Rule::ge | Rule::lt | Rule::gt | Rule::shl | Rule::shr | Rule::add | Rule::sub => "an operator",
        Rule::mul | Rule::div | Rule::rem => "an operator",
        Rule::post_inc | Rule::post_dec | Rule::arrow | Rule::dot | Rule::index => "an operator",
        Rule::field_name => "a field name",
        Rule::map_keys => "`[`",
        Rule::cast_type | Rule::c_type | Rule::c_base | Rule::int_type_name | Rule::c_int_words => "a type",
        Rule::c_ident => "a name",
        Rule::config_item => "a config setting",
        Rule::config_value => "a value",
        Rule::field_def | Rule::field_declarator => "a field declaration",
        Rule::struct_def => "a struct definition",
        Rule::enum_def => "an enum definition",
        Rule::include => "`#include`",
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
