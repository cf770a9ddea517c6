//! The line editor (rustyline) on a thread of its own, so the session keeps
//! reading events while the user types. Each line is sent to the session,
//! which answers when it is done with it; only then is the next prompt shown,
//! so what a line prints comes before the next prompt.

use super::complete::{self, Host};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext, EventHandler,
    ExternalPrinter, KeyEvent, Movement, RepeatCount,
};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

pub const PROMPT: &str = "rtrace> ";

/// What the user did at the prompt.
pub enum Input {
    Line(String),
    /// Ctrl-C on an empty line.
    Interrupt,
    /// Ctrl-D on an empty line.
    Eof,
    /// The editor cannot go on (the terminal went away, ...).
    Failed(String),
}

/// The session's side of the editor thread.
pub struct EditorLink {
    pub inputs: Receiver<Input>,
    /// Tells the editor the last line is handled: show the next prompt.
    pub done: SyncSender<()>,
    /// Prints above the prompt without garbling what is being typed.
    pub printer: Box<dyn ExternalPrinter + Send>,
    /// Map names, for completion (the session keeps them current).
    pub maps: Arc<Mutex<Vec<String>>>,
    /// Readable when an input was sent: the session waits on it together
    /// with the ring buffer.
    pub wake: OwnedFd,
}

/// Completion and multi-line input for rustyline.
struct Helper {
    maps: Arc<Mutex<Vec<String>>>,
}

impl Completer for Helper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let maps = self.maps.lock().map(|m| m.clone()).unwrap_or_default();
        let (start, words) = complete::complete(line, pos, &maps, &Host);
        Ok((start, words.into_iter().map(|w| Pair { display: w.clone(), replacement: w }).collect()))
    }
}

impl Hinter for Helper {
    type Hint = String;
}

impl Highlighter for Helper {}

impl Validator for Helper {
    /// A line with unclosed braces goes on: Enter starts the next line.
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if complete::open_braces(ctx.input()) > 0 {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl rustyline::Helper for Helper {}

/// Ctrl-C discards a partly typed line, as in a shell; on an empty line it
/// interrupts (the session stops the last input's probes).
struct CtrlC;

impl ConditionalEventHandler for CtrlC {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        (!ctx.line().is_empty()).then_some(Cmd::Kill(Movement::WholeBuffer))
    }
}

/// `$XDG_DATA_HOME/rtrace/history`, else `~/.local/share/rtrace/history`.
pub fn history_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("rtrace").join("history"))
}

#[derive(Debug, thiserror::Error)]
pub enum EditorError {
    #[error("cannot make the wake-up pipe: {0}")]
    Pipe(std::io::Error),
    #[error("the line editor did not start: {0}")]
    Start(#[from] ReadlineError),
    #[error("the line editor did not start")]
    Gone,
}

/// Starts the editor thread.
pub fn spawn() -> Result<EditorLink, EditorError> {
    let mut fds = [-1; 2];
    // SAFETY: a valid array of two fds to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(EditorError::Pipe(std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 returned two fds that are now ours.
    let (wake, wake_tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let maps = Arc::new(Mutex::new(Vec::new()));
    let (input_tx, inputs) = channel();
    let (done, done_rx) = sync_channel(0);
    let (printer_tx, printer_rx) = channel();
    let helper_maps = maps.clone();
    let sender = InputSender { inputs: input_tx, wake: wake_tx };
    std::thread::spawn(move || editor_thread(helper_maps, sender, done_rx, printer_tx));
    let printer = printer_rx.recv().map_err(|_| EditorError::Gone)??;
    Ok(EditorLink { inputs, done, printer, maps, wake })
}

/// Sends inputs and wakes the session up.
struct InputSender {
    inputs: Sender<Input>,
    wake: OwnedFd,
}

impl InputSender {
    fn send(&self, input: Input) -> bool {
        let sent = self.inputs.send(input).is_ok();
        // SAFETY: one byte from a valid buffer to our pipe; a full pipe
        // already wakes the reader.
        unsafe { libc::write(self.wake.as_raw_fd(), b"i".as_ptr() as *const libc::c_void, 1) };
        sent
    }
}

type PrinterResult = Result<Box<dyn ExternalPrinter + Send>, EditorError>;

fn editor_thread(
    maps: Arc<Mutex<Vec<String>>>,
    inputs: InputSender,
    done: Receiver<()>,
    printer: Sender<PrinterResult>,
) {
    let config = Config::builder().completion_type(CompletionType::List).auto_add_history(false).build();
    let mut editor: Editor<Helper, rustyline::history::DefaultHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => return drop(printer.send(Err(e.into()))),
    };
    editor.set_helper(Some(Helper { maps }));
    editor.bind_sequence(KeyEvent::ctrl('C'), EventHandler::Conditional(Box::new(CtrlC)));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    match editor.create_external_printer() {
        Ok(p) => drop(printer.send(Ok(Box::new(p)))),
        Err(e) => return drop(printer.send(Err(e.into()))),
    }
    loop {
        let input = match editor.readline(PROMPT) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(path) = &history {
                        save_history(&mut editor, path);
                    }
                }
                Input::Line(line)
            }
            Err(ReadlineError::Interrupted) => Input::Interrupt,
            Err(ReadlineError::Eof) => Input::Eof,
            Err(e) => Input::Failed(e.to_string()),
        };
        let eof = matches!(input, Input::Eof | Input::Failed(_));
        if !inputs.send(input) || eof || done.recv().is_err() {
            return;
        }
    }
}

/// Saves after every line, so a session that is killed keeps its history.
fn save_history(editor: &mut Editor<Helper, rustyline::history::DefaultHistory>, path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = editor.save_history(path);
}
