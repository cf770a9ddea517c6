//! The runtime golden-test harness: each case of a suite (`tests/SUITE/*.test`,
//! format in `tests/scripts/README.md`) runs the real `rtrace` binary on the
//! kernel against real workload programs (`tests/workloads/`, built on
//! demand), and what it prints is checked. `tests/scripts.rs` runs the
//! `scripts` suite on this kernel; `tests/kernel.rs` runs the `kernel` suite
//! inside a VM booted with a kernel that has kprobes and fentry.

use regex::Regex;
// The same shell-like splitting rtrace applies to `-c CMD`.
use rtrace::runtime::child::split_command;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const NOTIFY: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED";
const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);
const KILL_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Case {
    /// The suite (directory under `tests/`) the case is in.
    suite: String,
    /// `file:line` of the NAME line.
    origin: String,
    name: String,
    prog: Option<String>,
    script: Option<String>,
    args: Vec<String>,
    run: Vec<String>,
    build: Vec<String>,
    before: Option<String>,
    after: Option<String>,
    expects: Vec<Expect>,
    exit_code: i32,
    timeout: Option<Duration>,
    env: Vec<(String, String)>,
    rtrace_only: bool,
    /// The tracer must end by itself, before TIMEOUT.
    self_exit: bool,
    /// A command the tracer runs under (`unshare --pid --fork`).
    wrap: Vec<String>,
}

#[derive(Debug)]
enum Expect {
    /// Some stdout line matches.
    Line(String),
    /// No stdout line matches.
    NoLine(String),
    /// Some stderr line matches.
    Stderr(String),
    /// No stderr line matches.
    NoStderr(String),
    /// These lines appear in stdout, contiguous and in order.
    Lines(Vec<String>),
    /// Stdout has contiguous lines that these patterns match, in order.
    Matching(Vec<String>),
    /// Stdout is exactly this.
    Exact(String),
    /// A line of this file (in the build directory) matches.
    File(String, String),
    /// This file (in the build directory, or an absolute path) does not exist.
    NoFile(String),
}

fn parse_cases(suite: &str, path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap();
    let file = path.file_name().unwrap().to_string_lossy().to_string();
    let mut cases: Vec<Case> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        if key == "NAME" {
            cases.push(Case {
                suite: suite.to_string(),
                origin: format!("{}:{}", file, n + 1),
                name: rest.to_string(),
                ..Case::default()
            });
            continue;
        }
        let case = cases.last_mut().unwrap_or_else(|| panic!("{}:{}: `{}` before NAME", file, n + 1, key));
        let mut block = || -> Vec<String> {
            let mut out = Vec::new();
            for (_, l) in lines.by_ref() {
                if l == "END" {
                    return out;
                }
                out.push(l.to_string());
            }
            panic!("{}: block without END", case.origin);
        };
        match key {
            "PROG" => case.prog = Some(rest.to_string()),
            "SCRIPT" => case.script = Some(rest.to_string()),
            "ARGS" => case.args = split_command(rest).unwrap_or_else(|e| panic!("{}:{}: {}", file, n + 1, e)),
            "RUN" => case.run = split_command(rest).unwrap_or_else(|e| panic!("{}:{}: {}", file, n + 1, e)),
            "WRAP" => case.wrap = split_command(rest).unwrap_or_else(|e| panic!("{}:{}: {}", file, n + 1, e)),
            "BUILD" => case.build = rest.split_whitespace().map(String::from).collect(),
            "BEFORE" => case.before = Some(rest.to_string()),
            "AFTER" => case.after = Some(rest.to_string()),
            "EXPECT" => case.expects.push(Expect::Line(rest.to_string())),
            "EXPECT_NONE" => case.expects.push(Expect::NoLine(rest.to_string())),
            "EXPECT_STDERR" => case.expects.push(Expect::Stderr(rest.to_string())),
            "EXPECT_STDERR_NONE" => case.expects.push(Expect::NoStderr(rest.to_string())),
            "EXPECT_FILE" => {
                let (file, pat) = rest.split_once(' ').unwrap_or((rest, ""));
                case.expects.push(Expect::File(file.to_string(), pat.to_string()));
            }
            "EXPECT_NO_FILE" => case.expects.push(Expect::NoFile(rest.trim().to_string())),
            "EXPECT_LINES" => {
                let b = block();
                case.expects.push(Expect::Lines(b));
            }
            "EXPECT_MATCHING" => {
                let b = block();
                case.expects.push(Expect::Matching(b));
            }
            "EXPECT_EXACT" => {
                let b = block();
                case.expects.push(Expect::Exact(b.iter().map(|l| format!("{}\n", l)).collect()));
            }
            "EXIT_CODE" => case.exit_code = rest.trim().parse().unwrap(),
            "TIMEOUT" => case.timeout = Some(Duration::from_secs_f64(rest.trim().parse().unwrap())),
            "ENV" => {
                let (k, v) = rest.split_once('=').unwrap();
                case.env.push((k.to_string(), v.to_string()));
            }
            "RTRACE_ONLY" => case.rtrace_only = true,
            "SELF_EXIT" => case.self_exit = true,
            other => panic!("{}:{}: unknown directive `{}`", file, n + 1, other),
        }
    }
    cases
}

/// Builds workload programs on demand into one directory per test run.
struct Workloads {
    src: PathBuf,
    dir: PathBuf,
    built: Vec<String>,
}

impl Workloads {
    fn new() -> Workloads {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("workloads");
        std::fs::create_dir_all(&dir).unwrap();
        Workloads { src: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads"), dir, built: vec![] }
    }

    fn build(&mut self, name: &str) -> Result<(), String> {
        if self.built.iter().any(|b| b == name) {
            return Ok(());
        }
        let out = self.dir.join(name);
        // `usdt-O2` is `usdt.c` optimised; everything else is built at -O0.
        let (base, opt) = name.strip_suffix("-O2").map_or((name, "-O0"), |b| (b, "-O2"));
        let c_src = self.src.join(format!("{}.c", base));
        let cxx_src = self.src.join(format!("{}.cpp", base));
        let rs_src = self.src.join(format!("{}.rs", base));
        let go_src = self.src.join(name);
        let mut cmd = if rs_src.exists() {
            let mut c = Command::new("rustc");
            c.args(["-g", "-C", "opt-level=0", "-o"]).arg(&out).arg(&rs_src);
            c
        } else if c_src.exists() || cxx_src.exists() {
            let (compiler, src) = if c_src.exists() { ("gcc", &c_src) } else { ("g++", &cxx_src) };
            let mut c = Command::new(compiler);
            c.args(["-g", opt, "-o"]).arg(&out).arg(src);
            // A first line `// BUILD_FLAGS: ...` adds compiler flags.
            let text = std::fs::read_to_string(src).unwrap_or_default();
            if let Some(flags) = text.lines().next().and_then(|l| l.strip_prefix("// BUILD_FLAGS:")) {
                c.args(flags.split_whitespace());
            }
            c
        } else if go_src.join("go.mod").exists() {
            super::go_build(&go_src, &out, &[], None, &self.dir)
        } else {
            return Err(format!("no workload `{}` in {}", name, self.src.display()));
        };
        let res = cmd.output().map_err(|e| format!("cannot build `{}`: {}", name, e))?;
        if !res.status.success() {
            return Err(format!("building `{}` failed:\n{}", name, String::from_utf8_lossy(&res.stderr)));
        }
        self.built.push(name.to_string());
        Ok(())
    }
}

/// Kills the process group on drop, so no tracer or workload outlives a test.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
}

fn spawn_group(cmd: &mut Command) -> std::io::Result<Group> {
    // SAFETY: setpgid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setpgid(0, 0);
            Ok(())
        });
    }
    cmd.spawn().map(Group)
}

struct Outcome {
    stdout: String,
    stderr: String,
    code: Option<i32>,
    interrupted: bool,
}

fn run_case(case: &Case, bin: &[String], wl: &mut Workloads) -> Result<Outcome, String> {
    for b in &case.build {
        wl.build(b)?;
    }
    // A process started before the tracer; `{BEFORE_PID}` in RUN and PROG is its pid.
    let before = match &case.before {
        Some(b) => {
            let g = spawn_group(
                Command::new("sh")
                    .arg("-c")
                    .arg(format!("exec {}", b))
                    .current_dir(&wl.dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
            .map_err(|e| format!("cannot run BEFORE: {}", e))?;
            std::thread::sleep(Duration::from_millis(200));
            Some(g)
        }
        None => None,
    };
    let pid = before.as_ref().map(|g| g.0.id().to_string()).unwrap_or_default();
    let subst = |s: &String| s.replace("{BEFORE_PID}", &pid);
    let argv: Vec<&String> = case.wrap.iter().chain(bin).collect();
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).args(case.run.iter().map(subst));
    match (&case.prog, &case.script) {
        (Some(p), _) => {
            cmd.arg("-e").arg(subst(p));
        }
        (None, Some(s)) => {
            cmd.arg(suite_dir(&case.suite).join(s));
        }
        (None, None) => {}
    }
    cmd.args(&case.args)
        .current_dir(&wl.dir)
        .env(NOTIFY, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    let mut tracer = spawn_group(&mut cmd).map_err(|e| format!("cannot run {}: {}", bin[0], e))?;
    let (tx, rx) = mpsc::channel();
    // bpftrace v0.26 (and rtrace) say they attached on stdout, bpftrace
    // 0.17 on stderr: either reader passes the line on, stdout drops it.
    let mut out = BufReader::new(tracer.0.stdout.take().unwrap());
    let attached_tx = tx.clone();
    let stdout_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut line = Vec::new();
        while out.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            if line.strip_suffix(b"\n") == Some(NOTIFY.as_bytes()) {
                let _ = attached_tx.send(NOTIFY.to_string());
            } else {
                buf.extend_from_slice(&line);
            }
            line.clear();
        }
        buf
    });
    let err = tracer.0.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut stderr = String::new();
    let start = Instant::now();
    let mut attached = false;
    while !attached && start.elapsed() < ATTACH_TIMEOUT {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) if line == NOTIFY => attached = true,
            Ok(line) => stderr.push_str(&format!("{}\n", line)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if tracer.0.try_wait().ok().flatten().is_some() {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _after = match (&case.after, attached) {
        (Some(a), true) => Some(
            spawn_group(
                Command::new("sh").arg("-c").arg(a).current_dir(&wl.dir).stdout(Stdio::null()).stderr(Stdio::null()),
            )
            .map_err(|e| format!("cannot run AFTER: {}", e))?,
        ),
        _ => None,
    };
    let (code, interrupted) = wait_or_interrupt(&mut tracer, case.timeout.unwrap_or(Duration::from_secs(10)))?;
    drop(before);
    let stdout = String::from_utf8_lossy(&stdout_reader.join().unwrap()).into_owned();
    let _ = stderr_reader.join();
    stderr.extend(rx.try_iter().filter(|l| l != NOTIFY).map(|l| format!("{}\n", l)));
    Ok(Outcome { stdout, stderr, code, interrupted })
}

/// Waits for the tracer; after `timeout` sends SIGINT (rtrace then prints
/// its maps and exits), and SIGKILL if that does not end it. Returns the
/// exit code and whether SIGINT was needed.
fn wait_or_interrupt(tracer: &mut Group, timeout: Duration) -> Result<(Option<i32>, bool), String> {
    let start = Instant::now();
    let mut interrupted: Option<Instant> = None;
    loop {
        if let Some(status) = tracer.0.try_wait().map_err(|e| e.to_string())? {
            return Ok((status.code(), interrupted.is_some()));
        }
        match interrupted {
            None if start.elapsed() >= timeout => {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(tracer.0.id() as i32, libc::SIGINT) };
                interrupted = Some(Instant::now());
            }
            Some(t) if t.elapsed() >= KILL_GRACE => return Err("did not exit within 5 s of SIGINT".into()),
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check(case: &Case, o: &Outcome, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let stdout_lines: Vec<&str> = o.stdout.lines().collect();
    let matches = |pat: &str, lines: &[&str]| {
        let re = Regex::new(pat).unwrap_or_else(|e| panic!("{}: bad pattern `{}`: {}", case.origin, pat, e));
        lines.iter().any(|l| re.is_match(l))
    };
    if case.self_exit && o.interrupted {
        problems.push("did not exit by itself before TIMEOUT".to_string());
    }
    if o.code != Some(case.exit_code) {
        problems.push(format!("exit code {:?}, expected {}", o.code, case.exit_code));
    }
    for e in &case.expects {
        match e {
            Expect::Line(p) if !matches(p, &stdout_lines) => problems.push(format!("no stdout line matches `{}`", p)),
            Expect::NoLine(p) if matches(p, &stdout_lines) => problems.push(format!("a stdout line matches `{}`", p)),
            Expect::Stderr(p) if !matches(p, &o.stderr.lines().collect::<Vec<_>>()) => {
                problems.push(format!("no stderr line matches `{}`", p))
            }
            Expect::NoStderr(p) if matches(p, &o.stderr.lines().collect::<Vec<_>>()) => {
                problems.push(format!("a stderr line matches `{}`", p))
            }
            Expect::Lines(want) => {
                let found = stdout_lines.windows(want.len().max(1)).any(|w| w.iter().zip(want).all(|(a, b)| a == b));
                if !found {
                    problems.push(format!("stdout lacks these lines in order:\n    {}", want.join("\n    ")));
                }
            }
            Expect::Matching(want) => {
                let res: Vec<regex::Regex> = want.iter().map(|p| regex::Regex::new(p).unwrap()).collect();
                let found = stdout_lines
                    .windows(res.len().max(1))
                    .any(|w| w.iter().zip(&res).all(|(line, re)| re.is_match(line)));
                if !found {
                    problems.push(format!("no contiguous stdout lines match, in order:\n    {}", want.join("\n    ")));
                }
            }
            Expect::Exact(want) if *want != o.stdout => problems.push(format!("stdout differs; expected:\n{}", want)),
            Expect::File(file, p) => {
                let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
                if !matches(p, &text.lines().collect::<Vec<_>>()) {
                    problems.push(format!("no line of {} matches `{}`:\n{}", file, p, text));
                }
            }
            Expect::NoFile(file) if dir.join(file).exists() => {
                problems.push(format!("{} exists, and must not", dir.join(file).display()))
            }
            _ => {}
        }
    }
    problems
}

fn suite_dir(suite: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(suite)
}

/// What a suite's run came to: cases passed, and a report per failure.
pub struct Summary {
    pub passed: usize,
    pub failures: Vec<String>,
    /// A filter (`RTRACE_TEST_FILTER`) chose the cases.
    pub filtered: bool,
}

impl Summary {
    /// Fails the test unless every case passed (and some ran).
    pub fn assert_ok(&self) {
        assert!(self.failures.is_empty(), "{} case(s) failed:\n\n{}", self.failures.len(), self.failures.join("\n\n"));
        assert!(self.passed > 0 || self.filtered, "no cases ran");
    }
}

/// Runs every case of `tests/SUITE/*.test` (those `RTRACE_TEST_FILTER`
/// names) with rtrace, or with `RTRACE_BIN`.
pub fn run_suite(suite: &str) -> Summary {
    let bin: Vec<String> = match std::env::var("RTRACE_BIN") {
        Ok(b) => split_command(&b).expect("RTRACE_BIN"),
        Err(_) => vec![env!("CARGO_BIN_EXE_rtrace").to_string()],
    };
    let testing_bpftrace = bin[0].ends_with("bpftrace");
    let filter = std::env::var("RTRACE_TEST_FILTER").ok().map(|f| Regex::new(&f).expect("RTRACE_TEST_FILTER"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(suite_dir(suite))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let mut wl = Workloads::new();
    let (mut passed, mut failures) = (0, Vec::new());
    for case in files.iter().flat_map(|f| parse_cases(suite, f)) {
        if filter.as_ref().is_some_and(|f| !f.is_match(&case.name)) || (testing_bpftrace && case.rtrace_only) {
            continue;
        }
        let started = Instant::now();
        let problems = match run_case(&case, &bin, &mut wl) {
            Ok(o) => {
                let p = check(&case, &o, &wl.dir);
                if p.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{}\n  --- stdout ---\n{}  --- stderr ---\n{}", p.join("\n"), o.stdout, o.stderr))
                }
            }
            Err(e) => Err(e),
        };
        match problems {
            Ok(()) => {
                passed += 1;
                println!("PASS {} ({}) {:.1}s", case.name, case.origin, started.elapsed().as_secs_f64());
            }
            Err(report) => {
                println!("FAIL {} ({})\n{}", case.name, case.origin, report);
                failures.push(format!("FAIL {} ({}):\n{}", case.name, case.origin, report));
            }
        }
    }
    println!("{} passed, {} failed", passed, failures.len());
    Summary { passed, failures, filtered: filter.is_some() }
}
