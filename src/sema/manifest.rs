//! The Manifest: every resource the checked program needs, computed before
//! codegen and shared with the runtime (bpftrace's "required resources").
//! Maps with their key/value layouts and kinds, output actions with their
//! record layouts, and the attach points of every program. The runtime never
//! re-infers a type: it decodes records and map entries from this.

use super::types::{tuple_layout, Layout, Type};
use crate::probe::Resolved;
use crate::span::Span;

#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// User maps (`@name`), indexed by `MapId`.
    pub maps: Vec<MapInfo>,
    /// Output actions, indexed by the action id at the start of each record.
    pub actions: Vec<Action>,
    /// Every concrete attach point, with the program that serves it.
    pub attach: Vec<AttachInfo>,
    /// Default string size (`BPFTRACE_STRLEN`, `config = { max_strlen = N }`).
    pub strlen: u32,
    /// Entries each map can hold.
    pub max_map_keys: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MapInfo {
    /// As written: `@x`, or `@` for the anonymous map.
    pub name: String,
    /// Types of the key values; empty for a map without keys.
    pub keys: Vec<Type>,
    pub value: MapValue,
    /// Where the map is first used (for messages).
    pub span: Span,
}

/// What a map stores under each key.
#[derive(Clone, Debug, PartialEq)]
pub enum MapValue {
    /// `@x = expr`
    Plain(Type),
    /// `count()`: one u64 per CPU, summed when read.
    Count,
    /// `sum(n)`: one 64-bit total per CPU, summed when read.
    Sum { signed: bool },
}

impl MapValue {
    /// True when the map keeps one value per CPU (a per-CPU hash map).
    pub fn per_cpu(&self) -> bool {
        !matches!(self, MapValue::Plain(_))
    }

    /// Bytes of one value (of one CPU's value for per-CPU maps).
    pub fn size(&self) -> u32 {
        match self {
            MapValue::Plain(t) => t.size().max(1),
            MapValue::Count | MapValue::Sum { .. } => 8,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            MapValue::Plain(t) => t.to_string(),
            MapValue::Count => "count()".into(),
            MapValue::Sum { .. } => "sum()".into(),
        }
    }
}

impl MapInfo {
    /// Layout of the key: the key values packed like a tuple; a map without
    /// keys uses one zero u64.
    pub fn key_layout(&self) -> Layout {
        if self.keys.is_empty() {
            Layout { offsets: vec![], size: 8 }
        } else {
            tuple_layout(&self.keys)
        }
    }

    /// The symbol of the BPF map: a C identifier derived from the name.
    pub fn bpf_name(&self, id: usize) -> String {
        let base: String =
            self.name.trim_start_matches('@').chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        format!("m{}_{}", id, base)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `printf(format, args...)`
    Printf { format: String, args: Vec<Type>, span: Span },
    /// `exit()`
    Exit,
}

impl Action {
    /// Types of the values that follow the 8-byte action id in a record.
    pub fn arg_types(&self) -> &[Type] {
        match self {
            Action::Printf { args, .. } => args,
            Action::Exit => &[],
        }
    }

    /// Offsets of the arguments in the record (after the 8-byte id) and the
    /// total record size.
    pub fn record(&self) -> Layout {
        let inner = tuple_layout(self.arg_types());
        Layout { offsets: inner.offsets.iter().map(|o| o + 8).collect(), size: 8 + inner.size }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AttachInfo {
    /// Index of the program (in `Checked::programs`) that runs here.
    pub program: usize,
    pub resolved: Resolved,
}
