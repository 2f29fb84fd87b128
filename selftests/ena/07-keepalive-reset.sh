#!/usr/bin/env bash
# Keep-alives stop (model fault) -> the driver's watchdog resets the device
# through the full re-init with reset reason 1 (KEEP_ALIVE_TO, counted by the
# model); when keep-alives resume, pings pass both ways without loss.
# Function 1 is not touched: the model counts no guest/DMA error on it, nor
# on function 0 (a reset is no excuse for a bad register write or DMA).
. "$(dirname "$0")/ena-lib"
ENA_RESETS_EXPECTED=0 # the watchdog resets function 0 (function 1 never)
ena_require_pair
ena_setup_pair
r1=$(ena_model_counter 0 r1) o1=$(ena_model_counter 1 resets)
kmsg_mark
ena_ctl fault 0 stop-keepalive
for _ in $(seq 150); do
    kmsg_since | grep -q 'Keep alive watchdog timeout' && break; sleep 0.1
done
kmsg_since | grep -q 'Keep alive watchdog timeout' || fail "no keep-alive watchdog timeout within 15 s of stopping keep-alives"
ena_ctl fault 0 resume-keepalive
ena_wait_reset_done "the driver did not finish its reset"
r=$(ena_model_counter 0 r1)
[ "$r" -gt "$r1" ] || fail "the model saw no reset with reason 1 (KEEP_ALIVE_TO) on function 0 ($r1 -> $r)"
[ "$(ena_model_counter 1 resets)" = "$o1" ] || fail "function 1 was reset too ($o1 -> $(ena_model_counter 1 resets))"
ena_wait_carrier 0 15 || fail "no carrier after the reset"
ena_ping_clean 0 "${ENA_V4[1]}" 5
ena_ping_clean 1 "${ENA_V4[0]}" 5
log "keep-alive stop -> watchdog reset (reason-1 resets $r1 -> $r) -> recovered, 5/5 pings both ways"
ena_assert_model_clean
pass
