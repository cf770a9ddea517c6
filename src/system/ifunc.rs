//! GNU indirect functions (glibc's `strlen`, `memcpy`, ...): the symbol's
//! address is a resolver that picks an implementation for this CPU when the
//! program is linked. The dynamic loader runs the resolver; rtrace turns
//! the implementation's address back into an address in the file: the code
//! every process on this machine runs.
//!
//! Loading a library runs its code (constructors, the resolver). A library
//! rtrace has loaded already (its own libc) is asked in place. Any other is
//! loaded in a helper: rtrace itself started again (`HELPER_ENV`), which
//! enters `sandbox` before it touches the library and answers through a
//! pipe. The library's code never runs with rtrace's privileges, and the
//! answer is checked against the file before it is used.

use super::sandbox;
use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set (to the symbol's name) in the helper's environment; the library is
/// its stdin.
pub const HELPER_ENV: &str = "__RTRACE_IFUNC_SYMBOL";

/// How long the helper may take: a library whose constructor hangs must not
/// hang rtrace.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IfuncError {
    #[error("cannot open `{path}` to resolve the IFUNC `{symbol}`: {reason}")]
    Open { path: String, symbol: String, reason: String },
    #[error("cannot resolve the IFUNC `{symbol}` of `{path}`: {reason}")]
    Helper { path: String, symbol: String, reason: String },
    #[error("the IFUNC `{symbol}` of `{path}` resolved to {address:#x}, which is not code of that file")]
    NotCode { path: String, symbol: String, address: u64 },
}

/// The implementation `symbol` of the library at `path` resolves to, as a
/// virtual address in that file. `is_code` says whether an address is in
/// the file's code, to check the helper's answer.
pub fn resolve(path: &Path, symbol: &str, is_code: impl Fn(u64) -> bool) -> Result<u64, IfuncError> {
    let address = match resolve_loaded(path, symbol) {
        Some(found) => found,
        None => resolve_in_helper(path, symbol)?,
    };
    if !is_code(address) {
        let (path, symbol) = (path.display().to_string(), symbol.to_string());
        return Err(IfuncError::NotCode { path, symbol, address });
    }
    Ok(address)
}

/// A library already loaded into rtrace: the loader resolves the symbol
/// without loading or initialising anything.
fn resolve_loaded(path: &Path, symbol: &str) -> Option<u64> {
    let cpath = CString::new(path.as_os_str().as_bytes()).ok()?;
    let csym = CString::new(symbol).ok()?;
    // SAFETY: libdl calls with NUL-terminated strings; RTLD_NOLOAD never loads.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
    if handle.is_null() {
        return None;
    }
    let found = address_in_file(handle, &csym, path);
    // SAFETY: the handle came from dlopen; this drops the reference it took.
    unsafe { libc::dlclose(handle) };
    found.ok()
}

/// Resolves `symbol` through `handle` and turns the implementation's
/// address into one in the file at `path` (which must hold it).
fn address_in_file(handle: *mut libc::c_void, symbol: &CStr, path: &Path) -> Result<u64, String> {
    // SAFETY: a valid handle; dlsym runs the IFUNC resolver and returns its choice.
    let addr = unsafe { libc::dlsym(handle, symbol.as_ptr()) };
    if addr.is_null() {
        return Err(format!("the dynamic loader cannot find it: {}", dl_error()));
    }
    // SAFETY: all-zero is a valid Dl_info to fill.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: addr comes from dlsym; info is a valid out-parameter.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return Err("cannot find which file holds its implementation".into());
    }
    // SAFETY: dladdr returned a NUL-terminated file name.
    let file = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    if !same_file(Path::new(&file), path) {
        return Err(format!("it resolves to code in another file ({})", file));
    }
    // A shared object is linked at 0: its load base turns addresses back into file addresses.
    Ok(addr as u64 - info.dli_fbase as u64)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-NULL, NUL-terminated.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

/// Starts rtrace again as the helper, with a copy of the library on its
/// stdin, and reads the address it answers. The copy (an anonymous memory
/// file) is read here, as root: `nobody` can load it whatever the library's
/// own permissions, and a library inside another mount namespace is
/// reachable.
fn resolve_in_helper(path: &Path, symbol: &str) -> Result<u64, IfuncError> {
    let (shown, sym) = (path.display().to_string(), symbol.to_string());
    let library = copy_to_memory(path).map_err(|e| IfuncError::Open {
        path: shown.clone(),
        symbol: sym.clone(),
        reason: crate::output::error_reason(&e),
    })?;
    let failed = |reason: String| IfuncError::Helper { path: shown.clone(), symbol: sym.clone(), reason };
    let mut child = Command::new("/proc/self/exe")
        .env(HELPER_ENV, symbol)
        .stdin(library)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot start the helper: {}", e)))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < HELPER_TIMEOUT => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!("the library did not load within {} s", HELPER_TIMEOUT.as_secs())));
            }
            Err(e) => return Err(failed(e.to_string())),
        }
    };
    let (mut out, mut err) = (Vec::new(), String::new());
    child.stdout.take().map(|mut s| s.read_to_end(&mut out));
    child.stderr.take().map(|mut s| s.read_to_string(&mut err));
    // The answer is the last 8 bytes: the library's constructors may have
    // written to stdout before it, and nothing of it runs after it.
    match out.len().checked_sub(8).map(|at| <[u8; 8]>::try_from(&out[at..])) {
        Some(Ok(bytes)) if status.success() => Ok(u64::from_le_bytes(bytes)),
        _ if !err.trim().is_empty() => Err(failed(err.trim().to_string())),
        _ => Err(failed(format!("the helper ended with {}", status))),
    }
}

/// A copy of the file at `path` in an anonymous memory file, at offset 0.
fn copy_to_memory(path: &Path) -> std::io::Result<std::fs::File> {
    use std::io::Seek;
    use std::os::fd::FromRawFd;
    // SAFETY: a NUL-terminated name; a non-negative result is a new fd we own.
    let fd = unsafe { libc::memfd_create(c"rtrace-ifunc-library".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just created, owned by nothing else.
    let mut copy = unsafe { std::fs::File::from_raw_fd(fd) };
    std::io::copy(&mut std::fs::File::open(path)?, &mut copy)?;
    copy.rewind()?;
    Ok(copy)
}

/// The helper's whole life (rtrace started with `HELPER_ENV` set): enter
/// the sandbox, load the library on stdin, answer the address of `symbol`
/// in it on stdout (8 bytes, little endian), and end at once: `_exit`, so
/// that none of the library's destructors runs after the answer.
pub fn helper_main(symbol: &std::ffi::OsStr) -> ! {
    let code = helper(symbol);
    let _ = std::io::stdout().flush();
    // SAFETY: ends the process without running exit handlers.
    unsafe { libc::_exit(code) }
}

fn helper(symbol: &std::ffi::OsStr) -> i32 {
    let fail = |message: String| {
        let _ = writeln!(std::io::stderr(), "{}", message);
        1
    };
    if let Err(e) = sandbox::enter() {
        return fail(format!("cannot enter the sandbox: {}", e));
    }
    let Ok(csym) = CString::new(symbol.as_bytes()) else { return fail("bad symbol name".into()) };
    let library = Path::new("/proc/self/fd/0");
    let cpath = CString::new(library.as_os_str().as_bytes()).expect("no NUL in a literal path");
    // SAFETY: a NUL-terminated path; from here on the library's code runs, inside the sandbox.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return fail(format!("cannot load the library: {}", dl_error()));
    }
    match address_in_file(handle, &csym, library) {
        Ok(address) => match std::io::stdout().write_all(&address.to_le_bytes()) {
            Ok(()) => 0,
            Err(e) => fail(e.to_string()),
        },
        Err(e) => fail(e),
    }
}
