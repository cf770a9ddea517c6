//! The Manifest: every resource the checked program needs, computed before
//! codegen and shared with the runtime (bpftrace's "required resources").
//! Maps with their key/value layouts and kinds, output actions with their
//! record layouts, and the attach points of every program. The runtime never
//! re-infers a type: it decodes records and map entries from this.

use crate::probe::{Detail, Resolved, Return};
use crate::span::Span;
use crate::types::{slot_layout, Layout, StackType, Type};

#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// User maps (`@name`), indexed by `MapId`.
    pub maps: Vec<MapInfo>,
    /// Output actions, indexed by the action id at the start of each record.
    pub actions: Vec<Action>,
    /// Every concrete attach point, with the program that serves it.
    pub attach: Vec<AttachInfo>,
    /// Default string size (`BPFTRACE_STRLEN`, `config = { max_strlen = N }`).
    pub strlen: u32,
    /// Entries each map can hold.
    pub max_map_keys: u32,
    /// Every config variable, as the script and the environment set them.
    pub config: crate::config::Config,
    /// Every kind of stack the programs collect (`kstack`, `ustack`).
    pub stacks: Vec<StackType>,
    /// The machine the programs run on (`dw_ustack` copies its registers).
    pub arch: crate::probe::arch::Arch,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MapInfo {
    /// As written: `@x`, or `@` for the anonymous map.
    pub name: String,
    /// Types of the key values; empty for a map without keys.
    pub keys: Vec<Type>,
    pub value: MapValue,
    /// Where the map is first used (for messages).
    pub span: Span,
    /// `len()` is used: the generated code keeps the number of entries in
    /// a `.bss` counter (inserts and deletes that succeed move it).
    pub counted: bool,
    /// The program calls `delete()`, `clear()` or `zero()` on the map: its
    /// values can go down (`--metrics` exports a `count()` as a gauge then).
    pub shrinks: bool,
    /// `let @x = lruhash(n);` and the like: how the map was declared.
    pub declared: Option<Declared>,
}

/// What a map stores under each key.
#[derive(Clone, Debug, PartialEq)]
pub enum MapValue {
    /// `@x = expr`
    Plain(Type),
    /// `count()`: one u64 per CPU, summed when read.
    Count,
    /// `sum(n)`: one 64-bit total per CPU, summed when read.
    Sum { signed: bool },
    /// `avg(n)`: `{count, total}` per CPU; printed as total / count.
    Avg,
    /// `stats(n)`: `{count, total}` per CPU, like `avg`.
    Stats,
    /// `min(n)`: `{value, set}` per CPU (`set` tells a CPU that never saw a
    /// value from one that saw 0); the smallest set value when read.
    Min { signed: bool },
    /// `max(n)`: as `min`, the largest.
    Max { signed: bool },
    /// `hist(n)`: `{count, total}` per CPU under the key plus a u64 log2
    /// bucket index (0: negative, 1: zero, 2 + floor(log2 n) otherwise);
    /// `total` sums the values the bucket counted (an exporter's `_sum`).
    Hist,
    /// `lhist(n, min, max, step)`: as `hist` (`{count, total}`) with linear buckets: 0 below
    /// `min`, `1 + (n - min) / step`, and `buckets + 1` from `max` on.
    Lhist { min: i64, max: i64, step: i64 },
    /// `tseries(n, interval, count[, agg])`: per CPU, `{value, meta, epoch}`
    /// under the key plus a u64 bucket (`epoch % count`, the epoch being the
    /// time over `interval` ns). `meta` is the time of the value (no
    /// aggregation), the count (`avg`) or a set flag (`min`, `max`).
    TSeries { interval: u64, count: u64, agg: TsAgg, signed: bool },
}

/// How `tseries()` combines the values of one interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsAgg {
    /// The last value.
    Last,
    Sum,
    Avg,
    Min,
    Max,
}

/// Buckets of a `hist()`: negative, zero, then one per power of two.
pub const HIST_BUCKETS: usize = 66;

impl MapValue {
    /// True when the map keeps one value per CPU (a per-CPU hash map).
    pub fn per_cpu(&self) -> bool {
        !matches!(self, MapValue::Plain(_))
    }

    /// Whether the key carries a trailing u64 bucket index.
    pub fn bucketed(&self) -> bool {
        matches!(self, MapValue::Hist | MapValue::Lhist { .. } | MapValue::TSeries { .. })
    }

    /// Buckets of a `hist`/`lhist` value, including the two open-ended ones.
    pub fn buckets(&self) -> usize {
        match self {
            MapValue::Hist => HIST_BUCKETS,
            MapValue::Lhist { min, max, step } => ((max - min) / step) as usize + 2,
            _ => 0,
        }
    }

    /// The type a read of the map gives in an expression (`@x[k]`): the
    /// stored value, or the combined value of a `count`, `sum`, `avg`,
    /// `min` or `max`; `None` for maps that can only be printed.
    pub fn read_type(&self) -> Option<Type> {
        use crate::types::{I64, U64};
        match self {
            MapValue::Plain(ty) => Some(ty.clone()),
            MapValue::Avg => Some(I64),
            MapValue::Sum { signed } | MapValue::Min { signed } | MapValue::Max { signed } => {
                Some(if *signed { I64 } else { U64 })
            }
            MapValue::Count => Some(U64),
            MapValue::Stats | MapValue::Hist | MapValue::Lhist { .. } | MapValue::TSeries { .. } => None,
        }
    }

    /// Bytes of one value (of one CPU's value for per-CPU maps).
    pub fn size(&self) -> u32 {
        match self {
            MapValue::Plain(t) => t.size().max(1),
            MapValue::Count | MapValue::Sum { .. } => 8,
            MapValue::Avg
            | MapValue::Stats
            | MapValue::Min { .. }
            | MapValue::Max { .. }
            | MapValue::Hist
            | MapValue::Lhist { .. } => 16,
            MapValue::TSeries { .. } => 24,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            MapValue::Plain(t) => t.to_string(),
            MapValue::Count => "count()".into(),
            MapValue::Sum { .. } => "sum()".into(),
            MapValue::Avg => "avg()".into(),
            MapValue::Stats => "stats()".into(),
            MapValue::Min { .. } => "min()".into(),
            MapValue::Max { .. } => "max()".into(),
            MapValue::Hist => "hist()".into(),
            MapValue::Lhist { min, max, step } => format!("lhist(.., {}, {}, {})", min, max, step),
            MapValue::TSeries { interval, count, .. } => format!("tseries(.., {}, {})", interval, count),
        }
    }
}

/// A map declaration (`let @x = lruhash(100);`): its kind and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Declared {
    /// Least recently used entries make room for new ones.
    pub lru: bool,
    /// One value per CPU (`percpuhash`, `percpulruhash`): for aggregations.
    pub per_cpu: bool,
    pub max_entries: u32,
}

impl MapInfo {
    /// Entries the map holds: declared, or the program's limit.
    pub fn max_entries(&self, default: u32) -> u32 {
        self.declared.map_or(default, |d| d.max_entries)
    }

    /// Layout of the key: the key values packed like a tuple; a map without
    /// keys uses one zero u64. Bucketed maps (`hist`, `lhist`) append the
    /// u64 bucket index at `bucket_offset()`.
    pub fn key_layout(&self) -> Layout {
        let mut layout =
            if self.keys.is_empty() { Layout { offsets: vec![], size: 8 } } else { slot_layout(&self.keys) };
        if self.value.bucketed() {
            layout.size = layout.size.div_ceil(8) * 8 + 8;
        }
        layout
    }

    /// Where a bucketed map's key holds the bucket index.
    pub fn bucket_offset(&self) -> u32 {
        self.key_layout().size - 8
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `printf(format, args...)`, and `errorf`/`warnf` (`kind`): these
    /// print where they were called, and the macro uses (innermost first)
    /// that `expanded_from` their place. A message of bpftrace's standard
    /// library (`assert`) names its place there (`stdlib`), then `span` as
    /// the first place it was expanded from.
    Printf {
        format: String,
        args: Vec<Type>,
        span: Span,
        kind: PrintfKind,
        expanded_from: Vec<Span>,
        stdlib: Option<StdlibPlace>,
    },
    /// `exit([code])`: the record holds the code when there is one.
    Exit { code: bool },
    /// `print(@x[, top[, div]])`: the runtime prints the map (the `top`
    /// largest entries, values divided by `div`; 0 means all / 1).
    PrintMap { map: usize, top: u64, div: u64 },
    /// `print(value)`
    PrintValue { ty: Type },
    /// `clear(@x)`: the runtime deletes every entry.
    ClearMap { map: usize },
    /// `zero(@x)`: the runtime sets every value to zero.
    ZeroMap { map: usize },
    /// `time(format)`: the runtime prints the local time.
    Time { format: String },
    /// `join(argv[, delim])`: the record holds the argument strings.
    Join { delim: String },
    /// `cat(format, args...)`: the runtime prints the named file.
    Cat { format: String, args: Vec<Type>, span: Span },
    /// `system(format, args...)`: the runtime runs the command (`--unsafe`).
    System { format: String, args: Vec<Type>, span: Span },
}

/// Which of printf's family formatted a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrintfKind {
    /// `printf()`: output.
    Output,
    /// `warnf()`: a warning with the place of the call.
    Warning,
    /// `errorf()`: an error with the place of the call (the run goes on).
    Error,
}

/// A place in bpftrace's standard library, where its macros print from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StdlibPlace {
    pub file: &'static str,
    pub line: usize,
    pub col: usize,
    pub end_col: usize,
}

/// `assert()`'s `errorf` in bpftrace v0.26.1's `stdlib/base.bt`.
pub const ASSERT_PLACE: StdlibPlace = StdlibPlace { file: "stdlib/base.bt", line: 6, col: 5, end_col: 37 };

/// `join()` reads at most this many arguments of this many bytes each, as
/// bpftrace does.
pub const JOIN_ARGS: u32 = 16;
pub const JOIN_ARG_SIZE: u32 = 1024;

/// The record argument of a `join()`: its strings one after another.
pub fn join_args_type() -> Type {
    Type::Array { elem: Box::new(Type::Str { size: JOIN_ARG_SIZE }), len: JOIN_ARGS }
}

impl Action {
    /// Types of the values that follow the 8-byte action id in a record.
    pub fn arg_types(&self) -> &[Type] {
        match self {
            Action::Printf { args, .. } | Action::Cat { args, .. } | Action::System { args, .. } => args,
            Action::PrintValue { ty } => std::slice::from_ref(ty),
            Action::Join { .. } => {
                static JOIN: std::sync::OnceLock<Vec<Type>> = std::sync::OnceLock::new();
                JOIN.get_or_init(|| vec![join_args_type()])
            }
            Action::Exit { code: true } => std::slice::from_ref(&crate::types::I64),
            Action::Exit { code: false }
            | Action::PrintMap { .. }
            | Action::ClearMap { .. }
            | Action::ZeroMap { .. }
            | Action::Time { .. } => &[],
        }
    }

    /// Offsets of the arguments in the record (after the 8-byte id) and the
    /// total record size.
    pub fn record(&self) -> Layout {
        let inner = slot_layout(self.arg_types());
        Layout { offsets: inner.offsets.iter().map(|o| o + 8).collect(), size: 8 + inner.size }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AttachInfo {
    /// Index of the program (in `Checked::programs`) that runs here.
    pub program: usize,
    pub resolved: Resolved,
    /// The attach cookie the runtime gives this attach point: its index
    /// among its program's, which `probe` and `func` look names up by
    /// (`TExprKind::SiteName`).
    pub cookie: u64,
}

impl Manifest {
    /// The probes "Attached N probes" counts: the attach points, the
    /// return instructions of one function's uretprobe counting once.
    pub fn probe_count(&self) -> usize {
        let mut returns = std::collections::HashSet::new();
        self.attach
            .iter()
            .filter(|a| match &a.resolved.detail {
                Detail::Uprobe(site) if site.ret == Some(Return::Instruction) => {
                    returns.insert((a.program, &a.resolved.name))
                }
                _ => true,
            })
            .count()
    }
}
