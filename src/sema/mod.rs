//! AST + resolved attach points → checked program + Manifest.
//!
//! Types are inferred the way bpftrace does it: the checker walks every probe
//! several times, learning map and variable types from assignments wherever
//! they appear, until nothing new is learned; the last walk reports errors
//! and builds the typed program.

mod asserts;
mod blocks;
mod builtins;
mod calls;
mod check;
mod expr;
mod functions;
mod getopt;
mod loops;
pub mod manifest;
mod map_calls;
mod map_decls;
mod records;
mod scope;
mod stacks;
pub mod typed;
mod variables;

use crate::diagnostic::Diagnostic;
use crate::parser::ast;
use crate::probe::arch::Arch;
use crate::probe::Resolved;
use crate::span::Span;
use crate::system::{Facts, NoFacts};
pub use check::missing_probes;
pub use manifest::Manifest;
use std::rc::Rc;
use typed::{TStmt, VarInfo};

/// What the checker needs to know about the world outside the program.
#[derive(Clone, Debug)]
pub struct Env {
    /// Positional parameters `$1`, `$2`, ...
    pub params: Vec<String>,
    /// Named options given after `--` (`name` or `name=value`), for `getopt()`.
    pub named: Vec<String>,
    /// For each probe of the program, its concrete attach points.
    pub resolved: Vec<Vec<Resolved>>,
    pub arch: Arch,
    /// Default string size in bytes (including the NUL).
    pub strlen: u32,
    pub max_map_keys: u32,
    /// `system()`, and kernel uretprobes on Go functions whose return
    /// instructions were not found, are allowed (`--unsafe`).
    pub unsafe_calls: bool,
    /// A command runs under rtrace (`-c`): `cpid` has a value.
    pub child: bool,
    /// `#define NAME value` of the included headers.
    pub header_defines: std::collections::HashMap<String, String>,
    /// Config settings from the environment (`BPFTRACE_MAX_STRLEN`, ...):
    /// applied after the script's, so they win.
    pub config_env: Vec<(String, String)>,
    /// The system's answers: structs and parameters from DWARF and BTF,
    /// symbol addresses (`kaddr`, `uaddr`).
    pub facts: FactsRef,
}

/// The `Facts` a check asks (shared by the clones of its `Env`).
#[derive(Clone)]
pub struct FactsRef(pub Rc<dyn Facts>);

impl std::fmt::Debug for FactsRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Facts")
    }
}

impl Env {
    pub fn new(params: Vec<String>, resolved: Vec<Vec<Resolved>>) -> Env {
        Env {
            params,
            named: Vec::new(),
            resolved,
            arch: Arch::host(),
            strlen: 64,
            max_map_keys: 4096,
            unsafe_calls: false,
            child: false,
            header_defines: Default::default(),
            config_env: Vec::new(),
            facts: FactsRef(Rc::new(NoFacts)),
        }
    }
}

/// The kind of eBPF program a probe compiles to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgKind {
    Begin,
    End,
    /// `self:signal:SIGUSR1`: run on demand, as BEGIN is.
    Signal,
    /// `iter:KIND`: a BPF iterator over kernel objects of KIND.
    Iter {
        kind: String,
    },
    Tracepoint,
    RawTracepoint,
    Uprobe,
    Uretprobe,
    /// A `uretprobe` made of uprobes on the function's return instructions
    /// (a Go function's): a uretprobe to the language (`retval`, `func`),
    /// a uprobe to the kernel.
    ReturnUprobe,
    Kprobe,
    Kretprobe,
    Kfunc {
        func: String,
    },
    Kretfunc {
        func: String,
    },
    /// interval, profile, software and hardware probes.
    PerfEvent,
}

impl ProgKind {
    /// The libbpf section name that gives the program its type.
    pub fn section(&self) -> String {
        match self {
            ProgKind::Begin | ProgKind::End | ProgKind::Signal | ProgKind::RawTracepoint => "raw_tp".into(),
            ProgKind::Tracepoint => "tracepoint".into(),
            ProgKind::Uprobe | ProgKind::ReturnUprobe => "uprobe".into(),
            ProgKind::Uretprobe => "uretprobe".into(),
            ProgKind::Kprobe => "kprobe".into(),
            ProgKind::Kretprobe => "kretprobe".into(),
            ProgKind::Kfunc { func } => format!("fentry/{}", func),
            ProgKind::Kretfunc { func } => format!("fexit/{}", func),
            ProgKind::PerfEvent => "perf_event".into(),
            ProgKind::Iter { kind } => format!("iter/{}", kind),
        }
    }

    /// Whether the context is the probed function's arguments as an array
    /// of u64s (kfunc, kretfunc and raw tracepoints), which `args` names.
    pub fn has_arg_array(&self) -> bool {
        matches!(self, ProgKind::Kfunc { .. } | ProgKind::Kretfunc { .. } | ProgKind::RawTracepoint)
    }

    /// Whether `argN`, `reg()` and friends read a `struct pt_regs` context.
    pub fn has_pt_regs(&self) -> bool {
        matches!(
            self,
            ProgKind::Uprobe
                | ProgKind::Uretprobe
                | ProgKind::ReturnUprobe
                | ProgKind::Kprobe
                | ProgKind::Kretprobe
                | ProgKind::PerfEvent
        )
    }

    /// Whether the kernel hands programs of this kind the attach cookie of
    /// the attach point that fired (`bpf_get_attach_cookie`: kprobes,
    /// uprobes, their multi links, and tracepoints, since Linux 5.15), so
    /// that one program can serve attach points with different names.
    pub fn has_attach_cookie(&self) -> bool {
        matches!(
            self,
            ProgKind::Uprobe
                | ProgKind::Uretprobe
                | ProgKind::ReturnUprobe
                | ProgKind::Kprobe
                | ProgKind::Kretprobe
                | ProgKind::Tracepoint
        )
    }

    pub fn is_user(&self) -> bool {
        matches!(self, ProgKind::Uprobe | ProgKind::Uretprobe | ProgKind::ReturnUprobe)
    }

    /// Whether the probe fires as its function returns (`retval`).
    pub fn at_return(&self) -> bool {
        matches!(self, ProgKind::Uretprobe | ProgKind::ReturnUprobe | ProgKind::Kretprobe)
    }
}

/// One eBPF program to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramDef {
    /// A C identifier, unique in the object.
    pub name: String,
    pub kind: ProgKind,
    /// Predicate and body: a false predicate is an early `return`.
    pub body: Vec<TStmt>,
    pub vars: Vec<VarInfo>,
    /// The probe's span in the source.
    pub span: Span,
    /// Runs in the context of some process, so `-p` can filter it (not
    /// `interval`, which fires in whatever runs on its CPU).
    pub in_process: bool,
}

#[derive(Clone, Debug)]
pub struct Checked {
    pub programs: Vec<ProgramDef>,
    pub manifest: Manifest,
    pub warnings: Vec<Diagnostic>,
}

/// Checks `program`; on success returns the typed programs and the Manifest
/// (and any warnings), otherwise every error found (warnings included).
pub fn check(program: &ast::Program, env: &Env) -> Result<Checked, Vec<Diagnostic>> {
    // Recursive: as deep as the program nests (at most `MAX_NESTING`).
    crate::nesting::with_stack(|| check::run(program, env))
}

/// The language's builtin variables (for completion).
pub fn builtin_names() -> &'static [&'static str] {
    expr::BUILTINS
}

/// Whether the language defines `name` (a builtin or a function): a macro
/// use whose arguments fit no macro of that name is this instead.
pub fn is_builtin(name: &str) -> bool {
    let name = name.strip_prefix("__builtin_").unwrap_or(name);
    expr::BUILTINS.contains(&name) || calls::FUNCTIONS.contains(&name)
}

/// The language's functions (for completion).
pub fn function_names() -> &'static [&'static str] {
    calls::FUNCTIONS
}
