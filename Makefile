# SPDX-License-Identifier: GPL-2.0
#
# Rust-for-Linux guest drivers for ENA and NVMe, with their test rig.
#
#   make setup     install everything (apt, cargo, pip), build QEMU and the
#                  cached debug guest kernel; idempotent (FLAVOURS="debug prod"
#                  builds both kernel flavours)
#   make           build the modules for every built kernel flavour into
#                  build/modules/FLAVOUR (FLAVOUR=debug|prod picks one, KDIR=
#                  builds against another tree into build/modules/custom)
#   make check     set-up, build, host-side tests and guest selftests on the
#                  debug kernel (RFL_CHECK_SCOPE=ci|full, see README)
#   make demo      boot a guest, load what we built and show it working
#   make lint      W=1 build, rustfmtcheck and CLIPPY=1, failing on warnings
#   make bench     C vs Rust benchmarks: build/bench/nvme.md/.png (nvme vs rnvme), ena.md/.png (ena vs rena)
#
# Long builds live in $(RFL_CACHE) (default ~/.cache/rfl-drivers), outside
# the repository, keyed by version and config.

SHELL := /bin/bash
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
export PATH := $(HOME)/.cargo/bin:$(PATH)
export LIBCLANG_PATH := /usr/lib/llvm-19/lib

KMAKE_ARGS := LLVM=-19 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN=bindgen \
	RUSTFMT=/usr/bin/rustfmt CLIPPY_DRIVER=/usr/bin/clippy-driver
# The tree lint and rustfmt use: KDIR= if given, else the debug flavour's.
# Resolved lazily: before `make setup` the cache does not exist yet.
LINT_KDIR = $(or $(KDIR),$(shell RFL_FLAVOUR=debug $(TOP)/scripts/kdir))
FLAVOURS ?= debug
FLAVOUR ?=

RUST_SOURCES = $(shell find $(TOP)/drivers $(TOP)/rust-bindings $(TOP)/selftests -name '*.rs' -not -path '*/generated/*' 2>/dev/null)

.PHONY: all modules setup check demo lint rustfmt rustfmtcheck clippy clean help

all: modules

help:
	@sed -n '3,19p' $(TOP)/Makefile | sed 's/^# \{0,1\}//'

setup:
	@if [ "$$(id -u)" = 0 ]; then $(TOP)/scripts/setup-host.sh; \
	 else sudo $(TOP)/scripts/setup-host.sh; fi
	@for f in $(FLAVOURS); do $(TOP)/scripts/build-kernel.sh $$f || exit 1; done
	@$(TOP)/scripts/build-qemu.sh >/dev/null
	@cargo build --quiet --release --manifest-path $(TOP)/qemu-test/ena-model/Cargo.toml

modules:
	+@$(TOP)/scripts/build-modules $(FLAVOUR)

.PHONY: kdir-ok
kdir-ok:
	@test -f "$(LINT_KDIR)/Module.symvers" || { echo "No Rust-enabled 6.12 build tree at '$(LINT_KDIR)': run 'make setup' or pass KDIR=<tree>" >&2; exit 1; }

rustfmt:
	/usr/bin/rustfmt --edition 2021 --config-path $(LINT_KDIR)/.rustfmt.toml $(RUST_SOURCES)

rustfmtcheck:
	/usr/bin/rustfmt --check --edition 2021 --config-path $(LINT_KDIR)/.rustfmt.toml $(RUST_SOURCES)

# Rebuild from scratch with extra warnings and with clippy; any warning fails.
lint: kdir-ok rustfmtcheck
	@$(TOP)/scripts/lint-build "$(LINT_KDIR)"

clippy: lint

check: setup
	@$(TOP)/scripts/check

demo: setup
	@$(TOP)/scripts/build-kernel.sh prod
	@$(TOP)/scripts/demo

# Not a timed test. BENCH_REPS (5), BENCH_SECS (5), BENCH_ROWS=REGEX,
# BENCH_TARGETS="nvme rnvme", BENCH_NVME=0, BENCH_ENA=0, BENCH_ENA_ROWS=REGEX
# and BENCH_ENA_TARGETS="ena rena" shorten it (scripts/bench lists them):
# make bench BENCH_REPS=1 BENCH_SECS=2
.PHONY: bench
bench: setup
	@$(TOP)/scripts/build-kernel.sh prod
	@$(TOP)/scripts/build-modules prod
	@$(TOP)/scripts/bench

clean:
	rm -rf $(TOP)/build/modules $(TOP)/rust-bindings/generated
