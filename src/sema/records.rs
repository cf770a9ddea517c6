//! Struct and union definitions written in the script, laid out as a C
//! compiler does (natural alignment, unions overlay their members).

use super::check::Checker;
use crate::parser::ast::{EnumDef, FieldDef, StructDef};
use crate::probe::Detail;
use crate::types::{c_align, c_size, BitField, EnumType, Member, Record, Type};
use std::sync::Arc;

impl<'a> Checker<'a> {
    /// Lays out every definition of the program, in order (a member may use
    /// a struct defined before it).
    pub fn define_records(&mut self, defs: &[StructDef]) {
        for def in defs {
            if let Some(record) = self.layout(def) {
                let key = format!("{} {}", if def.is_union { "union" } else { "struct" }, def.name);
                self.records.insert(key, Arc::new(record));
            }
        }
    }

    /// The script's enums: their constants become names the program can
    /// use, typed by their enum (8 bytes wide, as bpftrace v0.26 sizes them).
    pub fn define_enums(&mut self, defs: &[EnumDef]) {
        for def in defs {
            let name = if def.name.is_empty() { "enum".to_string() } else { format!("enum {}", def.name) };
            let signed = def.variants.iter().any(|(_, v)| *v < 0);
            let variants = def.variants.iter().map(|(n, v)| (n.clone(), *v as u64)).collect();
            let e = Arc::new(EnumType { name: name.clone(), bytes: 8, signed, variants });
            for (constant, value) in &e.variants {
                self.enum_constants.insert(constant.clone(), (e.clone(), *value));
            }
            if !def.name.is_empty() {
                self.enums.insert(name, e);
            }
        }
    }

    /// `enum Foo`: defined in the script, or else in the kernel's BTF.
    pub fn enum_type(&mut self, name: &str) -> Option<Arc<EnumType>> {
        if let Some(e) = self.enums.get(name) {
            return Some(e.clone());
        }
        let e = Arc::new(self.env.facts.0.enum_type(name)?);
        self.enums.insert(name.to_string(), e.clone());
        Some(e)
    }

    /// A constant of an enum of the script, or else of the kernel
    /// (`TCP_FIN_WAIT1`): its value, typed by its enum.
    pub fn enum_constant(&mut self, name: &str) -> Option<(Arc<EnumType>, u64)> {
        if let Some(c) = self.enum_constants.get(name) {
            return Some(c.clone());
        }
        let (e, v) = self.env.facts.0.enum_constant(name)?;
        let c = (Arc::new(e), v);
        self.enum_constants.insert(name.to_string(), c.clone());
        Some(c)
    }

    /// Lays a definition out as GCC does for this ABI: natural alignment
    /// (none when packed), bit-fields packed into units of their type.
    fn layout(&mut self, def: &StructDef) -> Option<Record> {
        let kw = if def.is_union { "union" } else { "struct" };
        // The struct so far, in bits (bit-fields end mid-byte).
        let (mut bit, mut union_size, mut align) = (0u32, 0u32, 1u32);
        let mut fields = Vec::new();
        for f in &def.fields {
            let ty = self.member_type(f)?;
            let fs = c_size(&ty);
            let fa = if def.packed { 1 } else { c_align(&ty).max(1) };
            align = align.max(fa);
            union_size = union_size.max(fs);
            let (offset, bits) = match f.bits {
                Some(width) => {
                    if !ty.is_integral() || width > fs * 8 {
                        self.error(f.span, format!("a bit-field of {} bits cannot have type {}", width, ty));
                        return None;
                    }
                    if def.is_union {
                        (0, Some(BitField { shift: 0, width: width as u8 }))
                    } else if width == 0 {
                        // `int : 0` starts the next unit.
                        bit = bit.div_ceil(fa * 8) * fa * 8;
                        continue;
                    } else {
                        let (offset, end, bf) = BitField::place(bit, width, fs, def.packed);
                        bit = end;
                        (offset, Some(bf))
                    }
                }
                None if def.is_union => (0, None),
                None => {
                    let offset = bit.div_ceil(8).div_ceil(fa) * fa;
                    bit = (offset + fs) * 8;
                    (offset, None)
                }
            };
            // An unnamed bit-field only pads.
            if !(bits.is_some() && f.name.is_empty()) {
                fields.push(Member { name: f.name.clone(), offset, ty, bits });
            }
        }
        let align = def.aligned.map_or(align, |a| if def.packed { a.max(1) } else { align.max(a) });
        let size = if def.is_union { union_size } else { bit.div_ceil(8) };
        let name = if def.name.is_empty() { String::new() } else { format!("{} {}", kw, def.name) };
        Some(Record { name, fields, size: size.div_ceil(align) * align, align })
    }

    /// A member's type: `char x[N]` is a string, other arrays are arrays
    /// (innermost dimension last).
    fn member_type(&mut self, f: &FieldDef) -> Option<Type> {
        let base = match &f.inline {
            Some(def) => {
                let r = Arc::new(self.layout(def)?);
                // `struct Bar { ... } bar;` defines `struct Bar` too, as in C.
                if !r.name.is_empty() {
                    self.records.insert(r.name.clone(), r.clone());
                }
                Type::Record(r)
            }
            None if f.ty.pointer == 0 && f.ty.base == "char" && f.array.len() == 1 => {
                return Some(Type::Str { size: f.array[0] as u32 });
            }
            None => self.type_name(&f.ty)?,
        };
        Some(f.array.iter().rev().fold(base, |elem, &len| Type::Array { elem: Box::new(elem), len: len as u32 }))
    }

    /// `struct Foo` / `union Foo`: defined in the script, or else known to
    /// the system (DWARF of the probed binaries, kernel BTF).
    pub fn record(&mut self, name: &str) -> Option<Arc<Record>> {
        if let Some(r) = self.records.get(name) {
            return Some(r.clone());
        }
        // The DWARF of the binaries the program probes may define it.
        let mut binaries: Vec<&std::path::Path> = Vec::new();
        for r in self.env.resolved.iter().flatten() {
            let path = match &r.detail {
                Detail::Uprobe(site) => site.path.as_path(),
                Detail::Usdt(site) => site.path.as_path(),
                _ => continue,
            };
            if !binaries.contains(&path) {
                binaries.push(path);
            }
        }
        let r = Arc::new(self.env.facts.0.record(name, &binaries)?);
        self.records.insert(name.to_string(), r.clone());
        Some(r)
    }

    /// A struct with its members: a stub (a pointee of a system type) is
    /// looked up by name.
    pub fn full_record(&mut self, r: &Arc<Record>) -> Arc<Record> {
        if r.is_stub() {
            if let Some(full) = self.record(&r.name) {
                return full;
            }
        }
        r.clone()
    }
}
