#!/usr/bin/env bash
# rfl-timeout: 1800
# rust_edu on QEMU's edu device: load, on-device operations (registers,
# interrupts, coherent and streaming DMA, checked by the module's probe),
# unload; 50 times (RFL_RELOAD_ROUNDS). After every unload the device's IRQ
# vectors, DMA-API entries and the rest that selftests/leak-lib counts are
# back to their start values, and after the last one kmemleak finds nothing
# allocated by rust_edu. Needs `qemu-test/vm --edu` on the debug kernel.
. "$(dirname "$0")/../lib.sh"
. "$RFL_TOP/selftests/leak-lib"
require_cmd insmod rmmod
ko=$(our_module rust_edu) || { echo "$ko"; exit 1; }
bdf=$(pci_devices 0x1234 0x11e8 | head -1)
[ -n "$bdf" ] || fail "no edu device (1234:11e8) in the guest: start it with qemu-test/vm --edu"
rounds=${RFL_RELOAD_ROUNDS:-50}

if [ -d /sys/module/rust_edu ]; then rmmod rust_edu || fail "rust_edu was loaded and does not unload"; fi
leak_begin rust_edu "$bdf"
start=$(date +%s)
for round in $(seq 1 "$rounds"); do
    kmsg_mark
    insmod "$ko" || fail "round $round: insmod $ko failed"
    leak_loaded
    [ -e "/sys/bus/pci/drivers/rust_edu/$bdf" ] || {
        kmsg_since
        fail "round $round: rust_edu did not bind $bdf (probe failed; log above)"
    }
    kmsg_since | grep -q "rust_edu $bdf: .*all checks passed" || {
        kmsg_since
        fail "round $round: no 'all checks passed' from the probe"
    }
    grep -q rust_edu /proc/interrupts || fail "round $round: no rust_edu line in /proc/interrupts"
    [ "$round" = "$rounds" ] && leak_break keep-loaded && break
    rmmod rust_edu || fail "round $round: rmmod failed"
    [ ! -e /sys/bus/pci/drivers/rust_edu ] || fail "round $round: driver still registered after rmmod"
    kmsg_since | grep -q "rust_edu $bdf: unbound after [1-9][0-9]* interrupts" || {
        kmsg_since
        fail "round $round: no unbind message with a non-zero interrupt count"
    }
    grep -q rust_edu /proc/interrupts && fail "round $round: IRQ still requested after rmmod"
    leak_round "$round"
done
log "$(kmsg_since | grep 'all checks passed' | tail -1)"
log "$rounds load/operate/unload rounds in $(( $(date +%s) - start )) s"
leak_end
pass "$rounds load/operate/unload rounds, nothing left behind"
