//! Raw bytes from the kernel → values, using the Manifest's layouts: output
//! records from the ring buffer, and map keys and values.

use super::clock;
use crate::output::value::{MapEntry, MapValue as OutMapValue, Value};
use crate::sema::manifest::{MapInfo, MapValue};
use crate::system::symbols;
use crate::types::{c_size, tuple_layout, Type};

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = bytes.get(off..off + 8) {
        b.copy_from_slice(src);
    }
    u64::from_le_bytes(b)
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
            let s = bytes.get(off..end).unwrap_or(&[]);
            let len = s.iter().position(|b| *b == 0).unwrap_or(s.len());
            Value::Str(s[..len].to_vec())
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
        Type::Timestamp { format } => Value::Str(clock::from_monotonic(u64_at(bytes, off), format).into_bytes()),
        Type::Buffer { size } => {
            let len = (bytes.get(off).copied().unwrap_or(0) as usize).min(*size as usize);
            Value::Buffer(bytes.get(off + 1..off + 1 + len).unwrap_or(&[]).to_vec())
        }
        Type::Inet => Value::Str(inet(u64_at(bytes, off), bytes.get(off + 8..off + 24).unwrap_or(&[])).into_bytes()),
        Type::Ksym => Value::Str(symbols::ksym(u64_at(bytes, off)).into_bytes()),
        Type::Usym => Value::Str(symbols::usym(u64_at(bytes, off), u64_at(bytes, off + 8)).into_bytes()),
        Type::CgroupPath => Value::Str(symbols::cgroup_path(u64_at(bytes, off)).into_bytes()),
        // `strerror(n)`: the C library's message for error number `n`.
        Type::Errno => {
            let e = std::io::Error::from_raw_os_error(u64_at(bytes, off) as i32);
            Value::Str(crate::output::error_reason(&e).into_bytes())
        }
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
pub fn map_value(info: &MapInfo, key_bytes: &[u8], per_cpu: &[Vec<u8>]) -> OutMapValue {
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
        MapValue::Plain(ty) => OutMapValue::Value(value(ty, per_cpu.first().map_or(&[][..], |v| v), 0)),
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
    }
}

pub fn entry(info: &MapInfo, key_bytes: &[u8], per_cpu: &[Vec<u8>]) -> MapEntry {
    MapEntry {
        key: if info.keys.is_empty() { vec![] } else { key(info, key_bytes) },
        value: map_value(info, key_bytes, per_cpu),
    }
}

/// Bucketed maps hold one kernel entry per (key, bucket): folds them into
/// one entry per key.
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
                _ => {}
            },
            None => {
                index.insert(e.key.clone(), out.len());
                out.push(e);
            }
        }
    }
    out
}
