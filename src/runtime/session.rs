//! One tracing session: load the object, run BEGIN, attach, stream records
//! from the ring buffer to the output until exit()/Ctrl-C/the child exits,
//! then detach, run END, drain and print the maps.

use super::attach::{self, Attached};
use super::child::Child;
use super::events::State;
use super::loader::{self, LoadError, LoadOptions};
use super::signals;
use crate::codegen::compile::Compiled;
use crate::codegen::lower::{RODATA_CPID, RODATA_NCPUS, RODATA_SIZE, RODATA_START_NS};
use crate::diagnostic::{Diagnostic, Source};
use crate::driver::{exit, report, Buffering, Format, Options};
use crate::output::{JsonOutput, Output, TextOutput};
use crate::probe::{Detail, ProbeSpec};
use crate::sema::manifest::AttachInfo;
use crate::sema::{Checked, ProgKind};
use libbpf_rs::{MapCore, MapHandle, Object, RingBufferBuilder};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// How long one ring buffer poll may block: bounds the reaction time to
/// signals, the child's exit and the lost-records check.
const POLL: Duration = Duration::from_millis(100);

pub fn run(source: &Source, checked: &Checked, compiled: &Compiled, opts: &Options) -> i32 {
    let manifest = &checked.manifest;
    // The child is forked first (stopped) so that `cpid` is known at load time.
    let mut child = match opts.command.as_deref().map(Child::spawn).transpose() {
        Ok(c) => c,
        Err(e) => return report(source, &[Diagnostic::error_nowhere(e.to_string())], exit::USAGE),
    };
    let rodata = Rodata { start_ns: boot_ns(), cpid: child.as_ref().map(|c| c.pid) };
    let object = match load(checked, compiled, opts.verbose, rodata, LoadOptions::default()) {
        Ok(o) => o,
        Err(e) => return fail(source, e),
    };
    if opts.dry_run {
        return exit::OK;
    }
    let out: Box<dyn Output> = match make_output(opts) {
        Ok(o) => o,
        Err(e) => return report(source, &[Diagnostic::error_nowhere(e)], exit::USAGE),
    };
    // Owned handles (duplicated fds) of the user maps, by MapId: the ring
    // buffer callback prints, clears and zeroes maps through them.
    let handles: Vec<Option<MapHandle>> = (0..manifest.maps.len())
        .map(|i| {
            let name = manifest.maps[i].bpf_name(i);
            object.maps().find(|m| m.name() == name.as_str()).and_then(|m| MapHandle::try_from(&m).ok())
        })
        .collect();
    // libbpf names the `.bss` map "<object>.bss"; its one value is the section
    // holding the counters (`codegen::lower::COUNTER_*`).
    let bss =
        object.maps().find(|m| m.name().to_string_lossy().ends_with(".bss")).and_then(|m| MapHandle::try_from(&m).ok());
    // Where each helper call `-k`/`-kk` checks is: (helper, line, column).
    let sites = compiled
        .helper_sites
        .iter()
        .map(|site| {
            let (line, col) = source.line_col(site.span.start);
            (site.helper.name(), line, col)
        })
        .collect();
    let mut state = State::new(manifest.clone(), out, handles, bss);
    state.helper_sites = sites;
    state.source_name = source.name.clone();
    let state = RefCell::new(state);
    let Some(events) = object.maps().find(|m| m.name() == "events") else {
        return fail(source, internal("the object has no `events` ring buffer"));
    };
    let mut builder = RingBufferBuilder::new();
    if let Err(e) = builder.add(&events, |data| state.borrow_mut().record(data)) {
        return fail(source, internal(&format!("cannot read the ring buffer: {}", e)));
    }
    let ring = match builder.build() {
        Ok(r) => r,
        Err(e) => return fail(source, internal(&format!("cannot read the ring buffer: {}", e))),
    };
    signals::install();

    let attach_count = manifest.attach.len();
    if !opts.quiet {
        state.borrow_mut().out.attached_probes(attach_count).ok();
    }
    run_special(&object, checked, ProgKind::Begin);
    let mut attached = Attached::default();
    for info in attach_order(&manifest.attach) {
        if matches!(info.resolved.spec, ProbeSpec::Begin | ProbeSpec::End) {
            continue;
        }
        let name = &checked.programs[info.program].name;
        let Some(prog) = object.progs_mut().find(|p| p.name() == name.as_str()) else {
            return fail(source, internal(&format!("program `{}` missing from the object", name)));
        };
        if let Err(e) = attach::attach_one(&mut attached, &prog, &info.resolved, opts.pid) {
            return report(source, &[Diagnostic::error_nowhere(e.to_string())], exit::LOAD);
        }
    }
    if let Some(c) = child.as_mut() {
        c.start();
    }
    if std::env::var_os("__BPFTRACE_NOTIFY_PROBES_ATTACHED").is_some() {
        eprintln!("__BPFTRACE_NOTIFY_PROBES_ATTACHED");
    }

    let mut last_check = Instant::now();
    loop {
        // A negative callback result (exit()) ends the poll early; it is not an error.
        let _ = ring.poll(POLL);
        let mut st = state.borrow_mut();
        if st.exit_called() || signals::stop_requested() {
            break;
        }
        if signals::take_print_request() {
            let maps = st.read_maps();
            st.out.maps_at_exit(&maps).ok();
        }
        if child.as_mut().is_some_and(|c| c.try_wait().is_some()) {
            break;
        }
        if opts.pid.is_some_and(|p| !process_alive(p)) {
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
    attached.detach();
    drain_after_exit(&state, &ring);
    run_special(&object, checked, ProgKind::End);
    let _ = ring.consume();
    state.borrow_mut().print_at_exit();
    exit::OK
}

/// The values `.rodata` gets at load time.
#[derive(Clone, Copy, Debug)]
pub struct Rodata {
    /// When the session started (`elapsed` counts from it), CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    /// The `-c` child's pid (`cpid`).
    pub cpid: Option<i32>,
}

/// Once the probes are detached: what they sent after exit() is not
/// printed, as the program ended there; what they sent before it, and was
/// not read yet, still is.
pub fn drain_after_exit(state: &RefCell<State>, ring: &libbpf_rs::RingBuffer<'_>) {
    let mut st = state.borrow_mut();
    if st.exit_called() {
        st.discard = st.exit;
        st.draining = true;
        drop(st);
        let _ = ring.consume();
        st = state.borrow_mut();
        st.discard = false;
        st.draining = false;
    }
    st.exit = false;
}

/// Writes the ELF and loads it (with `lopts`' reused maps and program
/// choice); a verifier rejection points at the source.
pub fn load(
    checked: &Checked,
    compiled: &Compiled,
    verbose: bool,
    values: Rodata,
    mut lopts: LoadOptions<'_>,
) -> Result<Object, (Diagnostic, i32)> {
    let elf = crate::codegen::elf::write(&compiled.image).map_err(|e| internal(&e.to_string()))?;
    lopts.verbose = verbose;
    lopts.rodata = (!compiled.image.rodata.is_empty()).then(|| {
        let mut data = vec![0u8; RODATA_SIZE as usize];
        data[RODATA_START_NS as usize..][..8].copy_from_slice(&values.start_ns.to_le_bytes());
        data[RODATA_CPID as usize..][..8].copy_from_slice(&(values.cpid.unwrap_or(0) as u64).to_le_bytes());
        let ncpus = libbpf_rs::num_possible_cpus().unwrap_or(1) as u64;
        data[RODATA_NCPUS as usize..][..8].copy_from_slice(&ncpus.to_le_bytes());
        data
    });
    match loader::load(&elf, &lopts) {
        Ok(loaded) => {
            if verbose {
                for (prog, log) in &loaded.logs {
                    eprintln!("verifier log of `{}`:\n{}", prog, log);
                }
            }
            Ok(loaded.object)
        }
        Err(LoadError::Verifier { program, log }) => {
            let index = checked.programs.iter().position(|p| p.name == program);
            let span = index.and_then(|i| {
                loader::failing_insn(&log).and_then(|insn| compiled.span_of(i, insn)).or(Some(checked.programs[i].span))
            });
            let tail: Vec<&str> = log.lines().rev().take(if verbose { usize::MAX } else { 12 }).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            let message = "the kernel's verifier rejected the program generated for this";
            let d = match span {
                Some(s) => Diagnostic::error(message, s),
                None => Diagnostic::error_nowhere(format!("the kernel's verifier rejected program `{}`", program)),
            };
            let d = d.with_note(format!(
                "verifier log{}:\n{}",
                if verbose { "" } else { " (last lines; -v shows all)" },
                tail.join("\n")
            ));
            Err((d, exit::LOAD))
        }
        Err(LoadError::Other { message, libbpf_log }) if let Some(prog) = trampoline_refused(checked, &libbpf_log) => {
            let d = Diagnostic::error(
                format!(
                    "cannot load this kfunc/kretfunc probe: the kernel refused its BPF trampoline (fentry/fexit) ({})",
                    message.lines().next().unwrap_or("").split(" (os error").next().unwrap_or("")
                ),
                prog.span,
            )
            .with_help("kernels under lockdown, or built without BPF trampolines, refuse them: use kprobe:/kretprobe: where the kernel has kprobes");
            let d = if verbose { d.with_note(libbpf_log) } else { d };
            Err((d, exit::LOAD))
        }
        Err(e) => Err((Diagnostic::error_nowhere(format!("cannot load the program: {}", e)), exit::LOAD)),
    }
}

/// The kfunc or kretfunc program libbpf's log says failed to load.
fn trampoline_refused<'a>(checked: &'a Checked, libbpf_log: &str) -> Option<&'a crate::sema::ProgramDef> {
    checked.programs.iter().find(|p| {
        matches!(p.kind, ProgKind::Kfunc { .. } | ProgKind::Kretfunc { .. })
            && libbpf_log.lines().any(|l| l.contains(&format!("prog '{}'", p.name)) && l.contains("failed"))
    })
}

/// Reports a failure; returns its exit code.
fn fail(source: &Source, (d, code): (Diagnostic, i32)) -> i32 {
    report(source, &[d], code)
}

fn internal(msg: &str) -> (Diagnostic, i32) {
    (Diagnostic::error_nowhere(format!("internal error, please report: {}", msg)), exit::RUNTIME)
}

/// Runs every BEGIN (or END) program once, in rtrace's own context.
fn run_special(object: &Object, checked: &Checked, kind: ProgKind) {
    for prog in checked.programs.iter().filter(|p| p.kind == kind) {
        if let Some(p) = object.progs().find(|p2| p2.name() == prog.name.as_str()) {
            run_once(p.as_fd());
        }
    }
}

/// Runs a BEGIN or END program once, in rtrace's own context
/// (`BPF_PROG_TEST_RUN`); by fd, so the REPL can run END after it closed
/// the program's object.
pub fn run_once(prog: std::os::fd::BorrowedFd<'_>) {
    use libbpf_rs::libbpf_sys::{bpf_prog_test_run_opts, bpf_test_run_opts};
    use std::os::fd::AsRawFd;
    // SAFETY: plain data; zero is valid for every field.
    let mut opts: bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<bpf_test_run_opts>() as _;
    // SAFETY: a valid program fd and options sized for this libbpf.
    unsafe { bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
}

fn make_output(opts: &Options) -> Result<Box<dyn Output>, String> {
    let file = match &opts.output {
        Some(path) => std::fs::File::create(path).map_err(|e| format!("cannot write `{}`: {}", path.display(), e))?,
        // Our own handle on stdout, so that rtrace alone decides its buffering.
        None => std::io::stdout().as_fd().try_clone_to_owned().map(std::fs::File::from).map_err(|e| e.to_string())?,
    };
    let sink: Box<dyn Write> = match opts.buffering.unwrap_or(Buffering::Line) {
        Buffering::Line => Box::new(std::io::LineWriter::new(file)),
        Buffering::Full => Box::new(std::io::BufWriter::with_capacity(1 << 16, file)),
        Buffering::None => Box::new(file),
    };
    Ok(match opts.format {
        Format::Text => Box::new(TextOutput::new(sink)),
        Format::Json => Box::new(JsonOutput::new(sink)),
    })
}

/// CLOCK_MONOTONIC in nanoseconds: the clock `nsecs` (bpf_ktime_get_ns) counts.
pub fn boot_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// True while `pid` runs (a zombie waiting for its parent has ended).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid)) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The order to attach in: the script's, except that probes on the same
/// uprobe site or the same software event are attached last to first: the
/// kernel runs the last attached first, so they then run in script order.
pub fn attach_order(attach: &[AttachInfo]) -> Vec<&AttachInfo> {
    let site = |i: &AttachInfo| -> Option<String> {
        match (&i.resolved.spec, &i.resolved.detail) {
            (ProbeSpec::Uprobe { ret, .. }, Detail::Uprobe(s)) => {
                Some(format!("{}:{}:{}", s.path.display(), s.offset, ret))
            }
            (_, Detail::Usdt(s)) => Some(format!("{}:{}", s.path.display(), s.offset)),
            (ProbeSpec::Software { .. } | ProbeSpec::Hardware { .. }, _) => Some(format!("{:?}", i.resolved.spec)),
            _ => None,
        }
    };
    let mut order: Vec<&AttachInfo> = attach.iter().collect();
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (pos, info) in attach.iter().enumerate() {
        if let Some(key) = site(info) {
            groups.entry(key).or_default().push(pos);
        }
    }
    for positions in groups.values() {
        for (slot, from) in positions.iter().zip(positions.iter().rev()) {
            order[*slot] = &attach[*from];
        }
    }
    order
}
