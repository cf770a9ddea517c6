//! Stack-keyed maps as folded stacks (`frame;frame;frame count`, root
//! first), the format flame graph tools read: `-f folded` prints them, and
//! `--flamegraph FILE` draws them as an interactive SVG through inferno
//! (the Rust port of Brendan Gregg's flamegraph.pl).

use super::stack;
use super::text::{value_text, TextOutput};
use super::value::{MapEntry, MapValue, Value};
use super::{Message, Output};
use std::io::{self, Write};

/// The folded lines of one map: an entry whose key holds a stack and whose
/// value is a count or a sum gives one line. Key fields that are not stacks
/// become root frames (`comm;main;outer;inner`), then user stacks, then
/// kernel stacks, each from its root to its leaf; `prefix` (a map name)
/// goes first when given. Entries that fold to the same frames (a stack at
/// other offsets, or of another process) are added up, in first-seen order.
pub fn folded_lines(entries: &[MapEntry], prefix: Option<&str>) -> Vec<String> {
    let mut out: Vec<(String, u64)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for e in entries {
        let count = match &e.value {
            MapValue::Count(n) => *n,
            MapValue::Sum(v) | MapValue::Value(v) if matches!(v, Value::Int(_) | Value::UInt(_)) => v.bits(),
            _ => continue,
        };
        let stacks: Vec<_> =
            e.key.iter().filter_map(|k| if let Value::Stack(s) = k { Some(s) } else { None }).collect();
        if stacks.is_empty() || count == 0 {
            continue;
        }
        let mut frames: Vec<String> = prefix.map(str::to_string).into_iter().collect();
        frames.extend(e.key.iter().filter(|k| !matches!(k, Value::Stack(_))).map(value_text));
        for kernel in [false, true] {
            for s in stacks.iter().filter(|s| s.kernel == kernel) {
                frames.extend(stack::folded_frames(s));
            }
        }
        if frames.is_empty() {
            continue;
        }
        // `;` separates frames and the last space the count.
        let frames: Vec<String> = frames.iter().map(|f| f.replace(';', ":").replace('\n', " ")).collect();
        let line = frames.join(";");
        match index.get(&line) {
            Some(&i) => out[i].1 += count,
            None => {
                index.insert(line.clone(), out.len());
                out.push((line, count));
            }
        }
    }
    out.into_iter().map(|(line, n)| format!("{} {}", line, n)).collect()
}

/// Whether a map's entries are keyed by a stack.
pub fn has_stacks(entries: &[MapEntry]) -> bool {
    entries.iter().any(|e| e.key.iter().any(|k| matches!(k, Value::Stack(_))))
}

/// Every stack-keyed map at exit as one flame graph: with several maps, each
/// map's name is the root frame of its stacks. Nothing is written when no
/// map holds a stack.
pub fn flame_graph(maps: &[(String, Vec<MapEntry>, bool)], title: &str, out: impl Write) -> io::Result<bool> {
    let keyed: Vec<_> = maps.iter().filter(|(_, e, _)| has_stacks(e)).collect();
    let several = keyed.len() > 1;
    let lines: Vec<String> =
        keyed.iter().flat_map(|(name, e, _)| folded_lines(e, several.then_some(name.as_str()))).collect();
    if lines.is_empty() {
        return Ok(false);
    }
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.count_name = "samples".to_string();
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), out).map_err(io::Error::other)?;
    Ok(true)
}

/// `-f folded`: text output, except that stack-keyed maps print as folded
/// stacks, one line per entry.
pub struct FoldedOutput<W: Write> {
    text: TextOutput<W>,
}

impl<W: Write> FoldedOutput<W> {
    pub fn new(out: W) -> FoldedOutput<W> {
        FoldedOutput { text: TextOutput::new(out) }
    }
}

impl<W: Write> Output for FoldedOutput<W> {
    fn attached_probes(&mut self, n: usize) -> io::Result<()> {
        self.text.attached_probes(n)
    }

    fn message(&mut self, kind: Message, text: &[u8], newline: bool) -> io::Result<()> {
        self.text.message(kind, text, newline)
    }

    fn program_message(&mut self, m: super::ProgramMessage<'_>) -> io::Result<()> {
        self.text.program_message(m)
    }

    fn map(&mut self, name: &str, entries: &[MapEntry], keyed: bool) -> io::Result<()> {
        if !has_stacks(entries) {
            return self.text.map(name, entries, keyed);
        }
        for line in folded_lines(entries, None) {
            self.text.raw(format!("{}\n", line).as_bytes())?;
        }
        Ok(())
    }

    /// Nothing: the blank lines of text would be empty stacks to the
    /// tools that read folded lines.
    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.text.raw(bytes)
    }

    fn value(&mut self, v: &Value) -> io::Result<()> {
        self.text.value(v)
    }

    fn helper_error(&mut self, helper: &str, retcode: i64, file: &str, line: usize, col: usize) -> io::Result<()> {
        self.text.helper_error(helper, retcode, file, line, col)
    }

    fn runtime_warning(&mut self, msg: &str, file: &str, line: usize, col: usize) -> io::Result<()> {
        self.text.runtime_warning(msg, file, line, col)
    }

    fn lost_events(&mut self, n: u64) -> io::Result<()> {
        self.text.lost_events(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.text.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::value::{Frame, FrameSym, Stack};
    use crate::types::StackMode;

    fn frame(name: &str) -> Frame {
        let sym = FrameSym { name: name.into(), offset: Some(4), location: None, module: None, inlined: false };
        Frame::Addr { addr: 0x1000, syms: vec![sym].into() }
    }

    fn stack(kernel: bool, leaf_first: &[&str]) -> Value {
        Value::Stack(Stack { kernel, mode: StackMode::Bpftrace, frames: leaf_first.iter().map(|n| frame(n)).collect() })
    }

    fn entry(key: Vec<Value>, n: u64) -> MapEntry {
        MapEntry { key, value: MapValue::Count(n) }
    }

    #[test]
    fn other_keys_are_root_frames_then_user_then_kernel_stacks() {
        let comm = Value::Str(b"app".to_vec());
        let entries = vec![
            entry(vec![stack(true, &["vfs_read", "ksys_read"]), comm.clone(), stack(false, &["inner", "main"])], 3),
            // Another offset or process folds to the same frames: added up.
            entry(vec![stack(true, &["vfs_read", "ksys_read"]), comm, stack(false, &["inner", "main"])], 2),
            entry(vec![Value::Str(b"x;y".to_vec()), stack(false, &[])], 7),
        ];
        assert_eq!(folded_lines(&entries, None), ["app;main;inner;ksys_read;vfs_read 5", "x:y 7"]);
        assert_eq!(folded_lines(&entries[..1], Some("@m")), ["@m;app;main;inner;ksys_read;vfs_read 3"]);
    }

    #[test]
    fn the_flame_graph_is_well_formed_xml_that_names_every_frame() {
        let entries = vec![
            entry(vec![stack(false, &["std::vector<int>::push_back", "a&b", "main"])], 10),
            entry(vec![stack(false, &["inner", "main"])], 30),
        ];
        let maps = vec![("@".to_string(), entries, true), ("@plain".to_string(), vec![], false)];
        let mut svg = Vec::new();
        assert!(flame_graph(&maps, "rtrace <test>", &mut svg).unwrap());
        let mut reader = quick_xml::Reader::from_reader(svg.as_slice());
        let mut buf = Vec::new();
        let mut titles = Vec::new();
        let mut in_title = false;
        loop {
            match reader.read_event_into(&mut buf).expect("well-formed XML") {
                quick_xml::events::Event::Start(e) => {
                    in_title = e.name().as_ref() == b"title";
                    titles.push(String::new());
                }
                // Text and the entities in it (`&amp;`) come as separate events.
                quick_xml::events::Event::Text(t) if in_title => {
                    titles.last_mut().unwrap().push_str(&t.decode().unwrap())
                }
                quick_xml::events::Event::GeneralRef(r) if in_title => {
                    titles.last_mut().unwrap().push_str(&format!("&{};", String::from_utf8_lossy(&r)))
                }
                quick_xml::events::Event::End(_) => in_title = false,
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        for name in
            ["inner (30 samples", "main (40 samples", "a&amp;b (10 samples", "std::vector&lt;int&gt;::push_back"]
        {
            assert!(titles.iter().any(|t| t.starts_with(name)), "no frame titled {name}: {titles:?}");
        }
        // No stack-keyed map: nothing to draw.
        assert!(!flame_graph(&maps[1..], "t", Vec::new()).unwrap());
    }
}
