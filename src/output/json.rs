//! bpftrace's `-f json` output: one JSON object per line.

use super::hist;
use super::text::value_text;
use super::value::{sorted, MapEntry, MapValue, Value};
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
        Value::Str(_) | Value::Buffer(_) | Value::Stack(_) => format!("\"{}\"", escape(value_text(v).as_bytes())),
        Value::Tuple(items) | Value::Array(items) => {
            format!("[{}]", items.iter().map(value_json).collect::<Vec<_>>().join(","))
        }
        Value::Record(fields) => format!(
            "{{ {} }}",
            fields
                .iter()
                .map(|(n, v)| format!("\"{}\": {}", escape(n.as_bytes()), value_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::None => "null".into(),
        // Not by name in JSON, as bpftrace keeps it for the programs that
        // read its output (only `printf("%s")` asks for the name).
        Value::Enum { bits, signed, .. } => Value::enum_text(*bits, *signed, None),
        other => value_text(other),
    }
}

fn map_value_json(v: &MapValue) -> String {
    match v {
        MapValue::Count(n) => n.to_string(),
        MapValue::Value(v) | MapValue::Sum(v) | MapValue::Min(v) | MapValue::Max(v) => value_json(v),
        MapValue::Avg { count, total } => MapValue::average(*count, *total).to_string(),
        MapValue::Stats { count, total } => format!(
            "{{\"count\": {}, \"average\": {}, \"total\": {}}}",
            count,
            MapValue::average(*count, *total),
            total
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
        MapValue::Avg { .. } | MapValue::Stats { .. } => "stats",
        MapValue::TSeries { .. } => "tseries",
        _ => "map",
    }
}

/// Keys join their values with "," (integers signed, as in text).
fn key_json(key: &[Value]) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|k| match k {
            Value::UInt(u) => (*u as i64).to_string(),
            Value::Enum { .. } => value_json(k),
            // bpftrace v0.26 takes the spaces out of keys (a stack's indentation).
            Value::Stack(_) => value_text(k).replace(' ', ""),
            other => value_text(other),
        })
        .collect();
    format!("\"{}\"", escape(parts.join(",").as_bytes()))
}

impl<W: Write> Output for JsonOutput<W> {
    fn attached_probes(&mut self, n: usize) -> io::Result<()> {
        writeln!(self.out, "{{\"type\": \"attached_probes\", \"data\": {{\"probes\": {}}}}}", n)
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

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    fn value(&mut self, v: &Value) -> io::Result<()> {
        writeln!(self.out, "{{\"type\": \"value\", \"data\": {}}}", value_json(v))
    }

    fn helper_error(&mut self, helper: &str, retcode: i64, _file: &str, line: usize, col: usize) -> io::Result<()> {
        writeln!(
            self.out,
            "{{\"type\": \"helper_error\", \"helper\": \"{}\", \"retcode\": {}, \"line\": {}, \"col\": {}}}",
            helper, retcode, line, col
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
        writeln!(self.out, "{{\"type\": \"lost_events\", \"data\": {{\"events\": {}}}}}", n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // From bpftrace 0.17 -f json: BEGIN { printf("a\"b\\c\t\n"); @b[1, "x"] = 5;
    //   @b[2,"y"] = 3; @a = 7; @s = "hi\n"; @z[1]=1; delete(@z[1]); exit(); }
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
                    MapEntry { key: vec![Value::Int(1), s("x")], value: MapValue::Value(Value::Int(5)) },
                    MapEntry { key: vec![Value::Int(2), s("y")], value: MapValue::Value(Value::Int(3)) },
                ],
                true,
            ),
            ("@a".to_string(), vec![MapEntry { key: vec![], value: MapValue::Value(Value::Int(7)) }], false),
            ("@s".to_string(), vec![MapEntry { key: vec![], value: MapValue::Value(s("hi\n")) }], false),
            ("@z".to_string(), vec![], true),
        ];
        j.maps_at_exit(&maps).unwrap();
        assert_eq!(
            String::from_utf8(j.into_inner()).unwrap(),
            "{\"type\": \"attached_probes\", \"data\": {\"probes\": 1}}\n{\"type\": \"printf\", \"data\": \"a\\\"b\\\\c\\t\\n\"}\n\n\n{\"type\": \"map\", \"data\": {\"@a\": 7}}\n{\"type\": \"map\", \"data\": {\"@b\": {\"2,y\": 3, \"1,x\": 5}}}\n{\"type\": \"map\", \"data\": {\"@s\": \"hi\\n\"}}\n"
        );
    }
}
