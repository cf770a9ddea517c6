//! DWARF of user binaries (gimli): function parameters (`args.name`, `-lv`)
//! and struct layouts, converted to the checker's types. gimli reads the
//! sections in place; rtrace needs no libdw.

use crate::types::{c_align, AddrSpace, Member, Record, Type};
use gimli::{AttributeValue, EndianArcSlice, Reader, RunTimeEndian, UnitOffset};
use object::{Object, ObjectSection};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

type R = EndianArcSlice<RunTimeEndian>;
type Die<'a, 'u> = gimli::DebuggingInformationEntry<'a, 'u, R>;

/// The debug information of one file, indexed by struct and function name.
pub struct DwarfTypes {
    dwarf: gimli::Dwarf<R>,
    units: Vec<gimli::Unit<R>>,
    /// `struct Foo` / `union Foo` → where it is defined.
    records: HashMap<String, (usize, UnitOffset)>,
    /// Function name → its definition.
    functions: HashMap<String, (usize, UnitOffset)>,
}

/// A parameter: its name, its C type as written, and where its type is.
pub struct Param {
    pub name: String,
    pub c_type: String,
    at: (usize, UnitOffset),
}

impl DwarfTypes {
    /// `None` when the file has no DWARF (stripped, or built without -g).
    pub fn load(path: &Path) -> Option<DwarfTypes> {
        let data = std::fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        file.section_by_name(".debug_info")?;
        let endian = if file.is_little_endian() { RunTimeEndian::Little } else { RunTimeEndian::Big };
        let load = |id: gimli::SectionId| -> Result<R, gimli::Error> {
            let bytes = file.section_by_name(id.name()).and_then(|s| s.uncompressed_data().ok()).unwrap_or_default();
            Ok(EndianArcSlice::new(Arc::from(&*bytes), endian))
        };
        let dwarf = gimli::Dwarf::load(load).ok()?;
        let mut out = DwarfTypes { dwarf, units: Vec::new(), records: HashMap::new(), functions: HashMap::new() };
        let mut headers = out.dwarf.units();
        while let Ok(Some(header)) = headers.next() {
            let Ok(unit) = out.dwarf.unit(header) else { continue };
            let index = out.units.len();
            let mut entries = unit.entries();
            while let Ok(Some((_, e))) = entries.next_dfs() {
                let kw = match e.tag() {
                    gimli::DW_TAG_structure_type | gimli::DW_TAG_class_type => "struct",
                    gimli::DW_TAG_union_type => "union",
                    gimli::DW_TAG_subprogram => "",
                    _ => continue,
                };
                if matches!(e.attr_value(gimli::DW_AT_declaration), Ok(Some(AttributeValue::Flag(true)))) {
                    continue;
                }
                let Some(name) = out.name(&unit, e) else { continue };
                if kw.is_empty() {
                    if e.attr_value(gimli::DW_AT_low_pc).ok().flatten().is_some() {
                        out.functions.entry(name).or_insert((index, e.offset()));
                    }
                } else {
                    out.records.entry(format!("{} {}", kw, name)).or_insert((index, e.offset()));
                }
            }
            out.units.push(unit);
        }
        Some(out)
    }

    fn name(&self, unit: &gimli::Unit<R>, e: &Die) -> Option<String> {
        let v = e.attr_value(gimli::DW_AT_name).ok()??;
        let s = self.dwarf.attr_string(unit, v).ok()?;
        Some(s.to_string_lossy().ok()?.into_owned())
    }

    fn entry(&self, at: (usize, UnitOffset)) -> Option<Die<'_, '_>> {
        self.units.get(at.0)?.entry(at.1).ok()
    }

    /// The entry an attribute such as `DW_AT_type` points to.
    fn reference(&self, unit: usize, e: &Die, attr: gimli::DwAt) -> Option<(usize, UnitOffset)> {
        match e.attr_value(attr).ok()?? {
            AttributeValue::UnitRef(off) => Some((unit, off)),
            _ => None,
        }
    }

    fn udata(e: &Die, attr: gimli::DwAt) -> Option<u64> {
        e.attr_value(attr).ok()??.udata_value()
    }

    /// The parameters of a function defined in this file.
    pub fn params(&self, func: &str) -> Option<Vec<Param>> {
        let at = *self.functions.get(func)?;
        let unit = &self.units[at.0];
        let mut tree = unit.entries_tree(Some(at.1)).ok()?;
        let root = tree.root().ok()?;
        let mut children = root.children();
        let mut out = Vec::new();
        while let Ok(Some(child)) = children.next() {
            let e = child.entry();
            if e.tag() != gimli::DW_TAG_formal_parameter {
                continue;
            }
            let name = self.name(unit, e).unwrap_or_else(|| format!("arg{}", out.len()));
            let Some(ty) = self.reference(at.0, e, gimli::DW_AT_type) else { continue };
            out.push(Param { name, c_type: self.c_name(ty, 0), at: ty });
        }
        Some(out)
    }

    /// The type of a parameter, for the checker.
    pub fn param_type(&self, p: &Param) -> Type {
        self.convert(p.at, 1)
    }

    pub fn record(&self, name: &str) -> Option<Record> {
        match self.convert(*self.records.get(name)?, 0) {
            Type::Record(r) => Some((*r).clone()),
            _ => None,
        }
    }

    /// A type as C writes it (`int*`, `struct Foo*`, `const char*`), as
    /// bpftrace's `-lv` shows parameters.
    fn c_name(&self, at: (usize, UnitOffset), depth: u32) -> String {
        let Some(e) = self.entry(at) else { return "?".into() };
        let unit = &self.units[at.0];
        let next = |this: &Self| match this.reference(at.0, &e, gimli::DW_AT_type) {
            Some(t) if depth < 16 => this.c_name(t, depth + 1),
            _ => "void".to_string(),
        };
        let named = self.name(unit, &e);
        match e.tag() {
            gimli::DW_TAG_pointer_type => format!("{}*", next(self)),
            gimli::DW_TAG_reference_type => format!("{}&", next(self)),
            gimli::DW_TAG_const_type => format!("const {}", next(self)),
            gimli::DW_TAG_volatile_type => format!("volatile {}", next(self)),
            gimli::DW_TAG_structure_type => format!("struct {}", named.unwrap_or_default()),
            gimli::DW_TAG_union_type => format!("union {}", named.unwrap_or_default()),
            gimli::DW_TAG_enumeration_type => format!("enum {}", named.unwrap_or_default()),
            gimli::DW_TAG_array_type => format!("{}[]", next(self)),
            gimli::DW_TAG_subroutine_type => "void (*)()".into(),
            _ => named.unwrap_or_else(|| "?".into()),
        }
    }

    /// Converts a type. `depth` counts pointers followed: a struct behind a
    /// pointer becomes a stub, looked up by name when it is used.
    fn convert(&self, at: (usize, UnitOffset), depth: u32) -> Type {
        let byte = Type::Int { bytes: 1, signed: false };
        let Some(e) = self.entry(at) else { return byte };
        let unit = &self.units[at.0];
        let size = Self::udata(&e, gimli::DW_AT_byte_size).unwrap_or(0);
        let inner = |this: &Self, d: u32| match this.reference(at.0, &e, gimli::DW_AT_type) {
            Some(t) if d < 32 => this.convert(t, d),
            _ => byte.clone(),
        };
        match e.tag() {
            gimli::DW_TAG_base_type
                if matches!(
                    e.attr_value(gimli::DW_AT_encoding),
                    Ok(Some(AttributeValue::Encoding(gimli::DW_ATE_float)))
                ) =>
            {
                Type::Float { bytes: size as u8 }
            }
            gimli::DW_TAG_base_type | gimli::DW_TAG_enumeration_type => {
                let signed = matches!(
                    e.attr_value(gimli::DW_AT_encoding),
                    Ok(Some(AttributeValue::Encoding(gimli::DW_ATE_signed | gimli::DW_ATE_signed_char)))
                );
                Type::c_int(size, signed)
            }
            gimli::DW_TAG_pointer_type | gimli::DW_TAG_reference_type | gimli::DW_TAG_rvalue_reference_type => {
                Type::Ptr { pointee: Box::new(inner(self, depth + 1)), space: AddrSpace::User }
            }
            gimli::DW_TAG_typedef
            | gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_restrict_type
            | gimli::DW_TAG_atomic_type => inner(self, depth),
            gimli::DW_TAG_structure_type | gimli::DW_TAG_class_type | gimli::DW_TAG_union_type => {
                let kw = if e.tag() == gimli::DW_TAG_union_type { "union" } else { "struct" };
                let name = self.name(unit, &e).map(|n| format!("{} {}", kw, n)).unwrap_or_default();
                if depth > 0 && !name.is_empty() {
                    let size = size as u32;
                    return Type::Record(Arc::new(Record { name, fields: vec![], size, align: 8 }));
                }
                Type::Record(Arc::new(self.layout(at, name, size as u32, depth)))
            }
            gimli::DW_TAG_array_type => {
                let elem = inner(self, depth);
                let dims = self.dimensions(at);
                // `char name[N]` is a string, as in script definitions.
                if dims.len() == 1 && matches!(elem, Type::Int { bytes: 1, .. }) {
                    return Type::Str { size: dims[0] };
                }
                dims.iter().rev().fold(elem, |t, &len| Type::Array { elem: Box::new(t), len })
            }
            gimli::DW_TAG_subroutine_type => byte,
            _ => Type::c_int(size, false),
        }
    }

    fn dimensions(&self, at: (usize, UnitOffset)) -> Vec<u32> {
        let unit = &self.units[at.0];
        let mut dims = Vec::new();
        let Ok(mut tree) = unit.entries_tree(Some(at.1)) else { return dims };
        let Ok(root) = tree.root() else { return dims };
        let mut children = root.children();
        while let Ok(Some(child)) = children.next() {
            let e = child.entry();
            if e.tag() != gimli::DW_TAG_subrange_type {
                continue;
            }
            let n = Self::udata(e, gimli::DW_AT_count)
                .or_else(|| Self::udata(e, gimli::DW_AT_upper_bound).map(|u| u + 1))
                .unwrap_or(0);
            dims.push(n as u32);
        }
        dims
    }

    fn layout(&self, at: (usize, UnitOffset), name: String, size: u32, depth: u32) -> Record {
        let unit = &self.units[at.0];
        let mut fields = Vec::new();
        let mut align = 1;
        if let Ok(mut tree) = unit.entries_tree(Some(at.1)) {
            if let Ok(root) = tree.root() {
                let mut children = root.children();
                while let Ok(Some(child)) = children.next() {
                    let e = child.entry();
                    if e.tag() != gimli::DW_TAG_member {
                        continue;
                    }
                    let Some(ty) = self.reference(at.0, e, gimli::DW_AT_type) else { continue };
                    let ty = self.convert(ty, depth);
                    align = align.max(c_align(&ty));
                    let mut offset = Self::udata(e, gimli::DW_AT_data_member_location).unwrap_or(0) as u32;
                    let mut bits = None;
                    if let Some(width) = Self::udata(e, gimli::DW_AT_bit_size) {
                        // DWARF 4+: the field's first bit from the struct's start.
                        let Some(bit) = Self::udata(e, gimli::DW_AT_data_bit_offset) else { continue };
                        let Some((unit, bf)) =
                            crate::types::BitField::in_unit(bit as u32, width as u32, crate::types::c_size(&ty))
                        else {
                            continue;
                        };
                        (offset, bits) = (unit, Some(bf));
                    }
                    fields.push(Member { name: self.name(unit, e).unwrap_or_default(), offset, ty, bits });
                }
            }
        }
        Record { name, fields, size, align }
    }
}
