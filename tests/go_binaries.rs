//! What rtrace reads from real Go binaries: the return instructions of
//! every Go function, as `uretprobe` finds them (`system::returns`), for
//! x86_64 and for arm64 (cross-compiled: decoding needs no arm64 machine);
//! and where `goid` is, from DWARF or from the Go version's layout. A
//! linear sweep of Go's code must never meet bytes that do not decode, and
//! the function table (pclntab) must agree with the symbols. Needs `go`
//! (the workloads' toolchain), not root.

mod common;

use rtrace::probe::arch::Arch;
use rtrace::probe::Lang;
use rtrace::system::binary::Binary;
use rtrace::system::golang::GoVersion;
use rtrace::system::returns::{self, ReturnSiteError};
use rtrace::system::{golang, Facts, Machine};
use std::path::{Path, PathBuf};

/// Where the workloads and Go's caches go: the target's scratch directory,
/// or a directory of this user's own when that one is root's (the tests
/// also run as `nobody` after root has built them).
fn work_dir() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    let dir = if uid == 0 {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("go_binaries")
    } else {
        std::env::temp_dir().join(format!("rtrace-go_binaries-{}", uid))
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `goreturns` workload built for `goarch` with `flags`, as `name`.
fn build(name: &str, flags: &[&str], goarch: &str) -> PathBuf {
    let dir = work_dir();
    let out = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/goreturns");
    let res = common::go_build(&src, &out, flags, Some(goarch), &dir).output().expect("run go");
    assert!(res.status.success(), "go build failed:\n{}", String::from_utf8_lossy(&res.stderr));
    out
}

/// A function's name, and its return sites or why it has none.
type Found = (String, Result<Vec<u64>, ReturnSiteError>);

/// Every Go function's return sites, or why there are none.
fn sweep(path: &Path) -> (Binary, Vec<Found>) {
    let bin = Binary::read(path).unwrap();
    let data = std::fs::read(path).unwrap();
    let found = bin
        .functions
        .iter()
        .filter(|f| bin.lang_at(f.address) == Lang::Go)
        .map(|f| (f.name.clone(), returns::go_function(&bin, &data, f.address, Some(f.size))))
        .collect();
    (bin, found)
}

fn check(goarch: &str, arch: Arch, classify_returns: usize) {
    let (bin, found) = sweep(&build(&format!("goreturns-{}", goarch), &[], goarch));
    assert_eq!(bin.arch, Some(arch));
    let go = bin.go.as_ref().expect("a Go binary");
    assert!(go.version.is_some_and(|v| v >= GoVersion { major: 1, minor: 17 }), "{:?}", go.version);
    assert!(go.funcs.as_ref().is_ok_and(|t| t.len() > 1000), "{:?}", go.funcs.as_ref().map(|t| t.len()));
    // Tail calls, assembly's indirect jumps and functions that never return
    // are refused; bytes that are not code, or code past the table's end,
    // would mean the sweep went wrong.
    let wrong: Vec<_> = found
        .iter()
        .filter(|(_, r)| {
            matches!(
                r,
                Err(ReturnSiteError::Invalid(_)
                    | ReturnSiteError::Truncated(_)
                    | ReturnSiteError::PastTable { .. }
                    | ReturnSiteError::NoCode
                    | ReturnSiteError::NoSize)
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}: {:?}", goarch, wrong);
    let ok = found.iter().filter(|(_, r)| r.is_ok()).count();
    assert!(ok * 10 > found.len() * 9, "{}: only {} of {} functions have return sites", goarch, ok, found.len());
    let classify = found.iter().find(|(n, _)| n == "main.Classify").expect("main.Classify");
    assert_eq!(classify.1.as_ref().map(Vec::len), Ok(classify_returns), "{}", goarch);
}

#[test]
fn x86_64_go_functions_decode() {
    // 13 `ret`s, one past a jump table (`jmp *(%rax,%rdx,8)`).
    check("amd64", Arch::X86_64, 13);
}

#[test]
fn arm64_go_functions_decode() {
    check("arm64", Arch::Aarch64, 13);
}

#[test]
fn goid_offset_from_dwarf_or_the_version() {
    let machine = Machine::new(None);
    let with_dwarf = build("goreturns-dwarf", &[], "amd64");
    let stripped = build("goreturns-stripped", &["-ldflags=-w"], "amd64");
    let version = Binary::read(&with_dwarf).unwrap().go.unwrap().version.unwrap();
    let from_dwarf = machine.goid_offset(&with_dwarf).expect("runtime.g.goid in DWARF");
    // The table rtrace falls back to must say what DWARF says.
    assert_eq!(golang::goid_offset(version), Some(from_dwarf));
    assert!(machine.dwarf(&stripped).is_none(), "-ldflags=-w leaves no DWARF");
    assert_eq!(machine.goid_offset(&stripped), Ok(from_dwarf));
}
