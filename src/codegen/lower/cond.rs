//! Conditions as control flow: `branch(e, target, when)` jumps to `target`
//! when `e` is true (`when`) or false (`!when`), without materialising 0/1
//! where a compare-and-jump does the job.

use super::scalar::imm32;
use super::Lowerer;
use crate::codegen::insn::*;
use crate::codegen::ir::Label;
use crate::parser::ast::BinOp;
use crate::sema::typed::*;
use crate::sema::types::Type;

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
            TExprKind::StrEq { lhs, rhs, negate } => self.string_branch(lhs, rhs, target, when != *negate),
            _ => {
                let v = self.eval(e);
                self.b.jump_imm(if when { BPF_JNE } else { BPF_JEQ }, v, 0, target);
            }
        }
    }

    /// Jumps to `target` when the strings are equal (`when_equal`) or differ.
    fn string_branch(&mut self, lhs: &TExpr, rhs: &TExpr, target: Label, when_equal: bool) {
        let (differ, equal) = (self.b.label(), self.b.label());
        match (&lhs.kind, &rhs.kind) {
            (_, TExprKind::Str(lit)) => self.compare_with_literal(lhs, lit, differ),
            (TExprKind::Str(lit), _) => self.compare_with_literal(rhs, lit, differ),
            _ => self.compare_strings(lhs, rhs, differ, equal),
        }
        // Fell through: equal.
        self.b.place(equal);
        if when_equal {
            self.b.jump(target);
            self.b.place(differ);
        } else {
            let end = self.b.label();
            self.b.jump(end);
            self.b.place(differ);
            self.b.jump(target);
            self.b.place(end);
        }
    }

    /// Falls through when `s` equals `lit` (up to and including its NUL),
    /// jumps to `differ` otherwise. Compares up to 8 bytes per instruction.
    fn compare_with_literal(&mut self, s: &TExpr, lit: &[u8], differ: Label) {
        let Type::Str { size } = s.ty else { unreachable!("checked: string comparison") };
        if lit.len() as u32 >= size {
            // The literal and its NUL cannot fit: never equal.
            self.b.jump(differ);
            return;
        }
        let (base, off) = self.memory_location(s);
        let mut bytes = lit.to_vec();
        bytes.push(0);
        let mut pos = 0usize;
        while pos < bytes.len() {
            let chunk = [8usize, 4, 2, 1].into_iter().find(|c| pos + c <= bytes.len()).unwrap();
            let mut value = 0u64;
            for (i, b) in bytes[pos..pos + chunk].iter().enumerate() {
                value |= (*b as u64) << (8 * i);
            }
            let r = self.b.vreg();
            self.b.load(super::scalar::size_code(chunk as u8), r, base, off + pos as i16);
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

    /// Byte-by-byte comparison of two runtime strings up to the first NUL.
    fn compare_strings(&mut self, a: &TExpr, b: &TExpr, differ: Label, equal: Label) {
        let (Type::Str { size: sa }, Type::Str { size: sb }) = (&a.ty, &b.ty) else {
            unreachable!("checked: string comparison")
        };
        let (abase, aoff) = self.memory_location(a);
        let (bbase, boff) = self.memory_location(b);
        let n = (*sa).min(*sb);
        for i in 0..n as i16 {
            let x = self.b.vreg();
            let y = self.b.vreg();
            self.b.load(BPF_B, x, abase, aoff + i);
            self.b.load(BPF_B, y, bbase, boff + i);
            self.b.jump_reg(BPF_JNE, x, y, differ);
            self.b.jump_imm(BPF_JEQ, x, 0, equal);
        }
        // All bytes of the shorter buffer matched without a NUL: equal only if
        // the longer one ends right there.
        if sa != sb {
            let (base, off) = if sa > sb { (abase, aoff) } else { (bbase, boff) };
            let x = self.b.vreg();
            self.b.load(BPF_B, x, base, off + n as i16);
            self.b.jump_imm(BPF_JNE, x, 0, differ);
        }
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
