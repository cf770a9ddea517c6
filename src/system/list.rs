//! `rtrace -l [PATTERN]`: the probes this system offers, as bpftrace lists
//! them (`type:target:name`, one per line), filtered by a wildcard pattern;
//! `-v` adds the fields of each tracepoint.

use super::binary::{Binary, BinaryError};
use super::resolve::{targets, TargetError};
use super::tracefs;
use crate::probe::arch::Arch;
use crate::probe::glob;
use crate::probe::perf_events::{HARDWARE, SOFTWARE};
use crate::probe::usdt::parse_args;
use crate::probe::TracepointFormat;
use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("invalid character {0:?} in search expression `{1}`")]
    Pattern(char, String),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Binary(#[from] BinaryError),
    /// Writing the list failed (`rtrace -l | head` closed the pipe).
    #[error("{0}")]
    Write(#[from] std::io::Error),
    #[error("cannot list tracepoints: permission denied reading {}: {}", .0.display(), super::privilege::NEEDED)]
    Denied(std::path::PathBuf),
}

type Writer<'a> = dyn FnMut(&str) -> Result<(), ListError> + 'a;

/// Writes every probe matching `pattern` (all kernel probes when `None`);
/// with `pid` (`-p`), the USDT probes of that process's files too.
pub fn list(pattern: Option<&str>, verbose: bool, pid: Option<u32>, out: &mut dyn Write) -> Result<(), ListError> {
    if let (None, Some(_)) = (pattern, pid) {
        // A process's own probes: its functions and its USDT probes.
        list_user("uprobe", "*:*", verbose, pid, &mut |l| Ok(writeln!(out, "{}", l)?))?;
        return list(Some("usdt:*"), verbose, pid, out);
    }
    let pattern = pattern.unwrap_or("*:*");
    // Several searches, as bpftrace takes them: `struct a,kprobe:f`.
    if pattern.contains(',') {
        for one in pattern.split(',') {
            list(Some(one.trim()), verbose, pid, out)?;
        }
        return Ok(());
    }
    // `struct task_struct`: the type's definition, from the kernel's BTF.
    if let Some(name) = ["struct ", "union "].iter().find_map(|p| pattern.starts_with(p).then_some(pattern)) {
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(r) =
            super::btf::load(std::path::Path::new(super::btf::VMLINUX)).and_then(|b| super::btf::record(&b, &name))
        {
            writeln!(out, "{} {{", name)?;
            for m in &r.fields {
                writeln!(out, "\t{} {};", m.ty, m.name)?;
            }
            writeln!(out, "}};")?;
        }
        return Ok(());
    }
    if let Some(c) = pattern.chars().find(|c| !(c.is_ascii_alphanumeric() || "_-:*?./+@\"[]".contains(*c))) {
        return Err(ListError::Pattern(c, pattern.to_string()));
    }
    // `sched_switch` alone searches every probe's last part.
    let pattern = if pattern.contains(':') { pattern.to_string() } else { format!("*:{}", pattern) };
    let (kind, rest) = pattern.split_once(':').unwrap_or((&pattern, "*"));
    let mut w = |line: &str| Ok(writeln!(out, "{}", line)?);
    if matches!(kind, "uprobe" | "uretprobe") {
        return list_user(kind, rest, verbose, pid, &mut w);
    }
    if glob::matches(kind, "usdt") {
        if kind == "usdt" {
            return list_usdt(rest, verbose, pid, &mut w);
        }
        // `*:*` names no file: USDT probes are listed per binary or process,
        // and a wildcard type only lists them where a target is named.
        let named = rest.contains(':') && !matches!(rest.split(':').next(), Some("*" | ""));
        if pid.is_some() || named {
            let _ = list_usdt(rest, verbose, pid, &mut w);
        }
        if named && glob::matches(kind, "uprobe") {
            let _ = list_user("uprobe", rest, verbose, pid, &mut w);
        }
    }
    if glob::matches(kind, "tracepoint") {
        if let (None, Some(path)) = (tracefs::mounted(), tracefs::denied()) {
            return Err(ListError::Denied(path));
        }
        if let Some(root) = tracefs::mounted() {
            let last = |n: &str| n.rsplit(':').next().unwrap_or(n).to_string();
            let names = tracefs::available_events(&root);
            for name in names.iter().filter(|n| glob::matches(rest, n) || glob::matches(rest, &last(n))) {
                w(&format!("tracepoint:{}", name))?;
                if verbose {
                    let (category, event) = name.split_once(':').unwrap_or((name, ""));
                    let text = tracefs::format(&root, category, event).unwrap_or_default();
                    if let Ok(format) = TracepointFormat::parse(&text) {
                        for f in format.user_fields() {
                            w(&format!("    {} {}", f.c_type, f.name))?;
                        }
                    }
                }
            }
        }
    }
    if glob::matches(kind, "kprobe") {
        // Only where the kernel has kprobes does tracefs list these.
        let funcs = match tracefs::mounted() {
            Some(root) if tracefs::kprobes_available() => tracefs::kprobe_functions(&root),
            _ => vec![],
        };
        for f in funcs.iter().filter(|f| glob::matches(rest, f)) {
            w(&format!("kprobe:{}", f))?;
        }
    }
    for (name, events) in [("software", SOFTWARE), ("hardware", HARDWARE)] {
        if glob::matches(kind, name) {
            // Each event, then its alias (`software:cpu:`), as bpftrace v0.26.
            let names = events
                .iter()
                .flat_map(|(e, alias, _)| std::iter::once(*e).chain((!alias.is_empty()).then_some(*alias)));
            for e in names.filter(|e| glob::matches(rest, &format!("{}:", e)) || glob::matches(rest, e)) {
                w(&format!("{}:{}:", name, e))?;
            }
        }
    }
    // Raw tracepoints and iterators, from the kernel's BTF, as bpftrace
    // v0.26 finds them (`__probestub_`/`__traceiter_` functions, `struct
    // bpf_iter__NAME`).
    let (raw, iter) = (glob::matches(kind, "rawtracepoint"), glob::matches(kind, "iter"));
    if raw || iter {
        if let Some(btf) = super::btf::load(std::path::Path::new(super::btf::VMLINUX)) {
            if raw {
                let mut names: Vec<(String, String)> = super::btf::functions(&btf)
                    .into_iter()
                    .filter_map(|f| {
                        let name =
                            f.strip_prefix("__probestub_").or_else(|| f.strip_prefix("__traceiter_"))?.to_string();
                        Some((name, f))
                    })
                    .collect();
                names.sort();
                names.dedup_by(|a, b| a.0 == b.0);
                for (name, func) in names {
                    if !(glob::matches(rest, &format!("vmlinux:{}", name)) || glob::matches(rest, &name)) {
                        continue;
                    }
                    w(&format!("rawtracepoint:vmlinux:{}", name))?;
                    if verbose {
                        // The first parameter is the tracepoint's own data.
                        for (pname, ty) in
                            super::btf::function(&btf, &func).map(|p| p.params).unwrap_or_default().iter().skip(1)
                        {
                            w(&format!("    {} {}", ty, pname))?;
                        }
                    }
                }
            }
            if iter {
                for name in super::btf::iterators(&btf).iter().filter(|n| glob::matches(rest, n)) {
                    w(&format!("iter:{}", name))?;
                }
            }
        }
    }
    // Timers: their units (`interval:ms:`); `interval:ms:100` lists its unit.
    for name in ["interval", "profile"] {
        if glob::matches(kind, name) {
            for unit in ["hz", "us", "ms", "s"] {
                if glob::matches(rest, &format!("{}:", unit))
                    || glob::matches(rest, unit)
                    || rest.split(':').next() == Some(unit)
                {
                    w(&format!("{}:{}:", name, unit))?;
                }
            }
        }
    }
    Ok(())
}

/// `usdt:TARGET[:PROVIDER]:NAME`: the USDT probes of the binaries a target
/// names, or of every file of the `-p` process; `-v` adds argument specs.
fn list_usdt(rest: &str, verbose: bool, pid: Option<u32>, w: &mut Writer<'_>) -> Result<(), ListError> {
    let (target, probe) = rest.split_once(':').unwrap_or((rest, "*"));
    let (provider, name) = match probe.split_once(':') {
        Some((p, n)) => (if p.is_empty() { "*" } else { p }, n),
        None => ("*", probe),
    };
    for t in targets(target, pid, true)? {
        let bin = Binary::read(&t.path)?;
        for note in &bin.usdt {
            if !glob::matches(provider, &note.provider) || !glob::matches(name, &note.name) {
                continue;
            }
            w(&format!("usdt:{}:{}:{}", t.shown, note.provider, note.name))?;
            if verbose {
                // Split as probes read them: aarch64 specs hold spaces (`8@[sp, 16]`).
                for (i, arg) in parse_args(Arch::host(), &note.args).iter().enumerate() {
                    w(&format!("    arg{}: {}", i, arg.text))?;
                }
            }
        }
    }
    Ok(())
}

/// `uprobe:BINARY:PATTERN`: the binary's functions; `-v` adds their
/// parameters from DWARF (`    int* n`).
fn list_user(kind: &str, rest: &str, verbose: bool, pid: Option<u32>, w: &mut Writer<'_>) -> Result<(), ListError> {
    let (target, func) = rest.rsplit_once(':').unwrap_or((rest, "*"));
    for t in targets(target, pid, false)? {
        let bin = Binary::read(&t.path)?;
        let dwarf = if verbose { super::dwarf::DwarfTypes::load(&t.path) } else { None };
        // C++ and Rust functions by their demangled names, as users write them.
        // (shown name, symbol): the symbol is what DWARF names the function by.
        let mut names: Vec<(&str, &str)> = bin
            .functions
            .iter()
            .map(|f| (f.demangled.as_ref().map_or(f.name.as_str(), |d| d.0.as_str()), f.name.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup_by_key(|(shown, _)| *shown);
        for (name, symbol) in names.into_iter().filter(|(n, _)| glob::matches(func, n)) {
            w(&format!("{}:{}:{}", kind, t.shown, name))?;
            for p in dwarf.as_ref().and_then(|d| d.params(symbol)).unwrap_or_default() {
                w(&format!("    {} {}", p.c_type, p.name))?;
            }
        }
    }
    Ok(())
}
