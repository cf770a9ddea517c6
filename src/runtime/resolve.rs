//! Attach points → concrete probes, against this system: tracepoints from
//! tracefs (wildcards expanded, formats read), uprobe binaries and symbols
//! from their ELF files. Errors name what was not found and suggest close
//! matches.

use super::binary::{self, Binary};
use super::{glob, process};
use crate::diagnostic::{closest, Diagnostic};
use crate::parser::ast::{AttachPoint, Program};
use crate::probe::spec::{interpret, ProbeSpec, UprobeTarget};
use crate::probe::usdt::UsdtLoc;
use crate::probe::{Detail, Resolved, TracepointFormat, UprobeSite, UsdtSite};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where tracefs may be mounted.
const TRACEFS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

pub fn tracefs() -> Option<PathBuf> {
    TRACEFS.iter().map(PathBuf::from).find(|p| p.join("events").is_dir())
}

/// A `software:`/`hardware:` event the kernel knows, or an error naming it.
fn perf_event(spec: &ProbeSpec, event: &str) -> Result<(), Diagnostic> {
    use crate::probe::perf_events::{config, names, HARDWARE, SOFTWARE};
    let (kind, table) =
        if matches!(spec, ProbeSpec::Software { .. }) { ("software", SOFTWARE) } else { ("hardware", HARDWARE) };
    if config(table, event).is_some() {
        return Ok(());
    }
    let d = Diagnostic::error_nowhere(format!("unknown {} event `{}`", kind, event)).with_note(format!(
        "{} events: {}",
        kind,
        table.iter().map(|e| e.0).collect::<Vec<_>>().join(", ")
    ));
    Err(suggest(d, event, names(table)))
}

/// Directories `#include <...>` names are looked up in.
const INCLUDE_DIRS: &[&str] = &["/usr/include", "/usr/local/include", "/usr/include/x86_64-linux-gnu"];

/// The file an `#include` names: a path, or a header in the include dirs.
fn find_header(name: &str, from: Option<&Path>) -> Option<PathBuf> {
    let p = Path::new(name);
    let local = from.and_then(Path::parent).map(|d| d.join(p));
    local
        .into_iter()
        .chain(std::iter::once(p.to_path_buf()))
        .chain(INCLUDE_DIRS.iter().map(|d| Path::new(d).join(p)))
        .find(|c| c.is_file())
}

/// The integer `#define`s of every header the program includes (`#include`
/// lines and `--include` options), following the headers' own includes.
/// rtrace reads no C declarations: struct types come from definitions in the
/// script. A header that does not exist is an error.
pub fn header_defines(program: &Program, extra: &[String]) -> Result<HashMap<String, String>, Vec<Diagnostic>> {
    let mut missing = Vec::new();
    let mut roots = Vec::new();
    for inc in &program.includes {
        match find_header(&inc.path, None) {
            Some(p) => roots.push(p),
            None => missing.push(Diagnostic::error(format!("'{}' file not found", inc.path), inc.span)),
        }
    }
    for name in extra {
        match find_header(name, None) {
            Some(p) => roots.push(p),
            None => missing.push(Diagnostic::error_nowhere(format!("'{}' file not found (--include)", name))),
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    let mut defines = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut queue = roots;
    // A bound on the headers read: a system header can pull in hundreds.
    while let Some(path) = queue.pop().filter(|_| seen.len() < 500) {
        if !seen.insert(path.clone()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        for line in text.lines() {
            let line = line.trim_start();
            let Some(rest) = line.strip_prefix('#') else { continue };
            let rest = rest.trim_start();
            if let Some(inc) = rest.strip_prefix("include") {
                let name = inc.trim().trim_matches(|c| matches!(c, '<' | '>' | '"'));
                if let Some(p) = find_header(name, Some(&path)) {
                    queue.push(p);
                }
            } else if let Some(def) = rest.strip_prefix("define") {
                let mut words = def.split_whitespace();
                let (Some(name), Some(value)) = (words.next(), words.next()) else { continue };
                // Object-like macros only: `NAME(x)` takes arguments.
                if !name.contains('(') && words.next().is_none_or(|w| w.starts_with("/*") || w.starts_with("//")) {
                    defines.entry(name.to_string()).or_insert_with(|| value.to_string());
                }
            }
        }
    }
    // `#define EWOULDBLOCK EAGAIN`: follow names to their values.
    let names: Vec<String> = defines.keys().cloned().collect();
    for name in names {
        let mut value = defines[&name].clone();
        for _ in 0..8 {
            match defines.get(&value) {
                Some(v) if v != &value => value = v.clone(),
                _ => break,
            }
        }
        defines.insert(name, value);
    }
    Ok(defines)
}

/// Resolves every probe's attach points; the result is parallel to
/// `program.probes`. With `pid` (`-p`), binaries and libraries are looked up
/// among the files that process maps.
pub fn resolve(program: &Program, params: &[String], pid: Option<u32>) -> Result<Vec<Vec<Resolved>>, Vec<Diagnostic>> {
    resolve_after(program, params, pid, &[])
}

/// As `resolve`, with the first probes' attach points already `known` (the
/// REPL's earlier inputs: tracefs and binaries are read once).
pub fn resolve_after(
    program: &Program,
    params: &[String],
    pid: Option<u32>,
    known: &[Vec<Resolved>],
) -> Result<Vec<Vec<Resolved>>, Vec<Diagnostic>> {
    let mut r = Resolver { binaries: HashMap::new(), diags: Vec::new(), pid };
    let out = program
        .probes
        .iter()
        .enumerate()
        .map(|(i, p)| match known.get(i) {
            Some(k) => k.clone(),
            None => p.attach_points.iter().flat_map(|ap| r.attach_point(ap, params)).collect(),
        })
        .collect();
    if r.diags.is_empty() {
        Ok(out)
    } else {
        Err(r.diags)
    }
}

struct Resolver {
    binaries: HashMap<PathBuf, Binary>,
    diags: Vec<Diagnostic>,
    pid: Option<u32>,
}

/// A file a uprobe or USDT target names: where rtrace opens it, and how
/// probe names show it.
pub struct Target {
    pub path: PathBuf,
    pub shown: String,
}

/// The files a target names: a path, a library or program name (among
/// the `-p` process's files first), a wildcard path, or with `-p` an empty
/// target or `*` for every file of the process (`all`) or its executable.
pub fn targets(target: &str, pid: Option<u32>, all: bool) -> Result<Vec<Target>, String> {
    if let Some(pid) = pid.filter(|p| !process::exists(*p)) {
        return Err(format!("process {} does not exist (-p)", pid));
    }
    let module = |m: process::Module| Target { path: m.open_path, shown: m.name };
    if target.is_empty() || target == "*" {
        let Some(pid) = pid else {
            return Err("this probe names no binary: give its path, or a process with -p PID".into());
        };
        let mut mods = process::modules(pid);
        if !all {
            mods.truncate(1);
        }
        return Ok(mods.into_iter().map(module).collect());
    }
    if glob::is_glob(target) {
        let (dir, pattern) = target.rsplit_once('/').unwrap_or((".", target));
        let dir_path = if dir.is_empty() { "/" } else { dir };
        let mut files: Vec<String> = std::fs::read_dir(dir_path)
            .map(|rd| rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        files.sort();
        let found: Vec<Target> = files
            .into_iter()
            .filter(|f| glob::matches(pattern, f))
            .map(|f| (Path::new(dir_path).join(&f), format!("{}/{}", dir, f)))
            .filter(|(p, _)| p.is_file() && binary::is_elf(p))
            .map(|(path, shown)| Target { path, shown })
            .collect();
        if found.is_empty() {
            return Err(format!("no binaries match `{}`", target));
        }
        return Ok(found);
    }
    if let Some(pid) = pid {
        if !target.contains('/') {
            if let Some(m) = process::library(pid, target) {
                return Ok(vec![module(m)]);
            }
        } else if !Path::new(target).exists() {
            let path = process::open_path(pid, Path::new(target));
            if path.exists() {
                return Ok(vec![Target { path, shown: target.to_string() }]);
            }
        }
    }
    let path = binary::locate(target).map_err(|e| {
        let similar = binary::similar_targets(target);
        match crate::diagnostic::closest(target, similar.iter().map(String::as_str)) {
            Some(s) => format!("{} (did you mean `{}`?)", e, s),
            None => e.to_string(),
        }
    })?;
    let shown = if target.contains('/') { target.to_string() } else { path.display().to_string() };
    Ok(vec![Target { path, shown }])
}

impl Resolver {
    fn attach_point(&mut self, ap: &AttachPoint, params: &[String]) -> Vec<Resolved> {
        let spec = match interpret(ap, params) {
            Ok(s) => s,
            Err(d) => {
                self.diags.push(d);
                return vec![];
            }
        };
        let result = match &spec {
            ProbeSpec::Tracepoint { category, event } => self.tracepoints(category, event),
            ProbeSpec::Uprobe { target, func, ret } => self.uprobes(target, func, *ret),
            ProbeSpec::Usdt { target, provider, name } => self.usdts(target, provider.as_deref(), name),
            ProbeSpec::Software { event, .. } | ProbeSpec::Hardware { event, .. } => perf_event(&spec, event)
                .map(|()| vec![Resolved { name: display_name(ap, &spec), spec: spec.clone(), detail: Detail::None }]),
            other => Ok(vec![Resolved { name: display_name(ap, other), spec: spec.clone(), detail: Detail::None }]),
        };
        match result {
            Ok(v) => v,
            Err(d) => {
                self.diags.push(Diagnostic { span: Some(ap.span), ..d });
                vec![]
            }
        }
    }

    fn tracepoints(&mut self, category: &str, event: &str) -> Result<Vec<Resolved>, Diagnostic> {
        let Some(root) = tracefs() else {
            return Err(Diagnostic::error_nowhere("tracefs is not mounted")
                .with_help("mount it with `mount -t tracefs nodev /sys/kernel/tracing`"));
        };
        let events = root.join("events");
        let categories = list_dirs(&events);
        let matching_categories: Vec<&String> = categories.iter().filter(|c| glob::matches(category, c)).collect();
        if matching_categories.is_empty() {
            let d = Diagnostic::error_nowhere(format!("unknown tracepoint category `{}`", category));
            return Err(suggest(d, category, categories.iter().map(String::as_str)));
        }
        let mut out = Vec::new();
        for cat in matching_categories {
            let names = list_dirs(&events.join(cat));
            for name in names.iter().filter(|n| glob::matches(event, n)) {
                let format_path = events.join(cat).join(name).join("format");
                let Ok(text) = std::fs::read_to_string(&format_path) else { continue };
                let format = TracepointFormat::parse(&text).map_err(Diagnostic::error_nowhere)?;
                out.push(Resolved {
                    name: format!("tracepoint:{}:{}", cat, name),
                    spec: ProbeSpec::Tracepoint { category: cat.clone(), event: name.clone() },
                    detail: Detail::Tracepoint(format),
                });
            }
        }
        if out.is_empty() {
            if glob::is_glob(event) || glob::is_glob(category) {
                return Err(Diagnostic::error_nowhere(format!("no tracepoints match `{}:{}`", category, event)));
            }
            let names = list_dirs(&events.join(category));
            let d = Diagnostic::error_nowhere(format!("unknown tracepoint `{}:{}`", category, event));
            return Err(suggest(d, event, names.iter().map(String::as_str)));
        }
        Ok(out)
    }

    fn targets(&self, target: &str, all: bool) -> Result<Vec<Target>, Diagnostic> {
        targets(target, self.pid, all).map_err(Diagnostic::error_nowhere)
    }

    fn binary(&mut self, path: &Path) -> Result<&Binary, Diagnostic> {
        if !self.binaries.contains_key(path) {
            let bin = Binary::read(path).map_err(|e| Diagnostic::error_nowhere(e.to_string()))?;
            self.binaries.insert(path.to_path_buf(), bin);
        }
        Ok(&self.binaries[path])
    }

    /// `usdt:target:[provider:]name`, each part a wildcard or (provider)
    /// empty for any; one `Resolved` per site, as a probe inlined in several
    /// places has several.
    fn usdts(&mut self, target: &str, provider: Option<&str>, name: &str) -> Result<Vec<Resolved>, Diagnostic> {
        let provider = provider.filter(|p| !p.is_empty()).unwrap_or("*");
        let mut out = Vec::new();
        let mut known: Vec<String> = Vec::new();
        let arch = crate::probe::arch::Arch::host();
        for t in self.targets(target, true)? {
            let bin = self.binary(&t.path)?;
            for note in &bin.usdt {
                known.push(format!("{}:{}", note.provider, note.name));
                if !glob::matches(provider, &note.provider) || !glob::matches(name, &note.name) {
                    continue;
                }
                let missing = |what: &str, addr: u64| {
                    Diagnostic::error_nowhere(format!(
                        "USDT probe `{}:{}` in `{}`: its {} {:#x} is not in a loadable segment",
                        note.provider, note.name, t.shown, what, addr
                    ))
                };
                let offset = bin.file_offset(note.address).ok_or_else(|| missing("address", note.address))?;
                let semaphore = match note.semaphore {
                    0 => None,
                    s => Some(bin.file_offset(s).ok_or_else(|| missing("semaphore", s))?),
                };
                let mut args = crate::probe::usdt::parse_args(arch, &note.args);
                for a in &mut args {
                    if let UsdtLoc::Symbol { name: sym, offset } = &a.loc {
                        // `sym(%rip)`: as far from the probed instruction as in the file.
                        a.loc = match super::symbols::data_symbol(&t.path, sym) {
                            Some((addr, _)) => UsdtLoc::Mem {
                                base: arch.ip_register().into(),
                                offset: addr.wrapping_add(*offset as u64).wrapping_sub(note.address) as i64,
                                index: None,
                            },
                            None => UsdtLoc::Unsupported,
                        };
                    }
                }
                out.push(Resolved {
                    name: format!("usdt:{}:{}:{}", t.shown, note.provider, note.name),
                    spec: ProbeSpec::Usdt {
                        target: t.path.display().to_string(),
                        provider: Some(note.provider.clone()),
                        name: note.name.clone(),
                    },
                    detail: Detail::Usdt(UsdtSite {
                        path: t.path.clone(),
                        offset,
                        semaphore,
                        provider: note.provider.clone(),
                        name: note.name.clone(),
                        args,
                    }),
                });
            }
        }
        if out.is_empty() {
            let what = if provider == "*" { name.to_string() } else { format!("{}:{}", provider, name) };
            if known.is_empty() {
                return Err(Diagnostic::error_nowhere(format!("`{}` has no USDT probes", target)));
            }
            let d = Diagnostic::error_nowhere(format!("USDT probe `{}` not found in `{}`", what, target));
            if glob::is_glob(&what) {
                return Err(d);
            }
            let plain = known.iter().map(|k| k.rsplit(':').next().unwrap_or(k)).collect::<Vec<_>>();
            return Err(if provider == "*" {
                suggest(d, name, plain)
            } else {
                suggest(d, &what, known.iter().map(String::as_str))
            });
        }
        Ok(out)
    }

    fn uprobes(&mut self, target: &str, func: &UprobeTarget, ret: bool) -> Result<Vec<Resolved>, Diagnostic> {
        let mut out = Vec::new();
        for t in self.targets(target, false)? {
            out.extend(self.uprobes_in(&t, func, ret)?);
        }
        Ok(out)
    }

    fn uprobes_in(&mut self, t: &Target, func: &UprobeTarget, ret: bool) -> Result<Vec<Resolved>, Diagnostic> {
        let path = t.path.clone();
        let bin = self.binary(&path)?;
        let provider = if ret { "uretprobe" } else { "uprobe" };
        let site = |symbol: String, address: u64| -> Result<Resolved, Diagnostic> {
            let offset = bin.file_offset(address).ok_or_else(|| {
                Diagnostic::error_nowhere(format!(
                    "address {:#x} is not in a loadable segment of `{}`",
                    address,
                    path.display()
                ))
            })?;
            Ok(Resolved {
                name: format!("{}:{}:{}", provider, path.display(), symbol),
                spec: ProbeSpec::Uprobe {
                    target: path.display().to_string(),
                    func: UprobeTarget::Symbol { name: symbol.clone(), offset: 0 },
                    ret,
                },
                detail: Detail::Uprobe(UprobeSite { path: path.clone(), offset, symbol, lang: bin.lang }),
            })
        };
        match func {
            UprobeTarget::Address(addr) => {
                // Only inside a function: anywhere else is data, or not code at all.
                let Some(f) = bin.function_at(*addr) else {
                    return Err(Diagnostic::error_nowhere(format!(
                        "Could not resolve address: {}:{:#x}",
                        t.shown, addr
                    ))
                    .with_help(
                        "the address must be inside a function of the binary (see `rtrace -l uprobe:BINARY:*`)",
                    ));
                };
                let symbol = f.name.clone();
                Ok(vec![site(symbol, *addr)?])
            }
            UprobeTarget::Symbol { name, offset } if glob::is_glob(name) => {
                let matched: Vec<_> = bin.functions.iter().filter(|f| !f.ifunc && f.matches(name)).collect();
                if matched.is_empty() {
                    return Err(Diagnostic::error_nowhere(format!(
                        "no functions in `{}` match `{}`",
                        path.display(),
                        name
                    )));
                }
                let mut seen = std::collections::HashSet::new();
                matched
                    .into_iter()
                    .filter(|f| seen.insert(f.address))
                    .map(|f| site(f.demangled.as_ref().map_or(f.name.clone(), |d| d.0.clone()), f.address + offset))
                    .collect()
            }
            UprobeTarget::Symbol { name, offset } => match bin.function(name) {
                // The code the resolver picks for this CPU (`__strlen_avx2`).
                Some(f) if f.ifunc => {
                    let addr = super::ifunc::resolve(&path, name).map_err(Diagnostic::error_nowhere)?;
                    Ok(vec![site(name.clone(), addr + offset)?])
                }
                Some(f) => {
                    if *offset >= f.size.max(1) && f.size > 0 {
                        return Err(Diagnostic::error_nowhere(format!(
                            "Offset outside the function bounds ('{}' size is {}): +{}",
                            name, f.size, offset
                        )));
                    }
                    Ok(vec![site(name.clone(), f.address + offset)?])
                }
                None => {
                    let d = Diagnostic::error_nowhere(format!("function `{}` not found in `{}`", name, path.display()));
                    Err(suggest(d, name, bin.functions.iter().map(|f| f.name.as_str())))
                }
            },
        }
    }
}

fn display_name(ap: &AttachPoint, spec: &ProbeSpec) -> String {
    let mut name = spec.provider().to_string();
    for p in &ap.parts {
        name.push(':');
        name.push_str(p);
    }
    name
}

fn suggest<'a>(d: Diagnostic, name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Diagnostic {
    match closest(name, candidates) {
        Some(s) => d.with_help(format!("did you mean `{}`?", s)),
        None => d,
    }
}

fn list_dirs(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(path)
        .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v
}
