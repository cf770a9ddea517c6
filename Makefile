# rtrace: the two commands a fresh Debian 12 machine needs (as root):
#   make run ARGS="-e 'BEGIN { printf(\"hello\\n\"); exit(); }'"
#   make test
CARGO ?= cargo

.PHONY: setup build run test test-kernel lint bench fuzz oracle-fuzz static test-static

setup:
	./scripts/setup.sh

build: setup
	$(CARGO) build --release

run: build
	./target/release/rtrace $(ARGS)

# The whole suite: unit tests, parser cases, and the runtime golden tests on
# the real kernel (needs root; with CI=true a skipped kernel test fails);
# then, as root, the same test binaries as an unprivileged user, where only
# the kernel tests may skip.
test: setup
	$(CARGO) test --release
	@if [ "$$(id -u)" = 0 ]; then CARGO_ARGS=--release ./scripts/test-unprivileged.sh; fi

# The kernel-probe tests alone (kprobe, kretprobe, kfunc), in a VM booted
# with Debian's kernel (they are part of `make test` too).
test-kernel: setup
	$(CARGO) test --release --test kernel -- --nocapture

# One file to ship: libbpf, libelf and zlib linked in (the system's
# libelf.a and libz.a); the binary needs only glibc (ld-linux, libc.so.6)
# and libgcc_s (Rust's unwinder) from the host. Built in target/static (its
# own deps), copied to target/release/rtrace-static; `make test-static`
# runs it in a chroot that holds nothing else.
static: setup
	LIBBPF_SYS_LIBRARY_PATH=$$(pkg-config --variable=libdir libelf) \
	  CARGO_TARGET_DIR=target/static $(CARGO) build --release --features static
	cp target/static/release/rtrace target/release/rtrace-static
	@ldd target/release/rtrace-static

test-static: static
	./scripts/test-static.sh target/release/rtrace-static

# Formatting and lints, as CI checks them (warnings are errors).
lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

bench: build
	../shared/bench/run_all.sh bpftrace $(CURDIR)/target/release/rtrace

# The fuzz targets (parser, checker, code generator), FUZZ_SECONDS each
# (default 600), from the seed corpus of tests/ and docs/ (FUZZING.md).
FUZZ_SECONDS ?= 600
fuzz: setup
	./fuzz/run.sh $(FUZZ_SECONDS)

# The differential test (FUZZING.md): random programs run in the kernel and
# through the cranelift oracle, ORACLE_COUNT of them (default 10000) from
# ORACLE_SEED (default: the time), stopping after ORACLE_SECONDS if given.
# Needs root. `make test` runs 300 of them with seed 1.
ORACLE_COUNT ?= 10000
ORACLE_SEED ?= $(shell date +%s)
oracle-fuzz: setup
	ORACLE_COUNT=$(ORACLE_COUNT) ORACLE_SEED=$(ORACLE_SEED) $(if $(ORACLE_SECONDS),ORACLE_SECONDS=$(ORACLE_SECONDS)) \
		$(CARGO) test --release --test differential random -- --nocapture
