//! USDT probes of an ELF file: the `stapsdt` notes sys/sdt.h leaves in
//! `.note.stapsdt`, each a probed address, a semaphore address, a provider,
//! a name and the argument specs.

use object::{Object, ObjectSection};

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
    let Some(bytes) = file.section_by_name(".note.stapsdt").and_then(|s| s.data().ok()) else { return vec![] };
    let base_section = file.section_by_name(".stapsdt.base").map(|s| s.address());
    let word = if file.is_64() { 8 } else { 4 };
    parse_notes(bytes, file.is_little_endian(), word, base_section)
}

fn parse_notes(bytes: &[u8], little: bool, word: usize, base_section: Option<u64>) -> Vec<UsdtNote> {
    let u32_at = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let addr_at = |b: &[u8]| -> u64 {
        let mut a = [0u8; 8];
        if little {
            a[..word].copy_from_slice(&b[..word]);
            u64::from_le_bytes(a)
        } else {
            a[8 - word..].copy_from_slice(&b[..word]);
            u64::from_be_bytes(a)
        }
    };
    let align4 = |n: usize| (n + 3) & !3;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        let namesz = u32_at(&bytes[pos..]) as usize;
        let descsz = u32_at(&bytes[pos + 4..]) as usize;
        let kind = u32_at(&bytes[pos + 8..]);
        let name_start = pos + 12;
        let desc_start = name_start + align4(namesz);
        let next = desc_start + align4(descsz);
        if next > bytes.len() || desc_start + descsz > bytes.len() {
            break;
        }
        let name = &bytes[name_start..name_start + namesz];
        let desc = &bytes[desc_start..desc_start + descsz];
        pos = next;
        if kind != NT_STAPSDT || name != b"stapsdt\0" || desc.len() < 3 * word {
            continue;
        }
        let (mut address, base, mut semaphore) = (addr_at(desc), addr_at(&desc[word..]), addr_at(&desc[2 * word..]));
        if let Some(actual) = base_section {
            // Prelinked or relocated: shift by how far `.stapsdt.base` moved.
            let delta = actual.wrapping_sub(base);
            address = address.wrapping_add(delta);
            if semaphore != 0 {
                semaphore = semaphore.wrapping_add(delta);
            }
        }
        let mut strings = desc[3 * word..].split(|b| *b == 0).map(|s| String::from_utf8_lossy(s).into_owned());
        let (Some(provider), Some(probe)) = (strings.next(), strings.next()) else { continue };
        let args = strings.next().unwrap_or_default();
        out.push(UsdtNote { provider, name: probe, address, semaphore, args });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_note() {
        let mut desc = Vec::new();
        desc.extend(0x1139u64.to_le_bytes());
        desc.extend(0x2004u64.to_le_bytes());
        desc.extend(0x4010u64.to_le_bytes());
        desc.extend(b"prov\0probe\0-4@%edi 8@%rsi\0");
        let mut note = Vec::new();
        note.extend(8u32.to_le_bytes());
        note.extend((desc.len() as u32).to_le_bytes());
        note.extend(3u32.to_le_bytes());
        note.extend(b"stapsdt\0");
        note.extend(&desc);
        note.resize((note.len() + 3) & !3, 0);
        let notes = parse_notes(&note, true, 8, Some(0x2008));
        assert_eq!(
            notes,
            vec![UsdtNote {
                provider: "prov".into(),
                name: "probe".into(),
                address: 0x113d,
                semaphore: 0x4014,
                args: "-4@%edi 8@%rsi".into()
            }]
        );
    }
}
