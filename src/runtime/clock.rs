//! Clocks: CLOCK_BOOTTIME, which `nsecs` counts (bpftrace v0.26), and
//! wall-clock time for `time()` and `strftime()`: local time formatted with
//! the C library's `strftime`, plus bpftrace's `%f` (microseconds).

use std::sync::OnceLock;

/// `clock` now, in nanoseconds.
fn read(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// CLOCK_BOOTTIME in nanoseconds: the clock `nsecs` (bpf_ktime_get_boot_ns) counts.
pub fn boot_ns() -> u64 {
    read(libc::CLOCK_BOOTTIME) as u64
}

/// CLOCK_TAI minus CLOCK_BOOTTIME, in nanoseconds: what `nsecs(sw_tai)`
/// adds to the boot clock. Read between two boot clock readings, as
/// bpftrace does, so that the offset is off by at most half their gap.
pub fn tai_offset_ns() -> u64 {
    let before = read(libc::CLOCK_BOOTTIME);
    let tai = read(libc::CLOCK_TAI);
    let after = read(libc::CLOCK_BOOTTIME);
    (tai - before / 2 - after / 2) as u64
}

/// `time(format)`: the local time now.
pub fn now(format: &str) -> String {
    let ns = read(libc::CLOCK_REALTIME);
    local(ns / 1_000_000_000, ns % 1_000_000_000, format)
}

/// `strftime(format, ns)`: `ns` is CLOCK_BOOTTIME (what `nsecs` reads),
/// turned into wall-clock time with the offset measured at start-up.
pub fn from_boot(ns: u64, format: &str) -> String {
    let wall = (*boot_to_realtime() as i128 + ns as i128).max(0);
    local((wall / 1_000_000_000) as i64, (wall % 1_000_000_000) as i64, format)
}

/// `ns` since the Unix epoch in UTC, as bpftrace's JSON prints time points:
/// `1970-01-01 00:00:00.500000000`.
pub fn utc(ns: u64) -> String {
    let t = (ns / 1_000_000_000) as libc::time_t;
    // SAFETY: zeroed is a valid `tm`; gmtime_r fills it from a valid time_t.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::gmtime_r(&t, &mut tm) }.is_null() {
        return "(?)".into();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:09}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        ns % 1_000_000_000
    )
}

/// Realtime minus boot time, in nanoseconds.
fn boot_to_realtime() -> &'static i64 {
    static OFFSET: OnceLock<i64> = OnceLock::new();
    OFFSET.get_or_init(|| read(libc::CLOCK_REALTIME) - read(libc::CLOCK_BOOTTIME))
}

/// `secs` since the Unix epoch as local time in `format` (`%f`: microseconds).
pub fn local(secs: i64, nsecs: i64, format: &str) -> String {
    let format = format.replace("%f", &format!("{:06}", nsecs / 1000));
    let Ok(cformat) = std::ffi::CString::new(format) else { return String::new() };
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: zeroed is a valid `tm`; localtime_r fills it from a valid time_t.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return "(?)".into();
    }
    let mut buf = vec![0u8; 1024];
    // SAFETY: buf has buf.len() bytes; cformat is NUL-terminated.
    let n = unsafe { libc::strftime(buf.as_mut_ptr() as *mut libc::c_char, buf.len(), cformat.as_ptr(), &tm) };
    buf.truncate(n);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_microseconds() {
        let s = local(0, 123_456_789, "%Y %f");
        assert!(s.ends_with(" 123456"), "{}", s);
        assert!(s.starts_with("1970") || s.starts_with("1969"), "{}", s);
    }
}
