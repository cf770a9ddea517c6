//! One tracing session: load the object, run BEGIN, attach, stream records
//! from the ring buffer to the output until exit()/Ctrl-C/the child exits,
//! then detach, run END, drain and print the maps.

use super::attach::{self, Attached};
use super::child::Child;
use super::clock;
use super::decode;
use super::loader::{self, LoadError, LoadOptions};
use super::signals;
use crate::codegen::compile::Compiled;
use crate::codegen::lower::{
    len_counter_index, COUNTER_EXIT, COUNTER_LOST, COUNTER_MAPS, HELPER_ERROR_ID, RODATA_CPID, RODATA_NCPUS,
    RODATA_SIZE, RODATA_START_NS,
};
use crate::diagnostic::{Diagnostic, Source};
use crate::driver::{exit, report, Buffering, Format, Options};
use crate::output::printf;
use crate::output::value::{MapEntry, Value};
use crate::output::{JsonOutput, Message, Output, TextOutput};
use crate::probe::{Detail, ProbeSpec};
use crate::sema::manifest::{join_args_type, Action, AttachInfo, Manifest, MapInfo};
use crate::sema::{Checked, ProgKind};
use libbpf_rs::{MapCore, MapFlags, MapHandle, Object, ProgramInput, RingBufferBuilder};
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
    let object = match load(source, checked, compiled, opts, child.as_ref().map(|c| c.pid)) {
        Ok(o) => o,
        Err(code) => return code,
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
    let mut state = State::new(manifest, out, handles, bss);
    state.helper_sites = sites;
    state.source_name = source.name.clone();
    let state = RefCell::new(state);
    let Some(events) = object.maps().find(|m| m.name() == "events") else {
        return internal(source, "the object has no `events` ring buffer");
    };
    let mut builder = RingBufferBuilder::new();
    if let Err(e) = builder.add(&events, |data| state.borrow_mut().record(data)) {
        return internal(source, &format!("cannot read the ring buffer: {}", e));
    }
    let ring = match builder.build() {
        Ok(r) => r,
        Err(e) => return internal(source, &format!("cannot read the ring buffer: {}", e)),
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
            return internal(source, &format!("program `{}` missing from the object", name));
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
    {
        // What probes sent after exit() is not printed: the program ended
        // there. What they sent before it, and did not reach, still is.
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
    run_special(&object, checked, ProgKind::End);
    let _ = ring.consume();
    let mut st = state.borrow_mut();
    st.check_counters();
    let maps = st.read_maps();
    st.out.maps_at_exit(&maps).ok();
    st.out.flush().ok();
    exit::OK
}

/// Counter `index` of the `.bss` section (`codegen::lower::COUNTER_*`).
fn read_counter(bss: &MapHandle, index: i32) -> u64 {
    counter_at(&read_bss(bss), index)
}

/// The whole `.bss` section: one lookup of its single value.
fn read_bss(bss: &MapHandle) -> Vec<u8> {
    bss.lookup(&0u32.to_le_bytes(), MapFlags::ANY).ok().flatten().unwrap_or_default()
}

/// Sets counter `index` of `.bss` (read, change, write back the section).
fn set_counter(bss: &MapHandle, index: i32, value: u64) {
    let key = 0u32.to_le_bytes();
    if let Ok(Some(mut data)) = bss.lookup(&key, MapFlags::ANY) {
        let at = 8 * index as usize;
        if let Some(word) = data.get_mut(at..at + 8) {
            word.copy_from_slice(&value.to_le_bytes());
            let _ = bss.update(&key, &data, MapFlags::ANY);
        }
    }
}

fn counter_at(bss: &[u8], index: i32) -> u64 {
    let at = 8 * index as usize;
    bss.get(at..at + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
}

/// Writes the ELF and loads it; a verifier rejection points at the source.
fn load(
    source: &Source,
    checked: &Checked,
    compiled: &Compiled,
    opts: &Options,
    cpid: Option<i32>,
) -> Result<Object, i32> {
    let elf = crate::codegen::elf::write(&compiled.image).map_err(|e| internal(source, &e.to_string()))?;
    let rodata = (!compiled.image.rodata.is_empty()).then(|| {
        let mut data = vec![0u8; RODATA_SIZE as usize];
        let start = boot_ns();
        data[RODATA_START_NS as usize..][..8].copy_from_slice(&start.to_le_bytes());
        data[RODATA_CPID as usize..][..8].copy_from_slice(&(cpid.unwrap_or(0) as u64).to_le_bytes());
        let ncpus = libbpf_rs::num_possible_cpus().unwrap_or(1) as u64;
        data[RODATA_NCPUS as usize..][..8].copy_from_slice(&ncpus.to_le_bytes());
        data
    });
    let lopts = LoadOptions { verbose: opts.verbose, rodata };
    match loader::load(&elf, &lopts) {
        Ok(loaded) => {
            if opts.verbose {
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
            let tail: Vec<&str> = log.lines().rev().take(if opts.verbose { usize::MAX } else { 12 }).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            let message = "the kernel's verifier rejected the program generated for this";
            let d = match span {
                Some(s) => Diagnostic::error(message, s),
                None => Diagnostic::error_nowhere(format!("the kernel's verifier rejected program `{}`", program)),
            };
            let d = d.with_note(format!(
                "verifier log{}:\n{}",
                if opts.verbose { "" } else { " (last lines; -v shows all)" },
                tail.join("\n")
            ));
            Err(report(source, &[d], exit::LOAD))
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
            let d = if opts.verbose { d.with_note(libbpf_log) } else { d };
            Err(report(source, &[d], exit::LOAD))
        }
        Err(e) => {
            Err(report(source, &[Diagnostic::error_nowhere(format!("cannot load the program: {}", e))], exit::LOAD))
        }
    }
}

/// The kfunc or kretfunc program libbpf's log says failed to load.
fn trampoline_refused<'a>(checked: &'a Checked, libbpf_log: &str) -> Option<&'a crate::sema::ProgramDef> {
    checked.programs.iter().find(|p| {
        matches!(p.kind, ProgKind::Kfunc { .. } | ProgKind::Kretfunc { .. })
            && libbpf_log.lines().any(|l| l.contains(&format!("prog '{}'", p.name)) && l.contains("failed"))
    })
}

fn internal(source: &Source, msg: &str) -> i32 {
    report(source, &[Diagnostic::error_nowhere(format!("internal error, please report: {}", msg))], exit::RUNTIME)
}

/// Runs every BEGIN (or END) program once, in rtrace's own context.
fn run_special(object: &Object, checked: &Checked, kind: ProgKind) {
    for prog in checked.programs.iter().filter(|p| p.kind == kind) {
        if let Some(p) = object.progs_mut().find(|p2| p2.name() == prog.name.as_str()) {
            let _ = p.test_run(ProgramInput::default());
        }
    }
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
fn boot_ns() -> u64 {
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

/// One map's entries, decoded (a key deleted meanwhile is skipped).
fn read_map(map: &MapHandle, info: &MapInfo) -> Vec<MapEntry> {
    let mut entries = Vec::new();
    for key in map.keys() {
        let values = if info.value.per_cpu() {
            map.lookup_percpu(&key, MapFlags::ANY).ok().flatten()
        } else {
            map.lookup(&key, MapFlags::ANY).ok().flatten().map(|v| vec![v])
        };
        if let Some(values) = values {
            entries.push(decode::entry(info, &key, &values));
        }
    }
    if info.value.bucketed() {
        entries = decode::merge_buckets(entries);
    }
    // bpftrace shows a `count()` without keys that holds nothing as 0.
    if entries.is_empty() && info.keys.is_empty() && info.value == crate::sema::manifest::MapValue::Count {
        entries.push(MapEntry { key: vec![], value: crate::output::value::MapValue::Count(0) });
    }
    entries
}

/// `clear(@x)`: every key deleted.
fn clear_map(map: &MapHandle) {
    let keys: Vec<Vec<u8>> = map.keys().collect();
    for key in keys {
        let _ = map.delete(&key);
    }
}

/// `zero(@x)`: every value (of every CPU) set to zero, keys kept.
fn zero_map(map: &MapHandle, info: &MapInfo) {
    let keys: Vec<Vec<u8>> = map.keys().collect();
    let size = info.value.size() as usize;
    for key in keys {
        let _ = if info.value.per_cpu() {
            let zeros = vec![vec![0u8; size]; libbpf_rs::num_possible_cpus().unwrap_or(1)];
            map.update_percpu(&key, &zeros, MapFlags::EXIST)
        } else {
            map.update(&key, &vec![0u8; size], MapFlags::EXIST)
        };
    }
}

/// `print(@x, top, div)`: the `top` largest entries, values divided by `div`.
fn top_entries(mut entries: Vec<MapEntry>, top: u64, div: u64) -> Vec<MapEntry> {
    crate::output::value::sort_entries(&mut entries);
    if top > 0 && entries.len() > top as usize {
        entries.drain(..entries.len() - top as usize);
    }
    if div > 1 {
        for e in &mut entries {
            e.value = e.value.divided(div);
        }
    }
    entries
}

/// Bytes `cat()` prints at most, as bpftrace (`BPFTRACE_CAT_BYTES_MAX`).
const CAT_BYTES_MAX: u64 = 10240;

/// `cat(path)`: the file's first `CAT_BYTES_MAX` bytes.
fn cat_file(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut content = Vec::new();
    std::fs::File::open(path)?.take(CAT_BYTES_MAX).read_to_end(&mut content)?;
    Ok(content)
}

/// `system(command)`: runs it with `sh -c` and returns what it printed.
fn run_command(command: &str) -> Vec<u8> {
    match std::process::Command::new("/bin/sh").arg("-c").arg(command).stderr(std::process::Stdio::inherit()).output() {
        Ok(out) => out.stdout,
        Err(e) => {
            eprintln!("ERROR: cannot run `{}`: {}", command, e);
            Vec::new()
        }
    }
}

/// What the ring buffer callback and the loop share.
struct State<'a> {
    manifest: &'a Manifest,
    /// User maps by MapId.
    maps: Vec<Option<MapHandle>>,
    /// The `.bss` counters (entry counts are reset by `clear()`).
    bss: Option<MapHandle>,
    /// Helper calls checked by `-k`/`-kk`: (helper, line, column).
    helper_sites: Vec<(&'static str, usize, usize)>,
    source_name: String,
    out: Box<dyn Output>,
    /// Parsed printf formats, by action id.
    formats: Vec<Option<Vec<printf::Piece>>>,
    exit: bool,
    /// Records are dropped unread: the ones probes sent after exit().
    discard: bool,
    /// Reading what is left after the probes stopped because of exit():
    /// the exit record starts `discard`.
    draining: bool,
    lost_reported: u64,
    full_reported: Vec<bool>,
}

impl<'a> State<'a> {
    fn new(
        manifest: &'a Manifest,
        out: Box<dyn Output>,
        maps: Vec<Option<MapHandle>>,
        bss: Option<MapHandle>,
    ) -> State<'a> {
        let formats = manifest
            .actions
            .iter()
            .map(|a| match a {
                Action::Printf { format, .. } | Action::Cat { format, .. } | Action::System { format, .. } => {
                    printf::parse_format(format).ok()
                }
                _ => None,
            })
            .collect();
        State {
            manifest,
            maps,
            bss,
            helper_sites: Vec::new(),
            source_name: String::new(),
            out,
            formats,
            exit: false,
            discard: false,
            draining: false,
            lost_reported: 0,
            full_reported: vec![false; manifest.maps.len()],
        }
    }

    /// Every user map's entries, decoded.
    fn read_maps(&self) -> Vec<(String, Vec<MapEntry>, bool)> {
        let mut out = Vec::new();
        for (info, handle) in self.manifest.maps.iter().zip(&self.maps) {
            let Some(map) = handle else { continue };
            out.push((info.name.clone(), read_map(map, info), !info.keys.is_empty()));
        }
        out
    }

    /// exit() ran: its record was read, or its `.bss` count says so (the
    /// count also covers a record that was lost or not read yet).
    fn exit_called(&self) -> bool {
        self.exit || self.bss.as_ref().is_some_and(|c| read_counter(c, COUNTER_EXIT) > 0)
    }

    /// Handles one ring buffer record; a negative result stops this poll.
    fn record(&mut self, data: &[u8]) -> i32 {
        if self.discard {
            return 0;
        }
        if self.exit {
            return -1;
        }
        let word =
            |at: usize| u64::from_le_bytes(data.get(at..at + 8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]));
        if word(0) == HELPER_ERROR_ID {
            if let Some((helper, line, col)) = self.helper_sites.get(word(8) as usize) {
                self.out.helper_error(helper, word(16) as i64, &self.source_name, *line, *col).ok();
            }
            return 0;
        }
        let id = word(0) as usize;
        let Some(action) = self.manifest.actions.get(id) else { return 0 };
        match action {
            Action::Printf { args, .. } => {
                let layout = action.record();
                let values: Vec<Value> = decode::values(args, &layout.offsets, data);
                if let Some(pieces) = &self.formats[id] {
                    let text = printf::format(pieces, &values);
                    self.out.message(Message::Printf, &text, false).ok();
                }
                0
            }
            Action::Time { format } => {
                self.out.message(Message::Time, clock::now(format).as_bytes(), false).ok();
                0
            }
            Action::Join { delim } => {
                let layout = action.record();
                let Value::Tuple(args) = decode::value(&join_args_type(), data, layout.offsets[0] as usize) else {
                    return 0;
                };
                let parts: Vec<Vec<u8>> = args
                    .into_iter()
                    .map_while(|a| match a {
                        Value::Str(s) if !s.is_empty() => Some(s),
                        _ => None,
                    })
                    .collect();
                self.out.message(Message::Join, &parts.join(delim.as_bytes()), true).ok();
                0
            }
            Action::Cat { args, .. } | Action::System { args, .. } => {
                let layout = action.record();
                let values: Vec<Value> = decode::values(args, &layout.offsets, data);
                let Some(pieces) = &self.formats[id] else { return 0 };
                let text = String::from_utf8_lossy(&printf::format(pieces, &values)).into_owned();
                if matches!(action, Action::Cat { .. }) {
                    match cat_file(&text) {
                        Ok(content) => self.out.message(Message::Cat, &content, false).ok(),
                        Err(e) => {
                            eprintln!("ERROR: failed to open file '{}': {}", text, e);
                            None
                        }
                    };
                } else {
                    self.out.flush().ok();
                    let output = run_command(&text);
                    self.out.message(Message::Syscall, &output, false).ok();
                }
                0
            }
            Action::Exit => {
                self.exit = true;
                if self.draining {
                    // Keep reading, to drop what follows.
                    self.discard = true;
                    return 0;
                }
                -1
            }
            Action::PrintValue { ty } => {
                let v = decode::value(ty, data, 8);
                self.out.value(&v).ok();
                0
            }
            Action::PrintMap { map, top, div } => {
                if let Some(handle) = &self.maps[*map] {
                    let info = &self.manifest.maps[*map];
                    let entries = top_entries(read_map(handle, info), *top, *div);
                    self.out.map(&info.name, &entries, !info.keys.is_empty()).ok();
                }
                0
            }
            Action::ClearMap { map } => {
                if let Some(handle) = &self.maps[*map] {
                    clear_map(handle);
                }
                if let (true, Some(bss)) = (self.manifest.maps[*map].counted, &self.bss) {
                    // Deletes in flight may still decrement: the count is exact
                    // again once they are done, as the map is empty.
                    let index = len_counter_index(self.manifest.maps.len(), *map);
                    set_counter(bss, index, 0);
                }
                0
            }
            Action::ZeroMap { map } => {
                if let (Some(handle), info) = (&self.maps[*map], &self.manifest.maps[*map]) {
                    zero_map(handle, info);
                }
                0
            }
        }
    }

    /// Reports records lost to a full ring buffer and updates dropped by full
    /// maps, from the u64 counters in `.bss`.
    fn check_counters(&mut self) {
        let Some(counters) = &self.bss else { return };
        // One lookup for all counters, not one per counter.
        let bss = read_bss(counters);
        let read = |index: i32| counter_at(&bss, index);
        let lost = read(COUNTER_LOST);
        if lost > self.lost_reported {
            self.out.lost_events(lost - self.lost_reported).ok();
            self.lost_reported = lost;
        }
        for (i, info) in self.manifest.maps.iter().enumerate() {
            if !self.full_reported[i] && read(COUNTER_MAPS + i as i32) > 0 {
                self.full_reported[i] = true;
                eprintln!(
                    "warning: map `{}` is full ({} entries): new keys are being dropped; raise it with RTRACE_MAP_KEYS_MAX",
                    info.name, self.manifest.max_map_keys
                );
            }
        }
    }
}

/// The order to attach in: the script's, except that probes on the same
/// uprobe site or the same software event are attached last to first: the
/// kernel runs the last attached first, so they then run in script order.
fn attach_order(attach: &[AttachInfo]) -> Vec<&AttachInfo> {
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
