//! `.BTF` and `.BTF.ext` for the objects rtrace writes. libbpf needs BTF to
//! create maps declared in `.maps` (each map is a struct whose members encode
//! `__uint(type, N)` as a pointer to an array of N ints), and the kernel
//! shows our `line_info` source text in verifier logs.

use std::collections::HashMap;

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const INT_SIGNED: u32 = 1;
/// BTF_FUNC_GLOBAL / BTF_VAR_GLOBAL_ALLOCATED: libbpf rejects static maps and programs.
const LINKAGE_GLOBAL: u32 = 1;
/// BTF_FUNC_STATIC: what a callback must be.
const LINKAGE_STATIC: u32 = 0;

/// Builds the type section and the string table of `.BTF`.
#[derive(Debug)]
pub struct Btf {
    types: Vec<u8>,
    strings: Vec<u8>,
    string_index: HashMap<String, u32>,
    next_id: u32,
    int_id: Option<u32>,
    long_id: Option<u32>,
    array_ids: HashMap<u32, u32>,
}

impl Default for Btf {
    fn default() -> Self {
        Btf::new()
    }
}

impl Btf {
    pub fn new() -> Btf {
        Btf {
            types: Vec::new(),
            strings: vec![0],
            string_index: HashMap::new(),
            next_id: 1,
            int_id: None,
            long_id: None,
            array_ids: HashMap::new(),
        }
    }

    /// Offset of `s` in the string table (added once).
    pub fn string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if let Some(&off) = self.string_index.get(s) {
            return off;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        self.string_index.insert(s.to_string(), off);
        off
    }

    fn push_type(&mut self, name_off: u32, kind: u32, vlen: u32, size_or_type: u32, extra: &[u32]) -> u32 {
        for word in [name_off, (kind << 24) | vlen, size_or_type].iter().chain(extra) {
            self.types.extend_from_slice(&word.to_le_bytes());
        }
        self.next_id += 1;
        self.next_id - 1
    }

    /// `int`: element and index type of the map-definition arrays.
    fn int(&mut self) -> u32 {
        if let Some(id) = self.int_id {
            return id;
        }
        let name = self.string("int");
        let id = self.push_type(name, KIND_INT, 0, 4, &[(INT_SIGNED << 24) | 32]);
        self.int_id = Some(id);
        id
    }

    /// `int (*)[n]`: how libbpf's `__uint(name, n)` encodes a number.
    fn uint_member(&mut self, n: u32) -> u32 {
        let array = match self.array_ids.get(&n) {
            Some(&id) => id,
            None => {
                let int = self.int();
                let id = self.push_type(0, KIND_ARRAY, 0, 0, &[int, int, n]);
                self.array_ids.insert(n, id);
                id
            }
        };
        self.push_type(0, KIND_PTR, 0, array, &[])
    }

    /// A map definition struct; `members` are `(name, value)` pairs.
    /// Returns the VAR type id.
    pub fn map_var(&mut self, name: &str, members: &[(&str, u32)]) -> u32 {
        let ids: Vec<(u32, u32)> = members.iter().map(|(n, v)| (self.string(n), self.uint_member(*v))).collect();
        let mut extra = Vec::new();
        for (i, (name_off, ty)) in ids.iter().enumerate() {
            extra.extend([*name_off, *ty, (i as u32) * 64]);
        }
        let st = self.push_type(0, KIND_STRUCT, ids.len() as u32, 8 * ids.len() as u32, &extra);
        let name_off = self.string(name);
        self.push_type(name_off, KIND_VAR, 0, st, &[LINKAGE_GLOBAL])
    }

    /// A global `unsigned long long name[n]`: the VAR id. A section's
    /// DATASEC that lists a global variable makes libbpf create the
    /// section's map with `BPF_F_MMAPABLE` (`map_is_mmapable`).
    pub fn u64_array_var(&mut self, name: &str, n: u32) -> u32 {
        let int = self.int();
        let u64_name = self.string("unsigned long long");
        let u64_id = self.push_type(u64_name, KIND_INT, 0, 8, &[64]);
        let array = self.push_type(0, KIND_ARRAY, 0, 0, &[u64_id, int, n]);
        let name_off = self.string(name);
        self.push_type(name_off, KIND_VAR, 0, array, &[LINKAGE_GLOBAL])
    }

    /// `DATASEC '.maps'` listing the map variables: `(var id, offset, size)`.
    pub fn datasec(&mut self, name: &str, vars: &[(u32, u32, u32)]) -> u32 {
        let size: u32 = vars.iter().map(|(_, off, sz)| off + sz).max().unwrap_or(0);
        let extra: Vec<u32> = vars.iter().flat_map(|(v, off, sz)| [*v, *off, *sz]).collect();
        let name_off = self.string(name);
        self.push_type(name_off, KIND_DATASEC, vars.len() as u32, size, &extra)
    }

    /// A FUNC for a program, `int name(void)`. Without parameters the
    /// verifier does not try to size a `void *ctx` (and log a warning).
    pub fn program(&mut self, name: &str) -> u32 {
        let int = self.int();
        let proto = self.push_type(0, KIND_FUNC_PROTO, 0, int, &[]);
        let name_off = self.string(name);
        self.push_type(name_off, KIND_FUNC, LINKAGE_GLOBAL, proto, &[])
    }

    /// A FUNC for a callback, `static long name(long p1, ...)`. The
    /// verifier refuses a callback whose FUNC is not static ("callback
    /// function not static"), and a FUNC's parameters need names.
    pub fn callback(&mut self, name: &str, params: &[&str]) -> u32 {
        let long = self.long();
        let mut extra = Vec::new();
        for p in params {
            extra.extend([self.string(p), long]);
        }
        let proto = self.push_type(0, KIND_FUNC_PROTO, params.len() as u32, long, &extra);
        let name_off = self.string(name);
        self.push_type(name_off, KIND_FUNC, LINKAGE_STATIC, proto, &[])
    }

    /// `long`: a callback's return and parameter type.
    fn long(&mut self) -> u32 {
        if let Some(id) = self.long_id {
            return id;
        }
        let name = self.string("long");
        let id = self.push_type(name, KIND_INT, 0, 8, &[(INT_SIGNED << 24) | 64]);
        self.long_id = Some(id);
        id
    }

    /// The `.BTF` section bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.types.len() + self.strings.len());
        out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        out.push(1); // version
        out.push(0); // flags
        for word in [24u32, 0, self.types.len() as u32, self.types.len() as u32, self.strings.len() as u32] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// One program's records for `.BTF.ext`, offsets in bytes from the start of
/// its ELF section.
#[derive(Debug, Clone)]
pub struct ExtSection {
    pub section_name_off: u32,
    /// `(insn byte offset, FUNC type id)`
    pub funcs: Vec<(u32, u32)>,
    /// `(insn byte offset, file name off, line text off, line, column)`
    pub lines: Vec<(u32, u32, u32, u32, u32)>,
}

/// The `.BTF.ext` section: func_info and line_info, grouped per ELF section.
pub fn encode_ext(sections: &[ExtSection]) -> Vec<u8> {
    let mut func = Vec::new();
    func.extend_from_slice(&8u32.to_le_bytes());
    let mut line = Vec::new();
    line.extend_from_slice(&16u32.to_le_bytes());
    for s in sections {
        if !s.funcs.is_empty() {
            for w in [s.section_name_off, s.funcs.len() as u32] {
                func.extend_from_slice(&w.to_le_bytes());
            }
            for (off, ty) in &s.funcs {
                func.extend_from_slice(&off.to_le_bytes());
                func.extend_from_slice(&ty.to_le_bytes());
            }
        }
        if !s.lines.is_empty() {
            for w in [s.section_name_off, s.lines.len() as u32] {
                line.extend_from_slice(&w.to_le_bytes());
            }
            for (off, file, text, l, col) in &s.lines {
                for w in [*off, *file, *text, (l << 10) | (col & 0x3ff)] {
                    line.extend_from_slice(&w.to_le_bytes());
                }
            }
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
    out.push(1);
    out.push(0);
    let (fl, ll) = (func.len() as u32, line.len() as u32);
    for w in [32u32, 0, fl, fl, ll, fl + ll, 0] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&func);
    out.extend_from_slice(&line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_ringbuf_map_byte_exact() {
        let mut b = Btf::new();
        let var = b.map_var("events", &[("type", 27), ("max_entries", 4096)]);
        b.datasec(".maps", &[(var, 0, 16)]);
        let bytes = b.encode();
        assert_eq!(&bytes[..4], &[0x9f, 0xeb, 1, 0]);
        let type_len = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
        // int(16) + array(24) + ptr(12) + array(24) + ptr(12) + struct(12+24) + var(16) + datasec(12+12)
        assert_eq!(type_len, 16 + 24 + 12 + 24 + 12 + 36 + 16 + 24);
        let strings = &bytes[24 + type_len as usize..];
        assert_eq!(strings, b"\0type\0int\0max_entries\0events\0.maps\0");
    }

    #[test]
    fn ext_header_points_at_both_tables() {
        let ext = encode_ext(&[ExtSection { section_name_off: 5, funcs: vec![(0, 3)], lines: vec![(0, 1, 2, 7, 3)] }]);
        let word = |i: usize| u32::from_le_bytes(ext[i..i + 4].try_into().unwrap());
        assert_eq!(word(4), 32);
        assert_eq!((word(8), word(12)), (0, 4 + 8 + 8));
        assert_eq!((word(16), word(20)), (20, 4 + 8 + 16));
        assert_eq!(word(32 + 20 + 4 + 8 + 12), (7 << 10) | 3);
    }
}
