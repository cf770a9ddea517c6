//! Attaches loaded programs to their probes. Links are owned here: dropping
//! `Attached` detaches everything (uprobes through the keeper).

use super::keeper::Keeper;
use super::perf::{self, Rate};
use crate::probe::spec::Timer;
use crate::probe::{Detail, ProbeSpec, Resolved, Return};
use libbpf_rs::{Link, ProgramMut, UprobeMultiOpts, UprobeOpts};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, RawFd};
use std::rc::Rc;

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
    links: Vec<Link>,
    /// Uprobe and USDT links, apart: see `detach`.
    uprobes: Vec<Link>,
    /// Holds a duplicate of the uprobe links it could take (`held`: their
    /// numbers in the keeper) and releases them.
    keeper: Option<Rc<Keeper>>,
    held: Vec<RawFd>,
}

impl Attached {
    /// No probes yet; uprobe links will be handed to `keeper` when there is one.
    pub fn new(keeper: Option<Rc<Keeper>>) -> Attached {
        Attached { links: Vec::new(), uprobes: Vec::new(), keeper, held: Vec::new() }
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

    /// Detaches every probe and returns when all are gone.
    ///
    /// Uprobes are unregistered by the keeper (`runtime::keeper`), or else
    /// here on the calling thread, one by one: a uprobe released by a thread
    /// with a fatal signal pending is leaked by the kernel, and threads
    /// spawned for it would all be hit by a SIGKILL meant for rtrace (each
    /// one leaked a uprobe when a test runner sent SIGTERM, then SIGKILL).
    ///
    /// Other links are released in parallel: a tracepoint or perf event
    /// release waits for an RCU grace period (~70-100 ms each, measured
    /// here); the kernel serialises most of that under its event mutex, but
    /// releasing in parallel still overlaps part of it (3 tracepoints:
    /// 216 ms serially, 160 ms in parallel).
    pub fn detach(&mut self) {
        // With the keeper holding them, dropping ours unregisters nothing yet.
        drop(std::mem::take(&mut self.uprobes));
        let held = std::mem::take(&mut self.held);
        if let (Some(keeper), false) = (&self.keeper, held.is_empty()) {
            // If the keeper is gone, it released what it held when it exited.
            let _ = keeper.release(&held);
        }
        let links = std::mem::take(&mut self.links);
        if links.len() <= 1 {
            return drop(links);
        }
        std::thread::scope(|s| {
            for link in links {
                s.spawn(move || drop(link));
            }
        });
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

/// Attaches `prog` at `resolved` (not BEGIN/END, which run on demand).
/// `pid` restricts uprobes to one process.
pub fn attach_one(
    attached: &mut Attached,
    prog: &ProgramMut<'_>,
    resolved: &Resolved,
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
            attached.links.push(
                prog.attach_tracepoint(libbpf_rs::TracepointCategory::Custom(category.clone()), event).map_err(lib)?,
            );
        }
        (ProbeSpec::Uprobe { .. }, Detail::Uprobe(site)) => {
            // A Go function's uretprobe is plain uprobes at its return instructions.
            let opts = UprobeOpts { retprobe: site.kernel_return(), ..Default::default() };
            let pid = pid.map_or(-1, |p| p as i32);
            let link = prog.attach_uprobe_with_opts(pid, &site.path, site.offset as usize, opts).map_err(lib)?;
            attached.push_uprobe(link);
        }
        (ProbeSpec::Usdt { .. }, Detail::Usdt(site)) => {
            // The kernel increments the semaphore while the probe is attached.
            let opts = UprobeOpts { ref_ctr_offset: site.semaphore.unwrap_or(0) as usize, ..Default::default() };
            let pid = pid.map_or(-1, |p| p as i32);
            let link = prog.attach_uprobe_with_opts(pid, &site.path, site.offset as usize, opts).map_err(lib)?;
            attached.push_uprobe(link);
        }
        (ProbeSpec::Kprobe { func, offset, ret }, _) => {
            if !crate::system::tracefs::kprobes_available() {
                return Err(fail("this kernel has no kprobes (it was built without CONFIG_KPROBES)".into()));
            }
            let link = if *offset == 0 {
                prog.attach_kprobe(*ret, func).map_err(|e| unprobeable(func).map_or_else(|| lib(e), &fail))?
            } else {
                kprobe_at_offset(prog, func, *offset)
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
            attach_timer(attached, prog, 0, *timer, fail)?;
        }
        (ProbeSpec::Profile { timer }, _) => {
            for cpu in perf::online_cpus() {
                attach_timer(attached, prog, cpu, *timer, fail)?;
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
                let link = prog.attach_perf_event(fd.as_raw_fd()).map_err(lib)?;
                // libbpf's perf-event link closes the event fd when it is destroyed.
                let _ = fd.into_raw_fd();
                attached.links.push(link);
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

/// Attaches `prog` at `offsets` of the file of `resolved` (a uprobe site)
/// with one uprobe_multi link: its detach waits for one RCU grace period,
/// not one per site (119 return sites: 10 s as single uprobes, measured).
pub fn attach_multi(
    attached: &mut Attached,
    prog: &ProgramMut<'_>,
    resolved: &Resolved,
    offsets: &[u64],
    pid: Option<u32>,
) -> Result<(), AttachError> {
    let Detail::Uprobe(site) = &resolved.detail else {
        return Err(AttachError::Failed { probe: resolved.name.clone(), reason: "not a uprobe".into() });
    };
    let opts = UprobeMultiOpts { offsets: offsets.iter().map(|o| *o as usize).collect(), ..Default::default() };
    let pid = pid.map_or(-1, |p| p as i32);
    let link = prog
        .attach_uprobe_multi_with_opts(pid, &site.path, "", opts)
        .map_err(|e| AttachError::Failed { probe: resolved.name.clone(), reason: format!("{:#}", e) })?;
    attached.push_uprobe(link);
    Ok(())
}

/// Whether this kernel has uprobe_multi links (Linux 6.6): probed once, as
/// libbpf does, by linking a trivial program to a file that cannot hold
/// uprobes (`/`), which such a kernel refuses with EBADF.
pub fn uprobe_multi_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        use libbpf_rs::libbpf_sys as sys;
        // r0 = 0; exit
        let insns = [
            sys::bpf_insn { code: (sys::BPF_ALU64 | sys::BPF_MOV | sys::BPF_K) as u8, ..Default::default() },
            sys::bpf_insn { code: (sys::BPF_JMP | sys::BPF_EXIT) as u8, ..Default::default() },
        ];
        // SAFETY: plain data; zero is valid for every field.
        let mut load: sys::bpf_prog_load_opts = unsafe { std::mem::zeroed() };
        load.sz = std::mem::size_of::<sys::bpf_prog_load_opts>() as _;
        load.expected_attach_type = sys::BPF_TRACE_UPROBE_MULTI;
        // SAFETY: the instructions and options outlive the call.
        let prog = unsafe {
            sys::bpf_prog_load(
                sys::BPF_PROG_TYPE_KPROBE,
                std::ptr::null(),
                c"GPL".as_ptr(),
                insns.as_ptr(),
                2,
                &mut load,
            )
        };
        if prog < 0 {
            return false;
        }
        let offset: std::os::raw::c_ulong = 0;
        // SAFETY: as above.
        let mut link: sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
        link.sz = std::mem::size_of::<sys::bpf_link_create_opts>() as _;
        link.__bindgen_anon_1.uprobe_multi.path = c"/".as_ptr();
        link.__bindgen_anon_1.uprobe_multi.offsets = &offset;
        link.__bindgen_anon_1.uprobe_multi.cnt = 1;
        // SAFETY: a valid program fd; the path and offset outlive the call.
        let fd = unsafe { sys::bpf_link_create(prog, 0, sys::BPF_TRACE_UPROBE_MULTI, &link) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        // SAFETY: closing fds this function opened.
        unsafe {
            if fd >= 0 {
                libc::close(fd);
            }
            libc::close(prog);
        }
        fd < 0 && errno == Some(libc::EBADF)
    })
}

/// A timer on `cpu` running `prog`; `fail` turns a reason into the error.
fn attach_timer(
    attached: &mut Attached,
    prog: &ProgramMut<'_>,
    cpu: i32,
    timer: Timer,
    fail: impl Fn(String) -> AttachError,
) -> Result<(), AttachError> {
    let rate = match timer {
        Timer::PeriodNs(ns) => Rate::PeriodNs(ns),
        Timer::Hz(hz) => Rate::Hz(hz),
    };
    let fd = perf::open_timer(cpu, rate).map_err(|e| fail(format!("perf_event_open on CPU {}: {}", cpu, e)))?;
    let link = prog.attach_perf_event(fd.as_raw_fd()).map_err(|e| fail(e.to_string()))?;
    // libbpf's perf-event link closes the event fd when it is destroyed.
    let _ = fd.into_raw_fd();
    attached.links.push(link);
    Ok(())
}

/// `kprobe:func+off`: libbpf-rs's options have no offset, libbpf's do.
fn kprobe_at_offset(prog: &ProgramMut<'_>, func: &str, offset: u64) -> std::io::Result<Link> {
    use libbpf_rs::AsRawLibbpf;
    let name = std::ffi::CString::new(func).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let opts = libbpf_rs::libbpf_sys::bpf_kprobe_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_kprobe_opts>() as _,
        offset: offset as _,
        ..Default::default()
    };
    // SAFETY: the program pointer is valid for the call, name and opts outlive it.
    let ptr = unsafe {
        libbpf_rs::libbpf_sys::bpf_program__attach_kprobe_opts(prog.as_libbpf_object().as_ptr(), name.as_ptr(), &opts)
    };
    let ptr = std::ptr::NonNull::new(ptr).ok_or_else(std::io::Error::last_os_error)?;
    // libbpf returns error pointers as small negative values.
    if (ptr.as_ptr() as isize) < 0 && (ptr.as_ptr() as isize) > -4096 {
        return Err(std::io::Error::from_raw_os_error(-(ptr.as_ptr() as isize) as i32));
    }
    // SAFETY: a valid link pointer from libbpf, owned from now on.
    Ok(unsafe { Link::from_ptr(ptr) })
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
