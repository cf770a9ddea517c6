//! Userspace formatting of everything rtrace prints: printf, values and
//! maps, in bpftrace's text and JSON formats. Pure: takes decoded values and
//! writes bytes; the runtime decides when.

pub mod folded;
pub mod hist;
pub mod json;
pub mod names;
pub mod printf;
pub mod sink;
pub mod stack;
pub mod text;
pub mod tseries;
pub mod value;

pub use folded::FoldedOutput;
pub use json::JsonOutput;
pub use text::TextOutput;

use std::io;
use value::MapEntry;

/// An I/O error's reason as C's `strerror` words it, without Rust's
/// " (os error N)" suffix.
pub fn error_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Text messages, named as bpftrace's JSON output names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    Printf,
    Time,
    Join,
    Cat,
    /// `system()` output.
    Syscall,
}

impl Message {
    pub fn name(self) -> &'static str {
        match self {
            Message::Printf => "printf",
            Message::Time => "time",
            Message::Join => "join",
            Message::Cat => "cat",
            Message::Syscall => "syscall",
        }
    }
}

/// A place in the program as bpftrace v0.26's runtime messages name it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// `file:line:col-endcol` (`file:line-endline` across lines).
    pub location: String,
    /// The source line(s), and a line of `~` under a one-line span.
    pub context: Vec<String>,
}

/// `errorf()`/`warnf()`: a message of the program, where it was called,
/// and the macro uses (innermost first) it was expanded from.
#[derive(Clone, Copy, Debug)]
pub struct ProgramMessage<'a> {
    pub error: bool,
    pub text: &'a [u8],
    pub at: &'a Place,
    pub expanded_from: &'a [Place],
}

/// Where every kind of output goes. Implementations write exactly what
/// bpftrace v0.26 writes in the same situation.
pub trait Output {
    /// `Attached N probes` (text: on stderr)
    fn attached_probes(&mut self, n: usize) -> io::Result<()>;
    /// Text from printf, time, join, cat or system; `newline` ends it with
    /// a newline in text output (JSON data never has it).
    fn message(&mut self, kind: Message, text: &[u8], newline: bool) -> io::Result<()>;
    /// One map (`print(@x)`), entries already decoded; sorted here. An
    /// empty map prints nothing.
    fn map(&mut self, name: &str, entries: &[MapEntry], keyed: bool) -> io::Result<()>;
    /// The end of the run, before the maps are printed: two empty lines in
    /// text, nothing in JSON.
    fn end(&mut self) -> io::Result<()>;
    /// Bytes written as they are, in either format.
    fn raw(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Every map (at exit, on SIGUSR1), in name order.
    fn maps_at_exit(&mut self, maps: &[(String, Vec<MapEntry>, bool)]) -> io::Result<()> {
        for (name, entries, keyed) in by_name(maps) {
            self.map(name, entries, *keyed)?;
        }
        Ok(())
    }
    /// `print(value)`
    fn value(&mut self, v: &value::Value) -> io::Result<()>;
    /// A helper call failed (`-k`/`-kk`): where (`file:line:col`) and how.
    fn helper_error(&mut self, helper: &str, retcode: i64, file: &str, line: usize, col: usize) -> io::Result<()>;
    /// A check of the program failed at run time (bpftrace v0.26's runtime
    /// errors: a division by zero, an index out of bounds), at `file:line:col`.
    fn runtime_warning(&mut self, msg: &str, file: &str, line: usize, col: usize) -> io::Result<()>;
    /// `errorf()`/`warnf()` (on stderr in text, as bpftrace).
    fn program_message(&mut self, m: ProgramMessage<'_>) -> io::Result<()>;
    /// Records the kernel could not deliver (ring buffer full).
    fn lost_events(&mut self, n: u64) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

/// Another output without its runtime warnings (`--no-warnings`); what
/// `-k` asks for is still reported.
pub struct NoWarnings(pub Box<dyn Output>);

impl Output for NoWarnings {
    fn attached_probes(&mut self, n: usize) -> io::Result<()> {
        self.0.attached_probes(n)
    }
    fn message(&mut self, kind: Message, text: &[u8], newline: bool) -> io::Result<()> {
        self.0.message(kind, text, newline)
    }
    fn map(&mut self, name: &str, entries: &[MapEntry], keyed: bool) -> io::Result<()> {
        self.0.map(name, entries, keyed)
    }
    fn end(&mut self) -> io::Result<()> {
        self.0.end()
    }
    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.raw(bytes)
    }
    fn maps_at_exit(&mut self, maps: &[(String, Vec<MapEntry>, bool)]) -> io::Result<()> {
        self.0.maps_at_exit(maps)
    }
    fn value(&mut self, v: &value::Value) -> io::Result<()> {
        self.0.value(v)
    }
    fn helper_error(&mut self, helper: &str, retcode: i64, file: &str, line: usize, col: usize) -> io::Result<()> {
        self.0.helper_error(helper, retcode, file, line, col)
    }
    fn runtime_warning(&mut self, _msg: &str, _file: &str, _line: usize, _col: usize) -> io::Result<()> {
        Ok(())
    }
    /// `errorf()` still; `warnf()` is a warning.
    fn program_message(&mut self, m: ProgramMessage<'_>) -> io::Result<()> {
        if m.error {
            self.0.program_message(m)
        } else {
            Ok(())
        }
    }
    fn lost_events(&mut self, n: u64) -> io::Result<()> {
        self.0.lost_events(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Maps in bpftrace's exit order (by name).
fn by_name(maps: &[(String, Vec<MapEntry>, bool)]) -> Vec<&(String, Vec<MapEntry>, bool)> {
    let mut v: Vec<_> = maps.iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}
