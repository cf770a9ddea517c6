//! C headers a program includes (`#include` lines, `--include`): only their
//! integer `#define`s are read. rtrace reads no C declarations: struct types
//! come from definitions in the script, DWARF and BTF.

use crate::diagnostic::Diagnostic;
use crate::parser::ast::Program;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Directories `#include <...>` names are looked up in.
const INCLUDE_DIRS: &[&str] = &["/usr/include", "/usr/local/include", "/usr/include/x86_64-linux-gnu"];

/// Why an included name is no header.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum HeaderError {
    #[error("'{0}' file not found")]
    NotFound(String),
    #[error("'{name}' is a directory, not a header file{}", found_in(.name, .path))]
    Directory { name: String, path: PathBuf },
}

/// ` (/usr/include/sys)` when the name was found in an include directory.
fn found_in(name: &str, path: &Path) -> String {
    if path == Path::new(name) {
        String::new()
    } else {
        format!(" ({})", path.display())
    }
}

/// The file an `#include` names: a path, or a header in the include dirs.
fn find_header(name: &str, from: Option<&Path>) -> Result<PathBuf, HeaderError> {
    let p = Path::new(name);
    let local = from.and_then(Path::parent).map(|d| d.join(p));
    let mut candidates = local
        .into_iter()
        .chain(std::iter::once(p.to_path_buf()))
        .chain(INCLUDE_DIRS.iter().map(|d| Path::new(d).join(p)));
    let mut directory = None;
    for c in candidates.by_ref() {
        if c.is_file() {
            return Ok(c);
        }
        if directory.is_none() && c.is_dir() {
            directory = Some(c);
        }
    }
    Err(match directory {
        Some(path) => HeaderError::Directory { name: name.to_string(), path },
        None => HeaderError::NotFound(name.to_string()),
    })
}

/// The integer `#define`s of every header the program includes (`#include`
/// lines and `--include` options), following the headers' own includes.
/// rtrace reads no C declarations: struct types come from definitions in the
/// script. A header that does not exist is an error.
pub fn defines(program: &Program, extra: &[String]) -> Result<HashMap<String, String>, Vec<Diagnostic>> {
    let mut missing = Vec::new();
    let mut roots = Vec::new();
    for inc in &program.includes {
        match find_header(&inc.path, None) {
            Ok(p) => roots.push(p),
            Err(e) => missing.push(Diagnostic::error(e.to_string(), inc.span)),
        }
    }
    for name in extra {
        match find_header(name, None) {
            Ok(p) => roots.push(p),
            Err(e) => missing.push(Diagnostic::error_nowhere(format!("{} (--include)", e))),
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
                if let Ok(p) = find_header(name, Some(&path)) {
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
