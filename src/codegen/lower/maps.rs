//! Map lookups and updates, aggregations, and output records in the ring buffer.

use super::{LowerError, Lowerer};
use crate::codegen::insn::*;
use crate::codegen::ir::{Label, Reg};
use crate::contract::{self, Counters, Rodata, StackValue};
use crate::parser::ast::BinOp;
use crate::sema::manifest::{MapValue, TsAgg};
use crate::sema::typed::*;
use crate::types::Type;

/// The largest record `bpf_ringbuf_reserve` grants in a ring buffer of
/// `bytes`: the record and its 8-byte header, rounded up to 8, must fit the
/// buffer, and no record may exceed `RINGBUF_MAX_RECORD_SZ` (UINT_MAX / 4).
/// Record offsets therefore stay far inside `i32`.
pub fn record_limit(bytes: u32) -> u32 {
    const HEADER: u32 = 8;
    const MAX_RECORD: u32 = u32::MAX / 4;
    (bytes & !7).saturating_sub(HEADER).min(MAX_RECORD)
}

/// `-EEXIST`: an insert with `BPF_NOEXIST` found the key there.
const EEXIST: i32 = -17;

impl<'a> Lowerer<'a> {
    /// Builds the key of `map` on the stack; returns its r10 offset.
    fn map_key(&mut self, map: MapId, keys: &[TExpr]) -> i32 {
        let info = &self.manifest.maps[map];
        let layout = info.key_layout();
        let slot = self.alloc(layout.size);
        if keys.is_empty() {
            self.b.store_imm(BPF_DW, self.frame, slot, 0);
            return slot;
        }
        let types = info.keys.clone();
        // Padding and the tail of short strings are hashed too: clear them,
        // unless every key fills its place and the places leave no gap.
        let has_gaps = types.iter().any(|t| !t.is_scalar())
            && !(keys.iter().zip(&types).all(|(k, t)| t.is_scalar() || fills(k, t))
                && contiguous(&layout.offsets, &types, layout.size));
        if has_gaps {
            self.zero(self.frame, slot, layout.size);
        }
        // Each key in the map's key type: a tuple key stored where a wider
        // one was stored before takes that layout (its strings longer).
        for ((k, o), ty) in keys.iter().zip(layout.offsets).zip(&types) {
            self.store_value(k, self.frame, slot + o as i32, ty);
        }
        slot
    }

    /// `r0 = bpf_map_lookup_elem(&map, key)`; returns r0 copied into a vreg.
    fn lookup(&mut self, map_index: usize, key_slot: i32) -> Reg {
        self.b.ld_map(Reg::Phys(R1), map_index);
        self.address(Reg::Phys(R2), self.frame, key_slot);
        self.b.call(Helper::MapLookupElem, 2);
        let p = self.b.vreg();
        self.b.mov(p, Reg::Phys(R0));
        p
    }

    /// `bpf_map_update_elem(&map, key, value, BPF_ANY)`, counting failures
    /// (a full map) for the runtime to report.
    fn update_elem(&mut self, map: MapId, key_slot: i32, value_slot: i32) {
        let ok = self.b.label();
        if self.manifest.maps[map].counted {
            // A new key counts one more entry for len(); an existing one is
            // then updated as usual.
            let existing = self.b.label();
            self.update_call(map, key_slot, value_slot, BPF_NOEXIST as u64);
            self.b.jump_imm(BPF_JEQ, Reg::Phys(R0), EEXIST, existing);
            self.b.jump_imm(BPF_JSLT, Reg::Phys(R0), 0, existing);
            self.add_counter(self.len_counter(map), 1);
            self.b.jump(ok);
            self.b.place(existing);
        }
        self.update_call(map, key_slot, value_slot, BPF_ANY as u64);
        self.b.jump_imm(BPF_JSGE, Reg::Phys(R0), 0, ok);
        self.check_helper(Helper::MapUpdateElem, 1);
        self.count(self.counters.map_full(map));
        self.b.place(ok);
    }

    fn update_call(&mut self, map: MapId, key_slot: i32, value_slot: i32, flags: u64) {
        self.b.ld_map(Reg::Phys(R1), map);
        self.address(Reg::Phys(R2), self.frame, key_slot);
        self.address(Reg::Phys(R3), self.frame, value_slot);
        self.b.mov_imm(Reg::Phys(R4), flags);
        self.b.call(Helper::MapUpdateElem, 4);
    }

    /// The `.bss` counter of `map`'s entry count.
    pub fn len_counter(&self, map: MapId) -> usize {
        self.counters.map_len(map)
    }

    /// Adds one to u64 counter `index` in `.bss` (`contract::Counters`). A global with an atomic add
    /// costs 4 instructions where a per-CPU map lookup costs 11; it runs
    /// only when something failed, so contention does not matter.
    pub fn count(&mut self, index: usize) {
        self.add_counter(index, 1);
    }

    fn add_counter(&mut self, index: usize, delta: i64) {
        let p = self.b.vreg();
        self.b.ld_bss(p, Counters::offset(index) as u32);
        let d = self.b.vreg();
        self.b.mov_imm(d, delta as u64);
        self.b.atomic_add64(p, d);
    }

    /// The integer stored under `keys`, or 0 when there is none.
    pub fn map_read_scalar(&mut self, map: MapId, keys: &[TExpr]) -> Reg {
        let key = self.map_key(map, keys);
        let p = self.lookup(map, key);
        let res = self.b.vreg();
        let done = self.b.label();
        self.b.mov_imm(res, 0);
        self.b.jump_imm(BPF_JEQ, p, 0, done);
        self.b.load(BPF_DW, res, p, 0);
        self.b.place(done);
        res
    }

    /// An aggregation's value under `keys`, combined over every CPU with
    /// `bpf_map_lookup_percpu_elem`: a loop over the possible CPUs (their
    /// number is in `.rodata`, so the verifier walks exactly that many
    /// iterations), ended at once when the key is absent.
    pub fn map_read_aggregate(&mut self, map: MapId, keys: &[TExpr]) -> Reg {
        let key = self.map_key(map, keys);
        self.aggregate_at(map, self.frame, key)
    }

    /// The combined value of every CPU of a per-CPU map's entry whose key
    /// is at `key_base + key_off`.
    pub fn aggregate_at(&mut self, map: MapId, key_base: Reg, key_off: i32) -> Reg {
        let value = self.manifest.maps[map].value.clone();
        // The running value and count live on the stack: only the CPU index
        // stays in a register across the helper call.
        let (acc, count) = (self.alloc(8), self.alloc(8));
        let init = match value {
            MapValue::Min { signed: true } => i64::MAX as u64,
            MapValue::Min { signed: false } => u64::MAX,
            MapValue::Max { signed: true } => i64::MIN as u64,
            _ => 0,
        };
        let t = self.b.vreg();
        self.b.mov_imm(t, init);
        self.b.store(BPF_DW, self.frame, acc, t);
        self.b.store_imm(BPF_DW, self.frame, count, 0);
        let cpu = self.b.vreg();
        self.b.mov_imm(cpu, 0);
        let (head, end) = (self.b.label(), self.b.label());
        self.b.place(head);
        let ncpus = self.rodata_u64(Rodata::NCPUS);
        self.b.jump_reg(BPF_JGE, cpu, ncpus, end);
        self.b.ld_map(Reg::Phys(R1), map);
        self.address(Reg::Phys(R2), key_base, key_off);
        self.b.mov(Reg::Phys(R3), cpu);
        self.b.call(Helper::MapLookupPercpuElem, 3);
        let p = self.b.vreg();
        self.b.mov(p, Reg::Phys(R0));
        self.b.jump_imm(BPF_JEQ, p, 0, end);
        self.b.alu_imm(BPF_ADD, cpu, 1);
        let (v, a) = (self.b.vreg(), self.b.vreg());
        self.b.load(BPF_DW, v, p, 0);
        self.b.load(BPF_DW, a, self.frame, acc);
        match value {
            MapValue::Count | MapValue::Sum { .. } => self.b.alu_reg(BPF_ADD, a, v),
            MapValue::Avg | MapValue::Stats => {
                // {count, total}
                let c = self.b.vreg();
                self.b.load(BPF_DW, c, self.frame, count);
                self.b.alu_reg(BPF_ADD, c, v);
                self.b.store(BPF_DW, self.frame, count, c);
                self.b.load(BPF_DW, v, p, 8);
                self.b.alu_reg(BPF_ADD, a, v);
            }
            MapValue::Min { signed } | MapValue::Max { signed } => {
                // {value, set}: only CPUs that stored a value count.
                let set = self.b.vreg();
                self.b.load(BPF_DW, set, p, 8);
                self.b.jump_imm(BPF_JEQ, set, 0, head);
                self.b.store_imm(BPF_DW, self.frame, count, 1);
                let keep = match (matches!(value, MapValue::Min { .. }), signed) {
                    (true, true) => BPF_JSGE,
                    (true, false) => BPF_JGE,
                    (false, true) => BPF_JSLE,
                    (false, false) => BPF_JLE,
                };
                self.b.jump_reg(keep, v, a, head);
                self.b.mov(a, v);
            }
            _ => unreachable!("checked: only count, sum, avg, min and max are read"),
        }
        self.b.store(BPF_DW, self.frame, acc, a);
        self.b.jump(head);
        self.b.place(end);
        let (res, n) = (self.b.vreg(), self.b.vreg());
        self.b.load(BPF_DW, res, self.frame, acc);
        match value {
            MapValue::Avg | MapValue::Stats => {
                self.b.load(BPF_DW, n, self.frame, count);
                self.signed_average(res, n);
            }
            MapValue::Min { .. } | MapValue::Max { .. } => {
                // No CPU stored a value: 0, as printing shows it.
                let done = self.b.label();
                self.b.load(BPF_DW, n, self.frame, count);
                self.b.jump_imm(BPF_JNE, n, 0, done);
                self.b.mov_imm(res, 0);
                self.b.place(done);
            }
            _ => {}
        }
        res
    }

    /// `total / count` rounded toward zero, 0 when `count` is 0 (in `total`).
    fn signed_average(&mut self, total: Reg, count: Reg) {
        let (positive, done) = (self.b.label(), self.b.label());
        self.b.jump_imm(BPF_JEQ, count, 0, done);
        self.b.jump_imm(BPF_JSGE, total, 0, positive);
        self.b.neg(total);
        self.b.alu_reg(BPF_DIV, total, count);
        self.b.neg(total);
        self.b.jump(done);
        self.b.place(positive);
        self.b.alu_reg(BPF_DIV, total, count);
        self.b.place(done);
    }

    /// Copies the value stored under `keys` to `base + off`, or zeroes it.
    pub fn map_read_into(&mut self, map: MapId, keys: &[TExpr], base: Reg, off: i32, size: u32) {
        let key = self.map_key(map, keys);
        let p = self.lookup(map, key);
        let (missing, done) = (self.b.label(), self.b.label());
        self.b.jump_imm(BPF_JEQ, p, 0, missing);
        self.copy(base, off, p, 0, size);
        self.b.jump(done);
        self.b.place(missing);
        self.zero(base, off, size);
        self.b.place(done);
    }

    pub fn map_set(&mut self, map: MapId, keys: &[TExpr], value: &TExpr) {
        let MapValue::Plain(ty) = self.manifest.maps[map].value.clone() else { unreachable!("checked: plain map") };
        let key = self.map_key(map, keys);
        let slot = self.alloc(ty.size().max(8));
        self.store_value(value, self.frame, slot, &ty);
        self.update_elem(map, key, slot);
    }

    /// `@m[k] = count()` / `sum(v)` on a per-CPU map: add in place when the key
    /// exists, else insert. Per-CPU values need no atomics.
    pub fn map_aggregate(&mut self, map: MapId, keys: &[TExpr], update: &AggUpdate) {
        match update {
            AggUpdate::Count => self.add_to_entry(map, keys, None),
            AggUpdate::Sum(v) => {
                let amount = self.eval(v);
                self.add_to_entry(map, keys, Some(amount))
            }
            AggUpdate::Hist(v) => {
                let n = self.eval(v);
                // `log2_bucket` shifts its operand: the value is kept for the bucket's total.
                let total = self.b.vreg();
                self.b.mov(total, n);
                let bucket = self.log2_bucket(n);
                self.add_to_bucket(map, keys, bucket, total)
            }
            AggUpdate::Lhist { value, min, max, step } => {
                let n = self.eval(value);
                let bucket = self.linear_bucket(n, *min, *max, *step);
                self.add_to_bucket(map, keys, bucket, n)
            }
            AggUpdate::Avg(v) | AggUpdate::Stats(v) => self.count_and_total(map, keys, v),
            AggUpdate::Min(v) => self.extreme(map, keys, v, true),
            AggUpdate::Max(v) => self.extreme(map, keys, v, false),
            AggUpdate::TSeries { value, time, interval, count, agg } => {
                self.tseries(map, keys, value, time, *interval, *count, *agg)
            }
        }
    }

    /// `tseries()`: this CPU's `{value, meta, epoch}` of bucket
    /// `epoch % count`, where epoch = time / interval. A bucket last
    /// written in an older epoch starts over (bpftrace's algorithm; per CPU
    /// here, combined when printed).
    #[allow(clippy::too_many_arguments)]
    fn tseries(
        &mut self,
        map: MapId,
        keys: &[TExpr],
        value: &TExpr,
        time: &TExpr,
        interval: u64,
        count: u64,
        agg: TsAgg,
    ) {
        // As `extreme`: the map's signedness (any signed update makes it signed).
        let signed = matches!(self.manifest.maps[map].value, MapValue::TSeries { signed: true, .. });
        let v = self.eval(value);
        let now = self.eval(time);
        let epoch = self.b.vreg();
        self.b.mov(epoch, now);
        self.alu_const(BPF_DIV, epoch, interval as i64);
        let bucket = self.b.vreg();
        self.b.mov(bucket, epoch);
        self.alu_const(BPF_MOD, bucket, count as i64);
        let key = self.map_key(map, keys);
        let off = self.manifest.maps[map].bucket_offset() as i32;
        self.b.store(BPF_DW, self.frame, key + off, bucket);
        let p = self.lookup(map, key);
        let (insert, done, update) = (self.b.label(), self.b.label(), self.b.label());
        self.b.jump_imm(BPF_JEQ, p, 0, insert);
        let t = self.b.vreg();
        if agg != TsAgg::Last {
            // A new epoch in this bucket: start over.
            self.b.load(BPF_DW, t, p, 16);
            self.b.jump_reg(BPF_JEQ, t, epoch, update);
            self.b.store_imm(BPF_DW, p, 0, 0);
            self.b.store_imm(BPF_DW, p, 8, 0);
        }
        self.b.place(update);
        match agg {
            TsAgg::Last => {
                self.b.store(BPF_DW, p, 0, v);
                self.b.store(BPF_DW, p, 8, now);
            }
            TsAgg::Sum | TsAgg::Avg => {
                self.b.load(BPF_DW, t, p, 0);
                self.b.alu_reg(BPF_ADD, t, v);
                self.b.store(BPF_DW, p, 0, t);
                if agg == TsAgg::Avg {
                    self.b.load(BPF_DW, t, p, 8);
                    self.b.alu_imm(BPF_ADD, t, 1);
                    self.b.store(BPF_DW, p, 8, t);
                }
            }
            TsAgg::Min | TsAgg::Max => {
                let kept = self.b.label();
                self.keep_extreme(p, v, agg == TsAgg::Min, signed, kept);
                self.b.place(kept);
            }
        }
        self.b.store(BPF_DW, p, 16, epoch);
        self.b.jump(done);
        self.b.place(insert);
        let slot = self.alloc(24);
        self.b.store(BPF_DW, self.frame, slot, v);
        match agg {
            TsAgg::Last => self.b.store(BPF_DW, self.frame, slot + 8, now),
            TsAgg::Sum => self.b.store_imm(BPF_DW, self.frame, slot + 8, 0),
            TsAgg::Avg | TsAgg::Min | TsAgg::Max => self.b.store_imm(BPF_DW, self.frame, slot + 8, 1),
        }
        self.b.store(BPF_DW, self.frame, slot + 16, epoch);
        self.update_elem(map, key, slot);
        self.b.place(done);
    }

    /// Bucket of a `hist()`: 0 for negative values, 1 for zero, else
    /// 2 + floor(log2 n), found by halving the shift width (6 steps).
    fn log2_bucket(&mut self, n: Reg) -> Reg {
        let res = self.b.vreg();
        let done = self.b.label();
        self.b.mov_imm(res, 0);
        self.b.jump_imm(BPF_JSLT, n, 0, done);
        self.b.mov_imm(res, 1);
        self.b.jump_imm(BPF_JEQ, n, 0, done);
        self.b.mov_imm(res, 2);
        let t = self.b.vreg();
        for shift in [32, 16, 8, 4, 2, 1] {
            let skip = self.b.label();
            self.b.mov(t, n);
            self.b.alu_imm(BPF_RSH, t, shift);
            self.b.jump_imm(BPF_JEQ, t, 0, skip);
            self.b.mov(n, t);
            self.b.alu_imm(BPF_ADD, res, shift);
            self.b.place(skip);
        }
        self.b.place(done);
        res
    }

    /// Bucket of an `lhist()`: 0 below `min`, `buckets + 1` from `max` on,
    /// else `1 + (n - min) / step` (signed comparisons, as bpftrace).
    fn linear_bucket(&mut self, n: Reg, min: i64, max: i64, step: i64) -> Reg {
        let res = self.b.vreg();
        let done = self.b.label();
        self.b.mov_imm(res, 0);
        self.jump_const(BPF_JSLT, n, min, done);
        self.b.mov_imm(res, ((max - min) / step + 1) as u64);
        self.jump_const(BPF_JSGE, n, max, done);
        self.b.mov(res, n);
        self.alu_const(BPF_SUB, res, min);
        self.alu_const(BPF_DIV, res, step);
        self.b.alu_imm(BPF_ADD, res, 1);
        self.b.place(done);
        res
    }

    /// `if reg op c goto target`, through a register when `c` needs 64 bits.
    fn jump_const(&mut self, op: u8, reg: Reg, c: i64, target: crate::codegen::ir::Label) {
        match i32::try_from(c) {
            Ok(imm) => self.b.jump_imm(op, reg, imm, target),
            Err(_) => {
                let r = self.b.vreg();
                self.b.mov_imm(r, c as u64);
                self.b.jump_reg(op, reg, r, target);
            }
        }
    }

    /// `reg op= c`, through a register when `c` needs 64 bits.
    fn alu_const(&mut self, op: u8, reg: Reg, c: i64) {
        match i32::try_from(c) {
            Ok(0) if op == BPF_SUB => {}
            Ok(imm) => self.b.alu_imm(op, reg, imm),
            Err(_) => {
                let r = self.b.vreg();
                self.b.mov_imm(r, c as u64);
                self.b.alu_reg(op, reg, r);
            }
        }
    }

    /// `avg()`/`stats()`: adds 1 to the entry's count and `v` to its total.
    fn count_and_total(&mut self, map: MapId, keys: &[TExpr], v: &TExpr) {
        let v = self.eval(v);
        let key = self.map_key(map, keys);
        self.add_count_and_total(map, key, v);
    }

    /// Adds 1 and `v` to the `{count, total}` under the key at `key`
    /// (inserting `{1, v}` when it is not there yet).
    fn add_count_and_total(&mut self, map: MapId, key: i32, v: Reg) {
        let p = self.lookup(map, key);
        let (insert, done) = (self.b.label(), self.b.label());
        self.b.jump_imm(BPF_JEQ, p, 0, insert);
        let t = self.b.vreg();
        self.b.load(BPF_DW, t, p, 0);
        self.b.alu_imm(BPF_ADD, t, 1);
        self.b.store(BPF_DW, p, 0, t);
        self.b.load(BPF_DW, t, p, 8);
        self.b.alu_reg(BPF_ADD, t, v);
        self.b.store(BPF_DW, p, 8, t);
        self.b.jump(done);
        self.b.place(insert);
        let slot = self.alloc(16);
        self.b.store_imm(BPF_DW, self.frame, slot, 1);
        self.b.store(BPF_DW, self.frame, slot + 8, v);
        self.update_elem(map, key, slot);
        self.b.place(done);
    }

    /// At `p`, a `{value, set}` cell of `min()`/`max()` (also a `tseries()`
    /// bucket's): stores `v` there unless the cell is set and its value is
    /// as good (the smaller for `min`), in which case it jumps to `kept`.
    fn keep_extreme(&mut self, p: Reg, v: Reg, min: bool, signed: bool, kept: Label) {
        let (t, replace) = (self.b.vreg(), self.b.label());
        self.b.load(BPF_DW, t, p, 8);
        self.b.jump_imm(BPF_JEQ, t, 0, replace);
        self.b.load(BPF_DW, t, p, 0);
        // Keep the old value unless the new one is strictly better.
        let keep = match (min, signed) {
            (true, true) => BPF_JSGE,
            (true, false) => BPF_JGE,
            (false, true) => BPF_JSLE,
            (false, false) => BPF_JLE,
        };
        self.b.jump_reg(keep, v, t, kept);
        self.b.place(replace);
        self.b.store(BPF_DW, p, 0, v);
        self.b.store_imm(BPF_DW, p, 8, 1);
    }

    /// `min()`/`max()`: the entry is `{value, set}`; `set` is 0 on CPUs that
    /// have not stored a value yet.
    fn extreme(&mut self, map: MapId, keys: &[TExpr], v: &TExpr, min: bool) {
        // The map's signedness, not this update's value's: `@m = min(0);
        // @m = min(~(0))` compares both as the map's (signed) values.
        let signed =
            matches!(self.manifest.maps[map].value, MapValue::Min { signed: true } | MapValue::Max { signed: true });
        let v = self.eval(v);
        let key = self.map_key(map, keys);
        let p = self.lookup(map, key);
        let (insert, done) = (self.b.label(), self.b.label());
        self.b.jump_imm(BPF_JEQ, p, 0, insert);
        self.keep_extreme(p, v, min, signed, done);
        self.b.jump(done);
        self.b.place(insert);
        let slot = self.alloc(16);
        self.b.store(BPF_DW, self.frame, slot, v);
        self.b.store_imm(BPF_DW, self.frame, slot + 8, 1);
        self.update_elem(map, key, slot);
        self.b.place(done);
    }

    /// `delete(@m, k)`: 1 when there was an entry to delete, else 0. A
    /// missing key is reported only when the result is `discarded` (a
    /// `delete()` statement), as bpftrace v0.26 warns.
    pub fn map_delete(&mut self, map: MapId, keys: &[TExpr], discarded: bool) -> Reg {
        let key = self.map_key(map, keys);
        self.b.ld_map(Reg::Phys(R1), map);
        self.address(Reg::Phys(R2), self.frame, key);
        self.b.call(Helper::MapDeleteElem, 2);
        let ret = self.b.vreg();
        self.b.mov(ret, Reg::Phys(R0));
        if discarded {
            self.check_helper(Helper::MapDeleteElem, 0);
        }
        let deleted = self.b.vreg();
        let missing = self.b.label();
        self.b.mov_imm(deleted, 0);
        self.b.jump_imm(BPF_JNE, ret, 0, missing);
        self.b.mov_imm(deleted, 1);
        if self.manifest.maps[map].counted {
            self.add_counter(self.len_counter(map), -1);
        }
        self.b.place(missing);
        deleted
    }

    /// `has_key(@m, k)`: 1 when the lookup finds the entry.
    pub fn map_has(&mut self, map: MapId, keys: &[TExpr]) -> Reg {
        let key = self.map_key(map, keys);
        let p = self.lookup(map, key);
        let found = self.b.vreg();
        let missing = self.b.label();
        self.b.mov_imm(found, 0);
        self.b.jump_imm(BPF_JEQ, p, 0, missing);
        self.b.mov_imm(found, 1);
        self.b.place(missing);
        found
    }

    /// `find(@m, k, $v)`: one lookup; when it finds the entry, its value (as
    /// `@m[k]` reads it: every CPU's combined for an aggregation) goes to
    /// `$v` and the result is 1, else `$v` is left as it was and it is 0.
    pub fn map_find(&mut self, map: MapId, keys: &[TExpr], var: VarId) -> Reg {
        let key = self.map_key(map, keys);
        let p = self.lookup(map, key);
        let found = self.b.vreg();
        let missing = self.b.label();
        self.b.mov_imm(found, 0);
        self.b.jump_imm(BPF_JEQ, p, 0, missing);
        let (vars, slot) = self.var_at(var);
        let var_size = self.prog.vars[var].ty.size().max(8);
        match self.manifest.maps[map].value.clone() {
            MapValue::Plain(ty) if ty.in_register() => {
                let v = self.b.vreg();
                self.b.load(BPF_DW, v, p, 0);
                self.b.store(BPF_DW, vars, slot, v);
            }
            // A string or tuple: its bytes, the rest of a longer variable cleared.
            MapValue::Plain(ty) => {
                let size = ty.size().min(var_size);
                if size < var_size {
                    self.zero(vars, slot, var_size);
                }
                self.copy(vars, slot, p, 0, size);
            }
            _ => {
                let v = self.aggregate_at(map, self.frame, key);
                self.b.store(BPF_DW, vars, slot, v);
            }
        }
        self.b.mov_imm(found, 1);
        self.b.place(missing);
        found
    }

    /// `count()`, `sum()`: adds `amount` (or 1) to the u64 under the key.
    fn add_to_entry(&mut self, map: MapId, keys: &[TExpr], amount: Option<Reg>) {
        let key = self.map_key(map, keys);
        let p = self.lookup(map, key);
        let (insert, done) = (self.b.label(), self.b.label());
        self.b.jump_imm(BPF_JEQ, p, 0, insert);
        let v = self.b.vreg();
        self.b.load(BPF_DW, v, p, 0);
        match amount {
            Some(a) => self.b.alu_reg(BPF_ADD, v, a),
            None => self.b.alu_imm(BPF_ADD, v, 1),
        }
        self.b.store(BPF_DW, p, 0, v);
        self.b.jump(done);
        self.b.place(insert);
        let slot = self.alloc(8);
        match amount {
            Some(a) => self.b.store(BPF_DW, self.frame, slot, a),
            None => self.b.store_imm(BPF_DW, self.frame, slot, 1),
        }
        self.update_elem(map, key, slot);
        self.b.place(done);
    }

    /// `hist()`/`lhist()`: the `{count, total}` of one bucket gets 1 and
    /// `n`. The total is what an exporter's `_sum` is (`--metrics`): kept
    /// in the kernel, it is exact where bucket edges would only bound it.
    fn add_to_bucket(&mut self, map: MapId, keys: &[TExpr], bucket: Reg, n: Reg) {
        let key = self.map_key(map, keys);
        let off = self.manifest.maps[map].bucket_offset() as i32;
        self.b.store(BPF_DW, self.frame, key + off, bucket);
        self.add_count_and_total(map, key, n);
    }

    /// `@m[k]++` and friends on an integer map: yields the old or new value.
    pub fn map_update_scalar(&mut self, map: MapId, keys: &[TExpr], delta: i64, prefix: bool) -> Reg {
        let key = self.map_key(map, keys);
        let p = self.lookup(map, key);
        let old = self.b.vreg();
        let new = self.b.vreg();
        let (insert, done) = (self.b.label(), self.b.label());
        self.b.mov_imm(old, 0);
        self.b.jump_imm(BPF_JEQ, p, 0, insert);
        self.b.load(BPF_DW, old, p, 0);
        self.b.mov(new, old);
        self.b.alu_imm(BPF_ADD, new, delta as i32);
        self.b.store(BPF_DW, p, 0, new);
        self.b.jump(done);
        self.b.place(insert);
        self.b.mov_imm(new, delta as u64);
        let slot = self.alloc(8);
        self.b.store(BPF_DW, self.frame, slot, new);
        self.update_elem(map, key, slot);
        self.b.place(done);
        if prefix {
            new
        } else {
            old
        }
    }

    /// Sends an action's record: its id and the arguments, written straight
    /// into the ring buffer.
    pub fn emit_record(&mut self, action: ActionId, args: &[TExpr]) {
        let layout = self.manifest.actions[action].record();
        // A `dw_ustack` sends a record of its own, which must come first
        // in the ring buffer (the reader unwinds it before it prints this
        // one): captured before this record is reserved. And when an
        // argument sends a record of its own (a division by zero's warning)
        // or changes something (`$x++`), the integer arguments are
        // evaluated, in order, before this record is reserved: the ring
        // buffer orders records by reservation, and bpftrace prints the
        // warning first; and a full ring buffer must not skip the change.
        let any = args.iter().any(acts);
        let early: Vec<Early> = args
            .iter()
            .map(|arg| match &arg.kind {
                TExprKind::Stack(st) if st.dwarf => {
                    let slot = self.alloc(StackValue::SIZE);
                    self.capture_stack(st, self.frame, slot);
                    Early::Stack(slot)
                }
                _ if any && arg.ty.in_register() => Early::Reg(self.eval(arg)),
                _ => Early::No,
            })
            .collect();
        self.send_record(layout.size, |l, rec| {
            l.b.store_imm(BPF_DW, rec, 0, action as i32);
            let types: Vec<Type> = l.manifest.actions[action].arg_types().to_vec();
            for (((arg, ty), off), early) in args.iter().zip(&types).zip(layout.offsets).zip(early) {
                match early {
                    Early::Stack(slot) => l.copy(rec, off as i32, l.frame, slot, StackValue::SIZE),
                    Early::Reg(r) => l.b.store(BPF_DW, rec, off as i32, r),
                    Early::No => l.store_value(arg, rec, off as i32, ty),
                }
            }
        });
    }

    /// Reserves a `size`-byte ring buffer record, lets `fill` write it
    /// (given its address), and submits it; a full buffer counts a lost record.
    pub fn send_record(&mut self, size: u32, fill: impl FnOnce(&mut Self, Reg)) {
        self.send_record_flags(size, 0, fill)
    }

    /// `send_record`, submitted with `flags` (`BPF_RB_NO_WAKEUP`: the reader
    /// is not woken for this record).
    pub fn send_record_flags(&mut self, size: u32, flags: u64, fill: impl FnOnce(&mut Self, Reg)) {
        let limit = record_limit(self.maps.events_bytes);
        if size > limit {
            let span = self.stmt_span;
            self.error.get_or_insert(LowerError::RecordTooLarge { needed: size, limit, span });
            return;
        }
        self.b.ld_map(Reg::Phys(R1), self.maps.events);
        self.b.mov_imm(Reg::Phys(R2), size as u64);
        self.b.mov_imm(Reg::Phys(R3), 0);
        self.b.call(Helper::RingbufReserve, 3);
        let rec = self.b.vreg();
        self.b.mov(rec, Reg::Phys(R0));
        let (lost, done) = (self.b.label(), self.b.label());
        self.b.jump_imm(BPF_JEQ, rec, 0, lost);
        fill(self, rec);
        // A caller's own flags (BPF_RB_NO_WAKEUP for a process's later new
        // stacks) win; otherwise the batch rule decides.
        if flags != 0 {
            self.b.mov(Reg::Phys(R1), rec);
            self.b.mov_imm(Reg::Phys(R2), flags);
        } else {
            let flags = self.wakeup_flags(size);
            self.b.mov(Reg::Phys(R1), rec);
            self.b.mov(Reg::Phys(R2), flags);
        }
        self.b.call(Helper::RingbufSubmit, 2);
        self.b.jump(done);
        self.b.place(lost);
        self.count(Counters::LOST);
        self.b.place(done);
    }

    /// The flags of the submit of a `size`-byte record: BPF_RB_FORCE_WAKEUP
    /// when the record completes a batch (`WAKEUP_BATCH_DIVISOR` of the
    /// ring), or when no program has woken the reader in this jiffy (noted
    /// in `.bss`), else BPF_RB_NO_WAKEUP: the kernel's default wakes the
    /// reader for each record it has not read yet when it is quick, and
    /// each wakeup interrupts the traced program (a self-IPI, ~1 µs, a VM
    /// exit in a VM). The reader also reads on its own while records come
    /// (`runtime::script`).
    fn wakeup_flags(&mut self, size: u32) -> Reg {
        const AVAIL_DATA: u64 = 0;
        const NO_WAKEUP: u64 = 1;
        const FORCE_WAKEUP: u64 = 2;
        let flags = self.b.vreg();
        let (wake, done) = (self.b.label(), self.b.label());
        self.b.ld_map(Reg::Phys(R1), self.maps.events);
        self.b.mov_imm(Reg::Phys(R2), AVAIL_DATA);
        self.b.call(Helper::RingbufQuery, 2);
        // Unread bytes, this record's included (with its 8-byte header,
        // 8-aligned): it completes a batch when a multiple of the batch
        // size (a power of two) lies within it.
        let batch = (self.maps.events_bytes / contract::WAKEUP_BATCH_DIVISOR).max(1);
        let before = self.b.vreg();
        self.b.mov(before, Reg::Phys(R0));
        self.b.alu_imm(BPF_SUB, before, ((size + 8).div_ceil(8) * 8) as i32);
        self.b.alu_reg(BPF_XOR, before, Reg::Phys(R0));
        self.b.jump_imm(BPF_JGE, before, batch as i32, wake);
        self.b.call(Helper::Jiffies64, 0);
        let now = self.b.vreg();
        self.b.mov(now, Reg::Phys(R0));
        let slot = self.b.vreg();
        self.b.ld_bss(slot, Counters::offset(self.counters.last_wakeup()) as u32);
        let last = self.b.vreg();
        self.b.load(BPF_DW, last, slot, 0);
        self.b.mov_imm(flags, NO_WAKEUP);
        self.b.jump_reg(BPF_JEQ, now, last, done);
        self.b.store(BPF_DW, slot, 0, now);
        self.b.place(wake);
        self.b.mov_imm(flags, FORCE_WAKEUP);
        self.b.place(done);
        flags
    }
}

/// Whether writing `key` into a place of type `ty` sets every byte of it:
/// `comm` into 16 bytes does (`bpf_get_current_comm` pads with NULs).
fn fills(key: &TExpr, ty: &Type) -> bool {
    matches!((&key.kind, ty), (TExprKind::Builtin(Builtin::Comm), Type::Str { size: 16 }))
        && key.ty == Type::Str { size: 16 }
}

/// Whether places of `types` at `offsets` cover all `size` bytes.
fn contiguous(offsets: &[u32], types: &[Type], size: u32) -> bool {
    let mut end = 0;
    for (&o, t) in offsets.iter().zip(types) {
        if o != end {
            return false;
        }
        end = o + t.size();
    }
    end == size
}

/// An argument of a record worked out before the record is reserved.
enum Early {
    /// A `dw_ustack` captured into the frame at this offset.
    Stack(i32),
    /// An integer evaluated into this register.
    Reg(Reg),
    No,
}

/// Whether evaluating `e` may send a record (a run-time warning) or change
/// a variable or map: what must not wait for a record reserved around it.
fn acts(e: &TExpr) -> bool {
    match &e.kind {
        // A constant divisor other than zero never warns.
        TExprKind::Binary { op: BinOp::Div | BinOp::Mod, lhs, rhs, .. } => {
            !matches!(rhs.kind, TExprKind::Int(v) if v != 0) || acts(lhs) || acts(rhs)
        }
        TExprKind::CheckIndex { .. } => true,
        TExprKind::Update { .. }
        | TExprKind::MapDelete { .. }
        | TExprKind::MapFind { .. }
        | TExprKind::SendSignal { .. }
        | TExprKind::WriteUser { .. } => true,
        TExprKind::Binary { lhs, rhs, .. } | TExprKind::Logical { lhs, rhs, .. } => acts(lhs) || acts(rhs),
        TExprKind::Unary { expr: inner, .. }
        | TExprKind::IntCast(inner)
        | TExprKind::Retype(inner)
        | TExprKind::Bswap(inner)
        | TExprKind::TupleField { tuple: inner, .. } => acts(inner),
        TExprKind::Ternary { cond, then, els } => acts(cond) || acts(then) || acts(els),
        TExprKind::MapRead { keys, .. } | TExprKind::AggRead { keys, .. } | TExprKind::MapHas { keys, .. } => {
            keys.iter().any(acts)
        }
        TExprKind::Tuple(items) => items.iter().any(acts),
        _ => false,
    }
}
