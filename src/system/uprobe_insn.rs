//! Instructions the kernel will not put a uprobe on, told from their first
//! bytes, so that a wildcard's uprobe_multi link is not refused as a whole.
//!
//! A uprobe replaces the probed instruction with a breakpoint and runs a
//! copy of it out of line (or emulates it). x86-64's kernel refuses, with
//! ENOTSUPP, instructions it cannot run that way: those with a `lock` or a
//! segment-override prefix, those invalid in 64-bit mode, I/O and privileged
//! ones, software interrupts, and `mov ss`/`pop ss` (they hold off the
//! single-step trap of the next instruction). A uprobe_multi link fails as a
//! whole on one such site without saying which (`pthread_spin_lock` starts
//! with `lock decl` and stops `uprobe:libc:*`), so rtrace leaves them out
//! first. Only what is certain is listed: an instruction accepted here that
//! the kernel still refuses is found by the runtime, which splits the link
//! until the refused site is alone (`runtime::attach`).

use crate::probe::arch::Arch;

/// Why the kernel refuses to probe an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A `lock` prefix: the copy would not be atomic with the original.
    Lock,
    /// An `es`, `cs`, `ss` or `ds` segment-override prefix.
    Segment,
    /// Invalid in 64-bit mode, an I/O, privileged or interrupt instruction,
    /// or one that holds off the next instruction's traps.
    Opcode(u8),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Lock => f.write_str("its first instruction has a `lock` prefix"),
            Refusal::Segment => f.write_str("its first instruction has a segment-override prefix"),
            Refusal::Opcode(op) => write!(f, "its first instruction (opcode {:#04x}) cannot be single-stepped", op),
        }
    }
}

/// Legacy prefixes, which may come in any order before the opcode.
const PREFIXES: &[u8] = &[0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x66, 0x67];

/// One-byte opcodes the kernel refuses in 64-bit code: push/pop of segment
/// registers and BCD arithmetic (invalid in 64-bit mode: 06 07 0e 16 17 1e
/// 1f 27 2f 37 3f), pusha/popa/bound (60-62), the Group 1 alias 82, far
/// call and jump (9a, ea), ins/outs (6c-6f), int3, int N, into, iret
/// (cc-cf), aam/aad/salc (d4-d6), in/out (e4-e7, ec-ef), int1 (f1), hlt
/// (f4), cli and sti (fa, fb).
const REFUSED: &[u8] = &[
    0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x60, 0x61, 0x62, 0x6c, 0x6d, 0x6e, 0x6f, 0x82,
    0x9a, 0xcc, 0xcd, 0xce, 0xcf, 0xd4, 0xd5, 0xd6, 0xe4, 0xe5, 0xe6, 0xe7, 0xea, 0xec, 0xed, 0xee, 0xef, 0xf1, 0xf4,
    0xfa, 0xfb,
];

/// Why the kernel will refuse a uprobe on the instruction starting `code`
/// (its first bytes, 15 at most), or `None` when it is not known to.
pub fn refusal(arch: Arch, code: &[u8]) -> Option<Refusal> {
    if arch != Arch::X86_64 {
        return None;
    }
    let mut at = 0;
    while let Some(&b) = code.get(at).filter(|b| PREFIXES.contains(b)) {
        match b {
            0xf0 => return Some(Refusal::Lock),
            0x26 | 0x2e | 0x36 | 0x3e => return Some(Refusal::Segment),
            _ => at += 1,
        }
    }
    // A REX prefix (0x40-0x4f) comes right before the opcode.
    if code.get(at).is_some_and(|b| b & 0xf0 == 0x40) {
        at += 1;
    }
    let op = *code.get(at)?;
    // `mov ss, r/m` is 8e with 2 in the ModRM reg field.
    let mov_ss = op == 0x8e && code.get(at + 1).is_some_and(|modrm| (modrm >> 3) & 7 == 2);
    (REFUSED.contains(&op) || mov_ss).then_some(Refusal::Opcode(op))
}

/// Bytes read at a time: a window of the file that holds the first bytes
/// of many functions.
const WINDOW: usize = 1 << 16;
/// The longest x86 instruction.
const INSN_MAX: usize = 15;

/// The first bytes of the instruction at each of `offsets` of the file at
/// `path` (fewer near its end), read a window at a time in file order: a
/// few reads for thousands of functions, and not the whole file.
pub fn first_bytes(path: &std::path::Path, offsets: &[u64]) -> std::io::Result<Vec<Vec<u8>>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_by_key(|&i| offsets[i]);
    let mut out = vec![Vec::new(); offsets.len()];
    let (mut window, mut start) = (Vec::new(), 0u64);
    for i in order {
        let off = offsets[i];
        let end = start + window.len() as u64;
        if off < start || off + INSN_MAX as u64 > end {
            window.resize(WINDOW, 0);
            let n = file.read_at(&mut window, off)?;
            window.truncate(n);
            start = off;
        }
        let at = (off - start) as usize;
        out[i] = window[at.min(window.len())..(at + INSN_MAX).min(window.len())].to_vec();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_the_kernel_refuses() {
        let x = Arch::X86_64;
        // pthread_spin_lock: lock decl (%rdi)
        assert_eq!(refusal(x, &[0xf0, 0xff, 0x0f]), Some(Refusal::Lock));
        // a lock after another prefix
        assert_eq!(refusal(x, &[0x66, 0xf0, 0x0f, 0xb1, 0x17]), Some(Refusal::Lock));
        // notrack jmp *%rax (a ds prefix)
        assert_eq!(refusal(x, &[0x3e, 0xff, 0xe0]), Some(Refusal::Segment));
        assert_eq!(refusal(x, &[0xcc]), Some(Refusal::Opcode(0xcc)));
        assert_eq!(refusal(x, &[0xf4]), Some(Refusal::Opcode(0xf4)));
        // mov %eax, %ss; but mov %eax, %ds is fine
        assert_eq!(refusal(x, &[0x8e, 0xd0]), Some(Refusal::Opcode(0x8e)));
        assert_eq!(refusal(x, &[0x8e, 0xd8]), None);
    }

    #[test]
    fn reads_the_first_bytes_of_each_offset() {
        let path = std::env::temp_dir().join(format!("rtrace-uprobe-insn-{}", std::process::id()));
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let offsets = [150_000, 5, 199_990, 70_000, 6, 300_000];
        let got = first_bytes(&path, &offsets).unwrap();
        std::fs::remove_file(&path).unwrap();
        for (off, bytes) in offsets.iter().zip(&got) {
            let off = *off as usize;
            let want = &data[off.min(data.len())..(off + INSN_MAX).min(data.len())];
            assert_eq!(bytes.as_slice(), want, "at {}", off);
        }
    }

    #[test]
    fn accepts_ordinary_function_starts() {
        let x = Arch::X86_64;
        for code in [
            &[0xf3, 0x0f, 0x1e, 0xfa][..],               // endbr64
            &[0x55],                                     // push %rbp
            &[0x48, 0x89, 0xe5],                         // mov %rsp,%rbp
            &[0x41, 0x57],                               // push %r15
            &[0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0], // mov %fs:0,%rax
            &[0xe9, 0, 0, 0, 0],                         // jmp
            &[0xb8, 0x01, 0, 0, 0],                      // mov $1,%eax
            &[0xc3],                                     // ret
            &[0x0f, 0x05],                               // syscall
        ] {
            assert_eq!(refusal(x, code), None, "{:02x?}", code);
        }
        assert_eq!(refusal(x, &[]), None);
        assert_eq!(refusal(Arch::Aarch64, &[0xf0]), None);
    }
}
