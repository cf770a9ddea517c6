//! The types of rtrace values, how they are laid out in eBPF memory (map keys
//! and values, output records, stack slots), and how they print in messages.

use std::fmt;
use std::sync::Arc;

/// Which address space a pointer points into: decides the probe-read helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrSpace {
    Kernel,
    User,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// No value (statements, `printf()`, `exit()`), or the value of an
    /// expression whose error is already reported.
    None,
    /// Not known yet: what a map reads as before any assignment has typed it
    /// (zero), and what is computed from that alone. The other operands
    /// decide its type (`@n = @n + 1` makes `@n` an int64). Only the
    /// checker's passes before its last one see it.
    Unknown,
    /// An integer of `bytes` bytes. In registers every integer is 64 bits,
    /// sign- or zero-extended; in memory (maps, records) it takes 8 bytes.
    Int { bytes: u8, signed: bool },
    /// `true` / `false` (bpftrace v0.26): 0 or 1 in a register and in an
    /// 8-byte slot, one byte inside tuples and structs. Comparisons, `!`,
    /// `&&` and `||` yield it.
    Bool,
    /// A NUL-padded string buffer of `size` bytes (including the terminating NUL).
    Str { size: u32 },
    /// A pointer to `pointee` in address space `space`.
    Ptr { pointee: Box<Type>, space: AddrSpace },
    /// A fixed array (tracepoint `unsigned long args[6]`).
    Array { elem: Box<Type>, len: u32 },
    /// `(a, b, ...)`
    Tuple(Vec<Type>),
    /// `args` of a tracepoint (its fields) or of a uprobe (the function's
    /// DWARF parameters): only usable through `args->field`.
    TracepointArgs,
    /// `strftime(format, ns)`: CLOCK_BOOTTIME nanoseconds, printed as the
    /// local wall-clock time in `format`.
    Timestamp { format: String },
    /// `buf(p, n)`: a length byte, then up to `size` bytes; printed escaped.
    Buffer { size: u32 },
    /// `ntop(...)`: an address family (8 bytes), then 16 address bytes.
    Inet,
    /// `ksym(addr)`: a kernel address, printed as the symbol holding it.
    Ksym,
    /// `usym(addr)`: a user address and the pid it belongs to (16 bytes),
    /// printed as the symbol holding it.
    Usym,
    /// `cgroup_path(id)`: a cgroup id, printed as the cgroup's path.
    CgroupPath,
    /// `macaddr(array)`: 6 bytes, printed as `AA:BB:CC:DD:EE:FF`.
    MacAddr,
    /// `strerror(n)`: an error number, printed as the C library's message.
    Errno,
    /// `signal_name(n)`: a signal number, printed as strsignal(3) names it.
    SignalName,
    /// `syscall_name(n)`: a system call number, printed as the call's name.
    SyscallName,
    /// `username`: a user id, printed as its name in `/etc/passwd`.
    Username,
    /// A C struct or union in its C layout (members keep their C widths).
    Record(Arc<Record>),
    /// A value of a C enum: an integer that prints as the name of its
    /// constant (text output, `printf("%s")`).
    Enum(Arc<EnumType>),
    /// A C `float`/`double` of `bytes` bytes: eBPF (and bpftrace) has no
    /// floating point, so it only keeps its place in structs and prints as
    /// nothing (`null` in JSON), as bpftrace prints it.
    Float { bytes: u8 },
    /// `kstack`, `ustack`: 16 bytes naming a stack kept in a stack map
    /// (`contract::StackValue`), printed as its frames.
    Stack(StackType),
}

/// A C enum: its width and constants.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnumType {
    /// `enum Foo` (`enum` alone for an anonymous one).
    pub name: String,
    pub bytes: u8,
    pub signed: bool,
    pub variants: Vec<(String, u64)>,
}

impl EnumType {
    /// The name of the constant with value `v` (its low `bytes` bytes).
    pub fn name_of(&self, v: u64) -> Option<&str> {
        let mask = if self.bytes >= 8 { u64::MAX } else { (1u64 << (8 * self.bytes)) - 1 };
        self.variants.iter().find(|(_, c)| c & mask == v & mask).map(|(n, _)| n.as_str())
    }
}

/// How a stack prints (bpftrace's `stack_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum StackMode {
    /// `func+offset`, one per line, indented.
    #[default]
    Bpftrace,
    /// `address func+offset (module)`, after a tab, as `perf script`.
    Perf,
    /// Addresses in hex, not symbolized.
    Raw,
    /// User stacks only: the build id of each frame's file and the offset in it.
    BuildId,
}

impl StackMode {
    /// What `stack_mode` and `kstack(mode)` accept, in bpftrace's words.
    pub const INVALID: &'static str =
        "Invalid value for stack_mode: valid values are bpftrace, raw, perf, and build_id.";

    /// The mode named `name`, as `stack_mode` and `kstack(mode)` take it.
    pub fn parse(name: &str) -> Option<StackMode> {
        Some(match name {
            "bpftrace" => StackMode::Bpftrace,
            "perf" => StackMode::Perf,
            "raw" => StackMode::Raw,
            "build_id" => StackMode::BuildId,
            _ => return None,
        })
    }
}

/// A kind of stack: kernel or user, its mode and its depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackType {
    pub kernel: bool,
    pub mode: StackMode,
    /// Frames at most (bpftrace's default is 127, the kernel's
    /// `perf_event_max_stack`).
    pub limit: u32,
    /// `dw_ustack`: a window of the user stack and the registers are
    /// copied in the kernel and unwound in user space with the binaries'
    /// `.eh_frame`/`.debug_frame`, instead of following frame pointers.
    pub dwarf: bool,
}

impl StackType {
    pub const DEFAULT_LIMIT: u32 = 127;
    /// bpftrace's bound on `kstack(limit)`.
    pub const MAX_LIMIT: u32 = 1024;

    /// Bytes of one frame as `bpf_get_stack` writes it: an address, or a
    /// `struct bpf_stack_build_id` (status, 20-byte build id, offset).
    pub fn frame_bytes(&self) -> u32 {
        if self.mode == StackMode::BuildId {
            32
        } else {
            8
        }
    }

    /// Bytes of `limit` frames: the size of the buffer and of a stack map
    /// value (`dw_ustack` has neither).
    pub fn bytes(&self) -> u32 {
        self.limit * self.frame_bytes()
    }

    /// `bpf_get_stack` flags: `BPF_F_USER_STACK` (1 << 8), and
    /// `BPF_F_USER_BUILD_ID` (1 << 11) for build ids.
    pub fn get_stack_flags(&self) -> u64 {
        match (self.kernel, self.mode) {
            (true, _) => 0,
            (false, StackMode::BuildId) => (1 << 8) | (1 << 11),
            (false, _) => 1 << 8,
        }
    }
}

/// A struct or union: its members at their C offsets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// `struct Foo` (empty for an anonymous member struct).
    pub name: String,
    pub fields: Vec<Member>,
    pub size: u32,
    pub align: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    pub name: String,
    pub offset: u32,
    /// Integers keep their width here (`int` is 4 bytes at `offset`);
    /// `char name[N]` is a string of N bytes.
    pub ty: Type,
    /// A bit-field: its bits within the `ty`-wide unit at `offset`.
    pub bits: Option<BitField>,
}

/// Where a bit-field's value is in its storage unit: `width` bits from bit
/// `shift` (counted from the least significant bit, as on little-endian
/// machines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BitField {
    pub shift: u8,
    pub width: u8,
}

impl BitField {
    /// The field's value from its unit's bits, sign-extended when `signed`.
    pub fn extract(self, unit: u64, signed: bool) -> u64 {
        let v = unit >> self.shift;
        if self.width >= 64 {
            return v;
        }
        let v = v & ((1u64 << self.width) - 1);
        if signed && v >> (self.width - 1) == 1 {
            v | !((1u64 << self.width) - 1)
        } else {
            v
        }
    }

    /// The unit of `unit_bytes` bytes holding the bit-field at bit `bit` of
    /// a struct, `width` bits wide, and its place in it (BTF and DWARF give
    /// the bit); `None` when it does not fit one unit.
    pub fn in_unit(bit: u32, width: u32, unit_bytes: u32) -> Option<(u32, BitField)> {
        let unit_bytes = unit_bytes.max(1);
        let unit = bit / (unit_bytes * 8) * unit_bytes;
        let shift = bit - unit * 8;
        (width > 0 && shift + width <= unit_bytes * 8)
            .then_some((unit, BitField { shift: shift as u8, width: width as u8 }))
    }

    /// Places a bit-field of `width` bits at bit `bit` of a struct, in
    /// units of `unit_bytes` bytes, as the SysV ABI does (a field never
    /// straddles a unit of its type, unless the struct is packed):
    /// the unit's byte offset and the field's place in it.
    pub fn place(bit: u32, width: u32, unit_bytes: u32, packed: bool) -> (u32, u32, BitField) {
        let unit_bits = unit_bytes * 8;
        let mut start = bit;
        if !packed && width > 0 && start / unit_bits != (start + width - 1) / unit_bits {
            start = start.div_ceil(unit_bits) * unit_bits;
        }
        // Packed fields may start anywhere: read them from the byte they start in.
        let offset = if packed { start / 8 } else { start / unit_bits * unit_bytes };
        let shift = start - offset * 8;
        (offset, start + width, BitField { shift: shift as u8, width: width as u8 })
    }
}

impl Record {
    /// A struct known only by name: a pointee of a system type not yet
    /// looked up (see `system::Facts::record`).
    pub fn is_stub(&self) -> bool {
        self.fields.is_empty() && !self.name.is_empty() && self.size > 0
    }

    /// Member `name`, also one of an anonymous struct or union member (C
    /// reaches `skc_daddr` of `struct sock_common` through one), with its
    /// offset from the start of this record.
    pub fn field(&self, name: &str) -> Option<Member> {
        if let Some(m) = self.fields.iter().find(|f| f.name == name) {
            return Some(m.clone());
        }
        self.fields.iter().filter(|f| f.name.is_empty()).find_map(|f| match &f.ty {
            Type::Record(inner) => inner.field(name).map(|m| Member { offset: f.offset + m.offset, ..m }),
            _ => None,
        })
    }

    /// Names of the members `field` finds (for suggestions).
    pub fn field_names(&self) -> Vec<&str> {
        let mut names = Vec::new();
        for f in &self.fields {
            match &f.ty {
                Type::Record(inner) if f.name.is_empty() => names.extend(inner.field_names()),
                _ => names.push(f.name.as_str()),
            }
        }
        names
    }
}

/// Bytes a value takes inside C memory (a struct member, an array element):
/// integers at their own width, everything else as in `Type::size`.
pub fn c_size(t: &Type) -> u32 {
    c_measure(t).0
}

pub fn c_align(t: &Type) -> u32 {
    c_measure(t).1
}

/// C size and alignment in one walk: a tuple nested N deep costs O(N), not
/// O(N²) per level (a 1,000-deep tuple took half a minute to compile).
fn c_measure(t: &Type) -> (u32, u32) {
    match t {
        Type::Int { bytes, .. } => (*bytes as u32, *bytes as u32),
        Type::Bool => (1, 1),
        Type::Enum(e) => (e.bytes as u32, e.bytes as u32),
        Type::Float { bytes } => (*bytes as u32, *bytes as u32),
        Type::Tuple(items) => {
            let (layout, align) = packed(items, c_measure);
            (layout.size, align)
        }
        other => (other.size(), other.align()),
    }
}

pub const U64: Type = Type::Int { bytes: 8, signed: false };
pub const I64: Type = Type::Int { bytes: 8, signed: true };

impl Type {
    /// A C integer of `size` bytes (an odd size, such as a 16-byte
    /// `__int128`, is read as its low 8 bytes).
    pub fn c_int(size: u64, signed: bool) -> Type {
        match size {
            1 | 2 | 4 | 8 => Type::Int { bytes: size as u8, signed },
            _ => Type::Int { bytes: 8, signed },
        }
    }

    pub fn is_int(&self) -> bool {
        matches!(self, Type::Int { .. })
    }

    /// Integers and booleans: what arithmetic and aggregations take (a
    /// boolean counts as the integer 0 or 1).
    pub fn is_integral(&self) -> bool {
        matches!(self, Type::Int { .. } | Type::Bool | Type::Enum(_))
    }

    /// How an integral value is laid out inside a tuple or a struct: its
    /// width in bytes and whether it is sign-extended when read.
    pub fn int_width(&self) -> Option<(u8, bool)> {
        match self {
            Type::Int { bytes, signed } => Some((*bytes, *signed)),
            Type::Bool => Some((1, false)),
            Type::Enum(e) => Some((e.bytes, e.signed)),
            _ => None,
        }
    }

    pub fn is_signed(&self) -> bool {
        match self {
            Type::Int { signed, .. } => *signed,
            Type::Enum(e) => e.signed,
            _ => false,
        }
    }

    pub fn is_str(&self) -> bool {
        matches!(self, Type::Str { .. })
    }

    pub fn is_ptr(&self) -> bool {
        matches!(self, Type::Ptr { .. })
    }

    /// Values that live in one 64-bit register (integers, booleans and pointers).
    pub fn is_scalar(&self) -> bool {
        matches!(self, Type::Int { .. } | Type::Bool | Type::Enum(_) | Type::Ptr { .. })
    }

    /// Whether the type is settled: no `None` or `Unknown` in it, also inside
    /// tuples (only such a type is learned for a map or variable).
    pub fn is_known(&self) -> bool {
        match self {
            Type::None | Type::Unknown => false,
            Type::Tuple(items) => items.iter().all(Type::is_known),
            _ => true,
        }
    }

    /// Values the generated code computes in one register: scalars, and the
    /// 8-byte values that only print differently.
    pub fn in_register(&self) -> bool {
        matches!(
            self,
            Type::Int { .. }
                | Type::Bool
                | Type::Enum(_)
                | Type::Ptr { .. }
                | Type::Timestamp { .. }
                | Type::Ksym
                | Type::CgroupPath
                | Type::Errno
                | Type::SignalName
                | Type::SyscallName
                | Type::Username
        )
    }

    /// Values printf's `%s` accepts: strings, and values printed as text.
    pub fn prints_as_text(&self) -> bool {
        matches!(
            self,
            Type::Str { .. }
                | Type::Timestamp { .. }
                | Type::Inet
                | Type::Ksym
                | Type::Usym
                | Type::CgroupPath
                | Type::MacAddr
                | Type::Errno
                | Type::SignalName
                | Type::SyscallName
                | Type::Username
                | Type::Buffer { .. }
                | Type::Enum(_)
                | Type::Stack(_)
        )
    }

    /// Bytes this value takes in a map key/value, an output record or a stack slot.
    pub fn size(&self) -> u32 {
        match self {
            Type::None | Type::Unknown | Type::TracepointArgs => 0,
            Type::Int { .. } | Type::Bool | Type::Enum(_) | Type::Ptr { .. } => 8,
            Type::Float { bytes } => *bytes as u32,
            Type::Timestamp { .. }
            | Type::Ksym
            | Type::CgroupPath
            | Type::Errno
            | Type::SignalName
            | Type::SyscallName
            | Type::Username => 8,
            Type::Usym => 16,
            // {hash, pid, frames}: `contract::StackValue`.
            Type::Stack(_) => 16,
            Type::MacAddr => 6,
            Type::Record(r) => r.size,
            Type::Inet => 24,
            Type::Buffer { size } => size + 1,
            Type::Str { size } => *size,
            // A C array: integers keep their own width.
            Type::Array { elem, len } => c_size(elem) * len,
            Type::Tuple(items) => tuple_layout(items).size,
        }
    }

    pub fn align(&self) -> u32 {
        match self {
            Type::Str { .. } | Type::Buffer { .. } | Type::MacAddr => 1,
            Type::Record(r) => r.align,
            Type::Array { elem, .. } => c_align(elem),
            Type::Tuple(items) => packed(items, c_measure).1,
            Type::None | Type::Unknown | Type::TracepointArgs => 1,
            _ => 8,
        }
    }
}

/// A record `(a = 1, b = "x")`: a struct without a name whose members are
/// laid out as a tuple's elements.
pub fn record_of(names: &[String], types: &[Type]) -> Record {
    let layout = tuple_layout(types);
    let fields = names
        .iter()
        .zip(types)
        .zip(&layout.offsets)
        .map(|((name, ty), offset)| Member { name: name.clone(), offset: *offset, ty: ty.clone(), bits: None })
        .collect();
    Record { name: String::new(), fields, size: layout.size, align: types.iter().map(c_align).max().unwrap_or(1) }
}

/// Where each member of a packed sequence of values goes (tuples, multi-value
/// map keys, output records): natural alignment, total rounded up to the
/// largest alignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub offsets: Vec<u32>,
    pub size: u32,
}

/// A tuple's layout, as bpftrace packs it: like a C struct, integers at
/// their own width (`((int8)1, (int64)2)` is 16 bytes).
pub fn tuple_layout(items: &[Type]) -> Layout {
    packed(items, c_measure).0
}

/// The layout of an output record's arguments and of a map key's values:
/// every integer in an 8-byte slot, as it is held in a register.
pub fn slot_layout(items: &[Type]) -> Layout {
    packed(items, |t| (t.size(), t.align())).0
}

/// The layout of `items` and its alignment, given each item's size and alignment.
fn packed(items: &[Type], measure: fn(&Type) -> (u32, u32)) -> (Layout, u32) {
    let mut offsets = Vec::with_capacity(items.len());
    let mut size = 0u32;
    let mut max_align = 1;
    for t in items {
        let (item_size, a) = measure(t);
        let a = a.max(1);
        max_align = max_align.max(a);
        size = size.div_ceil(a) * a;
        offsets.push(size);
        size += item_size;
    }
    (Layout { offsets, size: size.div_ceil(max_align) * max_align }, max_align)
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::None => write!(f, "none"),
            Type::Unknown => write!(f, "unknown"),
            Type::Int { bytes, signed } => write!(f, "{}int{}", if *signed { "" } else { "u" }, bytes * 8),
            Type::Bool => write!(f, "bool"),
            Type::Enum(e) => write!(f, "{}", e.name),
            Type::Float { bytes: 4 } => write!(f, "float"),
            Type::Float { .. } => write!(f, "double"),
            Type::Str { size } => write!(f, "string[{}]", size),
            Type::Ptr { pointee, .. } => write!(f, "{} *", pointee),
            Type::Array { elem, len } => write!(f, "{}[{}]", elem, len),
            Type::Tuple(items) => {
                write!(f, "(")?;
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{}", t)?;
                }
                write!(f, ")")
            }
            Type::TracepointArgs => write!(f, "args"),
            Type::Timestamp { .. } => write!(f, "timestamp"),
            Type::Buffer { size } => write!(f, "buffer[{}]", size),
            Type::Inet => write!(f, "inet"),
            Type::Ksym => write!(f, "ksym"),
            Type::Usym => write!(f, "usym"),
            Type::CgroupPath => write!(f, "cgroup_path"),
            Type::MacAddr => write!(f, "macaddr"),
            Type::Errno => write!(f, "strerror"),
            Type::SignalName => write!(f, "signal_name"),
            Type::SyscallName => write!(f, "syscall_name"),
            Type::Username => write!(f, "username"),
            Type::Record(r) if r.name.is_empty() => write!(f, "struct {{...}}"),
            Type::Record(r) => write!(f, "{}", r.name),
            Type::Stack(s) => write!(f, "{}", if s.kernel { "kstack" } else { "ustack" }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_use_natural_alignment() {
        let l = tuple_layout(&[Type::Str { size: 5 }, U64, Type::Str { size: 3 }]);
        assert_eq!(l.offsets, vec![0, 8, 16]);
        assert_eq!(l.size, 24);
        assert_eq!(tuple_layout(&[Type::Str { size: 16 }]).size, 16);
        // Integers keep their width in tuples (bpftrace's sizes), not in records.
        let i8t = Type::Int { bytes: 1, signed: true };
        let i16t = Type::Int { bytes: 2, signed: true };
        let i32t = Type::Int { bytes: 4, signed: true };
        assert_eq!(tuple_layout(&[i8t.clone(), I64, i8t.clone(), I64]).size, 32);
        assert_eq!(tuple_layout(&[i8t.clone(), i16t, i32t.clone()]).size, 8);
        assert_eq!(slot_layout(&[i8t, i32t]).size, 16);
    }

    #[test]
    fn types_print_like_bpftrace() {
        assert_eq!(U64.to_string(), "uint64");
        assert_eq!(Type::Int { bytes: 4, signed: true }.to_string(), "int32");
        assert_eq!(Type::Str { size: 16 }.to_string(), "string[16]");
    }
}
