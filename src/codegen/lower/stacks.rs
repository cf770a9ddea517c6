//! `kstack` and `ustack`: the stack is collected with `bpf_get_stack` into
//! a per-CPU scratch buffer (up to 127 frames are 1 KiB, twice the eBPF
//! stack), named by a 64-bit hash of its words, and stored once in the
//! stack map of its size under that name. The value a program handles is
//! 16 bytes, `contract::StackValue`: the hash, the pid (user stacks) and
//! the number of frames. Identical stacks share one entry; distinct stacks
//! never share one (short of a 64-bit hash collision), and a stack that
//! finds the map full is counted (`Counters::stacks_lost`) and reads as an
//! empty stack.
//!
//! `dw_ustack` instead copies the user registers and a window of the user
//! stack (config `dw_ustack_bytes`) into a ring buffer record
//! (`contract::DwarfStack`), which the runtime unwinds with the binaries'
//! `.eh_frame` when it reads it; its value names that record.

use super::Lowerer;
use crate::codegen::insn::*;
use crate::codegen::ir::{Label, Reg};
use crate::contract::{self, DwarfStack, StackValue};
use crate::types::StackType;

/// `BPF_RB_NO_WAKEUP`: a ring buffer record that does not wake the reader.
const BPF_RB_NO_WAKEUP: u64 = 1;
/// `BPF_RB_FORCE_WAKEUP`: a record that wakes the reader now.
const BPF_RB_FORCE_WAKEUP: u64 = 2;

/// `-EEXIST`: the stack map holds this stack already.
const EEXIST: i32 = -17;

/// Multiplier of the hash (2^64 / golden ratio, odd): each word is mixed in
/// with `h = (h ^ w) * K; h ^= h >> 32`.
const HASH_K: u64 = 0x9e37_79b9_7f4a_7c15;

impl<'a> Lowerer<'a> {
    /// Writes the current stack of kind `st` as a `StackValue` at `base + off`.
    pub fn capture_stack(&mut self, st: &StackType, base: Reg, off: i32) {
        if st.dwarf {
            return self.capture_window(base, off);
        }
        let bytes = st.bytes();
        let scratch = self.maps.stack_scratch;
        let at = stack_map_sizes(&self.manifest.stacks).iter().position(|b| *b == bytes);
        let stacks = self.maps.stacks + at.expect("sema lists every stack kind");
        // The value reads as an empty stack until the capture succeeds.
        self.zero(base, off, StackValue::SIZE);
        let done = self.b.label();
        // r0 = &scratch[0]; the verifier needs the null check.
        let key = self.alloc(8);
        self.b.store_imm(BPF_DW, self.frame, key, 0);
        self.b.ld_map(Reg::Phys(R1), scratch);
        self.address(Reg::Phys(R2), self.frame, key);
        self.b.call(Helper::MapLookupElem, 2);
        let buf = self.b.vreg();
        self.b.mov(buf, Reg::Phys(R0));
        self.b.jump_imm(BPF_JEQ, buf, 0, done);
        // n = bpf_get_stack(ctx, buf, bytes, flags): bytes copied; the
        // kernel zeroes the rest of the buffer.
        self.b.mov(Reg::Phys(R1), self.ctx);
        self.b.mov(Reg::Phys(R2), buf);
        self.b.mov_imm(Reg::Phys(R3), bytes as u64);
        self.b.mov_imm(Reg::Phys(R4), st.get_stack_flags());
        self.b.call(Helper::GetStack, 4);
        let n = self.b.vreg();
        self.b.mov(n, Reg::Phys(R0));
        // An error (no user stack in a kernel thread) or no frame: empty.
        self.b.jump_imm(BPF_JSLE, n, 0, done);
        // The frame count, in the value's u32 (n <= bytes, checked by the kernel).
        let frames = self.b.vreg();
        self.b.mov(frames, n);
        self.b.alu_imm(BPF_DIV, frames, st.frame_bytes() as i32);
        self.b.store(BPF_W, base, off + StackValue::FRAMES as i32, frames);
        let h = self.hash_words(buf, n, bytes, seed(st));
        // Stored once under its hash: NOEXIST leaves an existing entry alone.
        let hkey = self.alloc(8);
        self.b.store(BPF_DW, self.frame, hkey, h);
        self.b.ld_map(Reg::Phys(R1), stacks);
        self.address(Reg::Phys(R2), self.frame, hkey);
        self.b.mov(Reg::Phys(R3), buf);
        self.b.mov_imm(Reg::Phys(R4), BPF_NOEXIST as u64);
        self.b.call(Helper::MapUpdateElem, 4);
        let (stored, lost) = (self.b.label(), self.b.label());
        // 1 when this stack is new: the runtime then reads its process's
        // mappings again (a library mapped since its first stack).
        let new = self.b.vreg();
        self.b.mov_imm(new, 1);
        self.b.jump_imm(BPF_JEQ, Reg::Phys(R0), 0, stored);
        self.b.mov_imm(new, 0);
        self.b.jump_imm(BPF_JEQ, Reg::Phys(R0), EEXIST, stored);
        self.b.jump(lost);
        self.b.place(stored);
        let h = self.b.vreg();
        self.b.load(BPF_DW, h, self.frame, hkey);
        self.b.store(BPF_DW, base, off + StackValue::HASH as i32, h);
        if !st.kernel {
            self.store_pid(base, off + StackValue::PID as i32, new);
        }
        self.b.jump(done);
        self.b.place(lost);
        // The map is full: counted, and the value stays an empty stack.
        self.b.store_imm(BPF_W, base, off + StackValue::FRAMES as i32, 0);
        self.count(self.counters.stacks_lost());
        self.b.place(done);
    }

    /// `dw_ustack`: sends a `contract::DwarfStack` record, and writes the
    /// `StackValue` that names it (its id, the pid; no frame count, which
    /// only the unwinding in user space learns) at `base + off`.
    fn capture_window(&mut self, base: Reg, off: i32) {
        let window = self.manifest.config.dw_ustack_bytes as u32;
        let arch = self.manifest.arch;
        let regs_bytes = arch.registers().len() as u32 * 8;
        let sp_off = arch.reg_offset(arch.stack_pointer()).expect("every arch has a stack pointer") as i32;
        let at_window = (DwarfStack::REGS + regs_bytes) as i32;
        self.zero(base, off, StackValue::SIZE);
        // id = ns << 8 | cpu: two captures on one CPU are more than a ns apart.
        self.b.call(Helper::KtimeGetNs, 0);
        let id = self.b.vreg();
        self.b.mov(id, Reg::Phys(R0));
        self.b.alu_imm(BPF_LSH, id, 8);
        self.b.call(Helper::GetSmpProcessorId, 0);
        self.b.alu_imm(BPF_AND, Reg::Phys(R0), 0xff);
        self.b.alu_reg(BPF_OR, id, Reg::Phys(R0));
        self.b.store(BPF_DW, base, off + StackValue::HASH as i32, id);
        self.b.call(Helper::GetCurrentPidTgid, 0);
        let pid = self.b.vreg();
        self.b.mov(pid, Reg::Phys(R0));
        self.b.alu_imm(BPF_RSH, pid, 32);
        self.b.store(BPF_W, base, off + StackValue::PID as i32, pid);
        self.send_record_flags(DwarfStack::REGS + regs_bytes + window, 0, |l, rec| {
            l.b.store_imm(BPF_DW, rec, 0, contract::DWARF_STACK_ID as i64 as i32);
            l.b.store(BPF_DW, rec, DwarfStack::ID as i32, id);
            l.b.store(BPF_W, rec, DwarfStack::PID as i32, pid);
            l.b.store_imm(BPF_W, rec, DwarfStack::LEN as i32, 0);
            let done = l.b.label();
            // The user registers, wherever the probe fired (a profile
            // sample in the kernel has the kernel's in its context): those
            // saved at the task's entry to the kernel.
            l.b.call(Helper::GetCurrentTaskBtf, 0);
            l.b.mov(Reg::Phys(R1), Reg::Phys(R0));
            l.b.call(Helper::TaskPtRegs, 1);
            l.b.mov(Reg::Phys(R3), Reg::Phys(R0));
            l.b.mov(Reg::Phys(R1), rec);
            l.b.alu_imm(BPF_ADD, Reg::Phys(R1), DwarfStack::REGS as i32);
            l.b.mov_imm(Reg::Phys(R2), regs_bytes as u64);
            l.b.call(Helper::ProbeReadKernel, 3);
            l.b.jump_imm(BPF_JNE, Reg::Phys(R0), 0, done);
            let sp = l.b.vreg();
            l.b.load(BPF_DW, sp, rec, DwarfStack::REGS as i32 + sp_off);
            // The whole window; where the stack's mapping ends sooner (the
            // main thread's stack is often only a few KiB above `main`),
            // the read fails as a whole, so it is tried again up to the end
            // of the sp's page plus fewer whole pages each time.
            let read = l.b.label();
            let len = l.b.vreg();
            l.b.mov_imm(len, window as u64);
            l.read_window(rec, at_window, len, sp, read);
            let tail = l.b.vreg();
            l.b.mov(tail, sp);
            l.b.alu_imm(BPF_AND, tail, 4095);
            let to_page_end = l.b.vreg();
            l.b.mov_imm(to_page_end, 4096);
            l.b.alu_reg(BPF_SUB, to_page_end, tail);
            for pages in (0..window / 4096 - 1).rev() {
                l.b.mov(len, to_page_end);
                l.b.alu_imm(BPF_ADD, len, (pages * 4096) as i32);
                l.read_window(rec, at_window, len, sp, read);
            }
            l.b.jump(done);
            l.b.place(read);
            l.b.store(BPF_W, rec, DwarfStack::LEN as i32, len);
            l.b.place(done);
        });
    }

    /// `bpf_probe_read_user(rec + at, len, sp)`; to `read` when it succeeded.
    fn read_window(&mut self, rec: Reg, at: i32, len: Reg, sp: Reg, read: Label) {
        self.b.mov(Reg::Phys(R1), rec);
        self.b.alu_imm(BPF_ADD, Reg::Phys(R1), at);
        self.b.mov(Reg::Phys(R2), len);
        self.b.mov(Reg::Phys(R3), sp);
        self.b.call(Helper::ProbeReadUser, 3);
        self.b.jump_imm(BPF_JEQ, Reg::Phys(R0), 0, read);
    }

    /// A 64-bit hash of the first `n` bytes (whole words) of `buf`, which
    /// holds `bytes` bytes; never 0, which names the empty stack.
    fn hash_words(&mut self, buf: Reg, n: Reg, bytes: u32, seed: u64) -> Reg {
        let h = self.b.vreg();
        self.b.mov_imm(h, seed);
        let k = self.b.vreg();
        self.b.mov_imm(k, HASH_K);
        let i = self.b.vreg();
        self.b.mov_imm(i, 0);
        let (head, end) = (self.b.label(), self.b.label());
        self.b.place(head);
        self.b.jump_reg(BPF_JGE, i, n, end);
        // Bounded loop: the verifier needs `i` within the buffer by a
        // constant, not only below `n`.
        self.b.jump_imm(BPF_JGT, i, (bytes - 8) as i32, end);
        let p = self.b.vreg();
        self.b.mov(p, buf);
        self.b.alu_reg(BPF_ADD, p, i);
        let w = self.b.vreg();
        self.b.load(BPF_DW, w, p, 0);
        self.b.alu_reg(BPF_XOR, h, w);
        self.b.alu_reg(BPF_MUL, h, k);
        let t = self.b.vreg();
        self.b.mov(t, h);
        self.b.alu_imm(BPF_RSH, t, 32);
        self.b.alu_reg(BPF_XOR, h, t);
        self.b.alu_imm(BPF_ADD, i, 8);
        self.b.jump(head);
        self.b.place(end);
        let nonzero = self.b.label();
        self.b.jump_imm(BPF_JNE, h, 0, nonzero);
        self.b.mov_imm(h, 1);
        self.b.place(nonzero);
        h
    }

    /// The current process id (the thread group's) at `base + off`, as a u32;
    /// the first stack of each process, and each new stack (`new` is 1), is
    /// announced to the runtime (`contract::PROCESS_SEEN_ID`), which then
    /// remembers the process's mappings and files so it can name its frames
    /// after it exits.
    fn store_pid(&mut self, base: Reg, off: i32, new: Reg) {
        self.b.call(Helper::GetCurrentPidTgid, 0);
        let pid = self.b.vreg();
        self.b.mov(pid, Reg::Phys(R0));
        self.b.alu_imm(BPF_RSH, pid, 32);
        self.b.store(BPF_W, base, off, pid);
        let Some(seen) = self.maps.seen_pids else { return };
        let key = self.alloc(8);
        self.b.store(BPF_DW, self.frame, key, pid);
        self.b.ld_map(Reg::Phys(R1), seen);
        self.address(Reg::Phys(R2), self.frame, key);
        self.address(Reg::Phys(R3), self.frame, key);
        self.b.mov_imm(Reg::Phys(R4), BPF_NOEXIST as u64);
        self.b.call(Helper::MapUpdateElem, 4);
        let (first, known) = (self.b.label(), self.b.label());
        self.b.jump_imm(BPF_JEQ, Reg::Phys(R0), 0, first);
        self.b.jump_imm(BPF_JEQ, new, 0, known);
        // A new stack of a process announced before: read with the next
        // records, without waking the reader (a wakeup per new stack was
        // most of the cost of a sample when most stacks are new).
        self.announce(key, BPF_RB_NO_WAKEUP);
        self.b.jump(known);
        // The first stack of a process: the reader wakes now, to read its
        // mappings while it runs (whatever the batch rule says).
        self.b.place(first);
        self.announce(key, BPF_RB_FORCE_WAKEUP);
        self.b.place(known);
    }

    /// Sends `contract::PROCESS_SEEN_ID` for the pid at `key` on the stack.
    fn announce(&mut self, key: i32, flags: u64) {
        let p = self.b.vreg();
        self.b.load(BPF_DW, p, self.frame, key);
        self.send_record_flags(16, flags, |l, rec| {
            l.b.store_imm(BPF_DW, rec, 0, contract::PROCESS_SEEN_ID as i64 as i32);
            l.b.store(BPF_DW, rec, 8, p);
        });
    }
}

/// The sizes of the stack maps a program needs, in the order the object
/// lays them out.
pub fn stack_map_sizes(stacks: &[StackType]) -> Vec<u32> {
    let mut sizes: Vec<u32> = stacks.iter().filter(|s| !s.dwarf).map(StackType::bytes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// A 64-bit seed per kind of stack, so that equal words of different kinds
/// get different names.
fn seed(st: &StackType) -> u64 {
    match (st.kernel, st.mode) {
        (true, _) => 0x6b73_7461_636b,
        (false, crate::types::StackMode::BuildId) => 0x6273_7461_636b,
        (false, _) => 0x7573_7461_636b,
    }
}
