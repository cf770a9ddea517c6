//! A cell for code rtrace must run but does not trust: a traced library's
//! constructors and IFUNC resolver (`ifunc`). The process gives up root for
//! `nobody` (every capability goes with it; run by another user, it drops
//! every capability it holds), can never regain privileges
//! (`no_new_privs`), and a seccomp filter lets through only the system calls
//! a dynamic loader needs: files open read-only, and writes only to stdout
//! and stderr. Anything else fails with EPERM.

use std::io;

/// `nobody`: owns nothing, may write almost nowhere.
const NOBODY: libc::uid_t = 65534;

/// `struct sock_filter`: one classic BPF instruction.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// Byte offsets in `struct seccomp_data`; an argument's low 32 bits (little endian).
const NR: u32 = 0;
const ARCH: u32 = 4;
const fn arg_low(i: u32) -> u32 {
    16 + 8 * i
}

/// System calls allowed whatever their arguments: what `dlopen`, `dlsym`,
/// `dladdr`, glibc's start-up of a library and Rust's exit need.
fn allowed() -> Vec<libc::c_long> {
    let mut calls = vec![
        libc::SYS_read,
        libc::SYS_pread64,
        libc::SYS_close,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_lseek,
        libc::SYS_mmap,
        libc::SYS_mprotect,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_faccessat,
        libc::SYS_faccessat2,
        libc::SYS_readlinkat,
        libc::SYS_getcwd,
        libc::SYS_futex,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_sigaltstack,
        libc::SYS_getrandom,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_getuid,
        libc::SYS_geteuid,
        libc::SYS_getgid,
        libc::SYS_getegid,
        libc::SYS_clock_gettime,
        libc::SYS_set_tid_address,
        libc::SYS_set_robust_list,
        libc::SYS_rseq,
        libc::SYS_prlimit64,
        libc::SYS_sched_getaffinity,
        libc::SYS_sched_yield,
        libc::SYS_uname,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([libc::SYS_stat, libc::SYS_lstat, libc::SYS_access, libc::SYS_readlink, libc::SYS_arch_prctl]);
    calls
}

/// `open` flags that would change a file.
const WRITING: u32 = (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u32;

/// The seccomp program: the architecture must be this one; allowed calls
/// pass; `openat` passes read-only; `write` only to fds 1 and 2; the rest
/// fails with EPERM.
fn filter() -> Vec<SockFilter> {
    use libc::{BPF_ABS, BPF_ALU, BPF_AND, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let stmt = |code: u32, k: u32| SockFilter { code: code as u16, jt: 0, jf: 0, k };
    let jeq = |k: u32, jt: u8, jf: u8| SockFilter { code: (BPF_JMP | BPF_JEQ | BPF_K) as u16, jt, jf, k };
    let load = |offset: u32| stmt(BPF_LD | BPF_W | BPF_ABS, offset);
    let allow = stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW);
    let deny = stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    let mut prog =
        vec![load(ARCH), jeq(AUDIT_ARCH, 1, 0), stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_KILL_PROCESS), load(NR)];
    for nr in allowed() {
        // Equal: skip the next instruction to the `allow` after it.
        prog.push(jeq(nr as u32, 0, 1));
        prog.push(allow);
    }
    // openat(dirfd, path, flags): only without a writing flag.
    prog.extend([
        jeq(libc::SYS_openat as u32, 0, 4),
        load(arg_low(2)),
        stmt(BPF_ALU | BPF_AND | BPF_K, WRITING),
        jeq(0, 0, 1),
        allow,
    ]);
    // write(fd, ...): only to stdout and stderr.
    prog.extend([load(NR), jeq(libc::SYS_write as u32, 0, 4), load(arg_low(0)), jeq(1, 1, 0), jeq(2, 0, 1), allow]);
    prog.push(deny);
    prog
}

/// Enters the cell; from here on this process is `nobody` under the filter.
/// Nothing of the untrusted code may run before this returns `Ok`.
pub fn enter() -> io::Result<()> {
    let check = |rc: libc::c_int| if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) };
    // SAFETY: plain system calls with valid arguments; the filter outlives the prctl that copies it.
    unsafe {
        if libc::geteuid() == 0 {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setresgid(NOBODY, NOBODY, NOBODY))?;
            check(libc::setresuid(NOBODY, NOBODY, NOBODY))?;
            // Leaving uid 0 for good clears every capability; make sure of it.
            if libc::setresuid(0, 0, 0) == 0 {
                return Err(io::Error::other("still able to become root after dropping it"));
            }
        } else {
            drop_capabilities()?;
        }
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        check(libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0))?;
        let filter = filter();
        let prog = SockFprog { len: filter.len() as u16, filter: filter.as_ptr() };
        check(libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const SockFprog, 0, 0))?;
    }
    Ok(())
}

/// Clears every capability set of this process (for a user other than
/// root running rtrace with CAP_BPF, CAP_PERFMON, ...).
fn drop_capabilities() -> io::Result<()> {
    /// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit halves of each set.
    const VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header { version: VERSION_3, pid: 0 };
    let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: a valid header and two data structs, as version 3 takes.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    // SAFETY: a plain prctl; ambient capabilities would survive an exec.
    if rc != 0 || unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jump_lands_inside_the_filter() {
        let prog = filter();
        for (i, insn) in prog.iter().enumerate() {
            if insn.code as u32 & 0x07 == libc::BPF_JMP {
                assert!(i + 1 + (insn.jt.max(insn.jf) as usize) < prog.len(), "jump out of range at {}", i);
            }
        }
        // The last instruction returns; the kernel refuses a filter that may fall off its end.
        assert_eq!(prog.last().unwrap().code as u32, libc::BPF_RET | libc::BPF_K);
    }
}
