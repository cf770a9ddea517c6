//! tracefs: which tracepoints this kernel has, and their formats. Every
//! function takes the tracefs root, so a recorded copy can stand in for the
//! kernel's (`Machine::recorded`).

use std::path::{Path, PathBuf};

/// Where tracefs may be mounted.
const MOUNTS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The mounted tracefs, if any.
pub fn mounted() -> Option<PathBuf> {
    MOUNTS.iter().map(PathBuf::from).find(|p| p.join("events").is_dir())
}

/// A tracefs this user may not read (mounted, but mode 0700 for root): its
/// path, so that "not mounted" is not said of it.
pub fn denied() -> Option<PathBuf> {
    MOUNTS.iter().map(PathBuf::from).find(|p| {
        std::fs::read_dir(p).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
            || std::fs::read_dir(p.join("events")).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
    })
}

/// Tracepoint categories (`events/*`), sorted.
pub fn categories(root: &Path) -> Vec<String> {
    dir_names(&root.join("events"))
}

/// The events of one category, sorted.
pub fn events(root: &Path, category: &str) -> Vec<String> {
    dir_names(&root.join("events").join(category))
}

/// The text of `events/CATEGORY/EVENT/format`.
pub fn format(root: &Path, category: &str, event: &str) -> std::io::Result<String> {
    std::fs::read_to_string(root.join("events").join(category).join(event).join("format"))
}

/// The perf event id of a tracepoint (`events/CATEGORY/EVENT/id`), which
/// `perf_event_open` takes as the config of a `PERF_TYPE_TRACEPOINT` event.
pub fn event_id(root: &Path, category: &str, event: &str) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(root.join("events").join(category).join(event).join("id"))?;
    text.trim().parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// `available_events`: every `category:event`, sorted.
pub fn available_events(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("available_events")).unwrap_or_default();
    let mut names: Vec<String> = text.lines().map(str::to_string).collect();
    names.sort_unstable();
    names
}

/// Where the kernel lists the functions kprobes refuse (debugfs).
const KPROBE_BLACKLIST: &str = "/sys/kernel/debug/kprobes/blacklist";

/// Kernel functions kprobes may attach to: `available_filter_functions`
/// (a module's functions are marked `[module]`), less the kprobe
/// blacklist; sorted, each once.
pub fn kprobe_functions(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("available_filter_functions")).unwrap_or_default();
    // `0xffffffff81000000-0xffffffff81000010\tname`
    let blacklist = std::fs::read_to_string(KPROBE_BLACKLIST).unwrap_or_default();
    let refused: std::collections::HashSet<&str> =
        blacklist.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|f| !refused.contains(f))
        .map(str::to_string)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Kprobes exist when the kernel has the kprobe PMU or tracefs kprobe_events.
pub fn kprobes_available() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
        || mounted().is_some_and(|t| t.join("kprobe_events").exists())
}

fn dir_names(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(path)
        .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v
}
