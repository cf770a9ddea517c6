#!/usr/bin/env python3
"""Per-event overhead of `@ = hist(...)`, with the shared kit's overhead.py.

The kit (../shared/bench, or $BENCH_KIT) measures `@ = count()` and printf;
issue #3 also asks for `@ = hist(arg0)`. This runs the kit's own measurement
with its "count" mode's programs replaced by hist ones (a uprobe loop reading
arg0; the getppid tracepoint, which has no arguments, histograms its syscall
number), so the numbers are comparable with the kit's count rows:

  ./bench/overhead_hist.py --runs 5 --modes count bpftrace target/release/rtrace

(the rows are labelled "count" by the kit; they run the hist programs).
"""
import os
import sys

kit = os.environ.get("BENCH_KIT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                  "shared", "bench")
sys.path.insert(0, os.path.abspath(kit))
import overhead  # noqa: E402

plain = overhead.programs


def hist_programs(w):
    progs = plain(w)
    progs["ucall"]["count"] = ("uprobe:%s:bench_target { @ = hist(arg0); }" % w["ucall"], None)
    progs["sysc"]["count"] = ("tracepoint:syscalls:sys_enter_getppid { @ = hist(args->__syscall_nr); }", None)
    return progs


overhead.programs = hist_programs
overhead.main()
