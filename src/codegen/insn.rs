//! eBPF instructions: the 8-byte encoding, opcode constants and helper ids.
//! Nothing here knows about rtrace programs; it is the ISA as the kernel defines it.

/// One eBPF instruction as the kernel sees it. `ld_imm64` takes two slots: the
/// second is an `Insn` with code 0 holding the upper 32 bits in `imm`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }

    /// Little-endian wire form: code, dst|src<<4, off, imm.
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.dst & 0x0f) | (self.src << 4);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }

    pub fn decode(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// True for the first slot of a 16-byte `ld_imm64`.
    pub fn is_ld_imm64(&self) -> bool {
        self.code == (BPF_LD | BPF_DW | BPF_IMM)
    }
}

// Instruction classes.
pub const BPF_LD: u8 = 0x00;
pub const BPF_LDX: u8 = 0x01;
pub const BPF_ST: u8 = 0x02;
pub const BPF_STX: u8 = 0x03;
pub const BPF_ALU: u8 = 0x04;
pub const BPF_JMP: u8 = 0x05;
pub const BPF_JMP32: u8 = 0x06;
pub const BPF_ALU64: u8 = 0x07;

// Sizes (load/store).
pub const BPF_W: u8 = 0x00;
pub const BPF_H: u8 = 0x08;
pub const BPF_B: u8 = 0x10;
pub const BPF_DW: u8 = 0x18;

// Modes (load/store).
pub const BPF_IMM: u8 = 0x00;
pub const BPF_MEM: u8 = 0x60;
pub const BPF_MEMSX: u8 = 0x80;
pub const BPF_ATOMIC: u8 = 0xc0;

// Source operand.
pub const BPF_K: u8 = 0x00;
pub const BPF_X: u8 = 0x08;

// ALU operations.
pub const BPF_ADD: u8 = 0x00;
pub const BPF_SUB: u8 = 0x10;
pub const BPF_MUL: u8 = 0x20;
pub const BPF_DIV: u8 = 0x30;
pub const BPF_OR: u8 = 0x40;
pub const BPF_AND: u8 = 0x50;
pub const BPF_LSH: u8 = 0x60;
pub const BPF_RSH: u8 = 0x70;
pub const BPF_NEG: u8 = 0x80;
pub const BPF_MOD: u8 = 0x90;
pub const BPF_XOR: u8 = 0xa0;
pub const BPF_MOV: u8 = 0xb0;
pub const BPF_ARSH: u8 = 0xc0;
pub const BPF_END: u8 = 0xd0;

// Jump operations.
pub const BPF_JA: u8 = 0x00;
pub const BPF_JEQ: u8 = 0x10;
pub const BPF_JGT: u8 = 0x20;
pub const BPF_JGE: u8 = 0x30;
pub const BPF_JSET: u8 = 0x40;
pub const BPF_JNE: u8 = 0x50;
pub const BPF_JSGT: u8 = 0x60;
pub const BPF_JSGE: u8 = 0x70;
pub const BPF_CALL: u8 = 0x80;
pub const BPF_EXIT: u8 = 0x90;
pub const BPF_JLT: u8 = 0xa0;
pub const BPF_JLE: u8 = 0xb0;
pub const BPF_JSLT: u8 = 0xc0;
pub const BPF_JSLE: u8 = 0xd0;

/// `src_reg` of an `ld_imm64` whose `imm` libbpf turns into a map fd.
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of an `ld_imm64` pointing into a map value (`.rodata`).
pub const BPF_PSEUDO_MAP_VALUE: u8 = 2;
/// `src_reg` of a `call` to a bpf-to-bpf function.
pub const BPF_PSEUDO_CALL: u8 = 1;
/// `src_reg` of an `ld_imm64` holding a callback's address.
pub const BPF_PSEUDO_FUNC: u8 = 4;

// Registers.
pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R4: u8 = 4;
pub const R5: u8 = 5;
pub const R6: u8 = 6;
pub const R7: u8 = 7;
pub const R8: u8 = 8;
pub const R9: u8 = 9;
/// The read-only frame pointer.
pub const R10: u8 = 10;

/// The BPF stack every program gets (MAX_BPF_STACK).
pub const MAX_STACK: u32 = 512;

/// The most instructions the kernel loads in one program, its subprograms
/// included (BPF_COMPLEXITY_LIMIT_INSNS; more is refused with `E2BIG` before
/// the verifier looks at it).
pub const MAX_INSNS: usize = 1_000_000;

/// Map update flags.
pub const BPF_ANY: i32 = 0;
pub const BPF_NOEXIST: i32 = 1;
pub const BPF_EXIST: i32 = 2;

/// Kernel helper function ids (`enum bpf_func_id`, include/uapi/linux/bpf.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Helper {
    MapLookupElem = 1,
    MapUpdateElem = 2,
    MapDeleteElem = 3,
    ProbeRead = 4,
    KtimeGetNs = 5,
    TracePrintk = 6,
    GetPrandomU32 = 7,
    GetSmpProcessorId = 8,
    GetCurrentPidTgid = 14,
    GetCurrentUidGid = 15,
    GetCurrentComm = 16,
    PerfEventOutput = 25,
    GetStackid = 27,
    GetStack = 67,
    GetCurrentTask = 35,
    ProbeWriteUser = 36,
    GetNumaNodeId = 42,
    ProbeReadStr = 45,
    OverrideReturn = 58,
    GetCurrentCgroupId = 80,
    SendSignal = 109,
    ProbeReadUser = 112,
    ProbeReadKernel = 113,
    ProbeReadUserStr = 114,
    ProbeReadKernelStr = 115,
    SendSignalThread = 117,
    Jiffies64 = 118,
    GetNsCurrentPidTgid = 120,
    KtimeGetBootNs = 125,
    RingbufOutput = 130,
    RingbufReserve = 131,
    RingbufSubmit = 132,
    RingbufDiscard = 133,
    PerCpuPtr = 153,
    ThisCpuPtr = 154,
    RingbufQuery = 134,
    GetCurrentTaskBtf = 158,
    ForEachMapElem = 164,
    GetFuncIp = 173,
    GetAttachCookie = 174,
    TaskPtRegs = 175,
    Loop = 181,
    MapLookupPercpuElem = 195,
    KtimeGetTaiNs = 208,
}

impl Helper {
    pub fn name(self) -> &'static str {
        match self {
            Helper::MapLookupElem => "map_lookup_elem",
            Helper::MapUpdateElem => "map_update_elem",
            Helper::MapDeleteElem => "map_delete_elem",
            Helper::ProbeRead => "probe_read",
            Helper::KtimeGetNs => "ktime_get_ns",
            Helper::TracePrintk => "trace_printk",
            Helper::GetPrandomU32 => "get_prandom_u32",
            Helper::GetSmpProcessorId => "get_smp_processor_id",
            Helper::GetCurrentPidTgid => "get_current_pid_tgid",
            Helper::GetCurrentUidGid => "get_current_uid_gid",
            Helper::GetCurrentComm => "get_current_comm",
            Helper::PerfEventOutput => "perf_event_output",
            Helper::GetStackid => "get_stackid",
            Helper::GetStack => "get_stack",
            Helper::GetCurrentTask => "get_current_task",
            Helper::ProbeWriteUser => "probe_write_user",
            Helper::GetNumaNodeId => "get_numa_node_id",
            Helper::ProbeReadStr => "probe_read_str",
            Helper::OverrideReturn => "override_return",
            Helper::GetCurrentCgroupId => "get_current_cgroup_id",
            Helper::SendSignal => "send_signal",
            Helper::ProbeReadUser => "probe_read_user",
            Helper::ProbeReadKernel => "probe_read_kernel",
            Helper::ProbeReadUserStr => "probe_read_user_str",
            Helper::ProbeReadKernelStr => "probe_read_kernel_str",
            Helper::SendSignalThread => "send_signal_thread",
            Helper::Jiffies64 => "jiffies64",
            Helper::GetNsCurrentPidTgid => "get_ns_current_pid_tgid",
            Helper::KtimeGetBootNs => "ktime_get_boot_ns",
            Helper::RingbufOutput => "ringbuf_output",
            Helper::RingbufReserve => "ringbuf_reserve",
            Helper::RingbufSubmit => "ringbuf_submit",
            Helper::RingbufDiscard => "ringbuf_discard",
            Helper::PerCpuPtr => "per_cpu_ptr",
            Helper::TaskPtRegs => "task_pt_regs",
            Helper::ThisCpuPtr => "this_cpu_ptr",
            Helper::RingbufQuery => "ringbuf_query",
            Helper::GetCurrentTaskBtf => "get_current_task_btf",
            Helper::ForEachMapElem => "for_each_map_elem",
            Helper::GetFuncIp => "get_func_ip",
            Helper::GetAttachCookie => "get_attach_cookie",
            Helper::Loop => "loop",
            Helper::MapLookupPercpuElem => "map_lookup_percpu_elem",
            Helper::KtimeGetTaiNs => "ktime_get_tai_ns",
        }
    }

    pub fn from_id(id: i32) -> Option<Helper> {
        ALL_HELPERS.iter().copied().find(|h| *h as i32 == id)
    }
}

const ALL_HELPERS: &[Helper] = &[
    Helper::MapLookupElem,
    Helper::MapUpdateElem,
    Helper::MapDeleteElem,
    Helper::ProbeRead,
    Helper::KtimeGetNs,
    Helper::TracePrintk,
    Helper::GetPrandomU32,
    Helper::GetSmpProcessorId,
    Helper::GetCurrentPidTgid,
    Helper::GetCurrentUidGid,
    Helper::GetCurrentComm,
    Helper::PerfEventOutput,
    Helper::GetStackid,
    Helper::GetStack,
    Helper::GetCurrentTask,
    Helper::ProbeWriteUser,
    Helper::GetNumaNodeId,
    Helper::ProbeReadStr,
    Helper::OverrideReturn,
    Helper::GetCurrentCgroupId,
    Helper::SendSignal,
    Helper::ProbeReadUser,
    Helper::ProbeReadKernel,
    Helper::ProbeReadUserStr,
    Helper::ProbeReadKernelStr,
    Helper::SendSignalThread,
    Helper::Jiffies64,
    Helper::GetNsCurrentPidTgid,
    Helper::KtimeGetBootNs,
    Helper::RingbufOutput,
    Helper::RingbufReserve,
    Helper::RingbufSubmit,
    Helper::RingbufDiscard,
    Helper::PerCpuPtr,
    Helper::ThisCpuPtr,
    Helper::RingbufQuery,
    Helper::GetCurrentTaskBtf,
    Helper::GetFuncIp,
    Helper::GetAttachCookie,
    Helper::TaskPtRegs,
    Helper::Loop,
    Helper::MapLookupPercpuElem,
    Helper::KtimeGetTaiNs,
];

// Constructors for the finished instructions (physical registers). The lowering
// works on `ir::VInsn`; these are used by `finish` and by tests.

pub const fn alu64_imm(op: u8, dst: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)
}

pub const fn alu64_reg(op: u8, dst: u8, src: u8) -> Insn {
    Insn::new(BPF_ALU64 | op | BPF_X, dst, src, 0, 0)
}

pub const fn mov64_imm(dst: u8, imm: i32) -> Insn {
    alu64_imm(BPF_MOV, dst, imm)
}

pub const fn mov64_reg(dst: u8, src: u8) -> Insn {
    alu64_reg(BPF_MOV, dst, src)
}

/// `dst = *(size *)(src + off)`
pub const fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_LDX | size | BPF_MEM, dst, src, off, 0)
}

/// `*(size *)(dst + off) = src`
pub const fn stx(size: u8, dst: u8, off: i16, src: u8) -> Insn {
    Insn::new(BPF_STX | size | BPF_MEM, dst, src, off, 0)
}

/// `*(size *)(dst + off) = imm`
pub const fn st_imm(size: u8, dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(BPF_ST | size | BPF_MEM, dst, 0, off, imm)
}

pub const fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(BPF_JMP | op | BPF_K, dst, 0, off, imm)
}

pub const fn jmp_reg(op: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(BPF_JMP | op | BPF_X, dst, src, off, 0)
}

pub const fn ja(off: i16) -> Insn {
    Insn::new(BPF_JMP | BPF_JA, 0, 0, off, 0)
}

pub const fn call(helper: Helper) -> Insn {
    Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, helper as i32)
}

pub const fn exit() -> Insn {
    Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

/// The two slots of `dst = imm64` (`src` = 0) or of a pseudo load (`src` = `BPF_PSEUDO_*`).
pub const fn ld_imm64(dst: u8, src: u8, imm: u64) -> [Insn; 2] {
    [
        Insn::new(BPF_LD | BPF_DW | BPF_IMM, dst, src, 0, imm as u32 as i32),
        Insn::new(0, 0, 0, 0, (imm >> 32) as u32 as i32),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_kernel() {
        // r1 = *(u64 *)(r6 + 112)  -> 79 61 70 00 00 00 00 00
        assert_eq!(ldx(BPF_DW, R1, R6, 112).encode(), [0x79, 0x61, 0x70, 0, 0, 0, 0, 0]);
        // call 131 (ringbuf_reserve)
        assert_eq!(call(Helper::RingbufReserve).encode(), [0x85, 0, 0, 0, 131, 0, 0, 0]);
        let i = jmp_imm(BPF_JSLT, R3, -5, -2);
        assert_eq!(Insn::decode(i.encode()), i);
    }
}
