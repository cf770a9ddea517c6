//! The keeper: a small process forked at start that holds a duplicate of
//! every uprobe link, so that the kernel unregisters uprobes in a process
//! no signal is aimed at, and of every perf event, so that their slow
//! release does not hold up rtrace's exit.
//!
//! Why: unregistering a uprobe writes the original instruction back into
//! every process that maps the probed file (`get_user_pages_remote`), and
//! that fails while the releasing task has a fatal signal pending. The
//! kernel then keeps the uprobe and its breakpoints for good ("failed to
//! unregister, leaking uprobe"). That is what happens when rtrace is
//! SIGKILLed while it detaches (a test runner's SIGTERM, then SIGKILL to the
//! process group). With the keeper holding a reference, rtrace's own close
//! of a uprobe link never unregisters anything: the keeper's does, when
//! rtrace asks for it, or when rtrace is gone (its socket reads EOF).
//!
//! The keeper also holds the perf events under tracepoint and timer links:
//! releasing one waits for an RCU grace period under the kernel's event
//! mutex, one event after the other (27 tracepoints: 0.95 s), so rtrace
//! hands them over (`release_later`) and exits without waiting.
//!
//! The keeper is in a process group of its own (a `kill -9 -PGID` meant for
//! rtrace does not reach it), holds no other file (it does not keep a pipe
//! open), and exits as soon as it has released everything after rtrace
//! closed its socket.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Requests, the first byte of a message.
const HOLD: u8 = b'H';
const RELEASE: u8 = b'R';
/// RELEASE without an answer: rtrace does not wait for it.
const RELEASE_LATER: u8 = b'L';
/// The answer to RELEASE.
const RELEASED: u8 = b'D';
/// Descriptors one RELEASE message names at most.
const PER_MESSAGE: usize = 1000;
/// Shown by `ps` and in the kernel log.
const NAME: &[u8] = b"rtrace-keeper\0";

pub struct Keeper {
    sock: Option<OwnedFd>,
    pid: libc::pid_t,
}

impl Keeper {
    /// Forks the keeper.
    pub fn start() -> io::Result<Keeper> {
        let mut fds = [-1; 2];
        // SAFETY: a valid array for the two descriptors.
        if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) }
            != 0
        {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: socketpair made two descriptors that are now ours.
        let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let parallel = single_threaded();
        // SAFETY: the child runs only async-signal-safe calls (`serve`),
        // but for threads when rtrace had one thread at the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: in the freshly forked child.
            unsafe { serve(theirs.as_raw_fd(), parallel) }
        }
        drop(theirs);
        Ok(Keeper { sock: Some(ours), pid })
    }

    /// The keeper's pid.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Hands the keeper a duplicate of `fd`; returns its number there.
    pub fn hold(&self, fd: BorrowedFd<'_>) -> io::Result<RawFd> {
        let sock = self.socket()?;
        let mut request = [HOLD];
        // u64s: aligned as a cmsghdr must be; 64 bytes hold one descriptor.
        let mut control = [0u64; 8];
        // SAFETY: plain data; every pointer set below outlives the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        let mut iov = libc::iovec { iov_base: request.as_mut_ptr() as *mut libc::c_void, iov_len: request.len() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        // SAFETY: CMSG_SPACE is arithmetic.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
        // SAFETY: the control buffer is large enough for one header and one fd.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut RawFd, fd.as_raw_fd());
        }
        // SAFETY: a valid message on our socket.
        if retry(|| unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) }) < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut answer = [0u8; 4];
        receive(sock, &mut answer)?;
        match RawFd::from_ne_bytes(answer) {
            n if n >= 0 => Ok(n),
            _ => Err(io::Error::other("the keeper could not take the descriptor")),
        }
    }

    /// Has the keeper close `held` (numbers `hold` returned), and waits
    /// until it has: the uprobes are unregistered when this returns.
    pub fn release(&self, held: &[RawFd]) -> io::Result<()> {
        let chunks = self.send_release(RELEASE, held)?;
        for _ in 0..chunks {
            let mut answer = [0u8; 1];
            receive(self.socket()?, &mut answer)?;
            if answer[0] != RELEASED {
                return Err(io::Error::other("the keeper answered out of turn"));
            }
        }
        Ok(())
    }

    /// Has the keeper close `held` without waiting: it finishes after
    /// rtrace has exited, if need be.
    pub fn release_later(&self, held: &[RawFd]) -> io::Result<()> {
        self.send_release(RELEASE_LATER, held).map(|_| ())
    }

    /// Sends `kind` messages naming `held`; returns how many.
    fn send_release(&self, kind: u8, held: &[RawFd]) -> io::Result<usize> {
        let sock = self.socket()?;
        let chunks: Vec<&[RawFd]> = held.chunks(PER_MESSAGE).collect();
        for chunk in &chunks {
            let mut message = vec![kind, 0, 0, 0];
            message.extend(chunk.iter().flat_map(|fd| fd.to_ne_bytes()));
            // SAFETY: a valid buffer on our socket.
            let sent = retry(|| unsafe {
                libc::send(sock, message.as_ptr() as *const libc::c_void, message.len(), libc::MSG_NOSIGNAL)
            });
            if sent < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(chunks.len())
    }

    fn socket(&self) -> io::Result<RawFd> {
        self.sock.as_ref().map(|s| s.as_raw_fd()).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Drop for Keeper {
    /// Closes the socket: the keeper releases what it still holds and
    /// exits. Uprobes were released before (`Attached::detach` waits for
    /// them); what may be left is perf events, whose release only takes
    /// time, so rtrace reaps the keeper if it is done and otherwise leaves
    /// it to finish (its parent then becomes init).
    fn drop(&mut self) {
        drop(self.sock.take());
        let mut status = 0;
        // SAFETY: reaping our own child if it has exited.
        unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
    }
}

/// One thread in this process: a child forked now may start threads (no
/// lock can be held by a thread that did not come along).
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1)
}

/// Repeats a call interrupted by a signal (SIGINT arrives while detaching).
fn retry(mut call: impl FnMut() -> isize) -> isize {
    loop {
        let r = call();
        if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return r;
        }
    }
}

/// One message into `buf`; EOF is an error (the keeper is gone).
fn receive(sock: RawFd, buf: &mut [u8]) -> io::Result<()> {
    // SAFETY: a valid buffer on our socket.
    let n = retry(|| unsafe { libc::recv(sock, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) });
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        0 => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
        _ => Ok(()),
    }
}

/// The keeper's life. Only async-signal-safe calls and no allocation, as
/// the parent may have had other threads, except that with `parallel` (it
/// had not) descriptors are closed on threads of their own: the kernel
/// serialises most of a uprobe's release, not all (10 uprobes: 1.14 s one
/// by one, 0.90 s in parallel, measured here).
unsafe fn serve(sock: RawFd, parallel: bool) -> ! {
    // Its own process group: a group kill meant for rtrace must not stop
    // it mid-release, which is the very thing it is for.
    libc::setpgid(0, 0);
    libc::prctl(libc::PR_SET_NAME, NAME.as_ptr() as libc::c_ulong, 0, 0, 0);
    // rtrace's handlers only set flags this process never reads.
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1] {
        libc::signal(sig, libc::SIG_DFL);
    }
    // Nothing but the socket: not the output pipe (its reader would wait
    // for the keeper), nor programs or maps (they would stay loaded).
    if sock > 0 {
        libc::syscall(libc::SYS_close_range, 0u32, (sock - 1) as u32, 0u32);
    }
    libc::syscall(libc::SYS_close_range, (sock + 1) as u32, u32::MAX, 0u32);
    let mut data = [0u8; 4 + 4 * PER_MESSAGE];
    loop {
        let mut control = [0u64; 8];
        let mut iov = libc::iovec { iov_base: data.as_mut_ptr() as *mut libc::c_void, iov_len: data.len() };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control);
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        match data[0] {
            HOLD => {
                let mut fd: RawFd = -1;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                if !cmsg.is_null() && (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const RawFd);
                }
                let answer = fd.to_ne_bytes();
                libc::send(sock, answer.as_ptr() as *const libc::c_void, answer.len(), libc::MSG_NOSIGNAL);
            }
            RELEASE | RELEASE_LATER => {
                let fds = data[4..n as usize].chunks_exact(4).map(|b| RawFd::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                if parallel {
                    std::thread::scope(|s| {
                        for fd in fds {
                            s.spawn(move || libc::close(fd));
                        }
                    });
                } else {
                    for fd in fds {
                        libc::close(fd);
                    }
                }
                if data[0] == RELEASE {
                    libc::send(sock, [RELEASED].as_ptr() as *const libc::c_void, 1, libc::MSG_NOSIGNAL);
                }
            }
            _ => {}
        }
    }
    // rtrace closed the socket, or died: release everything still held.
    libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
    libc::_exit(0)
}
