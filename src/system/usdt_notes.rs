//! USDT probes of an ELF file: the `stapsdt` notes sys/sdt.h leaves in
//! `.note.stapsdt`, each a probed address, a semaphore address, a provider,
//! a name and the argument specs. `object` walks the notes; this reads
//! their descriptors.

use object::read::elf::{ElfFile, FileHeader, SectionHeader, SectionTable};
use object::{Endian, Endianness, Object, ObjectSection};

/// One probe site as its note describes it (addresses are link-time virtual
/// addresses, already adjusted for prelinking through `.stapsdt.base`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsdtNote {
    pub provider: String,
    pub name: String,
    pub address: u64,
    /// 0 when the probe has no semaphore.
    pub semaphore: u64,
    pub args: String,
}

const NT_STAPSDT: u32 = 3;

/// Every USDT note of a parsed ELF file (none when it has no notes).
pub fn notes_of(file: &object::File<'_>) -> Vec<UsdtNote> {
    let base_section = file.section_by_name(".stapsdt.base").map(|s| s.address());
    match file {
        object::File::Elf64(elf) => notes_in(elf, base_section),
        object::File::Elf32(elf) => notes_in(elf, base_section),
        _ => vec![],
    }
}

fn notes_in<Elf: FileHeader<Endian = Endianness>>(file: &ElfFile<'_, Elf>, base_section: Option<u64>) -> Vec<UsdtNote> {
    let endian = file.endian();
    let table: &SectionTable<'_, Elf> = file.elf_section_table();
    let Some((_, section)) = table.section_by_name(endian, b".note.stapsdt") else { return vec![] };
    let Ok(Some(mut notes)) = section.notes(endian, file.data()) else { return vec![] };
    let word = if file.is_64() { 8 } else { 4 };
    let mut out = Vec::new();
    while let Ok(Some(note)) = notes.next() {
        if note.n_type(endian).0 == NT_STAPSDT && note.name() == b"stapsdt" {
            out.extend(parse_desc(note.desc(), endian.is_little_endian(), word, base_section));
        }
    }
    out
}

/// A `stapsdt` descriptor: three addresses (probe, `.stapsdt.base` at link
/// time, semaphore), then provider, name and argument specs, NUL-terminated.
fn parse_desc(desc: &[u8], little: bool, word: usize, base_section: Option<u64>) -> Option<UsdtNote> {
    let addr_at = |at: usize| -> Option<u64> {
        let b = desc.get(at..at + word)?;
        let mut a = [0u8; 8];
        Some(if little {
            a[..word].copy_from_slice(b);
            u64::from_le_bytes(a)
        } else {
            a[8 - word..].copy_from_slice(b);
            u64::from_be_bytes(a)
        })
    };
    let (mut address, base, mut semaphore) = (addr_at(0)?, addr_at(word)?, addr_at(2 * word)?);
    if let Some(actual) = base_section {
        // Prelinked or relocated: shift by how far `.stapsdt.base` moved.
        let delta = actual.wrapping_sub(base);
        address = address.wrapping_add(delta);
        if semaphore != 0 {
            semaphore = semaphore.wrapping_add(delta);
        }
    }
    let mut strings = desc[3 * word..].split(|b| *b == 0).map(|s| String::from_utf8_lossy(s).into_owned());
    let (provider, name) = (strings.next()?, strings.next()?);
    let args = strings.next().unwrap_or_default();
    Some(UsdtNote { provider, name, address, semaphore, args })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_descriptor() {
        let mut desc = Vec::new();
        desc.extend(0x1139u64.to_le_bytes());
        desc.extend(0x2004u64.to_le_bytes());
        desc.extend(0x4010u64.to_le_bytes());
        desc.extend(b"prov\0probe\0-4@%edi 8@%rsi\0");
        let note = parse_desc(&desc, true, 8, Some(0x2008));
        assert_eq!(
            note,
            Some(UsdtNote {
                provider: "prov".into(),
                name: "probe".into(),
                address: 0x113d,
                semaphore: 0x4014,
                args: "-4@%edi 8@%rsi".into()
            })
        );
        assert_eq!(parse_desc(&desc[..20], true, 8, None), None);
    }
}
