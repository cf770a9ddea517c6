//! bpftrace's `-f json` output, as v0.26 writes it: one JSON object per line.

use super::hist;
use super::text::{key_text, value_text};
use super::value::{json_number as number, sorted, MapEntry, MapValue, Value};
use super::{Message, Output, ProgramMessage};
use std::io::{self, Write};

pub struct JsonOutput<W: Write> {
    out: W,
}

impl<W: Write> JsonOutput<W> {
    pub fn new(out: W) -> JsonOutput<W> {
        JsonOutput { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// JSON string escaping exactly as bpftrace does it.
pub fn escape(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn value_json(v: &Value) -> String {
    match v {
        Value::Int(i) => number(*i as i128),
        Value::UInt(u) | Value::Pointer(u) => number(*u as i128),
        Value::Bool(b) => b.to_string(),
        // Not by name in JSON, as bpftrace keeps it for the programs that
        // read its output (only `printf("%s")` asks for the name).
        Value::Enum { bits, signed: true, .. } => number(*bits as i64 as i128),
        Value::Enum { bits, .. } => number(*bits as i128),
        Value::Str(s) => format!("\"{}\"", escape(s)),
        Value::Stack(_) => format!("\"{}\"", escape(value_text(v).as_bytes())),
        // The bytes, as C `char`s (signed).
        Value::Buffer(b) => format!("[{}]", b.iter().map(|c| (*c as i8).to_string()).collect::<Vec<_>>().join(",")),
        // N.B. arrays are unspaced, objects spaced.
        Value::Tuple(items) | Value::Array(items) => {
            format!("[{}]", items.iter().map(value_json).collect::<Vec<_>>().join(","))
        }
        Value::Record(fields) => object(fields.iter().map(|(n, v)| (n.clone(), value_json(v)))),
        Value::None => "null".into(),
    }
}

/// `{"k": v, "k2": v2}`
fn object(items: impl Iterator<Item = (String, String)>) -> String {
    let items: Vec<String> = items.map(|(k, v)| format!("\"{}\": {}", escape(k.as_bytes()), v)).collect();
    format!("{{{}}}", items.join(", "))
}

fn map_value_json(v: &MapValue) -> String {
    match v {
        MapValue::Count(n) => number(*n as i128),
        MapValue::Value(v) | MapValue::Sum(v) | MapValue::Min(v) | MapValue::Max(v) => value_json(v),
        MapValue::Avg(average) => number(*average as i128),
        MapValue::Stats { count, average, total } => object(
            [
                ("count", number(*count as i128)),
                ("average", number(*average as i128)),
                ("total", number(*total as i128)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
        ),
        MapValue::Hist(counts) => hist::log2_json(counts, 1),
        MapValue::Lhist { counts, min, max, step } => hist::linear_json(counts, *min, *max, *step),
        MapValue::TSeries { rows, .. } => super::tseries::json(rows),
    }
}

/// The message type bpftrace gives a map of this kind of value.
fn map_message_type(v: &MapValue) -> &'static str {
    match v {
        MapValue::Hist(_) | MapValue::Lhist { .. } => "hist",
        MapValue::Avg(_) | MapValue::Stats { .. } => "stats",
        MapValue::TSeries { .. } => "tseries",
        _ => "map",
    }
}

/// A key as its text (enums by name), without the parentheses of a tuple
/// and without spaces: `"1,a"`.
fn key_json(key: &[Value]) -> String {
    let text: String = key_text(key).chars().filter(|c| *c != ' ').collect();
    format!("\"{}\"", escape(text.as_bytes()))
}

impl<W: Write> Output for JsonOutput<W> {
    fn attached_probes(&mut self, n: usize) -> io::Result<()> {
        writeln!(self.out, "{{\"type\": \"attached_probes\", \"count\": {n}, \"data\": {{\"probes\": {n}}}}}")
    }

    fn message(&mut self, kind: Message, text: &[u8], _newline: bool) -> io::Result<()> {
        writeln!(self.out, "{{\"type\": \"{}\", \"data\": \"{}\"}}", kind.name(), escape(text))
    }

    fn map(&mut self, name: &str, entries: &[MapEntry], keyed: bool) -> io::Result<()> {
        // bpftrace prints nothing for an empty map in JSON.
        if entries.is_empty() {
            return Ok(());
        }
        let sorted = sorted(entries);
        let kind = map_message_type(&sorted[0].value);
        write!(self.out, "{{\"type\": \"{}\", \"data\": {{\"{}\": ", kind, escape(name.as_bytes()))?;
        if keyed {
            self.out.write_all(b"{")?;
        }
        for (i, e) in sorted.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b", ")?;
            }
            if keyed {
                write!(self.out, "{}: ", key_json(&e.key))?;
            }
            self.out.write_all(map_value_json(&e.value).as_bytes())?;
        }
        if keyed {
            self.out.write_all(b"}")?;
        }
        self.out.write_all(b"}}\n")
    }

    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    fn value(&mut self, v: &Value) -> io::Result<()> {
        writeln!(self.out, "{{\"type\": \"value\", \"data\": {}}}", value_json(v))
    }

    fn helper_error(&mut self, helper: &str, retcode: i64, file: &str, line: usize, col: usize) -> io::Result<()> {
        let msg = super::error_reason(&io::Error::from_raw_os_error(retcode.unsigned_abs() as i32));
        writeln!(
            self.out,
            "{{\"type\": \"helper_error\", \"msg\": \"{}\", \"helper\": \"{}\", \"retcode\": {}, \"filename\": \"{}\", \"line\": {}, \"col\": {}}}",
            escape(msg.as_bytes()),
            helper,
            retcode,
            escape(file.as_bytes()),
            line,
            col
        )
    }

    fn runtime_warning(&mut self, msg: &str, file: &str, line: usize, col: usize) -> io::Result<()> {
        writeln!(
            self.out,
            "{{\"type\": \"runtime_error\", \"msg\": \"{}\", \"filename\": \"{}\", \"line\": {}, \"col\": {}}}",
            escape(msg.as_bytes()),
            escape(file.as_bytes()),
            line,
            col
        )
    }

    fn program_message(&mut self, m: ProgramMessage<'_>) -> io::Result<()> {
        writeln!(
            self.out,
            "{{\"type\": \"{}\", \"msg\": \"{}\", \"filename\": \"{}\", \"line\": {}, \"col\": {}}}",
            if m.error { "errorf" } else { "warnf" },
            escape(m.text),
            escape(m.at.file.as_bytes()),
            m.at.line,
            m.at.col
        )
    }

    fn lost_events(&mut self, n: u64) -> io::Result<()> {
        writeln!(self.out, "{{\"type\": \"lost_events\", \"count\": {n}, \"data\": {{\"events\": {n}}}}}")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: Vec<Value>, value: MapValue) -> MapEntry {
        MapEntry { key, value }
    }

    // As bpftrace v0.26.1 -f json prints: begin { printf("a\"b\\c\t\n");
    //   @b[1, "x"] = 5; @b[2,"y"] = 3; @a = 7; @s = "hi\n"; @z[1]=1;
    //   delete(@z, 1); @st = stats(4); @p = (int8 *)0x32; }
    #[test]
    fn json_like_bpftrace() {
        let s = |t: &str| Value::Str(t.as_bytes().to_vec());
        let mut j = JsonOutput::new(Vec::new());
        j.attached_probes(1).unwrap();
        j.message(Message::Printf, b"a\"b\\c\t\n", false).unwrap();
        let maps = vec![
            (
                "@b".to_string(),
                vec![
                    entry(vec![Value::Int(1), s("x")], MapValue::Value(Value::Int(5))),
                    entry(vec![Value::Int(2), s("y")], MapValue::Value(Value::Int(3))),
                ],
                true,
            ),
            ("@a".to_string(), vec![entry(vec![], MapValue::Value(Value::Int(7)))], false),
            ("@s".to_string(), vec![entry(vec![], MapValue::Value(s("hi\n")))], false),
            ("@z".to_string(), vec![], true),
            ("@st".to_string(), vec![entry(vec![], MapValue::Stats { count: 1, average: 4, total: 4 })], false),
            ("@p".to_string(), vec![entry(vec![], MapValue::Value(Value::Pointer(0x32)))], false),
        ];
        j.end().unwrap();
        j.maps_at_exit(&maps).unwrap();
        assert_eq!(
            String::from_utf8(j.into_inner()).unwrap(),
            "{\"type\": \"attached_probes\", \"count\": 1, \"data\": {\"probes\": 1}}\n\
             {\"type\": \"printf\", \"data\": \"a\\\"b\\\\c\\t\\n\"}\n\
             {\"type\": \"map\", \"data\": {\"@a\": 7}}\n\
             {\"type\": \"map\", \"data\": {\"@b\": {\"2,y\": 3, \"1,x\": 5}}}\n\
             {\"type\": \"map\", \"data\": {\"@p\": 50}}\n\
             {\"type\": \"map\", \"data\": {\"@s\": \"hi\\n\"}}\n\
             {\"type\": \"stats\", \"data\": {\"@st\": {\"count\": 1, \"average\": 4, \"total\": 4}}}\n"
        );
    }

    // bpftrace v0.26.1's tests/runtime/json-output: record, tuple_with_struct.
    #[test]
    fn records_and_tuples() {
        let rec = |f: Vec<(&str, Value)>| Value::Record(f.into_iter().map(|(n, v)| (n.to_string(), v)).collect());
        let v = rec(vec![
            ("a", Value::Int(0)),
            ("c", Value::Str(b"str".to_vec())),
            ("d", Value::Tuple(vec![Value::Int(5), Value::Int(6)])),
            ("e", rec(vec![("x", Value::Int(1)), ("f", Value::None)])),
        ]);
        assert_eq!(value_json(&v), "{\"a\": 0, \"c\": \"str\", \"d\": [5,6], \"e\": {\"x\": 1, \"f\": null}}");
        assert_eq!(value_json(&Value::Buffer(vec![b'a', 0xff])), "[97,-1]");
        // Beyond 2^53 a double cannot hold it: a string.
        assert_eq!(value_json(&Value::UInt(u64::MAX)), "\"18446744073709551615\"");
        assert_eq!(value_json(&Value::Int(-5)), "-5");
        // Keys: as text, without the tuple's parentheses or any space.
        assert_eq!(key_json(&[Value::Str(b"a b".to_vec()), Value::Int(2)]), "\"ab,2\"");
    }
}
