//! The pipeline, top to bottom: parse → resolve attach points → check →
//! compile → ELF → load → attach and run. Each stage's diagnostics stop the
//! pipeline with the exit code of its kind.

use crate::codegen::compile::Compiled;
use crate::codegen::compile::{compile, CompileOptions};
use crate::codegen::lower::LowerOptions;
use crate::diagnostic::{render, render_all, Diagnostic, Source};
use crate::parser::{self, ast};
use crate::runtime;
use crate::sema::{self, Checked, Env};
use std::io::Write;
use std::path::PathBuf;

/// Exit codes (design §8).
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
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub params: Vec<String>,
    pub quiet: bool,
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
    /// `--unsafe`: allow `system()`.
    pub unsafe_calls: bool,
    /// `--include HEADER`: headers whose integer `#define`s the program sees.
    pub includes: Vec<String>,
    /// `-k` (1): report failed map updates; `-kk` (2): failed reads too.
    pub helper_checks: u8,
    /// `-B`; `None`: line-buffered to a terminal or pipe, fully to a file.
    pub buffering: Option<Buffering>,
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

/// Runs a program; returns the process exit code.
pub fn run(source: &Source, opts: &Options) -> i32 {
    let program = match parser::parse(&source.text) {
        Ok(p) => p,
        Err(diags) => return report(source, &diags, exit::SCRIPT),
    };
    if program.probes.is_empty() && opts.emit.is_none() {
        let d = Diagnostic::error_nowhere("the program has no probes: nothing to attach")
            .with_help("a probe is an attach point and a block, e.g. `BEGIN { printf(\"hello\\n\"); }`");
        return report(source, &[d], exit::SCRIPT);
    }
    if opts.emit == Some(Emit::Ast) {
        // A closed pipe (`| head`) is not an error.
        let _ = std::io::stdout().write_all(parser::dump::dump(&program).as_bytes());
        return exit::OK;
    }
    let (checked, compiled) = match build(&program, source, opts, Session::default()) {
        Ok(b) => (b.checked, b.compiled),
        Err(diags) => return report(source, &diags, exit::SCRIPT),
    };
    eprint!("{}", render_all(&checked.warnings, source));
    if opts.emit == Some(Emit::Asm) {
        let _ = std::io::stdout().write_all(crate::codegen::asm::print(&compiled, source).as_bytes());
        return exit::OK;
    }
    runtime::session::run(source, &checked, &compiled, opts)
}

/// What the REPL adds to a build.
#[derive(Clone, Copy, Default)]
pub struct Session<'a> {
    /// Fixes the `.bss` layout (`LowerOptions::map_slots`).
    pub map_slots: Option<usize>,
    /// The attach points of the first probes, resolved before.
    pub known: &'a [Vec<crate::probe::Resolved>],
}

/// A parsed program, checked and compiled for `opts` (its warnings are in
/// `Checked::warnings`).
pub fn build(
    program: &ast::Program,
    source: &Source,
    opts: &Options,
    session: Session<'_>,
) -> Result<Built, Vec<Diagnostic>> {
    let header_defines = runtime::resolve::header_defines(program, &opts.includes)?;
    let resolved = runtime::resolve::resolve_after(program, &opts.params, opts.pid, session.known)?;
    let symbols = runtime::symbols::lookup_addresses(program, &resolved);
    let binaries = resolved.iter().flatten().filter_map(|r| match &r.detail {
        crate::probe::Detail::Uprobe(site) => Some(site.path.clone()),
        crate::probe::Detail::Usdt(site) => Some(site.path.clone()),
        _ => None,
    });
    let mut binaries: Vec<_> = binaries.collect();
    binaries.dedup();
    let types = runtime::system_types::SystemTypeSource::new(binaries);
    let mut env = Env::new(opts.params.clone(), resolved);
    env.symbols = symbols;
    env.header_defines = header_defines;
    env.types = Some(crate::sema::system_types::SystemTypes(std::rc::Rc::new(types)));
    env.unsafe_calls = opts.unsafe_calls;
    env.child = opts.command.is_some();
    if let Some(n) = opts.strlen {
        env.strlen = n;
    }
    if let Some(n) = opts.max_map_keys {
        env.max_map_keys = n;
    }
    let checked = sema::check(program, &env)?;
    let resolved = std::mem::take(&mut env.resolved);
    let mut compile_opts = CompileOptions {
        lower: LowerOptions { pid_filter: opts.pid, helper_checks: opts.helper_checks, map_slots: session.map_slots },
        ..Default::default()
    };
    if let Some(pages) = opts.ringbuf_pages {
        compile_opts.ringbuf_bytes = pages * 4096;
    }
    let compiled = compile(&checked, source, &compile_opts)?;
    Ok(Built { checked, compiled, resolved })
}

pub struct Built {
    pub checked: Checked,
    pub compiled: Compiled,
    /// Each probe's attach points.
    pub resolved: Vec<Vec<crate::probe::Resolved>>,
}

/// Prints diagnostics to stderr and returns `code`.
pub fn report(source: &Source, diags: &[Diagnostic], code: i32) -> i32 {
    let mut err = std::io::stderr().lock();
    for d in diags {
        let _ = err.write_all(render(d, source).as_bytes());
    }
    code
}
