//! SIGINT/SIGTERM end the session (END runs, maps print); SIGUSR1 asks for
//! the maps to be printed now. Handlers only set flags the event loop reads.

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
