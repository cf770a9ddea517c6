//! Per-architecture register facts: `struct pt_regs` offsets by register name,
//! argument registers for the C and Go ABIs, and the return register.

use super::Lang;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Default for Arch {
    fn default() -> Arch {
        Arch::host()
    }
}

impl Arch {
    /// The architecture rtrace was built for (and therefore runs on).
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Register names `reg()` accepts, in `pt_regs` order.
    pub fn registers(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => X86_64_REGS,
            Arch::Aarch64 => AARCH64_REGS,
        }
    }

    /// Byte offset of a register in `struct pt_regs` (x86_64) or
    /// `struct user_pt_regs` (aarch64, the start of its `pt_regs`).
    pub fn reg_offset(self, name: &str) -> Option<i16> {
        let name = match (self, name) {
            // Accept the `xN` spelling for arm64 registers too.
            (Arch::Aarch64, n) if n.starts_with('x') && n[1..].parse::<u8>().is_ok() => &n[1..],
            (Arch::Aarch64, n) if n.starts_with('r') && n[1..].parse::<u8>().is_ok() => &n[1..],
            _ => name,
        };
        let regs = self.registers();
        match self {
            Arch::X86_64 => regs.iter().position(|r| *r == name).map(|i| (i * 8) as i16),
            Arch::Aarch64 => {
                if let Ok(n) = name.parse::<usize>() {
                    return (n <= 30).then_some((n * 8) as i16);
                }
                regs.iter().position(|r| *r == name).map(|i| (i * 8) as i16)
            }
        }
    }

    /// The register holding argument `n` (0-based) on function entry.
    pub fn arg_register(self, lang: Lang, n: usize) -> Option<&'static str> {
        let table: &[&str] = match (self, lang) {
            (Arch::X86_64, Lang::C) => &["di", "si", "dx", "cx", "r8", "r9"],
            (Arch::X86_64, Lang::Go) => &["ax", "bx", "cx", "di", "si", "r8", "r9", "r10", "r11"],
            (Arch::Aarch64, Lang::C) => &["0", "1", "2", "3", "4", "5", "6", "7"],
            (Arch::Aarch64, Lang::Go) => {
                &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15"]
            }
        };
        table.get(n).copied()
    }

    pub fn return_register(self) -> &'static str {
        match self {
            Arch::X86_64 => "ax",
            Arch::Aarch64 => "0",
        }
    }

    /// The instruction pointer: in a uprobe, the probed instruction's address.
    pub fn ip_register(self) -> &'static str {
        match self {
            Arch::X86_64 => "ip",
            Arch::Aarch64 => "pc",
        }
    }

    /// The register Go's code keeps the current goroutine (`g`) in.
    pub fn go_g_register(self) -> &'static str {
        match self {
            Arch::X86_64 => "r14",
            Arch::Aarch64 => "28",
        }
    }

    pub fn stack_pointer(self) -> &'static str {
        "sp"
    }
}

impl Arch {
    /// The `pt_regs` register of each DWARF register number, as the
    /// architecture's psABI numbers them (x86_64: rax, rdx, rcx, rbx, rsi,
    /// rdi, rbp, rsp, r8..r15, then the return address column, 16, which
    /// holds the ip; aarch64: x0..x30, sp).
    pub fn dwarf_registers(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &[
                "ax", "dx", "cx", "bx", "si", "di", "bp", "sp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
                "ip",
            ],
            Arch::Aarch64 => &AARCH64_REGS[..32],
        }
    }

    /// The DWARF register numbers of the stack pointer and of the return
    /// address column.
    pub fn dwarf_sp_ra(self) -> (u16, u16) {
        match self {
            Arch::X86_64 => (7, 16),
            Arch::Aarch64 => (31, 30),
        }
    }
}

// x86_64 `struct pt_regs` (arch/x86/include/asm/ptrace.h), 8 bytes each.
const X86_64_REGS: &[&str] = &[
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di", "orig_ax", "ip",
    "cs", "flags", "sp", "ss",
];

// aarch64 `struct user_pt_regs`: regs[31] (named by number), then sp, pc, pstate.
const AARCH64_REGS: &[&str] = &[
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20",
    "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "sp", "pc", "pstate",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_offsets_match_pt_regs() {
        assert_eq!(Arch::X86_64.reg_offset("ax"), Some(80));
        assert_eq!(Arch::X86_64.reg_offset("di"), Some(112));
        assert_eq!(Arch::X86_64.reg_offset("ip"), Some(128));
        assert_eq!(Arch::X86_64.reg_offset("sp"), Some(152));
        assert_eq!(Arch::X86_64.reg_offset("eax"), None);
        assert_eq!(Arch::X86_64.arg_register(Lang::Go, 1), Some("bx"));
        assert_eq!(Arch::X86_64.arg_register(Lang::C, 6), None);
    }

    #[test]
    fn aarch64_offsets_match_user_pt_regs() {
        assert_eq!(Arch::Aarch64.reg_offset("x0"), Some(0));
        assert_eq!(Arch::Aarch64.reg_offset("r30"), Some(240));
        assert_eq!(Arch::Aarch64.reg_offset("sp"), Some(248));
        assert_eq!(Arch::Aarch64.reg_offset("pc"), Some(256));
        assert_eq!(Arch::Aarch64.arg_register(Lang::Go, 15), Some("15"));
    }
}
