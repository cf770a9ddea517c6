//! bpftrace's default text output, as v0.26 writes it.

use super::hist;
use super::value::{sorted, MapEntry, MapValue, Value};
use super::{Message, Output, ProgramMessage};
use std::io::{self, Write};

pub struct TextOutput<W: Write> {
    out: W,
    /// Where bpftrace v0.26 writes what is not the program's output in text
    /// mode (the `Attached N probes` banner, lost events, runtime warnings):
    /// stderr, or `out` itself (the interactive session).
    err: Option<Box<dyn Write>>,
}

impl<W: Write> TextOutput<W> {
    /// Program output to `out`, messages about the run to stderr.
    pub fn new(out: W) -> TextOutput<W> {
        TextOutput::with_err(out, Box::new(io::stderr()))
    }

    /// Program output to `out`, messages about the run to `err`.
    pub fn with_err(out: W, err: Box<dyn Write>) -> TextOutput<W> {
        TextOutput { out, err: Some(err) }
    }

    /// Everything to `out`.
    pub fn merged(out: W) -> TextOutput<W> {
        TextOutput { out, err: None }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// A message about the run (not the program's output).
    fn say(&mut self, text: &str) -> io::Result<()> {
        match &mut self.err {
            Some(err) => {
                // What the program printed comes first (a failed write
                // there is the output's own error, not this message's).
                let _ = self.out.flush();
                err.write_all(text.as_bytes())?;
                err.flush()
            }
            None => self.out.write_all(text.as_bytes()),
        }
    }
}

/// The text of a map key: a key of several values prints as their tuple
/// without its parentheses, as does a key that is itself a tuple (bpftrace
/// v0.26 strips the outer parentheses of whatever the key prints as).
pub fn key_text(key: &[Value]) -> String {
    let text = match key {
        [one] => value_text(one),
        many => value_text(&Value::Tuple(many.to_vec())),
    };
    match text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        Some(inner) => inner.to_string(),
        None => text,
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

/// A value as `print()` and map printing show it (bpftrace v0.26).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Pointer(p) => format!("0x{:x}", p),
        Value::Bool(b) => b.to_string(),
        Value::Enum { bits, signed, name } => Value::enum_text(*bits, *signed, name.as_deref()),
        Value::Str(s) => String::from_utf8_lossy(s).into_owned(),
        Value::Buffer(b) => String::from_utf8_lossy(&super::printf::escape_buffer(b, None)).into_owned(),
        // N.B. tuples get spaces, arrays do not.
        Value::Tuple(items) => format!("({})", items.iter().map(value_text).collect::<Vec<_>>().join(", ")),
        Value::Array(items) => format!("[{}]", items.iter().map(value_text).collect::<Vec<_>>().join(",")),
        Value::Record(fields) if fields.is_empty() => "{}".to_string(),
        Value::Record(fields) => format!(
            "{{ {} }}",
            fields.iter().map(|(n, v)| format!(".{} = {}", n, value_text(v))).collect::<Vec<_>>().join(", ")
        ),
        Value::Stack(s) => super::stack::text(s),
        // A value rtrace cannot show (a float member).
        Value::None => "null".to_string(),
    }
}

/// A value that fits on the line after `@name[key]: `; histograms do not.
fn inline_text(v: &MapValue) -> Option<String> {
    Some(match v {
        MapValue::Count(n) => n.to_string(),
        MapValue::Value(v) | MapValue::Sum(v) | MapValue::Min(v) | MapValue::Max(v) => value_text(v),
        MapValue::Avg(average) => average.to_string(),
        MapValue::Stats { count, average, total } => {
            format!("{{ .count = {}, .average = {}, .total = {} }}", count, average, total)
        }
        MapValue::Hist(_) | MapValue::Lhist { .. } | MapValue::TSeries { .. } => return None,
    })
}

/// The rows of a histogram or time series value, each ending in a newline.
fn rows_text(v: &MapValue) -> String {
    match v {
        MapValue::Hist(counts) => hist::log2_text(counts, 1),
        MapValue::Lhist { counts, min, max, step } => hist::linear_text(counts, *min, *max, *step),
        MapValue::TSeries { rows, .. } => super::tseries::text(rows),
        _ => String::new(),
    }
}

/// One map as bpftrace v0.26 prints it: `@name: value` for a map without
/// keys, `@name[k1, k2]: value` per entry (sorted) otherwise; a histogram
/// starts on the line after `@name[key]:` and is followed by an empty line.
/// An empty map prints nothing. Formatted into a buffer written out in
/// 64 KiB pieces; integer keys and values take a path without allocation.
fn write_map(out: &mut impl Write, name: &str, entries: &[MapEntry], keyed: bool) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    for e in sorted(entries) {
        buf.extend_from_slice(name.as_bytes());
        if keyed {
            buf.push(b'[');
            if e.key.iter().all(|k| matches!(k, Value::Int(_) | Value::UInt(_))) {
                for (i, k) in e.key.iter().enumerate() {
                    if i > 0 {
                        buf.extend_from_slice(b", ");
                    }
                    match k {
                        Value::Int(n) => decimal(&mut buf, *n),
                        Value::UInt(n) => write!(buf, "{}", n)?,
                        _ => {}
                    }
                }
            } else {
                buf.extend_from_slice(key_text(&e.key).as_bytes());
            }
            buf.push(b']');
        }
        match &e.value {
            MapValue::Count(n) => writeln!(buf, ": {}", n)?,
            MapValue::Value(Value::Int(n)) | MapValue::Sum(Value::Int(n)) => {
                buf.extend_from_slice(b": ");
                decimal(&mut buf, *n);
                buf.push(b'\n');
            }
            other => match inline_text(other) {
                Some(v) => writeln!(buf, ": {}", v)?,
                None => write!(buf, ":\n{}\n", rows_text(other))?,
            },
        }
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
        self.say(&format!("Attached {} probe{}\n", n, if n == 1 { "" } else { "s" }))
    }

    fn message(&mut self, _kind: Message, text: &[u8], newline: bool) -> io::Result<()> {
        self.out.write_all(text)?;
        if newline {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn map(&mut self, name: &str, entries: &[MapEntry], keyed: bool) -> io::Result<()> {
        write_map(&mut self.out, name, entries, keyed)
    }

    fn end(&mut self) -> io::Result<()> {
        self.out.write_all(b"\n\n")
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    fn value(&mut self, v: &Value) -> io::Result<()> {
        writeln!(self.out, "{}", value_text(v))
    }

    fn helper_error(&mut self, helper: &str, retcode: i64, file: &str, line: usize, col: usize) -> io::Result<()> {
        self.say(&format!("{}:{}:{}: WARNING: Failed to {}: {}\n", file, line, col, helper, errno_text(retcode)))
    }

    fn runtime_warning(&mut self, msg: &str, file: &str, line: usize, col: usize) -> io::Result<()> {
        self.say(&format!("{}:{}:{}: WARNING: {}\n", file, line, col, msg))
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
        self.say(&format!("Lost {} events\n", n))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A writer whose bytes the test can still read after handing it over.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn exit_text(maps: &[(String, Vec<MapEntry>, bool)]) -> String {
        let mut t = TextOutput::new(Vec::new());
        t.end().unwrap();
        t.maps_at_exit(maps).unwrap();
        String::from_utf8(t.into_inner()).unwrap()
    }

    fn entry(key: Vec<Value>, value: MapValue) -> MapEntry {
        MapEntry { key, value }
    }

    // As bpftrace v0.26.1 prints: begin { @b[1] = 5; @b[2] = 3; @a = 7;
    //   @c[-1, "x"] = count(); @s = "hello"; @z[1]=1; delete(@z, 1);
    //   @p = (int8 *)0x32; @st = stats(3); @u[18446744073709551615] = 1; }
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
            ("@p".to_string(), vec![entry(vec![], MapValue::Value(Value::Pointer(0x32)))], false),
            ("@st".to_string(), vec![entry(vec![], MapValue::Stats { count: 1, average: 3, total: 3 })], false),
            ("@u".to_string(), vec![entry(vec![Value::UInt(u64::MAX)], MapValue::Value(Value::Int(1)))], true),
        ];
        assert_eq!(
            exit_text(&maps),
            "\n\n@a: 7\n@b[2]: 3\n@b[1]: 5\n@c[-1, x]: 1\n@p: 0x32\n@s: hello\n\
             @st: { .count = 1, .average = 3, .total = 3 }\n@u[18446744073709551615]: 1\n"
        );
    }

    #[test]
    fn keys_lose_the_parentheses_of_their_tuple() {
        let t = |v: Vec<Value>| Value::Tuple(v);
        assert_eq!(key_text(&[Value::Int(1), Value::Str(b"a".to_vec())]), "1, a");
        assert_eq!(key_text(&[t(vec![Value::Int(1), Value::Int(2)])]), "1, 2");
        assert_eq!(key_text(&[t(vec![Value::Int(1), Value::Int(2)]), Value::Int(3)]), "(1, 2), 3");
        assert_eq!(key_text(&[Value::Pointer(255)]), "0xff");
    }

    #[test]
    fn histograms_start_on_the_next_line() {
        let mut counts = vec![0u64; 66];
        counts[3] = 1;
        let mut t = TextOutput::new(Vec::new());
        t.map("@h", &[entry(vec![], MapValue::Hist(counts.clone()))], false).unwrap();
        t.map("@k", &[entry(vec![Value::Int(1)], MapValue::Hist(counts))], true).unwrap();
        let text = String::from_utf8(t.into_inner()).unwrap();
        let row = "[2, 4)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n";
        assert_eq!(text, format!("@h:\n{row}\n@k[1]:\n{row}\n"));
    }

    #[test]
    fn values_print_as_bpftrace_prints_them() {
        let v = Value::Tuple(vec![
            Value::Record(vec![("a".into(), Value::Int(1)), ("f".into(), Value::None)]),
            Value::Array(vec![Value::UInt(1), Value::UInt(2)]),
            Value::Record(vec![]),
            Value::Bool(true),
        ]);
        assert_eq!(value_text(&v), "({ .a = 1, .f = null }, [1,2], {}, true)");
    }

    #[test]
    fn messages_about_the_run_go_to_stderr() {
        let err = Shared::default();
        let mut t = TextOutput::with_err(Vec::new(), Box::new(err.clone()));
        t.attached_probes(1).unwrap();
        t.attached_probes(3).unwrap();
        t.lost_events(2).unwrap();
        assert!(t.into_inner().is_empty());
        assert_eq!(&*err.0.borrow(), b"Attached 1 probe\nAttached 3 probes\nLost 2 events\n");
        let mut merged = TextOutput::merged(Vec::new());
        merged.attached_probes(2).unwrap();
        assert_eq!(merged.into_inner(), b"Attached 2 probes\n");
    }
}
