//! Values that live in memory (strings, tuples): written straight into their
//! destination `base + off`, where `base` is r10 (a stack slot), a map value
//! or a ring buffer record.

use super::scalar::size_code;
use super::Lowerer;
use crate::codegen::insn::*;
use crate::codegen::ir::{Reg, Run};
use crate::sema::typed::*;
use crate::types::{c_size, tuple_layout, AddrSpace, Type};

impl<'a> Lowerer<'a> {
    /// Stores the value of `e` (any type) at `base + off` in the layout of `dest`.
    pub fn store_value(&mut self, e: &TExpr, base: Reg, off: i32, dest: &Type) {
        if e.ty.in_register() {
            let r = self.eval(e);
            self.b.store(BPF_DW, base, off, r);
        } else if let (TExprKind::Tuple(items), Type::Tuple(types)) = (&e.kind, dest) {
            // Each element straight into its place in the destination layout,
            // integers at their width there.
            let layout = tuple_layout(types);
            for ((item, ty), o) in items.iter().zip(types).zip(layout.offsets) {
                match ty.int_width() {
                    Some((bytes, _)) => {
                        let r = self.eval(item);
                        self.b.store(size_code(bytes), base, off + o as i32, r);
                    }
                    None => self.store_value(item, base, off + o as i32, ty),
                }
            }
        } else if let (TExprKind::Struct(values), Type::Record(to), Type::Record(from)) = (&e.kind, dest, &e.ty) {
            // A record stored where its fields are ordered or sized
            // differently: each value into its member of the same name.
            self.zero(base, off, to.size);
            for (m, v) in from.fields.iter().zip(values) {
                let Some(dm) = to.field(&m.name) else { continue };
                let at = off + dm.offset as i32;
                match dm.ty.int_width() {
                    Some((bytes, _)) => {
                        let r = self.eval(v);
                        self.b.store(size_code(bytes), base, at, r);
                    }
                    None => self.store_value(v, base, at, &dm.ty),
                }
            }
        } else if matches!(dest, Type::Tuple(_) | Type::Record(_)) && e.ty != *dest {
            let (src, soff) = self.memory_location(e);
            self.convert(base, off, dest, src, soff, &e.ty.clone());
        } else {
            // A smaller string in a larger slot: the rest must not keep stale bytes
            // (it is compared and hashed as a whole).
            if e.ty.size() < dest.size() {
                self.zero(base, off, dest.size());
            }
            self.write(e, base, off);
        }
    }

    /// Writes a value of any type at `base + off` (`e.ty.size()` bytes).
    pub fn write(&mut self, e: &TExpr, base: Reg, off: i32) {
        self.read_span = e.span;
        if e.ty.in_register() {
            let r = self.eval(e);
            self.b.store(BPF_DW, base, off, r);
            return;
        }
        match &e.kind {
            TExprKind::Str(bytes) => self.write_literal(bytes, base, off),
            TExprKind::SiteName(names) => self.site_name(names, base, off, e.ty.size()),
            TExprKind::Builtin(Builtin::Comm) => {
                self.address(Reg::Phys(R1), base, off);
                self.b.mov_imm(Reg::Phys(R2), 16);
                // The kernel NUL-terminates comm within its 16 bytes.
                self.b.call(Helper::GetCurrentComm, 2);
            }
            // A full char array has no NUL; readers stop at the type's size.
            TExprKind::CtxString { offset, size } => self.copy(base, off, self.ctx, i32::from(*offset), *size),
            TExprKind::DataLocString { offset } => {
                // The u32 holds (length << 16 | offset from the record start).
                let loc = self.b.vreg();
                self.b.load(BPF_W, loc, self.ctx, i32::from(*offset));
                self.b.alu_imm(BPF_AND, loc, 0xffff);
                let addr = self.b.vreg();
                self.b.mov(addr, self.ctx);
                self.b.alu_reg(BPF_ADD, addr, loc);
                let Type::Str { size } = e.ty else { unreachable!() };
                self.read_str(base, off, size, None, addr, AddrSpace::Kernel);
            }
            TExprKind::ReadStr { ptr, len, space } => {
                let p = self.eval(ptr);
                let len = len.as_ref().map(|l| self.eval(l));
                let Type::Str { size } = e.ty else { unreachable!() };
                self.read_str(base, off, size, len, p, *space);
            }
            TExprKind::Var(id) => {
                let size = e.ty.size();
                let (vars, slot) = self.var_at(*id);
                self.copy(base, off, vars, slot, size);
            }
            TExprKind::MapRead { map, keys } => self.map_read_into(*map, keys, base, off, e.ty.size()),
            TExprKind::Ternary { cond, then, els } => {
                let (else_l, end) = (self.b.label(), self.b.label());
                self.branch(cond, else_l, false);
                self.store_value(then, base, off, &e.ty);
                self.b.jump(end);
                self.b.place(else_l);
                self.store_value(els, base, off, &e.ty);
                self.b.place(end);
            }
            TExprKind::Tuple(_) => self.store_value(e, base, off, &e.ty),
            // An array from an integer's bytes, or from another array's.
            TExprKind::Reinterpret(inner) if inner.ty.in_register() => {
                let r = self.eval(inner);
                let bytes = c_size(&inner.ty) as u8;
                self.b.store(size_code(bytes), base, off, r);
            }
            TExprKind::Reinterpret(inner) => self.write(inner, base, off),
            TExprKind::Struct(values) => {
                let Type::Record(r) = &e.ty else { unreachable!("checked: a struct value is a record") };
                self.zero(base, off, r.size);
                for (m, v) in r.fields.iter().zip(values) {
                    let at = off + m.offset as i32;
                    match m.ty.int_width() {
                        // Members keep their C width.
                        Some((bytes, _)) => {
                            let r = self.eval(v);
                            self.b.store(size_code(bytes), base, at, r);
                        }
                        None => self.write(v, base, at),
                    }
                }
            }
            TExprKind::Bytes(bytes) => {
                for (i, b) in bytes.iter().enumerate() {
                    self.b.store_imm(BPF_B, base, off + i as i32, *b as i32);
                }
            }
            // A tracepoint array, read in place from the record.
            TExprKind::CtxLoad { offset, .. } => self.copy(base, off, self.ctx, i32::from(*offset), e.ty.size()),
            TExprKind::MakeBuffer { src, len, space } => {
                let Type::Buffer { size } = e.ty else { unreachable!() };
                self.make_buffer(src, len.as_deref(), *space, size, base, off)
            }
            TExprKind::MakeInet { af, addr } => {
                let family = self.eval(af);
                self.b.store(BPF_DW, base, off, family);
                self.zero(base, off + 8, 16);
                if addr.ty.in_register() {
                    // An IPv4 address in an integer is already in network order.
                    let a = self.eval(addr);
                    self.b.store(BPF_W, base, off + 8, a);
                } else {
                    self.write(addr, base, off + 8);
                }
            }
            TExprKind::MakeUsym(addr) => {
                let a = self.eval(addr);
                self.b.store(BPF_DW, base, off, a);
                self.b.call(Helper::GetCurrentPidTgid, 0);
                let pid = self.b.vreg();
                self.b.mov(pid, Reg::Phys(R0));
                self.b.alu_imm(BPF_RSH, pid, 32);
                self.b.store(BPF_DW, base, off + 8, pid);
            }
            TExprKind::JoinArgs { argv, space } => self.join_args(argv, *space, base, off),
            TExprKind::Stack(st) => self.capture_stack(st, base, off),
            TExprKind::ReadMem { ptr, space } => {
                let p = self.eval(ptr);
                self.probe_read(base, off, e.ty.size(), p, *space);
            }
            TExprKind::MakeMac(array) => {
                let (src, soff) = self.memory_location(array);
                self.copy(base, off, src, soff, 6);
            }
            TExprKind::TupleField { .. } => {
                let (src, soff) = self.memory_location(e);
                self.copy(base, off, src, soff, e.ty.size());
            }
            _ => unreachable!("checked: {:?} is not a memory value", e.kind),
        }
    }

    /// `probe`, `func` of a program with several attach points: entry
    /// `bpf_get_attach_cookie()` of a table of `size`-byte names in
    /// `.rodata`, copied to `base + off`.
    fn site_name(&mut self, names: &[Vec<u8>], base: Reg, off: i32, size: u32) {
        // Entries 8-aligned, so the copy's wide loads stay aligned.
        let stride = size.div_ceil(8) * 8;
        let table = self.name_table(names, stride);
        self.b.mov(Reg::Phys(R1), self.ctx);
        self.b.call(Helper::GetAttachCookie, 1);
        let index = self.b.vreg();
        self.b.mov(index, Reg::Phys(R0));
        // The verifier allows a variable offset into a map value only within
        // known bounds: an index past the table (no cookie set) reads entry 0.
        let inside = self.b.label();
        self.b.jump_imm(BPF_JLT, index, names.len() as i32, inside);
        self.b.mov_imm(index, 0);
        self.b.place(inside);
        self.b.alu_imm(BPF_MUL, index, stride as i32);
        let entry = self.b.vreg();
        self.uses_rodata = true;
        self.b.ld_rodata(entry, table);
        self.b.alu_reg(BPF_ADD, entry, index);
        self.copy(base, off, entry, 0, size);
    }

    /// The `.rodata` offset of a table of `names`, each NUL-padded to
    /// `stride` bytes: placed once per program.
    fn name_table(&mut self, names: &[Vec<u8>], stride: u32) -> u32 {
        if let Some((_, at)) = self.tables.iter().find(|(n, _)| n == names) {
            return *at;
        }
        let at = self.start.rodata + self.rodata.len() as u32;
        for name in names {
            let mut entry = name.clone();
            entry.resize(stride as usize, 0);
            self.rodata.extend_from_slice(&entry);
        }
        self.tables.push((names.to_vec(), at));
        at
    }

    /// `buf()`: the length byte, then the bytes (zero-padded to `size`).
    fn make_buffer(&mut self, src: &TExpr, len: Option<&TExpr>, space: AddrSpace, size: u32, base: Reg, off: i32) {
        self.zero(base, off, size + 1);
        if !src.ty.in_register() {
            // A string or an array: copy what there is (a constant length).
            let (sbase, soff) = self.memory_location(src);
            self.copy(base, off + 1, sbase, soff, src.ty.size().min(size));
            self.b.store_imm(BPF_B, base, off, size as i32);
            return;
        }
        let p = self.eval(src);
        let n = self.b.vreg();
        match len {
            Some(l) => {
                // A runtime length, capped at the buffer (the verifier needs the bound).
                let l = self.eval(l);
                self.b.mov(n, l);
                let ok = self.b.label();
                self.b.jump_imm(BPF_JLE, n, size as i32, ok);
                self.b.mov_imm(n, size as u64);
                self.b.place(ok);
            }
            None => self.b.mov_imm(n, size as u64),
        }
        self.b.store(BPF_B, base, off, n);
        self.b.mov(Reg::Phys(R3), p);
        self.b.mov(Reg::Phys(R2), n);
        self.address(Reg::Phys(R1), base, off + 1);
        let helper = if space == AddrSpace::User { Helper::ProbeReadUser } else { Helper::ProbeReadKernel };
        self.b.call(helper, 3);
        self.check_helper(helper, 2);
    }

    /// `join(argv)`: each argument string in its `JOIN_ARG_SIZE` slot, until
    /// a NULL pointer (the slot after the last one starts with a NUL).
    fn join_args(&mut self, argv: &TExpr, space: AddrSpace, base: Reg, off: i32) {
        use crate::sema::manifest::{JOIN_ARGS, JOIN_ARG_SIZE};
        let done = self.b.label();
        let array = self.eval(argv);
        let slot = self.alloc(8);
        for i in 0..JOIN_ARGS {
            let at = off + (i * JOIN_ARG_SIZE) as i32;
            self.b.store_imm(BPF_B, base, at, 0);
            let p = self.b.vreg();
            self.b.mov(p, array);
            self.b.alu_imm(BPF_ADD, p, 8 * i as i32);
            self.probe_read(self.frame, slot, 8, p, space);
            let s = self.b.vreg();
            self.b.load(BPF_DW, s, self.frame, slot);
            self.b.jump_imm(BPF_JEQ, s, 0, done);
            self.read_str(base, at, JOIN_ARG_SIZE, None, s, space);
        }
        self.b.place(done);
    }

    /// `dst = base + off`
    pub fn address(&mut self, dst: Reg, base: Reg, off: i32) {
        self.b.mov(dst, base);
        if off != 0 {
            self.b.alu_imm(BPF_ADD, dst, off);
        }
    }

    /// Copies a string of at most `size` bytes (or `len`, the NUL included,
    /// when given, capped at `size`) from `ptr`.
    fn read_str(&mut self, base: Reg, off: i32, size: u32, len: Option<Reg>, ptr: Reg, space: AddrSpace) {
        let helper = if space == AddrSpace::User { Helper::ProbeReadUserStr } else { Helper::ProbeReadKernelStr };
        match len {
            Some(n) => {
                // v0.26: `str(p, n)` reads at most n bytes, the NUL included
                // (n - 1 characters); capped at the string size for the
                // verifier. n = 0 reads nothing: the NUL stored first remains.
                self.b.store_imm(BPF_B, base, off, 0);
                let capped = self.b.label();
                self.b.jump_imm(BPF_JLE, n, size as i32, capped);
                self.b.mov_imm(n, size as u64);
                self.b.place(capped);
                self.b.mov(Reg::Phys(R2), n);
                self.b.mov(Reg::Phys(R3), ptr);
                self.address(Reg::Phys(R1), base, off);
                self.b.call(helper, 3);
                self.check_helper(helper, 2);
            }
            None => {
                self.b.mov(Reg::Phys(R3), ptr);
                self.b.mov_imm(Reg::Phys(R2), size as u64);
                self.address(Reg::Phys(R1), base, off);
                self.b.call(helper, 3);
                let copied = self.b.vreg();
                self.b.mov(copied, Reg::Phys(R0));
                self.check_helper(helper, 2);
                if size > 1024 {
                    return;
                }
                // A string that filled the buffer (R0 = size, the NUL
                // included) may go on: its next character is read in place
                // of the NUL and, when there is one, replaced by the 0xff
                // that marks a truncated string (printed with
                // `str_trunc_trailer`, as bpftrace does below 1024 bytes).
                let done = self.b.label();
                self.b.jump_imm(BPF_JNE, copied, size as i32, done);
                let last = self.b.vreg();
                self.b.mov(last, ptr);
                self.b.alu_imm(BPF_ADD, last, size as i32 - 1);
                let at = off + size as i32 - 1;
                self.probe_read(base, at, 1, last, space);
                let byte = self.b.vreg();
                self.b.load(BPF_B, byte, base, at);
                self.b.jump_imm(BPF_JEQ, byte, 0, done);
                self.b.store_imm(BPF_B, base, at, 0xff);
                self.b.place(done);
            }
        }
    }

    /// Writes literal bytes and a terminating NUL, up to 4 bytes per
    /// instruction (aligned: the stack and records need aligned stores).
    fn write_literal(&mut self, bytes: &[u8], base: Reg, off: i32) {
        let mut data = bytes.to_vec();
        data.push(0);
        let mut run = Run::new(base);
        let mut pos = 0;
        while pos < data.len() {
            let at = off + pos as i32;
            let chunk = chunk_for(at, (data.len() - pos) as u32).min(4) as usize;
            let mut v = 0u32;
            for (i, b) in data[pos..pos + chunk].iter().enumerate() {
                v |= (*b as u32) << (8 * i);
            }
            let (base, at) = self.b.run_at(&mut run, at);
            self.b.store_imm(size_code(chunk as u8), base, at, v as i32);
            pos += chunk;
        }
    }

    /// Zeroes `size` bytes at `base + off`.
    pub fn zero(&mut self, base: Reg, off: i32, size: u32) {
        let mut run = Run::new(base);
        let mut pos = 0u32;
        while pos < size {
            let at = off + pos as i32;
            let chunk = chunk_for(at, size - pos);
            let (base, at) = self.b.run_at(&mut run, at);
            self.b.store_imm(size_code(chunk as u8), base, at, 0);
            pos += chunk;
        }
    }

    /// Copies `size` bytes between memory the program can access directly,
    /// in the widest aligned loads and stores.
    /// Past `COPY_BY_HELPER` bytes, one `bpf_probe_read_kernel` instead:
    /// a long string copied inline would take more instructions than a
    /// jump around it can span.
    pub fn copy(&mut self, dst: Reg, doff: i32, src: Reg, soff: i32, size: u32) {
        if size > COPY_BY_HELPER {
            self.address(Reg::Phys(R3), src, soff);
            self.b.mov_imm(Reg::Phys(R2), u64::from(size));
            self.address(Reg::Phys(R1), dst, doff);
            self.b.call(Helper::ProbeReadKernel, 3);
            return;
        }
        let (mut from, mut to) = (Run::new(src), Run::new(dst));
        let mut pos = 0u32;
        while pos < size {
            let (s, d) = (soff + pos as i32, doff + pos as i32);
            let chunk = chunk_for(s, size - pos).min(chunk_for(d, size - pos));
            let r = self.b.vreg();
            let (src, s) = self.b.run_at(&mut from, s);
            self.b.load(size_code(chunk as u8), r, src, s);
            let (dst, d) = self.b.run_at(&mut to, d);
            self.b.store(size_code(chunk as u8), dst, d, r);
            pos += chunk;
        }
    }

    /// Where a memory value (string, tuple) can be read: its own slot for a
    /// variable (or a field of one), else a stack temporary it is written to.
    pub fn memory_location(&mut self, e: &TExpr) -> (Reg, i32) {
        match &e.kind {
            TExprKind::Var(id) => self.var_at(*id),
            TExprKind::TupleField { tuple, offset } => {
                let (base, off) = self.memory_location(tuple);
                (base, off + *offset as i32)
            }
            _ => {
                let slot = self.alloc(e.ty.size());
                self.write(e, self.frame, slot);
                (self.frame, slot)
            }
        }
    }

    /// Copies a value of type `from` at `src + soff` into the layout of type
    /// `to` at `dst + doff`: the types differ only in string sizes (a tuple
    /// stored where a wider one was stored before).
    fn convert(&mut self, dst: Reg, doff: i32, to: &Type, src: Reg, soff: i32, from: &Type) {
        match (to, from) {
            (Type::Tuple(dts), Type::Tuple(sts)) if to != from => {
                let (dl, sl) = (tuple_layout(dts), tuple_layout(sts));
                for (i, (dt, st)) in dts.iter().zip(sts).enumerate() {
                    self.convert(dst, doff + dl.offsets[i] as i32, dt, src, soff + sl.offsets[i] as i32, st);
                }
            }
            // Records: members by name.
            (Type::Record(d), Type::Record(s)) if to != from => {
                self.zero(dst, doff, d.size);
                for m in &s.fields {
                    let Some(dm) = d.field(&m.name) else { continue };
                    self.convert(dst, doff + dm.offset as i32, &dm.ty, src, soff + m.offset as i32, &m.ty);
                }
            }
            // A narrower integer (or a boolean) widened: read it at its
            // width, extended.
            (Type::Int { bytes: tb, .. }, from) if from.int_width().is_some_and(|(fb, _)| fb != *tb) => {
                let (fb, signed) = from.int_width().expect("matched");
                let r = self.b.vreg();
                self.b.load(size_code(fb), r, src, soff);
                self.extend(r, fb, signed);
                self.b.store(size_code(*tb), dst, doff, r);
            }
            _ => {
                let (from_size, to_size) = (c_size(from), c_size(to));
                if from_size < to_size {
                    self.zero(dst, doff, to_size);
                }
                self.copy(dst, doff, src, soff, from_size.min(to_size));
            }
        }
    }
}

/// Copies longer than this call a helper (`Lowerer::copy`).
const COPY_BY_HELPER: u32 = 1024;

/// The widest access (8, 4, 2, 1) that is naturally aligned at `at` and fits
/// in `left` bytes: stack and context accesses must be aligned.
fn chunk_for(at: i32, left: u32) -> u32 {
    [8u32, 4, 2, 1].into_iter().find(|&c| c <= left && at.rem_euclid(c as i32) == 0).unwrap_or(1)
}
