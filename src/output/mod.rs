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
/// bpftrace 0.17 writes in the same situation.
pub trait Output {
    /// `Attaching N probes...`
    fn attached_probes(&mut self, n: usize) -> io::Result<()>;
    /// Text from printf, time, join, cat or system; `newline` ends it with
    /// a newline in text output (JSON data never has it).
    fn message(&mut self, kind: Message, text: &[u8], newline: bool) -> io::Result<()>;
    /// One map (`print(@x)`), entries already decoded; sorted here.
    fn map(&mut self, name: &str, entries: &[MapEntry], keyed: bool) -> io::Result<()>;
    /// Bytes written as they are, in either format.
    fn raw(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Every map at exit (or on SIGUSR1), in name order, after two newlines
    /// (bpftrace writes them in JSON mode too).
    fn maps_at_exit(&mut self, maps: &[(String, Vec<MapEntry>, bool)]) -> io::Result<()> {
        self.raw(b"\n\n")?;
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

/// Maps in bpftrace's exit order (by name).
fn by_name(maps: &[(String, Vec<MapEntry>, bool)]) -> Vec<&(String, Vec<MapEntry>, bool)> {
    let mut v: Vec<_> = maps.iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}
