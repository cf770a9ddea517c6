//! The lowering's output: eBPF instructions over virtual registers, with
//! symbolic labels, map references and source spans. `finish` turns it into
//! real instructions. Constructors read like the assembly they produce.

use super::insn::*;
use crate::span::Span;
use std::collections::HashMap;

/// A register operand: virtual (assigned later) or a fixed physical one
/// (helper arguments r1-r5, the result r0, the frame pointer r10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reg {
    Phys(u8),
    Virt(u32),
}

pub const FP: Reg = Reg::Phys(R10);

/// A jump target; `Label(n)` is placed with `VInsn::Label`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(pub u32);

#[derive(Clone, Debug, PartialEq)]
pub enum VInsn {
    /// Any non-jump instruction whose registers are `dst`/`src` (ALU, LDX, STX, ST).
    Op {
        code: u8,
        dst: Reg,
        src: Reg,
        off: i16,
        imm: i32,
    },
    /// A conditional (or, with `BPF_JA`, unconditional) jump to `target`.
    Jump {
        code: u8,
        dst: Reg,
        src: Reg,
        imm: i32,
        target: Label,
    },
    /// `call helper`: reads r1..r`args`, writes r0, clobbers r1-r5.
    Call {
        helper: Helper,
        args: u8,
    },
    Exit,
    LdImm64 {
        dst: Reg,
        imm: u64,
    },
    /// `dst = &map` for map index `map` in the image.
    LdMap {
        dst: Reg,
        map: usize,
    },
    /// `dst = &.rodata[off]`
    LdRodata {
        dst: Reg,
        off: u32,
    },
    /// `dst = &.bss[off]`
    LdBss {
        dst: Reg,
        off: u32,
    },
    /// `dst = &callback`: subprogram `func` of the program, for a helper
    /// that calls back (`bpf_loop`, `bpf_for_each_map_elem`).
    LdFunc {
        dst: Reg,
        func: usize,
    },
    Label(Label),
    /// The instructions that follow come from this source span (for line_info,
    /// `--emit asm` comments and mapping verifier errors back to the script).
    Loc(Span),
}

impl VInsn {
    /// Registers this instruction reads.
    pub fn uses(&self) -> Vec<Reg> {
        match *self {
            VInsn::Op { code, dst, src, .. } => {
                let class = code & 0x07;
                match class {
                    BPF_ALU64 | BPF_ALU => {
                        let op = code & 0xf0;
                        let mut v = Vec::new();
                        if op != BPF_MOV {
                            v.push(dst);
                        }
                        if code & BPF_X != 0 && op != BPF_NEG && op != BPF_END {
                            v.push(src);
                        }
                        v
                    }
                    BPF_LDX => vec![src],
                    BPF_STX => vec![dst, src],
                    BPF_ST => vec![dst],
                    _ => vec![],
                }
            }
            VInsn::Jump { code, dst, src, .. } => {
                if code & 0xf0 == BPF_JA {
                    vec![]
                } else if code & BPF_X != 0 {
                    vec![dst, src]
                } else {
                    vec![dst]
                }
            }
            VInsn::Call { args, .. } => (1..=args).map(Reg::Phys).collect(),
            VInsn::Exit => vec![Reg::Phys(R0)],
            _ => vec![],
        }
    }

    /// Replaces register `from` by `to` wherever this instruction names it.
    pub fn rename(&mut self, from: Reg, to: Reg) {
        let swap = |r: &mut Reg| {
            if *r == from {
                *r = to;
            }
        };
        match self {
            VInsn::Op { dst, src, .. } | VInsn::Jump { dst, src, .. } => {
                swap(dst);
                swap(src);
            }
            VInsn::LdImm64 { dst, .. }
            | VInsn::LdMap { dst, .. }
            | VInsn::LdRodata { dst, .. }
            | VInsn::LdBss { dst, .. }
            | VInsn::LdFunc { dst, .. } => swap(dst),
            VInsn::Call { .. } | VInsn::Exit | VInsn::Label(_) | VInsn::Loc(_) => {}
        }
    }

    /// Registers this instruction writes (a call writes r0 and clobbers r1-r5).
    pub fn defs(&self) -> Vec<Reg> {
        match *self {
            VInsn::Op { code, dst, .. } => match code & 0x07 {
                BPF_ALU64 | BPF_ALU | BPF_LDX => vec![dst],
                _ => vec![],
            },
            VInsn::Call { .. } => (0..=5).map(Reg::Phys).collect(),
            VInsn::LdImm64 { dst, .. }
            | VInsn::LdMap { dst, .. }
            | VInsn::LdRodata { dst, .. }
            | VInsn::LdBss { dst, .. }
            | VInsn::LdFunc { dst, .. } => vec![dst],
            _ => vec![],
        }
    }
}

/// Accesses at growing offsets from one base in straight-line code (no label
/// in between, so the moved base is defined on every path that uses it): past
/// the 16-bit offset field the base moves once per 32 KiB window instead of
/// at every access (`Builder::run_at`).
#[derive(Clone, Copy, Debug)]
pub struct Run {
    base: Reg,
    moved: Reg,
    shift: i32,
}

impl Run {
    pub fn new(base: Reg) -> Run {
        Run { base, moved: base, shift: 0 }
    }
}

/// Builds a `Vec<VInsn>`: fresh virtual registers and labels, and one method per
/// instruction shape.
#[derive(Debug, Default)]
pub struct Builder {
    pub insns: Vec<VInsn>,
    next_vreg: u32,
    next_label: u32,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    pub fn vreg(&mut self) -> Reg {
        self.next_vreg += 1;
        Reg::Virt(self.next_vreg - 1)
    }

    pub fn label(&mut self) -> Label {
        self.next_label += 1;
        Label(self.next_label - 1)
    }

    pub fn place(&mut self, label: Label) {
        self.insns.push(VInsn::Label(label));
    }

    pub fn loc(&mut self, span: Span) {
        self.insns.push(VInsn::Loc(span));
    }

    fn op(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) {
        self.insns.push(VInsn::Op { code, dst, src, off, imm });
    }

    /// `dst op= imm` (64-bit)
    pub fn alu_imm(&mut self, op: u8, dst: Reg, imm: i32) {
        self.op(BPF_ALU64 | op | BPF_K, dst, Reg::Phys(0), 0, imm);
    }

    /// `dst op= src` (64-bit)
    pub fn alu_reg(&mut self, op: u8, dst: Reg, src: Reg) {
        self.op(BPF_ALU64 | op | BPF_X, dst, src, 0, 0);
    }

    /// `dst op= imm` on the low 32 bits, zero-extending the result.
    pub fn alu32_imm(&mut self, op: u8, dst: Reg, imm: i32) {
        self.op(BPF_ALU | op | BPF_K, dst, Reg::Phys(0), 0, imm);
    }

    pub fn mov(&mut self, dst: Reg, src: Reg) {
        if dst != src {
            self.alu_reg(BPF_MOV, dst, src);
        }
    }

    /// `dst = imm`, using one instruction when the value fits a sign-extended imm32.
    pub fn mov_imm(&mut self, dst: Reg, imm: u64) {
        if imm as i64 >= i32::MIN as i64 && imm as i64 <= i32::MAX as i64 {
            self.alu_imm(BPF_MOV, dst, imm as i64 as i32);
        } else {
            self.insns.push(VInsn::LdImm64 { dst, imm });
        }
    }

    /// Reverses the bytes of the low `bits` of `dst` (to big endian on this
    /// little-endian target), zero-extending.
    pub fn bswap(&mut self, dst: Reg, bits: i32) {
        self.op(BPF_ALU | BPF_END | BPF_X, dst, Reg::Phys(0), 0, bits);
    }

    pub fn neg(&mut self, dst: Reg) {
        self.op(BPF_ALU64 | BPF_NEG | BPF_K, dst, Reg::Phys(0), 0, 0);
    }

    /// `dst = *(size *)(base + off)`, zero-extended.
    pub fn load(&mut self, size: u8, dst: Reg, base: Reg, off: i32) {
        let (base, off) = self.reach(base, off);
        self.op(BPF_LDX | size | BPF_MEM, dst, base, off, 0);
    }

    /// `*(size *)(base + off) = src`
    pub fn store(&mut self, size: u8, base: Reg, off: i32, src: Reg) {
        let (base, off) = self.reach(base, off);
        self.op(BPF_STX | size | BPF_MEM, base, src, off, 0);
    }

    /// `*(size *)(base + off) = imm` (imm sign-extended to the store size)
    pub fn store_imm(&mut self, size: u8, base: Reg, off: i32, imm: i32) {
        let (base, off) = self.reach(base, off);
        self.op(BPF_ST | size | BPF_MEM, base, Reg::Phys(0), off, imm);
    }

    /// The register and offset (in range for `load`/`store`) that address
    /// `base + off` of `run`.
    pub fn run_at(&mut self, run: &mut Run, off: i32) -> (Reg, i32) {
        if i16::try_from(off - run.shift).is_err() {
            // A multiple of 8 keeps the offsets' alignment, which the
            // accesses were chosen for.
            run.shift = off & !7;
            run.moved = self.vreg();
            self.mov(run.moved, run.base);
            self.alu_imm(BPF_ADD, run.moved, run.shift);
        }
        (run.moved, off - run.shift)
    }

    /// A base register and 16-bit offset that address `base + off`: the
    /// instruction's own `off` field when it fits, else a fresh register set to
    /// `base + off` (the verifier follows constant pointer arithmetic on
    /// stack, map value and ring buffer pointers alike). This is where every
    /// memory offset the backend emits is range-checked.
    pub fn reach(&mut self, base: Reg, off: i32) -> (Reg, i16) {
        match i16::try_from(off) {
            Ok(off) => (base, off),
            Err(_) => {
                let moved = self.vreg();
                self.mov(moved, base);
                self.alu_imm(BPF_ADD, moved, off);
                (moved, 0)
            }
        }
    }

    pub fn jump(&mut self, target: Label) {
        self.insns.push(VInsn::Jump { code: BPF_JMP | BPF_JA, dst: Reg::Phys(0), src: Reg::Phys(0), imm: 0, target });
    }

    /// `if dst op imm goto target`
    pub fn jump_imm(&mut self, op: u8, dst: Reg, imm: i32, target: Label) {
        self.insns.push(VInsn::Jump { code: BPF_JMP | op | BPF_K, dst, src: Reg::Phys(0), imm, target });
    }

    /// `if dst op src goto target`
    pub fn jump_reg(&mut self, op: u8, dst: Reg, src: Reg, target: Label) {
        self.insns.push(VInsn::Jump { code: BPF_JMP | op | BPF_X, dst, src, imm: 0, target });
    }

    pub fn call(&mut self, helper: Helper, args: u8) {
        self.insns.push(VInsn::Call { helper, args });
    }

    pub fn exit(&mut self) {
        self.insns.push(VInsn::Exit);
    }

    pub fn ld_map(&mut self, dst: Reg, map: usize) {
        self.insns.push(VInsn::LdMap { dst, map });
    }

    pub fn ld_bss(&mut self, dst: Reg, off: u32) {
        self.insns.push(VInsn::LdBss { dst, off });
    }

    pub fn ld_func(&mut self, dst: Reg, func: usize) {
        self.insns.push(VInsn::LdFunc { dst, func });
    }

    /// `lock *(u64 *)(dst + 0) += src`
    pub fn atomic_add64(&mut self, dst: Reg, src: Reg) {
        self.op(BPF_STX | BPF_ATOMIC | BPF_DW, dst, src, 0, BPF_ADD as i32);
    }

    pub fn ld_rodata(&mut self, dst: Reg, off: u32) {
        self.insns.push(VInsn::LdRodata { dst, off });
    }
}

/// Where each label stands in `code`.
pub fn label_positions(code: &[VInsn]) -> HashMap<Label, usize> {
    code.iter()
        .enumerate()
        .filter_map(|(pos, insn)| match insn {
            VInsn::Label(l) => Some((*l, pos)),
            _ => None,
        })
        .collect()
}

/// The source span of the instruction at `pos`: the last `Loc` before it.
pub fn span_before(code: &[VInsn], pos: usize) -> Option<Span> {
    code[..=pos.min(code.len().saturating_sub(1))].iter().rev().find_map(|i| match i {
        VInsn::Loc(s) => Some(*s),
        _ => None,
    })
}
