#!/usr/bin/env python3
"""Issue 17's runtime-at-scale targets, side by side for one or more tracers
(e.g. bpftrace 0.17 and rtrace), with the shared kit's launcher (`runone`:
wall time and the tracer's own rusage, peak RSS included).

  attach_str   uprobe:libc:str* counted, interval:ms:100 exit: start -> exit
  attach_all   uprobe:libc:* counted, interval:ms:100 exit: start -> exit
  exit_tp      tracepoint:sched:* counted, interval:ms:100 exit: start -> exit
  map_text     1,000,000 keys filled by a uprobe, then SIGINT: the map
               printed sorted at exit (text); SIGINT -> exit, tracer CPU, RSS
  map_json     the same with -f json
  map_clear    print(@m); clear(@m); exit() from a probe after the fill:
               end of the fill -> exit

The event-stream target is the kit's own overhead.py (see BENCHMARKS.md).

Usage (root): bench/runtime_scale.py [--only a,b] [--runs N] TRACER [TRACER...]
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The kit sits in ../shared/bench next to the repository (BENCH_KIT to override).
KIT = os.environ.get("BENCH_KIT") or next(
    (p for p in (os.path.join(HERE, "..", "..", "shared", "bench"), os.path.join(HERE, "..", "..", "..", "shared", "bench"))
     if os.path.exists(os.path.join(p, "benchlib.py"))), "")
sys.path.insert(0, KIT)
import benchlib  # noqa: E402

KEYS = 1_000_000


def build_loop():
    out = os.path.join(benchlib.DEFAULT_BUILD, "scale_loop")
    src = os.path.join(HERE, "..", "tests", "workloads", "loop.c")
    os.makedirs(benchlib.DEFAULT_BUILD, exist_ok=True)
    subprocess.run(["gcc", "-O1", "-o", out, src], check=True)
    return out


def timed(tracer, program, timeout=120):
    r = benchlib.run_timed(benchlib.tracer_argv(tracer, program), timeout)
    return {"wall": r.wall, "cpu": r.cpu, "rss_mib": (r.maxrss_kb or 0) / 1024, "code": r.code}


def big_map(tracer, loop, extra, tmp):
    """Fill, then SIGINT: maps printed at exit."""
    prog = "uprobe:%s:step { @m[arg0] = arg0; }" % loop
    bg = benchlib.Background(shlex.split(tracer) + extra + ["-e", prog], tmp)
    benchlib.wait_attached(bg, 1, timeout=60)
    subprocess.run([loop, str(KEYS), "0"], check=True)
    time.sleep(0.5)
    t0 = time.perf_counter()
    bg.stop(timeout=300)
    wall = time.perf_counter() - t0
    out, _ = bg.output()
    entries = len(re.findall(r'"\d+": ', out)) if extra else out.count("@m[")
    return {"wall": wall, "cpu": bg.run.cpu, "rss_mib": (bg.run.maxrss_kb or 0) / 1024,
            "entries": entries, "code": bg.code}


def map_clear(tracer, loop, tmp):
    """Fill, then print(@m); clear(@m); exit() from a probe."""
    prog = ("uprobe:%s:step { @m[arg0] = arg0; } "
            "tracepoint:syscalls:sys_enter_getppid /comm == \"scale_loop\"/ "
            "{ print(@m); clear(@m); exit(); }" % loop)
    bg = benchlib.Background(benchlib.tracer_argv(tracer, prog), tmp)
    benchlib.wait_attached(bg, 2, timeout=60)
    subprocess.run([loop, str(KEYS), "1"], check=True)
    t0 = time.perf_counter()
    while bg.alive() and time.perf_counter() - t0 < 300:
        time.sleep(0.005)
    wall = time.perf_counter() - t0
    if bg.alive():
        bg.stop()
    out, _ = bg.output()
    return {"wall": wall, "cpu": bg.run.cpu if bg.run else None,
            "rss_mib": ((bg.run.maxrss_kb or 0) / 1024) if bg.run else 0,
            "entries": out.count("@m["), "code": bg.code}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tracers", nargs="+")
    ap.add_argument("--only", default="attach_str,attach_all,exit_tp,map_text,map_json,map_clear")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    benchlib.ensure_tracefs()
    loop = build_loop()
    tmp = "/tmp/runtime_scale.out"
    only = args.only.split(",")
    programs = {
        "attach_str": "uprobe:libc:str* { @ = count(); } interval:ms:100 { exit(); }",
        "attach_all": "uprobe:libc:* { @ = count(); } interval:ms:100 { exit(); }",
        "exit_tp": "tracepoint:sched:* { @ = count(); } interval:ms:100 { exit(); }",
    }
    print("%-11s %-22s %8s %8s %8s %9s %5s  %s" %
          ("scenario", "tracer", "wall s", "cpu s", "RSS MiB", "entries", "exit", "(median of runs; min..max wall)"))
    for name in only:
        for tracer in args.tracers:
            results = []
            # The map scenarios need 1,000,000 keys (bpftrace 0.17's and
            # v0.26's names); the others keep the default, as a larger limit
            # makes every map bigger to create.
            big = name.startswith("map_")
            for var in ("BPFTRACE_MAP_KEYS_MAX", "BPFTRACE_MAX_MAP_KEYS"):
                if big:
                    os.environ[var] = str(1 << 20)
                else:
                    os.environ.pop(var, None)
            for _ in range(args.runs):
                if name in programs:
                    results.append(timed(tracer, programs[name]))
                elif name == "map_text":
                    results.append(big_map(tracer, loop, [], tmp))
                elif name == "map_json":
                    results.append(big_map(tracer, loop, ["-f", "json"], tmp))
                elif name == "map_clear":
                    results.append(map_clear(tracer, loop, tmp))
            results.sort(key=lambda r: r["wall"] or 0)
            mid = results[len(results) // 2]
            print("%-11s %-22s %8.3f %8.3f %8.1f %9s %5s  %.3f..%.3f" % (
                name, benchlib.tracer_label(tracer)[:22], mid["wall"] or 0, mid["cpu"] or 0,
                mid["rss_mib"], mid.get("entries", "-"), mid["code"],
                results[0]["wall"] or 0, results[-1]["wall"] or 0), flush=True)


if __name__ == "__main__":
    main()
