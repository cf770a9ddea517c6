//! The return instructions of a function, found by decoding its machine
//! code from the file: where a Go function's `uretprobe` puts plain uprobes
//! instead of the kernel's return probe (which replaces the return address
//! on the goroutine's stack, and Go's runtime kills the program when it
//! then copies that stack).
//!
//! The code is decoded from the function's first byte to the end its
//! symbol gives (the function table's extent when the symbol has no size).
//! Go puts no data among a function's instructions, so that linear sweep
//! sees every instruction. It refuses, rather than miss a way out of the
//! function: bytes that do not decode, a jump out of the function (a tail
//! call, which returns from another function), and an indirect jump in
//! code written in assembly (a compiled Go function's indirect jumps are
//! its switch jump tables, whose targets are inside it).

use super::binary::Binary;
use super::golang::GoFunc;
use crate::probe::arch::Arch;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnSiteError {
    #[error("the probe is not at the function's entry")]
    NotAtEntry,
    #[error("rtrace does not decode the machine code of this binary's architecture")]
    Arch,
    #[error("cannot read its code: {0}")]
    Unreadable(String),
    #[error("its symbol has no size and it is not in the Go function table")]
    NoSize,
    #[error("its symbol ({size} bytes) runs past its end in the Go function table ({table} bytes)")]
    PastTable { size: u64, table: u64 },
    #[error("its code is not in a loadable segment of the file")]
    NoCode,
    #[error("the bytes at +{0:#x} are not an instruction")]
    Invalid(u64),
    #[error("the instruction at +{0:#x} runs past the function's end")]
    Truncated(u64),
    #[error("the jump at +{at:#x} leaves the function (to {target:#x}): a tail call returns from another function")]
    TailCall { at: u64, target: u64 },
    #[error("the indirect jump at +{0:#x} may leave the function, and the code was written in assembly")]
    IndirectJump(u64),
    #[error("the far return at +{0:#x} is not a function's return")]
    FarReturn(u64),
    #[error("it has no return instruction (it never returns)")]
    NoReturn,
}

/// The return instructions of the Go function of `bin` at `address`,
/// `size` bytes by its symbol (`None`: the probe is not at a function's
/// entry); `data` is the file's contents.
pub fn go_function(bin: &Binary, data: &[u8], address: u64, size: Option<u64>) -> Result<Vec<u64>, ReturnSiteError> {
    let size = size.ok_or(ReturnSiteError::NotAtEntry)?;
    let arch = bin.arch.ok_or(ReturnSiteError::Arch)?;
    let table = bin.go.as_ref().and_then(|g| g.funcs.as_ref().ok()).and_then(|t| t.at(address));
    let end = extent(address, size, table)?;
    let code = bin.code(data, address, end).ok_or(ReturnSiteError::NoCode)?;
    // Compiled Go's indirect jumps are its jump tables (see above).
    let compiled = table.is_some_and(|f| f.asm == Some(false));
    return_sites(arch, code, address, compiled)
}

/// The function at `address`, `size` bytes by its symbol, `table` its entry
/// in the Go function table: the bytes to decode, `[address, end)`.
pub fn extent(address: u64, size: u64, table: Option<&GoFunc>) -> Result<u64, ReturnSiteError> {
    let table = table.filter(|f| f.entry == address).map(|f| f.end - f.entry);
    match (size, table) {
        (0, Some(t)) => Ok(address + t),
        (0, None) => Err(ReturnSiteError::NoSize),
        (s, Some(t)) if s > t => Err(ReturnSiteError::PastTable { size: s, table: t }),
        (s, _) => Ok(address + s),
    }
}

/// The addresses of the return instructions of the function whose code is
/// `code`, loaded at `address`. `compiled`: it was compiled from Go (not
/// assembly), so its indirect jumps stay inside it.
pub fn return_sites(arch: Arch, code: &[u8], address: u64, compiled: bool) -> Result<Vec<u64>, ReturnSiteError> {
    let sites = match arch {
        Arch::X86_64 => x86_64(code, address, compiled)?,
        Arch::Aarch64 => aarch64(code, address, compiled)?,
    };
    if sites.is_empty() {
        return Err(ReturnSiteError::NoReturn);
    }
    Ok(sites)
}

fn x86_64(code: &[u8], address: u64, compiled: bool) -> Result<Vec<u64>, ReturnSiteError> {
    use iced_x86::{Decoder, DecoderError, DecoderOptions, Mnemonic, OpKind};
    let end = address + code.len() as u64;
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut sites = Vec::new();
    while decoder.can_decode() {
        let insn = decoder.decode();
        let at = insn.ip() - address;
        if insn.is_invalid() {
            return Err(match decoder.last_error() {
                DecoderError::NoMoreBytes => ReturnSiteError::Truncated(at),
                _ => ReturnSiteError::Invalid(at),
            });
        }
        match insn.mnemonic() {
            Mnemonic::Ret => sites.push(insn.ip()),
            Mnemonic::Retf | Mnemonic::Iret | Mnemonic::Iretd | Mnemonic::Iretq => {
                return Err(ReturnSiteError::FarReturn(at))
            }
            Mnemonic::Call => {}
            // `jmp reg` / `jmp [mem]`: a jump table, or a way out.
            Mnemonic::Jmp if matches!(insn.op0_kind(), OpKind::Register | OpKind::Memory) && !compiled => {
                return Err(ReturnSiteError::IndirectJump(at))
            }
            // Every other branch with a target in the instruction: jmp,
            // jcc, loop, jrcxz, xbegin (64-bit code has no direct far jump).
            _ if matches!(insn.op0_kind(), OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64) => {
                let target = insn.near_branch_target();
                if target < address || target >= end {
                    return Err(ReturnSiteError::TailCall { at, target });
                }
            }
            _ => {}
        }
    }
    Ok(sites)
}

/// Fixed-width A64: every 4 bytes are one instruction, so no byte can be
/// misread as the middle of another; only branches need decoding.
fn aarch64(code: &[u8], address: u64, compiled: bool) -> Result<Vec<u64>, ReturnSiteError> {
    if !code.len().is_multiple_of(4) {
        return Err(ReturnSiteError::Truncated(code.len() as u64 & !3));
    }
    let end = address + code.len() as u64;
    let mut sites = Vec::new();
    for (i, word) in code.chunks_exact(4).enumerate() {
        let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        let at = i as u64 * 4;
        let pc = address + at;
        // Sign-extends a `bits`-wide word offset at bit `shift` to a byte offset.
        let offset = |shift: u32, bits: u32| (((w >> shift) as i64) << (64 - bits) >> (64 - bits)) * 4;
        let target = match w {
            // RET Xn, RETAA, RETAB
            _ if w & 0xffff_fc1f == 0xd65f_0000 || w == 0xd65f_0bff || w == 0xd65f_0fff => {
                sites.push(pc);
                continue;
            }
            // BR Xn, and BRAA, BRAB, BRAAZ, BRABZ
            _ if w & 0xffff_fc1f == 0xd61f_0000 || w & 0xfeff_f800 == 0xd61f_0800 => {
                if !compiled {
                    return Err(ReturnSiteError::IndirectJump(at));
                }
                continue;
            }
            // B imm26
            _ if w & 0xfc00_0000 == 0x1400_0000 => offset(0, 26),
            // B.cond / BC.cond imm19
            _ if w & 0xff00_0000 == 0x5400_0000 => offset(5, 19),
            // CBZ / CBNZ imm19
            _ if w & 0x7e00_0000 == 0x3400_0000 => offset(5, 19),
            // TBZ / TBNZ imm14
            _ if w & 0x7e00_0000 == 0x3600_0000 => offset(5, 14),
            _ => continue,
        };
        let target = pc.wrapping_add(target as u64);
        if target < address || target >= end {
            return Err(ReturnSiteError::TailCall { at, target });
        }
    }
    Ok(sites)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// main.Fibonacci as Go 1.19 compiles it (amd64): two returns.
    const FIB: &[u8] = &[
        0x48, 0x83, 0xf8, 0x02, // cmp $2, %rax
        0x7c, 0x0e, // jl +0x14
        0xb9, 0x02, 0x00, 0x00, 0x00, // mov $2, %ecx
        0x31, 0xd2, // xor %edx, %edx
        0xbb, 0x01, 0x00, 0x00, 0x00, // mov $1, %ebx
        0xeb, 0x0e, // jmp +0x22
        0xc3, // ret
        0x48, 0xff, 0xc1, // inc %rcx
        0x48, 0x8d, 0x34, 0x1a, // lea (%rdx,%rbx), %rsi
        0x48, 0x89, 0xda, // mov %rbx, %rdx
        0x48, 0x89, 0xf3, // mov %rsi, %rbx
        0x48, 0x39, 0xc8, // cmp %rcx, %rax
        0x7d, 0xee, // jge +0x15
        0x48, 0x89, 0xd8, // mov %rbx, %rax
        0xc3, // ret
    ];

    #[test]
    fn x86_64_finds_every_ret() {
        assert_eq!(return_sites(Arch::X86_64, FIB, 0x482380, true), Ok(vec![0x482394, 0x4823aa]));
    }

    #[test]
    fn x86_64_refuses_what_it_cannot_follow() {
        // jmp rel32 to far away: a tail call.
        let tail = [0xe9, 0x00, 0x10, 0x00, 0x00];
        assert_eq!(
            return_sites(Arch::X86_64, &tail, 0x1000, true),
            Err(ReturnSiteError::TailCall { at: 0, target: 0x2005 })
        );
        // The code ends in the middle of `mov $1, %ebx`.
        let cut = [0x31, 0xd2, 0xbb, 0x01];
        assert_eq!(return_sites(Arch::X86_64, &cut, 0x1000, true), Err(ReturnSiteError::Truncated(2)));
        // `jmp *%rax`: fine in compiled Go (a jump table), not in assembly.
        let indirect = [0xff, 0xe0, 0xc3];
        assert_eq!(return_sites(Arch::X86_64, &indirect, 0x1000, true), Ok(vec![0x1002]));
        assert_eq!(return_sites(Arch::X86_64, &indirect, 0x1000, false), Err(ReturnSiteError::IndirectJump(0)));
        // An undefined opcode in 64-bit mode (`aaa`).
        assert_eq!(return_sites(Arch::X86_64, &[0x37, 0xc3], 0x1000, true), Err(ReturnSiteError::Invalid(0)));
        // `call` somewhere, then `ud2`: it never returns.
        let panics = [0xe8, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x0b];
        assert_eq!(return_sites(Arch::X86_64, &panics, 0x1000, true), Err(ReturnSiteError::NoReturn));
    }

    #[test]
    fn aarch64_finds_rets_and_checks_branches() {
        let words = |ws: &[u32]| ws.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
        // cbz x0, +8; ret; ret
        let code = words(&[0xb400_0040, 0xd65f_03c0, 0xd65f_03c0]);
        assert_eq!(return_sites(Arch::Aarch64, &code, 0x1000, true), Ok(vec![0x1004, 0x1008]));
        // b -0x1000: out of the function.
        let code = words(&[0x17ff_fc00, 0xd65f_03c0]);
        assert_eq!(
            return_sites(Arch::Aarch64, &code, 0x2000, true),
            Err(ReturnSiteError::TailCall { at: 0, target: 0x1000 })
        );
        // br x1 in assembly.
        let code = words(&[0xd61f_0020, 0xd65f_03c0]);
        assert_eq!(return_sites(Arch::Aarch64, &code, 0x1000, false), Err(ReturnSiteError::IndirectJump(0)));
        assert_eq!(return_sites(Arch::Aarch64, &code[..6], 0x1000, true), Err(ReturnSiteError::Truncated(4)));
    }

    #[test]
    fn extent_is_the_symbol_checked_against_the_table() {
        let f = GoFunc { entry: 0x1000, end: 0x1040, asm: Some(false) };
        assert_eq!(extent(0x1000, 0x2b, Some(&f)), Ok(0x102b));
        assert_eq!(extent(0x1000, 0, Some(&f)), Ok(0x1040));
        assert_eq!(extent(0x1000, 0x80, Some(&f)), Err(ReturnSiteError::PastTable { size: 0x80, table: 0x40 }));
        assert_eq!(extent(0x1000, 0, None), Err(ReturnSiteError::NoSize));
    }
}
