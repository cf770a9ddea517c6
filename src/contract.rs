//! The wire format between the generated programs and rtrace in user space:
//! everything both sides must agree on, in one place. Code generation writes
//! it (`codegen::lower`, `codegen::compile`), the runtime reads it
//! (`runtime::events`, `runtime::object`).
//!
//! - **Maps.** User map `@name` with id `m` is the BPF map `m{m}_{name}`
//!   (`map_name`); every output record goes through the ring buffer
//!   `EVENTS_MAP`.
//! - **Records** in the ring buffer start with a u64 id. An id below
//!   `HELPER_ERROR_ID` indexes `Manifest::actions`; the action's arguments
//!   follow at the offsets of `Action::record()` (packed as in a C struct,
//!   from byte 8). A helper-error record (`-k`) is
//!   `{HELPER_ERROR_ID, site, return value}`, three u64s, where `site`
//!   indexes `Compiled::helper_sites`.
//! - **Stacks** (`kstack`, `ustack`) are kept in hash maps named
//!   `stack_map_name(bytes)`, keyed by a 64-bit hash of their frames; the
//!   value a program handles is a `StackValue`. The first user stack of a
//!   process sends a `{PROCESS_SEEN_ID, pid}` record.
//! - **`dw_ustack`** copies the registers and a window of the user stack
//!   into a `DwarfStack` record, which the runtime unwinds when it reads
//!   it; the `StackValue` names it by its `DwarfStack::ID` instead of a hash.
//! - **Counters**: u64 words of `.bss` (`Counters`), added to atomically by
//!   the programs, read (and some reset) by the runtime.
//! - **`.rodata`**: values known only at load time (`Rodata`), filled in by
//!   the runtime before the object is loaded and frozen, then the name
//!   tables `probe` and `func` read by attach cookie.
//! - **Attach cookies**: the runtime attaches each attach point with its
//!   `AttachInfo::cookie`, its index among its program's attach points.

/// The ring buffer every output record goes through.
pub const EVENTS_MAP: &str = "events";

/// The BPF map name of user map `name` (`@name`) with id `id` (its `MapId`): an id first,
/// as map names are unique but `@` names may hold characters BPF refuses.
pub fn map_name(id: usize, name: &str) -> String {
    let base: String =
        name.trim_start_matches('@').chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    format!("m{}_{}", id, base)
}

/// The id of a helper-error record: `{id, site, return value}`.
pub const HELPER_ERROR_ID: u64 = u64::MAX;
/// Byte offsets in a helper-error record.
pub const HELPER_ERROR_SITE: usize = 8;
pub const HELPER_ERROR_VALUE: usize = 16;
pub const HELPER_ERROR_SIZE: u32 = 24;

/// The id of the record that announces a process's first user stack, and
/// each new user stack: `{PROCESS_SEEN_ID, pid}`, two u64s.
pub const PROCESS_SEEN_ID: u64 = u64::MAX - 1;

/// The id of a `dw_ustack` record: `DwarfStack`.
pub const DWARF_STACK_ID: u64 = u64::MAX - 2;

/// A `dw_ustack` record: `{DWARF_STACK_ID, id, u32 pid, u32 window bytes
/// read, the user registers (`pt_regs`, as many as `Arch::registers`
/// names), the window (the stack from the stack pointer up)}`.
pub struct DwarfStack;

impl DwarfStack {
    /// u64: names the capture (`StackValue::HASH` holds it): the time in
    /// ns shifted left by 8, or'd with the CPU.
    pub const ID: u32 = 8;
    pub const PID: u32 = 16;
    /// u32: bytes of the window that were read (0: none).
    pub const LEN: u32 = 20;
    pub const REGS: u32 = 24;
}

/// The per-CPU buffer `bpf_get_stack` writes into (a stack is larger than
/// the eBPF stack), one entry as large as the largest stack.
pub const STACK_SCRATCH_MAP: &str = "stack_scratch";

/// The frames of programs whose values do not fit the eBPF stack: an array
/// with one entry per possible CPU (the runtime sets `max_entries`), the
/// entry of the CPU the program runs on holding its variables and
/// temporaries.
pub const FRAME_SCRATCH_MAP: &str = "frame_scratch";

/// Processes whose first user stack was announced (pid → pid).
pub const SEEN_PIDS_MAP: &str = "seen_pids";

/// How many processes `SEEN_PIDS_MAP` holds.
pub const SEEN_PIDS: u32 = 16384;

/// The map of the stacks of `bytes` bytes (frames × frame size): u64 hash →
/// the frames as `bpf_get_stack` wrote them (zero after the last).
pub fn stack_map_name(bytes: u32) -> String {
    format!("stacks_{}", bytes)
}

/// A `kstack`/`ustack` value: byte offsets of its fields, 16 bytes in all.
pub struct StackValue;

impl StackValue {
    /// u64: the key of the frames in the stack map; 0 for an empty stack.
    pub const HASH: u32 = 0;
    /// u32: the process (thread group) of a user stack, 0 for a kernel one.
    pub const PID: u32 = 8;
    /// u32: how many frames.
    pub const FRAMES: u32 = 12;
    pub const SIZE: u32 = 16;
}

/// Where the counters are in `.bss`, for a program whose counters are laid
/// out for `map_slots` maps (the REPL fixes it so that every object it loads
/// shares one `.bss`). Each counter is one u64; a method gives its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    pub map_slots: usize,
}

impl Counters {
    /// Records lost to a full ring buffer.
    pub const LOST: usize = 0;
    /// `exit()` calls (so an exit whose record was lost still stops rtrace).
    pub const EXIT: usize = 1;
    /// The first per-map counter.
    const MAPS: usize = 2;

    /// Failed updates (a full map) of map `m`.
    pub fn map_full(&self, m: usize) -> usize {
        Self::MAPS + m
    }

    /// The entry count of map `m` that `len()` reads.
    pub fn map_len(&self, m: usize) -> usize {
        Self::MAPS + self.map_slots + m
    }

    /// Stacks lost because their stack map was full (they read as empty).
    pub fn stacks_lost(&self) -> usize {
        Self::MAPS + 2 * self.map_slots
    }

    /// The jiffy in which a program last woke the reader of the ring
    /// buffer: programs wake it at most once a jiffy unless a batch is
    /// waiting. Not a counter; after them so that their places do not move.
    pub fn last_wakeup(&self) -> usize {
        Self::MAPS + 2 * self.map_slots + 1
    }

    /// Counters in all: `.bss` holds this many u64 words.
    pub fn words(&self) -> usize {
        Self::MAPS + 2 * self.map_slots + 2
    }

    /// The byte offset in `.bss` of counter `index`.
    pub fn offset(index: usize) -> usize {
        8 * index
    }
}

/// A batch of records worth waking the reader of the ring buffer for:
/// this fraction of the ring (a power of two, as the ring's size is).
/// Otherwise programs wake the reader at most once a jiffy, and the reader
/// reads every `READ_INTERVAL` on its own while records come.
pub const WAKEUP_BATCH_DIVISOR: u32 = 8;

/// How long the reader sleeps between reads while records come.
pub const READ_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Values `.rodata` holds, filled in before loading: byte offsets of u64s.
pub struct Rodata;

impl Rodata {
    /// When the session started (`elapsed` counts from it), CLOCK_BOOTTIME ns.
    pub const START_NS: u32 = 0;
    /// The `-c` child's pid (`cpid`), 0 without one.
    pub const CPID: u32 = 8;
    /// The number of possible CPUs: bounds the loop that reads aggregations
    /// (and is `ncpus`).
    pub const NCPUS: u32 = 16;
    /// CLOCK_TAI minus CLOCK_BOOTTIME when the session started, ns
    /// (`nsecs(sw_tai)`).
    pub const TAI_OFFSET: u32 = 24;
    pub const SIZE: u32 = 32;

    /// `.rodata`'s contents for these values: the compiled `.rodata`
    /// (`SIZE` bytes of values, then the programs' name tables) with the
    /// values filled in.
    pub fn bytes(compiled: &[u8], start_ns: u64, cpid: u64, ncpus: u64, tai_offset: u64) -> Vec<u8> {
        let mut data = compiled.to_vec();
        data.resize(data.len().max(Self::SIZE as usize), 0);
        let values =
            [(Self::START_NS, start_ns), (Self::CPID, cpid), (Self::NCPUS, ncpus), (Self::TAI_OFFSET, tai_offset)];
        for (at, value) in values {
            data[at as usize..][..8].copy_from_slice(&value.to_le_bytes());
        }
        data
    }
}
