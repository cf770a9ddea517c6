//! Typing function calls: statement calls that emit records (`printf`,
//! `exit`), aggregations assigned to maps (`count`, `sum`), and value
//! functions (`str`, `reg`).

use super::check::Checker;
use super::expr::none;
use super::manifest::{Action, PrintfKind};
use super::typed::*;
use crate::diagnostic::{closest, Diagnostic};
use crate::output::printf::{conversions, parse_format, ArgKind};
use crate::parser::ast::{Expr, ExprKind};
use crate::span::Span;
use crate::types::{AddrSpace, Type};

/// Every function of the bpftrace language, for "did you mean" and for telling
/// "not supported yet" apart from "unknown".
pub(crate) const FUNCTIONS: &[&str] = &[
    "printf",
    "errorf",
    "warnf",
    "exit",
    "assert",
    "fail",
    "static_assert",
    "str",
    "reg",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "stats",
    "hist",
    "lhist",
    "delete",
    "clear",
    "zero",
    "print",
    "time",
    "strftime",
    "join",
    "cat",
    "system",
    "buf",
    "strncmp",
    "strcontains",
    "strstr",
    "kfunc_exist",
    "kfunc_allowed",
    "ntop",
    "pton",
    "ksym",
    "usym",
    "kaddr",
    "uaddr",
    "kstack",
    "ustack",
    "dw_ustack",
    "cgroupid",
    "cgroup_path",
    "signal",
    "signal_thread",
    "override",
    "path",
    "macaddr",
    "bswap",
    "strerror",
    "debugf",
    "unwatch",
    "len",
    "has_key",
    "find",
    "kptr",
    "uptr",
    "skboutput",
    "sizeof",
    "offsetof",
    "strlen",
    "signal_name",
    "syscall_name",
    "getopt",
    "tseries",
    "percpu_kaddr",
    "write_user",
    "is_err",
    "socket_cookie",
    "is_integer",
    "is_unsigned_integer",
    "is_ptr",
    "is_str",
    "is_array",
    "is_literal",
    "strcap",
    "assert_str",
    "default_str_length",
];

impl<'a> Checker<'a> {
    /// Calls that are statements of their own: `printf(...)`, `exit()`.
    pub fn call_statement(&mut self, e: &Expr) -> Option<TStmtKind> {
        let ExprKind::Call { name, name_span, args } = &e.kind else { return None };
        match name.as_str() {
            "printf" => Some(self.printf(PrintfKind::Output, args, e.span)),
            "errorf" => Some(self.printf(PrintfKind::Error, args, e.span)),
            "warnf" => Some(self.printf(PrintfKind::Warning, args, e.span)),
            "exit" => Some(self.exit(*name_span, args, e.span)),
            "assert" | "fail" | "static_assert" => self.assertion(name, *name_span, args, e.span),
            "print" => Some(self.print(name_span, args, e.span)),
            "time" => {
                if !self.arity(name, *name_span, args, 0, 1) {
                    return Some(TStmtKind::Expr(none(e.span)));
                }
                let format = match args.first().map(|a| &a.kind) {
                    None => "%H:%M:%S\n".to_string(),
                    Some(ExprKind::Str(s)) => String::from_utf8_lossy(s).into_owned(),
                    Some(_) => {
                        self.error(args[0].span, "time() needs its format as a string literal");
                        return Some(TStmtKind::Expr(none(e.span)));
                    }
                };
                Some(self.emit(Action::Time { format }, vec![]))
            }
            "join" => Some(self.join(name_span, args, e.span)),
            "cat" | "system" => {
                let Some((format, values)) = self.formatted(name, args, e.span) else {
                    return Some(TStmtKind::Expr(none(e.span)));
                };
                if name == "system" && !self.env.unsafe_calls {
                    self.error(*name_span, "system() runs commands: it needs the --unsafe option");
                }
                let types = values.iter().map(|v| v.ty.clone()).collect();
                let action = if name == "cat" {
                    Action::Cat { format, args: types, span: e.span }
                } else {
                    Action::System { format, args: types, span: e.span }
                };
                Some(self.emit(action, values))
            }
            "debugf" => Some(self.debugf(args, e.span)),
            "signal" | "signal_thread" => Some(TStmtKind::Expr(self.signal(name, *name_span, args, e.span))),
            "clear" | "zero" => {
                let map = self.whole_map(name, *name_span, args, 1, 1)?;
                self.maps[map].shrinks = true;
                self.actions.push(if name == "clear" { Action::ClearMap { map } } else { Action::ZeroMap { map } });
                Some(TStmtKind::Emit { action: self.actions.len() - 1, args: vec![] })
            }
            _ => None,
        }
    }

    /// The map named by a `clear(@x)`-style argument (a map, not an entry).
    fn whole_map(&mut self, name: &str, name_span: Span, args: &[Expr], lo: usize, hi: usize) -> Option<usize> {
        if !self.arity(name, name_span, args, lo, hi) {
            return None;
        }
        match &args[0].kind {
            ExprKind::Map { name: map_name, keys } if keys.is_empty() => Some(self.map_id(map_name, args[0].span)),
            _ => {
                self.error(args[0].span, format!("{}() takes a whole map, like `{}(@x)`", name, name));
                None
            }
        }
    }

    /// `print(@x[, top[, div]])` prints a map; `print(value)` a value.
    fn print(&mut self, name_span: &Span, args: &[Expr], span: Span) -> TStmtKind {
        if matches!(args.first().map(|a| &a.kind), Some(ExprKind::Map { keys, .. }) if keys.is_empty()) {
            let Some(map) = self.whole_map("print", *name_span, args, 1, 3) else { return TStmtKind::Expr(none(span)) };
            let mut consts = [0u64; 2];
            for (slot, arg) in consts.iter_mut().zip(&args[1..]) {
                let e = self.expr(arg);
                match e.kind {
                    TExprKind::Int(n) if (n as i64) >= 0 => *slot = n,
                    _ => self.error(e.span, "print(): top and div must be non-negative integer constants"),
                }
            }
            self.actions.push(Action::PrintMap { map, top: consts[0], div: consts[1] });
            return TStmtKind::Emit { action: self.actions.len() - 1, args: vec![] };
        }
        if !self.arity("print", *name_span, args, 1, 1) {
            return TStmtKind::Expr(none(span));
        }
        let v = self.expr(&args[0]);
        if v.ty == Type::None {
            return TStmtKind::Expr(none(span));
        }
        self.actions.push(Action::PrintValue { ty: v.ty.clone() });
        TStmtKind::Emit { action: self.actions.len() - 1, args: vec![v] }
    }

    /// Aggregations assigned to a map: `@x = count()`, `@x[k] = hist(n)`, ...
    pub fn aggregation(&mut self, value: &Expr) -> Option<AggUpdate> {
        let ExprKind::Call { name, name_span, args } = &value.kind else { return None };
        let (lo, hi) = match name.as_str() {
            "count" => (0, 0),
            "sum" | "avg" | "stats" | "min" | "max" | "hist" => (1, 1),
            "lhist" => (4, 4),
            "tseries" => (3, 4),
            _ => return None,
        };
        if !self.arity(name, *name_span, args, lo, hi) {
            return Some(AggUpdate::Count);
        }
        if name == "count" {
            return Some(AggUpdate::Count);
        }
        let v = self.expr(&args[0]);
        if !v.ty.is_integral() && v.ty != Type::None {
            let msg = format!("{}() needs an integer, not {}", name, v.ty);
            self.error(v.span, msg);
        }
        Some(match name.as_str() {
            "sum" => AggUpdate::Sum(v),
            "avg" => AggUpdate::Avg(v),
            "stats" => AggUpdate::Stats(v),
            "min" => AggUpdate::Min(v),
            "max" => AggUpdate::Max(v),
            "hist" => AggUpdate::Hist(v),
            "tseries" => return Some(self.tseries(v, args)),
            _ => {
                let mut consts = [0i64; 3];
                for (slot, (arg, what)) in consts.iter_mut().zip(args[1..].iter().zip(["min", "max", "step"])) {
                    let e = self.expr(arg);
                    match e.kind {
                        TExprKind::Int(n) => *slot = n as i64,
                        _ if e.ty == Type::None => {}
                        _ => self.error(e.span, format!("lhist(): {} must be an integer constant", what)),
                    }
                }
                let [min, max, step] = consts;
                if step <= 0 {
                    self.error(args[3].span, "lhist(): step must be greater than 0");
                    return Some(AggUpdate::Count);
                }
                if max <= min {
                    self.error(args[2].span, "lhist(): max must be greater than min");
                    return Some(AggUpdate::Count);
                }
                if (max - min) / step > 1000 {
                    self.error(args[3].span, "lhist(): too many buckets: (max - min) / step must be at most 1000");
                    return Some(AggUpdate::Count);
                }
                AggUpdate::Lhist { value: v, min, max, step }
            }
        })
    }

    /// `tseries(value, interval, count[, "avg" | "sum" | "min" | "max"])`:
    /// the interval in ns (a duration literal: `100ms`) and the number of
    /// intervals kept are constants.
    fn tseries(&mut self, value: TExpr, args: &[Expr]) -> AggUpdate {
        let mut consts = [0u64; 2];
        for (slot, (arg, what)) in consts.iter_mut().zip(args[1..3].iter().zip(["interval", "number of intervals"])) {
            let e = self.expr(arg);
            match e.kind {
                TExprKind::Int(n) if n > 0 && (n as i64) > 0 => *slot = n,
                _ if e.ty == Type::None => *slot = 1,
                _ => {
                    self.error(e.span, format!("tseries(): the {} must be a positive integer constant", what));
                    *slot = 1;
                }
            }
        }
        let [interval, count] = consts;
        if count > 1_000_000 {
            self.error(args[2].span, "tseries(): at most 1000000 intervals");
        }
        use super::manifest::TsAgg;
        let agg = match args.get(3).map(|a| &a.kind) {
            None => TsAgg::Last,
            Some(ExprKind::Str(s)) => match s.as_slice() {
                b"avg" => TsAgg::Avg,
                b"sum" => TsAgg::Sum,
                b"min" => TsAgg::Min,
                b"max" => TsAgg::Max,
                _ => {
                    self.error(args[3].span, "tseries(): the aggregation is \"avg\", \"sum\", \"min\" or \"max\"");
                    TsAgg::Last
                }
            },
            Some(_) => {
                self.error(args[3].span, "tseries(): the aggregation must be a string literal");
                TsAgg::Last
            }
        };
        // bpftrace's tests replace the clock by a map (`BPFTRACE_DUMMY_TS_MAP=@ts`).
        let dummy = self.env.config_env.iter().find(|(k, _)| k == "BPFTRACE_DUMMY_TS_MAP").map(|(_, v)| v.clone());
        let span = value.span;
        let time = match dummy {
            Some(name) if name.starts_with('@') => {
                let name = name[1..].to_string();
                self.expr(&Expr { kind: ExprKind::Map { name, keys: vec![] }, span })
            }
            _ => TExpr { kind: TExprKind::Builtin(Builtin::Nsecs(Clock::SwTai)), ty: crate::types::U64, span },
        };
        AggUpdate::TSeries { value, time, interval, count, agg }
    }

    /// `join(argv[, delim])`: the strings of a NULL-ended `char **`.
    fn join(&mut self, name_span: &Span, args: &[Expr], span: Span) -> TStmtKind {
        if !self.arity("join", *name_span, args, 1, 2) {
            return TStmtKind::Expr(none(span));
        }
        let argv = self.expr(&args[0]);
        let space = match &argv.ty {
            Type::Ptr { space, .. } => *space,
            Type::Int { .. } if self.group().kind.is_user() => AddrSpace::User,
            Type::Int { .. } => AddrSpace::Kernel,
            Type::None => return TStmtKind::Expr(none(span)),
            other => {
                let msg = format!("join() needs a pointer to an array of strings, not {}", other);
                self.error(argv.span, msg);
                return TStmtKind::Expr(none(span));
            }
        };
        let delim = match args.get(1).map(|a| &a.kind) {
            None => " ".to_string(),
            Some(ExprKind::Str(s)) => String::from_utf8_lossy(s).into_owned(),
            Some(_) => {
                self.error(args[1].span, "join() needs its delimiter as a string literal");
                return TStmtKind::Expr(none(span));
            }
        };
        let ty = super::manifest::join_args_type();
        let value = TExpr { kind: TExprKind::JoinArgs { argv: Box::new(argv), space }, ty, span };
        self.emit(Action::Join { delim }, vec![value])
    }

    /// `signal(sig)`, `signal_thread(sig)`: `bpf_send_signal(_thread)` to
    /// the traced process (or thread); `sig` a number or a name
    /// (`"SIGUSR1"`, `"usr1"`). Unsafe, as in bpftrace.
    fn signal(&mut self, name: &str, name_span: Span, args: &[Expr], span: Span) -> TExpr {
        if !self.arity(name, name_span, args, 1, 1) {
            return none(span);
        }
        if !self.env.unsafe_calls {
            self.error(name_span, format!("{}() is unsafe. To use you need the --unsafe flag", name));
            return none(span);
        }
        use super::ProgKind;
        if matches!(self.group().kind, ProgKind::Begin | ProgKind::End | ProgKind::Signal) {
            self.error(span, format!("{}() needs a traced process: not in BEGIN, END or self probes", name));
            return none(span);
        }
        let sig = match &args[0].kind {
            ExprKind::Str(text) => {
                let text = String::from_utf8_lossy(text).to_ascii_uppercase();
                let bare = text.strip_prefix("SIG").unwrap_or(&text);
                match crate::output::names::signal_number(bare) {
                    Some(n) => TExpr { kind: TExprKind::Int(n as u64), ty: crate::types::U64, span: args[0].span },
                    None => {
                        self.error(args[0].span, format!("{}(): unknown signal `{}`", name, text));
                        return none(span);
                    }
                }
            }
            _ => {
                let v = self.expr(&args[0]);
                if let TExprKind::Int(n) = v.kind {
                    if !(1..=64).contains(&n) {
                        self.error(v.span, format!("{}(): signal {} is not between 1 and 64", name, n as i64));
                    }
                } else if !v.ty.is_integral() && v.ty != Type::None {
                    let msg = format!("{}() takes a signal number or name, not {}", name, v.ty);
                    self.error(v.span, msg);
                }
                v
            }
        };
        let kind = TExprKind::SendSignal { sig: Box::new(sig), thread: name == "signal_thread" };
        TExpr { kind, ty: crate::types::U64, span }
    }

    /// `debugf(format, args...)`: at most 3 integer or string arguments,
    /// the limit of `bpf_trace_printk`.
    fn debugf(&mut self, args: &[Expr], span: Span) -> TStmtKind {
        let Some((format, values)) = self.formatted("debugf", args, span) else {
            return TStmtKind::Expr(none(span));
        };
        if values.len() > 3 {
            self.error(span, "debugf() takes at most 3 arguments after the format (the limit of bpf_trace_printk)");
        }
        for v in &values {
            if !v.ty.is_scalar() && !v.ty.is_str() && v.ty != Type::None {
                let msg = format!("debugf() prints integers and strings, not {}", v.ty);
                self.error(v.span, msg);
            }
        }
        TStmtKind::Debugf { format: format.into_bytes(), args: values }
    }

    /// Calls that produce a value inside an expression.
    pub fn call(&mut self, name: &str, name_span: Span, args: &[Expr], span: Span) -> TExpr {
        if let Some(v) = self.value_function(name, name_span, args, span) {
            return v;
        }
        if let Some(v) = self.stdlib_builtin_call(name, args, span) {
            return v;
        }
        if let Some(v) = self.map_function(name, name_span, args, span) {
            return v;
        }
        match name {
            "str" => self.str_call(name_span, args, span),
            "kstack" | "ustack" | "dw_ustack" => self.stack_call(name, name_span, args, span),
            "len" if args.len() == 1 && !matches!(args[0].kind, ExprKind::Map { .. }) => self.stack_len(&args[0], span),
            "getopt" => self.getopt(name_span, args, span),
            "reg" => {
                if !self.arity(name, name_span, args, 1, 1) {
                    return none(span);
                }
                let ExprKind::Str(reg) = &args[0].kind else {
                    self.error(args[0].span, "reg() needs a register name in quotes, like reg(\"ip\")");
                    return none(span);
                };
                if !self.group().kind.has_pt_regs() {
                    self.error(span, "reg() is only available in uprobe, kprobe, profile and interval probes");
                    return none(span);
                }
                let reg = String::from_utf8_lossy(reg).into_owned();
                self.pt_regs_load(&reg, args[0].span)
            }
            "printf" | "errorf" | "warnf" | "exit" | "time" | "join" | "cat" | "system" | "debugf" | "assert"
            | "fail" | "static_assert" => {
                self.error(span, format!("{}() is a statement and has no value", name));
                none(span)
            }
            "count" | "sum" => {
                self.error(span, format!("{}() must be assigned to a map, like `@x = {}(...)`", name, name));
                none(span)
            }
            // `comm()`, `pid()`: a builtin called as a function (bpftrace 0.24+).
            _ if args.is_empty() && super::expr::BUILTINS.contains(&name) => self.ident(name, span),
            "comm" => {
                // v0.26 reads another task's comm through the
                // `bpf_task_from_pid` kfunc, which rtrace does not call yet.
                self.unsupported(name_span, "`comm(pid)`");
                none(span)
            }
            _ if FUNCTIONS.contains(&name) => {
                self.unsupported(name_span, format!("`{}()`", name));
                none(span)
            }
            _ => {
                let mut d = Diagnostic::error(format!("unknown function `{}`", name), name_span);
                if let Some(s) = closest(name, FUNCTIONS.iter().copied()) {
                    d = d.with_help(format!("did you mean `{}()`?", s));
                }
                self.report(d);
                none(span)
            }
        }
    }

    /// Checks the argument count; reports and returns false when it is wrong.
    pub fn arity(&mut self, name: &str, span: Span, args: &[Expr], min: usize, max: usize) -> bool {
        if (min..=max).contains(&args.len()) {
            return true;
        }
        let expected = match (min, max) {
            (0, 0) => "no arguments".to_string(),
            (a, b) if a == b => format!("{} argument{}", a, if a == 1 { "" } else { "s" }),
            (0, b) => format!("at most {} argument{}", b, if b == 1 { "" } else { "s" }),
            (a, b) => format!("{} to {} arguments", a, b),
        };
        self.error(span, format!("{}() takes {}, but {} given", name, expected, args.len()));
        false
    }

    fn str_call(&mut self, name_span: Span, args: &[Expr], span: Span) -> TExpr {
        if !self.arity("str", name_span, args, 1, 2) {
            return none(span);
        }
        if let ExprKind::Positional(n) = args[0].kind {
            return self.positional_str(n, args[0].span);
        }
        // `str($1 + k)`: the parameter's text from byte k on (bpftrace folds it).
        if let ExprKind::Binary { op: crate::parser::ast::BinOp::Add, lhs, rhs } = &args[0].kind {
            if let (ExprKind::Positional(n), ExprKind::Int(k)) = (&lhs.kind, &rhs.kind) {
                let TExprKind::Str(text) = self.positional_str(*n, lhs.span).kind else { unreachable!("a literal") };
                let rest = text.get(*k as usize..).unwrap_or_default().to_vec();
                return super::expr::str_literal(rest, args[0].span);
            }
        }
        let p = self.expr(&args[0]);
        let space = match &p.ty {
            Type::Ptr { space, .. } => *space,
            Type::Int { .. } if self.group().kind.is_user() => AddrSpace::User,
            Type::Int { .. } => AddrSpace::Kernel,
            Type::Str { .. } => return p,
            Type::None => return none(span),
            other => {
                let msg = format!("str() needs an integer or a pointer, not {}", other);
                self.error(p.span, msg);
                return none(span);
            }
        };
        let len = match args.get(1) {
            Some(a) => {
                let l = self.expr(a);
                if !l.ty.is_int() && l.ty != Type::None {
                    let msg = format!("str() length must be an integer, not {}", l.ty);
                    self.error(l.span, msg);
                }
                if let TExprKind::Int(v) = l.kind {
                    if (v as i64) < 0 {
                        self.error(l.span, format!("str() cannot use a negative length ({})", v as i64));
                    }
                }
                Some(Box::new(l))
            }
            None => None,
        };
        // Without a length: `max_strlen` characters and a byte for the NUL (or
        // for the mark of a string cut there), as bpftrace below 1024 bytes.
        let size = if len.is_none() && self.strlen < 1024 { self.strlen + 1 } else { self.strlen };
        let ty = Type::Str { size };
        TExpr { kind: TExprKind::ReadStr { ptr: Box::new(p), len, space }, ty, span }
    }

    /// `printf`, `errorf` and `warnf`: the record's values formatted by
    /// the runtime.
    fn printf(&mut self, kind: PrintfKind, args: &[Expr], span: Span) -> TStmtKind {
        let name = match kind {
            PrintfKind::Output => "printf",
            PrintfKind::Warning => "warnf",
            PrintfKind::Error => "errorf",
        };
        let Some((format, values)) = self.formatted(name, args, span) else {
            return TStmtKind::Expr(none(span));
        };
        let types = values.iter().map(|v| v.ty.clone()).collect();
        let expanded_from = self.expansions.iter().rev().map(|x| x.call).collect();
        self.emit(Action::Printf { format, args: types, span, kind, expanded_from, stdlib: None }, values)
    }

    /// `exit()`, `exit(code)`: rtrace's exit code (v0.26).
    fn exit(&mut self, name_span: Span, args: &[Expr], span: Span) -> TStmtKind {
        if !self.arity("exit", name_span, args, 0, 1) {
            return TStmtKind::Expr(none(span));
        }
        let code = args.first().map(|a| self.expr(a));
        if let Some(c) = code.as_ref().filter(|c| !c.ty.is_integral() && c.ty.is_known()) {
            let msg = format!("exit() takes an integer exit code, not {}", c.ty);
            self.error(c.span, msg);
        }
        // An iterator's run ends when the iteration does, and everything it
        // printed is printed (bpftrace's iterators print to their seq
        // file, which exit() does not cut short): `exit()` adds nothing.
        if code.is_none() && matches!(self.group().kind, super::ProgKind::Iter { .. }) {
            return TStmtKind::Expr(TExpr { kind: TExprKind::Int(0), ty: crate::types::U64, span });
        }
        self.actions.push(Action::Exit { code: code.is_some() });
        TStmtKind::Exit { action: self.actions.len() - 1, code }
    }

    /// Pushes an output action; the statement sends its record.
    pub fn emit(&mut self, action: Action, args: Vec<TExpr>) -> TStmtKind {
        self.actions.push(action);
        TStmtKind::Emit { action: self.actions.len() - 1, args }
    }

    /// The format and checked arguments of `printf`, `cat`, `system`.
    pub fn formatted(&mut self, name: &str, args: &[Expr], span: Span) -> Option<(String, Vec<TExpr>)> {
        let Some(first) = args.first() else {
            self.error(span, format!("{}() needs a format string", name));
            return None;
        };
        let ExprKind::Str(fmt) = &first.kind else {
            self.error(first.span, format!("{}() needs a string literal as its format", name));
            return None;
        };
        // Lossless: bytes that are not UTF-8 are printed as they are.
        let format = crate::raw_text::from_bytes(fmt);
        let values: Vec<TExpr> = args[1..].iter().map(|a| self.expr(a)).collect();
        // Point into the format string when it has no escapes (then byte
        // offsets in the format are offsets in the source).
        let spec_span = |range: (usize, usize)| {
            if first.span.len() == fmt.len() + 2 {
                Span::new(first.span.start as usize + 1 + range.0, first.span.start as usize + 1 + range.1)
            } else {
                first.span
            }
        };
        match parse_format(&format) {
            Err(e) => self.error(spec_span(e.range), format!("{}: {}", name, e.message)),
            Ok(pieces) => {
                let specs: Vec<_> = conversions(&pieces).collect();
                if specs.len() != values.len() {
                    self.error(
                        span,
                        format!(
                            "{}: the format has {} conversion{} but {} argument{} given",
                            name,
                            specs.len(),
                            if specs.len() == 1 { "" } else { "s" },
                            values.len(),
                            if values.len() == 1 { " is" } else { "s are" }
                        ),
                    );
                }
                for (spec, v) in specs.iter().zip(&values) {
                    let ok = match spec.kind() {
                        ArgKind::Integer | ArgKind::Pointer => v.ty.is_scalar(),
                        ArgKind::String => v.ty.prints_as_text(),
                        ArgKind::Buffer => matches!(v.ty, Type::Buffer { .. } | Type::Str { .. }),
                    };
                    if !ok && v.ty != Type::None {
                        let want = match spec.kind() {
                            ArgKind::Integer => "an integer",
                            ArgKind::Pointer => "a pointer or an integer",
                            ArgKind::Buffer => "a buffer (`buf()`)",
                            _ => "a string",
                        };
                        let d = Diagnostic::error(
                            format!("{}: this argument should be {}, but it is {}", name, want, v.ty),
                            v.span,
                        )
                        .with_label(
                            spec_span(spec.range),
                            format!("for the conversion `{}`", &format[spec.range.0..spec.range.1]),
                        );
                        self.report(d);
                    }
                }
            }
        }
        for v in &values {
            if matches!(v.ty, Type::Array { .. } | Type::TracepointArgs) {
                self.unsupported(v.span, format!("printing a value of type {}", v.ty));
            }
        }
        Some((format, values))
    }
}
