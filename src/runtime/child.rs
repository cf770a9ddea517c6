//! `-c CMD`: the child is forked before loading (so its pid is known) and
//! blocked on a pipe; it execs only once every probe is attached.

use std::ffi::CString;
use std::io;

pub struct Child {
    pub pid: i32,
    /// Write end of the start pipe; writing a byte lets the child exec.
    start_fd: i32,
    exited: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("empty command")]
    Empty,
    #[error("malformed command `{0}`: {1}")]
    Malformed(String, SplitError),
    #[error("command not found: `{0}`")]
    NotFound(String),
    #[error("cannot start `{cmd}`: {err}")]
    Io { cmd: String, err: io::Error },
}

/// What makes a command line malformed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("the {0} quote at column {1} is never closed")]
    Unterminated(&'static str, usize),
    #[error("it ends with a lone backslash")]
    TrailingBackslash,
}

/// Splits a command line as a shell does its quoting: words split at
/// spaces, `'...'` and `"..."` (with `\` escapes) quote, `\` escapes one
/// character.
pub fn split_command(cmd: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    // Where the open quote is (1-based column), for the error.
    let mut opened = 0;
    let mut chars = cmd.chars().enumerate();
    // The character after a backslash.
    fn escaped(chars: &mut std::iter::Enumerate<std::str::Chars<'_>>) -> Result<char, SplitError> {
        chars.next().map(|(_, c)| c).ok_or(SplitError::TrailingBackslash)
    }
    while let Some((at, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.push(escaped(&mut chars)?),
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                opened = at + 1;
                in_word = true;
            }
            (None, '\\') => {
                cur.push(escaped(&mut chars)?);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(SplitError::Unterminated(if q == '"' { "double" } else { "single" }, opened));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn find_program(name: &str) -> Option<String> {
    if name.contains('/') {
        return std::path::Path::new(name).exists().then(|| name.to_string());
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

impl Child {
    /// Forks the command, stopped until `start`.
    pub fn spawn(cmd: &str) -> Result<Child, ChildError> {
        let words = split_command(cmd).map_err(|e| ChildError::Malformed(cmd.to_string(), e))?;
        let first = words.first().ok_or(ChildError::Empty)?;
        let program = find_program(first).ok_or_else(|| ChildError::NotFound(first.clone()))?;
        let io_err = |err| ChildError::Io { cmd: cmd.to_string(), err };
        let to_c = |s: &str| CString::new(s).map_err(|_| io_err(io::Error::from(io::ErrorKind::InvalidInput)));
        let path = to_c(&program)?;
        let args: Vec<CString> = words.iter().map(|w| to_c(w)).collect::<Result<_, _>>()?;
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut fds = [0i32; 2];
        // SAFETY: fds has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io_err(io::Error::last_os_error()));
        }
        // SAFETY: the child only calls async-signal-safe functions (read, execv, _exit).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io_err(io::Error::last_os_error()));
        }
        if pid == 0 {
            unsafe {
                libc::close(fds[1]);
                let mut byte = 0u8;
                // EOF without a byte: rtrace gave up before attaching.
                if libc::read(fds[0], &mut byte as *mut u8 as *mut libc::c_void, 1) != 1 {
                    libc::_exit(1);
                }
                libc::execv(path.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
        }
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        Ok(Child { pid, start_fd: fds[1], exited: None })
    }

    /// Lets the child exec.
    pub fn start(&mut self) {
        if self.start_fd >= 0 {
            let byte = 1u8;
            // SAFETY: writing one byte to our pipe, then closing it.
            unsafe {
                libc::write(self.start_fd, &byte as *const u8 as *const libc::c_void, 1);
                libc::close(self.start_fd);
            }
            self.start_fd = -1;
        }
    }

    /// The exit status once the child has exited (non-blocking).
    pub fn try_wait(&mut self) -> Option<i32> {
        if self.exited.is_none() {
            let mut status = 0;
            // SAFETY: waiting for our own child without blocking.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r == self.pid {
                self.exited = Some(status);
            }
        }
        self.exited
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.start_fd >= 0 {
            // Never started: closing the pipe makes it exit.
            unsafe { libc::close(self.start_fd) };
            self.start_fd = -1;
        }
        if self.exited.is_none() && self.try_wait().is_none() {
            // Tracing ended first (exit(), Ctrl-C): like bpftrace, the command
            // does not outlive rtrace. Killed and reaped, so no zombie is left.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                let mut status = 0;
                libc::waitpid(self.pid, &mut status, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(split_command("ls -l 'a b' \"c\\\"d\" e\\ f").unwrap(), vec!["ls", "-l", "a b", "c\"d", "e f"]);
        assert_eq!(split_command("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_command("''").unwrap(), vec![""]);
    }

    #[test]
    fn malformed_command_lines_are_errors() {
        assert_eq!(split_command("ls \"unterminated"), Err(SplitError::Unterminated("double", 4)));
        assert_eq!(split_command("echo 'a"), Err(SplitError::Unterminated("single", 6)));
        assert_eq!(split_command("ls \\"), Err(SplitError::TrailingBackslash));
        assert_eq!(split_command("ls \"a\\"), Err(SplitError::TrailingBackslash));
    }

    #[test]
    fn a_command_still_running_is_killed_and_reaped_on_drop() {
        let mut child = Child::spawn("sleep 30").expect("spawn sleep");
        child.start();
        let pid = child.pid;
        drop(child);
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "the -c command outlived rtrace");
    }
}
