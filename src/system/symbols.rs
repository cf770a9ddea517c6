//! Names to addresses: the symbols `kaddr()` and `uaddr()` name, kallsyms
//! as a list; and `cgroup_path()` values turned into text when printed.
//! (Addresses to names — stacks, `ksym()`, `usym()` — are `symbolize`.)

use super::binary::Binary;
use std::path::Path;

/// A symbol's address and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// The address; with `pc_relative`, the distance from the probed
    /// instruction (a position-independent binary's load address is only
    /// known at run time).
    pub address: u64,
    pub size: u64,
    pub pc_relative: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("Could not resolve symbol: {scope}:{name}")]
    NotFound { scope: String, name: String },
    #[error(
        "uaddr(\"{0}\") in a uretprobe of a position-independent binary: its load address is only known in a uprobe"
    )]
    InUretprobe(String),
    #[error("{0}")]
    Unreadable(String),
}

/// `uaddr("name")` in a uprobe at file offset `probe_offset` of `binary`. In
/// a position-independent binary the address is taken relative to the probed
/// instruction, whose address a uprobe knows (`ip`); a uretprobe does not.
pub fn user_symbol(binary: &Binary, probe_offset: u64, ret: bool, name: &str) -> Result<Symbol, SymbolError> {
    let not_found = || SymbolError::NotFound { scope: binary.path.display().to_string(), name: name.to_string() };
    let (address, size) = data_symbol(&binary.path, name).ok_or_else(not_found)?;
    if !binary.pie {
        return Ok(Symbol { address, size, pc_relative: false });
    }
    if ret {
        return Err(SymbolError::InUretprobe(name.to_string()));
    }
    let probe = binary.address_of_offset(probe_offset).ok_or_else(not_found)?;
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

/// A `kallsyms` file: (address, name), sorted by address; zero addresses
/// (what an unprivileged reader sees) left out.
pub fn read_kallsyms(path: &Path) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
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

/// `username`: the name `/etc/passwd` gives user id `uid`, or nothing (as
/// bpftrace prints an unknown user). Read at each call, as bpftrace does:
/// a user added while rtrace runs is found.
pub fn user_name(uid: u64) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd_name(&passwd, uid).unwrap_or_default().to_string()
}

/// The name of `uid` in the text of a passwd file (`name:x:uid:gid:...`).
fn passwd_name(passwd: &str, uid: u64) -> Option<&str> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)?.parse::<u64>().ok()? == uid).then_some(name)
    })
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

#[cfg(test)]
mod tests {
    use super::passwd_name;

    #[test]
    fn passwd_names_by_uid() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\n#comment\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(passwd_name(passwd, 0), Some("root"));
        assert_eq!(passwd_name(passwd, 65534), Some("nobody"));
        assert_eq!(passwd_name(passwd, 1000), None);
    }
}
