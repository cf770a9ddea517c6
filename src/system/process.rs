//! A running process's files, for `-p PID`: its executable and the ELF files
//! it maps (libraries), as paths rtrace can open even when the process lives
//! in another mount namespace.

use std::path::{Path, PathBuf};

/// A file mapped by the process: where rtrace opens it, and the path the
/// process itself sees (shown in probe names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub open_path: PathBuf,
    pub name: String,
}

/// The inode of the initial PID namespace (`PROC_PID_INIT_INO`).
const INIT_PID_NAMESPACE: u64 = 0xEFFF_FFFC;

/// rtrace's own PID namespace, as `bpf_get_ns_current_pid_tgid` names one
/// (the device and inode of `/proc/self/ns/pid`), when it is not the
/// initial namespace.
pub fn own_pid_namespace() -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::metadata("/proc/self/ns/pid").ok()?;
    (ns.ino() != INIT_PID_NAMESPACE).then(|| (ns.dev(), ns.ino()))
}

/// Whether process `pid` exists.
pub fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{}", pid)).is_dir()
}

/// True while `pid` runs (a zombie waiting for its parent has ended).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid)) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// `path` as the process sees it, opened through `/proc/PID/root` when the
/// process has another root directory (a container, `unshare -m`).
pub fn open_path(pid: u32, path: &Path) -> PathBuf {
    open_in(root_of(pid).as_deref(), path)
}

/// `/proc/PID/root` when the process sees another file tree than rtrace.
fn root_of(pid: u32) -> Option<PathBuf> {
    let same_root = std::fs::read_link(format!("/proc/{}/root", pid)).is_ok_and(|r| r == Path::new("/"))
        && std::fs::read_link(format!("/proc/{}/ns/mnt", pid)).ok() == std::fs::read_link("/proc/self/ns/mnt").ok();
    (!same_root).then(|| PathBuf::from(format!("/proc/{}/root", pid)))
}

fn open_in(root: Option<&Path>, path: &Path) -> PathBuf {
    match root {
        Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

/// The executable first, then every other file-backed mapping, each once.
pub fn modules(pid: u32) -> Vec<Module> {
    let mut names: Vec<String> = Vec::new();
    if let Ok(exe) = std::fs::read_link(format!("/proc/{}/exe", pid)) {
        names.push(exe.to_string_lossy().trim_end_matches(" (deleted)").to_string());
    }
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", pid)).unwrap_or_default();
    for line in maps.lines() {
        // address perms offset dev inode path
        let mut rest = line;
        for _ in 0..5 {
            rest = rest.trim_start().split_once(char::is_whitespace).map_or("", |(_, r)| r);
        }
        let path = rest.trim();
        if path.starts_with('/') && !path.ends_with(" (deleted)") && !names.iter().any(|n| n == path) {
            names.push(path.to_string());
        }
    }
    let root = root_of(pid);
    names
        .into_iter()
        .map(|name| Module { open_path: open_in(root.as_deref(), Path::new(&name)), name })
        .filter(|m| super::binary::is_elf(&m.open_path))
        .collect()
}

/// The process's mapped library a name means (`libc`, `libc.so.6`).
pub fn library(pid: u32, name: &str) -> Option<Module> {
    let base = if name.starts_with("lib") { name.to_string() } else { format!("lib{}", name) };
    modules(pid).into_iter().find(|m| {
        let file = Path::new(&m.name).file_name().and_then(|f| f.to_str()).unwrap_or("");
        file == name || file == format!("{}.so", base) || file.starts_with(&format!("{}.so.", base))
    })
}
