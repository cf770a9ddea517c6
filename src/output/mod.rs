//! Userspace formatting of everything rtrace prints: printf, values, maps, in
//! bpftrace's text and JSON formats. Pure: takes decoded values, writes text.
