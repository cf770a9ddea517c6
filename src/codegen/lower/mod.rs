//! Checked program → virtual-register IR, one program at a time.
//!
//! Scalars (integers, pointers) are evaluated into fresh virtual registers;
//! strings and tuples are written straight into their destination (a stack
//! slot, a map key, an output record). Variables live in fixed stack slots;
//! temporaries are allocated per statement and reused by the next one.

mod cond;
mod loops;
mod maps;
mod mem;
mod scalar;
mod stacks;
mod strings;

pub use stacks::stack_map_sizes;

use super::insn::*;
use super::ir::{Builder, Label, Reg, FP};
use crate::contract::{Counters, HELPER_ERROR_ID, HELPER_ERROR_SITE, HELPER_ERROR_SIZE, HELPER_ERROR_VALUE};
use crate::sema::manifest::Manifest;
use crate::sema::typed::*;
use crate::sema::ProgramDef;
use crate::span::Span;
use crate::types::Type;

/// Where the object's maps are: user maps come first (index = `MapId`).
#[derive(Clone, Copy, Debug)]
pub struct MapIndices {
    /// The ring buffer every output record goes through.
    pub events: usize,
    /// Its size in bytes, which bounds the size of one record.
    pub events_bytes: u32,
    /// The per-CPU buffer stacks are collected into.
    pub stack_scratch: usize,
    /// The first stack map (one per size, `stack_map_sizes`).
    pub stacks: usize,
    /// The processes whose first user stack was announced.
    pub seen_pids: Option<usize>,
    /// The per-CPU frames of `Frame::Scratch` programs (an array indexed by
    /// CPU; the map exists only when some program needs it).
    pub frame_scratch: usize,
}

/// Stack use is counted up to here, far past `MAX_STACK`: enough to report
/// the need of any program, small enough for `i32` offsets.
const STACK_COUNT_LIMIT: u32 = 1 << 30;

/// Options that change the generated code.
#[derive(Clone, Debug, Default)]
pub struct LowerOptions {
    /// Only run probes for this process (`-p PID`) where the kernel cannot filter.
    pub pid_filter: Option<u32>,
    /// `-k`: report failed map updates; `-kk`: failed memory reads too.
    pub helper_checks: u8,
    /// Maps the `.bss` counters are laid out for; `None`: the program's own.
    /// The REPL fixes it so that every object it loads shares one `.bss`.
    pub map_slots: Option<usize>,
}

/// Where a program keeps its variables and temporaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Frame {
    /// On the eBPF stack (512 bytes), below r10.
    #[default]
    Stack,
    /// In this CPU's entry of the scratch map (`MapIndices::frame_scratch`),
    /// `size` bytes below the entry's end: for programs whose strings do not
    /// fit the stack (bpftrace's pre-allocated memory, `on_stack_limit`).
    /// Only what must stay on the stack stays there: the lookup's key, the
    /// loops' saved context pointer (the verifier tracks a pointer's type
    /// only in a stack slot) and the register allocator's spills.
    Scratch { size: u32 },
}

/// A place that reports at run time: a helper call `-k`/`-kk` reports the
/// failures of, or a check bpftrace v0.26 makes in every program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelperSite {
    pub kind: SiteKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiteKind {
    /// The helper failed (its negative return value comes with the record).
    Helper(Helper),
    /// `x / 0` or `x % 0`: the result is 1.
    DivideByZero,
    /// An index past the end of an array.
    ArrayOutOfBounds,
}

impl SiteKind {
    /// bpftrace v0.26's words for a runtime error (helpers: their name).
    pub fn message(self) -> &'static str {
        match self {
            SiteKind::Helper(h) => h.name(),
            SiteKind::DivideByZero => {
                "Divide or modulo by 0 detected. This can lead to unexpected results. 1 is being used as the result."
            }
            SiteKind::ArrayOutOfBounds => "Array access out of bounds. This can lead to unexpected results.",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LowerError {
    #[error("this needs {needed} bytes of stack, more than the {MAX_STACK} eBPF allows")]
    StackTooLarge { needed: u32, span: Span },
    #[error("this output record needs {needed} bytes, more than the {limit} the ring buffer can take")]
    RecordTooLarge { needed: u32, limit: u32, span: Span },
}

/// Where the things a program numbers across the object start: its first
/// checked helper call's site number, and the end of `.rodata` so far (its
/// own tables go after it).
#[derive(Clone, Copy, Debug)]
pub struct Start {
    pub helper_site: usize,
    pub rodata: u32,
}

pub struct Lowered {
    pub insns: Vec<super::ir::VInsn>,
    /// The callbacks of the program's `for` loops (`VInsn::LdFunc` indices).
    pub subprogs: Vec<Subprog>,
    /// Checked helper calls, numbered from `Start::helper_site`.
    pub sites: Vec<HelperSite>,
    /// True when the program reads `.rodata` (elapsed, cpid).
    pub uses_rodata: bool,
    /// The program's tables, to place in `.rodata` at `Start::rodata`.
    pub rodata: Vec<u8>,
    /// Peak stack use in bytes.
    pub stack: u32,
    /// Peak use of the scratch frame (`Frame::Scratch`), callbacks included.
    pub scratch: u32,
}

/// A callback function of a program (a `for` loop's body).
#[derive(Clone, Debug)]
pub struct Subprog {
    pub insns: Vec<super::ir::VInsn>,
    /// Peak stack use of its own frame.
    pub stack: u32,
    /// Where that peak is reached.
    pub span: Span,
    /// The names of its parameters.
    pub params: &'static [&'static str],
}

/// Lowers one program.
pub fn lower(
    prog: &ProgramDef,
    manifest: &Manifest,
    maps: MapIndices,
    opts: &LowerOptions,
    start: Start,
    frame: Frame,
) -> Result<Lowered, LowerError> {
    let mut l = Lowerer {
        b: Builder::new(),
        manifest,
        maps,
        prog,
        ctx: Reg::Phys(R1),
        var_slots: Vec::new(),
        top: 0,
        peak: 0,
        peak_span: prog.span,
        stmt_span: prog.span,
        exit_label: Label(0),
        loops: Vec::new(),
        uses_rodata: false,
        helper_checks: opts.helper_checks,
        counters: Counters { map_slots: opts.map_slots.unwrap_or(manifest.maps.len()) },
        start,
        sites: Vec::new(),
        tables: Vec::new(),
        rodata: Vec::new(),
        read_span: prog.span,
        error: None,
        vars: FP,
        frame: FP,
        slots_base: FP,
        scratch: frame,
        stack_top: 0,
        stack_peak: 0,
        in_callback: false,
        subprogs: Vec::new(),
        loop_slots: None,
    };
    l.exit_label = l.b.label();
    l.b.loc(prog.span);
    l.ctx = l.b.vreg();
    l.b.mov(l.ctx, Reg::Phys(R1));
    l.enter_frame();
    l.allocate_vars();
    if loops::has_loops(&prog.body) {
        l.loop_slots();
    }
    if let (Some(pid), true) = (opts.pid_filter, needs_pid_filter(prog)) {
        l.pid_filter(pid);
    }
    l.block(&prog.body);
    l.b.place(l.exit_label);
    l.b.mov_imm(Reg::Phys(R0), 0);
    l.b.exit();
    if let Some(e) = l.error {
        return Err(e);
    }
    let (stack, scratch) = match frame {
        Frame::Stack => (l.peak, 0),
        Frame::Scratch { .. } => (l.stack_peak, l.peak),
    };
    if stack > MAX_STACK {
        return Err(LowerError::StackTooLarge { needed: stack, span: l.peak_span });
    }
    if let Some(sub) = l.subprogs.iter().find(|s| s.stack > MAX_STACK) {
        return Err(LowerError::StackTooLarge { needed: sub.stack, span: sub.span });
    }
    Ok(Lowered {
        insns: l.b.insns,
        subprogs: l.subprogs,
        sites: l.sites,
        uses_rodata: l.uses_rodata,
        rodata: l.rodata,
        stack,
        scratch,
    })
}

/// BEGIN and END run in rtrace itself; uprobes are filtered by the kernel;
/// an interval fires in whatever process its CPU runs.
fn needs_pid_filter(prog: &ProgramDef) -> bool {
    use crate::sema::ProgKind::*;
    prog.in_process && !matches!(prog.kind, Begin | End | Uprobe | Uretprobe | ReturnUprobe)
}

pub(super) struct Lowerer<'a> {
    pub b: Builder,
    pub manifest: &'a Manifest,
    pub maps: MapIndices,
    pub prog: &'a ProgramDef,
    /// The context pointer (r1 on entry), kept for the whole program.
    pub ctx: Reg,
    /// Stack offset (from r10) of every variable.
    pub var_slots: Vec<i32>,
    /// Bytes of stack in use (variables + live temporaries).
    pub top: u32,
    pub peak: u32,
    pub peak_span: Span,
    pub stmt_span: Span,
    pub exit_label: Label,
    /// (continue, break) targets of the enclosing loops.
    pub loops: Vec<(Label, Label)>,
    pub uses_rodata: bool,
    pub helper_checks: u8,
    /// Where the `.bss` counters are (laid out for `LowerOptions::map_slots`).
    pub counters: Counters,
    pub start: Start,
    pub sites: Vec<HelperSite>,
    /// Name tables already placed in `rodata`: names, offset in `.rodata`.
    pub tables: Vec<(Vec<Vec<u8>>, u32)>,
    /// This program's part of `.rodata` (after `start.rodata`).
    pub rodata: Vec<u8>,
    /// The expression whose memory read is being generated (for `-kk`).
    pub read_span: Span,
    /// The first error other than the stack size (which is known at the end).
    pub error: Option<LowerError>,
    /// Where the variables are: r10 in the probe program, the probe
    /// frame's address in a loop's callback; the scratch frame (`frame`)
    /// in both with `Frame::Scratch`.
    pub vars: Reg,
    /// Where temporaries (`alloc`) are: r10, or the scratch frame's end.
    pub frame: Reg,
    /// Where the loops' shared slots are (always on the probe's stack):
    /// r10 in the probe program, its context argument in a callback.
    pub slots_base: Reg,
    pub scratch: Frame,
    /// With `Frame::Scratch`: the bytes of this function's own stack in use
    /// (`alloc_stack`), and their peak.
    pub stack_top: u32,
    pub stack_peak: u32,
    /// Generating a callback (a `for` loop body), not the probe program.
    pub in_callback: bool,
    pub subprogs: Vec<Subprog>,
    /// The probe frame's slots its loops share.
    pub loop_slots: Option<loops::LoopSlots>,
}

impl<'a> Lowerer<'a> {
    /// One stack region for the variables, laid out as their blocks nest:
    /// a block's variables come after those of the blocks around it, and
    /// sibling blocks (an `if`'s branches, consecutive loops) start at the
    /// same place, since their variables are never alive together (the
    /// checker refuses a read after a block has ended).
    fn allocate_vars(&mut self) {
        use std::collections::HashMap;
        // A block by its own number (its path's last; 0 for the probe's).
        let block = |path: &[u32]| path.last().copied().unwrap_or(0);
        let size = |ty: &crate::types::Type| ty.size().max(8).div_ceil(8) * 8;
        // Bytes of each block's own variables.
        let mut own: HashMap<u32, u32> = HashMap::new();
        for v in &self.prog.vars {
            *own.entry(block(&v.scope)).or_default() += size(&v.ty);
        }
        // Where a block's variables start: after its enclosing blocks'.
        let base =
            |path: &[u32]| -> u32 { (0..path.len()).map(|i| own.get(&block(&path[..i])).copied().unwrap_or(0)).sum() };
        let mut next: HashMap<u32, u32> = HashMap::new();
        let mut offsets = Vec::with_capacity(self.prog.vars.len());
        let mut total = 0;
        for v in &self.prog.vars {
            let at = next.entry(block(&v.scope)).or_insert_with(|| base(&v.scope));
            *at += size(&v.ty);
            // Downwards from the frame's top, the first variable highest.
            offsets.push(*at);
            total = total.max(*at);
        }
        let start = self.top as i32;
        self.alloc(total);
        self.var_slots = offsets.into_iter().map(|end| -(start + end as i32)).collect();
    }

    /// The base register and offset of variable `id`.
    pub fn var_at(&self, id: VarId) -> (Reg, i32) {
        (self.vars, self.var_slots[id])
    }

    /// With `Frame::Scratch`, at a function's start: `frame` is this CPU's
    /// scratch entry's end (exits when the lookup fails, which a CPU id
    /// below the possible CPUs never does), and the variables live there.
    pub fn enter_frame(&mut self) {
        let Frame::Scratch { size } = self.scratch else { return };
        let key = self.alloc_stack(8);
        self.b.call(Helper::GetSmpProcessorId, 0);
        self.b.store(BPF_W, FP, key, Reg::Phys(R0));
        self.b.ld_map(Reg::Phys(R1), self.maps.frame_scratch);
        self.address(Reg::Phys(R2), FP, key);
        self.b.call(Helper::MapLookupElem, 2);
        let frame = self.b.vreg();
        self.b.mov(frame, Reg::Phys(R0));
        self.b.jump_imm(BPF_JEQ, frame, 0, self.exit_label);
        self.b.alu_imm(BPF_ADD, frame, size as i32);
        self.frame = frame;
        self.vars = frame;
    }

    /// Reserves `size` bytes that must be on this function's own stack
    /// (below r10, 8-aligned); returns the r10 offset.
    pub fn alloc_stack(&mut self, size: u32) -> i32 {
        if self.scratch == Frame::Stack {
            return self.alloc(size);
        }
        self.stack_top += size.div_ceil(8) * 8;
        self.stack_peak = self.stack_peak.max(self.stack_top);
        -(self.stack_top as i32)
    }

    /// Reserves `size` bytes of stack (8-aligned); returns the r10 offset.
    /// Past `MAX_STACK` the program is refused once lowered (`peak`); until
    /// then the count stops at `STACK_COUNT_LIMIT` so offsets stay `i32`.
    pub fn alloc(&mut self, size: u32) -> i32 {
        self.top = self.top.saturating_add(size.div_ceil(8).saturating_mul(8)).min(STACK_COUNT_LIMIT);
        if self.top > self.peak {
            self.peak = self.top;
            self.peak_span = self.stmt_span;
        }
        -(self.top as i32)
    }

    fn pid_filter(&mut self, pid: u32) {
        self.b.call(Helper::GetCurrentPidTgid, 0);
        let tgid = self.b.vreg();
        self.b.mov(tgid, Reg::Phys(R0));
        self.b.alu_imm(BPF_RSH, tgid, 32);
        self.b.jump_imm(BPF_JNE, tgid, pid as i32, self.exit_label);
    }

    pub fn block(&mut self, stmts: &[TStmt]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &TStmt) {
        let mark = self.top;
        self.stmt_span = s.span;
        self.read_span = s.span;
        self.b.loc(s.span);
        match &s.kind {
            TStmtKind::Expr(TExpr { kind: TExprKind::MapDelete { map, keys }, .. }) => {
                self.map_delete(*map, keys, true);
            }
            TStmtKind::Expr(e) => self.effect(e),
            TStmtKind::SetVar { var, value } => {
                let (base, slot) = self.var_at(*var);
                self.store_value(value, base, slot, &self.prog.vars[*var].ty.clone());
            }
            TStmtKind::ZeroVar { var } => {
                let (base, slot) = self.var_at(*var);
                self.zero(base, slot, self.prog.vars[*var].ty.size().max(8));
            }
            TStmtKind::ForRange { var, start, end, base, body } => self.for_range(*var, start, end, *base, body),
            TStmtKind::ForMap { var, map, body } => self.for_map(*var, *map, body),
            TStmtKind::SetMap { map, keys, value } => self.map_set(*map, keys, value),
            TStmtKind::Aggregate { map, keys, update } => self.map_aggregate(*map, keys, update),
            TStmtKind::Emit { action, args } => self.emit_record(*action, args),
            TStmtKind::Debugf { format, args } => self.debugf(format, args),
            TStmtKind::Exit { action, code } => {
                self.count(Counters::EXIT);
                self.emit_record(*action, code.as_slice());
                self.b.jump(self.exit_label);
            }
            TStmtKind::If { cond, then, els } => {
                let else_label = self.b.label();
                self.branch(cond, else_label, false);
                self.top = mark;
                self.block(then);
                if els.is_empty() {
                    self.b.place(else_label);
                } else {
                    let end = self.b.label();
                    self.b.jump(end);
                    self.b.place(else_label);
                    self.block(els);
                    self.b.place(end);
                }
            }
            TStmtKind::While { cond, body } => {
                let head = self.b.label();
                let end = self.b.label();
                self.b.place(head);
                self.branch(cond, end, false);
                self.top = mark;
                self.loops.push((head, end));
                self.block(body);
                self.loops.pop();
                self.b.jump(head);
                self.b.place(end);
            }
            TStmtKind::Break => {
                let (_, end) = *self.loops.last().expect("checked: break inside a loop");
                self.b.jump(end);
            }
            TStmtKind::Continue => {
                let (head, _) = *self.loops.last().expect("checked: continue inside a loop");
                self.b.jump(head);
            }
            TStmtKind::Return => self.b.jump(self.exit_label),
        }
        self.top = mark;
    }

    /// After a call of `helper` whose failure `-k` (`level` 1) or `-kk`
    /// (`level` 2) reports: when r0 < 0, sends a helper-error record.
    pub fn check_helper(&mut self, helper: Helper, level: u8) {
        if self.helper_checks < level {
            return;
        }
        let ok = self.b.label();
        self.b.jump_imm(BPF_JSGE, Reg::Phys(R0), 0, ok);
        let ret = self.b.vreg();
        self.b.mov(ret, Reg::Phys(R0));
        // Reads point at the expression read, other helpers at the statement.
        let span = if level >= 2 { self.read_span } else { self.stmt_span };
        self.report_site(SiteKind::Helper(helper), span, Some(ret));
        self.b.place(ok);
    }

    /// Sends the record that reports `kind` at `span` (with a helper's
    /// return value).
    pub fn report_site(&mut self, kind: SiteKind, span: Span, value: Option<Reg>) {
        let site = self.start.helper_site + self.sites.len();
        self.sites.push(HelperSite { kind, span });
        self.send_record(HELPER_ERROR_SIZE, |l, rec| {
            l.b.store_imm(BPF_DW, rec, 0, HELPER_ERROR_ID as i64 as i32);
            l.b.store_imm(BPF_DW, rec, HELPER_ERROR_SITE as i32, site as i32);
            match value {
                Some(v) => l.b.store(BPF_DW, rec, HELPER_ERROR_VALUE as i32, v),
                None => l.b.store_imm(BPF_DW, rec, HELPER_ERROR_VALUE as i32, 0),
            }
        });
    }

    /// `bpf_trace_printk(fmt, size, args...)`: the format (with its NUL) on
    /// the stack; strings are passed by address (the kernel reads `%s` safely).
    fn debugf(&mut self, format: &[u8], args: &[TExpr]) {
        let mut values = Vec::new();
        for a in args {
            let r = if a.ty.in_register() {
                self.eval(a)
            } else {
                let (base, off) = self.memory_location(a);
                let r = self.b.vreg();
                self.address(r, base, off);
                r
            };
            values.push(r);
        }
        let size = format.len() as u32 + 1;
        let slot = self.alloc(size);
        self.write(
            &TExpr { kind: TExprKind::Str(format.to_vec()), ty: Type::Str { size }, span: self.stmt_span },
            self.frame,
            slot,
        );
        for (i, r) in values.iter().enumerate() {
            self.b.mov(Reg::Phys(R3 + i as u8), *r);
        }
        self.address(Reg::Phys(R1), self.frame, slot);
        self.b.mov_imm(Reg::Phys(R2), size as u64);
        self.b.call(Helper::TracePrintk, 2 + values.len() as u8);
    }

    /// Evaluates an expression for its side effects only.
    fn effect(&mut self, e: &TExpr) {
        if e.ty.in_register() {
            self.eval(e);
        } else if e.ty.size() > 0 {
            let slot = self.alloc(e.ty.size());
            self.write(e, self.frame, slot);
        }
    }
}
