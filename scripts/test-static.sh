#!/usr/bin/env bash
# The `make static` binary in a chroot that holds nothing but it and the C
# library (no libelf, no zlib, no libgcc_s): BEGIN, a tracepoint and
# --metrics must work there. Needs root (chroot, mounts, eBPF).
set -euo pipefail
bin=${1:-target/release/rtrace-static}
[ -x "$bin" ] || { echo "test-static: $bin missing: run make static" >&2; exit 1; }
root=$(mktemp -d /tmp/rtrace-chroot.XXXXXX)
cleanup() {
  for m in sys/kernel/tracing sys proc dev; do umount -l "$root/$m" 2>/dev/null || true; done
  rm -rf "$root"
}
trap cleanup EXIT
mkdir -p "$root"/{lib64,lib/x86_64-linux-gnu,proc,sys,dev,tmp}
cp "$bin" "$root/rtrace"
# Exactly what ldd lists (ld-linux and libc), nothing else.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do cp -L "$lib" "$root$lib"; done
mount --bind /proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --bind /dev "$root/dev"
echo "test-static: chroot holds: $(cd "$root" && find . \( -path ./proc -o -path ./sys -o -path ./dev \) -prune -o -type f -print | sort | tr '\n' ' ')"
if find "$root/lib" "$root/lib64" -name 'libelf*' -o -name 'libz*' | grep -q .; then
  echo "test-static: FAIL: the chroot has libelf or libz" >&2; exit 1
fi
out=$(chroot "$root" /rtrace -e 'BEGIN { printf("hello from %s\n", "static"); exit(); }')
echo "$out" | grep -q '^hello from static$' || { echo "test-static: FAIL: BEGIN printed: $out" >&2; exit 1; }
out=$(chroot "$root" /rtrace -e 'tracepoint:syscalls:sys_enter_openat { @calls = count(); } interval:ms:300 { exit(); }' &
  sleep 0.2; for _ in 1 2 3 4 5; do cat /etc/hostname >/dev/null; done; wait)
echo "$out" | grep -q '^@calls: ' || { echo "test-static: FAIL: tracepoint printed: $out" >&2; exit 1; }
chroot "$root" /rtrace --metrics 127.0.0.1:19477 -q -e 'interval:ms:10 { @ticks = count(); }' >/dev/null &
pid=$!
sleep 1
metrics=$(bash -c 'exec 3<>/dev/tcp/127.0.0.1/19477; printf "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" >&3; cat <&3')
kill -TERM $pid; wait $pid
echo "$metrics" | grep -q '^rtrace_ticks_total [1-9]' || { echo "test-static: FAIL: --metrics gave: $metrics" >&2; exit 1; }
echo "test-static: ok ($(stat -c %s "$bin") bytes; needs: $(ldd "$bin" | awk '{print $1}' | tr '\n' ' '))"
