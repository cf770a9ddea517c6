//! The run of a script or one-liner: load the object, run BEGIN, attach,
//! stream records from the ring buffer to the output until exit(), a signal,
//! the child's or the `-p` process's exit, or a failed write ends it, then
//! detach, run END, drain and print the maps.

use super::attach::{self, MissingRules};
use super::bss::Bss;
use super::child::Child;
use super::events::{self, State};
use super::keeper::Keeper;
use super::object::{LoadRequest, LoadValues, Loaded};
use super::ring::Ring;
use super::{clock, signals, Failure};
use crate::codegen::compile::Compiled;
use crate::diagnostic::{report, Diagnostic, Source};
use crate::options::{exit, Buffering, Format, Options};
use crate::output::sink::{self, Guarded, WriteStatus};
use crate::output::{JsonOutput, NoWarnings, Output, TextOutput};
use crate::probe::ProbeSpec;
use crate::sema::manifest::AttachInfo;
use crate::sema::{Checked, ProgKind};
use std::cell::RefCell;
use std::io::Write;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long one ring buffer poll may block: bounds the reaction time to
/// signals, the child's exit and the lost-records check.
const POLL: Duration = Duration::from_millis(100);

/// Bytes of output gathered before a write to a file or a pipe (1 MiB: a
/// write per 25,000 lines of a short printf).
const OUTPUT_BUFFER: usize = 1 << 20;

/// Runs the compiled program; returns the exit code.
pub fn run(source: &Source, checked: &Checked, compiled: &Compiled, opts: &Options) -> i32 {
    match run_checked(source, checked, compiled, opts) {
        Ok(code) => code,
        Err(f) => report(source, &[f.diagnostic], f.code),
    }
}

fn run_checked(source: &Source, checked: &Checked, compiled: &Compiled, opts: &Options) -> Result<i32, Failure> {
    let manifest = &checked.manifest;
    super::decode::set_trunc_trailer(&manifest.config.str_trunc_trailer);
    let probes = manifest.probe_count();
    if probes as u64 > manifest.config.max_probes {
        let message = too_many_probes(probes, manifest.config.max_probes);
        return Err(Failure { diagnostic: Diagnostic::error_nowhere(message), code: exit::LOAD });
    }
    // The child is forked first (stopped) so that `cpid` is known at load time.
    let mut child = opts.command.as_deref().map(Child::spawn).transpose().map_err(|e| usage(e.to_string()))?;
    // Forked before anything is loaded, and after the child (which must not
    // hold the keeper's socket); without one, rtrace releases uprobes itself.
    let keeper = if opts.dry_run { None } else { Keeper::start().ok().map(Rc::new) };
    // Bound before loading: a busy port stops rtrace before it traces, and
    // scrapes that come while the program loads wait in the socket's queue.
    let listener = match (&opts.metrics, opts.dry_run) {
        (Some(addr), false) => Some(super::metrics::Listener::bind(addr).map_err(|e| usage(e.to_string()))?),
        _ => None,
    };
    let values = LoadValues { start_ns: clock::boot_ns(), cpid: child.as_ref().map(|c| c.pid) };
    let request = LoadRequest { verbose: opts.verbose, ..Default::default() };
    let object = Loaded::load(checked, compiled, values, request)?;
    if opts.dry_run {
        return Ok(exit::OK);
    }
    let (out, written, destination) = make_output(opts).map_err(|e| usage(e.to_string()))?;
    // Created now, so that a path that cannot be written stops rtrace before it traces.
    let flamegraph = opts
        .flamegraph
        .as_ref()
        .map(|p| std::fs::File::create(p).map(|f| (p, f)).map_err(|e| OutputError::File(p.clone(), e)))
        .transpose()
        .map_err(|e| usage(e.to_string()))?;
    super::stacks::install(&manifest.stacks, |name| object.map(name));
    // The files traced, and the command's: a process of theirs that exits
    // before its mappings are read is still named (when not PIE).
    let command_file = opts
        .command
        .as_deref()
        .and_then(|c| c.split_whitespace().next())
        .and_then(|p| crate::system::binary::locate(p).ok());
    crate::system::symbolize::traced_files(
        manifest
            .attach
            .iter()
            .filter_map(|a| match &a.resolved.detail {
                crate::probe::Detail::Uprobe(site) => Some(site.path.clone()),
                crate::probe::Detail::Usdt(site) => Some(site.path.clone()),
                _ => None,
            })
            .chain(command_file),
    );
    crate::system::symbolize::configure(crate::system::symbolize::SymbolOptions {
        debug_info: manifest.config.show_debug_info,
        demangle: manifest.config.cpp_demangle,
    });
    let mut state =
        State::new(manifest.clone(), (out, written), object.user_maps(manifest), object.map(".bss").map(Bss::new));
    // Where each helper call `-k`/`-kk` checks is: (helper, line, column).
    state.helper_sites = compiled
        .helper_sites
        .iter()
        .map(|site| {
            let (line, col) = source.line_col(site.span.start);
            (site.kind, line, col)
        })
        .collect();
    state.source_name = source.name.clone();
    state.message_places = super::places::message_places(manifest, source);
    let state = RefCell::new(state);
    // Scrapes are answered from here on, on threads of their own.
    let exporter = listener.map(|l| {
        let maps = super::metrics::Maps { user: object.user_maps(manifest), bss: object.map(".bss") };
        let max = opts.metrics_max_series.unwrap_or(super::metrics::DEFAULT_MAX_SERIES);
        l.serve(source, checked, maps, max)
    });
    let events = object.map(crate::contract::EVENTS_MAP).ok_or_else(|| internal("the object has no ring buffer"))?;
    let ring = events::reader(&events, |data| state.borrow_mut().record(data))
        .map_err(|e| internal(&format!("cannot read the ring buffer: {}", e)))?;
    signals::install();

    object.run(checked, ProgKind::Begin);
    let rules = MissingRules::default();
    let mut attached = object
        .attach(checked, &manifest.attach, opts.pid, keeper.clone(), rules)
        .map_err(|e| Failure { diagnostic: Diagnostic::error_nowhere(e.to_string()), code: exit::LOAD })?;
    report(source, &attach::skipped_warnings(checked, &manifest.attach, &attached, rules), 0);
    if opts.verbose {
        let skipped =
            |a: &&AttachInfo| attached.skipped.iter().any(|s| s.program == a.program && s.name == a.resolved.name);
        for line in manifest.attach.iter().filter(|a| !skipped(a)).filter_map(|a| attach::mechanism(&a.resolved)) {
            eprintln!("attached {}", line);
        }
        for line in &attached.multi_links {
            eprintln!("attached {}", line);
        }
    }
    if let Some(e) = &exporter {
        e.set_attached(probes);
    }
    // Interrupted, the `-c` command never starts (it is not traced whole).
    if let Some(c) = child.as_mut().filter(|_| !attached.interrupted) {
        c.start();
    }
    // Once every probe is attached, as bpftrace v0.26 says it.
    if !opts.quiet && !attached.interrupted {
        state.borrow_mut().out.attached_probes(probes).ok();
    }
    if std::env::var_os("__BPFTRACE_NOTIFY_PROBES_ATTACHED").is_some() && !attached.interrupted {
        notify_attached(&state);
    }

    // Nothing but begin and end: the program has run once it began (v0.26).
    // Iterators have run once attached (bpftrace's iter probes end the run too).
    let only_begin_end = manifest
        .attach
        .iter()
        .all(|a| matches!(a.resolved.spec, ProbeSpec::Begin | ProbeSpec::End | ProbeSpec::Iter { .. }));
    // SIGINT or SIGTERM while attaching: detach what is attached, and end.
    if !only_begin_end && !attached.interrupted {
        // SIGUSR1 runs the self:signal probes where there are any, and
        // prints the maps otherwise (bpftrace 0.17's behaviour).
        let has_signal_probes = checked.programs.iter().any(|p| p.kind == ProgKind::Signal);
        let on_usr1 = || object.run(checked, ProgKind::Signal);
        watch(&state, &ring, child.as_mut(), opts, has_signal_probes.then_some(&on_usr1 as &dyn Fn()));
    }
    attached.detach();
    events::drain_after_exit(&state, &ring);
    object.run(checked, ProgKind::End);
    ring.consume();
    let maps = state.borrow_mut().print_at_exit();
    // The last scrapes see END's updates; then the server stops.
    drop(exporter);
    if let Some((path, file)) = flamegraph {
        write_flame_graph(path, file, &maps, &source.name);
    }
    let failed = state.borrow().output_failed();
    match failed {
        // The reader has seen enough (`rtrace ... | head`): quietly, as grep.
        Some(e) if e.is_closed_pipe() => Ok(exit::OK),
        Some(e) => Err(Failure {
            diagnostic: Diagnostic::error_nowhere(format!(
                "cannot write to {}: {}: tracing stopped",
                destination,
                e.reason()
            )),
            code: exit::RUNTIME,
        }),
        // `exit(code)` (bpftrace v0.26).
        None => Ok(state.borrow().exit_code.unwrap_or(exit::OK)),
    }
}

/// `__BPFTRACE_NOTIFY_PROBES_ATTACHED` on stdout (even with `-o`), after
/// what the output holds, as bpftrace v0.26 prints it for its test runner.
fn notify_attached(state: &RefCell<State>) {
    state.borrow_mut().out.flush().ok();
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "__BPFTRACE_NOTIFY_PROBES_ATTACHED");
    let _ = stdout.flush();
}

/// Reads records until exit(), a signal, the `-c` child's or the `-p`
/// process's end; reports lost records and full maps as it goes.
fn watch(
    state: &RefCell<State>,
    ring: &Ring<'_>,
    mut child: Option<&mut Child>,
    opts: &Options,
    signal_probes: Option<&dyn Fn()>,
) {
    let mut last_check = Instant::now();
    let mut busy = false;
    loop {
        // Programs wake the reader only for a batch, or once a jiffy
        // (`contract::WAKEUP_BATCH_DIVISOR`): while records come, it reads
        // every interval without being woken (records sent without a
        // wakeup, a process's later new stacks, are read then too). A
        // negative callback result (exit()) ends the poll early; it is not an error.
        let timeout = if busy { crate::contract::READ_INTERVAL } else { POLL };
        busy = ring.poll(timeout) != 0;
        let mut st = state.borrow_mut();
        // A failed write (`| head -1`, a full disk) ends the session as Ctrl-C does.
        if st.exit_called() || signals::stop_requested() || st.output_failed().is_some() {
            break;
        }
        if signals::take_print_request() {
            match signal_probes {
                Some(run) => {
                    // The probes write records: the reader must be free.
                    drop(st);
                    run();
                    st = state.borrow_mut();
                }
                None => {
                    let maps = st.read_maps();
                    st.out.maps_at_exit(&maps).ok();
                }
            }
        }
        if child.as_mut().is_some_and(|c| c.try_wait().is_some()) {
            break;
        }
        if opts.pid.is_some_and(|p| !crate::system::process::alive(p)) {
            break;
        }
        if last_check.elapsed() > Duration::from_secs(1) {
            st.check_counters();
            last_check = Instant::now();
        }
        if opts.buffering != Some(Buffering::Full) {
            st.out.flush().ok();
        }
    }
}

/// `--flamegraph FILE`: the stack-keyed maps as an SVG; a warning when
/// there were none (the file is then left empty) or it cannot be written.
fn write_flame_graph(
    path: &std::path::Path,
    file: std::fs::File,
    maps: &[(String, Vec<crate::output::value::MapEntry>, bool)],
    source: &str,
) {
    let title = format!("rtrace {}", source);
    match crate::output::folded::flame_graph(maps, &title, std::io::BufWriter::new(file)) {
        Ok(true) => {}
        Ok(false) => sink::to_stderr(&format!(
            "WARNING: no map is keyed by a stack (@[ustack] = count()): the flame graph `{}` is empty",
            path.display()
        )),
        Err(e) => sink::to_stderr(&format!("ERROR: cannot write the flame graph `{}`: {}", path.display(), e)),
    }
}

/// bpftrace's refusal of more probes than `max_probes`.
pub fn too_many_probes(probes: usize, max: u64) -> String {
    format!(
        "Can't attach to {} probes because it exceeds the current limit of {} probes.\n\
         You can increase the limit through the BPFTRACE_MAX_PROBES environment variable \
         or `config = {{ max_probes = N }}`.",
        probes, max
    )
}

fn usage(message: String) -> Failure {
    Failure { diagnostic: Diagnostic::error_nowhere(message), code: exit::USAGE }
}

fn internal(msg: &str) -> Failure {
    Failure {
        diagnostic: Diagnostic::error_nowhere(format!("internal error, please report: {}", msg)),
        code: exit::RUNTIME,
    }
}

#[derive(Debug, thiserror::Error)]
enum OutputError {
    #[error("cannot write `{0}`: {1}")]
    File(std::path::PathBuf, std::io::Error),
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
}

/// The output `opts` asks for, the status of its writes, and its name for
/// messages (`stdout`, `'out.txt'`).
fn make_output(opts: &Options) -> Result<(Box<dyn Output>, WriteStatus, String), OutputError> {
    let (file, name) = match &opts.output {
        Some(path) => (
            std::fs::File::create(path).map_err(|e| OutputError::File(path.clone(), e))?,
            format!("'{}'", path.display()),
        ),
        // Our own handle on stdout, so that rtrace alone decides its buffering.
        None => (
            std::io::stdout().as_fd().try_clone_to_owned().map(std::fs::File::from).map_err(OutputError::Stdout)?,
            "stdout".to_string(),
        ),
    };
    // A terminal is written line by line; a file or a pipe in big chunks
    // (`watch` flushes after each batch of records, so nothing waits longer
    // than a poll): a write per line cost a system call per event, and
    // under a flood the consumer fell behind the kernel and lost records.
    let terminal = std::io::IsTerminal::is_terminal(&file);
    // Under the buffer, so that the OS's own error is what is recorded.
    let (file, written) = Guarded::new(file);
    let sink: Box<dyn Write> = match opts.buffering {
        Some(Buffering::Line) => Box::new(std::io::LineWriter::new(file)),
        None if terminal => Box::new(std::io::LineWriter::new(file)),
        Some(Buffering::Full) | None => Box::new(std::io::BufWriter::with_capacity(OUTPUT_BUFFER, file)),
        Some(Buffering::None) => Box::new(file),
    };
    let out: Box<dyn Output> = match opts.format {
        Format::Text => Box::new(TextOutput::new(sink)),
        Format::Json => Box::new(JsonOutput::new(sink)),
        Format::Folded => Box::new(crate::output::FoldedOutput::new(sink)),
    };
    let out = if opts.no_warnings { Box::new(NoWarnings(out)) } else { out };
    Ok((out, written, name))
}
