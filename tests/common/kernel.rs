//! What a running rtrace holds in the kernel, and whether it is all gone
//! once rtrace has ended: its programs and links (by the ids its own file
//! descriptors name), its uprobe events, its keeper process, and "leaking
//! uprobe" lines in the kernel log.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the kernel may take to release everything after rtrace exits
/// (the keeper unregisters uprobes one grace period at a time).
const SETTLE: Duration = Duration::from_secs(15);

/// The BPF programs and links process `pid` holds, read from
/// `/proc/PID/fdinfo` (`prog_id:` and `link_id:` lines), and its keeper.
#[derive(Debug, Default)]
pub struct Held {
    pub progs: BTreeSet<u32>,
    pub links: BTreeSet<u32>,
    /// The `rtrace-keeper` child, if there is one.
    pub keeper: Option<u32>,
}

impl Held {
    pub fn of(pid: u32) -> Held {
        let mut held = Held::default();
        let dir = format!("/proc/{}/fdinfo", pid);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {}", dir, e)).flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for line in text.lines() {
                let number = |l: &str| l.split(':').nth(1).and_then(|v| v.trim().parse::<u32>().ok());
                if line.starts_with("prog_id:") {
                    held.progs.extend(number(line));
                } else if line.starts_with("link_id:") {
                    held.links.extend(number(line));
                }
            }
        }
        held.keeper = children(pid).into_iter().find(|c| comm(*c).as_deref() == Some("rtrace-keeper"));
        held
    }

    /// What is still in the kernel (or still running) of what was held.
    pub fn remaining(&self) -> Vec<String> {
        let mut left = Vec::new();
        left.extend(self.progs.iter().filter(|id| exists(Object::Prog, **id)).map(|id| format!("program {}", id)));
        left.extend(self.links.iter().filter(|id| exists(Object::Link, **id)).map(|id| format!("link {}", id)));
        if let Some(k) = self.keeper.filter(|k| running(*k)) {
            left.push(format!("keeper process {}", k));
        }
        left
    }

    /// Waits until nothing held remains; panics with what does.
    pub fn assert_released(&self, what: &str) {
        let start = Instant::now();
        loop {
            let left = self.remaining();
            if left.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < SETTLE,
                "{}: still there {:?} after rtrace ended: {}",
                what,
                SETTLE,
                left.join(", ")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[derive(Clone, Copy)]
enum Object {
    Prog,
    Link,
}

/// Whether a program or link with this id is still in the kernel.
fn exists(kind: Object, id: u32) -> bool {
    use libbpf_rs::libbpf_sys;
    // SAFETY: the GET_FD_BY_ID calls only read their argument.
    let fd = unsafe {
        match kind {
            Object::Prog => libbpf_sys::bpf_prog_get_fd_by_id(id),
            Object::Link => libbpf_sys::bpf_link_get_fd_by_id(id),
        }
    };
    if fd >= 0 {
        // SAFETY: the fd was just opened for us.
        unsafe { libc::close(fd) };
        return true;
    }
    let err = std::io::Error::last_os_error();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "get fd of BPF object {}: {}", id, err);
    false
}

fn children(pid: u32) -> Vec<u32> {
    let text = std::fs::read_to_string(format!("/proc/{}/task/{}/children", pid, pid)).unwrap_or_default();
    text.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{}/comm", pid)).ok().map(|c| c.trim_end().to_string())
}

/// A process that exists and is not a zombie.
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid)) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Uprobe events of tracefs that name process `pid` (libbpf's legacy
/// `libbpf_PID_...` events) or rtrace.
pub fn uprobe_events_of(pid: u32) -> Vec<String> {
    let roots = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
    let Some(root) = roots.iter().find(|r| Path::new(r).join("uprobe_events").exists()) else {
        return Vec::new();
    };
    let text = std::fs::read_to_string(Path::new(root).join("uprobe_events")).unwrap_or_default();
    let ours = format!("libbpf_{}_", pid);
    text.lines().filter(|l| l.contains(&ours) || l.contains("rtrace")).map(str::to_string).collect()
}

/// The kernel log's lines at one moment, to find the lines added since.
pub struct KernelLog(BTreeSet<String>);

impl KernelLog {
    pub fn mark() -> KernelLog {
        KernelLog(lines().into_iter().collect())
    }

    /// "leaking uprobe" lines added since the mark by a task named rtrace*
    /// whose id is in `tids` (the pids handed out while rtrace ran: rtrace,
    /// its threads, its keeper; other processes log too).
    pub fn leaks_since(&self, tids: std::ops::Range<u32>) -> Vec<String> {
        lines()
            .into_iter()
            .filter(|l| !self.0.contains(l) && l.contains("leaking uprobe"))
            .filter(|l| {
                // `uprobe: COMM:TID failed to unregister, leaking uprobe`
                let who = l.split("uprobe: ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("");
                let (comm, tid) = who.rsplit_once(':').unwrap_or(("", ""));
                comm.starts_with("rtrace") && tid.parse().is_ok_and(|t| tids.contains(&t))
            })
            .collect()
    }
}

fn lines() -> Vec<String> {
    let out = std::process::Command::new("dmesg").output().expect("run dmesg");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// A pid handed out now: every task started before has a smaller one
/// (until pids wrap around).
pub fn next_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().expect("run true");
    let pid = child.id();
    let _ = child.wait();
    pid
}
