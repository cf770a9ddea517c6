//! What a run was asked to do (`Options`, from the command line) and the
//! exit codes it ends with. Plain values, shared by the driver, the runtime
//! and the REPL.

use std::path::PathBuf;

/// Exit codes, as docs/reference.md lists them.
pub mod exit {
    pub const OK: i32 = 0;
    /// Syntax, type or name errors: anything found before loading.
    pub const SCRIPT: i32 = 1;
    /// The kernel refused to load or attach.
    pub const LOAD: i32 = 2;
    /// Failure while running.
    pub const RUNTIME: i32 = 3;
    pub const USAGE: i32 = 64;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// The parsed syntax tree.
    Ast,
    /// The generated eBPF, with source lines.
    Asm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
    /// Text, with stack-keyed maps as folded stacks (`a;b;c 12`).
    Folded,
}

/// How output is buffered (`-B`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffering {
    /// Written at each newline.
    Line,
    /// Written when the buffer fills, and at exit.
    Full,
    /// Written at once.
    None,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub params: Vec<String>,
    /// Named options after `--` (`--name` or `--name=value`, without the
    /// dashes), for `getopt()`.
    pub named: Vec<String>,
    pub quiet: bool,
    /// `--no-warnings`: no warnings at compile time or at run time.
    pub no_warnings: bool,
    /// `--probe-filter REGEX`: only the probes whose name matches (begin and
    /// end always).
    pub probe_filter: Option<regex_lite::Regex>,
    pub verbose: bool,
    pub dry_run: bool,
    pub emit: Option<Emit>,
    /// `-c CMD`
    pub command: Option<String>,
    /// `-p PID`
    pub pid: Option<u32>,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub strlen: Option<u32>,
    pub max_map_keys: Option<u32>,
    /// Ring buffer size in 4 KiB pages.
    pub ringbuf_pages: Option<u32>,
    /// `--unsafe`: allow `system()`, and kernel uretprobes on Go functions
    /// whose return instructions rtrace cannot find.
    pub unsafe_calls: bool,
    /// `--include HEADER`: headers whose integer `#define`s the program sees.
    pub includes: Vec<String>,
    /// `-k` (1): report failed map updates; `-kk` (2): failed reads too.
    pub helper_checks: u8,
    /// `-B`; `None`: line-buffered to a terminal or pipe, fully to a file.
    pub buffering: Option<Buffering>,
    /// `BPFTRACE_*` environment variables: config settings, which win over
    /// the script's config block.
    pub config_env: Vec<(String, String)>,
    /// `--flamegraph FILE`: stack-keyed maps drawn as an SVG flame graph at exit.
    pub flamegraph: Option<PathBuf>,
    /// `--metrics [ADDR]`: serve the maps as Prometheus metrics there.
    pub metrics: Option<String>,
    /// Keys exported per map (`RTRACE_METRICS_MAX_SERIES`).
    pub metrics_max_series: Option<u32>,
}
