//! The oracle: rtrace's checked program compiled a second time, to native
//! code through cranelift (`backend`), run in-process against maps in a
//! hash table (`host`), and printed as `rtrace -f json` prints; random
//! programs to feed it (`gen`). `tests/differential.rs` runs each program
//! both ways and compares (FUZZING.md).
#![allow(dead_code)]

pub mod backend;
pub mod gen;
pub mod host;

use rtrace::diagnostic::{render_all, Source};
use rtrace::options::Options;
use rtrace::sema::ProgKind;
use rtrace::system::Machine;
use std::process::Command;
use std::rc::Rc;

/// What a run printed on stdout (after "attached_probes") and its exit code.
#[derive(Debug, PartialEq)]
pub struct Run {
    pub stdout: String,
    pub code: i32,
}

/// `text` checked by rtrace's front end, then compiled and run by the oracle.
pub fn run_native(text: &str) -> Result<Run, String> {
    let source = Source::new("stdin", text);
    let machine = Rc::new(Machine::new(None));
    let program = rtrace::driver::parse(text, &machine).map_err(|d| render_all(&d, &source))?;
    let opts = Options::default();
    let built = rtrace::driver::build(&program, &source, &opts, machine, Default::default())
        .map_err(|d| render_all(&d, &source))?;
    let checked = &built.checked;
    let mut host = host::Host::new(&checked.manifest);
    for prog in checked.programs.iter().filter(|p| p.kind == ProgKind::Begin) {
        let native = backend::compile(prog, &checked.manifest).map_err(|u| format!("oracle: unsupported {}", u.0))?;
        native.run(&mut host);
    }
    let code = match host.exit {
        Some(Some(c)) => c as i32,
        _ => 0,
    };
    Ok(Run { stdout: host.render(&source), code })
}

/// `text` run by the rtrace binary on this kernel (`-f json`); `Err` when
/// it did not run to its end (with what it said).
pub fn run_kernel(text: &str) -> Result<Run, Refused> {
    let out = Command::new("timeout")
        .args(["-s", "KILL", "30", env!("CARGO_BIN_EXE_rtrace"), "-f", "json", "-e", text])
        .output()
        .map_err(|e| Refused::Other(format!("cannot run rtrace: {}", e)))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = out.status.code().unwrap_or(-1);
    if !stdout.starts_with("{\"type\": \"attached_probes\"") {
        let why = format!("rtrace exited with {}: {}{}", code, stdout, String::from_utf8_lossy(&out.stderr));
        return Err(if code == rtrace::options::exit::SCRIPT { Refused::Script(why) } else { Refused::Other(why) });
    }
    let stdout = match stdout.split_once('\n') {
        Some((first, rest)) if first.contains("\"attached_probes\"") => rest.to_string(),
        _ => stdout,
    };
    Ok(Run { stdout, code })
}

/// Why rtrace did not run a program.
#[derive(Debug)]
pub enum Refused {
    /// The script's error (exit code 1): the checker refused it.
    Script(String),
    /// Anything else: the verifier refused it, a crash, a time-out.
    Other(String),
}

/// How one program fared.
#[derive(Debug)]
pub enum Verdict {
    Same,
    /// The two runs printed differently (or exited differently).
    Differ {
        kernel: Run,
        native: Run,
    },
    /// Both refused it: the checker found an error (the generator wrote a
    /// program that is not well-typed; counted, not a failure).
    Rejected(String),
    /// One side could not run it at all (the verifier refused it, the
    /// oracle does not cover it).
    Failed(String),
}

pub fn compare(text: &str) -> Verdict {
    let native = run_native(text);
    let kernel = match (run_kernel(text), &native) {
        (Ok(r), _) => r,
        (Err(Refused::Script(why)), Err(_)) => return Verdict::Rejected(why),
        (Err(Refused::Script(why) | Refused::Other(why)), _) => return Verdict::Failed(format!("kernel: {}", why)),
    };
    let native = match native {
        Ok(r) => r,
        Err(e) => return Verdict::Failed(format!("native: {}", e)),
    };
    if kernel == native {
        Verdict::Same
    } else {
        Verdict::Differ { kernel, native }
    }
}
