//! How deeply a program may nest, and the native stack that the compiler's
//! recursive passes get for that depth.
//!
//! The parser refuses a program nested more than `MAX_NESTING` levels (with
//! an error at the place), so every later pass (AST dump, checker, code
//! generator, and whatever else walks the tree) recurses at most that deep.
//! bpftrace sets no limit: 0.17 runs 5,000 nested `if`s and crashes
//! (SIGSEGV) on 10,000. Hand-written programs stay far below both.

/// Levels a program may nest: each `{ }` or `< >` block (statement bodies
/// included, and the `else` of an `else if`), and in an expression each
/// operator, call, map key, index, field access and parenthesised group.
pub const MAX_NESTING: u32 = 1000;

/// Native stack that holds every recursive pass at `MAX_NESTING` with room
/// to spare (debug builds use the most: about 16 KiB per level in the
/// parser). Only the pages touched cost memory.
const STACK_BYTES: usize = 64 << 20;

/// Runs `f` with at least `STACK_BYTES` of stack, on a fresh stack segment
/// when the current thread has less left (a test thread has 2 MiB, the
/// main thread 8 MiB).
pub fn with_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(STACK_BYTES, STACK_BYTES, f)
}
