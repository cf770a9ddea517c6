//! The perf events `software:` and `hardware:` probes name: the kernel's
//! `PERF_COUNT_SW_*` / `PERF_COUNT_HW_*` numbers, with perf's aliases.

/// `perf_event_attr.type` of each kind.
pub const PERF_TYPE_HARDWARE: u32 = 0;
pub const PERF_TYPE_SOFTWARE: u32 = 1;

/// (name, alias, config), in the kernel's order.
pub const SOFTWARE: &[(&str, &str, u64)] = &[
    ("cpu-clock", "cpu", 0),
    ("task-clock", "", 1),
    ("page-faults", "faults", 2),
    ("context-switches", "cs", 3),
    ("cpu-migrations", "migrations", 4),
    ("minor-faults", "", 5),
    ("major-faults", "", 6),
    ("alignment-faults", "", 7),
    ("emulation-faults", "", 8),
    ("dummy", "", 9),
    ("bpf-output", "", 10),
];

pub const HARDWARE: &[(&str, &str, u64)] = &[
    ("cpu-cycles", "cycles", 0),
    ("instructions", "", 1),
    ("cache-references", "", 2),
    ("cache-misses", "", 3),
    ("branch-instructions", "branches", 4),
    ("branch-misses", "", 5),
    ("bus-cycles", "", 6),
    ("frontend-stalls", "stalled-cycles-frontend", 7),
    ("backend-stalls", "stalled-cycles-backend", 8),
    ("ref-cycles", "", 9),
];

/// Events between two samples when the probe gives no count (bpftrace's).
pub const DEFAULT_SOFTWARE_COUNT: u64 = 1000;
pub const DEFAULT_HARDWARE_COUNT: u64 = 1_000_000;

/// The config number of `name` (or its alias) in `table`.
pub fn config(table: &[(&str, &str, u64)], name: &str) -> Option<u64> {
    table.iter().find(|(n, a, _)| *n == name || (!a.is_empty() && *a == name)).map(|(_, _, c)| *c)
}

/// Every name and alias of `table`, for suggestions.
pub fn names(table: &'static [(&'static str, &'static str, u64)]) -> impl Iterator<Item = &'static str> {
    table.iter().flat_map(|(n, a, _)| [*n, *a]).filter(|n| !n.is_empty())
}
