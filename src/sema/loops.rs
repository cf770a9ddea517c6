//! `for` loops (bpftrace 0.21+): over a map's entries and over a range of
//! integers. The loop variable lives in the loop's scope; the body sees the
//! probe's variables (read and write) like any block.

use super::check::Checker;
use super::manifest::MapValue;
use super::typed::*;
use crate::parser::ast::{Block, Expr, ExprKind};
use crate::span::Span;
use crate::types::{Type, I64, U64};

impl<'a> Checker<'a> {
    /// `for ($i : start..end) { body }`
    pub fn for_range(&mut self, var: &str, start: &Expr, end: &Expr, body: &Block, span: Span) -> Option<TStmtKind> {
        let start = self.expr(start);
        let end = self.expr(end);
        for bound in [&start, &end] {
            if bound.ty.is_known() && !bound.ty.is_int() {
                self.error(bound.span, format!("a range is of integers, not {}", bound.ty));
            }
        }
        let ty = if start.ty.is_signed() || end.ty.is_signed() || !start.ty.is_int() { I64 } else { U64 };
        let base = self.hidden_var(ty.clone());
        self.open_scope();
        let var = self.loop_var(var, ty, span);
        let body = self.loop_body(body);
        self.close_scope();
        Some(TStmtKind::ForRange { var, start, end, base, body })
    }

    /// `for ($kv : @map) { body }`
    pub fn for_map(&mut self, var: &str, map: &Expr, body: &Block, span: Span) -> Option<TStmtKind> {
        let ExprKind::Map { name, .. } = &map.kind else { unreachable!("parser: a map loop names a map") };
        let id = self.map_id(name, map.span);
        let entry = self.entry_type(id, map.span);
        self.open_scope();
        let var = self.loop_var(var, entry, span);
        let body = self.loop_body(body);
        self.close_scope();
        Some(TStmtKind::ForMap { var, map: id, body })
    }

    fn loop_body(&mut self, body: &Block) -> Vec<TStmt> {
        self.loop_depth += 1;
        let body = self.block(body);
        self.loop_depth -= 1;
        body
    }

    /// `(key, value)` of a map's entries; `((k1, k2), value)` with several
    /// keys. Integers are 8 bytes, as the map holds them.
    fn entry_type(&mut self, map: MapId, span: Span) -> Type {
        let name = self.maps[map].name.clone();
        let keys = self.maps[map].keys.clone();
        let value = self.maps[map].value.clone();
        let key = match keys.as_deref() {
            None => return Type::Unknown,
            Some([]) => {
                self.error(span, format!("`{}` has no keys: a loop needs a map with keys", name));
                return Type::None;
            }
            Some([one]) => one.clone(),
            Some(many) => Type::Tuple(many.to_vec()),
        };
        let value = match value {
            None => return Type::Unknown,
            Some(MapValue::Plain(Type::Int { signed, .. })) => Type::Int { bytes: 8, signed },
            Some(MapValue::Plain(t)) => t,
            Some(MapValue::Count) => U64,
            Some(MapValue::Sum { signed } | MapValue::Min { signed } | MapValue::Max { signed }) => {
                Type::Int { bytes: 8, signed }
            }
            Some(MapValue::Avg) => I64,
            Some(other) => {
                self.unsupported(span, format!("a loop over a {} map", other.describe()));
                return Type::None;
            }
        };
        Type::Tuple(vec![key, value])
    }
}
