#!/usr/bin/env bash
# Keep-alives stop (model fault) -> the driver's watchdog resets the device
# through the full re-init; when keep-alives resume, traffic flows again.
. "$(dirname "$0")/ena-lib"
ena_require_pair
ena_setup_pair
kmsg_mark
ena_ctl fault 0 stop-keepalive
for _ in $(seq 150); do
    kmsg_since | grep -q 'Keep alive watchdog timeout' && break; sleep 0.1
done
kmsg_since | grep -q 'Keep alive watchdog timeout' || fail "no keep-alive watchdog timeout within 15 s of stopping keep-alives"
ena_ctl fault 0 resume-keepalive
for _ in $(seq 200); do
    kmsg_since | grep -q 'Device reset completed successfully' && break; sleep 0.1
done
kmsg_since | grep -q 'Device reset completed successfully' || { kmsg_since | tail; fail "the driver did not finish its reset"; }
ena_wait_carrier 0 15 || fail "no carrier after the reset"
ena_ns 0 ping -c 3 -i 0.3 -W 2 "${ENA_V4[1]}" >/dev/null || fail "no traffic after the reset"
log "keep-alive stop -> watchdog reset -> recovered, traffic flows"
pass
