//! Program text and arguments that may hold bytes that are not UTF-8.
//!
//! bpftrace reads scripts, `-e` and positional parameters as bytes: a
//! Latin-1 `"é"` in a string literal is printed as the byte it is, and so is
//! `str($1)` of such an argument. rtrace's pipeline works on `String` (pest
//! parses `&str`), so each byte of an invalid UTF-8 sequence is kept as one
//! private-use character, U+10FF00 + byte. String literals and `str($N)`
//! turn it back into the byte; anywhere else in a program it is a syntax
//! error that points at it. (A script that really contains U+10FF80 to
//! U+10FFFF, the last private-use characters of plane 16, reads them as
//! those bytes.)

use std::borrow::Cow;
use std::ffi::OsString;

/// Where the stand-ins of bytes 0x80..=0xFF start (bytes below 0x80 are
/// always valid UTF-8).
const BASE: u32 = 0x10FF00;

/// `bytes` as text, each byte of an invalid sequence kept as its stand-in.
pub fn from_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, bad) = rest.split_at(e.valid_up_to());
                out.push_str(&String::from_utf8_lossy(valid));
                let n = e.error_len().unwrap_or(bad.len());
                out.extend(bad[..n].iter().map(|&b| stand_in(b)));
                rest = &bad[n..];
            }
        }
    }
}

/// A command-line argument as text (see `from_bytes`).
pub fn from_os(arg: OsString) -> String {
    use std::os::unix::ffi::OsStringExt;
    match arg.into_string() {
        Ok(text) => text,
        Err(raw) => from_bytes(&raw.into_vec()),
    }
}

/// The bytes `text` stands for: stand-ins become their bytes again.
pub fn to_bytes(text: &str) -> Vec<u8> {
    if !text.chars().any(|c| raw_byte(c).is_some()) {
        return text.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match raw_byte(c) {
            Some(b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

/// The byte `c` stands for, if it is a stand-in.
pub fn raw_byte(c: char) -> Option<u8> {
    let v = c as u32;
    (BASE + 0x80..=BASE + 0xFF).contains(&v).then(|| (v - BASE) as u8)
}

/// `text` for people: each stand-in shown as U+FFFD, one column like the byte.
pub fn shown(text: &str) -> Cow<'_, str> {
    if text.chars().any(|c| raw_byte(c).is_some()) {
        Cow::Owned(text.chars().map(|c| if raw_byte(c).is_some() { char::REPLACEMENT_CHARACTER } else { c }).collect())
    } else {
        Cow::Borrowed(text)
    }
}

fn stand_in(b: u8) -> char {
    char::from_u32(BASE + b as u32).unwrap_or(char::REPLACEMENT_CHARACTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_bytes_round_trip() {
        let raw = b"a\xffb\xc3(\xe2\x82c\xc3\xa9".to_vec();
        let text = from_bytes(&raw);
        assert_eq!(text.chars().count(), 9);
        assert!(text.ends_with("cé"));
        assert_eq!(to_bytes(&text), raw);
        assert_eq!(shown(&text), "a\u{fffd}b\u{fffd}(\u{fffd}\u{fffd}cé");
        assert_eq!(raw_byte(text.chars().nth(1).unwrap()), Some(0xff));
    }

    #[test]
    fn valid_text_is_unchanged() {
        assert_eq!(from_bytes("BEGIN { printf(\"é\\n\"); }".as_bytes()), "BEGIN { printf(\"é\\n\"); }");
        assert_eq!(to_bytes("é"), "é".as_bytes());
        assert!(matches!(shown("é"), Cow::Borrowed(_)));
    }
}
