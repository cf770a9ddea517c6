//! What the fuzz targets share: program text from the fuzzer's bytes, and a
//! fixed system to check and compile against, so that no target needs root,
//! tracefs or the binaries a program names. Every attach point resolves to
//! itself: a tracepoint has `sys_enter_execve`'s fields, a uprobe a C (or,
//! when its path mentions `go`, a Go) function, a USDT probe three arguments.

use rtrace::diagnostic::{render_all, Diagnostic, Source};
use rtrace::parser::ast::Program;
use rtrace::probe::{arch::Arch, spec, Detail, Lang, ProbeSpec, Resolved, TracepointFormat, UprobeSite, UsdtSite};
use rtrace::sema::{Checked, Env};
use std::path::PathBuf;

/// Positional parameters every run gets: a number, a word, and bytes that are not UTF-8.
pub const PARAMS: &[&str] = &["42", "word", "\u{10ffff}x"];

/// Program text from fuzzer bytes, as rtrace reads a script.
pub fn source(data: &[u8]) -> Source {
    Source::new("fuzz.rt", rtrace::raw_text::from_bytes(data))
}

/// Parses `source`; errors are rendered (the renderer is under test too).
pub fn parse(source: &Source) -> Option<Program> {
    match rtrace::parser::parse(&source.text) {
        Ok(p) => Some(p),
        Err(diags) => {
            rendered(&diags, source);
            None
        }
    }
}

/// Checks `program` against the fixed system; errors are rendered.
pub fn check(program: &Program, source: &Source) -> Option<Checked> {
    let env = fixed_env(program, source)?;
    match rtrace::sema::check(program, &env) {
        Ok(c) => {
            rendered(&c.warnings, source);
            Some(c)
        }
        Err(diags) => {
            rendered(&diags, source);
            None
        }
    }
}

pub fn rendered(diags: &[Diagnostic], source: &Source) {
    std::hint::black_box(render_all(diags, source));
}

/// The environment `check` uses: every probe's attach points resolved
/// without looking at the system.
fn fixed_env(program: &Program, source: &Source) -> Option<Env> {
    let params: Vec<String> = PARAMS.iter().map(|p| p.to_string()).collect();
    let mut resolved = Vec::new();
    for probe in &program.probes {
        let mut points = Vec::new();
        for ap in &probe.attach_points {
            match spec::interpret(ap, &params) {
                Ok(spec) => points.push(resolve(&ap.raw, spec)),
                Err(d) => {
                    rendered(&[d], source);
                    return None;
                }
            }
        }
        resolved.push(points);
    }
    Some(Env::new(params, resolved))
}

const TRACEPOINT_FORMAT: &str = "name: sys_enter_execve
ID: 862
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:const char * filename;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char *const * argv;\toffset:24;\tsize:8;\tsigned:0;
\tfield:char comm[16];\toffset:32;\tsize:16;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:48;\tsize:4;\tsigned:0;
\tfield:u64 ids[4];\toffset:56;\tsize:32;\tsigned:0;

print fmt: \"filename: 0x%08lx\", ((unsigned long)(REC->filename))
";

fn resolve(raw: &str, spec: ProbeSpec) -> Resolved {
    let detail = match &spec {
        ProbeSpec::Tracepoint { .. } => match TracepointFormat::parse(TRACEPOINT_FORMAT) {
            Ok(format) => Detail::Tracepoint(format),
            Err(_) => Detail::None,
        },
        ProbeSpec::Uprobe { target, .. } => Detail::Uprobe(UprobeSite {
            path: PathBuf::from("/fuzz/bin"),
            offset: 0x1040,
            symbol: raw.rsplit(':').next().unwrap_or("").to_string(),
            lang: if target.contains("go") { Lang::Go } else { Lang::C },
        }),
        ProbeSpec::Usdt { provider, name, .. } => Detail::Usdt(UsdtSite {
            path: PathBuf::from("/fuzz/bin"),
            offset: 0x1050,
            semaphore: Some(0x4010),
            provider: provider.clone().unwrap_or_default(),
            name: name.clone(),
            args: rtrace::probe::usdt::parse_args(Arch::host(), "-4@%edi 8@-16(%rbp) 2@$-3"),
        }),
        _ => Detail::None,
    };
    Resolved { name: raw.to_string(), spec, detail }
}
