//! User-space binaries and libraries: finding the file a uprobe names,
//! reading its function symbols, and turning addresses into file offsets.

use super::golang::GoFacts;
use crate::probe::arch::Arch;
use crate::probe::Lang;
use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};
use std::path::{Path, PathBuf};

/// Directories searched for a library given by name (`libc`, `libc.so.6`).
const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    #[error("cannot find binary or library `{0}`")]
    NotFound(String),
    #[error("cannot read `{path}`: {reason}")]
    Unreadable { path: String, reason: String },
}

/// A function symbol: name, virtual address and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncSymbol {
    pub name: String,
    pub address: u64,
    pub size: u64,
    /// A GNU indirect function: the address is its resolver, not the code.
    pub ifunc: bool,
    /// A C++ or Rust name demangled, with and without its parameters
    /// (`ns::add(int, int)`, `ns::add`); a probe may name either.
    pub demangled: Option<(String, String)>,
}

impl FuncSymbol {
    /// Whether a probe's function text (a name or a wildcard) means this one.
    pub fn matches(&self, pattern: &str) -> bool {
        crate::probe::glob::matches(pattern, &self.name)
            || self.demangled.as_ref().is_some_and(|(full, short)| {
                crate::probe::glob::matches(pattern, full) || crate::probe::glob::matches(pattern, short)
            })
    }
}

/// C++ (`_Z...`) and Rust (`_R...`, legacy `_ZN...17h<hash>E`) names.
fn demangle(name: &str) -> Option<(String, String)> {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        // `{:#}` leaves out the hash; Rust paths have no parameters.
        let text = format!("{:#}", d);
        if name.starts_with("_R") || format!("{}", d) != text {
            return Some((text.clone(), text));
        }
    }
    let sym = cpp_demangle::Symbol::new(name.as_bytes()).ok()?;
    let full = sym.demangle(&cpp_demangle::DemangleOptions::new()).ok()?;
    let short = sym.demangle(&cpp_demangle::DemangleOptions::new().no_params()).ok()?;
    Some((full, short))
}

/// A loadable segment: where its bytes are in memory and in the file.
#[derive(Debug, Clone, Copy)]
struct Segment {
    address: u64,
    /// Bytes in the file (the rest, up to its size in memory, is zeroes).
    size: u64,
    offset: u64,
    executable: bool,
}

impl Segment {
    fn holds(&self, address: u64) -> bool {
        address >= self.address && address < self.address + self.size
    }
}

/// The facts rtrace needs from one ELF file.
#[derive(Debug, Clone)]
pub struct Binary {
    pub path: PathBuf,
    /// The language of the file: Go when the Go toolchain built it.
    pub lang: Lang,
    /// Its machine code's architecture, when rtrace knows it.
    pub arch: Option<Arch>,
    /// A Go binary's version and function table.
    pub go: Option<GoFacts>,
    pub functions: Vec<FuncSymbol>,
    /// Position-independent (ET_DYN): loaded at an address chosen at run time.
    pub pie: bool,
    /// Loadable segments.
    segments: Vec<Segment>,
    /// Its USDT probes (`.note.stapsdt`), read in the same parse.
    pub usdt: Vec<super::usdt_notes::UsdtNote>,
}

/// Finds the file a uprobe target names: a path (relative to the current
/// directory), a program on `$PATH`, or a library name.
pub fn locate(target: &str) -> Result<PathBuf, BinaryError> {
    if target.contains('/') {
        let p = Path::new(target);
        return p.canonicalize().map_err(|e| {
            if p.exists() {
                BinaryError::Unreadable { path: target.into(), reason: e.to_string() }
            } else {
                BinaryError::NotFound(target.into())
            }
        });
    }
    let path_dirs = std::env::var("PATH").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = Vec::new();
    for dir in LIBRARY_DIRS {
        candidates.push(Path::new(dir).join(target));
        let base = if target.starts_with("lib") { target.to_string() } else { format!("lib{}", target) };
        candidates.push(Path::new(dir).join(format!("{}.so", base)));
        if let Ok(entries) = std::fs::read_dir(dir) {
            let prefix = format!("{}.so.", base);
            let mut versioned: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix)))
                .collect();
            versioned.sort();
            candidates.extend(versioned);
        }
    }
    candidates.extend(path_dirs.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(target)));
    candidates
        .into_iter()
        // `libc.so` is often a linker script: only ELF files count.
        .find(|p| p.is_file() && is_elf(p))
        .and_then(|p| p.canonicalize().ok())
        .ok_or_else(|| BinaryError::NotFound(target.into()))
}

pub fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == *b"\x7fELF"
}

impl Binary {
    pub fn read(path: &Path) -> Result<Binary, BinaryError> {
        let unreadable = |reason: String| BinaryError::Unreadable { path: path.display().to_string(), reason };
        let data = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
        let file = object::File::parse(&*data).map_err(|e| unreadable(format!("not an ELF file ({})", e)))?;
        let go = GoFacts::read(&file);
        let mut functions: Vec<FuncSymbol> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter_map(|s| {
                // object does not count IFUNCs as text: check the ELF type itself.
                let ifunc = matches!(s.flags(), object::SymbolFlags::Elf { st_info, .. } if st_info.st_type() == object::elf::STT_GNU_IFUNC);
                if !(s.kind() == SymbolKind::Text || ifunc) || s.is_undefined() || s.address() == 0 {
                    return None;
                }
                let name = s.name().ok()?.to_string();
                let demangled = if name.starts_with("_Z") || name.starts_with("_R") { demangle(&name) } else { None };
                Some(FuncSymbol { name, address: s.address(), size: s.size(), ifunc, demangled })
            })
            .collect();
        functions.sort_by(|a, b| a.name.cmp(&b.name).then(a.address.cmp(&b.address)));
        functions.dedup_by(|a, b| a.name == b.name && a.address == b.address);
        let segments = file
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                let executable = matches!(s.flags(), object::SegmentFlags::Elf { p_flags, .. } if p_flags.0 & object::elf::PF_X.0 != 0);
                Segment { address: s.address(), size, offset, executable }
            })
            .collect();
        let pie = file.kind() == object::ObjectKind::Dynamic;
        let usdt = super::usdt_notes::notes_of(&file);
        let lang = if go.is_some() { Lang::Go } else { Lang::C };
        let arch = match file.architecture() {
            object::Architecture::X86_64 => Some(Arch::X86_64),
            object::Architecture::Aarch64 => Some(Arch::Aarch64),
            _ => None,
        };
        Ok(Binary { path: path.to_path_buf(), lang, arch, go, functions, pie, segments, usdt })
    }

    /// The function a name means: its symbol, or its demangled name.
    pub fn function(&self, name: &str) -> Option<&FuncSymbol> {
        self.functions.iter().find(|f| f.name == name).or_else(|| {
            self.functions
                .iter()
                .find(|f| f.demangled.as_ref().is_some_and(|(full, short)| full == name || short == name))
        })
    }

    /// The file offset of a virtual address, through the segment holding it.
    pub fn file_offset(&self, address: u64) -> Option<u64> {
        self.segments.iter().find(|s| s.holds(address)).map(|s| address - s.address + s.offset)
    }

    /// The virtual address of a file offset, through the segment holding it.
    pub fn address_of_offset(&self, offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| offset >= s.offset && offset < s.offset + s.size)
            .map(|s| offset - s.offset + s.address)
    }

    /// Whether `address` is in an executable segment.
    pub fn is_code(&self, address: u64) -> bool {
        self.segments.iter().any(|s| s.executable && s.holds(address))
    }

    /// The calling convention of the code at `address`: in a Go binary,
    /// Go's for the functions of its function table, C's for the others
    /// (cgo); without a readable table, Go's for all.
    pub fn lang_at(&self, address: u64) -> Lang {
        match &self.go {
            Some(GoFacts { funcs: Ok(table), .. }) if table.at(address).is_none() => Lang::C,
            _ => self.lang,
        }
    }

    /// The bytes of `[address, end)` in `data`, the file's contents.
    pub fn code<'d>(&self, data: &'d [u8], address: u64, end: u64) -> Option<&'d [u8]> {
        let start = usize::try_from(self.file_offset(address)?).ok()?;
        // The whole range must be in the segment that holds its start.
        let last = self.file_offset(end.checked_sub(1)?)?;
        let len = usize::try_from(end.checked_sub(address)?).ok()?;
        (last == start as u64 + len as u64 - 1).then_some(())?;
        data.get(start..start.checked_add(len)?)
    }

    /// The function whose code contains `address`.
    pub fn function_at(&self, address: u64) -> Option<&FuncSymbol> {
        self.functions.iter().find(|f| address >= f.address && address < f.address + f.size.max(1))
    }
}

/// Names close to a target that was not found, for "did you mean": library
/// names (`libpthread`) for a bare name, files of the same directory for a path.
pub fn similar_targets(target: &str) -> Vec<String> {
    let files = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|rd| rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default()
    };
    if let Some((dir, _)) = target.rsplit_once('/') {
        let dir = if dir.is_empty() { "/" } else { dir };
        return files(Path::new(dir)).into_iter().map(|f| format!("{}/{}", dir.trim_end_matches('/'), f)).collect();
    }
    let mut names: Vec<String> = LIBRARY_DIRS
        .iter()
        .flat_map(|d| files(Path::new(d)))
        .filter(|f| f.starts_with("lib") && f.contains(".so"))
        .map(|f| f.split(".so").next().unwrap_or(&f).to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}
