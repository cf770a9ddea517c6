//! `--metrics` against the real thing: rtrace traces a workload of known
//! write sizes and serves its maps; Debian's `prometheus` scrapes it every
//! second on loopback, and the values are asserted through Prometheus's
//! query API (counters, `_sum`, `_count`, `histogram_quantile`). The
//! exposition is checked by `promtool check metrics`; bad requests get a
//! 4xx and the endpoint keeps answering; SIGTERM ends rtrace cleanly.
//! Needs root (eBPF) and the `prometheus` package (scripts/setup.sh);
//! under CI=true a missing one is a failure.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NOTIFY: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED";

/// Skips (or fails, under CI=true) when `tool` is not installed.
fn require_tool(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(tool))
        .find(|p| p.is_file());
    if found.is_none() {
        let msg = format!("metrics: `{}` is not installed (scripts/setup.sh installs Debian's prometheus)", tool);
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{}: running under CI=true, where skipping is a failure", msg);
        }
        let _ = writeln!(std::io::stderr(), "SKIPPED: {}", msg);
    }
    found
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Killed (and reaped) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request on loopback: (status, body).
fn http(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http(addr, &format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", path, addr))
}

/// `+`, `(`, `"`… in a PromQL query string.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{:02X}", b),
        })
        .collect()
}

/// The value of an instant query that returns one series, if it does.
fn query(prom: SocketAddr, promql: &str) -> Option<f64> {
    let (status, body) = get(prom, &format!("/api/v1/query?query={}", url_encode(promql))).ok()?;
    if status != 200 {
        return None;
    }
    let re = regex::Regex::new(r#""value":\[[0-9.]+,"([^"]+)"\]"#).unwrap();
    let values: Vec<f64> = re.captures_iter(&body).filter_map(|c| c[1].parse().ok()).collect();
    match values.as_slice() {
        [v] => Some(*v),
        _ => None,
    }
}

/// Waits until `promql` gives `want` (within 0.01); panics with what it gave.
fn wait_for(prom: SocketAddr, promql: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut last = None;
    while Instant::now() < deadline {
        last = query(prom, promql);
        if last.is_some_and(|v| (v - want).abs() < 0.01) {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("Prometheus: `{}` is {:?}, expected {}", promql, last, want);
}

fn build_workload(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/metered.c");
    let out = dir.join("metered");
    let status = Command::new("gcc").args(["-O0", "-o"]).arg(&out).arg(&src).status().expect("run gcc");
    assert!(status.success(), "cannot build {}", src.display());
    out
}

/// Starts rtrace with `--metrics addr` and waits until its probes are attached.
fn start_rtrace(program: &str, addr: SocketAddr) -> (Proc, std::thread::JoinHandle<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtrace"))
        .arg(format!("--metrics={}", addr))
        .args(["-e", program])
        .env(NOTIFY, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rtrace");
    // The notice comes on stdout (bpftrace v0.26), before the maps.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains(NOTIFY) => break,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("rtrace did not attach; stderr: {}", errors.join().unwrap_or_default());
            }
        }
    }
    (Proc(child), out)
}

#[test]
fn prometheus_scrapes_rtrace() {
    if !common::require_root("metrics: prometheus_scrapes_rtrace (loads eBPF)") {
        return;
    }
    let (Some(prometheus), Some(promtool)) = (require_tool("prometheus"), require_tool("promtool")) else {
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("metrics");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let workload = build_workload(&dir);

    let rtrace_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let program = r#"tracepoint:syscalls:sys_enter_write /comm == "metered"/ {
        @writes = count(); @bytes = sum(args.count); @size = hist(args.count);
        @lsize = lhist(args.count, 0, 1000, 250); @per_fd[args.fd] = count(); @avg_size = avg(args.count);
        @largest = max(args.count); @name = comm; }"#;
    let (mut rtrace, stdout) = start_rtrace(program, rtrace_addr);

    // Prometheus on loopback, scraping rtrace every second.
    let prom_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: rtrace\n    static_configs:\n      - targets: ['{}']\n",
            rtrace_addr
        ),
    )
    .unwrap();
    let _prom = Proc(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address={}", prom_addr))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus"),
    );

    let status = Command::new(&workload).status().expect("run the workload");
    assert!(status.success());

    // 90 writes of 100 bytes and 10 of 5000.
    wait_for(prom_addr, r#"up{job="rtrace"}"#, 1.0);
    wait_for(prom_addr, "rtrace_writes_total", 100.0);
    wait_for(prom_addr, "rtrace_bytes_total", 59000.0);
    wait_for(prom_addr, "rtrace_size_count", 100.0);
    wait_for(prom_addr, "rtrace_size_sum", 59000.0);
    // `le` as OpenMetrics writes floats (Prometheus 2 keeps the text as sent).
    wait_for(prom_addr, r#"rtrace_size_bucket{le="127.0"}"#, 90.0);
    // 100 is in [64, 128): le 63 < p50 ≤ 127, interpolated: 63 + 64 * 50/90.
    wait_for(prom_addr, "histogram_quantile(0.5, rtrace_size_bucket)", 63.0 + 64.0 * 50.0 / 90.0);
    // 5000 is in [4096, 8192): 4095 + 4096 * (99 - 90) / 10.
    wait_for(prom_addr, "histogram_quantile(0.99, rtrace_size_bucket)", 4095.0 + 4096.0 * 9.0 / 10.0);
    // lhist(0, 1000, 250): 100 in [0, 250) (le 249), 5000 from 1000 on (+Inf).
    wait_for(prom_addr, r#"rtrace_lsize_bucket{le="249.0"}"#, 90.0);
    wait_for(prom_addr, r#"rtrace_lsize_bucket{le="999.0"}"#, 90.0);
    wait_for(prom_addr, r#"rtrace_lsize_bucket{le="+Inf"}"#, 100.0);
    wait_for(prom_addr, "rtrace_avg_size_count", 100.0);
    wait_for(prom_addr, "rtrace_avg_size_sum", 59000.0);
    wait_for(prom_addr, "rtrace_avg_size_avg", 590.0);
    wait_for(prom_addr, "rtrace_largest", 5000.0);
    wait_for(prom_addr, "count(rtrace_per_fd_total)", 1.0);
    wait_for(prom_addr, "sum(rtrace_per_fd_total)", 100.0);
    wait_for(prom_addr, "rtrace_runtime_probes_attached", 1.0);
    wait_for(prom_addr, "rtrace_runtime_lost_records_total", 0.0);
    wait_for(prom_addr, "absent(rtrace_name)", 1.0);

    // The exposition as `promtool` parses and lints it (text format 0.0.4,
    // what a client without an OpenMetrics Accept header gets).
    let (code, body) = get(rtrace_addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("# TYPE rtrace_size histogram"), "{}", body);
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr),
        body
    );

    // Bad requests: 4xx, and the endpoint keeps answering.
    assert_eq!(get(rtrace_addr, "/").unwrap().0, 404);
    assert_eq!(get(rtrace_addr, "/metricsx").unwrap().0, 404);
    let post = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(http(rtrace_addr, post).unwrap().0, 405);
    let garbage = http(rtrace_addr, "NOT HTTP AT ALL\r\n\r\n").map(|r| r.0).unwrap_or(400);
    assert!((400..500).contains(&garbage) || garbage == 0, "garbage got {}", garbage);
    assert_eq!(get(rtrace_addr, "/metrics?x=1").unwrap().0, 200);

    // SIGTERM: rtrace ends at once, with status 0, and prints its maps.
    let started = Instant::now();
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(rtrace.0.id() as i32, libc::SIGTERM) };
    let status = rtrace.0.wait().unwrap();
    assert!(status.success(), "rtrace after SIGTERM: {:?}", status);
    assert!(started.elapsed() < Duration::from_secs(5), "SIGTERM took {:?}", started.elapsed());
    let printed = stdout.join().unwrap();
    assert!(printed.contains("@writes: 100"), "{}", printed);
    assert!(printed.contains("@bytes: 59000"), "{}", printed);
    // The port is free again.
    TcpListener::bind(rtrace_addr).expect("the metrics port is released");
}

#[test]
fn busy_port_is_refused_before_tracing() {
    if !common::require_root("metrics: busy_port_is_refused_before_tracing (loads eBPF)") {
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rtrace"))
        .arg(format!("--metrics={}", addr))
        .args(["-e", "BEGIN { printf(\"traced\\n\"); exit(); }"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{}", stderr);
    assert!(stderr.contains("cannot listen on"), "{}", stderr);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("traced"));
}

/// One keep-alive connection's GET /metrics: the latency, or what failed.
fn scrape_on(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>) -> Result<Duration, String> {
    let started = Instant::now();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: load\r\n\r\n").map_err(|e| format!("write: {}", e))?;
    let mut status = String::new();
    reader.read_line(&mut status).map_err(|e| format!("read: {}", e))?;
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("status line `{}`", status.trim()));
    }
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| format!("read: {}", e))?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = vec![0; length.ok_or("no Content-Length")?];
    reader.read_exact(&mut body).map_err(|e| format!("body: {}", e))?;
    if !body.starts_with(b"# HELP") {
        return Err("not an exposition".into());
    }
    Ok(started.elapsed())
}

/// Concurrent scrapes on loopback for a bounded time: every one answered,
/// and the event loop keeps printing meanwhile. Prints requests per second
/// and latency percentiles (BENCHMARKS.md).
#[test]
fn concurrent_scrapes() {
    if !common::require_root("metrics: concurrent_scrapes (loads eBPF)") {
        return;
    }
    const CLIENTS: usize = 16;
    const FOR: Duration = Duration::from_secs(3);
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // 200 keys and a histogram to read at each scrape; a tick every 100 ms
    // that must keep coming while the scrapes run.
    let program = r#"interval:ms:1 { @keys[nsecs % 200] = count(); @h = hist(nsecs % 1000000); }
        interval:ms:100 { printf("tick\n"); }"#;
    let (mut rtrace, stdout) = start_rtrace(program, addr);
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut latencies = Vec::new();
                while started.elapsed() < FOR {
                    latencies.push(scrape_on(&mut stream, &mut reader));
                }
                latencies
            })
        })
        .collect();
    let results: Vec<Result<Duration, String>> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let elapsed = started.elapsed();
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of {} scrapes failed: {:?}", failed.len(), results.len(), &failed[..1]);
    let mut lat: Vec<Duration> = results.into_iter().map(Result::unwrap).collect();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let rate = lat.len() as f64 / elapsed.as_secs_f64();
    let _ = writeln!(
        std::io::stderr(),
        "concurrent_scrapes: {} clients, {} scrapes in {:.1} s: {:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; body {} series",
        CLIENTS,
        lat.len(),
        elapsed.as_secs_f64(),
        rate,
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
        get(addr, "/metrics").unwrap().1.lines().filter(|l| !l.starts_with('#')).count()
    );
    assert!(lat.len() >= CLIENTS, "too few scrapes answered: {}", lat.len());
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(rtrace.0.id() as i32, libc::SIGTERM) };
    assert!(rtrace.0.wait().unwrap().success());
    let printed = stdout.join().unwrap();
    let ticks = printed.lines().filter(|l| *l == "tick").count();
    // 30 ticks in 3 s: the event loop was not held up by the scrapes
    // (allowing for a loaded machine).
    assert!(ticks >= 20, "only {} ticks printed during {:?} of scrapes", ticks, elapsed);
}
