#!/bin/sh
# Seed corpus for the fuzz targets, built from the programs the project
# already has: every PROG of tests/scripts/*.test, every .rt file under
# tests/, and every ```rtrace example of docs/reference.md.
# Usage: fuzz/seeds.sh DIR   (one file per program, named by its hash)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=$1
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

emit() { # stdin: one program
    cat > "$tmp/p"
    [ -s "$tmp/p" ] || return 0
    cp "$tmp/p" "$out/seed-$(cksum < "$tmp/p" | cut -d' ' -f1)"
}
for f in "$root"/tests/scripts/*.test; do
    sed -n 's/^PROG //p' "$f" | while IFS= read -r line; do printf '%s\n' "$line" | emit; done
done
find "$root/tests" -name '*.rt' -not -path '*/build/*' | while read -r f; do emit < "$f"; done
awk -v dir="$tmp" '
    /^```rtrace/ { inside = 1; k++; file = dir "/doc" k; next }
    /^```/ && inside { inside = 0; close(file); next }
    inside { print > file }
' "$root/docs/reference.md"
for f in "$tmp"/doc*; do [ -e "$f" ] && emit < "$f"; done
echo "seeds: $(ls "$out" | wc -l) programs in $out"
