//! USDT argument specs (`-4@%edi`, `8@-8(%rbp)`, `-4@$5`, `8@[sp, 16]`) as
//! sys/sdt.h writes them into `.note.stapsdt`, parsed into where each argument
//! lives at the probed instruction. Register names become `pt_regs` names.

use super::arch::Arch;

/// One argument of a USDT site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsdtArg {
    /// Width of the value in bytes (1, 2, 4 or 8).
    pub bytes: u8,
    /// A negative size in the spec: the value is sign-extended.
    pub signed: bool,
    pub loc: UsdtLoc,
    /// The spec as written, for listings and errors.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsdtLoc {
    /// A constant (`$5`, or a bare number on aarch64).
    Imm(i64),
    /// The low `bytes` of a register (a `pt_regs` name: `di`, `ax`, `0`).
    Reg(String),
    /// Memory at `base + offset (+ index * scale)`.
    Mem { base: String, offset: i64, index: Option<(String, u8)> },
    /// Memory at a symbol of the binary plus `offset` (`counter+8(%rip)`):
    /// resolved to an `ip`-relative `Mem` once the symbol's address is known.
    Symbol { name: String, offset: i64 },
    /// A form rtrace cannot read (thread-local `%fs:` operands); reading
    /// the argument is an error that quotes the spec.
    Unsupported,
}

/// Parses the space-separated argument specs of one note.
pub fn parse_args(arch: Arch, text: &str) -> Vec<UsdtArg> {
    // aarch64 memory operands contain a space (`[sp, 16]`): rejoin them.
    let mut specs: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match specs.last_mut() {
            Some(last) if last.contains('[') && !last.contains(']') => {
                last.push(' ');
                last.push_str(word);
            }
            _ => specs.push(word.to_string()),
        }
    }
    specs.iter().map(|s| parse_arg(arch, s)).collect()
}

fn parse_arg(arch: Arch, spec: &str) -> UsdtArg {
    let (size, operand) = match spec.split_once('@') {
        Some((n, op)) => (n.parse::<i8>().unwrap_or(0), op),
        None => (8, spec),
    };
    let bytes = size.unsigned_abs();
    let loc = match arch {
        Arch::X86_64 => x86_operand(operand),
        Arch::Aarch64 => aarch64_operand(operand),
    }
    .filter(|_| matches!(bytes, 1 | 2 | 4 | 8))
    .unwrap_or(UsdtLoc::Unsupported);
    UsdtArg { bytes, signed: size < 0, loc, text: spec.to_string() }
}

/// AT&T syntax: `%reg`, `$imm`, `disp(%base)`, `disp(%base,%index,scale)`,
/// `sym+off(%rip)`.
fn x86_operand(op: &str) -> Option<UsdtLoc> {
    if let Some(imm) = op.strip_prefix('$') {
        return parse_i64(imm).map(UsdtLoc::Imm);
    }
    if let Some(reg) = op.strip_prefix('%') {
        return x86_register(reg).map(|r| UsdtLoc::Reg(r.to_string()));
    }
    let (disp, rest) = op.split_once('(')?;
    let inner = rest.strip_suffix(')')?;
    let mut regs = inner.split(',').map(str::trim);
    let base = regs.next()?.strip_prefix('%')?;
    let index = match regs.next() {
        Some(i) => {
            let scale = regs.next().map_or(Some(1), |s| s.parse::<u8>().ok())?;
            Some((x86_register(i.strip_prefix('%')?)?.to_string(), scale))
        }
        None => None,
    };
    if base == "rip" && index.is_none() && !disp.is_empty() && parse_i64(disp).is_none() {
        // `counter+8(%rip)`: the assembler's symbolic form.
        let (name, offset) = match disp.find(['+', '-']) {
            Some(i) if i > 0 => (&disp[..i], parse_i64(&disp[i..])?),
            _ => (disp, 0),
        };
        return Some(UsdtLoc::Symbol { name: name.to_string(), offset });
    }
    let offset = if disp.is_empty() { 0 } else { parse_i64(disp)? };
    Some(UsdtLoc::Mem { base: x86_register(base)?.to_string(), offset, index })
}

/// The `pt_regs` name of any width of an x86_64 general register.
fn x86_register(name: &str) -> Option<&'static str> {
    const NAMES: &[(&str, [&str; 4])] = &[
        ("ax", ["rax", "eax", "ax", "al"]),
        ("bx", ["rbx", "ebx", "bx", "bl"]),
        ("cx", ["rcx", "ecx", "cx", "cl"]),
        ("dx", ["rdx", "edx", "dx", "dl"]),
        ("si", ["rsi", "esi", "si", "sil"]),
        ("di", ["rdi", "edi", "di", "dil"]),
        ("bp", ["rbp", "ebp", "bp", "bpl"]),
        ("sp", ["rsp", "esp", "sp", "spl"]),
        ("ip", ["rip", "eip", "ip", "ip"]),
    ];
    if let Some((reg, _)) = NAMES.iter().find(|(_, forms)| forms.contains(&name)) {
        return Some(reg);
    }
    // r8..r15 with an optional d/w/b suffix.
    const NUMBERED: &[&str] = &["r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
    let stem = name.trim_end_matches(['d', 'w', 'b']);
    NUMBERED.iter().find(|r| **r == stem && name.len() - stem.len() <= 1).copied()
}

/// `xN`/`wN`/`sp`, `[xN]`, `[xN, off]`, or a bare number.
fn aarch64_operand(op: &str) -> Option<UsdtLoc> {
    if let Some(inner) = op.strip_prefix('[').and_then(|o| o.strip_suffix(']')) {
        let mut parts = inner.split(',').map(str::trim);
        let base = aarch64_register(parts.next()?)?;
        let offset = parts.next().map_or(Some(0), |o| parse_i64(o.trim_start_matches('#')))?;
        return Some(UsdtLoc::Mem { base, offset, index: None });
    }
    if let Some(imm) = parse_i64(op.trim_start_matches('#')) {
        return Some(UsdtLoc::Imm(imm));
    }
    aarch64_register(op).map(UsdtLoc::Reg)
}

fn aarch64_register(name: &str) -> Option<String> {
    if name == "sp" {
        return Some("sp".into());
    }
    let n = name.strip_prefix('x').or_else(|| name.strip_prefix('w'))?.parse::<u8>().ok()?;
    (n <= 30).then(|| n.to_string())
}

fn parse_i64(text: &str) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let v = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<u64>().ok()?,
    };
    Some(if neg { (v as i64).wrapping_neg() } else { v as i64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(arch: Arch, s: &str) -> UsdtArg {
        parse_args(arch, s).remove(0)
    }

    #[test]
    fn x86_64_forms() {
        let a = one(Arch::X86_64, "-4@%edi");
        assert_eq!((a.bytes, a.signed, a.loc), (4, true, UsdtLoc::Reg("di".into())));
        assert_eq!(one(Arch::X86_64, "1@%r9b").loc, UsdtLoc::Reg("r9".into()));
        assert_eq!(one(Arch::X86_64, "8@$-12").loc, UsdtLoc::Imm(-12));
        assert_eq!(one(Arch::X86_64, "8@-8(%rbp)").loc, UsdtLoc::Mem { base: "bp".into(), offset: -8, index: None });
        assert_eq!(
            one(Arch::X86_64, "-2@(%rax,%rdx,8)").loc,
            UsdtLoc::Mem { base: "ax".into(), offset: 0, index: Some(("dx".into(), 8)) }
        );
        assert_eq!(one(Arch::X86_64, "4@counter+8(%rip)").loc, UsdtLoc::Symbol { name: "counter".into(), offset: 8 });
        assert_eq!(parse_args(Arch::X86_64, "-4@%edi 8@%rsi").len(), 2);
        assert_eq!(one(Arch::X86_64, "4@%fs:8").loc, UsdtLoc::Unsupported);
        assert_eq!(one(Arch::X86_64, "3@%eax").loc, UsdtLoc::Unsupported);
    }

    #[test]
    fn aarch64_forms() {
        let args = parse_args(Arch::Aarch64, "-4@w1 8@[sp, 16] 8@[x2] -4@5");
        assert_eq!(args[0].loc, UsdtLoc::Reg("1".into()));
        assert_eq!(args[1].loc, UsdtLoc::Mem { base: "sp".into(), offset: 16, index: None });
        assert_eq!(args[2].loc, UsdtLoc::Mem { base: "2".into(), offset: 0, index: None });
        assert_eq!(args[3].loc, UsdtLoc::Imm(5));
    }
}
