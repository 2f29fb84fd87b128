#!/usr/bin/env bash
# The model's link goes down and up at run time (AENQ link-change): carrier
# follows, traffic stops and resumes. Also admin up/down of the interface.
. "$(dirname "$0")/ena-lib"
ena_require_pair
ena_setup_pair
ena_ctl link 0 down
for _ in $(seq 50); do
    [ "$(ena_ns 0 cat "/sys/class/net/${ENA_IF[0]}/carrier")" = 0 ] && break; sleep 0.1
done
[ "$(ena_ns 0 cat "/sys/class/net/${ENA_IF[0]}/carrier")" = 0 ] || fail "carrier stayed on after the model's link went down"
ena_ns 0 ping -c 1 -W 1 "${ENA_V4[1]}" >/dev/null 2>&1 && fail "ping worked with the link down"
ena_ctl link 0 up
ena_wait_carrier 0 10 || fail "carrier did not come back after link up"
ena_ns 0 ping -c 2 -W 2 "${ENA_V4[1]}" >/dev/null || fail "no traffic after link up"
log "model link down/up: carrier followed, traffic resumed"
for k in 1 2 3; do
    ena_ns 0 ip link set "${ENA_IF[0]}" down
    ena_ns 0 ip link set "${ENA_IF[0]}" up
    ena_wait_carrier 0 10 || fail "no carrier after ip link down/up #$k"
done
ena_ns 0 ping -c 2 -W 2 "${ENA_V4[1]}" >/dev/null || fail "no traffic after 3 ip link down/up"
log "3 x ip link down/up (destroy/create queues): traffic flows"
pass
