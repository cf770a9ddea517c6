//! Attach points as the language writes them (`uprobe:./fib:main.Fibonacci`)
//! interpreted into a `ProbeSpec`: provider aliases, arity, numbers and units.

use crate::diagnostic::{closest, Diagnostic};
use crate::parser::ast::AttachPoint;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeSpec {
    Begin,
    End,
    /// `tracepoint:category:event` (either may hold wildcards)
    Tracepoint {
        category: String,
        event: String,
    },
    /// `rawtracepoint:[module:]event` (either may hold wildcards)
    RawTracepoint {
        module: Option<String>,
        event: String,
    },
    /// `iter:KIND`: runs once over every kernel object of KIND
    /// (`task`, `task_file`, `task_vma`) when attached.
    Iter {
        kind: String,
    },
    /// `self:signal:SIGUSR1`: runs in rtrace's own context when rtrace
    /// receives the signal.
    Signal {
        signal: String,
    },
    /// `uprobe:target:function`, `uretprobe:...` (`ret`)
    Uprobe {
        target: String,
        func: UprobeTarget,
        ret: bool,
    },
    /// `usdt:target:[provider:]name`
    Usdt {
        target: String,
        provider: Option<String>,
        name: String,
    },
    /// `kprobe:function[+offset]`, `kretprobe:function` (`ret`)
    Kprobe {
        func: String,
        offset: u64,
        ret: bool,
    },
    /// `kfunc`/`fentry:function`, `kretfunc`/`fexit:function` (`ret`)
    Kfunc {
        func: String,
        ret: bool,
    },
    /// `interval:unit:n`: one CPU, periodically.
    Interval {
        timer: Timer,
    },
    /// `profile:unit:n`: every CPU, periodically.
    Profile {
        timer: Timer,
    },
    /// `software:event[:count]`
    Software {
        event: String,
        count: Option<u64>,
    },
    /// `hardware:event[:count]`
    Hardware {
        event: String,
        count: Option<u64>,
    },
    /// `watchpoint:addr:len:mode`
    Watchpoint {
        addr: u64,
        len: u64,
        mode: String,
        asynchronous: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UprobeTarget {
    /// A symbol name (possibly with wildcards) plus a byte offset into it.
    Symbol { name: String, offset: u64 },
    /// A virtual address in the binary (`0x401000`).
    Address(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Every `n` nanoseconds.
    PeriodNs(u64),
    /// `n` times per second.
    Hz(u64),
}

/// The canonical provider names, then their aliases.
const PROVIDERS: &[(&str, &[&str])] = &[
    ("begin", &["BEGIN"]),
    ("end", &["END"]),
    ("tracepoint", &["t"]),
    ("rawtracepoint", &["rt"]),
    ("uprobe", &["u"]),
    ("uretprobe", &["ur"]),
    ("usdt", &["U"]),
    ("kprobe", &["k"]),
    ("kretprobe", &["kr"]),
    ("kfunc", &["f", "fentry"]),
    ("kretfunc", &["fr", "fexit"]),
    ("interval", &["i"]),
    ("profile", &["p"]),
    ("software", &["s"]),
    ("hardware", &["h"]),
    ("watchpoint", &["w"]),
    ("asyncwatchpoint", &["aw"]),
    ("iter", &["it"]),
    ("self", &[]),
];

/// The kernel iterators `iter:` probes may name (bpftrace's set).
pub const ITERATORS: &[&str] = &["task", "task_file", "task_vma"];

/// The signals `self:signal:` probes may name (bpftrace's set).
pub const SIGNALS: &[&str] = &["SIGUSR1"];

/// The canonical name of a provider or alias (`t` → `tracepoint`).
pub fn canonical_provider(name: &str) -> Option<&'static str> {
    PROVIDERS.iter().find(|(p, aliases)| *p == name || aliases.contains(&name)).map(|(p, _)| *p)
}

impl ProbeSpec {
    /// The canonical provider name (`tracepoint`, `uprobe`, ...).
    pub fn provider(&self) -> &'static str {
        match self {
            ProbeSpec::Begin => "begin",
            ProbeSpec::End => "end",
            ProbeSpec::Tracepoint { .. } => "tracepoint",
            ProbeSpec::RawTracepoint { .. } => "rawtracepoint",
            ProbeSpec::Signal { .. } => "self",
            ProbeSpec::Iter { .. } => "iter",
            ProbeSpec::Uprobe { ret: false, .. } => "uprobe",
            ProbeSpec::Uprobe { ret: true, .. } => "uretprobe",
            ProbeSpec::Usdt { .. } => "usdt",
            ProbeSpec::Kprobe { ret: false, .. } => "kprobe",
            ProbeSpec::Kprobe { ret: true, .. } => "kretprobe",
            ProbeSpec::Kfunc { ret: false, .. } => "kfunc",
            ProbeSpec::Kfunc { ret: true, .. } => "kretfunc",
            ProbeSpec::Interval { .. } => "interval",
            ProbeSpec::Profile { .. } => "profile",
            ProbeSpec::Software { .. } => "software",
            ProbeSpec::Hardware { .. } => "hardware",
            ProbeSpec::Watchpoint { asynchronous: false, .. } => "watchpoint",
            ProbeSpec::Watchpoint { asynchronous: true, .. } => "asyncwatchpoint",
        }
    }
}

/// Interprets one attach point; `params` are the positional parameters, which
/// may appear in attach points as `$1`.
pub fn interpret(ap: &AttachPoint, params: &[String]) -> Result<ProbeSpec, Diagnostic> {
    // `$1 { }`, `BEG$1 { }`: a parameter in the provider too; the attach
    // point is read again once they are replaced.
    if ap.provider.contains('$') {
        let expanded = AttachPoint::split(&expand_params(&ap.raw, params), ap.span);
        if expanded.provider.is_empty() {
            return Err(Diagnostic::error(
                format!("`{}` names no probe: a positional parameter is missing", ap.raw),
                ap.span,
            )
            .with_help("give the attach point as an argument: `rtrace -e '$1 { ... }' interval:s:1`"));
        }
        if !expanded.provider.contains('$') {
            return interpret(&expanded, params);
        }
    }
    let err = |msg: String| Diagnostic::error(msg, ap.span);
    let bad = |e: PartError| err(e.to_string());
    let provider = canonical_provider(&ap.provider).ok_or_else(|| {
        let names = PROVIDERS.iter().map(|(p, _)| *p);
        let d = err(format!("unknown probe type `{}`", ap.provider));
        match closest(&ap.provider, names) {
            Some(s) => d.with_help(format!("did you mean `{}`?", s)),
            None => d.with_help("probe types: begin, end, tracepoint, uprobe, uretprobe, usdt, kprobe, kretprobe, kfunc, kretfunc, rawtracepoint, interval, profile, software, hardware, watchpoint, self"),
        }
    })?;
    let parts: Vec<String> = ap.parts.iter().map(|p| expand_params(p, params)).collect();
    let arity = |expected: &[usize], shape: &str| -> Result<(), Diagnostic> {
        if expected.contains(&parts.len()) {
            Ok(())
        } else {
            Err(err(format!("`{}` is not a valid {} probe: expected `{}`", ap.raw, provider, shape)))
        }
    };
    let spec = match provider {
        "begin" | "end" => {
            arity(&[0], provider)?;
            if provider == "begin" {
                ProbeSpec::Begin
            } else {
                ProbeSpec::End
            }
        }
        "tracepoint" => {
            arity(&[2], "tracepoint:category:event")?;
            ProbeSpec::Tracepoint { category: parts[0].clone(), event: parts[1].clone() }
        }
        "rawtracepoint" => {
            arity(&[1, 2], "rawtracepoint:[module:]event")?;
            let module = if parts.len() == 2 { Some(parts[0].clone()) } else { None };
            ProbeSpec::RawTracepoint { module, event: parts.last().cloned().unwrap_or_default() }
        }
        "iter" => {
            arity(&[1, 2], "iter:task|task_file|task_vma")?;
            if !ITERATORS.contains(&parts[0].as_str()) {
                return Err(err(format!("`{}` is not a supported iterator", parts[0]))
                    .with_help(format!("iterators: {}", ITERATORS.join(", "))));
            }
            if parts.len() == 2 {
                return Err(err(format!(
                    "`{}`: pinning an iterator is not supported yet: rtrace prints what it iterates",
                    ap.raw
                )));
            }
            ProbeSpec::Iter { kind: parts[0].clone() }
        }
        "self" => {
            arity(&[2], "self:signal:SIGUSR1")?;
            if parts[0] != "signal" {
                return Err(err(format!("`self:{}`: the only self probe is `self:signal:SIGUSR1`", parts[0])));
            }
            if !SIGNALS.contains(&parts[1].as_str()) {
                return Err(err(format!("{} is not a supported signal", parts[1]))
                    .with_help(format!("supported: {}", SIGNALS.join(", "))));
            }
            ProbeSpec::Signal { signal: parts[1].clone() }
        }
        "uprobe" | "uretprobe" => {
            arity(&[2], &format!("{}:binary:function", provider))?;
            let func = uprobe_target(&parts[1]).map_err(bad)?;
            ProbeSpec::Uprobe { target: parts[0].clone(), func, ret: provider == "uretprobe" }
        }
        "usdt" => {
            arity(&[1, 2, 3], "usdt:binary:[provider:]name")?;
            // `usdt:*` (with -p): every probe of the process.
            let (target, provider, name) = match parts.as_slice() {
                [name] => (String::new(), None, name.clone()),
                [target, name] => (target.clone(), None, name.clone()),
                [target, provider, name] => (target.clone(), Some(provider.clone()), name.clone()),
                _ => unreachable!("arity checked"),
            };
            ProbeSpec::Usdt { target, provider, name }
        }
        "kprobe" | "kretprobe" => {
            arity(&[1, 2], &format!("{}:function", provider))?;
            let text = parts.last().unwrap();
            let (func, offset) = match text.split_once('+') {
                Some((f, off)) => (f.to_string(), parse_number(off).map_err(bad)?),
                None => (text.clone(), 0),
            };
            if provider == "kretprobe" && offset != 0 {
                return Err(err("kretprobe cannot take an offset".into()));
            }
            ProbeSpec::Kprobe { func, offset, ret: provider == "kretprobe" }
        }
        "kfunc" | "kretfunc" => {
            arity(&[1, 2], &format!("{}:function", provider))?;
            ProbeSpec::Kfunc { func: parts.last().unwrap().clone(), ret: provider == "kretfunc" }
        }
        "interval" | "profile" => {
            arity(
                &[1, 2],
                &format!("{}:unit:count (units: s, ms, us, hz) or {}:period (1s, 500ms)", provider, provider),
            )?;
            let timer = match parts.as_slice() {
                [period] => period_timer(period).map_err(bad)?,
                [unit, count] => timer(unit, count).map_err(bad)?,
                _ => unreachable!("arity checked"),
            };
            if provider == "interval" {
                ProbeSpec::Interval { timer }
            } else {
                ProbeSpec::Profile { timer }
            }
        }
        "software" | "hardware" => {
            arity(&[1, 2], &format!("{}:event[:count]", provider))?;
            let count = parts.get(1).map(|c| parse_number(c)).transpose().map_err(bad)?;
            let event = parts[0].clone();
            if provider == "software" {
                ProbeSpec::Software { event, count }
            } else {
                ProbeSpec::Hardware { event, count }
            }
        }
        "watchpoint" | "asyncwatchpoint" => {
            arity(&[3], &format!("{}:address:length:mode", provider))?;
            let len = parse_number(&parts[1]).map_err(bad)?;
            if ![1, 2, 4, 8].contains(&len) {
                return Err(err(format!("watchpoint length must be one of (1,2,4,8), not {}", len)));
            }
            let mode = &parts[2];
            let mut seen = String::new();
            for c in mode.chars() {
                if !"rwx".contains(c) || seen.contains(c) {
                    return Err(err(format!("watchpoint mode must be a combination of (r,w,x), not `{}`", mode)));
                }
                seen.push(c);
            }
            if seen.is_empty() || (seen.contains('x') && seen.len() > 1) {
                return Err(err(format!("watchpoint mode must be r, w, rw or x, not `{}`", mode)));
            }
            ProbeSpec::Watchpoint {
                addr: parse_number(&parts[0]).map_err(bad)?,
                len,
                mode: mode.clone(),
                asynchronous: provider == "asyncwatchpoint",
            }
        }
        other => return Err(err(format!("`{}` probes are not supported yet", other))),
    };
    Ok(spec)
}

/// What is wrong with one part of an attach point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartError {
    #[error("`{0}` is not a number")]
    NotANumber(String),
    #[error("`{unit}:{count}`: the count must be greater than zero")]
    ZeroCount { unit: String, count: String },
    #[error("unknown time unit `{0}`: expected s, ms, us or hz")]
    UnknownUnit(String),
    #[error("`{count}` {unit} is too long")]
    TooLong { count: String, unit: String },
    #[error("`{0}` is shorter than the shortest period, 1us")]
    TooShort(String),
}

fn uprobe_target(text: &str) -> Result<UprobeTarget, PartError> {
    if text.starts_with("0x") || text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() {
        return Ok(UprobeTarget::Address(parse_number(text)?));
    }
    match text.rsplit_once('+') {
        Some((name, off)) if !name.is_empty() && off.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
            Ok(UprobeTarget::Symbol { name: name.to_string(), offset: parse_number(off)? })
        }
        _ => Ok(UprobeTarget::Symbol { name: text.to_string(), offset: 0 }),
    }
}

fn timer(unit: &str, count: &str) -> Result<Timer, PartError> {
    let n = parse_number(count)?;
    if n == 0 {
        return Err(PartError::ZeroCount { unit: unit.to_string(), count: count.to_string() });
    }
    let scale = match unit {
        "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" => 1_000,
        "ns" => 1,
        "hz" => return Ok(Timer::Hz(n)),
        other => return Err(PartError::UnknownUnit(other.to_string())),
    };
    n.checked_mul(scale)
        .map(Timer::PeriodNs)
        .ok_or_else(|| PartError::TooLong { count: count.to_string(), unit: unit.to_string() })
}

/// `interval:1s`, `i:500ms`, `interval:1000000` (nanoseconds), as bpftrace
/// 0.23+ reads them: at least one microsecond.
fn period_timer(text: &str) -> Result<Timer, PartError> {
    let ns = crate::parser::parse_int(text).map_err(|_| PartError::NotANumber(text.to_string()))?;
    if ns < 1000 {
        return Err(PartError::TooShort(text.to_string()));
    }
    Ok(Timer::PeriodNs(ns))
}

fn parse_number(text: &str) -> Result<u64, PartError> {
    let t = text.replace('_', "");
    let parsed = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
    } else {
        t.parse::<u64>()
    };
    // `1e6`, as bpftrace reads counts.
    let scientific = |t: &str| {
        t.split_once(['e', 'E']).is_some_and(|(m, e)| {
            !m.is_empty() && !e.is_empty() && (m.bytes().chain(e.bytes())).all(|c| c.is_ascii_digit())
        })
    };
    parsed
        .ok()
        .or_else(|| scientific(&t).then(|| crate::parser::parse_int(&t).ok()).flatten())
        .ok_or_else(|| PartError::NotANumber(text.to_string()))
}

/// Replaces `$N` in attach point text by positional parameter N.
fn expand_params(part: &str, params: &[String]) -> String {
    let mut out = String::new();
    let mut chars = part.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '$' {
            let digits: String = part[i + 1..].chars().take_while(|d| d.is_ascii_digit()).collect();
            if let Ok(n) = digits.parse::<usize>() {
                if n >= 1 {
                    out.push_str(params.get(n - 1).map(String::as_str).unwrap_or(""));
                    for _ in 0..digits.len() {
                        chars.next();
                    }
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;

    fn ap(provider: &str, parts: &[&str]) -> AttachPoint {
        AttachPoint {
            raw: std::iter::once(provider).chain(parts.iter().copied()).collect::<Vec<_>>().join(":"),
            provider: provider.into(),
            parts: parts.iter().map(|s| s.to_string()).collect(),
            span: Span::new(0, 1),
        }
    }

    #[test]
    fn interprets_self_raw_tracepoints_and_scientific_counts() {
        assert_eq!(
            interpret(&ap("self", &["signal", "SIGUSR1"]), &[]).unwrap(),
            ProbeSpec::Signal { signal: "SIGUSR1".into() }
        );
        assert!(interpret(&ap("self", &["signal", "SIGHUP"]), &[]).is_err());
        assert!(interpret(&ap("self", &["timer", "SIGUSR1"]), &[]).is_err());
        assert_eq!(
            interpret(&ap("rt", &["vmlinux", "sys_exit"]), &[]).unwrap(),
            ProbeSpec::RawTracepoint { module: Some("vmlinux".into()), event: "sys_exit".into() }
        );
        assert_eq!(
            interpret(&ap("software", &["cpu", "1e6"]), &[]).unwrap(),
            ProbeSpec::Software { event: "cpu".into(), count: Some(1_000_000) }
        );
        assert!(interpret(&ap("software", &["cpu", "1e"]), &[]).is_err());
    }

    #[test]
    fn interprets_common_probes() {
        assert_eq!(
            interpret(&ap("uprobe", &["./fib", "main.Fibonacci"]), &[]).unwrap(),
            ProbeSpec::Uprobe {
                target: "./fib".into(),
                func: UprobeTarget::Symbol { name: "main.Fibonacci".into(), offset: 0 },
                ret: false
            }
        );
        assert_eq!(
            interpret(&ap("ur", &["/bin/x", "f+0x10"]), &[]).unwrap(),
            ProbeSpec::Uprobe {
                target: "/bin/x".into(),
                func: UprobeTarget::Symbol { name: "f".into(), offset: 16 },
                ret: true
            }
        );
        assert_eq!(
            interpret(&ap("interval", &["ms", "500"]), &[]).unwrap(),
            ProbeSpec::Interval { timer: Timer::PeriodNs(500_000_000) }
        );
        assert_eq!(interpret(&ap("profile", &["hz", "99"]), &[]).unwrap(), ProbeSpec::Profile { timer: Timer::Hz(99) });
        assert_eq!(
            interpret(&ap("t", &["syscalls", "sys_enter_*"]), &[]).unwrap(),
            ProbeSpec::Tracepoint { category: "syscalls".into(), event: "sys_enter_*".into() }
        );
    }

    #[test]
    fn positional_parameters_expand() {
        assert_eq!(
            interpret(&ap("uprobe", &["$1", "f"]), &["/bin/true".into()]).unwrap(),
            ProbeSpec::Uprobe {
                target: "/bin/true".into(),
                func: UprobeTarget::Symbol { name: "f".into(), offset: 0 },
                ret: false
            }
        );
    }

    #[test]
    fn positional_parameters_may_be_the_provider_or_the_whole() {
        let whole = AttachPoint::split("$1", Span::new(0, 2));
        assert_eq!(
            interpret(&whole, &["i:ms:5".into()]).unwrap(),
            ProbeSpec::Interval { timer: Timer::PeriodNs(5_000_000) }
        );
        let part = AttachPoint::split("BEG$1", Span::new(0, 5));
        assert_eq!(interpret(&part, &["IN".into()]).unwrap(), ProbeSpec::Begin);
        assert!(interpret(&whole, &[]).unwrap_err().message.contains("positional parameter is missing"));
    }

    #[test]
    fn bad_attach_points_explain_themselves() {
        let e = interpret(&ap("tracepiont", &["a", "b"]), &[]).unwrap_err();
        assert_eq!(e.message, "unknown probe type `tracepiont`");
        assert_eq!(e.help.as_deref(), Some("did you mean `tracepoint`?"));
        let e = interpret(&ap("interval", &["m", "5"]), &[]).unwrap_err();
        assert!(e.message.contains("unknown time unit `m`"), "{}", e.message);
        let e = interpret(&ap("uprobe", &["./x"]), &[]).unwrap_err();
        assert!(e.message.contains("expected `uprobe:binary:function`"), "{}", e.message);
    }
}
