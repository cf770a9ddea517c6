//! `getopt(name[, default[, description]])` (bpftrace v0.26): the program's
//! named options, given after `--` on the command line (`--name=value`,
//! `--name`). Each call is a constant of its default's type; options that
//! no call asks for, and `--help`, stop the run with bpftrace's messages.

use super::check::Checker;
use super::expr::{int_literal, none, str_literal};
use super::typed::*;
use crate::diagnostic::Diagnostic;
use crate::parser::ast::{Expr, ExprKind};
use crate::span::Span;
use crate::types::Type;

/// What a `getopt()` default says the option is.
enum Default {
    Bool(bool),
    Int(u64),
    Str(Vec<u8>),
}

impl<'a> Checker<'a> {
    pub fn getopt(&mut self, name_span: Span, args: &[Expr], span: Span) -> TExpr {
        if !self.arity("getopt", name_span, args, 1, 3) {
            return none(span);
        }
        let ExprKind::Str(name) = &args[0].kind else {
            self.error(args[0].span, "getopt() needs the option's name as a string literal");
            return none(span);
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let default = match args.get(1) {
            None => Default::Bool(false),
            Some(a) => {
                let v = self.expr(a);
                match (&v.kind, &v.ty) {
                    (TExprKind::Int(b), Type::Bool) => Default::Bool(*b != 0),
                    (TExprKind::Int(n), _) => Default::Int(*n),
                    (TExprKind::Str(s), _) => Default::Str(s.clone()),
                    _ if v.ty == Type::None => return none(span),
                    _ => {
                        self.error(v.span, "getopt() needs a literal default: a boolean, an integer or a string");
                        return none(span);
                    }
                }
            }
        };
        let description = match args.get(2).map(|a| &a.kind) {
            None => String::new(),
            Some(ExprKind::Str(d)) => String::from_utf8_lossy(d).into_owned(),
            Some(_) => {
                self.error(args[2].span, "getopt() needs its description as a string literal");
                return none(span);
            }
        };
        if !self.getopts.iter().any(|(n, _)| *n == name) {
            self.getopts.push((name.clone(), description));
        }
        // The last of repeated options wins.
        let given = self.env.named.iter().rev().find_map(|o| match o.split_once('=') {
            Some((n, v)) if n == name => Some(Some(v.to_string())),
            None if *o == name => Some(None),
            _ => None,
        });
        let bool_value = |b: bool| TExpr { kind: TExprKind::Int(b as u64), ty: Type::Bool, span };
        let invalid = |what: &str, value: &str| {
            Diagnostic::bare_error(format!(
                "ERROR: program command line option --{} invalid {} (value: {})",
                name, what, value
            ))
        };
        match (default, given) {
            (Default::Bool(b), None) => bool_value(b),
            (Default::Int(n), None) => {
                let mut v = int_literal(n, span);
                // A negative default stays an int64.
                if (n as i64) < 0 {
                    v.ty = Type::Int { bytes: 8, signed: true };
                }
                v
            }
            (Default::Str(s), None) => str_literal(s, span),
            (Default::Bool(_), Some(None)) => bool_value(true),
            (Default::Bool(_), Some(Some(v))) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "" => bool_value(true),
                "false" | "0" => bool_value(false),
                _ => {
                    self.report(invalid("boolean", &v));
                    none(span)
                }
            },
            (Default::Int(_), Some(value)) => {
                let text = value.unwrap_or_default();
                let parsed = super::expr::parse_int(&text).map(|n| (n as u64, n < 0 && text.trim().starts_with('-')));
                match parsed {
                    Some((n, negative)) => {
                        let mut v = int_literal(n, span);
                        if negative {
                            v.ty = Type::Int { bytes: 8, signed: true };
                        }
                        v
                    }
                    None => {
                        self.report(invalid("integer", &text));
                        none(span)
                    }
                }
            }
            (Default::Str(_), Some(value)) => str_literal(value.unwrap_or_default().into_bytes(), span),
        }
    }

    /// After the last pass: named options that no `getopt()` asks for (and
    /// `--help`) are errors that list the ones the program has.
    pub fn check_named_options(&mut self) {
        let unexpected: Vec<&str> = self
            .env
            .named
            .iter()
            .map(|o| o.split_once('=').map_or(o.as_str(), |(n, _)| n))
            .filter(|n| !self.getopts.iter().any(|(g, _)| g == n))
            .collect();
        if unexpected.is_empty() {
            return;
        }
        let help = unexpected.contains(&"help");
        let mut text = String::new();
        let others: Vec<String> = unexpected.iter().filter(|n| **n != "help").map(|n| format!("--{}", n)).collect();
        if !others.is_empty() {
            text.push_str(&format!("ERROR: unexpected program command line options: {}\n", others.join(", ")));
        }
        if self.getopts.is_empty() {
            text.push_str("HINT: no custom program options defined.");
        } else if help {
            text.push_str("HINT: expected program options:");
            for (name, description) in &self.getopts {
                text.push_str(&format!("\n--{}", name));
                if !description.is_empty() {
                    text.push_str(&format!(": {}", description));
                }
            }
        } else {
            let names: Vec<String> = self.getopts.iter().map(|(n, _)| format!("--{}", n)).collect();
            text.push_str(&format!("HINT: expected program options: {}", names.join(": ")));
        }
        self.diags.push(Diagnostic::bare_error(text));
    }
}
