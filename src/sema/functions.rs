//! Typing the value functions that go beyond arithmetic: strings (`strncmp`,
//! `strcontains`), byte buffers (`buf`), addresses (`ntop`, `pton`,
//! `ksym`, `usym`, `kaddr`, `uaddr`), time (`strftime`), `bswap` and
//! `cgroup_path`. Values that print as text carry a type that says how.

use super::check::Checker;
use super::expr::none;
use super::typed::*;
use crate::parser::ast::{Expr, ExprKind};
use crate::probe::{Detail, ProbeSpec};
use crate::span::Span;
use crate::system::Symbol;
use crate::types::{AddrSpace, Type, U64};

/// Linux address family numbers, as `ntop()` takes them.
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;

impl<'a> Checker<'a> {
    /// Value functions of this module; `None` when `name` is not one of them.
    pub fn value_function(&mut self, name: &str, name_span: Span, args: &[Expr], span: Span) -> Option<TExpr> {
        let (lo, hi) = match name {
            "strftime" | "strcontains" | "strstr" => (2, 2),
            "strncmp" => (3, 3),
            "buf" | "ntop" => (1, 2),
            "bswap" | "ksym" | "usym" | "kaddr" | "uaddr" | "pton" | "cgroup_path" | "macaddr" | "strerror"
            | "signal_name" | "syscall_name" | "strlen" | "is_err" | "uptr" | "kptr" => (1, 1),
            "write_user" => (3, 3),
            "is_integer"
            | "is_unsigned_integer"
            | "is_ptr"
            | "is_str"
            | "is_array"
            | "is_literal"
            | "strcap"
            | "assert_str" => (1, 1),
            "default_str_length" => (0, 0),
            "cgroupid" | "kfunc_exist" => (1, 1),
            "memcmp" => (3, 3),
            _ => return None,
        };
        if !self.arity(name, name_span, args, lo, hi) {
            return Some(none(span));
        }
        Some(match name {
            "strftime" => self.strftime(args, span),
            "strncmp" => self.strncmp(args, span),
            "strcontains" => self.strcontains(args, span),
            "memcmp" => {
                let left = self.expr(&args[0]);
                let right = self.expr(&args[1]);
                let count = self.int_arg("memcmp", &args[2]);
                if [&left, &right, &count].iter().any(|e| e.ty == Type::None) {
                    return Some(none(span));
                }
                for v in [&left, &right] {
                    if v.ty.size() == 0 || matches!(v.ty, Type::Stack(_)) {
                        let msg = format!("memcmp() compares the bytes of values, not {}", v.ty);
                        self.error(v.span, msg);
                        return Some(none(span));
                    }
                }
                let kind = TExprKind::MemCmp { left: Box::new(left), right: Box::new(right), count: Box::new(count) };
                TExpr { kind, ty: crate::types::I64, span }
            }
            "cgroupid" => {
                let Some(path) = self.literal_arg(name, &args[0], "a cgroup path") else { return Some(none(span)) };
                match self.env.facts.0.cgroup_id(std::path::Path::new(&path)) {
                    Some(id) => TExpr { kind: TExprKind::Int(id), ty: U64, span },
                    None => {
                        self.error(args[0].span, format!("cgroupid(): no cgroup at `{}`", path));
                        none(span)
                    }
                }
            }
            "kfunc_exist" => {
                let Some(func) = self.literal_arg(name, &args[0], "a kfunc name") else { return Some(none(span)) };
                let found = self.env.facts.0.kernel_function(&func).is_some();
                TExpr { kind: TExprKind::Int(found as u64), ty: Type::Bool, span }
            }
            "strstr" => {
                let hay = self.string_arg("strstr", &args[0]);
                let needle = self.string_arg("strstr", &args[1]);
                let (Some(hay), Some(needle)) = (hay, needle) else { return Some(none(span)) };
                let kind = TExprKind::StrStr { hay: Box::new(hay), needle: Box::new(needle) };
                TExpr { kind, ty: crate::types::I64, span }
            }
            "buf" => self.buf(args, span),
            "ntop" => self.ntop(args, span),
            "pton" => self.pton(&args[0], span),
            "bswap" => self.bswap(&args[0], span),
            "macaddr" => {
                let v = self.expr(&args[0]);
                let bytes = match &v.ty {
                    Type::Array { .. } | Type::Str { .. } => v.ty.size(),
                    Type::None => return Some(none(span)),
                    _ => 0,
                };
                if bytes < 6 {
                    let msg = format!("macaddr() needs an array of at least 6 bytes, not {}", v.ty);
                    self.error(v.span, msg);
                    return Some(none(span));
                }
                TExpr { kind: TExprKind::MakeMac(Box::new(v)), ty: Type::MacAddr, span }
            }
            "kaddr" | "uaddr" => self.symbol_address(name, &args[0], span),
            "strlen" => self.strlen_call(&args[0], span),
            "uptr" | "kptr" => {
                // The same pointer, in the user or the kernel address space.
                let p = self.expr(&args[0]);
                let space = if name == "uptr" { AddrSpace::User } else { AddrSpace::Kernel };
                let ty = match &p.ty {
                    Type::Ptr { pointee, .. } => Type::Ptr { pointee: pointee.clone(), space },
                    Type::Int { .. } => Type::Ptr { pointee: Box::new(U64), space },
                    Type::None => return Some(none(span)),
                    other => {
                        let msg = format!("{}() needs a pointer, not {}", name, other);
                        self.error(p.span, msg);
                        return Some(none(span));
                    }
                };
                TExpr { kind: TExprKind::Retype(Box::new(p)), ty, span }
            }
            "write_user" => self.write_user(name_span, args, span),
            "default_str_length" => TExpr { kind: TExprKind::Int(u64::from(self.strlen)), ty: U64, span },
            "is_literal" => {
                // The argument as written: a literal (a negative one too).
                let literal = match &args[0].kind {
                    ExprKind::Int(_) | ExprKind::Str(_) | ExprKind::Bool(_) => true,
                    ExprKind::Unary { op: crate::parser::ast::UnOp::Neg, expr } => {
                        matches!(expr.kind, ExprKind::Int(_))
                    }
                    _ => false,
                };
                TExpr { kind: TExprKind::Int(literal as u64), ty: Type::Bool, span }
            }
            "is_integer" | "is_unsigned_integer" | "is_ptr" | "is_str" | "is_array" | "strcap" | "assert_str" => {
                // Questions about the argument's type, answered at compile
                // time (the argument is not evaluated).
                let v = self.expr(&args[0]);
                let string_like = match &v.ty {
                    Type::Str { size } => Some(u64::from(*size)),
                    Type::Array { elem, len } if elem.int_width().is_some_and(|(b, _)| b == 1) => Some(u64::from(*len)),
                    Type::Ptr { pointee, .. } if pointee.int_width().is_some_and(|(b, _)| b == 1) => {
                        Some(u64::from(self.strlen))
                    }
                    _ => None,
                };
                let answer = match name {
                    "is_integer" => matches!(v.ty, Type::Int { .. }),
                    "is_unsigned_integer" => matches!(v.ty, Type::Int { signed: false, .. }),
                    "is_ptr" => matches!(v.ty, Type::Ptr { .. }),
                    "is_str" => matches!(v.ty, Type::Str { .. }),
                    "is_array" => matches!(v.ty, Type::Array { .. }),
                    _ => {
                        let Some(capacity) = string_like else {
                            if v.ty != Type::None {
                                let msg = "string-like values must be either strings, arrays or pointers";
                                self.error(v.span, msg);
                            }
                            return Some(none(span));
                        };
                        if name == "strcap" {
                            return Some(TExpr { kind: TExprKind::Int(capacity), ty: crate::types::I64, span });
                        }
                        true
                    }
                };
                TExpr { kind: TExprKind::Int(answer as u64), ty: Type::Bool, span }
            }
            "is_err" => {
                // The kernel's IS_ERR(): -4095 <= (int64)p < 0, i.e. p >= -4095 unsigned.
                let p = self.expr(&args[0]);
                if !p.ty.is_scalar() && p.ty != Type::None {
                    let msg = format!("is_err() needs a pointer or an integer, not {}", p.ty);
                    self.error(p.span, msg);
                    return Some(none(span));
                }
                let limit = TExpr { kind: TExprKind::Int(-4095i64 as u64), ty: U64, span };
                let kind = TExprKind::Binary {
                    op: crate::parser::ast::BinOp::Ge,
                    lhs: Box::new(p),
                    rhs: Box::new(limit),
                    signed: false,
                };
                TExpr { kind, ty: Type::Bool, span }
            }
            _ => {
                let v = self.expr(&args[0]);
                if !v.ty.is_scalar() && v.ty != Type::None {
                    let msg = format!("{}() needs an integer or a pointer, not {}", name, v.ty);
                    self.error(v.span, msg);
                    return Some(none(span));
                }
                match name {
                    "ksym" => TExpr { kind: TExprKind::Retype(Box::new(v)), ty: Type::Ksym, span },
                    "usym" => TExpr { kind: TExprKind::MakeUsym(Box::new(v)), ty: Type::Usym, span },
                    "strerror" => TExpr { kind: TExprKind::Retype(Box::new(v)), ty: Type::Errno, span },
                    "signal_name" => TExpr { kind: TExprKind::Retype(Box::new(v)), ty: Type::SignalName, span },
                    "syscall_name" => TExpr { kind: TExprKind::Retype(Box::new(v)), ty: Type::SyscallName, span },
                    _ => TExpr { kind: TExprKind::Retype(Box::new(v)), ty: Type::CgroupPath, span },
                }
            }
        })
    }

    /// A string literal argument, as text.
    fn literal_arg(&mut self, name: &str, arg: &Expr, what: &str) -> Option<String> {
        match &arg.kind {
            ExprKind::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            // `str($1)`: a parameter's text is a literal too.
            ExprKind::Call { name: f, args, .. }
                if f == "str" && matches!(args.as_slice(), [a] if matches!(a.kind, ExprKind::Positional(_))) =>
            {
                let ExprKind::Positional(n) = args[0].kind else { unreachable!("matched") };
                Some(self.env.params.get(n as usize - 1).cloned().unwrap_or_default())
            }
            _ => {
                self.error(arg.span, format!("{}() needs {} as a string literal", name, what));
                None
            }
        }
    }

    fn int_arg(&mut self, name: &str, arg: &Expr) -> TExpr {
        let v = self.expr(arg);
        if !v.ty.is_integral() && v.ty != Type::None {
            let msg = format!("{}() needs an integer here, not {}", name, v.ty);
            self.error(v.span, msg);
        }
        v
    }

    fn strftime(&mut self, args: &[Expr], span: Span) -> TExpr {
        let Some(format) = self.literal_arg("strftime", &args[0], "its format") else { return none(span) };
        let ns = self.int_arg("strftime", &args[1]);
        TExpr { kind: TExprKind::Retype(Box::new(ns)), ty: Type::Timestamp { format }, span }
    }

    fn string_arg(&mut self, name: &str, arg: &Expr) -> Option<TExpr> {
        let v = self.expr(arg);
        match v.ty {
            Type::Str { .. } => Some(v),
            Type::None => None,
            _ => {
                let msg = format!("{}() compares strings, not {}", name, v.ty);
                self.error(v.span, msg);
                None
            }
        }
    }

    /// `strncmp(a, b, n)`: 0 when the first `n` bytes are equal, like C.
    fn strncmp(&mut self, args: &[Expr], span: Span) -> TExpr {
        let a = self.string_arg("strncmp", &args[0]);
        let b = self.string_arg("strncmp", &args[1]);
        let n = self.expr(&args[2]);
        let limit = match n.kind {
            TExprKind::Int(v) if (v as i64) >= 0 => v.min(u32::MAX as u64) as u32,
            _ => {
                if n.ty != Type::None {
                    self.error(n.span, "strncmp(): the length must be a non-negative integer constant");
                }
                return none(span);
            }
        };
        let (Some(a), Some(b)) = (a, b) else { return none(span) };
        let kind = TExprKind::StrEq { lhs: Box::new(a), rhs: Box::new(b), negate: true, limit: Some(limit) };
        TExpr { kind, ty: U64, span }
    }

    fn strcontains(&mut self, args: &[Expr], span: Span) -> TExpr {
        let hay = self.string_arg("strcontains", &args[0]);
        let needle = self.string_arg("strcontains", &args[1]);
        let (Some(hay), Some(needle)) = (hay, needle) else { return none(span) };
        TExpr { kind: TExprKind::StrContains { hay: Box::new(hay), needle: Box::new(needle) }, ty: Type::Bool, span }
    }

    /// `buf(p, n)` reads `n` bytes at `p`; `buf(array)` takes the whole array.
    fn buf(&mut self, args: &[Expr], span: Span) -> TExpr {
        let src = self.expr(&args[0]);
        let space = match &src.ty {
            Type::Ptr { space, .. } => *space,
            Type::Int { .. } if self.group().kind.is_user() => AddrSpace::User,
            Type::Int { .. } => AddrSpace::Kernel,
            Type::Str { .. } | Type::Array { .. } => AddrSpace::Kernel,
            Type::None => return none(span),
            other => {
                let msg = format!("buf() needs an integer, a pointer, a string or an array, not {}", other);
                self.error(src.span, msg);
                return none(span);
            }
        };
        let in_memory = matches!(src.ty, Type::Str { .. } | Type::Array { .. });
        // A constant length sizes the buffer; a runtime one is capped at the string size.
        let (mut size, len) = match args.get(1) {
            None if in_memory => (src.ty.size(), None),
            None => {
                self.error(span, format!("buf() needs a length for a value of type {}", src.ty));
                return none(span);
            }
            Some(a) => {
                let l = self.int_arg("buf", a);
                match l.kind {
                    TExprKind::Int(v) if (v as i64) < 0 => {
                        self.error(l.span, format!("buf() cannot use a negative length ({})", v as i64));
                        return none(span);
                    }
                    TExprKind::Int(v) => (v.min(u32::MAX as u64) as u32, None),
                    _ if in_memory => {
                        self.error(l.span, "buf() of a string or an array needs a constant length");
                        return none(span);
                    }
                    _ => (self.strlen, Some(Box::new(l))),
                }
            }
        };
        if size > self.strlen {
            self.warn(
                span,
                format!("buf() length is too long and will be shortened to {} bytes (see RTRACE_STRLEN)", self.strlen),
            );
            size = self.strlen;
        }
        TExpr { kind: TExprKind::MakeBuffer { src: Box::new(src), len, space }, ty: Type::Buffer { size }, span }
    }

    /// `ntop(addr)` (IPv4 integer or 4/16-byte array) or `ntop(af, addr)`.
    fn ntop(&mut self, args: &[Expr], span: Span) -> TExpr {
        let addr = self.expr(args.last().expect("checked arity"));
        let default_af = match &addr.ty {
            Type::Int { .. } => AF_INET,
            Type::Array { .. } if addr.ty.size() == 4 => AF_INET,
            Type::Array { .. } if addr.ty.size() == 16 => AF_INET6,
            Type::None => return none(span),
            other => {
                let msg = format!("ntop() needs an integer or an array of 4 or 16 bytes, not {}", other);
                self.error(addr.span, msg);
                return none(span);
            }
        };
        let af = match args.len() {
            2 => self.int_arg("ntop", &args[0]),
            _ => TExpr { kind: TExprKind::Int(default_af), ty: U64, span },
        };
        TExpr { kind: TExprKind::MakeInet { af: Box::new(af), addr: Box::new(addr) }, ty: Type::Inet, span }
    }

    /// `pton("1.2.3.4")` / `pton("::1")`: the address bytes, at compile time.
    fn pton(&mut self, arg: &Expr, span: Span) -> TExpr {
        let Some(text) = self.literal_arg("pton", arg, "the address") else { return none(span) };
        let bytes = if let Ok(v4) = text.parse::<std::net::Ipv4Addr>() {
            v4.octets().to_vec()
        } else if let Ok(v6) = text.parse::<std::net::Ipv6Addr>() {
            v6.octets().to_vec()
        } else {
            self.error(arg.span, format!("pton(): `{}` is not an IPv4 or IPv6 address", text));
            return none(span);
        };
        let ty = Type::Array { elem: Box::new(Type::Int { bytes: 1, signed: false }), len: bytes.len() as u32 };
        TExpr { kind: TExprKind::Bytes(bytes), ty, span }
    }

    fn bswap(&mut self, arg: &Expr, span: Span) -> TExpr {
        let v = self.int_arg("bswap", arg);
        if !v.ty.is_int() {
            // A boolean has one byte: nothing to swap.
            return if v.ty == Type::Bool { v } else { none(span) };
        }
        let ty = v.ty.clone();
        // A one-byte value has nothing to swap.
        if matches!(ty, Type::Int { bytes: 1, .. }) {
            return v;
        }
        TExpr { kind: TExprKind::Bswap(Box::new(v)), ty, span }
    }

    /// `write_user(dst, src, len)`: `len` bytes of the value `src` (a
    /// string, an array, a struct; at most its size) written to the user
    /// address `dst` with `bpf_probe_write_user`; true when written.
    fn write_user(&mut self, name_span: Span, args: &[Expr], span: Span) -> TExpr {
        if !self.env.unsafe_calls {
            self.error(name_span, "write_user() is unsafe. To use you need the --unsafe flag");
            return none(span);
        }
        let dst = self.expr(&args[0]);
        let src = self.expr(&args[1]);
        let len = self.int_arg("write_user", &args[2]);
        if !dst.ty.is_scalar() && dst.ty != Type::None {
            let msg = format!("write_user() writes to an address, not {}", dst.ty);
            self.error(dst.span, msg);
            return none(span);
        }
        if src.ty.in_register() || src.ty.size() == 0 {
            if src.ty != Type::None {
                let msg = format!("write_user() writes a string, an array or a struct, not {}", src.ty);
                self.error(src.span, msg);
            }
            return none(span);
        }
        let kind = TExprKind::WriteUser { dst: Box::new(dst), src: Box::new(src), len: Box::new(len) };
        TExpr { kind, ty: Type::Bool, span }
    }

    /// `strlen(s)`: the length of a string, of a char array, or of the
    /// string a `char *` points to (read as `str(p)` reads it).
    fn strlen_call(&mut self, arg: &Expr, span: Span) -> TExpr {
        let v = self.expr(arg);
        let s = match &v.ty {
            Type::Str { .. } => v,
            Type::Array { elem, len } if elem.int_width().is_some_and(|(b, _)| b == 1) => {
                let ty = Type::Str { size: *len };
                TExpr { kind: TExprKind::Reinterpret(Box::new(v)), ty, span }
            }
            Type::Ptr { pointee, space } if pointee.int_width().is_some_and(|(b, _)| b == 1) => {
                let (space, ty) = (*space, Type::Str { size: self.strlen });
                TExpr { kind: TExprKind::ReadStr { ptr: Box::new(v), len: None, space }, ty, span }
            }
            Type::None => return none(span),
            other => {
                let msg = format!("strlen() takes a string, a char array or a char pointer, not {}", other);
                self.error(v.span, msg);
                return none(span);
            }
        };
        TExpr { kind: TExprKind::StrLen(Box::new(s)), ty: U64, span }
    }

    /// `kaddr("sym")` (kernel) and `uaddr("sym")` (the probed binary): the
    /// address, asked of the system (`Facts`).
    fn symbol_address(&mut self, name: &str, arg: &Expr, span: Span) -> TExpr {
        let Some(sym) = self.literal_arg(name, arg, "a symbol name") else { return none(span) };
        if name == "uaddr" && !self.group().kind.is_user() {
            self.error(span, "uaddr() is only available in uprobe and uretprobe probes");
            return none(span);
        }
        let found = if name == "kaddr" {
            match self.env.facts.0.kernel_symbol(&sym) {
                Some(address) => Ok(Symbol { address, size: 8, pc_relative: false }),
                None => Err(format!("Failed to resolve kernel symbol `{}`", sym)),
            }
        } else {
            let point = self.group().resolved.first().map(|r| (r.detail.clone(), r.spec.clone()));
            let Some((Detail::Uprobe(site), spec)) = point else { return none(span) };
            let ret = matches!(spec, ProbeSpec::Uprobe { ret: true, .. });
            self.env.facts.0.user_symbol(&site.path, site.offset, ret, &sym).map_err(|e| e.to_string())
        };
        match found {
            Ok(s) => {
                // The pointee is as wide as the symbol, when that is an integer width.
                let bytes = if matches!(s.size, 1 | 2 | 4) { s.size as u8 } else { 8 };
                let pointee = Type::Int { bytes, signed: false };
                let space = if name == "kaddr" { AddrSpace::Kernel } else { AddrSpace::User };
                let ty = Type::Ptr { pointee: Box::new(pointee), space };
                let (address, pc_relative) = (s.address, s.pc_relative);
                let constant = TExpr { kind: TExprKind::Int(address), ty: ty.clone(), span };
                if !pc_relative {
                    return constant;
                }
                let ip = self.pt_regs_load(self.env.arch.ip_register(), span);
                let kind = TExprKind::Binary {
                    op: crate::parser::ast::BinOp::Add,
                    lhs: Box::new(ip),
                    rhs: Box::new(constant),
                    signed: false,
                };
                TExpr { kind, ty, span }
            }
            Err(msg) => {
                self.error(arg.span, msg);
                none(span)
            }
        }
    }
}
