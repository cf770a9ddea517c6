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
    /// Matched by a wildcard of the attach point, not named by it.
    pub wildcard: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    None,
    Tracepoint(TracepointFormat),
    Uprobe(UprobeSite),
    Usdt(UsdtSite),
    /// A raw tracepoint's arguments (`args`, `argN`), from the kernel's BTF.
    RawTracepoint {
        params: Vec<(String, crate::types::Type)>,
    },
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
    /// The calling convention of the probed function.
    pub lang: Lang,
    /// For a `uretprobe`: how it catches the function's return.
    pub ret: Option<Return>,
}

impl UprobeSite {
    /// Whether the kernel's return probe goes here (not a plain uprobe).
    pub fn kernel_return(&self) -> bool {
        matches!(self.ret, Some(Return::Kernel | Return::KernelOnGo { .. }))
    }
}

/// How a `uretprobe` catches the return of its function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Return {
    /// The kernel's return probe: at the function's entry it replaces the
    /// return address on the stack with a trampoline of its own.
    Kernel,
    /// A plain uprobe on one of the function's return instructions (one
    /// site per instruction): a Go function's, whose stack Go's runtime may
    /// move or copy, which it cannot do past a replaced return address.
    Instruction,
    /// A Go function whose return instructions could not be found: only
    /// the kernel's return probe, which can crash the traced program.
    KernelOnGo {
        why: String,
        /// The function was matched by a wildcard (not named).
        wildcard: bool,
    },
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
