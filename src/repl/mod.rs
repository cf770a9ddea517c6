//! The interactive session (`rtrace` with no program, on a terminal): probes
//! typed at the prompt are attached at once and stay attached; statements
//! run once; maps are shared by everything typed. One loop reads the ring
//! buffer and the lines the editor thread sends.

mod commands;
mod complete;
mod editor;
mod live;
mod source;
mod terminal;

use crate::contract::Counters;
use crate::options::{exit, Format, Options};
use crate::output::sink::{self, Guarded};
use crate::output::{JsonOutput, Output, TextOutput};
use crate::runtime::events::{self, read_map, State};
use crate::runtime::keeper::Keeper;
use crate::runtime::ring::Ring;
use crate::runtime::signals;
use commands::Command;
use editor::{EditorLink, Input};
use live::{Live, Outcome};
use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};
use terminal::{raise_fd_limit, PromptSink, Terminal};

/// How long one wait for events or input may block.
const POLL: Duration = Duration::from_millis(50);

/// True when rtrace runs on a terminal, where the session is offered.
pub fn available() -> bool {
    // SAFETY: isatty only inspects the fds.
    unsafe { libc::isatty(0) == 1 && libc::isatty(1) == 1 }
}

pub fn run(opts: Options) -> i32 {
    if opts.command.is_some() {
        eprintln!("ERROR: -c runs a command under a program; the interactive session takes none");
        return exit::USAGE;
    }
    if let Err(e) = crate::system::privilege::check() {
        eprintln!("error: {}", e);
        return exit::LOAD;
    }
    raise_fd_limit();
    // Forked before the editor's thread starts (and with the raised limit).
    let keeper = Keeper::start().ok();
    let terminal = Terminal::save();
    println!(
        "rtrace {} interactive session: type probes or statements; :help lists the commands, Ctrl-D quits.",
        env!("CARGO_PKG_VERSION")
    );
    let link = match editor::spawn() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ERROR: cannot start the interactive session: {}", e);
            return exit::RUNTIME;
        }
    };
    Session::new(opts, link, terminal, keeper).run()
}

struct Session {
    live: Live,
    /// Shared with the ring buffer's callback.
    state: Rc<RefCell<State>>,
    inputs: std::sync::mpsc::Receiver<Input>,
    done: std::sync::mpsc::SyncSender<()>,
    map_names: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    terminal: Terminal,
    /// Readable when the editor sent an input.
    wake: std::os::fd::OwnedFd,
    /// Set when the session ends: output goes straight to stdout.
    direct: Rc<std::cell::Cell<bool>>,
}

/// What to do after a line.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

impl Session {
    fn new(opts: Options, link: EditorLink, terminal: Terminal, keeper: Option<Keeper>) -> Session {
        let direct = Rc::new(std::cell::Cell::new(false));
        let (sink, written) =
            Guarded::new(PromptSink { printer: link.printer, pending: Vec::new(), direct: direct.clone() });
        let out: Box<dyn Output> = match opts.format {
            Format::Text => Box::new(TextOutput::merged(sink)),
            Format::Json => Box::new(JsonOutput::new(sink)),
            Format::Folded => Box::new(crate::output::FoldedOutput::new(sink)),
        };
        let mut state = State::new(Default::default(), (out, written), Vec::new(), None);
        state.warnings_in_output = true;
        state.counters = Counters { map_slots: live::MAP_SLOTS };
        Session {
            live: Live::new(opts, keeper),
            state: Rc::new(RefCell::new(state)),
            inputs: link.inputs,
            done: link.done,
            map_names: link.maps,
            terminal,
            direct,
            wake: link.wake,
        }
    }

    fn run(mut self) -> i32 {
        signals::install_interactive();
        // Built once the first object exists (it creates the ring buffer).
        let state = self.state.clone();
        let mut ring: Option<Ring<'static>> = None;
        let mut last_check = Instant::now();
        // Whether the session ends with the prompt on the screen.
        let mut at_prompt = true;
        loop {
            self.wait(ring.as_ref().map(|r| r.fd()));
            if let Some(r) = &ring {
                r.consume();
            }
            let input = match self.inputs.try_recv() {
                Ok(i) => Some(i),
                Err(std::sync::mpsc::TryRecvError::Empty) => None,
                Err(_) => Some(Input::Eof),
            };
            // A terminal that hung up (SIGHUP, or writes failing) ends the session.
            if state.borrow().exit_called() || signals::stop_requested() || state.borrow().output_failed().is_some() {
                break;
            }
            if signals::take_interrupt() {
                self.interrupt();
            }
            if signals::take_print_request() {
                self.print_maps();
            }
            if last_check.elapsed() > Duration::from_secs(1) {
                state.borrow_mut().check_counters();
                last_check = Instant::now();
            }
            let answer = matches!(input, Some(Input::Line(_) | Input::Interrupt));
            let flow = match input {
                None => Flow::Continue,
                Some(Input::Eof) => Flow::Quit,
                Some(Input::Failed(e)) => {
                    sink::to_stderr(&format!("error: the line editor failed: {}", e));
                    Flow::Quit
                }
                Some(Input::Interrupt) => {
                    self.interrupt();
                    Flow::Continue
                }
                Some(Input::Line(line)) => self.line(&line),
            };
            if ring.is_none() {
                ring = self.live.events().and_then(|map| {
                    let state = state.clone();
                    events::reader(map, move |data| state.borrow_mut().record(data)).ok()
                });
            }
            // What the line printed comes before the next prompt.
            if let Some(r) = &ring {
                r.consume();
            }
            state.borrow_mut().out.flush().ok();
            if flow == Flow::Quit || state.borrow().exit_called() || state.borrow().output_failed().is_some() {
                at_prompt = false;
                break;
            }
            if answer && self.done.send(()).is_err() {
                break;
            }
        }
        // The editor may still hold the prompt (exit() or a signal ended the
        // session): give the terminal back and write below the prompt line.
        self.terminal.restore();
        if at_prompt {
            // Not println!: the terminal may be gone.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), b"\n");
        }
        self.direct.set(true);
        self.live.detach_all(true);
        if let Some(r) = &ring {
            events::drain_after_exit(&state, r);
        }
        self.live.run_ends();
        if let Some(r) = &ring {
            r.consume();
        }
        state.borrow_mut().print_at_exit();
        let failed = state.borrow().output_failed();
        match failed {
            Some(e) if !e.is_closed_pipe() => {
                sink::to_stderr(&format!("error: cannot write to the terminal: {}: the session stopped", e.reason()));
                exit::RUNTIME
            }
            _ => exit::OK,
        }
    }

    /// Waits until records arrive (on the ring buffer's epoll fd), an input
    /// does, or `POLL` passes.
    fn wait(&self, events: Option<i32>) {
        let mut fds = vec![libc::pollfd { fd: self.wake.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        if let Some(fd) = events {
            fds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
        }
        // SAFETY: valid pollfds; the buffer is ours to read into.
        unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, POLL.as_millis() as i32);
            let mut drain = [0u8; 64];
            while libc::read(self.wake.as_raw_fd(), drain.as_mut_ptr() as *mut libc::c_void, drain.len()) > 0 {}
        }
    }

    /// Handles one line typed at the prompt.
    fn line(&mut self, line: &str) -> Flow {
        let text = line.trim();
        let flow = if text.is_empty() {
            Flow::Continue
        } else if text.starts_with(':') {
            match commands::parse(text) {
                Ok(c) => self.command(c),
                Err(e) => {
                    eprintln!("error: {}", e);
                    Flow::Continue
                }
            }
        } else if is_map_name(text.trim_end_matches(';')) {
            self.enter(&format!("print({});", text.trim_end_matches(';')), true)
        } else {
            self.enter(line.trim_end(), !looks_like_probes(text))
        };
        let names = self.state.borrow().manifest.maps.iter().map(|m| m.name.clone()).collect();
        if let Ok(mut m) = self.map_names.lock() {
            *m = names;
        }
        flow
    }

    fn enter(&mut self, text: &str, statements: bool) -> Flow {
        let result = self.live.enter(text, statements, &mut self.state.borrow_mut());
        match result {
            Ok(Outcome::Ran) => {}
            Ok(Outcome::Attached(probes)) => {
                for (number, text) in probes {
                    self.say(&format!("Attached probe {}: {}", number, text));
                }
            }
            Err(errors) => eprint!("{}", errors.concat()),
        }
        Flow::Continue
    }

    fn command(&mut self, command: Command) -> Flow {
        match command {
            Command::Help => self.say(commands::help().trim_end()),
            Command::Probes => self.list_probes(),
            Command::Detach(n) => {
                if self.live.detach(n) {
                    self.say(&format!("Detached probe {}", n));
                } else {
                    eprintln!("error: no live probe {}: :probes lists them", n);
                }
            }
            Command::DetachAll => {
                let numbers = self.live.detach_all(false);
                self.say(&detached(&numbers));
            }
            Command::Maps => self.list_maps(),
            Command::Print => self.print_maps(),
            Command::Clear(map) => {
                let maps: Vec<String> = match map {
                    Some(m) => vec![m],
                    None => self.state.borrow().manifest.maps.iter().map(|m| m.name.clone()).collect(),
                };
                if !maps.is_empty() {
                    let text: String = maps.iter().map(|m| format!("clear({}); ", m)).collect();
                    return self.enter(text.trim_end(), true);
                }
            }
            Command::Quit => return Flow::Quit,
        }
        Flow::Continue
    }

    /// Ctrl-C: the probes of the last input stop; the session goes on.
    fn interrupt(&mut self) {
        let numbers = self.live.detach_last();
        self.say(&detached(&numbers));
    }

    fn list_probes(&self) {
        let probes = self.live.probes();
        if probes.is_empty() {
            return self.say("No live probes.");
        }
        let mut text = format!("{:>3}  {:>5}  {:>10}  {}\n", "#", "input", "hits", "probe");
        for (number, input, probe, hits) in probes {
            let hits = hits.map_or("?".to_string(), |h| h.to_string());
            text.push_str(&format!("{:>3}  {:>5}  {:>10}  {}\n", number, input, hits, probe));
        }
        self.say(text.trim_end());
    }

    fn list_maps(&self) {
        let st = self.state.borrow();
        if st.manifest.maps.is_empty() {
            drop(st);
            return self.say("No maps.");
        }
        let mut text = String::new();
        for (info, handle) in st.manifest.maps.iter().zip(&st.maps) {
            let keys = if info.keys.is_empty() {
                String::new()
            } else {
                format!("[{}]", info.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", "))
            };
            let entries = handle.as_ref().map_or(0, |h| read_map(h, info).len());
            text.push_str(&format!(
                "{}{}: {}, {} entr{}\n",
                info.name,
                keys,
                info.value.describe(),
                entries,
                if entries == 1 { "y" } else { "ies" }
            ));
        }
        drop(st);
        self.say(text.trim_end());
    }

    fn print_maps(&self) {
        let mut st = self.state.borrow_mut();
        let maps = st.read_maps();
        st.out.maps_at_exit(&maps).ok();
        st.out.flush().ok();
    }

    /// A message of the session itself (not of the program).
    fn say(&self, text: &str) {
        let mut st = self.state.borrow_mut();
        let _ = st.out.raw(format!("{}\n", text).as_bytes());
        st.out.flush().ok();
    }
}

fn detached(numbers: &[usize]) -> String {
    match numbers {
        [] => "No live probes to stop.".into(),
        [one] => format!("Detached probe {}", one),
        many => format!("Detached probes {}", many.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// `@x` or `@` alone: print that map.
fn is_map_name(text: &str) -> bool {
    text.strip_prefix('@').is_some_and(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// Probes (and definitions) rather than statements: the input starts with
/// a probe type and `:`, BEGIN/END, or a top-level definition.
fn looks_like_probes(text: &str) -> bool {
    let word: String = text.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let after = &text[word.len()..];
    matches!(word.as_str(), "begin" | "end" | "BEGIN" | "END" | "struct" | "union" | "enum" | "fn" | "config" | "macro")
        || text.starts_with('#')
        || (!word.is_empty() && after.starts_with(':'))
        || (text.starts_with('*') && text.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_probes_from_statements() {
        assert!(looks_like_probes("tracepoint:syscalls:sys_enter_openat { }"));
        assert!(looks_like_probes("BEGIN { @x = 1; }"));
        assert!(looks_like_probes("t:sched:sched_switch { }"));
        assert!(looks_like_probes("struct rec { int x; }"));
        assert!(!looks_like_probes("print(@x)"));
        assert!(!looks_like_probes("@x = 1"));
        assert!(!looks_like_probes("$a = 1 ? 2 : 3"));
        assert!(is_map_name("@x") && is_map_name("@") && !is_map_name("@x[1]"));
    }
}
