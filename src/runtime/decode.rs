//! Raw bytes from the kernel → values, using the Manifest's layouts: output
//! records from the ring buffer, and map keys and values.

use super::clock;
use crate::output::names;
use crate::output::value::{MapEntry, MapValue as OutMapValue, TsRow, Value};
use crate::sema::manifest::{MapInfo, MapValue, TsAgg};
use crate::system::{symbolize, symbols};
use crate::types::{c_size, tuple_layout, Type};

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = bytes.get(off..off + 8) {
        b.copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

static TRUNC_TRAILER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Sets what truncated strings end with (`str_trunc_trailer`); once, when a
/// script starts. Until then it is bpftrace's default, `..`.
pub fn set_trunc_trailer(trailer: &str) {
    let _ = TRUNC_TRAILER.set(trailer.as_bytes().to_vec());
}

fn trunc_trailer() -> &'static [u8] {
    TRUNC_TRAILER.get().map(|t| t.as_slice()).unwrap_or(b"..")
}

/// The text of a string slot, and what follows it: up to its NUL; or,
/// cut by `str()` (which marks that with a final 0xff, no UTF-8 byte), the
/// truncation trailer; or a full char array.
pub fn str_slot(s: &[u8]) -> (&[u8], &'static [u8]) {
    match s.iter().position(|b| *b == 0) {
        Some(len) => (&s[..len], b""),
        None if s.last() == Some(&0xff) => (&s[..s.len() - 1], trunc_trailer()),
        None => (s, b""),
    }
}

/// One value of type `ty` stored at `bytes[off..]`.
pub fn value(ty: &Type, bytes: &[u8], off: usize) -> Value {
    match ty {
        Type::Int { signed: true, .. } => Value::Int(u64_at(bytes, off) as i64),
        Type::Int { signed: false, .. } => Value::UInt(u64_at(bytes, off)),
        Type::Ptr { .. } => Value::Pointer(u64_at(bytes, off)),
        Type::Bool => Value::Bool(u64_at(bytes, off) != 0),
        Type::Enum(e) => enum_value(e, u64_at(bytes, off)),
        Type::Str { size } => {
            let end = (off + *size as usize).min(bytes.len());
            let (text, trailer) = str_slot(bytes.get(off..end).unwrap_or(&[]));
            Value::Str([text, trailer].concat())
        }
        Type::Tuple(items) => {
            let layout = tuple_layout(items);
            Value::Tuple(items.iter().zip(layout.offsets).map(|(t, o)| c_value(t, bytes, off + o as usize)).collect())
        }
        // Arrays of strings (`join()`).
        Type::Array { elem, len } if elem.is_str() => {
            let size = elem.size() as usize;
            Value::Tuple((0..*len as usize).map(|i| value(elem, bytes, off + i * size)).collect())
        }
        Type::Array { .. } | Type::Record(_) => c_value(ty, bytes, off),
        Type::MacAddr => {
            let b = bytes.get(off..off + 6).unwrap_or(&[0; 6]);
            Value::Str(b.iter().map(|x| format!("{:02X}", x)).collect::<Vec<_>>().join(":").into_bytes())
        }
        Type::Timestamp { format } => Value::Str(clock::from_boot(u64_at(bytes, off), format).into_bytes()),
        Type::Buffer { size } => {
            let len = (bytes.get(off).copied().unwrap_or(0) as usize).min(*size as usize);
            Value::Buffer(bytes.get(off + 1..off + 1 + len).unwrap_or(&[]).to_vec())
        }
        Type::Inet => Value::Str(inet(u64_at(bytes, off), bytes.get(off + 8..off + 24).unwrap_or(&[])).into_bytes()),
        Type::Ksym => Value::Str(symbolize::ksym(u64_at(bytes, off)).into_bytes()),
        Type::Usym => Value::Str(symbolize::usym(u64_at(bytes, off), u64_at(bytes, off + 8) as u32).into_bytes()),
        Type::Stack(st) => Value::Stack(super::stacks::decode(st, bytes, off)),
        Type::CgroupPath => Value::Str(symbols::cgroup_path(u64_at(bytes, off)).into_bytes()),
        // `strerror(n)`: the C library's message for error number `n`.
        Type::Errno => {
            let e = std::io::Error::from_raw_os_error(u64_at(bytes, off) as i32);
            Value::Str(crate::output::error_reason(&e).into_bytes())
        }
        Type::SignalName => Value::Str(names::signal_name(u64_at(bytes, off) as i64).into()),
        Type::SyscallName => Value::Str(names::syscall_name(u64_at(bytes, off) as i64).into()),
        Type::Username => Value::Str(symbols::user_name(u64_at(bytes, off)).into_bytes()),
        _ => Value::None,
    }
}

/// A value in C memory (a struct member, an array element): integers are
/// read at their own width.
fn c_value(ty: &Type, bytes: &[u8], off: usize) -> Value {
    match ty {
        Type::Int { bytes: width, signed } => {
            let w = *width as usize;
            let mut b = [0u8; 8];
            if let Some(src) = bytes.get(off..off + w) {
                b[..w].copy_from_slice(src);
            }
            let raw = u64::from_le_bytes(b);
            let shift = 64 - 8 * w as u32;
            if *signed {
                Value::Int(((raw << shift) as i64) >> shift)
            } else {
                Value::UInt(raw)
            }
        }
        Type::Bool => Value::Bool(bytes.get(off).is_some_and(|b| *b != 0)),
        Type::Enum(e) => match c_value(&Type::Int { bytes: e.bytes, signed: e.signed }, bytes, off) {
            v @ (Value::Int(_) | Value::UInt(_)) => enum_value(e, v.bits()),
            other => other,
        },
        Type::Array { elem, len } => {
            let size = c_size(elem) as usize;
            Value::Array((0..*len as usize).map(|i| c_value(elem, bytes, off + i * size)).collect())
        }
        Type::Record(r) => Value::Record(r.fields.iter().map(|m| (m.name.clone(), member(m, bytes, off))).collect()),
        other => value(other, bytes, off),
    }
}

fn enum_value(e: &crate::types::EnumType, bits: u64) -> Value {
    Value::Enum { bits, signed: e.signed, name: e.name_of(bits).map(str::to_string) }
}

/// A struct member at `off + m.offset`; a bit-field's bits from its unit.
fn member(m: &crate::types::Member, bytes: &[u8], off: usize) -> Value {
    let v = c_value(&m.ty, bytes, off + m.offset as usize);
    let Some(bf) = m.bits else { return v };
    let bits = bf.extract(v.bits(), m.ty.is_signed());
    match (&v, &m.ty) {
        (Value::Int(_), _) => Value::Int(bits as i64),
        (Value::Bool(_), _) => Value::Bool(bits != 0),
        (_, Type::Enum(e)) => enum_value(e, bits),
        _ => Value::UInt(bits),
    }
}

/// `ntop()`: an IPv4 or IPv6 address in the usual notation.
fn inet(family: u64, addr: &[u8]) -> String {
    match (family, addr.len()) {
        (2, n) if n >= 4 => std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string(),
        (10, 16) => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(addr).unwrap()).to_string(),
        _ => String::new(),
    }
}

/// The values of a sequence of types laid out at `offsets`.
pub fn values(types: &[Type], offsets: &[u32], bytes: &[u8]) -> Vec<Value> {
    types.iter().zip(offsets).map(|(t, o)| value(t, bytes, *o as usize)).collect()
}

/// A map key's values.
pub fn key(info: &MapInfo, bytes: &[u8]) -> Vec<Value> {
    let layout = info.key_layout();
    values(&info.keys, &layout.offsets, bytes)
}

/// A map value; `per_cpu` holds one value per CPU for per-CPU maps. For
/// bucketed maps the key says which bucket the value counts.
pub fn map_value(info: &MapInfo, key_bytes: &[u8], per_cpu: &[&[u8]]) -> OutMapValue {
    let sum = |off: usize| per_cpu.iter().fold(0u64, |acc, v| acc.wrapping_add(u64_at(v, off)));
    let int = |bits: u64, signed: bool| if signed { Value::Int(bits as i64) } else { Value::UInt(bits) };
    // min/max: only CPUs that stored a value (their `set` word is non-zero).
    let extreme = |signed: bool, pick_min: bool| {
        let set = per_cpu.iter().filter(|v| u64_at(v, 8) != 0).map(|v| u64_at(v, 0));
        let best = if signed {
            let vals = set.map(|b| b as i64);
            if pick_min { vals.min() } else { vals.max() }.map(|v| v as u64)
        } else if pick_min {
            set.min()
        } else {
            set.max()
        };
        int(best.unwrap_or(0), signed)
    };
    let buckets = || {
        let mut counts = vec![0u64; info.value.buckets()];
        let bucket = u64_at(key_bytes, info.bucket_offset() as usize) as usize;
        if let Some(c) = counts.get_mut(bucket) {
            *c = sum(0);
        }
        counts
    };
    match &info.value {
        MapValue::Plain(ty) => OutMapValue::Value(value(ty, per_cpu.first().copied().unwrap_or(&[]), 0)),
        MapValue::Count => OutMapValue::Count(sum(0)),
        MapValue::Sum { signed } => OutMapValue::Sum(int(sum(0), *signed)),
        MapValue::Avg => OutMapValue::Avg(OutMapValue::average(sum(0), sum(8) as i64)),
        MapValue::Stats => {
            let (count, total) = (sum(0), sum(8) as i64);
            OutMapValue::Stats { count, average: OutMapValue::average(count, total), total }
        }
        MapValue::Min { signed } => OutMapValue::Min(extreme(*signed, true)),
        MapValue::Max { signed } => OutMapValue::Max(extreme(*signed, false)),
        MapValue::Hist => OutMapValue::Hist(buckets()),
        MapValue::Lhist { min, max, step } => {
            OutMapValue::Lhist { counts: buckets(), min: *min, max: *max, step: *step }
        }
        MapValue::TSeries { interval, count, agg, signed } => {
            let (epoch, bits) = tseries_point(per_cpu, *agg, *signed);
            OutMapValue::TSeries {
                points: vec![(epoch, int(bits, *signed))],
                interval: *interval,
                count: *count,
                rows: vec![],
            }
        }
    }
}

/// The rows of each `tseries()` entry of a map: the last `count`
/// intervals up to the latest one any key has, each key's starting at its
/// own first interval in that range (bpftrace's rule).
pub fn tseries_rows(entries: &mut [MapEntry]) {
    let last = entries
        .iter()
        .filter_map(|e| match &e.value {
            OutMapValue::TSeries { points, .. } => points.iter().map(|p| p.0).max(),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    for e in entries {
        let OutMapValue::TSeries { points, interval, count, rows } = &mut e.value else { continue };
        let first = last.saturating_sub(*count - 1);
        let start = points.iter().map(|p| p.0).filter(|ep| *ep >= first).min().unwrap_or(last);
        // bpftrace takes the unit from the rows' spacing: nanoseconds for one row.
        let digits = if last == start { 9 } else { crate::output::tseries::fraction_digits(*interval) };
        *rows = (start..=last)
            .map(|epoch| {
                let ns = epoch.wrapping_mul(*interval);
                let (secs, frac) = ((ns / 1_000_000_000) as i64, ns % 1_000_000_000);
                let mut time = clock::local(secs, 0, "%H:%M:%S");
                if digits > 0 {
                    time.push_str(&format!(".{:0w$}", frac / 10u64.pow(9 - digits), w = digits as usize));
                }
                let value = points.iter().rev().find(|p| p.0 == epoch).map(|p| p.1.clone());
                TsRow { time, utc: clock::utc(ns), value }
            })
            .collect();
    }
}

/// One bucket of a `tseries()` from its per-CPU `{value, meta, epoch}`: the
/// latest epoch's value, combined over the CPUs that wrote in that epoch.
/// A bucket no CPU wrote (epoch 0) is `(0, 0)`, as bpftrace has it.
fn tseries_point(per_cpu: &[&[u8]], agg: TsAgg, signed: bool) -> (u64, u64) {
    let cells: Vec<(u64, u64, u64)> =
        per_cpu.iter().map(|v| (u64_at(v, 0), u64_at(v, 8), u64_at(v, 16))).filter(|c| c.2 != 0).collect();
    let Some(latest) = cells.iter().map(|c| c.2).max() else { return (0, 0) };
    let mut cells = cells.into_iter().filter(|c| c.2 == latest);
    let (mut value, mut meta, _) = cells.next().expect("one cell has the latest epoch");
    let less = |a: u64, b: u64| if signed { (a as i64) < (b as i64) } else { a < b };
    for (v, m, _) in cells {
        match agg {
            TsAgg::Last if m > meta => (value, meta) = (v, m),
            TsAgg::Last => {}
            TsAgg::Sum => value = value.wrapping_add(v),
            TsAgg::Avg => (value, meta) = (value.wrapping_add(v), meta + m),
            TsAgg::Min if less(v, value) => value = v,
            TsAgg::Max if less(value, v) => value = v,
            TsAgg::Min | TsAgg::Max => {}
        }
    }
    if agg == TsAgg::Avg && meta != 0 {
        value = if signed { ((value as i64) / meta as i64) as u64 } else { value / meta };
    }
    (latest, value)
}

pub fn entry(info: &MapInfo, key_bytes: &[u8], per_cpu: &[&[u8]]) -> MapEntry {
    entry_at(info, &info.key_layout().offsets, key_bytes, per_cpu)
}

/// `entry` with the key's layout (`info.key_layout().offsets`) computed
/// once for a whole map.
pub fn entry_at(info: &MapInfo, key_offsets: &[u32], key_bytes: &[u8], per_cpu: &[&[u8]]) -> MapEntry {
    MapEntry {
        key: if info.keys.is_empty() { vec![] } else { values(&info.keys, key_offsets, key_bytes) },
        value: map_value(info, key_bytes, per_cpu),
    }
}

/// `a + b` of two `sum()` values (`Int` or `UInt`).
fn add(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(x.wrapping_add(*y)),
        _ => Value::UInt(a.bits().wrapping_add(b.bits())),
    }
}

/// `a < b` of two `min()`/`max()` values.
fn less(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        _ => a.bits() < b.bits(),
    }
}

/// Bucketed maps hold one kernel entry per (key, bucket), and maps keyed
/// by a `dw_ustack` one per sample (the kernel cannot unwind it): folds
/// them into one entry per key as printed.
pub fn merge_buckets(entries: Vec<MapEntry>) -> Vec<MapEntry> {
    let mut out: Vec<MapEntry> = Vec::new();
    // Index of each key in `out`: a map holds up to max_map_keys entries.
    let mut index: std::collections::HashMap<Vec<Value>, usize> = std::collections::HashMap::new();
    for e in entries {
        match index.get(&e.key).map(|&i| &mut out[i]) {
            Some(o) => match (&mut o.value, e.value) {
                (OutMapValue::Hist(a), OutMapValue::Hist(b))
                | (OutMapValue::Lhist { counts: a, .. }, OutMapValue::Lhist { counts: b, .. }) => {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x += y;
                    }
                }
                (OutMapValue::TSeries { points: a, .. }, OutMapValue::TSeries { points: b, .. }) => a.extend(b),
                // Keys of `dw_ustack` samples that unwound alike.
                (OutMapValue::Count(a), OutMapValue::Count(b)) => *a += b,
                (OutMapValue::Sum(a), OutMapValue::Sum(b)) => *a = add(a, &b),
                (
                    OutMapValue::Stats { count: c, average: a, total: t },
                    OutMapValue::Stats { count: d, total: u, .. },
                ) => {
                    (*c, *t) = (*c + d, t.wrapping_add(u));
                    *a = OutMapValue::average(*c, *t);
                }
                // An `avg()` keeps no count to weigh by: the first one read.
                (OutMapValue::Avg(_), OutMapValue::Avg(_)) => {}
                (OutMapValue::Min(a), OutMapValue::Min(b)) if less(&b, a) => *a = b,
                (OutMapValue::Max(a), OutMapValue::Max(b)) if less(a, &b) => *a = b,
                // A plain value: the last one read.
                (a, b) => *a = b,
            },
            None => {
                index.insert(e.key.clone(), out.len());
                out.push(e);
            }
        }
    }
    out
}
