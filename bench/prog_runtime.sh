#!/usr/bin/env bash
# Kernel-measured cost of the eBPF program itself per event (run_time_ns /
# run_cnt with kernel.bpf_stats_enabled), for @ = count() and @ = hist(...)
# on the shared kit's uprobe and tracepoint loops, bpftrace vs rtrace. The
# loop timings of overhead.py include the uprobe trap (~16 us here), which
# hides the few nanoseconds the programs differ by; this isolates them.
# Usage (root): bench/prog_runtime.sh [bpftrace] [target/release/rtrace] [calls]
set -euo pipefail
BPFTRACE=${1:-bpftrace}
RTRACE=${2:-$(dirname "$0")/../target/release/rtrace}
N=${3:-500000}
BUILD=${BENCH_BUILD:-/tmp/tracer-bench-build}
[ -x "$BUILD/ucall" ] || { echo "run ../shared/bench/overhead.py once to build $BUILD"; exit 1; }
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=0' EXIT
UC="uprobe:$BUILD/ucall:bench_target"
TP="tracepoint:syscalls:sys_enter_getppid"
progs=(
  "ucall|$UC { @ = count(); }"
  "ucall|$UC { @ = hist(arg0); }"
  "sysc|$TP { @ = count(); }"
  "sysc|$TP { @ = hist(args->__syscall_nr); }"
)
printf "%-62s %-9s %10s %10s\n" program tracer events ns/event
for entry in "${progs[@]}"; do
  wl=${entry%%|*}; prog=${entry#*|}
  for tracer in "$BPFTRACE" "$RTRACE"; do
    $tracer -e "$prog" >/dev/null 2>&1 & tpid=$!
    sleep 3
    if [ "$wl" = ucall ]; then "$BUILD/ucall" "$N" target >/dev/null; else "$BUILD/sysc" "$N" >/dev/null; fi
    # The tracer's programs (fds in its process) that ran.
    ids=$(ls -l /proc/$tpid/fd 2>/dev/null | grep -c bpf-prog || true)
    stats=$(bpftool prog show -j | python3 -c '
import json, sys, os
pid = int(sys.argv[1]); progs = json.load(sys.stdin)
mine = {int(open("/proc/%d/fdinfo/%s" % (pid, fd)).read().split("prog_id:")[1].split()[0])
        for fd in os.listdir("/proc/%d/fd" % pid)
        if "prog_id:" in open("/proc/%d/fdinfo/%s" % (pid, fd)).read()}
ran = [p for p in progs if p["id"] in mine and p.get("run_cnt", 0) > 0]
cnt = sum(p["run_cnt"] for p in ran); ns = sum(p["run_time_ns"] for p in ran)
print(cnt, "%.1f" % (ns / cnt if cnt else 0))' "$tpid")
    kill -INT $tpid; wait $tpid 2>/dev/null || true
    printf "%-62s %-9s %10s %10s\n" "${prog:0:62}" "$(basename "${tracer%% *}")" $stats
  done
done
