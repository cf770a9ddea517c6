#!/usr/bin/env python3
"""Time the interactive session: from Enter to the next prompt, for N rounds
of (a new tracepoint probe, a statement printing its map), in a pseudo-terminal.
Each round probes another syscall tracepoint (the kernel runs at most 64
programs on one event), and every input must succeed.

    sudo scripts/repl_latency.py target/release/rtrace 30

Prints the median of the first and last five rounds of each kind, and the
session's peak RSS at the end. bpftrace has no session to compare with: its
nearest equivalent is starting it again (see BENCHMARKS.md, start-up).
"""
import os
import pty
import re
import select
import statistics
import sys
import tempfile
import time

ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def main():
    binary, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30
    data = tempfile.mkdtemp(prefix="rtrace-repl-")
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="xterm", XDG_DATA_HOME=data)
        os.execv(binary, [binary])
    seen = b""

    def until(text, timeout=30, keep=False):
        nonlocal seen
        end = time.time() + timeout
        while time.time() < end:
            if text in ESCAPES.sub(b"", seen).replace(b"\r", b""):
                if not keep:
                    seen = b""
                return
            ready, _, _ = select.select([fd], [], [], 0.01)
            if ready:
                seen += os.read(fd, 65536)
        sys.exit("rtrace did not print %r" % text)

    def timed(line, expect=None):
        nonlocal seen
        os.write(fd, line.encode())
        time.sleep(0.05)
        seen = b""
        start = time.time()
        os.write(fd, b"\r")
        until(b"\nrtrace> ", keep=True)
        took = (time.time() - start) * 1000
        shown = ESCAPES.sub(b"", seen).replace(b"\r", b"")
        seen = b""
        if b"error" in shown or (expect and expect not in shown):
            sys.exit("input failed: %s\n%s" % (line, shown.decode(errors="replace")))
        return took

    until(b"rtrace> ")
    events = sorted(e for e in os.listdir("/sys/kernel/tracing/events/syscalls") if e.startswith("sys_enter_"))
    if len(events) < rounds:
        sys.exit("only %d syscall tracepoints" % len(events))
    probe, stmt = [], []
    for i in range(rounds):
        line = "tracepoint:syscalls:%s { @r%d[comm] = count(); }" % (events[i], i)
        probe.append(timed(line, b"Attached probe %d:" % (i + 1)))
        stmt.append(timed("print(@r%d)" % i))
    with open("/proc/%d/status" % pid) as status:
        hwm = next(l.split()[1] for l in status if l.startswith("VmHWM"))
    os.write(fd, b"\x04")
    os.waitpid(pid, 0)
    med = lambda xs: "%.1f ms" % statistics.median(xs)
    print("new probe: first 5 %s, last 5 %s" % (med(probe[:5]), med(probe[-5:])))
    print("statement: first 5 %s, last 5 %s" % (med(stmt[:5]), med(stmt[-5:])))
    print("peak RSS after %d probes: %.1f MiB" % (rounds, int(hwm) / 1024))


if __name__ == "__main__":
    main()
