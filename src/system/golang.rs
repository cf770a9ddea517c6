//! What a Go binary says about itself: the Go version that built it
//! (`.go.buildinfo`), its function table (`pclntab`: where each Go
//! function starts and ends, and whether it was written in assembly), and
//! where a goroutine keeps its id (`runtime.g.goid`) in that version.
//!
//! The function table is the one Go's runtime unwinds goroutine stacks
//! with, so every function that can run on a goroutine stack is in it; a
//! function of a Go binary that is not (cgo's C code) runs on a thread's
//! own stack.

use object::{Object, ObjectSection, ObjectSymbol};

/// A Go release, `go1.19.8` → 1.19.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
}

impl GoVersion {
    /// `go1.19.8`, `go1.22rc1`, `devel go1.23-abcdef ...`.
    pub fn parse(text: &str) -> Option<GoVersion> {
        let rest = &text[text.find("go1.")? + 2..];
        let mut numbers = rest.split(|c: char| !c.is_ascii_digit());
        let major = numbers.next()?.parse().ok()?;
        let minor = numbers.next()?.parse().ok()?;
        Some(GoVersion { major, minor })
    }
}

impl std::fmt::Display for GoVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "go{}.{}", self.major, self.minor)
    }
}

/// `funcFlag_ASM` (Go ≥ 1.19; `abi.FuncFlagAsm` later): written in assembly.
const FUNC_FLAG_ASM: u8 = 1 << 2;

/// One Go function of the table: its code is `[entry, end)`, padding
/// included (`end` is where the next function starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoFunc {
    pub entry: u64,
    pub end: u64,
    /// Written in assembly (`Some(false)`: compiled from Go); `None` when
    /// this version's table does not say.
    pub asm: Option<bool>,
}

/// The Go functions of a binary, sorted by address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FuncTable {
    funcs: Vec<GoFunc>,
}

impl FuncTable {
    /// The Go function whose code holds `address`.
    pub fn at(&self, address: u64) -> Option<&GoFunc> {
        let i = self.funcs.partition_point(|f| f.entry <= address);
        self.funcs[..i].last().filter(|f| address < f.end)
    }

    pub fn len(&self) -> usize {
        self.funcs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty()
    }
}

/// What rtrace knows of a Go binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoFacts {
    /// `None`: no build information rtrace can read.
    pub version: Option<GoVersion>,
    /// The function table, or why it could not be read.
    pub funcs: Result<FuncTable, String>,
}

impl GoFacts {
    /// The facts of a Go binary (`None`: not a Go binary).
    pub fn read(file: &object::File<'_>) -> Option<GoFacts> {
        let is_go =
            [".go.buildinfo", ".gopclntab", ".note.go.buildid"].iter().any(|s| file.section_by_name(s).is_some());
        if !is_go {
            return None;
        }
        let version = build_version(file);
        let funcs = func_table(file, version);
        Some(GoFacts { version, funcs })
    }
}

/// The bytes at virtual address `address` of the file, from the section holding them.
fn bytes_at<'a>(file: &object::File<'a>, address: u64, len: u64) -> Option<&'a [u8]> {
    file.sections().find_map(|s| {
        let start = s.address();
        if address < start || address.checked_add(len)? > start + s.size() {
            return None;
        }
        let data = s.data().ok()?;
        let from = usize::try_from(address - start).ok()?;
        data.get(from..from.checked_add(usize::try_from(len).ok()?)?)
    })
}

/// Little- or big-endian unsigned reads of 1..=8 bytes at an offset, bounds-checked.
struct Reader<'a> {
    data: &'a [u8],
    big: bool,
}

impl Reader<'_> {
    fn uint(&self, at: usize, size: usize) -> Option<u64> {
        let b = self.data.get(at..at.checked_add(size)?)?;
        let mut v = 0u64;
        for i in 0..size {
            let byte = if self.big { b[i] } else { b[size - 1 - i] };
            v = (v << 8) | byte as u64;
        }
        Some(v)
    }
    fn u32(&self, at: usize) -> Option<u64> {
        self.uint(at, 4)
    }
}

/// The Go version from `.go.buildinfo`: inline (Go ≥ 1.18) or through a
/// pointer to the `runtime.buildVersion` string (Go 1.13–1.17), or from
/// that symbol itself.
fn build_version(file: &object::File<'_>) -> Option<GoVersion> {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    let big = !file.is_little_endian();
    if let Some(data) = file.section_by_name(".go.buildinfo").and_then(|s| s.data().ok()) {
        if data.len() >= 32 && data.starts_with(MAGIC) {
            let (ptr_size, flags) = (data[14] as usize, data[15]);
            if flags & 2 != 0 {
                // Strings follow the header, each a uvarint length and the bytes.
                let (len, n) = uvarint(&data[32..])?;
                let start = 32 + n;
                let text = data.get(start..start.checked_add(usize::try_from(len).ok()?)?)?;
                return GoVersion::parse(std::str::from_utf8(text).ok()?);
            }
            let r = Reader { data, big };
            if let Some(v) = r.uint(16, ptr_size).and_then(|p| string_at(file, p, ptr_size, big)) {
                return Some(v);
            }
        }
    }
    let sym = file.symbols().find(|s| s.name() == Ok("runtime.buildVersion"))?;
    string_at(file, sym.address(), if file.is_64() { 8 } else { 4 }, big)
}

/// A Go string header (pointer, length) at `address`, parsed as a version.
fn string_at(file: &object::File<'_>, address: u64, ptr_size: usize, big: bool) -> Option<GoVersion> {
    let header = bytes_at(file, address, 2 * ptr_size as u64)?;
    let r = Reader { data: header, big };
    let (ptr, len) = (r.uint(0, ptr_size)?, r.uint(ptr_size, ptr_size)?);
    let text = bytes_at(file, ptr, len.min(64))?;
    GoVersion::parse(std::str::from_utf8(text).ok()?)
}

fn uvarint(data: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in data.iter().enumerate().take(10) {
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The pclntab header's magic numbers: each Go release that changed the
/// layout has its own.
const MAGIC_GO116: u32 = 0xffff_fffa;
const MAGIC_GO118: u32 = 0xffff_fff0;
const MAGIC_GO120: u32 = 0xffff_fff1;

/// The function table of `runtime/symtab.go`'s `pcHeader`: `functab` is
/// `nfunc + 1` (entry, offset of `_func`) pairs, the last entry being the
/// end of the last function.
fn func_table(file: &object::File<'_>, version: Option<GoVersion>) -> Result<FuncTable, String> {
    let data = pclntab(file).ok_or("it has no function table (`.gopclntab` or `runtime.pclntab`)")?;
    let r = Reader { data, big: !file.is_little_endian() };
    let bad = || "its function table (pclntab) is truncated or malformed".to_string();
    let magic = r.u32(0).ok_or_else(bad)? as u32;
    let ptr = *data.get(7).ok_or_else(bad)? as usize;
    if ptr != 4 && ptr != 8 {
        return Err(bad());
    }
    let word = |i: usize| r.uint(8 + i * ptr, ptr).ok_or_else(bad);
    let nfunc = usize::try_from(word(0)?).map_err(|_| bad())?;
    let (text_start, functab, pair) = match magic {
        MAGIC_GO118 | MAGIC_GO120 => {
            // A position-independent binary's textStart is relocated at run
            // time: the file holds 0, and the code starts at `runtime.text`.
            let text = match word(2)? {
                0 => text_start(file).ok_or_else(bad)?,
                t => t,
            };
            (text, word(7)?, 4)
        }
        MAGIC_GO116 => (0, word(6)?, ptr),
        _ => {
            return Err(format!("its function table (pclntab) has a layout rtrace does not know (magic {:#x})", magic))
        }
    };
    let functab = usize::try_from(functab).map_err(|_| bad())?;
    // Where `_func.flag` is, and whether it has the ASM bit (Go ≥ 1.19).
    let flag_at = match magic {
        MAGIC_GO120 => Some(41),
        MAGIC_GO118 if version.is_some_and(|v| v >= GoVersion { major: 1, minor: 19 }) => Some(37),
        _ => None,
    };
    let entry = |i: usize| -> Result<(u64, usize), String> {
        let at = functab + i * 2 * pair;
        let pc = r.uint(at, pair).ok_or_else(bad)?;
        let off = r.uint(at + pair, pair).ok_or_else(bad)?;
        Ok((text_start + pc, usize::try_from(off).map_err(|_| bad())?))
    };
    let mut funcs = Vec::with_capacity(nfunc);
    for i in 0..nfunc {
        let (start, off) = entry(i)?;
        let (end, _) = entry(i + 1)?;
        if end < start {
            return Err(bad());
        }
        let asm = match flag_at {
            Some(f) => Some(r.uint(functab + off + f, 1).ok_or_else(bad)? as u8 & FUNC_FLAG_ASM != 0),
            None => None,
        };
        funcs.push(GoFunc { entry: start, end, asm });
    }
    Ok(FuncTable { funcs })
}

/// The pclntab bytes: its own section in an executable Go linked itself,
/// between `runtime.pclntab` and `runtime.epclntab` otherwise.
fn pclntab<'a>(file: &object::File<'a>) -> Option<&'a [u8]> {
    if let Some(data) = file.section_by_name(".gopclntab").and_then(|s| s.data().ok()) {
        return Some(data);
    }
    let sym = |name: &str| file.symbols().find(|s| s.name() == Ok(name)).map(|s| s.address());
    let (start, end) = (sym("runtime.pclntab")?, sym("runtime.epclntab")?);
    bytes_at(file, start, end.checked_sub(start)?)
}

/// Where Go's code starts: `runtime.text`, or the `.text` section.
fn text_start(file: &object::File<'_>) -> Option<u64> {
    file.symbols()
        .find(|s| s.name() == Ok("runtime.text"))
        .map(|s| s.address())
        .or_else(|| file.section_by_name(".text").map(|s| s.address()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoidError {
    #[error("`{0}` is not a Go binary")]
    NotGo(String),
    #[error("cannot read which Go version built `{0}`")]
    NoVersion(String),
    #[error("`{path}` was built by {version}: before go1.17, Go's functions do not keep the goroutine in a register")]
    Old { path: String, version: GoVersion },
    #[error("`{path}` has no DWARF, and rtrace does not know where {version}'s `runtime.g` keeps `goid`")]
    Unknown { path: String, version: GoVersion },
    #[error("{0}")]
    Unreadable(String),
}

/// `runtime.g.goid`'s offset in Go releases rtrace knows, for binaries
/// whose DWARF is stripped (64-bit targets; from `runtime/runtime2.go`):
/// 1.23 added `g.syscallbp` before it, 1.25 removed `gobuf.ret` from the
/// `g.sched` before it.
pub fn goid_offset(version: GoVersion) -> Option<u64> {
    match (version.major, version.minor) {
        (1, 17..=22) => Some(152),
        (1, 23..=24) => Some(160),
        (1, 25..=26) => Some(152),
        _ => None,
    }
}

/// The oldest Go whose functions keep the current goroutine (`g`) in a
/// register on every architecture rtrace traces: the register ABI came to
/// amd64 in 1.17 (arm64 always had `g` in x28).
pub const REGISTER_G_SINCE: GoVersion = GoVersion { major: 1, minor: 17 };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(GoVersion::parse("go1.19.8"), Some(GoVersion { major: 1, minor: 19 }));
        assert_eq!(GoVersion::parse("go1.22rc1"), Some(GoVersion { major: 1, minor: 22 }));
        assert_eq!(GoVersion::parse("devel go1.23-abcdef Tue"), Some(GoVersion { major: 1, minor: 23 }));
        assert_eq!(GoVersion::parse("gccgo"), None);
        assert!(GoVersion { major: 1, minor: 9 } < GoVersion { major: 1, minor: 17 });
    }

    #[test]
    fn goid_offsets_follow_the_layout_changes() {
        assert_eq!(goid_offset(GoVersion { major: 1, minor: 19 }), Some(152));
        assert_eq!(goid_offset(GoVersion { major: 1, minor: 23 }), Some(160));
        assert_eq!(goid_offset(GoVersion { major: 1, minor: 25 }), Some(152));
        assert_eq!(goid_offset(GoVersion { major: 1, minor: 16 }), None);
    }

    #[test]
    fn function_lookup_is_bounded_by_the_next_entry() {
        let t = FuncTable {
            funcs: vec![
                GoFunc { entry: 0x1000, end: 0x1040, asm: Some(false) },
                GoFunc { entry: 0x1040, end: 0x1100, asm: Some(true) },
            ],
        };
        assert_eq!(t.at(0x0fff), None);
        assert_eq!(t.at(0x1000).map(|f| f.end), Some(0x1040));
        assert_eq!(t.at(0x1040).map(|f| f.asm), Some(Some(true)));
        assert_eq!(t.at(0x1100), None);
    }
}
