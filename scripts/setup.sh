#!/usr/bin/env bash
# Installs what rtrace needs to build and test on Debian 12 (run as root),
# and mounts tracefs. Idempotent: installs only what is missing.
set -euo pipefail

# qemu-system-x86, linux-image-amd64 and busybox-static (with virtme-ng
# below) boot the kernel the kernel-probe tests run in (tests/kernel.rs);
# prometheus (with promtool) scrapes `--metrics` in tests/metrics.rs.
packages=(libelf-dev zlib1g-dev pkg-config make gcc g++ bpftrace golang-go systemtap-sdt-dev bpftool linux-perf
  qemu-system-x86 linux-image-amd64 busybox-static prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v vng >/dev/null 2>&1; then
  echo "setup: installing virtme-ng"
  pip install -q virtme-ng
fi

if [ ! -d /sys/kernel/tracing/events ]; then
  echo "setup: mounting tracefs"
  mount -t tracefs nodev /sys/kernel/tracing
fi

btf=no; [ -r /sys/kernel/btf/vmlinux ] && btf=yes
kprobes=no; [ -e /sys/bus/event_source/devices/kprobe ] && kprobes=yes
echo "setup: kernel $(uname -r) $(uname -m), BTF: $btf, kprobes: $kprobes, tracefs: /sys/kernel/tracing"
