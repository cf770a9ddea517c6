//! Scratch variables, scoped by block (bpftrace 0.22+): a variable lives in
//! the block that first assigns or declares it (`let`), and a block's
//! variables end with it; there is no shadowing. Each variable is a slot of
//! its own (`VarId`); its type is what the checker's passes settled on.

use super::check::{unify, Checker};
use super::expr::{int_literal, none};
use super::scope::{Scopes, Slot};
use super::typed::*;
use crate::diagnostic::Diagnostic;
use crate::span::Span;
use crate::types::{Type, I64};
use std::collections::HashMap;

impl<'a> Checker<'a> {
    /// A probe starts with one scope.
    pub fn reset_scopes(&mut self) {
        self.scopes = Scopes { stack: vec![HashMap::new()], ..Scopes::default() };
    }

    pub fn open_scope(&mut self) {
        self.scopes.stack.push(HashMap::new());
        self.scopes.opened += 1;
        self.scopes.path.push(self.scopes.opened);
    }

    pub fn close_scope(&mut self) {
        self.scopes.path.pop();
        if let Some(scope) = self.scopes.stack.pop() {
            self.scopes.ended.extend(scope.into_iter().map(|(name, slot)| (name, slot.origin)));
        }
    }

    /// A new slot in the innermost scope, typed with what earlier passes
    /// learned about it.
    fn new_var(&mut self, name: &str, origin: Span, declared: Option<Type>, unassigned: bool) -> VarId {
        let id = self.vars.len();
        let ty = declared.clone().or_else(|| self.var_types.get(&(self.prog, id)).cloned()).unwrap_or(Type::Unknown);
        self.vars.push(VarInfo { name: name.to_string(), ty, scope: self.scopes.path.clone() });
        let slot = Slot { id, origin, unassigned, declared };
        self.scopes.stack.last_mut().expect("a probe has a scope").insert(name.to_string(), slot);
        id
    }

    /// A variable the program cannot name (the value of a ternary whose
    /// branches run statements, the start of a range loop).
    pub fn hidden_var(&mut self, ty: Type) -> VarId {
        let id = self.vars.len();
        self.vars.push(VarInfo { name: format!("$$hidden{}", id), ty, scope: self.scopes.path.clone() });
        id
    }

    /// `$name` read.
    pub fn read_var(&mut self, name: &str, span: Span) -> TExpr {
        if let Some(slot) = self.scopes.find(name) {
            let (id, unassigned) = (slot.id, slot.unassigned);
            if unassigned {
                self.warn(span, format!("`${}` is read before it is assigned: it reads as zero", name));
            }
            let mut ty = self.vars[id].ty.clone();
            if ty == Type::Unknown && unassigned && self.zero_unset {
                // `let $x;` that nothing types: the zero it holds is an int64.
                ty = I64;
                self.settle_var(name, id, &ty, span);
            }
            return TExpr { kind: TExprKind::Var(id), ty, span };
        }
        let mut d = match self.scopes.ended.get(name) {
            Some(&origin) => Diagnostic::error(format!("`${}` is not defined here: its block has ended", name), span)
                .with_label(origin, "it was defined in this block's scope")
                .with_help(format!("declare it before that block: `let ${};`", name)),
            None => Diagnostic::error(format!("undefined variable `${}`", name), span),
        };
        if d.labels.is_empty() {
            let known: Vec<String> = self.scopes.stack.iter().flat_map(|s| s.keys().cloned()).collect();
            d = match crate::diagnostic::closest(name, known.iter().map(String::as_str)) {
                Some(s) => d.with_help(format!("did you mean `${}`?", s)),
                // bpftrace's rule: unlike an unset map, a variable has no value to read.
                None => d.with_help(format!("assign `${}` before reading it; only maps read as zero when unset", name)),
            };
        }
        self.report(d);
        none(span)
    }

    /// The variable `$name` for an assignment of `value`: the visible one,
    /// or a new one in the innermost scope. Returns it with the value to
    /// store (converted to a declared type).
    pub fn assign_var(&mut self, name: &str, value: TExpr, span: Span) -> (VarId, TExpr) {
        let found = self.scopes.find(name).map(|slot| {
            slot.unassigned = false;
            (slot.id, slot.declared.clone())
        });
        let (id, declared) = match found {
            Some(found) => found,
            None => (self.new_var(name, span, None, false), None),
        };
        let value = match declared {
            Some(ty) => self.convert_to_declared(name, value, &ty),
            None => {
                self.settle_var(name, id, &value.ty, span);
                value
            }
        };
        (id, value)
    }

    /// `let $name [: ty]`: a new variable in the innermost scope.
    pub fn declare_var(&mut self, name: &str, declared: Option<Type>, assigned: bool, span: Span) -> VarId {
        if let Some(slot) = self.scopes.find(name) {
            let origin = slot.origin;
            self.report(
                Diagnostic::error(format!("`${}` is already defined: a variable cannot be declared again", name), span)
                    .with_label(origin, "defined here")
                    .with_help("assign it instead (`$x = ...`), or use another name"),
            );
        }
        self.new_var(name, span, declared, !assigned)
    }

    /// The variable of a `for` loop, in the loop's own scope.
    pub fn loop_var(&mut self, name: &str, ty: Type, span: Span) -> VarId {
        if let Some(slot) = self.scopes.find(name) {
            let origin = slot.origin;
            self.report(
                Diagnostic::error(format!("the loop variable `${}` is already defined", name), span)
                    .with_label(origin, "defined here")
                    .with_help("give the loop variable a name of its own"),
            );
        }
        let id = self.new_var(name, span, None, false);
        self.settle_var(name, id, &ty, span);
        id
    }

    /// The visible variable `$name` that `++`/`--` update.
    pub fn updated_var(&mut self, name: &str) -> Option<VarId> {
        self.scopes.find(name).map(|slot| {
            slot.unassigned = false;
            slot.id
        })
    }

    /// Learns that variable `id` holds `ty` (widening what earlier passes
    /// learned; a conflict is an error).
    pub fn settle_var(&mut self, name: &str, id: VarId, ty: &Type, span: Span) {
        let key = (self.prog, id);
        let learned = self.var_types.get(&key).cloned();
        let merged = match &learned {
            Some(old) => match unify(old, ty) {
                Some(t) => t,
                None => {
                    if *ty != Type::None {
                        self.error(
                            span,
                            format!("type mismatch for `${}`: assigning {} but it holds {}", name, ty, old),
                        );
                    }
                    old.clone()
                }
            },
            None => ty.clone(),
        };
        if learned.as_ref() != Some(&merged) && merged.is_known() {
            self.var_types.insert(key, merged.clone());
            self.changed = true;
        }
        self.vars[id].ty = merged;
    }

    /// A value assigned to a variable declared with a type: integers are
    /// converted (truncated or extended), other values must be of the type.
    fn convert_to_declared(&mut self, name: &str, value: TExpr, ty: &Type) -> TExpr {
        let span = value.span;
        match (&value.ty, ty) {
            (Type::None | Type::Unknown, _) => value,
            (a, b) if a == b => value,
            (Type::Int { .. }, Type::Int { .. }) => match value.kind {
                TExprKind::Int(v) if fits(v, ty) => TExpr { ty: ty.clone(), ..int_literal(v, span) },
                _ => TExpr { kind: TExprKind::IntCast(Box::new(value)), ty: ty.clone(), span },
            },
            (Type::Ptr { .. } | Type::Int { .. }, Type::Ptr { .. }) => TExpr { ty: ty.clone(), ..value },
            (Type::Str { .. }, Type::Str { .. }) if unify(&value.ty, ty).as_ref() == Some(ty) => value,
            (a, b) => {
                let msg = format!("`${}` is declared {}: it cannot hold {}", name, b, a);
                self.error(span, msg);
                none(span)
            }
        }
    }
}

/// Whether the integer constant `v` (its 64 bits) is a value of `ty`.
fn fits(v: u64, ty: &Type) -> bool {
    let Type::Int { bytes, signed } = *ty else { return false };
    let bits = 8 * bytes as u32;
    if bits == 64 {
        return true;
    }
    if signed {
        let v = v as i64;
        v >= -(1i64 << (bits - 1)) && v < (1i64 << (bits - 1))
    } else {
        v < (1u64 << bits)
    }
}
