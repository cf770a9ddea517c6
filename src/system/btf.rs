//! The kernel's types from its BTF (`/sys/kernel/btf/vmlinux`), converted
//! to rtrace's: `curtask` and kernel structs in casts, `sizeof` and member
//! reads.

use crate::types::{c_align, c_size, AddrSpace, BitField, EnumType, Member, Record, Type};
use libbpf_rs::btf::{types as bt, Btf, BtfKind, BtfType, HasSize, TypeId};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Where the running kernel publishes its BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The BTF in a file (the kernel's, or a recorded copy).
pub fn load(path: &Path) -> Option<Btf<'static>> {
    Btf::from_path(path).ok()
}

/// A struct or union by its C name (`struct task_struct`), laid out; the
/// structs its members point to are stubs.
pub fn record(btf: &Btf<'_>, name: &str) -> Option<Record> {
    let plain = name.strip_prefix("struct ").or_else(|| name.strip_prefix("union "))?;
    let ty: bt::Composite = btf.type_by_name(plain)?;
    match btf_type(btf, *ty, 0) {
        Type::Record(r) => Some((*r).clone()),
        _ => None,
    }
}

/// A type by a bare name: a typedef, else a struct or union of that name.
pub fn named_type(btf: &Btf<'_>, name: &str) -> Option<Type> {
    if let Some(t) = btf.type_by_name::<bt::Typedef>(name) {
        return Some(btf_type(btf, *t, 0));
    }
    let c: bt::Composite = btf.type_by_name(name)?;
    Some(btf_type(btf, *c, 0))
}

/// `enum Foo` by its C name, with its constants.
pub fn enum_type(btf: &Btf<'_>, name: &str) -> Option<EnumType> {
    let plain = name.strip_prefix("enum ")?;
    let t: BtfType = btf
        .type_by_name::<bt::Enum>(plain)
        .map(|e| *e)
        .or_else(|| btf.type_by_name::<bt::Enum64>(plain).map(|e| *e))?;
    enum_of_type(t)
}

/// Every enum constant of the BTF, with the id of its enum (read once: a
/// kernel has some 20,000 of them).
pub fn enum_constants(btf: &Btf<'_>) -> HashMap<String, TypeId> {
    let mut out = HashMap::new();
    for id in 1..btf.len() as u32 {
        let id = TypeId::from(id);
        let Some(t) = btf.type_by_id::<BtfType>(id) else { continue };
        let names: Vec<String> = match t.kind() {
            BtfKind::Enum => bt::Enum::try_from(t).map_or(vec![], |e| {
                e.iter().filter_map(|m| m.name).map(|n| n.to_string_lossy().into_owned()).collect()
            }),
            BtfKind::Enum64 => bt::Enum64::try_from(t).map_or(vec![], |e| {
                e.iter().filter_map(|m| m.name).map(|n| n.to_string_lossy().into_owned()).collect()
            }),
            _ => continue,
        };
        for n in names {
            out.entry(n).or_insert(id);
        }
    }
    out
}

/// The enum with id `id` and the value of its constant `name`.
pub fn enum_of(btf: &Btf<'_>, id: TypeId, name: &str) -> Option<(EnumType, u64)> {
    let e = enum_of_type(btf.type_by_id::<BtfType>(id)?)?;
    let v = e.variants.iter().find(|(n, _)| n == name)?.1;
    Some((e, v))
}

fn enum_of_type(t: BtfType<'_>) -> Option<EnumType> {
    let name = match t.name() {
        Some(n) if !n.is_empty() => format!("enum {}", n.to_string_lossy()),
        _ => "enum".to_string(),
    };
    let (bytes, signed, variants) = if let Ok(e) = bt::Enum::try_from(t) {
        let vs =
            e.iter().map(|m| (m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), m.value as u64));
        (e.size(), e.is_signed(), vs.collect())
    } else {
        let e = bt::Enum64::try_from(t).ok()?;
        let vs =
            e.iter().map(|m| (m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), m.value as u64));
        (e.size(), e.is_signed(), vs.collect())
    };
    Some(EnumType { name, bytes: if matches!(bytes, 1 | 2 | 4 | 8) { bytes as u8 } else { 8 }, signed, variants })
}

/// Converts a kernel type; `depth` counts pointers followed (a struct behind
/// one is a stub, looked up by name when used).
fn btf_type(btf: &Btf<'_>, ty: BtfType<'_>, depth: u32) -> Type {
    let byte = Type::Int { bytes: 1, signed: false };
    let t = ty.skip_mods_and_typedefs();
    match t.kind() {
        BtfKind::Int => match bt::Int::try_from(t) {
            Ok(i) => {
                Type::c_int(i.bits as u64 / 8, matches!(i.encoding, bt::IntEncoding::Signed | bt::IntEncoding::Char))
            }
            Err(_) => byte,
        },
        BtfKind::Float => Type::Float { bytes: bt::Float::try_from(t).map_or(8, |f| f.size() as u8) },
        BtfKind::Enum | BtfKind::Enum64 => enum_of_type(t).map_or(byte.clone(), |e| Type::Enum(Arc::new(e))),
        BtfKind::Ptr => {
            let pointee = match t.next_type() {
                Some(p) if depth < 32 => btf_type(btf, p, depth + 1),
                _ => byte,
            };
            Type::Ptr { pointee: Box::new(pointee), space: AddrSpace::Kernel }
        }
        BtfKind::Array => match bt::Array::try_from(t) {
            Ok(a) => {
                let elem = btf_type(btf, a.contained_type(), depth);
                let len = a.capacity() as u32;
                if matches!(elem, Type::Int { bytes: 1, .. }) {
                    return Type::Str { size: len };
                }
                Type::Array { elem: Box::new(elem), len }
            }
            Err(_) => byte,
        },
        BtfKind::Struct | BtfKind::Union | BtfKind::Fwd => {
            let kw = if t.kind() == BtfKind::Union { "union" } else { "struct" };
            let name = t.name().map(|n| format!("{} {}", kw, n.to_string_lossy())).unwrap_or_default();
            let Ok(c) = bt::Composite::try_from(t) else {
                return Type::Record(Arc::new(Record { name, fields: vec![], size: 0, align: 8 }));
            };
            let size = c.size() as u32;
            if depth > 0 && !name.is_empty() {
                return Type::Record(Arc::new(Record { name, fields: vec![], size, align: 8 }));
            }
            let mut fields = Vec::new();
            let mut align = 1;
            for m in c.iter() {
                let Some(mty) = btf.type_by_id::<BtfType>(m.ty) else { continue };
                let mty = btf_type(btf, mty, depth);
                align = align.max(c_align(&mty));
                let name = m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let (offset, bits) = match m.attr {
                    bt::MemberAttr::Normal { offset } => (offset / 8, None),
                    // A bit-field is read from the unit of its type holding it;
                    // one that straddles two is left out.
                    bt::MemberAttr::BitField { size, offset } => {
                        match BitField::in_unit(offset, size as u32, c_size(&mty)) {
                            Some((unit, bf)) => (unit, Some(bf)),
                            None => continue,
                        }
                    }
                };
                fields.push(Member { name, offset, ty: mty, bits });
            }
            Type::Record(Arc::new(Record { name, fields, size, align }))
        }
        _ => byte,
    }
}

/// A kernel function's parameters and return type, from its BTF prototype.
#[derive(Clone, Debug, PartialEq)]
pub struct Prototype {
    pub params: Vec<(String, Type)>,
    /// `Type::None` for `void`.
    pub ret: Type,
}

/// The prototype of kernel function `name`.
pub fn function(btf: &Btf<'_>, name: &str) -> Option<Prototype> {
    let func: bt::Func = btf.type_by_name(name)?;
    let proto = bt::FuncProto::try_from(func.next_type()?).ok()?;
    let params = proto
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = p.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| format!("arg{}", i));
            let ty = btf.type_by_id::<BtfType>(p.ty).map_or(Type::None, |t| btf_type(btf, t, 1));
            (name, ty)
        })
        .collect();
    let ret = proto.next_type().map_or(Type::None, |t| btf_type(btf, t, 1));
    Some(Prototype { params, ret })
}

/// The iterators the kernel offers (`task` for `struct bpf_iter__task`),
/// sorted.
pub fn iterators(btf: &Btf<'_>) -> Vec<String> {
    let mut names: Vec<String> = btf
        .type_by_kind::<bt::Struct>()
        .filter_map(|s| s.name().map(|n| n.to_string_lossy().into_owned()))
        .filter_map(|n| n.strip_prefix("bpf_iter__").filter(|n| !n.ends_with("__safe_trusted")).map(str::to_string))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The names of every function the BTF describes, sorted.
pub fn functions(btf: &Btf<'_>) -> Vec<String> {
    let mut names: Vec<String> =
        btf.type_by_kind::<bt::Func>().filter_map(|f| f.name().map(|n| n.to_string_lossy().into_owned())).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The raw tracepoints the kernel's BTF names (`btf_trace_<name>`
/// typedefs), sorted.
pub fn raw_tracepoints(btf: &Btf<'_>) -> Vec<String> {
    let mut names: Vec<String> = btf
        .type_by_kind::<bt::Typedef>()
        .filter_map(|t| t.name()?.to_str()?.strip_prefix("btf_trace_").map(str::to_string))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The arguments a raw tracepoint hands its programs, named and typed from
/// the kernel's `__bpf_trace_<name>` function (its first parameter, the
/// tracepoint's private data, is not one of them).
pub fn raw_tracepoint_params(btf: &Btf<'_>, name: &str) -> Option<Vec<(String, Type)>> {
    let proto = function(btf, &format!("__bpf_trace_{}", name))?;
    Some(proto.params.into_iter().skip(1).collect())
}
