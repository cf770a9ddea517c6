//! The run of a script or one-liner: load the object, run BEGIN, attach,
//! stream records from the ring buffer to the output until exit(), a signal,
//! the child's or the `-p` process's exit, or a failed write ends it, then
//! detach, run END, drain and print the maps.

use super::bss::Bss;
use super::child::Child;
use super::events::{self, State};
use super::keeper::Keeper;
use super::object::{LoadRequest, LoadValues, Loaded};
use super::{clock, signals, Failure};
use crate::codegen::compile::Compiled;
use crate::diagnostic::{report, Diagnostic, Source};
use crate::options::{exit, Buffering, Format, Options};
use crate::output::sink::{Guarded, WriteStatus};
use crate::output::{JsonOutput, NoWarnings, Output, TextOutput};
use crate::probe::ProbeSpec;
use crate::sema::{Checked, ProgKind};
use libbpf_rs::RingBuffer;
use std::cell::RefCell;
use std::io::Write;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long one ring buffer poll may block: bounds the reaction time to
/// signals, the child's exit and the lost-records check.
const POLL: Duration = Duration::from_millis(100);

/// Runs the compiled program; returns the exit code.
pub fn run(source: &Source, checked: &Checked, compiled: &Compiled, opts: &Options) -> i32 {
    match run_checked(source, checked, compiled, opts) {
        Ok(code) => code,
        Err(f) => report(source, &[f.diagnostic], f.code),
    }
}

fn run_checked(source: &Source, checked: &Checked, compiled: &Compiled, opts: &Options) -> Result<i32, Failure> {
    let manifest = &checked.manifest;
    // The child is forked first (stopped) so that `cpid` is known at load time.
    let mut child = opts.command.as_deref().map(Child::spawn).transpose().map_err(|e| usage(e.to_string()))?;
    // Forked before anything is loaded, and after the child (which must not
    // hold the keeper's socket); without one, rtrace releases uprobes itself.
    let keeper = if opts.dry_run { None } else { Keeper::start().ok().map(Rc::new) };
    let values = LoadValues { start_ns: clock::monotonic_ns(), cpid: child.as_ref().map(|c| c.pid) };
    let request = LoadRequest { verbose: opts.verbose, ..Default::default() };
    let object = Loaded::load(checked, compiled, values, request)?;
    if opts.dry_run {
        return Ok(exit::OK);
    }
    let (out, written, destination) = make_output(opts).map_err(|e| usage(e.to_string()))?;
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
    let state = RefCell::new(state);
    let events = object.map(crate::contract::EVENTS_MAP).ok_or_else(|| internal("the object has no ring buffer"))?;
    let ring = events::reader(&events, |data| state.borrow_mut().record(data))
        .map_err(|e| internal(&format!("cannot read the ring buffer: {}", e)))?;
    signals::install();

    object.run(checked, ProgKind::Begin);
    let mut attached = object
        .attach(checked, &manifest.attach, opts.pid, keeper.clone())
        .map_err(|e| Failure { diagnostic: Diagnostic::error_nowhere(e.to_string()), code: exit::LOAD })?;
    if opts.verbose {
        for line in manifest.attach.iter().filter_map(|a| super::attach::mechanism(&a.resolved)) {
            eprintln!("attached {}", line);
        }
    }
    if let Some(c) = child.as_mut() {
        c.start();
    }
    // Once every probe is attached, as bpftrace v0.26 says it.
    if !opts.quiet {
        state.borrow_mut().out.attached_probes(manifest.probe_count()).ok();
    }
    if std::env::var_os("__BPFTRACE_NOTIFY_PROBES_ATTACHED").is_some() {
        notify_attached(&state);
    }

    // Nothing but begin and end: the program has run once it began (v0.26).
    let only_begin_end = manifest.attach.iter().all(|a| matches!(a.resolved.spec, ProbeSpec::Begin | ProbeSpec::End));
    if !only_begin_end {
        // SIGUSR1 runs the self:signal probes where there are any, and
        // prints the maps otherwise (bpftrace 0.17's behaviour).
        let has_signal_probes = checked.programs.iter().any(|p| p.kind == ProgKind::Signal);
        let on_usr1 = || object.run(checked, ProgKind::Signal);
        watch(&state, &ring, child.as_mut(), opts, has_signal_probes.then_some(&on_usr1 as &dyn Fn()));
    }
    attached.detach();
    events::drain_after_exit(&state, &ring);
    object.run(checked, ProgKind::End);
    let _ = ring.consume();
    state.borrow_mut().print_at_exit();
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
        None => Ok(exit::OK),
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
    ring: &RingBuffer<'_>,
    mut child: Option<&mut Child>,
    opts: &Options,
    signal_probes: Option<&dyn Fn()>,
) {
    let mut last_check = Instant::now();
    loop {
        // A negative callback result (exit()) ends the poll early; it is not an error.
        let _ = ring.poll(POLL);
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
    // Under the buffer, so that the OS's own error is what is recorded.
    let (file, written) = Guarded::new(file);
    let sink: Box<dyn Write> = match opts.buffering.unwrap_or(Buffering::Line) {
        Buffering::Line => Box::new(std::io::LineWriter::new(file)),
        Buffering::Full => Box::new(std::io::BufWriter::with_capacity(1 << 16, file)),
        Buffering::None => Box::new(file),
    };
    let out: Box<dyn Output> = match opts.format {
        Format::Text => Box::new(TextOutput::new(sink)),
        Format::Json => Box::new(JsonOutput::new(sink)),
    };
    let out = if opts.no_warnings { Box::new(NoWarnings(out)) } else { out };
    Ok((out, written, name))
}
