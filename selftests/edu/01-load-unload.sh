#!/usr/bin/env bash
# rust_edu on QEMU's edu device: load, on-device operations (registers,
# interrupts, coherent and streaming DMA, checked by the module's probe),
# unload; ten times. Needs `qemu-test/vm --edu`.
. "$(dirname "$0")/../lib.sh"
require_cmd insmod rmmod
ko=$(our_module rust_edu)
bdf=$(pci_devices 0x1234 0x11e8 | head -1)
[ -n "$bdf" ] || fail "no edu device (1234:11e8) in the guest: start it with qemu-test/vm --edu"

for round in $(seq 1 10); do
    kmsg_mark
    insmod "$ko" || fail "round $round: insmod $ko failed"
    [ -e "/sys/bus/pci/drivers/rust_edu/$bdf" ] || {
        kmsg_since
        fail "round $round: rust_edu did not bind $bdf (probe failed; log above)"
    }
    kmsg_since | grep -q "rust_edu $bdf: .*all checks passed" || {
        kmsg_since
        fail "round $round: no 'all checks passed' from the probe"
    }
    grep -q rust_edu /proc/interrupts || fail "round $round: no rust_edu line in /proc/interrupts"
    rmmod rust_edu || fail "round $round: rmmod failed"
    [ ! -e /sys/bus/pci/drivers/rust_edu ] || fail "round $round: driver still registered after rmmod"
    kmsg_since | grep -q "rust_edu $bdf: unbound after [1-9][0-9]* interrupts" || {
        kmsg_since
        fail "round $round: no unbind message with a non-zero interrupt count"
    }
    grep -q rust_edu /proc/interrupts && fail "round $round: IRQ still requested after rmmod"
done
log "$(kmsg_since | grep 'all checks passed' | tail -1)"
pass "10 load/operate/unload rounds"
