//! Virtual registers → physical ones: linear scan over live intervals, with
//! spilling. A value that finds no register (more values live at once than
//! eBPF has registers, or more live across a helper call than the four
//! callee-saved r6-r9) moves to an 8-byte stack slot below the lowering's
//! frame: stored after its writes and loaded before its reads, through
//! temporaries that live only across the instructions naming the value, and
//! the scan runs again on that code.
//! Slots count against the same 512-byte stack as the lowering's; running out
//! is the only way allocation fails.

use super::insn::*;
use super::ir::{label_positions, span_before, Reg, VInsn, FP};
use crate::span::Span;
use std::collections::{HashMap, HashSet};

/// Why no assignment exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocError {
    /// A value finds neither a register nor a stack slot.
    TooComplex { span: Option<Span> },
    /// Spill slots took the frame past `MAX_STACK`.
    StackTooLarge { needed: u32, span: Option<Span> },
}

/// The code (with any spill loads and stores) and its register assignment.
pub struct Assigned {
    pub code: Vec<VInsn>,
    pub regs: HashMap<u32, u8>,
    /// Stack bytes in use: the lowering's frame plus the spill slots.
    pub stack: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Interval {
    pub start: usize,
    pub end: usize,
}

impl Interval {
    /// Two intervals may share a register when one ends exactly where the other
    /// starts: every instruction reads its operands before writing its result.
    fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Assigns every virtual register of `code` a physical one; `stack` is the
/// frame the lowering uses (r10 - stack .. r10), spill slots go below it.
pub fn assign(code: Vec<VInsn>, stack: u32) -> Result<Assigned, AllocError> {
    let mut code = code;
    let mut stack = stack;
    // Spill temporaries live only where they are used: spilling them frees nothing.
    let mut temps = HashSet::new();
    let mut next =
        code.iter().flat_map(|i| i.uses().into_iter().chain(i.defs())).filter_map(virt).max().map_or(0, |v| v + 1);
    loop {
        let intervals = live_intervals(&code);
        let spilled = match scan(&code, &intervals, &temps)? {
            Scan::Done(regs) => return Ok(Assigned { code, regs, stack }),
            Scan::Spill(spilled) => spilled,
        };
        let slots = spill_slots(&code, &spilled, &intervals, &mut stack)?;
        code = rewrite(&code, &slots, &intervals, &mut next, &mut temps);
    }
}

fn virt(r: Reg) -> Option<u32> {
    match r {
        Reg::Virt(v) => Some(v),
        Reg::Phys(_) => None,
    }
}

enum Scan {
    Done(HashMap<u32, u8>),
    /// These virtual registers go to the stack before the next scan.
    Spill(Vec<u32>),
}

/// One linear scan in order of interval start. Where no register is free,
/// the value that stays live longest (the current one or one holding a
/// register it could use) is spilled, and the scan goes on without it.
fn scan(code: &[VInsn], intervals: &HashMap<u32, Interval>, temps: &HashSet<u32>) -> Result<Scan, AllocError> {
    let calls: Vec<usize> =
        code.iter().enumerate().filter(|(_, i)| matches!(i, VInsn::Call { .. })).map(|(p, _)| p).collect();
    let fixed = FixedIntervals::new(physical_intervals(code));
    let hints = move_hints(code);

    let mut order: Vec<(u32, Interval)> = intervals.iter().map(|(v, iv)| (*v, *iv)).collect();
    order.sort_by_key(|(v, iv)| (iv.start, *v));
    // Per register, the values holding it that may still overlap later ones.
    let mut held: [Vec<(u32, Interval)>; 10] = Default::default();
    let mut regs = HashMap::new();
    let mut spilled = Vec::new();
    for (vreg, iv) in order {
        for h in held.iter_mut() {
            h.retain(|(_, o)| o.end >= iv.start);
        }
        // A value live across a helper call must sit in a callee-saved register.
        let first_call_after = calls.partition_point(|&c| c <= iv.start);
        let crosses_call = calls.get(first_call_after).is_some_and(|&c| c < iv.end);
        let mut candidates: Vec<u8> = hints.get(&vreg).cloned().unwrap_or_default();
        if crosses_call {
            candidates.retain(|r| (R6..=R9).contains(r));
            candidates.extend([R6, R7, R8, R9]);
        } else {
            candidates.extend([R1, R2, R3, R4, R5, R0, R6, R7, R8, R9]);
        }
        candidates.retain(|&r| !fixed.overlaps(r, &iv));
        let free = candidates.iter().copied().find(|&r| !held[r as usize].iter().any(|(_, o)| o.overlaps(&iv)));
        if let Some(r) = free {
            held[r as usize].push((vreg, iv));
            regs.insert(vreg, r);
            continue;
        }
        // The register whose holders stay live longest, if none is a temporary.
        let mut best: Option<(usize, u8)> = None;
        for &r in &candidates {
            let holders = held[r as usize].iter().filter(|(_, o)| o.overlaps(&iv));
            if holders.clone().any(|(v, _)| temps.contains(v)) {
                continue;
            }
            let end = holders.map(|(_, o)| o.end).max().unwrap_or(0);
            if best.is_none_or(|(e, _)| end > e) {
                best = Some((end, r));
            }
        }
        match best {
            Some((end, r)) if end > iv.end || temps.contains(&vreg) => {
                held[r as usize].retain(|(v, o)| {
                    let evict = o.overlaps(&iv);
                    if evict {
                        spilled.push(*v);
                        regs.remove(v);
                    }
                    !evict
                });
                held[r as usize].push((vreg, iv));
                regs.insert(vreg, r);
            }
            _ if !temps.contains(&vreg) => spilled.push(vreg),
            // Unreachable in practice: a temporary lives only across the
            // instructions that use it, and every other value in its way
            // can be spilled.
            _ => return Err(AllocError::TooComplex { span: span_before(code, iv.start) }),
        }
    }
    Ok(if spilled.is_empty() { Scan::Done(regs) } else { Scan::Spill(spilled) })
}

/// Stack slots for `spilled`: values whose intervals do not overlap share
/// one. Refuses the program when the frame outgrows `MAX_STACK`.
fn spill_slots(
    code: &[VInsn],
    spilled: &[u32],
    intervals: &HashMap<u32, Interval>,
    stack: &mut u32,
) -> Result<HashMap<u32, i16>, AllocError> {
    let mut order: Vec<(u32, Interval)> = spilled.iter().map(|v| (*v, intervals[v])).collect();
    order.sort_by_key(|(v, iv)| (iv.start, *v));
    let mut holders: Vec<Vec<Interval>> = Vec::new();
    let mut slots = HashMap::new();
    for (vreg, iv) in order {
        let k = match holders.iter().position(|h| h.iter().all(|o| !o.overlaps(&iv))) {
            Some(k) => k,
            None => {
                holders.push(Vec::new());
                let needed = *stack + 8 * holders.len() as u32;
                if needed > MAX_STACK {
                    return Err(AllocError::StackTooLarge { needed, span: span_before(code, iv.start) });
                }
                holders.len() - 1
            }
        };
        holders[k].push(iv);
        // Within MAX_STACK (checked above), so the offset fits.
        slots.insert(vreg, -((*stack + 8 * (k as u32 + 1)) as i16));
    }
    *stack += 8 * holders.len() as u32;
    Ok(slots)
}

/// Replaces each spilled register by temporaries: loaded from the slot before
/// a read, stored to it after a write. A run of consecutive instructions that
/// all name the register (no label, call or other instruction in between)
/// shares one temporary: loaded once, stored once after its last write, so
/// the temporary is never live where it is not used. A write whose value
/// no later instruction reads outside the run is not stored.
fn rewrite(
    code: &[VInsn],
    slots: &HashMap<u32, i16>,
    intervals: &HashMap<u32, Interval>,
    next: &mut u32,
    temps: &mut HashSet<u32>,
) -> Vec<VInsn> {
    let spilled_in = |insn: &VInsn| -> (Vec<Reg>, Vec<Reg>) {
        let keep = |r: &Reg| virt(*r).is_some_and(|v| slots.contains_key(&v));
        (insn.uses().into_iter().filter(keep).collect(), insn.defs().into_iter().filter(keep).collect())
    };
    // Source markers take no part in runs.
    let real: Vec<usize> = (0..code.len()).filter(|&i| !matches!(code[i], VInsn::Loc(_))).collect();
    let mut out = Vec::with_capacity(code.len() + 2 * slots.len());
    let mut run: HashMap<Reg, Reg> = HashMap::new();
    let mut at = 0;
    for (pos, insn) in code.iter().enumerate() {
        if let VInsn::Loc(_) = insn {
            out.push(insn.clone());
            continue;
        }
        let (uses, defs) = spilled_in(insn);
        let following = real.get(at + 1).copied();
        let (next_uses, next_defs) = following.map(|n| spilled_in(&code[n])).unwrap_or_default();
        at += 1;
        let mut insn = insn.clone();
        let mut after = Vec::new();
        let mut this_run = HashMap::new();
        for r in uses.iter().chain(&defs) {
            if this_run.contains_key(r) {
                continue;
            }
            let v = virt(*r).unwrap_or_default();
            let slot = slots[&v];
            let t = match run.get(r) {
                Some(t) => *t,
                None => {
                    let t = Reg::Virt(*next);
                    temps.insert(*next);
                    *next += 1;
                    if uses.contains(r) {
                        out.push(VInsn::Op { code: BPF_LDX | BPF_DW | BPF_MEM, dst: t, src: FP, off: slot, imm: 0 });
                    }
                    t
                }
            };
            insn.rename(*r, t);
            // Dead stores: the next instruction writes the value again, or
            // the value's last read is here or in the next instruction.
            let end = intervals[&v].end;
            let dead = next_defs.contains(r) || end == pos || (Some(end) == following && next_uses.contains(r));
            if defs.contains(r) && !dead {
                after.push(VInsn::Op { code: BPF_STX | BPF_DW | BPF_MEM, dst: FP, src: t, off: slot, imm: 0 });
            }
            this_run.insert(*r, t);
        }
        out.push(insn);
        out.extend(after);
        run = this_run;
    }
    out
}

/// Each virtual register's interval from its first to its last appearance,
/// extended over the loops it is live into.
pub(super) fn live_intervals(code: &[VInsn]) -> HashMap<u32, Interval> {
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
    extend_over_loops(code, &mut map);
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

/// The physical intervals by register, sorted by start, with the running
/// maximum of their ends: "does any overlap this interval" is a binary search.
struct FixedIntervals {
    by_reg: [Vec<(usize, usize)>; 10],
}

impl FixedIntervals {
    fn new(intervals: Vec<(u8, Interval)>) -> FixedIntervals {
        let mut by_reg: [Vec<(usize, usize)>; 10] = Default::default();
        let mut sorted = intervals;
        sorted.sort_by_key(|(r, iv)| (*r, iv.start));
        for (r, iv) in sorted {
            let list = &mut by_reg[r as usize];
            let max_end = list.last().map_or(iv.end, |&(_, e)| e.max(iv.end));
            list.push((iv.start, max_end));
        }
        FixedIntervals { by_reg }
    }

    /// Some fixed interval of `reg` overlaps `iv`: one starts before `iv`
    /// ends and (the latest-ending of those) ends after `iv` starts.
    fn overlaps(&self, reg: u8, iv: &Interval) -> bool {
        let list = &self.by_reg[reg as usize];
        let before_end = list.partition_point(|&(start, _)| start < iv.end);
        before_end > 0 && list[before_end - 1].1 > iv.start
    }
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
