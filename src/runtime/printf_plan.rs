//! printf formats compiled once against the layout of their records, so
//! that a record is formatted straight from its bytes into the caller's
//! buffer. The common conversions (`%d %u %x %X %o %c` of an integer and
//! `%s` of a string, without width, precision or flags) build no value and
//! allocate nothing; the others decode their argument (`decode::value`)
//! and format it as `printf::format` does.

use super::decode;
use crate::output::printf::{self, Piece, Spec};
use crate::types::Type;

/// A compiled format.
#[derive(Clone, Debug)]
pub struct Plan {
    steps: Vec<Step>,
}

#[derive(Clone, Debug)]
enum Step {
    Text(Vec<u8>),
    /// A plain integer conversion of the 8-byte integer at `off`.
    Int {
        off: usize,
        conv: u8,
        bits: u32,
    },
    /// A plain `%s` of the string slot at `off`, `size` bytes at most.
    Str {
        off: usize,
        size: usize,
    },
    /// Anything else: the argument decoded, then converted.
    Value {
        off: usize,
        ty: Type,
        spec: Spec,
    },
    /// A conversion without an argument (the checker rejects this).
    Missing(Spec),
}

impl Plan {
    /// `pieces` (a parsed format) applied to arguments of `types` at
    /// `offsets` of a record.
    pub fn new(pieces: &[Piece], types: &[Type], offsets: &[u32]) -> Plan {
        let mut args = types.iter().zip(offsets);
        let steps = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => Step::Text(t.clone()),
                Piece::Conv(spec) => match args.next() {
                    Some((ty, off)) => step(spec, ty, *off as usize),
                    None => Step::Missing(spec.clone()),
                },
            })
            .collect();
        Plan { steps }
    }

    /// Appends the formatted text of `record` to `out`.
    pub fn format(&self, record: &[u8], out: &mut Vec<u8>) {
        for step in &self.steps {
            match step {
                Step::Text(t) => out.extend_from_slice(t),
                Step::Int { off, conv, bits } => integer(out, *conv, *bits, u64_at(record, *off)),
                Step::Str { off, size } => {
                    let (text, trailer) =
                        decode::str_slot(record.get(*off..(*off + *size).min(record.len())).unwrap_or(&[]));
                    out.extend_from_slice(text);
                    out.extend_from_slice(trailer);
                }
                Step::Value { off, ty, spec } => printf::convert(out, spec, &decode::value(ty, record, *off)),
                Step::Missing(spec) => printf::convert(out, spec, &crate::output::value::Value::None),
            }
        }
    }
}

/// The step for conversion `spec` of an argument of type `ty` at `off`.
fn step(spec: &Spec, ty: &Type, off: usize) -> Step {
    let plain = spec.width.is_none()
        && spec.precision.is_none()
        && !(spec.minus || spec.zero || spec.plus || spec.space || spec.alt);
    match (ty, spec.conv) {
        (Type::Int { .. } | Type::Ptr { .. }, 'd' | 'i' | 'u' | 'x' | 'X' | 'o' | 'c') if plain => {
            Step::Int { off, conv: spec.conv as u8, bits: spec.bits }
        }
        (Type::Str { size }, 's') if plain => Step::Str { off, size: *size as usize },
        _ => Step::Value { off, ty: ty.clone(), spec: spec.clone() },
    }
}

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = bytes.get(off..off + 8) {
        b.copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

/// A plain integer conversion of `value` seen at `bits` bits, as C's printf
/// (and `printf::format`) prints it.
fn integer(out: &mut Vec<u8>, conv: u8, bits: u32, value: u64) {
    let mask = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let unsigned = value & mask;
    match conv {
        b'd' | b'i' => {
            let shift = 64 - bits.min(64);
            let signed = if shift == 0 { unsigned as i64 } else { ((unsigned << shift) as i64) >> shift };
            if signed < 0 {
                out.push(b'-');
            }
            digits(out, signed.unsigned_abs(), 10, false);
        }
        b'u' => digits(out, unsigned, 10, false),
        b'x' => digits(out, unsigned, 16, false),
        b'X' => digits(out, unsigned, 16, true),
        b'o' => digits(out, unsigned, 8, false),
        _ => out.push(unsigned as u8),
    }
}

/// `value` in `base`, most significant digit first.
fn digits(out: &mut Vec<u8>, mut value: u64, base: u64, upper: bool) {
    let table: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    // 22 octal digits hold a u64.
    let mut buf = [0u8; 22];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = table[(value % base) as usize];
        value /= base;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::value::Value;

    /// The plan prints what `printf::format` prints from decoded values.
    #[test]
    fn agrees_with_printf_format() {
        let i64t = Type::Int { bytes: 8, signed: true };
        let u32t = Type::Int { bytes: 4, signed: false };
        let s = Type::Str { size: 16 };
        let formats = [
            "%d %i %u %x %X %o|%c",
            "%ld %lu %lx %hhd %hd %llu",
            "[%5d|%-5d|%05d|%+d|% d|%#x|%#o|%.3d]",
            "%s|%10s|%-4s|%.2s|",
            "%p %s %d",
        ];
        let ints: [u64; 8] = [0, 1, 9, 10, u64::MAX, 5_000_000_000, 1 << 40, (-42i64) as u64];
        for format in formats {
            let pieces = printf::parse_format(format).unwrap();
            let n = printf::conversions(&pieces).count();
            for (k, &v) in ints.iter().enumerate() {
                // Arguments: integers, or strings for %s.
                let mut types = Vec::new();
                let mut values = Vec::new();
                let mut record = vec![0u8; 8];
                let mut offsets = Vec::new();
                for (j, spec) in printf::conversions(&pieces).enumerate() {
                    offsets.push(record.len() as u32);
                    if spec.conv == 's' {
                        let text = &b"comm-of-a-task"[..(k + j) % 14];
                        let mut slot = text.to_vec();
                        slot.resize(16, 0);
                        record.extend_from_slice(&slot);
                        types.push(s.clone());
                        values.push(Value::Str(text.to_vec()));
                    } else {
                        let bits = v.wrapping_add(j as u64);
                        record.extend_from_slice(&bits.to_le_bytes());
                        let ty = if j % 2 == 0 { i64t.clone() } else { u32t.clone() };
                        values.push(if j % 2 == 0 { Value::Int(bits as i64) } else { Value::UInt(bits) });
                        types.push(ty);
                    }
                }
                assert_eq!(types.len(), n);
                let mut got = Vec::new();
                Plan::new(&pieces, &types, &offsets).format(&record, &mut got);
                let want = printf::format(&pieces, &values);
                assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "{} with {}", format, v);
            }
        }
    }
}
