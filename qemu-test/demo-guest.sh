#!/usr/bin/env bash
# The guest half of `make demo` (scripts/demo boots it under qemu-test/ena-vm
# with --edu, two NVMe controllers and the ENA model's pair backend): runs
# the parts in order and stops at the first one that fails, with a non-zero
# status; "all steps passed" only when every part did.
#   rust_edu      here: load, the probe's on-device checks, interrupts, unload
#   rnvme         qemu-test/demo-nvme.sh
#   rena          qemu-test/demo-ena.sh
#   C vs Rust     qemu-test/demo-compare.sh (the benchmark's guest halves, short)
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../selftests/lib.sh
. "$here/../selftests/lib.sh"
# shellcheck source-path=SCRIPTDIR source=demo-lib.sh
. "$here/demo-lib.sh"
[ -n "${RFL_MODULES:-}" ] && [ -n "${ENA_CTL:-}" ] ||
    die "run under scripts/demo (qemu-test/ena-vm sets RFL_MODULES and ENA_CTL)"

part() { # part NAME CMD...: runs one part, stops the demo if it failed
    local name=$1 t0=$SECONDS st
    shift
    "$@"
    st=$?
    [ "$st" = 0 ] || { echo "demo: FAILED in the $name part (exit $st); stopping" >&2; exit 1; }
    echo "   ($name: $((SECONDS - t0)) s)"
}

edu() (
    step "rust_edu: a Rust driver for QEMU's edu device, all through rust-bindings"
    bdf=$(pci_devices 0x1234 0x11e8 | head -1)
    [ -n "$bdf" ] || die "no edu device (1234:11e8) in the guest"
    kmsg_mark
    insmod "$(our_module rust_edu)" || die "insmod rust_edu failed"
    show_match "rust_edu $bdf: .*all checks passed" "rust_edu's probe did not pass its on-device checks" "$(kmsg_since)"
    show_match 'rust_edu' "no rust_edu interrupt line in /proc/interrupts" "$(cat /proc/interrupts)"
    rmmod rust_edu || die "rmmod rust_edu failed"
    show_match "rust_edu $bdf: unbound after [1-9][0-9]* interrupts" "no unbind message with interrupts counted" "$(kmsg_since)"
)

step "guest kernel $(uname -r) ($RFL_FLAVOUR flavour), $(nproc) CPUs; the PCI devices"
show_match '1234:11e8|1b36:0010|1d0f:ec20' "lspci shows none of the demo's devices" "$(lspci -nn)"

part rust_edu edu
part rnvme "$here/demo-nvme.sh"
part rena "$here/demo-ena.sh"
part "C vs Rust" "$here/demo-compare.sh"
echo
echo "demo: all steps passed"
