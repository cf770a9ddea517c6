//! Addresses and names: the symbols `kaddr()` and `uaddr()` name, looked up
//! before the program is checked, and the `ksym()`, `usym()` and
//! `cgroup_path()` values turned into text when they are printed.

use super::binary::Binary;
use crate::parser::ast::{walk_block, walk_expr, ExprKind, Program};
use crate::probe::{Detail, Resolved};
use crate::sema::{symbol_key, Symbol, SymbolAddress};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Every `kaddr("sym")` and `uaddr("sym")` of the program, resolved; keys
/// from `sema::symbol_key`.
pub fn lookup_addresses(program: &Program, resolved: &[Vec<Resolved>]) -> HashMap<String, SymbolAddress> {
    let mut out = HashMap::new();
    for (probe, points) in program.probes.iter().zip(resolved) {
        let mut calls = Vec::new();
        let mut visit = |e: &crate::parser::ast::Expr| {
            if let ExprKind::Call { name, args, .. } = &e.kind {
                if let (true, Some(ExprKind::Str(s))) =
                    (name == "kaddr" || name == "uaddr", args.first().map(|a| &a.kind))
                {
                    calls.push((name.clone(), String::from_utf8_lossy(s).into_owned()));
                }
            }
        };
        if let Some(p) = &probe.predicate {
            walk_expr(p, &mut visit);
        }
        walk_block(&probe.body, &mut visit);
        for (func, sym) in calls {
            if func == "kaddr" {
                let found = kernel_symbols().iter().find(|(_, n)| *n == sym).map(|(address, _)| Symbol {
                    address: *address,
                    size: 8,
                    pc_relative: false,
                });
                let result = found.ok_or_else(|| format!("Failed to resolve kernel symbol `{}`", sym));
                out.insert(symbol_key("kaddr", "", &sym), result);
                continue;
            }
            for point in points {
                let Detail::Uprobe(site) = &point.detail else { continue };
                let scope = site.path.display().to_string();
                let ret = matches!(point.spec, crate::probe::ProbeSpec::Uprobe { ret: true, .. });
                let result = user_symbol(&site.path, site.offset, ret, &sym)
                    .map_err(|e| e.unwrap_or_else(|| format!("Could not resolve symbol: {}:{}", scope, sym)));
                out.insert(symbol_key("uaddr", &scope, &sym), result);
            }
        }
    }
    out
}

/// `uaddr("sym")` in a uprobe at file offset `probe_offset` of `path`. In a
/// position-independent binary the address is taken relative to the probed
/// instruction, whose address a uprobe knows (`ip`); a uretprobe does not.
fn user_symbol(path: &Path, probe_offset: u64, ret: bool, name: &str) -> Result<Symbol, Option<String>> {
    let (address, size) = data_symbol(path, name).ok_or(None)?;
    let binary = Binary::read(path).map_err(|e| Some(e.to_string()))?;
    if !binary.pie {
        return Ok(Symbol { address, size, pc_relative: false });
    }
    if ret {
        return Err(Some(format!(
            "uaddr(\"{}\") in a uretprobe of a position-independent binary: its load address is only known in a uprobe",
            name
        )));
    }
    let probe = binary.address_of_offset(probe_offset).ok_or(None)?;
    Ok(Symbol { address: address.wrapping_sub(probe), size, pc_relative: true })
}

/// Address and size of any defined symbol (function or data) of a binary.
pub fn data_symbol(path: &Path, name: &str) -> Option<(u64, u64)> {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let found = file
        .symbols()
        .chain(file.dynamic_symbols())
        .find(|s| s.is_definition() && s.address() != 0 && s.name() == Ok(name))
        .map(|s| (s.address(), s.size()));
    found
}

/// `/proc/kallsyms`, sorted by address (read once).
fn kernel_symbols() -> &'static [(u64, String)] {
    static SYMS: OnceLock<Vec<(u64, String)>> = OnceLock::new();
    SYMS.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        let mut syms: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let addr = u64::from_str_radix(it.next()?, 16).ok()?;
                let _kind = it.next()?;
                Some((addr, it.next()?.to_string()))
            })
            .filter(|(a, _)| *a != 0)
            .collect();
        syms.sort();
        syms
    })
}

/// `ksym(addr)`: the kernel symbol holding `addr`, or the address in hex.
pub fn ksym(addr: u64) -> String {
    let syms = kernel_symbols();
    match syms.partition_point(|(a, _)| *a <= addr) {
        0 => format!("0x{:x}", addr),
        i => syms[i - 1].1.clone(),
    }
}

/// `usym(addr)` of process `pid`: the function holding `addr` in the file
/// mapped there, or the address in hex.
pub fn usym(addr: u64, pid: u64) -> String {
    user_function(addr, pid).unwrap_or_else(|| format!("0x{:x}", addr))
}

fn user_function(addr: u64, pid: u64) -> Option<String> {
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", pid)).ok()?;
    // start-end perms offset dev inode path
    let (path, file_offset) = maps.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (start, end) = f.first()?.split_once('-')?;
        let (start, end) = (u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?);
        let path = f.get(5).filter(|p| p.starts_with('/'))?;
        let offset = u64::from_str_radix(f.get(2)?, 16).ok()?;
        (addr >= start && addr < end).then(|| (PathBuf::from(path), addr - start + offset))
    })?;
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Option<Binary>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().ok()?;
    let binary = cache.entry(path.clone()).or_insert_with(|| Binary::read(&path).ok()).as_ref()?;
    let vaddr = binary.address_of_offset(file_offset)?;
    binary.function_at(vaddr).map(|f| f.name.clone())
}

/// `cgroup_path(id)`: `name:path` in every cgroup hierarchy that has the
/// cgroup (`unified` for cgroup v2), joined by commas, as bpftrace prints it.
pub fn cgroup_path(id: u64) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut parts = Vec::new();
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(dir), Some(kind)) = (f.get(1), f.get(2)) else { continue };
        let name = match *kind {
            "cgroup2" => "unified".to_string(),
            "cgroup" => Path::new(dir).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            _ => continue,
        };
        if let Some(path) = find_inode(Path::new(dir), Path::new(dir), id) {
            parts.push(format!("{}:{}", name, path));
        }
    }
    parts.join(",")
}

/// The path (relative to `root`, starting with `/`) of the directory under
/// `dir` whose inode number is `ino`: a cgroup's id is its inode.
fn find_inode(root: &Path, dir: &Path, ino: u64) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata(dir).ok()?.ino() == ino {
        let rel = dir.strip_prefix(root).ok()?;
        return Some(format!("/{}", rel.display()));
    }
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if let Some(p) = find_inode(root, &entry.path(), ino) {
                return Some(p);
            }
        }
    }
    None
}
