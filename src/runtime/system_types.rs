//! The types rtrace finds on the system, for the checker (`TypeSource`):
//! DWARF of the binaries the program probes, then the kernel's BTF
//! (`/sys/kernel/btf/vmlinux`). Each is read the first time it is needed.

use super::dwarf::DwarfTypes;
use crate::sema::system_types::TypeSource;
use crate::sema::types::{c_align, AddrSpace, Member, Record, Type};
use libbpf_rs::btf::{types as bt, Btf, BtfKind, BtfType, HasSize};
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

pub struct SystemTypeSource {
    /// Binaries whose DWARF may define the program's structs.
    binaries: Vec<PathBuf>,
    dwarf: RefCell<HashMap<PathBuf, Option<Rc<DwarfTypes>>>>,
    btf: OnceCell<Option<Btf<'static>>>,
}

impl SystemTypeSource {
    pub fn new(binaries: Vec<PathBuf>) -> SystemTypeSource {
        SystemTypeSource { binaries, dwarf: RefCell::new(HashMap::new()), btf: OnceCell::new() }
    }

    /// The DWARF of a file, parsed once.
    pub fn dwarf(&self, path: &Path) -> Option<Rc<DwarfTypes>> {
        self.dwarf.borrow_mut().entry(path.to_path_buf()).or_insert_with(|| DwarfTypes::load(path).map(Rc::new)).clone()
    }

    fn btf(&self) -> Option<&Btf<'static>> {
        self.btf.get_or_init(|| Btf::from_vmlinux().ok()).as_ref()
    }
}

impl TypeSource for SystemTypeSource {
    fn record(&self, name: &str) -> Option<Record> {
        for bin in &self.binaries {
            if let Some(r) = self.dwarf(bin).and_then(|d| d.record(name)) {
                return Some(r);
            }
        }
        let plain = name.strip_prefix("struct ").or_else(|| name.strip_prefix("union "))?;
        let btf = self.btf()?;
        let ty: bt::Composite = btf.type_by_name(plain)?;
        match btf_type(btf, *ty, 0) {
            Type::Record(r) => Some((*r).clone()),
            _ => None,
        }
    }

    fn params(&self, path: &Path, func: &str) -> Option<Vec<(String, Type)>> {
        let d = self.dwarf(path)?;
        let params = d.params(func)?;
        Some(params.iter().map(|p| (p.name.clone(), d.param_type(p))).collect())
    }
}

/// Converts a kernel type; `depth` counts pointers followed (a struct behind
/// one is a stub, looked up by name when used).
fn btf_type(btf: &Btf<'_>, ty: BtfType<'_>, depth: u32) -> Type {
    let byte = Type::Int { bytes: 1, signed: false };
    let t = ty.skip_mods_and_typedefs();
    match t.kind() {
        BtfKind::Int => match bt::Int::try_from(t) {
            Ok(i) => int_of(i.bits as u64 / 8, matches!(i.encoding, bt::IntEncoding::Signed | bt::IntEncoding::Char)),
            Err(_) => byte,
        },
        BtfKind::Enum => bt::Enum::try_from(t).map_or(byte.clone(), |e| int_of(e.size() as u64, false)),
        BtfKind::Enum64 => Type::Int { bytes: 8, signed: false },
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
                // Bit-fields have no byte offset of their own: left out.
                let bt::MemberAttr::Normal { offset } = m.attr else { continue };
                let Some(mty) = btf.type_by_id::<BtfType>(m.ty) else { continue };
                let mty = btf_type(btf, mty, depth);
                align = align.max(c_align(&mty));
                let name = m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                fields.push(Member { name, offset: offset / 8, ty: mty });
            }
            Type::Record(Arc::new(Record { name, fields, size, align }))
        }
        _ => byte,
    }
}

fn int_of(size: u64, signed: bool) -> Type {
    match size {
        1 | 2 | 4 | 8 => Type::Int { bytes: size as u8, signed },
        _ => Type::Int { bytes: 8, signed },
    }
}
