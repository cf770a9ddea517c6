//! printf formats: parsed once (and checked by the type checker), applied to
//! decoded values in userspace. Integer conversions behave like C's printf
//! on the 64-bit value, as bpftrace's do: without a length modifier `%d`
//! and `%x` see the low 32 bits, `%ld`/`%lld`/`%lx` all 64.

use super::value::Value;

/// What a conversion consumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    Integer,
    String,
    Pointer,
    Buffer,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub minus: bool,
    pub zero: bool,
    pub plus: bool,
    pub space: bool,
    pub alt: bool,
    pub width: Option<usize>,
    pub precision: Option<usize>,
    /// Integer width in bits from the length modifier (8, 16, 32, 64).
    pub bits: u32,
    /// The conversion character (`d`, `u`, `x`, `X`, `o`, `c`, `s`, `p`, `r`;
    /// `g` for `%gr`).
    pub conv: char,
    /// `%rx` / `%rh` variants of `%r`.
    pub buf_style: Option<char>,
    /// Byte range of the whole spec in the format string.
    pub range: (usize, usize),
}

impl Spec {
    pub fn kind(&self) -> ArgKind {
        match self.conv {
            's' => ArgKind::String,
            'p' => ArgKind::Pointer,
            'r' => ArgKind::Buffer,
            _ => ArgKind::Integer,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(Vec<u8>),
    Conv(Spec),
}

/// A malformed conversion and where it is in the format string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub message: String,
    pub range: (usize, usize),
}

/// `fmt` may hold `raw_text` stand-ins: its text pieces get their bytes back.
pub fn parse_format(fmt: &str) -> Result<Vec<Piece>, FormatError> {
    let b = fmt.as_bytes();
    let mut pieces = Vec::new();
    let mut text = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            text.push(b[i]);
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'%') {
            text.push(b'%');
            i += 2;
            continue;
        }
        let start = i;
        i += 1;
        let mut spec = Spec {
            minus: false,
            zero: false,
            plus: false,
            space: false,
            alt: false,
            width: None,
            precision: None,
            bits: 32,
            conv: ' ',
            buf_style: None,
            range: (start, start),
        };
        while let Some(&c) = b.get(i) {
            match c {
                b'-' => spec.minus = true,
                b'0' => spec.zero = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'#' => spec.alt = true,
                _ => break,
            }
            i += 1;
        }
        spec.width = digits(b, &mut i);
        if b.get(i) == Some(&b'.') {
            i += 1;
            spec.precision = Some(digits(b, &mut i).unwrap_or(0));
        }
        let len_start = i;
        while i < b.len() && b"hlljzt".contains(&b[i]) {
            i += 1;
        }
        spec.bits = match &fmt[len_start..i] {
            "" => 32,
            "hh" => 8,
            "h" => 16,
            "l" | "ll" | "j" | "z" | "t" => 64,
            other => {
                return Err(FormatError { message: format!("invalid length modifier `{}`", other), range: (start, i) })
            }
        };
        let Some(&c) = b.get(i) else {
            return Err(FormatError {
                message: "the format ends in the middle of a conversion".into(),
                range: (start, i),
            });
        };
        i += 1;
        match c {
            b'd' | b'i' | b'u' | b'x' | b'X' | b'o' | b'c' | b's' | b'p' => spec.conv = c as char,
            // `%gr`: GFP flags by name (bpftrace v0.26).
            b'g' if b.get(i) == Some(&b'r') => {
                spec.conv = 'g';
                i += 1;
            }
            b'r' => {
                spec.conv = 'r';
                if let Some(&s @ (b'x' | b'h')) = b.get(i) {
                    spec.buf_style = Some(s as char);
                    i += 1;
                }
            }
            _ => {
                let ch = fmt[i - 1..].chars().next().unwrap_or('?');
                return Err(FormatError {
                    message: format!("unknown conversion `%{}`", ch),
                    range: (start, i - 1 + ch.len_utf8()),
                });
            }
        }
        spec.range = (start, i);
        if !text.is_empty() {
            pieces.push(text_piece(std::mem::take(&mut text)));
        }
        pieces.push(Piece::Conv(spec));
    }
    if !text.is_empty() {
        pieces.push(text_piece(text));
    }
    Ok(pieces)
}

/// Literal text of a format (split at ASCII `%`, so still UTF-8), with the
/// bytes its `raw_text` stand-ins stand for.
fn text_piece(text: Vec<u8>) -> Piece {
    match String::from_utf8(text) {
        Ok(t) => Piece::Text(crate::raw_text::to_bytes(&t)),
        Err(e) => Piece::Text(e.into_bytes()),
    }
}

fn digits(b: &[u8], i: &mut usize) -> Option<usize> {
    let start = *i;
    while *i < b.len() && b[*i].is_ascii_digit() {
        *i += 1;
    }
    std::str::from_utf8(&b[start..*i]).ok()?.parse().ok()
}

/// The conversions of a parsed format, in argument order.
pub fn conversions(pieces: &[Piece]) -> impl Iterator<Item = &Spec> {
    pieces.iter().filter_map(|p| match p {
        Piece::Conv(s) => Some(s),
        Piece::Text(_) => None,
    })
}

/// Formats `args` (one per conversion) like C's printf would.
pub fn format(pieces: &[Piece], args: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut args = args.iter();
    for p in pieces {
        match p {
            Piece::Text(t) => out.extend_from_slice(t),
            Piece::Conv(spec) => {
                let arg = args.next().unwrap_or(&Value::None);
                convert(&mut out, spec, arg);
            }
        }
    }
    out
}

/// Appends one conversion of `arg` to `out`.
pub fn convert(out: &mut Vec<u8>, spec: &Spec, arg: &Value) {
    let body: Vec<u8> = match spec.conv {
        's' => {
            let bytes = match arg {
                Value::Str(s) | Value::Buffer(s) => s.clone(),
                Value::Enum { bits, signed, name } => Value::enum_text(*bits, *signed, name.as_deref()).into_bytes(),
                Value::Stack(s) => super::stack::text(s).into_bytes(),
                // As `print()` shows them (bpftrace v0.26): `0x...`, `true`.
                Value::Pointer(p) => format!("0x{:x}", p).into_bytes(),
                Value::Bool(b) => b.to_string().into_bytes(),
                other => other.bits().to_string().into_bytes(),
            };
            match spec.precision {
                Some(p) if p < bytes.len() => bytes[..p].to_vec(),
                _ => bytes,
            }
        }
        'c' => vec![arg.bits() as u8],
        'g' => super::names::gfp_flags(arg.bits()).into_bytes(),
        'r' => match arg {
            Value::Buffer(b) | Value::Str(b) => escape_buffer(b, spec.buf_style),
            _ => vec![],
        },
        'p' => {
            let v = arg.bits();
            // glibc prints a null pointer as "(nil)".
            if v == 0 {
                b"(nil)".to_vec()
            } else {
                format!("0x{:x}", v).into_bytes()
            }
        }
        _ => return integer(out, spec, arg.bits()),
    };
    pad(out, spec, &body);
}

/// `%d %u %x %X %o` on the value truncated to the conversion's width.
fn integer(out: &mut Vec<u8>, spec: &Spec, bits: u64) {
    let mask = if spec.bits == 64 { u64::MAX } else { (1u64 << spec.bits) - 1 };
    let unsigned = bits & mask;
    let signed = if spec.bits == 64 {
        unsigned as i64
    } else {
        let shift = 64 - spec.bits;
        ((unsigned << shift) as i64) >> shift
    };
    let (negative, mut digits) = match spec.conv {
        'd' | 'i' => (signed < 0, signed.unsigned_abs().to_string()),
        'u' => (false, unsigned.to_string()),
        'x' => (false, format!("{:x}", unsigned)),
        'X' => (false, format!("{:X}", unsigned)),
        _ => (false, format!("{:o}", unsigned)),
    };
    if let Some(p) = spec.precision {
        if digits.len() < p {
            digits = format!("{}{}", "0".repeat(p - digits.len()), digits);
        }
        if p == 0 && unsigned == 0 {
            digits.clear();
        }
    }
    let mut prefix = String::new();
    if negative {
        prefix.push('-');
    } else if matches!(spec.conv, 'd' | 'i') && spec.plus {
        prefix.push('+');
    } else if matches!(spec.conv, 'd' | 'i') && spec.space {
        prefix.push(' ');
    }
    if spec.alt && unsigned != 0 {
        match spec.conv {
            'x' => prefix.push_str("0x"),
            'X' => prefix.push_str("0X"),
            'o' if !digits.starts_with('0') => prefix.push('0'),
            _ => {}
        }
    }
    let zero_pad = spec.zero && !spec.minus && spec.precision.is_none();
    let width = spec.width.unwrap_or(0);
    let len = prefix.len() + digits.len();
    if zero_pad && len < width {
        out.extend_from_slice(prefix.as_bytes());
        out.extend(std::iter::repeat_n(b'0', width - len));
        out.extend_from_slice(digits.as_bytes());
    } else {
        pad(out, spec, format!("{}{}", prefix, digits).as_bytes());
    }
}

fn pad(out: &mut Vec<u8>, spec: &Spec, body: &[u8]) {
    let width = spec.width.unwrap_or(0);
    let fill = width.saturating_sub(body.len());
    if spec.minus {
        out.extend_from_slice(body);
        out.extend(std::iter::repeat_n(b' ', fill));
    } else {
        out.extend(std::iter::repeat_n(b' ', fill));
        out.extend_from_slice(body);
    }
}

/// `%r`: printable bytes as they are, others as `\xNN`; `%rx` all as `\xNN`;
/// `%rh` as space-separated hex.
/// `%r` of a buffer: printable ASCII as is, other bytes as `\xNN`; `%rx`
/// escapes every byte, `%rh` writes hex pairs separated by spaces.
pub fn escape_buffer(bytes: &[u8], style: Option<char>) -> Vec<u8> {
    match style {
        Some('h') => bytes.iter().map(|b| format!("{:02x}", b)).collect::<Vec<_>>().join(" ").into_bytes(),
        Some('x') => bytes.iter().flat_map(|b| format!("\\x{:02x}", b).into_bytes()).collect(),
        _ => bytes
            .iter()
            .flat_map(|&b| if (0x20..0x7f).contains(&b) { vec![b] } else { format!("\\x{:02x}", b).into_bytes() })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: &[Value]) -> String {
        String::from_utf8(format(&parse_format(fmt).unwrap(), args)).unwrap()
    }

    // Expected strings are what bpftrace 0.17 printed on this machine for the
    // same format and arguments.
    #[test]
    fn integers_like_bpftrace() {
        use Value::*;
        assert_eq!(
            f("%d %x %ld %lu|%lx", &[Int(5000000000), Int(1 << 40), Int(5000000000), Int(-1), Int(255)]),
            "705032704 0 5000000000 18446744073709551615|ff"
        );
        assert_eq!(
            f("%d %x %X %o %5x|%-5d|", &[Int(-1), Int(-1), Int(-255), Int(-1), Int(255), Int(3)]),
            "-1 ffffffff FFFFFF01 37777777777    ff|3    |"
        );
        assert_eq!(
            f(
                "[%5d|%-5d|%05d|%x|%X|%o|%c|%u|%lu|%p]",
                &[Int(-42), Int(42), Int(42), Int(255), Int(255), Int(8), Int(65), Int(-1), Int(5), Int(4096)]
            ),
            "[  -42|42   |00042|ff|FF|10|A|4294967295|5|0x1000]"
        );
        assert_eq!(f("%hhd|%hd", &[Int(300), Int(70000)]), "44|4464");
        assert_eq!(f("%lld %llu %i %05d", &[Int(-1), Int(-1), Int(-7), Int(-42)]), "-1 18446744073709551615 -7 -0042");
    }

    #[test]
    fn strings_and_chars() {
        use Value::*;
        let s = |t: &str| Str(t.as_bytes().to_vec());
        assert_eq!(
            f("%s|%10s|%-3s|%.2s|%5.1s|", &[s("bpftrace"), s("x"), s("abcdef"), s("abcdef"), s("xyz")]),
            "bpftrace|         x|abcdef|ab|    x|"
        );
        assert_eq!(f("%c%c|%5c|100%%", &[Int(104), Int(0x69), Int(65)]), "hi|    A|100%");
        assert_eq!(
            f("%r|%rx|%rh", &[Buffer(b"a\x01".to_vec()), Buffer(b"a".to_vec()), Buffer(b"\x01\xff".to_vec())]),
            "a\\x01|\\x61|01 ff"
        );
    }

    #[test]
    fn reports_bad_conversions() {
        assert_eq!(
            parse_format("ab %q").unwrap_err(),
            FormatError { message: "unknown conversion `%q`".into(), range: (3, 5) }
        );
        assert!(parse_format("%").is_err());
        assert_eq!(
            conversions(&parse_format("%d %s %%").unwrap()).map(Spec::kind).collect::<Vec<_>>(),
            vec![ArgKind::Integer, ArgKind::String]
        );
    }
}
