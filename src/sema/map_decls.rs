//! Map declarations (bpftrace 0.22+): `let @name = lruhash(100);` gives a map
//! its BPF map type and its number of entries.

use super::check::Checker;
use super::manifest::{Declared, MapValue};
use crate::diagnostic::Diagnostic;
use crate::parser::ast::{ExprKind, MapDecl};

/// The declarable kinds: (name, LRU, per CPU).
const KINDS: &[(&str, bool, bool)] =
    &[("hash", false, false), ("lruhash", true, false), ("percpuhash", false, true), ("percpulruhash", true, true)];

impl<'a> Checker<'a> {
    /// `import "file";` (bpftrace 0.25+) is parsed but not followed yet.
    pub fn imports(&mut self, imports: &[crate::parser::ast::Import]) {
        for i in imports {
            self.unsupported(i.span, "`import`");
        }
    }

    pub fn declare_maps(&mut self, decls: &[MapDecl]) {
        for d in decls {
            let Some(&(_, lru, per_cpu)) = KINDS.iter().find(|(k, _, _)| *k == d.kind) else {
                let names: Vec<&str> = KINDS.iter().map(|(k, _, _)| *k).collect();
                self.report(
                    Diagnostic::error(format!("invalid map type `{}`", d.kind), d.span)
                        .with_help(format!("map types: {}", names.join(", "))),
                );
                continue;
            };
            let max_entries = match d.args.as_slice() {
                [n] => match n.kind {
                    ExprKind::Int(v) if v >= 1 && v <= u32::MAX as u64 => v as u32,
                    _ => {
                        self.error(n.span, "the number of entries must be an integer from 1 to 4294967295");
                        continue;
                    }
                },
                _ => {
                    self.error(d.span, format!("`{}()` takes one argument: the number of entries", d.kind));
                    continue;
                }
            };
            let id = self.map_id(&d.name, d.span);
            let name = self.maps[id].name.clone();
            if let Some((_, first)) = self.maps[id].declared {
                self.report(
                    Diagnostic::error(format!("`{}` is declared twice", name), d.span)
                        .with_label(first, "first declared here"),
                );
                continue;
            }
            self.maps[id].used = false;
            self.maps[id].declared = Some((Declared { lru, per_cpu, max_entries }, d.span));
        }
    }

    /// After the probes: declared maps that nothing uses, and per-CPU
    /// declarations of maps that hold plain values.
    pub fn check_declared_maps(&mut self) {
        for i in 0..self.maps.len() {
            let Some((decl, span)) = self.maps[i].declared else { continue };
            let name = self.maps[i].name.clone();
            if !self.maps[i].used {
                self.diags.push(Diagnostic::warning(format!("unused map `{}`", name), span));
                // Still created, as declared: an integer without keys.
                self.maps[i].keys.get_or_insert_with(Vec::new);
                self.maps[i].value.get_or_insert(MapValue::Plain(crate::types::I64));
            }
            if decl.per_cpu && matches!(self.maps[i].value, Some(MapValue::Plain(_))) {
                self.diags.push(
                    Diagnostic::error(format!("`{}` is declared per CPU but holds a plain value", name), span)
                        .with_help(
                            "a per-CPU map holds an aggregation (`count()`, `sum()`, ...); use `hash` or `lruhash`",
                        ),
                );
            }
        }
    }
}
