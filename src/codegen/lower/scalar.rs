//! Integers and pointers: each expression evaluates into a fresh virtual
//! register that the caller owns.

use super::{Lowerer, SiteKind};
use crate::codegen::insn::*;
use crate::codegen::ir::Reg;
use crate::contract::{Counters, Rodata};
use crate::parser::ast::BinOp;
use crate::sema::typed::*;
use crate::types::{AddrSpace, Type};

impl<'a> Lowerer<'a> {
    /// `dst = e`, with constants moved straight into `dst` (a temporary would
    /// overlap `dst`'s live range and cost a register and a move).
    fn eval_into(&mut self, dst: Reg, e: &TExpr) {
        if let TExprKind::Int(v) = e.kind {
            self.b.mov_imm(dst, v);
        } else {
            let r = self.eval(e);
            self.b.mov(dst, r);
        }
    }

    /// Evaluates a scalar into a fresh register. The stack temporaries it
    /// needed (map keys, read buffers) are dead once the value is in the
    /// register, so the rest of the statement reuses them: a deep expression
    /// then costs the stack only its spilled values.
    pub fn eval(&mut self, e: &TExpr) -> Reg {
        let mark = self.top;
        let r = self.eval_here(e);
        self.top = mark;
        r
    }

    fn eval_here(&mut self, e: &TExpr) -> Reg {
        match &e.kind {
            TExprKind::Int(v) => {
                let r = self.b.vreg();
                self.b.mov_imm(r, *v);
                r
            }
            TExprKind::Builtin(b) => self.builtin(*b),
            TExprKind::CtxLoad { offset, bytes, signed } => {
                let r = self.b.vreg();
                self.b.load(size_code(*bytes), r, self.ctx, i32::from(*offset));
                self.extend(r, *bytes, *signed);
                r
            }
            TExprKind::Var(id) => {
                let r = self.b.vreg();
                let (vars, slot) = self.var_at(*id);
                self.b.load(BPF_DW, r, vars, slot);
                r
            }
            TExprKind::VarAddr(id) => {
                let r = self.b.vreg();
                let (vars, slot) = self.var_at(*id);
                self.address(r, vars, slot);
                r
            }
            TExprKind::MapRead { map, keys } => self.map_read_scalar(*map, keys),
            TExprKind::MapDelete { map, keys } => self.map_delete(*map, keys, false),
            TExprKind::MapHas { map, keys } => self.map_has(*map, keys),
            TExprKind::MapFind { map, keys, var } => self.map_find(*map, keys, *var),
            TExprKind::AggRead { map, keys } => self.map_read_aggregate(*map, keys),
            TExprKind::MapLen(map) => {
                let p = self.b.vreg();
                self.b.ld_bss(p, Counters::offset(self.len_counter(*map)) as u32);
                let r = self.b.vreg();
                self.b.load(BPF_DW, r, p, 0);
                r
            }
            TExprKind::Retype(inner) => self.eval(inner),
            TExprKind::CheckIndex { index, len } => {
                let r = self.eval(index);
                let ok = self.b.label();
                self.b.jump_imm(BPF_JLE, r, (*len - 1) as i32, ok);
                self.report_site(SiteKind::ArrayOutOfBounds, e.span, None);
                self.b.place(ok);
                r
            }
            // An integer from an array's bytes.
            TExprKind::Reinterpret(inner) => {
                let (base, off) = self.memory_location(inner);
                let (bytes, signed) = e.ty.int_width().unwrap_or((8, false));
                let r = self.b.vreg();
                self.load_any_alignment(r, base, off, bytes);
                self.extend(r, bytes, signed);
                r
            }
            TExprKind::Bswap(inner) => {
                let r = self.eval(inner);
                let Type::Int { bytes, signed } = e.ty else { unreachable!("checked: bswap of integers") };
                self.b.bswap(r, 8 * bytes as i32);
                self.extend(r, bytes, signed);
                r
            }
            TExprKind::StrContains { .. } | TExprKind::BufEq { .. } => self.bool_of(e),
            TExprKind::SendSignal { sig, thread } => {
                let n = self.eval(sig);
                self.b.mov(Reg::Phys(R1), n);
                let helper = if *thread { Helper::SendSignalThread } else { Helper::SendSignal };
                self.b.call(helper, 1);
                let r = self.b.vreg();
                self.b.mov(r, Reg::Phys(R0));
                r
            }
            TExprKind::WriteUser { dst, src, len } => {
                let d = self.eval(dst);
                let n = self.eval(len);
                let size = src.ty.size();
                let (base, off) = self.memory_location(src);
                // At most the source's size: the verifier checks the read.
                let capped = self.b.label();
                self.b.jump_imm(BPF_JLE, n, size as i32, capped);
                self.b.mov_imm(n, u64::from(size));
                self.b.place(capped);
                self.b.mov(Reg::Phys(R1), d);
                self.address(Reg::Phys(R2), base, off);
                self.b.mov(Reg::Phys(R3), n);
                self.b.call(Helper::ProbeWriteUser, 3);
                let r = self.b.vreg();
                self.b.mov_imm(r, 0);
                let failed = self.b.label();
                self.b.jump_imm(BPF_JNE, Reg::Phys(R0), 0, failed);
                self.b.mov_imm(r, 1);
                self.b.place(failed);
                r
            }
            TExprKind::StrStr { hay, needle } => self.strstr(hay, needle),
            TExprKind::MemCmp { left, right, count } => self.memcmp(left, right, count),
            TExprKind::StrLen(s) => {
                // Unrolled (no loop for the verifier to walk): the index of
                // the first NUL, or the size.
                let Type::Str { size } = s.ty else { unreachable!("checked: strlen of a string") };
                if size > super::strings::LOOP_BYTES {
                    return self.strlen_loop(s, size);
                }
                let (base, off) = self.memory_location(s);
                let (r, byte, done) = (self.b.vreg(), self.b.vreg(), self.b.label());
                for i in 0..size {
                    self.b.mov_imm(r, u64::from(i));
                    self.b.load(BPF_B, byte, base, off + i as i32);
                    self.b.jump_imm(BPF_JEQ, byte, 0, done);
                }
                self.b.mov_imm(r, u64::from(size));
                self.b.place(done);
                r
            }
            TExprKind::TupleField { .. } => {
                // Struct members are as wide as their type; tuple elements
                // are 8 bytes holding the extended value, so either load works.
                let (base, off) = self.memory_location(e);
                let r = self.b.vreg();
                match e.ty.int_width() {
                    Some((bytes, signed)) => {
                        self.load_any_alignment(r, base, off, bytes);
                        self.extend(r, bytes, signed);
                    }
                    None => self.b.load(BPF_DW, r, base, off),
                }
                r
            }
            TExprKind::Unary { op, expr } => {
                let r = self.eval(expr);
                match op {
                    UnaryOp::Neg => self.b.neg(r),
                    UnaryOp::BitNot => self.b.alu_imm(BPF_XOR, r, -1),
                    UnaryOp::Not => return self.bool_of(e),
                }
                r
            }
            TExprKind::Binary { op, lhs, rhs, signed } if !op.is_comparison() => {
                self.arith(*op, lhs, rhs, *signed, e.span)
            }
            TExprKind::Binary { .. } | TExprKind::Logical { .. } => self.bool_of(e),
            // strncmp() is 0 when equal, like C; `==` 1.
            TExprKind::StrEq { .. } => self.bool_of(e),
            TExprKind::Ternary { cond, then, els } => {
                let res = self.b.vreg();
                let (else_l, end) = (self.b.label(), self.b.label());
                self.branch(cond, else_l, false);
                self.eval_into(res, then);
                self.b.jump(end);
                self.b.place(else_l);
                self.eval_into(res, els);
                self.b.place(end);
                res
            }
            TExprKind::IntCast(inner) => {
                let r = self.eval(inner);
                if let Some((bytes, signed)) = e.ty.int_width() {
                    self.extend_or_truncate(r, bytes, signed);
                }
                r
            }
            TExprKind::Deref { ptr, space } => {
                let (bytes, signed) = e.ty.int_width().unwrap_or((8, false)); // else a pointer
                let p = self.eval(ptr);
                let slot = self.alloc(8);
                self.read_span = e.span;
                self.probe_read(self.frame, slot, bytes as u32, p, *space);
                let r = self.b.vreg();
                self.b.load(size_code(bytes), r, self.frame, slot);
                self.extend(r, bytes, signed);
                r
            }
            TExprKind::Update { place, delta, prefix } => self.update(place, *delta, *prefix),
            TExprKind::StackLen(stack) => {
                let (base, off) = self.memory_location(stack);
                let r = self.b.vreg();
                self.b.load(BPF_W, r, base, off + crate::contract::StackValue::FRAMES as i32);
                r
            }
            TExprKind::Str(_)
            | TExprKind::SiteName(_)
            | TExprKind::CtxString { .. }
            | TExprKind::DataLocString { .. }
            | TExprKind::ReadStr { .. }
            | TExprKind::Tuple(_)
            | TExprKind::Bytes(_)
            | TExprKind::MakeBuffer { .. }
            | TExprKind::MakeInet { .. }
            | TExprKind::MakeUsym(_)
            | TExprKind::ReadMem { .. }
            | TExprKind::MakeMac(_)
            | TExprKind::Struct(_)
            | TExprKind::JoinArgs { .. }
            | TExprKind::Stack(_) => unreachable!("checked: {:?} is not a scalar", e.ty),
        }
    }

    fn builtin(&mut self, b: Builtin) -> Reg {
        let r = self.b.vreg();
        match b {
            Builtin::Pid | Builtin::Tid => {
                self.b.call(Helper::GetCurrentPidTgid, 0);
                self.b.mov(r, Reg::Phys(R0));
                if b == Builtin::Pid {
                    self.b.alu_imm(BPF_RSH, r, 32);
                } else {
                    self.b.alu32_imm(BPF_AND, r, -1);
                }
            }
            Builtin::Uid | Builtin::Gid => {
                self.b.call(Helper::GetCurrentUidGid, 0);
                self.b.mov(r, Reg::Phys(R0));
                if b == Builtin::Gid {
                    self.b.alu_imm(BPF_RSH, r, 32);
                } else {
                    self.b.alu32_imm(BPF_AND, r, -1);
                }
            }
            Builtin::NsPid { tid, dev, ino } => self.ns_pid(r, tid, dev, ino),
            Builtin::Nsecs(clock) => {
                let helper = match clock {
                    Clock::Monotonic => Helper::KtimeGetNs,
                    Clock::Boot | Clock::SwTai => Helper::KtimeGetBootNs,
                    Clock::Tai => Helper::KtimeGetTaiNs,
                };
                self.call_into(r, helper);
                if clock == Clock::SwTai {
                    let offset = self.rodata_u64(Rodata::TAI_OFFSET);
                    self.b.alu_reg(BPF_ADD, r, offset);
                }
            }
            Builtin::Elapsed => {
                self.call_into(r, Helper::KtimeGetBootNs);
                let start = self.rodata_u64(Rodata::START_NS);
                self.b.alu_reg(BPF_SUB, r, start);
            }
            Builtin::Ncpus => {
                let v = self.rodata_u64(Rodata::NCPUS);
                self.b.mov(r, v);
            }
            Builtin::Ctx => self.b.mov(r, self.ctx),
            Builtin::Cpu => self.call_into(r, Helper::GetSmpProcessorId),
            Builtin::Rand => self.call_into(r, Helper::GetPrandomU32),
            Builtin::Cgroup => self.call_into(r, Helper::GetCurrentCgroupId),
            Builtin::NumaId => self.call_into(r, Helper::GetNumaNodeId),
            Builtin::Jiffies => self.call_into(r, Helper::Jiffies64),
            Builtin::CurTask => self.call_into(r, Helper::GetCurrentTask),
            Builtin::Cpid => {
                let v = self.rodata_u64(Rodata::CPID);
                self.b.mov(r, v);
            }
            Builtin::Comm => unreachable!("checked: comm is a string"),
        }
        r
    }

    /// `pid`/`tid` in the PID namespace `(dev, ino)`:
    /// `bpf_get_ns_current_pid_tgid` fills a `struct bpf_pidns_info
    /// { u32 pid; u32 tgid; }` on the stack; a task outside that namespace
    /// reads as 0 (the helper fails and leaves the zeroes).
    fn ns_pid(&mut self, r: Reg, tid: bool, dev: u64, ino: u64) {
        let slot = self.alloc(8);
        self.b.store_imm(BPF_DW, self.frame, slot, 0);
        self.b.mov_imm(Reg::Phys(R1), dev);
        self.b.mov_imm(Reg::Phys(R2), ino);
        self.address(Reg::Phys(R3), self.frame, slot);
        self.b.mov_imm(Reg::Phys(R4), 8);
        self.b.call(Helper::GetNsCurrentPidTgid, 4);
        // struct bpf_pidns_info { __u32 pid; __u32 tgid; }: pid is the thread's.
        self.b.load(BPF_W, r, self.frame, if tid { slot } else { slot + 4 });
    }

    /// `r = *(u<bytes> *)(base + off)`, zero-extended. A member of a packed
    /// struct may be misaligned, and the verifier refuses misaligned stack
    /// accesses: such a value is read a byte at a time.
    fn load_any_alignment(&mut self, r: Reg, base: Reg, off: i32, bytes: u8) {
        if off.rem_euclid(bytes as i32) == 0 {
            self.b.load(size_code(bytes), r, base, off);
            return;
        }
        self.b.load(BPF_B, r, base, off);
        for i in 1..bytes as i32 {
            let t = self.b.vreg();
            self.b.load(BPF_B, t, base, off + i);
            self.b.alu_imm(BPF_LSH, t, 8 * i);
            self.b.alu_reg(BPF_OR, r, t);
        }
    }

    fn call_into(&mut self, r: Reg, helper: Helper) {
        self.b.call(helper, 0);
        self.b.mov(r, Reg::Phys(R0));
    }

    /// A u64 the runtime stored in `.rodata` before loading.
    pub fn rodata_u64(&mut self, off: u32) -> Reg {
        self.uses_rodata = true;
        let p = self.b.vreg();
        self.b.ld_rodata(p, off);
        let v = self.b.vreg();
        self.b.load(BPF_DW, v, p, 0);
        v
    }

    fn arith(&mut self, op: BinOp, lhs: &TExpr, rhs: &TExpr, signed: bool, span: crate::span::Span) -> Reg {
        let code = match op {
            BinOp::Add => BPF_ADD,
            BinOp::Sub => BPF_SUB,
            BinOp::Mul => BPF_MUL,
            BinOp::Div => BPF_DIV,
            BinOp::Mod => BPF_MOD,
            BinOp::Shl => BPF_LSH,
            BinOp::Shr if signed => BPF_ARSH,
            BinOp::Shr => BPF_RSH,
            BinOp::BitAnd => BPF_AND,
            BinOp::BitOr => BPF_OR,
            BinOp::BitXor => BPF_XOR,
            _ => unreachable!("comparisons and logical operators are conditions"),
        };
        let l = self.eval(lhs);
        let divides = code == BPF_DIV || code == BPF_MOD;
        match imm32(rhs) {
            // bpftrace v0.26: x / 0 and x % 0 are 1, and say so at run time
            // (the verifier would refuse a division by the constant zero).
            Some(0) if divides => {
                self.report_site(SiteKind::DivideByZero, span, None);
                self.b.mov_imm(l, 1);
            }
            Some(imm) => self.b.alu_imm(code, l, imm),
            None if divides => {
                let r = self.eval(rhs);
                let (nonzero, done) = (self.b.label(), self.b.label());
                self.b.jump_imm(BPF_JNE, r, 0, nonzero);
                self.report_site(SiteKind::DivideByZero, span, None);
                self.b.mov_imm(l, 1);
                self.b.jump(done);
                self.b.place(nonzero);
                self.b.alu_reg(code, l, r);
                self.b.place(done);
            }
            None => {
                let r = self.eval(rhs);
                self.b.alu_reg(code, l, r);
            }
        }
        l
    }

    /// 1 when the condition `e` holds, else 0.
    fn bool_of(&mut self, e: &TExpr) -> Reg {
        let r = self.b.vreg();
        let done = self.b.label();
        self.b.mov_imm(r, 1);
        self.branch(e, done, true);
        self.b.mov_imm(r, 0);
        self.b.place(done);
        r
    }

    /// Sign-extends the low `bytes` of `r` when `signed` (loads zero-extend).
    pub fn extend(&mut self, r: Reg, bytes: u8, signed: bool) {
        if signed && bytes < 8 {
            let shift = 64 - 8 * bytes as i32;
            self.b.alu_imm(BPF_LSH, r, shift);
            self.b.alu_imm(BPF_ARSH, r, shift);
        }
    }

    fn extend_or_truncate(&mut self, r: Reg, bytes: u8, signed: bool) {
        match (bytes, signed) {
            (8, _) => {}
            (_, true) => self.extend(r, bytes, true),
            // A 32-bit move zero-extends into the upper half.
            (4, false) => self.b.alu32_imm(BPF_AND, r, -1),
            (b, false) => self.b.alu_imm(BPF_AND, r, ((1u64 << (8 * b)) - 1) as i32),
        }
    }

    /// `*(size *)(base + off) = probe_read(ptr)` for `size` bytes.
    pub fn probe_read(&mut self, base: Reg, off: i32, size: u32, ptr: Reg, space: AddrSpace) {
        self.b.mov(Reg::Phys(R3), ptr);
        self.b.mov(Reg::Phys(R1), base);
        self.b.alu_imm(BPF_ADD, Reg::Phys(R1), off);
        self.b.mov_imm(Reg::Phys(R2), size as u64);
        let helper = if space == AddrSpace::User { Helper::ProbeReadUser } else { Helper::ProbeReadKernel };
        self.b.call(helper, 3);
        self.check_helper(helper, 2);
    }

    fn update(&mut self, place: &Place, delta: i64, prefix: bool) -> Reg {
        match place {
            Place::Var(id) => {
                let (vars, slot) = self.var_at(*id);
                let old = self.b.vreg();
                self.b.load(BPF_DW, old, vars, slot);
                let new = self.b.vreg();
                self.b.mov(new, old);
                self.b.alu_imm(BPF_ADD, new, delta as i32);
                self.b.store(BPF_DW, vars, slot, new);
                if prefix {
                    new
                } else {
                    old
                }
            }
            Place::Map { map, keys } => self.map_update_scalar(*map, keys, delta, prefix),
        }
    }
}

/// The value of a constant expression when it fits an instruction's imm32.
pub(super) fn imm32(e: &TExpr) -> Option<i32> {
    match e.kind {
        TExprKind::Int(v) if (v as i64) >= i32::MIN as i64 && (v as i64) <= i32::MAX as i64 => Some(v as i64 as i32),
        _ => None,
    }
}

pub(super) fn size_code(bytes: u8) -> u8 {
    match bytes {
        1 => BPF_B,
        2 => BPF_H,
        4 => BPF_W,
        _ => BPF_DW,
    }
}
