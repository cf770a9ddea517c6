//! Checked program → eBPF instructions → ELF object. Pure: no kernel access.

pub mod asm;
pub mod btf;
pub mod compile;
pub mod elf;
pub mod finish;
pub mod image;
pub mod insn;
pub mod ir;
pub mod lower;
pub mod regalloc;
