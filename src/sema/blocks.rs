//! Block expressions (`{ stmts; value }`, and macro bodies expanded at their
//! uses), `if` and `?:` whose branches run statements, and the types `let`
//! declares. A block's statements are hoisted before the statement the
//! block is in (`Checker::pre`), so code generation sees only statements
//! and plain values: output records and map updates then never wait on
//! statements run in the middle of them.

use super::check::Checker;
use super::expr::none;
use super::typed::*;
use crate::parser::ast::{BlockExpr, DeclType, Expr};
use crate::span::Span;
use crate::types::Type;

impl<'a> Checker<'a> {
    /// `{ stmts; value }`: the statements go to `pre`, in a scope that
    /// also holds the value. `void_ok`: the block may end without a value.
    pub fn block_expr(&mut self, b: &BlockExpr, span: Span, void_ok: bool) -> TExpr {
        if let Some(x) = &b.expansion {
            self.expansions.push(x.clone());
        }
        self.open_scope();
        let stmts = self.stmts(&b.stmts);
        self.pre.extend(stmts);
        let value = match &b.value {
            Some(v) => {
                self.void_ok = void_ok;
                self.expr(v)
            }
            None => {
                if !void_ok {
                    self.error(span, "this block has no value: it ends with a statement");
                }
                none(span)
            }
        };
        self.close_scope();
        if b.expansion.is_some() {
            self.expansions.pop();
        }
        value
    }

    /// Checks `e`, whose value may be nothing when `void_ok`, and returns it
    /// with the statements it needs run first (instead of adding them to
    /// `pre`).
    pub fn expr_with_pre(&mut self, e: &Expr, void_ok: bool) -> (TExpr, Vec<TStmt>) {
        let outer = std::mem::take(&mut self.pre);
        self.void_ok = void_ok;
        let te = self.expr(e);
        (te, std::mem::replace(&mut self.pre, outer))
    }

    /// `c ? a : b` whose branches run statements (block expressions,
    /// macros, `printf()` in a statement): an `if` that leaves the value in a
    /// hidden variable (or, when it has none, is just the `if`).
    pub fn branching(
        &mut self,
        cond: TExpr,
        then: (TExpr, Vec<TStmt>),
        els: (TExpr, Vec<TStmt>),
        ty: Type,
        span: Span,
    ) -> TExpr {
        let ((t, mut then_pre), (e, mut els_pre)) = (then, els);
        if ty == Type::None {
            self.pre.push(TStmt { kind: TStmtKind::If { cond, then: then_pre, els: els_pre }, span });
            return none(span);
        }
        let var = self.hidden_var(ty.clone());
        then_pre.push(TStmt { kind: TStmtKind::SetVar { var, value: t }, span });
        els_pre.push(TStmt { kind: TStmtKind::SetVar { var, value: e }, span });
        self.pre.push(TStmt { kind: TStmtKind::If { cond, then: then_pre, els: els_pre }, span });
        TExpr { kind: TExprKind::Var(var), ty, span }
    }

    /// The type a `let` names: `int32`, `struct task_struct *`, or
    /// `typeof(expr)` (the expression is checked for its type only).
    pub fn decl_type(&mut self, ty: &DeclType) -> Option<Type> {
        match ty {
            DeclType::Name(name) => self.type_name(name),
            DeclType::Typeof(e) => {
                let (te, _) = self.expr_with_pre(e, false);
                match te.ty {
                    Type::None | Type::Unknown => None,
                    // An integer literal is an int64.
                    t => Some(t),
                }
            }
        }
    }
}
