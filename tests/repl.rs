//! The interactive session, driven through a pseudo-terminal as a user
//! would: real probes on a real workload, maps printed, probes detached,
//! history kept across sessions, tab completion.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);

/// rtrace on the slave side of a pseudo-terminal; the test holds the master.
struct Session {
    master: std::fs::File,
    child: Child,
    /// Everything printed so far, escape sequences and `\r` removed.
    seen: String,
    raw: Vec<u8>,
    /// `expect` looks from here on.
    cursor: usize,
}

impl Session {
    fn start(data_home: &Path) -> Session {
        let mut master = -1;
        let mut slave = -1;
        let size = libc::winsize { ws_row: 40, ws_col: 200, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: valid out-pointers; no name buffer; the window size is read.
        let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty returned two fds that are now ours.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // openpty's fds are inherited across exec: rtrace must not hold the
        // master, or closing ours would not hang the terminal up.
        // SAFETY: setting a flag on our own fd.
        unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtrace"));
        cmd.env("TERM", "xterm")
            .env("XDG_DATA_HOME", data_home)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // A session of its own with the terminal as its controlling tty.
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start rtrace");
        // SAFETY: the master fd is valid; reads poll it first.
        unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        Session { master: std::fs::File::from(master), child, seen: String::new(), raw: Vec::new(), cursor: 0 }
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        // Keys that arrive together can be taken as one escape sequence.
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Reads what is there, waiting up to `wait` for it: the bytes read
    /// (0: nothing came), or `None` once the terminal is closed.
    fn read(&mut self, wait: Duration) -> Option<usize> {
        let mut pfd = libc::pollfd { fd: self.master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as i32) };
        if ready <= 0 {
            return Some(0);
        }
        let mut buf = [0u8; 65536];
        match self.master.read(&mut buf) {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                self.seen = clean(&self.raw);
                Some(n)
            }
        }
    }

    /// Waits until `text` is printed (after what earlier expects matched);
    /// returns everything printed up to its end.
    fn expect(&mut self, text: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(at) = self.seen[self.cursor..].find(text) {
                let end = self.cursor + at + text.len();
                let out = self.seen[self.cursor..end].to_string();
                self.cursor = end;
                return out;
            }
            if start.elapsed() > TIMEOUT || self.read(Duration::from_millis(100)).is_none() {
                panic!("rtrace never printed {:?}; it printed:\n{}", text, &self.seen[self.cursor..]);
            }
        }
    }

    /// Types a line and waits for the next prompt; returns what it printed.
    fn line(&mut self, text: &str) -> String {
        self.send(text);
        // Its echo first: a prompt redrawn before it is not the next one.
        self.expect(text);
        self.send("\r");
        let out = self.expect("\nrtrace> ");
        out.strip_suffix("rtrace> ").unwrap_or(&out).to_string()
    }

    /// Waits for rtrace to exit; returns its code and what it printed last.
    fn wait(&mut self) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // What it printed last may still be in the terminal.
                while self.read(Duration::from_millis(200)).is_some_and(|n| n > 0) && start.elapsed() < TIMEOUT {}
                return (status.code().unwrap_or(-1), self.seen[self.cursor..].to_string());
            }
            assert!(start.elapsed() < TIMEOUT, "rtrace did not exit; it printed:\n{}", &self.seen[self.cursor..]);
            self.read(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text a terminal shows, roughly: escape sequences and `\r` removed.
fn clean(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() || c == '~' {
                            break;
                        }
                    }
                }
                Some(']') => {
                    for c in chars.by_ref() {
                        if c == '\x07' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' | '\x07' => {}
            c => out.push(c),
        }
    }
    out
}

/// Builds workload `name` into the test's own directory: tests run in
/// parallel, and rebuilding a binary another test traces would move its
/// probes' file away.
fn workload(name: &str, test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("repl").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/workloads/{}.c", name));
    let status = Command::new("gcc").args(["-g", "-O0", "-o"]).arg(&out).arg(&src).status().expect("run gcc");
    assert!(status.success(), "cannot build {}", src.display());
    out
}

/// Runs the add workload: one add(a, b) call per pair.
fn run_add(add: &Path, pairs: &[(i32, i32)]) {
    let args: Vec<String> = pairs.iter().flat_map(|(a, b)| [a.to_string(), b.to_string()]).collect();
    let status = Command::new(add).args(&args).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
}

fn data_home(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("repl-data").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A whole session: probes attached and shared maps, statements, commands,
/// an error that leaves everything attached, Ctrl-C, then Ctrl-D with END.
#[test]
fn live_session_on_a_workload() {
    if !common::require_root("the REPL test (it loads eBPF programs)") {
        return;
    }
    let add = workload("add", "session");
    let add_path = add.display().to_string();
    let mut s = Session::start(&data_home("session"));
    s.expect("interactive session");
    s.expect("rtrace> ");

    let out = s.line(&format!("uprobe:{}:add {{ @calls[arg0] = count(); @sum = sum(arg0 + arg1); }}", add_path));
    assert!(out.contains(&format!("Attached probe 1: uprobe:{}:add", add_path)), "{}", out);
    run_add(&add, &[(1, 2), (3, 4), (1, 5)]);
    let out = s.line("@calls");
    assert!(out.contains("@calls[1]: 2\n") && out.contains("@calls[3]: 1\n"), "{}", out);
    let out = s.line("print(@sum)");
    assert!(out.contains("@sum: 16\n"), "{}", out);

    // A later probe reads the map the first one writes (same map, reused fd).
    let out = s.line(&format!(
        "uretprobe:{}:add {{ @ret[retval] = count(); printf(\"ret %d sum %d\\n\", retval, @sum); }}",
        add_path
    ));
    assert!(out.contains("Attached probe 2: uretprobe:"), "{}", out);
    // END is kept for the quit.
    let out = s.line("END { printf(\"bye, sum %d\\n\", @sum); }");
    assert!(out.contains("Attached probe 3: END"), "{}", out);
    run_add(&add, &[(10, 20)]);
    s.expect("ret 30 sum 46\n");

    let out = s.line(":probes");
    let row = |n: &str, hits: &str| {
        out.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 4 && f[0] == n && f[2] == hits
        })
    };
    assert!(row("1", "4") && row("2", "1"), "hit counts:\n{}", out);
    assert!(out.contains("END (runs at quit)"), "{}", out);

    // Detached: probe 1 stops counting, probe 2 goes on.
    let out = s.line(":detach 1");
    assert!(out.contains("Detached probe 1"), "{}", out);
    run_add(&add, &[(1, 1)]);
    s.expect("ret 2 sum 46\n");
    let out = s.line("@calls");
    assert!(out.contains("@calls[1]: 2\n") && !out.contains("@calls[1]: 3"), "{}", out);

    // Statements at the prompt change maps.
    let out = s.line("delete(@ret[30]); @extra = 7;");
    assert!(!out.contains("error"), "{}", out);
    let out = s.line(":maps");
    assert!(out.contains("@ret[uint64]: count(), 1 entry"), "{}", out);
    assert!(out.contains("@extra: int64, 1 entry"), "{}", out);
    let out = s.line(":clear @calls");
    assert!(!out.contains("error"), "{}", out);
    let out = s.line(":maps");
    assert!(out.contains("@calls[uint64]: count(), 0 entries"), "{}", out);

    // An error shows the caret under the input; everything stays attached.
    let out = s.line("@sum = \"text\"");
    assert!(out.contains(": ERROR: "), "{}", out);
    assert!(out.contains("input ") && out.contains("@sum = \"text\"") && out.contains('^'), "{}", out);
    let out = s.line("uprobe:/no/such/binary:f { }");
    assert!(out.contains("ERROR") && out.contains("/no/such/binary"), "{}", out);
    let kprobes = ["/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"];
    if !kprobes.iter().any(|p| Path::new(p).exists()) {
        // Refused at attach time (this kernel has no kprobes): the input
        // leaves nothing behind and the next one works.
        let out = s.line("kprobe:do_nanosleep { @k = count(); printf(\"k\\n\"); }");
        assert!(out.to_lowercase().contains("error: cannot attach `kprobe:do_nanosleep`"), "{}", out);
        let out = s.line("printf(\"still %d\\n\", @sum)");
        assert!(out.contains("still 46\n"), "{}", out);
    }
    let out = s.line(":probes");
    assert!(out.contains("uretprobe:") && !out.contains("  uprobe:"), "{}", out);
    let out = s.line(":nonsense");
    assert!(out.contains("unknown command"), "{}", out);

    // Multi-line input: the braces are still open at the first Enter.
    s.send("interval:ms:100 {\r");
    s.send("@ticks = count();\r");
    let out = s.line("}");
    assert!(out.contains("Attached probe 4: interval:ms:100"), "{}", out);
    // A tick or more first: a count() map that never counted prints
    // nothing at the end (bpftrace v0.26).
    std::thread::sleep(Duration::from_millis(350));

    // Ctrl-C on an empty line stops the last input's probes, not the session.
    s.send("\x03");
    s.expect("Detached probe 4");
    s.expect("rtrace> ");
    run_add(&add, &[(2, 2)]);
    s.expect("ret 4 sum 46\n");

    // Ctrl-D: detach, END, the maps.
    s.send("\x04");
    let (code, out) = s.wait();
    assert_eq!(code, 0, "{}", out);
    assert!(out.contains("bye, sum 46\n"), "{}", out);
    assert!(out.contains("@extra: 7\n") && out.contains("@ret[4]: 1\n") && out.contains("@sum: 46\n"), "{}", out);
    // @ticks holds what the interval counted before Ctrl-C stopped it, and
    // a map that holds nothing prints nothing (bpftrace v0.26).
    assert!(!out.contains("@ticks: 0"), "{}", out);
}

/// Tab completion of probe types, tracepoints, functions and maps; history
/// saved in the data directory and offered by the next session.
#[test]
fn completion_and_history() {
    if !common::require_root("the REPL test (it loads eBPF programs)") {
        return;
    }
    let add = workload("add", "history");
    let data = data_home("history");
    let mut s = Session::start(&data);
    s.expect("rtrace> ");
    // tracep<Tab> → tracepoint:, sysc<Tab> → syscalls:, sys_enter_opena<Tab> → sys_enter_openat
    s.send("tracep\t");
    s.send("sysc\t");
    s.send("sys_enter_opena\t");
    let out = s.line(" { @opens = count(); }");
    assert!(out.contains("Attached probe 1: tracepoint:syscalls:sys_enter_openat"), "{}", out);
    s.send(&format!("uprobe:{}:ad\t", add.display()));
    let out = s.line(" { @adds = count(); }");
    assert!(out.contains(&format!("Attached probe 2: uprobe:{}:add", add.display())), "{}", out);
    run_add(&add, &[(1, 1)]);
    s.send("@ad\t");
    let out = s.line("");
    assert!(out.contains("@adds: 1\n"), "{}", out);
    s.send("pri\t");
    s.send("\t");
    // Two candidates: the first Tab inserts their common prefix, the second lists them.
    s.expect("print(");
    s.expect("printf(");
    s.expect("rtrace> print");
    // Ctrl-C with text typed discards the text.
    s.send("\x03");
    let out = s.line(":detach all");
    assert!(out.contains("Detached probes 1, 2"), "{}", out);
    let out = s.line(":probes");
    assert!(out.contains("No live probes."), "{}", out);
    let out = s.line("printf(\"from history %d\\n\", 42)");
    assert!(out.contains("from history 42"), "{}", out);
    s.send("\x04");
    assert_eq!(s.wait().0, 0);

    let history = std::fs::read_to_string(data.join("rtrace/history")).expect("history file");
    assert!(history.contains("tracepoint:syscalls:sys_enter_openat { @opens = count(); }"), "{}", history);
    assert!(history.contains("printf(\"from history %d"), "{}", history);

    // The next session recalls it: Up, Enter.
    let mut s = Session::start(&data);
    s.expect("rtrace> ");
    s.send("\x1b[A");
    let out = s.line("");
    assert!(out.contains("from history 42"), "{}", out);
    s.send("\x04");
    assert_eq!(s.wait().0, 0);
}

/// Output streams above the prompt and what is being typed is drawn again
/// below it; exit() in a probe ends the session as it ends a script, and the
/// terminal gets its settings back.
#[test]
fn output_above_the_prompt_and_exit() {
    if !common::require_root("the REPL test (it loads eBPF programs)") {
        return;
    }
    let mut s = Session::start(&data_home("exit"));
    s.expect("rtrace> ");
    // Definitions typed after a probe still count for what follows.
    let out = s.line("BEGIN { @n = 0; }");
    assert!(!out.contains("error"), "{}", out);
    let out = s.line("#define LIMIT 5");
    assert!(!out.contains("error"), "{}", out);
    let out = s.line("struct pt { int x; long y; }");
    assert!(!out.contains("error"), "{}", out);
    let out = s.line("printf(\"size %d\\n\", sizeof(struct pt))");
    assert!(out.contains("size 16\n"), "{}", out);
    let out = s.line("interval:ms:200 { printf(\"tick %d\\n\", @n); @n++; if (@n == LIMIT) { exit(); } }");
    assert!(out.contains("Attached probe 1: interval:ms:200"), "{}", out);
    s.send("@n + 1");
    s.expect("tick ");
    s.expect("\nrtrace> @n + 1");
    let (code, out) = s.wait();
    assert_eq!(code, 0, "{}", out);
    assert!(out.contains("tick 4\n") && out.contains("@n: 5\n"), "{}", out);
    // SAFETY: termios is plain data; the master fd reports the terminal's settings.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::tcgetattr(s.master.as_raw_fd(), &mut t) }, 0);
    assert!(t.c_lflag & libc::ICANON != 0 && t.c_lflag & libc::ECHO != 0, "the terminal was left in raw mode");
}

/// A long session: every input keeps only its links and programs open, so
/// fifty probes with fifty maps stay live and the prompt keeps answering.
#[test]
fn many_inputs_in_one_session() {
    if !common::require_root("the REPL test (it loads eBPF programs)") {
        return;
    }
    let mut s = Session::start(&data_home("many"));
    s.expect("rtrace> ");
    for i in 0..50 {
        let out = s.line(&format!("tracepoint:syscalls:sys_enter_getppid {{ @t{}[comm] = count(); }}", i));
        assert!(out.contains(&format!("Attached probe {}:", i + 1)), "{}", out);
    }
    // The loop workload: no step() calls, three getppid(). Under a name of
    // its own: other programs called `loop` may be calling getppid too.
    let built = workload("loop", "many");
    let own = built.with_file_name("replmany");
    std::fs::copy(&built, &own).unwrap();
    let status = Command::new(&own).args(["0", "3"]).status().unwrap();
    assert!(status.success());
    let out = s.line(":probes");
    assert_eq!(out.lines().filter(|l| l.contains("sys_enter_getppid")).count(), 50, "{}", out);
    let out = s.line(":maps");
    assert!(out.contains("@t49[string[16]]: count()"), "{}", out);
    s.send("\x04");
    let (code, out) = s.wait();
    assert_eq!(code, 0, "{}", out);
    assert!(out.contains("@t0[replmany]: 3\n") && out.contains("@t49[replmany]: 3\n"), "getppid not counted:\n{}", out);
}

/// The terminal goes away (its master side closed, as when an ssh
/// connection drops): rtrace gets SIGHUP and its writes fail. The session
/// ends as on Ctrl-D, every probe detached and released, and the failed
/// write gives exit code 3 (it used to die of SIGHUP).
#[test]
fn terminal_hangup_ends_the_session() {
    if !common::require_root("the REPL test (it loads eBPF programs)") {
        return;
    }
    let add = workload("ticker", "hangup");
    let ticker = Command::new(&add).args(["1", "10"]).stdout(Stdio::null()).spawn().unwrap();
    struct Killed(Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _ticker = Killed(ticker);
    let mut s = Session::start(&data_home("hangup"));
    s.expect("rtrace> ");
    let out = s.line(&format!("uprobe:{}:tick {{ @ticks = count(); }}", add.display()));
    assert!(out.contains("Attached probe 1:"), "{}", out);
    let out = s.line("interval:ms:50 { printf(\"tick\\n\"); }");
    assert!(out.contains("Attached probe 2:"), "{}", out);
    s.expect("tick\n");
    let held = common::kernel::Held::of(s.child.id());
    assert!(held.keeper.is_some() && !held.links.is_empty(), "{:?}", held);
    // Hang up: close the master side.
    drop(std::mem::replace(&mut s.master, std::fs::File::open("/dev/null").unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < TIMEOUT, "rtrace did not end when its terminal went away");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3), "{:?}", status);
    held.assert_released("the session after a hangup");
}
