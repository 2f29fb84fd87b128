#!/usr/bin/env bash
# Link comes up (AENQ link-change), addresses in a netns pair, ping v4 and v6
# both ways over the model's back-to-back wire with no loss; 1400-byte pings
# (multi-descriptor TX, bigger RX completions) both ways; no bad req_ids.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd ping
ena_setup_pair
for i in 0 1; do ena_stats_mark "$i" rx_bad_req_id tx_bad_req_id; done
log "carrier up on ${ENA_IF[0]} (${ENA_NS[0]}) and ${ENA_IF[1]} (${ENA_NS[1]})"
for i in 0 1; do
    ena_ns "$i" ip -6 addr show dev "${ENA_IF[$i]}" | grep -q "${ENA_V6[$i]}" ||
        fail "${ENA_IF[$i]} has no ${ENA_V6[$i]} (guest kernel without IPv6?)"
done
ena_ping_clean 0 "${ENA_V4[1]}" 5
ena_ping_clean 1 "${ENA_V4[0]}" 5
log "IPv4 ping both ways: 5/5"
ena_ping_clean 0 "${ENA_V6[1]}" 5
ena_ping_clean 1 "${ENA_V6[0]}" 5
log "IPv6 ping both ways: 5/5"
ena_ping_clean 0 "${ENA_V4[1]}" 3 -s 1400
ena_ping_clean 1 "${ENA_V6[0]}" 3 -s 1400
log "1400-byte pings (v4 a -> b, v6 b -> a): 3/3"
ena_assert_stats_unchanged "the pings"
ena_assert_model_clean
pass
