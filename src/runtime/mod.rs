//! Everything that touches the system: resolving attach points, loading the
//! object into the kernel, attaching, reading events and maps, printing.

pub mod binary;
pub mod glob;
pub mod resolve;
