//! Virtual-register IR → real eBPF instructions: assigns physical registers to
//! virtual ones (linear scan over live intervals), drops no-op moves and jumps
//! to the next instruction, tidies jumps, resolves labels to offsets, and records which
//! instruction came from which source span and which need map relocations.

use super::image::{Reloc, RelocTarget};
use super::insn::*;
use super::ir::{Label, Reg, VInsn};
use crate::span::Span;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinishError {
    #[error("expression too complex: it needs more registers than eBPF has")]
    TooComplex { span: Option<Span> },
    #[error("program too large: a jump spans more than 32767 instructions")]
    JumpTooFar { span: Option<Span> },
}

/// Finished instructions of one program.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub insns: Vec<Insn>,
    pub relocs: Vec<Reloc>,
    /// `(instruction index, span)`: instructions from this index on come from `span`.
    pub locs: Vec<(usize, Span)>,
}

#[derive(Clone, Copy, Debug)]
struct Interval {
    start: usize,
    end: usize,
}

impl Interval {
    /// Two intervals may share a register when one ends exactly where the other
    /// starts: every instruction reads its operands before writing its result.
    fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }
}

pub fn finish(code: &[VInsn]) -> Result<Finished, FinishError> {
    let code = reachable(code);
    let assignment = assign_registers(&code)?;
    emit(&code, &assignment)
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

/// Maps every virtual register to a physical one.
fn assign_registers(code: &[VInsn]) -> Result<HashMap<u32, u8>, FinishError> {
    let mut intervals = virtual_intervals(code);
    extend_over_loops(code, &mut intervals);
    let calls: Vec<usize> =
        code.iter().enumerate().filter(|(_, i)| matches!(i, VInsn::Call { .. })).map(|(p, _)| p).collect();
    let fixed = physical_intervals(code);
    let hints = move_hints(code);

    let mut order: Vec<(u32, Interval)> = intervals.into_iter().collect();
    order.sort_by_key(|(v, iv)| (iv.start, *v));
    let mut assigned: Vec<(Interval, u8)> = Vec::new();
    let mut result = HashMap::new();
    for (vreg, iv) in order {
        // A value live across a helper call must sit in a callee-saved register.
        let crosses_call = calls.iter().any(|&c| iv.start < c && c < iv.end);
        let mut candidates: Vec<u8> = hints.get(&vreg).cloned().unwrap_or_default();
        if crosses_call {
            candidates.extend([R6, R7, R8, R9]);
        } else {
            candidates.extend([R1, R2, R3, R4, R5, R0, R6, R7, R8, R9]);
        }
        let free = candidates.into_iter().find(|&r| {
            (!crosses_call || (R6..=R9).contains(&r))
                && !assigned.iter().any(|(other, reg)| *reg == r && other.overlaps(&iv))
                && !fixed.iter().any(|(reg, other)| *reg == r && other.overlaps(&iv))
        });
        match free {
            Some(r) => {
                assigned.push((iv, r));
                result.insert(vreg, r);
            }
            None => return Err(FinishError::TooComplex { span: span_before(code, iv.start) }),
        }
    }
    Ok(result)
}

fn virtual_intervals(code: &[VInsn]) -> HashMap<u32, Interval> {
    let mut map: HashMap<u32, Interval> = HashMap::new();
    for (pos, insn) in code.iter().enumerate() {
        for reg in insn.uses().into_iter().chain(insn.defs()) {
            if let Reg::Virt(v) = reg {
                let iv = map.entry(v).or_insert(Interval { start: pos, end: pos });
                iv.start = iv.start.min(pos);
                iv.end = iv.end.max(pos);
            }
        }
    }
    map
}

/// A value live on entry to a loop must stay live until the loop's back-edge,
/// or the next iteration would read a reused register.
fn extend_over_loops(code: &[VInsn], intervals: &mut HashMap<u32, Interval>) {
    let labels = label_positions(code);
    let back_edges: Vec<(usize, usize)> = code
        .iter()
        .enumerate()
        .filter_map(|(pos, insn)| match insn {
            VInsn::Jump { target, .. } if labels[target] <= pos => Some((labels[target], pos)),
            _ => None,
        })
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for &(head, tail) in &back_edges {
            for iv in intervals.values_mut() {
                if iv.start < head && iv.end >= head && iv.end < tail {
                    iv.end = tail;
                    changed = true;
                }
            }
        }
    }
}

fn label_positions(code: &[VInsn]) -> HashMap<Label, usize> {
    code.iter()
        .enumerate()
        .filter_map(|(pos, insn)| match insn {
            VInsn::Label(l) => Some((*l, pos)),
            _ => None,
        })
        .collect()
}

/// Where physical registers r0-r9 hold values the IR put there explicitly
/// (helper arguments, call results): from each write to its last read.
fn physical_intervals(code: &[VInsn]) -> Vec<(u8, Interval)> {
    let mut open: HashMap<u8, Interval> = HashMap::new();
    let mut done = Vec::new();
    for (pos, insn) in code.iter().enumerate() {
        for reg in insn.uses() {
            if let Reg::Phys(r) = reg {
                if let Some(iv) = open.get_mut(&r) {
                    iv.end = pos;
                }
            }
        }
        for reg in insn.defs() {
            if let Reg::Phys(r) = reg {
                if r == R10 {
                    continue;
                }
                if let Some(iv) = open.remove(&r) {
                    done.push((r, iv));
                }
                // A call clobbers r1-r5 without giving them a value anyone reads.
                let clobber_only = matches!(insn, VInsn::Call { .. }) && r != R0;
                if !clobber_only {
                    open.insert(r, Interval { start: pos, end: pos });
                }
            }
        }
    }
    done.extend(open);
    done
}

/// Physical registers a virtual one is moved to or from: giving it the same
/// register turns the move into a no-op that `emit` drops.
fn move_hints(code: &[VInsn]) -> HashMap<u32, Vec<u8>> {
    let mut hints: HashMap<u32, Vec<u8>> = HashMap::new();
    for insn in code {
        if let VInsn::Op { code, dst, src, .. } = *insn {
            if code == BPF_ALU64 | BPF_MOV | BPF_X {
                match (dst, src) {
                    (Reg::Virt(v), Reg::Phys(p)) | (Reg::Phys(p), Reg::Virt(v)) if p != R10 => {
                        hints.entry(v).or_default().push(p)
                    }
                    _ => {}
                }
            }
        }
    }
    hints
}

fn span_before(code: &[VInsn], pos: usize) -> Option<Span> {
    code[..=pos.min(code.len().saturating_sub(1))].iter().rev().find_map(|i| match i {
        VInsn::Loc(s) => Some(*s),
        _ => None,
    })
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
                let src = 0; // libbpf rewrites src_reg for relocated loads
                if let Some(target) = reloc {
                    out.relocs.push(Reloc { insn: out.insns.len(), target: *target });
                }
                out.insns.extend(ld_imm64(*dst, src, *imm));
            }
            Item::Jump { insn, target, pos } => {
                let to = index[label_item[target]] as i64;
                let off = to - (index[i] as i64 + 1);
                if off < i16::MIN as i64 || off > i16::MAX as i64 {
                    return Err(FinishError::JumpTooFar { span: span_before(code, *pos) });
                }
                out.insns.push(Insn { off: off as i16, ..*insn });
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
        let mut i = 0;
        while i < items.len() {
            let targeted = |labels: &HashMap<Label, usize>, items: &[Item], at: usize| {
                items.iter().any(|it| matches!(it, Item::Jump { target, .. } if labels[target] == at))
            };
            let remove = match &items[i] {
                Item::Jump { target, .. } if labels[target] == i + 1 => true,
                _ if i > 0 && ends_flow(&items[i - 1]) && !targeted(labels, items, i) => true,
                _ => false,
            };
            if remove {
                remove_item(items, labels, locs, i);
                changed = true;
                continue;
            }
            // `if c goto over; goto far; over:` → `if !c goto far`
            if let (Item::Jump { insn, target, .. }, Some(Item::Jump { insn: next, target: far, .. })) =
                (&items[i], items.get(i + 1))
            {
                if labels[target] == i + 2 && is_goto(next) && !targeted(labels, items, i + 1) {
                    if let Some(inverted) = invert(insn.code) {
                        let far = *far;
                        if let Item::Jump { insn, target, .. } = &mut items[i] {
                            insn.code = inverted;
                            *target = far;
                        }
                        remove_item(items, labels, locs, i + 1);
                        changed = true;
                    }
                }
            }
            i += 1;
        }
        if !changed {
            return;
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

/// Removes item `i`; labels and locations on it move to the item after it.
fn remove_item(items: &mut Vec<Item>, labels: &mut HashMap<Label, usize>, locs: &mut [(usize, Span)], i: usize) {
    items.remove(i);
    for at in labels.values_mut().chain(locs.iter_mut().map(|(at, _)| at)) {
        if *at > i {
            *at -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::ir::{Builder, FP};

    fn run(b: Builder) -> Vec<Insn> {
        finish(&b.insns).expect("finish").insns
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

    #[test]
    fn too_many_live_values_across_a_call_is_an_error() {
        let mut b = Builder::new();
        b.loc(Span::new(3, 9));
        let vs: Vec<Reg> = (0..5).map(|_| b.vreg()).collect();
        for (i, v) in vs.iter().enumerate() {
            b.mov_imm(*v, i as u64);
        }
        b.call(Helper::KtimeGetNs, 0);
        for v in &vs {
            b.store(BPF_DW, FP, -8, *v);
        }
        b.exit();
        assert_eq!(finish(&b.insns).unwrap_err(), FinishError::TooComplex { span: Some(Span::new(3, 9)) });
    }
}
