//! The reader of the BPF ring buffer every output record goes through:
//! the ring mapped into rtrace, read in place, the read position handed
//! back to the kernel once per batch.
//!
//! libbpf's reader writes the read position after every record. The
//! position sits on a cache line the programs read at each reserve, so
//! under a flood every record moved that line between the traced CPU and
//! rtrace's, and the traced program paid for it (reserve was 16 % of the
//! traced workload's time at 2.5M records/s). Here it is written every
//! `RELEASE_EVERY` bytes and at the end of a read.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// The record header: its length, and these two flags.
const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
const HEADER: u64 = 8;

/// Bytes read between two updates of the read position: often enough that
/// the programs see room long before the ring is full.
const RELEASE_EVERY: u64 = 64 << 10;

/// What gets each record: a negative result stops the read.
type Handler<'a> = Box<dyn FnMut(&[u8]) -> i32 + 'a>;

/// A mapped ring buffer and what handles its records.
pub struct Ring<'a> {
    fd: OwnedFd,
    /// The consumer page (read-write) and the producer page followed by the
    /// data, mapped twice over so that a record wrapping around the end is
    /// one slice.
    consumer: *mut u8,
    producer: *const u8,
    page: usize,
    size: u64,
    handle: RefCell<Handler<'a>>,
}

impl<'a> Ring<'a> {
    /// Maps the ring buffer map `map` (its fd is duplicated); `handle` gets
    /// each record, and a negative result stops the read that got it.
    pub fn new(map: &impl AsFd, handle: impl FnMut(&[u8]) -> i32 + 'a) -> io::Result<Ring<'a>> {
        let fd = map.as_fd().try_clone_to_owned()?;
        let size = ring_size(fd.as_raw_fd())?;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: mapping the ring buffer map as the kernel lays it out:
        // the consumer page at offset 0, the producer page and the data
        // (mapped twice, read-only) from one page on.
        let (consumer, producer) = unsafe {
            let c = libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            );
            if c == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let p = libc::mmap(
                std::ptr::null_mut(),
                page + 2 * size as usize,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                page as libc::off_t,
            );
            if p == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                libc::munmap(c, page);
                return Err(e);
            }
            (c as *mut u8, p as *const u8)
        };
        Ok(Ring { fd, consumer, producer, page, size, handle: RefCell::new(Box::new(handle)) })
    }

    /// Something to `poll(2)` for records (the kernel's wakeups).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Waits up to `timeout` for a wakeup, then reads what is there (also
    /// when nothing woke it: programs do not wake the reader for every
    /// record). Returns the records read, or the handler's negative result.
    pub fn poll(&self, timeout: Duration) -> i32 {
        let mut pfd = libc::pollfd { fd: self.fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd. EINTR (a signal) just ends the wait.
        unsafe { libc::poll(&mut pfd, 1, timeout.as_millis().min(i32::MAX as u128) as i32) };
        self.consume()
    }

    /// Reads every complete record, up to one ring's worth (so that a
    /// producer as fast as the reader cannot keep it here). Returns the
    /// records read, or the handler's negative result.
    pub fn consume(&self) -> i32 {
        // SAFETY: the positions are the first u64 of their pages, which
        // stay mapped as long as `self`; the kernel writes the producer's.
        let (consumer_pos, producer_pos) =
            unsafe { (&*(self.consumer as *const AtomicU64), &*(self.producer as *const AtomicU64)) };
        // SAFETY: the data follows the producer page.
        let data = unsafe { self.producer.add(self.page) };
        let mask = self.size - 1;
        let start = consumer_pos.load(Ordering::Acquire);
        let (mut pos, mut released) = (start, start);
        let mut count = 0i32;
        let mut handle = self.handle.borrow_mut();
        'read: loop {
            let end = producer_pos.load(Ordering::Acquire);
            if pos >= end {
                break;
            }
            while pos < end && pos - start < self.size {
                // SAFETY: the header is 8-aligned inside the data.
                let header = unsafe { &*(data.add((pos & mask) as usize) as *const AtomicU32) };
                let len = header.load(Ordering::Acquire);
                if len & BUSY_BIT != 0 {
                    // Reserved, not submitted yet.
                    break 'read;
                }
                let body = (len & !DISCARD_BIT) as u64;
                let at = pos & mask;
                pos += (body + HEADER).div_ceil(8) * 8;
                if len & DISCARD_BIT == 0 {
                    // SAFETY: a committed record of `body` bytes; the double
                    // mapping makes it contiguous even across the end.
                    let record = unsafe { std::slice::from_raw_parts(data.add((at + HEADER) as usize), body as usize) };
                    let r = handle(record);
                    if r < 0 {
                        consumer_pos.store(pos, Ordering::Release);
                        return r;
                    }
                    count = count.saturating_add(1);
                }
                if pos - released >= RELEASE_EVERY {
                    consumer_pos.store(pos, Ordering::Release);
                    released = pos;
                }
            }
            if pos - start >= self.size {
                break;
            }
        }
        if pos != released {
            consumer_pos.store(pos, Ordering::Release);
        }
        count
    }
}

impl Drop for Ring<'_> {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped.
        unsafe {
            libc::munmap(self.consumer as *mut libc::c_void, self.page);
            libc::munmap(self.producer as *mut libc::c_void, self.page + 2 * self.size as usize);
        }
    }
}

/// The data size of the ring buffer map `fd` (its `max_entries`).
fn ring_size(fd: RawFd) -> io::Result<u64> {
    use libbpf_rs::libbpf_sys as sys;
    // SAFETY: plain data; zero is valid for every field.
    let mut info: sys::bpf_map_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<sys::bpf_map_info>() as u32;
    // SAFETY: a buffer of the size we pass.
    let r = unsafe { sys::bpf_map_get_info_by_fd(fd, &mut info, &mut len) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let size = info.max_entries as u64;
    if !size.is_power_of_two() {
        return Err(io::Error::other("the ring buffer's size is not a power of two"));
    }
    Ok(size)
}
