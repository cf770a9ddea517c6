//! Everything that touches the system: resolving attach points, loading the
//! object into the kernel, attaching, reading events and maps, printing.

pub mod attach;
pub mod binary;
pub mod child;
pub mod clock;
pub mod decode;
pub mod dwarf;
pub mod events;
pub mod glob;
pub mod ifunc;
pub mod info;
pub mod list;
pub mod loader;
pub mod perf;
pub mod process;
pub mod resolve;
pub mod session;
pub mod signals;
pub mod symbols;
pub mod system_types;
pub mod usdt;
