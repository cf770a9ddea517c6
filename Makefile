# rtrace: the two commands a fresh Debian 12 machine needs (as root):
#   make run ARGS="-e 'BEGIN { printf(\"hello\\n\"); exit(); }'"
#   make test
CARGO ?= cargo

.PHONY: setup build run test bench

setup:
	./scripts/setup.sh

build: setup
	$(CARGO) build --release

run: build
	./target/release/rtrace $(ARGS)

# The whole suite: unit tests, parser cases, and the runtime golden tests on
# the real kernel (needs root; with CI=true a skipped kernel test fails).
test: setup
	$(CARGO) test --release

bench: build
	../shared/bench/run_all.sh bpftrace $(CURDIR)/target/release/rtrace
