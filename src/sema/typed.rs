//! The checked program: every expression typed, every name resolved to what it
//! means (a context load, a variable slot, a map id). Codegen only sees this.

use super::manifest::MapValue;
use crate::parser::ast::BinOp;
use crate::span::Span;
use crate::types::{AddrSpace, Type};

pub type VarId = usize;
pub type MapId = usize;
pub type ActionId = usize;

#[derive(Clone, Debug, PartialEq)]
pub struct TExpr {
    pub kind: TExprKind,
    pub ty: Type,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TExprKind {
    /// An integer constant (its bits; the type says how to read them).
    Int(u64),
    /// A string constant (bytes without the NUL; the type's size includes it).
    Str(Vec<u8>),
    /// The name of the attach point that fired (`probe`, `func`) in a
    /// program that serves several: the names of its attach points, by
    /// their attach cookie (`AttachInfo::cookie`).
    SiteName(Vec<Vec<u8>>),
    /// A value read by a helper call.
    Builtin(Builtin),
    /// An integer at a fixed offset in the probe context: `args->field` of a
    /// tracepoint, a `pt_regs` register (`argN`, `retval`, `reg()`).
    CtxLoad {
        offset: i16,
        bytes: u8,
        signed: bool,
    },
    /// A `char[N]` in a tracepoint record, read as a string.
    CtxString {
        offset: i16,
        size: u32,
    },
    /// A `__data_loc char[]` tracepoint field, read as a string.
    DataLocString {
        offset: i16,
    },
    Var(VarId),
    /// `&$x`: the address of the variable's stack slot.
    VarAddr(VarId),
    /// `@map[keys]` of a plain-value map; 0 (or an empty value) when absent.
    MapRead {
        map: MapId,
        keys: Vec<TExpr>,
    },
    /// `@map[keys]` of a `count`, `sum`, `avg`, `min` or `max` map: the
    /// value of every CPU combined, as printing shows it; 0 when absent.
    AggRead {
        map: MapId,
        keys: Vec<TExpr>,
    },
    /// Integer negation, `!`, `~`.
    Unary {
        op: UnaryOp,
        expr: Box<TExpr>,
    },
    /// Integer arithmetic, bitwise, shift and comparison; `signed` selects
    /// signed comparisons and arithmetic right shifts.
    Binary {
        op: BinOp,
        lhs: Box<TExpr>,
        rhs: Box<TExpr>,
        signed: bool,
    },
    /// Short-circuit `&&` (`and == true`) and `||`; the result is 0 or 1.
    Logical {
        and: bool,
        lhs: Box<TExpr>,
        rhs: Box<TExpr>,
    },
    /// String `==` / `!=` (`negate`), comparing up to the first NUL, or
    /// only the first `limit` bytes (`strncmp`).
    StrEq {
        lhs: Box<TExpr>,
        rhs: Box<TExpr>,
        negate: bool,
        limit: Option<u32>,
    },
    /// Buffer `==` / `!=` (`negate`): the lengths and the bytes; or two
    /// arrays of one type, byte for byte.
    BufEq {
        lhs: Box<TExpr>,
        rhs: Box<TExpr>,
        negate: bool,
    },
    /// `strcontains(hay, needle)`: 1 when `needle` (a literal or a runtime
    /// string) occurs in `hay`.
    StrContains {
        hay: Box<TExpr>,
        needle: Box<TExpr>,
    },
    /// `memcmp(left, right, count)`: the first `count` bytes of two values
    /// (at most the smaller one's), compared like C's `memcmp`.
    MemCmp {
        left: Box<TExpr>,
        right: Box<TExpr>,
        count: Box<TExpr>,
    },
    /// `strstr(hay, needle)`: the index of `needle` in `hay`, or -1.
    StrStr {
        hay: Box<TExpr>,
        needle: Box<TExpr>,
    },
    /// The value of the inner expression, typed differently: `strftime`,
    /// `ksym`, `cgroup_path` only change how a number prints.
    Retype(Box<TExpr>),
    /// The bytes of the inner value seen as `self.ty`, of the same size
    /// (array casts: `(int8[8])n`, `(uint32)pton(...)`).
    Reinterpret(Box<TExpr>),
    /// `bswap(n)`: the bytes of an integer of `self.ty`'s width reversed.
    Bswap(Box<TExpr>),
    /// Constant bytes of an array type (`pton("...")`).
    Bytes(Vec<u8>),
    /// `buf(src[, len])`: a length byte, then the bytes. `src` is an address
    /// in `space`, or a value in memory (a string, an array).
    MakeBuffer {
        src: Box<TExpr>,
        len: Option<Box<TExpr>>,
        space: AddrSpace,
    },
    /// `ntop([af, ]addr)`: the family, then the address (an IPv4 integer, or
    /// an array of 4 or 16 bytes).
    MakeInet {
        af: Box<TExpr>,
        addr: Box<TExpr>,
    },
    /// `usym(addr)`: the address and the current pid.
    MakeUsym(Box<TExpr>),
    /// `join(argv)`: up to `JOIN_ARGS` strings read through the NULL-ended
    /// pointer array `argv`.
    JoinArgs {
        argv: Box<TExpr>,
        space: AddrSpace,
    },
    Ternary {
        cond: Box<TExpr>,
        then: Box<TExpr>,
        els: Box<TExpr>,
    },
    /// Integer conversion to `self.ty` (truncate, then sign- or zero-extend).
    IntCast(Box<TExpr>),
    /// `*p`: read `self.ty` from the address `ptr` in `space`.
    Deref {
        ptr: Box<TExpr>,
        space: AddrSpace,
    },
    /// `str(ptr[, len])`: copy a NUL-terminated string of at most `self.ty`'s
    /// size (or `len` bytes including the NUL).
    ReadStr {
        ptr: Box<TExpr>,
        len: Option<Box<TExpr>>,
        space: AddrSpace,
    },
    /// An array index computed at run time: its value, after reporting
    /// when it is `len` or more (v0.26's runtime error; the read goes ahead).
    CheckIndex {
        index: Box<TExpr>,
        len: u32,
    },
    /// `len(@map)`: the map's entry count (a `.bss` counter).
    MapLen(MapId),
    /// `delete(@m, k)`, `delete(@m[k])`: true when there was an entry to delete.
    MapDelete {
        map: MapId,
        keys: Vec<TExpr>,
    },
    /// `has_key(@m, k)`: true when the entry exists.
    MapHas {
        map: MapId,
        keys: Vec<TExpr>,
    },
    /// `find(@m, k, $v)`: true when the entry exists, which is then copied
    /// into variable `var` (as `@m[k]` reads it).
    MapFind {
        map: MapId,
        keys: Vec<TExpr>,
        var: VarId,
    },
    /// `*p` of a struct, array or char array: `self.ty.size()` bytes read
    /// from `ptr` in `space`.
    ReadMem {
        ptr: Box<TExpr>,
        space: AddrSpace,
    },
    /// `signal(sig)` / `signal_thread(sig)`: the helper's return value.
    SendSignal {
        sig: Box<TExpr>,
        thread: bool,
    },
    /// `write_user(dst, src, len)`: true when `len` bytes (at most the size
    /// of `src`, a value in memory) were written to the user address `dst`.
    WriteUser {
        dst: Box<TExpr>,
        src: Box<TExpr>,
        len: Box<TExpr>,
    },
    /// `strlen(s)`: the bytes of string `s` before its NUL (its size when
    /// it has none).
    StrLen(Box<TExpr>),
    /// `macaddr(array)`: the array's first 6 bytes.
    MakeMac(Box<TExpr>),
    /// `(a, b, ...)`
    Tuple(Vec<TExpr>),
    /// A struct value built from one value per member of `self.ty`'s
    /// record, in order (a uprobe's `args`).
    Struct(Vec<TExpr>),
    /// `t.N` of a stored tuple (a variable, a map value), or `s.name` of a
    /// struct value: the member at `offset` (integers at their type's width).
    TupleField {
        tuple: Box<TExpr>,
        offset: u32,
    },
    /// `kstack` / `ustack`: the current stack (a `contract::StackValue`).
    Stack(crate::types::StackType),
    /// `len(stack)`: its number of frames.
    StackLen(Box<TExpr>),
    /// `$x++`, `--@m[k]` ...: adds `delta`, yields the old value (postfix) or the new one.
    Update {
        place: Place,
        delta: i64,
        prefix: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Place {
    Var(VarId),
    Map { map: MapId, keys: Vec<TExpr> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    /// Logical not: 1 when the operand is 0.
    Not,
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// As the initial PID namespace sees them (`pid(init)`).
    Pid,
    Tid,
    /// `pid`, `tid` as the PID namespace with this device and inode sees
    /// them (rtrace's own, when it is not the initial one).
    NsPid {
        tid: bool,
        dev: u64,
        ino: u64,
    },
    Uid,
    Gid,
    /// `nsecs`, `nsecs(clock)`.
    Nsecs(Clock),
    Elapsed,
    Cpu,
    Comm,
    Rand,
    Cgroup,
    NumaId,
    Jiffies,
    CurTask,
    /// The pid of the `-c` command.
    Cpid,
    /// The number of possible CPUs.
    Ncpus,
    /// The probe's context pointer.
    Ctx,
}

/// The kernel clocks `nsecs(clock)` reads (bpftrace's TimestampMode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// CLOCK_MONOTONIC: not counting time suspended.
    Monotonic,
    /// CLOCK_BOOTTIME, the default: counting time suspended.
    Boot,
    /// CLOCK_TAI.
    Tai,
    /// CLOCK_BOOTTIME plus the TAI offset rtrace measured when it started
    /// (for kernels without `bpf_ktime_get_tai_ns`).
    SwTai,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TStmt {
    pub kind: TStmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TStmtKind {
    /// An expression evaluated for its effects.
    Expr(TExpr),
    /// `$x = value`
    SetVar {
        var: VarId,
        value: TExpr,
    },
    /// `@map[keys] = value` for a plain-value map.
    SetMap {
        map: MapId,
        keys: Vec<TExpr>,
        value: TExpr,
    },
    /// `@map[keys] = count()` / `sum(v)`: an aggregation update.
    Aggregate {
        map: MapId,
        keys: Vec<TExpr>,
        update: AggUpdate,
    },
    /// Send a record to the runtime: `args` are laid out as `Action::record`.
    Emit {
        action: ActionId,
        args: Vec<TExpr>,
    },
    /// `debugf(format, args...)`: `bpf_trace_printk` to the kernel's trace pipe.
    Debugf {
        format: Vec<u8>,
        args: Vec<TExpr>,
    },
    /// `exit([code])`: tell the runtime to stop (with the exit code), and
    /// stop this probe.
    Exit {
        action: ActionId,
        code: Option<TExpr>,
    },
    If {
        cond: TExpr,
        then: Vec<TStmt>,
        els: Vec<TStmt>,
    },
    While {
        cond: TExpr,
        body: Vec<TStmt>,
    },
    /// `let $x;`: the variable's slot set to zero (it reads as zero until
    /// assigned, in every iteration of a loop around it).
    ZeroVar {
        var: VarId,
    },
    /// `for ($i : start..end) { body }`: `body` runs with `$i` = start,
    /// start + 1, ..., end - 1 (`start` and `end` evaluated once). `base`
    /// keeps the start while the loop runs.
    ForRange {
        var: VarId,
        start: TExpr,
        end: TExpr,
        base: VarId,
        body: Vec<TStmt>,
    },
    /// `for ($kv : @map) { body }`: `body` runs once per entry, `$kv` its
    /// `(key, value)`; a map of several keys gives `((k1, k2, ...), value)`.
    ForMap {
        var: VarId,
        map: MapId,
        body: Vec<TStmt>,
    },
    Break,
    Continue,
    Return,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AggUpdate {
    Count,
    Sum(TExpr),
    Avg(TExpr),
    Stats(TExpr),
    Min(TExpr),
    Max(TExpr),
    Hist(TExpr),
    Lhist {
        value: TExpr,
        min: i64,
        max: i64,
        step: i64,
    },
    /// `tseries(value, interval, count[, agg])`; `time` is the clock read
    /// (`nsecs(sw_tai)`, or the map `BPFTRACE_DUMMY_TS_MAP` names).
    TSeries {
        value: TExpr,
        time: TExpr,
        interval: u64,
        count: u64,
        agg: super::manifest::TsAgg,
    },
}

impl AggUpdate {
    /// What the map stores for this aggregation.
    pub fn map_value(&self) -> MapValue {
        match self {
            AggUpdate::Count => MapValue::Count,
            AggUpdate::Sum(v) => MapValue::Sum { signed: v.ty.is_signed() },
            AggUpdate::Avg(_) => MapValue::Avg,
            AggUpdate::Stats(_) => MapValue::Stats,
            AggUpdate::Min(v) => MapValue::Min { signed: v.ty.is_signed() },
            AggUpdate::Max(v) => MapValue::Max { signed: v.ty.is_signed() },
            AggUpdate::Hist(_) => MapValue::Hist,
            AggUpdate::Lhist { min, max, step, .. } => MapValue::Lhist { min: *min, max: *max, step: *step },
            AggUpdate::TSeries { value, interval, count, agg, .. } => {
                MapValue::TSeries { interval: *interval, count: *count, agg: *agg, signed: value.ty.is_signed() }
            }
        }
    }
}

/// A scratch variable of one program.
#[derive(Clone, Debug, PartialEq)]
pub struct VarInfo {
    pub name: String,
    pub ty: Type,
    /// The block it lives in, as the path of block numbers from the
    /// probe's: variables of blocks that never run at once share stack.
    pub scope: Vec<u32>,
}
