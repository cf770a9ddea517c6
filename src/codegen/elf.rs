//! `Image` → an ELF relocatable object for libbpf (`open_memory`): one
//! section per program kind, `.maps` with BTF-described map definitions,
//! `.rodata`, `license`, `.BTF`, `.BTF.ext` and REL relocations: the layout
//! libbpf expects of clang's BPF objects (every test that loads a program
//! checks it on the running kernel).

use super::btf::{encode_ext, Btf, ExtSection};
use super::image::{Image, LineInfo, MapKind, Reloc, RelocTarget};
use super::insn::Insn;
use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};
use std::collections::BTreeMap;

/// `R_BPF_64_64`: a 64-bit immediate (`ld_imm64`) to patch with a map fd or address.
const R_BPF_64_64: object::elf::RelocationType = object::elf::R_BPF_64_64;

/// The variable `.bss` holds: the counters of `contract::Counters`.
const COUNTERS_VAR: &str = "rtrace_counters";

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot write the object: {0}")]
    Write(String),
    #[error("relocation at instruction {insn} of `{program}` is not an ld_imm64")]
    BadReloc { program: String, insn: usize },
}

pub fn write(image: &Image) -> Result<Vec<u8>, ElfError> {
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
    let mut btf = Btf::new();

    // Maps: one definition struct per map in `.maps`, 8 bytes per member.
    let maps_sec = obj.add_section(vec![], b".maps".to_vec(), SectionKind::Data);
    let mut map_symbols = Vec::new();
    let mut datasec_vars = Vec::new();
    let mut offset = 0u64;
    for m in &image.maps {
        let mut members: Vec<(&str, u32)> = vec![("type", m.kind as u32), ("max_entries", m.max_entries)];
        if m.kind != MapKind::Ringbuf {
            members.push(("key_size", m.key_size));
            members.push(("value_size", m.value_size));
        }
        if m.flags != 0 {
            members.push(("map_flags", m.flags));
        }
        let size = 8 * members.len() as u64;
        obj.append_section_data(maps_sec, &vec![0u8; size as usize], 8);
        let var = btf.map_var(&m.name, &members);
        datasec_vars.push((var, offset as u32, size as u32));
        // Dynamic scope = STB_GLOBAL + STV_DEFAULT: libbpf rejects hidden ("static") maps.
        map_symbols.push(obj.add_symbol(Symbol {
            name: m.name.as_bytes().to_vec(),
            value: offset,
            size,
            kind: SymbolKind::Data,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: SymbolSection::Section(maps_sec),
            flags: SymbolFlags::None,
        }));
        offset += size;
    }
    btf.datasec(".maps", &datasec_vars);

    let rodata_sym = if image.rodata.is_empty() {
        None
    } else {
        let sec = obj.add_section(vec![], b".rodata".to_vec(), SectionKind::ReadOnlyData);
        obj.append_section_data(sec, &image.rodata, 8);
        Some(obj.section_symbol(sec))
    };

    let bss_sym = if image.bss_size == 0 {
        None
    } else {
        let sec = obj.add_section(vec![], b".bss".to_vec(), SectionKind::UninitializedData);
        obj.append_section_bss(sec, image.bss_size as u64, 8);
        // One global variable over the whole section, described in BTF: then
        // libbpf makes the map memory-mappable, and the runtime reads and
        // writes single counters atomically through the mapping
        // (`runtime::bss`). libbpf finds the variable by its ELF symbol.
        let size = image.bss_size as u64;
        let var = btf.u64_array_var(COUNTERS_VAR, (size / 8) as u32);
        btf.datasec(".bss", &[(var, 0, size as u32)]);
        obj.add_symbol(Symbol {
            name: COUNTERS_VAR.as_bytes().to_vec(),
            value: 0,
            size,
            kind: SymbolKind::Data,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: SymbolSection::Section(sec),
            flags: SymbolFlags::None,
        });
        Some(obj.section_symbol(sec))
    };

    let targets = Targets { maps: &map_symbols, rodata: rodata_sym, bss: bss_sym };
    let file_off = btf.string(&image.source_name);
    let mut ext: BTreeMap<&str, ExtSection> = BTreeMap::new();

    // Callbacks (`for` loop bodies) are static functions in `.text`, where
    // libbpf looks for subprograms; it appends each to the programs that
    // take its address. Their offsets first: the code refers to them.
    let mut text_offsets: Vec<Vec<u64>> = Vec::new();
    let mut text_size = 0u64;
    for prog in &image.programs {
        let mut offsets = Vec::new();
        for sub in &prog.subprogs {
            offsets.push(text_size);
            text_size += 8 * sub.insns.len() as u64;
        }
        text_offsets.push(offsets);
    }
    let mut text_sym = None;
    if text_size > 0 {
        let text = obj.add_section(vec![], b".text".to_vec(), SectionKind::Text);
        let sym = obj.section_symbol(text);
        text_sym = Some(sym);
        let section_name_off = btf.string(".text");
        for (prog, offsets) in image.programs.iter().zip(&text_offsets) {
            for sub in &prog.subprogs {
                let start = append_function(
                    &mut obj,
                    text,
                    (&sub.name, SymbolScope::Compilation),
                    (&sub.insns, &sub.relocs),
                    &targets,
                    (text_sym, offsets),
                )?;
                let func = btf.callback(&sub.name, &sub.params);
                let entry =
                    ext.entry(".text").or_insert_with(|| ExtSection { section_name_off, funcs: vec![], lines: vec![] });
                record_ext(entry, &mut btf, start, func, &sub.lines, file_off);
            }
        }
    }

    // Programs of one kind share a section (libbpf splits them by symbol).
    let mut sections: BTreeMap<&str, SectionId> = BTreeMap::new();
    for (prog, offsets) in image.programs.iter().zip(&text_offsets) {
        let sec = *sections
            .entry(prog.section.as_str())
            .or_insert_with(|| obj.add_section(vec![], prog.section.as_bytes().to_vec(), SectionKind::Text));
        let start = append_function(
            &mut obj,
            sec,
            (&prog.name, SymbolScope::Dynamic),
            (&prog.insns, &prog.relocs),
            &targets,
            (text_sym, offsets),
        )?;
        let func = btf.program(&prog.name);
        let section_name_off = btf.string(&prog.section);
        let entry = ext.entry(prog.section.as_str()).or_insert_with(|| ExtSection {
            section_name_off,
            funcs: vec![],
            lines: vec![],
        });
        record_ext(entry, &mut btf, start, func, &prog.lines, file_off);
    }

    let license = obj.add_section(vec![], b"license".to_vec(), SectionKind::Data);
    let text = if image.license.is_empty() { "GPL" } else { &image.license };
    obj.append_section_data(license, format!("{}\0", text).as_bytes(), 1);
    let ext_sections: Vec<ExtSection> = ext.into_values().collect();
    let ext_bytes = encode_ext(&ext_sections);
    let btf_sec = obj.add_section(vec![], b".BTF".to_vec(), SectionKind::Other);
    obj.append_section_data(btf_sec, &btf.encode(), 4);
    let ext_sec = obj.add_section(vec![], b".BTF.ext".to_vec(), SectionKind::Other);
    obj.append_section_data(ext_sec, &ext_bytes, 4);
    obj.write().map_err(|e| ElfError::Write(e.to_string()))
}

/// The symbols relocations point at.
struct Targets<'a> {
    maps: &'a [SymbolId],
    rodata: Option<SymbolId>,
    bss: Option<SymbolId>,
}

/// Appends one function's code to `sec` under the symbol `name` (global
/// for a program, local for a callback), with its relocations. `funcs`:
/// the `.text` section symbol and the offsets there of the program's
/// callbacks. Returns the function's offset in `sec`.
fn append_function(
    obj: &mut Object,
    sec: SectionId,
    (name, scope): (&str, SymbolScope),
    (insns, relocs): (&[Insn], &[Reloc]),
    targets: &Targets,
    (text_sym, funcs): (Option<SymbolId>, &[u64]),
) -> Result<u64, ElfError> {
    let mut insns = insns.to_vec();
    let mut patches = Vec::new();
    for r in relocs {
        if !insns.get(r.insn).is_some_and(|i| i.is_ld_imm64()) {
            return Err(ElfError::BadReloc { program: name.to_string(), insn: r.insn });
        }
        let symbol = match r.target {
            RelocTarget::Map(m) => targets.maps[m],
            RelocTarget::Rodata => {
                targets.rodata.ok_or_else(|| ElfError::Write("rodata relocation without .rodata".into()))?
            }
            RelocTarget::Bss => targets.bss.ok_or_else(|| ElfError::Write("bss relocation without .bss".into()))?,
            RelocTarget::Func(f) => {
                // Against `.text` itself: libbpf takes the callback's byte
                // offset there from the instruction's imm (as clang emits
                // the address of a static function).
                insns[r.insn].imm = funcs[f] as i32;
                text_sym.ok_or_else(|| ElfError::Write("callback relocation without .text".into()))?
            }
        };
        patches.push((r.insn, symbol));
    }
    let bytes: Vec<u8> = insns.iter().flat_map(|i| i.encode()).collect();
    let start = obj.append_section_data(sec, &bytes, 8);
    obj.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value: start,
        size: bytes.len() as u64,
        kind: SymbolKind::Text,
        scope,
        weak: false,
        section: SymbolSection::Section(sec),
        flags: SymbolFlags::None,
    });
    for (insn, symbol) in patches {
        // Addend 0: with REL the addend would be written over the instruction.
        obj.add_relocation(
            sec,
            Relocation {
                offset: start + 8 * insn as u64,
                symbol,
                addend: 0,
                flags: RelocationFlags::Elf { r_type: R_BPF_64_64 },
            },
        )
        .map_err(|e| ElfError::Write(e.to_string()))?;
    }
    Ok(start)
}

/// A function's func_info and line_info records.
fn record_ext(entry: &mut ExtSection, btf: &mut Btf, start: u64, func: u32, lines: &[LineInfo], file_off: u32) {
    entry.funcs.push((start as u32, func));
    for l in lines {
        let text = btf.string(&l.text);
        entry.lines.push((start as u32 + 8 * l.insn as u32, file_off, text, l.line, l.col));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::image::{MapSpec, ProgramImage};
    use crate::codegen::insn::*;
    use object::{Object as _, ObjectSection, ObjectSymbol};

    fn sample() -> Image {
        let mut insns = ld_imm64(R1, 0, 0).to_vec();
        insns.extend([mov64_imm(R0, 0), exit()]);
        Image {
            programs: vec![ProgramImage {
                name: "p0".into(),
                section: "tracepoint".into(),
                insns,
                relocs: vec![Reloc { insn: 0, target: RelocTarget::Map(0) }],
                lines: vec![LineInfo { insn: 0, line: 1, col: 1, text: "BEGIN { }".into() }],
                subprogs: vec![],
            }],
            maps: vec![MapSpec {
                name: "m0".into(),
                kind: MapKind::Hash,
                key_size: 8,
                value_size: 8,
                max_entries: 16,
                flags: 0,
            }],
            rodata: vec![],
            bss_size: 16,
            source_name: "stdin".into(),
            license: "Dual BSD/GPL".into(),
        }
    }

    #[test]
    fn layout_parses_back() {
        let bytes = write(&sample()).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        for name in ["tracepoint", ".maps", "license", ".BTF", ".BTF.ext"] {
            assert!(file.section_by_name(name).is_some(), "missing {}", name);
        }
        assert_eq!(file.section_by_name("license").unwrap().data().unwrap(), b"Dual BSD/GPL\0");
        let prog = file.symbols().find(|s| s.name() == Ok("p0")).unwrap();
        assert!(prog.is_global());
        assert_eq!(prog.size(), 32);
        let map = file.symbols().find(|s| s.name() == Ok("m0")).unwrap();
        assert!(map.is_global());
        let counters = file.symbols().find(|s| s.name() == Ok(COUNTERS_VAR)).unwrap();
        assert!(counters.is_global() && counters.size() == 16);
        let tp = file.section_by_name("tracepoint").unwrap();
        let relocs: Vec<_> = tp.relocations().collect();
        assert_eq!(relocs.len(), 1);
        assert_eq!(relocs[0].0, 0);
        assert_eq!(&tp.data().unwrap()[..8], &ld_imm64(R1, 0, 0)[0].encode(), "addend must not touch the instruction");
    }
}
