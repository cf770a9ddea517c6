//! The map functions that are values (bpftrace v0.26): `delete(@m, k)`
//! (true when there was an entry to delete), `has_key(@m, k)`,
//! `find(@m, k, $v)` and `len(@m)`, with v0.26's errors for maps with and
//! without keys.

use super::check::Checker;
use super::expr::none;
use super::manifest::MapValue;
use super::typed::*;
use crate::parser::ast::{Expr, ExprKind};
use crate::span::Span;
use crate::types::Type;

impl<'a> Checker<'a> {
    /// The map functions of this module; `None` when `name` is not one.
    pub fn map_function(&mut self, name: &str, name_span: Span, args: &[Expr], span: Span) -> Option<TExpr> {
        let (lo, hi) = match name {
            "delete" => (1, 2),
            "has_key" => (2, 2),
            "find" => (3, 3),
            // `len(ustack)`: a stack's frames (`calls`).
            "len" if matches!(args, [a] if !matches!(a.kind, ExprKind::Map { .. })) => return None,
            "len" => (1, 1),
            _ => return None,
        };
        if !self.arity(name, name_span, args, lo, hi) {
            return Some(none(span));
        }
        let ExprKind::Map { name: map_name, keys } = &args[0].kind else {
            let msg = match name {
                "delete" => "delete() takes a map and a key: `delete(@x, key)`".to_string(),
                _ => format!("{}() takes a map as its first argument", name),
            };
            self.error(args[0].span, msg);
            return Some(none(span));
        };
        // `delete(@m[k])`: the entry named as a map access (bpftrace <= 0.21).
        if name == "delete" && !keys.is_empty() {
            if args.len() == 2 {
                self.error(args[0].span, "delete() expects a map with no keys for the first argument");
                return Some(none(span));
            }
            let map = self.map_id(map_name, args[0].span);
            let keys = self.map_keys(map, keys, args[0].span);
            return Some(self.delete(map, keys, span));
        }
        if !keys.is_empty() {
            self.error(args[0].span, format!("{}() takes a whole map, like `{}(@x)`", name, name));
            return Some(none(span));
        }
        let map = self.map_id(map_name, args[0].span);
        let what = match name {
            "delete" if args.len() == 1 => {
                if self.has_keys(map) == Some(true) {
                    self.error(
                        span,
                        "call to delete() with a single argument expects a map without explicit keys (scalar map)",
                    );
                    return Some(none(span));
                }
                let keys = self.map_keys(map, &[], args[0].span);
                return Some(self.delete(map, keys, span));
            }
            "delete" => "delete() with two arguments",
            "has_key" => "has_key()",
            "find" => "find",
            _ => "len()",
        };
        if self.has_keys(map) == Some(false) {
            self.error(span, format!("call to {} expects a map with explicit keys (non-scalar map)", what));
            return Some(none(span));
        }
        if self.maps[map].value.as_ref().is_some_and(MapValue::bucketed) {
            self.unsupported(span, format!("{} of a hist()/lhist() map", what.trim_end_matches("()")));
            return Some(none(span));
        }
        if name == "len" {
            return Some(self.map_len(map, span));
        }
        let key = self.expr(&args[1]);
        let keys = self.typed_map_keys(map, vec![key], args[1].span);
        Some(match name {
            "delete" => self.delete(map, keys, span),
            "has_key" => TExpr { kind: TExprKind::MapHas { map, keys }, ty: Type::Bool, span },
            _ => self.find(map, keys, &args[2], span),
        })
    }

    /// Whether the map has keys, once an access has decided it.
    fn has_keys(&self, map: MapId) -> Option<bool> {
        self.maps[map].keys.as_ref().map(|k| !k.is_empty())
    }

    fn delete(&mut self, map: MapId, keys: Vec<TExpr>, span: Span) -> TExpr {
        self.maps[map].shrinks = true;
        if self.maps[map].value.as_ref().is_some_and(MapValue::bucketed) {
            self.unsupported(span, "delete() of one key of a hist()/lhist() map (use clear())");
            return none(span);
        }
        TExpr { kind: TExprKind::MapDelete { map, keys }, ty: Type::Bool, span }
    }

    /// `len(@m)`: the entry count the generated code keeps for the map.
    fn map_len(&mut self, map: MapId, span: Span) -> TExpr {
        if !self.maps[map].counted {
            self.maps[map].counted = true;
            self.changed = true;
        }
        TExpr { kind: TExprKind::MapLen(map), ty: crate::types::I64, span }
    }

    /// `find(@m, k, $v)`: `$v` takes the map's value type (it may be
    /// declared without one: `let $v;`).
    fn find(&mut self, map: MapId, keys: Vec<TExpr>, var: &Expr, span: Span) -> TExpr {
        let ExprKind::Var(var_name) = &var.kind else {
            self.error(var.span, "find() stores the value in a variable: `find(@m, key, $v)`");
            return none(span);
        };
        let value = match self.maps[map].value.clone() {
            Some(v) => match v.read_type() {
                Some(ty) => ty,
                None => {
                    self.unsupported(span, format!("find() in a {} map", v.describe()));
                    return none(span);
                }
            },
            None => Type::Unknown,
        };
        let read = TExpr { kind: TExprKind::MapRead { map, keys: keys.clone() }, ty: value.clone(), span };
        let (id, _) = self.assign_var(var_name, read, var.span);
        // The value is copied as the map holds it: a variable declared with
        // another type must hold the same bytes (integers of any width do).
        let declared = self.vars[id].ty.clone();
        let fits = declared == value
            || (declared.in_register() && value.in_register())
            || (declared.is_str() && value.is_str())
            || !value.is_known();
        if !fits && self.final_pass {
            let msg = format!("find(): `${}` is {} but `{}` holds {}", var_name, declared, self.maps[map].name, value);
            self.error(var.span, msg);
            return none(span);
        }
        TExpr { kind: TExprKind::MapFind { map, keys, var: id }, ty: Type::Bool, span }
    }
}
