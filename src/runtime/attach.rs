//! Attaches loaded programs to their probes. Links are owned here: dropping
//! `Attached` detaches everything (uprobes through the keeper).

use super::keeper::Keeper;
use super::perf::{self, Rate};
use super::signals;
use crate::probe::spec::Timer;
use crate::probe::{Detail, ProbeSpec, Resolved, Return};
use crate::sema::manifest::AttachInfo;
use crate::system::uprobe_insn;
use libbpf_rs::{Link, ProgramMut, UprobeOpts};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;

/// An attach point left out because it cannot be attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The program that would have run there (`AttachInfo::program`).
    pub program: usize,
    pub name: String,
    /// Matched by a wildcard.
    pub wildcard: bool,
    /// Why, in words (with the errno's name).
    pub why: String,
}

/// Skipped attach points listed by name in a warning; the rest are counted.
const SKIPPED_LISTED: usize = 10;

/// The warnings `rules` ask for about the attach points `attached` skipped,
/// one per probe, at the probe (`infos`: every attach point attempted).
pub fn skipped_warnings(
    checked: &crate::sema::Checked,
    infos: &[AttachInfo],
    attached: &Attached,
    rules: MissingRules,
) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for (program, def) in checked.programs.iter().enumerate() {
        let skipped: Vec<&Skipped> =
            attached.skipped.iter().filter(|s| s.program == program && rules.warns(s.wildcard)).collect();
        if skipped.is_empty() {
            continue;
        }
        let total = infos.iter().filter(|i| i.program == program).count();
        let mut d = crate::diagnostic::Diagnostic::warning(
            format!("skipped {} of the {} attach points of this probe: the kernel refused them", skipped.len(), total),
            def.span,
        );
        for s in skipped.iter().take(SKIPPED_LISTED) {
            d = d.with_note(format!("  {}: {}", s.name, s.why));
        }
        if skipped.len() > SKIPPED_LISTED {
            d = d.with_note(format!("  and {} more", skipped.len() - SKIPPED_LISTED));
        }
        out.push(d);
    }
    out
}

/// What to do with an attach point that cannot be attached (bpftrace's
/// `missing_probes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    Error,
    Warn,
    Ignore,
}

/// The `missing_probes` rules for attach points named and for those a
/// wildcard matched: by default a named one that cannot be attached is an
/// error, a wildcard's is skipped with a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingRules {
    pub named: Missing,
    pub wildcard: Missing,
}

impl Default for MissingRules {
    fn default() -> MissingRules {
        MissingRules { named: Missing::Error, wildcard: Missing::Warn }
    }
}

impl MissingRules {
    /// One rule for all attach points (`missing_probes` set).
    pub fn all(rule: Missing) -> MissingRules {
        MissingRules { named: rule, wildcard: rule }
    }

    fn skips(&self, wildcard: bool) -> bool {
        (if wildcard { self.wildcard } else { self.named }) != Missing::Error
    }

    /// Whether skipped attach points are reported.
    pub fn warns(&self, wildcard: bool) -> bool {
        (if wildcard { self.wildcard } else { self.named }) == Missing::Warn
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("cannot attach `{probe}`: {reason}")]
    Failed { probe: String, reason: String },
    #[error("internal error, please report: program `{0}` missing from the object")]
    Missing(String),
}

/// Attached probes; detached when dropped.
#[derive(Default)]
pub struct Attached {
    /// Attach points left out: the kernel refused them (`missing_probes`).
    pub skipped: Vec<Skipped>,
    /// SIGINT or SIGTERM stopped attaching before every probe was attached.
    pub interrupted: bool,
    /// The multi links made, described for `-v`.
    pub multi_links: Vec<String>,
    links: Vec<Link>,
    /// Uprobe and USDT links, apart: see `detach`.
    uprobes: Vec<Link>,
    /// Holds a duplicate of the uprobe links it could take (`held`: their
    /// numbers in the keeper) and releases them; and of the perf events of
    /// tracepoints and timers (`events_held`), which it releases after
    /// rtrace stopped waiting.
    keeper: Option<Rc<Keeper>>,
    held: Vec<RawFd>,
    events_held: Vec<RawFd>,
}

impl Attached {
    /// No probes yet; uprobe links will be handed to `keeper` when there is one.
    pub fn new(keeper: Option<Rc<Keeper>>) -> Attached {
        Attached {
            skipped: Vec::new(),
            interrupted: false,
            multi_links: Vec::new(),
            links: Vec::new(),
            uprobes: Vec::new(),
            keeper,
            held: Vec::new(),
            events_held: Vec::new(),
        }
    }

    /// Links `prog` to the perf event `event` (a tracepoint, a timer, a
    /// software or hardware event), with `cookie`. The keeper takes a
    /// duplicate of the event: releasing a perf event waits for an RCU grace
    /// period, which the kernel serialises under its event mutex (27 sched
    /// tracepoints: 0.95 s), and the keeper's copy moves that wait out of
    /// rtrace's exit (`detach`).
    fn push_perf(&mut self, prog: &ProgramMut<'_>, event: OwnedFd, cookie: u64) -> Result<(), libbpf_rs::Error> {
        if let Some(n) = self.keeper.as_ref().and_then(|k| k.hold(event.as_fd()).ok()) {
            self.events_held.push(n);
        }
        let opts = libbpf_rs::PerfEventOpts { cookie, ..Default::default() };
        let link = prog.attach_perf_event_with_opts(event.as_raw_fd(), opts)?;
        // libbpf's perf-event link closes the event fd when it is destroyed.
        let _ = event.into_raw_fd();
        self.links.push(link);
        Ok(())
    }

    fn push_uprobe(&mut self, link: Link) {
        if let Some(keeper) = &self.keeper {
            // Not held: released here instead (`detach`).
            if let Ok(n) = keeper.hold(link.as_fd()) {
                self.held.push(n);
            }
        }
        self.uprobes.push(link);
    }

    /// Detaches every probe: when this returns no probe runs any more.
    ///
    /// Uprobes are unregistered by the keeper (`runtime::keeper`), or else
    /// here on the calling thread, one by one: a uprobe released by a thread
    /// with a fatal signal pending is leaked by the kernel, and threads
    /// spawned for it would all be hit by a SIGKILL meant for rtrace (each
    /// one leaked a uprobe when a test runner sent SIGTERM, then SIGKILL).
    ///
    /// Other links are released in parallel: releasing one detaches its
    /// program at once, then waits for an RCU grace period (~36 ms here),
    /// and parallel waits share grace periods. The perf events under them
    /// (tracepoints, timers) are released by the keeper without rtrace
    /// waiting: each of those waits for a grace period of its own under the
    /// kernel's event mutex, one after the other (27 sched tracepoints:
    /// 0.95 s). Without a keeper they go with their links.
    pub fn detach(&mut self) {
        // With the keeper holding them, dropping ours unregisters nothing yet.
        drop(std::mem::take(&mut self.uprobes));
        let held = std::mem::take(&mut self.held);
        if let (Some(keeper), false) = (&self.keeper, held.is_empty()) {
            // If the keeper is gone, it released what it held when it exited.
            let _ = keeper.release(&held);
        }
        let links = std::mem::take(&mut self.links);
        match links.len() {
            0 | 1 => drop(links),
            _ => std::thread::scope(|s| {
                for link in links {
                    s.spawn(move || drop(link));
                }
            }),
        }
        let events = std::mem::take(&mut self.events_held);
        if let (Some(keeper), false) = (&self.keeper, events.is_empty()) {
            let _ = keeper.release_later(&events);
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.detach();
    }
}

/// How a user-space probe is attached, for `-v`: a uprobe (at a Go
/// function's return instruction, for its uretprobe) or the kernel's
/// uretprobe, and where in the file.
pub fn mechanism(resolved: &Resolved) -> Option<String> {
    let how = match &resolved.detail {
        Detail::Uprobe(site) => {
            let what = match site.ret {
                None => "uprobe",
                Some(Return::Instruction) => "uprobe on a return instruction",
                Some(Return::Kernel) => "kernel uretprobe",
                Some(Return::KernelOnGo { .. }) => "kernel uretprobe on a Go function (--unsafe)",
            };
            format!("{} at file offset {:#x}", what, site.offset)
        }
        Detail::Usdt(site) => format!("uprobe at file offset {:#x}", site.offset),
        _ => return None,
    };
    Some(format!("{}: {}", resolved.name, how))
}

/// Attaches `prog` at `resolved` (not BEGIN/END, which run on demand),
/// where `probe` and `func` find it by `cookie` (`AttachInfo::cookie`).
/// `pid` restricts uprobes to one process.
pub fn attach_one(
    attached: &mut Attached,
    prog: &ProgramMut<'_>,
    resolved: &Resolved,
    cookie: u64,
    pid: Option<u32>,
) -> Result<(), AttachError> {
    let fail = |reason: String| AttachError::Failed { probe: resolved.name.clone(), reason };
    let lib = |e: libbpf_rs::Error| {
        fail(match e.kind() {
            // BPF_TRACE_MAX_PROGS: the kernel's own limit per event.
            libbpf_rs::ErrorKind::TooBig => {
                "the kernel runs at most 64 BPF programs on one event, and this one has them all".to_string()
            }
            // With the system's reason (`failed to attach tracepoint: ...`).
            _ => format!("{:#}", e),
        })
    };
    match (&resolved.spec, &resolved.detail) {
        (ProbeSpec::Tracepoint { category, event }, _) => {
            let root = crate::system::tracefs::mounted().ok_or_else(|| fail("tracefs is not mounted".into()))?;
            let id = crate::system::tracefs::event_id(&root, category, event)
                .map_err(|e| fail(format!("cannot read the tracepoint's id: {}", e)))?;
            let fd = perf::open_tracepoint(id).map_err(|e| fail(format!("perf_event_open: {}", e)))?;
            attached.push_perf(prog, fd, cookie).map_err(lib)?;
        }
        (ProbeSpec::Uprobe { .. }, Detail::Uprobe(site)) => {
            // A Go function's uretprobe is plain uprobes at its return instructions.
            let opts = UprobeOpts { retprobe: site.kernel_return(), cookie, ..Default::default() };
            let pid = pid.map_or(-1, |p| p as i32);
            let link = prog.attach_uprobe_with_opts(pid, &site.path, site.offset as usize, opts).map_err(lib)?;
            attached.push_uprobe(link);
        }
        (ProbeSpec::Usdt { .. }, Detail::Usdt(site)) => {
            // The kernel increments the semaphore while the probe is attached.
            let opts =
                UprobeOpts { ref_ctr_offset: site.semaphore.unwrap_or(0) as usize, cookie, ..Default::default() };
            let pid = pid.map_or(-1, |p| p as i32);
            let link = prog.attach_uprobe_with_opts(pid, &site.path, site.offset as usize, opts).map_err(lib)?;
            attached.push_uprobe(link);
        }
        (ProbeSpec::Kprobe { func, offset, ret }, _) => {
            if !crate::system::tracefs::kprobes_available() {
                return Err(fail("this kernel has no kprobes (it was built without CONFIG_KPROBES)".into()));
            }
            let link = if *offset == 0 {
                let opts = libbpf_rs::KprobeOpts { cookie, ..Default::default() };
                prog.attach_kprobe_with_opts(*ret, func, opts)
                    .map_err(|e| unprobeable(func).map_or_else(|| lib(e), &fail))?
            } else {
                kprobe_at_offset(prog, func, *offset, cookie)
                    .map_err(|e| fail(unprobeable(func).unwrap_or_else(|| e.to_string())))?
            };
            attached.links.push(link);
        }
        (ProbeSpec::Kfunc { .. }, _) => {
            // libbpf finds the function in the kernel's BTF by the program's
            // section (`fentry/FUNC`) and attaches through a BPF trampoline.
            attached.links.push(prog.attach().map_err(lib)?);
        }
        (ProbeSpec::RawTracepoint { event, .. }, _) => {
            attached.links.push(prog.attach_raw_tracepoint(event).map_err(lib)?);
        }
        (ProbeSpec::Interval { timer }, _) => {
            // An interval fires on one CPU only.
            attach_timer(attached, prog, 0, *timer, cookie, fail)?;
        }
        (ProbeSpec::Profile { timer }, _) => {
            for cpu in perf::online_cpus() {
                attach_timer(attached, prog, cpu, *timer, cookie, fail)?;
            }
        }
        (ProbeSpec::Software { event, count } | ProbeSpec::Hardware { event, count }, _) => {
            use crate::probe::perf_events::*;
            let software = matches!(resolved.spec, ProbeSpec::Software { .. });
            let (type_, table, default) = if software {
                (PERF_TYPE_SOFTWARE, SOFTWARE, DEFAULT_SOFTWARE_COUNT)
            } else {
                (PERF_TYPE_HARDWARE, HARDWARE, DEFAULT_HARDWARE_COUNT)
            };
            let config = config(table, event).ok_or_else(|| fail(format!("unknown event `{}`", event)))?;
            for cpu in perf::online_cpus() {
                let fd = perf::open_event(type_, config, cpu, count.unwrap_or(default)).map_err(|e| {
                    // No PMU (a VM without hardware counters): say so, not just ENOENT.
                    if !software && matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV)) {
                        fail(format!("this machine has no hardware performance counters (PMU) for `{}`: {}", event, e))
                    } else {
                        fail(format!("perf_event_open of {} on CPU {}: {}", event, cpu, e))
                    }
                })?;
                attached.push_perf(prog, fd, cookie).map_err(lib)?;
            }
        }
        (ProbeSpec::Iter { .. }, _) => {
            // The iteration runs as its iterator is read: now, once; what
            // the program prints goes to the ring buffer as any probe's.
            let link = prog.attach().map_err(lib)?;
            let mut iter = libbpf_rs::Iter::new(&link).map_err(lib)?;
            std::io::copy(&mut iter, &mut std::io::sink()).map_err(|e| fail(format!("reading the iterator: {}", e)))?;
            attached.links.push(link);
        }
        (ProbeSpec::Watchpoint { addr, len, mode, .. }, _) => {
            // A user address is watched in the `-p` or `-c` process; with
            // neither, the address is the kernel's, watched on every CPU.
            // (A breakpoint is per thread: one on each of the process's.)
            let places: Vec<(Option<u32>, i32)> = match pid {
                Some(p) => perf::threads(p).into_iter().map(|t| (Some(t), -1)).collect(),
                None => perf::online_cpus().into_iter().map(|c| (None, c)).collect(),
            };
            for (tid, cpu) in places {
                let fd = perf::open_breakpoint(*addr, *len, mode, tid, cpu).map_err(|e| {
                    let whose = match pid {
                        Some(p) => format!("in process {}", p),
                        None => "in the kernel (a user address needs -p or -c)".to_string(),
                    };
                    fail(format!("cannot watch {:#x} ({} bytes, `{}`) {}: {}", addr, len, mode, whose, e))
                })?;
                let link = prog.attach_perf_event(fd.as_raw_fd()).map_err(lib)?;
                // libbpf's perf-event link closes the event fd when it is destroyed.
                let _ = fd.into_raw_fd();
                attached.links.push(link);
            }
        }
        (other, _) => return Err(fail(format!("attaching {} probes is not supported yet", other.provider()))),
    }
    Ok(())
}

/// Sites of one uprobe_multi link at most. Registering a site writes its
/// breakpoint into every process that maps the file, about 1 ms per site
/// with libc (measured here), so a link of all of libc's 2,154 functions
/// would be one uninterruptible system call of 2 s: links of this many keep
/// each call short enough for SIGINT to stop attaching at once.
const SITES_PER_LINK: usize = 256;

/// Attaches `prog` at `sites` (uprobe or USDT attach points of one
/// program) with uprobe_multi links, per file, each site with its cookie
/// and, for USDT, its semaphore. Sites the kernel refuses to probe are left
/// out as `rules` says (`Attached::skipped`); SIGINT or SIGTERM stops it
/// between links (`Attached::interrupted`).
pub fn attach_uprobe_multi(
    attached: &mut Attached,
    prog: &ProgramMut<'_>,
    sites: &[&AttachInfo],
    pid: Option<u32>,
    rules: MissingRules,
) -> Result<(), AttachError> {
    let mut files: Vec<(&std::path::Path, Vec<&AttachInfo>)> = Vec::new();
    for info in sites {
        let Some(path) = user_site(&info.resolved).map(|s| s.path) else {
            return Err(AttachError::Failed { probe: info.resolved.name.clone(), reason: "not a uprobe".into() });
        };
        match files.iter_mut().find(|(p, _)| *p == path) {
            Some((_, v)) => v.push(info),
            None => files.push((path, vec![info])),
        }
    }
    let pid = pid.map_or(-1, |p| p as i32);
    for (path, sites) in files {
        let sites = without_refused(attached, path, sites, rules)?;
        for chunk in sites.chunks(SITES_PER_LINK) {
            if signals::stop_requested() {
                attached.interrupted = true;
                return Ok(());
            }
            link_sites(attached, chunk, rules, Multi::Uprobe(path), &|sites| {
                uprobe_multi_link(prog, path, sites, pid)
            })?;
        }
    }
    Ok(())
}

/// `sites` but those whose instruction the kernel is known to refuse
/// (`system::uprobe_insn`), which are skipped or an error as `rules` say.
fn without_refused<'a>(
    attached: &mut Attached,
    path: &std::path::Path,
    sites: Vec<&'a AttachInfo>,
    rules: MissingRules,
) -> Result<Vec<&'a AttachInfo>, AttachError> {
    let offsets: Vec<u64> = sites.iter().filter_map(|i| user_site(&i.resolved)).map(|s| s.offset).collect();
    // Unreadable here: the kernel will say so, or refuse what it refuses.
    let Ok(code) = uprobe_insn::first_bytes(path, &offsets) else { return Ok(sites) };
    let mut kept = Vec::with_capacity(sites.len());
    for (info, code) in sites.into_iter().zip(code) {
        match uprobe_insn::refusal(crate::probe::arch::Arch::host(), &code) {
            None => kept.push(info),
            Some(refusal) => {
                let why = format!("{} (the kernel refuses to probe such instructions: ENOTSUPP)", refusal);
                refused(attached, info, why, rules)?;
            }
        }
    }
    Ok(kept)
}

/// What a multi link attaches to.
#[derive(Clone, Copy)]
enum Multi<'a> {
    /// Sites of this file (uprobe_multi).
    Uprobe(&'a std::path::Path),
    /// Kernel functions (kprobe_multi).
    Kprobe,
}

/// One multi link for `chunk` (made by `link`); when the kernel refuses a
/// site of it (without saying which), the two halves are linked apart,
/// down to the refused site alone. Uprobe links go to the keeper.
fn link_sites(
    attached: &mut Attached,
    chunk: &[&AttachInfo],
    rules: MissingRules,
    multi: Multi<'_>,
    link: &dyn Fn(&[&AttachInfo]) -> std::io::Result<Link>,
) -> Result<(), AttachError> {
    match link(chunk) {
        Ok(l) => {
            let what = match multi {
                Multi::Uprobe(path) => {
                    attached.push_uprobe(l);
                    format!("{} sites of {} through one uprobe_multi link", chunk.len(), path.display())
                }
                Multi::Kprobe => {
                    attached.links.push(l);
                    format!("{} kernel functions through one kprobe_multi link", chunk.len())
                }
            };
            attached.multi_links.push(what);
            Ok(())
        }
        Err(e) if site_refused(&e) && chunk.len() > 1 => {
            let (a, b) = chunk.split_at(chunk.len() / 2);
            link_sites(attached, a, rules, multi, link)?;
            link_sites(attached, b, rules, multi, link)
        }
        Err(e) if site_refused(&e) => refused(attached, chunk[0], errno_words(&e), rules),
        Err(e) => Err(AttachError::Failed { probe: several(chunk), reason: errno_words(&e) }),
    }
}

/// An attach point the kernel refuses: skipped, or the error, by `rules`.
pub fn refused(
    attached: &mut Attached,
    info: &AttachInfo,
    why: String,
    rules: MissingRules,
) -> Result<(), AttachError> {
    if rules.skips(info.resolved.wildcard) {
        let (name, wildcard) = (info.resolved.name.clone(), info.resolved.wildcard);
        attached.skipped.push(Skipped { program: info.program, name, wildcard, why });
        return Ok(());
    }
    Err(AttachError::Failed {
        probe: info.resolved.name.clone(),
        reason: format!("{}; set the `missing_probes` config to `warn` to skip it", why),
    })
}

/// Errors of one site, not of the link: the kernel cannot probe its
/// instruction (ENOTSUPP), the offset is not in the file (EINVAL), a
/// kernel function is not there (ENOENT, ESRCH).
fn site_refused(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(ENOTSUPP | libc::EINVAL | libc::ENOENT | libc::ESRCH))
}

/// The kernel's "operation not supported" of uprobes, which libc has no
/// name for (it is not EOPNOTSUPP).
const ENOTSUPP: i32 = 524;

/// An errno in words, with its name where libc would print a number.
pub fn errno_words(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(ENOTSUPP) => "the kernel cannot probe this instruction (ENOTSUPP, error 524)".to_string(),
        _ => e.to_string(),
    }
}

/// A uprobe_multi link of `prog` at `sites` of the file at `path`, with
/// the kernel's errno when it fails. libbpf's own call: libbpf-rs's error
/// does not keep the errno.
fn uprobe_multi_link(
    prog: &ProgramMut<'_>,
    path: &std::path::Path,
    sites: &[&AttachInfo],
    pid: i32,
) -> std::io::Result<Link> {
    use libbpf_rs::libbpf_sys as sys;
    use libbpf_rs::AsRawLibbpf;
    use std::os::unix::ffi::OsStrExt;
    let user: Vec<UserSite> = sites.iter().filter_map(|i| user_site(&i.resolved)).collect();
    let offsets: Vec<std::os::raw::c_ulong> = user.iter().map(|s| s.offset as _).collect();
    let ref_ctrs: Vec<std::os::raw::c_ulong> = user.iter().map(|s| s.semaphore as _).collect();
    let cookies: Vec<u64> = sites.iter().map(|i| i.cookie).collect();
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let opts = sys::bpf_uprobe_multi_opts {
        sz: std::mem::size_of::<sys::bpf_uprobe_multi_opts>() as _,
        offsets: offsets.as_ptr(),
        ref_ctr_offsets: if ref_ctrs.iter().any(|r| *r != 0) { ref_ctrs.as_ptr() } else { std::ptr::null() },
        cookies: cookies.as_ptr(),
        cnt: offsets.len() as _,
        retprobe: user.first().is_some_and(|s| s.kernel_return),
        ..Default::default()
    };
    // SAFETY: the program pointer is valid for the call; the path and the
    // arrays the options point at outlive it.
    let ptr = unsafe {
        sys::bpf_program__attach_uprobe_multi(
            prog.as_libbpf_object().as_ptr(),
            pid,
            path.as_ptr(),
            std::ptr::null(),
            &opts,
        )
    };
    link_from(ptr)
}

/// A link libbpf returned, or the errno it set (libbpf 1.x returns NULL
/// with errno set on errors).
fn link_from(ptr: *mut libbpf_rs::libbpf_sys::bpf_link) -> std::io::Result<Link> {
    let ptr = std::ptr::NonNull::new(ptr).ok_or_else(std::io::Error::last_os_error)?;
    // Older libbpf: an error pointer, a small negative value.
    if (ptr.as_ptr() as isize) < 0 && (ptr.as_ptr() as isize) > -4096 {
        return Err(std::io::Error::from_raw_os_error(-(ptr.as_ptr() as isize) as i32));
    }
    // SAFETY: a valid link pointer from libbpf, owned from now on.
    Ok(unsafe { Link::from_ptr(ptr) })
}

/// Attaches `prog` at `sites` (kprobes at function entries, or their
/// returns) with one kprobe_multi link, each with its cookie; functions the
/// kernel refuses are left out as `rules` say.
pub fn attach_kprobe_multi(
    attached: &mut Attached,
    prog: &ProgramMut<'_>,
    sites: &[&AttachInfo],
    rules: MissingRules,
) -> Result<(), AttachError> {
    link_sites(attached, sites, rules, Multi::Kprobe, &|sites| kprobe_multi_link(prog, sites))
}

/// A kprobe_multi link of `prog` at `sites`, with the kernel's errno when
/// it fails.
fn kprobe_multi_link(prog: &ProgramMut<'_>, sites: &[&AttachInfo]) -> std::io::Result<Link> {
    use libbpf_rs::libbpf_sys as sys;
    use libbpf_rs::AsRawLibbpf;
    let mut names = Vec::with_capacity(sites.len());
    let mut retprobe = false;
    for info in sites {
        let ProbeSpec::Kprobe { func, ret, .. } = &info.resolved.spec else {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        };
        names.push(std::ffi::CString::new(func.as_str()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?);
        retprobe = *ret;
    }
    let mut syms: Vec<*const std::os::raw::c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let cookies: Vec<u64> = sites.iter().map(|i| i.cookie).collect();
    let opts = sys::bpf_kprobe_multi_opts {
        sz: std::mem::size_of::<sys::bpf_kprobe_multi_opts>() as _,
        syms: syms.as_mut_ptr(),
        cookies: cookies.as_ptr(),
        cnt: syms.len() as _,
        retprobe,
        ..Default::default()
    };
    // SAFETY: the program pointer is valid for the call; the names and
    // arrays the options point at outlive it.
    let ptr = unsafe {
        sys::bpf_program__attach_kprobe_multi_opts(prog.as_libbpf_object().as_ptr(), std::ptr::null(), &opts)
    };
    link_from(ptr)
}

/// Attach points for a message: the first one's name, and how many more.
fn several(sites: &[&AttachInfo]) -> String {
    match sites {
        [] => String::new(),
        [one] => one.resolved.name.clone(),
        [first, rest @ ..] => format!("{}` and {} more `", first.resolved.name, rest.len()),
    }
}

/// Where a user-space attach point goes in its file.
struct UserSite<'a> {
    path: &'a std::path::Path,
    offset: u64,
    /// The USDT semaphore's file offset, 0 for none.
    semaphore: u64,
    kernel_return: bool,
}

fn user_site(resolved: &Resolved) -> Option<UserSite<'_>> {
    match &resolved.detail {
        Detail::Uprobe(s) => {
            Some(UserSite { path: &s.path, offset: s.offset, semaphore: 0, kernel_return: s.kernel_return() })
        }
        Detail::Usdt(s) => Some(UserSite {
            path: &s.path,
            offset: s.offset,
            semaphore: s.semaphore.unwrap_or(0),
            kernel_return: false,
        }),
        _ => None,
    }
}

/// Whether this kernel has uprobe_multi links (Linux 6.6): probed once, as
/// libbpf does, by linking a trivial program to a file that cannot hold
/// uprobes (`/`), which such a kernel refuses with EBADF.
pub fn uprobe_multi_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        use libbpf_rs::libbpf_sys as sys;
        let offset: std::os::raw::c_ulong = 0;
        // SAFETY: plain data; zero is valid for every field.
        let mut link: sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
        link.sz = std::mem::size_of::<sys::bpf_link_create_opts>() as _;
        link.__bindgen_anon_1.uprobe_multi.path = c"/".as_ptr();
        link.__bindgen_anon_1.uprobe_multi.offsets = &offset;
        link.__bindgen_anon_1.uprobe_multi.cnt = 1;
        link_errno(sys::BPF_TRACE_UPROBE_MULTI, &link) == Some(libc::EBADF)
    })
}

/// Whether this kernel has kprobe_multi links (Linux 5.18, with fprobe):
/// probed once by linking a trivial program to a function that does not
/// exist, which such a kernel looks up and does not find (ESRCH, ENOENT),
/// where one without them refuses the link itself (EOPNOTSUPP, EINVAL).
/// Nothing is attached either way.
pub fn kprobe_multi_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        use libbpf_rs::libbpf_sys as sys;
        let syms = [c"rtrace_no_such_function".as_ptr()];
        // SAFETY: plain data; zero is valid for every field.
        let mut link: sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
        link.sz = std::mem::size_of::<sys::bpf_link_create_opts>() as _;
        link.__bindgen_anon_1.kprobe_multi.syms = syms.as_ptr() as *mut *const std::os::raw::c_char;
        link.__bindgen_anon_1.kprobe_multi.cnt = 1;
        matches!(link_errno(sys::BPF_TRACE_KPROBE_MULTI, &link), Some(libc::ESRCH | libc::ENOENT))
    })
}

/// The errno of linking a trivial kprobe-type program loaded for
/// `attach_type` with `link` (`None` if it did not load, or linked).
fn link_errno(
    attach_type: libbpf_rs::libbpf_sys::bpf_attach_type,
    link: &libbpf_rs::libbpf_sys::bpf_link_create_opts,
) -> Option<i32> {
    use libbpf_rs::libbpf_sys as sys;
    // r0 = 0; exit
    let insns = [
        sys::bpf_insn { code: (sys::BPF_ALU64 | sys::BPF_MOV | sys::BPF_K) as u8, ..Default::default() },
        sys::bpf_insn { code: (sys::BPF_JMP | sys::BPF_EXIT) as u8, ..Default::default() },
    ];
    // SAFETY: plain data; zero is valid for every field.
    let mut load: sys::bpf_prog_load_opts = unsafe { std::mem::zeroed() };
    load.sz = std::mem::size_of::<sys::bpf_prog_load_opts>() as _;
    load.expected_attach_type = attach_type;
    // SAFETY: the instructions and options outlive the call.
    let prog = unsafe {
        sys::bpf_prog_load(sys::BPF_PROG_TYPE_KPROBE, std::ptr::null(), c"GPL".as_ptr(), insns.as_ptr(), 2, &mut load)
    };
    if prog < 0 {
        return None;
    }
    // SAFETY: a valid program fd; what the options point at outlives the call.
    let fd = unsafe { sys::bpf_link_create(prog, 0, attach_type, link) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    // SAFETY: closing fds this function opened.
    unsafe {
        if fd >= 0 {
            libc::close(fd);
        }
        libc::close(prog);
    }
    if fd >= 0 {
        None
    } else {
        errno
    }
}

/// A timer on `cpu` running `prog`; `fail` turns a reason into the error.
fn attach_timer(
    attached: &mut Attached,
    prog: &ProgramMut<'_>,
    cpu: i32,
    timer: Timer,
    cookie: u64,
    fail: impl Fn(String) -> AttachError,
) -> Result<(), AttachError> {
    let rate = match timer {
        Timer::PeriodNs(ns) => Rate::PeriodNs(ns),
        Timer::Hz(hz) => Rate::Hz(hz),
    };
    let fd = perf::open_timer(cpu, rate).map_err(|e| fail(format!("perf_event_open on CPU {}: {}", cpu, e)))?;
    attached.push_perf(prog, fd, cookie).map_err(|e| fail(e.to_string()))
}

/// `kprobe:func+off`: libbpf-rs's options have no offset, libbpf's do.
fn kprobe_at_offset(prog: &ProgramMut<'_>, func: &str, offset: u64, cookie: u64) -> std::io::Result<Link> {
    use libbpf_rs::AsRawLibbpf;
    let name = std::ffi::CString::new(func).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let opts = libbpf_rs::libbpf_sys::bpf_kprobe_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_kprobe_opts>() as _,
        offset: offset as _,
        bpf_cookie: cookie,
        ..Default::default()
    };
    // SAFETY: the program pointer is valid for the call, name and opts outlive it.
    let ptr = unsafe {
        libbpf_rs::libbpf_sys::bpf_program__attach_kprobe_opts(prog.as_libbpf_object().as_ptr(), name.as_ptr(), &opts)
    };
    link_from(ptr)
}

/// Why kprobes cannot attach to kernel function `func`, when the kernel's
/// list of the functions they may attach to says so (read only now, after
/// an attach failed: it is long).
fn unprobeable(func: &str) -> Option<String> {
    let known = crate::system::tracefs::kprobe_functions(&crate::system::tracefs::mounted()?);
    if known.is_empty() || known.binary_search_by(|f| f.as_str().cmp(func)).is_ok() {
        return None;
    }
    let mut reason = format!(
        "kernel function `{}` cannot be probed: it is not among the functions kprobes may attach to \
         (available_filter_functions, less the kprobe blacklist)",
        func
    );
    if let Some(s) = crate::diagnostic::closest(func, known.iter().map(String::as_str)) {
        reason.push_str(&format!("; did you mean `{}`?", s));
    }
    Some(reason)
}
