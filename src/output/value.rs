//! Decoded values as the user sees them, and map entries.

use crate::types::StackMode;
use std::cmp::Ordering;
use std::sync::Arc;

/// A decoded value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// A signed integer type.
    Int(i64),
    /// An unsigned integer type.
    UInt(u64),
    /// A pointer: `0x...` in text, a number in JSON (bpftrace v0.26).
    Pointer(u64),
    /// `true` / `false`.
    Bool(bool),
    /// A value of a C enum, and the name of its constant (if it has one).
    Enum {
        bits: u64,
        signed: bool,
        name: Option<String>,
    },
    /// String bytes up to (not including) the first NUL.
    Str(Vec<u8>),
    Tuple(Vec<Value>),
    /// A C array.
    Array(Vec<Value>),
    /// A struct: its members in order.
    Record(Vec<(String, Value)>),
    /// `buf()` bytes, printed with `%r`.
    Buffer(Vec<u8>),
    /// `kstack`, `ustack`: printed as text in the stack's mode.
    Stack(Stack),
    None,
}

/// A stack as collected and named: its frames, the innermost first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stack {
    pub kernel: bool,
    pub mode: StackMode,
    pub frames: Vec<Frame>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Frame {
    /// An address and what is there: its inlined functions, innermost
    /// first, then the function (empty when nothing is known); shared by
    /// every stack that has the address.
    Addr { addr: u64, syms: Arc<[FrameSym]> },
    /// `build_id` mode: the build id of the frame's file and the offset in
    /// it (`addr` alone when the kernel could not read the build id).
    BuildId { id: Vec<u8>, offset: u64 },
}

/// A function at an address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FrameSym {
    /// Demangled unless asked otherwise.
    pub name: String,
    /// Bytes into the function; `None` for an inlined function.
    pub offset: Option<u64>,
    /// `dir/file:line` from DWARF, when shown (`show_debug_info`).
    pub location: Option<String>,
    /// The file the function is in (user stacks).
    pub module: Option<String>,
    pub inlined: bool,
}

impl Value {
    /// A value of a C enum: its constant's name, or its number.
    pub fn enum_text(bits: u64, signed: bool, name: Option<&str>) -> String {
        match name {
            Some(n) => n.to_string(),
            None if signed => (bits as i64).to_string(),
            None => bits.to_string(),
        }
    }

    /// The 64 bits of an integer value.
    /// An integer, a bool or an enum: what `bits` gives and keys compare by.
    pub fn is_integer_like(&self) -> bool {
        matches!(self, Value::Int(_) | Value::UInt(_) | Value::Bool(_) | Value::Enum { .. })
    }

    pub fn bits(&self) -> u64 {
        match self {
            Value::Int(v) => *v as u64,
            Value::UInt(v) | Value::Pointer(v) => *v,
            Value::Bool(b) => *b as u64,
            Value::Enum { bits, .. } => *bits,
            _ => 0,
        }
    }
}

/// The value stored under one key of a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapValue {
    /// `@x = expr`
    Value(Value),
    Count(u64),
    /// `sum()`, `min()`, `max()`: an `Int` or a `UInt`.
    Sum(Value),
    Min(Value),
    Max(Value),
    /// `avg()`: total / count.
    Avg(i64),
    /// `stats()`: count, average and total.
    Stats {
        count: u64,
        average: i64,
        total: i64,
    },
    /// `hist()`: counts of the log2 buckets (negative, zero, 1, 2-3, 4-7, ...).
    Hist(Vec<u64>),
    /// `lhist()`: counts of the buckets below `min`, each `step` wide, and from `max` on.
    Lhist {
        counts: Vec<u64>,
        min: i64,
        max: i64,
        step: i64,
    },
    /// `tseries()`: `(epoch, value)` of each bucket (an epoch is a time
    /// over `interval` ns); `count` intervals are shown, as `rows` once the
    /// whole map is read (`TsRow`).
    TSeries {
        points: Vec<(u64, Value)>,
        interval: u64,
        count: u64,
        rows: Vec<TsRow>,
    },
}

/// One interval of a printed `tseries()`: its start as local time
/// (`hh:mm:ss` and the fraction the interval needs) and in UTC for JSON,
/// and its value (`None`: no value in that interval).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsRow {
    pub time: String,
    pub utc: String,
    pub value: Option<Value>,
}

impl MapValue {
    /// The value as `print(@x, top, div)` shows it: numbers divided by `div`.
    pub fn divided(&self, div: u64) -> MapValue {
        let d = |v: &Value| match v {
            Value::Int(i) => Value::Int(i / div as i64),
            Value::UInt(u) => Value::UInt(u / div),
            other => other.clone(),
        };
        match self {
            MapValue::Value(v) => MapValue::Value(d(v)),
            MapValue::Count(n) => MapValue::Count(n / div),
            MapValue::Sum(v) => MapValue::Sum(d(v)),
            MapValue::Min(v) => MapValue::Min(d(v)),
            MapValue::Max(v) => MapValue::Max(d(v)),
            MapValue::Avg(a) => MapValue::Avg(a / div as i64),
            // As bpftrace: the average is divided, not the count or total.
            MapValue::Stats { count, average, total } => {
                MapValue::Stats { count: *count, average: average / div as i64, total: *total }
            }
            MapValue::Hist(c) => MapValue::Hist(c.iter().map(|n| n / div).collect()),
            other => other.clone(),
        }
    }

    /// total / count as bpftrace computes it (0 when nothing was counted).
    pub fn average(count: u64, total: i64) -> i64 {
        if count == 0 {
            0
        } else {
            total.wrapping_div(count as i64)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// Key values; empty for a map without keys.
    pub key: Vec<Value>,
    pub value: MapValue,
}

/// Orders entries the way bpftrace prints them: integer-like values by value
/// (ascending), everything else by key. Ties keep key order, so the output
/// is deterministic.
pub fn sort_entries(entries: &mut [MapEntry]) {
    entries.sort_by(compare_entries);
}

/// The entries in printing order (`sort_entries`), by reference: a map of a
/// million entries is not copied to be printed.
pub fn sorted(entries: &[MapEntry]) -> Vec<&MapEntry> {
    // Each entry's number and first integer key computed once and sorted
    // inline, without following pointers: what decides nearly every
    // comparison of a big map (keys unique, values often not).
    let mut v: Vec<(Option<i128>, Option<u64>, &MapEntry)> = entries
        .iter()
        .map(|e| {
            let first = e.key.first().filter(|k| k.is_integer_like()).map(Value::bits);
            (numeric(&e.value), first, e)
        })
        .collect();
    v.sort_unstable_by(|a, b| {
        let by_value = match (a.0, b.0) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => Ordering::Equal,
        };
        by_value.then_with(|| match (a.1, b.1) {
            (Some(x), Some(y)) if x != y => x.cmp(&y),
            _ => compare_keys(&a.2.key, &b.2.key),
        })
    });
    v.into_iter().map(|(_, _, e)| e).collect()
}

/// By value where both have a number, then by key: what sorting by key and
/// then stably by value gives, in one pass.
fn compare_entries(a: &MapEntry, b: &MapEntry) -> Ordering {
    let by_value = match (numeric(&a.value), numeric(&b.value)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => Ordering::Equal,
    };
    by_value.then_with(|| compare_keys(&a.key, &b.key))
}

/// The number an entry sorts by, when it has one.
fn numeric(v: &MapValue) -> Option<i128> {
    match v {
        MapValue::Count(n) => Some(*n as i128),
        MapValue::Avg(average) | MapValue::Stats { average, .. } => Some(*average as i128),
        // Histograms sort by their total count.
        MapValue::Hist(counts) | MapValue::Lhist { counts, .. } => Some(counts.iter().map(|c| *c as i128).sum()),
        // Time series from the least to the most recently updated.
        MapValue::TSeries { points, .. } => points.iter().map(|p| p.0 as i128).max(),
        MapValue::Value(v) | MapValue::Sum(v) | MapValue::Min(v) | MapValue::Max(v) => match v {
            Value::Int(i) => Some(*i as i128),
            Value::UInt(u) => Some(*u as i128),
            Value::Bool(b) => Some(*b as i128),
            // bpftrace v0.26 sorts maps of pointers by key.
            Value::Pointer(_) => None,
            Value::Enum { bits, signed: true, .. } => Some(*bits as i64 as i128),
            Value::Enum { bits, .. } => Some(*bits as i128),
            _ => None,
        },
    }
}

/// bpftrace v0.26 compares integer keys as signed 64-bit values and strings
/// byte-wise, first key first.
fn compare_keys(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Value::Str(p), Value::Str(q)) => p.cmp(q),
            (
                Value::Int(_) | Value::UInt(_) | Value::Pointer(_) | Value::Bool(_) | Value::Enum { .. },
                Value::Int(_) | Value::UInt(_) | Value::Pointer(_) | Value::Bool(_) | Value::Enum { .. },
            ) => (x.bits() as i64).cmp(&(y.bits() as i64)),
            _ => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// A JSON number, or a string where a double could not hold it exactly
/// (bpftrace v0.26, after RFC 8259: readers parse numbers as doubles).
pub fn json_number(n: i128) -> String {
    if (n as f64) as i128 == n {
        n.to_string()
    } else {
        format!("\"{}\"", n)
    }
}
