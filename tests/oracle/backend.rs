//! A checked program (`sema::ProgramDef` + `Manifest`) → native code through
//! cranelift: the second backend, written from bpftrace's semantics and not
//! from `codegen::lower`, so that where the two disagree one of them is wrong.
//!
//! It covers what needs no kernel: integers in registers as 64 bits, sign- or
//! zero-extended from their type's width (`types::Type::Int`), arithmetic,
//! comparisons, logic, ternaries, casts, variables, `if`/`while`/`for` over
//! ranges, `break`/`continue`/`return`, maps of integers (plain values and
//! `count`/`sum`/`min`/`max`/`avg`/`stats`, and `hist`/`lhist` buckets
//! computed here), string constants in records, printf records and `exit()`.
//! Maps live in the in-process `host::Host`, which the generated code calls.
//! Anything else is refused with `Unsupported`, never guessed.

use super::host::{self, Host};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I16, I32, I64, I8};
use cranelift_codegen::ir::{self, AbiParam, Block, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use rtrace::parser::ast::BinOp;
use rtrace::sema::manifest::{Manifest, MapValue};
use rtrace::sema::typed::*;
use rtrace::sema::ProgramDef;
use rtrace::types::Type;

/// What the oracle does not implement (the generator does not produce it).
#[derive(Debug)]
pub struct Unsupported(pub String);

/// One program compiled to native code, ready to run against a `Host`.
pub struct Native {
    // Owns the code `entry` points into.
    _module: JITModule,
    entry: extern "C" fn(*mut Host) -> i64,
}

impl Native {
    pub fn run(&self, host: &mut Host) {
        (self.entry)(host as *mut Host);
    }
}

/// Compiles `prog` (one probe of a checked program).
pub fn compile(prog: &ProgramDef, manifest: &Manifest) -> Result<Native, Unsupported> {
    let builder = JITBuilder::with_flags(&[("opt_level", "speed")], default_libcall_names())
        .map_err(|e| Unsupported(format!("no JIT for this machine: {}", e)))?;
    let mut module = JITModule::new(builder);
    let mut ctx = module.make_context();
    ctx.func.signature.params.push(AbiParam::new(I64));
    ctx.func.signature.returns.push(AbiParam::new(I64));
    let call_conv = ctx.func.signature.call_conv;
    let frontend_config = module.target_config();
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let host = b.block_params(entry)[0];
        let done = b.create_block();
        let mut vars = Vec::new();
        for v in &prog.vars {
            if !scalar(&v.ty) {
                return Err(Unsupported(format!("variable {} of type {}", v.name, v.ty)));
            }
            let var = b.declare_var(I64);
            let zero = b.ins().iconst(I64, 0);
            b.def_var(var, zero);
            vars.push(var);
        }
        let var_types = prog.vars.iter().map(|v| v.ty.clone()).collect();
        let mut l = Lower { b, manifest, vars, var_types, host, done, loops: Vec::new(), call_conv };
        l.block(&prog.body)?;
        l.jump_to(done);
        l.b.switch_to_block(done);
        let zero = l.b.ins().iconst(I64, 0);
        l.b.ins().return_(&[zero]);
        l.b.seal_all_blocks();
        l.b.finalize(frontend_config);
    }
    let id = module
        .declare_function(&prog.name, Linkage::Export, &ctx.func.signature)
        .map_err(|e| Unsupported(e.to_string()))?;
    module.define_function(id, &mut ctx).map_err(|e| Unsupported(format!("cranelift: {:?}", e)))?;
    module.clear_context(&mut ctx);
    module.finalize_definitions().map_err(|e| Unsupported(e.to_string()))?;
    let code = module.get_finalized_function(id);
    // SAFETY: the function was declared with exactly this signature.
    let entry = unsafe { std::mem::transmute::<*const u8, extern "C" fn(*mut Host) -> i64>(code) };
    Ok(Native { _module: module, entry })
}

/// Integers and booleans: what a variable or map value of the oracle holds.
fn scalar(ty: &Type) -> bool {
    matches!(ty, Type::Int { .. } | Type::Bool)
}

struct Lower<'a, 'b> {
    b: FunctionBuilder<'b>,
    manifest: &'a Manifest,
    vars: Vec<Variable>,
    var_types: Vec<Type>,
    host: ir::Value,
    /// Where the program ends (`return`, `exit()`).
    done: Block,
    /// Innermost last: (continue target, break target).
    loops: Vec<(Block, Block)>,
    call_conv: cranelift_codegen::isa::CallConv,
}

type Res<T> = Result<T, Unsupported>;

fn unsupported<T>(what: impl std::fmt::Debug) -> Res<T> {
    Err(Unsupported(format!("{:?}", what)))
}

impl Lower<'_, '_> {
    /// Ends the current block with a jump, and goes on in a fresh block that
    /// nothing reaches (what follows `break` is dead code).
    fn jump_to(&mut self, target: Block) {
        self.b.ins().jump(target, &[]);
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
    }

    fn block(&mut self, stmts: &[TStmt]) -> Res<()> {
        for s in stmts {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &TStmt) -> Res<()> {
        match &s.kind {
            TStmtKind::Expr(e) => {
                let v = self.expr(e)?;
                // A `delete()` whose result is unused warns when it found
                // nothing (bpftrace v0.26's stdlib.md).
                if let TExprKind::MapDelete { .. } = e.kind {
                    let (warn, join) = (self.b.create_block(), self.b.create_block());
                    self.b.ins().brif(v, join, &[], warn, &[]);
                    self.b.switch_to_block(warn);
                    let at = self.b.ins().iconst(I64, i64::from(e.span.start));
                    self.call(host::delete_failed as *const () as usize, &[at], false);
                    self.b.ins().jump(join, &[]);
                    self.b.switch_to_block(join);
                }
            }
            TStmtKind::SetVar { var, value } => {
                let v = self.expr(value)?;
                let v = self.as_var_holds(*var, v);
                self.b.def_var(self.vars[*var], v);
            }
            TStmtKind::ZeroVar { var } => {
                let zero = self.b.ins().iconst(I64, 0);
                self.b.def_var(self.vars[*var], zero);
            }
            TStmtKind::SetMap { map, keys, value } => {
                let MapValue::Plain(ty) = &self.manifest.maps[*map].value else { return unsupported(s) };
                if !scalar(ty) {
                    return unsupported(ty);
                }
                // bpftrace v0.26.1 evaluates the value, then the key (its
                // CodegenLLVM::visit(AssignMapStatement)); aggregations the
                // key first (visit(Call)).
                let v = self.expr(value)?;
                let key = self.key(*map, keys)?;
                let m = self.b.ins().iconst(I64, *map as i64);
                self.call(host::map_write as *const () as usize, &[m, key, v], false);
            }
            TStmtKind::Aggregate { map, keys, update } => self.aggregate(*map, keys, update)?,
            TStmtKind::Emit { action, args } => self.emit(*action, args)?,
            TStmtKind::Exit { action: _, code } => {
                let c = match code {
                    Some(e) => self.expr(e)?,
                    None => self.b.ins().iconst(I64, 0),
                };
                let has = self.b.ins().iconst(I64, code.is_some() as i64);
                self.call(host::exit as *const () as usize, &[c, has], false);
                self.jump_to(self.done);
            }
            TStmtKind::If { cond, then, els } => {
                let (t, e, join) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
                let c = self.expr(cond)?;
                self.b.ins().brif(c, t, &[], e, &[]);
                self.b.switch_to_block(t);
                self.block(then)?;
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(e);
                self.block(els)?;
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(join);
            }
            TStmtKind::While { cond, body } => {
                let (head, body_l, exit) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
                self.b.ins().jump(head, &[]);
                self.b.switch_to_block(head);
                let c = self.expr(cond)?;
                self.b.ins().brif(c, body_l, &[], exit, &[]);
                self.b.switch_to_block(body_l);
                self.loops.push((head, exit));
                self.block(body)?;
                self.loops.pop();
                self.b.ins().jump(head, &[]);
                self.b.switch_to_block(exit);
            }
            TStmtKind::ForRange { var, start, end, base: _, body } => {
                // `$i` takes start, start + 1, ..., end - 1, whatever the
                // body does to it; start and end are evaluated once.
                let signed = start.ty.is_signed() || end.ty.is_signed();
                let first = self.expr(start)?;
                let last = self.expr(end)?;
                let counter = self.b.declare_var(I64);
                self.b.def_var(counter, first);
                let (head, body_l, next, exit) =
                    (self.b.create_block(), self.b.create_block(), self.b.create_block(), self.b.create_block());
                self.b.ins().jump(head, &[]);
                self.b.switch_to_block(head);
                let i = self.b.use_var(counter);
                let cc = if signed { IntCC::SignedLessThan } else { IntCC::UnsignedLessThan };
                let more = self.b.ins().icmp(cc, i, last);
                self.b.ins().brif(more, body_l, &[], exit, &[]);
                self.b.switch_to_block(body_l);
                let i = self.b.use_var(counter);
                self.b.def_var(self.vars[*var], i);
                self.loops.push((next, exit));
                self.block(body)?;
                self.loops.pop();
                self.b.ins().jump(next, &[]);
                self.b.switch_to_block(next);
                let i = self.b.use_var(counter);
                let i = self.b.ins().iadd_imm_s(i, 1);
                self.b.def_var(counter, i);
                self.b.ins().jump(head, &[]);
                self.b.switch_to_block(exit);
            }
            TStmtKind::Break => {
                let Some(&(_, exit)) = self.loops.last() else { return unsupported(s) };
                self.jump_to(exit);
            }
            TStmtKind::Continue => {
                let Some(&(next, _)) = self.loops.last() else { return unsupported(s) };
                self.jump_to(next);
            }
            TStmtKind::Return => self.jump_to(self.done),
            TStmtKind::Debugf { .. } | TStmtKind::ForMap { .. } => return unsupported(s),
        }
        Ok(())
    }

    /// Calls a host function `f(host, args...)`; its result when `ret`.
    fn call(&mut self, f: usize, args: &[ir::Value], ret: bool) -> Option<ir::Value> {
        let mut sig = ir::Signature::new(self.call_conv);
        sig.params.push(AbiParam::new(I64));
        for _ in args {
            sig.params.push(AbiParam::new(I64));
        }
        if ret {
            sig.returns.push(AbiParam::new(I64));
        }
        let sig = self.b.import_signature(sig);
        let callee = self.b.ins().iconst(I64, f as i64);
        let mut all = vec![self.host];
        all.extend_from_slice(args);
        let call = self.b.ins().call_indirect(sig, callee, &all);
        ret.then(|| self.b.inst_results(call)[0])
    }

    /// A zeroed stack buffer of `size` bytes; its address.
    fn buffer(&mut self, size: u32) -> ir::Value {
        let size = size.max(8).div_ceil(8) * 8;
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, size, 3));
        let zero = self.b.ins().iconst(I64, 0);
        for off in (0..size).step_by(8) {
            self.b.ins().stack_store(I64, zero, slot, off as i32);
        }
        self.b.ins().stack_addr(I64, slot, 0)
    }

    /// Stores value `e` of type `ty` at `addr + off` as the contract lays
    /// it out (integers and booleans in 8 bytes; strings NUL-padded).
    fn store_value(&mut self, e: &TExpr, addr: ir::Value, off: u32) -> Res<()> {
        match (&e.ty, &e.kind) {
            (Type::Str { size }, TExprKind::Str(bytes)) => {
                for (i, byte) in bytes.iter().take(*size as usize - 1).enumerate() {
                    let v = self.b.ins().iconst(I8, i64::from(*byte));
                    self.b.ins().store(MemFlagsData::trusted(), v, addr, (off as usize + i) as i32);
                }
            }
            (t, _) if scalar(t) => {
                let v = self.expr(e)?;
                self.b.ins().store(MemFlagsData::trusted(), v, addr, off as i32);
            }
            _ => return unsupported(&e.ty),
        }
        Ok(())
    }

    /// The key of map `map` for `keys`, in a stack buffer: its address.
    fn key(&mut self, map: usize, keys: &[TExpr]) -> Res<ir::Value> {
        let layout = self.manifest.maps[map].key_layout();
        let addr = self.buffer(layout.size);
        for (k, off) in keys.iter().zip(&layout.offsets) {
            self.store_value(k, addr, *off)?;
        }
        Ok(addr)
    }

    fn emit(&mut self, action: usize, args: &[TExpr]) -> Res<()> {
        let layout = self.manifest.actions[action].record();
        let addr = self.buffer(layout.size);
        let id = self.b.ins().iconst(I64, action as i64);
        self.b.ins().store(MemFlagsData::trusted(), id, addr, 0);
        for (a, off) in args.iter().zip(&layout.offsets) {
            self.store_value(a, addr, *off)?;
        }
        let len = self.b.ins().iconst(I64, i64::from(layout.size));
        self.call(host::emit as *const () as usize, &[addr, len], false);
        Ok(())
    }

    fn aggregate(&mut self, map: usize, keys: &[TExpr], update: &AggUpdate) -> Res<()> {
        let key = self.key(map, keys)?;
        let m = self.b.ins().iconst(I64, map as i64);
        let (kind, value) = match update {
            AggUpdate::Count => (host::AGG_COUNT, self.b.ins().iconst(I64, 1)),
            AggUpdate::Sum(v) => (host::AGG_SUM, self.expr(v)?),
            AggUpdate::Min(v) => (host::AGG_MIN, self.expr(v)?),
            AggUpdate::Max(v) => (host::AGG_MAX, self.expr(v)?),
            AggUpdate::Avg(v) | AggUpdate::Stats(v) => (host::AGG_AVG, self.expr(v)?),
            AggUpdate::Hist(v) => {
                let v = self.expr(v)?;
                let bucket = self.log2_bucket(v);
                (host::AGG_BUCKET, bucket)
            }
            AggUpdate::Lhist { value, min, max, step } => {
                let v = self.expr(value)?;
                let bucket = self.linear_bucket(v, *min, *max, *step);
                (host::AGG_BUCKET, bucket)
            }
            AggUpdate::TSeries { .. } => return unsupported(update),
        };
        let k = self.b.ins().iconst(I64, kind);
        self.call(host::aggregate as *const () as usize, &[m, key, k, value], false);
        Ok(())
    }

    /// `hist()`'s bucket of signed `v`: 0 when negative, 1 for zero, else
    /// 2 + floor(log2 v).
    fn log2_bucket(&mut self, v: ir::Value) -> ir::Value {
        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, v, 0);
        let zero = self.b.ins().icmp_imm_s(IntCC::Equal, v, 0);
        let clz = self.b.ins().clz(v);
        // floor(log2 v) = 63 - clz(v) for v > 0.
        let sixty_five = self.b.ins().iconst(I64, 65);
        let positive = self.b.ins().isub(sixty_five, clz);
        let one = self.b.ins().iconst(I64, 1);
        let nonneg = self.b.ins().select(zero, one, positive);
        let z = self.b.ins().iconst(I64, 0);
        self.b.ins().select(neg, z, nonneg)
    }

    /// `lhist()`'s bucket of signed `v`: 0 below `min`, the last one
    /// (buckets + 1) from `max` on, else 1 + (v - min) / step.
    fn linear_bucket(&mut self, v: ir::Value, min: i64, max: i64, step: i64) -> ir::Value {
        let buckets = (max - min) / step;
        let below = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, v, min);
        let above = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, v, max);
        let off = self.b.ins().iadd_imm_s(v, min.wrapping_neg());
        let step_v = self.b.ins().iconst(I64, step);
        // Not reached with `below` or `above` set, but computed anyway:
        // keep the divisor from seeing garbage (off >= 0 when used).
        let q = self.b.ins().udiv(off, step_v);
        let inside = self.b.ins().iadd_imm_s(q, 1);
        let last = self.b.ins().iconst(I64, buckets + 1);
        let z = self.b.ins().iconst(I64, 0);
        let upper = self.b.ins().select(above, last, inside);
        self.b.ins().select(below, z, upper)
    }

    /// `v` cut to `bytes` and sign- or zero-extended back to 64 bits.
    fn fit(&mut self, v: ir::Value, bytes: u8, signed: bool) -> ir::Value {
        let narrow = match bytes {
            1 => I8,
            2 => I16,
            4 => I32,
            _ => return v,
        };
        let n = self.b.ins().ireduce(narrow, v);
        if signed {
            self.b.ins().sextend(I64, n)
        } else {
            self.b.ins().uextend(I64, n)
        }
    }

    /// `v` as variable `var` holds it: cut to its integer type's width.
    fn as_var_holds(&mut self, var: usize, v: ir::Value) -> ir::Value {
        match self.var_types[var] {
            Type::Int { bytes, signed } => self.fit(v, bytes, signed),
            _ => v,
        }
    }

    /// A boolean (i8 flag) as the 64-bit 0 or 1 the language sees.
    fn bool64(&mut self, flag: ir::Value) -> ir::Value {
        self.b.ins().uextend(I64, flag)
    }

    fn expr(&mut self, e: &TExpr) -> Res<ir::Value> {
        Ok(match &e.kind {
            TExprKind::Int(v) => self.b.ins().iconst(I64, *v as i64),
            TExprKind::Var(id) => self.b.use_var(self.vars[*id]),
            TExprKind::Retype(inner) => self.expr(inner)?,
            TExprKind::IntCast(inner) => {
                let v = self.expr(inner)?;
                match &e.ty {
                    Type::Int { bytes, signed } => self.fit(v, *bytes, *signed),
                    Type::Bool => {
                        let f = self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0);
                        self.bool64(f)
                    }
                    _ => return unsupported(e),
                }
            }
            TExprKind::Unary { op, expr } => {
                let v = self.expr(expr)?;
                match op {
                    UnaryOp::Neg => self.b.ins().ineg(v),
                    UnaryOp::BitNot => self.b.ins().bnot(v),
                    UnaryOp::Not => {
                        let f = self.b.ins().icmp_imm_s(IntCC::Equal, v, 0);
                        self.bool64(f)
                    }
                }
            }
            TExprKind::Binary { op, lhs, rhs, signed } => self.binary(*op, lhs, rhs, *signed, e.span.start)?,
            TExprKind::Logical { and, lhs, rhs } => {
                // Short-circuit: `rhs` runs only when `lhs` does not decide.
                let (more, join) = (self.b.create_block(), self.b.create_block());
                let result = self.b.append_block_param(join, I64);
                let l = self.expr(lhs)?;
                let decided = self.b.ins().iconst(I64, if *and { 0 } else { 1 });
                if *and {
                    self.b.ins().brif(l, more, &[], join, &[decided.into()]);
                } else {
                    self.b.ins().brif(l, join, &[decided.into()], more, &[]);
                }
                self.b.switch_to_block(more);
                let r = self.expr(rhs)?;
                let f = self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
                let r = self.bool64(f);
                self.b.ins().jump(join, &[r.into()]);
                self.b.switch_to_block(join);
                result
            }
            TExprKind::Ternary { cond, then, els } => {
                if !scalar(&e.ty) {
                    return unsupported(&e.ty);
                }
                let (t, f, join) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
                let result = self.b.append_block_param(join, I64);
                let c = self.expr(cond)?;
                self.b.ins().brif(c, t, &[], f, &[]);
                self.b.switch_to_block(t);
                let v = self.expr(then)?;
                self.b.ins().jump(join, &[v.into()]);
                self.b.switch_to_block(f);
                let v = self.expr(els)?;
                self.b.ins().jump(join, &[v.into()]);
                self.b.switch_to_block(join);
                result
            }
            TExprKind::Update { place, delta, prefix } => {
                // The key is evaluated once, for the read and the write.
                let (old, key) = match place {
                    Place::Var(id) => (self.b.use_var(self.vars[*id]), None),
                    Place::Map { map, keys } => {
                        let key = self.key(*map, keys)?;
                        let m = self.b.ins().iconst(I64, *map as i64);
                        (self.call(host::map_read as *const () as usize, &[m, key], true).unwrap(), Some(key))
                    }
                };
                let new = self.b.ins().iadd_imm_s(old, *delta);
                match place {
                    // A variable keeps its type's width: `(uint8)255` plus one is 0.
                    Place::Var(id) => {
                        let new = self.as_var_holds(*id, new);
                        self.b.def_var(self.vars[*id], new);
                        if *prefix {
                            new
                        } else {
                            old
                        }
                    }
                    Place::Map { map, .. } => {
                        let m = self.b.ins().iconst(I64, *map as i64);
                        self.call(host::map_write as *const () as usize, &[m, key.unwrap(), new], false);
                        if *prefix {
                            new
                        } else {
                            old
                        }
                    }
                }
            }
            TExprKind::MapRead { map, keys } => {
                let MapValue::Plain(ty) = &self.manifest.maps[*map].value else { return unsupported(e) };
                if !scalar(ty) {
                    return unsupported(ty);
                }
                let key = self.key(*map, keys)?;
                let m = self.b.ins().iconst(I64, *map as i64);
                self.call(host::map_read as *const () as usize, &[m, key], true).unwrap()
            }
            TExprKind::AggRead { map, keys } => {
                let key = self.key(*map, keys)?;
                let m = self.b.ins().iconst(I64, *map as i64);
                self.call(host::agg_read as *const () as usize, &[m, key], true).unwrap()
            }
            TExprKind::MapHas { map, keys } => {
                let key = self.key(*map, keys)?;
                let m = self.b.ins().iconst(I64, *map as i64);
                self.call(host::map_has as *const () as usize, &[m, key], true).unwrap()
            }
            TExprKind::MapDelete { map, keys } => {
                let key = self.key(*map, keys)?;
                let m = self.b.ins().iconst(I64, *map as i64);
                self.call(host::map_delete as *const () as usize, &[m, key], true).unwrap()
            }
            _ => return unsupported(e),
        })
    }

    fn binary(&mut self, op: BinOp, lhs: &TExpr, rhs: &TExpr, signed: bool, at: u32) -> Res<ir::Value> {
        let l = self.expr(lhs)?;
        let r = self.expr(rhs)?;
        if matches!(op, BinOp::Div | BinOp::Mod) {
            // v0.26: a zero divisor warns at run time (and gives 1, below).
            let (warn, join) = (self.b.create_block(), self.b.create_block());
            self.b.ins().brif(r, join, &[], warn, &[]);
            self.b.switch_to_block(warn);
            let at = self.b.ins().iconst(I64, i64::from(at));
            self.call(host::divide_by_zero as *const () as usize, &[at], false);
            self.b.ins().jump(join, &[]);
            self.b.switch_to_block(join);
        }
        let ins = self.b.ins();
        Ok(match op {
            BinOp::Add => ins.iadd(l, r),
            BinOp::Sub => ins.isub(l, r),
            BinOp::Mul => ins.imul(l, r),
            // bpftrace divides the 64-bit values as unsigned numbers, signed
            // or not (0.17 and eBPF's `div`); a zero divisor gives 1 (v0.26).
            BinOp::Div | BinOp::Mod => {
                let zero = ins.icmp_imm_s(IntCC::Equal, r, 0);
                let one = self.b.ins().iconst(I64, 1);
                let safe = self.b.ins().select(zero, one, r);
                let q = if op == BinOp::Div { self.b.ins().udiv(l, safe) } else { self.b.ins().urem(l, safe) };
                self.b.ins().select(zero, one, q)
            }
            // Shift counts are taken modulo 64, as eBPF's and cranelift's are.
            BinOp::Shl => ins.ishl(l, r),
            BinOp::Shr if signed => ins.sshr(l, r),
            BinOp::Shr => ins.ushr(l, r),
            BinOp::BitAnd => ins.band(l, r),
            BinOp::BitOr => ins.bor(l, r),
            BinOp::BitXor => ins.bxor(l, r),
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let cc = match (op, signed) {
                    (BinOp::Eq, _) => IntCC::Equal,
                    (BinOp::Ne, _) => IntCC::NotEqual,
                    (BinOp::Lt, true) => IntCC::SignedLessThan,
                    (BinOp::Lt, false) => IntCC::UnsignedLessThan,
                    (BinOp::Le, true) => IntCC::SignedLessThanOrEqual,
                    (BinOp::Le, false) => IntCC::UnsignedLessThanOrEqual,
                    (BinOp::Gt, true) => IntCC::SignedGreaterThan,
                    (BinOp::Gt, false) => IntCC::UnsignedGreaterThan,
                    (BinOp::Ge, true) => IntCC::SignedGreaterThanOrEqual,
                    (_, _) => IntCC::UnsignedGreaterThanOrEqual,
                };
                let f = ins.icmp(cc, l, r);
                self.bool64(f)
            }
            BinOp::And | BinOp::Or => return unsupported(op),
        })
    }
}
