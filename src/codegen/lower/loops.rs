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
    /// The callback allocates in its caller's frame.
    shared: bool,
    b: Builder,
    top: u32,
    peak: u32,
    peak_span: Span,
    exit_label: Label,
    loops: Vec<(Label, Label)>,
    ctx: Reg,
    vars: Reg,
    frame: Reg,
    slots_base: Reg,
    stack_top: u32,
    stack_peak: u32,
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
        let slots = LoopSlots { ctx: self.alloc_stack(8), stop: self.alloc_stack(8) };
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
        self.b.mov(Reg::Phys(R3), self.slots_base);
        self.b.mov_imm(Reg::Phys(R4), 0);
        self.b.call(helper, 4);
        let stop = self.b.vreg();
        self.b.load(BPF_DW, stop, self.slots_base, slots.stop);
        self.b.jump_imm(BPF_JNE, stop, 0, self.exit_label);
    }

    /// In a callback: its context argument is the probe frame's address;
    /// the probe's context pointer is reloaded from there. Returns where
    /// the variables are: that frame, or the scratch frame found again.
    fn callback_prologue(&mut self, ctx_arg: Reg) -> Reg {
        let base = self.b.vreg();
        self.b.mov(base, ctx_arg);
        self.slots_base = base;
        self.vars = base;
        let ctx = self.b.vreg();
        self.b.load(BPF_DW, ctx, base, self.slots().ctx);
        self.ctx = ctx;
        self.enter_frame();
        self.vars
    }

    /// Generates a callback: `body` gets the argument registers (copied to
    /// virtual ones) and writes the loop body; the returns are added here.
    /// Returns the callback's index among the program's subprograms.
    fn callback(&mut self, params: &'static [&'static str], body: impl FnOnce(&mut Self, &[Reg])) -> usize {
        let saved = self.enter_function(self.scratch != super::Frame::Stack);
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
        self.b.store_imm(BPF_DW, self.slots_base, self.slots().stop, 1);
        self.b.mov_imm(Reg::Phys(R0), 1);
        self.b.exit();
        let sub = self.leave_function(saved, params);
        self.subprogs.push(sub);
        self.subprogs.len() - 1
    }

    /// `for (i = 0; i < count; i++) body`, as a `bpf_loop` whose callback
    /// works in this function's frame (`self.frame`, at the same offsets):
    /// on the stack it gets the frame's address as its context, in the
    /// scratch map it finds the frame again. `body` gets the index (below
    /// `count`, as the verifier knows) and a label that ends the loop; it
    /// must not allocate, and reads nothing but the frame (variables may
    /// be elsewhere: copy them into the frame first).
    pub fn frame_loop(&mut self, count: u32, body: impl FnOnce(&mut Self, Reg, Label)) {
        let scratch = self.scratch != super::Frame::Stack;
        let caller_frame = self.frame;
        let saved = self.enter_function(true);
        self.b.loc(self.stmt_span);
        let (index, ctx) = (self.b.vreg(), self.b.vreg());
        self.b.mov(index, Reg::Phys(R1));
        self.b.mov(ctx, Reg::Phys(R2));
        if scratch {
            self.enter_frame();
        } else {
            self.frame = ctx;
        }
        let stop = self.b.label();
        self.b.jump_imm(BPF_JGE, index, count as i32, stop);
        body(self, index, stop);
        self.b.mov_imm(Reg::Phys(R0), 0);
        self.b.exit();
        self.b.place(stop);
        self.b.place(self.exit_label);
        self.b.mov_imm(Reg::Phys(R0), 1);
        self.b.exit();
        let sub = self.leave_function(saved, &["index", "ctx"]);
        self.subprogs.push(sub);
        let func = self.subprogs.len() - 1;
        self.b.mov_imm(Reg::Phys(R1), u64::from(count));
        self.b.ld_func(Reg::Phys(R2), func);
        if scratch {
            self.b.mov_imm(Reg::Phys(R3), 0);
        } else {
            self.b.mov(Reg::Phys(R3), caller_frame);
        }
        self.b.mov_imm(Reg::Phys(R4), 0);
        self.b.call(Helper::Loop, 4);
    }

    /// A callback's temporaries: in its own stack frame, or with
    /// `Frame::Scratch` in the scratch frame after the caller's (which
    /// waits for it), the peak counting for both.
    fn enter_function(&mut self, shared: bool) -> FunctionState {
        let mut b = Builder::new();
        let exit_label = b.label();
        FunctionState {
            shared,
            b: std::mem::replace(&mut self.b, b),
            top: if shared { self.top } else { std::mem::take(&mut self.top) },
            peak: if shared { self.peak } else { std::mem::take(&mut self.peak) },
            peak_span: self.peak_span,
            exit_label: std::mem::replace(&mut self.exit_label, exit_label),
            loops: std::mem::take(&mut self.loops),
            ctx: self.ctx,
            vars: self.vars,
            frame: std::mem::replace(&mut self.frame, FP),
            slots_base: self.slots_base,
            stack_top: std::mem::take(&mut self.stack_top),
            stack_peak: std::mem::take(&mut self.stack_peak),
            in_callback: std::mem::replace(&mut self.in_callback, true),
        }
    }

    fn leave_function(&mut self, saved: FunctionState, params: &'static [&'static str]) -> Subprog {
        let insns = std::mem::replace(&mut self.b, saved.b).insns;
        let shared = saved.shared;
        let stack = if shared { self.stack_peak } else { self.peak };
        let sub = Subprog { insns, stack, span: self.peak_span, params };
        self.top = saved.top;
        if shared {
            // The scratch peak is the program's: keep the callback's.
            self.peak = self.peak.max(saved.peak);
        } else {
            self.peak = saved.peak;
            self.peak_span = saved.peak_span;
        }
        self.exit_label = saved.exit_label;
        self.loops = saved.loops;
        self.ctx = saved.ctx;
        self.vars = saved.vars;
        self.frame = saved.frame;
        self.slots_base = saved.slots_base;
        self.stack_top = saved.stack_top;
        self.stack_peak = saved.stack_peak;
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
