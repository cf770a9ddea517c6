//! How often the kernel ran a program (the REPL's `:probes` hits): the
//! kernel counts runs only while someone holds `BPF_ENABLE_STATS` open.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Turns run-time statistics on for as long as the returned fd is open.
pub fn enable() -> Option<OwnedFd> {
    // SAFETY: a plain syscall wrapper; a negative result is an error.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME) };
    // SAFETY: a non-negative fd from the kernel is ours to own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// How many times the kernel ran a program (needs the statistics on).
pub fn run_count(prog: BorrowedFd<'_>) -> Option<u64> {
    use libbpf_rs::libbpf_sys::{bpf_prog_get_info_by_fd, bpf_prog_info};
    // SAFETY: bpf_prog_info is plain data; zero is a valid value.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<bpf_prog_info>() as u32;
    // SAFETY: info and len are valid for the call; the fd is a program's.
    let rc = unsafe { bpf_prog_get_info_by_fd(prog.as_raw_fd(), &mut info, &mut len) };
    (rc == 0).then_some(info.run_cnt)
}
