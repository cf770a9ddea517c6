#!/bin/sh
# Runs each fuzz target for SECONDS (default 600) with a 10 s timeout per
# input, starting from the seed corpus (seeds.sh) and what earlier runs
# found (fuzz/corpus/TARGET). Crashes and timeouts land in
# fuzz/artifacts/TARGET. Needs cargo-fuzz (`cargo install cargo-fuzz`);
# RUSTC_BOOTSTRAP=1 lets its nightly flags work on the stable toolchain.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")"
seconds=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-parse check compile}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    ./seeds.sh "corpus/$t" >/dev/null
    echo "== $t: $seconds s"
    cargo fuzz run -s none "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
        -dict=rtrace.dict -print_final_stats=1 -artifact_prefix="artifacts/$t/"
done
