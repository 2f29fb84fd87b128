#!/usr/bin/env bash
# Device input the C oracle does not survive: an RX completion whose length
# (0xfff0) is larger than the buffer. The C ena builds the skb with the
# device's length (skb_over_panic, kernel BUG at net/core/skbuff.c), so this
# runs on rena only (scripts/check adds ena/rena-only to the rena runs).
# Asserted: rena counts it (queue_N_rx_bad_desc_num summed over queues),
# logs "malformed RX completion", resets function 1 (the model counts the
# reset with reason 0: C's ENA_REGS_RESET_RX_DESCRIPTOR_MALFORMED is 16,
# which its 4-bit DEV_CTL field turns into 0) and not function 0, and pings pass
# both ways without loss after the reset; the model counts no guest/DMA
# error on either function; the runner checks that the kernel log stays
# clean.
. "$(dirname "$0")/../ena-lib"
ENA_RESETS_EXPECTED=all # the bad length makes rena reset
[ "${ENA_DRIVER:-}" = rena ] ||
    fail "rena only (ENA_DRIVER=${ENA_DRIVER:-unset}): the C ena crashes on this fault"
ena_require_pair
ena_setup_pair

bad_desc() { ena_stat_sum 1 rx_bad_desc_num; }
model_resets() { ena_model_counter "$1" resets; }

bad_before=$(bad_desc)
resets_before=$(model_resets 1) other_before=$(model_resets 0) r0_before=$(ena_model_counter 1 r0)
kmsg_mark
ena_ctl fault 1 bad-rx-len
# Function 1 receives these pings: its next RX completion is the bad one, so
# they may be lost (not checked).
ena_ns 0 ping -c 3 -i 0.3 -W 1 "${ENA_V4[1]}" >/dev/null 2>&1
for _ in $(seq 100); do
    kmsg_since | grep -q 'Device reset completed successfully' && break
    sleep 0.2
done
kmsg_since | grep -q 'malformed RX completion' ||
    { kmsg_since | tail; fail "rena did not report the malformed RX completion"; }
kmsg_since | grep -q 'Device reset completed successfully' ||
    { kmsg_since | tail; fail "rena did not reset and recover"; }
bad_after=$(bad_desc)
[ "$bad_after" -gt "$bad_before" ] || fail "rx_bad_desc_num did not count it ($bad_before -> $bad_after)"
resets_after=$(model_resets 1)
[ "$resets_after" -gt "$resets_before" ] ||
    fail "the model saw no reset of function 1 ($resets_before -> $resets_after)"
[ "$(model_resets 0)" = "$other_before" ] || fail "function 0 (not faulted) was reset too"
# The recovery writes two resets, the malformed-descriptor one and the
# NORMAL one of re-initialisation (as C does): both reason 0.
r0_after=$(ena_model_counter 1 r0)
[ $((r0_after - r0_before)) = $((resets_after - resets_before)) ] ||
    fail "function 1 was reset $((resets_after - resets_before)) times but only $((r0_after - r0_before)) with reason 0 (what C's 16, RX_DESCRIPTOR_MALFORMED, becomes in DEV_CTL): $(ena_model_status 1 | grep 'reset reasons')"
ena_wait_carrier 1 20 || fail "no carrier on ${ENA_IF[1]} after the reset"
ena_ping_clean 0 "${ENA_V4[1]}" 5
ena_ping_clean 1 "${ENA_V4[0]}" 5
log "bad RX length: counted ($bad_before -> $bad_after), device reset ($resets_before -> $resets_after), 5/5 pings both ways"
ena_assert_model_clean
pass
