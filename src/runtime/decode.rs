//! Raw bytes from the kernel → values, using the Manifest's layouts: output
//! records from the ring buffer, and map keys and values.

use crate::output::value::{MapEntry, MapValue as OutMapValue, Value};
use crate::sema::manifest::{MapInfo, MapValue};
use crate::sema::types::{tuple_layout, Type};

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
        Type::Int { signed: false, .. } | Type::Ptr { .. } => Value::UInt(u64_at(bytes, off)),
        Type::Str { size } => {
            let end = (off + *size as usize).min(bytes.len());
            let s = bytes.get(off..end).unwrap_or(&[]);
            let len = s.iter().position(|b| *b == 0).unwrap_or(s.len());
            Value::Str(s[..len].to_vec())
        }
        Type::Tuple(items) => {
            let layout = tuple_layout(items);
            Value::Tuple(items.iter().zip(layout.offsets).map(|(t, o)| value(t, bytes, off + o as usize)).collect())
        }
        _ => Value::None,
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

/// A map value; `per_cpu` holds one value per CPU for per-CPU maps.
pub fn map_value(info: &MapInfo, per_cpu: &[Vec<u8>]) -> OutMapValue {
    let sum = || per_cpu.iter().fold(0u64, |acc, v| acc.wrapping_add(u64_at(v, 0)));
    match &info.value {
        MapValue::Plain(ty) => OutMapValue::Value(value(ty, per_cpu.first().map_or(&[][..], |v| v), 0)),
        MapValue::Count => OutMapValue::Count(sum()),
        MapValue::Sum { signed: true } => OutMapValue::Sum(Value::Int(sum() as i64)),
        MapValue::Sum { signed: false } => OutMapValue::Sum(Value::UInt(sum())),
    }
}

pub fn entry(info: &MapInfo, key_bytes: &[u8], per_cpu: &[Vec<u8>]) -> MapEntry {
    MapEntry { key: if info.keys.is_empty() { vec![] } else { key(info, key_bytes) }, value: map_value(info, per_cpu) }
}
