//! Everything after code generation that touches the kernel: load the
//! object (`object`, through `loader`), attach its probes (`attach`, `perf`),
//! run the session (`script`: the event loop of a script or one-liner;
//! the REPL drives the same pieces), read records (`ring`) and maps (`events`,
//! `decode`, the `.bss` counters through `bss`) and hand them to `output`.
//! `metrics` serves the maps to Prometheus (`--metrics`).
//! Uprobes are released by a helper process (`keeper`), so that a SIGKILL
//! of rtrace cannot make the kernel leak them.

pub mod attach;
mod batch;
pub mod bss;
pub mod child;
pub mod clock;
pub mod decode;
pub mod events;
pub mod info;
pub mod keeper;
mod loader;
pub mod metrics;
pub mod object;
mod perf;
pub mod places;
pub mod printf_plan;
pub mod ring;
pub mod script;
pub mod signals;
pub mod stacks;
pub mod stats;

use crate::diagnostic::Diagnostic;

/// A failure while loading or running: what to tell the user, and the exit
/// code it ends rtrace with.
#[derive(Debug)]
pub struct Failure {
    pub diagnostic: Diagnostic,
    pub code: i32,
}
