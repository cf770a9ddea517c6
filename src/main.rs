//! The `rtrace` command line: flags → `options::Options`, then the pipeline.

use clap::{ArgAction, Parser};
use rtrace::diagnostic::Source;
use rtrace::driver;
use rtrace::options::{exit, Buffering, Emit, Format, Options};
use rtrace::raw_text;
use rtrace::system::list::ListError;
use std::ffi::{OsStr, OsString};
use std::io::Read;

#[derive(Parser, Debug)]
#[command(
    name = "rtrace",
    version,
    about = "bpftrace's language, compiled straight to eBPF",
    help_template = "{name} {version}: {about}\n\nUSAGE:\n    rtrace [OPTIONS] FILE [ARGS...]\n    rtrace [OPTIONS] -e PROGRAM [ARGS...]\n\nOPTIONS:\n{options}\n{after-help}",
    after_help = "Examples:\n  rtrace -e 'tracepoint:syscalls:sys_enter_openat { printf(\"%s %s\\n\", comm, str(args->filename)); }'\n  rtrace script.rt arg1 arg2\n  rtrace -c ./prog -e 'uprobe:./prog:main { printf(\"hi\\n\"); }'"
)]
struct Cli {
    /// Program text (the last -e counts, as in bpftrace)
    #[arg(short = 'e', value_name = "PROGRAM", overrides_with = "program")]
    program: Option<OsString>,
    /// Quiet: don't print "Attached N probes"
    #[arg(short = 'q', long = "quiet", action = ArgAction::SetTrue)]
    quiet: bool,
    /// Verbose: print the full verifier log and load details
    #[arg(short = 'v', long = "verbose", action = ArgAction::SetTrue)]
    verbose: bool,
    /// Run CMD once the probes are attached; exit when it exits
    #[arg(short = 'c', long = "cmd", value_name = "CMD")]
    command: Option<String>,
    /// Only trace process PID (and exit when it exits)
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pid: Option<String>,
    /// Attach only the probes whose name matches REGEX (begin and end always)
    #[arg(long = "probe-filter", value_name = "REGEX")]
    probe_filter: Option<String>,
    /// Print no warnings, at compile time or at run time
    #[arg(long = "no-warnings", action = ArgAction::SetTrue)]
    no_warnings: bool,
    /// Print a stage instead of running: ast or asm
    #[arg(short = 'd', long = "emit", value_name = "STAGE")]
    emit: Option<String>,
    /// Compile and load into the kernel, but do not attach or run
    #[arg(long = "dry-run", action = ArgAction::SetTrue)]
    dry_run: bool,
    /// Output format: text, json, or folded (text with stack-keyed maps as folded stacks)
    #[arg(short = 'f', value_name = "FORMAT", default_value = "text")]
    format: String,
    /// At exit, draw the maps keyed by stacks as an interactive SVG flame graph in FILE
    #[arg(long = "flamegraph", value_name = "FILE")]
    flamegraph: Option<std::path::PathBuf>,
    /// Write output to FILE instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// List probes matching the pattern (first argument), e.g. 'tracepoint:sched:*'; with -v, their fields
    #[arg(short = 'l', long = "list", action = ArgAction::SetTrue)]
    list: bool,
    /// Print what this system supports (kernel helpers, features, map and probe types) and exit
    #[arg(long = "info", action = ArgAction::SetTrue)]
    info: bool,
    /// Report failed helper calls: -k map updates, -kk memory reads too
    #[arg(short = 'k', action = ArgAction::Count)]
    helper_checks: u8,
    /// Make the integer #defines of HEADER visible (like #include <HEADER>)
    #[arg(long = "include", value_name = "HEADER")]
    include: Vec<String>,
    /// Accepted for bpftrace compatibility: USDT semaphores are always raised in every process mapping the file (the kernel does it)
    #[arg(long = "usdt-file-activation", action = ArgAction::SetTrue, hide = true)]
    _usdt_file_activation: bool,
    /// Allow unsafe functions: system(), and kernel uretprobes on Go functions whose returns cannot be found
    #[arg(long = "unsafe", action = ArgAction::SetTrue)]
    unsafe_calls: bool,
    /// Output buffering: line, full or none (default: line on a terminal, else big chunks written after each batch of events)
    #[arg(short = 'B', value_name = "MODE")]
    buffering: Option<String>,
    /// Serve the maps as Prometheus metrics at http://ADDR/metrics while the probes run (default 127.0.0.1:9464)
    #[arg(long = "metrics", value_name = "ADDR", num_args = 0..=1, require_equals = true,
          default_missing_value = rtrace::runtime::metrics::DEFAULT_ADDR)]
    metrics: Option<String>,
    /// Script file ('-' for stdin), then positional parameters $1, $2, ...
    #[arg(value_name = "FILE_OR_ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<OsString>,
}

/// A command-line error, worded and prefixed as bpftrace does.
fn usage(message: &str) -> i32 {
    eprintln!("ERROR: {}", message);
    eprintln!("Try 'rtrace --help' for more information.");
    exit::USAGE
}

/// An environment setting that is not what it must be.
#[derive(Debug, thiserror::Error)]
#[error("{name} must be a number, got `{value}`")]
struct EnvError {
    name: &'static str,
    value: String,
}

/// The first of `names` set in the environment, as a number.
fn env_u32(names: &[&'static str]) -> Result<Option<u32>, EnvError> {
    for name in names {
        if let Ok(value) = std::env::var(name) {
            return value.trim().parse::<u32>().map(Some).map_err(|_| EnvError { name, value });
        }
    }
    Ok(None)
}

/// The kernel's largest pid (`PID_MAX_LIMIT` on 64-bit).
const PID_MAX: u64 = 4_194_304;

/// Whether a command-line word is an option (not `-`, not a negative number).
/// Words that are not UTF-8 are never options.
fn is_option(word: &OsStr) -> bool {
    word.to_str().is_some_and(|a| a.starts_with('-') && a.len() > 1 && a[1..].parse::<i64>().is_err())
}

/// Options may follow the script or pattern, as getopt allows
/// (`rtrace -l 'usdt:*' -p 42`): they are moved in front of the first
/// positional argument. Negative numbers stay parameters; `--` ends options.
/// Arguments stay `OsString`s: a parameter, `-e` and `-o` need not be
/// UTF-8; the value of another option that is not is an error.
fn options_first(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    const TAKES_VALUE: &[&str] = &[
        "-e",
        "-c",
        "--cmd",
        "-p",
        "--pid",
        "-d",
        "--emit",
        "-f",
        "-o",
        "--output",
        "-B",
        "--include",
        "--probe-filter",
        "--flamegraph",
    ];
    const TAKES_BYTES: &[&str] = &["-e", "-o", "--output", "--flamegraph"];
    let mut opts = Vec::new();
    let mut positional = Vec::new();
    let mut iter = args.into_iter().peekable();
    opts.extend(iter.next());
    while let Some(a) = iter.next() {
        // `--metrics` takes an address when one follows (`--metrics :9100
        // script.rt`), else listens on the default one.
        if a == "--metrics" {
            let addr = match iter.peek().and_then(|w| w.to_str()) {
                Some(w) if !std::path::Path::new(w).exists() && rtrace::runtime::metrics::address(w).is_ok() => {
                    let w = w.to_string();
                    iter.next();
                    w
                }
                _ => rtrace::runtime::metrics::DEFAULT_ADDR.to_string(),
            };
            opts.push(OsString::from(format!("--metrics={}", addr)));
            continue;
        }
        if a == "--" {
            positional.push(a);
            positional.extend(iter.by_ref());
            break;
        }
        if let Some(opt) = a.to_str().filter(|_| is_option(&a)) {
            if TAKES_VALUE.contains(&opt) {
                if let Some(value) = iter.next() {
                    if value.to_str().is_none() && !TAKES_BYTES.contains(&opt) {
                        return Err(format!("the value of {} is not valid UTF-8: '{}'", opt, value.to_string_lossy()));
                    }
                    opts.extend([a, value]);
                    continue;
                }
            }
            opts.push(a);
        } else {
            positional.push(a);
        }
    }
    opts.extend(positional);
    Ok(opts)
}

/// A `-p` value, checked and worded as bpftrace v0.26 does.
fn parse_pid(text: &str) -> Result<u32, String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("Failed to parse pid: invalid integer: {}", text));
    }
    if digits < text.len() {
        return Err(format!("Failed to parse pid: invalid trailing bytes: {}", text));
    }
    match text.parse::<u64>() {
        Ok(p) if (1..=PID_MAX).contains(&p) => Ok(p as u32),
        _ => Err(format!("Pid out of range: {}", text)),
    }
}

/// What `-l` searches for: a pattern, or the probes of a program (`-e`, or
/// a script file), as bpftrace v0.26 lists them; `Err` holds the exit code
/// of a program that does not parse.
fn list_pattern(program: Option<OsString>, first: Option<OsString>, pid: Option<u32>) -> Result<Option<String>, i32> {
    let source = match (program, first) {
        (Some(text), _) => Source::new("stdin", raw_text::from_os(text)),
        (None, Some(arg)) if std::path::Path::new(&arg).is_file() => match std::fs::read(&arg) {
            Ok(text) => Source::new(arg.to_string_lossy(), raw_text::from_bytes(&text)),
            Err(_) => return Ok(Some(raw_text::from_os(arg))),
        },
        (None, Some(arg)) => {
            let search = raw_text::from_os(arg);
            if search.contains('.') && !search.contains([':', '*']) {
                eprintln!(
                    "WARNING: It appears that '{0}' is a filename but the file does not exist. Treating '{0}' as a search pattern.",
                    search
                );
            }
            return Ok(Some(search));
        }
        (None, None) => return Ok(None),
    };
    let machine = rtrace::system::Machine::new(pid);
    match driver::parse(&source.text, &machine) {
        Ok(program) => Some(
            program
                .probes
                .iter()
                .flat_map(|p| &p.attach_points)
                .filter(|ap| !matches!(ap.provider.as_str(), "begin" | "end" | "BEGIN" | "END"))
                .map(|ap| match rtrace::probe::spec::canonical_provider(&ap.provider) {
                    Some(full) => {
                        std::iter::once(full.to_string()).chain(ap.parts.iter().cloned()).collect::<Vec<_>>().join(":")
                    }
                    None => ap.raw.clone(),
                })
                .collect::<Vec<_>>()
                .join(","),
        )
        // Only begin and end: nothing to list.
        .filter(|p| !p.is_empty())
        .map_or(Err(exit::OK), |p| Ok(Some(p))),
        Err(diags) => Err(rtrace::diagnostic::report(&source, &diags, exit::SCRIPT)),
    }
}

fn main_code() -> i32 {
    let args = match options_first(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => return usage(&e),
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            // A bad option: show the whole usage, as bpftrace does.
            if e.use_stderr() {
                eprintln!("\n{}", <Cli as clap::CommandFactory>::command().render_help());
            }
            return code;
        }
    };
    // Positional parameters may be negative numbers, but anything else that
    // looks like an option is a mistake (use `--` before such parameters).
    if let Some(opt) = cli.rest.iter().find(|a| is_option(a)) {
        if !std::env::args_os().any(|a| a == "--") {
            let opt = opt.to_string_lossy();
            eprintln!("ERROR: unknown option `{}`\n\n{}", opt, <Cli as clap::CommandFactory>::command().render_help());
            return exit::USAGE;
        }
    }
    // Options are checked before the script is read, as bpftrace does.
    let pid = match cli.pid.as_deref() {
        None => None,
        Some(text) => match parse_pid(text) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("ERROR: {}", e);
                return exit::SCRIPT;
            }
        },
    };
    // As bpftrace: a process that is not there is refused, not traced.
    if let Some(p) = pid {
        let reason = if !rtrace::system::process::exists(p) {
            Some("No such process")
        } else if !rtrace::system::process::alive(p) {
            Some("the process has exited")
        } else {
            None
        };
        if let Some(reason) = reason {
            eprintln!("ERROR: Failed to attach to pid {}: {}", p, reason);
            return exit::SCRIPT;
        }
    }
    if cli.info {
        return match rtrace::runtime::info::write(&mut std::io::stdout().lock()) {
            Ok(()) => exit::OK,
            Err(_) => exit::RUNTIME,
        };
    }
    if cli.list {
        let pattern = match list_pattern(cli.program, cli.rest.into_iter().next(), pid) {
            Ok(p) => p,
            Err(code) => return code,
        };
        let mut out = std::io::stdout().lock();
        return match rtrace::system::list::list(pattern.as_deref(), cli.verbose, pid, &mut out) {
            Ok(()) => exit::OK,
            // `rtrace -l | head`: the reader has seen enough.
            Err(ListError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
            Err(e @ ListError::Denied(_)) => {
                eprintln!("ERROR: {}", e);
                exit::LOAD
            }
            Err(e) => {
                eprintln!("ERROR: {}", e);
                exit::SCRIPT
            }
        };
    }
    let mut rest = cli.rest.into_iter();
    // Program text need not be UTF-8 (see `raw_text`), as in bpftrace.
    let source = match cli.program {
        Some(text) => Some(Source::new("stdin", raw_text::from_os(text))),
        None => match rest.next() {
            Some(file) if file == "-" => {
                let mut text = Vec::new();
                if let Err(e) = std::io::stdin().read_to_end(&mut text) {
                    return usage(&format!("cannot read the program from stdin: {}", e));
                }
                Some(Source::new("stdin", raw_text::from_bytes(&text)))
            }
            Some(file) => match std::fs::read(&file) {
                Ok(text) => Some(Source::new(file.to_string_lossy(), raw_text::from_bytes(&text))),
                Err(e) => {
                    let file = file.to_string_lossy();
                    eprintln!("ERROR: failed to open file '{}': {}", file, rtrace::output::error_reason(&e));
                    return exit::SCRIPT;
                }
            },
            None if rtrace::repl::available() => None,
            None => return usage("no program given: use -e 'PROGRAM' or a script file (or run rtrace on a terminal for the interactive session)"),
        },
    };
    let emit = match cli.emit.as_deref() {
        None => None,
        Some("ast") => Some(Emit::Ast),
        Some("asm") => Some(Emit::Asm),
        Some(other) => return usage(&format!("unknown stage `{}` for --emit: use ast or asm", other)),
    };
    let probe_filter = match cli.probe_filter.as_deref().map(regex_lite::Regex::new).transpose() {
        Ok(f) => f,
        Err(e) => return usage(&format!("invalid --probe-filter: {}", e)),
    };
    let format = match cli.format.as_str() {
        "text" => Format::Text,
        "json" => Format::Json,
        "folded" => Format::Folded,
        other => return usage(&format!("Invalid output format \"{}\"\n-f takes text, json or folded", other)),
    };
    let buffering = match cli.buffering.as_deref() {
        None => None,
        Some("line") => Some(Buffering::Line),
        Some("full") => Some(Buffering::Full),
        Some("none") => Some(Buffering::None),
        Some(other) => return usage(&format!("invalid buffering mode `{}`: use line, full or none", other)),
    };
    let strlen = match env_u32(&["RTRACE_STRLEN", "BPFTRACE_STRLEN"]) {
        Ok(v) => v.map(|n| n.clamp(2, 1024)),
        Err(e) => return usage(&e.to_string()),
    };
    let max_map_keys = match env_u32(&["RTRACE_MAP_KEYS_MAX", "BPFTRACE_MAP_KEYS_MAX"]) {
        Ok(v) => v,
        Err(e) => return usage(&e.to_string()),
    };
    // bpftrace sizes its per-CPU perf buffers in pages; rtrace's one ring
    // buffer takes the same number of pages (a power of two, at least one).
    let ringbuf_pages = match env_u32(&["RTRACE_RINGBUF_PAGES", "BPFTRACE_PERF_RB_PAGES"]) {
        Ok(v) => v.map(|n| n.clamp(1, 1 << 16).next_power_of_two()),
        Err(e) => return usage(&e.to_string()),
    };
    // Config variables from the environment; RTRACE_STACK_MODE is
    // BPFTRACE_STACK_MODE's other name.
    let mut config_env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("BPFTRACE_")).collect();
    if let (Ok(mode), false) =
        (std::env::var("RTRACE_STACK_MODE"), config_env.iter().any(|(k, _)| k == "BPFTRACE_STACK_MODE"))
    {
        config_env.push(("BPFTRACE_STACK_MODE".into(), mode));
    }
    // After `--`, `--name[=value]` are the program's named options (`getopt()`,
    // bpftrace v0.26); other words stay positional parameters.
    // (clap keeps a `--` that follows a parameter, and drops one before
    // any; options before `--` were refused above.)
    let dashes = std::env::args_os().any(|a| a == "--");
    let (mut params, mut named, mut dropped) = (Vec::new(), Vec::new(), false);
    for word in rest.map(raw_text::from_os) {
        match word.strip_prefix("--") {
            Some("") if dashes && !dropped => dropped = true,
            Some(option) if dashes && !option.is_empty() => named.push(option.to_string()),
            _ => params.push(word),
        }
    }
    let metrics_max_series = match env_u32(&["RTRACE_METRICS_MAX_SERIES"]) {
        Ok(v) => v,
        Err(e) => return usage(&e.to_string()),
    };
    if cli.metrics.is_some() && source.is_none() {
        return usage(
            "--metrics needs a program (-e 'PROGRAM' or a script file): the interactive session does not export",
        );
    }
    let opts = Options {
        params,
        named,
        quiet: cli.quiet,
        no_warnings: cli.no_warnings,
        probe_filter,
        verbose: cli.verbose,
        dry_run: cli.dry_run,
        emit,
        command: cli.command,
        pid,
        format,
        output: cli.output,
        strlen,
        max_map_keys,
        ringbuf_pages,
        unsafe_calls: cli.unsafe_calls,
        includes: cli.include,
        helper_checks: cli.helper_checks,
        buffering,
        config_env,
        flamegraph: cli.flamegraph,
        metrics: cli.metrics,
        metrics_max_series,
    };
    match source {
        Some(source) => driver::run(&source, &opts),
        None => rtrace::repl::run(opts),
    }
}

fn main() {
    // rtrace started again to load an untrusted library (system::ifunc).
    if let Some(symbol) = std::env::var_os(rtrace::system::ifunc::HELPER_ENV) {
        rtrace::system::ifunc::helper_main(&symbol);
    }
    std::process::exit(main_code());
}
