//! Stacks as bpftrace prints them (`kstack`, `ustack` in each stack mode),
//! and as the frames of a flame graph.

use super::value::{Frame, FrameSym, Stack};
use crate::types::StackMode;
use std::fmt::Write;

/// Indentation of a frame in `bpftrace` mode (bpftrace v0.26 indents every
/// stack by 8, in map keys too).
const INDENT: &str = "        ";

/// The text of a stack: a newline, then one line per frame (and per
/// inlined function), as bpftrace's `get_stack` writes it.
pub fn text(stack: &Stack) -> String {
    let mut out = String::from("\n");
    for frame in &stack.frames {
        match frame {
            Frame::BuildId { id, offset } => {
                for b in id {
                    let _ = write!(out, "{:02x}", b);
                }
                let _ = writeln!(out, " 0x{:02x}", offset);
            }
            Frame::Addr { addr, .. } if stack.mode == StackMode::Raw || stack.mode == StackMode::BuildId => {
                let _ = writeln!(out, "{:x}", addr);
            }
            Frame::Addr { addr, syms } => {
                let lines = sym_lines(syms, *addr, stack.mode == StackMode::Perf, stack.kernel);
                for line in lines {
                    match stack.mode {
                        StackMode::Perf => {
                            let _ = writeln!(out, "\t{:x} {}", addr, line);
                        }
                        _ => {
                            let _ = writeln!(out, "{}{}", INDENT, line);
                        }
                    }
                }
            }
        }
    }
    out
}

/// The lines of one address: its inlined functions, innermost first, then
/// the function holding it; the address itself when nothing was found.
fn sym_lines(syms: &[FrameSym], addr: u64, perf: bool, kernel: bool) -> Vec<String> {
    if syms.is_empty() {
        // bpftrace prints a pointer (`0x...`); user frames say where in perf mode.
        let mut s = format!("{:#x}", addr);
        if perf && !kernel {
            s.push_str(" ([unknown])");
        }
        return vec![s];
    }
    syms.iter().map(|s| sym_line(s, perf, kernel)).collect()
}

fn sym_line(s: &FrameSym, perf: bool, kernel: bool) -> String {
    let mut out = String::new();
    if s.inlined && !perf {
        out.push_str("[inlined] ");
    }
    out.push_str(&s.name);
    if let Some(off) = s.offset {
        let _ = write!(out, "+{}", off);
    }
    if perf {
        match (&s.module, s.inlined) {
            (Some(m), _) if !kernel => {
                let _ = write!(out, " ({})", m);
            }
            (_, true) => out.push_str(" (inlined)"),
            _ if !kernel => out.push_str(" ([unknown])"),
            _ => {}
        }
        return out;
    }
    if let Some(loc) = &s.location {
        let _ = write!(out, "@{}", loc);
    }
    out
}

/// The frame names of a stack from its root to its leaf, as a flame graph
/// stacks them: function names without offsets, inlined functions as
/// frames of their own, `[unknown]` for what has no name.
pub fn folded_frames(stack: &Stack) -> Vec<String> {
    let mut names = Vec::new();
    for frame in &stack.frames {
        match frame {
            Frame::BuildId { id, offset } => {
                let hex: String = id.iter().map(|b| format!("{:02x}", b)).collect();
                names.push(format!("{}+0x{:x}", hex, offset));
            }
            Frame::Addr { addr, .. } if stack.mode == StackMode::Raw => names.push(format!("{:#x}", addr)),
            Frame::Addr { syms, .. } if syms.is_empty() => names.push("[unknown]".to_string()),
            Frame::Addr { syms, .. } => names.extend(syms.iter().map(|s| s.name.clone())),
        }
    }
    names.reverse();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, offset: Option<u64>, location: Option<&str>, module: Option<&str>, inlined: bool) -> FrameSym {
        FrameSym {
            name: name.into(),
            offset,
            location: location.map(Into::into),
            module: module.map(Into::into),
            inlined,
        }
    }

    fn user(mode: StackMode) -> Stack {
        let frames = vec![
            Frame::Addr {
                addr: 0x5555_0000_1139,
                syms: vec![
                    sym("myclock", None, Some("/src/t.c:3"), None, true),
                    sym("loop", Some(25), Some("/src/t.c:9"), Some("/bin/t"), false),
                ]
                .into(),
            },
            Frame::Addr { addr: 0x7f00_0000_0001, syms: vec![].into() },
        ];
        Stack { kernel: false, mode, frames }
    }

    // bpftrace v0.26's get_stack and usyms.cpp: leaf first, inlined
    // functions before the function that holds them.
    #[test]
    fn modes_print_as_bpftrace_prints_them() {
        assert_eq!(
            text(&user(StackMode::Bpftrace)),
            "\n        [inlined] myclock@/src/t.c:3\n        loop+25@/src/t.c:9\n        0x7f0000000001\n"
        );
        assert_eq!(
            text(&user(StackMode::Perf)),
            "\n\t555500001139 myclock (inlined)\n\t555500001139 loop+25 (/bin/t)\n\t7f0000000001 0x7f0000000001 ([unknown])\n"
        );
        assert_eq!(text(&user(StackMode::Raw)), "\n555500001139\n7f0000000001\n");
        let kernel = Stack {
            kernel: true,
            mode: StackMode::Perf,
            frames: vec![Frame::Addr {
                addr: 0xffff_ffff_8100_0010,
                syms: vec![sym("vfs_read", Some(16), None, None, false)].into(),
            }],
        };
        assert_eq!(text(&kernel), "\n\tffffffff81000010 vfs_read+16\n");
        let build_id = Stack {
            kernel: false,
            mode: StackMode::BuildId,
            frames: vec![
                Frame::BuildId { id: vec![0xab, 0x01], offset: 0x1139 },
                Frame::Addr { addr: 0x7f00, syms: vec![].into() },
            ],
        };
        assert_eq!(text(&build_id), "\nab01 0x1139\n7f00\n");
        assert_eq!(text(&Stack { kernel: true, mode: StackMode::Bpftrace, frames: vec![] }), "\n");
    }

    #[test]
    fn flame_graph_frames_are_names_root_first() {
        assert_eq!(folded_frames(&user(StackMode::Perf)), ["[unknown]", "loop", "myclock"]);
        assert_eq!(folded_frames(&user(StackMode::Raw)), ["0x7f0000000001", "0x555500001139"]);
    }
}
