//! `perf_event_open` for timer, software, hardware and watchpoint probes,
//! and tracepoints: libbpf-rs attaches a program to a perf event fd but
//! does not open one (and rtrace keeps a tracepoint's event apart from its
//! link, so that the keeper can release it: `attach`).

use crate::probe::perf_events::PERF_TYPE_SOFTWARE;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5` (112 bytes).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period_or_freq: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved: u16,
}

/// `PERF_COUNT_SW_CPU_CLOCK`: the clock timer probes count.
const CPU_CLOCK: u64 = 0;
/// `attr.freq`: `sample_freq` instead of `sample_period`.
const FLAG_FREQ: u64 = 1 << 10;
/// `attr.inherit`: the event follows the threads the task creates.
const FLAG_INHERIT: u64 = 1 << 1;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// How often a timer event fires.
#[derive(Clone, Copy, Debug)]
pub enum Rate {
    PeriodNs(u64),
    Hz(u64),
}

/// A software cpu-clock event on `cpu` (all processes) firing at `rate`.
pub fn open_timer(cpu: i32, rate: Rate) -> io::Result<OwnedFd> {
    let (period, flags) = match rate {
        Rate::PeriodNs(ns) => (ns, 0),
        Rate::Hz(hz) => (hz, FLAG_FREQ),
    };
    open(
        PerfEventAttr {
            type_: PERF_TYPE_SOFTWARE,
            config: CPU_CLOCK,
            sample_period_or_freq: period,
            flags,
            ..Default::default()
        },
        cpu,
    )
}

/// A counting perf event (`type_`/`config` as in `perf_event_attr`) on
/// `cpu`, all processes, that runs the attached program every `period` events.
pub fn open_event(type_: u32, config: u64, cpu: i32, period: u64) -> io::Result<OwnedFd> {
    open(PerfEventAttr { type_, config, sample_period_or_freq: period.max(1), ..Default::default() }, cpu)
}

/// `PERF_TYPE_BREAKPOINT`: a hardware breakpoint (watchpoint).
const PERF_TYPE_BREAKPOINT: u32 = 5;

/// A hardware breakpoint on `len` bytes at `addr`, firing on the accesses
/// `mode` names (`r`, `w`, `rw`, `x`): in process `pid` on any CPU, or with
/// no pid on `cpu` in whatever runs there (a kernel address).
pub fn open_breakpoint(addr: u64, len: u64, mode: &str, pid: Option<u32>, cpu: i32) -> io::Result<OwnedFd> {
    // HW_BREAKPOINT_R, _W, _X.
    let bp_type = mode.chars().map(|c| match c {
        'r' => 1,
        'w' => 2,
        _ => 4,
    });
    // An execution breakpoint covers an instruction: the kernel wants a
    // long's length there.
    let len = if mode == "x" { std::mem::size_of::<libc::c_long>() as u64 } else { len };
    let attr = PerfEventAttr {
        type_: PERF_TYPE_BREAKPOINT,
        sample_period_or_freq: 1,
        bp_type: bp_type.fold(0, |a, b| a | b),
        // `bp_addr` and `bp_len` share their places with config1 and config2.
        config1: addr,
        config2: len,
        // Threads the watched one creates later watch too.
        flags: if pid.is_some() { FLAG_INHERIT } else { 0 },
        ..Default::default()
    };
    match pid {
        Some(tid) => open_on(attr, tid as i32, -1),
        None => open_on(attr, -1, cpu),
    }
}

/// The threads of process `pid` (itself when it has no others, or is gone).
pub fn threads(pid: u32) -> Vec<u32> {
    let mut tids: Vec<u32> = std::fs::read_dir(format!("/proc/{}/task", pid))
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if tids.is_empty() {
        tids.push(pid);
    }
    tids.sort_unstable();
    tids
}

/// `PERF_TYPE_TRACEPOINT`.
const PERF_TYPE_TRACEPOINT: u32 = 2;

/// The perf event of tracepoint `id` (tracefs `events/CAT/NAME/id`), as
/// libbpf opens it: all processes, CPU 0 (a program attached to it runs on
/// every CPU).
pub fn open_tracepoint(id: u64) -> io::Result<OwnedFd> {
    open(PerfEventAttr { type_: PERF_TYPE_TRACEPOINT, config: id, ..Default::default() }, 0)
}

/// `perf_event_open(attr, pid -1, cpu, group -1, CLOEXEC)`.
fn open(attr: PerfEventAttr, cpu: i32) -> io::Result<OwnedFd> {
    open_on(attr, -1, cpu)
}

/// `perf_event_open(attr, pid, cpu, group -1, CLOEXEC)`.
fn open_on(mut attr: PerfEventAttr, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    attr.size = std::mem::size_of::<PerfEventAttr>() as u32;
    // SAFETY: attr is a valid, fully initialised perf_event_attr of the size it declares.
    let fd = unsafe {
        libc::syscall(libc::SYS_perf_event_open, &attr as *const PerfEventAttr, pid, cpu, -1i32, PERF_FLAG_FD_CLOEXEC)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Online CPU numbers (from /sys/devices/system/cpu/online, e.g. `0-1`).
pub fn online_cpus() -> Vec<i32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_else(|_| "0".into());
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    cpus.extend(a..=b);
                }
            }
            None => cpus.extend(part.parse::<i32>().ok()),
        }
    }
    cpus
}
