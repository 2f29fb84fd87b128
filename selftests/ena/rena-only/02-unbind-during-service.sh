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
trap 'echo 0 > "$param" 2>/dev/null' EXIT
echo "$delay" > "$param" || fail "cannot set $param"
kmsg_mark
ena_ctl link 0 down
for _ in $(seq 100); do
    kmsg_since | grep -qF "$bdf: service work: test delay of $delay ms" && break
    rfl_nap 0.2
done
kmsg_since | grep -qF "$bdf: service work: test delay of $delay ms" ||
    fail "the service work of $bdf did not start its test delay within 20 s of a link change"
start=$EPOCHREALTIME
echo "$bdf" > /sys/bus/pci/drivers/rena/unbind || fail "unbinding $bdf from rena failed"
marker="rfl-unbind-returned $bdf $$"
echo "$marker" > /dev/kmsg || fail "cannot write to /dev/kmsg"
log "unbind of $bdf returned after $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
echo 0 > "$param"
# The order of the two lines in the kernel log (the work's may come later).
for _ in $(seq 100); do
    kmsg_since | grep -qF "$bdf: service work: test delay over" && break
    rfl_nap 0.2
done
kmsg_since | awk -v m="$marker" -v over="$bdf: service work: test delay over" '
    index($0, over) && !o { o = NR } index($0, m) && !r { r = NR }
    END { exit !(o && r && o < r) }' ||
    fail "unbind of $bdf returned before its service work ended (the work's line: $(kmsg_since | grep -F "$bdf: service work: test delay over" || echo none))"
log "the service work ended before unbind returned"

ena_ctl link 0 up
echo "$bdf" > /sys/bus/pci/drivers_probe 2>/dev/null
for _ in $(seq 100); do
    [ -d "/sys/bus/pci/drivers/rena/$bdf/net" ] && break
    rfl_nap 0.2
done
[ -d "/sys/bus/pci/drivers/rena/$bdf/net" ] || fail "rena did not bind $bdf again"
ena_setup_pair
ena_ping_clean 0 "${ENA_V4[1]}" 5
ena_ping_clean 1 "${ENA_V4[0]}" 5
log "bound again: IPv4 ping both ways 5/5"
ena_assert_model_clean
pass
