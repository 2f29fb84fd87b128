#!/usr/bin/env bash
# The model's link goes down and up at run time (AENQ link-change): carrier
# follows, the device sends nothing while the link is down (the model's TX
# count of the function stays put across a ping attempt), and once carrier
# is back pings pass without loss.
# Also 3x admin down/up of the interface (queues destroyed and created), each
# followed by loss-free pings.
. "$(dirname "$0")/ena-lib"
ena_require_pair
ena_setup_pair
ena_ctl link 0 down
for _ in $(seq 50); do
    [ "$(ena_ns 0 cat "/sys/class/net/${ENA_IF[0]}/carrier")" = 0 ] && break; sleep 0.1
done
[ "$(ena_ns 0 cat "/sys/class/net/${ENA_IF[0]}/carrier")" = 0 ] || fail "carrier stayed on after the model's link went down"
t0=$(ena_model_counter 0 tx_pkts)
ena_ns 0 ping -c 1 -W 1 "${ENA_V4[1]}" >/dev/null 2>&1 && fail "ping worked with the link down"
t1=$(ena_model_counter 0 tx_pkts)
[ "$t1" = "$t0" ] || fail "function 0's device sent $((t1 - t0)) frame(s) while its link was down"
ena_ctl link 0 up
ena_wait_carrier 0 10 || fail "carrier did not come back after link up"
ena_ping_clean 0 "${ENA_V4[1]}" 5
ena_ping_clean 1 "${ENA_V4[0]}" 5
log "model link down/up: carrier followed, nothing sent while down (model TX $t0 -> $t1), then 5/5 pings both ways"
for k in 1 2 3; do
    ena_ns 0 ip link set "${ENA_IF[0]}" down || fail "ip link set down #$k failed"
    ena_ns 0 ip link set "${ENA_IF[0]}" up || fail "ip link set up #$k failed"
    ena_wait_carrier 0 10 || fail "no carrier after ip link down/up #$k"
    ena_ping_clean 0 "${ENA_V4[1]}" 3
done
# Admin down drops IPv6 addresses (keep_addr_on_down 0): add them back.
ena_setup_pair
ena_ping_clean 0 "${ENA_V6[1]}" 3
log "3 x ip link down/up (destroy/create queues): 3/3 pings after each, IPv6 too"
ena_assert_model_clean
pass
