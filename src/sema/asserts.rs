//! Assertions of bpftrace v0.26's standard library: `assert(cond, msg)`
//! checked when the probe runs (an error message, then `exit(1)`), and
//! `fail(fmt, ...)` and `static_assert(cond, msg)` when the program is
//! compiled, unless they sit in a branch a constant condition never takes.

use super::check::Checker;
use super::expr::{int_literal, none};
use super::manifest::{Action, PrintfKind, ASSERT_PLACE};
use super::typed::*;
use crate::output::printf::{format, parse_format};
use crate::output::value::Value;
use crate::parser::ast::{Expr, ExprKind};
use crate::span::Span;
use crate::types::Type;

impl<'a> Checker<'a> {
    /// The assertion statements; `None` when `name` is not one of them.
    pub fn assertion(&mut self, name: &str, name_span: Span, args: &[Expr], span: Span) -> Option<TStmtKind> {
        Some(match name {
            "assert" => self.assert(name_span, args, span),
            "fail" => {
                if let Some(message) = self.constant_format("fail", args, span) {
                    self.fail_unless_unreachable(span, message);
                }
                TStmtKind::Expr(none(span))
            }
            "static_assert" => {
                if self.arity(name, name_span, args, 2, 2) {
                    self.static_assert(&args[0], &args[1]);
                }
                TStmtKind::Expr(none(span))
            }
            _ => return None,
        })
    }

    /// `assert(cond, msg)`: when `cond` is false, `errorf("assert failed:
    /// %s", msg)` and `exit(1)`, as bpftrace's stdlib macro (whose place in
    /// `stdlib/base.bt` the message names, then this use).
    fn assert(&mut self, name_span: Span, args: &[Expr], span: Span) -> TStmtKind {
        if !self.arity("assert", name_span, args, 2, 2) {
            return TStmtKind::Expr(none(span));
        }
        let cond = self.expr(&args[0]);
        self.expect_condition(&cond);
        let msg = self.expr(&args[1]);
        if !msg.ty.prints_as_text() && msg.ty.is_known() {
            let text = format!("assert() takes a string as its message, not {}", msg.ty);
            self.error(msg.span, text);
            return TStmtKind::Expr(none(span));
        }
        let expanded_from = self.expansions.iter().rev().map(|x| x.call).collect();
        let message = Action::Printf {
            format: "assert failed: %s".into(),
            args: vec![msg.ty.clone()],
            span,
            kind: PrintfKind::Error,
            expanded_from,
            stdlib: Some(ASSERT_PLACE),
        };
        let report = TStmt { kind: self.emit(message, vec![msg]), span };
        self.actions.push(Action::Exit { code: true });
        let exit = TStmtKind::Exit { action: self.actions.len() - 1, code: Some(int_literal(1, span)) };
        let failed = TExpr { kind: TExprKind::Unary { op: UnaryOp::Not, expr: Box::new(cond) }, ty: Type::Bool, span };
        TStmtKind::If { cond: failed, then: vec![report, TStmt { kind: exit, span }], els: vec![] }
    }

    /// `static_assert(cond, msg)`: `cond` must be known when compiling.
    fn static_assert(&mut self, cond: &Expr, msg: &Expr) {
        let c = self.expr(cond);
        let ExprKind::Str(text) = &msg.kind else {
            self.error(msg.span, "static_assert() takes a string literal as its message");
            return;
        };
        match c.kind {
            TExprKind::Int(0) => self.fail_unless_unreachable(cond.span, String::from_utf8_lossy(text).into_owned()),
            TExprKind::Int(_) => {}
            _ if c.ty.is_known() => self.error(c.span, "static_assert() needs a condition known when compiling"),
            _ => {}
        }
    }

    /// `fail()`'s message: its format applied to its arguments, which must
    /// be literals.
    fn constant_format(&mut self, name: &str, args: &[Expr], span: Span) -> Option<String> {
        let (fmt, values) = self.formatted(name, args, span)?;
        let mut literals = Vec::new();
        for v in &values {
            literals.push(match (&v.kind, &v.ty) {
                (TExprKind::Int(n), Type::Bool) => Value::Bool(*n != 0),
                (TExprKind::Int(n), t) if t.is_signed() => Value::Int(*n as i64),
                (TExprKind::Int(n), _) => Value::UInt(*n),
                (TExprKind::Str(s), _) => Value::Str(s.clone()),
                _ => {
                    self.error(v.span, format!("{}() takes literals only: it is evaluated when compiling", name));
                    return None;
                }
            });
        }
        let pieces = parse_format(&fmt).ok()?;
        Some(String::from_utf8_lossy(&format(&pieces, &literals)).into_owned())
    }

    /// A compile-time failure, unless in a branch that never runs.
    fn fail_unless_unreachable(&mut self, span: Span, message: String) {
        if self.unreachable == 0 {
            self.error(span, message);
        }
    }
}
