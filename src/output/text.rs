//! bpftrace's default text output.

use super::hist;
use super::value::{sorted, MapEntry, MapValue, Value};
use super::{Message, Output, ProgramMessage};
use std::io::{self, Write};

pub struct TextOutput<W: Write> {
    out: W,
}

impl<W: Write> TextOutput<W> {
    pub fn new(out: W) -> TextOutput<W> {
        TextOutput { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A key value inside `@m[...]`: integers print signed (as bpftrace reads
/// them), strings raw.
fn key_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => (*u as i64).to_string(),
        // As a value, as bpftrace v0.26 prints them (0.17: `@s[{.m=2,.n=3}]`).
        Value::Record(fields) => format!(
            "{{ {} }}",
            fields.iter().map(|(n, v)| format!(".{} = {}", n, key_text(v))).collect::<Vec<_>>().join(", ")
        ),
        Value::Array(items) => format!("[{}]", items.iter().map(key_text).collect::<Vec<_>>().join(",")),
        other => value_text(other),
    }
}

/// `Bad address (-14)` for a negative error return, else the number.
pub fn errno_text(retcode: i64) -> String {
    if retcode < 0 {
        format!("{} ({})", super::error_reason(&io::Error::from_raw_os_error((-retcode) as i32)), retcode)
    } else {
        retcode.to_string()
    }
}

/// A value as `print()` and map printing show it.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Enum { bits, signed, name } => Value::enum_text(*bits, *signed, name.as_deref()),
        Value::Str(s) => String::from_utf8_lossy(s).into_owned(),
        Value::Buffer(b) => String::from_utf8_lossy(&super::printf::escape_buffer(b, None)).into_owned(),
        Value::Tuple(items) => format!("({})", items.iter().map(value_text).collect::<Vec<_>>().join(", ")),
        Value::Array(items) => format!("[{}]", items.iter().map(value_text).collect::<Vec<_>>().join(",")),
        Value::Record(fields) => format!(
            "{{ {} }}",
            fields.iter().map(|(n, v)| format!(".{} = {}", n, value_text(v))).collect::<Vec<_>>().join(", ")
        ),
        Value::Stack(s) => super::stack::text(s),
        Value::None => String::new(),
    }
}

/// What follows `@name[key]: `; histograms start on the next line.
fn map_value_text(v: &MapValue) -> String {
    match v {
        MapValue::Count(n) => n.to_string(),
        MapValue::Value(v) | MapValue::Sum(v) | MapValue::Min(v) | MapValue::Max(v) => value_text(v),
        MapValue::Avg { count, total } => MapValue::average(*count, *total).to_string(),
        MapValue::Stats { count, total } => {
            format!("count {}, average {}, total {}", count, MapValue::average(*count, *total), total)
        }
        MapValue::Hist(counts) => format!("\n{}", hist::log2_text(counts, 1)),
        MapValue::Lhist { counts, min, max, step } => format!("\n{}", hist::linear_text(counts, *min, *max, *step)),
        MapValue::TSeries { rows, .. } => super::tseries::text(rows),
    }
}

/// `@name[k1, k2]: value` lines of one map, each ended by a newline,
/// formatted into a buffer written out in 64 KiB pieces.
fn write_map(out: &mut impl Write, name: &str, entries: &[MapEntry], keyed: bool) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    for e in sorted(entries) {
        buf.extend_from_slice(name.as_bytes());
        if keyed {
            buf.push(b'[');
            for (i, k) in e.key.iter().enumerate() {
                if i > 0 {
                    buf.extend_from_slice(b", ");
                }
                match k {
                    Value::Int(n) => decimal(&mut buf, *n),
                    Value::UInt(n) => decimal(&mut buf, *n as i64),
                    other => buf.extend_from_slice(key_text(other).as_bytes()),
                }
            }
            buf.push(b']');
        }
        match &e.value {
            // The graph starts on the next line; a blank line follows it.
            MapValue::TSeries { .. } => write!(buf, ":\n{}", map_value_text(&e.value))?,
            MapValue::Count(n) => write!(buf, ": {}", n)?,
            MapValue::Value(Value::Int(n)) | MapValue::Sum(Value::Int(n)) => {
                buf.extend_from_slice(b": ");
                decimal(&mut buf, *n)
            }
            other => write!(buf, ": {}", map_value_text(other))?,
        }
        buf.push(b'\n');
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}

/// A signed integer in decimal.
fn decimal(buf: &mut Vec<u8>, n: i64) {
    if n < 0 {
        buf.push(b'-');
    }
    let mut v = n.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

impl<W: Write> Output for TextOutput<W> {
    fn attached_probes(&mut self, n: usize) -> io::Result<()> {
        writeln!(self.out, "Attaching {} probe{}...", n, if n == 1 { "" } else { "s" })
    }

    fn message(&mut self, _kind: Message, text: &[u8], newline: bool) -> io::Result<()> {
        self.out.write_all(text)?;
        if newline {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn map(&mut self, name: &str, entries: &[MapEntry], keyed: bool) -> io::Result<()> {
        // bpftrace ends every printed map with a newline, so an empty map
        // shows as an empty line; avg and stats maps get one more.
        if entries.is_empty() {
            writeln!(self.out)?;
        }
        write_map(&mut self.out, name, entries, keyed)?;
        if entries.first().is_some_and(|e| matches!(e.value, MapValue::Avg { .. } | MapValue::Stats { .. })) {
            writeln!(self.out)?;
        }
        Ok(())
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    fn value(&mut self, v: &Value) -> io::Result<()> {
        writeln!(self.out, "{}", value_text(v))
    }

    fn helper_error(&mut self, helper: &str, retcode: i64, file: &str, line: usize, col: usize) -> io::Result<()> {
        writeln!(self.out, "{}:{}:{}: WARNING: Failed to {}: {}", file, line, col, helper, errno_text(retcode))
    }

    fn runtime_warning(&mut self, msg: &str, file: &str, line: usize, col: usize) -> io::Result<()> {
        writeln!(self.out, "{}:{}:{}: WARNING: {}", file, line, col, msg)
    }

    fn program_message(&mut self, m: ProgramMessage<'_>) -> io::Result<()> {
        let level = if m.error { "ERROR" } else { "WARNING" };
        // After what the program printed before it.
        self.out.flush()?;
        let text = String::from_utf8_lossy(m.text);
        let mut lines = format!("{}: {}: {}", m.at.location, level, text.strip_suffix('\n').unwrap_or(&text));
        for place in m.expanded_from {
            lines.push_str(&format!("\n{}: {}: expanded from", place.location, level));
            for l in &place.context {
                lines.push('\n');
                lines.push_str(l);
            }
        }
        super::sink::to_stderr(&lines);
        Ok(())
    }

    fn lost_events(&mut self, n: u64) -> io::Result<()> {
        writeln!(self.out, "Lost {} events", n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit_text(maps: &[(String, Vec<MapEntry>, bool)]) -> String {
        let mut t = TextOutput::new(Vec::new());
        t.maps_at_exit(maps).unwrap();
        String::from_utf8(t.into_inner()).unwrap()
    }

    fn entry(key: Vec<Value>, value: MapValue) -> MapEntry {
        MapEntry { key, value }
    }

    // From bpftrace 0.17: BEGIN { @b[1] = 5; @b[2] = 3; @a = 7; @c[-1, "x"] = count();
    //   @s = "hello"; @z[1]=1; delete(@z[1]); exit(); }
    #[test]
    fn maps_at_exit_like_bpftrace() {
        let s = |t: &str| Value::Str(t.as_bytes().to_vec());
        let maps = vec![
            (
                "@b".to_string(),
                vec![
                    entry(vec![Value::Int(1)], MapValue::Value(Value::Int(5))),
                    entry(vec![Value::Int(2)], MapValue::Value(Value::Int(3))),
                ],
                true,
            ),
            ("@a".to_string(), vec![entry(vec![], MapValue::Value(Value::Int(7)))], false),
            ("@c".to_string(), vec![entry(vec![Value::Int(-1), s("x")], MapValue::Count(1))], true),
            ("@s".to_string(), vec![entry(vec![], MapValue::Value(s("hello")))], false),
            ("@z".to_string(), vec![], true),
        ];
        assert_eq!(exit_text(&maps), "\n\n@a: 7\n@b[2]: 3\n@b[1]: 5\n@c[-1, x]: 1\n@s: hello\n\n");
    }

    #[test]
    fn attaching_line() {
        let mut t = TextOutput::new(Vec::new());
        t.attached_probes(1).unwrap();
        t.attached_probes(3).unwrap();
        assert_eq!(t.into_inner(), b"Attaching 1 probe...\nAttaching 3 probes...\n");
    }
}
