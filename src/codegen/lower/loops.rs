//! `for` loops, as bpftrace compiles them: the body is a callback function
//! (a BPF subprogram in `.text`) that the kernel calls once per map entry
//! (`bpf_for_each_map_elem`) or per integer of the range (`bpf_loop`), so
//! the verifier checks the body once, however many times it runs.
//!
//! The probe's variables stay in the probe program's own frame: the
//! callback gets its address as its context argument and reaches them
//! through it (a `PTR_TO_STACK` of the caller's frame, which the verifier
//! lets a callback read and write). The same frame holds the probe's
//! context pointer (spilled there, so the verifier keeps its type) and a
//! flag the body sets to end the whole probe (`return`, `exit()`).
//!
//! Callback returns follow the helpers' contract, checked by the verifier
//! (r0 in [0, 1]): 0 goes on to the next element (`continue`, the end of
//! the body), 1 stops the loop (`break`, and the probe ending).

use super::{Lowerer, Subprog};
use crate::codegen::insn::*;
use crate::codegen::ir::{Builder, Label, Reg, FP};
use crate::sema::typed::*;
use crate::span::Span;
use crate::types::{tuple_layout, Type};

/// What the lowering keeps per function, swapped out while a callback is
/// generated.
struct FunctionState {
    b: Builder,
    top: u32,
    peak: u32,
    peak_span: Span,
    exit_label: Label,
    loops: Vec<(Label, Label)>,
    ctx: Reg,
    vars: Reg,
    in_callback: bool,
}

/// Frame-0 slots every loop of a program shares.
#[derive(Clone, Copy, Debug)]
pub struct LoopSlots {
    /// The probe's context pointer.
    pub ctx: i32,
    /// Set to 1 when the body ends the probe.
    pub stop: i32,
}

impl<'a> Lowerer<'a> {
    /// At the start of a program with loops: the shared slots, filled.
    pub fn loop_slots(&mut self) {
        let slots = LoopSlots { ctx: self.alloc(8), stop: self.alloc(8) };
        self.b.store(BPF_DW, FP, slots.ctx, self.ctx);
        self.loop_slots = Some(slots);
    }

    fn slots(&self) -> LoopSlots {
        self.loop_slots.expect("a program with loops reserves the loop slots")
    }

    /// `for ($i : start..end) { body }`
    pub fn for_range(&mut self, var: VarId, start: &TExpr, end: &TExpr, base: VarId, body: &[TStmt]) {
        let signed = start.ty.is_signed() || end.ty.is_signed();
        let first = self.eval(start);
        let last = self.eval(end);
        let (vars, base_slot) = self.var_at(base);
        self.b.store(BPF_DW, vars, base_slot, first);
        // Nothing to run when end <= start; bpf_loop's count is end - start.
        let skip = self.b.label();
        self.b.jump_reg(if signed { BPF_JSLE } else { BPF_JLE }, last, first, skip);
        self.b.alu_reg(BPF_SUB, last, first);
        let func = self.callback(&["index", "ctx"], |l, args| {
            let vars = l.callback_prologue(args[1]);
            let i = l.b.vreg();
            l.b.load(BPF_DW, i, vars, base_slot);
            l.b.alu_reg(BPF_ADD, i, args[0]);
            let (vars, slot) = l.var_at(var);
            l.b.store(BPF_DW, vars, slot, i);
            l.block(body);
        });
        self.b.mov(Reg::Phys(R1), last);
        self.call_with_callback(Helper::Loop, func);
        self.b.place(skip);
    }

    /// `for ($kv : @map) { body }`
    pub fn for_map(&mut self, var: VarId, map: MapId, body: &[TStmt]) {
        let info = &self.manifest.maps[map];
        let (key_size, per_cpu, value_size) = (info.key_layout().size, info.value.per_cpu(), info.value.size());
        let Type::Tuple(entry) = self.prog.vars[var].ty.clone() else {
            unreachable!("checked: a map loop's variable is a (key, value) tuple")
        };
        let layout = tuple_layout(&entry);
        let func = self.callback(&["map", "key", "value", "ctx"], |l, args| {
            let (key, value) = (l.b.vreg(), l.b.vreg());
            l.b.mov(key, args[1]);
            l.b.mov(value, args[2]);
            let vars = l.callback_prologue(args[3]);
            let (_, slot) = l.var_at(var);
            let (key_at, value_at) = (slot + layout.offsets[0] as i32, slot + layout.offsets[1] as i32);
            l.copy(vars, key_at, key, 0, key_size.min(entry[0].size()));
            if per_cpu {
                // The value the callback sees is this CPU's: add up every CPU's.
                let total = l.aggregate_at(map, key, 0);
                l.b.store(BPF_DW, vars, value_at, total);
            } else {
                l.copy(vars, value_at, value, 0, value_size.min(entry[1].size()));
            }
            l.block(body);
        });
        self.b.ld_map(Reg::Phys(R1), map);
        self.call_with_callback(Helper::ForEachMapElem, func);
    }

    /// `helper(r1, &callback, vars, 0)`, then the end of the probe if the
    /// body asked for it.
    fn call_with_callback(&mut self, helper: Helper, func: usize) {
        let slots = self.slots();
        if !self.in_callback {
            self.b.store_imm(BPF_DW, FP, slots.stop, 0);
        }
        self.b.ld_func(Reg::Phys(R2), func);
        self.b.mov(Reg::Phys(R3), self.vars);
        self.b.mov_imm(Reg::Phys(R4), 0);
        self.b.call(helper, 4);
        let stop = self.b.vreg();
        self.b.load(BPF_DW, stop, self.vars, slots.stop);
        self.b.jump_imm(BPF_JNE, stop, 0, self.exit_label);
    }

    /// In a callback: its context argument is the probe frame's address;
    /// the probe's context pointer is reloaded from there.
    fn callback_prologue(&mut self, ctx_arg: Reg) -> Reg {
        let vars = self.b.vreg();
        self.b.mov(vars, ctx_arg);
        self.vars = vars;
        let ctx = self.b.vreg();
        self.b.load(BPF_DW, ctx, vars, self.slots().ctx);
        self.ctx = ctx;
        vars
    }

    /// Generates a callback: `body` gets the argument registers (copied to
    /// virtual ones) and writes the loop body; the returns are added here.
    /// Returns the callback's index among the program's subprograms.
    fn callback(&mut self, params: &'static [&'static str], body: impl FnOnce(&mut Self, &[Reg])) -> usize {
        let saved = self.enter_function();
        // The verifier wants a line record at every function's first instruction.
        self.b.loc(self.stmt_span);
        let args: Vec<Reg> = (R1..R1 + params.len() as u8)
            .map(|r| {
                let v = self.b.vreg();
                self.b.mov(v, Reg::Phys(r));
                v
            })
            .collect();
        let (next, stop) = (self.b.label(), self.b.label());
        self.loops.push((next, stop));
        body(self, &args);
        self.loops.pop();
        // Fell off the body, or `continue`: the next element.
        self.b.place(next);
        self.b.mov_imm(Reg::Phys(R0), 0);
        self.b.exit();
        // `break`
        self.b.place(stop);
        self.b.mov_imm(Reg::Phys(R0), 1);
        self.b.exit();
        // `return`, `exit()`: the probe ends too.
        self.b.place(self.exit_label);
        self.b.store_imm(BPF_DW, self.vars, self.slots().stop, 1);
        self.b.mov_imm(Reg::Phys(R0), 1);
        self.b.exit();
        let sub = self.leave_function(saved, params);
        self.subprogs.push(sub);
        self.subprogs.len() - 1
    }

    fn enter_function(&mut self) -> FunctionState {
        let mut b = Builder::new();
        let exit_label = b.label();
        FunctionState {
            b: std::mem::replace(&mut self.b, b),
            top: std::mem::take(&mut self.top),
            peak: std::mem::take(&mut self.peak),
            peak_span: self.peak_span,
            exit_label: std::mem::replace(&mut self.exit_label, exit_label),
            loops: std::mem::take(&mut self.loops),
            ctx: self.ctx,
            vars: self.vars,
            in_callback: std::mem::replace(&mut self.in_callback, true),
        }
    }

    fn leave_function(&mut self, saved: FunctionState, params: &'static [&'static str]) -> Subprog {
        let insns = std::mem::replace(&mut self.b, saved.b).insns;
        let sub = Subprog { insns, stack: self.peak, span: self.peak_span, params };
        self.top = saved.top;
        self.peak = saved.peak;
        self.peak_span = saved.peak_span;
        self.exit_label = saved.exit_label;
        self.loops = saved.loops;
        self.ctx = saved.ctx;
        self.vars = saved.vars;
        self.in_callback = saved.in_callback;
        sub
    }
}

/// Whether a program has `for` loops (and so needs the loop slots).
pub fn has_loops(stmts: &[TStmt]) -> bool {
    stmts.iter().any(|s| match &s.kind {
        TStmtKind::ForRange { .. } | TStmtKind::ForMap { .. } => true,
        TStmtKind::If { then, els, .. } => has_loops(then) || has_loops(els),
        TStmtKind::While { body, .. } => has_loops(body),
        _ => false,
    })
}
