#!/usr/bin/env python3
"""Compile time and peak memory on large programs (issue 16), rtrace beside
bpftrace in one run.

Generates, in a temporary directory:
  sN.bt   BEGIN { $a = 1; $a = $a + 1; ... xN; printf; exit(); }
  jN.bt   the same with N `if ($a > 5) { ... } else { ... }` statements
  p8000.bt  8,000 separate `BEGIN { @x = 1; }` probes
and measures each with /usr/bin/time (wall, user+sys CPU, peak RSS), the
median of --runs runs:
  rtrace --emit asm FILE           (compile only)
  bpftrace --emit-elf OUT FILE     (bpftrace 0.17's nearest: LLVM -O2 and ELF)
  rtrace --dry-run p8000.bt        (compile, then load every program; run as root)

Usage: bench/compile_scale.py [--runs 3] [--no-bpftrace] RTRACE [BPFTRACE]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile


def straight(n):
    return "BEGIN { $a = 1;\n" + "$a = $a + 1;\n" * n + 'printf("%d\\n", $a); exit(); }\n'


def diamonds(n):
    body = "if ($a > 5) { $a = $a + 1; } else { $a = $a + 3; }\n"
    return "BEGIN { $a = 1;\n" + body * n + 'printf("%d\\n", $a); exit(); }\n'


def probes(n):
    return "BEGIN { @x = 1; }\n" * n


def measure(cmd, runs):
    """Median wall s, CPU s and peak RSS MiB of `runs` runs of cmd."""
    walls, cpus, rss = [], [], []
    for _ in range(runs):
        p = subprocess.run(
            ["/usr/bin/time", "-f", "TIME %e %U %S %M"] + cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = [l for l in p.stderr.splitlines() if l.startswith("TIME ")]
        if p.returncode != 0 or not line:
            sys.exit("failed: %s\n%s" % (" ".join(cmd), p.stderr[-2000:]))
        _, wall, user, sys_, kb = line[-1].split()
        walls.append(float(wall))
        cpus.append(float(user) + float(sys_))
        rss.append(int(kb) / 1024)
    return statistics.median(walls), statistics.median(cpus), statistics.median(rss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-bpftrace", action="store_true")
    ap.add_argument("rtrace")
    ap.add_argument("bpftrace", nargs="?", default="bpftrace")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="compile-scale-")
    cases = [
        ("s10000", straight(10000)),
        ("s20000", straight(20000)),
        ("s40000", straight(40000)),
        ("j20000", diamonds(20000)),
        ("p8000", probes(8000)),
    ]
    print("| program | tracer | wall s | CPU s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for name, text in cases:
        path = os.path.join(tmp, name + ".bt")
        with open(path, "w") as f:
            f.write(text)
        rows = [("rtrace `--emit asm`", [a.rtrace, "--emit", "asm", path])]
        if not a.no_bpftrace and name in ("s20000", "j20000"):
            rows.append(("bpftrace `--emit-elf`", [a.bpftrace, "--emit-elf", os.path.join(tmp, "out.o"), path]))
        if name == "p8000" and os.geteuid() == 0:
            rows.append(("rtrace `--dry-run` (compile + load)", [a.rtrace, "--dry-run", path]))
        for tracer, cmd in rows:
            wall, cpu, rss = measure(cmd, a.runs)
            print("| %s | %s | %.2f | %.2f | %.1f |" % (name, tracer, wall, cpu, rss), flush=True)


if __name__ == "__main__":
    main()
