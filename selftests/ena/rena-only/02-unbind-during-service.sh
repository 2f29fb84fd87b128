#!/usr/bin/env bash
# rena's unbind waits for its service work. A link change makes the 1 Hz
# watchdog queue the service work, which holds a reference to the adapter;
# with rena's test hook test_service_delay_ms the work sleeps before it
# looks at the device, and function 0 is unbound during that sleep.
# Asserted: the work's "test delay over" line comes before the unbind
# returns (a kernel log marker written right after it). Before the fix
# (commit e1ea152) unbind returned at once and the work dropped the
# adapter's last reference after the device's managed resources were gone
# (pci_free_irq_vectors on freed MSI data: an oops). Then the function is
# bound again, and pings pass both ways; the model counts no guest/DMA
# error; the runner checks that the kernel log stays clean.
# rfl-timeout: 600
. "$(dirname "$0")/../ena-lib"
ENA_RESETS_EXPECTED=all # unbind and rebind reset the device
[ "${ENA_DRIVER:-}" = rena ] ||
    fail "rena only (ENA_DRIVER=${ENA_DRIVER:-unset}): test_service_delay_ms is rena's test hook"
ena_require_pair
require_cmd ping
ena_setup_pair

param=/sys/module/rena/parameters/test_service_delay_ms
[ -w "$param" ] || fail "no writable $param: rena built without its test hook?"
bdf=$(ena_bdfs | head -1)
# Longer than any unbind takes on the debug kernel, so without the wait the
# unbind's end is logged before the work's.
delay=10000
# On any exit: the hook off, the link up, the function bound (the next test
# in the same boot needs them).
link_down=0
restore() {
    echo 0 > "$param" 2>/dev/null
    [ "$link_down" = 0 ] || ena_ctl link 0 up > /dev/null
    [ -e "/sys/bus/pci/devices/$bdf/driver" ] || echo "$bdf" > /sys/bus/pci/drivers_probe 2>/dev/null
}
trap restore EXIT
echo "$delay" > "$param" || fail "cannot set $param"
kmsg_mark
link_down=1
ena_ctl link 0 down
end=$((SECONDS + 60))
until kmsg_since | grep -qF "$bdf: service work: test delay of $delay ms"; do
    [ "$SECONDS" -lt "$end" ] || fail "the service work of $bdf did not start its test delay within 60 s of a link change"
    rfl_nap 0.2
done
start=$EPOCHREALTIME
echo "$bdf" > /sys/bus/pci/drivers/rena/unbind || fail "unbinding $bdf from rena failed"
marker="rfl-unbind-returned $bdf $$"
echo "$marker" > /dev/kmsg || fail "cannot write to /dev/kmsg"
log "unbind of $bdf returned after $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
echo 0 > "$param"
# The order of the two lines in the kernel log (the work's may come later).
# While the link event is pending the watchdog queues the work again each
# second, so unbind also waits for a second round of the delay (~20 s).
end=$((SECONDS + 60))
until kmsg_since | grep -qF "$bdf: service work: test delay over"; do
    [ "$SECONDS" -lt "$end" ] || break
    rfl_nap 0.2
done
kmsg_since | awk -v m="$marker" -v over="$bdf: service work: test delay over" '
    index($0, over) && !o { o = NR } index($0, m) && !r { r = NR }
    END { exit !(o && r && o < r) }' ||
    fail "unbind of $bdf returned before its service work ended (the work's line: $(kmsg_since | grep -F "$bdf: service work: test delay over" || echo none))"
log "the service work ended before unbind returned"

ena_ctl link 0 up
link_down=0
# ena_setup_pair's ena_load probes the unbound function again and fails if
# rena does not bind it and create its netdev.
ena_setup_pair
ena_ping_clean 0 "${ENA_V4[1]}" 5
ena_ping_clean 1 "${ENA_V4[0]}" 5
log "bound again: IPv4 ping both ways 5/5"
ena_assert_model_clean
pass
