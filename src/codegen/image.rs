//! The finished object handed to the ELF writer: programs with physical
//! registers and resolved jumps, their relocations and source lines, the maps
//! and the read-only data. It is plain data, independent of the language.

use super::insn::Insn;

#[derive(Clone, Debug, Default)]
pub struct Image {
    pub programs: Vec<ProgramImage>,
    pub maps: Vec<MapSpec>,
    /// Bytes of the `.rodata` section (constant strings); may be empty.
    pub rodata: Vec<u8>,
    /// Size of the zeroed, writable `.bss` section (the runtime's counters).
    pub bss_size: usize,
    /// File name recorded in `.BTF.ext` line_info (`stdin`, `script.rt`).
    pub source_name: String,
    /// The `license` section: the programs' license (`GPL`, ...).
    pub license: String,
}

#[derive(Clone, Debug)]
pub struct ProgramImage {
    /// Symbol and BTF FUNC name; a C identifier, unique in the image.
    pub name: String,
    /// libbpf section name, which selects the program type: `tracepoint`,
    /// `uprobe`, `uretprobe`, `kprobe`, `kretprobe`, `perf_event`, `raw_tp`,
    /// `raw_tracepoint`, `fentry/<fn>`, `fexit/<fn>`, ... Programs of one kind
    /// share a section.
    pub section: String,
    pub insns: Vec<Insn>,
    pub relocs: Vec<Reloc>,
    /// Sorted by `insn`; the first entry must be at instruction 0.
    pub lines: Vec<LineInfo>,
    /// Its callbacks (`RelocTarget::Func` indices), which go to `.text`.
    pub subprogs: Vec<FunctionImage>,
}

/// A static function called back by a helper: its code and source lines.
#[derive(Clone, Debug)]
pub struct FunctionImage {
    /// Symbol and BTF FUNC name, unique in the image.
    pub name: String,
    /// Its parameters' names (for its BTF prototype).
    pub params: Vec<&'static str>,
    pub insns: Vec<Insn>,
    pub relocs: Vec<Reloc>,
    pub lines: Vec<LineInfo>,
}

/// An `ld_imm64` at instruction index `insn` that the loader must patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reloc {
    pub insn: usize,
    pub target: RelocTarget,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelocTarget {
    /// Index into `Image::maps`: the loader puts the map's fd in.
    Map(usize),
    /// A pointer into `.rodata`; the instruction's `imm` holds the byte offset.
    Rodata,
    /// A pointer into `.bss`; the instruction's `imm` holds the byte offset.
    Bss,
    /// The address of subprogram N of the program (`ProgramImage::subprogs`).
    Func(usize),
}

/// A source position for the verifier log: instructions from `insn` on come
/// from `text` at `line:col` (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInfo {
    pub insn: usize,
    pub line: u32,
    pub col: u32,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    /// Symbol name; a C identifier, unique in the image (the kernel keeps 15 chars).
    pub name: String,
    pub kind: MapKind,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

/// `enum bpf_map_type` values rtrace uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MapKind {
    Hash = 1,
    Array = 2,
    PerfEventArray = 4,
    PercpuHash = 5,
    PercpuArray = 6,
    StackTrace = 7,
    LruHash = 9,
    LruPercpuHash = 10,
    /// Ring buffer: key and value size must be 0, `max_entries` a power-of-two
    /// multiple of the page size.
    Ringbuf = 27,
}
