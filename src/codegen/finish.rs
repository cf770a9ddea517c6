//! Virtual-register IR → real eBPF instructions: assigns physical registers to
//! virtual ones (`regalloc`: linear scan, spilling to the stack), drops no-op moves and jumps
//! to the next instruction, tidies jumps, resolves labels to offsets, and records which
//! instruction came from which source span and which need map relocations.

use super::image::{Reloc, RelocTarget};
use super::insn::*;
use super::ir::{label_positions, span_before, Label, Reg, VInsn};
use super::regalloc;
use crate::span::Span;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinishError {
    #[error("expression too complex: it needs more registers than eBPF has")]
    TooComplex { span: Option<Span> },
    /// Spill slots took the frame past `MAX_STACK` (reported like the
    /// lowering's `StackTooLarge`).
    #[error("this needs {needed} bytes of stack, more than the {MAX_STACK} eBPF allows")]
    StackTooLarge { needed: u32, span: Option<Span> },
    #[error("program too large: a jump spans more than 32767 instructions")]
    JumpTooFar { span: Option<Span> },
}

impl From<regalloc::AllocError> for FinishError {
    fn from(e: regalloc::AllocError) -> FinishError {
        match e {
            regalloc::AllocError::TooComplex { span } => FinishError::TooComplex { span },
            regalloc::AllocError::StackTooLarge { needed, span } => FinishError::StackTooLarge { needed, span },
        }
    }
}

/// Finished instructions of one program.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub insns: Vec<Insn>,
    pub relocs: Vec<Reloc>,
    /// `(instruction index, span)`: instructions from this index on come from `span`.
    pub locs: Vec<(usize, Span)>,
    /// Stack bytes in use, spill slots included.
    pub stack: u32,
}

/// Finishes `code`, whose lowering uses `stack` bytes below r10.
pub fn finish(code: &[VInsn], stack: u32) -> Result<Finished, FinishError> {
    let assigned = regalloc::assign(reachable(code), stack)?;
    let mut out = emit(&assigned.code, &assigned.regs)?;
    out.stack = assigned.stack;
    Ok(out)
}

/// Drops instructions no path reaches (after `return`, or behind a constant
/// condition): the verifier rejects a program with unreachable instructions.
fn reachable(code: &[VInsn]) -> Vec<VInsn> {
    let labels = label_positions(code);
    let mut seen = vec![false; code.len()];
    let mut work = vec![0usize];
    while let Some(pos) = work.pop() {
        if pos >= code.len() || seen[pos] {
            continue;
        }
        seen[pos] = true;
        match &code[pos] {
            VInsn::Exit => {}
            VInsn::Jump { code: op, target, .. } => {
                work.push(labels[target]);
                if *op != BPF_JMP | BPF_JA {
                    work.push(pos + 1);
                }
            }
            _ => work.push(pos + 1),
        }
    }
    code.iter().zip(seen).filter(|(_, s)| *s).map(|(i, _)| i.clone()).collect()
}

/// One instruction after register assignment, before jump resolution.
enum Item {
    Plain(Insn),
    Wide { dst: u8, imm: u64, reloc: Option<RelocTarget> },
    Jump { insn: Insn, target: Label, pos: usize },
}

impl Item {
    fn slots(&self) -> usize {
        match self {
            Item::Wide { .. } => 2,
            _ => 1,
        }
    }
}

fn emit(code: &[VInsn], assignment: &HashMap<u32, u8>) -> Result<Finished, FinishError> {
    let phys = |r: Reg| match r {
        Reg::Phys(p) => p,
        Reg::Virt(v) => assignment[&v],
    };
    // Pass 1: physical registers, no-op moves dropped, labels and locations noted
    // by item index.
    let mut items: Vec<Item> = Vec::new();
    let mut label_item: HashMap<Label, usize> = HashMap::new();
    let mut loc_item: Vec<(usize, Span)> = Vec::new();
    for (pos, insn) in code.iter().enumerate() {
        match *insn {
            VInsn::Op { code, dst, src, off, imm } => {
                let (d, s) = (phys(dst), phys(src));
                if code == BPF_ALU64 | BPF_MOV | BPF_X && d == s {
                    continue;
                }
                items.push(Item::Plain(Insn::new(code, d, s, off, imm)));
            }
            VInsn::Jump { code, dst, src, imm, target } => {
                items.push(Item::Jump { insn: Insn::new(code, phys(dst), phys(src), 0, imm), target, pos });
            }
            VInsn::Call { helper, .. } => items.push(Item::Plain(call(helper))),
            VInsn::Exit => items.push(Item::Plain(exit())),
            VInsn::LdImm64 { dst, imm } => items.push(Item::Wide { dst: phys(dst), imm, reloc: None }),
            VInsn::LdMap { dst, map } => {
                items.push(Item::Wide { dst: phys(dst), imm: 0, reloc: Some(RelocTarget::Map(map)) })
            }
            VInsn::LdRodata { dst, off } => {
                items.push(Item::Wide { dst: phys(dst), imm: off as u64, reloc: Some(RelocTarget::Rodata) })
            }
            VInsn::LdBss { dst, off } => {
                items.push(Item::Wide { dst: phys(dst), imm: off as u64, reloc: Some(RelocTarget::Bss) })
            }
            VInsn::LdFunc { dst, func } => {
                items.push(Item::Wide { dst: phys(dst), imm: 0, reloc: Some(RelocTarget::Func(func)) })
            }
            VInsn::Label(l) => {
                label_item.insert(l, items.len());
            }
            VInsn::Loc(span) => loc_item.push((items.len(), span)),
        }
    }
    tidy_jumps(&mut items, &mut label_item, &mut loc_item);

    // Pass 2: instruction index of every item, then the jump offsets.
    let mut index = Vec::with_capacity(items.len() + 1);
    let mut n = 0;
    for item in &items {
        index.push(n);
        n += item.slots();
    }
    index.push(n);
    let mut out = Finished::default();
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Plain(insn) => out.insns.push(*insn),
            Item::Wide { dst, imm, reloc } => {
                // libbpf sets src_reg of relocated map and data loads; a
                // callback's address it recognises by BPF_PSEUDO_FUNC.
                let src = if matches!(reloc, Some(RelocTarget::Func(_))) { BPF_PSEUDO_FUNC } else { 0 };
                if let Some(target) = reloc {
                    out.relocs.push(Reloc { insn: out.insns.len(), target: *target });
                }
                out.insns.extend(ld_imm64(*dst, src, *imm));
            }
            Item::Jump { insn, target, pos } => {
                let to = index[label_item[target]] as i64;
                let Ok(off) = i16::try_from(to - (index[i] as i64 + 1)) else {
                    return Err(FinishError::JumpTooFar { span: span_before(code, *pos) });
                };
                out.insns.push(Insn { off, ..*insn });
            }
        }
    }
    let mut last: Option<Span> = None;
    for (item, span) in loc_item {
        if last != Some(span) {
            out.locs.push((index[item], span));
            last = Some(span);
        }
    }
    out.locs.dedup_by(|b, a| {
        a.0 == b.0 && {
            a.1 = b.1;
            true
        }
    });
    Ok(out)
}

/// Jump clean-up after register assignment: the lowering emits simple,
/// composable control flow (jumps to jumps, branches over a `goto`) and this
/// pass turns it into what a hand-writer would emit. Repeats until nothing
/// changes:
/// - a jump to an unconditional jump goes straight to the final target;
/// - `if c goto L1; goto L2; L1:` becomes `if !c goto L2`;
/// - jumps to the next instruction disappear;
/// - instructions after `goto`/`exit` that no jump targets are dropped (the
///   verifier rejects unreachable instructions).
///
/// Each round is linear in the program: a sweep marks what goes (`Sweep`)
/// and the survivors are compacted once at its end (removing items one at a
/// time, and asking "is this targeted?" by a scan, made large programs
/// quadratic).
fn tidy_jumps(items: &mut Vec<Item>, labels: &mut HashMap<Label, usize>, locs: &mut [(usize, Span)]) {
    loop {
        let mut changed = false;
        // Thread jumps through unconditional jumps.
        for i in 0..items.len() {
            let Item::Jump { target, .. } = &items[i] else { continue };
            let mut to = *target;
            for _ in 0..16 {
                match items.get(labels[&to]) {
                    Some(Item::Jump { insn, target: next, .. }) if is_goto(insn) && *next != to => to = *next,
                    _ => break,
                }
            }
            if let Item::Jump { target, .. } = &mut items[i] {
                if *target != to {
                    *target = to;
                    changed = true;
                }
            }
        }
        let mut sweep = Sweep::new(items, labels);
        let mut prev: Option<usize> = None;
        let mut i = 0;
        while i < items.len() {
            let remove = match &items[i] {
                Item::Jump { target, .. } if sweep.at(labels[target]) == i + 1 => true,
                _ if prev.is_some_and(|p| ends_flow(&items[p])) && sweep.targeted[i] == 0 => true,
                _ => false,
            };
            if remove {
                sweep.remove(items, labels, i);
                changed = true;
                i += 1;
                continue;
            }
            prev = Some(i);
            // `if c goto over; goto far; over:` → `if !c goto far`
            if let (Item::Jump { insn, target, .. }, Some(Item::Jump { insn: next, target: far, .. })) =
                (&items[i], items.get(i + 1))
            {
                if sweep.at(labels[target]) == i + 2 && is_goto(next) && sweep.targeted[i + 1] == 0 {
                    if let Some(inverted) = invert(insn.code) {
                        let (over, far) = (*target, *far);
                        // The goto's jump to `far` becomes this one's.
                        sweep.remove(items, labels, i + 1);
                        sweep.retarget(labels[&over], labels[&far]);
                        if let Item::Jump { insn, target, .. } = &mut items[i] {
                            insn.code = inverted;
                            *target = far;
                        }
                        changed = true;
                        i += 2;
                        continue;
                    }
                }
            }
            i += 1;
        }
        sweep.compact(items, labels, locs);
        if !changed {
            return;
        }
    }
}

/// One round of `tidy_jumps`: which items go, and how many jumps target each
/// item as the items stand (a label on a removed item moves to the next item
/// that stays, as it will when the round compacts them).
struct Sweep {
    /// Per item (and one past the end): itself if it stays, else a link
    /// towards the next item that does (followed with path halving).
    next: Vec<usize>,
    targeted: Vec<u32>,
}

impl Sweep {
    fn new(items: &[Item], labels: &HashMap<Label, usize>) -> Sweep {
        let mut targeted = vec![0; items.len() + 1];
        for item in items {
            if let Item::Jump { target, .. } = item {
                targeted[labels[target]] += 1;
            }
        }
        Sweep { next: (0..=items.len()).collect(), targeted }
    }

    /// The item a label placed on item `pos` is on now.
    fn at(&mut self, mut pos: usize) -> usize {
        while self.next[pos] != pos {
            self.next[pos] = self.next[self.next[pos]];
            pos = self.next[pos];
        }
        pos
    }

    /// Item `i` goes: jumps to it now land on the item after it, and its own
    /// jump (if it is one) targets nothing.
    fn remove(&mut self, items: &[Item], labels: &HashMap<Label, usize>, i: usize) {
        if let Item::Jump { target, .. } = &items[i] {
            let to = self.at(labels[target]);
            self.targeted[to] -= 1;
        }
        self.next[i] = i + 1;
        let after = self.at(i + 1);
        self.targeted[after] += std::mem::take(&mut self.targeted[i]);
    }

    /// A jump to the label on item `from` now goes to the label on item `to`.
    fn retarget(&mut self, from: usize, to: usize) {
        let (from, to) = (self.at(from), self.at(to));
        self.targeted[from] -= 1;
        self.targeted[to] += 1;
    }

    /// Drops the removed items; labels and locations move with them.
    fn compact(self, items: &mut Vec<Item>, labels: &mut HashMap<Label, usize>, locs: &mut [(usize, Span)]) {
        // Items that stay before each position: where a label there lands.
        let mut before = Vec::with_capacity(self.next.len());
        let mut kept = 0;
        for (i, &n) in self.next.iter().enumerate() {
            before.push(kept);
            kept += usize::from(n == i);
        }
        let mut i = 0;
        items.retain(|_| {
            i += 1;
            self.next[i - 1] == i - 1
        });
        for at in labels.values_mut().chain(locs.iter_mut().map(|(at, _)| at)) {
            *at = before[*at];
        }
    }
}

fn is_goto(insn: &Insn) -> bool {
    insn.code == BPF_JMP | BPF_JA
}

fn ends_flow(item: &Item) -> bool {
    match item {
        Item::Jump { insn, .. } => is_goto(insn),
        Item::Plain(insn) => insn.code == BPF_JMP | BPF_EXIT,
        Item::Wide { .. } => false,
    }
}

/// The jump taken exactly when `code`'s is not (same class and source).
fn invert(code: u8) -> Option<u8> {
    let op = match code & 0xf0 {
        BPF_JEQ => BPF_JNE,
        BPF_JNE => BPF_JEQ,
        BPF_JGT => BPF_JLE,
        BPF_JLE => BPF_JGT,
        BPF_JGE => BPF_JLT,
        BPF_JLT => BPF_JGE,
        BPF_JSGT => BPF_JSLE,
        BPF_JSLE => BPF_JSGT,
        BPF_JSGE => BPF_JSLT,
        BPF_JSLT => BPF_JSGE,
        _ => return None,
    };
    Some((code & 0x0f) | op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::ir::{Builder, FP};

    fn run(b: Builder) -> Vec<Insn> {
        finish(&b.insns, 0).expect("finish").insns
    }

    #[test]
    fn move_hints_make_call_arguments_free() {
        // ctx stays in r1 and the loaded value lands straight in r0: no moves.
        let mut b = Builder::new();
        let ctx = b.vreg();
        b.mov(ctx, Reg::Phys(R1));
        let v = b.vreg();
        b.load(BPF_DW, v, ctx, 112);
        b.mov(Reg::Phys(R0), v);
        b.exit();
        let insns = run(b);
        assert_eq!(insns, vec![ldx(BPF_DW, R0, R1, 112), exit()]);
    }

    #[test]
    fn values_live_across_calls_use_callee_saved_registers() {
        let mut b = Builder::new();
        let ctx = b.vreg();
        b.mov(ctx, Reg::Phys(R1));
        b.call(Helper::KtimeGetNs, 0);
        let t = b.vreg();
        b.mov(t, Reg::Phys(R0));
        let x = b.vreg();
        b.load(BPF_DW, x, ctx, 0);
        b.alu_reg(BPF_ADD, x, t);
        b.mov(Reg::Phys(R0), x);
        b.exit();
        let insns = run(b);
        assert_eq!(insns[0], mov64_reg(R6, R1));
        assert_eq!(insns[1], call(Helper::KtimeGetNs));
        // t may stay in r0 since nothing clobbers it before its last use.
        assert_eq!(insns[2].code, BPF_LDX | BPF_DW | BPF_MEM);
        assert_eq!(insns[2].src, R6);
    }

    #[test]
    fn argument_registers_are_not_reused_while_holding_arguments() {
        let mut b = Builder::new();
        let a = b.vreg();
        let c = b.vreg();
        b.mov_imm(a, 1);
        b.mov_imm(c, 2);
        b.mov(Reg::Phys(R1), a);
        b.mov(Reg::Phys(R2), c);
        b.call(Helper::TracePrintk, 2);
        b.exit();
        let insns = run(b);
        // a may live in r1 (its move is dropped) but c must not be r1.
        assert_eq!(insns, vec![mov64_imm(R1, 1), mov64_imm(R2, 2), call(Helper::TracePrintk), exit()]);
    }

    #[test]
    fn jumps_resolve_across_wide_loads() {
        let mut b = Builder::new();
        let end = b.label();
        let v = b.vreg();
        b.mov_imm(v, 0);
        b.jump_imm(BPF_JEQ, v, 0, end);
        b.mov_imm(v, u64::MAX / 2);
        b.place(end);
        b.mov(Reg::Phys(R0), v);
        b.exit();
        let insns = run(b);
        assert_eq!(insns.len(), 5);
        assert_eq!(insns[1].off, 2, "skips both slots of ld_imm64");
    }

    #[test]
    fn loop_keeps_values_live_on_entry() {
        let mut b = Builder::new();
        let base = b.vreg();
        b.mov(base, Reg::Phys(R1));
        let head = b.label();
        let out = b.label();
        b.place(head);
        let t = b.vreg();
        b.load(BPF_DW, t, base, 0);
        b.jump_imm(BPF_JEQ, t, 0, out);
        let u = b.vreg();
        b.mov_imm(u, 7);
        b.store(BPF_DW, FP, -8, u);
        b.jump(head);
        b.place(out);
        b.mov_imm(Reg::Phys(R0), 0);
        b.exit();
        let insns = run(b);
        // u is written after base's last textual use but inside the loop:
        // it must not share base's register.
        let load_base = insns.iter().find(|i| i.class() == BPF_LDX).unwrap().src;
        let mov_u = insns.iter().find(|i| *i == &mov64_imm(i.dst, 7)).unwrap().dst;
        assert_ne!(load_base, mov_u);
    }

    #[test]
    fn unreachable_code_is_dropped() {
        let mut b = Builder::new();
        let out = b.label();
        b.mov_imm(Reg::Phys(R0), 0);
        b.jump(out);
        b.mov_imm(Reg::Phys(R0), 1);
        b.place(out);
        b.exit();
        assert_eq!(run(b), vec![mov64_imm(R0, 0), exit()]);
    }

    /// `n` if/else diamonds the way the lowering writes them (a branch over
    /// a `goto`, jumps to jumps, a `goto` to the next instruction), each
    /// adding 1 (to an even total) or 3 (to an odd one).
    fn diamonds(n: usize) -> Builder {
        let mut b = Builder::new();
        let acc = b.vreg();
        let bit = b.vreg();
        b.mov_imm(acc, 0);
        for _ in 0..n {
            let (then, other, join, end) = (b.label(), b.label(), b.label(), b.label());
            b.mov(bit, acc);
            b.alu_imm(BPF_AND, bit, 1);
            b.jump_imm(BPF_JEQ, bit, 0, then);
            b.jump(other);
            b.place(then);
            b.alu_imm(BPF_ADD, acc, 1);
            b.jump(join);
            b.place(other);
            b.alu_imm(BPF_ADD, acc, 3);
            b.jump(end);
            b.place(join);
            b.jump(end);
            b.place(end);
        }
        b.mov(Reg::Phys(R0), acc);
        b.exit();
        b
    }

    #[test]
    fn tidied_branches_keep_their_meaning() {
        let insns = run(diamonds(50));
        // From 0: each pair of diamonds adds 1, then 3.
        assert_eq!(interpret(&insns), 100);
        for (i, insn) in insns.iter().enumerate() {
            let is_jump = insn.class() == BPF_JMP && !matches!(insn.code & 0xf0, BPF_CALL | BPF_EXIT);
            assert!(!(is_jump && insn.off == 0), "jump to the next instruction at {i}");
            if is_goto(insn) {
                let to = insns[(i as i64 + 1 + insn.off as i64) as usize];
                assert!(!is_goto(&to), "goto to a goto at {i}");
            }
        }
        // Per diamond: mov, and, one inverted branch, add, goto, add; then
        // the total's first value and the exit.
        assert!(insns.len() <= 50 * 6 + 3, "{} instructions", insns.len());
    }

    #[test]
    fn tidying_is_linear_in_the_program() {
        // 40,000 diamonds took minutes when each removal shifted the whole
        // program and each "is this targeted?" scanned it.
        let started = std::time::Instant::now();
        let insns = run(diamonds(40_000));
        assert_eq!(interpret(&insns), 80_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    }

    /// Runs finished code the way the kernel would, for what the allocator
    /// is about: ALU, jumps, stack loads and stores, and calls that return
    /// 1000, 1001, ... and leave garbage in r1-r5. Returns r0 at `exit`.
    fn interpret(insns: &[Insn]) -> u64 {
        const FRAME: u64 = 0x10_0000;
        let mut r = [0u64; 11];
        r[10] = FRAME;
        let mut stack = [0u8; MAX_STACK as usize];
        let mut calls = 0;
        let mut pc = 0usize;
        for _ in 0..1_000_000 {
            let i = insns[pc];
            pc += 1;
            let (d, s) = (i.dst as usize, i.src as usize);
            let operand = if i.code & BPF_X != 0 { r[s] } else { i.imm as i64 as u64 };
            let slot =
                |base: u64| (base.wrapping_add(i.off as i64 as u64).wrapping_sub(FRAME - MAX_STACK as u64)) as usize;
            match i.class() {
                BPF_ALU64 => {
                    r[d] = match i.code & 0xf0 {
                        BPF_MOV => operand,
                        BPF_ADD => r[d].wrapping_add(operand),
                        BPF_SUB => r[d].wrapping_sub(operand),
                        BPF_MUL => r[d].wrapping_mul(operand),
                        BPF_RSH => r[d] >> operand,
                        BPF_LSH => r[d] << operand,
                        BPF_AND => r[d] & operand,
                        op => panic!("alu op {op:#x}"),
                    }
                }
                BPF_LDX => {
                    assert_eq!(i.code & 0x18, BPF_DW, "only the stack's u64 slots");
                    let at = slot(r[s]);
                    r[d] = u64::from_le_bytes(stack[at..at + 8].try_into().unwrap());
                }
                BPF_STX => {
                    let at = slot(r[d]);
                    stack[at..at + 8].copy_from_slice(&r[s].to_le_bytes());
                }
                BPF_ST => {
                    let at = slot(r[d]);
                    stack[at..at + 8].copy_from_slice(&(i.imm as i64 as u64).to_le_bytes());
                }
                BPF_JMP => match i.code & 0xf0 {
                    BPF_CALL => {
                        r[0] = 1000 + calls;
                        calls += 1;
                        r[1..=5].fill(0xdead);
                    }
                    BPF_EXIT => return r[0],
                    op => {
                        let taken = match op {
                            BPF_JA => true,
                            BPF_JEQ => r[d] == operand,
                            BPF_JNE => r[d] != operand,
                            BPF_JLT => r[d] < operand,
                            BPF_JGE => r[d] >= operand,
                            _ => panic!("jump op {op:#x}"),
                        };
                        if taken {
                            pc = (pc as i64 + i.off as i64) as usize;
                        }
                    }
                },
                class => panic!("class {class:#x}"),
            }
        }
        panic!("no exit");
    }

    /// `v[0] + (v[1] + (... + v[n-1]))` where `v[i] = ktime() * 0 + i`: each
    /// value comes from a helper call and stays live across the later ones.
    fn nested_calls(b: &mut Builder, n: usize) -> Reg {
        let vs: Vec<Reg> = (0..n)
            .map(|i| {
                let v = b.vreg();
                b.call(Helper::KtimeGetNs, 0);
                b.mov(v, Reg::Phys(R0));
                b.alu_imm(BPF_MUL, v, 0);
                b.alu_imm(BPF_ADD, v, i as i32 + 1);
                v
            })
            .collect();
        for w in vs.windows(2).rev() {
            b.alu_reg(BPF_ADD, w[0], w[1]);
        }
        vs[0]
    }

    /// Finishes `b` with `r0 = value; exit`, below a lowering frame of `stack` bytes.
    fn returning(mut b: Builder, value: Reg, stack: u32) -> Result<Finished, FinishError> {
        b.mov(Reg::Phys(R0), value);
        b.exit();
        finish(&b.insns, stack)
    }

    #[test]
    fn values_live_across_a_call_beyond_r6_r9_spill_to_the_stack() {
        let mut b = Builder::new();
        let sum = nested_calls(&mut b, 6);
        let f = returning(b, sum, 16).expect("spills");
        assert_eq!(interpret(&f.insns), 21);
        // Six values live across calls, four callee-saved registers: the
        // rest goes to slots below the lowering's 16 bytes.
        assert!(f.stack > 16, "spill slots below the lowering's frame");
        assert!(f.insns.iter().any(|i| i.class() == BPF_STX && i.dst == R10 && i.off <= -24));
    }

    #[test]
    fn every_register_busy_spills_without_calls() {
        // 14 values all live at once, more than r0-r9.
        let mut b = Builder::new();
        let vs: Vec<Reg> = (0..14).map(|_| b.vreg()).collect();
        for (i, v) in vs.iter().enumerate() {
            b.mov_imm(*v, 1 << i);
        }
        for w in vs.windows(2).rev() {
            b.alu_reg(BPF_ADD, w[0], w[1]);
        }
        let f = returning(b, vs[0], 0).expect("spills");
        assert_eq!(interpret(&f.insns), (1 << 14) - 1);
    }

    #[test]
    fn code_that_fits_is_unchanged_by_spilling() {
        let mut b = Builder::new();
        let sum = nested_calls(&mut b, 4);
        let f = returning(b, sum, 0).unwrap();
        assert_eq!(f.stack, 0);
        assert!(f.insns.iter().all(|i| i.dst != R10 && i.src != R10), "no stack access");
        assert_eq!(interpret(&f.insns), 10);
    }

    #[test]
    fn spill_slots_of_separate_statements_share_the_stack() {
        let mut b = Builder::new();
        let total = b.vreg();
        b.mov_imm(total, 0);
        b.store(BPF_DW, FP, -8, total);
        for _ in 0..20 {
            let sum = nested_calls(&mut b, 7);
            let t = b.vreg();
            b.load(BPF_DW, t, FP, -8);
            b.alu_reg(BPF_ADD, t, sum);
            b.store(BPF_DW, FP, -8, t);
        }
        let r = b.vreg();
        b.load(BPF_DW, r, FP, -8);
        let f = returning(b, r, 8).expect("spills");
        assert_eq!(interpret(&f.insns), 20 * 28);
        assert!(f.stack <= 8 + 3 * 8, "20 statements reuse their slots: {} bytes", f.stack);
    }

    #[test]
    fn spilled_values_stay_intact_around_a_loop_with_calls() {
        // a..f live from before a loop (with a call in each iteration) to
        // after it: their slots must not be reused inside.
        let mut b = Builder::new();
        let sum = {
            let vs: Vec<Reg> = (0..6).map(|_| b.vreg()).collect();
            for (i, v) in vs.iter().enumerate() {
                b.call(Helper::KtimeGetNs, 0);
                b.mov(*v, Reg::Phys(R0));
                b.alu_imm(BPF_MUL, *v, 0);
                b.alu_imm(BPF_ADD, *v, 10 * (i as i32 + 1));
            }
            let i = b.vreg();
            b.mov_imm(i, 0);
            let (head, end) = (b.label(), b.label());
            b.place(head);
            b.jump_imm(BPF_JGE, i, 3, end);
            let inner = nested_calls(&mut b, 6);
            b.alu_reg(BPF_ADD, i, inner);
            b.alu_imm(BPF_SUB, i, 20);
            b.jump(head);
            b.place(end);
            for w in vs.windows(2).rev() {
                b.alu_reg(BPF_ADD, w[0], w[1]);
            }
            b.alu_reg(BPF_ADD, vs[0], i);
            vs[0]
        };
        let f = returning(b, sum, 0).expect("spills");
        // 10 + ... + 60, plus the counter: 0 → 1 → 2 → 3.
        assert_eq!(interpret(&f.insns), 210 + 3);
    }

    #[test]
    fn spills_past_the_stack_limit_are_refused_at_the_source() {
        let mut b = Builder::new();
        b.loc(Span::new(3, 9));
        let sum = nested_calls(&mut b, 8);
        let err = returning(b, sum, MAX_STACK - 8).unwrap_err();
        let FinishError::StackTooLarge { needed, span } = err else { panic!("{err:?}") };
        assert!(needed > MAX_STACK);
        assert_eq!(span, Some(Span::new(3, 9)));
    }
}
