#!/usr/bin/env bash
# Runs the test binaries as an unprivileged user (nobody), as root builds
# them: the unit, parser, checker and code generator tests must pass without
# root, and every kernel test must say it was skipped. CARGO_ARGS selects
# the profile (`--release` in `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-unprivileged: run as root (it drops to nobody)"; exit 1; }
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
if ! as_nobody test -r Cargo.toml; then
  echo "test-unprivileged: SKIPPED: nobody cannot read $(pwd) (a checkout under a private home)"
  exit 0
fi
bins=$(cargo test ${CARGO_ARGS:-} --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] != ["bin"]:
        print(m["executable"])')
[ -n "$bins" ] || { echo "test-unprivileged: no test binaries"; exit 1; }
for bin in $bins; do
  echo "== as nobody: $(basename "$bin")"
  # CI=true would turn the skips into failures: they are expected here.
  as_nobody env -u CI "$bin" -q
done
