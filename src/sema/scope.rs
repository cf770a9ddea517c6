//! The scopes of scratch variables (bpftrace 0.22+): which variable each
//! name means at a point of a probe. The rules that use them are in
//! `variables`.

use super::typed::VarId;
use crate::span::Span;
use crate::types::Type;
use std::collections::HashMap;

/// The variables visible at a point of a probe.
#[derive(Debug, Default)]
pub(super) struct Scopes {
    /// Innermost last.
    pub stack: Vec<HashMap<String, Slot>>,
    /// Variables of blocks that have ended, for the error that reads one.
    pub ended: HashMap<String, Span>,
    /// The open blocks below the probe's, each by a number of its own: a
    /// variable's place in the tree of blocks (`VarInfo::scope`).
    pub path: Vec<u32>,
    /// Blocks opened so far.
    pub opened: u32,
}

#[derive(Clone, Debug)]
pub(super) struct Slot {
    pub id: VarId,
    /// `let $x` (or the first assignment) that made it.
    pub origin: Span,
    /// Declared with `let` and not assigned since (it reads as zero).
    pub unassigned: bool,
    /// `let $x: T`: every value assigned is converted to `T`.
    pub declared: Option<Type>,
}

impl Scopes {
    pub fn find(&mut self, name: &str) -> Option<&mut Slot> {
        self.stack.iter_mut().rev().find_map(|s| s.get_mut(name))
    }
}
