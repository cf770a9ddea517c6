//! String scans too long to unroll (`strlen`, comparisons and `strstr` of
//! strings past `LOOP_BYTES`): `bpf_loop` callbacks over the bytes, in
//! the function's frame (`Lowerer::frame_loop`), so the verifier checks
//! each body once however long the strings are, and no jump spans them.

use super::Lowerer;
use crate::codegen::insn::*;
use crate::codegen::ir::{Label, Reg};
use crate::sema::typed::*;
use crate::types::Type;

/// Strings up to this size are scanned by unrolled code; longer ones in a loop.
pub const LOOP_BYTES: u32 = 256;

impl<'a> Lowerer<'a> {
    /// The frame offset of memory value `e`: where it is when that is the
    /// frame, else a frame temporary it is copied to (a loop's callback
    /// reaches nothing but the frame).
    pub fn in_frame(&mut self, e: &TExpr) -> i32 {
        let (base, off) = self.memory_location(e);
        if base == self.frame {
            return off;
        }
        let size = e.ty.size();
        let slot = self.alloc(size);
        self.copy(self.frame, slot, base, off, size);
        slot
    }

    /// `r = *(u8 *)(frame + off + index)`, in a `frame_loop` body.
    fn byte_at(&mut self, off: i32, index: Reg) -> Reg {
        let p = self.b.vreg();
        self.b.mov(p, self.frame);
        self.b.alu_reg(BPF_ADD, p, index);
        let r = self.b.vreg();
        self.b.load(BPF_B, r, p, off);
        r
    }

    /// `strlen(s)` of a long string: the index of its first NUL, or its size.
    pub fn strlen_loop(&mut self, s: &TExpr, size: u32) -> Reg {
        let off = self.in_frame(s);
        let result = self.alloc(8);
        self.b.store_imm(BPF_DW, self.frame, result, size as i32);
        self.frame_loop(size, |l, i, stop| {
            let byte = l.byte_at(off, i);
            let go_on = l.b.label();
            l.b.jump_imm(BPF_JNE, byte, 0, go_on);
            l.b.store(BPF_DW, l.frame, result, i);
            l.b.jump(stop);
            l.b.place(go_on);
        });
        let r = self.b.vreg();
        self.b.load(BPF_DW, r, self.frame, result);
        r
    }

    /// Compares the first `n` bytes of two strings up to a NUL: jumps to
    /// `differ` or `equal`, falls through when all `n` bytes matched
    /// without a NUL.
    pub fn compare_loop_at(&mut self, aoff: i32, boff: i32, n: u32, differ: Label, equal: Label) {
        // 2: no difference and no NUL in the `n` bytes; 1: differ; 0: equal.
        let result = self.alloc(8);
        self.b.store_imm(BPF_DW, self.frame, result, 2);
        self.frame_loop(n, |l, i, stop| {
            let x = l.byte_at(aoff, i);
            let y = l.byte_at(boff, i);
            let (same, go_on) = (l.b.label(), l.b.label());
            l.b.jump_reg(BPF_JEQ, x, y, same);
            l.b.store_imm(BPF_DW, l.frame, result, 1);
            l.b.jump(stop);
            l.b.place(same);
            l.b.jump_imm(BPF_JNE, x, 0, go_on);
            l.b.store_imm(BPF_DW, l.frame, result, 0);
            l.b.jump(stop);
            l.b.place(go_on);
        });
        let r = self.b.vreg();
        self.b.load(BPF_DW, r, self.frame, result);
        self.b.jump_imm(BPF_JEQ, r, 1, differ);
        self.b.jump_imm(BPF_JEQ, r, 0, equal);
    }

    /// Jumps to `differ` when the `n` bytes at two frame offsets differ
    /// (buffers and arrays: every byte counts, NULs too).
    pub fn differ_loop(&mut self, aoff: i32, boff: i32, n: u32, differ: Label) {
        let result = self.alloc(8);
        self.b.store_imm(BPF_DW, self.frame, result, 0);
        self.frame_loop(n, |l, i, stop| {
            let x = l.byte_at(aoff, i);
            let y = l.byte_at(boff, i);
            let same = l.b.label();
            l.b.jump_reg(BPF_JEQ, x, y, same);
            l.b.store_imm(BPF_DW, l.frame, result, 1);
            l.b.jump(stop);
            l.b.place(same);
        });
        let r = self.b.vreg();
        self.b.load(BPF_DW, r, self.frame, result);
        self.b.jump_imm(BPF_JNE, r, 0, differ);
    }

    /// `memcmp(left, right, count)`: 0 when the first `count` bytes (at
    /// most the smaller value's) are equal, else the first differing byte
    /// of `left` minus that of `right` (as unsigned chars), as C's.
    pub fn memcmp(&mut self, left: &TExpr, right: &TExpr, count: &TExpr) -> Reg {
        let n = left.ty.size().min(right.ty.size());
        let (loff, roff) = (self.in_frame(left), self.in_frame(right));
        let limit = self.eval(count);
        let (result, bound) = (self.alloc(8), self.alloc(8));
        self.b.store_imm(BPF_DW, self.frame, result, 0);
        self.b.store(BPF_DW, self.frame, bound, limit);
        self.frame_loop(n, |l, i, stop| {
            let k = l.b.vreg();
            l.b.load(BPF_DW, k, l.frame, bound);
            l.b.jump_reg(BPF_JGE, i, k, stop);
            let x = l.byte_at(loff, i);
            let y = l.byte_at(roff, i);
            let same = l.b.label();
            l.b.jump_reg(BPF_JEQ, x, y, same);
            l.b.alu_reg(BPF_SUB, x, y);
            l.b.store(BPF_DW, l.frame, result, x);
            l.b.jump(stop);
            l.b.place(same);
        });
        let r = self.b.vreg();
        self.b.load(BPF_DW, r, self.frame, result);
        r
    }

    /// `strstr(hay, needle)`: the index of the first occurrence of `needle`
    /// in `hay` (0 for an empty needle), -1 when there is none; a string
    /// ends at its NUL or its size.
    pub fn strstr(&mut self, hay: &TExpr, needle: &TExpr) -> Reg {
        let (Type::Str { size: hsize }, Type::Str { size: nsize }) = (&hay.ty, &needle.ty) else {
            unreachable!("checked: strstr of strings")
        };
        let (hsize, nsize) = (*hsize, *nsize);
        let (hoff, noff) = (self.in_frame(hay), self.in_frame(needle));
        // The answer; the start being tried; whether it still matches.
        let (result, start, matching) = (self.alloc(8), self.alloc(8), self.alloc(8));
        self.b.store_imm(BPF_DW, self.frame, result, -1);
        let done = self.b.label();
        if nsize == 0 {
            self.b.store_imm(BPF_DW, self.frame, result, 0);
            self.b.jump(done);
        } else {
            let first = self.b.vreg();
            self.b.load(BPF_B, first, self.frame, noff);
            let search = self.b.label();
            self.b.jump_imm(BPF_JNE, first, 0, search);
            self.b.store_imm(BPF_DW, self.frame, result, 0);
            self.b.jump(done);
            self.b.place(search);
        }
        self.frame_loop(hsize, |l, s, stop| {
            // The hay ended before this start: not there.
            let h0 = l.byte_at(hoff, s);
            l.b.jump_imm(BPF_JEQ, h0, 0, stop);
            l.b.store(BPF_DW, l.frame, start, s);
            l.b.store_imm(BPF_DW, l.frame, matching, 1);
            l.frame_loop(nsize, |l, j, stop| {
                let n = l.byte_at(noff, j);
                // The needle's NUL: every byte before it matched.
                l.b.jump_imm(BPF_JEQ, n, 0, stop);
                let at = l.b.vreg();
                l.b.load(BPF_DW, at, l.frame, start);
                l.b.alu_reg(BPF_ADD, at, j);
                let (inside, same) = (l.b.label(), l.b.label());
                l.b.jump_imm(BPF_JLT, at, hsize as i32, inside);
                l.b.store_imm(BPF_DW, l.frame, matching, 0);
                l.b.jump(stop);
                l.b.place(inside);
                let h = l.byte_at(hoff, at);
                l.b.jump_reg(BPF_JEQ, h, n, same);
                l.b.store_imm(BPF_DW, l.frame, matching, 0);
                l.b.jump(stop);
                l.b.place(same);
            });
            let m = l.b.vreg();
            l.b.load(BPF_DW, m, l.frame, matching);
            let next = l.b.label();
            l.b.jump_imm(BPF_JEQ, m, 0, next);
            let s2 = l.b.vreg();
            l.b.load(BPF_DW, s2, l.frame, start);
            l.b.store(BPF_DW, l.frame, result, s2);
            l.b.jump(stop);
            l.b.place(next);
        });
        self.b.place(done);
        let r = self.b.vreg();
        self.b.load(BPF_DW, r, self.frame, result);
        r
    }
}
