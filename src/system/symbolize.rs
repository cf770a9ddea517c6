//! Addresses → names, through blazesym (the symbolizer of the libbpf
//! project, which bpftrace uses too): kernel addresses from kallsyms
//! (module symbols included), user addresses through `/proc/PID/maps` and
//! the ELF symbols and DWARF of the mapped files (`map_files`, so binaries in
//! another mount namespace and deleted or replaced ones are read as mapped),
//! PIE and shared libraries, JIT perf maps (`/tmp/perf-PID.map`), vDSO, and
//! C++ and Rust names demangled.
//!
//! One symbolizer per thread, which caches every file it parsed. A process
//! is remembered (`remember_process`) while it runs: its mappings, the files
//! behind them and its perf map stay cached, so that its addresses are
//! still named after it exited.

use super::binary::Binary;
use crate::output::value::FrameSym;
use blazesym::symbolize::cache::{self, Cache};
use blazesym::symbolize::source::{Elf, Kernel, Process, Source};
use blazesym::symbolize::{Input, Sym, Symbolized, Symbolizer};
use blazesym::{MaybeDefault, Pid};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// How addresses are named (bpftrace's `show_debug_info`, `cpp_demangle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymbolOptions {
    /// Source file and line, and inlined functions, from DWARF.
    pub debug_info: bool,
    pub demangle: bool,
}

impl Default for SymbolOptions {
    fn default() -> SymbolOptions {
        SymbolOptions { debug_info: true, demangle: true }
    }
}

struct State {
    options: SymbolOptions,
    symbolizer: Symbolizer,
    /// Processes whose mappings are cached, and a digest of the mappings
    /// last read.
    remembered: HashMap<u32, u64>,
    /// The path a process mapped, by the `map_files` entry it was cached by.
    files: HashMap<String, String>,
}

impl State {
    fn new(options: SymbolOptions) -> State {
        let symbolizer = Symbolizer::builder()
            .enable_code_info(options.debug_info)
            .enable_inlined_fns(options.debug_info)
            .enable_demangling(options.demangle)
            .build();
        State { options, symbolizer, remembered: HashMap::new(), files: HashMap::new() }
    }
}

thread_local! {
    static OPTIONS: std::cell::Cell<SymbolOptions> = std::cell::Cell::new(SymbolOptions::default());
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Sets how this thread names addresses from now on (the script's config).
pub fn configure(options: SymbolOptions) {
    OPTIONS.with(|o| o.set(options));
}

/// Runs `f` on this thread's symbolizer (made the first time, or again
/// when the options changed).
fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let options = OPTIONS.with(|o| o.get());
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.as_ref().is_none_or(|st| st.options != options) {
            *s = Some(State::new(options));
        }
        f(s.as_mut().expect("just made"))
    })
}

/// Caches what naming `pid`'s addresses needs, while it runs: its
/// mappings, its perf map and the ELF files it maps (opened through
/// `map_files`, so a deleted binary stays readable). Addresses of a
/// process that exited are named from this.
pub fn remember_process(pid: u32) {
    if pid == 0 {
        return;
    }
    // Announced again with each new stack: a library mapped since (the
    // first stack may come before the dynamic loader mapped libc) is then
    // cached too. Only a change of the mappings is read again.
    with_state(|st| {
        cache_process(st, pid);
    });
}

/// Caches `pid`'s mappings and files, unless they are what was cached
/// last; whether they were cached now.
fn cache_process(st: &mut State, pid: u32) -> bool {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{}/maps", pid)) else { return false };
    // A process that is exiting has no mappings left: keep what was cached.
    if !maps.lines().any(|l| l.contains(" /")) {
        return false;
    }
    let digest = {
        use std::hash::{Hash, Hasher};
        // Executable mappings only: a heap or stack that grew names no
        // address differently.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        maps.lines()
            .filter(|l| l.split_whitespace().nth(1).is_some_and(|p| p.contains('x')))
            .for_each(|l| l.hash(&mut h));
        h.finish()
    };
    if st.remembered.insert(pid, digest) == Some(digest) {
        return false;
    }
    let symbolizer = &st.symbolizer;
    let _ = symbolizer.cache(&Cache::Process(cache::Process::new(Pid::from(pid))));
    let mut seen = HashSet::new();
    let mut starts = Vec::new();
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(perms), Some(path)) = (f.first(), f.get(1), f.get(5)) else { continue };
        if !perms.contains('x') || !path.starts_with('/') || !seen.insert(f.get(4).copied()) {
            continue;
        }
        // `map_files` names ranges without the leading zeros of `maps` (a
        // non-PIE executable at 0x400000).
        let Some((start, end)) = range.split_once('-') else { continue };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16)) else { continue };
        let file = format!("/proc/{}/map_files/{:x}-{:x}", pid, start, end);
        if symbolizer.cache(&Cache::Elf(cache::Elf::new(&file))).is_ok() {
            let shown = path.strip_suffix(" (deleted)").unwrap_or(path);
            st.files.insert(file, shown.to_string());
            starts.push(start);
        }
    }
    if starts.is_empty() {
        // Gone while being read (its map_files no longer open): not
        // remembered, so that it can be named from the traced files.
        st.remembered.remove(&pid);
        return false;
    }
    {
        // Opens each file's DWARF (and separate debug file) now: it is
        // found next to the file, which a process that exited no longer has.
        let mut src = Process::new(Pid::from(pid));
        src.vdso = false;
        let _ = st.symbolizer.symbolize(&Source::Process(src), Input::AbsAddr(&starts));
    }
    true
}

/// Names of user addresses of process `pid`, one list per address (its
/// inlined functions, innermost first, then the function; empty when
/// nothing is known there).
pub fn user(pid: u32, addrs: &[u64]) -> Vec<Vec<FrameSym>> {
    if addrs.is_empty() {
        return vec![];
    }
    with_state(|st| {
        let mut src = Process::new(Pid::from(pid));
        // Debug files name what a stripped file does not (libc's
        // __libc_start_call_main) even without show_debug_info, which
        // only leaves out files, lines and inlined functions.
        src.debug_syms = true;
        // The vDSO is the same image in every process: blazesym reads
        // rtrace's own, so it is named after the process exited too.
        src.vdso = true;
        let src = Source::Process(src);
        let mut found = names(st.symbolizer.symbolize(&src, Input::AbsAddr(addrs)), addrs.len(), &st.files);
        // A process that still runs may have mapped more since it was
        // remembered (a dlopen()): read its mappings again, when an address
        // was not found and they changed. One that exited is named from
        // the cache.
        if found.iter().any(Vec::is_empty) && st.remembered.contains_key(&pid) && cache_process(st, pid) {
            found = names(st.symbolizer.symbolize(&src, Input::AbsAddr(addrs)), addrs.len(), &st.files);
        }
        // A process that exited before rtrace read its mappings: its
        // addresses in a traced executable that is not position-independent
        // are that file's own (bpftrace's cache_user_symbols=PER_PROGRAM).
        if found.iter().any(Vec::is_empty) && !st.remembered.contains_key(&pid) && !alive(pid) {
            fixed_address_names(st, addrs, &mut found);
        }
        found
    })
}

/// Whether `pid` runs, with its mappings (a zombie has none).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{}/maps", pid)).is_ok_and(|m| !m.is_empty())
}

thread_local! {
    /// The files the probes trace (uprobe and USDT targets), and, once
    /// read, those of them loaded at fixed addresses (not PIE).
    static TRACED: RefCell<(Vec<PathBuf>, Option<Vec<Binary>>)> = RefCell::new(Default::default());
}

/// The files the programs' probes trace: a process that ran one and exited
/// before rtrace read its mappings is named from it, when it is not PIE.
pub fn traced_files(paths: impl IntoIterator<Item = PathBuf>) {
    TRACED.with(|t| {
        let mut t = t.borrow_mut();
        for p in paths {
            if !t.0.contains(&p) {
                t.0.push(p);
                t.1 = None;
            }
        }
    });
}

/// Whether the ELF file at `path` is an executable (`ET_EXEC`), loaded at
/// the addresses it names; reads its header only.
fn fixed_address(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 18];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && head.starts_with(b"\x7fELF")
        && u16::from_le_bytes([head[16], head[17]]) == 2
}

/// Names `addrs` that are still unnamed in `found` from the traced
/// fixed-address executables that hold them as code.
fn fixed_address_names(st: &mut State, addrs: &[u64], found: &mut [Vec<FrameSym>]) {
    TRACED.with(|t| {
        let mut t = t.borrow_mut();
        let (paths, bins) = &mut *t;
        let bins = bins.get_or_insert_with(|| {
            paths.iter().filter(|p| fixed_address(p)).filter_map(|p| Binary::read(p).ok()).collect()
        });
        for bin in bins.iter() {
            let (idx, vaddrs): (Vec<usize>, Vec<u64>) = (0..addrs.len())
                .filter(|&i| found[i].is_empty() && bin.is_code(addrs[i]))
                .map(|i| (i, addrs[i]))
                .unzip();
            if vaddrs.is_empty() {
                continue;
            }
            let mut src = Elf::new(&bin.path);
            src.debug_syms = true;
            let shown = HashMap::from([(bin.path.display().to_string(), bin.path.display().to_string())]);
            let named =
                names(st.symbolizer.symbolize(&Source::Elf(src), Input::VirtOffset(&vaddrs)), vaddrs.len(), &shown);
            for (i, n) in idx.into_iter().zip(named) {
                found[i] = n;
            }
        }
    });
}

/// Names of kernel addresses (kallsyms; no vmlinux, as bpftrace).
pub fn kernel(addrs: &[u64]) -> Vec<Vec<FrameSym>> {
    if addrs.is_empty() {
        return vec![];
    }
    with_state(|st| {
        let src = Kernel { vmlinux: MaybeDefault::None, debug_syms: false, ..Default::default() };
        let found = st.symbolizer.symbolize(&Source::Kernel(src), Input::AbsAddr(addrs));
        let mut names = names(found, addrs.len(), &HashMap::new());
        for sym in names.iter_mut().flatten() {
            sym.module = None;
        }
        names
    })
}

/// What blazesym found, as frame symbols; `files` gives the paths the
/// process mapped for the `map_files` entries the files were opened by.
fn names(
    found: blazesym::Result<Vec<Symbolized<'_>>>,
    n: usize,
    files: &HashMap<String, String>,
) -> Vec<Vec<FrameSym>> {
    match found {
        Ok(syms) => syms.into_iter().map(|s| s.into_sym().map(|s| frame_syms(&s, files)).unwrap_or_default()).collect(),
        Err(_) => vec![vec![]; n],
    }
}

/// One symbol and its inlined functions, as bpftrace lists them: the
/// inlined ones innermost first, then the function with its offset.
fn frame_syms(sym: &Sym<'_>, files: &HashMap<String, String>) -> Vec<FrameSym> {
    let location = |c: Option<&blazesym::symbolize::CodeInfo<'_>>| {
        c.map(|c| {
            let file = c.file.to_string_lossy();
            let line = c.line.unwrap_or(0);
            match &c.dir {
                Some(dir) => format!("{}/{}:{}", dir.display(), file, line),
                None => format!("{}:{}", file, line),
            }
        })
    };
    let mut out: Vec<FrameSym> = sym
        .inlined
        .iter()
        .rev()
        .map(|f| FrameSym {
            name: f.name.to_string(),
            offset: None,
            location: location(f.code_info.as_ref()),
            module: None,
            inlined: true,
        })
        .collect();
    out.push(FrameSym {
        name: sym.name.to_string(),
        offset: Some(sym.offset as u64),
        location: location(sym.code_info.as_deref()),
        module: sym.module.as_ref().map(|m| {
            let m = m.to_string_lossy();
            files.get(m.as_ref()).cloned().unwrap_or_else(|| m.into_owned())
        }),
        inlined: false,
    });
    out
}

/// `ksym(addr)`: the kernel function holding `addr`, or the address in hex.
pub fn ksym(addr: u64) -> String {
    let found = kernel(&[addr]);
    found.into_iter().next().and_then(|s| s.into_iter().last()).map_or_else(|| format!("{:#x}", addr), |s| s.name)
}

/// `usym(addr)` of process `pid`: the function holding `addr`, or the address in hex.
pub fn usym(addr: u64, pid: u32) -> String {
    let found = user(pid, &[addr]);
    found.into_iter().next().and_then(|s| s.into_iter().last()).map_or_else(|| format!("{:#x}", addr), |s| s.name)
}
