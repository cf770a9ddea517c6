//! Integer and string literals: the grammar accepts their shapes loosely;
//! here they are converted, and bad ones get precise errors.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntLiteralError {
    #[error("invalid integer literal `{0}`")]
    Invalid(String),
    #[error("integer literal `{0}` does not fit in 64 bits")]
    TooBig(String),
}

/// Duration suffixes (bpftrace 0.23+): the literal is that many nanoseconds.
const DURATIONS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Parses an integer literal: decimal, `0x` hex, `0` octal, `1e6`, with `_`
/// separators, optional C suffixes (`u`, `l`, `ul`, `ull`, ...) or a
/// duration suffix (`100ms`, `1s`, `2h`: nanoseconds).
pub fn parse_int(text: &str) -> Result<u64, IntLiteralError> {
    let lower = text.to_ascii_lowercase();
    if !lower.starts_with("0x") {
        // `ns`, `us`, `ms` before `s`: the longest suffix that matches.
        if let Some((digits, scale)) = DURATIONS.iter().find_map(|(suffix, scale)| {
            lower.strip_suffix(suffix).filter(|d| d.ends_with(|c: char| c.is_ascii_digit())).map(|d| (d, *scale))
        }) {
            let n = parse_int(&text[..digits.len()])?;
            return n.checked_mul(scale).ok_or_else(|| IntLiteralError::TooBig(text.to_string()));
        }
    }
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    let body = lower.trim_end_matches(['u', 'l']);
    let body = if body.is_empty() { &lower[..] } else { body };
    let bad = || IntLiteralError::Invalid(text.to_string());
    let too_big = || IntLiteralError::TooBig(text.to_string());
    let radix_value = |digits: &str, radix: u32| -> Result<u64, IntLiteralError> {
        if digits.is_empty() {
            return Err(bad());
        }
        u64::from_str_radix(digits, radix).map_err(|e| match e.kind() {
            std::num::IntErrorKind::PosOverflow => too_big(),
            _ => bad(),
        })
    };
    if let Some(hex) = lower.strip_prefix("0x") {
        // Hex digits include `b`..`f`, so only strip suffixes made of u/l.
        return radix_value(hex.trim_end_matches(['u', 'l']), 16);
    }
    if let Some((mantissa, exp)) = body.split_once('e') {
        let m = radix_value(mantissa, 10)?;
        let e: u32 = exp.parse().map_err(|_| bad())?;
        return 10u64.checked_pow(e).and_then(|p| m.checked_mul(p)).ok_or_else(too_big);
    }
    if body.len() > 1 && body.starts_with('0') {
        return radix_value(&body[1..], 8);
    }
    radix_value(body, 10)
}

/// Processes the escapes of a string literal's body. On error returns the
/// message and the byte range (within `body`) of the bad escape.
pub fn unescape(body: &str) -> Result<Vec<u8>, (String, usize, usize)> {
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            // A byte that was not UTF-8 in the script is that byte again.
            let c = body[i..].chars().next().unwrap_or_default();
            match crate::raw_text::raw_byte(c) {
                Some(b) => out.push(b),
                None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
            i += c.len_utf8();
            continue;
        }
        let Some(&c) = bytes.get(i + 1) else {
            return Err(("unterminated escape sequence".into(), i, i + 1));
        };
        let (value, len) = match c {
            b'n' => (b'\n', 2),
            b't' => (b'\t', 2),
            b'r' => (b'\r', 2),
            b'"' => (b'"', 2),
            b'\\' => (b'\\', 2),
            b'\'' => (b'\'', 2),
            b'a' => (7, 2),
            b'b' => (8, 2),
            b'f' => (12, 2),
            b'v' => (11, 2),
            b'e' => (27, 2),
            b'0'..=b'7' => {
                let digits: Vec<u8> =
                    bytes[i + 1..].iter().take(3).take_while(|d| (b'0'..=b'7').contains(d)).copied().collect();
                let v = digits.iter().fold(0u32, |acc, d| acc * 8 + (d - b'0') as u32);
                if v > 255 {
                    return Err((
                        format!("octal escape `\\{}` is out of range", String::from_utf8_lossy(&digits)),
                        i,
                        i + 1 + digits.len(),
                    ));
                }
                (v as u8, 1 + digits.len())
            }
            b'x' => {
                let digits: Vec<u8> =
                    bytes[i + 2..].iter().take(2).take_while(|d| d.is_ascii_hexdigit()).copied().collect();
                if digits.is_empty() {
                    return Err(("`\\x` needs hexadecimal digits".into(), i, i + 2));
                }
                let v = u8::from_str_radix(std::str::from_utf8(&digits).unwrap_or("0"), 16).unwrap_or(0);
                (v, 2 + digits.len())
            }
            other => {
                let ch = body[i + 1..].chars().next().unwrap_or(other as char);
                return Err((format!("unknown escape sequence `\\{}`", ch), i, i + 1 + ch.len_utf8()));
            }
        };
        out.push(value);
        i += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_int("42"), Ok(42));
        assert_eq!(parse_int("0x1F"), Ok(31));
        assert_eq!(parse_int("0xfeedbeef"), Ok(0xfeedbeef));
        assert_eq!(parse_int("0755"), Ok(0o755));
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("1e6"), Ok(1_000_000));
        assert_eq!(parse_int("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_int("10ul"), Ok(10));
        assert_eq!(parse_int("18446744073709551615"), Ok(u64::MAX));
        assert!(matches!(parse_int("18446744073709551616"), Err(IntLiteralError::TooBig(_))));
        assert!(matches!(parse_int("08"), Err(IntLiteralError::Invalid(_))));
        assert!(matches!(parse_int("12abc"), Err(IntLiteralError::Invalid(_))));
    }

    #[test]
    fn durations_are_nanoseconds() {
        assert_eq!(parse_int("1s"), Ok(1_000_000_000));
        assert_eq!(parse_int("100ms"), Ok(100_000_000));
        assert_eq!(parse_int("5us"), Ok(5_000));
        assert_eq!(parse_int("7ns"), Ok(7));
        assert_eq!(parse_int("2m"), Ok(120_000_000_000));
        assert_eq!(parse_int("1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_int("1d"), Ok(86_400_000_000_000));
        assert_eq!(parse_int("1_000ms"), Ok(1_000_000_000));
        assert_eq!(parse_int("0x1d"), Ok(29));
        assert!(matches!(parse_int("300000d"), Err(IntLiteralError::TooBig(_))));
        assert!(matches!(parse_int("1ks"), Err(IntLiteralError::Invalid(_))));
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r#"a\n\t\"\\\x41\101\0"#).unwrap(), b"a\n\t\"\\AA\0".to_vec());
        let (msg, start, end) = unescape(r"ab\qc").unwrap_err();
        assert_eq!((msg.as_str(), start, end), ("unknown escape sequence `\\q`", 2, 4));
    }
}
