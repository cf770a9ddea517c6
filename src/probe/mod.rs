//! What a probe attaches to: the attach-point grammar interpreted (`spec`),
//! and the facts about the system a checker needs once a spec is resolved
//! (`Resolved`: tracepoint fields, binary offsets). Pure data; the runtime
//! fills `Resolved` from /sys and ELF files.

pub mod arch;
pub mod glob;
pub mod perf_events;
pub mod spec;
pub mod tracepoint_format;
pub mod usdt;

pub use spec::{ProbeSpec, UprobeTarget};
pub use tracepoint_format::{TpField, TpFieldKind, TracepointFormat};

use std::path::PathBuf;

/// Language of a user-space binary: decides the argument registers of `argN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    C,
    Go,
}

/// One concrete attach point after wildcards and names are resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The probe's full name, as the `probe` builtin prints it
    /// (`uprobe:./fib:main.Fibonacci`, `tracepoint:syscalls:sys_enter_openat`).
    pub name: String,
    pub spec: ProbeSpec,
    pub detail: Detail,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    None,
    Tracepoint(TracepointFormat),
    Uprobe(UprobeSite),
    Usdt(UsdtSite),
}

/// Where in a file a uprobe goes.
#[derive(Clone, Debug, PartialEq)]
pub struct UprobeSite {
    /// Absolute path of the binary or library.
    pub path: PathBuf,
    /// File offset of the probed instruction.
    pub offset: u64,
    /// Symbol the offset belongs to (for `func`), or the address text.
    pub symbol: String,
    pub lang: Lang,
}

/// Where a USDT probe goes and where its arguments are.
#[derive(Clone, Debug, PartialEq)]
pub struct UsdtSite {
    /// Absolute path of the binary or library holding the note.
    pub path: PathBuf,
    /// File offset of the probed instruction.
    pub offset: u64,
    /// File offset of the probe's semaphore, which the kernel increments
    /// while the probe is attached.
    pub semaphore: Option<u64>,
    pub provider: String,
    pub name: String,
    pub args: Vec<usdt::UsdtArg>,
}
