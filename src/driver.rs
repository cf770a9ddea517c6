//! The pipeline, top to bottom: parse → resolve attach points → check →
//! compile (eBPF, ELF) → load, attach and run. Each stage's diagnostics stop
//! the pipeline with the exit code of its kind.

use crate::codegen::compile::{compile, CompileOptions, Compiled};
use crate::codegen::lower::LowerOptions;
use crate::diagnostic::{render_all, Diagnostic, Source};
use crate::options::{exit, Emit, Options};
use crate::parser::{self, ast};
use crate::probe::Resolved;
use crate::runtime;
use crate::sema::{self, Checked, Env, FactsRef};
use crate::system::{headers, Machine};
use std::io::Write;
use std::rc::Rc;

/// Runs a program; returns the process exit code.
pub fn run(source: &Source, opts: &Options) -> i32 {
    // Said first: without the privileges, what fails later says less.
    if opts.emit.is_none() {
        if let Err(e) = crate::system::privilege::check() {
            return crate::diagnostic::report(source, &[Diagnostic::error_nowhere(e.to_string())], exit::LOAD);
        }
    }
    let machine = Rc::new(Machine::new(opts.pid));
    match front(source, opts, machine, &mut std::io::stdout().lock(), &mut std::io::stderr().lock()) {
        Ok((checked, compiled)) => runtime::script::run(source, &checked, &compiled, opts),
        Err(code) => code,
    }
}

/// The compiler's part of a run: everything rtrace prints before it loads
/// anything. The AST or the assembly (`--emit`) go to `out`, diagnostics
/// and warnings to `err` (write errors are ignored: a closed pipe is not
/// the program's fault). `Ok` holds the program to load; `Err` the exit
/// code the run ends with.
pub fn front(
    source: &Source,
    opts: &Options,
    machine: Rc<Machine>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(Checked, Compiled), i32> {
    let mut stop = |diags: &[Diagnostic], code: i32| {
        let _ = err.write_all(render_all(diags, source).as_bytes());
        Err(code)
    };
    let mut program = match parse(&source.text, &machine) {
        Ok(p) => p,
        Err(diags) => return stop(&diags, exit::SCRIPT),
    };
    if let Some(filter) = &opts.probe_filter {
        if !filter_probes(&mut program, filter) {
            return stop(&[Diagnostic::error_nowhere("No probes to attach")], exit::SCRIPT);
        }
    }
    if program.probes.is_empty() && opts.emit.is_none() {
        let d = Diagnostic::error_nowhere("the program has no probes: nothing to attach")
            .with_help("a probe is an attach point and a block, e.g. `BEGIN { printf(\"hello\\n\"); }`");
        return stop(&[d], exit::SCRIPT);
    }
    if opts.emit == Some(Emit::Ast) {
        let _ = out.write_all(parser::dump::dump(&program).as_bytes());
        return Err(exit::OK);
    }
    let (checked, compiled) = match build(&program, source, opts, machine, Increment::default()) {
        Ok(b) => (b.checked, b.compiled),
        Err(diags) => return stop(&diags, exit::SCRIPT),
    };
    if !opts.no_warnings {
        let _ = err.write_all(render_all(&checked.warnings, source).as_bytes());
    }
    if opts.emit == Some(Emit::Asm) {
        let _ = out.write_all(crate::codegen::asm::print(&compiled, source).as_bytes());
        return Err(exit::OK);
    }
    Ok((checked, compiled))
}

/// `--probe-filter`: keeps the attach points whose name, as written or with
/// the provider's full name (`interval:ms:200` for `i:ms:200`), matches;
/// begin and end always stay. False when only those would be left of a
/// program that had others.
fn filter_probes(program: &mut ast::Program, filter: &regex_lite::Regex) -> bool {
    let special = |ap: &ast::AttachPoint| matches!(ap.provider.as_str(), "begin" | "end" | "BEGIN" | "END");
    let had_others = program.probes.iter().flat_map(|p| &p.attach_points).any(|ap| !special(ap));
    for probe in &mut program.probes {
        probe.attach_points.retain(|ap| {
            let full = crate::probe::spec::canonical_provider(&ap.provider)
                .map(|p| std::iter::once(p.to_string()).chain(ap.parts.iter().cloned()).collect::<Vec<_>>().join(":"));
            special(ap) || filter.is_match(&ap.raw) || full.is_some_and(|f| filter.is_match(&f))
        });
    }
    program.probes.retain(|p| !p.attach_points.is_empty());
    !had_others || program.probes.iter().flat_map(|p| &p.attach_points).any(|ap| !special(ap))
}

/// Source text → the AST: `#if` groups evaluated, then parsed, then the
/// macros expanded.
pub fn parse(text: &str, machine: &Machine) -> Result<ast::Program, Vec<Diagnostic>> {
    let text = parser::preprocess::preprocess(text, &predefined(machine))?;
    let mut program = parser::parse(&text)?;
    parser::macros::expand(&mut program, &sema::is_builtin)?;
    Ok(program)
}

/// The macros `#if` sees defined before the script's own, as bpftrace
/// defines them for its C preprocessor.
fn predefined(machine: &Machine) -> std::collections::HashMap<String, String> {
    let mut defined: std::collections::HashMap<String, String> =
        [("__linux__", "1"), ("__BPF_TRACING__", "1")].map(|(k, v)| (k.to_string(), v.to_string())).into();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "__x86_64__",
        "aarch64" => "__aarch64__",
        other => other,
    };
    defined.insert(arch.to_string(), "1".to_string());
    if machine.has_btf() {
        defined.insert("BPFTRACE_HAVE_BTF".to_string(), "1".to_string());
    }
    defined
}

/// What the REPL adds to a build: its next input extends the program of
/// the inputs before it.
#[derive(Clone, Copy, Default)]
pub struct Increment<'a> {
    /// Fixes the `.bss` layout (`LowerOptions::map_slots`).
    pub map_slots: Option<usize>,
    /// The attach points of the first probes, resolved before.
    pub known: &'a [Vec<Resolved>],
}

/// A parsed program, checked and compiled for `opts` against `machine` (its
/// warnings are in `Checked::warnings`).
pub fn build(
    program: &ast::Program,
    source: &Source,
    opts: &Options,
    machine: Rc<Machine>,
    increment: Increment<'_>,
) -> Result<Built, Vec<Diagnostic>> {
    let header_defines = headers::defines(program, &opts.includes)?;
    let missing = sema::missing_probes(program, &opts.config_env);
    let resolution = machine.resolve(program, &opts.params, increment.known, missing)?;
    // Probes whose attach points all name nothing here (`missing_probes`
    // says warn or ignore) are left out of the program.
    let kept;
    let (program, resolved) = if resolution.removed.is_empty() {
        (program, resolution.points)
    } else {
        let mut p = program.clone();
        let mut points = Vec::new();
        p.probes = Vec::new();
        for (i, (probe, r)) in program.probes.iter().zip(resolution.points).enumerate() {
            if !resolution.removed.contains(&i) {
                p.probes.push(probe.clone());
                points.push(r);
            }
        }
        if p.probes.is_empty() {
            let mut diags = resolution.warnings;
            diags.push(Diagnostic::error_nowhere("No probes to attach"));
            return Err(diags);
        }
        kept = p;
        (&kept, points)
    };
    let mut env = Env::new(opts.params.clone(), resolved);
    env.header_defines = header_defines;
    env.named = opts.named.clone();
    env.facts = FactsRef(machine);
    env.unsafe_calls = opts.unsafe_calls;
    env.child = opts.command.is_some();
    env.config_env = opts.config_env.clone();
    // RTRACE_STRLEN and RTRACE_MAP_KEYS_MAX are environment settings too.
    if let Some(n) = opts.strlen {
        env.config_env.push(("BPFTRACE_MAX_STRLEN".into(), n.to_string()));
    }
    if let Some(n) = opts.max_map_keys {
        env.config_env.push(("BPFTRACE_MAX_MAP_KEYS".into(), n.to_string()));
    }
    let mut checked = sema::check(program, &env)?;
    checked.warnings.splice(0..0, resolution.warnings);
    let resolved = std::mem::take(&mut env.resolved);
    let mut compile_opts = CompileOptions {
        lower: LowerOptions { pid_filter: opts.pid, helper_checks: opts.helper_checks, map_slots: increment.map_slots },
        ..Default::default()
    };
    if let Some(pages) = opts.ringbuf_pages {
        compile_opts.ringbuf_bytes = pages * 4096;
    } else if checked.manifest.config.perf_rb_pages > 0 {
        // A power of two, as the ring buffer must be.
        let pages = checked.manifest.config.perf_rb_pages.clamp(1, 1 << 16).next_power_of_two();
        compile_opts.ringbuf_bytes = pages as u32 * 4096;
    }
    let compiled = compile(&checked, source, &compile_opts)?;
    Ok(Built { checked, compiled, resolved })
}

pub struct Built {
    pub checked: Checked,
    pub compiled: Compiled,
    /// Each probe's attach points.
    pub resolved: Vec<Vec<Resolved>>,
}
