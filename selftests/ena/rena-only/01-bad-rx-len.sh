#!/usr/bin/env bash
# Device input the C oracle does not survive: an RX completion whose length
# (0xfff0) is larger than the buffer. The C ena builds the skb with the
# device's length (skb_over_panic, kernel BUG at net/core/skbuff.c), so this
# runs on rena only (scripts/check adds ena/rena-only to the rena runs).
# Asserted: rena counts it (queue_N_rx_bad_desc_num), logs "malformed RX
# completion", resets the device (the model counts the reset) and traffic
# resumes both ways; the runner checks that the kernel log stays clean.
. "$(dirname "$0")/../ena-lib"
[ "${ENA_DRIVER:-}" = rena ] ||
    fail "rena only (ENA_DRIVER=${ENA_DRIVER:-unset}): the C ena crashes on this fault"
ena_require_pair
ena_setup_pair

bad_desc() {
    ena_ns 1 ethtool -S "${ENA_IF[1]}" |
        awk '$1 ~ /^queue_[0-9]+_rx_bad_desc_num:$/ { s += $2 } END { print s + 0 }'
}
model_resets() { ena_model_status 1 | sed -n 's/.* resets \([0-9]*\) (last reason.*/\1/p'; }

bad_before=$(bad_desc)
resets_before=$(model_resets)
[ -n "$resets_before" ] || fail "cannot read function 1's reset count from the model"
kmsg_mark
ena_ctl fault 1 bad-rx-len
# Function 1 receives these pings: its next RX completion is the bad one.
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
resets_after=$(model_resets)
[ "$resets_after" -gt "$resets_before" ] ||
    fail "the model saw no reset of function 1 ($resets_before -> $resets_after)"
ena_wait_carrier 1 20 || fail "no carrier on ${ENA_IF[1]} after the reset"
ena_ns 0 ping -c 3 -i 0.3 -W 2 "${ENA_V4[1]}" >/dev/null || fail "no traffic 0 -> 1 after the reset"
ena_ns 1 ping -c 3 -i 0.3 -W 2 "${ENA_V4[0]}" >/dev/null || fail "no traffic 1 -> 0 after the reset"
log "bad RX length: counted ($bad_before -> $bad_after), device reset ($resets_before -> $resets_after), traffic resumed"
pass
