//! Readable eBPF assembly (the kernel verifier's notation) with the source
//! line each run of instructions comes from: what `--emit asm` prints.

use super::compile::Compiled;
use super::image::RelocTarget;
use super::insn::*;
use crate::diagnostic::{Lines, Source};
use std::fmt::Write;

/// All programs of a compiled object.
pub fn print(compiled: &Compiled, source: &Source) -> String {
    let mut out = String::new();
    let lines = source.lines();
    for (i, prog) in compiled.image.programs.iter().enumerate() {
        let _ = writeln!(out, "{} ({}): {} instructions", prog.name, prog.section, prog.insns.len());
        function(&mut out, compiled, &lines, &prog.insns, &prog.relocs, &compiled.locs[i], &prog.subprogs);
        for (sub, locs) in prog.subprogs.iter().zip(&compiled.subprog_locs[i]) {
            let _ = writeln!(out, "{} (.text): {} instructions", sub.name, sub.insns.len());
            function(&mut out, compiled, &lines, &sub.insns, &sub.relocs, locs, &prog.subprogs);
        }
    }
    out
}

fn function(
    out: &mut String,
    compiled: &Compiled,
    lines: &Lines,
    insns: &[Insn],
    relocs: &[super::image::Reloc],
    locs: &[(usize, crate::span::Span)],
    subprogs: &[super::image::FunctionImage],
) {
    let mut skip = false;
    // Both `locs` and `relocs` are in instruction order: walk them along.
    let mut locs = locs.iter().peekable();
    let mut relocs = relocs.iter().peekable();
    for (idx, insn) in insns.iter().enumerate() {
        let mut span = None;
        while let Some((_, s)) = locs.next_if(|(at, _)| *at <= idx) {
            span = Some(s);
        }
        let mut reloc = None;
        while let Some(r) = relocs.next_if(|r| r.insn <= idx) {
            reloc = (r.insn == idx).then_some(r.target);
        }
        if skip {
            skip = false;
            continue;
        }
        if let Some(span) = span {
            let (line, _) = lines.line_col(span.start);
            let source = lines.source();
            let text = &source.text[span.start as usize..span.end as usize];
            let text = text.lines().next().unwrap_or("").trim();
            let _ = writeln!(out, "; {} @ {}:{}", text, source.name, line);
        }
        let text = if insn.is_ld_imm64() {
            skip = true;
            let hi = insns.get(idx + 1).map_or(0, |n| n.imm as u32 as u64);
            let value = (insn.imm as u32 as u64) | (hi << 32);
            match reloc {
                Some(RelocTarget::Map(m)) => format!("r{} = map[{}] ll", insn.dst, compiled.image.maps[m].name),
                Some(RelocTarget::Rodata) => format!("r{} = .rodata+{} ll", insn.dst, value),
                Some(RelocTarget::Bss) => format!("r{} = .bss+{} ll", insn.dst, value),
                Some(RelocTarget::Func(f)) => format!("r{} = func[{}] ll", insn.dst, subprogs[f].name),
                None => format!("r{} = {:#x} ll", insn.dst, value),
            }
        } else {
            disassemble(insn, idx)
        };
        let _ = writeln!(out, "{:5}: {}", idx, text);
    }
    out.push('\n');
}

/// One instruction (not the second slot of an `ld_imm64`); `idx` resolves jumps.
pub fn disassemble(insn: &Insn, idx: usize) -> String {
    let class = insn.class();
    match class {
        BPF_ALU64 | BPF_ALU => {
            let r = if class == BPF_ALU64 { "r" } else { "w" };
            let op = insn.code & 0xf0;
            let src = if insn.code & BPF_X != 0 { format!("{}{}", r, insn.src) } else { format!("{}", insn.imm) };
            match op {
                BPF_MOV => format!("{}{} = {}", r, insn.dst, src),
                BPF_NEG => format!("{}{} = -{}{}", r, insn.dst, r, insn.dst),
                BPF_END => format!("r{} = be{}(r{})", insn.dst, insn.imm, insn.dst),
                _ => format!("{}{} {}= {}", r, insn.dst, alu_symbol(op), src),
            }
        }
        BPF_LDX => format!("r{} = *({} *)(r{} {:+})", insn.dst, size_name(insn.code), insn.src, insn.off),
        BPF_STX if insn.code & 0xe0 == BPF_ATOMIC && insn.imm == BPF_ADD as i32 => {
            format!("lock *({} *)(r{} {:+}) += r{}", size_name(insn.code), insn.dst, insn.off, insn.src)
        }
        BPF_STX => format!("*({} *)(r{} {:+}) = r{}", size_name(insn.code), insn.dst, insn.off, insn.src),
        BPF_ST => format!("*({} *)(r{} {:+}) = {}", size_name(insn.code), insn.dst, insn.off, insn.imm),
        BPF_JMP | BPF_JMP32 => {
            let op = insn.code & 0xf0;
            let target = idx as i64 + 1 + insn.off as i64;
            match op {
                BPF_JA => format!("goto {:+} <{}>", insn.off, target),
                BPF_CALL => match Helper::from_id(insn.imm) {
                    Some(h) => format!("call bpf_{}#{}", h.name(), insn.imm),
                    None => format!("call #{}", insn.imm),
                },
                BPF_EXIT => "exit".to_string(),
                _ => {
                    let src =
                        if insn.code & BPF_X != 0 { format!("r{}", insn.src) } else { format!("{:#x}", insn.imm) };
                    format!("if r{} {} {} goto {:+} <{}>", insn.dst, jump_symbol(op), src, insn.off, target)
                }
            }
        }
        _ => format!("(unknown {:#04x})", insn.code),
    }
}

fn alu_symbol(op: u8) -> &'static str {
    match op {
        BPF_ADD => "+",
        BPF_SUB => "-",
        BPF_MUL => "*",
        BPF_DIV => "/",
        BPF_OR => "|",
        BPF_AND => "&",
        BPF_LSH => "<<",
        BPF_RSH => ">>",
        BPF_MOD => "%",
        BPF_XOR => "^",
        BPF_ARSH => "s>>",
        _ => "?",
    }
}

fn jump_symbol(op: u8) -> &'static str {
    match op {
        BPF_JEQ => "==",
        BPF_JGT => ">",
        BPF_JGE => ">=",
        BPF_JSET => "&",
        BPF_JNE => "!=",
        BPF_JSGT => "s>",
        BPF_JSGE => "s>=",
        BPF_JLT => "<",
        BPF_JLE => "<=",
        BPF_JSLT => "s<",
        BPF_JSLE => "s<=",
        _ => "?",
    }
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        BPF_B => "u8",
        BPF_H => "u16",
        BPF_W => "u32",
        _ => "u64",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_the_verifier_log() {
        assert_eq!(disassemble(&ldx(BPF_DW, R1, R6, 112), 0), "r1 = *(u64 *)(r6 +112)");
        assert_eq!(disassemble(&st_imm(BPF_W, R10, -8, 3), 0), "*(u32 *)(r10 -8) = 3");
        assert_eq!(disassemble(&jmp_imm(BPF_JNE, R0, 5, 2), 4), "if r0 != 0x5 goto +2 <7>");
        assert_eq!(disassemble(&call(Helper::RingbufReserve), 0), "call bpf_ringbuf_reserve#131");
        assert_eq!(disassemble(&alu64_imm(BPF_RSH, R0, 32), 0), "r0 >>= 32");
    }
}
