//! Conditions as control flow: `branch(e, target, when)` jumps to `target`
//! when `e` is true (`when`) or false (`!when`), without materialising 0/1
//! where a compare-and-jump does the job.

use super::scalar::imm32;
use super::Lowerer;
use crate::codegen::insn::*;
use crate::codegen::ir::{Label, Reg};
use crate::parser::ast::BinOp;
use crate::sema::typed::*;
use crate::types::Type;

impl<'a> Lowerer<'a> {
    pub fn branch(&mut self, e: &TExpr, target: Label, when: bool) {
        match &e.kind {
            TExprKind::Int(v) => {
                if (*v != 0) == when {
                    self.b.jump(target);
                }
            }
            TExprKind::Binary { op, lhs, rhs, signed } if op.is_comparison() => {
                let op = if when { *op } else { negate(*op) };
                let code = jump_code(op, *signed);
                let l = self.eval(lhs);
                match imm32(rhs) {
                    Some(imm) => self.b.jump_imm(code, l, imm, target),
                    None => {
                        let r = self.eval(rhs);
                        self.b.jump_reg(code, l, r, target);
                    }
                }
            }
            TExprKind::Logical { and, lhs, rhs } => {
                // `a && b` is false as soon as `a` is; `a || b` true as soon as `a` is.
                if *and != when {
                    self.branch(lhs, target, when);
                    self.branch(rhs, target, when);
                } else {
                    let skip = self.b.label();
                    self.branch(lhs, skip, !when);
                    self.branch(rhs, target, when);
                    self.b.place(skip);
                }
            }
            TExprKind::Unary { op: UnaryOp::Not, expr } => self.branch(expr, target, !when),
            TExprKind::StrEq { lhs, rhs, negate, limit } => {
                self.string_branch(lhs, rhs, *limit, target, when != *negate)
            }
            TExprKind::StrContains { hay, needle } => self.contains_branch(hay, needle, target, when),
            TExprKind::BufEq { lhs, rhs, negate } => self.buffer_branch(lhs, rhs, target, when != *negate),
            _ => {
                let v = self.eval(e);
                self.b.jump_imm(if when { BPF_JNE } else { BPF_JEQ }, v, 0, target);
            }
        }
    }

    /// Jumps to `target` when the strings (or their first `limit` bytes) are
    /// equal (`when_equal`) or differ.
    fn string_branch(&mut self, lhs: &TExpr, rhs: &TExpr, limit: Option<u32>, target: Label, when_equal: bool) {
        let (differ, equal) = (self.b.label(), self.b.label());
        match (&lhs.kind, &rhs.kind) {
            (_, TExprKind::Str(lit)) => self.compare_with_literal(lhs, lit, limit, differ),
            (TExprKind::Str(lit), _) => self.compare_with_literal(rhs, lit, limit, differ),
            _ => self.compare_strings(lhs, rhs, limit, differ, equal),
        }
        // Fell through: equal.
        self.b.place(equal);
        self.finish_test(differ, target, when_equal);
    }

    /// After code that falls through when a test holds and jumps to `fails`
    /// when it does not: jumps to `target` when the outcome is `when`.
    fn finish_test(&mut self, fails: Label, target: Label, when: bool) {
        if when {
            self.b.jump(target);
            self.b.place(fails);
        } else {
            let end = self.b.label();
            self.b.jump(end);
            self.b.place(fails);
            self.b.jump(target);
            self.b.place(end);
        }
    }

    /// Falls through when `s` equals `lit` (up to and including its NUL, or
    /// in the first `limit` bytes), jumps to `differ` otherwise. Compares up
    /// to 8 bytes per instruction.
    fn compare_with_literal(&mut self, s: &TExpr, lit: &[u8], limit: Option<u32>, differ: Label) {
        let Type::Str { size } = s.ty else { unreachable!("checked: string comparison") };
        let mut bytes = lit.to_vec();
        bytes.push(0);
        bytes.truncate(limit.unwrap_or(u32::MAX).min(u32::MAX - 1) as usize);
        if bytes.len() as u32 > size {
            // The literal and its NUL cannot fit: never equal.
            self.b.jump(differ);
            return;
        }
        let (base, off) = self.memory_location(s);
        let mut pos = 0usize;
        while pos < bytes.len() {
            // Aligned loads only: the verifier refuses misaligned stack
            // accesses (a string inside a tuple may start anywhere).
            let at = off + pos as i32;
            let chunk = [8usize, 4, 2, 1]
                .into_iter()
                .find(|c| pos + c <= bytes.len() && at.rem_euclid(*c as i32) == 0)
                .unwrap();
            let mut value = 0u64;
            for (i, b) in bytes[pos..pos + chunk].iter().enumerate() {
                value |= (*b as u64) << (8 * i);
            }
            let r = self.b.vreg();
            self.b.load(super::scalar::size_code(chunk as u8), r, base, off + pos as i32);
            if value <= i32::MAX as u64 {
                self.b.jump_imm(BPF_JNE, r, value as i32, differ);
            } else {
                let k = self.b.vreg();
                self.b.mov_imm(k, value);
                self.b.jump_reg(BPF_JNE, r, k, differ);
            }
            pos += chunk;
        }
    }

    /// Byte-by-byte comparison of two runtime strings up to the first NUL
    /// (or the first `limit` bytes).
    fn compare_strings(&mut self, a: &TExpr, b: &TExpr, limit: Option<u32>, differ: Label, equal: Label) {
        let (Type::Str { size: sa }, Type::Str { size: sb }) = (&a.ty, &b.ty) else {
            unreachable!("checked: string comparison")
        };
        let n = (*sa).min(*sb);
        // strncmp() within the shorter buffer: its first `l` bytes decide.
        let limited = limit.filter(|l| *l <= n);
        let long = limited.unwrap_or(n) > super::strings::LOOP_BYTES;
        let (abase, aoff, bbase, boff) = if long {
            // In a loop: both in the frame, where the loop reaches them.
            let (aoff, boff) = (self.in_frame(a), self.in_frame(b));
            self.compare_loop_at(aoff, boff, limited.unwrap_or(n), differ, equal);
            (self.frame, aoff, self.frame, boff)
        } else {
            let (abase, aoff) = self.memory_location(a);
            let (bbase, boff) = self.memory_location(b);
            (abase, aoff, bbase, boff)
        };
        for i in 0..if long { 0 } else { limited.unwrap_or(n) as i32 } {
            let x = self.b.vreg();
            let y = self.b.vreg();
            self.b.load(BPF_B, x, abase, aoff + i);
            self.b.load(BPF_B, y, bbase, boff + i);
            self.b.jump_reg(BPF_JNE, x, y, differ);
            self.b.jump_imm(BPF_JEQ, x, 0, equal);
        }
        if limited.is_some() {
            return;
        }
        // All bytes of the shorter buffer matched without a NUL: equal only if
        // the longer one ends right there.
        if sa != sb {
            let (base, off) = if sa > sb { (abase, aoff) } else { (bbase, boff) };
            let x = self.b.vreg();
            self.b.load(BPF_B, x, base, off + n as i32);
            self.b.jump_imm(BPF_JNE, x, 0, differ);
        }
    }
}

impl<'a> Lowerer<'a> {
    /// Jumps to `target` when two buffers are equal (`when_equal`) or differ:
    /// the length byte and then the bytes, which are zero past the length.
    fn buffer_branch(&mut self, a: &TExpr, b: &TExpr, target: Label, when_equal: bool) {
        let n = match (&a.ty, &b.ty) {
            // The length byte, then the bytes.
            (Type::Buffer { size: sa }, Type::Buffer { size: sb }) => 1 + (*sa).min(*sb) as i32,
            // Arrays (and stacks) of one type: every byte.
            (Type::Array { .. } | Type::Stack(_), _) => a.ty.size() as i32,
            _ => unreachable!("checked: buffer or array comparison"),
        };
        let differ = self.b.label();
        if n as u32 > super::strings::LOOP_BYTES {
            let (aoff, boff) = (self.in_frame(a), self.in_frame(b));
            self.differ_loop(aoff, boff, n as u32, differ);
            return self.finish_test(differ, target, when_equal);
        }
        let (abase, aoff) = self.memory_location(a);
        let (bbase, boff) = self.memory_location(b);
        for i in 0..n {
            let (x, y) = (self.b.vreg(), self.b.vreg());
            self.b.load(BPF_B, x, abase, aoff + i);
            self.b.load(BPF_B, y, bbase, boff + i);
            self.b.jump_reg(BPF_JNE, x, y, differ);
        }
        self.finish_test(differ, target, when_equal);
    }

    /// Jumps to `target` when `needle` occurs in `hay` (`when`) or not.
    /// Unrolled: at each start position, compare the needle's bytes.
    fn contains_branch(&mut self, hay: &TExpr, needle: &TExpr, target: Label, when: bool) {
        let (found, missing) = (self.b.label(), self.b.label());
        let Type::Str { size } = hay.ty else { unreachable!("checked: strcontains of strings") };
        let nsize = needle.ty.size();
        if size > super::strings::LOOP_BYTES
            || (!matches!(needle.kind, TExprKind::Str(_)) && u64::from(size) * u64::from(nsize) > 4096)
        {
            // Too long to unroll: strstr() finds it or not.
            let at = self.strstr(hay, needle);
            self.b.jump_imm(BPF_JSGE, at, 0, found);
            self.b.jump(missing);
            return self.finish_contains(found, missing, target, when);
        }
        let (base, off) = self.memory_location(hay);
        let TExprKind::Str(needle) = &needle.kind else {
            self.contains_runtime(base, off, size, needle, found, missing);
            return self.finish_contains(found, missing, target, when);
        };
        let k = needle.len() as u32;
        if k == 0 {
            self.b.jump(found);
        } else if k > size {
            self.b.jump(missing);
        }
        let starts = if k == 0 || k > size { 0 } else { size - k + 1 };
        for start in 0..starts {
            let next = self.b.label();
            for (j, &c) in needle.iter().enumerate() {
                let h = self.b.vreg();
                self.b.load(BPF_B, h, base, off + (start + j as u32) as i32);
                if j == 0 {
                    // The hay ended before this start position.
                    self.b.jump_imm(BPF_JEQ, h, 0, missing);
                }
                self.b.jump_imm(BPF_JNE, h, c as i32, next);
            }
            self.b.jump(found);
            self.b.place(next);
        }
        self.finish_contains(found, missing, target, when);
    }

    /// A runtime needle: at each start position of the hay, compare until
    /// the needle's NUL (found), a different byte (next position) or the
    /// hay's NUL at the start (missing).
    fn contains_runtime(&mut self, base: Reg, off: i32, size: u32, needle: &TExpr, found: Label, missing: Label) {
        let Type::Str { size: nsize } = needle.ty else { unreachable!("checked: strcontains of strings") };
        let (nbase, noff) = self.memory_location(needle);
        for start in 0..size {
            let next = self.b.label();
            for j in 0..nsize.min(size - start) {
                let n = self.b.vreg();
                self.b.load(BPF_B, n, nbase, noff + j as i32);
                self.b.jump_imm(BPF_JEQ, n, 0, found);
                let h = self.b.vreg();
                self.b.load(BPF_B, h, base, off + (start + j) as i32);
                if j == 0 {
                    self.b.jump_imm(BPF_JEQ, h, 0, missing);
                }
                self.b.jump_reg(BPF_JNE, h, n, next);
            }
            // Every byte of a full-size needle (no NUL) matched.
            if nsize <= size - start {
                self.b.jump(found);
            }
            self.b.place(next);
        }
        self.b.jump(missing);
    }

    /// Falls through from `missing`; `found` is placed after: jumps to
    /// `target` when the outcome is `when`.
    fn finish_contains(&mut self, found: Label, missing: Label, target: Label, when: bool) {
        self.b.place(missing);
        let end = self.b.label();
        if when {
            self.b.jump(end);
            self.b.place(found);
            self.b.jump(target);
        } else {
            self.b.jump(target);
            self.b.place(found);
        }
        self.b.place(end);
    }
}

fn negate(op: BinOp) -> BinOp {
    match op {
        BinOp::Eq => BinOp::Ne,
        BinOp::Ne => BinOp::Eq,
        BinOp::Lt => BinOp::Ge,
        BinOp::Ge => BinOp::Lt,
        BinOp::Le => BinOp::Gt,
        BinOp::Gt => BinOp::Le,
        other => other,
    }
}

fn jump_code(op: BinOp, signed: bool) -> u8 {
    match (op, signed) {
        (BinOp::Eq, _) => BPF_JEQ,
        (BinOp::Ne, _) => BPF_JNE,
        (BinOp::Lt, false) => BPF_JLT,
        (BinOp::Le, false) => BPF_JLE,
        (BinOp::Gt, false) => BPF_JGT,
        (BinOp::Ge, false) => BPF_JGE,
        (BinOp::Lt, true) => BPF_JSLT,
        (BinOp::Le, true) => BPF_JSLE,
        (BinOp::Gt, true) => BPF_JSGT,
        (BinOp::Ge, true) => BPF_JSGE,
        _ => unreachable!("not a comparison"),
    }
}
