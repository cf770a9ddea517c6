#!/usr/bin/env python3
"""Profiling with stacks (issue 15, item 7), tracers side by side in one run.

`profile:hz:999 /comm == "manystacks"/ { @[ustack, kstack] = count(); }`
(and the same with `@[ustack]` alone) while two copies of
bench/workloads/manystacks.c (16 functions calling each other along one
of PATHS fixed call paths 4 to 24 deep, built with frame pointers; the
leaf spins or calls getppid: thousands of distinct user+kernel stacks) keep both CPUs busy. Each run: the tracer attaches, the
workloads run, after SECONDS the tracer gets SIGINT while the workloads
still run (so that both tracers can name every frame), then:

  ns/sample   the kernel's accounting of the tracer's programs
              (kernel.bpf_stats_enabled: run_time_ns / run_cnt)
  samples     run_cnt
  exit s      SIGINT -> the tracer exited (its maps printed to a file)
  RSS MiB     the tracer's peak RSS over its life (ru_maxrss through the
              kit's runone launcher)
  stacks      map entries printed ("]: N" lines)

Runs of the tracers are interleaved (A B A B ...). Uses the shared kit
(../shared/bench, or $BENCH_KIT) for launching and attach detection.

  ./bench/stacks_profile.py [--runs 3] [--seconds 10] bpftrace target/release/rtrace
  ./bench/stacks_profile.py --programs "ustack;dw_ustack" target/release/rtrace
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

kit = os.environ.get("BENCH_KIT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                  "shared", "bench")
sys.path.insert(0, os.path.abspath(kit))
import benchlib as bl  # noqa: E402

# The workload's samples only: other processes on a shared machine would
# make the stacks (and the numbers) depend on whatever else runs.
PROGRAMS = {
    "ustack,kstack": 'profile:hz:999 /comm == "manystacks"/ { @[ustack, kstack] = count(); }',
    "ustack": 'profile:hz:999 /comm == "manystacks"/ { @[ustack] = count(); }',
    # rtrace only (bpftrace 0.17 has no dw_ustack): one map entry per
    # sample until printed, hence the larger map.
    "dw_ustack": 'config = { unstable_dw_ustack = enable; max_map_keys = 65536 } '
                 'profile:hz:999 /comm == "manystacks"/ { @[dw_ustack] = count(); }',
}
ENTRY_RE = re.compile(r"^\]: (\d+)$", re.M)


def prog_stats(pids):
    ids = bl.prog_ids_of(pids)
    progs = [p for p in bl.bpftool_json("prog", "show") if p["id"] in ids]
    return sum(p.get("run_cnt", 0) for p in progs), sum(p.get("run_time_ns", 0) for p in progs)


def one_run(tracer, program, workload, seconds, paths):
    fd, out = tempfile.mkstemp(prefix="stk-", suffix=".out")
    os.close(fd)
    bg = bl.Background(bl.tracer_argv(tracer, program), out)
    res = {}
    try:
        if bl.wait_attached(bg, 0, timeout=60.0, settle=0.3) is None:
            return {"error": "did not attach"}
        pids = bl.process_tree(bg.pid)
        cnt0, ns0 = prog_stats(pids)
        wls = [subprocess.Popen([workload, str(seconds + 30), str(paths)]) for _ in (1, 2)]
        time.sleep(seconds)
        cnt, ns = prog_stats(pids)
        t = time.perf_counter()
        bg.stop(timeout=600)
        res["exit_s"] = time.perf_counter() - t
        for w in wls:
            w.kill()
            w.wait()
        res["samples"] = cnt - cnt0
        res["ns_per_sample"] = (ns - ns0) / (cnt - cnt0) if cnt > cnt0 else None
        res["maxrss_mib"] = bg.run.maxrss_kb / 1024 if bg.run and bg.run.ok else None
        text, err = bg.output()
        counts = [int(n) for n in ENTRY_RE.findall(text)]
        res["stacks"] = len(counts)
        res["counted"] = sum(counts)
        res["output_bytes"] = len(text)
        res["lost"] = [line for line in err.splitlines() if "ost" in line][:3]
    finally:
        if bg.alive():
            bg.stop(timeout=5)
        for p in (out, out + ".err"):
            if os.path.exists(p):
                os.unlink(p)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tracers", nargs="+")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--programs", default="ustack,kstack;ustack", help="of: " + "; ".join(PROGRAMS))
    ap.add_argument("--paths", type=int, default=300, help="distinct call paths of the workload")
    args = ap.parse_args()
    bl.ensure_tracefs()
    build = os.environ.get("BENCH_BUILD", bl.DEFAULT_BUILD)
    os.makedirs(build, exist_ok=True)
    workload = os.path.join(build, "manystacks")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads", "manystacks.c")
    subprocess.run(["gcc", "-O1", "-g", "-fno-omit-frame-pointer", "-o", workload, src], check=True)
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
    programs = [(k, PROGRAMS[k]) for k in args.programs.split(";")]
    results = {(k, t): [] for k, _ in programs for t in args.tracers}
    try:
        for k, prog in programs:
            for i in range(args.runs):
                for t in args.tracers:
                    bl.log("== %s run %d %s" % (k, i + 1, bl.tracer_label(t)))
                    r = one_run(t, prog, workload, args.seconds, args.paths)
                    bl.log("   %s" % r)
                    results[(k, t)].append(r)
    finally:
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"], check=False)
    for k, prog in programs:
        print("\n%s, %g s, %d runs: median (min-max)" % (prog, args.seconds, args.runs))
        print("%-10s %-22s %-22s %-22s %-22s %-22s %s" % ("tracer", "ns/sample", "samples", "exit s", "peak RSS MiB",
                                                        "stacks", "counted"))
        for t in args.tracers:
            rs = [r for r in results[(k, t)] if "error" not in r]

            def col(key, fmt):
                v = [r[key] for r in rs if r.get(key) is not None]
                if not v:
                    return "-"
                return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.median(v), min(v), max(v))

            print("%-10s %-22s %-22s %-22s %-22s %-22s %s" % (bl.tracer_label(t), col("ns_per_sample", "%.0f"),
                                                            col("samples", "%.0f"), col("exit_s", "%.2f"),
                                                            col("maxrss_mib", "%.1f"), col("stacks", "%.0f"),
                                                            col("counted", "%.0f")))


if __name__ == "__main__":
    main()
