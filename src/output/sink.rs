//! The writer under every output: it remembers the first write that failed
//! (a closed pipe, a full disk, a terminal that hung up) and refuses every
//! write after it, so that the session ends there and writes nothing more.

use std::cell::Cell;
use std::io::{self, Write};
use std::rc::Rc;

/// Why a write failed, kept (io::Error is not `Copy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteError {
    kind: io::ErrorKind,
    os: Option<i32>,
}

impl WriteError {
    fn of(e: &io::Error) -> WriteError {
        WriteError { kind: e.kind(), os: e.raw_os_error() }
    }

    pub fn to_io(self) -> io::Error {
        match self.os {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::from(self.kind),
        }
    }

    /// The reader went away (EPIPE): not worth a message, as `grep | head`.
    pub fn is_closed_pipe(self) -> bool {
        self.kind == io::ErrorKind::BrokenPipe
    }

    /// The reason as `strerror` words it.
    pub fn reason(self) -> String {
        super::error_reason(&self.to_io())
    }
}

/// The first failed write of a `Guarded` writer, shared with whoever decides
/// when the session ends.
#[derive(Clone, Debug, Default)]
pub struct WriteStatus(Rc<Cell<Option<WriteError>>>);

impl WriteStatus {
    pub fn failed(&self) -> Option<WriteError> {
        self.0.get()
    }

    fn record(&self, e: &io::Error) {
        if self.0.get().is_none() {
            self.0.set(Some(WriteError::of(e)));
        }
    }
}

/// `inner`, stopped for good by its first error.
pub struct Guarded<W: Write> {
    inner: W,
    status: WriteStatus,
}

impl<W: Write> Guarded<W> {
    pub fn new(inner: W) -> (Guarded<W>, WriteStatus) {
        let status = WriteStatus::default();
        (Guarded { inner, status: status.clone() }, status)
    }

    /// Records a failed result; an interrupted call is the caller's to retry.
    fn check<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            if e.kind() != io::ErrorKind::Interrupted {
                self.status.record(e);
            }
        }
        result
    }
}

impl<W: Write> Write for Guarded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.status.failed() {
            return Err(e.to_io());
        }
        let result = match self.inner.write(buf) {
            Ok(0) if !buf.is_empty() => Err(io::Error::from(io::ErrorKind::WriteZero)),
            other => other,
        };
        self.check(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.status.failed() {
            return Err(e.to_io());
        }
        let result = self.inner.flush();
        self.check(result)
    }
}

/// Writes a line to stderr, dropping any error: a message about a failed
/// output must not fail itself (stderr may be the same closed pipe).
pub fn to_stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = err.write_all(b"\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts `room` bytes, then fails as a full disk does.
    struct Full {
        room: usize,
        written: Vec<u8>,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_first_error_stops_every_later_write() {
        let (mut w, status) = Guarded::new(Full { room: 4, written: Vec::new() });
        assert!(w.write_all(b"abcdef").is_err());
        let failed = status.failed().expect("the error is recorded");
        assert_eq!(failed.reason(), "No space left on device");
        assert!(!failed.is_closed_pipe());
        // Room again: still nothing more is written.
        w.inner.room = 100;
        assert!(w.write_all(b"gh").is_err());
        assert!(w.flush().is_err());
        assert_eq!(w.inner.written, b"abcd");
    }
}
