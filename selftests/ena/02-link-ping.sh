#!/usr/bin/env bash
# Link comes up (AENQ link-change), addresses in a netns pair, ping v4 and v6
# both ways over the model's back-to-back wire.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd ping
ena_setup_pair
log "carrier up on ${ENA_IF[0]} (${ENA_NS[0]}) and ${ENA_IF[1]} (${ENA_NS[1]})"
ena_ns 0 ping -c 5 -i 0.2 -W 2 "${ENA_V4[1]}" || fail "ping ${ENA_V4[0]} -> ${ENA_V4[1]} failed"
ena_ns 1 ping -c 5 -i 0.2 -W 2 "${ENA_V4[0]}" || fail "ping ${ENA_V4[1]} -> ${ENA_V4[0]} failed"
log "IPv4 ping both ways: ok"
if ena_ns 0 ip -6 addr show dev "${ENA_IF[0]}" | grep -q fd77::1; then
    ena_ns 0 ping -6 -c 3 -i 0.2 -W 2 "${ENA_V6[1]}" || fail "ping6 a -> b failed"
    ena_ns 1 ping -6 -c 3 -i 0.2 -W 2 "${ENA_V6[0]}" || fail "ping6 b -> a failed"
    log "IPv6 ping both ways: ok"
else
    fail "cannot add IPv6 addresses (guest kernel without IPv6?)"
fi
# 1400-byte pings exercise multi-descriptor TX and bigger RX completions.
ena_ns 0 ping -c 3 -i 0.2 -s 1400 -W 2 "${ENA_V4[1]}" >/dev/null || fail "1400-byte ping failed"
bad=$(ena_stat 0 queue_0_rx_bad_req_id)
[ "${bad:-0}" = 0 ] || fail "driver counted bad RX req_ids: $bad"
pass
