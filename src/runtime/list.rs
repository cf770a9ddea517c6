//! `rtrace -l [PATTERN]`: the probes this system offers, as bpftrace lists
//! them (`type:target:name`, one per line), filtered by a wildcard pattern;
//! `-v` adds the fields of each tracepoint.

use super::binary::{self, Binary};
use super::glob;
use super::resolve::tracefs;
use crate::probe::perf_events::{HARDWARE, SOFTWARE};
use crate::probe::TracepointFormat;
use std::io::Write;

/// Writes every probe matching `pattern` (all kernel probes when `None`).
pub fn list(pattern: Option<&str>, verbose: bool, out: &mut dyn Write) -> Result<(), String> {
    let pattern = pattern.unwrap_or("*:*");
    if let Some(c) = pattern.chars().find(|c| !(c.is_ascii_alphanumeric() || "_-:*?./+@\"[]".contains(*c))) {
        return Err(format!("invalid character {:?} in search expression `{}`", c, pattern));
    }
    // `sched_switch` alone searches every probe's last part.
    let pattern = if pattern.contains(':') { pattern.to_string() } else { format!("*:{}", pattern) };
    let (kind, rest) = pattern.split_once(':').unwrap_or((&pattern, "*"));
    let mut w = |line: &str| writeln!(out, "{}", line).map_err(|e| e.to_string());
    if matches!(kind, "uprobe" | "uretprobe") {
        return list_user(kind, rest, &mut w);
    }
    if glob::matches(kind, "tracepoint") {
        if let Some(root) = tracefs() {
            let events = std::fs::read_to_string(root.join("available_events")).unwrap_or_default();
            let mut names: Vec<&str> = events.lines().collect();
            names.sort_unstable();
            let last = |n: &str| n.rsplit(':').next().unwrap_or(n).to_string();
            for name in names.into_iter().filter(|n| glob::matches(rest, n) || glob::matches(rest, &last(n))) {
                w(&format!("tracepoint:{}", name))?;
                if verbose {
                    let path = root.join("events").join(name.replacen(':', "/", 1)).join("format");
                    let text = std::fs::read_to_string(path).unwrap_or_default();
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
        let funcs = tracefs()
            .and_then(|r| std::fs::read_to_string(r.join("available_filter_functions")).ok())
            .filter(|_| super::attach::kprobes_available())
            .unwrap_or_default();
        for f in funcs.lines().filter_map(|l| l.split_whitespace().next()).filter(|f| glob::matches(rest, f)) {
            w(&format!("kprobe:{}", f))?;
        }
    }
    for (name, events) in [("software", SOFTWARE), ("hardware", HARDWARE)] {
        if glob::matches(kind, name) {
            for (e, _, _) in
                events.iter().filter(|e| glob::matches(rest, &format!("{}:", e.0)) || glob::matches(rest, e.0))
            {
                w(&format!("{}:{}:", name, e))?;
            }
        }
    }
    Ok(())
}

/// `uprobe:BINARY:PATTERN`: the binary's functions.
fn list_user(kind: &str, rest: &str, w: &mut dyn FnMut(&str) -> Result<(), String>) -> Result<(), String> {
    let (target, func) = rest.rsplit_once(':').unwrap_or((rest, "*"));
    let path = binary::locate(target).map_err(|e| e.to_string())?;
    let bin = Binary::read(&path).map_err(|e| e.to_string())?;
    let mut names: Vec<&str> = bin.functions.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names.into_iter().filter(|n| glob::matches(func, n)) {
        w(&format!("{}:{}:{}", kind, path.display(), name))?;
    }
    Ok(())
}
