//! A compiled program in the kernel: its ELF object loaded through libbpf
//! (a verifier rejection reported at the source expression), its maps, its
//! BEGIN/END programs run on demand, and its probes attached. The one API
//! the script's run and the REPL share.

use super::attach::{self, AttachError, Attached, MissingRules};
use super::keeper::Keeper;
use super::loader::{self, LoadError, LoadOptions};
use super::signals;
use super::Failure;
use crate::codegen::compile::Compiled;
use crate::contract::{self, Rodata};
use crate::diagnostic::Diagnostic;
use crate::options::exit;
use crate::probe::{Detail, ProbeSpec};
use crate::sema::manifest::{AttachInfo, Manifest};
use crate::sema::{Checked, ProgKind, ProgramDef};
use libbpf_rs::{MapCore, MapHandle, Object, ProgramAttachType};
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

/// The values `.rodata` gets at load time.
#[derive(Clone, Copy, Debug)]
pub struct LoadValues {
    /// When the session started (`elapsed` counts from it), CLOCK_BOOTTIME ns.
    pub start_ns: u64,
    /// The `-c` child's pid (`cpid`).
    pub cpid: Option<i32>,
}

/// How to load: which maps exist already, which programs to load.
#[derive(Default)]
pub struct LoadRequest<'a> {
    /// Keep every verifier log and print it (`-v`).
    pub verbose: bool,
    /// Maps that already exist, by their name in the object (`events`,
    /// `m0_x`, `.bss`), used instead of new ones (the REPL's session maps).
    pub reuse: Vec<(String, BorrowedFd<'a>)>,
    /// Load only these programs; `None`: all.
    pub only: Option<HashSet<String>>,
}

/// The libbpf name of `.bss` ends with the section name.
const BSS: &str = ".bss";

pub struct Loaded {
    object: Object,
    /// The `-c` child: watchpoints watch its addresses when there is no `-p`.
    cpid: Option<u32>,
}

impl Loaded {
    /// Loads `compiled`'s object with `values` in `.rodata`.
    pub fn load(
        checked: &Checked,
        compiled: &Compiled,
        values: LoadValues,
        request: LoadRequest<'_>,
    ) -> Result<Loaded, Failure> {
        let verbose = request.verbose;
        let rodata = (!compiled.image.rodata.is_empty()).then(|| {
            let ncpus = libbpf_rs::num_possible_cpus().unwrap_or(1) as u64;
            Rodata::bytes(
                &compiled.image.rodata,
                values.start_ns,
                values.cpid.unwrap_or(0) as u64,
                ncpus,
                super::clock::tai_offset_ns(),
            )
        });
        let multi_link = multi_link_programs(checked);
        let opts = LoadOptions { verbose, rodata, reuse: request.reuse, only: request.only, multi_link };
        match loader::load(&compiled.elf, &opts) {
            Ok(loaded) => {
                if verbose {
                    for (prog, log) in &loaded.logs {
                        eprintln!("verifier log of `{}`:\n{}", prog, log);
                    }
                }
                Ok(Loaded { object: loaded.object, cpid: values.cpid.map(|c| c as u32) })
            }
            Err(e) => Err(Failure { diagnostic: load_diagnostic(checked, compiled, e, verbose), code: exit::LOAD }),
        }
    }

    /// Owned handles (duplicated fds) of the user maps, by `MapId`.
    pub fn user_maps(&self, manifest: &Manifest) -> Vec<Option<MapHandle>> {
        (0..manifest.maps.len()).map(|i| self.map(&contract::map_name(i, &manifest.maps[i].name))).collect()
    }

    /// A map by its name in the object (`.bss` for the counters).
    pub fn map(&self, name: &str) -> Option<MapHandle> {
        self.object
            .maps()
            .find(|m| if name == BSS { m.name().to_string_lossy().ends_with(BSS) } else { m.name() == name })
            .and_then(|m| MapHandle::try_from(&m).ok())
    }

    /// Every map of the object, by its name in it (`.bss` for the counters).
    pub fn maps(&self) -> Vec<(String, MapHandle)> {
        let mut out = Vec::new();
        for map in self.object.maps() {
            let name = map.name().to_string_lossy().into_owned();
            let name = if name.ends_with(BSS) { BSS.to_string() } else { name };
            if let Ok(handle) = MapHandle::try_from(&map) {
                out.push((name, handle));
            }
        }
        out
    }

    /// Runs every program of `kind` (BEGIN, END or self:signal) once, in rtrace's own context.
    pub fn run(&self, checked: &Checked, kind: ProgKind) {
        for prog in checked.programs.iter().filter(|p| p.kind == kind) {
            if let Some(p) = self.object.progs().find(|p2| p2.name() == prog.name.as_str()) {
                run_once(p.as_fd());
            }
        }
    }

    /// A reference of its own to a loaded program: it keeps the program
    /// alive after the object is dropped.
    pub fn program_fd(&self, name: &str) -> Option<OwnedFd> {
        self.object.progs().find(|p| p.name() == name)?.as_fd().try_clone_to_owned().ok()
    }

    /// Attaches the programs of `infos` (but BEGIN, END and self:signal,
    /// which run on demand), each attach point with its cookie; `pid` restricts uprobes
    /// to one process; `keeper` releases the uprobes (`runtime::keeper`).
    /// Programs loaded for multi links get one link per file (uprobes) or
    /// one in all (kprobes), attached last program first: the kernel runs
    /// the newest consumer of a uprobe first, so probes on the same site
    /// then run in script order. Others get a link per attach point, in the
    /// order `attach_order` gives. All or nothing: on an error, what was
    /// attached is detached.
    pub fn attach(
        &self,
        checked: &Checked,
        infos: &[AttachInfo],
        pid: Option<u32>,
        keeper: Option<Rc<Keeper>>,
        rules: MissingRules,
    ) -> Result<Attached, AttachError> {
        let mut attached = Attached::new(keeper);
        let program = |info: &AttachInfo| {
            let name = &checked.programs[info.program].name;
            self.object
                .progs_mut()
                .find(|p| p.name() == name.as_str())
                .ok_or_else(|| AttachError::Missing(name.clone()))
        };
        let mut multi: Vec<usize> = Vec::new();
        for info in infos {
            let multi_link = matches!(
                program(info)?.attach_type(),
                ProgramAttachType::TraceUprobeMulti | ProgramAttachType::KprobeMulti
            );
            if multi_link && !multi.contains(&info.program) {
                multi.push(info.program);
            }
        }
        multi.sort_unstable();
        for &p in multi.iter().rev() {
            let sites: Vec<&AttachInfo> = infos.iter().filter(|i| i.program == p).collect();
            let prog = program(sites[0])?;
            match prog.attach_type() {
                ProgramAttachType::KprobeMulti => attach::attach_kprobe_multi(&mut attached, &prog, &sites, rules)?,
                _ => attach::attach_uprobe_multi(&mut attached, &prog, &sites, pid, rules)?,
            }
            if attached.interrupted {
                return Ok(attached);
            }
        }
        for info in attach_order(infos) {
            if matches!(info.resolved.spec, ProbeSpec::Begin | ProbeSpec::End | ProbeSpec::Signal { .. })
                || multi.contains(&info.program)
            {
                continue;
            }
            if signals::stop_requested() {
                attached.interrupted = true;
                break;
            }
            let pid = match info.resolved.spec {
                ProbeSpec::Watchpoint { .. } => pid.or(self.cpid),
                _ => pid,
            };
            match attach::attach_one(&mut attached, &program(info)?, &info.resolved, info.cookie, pid) {
                Err(AttachError::Failed { reason, .. }) => attach::refused(&mut attached, info, reason, rules)?,
                other => other?,
            }
        }
        Ok(attached)
    }
}

/// The programs to load for multi links, where the kernel has them: every
/// user-space probe's (uprobe_multi), and the kprobes' at function entries
/// (kprobe_multi). One link registers all of a program's sites in one
/// system call and is released in one RCU grace period, where a link per
/// site costs one each (2,594 libc functions: minutes).
fn multi_link_programs(checked: &Checked) -> HashMap<String, ProgramAttachType> {
    let mut out = HashMap::new();
    for (i, prog) in checked.programs.iter().enumerate() {
        let mut sites = checked.manifest.attach.iter().filter(|a| a.program == i);
        let kind = if prog.kind.is_user() && attach::uprobe_multi_supported() {
            ProgramAttachType::TraceUprobeMulti
        } else if matches!(prog.kind, ProgKind::Kprobe | ProgKind::Kretprobe)
            && sites.all(|a| matches!(a.resolved.spec, ProbeSpec::Kprobe { offset: 0, .. }))
            && attach::kprobe_multi_supported()
        {
            ProgramAttachType::KprobeMulti
        } else {
            continue;
        };
        out.insert(prog.name.clone(), kind);
    }
    out
}

/// Runs a BEGIN or END program once, in rtrace's own context
/// (`BPF_PROG_TEST_RUN`); by fd, so the REPL can run END after it closed
/// the program's object.
pub fn run_once(prog: BorrowedFd<'_>) {
    use libbpf_rs::libbpf_sys::{bpf_prog_test_run_opts, bpf_test_run_opts};
    use std::os::fd::AsRawFd;
    // SAFETY: plain data; zero is valid for every field.
    let mut opts: bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<bpf_test_run_opts>() as _;
    // SAFETY: a valid program fd and options sized for this libbpf.
    unsafe { bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
}

/// What to tell the user when the object did not load: a verifier rejection
/// points at the source of the instruction it gave up on.
fn load_diagnostic(checked: &Checked, compiled: &Compiled, error: LoadError, verbose: bool) -> Diagnostic {
    match error {
        LoadError::Verifier { program, log } => {
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
            d.with_note(format!(
                "verifier log{}:\n{}",
                if verbose { "" } else { " (last lines; -v shows all)" },
                tail.join("\n")
            ))
        }
        LoadError::Other { message, libbpf_log } if let Some(prog) = trampoline_refused(checked, &libbpf_log) => {
            let d = Diagnostic::error(
                format!(
                    "cannot load this kfunc/kretfunc probe: the kernel refused its BPF trampoline (fentry/fexit) ({})",
                    message.lines().next().unwrap_or("").split(" (os error").next().unwrap_or("")
                ),
                prog.span,
            )
            .with_help("kernels under lockdown, or built without BPF trampolines, refuse them: use kprobe:/kretprobe: where the kernel has kprobes");
            if verbose {
                d.with_note(libbpf_log)
            } else {
                d
            }
        }
        // EPERM (root in a user namespace, a lockdown, a seccomp filter):
        // libbpf's own advice about RLIMIT_MEMLOCK would mislead.
        LoadError::Other { message, .. } | LoadError::Open { message, .. } if message.contains("(os error 1)") => {
            Diagnostic::error_nowhere("cannot load the program: the kernel said: Operation not permitted")
                .with_help(crate::system::privilege::NEEDED)
        }
        e => Diagnostic::error_nowhere(format!("cannot load the program: {}", e)),
    }
}

/// The kfunc or kretfunc program libbpf's log says failed to load.
fn trampoline_refused<'a>(checked: &'a Checked, libbpf_log: &str) -> Option<&'a ProgramDef> {
    checked.programs.iter().find(|p| {
        matches!(p.kind, ProgKind::Kfunc { .. } | ProgKind::Kretfunc { .. })
            && libbpf_log.lines().any(|l| l.contains(&format!("prog '{}'", p.name)) && l.contains("failed"))
    })
}

/// The order to attach in: the script's, except that probes on the same
/// uprobe site or the same software event are attached last to first: the
/// kernel runs the last attached first, so they then run in script order.
pub fn attach_order(attach: &[AttachInfo]) -> Vec<&AttachInfo> {
    let site = |i: &AttachInfo| -> Option<String> {
        match (&i.resolved.spec, &i.resolved.detail) {
            (ProbeSpec::Uprobe { .. }, Detail::Uprobe(s)) => {
                Some(format!("{}:{}:{}", s.path.display(), s.offset, s.kernel_return()))
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
