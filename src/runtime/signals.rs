//! SIGINT, SIGTERM and SIGHUP end the session (probes detached, END runs,
//! maps print); SIGUSR1 asks for the maps to be printed now. Handlers only
//! set flags the event loop reads.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static PRINT_MAPS: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_usr1(_: libc::c_int) {
    PRINT_MAPS.store(true, Ordering::SeqCst);
}

pub fn install() {
    // SAFETY: the handlers only store to atomics, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_stop as *const () as libc::sighandler_t);
        // A closed terminal (or `kill -HUP`) would otherwise kill rtrace with
        // its probes still attached, and END never run.
        libc::signal(libc::SIGHUP, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t);
    }
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// True once after each SIGUSR1.
pub fn take_print_request() -> bool {
    PRINT_MAPS.swap(false, Ordering::SeqCst)
}

static INTERRUPT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPT.store(true, Ordering::SeqCst);
}

/// The interactive session's handlers: SIGINT (Ctrl-C while a line is being
/// handled) interrupts the last input instead of ending the session.
pub fn install_interactive() {
    install();
    // SAFETY: as in `install`.
    unsafe {
        libc::signal(libc::SIGINT, on_interrupt as *const () as libc::sighandler_t);
    }
}

/// True once after each SIGINT under `install_interactive`.
pub fn take_interrupt() -> bool {
    INTERRUPT.swap(false, Ordering::SeqCst)
}
