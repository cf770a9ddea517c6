//! The terminal side of the session: output printed above the prompt, the
//! terminal's settings put back at the end, the file limit.

use rustyline::ExternalPrinter;
use std::io::Write;
use std::rc::Rc;

/// A long session holds a link and a program per probe: allow as many
/// files as the hard limit does.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid rlimit to fill, then to set.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Output for the terminal: whole lines, printed above the prompt; once the
/// session ends (`direct` set), straight to stdout, as the editor may still
/// hold the prompt and will not draw again.
pub struct PromptSink {
    pub printer: Box<dyn ExternalPrinter + Send>,
    pub pending: Vec<u8>,
    pub direct: Rc<std::cell::Cell<bool>>,
}

impl Write for PromptSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// Sends the complete lines; a partial line waits for its end.
    fn flush(&mut self) -> std::io::Result<()> {
        if self.direct.get() {
            let mut out = std::io::stdout().lock();
            out.write_all(&std::mem::take(&mut self.pending))?;
            return out.flush();
        }
        if let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') {
            let lines: Vec<u8> = self.pending.drain(..=end).collect();
            self.printer.print(String::from_utf8_lossy(&lines).into_owned()).map_err(std::io::Error::other)?;
        }
        Ok(())
    }
}

/// The terminal's settings at start, put back at the end even when the
/// session ends while the editor holds the terminal in raw mode.
pub struct Terminal(Option<libc::termios>);

impl Terminal {
    pub fn save() -> Terminal {
        // SAFETY: termios is plain data, filled by tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 and a valid termios.
        Terminal((unsafe { libc::tcgetattr(0, &mut t) } == 0).then_some(t))
    }

    pub fn restore(&self) {
        if let Some(t) = &self.0 {
            // SAFETY: fd 0 and the termios read at start.
            unsafe { libc::tcsetattr(0, libc::TCSADRAIN, t) };
        }
    }
}
