//! Typing expressions: literals, builtins, variables, maps, operators with
//! bpftrace's signedness rules, casts, fields and indexing.

use super::check::{unify, Checker};
use super::manifest::MapValue;
use super::typed::*;
use super::ProgKind;
use crate::diagnostic::{closest, Diagnostic};
use crate::parser::ast::{BinOp, Expr, ExprKind, TypeName, UnOp};
use crate::probe::usdt::UsdtLoc;
use crate::probe::{Detail, Lang, TpFieldKind, UsdtSite};
use crate::span::Span;
use crate::types::{c_size, tuple_layout, AddrSpace, Type, I64, U64};

/// Builtin variables the language knows, for "did you mean" suggestions.
pub(crate) const BUILTINS: &[&str] = &[
    "pid",
    "tid",
    "uid",
    "gid",
    "nsecs",
    "elapsed",
    "cpu",
    "comm",
    "kstack",
    "ustack",
    "dw_ustack",
    "arg0",
    "arg1",
    "arg2",
    "arg3",
    "arg4",
    "arg5",
    "arg6",
    "arg7",
    "arg8",
    "arg9",
    "sarg0",
    "retval",
    "func",
    "probe",
    "curtask",
    "rand",
    "cgroup",
    "ctx",
    "args",
    "username",
    "cpid",
    "numaid",
    "jiffies",
    "goid",
    "ncpus",
    "usermode",
    "probetype",
    "has_cpid",
    "ppid",
    "pcomm",
    "leader_tid",
    "leader_comm",
];

impl<'a> Checker<'a> {
    pub fn expr(&mut self, e: &Expr) -> TExpr {
        let span = e.span;
        // Only this expression may be without a value, not its operands.
        let void_ok = std::mem::take(&mut self.void_ok);
        match &e.kind {
            ExprKind::Block(b) => self.block_expr(b, span, void_ok),
            ExprKind::Ternary { cond, then, els } => self.ternary(cond, then, els, span, void_ok),
            // `c ? printf("a") : printf("b")`: a statement where there may be no value.
            ExprKind::Call { .. } if void_ok => match self.call_statement(e) {
                Some(kind) => {
                    self.pre.push(TStmt { kind, span });
                    none(span)
                }
                None => self.value(e),
            },
            _ => self.value(e),
        }
    }

    fn value(&mut self, e: &Expr) -> TExpr {
        let span = e.span;
        match &e.kind {
            ExprKind::Int(v) => sized_literal(*v as i64, *v > i64::MAX as u64, span),
            ExprKind::Str(bytes) => str_literal(bytes.clone(), span),
            ExprKind::Bool(b) => TExpr { kind: TExprKind::Int(*b as u64), ty: Type::Bool, span },
            ExprKind::Ident(name) => self.ident(name, span),
            ExprKind::Var(name) => self.read_var(name, span),
            ExprKind::Positional(n) => self.positional(*n, span),
            ExprKind::PositionalCount => int_literal(self.env.params.len() as u64, span),
            ExprKind::Map { name, keys } => self.map_read(name, keys, span),
            ExprKind::Call { name, name_span, args } => self.call(name, *name_span, args, span),
            ExprKind::Unary { op, expr } => self.unary(*op, expr, span),
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, span),
            ExprKind::IncDec { target, increment, prefix } => self.incdec(target, *increment, *prefix, span),
            ExprKind::Ternary { .. } | ExprKind::Block(_) => unreachable!("handled by `expr`"),
            ExprKind::Cast { ty, expr } => self.cast(ty, expr, span),
            ExprKind::Field { expr, field, field_span, arrow } => self.field(expr, field, *field_span, *arrow, span),
            ExprKind::Index { expr, index } => self.index(expr, index, span),
            ExprKind::Tuple(items) => {
                let items: Vec<TExpr> = items.iter().map(|i| self.expr(i)).collect();
                let ty = Type::Tuple(items.iter().map(|i| i.ty.clone()).collect());
                TExpr { kind: TExprKind::Tuple(items), ty, span }
            }
            ExprKind::Record(items) => {
                let values: Vec<TExpr> = items.iter().map(|(_, e)| self.expr(e)).collect();
                if let Some(v) = values.iter().find(|v| !v.ty.is_known()) {
                    return TExpr { ty: v.ty.clone(), ..none(span) };
                }
                let names: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
                if let Some(dup) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)) {
                    self.error(span, format!("the record has two fields named `{}`", dup.1));
                    return none(span);
                }
                let types: Vec<Type> = values.iter().map(|v| v.ty.clone()).collect();
                let ty = Type::Record(std::sync::Arc::new(crate::types::record_of(&names, &types)));
                TExpr { kind: TExprKind::Struct(values), ty, span }
            }
            ExprKind::SizeofType(ty) => match self.type_name(ty) {
                Some(t) => int_literal(c_size(&t) as u64, span),
                None => none(span),
            },
            ExprKind::SizeofExpr(inner) => {
                // `sizeof(qspinlock)`: a bare name that is a kernel type.
                if let ExprKind::Ident(n) = &inner.kind {
                    let value_name = BUILTINS.contains(&n.as_str())
                        || self.defines.contains_key(n)
                        || self.enum_constant(n).is_some();
                    if let Some(t) = self.env.facts.0.named_type(n).filter(|_| !value_name) {
                        return int_literal(c_size(&t) as u64, span);
                    }
                }
                let t = self.expr(inner);
                int_literal(c_size(&t.ty) as u64, span)
            }
            ExprKind::Offsetof { ty, field } => self.offsetof(ty, field, span),
        }
    }

    /// `offsetof(struct Foo, bar.x)`: the offset of a member, through
    /// nested (and anonymous) structs, at compile time.
    fn offsetof(&mut self, ty: &TypeName, path: &str, span: Span) -> TExpr {
        let Some(mut t) = self.type_name(ty) else { return none(span) };
        let mut offset = 0u64;
        for name in path.split('.') {
            let Type::Record(r) = &t else {
                self.error(span, format!("offsetof(): {} is not a struct or union", t));
                return none(span);
            };
            let r = self.full_record(r);
            let Some(m) = self.member(&r, name, span) else { return none(span) };
            offset += m.offset as u64;
            t = m.ty;
        }
        int_literal(offset, span)
    }

    pub fn ident(&mut self, name: &str, span: Span) -> TExpr {
        if let Some(value) = self.defines.get(name).cloned() {
            return self.define_value(name, &value, span);
        }
        // bpftrace 0.24+ defines each builtin as a stdlib macro around
        // `__builtin_name`: both spellings are the builtin.
        if let Some(builtin) = name.strip_prefix("__builtin_").filter(|b| BUILTINS.contains(b)) {
            return self.ident(builtin, span);
        }
        if let Some(v) = self.stdlib_builtin(name, span) {
            return v;
        }
        let kind = self.group().kind.clone();
        let builtin = |b: Builtin, ty: Type| TExpr { kind: TExprKind::Builtin(b), ty, span };
        match name {
            "uid" => builtin(Builtin::Uid, U64),
            "gid" => builtin(Builtin::Gid, U64),
            "elapsed" => builtin(Builtin::Elapsed, U64),
            "cpu" => builtin(Builtin::Cpu, U64),
            "rand" => builtin(Builtin::Rand, U64),
            "cgroup" => builtin(Builtin::Cgroup, U64),
            "numaid" => builtin(Builtin::NumaId, U64),
            "jiffies" => builtin(Builtin::Jiffies, U64),
            "comm" => builtin(Builtin::Comm, Type::Str { size: 16 }),
            "retval" => match kind {
                // Go's first result register is C's return register (ax, x0).
                _ if kind.at_return() => {
                    let reg = self.env.arch.return_register();
                    self.pt_regs_load(reg, span)
                }
                ProgKind::Kretfunc { func } => self.kretfunc_retval(&func, span),
                _ => {
                    self.error(span, "`retval` is only available in uretprobe, kretprobe and kretfunc probes");
                    none(span)
                }
            },
            "func" if kind.has_pt_regs() && kind != ProgKind::PerfEvent => {
                let names = self.group().resolved.iter().map(|r| match &r.detail {
                    Detail::Uprobe(site) => site.symbol.clone(),
                    _ => r.name.rsplit(':').next().unwrap_or("").to_string(),
                });
                site_name(names.collect(), span)
            }
            "func" => {
                self.error(span, "`func` is only available in uprobe, uretprobe, kprobe and kretprobe probes");
                none(span)
            }
            "probe" => site_name(self.group().resolved.iter().map(|r| r.name.clone()).collect(), span),
            // `args` read as a whole: a struct of every field or parameter
            // (`args.f` reads one without it, see `field`).
            "args" => {
                if self.args_base(span).is_none() {
                    return none(span);
                }
                self.args_value(span)
            }
            "goid" => self.goid(span),
            "cpid" => {
                if !self.env.child {
                    self.error(span, "`cpid` needs a command to trace: run rtrace with -c CMD");
                    return none(span);
                }
                builtin(Builtin::Cpid, U64)
            }
            n if n.starts_with("arg") && n[3..].parse::<usize>().is_ok() => {
                let idx: usize = n[3..].parse().unwrap();
                self.arg(idx, span)
            }
            "curtask" => {
                // The kernel's `struct task_struct`, its members from BTF.
                let task = self.record("struct task_struct").unwrap_or_else(|| {
                    std::sync::Arc::new(crate::types::Record {
                        name: "struct task_struct".into(),
                        fields: vec![],
                        size: 0,
                        align: 8,
                    })
                });
                let ty = Type::Ptr { pointee: Box::new(Type::Record(task)), space: AddrSpace::Kernel };
                TExpr { kind: TExprKind::Builtin(Builtin::CurTask), ty, span }
            }
            "kstack" | "ustack" | "dw_ustack" => self.stack_builtin(name, span),
            n if n.starts_with("sarg") => {
                self.unsupported(span, format!("`{}`", name));
                none(span)
            }
            _ if self.enum_constant(name).is_some() => {
                let (e, v) = self.enum_constant(name).expect("found");
                // A constant is 8 bytes wide whatever its enum's width (v0.26).
                let e = if e.bytes == 8 {
                    e
                } else {
                    std::sync::Arc::new(crate::types::EnumType { bytes: 8, ..(*e).clone() })
                };
                TExpr { kind: TExprKind::Int(v), ty: Type::Enum(e), span }
            }
            _ => {
                let mut d = Diagnostic::error(format!("unknown identifier `{}`", name), span);
                if let Some(s) = closest(name, BUILTINS.iter().copied()) {
                    d = d.with_help(format!("did you mean `{}`?", s));
                }
                self.report(d);
                none(span)
            }
        }
    }

    /// `goid`: the current goroutine's id, `runtime.g.goid` read through
    /// the register Go's code keeps `g` in. A goroutine can move to another
    /// thread between a function's entry and its return; its id stays.
    fn goid(&mut self, span: Span) -> TExpr {
        let g = self.group();
        let sites: Vec<_> = g
            .resolved
            .iter()
            .filter_map(|r| match &r.detail {
                Detail::Uprobe(site) if g.kind.is_user() => Some(site.clone()),
                _ => None,
            })
            .collect();
        if sites.is_empty() || sites.len() != g.resolved.len() {
            self.error(span, "`goid` is only available in uprobe and uretprobe probes on Go functions");
            return none(span);
        }
        if let Some(c) = sites.iter().find(|s| s.lang != Lang::Go) {
            self.error(
                span,
                format!("`goid` needs a Go function: `{}` in `{}` is not one", c.symbol, c.path.display()),
            );
            return none(span);
        }
        let mut paths: Vec<&std::path::Path> = sites.iter().map(|s| s.path.as_path()).collect();
        paths.dedup();
        let mut offset = None;
        for path in paths {
            match self.env.facts.0.goid_offset(path) {
                Ok(o) if offset.is_none_or(|known| known == o) => offset = Some(o),
                Ok(_) => {
                    self.error(
                        span,
                        "`goid`: the probed binaries keep it at different places; write one probe per binary",
                    );
                    return none(span);
                }
                Err(e) => {
                    let d = Diagnostic::error(format!("`goid`: {}", e), span);
                    self.report(match e {
                        crate::system::GoidError::Unknown { .. } => {
                            d.with_help("a binary built without `-ldflags=-w` has the DWARF that says where it is")
                        }
                        _ => d,
                    });
                    return none(span);
                }
            }
        }
        let g_reg = self.pt_regs_load(self.env.arch.go_g_register(), span);
        let at = byte_arith(BinOp::Add, g_reg, int_literal(offset.unwrap_or(0), span), span);
        TExpr { kind: TExprKind::Deref { ptr: Box::new(at), space: AddrSpace::User }, ty: U64, span }
    }

    /// `args` as the base of `args.f`: the tracepoint's record, or the
    /// uprobe's DWARF parameters; `None` (reported) in other probes.
    fn args_base(&mut self, span: Span) -> Option<TExpr> {
        let kind = self.group().kind.clone();
        let uprobe = kind == ProgKind::Uprobe
            && matches!(self.group().resolved.first().map(|r| &r.detail), Some(Detail::Uprobe(_)));
        let kfunc = kind.has_arg_array();
        if kind != ProgKind::Tracepoint && !uprobe && !kfunc {
            self.unsupported(span, "`args` outside tracepoint, rawtracepoint, uprobe and kfunc probes");
            return None;
        }
        Some(TExpr { kind: TExprKind::Int(0), ty: Type::TracepointArgs, span })
    }

    /// `args` as a value (printed, stored, a key, in a tuple), as bpftrace
    /// v0.26 allows: a struct of the tracepoint's fields (a copy of its
    /// record) or of the uprobe's parameters (read from their registers),
    /// laid out as C does.
    fn args_value(&mut self, span: Span) -> TExpr {
        let names: Vec<String> = match self.group().resolved.first().map(|r| &r.detail) {
            // The `common_*` fields are the kernel's bookkeeping, and the
            // verifier refuses reads of the first 8 bytes of the record.
            Some(Detail::Tracepoint(format)) => format.user_fields().map(|f| f.name.clone()).collect(),
            Some(Detail::Uprobe(site)) => {
                let site = site.clone();
                match self.env.facts.0.params(&site.path, &site.symbol) {
                    Some(params) => params.into_iter().map(|(n, _)| n).collect(),
                    None => {
                        self.error(
                            span,
                            format!("`args`: no DWARF parameters for `{}` in `{}`", site.symbol, site.path.display()),
                        );
                        return none(span);
                    }
                }
            }
            _ if self.group().kind.has_arg_array() => {
                let Some((_, params)) = self.array_params(span) else { return none(span) };
                params.into_iter().map(|(n, _)| n).collect()
            }
            _ => return none(span),
        };
        let tracepoint = self.group().kind == ProgKind::Tracepoint;
        let kfunc = self.group().kind.has_arg_array();
        // A tracepoint's struct is its record from the first of those fields on.
        let start = match self.group().resolved.first().map(|r| &r.detail) {
            Some(Detail::Tracepoint(format)) if tracepoint => format.user_fields().map(|f| f.offset).min().unwrap_or(0),
            _ => 0,
        };
        let mut values = Vec::new();
        let mut members = Vec::new();
        let (mut size, mut align) = (0u32, 1u32);
        for name in names {
            let v = if tracepoint {
                self.tracepoint_field(&name, span, span)
            } else if kfunc {
                self.kfunc_param(&name, span, span)
            } else {
                self.uprobe_param(&name, span, span)
            };
            let ty = match (&v.ty, &v.kind) {
                (Type::None, _) => return none(span),
                // A `__data_loc` string is its 4-byte locator in the record.
                (_, TExprKind::DataLocString { .. }) => Type::Int { bytes: 4, signed: false },
                (t, _) => t.clone(),
            };
            let (fs, fa) = (c_size(&ty), crate::types::c_align(&ty).max(1));
            let offset = match (tracepoint, self.group().resolved.first().map(|r| &r.detail)) {
                (true, Some(Detail::Tracepoint(f))) => f.field(&name).map_or(0, |f| f.offset - start),
                _ => size.div_ceil(fa) * fa,
            };
            align = align.max(fa);
            size = size.max(offset + fs);
            members.push(crate::types::Member { name, offset, ty, bits: None });
            values.push(v);
        }
        let record =
            crate::types::Record { name: String::new(), fields: members, size: size.div_ceil(align) * align, align };
        let ty = Type::Record(std::sync::Arc::new(record));
        if tracepoint {
            // The record itself, copied from the context.
            let Ok(offset) = i16::try_from(start) else { return none(span) };
            return TExpr { kind: TExprKind::CtxLoad { offset, bytes: 8, signed: false }, ty, span };
        }
        TExpr { kind: TExprKind::Struct(values), ty, span }
    }

    /// `argN`: the N-th argument register of the probed function's ABI.
    fn arg(&mut self, n: usize, span: Span) -> TExpr {
        let kind = self.group().kind.clone();
        // A raw tracepoint's arguments: an array of u64s, at most 12.
        if kind == ProgKind::RawTracepoint && n < 12 {
            return self.trampoline_slot(n as u32, U64, &format!("arg{}", n), span);
        }
        if !matches!(kind, ProgKind::Uprobe | ProgKind::Kprobe) {
            let hint = if kind == ProgKind::Tracepoint { " (tracepoints use `args->name`)" } else { "" };
            self.error(span, format!("`arg{}` is only available in uprobe and kprobe probes{}", n, hint));
            return none(span);
        }
        let lang = match self.group().resolved.first().map(|r| &r.detail) {
            Some(Detail::Uprobe(site)) => site.lang,
            Some(Detail::Usdt(site)) => {
                let site = site.clone();
                return self.usdt_arg(&site, n, span);
            }
            _ => Lang::C,
        };
        match self.env.arch.arg_register(lang, n) {
            Some(reg) => self.pt_regs_load(reg, span),
            None => {
                self.unsupported(span, format!("`arg{}` (arguments passed on the stack)", n));
                none(span)
            }
        }
    }

    /// `argN` of a USDT probe: where its note says the value is (a register,
    /// a constant, or memory at a register plus an offset), widened to 64
    /// bits with the sign the note gives.
    fn usdt_arg(&mut self, site: &UsdtSite, n: usize, span: Span) -> TExpr {
        let Some(arg) = site.args.get(n) else {
            self.error(
                span,
                format!("`arg{}`: USDT probe `{}:{}` has {} arguments", n, site.provider, site.name, site.args.len()),
            );
            return none(span);
        };
        let narrow = Type::Int { bytes: arg.bytes, signed: arg.signed };
        let wide = if arg.signed { I64 } else { U64 };
        let value = match &arg.loc {
            // `4@$-202182160` of a uint32_t is 4092785136: the constant is narrowed too.
            UsdtLoc::Imm(v) => {
                TExpr { kind: TExprKind::IntCast(Box::new(int_literal(*v as u64, span))), ty: narrow, span }
            }
            UsdtLoc::Reg(reg) => {
                let r = self.pt_regs_load(reg, span);
                TExpr { kind: TExprKind::IntCast(Box::new(r)), ty: narrow, span }
            }
            UsdtLoc::Mem { base, offset, index } => {
                let base = self.pt_regs_load(base, span);
                let mut addr = byte_arith(BinOp::Add, base, int_literal(*offset as u64, span), span);
                if let Some((index, scale)) = index {
                    let idx = self.pt_regs_load(index, span);
                    let scaled = byte_arith(BinOp::Mul, idx, int_literal(*scale as u64, span), span);
                    addr = byte_arith(BinOp::Add, addr, scaled, span);
                }
                TExpr { kind: TExprKind::Deref { ptr: Box::new(addr), space: AddrSpace::User }, ty: narrow, span }
            }
            UsdtLoc::Symbol { .. } | UsdtLoc::Unsupported => {
                self.unsupported(span, format!("`arg{}`: reading the USDT argument `{}`", n, arg.text));
                return none(span);
            }
        };
        TExpr { kind: TExprKind::IntCast(Box::new(value)), ty: wide, span }
    }

    /// `args.name` in a uprobe: the parameter `name` of the probed function,
    /// from the binary's DWARF, read from its argument register.
    fn uprobe_param(&mut self, field: &str, field_span: Span, span: Span) -> TExpr {
        let Some(Detail::Uprobe(site)) = self.group().resolved.first().map(|r| r.detail.clone()) else {
            return none(span);
        };
        let params = self.env.facts.0.params(&site.path, &site.symbol);
        let Some(params) = params else {
            self.error(span, format!("`args`: no DWARF parameters for `{}` in `{}`", site.symbol, site.path.display()));
            return none(span);
        };
        let Some(n) = params.iter().position(|(name, _)| name == field) else {
            let mut d = Diagnostic::error(format!("`{}` has no parameter `{}`", site.symbol, field), field_span);
            if let Some(s) = closest(field, params.iter().map(|(n, _)| n.as_str())) {
                d = d.with_help(format!("did you mean `{}`?", s));
            }
            self.report(d);
            return none(span);
        };
        let ty = params[n].1.clone();
        let raw = self.arg(n, span);
        match ty {
            Type::Int { .. } => TExpr { kind: TExprKind::IntCast(Box::new(raw)), ty, span },
            Type::Ptr { .. } => TExpr { kind: TExprKind::Retype(Box::new(raw)), ty, span },
            other => {
                self.unsupported(span, format!("the parameter `{}` of type {} (passed by value)", field, other));
                none(span)
            }
        }
    }

    /// The prototype of the function a kfunc/kretfunc probe traces, from BTF.
    fn kfunc_prototype(&mut self, span: Span) -> Option<(String, crate::system::btf::Prototype)> {
        let (ProgKind::Kfunc { func } | ProgKind::Kretfunc { func }) = self.group().kind.clone() else { return None };
        match self.env.facts.0.kernel_function(&func) {
            Some(proto) => Some((func, proto)),
            None => {
                self.error(span, format!("no BTF prototype for kernel function `{}`", func));
                None
            }
        }
    }

    /// The named arguments of a kfunc/kretfunc (its function's BTF
    /// prototype) or a raw tracepoint (from BTF when resolved): what the
    /// probe is, and its parameters.
    fn array_params(&mut self, span: Span) -> Option<(String, Vec<(String, Type)>)> {
        if self.group().kind == ProgKind::RawTracepoint {
            let first = self.group().resolved.first()?;
            return match &first.detail {
                Detail::RawTracepoint { params } if !params.is_empty() => {
                    Some((format!("raw tracepoint `{}`", first.name), params.clone()))
                }
                _ => {
                    let name = first.name.clone();
                    self.error(span, format!("no BTF for the arguments of `{}`: use arg0, arg1, ...", name));
                    None
                }
            };
        }
        let (func, proto) = self.kfunc_prototype(span)?;
        Some((format!("kernel function `{}`", func), proto.params))
    }

    /// `args.name` in a kfunc/kretfunc or rawtracepoint: the parameter
    /// `name`, typed from BTF. A BPF trampoline and a raw tracepoint both
    /// hand the program the arguments as an array of u64s (`ctx[i]`).
    fn kfunc_param(&mut self, field: &str, field_span: Span, span: Span) -> TExpr {
        let Some((what, params)) = self.array_params(span) else { return none(span) };
        let Some(n) = params.iter().position(|(name, _)| name == field) else {
            let mut d = Diagnostic::error(format!("{} has no parameter `{}`", what, field), field_span);
            if let Some(s) = closest(field, params.iter().map(|(n, _)| n.as_str())) {
                d = d.with_help(format!("did you mean `{}`?", s));
            }
            self.report(d);
            return none(span);
        };
        let ty = params[n].1.clone();
        self.trampoline_slot(n as u32, ty, field, span)
    }

    /// `retval` in a kretfunc: after the arguments in the trampoline's array.
    fn kretfunc_retval(&mut self, func: &str, span: Span) -> TExpr {
        let Some((_, proto)) = self.kfunc_prototype(span) else { return none(span) };
        if proto.ret == Type::None {
            self.error(span, format!("kernel function `{}` returns nothing (void): there is no `retval`", func));
            return none(span);
        }
        self.trampoline_slot(proto.params.len() as u32, proto.ret, "retval", span)
    }

    /// Slot `n` of a BPF trampoline's u64 array, as `ty`.
    fn trampoline_slot(&mut self, n: u32, ty: Type, what: &str, span: Span) -> TExpr {
        // A kernel function takes at most a handful of arguments (the
        // trampoline supports 12): the offset always fits.
        let offset = 8 * n.min(64) as i16;
        let raw = TExpr { kind: TExprKind::CtxLoad { offset, bytes: 8, signed: false }, ty: U64, span };
        match ty {
            Type::Int { .. } => TExpr { kind: TExprKind::IntCast(Box::new(raw)), ty, span },
            Type::Ptr { .. } => TExpr { kind: TExprKind::Retype(Box::new(raw)), ty, span },
            other => {
                self.unsupported(span, format!("`{}` of type {} (passed by value)", what, other));
                none(span)
            }
        }
    }

    /// A 64-bit register of the probe's `pt_regs` context.
    pub fn pt_regs_load(&mut self, reg: &str, span: Span) -> TExpr {
        match self.env.arch.reg_offset(reg) {
            Some(offset) => TExpr { kind: TExprKind::CtxLoad { offset, bytes: 8, signed: false }, ty: U64, span },
            None => {
                let regs = self.env.arch.registers();
                let mut d = Diagnostic::error(format!("unknown register `{}`", reg), span);
                if let Some(s) = closest(reg, regs.iter().copied()) {
                    d = d.with_help(format!("did you mean `{}`?", s));
                }
                self.report(d.with_note(format!("{} registers: {}", self.env.arch.name(), regs.join(", "))));
                none(span)
            }
        }
    }

    /// A `#define`d name: its value, an integer or a string literal.
    fn define_value(&mut self, name: &str, value: &str, span: Span) -> TExpr {
        if let Some(v) = c_int(value) {
            return int_literal(v as u64, span).with_type(I64);
        }
        if let Some(text) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            return str_literal(text.as_bytes().to_vec(), span);
        }
        self.unsupported(span, format!("`#define {} {}`: only integer and string values are", name, value));
        none(span)
    }

    fn positional(&mut self, n: u32, span: Span) -> TExpr {
        let value = self.env.params.get(n as usize - 1).cloned().unwrap_or_else(|| "0".into());
        match parse_int(&value) {
            Some(v) => int_literal(v as u64, span).with_type(I64),
            // v0.26: a parameter that is not a number is a string.
            None => str_literal(crate::raw_text::to_bytes(&value), span),
        }
    }

    /// `$N` as a string (`str($1)`): the text of the parameter.
    pub fn positional_str(&mut self, n: u32, span: Span) -> TExpr {
        let value = self.env.params.get(n as usize - 1).cloned().unwrap_or_default();
        str_literal(crate::raw_text::to_bytes(&value), span)
    }

    fn map_read(&mut self, name: &str, keys: &[Expr], span: Span) -> TExpr {
        let map = self.map_id(name, span);
        let keys = self.map_keys(map, keys, span);
        match self.maps[map].value.clone() {
            Some(MapValue::Plain(ty)) => TExpr { kind: TExprKind::MapRead { map, keys }, ty, span },
            Some(agg) if agg.read_type().is_some() => {
                let ty = agg.read_type().expect("checked");
                TExpr { kind: TExprKind::AggRead { map, keys }, ty, span }
            }
            Some(other) => {
                self.error(span, format!("a {} map cannot be read in an expression, only printed", other.describe()));
                none(span)
            }
            // No assignment has typed the map yet: it reads as a zero whose
            // type the operands around it decide. The last pass reports a
            // map still without a type once it has walked everything.
            None if self.final_pass => none(span),
            None => TExpr { kind: TExprKind::MapRead { map, keys }, ty: Type::Unknown, span },
        }
    }

    /// An unset map reads as zero: once `zero_unset`, an operand of unknown
    /// type takes the type of the other one, as if it were a zero of that type
    /// (`@n + 1` is an int64, `@n + pid` a uint64). False while either is
    /// still unknown.
    fn adopt_unknown(&self, a: &mut TExpr, b: &mut TExpr) -> bool {
        match (a.ty == Type::Unknown, b.ty == Type::Unknown) {
            (false, false) => true,
            (true, true) => false,
            _ if !self.zero_unset => false,
            (true, false) => {
                a.ty = b.ty.clone();
                true
            }
            (false, true) => {
                b.ty = a.ty.clone();
                true
            }
        }
    }

    fn unary(&mut self, op: UnOp, inner: &Expr, span: Span) -> TExpr {
        let mut e = self.expr(inner);
        if e.ty == Type::Unknown {
            // An integer operator on an unset map: an int64 zero, as `@x++`
            // takes it. Nothing says what an unset map points to.
            if !self.zero_unset || op == UnOp::Deref {
                return unknown(e, span);
            }
            e.ty = I64;
        }
        match op {
            UnOp::Neg | UnOp::BitNot | UnOp::Not => {
                if !e.ty.is_scalar() {
                    if e.ty != Type::None {
                        self.error(span, format!("`{}` needs an integer, not {}", op.symbol(), e.ty));
                    }
                    return none(span);
                }
                if let (UnOp::Neg, TExprKind::Int(v)) = (op, &e.kind) {
                    // Fold `-literal` so it stays a literal (signedness rules need that).
                    return sized_literal((*v as i64).wrapping_neg(), false, span);
                }
                if let (UnOp::Not, TExprKind::Int(v)) = (op, &e.kind) {
                    return TExpr { kind: TExprKind::Int((*v == 0) as u64), ty: Type::Bool, span };
                }
                let (uop, ty) = match op {
                    UnOp::Neg => (UnaryOp::Neg, Type::Int { bytes: 8, signed: true }),
                    // `~10` is 18446744073709551605: a literal's bits are unsigned (v0.26).
                    UnOp::BitNot if is_nonneg_literal(&e) => (UnaryOp::BitNot, U64),
                    UnOp::BitNot => (UnaryOp::BitNot, Type::Int { bytes: 8, signed: e.ty.is_signed() }),
                    _ => (UnaryOp::Not, Type::Bool),
                };
                TExpr { kind: TExprKind::Unary { op: uop, expr: Box::new(e) }, ty, span }
            }
            UnOp::Deref => match e.ty.clone() {
                Type::Ptr { pointee, space } => self.deref(e, *pointee, space, span),
                Type::None => none(span),
                other => {
                    self.error(span, format!("cannot dereference a value of type {}", other));
                    none(span)
                }
            },
            // bpftrace v0.26: `&$x` points to the variable, which the
            // program reads like any kernel memory (`*&$x`).
            UnOp::AddrOf => match e.kind {
                TExprKind::Var(id) => {
                    let ty = Type::Ptr { pointee: Box::new(e.ty.clone()), space: AddrSpace::Kernel };
                    TExpr { kind: TExprKind::VarAddr(id), ty, span }
                }
                TExprKind::MapRead { .. } | TExprKind::AggRead { .. } => {
                    self.unsupported(span, "the address of a map value (`&@x`)");
                    none(span)
                }
                _ => {
                    self.error(span, "`&` takes the address of a variable: `&$x`");
                    none(span)
                }
            },
        }
    }

    fn deref(&mut self, ptr: TExpr, pointee: Type, space: AddrSpace, span: Span) -> TExpr {
        let pointee = match pointee {
            Type::Record(r) => Type::Record(self.full_record(&r)),
            other => other,
        };
        match pointee {
            Type::Int { .. } | Type::Ptr { .. } => {
                TExpr { kind: TExprKind::Deref { ptr: Box::new(ptr), space }, ty: pointee, span }
            }
            // Structs, arrays, char arrays and tuples are copied whole.
            Type::Record(_) | Type::Array { .. } | Type::Str { .. } | Type::Tuple(_) => {
                TExpr { kind: TExprKind::ReadMem { ptr: Box::new(ptr), space }, ty: pointee, span }
            }
            other => {
                self.unsupported(span, format!("dereferencing a pointer to {}", other));
                none(span)
            }
        }
    }

    /// `lhs op rhs` for every binary operator; also used for `x op= v`.
    pub fn binary(&mut self, op: BinOp, lhs: &Expr, rhs: &Expr, span: Span) -> TExpr {
        let l = self.expr(lhs);
        let r = self.expr(rhs);
        self.binary_typed(op, l, r, span)
    }

    pub fn binary_typed(&mut self, op: BinOp, mut l: TExpr, mut r: TExpr, span: Span) -> TExpr {
        if l.ty == Type::None || r.ty == Type::None {
            return none(span);
        }
        if !self.adopt_unknown(&mut l, &mut r) {
            return unknown(l, span);
        }
        if matches!(op, BinOp::And | BinOp::Or) {
            self.expect_condition(&l);
            self.expect_condition(&r);
            let kind = TExprKind::Logical { and: op == BinOp::And, lhs: Box::new(l), rhs: Box::new(r) };
            return TExpr { kind, ty: Type::Bool, span };
        }
        if matches!(l.ty, Type::Bool | Type::Enum(_)) || matches!(r.ty, Type::Bool | Type::Enum(_)) {
            // `&`, `|`, `^` of two booleans is a boolean; otherwise a boolean
            // counts as the integer 0 or 1, and an enum value as its integer
            // (no longer printed by name, as in bpftrace).
            let both = l.ty == Type::Bool && r.ty == Type::Bool;
            if both && matches!(op, BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor) {
                let kind = TExprKind::Binary { op, lhs: Box::new(l), rhs: Box::new(r), signed: false };
                return TExpr { kind, ty: Type::Bool, span };
            }
            let as_int = |e: TExpr| match e.ty.int_width() {
                Some((bytes, signed)) if !e.ty.is_int() => e.with_type(Type::Int { bytes, signed }),
                _ => e,
            };
            (l, r) = (as_int(l), as_int(r));
        }
        if l.ty.is_str() || r.ty.is_str() {
            return self.string_compare(op, l, r, span);
        }
        if let (Type::Tuple(a), Type::Tuple(b), BinOp::Eq | BinOp::Ne) = (&l.ty, &r.ty, op) {
            if a.len() == b.len() {
                return self.tuple_compare(op, l, r, span);
            }
        }
        let same_arrays = matches!(l.ty, Type::Array { .. }) && l.ty == r.ty;
        if let (Type::Buffer { .. }, Type::Buffer { .. }, BinOp::Eq | BinOp::Ne) = (&l.ty, &r.ty, op) {
            let kind = TExprKind::BufEq { lhs: Box::new(l), rhs: Box::new(r), negate: op == BinOp::Ne };
            return TExpr { kind, ty: Type::Bool, span };
        }
        // Stacks of one kind are equal when they name the same frames (and process).
        let same_stacks = matches!(l.ty, Type::Stack(_)) && l.ty == r.ty;
        if (same_arrays || same_stacks) && matches!(op, BinOp::Eq | BinOp::Ne) {
            let kind = TExprKind::BufEq { lhs: Box::new(l), rhs: Box::new(r), negate: op == BinOp::Ne };
            return TExpr { kind, ty: Type::Bool, span };
        }
        if l.ty.is_ptr() || r.ty.is_ptr() {
            return self.pointer_arith(op, l, r, span);
        }
        if !l.ty.is_int() || !r.ty.is_int() {
            self.error(span, format!("`{}` cannot be used on {} and {}", op.symbol(), l.ty, r.ty));
            return none(span);
        }
        // bpftrace: a non-negative literal takes the other operand's signedness;
        // the result is signed only when both operands are.
        #[allow(clippy::nonminimal_bool)] // written the way the rule reads
        let lsigned = l.ty.is_signed() && !(is_nonneg_literal(&l) && !r.ty.is_signed());
        #[allow(clippy::nonminimal_bool)]
        let rsigned = r.ty.is_signed() && !(is_nonneg_literal(&r) && !l.ty.is_signed());
        if lsigned != rsigned {
            if op.is_comparison() {
                self.warn(span, format!("comparison of integers of different signs: {} and {}", l.ty, r.ty));
            } else if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod) {
                self.warn(span, format!("arithmetic on integers of different signs: {} and {}", l.ty, r.ty));
            }
        }
        let signed = match op {
            BinOp::Shl | BinOp::Shr => lsigned,
            // bpftrace v0.26: a difference is signed (`(uint64)1 - 2` is -1).
            BinOp::Sub => true,
            _ => lsigned && rsigned,
        };
        let ty = if op.is_comparison() { Type::Bool } else { Type::Int { bytes: 8, signed } };
        if let Some(v) = fold(op, &l, &r, signed) {
            return int_literal(v, span).with_type(ty);
        }
        TExpr { kind: TExprKind::Binary { op, lhs: Box::new(l), rhs: Box::new(r), signed }, ty, span }
    }

    /// Tuples `==` / `!=` (v0.26): element by element, strings up to their
    /// NUL, so tuples whose strings differ in size compare too.
    fn tuple_compare(&mut self, op: BinOp, l: TExpr, r: TExpr, span: Span) -> TExpr {
        let n = match &l.ty {
            Type::Tuple(items) => items.len() as u64,
            _ => 0,
        };
        let mut all: Option<TExpr> = None;
        for i in 0..n {
            let a = self.tuple_element(l.clone(), i, span, span);
            let b = self.tuple_element(r.clone(), i, span, span);
            let eq = self.binary_typed(BinOp::Eq, a, b, span);
            if eq.ty == Type::None {
                return none(span);
            }
            all = Some(match all {
                None => eq,
                Some(prev) => {
                    let kind = TExprKind::Logical { and: true, lhs: Box::new(prev), rhs: Box::new(eq) };
                    TExpr { kind, ty: Type::Bool, span }
                }
            });
        }
        let all = all.unwrap_or(TExpr { kind: TExprKind::Int(1), ty: Type::Bool, span });
        if op == BinOp::Ne {
            return TExpr { kind: TExprKind::Unary { op: UnaryOp::Not, expr: Box::new(all) }, ty: Type::Bool, span };
        }
        all
    }

    fn string_compare(&mut self, op: BinOp, l: TExpr, r: TExpr, span: Span) -> TExpr {
        if !(l.ty.is_str() && r.ty.is_str()) {
            let msg = if op.is_comparison() {
                format!("cannot compare {} with {}", l.ty, r.ty)
            } else {
                format!("`{}` needs integer operands, but got {} and {}", op.symbol(), l.ty, r.ty)
            };
            self.error(span, msg);
            return none(span);
        }
        if !matches!(op, BinOp::Eq | BinOp::Ne) {
            self.error(span, format!("`{}` cannot be used on strings (only `==` and `!=`)", op.symbol()));
            return none(span);
        }
        for (lit, other) in [(&l, &r), (&r, &l)] {
            if let (TExprKind::Str(bytes), Type::Str { size }) = (&lit.kind, &other.ty) {
                if !matches!(other.kind, TExprKind::Str(_)) && bytes.len() as u32 >= *size {
                    self.warn(
                        span,
                        format!(
                            "the literal is longer than the string it is compared with (size {}): always false",
                            size
                        ),
                    );
                }
            }
        }
        let kind = TExprKind::StrEq { lhs: Box::new(l), rhs: Box::new(r), negate: op == BinOp::Ne, limit: None };
        TExpr { kind, ty: Type::Bool, span }
    }

    fn pointer_arith(&mut self, op: BinOp, l: TExpr, r: TExpr, span: Span) -> TExpr {
        if op.is_comparison() {
            let kind = TExprKind::Binary { op, lhs: Box::new(l), rhs: Box::new(r), signed: false };
            return TExpr { kind, ty: Type::Bool, span };
        }
        let (ptr, other, ptr_left) = if l.ty.is_ptr() { (l, r, true) } else { (r, l, false) };
        if !other.ty.is_int() || !(op == BinOp::Add || (op == BinOp::Sub && ptr_left)) {
            self.error(span, format!("`{}` cannot be used on {} and {}", op.symbol(), ptr.ty, other.ty));
            return none(span);
        }
        // C semantics: the offset counts elements of the pointee.
        let elem = match &ptr.ty {
            Type::Ptr { pointee, .. } => c_size(pointee).max(1) as u64,
            _ => 1,
        };
        let ty = ptr.ty.clone();
        let scaled =
            if elem == 1 { other } else { self.binary_typed(BinOp::Mul, other, int_literal(elem, span), span) };
        TExpr { kind: TExprKind::Binary { op, lhs: Box::new(ptr), rhs: Box::new(scaled), signed: false }, ty, span }
    }

    /// `p++` on a pointer moves it by one pointee, as in C.
    fn incdec(&mut self, target: &Expr, increment: bool, prefix: bool, span: Span) -> TExpr {
        let step = |ty: &Type| match ty {
            Type::Ptr { pointee, .. } => c_size(pointee).max(1) as i64,
            _ => 1,
        };
        let delta = if increment { 1 } else { -1 };
        match &target.kind {
            ExprKind::Var(name) => {
                let Some(id) = self.updated_var(name) else {
                    self.error(target.span, format!("undefined variable `${}`", name));
                    return none(span);
                };
                let mut ty = self.vars[id].ty.clone();
                if ty == Type::Unknown {
                    // `$x++` is `$x = $x + 1`: the unset map's zero `$x`
                    // holds becomes an int64.
                    if !self.zero_unset {
                        return unknown(none(span), span);
                    }
                    ty = I64;
                    self.settle_var(name, id, &ty, target.span);
                }
                if !ty.is_int() && !ty.is_ptr() {
                    self.error(span, format!("`++`/`--` need an integer or pointer variable, `${}` is {}", name, ty));
                    return none(span);
                }
                // A counter outgrows the literal it started from (`$i = 0`
                // is an int8): counting makes it 64 bits wide.
                if let Type::Int { bytes: 1..=4, signed } = ty {
                    ty = Type::Int { bytes: 8, signed };
                    self.settle_var(name, id, &ty, target.span);
                }
                let delta = delta * step(&ty);
                TExpr { kind: TExprKind::Update { place: Place::Var(id), delta, prefix }, ty, span }
            }
            ExprKind::Map { name, keys } => {
                let map = self.assigned_map(name, target.span);
                let keys = self.map_keys(map, keys, target.span);
                if self.maps[map].value.is_none() {
                    // `@x++` on an unset map starts it at an int64 zero, like
                    // bpftrace, unless other assignments type it.
                    if !self.zero_unset {
                        return unknown(none(span), span);
                    }
                    self.learn_map_value(map, MapValue::Plain(I64), span);
                }
                match self.maps[map].value.clone().unwrap_or(MapValue::Plain(I64)) {
                    MapValue::Plain(ty) if ty.is_int() || ty.is_ptr() => {
                        let delta = delta * step(&ty);
                        TExpr { kind: TExprKind::Update { place: Place::Map { map, keys }, delta, prefix }, ty, span }
                    }
                    MapValue::Plain(ty) => {
                        self.error(
                            span,
                            format!("`++`/`--` need an integer or pointer map, `{}` holds {}", self.maps[map].name, ty),
                        );
                        none(span)
                    }
                    other => {
                        self.unsupported(span, format!("`++`/`--` on a {} map", other.describe()));
                        none(span)
                    }
                }
            }
            _ => {
                self.error(target.span, "`++`/`--` need a variable or a map");
                none(span)
            }
        }
    }

    fn ternary(&mut self, cond: &Expr, then: &Expr, els: &Expr, span: Span, void_ok: bool) -> TExpr {
        let c = self.expr(cond);
        self.expect_condition(&c);
        let (mut t, then_pre) = self.expr_with_pre(then, void_ok);
        let (mut e, els_pre) = self.expr_with_pre(els, void_ok);
        if !self.adopt_unknown(&mut t, &mut e) {
            return unknown(t, span);
        }
        let ty = match (&t.ty, &e.ty) {
            (Type::Bool, Type::Bool) => Type::Bool,
            (Type::Int { .. } | Type::Bool, Type::Int { .. } | Type::Bool) => {
                Type::Int { bytes: 8, signed: t.ty.is_signed() && e.ty.is_signed() }
            }
            // Both branches are statements (`c ? printf("a") : exit()`).
            (Type::None, Type::None) if void_ok => Type::None,
            (a, b) => match unify(a, b) {
                Some(ty) if matches!(ty, Type::Str { .. } | Type::Ptr { .. }) => ty,
                _ => {
                    if *a != Type::None && *b != Type::None {
                        self.error(span, format!("ternary branches have different types: {} and {}", a, b));
                    }
                    return none(span);
                }
            },
        };
        if then_pre.is_empty() && els_pre.is_empty() && ty != Type::None {
            return TExpr {
                kind: TExprKind::Ternary { cond: Box::new(c), then: Box::new(t), els: Box::new(e) },
                ty,
                span,
            };
        }
        self.branching(c, (t, then_pre), (e, els_pre), ty, span)
    }

    fn cast(&mut self, ty: &TypeName, inner: &Expr, span: Span) -> TExpr {
        // A literal written in the program takes the width an array cast needs.
        let literal = match &inner.kind {
            ExprKind::Int(_) => true,
            ExprKind::Unary { op: UnOp::Neg, expr } => matches!(expr.kind, ExprKind::Int(_)),
            _ => false,
        };
        let mut e = self.expr(inner);
        let Some(target) = self.type_name(ty) else { return none(span) };
        if e.ty == Type::None {
            return none(span);
        }
        if e.ty == Type::Unknown {
            if !self.zero_unset {
                return unknown(e, span);
            }
            // An unset map cast is a zero of the cast's type.
            e.ty = target.clone();
        }
        let target = match (&target, ty.array) {
            // `(int8[])x`: as many elements as the value has bytes for.
            (Type::Array { elem, .. }, Some(None)) => {
                let len = c_size(&e.ty) / c_size(elem).max(1);
                Type::Array { elem: elem.clone(), len }
            }
            _ => target,
        };
        match (&target, &e.ty) {
            (Type::Bool, Type::Bool) => TExpr { span, ..e },
            // Array casts: the same bytes seen as an integer array, or an
            // integer array seen as one integer (v0.26): sizes must match.
            (
                Type::Array { elem, .. },
                Type::Int { .. } | Type::Bool | Type::Enum(_) | Type::Array { .. } | Type::Str { .. },
            ) if elem.int_width().is_some() => self.reinterpret(e, target, literal, span),
            (Type::Int { .. }, Type::Array { elem, .. }) if elem.int_width().is_some() => {
                self.reinterpret(e, target, false, span)
            }
            // True when non-zero (a non-null pointer, a non-empty string).
            (Type::Bool, Type::Int { .. } | Type::Ptr { .. }) => {
                if let TExprKind::Int(v) = e.kind {
                    return TExpr { kind: TExprKind::Int((v != 0) as u64), ty: Type::Bool, span };
                }
                let zero = int_literal(0, span);
                let kind = TExprKind::Binary { op: BinOp::Ne, lhs: Box::new(e), rhs: Box::new(zero), signed: false };
                TExpr { kind, ty: Type::Bool, span }
            }
            (Type::Bool, Type::Str { .. }) => {
                let empty = str_literal(vec![], span);
                let kind = TExprKind::StrEq { lhs: Box::new(e), rhs: Box::new(empty), negate: true, limit: None };
                TExpr { kind, ty: Type::Bool, span }
            }
            // An integer of the enum's width, printed by the enum's names.
            (Type::Enum(_), Type::Int { .. } | Type::Enum(_) | Type::Bool) => {
                if let TExprKind::Int(v) = e.kind {
                    return TExpr { kind: TExprKind::Int(truncate(v, &target)), ty: target, span };
                }
                TExpr { kind: TExprKind::IntCast(Box::new(e)), ty: target, span }
            }
            (Type::Int { .. }, Type::Int { .. } | Type::Ptr { .. } | Type::Bool | Type::Enum(_)) => {
                if let TExprKind::Int(v) = e.kind {
                    return int_literal(truncate(v, &target), span).with_type(target);
                }
                TExpr { kind: TExprKind::IntCast(Box::new(e)), ty: target, span }
            }
            // A pointer keeps its address space (`(struct pt_regs *)ctx` in
            // a uprobe points into the kernel), as in bpftrace.
            (Type::Ptr { pointee, .. }, Type::Ptr { space, .. }) => {
                let ty = Type::Ptr { pointee: pointee.clone(), space: *space };
                TExpr { ty, span, ..e }
            }
            (Type::Ptr { .. }, Type::Int { .. }) => TExpr { ty: target, span, ..e },
            _ => {
                self.error(span, format!("cannot cast {} to {}", e.ty, target));
                none(span)
            }
        }
    }

    /// `e`'s bytes as a value of type `target`, of the same size.
    fn reinterpret(&mut self, mut e: TExpr, target: Type, literal: bool, span: Span) -> TExpr {
        // A literal is as wide as the cast needs (`(int8[8])12345`).
        if let (TExprKind::Int(v), 1 | 2 | 4 | 8, true) = (&e.kind, c_size(&target), literal) {
            let bytes = c_size(&target) as u8;
            if truncate(*v, &Type::Int { bytes, signed: true }) == *v || bytes == 8 {
                e.ty = Type::Int { bytes, signed: e.ty.is_signed() };
            }
        }
        let (from, to) = (c_size(&e.ty), c_size(&target));
        if from != to {
            self.error(
                span,
                format!("cannot cast {} to {}: the sizes differ ({} and {} bytes)", e.ty, target, from, to),
            );
            return none(span);
        }
        TExpr { kind: TExprKind::Reinterpret(Box::new(e)), ty: target, span }
    }

    /// A type written in a cast or `sizeof`.
    pub fn type_name(&mut self, ty: &TypeName) -> Option<Type> {
        let base = match ty.base.as_str() {
            "int8" | "int8_t" | "char" | "signed char" => Type::Int { bytes: 1, signed: true },
            "uint8" | "uint8_t" | "unsigned char" | "u8" => Type::Int { bytes: 1, signed: false },
            "bool" | "_Bool" => Type::Bool,
            "int16" | "int16_t" | "short" | "short int" | "signed short" => Type::Int { bytes: 2, signed: true },
            "uint16" | "uint16_t" | "unsigned short" | "unsigned short int" | "u16" => {
                Type::Int { bytes: 2, signed: false }
            }
            "int32" | "int32_t" | "int" | "signed int" | "signed" => Type::Int { bytes: 4, signed: true },
            "uint32" | "uint32_t" | "unsigned int" | "unsigned" | "u32" => Type::Int { bytes: 4, signed: false },
            "int64" | "int64_t" | "long" | "long int" | "long long" | "long long int" | "signed long" | "ssize_t" => {
                I64
            }
            "uint64" | "uint64_t" | "unsigned long" | "unsigned long int" | "unsigned long long" | "size_t" | "u64" => {
                U64
            }
            "void" if ty.pointer > 0 => Type::Int { bytes: 1, signed: false },
            "float" => Type::Float { bytes: 4 },
            "double" | "long double" => Type::Float { bytes: 8 },
            other => {
                if let Some(r) = self.record(other) {
                    Type::Record(r)
                } else if other.starts_with("struct ") || other.starts_with("union ") {
                    let mut d = Diagnostic::error(format!("unknown type `{}`", other), ty.span);
                    if let Some(s) = closest(other, self.records.keys().map(String::as_str)) {
                        d = d.with_help(format!("did you mean `{}`?", s));
                    } else {
                        d = d.with_note("rtrace looked in the script, the DWARF of the probed binaries and the kernel's BTF; define it in the script: `struct Name { int field; ... }`");
                    }
                    self.report(d);
                    return None;
                } else if let Some(t) = self.env.facts.0.named_type(other).filter(|_| !other.contains(' ')) {
                    t
                } else if other.starts_with("enum ") {
                    match self.enum_type(other) {
                        Some(e) => Type::Enum(e),
                        None => {
                            self.error(ty.span, format!("unknown type `{}`", other));
                            return None;
                        }
                    }
                } else {
                    self.error(ty.span, format!("unknown type `{}`", other));
                    return None;
                }
            }
        };
        let space = match self.group {
            Some(g) if g.kind.is_user() => AddrSpace::User,
            _ => AddrSpace::Kernel,
        };
        let mut t = base;
        for _ in 0..ty.pointer {
            t = Type::Ptr { pointee: Box::new(t), space };
        }
        // `int8[]` (a cast sized by its value) has length 0 here.
        if let Some(len) = ty.array {
            t = Type::Array { elem: Box::new(t), len: len.unwrap_or(0) };
        }
        Some(t)
    }

    fn field(&mut self, base: &Expr, field: &str, field_span: Span, arrow: bool, span: Span) -> TExpr {
        let b = match &base.kind {
            // `args.f` reads the one field, not a copy of them all.
            ExprKind::Ident(name) if name == "args" && !self.defines.contains_key(name) => {
                let Some(b) = self.args_base(base.span) else { return none(span) };
                b
            }
            _ => self.expr(base),
        };
        match &b.ty {
            Type::TracepointArgs if self.group().kind == ProgKind::Uprobe => self.uprobe_param(field, field_span, span),
            Type::TracepointArgs if self.group().kind.has_arg_array() => self.kfunc_param(field, field_span, span),
            Type::TracepointArgs => self.tracepoint_field(field, field_span, span),
            Type::Tuple(_) if !arrow => {
                let i = field.parse::<u64>().unwrap_or(u64::MAX);
                self.tuple_element(b, i, field_span, span)
            }
            // `p.f` and `p->f` alike (bpftrace v0.26 dereferences with `.`;
            // `->` is an alias of it).
            Type::Ptr { pointee, space } if matches!(**pointee, Type::Record(_)) => {
                let Type::Record(r) = &**pointee else { unreachable!() };
                let r = self.full_record(r);
                let Some(m) = self.member(&r, field, field_span) else { return none(span) };
                let space = *space;
                self.member_at(b, m, space, span)
            }
            // A member of a struct read from memory is read from there,
            // without copying the whole struct first.
            Type::Record(r) if matches!(b.kind, TExprKind::ReadMem { .. }) => {
                let r = r.clone();
                let Some(m) = self.member(&r, field, field_span) else { return none(span) };
                let TExprKind::ReadMem { ptr, space } = b.kind else { unreachable!() };
                self.member_at(*ptr, m, space, span)
            }
            Type::Record(r) => {
                let r = r.clone();
                let Some(m) = self.member(&r, field, field_span) else { return none(span) };
                let unit =
                    TExpr { kind: TExprKind::TupleField { tuple: Box::new(b), offset: m.offset }, ty: m.ty, span };
                bit_field(unit, m.bits)
            }
            Type::None => none(span),
            Type::Unknown => unknown(b, span),
            other => {
                self.unsupported(span, format!("field access on {}", other));
                none(span)
            }
        }
    }

    /// Element `i` of a tuple (`$t.1`, `$t[1]`).
    fn tuple_element(&mut self, b: TExpr, i: u64, index_span: Span, span: Span) -> TExpr {
        let Type::Tuple(items) = &b.ty else { return none(span) };
        if i >= items.len() as u64 {
            let msg = format!("tuple index {} is out of range (the tuple has {} elements)", i, items.len());
            self.error(index_span, msg);
            return none(span);
        }
        let i = i as usize;
        let (ty, offset) = (items[i].clone(), tuple_layout(items).offsets[i]);
        if let TExprKind::Tuple(mut elems) = b.kind {
            return elems.swap_remove(i);
        }
        TExpr { kind: TExprKind::TupleField { tuple: Box::new(b), offset }, ty, span }
    }

    /// Member `m` of the struct at address `base` in `space`.
    fn member_at(&mut self, base: TExpr, m: crate::types::Member, space: AddrSpace, span: Span) -> TExpr {
        // An address in bytes: no pointer scaling when indexed.
        let addr = byte_arith(BinOp::Add, base, int_literal(m.offset as u64, span), span);
        let unit = self.deref(addr, in_space(m.ty, space), space, span);
        bit_field(unit, m.bits)
    }

    /// Member `name` of a struct, or an error naming the closest one.
    fn member(&mut self, r: &crate::types::Record, name: &str, span: Span) -> Option<crate::types::Member> {
        if let Some(m) = r.field(name) {
            return Some(m);
        }
        let mut d = Diagnostic::error(format!("`{}` has no field `{}`", r.name, name), span);
        if let Some(s) = closest(name, r.field_names()) {
            d = d.with_help(format!("did you mean `{}`?", s));
        }
        self.report(d);
        None
    }

    fn tracepoint_field(&mut self, field: &str, field_span: Span, span: Span) -> TExpr {
        let resolved = self.group().resolved.first().copied();
        let Some(Detail::Tracepoint(format)) = resolved.map(|r| &r.detail) else {
            return none(span);
        };
        let Some(f) = format.field(field) else {
            let names: Vec<&str> = format.user_fields().map(|f| f.name.as_str()).collect();
            let tp = resolved.map(|r| r.name.clone()).unwrap_or_default();
            let mut d = Diagnostic::error(format!("`{}` has no field `{}`", tp, field), field_span);
            d = match closest(field, names.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{}`?", s)),
                None => d.with_help(format!("fields: {}", names.join(", "))),
            };
            self.report(d);
            return none(span);
        };
        // The context pointer cannot be moved (the verifier refuses accesses
        // through a modified one), so every byte of the field must be within
        // reach of an instruction's 16-bit offset; then so is every element
        // an index picks.
        let Some(offset) = i16::try_from(f.offset).ok().filter(|_| f.offset as u64 + f.size as u64 <= 1 << 15) else {
            self.error(
                field_span,
                format!("`{}` lies past the first 32 KiB of the record, out of an eBPF load's reach", field),
            );
            return none(span);
        };
        // Syscall tracepoints carry user-space pointers; the others kernel ones.
        let space = if resolved.is_some_and(|r| r.name.starts_with("tracepoint:syscalls:")) {
            AddrSpace::User
        } else {
            AddrSpace::Kernel
        };
        let (c_type, f) = (f.c_type.clone(), f.clone());
        match f.kind {
            TpFieldKind::Int if matches!(f.size, 1 | 2 | 4 | 8) => {
                // `enum skb_drop_reason reason`: printed by the enum's names.
                let ty = match base_type_name(&c_type)
                    .strip_prefix("enum ")
                    .and_then(|_| self.enum_type(base_type_name(&c_type)))
                {
                    Some(e) => {
                        Type::Enum(std::sync::Arc::new(crate::types::EnumType { bytes: f.size as u8, ..(*e).clone() }))
                    }
                    None => Type::Int { bytes: f.size as u8, signed: f.signed },
                };
                TExpr { kind: TExprKind::CtxLoad { offset, bytes: f.size as u8, signed: f.signed }, ty, span }
            }
            // A pointer to a struct (`struct __kernel_timespec * rqtp`) is
            // typed from the kernel's BTF, as bpftrace v0.26 does.
            TpFieldKind::Pointer { .. }
                if c_type.matches('*').count() == 1 && self.tracepoint_pointee(&c_type).is_some() =>
            {
                let pointee = self.tracepoint_pointee(&c_type).expect("checked");
                TExpr {
                    kind: TExprKind::CtxLoad { offset, bytes: 8, signed: false },
                    ty: Type::Ptr { pointee: Box::new(in_space(pointee, space)), space },
                    span,
                }
            }
            TpFieldKind::Pointer { char_pointee } => {
                let mut pointee = if char_pointee {
                    Type::Int { bytes: 1, signed: true }
                } else {
                    Type::Int { bytes: 1, signed: false }
                };
                // `const char *const *argv`: pointers to pointers.
                for _ in 1..f.c_type.matches('*').count() {
                    pointee = Type::Ptr { pointee: Box::new(pointee), space };
                }
                TExpr {
                    kind: TExprKind::CtxLoad { offset, bytes: 8, signed: false },
                    ty: Type::Ptr { pointee: Box::new(pointee), space },
                    span,
                }
            }
            TpFieldKind::CharArray => {
                TExpr { kind: TExprKind::CtxString { offset, size: f.size }, ty: Type::Str { size: f.size }, span }
            }
            TpFieldKind::DataLocString => {
                TExpr { kind: TExprKind::DataLocString { offset }, ty: Type::Str { size: self.strlen }, span }
            }
            TpFieldKind::Array { elem_size, len } if matches!(elem_size, 1 | 2 | 4 | 8) => TExpr {
                kind: TExprKind::CtxLoad { offset, bytes: 8, signed: false },
                ty: Type::Array { elem: Box::new(Type::Int { bytes: elem_size as u8, signed: f.signed }), len },
                span,
            },
            _ => {
                self.unsupported(span, format!("reading the tracepoint field `{}` of type `{}`", f.name, f.c_type));
                none(span)
            }
        }
    }

    /// What a tracepoint pointer field points to, when its C type names a
    /// struct, union or enum the system knows (`struct napi_struct *`).
    fn tracepoint_pointee(&mut self, c_type: &str) -> Option<Type> {
        let base = base_type_name(c_type);
        if base.starts_with("struct ") || base.starts_with("union ") {
            return self.record(base).map(Type::Record);
        }
        if base.starts_with("enum ") {
            return self.enum_type(base).map(Type::Enum);
        }
        None
    }

    /// The value of a constant index within `len` elements, or an error.
    fn constant_index(&mut self, i: &TExpr, len: u32, span: Span, what: &str) -> Option<u64> {
        let Some(n) = const_value(i) else {
            self.unsupported(span, format!("a non-constant index into {}", what));
            return None;
        };
        if n >= len as u64 {
            self.error(span, format!("the index {} is out of bounds for array of size {}", n, len));
            return None;
        }
        Some(n)
    }

    fn index(&mut self, base: &Expr, index: &Expr, span: Span) -> TExpr {
        let b = self.expr(base);
        let i = self.expr(index);
        match (&b.ty, &b.kind) {
            (Type::Array { elem, len }, TExprKind::CtxLoad { offset, .. }) => {
                let Some(n) = self.constant_index(&i, *len, index.span, "a tracepoint array") else {
                    return none(span);
                };
                let Type::Int { bytes, signed } = **elem else { return none(span) };
                // Like the field itself, the element must be in a load's reach.
                let Ok(offset) = i16::try_from(i64::from(*offset) + n as i64 * i64::from(bytes)) else {
                    self.error(index.span, "this element lies out of an eBPF load's reach");
                    return none(span);
                };
                TExpr { kind: TExprKind::CtxLoad { offset, bytes, signed }, ty: (**elem).clone(), span }
            }
            // An array read from memory: index its address.
            (Type::Array { elem, len }, TExprKind::ReadMem { ptr, space }) => {
                let (elem, len, space) = ((**elem).clone(), *len, *space);
                // `int y[0]` (a flexible array member) has no bound to check.
                if let Some(n) = const_value(&i).filter(|n| len > 0 && *n >= len as u64) {
                    self.error(index.span, format!("the index {} is out of bounds for array of size {}", n, len));
                    return none(span);
                }
                if !i.ty.is_int() {
                    if i.ty != Type::None {
                        self.error(index.span, format!("an array index must be an integer, not {}", i.ty));
                    }
                    return none(span);
                }
                let size = int_literal(crate::types::c_size(&elem) as u64, span);
                let i = match (const_value(&i), len) {
                    (None, 1..) => {
                        let ty = i.ty.clone();
                        TExpr { kind: TExprKind::CheckIndex { index: Box::new(i), len }, ty, span: index.span }
                    }
                    _ => i,
                };
                let scaled = byte_arith(BinOp::Mul, i, size, span);
                let addr = byte_arith(BinOp::Add, (**ptr).clone(), scaled, span);
                self.deref(addr, elem, space, span)
            }
            // A string's characters (v0.26): a constant index within its
            // size; a runtime one reads the variable's memory at that
            // index, unchecked, as bpftrace does.
            (Type::Str { size }, _) if i.ty.is_int() => {
                let char_ty = Type::Int { bytes: 1, signed: true };
                if let Some(n) = const_value(&i) {
                    if n >= u64::from(*size) {
                        self.error(
                            index.span,
                            format!("the index {} is out of bounds for a string of size {}", n, size),
                        );
                        return none(span);
                    }
                    return TExpr {
                        kind: TExprKind::TupleField { tuple: Box::new(b), offset: n as u32 },
                        ty: char_ty,
                        span,
                    };
                }
                let TExprKind::Var(id) = b.kind else {
                    self.unsupported(index.span, "a non-constant index into a string that is not in a variable");
                    return none(span);
                };
                let ptr_ty = Type::Ptr { pointee: Box::new(char_ty.clone()), space: AddrSpace::Kernel };
                let addr = TExpr { kind: TExprKind::VarAddr(id), ty: ptr_ty, span };
                let addr = byte_arith(BinOp::Add, addr, i, span);
                self.deref(addr, char_ty, AddrSpace::Kernel, span)
            }
            // An array held in a variable or a struct value: a constant index.
            (Type::Array { elem, len }, _) => {
                let Some(n) = self.constant_index(&i, *len, index.span, "an array held in a variable") else {
                    return none(span);
                };
                let elem = (**elem).clone();
                let offset = n as u32 * crate::types::c_size(&elem);
                TExpr { kind: TExprKind::TupleField { tuple: Box::new(b), offset }, ty: elem, span }
            }
            (Type::Ptr { pointee, space }, _) => {
                let (pointee, space) = ((**pointee).clone(), *space);
                let addr = self.binary_typed(BinOp::Add, b, i, span);
                if addr.ty == Type::None {
                    return none(span);
                }
                self.deref(addr, pointee, space, span)
            }
            // `$t[1 + 1]`: a tuple's element by a constant index (v0.26).
            (Type::Tuple(_), _) => match const_value(&i) {
                Some(n) => self.tuple_element(b, n, index.span, span),
                None => {
                    self.error(index.span, "a tuple index must be a constant");
                    none(span)
                }
            },
            (Type::None, _) => none(span),
            (Type::Unknown, _) => unknown(b, span),
            (other, _) => {
                self.error(span, format!("cannot index a value of type {}", other));
                none(span)
            }
        }
    }
}

trait WithType {
    fn with_type(self, ty: Type) -> Self;
}

impl WithType for TExpr {
    fn with_type(self, ty: Type) -> TExpr {
        TExpr { ty, ..self }
    }
}

pub(super) fn none(span: Span) -> TExpr {
    TExpr { kind: TExprKind::Int(0), ty: Type::None, span }
}

/// A value of a type not known yet, computed from `from` (also unknown).
pub(super) fn unknown(from: TExpr, span: Span) -> TExpr {
    TExpr { ty: Type::Unknown, span, ..from }
}

/// An integer literal as the program writes it: the smallest signed type
/// that holds it (`1` and `-1` are int8, `1000` an int16), or a uint64 when
/// only that holds it, as bpftrace v0.26 types literals (`sizeof(1)` is 1).
/// Arithmetic still computes in 64 bits.
fn sized_literal(v: i64, unsigned: bool, span: Span) -> TExpr {
    let bytes = if unsigned {
        return TExpr { kind: TExprKind::Int(v as u64), ty: U64, span };
    } else if v == v as i8 as i64 {
        1
    } else if v == v as i16 as i64 {
        2
    } else if v == v as i32 as i64 {
        4
    } else {
        8
    };
    TExpr { kind: TExprKind::Int(v as u64), ty: Type::Int { bytes, signed: true }, span }
}

/// Integer constants the checker computes are int64 unless they only fit uint64.
pub(super) fn int_literal(v: u64, span: Span) -> TExpr {
    let ty = if v > i64::MAX as u64 { U64 } else { I64 };
    TExpr { kind: TExprKind::Int(v), ty, span }
}

/// The name (`probe`, `func`) of the attach point that fired, given the
/// names of the program's attach points: a literal when they agree, else
/// looked up by the attach cookie (as wide as the longest name).
fn site_name(names: Vec<String>, span: Span) -> TExpr {
    if names.windows(2).all(|w| w[0] == w[1]) {
        return str_literal(names.into_iter().next().unwrap_or_default().into_bytes(), span);
    }
    let size = names.iter().map(|n| n.len() as u32 + 1).max().unwrap_or(1);
    let names = names.into_iter().map(String::into_bytes).collect();
    TExpr { kind: TExprKind::SiteName(names), ty: Type::Str { size }, span }
}

pub(super) fn str_literal(bytes: Vec<u8>, span: Span) -> TExpr {
    let size = bytes.len() as u32 + 1;
    TExpr { kind: TExprKind::Str(bytes), ty: Type::Str { size }, span }
}

fn is_nonneg_literal(e: &TExpr) -> bool {
    matches!(e.kind, TExprKind::Int(v) if (v as i64) >= 0)
}

fn const_value(e: &TExpr) -> Option<u64> {
    match e.kind {
        TExprKind::Int(v) => Some(v),
        _ => None,
    }
}

/// An integer as C headers write them: `(1)`, `0x10U`, `-1L`, `017`.
fn c_int(text: &str) -> Option<i64> {
    let mut t = text.trim();
    while let Some(inner) = t.strip_prefix('(').and_then(|v| v.strip_suffix(')')) {
        t = inner.trim();
    }
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.trim()),
        None => (false, t),
    };
    let t = t.trim_end_matches(['u', 'U', 'l', 'L']);
    let v = if t.len() > 1 && t.starts_with('0') && t.bytes().all(|b| b.is_ascii_digit()) {
        i64::from_str_radix(&t[1..], 8).ok()?
    } else {
        parse_int(t)?
    };
    Some(if negative { v.wrapping_neg() } else { v })
}

pub(super) fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as i64);
    }
    // C's octal, as bpftrace reads parameters: `0775`.
    if let Some(oct) = t.strip_prefix('0').filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
        return u64::from_str_radix(oct, 8).ok().map(|v| v as i64);
    }
    t.parse::<i64>().ok().or_else(|| t.parse::<u64>().ok().map(|v| v as i64))
}

/// Truncates `v` to the integer type `ty` and extends it back to 64 bits.
fn truncate(v: u64, ty: &Type) -> u64 {
    match ty.int_width() {
        Some((8, _)) | None => v,
        Some((bytes, signed)) => {
            let bits = bytes as u32 * 8;
            let low = v & ((1u64 << bits) - 1);
            if signed && low >> (bits - 1) == 1 {
                low | !((1u64 << bits) - 1)
            } else {
                low
            }
        }
    }
}

/// Constant-folds integer operations on two literals (wrapping like eBPF).
fn fold(op: BinOp, l: &TExpr, r: &TExpr, signed: bool) -> Option<u64> {
    let (a, b) = (const_value(l)?, const_value(r)?);
    Some(match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        // By zero: left to run time, which gives 1 and warns (v0.26).
        BinOp::Div => a.checked_div(b)?,
        BinOp::Mod => a.checked_rem(b)?,
        BinOp::Shl => a.wrapping_shl(b as u32),
        BinOp::Shr if signed => ((a as i64).wrapping_shr(b as u32)) as u64,
        BinOp::Shr => a.wrapping_shr(b as u32),
        BinOp::BitAnd => a & b,
        BinOp::BitOr => a | b,
        BinOp::BitXor => a ^ b,
        BinOp::Eq => (a == b) as u64,
        BinOp::Ne => (a != b) as u64,
        BinOp::Lt if signed => ((a as i64) < (b as i64)) as u64,
        BinOp::Le if signed => ((a as i64) <= (b as i64)) as u64,
        BinOp::Gt if signed => ((a as i64) > (b as i64)) as u64,
        BinOp::Ge if signed => ((a as i64) >= (b as i64)) as u64,
        BinOp::Lt => (a < b) as u64,
        BinOp::Le => (a <= b) as u64,
        BinOp::Gt => (a > b) as u64,
        BinOp::Ge => (a >= b) as u64,
        BinOp::And | BinOp::Or => return None,
    })
}

/// Address arithmetic in bytes, unsigned: no pointer scaling, no sign warnings.
fn byte_arith(op: BinOp, lhs: TExpr, rhs: TExpr, span: Span) -> TExpr {
    TExpr { kind: TExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs), signed: false }, ty: U64, span }
}

/// A bit-field's value from its storage unit `unit` (of the field's type):
/// shifted down and masked, or for a signed field shifted up and back down
/// arithmetically to extend its sign.
fn bit_field(unit: TExpr, bits: Option<crate::types::BitField>) -> TExpr {
    let Some(bf) = bits else { return unit };
    let (ty, span) = (unit.ty.clone(), unit.span);
    let op = |op, lhs: TExpr, rhs: u64, signed| TExpr {
        kind: TExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(int_literal(rhs, span)), signed },
        ty: ty.clone(),
        span,
    };
    let (shift, width) = (bf.shift as u64, bf.width as u64);
    if ty.is_signed() {
        let up = op(BinOp::Shl, unit, 64 - shift - width, false);
        op(BinOp::Shr, up, 64 - width, true)
    } else {
        let down = if shift == 0 { unit } else { op(BinOp::Shr, unit, shift, false) };
        if width >= 64 {
            return down;
        }
        op(BinOp::BitAnd, down, (1u64 << width) - 1, false)
    }
}

/// The type a C declaration names, without qualifiers and pointers:
/// `const struct file *` → `struct file`.
fn base_type_name(c_type: &str) -> &str {
    let t = c_type.trim_end_matches(|c: char| c == '*' || c.is_whitespace());
    let t = t.strip_prefix("const ").unwrap_or(t);
    t.strip_prefix("volatile ").unwrap_or(t).trim()
}

/// A member read through a pointer: its pointers (also in arrays) point into
/// the same address space.
fn in_space(ty: Type, space: AddrSpace) -> Type {
    match ty {
        Type::Ptr { pointee, .. } => Type::Ptr { pointee, space },
        Type::Array { elem, len } => Type::Array { elem: Box::new(in_space(*elem, space)), len },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use crate::probe::tracepoint_format::TracepointFormat;
    use crate::probe::{Detail, ProbeSpec, Resolved};
    use crate::sema::{check, Env};

    /// Errors of `program`, whose one tracepoint has these format lines.
    fn errors(program: &str, fields: &str) -> Vec<String> {
        let format = TracepointFormat::parse(fields).unwrap();
        let spec = ProbeSpec::Tracepoint { category: "test".into(), event: "far".into() };
        let resolved =
            Resolved { name: "tracepoint:test:far".into(), spec, detail: Detail::Tracepoint(format), wildcard: false };
        let env = Env::new(vec![], vec![vec![resolved]]);
        let ast = crate::parser::parse(program).unwrap();
        match check(&ast, &env) {
            Ok(_) => vec![],
            Err(diags) => diags.into_iter().map(|d| d.message).collect(),
        }
    }

    #[test]
    fn tracepoint_fields_past_a_load_offset_are_refused() {
        // A load's offset is 16 bits and the context pointer cannot move.
        let fields = "field:int near;\toffset:8;\tsize:4;\tsigned:1;
            field:int far;\toffset:32768;\tsize:4;\tsigned:1;
            field:char edge[8];\toffset:32764;\tsize:8;\tsigned:0;";
        assert_eq!(errors("tracepoint:test:far { @ = args->near; }", fields), Vec::<String>::new());
        for field in ["far", "edge"] {
            let errs = errors(&format!("tracepoint:test:far {{ @ = args->{field}; }}"), fields);
            assert_eq!(
                errs,
                [format!("`{field}` lies past the first 32 KiB of the record, out of an eBPF load's reach")]
            );
        }
    }
}
