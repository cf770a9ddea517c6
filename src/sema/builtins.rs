//! The builtins bpftrace v0.26's standard library adds or gives an argument:
//! `pid`/`tid` in rtrace's PID namespace or the initial one, `nsecs(clock)`,
//! `ncpus`, `usermode`, `username`, `probetype`, `ctx`, `has_cpid`, and the
//! task helpers `ppid`, `pcomm`, `leader_tid`, `leader_comm` (of the current
//! task, or of a `struct task_struct *`).

use super::check::Checker;
use super::expr::{int_literal, none, str_literal};
use super::typed::*;
use super::ProgKind;
use crate::parser::ast::{BinOp, Expr, ExprKind};
use crate::probe::ProbeSpec;
use crate::span::Span;
use crate::types::{AddrSpace, Type, U64};

/// The task helpers: the member path of `struct task_struct` each reads.
const TASK_HELPERS: &[(&str, [&str; 2])] = &[
    ("ppid", ["real_parent", "pid"]),
    ("pcomm", ["real_parent", "comm"]),
    ("leader_tid", ["group_leader", "pid"]),
    ("leader_comm", ["group_leader", "comm"]),
];

impl<'a> Checker<'a> {
    /// A builtin of this module named alone (`pid`, `ncpus`, `ppid`);
    /// `None` when `name` is not one of them.
    pub fn stdlib_builtin(&mut self, name: &str, span: Span) -> Option<TExpr> {
        let builtin = |b: Builtin, ty: Type| TExpr { kind: TExprKind::Builtin(b), ty, span };
        Some(match name {
            "pid" | "tid" => self.pid_in(name == "tid", self.env.facts.0.pid_namespace(), span),
            "nsecs" => builtin(Builtin::Nsecs(Clock::Boot), U64),
            "ncpus" => builtin(Builtin::Ncpus, U64),
            "ctx" => {
                // An iterator's context is its kernel struct (`ctx.task.comm`).
                let pointee = match self.group().kind.clone() {
                    ProgKind::Iter { kind } => match self.record(&format!("struct bpf_iter__{}", kind)) {
                        Some(r) => Type::Record(r),
                        None => {
                            self.error(span, format!("no BTF for `struct bpf_iter__{}`", kind));
                            return Some(none(span));
                        }
                    },
                    _ => Type::Int { bytes: 1, signed: false },
                };
                builtin(Builtin::Ctx, Type::Ptr { pointee: Box::new(pointee), space: AddrSpace::Kernel })
            }
            // The uid, printed as the user's name.
            "username" => {
                let uid = builtin(Builtin::Uid, U64);
                TExpr { kind: TExprKind::Retype(Box::new(uid)), ty: Type::Username, span }
            }
            "usermode" => self.usermode(span),
            "probetype" => {
                let kind = self.group().resolved.first().map_or("special", |r| probe_type(&r.spec));
                str_literal(kind.as_bytes().to_vec(), span)
            }
            // bpftrace's `cpid` is 0 without `-c`.
            "has_cpid" => TExpr { kind: TExprKind::Int(self.env.child as u64), ty: Type::Bool, span },
            _ => {
                let (_, path) = TASK_HELPERS.iter().find(|(n, _)| *n == name)?;
                let task = Expr { kind: ExprKind::Ident("curtask".into()), span };
                self.task_member(task, path, span)
            }
        })
    }

    /// A builtin of this module called with an argument: `pid(init)`,
    /// `tid(curr_ns)`, `nsecs(tai)`, `ppid(task)`; `None` when `name` is
    /// not one of them (or takes no argument).
    pub fn stdlib_builtin_call(&mut self, name: &str, args: &[Expr], span: Span) -> Option<TExpr> {
        let [arg] = args else { return None };
        let mode = match &arg.kind {
            ExprKind::Ident(mode) => mode.as_str(),
            _ => "",
        };
        Some(match name {
            "pid" | "tid" => match mode {
                "curr_ns" => return self.stdlib_builtin(name, span),
                "init" => self.pid_in(name == "tid", None, span),
                _ => {
                    self.error(arg.span, format!("{}() takes `curr_ns` or `init`", name));
                    none(span)
                }
            },
            "nsecs" => {
                let clock = match mode {
                    "monotonic" => Clock::Monotonic,
                    "boot" => Clock::Boot,
                    "tai" => Clock::Tai,
                    "sw_tai" => Clock::SwTai,
                    _ => {
                        self.error(arg.span, "nsecs() takes `monotonic`, `boot`, `tai` or `sw_tai`");
                        return Some(none(span));
                    }
                };
                TExpr { kind: TExprKind::Builtin(Builtin::Nsecs(clock)), ty: U64, span }
            }
            _ => {
                let (_, path) = TASK_HELPERS.iter().find(|(n, _)| *n == name)?;
                self.task_member(arg.clone(), path, span)
            }
        })
    }

    /// `pid`/`tid` as PID namespace `ns` sees them (`None`: the initial one).
    fn pid_in(&mut self, tid: bool, ns: Option<(u64, u64)>, span: Span) -> TExpr {
        let b = match ns {
            Some((dev, ino)) => Builtin::NsPid { tid, dev, ino },
            None if tid => Builtin::Tid,
            None => Builtin::Pid,
        };
        TExpr { kind: TExprKind::Builtin(b), ty: U64, span }
    }

    /// `task.a.b`, checked as if the program had written it (the members
    /// come from the kernel's BTF).
    fn task_member(&mut self, task: Expr, path: &[&str; 2], span: Span) -> TExpr {
        let field = |expr: Expr, name: &str| Expr {
            kind: ExprKind::Field { expr: Box::new(expr), field: name.into(), field_span: span, arrow: false },
            span,
        };
        let e = field(field(task, path[0]), path[1]);
        self.expr(&e)
    }

    /// `usermode`: 1 when the probe interrupted user code. In a `pt_regs`
    /// context, the privilege level in the low bits of `cs` (x86_64 only,
    /// as bpftrace); BEGIN and END run in rtrace's own process from user
    /// space; tracepoints and kfuncs fire in the kernel.
    fn usermode(&mut self, span: Span) -> TExpr {
        let byte = Type::Int { bytes: 1, signed: false };
        if self.env.arch.name() != "x86_64" {
            self.error(span, format!("'usermode' builtin is only supported on x86_64, not {}", self.env.arch.name()));
            return none(span);
        }
        let kind = self.group().kind.clone();
        let constant = |v: u64| TExpr { kind: TExprKind::Int(v), ty: byte.clone(), span };
        match kind {
            ProgKind::Begin | ProgKind::End => constant(1),
            _ if !kind.has_pt_regs() => constant(0),
            _ => {
                let cs = self.pt_regs_load("cs", span);
                let binary = |op, lhs, rhs| TExpr {
                    kind: TExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs), signed: false },
                    ty: U64,
                    span,
                };
                let rpl = binary(BinOp::BitAnd, cs, int_literal(3, span));
                TExpr { ty: byte, ..binary(BinOp::Eq, rpl, int_literal(3, span)) }
            }
        }
    }
}

/// `probetype`: bpftrace's name of the kind of probe (`special` for BEGIN
/// and END, `fentry` for a kfunc).
pub fn probe_type(spec: &ProbeSpec) -> &'static str {
    match spec {
        ProbeSpec::Begin | ProbeSpec::End => "special",
        ProbeSpec::Kfunc { ret: false, .. } => "fentry",
        ProbeSpec::Kfunc { ret: true, .. } => "fexit",
        other => other.provider(),
    }
}
