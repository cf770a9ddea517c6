//! GNU indirect functions (glibc's `strlen`, `memcpy`, ...): the symbol's
//! address is a resolver that picks an implementation for this CPU when the
//! program is linked. rtrace asks its own dynamic loader for the symbol
//! (which runs the resolver), and turns the implementation's address back
//! into an address in the file: the code every process on this machine runs.

use std::ffi::{CStr, CString};
use std::path::Path;

/// The implementation `symbol` of the library at `path` resolves to, as a
/// virtual address in that file, or why it cannot be found.
pub fn resolve(path: &Path, symbol: &str) -> Result<u64, String> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    let csym = CString::new(symbol).map_err(|e| e.to_string())?;
    // SAFETY: plain libdl calls with NUL-terminated strings. RTLD_NOLOAD first:
    // a library already in this process (libc) is not loaded twice.
    let handle = unsafe {
        let h = libc::dlopen(cpath.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
        if h.is_null() {
            libc::dlopen(cpath.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL)
        } else {
            h
        }
    };
    if handle.is_null() {
        return Err(format!("cannot load `{}` to resolve the IFUNC `{}`: {}", path.display(), symbol, dl_error()));
    }
    // SAFETY: a valid handle; dlsym runs the IFUNC resolver and returns its choice.
    let addr = unsafe { libc::dlsym(handle, csym.as_ptr()) };
    if addr.is_null() {
        return Err(format!("the dynamic loader cannot resolve `{}`: {}", symbol, dl_error()));
    }
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: addr comes from dlsym; info is a valid out-parameter.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return Err(format!("cannot find which file holds the implementation of `{}`", symbol));
    }
    // SAFETY: dladdr returned a NUL-terminated file name.
    let file = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    let same_file = std::fs::canonicalize(&file).ok().as_deref() == std::fs::canonicalize(path).ok().as_deref();
    if !same_file {
        return Err(format!("`{}` resolves to code in another file ({})", symbol, file));
    }
    // A shared object is linked at 0: its load base turns addresses back into file addresses.
    Ok(addr as u64 - info.dli_fbase as u64)
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}
