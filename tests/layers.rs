//! The house rules of `src/`, as `src/lib.rs` states them: each top-level
//! module may use only the modules below it in the pipeline, and no two
//! files import each other, however indirectly. The imports are read as
//! text (`crate::a::b`, `super::b`), which is how this code base writes them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules from the bottom up; a module may use those of lower
/// rank. Modules of one rank may not use each other.
const LAYERS: &[(&str, u32)] = &[
    ("span", 0),
    ("options", 0),
    ("contract", 0),
    ("types", 0),
    ("raw_text", 0),
    ("nesting", 0),
    ("config", 1),
    ("output", 1),
    ("diagnostic", 1),
    ("parser", 2),
    ("probe", 3),
    ("system", 4),
    ("sema", 5),
    ("codegen", 6),
    ("runtime", 7),
    ("driver", 8),
    ("repl", 9),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, relative to `src/`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(src()).unwrap().to_path_buf());
        }
    }
}

/// The module path of a file: `system/resolve.rs` → [system, resolve],
/// `system/mod.rs` → [system].
fn module_of(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
        parts.pop();
    }
    parts
}

/// The module paths a file's code names: `crate::a::b::c` and `super::b`
/// (relative to the file's module), up to the first non-module segment.
fn references(file: &Path, text: &str) -> Vec<Vec<String>> {
    let here = module_of(file);
    let mut out = Vec::new();
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    for (prefix, base) in [("crate::", Vec::new()), ("super::", here[..here.len().saturating_sub(1)].to_vec())] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut path = base.clone();
            let mut tail = rest;
            // `super::super::x`
            while let Some(t) = tail.strip_prefix("super::") {
                path.pop();
                tail = t;
            }
            for segment in tail.split("::") {
                let name: String = segment.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if name.is_empty() || name.chars().next().unwrap().is_uppercase() || name.len() != segment.len() {
                    if !name.is_empty() && name.chars().next().unwrap().is_lowercase() {
                        path.push(name);
                    }
                    break;
                }
                path.push(name);
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn modules_use_only_lower_layers() {
    let rank: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut all = Vec::new();
    files(&src(), &mut all);
    let mut wrong = Vec::new();
    for file in &all {
        let module = module_of(file);
        let Some(top) = module.first() else { continue };
        let Some(&mine) = rank.get(top.as_str()) else {
            assert!(file == Path::new("main.rs"), "{} is in no layer: add its module to LAYERS", file.display());
            continue;
        };
        let text = std::fs::read_to_string(src().join(file)).unwrap();
        for path in references(file, &text) {
            let Some(other) = path.first() else { continue };
            let Some(&theirs) = rank.get(other.as_str()) else { continue };
            if other != top && theirs >= mine {
                wrong.push(format!(
                    "{} uses `{}` (layer {} may not use layer {})",
                    file.display(),
                    path.join("::"),
                    mine,
                    theirs
                ));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "imports against the layers of src/lib.rs:\n{}", wrong.join("\n"));
}

#[test]
fn no_file_imports_itself_through_others() {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let by_module: BTreeMap<Vec<String>, PathBuf> = all.iter().map(|f| (module_of(f), f.clone())).collect();
    // file → the files it imports (the longest module path each reference names).
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in &all {
        let text = std::fs::read_to_string(src().join(file)).unwrap();
        let targets = edges.entry(file.clone()).or_default();
        for mut path in references(file, &text) {
            while !path.is_empty() {
                if let Some(target) = by_module.get(&path) {
                    // A module's own mod.rs re-exporting its children is no cycle.
                    if target != file && !module_of(file).starts_with(&path) {
                        targets.insert(target.clone());
                    }
                    break;
                }
                path.pop();
            }
        }
    }
    let mut cycles = Vec::new();
    for start in edges.keys() {
        // Depth-first from `start`, looking for a way back to it.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let names: Vec<String> = trail.iter().chain([start]).map(|p| p.display().to_string()).collect();
                    cycles.push(names.join(" -> "));
                } else if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "files that import each other:\n{}", cycles.join("\n"));
}
