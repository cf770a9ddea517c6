//! The kernel is left as rtrace found it, however rtrace ends: SIGINT,
//! SIGTERM, SIGHUP, exit(), the end of the `-c` command or of the `-p`
//! process, a closed stdout, SIGKILL (also in the middle of detaching, as a
//! test runner's SIGTERM then SIGKILL does). Each case runs the real binary
//! with uprobes on live workload processes (the probes whose release can
//! fail), a tracepoint and a timer; it reads the program and link ids rtrace
//! holds from /proc/PID/fdinfo, and checks afterwards that none of them is
//! left in the kernel, that no uprobe event of rtrace's remains, that the
//! keeper process is gone, and that the kernel logged no "leaking uprobe".

mod common;

use common::kernel::{self, Held, KernelLog};
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NOTIFY: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED";
const TIMEOUT: Duration = Duration::from_secs(20);

/// One case at a time: the kernel log is shared, and detaching is timed.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Copies of the ticker workload the tests may use at most.
const TICKERS: usize = 4;

/// `n` copies of `ticker` (separate files: separate uprobes), built once.
fn tickers(n: usize) -> Vec<PathBuf> {
    static BUILT: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();
    let all = BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lifecycle");
        std::fs::create_dir_all(&dir).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/ticker.c");
        (0..TICKERS)
            .map(|i| {
                let out = dir.join(format!("ticker{}", i));
                let status =
                    Command::new("gcc").args(["-g", "-O0", "-o"]).arg(&out).arg(&src).status().expect("run gcc");
                assert!(status.success(), "cannot build {}", src.display());
                out
            })
            .collect()
    });
    all[..n].to_vec()
}

/// Processes killed (and reaped) when dropped.
struct Workload(Vec<Child>);

impl Workload {
    /// Each binary running, calling tick() every 10 ms.
    fn start(bins: &[PathBuf]) -> Workload {
        Workload(
            bins.iter()
                .map(|b| Command::new(b).args(["1", "10"]).stdout(Stdio::null()).spawn().expect("start ticker"))
                .collect(),
        )
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A uprobe and a uretprobe on tick() of each binary, a tracepoint, a timer
/// and END.
fn program(bins: &[PathBuf], extra: &str) -> String {
    let mut p = String::new();
    for b in bins {
        p.push_str(&format!("uprobe:{0}:tick, uretprobe:{0}:tick {{ @ticks[probe] = count(); }}\n", b.display()));
    }
    p.push_str("tracepoint:syscalls:sys_enter_nanosleep { @sleeps = count(); }\n");
    p.push_str("interval:ms:50 { @intervals = count(); }\n");
    p.push_str(extra);
    p.push_str("END { printf(\"end\\n\"); }\n");
    p
}

/// Where rtrace's stdout goes.
enum Out {
    Read,
    Take,
    File(std::fs::File),
}

/// rtrace, running in a process group of its own, and what it printed.
struct Tracer {
    child: Child,
    pid: u32,
    stderr: mpsc::Receiver<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
    /// With `Out::Take`: stdout after the attach notice, and the lines
    /// before it.
    taken: Option<(BufReader<ChildStdout>, Vec<String>)>,
    /// A message once rtrace said its probes are attached.
    attached: mpsc::Receiver<()>,
}

impl Tracer {
    /// Starts rtrace and waits until its probes are attached: the notice
    /// bpftrace v0.26 prints on stdout, or (stdout being a file) the
    /// `Attached N probes` banner on stderr. Its stdout is read to the end,
    /// or left to the test (`Out::Take`), or a file.
    fn start(args: &[&str], out: Out) -> Tracer {
        let tracer = Tracer::spawn(args, out);
        let start = Instant::now();
        loop {
            if tracer.attached.recv_timeout(Duration::from_millis(100)).is_ok() {
                return tracer;
            }
            // Before it attached rtrace says the banner, and maybe a
            // warning (libc's `pthread_spin_lock` cannot be probed), no error.
            if let Some(line) = tracer.stderr.try_iter().find(|l| l.contains("ERROR")) {
                panic!("rtrace said on stderr before attaching: {}", line);
            }
            assert!(start.elapsed() < TIMEOUT, "rtrace did not attach within {:?}", TIMEOUT);
        }
    }

    /// Starts rtrace (with `Out::Take`, up to its attach notice).
    fn spawn(args: &[&str], out: Out) -> Tracer {
        let mode = match &out {
            Out::Read => 'r',
            Out::Take => 't',
            Out::File(_) => 'f',
        };
        let stdout = match out {
            Out::File(f) => Stdio::from(f),
            _ => Stdio::piped(),
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtrace"));
        cmd.args(args).env(NOTIFY, "1").stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped());
        // SAFETY: setpgid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start rtrace");
        let pid = child.id();
        let (tx, stderr) = mpsc::channel();
        let (attached_tx, attached) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        let banner_tx = attached_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if mode == 'f' && line.starts_with("Attached ") {
                    let _ = banner_tx.send(());
                } else if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut taken = None;
        let mut stdout = None;
        match mode {
            'r' => {
                let mut out = BufReader::new(child.stdout.take().unwrap());
                stdout = Some(std::thread::spawn(move || {
                    let mut s = String::new();
                    let mut line = String::new();
                    while out.read_line(&mut line).is_ok_and(|n| n > 0) {
                        if line.trim_end() == NOTIFY {
                            let _ = attached_tx.send(());
                        } else {
                            s.push_str(&line);
                        }
                        line.clear();
                    }
                    s
                }));
            }
            't' => {
                let mut out = BufReader::new(child.stdout.take().unwrap());
                let mut before = Vec::new();
                loop {
                    let mut line = String::new();
                    let n = out.read_line(&mut line).unwrap();
                    assert!(n > 0, "rtrace closed stdout before attaching: {:?}", before);
                    if line.trim_end() == NOTIFY {
                        break;
                    }
                    before.push(line);
                }
                taken = Some((out, before));
                let _ = attached_tx.send(());
            }
            _ => {}
        }
        Tracer { child, pid, stderr, stdout, taken, attached }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid as i32, sig) };
    }

    /// Waits for rtrace to end; returns its status, stdout and stderr.
    fn wait(&mut self) -> (ExitStatus, String, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < TIMEOUT, "rtrace did not exit within {:?}", TIMEOUT);
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self.stdout.take().map(|h| h.join().unwrap()).unwrap_or_default();
        // The banner is expected (it may come after the attach notice).
        let stderr: Vec<String> = self.stderr.try_iter().filter(|l| !l.starts_with("Attached ")).collect();
        (status, stdout, stderr.join("\n"))
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A case: `run` starts rtrace (its pid is the first task of the case),
/// ends it, and returns what it held and how it ended; then everything it
/// held must be released and nothing leaked.
fn case(name: &str, run: impl FnOnce() -> (Held, u32)) {
    if !common::require_root(&format!("lifecycle: {} (loads eBPF)", name)) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let log = KernelLog::mark();
    let first = kernel::next_pid();
    let (held, pid) = run();
    assert!(!held.progs.is_empty() && !held.links.is_empty(), "{}: rtrace held no programs or links: {:?}", name, held);
    assert!(held.keeper.is_some(), "{}: rtrace runs no keeper", name);
    held.assert_released(name);
    let events = kernel::uprobe_events_of(pid);
    assert!(events.is_empty(), "{}: uprobe events left: {:?}", name, events);
    let leaks = log.leaks_since(first..kernel::next_pid());
    assert!(leaks.is_empty(), "{}: the kernel leaked uprobes:\n{}", name, leaks.join("\n"));
}

/// rtrace ended by `sig` runs END, prints its maps and exits 0.
fn ends_cleanly_on(sig: i32, name: &str) {
    case(name, || {
        let bins = tickers(3);
        let _work = Workload::start(&bins);
        let mut t = Tracer::start(&["-e", &program(&bins, "")], Out::Read);
        let held = Held::of(t.pid);
        std::thread::sleep(Duration::from_millis(200));
        t.signal(sig);
        let (status, out, err) = t.wait();
        assert_eq!(status.code(), Some(0), "{}: {:?}\n{}\n{}", name, status, out, err);
        assert!(out.contains("end\n") && out.contains("@ticks[uprobe:"), "{}: END or maps missing:\n{}", name, out);
        (held, t.pid)
    });
}

#[test]
fn sigint() {
    ends_cleanly_on(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm() {
    ends_cleanly_on(libc::SIGTERM, "SIGTERM");
}

/// bpftrace dies of SIGHUP (no END, no maps); rtrace ends as on SIGTERM.
#[test]
fn sighup() {
    ends_cleanly_on(libc::SIGHUP, "SIGHUP");
}

#[test]
fn exit_call() {
    case("exit()", || {
        let bins = tickers(3);
        let _work = Workload::start(&bins);
        let mut t = Tracer::start(&["-e", &program(&bins, "interval:ms:300 { exit(); }\n")], Out::Read);
        let held = Held::of(t.pid);
        let (status, out, err) = t.wait();
        assert_eq!(status.code(), Some(0), "{:?}\n{}\n{}", status, out, err);
        assert!(out.contains("end\n"), "{}", out);
        (held, t.pid)
    });
}

#[test]
fn command_exits() {
    case("-c", || {
        let bins = tickers(3);
        let _work = Workload::start(&bins[1..]);
        // 30 ticks of 10 ms.
        let command = format!("{} 1 10 30", bins[0].display());
        let mut t = Tracer::start(&["-c", &command, "-e", &program(&bins, "")], Out::Read);
        let held = Held::of(t.pid);
        let (status, out, err) = t.wait();
        assert_eq!(status.code(), Some(0), "{:?}\n{}\n{}", status, out, err);
        assert!(out.contains("end\n") && out.contains("@ticks[uprobe:"), "{}", out);
        (held, t.pid)
    });
}

#[test]
fn traced_process_exits() {
    case("-p", || {
        let bins = tickers(3);
        let mut work = Workload::start(&bins);
        let target = work.0[0].id().to_string();
        let mut t = Tracer::start(&["-p", &target, "-e", &program(&bins[..1], "")], Out::Read);
        let held = Held::of(t.pid);
        std::thread::sleep(Duration::from_millis(200));
        let _ = work.0[0].kill();
        let _ = work.0[0].wait();
        let (status, out, err) = t.wait();
        assert_eq!(status.code(), Some(0), "{:?}\n{}\n{}", status, out, err);
        assert!(out.contains("end\n"), "{}", out);
        (held, t.pid)
    });
}

/// `rtrace ... | head -1`: the reader goes away; rtrace ends quietly with 0.
fn closed_stdout(format: &str) {
    case(&format!("closed stdout (-f {})", format), || {
        let bins = tickers(2);
        let _work = Workload::start(&bins);
        let prog = program(&bins, "interval:ms:100 { printf(\"tick\\n\"); }\n");
        let mut t = Tracer::start(&["-f", format, "-e", &prog], Out::Take);
        let held = Held::of(t.pid);
        let (mut out, before) = t.taken.take().unwrap();
        // JSON says it attached in the output, text on stderr.
        assert_eq!(before.iter().any(|l| l.contains("attached_probes")), format == "json", "{:?}", before);
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        assert!(first.contains("tick"), "{}", first);
        drop(out);
        let (status, _, err) = t.wait();
        assert_eq!(status.code(), Some(0), "{:?}: {}", status, err);
        assert!(err.is_empty(), "a closed pipe is not worth a message: {}", err);
        (held, t.pid)
    });
}

#[test]
fn closed_stdout_text() {
    closed_stdout("text");
}

#[test]
fn closed_stdout_json() {
    closed_stdout("json");
}

/// A full disk: rtrace stops with a message and exit code 3.
#[test]
fn full_stdout() {
    case("stdout on /dev/full", || {
        let bins = tickers(2);
        let _work = Workload::start(&bins);
        let prog = program(&bins, "interval:ms:100 { printf(\"tick\\n\"); }\n");
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut t = Tracer::start(&["-e", &prog], Out::File(full));
        let held = Held::of(t.pid);
        let (status, _, err) = t.wait();
        assert_eq!(status.code(), Some(3), "{:?}: {}", status, err);
        assert!(err.contains("ERROR: cannot write to stdout: No space left on device"), "{}", err);
        (held, t.pid)
    });
}

#[test]
fn sigkill() {
    case("SIGKILL", || {
        let bins = tickers(3);
        let _work = Workload::start(&bins);
        let mut t = Tracer::start(&["-e", &program(&bins, "")], Out::Read);
        let held = Held::of(t.pid);
        t.signal(libc::SIGKILL);
        let (status, _, _) = t.wait();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        (held, t.pid)
    });
}

/// What a test runner does at a timeout: SIGTERM, then SIGKILL to the whole
/// process group while rtrace is still detaching its uprobes. Each uprobe
/// released by a dying task is leaked by the kernel.
#[test]
fn sigkill_while_detaching() {
    case("SIGTERM then SIGKILL to the group", || {
        let bins = tickers(4);
        let _work = Workload::start(&bins);
        // Thousands of sites, so that detaching takes a while.
        // Entries only: a uretprobe on every function of libc can kill a
        // process (SIGILL) that returns through one as it is removed.
        let prog = program(&bins, "uprobe:libc:* { @libc = count(); }\n");
        let mut t = Tracer::start(&["-e", &prog], Out::Read);
        let held = Held::of(t.pid);
        let keeper = held.keeper.expect("a keeper");
        let before = Held::of(keeper).links.len();
        t.signal(libc::SIGTERM);
        // The keeper has started closing the links it holds.
        let start = Instant::now();
        while Held::of(keeper).links.len() == before {
            assert!(start.elapsed() < TIMEOUT, "rtrace did not start detaching");
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-(t.pid as i32), libc::SIGKILL) };
        let (status, _, _) = t.wait();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "rtrace ended before the SIGKILL: detach was too fast to test"
        );
        (held, t.pid)
    });
}

/// SIGINT while rtrace attaches thousands of uprobes (every function of
/// libc): it stops attaching at once, detaches what it attached, runs END,
/// prints its maps and exits within a second.
#[test]
fn sigint_while_attaching() {
    case("SIGINT while attaching", || {
        // Entries only: a uretprobe on every function of libc can kill a
        // process (SIGILL) that returns through one as it is removed.
        let prog = "uprobe:libc:* { @calls = count(); } END { printf(\"end\\n\"); }";
        let mut t = Tracer::spawn(&["-e", prog], Out::Read);
        // The first links are there: rtrace is attaching.
        let start = Instant::now();
        let held = loop {
            let held = Held::of(t.pid);
            if !held.links.is_empty() {
                break held;
            }
            assert!(start.elapsed() < TIMEOUT, "rtrace attached nothing within {:?}", TIMEOUT);
            std::thread::sleep(Duration::from_millis(2));
        };
        let sent = Instant::now();
        t.signal(libc::SIGINT);
        let (status, out, err) = t.wait();
        let took = sent.elapsed();
        assert!(
            t.attached.try_recv().is_err(),
            "rtrace had attached everything before the SIGINT: nothing was interrupted"
        );
        assert_eq!(status.code(), Some(0), "{:?}\n{}\n{}", status, out, err);
        assert!(out.contains("end\n") && out.contains("@calls: "), "END or maps missing:\n{}", out);
        assert!(took < Duration::from_secs(1), "rtrace took {:?} to end after SIGINT", took);
        (held, t.pid)
    });
}
